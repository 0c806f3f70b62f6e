//! The parser of the MCU test firmware's report (what `bench --target mcu` reads
//! from QEMU's semihosting output), against a fixed manifest.
#![no_main]

use std::sync::LazyLock;

use cargo_medwasm::manifest::Manifest;

static MANIFEST: LazyLock<Manifest> = LazyLock::new(medwasm_fuzz::report_manifest);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = cargo_medwasm::targets::mcu::parse_report(&text, &MANIFEST);
});
