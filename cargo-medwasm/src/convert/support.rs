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

/// Every ONNX operator the converter accepts (default domain, float32).
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
        op: "DequantizeLinear",
        runs_as: "folded",
        notes: "on constant weights only, per tensor or per axis (dynamic-range models); `block_size` not supported; int8 execution comes later",
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

/// True if the converter knows ONNX `op`.
pub fn is_supported(op: &str) -> bool {
    OPS.iter().any(|o| o.op == op)
}

/// The table as Markdown (the body of `docs/ops.md`).
pub fn markdown_table() -> String {
    let mut s = String::from(
        "# Operator support\n\n\
         Generated from `cargo-medwasm/src/convert/support.rs` (`cargo medwasm ops`); a test\n\
         keeps this file in sync. Default ONNX domain, float32 tensors, rank ≤ 6, static\n\
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
