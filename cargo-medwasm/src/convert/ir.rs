//! The converter's intermediate graph, shared by every frontend: typed tensors with
//! static shapes, constants inline, ops in the runtime's vocabulary. Passes rewrite
//! it before planning.
//!
//! Every tensor carries its element type ([`DType`]) and, for quantized values, its
//! quantization parameters ([`Quant`]) as plain data, so a frontend for int8 models
//! describes them as they are instead of dequantizing to f32 on the way in.

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;
use medwasm::kernels::misc::PadMode;

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DType {
    /// IEEE 754 binary32.
    #[default]
    F32,
    /// Signed 8-bit integer (quantized weights and activations).
    I8,
    /// Unsigned 8-bit integer (quantized activations of older exporters).
    U8,
    /// Signed 32-bit integer (quantized biases, accumulators).
    I32,
    /// Signed 64-bit integer (ONNX shapes, axes and pads).
    I64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    /// Name used in manifests and messages.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::I64 => "i64",
        }
    }

    /// True for the integer types.
    pub fn is_int(self) -> bool {
        self != DType::F32
    }

    /// The range of an integer type, as i64 (`None` for f32).
    fn int_range(self) -> Option<(i64, i64)> {
        match self {
            DType::F32 => None,
            DType::I8 => Some((i8::MIN.into(), i8::MAX.into())),
            DType::U8 => Some((u8::MIN.into(), u8::MAX.into())),
            DType::I32 => Some((i32::MIN.into(), i32::MAX.into())),
            DType::I64 => Some((i64::MIN, i64::MAX)),
        }
    }
}

/// The values of a constant tensor, in its own element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// f32 values.
    F32(Vec<f32>),
    /// i8 values.
    I8(Vec<i8>),
    /// u8 values.
    U8(Vec<u8>),
    /// i32 values.
    I32(Vec<i32>),
    /// i64 values.
    I64(Vec<i64>),
}

impl Data {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::I8(_) => DType::I8,
            Data::U8(_) => DType::U8,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
        }
    }

    /// Element count.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// True without elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values of f32 data.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Integer values widened to i64 (`None` for f32 data).
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        Some(match self {
            Data::F32(_) => return None,
            Data::I8(v) => v.iter().map(|&x| x.into()).collect(),
            Data::U8(v) => v.iter().map(|&x| x.into()).collect(),
            Data::I32(v) => v.iter().map(|&x| x.into()).collect(),
            Data::I64(v) => v.clone(),
        })
    }

    /// Values converted to f32 (integers rounded to the nearest f32).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Data::F32(v) => v.clone(),
            Data::I8(v) => v.iter().map(|&x| x.into()).collect(),
            Data::U8(v) => v.iter().map(|&x| x.into()).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Integer values narrowed to `dtype`; the error names the first value outside
    /// its range.
    pub fn from_i64(dtype: DType, values: Vec<i64>) -> Result<Data, String> {
        let Some((lo, hi)) = dtype.int_range() else {
            return Ok(Data::F32(values.iter().map(|&v| v as f32).collect()));
        };
        if let Some(v) = values.iter().find(|&&v| v < lo || v > hi) {
            return Err(format!("{v} does not fit in {}", dtype.name()));
        }
        // In range (checked above), so the narrowing casts are exact.
        Ok(match dtype {
            DType::I8 => Data::I8(values.iter().map(|&v| v as i8).collect()),
            DType::U8 => Data::U8(values.iter().map(|&v| v as u8).collect()),
            DType::I32 => Data::I32(values.iter().map(|&v| v as i32).collect()),
            _ => Data::I64(values),
        })
    }

    /// The elements at `indices`, in that order (transposes, broadcasts, gathers).
    /// Indices must be in range.
    pub fn select(&self, indices: &[usize]) -> Data {
        fn pick<T: Copy>(v: &[T], ix: &[usize]) -> Vec<T> {
            ix.iter().map(|&i| v[i]).collect()
        }
        match self {
            Data::F32(v) => Data::F32(pick(v, indices)),
            Data::I8(v) => Data::I8(pick(v, indices)),
            Data::U8(v) => Data::U8(pick(v, indices)),
            Data::I32(v) => Data::I32(pick(v, indices)),
            Data::I64(v) => Data::I64(pick(v, indices)),
        }
    }

    /// Appends `other`, which must have the same element type.
    pub fn extend(&mut self, other: &Data) -> Result<(), String> {
        match (self, other) {
            (Data::F32(a), Data::F32(b)) => a.extend_from_slice(b),
            (Data::I8(a), Data::I8(b)) => a.extend_from_slice(b),
            (Data::U8(a), Data::U8(b)) => a.extend_from_slice(b),
            (Data::I32(a), Data::I32(b)) => a.extend_from_slice(b),
            (Data::I64(a), Data::I64(b)) => a.extend_from_slice(b),
            (a, b) => {
                return Err(format!(
                    "element types {} and {} differ",
                    a.dtype().name(),
                    b.dtype().name()
                ));
            }
        }
        Ok(())
    }

    /// Little-endian bytes, as the blob stores constants.
    pub fn le_bytes(&self) -> Vec<u8> {
        match self {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Data::U8(v) => v.clone(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// Quantization parameters: `real = (q - zero_point) * scale`.
///
/// Per-tensor parameters have one scale and one zero point and no axis; per-axis
/// (per-channel) parameters have one of each per index along `axis`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quant {
    /// Scales, one per tensor or one per index along `axis`.
    pub scale: Vec<f32>,
    /// Zero points, as many as scales (i64 holds the zero point of every integer type).
    pub zero_point: Vec<i64>,
    /// The quantized axis of per-axis parameters.
    pub axis: Option<usize>,
}

/// A tensor: element type, static shape, and data when constant.
#[derive(Debug, Clone, Default)]
pub struct Tensor {
    /// Name in the source model.
    pub name: String,
    /// Element type; equal to `data`'s type for a constant.
    pub dtype: DType,
    /// Static shape.
    pub dims: Vec<usize>,
    /// The values of a constant.
    pub data: Option<Data>,
    /// Quantization parameters of a quantized tensor.
    pub quant: Option<Quant>,
}

impl Tensor {
    /// A value computed at run time.
    pub fn activation(name: impl Into<String>, dims: Vec<usize>, dtype: DType) -> Tensor {
        Tensor {
            name: name.into(),
            dtype,
            dims,
            data: None,
            quant: None,
        }
    }

    /// A constant; its element type is its data's.
    pub fn constant(name: impl Into<String>, dims: Vec<usize>, data: Data) -> Tensor {
        Tensor {
            name: name.into(),
            dtype: data.dtype(),
            dims,
            data: Some(data),
            quant: None,
        }
    }

    /// Element count. Shapes are checked against the format's limits when a tensor
    /// is defined, so the product does not overflow.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// True for a tensor with a zero dimension.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for constants.
    pub fn is_const(&self) -> bool {
        self.data.is_some()
    }

    /// The values of an f32 constant.
    pub fn f32s(&self) -> Option<&[f32]> {
        self.data.as_ref().and_then(Data::as_f32)
    }

    /// The values of an integer constant, widened to i64.
    pub fn ints(&self) -> Option<Vec<i64>> {
        self.data.as_ref().and_then(Data::to_i64)
    }

    /// True for an integer constant (shapes, axes, pads, quantized weights).
    pub fn is_int_const(&self) -> bool {
        self.data.as_ref().is_some_and(|d| d.dtype().is_int())
    }
}

/// Element count of `dims`, `None` if it overflows.
pub fn checked_len(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// `dims` transposed by `perm`: output axis `i` is input axis `perm[i]` (ONNX and
/// TFLite Transpose). `perm` must be a permutation of `0..dims.len()`.
pub fn permute(dims: &[usize], perm: &[usize]) -> Vec<usize> {
    perm.iter().map(|&p| dims[p]).collect()
}

/// The transposed shape and, for each element of the transposed tensor in order,
/// the index of the element of the original it takes (for [`Data::select`]).
pub fn permutation(dims: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let out = permute(dims, perm);
    let rank = dims.len();
    let mut strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * dims[d + 1];
    }
    let n: usize = out.iter().product();
    let mut idx = Vec::with_capacity(n);
    let mut coord = vec![0usize; rank];
    for _ in 0..n {
        idx.push(coord.iter().zip(perm).map(|(&c, &p)| c * strides[p]).sum());
        for d in (0..rank).rev() {
            coord[d] += 1;
            if coord[d] < out[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    (out, idx)
}

/// Window geometry shared by Conv and pooling, in 2-D form (1-D has height 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Kernel (h, w).
    pub kernel: [usize; 2],
    /// Strides (h, w).
    pub strides: [usize; 2],
    /// Dilations (h, w).
    pub dilations: [usize; 2],
    /// Pads: top, left, bottom, right.
    pub pads: [usize; 4],
}

/// Memory layout of a Conv's or a pool's activations (and so of its filters).
///
/// The f32 kernels run NCHW; int8 kernels will run NHWC, as TFLite defines them
/// (channels innermost: contiguous dot products over input channels). A frontend
/// emits its model's own layout; the lowering wraps a node whose layout differs from
/// its kernel's in Transposes and re-lays its weights at conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `[N, C, H, W]` (or `[N, C, W]`); Conv filters OIHW `[out_c, in_c/group, kh, kw]`.
    #[default]
    Nchw,
    /// `[N, H, W, C]`; Conv filters OHWI `[out_c, kh, kw, in_c/group]`, or 1HWO
    /// `[1, kh, kw, out_c]` for a depthwise Conv (see [`Op::Conv`]).
    Nhwc,
}

/// Operators in the runtime's vocabulary.
///
/// Types drive kernels: whether a node runs an f32, an int8 or a hybrid kernel
/// follows from the element types and quantization of its tensors, not from the
/// op. Quantized graphs follow these conventions (every frontend):
/// - activations `I8` with per-tensor [`Quant`] (axis `None`);
/// - weights `I8` constants with [`Quant`]: per-axis along the output-channel axis of
///   the tensor as stored here (0 for OHWI/OIHW filters, 3 for 1HWO depthwise
///   filters, 1 for a Gemm's `B [K, N]`), or per-tensor;
/// - biases of int8 ops `I32` constants, scale `s_in·s_w[c]` as the model stores it,
///   zero point 0;
/// - hybrid (dynamic-range) ops: f32 input and output, `I8` weights with [`Quant`];
/// - fused activations (`act`) are real-valued (Relu, `Clip(0, 6)` …); a back end
///   turns them into a quantized range with the output's quantization.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `Y = A · B + bias`, B constant `[K, N]` (FULLY_CONNECTED's `[units, depth]`
    /// weights are transposed to `[depth, units]` by the frontend).
    Gemm { act: Act },
    /// Convolution. `depthwise` marks TFLite's DEPTHWISE_CONV_2D: `group == in_c`,
    /// `out_c = in_c · M`, NHWC filters 1HWO `[1, kh, kw, out_c]`, and the depthwise
    /// kernel's int8 and hybrid semantics (which differ from a grouped CONV_2D's).
    /// It is false for every NCHW Conv, whose grouped OIHW filters say it all.
    Conv {
        win: Window,
        group: usize,
        act: Act,
        layout: Layout,
        depthwise: bool,
    },
    /// Broadcasting arithmetic.
    Binary { op: BinOp, act: Act },
    /// Activation alone.
    Act(Act),
    /// Softmax over axes `start..end` of `beta · x` (beta 1 unless TFLite says
    /// otherwise).
    Softmax { start: usize, end: usize, beta: f32 },
    /// Pooling.
    Pool {
        max: bool,
        win: Window,
        count_include_pad: bool,
        layout: Layout,
    },
    /// Mean over axes.
    ReduceMean { mask: u32 },
    /// Permutation.
    Transpose { perm: Vec<usize> },
    /// Concatenation.
    Concat { axis: usize },
    /// Padding.
    Pad {
        mode: PadMode,
        begin: Vec<usize>,
        end: Vec<usize>,
    },
    /// Copy to a new shape.
    Copy,
    /// Per-channel `x * scale + shift` along axis 1 (BatchNormalization), folded or
    /// lowered before planning.
    ChannelAffine { scale: Vec<f32>, shift: Vec<f32> },
    /// f32 → i8 quantization, or i8 → i8 requantization when both sides are i8; the
    /// parameters are the tensors' [`Quant`].
    Quantize,
    /// i8 → f32 dequantization with the input's [`Quant`].
    Dequantize,
    /// `x · relu6(x + 3) / 6`.
    HardSwish,
}

impl Op {
    /// Name for reports (with a fused activation: `Conv+Relu`).
    pub fn label(&self) -> String {
        let base = match self {
            Op::Gemm { .. } => "Gemm",
            Op::Conv {
                depthwise: true, ..
            } => "DepthwiseConv",
            Op::Conv { .. } => "Conv",
            Op::Binary { op, .. } => match op {
                BinOp::Add => "Add",
                BinOp::Sub => "Sub",
                BinOp::Mul => "Mul",
                BinOp::Div => "Div",
            },
            Op::Act(a) => return act_name(*a).to_string(),
            Op::Softmax { .. } => "Softmax",
            Op::Pool { max: true, .. } => "MaxPool",
            Op::Pool { max: false, .. } => "AveragePool",
            Op::ReduceMean { .. } => "ReduceMean",
            Op::Transpose { .. } => "Transpose",
            Op::Concat { .. } => "Concat",
            Op::Pad { .. } => "Pad",
            Op::Copy => "Copy",
            Op::ChannelAffine { .. } => "BatchNormalization",
            Op::Quantize => "Quantize",
            Op::Dequantize => "Dequantize",
            Op::HardSwish => "HardSwish",
        };
        match self.act() {
            Some(a) if a != Act::None => format!("{base}+{}", act_name(a)),
            _ => base.to_string(),
        }
    }

    /// The fused activation slot, for ops that have one.
    pub fn act(&self) -> Option<Act> {
        match self {
            Op::Gemm { act } | Op::Conv { act, .. } | Op::Binary { act, .. } => Some(*act),
            _ => None,
        }
    }

    /// Sets the fused activation; false if the op has no slot or it is taken.
    pub fn fuse_act(&mut self, new: Act) -> bool {
        match self {
            Op::Gemm { act } | Op::Conv { act, .. } | Op::Binary { act, .. }
                if *act == Act::None =>
            {
                *act = new;
                true
            }
            _ => false,
        }
    }
}

fn act_name(a: Act) -> &'static str {
    match a {
        Act::None => "Identity",
        Act::Relu => "Relu",
        Act::LeakyRelu(_) => "LeakyRelu",
        Act::Sigmoid => "Sigmoid",
        Act::Tanh => "Tanh",
        Act::Clip(..) => "Clip",
    }
}

/// A node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Name in the source model (or made up for inserted nodes).
    pub name: String,
    /// Operator.
    pub op: Op,
    /// Inputs (`None` for an absent optional input).
    pub inputs: Vec<Option<TensorId>>,
    /// The output.
    pub output: TensorId,
}

/// A whole graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// All tensors.
    pub tensors: Vec<Tensor>,
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// Graph inputs.
    pub inputs: Vec<TensorId>,
    /// Graph outputs.
    pub outputs: Vec<TensorId>,
}

impl Graph {
    /// Adds a tensor.
    pub fn add_tensor(&mut self, t: Tensor) -> TensorId {
        self.tensors.push(t);
        self.tensors.len() - 1
    }

    /// Adds a node computing a new f32 tensor named after the node; returns it.
    pub fn add_node(
        &mut self,
        name: &str,
        op: Op,
        inputs: Vec<Option<TensorId>>,
        dims: Vec<usize>,
    ) -> TensorId {
        let output = self.add_tensor(Tensor::activation(name, dims, DType::F32));
        self.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
            output,
        });
        output
    }

    /// The node that computes `t`, if any.
    pub fn producer(&self, t: TensorId) -> Option<usize> {
        self.nodes.iter().position(|n| n.output == t)
    }

    /// Number of nodes reading `t`, plus one if it is a graph output.
    pub fn uses(&self, t: TensorId) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| n.inputs.iter())
            .filter(|i| **i == Some(t))
            .count()
            + self.outputs.iter().filter(|o| **o == t).count()
    }

    /// Nodes reading `t`.
    pub fn consumers(&self, t: TensorId) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.contains(&Some(t)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Replaces every read of `from` by `to`.
    pub fn rewire(&mut self, from: TensorId, to: TensorId) {
        for n in &mut self.nodes {
            for i in n.inputs.iter_mut().flatten() {
                if *i == from {
                    *i = to;
                }
            }
        }
        for o in &mut self.outputs {
            if *o == from {
                *o = to;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_refuses_values_out_of_range() {
        assert_eq!(
            Data::from_i64(DType::I32, vec![1, -2]),
            Ok(Data::I32(vec![1, -2]))
        );
        let err = Data::from_i64(DType::I32, vec![1, 1 << 40]).unwrap_err();
        assert!(err.contains("does not fit in i32"), "{err}");
        assert!(Data::from_i64(DType::U8, vec![-1]).is_err());
        assert_eq!(
            Data::from_i64(DType::I8, vec![-128, 127]),
            Ok(Data::I8(vec![-128, 127]))
        );
    }

    #[test]
    fn data_keeps_its_type_through_select_and_extend() {
        let mut d = Data::I8(vec![1, 2, 3]);
        assert_eq!(d.select(&[2, 0]), Data::I8(vec![3, 1]));
        d.extend(&Data::I8(vec![4])).unwrap();
        assert_eq!(d, Data::I8(vec![1, 2, 3, 4]));
        assert!(d.extend(&Data::F32(vec![1.0])).is_err());
        assert_eq!(d.le_bytes(), [1, 2, 3, 4]);
        assert_eq!(Data::I8(vec![-1]).le_bytes(), [0xFF]);
        assert_eq!(Data::F32(vec![1.0]).le_bytes(), 1f32.to_le_bytes());
    }

    #[test]
    fn permutation_indexes_the_transposed_elements() {
        // [2, 3] → [3, 2]: element (j, i) of the result is element (i, j).
        let (dims, idx) = permutation(&[2, 3], &[1, 0]);
        assert_eq!(dims, [3, 2]);
        assert_eq!(idx, [0, 3, 1, 4, 2, 5]);
        // NHWC [1, 2, 2, 3] → NCHW [1, 3, 2, 2].
        let (dims, idx) = permutation(&[1, 2, 2, 3], &[0, 3, 1, 2]);
        assert_eq!(dims, [1, 3, 2, 2]);
        assert_eq!(idx, [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
        assert_eq!(permute(&[4, 5, 6], &[2, 0, 1]), [6, 4, 5]);
    }

    #[test]
    fn constants_take_their_data_type() {
        let t = Tensor::constant("w", vec![2], Data::I32(vec![7, 8]));
        assert_eq!(t.dtype, DType::I32);
        assert!(t.is_int_const() && t.is_const());
        assert_eq!(t.ints(), Some(vec![7, 8]));
        assert_eq!(t.f32s(), None);
        let a = Tensor::activation("x", vec![1, 3], DType::I8);
        assert!(!a.is_const() && a.len() == 3);
        assert_eq!(checked_len(&[usize::MAX, 2]), None);
    }
}
