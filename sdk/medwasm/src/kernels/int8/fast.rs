//! The build's fastest int8 sums: [`Fast`], the best [`super::mac::Mac`]
//! primitives this target has (wasm `simd128`, the Cortex-M DSP ones, or plain
//! Rust), and [`Best`], the loops every int8 and hybrid kernel takes its sums from.
//! Chosen here once, above both the primitives and the loops, so neither needs the
//! other's choice.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use super::mac_simd128::Simd128 as Fast;

#[cfg(all(
    medwasm_dsp,
    not(all(target_arch = "wasm32", target_feature = "simd128"))
))]
pub use super::mac_dsp::Dsp as Fast;

/// The fastest primitives this build has.
#[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), medwasm_dsp)))]
pub use super::mac::Scalar as Fast;

/// The sums the kernels use: the blocked loops over the build's fastest primitives.
#[cfg(not(medwasm_reference_kernels))]
pub type Best = super::acc::Blocked<Fast>;

/// The sums the kernels use: built with `--cfg medwasm_reference_kernels`, TFLite's
/// reference loops, for measuring what the fast ones gain.
#[cfg(medwasm_reference_kernels)]
pub type Best = super::acc::Reference;
