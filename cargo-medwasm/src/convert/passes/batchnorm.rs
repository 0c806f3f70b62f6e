//! BatchNormalization (a per-channel affine map on axis 1) folded into the weights
//! of a preceding Conv/Gemm, or lowered to a Mul and an Add.

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;

use crate::convert::ir::{DType, Data, Graph, Layout, Node, Op, Tensor};

/// BatchNormalization after a Conv/Gemm whose output has no other reader becomes
/// part of its weights; elsewhere it is lowered to a Mul and an Add.
pub fn fold_channel_affine(g: &mut Graph) -> usize {
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
        let prod = g.producer(x).filter(|&p| {
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
        let s = g.add_tensor(Tensor::constant(
            format!("{name}.scale"),
            cdims.clone(),
            Data::F32(scale),
        ));
        let b = g.add_tensor(Tensor::constant(
            format!("{name}.shift"),
            cdims,
            Data::F32(shift),
        ));
        let mid = g.add_tensor(Tensor::activation(
            format!("{name}.scaled"),
            g.tensors[x].dims.clone(),
            DType::F32,
        ));
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
    let Some(wdata) = g.tensors[w].f32s().map(<[f32]>::to_vec) else {
        return false;
    };
    let wdims = g.tensors[w].dims.clone();
    let c = scale.len();
    // An NHWC Conv has its channels last, not on axis 1, and its filters are OHWI
    // or 1HWO: nothing to fold into (no frontend pairs the two).
    if matches!(
        node.op,
        Op::Conv {
            layout: Layout::Nhwc,
            ..
        }
    ) {
        return false;
    }
    let conv = matches!(node.op, Op::Conv { .. });
    // BatchNormalization scales axis 1. A Conv's output channels are axis 1; a
    // Gemm's columns are its last axis, which is axis 1 only for a 2-D output (a
    // MatMul of a [N, C, K] input has its columns on axis 2).
    if !conv && g.tensors[node.output].dims.len() != 2 {
        return false;
    }
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
        .and_then(|b| g.tensors[b].f32s().map(<[f32]>::to_vec))
        .unwrap_or_else(|| vec![0.0; c]);
    let newb: Vec<f32> = (0..c).map(|ch| bias[ch] * scale[ch] + shift[ch]).collect();
    let name = node.name.clone();
    let wid = g.add_tensor(Tensor::constant(
        format!("{name}.W.bn"),
        wdims,
        Data::F32(neww),
    ));
    let bid = g.add_tensor(Tensor::constant(
        format!("{name}.B.bn"),
        vec![c],
        Data::F32(newb),
    ));
    let node = &mut g.nodes[p];
    node.inputs.resize(3, None);
    node.inputs[1] = Some(wid);
    node.inputs[2] = Some(bid);
    true
}

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;

    use super::fold_channel_affine;
    use crate::convert::ir::{Graph, Layout, Op, Window};
    use crate::convert::testing::{assert_close, constant, input, run_graph};

    const SCALE: [f32; 3] = [0.5, -2.0, 1.5];
    const SHIFT: [f32; 3] = [1.0, 0.25, -3.0];

    /// x [1, 2, 2, 2] → 1×1 Conv to 3 channels (with bias) → BatchNorm.
    fn conv_bn(g: &mut Graph) -> (usize, usize) {
        let x = input(g, "x", &[1, 2, 2, 2]);
        let w = constant(g, "w", &[3, 2, 1, 1], vec![1.0, 2.0, -1.0, 0.5, 3.0, -2.0]);
        let b = constant(g, "b", &[3], vec![0.1, -0.2, 0.3]);
        let win = Window {
            kernel: [1, 1],
            strides: [1, 1],
            dilations: [1, 1],
            pads: [0; 4],
        };
        let y = g.add_node(
            "conv",
            Op::Conv {
                win,
                group: 1,
                act: Act::None,
                layout: Layout::Nchw,
                depthwise: false,
            },
            vec![Some(x), Some(w), Some(b)],
            vec![1, 3, 2, 2],
        );
        let z = g.add_node(
            "bn",
            Op::ChannelAffine {
                scale: SCALE.to_vec(),
                shift: SHIFT.to_vec(),
            },
            vec![Some(y)],
            vec![1, 3, 2, 2],
        );
        (y, z)
    }

    /// What conv_bn computes, straight from the definition.
    fn conv_bn_reference(x: &[f32]) -> Vec<f32> {
        let w = [[1.0, 2.0], [-1.0, 0.5], [3.0, -2.0]];
        let b = [0.1, -0.2, 0.3];
        let mut y = vec![];
        for m in 0..3 {
            for p in 0..4 {
                let conv = w[m][0] * x[p] + w[m][1] * x[4 + p] + b[m];
                y.push(conv * SCALE[m] + SHIFT[m]);
            }
        }
        y
    }

    const X: [f32; 8] = [0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 3.0, -2.0];

    #[test]
    fn after_a_rank3_matmul_scales_axis_1_not_the_columns() {
        // x [1, 3, 2] · w [2, 3] gives [1, 3, 3]: 3 channels on axis 1 and, by
        // coincidence, 3 columns on axis 2. Folding would scale the columns.
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 3, 2]);
        let w = constant(&mut g, "w", &[2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.0]);
        let y = g.add_node(
            "mm",
            Op::Gemm { act: Act::None },
            vec![Some(x), Some(w), None],
            vec![1, 3, 3],
        );
        let z = g.add_node(
            "bn",
            Op::ChannelAffine {
                scale: SCALE.to_vec(),
                shift: SHIFT.to_vec(),
            },
            vec![Some(y)],
            vec![1, 3, 3],
        );
        g.outputs.push(z);
        fold_channel_affine(&mut g);
        let xv = [1.0, 2.0, -0.5, 0.25, 3.0, -1.0];
        let wv = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]];
        let mut want = vec![];
        for c in 0..3 {
            for k in 0..3 {
                let mm = xv[c * 2] * wv[0][k] + xv[c * 2 + 1] * wv[1][k];
                want.push(mm * SCALE[c] + SHIFT[c]);
            }
        }
        assert_close(&run_graph(&g, &[xv.to_vec()])[0], &want, 1e-5);
    }

    #[test]
    fn folds_into_a_2d_gemm_along_its_columns() {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[2, 2]);
        let w = constant(&mut g, "w", &[2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.0]);
        let y = g.add_node(
            "mm",
            Op::Gemm { act: Act::None },
            vec![Some(x), Some(w), None],
            vec![2, 3],
        );
        let z = g.add_node(
            "bn",
            Op::ChannelAffine {
                scale: SCALE.to_vec(),
                shift: SHIFT.to_vec(),
            },
            vec![Some(y)],
            vec![2, 3],
        );
        g.outputs.push(z);
        assert_eq!(fold_channel_affine(&mut g), 1);
        let xv = [1.0, 2.0, -0.5, 0.25];
        let wv = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]];
        let mut want = vec![];
        for r in 0..2 {
            for c in 0..3 {
                let mm = xv[r * 2] * wv[0][c] + xv[r * 2 + 1] * wv[1][c];
                want.push(mm * SCALE[c] + SHIFT[c]);
            }
        }
        assert_close(&run_graph(&g, &[xv.to_vec()])[0], &want, 1e-5);
    }

    #[test]
    fn folds_into_the_conv_weights_and_bias() {
        let mut g = Graph::default();
        let (_, z) = conv_bn(&mut g);
        g.outputs.push(z);
        assert_eq!(fold_channel_affine(&mut g), 1);
        assert_eq!(g.nodes.len(), 1);
        assert!(matches!(g.nodes[0].op, Op::Conv { .. }));
        let out = run_graph(&g, &[X.to_vec()]);
        assert_close(&out[0], &conv_bn_reference(&X), 1e-5);
    }

    #[test]
    fn is_lowered_to_mul_and_add_when_the_conv_output_has_another_reader() {
        let mut g = Graph::default();
        let (y, z) = conv_bn(&mut g);
        g.outputs.extend([z, y]);
        assert_eq!(fold_channel_affine(&mut g), 0);
        let labels: Vec<String> = g.nodes.iter().map(|n| n.op.label()).collect();
        assert_eq!(labels, ["Conv", "Mul", "Add"]);
        let out = run_graph(&g, &[X.to_vec()]);
        assert_close(&out[0], &conv_bn_reference(&X), 1e-5);
    }
}
