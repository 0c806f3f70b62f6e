//! Graph outputs that no node computes get a Copy; nodes nobody reads go.

use crate::convert::ir::{Graph, Node, Op, Tensor};

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

    use super::{drop_dead, materialize_outputs};
    use crate::convert::ir::{Graph, Op};
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
}
