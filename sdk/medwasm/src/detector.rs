//! The detector interface: what a detector crate implements on top of a model.

use crate::error::Error;
use crate::plan::PlanStorage;
use crate::runtime::Runtime;
use crate::view::View;

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

    /// Output `i`'s real values, whatever its element type: an f32 output's
    /// elements, or an int8 output's (`cargo medwasm import --io int8`)
    /// dequantized with its scale and zero point as TFLite's DEQUANTIZE does
    /// (`scale · (q − zero_point)` in f32). What an `interpret` that should work
    /// for both imports reads.
    pub fn output_values(&self, i: usize) -> Result<Values<'r>, Error> {
        let view = self.rt.output_view(i)?;
        let scale_zero = match view {
            View::F32(_) => (1.0, 0.0),
            View::I8(_) => match self.rt.model().output(i)?.quant {
                Some(q) => (q.scale, q.zero_point as f32),
                // The loader refuses an int8 graph output without its quantization.
                None => {
                    return Err(crate::error::malformed(
                        "int8 graph output without quantization",
                        i,
                    ));
                }
            },
            other => {
                return Err(Error::WrongDtype {
                    output: true,
                    index: i as u32,
                    dtype: other.dtype(),
                });
            }
        };
        Ok(Values {
            view,
            scale_zero,
            at: 0,
        })
    }
}

/// The real values of an output ([`Io::output_values`]).
#[derive(Debug, Clone)]
pub struct Values<'r> {
    view: View<'r>,
    /// Scale and zero point (1 and 0 for an f32 output).
    scale_zero: (f32, f32),
    at: usize,
}

impl Iterator for Values<'_> {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        let value = match self.view {
            View::F32(s) => *s.get(self.at)?,
            View::I8(s) => self.scale_zero.0 * (f32::from(*s.get(self.at)?) - self.scale_zero.1),
            _ => return None,
        };
        self.at += 1;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.view.len().saturating_sub(self.at);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Values<'_> {}

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

/// Loads `D`'s model, prepares it into `plan` and `arena`, sets the inputs (real
/// values: an int8 input's are quantized, [`Runtime::set_input_values`]), runs,
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
        rt.set_input_values(i, data)?;
    }
    rt.run_in::<Linked<D>>()?;
    detector.interpret(&Io::new(&rt))
}
