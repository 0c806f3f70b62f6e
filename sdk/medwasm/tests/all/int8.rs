//! Every int8 and hybrid operator on small hand-built blobs, run through the
//! loader, the plan and the runtime, against expectations this file computes
//! itself: direct loops in i64/f64 and the definitions in `refs`, with the
//! parameters TFLite's `Prepare` would compute (spec §§2–7), never by calling a
//! kernel. Random shapes, padding, broadcasting and zero points at their extremes.

use super::refs::{self, quantize_multiplier};
use super::{Graph, Rng};
use medwasm::format::{DType, NO_TENSOR, OpCode};
use medwasm::kernels::act::Act;
use medwasm::{AlignedBuf, Error, Model, PlanBuf, Runtime, View, ViewMut};

/// Owned tensor contents.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I8(Vec<i8>),
}

impl Data {
    pub fn i8(self) -> Vec<i8> {
        match self {
            Data::I8(v) => v,
            Data::F32(_) => panic!("expected an int8 output"),
        }
    }

    pub fn f32(self) -> Vec<f32> {
        match self {
            Data::F32(v) => v,
            Data::I8(_) => panic!("expected an f32 output"),
        }
    }
}

/// Loads `blob`, writes `inputs` through the typed input views, runs, and returns
/// every output.
pub fn run(blob: &[u8], inputs: &[Data]) -> Result<Vec<Data>, Error> {
    let buf = AlignedBuf::from_bytes(blob);
    let model = Model::load(buf.as_slice())?;
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage())?;
    for (i, data) in inputs.iter().enumerate() {
        match (rt.input_view_mut(i)?, data) {
            (ViewMut::F32(dst), Data::F32(src)) => dst.copy_from_slice(src),
            (ViewMut::I8(dst), Data::I8(src)) => dst.copy_from_slice(src),
            (dst, _) => panic!("input {i} holds {:?}", dst.dtype()),
        }
    }
    rt.run()?;
    (0..model.output_count())
        .map(|o| {
            Ok(match rt.output_view(o)? {
                View::F32(v) => Data::F32(v.to_vec()),
                View::I8(v) => Data::I8(v.to_vec()),
                other => panic!("output {o} holds {:?}", other.dtype()),
            })
        })
        .collect()
}

/// Runs a one-input, one-output int8 blob.
fn run_i8(blob: &[u8], x: &[i8]) -> Vec<i8> {
    run(blob, &[Data::I8(x.to_vec())]).unwrap().remove(0).i8()
}

pub fn i8s(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.next() as i8).collect()
}

/// A zero point, one time in three at an extreme.
pub fn zero_point(rng: &mut Rng) -> i32 {
    match rng.below(6) {
        0 => -128,
        1 => 127,
        _ => rng.below(256) as i32 - 128,
    }
}

/// A positive scale in `[lo, hi)`.
pub fn scale(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * (rng.f32() * 0.5 + 0.5)
}

fn words(v: &[i32]) -> Vec<u32> {
    v.iter().map(|&x| x as u32).collect()
}

/// A window on one axis as TFLite computes it (spec §2.1): output size and the
/// leading and trailing pads.
fn axis(n: usize, k: usize, s: usize, d: usize, same: bool) -> Option<(usize, usize, usize)> {
    let eff = (k - 1) * d + 1;
    let out = if same {
        n.div_ceil(s)
    } else {
        (n + s).checked_sub(eff)? / s
    };
    if out == 0 {
        return None;
    }
    let total = ((out - 1) * s + eff).saturating_sub(n);
    Some((out, total / 2, total - total / 2))
}

/// A random NHWC window: `(kh, kw, sh, sw, dh, dw)`, output size and pads.
#[derive(Debug, Clone, Copy)]
pub struct Win {
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub oh: usize,
    pub ow: usize,
    pub pt: usize,
    pub pl: usize,
    pub pb: usize,
    pub pr: usize,
}

impl Win {
    pub fn new(
        h: usize,
        w: usize,
        k: [usize; 2],
        s: [usize; 2],
        d: [usize; 2],
        same: bool,
    ) -> Option<Win> {
        let (oh, pt, pb) = axis(h, k[0], s[0], d[0], same)?;
        let (ow, pl, pr) = axis(w, k[1], s[1], d[1], same)?;
        Some(Win {
            kh: k[0],
            kw: k[1],
            sh: s[0],
            sw: s[1],
            dh: d[0],
            dw: d[1],
            oh,
            ow,
            pt,
            pl,
            pb,
            pr,
        })
    }

    fn random(rng: &mut Rng, h: usize, w: usize, dilate: bool) -> Option<Win> {
        let k = [1 + rng.below(4), 1 + rng.below(4)];
        let s = [1 + rng.below(3), 1 + rng.below(3)];
        let d = if dilate {
            [1 + rng.below(2), 1 + rng.below(2)]
        } else {
            [1, 1]
        };
        Win::new(h, w, k, s, d, rng.below(2) == 0)
    }

    pub fn words(&self) -> Vec<u32> {
        [
            self.kh, self.kw, self.sh, self.sw, self.dh, self.dw, self.pt, self.pl, self.pb,
            self.pr,
        ]
        .iter()
        .map(|&v| v as u32)
        .collect()
    }

    /// The input position output `o` reads for tap `k` along an axis, if inside.
    fn at(o: usize, k: usize, s: usize, d: usize, p: usize, n: usize) -> Option<usize> {
        let i = (o * s + k * d) as isize - p as isize;
        (i >= 0 && (i as usize) < n).then_some(i as usize)
    }
}

/// Convolution accumulators `[n, oh, ow, m]` in i64 by direct loops over every tap,
/// skipping padding: `Σ w · (x − zp_in) + bias`. `depth_mult` selects depthwise
/// weights `[1, kh, kw, m]` (output channel `oc` reads input channel `oc / mult`).
#[allow(clippy::too_many_arguments)]
fn conv_acc(
    x: &[i8],
    [n, h, w, c]: [usize; 4],
    wt: &[i8],
    m: usize,
    win: &Win,
    zp_in: i32,
    bias: &[i32],
    depth_mult: Option<usize>,
) -> Vec<i64> {
    let mut out = vec![0i64; n * win.oh * win.ow * m];
    for b in 0..n {
        for oy in 0..win.oh {
            for ox in 0..win.ow {
                for oc in 0..m {
                    let mut acc = bias[oc] as i64;
                    for ky in 0..win.kh {
                        let Some(iy) = Win::at(oy, ky, win.sh, win.dh, win.pt, h) else {
                            continue;
                        };
                        for kx in 0..win.kw {
                            let Some(ix) = Win::at(ox, kx, win.sw, win.dw, win.pl, w) else {
                                continue;
                            };
                            let xv = |ic: usize| {
                                x[((b * h + iy) * w + ix) * c + ic] as i64 - zp_in as i64
                            };
                            match depth_mult {
                                None => {
                                    for ic in 0..c {
                                        let wv = wt[((oc * win.kh + ky) * win.kw + kx) * c + ic];
                                        acc += wv as i64 * xv(ic);
                                    }
                                }
                                Some(mult) => {
                                    let wv = wt[(ky * win.kw + kx) * m + oc];
                                    acc += wv as i64 * xv(oc / mult);
                                }
                            }
                        }
                    }
                    out[((b * win.oh + oy) * win.ow + ox) * m + oc] = acc;
                }
            }
        }
    }
    out
}

/// `clamp(mbqm(acc) + zp_out, lo, hi)`, by the definitions.
fn requant(acc: i64, m: i32, s: i32, zp_out: i32, (lo, hi): (i32, i32)) -> i8 {
    let acc = i32::try_from(acc).expect("test accumulators fit i32");
    (refs::mbqm(acc, m, s) + zp_out).clamp(lo, hi) as i8
}

const ACTS: [&str; 4] = ["none", "relu", "relu6", "relu_n1_to_1"];

/// A random convolution (plain or depthwise) as a one-node blob, with the output it
/// must give.
fn conv_case(rng: &mut Rng, depthwise: bool) -> Option<(Vec<u8>, Vec<i8>, Vec<i8>)> {
    let (n, h, w) = (1 + rng.below(2), 3 + rng.below(7), 3 + rng.below(7));
    let c = 1 + rng.below(4);
    let mult = if depthwise { 1 + rng.below(3) } else { 1 };
    let m = if depthwise {
        c * mult
    } else {
        1 + rng.below(5)
    };
    let win = Win::random(rng, h, w, true)?;
    let (s_in, zp_in) = (scale(rng, 0.01, 0.2), zero_point(rng));
    let per_tensor = rng.below(4) == 0;
    let s_w: Vec<f32> = (0..m).map(|_| scale(rng, 0.001, 0.05)).collect();
    let s_w: Vec<f32> = if per_tensor { vec![s_w[0]; m] } else { s_w };
    let x = i8s(rng, n * h * w * c);
    let wlen = if depthwise {
        win.kh * win.kw * m
    } else {
        m * win.kh * win.kw * c
    };
    // Symmetric int8 weights (-127..=127), as TFLite's quantizer writes them, with
    // an occasional -128.
    let wt: Vec<i8> = (0..wlen)
        .map(|_| {
            if rng.below(50) == 0 {
                -128
            } else {
                (rng.below(255) as i32 - 127) as i8
            }
        })
        .collect();
    let has_bias = rng.below(5) != 0;
    let bias: Vec<i32> = (0..m)
        .map(|_| {
            if has_bias {
                rng.below(40_001) as i32 - 20_000
            } else {
                0
            }
        })
        .collect();
    let acc = conv_acc(
        &x,
        [n, h, w, c],
        &wt,
        m,
        &win,
        zp_in,
        &bias,
        depthwise.then_some(mult),
    );
    // An output scale that puts most outputs in range and some beyond it.
    let peak = acc
        .iter()
        .enumerate()
        .map(|(i, &a)| (a as f64 * s_in as f64 * s_w[i % m] as f64).abs())
        .fold(0.0, f64::max);
    let s_out = ((peak / 110.0) as f32).max(1e-4);
    let zp_out = zero_point(rng);
    let range = refs::act_range(ACTS[rng.below(4)], s_out, zp_out);
    // Per channel: f64 product of the scales, as `PopulateConvolutionQuantizationParams`.
    let ms: Vec<(i32, i32)> = s_w
        .iter()
        .map(|&sw| quantize_multiplier(s_in as f64 * sw as f64 / s_out as f64))
        .collect();
    let channels = if per_tensor && rng.below(2) == 0 {
        1
    } else {
        m
    };
    let want: Vec<i8> = acc
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let (mm, ss) = ms[i % m];
            requant(a, mm, ss, zp_out, range)
        })
        .collect();

    let mut g = Graph::default();
    let xt = g.arena_q("x", &[n, h, w, c].map(|v| v as u32), s_in, zp_in);
    let wdims = if depthwise {
        [1, win.kh, win.kw, m]
    } else {
        [m, win.kh, win.kw, c]
    };
    let wt_t = g.constant_of(&wdims.map(|v| v as u32), &wt);
    let bt = if has_bias {
        g.constant_of(&[m as u32], &bias)
    } else {
        NO_TENSOR
    };
    let mt = g.constant_of(
        &[channels as u32],
        &ms[..channels].iter().map(|p| p.0).collect::<Vec<_>>(),
    );
    let st = g.constant_of(
        &[channels as u32],
        &ms[..channels].iter().map(|p| p.1).collect::<Vec<_>>(),
    );
    let y = g.arena_q(
        "y",
        &[n, win.oh, win.ow, m].map(|v| v as u32),
        s_out,
        zp_out,
    );
    let mut params = win.words();
    params.extend(words(&[range.0, range.1]));
    let op = if depthwise {
        OpCode::QDepthwiseConv
    } else {
        OpCode::QConv
    };
    g.node(op, &[xt, wt_t, bt, mt, st], y, NO_TENSOR, &params);
    Some((g.finish(&[xt], &[y]), x, want))
}

#[test]
fn qconv_and_qdepthwise_match_direct_loops_with_per_channel_requantization() {
    let mut rng = Rng(21);
    for depthwise in [false, true] {
        let (mut cases, mut clamped, mut inside) = (0, 0, 0);
        while cases < 150 {
            let Some((blob, x, want)) = conv_case(&mut rng, depthwise) else {
                continue;
            };
            cases += 1;
            let got = run_i8(&blob, &x);
            assert_eq!(got, want, "case {cases}, depthwise {depthwise}");
            clamped += want.iter().filter(|&&v| v == -128 || v == 127).count();
            inside += want.iter().filter(|&&v| v != -128 && v != 127).count();
        }
        // Both saturated and in-range outputs were exercised.
        assert!(
            clamped > 100 && inside > 1000,
            "{clamped} clamped, {inside} inside"
        );
    }
}

#[test]
fn qfully_connected_in_both_requantization_modes() {
    let mut rng = Rng(22);
    for case in 0..300 {
        let (batches, depth, units) = (1 + rng.below(3), 1 + rng.below(64), 1 + rng.below(40));
        let litert_ref = case % 2 == 1;
        let per_tensor = rng.below(2) == 0;
        let (s_in, zp_in) = (scale(&mut rng, 0.01, 0.2), zero_point(&mut rng));
        let s_w: Vec<f32> = if per_tensor {
            vec![scale(&mut rng, 0.001, 0.05); 1]
        } else {
            (0..units).map(|_| scale(&mut rng, 0.001, 0.05)).collect()
        };
        // Per-tensor weights may carry a zero point; per-channel ones do not.
        let zp_w = if per_tensor {
            rng.below(21) as i32 - 10
        } else {
            0
        };
        let x = i8s(&mut rng, batches * depth);
        let wt = i8s(&mut rng, units * depth);
        let has_bias = rng.below(4) != 0;
        let bias: Vec<i32> = (0..units)
            .map(|_| {
                if has_bias {
                    rng.below(20_001) as i32 - 10_000
                } else {
                    0
                }
            })
            .collect();
        let sw = |u: usize| s_w[if per_tensor { 0 } else { u }];
        let acc: Vec<i64> = (0..batches * units)
            .map(|i| {
                let (b, u) = (i / units, i % units);
                (0..depth)
                    .map(|d| {
                        (wt[u * depth + d] as i64 - zp_w as i64)
                            * (x[b * depth + d] as i64 - zp_in as i64)
                    })
                    .sum::<i64>()
                    + bias[u] as i64
            })
            .collect();
        let peak = acc
            .iter()
            .enumerate()
            .map(|(i, &a)| (a as f64 * s_in as f64 * sw(i % units) as f64).abs())
            .fold(0.0, f64::max);
        let s_out = ((peak / 110.0) as f32).max(1e-4);
        let zp_out = zero_point(&mut rng);
        let range = refs::act_range(ACTS[rng.below(4)], s_out, zp_out);
        let channels = s_w.len();
        // Per-tensor fixed point takes the f32 product of the input and weight
        // scales (`GetQuantizedConvolutionMultipler`); per-channel the f64 one.
        let fixed: Vec<(i32, i32)> = (0..channels)
            .map(|u| {
                let real = if per_tensor {
                    (s_in * s_w[u]) as f64 / s_out as f64
                } else {
                    s_in as f64 * s_w[u] as f64 / s_out as f64
                };
                quantize_multiplier(real)
            })
            .collect();
        let eff: Vec<f64> = (0..channels)
            .map(|u| s_in as f64 * s_w[u] as f64 / s_out as f64)
            .collect();
        let want: Vec<i8> = acc
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let u = if per_tensor { 0 } else { i % units };
                if litert_ref {
                    let r = (a as f64 * eff[u]).round() as i64 + zp_out as i64;
                    r.clamp(range.0 as i64, range.1 as i64) as i8
                } else {
                    requant(a, fixed[u].0, fixed[u].1, zp_out, range)
                }
            })
            .collect();

        let mut g = Graph::default();
        // A 3-D input and output one time in three (`keep_num_dims`).
        let (xd, yd) = if batches > 1 && rng.below(3) == 0 {
            (
                vec![batches as u32, 1, depth as u32],
                vec![batches as u32, 1, units as u32],
            )
        } else {
            (
                vec![batches as u32, depth as u32],
                vec![batches as u32, units as u32],
            )
        };
        let xt = g.arena_q("x", &xd, s_in, zp_in);
        let w_spec = medwasm::format::TensorSpec::constant("", &[units as u32, depth as u32], &wt);
        let w_spec = if per_tensor {
            w_spec.quantized(s_w[0], zp_w)
        } else {
            w_spec
        };
        let wt_t = g.push(w_spec);
        let bt = if has_bias {
            g.constant_of(&[units as u32], &bias)
        } else {
            NO_TENSOR
        };
        let mut inputs = vec![xt, wt_t, bt];
        if litert_ref {
            inputs.push(g.constant_of(&[channels as u32], &eff));
        } else {
            inputs.push(g.constant_of(
                &[channels as u32],
                &fixed.iter().map(|p| p.0).collect::<Vec<_>>(),
            ));
            inputs.push(g.constant_of(
                &[channels as u32],
                &fixed.iter().map(|p| p.1).collect::<Vec<_>>(),
            ));
        }
        let y = g.arena_q("y", &yd, s_out, zp_out);
        g.node(
            OpCode::QFullyConnected,
            &inputs,
            y,
            NO_TENSOR,
            &words(&[litert_ref as i32, range.0, range.1]),
        );
        let blob = g.finish(&[xt], &[y]);
        assert_eq!(
            run_i8(&blob, &x),
            want,
            "case {case} (litert_ref {litert_ref})"
        );
    }
}

#[test]
fn the_two_fc_requantizations_really_differ() {
    // The same accumulators through both modes: LiteRT's f64 rounding and the
    // fixed-point multiplier disagree on some outputs (ad01_int8: 1482 of 5120).
    let mut differ = 0;
    let mut rng = Rng(23);
    for _ in 0..20_000 {
        let acc = rng.below(200_001) as i32 - 100_000;
        let eff = (scale(&mut rng, 0.0001, 0.01)) as f64;
        let (m, s) = quantize_multiplier(eff);
        if refs::mbqm(acc, m, s) as f64 != (acc as f64 * eff).round() {
            differ += 1;
        }
    }
    assert!(differ > 0);
}

#[test]
fn qpooling_averages_raw_values_without_the_padding() {
    let mut rng = Rng(24);
    let mut cases = 0;
    while cases < 200 {
        // One case in five over more channels than one pass of the kernel keeps.
        let channels = if cases % 5 == 0 {
            60 + rng.below(80)
        } else {
            1 + rng.below(4)
        };
        let (n, h, w, c) = (
            1 + rng.below(2),
            2 + rng.below(7),
            2 + rng.below(7),
            channels,
        );
        let Some(win) = Win::random(&mut rng, h, w, false) else {
            continue;
        };
        let max = rng.below(2) == 0;
        let (s, zp) = (scale(&mut rng, 0.01, 0.2), zero_point(&mut rng));
        let range = refs::act_range(ACTS[rng.below(4)], s, zp);
        let x = i8s(&mut rng, n * h * w * c);
        let mut want = Vec::new();
        for b in 0..n {
            for oy in 0..win.oh {
                for ox in 0..win.ow {
                    for ch in 0..c {
                        let mut taps = Vec::new();
                        for ky in 0..win.kh {
                            for kx in 0..win.kw {
                                if let (Some(iy), Some(ix)) = (
                                    Win::at(oy, ky, win.sh, 1, win.pt, h),
                                    Win::at(ox, kx, win.sw, 1, win.pl, w),
                                ) {
                                    taps.push(x[((b * h + iy) * w + ix) * c + ch] as i64);
                                }
                            }
                        }
                        let v = if max {
                            *taps.iter().max().unwrap()
                        } else {
                            // Nearest integer to the mean of the raw values, ties away
                            // from zero.
                            let (sum, k) = (taps.iter().sum::<i64>(), taps.len() as i64);
                            sum.signum() * ((2 * sum.abs() + k) / (2 * k))
                        };
                        want.push(v.clamp(range.0 as i64, range.1 as i64) as i8);
                    }
                }
            }
        }
        let mut g = Graph::default();
        let xt = g.arena_q("x", &[n, h, w, c].map(|v| v as u32), s, zp);
        let y = g.arena_q("y", &[n, win.oh, win.ow, c].map(|v| v as u32), s, zp);
        let mut params = win.words();
        params.extend(words(&[range.0, range.1]));
        let op = if max {
            OpCode::QMaxPool
        } else {
            OpCode::QAveragePool
        };
        g.node(op, &[xt], y, NO_TENSOR, &params);
        assert_eq!(run_i8(&g.finish(&[xt], &[y]), &x), want, "case {cases}");
        cases += 1;
    }
    // The spec's pitfall: zero point -128, values -100 and -101 average to -101 on
    // the raw values (a float average re-quantized half-to-even gives -100).
    let mut g = Graph::default();
    let xt = g.arena_q("x", &[1, 1, 2, 1], 0.1, -128);
    let y = g.arena_q("y", &[1, 1, 1, 1], 0.1, -128);
    let mut params = Win::new(1, 2, [1, 2], [1, 2], [1, 1], false)
        .unwrap()
        .words();
    params.extend(words(&[-128, 127]));
    g.node(OpCode::QAveragePool, &[xt], y, NO_TENSOR, &params);
    assert_eq!(run_i8(&g.finish(&[xt], &[y]), &[-100, -101]), [-101]);
}

/// The flat index in `d` (right-aligned, broadcasting) of output element `flat`.
fn bcast_at(yd: &[usize], d: &[usize], flat: usize) -> usize {
    let r = yd.len();
    let mut idx = vec![0; r];
    let mut rem = flat;
    for i in (0..r).rev() {
        idx[i] = rem % yd[i];
        rem /= yd[i];
    }
    let off = r - d.len();
    d.iter().enumerate().fold(0, |o, (i, &di)| {
        o * di + if di == 1 { 0 } else { idx[i + off] }
    })
}

const SHAPES: [(&[usize], &[usize], &[usize]); 7] = [
    (&[2, 3, 4], &[2, 3, 4], &[2, 3, 4]),
    (&[2, 3, 4], &[4], &[2, 3, 4]),
    (&[2, 3, 4], &[3, 1], &[2, 3, 4]),
    (&[1, 3, 1], &[2, 1, 5], &[2, 3, 5]),
    (&[2, 2], &[1], &[2, 2]),
    (&[1], &[3, 2], &[3, 2]),
    (&[3, 1, 2], &[1, 4, 1], &[3, 4, 2]),
];

#[test]
fn qadd_and_qsub_with_broadcasting() {
    let mut rng = Rng(25);
    for case in 0..140 {
        let (ad, bd, yd) = SHAPES[case % SHAPES.len()];
        let sub = case % 2 == 1;
        let (s1, zp1) = (scale(&mut rng, 0.01, 0.2), zero_point(&mut rng));
        let (s2, zp2) = (scale(&mut rng, 0.01, 0.2), zero_point(&mut rng));
        let (so, zpo) = (scale(&mut rng, 0.02, 0.3), zero_point(&mut rng));
        let range = refs::act_range(ACTS[rng.below(4)], so, zpo);
        // TFLite's ADD Prepare (spec §4.1), f64.
        let twice = 2.0 * s1.max(s2) as f64;
        let (m1, sh1) = quantize_multiplier(s1 as f64 / twice);
        let (m2, sh2) = quantize_multiplier(s2 as f64 / twice);
        let (mo, sho) = quantize_multiplier(twice / ((1 << 20) as f64 * so as f64));
        assert!(sh1 <= 0 && sh2 <= 0 && sho <= 0);
        let a = i8s(&mut rng, ad.iter().product());
        let b = i8s(&mut rng, bd.iter().product());
        let n: usize = yd.iter().product();
        let want: Vec<i8> = (0..n)
            .map(|i| {
                let (x1, x2) = (a[bcast_at(yd, ad, i)] as i32, b[bcast_at(yd, bd, i)] as i32);
                let sa = refs::rdbpot(refs::srdhm((x1 - zp1) << 20, m1), (-sh1) as u32);
                let sb = refs::rdbpot(refs::srdhm((x2 - zp2) << 20, m2), (-sh2) as u32);
                let raw = if sub { sa - sb } else { sa + sb };
                let y = refs::rdbpot(refs::srdhm(raw, mo), (-sho) as u32) + zpo;
                y.clamp(range.0, range.1) as i8
            })
            .collect();
        let mut g = Graph::default();
        let u = |d: &[usize]| d.iter().map(|&v| v as u32).collect::<Vec<_>>();
        let at = g.arena_q("a", &u(ad), s1, zp1);
        let bt = g.arena_q("b", &u(bd), s2, zp2);
        let y = g.arena_q("y", &u(yd), so, zpo);
        g.node(
            OpCode::QAdd,
            &[at, bt],
            y,
            NO_TENSOR,
            &words(&[sub as i32, 20, m1, sh1, m2, sh2, mo, sho, range.0, range.1]),
        );
        let out = run(&g.finish(&[at, bt], &[y]), &[Data::I8(a), Data::I8(b)]).unwrap();
        assert_eq!(
            out[0].clone().i8(),
            want,
            "case {case}: {ad:?} {bd:?} sub {sub}"
        );
    }
}

#[test]
fn qmul_with_broadcasting() {
    let mut rng = Rng(26);
    for case in 0..140 {
        let (ad, bd, yd) = SHAPES[case % SHAPES.len()];
        let (s1, zp1) = (scale(&mut rng, 0.01, 0.2), zero_point(&mut rng));
        let (s2, zp2) = (scale(&mut rng, 0.01, 0.2), zero_point(&mut rng));
        // Output scales small enough, now and then, for a positive shift.
        let so = scale(&mut rng, 0.0002, 0.3);
        let zpo = zero_point(&mut rng);
        let range = refs::act_range(ACTS[rng.below(4)], so, zpo);
        // f32 arithmetic, then widened (spec §4.3).
        let (m, sh) = quantize_multiplier((s1 * s2 / so) as f64);
        let a = i8s(&mut rng, ad.iter().product());
        let b = i8s(&mut rng, bd.iter().product());
        let n: usize = yd.iter().product();
        let want: Vec<i8> = (0..n)
            .map(|i| {
                let (x1, x2) = (a[bcast_at(yd, ad, i)] as i32, b[bcast_at(yd, bd, i)] as i32);
                (refs::mbqm((x1 - zp1) * (x2 - zp2), m, sh) + zpo).clamp(range.0, range.1) as i8
            })
            .collect();
        let mut g = Graph::default();
        let u = |d: &[usize]| d.iter().map(|&v| v as u32).collect::<Vec<_>>();
        let at = g.arena_q("a", &u(ad), s1, zp1);
        let bt = g.arena_q("b", &u(bd), s2, zp2);
        let y = g.arena_q("y", &u(yd), so, zpo);
        g.node(
            OpCode::QMul,
            &[at, bt],
            y,
            NO_TENSOR,
            &words(&[m, sh, range.0, range.1]),
        );
        let out = run(&g.finish(&[at, bt], &[y]), &[Data::I8(a), Data::I8(b)]).unwrap();
        assert_eq!(out[0].clone().i8(), want, "case {case}: {ad:?} {bd:?}");
    }
}

/// TFLite's softmax Prepare for int8 (spec §5.1): multiplier, left shift, diff_min.
pub fn softmax_params(beta: f32, s_in: f32) -> (i32, i32, i32) {
    let real = (beta as f64 * s_in as f64 * (1u64 << 26) as f64).min((1u64 << 31) as f64 - 1.0);
    let (m, ls) = quantize_multiplier(real);
    assert!(ls >= 0);
    let radius = (31.0 * (1u64 << 26) as f64 / 2f64.powi(ls)).floor();
    (m, ls, -(radius as i32))
}

#[test]
fn qsoftmax_matches_gemmlowp_and_the_float_softmax() {
    let mut rng = Rng(27);
    let mut rows: Vec<Vec<i8>> = (0..300)
        .map(|_| {
            let n = 1 + rng.below(40);
            i8s(&mut rng, n)
        })
        .collect();
    // Edges: the longest row allowed, all at the maximum (the largest sum); a row of
    // both extremes; a single element; a row where most differences fall below
    // diff_min with a large input scale.
    rows.push(vec![7; 511]);
    rows.push(vec![-128, 127, -128, 127]);
    rows.push(vec![-128]);
    rows.push((0..64).map(|v| (v * 4 - 128) as i8).collect());
    let mut worst = 0;
    for (r, row) in rows.iter().enumerate() {
        let s_in = match r % 5 {
            0 => 40.0, // beta · s_in ≥ 32: the multiplier saturates, left shift 31
            1 => scale(&mut rng, 0.2, 2.0),
            _ => scale(&mut rng, 0.005, 0.2),
        };
        let (m, ls, diff_min) = softmax_params(1.0, s_in);
        let want = refs::gemmlowp::softmax(row, m, ls as u32, diff_min);
        let mut g = Graph::default();
        let xt = g.arena_q("x", &[1, row.len() as u32], s_in, zero_point(&mut rng));
        let y = g.arena_q("y", &[1, row.len() as u32], 1.0 / 256.0, -128);
        g.node(
            OpCode::QSoftmax,
            &[xt],
            y,
            NO_TENSOR,
            &words(&[m, ls, diff_min]),
        );
        let got = run_i8(&g.finish(&[xt], &[y]), row);
        assert_eq!(got, want, "row {r} (s_in {s_in})");
        // Within a couple of steps of the real softmax, quantized.
        let max = row.iter().map(|&v| v as f64).fold(f64::MIN, f64::max);
        let e: Vec<f64> = row
            .iter()
            .map(|&v| ((v as f64 - max) * s_in as f64).exp())
            .collect();
        let sum: f64 = e.iter().sum();
        for (k, &q) in got.iter().enumerate() {
            let real = ((e[k] / sum * 256.0).round() - 128.0).clamp(-128.0, 127.0) as i32;
            worst = worst.max((q as i32 - real).abs());
        }
    }
    assert!(worst <= 2, "softmax is {worst} steps from the real one");
    // Two rows in one tensor, softmax over the last axis of [2, 1, 3].
    let (m, ls, dm) = softmax_params(1.0, 0.1);
    let mut g = Graph::default();
    let xt = g.arena_q("x", &[2, 1, 3], 0.1, 0);
    let y = g.arena_q("y", &[2, 1, 3], 1.0 / 256.0, -128);
    g.node(OpCode::QSoftmax, &[xt], y, NO_TENSOR, &words(&[m, ls, dm]));
    let x = [10, 20, 30, -5, -5, -5];
    let mut want = refs::gemmlowp::softmax(&x[..3], m, ls as u32, dm);
    want.extend(refs::gemmlowp::softmax(&x[3..], m, ls as u32, dm));
    assert_eq!(run_i8(&g.finish(&[xt], &[y]), &x), want);
}

/// TFLite's `LUTPopulate` for LOGISTIC or TANH (spec §5.2), f32 math.
pub fn lut(tanh: bool, s_in: f32, zp_in: i32, s_out: f32, zp_out: i32) -> Vec<i8> {
    let mut table = vec![0i8; 256];
    for v in -128..=127i32 {
        let x = s_in * (v - zp_in) as f32;
        let y = if tanh {
            x.tanh()
        } else {
            1.0 / (1.0 + (-x).exp())
        };
        let r = (y * (1.0 / s_out)).round();
        let q = ((r + zp_out as f32) as i32).clamp(-128, 127);
        table[(v as u8) as usize] = q as i8;
    }
    table
}

#[test]
fn qlut_looks_up_every_int8_value() {
    let mut rng = Rng(28);
    for tanh in [false, true] {
        let (s_in, zp_in) = (scale(&mut rng, 0.02, 0.1), zero_point(&mut rng));
        let (s_out, zp_out) = if tanh {
            (1.0 / 128.0, 0)
        } else {
            (1.0 / 256.0, -128)
        };
        let table = lut(tanh, s_in, zp_in, s_out, zp_out);
        let x: Vec<i8> = (-128..=127).collect();
        let mut g = Graph::default();
        let xt = g.arena_q("x", &[256], s_in, zp_in);
        let tt = g.constant_of(&[256], &table);
        let y = g.arena_q("y", &[256], s_out, zp_out);
        g.node(OpCode::QLut, &[xt, tt], y, NO_TENSOR, &[]);
        let got = run_i8(&g.finish(&[xt], &[y]), &x);
        for (v, q) in x.iter().zip(&got) {
            assert_eq!(*q, table[*v as u8 as usize], "x {v}");
            // And the table is the function it stands for.
            let real = s_in * (*v as i32 - zp_in) as f32;
            let f = if tanh {
                real.tanh()
            } else {
                1.0 / (1.0 + (-real).exp())
            };
            assert!((s_out * (*q as i32 - zp_out) as f32 - f).abs() <= s_out);
        }
    }
}

/// `DownScaleInt32ToInt16Multiplier`.
fn m16(m: i32) -> i32 {
    if m >= i32::MAX - (1 << 15) {
        32767
    } else {
        (m + (1 << 15)) >> 16
    }
}

/// TFLite's HARD_SWISH Prepare (spec §5.3), f32 arithmetic.
pub fn hard_swish_params(s_in: f32, s_out: f32) -> [i32; 4] {
    let hires = (1.0f32 / 128.0) * s_in;
    let reluish = 3.0f32 / 32768.0;
    let (mo, eo) = quantize_multiplier((hires / s_out) as f64);
    let (mr, er) = quantize_multiplier((hires / reluish) as f64);
    [m16(mo), eo, m16(mr), er]
}

/// HARD_SWISH of one value, restated from upstream's reference in i32 with explicit
/// i16 saturation and wrap (spec §5.3).
fn hard_swish_ref(x: i8, zp_in: i32, zp_out: i32, [mo, eo, mr, er]: [i32; 4]) -> i8 {
    let sat16 = |v: i64| v.clamp(-32768, 32767) as i32;
    let srdhm16 = |a: i32, b: i32| {
        if a == -32768 && b == -32768 {
            32767
        } else {
            refs::div_pow2_ties_up(a as i128 * b as i128, 15) as i32
        }
    };
    let rdbpot16 = |v: i32, e: i32| refs::div_pow2_ties_away(v as i128, e as u32) as i32;
    let hires = (x as i32 - zp_in) * 128;
    let pre = srdhm16(hires, mo);
    let mut r = hires;
    if er > 0 {
        r = sat16(r as i64 * (1i64 << (er - 1)));
    }
    r = srdhm16(r, mr);
    if er > 0 {
        r = sat16(r as i64 * 2);
    }
    if er < 0 {
        r = rdbpot16(r, -er);
    }
    r = (r + 32768) >> 1;
    let p = if r == -32768 && pre == -32768 {
        32767
    } else {
        (r * pre) / 32768
    };
    let o = rdbpot16(p, -eo) + zp_out;
    // The i16 store of upstream wraps.
    ((o as i16) as i32).clamp(-128, 127) as i8
}

#[test]
fn qhard_swish_matches_upstream_and_the_real_function() {
    let mut rng = Rng(29);
    let mut worst = 0.0f32;
    for case in 0..60 {
        let (s_in, zp_in) = (scale(&mut rng, 0.01, 0.1), zero_point(&mut rng));
        let (s_out, zp_out) = (scale(&mut rng, 0.01, 0.1), zero_point(&mut rng));
        let p = hard_swish_params(s_in, s_out);
        let x: Vec<i8> = (-128..=127).collect();
        let mut g = Graph::default();
        let xt = g.arena_q("x", &[256], s_in, zp_in);
        let y = g.arena_q("y", &[256], s_out, zp_out);
        g.node(OpCode::QHardSwish, &[xt], y, NO_TENSOR, &words(&p));
        let got = run_i8(&g.finish(&[xt], &[y]), &x);
        for (v, q) in x.iter().zip(&got) {
            assert_eq!(
                *q,
                hard_swish_ref(*v, zp_in, zp_out, p),
                "case {case}, x {v}"
            );
            let real = s_in * (*v as i32 - zp_in) as f32;
            let f = real * (real + 3.0).clamp(0.0, 6.0) / 6.0;
            let fq = ((f / s_out).round() as i32 + zp_out).clamp(-128, 127);
            if (-127..127).contains(&fq) {
                worst = worst.max((*q as i32 - fq).abs() as f32);
            }
        }
    }
    assert!(
        worst <= 2.0,
        "hard swish {worst} steps from the real function"
    );
}

#[test]
fn qleaky_relu_with_positive_and_negative_alpha() {
    let mut rng = Rng(30);
    for case in 0..80 {
        let alpha = [0.1f32, 0.2, 0.01, -0.5, 1.5][case % 5];
        let (s_in, zp_in) = (scale(&mut rng, 0.01, 0.1), zero_point(&mut rng));
        let (s_out, zp_out) = (scale(&mut rng, 0.01, 0.1), zero_point(&mut rng));
        let (ma, sa) = quantize_multiplier((s_in * alpha / s_out) as f64);
        let (mi, si) = quantize_multiplier((s_in / s_out) as f64);
        let x: Vec<i8> = (-128..=127).collect();
        let want: Vec<i8> = x
            .iter()
            .map(|&v| {
                let d = v as i32 - zp_in;
                let y = if d >= 0 {
                    refs::mbqm(d, mi, si)
                } else if ma < 0 {
                    -refs::mbqm(d, -ma, sa)
                } else {
                    refs::mbqm(d, ma, sa)
                };
                (zp_out + y).clamp(-128, 127) as i8
            })
            .collect();
        let mut g = Graph::default();
        let xt = g.arena_q("x", &[4, 64], s_in, zp_in);
        let y = g.arena_q("y", &[4, 64], s_out, zp_out);
        g.node(
            OpCode::QLeakyRelu,
            &[xt],
            y,
            NO_TENSOR,
            &words(&[mi, si, ma, sa]),
        );
        assert_eq!(
            run_i8(&g.finish(&[xt], &[y]), &x),
            want,
            "case {case}, alpha {alpha}"
        );
    }
}

#[test]
fn qrequantize_is_quantize_and_the_relu_family() {
    let mut rng = Rng(31);
    for case in 0..80 {
        let (s_in, zp_in) = (scale(&mut rng, 0.01, 0.3), zero_point(&mut rng));
        let (s_out, zp_out) = (scale(&mut rng, 0.005, 0.3), zero_point(&mut rng));
        let kind = ["quantize", "relu", "relu6", "relu_n1_to_1"][case % 4];
        // QUANTIZE int8 → int8: f64 ratio; RELU family: f32 ratio (spec §5.4, §6.2).
        let (m, s) = if kind == "quantize" {
            quantize_multiplier(s_in as f64 / s_out as f64)
        } else {
            quantize_multiplier((s_in / s_out) as f64)
        };
        let q = |f: f32| zp_out + (f / s_out).round() as i32;
        let (lo, hi) = match kind {
            "quantize" => (-128, 127),
            "relu" => ((-128).max(q(0.0)), 127),
            "relu6" => ((-128).max(q(0.0)), 127.min(q(6.0))),
            _ => ((-128).max(q(-1.0)), 127.min(q(1.0))),
        };
        let x: Vec<i8> = (-128..=127).collect();
        let want: Vec<i8> = x
            .iter()
            .map(|&v| (refs::mbqm(v as i32 - zp_in, m, s) + zp_out).clamp(lo, hi) as i8)
            .collect();
        let mut g = Graph::default();
        let xt = g.arena_q("x", &[256], s_in, zp_in);
        let y = g.arena_q("y", &[256], s_out, zp_out);
        g.node(
            OpCode::QRequantize,
            &[xt],
            y,
            NO_TENSOR,
            &words(&[m, s, lo, hi]),
        );
        assert_eq!(
            run_i8(&g.finish(&[xt], &[y]), &x),
            want,
            "case {case} ({kind})"
        );
    }
}

#[test]
fn quantize_divides_in_f32_and_rounds_half_away_and_dequantize_is_exact() {
    let mut rng = Rng(32);
    for case in 0..60 {
        let (s, zp) = (scale(&mut rng, 0.001, 0.5), zero_point(&mut rng));
        let mut x: Vec<f32> = (0..200).map(|_| rng.f32() * 300.0 * s).collect();
        // Exact ties, far out of range, and values at the edges.
        x.extend([0.5 * s, -0.5 * s, 2.5 * s, -2.5 * s, 1e9, -1e9, 0.0, -0.0]);
        let want: Vec<i8> = x
            .iter()
            .map(|&v| ((v / s).round() as i32).saturating_add(zp).clamp(-128, 127) as i8)
            .collect();
        let mut g = Graph::default();
        let xt = g.arena("x", &[x.len() as u32]);
        let q = g.arena_q("q", &[x.len() as u32], s, zp);
        g.node(OpCode::Quantize, &[xt], q, NO_TENSOR, &[]);
        let d = g.arena("d", &[x.len() as u32]);
        g.node(OpCode::Dequantize, &[q], d, NO_TENSOR, &[]);
        let out = run(&g.finish(&[xt], &[q, d]), &[Data::F32(x.clone())]).unwrap();
        let (qs, ds) = (out[0].clone().i8(), out[1].clone().f32());
        assert_eq!(qs, want, "case {case}");
        // Dequantize: upstream's f64 product rounded once to f32.
        for (k, (&qv, &dv)) in qs.iter().zip(&ds).enumerate() {
            let want = (s as f64 * (qv as i32 - zp) as f64) as f32;
            assert_eq!(dv.to_bits(), want.to_bits(), "case {case}, element {k}");
        }
        // Ties round away from zero: 0.5 steps above the zero point is one step.
        assert_eq!(qs[200] as i32, (zp + 1).min(127));
        assert_eq!(qs[201] as i32, (zp - 1).max(-128));
    }
    // Division, not multiplication by the reciprocal: find a value where they differ
    // and check the division wins.
    let s = 0.1f32;
    let inv = 1.0 / s;
    let x = (0..100_000)
        .map(|k| k as f32 * 0.05f32 + 0.05)
        .find(|&v| (v / s).round() != (v * inv).round())
        .expect("a value where x / s and x * (1 / s) round differently");
    let mut g = Graph::default();
    let xt = g.arena("x", &[1]);
    let q = g.arena_q("q", &[1], s, 0);
    g.node(OpCode::Quantize, &[xt], q, NO_TENSOR, &[]);
    let out = run(&g.finish(&[xt], &[q]), &[Data::F32(vec![x])]).unwrap();
    let want = ((x / s).round() as i32).clamp(-128, 127) as i8;
    assert_eq!(out[0].clone().i8(), [want], "x = {x}");
}

#[test]
fn qmean_is_builtin_refs_integer_mean() {
    let mut rng = Rng(33);
    let cases: [(&[usize], u32); 6] = [
        (&[1, 4, 5, 3], 0b0110),
        (&[2, 3, 4], 0b100),
        (&[2, 3, 4], 0b001),
        (&[6, 7], 0b11),
        (&[1, 8, 8, 2], 0b0110),
        (&[3, 1, 5], 0b010),
    ];
    let mut worst = 0;
    for case in 0..120 {
        let (xd, mask) = cases[case % cases.len()];
        let (s_in, zp_in) = (scale(&mut rng, 0.01, 0.2), zero_point(&mut rng));
        let (s_out, zp_out) = (s_in * scale(&mut rng, 0.3, 2.0), zero_point(&mut rng));
        let (m, sh) = quantize_multiplier(s_in as f64 / s_out as f64);
        let x = i8s(&mut rng, xd.iter().product());
        let n: usize = (0..xd.len())
            .filter(|d| mask & (1 << d) != 0)
            .map(|d| xd[d])
            .product();
        let kept: Vec<usize> = (0..xd.len())
            .filter(|d| mask & (1 << d) == 0)
            .map(|d| xd[d])
            .collect();
        let outputs: usize = kept.iter().product();
        // Sums by enumerating every input index.
        let mut sums = vec![0i64; outputs];
        for (flat, &v) in x.iter().enumerate() {
            let mut rem = flat;
            let mut idx = vec![0; xd.len()];
            for d in (0..xd.len()).rev() {
                idx[d] = rem % xd[d];
                rem /= xd[d];
            }
            let o = (0..xd.len())
                .filter(|d| mask & (1 << d) == 0)
                .fold(0, |o, d| o * xd[d] + idx[d]);
            sums[o] += v as i64;
        }
        // Upstream's Eval folds 1/n into the multiplier (spec §6.4).
        let k = (63 - (n as u64).leading_zeros() as i32)
            .min(32)
            .min(31 + sh);
        let m2 = (((m as i64) << k) / n as i64) as i32;
        let want: Vec<i8> = sums
            .iter()
            .map(|&s| {
                let shifted = (s - zp_in as i64 * n as i64) as i32;
                (refs::mbqm(shifted, m2, sh - k) + zp_out).clamp(-128, 127) as i8
            })
            .collect();
        let mut g = Graph::default();
        let xt = g.arena_q(
            "x",
            &xd.iter().map(|&v| v as u32).collect::<Vec<_>>(),
            s_in,
            zp_in,
        );
        let y = g.arena_q(
            "y",
            &kept.iter().map(|&v| v as u32).collect::<Vec<_>>(),
            s_out,
            zp_out,
        );
        g.node(
            OpCode::QMean,
            &[xt],
            y,
            NO_TENSOR,
            &words(&[mask as i32, m, sh]),
        );
        let got = run_i8(&g.finish(&[xt], &[y]), &x);
        assert_eq!(got, want, "case {case}");
        // Close to the real mean, quantized.
        for (o, &q) in got.iter().enumerate() {
            let mean = s_in as f64 * (sums[o] as f64 / n as f64 - zp_in as f64);
            let real = ((mean / s_out as f64).round() as i32 + zp_out).clamp(-128, 127);
            worst = worst.max((q as i32 - real).abs());
        }
    }
    assert!(worst <= 1, "mean {worst} steps from the real one");
}

/// TFLite's NEON `RoundToNearest` without `vcvtaq_s32_f32` (x86 through
/// NEON_2_SSE, where LiteRT's goldens come from), restated: `p ± 0.5` in f32, then
/// truncated.
fn neon_round(p: f32) -> i64 {
    (p + if p < 0.0 { -0.5f32 } else { 0.5 }).trunc() as i64
}

/// How LiteRT's vectorized quantizers round element `i` of `n`: blocks of eight
/// with [`neon_round`], the rest half away from zero.
fn quantizer_round(p: f32, i: usize, n: usize) -> i64 {
    if i < n / 8 * 8 {
        neon_round(p)
    } else {
        p.round() as i64
    }
}

/// `NeonSymmetricQuantizeFloats` restated: `(q, r / 127)`.
fn symmetric(x: &[f32]) -> (Vec<i8>, f32) {
    let r = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if r == 0.0 {
        return (vec![0; x.len()], 1.0);
    }
    let inv = 127.0 / r;
    let q = x
        .iter()
        .enumerate()
        .map(|(i, &v)| quantizer_round(v * inv, i, x.len()).clamp(-127, 127) as i8)
        .collect();
    (q, r / 127.0)
}

/// `NeonAsymmetricQuantizeFloats` restated: `(q, scale, zero point)`.
fn asymmetric(x: &[f32]) -> (Vec<i8>, f32, i32) {
    let rmin = x.iter().fold(0.0f32, |m, &v| m.min(v));
    let rmax = x.iter().fold(0.0f32, |m, &v| m.max(v));
    if rmin == rmax {
        return (vec![0; x.len()], 1.0, 0);
    }
    // The range in f32, the rest in f64.
    let scale = (rmax - rmin) as f64 / 255.0;
    let (lo, hi) = (rmin as f64 / scale, rmax as f64 / scale);
    let zp = if 128.0 + lo.abs() < 127.0 + hi.abs() {
        -128.0 - lo
    } else {
        127.0 - hi
    };
    let zp = zp.round().clamp(-128.0, 127.0) as i64;
    let sf = scale as f32;
    let inv = (1.0 / sf as f64) as f32;
    let q = x
        .iter()
        .enumerate()
        .map(|(i, &v)| (zp + quantizer_round(v * inv, i, x.len())).clamp(-128, 127) as i8)
        .collect();
    (q, sf, zp as i32)
}

#[test]
fn hybrid_conv_and_fc_quantize_the_input_per_batch() {
    let mut rng = Rng(34);
    let acts = [
        Act::None,
        Act::Relu,
        Act::Clip(0.0, 6.0),
        Act::Clip(-1.0, 1.0),
    ];
    let mut cases = 0;
    while cases < 120 {
        let (n, h, w, c, m) = (
            1 + rng.below(2),
            2 + rng.below(6),
            2 + rng.below(6),
            1 + rng.below(3),
            1 + rng.below(4),
        );
        let Some(win) = Win::random(&mut rng, h, w, true) else {
            continue;
        };
        cases += 1;
        let act = acts[rng.below(4)];
        let s_w = scale(&mut rng, 0.001, 0.05);
        let mut x: Vec<f32> = (0..n * h * w * c).map(|_| rng.f32() * 4.0).collect();
        if cases % 7 == 0 {
            // An all-zero batch: scaling factor 1, products 0.
            x[..h * w * c].fill(0.0);
        }
        let wt = i8s(&mut rng, m * win.kh * win.kw * c);
        let has_bias = rng.below(3) != 0;
        let bias: Vec<f32> = (0..m).map(|_| rng.f32()).collect();
        let mut want = Vec::new();
        for b in 0..n {
            let (q, sf) = symmetric(&x[b * h * w * c..][..h * w * c]);
            let factor = sf * s_w;
            let acc = conv_acc(&q, [1, h, w, c], &wt, m, &win, 0, &vec![0; m], None);
            for (i, &a) in acc.iter().enumerate() {
                let mut v = 0.0 + a as f32 * factor;
                if has_bias {
                    v += bias[i % m];
                }
                want.push(v);
            }
        }
        act.apply(&mut want);
        let mut g = Graph::default();
        let xt = g.arena("x", &[n, h, w, c].map(|v| v as u32));
        let wt_t = g.push(
            medwasm::format::TensorSpec::constant(
                "",
                &[m, win.kh, win.kw, c].map(|v| v as u32),
                &wt,
            )
            .quantized(s_w, 0),
        );
        let bt = if has_bias {
            g.constant(&[m as u32], &bias)
        } else {
            NO_TENSOR
        };
        let y = g.arena("y", &[n, win.oh, win.ow, m].map(|v| v as u32));
        let scratch = g.arena_of("", DType::I8, &[(h * w * c) as u32], None);
        let mut params = win.words();
        params.extend(act.encode());
        g.node(OpCode::HybridConv, &[xt, wt_t, bt], y, scratch, &params);
        let got = run(&g.finish(&[xt], &[y]), &[Data::F32(x)])
            .unwrap()
            .remove(0)
            .f32();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "conv case {cases}");
    }
    for case in 0..120 {
        let (batches, depth, units) = (1 + rng.below(3), 1 + rng.below(30), 1 + rng.below(8));
        let act = acts[rng.below(4)];
        let s_w = scale(&mut rng, 0.001, 0.05);
        let x: Vec<f32> = if case % 10 == 0 {
            vec![0.0; batches * depth]
        } else {
            (0..batches * depth).map(|_| rng.f32() * 3.0).collect()
        };
        let wt = i8s(&mut rng, units * depth);
        let has_bias = rng.below(3) != 0;
        let bias: Vec<f32> = (0..units).map(|_| rng.f32()).collect();
        let mut want = Vec::new();
        let zero = x.iter().all(|&v| v == 0.0);
        for b in 0..batches {
            let (q, sf) = symmetric(&x[b * depth..][..depth]);
            for u in 0..units {
                let mut v = if has_bias { bias[u] } else { 0.0 };
                if !zero {
                    let acc: i64 = (0..depth)
                        .map(|d| wt[u * depth + d] as i64 * q[d] as i64)
                        .sum();
                    v += acc as f32 * (sf * s_w);
                }
                want.push(v);
            }
        }
        act.apply(&mut want);
        let mut g = Graph::default();
        let xt = g.arena("x", &[batches as u32, depth as u32]);
        let wt_t = g.push(
            medwasm::format::TensorSpec::constant("", &[units as u32, depth as u32], &wt)
                .quantized(s_w, 0),
        );
        let bt = if has_bias {
            g.constant(&[units as u32], &bias)
        } else {
            NO_TENSOR
        };
        let y = g.arena("y", &[batches as u32, units as u32]);
        let scratch = g.arena_of("", DType::I8, &[depth as u32], None);
        g.node(
            OpCode::HybridFullyConnected,
            &[xt, wt_t, bt],
            y,
            scratch,
            &act.encode(),
        );
        let got = run(&g.finish(&[xt], &[y]), &[Data::F32(x)])
            .unwrap()
            .remove(0)
            .f32();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "fc case {case}");
    }
}

#[test]
fn data_movement_copies_int8_and_pads_with_the_zero_point() {
    let (s, zp) = (0.05, -7);
    let x: Vec<i8> = (0..6).map(|v| v * 10 - 20).collect();
    let mut g = Graph::default();
    let xt = g.arena_q("x", &[2, 3], s, zp);
    let tr = g.arena_q("t", &[3, 2], s, zp);
    g.node(OpCode::Transpose, &[xt], tr, NO_TENSOR, &[1, 0]);
    let pd = g.arena_q("p", &[3, 4], s, zp);
    // Constant mode: the pad value is the output zero point (word 1 must be 0).
    g.node(OpCode::Pad, &[tr], pd, NO_TENSOR, &[0, 0, 0, 1, 0, 1]);
    let rf = g.arena_q("r", &[3, 4], s, zp);
    g.node(OpCode::Pad, &[tr], rf, NO_TENSOR, &[1, 0, 0, 1, 0, 1]);
    let cat = g.arena_q("c", &[3, 8], s, zp);
    g.node(OpCode::Concat, &[pd, rf], cat, NO_TENSOR, &[1]);
    let cp = g.arena_q("y", &[24], s, zp);
    g.node(OpCode::Copy, &[cat], cp, NO_TENSOR, &[]);
    let blob = g.finish(&[xt], &[tr, cp]);
    let out = run(&blob, &[Data::I8(x)]).unwrap();
    // x = [[-20, -10, 0], [10, 20, 30]] transposed.
    assert_eq!(out[0].clone().i8(), [-20, 10, -10, 20, 0, 30]);
    #[rustfmt::skip]
    let want: [i8; 24] = [
        -7, -20, 10, -7,   10, -20, 10, -20,
        -7, -10, 20, -7,   20, -10, 20, -10,
        -7, 0, 30, -7,     30, 0, 30, 0,
    ];
    assert_eq!(out[1].clone().i8(), want);
}

#[test]
fn hybrid_quantizers_round_the_vector_part_like_literts_neon_code() {
    // 0.49999997 · 1 rounds half away from zero to 0, but `0.49999997 + 0.5` is
    // 1.0 in f32, so the vectorized part rounds it to 1.
    let p = 0.499_999_97f32;
    assert_eq!(neon_round(p), 1);
    assert_eq!(p.round(), 0.0);
    // Eight copies of the value whose quantized product is `p`, then one more:
    // the first eight go through the vector rounding, the ninth through `round`.
    let r = 127.0f32;
    let mut x = vec![p; 9];
    x.push(r);
    let (q, sf) = symmetric(&x);
    let inv = 127.0 / r;
    assert_eq!(p * inv, p, "inverse 1");
    assert_eq!((q[0], q[7], q[8], sf), (1, 1, 0, 1.0));
    let mut got = vec![0i8; x.len()];
    let sf_kernel = medwasm::kernels::int8::hybrid::quantize_symmetric(&x, &mut got);
    assert_eq!((got, sf_kernel), (q, sf));
}

#[test]
fn per_channel_hybrid_conv_and_depthwise_quantize_the_input_asymmetrically() {
    let mut rng = Rng(35);
    let acts = [
        Act::None,
        Act::Clip(0.0, f32::MAX),
        Act::Clip(0.0, 6.0),
        Act::Clip(-1.0, 1.0),
    ];
    let mut cases = 0;
    while cases < 160 {
        let depthwise = cases % 2 == 1;
        let (n, h, w, c) = (
            1 + rng.below(2),
            2 + rng.below(6),
            2 + rng.below(6),
            1 + rng.below(9),
        );
        let mult = if depthwise { 1 + rng.below(3) } else { 1 };
        let m = if depthwise {
            c * mult
        } else {
            2 + rng.below(9)
        };
        let Some(win) = Win::random(&mut rng, h, w, true) else {
            continue;
        };
        cases += 1;
        let act = acts[rng.below(4)];
        let scales: Vec<f32> = (0..m).map(|_| scale(&mut rng, 0.001, 0.05)).collect();
        // Inputs all of one sign one time in four: the range then ends at 0.
        let sign = [1.0, 1.0, -1.0, 0.0][rng.below(4)];
        let mut x: Vec<f32> = (0..n * h * w * c)
            .map(|_| {
                let v = rng.f32() * 3.0;
                if sign == 0.0 { v } else { v.abs() * sign }
            })
            .collect();
        if cases % 9 == 0 {
            x[..h * w * c].fill(0.0);
        }
        let wlen = if depthwise {
            win.kh * win.kw * m
        } else {
            m * win.kh * win.kw * c
        };
        let wt = i8s(&mut rng, wlen);
        let has_bias = rng.below(3) != 0;
        let bias: Vec<f32> = (0..m).map(|_| rng.f32()).collect();
        let mut want = Vec::new();
        for b in 0..n {
            let (q, sf, zp) = asymmetric(&x[b * h * w * c..][..h * w * c]);
            let acc = conv_acc(
                &q,
                [1, h, w, c],
                &wt,
                m,
                &win,
                zp,
                &vec![0; m],
                depthwise.then_some(mult),
            );
            for (i, &a) in acc.iter().enumerate() {
                let oc = i % m;
                // Conv scales as `(acc · s_w) · s_x`, depthwise as `acc · (s_w · s_x)`.
                let mut v = if depthwise {
                    a as f32 * (scales[oc] * sf)
                } else {
                    a as f32 * scales[oc] * sf
                };
                if has_bias {
                    v += bias[oc];
                }
                want.push(v);
            }
        }
        act.apply(&mut want);
        let mut g = Graph::default();
        let xt = g.arena("x", &[n, h, w, c].map(|v| v as u32));
        let wdims = if depthwise {
            [1, win.kh, win.kw, m]
        } else {
            [m, win.kh, win.kw, c]
        };
        let wt_t = g.constant_of(&wdims.map(|v| v as u32), &wt);
        let bt = if has_bias {
            g.constant(&[m as u32], &bias)
        } else {
            NO_TENSOR
        };
        let st = g.constant(&[m as u32], &scales);
        let y = g.arena("y", &[n, win.oh, win.ow, m].map(|v| v as u32));
        let scratch = g.arena_of("", DType::I8, &[(h * w * c) as u32], None);
        let mut params = win.words();
        params.extend(act.encode());
        let op = if depthwise {
            OpCode::HybridDepthwiseConv
        } else {
            OpCode::HybridConv
        };
        g.node(op, &[xt, wt_t, bt, st], y, scratch, &params);
        let got = run(&g.finish(&[xt], &[y]), &[Data::F32(x)])
            .unwrap()
            .remove(0)
            .f32();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&got),
            bits(&want),
            "case {cases}, depthwise {depthwise}"
        );
    }
}

#[test]
fn hybrid_fc_with_asymmetric_inputs_per_unit_and_per_tensor() {
    let mut rng = Rng(36);
    let acts = [Act::None, Act::Clip(0.0, f32::MAX), Act::Clip(0.0, 6.0)];
    for case in 0..150 {
        let (batches, depth, units) = (1 + rng.below(3), 1 + rng.below(40), 1 + rng.below(9));
        let per_unit = case % 2 == 0;
        let act = acts[rng.below(3)];
        let scales: Vec<f32> = (0..if per_unit { units } else { 1 })
            .map(|_| scale(&mut rng, 0.001, 0.05))
            .collect();
        let x: Vec<f32> = if case % 10 == 0 {
            vec![0.0; batches * depth]
        } else {
            (0..batches * depth).map(|_| rng.f32() * 3.0).collect()
        };
        let wt = i8s(&mut rng, units * depth);
        let has_bias = rng.below(3) != 0;
        let bias: Vec<f32> = (0..units).map(|_| rng.f32()).collect();
        let zero = x.iter().all(|&v| v == 0.0);
        let mut want = Vec::new();
        for b in 0..batches {
            let (q, sf, zp) = asymmetric(&x[b * depth..][..depth]);
            for u in 0..units {
                let mut v = if has_bias { bias[u] } else { 0.0 };
                if !zero {
                    let acc: i64 = (0..depth)
                        .map(|d| wt[u * depth + d] as i64 * (q[d] as i64 - zp as i64))
                        .sum();
                    v += acc as f32 * (sf * scales[if per_unit { u } else { 0 }]);
                }
                want.push(v);
            }
        }
        act.apply(&mut want);
        let mut g = Graph::default();
        let xt = g.arena("x", &[batches as u32, depth as u32]);
        let spec = medwasm::format::TensorSpec::constant("", &[units as u32, depth as u32], &wt);
        let wt_t = g.push(if per_unit {
            spec
        } else {
            spec.quantized(scales[0], 0)
        });
        let bt = if has_bias {
            g.constant(&[units as u32], &bias)
        } else {
            NO_TENSOR
        };
        let mut ins = vec![xt, wt_t, bt];
        if per_unit {
            ins.push(g.constant(&[units as u32], &scales));
        }
        let y = g.arena("y", &[batches as u32, units as u32]);
        let scratch = g.arena_of("", DType::I8, &[depth as u32], None);
        let mut params = act.encode().to_vec();
        params.push(1);
        g.node(OpCode::HybridFullyConnected, &ins, y, scratch, &params);
        let got = run(&g.finish(&[xt], &[y]), &[Data::F32(x)])
            .unwrap()
            .remove(0)
            .f32();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "case {case}, per unit {per_unit}");
    }
}
