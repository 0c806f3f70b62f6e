//! Transposes that undo each other go. After the layout lowering every NHWC Conv
//! and pool sits between a Transpose to NCHW and one back; between two such nodes
//! the pair cancels. Rules, applied until none fires:
//! - a Transpose of a Transpose is one Transpose of the composed permutation, or
//!   nothing when that is the identity;
//! - a Transpose that keeps the order of the axes longer than 1 moves no element:
//!   it is a Copy (a reshape);
//! - an elementwise node (activation, Binary, Quantize, Dequantize, HardSwish)
//!   whose runtime inputs all come from Transposes of one permutation that nothing
//!   else reads runs before the Transpose instead, so the Transpose can meet the
//!   next node's inverse one. Constant operands are transposed at conversion.
//!
//! No rule adds a Transpose: the last one replaces at least one.

use crate::convert::ir::{Data, Graph, Op, Tensor, permutation};

/// Runs the rules to a fixed point; returns how many Transposes went (those that
/// became Copies included).
pub fn cancel_transposes(g: &mut Graph) -> usize {
    let count = |g: &Graph| {
        g.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Transpose { .. }))
            .count()
    };
    let before = count(g);
    // Each round removes a Transpose or moves one past a node; both are bounded.
    for _ in 0..4 * g.nodes.len() + 4 {
        let changed = to_copy(g) || compose(g) || sink(g);
        super::cleanup::drop_dead(g);
        if !changed {
            break;
        }
    }
    before.saturating_sub(count(g))
}

/// The permutation of Transpose node `i`, if it is one.
fn perm_of(g: &Graph, i: usize) -> Option<Vec<usize>> {
    match &g.nodes[i].op {
        Op::Transpose { perm } => Some(perm.clone()),
        _ => None,
    }
}

/// A Transpose that moves only axes of size 1 among the others becomes a Copy.
fn to_copy(g: &mut Graph) -> bool {
    for i in 0..g.nodes.len() {
        let (Some(perm), Some(x)) = (perm_of(g, i), g.nodes[i].inputs[0]) else {
            continue;
        };
        let dims = &g.tensors[x].dims;
        let order: Vec<usize> = perm.iter().copied().filter(|&a| dims[a] != 1).collect();
        if order.windows(2).all(|w| w[0] < w[1]) {
            g.nodes[i].op = Op::Copy;
            return true;
        }
    }
    false
}

/// Transpose(Transpose(z, a), b) = Transpose(z, a∘b); the identity is a Copy of
/// `z`, or nothing when the result is not a graph output.
fn compose(g: &mut Graph) -> bool {
    for i in 0..g.nodes.len() {
        let (Some(pb), Some(y)) = (perm_of(g, i), g.nodes[i].inputs[0]) else {
            continue;
        };
        let Some(p) = g.producer(y) else { continue };
        let (Some(pa), Some(z)) = (perm_of(g, p), g.nodes[p].inputs[0]) else {
            continue;
        };
        let composed: Vec<usize> = pb.iter().map(|&b| pa[b]).collect();
        let identity = composed.iter().enumerate().all(|(k, &v)| k == v);
        let out = g.nodes[i].output;
        if identity && !g.outputs.contains(&out) {
            g.nodes.remove(i);
            g.rewire(out, z);
        } else {
            g.nodes[i].inputs[0] = Some(z);
            g.nodes[i].op = if identity {
                Op::Copy
            } else {
                Op::Transpose { perm: composed }
            };
        }
        return true;
    }
    false
}

/// Moves a Transpose from the inputs of an elementwise node to its output.
fn sink(g: &mut Graph) -> bool {
    for i in 0..g.nodes.len() {
        let elementwise = matches!(
            g.nodes[i].op,
            Op::Act(_) | Op::Binary { .. } | Op::Quantize | Op::Dequantize | Op::HardSwish
        );
        if !elementwise {
            continue;
        }
        let out = g.nodes[i].output;
        let rank = g.tensors[out].dims.len();
        // Every runtime input: the output of a Transpose of one permutation, read by
        // this node alone; constants (transposed below) may broadcast.
        let mut perm: Option<Vec<usize>> = None;
        let mut sources = vec![];
        let mut ok = true;
        for &t in g.nodes[i].inputs.iter().flatten() {
            if g.tensors[t].is_const() {
                continue;
            }
            let transposed = g.producer(t).and_then(|p| {
                let q = perm_of(g, p)?;
                (g.uses(t) == 1 && q.len() == rank).then(|| (q, g.nodes[p].inputs[0]))
            });
            match transposed {
                Some((q, Some(src))) if perm.as_ref().is_none_or(|p| *p == q) => {
                    perm = Some(q);
                    sources.push((t, src));
                }
                _ => ok = false,
            }
        }
        let Some(perm) = perm.filter(|_| ok) else {
            continue;
        };
        // inverse[perm[k]] = k: the constants and the output go back through it.
        let mut inverse = vec![0; rank];
        for (k, &p) in perm.iter().enumerate() {
            inverse[p] = k;
        }
        let mut inputs = g.nodes[i].inputs.clone();
        for slot in inputs.iter_mut().flatten() {
            if let Some(&(_, src)) = sources.iter().find(|(t, _)| t == slot) {
                *slot = src;
            } else if let Some(c) = permuted_constant(g, *slot, &inverse, rank) {
                *slot = c;
            } else {
                ok = false;
            }
        }
        if !ok {
            continue;
        }
        let t = &g.tensors[out];
        let (inner_dims, _) = permutation(&t.dims, &inverse);
        let inner = g.add_tensor(Tensor {
            name: format!("{}.untransposed", g.nodes[i].name),
            dims: inner_dims,
            data: None,
            ..t.clone()
        });
        let name = g.nodes[i].name.clone();
        g.nodes[i].inputs = inputs;
        g.nodes[i].output = inner;
        g.nodes.insert(
            i + 1,
            crate::convert::ir::Node {
                name: format!("{name}.transpose"),
                op: Op::Transpose { perm },
                inputs: vec![Some(inner)],
                output: out,
            },
        );
        return true;
    }
    false
}

/// Constant `c`, broadcast to `rank` axes, transposed by `perm`, as a new constant.
fn permuted_constant(g: &mut Graph, c: usize, perm: &[usize], rank: usize) -> Option<usize> {
    let t = &g.tensors[c];
    let data: &Data = t.data.as_ref()?;
    if t.dims.len() > rank || t.quant.as_ref().is_some_and(|q| q.axis.is_some()) {
        return None;
    }
    let mut dims = vec![1; rank - t.dims.len()];
    dims.extend(&t.dims);
    let (new_dims, idx) = permutation(&dims, perm);
    let name = format!("{}.transposed", t.name);
    let quant = t.quant.clone();
    let id = g.add_tensor(Tensor::constant(name, new_dims, data.select(&idx)));
    g.tensors[id].quant = quant;
    Some(id)
}

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;
    use medwasm::kernels::binary::BinOp;

    use super::cancel_transposes;
    use crate::convert::ir::{Graph, Op};
    use crate::convert::testing::{assert_close, constant, input, run_graph};

    fn tr(g: &mut Graph, name: &str, x: usize, perm: &[usize], dims: &[usize]) -> usize {
        g.add_node(
            name,
            Op::Transpose {
                perm: perm.to_vec(),
            },
            vec![Some(x)],
            dims.to_vec(),
        )
    }

    fn labels(g: &Graph) -> Vec<String> {
        g.nodes.iter().map(|n| n.op.label()).collect()
    }

    /// x [1, 2, 3, 2] NCHW-ish values, run before and after the pass.
    fn same_results(g: &Graph, before: &Graph, inputs: &[Vec<f32>]) {
        let want = run_graph(before, inputs);
        let got = run_graph(g, inputs);
        for (a, b) in got.iter().zip(&want) {
            assert_close(a, b, 0.0);
        }
    }

    #[test]
    fn inverse_pairs_cancel_through_elementwise_nodes() {
        // NCHW x → NHWC → relu → + c (NHWC constant) → NCHW → sigmoid.
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 2, 3, 2]);
        let a = tr(&mut g, "t1", x, &[0, 2, 3, 1], &[1, 3, 2, 2]);
        let r = g.add_node("relu", Op::Act(Act::Relu), vec![Some(a)], vec![1, 3, 2, 2]);
        let c = constant(&mut g, "c", &[2, 2], vec![1.0, -2.0, 0.5, 3.0]);
        let s = g.add_node(
            "add",
            Op::Binary {
                op: BinOp::Add,
                act: Act::None,
            },
            vec![Some(r), Some(c)],
            vec![1, 3, 2, 2],
        );
        let b = tr(&mut g, "t2", s, &[0, 3, 1, 2], &[1, 2, 3, 2]);
        let y = g.add_node(
            "sig",
            Op::Act(Act::Sigmoid),
            vec![Some(b)],
            vec![1, 2, 3, 2],
        );
        g.outputs.push(y);
        let before = g.clone();
        assert_eq!(cancel_transposes(&mut g), 2);
        assert_eq!(labels(&g), ["Relu", "Add", "Sigmoid"]);
        let xs: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 3.0).collect();
        same_results(&g, &before, &[xs]);
    }

    #[test]
    fn a_residual_add_of_two_transposed_branches_sinks_once() {
        // Two NHWC branches from NCHW tensors meet in an Add, then go back to NCHW.
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 2, 2, 3]);
        let p = g.add_node("p", Op::Act(Act::Relu), vec![Some(x)], vec![1, 2, 2, 3]);
        let q = g.add_node("q", Op::Act(Act::Tanh), vec![Some(x)], vec![1, 2, 2, 3]);
        let a = tr(&mut g, "ta", p, &[0, 2, 3, 1], &[1, 2, 3, 2]);
        let b = tr(&mut g, "tb", q, &[0, 2, 3, 1], &[1, 2, 3, 2]);
        let s = g.add_node(
            "add",
            Op::Binary {
                op: BinOp::Add,
                act: Act::Relu,
            },
            vec![Some(a), Some(b)],
            vec![1, 2, 3, 2],
        );
        let y = tr(&mut g, "back", s, &[0, 3, 1, 2], &[1, 2, 2, 3]);
        g.outputs.push(y);
        let before = g.clone();
        assert_eq!(cancel_transposes(&mut g), 3, "{:?}", labels(&g));
        // The graph output keeps its own tensor: the identity is a Copy.
        assert_eq!(labels(&g), ["Relu", "Tanh", "Add+Relu", "Copy"]);
        let xs: Vec<f32> = (0..12).map(|i| i as f32 * 0.3 - 1.5).collect();
        same_results(&g, &before, &[xs]);
    }

    #[test]
    fn a_transpose_read_twice_stays_and_unit_axes_become_a_copy() {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 4, 1, 1]);
        // [1, 4, 1, 1] → [1, 1, 1, 4]: only unit axes move, a reshape.
        let a = tr(&mut g, "t", x, &[0, 2, 3, 1], &[1, 1, 1, 4]);
        let y = g.add_node("relu", Op::Act(Act::Relu), vec![Some(a)], vec![1, 1, 1, 4]);
        g.outputs.push(y);
        assert_eq!(cancel_transposes(&mut g), 1);
        assert_eq!(labels(&g), ["Copy", "Relu"]);

        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 2, 3, 2]);
        let a = tr(&mut g, "t", x, &[0, 2, 3, 1], &[1, 3, 2, 2]);
        let r = g.add_node("relu", Op::Act(Act::Relu), vec![Some(a)], vec![1, 3, 2, 2]);
        g.outputs.extend([r, a]);
        assert_eq!(
            cancel_transposes(&mut g),
            0,
            "the transposed tensor is also an output"
        );
        assert_eq!(labels(&g), ["Transpose", "Relu"]);
    }
}
