//! Each Conv and pool runs in its kernel's layout: f32 kernels are NCHW, int8 and
//! hybrid kernels NHWC (TFLite's). A node in the other layout is wrapped in a
//! Transpose before and one back after, and its filter is re-laid at conversion:
//! f32 OHWI → OIHW (depthwise 1HWO → OIHW with one input channel per group); int8
//! OIHW → OHWI (one input channel per group and one group per channel → depthwise
//! 1HWO), its per-channel quantization axis moving with it. The transpose pass then
//! cancels the pairs this makes between neighbouring nodes.

use crate::convert::ir::{DType, Graph, Layout, Node, Op, Quant, Tensor, permute};

/// NHWC → NCHW, as a Transpose `perm` (output axis i is input axis `perm[i]`).
pub const TO_NCHW: [usize; 4] = [0, 3, 1, 2];
/// NCHW → NHWC.
pub const TO_NHWC: [usize; 4] = [0, 2, 3, 1];

/// Puts every 2-D Conv and pool in its kernel's layout; returns how many
/// Transposes it inserted. f32 nodes run NCHW; nodes with int8 tensors (int8 and
/// hybrid kernels) run NHWC.
pub fn to_kernel_layouts(g: &mut Graph) -> usize {
    let mut inserted = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        let layout = match n.op {
            Op::Conv { layout, .. } | Op::Pool { layout, .. } => Some(layout),
            _ => None,
        };
        let all_f32 = n
            .inputs
            .iter()
            .flatten()
            .chain([&n.output])
            .all(|&t| g.tensors[t].dtype == DType::F32 && g.tensors[t].quant.is_none());
        let want = if all_f32 { Layout::Nchw } else { Layout::Nhwc };
        let x = n.inputs.first().copied().flatten();
        match (x, layout) {
            (Some(x), Some(have)) if have != want && g.tensors[x].dims.len() == 4 => {
                match want {
                    Layout::Nchw => to_nchw(g, i, x),
                    Layout::Nhwc => to_nhwc(g, i, x),
                }
                inserted += 2;
                i += 3;
            }
            _ => i += 1,
        }
    }
    inserted
}

/// Rewrites node `i` (input `x`) as Transpose → NCHW node → Transpose.
fn to_nchw(g: &mut Graph, i: usize, x: usize) {
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
    let op = match node.op.clone() {
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
    wrap(
        g,
        i,
        x,
        node,
        op,
        inputs,
        (x_nchw, y_nchw),
        (TO_NCHW, TO_NHWC),
        "nchw",
    );
}

/// Rewrites node `i` (input `x`) as Transpose → NHWC node → Transpose: an int8 or
/// hybrid NCHW Conv (from an ONNX QDQ graph) or pool.
fn to_nhwc(g: &mut Graph, i: usize, x: usize) {
    let node = g.nodes[i].clone();
    let name = node.name.clone();
    let y = node.output;
    let inner = |g: &mut Graph, t: usize, what: &str| {
        let src = &g.tensors[t];
        let tensor = Tensor {
            name: format!("{name}.nhwc_{what}"),
            dims: permute(&src.dims, &TO_NHWC),
            data: None,
            ..src.clone()
        };
        g.add_tensor(tensor)
    };
    let (x_nhwc, y_nhwc) = (inner(g, x, "in"), inner(g, y, "out"));
    let mut inputs = node.inputs.clone();
    inputs[0] = Some(x_nhwc);
    let op = match node.op.clone() {
        Op::Conv {
            win, group, act, ..
        } => {
            let c = g.tensors[x].dims[1];
            // One input channel per group and one group per channel: TFLite's
            // depthwise convolution, with its 1HWO filter.
            let depthwise = group > 1
                && group == c
                && inputs
                    .get(1)
                    .copied()
                    .flatten()
                    .is_some_and(|w| g.tensors[w].dims.get(1) == Some(&1));
            if let Some(w) = inputs.get(1).copied().flatten() {
                inputs[1] = Some(relay_quantized_filter(g, w, depthwise));
            }
            Op::Conv {
                win,
                group,
                act,
                layout: Layout::Nhwc,
                depthwise,
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
            layout: Layout::Nhwc,
        },
        other => other,
    };
    wrap(
        g,
        i,
        x,
        node,
        op,
        inputs,
        (x_nhwc, y_nhwc),
        (TO_NHWC, TO_NCHW),
        "nhwc",
    );
}

/// Replaces node `i` by Transpose(`x`, `perms.0`) → `op` on `inner.0` computing
/// `inner.1` → Transpose(`perms.1`) to the node's own output.
#[allow(clippy::too_many_arguments)]
fn wrap(
    g: &mut Graph,
    i: usize,
    x: usize,
    node: Node,
    op: Op,
    inputs: Vec<Option<usize>>,
    inner: (usize, usize),
    perms: ([usize; 4], [usize; 4]),
    layout: &str,
) {
    let name = node.name;
    let back = if layout == "nchw" { "nhwc" } else { "nchw" };
    let before = Node {
        name: format!("{name}.to_{layout}"),
        op: Op::Transpose {
            perm: perms.0.to_vec(),
        },
        inputs: vec![Some(x)],
        output: inner.0,
    };
    let after = Node {
        name: format!("{name}.to_{back}"),
        op: Op::Transpose {
            perm: perms.1.to_vec(),
        },
        inputs: vec![Some(inner.1)],
        output: node.output,
    };
    g.nodes[i] = Node {
        name,
        op,
        inputs,
        output: inner.1,
    };
    g.nodes.insert(i, before);
    g.nodes.insert(i + 2, after);
}

/// A new constant: int8 filter `w` OIHW `[O, I, KH, KW]` re-laid as OHWI, or as
/// 1HWO `[1, KH, KW, O]` for a depthwise one; a per-channel axis (0, the output
/// channels) moves with it (to 3 for 1HWO).
fn relay_quantized_filter(g: &mut Graph, w: usize, depthwise: bool) -> usize {
    let t = &g.tensors[w];
    let perm: [usize; 4] = if depthwise {
        [1, 2, 3, 0]
    } else {
        [0, 2, 3, 1]
    };
    let (Some(d), 4) = (&t.data, t.dims.len()) else {
        // Not a 4-D constant: the back end refuses it, naming the weights.
        return w;
    };
    let (dims, idx) = crate::convert::ir::permutation(&t.dims, &perm);
    let data = d.select(&idx);
    let quant = t.quant.clone().map(|q| Quant {
        axis: q
            .axis
            .map(|a| perm.iter().position(|&p| p == a).unwrap_or(a)),
        ..q
    });
    let name = format!("{}.{}", t.name, if depthwise { "1hwo" } else { "ohwi" });
    let id = g.add_tensor(Tensor::constant(name, dims, data));
    g.tensors[id].quant = quant;
    id
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

    use super::to_kernel_layouts as nhwc_to_nchw;
    use crate::convert::ir::{DType, Data, Graph, Layout, Node, Op, Quant, Tensor, Window};
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

    fn int8(name: &str, dims: &[usize], scale: f32, zp: i64) -> Tensor {
        Tensor {
            quant: Some(Quant {
                scale: vec![scale],
                zero_point: vec![zp],
                axis: None,
            }),
            ..Tensor::activation(name, dims.to_vec(), DType::I8)
        }
    }

    /// One int8 Conv (3×3, pads 1, per-channel weights, int32 bias) in `layout`,
    /// of `c` input channels, `o` outputs and `group` groups, with OIHW `oihw`
    /// weights re-laid by hand for NHWC; run behind the f32 edges on `x` (NCHW).
    fn int8_conv(
        layout: Layout,
        c: usize,
        o: usize,
        group: usize,
        oihw: &[i8],
        x: &[f32],
    ) -> Vec<f32> {
        let (h, w, k) = (4, 3, 3);
        let ipg = c / group;
        let depthwise = layout == Layout::Nhwc && group == c && group > 1;
        let nchw = layout == Layout::Nchw;
        let mut g = Graph::default();
        let xdims = if nchw {
            vec![1, c, h, w]
        } else {
            vec![1, h, w, c]
        };
        let xt = g.add_tensor(int8("x", &xdims, 0.05, -7));
        g.inputs.push(xt);
        // OIHW [o][i][y][x] → OHWI [o][y][x][i], or 1HWO [0][y][x][o] (i = 0).
        let (wdims, wvals, axis) = if nchw {
            (vec![o, ipg, k, k], oihw.to_vec(), 0)
        } else if depthwise {
            let v = (0..k * k * o)
                .map(|t| oihw[(t % o) * k * k + t / o])
                .collect();
            (vec![1, k, k, o], v, 3)
        } else {
            let v = (0..o * k * k * ipg)
                .map(|t| {
                    let (oc, rest) = (t / (k * k * ipg), t % (k * k * ipg));
                    let (yx, i) = (rest / ipg, rest % ipg);
                    oihw[(oc * ipg + i) * k * k + yx]
                })
                .collect();
            (vec![o, k, k, ipg], v, 0)
        };
        let wt = g.add_tensor(Tensor::constant("w", wdims, Data::I8(wvals)));
        g.tensors[wt].quant = Some(Quant {
            scale: (0..o).map(|oc| 0.01 + 0.002 * oc as f32).collect(),
            zero_point: vec![0; o],
            axis: Some(axis),
        });
        let bias: Vec<i32> = (0..o as i32).map(|v| 40 * v - 50).collect();
        let bt = g.add_tensor(Tensor::constant("b", vec![o], Data::I32(bias)));
        let ydims = if nchw {
            vec![1, o, h, w]
        } else {
            vec![1, h, w, o]
        };
        let yt = g.add_tensor(int8("y", &ydims, 0.02, 3));
        g.nodes.push(Node {
            name: "conv".into(),
            op: Op::Conv {
                win: Window {
                    kernel: [k, k],
                    strides: [1, 1],
                    dilations: [1, 1],
                    pads: [1; 4],
                },
                group,
                act: Act::Relu,
                layout,
                depthwise,
            },
            inputs: vec![Some(xt), Some(wt), Some(bt)],
            output: yt,
        });
        g.outputs.push(yt);
        crate::convert::passes::edges::quantize_edges(&mut g);
        let inserted = nhwc_to_nchw(&mut g);
        assert_eq!(inserted, if nchw { 2 } else { 0 });
        let x = if nchw {
            x.to_vec()
        } else {
            // NCHW → NHWC.
            (0..h * w * c).map(|t| x[(t % c) * h * w + t / c]).collect()
        };
        let y = run_graph(&g, &[x]).remove(0);
        if nchw {
            y
        } else {
            (0..o * h * w)
                .map(|t| y[(t % (h * w)) * o + t / (h * w)])
                .collect()
        }
    }

    #[test]
    fn an_int8_nchw_conv_runs_on_the_nhwc_kernel_with_its_weights_re_laid() {
        let x: Vec<f32> = (0..2 * 12)
            .map(|v| (v * 37 % 23) as f32 * 0.11 - 1.2)
            .collect();
        // Two input channels, three outputs: OIHW [3, 2, 3, 3] → OHWI.
        let w: Vec<i8> = (0..54).map(|v| ((v * 29 % 61) - 30) as i8).collect();
        let nchw = int8_conv(Layout::Nchw, 2, 3, 1, &w, &x);
        assert_close(&nchw, &int8_conv(Layout::Nhwc, 2, 3, 1, &w, &x), 0.0);
        assert!(nchw.iter().any(|&v| v > 0.0), "{nchw:?}");
        // Depthwise, multiplier 2: OIHW [4, 1, 3, 3] with 2 groups → 1HWO.
        let w: Vec<i8> = (0..36).map(|v| ((v * 13 % 41) - 20) as i8).collect();
        let nchw = int8_conv(Layout::Nchw, 2, 4, 2, &w, &x);
        assert_close(&nchw, &int8_conv(Layout::Nhwc, 2, 4, 2, &w, &x), 0.0);
    }
}
