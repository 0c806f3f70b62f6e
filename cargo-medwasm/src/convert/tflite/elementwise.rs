//! ADD, SUB and MUL with broadcasting and a fused activation, and the standalone
//! activations: RELU, RELU6, RELU_N1_TO_1, LOGISTIC, TANH, LEAKY_RELU, HARD_SWISH.

use medwasm::kernels::act::Act;
use medwasm::kernels::binary::BinOp;

use super::schema_generated::tflite as fb;
use super::{Cx, Kind, OpDef, R, TfNode, broadcast, fused_act, opt, unsupported};
use crate::convert::ir::Op;

pub(super) const OPS: &[OpDef] = &[
    OpDef {
        code: fb::BuiltinOperator::Add,
        name: "ADD",
        translate: binary,
    },
    OpDef {
        code: fb::BuiltinOperator::Sub,
        name: "SUB",
        translate: binary,
    },
    OpDef {
        code: fb::BuiltinOperator::Mul,
        name: "MUL",
        translate: binary,
    },
    OpDef {
        code: fb::BuiltinOperator::Relu,
        name: "RELU",
        translate: activation,
    },
    OpDef {
        code: fb::BuiltinOperator::Relu6,
        name: "RELU6",
        translate: activation,
    },
    OpDef {
        code: fb::BuiltinOperator::ReluN1To1,
        name: "RELU_N1_TO_1",
        translate: activation,
    },
    OpDef {
        code: fb::BuiltinOperator::Logistic,
        name: "LOGISTIC",
        translate: activation,
    },
    OpDef {
        code: fb::BuiltinOperator::Tanh,
        name: "TANH",
        translate: activation,
    },
    OpDef {
        code: fb::BuiltinOperator::LeakyRelu,
        name: "LEAKY_RELU",
        translate: activation,
    },
    OpDef {
        code: fb::BuiltinOperator::HardSwish,
        name: "HARD_SWISH",
        translate: activation,
    },
];

fn binary(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(2)?;
    use fb::BuiltinOperator as B;
    use fb::BuiltinOptionsRef as O;
    let op = match n.code {
        B::Add => BinOp::Add,
        B::Sub => BinOp::Sub,
        _ => BinOp::Mul,
    };
    let act = match (op, &n.options) {
        // `pot_scale_int16` of Add/SubOptions only concerns int16 models.
        (BinOp::Add, Some(O::AddOptions(o))) => fused_act(opt(o.fused_activation_function())?)?,
        (BinOp::Sub, Some(O::SubOptions(o))) => fused_act(opt(o.fused_activation_function())?)?,
        (BinOp::Mul, Some(O::MulOptions(o))) => fused_act(opt(o.fused_activation_function())?)?,
        (_, None) => Act::None,
        _ => return unsupported("options of another operator"),
    };
    let (a, b, y) = (n.input(0, "x")?, n.input(1, "y")?, n.outputs[0]);
    let kind = cx.kind(a, None, y)?;
    let kb = cx.kind(b, None, y)?;
    if kind != kb {
        return unsupported("one operand is int8 and the other float");
    }
    let dims = broadcast(&cx.ft(a).shape, &cx.ft(b).shape)?;
    let (ai, bi) = (cx.input(n, 0, "x")?, cx.input(n, 1, "y")?);
    cx.emit(n, Op::Binary { op, act }, vec![Some(ai), Some(bi)], dims)?;
    Ok(())
}

fn activation(cx: &mut Cx<'_>, n: &TfNode<'_>) -> R<()> {
    n.arity(1)?;
    let (x, y) = (n.input(0, "input")?, n.outputs[0]);
    use fb::BuiltinOperator as B;
    let op = match n.code {
        B::Relu => Op::Act(Act::Relu),
        B::Relu6 => Op::Act(Act::Clip(0.0, 6.0)),
        B::ReluN1To1 => Op::Act(Act::Clip(-1.0, 1.0)),
        B::Logistic => Op::Act(Act::Sigmoid),
        B::Tanh => Op::Act(Act::Tanh),
        B::HardSwish => Op::HardSwish,
        B::LeakyRelu => {
            let alpha = match &n.options {
                Some(fb::BuiltinOptionsRef::LeakyReluOptions(o)) => opt(o.alpha())?,
                _ => return unsupported("LEAKY_RELU without LeakyReluOptions"),
            };
            if !alpha.is_finite() {
                return unsupported(format!("`alpha` {alpha} must be finite"));
            }
            Op::Act(Act::LeakyRelu(alpha))
        }
        other => return unsupported(format!("{other:?} is not an activation")),
    };
    let kind = cx.kind(x, None, y)?;
    if kind == Kind::Hybrid {
        return unsupported("an activation has no weights");
    }
    let dims = cx.ft(x).shape.clone();
    let xi = cx.input(n, 0, "input")?;
    cx.emit(n, op, vec![Some(xi)], dims)?;
    Ok(())
}
