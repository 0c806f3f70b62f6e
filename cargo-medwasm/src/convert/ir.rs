//! The converter's intermediate graph: static shapes, constants inline, ops in the
//! runtime's vocabulary. Passes rewrite it before planning.

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;
use medwasm::kernels::misc::PadMode;

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// A tensor: static shape, and data when constant.
#[derive(Debug, Clone, Default)]
pub struct Tensor {
    /// Name in the source model.
    pub name: String,
    /// Static shape.
    pub dims: Vec<usize>,
    /// Float data of a constant.
    pub data: Option<Vec<f32>>,
    /// Integer data of a constant (shapes, axes, pads).
    pub ints: Option<Vec<i64>>,
}

impl Tensor {
    /// Element count.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// True for a tensor with a zero dimension.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for constants (float or integer).
    pub fn is_const(&self) -> bool {
        self.data.is_some() || self.ints.is_some()
    }
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

/// Operators in the runtime's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `Y = A · B + bias`, B constant `[K, N]`.
    Gemm { act: Act },
    /// Convolution.
    Conv { win: Window, group: usize, act: Act },
    /// Broadcasting arithmetic.
    Binary { op: BinOp, act: Act },
    /// Activation alone.
    Act(Act),
    /// Softmax over axes `start..end`.
    Softmax { start: usize, end: usize },
    /// Pooling.
    Pool {
        max: bool,
        win: Window,
        count_include_pad: bool,
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
}

impl Op {
    /// Name for reports (with a fused activation: `Conv+Relu`).
    pub fn label(&self) -> String {
        let base = match self {
            Op::Gemm { .. } => "Gemm",
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
