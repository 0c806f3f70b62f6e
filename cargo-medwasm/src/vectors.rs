//! The stored test vectors of a detector project (`vectors/inputs*.npy`,
//! `vectors/expected*.npy`), checked against the model manifest and split into one
//! [`Case`] per vector: what every target's bench, the demo page and the firmware's
//! vectors file are made of.

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::manifest::{Manifest, TensorSpec};
use crate::npy::Array;
use crate::project::Project;
use crate::protocol::Case;
use crate::ui::Ui;

/// Reads the stored inputs and expected outputs into one [`Case`] per vector.
pub fn load_cases(project: &Project, manifest: &Manifest, ui: &Ui) -> Result<Vec<Case>> {
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
        let array = to_abi(array, spec, project, &path)?;
        // NaN and ±∞ have no int8 value: an int8 input (`--io int8`) cannot be
        // given them, unlike an f32 one, whose detector refuses them itself.
        if spec.abi_int8().is_some()
            && let Some(k) = array.data.iter().position(|v| !v.is_finite())
        {
            bail!(
                "`{}` holds {} at element {k}, but input {i} (`{}`) of this detector is int8 (`--io int8`), which has no such value; drop or impute that vector",
                relative(project, &path),
                array.data[k],
                spec.name
            );
        }
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
        let array = to_abi(array, spec, project, &path)?;
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

/// The vectors in the detector's ABI type: integer vectors of a tensor the model
/// quantizes (int8 test vectors of an int8 model) become the real values they stand
/// for, as the model's own DEQUANTIZE computes them; float vectors are real already.
fn to_abi(array: Array, spec: &TensorSpec, project: &Project, path: &Path) -> Result<Array> {
    let Some(quant) = spec.quant.filter(|_| array.integers) else {
        return Ok(array);
    };
    if let Some(v) = array.data.iter().find(|v| !(-128.0..=127.0).contains(*v)) {
        bail!(
            "`{}` holds {v}, outside int8, but `{}` is int8 in the model; store its quantized values as int8",
            relative(project, path),
            spec.name
        );
    }
    Ok(Array {
        data: array.data.iter().map(|&q| quant.dequantize(q)).collect(),
        integers: false,
        ..array
    })
}

/// The binary vectors file the MCU firmware and the WASI harness read: `MWV2`,
/// vector count, timed runs, 0 (u32 little-endian each), then every vector's inputs
/// (`cases`, real values, one list per vector) in the element type the detector's
/// ABI takes for each (`specs`): f32 little-endian, or int8 for an input imported
/// with `--io int8` (quantized as TFLite's QUANTIZE does, exact for vectors stored
/// as int8).
pub fn encode_binary(specs: &[TensorSpec], cases: &[Vec<Vec<f32>>], runs: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"MWV2");
    out.extend_from_slice(&(cases.len() as u32).to_le_bytes());
    out.extend_from_slice(&(runs.min(u32::MAX as usize) as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for case in cases {
        for (input, spec) in case.iter().zip(specs) {
            match spec.abi_int8() {
                Some(_) => out.extend(spec.to_abi(input).iter().map(|&q| q as i8 as u8)),
                None => input
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            }
        }
    }
    out
}

/// Elements of sample `v` of an array already checked by [`check_vectors`].
fn sample(array: &Array, v: usize) -> Vec<f32> {
    array.sample(v).map(<[f32]>::to_vec).unwrap_or_default()
}

/// `1, 4` for shape `[1, 4]`.
pub fn dims(shape: &[u64]) -> String {
    shape
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `path` relative to the project root when it is inside it, for shorter messages.
pub fn relative(project: &Project, path: &Path) -> String {
    path.strip_prefix(&project.root)
        .unwrap_or(path)
        .display()
        .to_string()
}
#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::manifest::{Quant, QuantDtype};
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
            sdk_path: None,
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
        Array::floats(shape, data).write(&path).expect("write npy");
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
    fn int8_vectors_of_a_quantized_tensor_are_dequantized() {
        use crate::manifest::{Quant, QuantDtype};
        let dir = tempfile::tempdir().expect("temp dir");
        let project = project(dir.path());
        let q = Quant {
            dtype: QuantDtype::I8,
            scale: 0.25,
            zero_point: 10,
        };
        let mut manifest = Manifest::for_tests(&[("x", &[1, 3])], &[("y", &[1, 2])]);
        manifest.inputs[0].quant = Some(q);
        manifest.outputs[0].quant = Some(q);
        let ints = |shape: Vec<usize>, data: Vec<f32>| Array {
            shape,
            data,
            integers: true,
        };
        std::fs::create_dir_all(project.vectors_dir()).unwrap();
        ints(vec![1, 3], vec![-128.0, 10.0, 127.0])
            .write(&project.inputs_file(0))
            .unwrap();
        ints(vec![1, 2], vec![14.0, 6.0])
            .write(&project.expected_file(0))
            .unwrap();
        let cases = load_cases(&project, &manifest, &Ui::silent()).expect("valid vectors");
        assert_eq!(cases[0].inputs, vec![vec![-34.5, 0.0, 29.25]]);
        assert_eq!(cases[0].expected, vec![Some(vec![1.0, -1.0])]);

        // A value an int8 cannot hold is refused, not wrapped.
        ints(vec![1, 3], vec![-129.0, 10.0, 127.0])
            .write(&project.inputs_file(0))
            .unwrap();
        let err = format!(
            "{:#}",
            load_cases(&project, &manifest, &Ui::silent()).unwrap_err()
        );
        assert!(err.contains("holds -129, outside int8"), "{err}");
    }

    #[test]
    fn vectors_file_layout() {
        let specs = Manifest::for_tests(&[("x", &[1, 2])], &[("y", &[1])]).inputs;
        let bytes = encode_binary(&specs, &[vec![vec![1.0, 2.0]], vec![vec![3.0, -0.5]]], 7);
        assert_eq!(&bytes[..4], b"MWV2");
        assert_eq!(bytes[4..8], 2u32.to_le_bytes());
        assert_eq!(bytes[8..12], 7u32.to_le_bytes());
        assert_eq!(bytes.len(), 16 + 4 * 4);
        assert_eq!(bytes[28..32], (-0.5f32).to_le_bytes());
        // An int8 input (`--io int8`) is one byte per element: the real values of
        // the vectors quantized with its scale and zero point.
        let mut specs = specs;
        specs[0].dtype = "i8".into();
        specs[0].quant = Some(Quant {
            dtype: QuantDtype::I8,
            scale: 0.5,
            zero_point: -3,
        });
        let bytes = encode_binary(
            &specs,
            &[vec![vec![1.0, -64.0]], vec![vec![0.25, 100.0]]],
            0,
        );
        assert_eq!(bytes.len(), 16 + 2 * 2);
        // 1.0 / 0.5 − 3 = −1; −64 / 0.5 − 3 saturates at −128; 0.25 / 0.5 = 0.5
        // rounds away from zero to 1, − 3 = −2; 100 / 0.5 − 3 saturates at 127.
        assert_eq!(bytes[16..], [-1i8 as u8, -128i8 as u8, -2i8 as u8, 127]);
    }
}
