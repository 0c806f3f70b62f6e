//! The battery's kernel cases on a Cortex-M4 and a Cortex-M7 in QEMU: random
//! conv, depthwise and fully connected layers, LiteRT's own int8 and hybrid
//! fixtures and the model-shaped stacks, as blobs with the outputs computed here
//! (by the reference kernels, LiteRT, or this build's runtime for the stacks),
//! are compiled into a small `no_std` firmware (`tests/mcu-battery`) that runs
//! each with the kernels it builds for `thumbv7em` — the DSP ones — and reports
//! every output that differs by a single bit. It also runs the DSP blocks'
//! cases (`dsp::mcu_bundle`: every block, and Butterworth designs in software f64)
//! and reports the CRC-32 of each output, which must be the host's. The firmware's runs are counted to
//! the instruction by the project's QEMU plugin (`targets/mcu/qemu-plugin`), after
//! the same calibration `bench --target mcu` checks.
//!
//! With `MEDWASM_MCU_BENCH=1` the test also builds the firmware with TFLite's
//! reference loops (`--cfg medwasm_reference_kernels`) and prints both counts per
//! case and per multiply-accumulate: the figures of `docs/benchmarks.md`.
//!
//! Needs the `thumbv7em-none-eabihf` standard library, `qemu-system-arm` with
//! plugin support (QEMU 7.2 to 8.2, Debian 12's) and a C linker for the plugin
//! (`.ci/setup` installs them all). Native only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::fast::{self, BlobCase};
use super::{litert, stacks};

const TARGET: &str = "thumbv7em-none-eabihf";
/// QEMU machine and `-C target-cpu` of each board the cases run on.
const BOARDS: [(&str, &str); 2] = [("mps2-an386", "cortex-m4"), ("mps2-an500", "cortex-m7")];
/// The firmware's limits (`tests/mcu-battery/src/main.rs`).
const ARENA_BYTES: usize = 512 * 1024;
const STEPS: usize = 64;
const OPERANDS: usize = 512;
/// Its calibration loop.
const CALIBRATION_LOOPS: u64 = 10_000;
/// Longest one QEMU run may take.
const TIMEOUT: Duration = Duration::from_secs(600);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// What is missing to run the firmware, if anything.
fn missing() -> Option<String> {
    let installed = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_dir());
    if !installed {
        return Some(format!(
            "the `{TARGET}` standard library is not installed (`rustup target add {TARGET}`)"
        ));
    }
    let qemu = Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !qemu {
        return Some(
            "`qemu-system-arm` is not installed (`sudo apt-get install qemu-system-arm`)".into(),
        );
    }
    let cc = Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !cc {
        return Some(
            "no C linker `cc` to build the QEMU plugin (`sudo apt-get install gcc`)".into(),
        );
    }
    None
}

/// The cases file the firmware includes (format in its `main.rs`).
fn bundle(cases: &[BlobCase]) -> Vec<u8> {
    let pad = |v: &mut Vec<u8>| v.resize(v.len().next_multiple_of(16), 0);
    let mut out = b"MWKC".to_vec();
    for w in [1, cases.len() as u32, 0] {
        out.extend(w.to_le_bytes());
    }
    for c in cases {
        let blob = medwasm::AlignedBuf::from_bytes(&c.blob);
        let model = medwasm::Model::load(blob.as_slice()).unwrap();
        let plan = medwasm::PlanSize::of(&model);
        assert!(
            model.arena_bytes() <= ARENA_BYTES && plan.steps <= STEPS && plan.operands <= OPERANDS,
            "{} does not fit the firmware's arena or plan",
            c.name
        );
        for w in [c.blob.len(), c.input.len(), c.want.len(), 0] {
            out.extend((w as u32).to_le_bytes());
        }
        for part in [&c.blob, &c.input, &c.want] {
            out.extend(part.iter());
            pad(&mut out);
        }
    }
    out
}

/// Builds the firmware for `cpu` with `cases_file` compiled in; returns the ELF.
fn firmware(
    base: &Path,
    cpu: &str,
    reference: bool,
    cases_file: &Path,
    dsp_file: &Path,
) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcu-battery");
    let kind = if reference { "-reference" } else { "" };
    let target_dir = base.join(format!("mcu-battery-{cpu}{kind}"));
    let mut flags = format!("-C target-cpu={cpu}");
    if reference {
        flags.push_str(" --cfg medwasm_reference_kernels");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--offline",
            "--locked",
            "--target",
            TARGET,
        ])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", &flags)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("MEDWASM_MCU_CASES", cases_file)
        .env("MEDWASM_MCU_DSP", dsp_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the battery firmware ({cpu}{kind}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join(TARGET).join("release/medwasm-mcu-battery")
}

/// The project's instruction-counting QEMU plugin, built for this machine.
fn plugin(base: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../targets/mcu/qemu-plugin/lib.rs");
    let library = base.join("libmedwasm_mcu_icount.so");
    let out = Command::new("rustc")
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "cdylib",
            "-O",
            "-C",
            "panic=abort",
        ])
        .arg(&source)
        .arg("-o")
        .arg(&library)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the QEMU plugin failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    library
}

/// The address of each of `names` in a 32-bit little-endian ELF's symbol table.
fn symbols(elf: &[u8], names: &[&str]) -> Vec<u64> {
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x01", "a 32-bit ELF");
    let (shoff, shentsize, shnum) = (u32_at(0x20), u16_at(0x2e), u16_at(0x30));
    let cstr = |at: usize| {
        let end = elf[at..].iter().position(|&b| b == 0).unwrap() + at;
        String::from_utf8_lossy(&elf[at..end]).into_owned()
    };
    let mut found = vec![None; names.len()];
    for i in 0..shnum {
        let at = shoff + i * shentsize;
        if u32_at(at + 4) != 2 {
            continue; // SHT_SYMTAB only
        }
        let (offset, size, link) = (u32_at(at + 16), u32_at(at + 20), u32_at(at + 24));
        let strtab = u32_at(shoff + link * shentsize + 16);
        for s in (offset..offset + size).step_by(16) {
            let name = cstr(strtab + u32_at(s));
            if let Some(k) = names.iter().position(|&n| n == name) {
                // Thumb functions carry bit 0; the instruction is at the even address.
                found[k] = Some(u32_at(s + 4) as u64 & !1);
            }
        }
    }
    found
        .into_iter()
        .zip(names)
        .map(|(a, n)| a.unwrap_or_else(|| panic!("no `{n}` in the firmware")))
        .collect()
}

/// Runs `elf` on `machine` with the plugin; returns its report lines and counts.
fn qemu(elf: &Path, machine: &str, library: &Path, dir: &Path) -> (Vec<String>, Vec<u64>, bool) {
    let bytes = std::fs::read(elf).unwrap();
    let at = symbols(
        &bytes,
        &["medwasm_firmware_count_begin", "medwasm_firmware_count_end"],
    );
    let counts = dir.join("medwasm-counts.txt");
    let _ = std::fs::remove_file(&counts);
    let child = Command::new("qemu-system-arm")
        .args(["-machine", machine, "-display", "none", "-monitor", "none"])
        .args([
            "-serial",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
        ])
        .arg("-kernel")
        .arg(elf)
        .arg("-plugin")
        .arg(format!(
            "file={},begin={:#x},end={:#x},out=medwasm-counts.txt",
            library.display().to_string().replace(',', ",,"),
            at[0],
            at[1]
        ))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the output while QEMU runs (a full pipe would stall it), with a deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    let id = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(TIMEOUT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("the firmware did not finish on {machine} in {TIMEOUT:?}");
        }
    };
    let status = out.status;
    // QEMU writes the semihosting console to stderr when stdout is not a terminal;
    // its own diagnostics, if any, come there too and end up in a failure's report.
    let lines = [&out.stdout, &out.stderr]
        .iter()
        .flat_map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let text = std::fs::read_to_string(&counts).unwrap_or_default();
    let mut it = text.lines();
    assert_eq!(
        it.next(),
        Some("medwasm-icount 1"),
        "the plugin wrote {text:?}"
    );
    let counts = it
        .map(|l| l.strip_prefix("count ").expect(l).parse().unwrap())
        .collect();
    (lines, counts, status.success())
}

/// Per case: whether it passed and its instructions (the run alone); per DSP
/// record, its instructions. `kernels`: the int8 sums the firmware must report it
/// runs.
fn run_battery(
    elf: &Path,
    machine: &str,
    kernels: &str,
    library: &Path,
    dir: &Path,
    cases: &[BlobCase],
    dsp: &[(String, u32, usize)],
) -> (Vec<(bool, Option<u64>)>, Vec<u64>) {
    let (lines, counts, exited_ok) = qemu(elf, machine, library, dir);
    let report = lines.join("\n");
    assert_eq!(
        lines.first().map(String::as_str),
        Some("medwasm-mcu-battery 1"),
        "{report}"
    );
    // A build that fell back to other kernels would pass without testing these.
    assert_eq!(
        lines.get(1).map(String::as_str),
        Some(format!("kernels {kernels}").as_str()),
        "{report}"
    );
    // The counter's calibration, as `bench --target mcu` checks it: the markers
    // alone count 2, the loop exactly its instructions.
    assert!(counts.len() >= 2, "{report}");
    assert_eq!(counts[0], 2, "the markers alone");
    assert_eq!(counts[1], 2 * CALIBRATION_LOOPS + 2, "the calibration loop");
    // A counted section adds its markers (2) and the `bl` to `run_case` (1).
    let mut counted = counts[2..].iter().map(|&n| n - 3);
    let mut results = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("case {i} ")))
            .unwrap_or_else(|| {
                panic!(
                    "no report for case {i} ({}) on {machine}:\n{report}",
                    c.name
                )
            });
        let ran =
            line.ends_with(" ok") || line.contains(" mismatch ") || line.contains(" error run ");
        results.push((
            line.ends_with(" ok"),
            if ran { counted.next() } else { None },
        ));
    }
    // Then one section per DSP record, its markers (2) around the block's work.
    let dsp_counts: Vec<u64> = counted.by_ref().take(dsp.len()).map(|n| n + 1).collect();
    assert_eq!(counted.next(), None, "more counted sections than runs");
    let failed: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("case ") && !l.ends_with(" ok"))
        .map(|l| {
            let i: usize = l.split(' ').nth(1).unwrap().parse().unwrap();
            format!("{l} ({})", cases[i].name)
        })
        .collect();
    // The DSP blocks: the CRC-32 of each output, as this machine computed it.
    let mut failed = failed;
    assert_eq!(
        dsp_counts.len(),
        dsp.len(),
        "a counted section per DSP record"
    );
    for (i, (name, crc, _)) in dsp.iter().enumerate() {
        let want = format!("dsp {i} {crc:08x}");
        if !lines.contains(&want) {
            let got = lines.iter().find(|l| l.starts_with(&format!("dsp {i} ")));
            failed.push(format!("{want} ({name}): the board says {got:?}"));
        }
    }
    assert!(
        failed.is_empty() && exited_ok,
        "on {machine}, cases failed:\n{}\n{report}",
        failed.join("\n")
    );
    (results, dsp_counts)
}

#[test]
fn the_kernel_battery_is_bit_identical_on_cortex_m4_and_m7() {
    if let Some(why) = missing() {
        assert!(!in_ci(), "{why}; CI runs every test, so this one fails");
        eprintln!("skipped: {why}");
        return;
    }
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = base.join("mcu-battery-run");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cases = fast::cases(90);
    cases.extend(litert::cases());
    cases.extend(stacks::kws());
    cases.extend(stacks::resnet());
    let cases_file = dir.join("cases.bin");
    std::fs::write(&cases_file, bundle(&cases)).unwrap();
    let (dsp_records, dsp_crcs) = super::dsp::mcu_bundle();
    let dsp_file = dir.join("dsp.bin");
    std::fs::write(&dsp_file, dsp_records).unwrap();
    let library = plugin(&dir);
    let mut dsp = Vec::new();
    let mut dsp_m4 = Vec::new();
    for (machine, cpu) in BOARDS {
        let elf = firmware(&base, cpu, false, &cases_file, &dsp_file);
        let (results, dsp_counts) =
            run_battery(&elf, machine, "dsp", &library, &dir, &cases, &dsp_crcs);
        eprintln!(
            "{machine} ({cpu}): {} kernel cases and {} DSP block cases bit-identical",
            results.len(),
            dsp_crcs.len()
        );
        if cpu == "cortex-m4" {
            dsp = results;
            dsp_m4 = dsp_counts;
        }
    }
    let bench = std::env::var("MEDWASM_MCU_BENCH").is_ok_and(|v| v == "1");
    let reference = bench.then(|| {
        let elf = firmware(&base, "cortex-m4", true, &cases_file, &dsp_file);
        run_battery(
            &elf,
            BOARDS[0].0,
            "reference",
            &library,
            &dir,
            &cases,
            &dsp_crcs,
        )
        .0
    });
    // Instructions per input sample of the DSP blocks on the M4 (docs/dsp.md).
    eprintln!("DSP record | samples | instructions | per sample");
    for ((name, _, samples), n) in dsp_crcs.iter().zip(&dsp_m4) {
        if !name.starts_with("design") {
            eprintln!(
                "{name} | {samples} | {n} | {:.1}",
                *n as f64 / *samples as f64
            );
        }
    }
    let designs: Vec<(&String, u64)> = dsp_crcs
        .iter()
        .zip(&dsp_m4)
        .filter(|((name, _, _), _)| name.starts_with("design"))
        .map(|((name, _, _), &n)| (name, n))
        .collect();
    let (least, most) = (
        designs.iter().min_by_key(|d| d.1).unwrap(),
        designs.iter().max_by_key(|d| d.1).unwrap(),
    );
    eprintln!(
        "Butterworth designs in software f64: {} instructions ({}) to {} ({})",
        least.1, least.0, most.1, most.0
    );
    for (name, n) in &designs {
        if name.contains("BandPass { low_hz: 0.5, high_hz: 40.0 } order 2") {
            eprintln!("{name}: {n} instructions");
        }
    }
    // Instructions per multiply-accumulate of the model-shaped layers on the M4.
    eprintln!("case | MACs | reference instr | reference instr/MAC | DSP instr | DSP instr/MAC");
    for (i, c) in cases.iter().enumerate() {
        if !(c.name.starts_with("kws") || c.name.starts_with("resnet")) {
            continue;
        }
        let per = |n: Option<u64>| {
            n.map_or("-".into(), |n| {
                format!("{} | {:.3}", n, n as f64 / c.macs as f64)
            })
        };
        let r = reference.as_ref().map_or("- | -".into(), |r| per(r[i].1));
        eprintln!("{} | {} | {r} | {}", c.name, c.macs, per(dsp[i].1));
    }
}
