//! The fast int8 kernels against TFLite's reference loops, bit for bit, on
//! whatever target the battery runs on: natively the blocked loops run the plain
//! Rust primitives, under Wasmtime the `simd128` ones, and in QEMU (the `mcu`
//! module) the Cortex-M DSP ones. Random shapes with odd channel counts, depth
//! multipliers, padding, dilation, kernels too large for one chunk of runs,
//! extreme values (−128, 127) and zero points at both ends; and sums that wrap
//! around i32, which every variant must wrap the same way.
//!
//! [`cases`] hands the same kinds of layers, as one-node blobs with the outputs
//! the reference kernels give, to the Cortex-M firmware.

use super::int8::{Data, run, zero_point};
use super::refs::quantize_multiplier;
use super::{Graph, Rng};
use medwasm::format::{NO_TENSOR, OpCode};
use medwasm::kernels::conv::Geometry;
use medwasm::kernels::int8::acc::{Blocked, Reference, Sums};
use medwasm::kernels::int8::conv::{conv, conv_ref, depthwise, depthwise_ref};
use medwasm::kernels::int8::fast::{Best, Fast};
use medwasm::kernels::int8::fc::{FcScales, fully_connected, fully_connected_ref};
use medwasm::kernels::int8::mac::{Mac, Scalar};
use medwasm::kernels::int8::requant::Requant;

/// A one-input, one-output blob with the output it must give, for the firmware.
#[derive(Debug, Clone)]
pub struct BlobCase {
    pub name: String,
    pub blob: Vec<u8>,
    /// Graph input 0, little-endian bytes.
    pub input: Vec<u8>,
    /// Graph output 0, little-endian bytes.
    pub want: Vec<u8>,
    /// Multiply-accumulates of one run.
    pub macs: u64,
}

impl BlobCase {
    /// Runs the blob here and compares with `want`.
    pub fn check(&self) {
        let input = if self.f32_input() {
            Data::F32(
                self.input
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            )
        } else {
            Data::I8(self.input.iter().map(|&b| b as i8).collect())
        };
        let got = match run(&self.blob, &[input]).unwrap().remove(0) {
            Data::I8(v) => v.iter().map(|&b| b as u8).collect::<Vec<_>>(),
            Data::F32(v) => v.iter().flat_map(|f| f.to_le_bytes()).collect(),
        };
        assert!(got == self.want, "{}: output differs", self.name);
    }

    fn f32_input(&self) -> bool {
        let blob = medwasm::AlignedBuf::from_bytes(&self.blob);
        let model = medwasm::Model::load(blob.as_slice()).unwrap();
        model.input(0).unwrap().dtype == medwasm::DType::F32
    }
}

/// Random int8 values: uniform, or one time in four only −128 and 127.
pub fn values(rng: &mut Rng, n: usize) -> Vec<i8> {
    if rng.below(4) == 0 {
        (0..n)
            .map(|_| if rng.below(2) == 0 { -128 } else { 127 })
            .collect()
    } else {
        (0..n).map(|_| rng.next() as i8).collect()
    }
}

/// Channel counts: around the primitives' blocks of 4 and 8 and the DSP's 4-byte
/// loads.
const CHANNELS: [usize; 17] = [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 64];

/// One axis of a window: input length, kernel, stride, dilation, pads, output.
fn axis(rng: &mut Rng, n: usize, k: usize, dilate: bool) -> Option<[usize; 6]> {
    let s = 1 + rng.below(3);
    let d = if dilate { 1 + rng.below(3) } else { 1 };
    let span = (k - 1) * d + 1;
    let (p0, p1) = (rng.below(k + 1), rng.below(k + 1));
    let padded = n + p0 + p1;
    let out = padded.checked_sub(span)? / s + 1;
    Some([k, s, d, p0, p1, out])
}

/// A random window over an `[n, h, w, c]` input with `m` output channels, and its
/// bottom and right pads. `large` asks for more runs or taps than one chunk holds.
fn window(
    rng: &mut Rng,
    c: usize,
    m: usize,
    depthwise: bool,
    large: bool,
) -> (Geometry, usize, usize) {
    loop {
        let (n, h, w) = (1 + rng.below(2), 1 + rng.below(9), 1 + rng.below(9));
        let dilate = rng.below(3) == 0;
        let (kh, kw) = if large {
            if depthwise || dilate {
                (4 + rng.below(3), 4 + rng.below(3))
            } else {
                (17 + rng.below(4), 1 + rng.below(3))
            }
        } else {
            (1 + rng.below(5), 1 + rng.below(5))
        };
        let h = if large { h + kh } else { h };
        let (Some(ah), Some(aw)) = (axis(rng, h, kh, dilate), axis(rng, w, kw, dilate)) else {
            continue;
        };
        let g = Geometry {
            n,
            c,
            h,
            w,
            m,
            oh: ah[5],
            ow: aw[5],
            kh,
            kw,
            sh: ah[1],
            sw: aw[1],
            dh: ah[2],
            dw: aw[2],
            pt: ah[3],
            pl: aw[3],
            group: if depthwise { c } else { 1 },
        };
        return (g, ah[4], aw[4]);
    }
}

/// Every output's sum from `S`, checking each is given exactly once.
fn conv_sums<S: Sums>(g: &Geometry, depthwise: bool, x: &[i8], x_off: i32, wt: &[i8]) -> Vec<i32> {
    let (image, out) = (g.h * g.w * g.c, g.oh * g.ow * g.m);
    let mut sums = vec![None; g.n * out];
    for n in 0..g.n {
        let ys = &mut sums[n * out..][..out];
        let sink = |at: usize, oc: usize, acc: i32| {
            assert!(
                ys[at * g.m + oc].replace(acc).is_none(),
                "output given twice"
            );
        };
        let xs = &x[n * image..][..image];
        if depthwise {
            S::depthwise(g, xs, x_off, wt, sink);
        } else {
            S::conv(g, xs, x_off, wt, sink);
        }
    }
    sums.into_iter()
        .map(|v| v.expect("every output given"))
        .collect()
}

fn fc_sums<S: Sums>(depth: usize, units: usize, x: &[i8], x_off: i32, wt: &[i8]) -> Vec<i32> {
    let mut sums = vec![None; units];
    S::fully_connected(depth, units, x, x_off, wt, |u, acc| {
        assert!(sums[u].replace(acc).is_none(), "unit given twice");
    });
    sums.into_iter()
        .map(|v| v.expect("every unit given"))
        .collect()
}

#[test]
fn blocked_sums_are_the_reference_sums_bit_for_bit() {
    let mut rng = Rng(71);
    for case in 0..600 {
        let depthwise = case % 2 == 1;
        let c = CHANNELS[rng.below(CHANNELS.len())];
        let m = if depthwise {
            c * [1, 1, 1, 2, 3][rng.below(5)]
        } else {
            CHANNELS[rng.below(CHANNELS.len())]
        };
        let (g, _, _) = window(&mut rng, c, m, depthwise, case % 10 == 0);
        let x = values(&mut rng, g.n * g.h * g.w * g.c);
        let wlen = if depthwise {
            g.kh * g.kw * g.m
        } else {
            g.m * g.kh * g.kw * g.c
        };
        let wt = values(&mut rng, wlen);
        let x_off = -zero_point(&mut rng);
        let want = conv_sums::<Reference>(&g, depthwise, &x, x_off, &wt);
        let what = format!("case {case}: depthwise {depthwise}, {g:?}, x_off {x_off}");
        assert_eq!(
            conv_sums::<Blocked<Scalar>>(&g, depthwise, &x, x_off, &wt),
            want,
            "scalar, {what}"
        );
        assert_eq!(
            conv_sums::<Blocked<Fast>>(&g, depthwise, &x, x_off, &wt),
            want,
            "{}, {what}",
            Fast::NAME
        );
        assert_eq!(
            conv_sums::<Best>(&g, depthwise, &x, x_off, &wt),
            want,
            "{}, {what}",
            Best::NAME
        );
    }
    for case in 0..300 {
        let (depth, units) = (1 + rng.below(300), 1 + rng.below(40));
        let (x, wt) = (values(&mut rng, depth), values(&mut rng, units * depth));
        let x_off = -zero_point(&mut rng);
        let want = fc_sums::<Reference>(depth, units, &x, x_off, &wt);
        let what = format!("fc case {case}: depth {depth}, units {units}, x_off {x_off}");
        assert_eq!(
            fc_sums::<Blocked<Scalar>>(depth, units, &x, x_off, &wt),
            want,
            "scalar, {what}"
        );
        assert_eq!(
            fc_sums::<Blocked<Fast>>(depth, units, &x, x_off, &wt),
            want,
            "{}, {what}",
            Fast::NAME
        );
    }
}

#[test]
fn sums_that_wrap_around_i32_wrap_the_same_way_in_every_variant() {
    // 70 000 products of −128 · 255: −2 284 800 000, below i32::MIN. The loader
    // refuses such a layer, but the kernels' sums are taken modulo 2^32, so every
    // grouping gives the same bits: the argument that makes the fast variants
    // bit-identical without any overflow analysis.
    let depth = 70_003;
    let x = vec![127i8; depth];
    let mut wt = vec![-128i8; 2 * depth];
    wt[depth + 5] = 127;
    let want = fc_sums::<Reference>(depth, 2, &x, 128, &wt);
    let exact = -128i64 * 255 * depth as i64;
    assert_eq!(want[0], exact as i32, "the reference wraps");
    assert_ne!(want[0] as i64, exact);
    assert_eq!(fc_sums::<Blocked<Scalar>>(depth, 2, &x, 128, &wt), want);
    assert_eq!(
        fc_sums::<Blocked<Fast>>(depth, 2, &x, 128, &wt),
        want,
        "{}",
        Fast::NAME
    );
}

/// A random int8 convolution (plain or depthwise) with everything a node needs.
struct ConvLayer {
    g: Geometry,
    pads: (usize, usize),
    depthwise: bool,
    q: Requant,
    x: Vec<i8>,
    wt: Vec<i8>,
    bias: Option<Vec<i32>>,
    mult: Vec<i32>,
    shift: Vec<i32>,
}

/// A multiplier and shift that map a sum of about `typical` to about ±64.
fn requant_for(rng: &mut Rng, typical: f64) -> (i32, i32) {
    let real = (64.0 / typical.max(1.0)) * (0.5 + rng.f32().abs() as f64);
    quantize_multiplier(real)
}

impl ConvLayer {
    fn random(rng: &mut Rng, depthwise: bool) -> ConvLayer {
        let c = CHANNELS[rng.below(CHANNELS.len())];
        let m = if depthwise {
            c * [1, 1, 2][rng.below(3)]
        } else {
            CHANNELS[rng.below(CHANNELS.len())]
        };
        let large = rng.below(12) == 0;
        let (g, pb, pr) = window(rng, c, m, depthwise, large);
        let per_k = if depthwise { 1 } else { c };
        let typical = ((g.kh * g.kw * per_k) as f64).sqrt() * 70.0 * 70.0;
        let channels = if rng.below(4) == 0 { 1 } else { m };
        let (mult, shift) = (0..channels).map(|_| requant_for(rng, typical)).unzip();
        let has_bias = rng.below(5) != 0;
        let zp_out = zero_point(rng);
        let (lo, hi) = if rng.below(3) == 0 {
            (zp_out.max(-128), 127)
        } else {
            (-128, 127)
        };
        ConvLayer {
            pads: (pb, pr),
            depthwise,
            q: Requant {
                zp_in: zero_point(rng),
                zp_out,
                act_min: lo,
                act_max: hi,
            },
            x: values(rng, g.n * g.h * g.w * g.c),
            wt: values(
                rng,
                if depthwise {
                    g.kh * g.kw * m
                } else {
                    m * g.kh * g.kw * c
                },
            ),
            bias: has_bias.then(|| (0..m).map(|_| rng.below(40_001) as i32 - 20_000).collect()),
            mult,
            shift,
            g,
        }
    }

    fn run(&self, reference: bool) -> Vec<i8> {
        let g = &self.g;
        let mut y = vec![0i8; g.n * g.oh * g.ow * g.m];
        let f = match (self.depthwise, reference) {
            (false, false) => conv,
            (false, true) => conv_ref,
            (true, false) => depthwise,
            (true, true) => depthwise_ref,
        };
        f(
            g,
            &self.q,
            &self.x,
            &self.wt,
            self.bias.as_deref(),
            &self.mult,
            &self.shift,
            &mut y,
        );
        y
    }

    fn blob_case(&self, name: String) -> BlobCase {
        let g = &self.g;
        let mut gr = Graph::default();
        let dims = |v: [usize; 4]| v.map(|d| d as u32);
        let x = gr.arena_q("x", &dims([g.n, g.h, g.w, g.c]), 0.05, self.q.zp_in);
        let wdims = if self.depthwise {
            [1, g.kh, g.kw, g.m]
        } else {
            [g.m, g.kh, g.kw, g.c]
        };
        let wt = gr.constant_of(&dims(wdims), &self.wt);
        let bt = match &self.bias {
            Some(b) => gr.constant_of(&[g.m as u32], b),
            None => NO_TENSOR,
        };
        let mt = gr.constant_of(&[self.mult.len() as u32], &self.mult);
        let st = gr.constant_of(&[self.shift.len() as u32], &self.shift);
        let y = gr.arena_q("y", &dims([g.n, g.oh, g.ow, g.m]), 0.1, self.q.zp_out);
        let mut params: Vec<u32> = [
            g.kh,
            g.kw,
            g.sh,
            g.sw,
            g.dh,
            g.dw,
            g.pt,
            g.pl,
            self.pads.0,
            self.pads.1,
        ]
        .iter()
        .map(|&v| v as u32)
        .collect();
        params.extend([self.q.act_min as u32, self.q.act_max as u32]);
        let op = if self.depthwise {
            OpCode::QDepthwiseConv
        } else {
            OpCode::QConv
        };
        gr.node(op, &[x, wt, bt, mt, st], y, NO_TENSOR, &params);
        let per_out = if self.depthwise {
            g.kh * g.kw
        } else {
            g.kh * g.kw * g.c
        };
        BlobCase {
            name,
            blob: gr.finish(&[x], &[y]),
            input: self.x.iter().map(|&v| v as u8).collect(),
            want: self.run(true).iter().map(|&v| v as u8).collect(),
            macs: (g.n * g.oh * g.ow * g.m * per_out) as u64,
        }
    }
}

/// A random int8 fully connected layer in one of the two requantization modes.
struct FcLayer {
    batches: usize,
    depth: usize,
    units: usize,
    q: Requant,
    zp_w: i32,
    x: Vec<i8>,
    wt: Vec<i8>,
    bias: Option<Vec<i32>>,
    mult: Vec<i32>,
    shift: Vec<i32>,
    scale: Vec<f64>,
    litert_ref: bool,
}

impl FcLayer {
    fn random(rng: &mut Rng) -> FcLayer {
        let (batches, depth, units) = (1 + rng.below(3), 1 + rng.below(200), 1 + rng.below(40));
        let per_tensor = rng.below(3) == 0;
        let channels = if per_tensor { 1 } else { units };
        let typical = (depth as f64).sqrt() * 70.0 * 70.0;
        let (mult, shift) = (0..channels).map(|_| requant_for(rng, typical)).unzip();
        let scale = (0..channels)
            .map(|_| 64.0 / typical * (0.5 + rng.f32().abs() as f64))
            .collect();
        FcLayer {
            batches,
            depth,
            units,
            q: Requant {
                zp_in: zero_point(rng),
                zp_out: zero_point(rng),
                act_min: -128,
                act_max: 127,
            },
            zp_w: if per_tensor {
                rng.below(21) as i32 - 10
            } else {
                0
            },
            x: values(rng, batches * depth),
            wt: values(rng, units * depth),
            bias: (rng.below(4) != 0).then(|| {
                (0..units)
                    .map(|_| rng.below(20_001) as i32 - 10_000)
                    .collect()
            }),
            mult,
            shift,
            scale,
            litert_ref: rng.below(2) == 0,
        }
    }

    fn run(&self, reference: bool) -> Vec<i8> {
        let mut y = vec![0i8; self.batches * self.units];
        let scales = if self.litert_ref {
            FcScales::LiteRtRef { scale: &self.scale }
        } else {
            FcScales::FixedPoint {
                mult: &self.mult,
                shift: &self.shift,
            }
        };
        let f = if reference {
            fully_connected_ref
        } else {
            fully_connected
        };
        f(
            self.batches,
            self.depth,
            self.units,
            &self.q,
            self.zp_w,
            &self.x,
            &self.wt,
            self.bias.as_deref(),
            scales,
            &mut y,
        );
        y
    }

    fn blob_case(&self, name: String) -> BlobCase {
        let mut g = Graph::default();
        let x = g.arena_q(
            "x",
            &[self.batches as u32, self.depth as u32],
            0.05,
            self.q.zp_in,
        );
        let spec = medwasm::format::TensorSpec::constant(
            "",
            &[self.units as u32, self.depth as u32],
            &self.wt,
        );
        let wt = g.push(if self.mult.len() == 1 {
            spec.quantized(0.01, self.zp_w)
        } else {
            spec
        });
        let bt = match &self.bias {
            Some(b) => g.constant_of(&[self.units as u32], b),
            None => NO_TENSOR,
        };
        let mut inputs = vec![x, wt, bt];
        if self.litert_ref {
            inputs.push(g.constant_of(&[self.scale.len() as u32], &self.scale));
        } else {
            inputs.push(g.constant_of(&[self.mult.len() as u32], &self.mult));
            inputs.push(g.constant_of(&[self.shift.len() as u32], &self.shift));
        }
        let y = g.arena_q(
            "y",
            &[self.batches as u32, self.units as u32],
            0.1,
            self.q.zp_out,
        );
        g.node(
            OpCode::QFullyConnected,
            &inputs,
            y,
            NO_TENSOR,
            &[
                self.litert_ref as u32,
                self.q.act_min as u32,
                self.q.act_max as u32,
            ],
        );
        BlobCase {
            name,
            blob: g.finish(&[x], &[y]),
            input: self.x.iter().map(|&v| v as u8).collect(),
            want: self.run(true).iter().map(|&v| v as u8).collect(),
            macs: (self.batches * self.depth * self.units) as u64,
        }
    }
}

#[test]
fn fast_int8_kernels_give_the_reference_kernels_outputs() {
    let mut rng = Rng(72);
    for case in 0..200 {
        let layer = ConvLayer::random(&mut rng, case % 2 == 1);
        assert_eq!(
            layer.run(false),
            layer.run(true),
            "case {case}: depthwise {}, {:?}",
            layer.depthwise,
            layer.g
        );
    }
    for case in 0..200 {
        let layer = FcLayer::random(&mut rng);
        assert_eq!(layer.run(false), layer.run(true), "fc case {case}");
    }
}

/// Random int8 layers as blobs with the reference kernels' outputs: what the
/// Cortex-M firmware runs with its own kernels.
pub fn cases(count: usize) -> Vec<BlobCase> {
    let mut rng = Rng(73);
    let mut out = Vec::new();
    for k in 0..count {
        out.push(match k % 3 {
            0 => ConvLayer::random(&mut rng, false).blob_case(format!("random conv {k}")),
            1 => ConvLayer::random(&mut rng, true).blob_case(format!("random depthwise {k}")),
            _ => FcLayer::random(&mut rng).blob_case(format!("random fc {k}")),
        });
    }
    out
}

#[test]
fn random_layer_blobs_give_the_reference_outputs() {
    // The blobs the firmware gets, checked here first: the loader accepts each and
    // the runtime gives the reference kernels' output.
    for case in cases(60) {
        case.check();
    }
}

#[test]
fn a_prepared_channel_requantizes_as_requant_output() {
    use medwasm::kernels::int8::requant::{FusedChannel, PreparedChannel};
    let mut rng = Rng(74);
    let edges = [
        i32::MIN,
        i32::MIN + 1,
        -(1 << 30),
        -3,
        -1,
        0,
        1,
        2,
        1 << 30,
        i32::MAX - 1,
        i32::MAX,
    ];
    let multipliers = [0, 1 << 30, (1 << 30) + 1, i32::MAX - 1, i32::MAX];
    for case in 0..200_000 {
        let pick = |rng: &mut Rng, v: &[i32]| v[rng.below(v.len())];
        let acc = if case % 3 == 0 {
            pick(&mut rng, &edges)
        } else {
            rng.next() as i32
        };
        let bias = if case % 5 == 0 {
            pick(&mut rng, &edges)
        } else {
            rng.next() as i32 >> rng.below(32)
        };
        let m = if case % 2 == 0 {
            pick(&mut rng, &multipliers)
        } else {
            (1 << 30) + (rng.next() as u32 >> 2) as i32
        };
        let shift = rng.below(62) as i32 - 31;
        let zp_out = rng.below(256) as i32 - 128;
        let (a, b) = (rng.below(256) as i32 - 128, rng.below(256) as i32 - 128);
        let q = Requant {
            zp_in: 0,
            zp_out,
            act_min: a.min(b),
            act_max: a.max(b),
        };
        let want = q.output(acc.wrapping_add(bias), m, shift);
        assert_eq!(
            PreparedChannel::new(bias, m, shift).output(&q, acc),
            want,
            "acc {acc} bias {bias} m {m} shift {shift} {q:?}"
        );
        // The Cortex-M assembly's form, for the right shifts it takes.
        match FusedChannel::new(bias, m, shift) {
            Some(f) => assert_eq!(
                f.output(&q, acc),
                want,
                "fused: acc {acc} bias {bias} m {m} shift {shift} {q:?}"
            ),
            None => assert!(shift >= 0, "shift {shift} has no fused form"),
        }
    }
}

#[test]
fn a_large_add_tabulates_the_same_rescaling_as_each_element() {
    use medwasm::Dims;
    use medwasm::kernels::int8::binary::{AddParams, add};
    let mut rng = Rng(75);
    for case in 0..60 {
        let multiplier = |rng: &mut Rng| (1 << 30) + (rng.next() as u32 >> 2) as i32;
        let shift = |rng: &mut Rng| -(rng.below(32) as i8);
        let zp = |rng: &mut Rng| (rng.below(256) as i32 - 128) as i16;
        let (lo, hi) = (rng.below(256) as i32 - 128, rng.below(256) as i32 - 128);
        let p = AddParams {
            sub: case % 2 == 1,
            left_shift: 20 - rng.below(3) as u8,
            m1: multiplier(&mut rng),
            s1: shift(&mut rng),
            m2: multiplier(&mut rng),
            s2: shift(&mut rng),
            mo: multiplier(&mut rng),
            so: shift(&mut rng),
            zp1: zp(&mut rng),
            zp2: zp(&mut rng),
            zpo: zp(&mut rng),
            act_min: lo.min(hi) as i8,
            act_max: lo.max(hi) as i8,
        };
        // A residual connection, and one operand broadcast along the channels.
        let (ad, bd) = if case % 3 == 0 {
            (vec![1, 16, 16, 8], vec![8])
        } else {
            (vec![1, 16, 16, 8], vec![1, 16, 16, 8])
        };
        let yd = Dims::from_slice(&[1, 16, 16, 8]).unwrap();
        let (ad, bd) = (
            Dims::from_slice(&ad).unwrap(),
            Dims::from_slice(&bd).unwrap(),
        );
        let a = values(&mut rng, ad.elements());
        let b = values(&mut rng, bd.elements());
        let mut y = vec![0i8; yd.elements()];
        add(&p, &a, &ad, &b, &bd, &mut y, &yd);
        for (i, &got) in y.iter().enumerate() {
            let want = p.eval(a[i], b[if bd.elements() == 8 { i % 8 } else { i }]);
            assert_eq!(got, want, "case {case}, element {i}: {p:?}");
        }
    }
}

#[test]
fn each_target_runs_its_own_primitives() {
    // What this battery checks depends on it: a build that fell back to the plain
    // Rust primitives would pass without testing the fast ones.
    let want = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        "simd128"
    } else {
        "scalar"
    };
    assert_eq!(Fast::NAME, want);
    assert_eq!(<Best as Sums>::NAME, want);
}
