//! Importing a model into a detector project: convert it, check the converted model
//! natively against a reference that is not our code before writing anything (tract
//! on an ONNX original, LiteRT's reference kernels on a TFLite one, or the given
//! expected outputs when LiteRT is not installed), then write `model/model.mwm`,
//! `model/manifest.json`, `src/model.rs` and test vectors. Used by `cargo medwasm
//! import` and by `new` for templates that ship a model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::convert::{self, ConvertOptions, run_native};
use crate::files::write_atomically as write;
use crate::litert::LiteRt;
use crate::manifest::{BLOB_FILE, MANIFEST_FILE, Manifest};
use crate::npy::Array;
use crate::project::indexed;
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
}

/// Tolerance of the import-time self-check against tract.
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

    let reference = Reference::for_model(model, &manifest, opts, ui)?;
    let vectors = prepare_vectors(root, &manifest, opts, &reference, ui)?;

    // Self-check: the SDK, natively, against the reference on the first vector.
    let sample: Vec<Vec<f32>> = vectors
        .inputs
        .iter()
        .map(|a| a.sample(0).unwrap_or(&[]).to_vec())
        .collect();
    let want: Vec<Vec<f32>> = match &vectors.reference_outputs {
        Some(outs) => outs
            .iter()
            .map(|a| a.sample(0).unwrap_or(&[]).to_vec())
            .collect(),
        None => reference.run_one(&sample)?,
    };
    let got = run_native(&converted.blob, &sample)?;
    let mut dev: Option<Deviation> = None;
    for (g, w) in got.iter().zip(&want) {
        let d = Deviation::compare(g, w, SELF_CHECK);
        dev = Some(dev.map_or(d, |x| x.merge(d)));
    }
    let against = reference.describe(opts);
    match dev {
        Some(d) if d.pass => ui.status(
            "Verified",
            format!(
                "against {against}: max abs error {:.2e}, max rel error {:.2e}",
                d.max_abs, d.max_rel
            ),
        ),
        Some(d) => bail!(
            "the converted model disagrees with {against} on `{}` (max abs error {:.3e}, max rel error {:.3e}); nothing was written. This is a converter bug: please report it with the model attached",
            model.display(),
            d.max_abs,
            d.max_rel
        ),
        None => bail!("the converted model produced no outputs; this is a converter bug"),
    }

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

/// What an import checks the converted model against.
enum Reference {
    /// tract on the ONNX original.
    Tract(crate::reference::TractReference),
    /// LiteRT's reference kernels on the TFLite original.
    LiteRt(LiteRt, PathBuf),
    /// Only the outputs given with `--expected` (a TFLite model without LiteRT).
    Expected,
}

impl Reference {
    fn for_model(model: &Path, m: &Manifest, opts: &ImportOptions, ui: &Ui) -> Result<Reference> {
        if !convert::is_tflite(model) {
            let tract = crate::reference::TractReference::new(model, &m.source.input_shapes)
                .with_context(|| {
                    format!("tract cannot run `{}` as the reference", model.display())
                })?;
            return Ok(Reference::Tract(tract));
        }
        match LiteRt::probe() {
            Ok(litert) => Ok(Reference::LiteRt(litert, model.to_path_buf())),
            Err(why) if opts.expected.is_some() => {
                ui.warn(format!(
                    "LiteRT, the reference for TFLite models, is not available ({why}); checking against `--expected` only (`pip install ai-edge-litert` to check against LiteRT)"
                ));
                Ok(Reference::Expected)
            }
            Err(why) => bail!(
                "LiteRT, the reference for TFLite models, is not available here ({why}), and tract cannot run `.tflite` files: pass `--inputs x.npy --expected y.npy` with outputs you trust (from TFLite's reference kernels), or install it with `pip install ai-edge-litert` (the Python is `python3`, or `MEDWASM_PYTHON`)"
            ),
        }
    }

    fn describe(&self, opts: &ImportOptions) -> String {
        match self {
            Reference::Tract(_) => "tract".into(),
            Reference::LiteRt(l, _) => l.describe(),
            Reference::Expected => format!(
                "`{}`",
                opts.expected
                    .as_deref()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
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
            Reference::LiteRt(litert, model) => {
                let outs = litert.run(model, inputs)?;
                if outs.len() != m.outputs.len() {
                    bail!(
                        "LiteRT finds {} outputs in `{}` but the converted model has {}; this is a converter bug",
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

    /// The outputs for one sample.
    fn run_one(&self, sample: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        match self {
            Reference::Tract(tract) => tract.run(sample),
            Reference::LiteRt(litert, model) => {
                let inputs: Vec<Array> = sample
                    .iter()
                    .map(|x| Array::floats(vec![1, x.len()], x.clone()))
                    .collect();
                Ok(litert
                    .run(model, &inputs)?
                    .into_iter()
                    .map(|a| a.data)
                    .collect())
            }
            Reference::Expected => {
                bail!("no reference to run; this is a bug in cargo-medwasm")
            }
        }
    }
}

struct Vectors {
    /// One array per model input, `[N, ...]`.
    inputs: Vec<Array>,
    /// What the reference (or `--expected`) says for them, when known.
    reference_outputs: Option<Vec<Array>>,
    write_inputs: Vec<(usize, Array)>,
    write_expected: Vec<(usize, Array)>,
}

/// Picks the vectors: `--inputs/--expected`, else the project's own, else seeded
/// random inputs with the reference's outputs as the expected ones. A TFLite model
/// has no reference at bench time (tract cannot run it), so its expected outputs
/// are always stored: LiteRT's, or `--expected`.
fn prepare_vectors(
    root: &Path,
    m: &Manifest,
    opts: &ImportOptions,
    reference: &Reference,
    ui: &Ui,
) -> Result<Vectors> {
    let store_reference = matches!(reference, Reference::LiteRt(..));
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
        let mut write_expected = vec![];
        let mut reference_outputs = None;
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
            write_expected.push((0, ex));
        } else if store_reference {
            let outs = reference.run_all(std::slice::from_ref(&a), m)?;
            write_expected = outs.iter().flatten().cloned().enumerate().collect();
            reference_outputs = outs;
        }
        return Ok(Vectors {
            inputs: vec![a.clone()],
            reference_outputs,
            write_inputs: vec![(0, a)],
            write_expected,
        });
    }
    if matches!(reference, Reference::Expected) {
        bail!(
            "without LiteRT the expected outputs must come with their inputs: pass `--inputs x.npy --expected y.npy`"
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
            inputs.push(a);
        }
        // A TFLite model's stored outputs are its only reference at bench time:
        // refresh them from LiteRT for the model being imported.
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
            write_inputs: vec![],
            write_expected,
        });
    }
    ui.note(format!(
        "no test vectors given: generating {GENERATED_VECTORS} seeded random inputs in [-1, 1) with {}'s outputs as the expected ones; pass `--inputs x.npy --expected y.npy` to store real ones",
        if store_reference { "LiteRT" } else { "tract" }
    ));
    let mut rng = SplitMix(0x6d65_6477_6173_6d31);
    let inputs: Vec<Array> = m
        .inputs
        .iter()
        .map(|t| {
            let mut shape = vec![GENERATED_VECTORS];
            shape.extend(t.shape.iter().map(|&d| d as usize));
            let data = (0..GENERATED_VECTORS * t.len())
                .map(|_| rng.next_f32() * 2.0 - 1.0)
                .collect();
            Array::floats(shape, data)
        })
        .collect();
    let outs = reference.run_all(&inputs, m)?.unwrap_or_default();
    let write_expected = outs.iter().cloned().enumerate().collect();
    let write_inputs = inputs.iter().cloned().enumerate().collect();
    Ok(Vectors {
        inputs,
        reference_outputs: Some(outs),
        write_inputs,
        write_expected,
    })
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
