//! `cargo medwasm doctor`: check prerequisites, `--fix` installs what it can.
//!
//! The checklist goes to stdout, one line per prerequisite, with the command that
//! installs each missing one. Only Rust targets are installed by `--fix`: everything
//! else needs a system package manager (often root) or pip, which a build tool
//! should not run behind the user's back.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::prereq::{Check, Probe, Status, probe};
use crate::pyref::{Engine, PyReference};
use crate::targets;
use crate::toolchain::{self, Rustc};
use crate::ui::Ui;

/// Check (and install) prerequisites.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Install what is missing and can be installed (rustup targets).
    #[arg(long)]
    pub fix: bool,
}

impl DoctorArgs {
    /// Runs the checks.
    pub fn run(self, ui: &Ui) -> Result<()> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let rustc = Rustc::in_dir(&cwd);
        let mut checks = checklist(&rustc);

        if self.fix {
            fix(&checks, &cwd, ui)?;
            checks = checklist(&rustc);
        }

        print!("{}", render(&checks));
        let missing: Vec<&str> = checks
            .iter()
            .filter(|c| c.status == Status::Missing)
            .map(|c| c.name.as_str())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let names = missing
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let fixable = checks
            .iter()
            .any(|c| c.status == Status::Missing && c.rustup_target.is_some());
        if fixable && !self.fix {
            bail!(
                "required prerequisites missing: {names}; run `cargo medwasm doctor --fix` or the commands above"
            )
        }
        bail!("required prerequisites missing: {names}; run the commands above")
    }
}

/// Runs every probe: the toolchain, then each target's own checks (a Rust target
/// two targets share is listed once), then the reference runtimes.
fn checklist(rustc: &Rustc) -> Vec<Check> {
    let mut checks = vec![
        check_cargo(probe(toolchain::cargo_program(), &["-V"])),
        check_rustc(rustc.version()),
        check_rustup(probe("rustup", &["--version"])),
        Check::ok(
            "wasm-opt",
            format!(
                "Binaryen version_{}, embedded",
                toolchain::EMBEDDED_BINARYEN
            ),
        ),
    ];
    let sysroot = rustc.sysroot().ok();
    for target in targets::all() {
        for check in target.checks(sysroot.as_deref()) {
            if !checks.iter().any(|c| c.name == check.name) {
                checks.push(check);
            }
        }
    }
    checks.push(check_ssh(
        std::process::Command::new("ssh")
            .arg("-V")
            .output()
            .ok()
            .filter(|out| out.status.success())
            // OpenSSH prints its version on stderr.
            .map(|out| String::from_utf8_lossy(&out.stderr).trim().to_string()),
    ));
    checks.push(check_python_reference(
        PyReference::probe(Engine::LiteRt),
        Engine::LiteRt,
    ));
    checks.push(check_python_reference(
        PyReference::probe(Engine::OnnxRuntime),
        Engine::OnnxRuntime,
    ));
    checks
}

const RUSTUP_URL: &str = "https://rustup.rs";
const RUSTUP_INSTALL: &str =
    "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh   (see https://rustup.rs)";

fn check_cargo(probe: Probe) -> Check {
    match probe {
        Probe::Ran(version) => Check::ok("cargo", version),
        Probe::NotFound | Probe::Failed(_) => {
            Check::missing("cargo", true, "builds detectors", RUSTUP_INSTALL)
        }
    }
}

fn check_rustc(version: Result<String>) -> Check {
    let (major, minor, _) = toolchain::min_rustc();
    let name = format!("rustc >= {major}.{minor}");
    match version {
        Ok(version) => match toolchain::parse_version(&version) {
            Some(found) if found >= toolchain::min_rustc() => Check::ok(name, version),
            _ => Check::missing(
                name,
                true,
                format!("found {version}"),
                "rustup update stable (or `rustup update` for the toolchain this directory pins)",
            ),
        },
        Err(_) => Check::missing(name, true, "compiles detectors", RUSTUP_INSTALL),
    }
}

fn check_rustup(probe: Probe) -> Check {
    match probe {
        Probe::Ran(version) => Check::ok("rustup", version),
        Probe::NotFound | Probe::Failed(_) => Check::missing(
            "rustup",
            false,
            "adds Rust targets (`doctor --fix`); without it, install targets with your distribution's Rust packages",
            RUSTUP_INSTALL,
        ),
    }
}

/// OpenSSH's client, which `bench --device` runs.
fn check_ssh(version: Option<String>) -> Check {
    match version {
        Some(version) => Check::ok("ssh", version),
        None => Check::missing(
            "ssh",
            false,
            "reaches devices for `cargo medwasm bench --device`",
            "apt-get install openssh-client",
        ),
    }
}

/// A Python reference (`python3` or `MEDWASM_PYTHON`): LiteRT's reference kernels,
/// what a `.tflite` import is checked against, or onnxruntime, what a quantized
/// `.onnx` import is checked against (it also makes the conformance goldens).
fn check_python_reference(
    probe: std::result::Result<PyReference, String>,
    engine: Engine,
) -> Check {
    let (name, purpose, install) = match engine {
        Engine::LiteRt => (
            "python3 + ai-edge-litert",
            "the reference `import model.tflite` checks against",
            "pip install ai-edge-litert==2.3.0 (or point MEDWASM_PYTHON at a Python that has it)",
        ),
        Engine::OnnxRuntime => (
            "python3 + onnxruntime",
            "the reference `import` checks quantized `.onnx` models against (and the conformance goldens)",
            "pip install onnxruntime numpy (or point MEDWASM_PYTHON at a Python that has them)",
        ),
    };
    match probe {
        Ok(found) => Check::ok(name, found.describe()),
        Err(why) => Check::missing(name, false, format!("{purpose}; {why}"), install),
    }
}

/// Adds the missing rustup targets and says what it leaves to the user.
fn fix(checks: &[Check], dir: &Path, ui: &Ui) -> Result<()> {
    let targets: Vec<&str> = checks.iter().filter_map(|c| c.rustup_target).collect();
    let others: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status != Status::Ok && c.rustup_target.is_none())
        .collect();
    if !targets.is_empty() {
        if which::which("rustup").is_err() {
            ui.warn(format_args!(
                "cannot add the targets {} without rustup; install rustup (see {RUSTUP_URL}) or your distribution's Rust standard library packages for them",
                targets.join(", ")
            ));
        } else {
            let mut cmd = Command::new("rustup");
            // Run where the user is, so a `rust-toolchain.toml` there picks the toolchain.
            cmd.current_dir(dir).args(["target", "add"]).args(&targets);
            let line = toolchain::command_line(&cmd);
            ui.status("Installing", &line);
            let status = cmd
                .status()
                .with_context(|| format!("cannot run `{line}`"))?;
            if !status.success() {
                bail!("`{line}` failed ({status}); its messages are above");
            }
        }
    }
    if !others.is_empty() {
        let names: Vec<&str> = others.iter().map(|c| c.name.as_str()).collect();
        ui.note(format_args!(
            "`--fix` only adds Rust targets; it leaves {} to you, since their installers (pip, apt, the rustup script) change the system beyond this project: see the commands below",
            names.join(", ")
        ));
    }
    Ok(())
}

/// The checklist as printed on stdout.
fn render(checks: &[Check]) -> String {
    let status_width = checks
        .iter()
        .map(|c| c.status.label().len())
        .max()
        .unwrap_or(0);
    let name_width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let line = format!(
            "{:status_width$}  {:name_width$}  {}",
            check.status.label(),
            check.name,
            check.detail
        );
        out.push_str(line.trim_end());
        out.push('\n');
        if let (Some(fix), false) = (&check.fix, check.status == Status::Ok) {
            out.push_str(&format!(
                "{:status_width$}  {:name_width$}  -> {fix}\n",
                "", ""
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prereq::rust_target_check;
    use crate::targets::mcu::{check_arm_gcc, check_qemu};
    use crate::targets::node::check_node;

    #[test]
    fn checklist_reads_well() {
        let checks = vec![
            check_cargo(Probe::Ran("cargo 1.95.0 (f2d3ce0bd 2026-03-21)".into())),
            check_rustc(Ok("rustc 1.95.0 (59807616e 2026-04-14)".into())),
            rust_target_check(&targets::wasmtime::SPEC, false),
            rust_target_check(&targets::mcu::SPEC, false),
            check_node(Probe::Ran("v18.19.0".into())),
        ];
        insta::assert_snapshot!(render(&checks), @r"
        ok                cargo                         cargo 1.95.0 (f2d3ce0bd 2026-03-21)
        ok                rustc >= 1.95                 rustc 1.95.0 (59807616e 2026-04-14)
        missing           target wasm32-wasip1          for `cargo medwasm build --target wasmtime`
                                                        -> rustup target add wasm32-wasip1
        missing           target thumbv7em-none-eabihf  for `cargo medwasm build --target mcu`
                                                        -> rustup target add thumbv7em-none-eabihf
        optional-missing  node >= 20                    runs `cargo medwasm bench --target node`; found v18.19.0
                                                        -> install Node.js 20 or newer from https://nodejs.org
        ");
    }

    #[test]
    fn old_or_unknown_rustc_is_missing() {
        let old = check_rustc(Ok("rustc 1.80.1 (3f5fd8dd4 2024-08-06)".into()));
        assert_eq!(old.status, Status::Missing);
        assert!(old.detail.contains("1.80.1"));
        let newer = check_rustc(Ok("rustc 1.97.0-nightly (abc 2026-06-01)".into()));
        assert_eq!(newer.status, Status::Ok);
        let absent = check_rustc(Err(anyhow::anyhow!("no rustc")));
        assert_eq!(absent.status, Status::Missing);
    }

    #[test]
    fn only_buildable_targets_are_required() {
        for spec in targets::all().iter().map(|t| t.spec()) {
            let check = rust_target_check(spec, false);
            assert_eq!(
                check.status == Status::Missing,
                spec.buildable,
                "{}",
                spec.triple
            );
            assert_eq!(check.rustup_target, Some(spec.triple));
            assert_eq!(rust_target_check(spec, true).status, Status::Ok);
        }
    }

    #[test]
    fn optional_tools_never_fail_the_doctor() {
        let checks = [
            check_python_reference(
                Err("`python3` cannot be started: not found".into()),
                Engine::OnnxRuntime,
            ),
            check_python_reference(
                Err("ModuleNotFoundError: No module named 'ai_edge_litert'".into()),
                Engine::LiteRt,
            ),
            check_node(Probe::NotFound),
            check_qemu(Probe::Failed("exit status: 1".into())),
            check_arm_gcc(Probe::NotFound),
            check_rustup(Probe::NotFound),
        ];
        for check in checks {
            assert_eq!(check.status, Status::OptionalMissing, "{check:?}");
            assert!(check.fix.is_some(), "{check:?}");
        }
        assert_eq!(check_node(Probe::Ran("v20.0.0".into())).status, Status::Ok);
    }

    #[test]
    fn probing_a_missing_program_is_not_found() {
        assert_eq!(probe("cargo-medwasm-no-such-program", &[]), Probe::NotFound);
    }
}
