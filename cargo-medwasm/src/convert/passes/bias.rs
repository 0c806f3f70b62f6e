//! A constant bias Add after a bias-less Gemm (ONNX MatMul + Add) becomes the
//! Gemm's bias operand.

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;

use crate::convert::ir::{Data, Graph, Op, Tensor};

/// `Add(Gemm(x), b)` with `b` constant along the last axis becomes the Gemm's bias.
pub fn fuse_bias(g: &mut Graph) -> usize {
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
        let bias_like = ot.f32s().is_some()
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
        let bias_data = ot.f32s().unwrap_or_default().to_vec();
        let b = g.add_tensor(Tensor::constant(
            format!("{}.bias", g.nodes[i].name),
            vec![cols],
            Data::F32(bias_data),
        ));
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

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;
    use medwasm::kernels::binary::BinOp;

    use super::fuse_bias;
    use crate::convert::ir::{Graph, Op};
    use crate::convert::testing::{assert_close, constant, input, run_graph};

    const ADD: Op = Op::Binary {
        op: BinOp::Add,
        act: Act::None,
    };

    /// x [2, 2] · w [2, 3] → Add(c) with c of shape `cdims`.
    fn matmul_add(g: &mut Graph, cdims: &[usize], c: Vec<f32>) -> (usize, usize) {
        let x = input(g, "x", &[2, 2]);
        let w = constant(g, "w", &[2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.0]);
        let y = g.add_node(
            "mm",
            Op::Gemm { act: Act::None },
            vec![Some(x), Some(w), None],
            vec![2, 3],
        );
        let c = constant(g, "c", cdims, c);
        let z = g.add_node("add", ADD, vec![Some(c), Some(y)], vec![2, 3]);
        (y, z)
    }

    const X: [f32; 4] = [1.0, 2.0, -3.0, 0.5];

    fn reference(c: impl Fn(usize, usize) -> f32) -> Vec<f32> {
        let w = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]];
        let mut y = vec![];
        for r in 0..2 {
            for k in 0..3 {
                y.push(X[r * 2] * w[0][k] + X[r * 2 + 1] * w[1][k] + c(r, k));
            }
        }
        y
    }

    #[test]
    fn a_constant_row_added_to_a_gemm_becomes_its_bias() {
        let mut g = Graph::default();
        let (_, z) = matmul_add(&mut g, &[1, 3], vec![0.5, -1.0, 2.0]);
        g.outputs.push(z);
        assert_eq!(fuse_bias(&mut g), 1);
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.nodes[0].output, z);
        let out = run_graph(&g, &[X.to_vec()]);
        assert_close(&out[0], &reference(|_, k| [0.5, -1.0, 2.0][k]), 1e-6);
    }

    #[test]
    fn a_full_matrix_or_a_shared_gemm_output_stays_an_add() {
        let mut g = Graph::default();
        let c = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (_, z) = matmul_add(&mut g, &[2, 3], c.clone());
        g.outputs.push(z);
        assert_eq!(fuse_bias(&mut g), 0, "a [2, 3] addend is not a bias");
        let out = run_graph(&g, &[X.to_vec()]);
        assert_close(&out[0], &reference(|r, k| c[r * 3 + k]), 1e-6);

        let mut g = Graph::default();
        let (y, z) = matmul_add(&mut g, &[3], vec![0.5, -1.0, 2.0]);
        g.outputs.extend([z, y]);
        assert_eq!(
            fuse_bias(&mut g),
            0,
            "the Gemm output is also a graph output"
        );
    }
}
