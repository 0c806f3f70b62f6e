//! Graph rewrites before planning, one module per pass: fold BatchNormalization,
//! fuse bias adds and activations, make sure every graph output is computed, and
//! drop dead nodes. Each pass works on any frontend's IR.

use super::ir::Graph;

mod activation;
mod batchnorm;
mod bias;
mod cleanup;

/// Runs every pass; returns notes on what changed.
pub fn run(g: &mut Graph) -> Vec<String> {
    let mut notes = vec![];
    let folded = batchnorm::fold_channel_affine(g);
    if folded > 0 {
        notes.push(format!(
            "{folded} BatchNormalization folded into the preceding Conv/Gemm"
        ));
    }
    let biases = bias::fuse_bias(g);
    if biases > 0 {
        notes.push(format!(
            "{biases} bias Add fused into the preceding MatMul/Gemm"
        ));
    }
    let acts = activation::fuse_activations(g);
    if acts > 0 {
        notes.push(format!("{acts} activations fused into the preceding op"));
    }
    cleanup::materialize_outputs(g);
    cleanup::drop_dead(g);
    notes
}
