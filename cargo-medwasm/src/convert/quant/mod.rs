//! TFLite's `Prepare` arithmetic for the int8 operators, computed on the host so the
//! `no_std` runtime never does: fixed-point multipliers and shifts
//! ([`quantize_multiplier`]), activation ranges, lookup tables, the f64 scales of
//! LiteRT's fully connected layer, and each operator's parameter set.
//!
//! Every function reproduces upstream's order of f32 and f64 operations, because a
//! multiplier one unit off changes outputs by a quantization step
//! (`/work/notes/tflite-int8-spec.md` §1–§7 restates the sources; LiteRT's
//! `quantization_util.cc`, `kernel_util.cc` and the kernels' `Prepare`). The SDK's
//! tests compute the same parameters independently and are checked against LiteRT's
//! own outputs; the conformance suite checks this module the same way, end to end.
//! A parameter the runtime cannot take (a shift out of range, a multiplier that
//! upstream only accepts by undefined behaviour) is an `Err` whose message says why.

mod fixed;
mod params;

pub use fixed::Multiplier;
pub use params::{
    LutKind, act_range, add_params, conv_multipliers, fc_litert_scales, fc_tflm_multipliers,
    hard_swish_params, leaky_relu_params, lut, mean_multiplier, mul_multiplier, relu_multiplier,
    requantize_multiplier, softmax_params,
};
