//! The `node` target: the browser package imported in Node.js (20 or newer), where
//! the JS harness (`targets/browser/harness.js`) runs, so the figures are those of
//! the package a Node service would load. It builds what `browser` builds.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::artifact::BuildOutput;
use crate::prereq::{Check, Probe, probe};
use crate::process::{Supervised, scratch_dir};
use crate::project::Project;
use crate::protocol::{Execution, Job, Progress};
use crate::targets::browser::harness::{HARNESS_JS, HarnessJob, HarnessResult, TIMEOUT};
use crate::targets::browser::package::module_file;
use crate::targets::browser::{self, Browser};
use crate::targets::target::Target;
use crate::toolchain::{self, TargetSpec};
use crate::ui::Ui;

/// Oldest Node.js major version the package supports.
pub const NODE_MIN_MAJOR: u64 = 20;

/// The script around the harness: reads the job, imports the package, prints results.
const MAIN_MJS: &str = r#"import { readFile } from "node:fs/promises";
import { runSuite } from "./harness.mjs";

const [moduleUrl, wasmPath, jobPath] = process.argv.slice(2);
let result;
try {
  const job = JSON.parse(await readFile(jobPath, "utf8"));
  const mod = await import(moduleUrl);
  result = await runSuite(mod, await readFile(wasmPath), job);
} catch (err) {
  result = { fatal: String((err && err.stack) || err) };
}
result.runtime = `node ${process.version} (V8 ${process.versions.v8})`;
process.stdout.write(JSON.stringify(result));
"#;

/// The browser package in Node.js.
#[derive(Debug, Clone, Copy, Default)]
pub struct Node;

/// The `node` to run: `MEDWASM_NODE` if set, else the one on `PATH`.
fn node_program() -> Option<std::path::PathBuf> {
    match std::env::var_os("MEDWASM_NODE") {
        Some(path) => Some(path.into()),
        None => which::which("node").ok(),
    }
}

impl Target for Node {
    fn name(&self) -> &'static str {
        "node"
    }

    fn about(&self) -> &'static str {
        "The browser package in Node.js 20 or newer (builds what `browser` builds)"
    }

    fn spec(&self) -> &'static TargetSpec {
        &browser::SPEC
    }

    fn builds_as(&self) -> &'static str {
        browser::SPEC.name
    }

    fn build(&self, project: &Project, release: bool, ui: &Ui) -> Result<BuildOutput> {
        Browser.build(project, release, ui)
    }

    fn summary(&self, built: &BuildOutput) -> Result<String> {
        Browser.summary(built)
    }

    fn open(&self, project: &Project, path: &Path) -> Result<BuildOutput> {
        Browser.open(project, path)
    }

    fn checks(&self, sysroot: Option<&Path>) -> Vec<Check> {
        let mut checks = Browser.checks(sysroot);
        checks.retain(|c| c.name != "chromium");
        let version = match node_program() {
            Some(node) => probe(node, &["--version"]),
            None => Probe::NotFound,
        };
        checks.push(check_node(version));
        checks
    }

    fn unavailable(&self) -> Option<String> {
        let install = format!(
            "install Node.js {NODE_MIN_MAJOR} or newer (`sudo apt-get install nodejs`, or https://nodejs.org), or point `MEDWASM_NODE` at one"
        );
        let Some(node) = node_program() else {
            return Some(format!("`node` is not on PATH; {install}"));
        };
        let version = toolchain::stdout_of(Command::new(&node).arg("--version"));
        match version.as_deref().ok().and_then(toolchain::parse_version) {
            Some((major, _, _)) if major >= NODE_MIN_MAJOR => None,
            Some(_) => Some(format!(
                "`{}` is {}; {install}",
                node.display(),
                version.as_deref().unwrap_or("?").trim()
            )),
            None => Some(format!("`{} --version` failed; {install}", node.display())),
        }
    }

    fn execute(&self, job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution> {
        let node = node_program().context("`node` is not on PATH; install Node.js 20 or newer")?;
        let scratch = scratch_dir(job.artifact, "node", "bench")?;
        let dir = scratch.path();
        let module = module_file(job.artifact)?;
        if !module.is_file() {
            bail!(
                "`{}` is missing; build the package with `cargo medwasm build --target browser`",
                module.display()
            );
        }
        let module = std::fs::canonicalize(&module)
            .with_context(|| format!("cannot resolve `{}`", module.display()))?;
        let module_url = file_url(&module)?;
        let job_file = dir.join("job.json");
        let harness_job = HarnessJob::new(job, module_url.clone(), String::new());
        let json = serde_json::to_vec(&harness_job).context("cannot serialize the bench job")?;
        for (file, bytes) in [
            ("harness.mjs", HARNESS_JS.as_bytes()),
            ("main.mjs", MAIN_MJS.as_bytes()),
            ("job.json", &json),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
        }

        progress(Progress::Phase {
            verb: "Node.js",
            len: 1,
        });
        let mut cmd = Command::new(&node);
        cmd.arg(dir.join("main.mjs"))
            .arg(&module_url)
            .arg(job.artifact)
            .arg(&job_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = Supervised::spawn(&mut cmd)?;
        let line = child.line().to_string();
        let waited = child.wait_output(TIMEOUT)?;
        progress(Progress::Step);
        let Some(status) = waited.status else {
            bail!(
                "`{line}` did not finish within {} s and was stopped; with a slow model, lower `--runs`",
                TIMEOUT.as_secs()
            );
        };
        let (stdout, stderr) = (waited.stdout, String::from_utf8_lossy(&waited.stderr));
        if !status.success() {
            bail!("`{line}` failed ({status}): {}", stderr.trim());
        }
        let result: HarnessResult = serde_json::from_slice(&stdout).with_context(|| {
            format!(
                "`{line}` printed no bench results: {}{}",
                String::from_utf8_lossy(&stdout)
                    .chars()
                    .take(500)
                    .collect::<String>(),
                stderr.trim()
            )
        })?;
        result.into_execution(job, "Node.js")
    }
}

/// The doctor's check of a `node --version` probe.
pub fn check_node(probe: Probe) -> Check {
    let name = format!("node >= {NODE_MIN_MAJOR}");
    const PURPOSE: &str = "runs `cargo medwasm bench --target node`";
    const INSTALL: &str = "install Node.js 20 or newer from https://nodejs.org";
    match probe {
        Probe::Ran(version) => match toolchain::parse_version(&version) {
            Some((major, _, _)) if major >= NODE_MIN_MAJOR => Check::ok(name, version),
            _ => Check::missing(name, false, format!("{PURPOSE}; found {version}"), INSTALL),
        },
        Probe::NotFound | Probe::Failed(_) => Check::missing(name, false, PURPOSE, INSTALL),
    }
}

/// `file:///abs/path` with the characters a URL cannot hold percent-encoded.
pub fn file_url(path: &std::path::Path) -> Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("`{}` is not valid UTF-8", path.display()))?;
    let mut url = String::from("file://");
    if !text.starts_with('/') {
        url.push('/');
    }
    for byte in text.replace('\\', "/").bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~:".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_escaped() {
        assert_eq!(
            file_url(std::path::Path::new("/tmp/my dir/x#1.js")).unwrap(),
            "file:///tmp/my%20dir/x%231.js"
        );
    }
}
