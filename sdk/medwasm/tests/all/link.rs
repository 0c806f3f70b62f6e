//! What a Cortex-M detector links: a tiny `no_std` firmware per operator set is
//! built for `thumbv7em-none-eabihf` and linked with `--gc-sections` (rustc's
//! default), and its ELF symbol table and `.text` size are read. An f32 detector
//! must link no int8 kernel and an int8 one no f32 GEMM; adding the other family
//! must grow the image by what its kernels weigh.
//!
//! Needs the `thumbv7em-none-eabihf` standard library (`rustup target add
//! thumbv7em-none-eabihf`; `.ci/setup` installs it). Native only.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether this run must run every test (CI sets `CI=true`): then a missing tool
/// fails the test instead of skipping it.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

const TARGET: &str = "thumbv7em-none-eabihf";

/// A detector crate whose `OPS` is the expression `ops` and whose `interpret`
/// returns the expression `score` (an f32).
fn firmware_source(ops: &str, score: &str) -> String {
    format!(
        r#"#![no_std]
#![no_main]

use medwasm::format::OpCode;
use medwasm::ops::op_bit;

struct Probe;

impl medwasm::Detector for Probe {{
    const MODEL: &'static [u8] = &[];
    const ARENA_BYTES: usize = 16;
    const NODES: usize = 1;
    const OPERANDS: usize = 1;
    const OPS: u64 = {ops};

    fn interpret(&self, _: &medwasm::Io<'_, '_, '_>) -> Result<medwasm::Finding, medwasm::Error> {{
        Ok(medwasm::Finding {{ score: {score}, ..Default::default() }})
    }}
}}

medwasm::export_detector!(Probe = Probe);

unsafe extern "C" {{
    fn medwasm_init() -> i32;
    fn medwasm_run() -> i32;
}}

/// The entry point keeps init and run, and through them every linked kernel.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {{
    unsafe {{
        medwasm_init();
        medwasm_run();
    }}
    loop {{}}
}}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {{
    loop {{}}
}}
"#
    )
}

/// The symbol names and the `.text` size of a 32-bit little-endian ELF.
fn elf_symbols(elf: &[u8]) -> (Vec<String>, usize) {
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x01", "a 32-bit ELF");
    let (shoff, shentsize, shnum, shstrndx) =
        (u32_at(0x20), u16_at(0x2e), u16_at(0x30), u16_at(0x32));
    let section = |i: usize| {
        let at = shoff + i * shentsize;
        // name, type, offset, size, link
        (
            u32_at(at),
            u32_at(at + 4),
            u32_at(at + 16),
            u32_at(at + 20),
            u32_at(at + 24),
        )
    };
    let shstr = section(shstrndx).2;
    let cstr = |at: usize| {
        let end = elf[at..].iter().position(|&b| b == 0).unwrap() + at;
        String::from_utf8_lossy(&elf[at..end]).into_owned()
    };
    let (mut names, mut text) = (Vec::new(), 0);
    for i in 0..shnum {
        let (name, kind, offset, size, link) = section(i);
        if cstr(shstr + name) == ".text" {
            text = size;
        }
        if kind == 2 {
            // SHT_SYMTAB: 16-byte entries whose first word indexes the linked strtab.
            let strtab = section(link).2;
            for s in (offset..offset + size).step_by(16) {
                names.push(cstr(strtab + u32_at(s)));
            }
        }
    }
    (names, text)
}

/// Builds the firmware for `ops` in `dir` and returns its symbols and text size.
fn build(dir: &Path, target_dir: &Path, ops: &str) -> (Vec<String>, usize) {
    build_scoring(dir, target_dir, ops, "0.0")
}

/// As `build`, with `interpret` returning `score`.
fn build_scoring(dir: &Path, target_dir: &Path, ops: &str, score: &str) -> (Vec<String>, usize) {
    std::fs::write(dir.join("src/main.rs"), firmware_source(ops, score)).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--release", "--offline", "--target", TARGET])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the probe firmware for `{ops}` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = std::fs::read(target_dir.join(TARGET).join("release/medwasm-link-probe")).unwrap();
    elf_symbols(&elf)
}

/// Mangled-name fragments of the int8 kernels and of the f32 GEMM family.
fn has(symbols: &[String], fragment: &str) -> bool {
    symbols.iter().any(|s| s.contains(fragment))
}

#[test]
fn a_cortex_m_detector_links_only_the_kernels_of_its_operators() {
    // `rustc --print target-libdir` names the folder whether or not it exists.
    let installed = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_dir());
    if !installed {
        let why = format!(
            "the `{TARGET}` standard library is not installed (`rustup target add {TARGET}`)"
        );
        assert!(
            !in_ci(),
            "{why}; CI runs every test, so this one fails (`.ci/setup` installs it)"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sdk.join("../../target"));
    let target_dir = base.join("medwasm-link-probe");
    let dir = std::env::temp_dir().join(format!("medwasm-link-probe-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "medwasm-link-probe"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
medwasm = {{ path = "{}", default-features = false }}

[profile.release]
panic = "abort"
opt-level = "s"

[workspace]
"#,
            sdk.display()
        ),
    )
    .unwrap();
    // The workspace's lock, so the probe resolves the same `libm` without the network.
    std::fs::copy(sdk.join("../../Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let int8_kernel = "7kernels4int8";
    let gemm = "7kernels4gemm";
    let f32_conv = "7kernels4conv4conv";
    let all_int8 = "{ let mut b = 0; let mut k = 13; while k <= 30 { b |= 1u64 << k; k += 1 } b }";
    let kws = "op_bit(OpCode::QConv) | op_bit(OpCode::QDepthwiseConv) | op_bit(OpCode::QAveragePool) \
               | op_bit(OpCode::QFullyConnected) | op_bit(OpCode::QSoftmax) | op_bit(OpCode::Copy) \
               | op_bit(OpCode::Quantize) | op_bit(OpCode::Dequantize)";
    let f32_ops = "op_bit(OpCode::Gemm) | op_bit(OpCode::Binary)";

    let (f32_syms, f32_text) = build(&dir, &target_dir, f32_ops);
    let (mixed_syms, mixed_text) = build(&dir, &target_dir, &format!("{f32_ops} | {all_int8}"));
    let (kws_syms, kws_text) = build(&dir, &target_dir, kws);
    let (kws_f32_syms, kws_f32_text) = build(
        &dir,
        &target_dir,
        &format!("{kws} | {f32_ops} | op_bit(OpCode::Conv)"),
    );
    // A detector that filters with a designed Butterworth band-pass; the rate goes
    // through `black_box` so the design is not folded away at compile time.
    let dsp_score = "{ use medwasm::dsp::{Band, Butterworth, SosFilter}; \
        let spec = Butterworth { band: Band::BandPass { low_hz: 5.0, high_hz: 15.0 }, order: 2, \
        fs_hz: core::hint::black_box(360.0) }; \
        match SosFilter::<2>::butterworth(&spec) { Ok(mut f) => f.push(core::hint::black_box(1.0)), Err(_) => -1.0 } }";
    let (dsp_syms, dsp_text) = build_scoring(&dir, &target_dir, f32_ops, dsp_score);
    // The same filter from coefficients designed elsewhere (on the host at build
    // time): no f64 design, no `libm` trigonometry.
    let sos_score = "{ let sos = core::hint::black_box([[0.0068f32, 0.0135, 0.0068, 1.0, -1.79, 0.84], \
        [1.0, -2.0, 1.0, 1.0, -1.92, 0.93]]); \
        match medwasm::dsp::SosFilter::<2>::new(&sos) { Ok(mut f) => f.push(core::hint::black_box(1.0)), Err(_) => -1.0 } }";
    let (sos_syms, sos_text) = build_scoring(&dir, &target_dir, f32_ops, sos_score);
    let _ = std::fs::remove_dir_all(&dir);

    // The DSP blocks are linked only by a detector that uses them.
    let dsp = "7medwasm3dsp";
    assert!(has(&dsp_syms, dsp), "the DSP probe links no DSP code");
    assert!(
        !has(&sos_syms, "6design"),
        "a filter from given coefficients links the design"
    );
    assert!(
        sos_text < dsp_text,
        "from coefficients {sos_text}, designed {dsp_text}"
    );
    for (what, syms) in [
        ("f32", &f32_syms),
        ("int8", &kws_syms),
        ("mixed", &mixed_syms),
    ] {
        assert!(!has(syms, dsp), "the {what} detector links DSP code");
    }
    assert!(
        dsp_text > f32_text + 1_000,
        "f32 {f32_text}, with a Butterworth filter {dsp_text}"
    );

    // The symbols are there when the operators are (so their absence means something).
    assert!(has(&f32_syms, gemm) && has(&mixed_syms, int8_kernel) && has(&kws_f32_syms, f32_conv));
    assert!(
        !has(&f32_syms, int8_kernel),
        "an f32 detector links int8 kernels"
    );
    assert!(
        !has(&kws_syms, gemm) && !has(&kws_syms, f32_conv),
        "an int8 detector links the f32 GEMM"
    );
    // And each family weighs what its kernels weigh (bytes of .text, measured
    // 43 KiB for every int8 operator and 10 KiB for GEMM and the f32 Conv).
    assert!(
        mixed_text > f32_text + 20_000,
        "f32 {f32_text}, with int8 {mixed_text}"
    );
    assert!(
        kws_f32_text > kws_text + 4_000,
        "int8 {kws_text}, with f32 {kws_f32_text}"
    );
    eprintln!(
        "{TARGET} .text: f32 (Gemm, Binary) {f32_text} B, + every int8 op {mixed_text} B; \
         kws_int8's ops {kws_text} B, + Gemm, Binary, Conv {kws_f32_text} B; \
         f32 + a designed Butterworth band-pass {dsp_text} B, + the same from coefficients {sos_text} B"
    );
}
