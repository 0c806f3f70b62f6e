//! The support check of the shared lowering: everything in an IR graph (from any
//! frontend) that the runtime cannot run or the format cannot describe, reported
//! at once, before planning. Each node's kernel comes from the back end
//! ([`super::backend::select`]), so what passes the check is exactly what the
//! planner and the writer get.

use std::collections::HashSet;

use medwasm::format::{MAX_GRAPH_IO, MAX_NODE_INPUTS, MAX_RANK};

use super::backend::{self, Kernel};
use super::ir::{DType, Graph, TensorId};
use super::{Problem, ProblemKind};

/// The kernel of every node of `g`, or every problem that keeps `g` from running,
/// per node, each tensor reported once.
pub fn check(g: &Graph, opts: &backend::Options) -> Result<Vec<Kernel>, Vec<Problem>> {
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
    let mut kernels = vec![];
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
        match backend::select(g, n, opts) {
            Ok(k) => kernels.push(k),
            Err(issues) => {
                for (kind, message) in issues {
                    report(kind, message);
                }
            }
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
            let dtype = io_dtype_problem(g, t).map(|m| (ProblemKind::Dtype, m));
            let others = if seen.insert(t) {
                tensor_problems(g, t)
            } else {
                vec![]
            };
            for (kind, message) in dtype.into_iter().chain(others) {
                problems.push(Problem {
                    node: g.tensors[t].name.clone(),
                    op: io.into(),
                    kind,
                    message,
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(kernels)
    } else {
        Err(problems)
    }
}

/// How a tensor is named in messages.
fn display_name(g: &Graph, t: TensorId) -> String {
    match g.tensors[t].name.as_str() {
        "" => "an intermediate tensor".to_string(),
        name => format!("`{name}`"),
    }
}

/// The element-type problem of a graph input or output: the detector's ABI takes
/// and returns f32, or int8 with per-tensor quantization (`import --io int8`; with
/// `--io f32` int8 ones are quantized and dequantized at the graph's edge before
/// this check).
fn io_dtype_problem(g: &Graph, t: TensorId) -> Option<String> {
    let tensor = &g.tensors[t];
    if tensor.dtype == DType::F32 && tensor.quant.is_none()
        || crate::convert::passes::edges::int8_per_tensor(tensor).is_some()
    {
        return None;
    }
    Some(format!(
        "{} has element type {}{}; graph inputs and outputs must be f32, or int8 with per-tensor quantization",
        display_name(g, t),
        tensor.dtype.name(),
        match &tensor.quant {
            Some(q) if q.axis.is_some() => ", quantized per channel",
            Some(_) => ", quantized",
            None => "",
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
        let problems = check(&g, &Default::default()).unwrap_err();
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
            problems[0].message.contains("no kernel computes Add")
                && problems[0].message.contains("constant of element type i8"),
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
        let kinds: Vec<ProblemKind> = check(&g, &Default::default())
            .unwrap_err()
            .iter()
            .map(|p| p.kind)
            .collect();
        assert_eq!(kinds, [ProblemKind::Limit, ProblemKind::Limit]);
    }
}
