//! ONNX → IR: reads the protobuf (tract-onnx's `pb`), fixes static shapes, folds
//! constant subgraphs and translates each node, collecting every problem instead of
//! stopping at the first.

use std::collections::HashMap;

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::{BinOp, broadcast};
use medwasm::kernels::misc::PadMode;
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

use super::ir::{Graph, Node, Op, Tensor, TensorId, Window};
use super::{Problem, ProblemKind};

/// ONNX TensorProto data types we read.
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const INT32: i32 = 6;
const INT64: i32 = 7;
const DOUBLE: i32 = 11;

/// What translating the graph produced.
#[derive(Debug)]
pub struct Imported {
    /// The graph.
    pub graph: Graph,
    /// Everything unsupported, all at once.
    pub problems: Vec<Problem>,
    /// What was changed on the way.
    pub notes: Vec<String>,
    /// Default-domain opset.
    pub opset: i64,
    /// Input shapes used.
    pub input_shapes: Vec<Vec<usize>>,
}

/// Translates a parsed model. `fixed` holds `--input-shape` values by input name.
pub fn import(model: &pb::ModelProto, fixed: &HashMap<String, Vec<usize>>) -> Imported {
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
    };
    let Some(graph) = &model.graph else {
        cx.problems.push(Problem::model("the file has no graph"));
        return cx.finish(vec![]);
    };
    for init in &graph.initializer {
        match tensor_from_proto(init) {
            Ok(t) => {
                let id = cx.g.add_tensor(t);
                cx.names.insert(init.name.clone(), id);
            }
            Err(e) => cx.problems.push(Problem {
                node: init.name.clone(),
                op: "initializer".into(),
                kind: ProblemKind::Dtype,
                message: e,
            }),
        }
    }
    let mut input_shapes = vec![];
    for input in &graph.input {
        if cx.names.contains_key(&input.name) {
            continue; // an initializer listed as input (older exporters)
        }
        match cx.graph_input(input, fixed) {
            Some(dims) => {
                input_shapes.push(dims.clone());
                let id = cx.g.add_tensor(Tensor {
                    name: input.name.clone(),
                    dims,
                    ..Default::default()
                });
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
                cx.g.outputs.push(id)
            }
            Some(_) => {}
            None => cx.problems.push(Problem::model(&format!(
                "graph output `{}` is produced by no node",
                out.name
            ))),
        }
    }
    cx.finish(input_shapes)
}

const POISON: &str = "\u{0}poisoned";

struct Cx {
    g: Graph,
    names: HashMap<String, TensorId>,
    problems: Vec<Problem>,
    notes: Vec<String>,
    opset: i64,
}

/// Attributes of one node by name.
struct Attrs<'a>(HashMap<&'a str, &'a pb::AttributeProto>);

impl<'a> Attrs<'a> {
    fn int(&self, name: &str) -> Option<i64> {
        self.0
            .get(name)
            .filter(|a| a.r#type == AttributeType::Int as i32)
            .map(|a| a.i)
    }
    fn float(&self, name: &str) -> Option<f32> {
        self.0
            .get(name)
            .filter(|a| a.r#type == AttributeType::Float as i32)
            .map(|a| a.f)
    }
    fn ints(&self, name: &str) -> Option<&'a [i64]> {
        self.0
            .get(name)
            .filter(|a| a.r#type == AttributeType::Ints as i32)
            .map(|a| a.ints.as_slice())
    }
    fn string(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .filter(|a| a.r#type == AttributeType::String as i32)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }
    fn tensor(&self, name: &str) -> Option<&'a pb::TensorProto> {
        self.0.get(name).and_then(|a| a.t.as_ref())
    }
}

type R<T> = Result<T, (ProblemKind, String)>;

fn unsupported<T>(msg: impl Into<String>) -> R<T> {
    Err((ProblemKind::Attribute, msg.into()))
}

fn shape_err<T>(msg: impl Into<String>) -> R<T> {
    Err((ProblemKind::Shape, msg.into()))
}

impl Cx {
    fn finish(self, input_shapes: Vec<Vec<usize>>) -> Imported {
        Imported {
            graph: self.g,
            problems: self.problems,
            notes: self.notes,
            opset: self.opset,
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

    fn graph_input(
        &mut self,
        input: &pb::ValueInfoProto,
        fixed: &HashMap<String, Vec<usize>>,
    ) -> Option<Vec<usize>> {
        use pb::tensor_shape_proto::dimension::Value;
        let tensor_type = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(pb::type_proto::Value::TensorType(t)) => t,
            _ => {
                self.problems.push(Problem::input(
                    &input.name,
                    ProblemKind::Dtype,
                    "input is not a tensor",
                ));
                return None;
            }
        };
        if tensor_type.elem_type != FLOAT {
            self.problems.push(Problem::input(
                &input.name,
                ProblemKind::Dtype,
                &format!(
                    "input has element type {}; only float32 inputs are supported (int8 quantized models come later)",
                    dtype_name(tensor_type.elem_type)
                ),
            ));
            return None;
        }
        if let Some(dims) = fixed.get(&input.name) {
            return Some(dims.clone());
        }
        let Some(shape) = &tensor_type.shape else {
            self.problems.push(Problem::input(
                &input.name,
                ProblemKind::DynamicDim,
                &format!(
                    "input has no shape; pass `--input-shape {}=D0,D1,...`",
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
        let domain_ok = node.domain.is_empty() || node.domain == "ai.onnx";
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
        let attrs = Attrs(
            node.attribute
                .iter()
                .map(|a| (a.name.as_str(), a))
                .collect(),
        );
        let result = if !domain_ok {
            Err((
                ProblemKind::Operator,
                format!("operator domain `{}` is not supported", node.domain),
            ))
        } else if !super::support::is_supported(&node.op_type) {
            Err((ProblemKind::Operator, "operator not supported".to_string()))
        } else if poisoned {
            // Inputs unknown because of an earlier problem: the op itself is known,
            // so there is nothing more to report for this node.
            for out in &node.output {
                self.poisoned_name(out);
            }
            return;
        } else {
            self.translate(&name, &node.op_type, &ins, &attrs, node)
        };
        match result {
            Ok(()) => {}
            Err((kind, message)) => {
                self.problems.push(Problem {
                    node: name,
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
    }

    fn t(&self, id: TensorId) -> &Tensor {
        &self.g.tensors[id]
    }

    fn input(&self, ins: &[Option<TensorId>], k: usize, what: &str) -> R<TensorId> {
        ins.get(k)
            .copied()
            .flatten()
            .ok_or((ProblemKind::Shape, format!("missing input {k} ({what})")))
    }

    fn const_ints(&self, id: TensorId, what: &str) -> R<Vec<i64>> {
        let t = self.t(id);
        if let Some(v) = &t.ints {
            return Ok(v.clone());
        }
        if let Some(v) = &t.data
            && v.iter().all(|x| x.fract() == 0.0)
        {
            return Ok(v.iter().map(|&x| x as i64).collect());
        }
        unsupported(format!(
            "`{what}` must be a constant integer tensor (it is computed at run time)"
        ))
    }

    fn opt_const_f32(&self, ins: &[Option<TensorId>], k: usize, what: &str) -> R<Option<f32>> {
        let Some(id) = ins.get(k).copied().flatten() else {
            return Ok(None);
        };
        let t = self.t(id);
        match (&t.data, &t.ints) {
            (Some(v), _) if v.len() == 1 => Ok(Some(v[0])),
            (_, Some(v)) if v.len() == 1 => Ok(Some(v[0] as f32)),
            _ => unsupported(format!("`{what}` must be a constant scalar")),
        }
    }

    fn define(&mut self, node: &pb::NodeProto, k: usize, t: Tensor) -> TensorId {
        let name = node.output.get(k).cloned().unwrap_or_default();
        let id = self.g.add_tensor(Tensor {
            name: name.clone(),
            ..t
        });
        self.names.insert(name, id);
        id
    }

    fn alias(&mut self, node: &pb::NodeProto, k: usize, to: TensorId) {
        if let Some(name) = node.output.get(k) {
            self.names.insert(name.clone(), to);
        }
    }

    fn emit(
        &mut self,
        name: &str,
        node: &pb::NodeProto,
        op: Op,
        inputs: Vec<Option<TensorId>>,
        dims: Vec<usize>,
    ) -> TensorId {
        let out = self.define(
            node,
            0,
            Tensor {
                dims,
                ..Default::default()
            },
        );
        self.g.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
            output: out,
        });
        out
    }

    fn only_first_output(&self, node: &pb::NodeProto) -> R<()> {
        if node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return unsupported("only the first output is supported (the others must be unused)");
        }
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    fn translate(
        &mut self,
        name: &str,
        op: &str,
        ins: &[Option<TensorId>],
        a: &Attrs<'_>,
        node: &pb::NodeProto,
    ) -> R<()> {
        let x0 = || self.input(ins, 0, "X");
        match op {
            "Identity" | "Dropout" => {
                if op == "Dropout" {
                    self.only_first_output(node)?;
                    if a.int("training_mode").unwrap_or(0) != 0 {
                        return unsupported("`training_mode` must be 0");
                    }
                }
                let x = x0()?;
                self.alias(node, 0, x);
            }
            "Constant" => {
                let t = a.tensor("value").ok_or((
                    ProblemKind::Attribute,
                    "only the `value` attribute is supported".to_string(),
                ))?;
                let t = tensor_from_proto(t).map_err(|e| (ProblemKind::Dtype, e))?;
                self.define(node, 0, t);
            }
            "Shape" => {
                let x = x0()?;
                let dims: Vec<i64> = self.t(x).dims.iter().map(|&d| d as i64).collect();
                let (start, end) = (
                    a.int("start").unwrap_or(0),
                    a.int("end").unwrap_or(dims.len() as i64),
                );
                let r = dims.len() as i64;
                let norm = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let v = dims[norm(start)..norm(end).max(norm(start))].to_vec();
                self.define(
                    node,
                    0,
                    Tensor {
                        dims: vec![v.len()],
                        ints: Some(v),
                        ..Default::default()
                    },
                );
            }
            "Cast" => {
                let x = x0()?;
                let to = a.int("to").unwrap_or(0) as i32;
                let t = self.t(x).clone();
                if !t.is_const() {
                    if to == FLOAT && t.data.is_none() && t.ints.is_none() {
                        self.alias(node, 0, x);
                        return Ok(());
                    }
                    return unsupported(format!("Cast to {} at run time", dtype_name(to)));
                }
                let out = match to {
                    FLOAT | DOUBLE => Tensor {
                        dims: t.dims.clone(),
                        data: Some(as_f32(&t)),
                        ..Default::default()
                    },
                    INT32 | INT64 => Tensor {
                        dims: t.dims.clone(),
                        ints: Some(as_i64(&t)),
                        ..Default::default()
                    },
                    other => return unsupported(format!("Cast to {}", dtype_name(other))),
                };
                self.define(node, 0, out);
            }
            "DequantizeLinear" => {
                let x = x0()?;
                let scale = self.input(ins, 1, "x_scale")?;
                let t = self.t(x).clone();
                let (Some(q), Some(s)) = (t.ints.clone(), self.t(scale).data.clone()) else {
                    return unsupported(
                        "DequantizeLinear of a run-time tensor (int8 execution comes later); only constant weights are dequantized at conversion",
                    );
                };
                let zp = match ins.get(2).copied().flatten() {
                    Some(z) => self.const_ints(z, "x_zero_point")?,
                    None => vec![0],
                };
                let axis = norm_axis(a.int("axis").unwrap_or(1), t.dims.len())?;
                let out: Vec<f32> = if s.len() == 1 {
                    q.iter().map(|&v| (v - zp[0]) as f32 * s[0]).collect()
                } else {
                    let inner: usize = t.dims[axis + 1..].iter().product();
                    let ch = t.dims[axis];
                    if s.len() != ch || (zp.len() != 1 && zp.len() != ch) {
                        return shape_err(
                            "per-axis scale/zero point length does not match the axis",
                        );
                    }
                    q.iter()
                        .enumerate()
                        .map(|(i, &v)| {
                            let c = (i / inner) % ch;
                            let z = if zp.len() == 1 { zp[0] } else { zp[c] };
                            (v - z) as f32 * s[c]
                        })
                        .collect()
                };
                self.notes.push(format!(
                    "constant weights `{}` dequantized to float32 at conversion",
                    node.input[0]
                ));
                self.define(
                    node,
                    0,
                    Tensor {
                        dims: t.dims,
                        data: Some(out),
                        ..Default::default()
                    },
                );
            }
            "Gemm" => {
                let (ai, bi) = (x0()?, self.input(ins, 1, "B")?);
                let (ta, tb) = (
                    a.int("transA").unwrap_or(0) != 0,
                    a.int("transB").unwrap_or(0) != 0,
                );
                let (alpha, beta) = (
                    a.float("alpha").unwrap_or(1.0),
                    a.float("beta").unwrap_or(1.0),
                );
                if ta {
                    return unsupported("`transA=1` is not supported; transpose A before the Gemm");
                }
                let at = self.t(ai).clone();
                let bt = self.t(bi).clone();
                if at.dims.len() != 2 || bt.dims.len() != 2 {
                    return shape_err(format!(
                        "Gemm needs 2-D A and B, got {:?} and {:?}",
                        at.dims, bt.dims
                    ));
                }
                let Some(bdata) = bt.data.clone() else {
                    return unsupported("Gemm with a non-constant B is not supported");
                };
                let (k, n) = if tb {
                    (bt.dims[1], bt.dims[0])
                } else {
                    (bt.dims[0], bt.dims[1])
                };
                if at.dims[1] != k {
                    return shape_err(format!("A is {:?} but B gives K = {k}", at.dims));
                }
                let m = at.dims[0];
                let mut w = vec![0f32; k * n];
                for kk in 0..k {
                    for nn in 0..n {
                        let v = if tb {
                            bdata[nn * k + kk]
                        } else {
                            bdata[kk * n + nn]
                        };
                        w[kk * n + nn] = alpha * v;
                    }
                }
                let wid = self.g.add_tensor(Tensor {
                    name: format!("{name}.B"),
                    dims: vec![k, n],
                    data: Some(w),
                    ..Default::default()
                });
                let bias = match ins.get(2).copied().flatten() {
                    Some(c) if beta != 0.0 => {
                        let ct = self.t(c).clone();
                        let Some(cd) = ct.data.clone() else {
                            return unsupported("Gemm with a non-constant C is not supported");
                        };
                        let per_col = match ct.dims.as_slice() {
                            [] | [1] | [1, 1] => vec![cd[0] * beta; n],
                            [nn] | [1, nn] if *nn == n => cd.iter().map(|v| v * beta).collect(),
                            _ if m == 1 && ct.len() == n => cd.iter().map(|v| v * beta).collect(),
                            d => {
                                return shape_err(format!(
                                    "bias C of shape {d:?} does not broadcast per column"
                                ));
                            }
                        };
                        Some(self.g.add_tensor(Tensor {
                            name: format!("{name}.C"),
                            dims: vec![n],
                            data: Some(per_col),
                            ..Default::default()
                        }))
                    }
                    _ => None,
                };
                let x = if at.is_const() {
                    self.materialize(name, ai)
                } else {
                    ai
                };
                self.emit(
                    name,
                    node,
                    Op::Gemm { act: Act::None },
                    vec![Some(x), Some(wid), bias],
                    vec![m, n],
                );
            }
            "MatMul" => {
                let (ai, bi) = (x0()?, self.input(ins, 1, "B")?);
                let at = self.t(ai).clone();
                let bt = self.t(bi).clone();
                if bt.data.is_none() {
                    return unsupported(
                        "MatMul with a non-constant second operand is not supported",
                    );
                }
                if bt.dims.len() != 2 {
                    return unsupported(format!(
                        "MatMul with a {}-D constant is not supported (2-D only)",
                        bt.dims.len()
                    ));
                }
                if at.dims.is_empty() || at.dims[at.dims.len() - 1] != bt.dims[0] {
                    return shape_err(format!(
                        "MatMul shapes {:?} and {:?} disagree",
                        at.dims, bt.dims
                    ));
                }
                let mut dims = at.dims.clone();
                let last = dims.len() - 1;
                dims[last] = bt.dims[1];
                let x = if at.is_const() {
                    self.materialize(name, ai)
                } else {
                    ai
                };
                self.emit(
                    name,
                    node,
                    Op::Gemm { act: Act::None },
                    vec![Some(x), Some(bi), None],
                    dims,
                );
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let (ai, bi) = (x0()?, self.input(ins, 1, "B")?);
                let op = match op {
                    "Add" => BinOp::Add,
                    "Sub" => BinOp::Sub,
                    "Mul" => BinOp::Mul,
                    _ => BinOp::Div,
                };
                let (at, bt) = (self.t(ai).clone(), self.t(bi).clone());
                let ad = medwasm::Dims::from_slice(&at.dims)
                    .ok_or((ProblemKind::Shape, "rank above 6".to_string()))?;
                let bd = medwasm::Dims::from_slice(&bt.dims)
                    .ok_or((ProblemKind::Shape, "rank above 6".to_string()))?;
                let Some(yd) = broadcast(&ad, &bd) else {
                    return shape_err(format!(
                        "shapes {:?} and {:?} do not broadcast",
                        at.dims, bt.dims
                    ));
                };
                if at.is_const() && bt.is_const() {
                    let out = fold_binary(op, &at, &bt, &yd);
                    self.define(node, 0, out);
                    return Ok(());
                }
                for t in [&at, &bt] {
                    if t.ints.is_some() {
                        return unsupported("integer arithmetic at run time is not supported");
                    }
                }
                self.emit(
                    name,
                    node,
                    Op::Binary { op, act: Act::None },
                    vec![Some(ai), Some(bi)],
                    yd.as_slice().to_vec(),
                );
            }
            "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Clip" => {
                let x = x0()?;
                let act = match op {
                    "Relu" => Act::Relu,
                    "LeakyRelu" => Act::LeakyRelu(a.float("alpha").unwrap_or(0.01)),
                    "Sigmoid" => Act::Sigmoid,
                    "Tanh" => Act::Tanh,
                    _ => {
                        let (lo, hi) = if self.opset < 11 {
                            (
                                a.float("min").unwrap_or(f32::NEG_INFINITY),
                                a.float("max").unwrap_or(f32::INFINITY),
                            )
                        } else {
                            (
                                self.opt_const_f32(ins, 1, "min")?
                                    .unwrap_or(f32::NEG_INFINITY),
                                self.opt_const_f32(ins, 2, "max")?.unwrap_or(f32::INFINITY),
                            )
                        };
                        if lo.is_nan() || hi.is_nan() || lo > hi {
                            return unsupported(format!(
                                "Clip bounds [{lo}, {hi}] are not a valid range"
                            ));
                        }
                        Act::Clip(lo, hi)
                    }
                };
                let dims = self.t(x).dims.clone();
                let x = if self.t(x).is_const() {
                    self.materialize(name, x)
                } else {
                    x
                };
                self.emit(name, node, Op::Act(act), vec![Some(x)], dims);
            }
            "Softmax" => {
                let x = x0()?;
                let r = self.t(x).dims.len();
                let (start, end) = if self.opset < 13 {
                    (norm_axis(a.int("axis").unwrap_or(1), r)?, r)
                } else {
                    let ax = norm_axis(a.int("axis").unwrap_or(-1), r)?;
                    (ax, ax + 1)
                };
                let dims = self.t(x).dims.clone();
                self.emit(name, node, Op::Softmax { start, end }, vec![Some(x)], dims);
            }
            "Conv" => {
                let (xi, wi) = (x0()?, self.input(ins, 1, "W")?);
                let (xt, wt) = (self.t(xi).clone(), self.t(wi).clone());
                if wt.data.is_none() {
                    return unsupported("Conv with non-constant weights is not supported");
                }
                let r = xt.dims.len();
                if r != 3 && r != 4 {
                    return unsupported(format!(
                        "{}-D convolution is not supported (1-D and 2-D only)",
                        r.saturating_sub(2)
                    ));
                }
                if wt.dims.len() != r {
                    return shape_err(format!(
                        "weights {:?} do not match input {:?}",
                        wt.dims, xt.dims
                    ));
                }
                let group = a.int("group").unwrap_or(1).max(1) as usize;
                let kernel_shape: Vec<usize> = wt.dims[2..].to_vec();
                if let Some(ks) = a.ints("kernel_shape")
                    && ks.iter().map(|&v| v as usize).collect::<Vec<_>>() != kernel_shape
                {
                    return shape_err("`kernel_shape` disagrees with the weights");
                }
                let (win, out_sp) = window(a, &xt.dims[2..], &kernel_shape, false)?;
                let c = xt.dims[1];
                let m = wt.dims[0];
                if c % group != 0 || m % group != 0 || wt.dims[1] != c / group {
                    return shape_err(format!(
                        "group {group} does not fit input channels {c} and weights {:?}",
                        wt.dims
                    ));
                }
                let bias = ins.get(2).copied().flatten();
                if let Some(b) = bias
                    && (self.t(b).data.is_none() || self.t(b).len() != m)
                {
                    return unsupported("Conv bias must be a constant of M elements");
                }
                let mut dims = vec![xt.dims[0], m];
                dims.extend(out_sp);
                self.emit(
                    name,
                    node,
                    Op::Conv {
                        win,
                        group,
                        act: Act::None,
                    },
                    vec![Some(xi), Some(wi), bias],
                    dims,
                );
            }
            "MaxPool" | "AveragePool" => {
                self.only_first_output(node)?;
                let x = x0()?;
                let xt = self.t(x).clone();
                let r = xt.dims.len();
                if r != 3 && r != 4 {
                    return unsupported(format!(
                        "{}-D pooling is not supported (1-D and 2-D only)",
                        r.saturating_sub(2)
                    ));
                }
                let ks: Vec<usize> = a
                    .ints("kernel_shape")
                    .ok_or((ProblemKind::Attribute, "missing `kernel_shape`".to_string()))?
                    .iter()
                    .map(|&v| v as usize)
                    .collect();
                if op == "MaxPool" && a.int("storage_order").unwrap_or(0) != 0 {
                    return unsupported("`storage_order=1` is not supported");
                }
                let ceil = a.int("ceil_mode").unwrap_or(0) != 0;
                let (win, out_sp) = window(a, &xt.dims[2..], &ks, ceil)?;
                let mut dims = xt.dims[..2].to_vec();
                dims.extend(out_sp);
                let count_include_pad = a.int("count_include_pad").unwrap_or(0) != 0;
                self.emit(
                    name,
                    node,
                    Op::Pool {
                        max: op == "MaxPool",
                        win,
                        count_include_pad,
                    },
                    vec![Some(x)],
                    dims,
                );
            }
            "GlobalAveragePool" => {
                let x = x0()?;
                let dims = self.t(x).dims.clone();
                if dims.len() < 3 {
                    return shape_err("GlobalAveragePool needs a spatial input");
                }
                let mask = (2..dims.len()).fold(0u32, |m, d| m | (1 << d));
                let mut out = dims.clone();
                out[2..].iter_mut().for_each(|d| *d = 1);
                self.emit(name, node, Op::ReduceMean { mask }, vec![Some(x)], out);
            }
            "ReduceMean" => {
                let x = x0()?;
                let dims = self.t(x).dims.clone();
                let axes: Option<Vec<i64>> = if self.opset >= 18 {
                    match ins.get(1).copied().flatten() {
                        Some(t) => Some(self.const_ints(t, "axes")?),
                        None => None,
                    }
                } else {
                    a.ints("axes").map(|v| v.to_vec())
                };
                let keep = a.int("keepdims").unwrap_or(1) != 0;
                let axes = match axes {
                    Some(v) if !v.is_empty() => v,
                    _ if a.int("noop_with_empty_axes").unwrap_or(0) != 0 => {
                        self.alias(node, 0, x);
                        return Ok(());
                    }
                    _ => (0..dims.len() as i64).collect(),
                };
                let mut mask = 0u32;
                for ax in axes {
                    mask |= 1 << norm_axis(ax, dims.len())?;
                }
                let out: Vec<usize> = dims
                    .iter()
                    .enumerate()
                    .filter_map(|(d, &v)| {
                        if mask & (1 << d) != 0 {
                            keep.then_some(1)
                        } else {
                            Some(v)
                        }
                    })
                    .collect();
                self.emit(name, node, Op::ReduceMean { mask }, vec![Some(x)], out);
            }
            "BatchNormalization" => {
                self.only_first_output(node)?;
                if a.int("training_mode").unwrap_or(0) != 0 {
                    return unsupported("`training_mode=1` is not supported (inference only)");
                }
                let x = x0()?;
                let eps = a.float("epsilon").unwrap_or(1e-5);
                let mut vals = vec![];
                for (k, what) in [(1, "scale"), (2, "B"), (3, "mean"), (4, "var")] {
                    let id = self.input(ins, k, what)?;
                    match &self.t(id).data {
                        Some(v) => vals.push(v.clone()),
                        None => return unsupported(format!("`{what}` must be constant")),
                    }
                }
                let dims = self.t(x).dims.clone();
                let c = *dims.get(1).unwrap_or(&1);
                if vals.iter().any(|v| v.len() != c) {
                    return shape_err(format!("parameters do not have {c} channels"));
                }
                let scale: Vec<f32> = (0..c)
                    .map(|i| vals[0][i] / (vals[3][i] + eps).sqrt())
                    .collect();
                let shift: Vec<f32> = (0..c).map(|i| vals[1][i] - vals[2][i] * scale[i]).collect();
                self.emit(
                    name,
                    node,
                    Op::ChannelAffine { scale, shift },
                    vec![Some(x)],
                    dims,
                );
            }
            "Flatten" | "Reshape" | "Squeeze" | "Unsqueeze" => {
                let x = x0()?;
                let dims = self.t(x).dims.clone();
                let out = match op {
                    "Flatten" => {
                        let ax = norm_axis_incl(a.int("axis").unwrap_or(1), dims.len())?;
                        vec![dims[..ax].iter().product(), dims[ax..].iter().product()]
                    }
                    "Reshape" => {
                        let s = self.input(ins, 1, "shape")?;
                        let shape = self.const_ints(s, "shape")?;
                        reshape_dims(&dims, &shape, a.int("allowzero").unwrap_or(0) != 0)?
                    }
                    "Squeeze" => {
                        let axes = self.axes_arg(ins, a, 13)?;
                        match axes {
                            None => dims.iter().copied().filter(|&d| d != 1).collect(),
                            Some(axes) => {
                                let axes = axes
                                    .iter()
                                    .map(|&v| norm_axis(v, dims.len()))
                                    .collect::<R<Vec<_>>>()?;
                                if axes.iter().any(|&ax| dims[ax] != 1) {
                                    return shape_err("squeezing an axis whose size is not 1");
                                }
                                dims.iter()
                                    .enumerate()
                                    .filter(|(d, _)| !axes.contains(d))
                                    .map(|(_, &v)| v)
                                    .collect()
                            }
                        }
                    }
                    _ => {
                        let axes = self
                            .axes_arg(ins, a, 13)?
                            .ok_or((ProblemKind::Attribute, "missing `axes`".to_string()))?;
                        let r = dims.len() + axes.len();
                        let axes = axes
                            .iter()
                            .map(|&v| norm_axis(v, r))
                            .collect::<R<Vec<_>>>()?;
                        let mut it = dims.iter();
                        (0..r)
                            .map(|d| {
                                if axes.contains(&d) {
                                    1
                                } else {
                                    *it.next().unwrap_or(&1)
                                }
                            })
                            .collect()
                    }
                };
                if out.len() > 6 {
                    return unsupported("rank above 6");
                }
                if out.iter().product::<usize>() != dims.iter().product::<usize>() {
                    return shape_err(format!("cannot reshape {dims:?} to {out:?}"));
                }
                let t = self.t(x).clone();
                if t.is_const() {
                    self.define(node, 0, Tensor { dims: out, ..t });
                } else {
                    self.emit(name, node, Op::Copy, vec![Some(x)], out);
                }
            }
            "Transpose" => {
                let x = x0()?;
                let t = self.t(x).clone();
                let r = t.dims.len();
                let perm: Vec<usize> = match a.ints("perm") {
                    Some(p) => p.iter().map(|&v| norm_axis(v, r)).collect::<R<_>>()?,
                    None => (0..r).rev().collect(),
                };
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..r).collect::<Vec<_>>() {
                    return shape_err(format!("`perm` {perm:?} is not a permutation"));
                }
                let dims: Vec<usize> = perm.iter().map(|&p| t.dims[p]).collect();
                if let Some(data) = &t.data {
                    let xd = medwasm::Dims::from_slice(&t.dims)
                        .ok_or((ProblemKind::Shape, "rank above 6".to_string()))?;
                    let yd = medwasm::Dims::from_slice(&dims)
                        .ok_or((ProblemKind::Shape, "rank above 6".to_string()))?;
                    let mut out = vec![0f32; data.len()];
                    medwasm::kernels::misc::transpose(data, &xd, &perm, &mut out, &yd);
                    self.define(
                        node,
                        0,
                        Tensor {
                            dims,
                            data: Some(out),
                            ..Default::default()
                        },
                    );
                } else if perm.iter().enumerate().all(|(i, &p)| i == p) {
                    self.alias(node, 0, x);
                } else {
                    self.emit(name, node, Op::Transpose { perm }, vec![Some(x)], dims);
                }
            }
            "Concat" => {
                let r = ins
                    .iter()
                    .flatten()
                    .next()
                    .map(|&i| self.t(i).dims.len())
                    .unwrap_or(0);
                let axis = norm_axis(
                    a.int("axis")
                        .ok_or((ProblemKind::Attribute, "missing `axis`".to_string()))?,
                    r,
                )?;
                let parts: Vec<TensorId> = ins.iter().flatten().copied().collect();
                if parts.len() > medwasm::format::MAX_NODE_INPUTS {
                    return unsupported(format!("Concat of {} inputs (at most 16)", parts.len()));
                }
                let mut dims = self.t(parts[0]).dims.clone();
                dims[axis] = 0;
                for &p in &parts {
                    let d = &self.t(p).dims;
                    if d.len() != r || (0..r).any(|i| i != axis && d[i] != dims[i]) {
                        return shape_err(format!(
                            "Concat inputs {:?} disagree off axis {axis}",
                            d
                        ));
                    }
                    dims[axis] += d[axis];
                }
                if parts.iter().all(|&p| self.t(p).ints.is_some()) && r == 1 {
                    let v: Vec<i64> = parts
                        .iter()
                        .flat_map(|&p| self.t(p).ints.clone().unwrap_or_default())
                        .collect();
                    self.define(
                        node,
                        0,
                        Tensor {
                            dims,
                            ints: Some(v),
                            ..Default::default()
                        },
                    );
                    return Ok(());
                }
                let inputs = parts
                    .iter()
                    .map(|&p| {
                        Some(if self.t(p).data.is_some() {
                            self.materialize(name, p)
                        } else {
                            p
                        })
                    })
                    .collect();
                self.emit(name, node, Op::Concat { axis }, inputs, dims);
            }
            "Gather" => {
                let (x, idx) = (x0()?, self.input(ins, 1, "indices")?);
                let (xt, it) = (self.t(x).clone(), self.t(idx).clone());
                let (Some(data), Some(ix)) = (xt.ints.clone(), it.ints.clone()) else {
                    return unsupported(
                        "Gather is supported only on constant integer tensors (shape arithmetic)",
                    );
                };
                if xt.dims.len() != 1 || a.int("axis").unwrap_or(0) != 0 {
                    return unsupported("Gather only on 1-D constants along axis 0");
                }
                let n = data.len() as i64;
                let mut out = vec![];
                for &i in &ix {
                    let j = if i < 0 { i + n } else { i };
                    if j < 0 || j >= n {
                        return shape_err(format!("index {i} out of range for {n} elements"));
                    }
                    out.push(data[j as usize]);
                }
                self.define(
                    node,
                    0,
                    Tensor {
                        dims: it.dims,
                        ints: Some(out),
                        ..Default::default()
                    },
                );
            }
            "Pad" => {
                let x = x0()?;
                let dims = self.t(x).dims.clone();
                let r = dims.len();
                let mode = a.string("mode").unwrap_or_else(|| "constant".into());
                let (pads, value) = if self.opset < 11 {
                    let p = a
                        .ints("pads")
                        .or_else(|| a.ints("paddings"))
                        .ok_or((ProblemKind::Attribute, "missing `pads`".to_string()))?
                        .to_vec();
                    (p, a.float("value").unwrap_or(0.0))
                } else {
                    if ins.get(3).copied().flatten().is_some() {
                        return unsupported("the `axes` input is not supported");
                    }
                    let p = self.input(ins, 1, "pads")?;
                    (
                        self.const_ints(p, "pads")?,
                        self.opt_const_f32(ins, 2, "constant_value")?.unwrap_or(0.0),
                    )
                };
                if pads.len() != 2 * r || pads.iter().any(|&p| p < 0) {
                    return unsupported(format!(
                        "pads {pads:?} must be {} non-negative values",
                        2 * r
                    ));
                }
                let mode = match mode.as_str() {
                    "constant" => PadMode::Constant(value),
                    "reflect" => PadMode::Reflect,
                    "edge" => PadMode::Edge,
                    m => {
                        return unsupported(format!(
                            "mode `{m}` is not supported (constant, reflect, edge)"
                        ));
                    }
                };
                let begin: Vec<usize> = pads[..r].iter().map(|&v| v as usize).collect();
                let end: Vec<usize> = pads[r..].iter().map(|&v| v as usize).collect();
                if mode == PadMode::Reflect
                    && (0..r).any(|d| begin[d] >= dims[d] || end[d] >= dims[d])
                {
                    return unsupported("reflect padding must be narrower than the input");
                }
                let out: Vec<usize> = (0..r).map(|d| dims[d] + begin[d] + end[d]).collect();
                self.emit(name, node, Op::Pad { mode, begin, end }, vec![Some(x)], out);
            }
            other => {
                return Err((
                    ProblemKind::Operator,
                    format!("operator `{other}` not supported"),
                ));
            }
        }
        Ok(())
    }

    /// Squeeze/Unsqueeze axes: an attribute before `input_since`, an input from it.
    fn axes_arg(
        &self,
        ins: &[Option<TensorId>],
        a: &Attrs<'_>,
        input_since: i64,
    ) -> R<Option<Vec<i64>>> {
        if self.opset >= input_since {
            match ins.get(1).copied().flatten() {
                Some(t) => Ok(Some(self.const_ints(t, "axes")?)),
                None => Ok(None),
            }
        } else {
            Ok(a.ints("axes").map(|v| v.to_vec()))
        }
    }

    /// A constant used where the runtime needs an arena tensor gets a Copy node.
    fn materialize(&mut self, name: &str, c: TensorId) -> TensorId {
        let dims = self.t(c).dims.clone();
        let out = self.g.add_tensor(Tensor {
            name: format!("{name}.const"),
            dims,
            ..Default::default()
        });
        self.g.nodes.push(Node {
            name: format!("{name}.const"),
            op: Op::Copy,
            inputs: vec![Some(c)],
            output: out,
        });
        out
    }
}

fn norm_axis(ax: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    let v = if ax < 0 { ax + r } else { ax };
    if v < 0 || v >= r {
        return shape_err(format!("axis {ax} out of range for rank {rank}"));
    }
    Ok(v as usize)
}

fn norm_axis_incl(ax: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    let v = if ax < 0 { ax + r } else { ax };
    if v < 0 || v > r {
        return shape_err(format!("axis {ax} out of range for rank {rank}"));
    }
    Ok(v as usize)
}

fn reshape_dims(dims: &[usize], shape: &[i64], allowzero: bool) -> R<Vec<usize>> {
    let total: usize = dims.iter().product();
    let mut out = vec![];
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*dims.get(i).ok_or((
                ProblemKind::Shape,
                "0 in shape past the input rank".to_string(),
            ))?),
            s if s > 0 => out.push(s as usize),
            _ => return shape_err(format!("reshape target {shape:?} is not supported")),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return shape_err(format!("cannot infer -1 in {shape:?} for {total} elements"));
        }
        out[i] = total / known;
    }
    Ok(out)
}

/// Window geometry from Conv/pool attributes; returns the output spatial dims.
fn window(
    a: &Attrs<'_>,
    spatial: &[usize],
    kernel: &[usize],
    ceil: bool,
) -> R<(Window, Vec<usize>)> {
    let n = spatial.len();
    if kernel.len() != n || n == 0 || n > 2 {
        return shape_err(format!(
            "kernel {kernel:?} does not fit spatial dims {spatial:?}"
        ));
    }
    let get = |name: &str, default: usize| -> R<Vec<usize>> {
        match a.ints(name) {
            Some(v) if v.len() == n && v.iter().all(|&x| x >= 1) => {
                Ok(v.iter().map(|&x| x as usize).collect())
            }
            Some(v) => unsupported(format!("`{name}` {v:?} must be {n} positive values")),
            None => Ok(vec![default; n]),
        }
    };
    let strides = get("strides", 1)?;
    let dil = get("dilations", 1)?;
    let auto_pad = a.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
    let mut begin = vec![0usize; n];
    let mut end = vec![0usize; n];
    let mut out = vec![0usize; n];
    for d in 0..n {
        let span = (kernel[d] - 1) * dil[d] + 1;
        match auto_pad.as_str() {
            "NOTSET" => {
                if let Some(p) = a.ints("pads") {
                    if p.len() != 2 * n || p.iter().any(|&v| v < 0) {
                        return unsupported(format!(
                            "`pads` {p:?} must be {} non-negative values",
                            2 * n
                        ));
                    }
                    begin[d] = p[d] as usize;
                    end[d] = p[n + d] as usize;
                }
                let padded = spatial[d] + begin[d] + end[d];
                if padded < span {
                    return shape_err("the kernel is larger than the padded input");
                }
                out[d] = if ceil {
                    let mut o = (padded - span).div_ceil(strides[d]) + 1;
                    if (o - 1) * strides[d] >= spatial[d] + begin[d] {
                        o -= 1;
                    }
                    o
                } else {
                    (padded - span) / strides[d] + 1
                };
            }
            "VALID" => {
                if spatial[d] < span {
                    return shape_err("the kernel is larger than the input");
                }
                out[d] = (spatial[d] - span) / strides[d] + 1;
            }
            "SAME_UPPER" | "SAME_LOWER" => {
                out[d] = spatial[d].div_ceil(strides[d]);
                let total = ((out[d] - 1) * strides[d] + span).saturating_sub(spatial[d]);
                let small = total / 2;
                (begin[d], end[d]) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
            }
            other => return unsupported(format!("`auto_pad={other}` is not supported")),
        }
    }
    // 1-D runs as 2-D with height 1.
    let (k2, s2, d2, pads) = if n == 1 {
        (
            [1, kernel[0]],
            [1, strides[0]],
            [1, dil[0]],
            [0, begin[0], 0, end[0]],
        )
    } else {
        (
            [kernel[0], kernel[1]],
            [strides[0], strides[1]],
            [dil[0], dil[1]],
            [begin[0], begin[1], end[0], end[1]],
        )
    };
    Ok((
        Window {
            kernel: k2,
            strides: s2,
            dilations: d2,
            pads,
        },
        out,
    ))
}

fn fold_binary(op: BinOp, a: &Tensor, b: &Tensor, yd: &medwasm::Dims) -> Tensor {
    let ad = medwasm::Dims::from_slice(&a.dims).unwrap_or(medwasm::Dims::scalar());
    let bd = medwasm::Dims::from_slice(&b.dims).unwrap_or(medwasm::Dims::scalar());
    let dims = yd.as_slice().to_vec();
    if a.ints.is_some() && b.ints.is_some() {
        // Shape arithmetic: evaluate in f64 through the float kernel would lose
        // nothing for the small integers shapes hold, but keep integers exact.
        let (ai, bi) = (as_i64(a), as_i64(b));
        let n = yd.elements();
        let get = |v: &[i64], i: usize| if v.len() == 1 { v[0] } else { v[i % v.len()] };
        let out = (0..n)
            .map(|i| {
                let (x, y) = (get(&ai, i), get(&bi, i));
                match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    BinOp::Div => {
                        if y == 0 {
                            0
                        } else {
                            x / y
                        }
                    }
                }
            })
            .collect();
        return Tensor {
            dims,
            ints: Some(out),
            ..Default::default()
        };
    }
    let mut out = vec![0f32; yd.elements()];
    medwasm::kernels::binary::binary(op, &as_f32(a), &ad, &as_f32(b), &bd, &mut out, yd);
    Tensor {
        dims,
        data: Some(out),
        ..Default::default()
    }
}

fn as_f32(t: &Tensor) -> Vec<f32> {
    t.data.clone().unwrap_or_else(|| {
        t.ints
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|&v| v as f32)
            .collect()
    })
}

fn as_i64(t: &Tensor) -> Vec<i64> {
    t.ints.clone().unwrap_or_else(|| {
        t.data
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|&v| v as i64)
            .collect()
    })
}

fn dtype_name(t: i32) -> String {
    match t {
        FLOAT => "float32".into(),
        UINT8 => "uint8".into(),
        INT8 => "int8".into(),
        INT32 => "int32".into(),
        INT64 => "int64".into(),
        DOUBLE => "float64".into(),
        10 => "float16".into(),
        9 => "bool".into(),
        other => format!("type {other}"),
    }
}

/// Reads an initializer or Constant value into a [`Tensor`].
fn tensor_from_proto(t: &pb::TensorProto) -> Result<Tensor, String> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err("weights stored in an external file are not supported; save the model with the weights inside (onnx.save(model, path, save_as_external_data=False))".into());
    }
    let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    let n: usize = dims.iter().product();
    let raw = &t.raw_data;
    let mut out = Tensor {
        name: t.name.clone(),
        dims,
        ..Default::default()
    };
    let check = |len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(format!(
                "`{}` holds {len} values but its shape needs {n}",
                t.name
            ))
        }
    };
    match t.data_type {
        FLOAT => {
            let v: Vec<f32> = if raw.is_empty() {
                t.float_data.clone()
            } else {
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            check(v.len())?;
            out.data = Some(v);
        }
        DOUBLE => {
            let v: Vec<f32> = if raw.is_empty() {
                t.double_data.iter().map(|&x| x as f32).collect()
            } else {
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                    .collect()
            };
            check(v.len())?;
            out.data = Some(v);
        }
        INT64 => {
            let v: Vec<i64> = if raw.is_empty() {
                t.int64_data.clone()
            } else {
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            };
            check(v.len())?;
            out.ints = Some(v);
        }
        INT32 => {
            let v: Vec<i64> = if raw.is_empty() {
                t.int32_data.iter().map(|&x| x as i64).collect()
            } else {
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect()
            };
            check(v.len())?;
            out.ints = Some(v);
        }
        INT8 | UINT8 => {
            let v: Vec<i64> = if raw.is_empty() {
                t.int32_data.iter().map(|&x| x as i64).collect()
            } else if t.data_type == INT8 {
                raw.iter().map(|&b| b as i8 as i64).collect()
            } else {
                raw.iter().map(|&b| b as i64).collect()
            };
            check(v.len())?;
            out.ints = Some(v);
        }
        other => {
            return Err(format!(
                "`{}` has element type {}, which is not supported",
                t.name,
                dtype_name(other)
            ));
        }
    }
    Ok(out)
}
