//! The prepared plan: one [`Step`] per node holding what running it needs (the
//! decoded [`Kind`] and where its operands, output and scratch lie), built once by
//! [`crate::Runtime::new`] in storage the caller provides, so that a run decodes
//! nothing and allocates nothing.
//!
//! A detector sizes its storage with `NODES` and `OPERANDS` of its generated
//! `src/model.rs` ([`PlanSize`]); [`crate::export_detector!`] declares it as a
//! [`PlanArrays`] static beside the arena, and hosts use `PlanBuf` (`std`).
//!
//! On wasm32 and Cortex-M a [`Step`] takes 124 bytes and an [`Operand`] 12: a Concat's
//! sixteen inputs sit in the shared operand array, not in every step. The largest
//! kinds (Binary with its three shapes, Pad, the convolutions and pooling with their
//! geometry) set the step's size. Each operand and region keeps its element type, so
//! the executor hands a kernel `&[i8]`, `&[i32]`, `&[f32]` or `&[f64]` as prepared.

#[cfg(feature = "std")]
mod buf;

#[cfg(feature = "std")]
pub use buf::PlanBuf;

use core::mem::MaybeUninit;

use crate::error::{Error, malformed};
use crate::format::{DType, Storage};
use crate::loader::prepare_nodes;
use crate::model::{Model, TensorRecord};
use crate::ops::{Kind, OpSet};

/// One prepared node: its kernel and parameters, and where its operands lie.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub(crate) kind: Kind,
    /// Index of the step's first input in the operand array.
    pub(crate) first: u32,
    pub(crate) n_inputs: u8,
    /// Element type of the output.
    pub(crate) out_dtype: DType,
    /// Element type of the scratch (any when it is empty).
    pub(crate) scratch_dtype: DType,
    pub(crate) output: Region,
    /// Empty when the kernel needs no scratch.
    pub(crate) scratch: Region,
}

impl Step {
    /// The decoded kernel and parameters.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }
}

/// Where one input of a step, or one graph input or output, lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operand {
    pub(crate) place: Place,
    pub(crate) dtype: DType,
    /// Byte offset in the blob (constants) or the arena.
    pub(crate) offset: u32,
    pub(crate) bytes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// An optional input the node does not have.
    Absent,
    /// In the blob's data section.
    Const,
    /// In the arena.
    Arena,
}

/// A byte range of the arena that a step writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Region {
    pub(crate) offset: u32,
    pub(crate) bytes: u32,
}

/// Converts a validated offset or length, which lies inside a blob or arena whose
/// size is a `u32` header field, so never fails for a loaded model.
fn word(v: usize) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| malformed("tensor outside its section", 0))
}

impl Operand {
    const ABSENT: Operand = Operand {
        place: Place::Absent,
        dtype: DType::F32,
        offset: 0,
        bytes: 0,
    };

    fn of(model: &Model<'_>, rec: &TensorRecord) -> Result<Operand, Error> {
        Ok(match rec.storage {
            Storage::Const => Operand {
                place: Place::Const,
                dtype: rec.dtype,
                offset: word(model.const_start(rec))?,
                bytes: word(rec.byte_len)?,
            },
            Storage::Arena => Operand {
                place: Place::Arena,
                dtype: rec.dtype,
                offset: word(rec.offset)?,
                bytes: word(rec.byte_len)?,
            },
        })
    }
}

impl Region {
    const EMPTY: Region = Region {
        offset: 0,
        bytes: 0,
    };

    fn of(rec: &TensorRecord) -> Result<Region, Error> {
        Ok(Region {
            offset: word(rec.offset)?,
            bytes: word(rec.byte_len)?,
        })
    }
}

/// Slots a model's plan needs: `NODES` and `OPERANDS` of the generated `src/model.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSize {
    /// Steps: one per node.
    pub steps: usize,
    /// Operands: every node's input slots (absent optional inputs included), then the
    /// graph inputs and outputs.
    pub operands: usize,
}

impl PlanSize {
    /// The plan size of `model`.
    pub fn of(model: &Model<'_>) -> PlanSize {
        PlanSize {
            steps: model.node_count(),
            operands: model.operand_count() + model.input_count() + model.output_count(),
        }
    }
}

/// Caller-provided memory for a plan: [`PlanArrays`] in a static, `PlanBuf` on the
/// host, or any two slices. The slots need no initial value; [`crate::Runtime::new`]
/// writes every one it later reads.
#[derive(Debug)]
pub struct PlanStorage<'p> {
    steps: &'p mut [MaybeUninit<Step>],
    operands: &'p mut [MaybeUninit<Operand>],
}

impl<'p> PlanStorage<'p> {
    /// Storage in two slices, of at least [`PlanSize::steps`] and
    /// [`PlanSize::operands`] slots (more are left unused).
    pub fn new(
        steps: &'p mut [MaybeUninit<Step>],
        operands: &'p mut [MaybeUninit<Operand>],
    ) -> PlanStorage<'p> {
        PlanStorage { steps, operands }
    }
}

/// Plan storage in two fixed arrays, for a `static` (what
/// [`crate::export_detector!`] declares): uninitialized, so it lands in `.bss` and
/// costs no flash.
#[derive(Debug)]
pub struct PlanArrays<const STEPS: usize, const OPERANDS: usize> {
    steps: [MaybeUninit<Step>; STEPS],
    operands: [MaybeUninit<Operand>; OPERANDS],
}

impl<const STEPS: usize, const OPERANDS: usize> PlanArrays<STEPS, OPERANDS> {
    /// Empty storage.
    pub const fn new() -> Self {
        PlanArrays {
            steps: [MaybeUninit::uninit(); STEPS],
            operands: [MaybeUninit::uninit(); OPERANDS],
        }
    }

    /// The arrays as [`PlanStorage`].
    pub fn storage(&mut self) -> PlanStorage<'_> {
        PlanStorage::new(&mut self.steps, &mut self.operands)
    }
}

impl<const STEPS: usize, const OPERANDS: usize> Default for PlanArrays<STEPS, OPERANDS> {
    fn default() -> Self {
        Self::new()
    }
}

/// A built plan: the filled prefix of its storage.
#[derive(Debug)]
pub(crate) struct Plan<'p> {
    pub(crate) steps: &'p [Step],
    /// The steps' inputs, then the graph inputs and outputs (from `io`).
    pub(crate) operands: &'p [Operand],
    pub(crate) io: usize,
}

impl<'p> Plan<'p> {
    /// Prepares every node of `model` for the operators of `S` (the loader's checks,
    /// once more) and writes the plan into `storage`.
    pub(crate) fn build<S: OpSet>(
        model: &Model<'_>,
        storage: PlanStorage<'p>,
    ) -> Result<Plan<'p>, Error> {
        let size = PlanSize::of(model);
        let PlanStorage { steps, operands } = storage;
        let (Some(steps), Some(operands)) = (
            steps.get_mut(..size.steps),
            operands.get_mut(..size.operands),
        ) else {
            let (what, needed, actual) = if steps.len() < size.steps {
                ("steps", size.steps, steps.len())
            } else {
                ("operands", size.operands, operands.len())
            };
            return Err(Error::PlanTooSmall {
                what,
                needed,
                actual,
            });
        };
        // Sized from the same node records that `prepare_nodes` walks, so every
        // `next()` below has a slot; running out would be a bug, reported as one.
        let full = malformed("node operand count", 0);
        let mut slots = operands.iter_mut();
        let mut step_slots = steps.iter_mut();
        prepare_nodes::<S>(model, |_, p| {
            let first = word(size.operands - slots.len())?;
            for input in p.inputs.iter().take(p.n_inputs) {
                let operand = match input {
                    Some(rec) => Operand::of(model, rec)?,
                    None => Operand::ABSENT,
                };
                slots.next().ok_or(full)?.write(operand);
            }
            step_slots.next().ok_or(full)?.write(Step {
                kind: p.kind,
                first,
                n_inputs: p.n_inputs as u8,
                out_dtype: p.output.dtype,
                scratch_dtype: p.scratch.map_or(DType::F32, |s| s.dtype),
                output: Region::of(&p.output)?,
                scratch: match &p.scratch {
                    Some(rec) => Region::of(rec)?,
                    None => Region::EMPTY,
                },
            });
            Ok(())
        })?;
        let io = size.operands - slots.len();
        for g in 0..model.input_count() + model.output_count() {
            let operand = Operand::of(model, &model.tensor(model.io_tensor(g)?)?)?;
            slots.next().ok_or(full)?.write(operand);
        }
        if slots.len() != 0 || step_slots.len() != 0 {
            return Err(full);
        }
        // SAFETY: every slot of `steps` and `operands` (both cut to the plan's size)
        // was written above, as the two iterators ran out; `MaybeUninit<T>` has the
        // layout of `T`.
        let (steps, operands) = unsafe {
            (
                core::slice::from_raw_parts(steps.as_ptr().cast::<Step>(), steps.len()),
                core::slice::from_raw_parts(operands.as_ptr().cast::<Operand>(), operands.len()),
            )
        };
        Ok(Plan {
            steps,
            operands,
            io,
        })
    }
}
