//! Normalization: inference-mode BatchNormalization, as a per-channel affine map the
//! passes fold into the preceding Conv/Gemm or lower to Mul + Add.

use super::{Cx, OnnxNode, OpDef, R, shape_err, unsupported};
use crate::convert::ir::Op;

pub(super) const OPS: &[OpDef] = &[OpDef {
    op: "BatchNormalization",
    // `momentum` only updates running statistics when training; `is_test` and
    // `consumed_inputs` are opset < 7 hints without effect at inference.
    attrs: &[
        "epsilon",
        "momentum",
        "training_mode",
        "spatial",
        "is_test",
        "consumed_inputs",
    ],
    translate: batch_normalization,
}];

fn batch_normalization(cx: &mut Cx, n: &OnnxNode<'_>) -> R<()> {
    let a = &n.attrs;
    n.only_first_output()?;
    if a.int("training_mode")?.unwrap_or(0) != 0 {
        return unsupported("`training_mode=1` is not supported (inference only)");
    }
    // Opset < 9: `spatial=0` means one parameter per element, not per channel.
    if a.int("spatial")?.unwrap_or(1) == 0 {
        return unsupported("`spatial=0` (per-element parameters) is not supported");
    }
    let x = n.input(0, "X")?;
    let eps = a.float("epsilon")?.unwrap_or(1e-5);
    let mut vals = vec![];
    for (k, what) in [(1, "scale"), (2, "B"), (3, "mean"), (4, "var")] {
        let id = n.input(k, what)?;
        match cx.t(id).f32s() {
            Some(v) => vals.push(v.to_vec()),
            None => return unsupported(format!("`{what}` must be constant")),
        }
    }
    let dims = cx.t(x).dims.clone();
    let c = *dims.get(1).unwrap_or(&1);
    if vals.iter().any(|v| v.len() != c) {
        return shape_err(format!("parameters do not have {c} channels"));
    }
    let scale: Vec<f32> = (0..c)
        .map(|i| vals[0][i] / (vals[3][i] + eps).sqrt())
        .collect();
    let shift: Vec<f32> = (0..c).map(|i| vals[1][i] - vals[2][i] * scale[i]).collect();
    cx.emit(n, Op::ChannelAffine { scale, shift }, vec![Some(x)], dims)?;
    Ok(())
}
