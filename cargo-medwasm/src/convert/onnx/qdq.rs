//! The QDQ lowering: quantized ONNX graphs (onnxruntime's quantizer, tf2onnx from
//! an int8 TFLite model) to int8 IR nodes, run after the node-by-node translation.
//!
//! A QDQ graph computes in float between `DequantizeLinear` (DQ) and
//! `QuantizeLinear` (Q) nodes; what it means is the integer computation those
//! pairs frame. For each Q of a float value, the node(s) that computed that value
//! are matched against the patterns below and replaced by one int8 node (TFLite's
//! integer kernels, with their double-rounding requantization) that reads the int8
//! tensors the DQs read and writes the Q's int8 output:
//!
//! - `DQ(x), DQ(W) [, DQ(bias)] → Conv | MatMul | Gemm [→ Add(bias)] [→ Relu | Clip] → Q`
//! - `DQ(a), DQ(b) → Add | Sub | Mul [→ Relu | Clip] → Q` (a constant operand is
//!   dequantized int8)
//! - `DQ → MaxPool | AveragePool → Q`, `DQ → GlobalAveragePool | ReduceMean → Q`
//! - `DQ → Softmax → Q`, `DQ → Sigmoid | Tanh | LeakyRelu | Relu | Clip → Q`
//! - `DQ → Reshape | Flatten | Squeeze | Unsqueeze | Transpose | Concat | Pad → Q`
//! - `DQ → Q` (a requantization)
//!
//! Where the kernel needs equal input and output quantization (pools, movers) and
//! the model's differ, or the softmax or sigmoid output is not TFLite's 1/256, a
//! requantize (`Quantize` int8 → int8) joins them. A Q of a float value no DQ contributes to (a
//! graph input, or float operators on graph inputs) stays a `Quantize`, and a DQ
//! before float operators stays a `Dequantize` (exact). Any other Q is a problem
//! naming the pattern it breaks: float operators between a DQ and a Q would round
//! differently from what the model means.

use std::collections::{HashMap, HashSet};

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;
use medwasm::kernels::misc::PadMode;

use super::{Cx, R};
use crate::convert::ir::{DType, Data, Graph, Node, Op, Quant, Tensor, TensorId};
use crate::convert::{Problem, ProblemKind};

/// What the translation records for the lowering.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// For each f32 constant folded from quantized values (a DequantizeLinear of
    /// weights or of a bias), its quantized original as the int8 kernels take it.
    pub quantized: HashMap<TensorId, TensorId>,
    /// Run-time tensors that are uint8 in the model (the IR holds them as int8).
    pub u8: HashSet<TensorId>,
    /// int8 Pads' constant values in the model's type, by output, checked against
    /// the zero point once every tensor's quantization is known.
    pads: Vec<(TensorId, i64)>,
}

impl State {
    /// True if run-time tensor `t` is uint8 in the model.
    pub fn is_u8(&self, t: TensorId) -> bool {
        self.u8.contains(&t)
    }

    /// `to`, a moved copy of `from`, is uint8 in the model if `from` is.
    pub fn inherit_u8(&mut self, from: TensorId, to: TensorId) {
        if self.u8.contains(&from) {
            self.u8.insert(to);
        }
    }

    /// int8 Pad output `y` pads with `value` (in the model's type).
    pub fn pad_value(&mut self, y: TensorId, value: i64) {
        self.pads.push((y, value));
    }

    /// `to` is a constant computed from the dequantized constant `from` (a
    /// transpose, a reshape): if `from` has a quantized original, `derive` makes
    /// `to`'s from it (`None` where it cannot).
    pub fn derive(
        &mut self,
        g: &mut Graph,
        from: TensorId,
        to: TensorId,
        derive: impl FnOnce(&Tensor) -> Option<Tensor>,
    ) {
        let Some(&q) = self.quantized.get(&from) else {
            return;
        };
        if let Some(t) = derive(&g.tensors[q]) {
            let id = g.add_tensor(t);
            self.quantized.insert(to, id);
        }
    }
}

impl Cx {
    /// Gives run-time int8 tensor `t` the quantization `q` that `n` reads it with,
    /// and every tensor a mover copied into it the same (an int8 graph input
    /// learns its parameters from the DequantizeLinear behind a Reshape).
    pub fn assign_quant(&mut self, t: TensorId, q: &Quant) -> R<()> {
        let mut stack = vec![t];
        while let Some(t) = stack.pop() {
            let tensor = &mut self.g.tensors[t];
            match &tensor.quant {
                Some(have) if have == q => continue,
                Some(have) => {
                    return Err((
                        ProblemKind::Dtype,
                        format!(
                            "reads `{}` as quantized with {}, but it was quantized with {}; requantize with a QuantizeLinear in between",
                            tensor.name,
                            describe(q),
                            describe(have)
                        ),
                    ));
                }
                None => tensor.quant = Some(q.clone()),
            }
            if let Some(p) = self.g.producer(t)
                && moves(&self.g.nodes[p].op)
            {
                stack.extend(
                    self.g.nodes[p]
                        .inputs
                        .iter()
                        .flatten()
                        .filter(|&&i| !self.g.tensors[i].is_const()),
                );
            }
        }
        Ok(())
    }
}

/// True for operators that move int8 values without reading them: their inputs
/// and output share one quantization.
fn moves(op: &Op) -> bool {
    matches!(
        op,
        Op::Copy
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::Pad { .. }
            | Op::Pool { max: true, .. }
    )
}

/// Quantization parameters in messages.
fn describe(q: &Quant) -> String {
    match (q.scale.as_slice(), q.zero_point.as_slice()) {
        ([s], [z]) => format!("scale {s} and zero point {z}"),
        (s, _) => format!("{} scales along axis {:?}", s.len(), q.axis),
    }
}

/// Why a pattern does not apply.
type Why = (ProblemKind, String);

fn why<T>(msg: impl Into<String>) -> Result<T, Why> {
    Err((ProblemKind::Dtype, msg.into()))
}

/// The replacement of a matched pattern.
struct Lowered {
    /// Nodes taking the Q's place, the last writing its output.
    nodes: Vec<Node>,
    /// The pattern's float nodes, which go.
    remove: Vec<usize>,
    /// What the report calls the pattern's int8 node.
    label: String,
}

/// Lowers every QDQ pattern of the translated graph and checks what is left.
pub(super) fn lower(cx: &mut Cx) {
    // A tensor whose reader was refused has no quantization either; that is not
    // a problem of its own.
    let translated = cx.problems.is_empty();
    let mut lowered: Vec<(String, usize)> = vec![];
    let mut i = 0;
    while i < cx.g.nodes.len() {
        let n = &cx.g.nodes[i];
        let from_float = n.op == Op::Quantize
            && n.inputs
                .first()
                .copied()
                .flatten()
                .is_some_and(|t| cx.g.tensors[t].dtype == DType::F32);
        if !from_float {
            i += 1;
            continue;
        }
        match fuse(cx, i) {
            Ok(Some((next, label))) => {
                match lowered.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, c)) => *c += 1,
                    None => lowered.push((label, 1)),
                }
                i = next;
            }
            Ok(None) => i += 1,
            Err(p) => {
                cx.problems.push(p);
                i += 1;
            }
        }
    }
    drop_unread_dequantize(&mut cx.g);
    check_pads(cx);
    if translated {
        check_quantized(cx);
    }
    if !lowered.is_empty() {
        cx.notes.push(format!(
            "quantized (QDQ) patterns lowered to int8 nodes: {}",
            lowered
                .iter()
                .map(|(l, c)| format!("{l} ×{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // Dequantized constants that float nodes still read (weights-only quantized
    // models): float32 at conversion, exactly as ONNX dequantizes them.
    let read: HashSet<TensorId> =
        cx.g.nodes
            .iter()
            .flat_map(|n| n.inputs.iter().flatten().copied())
            .collect();
    let mut folded: Vec<(TensorId, TensorId)> =
        cx.q.quantized
            .iter()
            .filter(|(f, _)| read.contains(f))
            .map(|(&f, &q)| (f, q))
            .collect();
    folded.sort_unstable();
    for (_, q) in folded {
        cx.notes.push(format!(
            "constant weights `{}` dequantized to float32 at conversion",
            cx.g.tensors[q].name
        ));
    }
}

/// Lowers the pattern that ends at Q node `q`: `Some((index to go on from, label))`,
/// `None` for a Q of a float graph input (which stays), or the problem.
fn fuse(cx: &mut Cx, q: usize) -> Result<Option<(usize, String)>, Problem> {
    let problem = |node: &Node, kind, message: String| Problem {
        node: node.name.clone(),
        op: node.op.label(),
        kind,
        message,
    };
    let g = &cx.g;
    let qn = g.nodes[q].clone();
    let Some(yf) = qn.inputs.first().copied().flatten() else {
        return Ok(None);
    };
    if !dequantized_upstream(g, yf) {
        // The float part of the model (a graph input, or float operators on graph
        // inputs) ends here: the runtime's Quantize (TFLite's QUANTIZE; it rounds
        // ties away from zero where ONNX rounds them to even).
        return Ok(None);
    }
    // A Dequantize upstream means an operator computes the value.
    let Some(p) = g.producer(yf) else {
        return Ok(None);
    };
    let (core, act) = split_act(g, p);
    let core_node = g.nodes[core].clone();
    let pattern = format!(
        "`DequantizeLinear → {}{} → QuantizeLinear`",
        core_node.op.label(),
        act.map_or(String::new(), |(_, a)| format!(" → {}", act_label(a)))
    );
    if g.uses(yf) != 1 {
        return Err(problem(
            &core_node,
            ProblemKind::Dtype,
            format!(
                "{pattern} cannot run on the int8 kernels: its float result {} is also read by other nodes or is a graph output; each float value between a DequantizeLinear and a QuantizeLinear must feed only that QuantizeLinear",
                name(g, yf)
            ),
        ));
    }
    let mut lowered = lower_chain(cx, core, act, qn.output).map_err(|(kind, why)| {
        problem(
            &core_node,
            kind,
            format!("{pattern} cannot run on the int8 kernels: {why}"),
        )
    })?;
    lowered.remove.push(core);
    if let Some((a, _)) = act {
        lowered.remove.push(a);
    }
    lowered.remove.sort_unstable();
    lowered.remove.dedup();
    let g = &mut cx.g;
    let added = lowered.nodes.len();
    g.nodes.splice(q..=q, lowered.nodes);
    for &r in lowered.remove.iter().rev() {
        g.nodes.remove(r);
    }
    Ok(Some((q + added - lowered.remove.len(), lowered.label)))
}

/// True if a run-time `Dequantize` contributes to value `t`: then the float
/// operators between it and a QuantizeLinear are a quantized pattern.
fn dequantized_upstream(g: &Graph, t: TensorId) -> bool {
    let mut stack = vec![t];
    let mut seen = HashSet::new();
    while let Some(t) = stack.pop() {
        if !seen.insert(t) {
            continue;
        }
        let Some(p) = g.producer(t) else { continue };
        let n = &g.nodes[p];
        if n.op == Op::Dequantize {
            return true;
        }
        stack.extend(n.inputs.iter().flatten());
    }
    false
}

/// Splits the node computing a quantized value into the operator and a Relu or
/// Clip after it that its int8 kernel clamps to (TFLite's fused activation).
fn split_act(g: &Graph, p: usize) -> (usize, Option<(usize, Act)>) {
    if let Op::Act(a @ (Act::Relu | Act::Clip(..))) = g.nodes[p].op
        && let Some(x) = g.nodes[p].inputs.first().copied().flatten()
        && let Some(c) = g.producer(x)
        && g.uses(x) == 1
        && matches!(
            g.nodes[c].op,
            Op::Conv { act: Act::None, .. }
                | Op::Gemm { act: Act::None }
                | Op::Binary {
                    op: BinOp::Add | BinOp::Sub | BinOp::Mul,
                    act: Act::None
                }
        )
    {
        return (c, Some((p, a)));
    }
    (p, None)
}

fn act_label(a: Act) -> &'static str {
    match a {
        Act::None => "Identity",
        Act::Relu => "Relu",
        Act::LeakyRelu(_) => "LeakyRelu",
        Act::Sigmoid => "Sigmoid",
        Act::Tanh => "Tanh",
        Act::Clip(..) => "Clip",
    }
}

/// The int8 replacement of `core` (with fused activation `act`) writing `yq`.
fn lower_chain(
    cx: &mut Cx,
    core: usize,
    act: Option<(usize, Act)>,
    yq: TensorId,
) -> Result<Lowered, Why> {
    let n = cx.g.nodes[core].clone();
    let act = act.map_or(Act::None, |(_, a)| a);
    let input = |k: usize| n.inputs.get(k).copied().flatten();
    let one = |nodes: Vec<Node>, label: &str| Lowered {
        nodes,
        remove: vec![],
        label: label.to_string(),
    };
    match n.op.clone() {
        Op::Conv {
            win, group, layout, ..
        } => {
            let (Some(x), Some(w)) = (input(0), input(1)) else {
                return why("a Conv without input or weights");
            };
            let xq = int8_of(cx, x, false)?;
            let wq = weights(cx, w)?;
            let wt = cx.g.tensors[wq].clone();
            let wquant = quant_of(&wt)?;
            let out_c = wt.dims[0];
            match wquant.axis {
                None => {}
                Some(0) if wquant.scale.len() == out_c => {}
                Some(a) => {
                    return why(format!(
                        "the weights `{}` are quantized along axis {a}; per-channel convolution weights must be quantized along their output channels (axis 0)",
                        wt.name
                    ));
                }
            }
            symmetric(&wt, &wquant, "convolution")?;
            let bias = bias(cx, input(2), xq, &wquant.scale, out_c, &n.name)?;
            let op = Op::Conv {
                win,
                group,
                act,
                layout,
                depthwise: false,
            };
            Ok(one(
                vec![node(&n.name, op, vec![Some(xq), Some(wq), bias], yq)],
                "Conv",
            ))
        }
        Op::Gemm { .. } => {
            let (Some(x), Some(w)) = (input(0), input(1)) else {
                return why("a Gemm without input or weights");
            };
            let nodes = fully_connected(cx, &n.name, x, w, input(2), act, yq)?;
            Ok(one(nodes, "Gemm"))
        }
        Op::Binary { op, .. } => {
            let (Some(a), Some(b)) = (input(0), input(1)) else {
                return why("an operator without two operands");
            };
            // MatMul then Add of a constant bias (tf2onnx's fully connected layer).
            if op == BinOp::Add
                && let Some((gemm, x, w, bias)) = bias_add(cx, a, b)
            {
                let gname = cx.g.nodes[gemm].name.clone();
                let nodes = fully_connected(cx, &gname, x, w, Some(bias), act, yq)?;
                return Ok(Lowered {
                    nodes,
                    remove: vec![gemm],
                    label: "Gemm".into(),
                });
            }
            if op == BinOp::Div {
                return Err((
                    ProblemKind::Operator,
                    "Div has no int8 kernel (Add, Sub and Mul have)".into(),
                ));
            }
            let aq = int8_of(cx, a, true)?;
            let bq = int8_of(cx, b, true)?;
            for t in [aq, bq] {
                per_tensor(&cx.g.tensors[t])?;
            }
            let op = Op::Binary { op, act };
            let label = op.label();
            let label = label.split('+').next().unwrap_or("Binary");
            Ok(one(
                vec![node(&n.name, op, vec![Some(aq), Some(bq)], yq)],
                label,
            ))
        }
        Op::Pool {
            max,
            win,
            count_include_pad,
            layout,
        } => {
            let x = input(0).ok_or((ProblemKind::Shape, "a pool without input".to_string()))?;
            let xq = int8_of(cx, x, false)?;
            if !max && count_include_pad && win.pads.iter().any(|&p| p > 0) {
                return Err((
                    ProblemKind::Attribute,
                    "`count_include_pad=1` with padding: the int8 average pool averages over the input only".into(),
                ));
            }
            let op = Op::Pool {
                max,
                win,
                count_include_pad: false,
                layout,
            };
            let label = op.label();
            Ok(one(same_quant(cx, &n.name, op, xq, yq)?, &label))
        }
        Op::ReduceMean { mask } => {
            let x = input(0).ok_or((ProblemKind::Shape, "no input".to_string()))?;
            let xq = int8_of(cx, x, false)?;
            Ok(one(
                vec![node(&n.name, Op::ReduceMean { mask }, vec![Some(xq)], yq)],
                "ReduceMean",
            ))
        }
        Op::Softmax { start, end, beta } => {
            let x = input(0).ok_or((ProblemKind::Shape, "no input".to_string()))?;
            let xq = int8_of(cx, x, false)?;
            let rank = cx.g.tensors[x].dims.len();
            if start + 1 != rank || end != rank {
                return Err((
                    ProblemKind::Attribute,
                    format!(
                        "the softmax runs over axes {start}..{end} of a rank-{rank} tensor; the int8 softmax runs over the last axis only"
                    ),
                ));
            }
            let nodes = probabilities(cx, &n.name, Op::Softmax { start, end, beta }, xq, yq);
            Ok(one(nodes, "Softmax"))
        }
        Op::Act(Act::Sigmoid) => {
            let x = input(0).ok_or((ProblemKind::Shape, "no input".to_string()))?;
            let xq = int8_of(cx, x, false)?;
            let nodes = probabilities(cx, &n.name, Op::Act(Act::Sigmoid), xq, yq);
            Ok(one(nodes, "Sigmoid"))
        }
        Op::Act(a @ (Act::Relu | Act::Clip(..) | Act::Tanh | Act::LeakyRelu(_))) => {
            let x = input(0).ok_or((ProblemKind::Shape, "no input".to_string()))?;
            let xq = int8_of(cx, x, false)?;
            Ok(one(
                vec![node(&n.name, Op::Act(a), vec![Some(xq)], yq)],
                act_label(a),
            ))
        }
        Op::Copy | Op::Transpose { .. } | Op::Pad { .. } => {
            let x = input(0).ok_or((ProblemKind::Shape, "no input".to_string()))?;
            let xq = int8_of(cx, x, false)?;
            if let Op::Pad {
                mode: PadMode::Constant(v),
                ..
            } = n.op
                && v != 0.0
            {
                return Err((
                    ProblemKind::Attribute,
                    format!(
                        "Pad with {v}: the runtime pads int8 tensors with real 0 (their zero point) only"
                    ),
                ));
            }
            let op = match n.op {
                Op::Pad { mode, begin, end } => Op::Pad {
                    mode: match mode {
                        PadMode::Constant(_) => PadMode::Constant(0.0),
                        m => m,
                    },
                    begin,
                    end,
                },
                op => op,
            };
            let label = op.label();
            Ok(one(same_quant(cx, &n.name, op, xq, yq)?, &label))
        }
        Op::Concat { axis } => {
            let yquant = quant_of(&cx.g.tensors[yq])?;
            let mut nodes = vec![];
            let mut parts = vec![];
            for (k, x) in n.inputs.iter().enumerate() {
                let Some(x) = *x else { continue };
                let xq = int8_of(cx, x, false)?;
                if quant_of(&cx.g.tensors[xq])? == yquant {
                    parts.push(Some(xq));
                } else {
                    // Concat moves values: each part is requantized to the output's
                    // parameters first.
                    let name = format!("{}.requantize{k}", n.name);
                    let dims = cx.g.tensors[xq].dims.clone();
                    let t = int8_tensor(&mut cx.g, &name, &dims, &yquant);
                    nodes.push(node(&name, Op::Quantize, vec![Some(xq)], t));
                    parts.push(Some(t));
                }
            }
            nodes.push(node(&n.name, Op::Concat { axis }, parts, yq));
            Ok(one(nodes, "Concat"))
        }
        Op::Dequantize => {
            // DQ → Q: the int8 values requantized to the Q's parameters.
            let x = input(0).ok_or((ProblemKind::Shape, "no input".to_string()))?;
            let same = Some(&quant_of(&cx.g.tensors[x])?) == cx.g.tensors[yq].quant.as_ref();
            let op = if same { Op::Copy } else { Op::Quantize };
            Ok(one(vec![node(&n.name, op, vec![Some(x)], yq)], "Quantize"))
        }
        other => Err((
            ProblemKind::Operator,
            format!(
                "{} has no int8 kernel; float operators can run before a model's quantized part (ahead of its first QuantizeLinear) or after it (behind a DequantizeLinear), not between a DequantizeLinear and a QuantizeLinear",
                other.label()
            ),
        )),
    }
}

/// `Add(a, b)` where one operand is the output of a bias-less Gemm read only here
/// and the other a constant: `(gemm node, its input, its weights, the constant)`.
fn bias_add(cx: &Cx, a: TensorId, b: TensorId) -> Option<(usize, TensorId, TensorId, TensorId)> {
    let g = &cx.g;
    for (mm, c) in [(a, b), (b, a)] {
        if !g.tensors[c].is_const() || g.uses(mm) != 1 {
            continue;
        }
        let Some(p) = g.producer(mm) else { continue };
        let n = &g.nodes[p];
        if n.op == (Op::Gemm { act: Act::None })
            && n.inputs.get(2).copied().flatten().is_none()
            && let (Some(x), Some(w)) = (n.inputs[0], n.inputs[1])
        {
            return Some((p, x, w, c));
        }
    }
    None
}

/// The int8 fully connected layer `name`: input `x` (dequantized), weights `w`
/// `[K, N]`, optional bias.
fn fully_connected(
    cx: &mut Cx,
    name: &str,
    x: TensorId,
    w: TensorId,
    b: Option<TensorId>,
    act: Act,
    yq: TensorId,
) -> Result<Vec<Node>, Why> {
    let xq = int8_of(cx, x, false)?;
    let wq = weights(cx, w)?;
    let wt = cx.g.tensors[wq].clone();
    let wquant = quant_of(&wt)?;
    let units = wt.dims.get(1).copied().unwrap_or(0);
    match wquant.axis {
        None => {}
        Some(1) if wquant.scale.len() == units => {
            symmetric(&wt, &wquant, "per-channel fully connected")?
        }
        Some(a) => {
            return why(format!(
                "the weights `{}` are quantized along axis {a} of `[K, N]`; the int8 fully connected layer takes one scale, or one per output column (axis 1)",
                wt.name
            ));
        }
    }
    let bias = bias(cx, b, xq, &wquant.scale, units, name)?;
    Ok(vec![node(
        name,
        Op::Gemm { act },
        vec![Some(xq), Some(wq), bias],
        yq,
    )])
}

/// `op` on int8 `xq` into `yq`, which must have `xq`'s quantization (pools and
/// movers); if the model's differ, into a temporary of `xq`'s, then requantized.
/// (Not the other way round: an output calibrated on averages or maxima has a
/// narrower range than the input, and requantizing the input to it would
/// saturate values before they are pooled.)
pub(super) fn same_quant(
    cx: &mut Cx,
    name: &str,
    op: Op,
    xq: TensorId,
    yq: TensorId,
) -> Result<Vec<Node>, Why> {
    let xquant = quant_of(&cx.g.tensors[xq])?;
    if Some(&xquant) == cx.g.tensors[yq].quant.as_ref() {
        return Ok(vec![node(name, op, vec![Some(xq)], yq)]);
    }
    let dims = cx.g.tensors[yq].dims.clone();
    let tmp = int8_tensor(&mut cx.g, &format!("{name}.int8"), &dims, &xquant);
    Ok(vec![
        node(name, op, vec![Some(xq)], tmp),
        node(
            &format!("{name}.requantize"),
            Op::Quantize,
            vec![Some(tmp)],
            yq,
        ),
    ])
}

/// TFLite's int8 softmax and sigmoid (LOGISTIC) write probabilities in steps of
/// 1/256 from −128 (LiteRT requires that output); another output quantization
/// (onnxruntime's quantizer writes 1/255 for a softmax, and calibrates a sigmoid's)
/// is reached by a requantize after them. The softmax accepts 1/256 within 0.1 %,
/// as LiteRT does; the sigmoid's table needs it exactly.
pub(super) fn probabilities(
    cx: &mut Cx,
    name: &str,
    op: Op,
    xq: TensorId,
    yq: TensorId,
) -> Vec<Node> {
    let softmax = matches!(op, Op::Softmax { .. });
    let fits = cx.g.tensors[yq].quant.as_ref().is_some_and(|q| {
        let s = f64::from(q.scale[0]);
        q.zero_point == [-128]
            && if softmax {
                (s * 256.0 - 1.0).abs() <= 1e-3
            } else {
                s == 1.0 / 256.0
            }
    });
    if fits {
        return vec![node(name, op, vec![Some(xq)], yq)];
    }
    let quant = Quant {
        scale: vec![1.0 / 256.0],
        zero_point: vec![-128],
        axis: None,
    };
    let dims = cx.g.tensors[yq].dims.clone();
    let tmp_name = format!("{name}.int8");
    let tmp = int8_tensor(&mut cx.g, &tmp_name, &dims, &quant);
    cx.notes.push(format!(
        "the int8 {} `{name}` writes steps of 1/256 from -128; its output `{}` ({}) is requantized from them",
        if softmax { "softmax" } else { "sigmoid" },
        cx.g.tensors[yq].name,
        cx.g.tensors[yq].quant.as_ref().map_or(String::new(), describe)
    ));
    vec![
        node(name, op, vec![Some(xq)], tmp),
        node(
            &format!("{name}.requantize"),
            Op::Quantize,
            vec![Some(tmp)],
            yq,
        ),
    ]
}

/// A new run-time int8 tensor with `quant`.
pub(super) fn int8_tensor(g: &mut Graph, name: &str, dims: &[usize], quant: &Quant) -> TensorId {
    g.add_tensor(Tensor {
        quant: Some(quant.clone()),
        ..Tensor::activation(name, dims.to_vec(), DType::I8)
    })
}

pub(super) fn node(name: &str, op: Op, inputs: Vec<Option<TensorId>>, output: TensorId) -> Node {
    Node {
        name: name.to_string(),
        op,
        inputs,
        output,
    }
}

/// How a tensor is named in messages.
fn name(g: &Graph, t: TensorId) -> String {
    match g.tensors[t].name.as_str() {
        "" => "an intermediate value".into(),
        n => format!("`{n}`"),
    }
}

/// The int8 tensor behind float value `t`: what a run-time `Dequantize` read, or
/// (with `constants`) the quantized original of a dequantized constant.
fn int8_of(cx: &Cx, t: TensorId, constants: bool) -> Result<TensorId, Why> {
    let g = &cx.g;
    if let Some(p) = g.producer(t) {
        let n = &g.nodes[p];
        return match (&n.op, n.inputs.first().copied().flatten()) {
            (Op::Dequantize, Some(x)) => Ok(x),
            _ => why(format!(
                "{} comes from `{}` ({}), not from a DequantizeLinear",
                name(g, t),
                n.name,
                n.op.label()
            )),
        };
    }
    if g.tensors[t].is_const() {
        return match cx.q.quantized.get(&t) {
            Some(&q) if constants && g.tensors[q].dtype == DType::I8 => Ok(q),
            Some(_) if constants => why(format!(
                "the constant {} is not int8 (it dequantizes {} values)",
                name(g, t),
                g.tensors[cx.q.quantized[&t]].dtype.name()
            )),
            _ if constants => why(format!(
                "the constant {} is float; int8 operands are dequantized int8 constants",
                name(g, t)
            )),
            _ => why(format!(
                "{} is a constant, not a dequantized run-time value",
                name(g, t)
            )),
        };
    }
    why(format!(
        "{} is a float graph input; quantize it with a QuantizeLinear first",
        name(g, t)
    ))
}

/// The quantized original of dequantized weights `w`, which must be int8.
fn weights(cx: &Cx, w: TensorId) -> Result<TensorId, Why> {
    match cx.q.quantized.get(&w) {
        Some(&q) if cx.g.tensors[q].dtype == DType::I8 => Ok(q),
        Some(&q) => why(format!(
            "the weights `{}` are {}; int8 weights are needed",
            cx.g.tensors[q].name,
            cx.g.tensors[q].dtype.name()
        )),
        None => why(format!(
            "the weights {} are float; the int8 kernels need int8 weights through a DequantizeLinear",
            name(&cx.g, w)
        )),
    }
}

fn quant_of(t: &Tensor) -> Result<Quant, Why> {
    t.quant.clone().ok_or((
        ProblemKind::Dtype,
        format!("`{}` has no quantization parameters", t.name),
    ))
}

fn per_tensor(t: &Tensor) -> Result<(), Why> {
    match &t.quant {
        Some(q) if q.axis.is_none() => Ok(()),
        _ => why(format!(
            "`{}` is quantized per axis; the int8 arithmetic operators take per-tensor operands",
            t.name
        )),
    }
}

pub(super) fn symmetric(t: &Tensor, q: &Quant, what: &str) -> Result<(), Why> {
    if q.zero_point.iter().any(|&z| z != 0) {
        return why(format!(
            "the weights `{}` have nonzero zero points; int8 {what} weights must be symmetric (zero point 0): quantize the weights symmetrically (onnxruntime: `extra_options={{\"WeightSymmetric\": True}}`)",
            t.name
        ));
    }
    Ok(())
}

/// How far a bias scale may be from `s_x · s_w` and still be used as stored:
/// exporters write the f32 product itself; a few ulps allow for one computed
/// in f64 first.
const BIAS_SCALE_REL: f64 = 1e-6;

/// The int32 bias of an int8 Conv or fully connected layer with input `xq` and
/// weight scales `s_w` (one, or one per channel) over `ch` channels. The kernels
/// add it to the accumulator, whose unit is `s_x · s_w[c]`: an int32 bias with
/// that scale and zero point 0 (what onnxruntime and tf2onnx write) is used as
/// stored; any other bias (another scale, a zero point, int8 or float values) is
/// requantized to that unit here, rounding half to even, and noted.
fn bias(
    cx: &mut Cx,
    b: Option<TensorId>,
    xq: TensorId,
    s_w: &[f32],
    ch: usize,
    owner: &str,
) -> Result<Option<TensorId>, Why> {
    let Some(b) = b else { return Ok(None) };
    let s_x = quant_of(&cx.g.tensors[xq])?.scale[0];
    let unit: Vec<f32> = (0..ch)
        .map(|c| s_x * if s_w.len() == 1 { s_w[0] } else { s_w[c] })
        .collect();
    let bt = cx.g.tensors[b].clone();
    if bt.len() != ch {
        return Err((
            ProblemKind::Shape,
            format!(
                "the bias {} has {} values for {ch} channels",
                name(&cx.g, b),
                bt.len()
            ),
        ));
    }
    let original_id = cx.q.quantized.get(&b).copied();
    let original = original_id.map(|q| cx.g.tensors[q].clone());
    // The real value of each bias element, exactly where the model gives integers.
    let real: Vec<f64> = match &original {
        Some(q) => {
            let quant = quant_of(q)?;
            let at = |v: &[i64], c: usize| if v.len() == 1 { v[0] } else { v[c] };
            let values = q.ints().unwrap_or_default();
            let pick = |v: &[f32], c: usize| if v.len() == 1 { v[0] } else { v[c] };
            if q.dtype == DType::I32
                && quant.zero_point.iter().all(|&z| z == 0)
                && (0..ch).all(|c| {
                    let (s, u) = (f64::from(pick(&quant.scale, c)), f64::from(unit[c]));
                    (s - u).abs() <= u * BIAS_SCALE_REL
                })
            {
                if let (Some(id), true) = (original_id, q.dims == [ch]) {
                    return Ok(Some(id));
                }
                let keep = Tensor {
                    dims: vec![ch],
                    ..q.clone()
                };
                return Ok(Some(cx.g.add_tensor(keep)));
            }
            (0..ch)
                .map(|c| {
                    (values[c] - at(&quant.zero_point, c)) as f64 * f64::from(pick(&quant.scale, c))
                })
                .collect()
        }
        None => match bt.f32s() {
            Some(v) => v.iter().map(|&x| f64::from(x)).collect(),
            None => return why(format!("the bias {} is not a constant", name(&cx.g, b))),
        },
    };
    let mut values = Vec::with_capacity(ch);
    for c in 0..ch {
        let v = (real[c] / f64::from(unit[c])).round_ties_even();
        if !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&v) {
            return why(format!(
                "the bias {} does not fit int32 in units of input scale × weight scale ({v} for channel {c})",
                name(&cx.g, b)
            ));
        }
        values.push(v as i32);
    }
    let uniform = unit.iter().all(|&u| u == unit[0]);
    let quant = Quant {
        scale: if uniform { vec![unit[0]] } else { unit },
        zero_point: if uniform { vec![0] } else { vec![0; ch] },
        axis: (!uniform).then_some(0),
    };
    cx.notes.push(format!(
        "the bias of `{owner}` requantized to int32 in units of input scale × weight scale, the int8 kernel's accumulator"
    ));
    let name = format!("{owner}.bias");
    Ok(Some(cx.g.add_tensor(Tensor {
        quant: Some(quant),
        ..Tensor::constant(name, vec![ch], Data::I32(values))
    })))
}

/// Removes `Dequantize` nodes nobody reads any more (their readers were lowered).
fn drop_unread_dequantize(g: &mut Graph) {
    loop {
        let dead = g
            .nodes
            .iter()
            .position(|n| n.op == Op::Dequantize && g.uses(n.output) == 0);
        match dead {
            Some(i) => {
                g.nodes.remove(i);
            }
            None => break,
        }
    }
}

/// int8 Pads pad with their zero point only: the model's value must be it.
fn check_pads(cx: &mut Cx) {
    for &(y, v) in &cx.q.pads {
        let Some(p) = cx.g.producer(y) else { continue };
        let Some(q) = &cx.g.tensors[y].quant else {
            continue;
        };
        let v = if cx.q.is_u8(y) { v - 128 } else { v };
        if v != q.zero_point[0] {
            let n = &cx.g.nodes[p];
            cx.problems.push(Problem {
                node: n.name.clone(),
                op: "Pad".into(),
                kind: ProblemKind::Attribute,
                message: format!(
                    "pads int8 values with {v} but their zero point is {}; the runtime pads int8 tensors with their zero point (real 0) only",
                    q.zero_point[0]
                ),
            });
        }
    }
}

/// Every run-time int8 tensor needs its scale and zero point: from the
/// QuantizeLinear or quantized operator that wrote it, or the DequantizeLinear
/// that reads it.
fn check_quantized(cx: &mut Cx) {
    let g = &cx.g;
    let unknown = |t: TensorId| {
        let t = &g.tensors[t];
        t.dtype == DType::I8 && !t.is_const() && t.quant.is_none()
    };
    let mut seen = HashSet::new();
    let mut problems = vec![];
    for &t in &g.inputs {
        if unknown(t) && seen.insert(t) {
            problems.push(Problem::input(
                &g.tensors[t].name,
                ProblemKind::Dtype,
                "is int8 but no DequantizeLinear or quantized operator reads it, so its scale and zero point are unknown",
            ));
        }
    }
    for n in &g.nodes {
        for t in n.inputs.iter().flatten().copied().chain([n.output]) {
            if unknown(t) && seen.insert(t) {
                problems.push(Problem {
                    node: n.name.clone(),
                    op: n.op.label(),
                    kind: ProblemKind::Dtype,
                    message: format!(
                        "the int8 tensor {} has no scale and zero point: no DequantizeLinear or quantized operator reads it",
                        name(g, t)
                    ),
                });
            }
        }
    }
    cx.problems.extend(problems);
}
