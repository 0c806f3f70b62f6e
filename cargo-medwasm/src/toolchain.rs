//! The Rust toolchain as cargo-medwasm drives it: the per-target facts every command
//! shares, which `rustc`/`cargo` to run, and whether a target's standard library is
//! installed.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// The Rust facts of one target: each target module (`targets/*`) defines its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetSpec {
    /// The `--target` value users type and the folder under `target/medwasm/`.
    pub name: &'static str,
    /// The Rust target triple the detector is compiled for.
    pub triple: &'static str,
    /// Flags appended to `RUSTFLAGS` when compiling the detector.
    pub rustflags: &'static [&'static str],
    /// What the target is for, as `doctor` prints it.
    pub purpose: &'static str,
    /// Whether `cargo medwasm build` can build it yet; `doctor` treats a missing
    /// triple of a buildable target as an error and the others as optional.
    pub buildable: bool,
}

/// Version of the Wasmtime linked into this binary (checked against Cargo.lock in a test).
pub const EMBEDDED_WASMTIME: &str = "48.0.8";
/// Binaryen release behind the embedded `wasm-opt` (the crate's minor version).
pub const EMBEDDED_BINARYEN: &str = "116";

/// The `cargo` to run: the one that invoked us (`CARGO`), else the one on `PATH`.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The `rustc` cargo would run: `RUSTC` if set, else the one on `PATH`.
pub fn rustc_program() -> OsString {
    std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())
}

/// The `rustc` of the toolchain that applies in `dir` (rustup honours the
/// `rust-toolchain.toml` of a project, so we run it from there).
#[derive(Debug, Clone)]
pub struct Rustc {
    program: OsString,
    dir: PathBuf,
}

impl Rustc {
    /// The `rustc` cargo would use for a project in `dir`.
    pub fn in_dir(dir: &Path) -> Rustc {
        Rustc {
            program: rustc_program(),
            dir: dir.to_path_buf(),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(&self.dir);
        cmd
    }

    /// `rustc -V`, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
    pub fn version(&self) -> Result<String> {
        let mut cmd = self.command();
        cmd.arg("-V");
        stdout_of(&mut cmd).map(|s| s.trim().to_string())
    }

    /// `rustc --print sysroot`.
    pub fn sysroot(&self) -> Result<PathBuf> {
        let mut cmd = self.command();
        cmd.args(["--print", "sysroot"]);
        let out = stdout_of(&mut cmd)?;
        Ok(PathBuf::from(out.trim()))
    }

    /// The triple of the machine `rustc` runs on, from `rustc -vV`.
    pub fn host(&self) -> Result<String> {
        let mut cmd = self.command();
        cmd.arg("-vV");
        let out = stdout_of(&mut cmd)?;
        host_triple(&out)
            .map(str::to_string)
            .with_context(|| format!("`rustc -vV` printed no `host:` line; it printed:\n{out}"))
    }

    /// Whether the standard library for `triple` is installed for this `rustc`.
    pub fn has_target(&self, triple: &str) -> Result<bool> {
        Ok(target_installed(&self.sysroot()?, triple))
    }

    /// Fails with the command that installs `spec`'s standard library when it is missing.
    pub fn require_target(&self, spec: &TargetSpec) -> Result<()> {
        if self.has_target(spec.triple)? {
            return Ok(());
        }
        let version = self.version().unwrap_or_else(|_| "this `rustc`".into());
        bail!(
            "the Rust target `{triple}` is not installed for {version}; run `rustup target add {triple}` (or `cargo medwasm doctor --fix`)",
            triple = spec.triple
        )
    }
}

/// The `host:` triple of `rustc -vV` output.
fn host_triple(verbose_version: &str) -> Option<&str> {
    verbose_version
        .lines()
        .find_map(|l| l.strip_prefix("host:"))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether `sysroot` holds a standard library for `triple`.
///
/// rustc finds `core` in `<sysroot>/lib/rustlib/<triple>/lib`; rustup installs exactly
/// that folder with `rustup target add`, and distribution packages do the same. Asking
/// the sysroot instead of `rustup target list` also covers toolchains without rustup.
pub fn target_installed(sysroot: &Path, triple: &str) -> bool {
    let libdir = sysroot.join("lib").join("rustlib").join(triple).join("lib");
    let Ok(entries) = std::fs::read_dir(libdir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        name.starts_with("libcore-") && name.ends_with(".rlib")
    })
}

/// `major.minor.patch` from `rustc 1.95.0 (…)`, `cargo 1.96.0-nightly (…)` or `v20.11.1`.
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let word = text.split_whitespace().find(|w| {
        w.trim_start_matches('v')
            .starts_with(|c: char| c.is_ascii_digit())
    })?;
    let word = word.trim_start_matches('v');
    let core = word.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// The oldest `rustc` that builds detectors: the workspace's `rust-version`.
pub fn min_rustc() -> (u64, u64, u64) {
    parse_version(env!("CARGO_PKG_RUST_VERSION")).unwrap_or((1, 95, 0))
}

/// Runs `cmd` and returns its stdout; a failure names the command line.
pub fn stdout_of(cmd: &mut Command) -> Result<String> {
    let line = command_line(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{line}` printed non-UTF-8 output"))
}

/// A command line a user can paste into a POSIX shell, with the environment
/// variables the command sets in front.
pub fn command_line(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            words.push(format!("{}={}", key.to_string_lossy(), shell_quote(value)));
        }
    }
    words.push(shell_quote(cmd.get_program()));
    words.extend(cmd.get_args().map(shell_quote));
    words.join(" ")
}

/// Quotes `word` for a POSIX shell when it needs it.
pub fn shell_quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_triple_comes_from_rustc_verbose_version() {
        let out = "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";
        assert_eq!(host_triple(out), Some("x86_64-unknown-linux-gnu"));
        assert_eq!(host_triple("rustc 1.95.0\nhost: \n"), None);
    }

    #[test]
    fn target_detection_looks_for_libcore() {
        let sysroot = tempfile::tempdir().unwrap();
        let lib = sysroot.path().join("lib/rustlib/wasm32-wasip1/lib");
        std::fs::create_dir_all(&lib).unwrap();
        assert!(
            !target_installed(sysroot.path(), "wasm32-wasip1"),
            "empty folder"
        );
        std::fs::write(lib.join("libcore-0123abcd.rlib"), b"").unwrap();
        assert!(target_installed(sysroot.path(), "wasm32-wasip1"));
        assert!(!target_installed(sysroot.path(), "thumbv7em-none-eabihf"));
    }

    #[test]
    fn host_target_is_installed() {
        // The toolchain running this test has its own host standard library.
        let rustc = Rustc::in_dir(Path::new(env!("CARGO_MANIFEST_DIR")));
        let sysroot = rustc.sysroot().unwrap();
        let host = rustc_host();
        assert!(
            target_installed(&sysroot, &host),
            "{host} in {}",
            sysroot.display()
        );
    }

    fn rustc_host() -> String {
        let out = stdout_of(Command::new(rustc_program()).arg("-vV")).unwrap();
        out.lines()
            .find_map(|l| l.strip_prefix("host: "))
            .unwrap()
            .to_string()
    }

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("rustc 1.95.0 (59807616e 2026-04-14)"),
            Some((1, 95, 0))
        );
        assert_eq!(
            parse_version("cargo 1.96.0-nightly (abc 2026-05-01)"),
            Some((1, 96, 0))
        );
        assert_eq!(parse_version("v20.11.1"), Some((20, 11, 1)));
        assert_eq!(
            parse_version("QEMU emulator version 7.2.15 (Debian)"),
            Some((7, 2, 15))
        );
        assert_eq!(parse_version("1.95"), Some((1, 95, 0)));
        assert_eq!(parse_version("no version here"), None);
        assert!(min_rustc() >= (1, 95, 0));
    }

    #[test]
    fn command_lines_are_pasteable() {
        let mut cmd = Command::new("cargo");
        cmd.env("RUSTFLAGS", "-C target-feature=+simd128").args([
            "build",
            "--manifest-path",
            "/tmp/my dir/Cargo.toml",
            "it's",
        ]);
        assert_eq!(
            command_line(&cmd),
            r"RUSTFLAGS='-C target-feature=+simd128' cargo build --manifest-path '/tmp/my dir/Cargo.toml' 'it'\''s'"
        );
    }

    #[test]
    fn embedded_versions_match_the_lockfile() {
        // Cargo.lock sits at the workspace root; a published crate has none to check.
        let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
        let Ok(lock) = std::fs::read_to_string(lock) else {
            return;
        };
        let locked = |name: &str| {
            let header = format!("name = \"{name}\"\nversion = \"");
            let start = lock.find(&header).map(|i| i + header.len())?;
            let len = lock[start..].find('"')?;
            Some(lock[start..start + len].to_string())
        };
        assert_eq!(locked("wasmtime").as_deref(), Some(EMBEDDED_WASMTIME));
        let wasm_opt = locked("wasm-opt").unwrap();
        assert_eq!(
            wasm_opt.split('.').nth(1),
            Some(EMBEDDED_BINARYEN),
            "wasm-opt {wasm_opt}"
        );
    }
}
