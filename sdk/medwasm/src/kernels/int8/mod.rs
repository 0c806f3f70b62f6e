//! int8 and hybrid kernels with TFLite's reference semantics, bit for bit
//! (`/work/notes/tflite-int8-spec.md` restates them; `docs/model-format.md` lists
//! the operators). Activations are NHWC, convolution weights OHWI, depthwise
//! weights 1HWO and fully-connected weights `[units, depth]`, TFLite's own layouts:
//! channels innermost, so every inner loop is a contiguous dot product.
//!
//! The convolution and fully connected families take their integer sums from
//! [`acc`]: TFLite's reference loops (`*_ref`), or loops blocked over output
//! channels that run the [`mac::Mac`] primitives of the build's instruction set
//! (plain Rust, wasm `simd128` or the Cortex-M4/M7 DSP extension), with the same
//! sums bit for bit.
//!
//! Everything TFLite computes in `Prepare` (multipliers, shifts, activation ranges,
//! lookup tables, f64 FC scales) comes from the converter; these kernels only read
//! it. They are `no_std` and allocation-free; the loader has checked every shape,
//! parameter range and accumulator bound they rely on.

pub mod acc;
pub mod act;
pub mod binary;
pub mod conv;
pub mod fast;
pub mod fc;
pub mod fixed;
pub mod hybrid;
pub mod mac;
pub mod mean;
pub mod pool;
pub mod quantize;
pub mod requant;
pub mod softmax;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod mac_simd128;

#[cfg(all(
    medwasm_dsp,
    not(all(target_arch = "wasm32", target_feature = "simd128"))
))]
mod mac_dsp;
