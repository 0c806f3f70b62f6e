//! One result type for `bench` across targets: one table, one JSON schema.
//! A new target adds a runner that fills a [`TargetReport`], not a new report.

use std::fmt;

use serde::Serialize;

use crate::manifest::Quant;

pub mod html;

/// Version of the `--json` schema; bump it when a field changes meaning or goes away.
/// 2: `latency.median_us`, `p95_us` and `p99_us` are `null` where nothing was timed
/// (device targets count instructions; a target whose every vector failed).
pub const REPORT_SCHEMA: u32 = 2;

/// Everything `cargo medwasm bench` measured, for all targets it ran.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Schema version of this JSON.
    pub schema: u32,
    /// Detector package name.
    pub detector: String,
    /// The model manifest's source file and sha256.
    pub model: String,
    /// Model source sha256.
    pub model_sha256: String,
    /// Tolerances used: |got - want| <= abs + rel * |want|.
    pub tolerance: Tolerance,
    /// Machine the host side ran on (`uname`-style), for reproducibility.
    pub host: String,
    /// The tool that measured, e.g. `cargo-medwasm 0.1.0`.
    pub tool: String,
    /// When the bench finished, UTC (`2026-12-01T04:22:53Z`).
    pub generated: String,
    /// One entry per target.
    pub targets: Vec<TargetReport>,
    /// Targets `--target all` left out because they cannot run on this machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// A target `--target all` left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// The target's name.
    pub target: String,
    /// What is missing, and how to get it.
    pub why: String,
}

/// Conformance tolerance.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tolerance {
    /// Absolute part.
    pub abs: f32,
    /// Relative part.
    pub rel: f32,
    /// For outputs the model quantizes: how many quantization steps an element may be
    /// off (0 against the reference kernels); `abs` and `rel` do not apply to them.
    pub steps: u32,
}

/// What one target measured.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// `wasmtime`, `browser`, `node`, `mcu` …
    pub target: String,
    /// The runtime and its version, e.g. `wasmtime 48.0.8 (embedded)`.
    pub runtime: String,
    /// Artifact path.
    pub artifact: String,
    /// Conformance, one row per test vector.
    pub vectors: Vec<VectorResult>,
    /// True when every vector passed against every reference.
    pub passed: bool,
    /// Latency figures.
    pub latency: Latency,
    /// Sizes.
    pub size: Size,
    /// Memory.
    pub memory: Memory,
    /// Figures of a target that runs on a (possibly emulated) device: `mcu`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// Why nothing was measured on this target (a device that could not be reached
    /// or whose run failed); the row is then a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// A target (a device) that could not be benched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// `unreachable` (no connection) or `failed` (reached, but a step failed).
    pub kind: FailureKind,
    /// What happened, naming the step.
    pub message: String,
}

/// The kinds of [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// No connection to the device.
    Unreachable,
    /// Connected, but a step (copying, the runtime, the harness) failed.
    Failed,
}

impl TargetReport {
    /// The row of a target that could not be benched.
    pub fn failed(
        target: &str,
        artifact: &str,
        size: Size,
        kind: FailureKind,
        message: String,
    ) -> TargetReport {
        TargetReport {
            target: target.to_string(),
            runtime: String::new(),
            artifact: artifact.to_string(),
            vectors: Vec::new(),
            passed: false,
            latency: Latency::default(),
            size,
            memory: Memory::default(),
            device: None,
            failure: Some(Failure { kind, message }),
        }
    }
}

/// What a microcontroller target measures beyond the common figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    /// Board name, e.g. `qemu-mps2-an386`.
    pub board: String,
    /// How `instructions` was counted, in words for the reader.
    pub counting: String,
    /// Instructions per inference, the same for every timed run; QEMU counts
    /// instructions, not cycles.
    pub instructions: u64,
    /// Instructions of `medwasm_init`, which validates the blob (CRC-32 over every
    /// byte, every table entry) and zeroes the arena: the device's cold start.
    pub init_instructions: u64,
    /// `instructions` divided by the model's multiply-accumulates.
    pub instructions_per_mac: Option<f64>,
    /// Flash the firmware image occupies.
    pub flash_bytes: u64,
    /// Of which the detector (runtime, kernels, weights; no test harness).
    pub detector_flash_bytes: u64,
    /// Flash the board has.
    pub flash_budget: u64,
    /// RAM: statics, arena and the reserved stack.
    pub ram_bytes: u64,
    /// RAM the board has.
    pub ram_budget: u64,
    /// Deepest stack `medwasm_init` and `medwasm_run` used, measured by painting.
    pub stack_peak_bytes: u64,
    /// Stack the board file reserves.
    pub stack_reserved_bytes: u64,
}

/// Comparison of one test vector's outputs against the references.
#[derive(Debug, Clone, Serialize)]
pub struct VectorResult {
    /// Index of the vector in the stored vectors.
    pub index: usize,
    /// Against tract running the original ONNX model natively.
    pub vs_tract: Option<Deviation>,
    /// Against the project's stored expected outputs.
    pub vs_expected: Option<Deviation>,
    /// The detector's finding for this vector.
    pub finding: Option<Finding>,
    /// An error the detector returned for this vector instead of outputs.
    pub error: Option<String>,
}

impl VectorResult {
    /// True when the detector produced outputs, at least one reference exists, and
    /// the outputs agree with every reference there is.
    pub fn passed(&self) -> bool {
        let references = [self.vs_tract, self.vs_expected];
        self.error.is_none()
            && references.iter().any(Option::is_some)
            && references.iter().flatten().all(|d| d.pass)
    }
}

/// Largest deviations over all outputs of one vector.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Deviation {
    /// Largest |got - want|.
    pub max_abs: f32,
    /// Largest |got - want| / |want| over elements with |want| > 1e-6.
    pub max_rel: f32,
    /// Whether every element is within tolerance.
    pub pass: bool,
    /// For outputs the model quantizes: how far off they are in quantization steps
    /// (these outputs pass on `Tolerance::steps`, not on `abs`/`rel`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Steps>,
}

/// How far quantized outputs are off, in quantization steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Steps {
    /// Elements exactly equal.
    pub exact: u64,
    /// Elements off by one step.
    pub one: u64,
    /// Elements off by more than one step (a non-finite element counts here).
    pub more: u64,
    /// The largest difference in steps (`u64::MAX` for a non-finite element).
    pub max: u64,
    /// Whether the position of the largest element agrees, for every output.
    pub argmax_agrees: bool,
}

impl Steps {
    fn merge(self, other: Steps) -> Steps {
        Steps {
            exact: self.exact + other.exact,
            one: self.one + other.one,
            more: self.more + other.more,
            max: self.max.max(other.max),
            argmax_agrees: self.argmax_agrees && other.argmax_agrees,
        }
    }
}

impl Deviation {
    /// Compares `got` against `want` element by element.
    pub fn compare(got: &[f32], want: &[f32], tol: Tolerance) -> Deviation {
        if got.len() != want.len() {
            return Deviation::length_mismatch();
        }
        let mut max_abs = 0.0f32;
        let mut max_rel = 0.0f32;
        let mut pass = true;
        for (&g, &w) in got.iter().zip(want) {
            let d = (g - w).abs();
            // NaN never passes: `d <= bound` is false for NaN. An infinite reference
            // would make the bound infinite, so it is only met by the same infinity.
            let within = if w.is_finite() {
                d <= tol.abs + tol.rel * w.abs()
            } else {
                g == w
            };
            if !within {
                pass = false;
            }
            let d = if g == w {
                0.0
            } else if d.is_nan() {
                f32::INFINITY
            } else {
                d
            };
            max_abs = max_abs.max(d);
            if w.abs() > 1e-6 {
                max_rel = max_rel.max(d / w.abs());
            }
        }
        Deviation {
            max_abs,
            max_rel,
            pass,
            steps: None,
        }
    }

    fn length_mismatch() -> Deviation {
        Deviation {
            max_abs: f32::INFINITY,
            max_rel: f32::INFINITY,
            pass: false,
            steps: None,
        }
    }

    /// Compares the real values `got` and `want` of an output the model quantizes
    /// with `quant`, in quantization steps: each value is mapped back to its integer
    /// (exact for values that are dequantized integers) and the output passes when no
    /// element is more than `tol.steps` apart. `max_abs`/`max_rel` are reported too.
    pub fn compare_steps(got: &[f32], want: &[f32], quant: &Quant, tol: Tolerance) -> Deviation {
        if got.len() != want.len() {
            return Deviation::length_mismatch();
        }
        let floats = Deviation::compare(got, want, tol);
        let mut steps = Steps {
            exact: 0,
            one: 0,
            more: 0,
            max: 0,
            argmax_agrees: true,
        };
        let (mut best_got, mut best_want) = ((i32::MIN, 0), (i32::MIN, 0));
        for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
            let (qg, qw) = (quant.quantize(g), quant.quantize(w));
            let off = if g.is_finite() && w.is_finite() {
                u64::from(qg.abs_diff(qw))
            } else {
                u64::MAX
            };
            match off {
                0 => steps.exact += 1,
                1 => steps.one += 1,
                _ => steps.more += 1,
            }
            steps.max = steps.max.max(off);
            if qg > best_got.0 {
                best_got = (qg, k);
            }
            if qw > best_want.0 {
                best_want = (qw, k);
            }
        }
        steps.argmax_agrees = best_got.1 == best_want.1;
        Deviation {
            pass: steps.max <= u64::from(tol.steps),
            steps: Some(steps),
            ..floats
        }
    }

    /// Combines the deviations of several outputs.
    pub fn merge(self, other: Deviation) -> Deviation {
        Deviation {
            max_abs: self.max_abs.max(other.max_abs),
            max_rel: self.max_rel.max(other.max_rel),
            pass: self.pass && other.pass,
            steps: match (self.steps, other.steps) {
                (Some(a), Some(b)) => Some(a.merge(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// The detector's interpretation of one inference.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Finding {
    /// Score (anomaly score, class probability …).
    pub score: f32,
    /// Label (class index, or 0/1).
    pub label: i32,
    /// Whether the detector raised an alert.
    pub alert: bool,
}

/// Latency figures, in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Compile + instantiate + first inference, no compilation cache.
    pub cold_start_us: Option<f64>,
    /// The same with a warm compilation cache.
    pub cold_start_cached_us: Option<f64>,
    /// Warm inference: median. `None` (JSON `null`) where nothing was timed: on
    /// targets that count instructions instead (`mcu`: see `instructions`), or when
    /// no vector ran without an error.
    pub median_us: Option<f64>,
    /// Warm inference: 95th percentile.
    pub p95_us: Option<f64>,
    /// Warm inference: 99th percentile.
    pub p99_us: Option<f64>,
    /// Number of warm runs.
    pub runs: usize,
    /// Deterministic count (QEMU instructions, not cycles) where the target has one.
    pub instructions: Option<u64>,
    /// WebAssembly operators one inference executes, counted by Wasmtime's fuel (one
    /// unit per operator): the same on every machine, so it shows a change of the
    /// work done when timings are too noisy to. `None` where not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm_ops: Option<u64>,
    /// How the warm runs spread: quartiles, extremes and a histogram, for the HTML
    /// report's plots. `None` where nothing was timed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<Distribution>,
}

/// The spread of the warm runs (µs): a box plot's figures and a histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    /// Fastest run.
    pub min_us: f64,
    /// First quartile.
    pub q1_us: f64,
    /// Third quartile.
    pub q3_us: f64,
    /// Slowest run.
    pub max_us: f64,
    /// Lower edge of the first histogram bin (the fastest run).
    pub bin_start_us: f64,
    /// Width of every bin; the bins span the fastest run to the 99th percentile.
    pub bin_width_us: f64,
    /// Runs per bin.
    pub counts: Vec<u32>,
    /// Runs slower than the last bin (above the 99th percentile), not drawn.
    pub above: u32,
}

/// Histogram bins of [`Distribution`]: enough to show a shape at 1000 runs.
const HISTOGRAM_BINS: usize = 40;

impl Distribution {
    /// The spread of `sorted` (ascending, not empty).
    fn of_sorted(sorted: &[f64]) -> Distribution {
        let at = |q: f64| quantile(sorted, q);
        let (min, p99) = (sorted[0], at(0.99));
        // All runs equal (a coarse clock): one bin wide enough to hold them.
        let width = ((p99 - min) / HISTOGRAM_BINS as f64)
            .max(min.abs() * 1e-6)
            .max(1e-9);
        let mut counts = vec![0u32; HISTOGRAM_BINS];
        let mut above = 0u32;
        for &x in sorted {
            if x > p99 {
                above += 1;
            } else {
                let bin = (((x - min) / width) as usize).min(HISTOGRAM_BINS - 1);
                counts[bin] += 1;
            }
        }
        Distribution {
            min_us: min,
            q1_us: at(0.25),
            q3_us: at(0.75),
            max_us: sorted[sorted.len() - 1],
            bin_start_us: min,
            bin_width_us: width,
            counts,
            above,
        }
    }
}

/// The `q` quantile of the ascending, non-empty `sorted` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

impl Latency {
    /// Sets the warm figures from the timed runs (µs each): their count and
    /// percentiles, which stay `None` when nothing was timed.
    pub fn with_warm(mut self, samples: &mut [f64]) -> Latency {
        let warm = percentiles(samples);
        self.median_us = warm.map(|w| w.0);
        self.p95_us = warm.map(|w| w.1);
        self.p99_us = warm.map(|w| w.2);
        // `percentiles` sorted the samples.
        self.warm = (!samples.is_empty()).then(|| Distribution::of_sorted(samples));
        self.runs = samples.len();
        self
    }
}

/// Artifact size split.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Size {
    /// Whole artifact, bytes.
    pub total: u64,
    /// Code (everything but the model blob and custom sections), bytes.
    pub code: u64,
    /// Model blob (weights and graph), bytes.
    pub weights: u64,
    /// Custom sections (manifest, build info), bytes.
    pub metadata: u64,
}

/// Memory use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// Peak arena bytes from the static plan.
    pub arena_bytes: u64,
    /// Linear memory pages (64 KiB) after the warm runs, wasm targets only.
    pub wasm_pages: Option<u64>,
}

/// Summarizes sorted-or-not latency samples in microseconds.
pub fn percentiles(samples: &mut [f64]) -> Option<(f64, f64, f64)> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| quantile(samples, q);
    Some((at(0.5), at(0.95), at(0.99)))
}

/// The machine the bench ran on, for reproducible figures: CPU model, cores, OS and
/// architecture, e.g. `AMD EPYC 7B13, 2 cores, linux x86_64`.
pub fn host_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| cpu_model(&info))
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let plural = if cores == 1 { "" } else { "s" };
    format!(
        "{cpu}, {cores} core{plural}, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The tool and version that measured, for the report.
pub fn tool_description() -> String {
    format!("cargo-medwasm {}", env!("CARGO_PKG_VERSION"))
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// `secs` after the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian).
fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days to a civil date: count in 400-year eras from 0000-03-01, where a year
    // ends with February and its leap day (H. Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The CPU model in `/proc/cpuinfo`: `model name` on x86, `Model` or `Hardware` on Arm.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    })
}

impl BenchReport {
    /// Number of vector rows that failed, over all targets, and the number of rows.
    pub fn failed_vectors(&self) -> (usize, usize) {
        let rows = self.targets.iter().flat_map(|t| &t.vectors);
        let total = rows.clone().count();
        (rows.filter(|v| !v.passed()).count(), total)
    }

    /// Targets that could not be benched (an unreachable device, a failed run).
    pub fn unbenched_targets(&self) -> usize {
        self.targets.iter().filter(|t| t.failure.is_some()).count()
    }

    /// True when every target passed.
    pub fn passed(&self) -> bool {
        !self.targets.is_empty() && self.targets.iter().all(|t| t.passed)
    }
}

/// The human report: a header, then per target one row per vector and the latency,
/// size and memory figures.
impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sha = self.model_sha256.get(..12).unwrap_or(&self.model_sha256);
        writeln!(f, "bench of `{}`", self.detector)?;
        writeln!(f, "  model      {} (sha256 {sha}…)", self.model)?;
        writeln!(
            f,
            "  tolerance  |got - want| <= {:e} + {:e} * |want|",
            self.tolerance.abs, self.tolerance.rel
        )?;
        writeln!(f, "  host       {}", self.host)?;
        for target in &self.targets {
            writeln!(f)?;
            write!(f, "{target}")?;
        }
        writeln!(f)?;
        let (failed, total) = self.failed_vectors();
        for s in &self.skipped {
            writeln!(f, "skipped `{}`: {}", s.target, s.why)?;
        }
        let failures: Vec<&Failure> = self
            .targets
            .iter()
            .filter_map(|t| t.failure.as_ref())
            .collect();
        if !failures.is_empty() {
            let count = |kind| failures.iter().filter(|x| x.kind == kind).count();
            let benched = self.targets.len() - failures.len();
            writeln!(
                f,
                "targets: {benched} benched, {} failed, {} unreachable",
                count(FailureKind::Failed),
                count(FailureKind::Unreachable)
            )?;
        }
        if self.passed() {
            writeln!(f, "PASS: {total} of {total} vectors agree on every target")
        } else if failed == 0 && !failures.is_empty() {
            writeln!(
                f,
                "FAIL: {total} of {total} vectors agree, but {} target(s) could not be benched",
                failures.len()
            )
        } else {
            writeln!(f, "FAIL: {failed} of {total} vectors disagree or failed")
        }
    }
}

impl fmt::Display for TargetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(failure) = &self.failure {
            let kind = match failure.kind {
                FailureKind::Unreachable => "UNREACHABLE",
                FailureKind::Failed => "FAILED",
            };
            return writeln!(f, "target `{}`: {kind}: {}", self.target, failure.message);
        }
        writeln!(f, "target `{}` on {}", self.target, self.runtime)?;
        writeln!(f, "  artifact    {}", self.artifact)?;
        writeln!(f)?;
        let mut rows = vec![[
            "vector".to_string(),
            "vs tract (abs / rel)".to_string(),
            "vs expected (abs / rel)".to_string(),
            "finding".to_string(),
            "result".to_string(),
        ]];
        for v in &self.vectors {
            let finding = match (&v.finding, &v.error) {
                (_, Some(_)) => "error, see below".to_string(),
                (Some(found), None) => found.to_string(),
                (None, None) => "-".to_string(),
            };
            rows.push([
                v.index.to_string(),
                deviation_cell(v.vs_tract),
                deviation_cell(v.vs_expected),
                finding,
                if v.passed() { "PASS" } else { "FAIL" }.to_string(),
            ]);
        }
        let mut widths = [0usize; 5];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &rows {
            let line = format!(
                "  {:>w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        for v in &self.vectors {
            if let Some(error) = &v.error {
                writeln!(f, "  vector {}: {error}", v.index)?;
            }
        }
        writeln!(f)?;

        let l = &self.latency;
        if let Some(device) = &self.device {
            write_device(f, device, l.runs)?;
        } else if l.runs == 0 {
            writeln!(f, "  latency  not measured: no vector ran without an error")?;
        } else {
            writeln!(
                f,
                "  cold start  {} compiled, {} from a compilation cache (median of 3)",
                optional_micros(l.cold_start_us),
                optional_micros(l.cold_start_cached_us)
            )?;
            writeln!(
                f,
                "  warm        median {}, p95 {}, p99 {} ({} runs)",
                optional_micros(l.median_us),
                optional_micros(l.p95_us),
                optional_micros(l.p99_us),
                l.runs
            )?;
        }
        if let (Some(n), None) = (l.instructions, &self.device) {
            writeln!(f, "  count       {n} instructions per inference")?;
        }
        if let Some(n) = l.wasm_ops {
            writeln!(
                f,
                "  wasm ops    {n} per inference (Wasmtime fuel: the same on every machine)"
            )?;
        }
        let s = &self.size;
        writeln!(
            f,
            "  size        {} total: {} code, {} weights, {} metadata",
            bytes(s.total),
            bytes(s.code),
            bytes(s.weights),
            bytes(s.metadata)
        )?;
        write!(f, "  memory      arena {}", bytes(self.memory.arena_bytes))?;
        if let Some(pages) = self.memory.wasm_pages {
            let plural = if pages == 1 { "" } else { "s" };
            write!(
                f,
                ", linear memory {pages} page{plural} ({})",
                bytes(pages * 65536)
            )?;
        }
        writeln!(f)
    }
}

/// The figures of a device target, instead of wall-clock latency.
fn write_device(f: &mut fmt::Formatter<'_>, d: &Device, runs: usize) -> fmt::Result {
    if runs == 0 {
        writeln!(
            f,
            "  count       not measured: no vector ran without an error"
        )?;
    } else {
        let per_mac = d
            .instructions_per_mac
            .map(|x| format!(", {x:.2} per MAC"))
            .unwrap_or_default();
        writeln!(
            f,
            "  count       {} instructions per inference{per_mac} ({runs} runs)",
            d.instructions
        )?;
        writeln!(f, "              {}", d.counting)?;
    }
    writeln!(
        f,
        "  init        {} instructions (validates the blob, zeroes the arena)",
        d.init_instructions
    )?;
    writeln!(
        f,
        "  flash       {} of {} ({} detector, the rest test firmware)",
        bytes(d.flash_bytes),
        bytes(d.flash_budget),
        bytes(d.detector_flash_bytes)
    )?;
    writeln!(
        f,
        "  RAM         {} of {} (stack: {} measured peak, {} reserved)",
        bytes(d.ram_bytes),
        bytes(d.ram_budget),
        bytes(d.stack_peak_bytes),
        bytes(d.stack_reserved_bytes)
    )
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "score {} label {}", short(self.score), self.label)?;
        if self.alert {
            write!(f, " ALERT")?;
        }
        Ok(())
    }
}

/// A score with at most four decimals and no trailing zeros (`12.5`, `0.0123`), or in
/// scientific notation when it is that small.
fn short(x: f32) -> String {
    if (x != 0.0 && x.abs() < 1e-3) || x.abs() >= 1e6 {
        return format!("{x:.3e}");
    }
    let fixed = format!("{x:.4}");
    fixed
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

fn deviation_cell(d: Option<Deviation>) -> String {
    match d {
        // Quantized outputs: elements off by 0 / 1 / more steps, the worst, argmax.
        Some(Deviation { steps: Some(s), .. }) => format!(
            "{}/{}/{} steps (max {}{})",
            s.exact,
            s.one,
            s.more,
            if s.max == u64::MAX {
                "inf".to_string()
            } else {
                s.max.to_string()
            },
            if s.argmax_agrees {
                ""
            } else {
                ", argmax differs"
            }
        ),
        Some(d) => format!("{} / {}", scientific(d.max_abs), scientific(d.max_rel)),
        None => "-".to_string(),
    }
}

/// `1.5e-7`, with a plain `0` and `inf` so exact agreement and a missing output stand out.
fn scientific(x: f32) -> String {
    if x == 0.0 {
        "0".to_string()
    } else if x.is_infinite() {
        "inf".to_string()
    } else {
        format!("{x:.1e}")
    }
}

fn optional_micros(us: Option<f64>) -> String {
    us.map_or_else(|| "-".to_string(), micros)
}

/// Microseconds with a unit that keeps three or four significant digits.
fn micros(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// Bytes, in KiB above 1 KiB; the JSON report has the exact figures. The one byte
/// formatter of the CLI. Hand-written on purpose: `bytesize` and `humansize` print
/// one fixed precision for every unit, and tables here keep about three significant
/// digits (`1.5 KiB`, `59.9 KiB`, `4.00 MiB`).
pub fn bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_097_773), "2026-12-01T04:02:53Z");
        assert_eq!(utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn distribution_of_known_samples() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let latency = Latency::default().with_warm(&mut samples);
        let d = latency.warm.unwrap();
        assert_eq!(
            (d.min_us, d.q1_us, d.q3_us, d.max_us),
            (1.0, 26.0, 75.0, 100.0)
        );
        assert_eq!(d.counts.len(), HISTOGRAM_BINS);
        // 1..=99 are binned (p99 = 99), 100 is above.
        assert_eq!(d.counts.iter().sum::<u32>(), 99);
        assert_eq!(d.above, 1);
        assert_eq!(d.counts[0], 3); // 1, 2, 3 with bins 2.45 wide
        let mut same = vec![5.0; 10];
        let d = Latency::default().with_warm(&mut same).warm.unwrap();
        assert_eq!((d.counts[0], d.above), (10, 0));
        assert!(Latency::default().with_warm(&mut []).warm.is_none());
    }

    #[test]
    fn deviation_flags_nan_and_length() {
        let tol = Tolerance {
            abs: 1e-4,
            rel: 1e-3,
            steps: 0,
        };
        assert!(Deviation::compare(&[1.0, 2.0], &[1.0, 2.0], tol).pass);
        assert!(!Deviation::compare(&[1.0, f32::NAN], &[1.0, 2.0], tol).pass);
        assert!(!Deviation::compare(&[1.0], &[1.0, 2.0], tol).pass);
        let same = Deviation::compare(&[f32::INFINITY], &[f32::INFINITY], tol);
        assert!(same.pass && same.max_abs == 0.0);
        assert!(!Deviation::compare(&[f32::NEG_INFINITY], &[f32::INFINITY], tol).pass);
        assert!(!Deviation::compare(&[5.0], &[f32::INFINITY], tol).pass);
        // The bound is abs + rel * |want| = 1.1e-3 here: 1e-3 off passes, 2e-3 does not.
        assert!(Deviation::compare(&[1.001], &[1.0], tol).pass);
        let d = Deviation::compare(&[1.002], &[1.0], tol);
        assert!(!d.pass);
        assert!((d.max_abs - 0.002).abs() < 1e-6);
        assert!((d.max_rel - 0.002).abs() < 1e-6);
    }

    #[test]
    fn percentiles_of_known_samples() {
        let mut s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentiles(&mut s), Some((51.0, 95.0, 99.0)));
        assert_eq!(percentiles(&mut []), None);
    }

    pub(crate) fn sample_report() -> BenchReport {
        let ok = |max_abs, max_rel| {
            Some(Deviation {
                max_abs,
                max_rel,
                pass: true,
                steps: None,
            })
        };
        BenchReport {
            schema: REPORT_SCHEMA,
            detector: "vitals-anomaly".into(),
            model: "model.onnx".into(),
            model_sha256: "3f2a9c0d1e2b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5".into(),
            tolerance: Tolerance {
                abs: 1e-4,
                rel: 1e-3,
                steps: 0,
            },
            host: "AMD EPYC 7B13, 2 cores, linux x86_64".into(),
            tool: "cargo-medwasm 0.1.0".into(),
            generated: "2026-12-01T04:02:53Z".into(),
            skipped: vec![Skipped {
                target: "wasmedge".into(),
                why: "`wasmedge` is not on PATH".into(),
            }],
            targets: vec![
                TargetReport {
                    target: "wasmtime".into(),
                    runtime: "wasmtime 48.0.8 (embedded)".into(),
                    artifact: "target/medwasm/wasmtime/vitals_anomaly.wasm".into(),
                    vectors: vec![
                        VectorResult {
                            index: 0,
                            vs_tract: ok(2.5e-7, 1.25e-6),
                            vs_expected: ok(0.0, 0.0),
                            finding: Some(Finding {
                                score: 0.0123,
                                label: 0,
                                alert: false,
                            }),
                            error: None,
                        },
                        VectorResult {
                            index: 1,
                            vs_tract: ok(3.0e-7, 2.0e-6),
                            vs_expected: Some(Deviation {
                                max_abs: 0.5,
                                max_rel: 0.0625,
                                pass: false,
                                steps: None,
                            }),
                            finding: Some(Finding {
                                score: 12.5,
                                label: 1,
                                alert: true,
                            }),
                            error: None,
                        },
                        VectorResult {
                            index: 2,
                            vs_tract: None,
                            vs_expected: None,
                            finding: None,
                            error: Some("error 11 (`NonFinite`): input 0 element 3 is NaN".into()),
                        },
                    ],
                    passed: false,
                    latency: Latency {
                        cold_start_us: Some(12_410.0),
                        cold_start_cached_us: Some(1_204.5),
                        median_us: Some(45.2),
                        p95_us: Some(50.1),
                        p99_us: Some(1_060.0),
                        runs: 200,
                        instructions: None,
                        wasm_ops: Some(61_234),
                        warm: Some(Distribution {
                            min_us: 44.0,
                            q1_us: 44.8,
                            q3_us: 46.0,
                            max_us: 1_300.0,
                            bin_start_us: 44.0,
                            bin_width_us: 127.0,
                            counts: vec![
                                190, 6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                            ],
                            above: 2,
                        }),
                    },
                    size: Size {
                        total: 49_352,
                        code: 20_110,
                        weights: 28_100,
                        metadata: 1_142,
                    },
                    memory: Memory {
                        arena_bytes: 12_288,
                        wasm_pages: Some(2),
                    },
                    device: None,
                    failure: None,
                },
                TargetReport::failed(
                    "pi@10.0.0.7",
                    "target/medwasm/device/vitals_anomaly.harness.wasm",
                    Size::default(),
                    FailureKind::Unreachable,
                    "device `pi@10.0.0.7`: probe the device: unreachable: connection refused"
                        .into(),
                ),
            ],
        }
    }

    #[test]
    fn table_shows_rows_errors_and_figures() {
        let report = sample_report();
        assert_eq!(report.failed_vectors(), (2, 3));
        assert!(!report.passed());
        insta::assert_snapshot!(report.to_string(), @r#"
            bench of `vitals-anomaly`
              model      model.onnx (sha256 3f2a9c0d1e2b…)
              tolerance  |got - want| <= 1e-4 + 1e-3 * |want|
              host       AMD EPYC 7B13, 2 cores, linux x86_64

            target `wasmtime` on wasmtime 48.0.8 (embedded)
              artifact    target/medwasm/wasmtime/vitals_anomaly.wasm

              vector  vs tract (abs / rel)  vs expected (abs / rel)  finding                   result
                   0  2.5e-7 / 1.2e-6       0 / 0                    score 0.0123 label 0      PASS
                   1  3.0e-7 / 2.0e-6       5.0e-1 / 6.2e-2          score 12.5 label 1 ALERT  FAIL
                   2  -                     -                        error, see below          FAIL
              vector 2: error 11 (`NonFinite`): input 0 element 3 is NaN

              cold start  12.41 ms compiled, 1.20 ms from a compilation cache (median of 3)
              warm        median 45.2 µs, p95 50.1 µs, p99 1.06 ms (200 runs)
              wasm ops    61234 per inference (Wasmtime fuel: the same on every machine)
              size        48.2 KiB total: 19.6 KiB code, 27.4 KiB weights, 1.1 KiB metadata
              memory      arena 12.0 KiB, linear memory 2 pages (128.0 KiB)

            target `pi@10.0.0.7`: UNREACHABLE: device `pi@10.0.0.7`: probe the device: unreachable: connection refused

            skipped `wasmedge`: `wasmedge` is not on PATH
            targets: 1 benched, 0 failed, 1 unreachable
            FAIL: 2 of 3 vectors disagree or failed
        "#);
    }

    #[test]
    fn json_keeps_its_schema() {
        let report = sample_report();
        let json = serde_json::to_string_pretty(&report).expect("a report serializes");
        insta::assert_snapshot!(json, @r#"
            {
              "schema": 2,
              "detector": "vitals-anomaly",
              "model": "model.onnx",
              "model_sha256": "3f2a9c0d1e2b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5",
              "tolerance": {
                "abs": 0.0001,
                "rel": 0.001,
                "steps": 0
              },
              "host": "AMD EPYC 7B13, 2 cores, linux x86_64",
              "tool": "cargo-medwasm 0.1.0",
              "generated": "2026-12-01T04:02:53Z",
              "targets": [
                {
                  "target": "wasmtime",
                  "runtime": "wasmtime 48.0.8 (embedded)",
                  "artifact": "target/medwasm/wasmtime/vitals_anomaly.wasm",
                  "vectors": [
                    {
                      "index": 0,
                      "vs_tract": {
                        "max_abs": 2.5e-7,
                        "max_rel": 0.00000125,
                        "pass": true
                      },
                      "vs_expected": {
                        "max_abs": 0.0,
                        "max_rel": 0.0,
                        "pass": true
                      },
                      "finding": {
                        "score": 0.0123,
                        "label": 0,
                        "alert": false
                      },
                      "error": null
                    },
                    {
                      "index": 1,
                      "vs_tract": {
                        "max_abs": 3e-7,
                        "max_rel": 0.000002,
                        "pass": true
                      },
                      "vs_expected": {
                        "max_abs": 0.5,
                        "max_rel": 0.0625,
                        "pass": false
                      },
                      "finding": {
                        "score": 12.5,
                        "label": 1,
                        "alert": true
                      },
                      "error": null
                    },
                    {
                      "index": 2,
                      "vs_tract": null,
                      "vs_expected": null,
                      "finding": null,
                      "error": "error 11 (`NonFinite`): input 0 element 3 is NaN"
                    }
                  ],
                  "passed": false,
                  "latency": {
                    "cold_start_us": 12410.0,
                    "cold_start_cached_us": 1204.5,
                    "median_us": 45.2,
                    "p95_us": 50.1,
                    "p99_us": 1060.0,
                    "runs": 200,
                    "instructions": null,
                    "wasm_ops": 61234,
                    "warm": {
                      "min_us": 44.0,
                      "q1_us": 44.8,
                      "q3_us": 46.0,
                      "max_us": 1300.0,
                      "bin_start_us": 44.0,
                      "bin_width_us": 127.0,
                      "counts": [
                        190,
                        6,
                        1,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        1
                      ],
                      "above": 2
                    }
                  },
                  "size": {
                    "total": 49352,
                    "code": 20110,
                    "weights": 28100,
                    "metadata": 1142
                  },
                  "memory": {
                    "arena_bytes": 12288,
                    "wasm_pages": 2
                  }
                },
                {
                  "target": "pi@10.0.0.7",
                  "runtime": "",
                  "artifact": "target/medwasm/device/vitals_anomaly.harness.wasm",
                  "vectors": [],
                  "passed": false,
                  "latency": {
                    "cold_start_us": null,
                    "cold_start_cached_us": null,
                    "median_us": null,
                    "p95_us": null,
                    "p99_us": null,
                    "runs": 0,
                    "instructions": null
                  },
                  "size": {
                    "total": 0,
                    "code": 0,
                    "weights": 0,
                    "metadata": 0
                  },
                  "memory": {
                    "arena_bytes": 0,
                    "wasm_pages": null
                  },
                  "failure": {
                    "kind": "unreachable",
                    "message": "device `pi@10.0.0.7`: probe the device: unreachable: connection refused"
                  }
                }
              ],
              "skipped": [
                {
                  "target": "wasmedge",
                  "why": "`wasmedge` is not on PATH"
                }
              ]
            }
        "#);
    }

    #[test]
    fn vector_passes_only_with_a_reference_and_no_error() {
        let pass = Some(Deviation {
            max_abs: 0.0,
            max_rel: 0.0,
            pass: true,
            steps: None,
        });
        let fail = Some(Deviation {
            max_abs: 1.0,
            max_rel: 1.0,
            pass: false,
            steps: None,
        });
        let row = |vs_tract, vs_expected, error: Option<&str>| VectorResult {
            index: 0,
            vs_tract,
            vs_expected,
            finding: None,
            error: error.map(String::from),
        };
        assert!(row(pass, None, None).passed());
        assert!(row(None, pass, None).passed());
        assert!(!row(pass, fail, None).passed());
        assert!(!row(None, None, None).passed());
        assert!(!row(pass, pass, Some("trapped")).passed());
    }

    #[test]
    fn device_targets_report_instructions_flash_and_ram() {
        let mut report = sample_report();
        let target = &mut report.targets[0];
        target.target = "mcu".into();
        target.runtime = "qemu-system-arm 7.2.22 -M mps2-an386 with the medwasm-icount plugin (Arm MPS2 AN386 (Cortex-M4F) in QEMU)".into();
        target.artifact =
            "target/medwasm/mcu/qemu-mps2-an386/vitals-anomaly/vitals_anomaly.elf".into();
        target.vectors.truncate(1);
        target.passed = true;
        target.latency = Latency {
            runs: 200,
            instructions: Some(103_690),
            ..Latency::default()
        };
        target.size = Size {
            total: 61_384,
            code: 39_304,
            weights: 22_080,
            metadata: 0,
        };
        target.memory = Memory {
            arena_bytes: 1_536,
            wasm_pages: None,
        };
        target.device = Some(Device {
            board: "qemu-mps2-an386".into(),
            counting: "a QEMU TCG plugin counts every executed instruction exactly: instructions, not cycles".into(),
            instructions: 103_690,
            init_instructions: 250_000,
            instructions_per_mac: Some(20.77),
            flash_bytes: 61_384,
            detector_flash_bytes: 57_006,
            flash_budget: 4 << 20,
            ram_bytes: 18_276,
            ram_budget: 4 << 20,
            stack_peak_bytes: 4_080,
            stack_reserved_bytes: 16_384,
        });
        let table = report.targets[0].to_string();
        insta::assert_snapshot!(table, @r"
        target `mcu` on qemu-system-arm 7.2.22 -M mps2-an386 with the medwasm-icount plugin (Arm MPS2 AN386 (Cortex-M4F) in QEMU)
          artifact    target/medwasm/mcu/qemu-mps2-an386/vitals-anomaly/vitals_anomaly.elf

          vector  vs tract (abs / rel)  vs expected (abs / rel)  finding               result
               0  2.5e-7 / 1.2e-6       0 / 0                    score 0.0123 label 0  PASS

          count       103690 instructions per inference, 20.77 per MAC (200 runs)
                      a QEMU TCG plugin counts every executed instruction exactly: instructions, not cycles
          init        250000 instructions (validates the blob, zeroes the arena)
          flash       59.9 KiB of 4.00 MiB (55.7 KiB detector, the rest test firmware)
          RAM         17.8 KiB of 4.00 MiB (stack: 4.0 KiB measured peak, 16.0 KiB reserved)
          size        59.9 KiB total: 38.4 KiB code, 21.6 KiB weights, 0 B metadata
          memory      arena 1.5 KiB
        ");
        // The JSON carries the device figures only for device targets.
        let json = serde_json::to_value(&report).expect("a report serializes");
        assert_eq!(json["targets"][0]["device"]["instructions"], 103_690);
        assert_eq!(json["targets"][0]["latency"]["instructions"], 103_690);
        // Nothing was timed there: no wall-clock figure, rather than a 0 that reads
        // as "instant" to a script.
        assert!(json["targets"][0]["latency"]["median_us"].is_null());
        assert!(json["targets"][0]["latency"]["p99_us"].is_null());
        let wasm = serde_json::to_value(sample_report()).expect("a report serializes");
        assert!(wasm["targets"][0].get("device").is_none());
    }

    #[test]
    fn cpu_model_from_cpuinfo() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(x86).as_deref(), Some("AMD EPYC 7B13"));
        let arm =
            "processor\t: 0\nBogoMIPS\t: 108.00\n\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(
            cpu_model(arm).as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert_eq!(cpu_model("processor\t: 0\n"), None);
        assert!(host_description().contains(std::env::consts::ARCH));
    }
}
