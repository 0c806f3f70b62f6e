//! What the Rust side of the JS runners shares: the job handed to
//! `targets/browser/harness.js`, the results it hands back, and turning them into an
//! [`Execution`] so that browser and Node rows join the same report as Wasmtime.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::{decode_f32, encode_f32};
use crate::report::{Finding, Latency, percentiles};
use crate::runner::{DetectorError, Execution, Inference, Job, Outcome};
use crate::toolchain;

/// How long a JS runner may take for the whole suite before it is stopped.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// The job as the harness reads it.
#[derive(Debug, Serialize)]
pub struct HarnessJob {
    /// Per case, each input as base64 little-endian f32.
    pub cases: Vec<HarnessCase>,
    /// Timed warm samples.
    pub runs: usize,
    /// Where the page finds the ES module (Chromium only).
    pub module: String,
    /// Where the page finds the `.wasm` (Chromium only).
    pub wasm: String,
}

/// One case's inputs.
#[derive(Debug, Serialize)]
pub struct HarnessCase {
    /// Base64 of each input.
    pub inputs: Vec<String>,
}

impl HarnessJob {
    /// The job for `job`, with the module and wasm at these URLs.
    pub fn new(job: &Job<'_>, module: String, wasm: String) -> HarnessJob {
        HarnessJob {
            cases: job
                .cases
                .iter()
                .map(|c| HarnessCase {
                    inputs: c.inputs.iter().map(|i| encode_f32(i)).collect(),
                })
                .collect(),
            runs: job.runs,
            module,
            wasm,
        }
    }
}

/// What the harness posts back.
#[derive(Debug, Deserialize)]
pub struct HarnessResult {
    /// The JS engine, filled in by the page or script around the harness.
    #[serde(default)]
    pub runtime: String,
    /// One per case.
    #[serde(default)]
    pub outcomes: Vec<JsOutcome>,
    /// Cold starts from bytes, ms.
    #[serde(default)]
    pub cold: Vec<f64>,
    /// Cold starts from a compiled module, ms.
    #[serde(default)]
    pub cold_cached: Vec<f64>,
    /// Warm samples, ms per run.
    #[serde(default)]
    pub samples: Vec<f64>,
    /// Runs per timed sample.
    #[serde(default)]
    pub batch: u64,
    /// Linear memory bytes after the runs.
    #[serde(default)]
    pub memory_bytes: u64,
    /// Console errors and uncaught exceptions the page saw.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Why the suite could not run at all.
    pub fatal: Option<String>,
}

/// One case's outcome, as the harness reports it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsOutcome {
    /// Outputs and finding.
    Ok {
        /// Base64 of each output.
        outputs: Vec<String>,
        /// Base64 of the score as one f32 (JSON has no NaN or ±Infinity).
        score: String,
        /// Label.
        label: i32,
        /// Alert.
        alert: bool,
    },
    /// A `MedwasmError`.
    Error {
        /// ABI code.
        code: i32,
        /// Its message.
        message: String,
    },
    /// Anything else thrown (a trap is a `WebAssembly.RuntimeError`).
    Trap(String),
}

impl HarnessResult {
    /// Checks the result is complete and turns it into an [`Execution`].
    pub fn into_execution(self, job: &Job<'_>, where_: &str) -> Result<Execution> {
        if let Some(fatal) = self.fatal {
            bail!(
                "the bench suite failed in {where_}: {fatal}{}",
                errors_note(&self.errors)
            );
        }
        if !self.errors.is_empty() {
            bail!(
                "{where_} reported errors while benching: {}",
                self.errors.join("; ")
            );
        }
        if self.outcomes.len() != job.cases.len() {
            bail!(
                "{where_} returned {} outcomes for {} vectors; this is a bug in cargo-medwasm",
                self.outcomes.len(),
                job.cases.len()
            );
        }
        let outcomes = self
            .outcomes
            .into_iter()
            .map(|o| -> Result<Outcome> {
                Ok(match o {
                    JsOutcome::Ok {
                        outputs,
                        score,
                        label,
                        alert,
                    } => Ok(Inference {
                        outputs: outputs
                            .iter()
                            .map(|o| decode_f32(o))
                            .collect::<Result<_>>()?,
                        finding: Finding {
                            score: match decode_f32(&score)?.as_slice() {
                                [score] => *score,
                                other => bail!(
                                    "{where_} sent a score of {} values; this is a bug in cargo-medwasm",
                                    other.len()
                                ),
                            },
                            label,
                            alert,
                        },
                    }),
                    JsOutcome::Error { code, message } => {
                        Err(DetectorError::Code { code, message })
                    }
                    JsOutcome::Trap(message) => Err(DetectorError::Trap(message)),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ms_to_us = |v: &[f64]| -> Vec<f64> { v.iter().map(|ms| ms * 1000.0).collect() };
        let median = |v: &[f64]| -> Option<f64> { percentiles(&mut ms_to_us(v)).map(|p| p.0) };
        let mut samples = ms_to_us(&self.samples);
        let mut runtime = self.runtime;
        if self.batch > 1 {
            runtime.push_str(&format!(", timed in batches of {}", self.batch));
        }
        // Fields only other targets fill (the MCU target's device figures) keep their
        // defaults, so a new such field needs no change here.
        #[allow(clippy::needless_update)]
        Ok(Execution {
            runtime,
            outcomes,
            latency: Latency {
                cold_start_us: median(&self.cold),
                cold_start_cached_us: median(&self.cold_cached),
                ..Latency::default()
            }
            .with_warm(&mut samples),
            wasm_pages: Some(self.memory_bytes / 65536),
            ..Execution::default()
        })
    }
}

fn errors_note(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(" (console: {})", errors.join("; "))
    }
}

/// A scratch folder, removed with its contents when dropped: on success and on every
/// error path alike. Drop the processes that use it first.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh scratch folder for one runner: `target/medwasm/<target>/<what>-<pid>/`.
/// The process id keeps two benches sharing a target directory apart.
pub fn scratch_dir(job: &Job<'_>, target: &str, what: &str) -> Result<Scratch> {
    // The artifact sits in `target/medwasm/browser/pkg/`.
    let base = job
        .artifact
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .context("the artifact is not inside `target/medwasm/`; this is a bug in cargo-medwasm")?;
    let dir = base
        .join(target)
        .join(format!("{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    Ok(Scratch(dir))
}

/// A child process in its own process group, stopped (group and all) on drop.
#[derive(Debug)]
pub struct Supervised {
    child: Child,
    line: String,
    done: bool,
}

impl Supervised {
    /// Spawns `cmd` with stdin closed, in a new process group on Unix.
    pub fn spawn(cmd: &mut Command) -> Result<Supervised> {
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        // Its own process group keeps the terminal's Ctrl-C from reaching the child,
        // and a Ctrl-C or a kill of cargo-medwasm skips `Drop`: have the kernel stop
        // the child when we go, so no headless browser outlives the bench.
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: the closure runs in the forked child before exec and only calls
            // prctl, which is async-signal-safe and touches no memory of ours.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.stdin(Stdio::null());
        let line = toolchain::command_line(cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run `{line}`"))?;
        Ok(Supervised {
            child,
            line,
            done: false,
        })
    }

    /// The command line, for error messages.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self
            .child
            .try_wait()
            .with_context(|| format!("cannot wait for `{}`", self.line))?;
        if status.is_some() {
            self.done = true;
        }
        Ok(status)
    }

    /// Waits for the exit with its stdout, or fails after `timeout`.
    pub fn wait_output(mut self, timeout: Duration) -> Result<(ExitStatus, Vec<u8>, Vec<u8>)> {
        let mut stdout = self.child.stdout.take();
        let mut stderr = self.child.stderr.take();
        let out = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        });
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.try_wait()? {
                break status;
            }
            if started.elapsed() > timeout {
                let line = self.line.clone();
                drop(self);
                bail!(
                    "`{line}` did not finish within {} s and was stopped; with a slow model, lower `--runs`",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        Ok((status, stdout, stderr))
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The whole group: Chromium starts helper processes of its own.
        #[cfg(unix)]
        {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill")
                .args(["-TERM", "--", &group])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
