//! Graph rewrites before planning: fold BatchNormalization, fuse bias adds and
//! activations, drop dead nodes, and make sure every graph output is computed.

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;

use super::ir::{Graph, Node, Op, Tensor};

/// Runs every pass; returns notes on what changed.
pub fn run(g: &mut Graph) -> Vec<String> {
    let mut notes = vec![];
    let folded = fold_channel_affine(g);
    if folded > 0 {
        notes.push(format!(
            "{folded} BatchNormalization folded into the preceding Conv/Gemm"
        ));
    }
    let biases = fuse_bias(g);
    if biases > 0 {
        notes.push(format!(
            "{biases} bias Add fused into the preceding MatMul/Gemm"
        ));
    }
    let acts = fuse_activations(g);
    if acts > 0 {
        notes.push(format!("{acts} activations fused into the preceding op"));
    }
    materialize_outputs(g);
    drop_dead(g);
    notes
}

fn producer(g: &Graph, t: usize) -> Option<usize> {
    g.nodes.iter().position(|n| n.output == t)
}

/// BatchNormalization after a Conv/Gemm whose output has no other reader becomes
/// part of its weights; elsewhere it is lowered to a Mul and an Add.
fn fold_channel_affine(g: &mut Graph) -> usize {
    let mut folded = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Op::ChannelAffine { scale, shift } = g.nodes[i].op.clone() else {
            i += 1;
            continue;
        };
        let Some(x) = g.nodes[i].inputs[0] else {
            i += 1;
            continue;
        };
        let prod = producer(g, x).filter(|&p| {
            g.uses(x) == 1 && matches!(g.nodes[p].op, Op::Conv { .. } | Op::Gemm { .. })
        });
        if let Some(p) = prod
            && fold_into(g, p, &scale, &shift)
        {
            let out = g.nodes[i].output;
            g.nodes.remove(i);
            g.rewire(out, x);
            folded += 1;
            continue;
        }
        // Lower: y = x * scale[c] + shift[c], with constants shaped [C, 1, ...].
        let rank = g.tensors[x].dims.len();
        let mut cdims = vec![scale.len()];
        cdims.extend(std::iter::repeat_n(1, rank.saturating_sub(2)));
        let name = g.nodes[i].name.clone();
        let s = g.add_tensor(Tensor {
            name: format!("{name}.scale"),
            dims: cdims.clone(),
            data: Some(scale),
            ..Default::default()
        });
        let b = g.add_tensor(Tensor {
            name: format!("{name}.shift"),
            dims: cdims,
            data: Some(shift),
            ..Default::default()
        });
        let mid = g.add_tensor(Tensor {
            name: format!("{name}.scaled"),
            dims: g.tensors[x].dims.clone(),
            ..Default::default()
        });
        let out = g.nodes[i].output;
        g.nodes[i] = Node {
            name: format!("{name}.mul"),
            op: Op::Binary {
                op: BinOp::Mul,
                act: Act::None,
            },
            inputs: vec![Some(x), Some(s)],
            output: mid,
        };
        g.nodes.insert(
            i + 1,
            Node {
                name: format!("{name}.add"),
                op: Op::Binary {
                    op: BinOp::Add,
                    act: Act::None,
                },
                inputs: vec![Some(mid), Some(b)],
                output: out,
            },
        );
        i += 2;
    }
    folded
}

/// Scales output channel `c` of Conv/Gemm node `p` by `scale[c]` and adds `shift[c]`
/// to its bias. The weights are copied, not changed in place, in case they are shared.
fn fold_into(g: &mut Graph, p: usize, scale: &[f32], shift: &[f32]) -> bool {
    let node = &g.nodes[p];
    if node.op.act() != Some(Act::None) {
        return false;
    }
    let Some(w) = node.inputs.get(1).copied().flatten() else {
        return false;
    };
    let Some(wdata) = g.tensors[w].data.clone() else {
        return false;
    };
    let wdims = g.tensors[w].dims.clone();
    let c = scale.len();
    let conv = matches!(node.op, Op::Conv { .. });
    let out_channels = if conv { wdims[0] } else { wdims[1] };
    if out_channels != c {
        return false;
    }
    let mut neww = wdata;
    if conv {
        let per = neww.len() / c;
        for (ch, chunk) in neww.chunks_exact_mut(per).enumerate() {
            chunk.iter_mut().for_each(|v| *v *= scale[ch]);
        }
    } else {
        for row in neww.chunks_exact_mut(c) {
            row.iter_mut().zip(scale).for_each(|(v, s)| *v *= s);
        }
    }
    let bias = node
        .inputs
        .get(2)
        .copied()
        .flatten()
        .and_then(|b| g.tensors[b].data.clone())
        .unwrap_or_else(|| vec![0.0; c]);
    let newb: Vec<f32> = (0..c).map(|ch| bias[ch] * scale[ch] + shift[ch]).collect();
    let name = node.name.clone();
    let wid = g.add_tensor(Tensor {
        name: format!("{name}.W.bn"),
        dims: wdims,
        data: Some(neww),
        ..Default::default()
    });
    let bid = g.add_tensor(Tensor {
        name: format!("{name}.B.bn"),
        dims: vec![c],
        data: Some(newb),
        ..Default::default()
    });
    let node = &mut g.nodes[p];
    node.inputs.resize(3, None);
    node.inputs[1] = Some(wid);
    node.inputs[2] = Some(bid);
    true
}

/// `Add(Gemm(x), b)` with `b` constant along the last axis becomes the Gemm's bias.
fn fuse_bias(g: &mut Graph) -> usize {
    let mut fused = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        let is_plain_gemm = matches!(n.op, Op::Gemm { act: Act::None })
            && n.inputs.get(2).copied().flatten().is_none();
        let out = n.output;
        if !is_plain_gemm || g.uses(out) != 1 {
            i += 1;
            continue;
        }
        let cols = *g.tensors[out].dims.last().unwrap_or(&0);
        let consumers = g.consumers(out);
        let Some(&c) = consumers.first() else {
            i += 1;
            continue;
        };
        let cn = &g.nodes[c];
        let other = match cn.inputs.as_slice() {
            [Some(a), Some(b)] if *a == out => *b,
            [Some(a), Some(b)] if *b == out => *a,
            _ => {
                i += 1;
                continue;
            }
        };
        let ot = &g.tensors[other];
        let bias_like = ot.data.is_some()
            && ot.len() == cols
            && ot.dims.last() == Some(&cols)
            && ot.dims.len() <= g.tensors[out].dims.len();
        if !matches!(
            cn.op,
            Op::Binary {
                op: BinOp::Add,
                act: Act::None
            }
        ) || !bias_like
        {
            i += 1;
            continue;
        }
        let bias_data = ot.data.clone().unwrap_or_default();
        let b = g.add_tensor(Tensor {
            name: format!("{}.bias", g.nodes[i].name),
            dims: vec![cols],
            data: Some(bias_data),
            ..Default::default()
        });
        let add_out = g.nodes[c].output;
        g.nodes[i].inputs.resize(3, None);
        g.nodes[i].inputs[2] = Some(b);
        g.nodes[i].output = add_out;
        g.nodes.remove(c);
        fused += 1;
        i += 1;
    }
    fused
}

/// An activation right after an op with an activation slot joins it, when the
/// intermediate has no other reader.
fn fuse_activations(g: &mut Graph) -> usize {
    let mut fused = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Op::Act(act) = g.nodes[i].op else {
            i += 1;
            continue;
        };
        let Some(x) = g.nodes[i].inputs[0] else {
            i += 1;
            continue;
        };
        match producer(g, x) {
            Some(p) if g.uses(x) == 1 && g.nodes[p].op.act() == Some(Act::None) => {
                g.nodes[p].op.fuse_act(act);
                g.nodes[p].output = g.nodes[i].output;
                g.nodes.remove(i);
                fused += 1;
            }
            _ => i += 1,
        }
    }
    fused
}

/// A graph output that is a constant or a graph input (after aliasing) gets a Copy.
fn materialize_outputs(g: &mut Graph) {
    for k in 0..g.outputs.len() {
        let t = g.outputs[k];
        if g.tensors[t].is_const() || g.inputs.contains(&t) || g.outputs[..k].contains(&t) {
            let name = g.tensors[t].name.clone();
            let out = g.add_tensor(Tensor {
                name: name.clone(),
                dims: g.tensors[t].dims.clone(),
                ..Default::default()
            });
            g.nodes.push(Node {
                name: format!("{name}.copy"),
                op: Op::Copy,
                inputs: vec![Some(t)],
                output: out,
            });
            g.outputs[k] = out;
        }
    }
}

/// Removes nodes whose output nobody reads.
fn drop_dead(g: &mut Graph) {
    loop {
        let dead = g.nodes.iter().position(|n| g.uses(n.output) == 0);
        match dead {
            Some(i) => {
                g.nodes.remove(i);
            }
            None => break,
        }
    }
}
