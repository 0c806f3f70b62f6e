//! The static memory plan and serialization: liveness per tensor, greedy placement
//! in one arena (largest first, lowest free offset), then the blob.
//!
//! **Invariant:** graph inputs and outputs stay live for the whole run, so a host
//! writes inputs once and reads outputs (and inputs) after the run.

use medwasm::format::{ALIGN, BlobWriter, DType, NO_TENSOR, NodeSpec, OpCode, TensorSpec};
use medwasm::kernels::conv::Geometry;

use super::ir::{Graph, Op};

/// One arena tensor's placement.
#[derive(Debug, Clone, Copy)]
struct Slot {
    first: usize,
    last: usize,
    bytes: usize,
    offset: usize,
}

fn align(v: usize) -> usize {
    v.div_ceil(ALIGN) * ALIGN
}

/// Conv geometry of node `n` in 2-D form.
fn conv_geometry(g: &Graph, n: &super::ir::Node) -> Option<Geometry> {
    let Op::Conv { win, group, .. } = &n.op else {
        return None;
    };
    let x = &g.tensors[n.inputs[0]?].dims;
    let y = &g.tensors[n.output].dims;
    let (h, w, oh, ow) = if x.len() == 4 {
        (x[2], x[3], y[2], y[3])
    } else {
        (1, x[2], 1, y[2])
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

/// Plans the arena and writes the blob. Keeps names of graph inputs and outputs only
/// (other names are long in exported models and nothing at run time reads them).
pub fn plan_and_write(g: &Graph) -> Result<(Vec<u8>, u32), String> {
    let mut w = BlobWriter::default();
    let nt = g.tensors.len();
    let mut map = vec![None::<u32>; nt];
    let n_nodes = g.nodes.len();
    let keep_name = |t: usize| g.inputs.contains(&t) || g.outputs.contains(&t);

    // Liveness, as node indices, for every arena tensor; scratch tensors are extra.
    let mut slots: Vec<(usize, Slot)> = vec![];
    let mut live: Vec<Option<(usize, usize)>> = vec![None; nt];
    for &t in &g.inputs {
        live[t] = Some((0, n_nodes));
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let e = live[n.output].get_or_insert((i, i));
        e.0 = e.0.min(i);
        for t in n.inputs.iter().flatten() {
            if g.tensors[*t].is_const() {
                continue;
            }
            let e = live[*t].get_or_insert((i, i));
            e.1 = e.1.max(i);
        }
    }
    for &t in &g.outputs {
        if let Some(e) = live[t].as_mut() {
            e.1 = n_nodes;
        }
    }
    for (t, l) in live.iter().enumerate() {
        if let Some((first, last)) = *l {
            slots.push((
                t,
                Slot {
                    first,
                    last,
                    bytes: align(g.tensors[t].len() * 4),
                    offset: 0,
                },
            ));
        }
    }
    // Scratch per Conv that needs one: live only during its node.
    let mut scratch_of = vec![None::<usize>; n_nodes];
    for (i, n) in g.nodes.iter().enumerate() {
        if let Some(geo) = conv_geometry(g, n) {
            let elems = geo.scratch_elems();
            if elems > 0 {
                scratch_of[i] = Some(slots.len());
                slots.push((
                    usize::MAX,
                    Slot {
                        first: i,
                        last: i,
                        bytes: align(elems * 4),
                        offset: 0,
                    },
                ));
            }
        }
    }
    // Greedy: largest first, each at the lowest offset clear of every placed slot
    // whose lifetime overlaps.
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by(|&a, &b| slots[b].1.bytes.cmp(&slots[a].1.bytes).then(a.cmp(&b)));
    let mut placed: Vec<usize> = vec![];
    let mut arena = 0usize;
    for &s in &order {
        let me = slots[s].1;
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .map(|&p| slots[p].1)
            .filter(|o| o.first <= me.last && me.first <= o.last)
            .map(|o| (o.offset, o.offset + o.bytes))
            .collect();
        busy.sort_unstable();
        let mut offset = 0;
        for (start, end) in busy {
            if offset + me.bytes <= start {
                break;
            }
            offset = offset.max(end);
        }
        slots[s].1.offset = offset;
        arena = arena.max(offset + me.bytes);
        placed.push(s);
    }

    // Tensors: only those some node or the graph uses.
    let used = |t: usize| {
        g.inputs.contains(&t)
            || g.outputs.contains(&t)
            || g.nodes
                .iter()
                .any(|n| n.output == t || n.inputs.contains(&Some(t)))
    };
    let arena_offset: std::collections::HashMap<usize, usize> = slots
        .iter()
        .filter(|(t, _)| *t != usize::MAX)
        .map(|(t, s)| (*t, s.offset))
        .collect();
    for t in 0..nt {
        if !used(t) {
            continue;
        }
        let tensor = &g.tensors[t];
        let data = tensor
            .data
            .as_ref()
            .map(|d| d.iter().flat_map(|v| v.to_le_bytes()).collect());
        map[t] = Some(w.tensors.len() as u32);
        w.tensors.push(TensorSpec {
            name: if keep_name(t) {
                tensor.name.clone()
            } else {
                String::new()
            },
            dtype: DType::F32,
            dims: tensor.dims.iter().map(|&d| d as u32).collect(),
            data,
            arena_offset: arena_offset.get(&t).copied().unwrap_or(0) as u32,
        });
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let scratch = match scratch_of[i] {
            Some(s) => {
                let slot = slots[s].1;
                w.tensors.push(TensorSpec {
                    name: String::new(),
                    dtype: DType::F32,
                    dims: vec![(slot.bytes / 4) as u32],
                    data: None,
                    arena_offset: slot.offset as u32,
                });
                (w.tensors.len() - 1) as u32
            }
            None => NO_TENSOR,
        };
        let inputs = n
            .inputs
            .iter()
            .map(|t| t.and_then(|t| map[t]).unwrap_or(NO_TENSOR))
            .collect();
        let (op, params) = encode(n).ok_or_else(|| {
            format!(
                "node `{}` ({}) survived the passes unlowered",
                n.name,
                n.op.label()
            )
        })?;
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
    w.arena_bytes = arena as u32;
    Ok((w.finish(), arena as u32))
}

/// Op code and parameter words, as `medwasm::ops` documents them.
fn encode(n: &super::ir::Node) -> Option<(OpCode, Vec<u32>)> {
    let win_words = |win: &super::ir::Window| {
        vec![
            win.kernel[0] as u32,
            win.kernel[1] as u32,
            win.strides[0] as u32,
            win.strides[1] as u32,
            win.dilations[0] as u32,
            win.dilations[1] as u32,
            win.pads[0] as u32,
            win.pads[1] as u32,
            win.pads[2] as u32,
            win.pads[3] as u32,
        ]
    };
    Some(match &n.op {
        Op::Gemm { act } => (OpCode::Gemm, act.encode().to_vec()),
        Op::Conv { win, group, act } => {
            let mut p = win_words(win);
            p.push(*group as u32);
            p.extend(act.encode());
            (OpCode::Conv, p)
        }
        Op::Binary { op, act } => {
            let mut p = vec![op.encode()];
            p.extend(act.encode());
            (OpCode::Binary, p)
        }
        Op::Act(act) => (OpCode::Activation, act.encode().to_vec()),
        Op::Softmax { start, end } => (OpCode::Softmax, vec![*start as u32, *end as u32]),
        Op::Pool {
            max,
            win,
            count_include_pad,
        } => {
            let mut p = win_words(win);
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
        Op::Transpose { perm } => (OpCode::Transpose, perm.iter().map(|&p| p as u32).collect()),
        Op::Concat { axis } => (OpCode::Concat, vec![*axis as u32]),
        Op::Pad { mode, begin, end } => {
            let (m, v) = match mode {
                medwasm::kernels::misc::PadMode::Constant(v) => (0, v.to_bits()),
                medwasm::kernels::misc::PadMode::Reflect => (1, 0),
                medwasm::kernels::misc::PadMode::Edge => (2, 0),
            };
            let mut p = vec![m, v];
            p.extend(begin.iter().map(|&b| b as u32));
            p.extend(end.iter().map(|&e| e as u32));
            (OpCode::Pad, p)
        }
        Op::Copy => (OpCode::Copy, vec![]),
        // Folded or lowered to Mul + Add by the passes; never encoded.
        Op::ChannelAffine { .. } => return None,
    })
}
