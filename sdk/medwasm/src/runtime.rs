//! The plan executor: runs a validated model in a caller-provided arena.
//! Inference allocates nothing; every tensor sits at the offset the converter's
//! static memory plan gave it.

use crate::cast::{f32s, f32s_mut};
use crate::error::Error;
use crate::format::{ALIGN, MAX_NODE_INPUTS, Storage};
use crate::model::{Model, TensorInfo, TensorRecord};
use crate::ops;

/// A model bound to an arena, ready to run.
#[derive(Debug)]
pub struct Runtime<'m, 'a> {
    model: Model<'m>,
    arena: &'a mut [u8],
}

impl<'m, 'a> Runtime<'m, 'a> {
    /// Binds `model` to `arena`, which must be 16-byte aligned and at least
    /// `model.arena_bytes()` long. The arena is zeroed.
    pub fn new(model: Model<'m>, arena: &'a mut [u8]) -> Result<Self, Error> {
        if arena.len() < model.arena_bytes() {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_bytes(),
                actual: arena.len(),
            });
        }
        if !(arena.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(Error::Misaligned { what: "arena" });
        }
        let arena = &mut arena[..model.arena_bytes()];
        arena.fill(0);
        Ok(Runtime { model, arena })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    fn arena_slice(&self, rec: &TensorRecord) -> Result<&[f32], Error> {
        let bytes = self
            .arena
            .get(rec.offset..rec.offset + rec.byte_len)
            .ok_or(Error::Malformed {
                what: "tensor outside the arena",
                index: 0,
            })?;
        f32s(bytes).ok_or(Error::Misaligned { what: "arena" })
    }

    fn io_record(&self, info: TensorInfo<'_>) -> Result<TensorRecord, Error> {
        self.model.tensor(info.tensor)
    }

    /// Input `i`'s buffer, for writing in place (no checks: [`Self::run`] checks).
    pub fn input_mut(&mut self, i: usize) -> Result<&mut [f32], Error> {
        let rec = self.io_record(self.model.input(i)?)?;
        let bytes = self
            .arena
            .get_mut(rec.offset..rec.offset + rec.byte_len)
            .ok_or(Error::Malformed {
                what: "tensor outside the arena",
                index: 0,
            })?;
        f32s_mut(bytes).ok_or(Error::Misaligned { what: "arena" })
    }

    /// Input `i`'s current contents.
    pub fn input(&self, i: usize) -> Result<&[f32], Error> {
        self.arena_slice(&self.io_record(self.model.input(i)?)?)
    }

    /// Output `i` of the last run.
    pub fn output(&self, i: usize) -> Result<&[f32], Error> {
        self.arena_slice(&self.io_record(self.model.output(i)?)?)
    }

    /// Copies `data` into input `i` after checking its length and that every element
    /// is finite.
    pub fn set_input(&mut self, i: usize, data: &[f32]) -> Result<(), Error> {
        let expected = self.model.input(i)?.len();
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

    /// Runs the graph on the current inputs. Refuses NaN or infinite inputs.
    pub fn run(&mut self) -> Result<(), Error> {
        self.run_in::<ops::AllOps>()
    }

    /// [`Runtime::run`] for a build that links the operators of `S` only (the model
    /// must have been loaded with [`Model::load_in`] for the same `S`).
    pub fn run_in<S: ops::OpSet>(&mut self) -> Result<(), Error> {
        for i in 0..self.model.input_count() {
            check_finite(i, self.input(i)?)?;
        }
        for n in 0..self.model.node_count() {
            let node = self.model.node(n)?;
            let p = ops::prepare_in::<S>(&self.model, n, &node)?;
            run_node::<S>(&self.model, &p, self.arena)?;
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

/// Splits the arena into the node's writable regions (output, scratch) and the
/// read-only gaps between them, then runs the kernel. The loader has checked that
/// no input overlaps a writable region, so each input lies inside one gap.
fn run_node<S: ops::OpSet>(
    model: &Model<'_>,
    p: &ops::Prepared,
    arena: &mut [u8],
) -> Result<(), Error> {
    let bad = Error::Malformed {
        what: "operand outside the arena",
        index: 0,
    };
    let mut regions = [(p.output.offset, p.output.byte_len, 0u8), (0, 0, 1u8)];
    let mut n_regions = 1;
    if let Some(s) = p.scratch {
        regions[1] = (s.offset, s.byte_len, 1);
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

    let mut ins: [&[f32]; MAX_NODE_INPUTS] = [&[]; MAX_NODE_INPUTS];
    for (k, rec) in p.inputs.iter().enumerate().take(p.n_inputs) {
        let Some(rec) = rec else { continue };
        ins[k] = match rec.storage {
            Storage::Const => model.const_f32(rec)?,
            Storage::Arena => {
                let (gbase, gap) = gaps[..=n_regions]
                    .iter()
                    .find(|(gb, gap)| {
                        rec.offset >= *gb && rec.offset + rec.byte_len <= gb + gap.len()
                    })
                    .ok_or(bad)?;
                let start = rec.offset - gbase;
                f32s(&gap[start..start + rec.byte_len])
                    .ok_or(Error::Misaligned { what: "arena" })?
            }
        };
    }
    let out = f32s_mut(out).ok_or(Error::Misaligned { what: "arena" })?;
    let scratch = f32s_mut(scratch).ok_or(Error::Misaligned { what: "arena" })?;
    ops::execute_in::<S>(p, &ins, out, scratch);
    Ok(())
}
