//! Graph rewrites before planning, one module per pass: quantize and dequantize
//! int8 graph inputs and outputs at the edge (the ABI is f32), fold
//! BatchNormalization, fuse bias adds and activations, put each Conv and pool in
//! its kernel's layout (f32 NCHW, int8 NHWC) and lower f32 ops the runtime has no
//! kernel for, requantize int8 values a data mover would otherwise mix, cancel
//! Transposes that undo each other, fold Copy chains, make sure every graph output
//! is computed, and drop dead nodes. Each pass works on any frontend's IR.

use super::ir::Graph;

mod activation;
mod batchnorm;
mod bias;
mod cleanup;
pub mod edges;
mod layout;
mod lower;
mod requantize;
mod transpose;

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
    let inserted = layout::to_kernel_layouts(g);
    let lowered = lower::lower_f32(g);
    if lowered > 0 {
        notes.push(format!(
            "{lowered} HardSwish or Softmax with a beta rewritten with the runtime's f32 kernels"
        ));
    }
    let requantized = requantize::requantize_moved_inputs(g);
    if requantized > 0 {
        notes.push(format!(
            "{requantized} int8 inputs of data movers (Concat, Pad, Reshape, Transpose) requantized to their output's scale and zero point"
        ));
    }
    let before = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, super::ir::Op::Transpose { .. }))
        .count();
    let removed = transpose::cancel_transposes(g);
    if inserted > 0 {
        notes.push(format!(
            "{inserted} Transposes inserted to run convolutions and pools in their kernels' layout (f32 NCHW, int8 NHWC); {removed} of the graph's {before} Transposes cancelled or became copies, {} remain",
            before - removed
        ));
    } else if removed > 0 {
        notes.push(format!("{removed} Transposes cancelled or became copies"));
    }
    let copies = cleanup::fold_copies(g);
    if copies > 0 {
        notes.push(format!(
            "{copies} Copy nodes (reshapes) folded into their neighbours"
        ));
    }
    cleanup::materialize_outputs(g);
    cleanup::drop_dead(g);
    notes
}
