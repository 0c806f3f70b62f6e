//! The plan executor: runs a validated model in caller-provided memory.
//!
//! [`Runtime::new`] prepares the model once into a plan ([`crate::Step`]); a run
//! then checks the inputs are finite and executes the plan's steps, decoding no
//! record and allocating nothing. Every tensor sits at the offset the converter's
//! static memory plan gave it.

use crate::cast::{f32s, f32s_mut};
use crate::error::{Error, malformed};
use crate::format::{ALIGN, DType, MAX_NODE_INPUTS};
use crate::model::Model;
use crate::ops::{self, AllOps, OpSet};
use crate::plan::{Operand, Place, Plan, PlanStorage, Step};
use crate::view::{View, ViewMut};

/// A model prepared into a plan and bound to an arena, ready to run.
#[derive(Debug)]
pub struct Runtime<'m, 'a> {
    model: Model<'m>,
    arena: &'a mut [u8],
    plan: Plan<'a>,
}

/// `[offset, offset + bytes)` as a range, if it does not overflow.
fn range(offset: u32, bytes: u32) -> Option<core::ops::Range<usize>> {
    let start = offset as usize;
    Some(start..start.checked_add(bytes as usize)?)
}

impl<'m, 'a> Runtime<'m, 'a> {
    /// Prepares `model` into `plan` (which must hold [`crate::PlanSize::of`] the
    /// model) and binds it to `arena`, which must be 16-byte aligned and at least
    /// `model.arena_bytes()` long. The arena is zeroed.
    pub fn new(
        model: Model<'m>,
        arena: &'a mut [u8],
        plan: PlanStorage<'a>,
    ) -> Result<Self, Error> {
        Self::new_in::<AllOps>(model, arena, plan)
    }

    /// [`Runtime::new`] for a build that links the operators of `S` only: a model
    /// with another operator gives [`Error::UnlinkedOperator`].
    ///
    /// Building the plan runs every per-node check of [`Model::load_in`], so the
    /// detector glue calls this on a model whose tables alone were read.
    pub fn new_in<S: OpSet>(
        model: Model<'m>,
        arena: &'a mut [u8],
        plan: PlanStorage<'a>,
    ) -> Result<Self, Error> {
        if arena.len() < model.arena_bytes() {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_bytes(),
                actual: arena.len(),
            });
        }
        if !(arena.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(Error::Misaligned { what: "arena" });
        }
        let plan = Plan::build::<S>(&model, plan)?;
        let arena = &mut arena[..model.arena_bytes()];
        arena.fill(0);
        Ok(Runtime { model, arena, plan })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// The steps of the plan, one per node in execution order.
    pub fn steps(&self) -> &[Step] {
        self.plan.steps
    }

    /// Where graph input `i` (`output` false) or output `i` lies.
    fn io(&self, output: bool, i: usize) -> Result<Operand, Error> {
        let count = if output {
            self.model.output_count()
        } else {
            self.model.input_count()
        };
        if i >= count {
            return Err(Error::BadIndex {
                index: i as u32,
                count: count as u32,
            });
        }
        let at = self.plan.io + if output { self.model.input_count() } else { 0 } + i;
        self.plan
            .operands
            .get(at)
            .copied()
            .ok_or(malformed("graph input or output missing from the plan", i))
    }

    fn arena_bytes(&self, io: Operand) -> Result<&[u8], Error> {
        range(io.offset, io.bytes)
            .and_then(|r| self.arena.get(r))
            .ok_or(malformed("tensor outside the arena", 0))
    }

    fn arena_bytes_mut(&mut self, io: Operand) -> Result<&mut [u8], Error> {
        range(io.offset, io.bytes)
            .and_then(|r| self.arena.get_mut(r))
            .ok_or(malformed("tensor outside the arena", 0))
    }

    /// Graph input (`output` false) or output `i`, which must hold f32 elements.
    fn f32_io(&self, output: bool, i: usize) -> Result<Operand, Error> {
        let io = self.io(output, i)?;
        if io.dtype != DType::F32 {
            return Err(Error::WrongDtype {
                output,
                index: i as u32,
                dtype: io.dtype,
            });
        }
        Ok(io)
    }

    fn arena_slice(&self, io: Operand) -> Result<&[f32], Error> {
        f32s(self.arena_bytes(io)?).ok_or(Error::Misaligned { what: "arena" })
    }

    /// Input `i`'s buffer, for writing in place (no checks: [`Self::run`] checks).
    /// An error for an input that does not hold f32 ([`Self::input_view_mut`]).
    pub fn input_mut(&mut self, i: usize) -> Result<&mut [f32], Error> {
        let io = self.f32_io(false, i)?;
        f32s_mut(self.arena_bytes_mut(io)?).ok_or(Error::Misaligned { what: "arena" })
    }

    /// Input `i`'s current contents (f32 inputs; [`Self::input_view`] for any).
    pub fn input(&self, i: usize) -> Result<&[f32], Error> {
        self.arena_slice(self.f32_io(false, i)?)
    }

    /// Output `i` of the last run (f32 outputs; [`Self::output_view`] for any).
    pub fn output(&self, i: usize) -> Result<&[f32], Error> {
        self.arena_slice(self.f32_io(true, i)?)
    }

    /// Input `i`'s current contents, as its element type.
    pub fn input_view(&self, i: usize) -> Result<View<'_>, Error> {
        let io = self.io(false, i)?;
        View::of(io.dtype, self.arena_bytes(io)?).ok_or(Error::Misaligned { what: "arena" })
    }

    /// Input `i`'s buffer as its element type, for writing in place.
    pub fn input_view_mut(&mut self, i: usize) -> Result<ViewMut<'_>, Error> {
        let io = self.io(false, i)?;
        ViewMut::of(io.dtype, self.arena_bytes_mut(io)?).ok_or(Error::Misaligned { what: "arena" })
    }

    /// Output `i` of the last run, as its element type.
    pub fn output_view(&self, i: usize) -> Result<View<'_>, Error> {
        let io = self.io(true, i)?;
        View::of(io.dtype, self.arena_bytes(io)?).ok_or(Error::Misaligned { what: "arena" })
    }

    /// Copies `data` into input `i` after checking its length and that every element
    /// is finite.
    pub fn set_input(&mut self, i: usize, data: &[f32]) -> Result<(), Error> {
        let expected = self.f32_io(false, i)?.bytes as usize / 4;
        if data.len() != expected {
            return Err(Error::InputLength {
                input: i as u32,
                expected,
                actual: data.len(),
            });
        }
        check_finite(i, data)?;
        self.input_mut(i)?.copy_from_slice(data);
        Ok(())
    }

    /// Copies real values into input `i`, whatever its element type: an f32 input
    /// as [`Self::set_input`] does, an int8 one (`cargo medwasm import --io int8`)
    /// quantized with its scale and zero point as TFLite's QUANTIZE does. NaN and
    /// infinities are refused for both: an int8 input has no value for them.
    pub fn set_input_values(&mut self, i: usize, data: &[f32]) -> Result<(), Error> {
        let io = self.io(false, i)?;
        if io.dtype == DType::F32 {
            return self.set_input(i, data);
        }
        let quant = match (io.dtype, self.model.input(i)?.quant) {
            (DType::I8, Some(q)) => q,
            (dtype, _) => {
                return Err(Error::WrongDtype {
                    output: false,
                    index: i as u32,
                    dtype,
                });
            }
        };
        let expected = io.bytes as usize / io.dtype.size();
        if data.len() != expected {
            return Err(Error::InputLength {
                input: i as u32,
                expected,
                actual: data.len(),
            });
        }
        check_finite(i, data)?;
        match self.input_view_mut(i)? {
            ViewMut::I8(x) => {
                crate::kernels::int8::quantize::quantize(quant.scale, quant.zero_point, data, x);
                Ok(())
            }
            other => Err(Error::WrongDtype {
                output: false,
                index: i as u32,
                dtype: other.dtype(),
            }),
        }
    }

    /// Runs the plan on the current inputs. Refuses NaN or infinite inputs.
    pub fn run(&mut self) -> Result<(), Error> {
        self.run_in::<AllOps>()
    }

    /// [`Runtime::run`] for a build that links the operators of `S` only: a step
    /// whose operator is not in `S` gives [`Error::UnlinkedOperator`], never a
    /// skipped node (prepare with [`Runtime::new_in`] for the same `S`, as the
    /// detector glue does, and it cannot happen).
    pub fn run_in<S: OpSet>(&mut self) -> Result<(), Error> {
        for i in 0..self.model.input_count() {
            // Only f32 inputs can hold NaN or infinities.
            if let View::F32(data) = self.input_view(i)? {
                check_finite(i, data)?;
            }
        }
        let blob = self.model.blob();
        for (node, step) in self.plan.steps.iter().enumerate() {
            run_step::<S>(node, blob, step, self.plan.operands, self.arena)?;
        }
        Ok(())
    }
}

fn check_finite(i: usize, data: &[f32]) -> Result<(), Error> {
    match data.iter().position(|v| !v.is_finite()) {
        Some(position) => Err(Error::NonFinite {
            input: i as u32,
            position,
        }),
        None => Ok(()),
    }
}

/// Splits the arena into the step's writable regions (output, scratch) and the
/// read-only gaps between them, then runs the kernel. The loader has checked that
/// no input overlaps a writable region, so each input lies inside one gap; every
/// slice is still taken with a checked range, so even a wrong plan could not make a
/// kernel read or write outside the arena or the blob.
fn run_step<S: OpSet>(
    node: usize,
    blob: &[u8],
    step: &Step,
    operands: &[Operand],
    arena: &mut [u8],
) -> Result<(), Error> {
    let bad = malformed("operand outside the arena", node);
    let output = (step.output.offset as usize, step.output.bytes as usize, 0u8);
    let mut regions = [output, (0, 0, 1u8)];
    let mut n_regions = 1;
    if step.scratch.bytes > 0 {
        regions[1] = (step.scratch.offset as usize, step.scratch.bytes as usize, 1);
        n_regions = 2;
        if regions[1].0 < regions[0].0 {
            regions.swap(0, 1);
        }
    }
    let mut gaps: [(usize, &[u8]); 3] = [(0, &[]), (0, &[]), (0, &[])];
    let mut out: &mut [u8] = &mut [];
    let mut scratch: &mut [u8] = &mut [];
    let mut rest: &mut [u8] = arena;
    let mut base = 0;
    for (g, &(off, len, which)) in regions[..n_regions].iter().enumerate() {
        let taken = core::mem::take(&mut rest);
        let (gap, tail) = taken
            .split_at_mut_checked(off.checked_sub(base).ok_or(bad)?)
            .ok_or(bad)?;
        let (region, tail) = tail.split_at_mut_checked(len).ok_or(bad)?;
        gaps[g] = (base, gap);
        if which == 0 {
            out = region;
        } else {
            scratch = region;
        }
        rest = tail;
        base = off + len;
    }
    gaps[n_regions] = (base, rest);

    let first = step.first as usize;
    let n = step.n_inputs as usize;
    let inputs = first
        .checked_add(n)
        .and_then(|end| operands.get(first..end))
        .ok_or(bad)?;
    let mut ins: [Option<View<'_>>; MAX_NODE_INPUTS] = [None; MAX_NODE_INPUTS];
    let slots = ins.get_mut(..n).ok_or(bad)?;
    for (slot, operand) in slots.iter_mut().zip(inputs) {
        let span = range(operand.offset, operand.bytes).ok_or(bad)?;
        *slot = match operand.place {
            Place::Absent => None,
            Place::Const => {
                let bytes = blob
                    .get(span)
                    .ok_or(malformed("constant out of bounds", node))?;
                Some(
                    View::of(operand.dtype, bytes)
                        .ok_or(Error::Misaligned { what: "model blob" })?,
                )
            }
            Place::Arena => {
                let (gbase, gap) = gaps[..=n_regions]
                    .iter()
                    .find(|(gb, gap)| span.start >= *gb && span.end <= gb + gap.len())
                    .ok_or(bad)?;
                let bytes = &gap[span.start - gbase..span.end - gbase];
                Some(View::of(operand.dtype, bytes).ok_or(Error::Misaligned { what: "arena" })?)
            }
        };
    }
    let out = ViewMut::of(step.out_dtype, out).ok_or(Error::Misaligned { what: "arena" })?;
    let scratch =
        ViewMut::of(step.scratch_dtype, scratch).ok_or(Error::Misaligned { what: "arena" })?;
    ops::execute_in::<S>(node, &step.kind, &ins[..n], out, scratch)
}
