//! Known answers from LiteRT itself: the single-operator TFLite fixtures of
//! `conformance/tflite/` (inputs and `expected_ref.npy`, LiteRT's BUILTIN_REF
//! outputs). Each blob is built from the quantization in `index.json` and, for
//! weighted operators, the weights a small flatbuffer reader takes from the
//! `.tflite`, computing every parameter as TFLite's `Prepare` does (the math the
//! converter will use). The outputs must match bit for bit. The fixtures are
//! compiled in, so the check runs under Wasmtime too. Graphs of several operators
//! are the conformance suite's, through the converter.

use super::Graph;
use super::fast::BlobCase;
use super::int8::{Data, Win, hard_swish_params, lut, run, softmax_params};
use super::refs::{act_range, quantize_multiplier};
use medwasm::format::{NO_TENSOR, OpCode};
use serde_json::Value;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                "../../../../conformance/tflite/",
                $name,
                ".inputs.npy"
            ))
            .as_slice(),
            include_bytes!(concat!(
                "../../../../conformance/tflite/",
                $name,
                ".expected_ref.npy"
            ))
            .as_slice(),
        )
    };
}

const INDEX: &str = include_str!("../../../../conformance/tflite/index.json");

/// A `.npy` array of int8 or f32, C order: its shape and elements.
fn npy(bytes: &[u8]) -> (Vec<usize>, Data) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let dims = &header[header.find("'shape': (").unwrap() + 10..];
    let shape: Vec<usize> = dims[..dims.find(')').unwrap()]
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let data = &bytes[start + len..];
    let data = if header.contains("'|i1'") {
        Data::I8(data.iter().map(|&b| b as i8).collect())
    } else {
        assert!(header.contains("'<f4'"), "{header}");
        Data::F32(
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        )
    };
    (shape, data)
}

/// The fixture's entry in `index.json`.
fn case(name: &str) -> Value {
    let index: Value = serde_json::from_str(INDEX).unwrap();
    index["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("`{name}` is not in conformance/tflite/index.json"))
        .clone()
}

/// Scale (an f32 written as its exact decimal) and zero point of a tensor entry.
fn quant(t: &Value) -> (f32, i32) {
    (
        t["scale"].as_f64().unwrap() as f32,
        t["zero_point"].as_i64().unwrap() as i32,
    )
}

fn dims(t: &Value) -> Vec<u32> {
    t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as u32)
        .collect()
}

/// Operator `k` of the case: its options, first input and output.
fn op(c: &Value, k: usize) -> (&Value, &Value, &Value) {
    let o = &c["op_details"][k];
    (&o["options"], &o["inputs"][0], &o["outputs"][0])
}

/// The int8 range of a fused activation option.
fn fused(options: &Value, (scale, zp): (f32, i32)) -> (i32, i32) {
    let kind = match options["fused_activation_function"].as_str().unwrap() {
        "NONE" => "none",
        "RELU" => "relu",
        "RELU6" => "relu6",
        "RELU_N1_TO_1" => "relu_n1_to_1",
        other => panic!("fused activation {other}"),
    };
    act_range(kind, scale, zp)
}

fn words(v: &[i32]) -> Vec<u32> {
    v.iter().map(|&x| x as u32).collect()
}

/// Runs `blob` on each of the fixture's samples and compares with LiteRT's output.
fn check(name: &str, inputs: &[u8], expected: &[u8], blob: &[u8]) {
    let (shape, x) = npy(inputs);
    let (_, want) = npy(expected);
    let samples = shape[0];
    let split = |d: Data| -> Vec<Data> {
        match d {
            Data::I8(v) => v
                .chunks(v.len() / samples)
                .map(|c| Data::I8(c.to_vec()))
                .collect(),
            Data::F32(v) => v
                .chunks(v.len() / samples)
                .map(|c| Data::F32(c.to_vec()))
                .collect(),
        }
    };
    for (k, (x, want)) in split(x).into_iter().zip(split(want)).enumerate() {
        let got = run(blob, &[x]).unwrap().remove(0);
        // f32 outputs compared by bits (they are dequantized int8 values).
        let same = match (&got, &want) {
            (Data::F32(a), Data::F32(b)) => {
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            _ => got == want,
        };
        assert!(same, "{name}, sample {k}: LiteRT {want:?}, medwasm {got:?}");
    }
}

/// A one-node blob `op` from the case's first operator's input to its output.
fn unary(c: &Value, op_code: OpCode, params: &[i32], table: Option<&[i8]>) -> Vec<u8> {
    let (_, input, output) = op(c, 0);
    let ((si, zi), (so, zo)) = (quant(input), quant(output));
    let mut g = Graph::default();
    let x = g.arena_q("x", &dims(input), si, zi);
    let mut inputs = vec![x];
    if let Some(t) = table {
        inputs.push(g.constant_of(&[256], t));
    }
    let y = g.arena_q("y", &dims(output), so, zo);
    g.node(op_code, &inputs, y, NO_TENSOR, &words(params));
    g.finish(&[x], &[y])
}

#[test]
fn softmax_matches_litert() {
    for (name, inputs, expected) in [
        fixture!("softmax_int8"),
        fixture!("softmax_3d_int8"),
        fixture!("softmax_beta_int8"),
    ] {
        let c = case(name);
        let (options, input, _) = op(&c, 0);
        let beta = options["beta"].as_f64().unwrap() as f32;
        let (m, ls, diff_min) = softmax_params(beta, quant(input).0);
        check(
            name,
            inputs,
            expected,
            &unary(&c, OpCode::QSoftmax, &[m, ls, diff_min], None),
        );
    }
}

#[test]
fn logistic_and_tanh_tables_match_litert() {
    for (name, inputs, expected) in [fixture!("logistic_int8"), fixture!("tanh_int8")] {
        let c = case(name);
        let (_, input, output) = op(&c, 0);
        let ((si, zi), (so, zo)) = (quant(input), quant(output));
        let table = lut(name.starts_with("tanh"), si, zi, so, zo);
        check(
            name,
            inputs,
            expected,
            &unary(&c, OpCode::QLut, &[], Some(&table)),
        );
    }
}

#[test]
fn relu_family_matches_litert() {
    for (name, inputs, expected) in [
        fixture!("relu_int8"),
        fixture!("relu6_int8"),
        fixture!("relu_n1_to_1_int8"),
    ] {
        let c = case(name);
        let (_, input, output) = op(&c, 0);
        let ((si, _), (so, zo)) = (quant(input), quant(output));
        // `ReluPrepare`: the ratio in f32; `QuantizedReluX`: the range with roundf.
        let (m, s) = quantize_multiplier((si / so) as f64);
        let q = |f: f32| zo + (f / so).round() as i32;
        let (lo, hi) = match name {
            "relu_int8" => ((-128).max(q(0.0)), 127),
            "relu6_int8" => ((-128).max(q(0.0)), 127.min(q(6.0))),
            _ => ((-128).max(q(-1.0)), 127.min(q(1.0))),
        };
        check(
            name,
            inputs,
            expected,
            &unary(&c, OpCode::QRequantize, &[m, s, lo, hi], None),
        );
    }
}

#[test]
fn leaky_relu_and_hard_swish_match_litert() {
    for (name, inputs, expected) in [
        fixture!("leaky_relu_int8"),
        fixture!("leaky_relu_negative_alpha_int8"),
    ] {
        let c = case(name);
        let (options, input, output) = op(&c, 0);
        let ((si, _), (so, _)) = (quant(input), quant(output));
        let alpha = options["alpha"].as_f64().unwrap() as f32;
        let (ma, sa) = quantize_multiplier((si * alpha / so) as f64);
        let (mi, si_) = quantize_multiplier((si / so) as f64);
        check(
            name,
            inputs,
            expected,
            &unary(&c, OpCode::QLeakyRelu, &[mi, si_, ma, sa], None),
        );
    }
    let (name, inputs, expected) = fixture!("hard_swish_int8");
    let c = case(name);
    let (_, input, output) = op(&c, 0);
    let params = hard_swish_params(quant(input).0, quant(output).0);
    check(
        name,
        inputs,
        expected,
        &unary(&c, OpCode::QHardSwish, &params, None),
    );
}

#[test]
fn pooling_matches_litert() {
    for (name, inputs, expected) in [
        fixture!("avgpool_same_s2_int8"),
        fixture!("avgpool_valid_k2x3_relu6_int8"),
        fixture!("maxpool_same_s2_relu_int8"),
        fixture!("maxpool_valid_k2_int8"),
    ] {
        let c = case(name);
        let (options, input, output) = op(&c, 0);
        let (xd, yd) = (dims(input), dims(output));
        let get = |k: &str| options[k].as_u64().unwrap() as usize;
        let win = Win::new(
            xd[1] as usize,
            xd[2] as usize,
            [get("filter_height"), get("filter_width")],
            [get("stride_h"), get("stride_w")],
            [1, 1],
            options["padding"] == "SAME",
        )
        .unwrap();
        assert_eq!([win.oh as u32, win.ow as u32], [yd[1], yd[2]]);
        let (lo, hi) = fused(options, quant(output));
        let mut params: Vec<i32> = win.words().iter().map(|&w| w as i32).collect();
        params.extend([lo, hi]);
        let code = if name.starts_with("max") {
            OpCode::QMaxPool
        } else {
            OpCode::QAveragePool
        };
        check(name, inputs, expected, &unary(&c, code, &params, None));
    }
}

#[test]
fn mean_matches_litert() {
    for ((name, inputs, expected), mask) in [
        (fixture!("mean_hw_keep_int8"), 0b0110),
        (fixture!("mean_last_int8"), 0b100),
        (fixture!("mean_axes_1_3_int8"), 0b1010),
    ] {
        let c = case(name);
        let (_, input, output) = op(&c, 0);
        // `PrepareMeanOrSum`: the ratio of the scales in f64.
        let (m, s) = quantize_multiplier(quant(input).0 as f64 / quant(output).0 as f64);
        check(
            name,
            inputs,
            expected,
            &unary(&c, OpCode::QMean, &[mask, m, s], None),
        );
    }
}

#[test]
fn mul_add_and_concat_of_activations_match_litert() {
    // x * x: the same tensor as both operands; the multiplier's ratio in f32.
    let (name, inputs, expected) = fixture!("mul_square_int8");
    let c = case(name);
    let (options, input, output) = op(&c, 0);
    let ((s1, z1), (so, zo)) = (quant(input), quant(output));
    let (m, s) = quantize_multiplier((s1 * s1 / so) as f64);
    let (lo, hi) = fused(options, (so, zo));
    let mut g = Graph::default();
    let x = g.arena_q("x", &dims(input), s1, z1);
    let y = g.arena_q("y", &dims(output), so, zo);
    g.node(OpCode::QMul, &[x, x], y, NO_TENSOR, &words(&[m, s, lo, hi]));
    check(name, inputs, expected, &g.finish(&[x], &[y]));

    // x + relu(x): RELU (a requantization with a clamp), then ADD of two operands
    // with different scales, LiteRT's Prepare for both.
    let (name, inputs, expected) = fixture!("add_two_activations_int8");
    let c = case(name);
    let (_, rin, rout) = op(&c, 0);
    let (add_options, _, aout) = op(&c, 1);
    let ((sx, zx), (sr, zr), (sa, za)) = (quant(rin), quant(rout), quant(aout));
    let (mr, shr) = quantize_multiplier((sx / sr) as f64);
    let relu_lo = (-128).max(zr + (0.0f32 / sr).round() as i32);
    let twice = 2.0 * sx.max(sr) as f64;
    let (m1, s1) = quantize_multiplier(sx as f64 / twice);
    let (m2, s2) = quantize_multiplier(sr as f64 / twice);
    let (mo, so) = quantize_multiplier(twice / ((1 << 20) as f64 * sa as f64));
    let (lo, hi) = fused(add_options, (sa, za));
    let mut g = Graph::default();
    let x = g.arena_q("x", &dims(rin), sx, zx);
    let r = g.arena_q("", &dims(rout), sr, zr);
    g.node(
        OpCode::QRequantize,
        &[x],
        r,
        NO_TENSOR,
        &words(&[mr, shr, relu_lo, 127]),
    );
    let y = g.arena_q("y", &dims(aout), sa, za);
    g.node(
        OpCode::QAdd,
        &[x, r],
        y,
        NO_TENSOR,
        &words(&[0, 20, m1, s1, m2, s2, mo, so, lo, hi]),
    );
    check(name, inputs, expected, &g.finish(&[x], &[y]));

    // concat([sigmoid(x), tanh(x)], -1): two tables, each output requantized
    // (QUANTIZE int8 → int8, the ratio in f64) to the concatenation's scale.
    let (name, inputs, expected) = fixture!("concat_requantize_int8");
    let c = case(name);
    let mut g = Graph::default();
    let (_, lin, _) = op(&c, 0);
    let (si, zi) = quant(lin);
    let x = g.arena_q("x", &dims(lin), si, zi);
    let mut parts = Vec::new();
    for (table_op, requant_op) in [(0, 1), (2, 3)] {
        let (_, _, tout) = op(&c, table_op);
        let (_, _, qout) = op(&c, requant_op);
        let ((st, zt), (sq, zq)) = (quant(tout), quant(qout));
        let table = g.constant_of(&[256], &lut(table_op == 2, si, zi, st, zt));
        let t = g.arena_q("", &dims(tout), st, zt);
        g.node(OpCode::QLut, &[x, table], t, NO_TENSOR, &[]);
        let (m, s) = quantize_multiplier(st as f64 / sq as f64);
        let q = g.arena_q("", &dims(qout), sq, zq);
        g.node(
            OpCode::QRequantize,
            &[t],
            q,
            NO_TENSOR,
            &words(&[m, s, -128, 127]),
        );
        parts.push(q);
    }
    let (_, _, cout) = op(&c, 4);
    let (sc, zc) = quant(cout);
    let y = g.arena_q("y", &dims(cout), sc, zc);
    g.node(OpCode::Concat, &parts, y, NO_TENSOR, &[2]);
    check(name, inputs, expected, &g.finish(&[x], &[y]));
}

#[test]
fn quantize_and_dequantize_around_a_pool_match_litert() {
    // f32 in and out: QUANTIZE, AVERAGE_POOL_2D, DEQUANTIZE.
    let (name, inputs, expected) = fixture!("avgpool_same_s2_int8fio");
    let c = case(name);
    let (_, fin, qout) = op(&c, 0);
    let (options, _, pout) = op(&c, 1);
    let (s, z) = quant(qout);
    let xd = dims(fin);
    let get = |k: &str| options[k].as_u64().unwrap() as usize;
    let win = Win::new(
        xd[1] as usize,
        xd[2] as usize,
        [get("filter_height"), get("filter_width")],
        [get("stride_h"), get("stride_w")],
        [1, 1],
        options["padding"] == "SAME",
    )
    .unwrap();
    let (lo, hi) = fused(options, quant(pout));
    let mut g = Graph::default();
    let x = g.arena("x", &xd);
    let q = g.arena_q("", &xd, s, z);
    g.node(OpCode::Quantize, &[x], q, NO_TENSOR, &[]);
    let p = g.arena_q("", &dims(pout), s, z);
    let mut params = win.words();
    params.extend(words(&[lo, hi]));
    g.node(OpCode::QAveragePool, &[q], p, NO_TENSOR, &params);
    let y = g.arena("y", &dims(pout));
    g.node(OpCode::Dequantize, &[p], y, NO_TENSOR, &[]);
    check(name, inputs, expected, &g.finish(&[x], &[y]));
}

/// A minimal reader of the TFLite flatbuffer (spec §8): enough of `schema.fbs` to
/// take a single-operator model's weight and bias tensors with their quantization.
mod flat {
    /// A table: the buffer and the table's position.
    #[derive(Clone, Copy)]
    pub struct Table<'b> {
        buf: &'b [u8],
        pos: usize,
    }

    fn u32_at(buf: &[u8], at: usize) -> usize {
        u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize
    }

    impl<'b> Table<'b> {
        /// The root table.
        pub fn root(buf: &'b [u8]) -> Table<'b> {
            assert_eq!(&buf[4..8], b"TFL3");
            Table {
                buf,
                pos: u32_at(buf, 0),
            }
        }

        /// Where field `i` lies, if present: through the table's vtable.
        fn field(&self, i: usize) -> Option<usize> {
            let soffset = i32::from_le_bytes(self.buf[self.pos..self.pos + 4].try_into().unwrap());
            let vtable = (self.pos as i64 - soffset as i64) as usize;
            let vlen = u16::from_le_bytes([self.buf[vtable], self.buf[vtable + 1]]) as usize;
            let vo = 4 + 2 * i;
            if vo >= vlen {
                return None;
            }
            let off =
                u16::from_le_bytes([self.buf[vtable + vo], self.buf[vtable + vo + 1]]) as usize;
            (off != 0).then_some(self.pos + off)
        }

        fn indirect(&self, at: usize) -> usize {
            at + u32_at(self.buf, at)
        }

        /// Field `i` as a table.
        pub fn table(&self, i: usize) -> Option<Table<'b>> {
            self.field(i).map(|at| Table {
                buf: self.buf,
                pos: self.indirect(at),
            })
        }

        /// Field `i` as a vector: element count and where the elements start.
        fn vector(&self, i: usize) -> (usize, usize) {
            match self.field(i) {
                Some(at) => {
                    let v = self.indirect(at);
                    (u32_at(self.buf, v), v + 4)
                }
                None => (0, 0),
            }
        }

        /// Field `i` as a vector of tables.
        pub fn tables(&self, i: usize) -> Vec<Table<'b>> {
            let (n, start) = self.vector(i);
            (0..n)
                .map(|k| Table {
                    buf: self.buf,
                    pos: self.indirect(start + 4 * k),
                })
                .collect()
        }

        /// Field `i` as a vector of `size`-byte little-endian elements.
        pub fn bytes(&self, i: usize, size: usize) -> &'b [u8] {
            let (n, start) = self.vector(i);
            &self.buf[start..start + n * size]
        }

        /// Field `i` as an unsigned scalar of `size` bytes (0 when absent).
        pub fn scalar(&self, i: usize, size: usize) -> u64 {
            self.field(i).map_or(0, |at| {
                let mut b = [0u8; 8];
                b[..size].copy_from_slice(&self.buf[at..at + size]);
                u64::from_le_bytes(b)
            })
        }
    }
}

/// A constant tensor of a single-operator TFLite model: its raw little-endian
/// data and per-channel (or per-tensor) scales.
struct Weights {
    data: Vec<u8>,
    scales: Vec<f32>,
    zero_points: Vec<i64>,
}

/// Input `k` of the only operator of a `.tflite` file.
fn tflite_input(model: &[u8], k: usize) -> Option<Weights> {
    let root = flat::Table::root(model);
    let sg = root.tables(2)[0];
    let tensors = sg.tables(0);
    let buffers = root.tables(4);
    let ops = sg.tables(3);
    let inputs = ops.last().unwrap().bytes(1, 4);
    let t = i32::from_le_bytes(inputs[4 * k..4 * k + 4].try_into().unwrap());
    let tensor = tensors[usize::try_from(t).ok()?];
    let buffer = buffers[tensor.scalar(2, 4) as usize];
    let q = tensor.table(4);
    let f32s = |b: &[u8]| {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let i64s = |b: &[u8]| {
        b.chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    Some(Weights {
        data: buffer.bytes(0, 1).to_vec(),
        scales: q.map_or(Vec::new(), |q| f32s(q.bytes(2, 4))),
        zero_points: q.map_or(Vec::new(), |q| i64s(q.bytes(3, 8))),
    })
}

macro_rules! model {
    ($name:literal) => {
        (
            fixture!($name),
            include_bytes!(concat!("../../../../conformance/tflite/", $name, ".tflite")).as_slice(),
        )
    };
}

fn i8s(b: &[u8]) -> Vec<i8> {
    b.iter().map(|&v| v as i8).collect()
}

fn i32s(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The window of a conv-like operator from its options and shapes.
fn conv_window(options: &Value, xd: &[u32], w: (usize, usize)) -> Win {
    let get = |k: &str| options[k].as_u64().unwrap() as usize;
    Win::new(
        xd[1] as usize,
        xd[2] as usize,
        [w.0, w.1],
        [get("stride_h"), get("stride_w")],
        [get("dilation_h_factor"), get("dilation_w_factor")],
        options["padding"] == "SAME",
    )
    .unwrap()
}

/// A fixture as a blob: `(name, inputs, expected, blob)`.
type Fixture = (&'static str, &'static [u8], &'static [u8], Vec<u8>);

/// LiteRT's int8 conv and depthwise fixtures as blobs.
fn conv_blobs() -> Vec<Fixture> {
    let mut out = Vec::new();
    for ((name, inputs, expected), tfl) in [
        model!("conv2d_same_relu_int8"),
        model!("conv2d_same_s2_relu6_int8"),
        model!("conv2d_valid_s2_int8"),
        model!("conv2d_k4x3_s1x2_n1_to_1_int8"),
        model!("conv2d_dilation2_int8"),
        model!("dw_m1_same_relu_int8"),
        model!("dw_m2_valid_s2_relu6_int8"),
        model!("dw_m2_dilation2_int8"),
        model!("dw_k3_s2_same_n1_to_1_int8"),
    ] {
        let c = case(name);
        let depthwise = name.starts_with("dw");
        let (options, input, output) = op(&c, 0);
        let wdims: Vec<u32> = dims(&c["op_details"][0]["inputs"][1]);
        let (w, b) = (tflite_input(tfl, 1).unwrap(), tflite_input(tfl, 2).unwrap());
        let ((si, zi), (so, zo)) = (quant(input), quant(output));
        let channels = if depthwise { wdims[3] } else { wdims[0] } as usize;
        assert_eq!(w.scales.len(), channels, "{name}: per-channel weights");
        assert!(w.zero_points.iter().all(|&z| z == 0));
        // `PopulateConvolutionQuantizationParams`: f64 product per channel.
        let ms: Vec<(i32, i32)> = w
            .scales
            .iter()
            .map(|&sw| quantize_multiplier(si as f64 * sw as f64 / so as f64))
            .collect();
        let win = conv_window(
            options,
            &dims(input),
            (wdims[1] as usize, wdims[2] as usize),
        );
        let (lo, hi) = fused(options, (so, zo));
        let mut g = Graph::default();
        let x = g.arena_q("x", &dims(input), si, zi);
        let wt = g.constant_of(&wdims, &i8s(&w.data));
        let bt = g.constant_of(&[channels as u32], &i32s(&b.data));
        let mt = g.constant_of(
            &[channels as u32],
            &ms.iter().map(|p| p.0).collect::<Vec<_>>(),
        );
        let st = g.constant_of(
            &[channels as u32],
            &ms.iter().map(|p| p.1).collect::<Vec<_>>(),
        );
        let y = g.arena_q("y", &dims(output), so, zo);
        let mut params = win.words();
        params.extend(words(&[lo, hi]));
        let code = if depthwise {
            OpCode::QDepthwiseConv
        } else {
            OpCode::QConv
        };
        g.node(code, &[x, wt, bt, mt, st], y, NO_TENSOR, &params);
        out.push((name, inputs, expected, g.finish(&[x], &[y])));
    }
    out
}

#[test]
fn conv_and_depthwise_match_litert() {
    for (name, inputs, expected, blob) in conv_blobs() {
        check(name, inputs, expected, &blob);
    }
}

/// LiteRT's int8 fully connected fixtures in its f64 mode, as blobs.
fn fc_blobs() -> Vec<Fixture> {
    let mut out = Vec::new();
    for ((name, inputs, expected), tfl) in [
        model!("fc_relu_int8"),
        model!("fc_per_tensor_int8pt"),
        model!("fc_keep_dims_relu6_int8"),
        model!("fc_nobias_n1_to_1_int8"),
    ] {
        let c = case(name);
        let (options, input, output) = op(&c, 0);
        let wdims = dims(&c["op_details"][0]["inputs"][1]);
        let w = tflite_input(tfl, 1).unwrap();
        let bias = tflite_input(tfl, 2);
        let ((si, zi), (so, zo)) = (quant(input), quant(output));
        let units = wdims[0] as usize;
        // LiteRT's reference FC today: `round(acc · s_in · s_w / s_out)` in f64.
        let eff: Vec<f64> = w
            .scales
            .iter()
            .map(|&sw| si as f64 * sw as f64 / so as f64)
            .collect();
        let (lo, hi) = fused(options, (so, zo));
        let mut g = Graph::default();
        let x = g.arena_q("x", &dims(input), si, zi);
        let spec = medwasm::format::TensorSpec::constant("", &wdims, &i8s(&w.data));
        let wt = g.push(if w.scales.len() == 1 {
            spec.quantized(w.scales[0], w.zero_points[0] as i32)
        } else {
            spec
        });
        let bt = match bias {
            Some(b) => g.constant_of(&[units as u32], &i32s(&b.data)),
            None => NO_TENSOR,
        };
        let sc = g.constant_of(&[eff.len() as u32], &eff);
        let y = g.arena_q("y", &dims(output), so, zo);
        g.node(
            OpCode::QFullyConnected,
            &[x, wt, bt, sc],
            y,
            NO_TENSOR,
            &words(&[1, lo, hi]),
        );
        out.push((name, inputs, expected, g.finish(&[x], &[y])));
    }
    out
}

#[test]
fn fully_connected_matches_litert_in_its_f64_mode() {
    for (name, inputs, expected, blob) in fc_blobs() {
        check(name, inputs, expected, &blob);
    }
}

/// The float activation range of a hybrid op's fused activation
/// (`CalculateActivationRange`); NONE is the identity on finite values.
fn float_act(options: &Value) -> medwasm::kernels::act::Act {
    use medwasm::kernels::act::Act;
    match options["fused_activation_function"].as_str().unwrap() {
        "NONE" => Act::None,
        "RELU" => Act::Clip(0.0, f32::MAX),
        "RELU6" => Act::Clip(0.0, 6.0),
        "RELU_N1_TO_1" => Act::Clip(-1.0, 1.0),
        other => panic!("{other}"),
    }
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// LiteRT's dynamic-range conv, depthwise and fully connected fixtures as hybrid
/// blobs: per-tensor conv (symmetric), per-channel conv and depthwise
/// (asymmetric), fully connected with `asymmetric_quantize_inputs`, per-channel and
/// per-tensor.
fn hybrid_blobs() -> Vec<Fixture> {
    let mut out = Vec::new();
    for ((name, inputs, expected), tfl) in [
        model!("conv2d_same_relu_dynpt"),
        model!("conv2d_same_relu_dyn"),
        model!("conv2d_same_s2_relu6_dyn"),
        model!("conv2d_valid_s2_dyn"),
        model!("conv2d_k4x3_s1x2_n1_to_1_dyn"),
        model!("conv2d_dilation2_dyn"),
        model!("dw_hybrid_m2_s2_dyn"),
    ] {
        let c = case(name);
        let depthwise = name.starts_with("dw");
        let (options, input, output) = op(&c, 0);
        let wdims = dims(&c["op_details"][0]["inputs"][1]);
        let (w, b) = (tflite_input(tfl, 1).unwrap(), tflite_input(tfl, 2).unwrap());
        assert!(w.zero_points.iter().all(|&z| z == 0), "{name}");
        if depthwise {
            // The hybrid kernel takes the multiplier from the options: the converter
            // must check it is the one the shapes give.
            let xd = dims(input);
            assert_eq!(
                options["depth_multiplier"].as_u64().unwrap() as u32,
                wdims[3] / xd[3]
            );
        }
        let win = conv_window(
            options,
            &dims(input),
            (wdims[1] as usize, wdims[2] as usize),
        );
        let xd = dims(input);
        let mut g = Graph::default();
        let x = g.arena("x", &xd);
        let spec = medwasm::format::TensorSpec::constant("", &wdims, &i8s(&w.data));
        let per_tensor = w.scales.len() == 1;
        let wt = g.push(if per_tensor {
            spec.quantized(w.scales[0], 0)
        } else {
            spec
        });
        let bias = f32s(&b.data);
        let bt = g.constant(&[bias.len() as u32], &bias);
        let mut ins = vec![x, wt, bt];
        if !per_tensor {
            ins.push(g.constant(&[w.scales.len() as u32], &w.scales));
        }
        let y = g.arena("y", &dims(output));
        let scratch = g.arena_of(
            "",
            medwasm::format::DType::I8,
            &[xd[1] * xd[2] * xd[3]],
            None,
        );
        let mut params = win.words();
        params.extend(float_act(options).encode());
        let code = if depthwise {
            OpCode::HybridDepthwiseConv
        } else {
            OpCode::HybridConv
        };
        g.node(code, &ins, y, scratch, &params);
        out.push((name, inputs, expected, g.finish(&[x], &[y])));
    }
    for ((name, inputs, expected), tfl) in [
        model!("fc_relu_dyn"),
        model!("fc_per_tensor_dynpt"),
        model!("fc_keep_dims_relu6_dyn"),
        model!("fc_nobias_n1_to_1_dyn"),
    ] {
        let c = case(name);
        let (options, input, output) = op(&c, 0);
        assert_eq!(options["asymmetric_quantize_inputs"], true, "{name}");
        let wdims = dims(&c["op_details"][0]["inputs"][1]);
        let w = tflite_input(tfl, 1).unwrap();
        let bias = tflite_input(tfl, 2);
        let (units, depth) = (wdims[0], wdims[1]);
        let mut g = Graph::default();
        let x = g.arena("x", &dims(input));
        let spec = medwasm::format::TensorSpec::constant("", &wdims, &i8s(&w.data));
        let per_tensor = w.scales.len() == 1;
        let wt = g.push(if per_tensor {
            spec.quantized(w.scales[0], 0)
        } else {
            spec
        });
        let bt = match bias {
            Some(b) => g.constant(&[units], &f32s(&b.data)),
            None => NO_TENSOR,
        };
        let mut ins = vec![x, wt, bt];
        if !per_tensor {
            ins.push(g.constant(&[units], &w.scales));
        }
        let y = g.arena("y", &dims(output));
        let scratch = g.arena_of("", medwasm::format::DType::I8, &[depth], None);
        let mut params = float_act(options).encode().to_vec();
        params.push(1); // asymmetric input quantization
        g.node(OpCode::HybridFullyConnected, &ins, y, scratch, &params);
        out.push((name, inputs, expected, g.finish(&[x], &[y])));
    }
    out
}

#[test]
fn hybrid_conv_depthwise_and_fully_connected_match_litert() {
    for (name, inputs, expected, blob) in hybrid_blobs() {
        check(name, inputs, expected, &blob);
    }
}

/// Every fixture of an operator with fast kernels, one case per sample, with
/// LiteRT's outputs: for the Cortex-M firmware.
pub fn cases() -> Vec<BlobCase> {
    let mut out = Vec::new();
    for (name, inputs, expected, blob) in conv_blobs()
        .into_iter()
        .chain(fc_blobs())
        .chain(hybrid_blobs())
    {
        let (shape, x) = npy(inputs);
        let (_, want) = npy(expected);
        let bytes = |d: Data| -> Vec<u8> {
            match d {
                Data::I8(v) => v.iter().map(|&b| b as u8).collect(),
                Data::F32(v) => v.iter().flat_map(|f| f.to_le_bytes()).collect(),
            }
        };
        let (x, want) = (bytes(x), bytes(want));
        let (xn, wn) = (x.len() / shape[0], want.len() / shape[0]);
        for k in 0..shape[0] {
            out.push(BlobCase {
                name: format!("litert {name} sample {k}"),
                blob: blob.clone(),
                input: x[k * xn..][..xn].to_vec(),
                want: want[k * wn..][..wn].to_vec(),
                macs: 0,
            });
        }
    }
    out
}
