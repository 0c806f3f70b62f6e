//! Version-2 blobs as a whole: every int8 and hybrid operator in one graph (the
//! plan against preparing every node anew, restricted operator sets), the loader's
//! refusals of invalid quantization, parameters and accumulator bounds, the refusal
//! of version-1 blobs, and the hostile-blob loop on an int8 graph.

use super::int8::{Data, Win, hard_swish_params, lut, run, softmax_params};
use super::refs::quantize_multiplier;
use super::{Graph, Probe, Rng, run_by_prepare};
use medwasm::format::{DType, NO_TENSOR, OpCode, TensorSpec};
use medwasm::kernels::act::Act;
use medwasm::ops::{OpSet, op_bit};
use medwasm::{AlignedBuf, Error, Model, PlanBuf, PlanSize, Runtime};

fn words(v: &[i32]) -> Vec<u32> {
    v.iter().map(|&x| x as u32).collect()
}

/// Constants for a per-channel requantization of `channels` channels from `s_in`
/// and the weight scale to `s_out`: the multiplier and shift tensors.
fn requant_consts(g: &mut Graph, channels: usize, s_in: f32, s_w: f32, s_out: f32) -> (u32, u32) {
    let (m, s) = quantize_multiplier(s_in as f64 * s_w as f64 / s_out as f64);
    (
        g.constant_of(&[channels as u32], &vec![m; channels]),
        g.constant_of(&[channels as u32], &vec![s; channels]),
    )
}

/// Every int8 and hybrid operator in one graph (and Transpose, Pad, Concat and
/// Copy on int8), valid and with TFLite-like parameters:
///
/// x f32 [1,6,6,3] → Quantize → QConv 3×3 SAME (4) → QDepthwiseConv ×2 (8) →
/// QMaxPool 2×2 → QAveragePool 3×3 SAME → QRequantize (RELU6) and QAdd of both →
/// QMul → QHardSwish → QLeakyRelu → QLut → Transpose → Pad → Concat → Copy →
/// QMean → QFullyConnected (fixed point) → QFullyConnected (f64) → QSoftmax →
/// Dequantize; and x → HybridConv → HybridFullyConnected. Outputs: the
/// probabilities (f32) and the hybrid output (f32).
pub fn every_int8_op_blob() -> Vec<u8> {
    let mut rng = Rng(40);
    let mut g = Graph::default();
    let s = 0.05f32;
    let x = g.arena("x", &[1, 6, 6, 3]);
    let q = g.arena_q("", &[1, 6, 6, 3], s, 3);
    g.node(OpCode::Quantize, &[x], q, NO_TENSOR, &[]);

    let conv = |g: &mut Graph,
                rng: &mut Rng,
                input: u32,
                c: usize,
                m: usize,
                depthwise: bool,
                s_out: f32| {
        let win = Win::new(6, 6, [3, 3], [1, 1], [1, 1], true).unwrap();
        let (wd, n) = if depthwise {
            ([1, 3, 3, m as u32], 9 * m)
        } else {
            ([m as u32, 3, 3, c as u32], m * 9 * c)
        };
        let w: Vec<i8> = (0..n).map(|_| rng.next() as i8 / 2).collect();
        let wt = g.constant_of(&wd, &w);
        let b: Vec<i32> = (0..m).map(|k| k as i32 * 100 - 150).collect();
        let bt = g.constant_of(&[m as u32], &b);
        let (mt, st) = requant_consts(g, m, s, 0.01, s_out);
        let y = g.arena_q("", &[1, 6, 6, m as u32], s_out, -5);
        let mut p = win.words();
        p.extend(words(&[-128, 127]));
        let op = if depthwise {
            OpCode::QDepthwiseConv
        } else {
            OpCode::QConv
        };
        g.node(op, &[input, wt, bt, mt, st], y, NO_TENSOR, &p);
        y
    };
    let c1 = conv(&mut g, &mut rng, q, 3, 4, false, s);
    let c2 = conv(&mut g, &mut rng, c1, 4, 8, true, s);

    let mp = g.arena_q("", &[1, 3, 3, 8], s, -5);
    let mut p = Win::new(6, 6, [2, 2], [2, 2], [1, 1], false)
        .unwrap()
        .words();
    p.extend(words(&[-128, 127]));
    g.node(OpCode::QMaxPool, &[c2], mp, NO_TENSOR, &p);
    let ap = g.arena_q("", &[1, 3, 3, 8], s, -5);
    let mut p = Win::new(3, 3, [3, 3], [1, 1], [1, 1], true)
        .unwrap()
        .words();
    p.extend(words(&[-128, 127]));
    g.node(OpCode::QAveragePool, &[mp], ap, NO_TENSOR, &p);

    let rq = g.arena_q("", &[1, 3, 3, 8], 0.04, -128);
    let (m, sh) = quantize_multiplier((s / 0.04f32) as f64);
    let six = -128 + (6.0f32 / 0.04).round() as i32;
    g.node(
        OpCode::QRequantize,
        &[ap],
        rq,
        NO_TENSOR,
        &words(&[m, sh, -128, six.min(127)]),
    );
    let add = g.arena_q("", &[1, 3, 3, 8], 0.08, 0);
    let twice = 2.0 * 0.05f64;
    let (m1, s1) = quantize_multiplier(0.05 / twice);
    let (m2, s2) = quantize_multiplier(0.04f32 as f64 / twice);
    let (mo, so) = quantize_multiplier(twice / ((1 << 20) as f64 * 0.08f32 as f64));
    g.node(
        OpCode::QAdd,
        &[ap, rq],
        add,
        NO_TENSOR,
        &words(&[0, 20, m1, s1, m2, s2, mo, so, -128, 127]),
    );
    let k8 = g.push(
        TensorSpec::constant("", &[8], &(0..8).map(|v| v * 9 - 30).collect::<Vec<i8>>())
            .quantized(0.02, 0),
    );
    let mul = g.arena_q("", &[1, 3, 3, 8], 0.05, 1);
    let (mm, ms) = quantize_multiplier((0.08f32 * 0.02 / 0.05) as f64);
    g.node(
        OpCode::QMul,
        &[add, k8],
        mul,
        NO_TENSOR,
        &words(&[mm, ms, -128, 127]),
    );
    let hs = g.arena_q("", &[1, 3, 3, 8], 0.04, -20);
    g.node(
        OpCode::QHardSwish,
        &[mul],
        hs,
        NO_TENSOR,
        &words(&hard_swish_params(0.05, 0.04)),
    );
    let lr = g.arena_q("", &[1, 3, 3, 8], 0.03, 10);
    let (ma, sa) = quantize_multiplier((0.04f32 * 0.1 / 0.03) as f64);
    let (mi, si) = quantize_multiplier((0.04f32 / 0.03) as f64);
    g.node(
        OpCode::QLeakyRelu,
        &[hs],
        lr,
        NO_TENSOR,
        &words(&[mi, si, ma, sa]),
    );
    let table = g.constant_of(&[256], &lut(false, 0.03, 10, 1.0 / 256.0, -128));
    let sg = g.arena_q("", &[1, 3, 3, 8], 1.0 / 256.0, -128);
    g.node(OpCode::QLut, &[lr, table], sg, NO_TENSOR, &[]);

    let (sq, zq) = (1.0f32 / 256.0, -128);
    let tr = g.arena_q("", &[1, 8, 3, 3], sq, zq);
    g.node(OpCode::Transpose, &[sg], tr, NO_TENSOR, &[0, 3, 1, 2]);
    let pd = g.arena_q("", &[1, 8, 4, 4], sq, zq);
    g.node(
        OpCode::Pad,
        &[tr],
        pd,
        NO_TENSOR,
        &[0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
    );
    let cat = g.arena_q("", &[1, 8, 4, 8], sq, zq);
    g.node(OpCode::Concat, &[pd, pd], cat, NO_TENSOR, &[3]);
    let cp = g.arena_q("", &[1, 8, 32], sq, zq);
    g.node(OpCode::Copy, &[cat], cp, NO_TENSOR, &[]);
    let mean = g.arena_q("", &[1, 8], sq, zq);
    let (mm, ms) = quantize_multiplier(1.0);
    g.node(
        OpCode::QMean,
        &[cp],
        mean,
        NO_TENSOR,
        &words(&[0b100, mm, ms]),
    );

    let fc1 = g.arena_q("", &[1, 6], 0.1, 2);
    let w1: Vec<i8> = (0..48).map(|_| rng.next() as i8).collect();
    let w1t = g.constant_of(&[6, 8], &w1);
    let (m1t, s1t) = requant_consts(&mut g, 6, sq, 0.01, 0.1);
    g.node(
        OpCode::QFullyConnected,
        &[mean, w1t, NO_TENSOR, m1t, s1t],
        fc1,
        NO_TENSOR,
        &words(&[0, -128, 127]),
    );
    let fc2 = g.arena_q("", &[1, 5], 0.2, -3);
    let w2: Vec<i8> = (0..30).map(|_| rng.next() as i8).collect();
    let w2t = g.push(TensorSpec::constant("", &[5, 6], &w2).quantized(0.01, 4));
    let b2 = g.constant_of(&[5], &[100i32, -200, 300, -400, 0]);
    let sc = g.constant_of(&[1], &[0.1f32 as f64 * 0.01f32 as f64 / 0.2f32 as f64]);
    g.node(
        OpCode::QFullyConnected,
        &[fc1, w2t, b2, sc],
        fc2,
        NO_TENSOR,
        &words(&[1, -128, 127]),
    );
    let sm = g.arena_q("", &[1, 5], 1.0 / 256.0, -128);
    let (m, ls, dm) = softmax_params(1.0, 0.2);
    g.node(
        OpCode::QSoftmax,
        &[fc2],
        sm,
        NO_TENSOR,
        &words(&[m, ls, dm]),
    );
    let probs = g.arena("probabilities", &[1, 5]);
    g.node(OpCode::Dequantize, &[sm], probs, NO_TENSOR, &[]);

    let hw: Vec<i8> = (0..2 * 9 * 3).map(|_| rng.next() as i8).collect();
    let hwt = g.push(TensorSpec::constant("", &[2, 3, 3, 3], &hw).quantized(0.02, 0));
    let hb = g.constant(&[2], &[0.5, -0.25]);
    let hc = g.arena("", &[1, 3, 3, 2]);
    let hscratch = g.arena_of("", DType::I8, &[108], None);
    let mut p = Win::new(6, 6, [3, 3], [2, 2], [1, 1], true)
        .unwrap()
        .words();
    p.extend(Act::Relu.encode());
    g.node(OpCode::HybridConv, &[x, hwt, hb], hc, hscratch, &p);
    // Depthwise (multiplier 2) and fully connected with per-channel scales and
    // asymmetric input quantization.
    let dw: Vec<i8> = (0..4 * 4).map(|_| rng.next() as i8).collect();
    let dwt = g.constant_of(&[1, 2, 2, 4], &dw);
    let ds = g.constant(&[4], &[0.01, 0.02, 0.015, 0.03]);
    let hd = g.arena("", &[1, 2, 2, 4]);
    let dscratch = g.arena_of("", DType::I8, &[18], None);
    let mut p = Win::new(3, 3, [2, 2], [1, 1], [1, 1], false)
        .unwrap()
        .words();
    p.extend(Act::Clip(0.0, 6.0).encode());
    g.node(
        OpCode::HybridDepthwiseConv,
        &[hc, dwt, NO_TENSOR, ds],
        hd,
        dscratch,
        &p,
    );
    let hf = g.arena("hybrid", &[1, 4]);
    let fw: Vec<i8> = (0..4 * 16).map(|_| rng.next() as i8).collect();
    let fwt = g.constant_of(&[4, 16], &fw);
    let fs = g.constant(&[4], &[0.03, 0.01, 0.02, 0.025]);
    let fscratch = g.arena_of("", DType::I8, &[16], None);
    let mut p = Act::Tanh.encode().to_vec();
    p.push(1);
    g.node(
        OpCode::HybridFullyConnected,
        &[hd, fwt, NO_TENSOR, fs],
        hf,
        fscratch,
        &p,
    );
    g.finish(&[x], &[probs, hf])
}

#[test]
fn every_int8_op_runs_in_a_plan_as_when_prepared_anew() {
    let blob = every_int8_op_blob();
    let buf = AlignedBuf::from_bytes(&blob);
    let model = Model::load(buf.as_slice()).unwrap();
    let ops: Vec<OpCode> = (0..model.node_count())
        .map(|i| model.node(i).unwrap().op)
        .collect();
    for op in (13..=30).filter_map(OpCode::from_u16) {
        assert!(ops.contains(&op), "the graph lacks {op:?}");
    }
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage()).unwrap();
    let mut rng = Rng(41);
    for round in 0..4 {
        let x: Vec<f32> = (0..108).map(|_| rng.f32() * 4.0).collect();
        rt.set_input(0, &x).unwrap();
        rt.run().unwrap();
        let want = run_by_prepare(&model, &[&super::f32_bytes(&x)]);
        for (o, want) in want.iter().enumerate() {
            assert_eq!(
                rt.output_view(o).unwrap().bytes(),
                want.as_slice(),
                "round {round}, output {o}"
            );
        }
        let probs = rt.output(0).unwrap();
        let total: f32 = probs.iter().sum();
        assert!((total - 1.0).abs() < 0.05, "probabilities sum to {total}");
        assert!(rt.output(1).unwrap().iter().all(|v| v.abs() <= 1.0));
    }
}

/// The int8 operators of the graph above, and Quantize/Dequantize: a build without
/// any f32 compute kernel.
struct Int8Only;

impl OpSet for Int8Only {
    const OPS: u64 = {
        let mut bits = op_bit(OpCode::Transpose)
            | op_bit(OpCode::Pad)
            | op_bit(OpCode::Concat)
            | op_bit(OpCode::Copy);
        let mut k = 13;
        while k <= 30 {
            bits |= 1 << k;
            k += 1;
        }
        bits
    };
}

/// f32 compute only.
struct F32Only;

impl OpSet for F32Only {
    const OPS: u64 = op_bit(OpCode::Gemm) | op_bit(OpCode::Conv) | op_bit(OpCode::Binary);
}

#[test]
fn an_int8_build_runs_int8_models_and_refuses_float_ones() {
    let blob = every_int8_op_blob();
    let buf = AlignedBuf::from_bytes(&blob);
    let model = Model::load_in::<Int8Only>(buf.as_slice()).unwrap();
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new_in::<Int8Only>(model, arena.as_mut_slice(), plan.storage()).unwrap();
    rt.set_input(0, &[0.25; 108]).unwrap();
    rt.run_in::<Int8Only>().unwrap();
    // The first node is a Quantize: an f32 build refuses the blob there.
    assert_eq!(
        Model::load_in::<F32Only>(buf.as_slice()).err(),
        Some(Error::UnlinkedOperator {
            op: OpCode::Quantize,
            node: 0
        })
    );
    // And the int8 build refuses the f32 battery model at its first node (Gemm).
    let small = super::small_blob();
    assert!(matches!(
        Model::load_in::<Int8Only>(AlignedBuf::from_bytes(&small).as_slice()),
        Err(Error::UnlinkedOperator {
            op: OpCode::Gemm,
            ..
        })
    ));
}

#[test]
fn op_codes_and_bits_are_dense_and_ordered() {
    for (k, op) in OpCode::ALL.iter().enumerate() {
        assert_eq!(*op as u16 as usize, k + 1);
        assert_eq!(OpCode::from_u16(k as u16 + 1), Some(*op));
        assert_eq!(op_bit(*op), 1u64 << (k + 1));
    }
    assert_eq!(OpCode::from_u16(0), None);
    assert_eq!(OpCode::from_u16(31), None);
    assert_eq!(medwasm::ops::ALL_OPS, ((1u64 << 31) - 1) & !1);
}

/// `blob` with `patch` applied to the bytes of its `index`th tensor record, the
/// checksum fixed.
fn patch_tensor(blob: &[u8], index: usize, patch: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut b = blob.to_vec();
    let table = u32::from_le_bytes(b[28..32].try_into().unwrap()) as usize;
    let at = table + index * medwasm::format::TENSOR_RECORD_LEN;
    patch(&mut b[at..at + medwasm::format::TENSOR_RECORD_LEN]);
    fix_crc(&mut b);
    b
}

fn fix_crc(b: &mut [u8]) {
    let crc = medwasm::crc32(&b[16..]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
}

fn load_err(blob: &[u8]) -> Error {
    Model::load(AlignedBuf::from_bytes(blob).as_slice()).expect_err("the loader accepted the blob")
}

fn malformed(what: &'static str, index: u32) -> Error {
    Error::Malformed { what, index }
}

/// A one-node requantize blob: x i8 [4] (0.1, 0) → y i8 [4] (0.2, 5).
fn requant_blob() -> Vec<u8> {
    let mut g = Graph::default();
    let x = g.arena_q("x", &[4], 0.1, 0);
    let y = g.arena_q("y", &[4], 0.2, 5);
    let (m, s) = quantize_multiplier(0.5);
    g.node(
        OpCode::QRequantize,
        &[x],
        y,
        NO_TENSOR,
        &words(&[m, s, -128, 127]),
    );
    g.finish(&[x], &[y])
}

#[test]
fn version_1_blobs_and_other_majors_are_refused_with_a_fix() {
    let blob = requant_blob();
    assert_eq!(
        run(&blob, &[Data::I8(vec![10, -10, 127, -128])]).unwrap()[0],
        Data::I8(vec![10, 0, 69, -59])
    );
    for major in [1u16, 3, 0xFFFF] {
        let mut b = blob.clone();
        b[4..6].copy_from_slice(&major.to_le_bytes());
        let err = load_err(&b);
        assert_eq!(err, Error::UnsupportedVersion { major, minor: 0 });
        assert_eq!(err.code(), 3);
        if major == 1 {
            assert!(
                err.to_string().contains("run `cargo medwasm import` again"),
                "{err}"
            );
        } else {
            assert!(
                err.to_string().contains("update the `medwasm` crate"),
                "{err}"
            );
        }
    }
    // A genuine version-1 blob: 40-byte records, one f32 Copy node (written by hand,
    // as the v1 writer did). Refused by its version before anything else is read.
    let mut v1 = vec![0u8; 80 + 2 * 40 + 20 + 8 + 8];
    v1[..4].copy_from_slice(b"MWM\0");
    v1[4..6].copy_from_slice(&1u16.to_le_bytes());
    let len = v1.len() as u32;
    v1[8..12].copy_from_slice(&len.to_le_bytes());
    fix_crc(&mut v1);
    assert!(matches!(
        load_err(&v1),
        Error::UnsupportedVersion { major: 1, .. }
    ));
}

#[test]
fn tensor_records_with_invalid_quantization_are_refused() {
    let blob = requant_blob();
    // Tensor 0 is x: i8, quantized (0.1, 0).
    let set_scale =
        |v: f32| move |r: &mut [u8]| r[40..44].copy_from_slice(&v.to_bits().to_le_bytes());
    let set_zp = |v: i32| move |r: &mut [u8]| r[44..48].copy_from_slice(&v.to_le_bytes());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            patch_tensor(&blob, 0, set_scale(0.0)),
            "quantization scale not finite and positive",
        ),
        (
            patch_tensor(&blob, 0, set_scale(-0.1)),
            "quantization scale not finite and positive",
        ),
        (
            patch_tensor(&blob, 0, set_scale(f32::NAN)),
            "quantization scale not finite and positive",
        ),
        (
            patch_tensor(&blob, 0, set_scale(f32::INFINITY)),
            "quantization scale not finite and positive",
        ),
        (
            patch_tensor(&blob, 0, set_zp(128)),
            "zero point outside the element type",
        ),
        (
            patch_tensor(&blob, 0, set_zp(-129)),
            "zero point outside the element type",
        ),
        (patch_tensor(&blob, 0, |r| r[3] = 3), "unknown tensor flags"),
        (
            patch_tensor(&blob, 0, |r| {
                r[3] = 0;
            }),
            "unquantized tensor with a scale or zero point",
        ),
        (
            patch_tensor(&blob, 0, |r| {
                r[3] = 0;
                r[40..48].fill(0);
            }),
            "int8 activation without quantization",
        ),
        (
            patch_tensor(&blob, 0, |r| r[1] = DType::F32 as u8),
            "quantized tensor of a float type",
        ),
        (
            patch_tensor(&blob, 0, |r| r[1] = DType::F64 as u8),
            "f64 tensor not constant",
        ),
        (patch_tensor(&blob, 0, |r| r[1] = 9), "unknown tensor dtype"),
    ];
    for (b, what) in cases {
        let err = load_err(&b);
        assert!(
            matches!(err, Error::Malformed { what: w, .. } if w == what),
            "{what}: got {err}"
        );
    }
}

/// A QConv blob over x [1,4,4,c] with `k`×`k` weights of value `w`, bias `bias`,
/// and the given multiplier/shift and activation range.
fn qconv_blob(c: u32, k: u32, w: i8, bias: i32, (m, s): (i32, i32), range: (i32, i32)) -> Vec<u8> {
    let mut g = Graph::default();
    let x = g.arena_q("x", &[1, 4, 4, c], 0.1, -128);
    let wt = g.constant_of(&[2, k, k, c], &vec![w; (2 * k * k * c) as usize]);
    let bt = g.constant_of(&[2], &[bias, 0]);
    let mt = g.constant_of(&[2], &[m, m]);
    let st = g.constant_of(&[2], &[s, s]);
    let y = g.arena_q("y", &[1, 4 - k + 1, 4 - k + 1, 2], 0.5, 0);
    let mut p = Win::new(4, 4, [k as usize, k as usize], [1, 1], [1, 1], false)
        .unwrap()
        .words();
    p.extend(words(&[range.0, range.1]));
    g.node(OpCode::QConv, &[x, wt, bt, mt, st], y, NO_TENSOR, &p);
    g.finish(&[x], &[y])
}

#[test]
fn int8_parameters_out_of_range_are_refused() {
    let ok = (1 << 30, -3);
    assert!(
        Model::load(AlignedBuf::from_bytes(&qconv_blob(2, 3, 5, 1000, ok, (-128, 127))).as_slice())
            .is_ok()
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            qconv_blob(2, 3, 5, 1000, ((1 << 30) - 1, -3), (-128, 127)),
            "multiplier or shift out of range",
        ),
        (
            qconv_blob(2, 3, 5, 1000, (1 << 30, 31), (-128, 127)),
            "multiplier or shift out of range",
        ),
        (
            qconv_blob(2, 3, 5, 1000, (1 << 30, -32), (-128, 127)),
            "multiplier or shift out of range",
        ),
        (
            qconv_blob(2, 3, 5, 1000, (-(1 << 30), -3), (-128, 127)),
            "multiplier or shift out of range",
        ),
        (
            qconv_blob(2, 3, 5, 1000, ok, (10, -10)),
            "activation range outside int8",
        ),
        (
            qconv_blob(2, 3, 5, 1000, ok, (-129, 127)),
            "activation range outside int8",
        ),
        (
            qconv_blob(2, 3, 5, 1000, ok, (-128, 128)),
            "activation range outside int8",
        ),
        // |bias| alone past i32 is impossible in an i32; a bias near the limit plus
        // the products overflows.
        (
            qconv_blob(2, 3, 5, i32::MAX - 1000, ok, (-128, 127)),
            "accumulator may overflow int32: too many or too large weights for int8",
        ),
        // A positive shift doubles the accumulator bound per step: 2^30 left of
        // a 9·2·127·255 bound overflows.
        (
            qconv_blob(2, 3, 127, 0, (1 << 30, 30), (-128, 127)),
            "accumulator may overflow int32: too many or too large weights for int8",
        ),
    ];
    for (b, what) in cases {
        assert_eq!(load_err(&b), malformed(what, 0), "{what}");
    }
    // An accumulator bound that holds exactly at the limit is accepted: K = 9·2,
    // |w| = 128, |x − zp| ≤ 255 (zp −128), bias so that the sum is i32::MAX.
    let k = 18 * 128 * 255;
    let b = qconv_blob(2, 3, -128, i32::MAX - k, ok, (-128, 127));
    assert!(Model::load(AlignedBuf::from_bytes(&b).as_slice()).is_ok());
    let b = qconv_blob(2, 3, -128, i32::MAX - k + 1, ok, (-128, 127));
    assert_eq!(
        load_err(&b),
        malformed(
            "accumulator may overflow int32: too many or too large weights for int8",
            0
        )
    );
    // And that model really reaches it: every input at -127 (x − zp = 1)... at 127
    // (x − zp = 255) with weights -128 gives -k per channel.
    let out = run(
        &qconv_blob(2, 3, -128, i32::MAX - k, (1 << 30, -30), (-128, 127)),
        &[Data::I8(vec![127; 32])],
    )
    .unwrap();
    // acc = -k + (MAX - k) for channel 0 = MAX - 2k; scaled by 2^-31: 0.
    assert!(
        out[0]
            .clone()
            .i8()
            .iter()
            .all(|&v| v == 0 || v == 1 || v == -1)
    );
}

/// A single-node int8 blob with op `op` on x [1,n] → y [1,n] quantized as given.
fn unary_blob(
    op: OpCode,
    n: u32,
    qx: (f32, i32),
    qy: (f32, i32),
    params: &[i32],
    extra: Option<&[i8]>,
) -> Vec<u8> {
    let mut g = Graph::default();
    let x = g.arena_q("x", &[1, n], qx.0, qx.1);
    let mut inputs = vec![x];
    if let Some(t) = extra {
        inputs.push(g.constant_of(&[t.len() as u32], t));
    }
    let y = g.arena_q("y", &[1, n], qy.0, qy.1);
    g.node(op, &inputs, y, NO_TENSOR, &words(params));
    g.finish(&[x], &[y])
}

#[test]
fn softmax_lut_add_and_friends_refuse_what_their_kernels_cannot_run() {
    let (m, ls, dm) = softmax_params(1.0, 0.1);
    let sm =
        |n: u32, qy: (f32, i32), p: &[i32]| unary_blob(OpCode::QSoftmax, n, (0.1, 0), qy, p, None);
    let out = (1.0 / 256.0, -128);
    assert!(Model::load(AlignedBuf::from_bytes(&sm(511, out, &[m, ls, dm])).as_slice()).is_ok());
    let lut256: Vec<i8> = (0..256).map(|v| v as i8).collect();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            sm(512, out, &[m, ls, dm]),
            "QSoftmax row longer than 511 elements",
        ),
        (
            sm(8, (1.0 / 256.0, -127), &[m, ls, dm]),
            "QSoftmax output must be quantized with scale 1/256 and zero point -128",
        ),
        (
            sm(8, (1.0 / 250.0, -128), &[m, ls, dm]),
            "QSoftmax output must be quantized with scale 1/256 and zero point -128",
        ),
        (
            sm(8, out, &[m, ls, 1]),
            "QSoftmax diff_min outside the input radius",
        ),
        (
            sm(8, out, &[m, ls, dm - 1]),
            "QSoftmax diff_min outside the input radius",
        ),
        (
            sm(8, out, &[(1 << 30) - 1, ls, dm]),
            "QSoftmax multiplier or shift out of range",
        ),
        (
            sm(8, out, &[m, 32, dm]),
            "QSoftmax multiplier or shift out of range",
        ),
        (
            unary_blob(
                OpCode::QLut,
                8,
                (0.1, 0),
                (0.1, 0),
                &[],
                Some(&lut256[..255]),
            ),
            "QLut table must be an int8 constant of 256 entries",
        ),
        (
            unary_blob(
                OpCode::QRequantize,
                8,
                (0.1, 0),
                (0.1, 0),
                &[1 << 30, 24, -128, 127],
                None,
            ),
            "QRequantize multiplier or shift out of range",
        ),
        (
            unary_blob(
                OpCode::QLeakyRelu,
                8,
                (0.1, 0),
                (0.1, 0),
                &[1 << 30, 0, i32::MIN, 0],
                None,
            ),
            "QLeakyRelu multiplier or shift out of range",
        ),
        (
            unary_blob(
                OpCode::QHardSwish,
                8,
                (0.1, 0),
                (0.1, 0),
                &[16384, -16, 16384, 0],
                None,
            ),
            "QHardSwish multiplier or exponent out of range",
        ),
        (
            unary_blob(
                OpCode::QHardSwish,
                8,
                (0.1, 0),
                (0.1, 0),
                &[16383, -4, 16384, 0],
                None,
            ),
            "QHardSwish multiplier or exponent out of range",
        ),
    ];
    for (b, what) in cases {
        assert_eq!(load_err(&b), malformed(what, 0), "{what}");
    }
    // A negative alpha multiplier other than i32::MIN is fine.
    let b = unary_blob(
        OpCode::QLeakyRelu,
        8,
        (0.1, 0),
        (0.1, 0),
        &[1 << 30, 0, -(1 << 30), 0],
        None,
    );
    assert!(Model::load(AlignedBuf::from_bytes(&b).as_slice()).is_ok());

    let add = |p: &[i32]| {
        let mut g = Graph::default();
        let a = g.arena_q("a", &[4], 0.1, 0);
        let b = g.arena_q("b", &[4], 0.1, 0);
        let y = g.arena_q("y", &[4], 0.1, 0);
        g.node(OpCode::QAdd, &[a, b], y, NO_TENSOR, &words(p));
        g.finish(&[a, b], &[y])
    };
    let m = 1 << 30;
    assert!(
        Model::load(
            AlignedBuf::from_bytes(&add(&[1, 20, m, 0, m, 0, m, -1, -128, 127])).as_slice()
        )
        .is_ok()
    );
    for (p, what) in [
        (
            &[0, 21, m, 0, m, 0, m, -1, -128, 127],
            "QAdd left shift above 20",
        ),
        (&[2, 20, m, 0, m, 0, m, -1, -128, 127], "unknown QAdd kind"),
        (
            &[0, 20, m, 1, m, 0, m, -1, -128, 127],
            "QAdd multiplier or shift out of range",
        ),
        (
            &[0, 20, m, 0, m, 0, m, 2, -128, 127],
            "QAdd multiplier or shift out of range",
        ),
    ] {
        assert_eq!(load_err(&add(p)), malformed(what, 0), "{what}");
    }
}

#[test]
fn fully_connected_hybrid_and_data_movement_refusals() {
    let fc = |mode: i32, zp_w: i32, scales: usize, scale: f64| {
        let mut g = Graph::default();
        let x = g.arena_q("x", &[1, 4], 0.1, 0);
        let w = g.push(TensorSpec::constant("", &[3, 4], &[1i8; 12]).quantized(0.01, zp_w));
        let mut inputs = vec![x, w, NO_TENSOR];
        if mode == 1 {
            inputs.push(g.constant_of(&[scales as u32], &vec![scale; scales]));
        } else {
            inputs.push(g.constant_of(&[scales as u32], &vec![1 << 30; scales]));
            inputs.push(g.constant_of(&[scales as u32], &vec![-2; scales]));
        }
        let y = g.arena_q("y", &[1, 3], 0.1, 0);
        g.node(
            OpCode::QFullyConnected,
            &inputs,
            y,
            NO_TENSOR,
            &words(&[mode, -128, 127]),
        );
        g.finish(&[x], &[y])
    };
    for b in [
        fc(0, 3, 1, 0.0),
        fc(1, 3, 1, 0.01),
        fc(0, 0, 3, 0.0),
        fc(1, 0, 3, 0.01),
    ] {
        assert!(Model::load(AlignedBuf::from_bytes(&b).as_slice()).is_ok());
    }
    for (b, what) in [
        (
            fc(2, 0, 1, 0.01),
            "unknown fully connected requantization mode",
        ),
        (
            fc(0, 3, 3, 0.0),
            "per-channel fully connected weights need zero point 0",
        ),
        (fc(1, 0, 2, 0.01), "scales per unit"),
        (
            fc(1, 0, 1, f64::NAN),
            "fully connected scale not finite and positive",
        ),
        (
            fc(1, 0, 1, -0.5),
            "fully connected scale not finite and positive",
        ),
    ] {
        assert_eq!(load_err(&b), malformed(what, 0), "{what}");
    }

    // Hybrid FC: weights need a per-tensor scale, and an int8 scratch of a row.
    let hybrid = |quantized: bool, scratch: Option<(DType, u32)>| {
        let mut g = Graph::default();
        let x = g.arena("x", &[2, 4]);
        let spec = TensorSpec::constant("", &[3, 4], &[1i8; 12]);
        let w = g.push(if quantized {
            spec.quantized(0.01, 0)
        } else {
            spec
        });
        let y = g.arena("y", &[2, 3]);
        let s = match scratch {
            Some((dt, n)) => g.arena_of("", dt, &[n], None),
            None => NO_TENSOR,
        };
        g.node(
            OpCode::HybridFullyConnected,
            &[x, w, NO_TENSOR],
            y,
            s,
            &Act::None.encode(),
        );
        g.finish(&[x], &[y])
    };
    assert!(
        Model::load(AlignedBuf::from_bytes(&hybrid(true, Some((DType::I8, 4)))).as_slice()).is_ok()
    );
    for (b, what) in [
        (
            hybrid(false, Some((DType::I8, 4))),
            "hybrid weights need a per-tensor scale",
        ),
        (hybrid(true, None), "hybrid op needs an int8 scratch tensor"),
        (
            hybrid(true, Some((DType::I8, 3))),
            "hybrid scratch too small",
        ),
        (
            hybrid(true, Some((DType::F32, 4))),
            "hybrid scratch too small",
        ),
    ] {
        assert_eq!(load_err(&b), malformed(what, 0), "{what}");
    }

    // Data movement keeps the element type and the quantization.
    let mv = |op: OpCode, qy: Option<(f32, i32)>, dy: DType, params: &[u32]| {
        let mut g = Graph::default();
        let x = g.arena_q("x", &[2, 2], 0.1, 3);
        let y = g.arena_of("y", dy, &[2, 2], qy);
        g.node(op, &[x], y, NO_TENSOR, params);
        g.finish(&[x], &[y])
    };
    assert!(
        Model::load(
            AlignedBuf::from_bytes(&mv(OpCode::Copy, Some((0.1, 3)), DType::I8, &[])).as_slice()
        )
        .is_ok()
    );
    for (b, what) in [
        (
            mv(OpCode::Copy, Some((0.1, 4)), DType::I8, &[]),
            "data movement changes the quantization: requantize first",
        ),
        (
            mv(OpCode::Transpose, Some((0.2, 3)), DType::I8, &[1, 0]),
            "data movement changes the quantization: requantize first",
        ),
        (
            mv(OpCode::Copy, None, DType::F32, &[]),
            "data movement changes the element type",
        ),
        (
            mv(OpCode::Pad, Some((0.1, 3)), DType::I8, &[0, 1, 0, 0, 0, 0]),
            "integer Pad constant must be 0 (the zero point pads)",
        ),
    ] {
        assert_eq!(load_err(&b), malformed(what, 0), "{what}");
    }
    // An f32 operator on int8 tensors.
    let mut g = Graph::default();
    let x = g.arena_q("x", &[1, 4], 0.1, 0);
    let w = g.constant(&[4, 2], &[0.5; 8]);
    let y = g.arena("y", &[1, 2]);
    g.node(OpCode::Gemm, &[x, w], y, NO_TENSOR, &Act::None.encode());
    assert_eq!(
        load_err(&g.finish(&[x], &[y])),
        malformed("f32 operator on a tensor of another element type", 0)
    );
}

#[test]
fn int8_graph_inputs_are_read_and_written_through_typed_views() {
    let blob = requant_blob();
    let buf = AlignedBuf::from_bytes(&blob);
    let model = Model::load(buf.as_slice()).unwrap();
    let info = model.input(0).unwrap();
    assert_eq!(info.dtype, DType::I8);
    assert_eq!(
        info.quant,
        Some(medwasm::Quant {
            scale: 0.1,
            zero_point: 0
        })
    );
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage()).unwrap();
    // The f32 accessors refuse an int8 tensor with their own error.
    let err = rt.set_input(0, &[0.0; 4]).unwrap_err();
    assert_eq!(
        err,
        Error::WrongDtype {
            output: false,
            index: 0,
            dtype: DType::I8
        }
    );
    assert_eq!(err.code(), 14);
    assert_eq!(
        rt.output(0).err(),
        Some(Error::WrongDtype {
            output: true,
            index: 0,
            dtype: DType::I8
        })
    );
    match rt.input_view_mut(0).unwrap() {
        medwasm::ViewMut::I8(x) => x.copy_from_slice(&[2, 4, -6, 100]),
        other => panic!("{:?}", other.dtype()),
    }
    rt.run().unwrap();
    // 0.1/0.2 = 0.5: 1, 2, -3, 50, then + 5.
    assert_eq!(rt.output_view(0).unwrap().i8().unwrap(), [6, 7, 2, 55]);
}

/// The exported ABI (version 2) over an int8-I/O model: the glue reports each
/// tensor's element type (2 = i8) and its element count, and its pointers address
/// int8 bytes a host writes and reads directly.
#[test]
fn the_glue_exports_int8_inputs_and_outputs_with_their_dtype() {
    assert_eq!(medwasm::glue::ABI_VERSION, 2);
    // The glue holds `'static` storage, as a detector's statics are.
    let blob: &'static [u8] =
        Box::leak(Box::new(AlignedBuf::from_bytes(&requant_blob()))).as_slice();
    let model = Model::load(blob).unwrap();
    let (size, arena_bytes) = (PlanSize::of(&model), model.arena_bytes());
    let arena: &'static mut AlignedBuf = Box::leak(Box::new(AlignedBuf::zeroed(arena_bytes)));
    let plan: &'static mut PlanBuf = Box::leak(Box::new(PlanBuf::new(size.steps, size.operands)));
    let mut glue = medwasm::glue::Glue::new();
    assert_eq!(glue.dtype(false, 0), -1, "before init");
    assert_eq!(
        glue.init(blob, || (arena.as_mut_slice(), plan.storage())),
        0
    );
    assert_eq!((glue.dtype(false, 0), glue.dtype(true, 0)), (2, 2));
    assert_eq!((glue.len(false, 0), glue.len(true, 0)), (4, 4));
    assert_eq!((glue.dtype(false, 1), glue.dtype(true, -1)), (-1, -1));
    assert!(glue.ptr(false, 1).is_null());
    let x = glue.ptr(false, 0);
    // SAFETY: input 0 is 4 int8 elements at `x`, in the glue's arena.
    unsafe { core::slice::from_raw_parts_mut(x.cast::<i8>(), 4) }.copy_from_slice(&[2, 4, -6, 100]);
    assert_eq!(
        glue.run(&Probe),
        0,
        "{:?}",
        core::str::from_utf8(glue.error())
    );
    let y = glue.ptr(true, 0);
    // SAFETY: output 0 is 4 int8 elements at `y`.
    assert_eq!(
        unsafe { core::slice::from_raw_parts(y.cast::<i8>(), 4) },
        [6, 7, 2, 55]
    );
}

/// Hostile v2 blobs: random byte changes with the checksum recomputed, on the
/// every-int8-op graph. Loading must give an error or a model that prepares and
/// runs without a panic (debug builds also trap every integer overflow, so an
/// accumulator bound the loader failed to prove would show here).
#[test]
fn hostile_int8_blobs_never_panic() {
    let blob = every_int8_op_blob();
    let mut rng = Rng(42);
    let (mut loaded, mut refused) = (0, 0);
    let data_off = u32::from_le_bytes(blob[64..68].try_into().unwrap()) as usize;
    for round in 0..6_000 {
        let mut bad = blob.clone();
        for _ in 0..1 + rng.below(3) {
            // Half the mutations in the tables and word pool, where they change
            // structure; the rest anywhere (weights, LUTs, scales).
            let at = if round % 2 == 0 {
                16 + rng.below(data_off - 16)
            } else {
                16 + rng.below(bad.len() - 16)
            };
            bad[at] = match rng.below(4) {
                0 => rng.next() as u8,
                1 => 0xFF,
                2 => 0,
                _ => bad[at].wrapping_add(1),
            };
        }
        fix_crc(&mut bad);
        let buf = AlignedBuf::from_bytes(&bad);
        match Model::load(buf.as_slice()) {
            Ok(model) => {
                loaded += 1;
                let mut plan = PlanBuf::for_model(&model);
                if model.arena_bytes() > 1 << 24 {
                    continue;
                }
                let mut arena = AlignedBuf::zeroed(model.arena_bytes());
                let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage())
                    .unwrap_or_else(|e| panic!("a loaded model did not prepare: {e}"));
                for i in 0..model.input_count() {
                    match rt.input_view_mut(i) {
                        Ok(medwasm::ViewMut::F32(x)) => x
                            .iter_mut()
                            .enumerate()
                            .for_each(|(k, v)| *v = (k as f32 * 0.37).sin() * 3.0),
                        Ok(medwasm::ViewMut::I8(x)) => x
                            .iter_mut()
                            .enumerate()
                            .for_each(|(k, v)| *v = (k * 37) as i8),
                        _ => {}
                    }
                }
                let _ = rt.run();
            }
            Err(_) => refused += 1,
        }
    }
    assert!(
        loaded > 100 && refused > 100,
        "{loaded} loaded, {refused} refused"
    );
}

#[test]
fn per_channel_hybrid_refusals() {
    // Conv (or depthwise) over a [1, 3, 3, 2] input, 2x2 kernel, 4 output channels.
    let conv = |op: OpCode, quantized: bool, scales: Option<Vec<f32>>| {
        let mut g = Graph::default();
        let x = g.arena("x", &[1, 3, 3, 2]);
        let wdims: &[u32] = if op == OpCode::HybridDepthwiseConv {
            &[1, 2, 2, 4]
        } else {
            &[4, 2, 2, 2]
        };
        let n = wdims.iter().product::<u32>() as usize;
        let spec = TensorSpec::constant("", wdims, &vec![1i8; n]);
        let w = g.push(if quantized {
            spec.quantized(0.01, 0)
        } else {
            spec
        });
        let mut ins = vec![x, w, NO_TENSOR];
        if let Some(s) = scales {
            ins.push(g.constant(&[s.len() as u32], &s));
        }
        let y = g.arena("y", &[1, 2, 2, 4]);
        let s = g.arena_of("", DType::I8, &[18], None);
        let mut p = words(&[2, 2, 1, 1, 1, 1, 0, 0, 0, 0]);
        p.extend(Act::None.encode());
        g.node(op, &ins, y, s, &p);
        g.finish(&[x], &[y])
    };
    let distinct = Some(vec![0.01, 0.02, 0.03, 0.04]);
    for b in [
        conv(OpCode::HybridConv, false, distinct.clone()),
        conv(OpCode::HybridDepthwiseConv, false, distinct.clone()),
        conv(OpCode::HybridDepthwiseConv, false, Some(vec![0.01; 4])),
    ] {
        assert!(Model::load(AlignedBuf::from_bytes(&b).as_slice()).is_ok());
    }
    for (b, what) in [
        (
            conv(OpCode::HybridConv, false, Some(vec![0.01; 4])),
            "per-channel HybridConv scales are all equal: LiteRT runs the per-tensor form",
        ),
        (
            conv(OpCode::HybridConv, true, distinct.clone()),
            "per-channel hybrid weights take their scales from the scales operand, not their record",
        ),
        (
            conv(OpCode::HybridConv, false, Some(vec![0.01, 0.02, 0.03])),
            "hybrid weight scales must be an f32 constant of one value per channel",
        ),
        (
            conv(
                OpCode::HybridDepthwiseConv,
                false,
                Some(vec![0.01, -0.02, 0.03, 0.04]),
            ),
            "hybrid weight scale not finite and positive",
        ),
        (
            conv(
                OpCode::HybridDepthwiseConv,
                false,
                Some(vec![0.01, f32::INFINITY, 0.03, 0.04]),
            ),
            "hybrid weight scale not finite and positive",
        ),
        (
            conv(OpCode::HybridDepthwiseConv, false, None),
            "wrong number of inputs",
        ),
    ] {
        assert_eq!(load_err(&b), malformed(what, 0), "{what}");
    }

    // Fully connected: flags, per-unit scales only with asymmetric inputs.
    let fc = |params: &[u32], scales: Option<Vec<f32>>| {
        let mut g = Graph::default();
        let x = g.arena("x", &[2, 4]);
        let spec = TensorSpec::constant("", &[3, 4], &[1i8; 12]);
        let w = g.push(if scales.is_some() {
            spec
        } else {
            spec.quantized(0.01, 0)
        });
        let mut ins = vec![x, w, NO_TENSOR];
        if let Some(s) = scales {
            ins.push(g.constant(&[s.len() as u32], &s));
        }
        let y = g.arena("y", &[2, 3]);
        let s = g.arena_of("", DType::I8, &[4], None);
        g.node(OpCode::HybridFullyConnected, &ins, y, s, params);
        g.finish(&[x], &[y])
    };
    let act = Act::None.encode();
    let with = |flags: u32| {
        let mut p = act.to_vec();
        p.push(flags);
        p
    };
    let per_unit = Some(vec![0.01, 0.02, 0.03]);
    for b in [
        fc(&act, None),
        fc(&with(0), None),
        fc(&with(1), None),
        fc(&with(1), per_unit.clone()),
    ] {
        assert!(Model::load(AlignedBuf::from_bytes(&b).as_slice()).is_ok());
    }
    for (b, what) in [
        (fc(&with(2), None), "unknown hybrid fully connected flags"),
        (
            fc(&with(0), per_unit.clone()),
            "per-unit hybrid fully connected scales need asymmetric input quantization",
        ),
        (
            fc(&act, per_unit.clone()),
            "per-unit hybrid fully connected scales need asymmetric input quantization",
        ),
        (
            fc(&with(1), Some(vec![0.01, 0.02])),
            "hybrid weight scales must be an f32 constant of one value per channel",
        ),
        (fc(&[0, 0], None), "wrong parameter count"),
    ] {
        assert_eq!(load_err(&b), malformed(what, 0), "{what}");
    }
}
