//! `cargo medwasm build`: cargo for the target, then walrus and wasm-opt.
//!
//! The pipeline: cargo compiles the detector's `cdylib` for the target's triple
//! (driven through its JSON messages); a release artifact loses every custom section
//! (walrus) and goes through Binaryen's `-O3` (the embedded `wasm-opt`); finally the
//! `medwasm.manifest` section is appended and the artifact lands in
//! `target/medwasm/<target>/<package>.wasm`.

use std::io::{BufRead as _, BufReader, IsTerminal as _};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::manifest::{CUSTOM_SECTION, Manifest};
use crate::project::Project;
use crate::report::Size;
use crate::toolchain::{self, Rustc, TargetSpec};
use crate::ui::{Step, Ui};

/// Targets `build` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuildTarget {
    /// WASI module for Wasmtime (and any WASI runtime).
    Wasmtime,
    /// ES module package for browsers, bundlers and Node.js (`target/medwasm/browser/pkg/`).
    Browser,
    /// Cortex-M4F/M7 firmware and static library (`--board`; see docs/mcu.md).
    Mcu,
}

impl BuildTarget {
    /// The triple, flags and folder name of this target.
    pub fn spec(self) -> &'static TargetSpec {
        match self {
            BuildTarget::Wasmtime => &toolchain::WASMTIME,
            BuildTarget::Browser => &toolchain::BROWSER,
            BuildTarget::Mcu => &toolchain::MCU,
        }
    }
}

/// Build the detector for a target.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Target to build for.
    #[arg(long, value_enum, default_value = "wasmtime")]
    pub target: BuildTarget,
    /// Build with optimizations and strip what a release artifact does not need.
    #[arg(long)]
    pub release: bool,
    /// Path to the detector's Cargo.toml.
    #[arg(long)]
    pub manifest_path: Option<PathBuf>,
    /// Board for `--target mcu`: a built-in board or a board file (`*.toml`)
    /// [default: `board` in `[package.metadata.medwasm]`, else qemu-mps2-an386].
    #[arg(long)]
    pub board: Option<String>,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The final artifact.
    pub artifact: PathBuf,
    /// Sizes of the artifact.
    pub size: crate::report::Size,
    /// What was embedded in the artifact's `medwasm.manifest` section.
    pub embedded: Embedded,
}

/// The JSON in the `medwasm.manifest` custom section (see `docs/detector-abi.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedded {
    /// The model manifest written by `cargo medwasm import`.
    pub manifest: Manifest,
    /// How the artifact was built.
    pub build: BuildInfo,
}

/// How an artifact was built. No timestamps or paths: artifacts are reproducible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// `cargo-medwasm <version>`.
    pub tool: String,
    /// `wasmtime`, …
    pub target: String,
    /// `release` or `debug`.
    pub profile: String,
    /// `rustc -V` of the toolchain that compiled it.
    pub rustc: String,
    /// Version of the `medwasm` SDK the detector depends on.
    pub sdk: Option<String>,
}

impl BuildArgs {
    /// Runs the build and prints the artifact and its size split on stdout.
    ///
    /// Callers that own stdout (`bench --json`) use [`build`] instead, which prints
    /// progress only.
    pub fn run(self, ui: &Ui) -> Result<BuildOutput> {
        let mut project = Project::locate(self.manifest_path.as_deref())?;
        for warning in &project.warnings {
            ui.warn(warning);
        }
        if self.board.is_some() {
            project.metadata.board = self.board;
        }
        let output = build(&project, self.target, self.release, ui)?;
        if self.target == BuildTarget::Mcu {
            println!("{}", crate::mcu::summary(&output)?);
        } else {
            println!("{}", summary(&output));
        }
        if self.target == BuildTarget::Browser {
            let package = crate::browser::measure_package(&output.artifact, &output.embedded)?;
            println!("{}", package_summary(&package));
        }
        Ok(output)
    }
}

/// Builds `project` for `target`: progress on stderr, nothing on stdout.
pub fn build(
    project: &Project,
    target: BuildTarget,
    release: bool,
    ui: &Ui,
) -> Result<BuildOutput> {
    if target == BuildTarget::Mcu {
        return crate::mcu::build(project, release, ui);
    }
    let spec = target.spec();
    if !project.is_cdylib {
        bail!(
            "`{}` does not build a `cdylib`, so there is no `.wasm` to make a detector of; add this to {}:\n\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]",
            project.name,
            project.manifest_path.display()
        );
    }
    let manifest = project.manifest()?;
    let rustc = Rustc::in_dir(&project.root);
    rustc.require_target(spec)?;
    let embedded = Embedded {
        manifest,
        build: BuildInfo {
            tool: format!("cargo-medwasm {}", env!("CARGO_PKG_VERSION")),
            target: spec.name.to_string(),
            profile: if release { "release" } else { "debug" }.to_string(),
            rustc: rustc.version()?,
            sdk: project.sdk_version.clone(),
        },
    };

    let compiled = cargo_build(project, spec, release, ui)?;
    let wasm = std::fs::read(&compiled)
        .with_context(|| format!("cannot read cargo's output `{}`", compiled.display()))?;

    let dir = match target {
        BuildTarget::Browser => crate::browser::package_dir(project),
        _ => project.artifact_dir(spec.name),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let artifact = dir.join(format!("{}.wasm", project.name));

    let mut wasm = if release {
        let step = ui.spinner("Optimizing", format!("{} (wasm-opt -O3)", project.name));
        let started = Instant::now();
        let optimized = optimize(&strip_custom_sections(&wasm)?, &artifact)?;
        drop(step);
        ui.detail(format_args!(
            "walrus and wasm-opt took {:.1?}: {} -> {} bytes",
            started.elapsed(),
            wasm.len(),
            optimized.len()
        ));
        optimized
    } else {
        wasm
    };
    // Appended last so that nothing in the pipeline can drop or reorder it.
    let section = serde_json::to_vec(&embedded).context("cannot serialize the build manifest")?;
    set_custom_section(&mut wasm, CUSTOM_SECTION, &section)?;

    let mut size = size_split(&wasm, embedded.manifest.blob_bytes)?;
    write_atomically(&artifact, &wasm)?;
    if target == BuildTarget::Browser {
        let js = crate::browser::write_package(project, &artifact, &embedded)?;
        // The loader ships with the module, so it counts as code.
        size.total += js;
        size.code += js;
    }
    Ok(BuildOutput {
        artifact,
        size,
        embedded,
    })
}

/// Reads the `medwasm.manifest` section of a built artifact, if it has one.
pub fn read_embedded(wasm: &[u8]) -> Result<Option<Embedded>> {
    let Some(section) = sections(wasm)?
        .into_iter()
        .find(|s| s.name == Some(CUSTOM_SECTION))
    else {
        return Ok(None);
    };
    let embedded = serde_json::from_slice(&wasm[section.payload]).context(
        "the `medwasm.manifest` section is not valid; rebuild with `cargo medwasm build`",
    )?;
    Ok(Some(embedded))
}

/// `target/medwasm/wasmtime/x.wasm  41.2 KiB  (code 18.0 KiB, weights 22.9 KiB, metadata 0.3 KiB)`.
fn summary(output: &BuildOutput) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            output
                .artifact
                .strip_prefix(cwd)
                .ok()
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| output.artifact.clone());
    let Size {
        total,
        code,
        weights,
        metadata,
    } = output.size;
    format!(
        "{}  {}  (code {}, weights {}, metadata {})",
        shown.display(),
        human_size(total),
        human_size(code),
        human_size(weights),
        human_size(metadata)
    )
}

/// `package: JS 6.1 KiB + wasm 52.0 KiB; without weights 30.2 KiB (budget 150 KB), gzip 21.3 KiB`.
fn package_summary(package: &crate::browser::PackageSize) -> String {
    format!(
        "package: JS {} + wasm {}; without weights {} (budget 150 KB), gzip {} (weights included)",
        human_size(package.js),
        human_size(package.wasm),
        human_size(package.without_weights()),
        human_size(package.gzip)
    )
}

pub(crate) fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let bytes = bytes as f64;
    if bytes < KIB * KIB {
        format!("{:.1} KiB", bytes / KIB)
    } else {
        format!("{:.1} MiB", bytes / (KIB * KIB))
    }
}

// ---------------------------------------------------------------------------------
// cargo

/// Runs `cargo build --lib` for `spec` and returns the `.wasm` cargo produced.
fn cargo_build(project: &Project, spec: &TargetSpec, release: bool, ui: &Ui) -> Result<PathBuf> {
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
pub(crate) fn run_cargo_build(
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
pub(crate) fn forward_cargo_stderr(stderr: impl std::io::Read, step: &Step, verbose: bool) {
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
pub(crate) fn rustflags_env(
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
pub(crate) fn strip_ansi(text: &str) -> String {
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

// ---------------------------------------------------------------------------------
// walrus and wasm-opt

/// Drops the `name`, `producers`, `target_features`, DWARF and every other custom
/// section: a release artifact carries code, data and our manifest only.
fn strip_custom_sections(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut config = walrus::ModuleConfig::new();
    config
        .generate_name_section(false)
        .generate_producers_section(false)
        .generate_dwarf(false);
    let mut module = config
        .parse(wasm)
        .context("cannot parse the module cargo built; this is a bug in cargo-medwasm or rustc")?;
    let ids: Vec<_> = module.customs.iter().map(|(id, _)| id).collect();
    for id in ids {
        module.customs.delete(id);
    }
    Ok(module.emit_wasm())
}

/// What rustc 1.95 emits for `wasm32` by default, plus the `simd128` we ask for.
/// Binaryen must accept each (it rejects the module otherwise) and may then use them.
const WASM_FEATURES: &[wasm_opt::Feature] = &[
    wasm_opt::Feature::MutableGlobals,
    wasm_opt::Feature::SignExt,
    wasm_opt::Feature::TruncSat,
    wasm_opt::Feature::BulkMemory,
    wasm_opt::Feature::ReferenceTypes,
    wasm_opt::Feature::Multivalue,
    wasm_opt::Feature::Simd,
];

/// Runs Binaryen `-O3` on `wasm`, using files next to `artifact` (its API is file based).
fn optimize(wasm: &[u8], artifact: &Path) -> Result<Vec<u8>> {
    let input = artifact.with_extension("pre-opt.wasm");
    let output = artifact.with_extension("opt.wasm");
    std::fs::write(&input, wasm).with_context(|| format!("cannot write `{}`", input.display()))?;
    let mut options = wasm_opt::OptimizationOptions::new_opt_level_3();
    options.debug_info(false);
    for &feature in WASM_FEATURES {
        options.enable_feature(feature);
    }
    let result = options.run(&input, &output);
    let _ = std::fs::remove_file(&input);
    result.map_err(|e| {
        anyhow::anyhow!(
            "wasm-opt rejected the module: {e}; this is a bug in cargo-medwasm, please report it at {}/issues with the output of `cargo medwasm build --release -v` (`cargo medwasm build` without `--release` skips wasm-opt)",
            env!("CARGO_PKG_REPOSITORY")
        )
    })?;
    let optimized =
        std::fs::read(&output).with_context(|| format!("cannot read `{}`", output.display()))?;
    let _ = std::fs::remove_file(&output);
    Ok(optimized)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write `{}`", path.display()))
}

// ---------------------------------------------------------------------------------
// The section layer of the wasm binary format

/// One section of a wasm module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section<'a> {
    /// Section id; 0 is a custom section.
    id: u8,
    /// Name of a custom section.
    name: Option<&'a str>,
    /// Bytes of the whole section, id and size included.
    whole: Range<usize>,
    /// Bytes of the contents (after a custom section's name).
    payload: Range<usize>,
}

const WASM_HEADER: [u8; 8] = *b"\0asm\x01\0\0\0";

/// Splits a core wasm module into its sections.
fn sections(wasm: &[u8]) -> Result<Vec<Section<'_>>> {
    if wasm.get(..8) != Some(&WASM_HEADER[..]) {
        bail!("not a core WebAssembly module (bad header)");
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < wasm.len() {
        let start = pos;
        let id = wasm[pos];
        pos += 1;
        let len = read_leb_u32(wasm, &mut pos)? as usize;
        let end = pos
            .checked_add(len)
            .filter(|&end| end <= wasm.len())
            .context("truncated WebAssembly module (a section runs past the end)")?;
        let (name, payload_start) = if id == 0 {
            let mut p = pos;
            let name_len = read_leb_u32(wasm, &mut p)? as usize;
            let name_end = p
                .checked_add(name_len)
                .filter(|&e| e <= end)
                .context("malformed custom section name")?;
            let name = std::str::from_utf8(&wasm[p..name_end])
                .context("custom section name is not UTF-8")?;
            (Some(name), name_end)
        } else {
            (None, pos)
        };
        out.push(Section {
            id,
            name,
            whole: start..end,
            payload: payload_start..end,
        });
        pos = end;
    }
    Ok(out)
}

fn read_leb_u32(bytes: &[u8], pos: &mut usize) -> Result<u32> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*pos).context("truncated WebAssembly module")?;
        *pos += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("malformed WebAssembly module (LEB128 longer than 5 bytes)")
}

fn write_leb_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Replaces every custom section called `name` by one holding `data`, at the end.
fn set_custom_section(wasm: &mut Vec<u8>, name: &str, data: &[u8]) -> Result<()> {
    let stale: Vec<Range<usize>> = sections(wasm)?
        .into_iter()
        .filter(|s| s.name == Some(name))
        .map(|s| s.whole)
        .collect();
    for range in stale.into_iter().rev() {
        wasm.drain(range);
    }
    let mut contents = Vec::with_capacity(name.len() + data.len() + 5);
    write_leb_u32(
        &mut contents,
        u32::try_from(name.len()).context("section name too long")?,
    );
    contents.extend_from_slice(name.as_bytes());
    contents.extend_from_slice(data);
    wasm.push(0);
    write_leb_u32(
        wasm,
        u32::try_from(contents.len()).context("custom section over 4 GiB")?,
    );
    wasm.extend_from_slice(&contents);
    Ok(())
}

/// Splits the artifact size into code, the model blob and custom sections.
///
/// The blob sits in a data segment, so its size is taken from the manifest; metadata
/// is every custom section with its header; code is the rest (including the wasm
/// structure and any other static data).
fn size_split(wasm: &[u8], blob_bytes: u64) -> Result<Size> {
    let total = wasm.len() as u64;
    let metadata: u64 = sections(wasm)?
        .iter()
        .filter(|s| s.id == 0)
        .map(|s| s.whole.len() as u64)
        .sum();
    let weights = blob_bytes.min(total - metadata);
    Ok(Size {
        total,
        code: total - metadata - weights,
        weights,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with one function, one 100-byte data segment and one custom section.
    fn small_module() -> Vec<u8> {
        let mut config = walrus::ModuleConfig::new();
        config.generate_producers_section(false);
        let mut module = walrus::Module::with_config(config);
        let memory = module.memories.add_local(false, false, 1, None, None);
        module.exports.add("memory", memory);
        let mut f = walrus::FunctionBuilder::new(&mut module.types, &[], &[walrus::ValType::I32]);
        f.func_body().i32_const(7);
        let func = f.finish(vec![], &mut module.funcs);
        module.exports.add("seven", func);
        module.data.add(
            walrus::DataKind::Active {
                memory,
                offset: walrus::ConstExpr::Value(walrus::ir::Value::I32(16)),
            },
            vec![0xab; 100],
        );
        module.customs.add(walrus::RawCustomSection {
            name: "extra".into(),
            data: vec![1, 2, 3],
        });
        module.emit_wasm()
    }

    #[test]
    fn sections_and_size_split() {
        let mut wasm = small_module();
        let before = wasm.len();
        set_custom_section(&mut wasm, "medwasm.manifest", b"{}").unwrap();
        // id + size + name length + 16-byte name + 2-byte payload
        assert_eq!(wasm.len() - before, 1 + 1 + 1 + 16 + 2);
        let customs: Vec<_> = sections(&wasm)
            .unwrap()
            .into_iter()
            .filter_map(|s| s.name)
            .collect();
        assert!(
            customs.contains(&"extra") && customs.contains(&"medwasm.manifest"),
            "{customs:?}"
        );

        let size = size_split(&wasm, 100).unwrap();
        let custom_bytes: u64 = sections(&wasm)
            .unwrap()
            .iter()
            .filter(|s| s.id == 0)
            .map(|s| s.whole.len() as u64)
            .sum();
        assert_eq!(size.total, wasm.len() as u64);
        assert_eq!(size.metadata, custom_bytes);
        assert_eq!(size.weights, 100);
        assert_eq!(size.code + size.weights + size.metadata, size.total);
        // The data segment alone is over 100 bytes, so code is the small rest.
        assert!(size.code < 100, "{size:?}");
        // A blob larger than the module (stale manifest) cannot make code negative.
        assert_eq!(size_split(&wasm, 1 << 20).unwrap().code, 0);
    }

    #[test]
    fn custom_section_is_replaced_not_duplicated() {
        let mut wasm = small_module();
        set_custom_section(&mut wasm, "medwasm.manifest", b"old").unwrap();
        set_custom_section(&mut wasm, "medwasm.manifest", b"new!").unwrap();
        let ours: Vec<_> = sections(&wasm)
            .unwrap()
            .into_iter()
            .filter(|s| s.name == Some("medwasm.manifest"))
            .collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(&wasm[ours[0].payload.clone()], b"new!");
        // walrus still reads the module, so the encoding is valid.
        let module = walrus::Module::from_buffer(&wasm).unwrap();
        assert!(
            module
                .customs
                .iter()
                .any(|(_, s)| s.name() == "medwasm.manifest")
        );
    }

    #[test]
    fn embedded_manifest_round_trips() {
        let spec = crate::manifest::TensorSpec {
            name: "x".into(),
            shape: vec![1, 3],
            dtype: "f32".into(),
        };
        let embedded = Embedded {
            manifest: Manifest {
                format_version: 1,
                source: crate::manifest::Source {
                    file: "m.onnx".into(),
                    sha256: "00".into(),
                    format: "onnx".into(),
                    opset: 17,
                    producer: "test 1".into(),
                    input_shapes: vec![vec![1, 3]],
                },
                inputs: vec![spec.clone()],
                outputs: vec![spec],
                arena_bytes: 64,
                weights_bytes: 48,
                blob_bytes: 100,
                blob_sha256: "ff".into(),
                nodes: 1,
                macs: 9,
                ops: vec![("Gemm".into(), 1)],
                notes: vec![],
                converter: "cargo-medwasm 0.1.0".into(),
            },
            build: BuildInfo {
                tool: "cargo-medwasm 0.1.0".into(),
                target: "wasmtime".into(),
                profile: "release".into(),
                rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
                sdk: Some("0.1.0".into()),
            },
        };
        let mut wasm = small_module();
        assert_eq!(read_embedded(&wasm).unwrap(), None);
        let json = serde_json::to_vec(&embedded).unwrap();
        set_custom_section(&mut wasm, CUSTOM_SECTION, &json).unwrap();
        assert_eq!(read_embedded(&wasm).unwrap(), Some(embedded));
        // The documented shape: two top-level keys, no timestamps.
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let keys: Vec<_> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["build", "manifest"]);
    }

    #[test]
    fn stripping_keeps_code_and_drops_customs() {
        let wasm = small_module();
        let stripped = strip_custom_sections(&wasm).unwrap();
        let parsed = sections(&stripped).unwrap();
        assert!(parsed.iter().all(|s| s.id != 0), "{parsed:?}");
        let module = walrus::Module::from_buffer(&stripped).unwrap();
        assert!(module.exports.iter().any(|e| e.name == "seven"));
    }

    #[test]
    fn optimize_keeps_simd_modules_valid() {
        // A function using a v128 op: Binaryen must accept it with our feature set.
        let mut module = walrus::Module::default();
        let mut f = walrus::FunctionBuilder::new(&mut module.types, &[], &[walrus::ValType::I32]);
        f.func_body()
            .const_(walrus::ir::Value::V128(3))
            .unop(walrus::ir::UnaryOp::I32x4ExtractLane { idx: 0 });
        let func = f.finish(vec![], &mut module.funcs);
        module.exports.add("three", func);
        let wasm = module.emit_wasm();
        let dir = tempfile::tempdir().unwrap();
        let optimized = optimize(&wasm, &dir.path().join("x.wasm")).unwrap();
        let module = walrus::Module::from_buffer(&optimized).unwrap();
        assert!(module.exports.iter().any(|e| e.name == "three"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temporary files left"
        );
    }

    #[test]
    fn bad_modules_are_errors_not_panics() {
        assert!(sections(b"").is_err());
        assert!(
            sections(b"\0asm\x0d\0\x01\0").is_err(),
            "a component is not a core module"
        );
        assert!(
            sections(b"\0asm\x01\0\0\0\x01\x05\0").is_err(),
            "section past the end"
        );
        assert!(
            sections(b"\0asm\x01\0\0\0\x00\x02\x05a").is_err(),
            "name past the section"
        );
        assert!(sections(b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\xff\xff").is_err());
        assert_eq!(sections(b"\0asm\x01\0\0\0").unwrap(), vec![]);
    }

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

    #[test]
    fn sizes_read_like_the_docs() {
        assert_eq!(human_size(42_188), "41.2 KiB");
        assert_eq!(human_size(300), "0.3 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
    }
}
