//! The operator support tables, ONNX and TFLite: one source for `cargo medwasm ops`
//! and `docs/ops.md` (a test keeps the doc in sync, and each frontend's tests keep
//! its table equal to the operators it registers).

/// One supported operator.
#[derive(Debug, Clone, Copy)]
pub struct OpSupport {
    /// ONNX op type or TFLite builtin operator.
    pub op: &'static str,
    /// How it runs.
    pub runs_as: &'static str,
    /// What is supported and what is not.
    pub notes: &'static str,
}

/// Every ONNX operator the converter accepts (default domain, float32, and the
/// quantized operators and patterns; `com.microsoft` where the notes say so).
pub const OPS: &[OpSupport] = &[
    OpSupport {
        op: "Gemm",
        runs_as: "Gemm",
        notes: "B constant; `transB`, `alpha`, `beta`; C constant, per column; `transA=1` not supported",
    },
    OpSupport {
        op: "MatMul",
        runs_as: "Gemm",
        notes: "second operand a constant 2-D matrix; A of any rank ≤ 6; a following bias `Add` is fused",
    },
    OpSupport {
        op: "Add",
        runs_as: "Binary",
        notes: "NumPy broadcasting, rank ≤ 6; constant-only inputs folded at conversion (integers exactly: an overflow or a division by zero is an error)",
    },
    OpSupport {
        op: "Sub",
        runs_as: "Binary",
        notes: "as Add",
    },
    OpSupport {
        op: "Mul",
        runs_as: "Binary",
        notes: "as Add",
    },
    OpSupport {
        op: "Div",
        runs_as: "Binary",
        notes: "as Add",
    },
    OpSupport {
        op: "Relu",
        runs_as: "Activation",
        notes: "fused into the preceding Conv/Gemm/Binary when possible",
    },
    OpSupport {
        op: "LeakyRelu",
        runs_as: "Activation",
        notes: "`alpha`; fused as Relu",
    },
    OpSupport {
        op: "Sigmoid",
        runs_as: "Activation",
        notes: "fused as Relu",
    },
    OpSupport {
        op: "Tanh",
        runs_as: "Activation",
        notes: "fused as Relu",
    },
    OpSupport {
        op: "Clip",
        runs_as: "Activation",
        notes: "opset < 11 attributes or ≥ 11 constant `min`/`max` inputs; fused as Relu",
    },
    OpSupport {
        op: "Softmax",
        runs_as: "Softmax",
        notes: "opset < 13 coerce-to-2-D semantics and opset ≥ 13 single-axis semantics",
    },
    OpSupport {
        op: "Conv",
        runs_as: "Conv",
        notes: "1-D and 2-D, NCHW; `strides`, `pads`, `auto_pad` (NOTSET, VALID, SAME_UPPER, SAME_LOWER), `dilations`, `group` incl. depthwise; constant weights and bias; 3-D not supported",
    },
    OpSupport {
        op: "MaxPool",
        runs_as: "MaxPool",
        notes: "1-D and 2-D; `strides`, `pads`, `auto_pad`, `dilations`, `ceil_mode`; every window must overlap the input (pads smaller than the kernel); the `Indices` output and `storage_order=1` not supported",
    },
    OpSupport {
        op: "AveragePool",
        runs_as: "AveragePool",
        notes: "1-D and 2-D; `strides`, `pads`, `auto_pad`, `dilations`, `ceil_mode`, `count_include_pad`; every window must overlap the input (pads smaller than the kernel)",
    },
    OpSupport {
        op: "GlobalAveragePool",
        runs_as: "ReduceMean",
        notes: "over all spatial axes",
    },
    OpSupport {
        op: "BatchNormalization",
        runs_as: "folded",
        notes: "inference mode; folded into a preceding Conv/Gemm, otherwise a Mul and an Add",
    },
    OpSupport {
        op: "Flatten",
        runs_as: "Copy",
        notes: "`axis`",
    },
    OpSupport {
        op: "Reshape",
        runs_as: "Copy",
        notes: "constant `shape` input (the attribute before opset 5); 0 and -1 handled, `allowzero=1` with a 0 is not",
    },
    OpSupport {
        op: "Squeeze",
        runs_as: "Copy",
        notes: "axes as attribute (opset < 13) or constant input (≥ 13)",
    },
    OpSupport {
        op: "Unsqueeze",
        runs_as: "Copy",
        notes: "as Squeeze",
    },
    OpSupport {
        op: "Transpose",
        runs_as: "Transpose",
        notes: "`perm`; constant inputs folded",
    },
    OpSupport {
        op: "Concat",
        runs_as: "Concat",
        notes: "up to 16 inputs; integer constants joined at conversion",
    },
    OpSupport {
        op: "Pad",
        runs_as: "Pad",
        notes: "`constant`, `reflect`, `edge`; constant non-negative `pads`; the opset 18 `axes` input not supported",
    },
    OpSupport {
        op: "ReduceMean",
        runs_as: "ReduceMean",
        notes: "`axes` attribute (opset < 18) or constant input (≥ 18), `keepdims`, `noop_with_empty_axes`",
    },
    OpSupport {
        op: "Identity",
        runs_as: "removed",
        notes: "",
    },
    OpSupport {
        op: "Dropout",
        runs_as: "removed",
        notes: "inference only; the mask output must be unused",
    },
    OpSupport {
        op: "Constant",
        runs_as: "folded",
        notes: "`value`, `value_float(s)` or `value_int(s)` attribute",
    },
    OpSupport {
        op: "Shape",
        runs_as: "folded",
        notes: "shapes are static, so Shape is a constant",
    },
    OpSupport {
        op: "Gather",
        runs_as: "folded",
        notes: "only on constant 1-D integer tensors (shape arithmetic)",
    },
    OpSupport {
        op: "Cast",
        runs_as: "folded",
        notes: "on constants, to float, int32 or int64; a float-to-float cast at run time is removed",
    },
    OpSupport {
        op: "QuantizeLinear",
        runs_as: "int8 patterns / Quantize / folded",
        notes: "int8 or uint8, per tensor at run time (per axis on constants, folded); ends a QDQ pattern (below); of a float graph input it runs as Quantize; `block_size` not supported",
    },
    OpSupport {
        op: "DequantizeLinear",
        runs_as: "int8 patterns / Dequantize / folded",
        notes: "int8 or uint8 (int32 biases), per tensor at run time, per tensor or per axis on constants; starts a QDQ pattern (below); before float operators it runs as Dequantize; of constant weights read by float operators it is folded to f32 (weights-only quantized models); `block_size` not supported",
    },
    OpSupport {
        op: "QLinearConv",
        runs_as: "Conv (int8)",
        notes: "as Conv; weights int8 (or uint8) constant, per tensor or per output channel, symmetric; int32 bias",
    },
    OpSupport {
        op: "QLinearMatMul",
        runs_as: "Gemm (int8)",
        notes: "second operand a constant `[K, N]` matrix, per tensor or per column",
    },
    OpSupport {
        op: "QGemm",
        runs_as: "Gemm (int8)",
        notes: "`com.microsoft`; B constant, `transB`; int32 C; quantized output (`y_scale`) only; `alpha=1`, `transA=0`",
    },
    OpSupport {
        op: "QLinearAdd",
        runs_as: "Add (int8)",
        notes: "`com.microsoft`; NumPy broadcasting; one operand may be a constant",
    },
    OpSupport {
        op: "QLinearMul",
        runs_as: "Mul (int8)",
        notes: "`com.microsoft`; as QLinearAdd",
    },
    OpSupport {
        op: "QLinearAveragePool",
        runs_as: "AveragePool (int8)",
        notes: "`com.microsoft`; as AveragePool, `channels_last` too; `count_include_pad=1` with padding not supported; requantized after when input and output quantization differ",
    },
    OpSupport {
        op: "QLinearGlobalAveragePool",
        runs_as: "ReduceMean (int8)",
        notes: "`com.microsoft`; `channels_last` too",
    },
    OpSupport {
        op: "QLinearSigmoid",
        runs_as: "Sigmoid (int8)",
        notes: "`com.microsoft`; an output other than scale 1/256, zero point -128 is requantized from it",
    },
    OpSupport {
        op: "QLinearLeakyRelu",
        runs_as: "LeakyRelu (int8)",
        notes: "`com.microsoft`; `alpha`",
    },
    OpSupport {
        op: "QLinearSoftmax",
        runs_as: "Softmax (int8)",
        notes: "`com.microsoft`; over the last axis; an output other than scale 1/256, zero point -128 is requantized from it",
    },
    OpSupport {
        op: "QLinearConcat",
        runs_as: "Concat (int8)",
        notes: "`com.microsoft`; up to 16 inputs, each requantized to the output's parameters where they differ",
    },
];

/// Every TFLite builtin operator the converter accepts, and the runtime operator
/// each runs as for f32, int8 and hybrid (dynamic-range: f32 activations, int8
/// weights) models, as the back end (`convert/backend/`) chooses by element type.
pub const TFLITE_OPS: &[OpSupport] = &[
    OpSupport {
        op: "CONV_2D",
        runs_as: "Conv · QConv · HybridConv",
        notes: "NHWC, OHWI filter (f32 re-laid to OIHW at conversion); `SAME`/`VALID` (the odd padding at the end), strides, dilations, groups; fused NONE/RELU/RELU6/RELU_N1_TO_1; constant filter and bias. int8: symmetric int8 weights per channel or per tensor, int32 bias, 1 group (one input channel per group runs as depthwise). Hybrid (f32 activations, int8 weights): one weight scale (per tensor, or per channel all equal), 1 group; distinct per-channel scales are refused (LiteRT's asymmetric path)",
    },
    OpSupport {
        op: "DEPTHWISE_CONV_2D",
        runs_as: "Conv · QDepthwiseConv",
        notes: "1HWO filter, depth multiplier from the shapes (a disagreeing `depth_multiplier` is refused); otherwise as CONV_2D. int8: per-channel or per-tensor symmetric weights. Hybrid: refused (LiteRT's asymmetric path)",
    },
    OpSupport {
        op: "FULLY_CONNECTED",
        runs_as: "Gemm · QFullyConnected · HybridFullyConnected",
        notes: "constant `[units, depth]` weights (transposed at conversion), optional bias, `keep_num_dims`; input viewed as `[numel / depth, depth]`; `weights_format` DEFAULT only; fused NONE/RELU/RELU6/RELU_N1_TO_1. int8: per-channel symmetric or per-tensor weights (a zero point allowed), int32 bias, requantized in f64 as LiteRT does (`--fc-requant litert-ref`) or in fixed point as TFLite Micro does (`--fc-requant tflm`). Hybrid: one weight scale; `asymmetric_quantize_inputs` refused",
    },
    OpSupport {
        op: "AVERAGE_POOL_2D",
        runs_as: "AveragePool · QAveragePool",
        notes: "NHWC; `SAME`/`VALID`, strides; padding excluded from the average; a fused activation runs after it. int8: input and output quantized alike (raw values are averaged, ties away from zero)",
    },
    OpSupport {
        op: "MAX_POOL_2D",
        runs_as: "MaxPool · QMaxPool",
        notes: "as AVERAGE_POOL_2D",
    },
    OpSupport {
        op: "ADD",
        runs_as: "Binary · QAdd",
        notes: "NumPy broadcasting, rank ≤ 6; fused NONE/RELU/RELU6/RELU_N1_TO_1. int8: per-tensor operands (a constant too); the output scale must not be 2^20 times finer than twice the larger input scale",
    },
    OpSupport {
        op: "SUB",
        runs_as: "Binary · QAdd",
        notes: "as ADD",
    },
    OpSupport {
        op: "MUL",
        runs_as: "Binary · QMul",
        notes: "as ADD; int8: the rescaled product must fit int32",
    },
    OpSupport {
        op: "RESHAPE",
        runs_as: "Copy",
        notes: "constant `shape` input or `new_shape` option (one -1), else the output's declared shape; int8: input and output quantized alike",
    },
    OpSupport {
        op: "SQUEEZE",
        runs_as: "Copy",
        notes: "`squeeze_dims` (empty: every size-1 axis)",
    },
    OpSupport {
        op: "EXPAND_DIMS",
        runs_as: "Copy",
        notes: "constant `axis`, negative allowed",
    },
    OpSupport {
        op: "CONCATENATION",
        runs_as: "Concat",
        notes: "`axis` (negative allowed), up to 16 inputs; no fused activation (LiteRT refuses one); int8: every input quantized as the output (LiteRT requires it)",
    },
    OpSupport {
        op: "PAD",
        runs_as: "Pad",
        notes: "constant `paddings`, INT32 or INT64; pads with (real) zero: the zero point of an int8 tensor",
    },
    OpSupport {
        op: "TRANSPOSE",
        runs_as: "Transpose",
        notes: "constant `perm`; cancelled against the converter's own layout Transposes where they meet",
    },
    OpSupport {
        op: "MEAN",
        runs_as: "ReduceMean · QMean",
        notes: "constant `axis`, `keep_dims`. int8: LiteRT's integer mean, over at most 2^23 elements",
    },
    OpSupport {
        op: "SOFTMAX",
        runs_as: "Softmax · QSoftmax",
        notes: "over the last axis; `beta` (f32: a Mul by beta before the softmax). int8: LiteRT's fixed-point exp and reciprocal bit for bit, rows of at most 511, output scale 1/256 and zero point -128",
    },
    OpSupport {
        op: "LOGISTIC",
        runs_as: "Activation · QLut",
        notes: "sigmoid. int8: LiteRT's 256-entry table, built at conversion; output scale exactly 1/256",
    },
    OpSupport {
        op: "TANH",
        runs_as: "Activation · QLut",
        notes: "int8: LiteRT's 256-entry table",
    },
    OpSupport {
        op: "RELU",
        runs_as: "Activation · QRequantize",
        notes: "int8: a requantization with a clamp; fused into the preceding int8 operator when both are quantized alike",
    },
    OpSupport {
        op: "RELU6",
        runs_as: "Activation · QRequantize",
        notes: "clip to [0, 6]; int8 as RELU",
    },
    OpSupport {
        op: "RELU_N1_TO_1",
        runs_as: "Activation · QRequantize",
        notes: "clip to [-1, 1]; int8 as RELU",
    },
    OpSupport {
        op: "LEAKY_RELU",
        runs_as: "Activation · QLeakyRelu",
        notes: "`alpha`, negative allowed",
    },
    OpSupport {
        op: "HARD_SWISH",
        runs_as: "Binary · QHardSwish",
        notes: "f32: `x · relu6(x + 3) / 6` as an Add (clipped), a Mul and a Div. int8: LiteRT's 16-bit fixed point; the output scale at least 1/128 of the input's",
    },
    OpSupport {
        op: "QUANTIZE",
        runs_as: "Quantize · QRequantize",
        notes: "f32 → int8 (an f32 division, ties away from zero) and int8 → int8, per tensor",
    },
    OpSupport {
        op: "DEQUANTIZE",
        runs_as: "folded · Dequantize",
        notes: "of constant INT8 (per tensor or per axis) or FLOAT16 weights: folded to f32 at conversion; of int8 activations: at run time",
    },
];

/// How quantized ONNX models run: the QDQ patterns, the QOperator format, and
/// where the result differs from onnxruntime's.
const QUANTIZED_ONNX: &str = "
## Quantized ONNX (QDQ and QOperator)

Quantized ONNX models run on the int8 kernels, not dequantized to float: QDQ
graphs (onnxruntime's `quantize_static` with `QuantFormat.QDQ`, tf2onnx from an
int8 TFLite model) and the QOperator format (`QuantFormat.QOperator`: QLinearConv,
QLinearMatMul and the `com.microsoft` operators above). Activations are int8 (or
uint8, held as int8 with the zero point moved by 128) quantized per tensor;
weights int8 (or uint8) constants, per tensor or per output channel; biases
int32. Graph inputs and outputs may be float32 or int8 (uint8 not).

A QDQ graph computes in float between DequantizeLinear (DQ) and QuantizeLinear
(Q); each pattern below, ending at a Q, becomes one int8 node that reads the
int8 tensors its DQs read:

| pattern | int8 node |
|---|---|
| `DQ(x), DQ(W) [, DQ(bias)] → Conv [→ Relu / Clip] → Q` | Conv (depthwise when `group` = channels) |
| `DQ(x), DQ(W) → MatMul [→ Add(DQ(bias))] [→ Relu / Clip] → Q`, and Gemm | fully connected |
| `DQ(a), DQ(b) → Add / Sub / Mul [→ Relu / Clip] → Q` | Add, Sub, Mul (a constant operand is a DQ of int8) |
| `DQ → MaxPool / AveragePool → Q` | pool (requantized after if the parameters differ) |
| `DQ → GlobalAveragePool / ReduceMean → Q` | mean |
| `DQ → Softmax → Q` (last axis) | softmax (to scale 1/256, zero point -128; requantized to another output quantization) |
| `DQ → Sigmoid / Tanh / LeakyRelu / Relu / Clip → Q` | activation (a sigmoid writes TFLite's 1/256 steps, requantized to another output quantization) |
| `DQ → Reshape / Flatten / Squeeze / Unsqueeze / Transpose / Concat / Pad → Q` | the same mover on int8 (requantized where the parameters differ) |
| `DQ → Q` | requantize |

Movers (and MaxPool) between a Q and a DQ run on the int8 values directly. Float
operators ahead of a model's quantized part (on its float inputs) run in f32 and
the Q after them as Quantize; a DQ before float operators runs as Dequantize; a
DQ of constant weights read by float operators is folded to float32. Any other Q
is refused, naming the pattern it breaks (a float operator between a DQ and a Q
rounds differently from any int8 kernel). A bias whose scale is not
input scale × weight scale (as onnxruntime and tf2onnx write it) is requantized
to that unit at conversion.

The int8 nodes compute exactly what TFLite's reference kernels compute (fixed-point
requantization with double rounding, TFLite's activation ranges, lookup tables
and softmax). A model tf2onnx made from an int8 TFLite model keeps TFLite's
scales bit for bit, so it gives LiteRT's reference results exactly (0 steps).
For a model onnxruntime quantized there is no such oracle, and the results
differ from onnxruntime's by a step or two, because:

- QuantizeLinear rounds half to even; TFLite rounds half away from zero (the
  Quantize of a float input, activation ranges, averages);
- onnxruntime's fused int8 kernels requantize with a float multiply and round half
  to even; TFLite multiplies by a 31-bit fixed-point multiplier and rounds twice;
- the int8 softmax and sigmoid are TFLite's fixed-point exp and lookup table, not a
  float function rounded once, and they write TFLite's 1/256 steps: onnxruntime's
  1/255 softmax output and calibrated sigmoid outputs are requantized from them
  (two roundings);
- where a pool or a mover's input and output quantization differ, the int8
  kernels add a requantize (two roundings where onnxruntime rounds once);
- an average rounds raw int8 values (TFLite), not dequantized ones.

The conformance suite checks both: tf2onnx's `kws_int8`, `ic_resnet8_int8` and
`ad01_int8` give LiteRT's reference results exactly (0 steps on every element),
and 58 small models onnxruntime quantized (`conformance/qdq`: each pattern, QDQ
and QOperator, per tensor and per channel) come within one step of onnxruntime,
two for a QLinearAveragePool whose output steps are 2.9 times finer than its
input's (the int8 average rounds on the input's steps, then a requantize).

`cargo medwasm import` checks a quantized ONNX model against onnxruntime (CPU, 1
thread, through Python; tract runs QuantizeLinear/DequantizeLinear in float and
has none of the `com.microsoft` operators), on every test vector, in quantization
steps of each output (an output a final DequantizeLinear writes included). It
prints how many values are 0, 1 and more steps off and accepts 1 step by default;
`int8-tolerance-steps` in `[package.metadata.medwasm]` overrides it. Outputs given
with `--expected` (LiteRT's reference kernels' for a model tf2onnx made) must be
identical (0 steps), and then decide: onnxruntime runs a QDQ Softmax as TFLite's
optimized kernels do, 13 steps from the reference kernels on `kws_int8`.
";

/// True if the converter knows ONNX `op`.
pub fn is_supported(op: &str) -> bool {
    OPS.iter().any(|o| o.op == op)
}

/// The table as Markdown (the body of `docs/ops.md`).
pub fn markdown_table() -> String {
    let mut s = String::from(
        "# Operator support\n\n\
         Generated from `cargo-medwasm/src/convert/support.rs` (`cargo medwasm ops`); a test\n\
         keeps this file in sync. Default ONNX domain (and the quantized `com.microsoft`\n\
         operators below), float32 tensors and quantized int8 ones (see \"Quantized\n\
         ONNX\"), rank ≤ 6, static\n\
         shapes (a dynamic batch dimension is fixed to 1; other dynamic dimensions need\n\
         `--input-shape name=d0,d1,…`). Everything a model uses that is not here is\n\
         reported at once by `cargo medwasm import`, with node names, including\n\
         attributes an operator does not know (a misspelled one, say) or of the wrong type.\n\n\
         Limits of the model format: tensors and the memory plan's arena up to 4 GiB\n\
         (u32 offsets), at most 16 graph inputs and outputs, window parameters\n\
         (kernel, strides, dilations, pads) below 2^24.\n\n\
         | ONNX operator | runs as | supported |\n|---|---|---|\n",
    );
    for o in OPS {
        s.push_str(&format!("| `{}` | {} | {} |\n", o.op, o.runs_as, o.notes));
    }
    s.push_str(QUANTIZED_ONNX);
    s.push_str(
        "\n## TFLite\n\n\
         `.tflite` files are read with a reader generated from the official schema\n\
         (`cargo-medwasm/src/convert/tflite/schema.fbs`, from `tensorflow/tensorflow`\n\
         `tensorflow/compiler/mlir/lite/schema/schema.fbs` @ b6971fc8; regenerate with\n\
         `cargo install planus-cli --version 1.3.0 --locked` and\n\
         `sh cargo-medwasm/src/convert/tflite/regenerate.sh`). Main subgraph only, static\n\
         shapes (a dynamic batch dimension is fixed to 1), NHWC as in the file. Every\n\
         problem is reported at once: unsupported operators, element types (FLOAT32 and\n\
         INT8 activations; UINT8 and INT16 are refused), quantization schemes (per-axis\n\
         only on weights; `details` and sparsity refused), fused activations TANH and\n\
         SIGN_BIT, and options the converter does not handle. Float models run on the\n\
         f32 kernels; full-int8 models on TFLite's int8 reference kernels, bit for bit\n\
         with LiteRT's BUILTIN_REF (every multiplier, shift, range and table computed\n\
         at conversion; the detector's ABI stays f32, int8 inputs and outputs being\n\
         quantized and dequantized inside the model); dynamic-range models on the\n\
         hybrid kernels where LiteRT quantizes inputs symmetrically. Every quantization\n\
         scheme these kernels do not take is reported at once, with why: per-channel\n\
         activations, UINT8, asymmetric convolution weights, rescalings that overflow\n\
         int32 (TFLite leaves them undefined), LiteRT's asymmetric hybrid path.\n\
         `min_runtime_version` and signature names are recorded in the manifest.\n\n\
         | TFLite operator | runs as | supported |\n|---|---|---|\n",
    );
    for o in TFLITE_OPS {
        s.push_str(&format!("| `{}` | {} | {} |\n", o.op, o.runs_as, o.notes));
    }
    s
}

#[cfg(test)]
mod tests {
    /// `docs/ops.md` is this table; `MEDWASM_BLESS=1` rewrites it.
    #[test]
    fn docs_ops_md_is_in_sync() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ops.md");
        let want = super::markdown_table();
        if std::env::var_os("MEDWASM_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/ops.md is out of date: run `MEDWASM_BLESS=1 cargo test -p cargo-medwasm docs_ops_md`"
        );
    }
}
