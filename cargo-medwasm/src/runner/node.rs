//! The Node.js runner: imports the browser package in `node` (20 or newer) and runs
//! the JS harness (`targets/browser/harness.js`) there, so the figures are those of
//! the package a Node service would load.

use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use super::{Execution, Job, Progress, Runner};
use crate::browser::harness::{HarnessJob, HarnessResult, Supervised, TIMEOUT, scratch_dir};
use crate::browser::{HARNESS_JS, module_file};
use crate::cmd::build::BuildTarget;
use crate::toolchain;

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

/// Runs detectors in Node.js.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeRunner;

/// The `node` to run: `MEDWASM_NODE` if set, else the one on `PATH`.
fn node_program() -> Option<std::path::PathBuf> {
    match std::env::var_os("MEDWASM_NODE") {
        Some(path) => Some(path.into()),
        None => toolchain::which("node"),
    }
}

impl Runner for NodeRunner {
    fn target(&self) -> &'static str {
        "node"
    }

    fn build_target(&self) -> BuildTarget {
        BuildTarget::Browser
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
        let scratch = scratch_dir(job, "node", "bench")?;
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
        let (status, stdout, stderr) = child.wait_output(TIMEOUT)?;
        progress(Progress::Step);
        let stderr = String::from_utf8_lossy(&stderr);
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
