//! The cargo build driver every target shares: runs `cargo build` with JSON messages,
//! reprints compiler diagnostics as cargo would, forwards its other output under a
//! spinner and hands back the artifacts cargo reports.

use std::io::{BufRead as _, BufReader, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::project::Project;
use crate::toolchain::{self, TargetSpec};
use crate::ui::{Step, Ui};

/// Runs `cargo build --lib` for `spec` and returns the `.wasm` cargo produced.
pub fn build_lib(project: &Project, spec: &TargetSpec, release: bool, ui: &Ui) -> Result<PathBuf> {
    let mut cmd = Command::new(toolchain::cargo_program());
    cmd.args(["build", "--lib", "--target", spec.triple]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--manifest-path").arg(&project.manifest_path);
    if !spec.rustflags.is_empty() {
        // Note that a set `RUSTFLAGS` makes cargo ignore `rustflags` from
        // `.cargo/config.toml`; the flags the user exported are kept.
        let (var, value) = rustflags_env(
            std::env::var("CARGO_ENCODED_RUSTFLAGS").ok().as_deref(),
            std::env::var("RUSTFLAGS").ok().as_deref(),
            spec.rustflags,
        );
        cmd.env(var, value);
    }
    let mut wasm = None;
    let what = format!("{} for {} ({})", project.name, spec.name, spec.triple);
    let (line, status) = run_cargo_build(cmd, what, ui, |artifact| {
        if Path::new(&artifact.manifest_path) == project.manifest_path
            && let Some(file) = artifact
                .filenames
                .iter()
                .find(|f| f.extension() == Some("wasm"))
        {
            wasm = Some(PathBuf::from(file));
        }
    })?;
    if !status.success() {
        bail!("`{line}` failed ({status}); cargo's messages are above");
    }
    wasm.with_context(|| {
        format!(
            "cargo built `{}` but reported no `.wasm` for it; check that `[lib] crate-type` in {} includes \"cdylib\"",
            project.name,
            project.manifest_path.display()
        )
    })
}

/// Runs a `cargo build` command with JSON messages: shows its diagnostics as cargo
/// would (colour only on a terminal), forwards its other output under a spinner
/// saying it is compiling `what`, and hands every artifact cargo reports to
/// `artifact`. Returns the command line (for messages) and cargo's exit status.
pub fn run_cargo_build(
    mut cmd: Command,
    what: String,
    ui: &Ui,
    mut artifact: impl FnMut(&cargo_metadata::Artifact),
) -> Result<(String, std::process::ExitStatus)> {
    cmd.args(["--message-format", "json-diagnostic-rendered-ansi"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let line = toolchain::command_line(&cmd);

    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let step = ui.spinner("Compiling", what);
    ui.detail(format_args!("running `{line}`"));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        bail!("`{line}` started without its output pipes; this is a bug in cargo-medwasm");
    };

    let read: Result<()> = std::thread::scope(|scope| {
        scope.spawn(|| forward_cargo_stderr(stderr, &step, ui.verbose()));
        for message in cargo_metadata::Message::parse_stream(BufReader::new(stdout)) {
            let message = message.with_context(|| format!("cannot read the output of `{line}`"))?;
            match message {
                cargo_metadata::Message::CompilerMessage(msg) => {
                    // A detector's `cdylib` crate type is for wasm; rustc drops it for
                    // a bare-metal target, which is what we want there.
                    if msg
                        .message
                        .message
                        .contains("dropping unsupported crate type `cdylib`")
                    {
                        continue;
                    }
                    if let Some(rendered) = &msg.message.rendered {
                        let rendered = if color {
                            rendered.clone()
                        } else {
                            strip_ansi(rendered)
                        };
                        step.println(format!("{}\n", rendered.trim_end()));
                    }
                }
                cargo_metadata::Message::CompilerArtifact(a) => artifact(&a),
                cargo_metadata::Message::TextLine(text) => step.println(text),
                _ => {}
            }
        }
        Ok(())
    });
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for `{line}`"))?;
    read?;
    drop(step);
    ui.detail(format_args!("cargo took {:.1?}", started.elapsed()));
    Ok((line, status))
}

/// Passes cargo's own stderr through, hiding its status lines unless `-v`.
pub fn forward_cargo_stderr(stderr: impl std::io::Read, step: &Step, verbose: bool) {
    const STATUS: &[&str] = &[
        "Compiling",
        "Checking",
        "Finished",
        "Fresh",
        "Blocking",
        "Updating",
        "Locking",
        "Adding",
        "Downloading",
        "Downloaded",
    ];
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let first = line.split_whitespace().next().unwrap_or("");
        if verbose || !STATUS.contains(&first) {
            step.println(line);
        }
    }
}

/// The rustflags variable to set and its value: the user's flags plus `extra`.
///
/// Cargo reads `CARGO_ENCODED_RUSTFLAGS` (flags separated by `0x1f`) before
/// `RUSTFLAGS`, so we extend whichever it would use.
pub fn rustflags_env(
    encoded: Option<&str>,
    plain: Option<&str>,
    extra: &[&str],
) -> (&'static str, String) {
    match encoded {
        Some(existing) => {
            let mut flags: Vec<&str> = existing.split('\x1f').filter(|f| !f.is_empty()).collect();
            flags.extend(extra);
            ("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        }
        None => {
            let mut flags: Vec<&str> = plain.unwrap_or("").split_whitespace().collect();
            flags.extend(extra);
            ("RUSTFLAGS", flags.join(" "))
        }
    }
}

/// Removes terminal escape sequences (SGR colors, OSC hyperlinks) from rustc output.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates, then one final byte in `@`..=`~`.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ST (`ESC \`).
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            // Two-character escapes.
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_is_stripped() {
        let colored = "\x1b[0m\x1b[1m\x1b[38;5;9merror[E0425]\x1b[0m\x1b[0m\x1b[1m: cannot find value `x`\x1b[0m\n \x1b]8;;file:///a.rs\x1b\\a.rs\x1b]8;;\x1b\\ ok\x07";
        assert_eq!(
            strip_ansi(colored),
            "error[E0425]: cannot find value `x`\n a.rs ok\x07"
        );
        assert_eq!(strip_ansi("plain → text"), "plain → text");
        assert_eq!(strip_ansi("dangling \x1b["), "dangling ");
    }

    #[test]
    fn rustflags_extend_what_the_user_set() {
        let simd = &["-C", "target-feature=+simd128"];
        assert_eq!(
            rustflags_env(None, None, simd),
            ("RUSTFLAGS", "-C target-feature=+simd128".to_string())
        );
        assert_eq!(
            rustflags_env(None, Some(" -Dwarnings "), simd),
            (
                "RUSTFLAGS",
                "-Dwarnings -C target-feature=+simd128".to_string()
            )
        );
        assert_eq!(
            rustflags_env(Some("--cfg\x1ffoo bar"), Some("-Dwarnings"), simd),
            (
                "CARGO_ENCODED_RUSTFLAGS",
                "--cfg\x1ffoo bar\x1f-C\x1ftarget-feature=+simd128".to_string()
            )
        );
    }
}
