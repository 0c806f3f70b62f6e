//! The ONNX frontend: reads the protobuf (tract-onnx's `pb`) into the IR with static
//! shapes, folding constant subgraphs, and collects every problem instead of
//! stopping at the first.
//!
//! Each operator family has its own module with one function per operator,
//! registered by name with the attributes it understands in [`FAMILIES`] (and the
//! `com.microsoft` operators onnxruntime's quantizer writes in [`MS_FAMILIES`]); an
//! attribute an operator does not list is refused, never ignored.
//!
//! Quantized models are translated node by node too: `QuantizeLinear` and
//! `DequantizeLinear` of run-time tensors become `Quantize` and `Dequantize` nodes,
//! of constants they are folded (keeping the int8 original beside the f32 value),
//! and the QOperator ops become int8 nodes directly. [`qdq`] then lowers the
//! `DequantizeLinear → op → QuantizeLinear` patterns to int8 nodes.

use std::collections::HashMap;

use tract_onnx::pb;

use super::ir::{DType, Graph, Node, Op, Quant, Tensor, TensorId, checked_len};
use super::{Imported, Problem, ProblemKind};

mod attrs;
mod constants;
mod conv;
mod elementwise;
mod gemm;
mod norm;
mod pool;
mod qdq;
#[cfg(test)]
mod qdq_tests;
mod qlinear;
mod quant;
mod shape;
mod tensor;
#[cfg(test)]
pub(crate) mod tests;

use attrs::Attrs;
use tensor::{FLOAT, INT8, UINT8, dtype_name, tensor_from_proto};

/// What a translation step failed on.
pub(super) type R<T> = Result<T, (ProblemKind, String)>;

/// An attribute value (or combination) the converter does not support.
pub(super) fn unsupported<T>(msg: impl Into<String>) -> R<T> {
    Err((ProblemKind::Attribute, msg.into()))
}

/// Shapes that do not fit.
pub(super) fn shape_err<T>(msg: impl Into<String>) -> R<T> {
    Err((ProblemKind::Shape, msg.into()))
}

/// One ONNX operator the frontend translates.
pub(super) struct OpDef {
    /// ONNX op type (default domain).
    pub op: &'static str,
    /// Every attribute the operator may carry in any opset; the translation reads
    /// each (or says in a comment why it may be ignored).
    pub attrs: &'static [&'static str],
    /// Translates one node into the IR.
    pub translate: fn(&mut Cx, &OnnxNode<'_>) -> R<()>,
}

/// Every operator, by family (tract-onnx's `register_all_ops`).
const FAMILIES: &[&[OpDef]] = &[
    constants::OPS,
    gemm::OPS,
    elementwise::OPS,
    conv::OPS,
    pool::OPS,
    norm::OPS,
    shape::OPS,
    quant::OPS,
    qlinear::OPS,
];

/// Operators of the `com.microsoft` domain: the QOperator ops onnxruntime's
/// quantizer writes beside the standard QLinearConv and QLinearMatMul.
const MS_FAMILIES: &[&[OpDef]] = &[qlinear::MS_OPS];

/// The `com.microsoft` domain.
pub(super) const MS_DOMAIN: &str = "com.microsoft";

/// The translation of `op` in the default domain, if the frontend has one.
pub(super) fn op_def(op: &str) -> Option<&'static OpDef> {
    FAMILIES.iter().flat_map(|f| f.iter()).find(|d| d.op == op)
}

/// The translation of `op` of `domain`, if the frontend has one.
fn domain_op_def(domain: &str, op: &str) -> Option<&'static OpDef> {
    match domain {
        "" | "ai.onnx" => op_def(op),
        MS_DOMAIN => MS_FAMILIES
            .iter()
            .flat_map(|f| f.iter())
            .find(|d| d.op == op),
        _ => None,
    }
}

/// Every op type the frontend translates, in any domain.
#[cfg(test)]
pub(super) fn op_names() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .chain(MS_FAMILIES)
        .flat_map(|f| f.iter())
        .map(|d| d.op)
        .collect()
}

/// Operators that may read run-time int8 tensors: they move values without
/// reading them (so the quantization passes through), or they are quantized
/// operators themselves. Any other operator computes on real values and needs a
/// `DequantizeLinear` in front.
const INT8_READERS: &[&str] = &[
    "Identity",
    "Shape",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Pad",
    "MaxPool",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "QGemm",
    "QLinearAdd",
    "QLinearMul",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
    "QLinearSigmoid",
    "QLinearLeakyRelu",
    "QLinearSoftmax",
    "QLinearConcat",
];

/// Translates a parsed model. `fixed` holds `--input-shape` values by input name.
pub(crate) fn import(model: &pb::ModelProto, fixed: &HashMap<String, Vec<usize>>) -> Imported {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(1);
    let mut cx = Cx {
        g: Graph::default(),
        names: HashMap::new(),
        problems: vec![],
        notes: vec![],
        opset,
        q: qdq::State::default(),
    };
    let producer = format!("{} {}", model.producer_name, model.producer_version)
        .trim()
        .to_string();
    let Some(graph) = &model.graph else {
        cx.problems.push(Problem::model("the file has no graph"));
        return cx.finish(producer, vec![]);
    };
    for init in &graph.initializer {
        match tensor_from_proto(init) {
            Ok(t) => {
                let id = cx.g.add_tensor(t);
                cx.names.insert(init.name.clone(), id);
            }
            Err(e) => {
                cx.problems.push(Problem {
                    node: init.name.clone(),
                    op: "initializer".into(),
                    kind: ProblemKind::Dtype,
                    message: e,
                });
                // Its readers are not reported again as reading an unknown name.
                cx.poisoned_name(&init.name);
            }
        }
    }
    let mut input_shapes = vec![];
    for input in &graph.input {
        if cx.names.contains_key(&input.name) {
            continue; // an initializer listed as input (older exporters)
        }
        match cx.graph_input(input, fixed) {
            Some((dims, dtype)) => {
                input_shapes.push(dims.clone());
                let id =
                    cx.g.add_tensor(Tensor::activation(input.name.clone(), dims, dtype));
                cx.names.insert(input.name.clone(), id);
                cx.g.inputs.push(id);
            }
            None => {
                // Keep translating so that every problem is reported at once.
                cx.poisoned_name(&input.name);
            }
        }
    }
    for name in fixed.keys() {
        if !graph.input.iter().any(|i| &i.name == name) {
            cx.problems.push(Problem {
                node: name.clone(),
                op: "--input-shape".into(),
                kind: ProblemKind::Shape,
                message: format!(
                    "the model has no input named `{name}`; inputs are: {}",
                    graph
                        .input
                        .iter()
                        .map(|i| format!("`{}`", i.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    for (i, node) in graph.node.iter().enumerate() {
        cx.node(i, node);
    }
    for out in &graph.output {
        match cx.names.get(&out.name) {
            Some(&id) if cx.g.tensors[id].name != POISON => {
                if cx.g.tensors[id].name != out.name {
                    // The output is another tensor under a new name (an Identity was
                    // removed); keep the model's output name for users.
                    cx.g.tensors[id].name = out.name.clone();
                }
                if declared_type(out) == Some(UINT8) {
                    // Run-time uint8 values are held as int8 (shifted by 128), which
                    // would change what the model's output means.
                    cx.problems.push(Problem {
                        node: out.name.clone(),
                        op: "output".into(),
                        kind: ProblemKind::Dtype,
                        message: "is uint8; only float32 and int8 graph outputs are supported (quantize the model with int8 activations: `activation_type=QuantType.QInt8`)".into(),
                    });
                }
                cx.g.outputs.push(id)
            }
            Some(_) => {}
            None => cx.problems.push(Problem::model(&format!(
                "graph output `{}` is produced by no node",
                out.name
            ))),
        }
    }
    qdq::lower(&mut cx);
    cx.finish(producer, input_shapes)
}

/// The element type a graph input or output declares, if it declares one.
fn declared_type(v: &pb::ValueInfoProto) -> Option<i32> {
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => Some(t.elem_type),
        _ => None,
    }
}

/// Name of the stand-in tensor for values an earlier problem left unknown.
const POISON: &str = "\u{0}poisoned";

/// The translation context: the graph so far and ONNX names in scope.
pub(super) struct Cx {
    /// The graph being built.
    pub g: Graph,
    names: HashMap<String, TensorId>,
    problems: Vec<Problem>,
    /// What was changed on the way.
    pub notes: Vec<String>,
    /// Default-domain opset.
    pub opset: i64,
    /// What the quantized-graph lowering needs from the translation.
    pub q: qdq::State,
}

/// One ONNX node being translated.
pub(super) struct OnnxNode<'a> {
    /// Node name (`<op>_<index>` when the model leaves it empty).
    pub name: String,
    /// Op type.
    pub op: &'a str,
    /// The node itself.
    pub proto: &'a pb::NodeProto,
    /// Inputs (`None` for an absent optional input).
    pub ins: Vec<Option<TensorId>>,
    /// Attributes.
    pub attrs: Attrs<'a>,
}

impl OnnxNode<'_> {
    /// Required input `k`.
    pub fn input(&self, k: usize, what: &str) -> R<TensorId> {
        self.opt_input(k)
            .ok_or((ProblemKind::Shape, format!("missing input {k} ({what})")))
    }

    /// Optional input `k`.
    pub fn opt_input(&self, k: usize) -> Option<TensorId> {
        self.ins.get(k).copied().flatten()
    }

    /// Refuses a node whose outputs past the first are used.
    pub fn only_first_output(&self) -> R<()> {
        if self.proto.output.iter().skip(1).any(|o| !o.is_empty()) {
            return unsupported("only the first output is supported (the others must be unused)");
        }
        Ok(())
    }
}

/// The message for a tensor larger than the format can address.
pub(super) fn too_large(what: &str, dims: &[usize], dtype: DType) -> String {
    let bytes = checked_len(dims).and_then(|n| n.checked_mul(dtype.size()));
    format!(
        "{what} of shape {dims:?} would need {} but the model format addresses at most 4 GiB (u32 offsets)",
        match bytes {
            Some(b) => format!("{b} bytes"),
            None => "more bytes than fit in 64 bits".into(),
        }
    )
}

/// True if a tensor of `dims` and `dtype` fits the format: every dimension and the
/// byte size (rounded up to the arena alignment) addressable by u32 offsets.
pub(super) fn fits_format(dims: &[usize], dtype: DType) -> bool {
    checked_len(dims)
        .and_then(|n| n.checked_mul(dtype.size()))
        .is_some_and(|b| b <= super::plan::MAX_ARENA_BYTES)
}

impl Cx {
    fn finish(self, producer: String, input_shapes: Vec<Vec<usize>>) -> Imported {
        Imported {
            graph: self.g,
            problems: self.problems,
            notes: self.notes,
            format: "onnx",
            opset: self.opset,
            producer,
            input_shapes,
        }
    }

    fn poisoned_name(&mut self, name: &str) {
        let id = self.g.add_tensor(Tensor {
            name: POISON.into(),
            ..Default::default()
        });
        self.names.insert(name.to_string(), id);
    }

    /// The shape and element type of graph input `input`.
    fn graph_input(
        &mut self,
        input: &pb::ValueInfoProto,
        fixed: &HashMap<String, Vec<usize>>,
    ) -> Option<(Vec<usize>, DType)> {
        let tensor_type = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(pb::type_proto::Value::TensorType(t)) => t,
            _ => {
                self.problems.push(Problem::input(
                    &input.name,
                    ProblemKind::Dtype,
                    "is not a tensor",
                ));
                return None;
            }
        };
        let dtype = match tensor_type.elem_type {
            FLOAT => DType::F32,
            // Quantized models exported from TFLite keep int8 inputs; their scale and
            // zero point come from the DequantizeLinear that reads them.
            INT8 => DType::I8,
            other => {
                let hint = if other == UINT8 {
                    " (quantize the model with int8 activations: `activation_type=QuantType.QInt8`)"
                } else {
                    ""
                };
                self.problems.push(Problem::input(
                    &input.name,
                    ProblemKind::Dtype,
                    &format!(
                        "has element type {}; only float32 and int8 inputs are supported{hint}",
                        dtype_name(other)
                    ),
                ));
                return None;
            }
        };
        let dims = match fixed.get(&input.name) {
            Some(dims) => {
                if dims.contains(&0) {
                    self.problems.push(Problem::input(
                        &input.name,
                        ProblemKind::Shape,
                        &format!(
                            "the `--input-shape` {dims:?} has a zero dimension; every dimension must be at least 1"
                        ),
                    ));
                    return None;
                }
                dims.clone()
            }
            None => self.declared_dims(input, tensor_type)?,
        };
        if !fits_format(&dims, dtype) {
            self.problems.push(Problem::input(
                &input.name,
                ProblemKind::Limit,
                &format!(
                    "{}; pass a smaller `--input-shape {}=…`",
                    too_large("the input", &dims, dtype),
                    input.name
                ),
            ));
            return None;
        }
        Some((dims, dtype))
    }

    /// The declared static shape of a graph input; dynamic dims other than the
    /// batch are problems.
    fn declared_dims(
        &mut self,
        input: &pb::ValueInfoProto,
        tensor_type: &pb::type_proto::Tensor,
    ) -> Option<Vec<usize>> {
        use pb::tensor_shape_proto::dimension::Value;
        let Some(shape) = &tensor_type.shape else {
            self.problems.push(Problem::input(
                &input.name,
                ProblemKind::DynamicDim,
                &format!(
                    "has no shape; pass `--input-shape {}=D0,D1,...`",
                    input.name
                ),
            ));
            return None;
        };
        let mut dims = vec![];
        let mut dynamic = vec![];
        for (axis, d) in shape.dim.iter().enumerate() {
            match &d.value {
                Some(Value::DimValue(v)) if *v > 0 => dims.push(*v as usize),
                other => {
                    let label = match other {
                        Some(Value::DimParam(p)) if !p.is_empty() => p.clone(),
                        _ => "?".to_string(),
                    };
                    if axis == 0 {
                        self.notes.push(format!(
                            "dynamic batch dimension `{label}` of input `{}` fixed to 1",
                            input.name
                        ));
                        dims.push(1);
                    } else {
                        dynamic.push((axis, label));
                        dims.push(0);
                    }
                }
            }
        }
        if !dynamic.is_empty() {
            let example: Vec<String> = dims
                .iter()
                .map(|d| {
                    if *d == 0 {
                        "N".to_string()
                    } else {
                        d.to_string()
                    }
                })
                .collect();
            self.problems.push(Problem::input(
                &input.name,
                ProblemKind::DynamicDim,
                &format!(
                    "dynamic dimension{} {} of input `{}`; fix {} with `--input-shape {}={}` (replace N)",
                    if dynamic.len() > 1 { "s" } else { "" },
                    dynamic.iter().map(|(a, l)| format!("`{l}` (axis {a})")).collect::<Vec<_>>().join(", "),
                    input.name,
                    if dynamic.len() > 1 { "them" } else { "it" },
                    input.name,
                    example.join(",")
                ),
            ));
            return None;
        }
        Some(dims)
    }

    fn node(&mut self, index: usize, node: &pb::NodeProto) {
        let name = if node.name.is_empty() {
            format!("{}_{index}", node.op_type)
        } else {
            node.name.clone()
        };
        let mut ins = vec![];
        let mut poisoned = false;
        for input in &node.input {
            if input.is_empty() {
                ins.push(None);
                continue;
            }
            match self.names.get(input) {
                Some(&id) => {
                    poisoned |= self.g.tensors[id].name == POISON;
                    ins.push(Some(id));
                }
                None => {
                    self.problems.push(Problem {
                        node: name.clone(),
                        op: node.op_type.clone(),
                        kind: ProblemKind::Shape,
                        message: format!("reads `{input}`, which no earlier node produces"),
                    });
                    poisoned = true;
                    ins.push(None);
                }
            }
        }
        let def = domain_op_def(&node.domain, &node.op_type);
        let known_domain = matches!(node.domain.as_str(), "" | "ai.onnx" | MS_DOMAIN);
        let n = OnnxNode {
            name,
            op: &node.op_type,
            proto: node,
            ins,
            attrs: Attrs::of(node),
        };
        let result = if !known_domain {
            Err((
                ProblemKind::Operator,
                format!("operator domain `{}` is not supported", node.domain),
            ))
        } else if let Some(def) = def.filter(|_| !poisoned) {
            match n.attrs.unknown(def.attrs).as_slice() {
                [] => self
                    .int8_readable(&n)
                    .and_then(|()| (def.translate)(self, &n)),
                unknown => unsupported(format!(
                    "unknown attribute{} {}; {} takes {}",
                    if unknown.len() > 1 { "s" } else { "" },
                    unknown
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    def.op,
                    if def.attrs.is_empty() {
                        "no attributes".to_string()
                    } else {
                        def.attrs
                            .iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )),
            }
        } else if def.is_none() {
            Err((ProblemKind::Operator, "operator not supported".to_string()))
        } else {
            // Inputs unknown because of an earlier problem: the op itself is known,
            // so there is nothing more to report for this node.
            for out in &node.output {
                self.poisoned_name(out);
            }
            return;
        };
        if let Err((kind, message)) = result {
            self.problems.push(Problem {
                node: n.name,
                op: node.op_type.clone(),
                kind,
                message,
            });
            for out in &node.output {
                if !self.names.contains_key(out) {
                    self.poisoned_name(out);
                }
            }
        }
    }

    /// Refuses a node that computes on real values but reads a run-time int8
    /// tensor (only movers and quantized operators may).
    fn int8_readable(&self, n: &OnnxNode<'_>) -> R<()> {
        if INT8_READERS.contains(&n.op) {
            return Ok(());
        }
        for (k, id) in n.ins.iter().enumerate() {
            let Some(id) = *id else { continue };
            let t = self.t(id);
            if !t.is_const() && t.dtype != DType::F32 {
                return Err((
                    ProblemKind::Dtype,
                    format!(
                        "input {k} `{}` is a run-time {} tensor; {} computes on real values, so it needs a `DequantizeLinear` in front (or a quantized operator instead)",
                        n.proto.input[k],
                        t.dtype.name(),
                        n.op
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Tensor `id`.
    pub fn t(&self, id: TensorId) -> &Tensor {
        &self.g.tensors[id]
    }

    /// The values of a constant integer tensor (an f32 constant holding whole
    /// numbers counts too: some exporters store shapes as floats).
    pub fn const_ints(&self, id: TensorId, what: &str) -> R<Vec<i64>> {
        let t = self.t(id);
        if let Some(v) = t.ints() {
            return Ok(v);
        }
        if let Some(v) = t.f32s()
            && v.iter().all(|x| x.fract() == 0.0)
        {
            return Ok(v.iter().map(|&x| x as i64).collect());
        }
        unsupported(format!(
            "`{what}` must be a constant integer tensor (it is computed at run time)"
        ))
    }

    /// Optional constant scalar input `k`, as f32.
    pub fn opt_const_f32(&self, n: &OnnxNode<'_>, k: usize, what: &str) -> R<Option<f32>> {
        let Some(id) = n.opt_input(k) else {
            return Ok(None);
        };
        match &self.t(id).data {
            Some(d) if d.len() == 1 => Ok(Some(d.to_f32()[0])),
            _ => unsupported(format!("`{what}` must be a constant scalar")),
        }
    }

    /// Defines output `k` of `n` as `t` (named after the output), after checking that
    /// its shape fits the format.
    pub fn define(&mut self, n: &OnnxNode<'_>, k: usize, t: Tensor) -> R<TensorId> {
        self.check_fits(n, k, &t.dims, t.dtype)?;
        let name = n.proto.output.get(k).cloned().unwrap_or_default();
        let id = self.g.add_tensor(Tensor {
            name: name.clone(),
            ..t
        });
        self.names.insert(name, id);
        Ok(id)
    }

    /// Refuses output `k` of `n` if a tensor of `dims` does not fit the format.
    pub fn check_fits(&self, n: &OnnxNode<'_>, k: usize, dims: &[usize], dtype: DType) -> R<()> {
        if fits_format(dims, dtype) {
            return Ok(());
        }
        let name = n.proto.output.get(k).map(String::as_str).unwrap_or("");
        Err((
            ProblemKind::Limit,
            format!(
                "{}; use a smaller input shape",
                too_large(&format!("output `{name}`"), dims, dtype)
            ),
        ))
    }

    /// Output `k` of `n` is the existing tensor `to` (a no-op node).
    pub fn alias(&mut self, n: &OnnxNode<'_>, k: usize, to: TensorId) {
        if let Some(name) = n.proto.output.get(k) {
            self.names.insert(name.clone(), to);
        }
    }

    /// Adds a runtime node for `n` whose f32 output has shape `dims`.
    pub fn emit(
        &mut self,
        n: &OnnxNode<'_>,
        op: Op,
        inputs: Vec<Option<TensorId>>,
        dims: Vec<usize>,
    ) -> R<TensorId> {
        self.emit_q(n, op, inputs, dims, DType::F32, None)
    }

    /// Adds a runtime node for `n` whose output has the element type and
    /// quantization of tensor `like` (data movers: an int8 input stays int8).
    pub fn emit_like(
        &mut self,
        n: &OnnxNode<'_>,
        op: Op,
        inputs: Vec<Option<TensorId>>,
        dims: Vec<usize>,
        like: TensorId,
    ) -> R<TensorId> {
        let (dtype, quant) = (self.t(like).dtype, self.t(like).quant.clone());
        let out = self.emit_q(n, op, inputs, dims, dtype, quant)?;
        self.q.inherit_u8(like, out);
        Ok(out)
    }

    /// Adds a runtime node for `n` with an output of `dtype` and `quant`.
    pub fn emit_q(
        &mut self,
        n: &OnnxNode<'_>,
        op: Op,
        inputs: Vec<Option<TensorId>>,
        dims: Vec<usize>,
        dtype: DType,
        quant: Option<Quant>,
    ) -> R<TensorId> {
        let out = self.define(
            n,
            0,
            Tensor {
                quant,
                ..Tensor::activation("", dims, dtype)
            },
        )?;
        self.g.nodes.push(Node {
            name: n.name.clone(),
            op,
            inputs,
            output: out,
        });
        Ok(out)
    }

    /// A constant used where the runtime needs an arena tensor gets a Copy node.
    pub fn materialize(&mut self, n: &OnnxNode<'_>, c: TensorId) -> TensorId {
        let name = format!("{}.const", n.name);
        let t = self.t(c);
        let out = self
            .g
            .add_tensor(Tensor::activation(name.clone(), t.dims.clone(), t.dtype));
        self.g.nodes.push(Node {
            name,
            op: Op::Copy,
            inputs: vec![Some(c)],
            output: out,
        });
        out
    }
}

/// Axis `ax` (negative counts from the end) of a rank-`rank` tensor.
pub(super) fn norm_axis(ax: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    let v = if ax < 0 { ax + r } else { ax };
    if v < 0 || v >= r {
        return shape_err(format!("axis {ax} out of range for rank {rank}"));
    }
    Ok(v as usize)
}

/// As [`norm_axis`], but `rank` itself is allowed (Flatten's axis).
pub(super) fn norm_axis_incl(ax: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    let v = if ax < 0 { ax + r } else { ax };
    if v < 0 || v > r {
        return shape_err(format!("axis {ax} out of range for rank {rank}"));
    }
    Ok(v as usize)
}
