//! The quantized-ONNX frontend checked on the IR it produces: which patterns were
//! lowered to which int8 nodes, with which element types, quantization and
//! layouts, and the refusals of what matches no pattern. (Running the int8 nodes
//! is the back end's; the conformance suite runs whole models.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use medwasm::kernels::act::Act;
use tract_onnx::prelude::Framework as _;

use super::tensor::{INT8, INT32, UINT8};
use super::tests::{Model, attr_int, attr_ints};
use crate::convert::ir::{DType, Data, Graph, Layout, Op, Quant, TensorId};
use crate::convert::{Imported, Problem, ProblemKind};

fn import(m: Model) -> Imported {
    super::import(&m.proto(), &HashMap::new())
}

/// The graph of a model that must translate without problems, and its notes.
fn lowered(m: Model) -> (Graph, Vec<String>) {
    let imp = import(m);
    assert!(
        imp.problems.is_empty(),
        "{}",
        imp.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    (imp.graph, imp.notes)
}

fn problems(m: Model) -> Vec<Problem> {
    let imp = import(m);
    assert!(!imp.problems.is_empty(), "expected problems");
    imp.problems
}

fn labels(g: &Graph) -> Vec<String> {
    g.nodes.iter().map(|n| n.op.label()).collect()
}

fn quant(g: &Graph, t: TensorId) -> &Quant {
    g.tensors[t]
        .quant
        .as_ref()
        .unwrap_or_else(|| panic!("`{}` is not quantized", g.tensors[t].name))
}

fn per_tensor(scale: f32, zp: i64) -> Quant {
    Quant {
        scale: vec![scale],
        zero_point: vec![zp],
        axis: None,
    }
}

/// Adds scalar quantization parameters `<name>_s` (f32) and `<name>_z` (`zt`).
fn qparams(m: Model, name: &str, scale: f32, zp: i32, zt: i32) -> Model {
    m.init_f32(&format!("{name}_s"), &[], &[scale])
        .init_int(&format!("{name}_z"), &[], zt, &[zp])
}

/// `x` (f32) → QuantizeLinear(`xs`, `xz`, int8) → DequantizeLinear → `x_dq`.
fn quantized_input(m: Model, dims: &[i64], xs: f32, xz: i32) -> Model {
    qparams(m.input("x", dims), "x", xs, xz, INT8)
        .node("QuantizeLinear", &["x", "x_s", "x_z"], "x_q", vec![])
        .node("DequantizeLinear", &["x_q", "x_s", "x_z"], "x_dq", vec![])
}

/// `t` → QuantizeLinear(`ys`, `yz`, int8) → DequantizeLinear → graph output `y`.
fn quantized_output(m: Model, t: &str, ys: f32, yz: i32) -> Model {
    qparams(m, "y", ys, yz, INT8)
        .node("QuantizeLinear", &[t, "y_s", "y_z"], "y_q", vec![])
        .node("DequantizeLinear", &["y_q", "y_s", "y_z"], "y", vec![])
        .output("y")
}

const W_SCALES: [f32; 3] = [0.01, 0.02, 0.03];

/// int8 Conv weights `W` `[3, 2, 3, 3]` per output channel and an int32 bias `B`
/// with scale `bias_scale[c]` and zero points `bz`, each through a
/// DequantizeLinear (`W_dq`, `B_dq`).
fn conv_weights(m: Model, wz: i32, bias_scale: [f32; 3], bz: i32) -> Model {
    let w: Vec<i32> = (0..54).map(|i| (i * 37 % 255) - 127).collect();
    m.init_int("W", &[3, 2, 3, 3], INT8, &w)
        .init_f32("W_s", &[3], &W_SCALES)
        .init_int("W_z", &[3], INT8, &[wz, 0, 0])
        .node(
            "DequantizeLinear",
            &["W", "W_s", "W_z"],
            "W_dq",
            vec![attr_int("axis", 0)],
        )
        .init_int("B", &[3], INT32, &[100, -2000, 30000])
        .init_f32("B_s", &[3], &bias_scale)
        .init_int("B_z", &[3], INT32, &[bz, 0, 0])
        .node(
            "DequantizeLinear",
            &["B", "B_s", "B_z"],
            "B_dq",
            vec![attr_int("axis", 0)],
        )
}

/// The bias scales onnxruntime and tf2onnx write: the f32 product `s_x · s_w`.
fn exact_bias_scales(xs: f32) -> [f32; 3] {
    W_SCALES.map(|s| xs * s)
}

/// Float x → Q → DQ → Conv → Relu → Q → DQ → y, onnxruntime's QDQ layout.
fn qdq_conv(wz: i32, bias_scale: [f32; 3], bz: i32) -> Model {
    let m = quantized_input(Model::new(13), &[1, 2, 5, 5], 0.05, -3);
    let m = conv_weights(m, wz, bias_scale, bz)
        .node(
            "Conv",
            &["x_dq", "W_dq", "B_dq"],
            "c",
            vec![attr_ints("pads", &[1, 1, 1, 1])],
        )
        .node("Relu", &["c"], "r", vec![]);
    quantized_output(m, "r", 0.1, -128)
}

#[test]
fn a_qdq_conv_with_relu_becomes_one_int8_conv() {
    let (g, notes) = lowered(qdq_conv(0, exact_bias_scales(0.05), 0));
    assert_eq!(labels(&g), ["Quantize", "Conv+Relu", "Dequantize"]);
    let conv = &g.nodes[1];
    let Op::Conv {
        win,
        group,
        act,
        layout,
        depthwise,
    } = &conv.op
    else {
        unreachable!()
    };
    assert_eq!(
        (*group, *act, *layout, *depthwise),
        (1, Act::Relu, Layout::Nchw, false)
    );
    assert_eq!(win.pads, [1, 1, 1, 1]);
    assert_eq!(conv.name, "conv_4", "named after the ONNX Conv");
    let [x, w, b] = [0, 1, 2].map(|k| conv.inputs[k].unwrap());
    // The activation: the Quantize's int8 output, per tensor.
    assert_eq!(g.tensors[x].dtype, DType::I8);
    assert_eq!(*quant(&g, x), per_tensor(0.05, -3));
    assert_eq!(g.nodes[0].output, x);
    // The weights as stored (OIHW), per output channel along axis 0.
    assert_eq!(
        (g.tensors[w].dtype, g.tensors[w].dims.as_slice()),
        (DType::I8, &[3, 2, 3, 3][..])
    );
    assert_eq!(
        *quant(&g, w),
        Quant {
            scale: W_SCALES.to_vec(),
            zero_point: vec![0; 3],
            axis: Some(0)
        }
    );
    let Some(Data::I8(wv)) = &g.tensors[w].data else {
        panic!("int8 weights")
    };
    assert_eq!((wv[0], wv[1], wv[53]), (-127, -90, 49));
    // The bias used as stored: int32, its scale the model's.
    assert_eq!(g.tensors[b].data, Some(Data::I32(vec![100, -2000, 30000])));
    assert_eq!(quant(&g, b).scale, exact_bias_scales(0.05));
    // The output: the QuantizeLinear's, and the float graph output after it.
    let y = conv.output;
    assert_eq!(
        (g.tensors[y].dtype, quant(&g, y)),
        (DType::I8, &per_tensor(0.1, -128))
    );
    assert_eq!(g.nodes[2].inputs, [Some(y)]);
    assert_eq!(g.tensors[g.outputs[0]].dtype, DType::F32);
    assert!(
        notes
            .iter()
            .any(|n| n == "quantized (QDQ) patterns lowered to int8 nodes: Conv ×1"),
        "{notes:?}"
    );
    assert!(
        !notes.iter().any(|n| n.contains("dequantized to float32")),
        "{notes:?}"
    );
}

#[test]
fn a_bias_with_another_scale_or_a_zero_point_is_requantized_to_the_accumulator_unit() {
    // A scale 1 % off s_x · s_w, and a zero point of 10 on channel 0: the real bias
    // (b − zp) · s_b, in units of s_x · s_w, rounded half to even.
    let off = exact_bias_scales(0.05).map(|s| s * 1.01);
    let (g, notes) = lowered(qdq_conv(0, off, 10));
    let b = g.nodes[1].inputs[2].unwrap();
    let want: Vec<i32> = [90.0f64, -2000.0, 30000.0]
        .iter()
        .zip(exact_bias_scales(0.05))
        .zip(off)
        .map(|((v, unit), s)| (v * f64::from(s) / f64::from(unit)).round_ties_even() as i32)
        .collect();
    assert_eq!(g.tensors[b].data, Some(Data::I32(want)));
    assert_eq!(quant(&g, b).scale, exact_bias_scales(0.05));
    assert_eq!(quant(&g, b).zero_point, [0, 0, 0]);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("bias of `conv_4` requantized to int32")),
        "{notes:?}"
    );
}

#[test]
fn asymmetric_convolution_weights_are_refused_naming_the_pattern() {
    let p = problems(qdq_conv(3, exact_bias_scales(0.05), 0));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (p[0].node.as_str(), p[0].kind),
        ("conv_4", ProblemKind::Dtype)
    );
    assert!(
        p[0].message.starts_with(
            "`DequantizeLinear → Conv → Relu → QuantizeLinear` cannot run on the int8 kernels: the weights `W` have nonzero zero points"
        ) && p[0].message.contains("WeightSymmetric"),
        "{}",
        p[0].message
    );
}

#[test]
fn a_depthwise_qdq_conv_keeps_its_grouped_oihw_weights() {
    let m = quantized_input(Model::new(13), &[1, 3, 4, 4], 0.05, 0)
        .init_int("W", &[6, 1, 3, 3], INT8, &[1; 54])
        .init_f32("W_s", &[6], &[0.1; 6])
        .init_int("W_z", &[6], INT8, &[0; 6])
        .node(
            "DequantizeLinear",
            &["W", "W_s", "W_z"],
            "W_dq",
            vec![attr_int("axis", 0)],
        )
        .node(
            "Conv",
            &["x_dq", "W_dq"],
            "c",
            vec![attr_int("group", 3), attr_ints("pads", &[1, 1, 1, 1])],
        );
    let (g, _) = lowered(quantized_output(m, "c", 0.2, 5));
    assert_eq!(labels(&g), ["Quantize", "Conv", "Dequantize"]);
    let n = &g.nodes[1];
    assert!(matches!(
        n.op,
        Op::Conv {
            group: 3,
            layout: Layout::Nchw,
            depthwise: false,
            ..
        }
    ));
    assert_eq!(n.inputs[2], None, "no bias");
    assert_eq!(g.tensors[n.inputs[1].unwrap()].dims, [6, 1, 3, 3]);
    assert_eq!(g.tensors[n.output].dims, [1, 6, 4, 4]);
}

/// x [1, 4] → Q → DQ → MatMul(W int8 [4, 3] per column) → Add(DQ(int32 bias)) →
/// Clip(0, 6) → Q → DQ → y, as a fully connected layer exported from TFLite.
fn qdq_matmul() -> Model {
    let m = quantized_input(Model::new(13), &[1, 4], 0.5, 1)
        .init_int(
            "W",
            &[4, 3],
            INT8,
            &[1, -2, 3, 4, -5, 6, 7, -8, 9, 10, -11, 12],
        )
        .init_f32("W_s", &[3], &[0.25, 0.5, 0.125])
        .init_int("W_z", &[3], INT8, &[0, 0, 0])
        .node(
            "DequantizeLinear",
            &["W", "W_s", "W_z"],
            "W_dq",
            vec![attr_int("axis", 1)],
        )
        .init_int("B", &[3], INT32, &[7, 8, 9])
        .init_f32("B_s", &[3], &[0.125, 0.25, 0.0625])
        .init_int("B_z", &[3], INT32, &[0, 0, 0])
        .node(
            "DequantizeLinear",
            &["B", "B_s", "B_z"],
            "B_dq",
            vec![attr_int("axis", 0)],
        )
        .init_f32("lo", &[], &[0.0])
        .init_f32("hi", &[], &[6.0])
        .node("MatMul", &["x_dq", "W_dq"], "mm", vec![])
        .node("Add", &["B_dq", "mm"], "a", vec![])
        .node("Clip", &["a", "lo", "hi"], "c", vec![]);
    quantized_output(m, "c", 0.05, -128)
}

#[test]
fn matmul_bias_add_and_clip_become_one_int8_gemm() {
    let (g, notes) = lowered(qdq_matmul());
    assert_eq!(labels(&g), ["Quantize", "Gemm+Clip", "Dequantize"]);
    let n = &g.nodes[1];
    assert_eq!(
        n.op,
        Op::Gemm {
            act: Act::Clip(0.0, 6.0)
        }
    );
    assert_eq!(n.name, "matmul_4", "named after the ONNX MatMul");
    let (w, b) = (n.inputs[1].unwrap(), n.inputs[2].unwrap());
    // B [K, N], one scale per output column: axis 1.
    assert_eq!(g.tensors[w].dims, [4, 3]);
    assert_eq!(quant(&g, w).axis, Some(1));
    assert_eq!(g.tensors[b].data, Some(Data::I32(vec![7, 8, 9])));
    assert!(notes.iter().any(|n| n.ends_with("Gemm ×1")), "{notes:?}");
}

#[test]
fn a_qdq_gemm_with_a_transposed_b_keeps_int8_weights_and_their_axis() {
    // Gemm(transB): B int8 [N=2, K=3] quantized per output row (axis 0).
    let m = quantized_input(Model::new(13), &[1, 3], 0.5, 0)
        .init_int("W", &[2, 3], INT8, &[1, 2, 3, 4, 5, 6])
        .init_f32("W_s", &[2], &[0.1, 0.2])
        .init_int("W_z", &[2], INT8, &[0, 0])
        .node(
            "DequantizeLinear",
            &["W", "W_s", "W_z"],
            "W_dq",
            vec![attr_int("axis", 0)],
        )
        .init_int("C", &[2], INT32, &[-5, 5])
        .init_f32("C_s", &[2], &[0.05, 0.1])
        .init_int("C_z", &[2], INT32, &[0, 0])
        .node(
            "DequantizeLinear",
            &["C", "C_s", "C_z"],
            "C_dq",
            vec![attr_int("axis", 0)],
        )
        .node(
            "Gemm",
            &["x_dq", "W_dq", "C_dq"],
            "g",
            vec![attr_int("transB", 1)],
        );
    let (g, _) = lowered(quantized_output(m, "g", 0.25, 3));
    assert_eq!(labels(&g), ["Quantize", "Gemm", "Dequantize"]);
    let n = &g.nodes[1];
    let (w, c) = (n.inputs[1].unwrap(), n.inputs[2].unwrap());
    assert_eq!(g.tensors[w].dims, [3, 2]);
    assert_eq!(g.tensors[w].data, Some(Data::I8(vec![1, 4, 2, 5, 3, 6])));
    assert_eq!(
        *quant(&g, w),
        Quant {
            scale: vec![0.1, 0.2],
            zero_point: vec![0, 0],
            axis: Some(1)
        }
    );
    assert_eq!(g.tensors[c].data, Some(Data::I32(vec![-5, 5])));
}

#[test]
fn a_residual_add_and_the_tail_of_a_classifier_stay_int8() {
    // x → Q → DQ → Relu → Q → DQ ─┬──────────────────┐
    //                              └→ Add(relu, x_dq) → Q → DQ → AveragePool → Q
    //   → Reshape (int8) → DQ → Softmax → Q(1/256, −128) = y (int8 output)
    let m = quantized_input(Model::new(13), &[1, 2, 4, 4], 0.1, 0);
    let m = qparams(m, "r", 0.05, -128, INT8)
        .node("Relu", &["x_dq"], "r", vec![])
        .node("QuantizeLinear", &["r", "r_s", "r_z"], "r_q", vec![])
        .node("DequantizeLinear", &["r_q", "r_s", "r_z"], "r_dq", vec![])
        .node("Add", &["r_dq", "x_dq"], "a", vec![]);
    let m = qparams(m, "a", 0.2, 7, INT8)
        .node("QuantizeLinear", &["a", "a_s", "a_z"], "a_q", vec![])
        .node("DequantizeLinear", &["a_q", "a_s", "a_z"], "a_dq", vec![])
        .node(
            "AveragePool",
            &["a_dq"],
            "p",
            vec![attr_ints("kernel_shape", &[4, 4])],
        )
        .node("QuantizeLinear", &["p", "a_s", "a_z"], "p_q", vec![])
        .init_i64("shape", &[2], &[1, -1])
        .node("Reshape", &["p_q", "shape"], "f_q", vec![])
        .node("DequantizeLinear", &["f_q", "a_s", "a_z"], "f_dq", vec![])
        .node("Softmax", &["f_dq"], "s", vec![]);
    let m = qparams(m, "y", 1.0 / 256.0, -128, INT8)
        .node("QuantizeLinear", &["s", "y_s", "y_z"], "y", vec![])
        .output("y");
    let (g, notes) = lowered(m);
    assert_eq!(
        labels(&g),
        ["Quantize", "Relu", "Add", "AveragePool", "Copy", "Softmax"]
    );
    // The Add reads both int8 tensors; the int8 Reshape between a Q and a DQ
    // moves the pooled values as they are.
    let add = &g.nodes[2];
    assert_eq!(
        add.inputs,
        [Some(g.nodes[1].output), Some(g.nodes[0].output)]
    );
    assert_eq!(*quant(&g, add.output), per_tensor(0.2, 7));
    let copy = &g.nodes[4];
    assert_eq!(g.tensors[copy.output].dims, [1, 2]);
    assert_eq!(*quant(&g, copy.output), per_tensor(0.2, 7));
    let y = g.outputs[0];
    assert_eq!(
        (g.tensors[y].dtype, g.tensors[y].name.as_str()),
        (DType::I8, "y")
    );
    assert_eq!(*quant(&g, y), per_tensor(1.0 / 256.0, -128));
    assert!(
        notes
            .iter()
            .any(|n| n.ends_with("Relu ×1, Add ×1, AveragePool ×1, Softmax ×1")),
        "{notes:?}"
    );
}

#[test]
fn int8_graph_inputs_learn_their_quantization_through_movers() {
    // tf2onnx: int8 input [1, 4, 4, 2] → Transpose → DQ → MaxPool → Q → int8 output.
    let m = qparams(
        Model::new(13).input_typed("x", &[1, 4, 4, 2], INT8),
        "x",
        0.5,
        -1,
        INT8,
    )
    .node(
        "Transpose",
        &["x"],
        "t",
        vec![attr_ints("perm", &[0, 3, 1, 2])],
    )
    .node("DequantizeLinear", &["t", "x_s", "x_z"], "t_dq", vec![])
    .node(
        "MaxPool",
        &["t_dq"],
        "p",
        vec![attr_ints("kernel_shape", &[2, 2])],
    )
    .node("QuantizeLinear", &["p", "x_s", "x_z"], "y", vec![])
    .output("y");
    let (g, _) = lowered(m);
    assert_eq!(labels(&g), ["Transpose", "MaxPool"]);
    let x = g.inputs[0];
    assert_eq!(g.tensors[x].dtype, DType::I8);
    assert_eq!(*quant(&g, x), per_tensor(0.5, -1));
    assert_eq!(*quant(&g, g.nodes[0].output), per_tensor(0.5, -1));
    assert_eq!(g.tensors[g.outputs[0]].dims, [1, 2, 3, 3]);
}

#[test]
fn pools_and_concat_with_other_output_parameters_are_requantized() {
    // onnxruntime requantizes around pools and Concat; the int8 MaxPool and Concat
    // move values, so a requantize follows the pool and precedes a differing part.
    let pool = |m: Model, x: &str, y: &str| {
        m.node("MaxPool", &[x], y, vec![attr_ints("kernel_shape", &[2, 2])])
    };
    let m = quantized_input(Model::new(13), &[1, 2, 4, 4], 0.1, 0);
    let m = qparams(m, "m", 0.3, 2, INT8);
    let m = pool(m, "x_dq", "p")
        .node("QuantizeLinear", &["p", "m_s", "m_z"], "p_q", vec![])
        .node("DequantizeLinear", &["p_q", "m_s", "m_z"], "p_dq", vec![])
        .node("GlobalAveragePool", &["x_dq"], "gap", vec![])
        .node("QuantizeLinear", &["gap", "m_s", "m_z"], "g", vec![])
        .output("g");
    let m = pool(m, "x_dq", "p2")
        .node("QuantizeLinear", &["p2", "x_s", "x_z"], "p2_q", vec![])
        .node("DequantizeLinear", &["p2_q", "x_s", "x_z"], "p2_dq", vec![])
        .node(
            "Concat",
            &["p_dq", "p2_dq"],
            "cat",
            vec![attr_int("axis", 1)],
        );
    let (g, notes) = lowered(quantized_output(m, "cat", 0.3, 2));
    assert_eq!(
        labels(&g),
        [
            "Quantize",
            "MaxPool",
            "Quantize",
            "ReduceMean",
            "MaxPool",
            "Quantize",
            "Concat",
            "Dequantize"
        ]
    );
    // The pool writes its input's parameters, then the requantize the model's.
    assert_eq!(*quant(&g, g.nodes[1].output), per_tensor(0.1, 0));
    assert_eq!(*quant(&g, g.nodes[2].output), per_tensor(0.3, 2));
    // GlobalAveragePool: an int8 mean, whose kernel takes other output parameters.
    let mean = &g.nodes[3];
    assert_eq!(mean.op, Op::ReduceMean { mask: 0b1100 });
    assert_eq!(*quant(&g, mean.output), per_tensor(0.3, 2));
    // The second pool keeps its parameters, equal to its input's; its Concat part
    // is requantized to the output's, the first part is read as it is.
    let cat = &g.nodes[6];
    assert_eq!(cat.inputs[0], Some(g.nodes[2].output));
    assert_eq!(cat.inputs[1], Some(g.nodes[5].output));
    assert_eq!(g.nodes[5].inputs, [Some(g.nodes[4].output)]);
    assert!(
        notes
            .iter()
            .any(|n| n.ends_with("MaxPool ×2, ReduceMean ×1, Concat ×1")),
        "{notes:?}"
    );
}

#[test]
fn what_matches_no_pattern_is_refused_naming_the_pattern() {
    // A float Div between a DQ and a Q: no int8 kernel.
    let m = quantized_input(Model::new(13), &[1, 4], 0.1, 0)
        .init_f32("two", &[], &[2.0])
        .node("Div", &["x_dq", "two"], "d", vec![]);
    let p = problems(quantized_output(m, "d", 0.05, 0));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (p[0].node.as_str(), p[0].kind),
        ("div_2", ProblemKind::Operator)
    );
    assert_eq!(
        p[0].message,
        "`DequantizeLinear → Div → QuantizeLinear` cannot run on the int8 kernels: Div has no int8 kernel (Add, Sub and Mul have)"
    );

    // An Add of a dequantized value and the float graph input itself.
    let m =
        quantized_input(Model::new(13), &[1, 4], 0.1, 0).node("Add", &["x_dq", "x"], "a", vec![]);
    let p = problems(quantized_output(m, "a", 0.05, 0));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].message
            .ends_with("`x` is a float graph input; quantize it with a QuantizeLinear first"),
        "{}",
        p[0].message
    );

    // A float result read beside its QuantizeLinear (here also a graph output).
    let m = quantized_input(Model::new(13), &[1, 4], 0.1, 0)
        .node("Relu", &["x_dq"], "r", vec![])
        .output("r");
    let p = problems(quantized_output(m, "r", 0.05, 0));
    assert!(
        p[0].message
            .contains("its float result `r` is also read by other nodes or is a graph output"),
        "{}",
        p[0].message
    );

    // A Softmax over another axis than the last.
    let m = quantized_input(Model::new(13), &[1, 4, 2], 0.1, 0).node(
        "Softmax",
        &["x_dq"],
        "s",
        vec![attr_int("axis", 1)],
    );
    let p = problems(quantized_output(m, "s", 1.0 / 256.0, -128));
    assert_eq!(p[0].kind, ProblemKind::Attribute);
    assert!(
        p[0].message
            .ends_with("the int8 softmax runs over the last axis only"),
        "{}",
        p[0].message
    );
}

#[test]
fn float_operators_ahead_of_the_quantized_part_stay_float() {
    // onnxruntime leaves a Relu on the float input float, then quantizes: the
    // float part runs on the f32 kernels, then a Quantize.
    let m = Model::new(13)
        .input("x", &[1, 4])
        .node("Relu", &["x"], "r", vec![]);
    let m = qparams(m, "r", 0.05, -128, INT8)
        .node("QuantizeLinear", &["r", "r_s", "r_z"], "r_q", vec![])
        .node("DequantizeLinear", &["r_q", "r_s", "r_z"], "r_dq", vec![])
        .node("Sigmoid", &["r_dq"], "s", vec![]);
    let (g, _) = lowered(quantized_output(m, "s", 1.0 / 256.0, -128));
    assert_eq!(labels(&g), ["Relu", "Quantize", "Sigmoid", "Dequantize"]);
    assert_eq!(g.tensors[g.nodes[0].output].dtype, DType::F32);
    assert_eq!(g.tensors[g.nodes[2].output].dtype, DType::I8);
}

#[test]
fn run_time_int8_values_need_their_quantization_and_a_dequantize_before_float_ops() {
    // An int8 input read by a float operator.
    let p = problems(
        Model::new(13)
            .input_typed("x", &[1, 4], INT8)
            .node("Relu", &["x"], "y", vec![])
            .output("y"),
    );
    assert_eq!(
        (p[0].node.as_str(), p[0].kind),
        ("relu_0", ProblemKind::Dtype)
    );
    assert!(
        p[0].message.starts_with(
            "input 0 `x` is a run-time i8 tensor; Relu computes on real values, so it needs a `DequantizeLinear` in front"
        ),
        "{}",
        p[0].message
    );
    // An int8 input nothing dequantizes has no known scale.
    let p = problems(
        Model::new(13)
            .input_typed("x", &[1, 4], INT8)
            .init_i64("s", &[2], &[2, 2])
            .node("Reshape", &["x", "s"], "y", vec![])
            .output("y"),
    );
    assert_eq!((p[0].node.as_str(), p[0].op.as_str()), ("x", "input"));
    assert!(
        p[0].message
            .contains("no DequantizeLinear or quantized operator reads it"),
        "{}",
        p[0].message
    );
    // An int8 input read by an unsupported operator: that one problem only.
    let p = problems(
        Model::new(13)
            .input_typed("x", &[1, 4], INT8)
            .node("Erf", &["x"], "y", vec![])
            .output("y"),
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].kind, ProblemKind::Operator);
    // uint8 inputs are refused with the fix.
    let p = problems(
        Model::new(13)
            .input_typed("x", &[1, 4], UINT8)
            .node("Identity", &["x"], "y", vec![])
            .output("y"),
    );
    assert!(
        p[0].message
            .contains("only float32 and int8 inputs are supported")
            && p[0].message.contains("QuantType.QInt8"),
        "{}",
        p[0].message
    );
    // A DequantizeLinear that reads an int8 tensor with other parameters than the
    // QuantizeLinear that wrote it.
    let m = quantized_input(Model::new(13), &[1, 4], 0.1, 0);
    let m = qparams(m, "o", 0.2, 0, INT8)
        .node("DequantizeLinear", &["x_q", "o_s", "o_z"], "y", vec![])
        .output("y");
    let p = problems(m);
    assert!(
        p[0].message.contains("reads `x_q` as quantized with scale 0.2 and zero point 0, but it was quantized with scale 0.1 and zero point 0"),
        "{}",
        p[0].message
    );
    // Activations quantized per axis.
    let m = Model::new(13)
        .input("x", &[1, 2])
        .init_f32("s", &[2], &[0.1, 0.2])
        .init_int("z", &[2], INT8, &[0, 0])
        .node(
            "QuantizeLinear",
            &["x", "s", "z"],
            "y",
            vec![attr_int("axis", 1)],
        )
        .output("y");
    let p = problems(m);
    assert!(
        p[0].message
            .contains("values computed at run time must be quantized per tensor"),
        "{}",
        p[0].message
    );
}

#[test]
fn an_int8_pad_pads_with_its_zero_point_only() {
    let pad = |value: i32| {
        let m = quantized_input(Model::new(13), &[1, 4], 0.1, 3)
            .init_i64("pads", &[4], &[0, 1, 0, 1])
            .init_int("v", &[], INT8, &[value])
            .node("Pad", &["x_q", "pads", "v"], "p", vec![])
            .node("DequantizeLinear", &["p", "x_s", "x_z"], "y", vec![])
            .output("y");
        import(m)
    };
    let ok = pad(3);
    assert!(ok.problems.is_empty(), "{:?}", ok.problems);
    let g = &ok.graph;
    assert_eq!(labels(g), ["Quantize", "Pad", "Dequantize"]);
    assert!(matches!(
        g.nodes[1].op,
        Op::Pad {
            mode: medwasm::kernels::misc::PadMode::Constant(0.0),
            ..
        }
    ));
    let p = pad(0).problems;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0].message,
        "pads int8 values with 0 but their zero point is 3; the runtime pads int8 tensors with their zero point (real 0) only"
    );
}

#[test]
fn uint8_activations_are_held_as_int8_with_the_same_real_values() {
    // onnxruntime's QUInt8 activations: y = Q(x, 0.1, 128 as uint8) → DQ → Relu → Q
    // (uint8 without a zero point: 0) → DQ.
    let m = qparams(Model::new(13).input("x", &[1, 4]), "x", 0.1, 128, UINT8)
        .node("QuantizeLinear", &["x", "x_s", "x_z"], "x_q", vec![])
        .node("DequantizeLinear", &["x_q", "x_s", "x_z"], "x_dq", vec![])
        .node("Relu", &["x_dq"], "r", vec![])
        .init_f32("r_s", &[], &[0.05])
        .node("QuantizeLinear", &["r", "r_s"], "r_q", vec![])
        .node("DequantizeLinear", &["r_q", "r_s"], "y", vec![])
        .output("y");
    let (g, _) = lowered(m);
    assert_eq!(labels(&g), ["Quantize", "Relu", "Dequantize"]);
    let [x, r] = [g.nodes[0].output, g.nodes[1].output];
    assert_eq!(
        (g.tensors[x].dtype, quant(&g, x)),
        (DType::I8, &per_tensor(0.1, 0))
    );
    // No zero point: uint8 0, held as int8 −128.
    assert_eq!(*quant(&g, r), per_tensor(0.05, -128));
}

#[test]
fn weights_only_quantized_float_models_keep_folding_and_say_so() {
    let m = Model::new(13)
        .input("x", &[1, 2])
        .init_int("W", &[2, 2], INT8, &[1, 2, 3, 4])
        .init_f32("W_s", &[], &[0.5])
        .node("DequantizeLinear", &["W", "W_s"], "W_dq", vec![])
        .node("MatMul", &["x", "W_dq"], "y", vec![])
        .output("y");
    let (g, notes) = lowered(m);
    assert_eq!(labels(&g), ["Gemm"]);
    let w = g.nodes[0].inputs[1].unwrap();
    assert_eq!(g.tensors[w].data, Some(Data::F32(vec![0.5, 1.0, 1.5, 2.0])));
    assert_eq!(
        notes,
        ["constant weights `W` dequantized to float32 at conversion"]
    );
}

#[test]
fn transposed_dequantized_weights_keep_their_int8_original() {
    // Exporters that store `[N, K]` weights transpose them before the MatMul.
    let m = quantized_input(Model::new(13), &[1, 3], 0.5, 0)
        .init_int("W", &[2, 3], INT8, &[1, 2, 3, 4, 5, 6])
        .init_f32("W_s", &[2], &[0.1, 0.2])
        .node(
            "DequantizeLinear",
            &["W", "W_s"],
            "W_dq",
            vec![attr_int("axis", 0)],
        )
        .node(
            "Transpose",
            &["W_dq"],
            "Wt",
            vec![attr_ints("perm", &[1, 0])],
        )
        .node("MatMul", &["x_dq", "Wt"], "mm", vec![]);
    let (g, _) = lowered(quantized_output(m, "mm", 0.25, 0));
    assert_eq!(labels(&g), ["Quantize", "Gemm", "Dequantize"]);
    let w = g.nodes[1].inputs[1].unwrap();
    assert_eq!(g.tensors[w].data, Some(Data::I8(vec![1, 4, 2, 5, 3, 6])));
    assert_eq!(quant(&g, w).axis, Some(1));
}

/// Scalar quantization parameters as QOperator nodes take them: `<n>_s`, `<n>_z`.
fn qop_params(m: Model, names: &[(&str, f32, i32)]) -> Model {
    names
        .iter()
        .fold(m, |m, &(n, s, z)| qparams(m, n, s, z, INT8))
}

#[test]
fn qoperator_models_translate_straight_to_int8_nodes() {
    // onnxruntime's QOperator format: Q → QLinearConv → MaxPool (int8) →
    // QLinearGlobalAveragePool → Flatten (int8) → QLinearMatMul → QLinearAdd(const)
    // → QLinearSigmoid → QGemm(transB) → QLinearSoftmax → DQ.
    let m = qop_params(
        Model::new(13).input("x", &[1, 2, 4, 4]),
        &[
            ("x", 0.05, -1),
            ("w", 0.01, 0),
            ("c", 0.2, -128),
            ("g", 0.1, -128),
            ("m", 0.3, 4),
            ("k", 0.01, 0),
            ("a", 0.35, 3),
            ("s", 1.0 / 256.0, -128),
            ("q", 0.02, 0),
            ("o", 1.0 / 256.0, -128),
        ],
    )
    .init_int("W", &[3, 2, 1, 1], INT8, &[1, -1, 2, -2, 3, -3])
    .init_int("B", &[3], INT32, &[10, 20, 30])
    .init_int("M", &[3, 2], INT8, &[1, 2, 3, 4, 5, 6])
    .init_int("K", &[2], INT8, &[7, -7])
    .init_int("G", &[2, 2], INT8, &[1, 2, 3, 4])
    .init_int("C", &[2], INT32, &[-1, 1])
    .node("QuantizeLinear", &["x", "x_s", "x_z"], "xq", vec![])
    .node(
        "QLinearConv",
        &["xq", "x_s", "x_z", "W", "w_s", "w_z", "c_s", "c_z", "B"],
        "cq",
        vec![],
    )
    .node(
        "MaxPool",
        &["cq"],
        "pq",
        vec![attr_ints("kernel_shape", &[2, 2])],
    )
    .ms_node(
        "QLinearGlobalAveragePool",
        &["pq", "c_s", "c_z", "g_s", "g_z"],
        "gq",
        vec![attr_int("channels_last", 0)],
    )
    .node("Flatten", &["gq"], "fq", vec![])
    .node(
        "QLinearMatMul",
        &["fq", "g_s", "g_z", "M", "k_s", "k_z", "m_s", "m_z"],
        "mq",
        vec![],
    )
    .ms_node(
        "QLinearAdd",
        &["mq", "m_s", "m_z", "K", "k_s", "k_z", "a_s", "a_z"],
        "aq",
        vec![],
    )
    .ms_node(
        "QLinearSigmoid",
        &["aq", "a_s", "a_z", "s_s", "s_z"],
        "sq",
        vec![],
    )
    .ms_node(
        "QGemm",
        &["sq", "s_s", "s_z", "G", "k_s", "k_z", "C", "q_s", "q_z"],
        "gm",
        vec![attr_int("transB", 1)],
    )
    .ms_node(
        "QLinearSoftmax",
        &["gm", "q_s", "q_z", "o_s", "o_z"],
        "oq",
        vec![attr_int("axis", -1), attr_int("opset", 13)],
    )
    .node("DequantizeLinear", &["oq", "o_s", "o_z"], "y", vec![])
    .output("y");
    let (g, _) = lowered(m);
    assert_eq!(
        labels(&g),
        [
            "Quantize",
            "Conv",
            "MaxPool",
            "ReduceMean",
            "Copy",
            "Gemm",
            "Add",
            "Sigmoid",
            "Gemm",
            "Softmax",
            "Dequantize"
        ]
    );
    let conv = &g.nodes[1];
    let bias = conv.inputs[2].unwrap();
    assert_eq!(g.tensors[bias].data, Some(Data::I32(vec![10, 20, 30])));
    // The QLinearConv bias's scale is implied: input scale × weight scale.
    assert_eq!(*quant(&g, bias), per_tensor(0.05 * 0.01, 0));
    assert_eq!(*quant(&g, conv.output), per_tensor(0.2, -128));
    // MaxPool moves int8 values: the output keeps the input's quantization.
    assert_eq!(*quant(&g, g.nodes[2].output), per_tensor(0.2, -128));
    assert_eq!(*quant(&g, g.nodes[3].output), per_tensor(0.1, -128));
    // QLinearAdd's constant operand is an int8 constant with its quantization.
    let k = g.nodes[6].inputs[1].unwrap();
    assert!(g.tensors[k].is_const());
    assert_eq!(*quant(&g, k), per_tensor(0.01, 0));
    // QGemm's transposed B is laid out [K, N].
    let b = g.nodes[8].inputs[1].unwrap();
    assert_eq!(g.tensors[b].data, Some(Data::I8(vec![1, 3, 2, 4])));
    assert_eq!(*quant(&g, g.nodes[9].output), per_tensor(1.0 / 256.0, -128));
}

#[test]
fn an_onnxruntime_softmax_output_of_1_255_is_requantized_from_1_256() {
    let m =
        quantized_input(Model::new(13), &[1, 5], 0.1, 0).node("Softmax", &["x_dq"], "s", vec![]);
    let (g, notes) = lowered(quantized_output(m, "s", 1.0 / 255.0, -128));
    assert_eq!(
        labels(&g),
        ["Quantize", "Softmax", "Quantize", "Dequantize"]
    );
    assert_eq!(*quant(&g, g.nodes[1].output), per_tensor(1.0 / 256.0, -128));
    assert_eq!(*quant(&g, g.nodes[2].output), per_tensor(1.0 / 255.0, -128));
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("the int8 softmax `softmax_2` writes steps of 1/256")),
        "{notes:?}"
    );
}

/// The team's shared reference models (`../shared/models` or
/// `MEDWASM_SHARED_MODELS`), as the conformance suite finds them.
fn shared_models() -> PathBuf {
    let dir = std::env::var_os("MEDWASM_SHARED_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"));
    assert!(
        dir.join("kws_int8").join("model.onnx").exists(),
        "the shared reference models are not at `{}`: put the team's `shared/models` there or set MEDWASM_SHARED_MODELS",
        dir.display()
    );
    dir
}

fn import_onnx(path: &Path) -> Imported {
    let bytes = std::fs::read(path).unwrap();
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .unwrap();
    super::import(&proto, &HashMap::new())
}

/// An int8 compute node's parameters, layout-independent: op, fused activation,
/// output quantization, weight scales, bias values (bit patterns where float).
fn signature(g: &Graph, n: &crate::convert::ir::Node) -> String {
    let q = |t: TensorId| {
        g.tensors[t].quant.as_ref().map_or("-".into(), |q| {
            format!(
                "{:?}/{:?}",
                q.scale.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
                q.zero_point
            )
        })
    };
    let kind = match &n.op {
        Op::Conv { group, .. } if *group > 1 => "DepthwiseConv".to_string(),
        Op::Conv { .. } => "Conv".into(),
        op => op.label().split('+').next().unwrap_or("").to_string(),
    };
    // Weights in TFLite's layouts: an NCHW Conv's OIHW filter as OHWI, a depthwise
    // one's `[C·M, 1, kh, kw]` as 1HWO.
    let relaid = |t: TensorId, d: &Data| match n.op {
        Op::Conv {
            layout: Layout::Nchw,
            group,
            ..
        } => {
            let perm = if group > 1 {
                [1, 2, 3, 0]
            } else {
                [0, 2, 3, 1]
            };
            let (_, idx) = crate::convert::ir::permutation(&g.tensors[t].dims, &perm);
            d.select(&idx)
        }
        _ => d.clone(),
    };
    let inputs: Vec<String> = n
        .inputs
        .iter()
        .flatten()
        .map(|&t| match &g.tensors[t].data {
            Some(Data::I32(v)) => format!("bias {v:?} {}", q(t)),
            Some(d) => format!("weights {:?} {}", relaid(t, d), q(t)),
            None => format!("x {}", q(t)),
        })
        .collect();
    format!(
        "{kind} {:?} {} <- {}",
        n.op.act(),
        q(n.output),
        inputs.join(", ")
    )
}

#[test]
fn tf2onnx_int8_models_lower_to_the_ir_of_their_tflite_originals() {
    // The same computation, read from the .tflite and from tf2onnx's .onnx, gives
    // the same int8 nodes with bit-identical parameters: one back end, the same
    // results (TFLite's reference kernels, `expected_tflite_ref.npy`).
    for (name, nodes) in [("kws_int8", 12), ("ic_resnet8_int8", 15), ("ad01_int8", 10)] {
        let dir = shared_models().join(name);
        let onnx = import_onnx(&dir.join("model.onnx"));
        assert!(onnx.problems.is_empty(), "{name}: {:?}", onnx.problems);
        let bytes = std::fs::read(dir.join("model.tflite")).unwrap();
        let (tflite, _) = crate::convert::tflite::import(&bytes, &HashMap::new()).unwrap();
        assert!(tflite.problems.is_empty(), "{name}: {:?}", tflite.problems);
        let compute = |g: &Graph| {
            let mut v: Vec<String> = g
                .nodes
                .iter()
                .filter(|n| !matches!(n.op, Op::Copy | Op::Transpose { .. }))
                .map(|n| signature(g, n))
                .collect();
            v.sort();
            v
        };
        let (a, b) = (compute(&onnx.graph), compute(&tflite.graph));
        assert_eq!(a.len(), nodes, "{name}: {a:#?}");
        assert_eq!(a, b, "{name}");
        // Graph inputs and outputs: int8 with the TFLite file's parameters.
        for (x, y) in [
            (&onnx.graph.inputs, &tflite.graph.inputs),
            (&onnx.graph.outputs, &tflite.graph.outputs),
        ] {
            let (x, y) = (x[0], y[0]);
            assert_eq!(onnx.graph.tensors[x].dtype, DType::I8, "{name}");
            assert_eq!(
                onnx.graph.tensors[x].quant, tflite.graph.tensors[y].quant,
                "{name}"
            );
        }
        // Nothing float is left: every node reads and writes int8.
        for n in &onnx.graph.nodes {
            let t = n.output;
            assert_eq!(onnx.graph.tensors[t].dtype, DType::I8, "{name}: {}", n.name);
        }
    }
}

#[test]
fn onnxruntime_quantized_fixtures_lower_to_int8_nodes() {
    // conformance/qdq: small models quantized by onnxruntime's quantize_static (QDQ
    // and QOperator, per tensor and per channel). Each lowers without problems,
    // and between its float input's Quantize and its float output's Dequantize
    // every node computes on int8.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/qdq");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let cases = index["cases"].as_array().unwrap();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut failures = vec![];
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let imp = import_onnx(&dir.join(format!("{name}.onnx")));
        if !imp.problems.is_empty() {
            failures.push(format!(
                "{name}: {}",
                imp.problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            continue;
        }
        let g = &imp.graph;
        let first_int8 = g.nodes.iter().position(|n| n.op == Op::Quantize).unwrap();
        let last = g.nodes.len() - 1;
        assert_eq!(g.nodes[last].op, Op::Dequantize, "{name}");
        for n in &g.nodes[first_int8..last] {
            if g.tensors[n.output].dtype != DType::I8 {
                failures.push(format!(
                    "{name}: `{}` ({}) is not int8",
                    n.name,
                    n.op.label()
                ));
            }
        }
        for n in &g.nodes[..first_int8] {
            assert_eq!(g.tensors[n.output].dtype, DType::F32, "{name}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_sigmoid_writes_tflite_s_1_256_steps_then_the_model_s() {
    // A sigmoid with a calibrated output scale: TFLite's table writes 1/256 steps.
    let m =
        quantized_input(Model::new(13), &[1, 4], 0.1, 0).node("Sigmoid", &["x_dq"], "s", vec![]);
    let (g, notes) = lowered(quantized_output(m, "s", 0.003, -128));
    assert_eq!(
        labels(&g),
        ["Quantize", "Sigmoid", "Quantize", "Dequantize"]
    );
    assert_eq!(*quant(&g, g.nodes[1].output), per_tensor(1.0 / 256.0, -128));
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("the int8 sigmoid `sigmoid_2` writes steps of 1/256")),
        "{notes:?}"
    );
    // Exactly 1/256 needs nothing more.
    let m =
        quantized_input(Model::new(13), &[1, 4], 0.1, 0).node("Sigmoid", &["x_dq"], "s", vec![]);
    let (g, _) = lowered(quantized_output(m, "s", 1.0 / 256.0, -128));
    assert_eq!(labels(&g), ["Quantize", "Sigmoid", "Dequantize"]);
}
