//! The bench protocol every target speaks: the job a target's runner gets (test
//! vectors, warm runs), what it hands back (raw outputs, detector errors, timings),
//! and the one comparison against the references that turns it into the target's
//! [`TargetReport`]. Runners drive a detector through the detector ABI
//! (`docs/detector-abi.md`); nothing here knows any target.

use std::fmt;
use std::path::Path;

use crate::manifest::{Manifest, Quant};
use crate::report::{
    Deviation, Finding, Latency, Memory, Size, TargetReport, Tolerance, VectorResult,
};

/// One test vector: the detector's inputs and what its outputs are compared against.
#[derive(Debug, Clone, Default)]
pub struct Case {
    /// Elements of each model input, in manifest order.
    pub inputs: Vec<Vec<f32>>,
    /// tract's outputs for these inputs, in manifest order; `None` when tract could not
    /// run the original model.
    pub tract: Option<Vec<Vec<f32>>>,
    /// Stored expected elements of each output, in manifest order; `None` for an output
    /// without a `vectors/expected*.npy` file.
    pub expected: Vec<Option<Vec<f32>>>,
}

impl Case {
    /// True when at least one reference exists to compare against.
    pub fn has_reference(&self) -> bool {
        self.tract.is_some() || self.expected.iter().any(Option::is_some)
    }
}

/// Everything a runner needs to bench one built artifact.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The artifact `cargo medwasm build` produced for the runner's target.
    pub artifact: &'a Path,
    /// The model manifest the artifact must agree with.
    pub manifest: &'a Manifest,
    /// The test vectors, in file order.
    pub cases: &'a [Case],
    /// Timed warm runs.
    pub runs: usize,
}

/// What a runner reports while it works; the CLI turns it into progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A phase of `len` steps begins (`verb` is a short label such as `Checking`).
    Phase {
        /// Label of the phase.
        verb: &'static str,
        /// Number of steps.
        len: u64,
    },
    /// One step of the current phase is done.
    Step,
}

/// What a runner observed.
#[derive(Debug, Clone, Default)]
pub struct Execution {
    /// The runtime and its version, e.g. `wasmtime 48.0.8 (embedded)`.
    pub runtime: String,
    /// One outcome per case, in case order.
    pub outcomes: Vec<Outcome>,
    /// Latency figures.
    pub latency: Latency,
    /// Linear memory pages after the warm runs, for wasm targets.
    pub wasm_pages: Option<u64>,
    /// Instruction count, flash and RAM, for device targets.
    pub device: Option<crate::report::Device>,
}

/// The result of running one case.
pub type Outcome = std::result::Result<Inference, DetectorError>;

/// Outputs and finding of one successful `medwasm_run`.
#[derive(Debug, Clone)]
pub struct Inference {
    /// Elements of each output, in manifest order.
    pub outputs: Vec<Vec<f32>>,
    /// The detector's interpretation.
    pub finding: Finding,
}

/// Why a case produced no outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectorError {
    /// `medwasm_run` returned a non-zero code with this message.
    Code {
        /// The ABI error code.
        code: i32,
        /// The text at `medwasm_error_ptr`.
        message: String,
    },
    /// The detector trapped (a panic, an out-of-bounds access …).
    Trap(String),
}

impl fmt::Display for DetectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectorError::Code { code, message } => {
                match error_name(*code) {
                    Some(name) => write!(f, "error {code} (`{name}`)")?,
                    None => write!(f, "error {code}")?,
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            DetectorError::Trap(message) => write!(f, "trapped: {message}"),
        }
    }
}

/// Name of an ABI error code: the SDK's table, which `docs/detector-abi.md`, the JS
/// loader and the C header spell the same way (the numbers are stable, so a runner
/// names the codes of a detector built with any SDK of this ABI).
pub fn error_name(code: i32) -> Option<&'static str> {
    usize::try_from(code)
        .ok()
        .and_then(|c| medwasm::ERROR_NAMES.get(c).copied())
}

/// The detector ABI version these runners speak.
pub const ABI_VERSION: i32 = 2;

/// Compares each outcome with its case's references and assembles the target's report.
///
/// A case passes when the detector produced outputs and they agree with every
/// reference the case has; the target passes when every case does.
pub fn conformance(
    target: &str,
    job: &Job<'_>,
    execution: Execution,
    size: Size,
    tolerance: Tolerance,
) -> TargetReport {
    let quant = output_quant(job.manifest);
    let vectors: Vec<VectorResult> = job
        .cases
        .iter()
        .zip(&execution.outcomes)
        .enumerate()
        .map(|(index, (case, outcome))| compare(index, case, outcome, &quant, tolerance))
        .collect();
    // A runner that returned fewer outcomes than cases would otherwise pass silently.
    let complete = execution.outcomes.len() == job.cases.len();
    let passed = complete && !vectors.is_empty() && vectors.iter().all(VectorResult::passed);
    TargetReport {
        target: target.to_string(),
        runtime: execution.runtime,
        artifact: job.artifact.display().to_string(),
        vectors,
        passed,
        latency: execution.latency,
        size,
        memory: Memory {
            arena_bytes: job.manifest.arena_bytes,
            wasm_pages: execution.wasm_pages,
        },
        device: execution.device,
        failure: None,
    }
}

/// How the model quantizes each output (`None` for a float output), in manifest order.
pub fn output_quant(manifest: &Manifest) -> Vec<Option<Quant>> {
    manifest.outputs.iter().map(|o| o.quant).collect()
}

/// Compares one outcome with the references of its case; outputs the model quantizes
/// (`quant[j]`) are compared in quantization steps.
pub fn compare(
    index: usize,
    case: &Case,
    outcome: &Outcome,
    quant: &[Option<Quant>],
    tolerance: Tolerance,
) -> VectorResult {
    match outcome {
        Err(err) => VectorResult {
            index,
            vs_tract: None,
            vs_expected: None,
            finding: None,
            error: Some(err.to_string()),
        },
        Ok(inference) => {
            let vs_tract = case.tract.as_ref().and_then(|want| {
                deviation(&inference.outputs, want.iter().map(Some), quant, tolerance)
            });
            let vs_expected = deviation(
                &inference.outputs,
                case.expected.iter().map(Option::as_ref),
                quant,
                tolerance,
            );
            VectorResult {
                index,
                vs_tract,
                vs_expected,
                finding: Some(inference.finding),
                error: None,
            }
        }
    }
}

/// Merged deviation of the outputs that have a reference; `None` when none has one.
///
/// A reference for an output the detector did not produce counts as a failure, so a
/// detector with too few outputs cannot pass.
fn deviation<'w>(
    got: &[Vec<f32>],
    want: impl Iterator<Item = Option<&'w Vec<f32>>>,
    quant: &[Option<Quant>],
    tolerance: Tolerance,
) -> Option<Deviation> {
    let mut merged: Option<Deviation> = None;
    for (j, want) in want.enumerate() {
        let Some(want) = want else { continue };
        let got = got.get(j).map(Vec::as_slice).unwrap_or(&[]);
        let d = match quant.get(j).copied().flatten() {
            Some(q) => Deviation::compare_steps(got, want, &q, tolerance),
            None => Deviation::compare(got, want, tolerance),
        };
        merged = Some(match merged {
            Some(m) => m.merge(d),
            None => d,
        });
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table of error names that ships (the JS loader, the C header, the ABI
    /// document) says what the SDK's says, code for code.
    #[test]
    fn error_tables_agree_with_the_sdk() {
        let names = medwasm::ERROR_NAMES;
        assert_eq!(error_name(14), Some("WrongDtype"));
        assert_eq!(error_name(names.len() as i32), None);
        assert_eq!(error_name(-1), None);

        let loader = include_str!("../../targets/browser/loader.js");
        let table = loader
            .split_once("const ERROR_NAMES = [")
            .and_then(|(_, rest)| rest.split_once("];"))
            .expect("loader.js has ERROR_NAMES")
            .0;
        let js: Vec<&str> = table
            .split(',')
            .map(|n| n.trim().trim_matches('"'))
            .filter(|n| !n.is_empty())
            .collect();
        assert_eq!(js, names, "targets/browser/loader.js ERROR_NAMES");

        let header = include_str!("../../targets/mcu/detector.h");
        let abi = include_str!("../../docs/detector-abi.md");
        for (code, name) in names.iter().enumerate().skip(1) {
            let mut upper = String::new();
            for (i, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    upper.push('_');
                }
                upper.push(c.to_ascii_uppercase());
            }
            assert!(
                header.contains(&format!("MEDWASM_{upper} = {code}")),
                "targets/mcu/detector.h lacks MEDWASM_{upper} = {code}"
            );
            assert!(
                abi.contains(&format!("| {code} | `{name}` |")),
                "docs/detector-abi.md lacks code {code} `{name}`"
            );
        }
    }

    const TOL: Tolerance = Tolerance {
        abs: 1e-4,
        rel: 1e-3,
        steps: 0,
    };

    fn ok(outputs: Vec<Vec<f32>>) -> Outcome {
        Ok(Inference {
            outputs,
            finding: Finding {
                score: 1.0,
                label: 0,
                alert: false,
            },
        })
    }

    #[test]
    fn compare_uses_every_available_reference() {
        let case = Case {
            inputs: vec![vec![1.0]],
            tract: Some(vec![vec![2.0], vec![3.0]]),
            expected: vec![None, Some(vec![3.5])],
        };
        let row = compare(4, &case, &ok(vec![vec![2.0], vec![3.0]]), &[], TOL);
        assert_eq!(row.index, 4);
        assert!(row.vs_tract.is_some_and(|d| d.pass));
        let vs_expected = row.vs_expected.expect("output 1 has an expected file");
        assert!(!vs_expected.pass);
        assert!((vs_expected.max_abs - 0.5).abs() < 1e-6);
        assert!(!row.passed());
    }

    #[test]
    fn missing_output_and_missing_reference() {
        let case = Case {
            inputs: vec![],
            tract: Some(vec![vec![1.0], vec![2.0]]),
            expected: vec![],
        };
        let row = compare(0, &case, &ok(vec![vec![1.0]]), &[], TOL);
        assert!(
            !row.vs_tract.is_some_and(|d| d.pass),
            "a missing output must fail"
        );
        assert!(row.vs_expected.is_none());

        let bare = Case {
            inputs: vec![],
            tract: None,
            expected: vec![None],
        };
        let row = compare(0, &bare, &ok(vec![vec![1.0]]), &[], TOL);
        assert!(row.vs_tract.is_none() && row.vs_expected.is_none());
        assert!(
            !row.passed(),
            "a vector with nothing to compare against proves nothing"
        );
    }

    #[test]
    fn errors_are_named() {
        let err = DetectorError::Code {
            code: 11,
            message: "input 0 element 3 is NaN".into(),
        };
        assert_eq!(
            err.to_string(),
            "error 11 (`NonFinite`): input 0 element 3 is NaN"
        );
        let row = compare(0, &Case::default(), &Err(err), &[], TOL);
        assert!(!row.passed());
        assert_eq!(
            DetectorError::Code {
                code: 99,
                message: String::new()
            }
            .to_string(),
            "error 99"
        );
    }

    #[test]
    fn quantized_outputs_are_compared_in_steps() {
        use crate::manifest::QuantDtype;
        let q = Quant {
            dtype: QuantDtype::I8,
            scale: 0.5,
            zero_point: -3,
        };
        let real =
            |ints: &[i32]| -> Vec<f32> { ints.iter().map(|&v| q.dequantize(v as f32)).collect() };
        let want = real(&[-128, 0, 5, 127]);
        let case = Case {
            inputs: vec![],
            tract: None,
            expected: vec![Some(want)],
        };
        let quant = [Some(q)];
        // Exactly the same integers: passes at 0 steps.
        let row = compare(0, &case, &ok(vec![real(&[-128, 0, 5, 127])]), &quant, TOL);
        let steps = row.vs_expected.unwrap().steps.unwrap();
        assert!(row.passed());
        assert_eq!(
            (steps.exact, steps.one, steps.more, steps.max),
            (4, 0, 0, 0)
        );
        // One element one step off: 0.5 apart in reals, far beyond abs/rel, but the
        // verdict is in steps.
        let row = compare(0, &case, &ok(vec![real(&[-128, 1, 5, 127])]), &quant, TOL);
        let d = row.vs_expected.unwrap();
        assert!(!d.pass, "0 steps allowed by default");
        assert_eq!(d.steps.unwrap().one, 1);
        let loose = Tolerance { steps: 1, ..TOL };
        assert!(compare(0, &case, &ok(vec![real(&[-128, 1, 5, 127])]), &quant, loose).passed());
        // Three steps and a moved maximum; NaN never passes.
        let row = compare(
            0,
            &case,
            &ok(vec![real(&[-128, 0, 127, 124])]),
            &quant,
            loose,
        );
        let steps = row.vs_expected.unwrap().steps.unwrap();
        assert_eq!(steps.max, 122);
        assert!(!steps.argmax_agrees);
        let nan = compare(0, &case, &ok(vec![vec![f32::NAN; 4]]), &quant, loose);
        assert!(!nan.passed());
        assert_eq!(nan.vs_expected.unwrap().steps.unwrap().max, u64::MAX);
    }
}
