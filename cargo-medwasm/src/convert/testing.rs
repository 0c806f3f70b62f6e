//! Helpers for the converter's unit tests: graphs built by hand, and running a
//! graph or a blob on the native runtime (the same scalar kernels a detector runs).

use super::backend::Kernel;
use super::ir::{DType, Data, Graph, Tensor, TensorId};

/// Adds a graph input.
pub fn input(g: &mut Graph, name: &str, dims: &[usize]) -> TensorId {
    let t = g.add_tensor(Tensor::activation(name, dims.to_vec(), DType::F32));
    g.inputs.push(t);
    t
}

/// Adds an f32 constant.
pub fn constant(g: &mut Graph, name: &str, dims: &[usize], values: Vec<f32>) -> TensorId {
    g.add_tensor(Tensor::constant(name, dims.to_vec(), Data::F32(values)))
}

/// The kernel of every node of `g` (default options); panics on a problem.
pub fn kernels_of(g: &Graph) -> Vec<Kernel> {
    super::check::check(g, &Default::default()).unwrap_or_else(|p| panic!("{p:?}"))
}

/// Plans `g` with its kernels.
pub fn plan_of(g: &Graph) -> Result<super::plan::Plan, String> {
    super::plan::plan(g, &kernels_of(g))
}

/// Checks, plans and writes `g` (without running the passes); panics on a problem.
pub fn blob_of(g: &Graph) -> Vec<u8> {
    let kernels = kernels_of(g);
    let plan = super::plan::plan(g, &kernels).expect("plan");
    super::write::write(g, &plan, &kernels).expect("write")
}

/// Runs `blob` natively on `inputs`; returns every output.
pub fn run_blob(blob: &[u8], inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    super::run_native(blob, inputs).expect("the blob runs")
}

/// Runs `g` (after its passes, if the caller ran them) natively.
pub fn run_graph(g: &Graph, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    run_blob(&blob_of(g), inputs)
}

/// Asserts two float slices agree within `tol` (absolute), naming the first mismatch.
pub fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "element {i}: got {g}, want {w} (all: {got:?} vs {want:?})"
        );
    }
}
