//! Tells the SDK which fast kernels its target can run: `medwasm_dsp` on the
//! Cortex-M4/M7 targets (`thumbv7em-*`, Armv7E-M, whose DSP extension has the dual
//! 16-bit multiply-accumulates the int8 kernels use). Stable Rust has no `cfg` for
//! the `dsp` target feature, and the Cortex-M3 targets (`thumbv7m-*`) lack it.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(medwasm_dsp)");
    // Set by hand (`RUSTFLAGS="--cfg medwasm_reference_kernels"`) to run the int8
    // kernels on TFLite's reference loops, for measuring what the fast ones gain.
    println!("cargo::rustc-check-cfg=cfg(medwasm_reference_kernels)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em-") {
        println!("cargo::rustc-cfg=medwasm_dsp");
    }
}
