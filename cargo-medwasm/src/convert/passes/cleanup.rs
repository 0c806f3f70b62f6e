//! Copy chains fold into one Copy (or none); graph outputs that no node computes
//! get a Copy; nodes nobody reads go.

use crate::convert::ir::{Graph, Node, Op, Tensor, TensorId};

/// Whether a Copy from `a` to `b` moves values unchanged: same element type and
/// quantization (a Copy never requantizes; the requantize pass put a Quantize
/// where the model's differ).
fn same_values(g: &Graph, a: TensorId, b: TensorId) -> bool {
    let (a, b) = (&g.tensors[a], &g.tensors[b]);
    a.dtype == b.dtype && a.quant == b.quant
}

/// Folds chains of Copy nodes (reshapes, and Transposes that only move axes of
/// size 1): `Copy(Copy(x))` reads `x` directly, and a Copy back to its input's
/// own shape goes, its readers reading the input. tf2onnx writes a Reshape next to
/// each layout Transpose (NHWC ↔ NCHW around a model's convolutions); once the
/// int8 kernels run NHWC those cancel into such chains, which the `.tflite`
/// original never had. Returns the number of Copy nodes made redundant.
pub fn fold_copies(g: &mut Graph) -> usize {
    let copies = |g: &Graph| g.nodes.iter().filter(|n| n.op == Op::Copy).count();
    let before = copies(g);
    loop {
        // `Copy(Copy(x))`: the second reads `x`; the first goes if nobody else reads it.
        let chained = (0..g.nodes.len()).find_map(|i| {
            let n = &g.nodes[i];
            let t = (n.op == Op::Copy).then_some(*n.inputs.first()?)??;
            let p = &g.nodes[g.producer(t)?];
            let x = (p.op == Op::Copy).then_some(*p.inputs.first()?)??;
            (same_values(g, x, t) && same_values(g, t, n.output)).then_some((i, x))
        });
        if let Some((i, x)) = chained {
            g.nodes[i].inputs[0] = Some(x);
            let dead = g
                .nodes
                .iter()
                .position(|m| m.op == Op::Copy && g.uses(m.output) == 0);
            if let Some(d) = dead {
                g.nodes.remove(d);
            }
            continue;
        }
        // A Copy to its input's own shape: its readers read the input. A graph
        // output keeps its Copy (every output is its own arena tensor).
        let identity = (0..g.nodes.len()).find_map(|i| {
            let n = &g.nodes[i];
            let x = (n.op == Op::Copy).then_some(*n.inputs.first()?)??;
            (g.tensors[x].dims == g.tensors[n.output].dims
                && same_values(g, x, n.output)
                && !g.outputs.contains(&n.output))
            .then_some((i, x))
        });
        match identity {
            Some((i, x)) => {
                let out = g.nodes[i].output;
                g.rewire(out, x);
                g.nodes.remove(i);
            }
            None => return before - copies(g),
        }
    }
}

/// A graph output that is a constant, a graph input or an earlier output (after
/// aliasing) gets a Copy: every output is its own arena tensor.
pub fn materialize_outputs(g: &mut Graph) {
    for k in 0..g.outputs.len() {
        let t = g.outputs[k];
        if g.tensors[t].is_const() || g.inputs.contains(&t) || g.outputs[..k].contains(&t) {
            let src = &g.tensors[t];
            let name = src.name.clone();
            let out = g.add_tensor(Tensor::activation(
                name.clone(),
                src.dims.clone(),
                src.dtype,
            ));
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
pub fn drop_dead(g: &mut Graph) {
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

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;

    use super::{drop_dead, fold_copies, materialize_outputs};
    use crate::convert::ir::{DType, Graph, Op, Quant, Tensor};
    use crate::convert::testing::{assert_close, constant, input, run_graph};

    #[test]
    fn inputs_constants_and_repeated_outputs_get_their_own_copy() {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 3]);
        let c = constant(&mut g, "c", &[1, 3], vec![7.0, 8.0, 9.0]);
        let r = g.add_node("relu", Op::Act(Act::Relu), vec![Some(x)], vec![1, 3]);
        g.outputs.extend([x, c, r, r]);
        materialize_outputs(&mut g);
        let copies = g.nodes.iter().filter(|n| n.op == Op::Copy).count();
        assert_eq!(copies, 3, "x, c and the second r");
        assert_eq!(g.outputs[2], r);
        let mut distinct = g.outputs.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
        let out = run_graph(&g, &[vec![-1.0, 0.0, 2.0]]);
        assert_close(&out[0], &[-1.0, 0.0, 2.0], 0.0);
        assert_close(&out[1], &[7.0, 8.0, 9.0], 0.0);
        assert_close(&out[2], &[0.0, 0.0, 2.0], 0.0);
        assert_close(&out[3], &[0.0, 0.0, 2.0], 0.0);
    }

    #[test]
    fn drops_chains_nobody_reads() {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 3]);
        let a = g.add_node("a", Op::Act(Act::Relu), vec![Some(x)], vec![1, 3]);
        let b = g.add_node("b", Op::Act(Act::Tanh), vec![Some(a)], vec![1, 3]);
        g.add_node("c", Op::Act(Act::Sigmoid), vec![Some(b)], vec![1, 3]);
        let kept = g.add_node("kept", Op::Act(Act::Relu), vec![Some(x)], vec![1, 3]);
        g.outputs.push(kept);
        drop_dead(&mut g);
        let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["kept"]);
    }

    /// An int8 activation with per-tensor quantization.
    fn int8(g: &mut Graph, name: &str, dims: &[usize], zp: i64) -> usize {
        g.add_tensor(Tensor {
            quant: Some(Quant {
                scale: vec![0.5],
                zero_point: vec![zp],
                axis: None,
            }),
            ..Tensor::activation(name, dims.to_vec(), DType::I8)
        })
    }

    fn copy(g: &mut Graph, name: &str, from: usize, to: usize) {
        g.nodes.push(crate::convert::ir::Node {
            name: name.into(),
            op: Op::Copy,
            inputs: vec![Some(from)],
            output: to,
        });
    }

    #[test]
    fn copy_chains_fold_into_one_copy_or_none() {
        // tf2onnx's kws_int8 after the layout passes: the input reshaped to NCHW
        // and straight back to NHWC for the first Conv, and the pooled NHWC value
        // moved to NCHW, then flattened for the fully connected layer.
        let mut g = Graph::default();
        let x = int8(&mut g, "x", &[1, 49, 10, 1], 83);
        g.inputs.push(x);
        let a = int8(&mut g, "a", &[1, 1, 49, 10], 83);
        copy(&mut g, "reshape", x, a);
        let b = int8(&mut g, "b", &[1, 49, 10, 1], 83);
        copy(&mut g, "to_nhwc", a, b);
        let r = int8(&mut g, "r", &[1, 49, 10, 1], 83);
        g.nodes.push(crate::convert::ir::Node {
            name: "relu".into(),
            op: Op::Act(medwasm::kernels::act::Act::Relu),
            inputs: vec![Some(b)],
            output: r,
        });
        let c = int8(&mut g, "c", &[1, 490, 1, 1], 83);
        copy(&mut g, "to_nchw", r, c);
        let d = int8(&mut g, "d", &[1, 490], 83);
        copy(&mut g, "flatten", c, d);
        g.outputs.push(d);
        assert_eq!(fold_copies(&mut g), 3);
        let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["relu", "flatten"]);
        assert_eq!(g.nodes[0].inputs, [Some(x)], "the relu reads the input");
        assert_eq!(g.nodes[1].inputs, [Some(r)]);
        assert_eq!(g.outputs, [d], "the output keeps its own tensor");

        // A Copy that would change the quantization, or a graph output's own Copy,
        // stays.
        let mut g = Graph::default();
        let x = int8(&mut g, "x", &[1, 4], 0);
        g.inputs.push(x);
        let y = int8(&mut g, "y", &[1, 4], 1);
        copy(&mut g, "requant", x, y);
        let z = int8(&mut g, "z", &[1, 4], 1);
        copy(&mut g, "out", y, z);
        g.outputs.push(z);
        assert_eq!(fold_copies(&mut g), 0);
        assert_eq!(g.nodes.len(), 2);
    }
}
