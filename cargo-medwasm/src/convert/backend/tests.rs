//! The back end on hand-built graphs: which kernel each node gets, the parameters
//! it carries, and every quantization scheme it refuses, with the reason. Bit
//! exactness against LiteRT is the conformance suite's (`conformance/tests`), on
//! the fixtures LiteRT computed.

use medwasm::format::OpCode;
use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;

use super::{Const, FcRequant, Kernel, Operand, Options, select};
use crate::convert::ProblemKind;
use crate::convert::ir::{DType, Data, Graph, Layout, Node, Op, Quant, Tensor, TensorId, Window};
use crate::convert::quant;

fn per_tensor(scale: f32, zp: i64) -> Option<Quant> {
    Some(Quant {
        scale: vec![scale],
        zero_point: vec![zp],
        axis: None,
    })
}

/// An int8 activation.
fn act(g: &mut Graph, name: &str, dims: &[usize], scale: f32, zp: i64) -> TensorId {
    g.add_tensor(Tensor {
        quant: per_tensor(scale, zp),
        ..Tensor::activation(name, dims.to_vec(), DType::I8)
    })
}

/// An int8 constant with `quant`.
fn weights(g: &mut Graph, dims: &[usize], values: Vec<i8>, quant: Option<Quant>) -> TensorId {
    let t = g.add_tensor(Tensor::constant("w", dims.to_vec(), Data::I8(values)));
    g.tensors[t].quant = quant;
    t
}

fn node(g: &mut Graph, op: Op, inputs: Vec<Option<TensorId>>, output: TensorId) -> Node {
    let n = Node {
        name: "n".into(),
        op,
        inputs,
        output,
    };
    g.nodes.push(n.clone());
    n
}

fn kernel(g: &Graph, n: &Node) -> Kernel {
    select(g, n, &Options::default()).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The issues of a node the back end refuses.
fn refused(g: &Graph, n: &Node) -> Vec<(ProblemKind, String)> {
    match select(g, n, &Options::default()) {
        Ok(k) => panic!("accepted: {k:?}"),
        Err(issues) => issues,
    }
}

fn has(issues: &[(ProblemKind, String)], needle: &str) -> bool {
    issues.iter().any(|(_, m)| m.contains(needle))
}

fn i32s(op: &Operand) -> Vec<i32> {
    match op {
        Operand::Const(Const { bytes, .. }) => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        other => panic!("not a constant: {other:?}"),
    }
}

fn win(k: usize, pad: usize) -> Window {
    Window {
        kernel: [k, k],
        strides: [1, 1],
        dilations: [1, 1],
        pads: [pad; 4],
    }
}

fn conv_op(group: usize, act: Act, layout: Layout, depthwise: bool, k: usize) -> Op {
    Op::Conv {
        win: win(k, 0),
        group,
        act,
        layout,
        depthwise,
    }
}

#[test]
fn an_int8_conv_carries_per_channel_multipliers_and_its_clamp() {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 3, 3, 2], 0.05, -10);
    let q = Some(Quant {
        scale: vec![0.01, 0.02],
        zero_point: vec![0, 0],
        axis: Some(0),
    });
    let w = weights(&mut g, &[2, 1, 1, 2], vec![1, -2, 3, 4], q);
    let b = g.add_tensor(Tensor::constant("b", vec![2], Data::I32(vec![7, -7])));
    let y = act(&mut g, "y", &[1, 3, 3, 2], 0.1, 5);
    let op = conv_op(1, Act::Clip(0.0, 6.0), Layout::Nhwc, false, 1);
    let n = node(&mut g, op, vec![Some(x), Some(w), Some(b)], y);
    let k = kernel(&g, &n);
    assert_eq!(k.op, OpCode::QConv);
    let want = quant::conv_multipliers(0.05, &[0.01, 0.02], 0.1).unwrap();
    assert_eq!(
        i32s(&k.inputs[3]),
        want.iter().map(|m| m.m).collect::<Vec<_>>()
    );
    assert_eq!(
        i32s(&k.inputs[4]),
        want.iter().map(|m| m.shift).collect::<Vec<_>>()
    );
    // RELU6 on (0.1, 5): [5, 5 + 60].
    assert_eq!(&k.params[10..], &[5, 65]);
    assert_eq!(k.inputs[1], Operand::Tensor(w), "OHWI weights as they are");
}

#[test]
fn conv_weights_and_activations_the_kernels_do_not_take_are_each_refused() {
    let mut g = Graph::default();
    // A per-channel activation, asymmetric weights and a u8 output, at once.
    let x = g.add_tensor(Tensor {
        quant: Some(Quant {
            scale: vec![0.1, 0.2],
            zero_point: vec![0, 0],
            axis: Some(3),
        }),
        ..Tensor::activation("x", vec![1, 2, 2, 2], DType::I8)
    });
    let w = weights(&mut g, &[2, 1, 1, 2], vec![1; 4], per_tensor(0.1, 3));
    let y = g.add_tensor(Tensor {
        quant: per_tensor(0.1, 0),
        ..Tensor::activation("y", vec![1, 2, 2, 2], DType::U8)
    });
    let op = conv_op(1, Act::None, Layout::Nhwc, false, 1);
    let n = node(&mut g, op, vec![Some(x), Some(w), None], y);
    let issues = refused(&g, &n);
    assert!(has(&issues, "quantized per channel"), "{issues:?}");
    assert!(has(&issues, "uint8"), "{issues:?}");
    assert!(has(&issues, "zero point 3"), "{issues:?}");
    assert!(issues.iter().all(|(k, _)| *k == ProblemKind::Dtype));
}

#[test]
fn an_accumulator_that_may_overflow_is_refused() {
    // 128 · 255 · taps exceeds 2^31 from 65 794 taps on: 1 × 1 × 70 000 channels.
    let mut g = Graph::default();
    let c = 70_000;
    let x = act(&mut g, "x", &[1, 1, 1, c], 0.1, 127);
    let w = weights(&mut g, &[1, 1, 1, c], vec![-128; c], per_tensor(0.01, 0));
    let y = act(&mut g, "y", &[1, 1, 1, 1], 0.1, 0);
    let op = conv_op(1, Act::None, Layout::Nhwc, false, 1);
    let n = node(&mut g, op, vec![Some(x), Some(w), None], y);
    let issues = refused(&g, &n);
    assert!(has(&issues, "overflow its int32 accumulator"), "{issues:?}");
}

#[test]
fn a_grouped_conv_of_one_channel_per_group_runs_as_depthwise() {
    // CONV_2D with group = C = 2 and one input channel per group: OHWI [4, 2, 2, 1]
    // becomes 1HWO [1, 2, 2, 4].
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 3, 3, 2], 0.05, 0);
    let values: Vec<i8> = (0..16).collect();
    let w = weights(&mut g, &[4, 2, 2, 1], values, per_tensor(0.01, 0));
    let y = act(&mut g, "y", &[1, 2, 2, 4], 0.1, 0);
    let op = conv_op(2, Act::None, Layout::Nhwc, false, 2);
    let n = node(&mut g, op, vec![Some(x), Some(w), None], y);
    let k = kernel(&g, &n);
    assert_eq!(k.op, OpCode::QDepthwiseConv);
    let Operand::Const(c) = &k.inputs[1] else {
        panic!("{:?}", k.inputs[1])
    };
    assert_eq!(c.dims, [1, 2, 2, 4]);
    // Tap t of channel o moves from o·4 + t to t·4 + o.
    let relaid: Vec<i8> = c.bytes.iter().map(|&b| b as i8).collect();
    assert_eq!(&relaid[..8], &[0, 4, 8, 12, 1, 5, 9, 13]);
    // A grouped conv with more channels per group has no int8 kernel.
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 3, 3, 4], 0.05, 0);
    let w = weights(&mut g, &[4, 1, 1, 2], vec![1; 8], per_tensor(0.01, 0));
    let y = act(&mut g, "y", &[1, 3, 3, 4], 0.1, 0);
    let n = node(
        &mut g,
        conv_op(2, Act::None, Layout::Nhwc, false, 1),
        vec![Some(x), Some(w), None],
        y,
    );
    assert!(has(
        &refused(&g, &n),
        "grouped int8 convolutions (2 groups)"
    ));
}

/// An int8 fully connected graph: x [2, 3] · B [3, 2] (per-tensor, zero point 2).
fn fc_graph(act_fn: Act) -> (Graph, Node) {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[2, 3], 0.05, -3);
    let w = weights(&mut g, &[3, 2], vec![1, 2, 3, 4, 5, 6], per_tensor(0.02, 2));
    let y = act(&mut g, "y", &[2, 2], 0.07, 1);
    let n = node(
        &mut g,
        Op::Gemm { act: act_fn },
        vec![Some(x), Some(w), None],
        y,
    );
    (g, n)
}

#[test]
fn fully_connected_weights_become_rows_and_the_mode_picks_the_requantization() {
    let (g, n) = fc_graph(Act::Relu);
    let k = kernel(&g, &n);
    assert_eq!(k.op, OpCode::QFullyConnected);
    assert_eq!(
        k.params,
        [1, 1, 127],
        "f64 mode, RELU from the zero point 1"
    );
    let Operand::Const(w) = &k.inputs[1] else {
        panic!()
    };
    assert_eq!(w.dims, [2, 3]);
    assert_eq!(w.bytes, [1, 3, 5, 2, 4, 6], "B [3, 2] → rows [2, 3]");
    assert_eq!(
        w.quant.map(|q| q.zero_point),
        Some(2),
        "the record keeps zp"
    );
    let Operand::Const(scale) = &k.inputs[3] else {
        panic!()
    };
    let want = f64::from(0.05f32) * f64::from(0.02f32) / f64::from(0.07f32);
    assert_eq!(scale.bytes, want.to_le_bytes());
    assert_eq!(k.inputs.len(), 4);

    let tflm = Options {
        fc_requant: FcRequant::Tflm,
    };
    let k = select(&g, &n, &tflm).unwrap();
    assert_eq!(k.params[0], 0, "fixed-point mode");
    assert_eq!(k.inputs.len(), 5);
    let m = quant::fc_tflm_multipliers(0.05, &[0.02], 0.07).unwrap()[0];
    assert_eq!(
        (i32s(&k.inputs[3]), i32s(&k.inputs[4])),
        (vec![m.m], vec![m.shift])
    );
}

#[test]
fn a_sigmoid_fused_into_an_int8_node_has_no_range() {
    let (g, n) = fc_graph(Act::Sigmoid);
    let issues = refused(&g, &n);
    assert!(has(&issues, "only RELU, RELU6"), "{issues:?}");
}

fn binary_graph(op: BinOp, s: [f32; 3]) -> (Graph, Node) {
    let mut g = Graph::default();
    let a = act(&mut g, "a", &[1, 4], s[0], 0);
    let b = act(&mut g, "b", &[1, 4], s[1], 0);
    let y = act(&mut g, "y", &[1, 4], s[2], 0);
    let n = node(
        &mut g,
        Op::Binary { op, act: Act::None },
        vec![Some(a), Some(b)],
        y,
    );
    (g, n)
}

#[test]
fn add_sub_mul_and_their_limits() {
    let (g, n) = binary_graph(BinOp::Sub, [0.1, 0.2, 0.3]);
    let k = kernel(&g, &n);
    assert_eq!(k.op, OpCode::QAdd);
    let p = quant::add_params(0.1, 0.2, 0.3).unwrap();
    assert_eq!(
        k.params[..4],
        [1, 20, p.input1.m as u32, p.input1.shift as u32]
    );
    // An output scale under 2^-20 of the inputs': the output multiplier exceeds 1,
    // which LiteRT's SUB leaves undefined.
    let (g, n) = binary_graph(BinOp::Sub, [1.0, 1.0, 1e-7]);
    assert!(has(&refused(&g, &n), "cannot rescale that far"));
    let (g, n) = binary_graph(BinOp::Mul, [0.1, 0.2, 0.3]);
    assert_eq!(kernel(&g, &n).op, OpCode::QMul);
    // A product rescaled up by 2^20: |x1 · x2| · 2^20 overflows.
    let (g, n) = binary_graph(BinOp::Mul, [1.0, 1.0, 1e-6]);
    assert!(has(&refused(&g, &n), "overflows int32"));
    let (g, n) = binary_graph(BinOp::Div, [0.1, 0.2, 0.3]);
    assert!(has(&refused(&g, &n), "int8 division"));
}

fn unary_graph(op: Op, dims: &[usize], s_in: f32, out: (f32, i64)) -> (Graph, Node) {
    let mut g = Graph::default();
    let x = act(&mut g, "x", dims, s_in, 0);
    let y = act(&mut g, "y", dims, out.0, out.1);
    let n = node(&mut g, op, vec![Some(x)], y);
    (g, n)
}

#[test]
fn activations_become_requantizations_tables_and_their_own_kernels() {
    let (g, n) = unary_graph(Op::Act(Act::Relu), &[1, 8], 0.1, (0.05, -128));
    let k = kernel(&g, &n);
    assert_eq!(k.op, OpCode::QRequantize);
    let m = quant::relu_multiplier(0.1, 0.05).unwrap();
    assert_eq!(k.params, [m.m as u32, m.shift as u32, -128i32 as u32, 127]);
    let (g, n) = unary_graph(Op::Act(Act::Sigmoid), &[1, 8], 0.1, (1.0 / 256.0, -128));
    let k = kernel(&g, &n);
    assert_eq!(k.op, OpCode::QLut);
    let table = quant::lut(quant::LutKind::Logistic, 0.1, 0, 1.0 / 256.0, -128);
    let Operand::Const(c) = &k.inputs[1] else {
        panic!()
    };
    assert_eq!(c.bytes, table.map(|v| v as u8));
    // LiteRT requires LOGISTIC's int8 output scale to be exactly 1/256.
    let (g, n) = unary_graph(Op::Act(Act::Sigmoid), &[1, 8], 0.1, (1.0 / 255.0, -128));
    assert!(has(&refused(&g, &n), "scale 1/256"));
    let (g, n) = unary_graph(Op::Act(Act::LeakyRelu(-0.5)), &[1, 8], 0.1, (0.1, 0));
    let k = kernel(&g, &n);
    assert_eq!(k.op, OpCode::QLeakyRelu);
    assert!((k.params[2] as i32) < 0, "a negative alpha: {:?}", k.params);
    let (g, n) = unary_graph(Op::HardSwish, &[1, 8], 0.1, (0.05, 0));
    assert_eq!(kernel(&g, &n).op, OpCode::QHardSwish);
}

#[test]
fn softmax_rows_axes_and_output_quantization() {
    let softmax = |r: usize| Op::Softmax {
        start: r - 1,
        end: r,
        beta: 1.0,
    };
    let (g, n) = unary_graph(softmax(2), &[2, 10], 0.1, (1.0 / 256.0, -128));
    let k = kernel(&g, &n);
    let p = quant::softmax_params(1.0, 0.1).unwrap();
    assert_eq!(k.params, [p.m, p.left_shift, p.diff_min].map(|v| v as u32));
    let (g, n) = unary_graph(softmax(2), &[1, 512], 0.1, (1.0 / 256.0, -128));
    assert!(has(&refused(&g, &n), "512 elements"));
    let (g, n) = unary_graph(softmax(2), &[1, 10], 0.1, (1.0 / 128.0, 0));
    assert!(has(&refused(&g, &n), "scale 1/256 and zero point -128"));
    let over_all = Op::Softmax {
        start: 0,
        end: 2,
        beta: 1.0,
    };
    let (g, n) = unary_graph(over_all, &[2, 10], 0.1, (1.0 / 256.0, -128));
    assert!(has(&refused(&g, &n), "last axis only"));
}

#[test]
fn pools_need_one_quantization_and_windows_on_the_input() {
    let pool = |count_include_pad, pads| Op::Pool {
        max: false,
        win: Window {
            kernel: [2, 2],
            strides: [2, 2],
            dilations: [1, 1],
            pads,
        },
        count_include_pad,
        layout: Layout::Nhwc,
    };
    let (g, n) = unary_graph(pool(false, [0; 4]), &[1, 4, 4, 3], 0.1, (0.1, 0));
    // The output dims are the input's here; fix them.
    let mut g = g;
    g.tensors[n.output].dims = vec![1, 2, 2, 3];
    assert_eq!(kernel(&g, &n).op, OpCode::QAveragePool);
    g.tensors[n.output].quant = per_tensor(0.2, 0);
    assert!(has(&refused(&g, &n), "quantized alike"));
    g.tensors[n.output].quant = per_tensor(0.1, 0);
    g.nodes[0].op = pool(true, [0; 4]);
    let n2 = g.nodes[0].clone();
    assert!(has(&refused(&g, &n2), "count_include_pad"));
    // A ceil-mode output size.
    g.nodes[0].op = pool(false, [0; 4]);
    g.tensors[n.output].dims = vec![1, 3, 3, 3];
    let n3 = g.nodes[0].clone();
    assert!(has(&refused(&g, &n3), "ceil_mode"));
}

#[test]
fn hybrid_layers_with_one_weight_scale_run_and_the_asymmetric_path_is_refused() {
    let hybrid = |quant: Option<Quant>, group: usize, depthwise: bool| {
        let mut g = Graph::default();
        let x = crate::convert::testing::input(&mut g, "x", &[1, 3, 3, 2]);
        let dims: &[usize] = if depthwise {
            &[1, 1, 1, 2]
        } else {
            &[2, 1, 1, 2]
        };
        let w = weights(&mut g, dims, vec![3; dims.iter().product()], quant);
        let y = g.add_tensor(Tensor::activation("y", vec![1, 3, 3, 2], DType::F32));
        let op = conv_op(group, Act::Relu, Layout::Nhwc, depthwise, 1);
        let n = node(&mut g, op, vec![Some(x), Some(w), None], y);
        (g, n)
    };
    let (g, n) = hybrid(per_tensor(0.5, 0), 1, false);
    let k = kernel(&g, &n);
    assert_eq!(k.op, OpCode::HybridConv);
    assert_eq!(k.scratch.map(|s| s.elems), Some(18));
    // Per channel with equal scales is LiteRT's symmetric path too.
    let equal = Some(Quant {
        scale: vec![0.5, 0.5],
        zero_point: vec![0, 0],
        axis: Some(0),
    });
    let (g, n) = hybrid(equal, 1, false);
    let Operand::Const(w) = &kernel(&g, &n).inputs[1] else {
        panic!()
    };
    assert_eq!(w.quant.map(|q| q.scale), Some(0.5));
    let distinct = Some(Quant {
        scale: vec![0.5, 0.25],
        zero_point: vec![0, 0],
        axis: Some(0),
    });
    let (g, n) = hybrid(distinct, 1, false);
    assert!(has(&refused(&g, &n), "asymmetric dynamic-range path"));
    let (g, n) = hybrid(per_tensor(0.5, 0), 2, true);
    assert!(has(&refused(&g, &n), "hybrid depthwise"));
}

#[test]
fn data_movers_take_int8_of_one_quantization_and_pad_with_the_zero_point() {
    let pad = |v: f32| Op::Pad {
        mode: medwasm::kernels::misc::PadMode::Constant(v),
        begin: vec![0, 1],
        end: vec![0, 1],
    };
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 2], 0.1, 3);
    let y = act(&mut g, "y", &[1, 4], 0.1, 3);
    let n = node(&mut g, pad(0.0), vec![Some(x)], y);
    let k = kernel(&g, &n);
    assert_eq!((k.op, &k.params[..2]), (OpCode::Pad, &[0u32, 0][..]));
    g.nodes[0].op = pad(1.0);
    let n = g.nodes[0].clone();
    assert!(has(&refused(&g, &n), "pads with real 0"));
    g.nodes[0].op = Op::Copy;
    g.tensors[y].dims = vec![2];
    g.tensors[y].quant = per_tensor(0.2, 3);
    let n = g.nodes[0].clone();
    assert!(has(&refused(&g, &n), "quantized differently"));
}

#[test]
fn a_hybrid_fully_connected_layer_quantizes_each_row_symmetrically() {
    // x [2, 3] f32 · B [3, 2] int8 (scale 0.5) + b, as LiteRT's `EvalHybridDense`.
    let mut g = Graph::default();
    let x = crate::convert::testing::input(&mut g, "x", &[2, 3]);
    let b_values: Vec<i8> = vec![10, -20, 30, 40, -50, 60];
    let w = weights(&mut g, &[3, 2], b_values.clone(), per_tensor(0.5, 0));
    let bias = crate::convert::testing::constant(&mut g, "b", &[2], vec![0.25, -0.75]);
    let y = g.add_node(
        "fc",
        Op::Gemm { act: Act::None },
        vec![Some(x), Some(w), Some(bias)],
        vec![2, 2],
    );
    g.outputs.push(y);
    let k = kernel(&g, &g.nodes[0].clone());
    assert_eq!(k.op, OpCode::HybridFullyConnected);
    assert_eq!(k.scratch.map(|s| s.elems), Some(3), "one row of depth 3");
    let xs = [0.5f32, -1.0, 0.25, 2.0, 0.0, -0.3];
    let mut want = vec![];
    for row in xs.chunks(3) {
        let r = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let q: Vec<f32> = row.iter().map(|v| (v * (127.0 / r)).round()).collect();
        let factor = (r / 127.0) * 0.5;
        for u in 0..2 {
            let acc: f32 = (0..3).map(|d| q[d] * f32::from(b_values[d * 2 + u])).sum();
            want.push(acc * factor + [0.25, -0.75][u]);
        }
    }
    let got = crate::convert::testing::run_graph(&g, &[xs.to_vec()]);
    crate::convert::testing::assert_close(&got[0], &want, 1e-6);
}
