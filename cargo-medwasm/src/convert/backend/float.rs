//! The f32 operators (NCHW): Gemm, Conv with its im2col scratch, Binary,
//! Activation, Softmax, pooling and ReduceMean.

use medwasm::format::{DType as BlobDType, OpCode};
use medwasm::kernels::conv::Geometry;

use super::{Kernel, Operand, Scratch, Select, bug, window_words, word};
use crate::convert::ir::{Graph, Layout, Node, Op};

/// Conv geometry of an NCHW node `n` in 2-D form (1-D has height 1).
pub fn conv_geometry(g: &Graph, n: &Node) -> Option<Geometry> {
    let Op::Conv {
        win,
        group,
        layout: Layout::Nchw,
        ..
    } = &n.op
    else {
        return None;
    };
    let x = &g.tensors[n.inputs.first().copied().flatten()?].dims;
    let y = &g.tensors[n.output].dims;
    let (h, w, oh, ow) = match (x.len(), y.len()) {
        (4, 4) => (x[2], x[3], y[2], y[3]),
        (3, 3) => (1, x[2], 1, y[2]),
        _ => return None,
    };
    Some(Geometry {
        n: x[0],
        c: x[1],
        h,
        w,
        m: y[1],
        oh,
        ow,
        kh: win.kernel[0],
        kw: win.kernel[1],
        sh: win.strides[0],
        sw: win.strides[1],
        dh: win.dilations[0],
        dw: win.dilations[1],
        pt: win.pads[0],
        pl: win.pads[1],
        group: *group,
    })
}

/// The f32 kernel of `n`, whose tensors are all f32.
pub(super) fn select(g: &Graph, n: &Node) -> Select {
    let inputs: Vec<Operand> = n
        .inputs
        .iter()
        .map(|t| t.map_or(Operand::Absent, Operand::Tensor))
        .collect();
    let kernel = |op, params| Kernel {
        op,
        inputs: inputs.clone(),
        params,
        scratch: None,
    };
    Ok(match &n.op {
        Op::Gemm { act } => kernel(OpCode::Gemm, act.encode().to_vec()),
        Op::Conv {
            layout: Layout::Nhwc,
            ..
        }
        | Op::Pool {
            layout: Layout::Nhwc,
            ..
        } => return bug(n, "an f32 node reached the back end in NHWC layout"),
        Op::Conv {
            win, group, act, ..
        } => {
            let mut p = window_words(n, win)?;
            p.push(word(n, *group)?);
            p.extend(act.encode());
            let elems = conv_geometry(g, n).map_or(0, |geo| geo.scratch_elems());
            Kernel {
                scratch: (elems > 0).then_some(Scratch {
                    dtype: BlobDType::F32,
                    elems,
                }),
                ..kernel(OpCode::Conv, p)
            }
        }
        Op::Binary { op, act } => {
            let mut p = vec![op.encode()];
            p.extend(act.encode());
            kernel(OpCode::Binary, p)
        }
        Op::Act(act) => kernel(OpCode::Activation, act.encode().to_vec()),
        Op::Softmax { beta, .. } if *beta != 1.0 => {
            return bug(n, "an f32 softmax with a beta other than 1 was not lowered");
        }
        Op::Softmax { start, end, .. } => {
            kernel(OpCode::Softmax, vec![word(n, *start)?, word(n, *end)?])
        }
        Op::Pool {
            max,
            win,
            count_include_pad,
            ..
        } => {
            let mut p = window_words(n, win)?;
            p.push(u32::from(*count_include_pad));
            let op = if *max {
                OpCode::MaxPool
            } else {
                OpCode::AveragePool
            };
            kernel(op, p)
        }
        Op::ReduceMean { mask } => kernel(OpCode::ReduceMean, vec![*mask]),
        Op::ChannelAffine { .. } | Op::HardSwish => {
            return bug(n, "an f32 node survived the passes unlowered");
        }
        Op::Copy
        | Op::Transpose { .. }
        | Op::Concat { .. }
        | Op::Pad { .. }
        | Op::Quantize
        | Op::Dequantize => return bug(n, "a data or quantization node reached the f32 kernels"),
    })
}
