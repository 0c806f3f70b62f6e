//! The Chromium runner: serves the browser package and a bench page on a localhost
//! port, opens it in headless Chromium (Debian's `chromium`), and waits for the page
//! to POST the JS harness's results back. No DevTools protocol or driver is needed;
//! the page reports console errors and uncaught exceptions with its results.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::harness::{HARNESS_JS, HarnessJob, HarnessResult, TIMEOUT};
use super::package::module_file;
use crate::http::{Request, Response, Server};
use crate::prereq::{Check, Probe, probe};
use crate::process::{Supervised, scratch_dir};
use crate::protocol::{Execution, Job, Progress};

/// Names Chromium goes by across distributions and Google's own package.
pub const CHROMIUM_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// Flags for a quiet, reproducible headless run: no first-run UI, no background
/// traffic, no throttling of the (invisible) page's timers.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--enable-logging=stderr",
];

/// The page that runs the harness and posts its results.
const BENCH_HTML: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>cargo medwasm bench</title>
<script>
  window.__medwasmErrors = [];
  addEventListener("error", (e) => __medwasmErrors.push(String(e.message || e)));
  addEventListener("unhandledrejection", (e) =>
    __medwasmErrors.push("unhandled rejection: " + String((e.reason && e.reason.stack) || e.reason)));
  const consoleError = console.error;
  console.error = (...args) => { __medwasmErrors.push(args.map(String).join(" ")); consoleError.apply(console, args); };
</script>
<script type="module">
  import { runSuite } from "./harness.js";
  let result;
  try {
    const job = await (await fetch("./job.json")).json();
    const mod = await import(job.module);
    const wasm = new Uint8Array(await (await fetch(job.wasm)).arrayBuffer());
    result = await runSuite(mod, wasm, job);
  } catch (err) {
    result = { fatal: String((err && err.stack) || err) };
  }
  // The user agent string says `156.0.0.0`; the full version needs a client hint.
  let version = (/(?:Chrome|Chromium)\/([\d.]+)/.exec(navigator.userAgent) || [])[1] || navigator.userAgent;
  try {
    const hints = await navigator.userAgentData.getHighEntropyValues(["fullVersionList"]);
    const brand = hints.fullVersionList.find((b) => /Chrom/.test(b.brand));
    if (brand) version = brand.version;
  } catch (_) { /* older engines: keep the user agent's version */ }
  result.runtime = `Chromium ${version} (headless${crossOriginIsolated ? ", cross-origin isolated" : ""})`;
  result.errors = window.__medwasmErrors;
  await fetch("./results", { method: "POST", body: JSON.stringify(result) });
  document.title = "done";
</script>
</html>
"#;

/// The Chromium to run: `MEDWASM_CHROMIUM` if set, else the first of
/// [`CHROMIUM_NAMES`] on `PATH`.
pub fn chromium_program() -> Option<PathBuf> {
    match std::env::var_os("MEDWASM_CHROMIUM") {
        Some(path) => Some(path.into()),
        None => CHROMIUM_NAMES.iter().find_map(|n| which::which(n).ok()),
    }
}

/// Why Chromium cannot run here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    missing_chromium(chromium_program().as_deref())
}

/// Why `chromium` (the program found, if any) cannot run, or `None` when it can.
fn missing_chromium(chromium: Option<&Path>) -> Option<String> {
    match chromium {
        Some(path) if path.is_file() => None,
        Some(path) => Some(format!(
            "`{}` does not exist; {INSTALL_CHROMIUM}",
            path.display()
        )),
        None => Some(format!("Chromium is not installed; {INSTALL_CHROMIUM}")),
    }
}

/// What to tell a user without Chromium.
pub const INSTALL_CHROMIUM: &str = "install it with `sudo apt-get install chromium` (or run `.ci/setup`), or point `MEDWASM_CHROMIUM` at a Chrome or Chromium binary";

/// Runs `job` in headless Chromium.
pub fn execute(job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution> {
    let chromium = chromium_program()
        .with_context(|| format!("Chromium is not installed; {INSTALL_CHROMIUM}"))?;
    let module = module_file(job.artifact)?;
    if !module.is_file() {
        bail!(
            "`{}` is missing; build the package with `cargo medwasm build --target browser`",
            module.display()
        );
    }
    let pkg = job
        .artifact
        .parent()
        .context("the artifact has no folder; this is a bug in cargo-medwasm")?
        .to_path_buf();
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let harness_job = HarnessJob::new(
        job,
        format!("./pkg/{}", file_name(&module).unwrap_or_default()),
        format!("./pkg/{}", file_name(job.artifact).unwrap_or_default()),
    );
    let job_json = serde_json::to_vec(&harness_job).context("cannot serialize the bench job")?;

    let (sender, results) = mpsc::channel::<Vec<u8>>();
    let sender = Mutex::new(sender);
    let handler = move |request: &Request| -> Response {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/") => Response::ok("text/html; charset=utf-8", BENCH_HTML),
            ("GET", "/harness.js") => Response::ok("text/javascript; charset=utf-8", HARNESS_JS),
            ("GET", "/job.json") => Response::ok("application/json", job_json.clone()),
            ("GET", path) if path.starts_with("/pkg/") => Response::file(&pkg, &path[5..]),
            ("POST", "/results") => {
                if let Ok(sender) = sender.lock() {
                    let _ = sender.send(request.body.clone());
                }
                Response::ok("text/plain", "ok")
            }
            (_, path) => Response::error(404, format!("not found: {path}")),
        }
    };
    let server = Server::start(0, Arc::new(handler))?;

    // Declared before the browser, so dropped after it: Chromium is stopped before
    // its profile folder is removed, on every path out of here.
    let scratch = scratch_dir(job.artifact, "browser", "chromium-profile")?;
    let profile = scratch.path();
    let log = profile.join("chromium.log");
    let log_file = std::fs::File::create(&log)
        .with_context(|| format!("cannot create `{}`", log.display()))?;
    let mut cmd = Command::new(&chromium);
    cmd.args(CHROMIUM_FLAGS)
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .arg(server.url())
        .stdout(Stdio::null())
        .stderr(log_file);

    progress(Progress::Phase {
        verb: "Chromium",
        len: 1,
    });
    let mut browser = Supervised::spawn(&mut cmd)?;
    let started = Instant::now();
    let body = loop {
        match results.recv_timeout(Duration::from_millis(100)) {
            Ok(body) => break body,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("the bench server stopped; this is a bug in cargo-medwasm")
            }
        }
        if let Some(status) = browser.try_wait()? {
            bail!(
                "Chromium exited ({status}) before the bench page reported; its log:\n{}\n(command: `{}`)",
                log_tail(&log),
                browser.line()
            );
        }
        if started.elapsed() > TIMEOUT {
            let line = browser.line().to_string();
            drop(browser);
            bail!(
                "the bench page in Chromium did not report within {} s; with a slow model, lower `--runs`. Chromium's log:\n{}\n(command: `{line}`)",
                TIMEOUT.as_secs(),
                log_tail(&log)
            );
        }
    };
    drop(browser);
    drop(server);
    progress(Progress::Step);
    let result: HarnessResult = serde_json::from_slice(&body)
        .context("the bench page posted something that is not a bench result")?;
    result.into_execution(job, "Chromium")
}

/// The doctor's check: which Chromium `bench --target browser` would run.
pub fn check() -> Check {
    const PURPOSE: &str = "runs `cargo medwasm bench --target browser` headless";
    let Some(path) = chromium_program() else {
        return Check::missing("chromium", false, PURPOSE, "apt-get install chromium");
    };
    match probe(&path, &["--version"]) {
        Probe::Ran(version) => Check::ok("chromium", version),
        _ => Check::ok("chromium", path.display().to_string()),
    }
}

/// The last lines of Chromium's log, without its noisy but harmless D-Bus chatter.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("dbus") && !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_chromium_says_how_to_install_it() {
        let none = missing_chromium(None).unwrap();
        assert!(none.contains("sudo apt-get install chromium"), "{none}");
        let gone = missing_chromium(Some(Path::new("/nonexistent/chromium"))).unwrap();
        assert!(
            gone.contains("`/nonexistent/chromium` does not exist"),
            "{gone}"
        );
        assert!(gone.contains("MEDWASM_CHROMIUM"), "{gone}");
        let here = std::env::current_exe().unwrap();
        assert_eq!(missing_chromium(Some(&here)), None);
    }
}
