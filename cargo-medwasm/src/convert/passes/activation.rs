//! An activation after an op with a free activation slot (Conv, Gemm, Binary) runs
//! inside that op. On int8 tensors only a clamp fuses (RELU, RELU6, a clip), and
//! only when the op's output is quantized as the activation's: an int8 activation
//! between differently quantized tensors requantizes, which the fused clamp would
//! skip (TFLite rounds twice there, so fusing would not be bit-exact).

use medwasm::kernels::act::Act;

use crate::convert::ir::{Graph, Op};

/// An activation right after an op with an activation slot joins it, when the
/// intermediate has no other reader.
pub fn fuse_activations(g: &mut Graph) -> usize {
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
        let out = g.nodes[i].output;
        let (tx, ty) = (&g.tensors[x], &g.tensors[out]);
        let quantized = tx.quant.is_some() || ty.quant.is_some();
        let clamp = matches!(act, Act::Relu | Act::Clip(..));
        let fusable = !quantized || (clamp && tx.dtype == ty.dtype && tx.quant == ty.quant);
        match g.producer(x) {
            Some(p) if fusable && g.uses(x) == 1 && g.nodes[p].op.act() == Some(Act::None) => {
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

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;
    use medwasm::kernels::binary::BinOp;

    use super::fuse_activations;
    use crate::convert::ir::{Graph, Op};
    use crate::convert::testing::{assert_close, constant, input, run_graph};

    /// x [1, 4] + c → `first` → `second`.
    fn add_acts(g: &mut Graph, first: Act, second: Act) -> (usize, usize, usize) {
        let x = input(g, "x", &[1, 4]);
        let c = constant(g, "c", &[4], vec![-1.0, 0.0, 1.0, 2.0]);
        let s = g.add_node(
            "add",
            Op::Binary {
                op: BinOp::Add,
                act: Act::None,
            },
            vec![Some(x), Some(c)],
            vec![1, 4],
        );
        let a = g.add_node("a1", Op::Act(first), vec![Some(s)], vec![1, 4]);
        let b = g.add_node("a2", Op::Act(second), vec![Some(a)], vec![1, 4]);
        (s, a, b)
    }

    #[test]
    fn joins_a_free_slot_once_and_leaves_the_second_activation() {
        let mut g = Graph::default();
        let (_, _, b) = add_acts(&mut g, Act::Relu, Act::Clip(0.0, 1.5));
        g.outputs.push(b);
        assert_eq!(fuse_activations(&mut g), 1);
        let labels: Vec<String> = g.nodes.iter().map(|n| n.op.label()).collect();
        assert_eq!(labels, ["Add+Relu", "Clip"]);
        let x = vec![0.5, -0.5, 2.0, -4.0];
        // x + c = [-0.5, -0.5, 3, -2] → relu → [0, 0, 3, 0] → clip → [0, 0, 1.5, 0]
        assert_close(&run_graph(&g, &[x])[0], &[0.0, 0.0, 1.5, 0.0], 0.0);
    }

    #[test]
    fn does_not_fuse_when_the_input_has_another_reader() {
        let mut g = Graph::default();
        let (s, _, b) = add_acts(&mut g, Act::Relu, Act::Sigmoid);
        g.outputs.extend([b, s]);
        assert_eq!(fuse_activations(&mut g), 0);
        assert_eq!(g.nodes.len(), 3);
    }
}
