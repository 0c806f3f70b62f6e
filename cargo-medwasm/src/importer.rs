//! Importing a model into a detector project: convert it, check the converted model
//! natively against a reference that is not our code before writing anything (tract
//! on a float ONNX original, onnxruntime on a quantized one or one tract cannot
//! load, LiteRT's reference kernels on a TFLite one, or the given expected outputs
//! when the Python reference is not installed), then write `model/model.mwm`,
//! `model/manifest.json`, `src/model.rs` and test vectors. Used by `cargo medwasm
//! import` and by `new` for templates that ship a model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::convert::{self, ConvertOptions, run_native};
use crate::files::write_atomically as write;
use crate::manifest::{BLOB_FILE, CheckedAgainst, MANIFEST_FILE, Manifest, Quant, ReferenceKind};
use crate::npy::Array;
use crate::project::indexed;
use crate::pyref::{Engine, PyReference};
use crate::report::{Deviation, Tolerance};
use crate::ui::Ui;

/// Options of [`import_model`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--input-shape` values as typed.
    pub input_shapes: Vec<String>,
    /// Inputs to store as vectors.
    pub inputs: Option<PathBuf>,
    /// Expected outputs to store.
    pub expected: Option<PathBuf>,
    /// How int8 fully connected layers requantize.
    pub fc_requant: convert::FcRequant,
    /// The element types at the detector's ABI (`--io`).
    pub io: convert::Io,
    /// Quantization steps an int8 output may be off in the self-check (the
    /// project's `int8-tolerance-steps`, which `bench` applies too); when unset,
    /// the reference's own default ([`Reference::default_steps`]).
    pub int8_tolerance_steps: Option<u32>,
}

/// Tolerance of the import-time self-check of f32 outputs; int8 outputs (and f32
/// outputs the model dequantizes last) get quantization steps.
const SELF_CHECK: Tolerance = Tolerance {
    abs: 1e-3,
    rel: 1e-3,
    steps: 0,
};
/// Vectors generated when a project has none.
const GENERATED_VECTORS: usize = 8;

/// Parses `name=1,2,3`.
fn parse_shape(s: &str) -> Result<(String, Vec<usize>)> {
    let (name, dims) = s
        .rsplit_once('=')
        .with_context(|| format!("`--input-shape {s}` must look like `name=1,640`"))?;
    let dims = dims
        .split(',')
        .map(|d| d.trim().parse::<usize>().ok().filter(|&v| v > 0))
        .collect::<Option<Vec<_>>>()
        .with_context(|| {
            format!("`--input-shape {s}`: dimensions must be positive integers separated by commas")
        })?;
    Ok((name.to_string(), dims))
}

/// Converts `model` and embeds it in the detector project at `root`.
pub fn import_model(root: &Path, model: &Path, opts: &ImportOptions, ui: &Ui) -> Result<Manifest> {
    let mut shapes = HashMap::new();
    for s in &opts.input_shapes {
        let (name, dims) = parse_shape(s)?;
        shapes.insert(name, dims);
    }
    ui.status("Converting", model.display());
    let converted = convert::convert_model(
        model,
        &ConvertOptions {
            input_shapes: shapes,
            fc_requant: opts.fc_requant,
            io: opts.io,
        },
    )?;
    let manifest = converted.manifest;
    for note in &manifest.notes {
        ui.note(note);
    }

    let model_dir = root.join("model");
    let vectors_dir = root.join("vectors");
    std::fs::create_dir_all(&model_dir)
        .with_context(|| format!("cannot create `{}`", model_dir.display()))?;
    std::fs::create_dir_all(&vectors_dir)
        .with_context(|| format!("cannot create `{}`", vectors_dir.display()))?;
    // The original model is kept beside the blob: bench runs tract on it as the reference.
    let kept = model_dir.join(&manifest.source.file);
    let same = std::fs::canonicalize(model).ok() == std::fs::canonicalize(&kept).ok();

    let reference = Reference::for_model(
        model,
        &manifest,
        (converted.int8_activations, &converted.int8_inputs),
        opts,
        ui,
    )?;
    let vectors = prepare_vectors(root, &manifest, opts, &reference, ui)?;

    // Self-check: the SDK, natively, on every vector, against the reference, then
    // against `--expected` when both are there. Outputs the model quantizes compare
    // in quantization steps: the project's `int8-tolerance-steps`, else the
    // reference's default (1 against onnxruntime, 0 against TFLite's kernels);
    // outputs given with `--expected` are trusted as TFLite's reference kernels'
    // (0 steps unless the project says otherwise).
    let reference_outputs = match vectors.reference_outputs {
        Some(outs) => outs,
        None => reference
            .run_all(&vectors.inputs, &manifest)?
            .context("no reference outputs; this is a bug in cargo-medwasm")?,
    };
    let against = reference.describe(opts);
    let steps = opts
        .int8_tolerance_steps
        .unwrap_or(reference.default_steps());
    let d = self_check(
        &converted.blob,
        &vectors.inputs,
        &reference_outputs,
        &manifest,
        steps,
    )?;
    // onnxruntime's int8 kernels are not TFLite's reference kernels (on tf2onnx's
    // kws_int8 its Softmax is 13 steps from them): outputs given with `--expected`
    // decide, and onnxruntime's distance is reported beside them.
    let given_decides = vectors.given_expected.is_some()
        && matches!(&reference, Reference::Python(p, _) if p.engine() == Engine::OnnxRuntime);
    let mut kind = reference.kind();
    // The manifest is embedded in every artifact: it names a given file by its
    // file name, not this machine's path.
    let mut name = match reference {
        Reference::Expected => expected_file_name(opts),
        _ => against.clone(),
    };
    match judge(d, &against, steps, &reference, model, &manifest) {
        Ok(line) => ui.status("Verified", line),
        Err(_) if given_decides => {
            let s = d.and_then(|d| d.steps).unwrap_or(crate::report::Steps {
                exact: 0,
                one: 0,
                more: 0,
                max: 0,
                argmax_agrees: true,
            });
            ui.warn(format!(
                "the converted model is {} quantization steps from {against} ({} values identical, {} one step off, {} more): its int8 kernels round otherwise than TFLite's reference kernels, which the detector runs; the outputs given with `--expected` decide",
                s.max, s.exact, s.one, s.more
            ));
            kind = ReferenceKind::Expected;
            name = format!(
                "{}, given with `--expected` ({against} was {} steps off)",
                expected_file_name(opts),
                s.max
            );
        }
        Err(refusal) => bail!(refusal),
    }
    let mut stored_from_reference = matches!(reference, Reference::Python(..));
    if let (Some(given), false) = (
        &vectors.given_expected,
        matches!(reference, Reference::Expected),
    ) {
        stored_from_reference = false;
        let steps = opts.int8_tolerance_steps.unwrap_or(0);
        let against = reference_describe_expected(opts);
        let d = self_check(
            &converted.blob,
            &vectors.inputs,
            std::slice::from_ref(given),
            &manifest,
            steps,
        )?;
        ui.status(
            "Verified",
            judge(d, &against, steps, &Reference::Expected, model, &manifest)
                .map_err(|refusal| anyhow::anyhow!(refusal))?,
        );
    }
    let mut manifest = manifest;
    manifest.reference = Some(CheckedAgainst {
        kind,
        name,
        int8_tolerance_steps: if stored_from_reference {
            reference.default_steps()
        } else {
            0
        },
    });

    // Everything checked: write.
    if !same {
        std::fs::copy(model, &kept)
            .with_context(|| format!("cannot copy the model to `{}`", kept.display()))?;
    }
    write(&model_dir.join(BLOB_FILE), &converted.blob)?;
    write(
        &model_dir.join(MANIFEST_FILE),
        (serde_json::to_string_pretty(&manifest)? + "\n").as_bytes(),
    )?;
    write(
        &root.join("src").join("model.rs"),
        model_rs(
            &manifest,
            op_set(&converted.blob)?,
            plan_size(&converted.blob)?,
        )
        .as_bytes(),
    )?;
    for (i, a) in vectors.write_inputs.iter() {
        write(&vectors_dir.join(indexed("inputs", *i)), &a.to_bytes())?;
    }
    for (i, a) in vectors.write_expected.iter() {
        write(&vectors_dir.join(indexed("expected", *i)), &a.to_bytes())?;
    }
    ui.status(
        "Wrote",
        format!(
            "{}/{{{BLOB_FILE}, {MANIFEST_FILE}}}, src/model.rs",
            model_dir.display()
        ),
    );
    Ok(manifest)
}

/// Runs `blob` natively on every sample of `inputs` and compares its outputs with
/// `want` (one `[N, ...]` array per output): real values within [`SELF_CHECK`],
/// quantized outputs within `steps` quantization steps.
fn self_check(
    blob: &[u8],
    inputs: &[Array],
    want: &[Array],
    m: &Manifest,
    steps: u32,
) -> Result<Option<Deviation>> {
    // `--expected` may give the first output only; a reference gives them all.
    if want.is_empty() || want.len() > m.outputs.len() {
        bail!(
            "the reference gives {} outputs but the converted model has {}; this is a bug in cargo-medwasm",
            want.len(),
            m.outputs.len()
        );
    }
    let tol = Tolerance {
        steps,
        ..SELF_CHECK
    };
    let n = inputs.first().map_or(0, Array::samples);
    let mut dev: Option<Deviation> = None;
    for s in 0..n {
        let sample: Vec<Vec<f32>> = inputs
            .iter()
            .zip(&m.inputs)
            .map(|(a, t)| abi_sample(a, s, t.quant))
            .collect();
        let got = run_native(blob, &sample)?;
        for ((g, w), t) in got.iter().zip(want).zip(&m.outputs) {
            let w = abi_sample(w, s, t.quant);
            let d = match &t.quant {
                Some(q) => Deviation::compare_steps(g, &w, q, tol),
                None => Deviation::compare(g, &w, SELF_CHECK),
            };
            dev = Some(dev.map_or(d, |x| x.merge(d)));
        }
    }
    Ok(dev)
}

/// The `--expected` file as messages name it.
fn reference_describe_expected(opts: &ImportOptions) -> String {
    format!(
        "`{}`",
        opts.expected
            .as_deref()
            .map(Path::display)
            .map(|d| d.to_string())
            .unwrap_or_default()
    )
}

/// The `--expected` file's name, for the manifest.
fn expected_file_name(opts: &ImportOptions) -> String {
    format!(
        "`{}`",
        opts.expected
            .as_deref()
            .and_then(Path::file_name)
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

/// What the self-check found, for the `Verified` line, or the refusal.
fn judge(
    dev: Option<Deviation>,
    against: &str,
    steps: u32,
    reference: &Reference,
    model: &Path,
    m: &Manifest,
) -> Result<String, String> {
    let Some(d) = dev else {
        return Err("the converted model produced no outputs; this is a converter bug".into());
    };
    let off = |s: &crate::report::Steps| s.one + s.more;
    match d.steps {
        Some(s) if d.pass && s.max == 0 => Ok(format!(
            "against {against}: the int8 outputs are identical ({} values, 0 quantization steps off)",
            s.exact
        )),
        Some(s) if d.pass => Ok(format!(
            "against {against}: {} int8 values identical, {} one quantization step off, {} more (at most {}; {steps} allowed{})",
            s.exact,
            s.one,
            s.more,
            s.max,
            match reference {
                Reference::Python(p, _) if p.engine() == Engine::OnnxRuntime =>
                    " against onnxruntime, whose int8 arithmetic rounds otherwise than TFLite's kernels, which the detector runs",
                _ => " by `int8-tolerance-steps`",
            }
        )),
        None if d.pass => Ok(format!(
            "against {against}: max abs error {:.2e}, max rel error {:.2e}",
            d.max_abs, d.max_rel
        )),
        Some(s) if m.fc_requant.as_deref() == Some(convert::FcRequant::Tflm.name()) => {
            Err(format!(
                "the converted model is {} quantization steps from {against} on `{}` ({} values off); nothing was written. With `--fc-requant tflm` the fully connected layers requantize as TFLite Micro does, which LiteRT's reference kernels do not: allow the difference with `int8-tolerance-steps = {}` in `[package.metadata.medwasm]` (bench applies it too), or import with `--fc-requant litert-ref`",
                s.max,
                model.display(),
                off(&s),
                s.max
            ))
        }
        Some(s) if matches!(reference, Reference::Python(p, _) if p.engine() == Engine::OnnxRuntime) => {
            Err(format!(
                "the converted model is {} quantization steps from {against} on `{}` ({} values off by one step, {} by more), more than the {steps} allowed; nothing was written. onnxruntime's int8 arithmetic rounds otherwise than TFLite's kernels, which the detector runs (docs/ops.md, \"Quantized ONNX\"): for a model tf2onnx converted from a TFLite one, pass `--inputs x.npy --expected y.npy` with LiteRT's reference-kernel outputs, which then decide; if a few steps are acceptable, allow them with `int8-tolerance-steps = {}` in `[package.metadata.medwasm]` (bench applies it too); a larger difference is a converter bug: please report it with the model attached",
                s.max,
                model.display(),
                s.one,
                s.more,
                s.max
            ))
        }
        _ => Err(format!(
            "the converted model disagrees with {against} on `{}` ({}); nothing was written. This is a converter bug: please report it with the model attached",
            model.display(),
            match d.steps {
                Some(s) => format!(
                    "{} int8 values off by one quantization step, {} by more (at most {}; {steps} allowed)",
                    s.one, s.more, s.max
                ),
                None => format!(
                    "max abs error {:.3e}, max rel error {:.3e}",
                    d.max_abs, d.max_rel
                ),
            }
        )),
    }
}

/// The original model as a Python reference runs it.
struct Original {
    path: PathBuf,
    /// Per graph input, whether the model itself takes int8 values (else real
    /// ones, whatever the detector's ABI takes).
    int8_inputs: Vec<bool>,
}

/// What an import checks the converted model against.
enum Reference {
    /// tract on a float ONNX original.
    Tract(crate::reference::TractReference),
    /// A Python reference on the original: LiteRT's reference kernels on a TFLite
    /// model, onnxruntime on a quantized ONNX one (or one tract cannot load).
    Python(PyReference, Original),
    /// Only the outputs given with `--expected` (the Python reference is absent).
    Expected,
}

/// Why tract is not the reference for a quantized ONNX model.
const TRACT_NOT_FOR_INT8: &str = "tract cannot stand for quantized ONNX models: it loads no int8-input graph, has none of onnxruntime's `com.microsoft` int8 operators, and runs QuantizeLinear/DequantizeLinear pairs in float";

impl Reference {
    /// Picks the reference: LiteRT for TFLite; for ONNX, tract on a float model it
    /// can load, onnxruntime on a quantized one (`int8`: the model computes on
    /// int8 values) or one tract cannot load; the `--expected` outputs when the
    /// Python reference is absent, or a refusal without them.
    fn for_model(
        model: &Path,
        m: &Manifest,
        (int8, int8_inputs): (bool, &[bool]),
        opts: &ImportOptions,
        ui: &Ui,
    ) -> Result<Reference> {
        let original = Original {
            path: model.to_path_buf(),
            int8_inputs: int8_inputs.to_vec(),
        };
        if convert::is_tflite(model) {
            return Reference::python(
                Engine::LiteRt,
                original,
                opts,
                ui,
                "tract cannot run `.tflite` files",
                "from TFLite's reference kernels",
            );
        }
        if int8 {
            ui.note(format!(
                "the model is quantized: checking it against onnxruntime ({TRACT_NOT_FOR_INT8})"
            ));
            return Reference::python(
                Engine::OnnxRuntime,
                original,
                opts,
                ui,
                TRACT_NOT_FOR_INT8,
                "from onnxruntime, or TFLite's reference kernels for a model tf2onnx converted",
            );
        }
        match crate::reference::TractReference::new(model, &m.source.input_shapes) {
            Ok(tract) => Ok(Reference::Tract(tract)),
            Err(err) => {
                // onnxruntime is the ONNX reference implementation: where tract
                // cannot load a float model, it can still check it.
                let why = format!("{err:#}");
                ui.note(format!("{why}; checking it against onnxruntime instead"));
                Reference::python(
                    Engine::OnnxRuntime,
                    original,
                    opts,
                    ui,
                    &why,
                    "from onnxruntime",
                )
            }
        }
    }

    /// `engine` when it is installed; else the `--expected` outputs (with a
    /// warning) or a refusal that says what to do. `no_tract` says why tract
    /// cannot stand in; `trusted` where outputs worth passing come from.
    fn python(
        engine: Engine,
        original: Original,
        opts: &ImportOptions,
        ui: &Ui,
        no_tract: &str,
        trusted: &str,
    ) -> Result<Reference> {
        let name = engine.name();
        let kind = match engine {
            Engine::LiteRt => "TFLite models",
            Engine::OnnxRuntime => "this ONNX model",
        };
        match PyReference::probe(engine) {
            Ok(found) => Ok(Reference::Python(found, original)),
            Err(why) if opts.expected.is_some() => {
                ui.warn(format!(
                    "{name}, the reference for {kind}, is not available ({why}); checking against `--expected` only (`{}` to check against {name})",
                    engine.install()
                ));
                Ok(Reference::Expected)
            }
            Err(why) => bail!(
                "{name}, the reference for {kind}, is not available here ({why}), and {no_tract}: pass `--inputs x.npy --expected y.npy` with outputs you trust ({trusted}), or install it with `{}` (the Python is `python3`, or `MEDWASM_PYTHON`)",
                engine.install()
            ),
        }
    }

    /// Which reference, for the manifest.
    fn kind(&self) -> ReferenceKind {
        match self {
            Reference::Tract(_) => ReferenceKind::Tract,
            Reference::Python(p, _) => match p.engine() {
                Engine::LiteRt => ReferenceKind::LiteRt,
                Engine::OnnxRuntime => ReferenceKind::OnnxRuntime,
            },
            Reference::Expected => ReferenceKind::Expected,
        }
    }

    /// Quantization steps an int8 output may be off from this reference when the
    /// project sets no `int8-tolerance-steps`: onnxruntime computes its int8
    /// operators with other rounding than TFLite's kernels (a float
    /// requantization, averages rounded once), which the detector runs, and is
    /// within one step on all but 2 of the 58 models of `conformance/qdq`; the
    /// others are TFLite's reference kernels, or taken to be, so none.
    fn default_steps(&self) -> u32 {
        match self {
            Reference::Python(p, _) if p.engine() == Engine::OnnxRuntime => 1,
            _ => 0,
        }
    }

    fn describe(&self, opts: &ImportOptions) -> String {
        match self {
            Reference::Tract(_) => "tract".into(),
            Reference::Python(p, _) => p.describe(),
            Reference::Expected => reference_describe_expected(opts),
        }
    }

    /// The outputs for every sample of `inputs` (one `[N, ...]` array per input),
    /// one `[N, ...]` array per output; `None` without a runnable reference.
    fn run_all(&self, inputs: &[Array], m: &Manifest) -> Result<Option<Vec<Array>>> {
        match self {
            Reference::Tract(tract) => {
                let n = inputs.first().map_or(0, Array::samples);
                let mut outs: Vec<Vec<f32>> = vec![vec![]; m.outputs.len()];
                for s in 0..n {
                    let sample: Vec<Vec<f32>> = inputs
                        .iter()
                        .map(|a| a.sample(s).unwrap_or(&[]).to_vec())
                        .collect();
                    for (o, v) in tract.run(&sample)?.into_iter().enumerate() {
                        if let Some(acc) = outs.get_mut(o) {
                            acc.extend(v);
                        }
                    }
                }
                Ok(Some(
                    outs.into_iter()
                        .zip(&m.outputs)
                        .map(|(data, t)| {
                            let mut shape = vec![n];
                            shape.extend(t.shape.iter().map(|&d| d as usize));
                            Array::floats(shape, data)
                        })
                        .collect(),
                ))
            }
            Reference::Python(
                engine,
                Original {
                    path: model,
                    int8_inputs,
                },
            ) => {
                // Each sample in the model's own element type and in the shape it
                // was converted with (`--inputs` files may drop a batch of 1).
                let inputs: Vec<Array> = inputs
                    .iter()
                    .zip(&m.inputs)
                    .zip(int8_inputs)
                    .map(|((a, t), &int8)| {
                        let mut shape = vec![a.samples()];
                        shape.extend(t.shape.iter().map(|&d| d as usize));
                        Array {
                            shape,
                            ..model_array(a, t.quant, int8)
                        }
                    })
                    .collect();
                let outs = engine.run(model, &inputs)?;
                if outs.len() != m.outputs.len() {
                    bail!(
                        "{} finds {} outputs in `{}` but the converted model has {}; this is a converter bug",
                        engine.engine().name(),
                        outs.len(),
                        model.display(),
                        m.outputs.len()
                    );
                }
                Ok(Some(outs))
            }
            Reference::Expected => Ok(None),
        }
    }
}

struct Vectors {
    /// One array per model input, `[N, ...]`.
    inputs: Vec<Array>,
    /// What the reference (or `--expected`) says for them, when known.
    reference_outputs: Option<Vec<Array>>,
    /// The outputs given with `--expected` (first output).
    given_expected: Option<Array>,
    write_inputs: Vec<(usize, Array)>,
    write_expected: Vec<(usize, Array)>,
}

/// Picks the vectors: `--inputs/--expected`, else the project's own, else seeded
/// random inputs with the reference's outputs as the expected ones. A model checked
/// by a Python reference has none at bench time (tract cannot run it, or not
/// faithfully), so its expected outputs are always stored: the reference's, or
/// `--expected`.
fn prepare_vectors(
    root: &Path,
    m: &Manifest,
    opts: &ImportOptions,
    reference: &Reference,
    ui: &Ui,
) -> Result<Vectors> {
    let store_reference = matches!(reference, Reference::Python(..));
    let check = |a: &Array, len: usize, what: &Path| -> Result<()> {
        let per = if a.samples() == 0 {
            0
        } else {
            a.data.len() / a.samples()
        };
        if per != len || a.samples() == 0 {
            bail!(
                "`{}` has shape {:?}: expected [N, ...] with {} elements per sample",
                what.display(),
                a.shape,
                len
            );
        }
        Ok(())
    };
    if let Some(path) = &opts.inputs {
        if m.inputs.len() != 1 {
            bail!(
                "`--inputs` works for single-input models; put `vectors/inputs.npy`, `vectors/inputs.1.npy` … in the project instead"
            );
        }
        let a = Array::read(path)?;
        check(&a, m.inputs[0].len(), path)?;
        check_int8(&a, &m.inputs[0], path)?;
        let mut write_expected = vec![];
        let mut reference_outputs = None;
        let mut given_expected = None;
        if let Some(e) = &opts.expected {
            let ex = Array::read(e)?;
            check(&ex, m.outputs[0].len(), e)?;
            if ex.samples() != a.samples() {
                bail!(
                    "`{}` has {} samples but `{}` has {}",
                    e.display(),
                    ex.samples(),
                    path.display(),
                    a.samples()
                );
            }
            if matches!(reference, Reference::Expected) {
                reference_outputs = Some(vec![ex.clone()]);
            }
            given_expected = Some(ex.clone());
            write_expected.push((0, ex));
        } else if store_reference {
            let outs = reference.run_all(std::slice::from_ref(&a), m)?;
            write_expected = outs.iter().flatten().cloned().enumerate().collect();
            reference_outputs = outs;
        }
        return Ok(Vectors {
            inputs: vec![a.clone()],
            reference_outputs,
            given_expected,
            write_inputs: vec![(0, a)],
            write_expected,
        });
    }
    if matches!(reference, Reference::Expected) {
        bail!(
            "without the Python reference the expected outputs must come with their inputs: pass `--inputs x.npy --expected y.npy`"
        );
    }
    let existing: Vec<PathBuf> = (0..m.inputs.len())
        .map(|i| root.join("vectors").join(indexed("inputs", i)))
        .collect();
    if existing.iter().all(|p| p.exists()) {
        let mut inputs = vec![];
        for (p, t) in existing.iter().zip(&m.inputs) {
            let a = Array::read(p)?;
            check(&a, t.len(), p)?;
            check_int8(&a, t, p)?;
            inputs.push(a);
        }
        // A Python reference's stored outputs are the only reference at bench
        // time: refresh them for the model being imported.
        let (reference_outputs, write_expected) = if store_reference {
            let outs = reference.run_all(&inputs, m)?;
            let write = outs.iter().flatten().cloned().enumerate().collect();
            (outs, write)
        } else {
            (None, vec![])
        };
        return Ok(Vectors {
            inputs,
            reference_outputs,
            given_expected: None,
            write_inputs: vec![],
            write_expected,
        });
    }
    ui.note(format!(
        "no test vectors given: generating {GENERATED_VECTORS} seeded random inputs ({}) with {}'s outputs as the expected ones; pass `--inputs x.npy --expected y.npy` to store real ones",
        if m.inputs.iter().any(|t| t.quant.is_some()) {
            "int8 values over the whole int8 range for int8 inputs, [-1, 1) for float ones"
        } else {
            "in [-1, 1)"
        },
        match reference {
            Reference::Python(p, _) => p.engine().name(),
            _ => "tract",
        }
    ));
    let mut rng = SplitMix(0x6d65_6477_6173_6d31);
    let inputs: Vec<Array> = m
        .inputs
        .iter()
        .map(|t| {
            let mut shape = vec![GENERATED_VECTORS];
            shape.extend(t.shape.iter().map(|&d| d as usize));
            let n = GENERATED_VECTORS * t.len();
            match t.quant {
                // An int8 input's own values, every one of the 256 equally likely:
                // the vectors reach both saturation ends.
                Some(_) => Array {
                    shape,
                    data: (0..n)
                        .map(|_| (rng.next_f32() * 256.0).floor() - 128.0)
                        .collect(),
                    integers: true,
                },
                None => Array::floats(shape, (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()),
            }
        })
        .collect();
    let outs = reference.run_all(&inputs, m)?.unwrap_or_default();
    let write_expected = outs.iter().cloned().enumerate().collect();
    let write_inputs = inputs.iter().cloned().enumerate().collect();
    Ok(Vectors {
        inputs,
        reference_outputs: Some(outs),
        given_expected: None,
        write_inputs,
        write_expected,
    })
}

/// Refuses integer vectors of an int8 input that lie outside int8: they cannot be
/// the model's own values.
fn check_int8(a: &Array, t: &crate::manifest::TensorSpec, path: &Path) -> Result<()> {
    // NaN and ±∞ have no int8 value: an int8 detector input could not take them.
    if t.abi_int8().is_some()
        && let Some(v) = a.data.iter().find(|v| !v.is_finite())
    {
        bail!(
            "`{}` holds {v}, but input `{}` of this detector is int8 (`--io int8`), which has no such value; drop or impute the vector",
            path.display(),
            t.name
        );
    }
    if t.quant.is_some()
        && a.integers
        && let Some(v) = a.data.iter().find(|v| !(-128.0..=127.0).contains(*v))
    {
        bail!(
            "`{}` holds {v}, outside int8, but input `{}` is int8 in the model; store its quantized values as int8, or real values as float32",
            path.display(),
            t.name
        );
    }
    Ok(())
}

/// Sample `s` of `a` as the detector's ABI takes or returns it: integer vectors of
/// a tensor the model quantizes are its int8 values, whose real values the model's
/// DEQUANTIZE gives; anything else is real already.
fn abi_sample(a: &Array, s: usize, quant: Option<Quant>) -> Vec<f32> {
    let v = a.sample(s).unwrap_or(&[]);
    match quant.filter(|_| a.integers) {
        Some(q) => v.iter().map(|&x| q.dequantize(x)).collect(),
        None => v.to_vec(),
    }
}

/// `a` in the original model's own element type (`int8`: the model takes int8),
/// for the Python reference: an int8 input gets its int8 values (real vectors
/// quantized as TFLite's QUANTIZE does: an f32 division, ties away from zero,
/// saturated), a float input real values (int8 vectors of an input the detector
/// takes as int8, `--io int8`, dequantized: the model's own quantize gives them back).
fn model_array(a: &Array, quant: Option<Quant>, int8: bool) -> Array {
    match (quant, a.integers) {
        (Some(q), true) if !int8 => Array::floats(
            a.shape.clone(),
            a.data.iter().map(|&x| q.dequantize(x)).collect(),
        ),
        (Some(_), _) if !int8 => Array {
            integers: false,
            ..a.clone()
        },
        (Some(_), true) => a.clone(),
        (Some(q), false) => Array {
            data: a.data.iter().map(|&x| q.quantize(x) as f32).collect(),
            integers: true,
            ..a.clone()
        },
        (None, _) => Array {
            integers: false,
            ..a.clone()
        },
    }
}

/// The operators `blob` uses, as `(op_bit mask, names)` for the generated `OPS`.
fn op_set(blob: &[u8]) -> Result<(u64, Vec<String>)> {
    let aligned = medwasm::AlignedBuf::from_bytes(blob);
    let model = medwasm::Model::load(aligned.as_slice())?;
    let mut mask = 0;
    for n in 0..model.node_count() {
        mask |= medwasm::ops::op_bit(model.node(n)?.op);
    }
    let names = medwasm::format::OpCode::ALL
        .into_iter()
        .filter(|&op| mask & medwasm::ops::op_bit(op) != 0)
        .map(|op| format!("{op:?}"))
        .collect();
    Ok((mask, names))
}

/// The storage `blob`'s prepared plan needs, for the generated `NODES` and `OPERANDS`.
fn plan_size(blob: &[u8]) -> Result<medwasm::PlanSize> {
    let aligned = medwasm::AlignedBuf::from_bytes(blob);
    Ok(medwasm::PlanSize::of(&medwasm::Model::load(
        aligned.as_slice(),
    )?))
}

/// The generated `src/model.rs`.
fn model_rs(m: &Manifest, (ops, op_names): (u64, Vec<String>), plan: medwasm::PlanSize) -> String {
    let mut s = format!(
        "//! Generated by `cargo medwasm import` from `{}` (sha256 {}).\n\
         //! Do not edit: run `cargo medwasm import` again instead.\n\n\
         /// The compact model blob (`model/{BLOB_FILE}`, {} bytes, sha256 {}).\n\
         pub const BLOB: &[u8] = medwasm::include_model!(\"../model/{BLOB_FILE}\");\n\n\
         /// Peak arena bytes of the static memory plan.\n\
         pub const ARENA_BYTES: usize = {};\n\n\
         /// The operators the model uses ({}): only their kernels are linked.\n\
         #[allow(dead_code)]\n\
         pub const OPS: u64 = {ops:#x};\n\n\
         /// Steps of the plan the runtime prepares once, at init: one per node.\n\
         #[allow(dead_code)]\n\
         pub const NODES: usize = {};\n\n\
         /// Operand slots of that plan: every node's inputs, then the graph inputs and outputs.\n\
         #[allow(dead_code)]\n\
         pub const OPERANDS: usize = {};\n",
        m.source.file,
        m.source.sha256,
        m.blob_bytes,
        m.blob_sha256,
        m.arena_bytes,
        op_names.join(", "),
        plan.steps,
        plan.operands
    );
    for (kind, list) in [("INPUT", &m.inputs), ("OUTPUT", &m.outputs)] {
        for (i, t) in list.iter().enumerate() {
            s.push_str(&format!(
                "\n/// {} {i}: `{}`, shape {:?}, {}.\n#[allow(dead_code)]\npub const {kind}_{i}_LEN: usize = {};\n",
                kind.to_lowercase(),
                t.name,
                t.shape,
                t.dtype,
                t.len()
            ));
        }
    }
    s
}

/// A small deterministic generator (SplitMix64) so generated vectors are the same
/// on every machine.
struct SplitMix(u64);

impl SplitMix {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_shape_syntax() {
        assert_eq!(
            parse_shape("x=1,10,3").unwrap(),
            ("x".to_string(), vec![1, 10, 3])
        );
        assert!(parse_shape("x").is_err());
        assert!(parse_shape("x=1,0").is_err());
        assert!(parse_shape("x=1,a").is_err());
    }
}
