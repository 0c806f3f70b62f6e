//! Links with this folder's `link.x` (memory map of the QEMU `mps2-an386` and
//! `mps2-an500` boards).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo::rustc-link-search={dir}");
    println!("cargo::rustc-link-arg=-Tlink.x");
    println!("cargo::rerun-if-changed=link.x");
    println!("cargo::rerun-if-env-changed=MEDWASM_MCU_CASES");
    println!("cargo::rerun-if-env-changed=MEDWASM_MCU_DSP");
}
