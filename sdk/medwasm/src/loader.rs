//! The validating loader: [`Model::load`] reads a blob's tables (`model.rs`), then
//! prepares every node with the per-operator checks of [`crate::ops`] and makes the
//! checks only the whole graph can make.
//!
//! It sits above both so that dependencies point one way: the records know no
//! operator, the operators read records, and this module (with the plan builder
//! above it) uses both. When [`Model::load`] returns, execution can never index out
//! of bounds whatever the blob says.

use crate::error::{Error, malformed};
use crate::format::{MAX_GRAPH_IO, MAX_WORK_PER_ELEMENT};
use crate::model::{Model, TensorRecord};
use crate::ops::{self, AllOps, OpSet, Prepared};

impl<'a> Model<'a> {
    /// Validates `blob` and returns a view of it: the header, the checksum, every
    /// table entry and every node's shapes are checked before it returns.
    ///
    /// The blob must start at a 16-byte aligned address (use `include_model!`, or
    /// `AlignedBuf` on the host), so that weights can be borrowed as `&[f32]`.
    pub fn load(blob: &'a [u8]) -> Result<Model<'a>, Error> {
        Self::load_in::<AllOps>(blob)
    }

    /// [`Model::load`] for a build that links the operators of `S` only: a blob with
    /// any other operator is refused ([`Error::UnlinkedOperator`]).
    pub fn load_in<S: OpSet>(blob: &'a [u8]) -> Result<Model<'a>, Error> {
        let model = Model::read_tables(blob)?;
        prepare_nodes::<S>(&model, |_, _| Ok(()))?;
        Ok(model)
    }
}

/// Prepares every node of `model` in order for the operators of `S`, checks what
/// it writes against the graph inputs, and hands each to `each`: the loader's node
/// checks, shared by [`Model::load_in`] and the plan builder so that a plan is made
/// only of nodes the loader accepts.
pub(crate) fn prepare_nodes<S: OpSet>(
    model: &Model<'_>,
    mut each: impl FnMut(usize, &Prepared) -> Result<(), Error>,
) -> Result<(), Error> {
    // The graph inputs' byte ranges, decoded once (at most `MAX_GRAPH_IO`).
    let mut pinned = [(0, 0); MAX_GRAPH_IO];
    let pinned = pinned
        .get_mut(..model.input_count())
        .ok_or(malformed("too many graph inputs or outputs", 0))?;
    for (g, range) in pinned.iter_mut().enumerate() {
        let input = model.tensor(model.io_tensor(g)?)?;
        *range = (input.offset, input.offset + input.byte_len);
    }
    let hits = |rec: &TensorRecord| {
        let (start, end) = (rec.offset, rec.offset + rec.byte_len);
        pinned.iter().any(|&(s, e)| start < e && s < end)
    };
    for i in 0..model.node_count() {
        let node = model.node(i)?;
        let p = ops::prepare_in::<S>(model, i, &node)?;
        // Nothing may write into a graph input: inputs are pinned for the whole run
        // so a host can write them once and the detector can read them afterwards.
        // (Outputs and scratch are arena tensors, as graph inputs are.)
        if hits(&p.output) || p.scratch.as_ref().is_some_and(hits) {
            return Err(malformed("node writes over a graph input", i));
        }
        // No blob may stall a device: a node's work is bounded by the memory its
        // tensors occupy (the shape checks alone let a pooling window of 2^30
        // padding taps through on a one-element input).
        if ops::work(&p) > ops::tensor_elements(&p).saturating_mul(MAX_WORK_PER_ELEMENT) {
            return Err(malformed(ops::TOO_MUCH_WORK, i));
        }
        each(i, &p)?;
    }
    Ok(())
}
