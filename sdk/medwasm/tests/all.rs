//! The SDK's test battery. It runs natively (the int8 kernels on plain Rust), and,
//! compiled for `wasm32-wasip1` with `+simd128`, under Wasmtime (the simd128 GEMM
//! and int8 primitives), so every kernel set passes the same checks: `cargo test
//! -p medwasm --features std`. The `mcu` module runs its kernel cases on a
//! Cortex-M4 and a Cortex-M7 in QEMU (the DSP primitives).
//!
//! The DSP blocks have `dsp` (against `conformance/dsp/`: bit for bit against
//! a float32 model of their arithmetic, within stated tolerances of scipy).
//!
//! The int8 kernels have their own modules: `fixed` (the fixed-point helpers
//! against their definitions), `int8` (every int8 and hybrid operator on small
//! blobs against expectations the test computes itself, from `refs`), `fast` (the
//! fast kernels against TFLite's reference loops, bit for bit), `int8_blobs` (the
//! loader's refusals and the hostile-blob loop on v2 blobs), `litert` (LiteRT's
//! own outputs, from the TFLite fixtures in `conformance/tflite/`), `stacks`
//! (layer stacks shaped like the MLPerf Tiny int8 models, for the benchmarks),
//! `mcu` (native only: those cases on Cortex-M firmware in QEMU) and `link`
//! (native only: which kernels a Cortex-M detector links, per operator set).

#[path = "all/dsp.rs"]
mod dsp;
#[path = "all/fast.rs"]
mod fast;
#[path = "all/fixed.rs"]
mod fixed;
#[path = "all/int8.rs"]
mod int8;
#[path = "all/int8_blobs.rs"]
mod int8_blobs;
#[cfg(not(target_arch = "wasm32"))]
#[path = "all/link.rs"]
mod link;
#[path = "all/litert.rs"]
mod litert;
#[cfg(not(target_arch = "wasm32"))]
#[path = "all/mcu.rs"]
mod mcu;
#[path = "all/refs.rs"]
mod refs;
#[path = "all/stacks.rs"]
mod stacks;

use medwasm::format::{BlobWriter, DType, NO_TENSOR, NodeSpec, OpCode, TensorSpec};
use medwasm::kernels::act::Act;
use medwasm::kernels::binary::{BinOp, binary, broadcast};
use medwasm::kernels::conv::{Geometry, conv, conv_ref};
use medwasm::kernels::gemm::{gemm, gemm_ref};
use medwasm::kernels::gemm_blocked;
use medwasm::kernels::misc::{Border, pad, softmax, transpose};
use medwasm::kernels::pool::{AvgCount, pool};
use medwasm::kernels::reduce::reduce_mean;
use medwasm::ops::{OpSet, op_bit};
use medwasm::{AlignedBuf, Dims, Error, Model, PlanBuf, PlanSize, Runtime};

/// SplitMix64: deterministic on every target.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

fn d(dims: &[usize]) -> Dims {
    Dims::from_slice(dims).unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "element {i}: {x} vs {y}"
        );
    }
}

#[test]
fn gemm_hand_checked() {
    let a = [1.0, 2.0, 3.0, 4.0];
    let b = [5.0, 6.0, 7.0, 8.0];
    let mut c = [1.0, 1.0, 1.0, 1.0];
    gemm(2, 2, 2, &a, 2, &b, 2, &mut c, 2);
    assert_eq!(c, [20.0, 23.0, 44.0, 51.0]);
}

#[test]
fn gemm_matches_reference_bit_for_bit() {
    let mut rng = Rng(1);
    for case in 0..400 {
        let (m, n, k) = (1 + rng.below(9), 1 + rng.below(40), 1 + rng.below(24));
        let (lda, ldb, ldc) = (k + rng.below(3), n + rng.below(3), n + rng.below(3));
        let a = rng.vec(m * lda);
        let b = rng.vec(k * ldb);
        let c0 = rng.vec(m * ldc);
        let mut c1 = c0.clone();
        let mut c2 = c0.clone();
        let mut c3 = c0.clone();
        gemm(m, n, k, &a, lda, &b, ldb, &mut c1, ldc);
        gemm_ref(m, n, k, &a, lda, &b, ldb, &mut c2, ldc);
        // The Cortex-M kernel is plain Rust: checked here on every target.
        gemm_blocked::gemm(m, n, k, &a, lda, &b, ldb, &mut c3, ldc);
        assert!(
            c1.iter().zip(&c2).all(|(x, y)| x.to_bits() == y.to_bits()),
            "case {case}: m={m} n={n} k={k} kernel={}",
            medwasm::kernels::gemm::KERNEL
        );
        assert!(
            c3.iter().zip(&c2).all(|(x, y)| x.to_bits() == y.to_bits()),
            "case {case}: m={m} n={n} k={k} kernel=blocked"
        );
    }
}

fn geometry(rng: &mut Rng) -> (Geometry, usize, usize) {
    let one_d = rng.below(4) == 0;
    let group = [1, 1, 2, 4][rng.below(4)];
    let depthwise = rng.below(3) == 0;
    let c = if depthwise {
        group * (1 + rng.below(2))
    } else {
        group * (1 + rng.below(3))
    };
    let group = if depthwise { c } else { group };
    let m = group * (1 + rng.below(3));
    let (kh, sh, dh) = if one_d {
        (1, 1, 1)
    } else {
        (1 + rng.below(4), 1 + rng.below(2), 1 + rng.below(2))
    };
    let (kw, sw, dw) = (1 + rng.below(4), 1 + rng.below(3), 1 + rng.below(2));
    let (h, w) = if one_d {
        (1, 6 + rng.below(12))
    } else {
        (4 + rng.below(10), 4 + rng.below(10))
    };
    let (mut pt, mut pb) = if one_d {
        (0, 0)
    } else {
        (rng.below(3), rng.below(3))
    };
    let (mut pl, mut pr) = (rng.below(3), rng.below(3));
    // One case in five is pointwise (1×1, stride 1, no padding): its own algorithm.
    let (kh, sh, dh, kw, sw, dw) = if rng.below(5) == 0 {
        (pt, pb, pl, pr) = (0, 0, 0, 0);
        (1, 1, 1, 1, 1, 1)
    } else {
        (kh, sh, dh, kw, sw, dw)
    };
    let span_h = (kh - 1) * dh + 1;
    let span_w = (kw - 1) * dw + 1;
    let oh = (h + pt + pb).saturating_sub(span_h) / sh + 1;
    let ow = (w + pl + pr).saturating_sub(span_w) / sw + 1;
    let g = Geometry {
        n: 1,
        c,
        h,
        w,
        m,
        oh,
        ow,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pt,
        pl,
        group,
    };
    (g, pb, pr)
}

#[test]
fn conv_fast_paths_match_direct_reference() {
    let mut rng = Rng(2);
    let mut kinds = std::collections::HashSet::new();
    for case in 0..300 {
        let (g, pb, pr) = geometry(&mut rng);
        if g.h + g.pt + pb < (g.kh - 1) * g.dh + 1 || g.w + g.pl + pr < (g.kw - 1) * g.dw + 1 {
            continue;
        }
        kinds.insert(format!("{:?}", g.kind()));
        let x = rng.vec(g.n * g.c * g.h * g.w);
        let wt = rng.vec(g.m * (g.c / g.group) * g.kh * g.kw);
        let bias = rng.vec(g.m);
        let mut y1 = vec![0.0; g.n * g.m * g.oh * g.ow];
        let mut y2 = y1.clone();
        let mut scratch = vec![0.0; g.scratch_elems()];
        conv(&g, &x, &wt, Some(&bias), Act::None, &mut y1, &mut scratch);
        conv_ref(&g, &x, &wt, Some(&bias), &mut y2);
        close(&y1, &y2, 1e-5);
        let _ = case;
    }
    assert_eq!(kinds.len(), 3, "every conv algorithm exercised: {kinds:?}");
}

#[test]
fn conv_hand_checked() {
    // 3×3 ones, 3×3 ones kernel, pad 1: corners see 4, edges 6, the centre 9.
    let g = Geometry {
        n: 1,
        c: 1,
        h: 3,
        w: 3,
        m: 1,
        oh: 3,
        ow: 3,
        kh: 3,
        kw: 3,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pt: 1,
        pl: 1,
        group: 1,
    };
    let mut y = vec![0.0; 9];
    conv(
        &g,
        &[1.0; 9],
        &[1.0; 9],
        Some(&[0.5]),
        Act::Relu,
        &mut y,
        &mut vec![0.0; g.scratch_elems()],
    );
    assert_eq!(y, [4.5, 6.5, 4.5, 6.5, 9.5, 6.5, 4.5, 6.5, 4.5]);
}

#[test]
fn binary_broadcasting() {
    let mut rng = Rng(3);
    let shapes: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4], &[4]),
        (&[2, 3, 4], &[3, 1]),
        (&[1, 3, 1], &[2, 1, 5]),
        (&[4], &[4]),
        (&[2, 2], &[1]),
        (&[3, 1, 2], &[1, 4, 1]),
    ];
    for (sa, sb) in shapes {
        let (ad, bd) = (d(sa), d(sb));
        let yd = broadcast(&ad, &bd).unwrap();
        let a = rng.vec(ad.elements());
        let b = rng.vec(bd.elements());
        for op in [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div] {
            let mut y = vec![0.0; yd.elements()];
            binary(op, &a, &ad, &b, &bd, &mut y, &yd);
            // Naive reference through multi-indices.
            let r = yd.rank();
            for (flat, &got) in y.iter().enumerate() {
                let mut idx = vec![0; r];
                let mut rem = flat;
                for i in (0..r).rev() {
                    idx[i] = rem % yd.as_slice()[i];
                    rem /= yd.as_slice()[i];
                }
                let at = |dims: &Dims, data: &[f32]| {
                    let off = r - dims.rank();
                    let mut o = 0;
                    for i in 0..dims.rank() {
                        let di = dims.as_slice()[i];
                        o = o * di + if di == 1 { 0 } else { idx[i + off] };
                    }
                    data[o]
                };
                let (x, z) = (at(&ad, &a), at(&bd, &b));
                let want = match op {
                    BinOp::Add => x + z,
                    BinOp::Sub => x - z,
                    BinOp::Mul => x * z,
                    BinOp::Div => x / z,
                };
                assert_eq!(got.to_bits(), want.to_bits(), "{sa:?} {sb:?} {op:?}");
            }
        }
    }
    assert_eq!(broadcast(&d(&[2, 3]), &d(&[4])), None);
}

#[test]
fn activations_hand_checked() {
    let mut v = [-2.0, -0.5, 0.0, 0.5, 8.0];
    Act::Relu.apply(&mut v);
    assert_eq!(v, [0.0, 0.0, 0.0, 0.5, 8.0]);
    let mut v = [-2.0, 3.0];
    Act::LeakyRelu(0.1).apply(&mut v);
    assert_eq!(v, [-0.2, 3.0]);
    let mut v = [-1.0, 3.0, 7.0];
    Act::Clip(0.0, 6.0).apply(&mut v);
    assert_eq!(v, [0.0, 3.0, 6.0]);
    let mut v = [0.0, 100.0, -100.0, 1.0];
    Act::Sigmoid.apply(&mut v);
    close(&v, &[0.5, 1.0, 0.0, 0.731_058_6], 1e-6);
    let mut v = [0.0, 1.0, -20.0];
    Act::Tanh.apply(&mut v);
    close(&v, &[0.0, 0.761_594_2, -1.0], 1e-6);
    assert_eq!(
        Act::decode(5, f32::NAN.to_bits(), 1.0f32.to_bits()),
        None,
        "NaN clip bounds are refused"
    );
}

#[test]
fn softmax_hand_checked() {
    let x = [1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0];
    let mut y = [0.0; 6];
    softmax(&x, &mut y, 2, 3, 1);
    close(
        &y,
        &[
            0.090_030_57,
            0.244_728_48,
            0.665_240_94,
            1.0 / 3.0,
            1.0 / 3.0,
            1.0 / 3.0,
        ],
        1e-6,
    );
    // Along the middle axis of [1, 2, 2]: pairs (0, 2) and (1, 3).
    let x = [0.0, 1.0, 0.0, 1.0];
    let mut y = [0.0; 4];
    softmax(&x, &mut y, 1, 2, 2);
    close(&y, &[0.5; 4], 1e-7);
}

#[test]
fn pooling_hand_checked() {
    // 1×1×4×4 ramp, 2×2 windows, stride 2.
    let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let g = Geometry {
        n: 1,
        c: 1,
        h: 4,
        w: 4,
        m: 1,
        oh: 2,
        ow: 2,
        kh: 2,
        kw: 2,
        sh: 2,
        sw: 2,
        dh: 1,
        dw: 1,
        pt: 0,
        pl: 0,
        group: 1,
    };
    let mut y = [0.0; 4];
    pool(&g, 0, 0, true, AvgCount::ExcludePad, &x, &mut y);
    assert_eq!(y, [5.0, 7.0, 13.0, 15.0]);
    pool(&g, 0, 0, false, AvgCount::ExcludePad, &x, &mut y);
    assert_eq!(y, [2.5, 4.5, 10.5, 12.5]);
    // Padding 1, 3×3 window, stride 2 over a 2×2 of ones: the top-left window holds 4
    // inputs and 5 pads; excluded → 1, included → 4/9.
    let g = Geometry {
        n: 1,
        c: 1,
        h: 2,
        w: 2,
        m: 1,
        oh: 1,
        ow: 1,
        kh: 3,
        kw: 3,
        sh: 2,
        sw: 2,
        dh: 1,
        dw: 1,
        pt: 1,
        pl: 1,
        group: 1,
    };
    let mut y = [0.0];
    pool(&g, 1, 1, false, AvgCount::ExcludePad, &[1.0; 4], &mut y);
    assert_eq!(y, [1.0]);
    pool(&g, 1, 1, false, AvgCount::IncludePad, &[1.0; 4], &mut y);
    close(&y, &[4.0 / 9.0], 1e-7);
}

#[test]
fn data_movement_hand_checked() {
    // Transpose [2,3] → [3,2].
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut y = [0.0; 6];
    transpose(&x, &d(&[2, 3]), &[1, 0], &mut y, &d(&[3, 2]));
    assert_eq!(y, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    // ReduceMean of [2,3] over axis 1 and over axis 0.
    let mut r = [0.0; 2];
    reduce_mean(&x, &d(&[2, 3]), 0b10, &mut r);
    assert_eq!(r, [2.0, 5.0]);
    let mut r = [0.0; 3];
    reduce_mean(&x, &d(&[2, 3]), 0b01, &mut r);
    assert_eq!(r, [2.5, 3.5, 4.5]);
    // Pad [3] by 2 before, 1 after.
    let x = [1.0, 2.0, 3.0];
    let mut y = [0.0; 6];
    pad(&x, &d(&[3]), &[2], Border::Reflect, &mut y, &d(&[6]));
    assert_eq!(y, [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]);
    pad(&x, &d(&[3]), &[2], Border::Edge, &mut y, &d(&[6]));
    assert_eq!(y, [1.0, 1.0, 1.0, 2.0, 3.0, 3.0]);
    pad(&x, &d(&[3]), &[2], Border::Constant(-1.0), &mut y, &d(&[6]));
    assert_eq!(y, [-1.0, -1.0, 1.0, 2.0, 3.0, -1.0]);
}

/// A small valid model: y = relu(x · W + b), x [1,4], W [4,3]; plus z = y * 2.
fn small_blob() -> Vec<u8> {
    let w: Vec<f32> = (0..12).map(|v| v as f32 * 0.5 - 2.0).collect();
    let b = [0.5f32, -1.0, 0.25];
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut wr = BlobWriter::default();
    let t = |name: &str, dims: &[u32], data: Option<Vec<u8>>, off: u32| TensorSpec {
        name: name.into(),
        dtype: DType::F32,
        dims: dims.to_vec(),
        data,
        arena_offset: off,
        quant: None,
    };
    wr.tensors = vec![
        t("x", &[1, 4], None, 0),
        t("", &[4, 3], Some(bytes(&w)), 0),
        t("", &[3], Some(bytes(&b)), 0),
        t("y", &[1, 3], None, 16),
        t("", &[1], Some(bytes(&[2.0])), 0),
        t("z", &[1, 3], None, 32),
    ];
    wr.nodes = vec![
        NodeSpec {
            op: OpCode::Gemm,
            inputs: vec![0, 1, 2],
            outputs: vec![3],
            scratch: NO_TENSOR,
            params: Act::Relu.encode().to_vec(),
        },
        NodeSpec {
            op: OpCode::Binary,
            inputs: vec![3, 4],
            outputs: vec![5],
            scratch: NO_TENSOR,
            params: vec![BinOp::Mul.encode(), 0, 0, 0],
        },
    ];
    wr.inputs = vec![0];
    wr.outputs = vec![3, 5];
    wr.arena_bytes = 48;
    wr.finish()
}

fn run_small(blob: &[u8], x: &[f32]) -> Result<(Vec<f32>, Vec<f32>), Error> {
    let buf = AlignedBuf::from_bytes(blob);
    let model = Model::load(buf.as_slice())?;
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage())?;
    rt.set_input(0, x)?;
    rt.run()?;
    Ok((rt.output(0)?.to_vec(), rt.output(1)?.to_vec()))
}

#[test]
fn runtime_runs_a_small_model() {
    let blob = small_blob();
    let (y, z) = run_small(&blob, &[1.0, 0.0, -1.0, 2.0]).unwrap();
    // x·W: column j = sum_i x_i * (0.5*(3i+j) - 2) = [-2+? ...] computed by hand:
    // W rows: [-2,-1.5,-1], [-0.5,0,0.5], [1,1.5,2], [2.5,3,3.5]
    // x·W = [-2-1+5, -1.5-1.5+6, -1-2+7] = [2, 3, 4]; + b = [2.5, 2, 4.25]
    assert_eq!(y, [2.5, 2.0, 4.25]);
    assert_eq!(z, [5.0, 4.0, 8.5]);
    let model_buf = AlignedBuf::from_bytes(&blob);
    let model = Model::load(model_buf.as_slice()).unwrap();
    assert_eq!(model.input(0).unwrap().name, "x");
    assert_eq!(model.output(1).unwrap().name, "z");
    assert_eq!(model.output(1).unwrap().dims.as_slice(), &[1, 3]);
}

/// A build that links Gemm and Binary: the small model's two operators.
struct GemmAndBinary;

impl OpSet for GemmAndBinary {
    const OPS: u64 = op_bit(OpCode::Gemm) | op_bit(OpCode::Binary);
}

/// A build that links Gemm only.
struct GemmOnly;

impl OpSet for GemmOnly {
    const OPS: u64 = op_bit(OpCode::Gemm);
}

#[test]
fn restricted_operator_sets_run_their_models_and_refuse_others() {
    let blob = small_blob();
    let buf = AlignedBuf::from_bytes(&blob);
    let (y, z) = run_small(&blob, &[1.0, 0.0, -1.0, 2.0]).unwrap();

    let model = Model::load_in::<GemmAndBinary>(buf.as_slice()).unwrap();
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt =
        Runtime::new_in::<GemmAndBinary>(model, arena.as_mut_slice(), plan.storage()).unwrap();
    rt.set_input(0, &[1.0, 0.0, -1.0, 2.0]).unwrap();
    rt.run_in::<GemmAndBinary>().unwrap();
    assert_eq!(rt.output(0).unwrap(), y.as_slice());
    assert_eq!(rt.output(1).unwrap(), z.as_slice());

    // The Binary node (node 1) is not linked: the loader refuses the blob with its own
    // code, naming the operator and the node.
    let unlinked = Error::UnlinkedOperator {
        op: OpCode::Binary,
        node: 1,
    };
    let err = Model::load_in::<GemmOnly>(buf.as_slice()).unwrap_err();
    assert_eq!(err, unlinked);
    assert_eq!(err.code(), 12);
    assert!(err.to_string().contains("`Binary` (node 1)"), "{err}");
    assert!(err.to_string().contains("cargo medwasm import"), "{err}");
    // Preparing a model loaded with every operator for a Gemm-only build fails the same
    // way, and so does running a plan prepared with every operator with Gemm only: at
    // the Binary step, instead of skipping it.
    let model = Model::load(buf.as_slice()).unwrap();
    assert_eq!(
        Runtime::new_in::<GemmOnly>(model, arena.as_mut_slice(), plan.storage()).err(),
        Some(unlinked)
    );
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage()).unwrap();
    rt.set_input(0, &[1.0, 0.0, -1.0, 2.0]).unwrap();
    assert_eq!(rt.run_in::<GemmOnly>(), Err(unlinked));
    assert_eq!(
        rt.output(1).unwrap(),
        [0.0; 3],
        "the Binary step did not run"
    );
}

#[test]
fn bad_inputs_are_typed_errors() {
    let blob = small_blob();
    assert_eq!(
        run_small(&blob, &[1.0, 2.0, 3.0]),
        Err(Error::InputLength {
            input: 0,
            expected: 4,
            actual: 3
        })
    );
    assert_eq!(
        run_small(&blob, &[1.0, f32::NAN, 3.0, 4.0]),
        Err(Error::NonFinite {
            input: 0,
            position: 1
        })
    );
    assert_eq!(
        run_small(&blob, &[1.0, 2.0, f32::INFINITY, 4.0]),
        Err(Error::NonFinite {
            input: 0,
            position: 2
        })
    );
    // Raw writes bypass set_input; run still refuses them.
    let buf = AlignedBuf::from_bytes(&blob);
    let model = Model::load(buf.as_slice()).unwrap();
    let mut arena = AlignedBuf::zeroed(64);
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage()).unwrap();
    rt.input_mut(0).unwrap()[3] = f32::NEG_INFINITY;
    assert_eq!(
        rt.run(),
        Err(Error::NonFinite {
            input: 0,
            position: 3
        })
    );
    assert_eq!(
        rt.output(2).err(),
        Some(Error::BadIndex { index: 2, count: 2 })
    );
    // Arena checks.
    let mut small = AlignedBuf::zeroed(32);
    assert_eq!(
        Runtime::new(model, small.as_mut_slice(), plan.storage()).err(),
        Some(Error::ArenaTooSmall {
            needed: 48,
            actual: 32
        })
    );
    let mut big = AlignedBuf::zeroed(80);
    assert_eq!(
        Runtime::new(model, &mut big.as_mut_slice()[4..], plan.storage()).err(),
        Some(Error::Misaligned { what: "arena" })
    );
}

#[test]
fn truncated_blobs_are_refused() {
    let blob = small_blob();
    for len in 0..blob.len() {
        let buf = AlignedBuf::from_bytes(&blob[..len]);
        assert!(
            Model::load(buf.as_slice()).is_err(),
            "a blob cut to {len} bytes loaded"
        );
    }
}

#[test]
fn corrupted_blobs_fail_the_checksum() {
    let blob = small_blob();
    for at in 16..blob.len() {
        let mut bad = blob.clone();
        bad[at] ^= 0x5A;
        let buf = AlignedBuf::from_bytes(&bad);
        assert!(
            matches!(Model::load(buf.as_slice()), Err(Error::Checksum { .. })),
            "flipping byte {at} went unnoticed"
        );
    }
    let mut bad = blob.clone();
    bad[0] = b'X';
    assert_eq!(
        Model::load(AlignedBuf::from_bytes(&bad).as_slice()).err(),
        Some(Error::BadMagic)
    );
    let mut bad = blob.clone();
    bad[4] = 9;
    assert!(matches!(
        Model::load(AlignedBuf::from_bytes(&bad).as_slice()),
        Err(Error::UnsupportedVersion { major: 9, .. })
    ));
}

/// Hostile blobs: random field changes with the checksum recomputed, so they get
/// past the CRC. Loading must return an error or a model that runs without a panic
/// and without reading out of bounds (the test would crash or panic otherwise).
#[test]
fn hostile_blobs_never_panic() {
    let blob = small_blob();
    let mut rng = Rng(4);
    let mut loaded = 0;
    for _ in 0..20_000 {
        let mut bad = blob.clone();
        for _ in 0..1 + rng.below(3) {
            let at = 16 + rng.below(bad.len() - 16);
            bad[at] = match rng.below(4) {
                0 => rng.next() as u8,
                1 => 0xFF,
                2 => 0,
                _ => bad[at].wrapping_add(1),
            };
        }
        let crc = medwasm::crc32(&bad[16..]);
        bad[12..16].copy_from_slice(&crc.to_le_bytes());
        let buf = AlignedBuf::from_bytes(&bad);
        if let Ok(model) = Model::load(buf.as_slice()) {
            loaded += 1;
            // A mutated header may claim an arena no host would give (gigabytes on a
            // 32-bit wasm host): the runtime must then refuse a smaller one, not use it.
            let mut plan = PlanBuf::for_model(&model);
            if model.arena_bytes() > 1 << 24 {
                let mut small = AlignedBuf::zeroed(4096);
                assert!(matches!(
                    Runtime::new(model, small.as_mut_slice(), plan.storage()),
                    Err(Error::ArenaTooSmall { .. })
                ));
                continue;
            }
            let mut arena = AlignedBuf::zeroed(model.arena_bytes());
            // A model that loads prepares: the plan is built from the loader's checks.
            let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage())
                .unwrap_or_else(|e| panic!("a loaded model did not prepare: {e}"));
            if let Ok(x) = rt.input_mut(0) {
                x.fill(0.5);
            }
            let _ = rt.run();
        }
    }
    // Some mutations only change weights or names and still load: they must run.
    assert!(loaded > 0);
}

#[test]
fn error_messages_are_written_without_core_fmt_but_read_the_same() {
    let cases = [
        (
            Error::Truncated {
                needed: 4096,
                actual: 12,
            },
            "model blob truncated: needs 4096 bytes, has 12; re-run `cargo medwasm import`",
        ),
        (
            Error::UnsupportedVersion {
                major: 3,
                minor: 10,
            },
            "model format 3.10 is not supported by this runtime (reads 2.x); update the `medwasm` crate or re-import with a matching cargo-medwasm",
        ),
        (
            Error::UnsupportedVersion { major: 1, minor: 0 },
            "model format 1.0 is not supported by this runtime (reads 2.x); run `cargo medwasm import` again to rewrite `model/model.mwm` in the current format",
        ),
        (
            Error::WrongDtype {
                output: true,
                index: 0,
                dtype: medwasm::DType::I8,
            },
            "output 0 holds i8 elements, not f32; read it through `input_view`/`output_view`, or import with f32 inputs and outputs",
        ),
        (
            Error::Checksum {
                stored: 0xdead_beef,
                computed: 0x1,
            },
            "model blob corrupted: checksum 0x00000001 does not match the stored 0xdeadbeef",
        ),
        (
            Error::Malformed {
                what: "node table out of bounds",
                index: 0,
            },
            "model blob malformed: node table out of bounds (entry 0)",
        ),
        (
            Error::NonFinite {
                input: 1,
                position: 4_294_967_295,
            },
            "input 1 element 4294967295 is NaN or infinite; clean or impute the signal before running",
        ),
        (
            Error::BadIndex { index: 3, count: 2 },
            "index 3 out of range: there are 2",
        ),
    ];
    for (err, want) in cases {
        assert_eq!(err.to_string(), want);
        let mut pieces = String::new();
        struct Collect<'s>(&'s mut String);
        impl medwasm::MessageSink for Collect<'_> {
            fn put(&mut self, text: &str) {
                self.0.push_str(text);
            }
        }
        err.write_message(&mut Collect(&mut pieces));
        assert_eq!(pieces, want);
    }
}

/// Builds blobs tensor by tensor: arena tensors get their own 16-byte aligned
/// offsets (no reuse), constants their data.
#[derive(Default)]
struct Graph {
    w: BlobWriter,
    arena: u32,
}

impl Graph {
    fn push(&mut self, spec: TensorSpec) -> u32 {
        self.w.tensors.push(spec);
        self.w.tensors.len() as u32 - 1
    }

    fn tensor(&mut self, name: &str, dims: &[u32], data: Option<Vec<u8>>, offset: u32) -> u32 {
        self.push(TensorSpec {
            name: name.into(),
            dtype: DType::F32,
            dims: dims.to_vec(),
            data,
            arena_offset: offset,
            quant: None,
        })
    }

    fn arena(&mut self, name: &str, dims: &[u32]) -> u32 {
        self.arena_of(name, DType::F32, dims, None)
    }

    /// An arena tensor of any element type, quantized with `(scale, zero point)`.
    fn arena_of(
        &mut self,
        name: &str,
        dtype: DType,
        dims: &[u32],
        quant: Option<(f32, i32)>,
    ) -> u32 {
        let offset = self.arena;
        self.arena += (dims.iter().product::<u32>() * dtype.size() as u32).div_ceil(16) * 16;
        let spec = TensorSpec::arena(name, dtype, dims, offset);
        self.push(match quant {
            Some((s, z)) => spec.quantized(s, z),
            None => spec,
        })
    }

    /// An int8 activation quantized with `(scale, zero point)`.
    fn arena_q(&mut self, name: &str, dims: &[u32], scale: f32, zp: i32) -> u32 {
        self.arena_of(name, DType::I8, dims, Some((scale, zp)))
    }

    /// An arena tensor at a chosen offset (to make overlaps on purpose).
    fn arena_at(&mut self, name: &str, dims: &[u32], offset: u32) -> u32 {
        self.tensor(name, dims, None, offset)
    }

    fn constant(&mut self, dims: &[u32], values: &[f32]) -> u32 {
        self.constant_of(dims, values)
    }

    /// A constant of any element type.
    fn constant_of<T: medwasm::format::Element>(&mut self, dims: &[u32], values: &[T]) -> u32 {
        assert_eq!(values.len(), dims.iter().product::<u32>() as usize);
        self.push(TensorSpec::constant("", dims, values))
    }

    fn node(&mut self, op: OpCode, inputs: &[u32], output: u32, scratch: u32, params: &[u32]) {
        self.w.nodes.push(NodeSpec {
            op,
            inputs: inputs.to_vec(),
            outputs: vec![output],
            scratch,
            params: params.to_vec(),
        });
    }

    fn finish(mut self, inputs: &[u32], outputs: &[u32]) -> Vec<u8> {
        self.w.inputs = inputs.to_vec();
        self.w.outputs = outputs.to_vec();
        self.w.arena_bytes = self.arena;
        self.w.finish()
    }
}

fn act(a: Act) -> Vec<u32> {
    a.encode().to_vec()
}

/// Every operator in one graph: x [1,2,5,5] → Conv (im2col, scratch) → MaxPool
/// (ceil) and AveragePool (padded) → Concat → Transpose → Pad (reflect) →
/// ReduceMean → Binary Add (broadcast, Tanh) → Softmax → Binary Mul ([3,1]
/// broadcast) → Copy → Gemm (bias, Sigmoid) → Activation (LeakyRelu).
fn every_op_blob() -> Vec<u8> {
    let mut rng = Rng(7);
    let mut g = Graph::default();
    let x = g.arena("x", &[1, 2, 5, 5]);
    let w = g.constant(&[3, 2, 3, 3], &rng.vec(54));
    let b = g.constant(&[3], &rng.vec(3));
    let c1 = g.arena("", &[1, 3, 5, 5]);
    let col = g.arena("", &[90]);
    let mut conv = vec![3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    conv.extend(act(Act::Relu));
    g.node(OpCode::Conv, &[x, w, b], c1, col, &conv);
    let mp = g.arena("", &[1, 3, 3, 3]);
    g.node(
        OpCode::MaxPool,
        &[c1],
        mp,
        NO_TENSOR,
        &[2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0],
    );
    let ap = g.arena("", &[1, 3, 3, 3]);
    g.node(
        OpCode::AveragePool,
        &[c1],
        ap,
        NO_TENSOR,
        &[3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0],
    );
    let cat = g.arena("", &[1, 6, 3, 3]);
    g.node(OpCode::Concat, &[mp, ap], cat, NO_TENSOR, &[1]);
    let tr = g.arena("", &[1, 3, 3, 6]);
    g.node(OpCode::Transpose, &[cat], tr, NO_TENSOR, &[0, 2, 3, 1]);
    let pd = g.arena("", &[1, 3, 5, 6]);
    g.node(
        OpCode::Pad,
        &[tr],
        pd,
        NO_TENSOR,
        &[1, 0, 0, 0, 1, 0, 0, 0, 1, 0],
    );
    let rm = g.arena("", &[1, 3, 6]);
    g.node(OpCode::ReduceMean, &[pd], rm, NO_TENSOR, &[0b100]);
    let c6 = g.constant(&[6], &rng.vec(6));
    let bn = g.arena("", &[1, 3, 6]);
    let mut add = vec![BinOp::Add.encode()];
    add.extend(act(Act::Tanh));
    g.node(OpCode::Binary, &[rm, c6], bn, NO_TENSOR, &add);
    let sm = g.arena("probabilities", &[1, 3, 6]);
    g.node(OpCode::Softmax, &[bn], sm, NO_TENSOR, &[2, 3]);
    let k31 = g.constant(&[3, 1], &rng.vec(3));
    let bm = g.arena("", &[1, 3, 6]);
    let mut mul = vec![BinOp::Mul.encode()];
    mul.extend(act(Act::None));
    g.node(OpCode::Binary, &[sm, k31], bm, NO_TENSOR, &mul);
    let cp = g.arena("", &[1, 18]);
    g.node(OpCode::Copy, &[bm], cp, NO_TENSOR, &[]);
    let gw = g.constant(&[18, 4], &rng.vec(72));
    let gb = g.constant(&[4], &rng.vec(4));
    let gm = g.arena("", &[1, 4]);
    g.node(
        OpCode::Gemm,
        &[cp, gw, gb],
        gm,
        NO_TENSOR,
        &act(Act::Sigmoid),
    );
    let y = g.arena("y", &[1, 4]);
    g.node(
        OpCode::Activation,
        &[gm],
        y,
        NO_TENSOR,
        &act(Act::LeakyRelu(0.1)),
    );
    g.finish(&[x], &[y, sm])
}

/// Runs `model` the way the runtime did before it kept a plan: each node prepared
/// anew with `ops::prepare` on every run and executed on its own buffers (one per
/// tensor, outside any arena, as raw little-endian bytes). Returns the graph
/// outputs' bytes.
fn run_by_prepare(model: &Model<'_>, inputs: &[&[u8]]) -> Vec<Vec<u8>> {
    use medwasm::{View, ViewMut};
    use std::collections::HashMap;
    // 16-byte aligned copies, so every typed view of them is aligned.
    let mut tensors: HashMap<usize, AlignedBuf> = HashMap::new();
    for (i, data) in inputs.iter().enumerate() {
        tensors.insert(model.input(i).unwrap().tensor, AlignedBuf::from_bytes(data));
    }
    for i in 0..model.node_count() {
        let node = model.node(i).unwrap();
        let p = medwasm::ops::prepare(model, i, &node).unwrap();
        let mut ins = Vec::new();
        for k in 0..node.n_inputs {
            ins.push(model.node_input(&node, k).unwrap().map(|t| {
                let rec = model.tensor(t).unwrap();
                let bytes = match rec.storage {
                    medwasm::format::Storage::Const => model.const_bytes(&rec).unwrap(),
                    medwasm::format::Storage::Arena => tensors[&t].as_slice(),
                };
                (rec.dtype, AlignedBuf::from_bytes(bytes))
            }));
        }
        let views: Vec<Option<View<'_>>> = ins
            .iter()
            .map(|v| v.as_ref().map(|(t, b)| View::of(*t, b.as_slice()).unwrap()))
            .collect();
        let mut out = AlignedBuf::zeroed(p.output.byte_len);
        let (sdt, sbytes) = p
            .scratch
            .map_or((medwasm::DType::F32, 0), |s| (s.dtype, s.byte_len));
        let mut scratch = AlignedBuf::zeroed(sbytes);
        medwasm::ops::execute(
            i,
            &p.kind,
            &views,
            ViewMut::of(p.output.dtype, out.as_mut_slice()).unwrap(),
            ViewMut::of(sdt, scratch.as_mut_slice()).unwrap(),
        )
        .unwrap();
        tensors.insert(model.node_output(&node, 0).unwrap(), out);
    }
    (0..model.output_count())
        .map(|i| {
            tensors[&model.output(i).unwrap().tensor]
                .as_slice()
                .to_vec()
        })
        .collect()
}

/// The bytes of f32 values.
fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn the_plan_runs_bit_identical_to_preparing_every_node_on_every_run() {
    let blob = every_op_blob();
    let buf = AlignedBuf::from_bytes(&blob);
    let model = Model::load(buf.as_slice()).unwrap();
    let ops: Vec<OpCode> = (0..model.node_count())
        .map(|i| model.node(i).unwrap().op)
        .collect();
    for op in (1..=12).filter_map(OpCode::from_u16) {
        assert!(ops.contains(&op), "the graph lacks {op:?}");
    }
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage()).unwrap();
    // One step per node, in order, each running its node's operator.
    let planned: Vec<OpCode> = rt.steps().iter().map(|s| s.kind().op()).collect();
    assert_eq!(planned, ops);

    let mut rng = Rng(8);
    for round in 0..4 {
        let x = rng.vec(50);
        rt.set_input(0, &x).unwrap();
        // Twice on the same input: a run leaves the plan as it found it.
        for _ in 0..2 {
            rt.run().unwrap();
            let want = run_by_prepare(&model, &[&f32_bytes(&x)]);
            for (o, want) in want.iter().enumerate() {
                assert_eq!(
                    rt.output_view(o).unwrap().bytes(),
                    want.as_slice(),
                    "round {round}, output {o}"
                );
            }
        }
        assert!(rt.output(1).unwrap().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn plan_storage_of_the_wrong_size_is_a_clear_error() {
    let blob = small_blob();
    let buf = AlignedBuf::from_bytes(&blob);
    let model = Model::load(buf.as_slice()).unwrap();
    // Two nodes with 3 and 2 inputs, one graph input and two outputs.
    let size = PlanSize::of(&model);
    assert_eq!(
        size,
        PlanSize {
            steps: 2,
            operands: 8
        }
    );
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut short = PlanBuf::new(size.steps - 1, size.operands);
    let err = Runtime::new(model, arena.as_mut_slice(), short.storage()).unwrap_err();
    assert_eq!(
        err,
        Error::PlanTooSmall {
            what: "steps",
            needed: 2,
            actual: 1
        }
    );
    assert_eq!(err.code(), 13);
    assert_eq!(
        err.to_string(),
        "plan storage too small: the model needs 2 steps, the storage holds 1; size it with `NODES` and `OPERANDS` of the generated `src/model.rs` (run `cargo medwasm import` again if the model changed)"
    );
    let mut short = PlanBuf::new(size.steps, size.operands - 1);
    assert_eq!(
        Runtime::new(model, arena.as_mut_slice(), short.storage()).err(),
        Some(Error::PlanTooSmall {
            what: "operands",
            needed: 8,
            actual: 7
        })
    );
    // Larger storage is fine: the plan takes the slots it needs.
    let mut roomy = PlanBuf::new(size.steps + 3, size.operands + 5);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), roomy.storage()).unwrap();
    rt.set_input(0, &[1.0, 0.0, -1.0, 2.0]).unwrap();
    rt.run().unwrap();
    assert_eq!(rt.output(1).unwrap(), [5.0, 4.0, 8.5]);
}

/// The small blob with node 0's op code replaced and the checksum fixed.
fn with_op_code(code: u16) -> Vec<u8> {
    let mut blob = small_blob();
    let nodes = u32::from_le_bytes(blob[36..40].try_into().unwrap()) as usize;
    blob[nodes..nodes + 2].copy_from_slice(&code.to_le_bytes());
    let crc = medwasm::crc32(&blob[16..]);
    blob[12..16].copy_from_slice(&crc.to_le_bytes());
    blob
}

#[test]
fn an_unlinked_operator_and_a_corrupt_one_have_different_codes() {
    // Node 0 becomes a Softmax, a known operator the Gemm-and-Binary build leaves out.
    let blob = with_op_code(OpCode::Softmax as u16);
    let buf = AlignedBuf::from_bytes(&blob);
    let err = Model::load_in::<GemmAndBinary>(buf.as_slice()).unwrap_err();
    assert_eq!(
        err,
        Error::UnlinkedOperator {
            op: OpCode::Softmax,
            node: 0
        }
    );
    assert_eq!(err.code(), 12);
    assert_eq!(
        err.to_string(),
        "the model needs operator `Softmax` (node 0) but this detector was built without it; run `cargo medwasm import` again so `src/model.rs` lists the model's operators, then rebuild the detector"
    );
    // An op code no runtime knows is a corrupt blob, whatever the build links.
    let blob = with_op_code(99);
    let buf = AlignedBuf::from_bytes(&blob);
    for err in [
        Model::load(buf.as_slice()).unwrap_err(),
        Model::load_in::<GemmAndBinary>(buf.as_slice()).unwrap_err(),
    ] {
        assert_eq!(
            err,
            Error::Malformed {
                what: "unknown operator",
                index: 0
            }
        );
        assert_eq!(err.code(), 5);
    }
}

/// A single pooling node over `x_dims` with the given window parameters.
fn pool_blob(op: OpCode, x_dims: &[u32], y_dims: &[u32], params: &[u32]) -> Vec<u8> {
    let mut g = Graph::default();
    let x = g.arena("x", x_dims);
    let y = g.arena("y", y_dims);
    g.node(op, &[x], y, NO_TENSOR, params);
    g.finish(&[x], &[y])
}

#[test]
fn pooling_windows_wholly_in_padding_are_refused() {
    let refused = Error::Malformed {
        what: "pooling window lies entirely in padding",
        index: 0,
    };
    // Name, input dims, output dims, then params: kh kw sh sw dh dw pt pl pb pr
    // count_include_pad.
    type Case<'a> = (&'a str, &'a [u32], &'a [u32], [u32; 11]);
    let cases: &[Case<'_>] = &[
        // 1-D, W 4, window 2, stride 2, left pad 2: window 0 is both pads.
        (
            "leading pad",
            &[1, 1, 4],
            &[1, 1, 3],
            [1, 2, 1, 2, 1, 1, 0, 2, 0, 0, 0],
        ),
        // W 2, window 1, right pad 2: the last two windows are pad only.
        (
            "trailing pad",
            &[1, 1, 2],
            &[1, 1, 4],
            [1, 1, 1, 1, 1, 1, 0, 0, 0, 2, 0],
        ),
        // W 1, window 2 dilated by 3, pads 2: every window steps over the input.
        (
            "dilation",
            &[1, 1, 1],
            &[1, 1, 2],
            [1, 2, 1, 1, 1, 3, 0, 2, 0, 2, 1],
        ),
        // 2-D, 2×2 input, 1×1 window, top pad 1: the first output row is pad only.
        (
            "top pad",
            &[1, 1, 2, 2],
            &[1, 1, 3, 2],
            [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1],
        ),
    ];
    for (what, x, y, params) in cases {
        for op in [OpCode::AveragePool, OpCode::MaxPool] {
            let blob = pool_blob(op, x, y, params);
            let buf = AlignedBuf::from_bytes(&blob);
            let err = Model::load(buf.as_slice()).unwrap_err();
            assert_eq!(err, refused, "{what}, {op:?}");
            assert_eq!(err.code(), 5);
        }
    }
    // Left and right pad 1: every window holds an input element, and the averages
    // without padding are finite.
    let blob = pool_blob(
        OpCode::AveragePool,
        &[1, 1, 4],
        &[1, 1, 3],
        &[1, 2, 1, 2, 1, 1, 0, 1, 0, 1, 0],
    );
    let buf = AlignedBuf::from_bytes(&blob);
    let model = Model::load(buf.as_slice()).unwrap();
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage()).unwrap();
    rt.set_input(0, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    rt.run().unwrap();
    assert_eq!(rt.output(0).unwrap(), [1.0, 2.5, 4.0]);
}

#[test]
fn a_scratch_over_a_graph_input_is_refused() {
    // Copy x into y, then an im2col Conv on y whose scratch lies on x: the Conv does
    // not read x, but writing its scratch would clobber the pinned graph input.
    let mut g = Graph::default();
    let x = g.arena("x", &[1, 2, 3, 3]);
    let y = g.arena("", &[1, 2, 3, 3]);
    g.node(OpCode::Copy, &[x], y, NO_TENSOR, &[]);
    let w = g.constant(&[1, 2, 3, 3], &[0.5; 18]);
    let z = g.arena("z", &[1, 1, 1, 1]);
    let col = g.arena_at("", &[18], 0);
    let mut conv = vec![3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1];
    conv.extend(act(Act::None));
    g.node(OpCode::Conv, &[y, w, NO_TENSOR], z, col, &conv);
    let blob = g.finish(&[x], &[z]);
    assert_eq!(
        Model::load(AlignedBuf::from_bytes(&blob).as_slice()).err(),
        Some(Error::Malformed {
            what: "node writes over a graph input",
            index: 1
        })
    );
}

#[test]
fn a_plan_step_stays_small() {
    // A step lives in RAM on a microcontroller: one per node, with its inputs in the
    // shared operand array. 124 bytes on wasm32 and Cortex-M (32-bit), where the
    // largest kinds (Binary with three shapes, Pad, Conv and pooling geometry) set it.
    let step = if cfg!(target_pointer_width = "32") {
        124
    } else {
        208
    };
    assert_eq!(std::mem::size_of::<medwasm::Step>(), step);
    assert_eq!(std::mem::size_of::<medwasm::Operand>(), 12);
}

/// A detector that only runs the model: for driving the glue directly.
pub(crate) struct Probe;

impl medwasm::Detector for Probe {
    const MODEL: &'static [u8] = &[];
    const ARENA_BYTES: usize = 0;
    const NODES: usize = 0;
    const OPERANDS: usize = 0;

    fn interpret(&self, _: &medwasm::Io<'_, '_, '_>) -> Result<medwasm::Finding, Error> {
        Ok(medwasm::Finding::default())
    }
}

/// `medwasm_init` reads the tables and lets the plan builder run the loader's node
/// checks: it must refuse every hostile blob `Model::load` refuses, and a blob it
/// accepts must run without a panic.
#[test]
fn the_detector_glue_refuses_what_the_loader_refuses() {
    const ARENA: usize = 1 << 16;
    // One blob buffer, arena and plan storage for every round, leaked so the glue
    // can hold them as `'static` like a detector's statics; each round's `Glue` is
    // dropped before the next one takes them again.
    let blob_buf: &'static mut AlignedBuf = Box::leak(Box::new(AlignedBuf::zeroed(4096)));
    let arena: &'static mut AlignedBuf = Box::leak(Box::new(AlignedBuf::zeroed(ARENA)));
    let plan: &'static mut PlanBuf = Box::leak(Box::new(PlanBuf::new(64, 512)));
    let (blob_ptr, arena_ptr, plan_ptr): (*mut AlignedBuf, *mut AlignedBuf, *mut PlanBuf) =
        (blob_buf, arena, plan);
    let small = small_blob();
    let mut rng = Rng(5);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..5_000 {
        let mut bad = small.clone();
        for _ in 0..1 + rng.below(3) {
            let at = 16 + rng.below(bad.len() - 16);
            bad[at] = match rng.below(3) {
                0 => rng.next() as u8,
                1 => 0xFF,
                _ => bad[at].wrapping_add(1),
            };
        }
        let crc = medwasm::crc32(&bad[16..]);
        bad[12..16].copy_from_slice(&crc.to_le_bytes());
        // SAFETY: no reference into the buffers outlives a round: the glue of the last
        // round, and the model borrowed from the blob, are gone.
        let blob: &'static [u8] = unsafe {
            let buf = &mut *blob_ptr;
            buf.as_mut_slice()[..bad.len()].copy_from_slice(&bad);
            &(*blob_ptr).as_slice()[..bad.len()]
        };
        let loaded = Model::load(blob).map(|m| (m.arena_bytes(), PlanSize::of(&m)));
        let mut glue = medwasm::glue::Glue::new();
        // SAFETY: as above; the glue is dropped at the end of the round.
        let code = glue.init(blob, || unsafe {
            ((*arena_ptr).as_mut_slice(), (*plan_ptr).storage())
        });
        match loaded {
            Err(e) => {
                assert_ne!(code, 0, "the glue accepted a blob the loader refuses: {e}");
                refused += 1;
            }
            Ok((arena_bytes, size)) if arena_bytes <= ARENA && size.steps <= 64 => {
                assert!(
                    size.operands > 512 || code == 0,
                    "the glue refused a blob the loader accepts: code {code}"
                );
                if code == 0 {
                    accepted += 1;
                    let x = glue.ptr(false, 0);
                    if !x.is_null() && glue.dtype(false, 0) == 1 {
                        // SAFETY: input 0's buffer in the arena, `len(false, 0)` f32
                        // elements (dtype 1), 16-byte aligned.
                        let n = glue.len(false, 0) as usize;
                        unsafe { core::slice::from_raw_parts_mut(x.cast::<f32>(), n) }.fill(0.5);
                    }
                    let _ = glue.run(&Probe);
                }
            }
            Ok(_) => assert_ne!(code, 0, "the glue took more memory than it has"),
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}

/// `ERROR_NAMES[code]` names each variant as its `Debug` does, and the codes are
/// 1, 2, … in the order of the table: the ABI's code → name contract.
#[test]
fn error_names_follow_the_codes() {
    let errors = [
        Error::Truncated {
            needed: 1,
            actual: 0,
        },
        Error::BadMagic,
        Error::UnsupportedVersion { major: 9, minor: 0 },
        Error::Checksum {
            stored: 1,
            computed: 2,
        },
        Error::Malformed {
            what: "tensor",
            index: 0,
        },
        Error::ArenaTooSmall {
            needed: 2,
            actual: 1,
        },
        Error::Misaligned { what: "blob" },
        Error::NotInitialized,
        Error::BadIndex { index: 3, count: 1 },
        Error::InputLength {
            input: 0,
            expected: 2,
            actual: 1,
        },
        Error::NonFinite {
            input: 0,
            position: 1,
        },
        Error::UnlinkedOperator {
            op: OpCode::Conv,
            node: 0,
        },
        Error::PlanTooSmall {
            what: "steps",
            needed: 2,
            actual: 1,
        },
        Error::WrongDtype {
            output: true,
            index: 0,
            dtype: DType::I8,
        },
    ];
    assert_eq!(medwasm::ERROR_NAMES.len(), errors.len() + 1);
    assert_eq!(medwasm::ERROR_NAMES[0], "ok");
    for (i, e) in errors.iter().enumerate() {
        assert_eq!(e.code() as usize, i + 1, "{e:?}");
        assert!(
            format!("{e:?}").starts_with(e.name()),
            "{e:?} is named {}",
            e.name()
        );
    }
}
