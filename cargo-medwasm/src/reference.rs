//! The reference every target is checked against: tract running the original ONNX
//! model natively, with the input shapes the model was converted with.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use tract_onnx::prelude::*;

/// The original model, loaded and optimized once, run once per test vector.
#[derive(Debug)]
pub struct TractReference {
    path: PathBuf,
    shapes: Vec<Vec<usize>>,
    plan: Arc<TypedSimplePlan>,
}

impl TractReference {
    /// Loads `model_path` with its inputs fixed to `input_shapes` (f32) and optimizes it.
    pub fn new(model_path: &Path, input_shapes: &[Vec<u64>]) -> Result<TractReference> {
        let shapes: Vec<Vec<usize>> = input_shapes
            .iter()
            .map(|shape| shape.iter().map(|&d| d as usize).collect())
            .collect();
        let plan = load(model_path, &shapes).with_context(|| {
            format!(
                "tract cannot run the original model `{}`, so outputs cannot be checked against it",
                model_path.display()
            )
        })?;
        Ok(TractReference {
            path: model_path.to_path_buf(),
            shapes,
            plan,
        })
    }

    /// Runs the model on one sample: `inputs[i]` holds the elements of input `i`.
    /// Returns the elements of each output, in the model's output order.
    pub fn run(&self, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        self.evaluate(inputs).with_context(|| {
            format!(
                "tract failed to run the original model `{}`",
                self.path.display()
            )
        })
    }

    fn evaluate(&self, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        if inputs.len() != self.shapes.len() {
            bail!(
                "{} inputs given for a model with {}",
                inputs.len(),
                self.shapes.len()
            );
        }
        let tensors = inputs
            .iter()
            .zip(&self.shapes)
            .enumerate()
            .map(|(i, (data, shape))| {
                Tensor::from_shape(shape, data)
                    .map(IntoTValue::into_tvalue)
                    .with_context(|| {
                        format!(
                            "input {i} has {} elements, not the shape {shape:?}",
                            data.len()
                        )
                    })
            })
            .collect::<Result<TVec<TValue>>>()?;
        let outputs = self.plan.run(tensors)?;
        outputs
            .iter()
            .enumerate()
            .map(|(j, value)| {
                // Outputs of other numeric types (an argmax index …) are compared as f32,
                // which is how the detector returns them.
                let value = value.cast_to::<f32>().with_context(|| {
                    format!(
                        "output {j} of type {:?} cannot be compared as f32",
                        value.datum_type()
                    )
                })?;
                Ok(value
                    .to_plain_array_view::<f32>()?
                    .iter()
                    .copied()
                    .collect())
            })
            .collect()
    }
}

fn load(path: &Path, shapes: &[Vec<usize>]) -> Result<Arc<TypedSimplePlan>> {
    let mut model = tract_onnx::onnx().model_for_path(path)?;
    for (i, shape) in shapes.iter().enumerate() {
        model = model.with_input_fact(i, f32::fact(shape).into())?;
    }
    model.into_optimized()?.into_runnable()
}

/// One-shot convenience: loads `model_path` and runs it on one sample.
pub fn tract_outputs(
    model_path: &Path,
    input_shapes: &[Vec<u64>],
    inputs: &[Vec<f32>],
) -> Result<Vec<Vec<f32>>> {
    TractReference::new(model_path, input_shapes)?.run(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::Array;
    use crate::report::{Deviation, Tolerance};

    /// The operator cases committed in `conformance/cases`, with onnxruntime goldens.
    fn case(name: &str) -> (PathBuf, Array, Array) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/cases");
        let read = |suffix: &str| {
            let path = dir.join(format!("{name}.{suffix}.npy"));
            Array::read(&path).unwrap_or_else(|e| panic!("{e}"))
        };
        (
            dir.join(format!("{name}.onnx")),
            read("inputs"),
            read("expected"),
        )
    }

    fn check(name: &str, input_shape: &[u64]) {
        let (model, inputs, expected) = case(name);
        let reference =
            TractReference::new(&model, &[input_shape.to_vec()]).expect("tract loads the case");
        for i in 0..inputs.samples() {
            let sample = inputs.sample(i).expect("sample").to_vec();
            let got = reference.run(&[sample]).expect("tract runs the case");
            assert_eq!(got.len(), 1);
            let want = expected.sample(i).expect("expected sample");
            let d = Deviation::compare(
                &got[0],
                want,
                Tolerance {
                    abs: 1e-5,
                    rel: 1e-4,
                    steps: 0,
                },
            );
            assert!(d.pass, "{name} sample {i}: {d:?}");
        }
    }

    #[test]
    fn matches_onnxruntime_on_committed_cases() {
        check("conv_bn_relu", &[1, 3, 8, 8]);
        // The batch dimension is symbolic in the file; the manifest's shape fixes it.
        check("dynamic_batch", &[1, 20]);
    }

    #[test]
    fn errors_name_the_model() {
        let missing = Path::new("no/such/model.onnx");
        let err = format!(
            "{:#}",
            TractReference::new(missing, &[vec![1, 4]]).expect_err("no file")
        );
        assert!(err.contains("`no/such/model.onnx`"), "{err}");

        let (model, _, _) = case("conv_bn_relu");
        let reference =
            TractReference::new(&model, &[vec![1, 3, 8, 8]]).expect("tract loads the case");
        let err = format!(
            "{:#}",
            reference.run(&[vec![0.0; 5]]).expect_err("5 elements")
        );
        assert!(
            err.contains("conv_bn_relu.onnx") && err.contains("input 0 has 5 elements"),
            "{err}"
        );
        let err = tract_outputs(&model, &[vec![1, 3, 8, 8]], &[]).expect_err("no inputs");
        assert!(format!("{err:#}").contains("0 inputs given"), "{err:#}");
    }
}
