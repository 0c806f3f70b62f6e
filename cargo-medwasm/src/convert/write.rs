//! Serialization of a planned graph into the blob: tensor records (constants with
//! their data, arena tensors at their planned offsets, int8 tensors with their
//! per-tensor quantization), then each node as its kernel says: operator, operands
//! (the kernel's own constants appended as they come), scratch and parameter words.
//! Keeps names of graph inputs and outputs only (other names are long in exported
//! models and nothing at run time reads them).

use medwasm::format::{
    BlobWriter, DType as BlobDType, HEADER_LEN, NO_TENSOR, NODE_RECORD_LEN, NodeSpec,
    TENSOR_RECORD_LEN, TensorSpec,
};

use super::backend::{Kernel, Operand, record_quant};
use super::ir::{DType, Graph};
use super::plan::Plan;

/// Why a planned graph could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The blob would exceed a limit of the format (the message names it).
    TooLarge(String),
    /// Something the earlier steps should have refused or lowered (a converter bug).
    Bug(String),
}

/// Writes the blob of `g`, whose nodes run `kernels`, placed by `plan`.
pub fn write(g: &Graph, plan: &Plan, kernels: &[Kernel]) -> Result<Vec<u8>, WriteError> {
    let w = records(g, plan, kernels)?;
    let len = blob_len(&w);
    if len > u32::MAX as usize {
        return Err(WriteError::TooLarge(format!(
            "the blob would need {len} bytes ({} of them constants) but the model format addresses at most 4 GiB (u32 offsets)",
            w.data_bytes()
        )));
    }
    Ok(w.finish())
}

/// The tensor and node records of `g` placed by `plan`.
fn records(g: &Graph, plan: &Plan, kernels: &[Kernel]) -> Result<BlobWriter, WriteError> {
    if kernels.len() != g.nodes.len() {
        return Err(WriteError::Bug(format!(
            "{} kernels for {} nodes",
            kernels.len(),
            g.nodes.len()
        )));
    }
    let mut w = BlobWriter::default();
    let nt = g.tensors.len();
    let mut map = vec![None::<u32>; nt];
    let keep_name = |t: usize| g.inputs.contains(&t) || g.outputs.contains(&t);
    let u32_of = |v: usize, what: &str| {
        u32::try_from(v).map_err(|_| WriteError::Bug(format!("{what} {v} does not fit in u32")))
    };
    let dims_of = |dims: &[usize]| -> Result<Vec<u32>, WriteError> {
        dims.iter().map(|&d| u32_of(d, "dimension")).collect()
    };

    // Tensors: only those the graph or some kernel uses (weights a kernel re-laid
    // into a constant of its own are not written twice).
    let mut used = vec![false; nt];
    for &t in g.inputs.iter().chain(&g.outputs) {
        used[t] = true;
    }
    for (n, k) in g.nodes.iter().zip(kernels) {
        used[n.output] = true;
        for op in &k.inputs {
            if let Operand::Tensor(t) = op {
                used[*t] = true;
            }
        }
    }
    for t in (0..nt).filter(|&t| used[t]) {
        let tensor = &g.tensors[t];
        let dtype = blob_dtype(tensor.dtype).ok_or_else(|| {
            WriteError::Bug(format!(
                "tensor `{}` of element type {} reached the writer",
                tensor.name,
                tensor.dtype.name()
            ))
        })?;
        map[t] = Some(u32_of(w.tensors.len(), "tensor count")?);
        w.tensors.push(TensorSpec {
            name: if keep_name(t) {
                tensor.name.clone()
            } else {
                String::new()
            },
            dtype,
            dims: dims_of(&tensor.dims)?,
            data: tensor.data.as_ref().map(|d| d.le_bytes()),
            arena_offset: u32_of(plan.offsets[t].unwrap_or(0), "arena offset")?,
            quant: record_quant(g, t),
        });
    }
    for (i, (n, k)) in g.nodes.iter().zip(kernels).enumerate() {
        let scratch = match (plan.scratch[i], k.scratch) {
            (Some((offset, _)), Some(s)) => {
                w.tensors.push(TensorSpec {
                    name: String::new(),
                    dtype: s.dtype,
                    dims: vec![u32_of(s.elems, "scratch size")?],
                    data: None,
                    arena_offset: u32_of(offset, "arena offset")?,
                    quant: None,
                });
                u32_of(w.tensors.len() - 1, "tensor count")?
            }
            _ => NO_TENSOR,
        };
        let mut inputs = Vec::with_capacity(k.inputs.len());
        for op in &k.inputs {
            inputs.push(match op {
                Operand::Tensor(t) => map[*t].unwrap_or(NO_TENSOR),
                Operand::Absent => NO_TENSOR,
                Operand::Const(c) => {
                    w.tensors.push(TensorSpec {
                        name: String::new(),
                        dtype: c.dtype,
                        dims: dims_of(&c.dims)?,
                        data: Some(c.bytes.clone()),
                        arena_offset: 0,
                        quant: c.quant,
                    });
                    u32_of(w.tensors.len() - 1, "tensor count")?
                }
            });
        }
        w.nodes.push(NodeSpec {
            op: k.op,
            inputs,
            outputs: vec![map[n.output].unwrap_or(NO_TENSOR)],
            scratch,
            params: k.params.clone(),
        });
    }
    w.inputs = g
        .inputs
        .iter()
        .map(|&t| map[t].unwrap_or(NO_TENSOR))
        .collect();
    w.outputs = g
        .outputs
        .iter()
        .map(|&t| map[t].unwrap_or(NO_TENSOR))
        .collect();
    w.arena_bytes = u32_of(plan.arena_bytes, "arena size")?;
    Ok(w)
}

/// The blob element type of an IR type the runtime holds.
fn blob_dtype(t: DType) -> Option<BlobDType> {
    match t {
        DType::F32 => Some(BlobDType::F32),
        DType::I8 => Some(BlobDType::I8),
        DType::I32 => Some(BlobDType::I32),
        DType::U8 | DType::I64 => None,
    }
}

/// The length `BlobWriter::finish` will write (its layout, computed ahead so that
/// nothing is truncated to u32).
fn blob_len(w: &BlobWriter) -> usize {
    let words: usize = w
        .nodes
        .iter()
        .map(|n| n.inputs.len() + n.outputs.len() + n.params.len())
        .sum();
    let strings: usize = w.tensors.iter().map(|t| t.name.len()).sum();
    let before_data = HEADER_LEN
        + w.tensors.len() * TENSOR_RECORD_LEN
        + w.nodes.len() * NODE_RECORD_LEN
        + (w.inputs.len() + w.outputs.len()) * 4
        + words * 4
        + strings;
    super::plan::align(before_data) + w.data_bytes()
}

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;

    use super::{WriteError, blob_len, records, write};
    use crate::convert::backend::Kernel;
    use crate::convert::ir::{Graph, Op};
    use crate::convert::plan::{Plan, plan};
    use crate::convert::testing::{constant, input, kernels_of};

    fn small() -> Graph {
        let mut g = Graph::default();
        let x = input(&mut g, "input", &[1, 5]);
        let w = constant(&mut g, "w", &[5, 3], vec![0.5; 15]);
        let y = g.add_node(
            "mm",
            Op::Gemm { act: Act::Relu },
            vec![Some(x), Some(w), None],
            vec![1, 3],
        );
        g.tensors[y].name = "output".into();
        g.outputs.push(y);
        g
    }

    fn planned(g: &Graph) -> (Plan, Vec<Kernel>) {
        let k = kernels_of(g);
        (plan(g, &k).unwrap(), k)
    }

    #[test]
    fn the_length_checked_ahead_is_the_length_written() {
        let g = small();
        let (p, k) = planned(&g);
        let w = records(&g, &p, &k).unwrap();
        assert_eq!(blob_len(&w), w.finish().len());
        // Names of odd lengths move the data section to the next 16-byte boundary.
        let mut g = small();
        g.tensors[0].name = "x".into();
        let (p, k) = planned(&g);
        let w = records(&g, &p, &k).unwrap();
        assert_eq!(blob_len(&w), w.finish().len());
        let blob = write(&g, &p, &k).unwrap();
        let aligned = medwasm::AlignedBuf::from_bytes(&blob);
        let model = medwasm::Model::load(aligned.as_slice()).unwrap();
        assert_eq!(model.tensor_count(), 3);
    }

    #[test]
    fn kernels_that_do_not_match_the_nodes_are_a_bug_not_a_blob() {
        let g = small();
        let (p, _) = planned(&g);
        assert!(matches!(write(&g, &p, &[]), Err(WriteError::Bug(m)) if m.contains("0 kernels")));
    }
}
