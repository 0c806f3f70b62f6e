//! f32 nodes the runtime has no kernel of their own for, rewritten with kernels it
//! has: HardSwish as `(x · clip(x + 3, 0, 6)) / 6` (TFLite's float reference, in its
//! order of operations), a Softmax with `beta ≠ 1` as a Mul by beta first.
//! int8 nodes are left for the int8 back end.

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;

use crate::convert::ir::{DType, Data, Graph, Node, Op, Tensor};

/// Rewrites every f32 HardSwish and Softmax with a beta; returns how many.
pub fn lower_f32(g: &mut Graph) -> usize {
    let mut lowered = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        let f32_only = n
            .inputs
            .iter()
            .flatten()
            .chain([&n.output])
            .all(|&t| g.tensors[t].dtype == DType::F32 && g.tensors[t].quant.is_none());
        let (Some(x), true) = (n.inputs.first().copied().flatten(), f32_only) else {
            i += 1;
            continue;
        };
        match n.op {
            Op::HardSwish => {
                hard_swish(g, i, x);
                lowered += 1;
                i += 3;
            }
            Op::Softmax { start, end, beta } if beta != 1.0 => {
                let scaled = binary(g, i, BinOp::Mul, Act::None, x, beta, "beta");
                g.nodes[i + 1].inputs[0] = Some(scaled);
                g.nodes[i + 1].op = Op::Softmax {
                    start,
                    end,
                    beta: 1.0,
                };
                lowered += 1;
                i += 2;
            }
            _ => i += 1,
        }
    }
    lowered
}

/// Inserts before node `i` a node computing `op(x, c)` (then `act`) with the scalar
/// constant `c`; returns its output.
fn binary(g: &mut Graph, i: usize, op: BinOp, act: Act, x: usize, c: f32, what: &str) -> usize {
    let name = format!("{}.{what}", g.nodes[i].name);
    let k = g.add_tensor(Tensor::constant(
        format!("{name}.k"),
        vec![1],
        Data::F32(vec![c]),
    ));
    let out = g.add_tensor(Tensor::activation(
        name.clone(),
        g.tensors[x].dims.clone(),
        DType::F32,
    ));
    g.nodes.insert(
        i,
        Node {
            name,
            op: Op::Binary { op, act },
            inputs: vec![Some(x), Some(k)],
            output: out,
        },
    );
    out
}

/// HardSwish at node `i` on `x` → `a = clip(x + 3, 0, 6)`, `b = x · a`, `y = b / 6`.
fn hard_swish(g: &mut Graph, i: usize, x: usize) {
    let relu6 = binary(g, i, BinOp::Add, Act::Clip(0.0, 6.0), x, 3.0, "plus3");
    let name = g.nodes[i + 1].name.clone();
    let prod = g.add_tensor(Tensor::activation(
        format!("{name}.times_x"),
        g.tensors[x].dims.clone(),
        DType::F32,
    ));
    g.nodes.insert(
        i + 1,
        Node {
            name: format!("{name}.times_x"),
            op: Op::Binary {
                op: BinOp::Mul,
                act: Act::None,
            },
            inputs: vec![Some(x), Some(relu6)],
            output: prod,
        },
    );
    let six = g.add_tensor(Tensor::constant(
        format!("{name}.six"),
        vec![1],
        Data::F32(vec![6.0]),
    ));
    let node = &mut g.nodes[i + 2];
    node.op = Op::Binary {
        op: BinOp::Div,
        act: Act::None,
    };
    node.inputs = vec![Some(prod), Some(six)];
}

#[cfg(test)]
mod tests {
    use super::lower_f32;
    use crate::convert::ir::{Graph, Op};
    use crate::convert::testing::{assert_close, input, run_graph};

    #[test]
    fn hard_swish_runs_as_add_mul_div() {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 6]);
        let y = g.add_node("hs", Op::HardSwish, vec![Some(x)], vec![1, 6]);
        g.outputs.push(y);
        assert_eq!(lower_f32(&mut g), 1);
        let xs = vec![-4.0, -3.0, -1.5, 0.0, 1.0, 3.5];
        let want: Vec<f32> = xs
            .iter()
            .map(|&v: &f32| v * (v + 3.0).clamp(0.0, 6.0) / 6.0)
            .collect();
        assert_close(&run_graph(&g, &[xs])[0], &want, 0.0);
    }

    #[test]
    fn a_softmax_beta_scales_its_input() {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 3]);
        let softmax = Op::Softmax {
            start: 1,
            end: 2,
            beta: 0.5,
        };
        let y = g.add_node("sm", softmax, vec![Some(x)], vec![1, 3]);
        g.outputs.push(y);
        assert_eq!(lower_f32(&mut g), 1);
        let xs = [1.0f32, 2.0, 4.0];
        let e: Vec<f32> = xs.iter().map(|v| (0.5 * (v - 4.0)).exp()).collect();
        let s: f32 = e.iter().sum();
        let want: Vec<f32> = e.iter().map(|v| v / s).collect();
        assert_close(&run_graph(&g, &[xs.to_vec()])[0], &want, 1e-6);
    }
}
