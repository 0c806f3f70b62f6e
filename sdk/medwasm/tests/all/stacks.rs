//! Layer stacks shaped like the MLPerf Tiny int8 models the issue measures:
//! `kws_int8` (DS-CNN: a 10×4 convolution, four depthwise 3×3 + pointwise blocks,
//! average pool, fully connected, softmax) and `ic_resnet8_int8` (ResNet-8: seven
//! 3×3 convolutions, two strided 1×1 shortcuts, three residual ADDs, average pool,
//! fully connected, softmax), with the models' shapes, strides, padding and
//! activation quantization (read from `../shared/models` with LiteRT's
//! interpreter) and seeded random weights. The converter cannot import those models
//! on this branch yet; these blobs let the benchmarks count what the kernels
//! execute per multiply-accumulate (`docs/benchmarks.md`), natively, under
//! Wasmtime and on the Cortex-M firmware, each layer on its own too.

use super::fast::{BlobCase, values};
use super::int8::{Data, run, softmax_params};
use super::refs::quantize_multiplier;
use super::{Graph, Rng};
use medwasm::format::{NO_TENSOR, OpCode};

/// A tensor of the stack being built: index, NHWC shape, scale, zero point.
#[derive(Debug, Clone, Copy)]
struct T {
    id: u32,
    dims: [usize; 4],
    s: f32,
    zp: i32,
}

/// A weighted layer on its own: name, blob, input shape, MACs.
type Layer = (String, Vec<u8>, [usize; 4], u64);

/// Builds a stack layer by layer, and each weighted layer as a blob of its own.
struct Stack {
    g: Graph,
    rng: Rng,
    macs: u64,
    /// One-node blobs of the weighted layers.
    layers: Vec<Layer>,
}

fn u32s(v: &[usize]) -> Vec<u32> {
    v.iter().map(|&d| d as u32).collect()
}

/// TFLite's SAME padding along one axis: output size, leading and trailing pads.
fn same(n: usize, k: usize, s: usize) -> (usize, usize, usize) {
    let out = n.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(n);
    (out, total / 2, total - total / 2)
}

impl Stack {
    fn new(seed: u64) -> Stack {
        Stack {
            g: Graph::default(),
            rng: Rng(seed),
            macs: 0,
            layers: Vec::new(),
        }
    }

    fn input(&mut self, dims: [usize; 4], s: f32, zp: i32) -> T {
        let id = self.g.arena_q("x", &u32s(&dims), s, zp);
        T { id, dims, s, zp }
    }

    /// A convolution (depthwise with `depthwise`, multiplier 1), SAME padding, with
    /// the fused ReLU of an output at zero point `zp` (TFLite's range
    /// `[max(−128, zp), 127]`), weights scaled so that typical sums land inside it.
    fn conv(
        &mut self,
        x: T,
        m: usize,
        k: [usize; 2],
        s: usize,
        depthwise: bool,
        out: (f32, i32),
    ) -> T {
        let [n, h, w, c] = x.dims;
        let (oh, pt, pb) = same(h, k[0], s);
        let (ow, pl, pr) = same(w, k[1], s);
        let per_out = if depthwise {
            k[0] * k[1]
        } else {
            k[0] * k[1] * c
        };
        let wlen = if depthwise {
            k[0] * k[1] * m
        } else {
            m * per_out
        };
        let wt = values(&mut self.rng, wlen);
        // RMS of `w · (x − zp)` for uniform weights and inputs at zero point −128.
        let typical = (per_out as f64).sqrt() * 150.0 * 75.0;
        let ms: Vec<(i32, i32)> = (0..m)
            .map(|_| {
                let jitter = 0.5 + self.rng.f32().abs() as f64;
                quantize_multiplier(60.0 / typical * jitter)
            })
            .collect();
        let bias: Vec<i32> = (0..m).map(|_| self.rng.below(2001) as i32 - 1000).collect();
        let wdims = if depthwise {
            [1, k[0], k[1], m]
        } else {
            [m, k[0], k[1], c]
        };
        let mut params: Vec<u32> = [k[0], k[1], s, s, 1, 1, pt, pl, pb, pr]
            .iter()
            .map(|&v| v as u32)
            .collect();
        params.extend([out.1.max(-128) as u32, 127]);
        let op = if depthwise {
            OpCode::QDepthwiseConv
        } else {
            OpCode::QConv
        };
        let dims = [n, oh, ow, m];
        let macs = (n * oh * ow * m * per_out) as u64;
        self.macs += macs;
        // The layer alone, for its own count.
        let mut one = Graph::default();
        let xi = one.arena_q("x", &u32s(&x.dims), x.s, x.zp);
        let node = |g: &mut Graph, x: u32| {
            let wt_t = g.constant_of(&u32s(&wdims), &wt);
            let bt = g.constant_of(&[m as u32], &bias);
            let mt = g.constant_of(&[m as u32], &ms.iter().map(|p| p.0).collect::<Vec<_>>());
            let st = g.constant_of(&[m as u32], &ms.iter().map(|p| p.1).collect::<Vec<_>>());
            let y = g.arena_q("y", &u32s(&dims), out.0, out.1);
            g.node(op, &[x, wt_t, bt, mt, st], y, NO_TENSOR, &params);
            y
        };
        let yi = node(&mut one, xi);
        let name = format!(
            "{} {}x{} s{s} {c}->{m} {h}x{w}",
            if depthwise { "depthwise" } else { "conv" },
            k[0],
            k[1]
        );
        self.layers
            .push((name, one.finish(&[xi], &[yi]), x.dims, macs));
        let id = node(&mut self.g, x.id);
        T {
            id,
            dims,
            s: out.0,
            zp: out.1,
        }
    }

    /// Residual ADD with a fused ReLU, LiteRT's Prepare.
    fn add(&mut self, a: T, b: T, out: (f32, i32)) -> T {
        let twice = 2.0 * a.s.max(b.s) as f64;
        let (m1, s1) = quantize_multiplier(a.s as f64 / twice);
        let (m2, s2) = quantize_multiplier(b.s as f64 / twice);
        let (mo, so) = quantize_multiplier(twice / ((1 << 20) as f64 * out.0 as f64));
        let id = self.g.arena_q("", &u32s(&a.dims), out.0, out.1);
        let p = [0, 20, m1, s1, m2, s2, mo, so, out.1.max(-128), 127];
        self.g.node(
            OpCode::QAdd,
            &[a.id, b.id],
            id,
            NO_TENSOR,
            &p.map(|v| v as u32),
        );
        T { id, ..a }.with(out)
    }

    /// Global average pool, reshape, fully connected (LiteRT's f64 requantization)
    /// and softmax: the classifier head of both models.
    fn head(&mut self, x: T, units: usize, logits: (f32, i32)) -> u32 {
        let [n, h, w, c] = x.dims;
        let pooled = self.g.arena_q("", &[n as u32, 1, 1, c as u32], x.s, x.zp);
        let mut p: Vec<u32> = [h, w, h, w, 1, 1, 0, 0, 0, 0]
            .iter()
            .map(|&v| v as u32)
            .collect();
        p.extend([-128i32 as u32, 127]);
        self.g
            .node(OpCode::QAveragePool, &[x.id], pooled, NO_TENSOR, &p);
        let flat = self.g.arena_q("", &[n as u32, c as u32], x.s, x.zp);
        self.g.node(OpCode::Copy, &[pooled], flat, NO_TENSOR, &[]);
        let wt = values(&mut self.rng, units * c);
        let wt = self.g.constant_of(&[units as u32, c as u32], &wt);
        let bias: Vec<i32> = (0..units)
            .map(|_| self.rng.below(2001) as i32 - 1000)
            .collect();
        let bt = self.g.constant_of(&[units as u32], &bias);
        let typical = (c as f64).sqrt() * 150.0 * 75.0;
        let sc = self.g.constant_of(&[1], &[20.0 / typical]);
        let y = self
            .g
            .arena_q("", &[n as u32, units as u32], logits.0, logits.1);
        self.g.node(
            OpCode::QFullyConnected,
            &[flat, wt, bt, sc],
            y,
            NO_TENSOR,
            &[1, -128i32 as u32, 127],
        );
        self.macs += (n * c * units) as u64;
        let (m, ls, diff_min) = softmax_params(1.0, logits.0);
        let probs = self
            .g
            .arena_q("y", &[n as u32, units as u32], 1.0 / 256.0, -128);
        self.g.node(
            OpCode::QSoftmax,
            &[y],
            probs,
            NO_TENSOR,
            &[m as u32, ls as u32, diff_min as u32],
        );
        probs
    }

    /// The stack and each weighted layer as cases, their outputs computed here.
    fn finish(mut self, name: &str, x: T, y: u32) -> Vec<BlobCase> {
        let [n, h, w, c] = x.dims;
        let input = values(&mut self.rng, n * h * w * c);
        let blob = self.g.finish(&[x.id], &[y]);
        let mut cases = vec![case(format!("{name} stack"), blob, input, self.macs)];
        for (layer, blob, dims, macs) in self.layers {
            let input = values(&mut self.rng, dims.iter().product());
            cases.push(case(format!("{name} {layer}"), blob, input, macs));
        }
        cases
    }
}

impl T {
    fn with(self, (s, zp): (f32, i32)) -> T {
        T { s, zp, ..self }
    }
}

/// A case whose expected output is what this build's runtime gives.
fn case(name: String, blob: Vec<u8>, input: Vec<i8>, macs: u64) -> BlobCase {
    let want = run(&blob, &[Data::I8(input.clone())])
        .unwrap()
        .remove(0)
        .i8();
    BlobCase {
        name,
        blob,
        input: input.iter().map(|&v| v as u8).collect(),
        want: want.iter().map(|&v| v as u8).collect(),
        macs,
    }
}

/// `kws_int8`'s layers: input `[1, 49, 10, 1]` at (0.5847, 83).
pub fn kws() -> Vec<BlobCase> {
    let mut s = Stack::new(81);
    let x = s.input([1, 49, 10, 1], 0.584_702_9, 83);
    let mut t = s.conv(x, 64, [10, 4], 2, false, (0.078_725_4, -128));
    let outs = [
        (0.082_815_01, -128),
        (0.060_025_7, -128),
        (0.062_760_03, -128),
        (0.037_401_79, -128),
        (0.045_901_06, -128),
        (0.032_970_76, -128),
        (0.046_844_04, -128),
        (0.080_236_16, -128),
    ];
    for pair in outs.chunks(2) {
        t = s.conv(t, 64, [3, 3], 1, true, pair[0]);
        t = s.conv(t, 64, [1, 1], 1, false, pair[1]);
    }
    let y = s.head(t, 12, (0.144_692_5, 14));
    s.finish("kws", x, y)
}

/// `ic_resnet8_int8`'s layers: input `[1, 32, 32, 3]` at (1.0, −128).
pub fn resnet() -> Vec<BlobCase> {
    let mut s = Stack::new(82);
    let x = s.input([1, 32, 32, 3], 1.0, -128);
    let a = s.conv(x, 16, [3, 3], 1, false, (0.039_393_55, -128));
    let b = s.conv(a, 16, [3, 3], 1, false, (0.076_293_16, -128));
    let b = s.conv(b, 16, [3, 3], 1, false, (0.104_194_96, 4));
    let a = s.add(a, b, (0.050_945_67, -128));
    let b = s.conv(a, 32, [3, 3], 2, false, (0.045_672_83, -128));
    let b = s.conv(b, 32, [3, 3], 1, false, (0.113_118_84, 4));
    let short = s.conv(a, 32, [1, 1], 2, false, (0.044_761_43, -17));
    let a = s.add(short, b, (0.053_236_22, -128));
    let b = s.conv(a, 64, [3, 3], 2, false, (0.028_450_18, -128));
    let b = s.conv(b, 64, [3, 3], 1, false, (0.217_243_64, -2));
    let short = s.conv(a, 64, [1, 1], 2, false, (0.083_858_3, 38));
    let a = s.add(short, b, (0.127_069_15, -128));
    let y = s.head(a, 10, (0.171_853_51, 24));
    s.finish("resnet", x, y)
}

#[test]
fn the_model_shaped_stacks_run_and_count_their_macs() {
    let (kws, resnet) = (kws(), resnet());
    // The models' multiply-accumulates (convolutions and fully connected).
    assert_eq!(kws[0].macs, 2_656_768);
    assert_eq!(resnet[0].macs, 12_501_632);
    for c in kws.iter().chain(&resnet) {
        c.check();
        if c.name.ends_with("stack") {
            continue;
        }
        // Not saturated: the weights were scaled for in-range outputs.
        let inside = c.want.iter().filter(|&&v| v != 0x80 && v != 0x7f).count();
        assert!(
            inside * 4 > c.want.len(),
            "{}: {inside} of {} inside",
            c.name,
            c.want.len()
        );
    }
}

/// Median wall time of `runs` inferences of `blob`, after two untimed ones.
fn median_run(blob: &[u8], input: &[i8], runs: usize) -> std::time::Duration {
    use medwasm::{AlignedBuf, Model, PlanBuf, Runtime, ViewMut};
    let buf = AlignedBuf::from_bytes(blob);
    let model = Model::load(buf.as_slice()).unwrap();
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage()).unwrap();
    match rt.input_view_mut(0).unwrap() {
        ViewMut::I8(dst) => dst.copy_from_slice(input),
        _ => unreachable!("int8 input"),
    }
    let mut times: Vec<_> = (0..runs + 2)
        .map(|_| {
            let start = std::time::Instant::now();
            rt.run().unwrap();
            start.elapsed()
        })
        .skip(2)
        .collect();
    times.sort();
    times[runs / 2]
}

#[test]
fn model_shaped_stack_timings_in_optimized_builds() {
    // Only an optimized build times anything (`cargo test --release`), natively or
    // under Wasmtime; `docs/benchmarks.md` gives the commands and the figures.
    if cfg!(debug_assertions) {
        return;
    }
    let kernels = <medwasm::kernels::int8::fast::Best as medwasm::kernels::int8::acc::Sums>::NAME;
    for stack in [kws(), resnet()] {
        let c = &stack[0];
        let input: Vec<i8> = c.input.iter().map(|&b| b as i8).collect();
        let t = median_run(&c.blob, &input, 41);
        eprintln!(
            "timing {} ({} kernels): {:.1} µs per inference, {:.2} ns per MAC",
            c.name,
            kernels,
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() * 1e9 / c.macs as f64
        );
    }
}
