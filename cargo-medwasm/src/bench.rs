//! A bench session: for each selected target, build the detector (or take a given
//! artifact), run the stored test vectors through it, compare its outputs with tract
//! running the original model (a float ONNX model the import checked against tract;
//! tract cannot run TFLite or stand for quantized ONNX, whose stored expected
//! outputs come from LiteRT or onnxruntime at import) and with the stored expected
//! outputs, and measure latency, size and memory; one [`BenchReport`] for every target.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::artifact::BuildOutput;
use crate::manifest::{Manifest, ReferenceKind};
use crate::project::Project;
use crate::protocol::{self, Case, Job, Progress};
use crate::reference::TractReference;
use crate::report::{
    BenchReport, FailureKind, REPORT_SCHEMA, Skipped, TargetReport, Tolerance, host_description,
    tool_description, utc_now,
};
use crate::targets::device::{self, Device};
use crate::targets::target::{Selection, Target};
use crate::ui::{Step, Ui};
use crate::vectors::{self, dims, relative};

/// What to bench.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The targets.
    pub selection: Selection,
    /// Warm runs (`--runs`), before the project's default.
    pub runs: Option<usize>,
    /// Bench the debug build instead of the release build.
    pub debug: bool,
    /// Bench this artifact as it is instead of building (one target only).
    pub artifact: Option<PathBuf>,
    /// Devices to bench over SSH as well, concurrently.
    pub devices: Vec<Device>,
}

/// Devices benched at the same time at most.
const DEVICES_IN_FLIGHT: usize = 4;

/// Returned when a vector failed conformance or a target (a device) could not be
/// benched; the report has been printed.
#[derive(Debug)]
pub struct ConformanceFailed {
    /// Failed vectors, over all targets.
    pub failed: usize,
    /// All vectors, over all targets.
    pub total: usize,
    /// Targets that could not be benched (an unreachable device, a failed run).
    pub unbenched: usize,
}

impl std::fmt::Display for ConformanceFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ConformanceFailed {
            failed,
            total,
            unbenched,
        } = self;
        if *failed > 0 || *unbenched == 0 {
            write!(f, "conformance failed on {failed} of {total} vectors")?;
            if *unbenched > 0 {
                write!(f, ", and ")?;
            }
        }
        if *unbenched > 0 {
            let s = if *unbenched == 1 { "" } else { "s" };
            write!(f, "{unbenched} target{s} could not be benched")?;
        }
        write!(f, "; the report on stdout says which and why")
    }
}

impl std::error::Error for ConformanceFailed {}

/// Runs the bench and returns the report; progress goes to stderr.
pub fn bench(project: &Project, options: &BenchOptions, ui: &Ui) -> Result<BenchReport> {
    let manifest = project.manifest()?;
    let runs = project.runs(options.runs)?;
    let tolerance = Tolerance {
        abs: project.abs_tolerance(),
        rel: project.rel_tolerance(),
        // The project's steps, else those the import recorded for the stored
        // expected outputs (1 when they are onnxruntime's, 0 otherwise).
        steps: project.metadata.int8_tolerance_steps.unwrap_or(
            manifest
                .reference
                .as_ref()
                .map_or(0, |r| r.int8_tolerance_steps),
        ),
    };

    // Vectors are checked before anything is built: a malformed file is the cheapest
    // mistake to report.
    let mut cases = vectors::load_cases(project, &manifest, ui)?;

    let mut selected = Vec::new();
    let mut skipped = Vec::new();
    for target in options.selection.targets() {
        match target.unavailable() {
            None => selected.push(target),
            Some(why) if options.selection.is_all() => {
                ui.note(format!("skipping target `{}`: {why}", target.name()));
                skipped.push(Skipped {
                    target: target.name().to_string(),
                    why,
                });
            }
            Some(why) => bail!("target `{}` cannot run here: {why}", target.name()),
        }
    }
    if selected.is_empty() && options.devices.is_empty() {
        bail!(
            "no target can run on this machine; run `cargo medwasm doctor` to see what is missing"
        );
    }

    let builds = match &options.artifact {
        Some(path) => {
            let [target] = selected[..] else {
                bail!(
                    "`--artifact` benches one file on one target; pass `--target wasmtime`, `browser`, `node` or `mcu` with it"
                );
            };
            vec![target.open(project, path)?]
        }
        None => build_each(project, &selected, !options.debug, ui)?,
    };

    if manifest.outputs.iter().any(|o| o.quant.is_some()) {
        // tract would run the model's quantize/dequantize in float with ONNX's
        // half-to-even rounding: a reference for something else than the integer
        // kernels the detector runs. The reference kernels' own outputs, stored at
        // import, are the reference here.
        ui.note(format!(
            "the model's outputs are quantized: they are compared in quantization steps with the stored expected outputs{}, not with tract",
            manifest
                .reference
                .as_ref()
                .map_or(String::new(), |r| format!(
                    " (the import checked the model against {})",
                    r.name
                ))
        ));
    } else if let Some(r) = manifest
        .reference
        .as_ref()
        .filter(|r| r.kind != ReferenceKind::Tract && manifest.source.format != "tflite")
    {
        // The import found tract unfit for this model (quantized, or not loadable):
        // a tract column would be a failure or a bogus figure.
        ui.note(format!(
            "`{}` was checked against {} at import, not tract: it is compared with the stored expected outputs only",
            manifest.source.file, r.name
        ));
    } else {
        add_tract_outputs(project, &manifest, &mut cases, ui)?;
    }
    if !cases.iter().any(Case::has_reference) {
        bail!(
            "nothing to compare the detector with: tract cannot run the original model and there are no expected outputs; import it again (a `.tflite` or quantized `.onnx` import stores its reference's outputs) or save them as `{}` with shape [N, {}] (float32)",
            relative(project, &project.expected_file(0)),
            manifest
                .outputs
                .first()
                .map(|o| dims(&o.shape))
                .unwrap_or_default()
        );
    }

    let mut targets = Vec::with_capacity(selected.len());
    for (target, built) in selected.iter().zip(builds) {
        ui.status(
            "Benching",
            format!(
                "`{}` on target `{}` ({} vectors, {runs} warm runs)",
                project.name,
                target.name(),
                cases.len()
            ),
        );
        let job = Job {
            artifact: &built.artifact,
            manifest: &manifest,
            cases: &cases,
            runs,
        };
        let mut bar: Option<Step> = None;
        let executions = target
            .execute_all(&job, &mut |event| match event {
                Progress::Phase { verb, len } => {
                    // Replacing the bar drops (clears) the previous phase's.
                    bar = Some(ui.bar(verb, len));
                }
                Progress::Step => {
                    if let Some(bar) = &bar {
                        bar.inc();
                    }
                }
            })
            .with_context(|| {
                format!(
                    "cannot bench `{}` on target `{}`",
                    built.artifact.display(),
                    target.name()
                )
            })?;
        drop(bar);
        for execution in executions {
            targets.push(protocol::conformance(
                target.name(),
                &job,
                execution,
                built.size.clone(),
                tolerance,
            ));
        }
    }

    if !options.devices.is_empty() {
        targets.extend(bench_devices(
            project,
            &options.devices,
            &manifest,
            &cases,
            runs,
            tolerance,
            !options.debug,
            ui,
        )?);
    }

    Ok(BenchReport {
        schema: REPORT_SCHEMA,
        detector: project.name.clone(),
        model: manifest.source.file.clone(),
        model_sha256: manifest.source.sha256.clone(),
        tolerance,
        host: host_description(),
        tool: tool_description(),
        generated: utc_now(),
        targets,
        skipped,
    })
}

/// Benches the harness on every device, [`DEVICES_IN_FLIGHT`] at a time; a device
/// that cannot be reached or fails gets a failure row, and the others go on.
#[allow(clippy::too_many_arguments)]
fn bench_devices(
    project: &Project,
    devices: &[Device],
    manifest: &Manifest,
    cases: &[Case],
    runs: usize,
    tolerance: Tolerance,
    release: bool,
    ui: &Ui,
) -> Result<Vec<crate::report::TargetReport>> {
    let first = devices
        .first()
        .context("no device; this is a bug in cargo-medwasm")?;
    let built = first.build(project, release, ui)?;
    ui.status(
        "Benching",
        format!(
            "`{}` on {} device(s) over SSH ({} vectors, {runs} warm runs, {DEVICES_IN_FLIGHT} at a time)",
            project.name,
            devices.len(),
            cases.len()
        ),
    );
    let job = Job {
        artifact: &built.artifact,
        manifest,
        cases,
        runs,
    };
    let mut rows = Vec::with_capacity(devices.len());
    for batch in devices.chunks(DEVICES_IN_FLIGHT) {
        let results: Vec<Result<crate::protocol::Execution>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|d| scope.spawn(|| d.execute(&job, &mut |_| {})))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(anyhow::anyhow!(
                            "the device bench thread panicked; this is a bug in cargo-medwasm"
                        ))
                    })
                })
                .collect()
        });
        for (d, result) in batch.iter().zip(results) {
            rows.push(match result {
                Ok(execution) => {
                    protocol::conformance(d.name, &job, execution, built.size.clone(), tolerance)
                }
                Err(err) => {
                    let kind = if device::is_unreachable(&err) {
                        FailureKind::Unreachable
                    } else {
                        FailureKind::Failed
                    };
                    ui.warn(format!("{err:#}"));
                    TargetReport::failed(
                        d.name,
                        &built.artifact.display().to_string(),
                        built.size.clone(),
                        kind,
                        format!("{err:#}"),
                    )
                }
            });
        }
    }
    Ok(rows)
}

/// Builds each target's artifact, once per distinct build (the browser and Node.js
/// targets run the same package).
pub fn build_each(
    project: &Project,
    targets: &[&'static dyn Target],
    release: bool,
    ui: &Ui,
) -> Result<Vec<BuildOutput>> {
    let mut builds: Vec<BuildOutput> = Vec::with_capacity(targets.len());
    for (i, target) in targets.iter().enumerate() {
        let same = targets[..i]
            .iter()
            .position(|t| t.builds_as() == target.builds_as());
        builds.push(match same {
            Some(j) => builds[j].clone(),
            None => target.build(project, release, ui)?,
        });
    }
    Ok(builds)
}

/// Runs the original model in tract on every case. When tract cannot, the cases keep
/// `tract: None` and a warning says so: the stored expected outputs may still check them.
fn add_tract_outputs(
    project: &Project,
    manifest: &Manifest,
    cases: &mut [Case],
    ui: &Ui,
) -> Result<()> {
    let model = project.model_dir().join(&manifest.source.file);
    if manifest.source.format == "tflite" {
        ui.note(format!(
            "tract cannot run TFLite models: `{}` is checked against the stored expected outputs (LiteRT's reference kernels at import)",
            relative(project, &model)
        ));
        return Ok(());
    }
    let reference = {
        let _spinner = ui.spinner(
            "Loading",
            format!("`{}` in tract", relative(project, &model)),
        );
        TractReference::new(&model, &manifest.source.input_shapes)
    };
    let reference = match reference {
        Ok(reference) => reference,
        Err(err) => {
            ui.warn(format!(
                "{err:#}; checking against the stored expected outputs only"
            ));
            return Ok(());
        }
    };
    let bar = ui.bar("Reference", cases.len() as u64);
    let mut outputs = Vec::with_capacity(cases.len());
    for (v, case) in cases.iter().enumerate() {
        match reference.run(&case.inputs) {
            Ok(out) => outputs.push(out),
            Err(err) => {
                ui.warn(format!(
                    "{err:#} on vector {v}; checking against the stored expected outputs only"
                ));
                return Ok(());
            }
        }
        bar.inc();
    }
    if let Some(out) = outputs.first()
        && out.len() != manifest.outputs.len()
    {
        bail!(
            "tract finds {} outputs in `{}` but the manifest lists {}; import the model again with `cargo medwasm import`",
            out.len(),
            model.display(),
            manifest.outputs.len()
        );
    }
    for (case, out) in cases.iter_mut().zip(outputs) {
        case.tract = Some(out);
    }
    Ok(())
}
