//! Warm latency of tract running an ONNX model natively, for `bench/compare.py`: the
//! optimized plan `cargo medwasm bench` checks detectors against, on the first sample
//! of an `inputs.npy`, printed as JSON on stdout with its start-up time (load,
//! optimize, first run).
//!
//! Usage: `native_bench <model.onnx> <inputs.npy> <runs>`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use cargo_medwasm::npy::Array;
use cargo_medwasm::reference::TractReference;
use cargo_medwasm::report::percentiles;

/// Untimed runs before the timed ones, as many as the Wasmtime runner does, so both
/// sides start timing in the same state (page faults and caches already paid for).
const WARMUP_RUNS: usize = 10;
/// Start-ups timed; the median is printed, as the Wasmtime runner does for cold starts.
const COLD_STARTS: usize = 3;

/// What is printed, in the units and names of the `latency` object of `bench --json`.
#[derive(Debug, serde::Serialize)]
struct Timing {
    median_us: f64,
    p95_us: f64,
    p99_us: f64,
    runs: usize,
    cold_start_us: f64,
    warmup_runs: usize,
    runtime: String,
    input_shape: Vec<u64>,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, inputs, runs] = args.as_slice() else {
        bail!("usage: native_bench <model.onnx> <inputs.npy> <runs>");
    };
    let model = PathBuf::from(model);
    let inputs = PathBuf::from(inputs);
    let runs: usize = match runs.parse() {
        Ok(0) | Err(_) => bail!("`{runs}` is not a number of runs; pass 1 or more"),
        Ok(runs) => runs,
    };

    let array = Array::read(&inputs)?;
    // The stored vectors are `[N, ...]`; the model runs one of them with batch 1, the
    // static shape `cargo medwasm import` fixes the symbolic batch dimension to.
    let Some((_, per_sample)) = array.shape.split_first() else {
        bail!(
            "`{}` holds a scalar; store the vectors with shape [N, ...]",
            inputs.display()
        );
    };
    let shape: Vec<u64> = std::iter::once(1)
        .chain(per_sample.iter().map(|&d| d as u64))
        .collect();
    let sample = array
        .sample(0)
        .with_context(|| format!("`{}` holds no vectors", inputs.display()))?
        .to_vec();
    let sample = [sample];
    let shapes = std::slice::from_ref(&shape);

    // Start-up as the Wasmtime runner measures it for a detector: load, optimize and
    // run once, the median of a few.
    let mut colds = Vec::with_capacity(COLD_STARTS);
    for _ in 0..COLD_STARTS {
        let start = Instant::now();
        TractReference::new(&model, shapes)?.run(&sample)?;
        colds.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let (cold_start_us, _, _) = percentiles(&mut colds).context("no start-up was timed")?;

    let reference = TractReference::new(&model, shapes)?;

    for _ in 0..WARMUP_RUNS {
        reference.run(&sample)?;
    }
    // Each run is timed alone, as the Wasmtime runner does, so the percentiles mean the
    // same thing on both sides. `TractReference::run` also copies the input into a
    // tensor and the outputs out of one: under a microsecond for these sizes.
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        reference.run(&sample)?;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let (median_us, p95_us, p99_us) = percentiles(&mut samples).context("no run was timed")?;
    let timing = Timing {
        median_us,
        p95_us,
        p99_us,
        runs,
        cold_start_us,
        warmup_runs: WARMUP_RUNS,
        runtime: format!("tract-onnx {} (native, optimized plan)", tract_version()),
        input_shape: shape,
    };
    println!("{}", serde_json::to_string_pretty(&timing)?);
    Ok(())
}

/// The tract version in the workspace's `Cargo.lock` at build time, which is the one
/// linked in: the crate exports no version constant.
fn tract_version() -> &'static str {
    const LOCK: &str = include_str!("../../../Cargo.lock");
    const KEY: &str = "name = \"tract-onnx\"\nversion = \"";
    LOCK.find(KEY)
        .map(|at| &LOCK[at + KEY.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("(unknown version)")
}
