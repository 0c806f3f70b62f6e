//! What the Rust side of the JS runners shares: the job handed to
//! `targets/browser/harness.js`, the results it hands back, and turning them into an
//! [`Execution`] so that browser and Node rows join the same report as Wasmtime.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::protocol::{DetectorError, Execution, Inference, Job, Outcome};
use crate::report::{Finding, Latency, percentiles};

/// The conformance and latency suite both JS runners execute.
pub const HARNESS_JS: &str = include_str!("../../../../targets/browser/harness.js");

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
                    // As the ABI takes them: an int8 input's (`--io int8`) int8
                    // values, which the loader writes into its Int8Array.
                    inputs: c
                        .inputs
                        .iter()
                        .zip(&job.manifest.inputs)
                        .map(|(i, spec)| encode_f32(&spec.to_abi(i)))
                        .collect(),
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
                        // An int8 output comes as its int8 values: real ones here.
                        outputs: outputs
                            .iter()
                            .zip(&job.manifest.outputs)
                            .map(|(o, spec)| decode_f32(o).map(|abi| spec.from_abi(abi)))
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

/// Base64 of `values` as little-endian f32: how tensors travel to and from the JS
/// harness (JSON has no NaN or Infinity).
pub fn encode_f32(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`encode_f32`].
pub fn decode_f32(text: &str) -> Result<Vec<f32>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .context("a tensor from the JS harness is not valid base64")?;
    if bytes.len() % 4 != 0 {
        anyhow::bail!(
            "a tensor from the JS harness has {} bytes, not a multiple of 4",
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_with_non_finite_values() {
        let values = [1.5, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e-39];
        let back = decode_f32(&encode_f32(&values)).unwrap();
        assert_eq!(back.len(), values.len());
        for (a, b) in values.iter().zip(&back) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert!(decode_f32("AAA=").is_err(), "3 bytes");
        assert!(decode_f32("not base64!").is_err());
    }
}
