//! The support check of the shared lowering: everything in an IR graph (from any
//! frontend) that the runtime cannot run or the format cannot describe, reported
//! at once, before planning.

use std::collections::HashSet;

use medwasm::format::{MAX_GRAPH_IO, MAX_NODE_INPUTS, MAX_RANK};

use super::ir::{DType, Graph, TensorId};
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
                for (kind, message) in tensor_problems(g, t) {
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

/// What is wrong with tensor `t` for the runtime.
fn tensor_problems(g: &Graph, t: TensorId) -> Vec<(ProblemKind, String)> {
    let tensor = &g.tensors[t];
    let name = if tensor.name.is_empty() {
        "an intermediate tensor".to_string()
    } else {
        format!("`{}`", tensor.name)
    };
    let mut v = vec![];
    if tensor.dtype != DType::F32 {
        v.push((
            ProblemKind::Dtype,
            format!(
                "{name} has element type {}; the runtime computes in f32 only (int8 execution comes later)",
                tensor.dtype.name()
            ),
        ));
    } else if tensor.quant.is_some() {
        v.push((
            ProblemKind::Dtype,
            format!("{name} is quantized; the runtime has no quantized kernels yet"),
        ));
    }
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
        assert!(problems[0].message.contains("`k` has element type i8"));
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
