//! f32 NHWC Convs and pools run on the NCHW f32 kernels: each is wrapped in a
//! Transpose to NCHW before and one back to NHWC after, and its filter is re-laid
//! at conversion (OHWI → OIHW; depthwise 1HWO → OIHW with one input channel per
//! group). The transpose pass then cancels the pairs this makes between
//! neighbouring nodes.

use crate::convert::ir::{Graph, Layout, Node, Op, Tensor, permute};

/// NHWC → NCHW, as a Transpose `perm` (output axis i is input axis `perm[i]`).
pub const TO_NCHW: [usize; 4] = [0, 3, 1, 2];
/// NCHW → NHWC.
pub const TO_NHWC: [usize; 4] = [0, 2, 3, 1];

/// Lowers every f32 NHWC Conv and pool; returns how many Transposes it inserted.
/// Nodes with int8 or hybrid tensors stay NHWC: their kernels run that layout.
pub fn nhwc_to_nchw(g: &mut Graph) -> usize {
    let mut inserted = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        let nhwc = matches!(
            n.op,
            Op::Conv {
                layout: Layout::Nhwc,
                ..
            } | Op::Pool {
                layout: Layout::Nhwc,
                ..
            }
        );
        let all_f32 = n.inputs.iter().flatten().chain([&n.output]).all(|&t| {
            g.tensors[t].dtype == crate::convert::ir::DType::F32 && g.tensors[t].quant.is_none()
        });
        let x = n.inputs.first().copied().flatten();
        match x {
            Some(x) if nhwc && all_f32 && g.tensors[x].dims.len() == 4 => {
                lower(g, i, x);
                inserted += 2;
                i += 3;
            }
            _ => i += 1,
        }
    }
    inserted
}

/// Rewrites node `i` (input `x`) as Transpose → NCHW node → Transpose.
fn lower(g: &mut Graph, i: usize, x: usize) {
    let node = g.nodes[i].clone();
    let name = node.name.clone();
    let y = node.output;
    let (xd, yd) = (g.tensors[x].dims.clone(), g.tensors[y].dims.clone());
    let x_nchw = g.add_tensor(Tensor::activation(
        format!("{name}.nchw_in"),
        permute(&xd, &TO_NCHW),
        g.tensors[x].dtype,
    ));
    let y_nchw = g.add_tensor(Tensor::activation(
        format!("{name}.nchw_out"),
        permute(&yd, &TO_NCHW),
        g.tensors[y].dtype,
    ));
    let mut inputs = node.inputs.clone();
    inputs[0] = Some(x_nchw);
    let op = match node.op {
        Op::Conv {
            win,
            group,
            act,
            depthwise,
            ..
        } => {
            if let Some(w) = inputs.get(1).copied().flatten() {
                inputs[1] = Some(relay_filter(g, w, depthwise));
            }
            Op::Conv {
                win,
                group,
                act,
                layout: Layout::Nchw,
                // An NCHW depthwise Conv is a grouped Conv: the f32 kernel needs no
                // more than its OIHW filter.
                depthwise: false,
            }
        }
        Op::Pool {
            max,
            win,
            count_include_pad,
            ..
        } => Op::Pool {
            max,
            win,
            count_include_pad,
            layout: Layout::Nchw,
        },
        other => other,
    };
    let before = Node {
        name: format!("{name}.to_nchw"),
        op: Op::Transpose {
            perm: TO_NCHW.to_vec(),
        },
        inputs: vec![Some(x)],
        output: x_nchw,
    };
    let after = Node {
        name: format!("{name}.to_nhwc"),
        op: Op::Transpose {
            perm: TO_NHWC.to_vec(),
        },
        inputs: vec![Some(y_nchw)],
        output: y,
    };
    g.nodes[i] = Node {
        name,
        op,
        inputs,
        output: y_nchw,
    };
    g.nodes.insert(i, before);
    g.nodes.insert(i + 2, after);
}

/// A new constant: filter `w` re-laid as OIHW. OHWI `[O, KH, KW, I]` moves its
/// last axis to position 1; depthwise 1HWO `[1, KH, KW, O]` becomes
/// `[O, 1, KH, KW]` (one input channel per group, `group == C`).
fn relay_filter(g: &mut Graph, w: usize, depthwise: bool) -> usize {
    let t = &g.tensors[w];
    let perm: [usize; 4] = if depthwise {
        [3, 0, 1, 2]
    } else {
        [0, 3, 1, 2]
    };
    let (dims, data) = match &t.data {
        Some(d) => {
            let (dims, idx) = crate::convert::ir::permutation(&t.dims, &perm);
            (dims, d.select(&idx))
        }
        // Not a constant: the frontend refuses such filters; keep it to be reported.
        None => return w,
    };
    let name = format!("{}.oihw", t.name);
    g.add_tensor(Tensor::constant(name, dims, data))
}

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;

    use super::nhwc_to_nchw;
    use crate::convert::ir::{Data, Graph, Layout, Op, Tensor, Window};
    use crate::convert::testing::{assert_close, input, run_graph};

    /// A direct NHWC convolution, the definition the lowering must reproduce.
    fn conv_nhwc(
        x: &[f32],
        [h, w, c]: [usize; 3],
        wt: &[f32],
        [o, kh, kw, ipg]: [usize; 4],
        depthwise: bool,
        pads: [usize; 2],
    ) -> Vec<f32> {
        let (oh, ow) = (h + 2 * pads[0] + 1 - kh, w + 2 * pads[1] + 1 - kw);
        let mut y = vec![0.0; oh * ow * o];
        for oy in 0..oh {
            for ox in 0..ow {
                for oc in 0..o {
                    let mut acc = 0.0;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let (iy, ix) = (oy + ky, ox + kx);
                            if iy < pads[0]
                                || ix < pads[1]
                                || iy - pads[0] >= h
                                || ix - pads[1] >= w
                            {
                                continue;
                            }
                            let (iy, ix) = (iy - pads[0], ix - pads[1]);
                            if depthwise {
                                let ic = oc / (o / c);
                                acc += x[(iy * w + ix) * c + ic] * wt[(ky * kw + kx) * o + oc];
                            } else {
                                let g = oc / (o / (c / ipg));
                                for i in 0..ipg {
                                    acc += x[(iy * w + ix) * c + g * ipg + i]
                                        * wt[((oc * kh + ky) * kw + kx) * ipg + i];
                                }
                            }
                        }
                    }
                    y[(oy * ow + ox) * o + oc] = acc;
                }
            }
        }
        y
    }

    fn seq(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * scale)
            .collect()
    }

    fn check(c: usize, o: usize, k: usize, depthwise: bool, group: usize) {
        let (h, w) = (4, 5);
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, h, w, c]);
        let wdims = if depthwise {
            vec![1, k, k, o]
        } else {
            vec![o, k, k, c / group]
        };
        let wn: usize = wdims.iter().product();
        let wv = seq(wn, 0.25);
        let wt = g.add_tensor(Tensor::constant("w", wdims.clone(), Data::F32(wv.clone())));
        let win = Window {
            kernel: [k, k],
            strides: [1, 1],
            dilations: [1, 1],
            pads: [1, 1, 1, 1],
        };
        let y = g.add_node(
            "conv",
            Op::Conv {
                win,
                group,
                act: Act::None,
                layout: Layout::Nhwc,
                depthwise,
            },
            vec![Some(x), Some(wt), None],
            vec![1, h + 3 - k, w + 3 - k, o],
        );
        g.outputs.push(y);
        assert_eq!(nhwc_to_nchw(&mut g), 2);
        let labels: Vec<String> = g.nodes.iter().map(|n| n.op.label()).collect();
        assert_eq!(labels, ["Transpose", "Conv", "Transpose"]);
        let xv = seq(h * w * c, 0.5);
        // The reference reads OHWI as [o, kh, kw, in_c/group], 1HWO by `depthwise`.
        let dims4 = [o, k, k, c / group];
        let want = conv_nhwc(&xv, [h, w, c], &wv, dims4, depthwise, [1, 1]);
        assert_close(&run_graph(&g, &[xv])[0], &want, 1e-4);
    }

    #[test]
    fn an_nhwc_conv_runs_on_the_nchw_kernel_with_ohwi_weights() {
        check(3, 4, 3, false, 1);
        // Grouped: 4 input channels in 2 groups.
        check(4, 6, 3, false, 2);
    }

    #[test]
    fn a_depthwise_conv_with_1hwo_weights_becomes_a_grouped_nchw_conv() {
        check(3, 3, 3, true, 3);
        // Depth multiplier 2.
        check(2, 4, 3, true, 2);
    }

    #[test]
    fn int8_and_hybrid_nodes_keep_their_layout() {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 2, 2, 1]);
        let wt = g.add_tensor(Tensor::constant("w", vec![1, 1, 1, 1], Data::I8(vec![3])));
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
                layout: Layout::Nhwc,
                depthwise: false,
            },
            vec![Some(x), Some(wt), None],
            vec![1, 2, 2, 1],
        );
        g.outputs.push(y);
        assert_eq!(nhwc_to_nchw(&mut g), 0);
        assert_eq!(g.nodes.len(), 1);
    }
}
