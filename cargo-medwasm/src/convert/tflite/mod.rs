//! The TFLite frontend: reads a `.tflite` flatbuffer into the IR with TFLite's own
//! layout (NHWC activations, OHWI / 1HWO filters) and quantization, and collects
//! every problem instead of stopping at the first.
//!
//! The reader is generated from the official schema (`schema.fbs`, from
//! `tensorflow/tensorflow` `tensorflow/compiler/mlir/lite/schema/schema.fbs` @
//! b6971fc8) by planus into `schema_generated.rs`, committed so that building needs
//! no code generator. To regenerate it after updating `schema.fbs`:
//!
//! ```text
//! cargo install planus-cli --version 1.3.0 --locked
//! sh cargo-medwasm/src/convert/tflite/regenerate.sh
//! ```
//!
//! Each operator family has its own module with one function per builtin operator,
//! registered by code in [`FAMILIES`]. Float models map to f32 nodes; full-int8
//! models to i8 activations with per-tensor quantization, i8 per-channel weights and
//! i32 biases; dynamic-range models to f32 nodes with i8 weights (see
//! [`crate::convert::ir::Op`] for the conventions).

use std::collections::HashMap;

use medwasm::kernels::act::Act;

use super::ir::{DType, Data, Graph, Node, Op, Quant, Tensor, TensorId, checked_len};
use super::{Imported, Problem, ProblemKind};
use reader::{ElemType, File, FileTensor};
use schema_generated::tflite as fb;

mod conv;
mod elementwise;
mod fc;
mod quant;
mod reader;
mod reduce;
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations,
    missing_docs,
    unused
)]
#[rustfmt::skip]
mod schema_generated;
mod shape;
#[cfg(test)]
mod tests;

use reader::ReadError;

/// What a translation step failed on.
type R<T> = Result<T, (ProblemKind, String)>;

/// An attribute value (or combination) the converter does not support.
fn unsupported<T>(msg: impl Into<String>) -> R<T> {
    Err((ProblemKind::Attribute, msg.into()))
}

/// Shapes that do not fit.
fn shape_err<T>(msg: impl Into<String>) -> R<T> {
    Err((ProblemKind::Shape, msg.into()))
}

/// Element types (or quantization) that do not fit.
fn dtype_err<T>(msg: impl Into<String>) -> R<T> {
    Err((ProblemKind::Dtype, msg.into()))
}

/// An options table that cannot be read.
fn opt<T>(r: planus::Result<T>) -> R<T> {
    r.map_err(|e| {
        (
            ProblemKind::Model,
            format!("its options are malformed: {}", e.error_kind),
        )
    })
}

/// One builtin operator the frontend translates.
struct OpDef {
    /// The operator.
    pub code: fb::BuiltinOperator,
    /// Its name, as TFLite spells it.
    pub name: &'static str,
    /// Translates one operator into the IR.
    pub translate: fn(&mut Cx<'_>, &TfNode<'_>) -> R<()>,
}

/// Every operator, by family.
const FAMILIES: &[&[OpDef]] = &[
    conv::OPS,
    fc::OPS,
    elementwise::OPS,
    shape::OPS,
    reduce::OPS,
    quant::OPS,
];

/// The translation of builtin code `code`, if the frontend has one.
fn op_def(code: i32) -> Option<&'static OpDef> {
    FAMILIES
        .iter()
        .flat_map(|f| f.iter())
        .find(|d| d.code as i32 == code)
}

/// Every operator the frontend translates, by TFLite name.
#[cfg(test)]
fn op_names() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|f| f.iter())
        .map(|d| d.name)
        .collect()
}

/// The name of builtin code `code`: the registry's for a supported operator,
/// else derived from the schema's (`ResizeBilinear` → `RESIZE_BILINEAR`; digits
/// are not separated, so `Conv3d` reads `CONV3D` where the schema says `CONV_3D`),
/// or its number when the schema does not know it.
fn code_name(code: i32) -> String {
    if let Some(def) = op_def(code) {
        return def.name.to_string();
    }
    match fb::BuiltinOperator::try_from(code) {
        Ok(op) => format!("{op:?}")
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                [
                    (i > 0 && c.is_ascii_uppercase()).then_some('_'),
                    Some(c.to_ascii_uppercase()),
                ]
            })
            .flatten()
            .collect(),
        Err(_) => format!("builtin operator {code}"),
    }
}

/// What the frontend read from a file, for the manifest.
#[derive(Debug, Clone, Default)]
pub(crate) struct TfliteInfo {
    /// `min_runtime_version` metadata.
    pub min_runtime_version: Option<String>,
    /// Signatures: key, input aliases, output aliases.
    pub signatures: Vec<(String, Vec<String>, Vec<String>)>,
}

/// Translates a `.tflite` file. `fixed` holds `--input-shape` values, which TFLite
/// models do not take (their shapes are static in the file).
pub(crate) fn import(
    bytes: &[u8],
    fixed: &HashMap<String, Vec<usize>>,
) -> Result<(Imported, TfliteInfo), ReadError> {
    let file = reader::read(bytes)?;
    let mut cx = Cx {
        f: &file,
        g: Graph::default(),
        ids: vec![None; file.tensors.len()],
        poisoned: vec![false; file.tensors.len()],
        reported: vec![false; file.tensors.len()],
        problems: vec![],
        notes: vec![],
    };
    for name in fixed.keys() {
        cx.problems.push(Problem {
            node: name.clone(),
            op: "--input-shape".into(),
            kind: ProblemKind::Shape,
            message: "TFLite models have static shapes and take no `--input-shape`; export the model with the shape you need".into(),
        });
    }
    if file.subgraphs > 1 {
        cx.notes.push(format!(
            "the model has {} subgraphs; the main one (0) is converted",
            file.subgraphs
        ));
    }
    let mut input_shapes = vec![];
    for &t in &file.inputs {
        if let Some(dims) = cx.graph_input(t) {
            input_shapes.push(dims);
        }
    }
    for (k, op) in file.operators.iter().enumerate() {
        cx.operator(k, op);
    }
    for &t in &file.outputs {
        if cx.poisoned[t] {
            continue;
        }
        match cx.ids[t] {
            Some(id) => cx.g.outputs.push(id),
            None if file.tensors[t].data.is_some() => match cx.constant(t) {
                Ok(id) => cx.g.outputs.push(id),
                Err((kind, message)) => cx.problems.push(Problem {
                    node: file.tensors[t].name.clone(),
                    op: "output".into(),
                    kind,
                    message,
                }),
            },
            None => cx.problems.push(Problem::model(&format!(
                "graph output `{}` is produced by no operator",
                file.tensors[t].name
            ))),
        }
    }
    let info = TfliteInfo {
        min_runtime_version: file.min_runtime_version.clone(),
        signatures: file
            .signatures
            .iter()
            .filter(|s| s.subgraph == 0)
            .map(|s| (s.key.clone(), s.inputs.clone(), s.outputs.clone()))
            .collect(),
    };
    let producer = match file.description.as_str() {
        "" => "TFLite".to_string(),
        d => format!("TFLite ({d})"),
    };
    Ok((
        Imported {
            graph: cx.g,
            problems: cx.problems,
            notes: cx.notes,
            format: "tflite",
            opset: i64::from(file.version),
            producer,
            input_shapes,
        },
        info,
    ))
}

/// The translation context: the file, the graph so far, and which file tensor is
/// which IR tensor.
struct Cx<'a> {
    f: &'a File<'a>,
    /// The graph being built.
    pub g: Graph,
    /// IR tensor of each file tensor, once defined.
    ids: Vec<Option<TensorId>>,
    /// File tensors left unknown by an earlier problem.
    poisoned: Vec<bool>,
    /// File tensors whose own problem was reported.
    reported: Vec<bool>,
    problems: Vec<Problem>,
    /// What was changed on the way.
    pub notes: Vec<String>,
}

/// One operator being translated.
struct TfNode<'a> {
    /// `<OP>_<index>`, e.g. `CONV_2D_3`: operators have no names in TFLite files.
    pub name: String,
    /// The builtin operator (translations registered for several read it).
    pub code: fb::BuiltinOperator,
    /// Input file-tensor indices (`None` for an absent optional input).
    pub inputs: Vec<Option<usize>>,
    /// Output file-tensor indices.
    pub outputs: Vec<usize>,
    /// Builtin options.
    pub options: Option<fb::BuiltinOptionsRef<'a>>,
}

impl TfNode<'_> {
    /// Required input `k` (a file tensor index).
    pub fn input(&self, k: usize, what: &str) -> R<usize> {
        self.opt_input(k)
            .ok_or((ProblemKind::Shape, format!("missing input {k} ({what})")))
    }

    /// Optional input `k`.
    pub fn opt_input(&self, k: usize) -> Option<usize> {
        self.inputs.get(k).copied().flatten()
    }

    /// Refuses more inputs than `n`, or other than one output.
    pub fn arity(&self, max_inputs: usize) -> R<()> {
        if self.inputs.len() > max_inputs {
            return unsupported(format!(
                "{} inputs; this operator takes at most {max_inputs}",
                self.inputs.len()
            ));
        }
        if self.outputs.len() != 1 {
            return unsupported(format!(
                "{} outputs; this operator has one",
                self.outputs.len()
            ));
        }
        Ok(())
    }
}

/// The IR element type of a file type the runtime may hold.
fn ir_dtype(t: ElemType) -> Option<DType> {
    use fb::TensorType as T;
    match t {
        ElemType::Known(T::Float32) => Some(DType::F32),
        ElemType::Known(T::Int8) => Some(DType::I8),
        ElemType::Known(T::Uint8) => Some(DType::U8),
        ElemType::Known(T::Int32) => Some(DType::I32),
        ElemType::Known(T::Int64) => Some(DType::I64),
        _ => None,
    }
}

/// IR quantization of a file tensor: none for float tensors (converters attach
/// informational parameters to some; float kernels ignore them).
fn ir_quant(t: &FileTensor<'_>) -> Option<Quant> {
    if t.dtype == ElemType::Known(fb::TensorType::Float32) {
        return None;
    }
    t.quant.as_ref().map(|q| Quant {
        scale: q.scale.clone(),
        zero_point: q.zero_point.clone(),
        axis: q.dim,
    })
}

/// Values of constant bytes of `dtype`, little-endian.
fn decode(dtype: DType, bytes: &[u8]) -> Data {
    fn chunks<const N: usize, T>(b: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect()
    }
    match dtype {
        DType::F32 => Data::F32(chunks(bytes, f32::from_le_bytes)),
        DType::I8 => Data::I8(bytes.iter().map(|&b| b as i8).collect()),
        DType::U8 => Data::U8(bytes.to_vec()),
        DType::I32 => Data::I32(chunks(bytes, i32::from_le_bytes)),
        DType::I64 => Data::I64(chunks(bytes, i64::from_le_bytes)),
    }
}

/// A fused activation: NONE, RELU, RELU6 and RELU_N1_TO_1. TANH and SIGN_BIT are
/// refused: LiteRT's kernels silently treat them as NONE for most operators, and
/// copying that would be a silent wrong answer for whoever asked for a tanh.
fn fused_act(a: fb::ActivationFunctionType) -> R<Act> {
    use fb::ActivationFunctionType as A;
    match a {
        A::None => Ok(Act::None),
        A::Relu => Ok(Act::Relu),
        A::Relu6 => Ok(Act::Clip(0.0, 6.0)),
        A::ReluN1To1 => Ok(Act::Clip(-1.0, 1.0)),
        A::Tanh => unsupported(
            "fused activation TANH is not supported (LiteRT's kernels ignore it for most operators); only NONE, RELU, RELU6 and RELU_N1_TO_1 are",
        ),
        A::SignBit => unsupported(
            "fused activation SIGN_BIT is not supported; only NONE, RELU, RELU6 and RELU_N1_TO_1 are",
        ),
    }
}

/// How a node computes: the kernels its element types select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// f32 in, f32 weights, f32 out.
    Float,
    /// i8 activations, i8 weights, i32 bias.
    Int8,
    /// f32 activations, i8 weights (dynamic range).
    Hybrid,
}

impl Cx<'_> {
    /// File tensor `t`.
    pub fn ft(&self, t: usize) -> &FileTensor<'_> {
        &self.f.tensors[t]
    }

    /// True if file tensor `t` is a constant: data in the file, or a value folded
    /// at conversion (a DEQUANTIZE of constant weights).
    pub fn is_const(&self, t: usize) -> bool {
        match self.ids[t] {
            Some(id) => self.g.tensors[id].is_const(),
            None => self.f.tensors[t].data.is_some(),
        }
    }

    /// IR tensor `id`.
    pub fn t(&self, id: TensorId) -> &Tensor {
        &self.g.tensors[id]
    }

    fn graph_input(&mut self, t: usize) -> Option<Vec<usize>> {
        let ft = self.f.tensors[t].clone();
        let fail = |cx: &mut Self, kind, message: String| {
            cx.problems.push(Problem::input(&ft.name, kind, &message));
            cx.poisoned[t] = true;
            None
        };
        if let Some(p) = &ft.problem {
            return fail(self, ProblemKind::Dtype, p.clone());
        }
        let Some(dtype) = ir_dtype(ft.dtype).filter(|d| matches!(d, DType::F32 | DType::I8)) else {
            return fail(
                self,
                ProblemKind::Dtype,
                format!(
                    "has element type {}; inputs must be FLOAT32 or INT8",
                    ft.dtype.name()
                ),
            );
        };
        let dynamic: Vec<usize> = ft.dynamic_axes.iter().copied().filter(|&a| a > 0).collect();
        if !dynamic.is_empty() {
            return fail(
                self,
                ProblemKind::DynamicDim,
                format!(
                    "has dynamic dimensions on axes {dynamic:?} (shape signature); export the model with a static input shape"
                ),
            );
        }
        if ft.dynamic_axes.contains(&0) {
            self.notes.push(format!(
                "dynamic batch dimension of input `{}` fixed to {}",
                ft.name,
                ft.shape.first().copied().unwrap_or(1)
            ));
        }
        if let Err((kind, message)) = fits(&ft.shape, dtype) {
            return fail(self, kind, message);
        }
        let id = self.g.add_tensor(Tensor {
            name: ft.name.clone(),
            dtype,
            dims: ft.shape.clone(),
            data: None,
            quant: ir_quant(&ft),
        });
        self.ids[t] = Some(id);
        self.g.inputs.push(id);
        Some(ft.shape.clone())
    }

    fn operator(&mut self, k: usize, op: &reader::FileOperator<'_>) {
        let def = op_def(op.code);
        let label = match (&op.custom, op.code) {
            (Some(c), 32) => format!("CUSTOM `{c}`"),
            (_, code) => code_name(code),
        };
        let n = TfNode {
            name: format!("{}_{k}", label.split(' ').next().unwrap_or("OP")),
            code: def.map_or(fb::BuiltinOperator::Custom, |d| d.code),
            inputs: op.inputs.clone(),
            outputs: op.outputs.clone(),
            options: op.options.clone().ok().flatten(),
        };
        let mut poisoned = false;
        for &t in op.inputs.iter().flatten() {
            poisoned |= self.poisoned[t];
        }
        // An unknown operator is reported whatever its inputs; a known one with
        // inputs left unknown by an earlier problem has nothing more to say.
        let result = match def {
            None => Err((ProblemKind::Operator, "operator not supported".to_string())),
            Some(_) if poisoned => Ok(()),
            Some(def) => self.tensor_problems(&n).and_then(|()| match &op.options {
                Err(e) => Err((ProblemKind::Model, e.clone())),
                Ok(_) if !op.extras.is_empty() => unsupported(format!(
                    "sets {}, which no supported operator uses",
                    op.extras
                        .iter()
                        .map(|e| format!("`{e}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Ok(_) => (def.translate)(self, &n),
            }),
        };
        if let Err((kind, message)) = &result {
            self.problems.push(Problem {
                node: n.name.clone(),
                op: label,
                kind: *kind,
                message: message.clone(),
            });
        }
        if poisoned || result.is_err() {
            for &t in &op.outputs {
                if self.ids[t].is_none() {
                    self.poisoned[t] = true;
                }
            }
        }
    }

    /// The own problems of the tensors `n` reads, each reported once.
    fn tensor_problems(&mut self, n: &TfNode<'_>) -> R<()> {
        for (k, t) in n.inputs.iter().enumerate() {
            let Some(t) = *t else { continue };
            if let Some(p) = &self.f.tensors[t].problem
                && !self.reported[t]
            {
                self.reported[t] = true;
                return Err((
                    ProblemKind::Dtype,
                    format!("input {k} `{}` {p}", self.f.tensors[t].name),
                ));
            }
        }
        Ok(())
    }

    /// The IR tensor of input `k` of `n`: an earlier output, a graph input, or a
    /// constant made from the file's data.
    pub fn input(&mut self, n: &TfNode<'_>, k: usize, what: &str) -> R<TensorId> {
        let t = n.input(k, what)?;
        if let Some(id) = self.ids[t] {
            return Ok(id);
        }
        if self.f.tensors[t].data.is_some() {
            return self.constant(t);
        }
        shape_err(format!(
            "reads `{}` ({what}), which no earlier operator produces",
            self.f.tensors[t].name
        ))
    }

    /// The IR constant of file tensor `t`, made once.
    fn constant(&mut self, t: usize) -> R<TensorId> {
        if let Some(id) = self.ids[t] {
            return Ok(id);
        }
        let ft = &self.f.tensors[t];
        let Some(bytes) = ft.data else {
            return shape_err(format!("`{}` is not a constant", ft.name));
        };
        let Some(dtype) = ir_dtype(ft.dtype) else {
            return dtype_err(format!(
                "constant `{}` has element type {}, which only DEQUANTIZE may read",
                ft.name,
                ft.dtype.name()
            ));
        };
        let id = self.g.add_tensor(Tensor {
            name: ft.name.clone(),
            dtype,
            dims: ft.shape.clone(),
            data: Some(decode(dtype, bytes)),
            quant: ir_quant(ft),
        });
        self.ids[t] = Some(id);
        Ok(id)
    }

    /// A new IR constant (weights re-laid at conversion, folded values).
    pub fn new_constant(&mut self, name: String, dims: Vec<usize>, data: Data) -> TensorId {
        self.g.add_tensor(Tensor::constant(name, dims, data))
    }

    /// The integer values of constant input `k` (shapes, axes, paddings).
    pub fn const_ints(&self, n: &TfNode<'_>, k: usize, what: &str) -> R<Vec<i64>> {
        let t = n.input(k, what)?;
        let ft = &self.f.tensors[t];
        match (ft.data, ir_dtype(ft.dtype)) {
            (Some(bytes), Some(d @ (DType::I32 | DType::I64))) => {
                Ok(decode(d, bytes).to_i64().unwrap_or_default())
            }
            (Some(_), _) => dtype_err(format!(
                "`{what}` has element type {}; INT32 or INT64 is needed",
                ft.dtype.name()
            )),
            (None, _) => unsupported(format!(
                "`{what}` must be a constant (it is computed at run time)"
            )),
        }
    }

    /// Defines output `k` of `n` with `dims` computed by the translation, after
    /// checking them against the shape the file declares and the format's limits.
    /// Element type and quantization are the file's.
    pub fn output(&mut self, n: &TfNode<'_>, k: usize, dims: Vec<usize>) -> R<TensorId> {
        let Some(&t) = n.outputs.get(k) else {
            return shape_err(format!("missing output {k}"));
        };
        let ft = &self.f.tensors[t];
        if let Some(p) = &ft.problem {
            return dtype_err(format!("output `{}` {p}", ft.name));
        }
        if ft.shape != dims {
            return shape_err(format!(
                "output `{}` is declared {:?} but the operator computes {dims:?}",
                ft.name, ft.shape
            ));
        }
        let Some(dtype) = ir_dtype(ft.dtype) else {
            return dtype_err(format!(
                "output `{}` has element type {}",
                ft.name,
                ft.dtype.name()
            ));
        };
        fits(&dims, dtype)?;
        if self.ids[t].is_some() || ft.data.is_some() {
            return shape_err(format!(
                "output `{}` is written twice or is a constant",
                ft.name
            ));
        }
        let id = self.g.add_tensor(Tensor {
            name: ft.name.clone(),
            dtype,
            dims,
            data: None,
            quant: ir_quant(ft),
        });
        self.ids[t] = Some(id);
        Ok(id)
    }

    /// Output 0 of `n` is the existing IR tensor `to` (a folded operator).
    pub fn alias(&mut self, n: &TfNode<'_>, to: TensorId) {
        if let Some(&t) = n.outputs.first() {
            self.ids[t] = Some(to);
        }
    }

    /// Adds node `n` computing output 0 of shape `dims` with `op`.
    pub fn emit(
        &mut self,
        n: &TfNode<'_>,
        op: Op,
        inputs: Vec<Option<TensorId>>,
        dims: Vec<usize>,
    ) -> R<TensorId> {
        let out = self.output(n, 0, dims)?;
        self.g.nodes.push(Node {
            name: n.name.clone(),
            op,
            inputs,
            output: out,
        });
        Ok(out)
    }

    /// Adds a helper node (a reshape in front of a Gemm, a pool before its fused
    /// activation); its output has the element type and quantization of `input`.
    pub fn emit_helper(
        &mut self,
        name: String,
        op: Op,
        input: TensorId,
        dims: Vec<usize>,
    ) -> TensorId {
        let (dtype, quant) = (
            self.g.tensors[input].dtype,
            self.g.tensors[input].quant.clone(),
        );
        let out = self.g.add_tensor(Tensor {
            name: name.clone(),
            dtype,
            dims,
            data: None,
            quant,
        });
        self.g.nodes.push(Node {
            name,
            op,
            inputs: vec![Some(input)],
            output: out,
        });
        out
    }

    /// The element type of file tensor `t` in the IR, or a problem naming it.
    pub fn dtype_of(&self, t: usize) -> R<DType> {
        let ft = &self.f.tensors[t];
        ir_dtype(ft.dtype).ok_or_else(|| {
            (
                ProblemKind::Dtype,
                format!("`{}` has element type {}", ft.name, ft.dtype.name()),
            )
        })
    }

    /// How an operator with activation input `x`, output `y` and weights `w`
    /// computes, from their element types; a combination no kernel computes is a
    /// problem. Quantized activations must be INT8 with per-tensor parameters.
    pub fn kind(&self, x: usize, w: Option<usize>, y: usize) -> R<Kind> {
        let (dx, dy) = (self.dtype_of(x)?, self.dtype_of(y)?);
        let dw = w.map(|w| self.dtype_of(w)).transpose()?;
        let kind = match (dx, dw, dy) {
            (DType::F32, None | Some(DType::F32), DType::F32) => Kind::Float,
            (DType::F32, Some(DType::I8), DType::F32) => Kind::Hybrid,
            (DType::I8, None | Some(DType::I8), DType::I8) => Kind::Int8,
            _ => {
                let u8 = [dx, dy].contains(&DType::U8) || dw == Some(DType::U8);
                return dtype_err(format!(
                    "input {}, {}output {}: {}",
                    dx.name(),
                    dw.map(|d| format!("weights {}, ", d.name()))
                        .unwrap_or_default(),
                    dy.name(),
                    if u8 {
                        "UINT8 quantization is not supported; convert the model with int8 quantization (TFLite's default)"
                    } else {
                        "no kernel computes this combination (float, int8, or float with int8 weights)"
                    }
                ));
            }
        };
        if kind == Kind::Int8 {
            for t in [x, y] {
                self.per_tensor_int8(t)?;
            }
        }
        Ok(kind)
    }

    /// Refuses an int8 activation without per-tensor quantization.
    pub fn per_tensor_int8(&self, t: usize) -> R<()> {
        let ft = &self.f.tensors[t];
        match &ft.quant {
            Some(q) if q.dim.is_none() => Ok(()),
            Some(_) => dtype_err(format!(
                "int8 tensor `{}` is quantized per axis; activations must be quantized per tensor",
                ft.name
            )),
            None => dtype_err(format!(
                "int8 tensor `{}` has no quantization parameters",
                ft.name
            )),
        }
    }

    /// Refuses int8 tensors `a` and `b` whose quantization differs (operators that
    /// move bytes without requantizing).
    pub fn same_quant(&self, a: usize, b: usize) -> R<()> {
        let (qa, qb) = (&self.f.tensors[a].quant, &self.f.tensors[b].quant);
        if self.f.tensors[a].dtype == ElemType::Known(fb::TensorType::Int8) && qa != qb {
            return dtype_err(format!(
                "`{}` and `{}` are quantized differently ({}, {}); this operator moves int8 values without requantizing",
                self.f.tensors[a].name,
                self.f.tensors[b].name,
                quant_text(qa),
                quant_text(qb)
            ));
        }
        Ok(())
    }
}

/// Quantization parameters in messages.
fn quant_text(q: &Option<reader::FileQuant>) -> String {
    match q {
        None => "not quantized".into(),
        Some(q) if q.dim.is_none() => {
            format!("scale {} zero point {}", q.scale[0], q.zero_point[0])
        }
        Some(q) => format!("{} scales along dimension {:?}", q.scale.len(), q.dim),
    }
}

/// Refuses a tensor of `dims` and `dtype` larger than the format addresses.
fn fits(dims: &[usize], dtype: DType) -> R<()> {
    let bytes = checked_len(dims).and_then(|n| n.checked_mul(dtype.size()));
    match bytes {
        Some(b) if b <= super::plan::MAX_ARENA_BYTES => Ok(()),
        _ => Err((
            ProblemKind::Limit,
            format!(
                "a tensor of shape {dims:?} would need {} but the model format addresses at most 4 GiB (u32 offsets)",
                bytes.map_or("more bytes than fit in 64 bits".into(), |b| format!(
                    "{b} bytes"
                ))
            ),
        )),
    }
}

/// Axis `ax` (negative counts from the end) of a rank-`rank` tensor.
fn norm_axis(ax: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    let v = if ax < 0 { ax + r } else { ax };
    if v < 0 || v >= r {
        return shape_err(format!("axis {ax} out of range for rank {rank}"));
    }
    Ok(v as usize)
}

/// The result shape of NumPy broadcasting `a` and `b`.
fn broadcast(a: &[usize], b: &[usize]) -> R<Vec<usize>> {
    let r = a.len().max(b.len());
    let at = |d: &[usize], i: usize| {
        if i + d.len() < r {
            1
        } else {
            d[i + d.len() - r]
        }
    };
    (0..r)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            (x, y) => shape_err(format!(
                "shapes {a:?} and {b:?} do not broadcast ({x} against {y} on axis {i})"
            )),
        })
        .collect()
}
