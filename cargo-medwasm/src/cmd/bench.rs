//! `cargo medwasm bench`: builds the detector for each target, runs the stored test
//! vectors through it, compares its outputs with tract running the original model and
//! with the stored expected outputs, and measures latency, size and memory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::ValueEnum as _;

use crate::cmd::build::{self, BuildOutput};
use crate::manifest::{Manifest, TensorSpec};
use crate::npy::Array;
use crate::project::Project;
use crate::reference::TractReference;
use crate::report::{BenchReport, Tolerance, host_description};
use crate::runner::{self, Case, Job, Progress, Runner};
use crate::ui::{Step, Ui};

/// Warm runs when neither `--runs` nor `[package.metadata.medwasm] runs` is given.
pub const DEFAULT_RUNS: usize = 200;

/// Version of the `--json` schema; bump it when a field changes meaning or goes away.
/// 2: `latency.median_us`, `p95_us` and `p99_us` are `null` where nothing was timed
/// (device targets count instructions; a target whose every vector failed).
pub const REPORT_SCHEMA: u32 = 2;

/// Targets `bench` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchTarget {
    /// Embedded Wasmtime.
    Wasmtime,
    /// Headless Chromium, through the browser package.
    Browser,
    /// Node.js, through the browser package.
    Node,
    /// The firmware in QEMU (`--board`; counts instructions, not cycles).
    Mcu,
    /// Every target available on this machine.
    All,
}

impl BenchTarget {
    /// Whether this choice includes `runner`. A variant's command-line name is the
    /// runner's target name, so a new target needs a variant and a runner, no mapping.
    fn selects(self, runner: &dyn Runner) -> bool {
        match self {
            BenchTarget::All => true,
            one => one
                .to_possible_value()
                .is_some_and(|value| value.get_name() == runner.target()),
        }
    }
}

/// Run conformance and latency checks.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Target to bench.
    #[arg(long, value_enum, default_value = "wasmtime")]
    pub target: BenchTarget,
    /// Warm runs for the latency figures [default: `runs` in `[package.metadata.medwasm]`, else 200].
    #[arg(long)]
    pub runs: Option<usize>,
    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Bench the debug build instead of the release build.
    #[arg(long)]
    pub debug: bool,
    /// Path to the detector's Cargo.toml.
    #[arg(long)]
    pub manifest_path: Option<PathBuf>,
    /// Board for `--target mcu`: a built-in board or a board file (`*.toml`)
    /// [default: `board` in `[package.metadata.medwasm]`, else qemu-mps2-an386].
    #[arg(long)]
    pub board: Option<String>,
}

/// Returned when a vector failed conformance; the report has been printed.
#[derive(Debug, thiserror::Error)]
#[error(
    "conformance failed on {failed} of {total} vectors; the report on stdout says which and by how much"
)]
pub struct ConformanceFailed {
    /// Failed vectors, over all targets.
    pub failed: usize,
    /// All vectors, over all targets.
    pub total: usize,
}

impl BenchArgs {
    /// Runs the bench, prints the report on stdout, and fails with [`ConformanceFailed`]
    /// when a vector disagrees.
    pub fn run(self, ui: &Ui) -> Result<()> {
        let mut project = Project::locate(self.manifest_path.as_deref())?;
        for warning in &project.warnings {
            ui.warn(warning);
        }
        if self.board.is_some() {
            project.metadata.board = self.board;
        }
        let manifest = project.manifest()?;
        let runs = match self.runs.or(project.metadata.runs) {
            Some(0) => bail!(
                "0 warm runs measure nothing: pass `--runs 1` or more, or set `runs` in `[package.metadata.medwasm]` to at least 1"
            ),
            Some(runs) => runs,
            None => DEFAULT_RUNS,
        };
        let tolerance = Tolerance {
            abs: project.abs_tolerance(),
            rel: project.rel_tolerance(),
        };

        // Vectors are checked before anything is built: a malformed file is the
        // cheapest mistake to report.
        let mut cases = load_cases(&project, &manifest, ui)?;

        let mut selected = Vec::new();
        for runner in runner::all()
            .into_iter()
            .filter(|r| self.target.selects(r.as_ref()))
        {
            match runner.unavailable() {
                None => selected.push(runner),
                Some(why) if self.target == BenchTarget::All => {
                    ui.note(format!("skipping target `{}`: {why}", runner.target()));
                }
                Some(why) => bail!("target `{}` cannot run here: {why}", runner.target()),
            }
        }
        if selected.is_empty() {
            bail!(
                "no target can run on this machine; run `cargo medwasm doctor` to see what is missing"
            );
        }

        // `build::build` rather than `BuildArgs::run`: the latter prints its summary on
        // stdout, which belongs to the report (and must stay pure JSON under `--json`).
        // Browser and Node run the same package: it is built once.
        let mut builds: Vec<BuildOutput> = Vec::with_capacity(selected.len());
        for (i, runner) in selected.iter().enumerate() {
            let same = selected[..i]
                .iter()
                .position(|r| r.build_target() == runner.build_target());
            builds.push(match same {
                Some(j) => builds[j].clone(),
                None => build::build(&project, runner.build_target(), !self.debug, ui)?,
            });
        }

        add_tract_outputs(&project, &manifest, &mut cases, ui)?;
        if !cases.iter().any(Case::has_reference) {
            bail!(
                "nothing to compare the detector with: tract cannot run the original model and there are no expected outputs; save them as `{}` with shape [N, {}] (float32)",
                relative(&project, &project.expected_file(0)),
                manifest
                    .outputs
                    .first()
                    .map(|o| dims(&o.shape))
                    .unwrap_or_default()
            );
        }

        let mut targets = Vec::with_capacity(selected.len());
        for (runner, built) in selected.iter().zip(builds) {
            ui.status(
                "Benching",
                format!(
                    "`{}` on target `{}` ({} vectors, {runs} warm runs)",
                    project.name,
                    runner.target(),
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
            let execution = runner
                .execute(&job, &mut |event| match event {
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
                        runner.target()
                    )
                })?;
            drop(bar);
            targets.push(runner::conformance(
                runner.as_ref(),
                &job,
                execution,
                built.size,
                tolerance,
            ));
        }

        let report = BenchReport {
            schema: REPORT_SCHEMA,
            detector: project.name.clone(),
            model: manifest.source.file.clone(),
            model_sha256: manifest.source.sha256.clone(),
            tolerance,
            host: host_description(),
            targets,
        };
        if self.json {
            let json = serde_json::to_string_pretty(&report)
                .context("cannot serialize the bench report")?;
            println!("{json}");
        } else {
            print!("{report}");
        }
        if report.passed() {
            Ok(())
        } else {
            let (failed, total) = report.failed_vectors();
            Err(ConformanceFailed { failed, total }.into())
        }
    }
}

/// Reads the stored inputs and expected outputs into one [`Case`] per vector.
pub(crate) fn load_cases(project: &Project, manifest: &Manifest, ui: &Ui) -> Result<Vec<Case>> {
    let mut inputs = Vec::with_capacity(manifest.inputs.len());
    for (i, spec) in manifest.inputs.iter().enumerate() {
        let path = project.inputs_file(i);
        let array = Array::read(&path).with_context(|| {
            format!(
                "cannot load the test vectors of input {i} (`{}`): save them as `{}`, float32 with shape [N, {}]",
                spec.name,
                relative(project, &path),
                dims(&spec.shape)
            )
        })?;
        check_vectors(&array, project, &path, "input", i, spec)?;
        inputs.push((path, array));
    }
    let Some((first_path, first)) = inputs.first() else {
        bail!("the manifest lists no model inputs; run `cargo medwasm import <model.onnx>` again");
    };
    let count = first.samples();
    for (path, array) in &inputs[1..] {
        if array.samples() != count {
            bail!(
                "`{}` holds {} vectors but `{}` holds {count}; every input file needs one sample per vector, in the same order",
                relative(project, path),
                array.samples(),
                relative(project, first_path)
            );
        }
    }

    let mut expected = Vec::with_capacity(manifest.outputs.len());
    for (j, spec) in manifest.outputs.iter().enumerate() {
        let path = project.expected_file(j);
        if !path.exists() {
            ui.note(format!(
                "no `{}`: output {j} (`{}`) is checked against tract only",
                relative(project, &path),
                spec.name
            ));
            expected.push(None);
            continue;
        }
        let array = Array::read(&path).with_context(|| {
            format!(
                "cannot load the expected outputs of output {j} (`{}`)",
                spec.name
            )
        })?;
        check_vectors(&array, project, &path, "output", j, spec)?;
        if array.samples() != count {
            bail!(
                "`{}` holds {} vectors but `{}` holds {count}; store one expected sample per input vector, in the same order",
                relative(project, &path),
                array.samples(),
                relative(project, first_path)
            );
        }
        expected.push(Some(array));
    }

    Ok((0..count)
        .map(|v| Case {
            inputs: inputs.iter().map(|(_, a)| sample(a, v)).collect(),
            tract: None,
            expected: expected
                .iter()
                .map(|e| e.as_ref().map(|a| sample(a, v)))
                .collect(),
        })
        .collect())
}

/// Checks that `array` is `[N, ...]` with N ≥ 1 and the element count of `spec` per sample.
fn check_vectors(
    array: &Array,
    project: &Project,
    path: &Path,
    kind: &str,
    index: usize,
    spec: &TensorSpec,
) -> Result<()> {
    let shown = relative(project, path);
    let want = format!("[N, {}]", dims(&spec.shape));
    let Some((&count, per_sample)) = array.shape.split_first() else {
        bail!(
            "`{shown}` holds a scalar; store the vectors of {kind} {index} (`{}`) with shape {want}",
            spec.name
        );
    };
    if count == 0 {
        bail!("`{shown}` holds no vectors; store at least one with shape {want}");
    }
    let per: usize = per_sample.iter().product();
    if per != spec.len() {
        bail!(
            "`{shown}` has shape {:?}, {per} elements per vector, but {kind} {index} (`{}`) has shape {:?} ({} elements); store it with shape {want}",
            array.shape,
            spec.name,
            spec.shape,
            spec.len()
        );
    }
    Ok(())
}

/// Elements of sample `v` of an array already checked by [`check_vectors`].
fn sample(array: &Array, v: usize) -> Vec<f32> {
    array.sample(v).map(<[f32]>::to_vec).unwrap_or_default()
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

/// `1, 4` for shape `[1, 4]`.
fn dims(shape: &[u64]) -> String {
    shape
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `path` relative to the project root when it is inside it, for shorter messages.
fn relative(project: &Project, path: &Path) -> String {
    path.strip_prefix(&project.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Metadata;

    fn project(root: &Path) -> Project {
        Project {
            name: "demo".into(),
            root: root.to_path_buf(),
            manifest_path: root.join("Cargo.toml"),
            target_dir: root.join("target"),
            metadata: Metadata::default(),
            warnings: vec![],
            sdk_version: None,
            is_cdylib: true,
        }
    }

    fn manifest() -> Manifest {
        Manifest::for_tests(&[("x", &[1, 4]), ("h", &[1, 2])], &[("y", &[1, 3])])
    }

    fn write(path: PathBuf, shape: Vec<usize>) {
        let len = shape.iter().product();
        let data = (0..len).map(|i| i as f32).collect();
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        Array { shape, data }.write(&path).expect("write npy");
    }

    #[test]
    fn loads_cases_from_every_input_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = project(dir.path());
        write(project.inputs_file(0), vec![3, 1, 4]);
        write(project.inputs_file(1), vec![3, 2]);
        let cases = load_cases(&project, &manifest(), &Ui::silent()).expect("valid vectors");
        assert_eq!(cases.len(), 3);
        assert_eq!(
            cases[1].inputs,
            vec![vec![4.0, 5.0, 6.0, 7.0], vec![2.0, 3.0]]
        );
        assert_eq!(
            cases[1].expected,
            vec![None],
            "expected outputs are optional"
        );
        assert!(!cases[1].has_reference());

        write(project.expected_file(0), vec![3, 3]);
        let cases = load_cases(&project, &manifest(), &Ui::silent()).expect("valid vectors");
        assert_eq!(cases[2].expected, vec![Some(vec![6.0, 7.0, 8.0])]);
    }

    #[test]
    fn rejects_vectors_that_do_not_fit_the_model() {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = project(dir.path());
        let err = |project: &Project| {
            format!(
                "{:#}",
                load_cases(project, &manifest(), &Ui::silent()).expect_err("invalid")
            )
        };

        assert!(
            err(&project)
                .contains("save them as `vectors/inputs.npy`, float32 with shape [N, 1, 4]")
        );

        write(project.inputs_file(0), vec![3, 5]);
        assert!(
            err(&project).contains("`vectors/inputs.npy` has shape [3, 5], 5 elements per vector, but input 0 (`x`) has shape [1, 4] (4 elements); store it with shape [N, 1, 4]"),
            "{}",
            err(&project)
        );

        write(project.inputs_file(0), vec![3, 4]);
        write(project.inputs_file(1), vec![2, 2]);
        assert!(
            err(&project).contains(
                "`vectors/inputs.1.npy` holds 2 vectors but `vectors/inputs.npy` holds 3"
            )
        );

        write(project.inputs_file(1), vec![0, 2]);
        assert!(err(&project).contains("`vectors/inputs.1.npy` holds no vectors"));

        write(project.inputs_file(1), vec![3, 2]);
        write(project.expected_file(0), vec![2, 3]);
        assert!(err(&project).contains("`vectors/expected.npy` holds 2 vectors"));
    }

    #[test]
    fn target_names_match_runner_names() {
        for runner in runner::all() {
            assert!(
                BenchTarget::value_variants()
                    .iter()
                    .any(|t| *t != BenchTarget::All && t.selects(runner.as_ref())),
                "runner `{}` has no `--target` value",
                runner.target()
            );
            assert!(BenchTarget::All.selects(runner.as_ref()));
        }
    }
}
