//! The detector interface: what a detector crate implements on top of a model.

use crate::error::Error;
use crate::plan::PlanStorage;
use crate::runtime::Runtime;

/// What a detector concluded from one inference.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Finding {
    /// A score: anomaly score, class probability …
    pub score: f32,
    /// A label: class index, or 0/1.
    pub label: i32,
    /// Whether to raise an alert.
    pub alert: bool,
}

/// Read access to a finished run's inputs and outputs.
#[derive(Debug)]
pub struct Io<'r, 'm, 'a> {
    rt: &'r Runtime<'m, 'a>,
}

impl<'r, 'm, 'a> Io<'r, 'm, 'a> {
    /// Wraps a runtime that has just run.
    pub fn new(rt: &'r Runtime<'m, 'a>) -> Self {
        Io { rt }
    }

    /// Input `i` as given to the run.
    pub fn input(&self, i: usize) -> Result<&'r [f32], Error> {
        self.rt.input(i)
    }

    /// Output `i`.
    pub fn output(&self, i: usize) -> Result<&'r [f32], Error> {
        self.rt.output(i)
    }

    /// Output `i` as its element type (an int8 output of a model imported with
    /// native int8 outputs).
    pub fn output_view(&self, i: usize) -> Result<crate::View<'r>, Error> {
        self.rt.output_view(i)
    }
}

/// A detector: a model plus the interpretation of its outputs.
///
/// Implement it on a type in the detector crate and export it with
/// [`crate::export_detector!`].
pub trait Detector {
    /// The compact model blob (from `medwasm::include_model!`).
    const MODEL: &'static [u8];
    /// Arena bytes the model needs (from the generated `src/model.rs`).
    const ARENA_BYTES: usize;
    /// Steps of the model's prepared plan, one per node (`NODES` in the generated
    /// `src/model.rs`): the runtime prepares the model once, at init, into static
    /// storage of this size.
    const NODES: usize;
    /// Operand slots of the prepared plan (`OPERANDS` in the generated
    /// `src/model.rs`): every node's inputs, then the graph inputs and outputs.
    const OPERANDS: usize;
    /// The operators to link ([`crate::ops::op_bit`] bits; `OPS` in the generated
    /// `src/model.rs`). Only their kernels end up in the artifact; every operator
    /// when not given.
    const OPS: u64 = crate::ops::ALL_OPS;

    /// Turns a finished run into a finding.
    fn interpret(&self, io: &Io<'_, '_, '_>) -> Result<Finding, Error>;
}

/// The operator set of detector `D`, for the generic loader and executor.
#[derive(Debug)]
pub struct Linked<D>(core::marker::PhantomData<D>);

impl<D: Detector> crate::ops::OpSet for Linked<D> {
    const OPS: u64 = D::OPS;
}

/// Loads `D`'s model, prepares it into `plan` and `arena`, sets the inputs, runs,
/// and interprets: the whole detector call for hosts that link the SDK natively
/// (tests), e.g. with `AlignedBuf::zeroed(D::ARENA_BYTES)` and
/// `PlanBuf::new(D::NODES, D::OPERANDS)`.
pub fn run_once<D: Detector>(
    detector: &D,
    arena: &mut [u8],
    plan: PlanStorage<'_>,
    inputs: &[&[f32]],
) -> Result<Finding, Error> {
    let model = crate::Model::load_in::<Linked<D>>(D::MODEL)?;
    let mut rt = Runtime::new_in::<Linked<D>>(model, arena, plan)?;
    if inputs.len() != model.input_count() {
        return Err(Error::BadIndex {
            index: inputs.len() as u32,
            count: model.input_count() as u32,
        });
    }
    for (i, data) in inputs.iter().enumerate() {
        rt.set_input(i, data)?;
    }
    rt.run_in::<Linked<D>>()?;
    detector.interpret(&Io::new(&rt))
}
