//! Serialization of a planned graph into the blob: tensor records (constants with
//! their data, arena tensors at their planned offsets), node records with each op's
//! parameter words as `medwasm::ops` documents them, and the graph inputs and
//! outputs. Keeps names of graph inputs and outputs only (other names are long in
//! exported models and nothing at run time reads them).

use medwasm::format::{
    BlobWriter, DType as BlobDType, HEADER_LEN, NO_TENSOR, NODE_RECORD_LEN, NodeSpec, OpCode,
    TENSOR_RECORD_LEN, TensorSpec,
};
use medwasm::kernels::misc::PadMode;

use super::ir::{DType, Graph, Layout, Node, Op, Window};
use super::plan::Plan;

/// Why a planned graph could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The blob would exceed a limit of the format (the message names it).
    TooLarge(String),
    /// Something the earlier steps should have refused or lowered (a converter bug).
    Bug(String),
}

/// Writes the blob of `g` placed by `plan`.
pub fn write(g: &Graph, plan: &Plan) -> Result<Vec<u8>, WriteError> {
    let w = records(g, plan)?;
    let len = blob_len(&w);
    if len > u32::MAX as usize {
        return Err(WriteError::TooLarge(format!(
            "the blob would need {len} bytes ({} of them constants) but the model format addresses at most 4 GiB (u32 offsets)",
            w.data_bytes()
        )));
    }
    Ok(w.finish())
}

/// The tensor and node records of `g` placed by `plan`.
fn records(g: &Graph, plan: &Plan) -> Result<BlobWriter, WriteError> {
    let mut w = BlobWriter::default();
    let nt = g.tensors.len();
    let mut map = vec![None::<u32>; nt];
    let keep_name = |t: usize| g.inputs.contains(&t) || g.outputs.contains(&t);
    let u32_of = |v: usize, what: &str| {
        u32::try_from(v).map_err(|_| WriteError::Bug(format!("{what} {v} does not fit in u32")))
    };

    // Tensors: only those some node or the graph uses.
    let used = |t: usize| {
        g.inputs.contains(&t)
            || g.outputs.contains(&t)
            || g.nodes
                .iter()
                .any(|n| n.output == t || n.inputs.contains(&Some(t)))
    };
    for t in 0..nt {
        if !used(t) {
            continue;
        }
        let tensor = &g.tensors[t];
        let dtype = blob_dtype(tensor.dtype).ok_or_else(|| {
            WriteError::Bug(format!(
                "tensor `{}` of element type {} reached the writer",
                tensor.name,
                tensor.dtype.name()
            ))
        })?;
        map[t] = Some(u32_of(w.tensors.len(), "tensor count")?);
        w.tensors.push(TensorSpec {
            name: if keep_name(t) {
                tensor.name.clone()
            } else {
                String::new()
            },
            dtype,
            dims: tensor
                .dims
                .iter()
                .map(|&d| u32_of(d, "dimension"))
                .collect::<Result<_, _>>()?,
            data: tensor.data.as_ref().map(|d| d.le_bytes()),
            arena_offset: u32_of(plan.offsets[t].unwrap_or(0), "arena offset")?,
            quant: None,
        });
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let scratch = match plan.scratch[i] {
            Some((offset, bytes)) => {
                w.tensors.push(TensorSpec {
                    name: String::new(),
                    dtype: BlobDType::F32,
                    dims: vec![u32_of(bytes / BlobDType::F32.size(), "scratch size")?],
                    data: None,
                    arena_offset: u32_of(offset, "arena offset")?,
                    quant: None,
                });
                u32_of(w.tensors.len() - 1, "tensor count")?
            }
            None => NO_TENSOR,
        };
        let inputs = n
            .inputs
            .iter()
            .map(|t| t.and_then(|t| map[t]).unwrap_or(NO_TENSOR))
            .collect();
        let (op, params) = encode(n)?;
        w.nodes.push(NodeSpec {
            op,
            inputs,
            outputs: vec![map[n.output].unwrap_or(NO_TENSOR)],
            scratch,
            params,
        });
    }
    w.inputs = g
        .inputs
        .iter()
        .map(|&t| map[t].unwrap_or(NO_TENSOR))
        .collect();
    w.outputs = g
        .outputs
        .iter()
        .map(|&t| map[t].unwrap_or(NO_TENSOR))
        .collect();
    w.arena_bytes = u32_of(plan.arena_bytes, "arena size")?;
    Ok(w)
}

/// The blob element type of an IR type the runtime computes in.
fn blob_dtype(t: DType) -> Option<BlobDType> {
    match t {
        DType::F32 => Some(BlobDType::F32),
        _ => None,
    }
}

/// The length `BlobWriter::finish` will write (its layout, computed ahead so that
/// nothing is truncated to u32).
fn blob_len(w: &BlobWriter) -> usize {
    let words: usize = w
        .nodes
        .iter()
        .map(|n| n.inputs.len() + n.outputs.len() + n.params.len())
        .sum();
    let strings: usize = w.tensors.iter().map(|t| t.name.len()).sum();
    let before_data = HEADER_LEN
        + w.tensors.len() * TENSOR_RECORD_LEN
        + w.nodes.len() * NODE_RECORD_LEN
        + (w.inputs.len() + w.outputs.len()) * 4
        + words * 4
        + strings;
    super::plan::align(before_data) + w.data_bytes()
}

/// Op code and parameter words, as `medwasm::ops` documents them.
fn encode(n: &Node) -> Result<(OpCode, Vec<u32>), WriteError> {
    let word = |v: usize| {
        u32::try_from(v).map_err(|_| {
            WriteError::Bug(format!(
                "node `{}` ({}): parameter {v} does not fit in u32",
                n.name,
                n.op.label()
            ))
        })
    };
    let win_words = |win: &Window| -> Result<Vec<u32>, WriteError> {
        [
            win.kernel[0],
            win.kernel[1],
            win.strides[0],
            win.strides[1],
            win.dilations[0],
            win.dilations[1],
            win.pads[0],
            win.pads[1],
            win.pads[2],
            win.pads[3],
        ]
        .into_iter()
        .map(word)
        .collect()
    };
    let bug = |what: &str| {
        Err(WriteError::Bug(format!(
            "node `{}` ({}) {what}",
            n.name,
            n.op.label()
        )))
    };
    Ok(match &n.op {
        Op::Gemm { act } => (OpCode::Gemm, act.encode().to_vec()),
        Op::Conv {
            layout: Layout::Nhwc,
            ..
        }
        | Op::Pool {
            layout: Layout::Nhwc,
            ..
        } => return bug("reached the writer in NHWC layout; the f32 kernels run NCHW"),
        Op::Conv {
            win, group, act, ..
        } => {
            let mut p = win_words(win)?;
            p.push(word(*group)?);
            p.extend(act.encode());
            (OpCode::Conv, p)
        }
        Op::Binary { op, act } => {
            let mut p = vec![op.encode()];
            p.extend(act.encode());
            (OpCode::Binary, p)
        }
        Op::Act(act) => (OpCode::Activation, act.encode().to_vec()),
        Op::Softmax { beta, .. } if *beta != 1.0 => {
            return bug("reached the writer with a softmax beta other than 1");
        }
        Op::Softmax { start, end, .. } => (OpCode::Softmax, vec![word(*start)?, word(*end)?]),
        Op::Pool {
            max,
            win,
            count_include_pad,
            ..
        } => {
            let mut p = win_words(win)?;
            p.push(*count_include_pad as u32);
            (
                if *max {
                    OpCode::MaxPool
                } else {
                    OpCode::AveragePool
                },
                p,
            )
        }
        Op::ReduceMean { mask } => (OpCode::ReduceMean, vec![*mask]),
        Op::Transpose { perm } => (
            OpCode::Transpose,
            perm.iter().map(|&p| word(p)).collect::<Result<_, _>>()?,
        ),
        Op::Concat { axis } => (OpCode::Concat, vec![word(*axis)?]),
        Op::Pad { mode, begin, end } => {
            let (m, v) = match mode {
                PadMode::Constant(v) => (0, v.to_bits()),
                PadMode::Reflect => (1, 0),
                PadMode::Edge => (2, 0),
            };
            let mut p = vec![m, v];
            for &b in begin.iter().chain(end) {
                p.push(word(b)?);
            }
            (OpCode::Pad, p)
        }
        Op::Copy => (OpCode::Copy, vec![]),
        Op::ChannelAffine { .. } | Op::HardSwish => return bug("survived the passes unlowered"),
        Op::Quantize | Op::Dequantize => {
            return bug("reached the writer; the runtime has no int8 kernels yet");
        }
    })
}

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;

    use super::{WriteError, blob_len, records, write};
    use crate::convert::ir::{Graph, Op};
    use crate::convert::plan::plan;
    use crate::convert::testing::{constant, input};

    fn small() -> Graph {
        let mut g = Graph::default();
        let x = input(&mut g, "input", &[1, 5]);
        let w = constant(&mut g, "w", &[5, 3], vec![0.5; 15]);
        let y = g.add_node(
            "mm",
            Op::Gemm { act: Act::Relu },
            vec![Some(x), Some(w), None],
            vec![1, 3],
        );
        g.tensors[y].name = "output".into();
        g.outputs.push(y);
        g
    }

    #[test]
    fn the_length_checked_ahead_is_the_length_written() {
        let g = small();
        let w = records(&g, &plan(&g).unwrap()).unwrap();
        assert_eq!(blob_len(&w), w.finish().len());
        // Names of odd lengths move the data section to the next 16-byte boundary.
        let mut g = small();
        g.tensors[0].name = "x".into();
        let w = records(&g, &plan(&g).unwrap()).unwrap();
        assert_eq!(blob_len(&w), w.finish().len());
        let blob = write(&g, &plan(&g).unwrap()).unwrap();
        let aligned = medwasm::AlignedBuf::from_bytes(&blob);
        let model = medwasm::Model::load(aligned.as_slice()).unwrap();
        assert_eq!(model.tensor_count(), 3);
    }

    #[test]
    fn an_unlowered_op_is_a_bug_not_a_blob() {
        let mut g = small();
        g.nodes[0].op = Op::ChannelAffine {
            scale: vec![1.0; 3],
            shift: vec![0.0; 3],
        };
        let p = plan(&g).unwrap();
        assert!(matches!(write(&g, &p), Err(WriteError::Bug(m)) if m.contains("unlowered")));
    }
}
