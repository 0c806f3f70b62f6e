//! int8 and hybrid kernels with TFLite's reference semantics, bit for bit
//! (`/work/notes/tflite-int8-spec.md` restates them; `docs/model-format.md` lists
//! the operators). Activations are NHWC, convolution weights OHWI, depthwise
//! weights 1HWO and fully-connected weights `[units, depth]`, TFLite's own layouts:
//! channels innermost, so every inner loop is a contiguous dot product
//! ([`conv::dot`]) that a SIMD or DSP file can replace.
//!
//! Everything TFLite computes in `Prepare` (multipliers, shifts, activation ranges,
//! lookup tables, f64 FC scales) comes from the converter; these kernels only read
//! it. They are scalar, `no_std` and allocation-free; the loader has checked every
//! shape, parameter range and accumulator bound they rely on.

pub mod act;
pub mod binary;
pub mod conv;
pub mod fc;
pub mod fixed;
pub mod hybrid;
pub mod mean;
pub mod pool;
pub mod quantize;
pub mod softmax;
