//! The microcontroller target (`--target mcu`): the detector built `no_std`, without
//! an allocator, for `thumbv7em-none-eabihf` (Cortex-M4F/M7), as a test firmware
//! ELF and as a static library with a C header, with a memory report of the linked
//! image against the board's budget. Boards are data (`targets/boards/*.toml`).
//!
//! `docs/mcu.md` is the user-facing description.

mod artifacts;
pub mod board;
mod firmware;
pub mod memory;
mod plugin;
mod qemu;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use self::artifacts::{BOARD_FILE, MANIFEST_FILE, MEMORY_FILE, VECTORS_FILE, read_memory};
use self::board::{Board, DEFAULT_BOARD};
use crate::artifact::{BuildOutput, Embedded, shown};
use crate::files::write_if_changed;
use crate::manifest::Manifest;
use crate::prereq::{self, Check, Probe, probe};
use crate::project::Project;
use crate::protocol::{Execution, Job, Progress};
use crate::report::Size;
use crate::targets::target::Target;
use crate::toolchain::{Rustc, TargetSpec};
use crate::ui::Ui;

pub use self::firmware::TRIPLE;
pub use self::qemu::{QEMU, qemu_command, run_with_timeout};

/// The target's Rust facts.
pub const SPEC: TargetSpec = TargetSpec {
    name: "mcu",
    triple: TRIPLE,
    // The CPU comes from the board file and the linker script from the generated
    // firmware crate (`firmware.rs`).
    rustflags: &[],
    purpose: "`cargo medwasm build --target mcu`",
    buildable: true,
};

/// Cortex-M4F/M7 firmware and static library, run under QEMU.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mcu;

impl Target for Mcu {
    fn name(&self) -> &'static str {
        SPEC.name
    }

    fn about(&self) -> &'static str {
        "Cortex-M4F/M7 firmware and static library with a C header (`--board`; see docs/mcu.md); benched in QEMU, counting instructions"
    }

    fn spec(&self) -> &'static TargetSpec {
        &SPEC
    }

    fn build(&self, project: &Project, release: bool, ui: &Ui) -> Result<BuildOutput> {
        build(project, release, ui)
    }

    fn summary(&self, built: &BuildOutput) -> Result<String> {
        summary(built)
    }

    fn open(&self, project: &Project, path: &Path) -> Result<BuildOutput> {
        open(project, path)
    }

    fn unavailable(&self) -> Option<String> {
        qemu::unavailable()
    }

    fn execute(&self, job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution> {
        qemu::execute(job, progress)
    }

    fn checks(&self, sysroot: Option<&Path>) -> Vec<Check> {
        let qemu = probe(QEMU, &["--version"]);
        let found = matches!(qemu, Probe::Ran(_));
        let mut checks = vec![prereq::rust_target(&SPEC, sysroot), check_qemu(qemu)];
        // Only a QEMU that runs can be asked about plugins.
        if found {
            checks.push(check_qemu_plugins(qemu::plugins_missing()));
        }
        checks.push(check_cc(which::which("cc").is_ok()));
        checks.push(check_arm_gcc(probe("arm-none-eabi-gcc", &["--version"])));
        checks
    }
}

/// The doctor's check of a `qemu-system-arm --version` probe.
pub fn check_qemu(probe: Probe) -> Check {
    const NAME: &str = QEMU;
    match probe {
        Probe::Ran(version) => Check::ok(NAME, version),
        Probe::NotFound | Probe::Failed(_) => Check::missing(
            NAME,
            false,
            "runs `cargo medwasm bench --target mcu`",
            "apt-get install qemu-system-arm",
        ),
    }
}

/// The doctor's check of QEMU's TCG plugin support: `unsupported` is why it has none
/// (from [`qemu::plugins_missing`]).
pub fn check_qemu_plugins(unsupported: Option<String>) -> Check {
    const NAME: &str = "qemu TCG plugins";
    match unsupported {
        None => Check::ok(
            NAME,
            "count instructions in `cargo medwasm bench --target mcu`",
        ),
        Some(_) => Check::missing(
            NAME,
            false,
            "count instructions in `cargo medwasm bench --target mcu`; this QEMU has none",
            "install a QEMU built with plugin support (plugin API 1: QEMU 7.2 to 8.2), e.g. Debian 12's `apt-get install qemu-system-arm`",
        ),
    }
}

/// The doctor's check of the C linker `cc`, found on `PATH` or not.
pub fn check_cc(found: bool) -> Check {
    const NAME: &str = "cc";
    const WHAT: &str = "links the instruction-counting QEMU plugin of `bench --target mcu`";
    if found {
        Check::ok(NAME, WHAT)
    } else {
        Check::missing(NAME, false, WHAT, "apt-get install gcc")
    }
}

/// The doctor's check of an `arm-none-eabi-gcc --version` probe.
pub fn check_arm_gcc(probe: Probe) -> Check {
    const NAME: &str = "arm-none-eabi-gcc";
    match probe {
        Probe::Ran(version) => Check::ok(NAME, version),
        Probe::NotFound | Probe::Failed(_) => Check::missing(
            NAME,
            false,
            "builds the C example of `--target mcu` against its static library",
            "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
        ),
    }
}

const HEADER_TEMPLATE: &str = include_str!("../../../../targets/mcu/detector.h");
const EXAMPLE_MAIN: &str = include_str!("../../../../targets/mcu/c-example/main.c");
const EXAMPLE_STARTUP: &str = include_str!("../../../../targets/mcu/c-example/startup.c");
const EXAMPLE_LINK: &str = include_str!("../../../../targets/mcu/c-example/link.ld");

/// The board for `project`: `--board` (already merged into the metadata by the
/// command), else `board` in `[package.metadata.medwasm]`, else the default.
pub fn board(project: &Project) -> Result<Board> {
    let name = project.metadata.board.as_deref().unwrap_or(DEFAULT_BOARD);
    // A relative board file is relative to the project, like every other path in
    // its metadata.
    if name.ends_with(".toml") && Path::new(name).is_relative() {
        let in_project = project.root.join(name);
        if in_project.exists() {
            return Board::from_file(&in_project);
        }
    }
    Board::resolve(name)
}

/// `target/medwasm/mcu/<board>/<package>/`: a folder per package, because one
/// `CARGO_TARGET_DIR` may serve several detectors.
pub fn artifact_dir(project: &Project, board: &Board) -> PathBuf {
    project
        .artifact_dir(SPEC.name)
        .join(&board.name)
        .join(&project.name)
}

/// Builds the firmware and the static library, checks the memory budget, and puts
/// the artifacts in `target/medwasm/mcu/<board>/<package>/`.
pub fn build(project: &Project, release: bool, ui: &Ui) -> Result<BuildOutput> {
    let board = board(project)?;
    Rustc::in_dir(&project.root).require_target(&SPEC)?;
    let embedded = Embedded::for_build(project, SPEC.name, release)?;

    let dir = artifact_dir(project, &board);
    let compiled = firmware::build(&dir.join("build"), project, &board, release, ui)?;
    let elf = std::fs::read(&compiled.elf)
        .with_context(|| format!("cannot read cargo's output `{}`", compiled.elf.display()))?;
    let report = memory::analyze(&elf, &board, embedded.manifest.blob_bytes)?;
    report.check_budget()?;

    let crate_name = project.crate_name();
    let artifact = dir.join(format!("{crate_name}.elf"));
    write_if_changed(&artifact, &elf)?;
    let lib = std::fs::read(&compiled.staticlib).with_context(|| {
        format!(
            "cannot read cargo's output `{}`",
            compiled.staticlib.display()
        )
    })?;
    write_if_changed(&dir.join(format!("lib{crate_name}.a")), &lib)?;
    write_if_changed(
        &dir.join(format!("{crate_name}.h")),
        header(&crate_name, &embedded.manifest).as_bytes(),
    )?;
    write_example(&dir.join("example"), &crate_name, &board)?;
    let board_toml = toml::to_string(&board).context("cannot serialize the board")?;
    write_if_changed(&dir.join(BOARD_FILE), board_toml.as_bytes())?;
    let memory_json =
        serde_json::to_vec_pretty(&report).context("cannot serialize the memory report")?;
    write_if_changed(&dir.join(MEMORY_FILE), &memory_json)?;
    let build_json =
        serde_json::to_vec_pretty(&embedded).context("cannot serialize the build manifest")?;
    write_if_changed(&dir.join(MANIFEST_FILE), &build_json)?;
    match stored_vectors(project, &embedded.manifest)? {
        Some(cases) => {
            let runs = project.runs(None)?;
            let bytes = crate::vectors::encode_binary(&embedded.manifest.inputs, &cases, runs);
            write_if_changed(&dir.join(VECTORS_FILE), &bytes)?;
        }
        None => ui.note(format!(
            "no stored test vectors, so no `{VECTORS_FILE}` for the firmware; `cargo medwasm bench --target mcu` needs them"
        )),
    }

    Ok(BuildOutput {
        artifact,
        size: flash_size(&report),
        embedded,
    })
}

/// The artifact's size: what the image puts in flash, split into code and weights.
fn flash_size(report: &memory::MemoryReport) -> Size {
    let flash = report.flash();
    Size {
        total: flash,
        code: flash - report.weights,
        weights: report.weights,
        metadata: 0,
    }
}

/// A firmware ELF built earlier, in the folder `build` wrote it to: its build record
/// (`manifest.json`), board and memory report are read from beside it.
pub fn open(project: &Project, path: &Path) -> Result<BuildOutput> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let is_elf = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut magic = [0u8; 4];
            std::io::Read::read_exact(&mut f, &mut magic).map(|()| magic)
        })
        .is_ok_and(|magic| magic == *b"\x7fELF");
    if !is_elf {
        bail!(
            "`{}` is not an ELF file; pass the firmware ELF of `cargo medwasm build --target mcu` (`target/medwasm/mcu/<board>/<package>/<crate>.elf`)",
            path.display()
        );
    }
    let record = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&record).with_context(|| {
        format!(
            "`{}` has no build record `{MANIFEST_FILE}` beside it; bench the folder `cargo medwasm build --target mcu` wrote, as it is",
            path.display()
        )
    })?;
    let embedded: Embedded = serde_json::from_slice(&text).with_context(|| {
        format!(
            "`{}` is not a build record; rebuild with `cargo medwasm build --target mcu`",
            record.display()
        )
    })?;
    embedded.check_matches(path, project, SPEC.name)?;
    let report = read_memory(dir)?;
    Ok(BuildOutput {
        artifact: path.to_path_buf(),
        size: flash_size(&report),
        embedded,
    })
}

/// What `cargo medwasm build --target mcu` prints: the artifacts and the memory report.
pub fn summary(output: &BuildOutput) -> Result<String> {
    let dir = output
        .artifact
        .parent()
        .context("the artifact has no folder; this is a bug in cargo-medwasm")?;
    let report = read_memory(dir)?;
    let board = Board::from_file(&dir.join(BOARD_FILE))?;
    let stem = output
        .artifact
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("detector");
    Ok(format!(
        "{}  firmware (runs the test vectors in QEMU: `cargo medwasm bench --target mcu`)\n{}  static library, C header {stem}.h, example in example/\n\nmemory on `{}` ({}):\n{report}",
        shown(&output.artifact),
        shown(&dir.join(format!("lib{stem}.a"))),
        board.name,
        board.description
    ))
}

/// The C header: the ABI declarations and the model's tensor sizes.
fn header(crate_name: &str, manifest: &Manifest) -> String {
    let upper: String = crate_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut tensors = String::from(
        "/* The model's tensors, as the manifest lists them: element count, C element type\n * and, for an int8 one, the scale and zero point of its real values. */\n",
    );
    for (kind, list) in [("INPUT", &manifest.inputs), ("OUTPUT", &manifest.outputs)] {
        for (i, t) in list.iter().enumerate() {
            tensors.push_str(&format!(
                "#define {upper}_{kind}_{i}_LEN {} /* `{}`, shape {:?} */\n",
                t.len(),
                t.name.replace("*/", "* /"),
                t.shape
            ));
            match t.abi_int8() {
                Some(q) => tensors.push_str(&format!(
                    "#define {upper}_{kind}_{i}_TYPE int8_t\n#define {upper}_{kind}_{i}_SCALE {:?}f\n#define {upper}_{kind}_{i}_ZERO_POINT ({})\n",
                    q.scale, q.zero_point
                )),
                None => tensors.push_str(&format!("#define {upper}_{kind}_{i}_TYPE float\n")),
            }
        }
    }
    tensors.push_str(&format!(
        "#define {upper}_ARENA_BYTES {}\n",
        manifest.arena_bytes
    ));
    HEADER_TEMPLATE
        .replace("@GUARD@", &format!("{upper}_H"))
        .replace("@NAME@", crate_name)
        .replace("@LIB@", crate_name)
        .replace("@ARENA@", &manifest.arena_bytes.to_string())
        .replace("@BLOB@", &manifest.blob_bytes.to_string())
        .replace("@TENSORS@", &tensors)
}

/// `example/`: the C example with its linker script for `board`.
fn write_example(dir: &Path, crate_name: &str, board: &Board) -> Result<()> {
    let link = EXAMPLE_LINK
        .replace("@BOARD@", &board.name)
        .replace("@FLASH_ORIGIN@", &format!("{:#010x}", board.flash.origin))
        .replace("@FLASH_LENGTH@", &format!("{:#x}", board.flash.size))
        .replace("@RAM_ORIGIN@", &format!("{:#010x}", board.ram.origin))
        .replace("@RAM_LENGTH@", &format!("{:#x}", board.ram.size));
    let main = EXAMPLE_MAIN.replace("\"detector.h\"", &format!("\"{crate_name}.h\""));
    write_if_changed(&dir.join("main.c"), main.as_bytes())?;
    write_if_changed(&dir.join("startup.c"), EXAMPLE_STARTUP.as_bytes())?;
    write_if_changed(&dir.join("link.ld"), link.as_bytes())
}

/// The `arm-none-eabi-gcc` command line that builds `example/` against the static
/// library in `dir` (documented in docs/mcu.md, run by the integration test).
pub fn example_gcc_args(dir: &Path, crate_name: &str, board: &Board) -> Vec<String> {
    let example = dir.join("example");
    let p = |path: PathBuf| path.display().to_string();
    vec![
        format!("-mcpu={}", board.target_cpu),
        "-mthumb".into(),
        "-mfloat-abi=hard".into(),
        format!("-mfpu={}", board.fpu),
        "-O2".into(),
        "-std=c11".into(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-ffreestanding".into(),
        "-nostartfiles".into(),
        format!("-I{}", dir.display()),
        "-T".into(),
        p(example.join("link.ld")),
        p(example.join("main.c")),
        p(example.join("startup.c")),
        format!("-L{}", dir.display()),
        format!("-l{crate_name}"),
        "-Wl,--gc-sections".into(),
        "-Wl,-z,noexecstack".into(),
        "-o".into(),
        p(example.join("example.elf")),
    ]
}

/// Inputs of every stored vector (checked as `bench` checks them, in the detector's
/// ABI type), or `None` when the project has none.
fn stored_vectors(project: &Project, manifest: &Manifest) -> Result<Option<Vec<Vec<Vec<f32>>>>> {
    if (0..manifest.inputs.len()).any(|i| !project.inputs_file(i).exists()) {
        return Ok(None);
    }
    let cases = crate::vectors::load_cases(project, manifest, &Ui::silent())?;
    Ok(Some(cases.into_iter().map(|c| c.inputs).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_manifest() -> Manifest {
        Manifest {
            weights_bytes: 24,
            blob_bytes: 200,
            macs: 6,
            ..Manifest::for_tests(&[("x", &[1, 3])], &[("y", &[1, 2])])
        }
    }

    #[test]
    fn plugin_prerequisites_are_optional_and_say_what_to_install() {
        let missing = [
            check_qemu_plugins(Some("built without TCG plugin support".into())),
            check_cc(false),
        ];
        for check in missing {
            assert_eq!(check.status, prereq::Status::OptionalMissing, "{check:?}");
            assert!(
                check
                    .fix
                    .as_deref()
                    .is_some_and(|f| f.contains("apt-get install")),
                "{check:?}"
            );
        }
        assert_eq!(check_qemu_plugins(None).status, prereq::Status::Ok);
        assert_eq!(check_cc(true).status, prereq::Status::Ok);
    }

    #[test]
    fn header_declares_the_abi_and_tensors() {
        let manifest = sample_manifest();
        let h = header("my_det", &manifest);
        assert!(h.contains("#ifndef MY_DET_H"), "{h}");
        assert!(
            h.contains("#define MY_DET_INPUT_0_LEN 3 /* `x`, shape [1, 3] */"),
            "{h}"
        );
        assert!(h.contains("#define MY_DET_OUTPUT_0_LEN 2"), "{h}");
        assert!(h.contains("int32_t medwasm_run(void);"), "{h}");
        assert!(h.contains("MEDWASM_NON_FINITE = 11"), "{h}");
        assert!(!h.contains('@'), "every placeholder is filled: {h}");
    }
}
