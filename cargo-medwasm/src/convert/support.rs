//! The operator support table: one source for the converter's check, `cargo medwasm
//! ops` and `docs/ops.md` (a test keeps the doc in sync).

/// One supported ONNX operator.
#[derive(Debug, Clone, Copy)]
pub struct OpSupport {
    /// ONNX op type.
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

/// True if the converter knows `op`.
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
