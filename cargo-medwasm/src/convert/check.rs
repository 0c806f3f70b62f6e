//! The support check of the shared lowering: everything in an IR graph (from any
//! frontend) that the runtime cannot run or the format cannot describe, reported
//! at once, before planning.

use std::collections::HashSet;

use medwasm::format::{MAX_GRAPH_IO, MAX_NODE_INPUTS, MAX_RANK};

use super::ir::{DType, Graph, Node, TensorId};
use super::{Problem, ProblemKind};

/// Every problem that keeps `g` from running, per node, each tensor reported once.
pub fn check(g: &Graph) -> Vec<Problem> {
    let mut problems = vec![];
    for (what, list) in [("inputs", &g.inputs), ("outputs", &g.outputs)] {
        if list.len() > MAX_GRAPH_IO {
            problems.push(Problem {
                kind: ProblemKind::Limit,
                ..Problem::model(&format!(
                    "the graph has {} {what} but the model format allows at most {MAX_GRAPH_IO}",
                    list.len()
                ))
            });
        }
    }
    let mut seen = HashSet::new();
    for n in &g.nodes {
        let label = n.op.label();
        let mut report = |kind, message: String| {
            problems.push(Problem {
                node: n.name.clone(),
                op: label.clone(),
                kind,
                message,
            })
        };
        if n.inputs.len() > MAX_NODE_INPUTS {
            report(
                ProblemKind::Limit,
                format!(
                    "{} inputs but the model format allows at most {MAX_NODE_INPUTS} per node",
                    n.inputs.len()
                ),
            );
        }
        // Element types: one problem per node that says which kernels it needs,
        // however many of its tensors are not f32.
        if let Some(message) = dtype_problem(g, n) {
            report(ProblemKind::Dtype, message);
        }
        for t in n.inputs.iter().flatten().copied().chain([n.output]) {
            if seen.insert(t) {
                for (kind, message) in tensor_problems(g, t) {
                    report(kind, message);
                }
            }
        }
    }
    for (io, list) in [("input", &g.inputs), ("output", &g.outputs)] {
        for &t in list {
            if seen.insert(t) {
                let dtype = tensor_dtype_problem(g, t).map(|m| (ProblemKind::Dtype, m));
                for (kind, message) in dtype.into_iter().chain(tensor_problems(g, t)) {
                    problems.push(Problem {
                        node: g.tensors[t].name.clone(),
                        op: io.into(),
                        kind,
                        message,
                    });
                }
            }
        }
    }
    problems
}

/// How a tensor is named in messages.
fn display_name(g: &Graph, t: TensorId) -> String {
    match g.tensors[t].name.as_str() {
        "" => "an intermediate tensor".to_string(),
        name => format!("`{name}`"),
    }
}

/// The one element-type problem of node `n`: the kernels it would need that this
/// build does not have. Quantized (int8) activations need int8 kernels; f32
/// activations with int8 weights need hybrid (dynamic-range) kernels; anything else
/// that is not f32 has no kernel at all.
fn dtype_problem(g: &Graph, n: &Node) -> Option<String> {
    let tensors: Vec<TensorId> = n
        .inputs
        .iter()
        .flatten()
        .copied()
        .chain([n.output])
        .collect();
    let odd: Vec<TensorId> = tensors
        .iter()
        .copied()
        .filter(|&t| g.tensors[t].dtype != DType::F32 || g.tensors[t].quant.is_some())
        .collect();
    if odd.is_empty() {
        return None;
    }
    // What each odd tensor is; with its name where that helps (exporters' names
    // of quantized tensors run to hundreds of characters and add nothing here).
    let describe = |t: TensorId, named: bool| {
        let tensor = &g.tensors[t];
        let what = if tensor.is_const() {
            "constant"
        } else {
            "tensor"
        };
        let quant = match &tensor.quant {
            Some(q) if q.axis.is_some() => ", quantized per channel",
            Some(_) => ", quantized per tensor",
            None => "",
        };
        let name = if named {
            format!(" {}", display_name(g, t))
        } else {
            String::new()
        };
        format!(
            "{what}{name} of element type {}{quant}",
            tensor.dtype.name()
        )
    };
    let list = |named: bool| {
        let mut seen: Vec<String> = vec![];
        for &t in &odd {
            let d = describe(t, named);
            if !seen.contains(&d) {
                seen.push(d);
            }
        }
        seen.join("; ")
    };
    let runtime_int8 = tensors
        .iter()
        .any(|&t| !g.tensors[t].is_const() && matches!(g.tensors[t].dtype, DType::I8 | DType::U8));
    let const_int8 = odd
        .iter()
        .any(|&t| g.tensors[t].is_const() && g.tensors[t].dtype == DType::I8);
    Some(if runtime_int8 {
        format!(
            "int8 kernels are not in this build yet, so int8 (fully quantized) models cannot run ({}); import the model's float version meanwhile",
            list(false)
        )
    } else if const_int8 {
        format!(
            "hybrid (dynamic-range) kernels, f32 activations with int8 weights, are not in this build yet ({}); import a float model without weight quantization meanwhile",
            list(false)
        )
    } else {
        format!(
            "the runtime computes in f32 only and has no kernel for {}",
            list(true)
        )
    })
}

/// The element-type problem of a graph input or output no node touches.
fn tensor_dtype_problem(g: &Graph, t: TensorId) -> Option<String> {
    let tensor = &g.tensors[t];
    if tensor.dtype == DType::F32 && tensor.quant.is_none() {
        return None;
    }
    Some(format!(
        "{} has element type {}{}; the runtime computes in f32 only (int8 kernels are not in this build yet)",
        display_name(g, t),
        tensor.dtype.name(),
        if tensor.quant.is_some() {
            ", quantized"
        } else {
            ""
        }
    ))
}

/// What is wrong with tensor `t` for the runtime, besides its element type.
fn tensor_problems(g: &Graph, t: TensorId) -> Vec<(ProblemKind, String)> {
    let tensor = &g.tensors[t];
    let name = display_name(g, t);
    let mut v = vec![];
    if let Some(d) = &tensor.data
        && d.dtype() != tensor.dtype
    {
        v.push((
            ProblemKind::Dtype,
            format!(
                "{name} is declared {} but holds {} data; this is a bug in cargo-medwasm, please report it",
                tensor.dtype.name(),
                d.dtype().name()
            ),
        ));
    }
    if tensor.dims.len() > MAX_RANK {
        v.push((
            ProblemKind::Shape,
            format!(
                "{name} has rank {}; the runtime supports at most {MAX_RANK}",
                tensor.dims.len()
            ),
        ));
    }
    if tensor.dims.contains(&0) {
        v.push((
            ProblemKind::Shape,
            format!(
                "{name} has shape {:?} with a zero dimension; the runtime has no empty tensors",
                tensor.dims
            ),
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;

    use super::check;
    use crate::convert::ProblemKind;
    use crate::convert::ir::{Data, Graph, Op, Tensor};
    use crate::convert::testing::input;

    #[test]
    fn integer_tensors_zero_dims_and_high_ranks_are_each_reported() {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 4]);
        let k = g.add_tensor(Tensor::constant("k", vec![1, 4], Data::I8(vec![1; 4])));
        let s = g.add_node(
            "add",
            Op::Binary {
                op: medwasm::kernels::binary::BinOp::Add,
                act: Act::None,
            },
            vec![Some(x), Some(k)],
            vec![1, 4],
        );
        let e = g.add_node("empty", Op::Copy, vec![Some(s)], vec![1, 0, 4]);
        let deep = g.add_node("deep", Op::Copy, vec![Some(e)], vec![1; 7]);
        g.outputs.push(deep);
        let problems = check(&g);
        let summary: Vec<(&str, ProblemKind)> =
            problems.iter().map(|p| (p.node.as_str(), p.kind)).collect();
        assert_eq!(
            summary,
            [
                ("add", ProblemKind::Dtype),
                ("empty", ProblemKind::Shape),
                ("deep", ProblemKind::Shape),
            ],
            "{problems:?}"
        );
        assert!(
            problems[0]
                .message
                .contains("hybrid (dynamic-range) kernels")
                && problems[0]
                    .message
                    .contains("(constant of element type i8)"),
            "{}",
            problems[0].message
        );
        assert!(problems[1].message.contains("zero dimension"));
        assert!(problems[2].message.contains("rank 7"));
    }

    #[test]
    fn more_graph_inputs_than_the_format_holds_is_a_limit() {
        let mut g = Graph::default();
        let mut parts = vec![];
        for i in 0..17 {
            parts.push(Some(input(&mut g, &format!("x{i}"), &[1, 1])));
        }
        let y = g.add_node("cat", Op::Concat { axis: 1 }, parts, vec![1, 17]);
        g.outputs.push(y);
        let kinds: Vec<ProblemKind> = check(&g).iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [ProblemKind::Limit, ProblemKind::Limit]);
    }
}
