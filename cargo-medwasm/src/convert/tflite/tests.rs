//! The TFLite frontend's tests, on models built here with the generated writer:
//! float graphs run natively against references computed from TFLite's
//! definitions (NHWC, SAME padding with the odd row at the end), the IR of int8 and
//! dynamic-range graphs (dtypes, quantization, layouts, weight layouts and axes),
//! and malformed files.

use std::collections::HashMap;
use std::path::Path;

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;

use super::schema_generated::tflite as fb;
use crate::convert::ir::{DType, Data, Layout, Op, Quant, Window};
use crate::convert::testing::{assert_close, run_blob};
use crate::convert::{ConvertError, ConvertOptions, ProblemKind, convert_tflite_bytes};

/// Builds a model with one subgraph.
#[derive(Default)]
struct Builder {
    tensors: Vec<fb::Tensor>,
    buffers: Vec<fb::Buffer>,
    codes: Vec<fb::OperatorCode>,
    ops: Vec<fb::Operator>,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    metadata: Vec<fb::Metadata>,
    signatures: Vec<fb::SignatureDef>,
}

/// Quantization `(scales, zero points, quantized dimension)`.
type Q = (Vec<f32>, Vec<i64>, i32);

impl Builder {
    fn new() -> Builder {
        Builder {
            // Buffer 0 is the empty sentinel.
            buffers: vec![fb::Buffer::default()],
            ..Default::default()
        }
    }

    fn buffer(&mut self, data: Vec<u8>) -> u32 {
        self.buffers.push(fb::Buffer {
            data: Some(data),
            ..Default::default()
        });
        (self.buffers.len() - 1) as u32
    }

    fn tensor(
        &mut self,
        name: &str,
        shape: &[i32],
        ty: fb::TensorType,
        data: Option<Vec<u8>>,
        q: Option<Q>,
    ) -> i32 {
        let buffer = data.map_or(0, |d| self.buffer(d));
        self.tensors.push(fb::Tensor {
            shape: Some(shape.to_vec()),
            type_: ty,
            buffer,
            name: Some(name.into()),
            quantization: q.map(|(scale, zero_point, dim)| {
                Box::new(fb::QuantizationParameters {
                    scale: Some(scale),
                    zero_point: Some(zero_point),
                    quantized_dimension: dim,
                    ..Default::default()
                })
            }),
            ..Default::default()
        });
        (self.tensors.len() - 1) as i32
    }

    fn f32_act(&mut self, name: &str, shape: &[i32]) -> i32 {
        self.tensor(name, shape, fb::TensorType::Float32, None, None)
    }

    fn f32_const(&mut self, name: &str, shape: &[i32], v: &[f32]) -> i32 {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensor(name, shape, fb::TensorType::Float32, Some(bytes), None)
    }

    fn i32_const(&mut self, name: &str, shape: &[i32], v: &[i32], q: Option<Q>) -> i32 {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensor(name, shape, fb::TensorType::Int32, Some(bytes), q)
    }

    fn i8_act(&mut self, name: &str, shape: &[i32], scale: f32, zp: i64) -> i32 {
        let q = (vec![scale], vec![zp], 0);
        self.tensor(name, shape, fb::TensorType::Int8, None, Some(q))
    }

    fn i8_const(&mut self, name: &str, shape: &[i32], v: &[i8], q: Q) -> i32 {
        let bytes = v.iter().map(|&x| x as u8).collect();
        self.tensor(name, shape, fb::TensorType::Int8, Some(bytes), Some(q))
    }

    fn op(
        &mut self,
        code: fb::BuiltinOperator,
        inputs: &[i32],
        outputs: &[i32],
        options: Option<fb::BuiltinOptions>,
    ) {
        let index = match self.codes.iter().position(|c| c.builtin_code == code) {
            Some(i) => i,
            None => {
                self.codes.push(fb::OperatorCode {
                    deprecated_builtin_code: (code as i32).min(127) as i8,
                    builtin_code: code,
                    version: 1,
                    ..Default::default()
                });
                self.codes.len() - 1
            }
        };
        self.ops.push(fb::Operator {
            opcode_index: index as u32,
            inputs: Some(inputs.to_vec()),
            outputs: Some(outputs.to_vec()),
            builtin_options: options,
            ..Default::default()
        });
    }

    fn finish(self) -> Vec<u8> {
        let model = fb::Model {
            version: 3,
            operator_codes: Some(self.codes),
            subgraphs: Some(vec![fb::SubGraph {
                tensors: Some(self.tensors),
                inputs: Some(self.inputs),
                outputs: Some(self.outputs),
                operators: Some(self.ops),
                name: Some("main".into()),
                ..Default::default()
            }]),
            description: Some("built by a test".into()),
            buffers: Some(self.buffers),
            metadata: Some(self.metadata),
            signature_defs: Some(self.signatures),
            ..Default::default()
        };
        let mut b = planus::Builder::new();
        with_identifier(b.finish(&model, None))
    }
}

/// `bytes` (a root offset, then the rest) with the `TFL3` identifier at bytes 4..8,
/// where flatbuffers puts it. planus 1.3's `finish` writes the identifier before
/// the root offset instead, so the tests add it themselves: the root offset grows
/// by 16, the identifier and 12 bytes of padding follow it, and everything after
/// moves by 16 bytes, which keeps every alignment (all other offsets are relative).
fn with_identifier(bytes: &[u8]) -> Vec<u8> {
    let root = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) + 16;
    let mut out = root.to_le_bytes().to_vec();
    out.extend_from_slice(b"TFL3");
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&bytes[4..]);
    out
}

fn conv_opts(
    padding: fb::Padding,
    stride: i32,
    act: fb::ActivationFunctionType,
) -> fb::BuiltinOptions {
    fb::BuiltinOptions::Conv2DOptions(Box::new(fb::Conv2DOptions {
        padding,
        stride_w: stride,
        stride_h: stride,
        fused_activation_function: act,
        dilation_w_factor: 1,
        dilation_h_factor: 1,
        ..Default::default()
    }))
}

fn dw_opts(stride: i32, multiplier: i32) -> fb::BuiltinOptions {
    fb::BuiltinOptions::DepthwiseConv2DOptions(Box::new(fb::DepthwiseConv2DOptions {
        padding: fb::Padding::Same,
        stride_w: stride,
        stride_h: stride,
        depth_multiplier: multiplier,
        dilation_w_factor: 1,
        dilation_h_factor: 1,
        ..Default::default()
    }))
}

fn pool_opts(padding: fb::Padding, k: i32, stride: i32) -> fb::BuiltinOptions {
    fb::BuiltinOptions::Pool2DOptions(Box::new(fb::Pool2DOptions {
        padding,
        stride_w: stride,
        stride_h: stride,
        filter_width: k,
        filter_height: k,
        fused_activation_function: fb::ActivationFunctionType::None,
    }))
}

fn softmax_opts(beta: f32) -> fb::BuiltinOptions {
    fb::BuiltinOptions::SoftmaxOptions(Box::new(fb::SoftmaxOptions { beta }))
}

fn add_opts(act: fb::ActivationFunctionType) -> fb::BuiltinOptions {
    fb::BuiltinOptions::AddOptions(Box::new(fb::AddOptions {
        fused_activation_function: act,
        pot_scale_int16: true,
    }))
}

/// Seeded values in [-1, 1) (a 64-bit LCG).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn convert(bytes: &[u8]) -> Result<crate::convert::Converted, ConvertError> {
    convert_tflite_bytes(Path::new("test.tflite"), bytes, &ConvertOptions::default())
}

fn import(bytes: &[u8]) -> super::Imported {
    super::import(bytes, &HashMap::new()).expect("reads").0
}

/// TFLite's NHWC convolution (batch 1), SAME/VALID padding per TFLite: the
/// padding before is half the total, the odd one at the end.
fn conv_ref(
    x: &[f32],
    [h, w, c]: [usize; 3],
    f: &[f32],
    [o, kh, kw]: [usize; 3],
    depthwise: bool,
    bias: &[f32],
    stride: usize,
    same: bool,
) -> (Vec<f32>, [usize; 2]) {
    let out = |n: usize, k: usize| {
        if same {
            n.div_ceil(stride)
        } else {
            (n - k) / stride + 1
        }
    };
    let (oh, ow) = (out(h, kh), out(w, kw));
    let pad = |n: usize, k: usize, o: usize| ((o - 1) * stride + k).saturating_sub(n) / 2;
    let (pt, pl) = (pad(h, kh, oh), pad(w, kw, ow));
    let mut y = vec![0.0; oh * ow * o];
    for oy in 0..oh {
        for ox in 0..ow {
            for oc in 0..o {
                let mut acc = 0.0;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let iy = (oy * stride + ky) as isize - pt as isize;
                        let ix = (ox * stride + kx) as isize - pl as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let p = (iy as usize * w + ix as usize) * c;
                        if depthwise {
                            acc += x[p + oc / (o / c)] * f[(ky * kw + kx) * o + oc];
                        } else {
                            for ic in 0..c {
                                acc += x[p + ic] * f[((oc * kh + ky) * kw + kx) * c + ic];
                            }
                        }
                    }
                }
                y[(oy * ow + ox) * o + oc] = acc + bias[oc];
            }
        }
    }
    (y, [oh, ow])
}

#[test]
fn a_float_conv_chain_runs_as_tflite_defines_it() {
    // x [1, 7, 6, 2] → CONV_2D 3×3 stride 2 SAME (+RELU): the 6 columns pad 1 on
    // the right only → DEPTHWISE 3×3 multiplier 2 SAME → AVERAGE_POOL 2×2
    // VALID → FULLY_CONNECTED (4-D input viewed as rows) → SOFTMAX beta 1.
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 7, 6, 2]);
    let w1v = values(3 * 3 * 3 * 2, 1);
    let b1v = values(3, 2);
    let w1 = b.f32_const("w1", &[3, 3, 3, 2], &w1v);
    let b1 = b.f32_const("b1", &[3], &b1v);
    let c1 = b.f32_act("c1", &[1, 4, 3, 3]);
    b.op(
        fb::BuiltinOperator::Conv2d,
        &[x, w1, b1],
        &[c1],
        Some(conv_opts(
            fb::Padding::Same,
            2,
            fb::ActivationFunctionType::Relu,
        )),
    );
    let w2v = values(3 * 3 * 6, 3);
    let b2v = values(6, 4);
    let w2 = b.f32_const("w2", &[1, 3, 3, 6], &w2v);
    let b2 = b.f32_const("b2", &[6], &b2v);
    let c2 = b.f32_act("c2", &[1, 4, 3, 6]);
    b.op(
        fb::BuiltinOperator::DepthwiseConv2d,
        &[c1, w2, b2],
        &[c2],
        Some(dw_opts(1, 2)),
    );
    let p = b.f32_act("p", &[1, 2, 1, 6]);
    b.op(
        fb::BuiltinOperator::AveragePool2d,
        &[c2],
        &[p],
        Some(pool_opts(fb::Padding::Valid, 2, 2)),
    );
    let w3v = values(4 * 12, 5);
    let w3 = b.f32_const("w3", &[4, 12], &w3v);
    let f = b.f32_act("f", &[1, 4]);
    b.op(
        fb::BuiltinOperator::FullyConnected,
        &[p, w3, -1],
        &[f],
        None,
    );
    let y = b.f32_act("y", &[1, 4]);
    b.op(
        fb::BuiltinOperator::Softmax,
        &[f],
        &[y],
        Some(softmax_opts(1.0)),
    );
    b.inputs = vec![x];
    b.outputs = vec![y];
    let bytes = b.finish();

    let converted = convert(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let m = &converted.manifest;
    assert_eq!(m.source.format, "tflite");
    assert_eq!(m.source.opset, 3);
    assert!(
        m.notes.iter().any(|n| n.contains("Transposes inserted")),
        "{:?}",
        m.notes
    );

    let xv = values(7 * 6 * 2, 6);
    let (c1v, [h1, w1d]) = conv_ref(&xv, [7, 6, 2], &w1v, [3, 3, 3], false, &b1v, 2, true);
    assert_eq!([h1, w1d], [4, 3]);
    let c1v: Vec<f32> = c1v.iter().map(|v| v.max(0.0)).collect();
    let (c2v, _) = conv_ref(&c1v, [4, 3, 3], &w2v, [6, 3, 3], true, &b2v, 1, true);
    // 2×2 VALID pooling of [4, 3, 6] → [2, 1, 6].
    let mut pv = vec![];
    for py in 0..2 {
        for ch in 0..6 {
            let at = |y: usize, x: usize| c2v[(y * 3 + x) * 6 + ch];
            pv.push((at(2 * py, 0) + at(2 * py, 1) + at(2 * py + 1, 0) + at(2 * py + 1, 1)) / 4.0);
        }
    }
    let fv: Vec<f32> = (0..4)
        .map(|u| (0..12).map(|d| pv[d] * w3v[u * 12 + d]).sum())
        .collect();
    let mx = fv.iter().cloned().fold(f32::MIN, f32::max);
    let e: Vec<f32> = fv.iter().map(|v| (v - mx).exp()).collect();
    let s: f32 = e.iter().sum();
    let want: Vec<f32> = e.iter().map(|v| v / s).collect();
    assert_close(&run_blob(&converted.blob, &[xv])[0], &want, 1e-5);
}

#[test]
fn residual_adds_between_convs_leave_no_transpose_inside() {
    // x → conv a (RELU) → conv b → ADD(b, a) RELU → conv c → y: every Transpose
    // between two NHWC nodes cancels; only the ends stay (both move C = 4, so they
    // are real transposes).
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 3, 3, 4]);
    let conv = |b: &mut Builder, name: &str, input: i32, seed: u64, act| {
        let w = b.f32_const(&format!("{name}.w"), &[4, 1, 1, 4], &values(16, seed));
        let bias = b.f32_const(&format!("{name}.b"), &[4], &values(4, seed + 1));
        let out = b.f32_act(name, &[1, 3, 3, 4]);
        b.op(
            fb::BuiltinOperator::Conv2d,
            &[input, w, bias],
            &[out],
            Some(conv_opts(fb::Padding::Valid, 1, act)),
        );
        out
    };
    let a = conv(&mut b, "a", x, 10, fb::ActivationFunctionType::Relu);
    let c = conv(&mut b, "b", a, 20, fb::ActivationFunctionType::None);
    let s = b.f32_act("s", &[1, 3, 3, 4]);
    b.op(
        fb::BuiltinOperator::Add,
        &[c, a],
        &[s],
        Some(add_opts(fb::ActivationFunctionType::Relu)),
    );
    let y = conv(&mut b, "c", s, 30, fb::ActivationFunctionType::None);
    b.inputs = vec![x];
    b.outputs = vec![y];
    let converted = convert(&b.finish()).unwrap_or_else(|e| panic!("{e}"));
    let m = &converted.manifest;
    let transposes = m
        .ops
        .iter()
        .find(|(l, _)| l == "Transpose")
        .map_or(0, |(_, n)| *n);
    assert_eq!(transposes, 2, "{:?} {:?}", m.ops, m.notes);
    assert!(
        m.notes
            .iter()
            .any(|n| n.contains("6 Transposes inserted") && n.contains("4 of the graph's 6")),
        "{:?}",
        m.notes
    );
    // The numbers are those of the plain definition.
    let xv = values(36, 40);
    let pw = |x: &[f32], seed: u64, relu: bool| -> Vec<f32> {
        let (w, bias) = (values(16, seed), values(4, seed + 1));
        (0..9)
            .flat_map(|p| {
                let (w, bias) = (&w, &bias);
                (0..4).map(move |o| {
                    let v: f32 = (0..4).map(|i| x[p * 4 + i] * w[o * 4 + i]).sum::<f32>() + bias[o];
                    if relu { v.max(0.0) } else { v }
                })
            })
            .collect()
    };
    let av = pw(&xv, 10, true);
    let bv = pw(&av, 20, false);
    let sv: Vec<f32> = bv.iter().zip(&av).map(|(p, q)| (p + q).max(0.0)).collect();
    let want = pw(&sv, 30, false);
    assert_close(&run_blob(&converted.blob, &[xv])[0], &want, 1e-5);
}

#[test]
fn shape_ops_reductions_and_activations_run_as_defined() {
    // x [1, 2, 3, 2] → PAD (1 row on top, 1 column on the right) → TRANSPOSE to
    // [1, 2, 3, 4] → MEAN over the last axis → EXPAND_DIMS -1 → CONCATENATION
    // with itself → SQUEEZE axis 0 → LEAKY_RELU → HARD_SWISH → MUL by [2, -1] →
    // SUB 0.5 → LOGISTIC → TANH → RESHAPE [-1, 4] → [3, 4].
    use fb::BuiltinOperator as B;
    use fb::BuiltinOptions as O;
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 2, 3, 2]);
    let pads = b.i32_const("pads", &[4, 2], &[0, 0, 1, 0, 0, 1, 0, 0], None);
    let p = b.f32_act("p", &[1, 3, 4, 2]);
    b.op(B::Pad, &[x, pads], &[p], None);
    let perm = b.i32_const("perm", &[4], &[0, 3, 1, 2], None);
    let t = b.f32_act("t", &[1, 2, 3, 4]);
    b.op(B::Transpose, &[p, perm], &[t], None);
    let axis = b.i32_const("axis", &[1], &[3], None);
    let m = b.f32_act("m", &[1, 2, 3]);
    let keep = O::ReducerOptions(Box::new(fb::ReducerOptions { keep_dims: false }));
    b.op(B::Mean, &[t, axis], &[m], Some(keep));
    let last = b.i32_const("last", &[], &[-1], None);
    let e = b.f32_act("e", &[1, 2, 3, 1]);
    b.op(B::ExpandDims, &[m, last], &[e], None);
    let c = b.f32_act("c", &[1, 2, 3, 2]);
    let cat = O::ConcatenationOptions(Box::new(fb::ConcatenationOptions {
        axis: 3,
        fused_activation_function: fb::ActivationFunctionType::None,
    }));
    b.op(B::Concatenation, &[e, e], &[c], Some(cat));
    let s = b.f32_act("s", &[2, 3, 2]);
    let sq = O::SqueezeOptions(Box::new(fb::SqueezeOptions {
        squeeze_dims: Some(vec![0]),
    }));
    b.op(B::Squeeze, &[c], &[s], Some(sq));
    let l = b.f32_act("l", &[2, 3, 2]);
    let leaky = O::LeakyReluOptions(Box::new(fb::LeakyReluOptions { alpha: 0.1 }));
    b.op(B::LeakyRelu, &[s], &[l], Some(leaky));
    let h = b.f32_act("h", &[2, 3, 2]);
    b.op(B::HardSwish, &[l], &[h], None);
    let k2 = b.f32_const("k2", &[2], &[2.0, -1.0]);
    let mu = b.f32_act("mu", &[2, 3, 2]);
    b.op(B::Mul, &[h, k2], &[mu], None);
    let half = b.f32_const("half", &[1], &[0.5]);
    let su = b.f32_act("su", &[2, 3, 2]);
    b.op(B::Sub, &[mu, half], &[su], None);
    let sg = b.f32_act("sg", &[2, 3, 2]);
    b.op(B::Logistic, &[su], &[sg], None);
    let th = b.f32_act("th", &[2, 3, 2]);
    b.op(B::Tanh, &[sg], &[th], None);
    let shape = b.i32_const("shape", &[2], &[-1, 4], None);
    let y = b.f32_act("y", &[3, 4]);
    b.op(B::Reshape, &[th, shape], &[y], None);
    b.inputs = vec![x];
    b.outputs = vec![y];
    let converted = convert(&b.finish()).unwrap_or_else(|e| panic!("{e}"));

    let xv = values(12, 77);
    let xa = |hh: usize, w: usize, ch: usize| xv[(hh * 3 + w) * 2 + ch];
    // PAD then TRANSPOSE: t[ch][hh][w] over a 3×4 padded plane per channel.
    let tv = |ch: usize, hh: usize, w: usize| {
        if hh >= 1 && w < 3 {
            xa(hh - 1, w, ch)
        } else {
            0.0
        }
    };
    let mut want = vec![];
    for ch in 0..2 {
        for hh in 0..3 {
            let mean = (0..4).map(|w| tv(ch, hh, w)).sum::<f32>() / 4.0;
            // Concatenated with itself: both channels of the new last axis.
            for k in 0..2 {
                let v = if mean < 0.0 { 0.1 * mean } else { mean };
                let v = v * (v + 3.0).clamp(0.0, 6.0) / 6.0;
                let v = v * [2.0, -1.0][k] - 0.5;
                let v = 1.0 / (1.0 + (-v).exp());
                want.push(v.tanh());
            }
        }
    }
    assert_close(&run_blob(&converted.blob, &[xv])[0], &want, 1e-6);
}

/// x int8 [1, 4, 4, 2] → CONV_2D (per-channel, 3 filters) → DEPTHWISE (×2) →
/// ADD with itself → FULLY_CONNECTED (per-tensor) → SOFTMAX.
fn int8_model() -> Vec<u8> {
    let mut b = Builder::new();
    let x = b.i8_act("x", &[1, 4, 4, 2], 0.5, -3);
    let wc = b.i8_const(
        "conv.w",
        &[3, 1, 1, 2],
        &[1, -2, 3, -4, 5, -6],
        (vec![0.01, 0.02, 0.03], vec![0, 0, 0], 0),
    );
    let bc = b.i32_const(
        "conv.b",
        &[3],
        &[10, -20, 30],
        Some((vec![0.005, 0.01, 0.015], vec![0, 0, 0], 0)),
    );
    let c = b.i8_act("c", &[1, 4, 4, 3], 0.1, 5);
    b.op(
        fb::BuiltinOperator::Conv2d,
        &[x, wc, bc],
        &[c],
        Some(conv_opts(
            fb::Padding::Valid,
            1,
            fb::ActivationFunctionType::Relu6,
        )),
    );
    let wd = b.i8_const(
        "dw.w",
        &[1, 3, 3, 6],
        &[1; 54],
        (vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6], vec![0; 6], 3),
    );
    let bd = b.i32_const("dw.b", &[6], &[0; 6], Some((vec![0.01; 6], vec![0; 6], 0)));
    let d = b.i8_act("d", &[1, 4, 4, 6], 0.2, 0);
    b.op(
        fb::BuiltinOperator::DepthwiseConv2d,
        &[c, wd, bd],
        &[d],
        Some(dw_opts(1, 2)),
    );
    let s = b.i8_act("s", &[1, 4, 4, 6], 0.4, -1);
    b.op(
        fb::BuiltinOperator::Add,
        &[d, d],
        &[s],
        Some(add_opts(fb::ActivationFunctionType::None)),
    );
    let wf = b.i8_const("fc.w", &[5, 96], &[2; 480], (vec![0.05], vec![0], 0));
    let bf = b.i32_const(
        "fc.b",
        &[5],
        &[1, 2, 3, 4, 5],
        Some((vec![0.02], vec![0], 0)),
    );
    let f = b.i8_act("f", &[1, 5], 0.3, 7);
    b.op(
        fb::BuiltinOperator::FullyConnected,
        &[s, wf, bf],
        &[f],
        None,
    );
    let y = b.i8_act("y", &[1, 5], 1.0 / 256.0, -128);
    b.op(
        fb::BuiltinOperator::Softmax,
        &[f],
        &[y],
        Some(softmax_opts(1.0)),
    );
    b.inputs = vec![x];
    b.outputs = vec![y];
    b.finish()
}

fn per_tensor(scale: f32, zp: i64) -> Option<Quant> {
    Some(Quant {
        scale: vec![scale],
        zero_point: vec![zp],
        axis: None,
    })
}

#[test]
fn int8_graphs_map_to_nhwc_nodes_with_their_quantization() {
    let imported = import(&int8_model());
    assert!(imported.problems.is_empty(), "{:?}", imported.problems);
    let g = &imported.graph;
    let labels: Vec<String> = g.nodes.iter().map(|n| n.op.label()).collect();
    assert_eq!(
        labels,
        [
            "Conv+Clip",
            "DepthwiseConv",
            "Add",
            "Copy",
            "Gemm",
            "Softmax"
        ]
    );
    let t = |id: usize| &g.tensors[id];
    let x = g.inputs[0];
    assert_eq!(
        (t(x).dtype, t(x).quant.clone()),
        (DType::I8, per_tensor(0.5, -3))
    );

    // CONV_2D: NHWC, OHWI i8 weights per channel on axis 0, i32 bias as stored.
    let conv = &g.nodes[0];
    assert_eq!(
        conv.op,
        Op::Conv {
            win: Window {
                kernel: [1, 1],
                strides: [1, 1],
                dilations: [1, 1],
                pads: [0; 4]
            },
            group: 1,
            act: Act::Clip(0.0, 6.0),
            layout: Layout::Nhwc,
            depthwise: false,
        }
    );
    let [_, w, bias] = conv.inputs[..] else {
        panic!("{conv:?}")
    };
    let (w, bias) = (w.unwrap(), bias.unwrap());
    assert_eq!(t(w).dims, [3, 1, 1, 2]);
    assert_eq!(t(w).data, Some(Data::I8(vec![1, -2, 3, -4, 5, -6])));
    assert_eq!(
        t(w).quant,
        Some(Quant {
            scale: vec![0.01, 0.02, 0.03],
            zero_point: vec![0; 3],
            axis: Some(0)
        })
    );
    assert_eq!((t(bias).dtype, t(bias).dims.clone()), (DType::I32, vec![3]));
    assert_eq!(t(bias).quant.as_ref().unwrap().scale, [0.005, 0.01, 0.015]);
    assert_eq!(t(conv.output).quant, per_tensor(0.1, 5));

    // DEPTHWISE: group = in_c, 1HWO weights quantized along axis 3.
    let dw = &g.nodes[1];
    assert!(matches!(
        dw.op,
        Op::Conv {
            group: 3,
            layout: Layout::Nhwc,
            depthwise: true,
            win: Window {
                pads: [1, 1, 1, 1],
                ..
            },
            ..
        }
    ));
    let dww = dw.inputs[1].unwrap();
    assert_eq!(t(dww).dims, [1, 3, 3, 6]);
    assert_eq!(t(dww).quant.as_ref().unwrap().axis, Some(3));
    assert_eq!(t(dw.output).dims, [1, 4, 4, 6]);

    // ADD: int8 operands and output, per tensor.
    assert_eq!(
        g.nodes[2].op,
        Op::Binary {
            op: BinOp::Add,
            act: Act::None
        }
    );
    assert_eq!(t(g.nodes[2].output).quant, per_tensor(0.4, -1));

    // FULLY_CONNECTED: the 4-D input viewed as [1, 96] (same quantization), B is
    // the transposed [depth, units] weight, per tensor.
    let rows = &g.nodes[3];
    assert_eq!(t(rows.output).dims, [1, 96]);
    assert_eq!(t(rows.output).quant, per_tensor(0.4, -1));
    let fc = &g.nodes[4];
    let bt = fc.inputs[1].unwrap();
    assert_eq!(t(bt).dims, [96, 5]);
    assert_eq!(t(bt).quant, per_tensor(0.05, 0));
    assert_eq!(t(fc.inputs[2].unwrap()).dtype, DType::I32);

    // SOFTMAX over the last axis, beta 1, output 1/256 from -128.
    assert_eq!(
        g.nodes[5].op,
        Op::Softmax {
            start: 1,
            end: 2,
            beta: 1.0
        }
    );
    assert_eq!(t(g.outputs[0]).quant, per_tensor(1.0 / 256.0, -128));
}

#[test]
fn per_channel_fc_weights_keep_their_axis_through_the_transpose() {
    let mut b = Builder::new();
    let x = b.i8_act("x", &[2, 3], 0.5, 0);
    let w = b.i8_const(
        "w",
        &[2, 3],
        &[1, 2, 3, 4, 5, 6],
        (vec![0.1, 0.2], vec![0, 0], 0),
    );
    let y = b.i8_act("y", &[2, 2], 0.25, 1);
    b.op(fb::BuiltinOperator::FullyConnected, &[x, w, -1], &[y], None);
    b.inputs = vec![x];
    b.outputs = vec![y];
    let imported = import(&b.finish());
    assert!(imported.problems.is_empty(), "{:?}", imported.problems);
    let g = &imported.graph;
    let bt = &g.tensors[g.nodes[0].inputs[1].unwrap()];
    assert_eq!(bt.dims, [3, 2]);
    assert_eq!(bt.data, Some(Data::I8(vec![1, 4, 2, 5, 3, 6])));
    assert_eq!(bt.quant.as_ref().unwrap().axis, Some(1));
    assert_eq!(g.nodes[0].inputs[2], None);
}

#[test]
fn int8_models_run_behind_an_f32_abi_on_the_int8_kernels() {
    let converted = convert(&int8_model()).unwrap_or_else(|e| panic!("{e}"));
    let m = &converted.manifest;
    // The ABI is f32; the manifest says how the model quantizes it.
    let (i, o) = (&m.inputs[0], &m.outputs[0]);
    assert_eq!((i.name.as_str(), i.dtype.as_str()), ("x", "f32"));
    assert_eq!(i.quant.map(|q| (q.scale, q.zero_point)), Some((0.5, -3)));
    assert_eq!(
        o.quant.map(|q| (q.scale, q.zero_point)),
        Some((1.0 / 256.0, -128))
    );
    assert_eq!(m.fc_requant.as_deref(), Some("litert-ref"));
    let aligned = medwasm::AlignedBuf::from_bytes(&converted.blob);
    let model = medwasm::Model::load(aligned.as_slice()).unwrap();
    let ops: Vec<&str> = (0..model.node_count())
        .map(|k| model.node(k).unwrap().op.name())
        .collect();
    assert_eq!(
        ops,
        [
            "Quantize",
            "QConv",
            "QDepthwiseConv",
            "QAdd",
            "Copy",
            "QFullyConnected",
            "QSoftmax",
            "Dequantize"
        ]
    );
    // The output is a distribution in steps of 1/256.
    let x: Vec<f32> = (0..32).map(|v| (v as f32 - 16.0) * 0.3).collect();
    let y = &run_blob(&converted.blob, &[x])[0];
    let sum: f32 = y.iter().sum();
    assert!((sum - 1.0).abs() <= 5.0 / 256.0, "{y:?}");
    assert!(y.iter().all(|v| (v * 256.0).fract() == 0.0), "{y:?}");
}

/// A dynamic-range CONV_2D: f32 `x [1, 2, 2, 2]`, int8 weights `[2, 1, 1, 2]` with
/// `scales` along the output channels.
fn hybrid_conv_model(scales: Vec<f32>) -> Vec<u8> {
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 2, 2, 2]);
    let n = scales.len();
    let w = b.i8_const(
        "w",
        &[2, 1, 1, 2],
        &[10, -20, 30, -40],
        (scales, vec![0; n], 0),
    );
    let bias = b.f32_const("b", &[2], &[0.5, -0.5]);
    let y = b.f32_act("y", &[1, 2, 2, 2]);
    b.op(
        fb::BuiltinOperator::Conv2d,
        &[x, w, bias],
        &[y],
        Some(conv_opts(
            fb::Padding::Same,
            1,
            fb::ActivationFunctionType::None,
        )),
    );
    b.inputs = vec![x];
    b.outputs = vec![y];
    b.finish()
}

#[test]
fn dynamic_range_weights_run_the_hybrid_kernel_or_are_refused_per_channel() {
    let bytes = hybrid_conv_model(vec![0.01, 0.02]);
    let imported = import(&bytes);
    let g = &imported.graph;
    let n = &g.nodes[0];
    assert_eq!(g.tensors[n.inputs[0].unwrap()].dtype, DType::F32);
    let wt = &g.tensors[n.inputs[1].unwrap()];
    assert_eq!(
        (wt.dtype, wt.quant.as_ref().unwrap().axis),
        (DType::I8, Some(0))
    );
    assert_eq!(g.tensors[n.inputs[2].unwrap()].dtype, DType::F32);
    // Distinct per-channel scales: LiteRT's asymmetric path, not in the runtime.
    let err = convert(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("node `CONV_2D_0` (Conv)")
            && err.contains("asymmetric dynamic-range path")
            && err.contains("1 problem found"),
        "{err}"
    );
    // One scale: the input quantized symmetrically, int8 products, rescaled.
    let converted = convert(&hybrid_conv_model(vec![0.01])).unwrap_or_else(|e| panic!("{e}"));
    let x = [0.3f32, -1.27, 0.5, 0.0, -0.2, 0.9, 1.0, -0.6];
    // r = 1.27: q = round(x · 127 / 1.27) = round(100 x); y = acc · (1.27/127 · 0.01) + b.
    let q: Vec<f32> = x.iter().map(|v| (v * (127.0 / 1.27)).round()).collect();
    let factor = (1.27f32 / 127.0) * 0.01;
    let mut want = vec![];
    for p in 0..4 {
        let (a, c) = (q[2 * p], q[2 * p + 1]);
        want.push((10.0 * a - 20.0 * c) * factor + 0.5);
        want.push((30.0 * a - 40.0 * c) * factor - 0.5);
    }
    assert_close(&run_blob(&converted.blob, &[x.to_vec()])[0], &want, 1e-6);
}

#[test]
fn constant_int8_and_f16_weights_behind_dequantize_are_folded() {
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 2]);
    // f16 weights [2, 2]: 1, -2, 0.5, 4.
    let halves: Vec<u8> = [0x3c00u16, 0xc000, 0x3800, 0x4400]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let wh = b.tensor("wh", &[2, 2], fb::TensorType::Float16, Some(halves), None);
    let wf = b.f32_act("wf", &[2, 2]);
    b.op(fb::BuiltinOperator::Dequantize, &[wh], &[wf], None);
    // int8 bias per channel: (q - zp) · s = (4 - 1)·0.5, (-6 - 2)·0.25.
    let bq = b.i8_const("bq", &[2], &[4, -6], (vec![0.5, 0.25], vec![1, 2], 0));
    let bf = b.f32_act("bf", &[2]);
    b.op(fb::BuiltinOperator::Dequantize, &[bq], &[bf], None);
    let y = b.f32_act("y", &[1, 2]);
    b.op(
        fb::BuiltinOperator::FullyConnected,
        &[x, wf, bf],
        &[y],
        None,
    );
    b.inputs = vec![x];
    b.outputs = vec![y];
    let converted = convert(&b.finish()).unwrap_or_else(|e| panic!("{e}"));
    // y_u = Σ_d x_d · w[u][d] + b_u with w = [[1, -2], [0.5, 4]], b = [1.5, -2].
    let got = run_blob(&converted.blob, &[vec![2.0, 3.0]]);
    assert_close(&got[0], &[2.0 - 6.0 + 1.5, 1.0 + 12.0 - 2.0], 0.0);
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 4, 4, 2]);
    let w = b.f32_const("w", &[2, 1, 1, 2], &[1.0; 4]);
    let c = b.f32_act("c", &[1, 4, 4, 2]);
    // A fused TANH is refused…
    b.op(
        fb::BuiltinOperator::Conv2d,
        &[x, w, -1],
        &[c],
        Some(conv_opts(
            fb::Padding::Same,
            1,
            fb::ActivationFunctionType::Tanh,
        )),
    );
    // …an unsupported operator too, and one the schema spells past 127 (GELU)…
    let e = b.f32_act("e", &[1, 4, 4, 2]);
    b.op(fb::BuiltinOperator::Floor, &[x], &[e], None);
    let ge = b.f32_act("ge", &[1, 4, 4, 2]);
    b.op(fb::BuiltinOperator::Gelu, &[x], &[ge], None);
    // …and a declared shape the operator does not compute.
    let r = b.f32_act("r", &[1, 4, 4, 3]);
    b.op(fb::BuiltinOperator::Relu, &[x], &[r], None);
    // A known operator reading a tensor left unknown by an earlier problem adds
    // nothing; an unknown one is reported all the same.
    let z = b.f32_act("z", &[1, 4, 4, 2]);
    b.op(fb::BuiltinOperator::Relu, &[e], &[z], None);
    let ce = b.f32_act("ce", &[1, 4, 4, 2]);
    b.op(fb::BuiltinOperator::Ceil, &[z], &[ce], None);
    b.inputs = vec![x];
    b.outputs = vec![c, ge, r, ce];
    let err = convert(&b.finish()).unwrap_err();
    let ConvertError::Unsupported { problems, .. } = &err else {
        panic!("{err}")
    };
    let summary: Vec<(&str, &str, ProblemKind)> = problems
        .iter()
        .map(|p| (p.node.as_str(), p.op.as_str(), p.kind))
        .collect();
    assert_eq!(
        summary,
        [
            ("CONV_2D_0", "CONV_2D", ProblemKind::Attribute),
            ("FLOOR_1", "FLOOR", ProblemKind::Operator),
            ("GELU_2", "GELU", ProblemKind::Operator),
            ("RELU_3", "RELU", ProblemKind::Shape),
            ("CEIL_5", "CEIL", ProblemKind::Operator),
        ],
        "{err}"
    );
    assert!(
        problems[0].message.contains("fused activation TANH"),
        "{err}"
    );
    assert!(err.to_string().contains("docs/ops.md"), "{err}");
}

#[test]
fn operator_codes_read_the_larger_of_both_fields() {
    // An old file: only the byte field (builtin_code absent, read as ADD = 0).
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 3]);
    let y = b.f32_act("y", &[1, 3]);
    b.op(fb::BuiltinOperator::Relu, &[x], &[y], None);
    b.codes[0].builtin_code = fb::BuiltinOperator::Add;
    b.inputs = vec![x];
    b.outputs = vec![y];
    let converted = convert(&b.finish()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(converted.manifest.ops, [("Relu".to_string(), 1)]);
}

/// A model whose FULLY_CONNECTED weights `[2, 2]` live after the flatbuffer, as
/// in models over 2 GiB: the buffer has no `data`, only `offset` and `size`.
fn external_weights(offset_past_end: u64) -> Vec<u8> {
    let weights: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let build = |offset: u64| {
        let mut b = Builder::new();
        let x = b.f32_act("x", &[1, 2]);
        b.buffers.push(fb::Buffer {
            data: None,
            offset,
            size: weights.len() as u64,
        });
        let buffer = (b.buffers.len() - 1) as u32;
        b.tensors.push(fb::Tensor {
            shape: Some(vec![2, 2]),
            type_: fb::TensorType::Float32,
            buffer,
            name: Some("w".into()),
            ..Default::default()
        });
        let w = (b.tensors.len() - 1) as i32;
        let y = b.f32_act("y", &[1, 2]);
        b.op(fb::BuiltinOperator::FullyConnected, &[x, w, -1], &[y], None);
        b.inputs = vec![x];
        b.outputs = vec![y];
        b.finish()
    };
    // The offset's value does not change the flatbuffer's length (a u64 field
    // other than its default 0), so a first build tells where the data goes.
    let len = build(2).len() as u64;
    let mut bytes = build(len + offset_past_end);
    bytes.extend_from_slice(&weights);
    bytes
}

#[test]
fn buffers_after_the_flatbuffer_are_read_by_offset_and_checked() {
    let converted = convert(&external_weights(0)).unwrap_or_else(|e| panic!("{e}"));
    // y = x · W^T with W = [[1, 2], [3, 4]].
    let got = run_blob(&converted.blob, &[vec![1.0, -1.0]]);
    assert_close(&got[0], &[-1.0, -1.0], 0.0);
    let err = convert(&external_weights(4))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("past the end of the"), "{err}");
}

#[test]
fn metadata_and_signatures_reach_the_manifest() {
    let mut b = Builder::new();
    let x = b.f32_act("serving_default_x:0", &[1, 3]);
    let y = b.f32_act("StatefulPartitionedCall:0", &[1, 3]);
    b.op(fb::BuiltinOperator::Logistic, &[x], &[y], None);
    b.inputs = vec![x];
    b.outputs = vec![y];
    let mut version = b"1.5.0".to_vec();
    version.resize(16, 0);
    let buffer = b.buffer(version);
    b.metadata.push(fb::Metadata {
        name: Some("min_runtime_version".into()),
        buffer,
    });
    b.signatures.push(fb::SignatureDef {
        inputs: Some(vec![fb::TensorMap {
            name: Some("x".into()),
            tensor_index: x as u32,
        }]),
        outputs: Some(vec![fb::TensorMap {
            name: Some("prob".into()),
            tensor_index: y as u32,
        }]),
        signature_key: Some("serving_default".into()),
        subgraph_index: 0,
    });
    let m = convert(&b.finish())
        .unwrap_or_else(|e| panic!("{e}"))
        .manifest;
    assert_eq!(m.source.min_runtime_version.as_deref(), Some("1.5.0"));
    assert_eq!(m.source.signatures.len(), 1);
    let s = &m.source.signatures[0];
    assert_eq!(
        (s.key.as_str(), s.inputs.clone(), s.outputs.clone()),
        (
            "serving_default",
            vec!["x".to_string()],
            vec!["prob".to_string()]
        )
    );
    assert_eq!(m.source.producer, "TFLite (built by a test)");
}

#[test]
fn malformed_files_are_errors_not_panics() {
    let good = int8_model();
    let read = |bytes: &[u8]| convert(bytes).map(|_| ()).unwrap_err();
    for (what, bytes) in [
        ("empty", vec![]),
        ("garbage", b"definitely not a flatbuffer".to_vec()),
        ("truncated", good[..good.len() / 3].to_vec()),
    ] {
        let err = read(&bytes);
        assert!(
            matches!(
                err,
                ConvertError::Parse {
                    format: "TFLite",
                    ..
                }
            ),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains("is not a valid TFLite model"),
            "{err}"
        );
    }
    let mut no_id = good.clone();
    no_id[4..8].copy_from_slice(b"ONNX");
    assert!(read(&no_id).to_string().contains("`TFL3`"));

    // A buffer shorter than the tensor's shape.
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 2]);
    let w = b.tensor(
        "w",
        &[2, 2],
        fb::TensorType::Float32,
        Some(vec![0; 12]),
        None,
    );
    let y = b.f32_act("y", &[1, 2]);
    b.op(fb::BuiltinOperator::FullyConnected, &[x, w, -1], &[y], None);
    b.inputs = vec![x];
    b.outputs = vec![y];
    let err = read(&b.finish()).to_string();
    assert!(
        err.contains("holds 12 bytes of data") && err.contains("needs 16"),
        "{err}"
    );

    // A tensor index out of range.
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 2]);
    b.op(fb::BuiltinOperator::Relu, &[x], &[7], None);
    b.inputs = vec![x];
    b.outputs = vec![x];
    let err = read(&b.finish()).to_string();
    assert!(err.contains("refers to tensor 7"), "{err}");

    // Zero dimensions reach no division or subtraction that would panic.
    let mut b = Builder::new();
    let x = b.f32_act("x", &[1, 0, 4, 0]);
    let w = b.f32_const("w", &[2, 1, 1, 1], &[1.0, 2.0]);
    let y = b.f32_act("y", &[1, 0, 4, 2]);
    b.op(
        fb::BuiltinOperator::Conv2d,
        &[x, w, -1],
        &[y],
        Some(conv_opts(
            fb::Padding::Same,
            1,
            fb::ActivationFunctionType::None,
        )),
    );
    let p = b.f32_act("p", &[1, 0, 4, 0]);
    b.op(
        fb::BuiltinOperator::MaxPool2d,
        &[x],
        &[p],
        Some(pool_opts(fb::Padding::Same, 2, 1)),
    );
    b.inputs = vec![x];
    b.outputs = vec![y, p];
    let err = read(&b.finish()).to_string();
    assert!(err.contains("2 problems"), "{err}");

    // Seeded byte flips all over a valid file: each read returns, whatever it says.
    let mut state = 0x7f1e_u64;
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..4 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (state >> 33) as usize % bytes.len();
            bytes[at] ^= (state >> 20) as u8 | 1;
        }
        let _ = convert(&bytes);
    }
}

#[test]
fn the_op_table_lists_exactly_the_registered_operators() {
    let mut registered = super::op_names();
    registered.sort_unstable();
    let mut table: Vec<&str> = crate::convert::support::TFLITE_OPS
        .iter()
        .map(|o| o.op)
        .collect();
    table.sort_unstable();
    assert_eq!(
        registered, table,
        "support::TFLITE_OPS and the TFLite registry differ"
    );
    assert_eq!(
        super::code_name(fb::BuiltinOperator::ResizeBilinear as i32),
        "RESIZE_BILINEAR"
    );
    assert_eq!(super::code_name(9999), "builtin operator 9999");
}
