//! Plan storage on the heap, for hosts (tests, the CLI, the conformance suite).

use core::mem::MaybeUninit;
use std::vec::Vec;

use super::{Operand, PlanSize, PlanStorage, Step};
use crate::model::Model;

/// Heap storage for a prepared plan: what hosts hand [`crate::Runtime::new`]
/// where a detector uses a static [`super::PlanArrays`].
#[derive(Debug, Default)]
pub struct PlanBuf {
    steps: Vec<MaybeUninit<Step>>,
    operands: Vec<MaybeUninit<Operand>>,
}

impl PlanBuf {
    /// Room for `steps` steps and `operands` operands (`NODES` and `OPERANDS` of a
    /// detector's generated `src/model.rs`).
    pub fn new(steps: usize, operands: usize) -> PlanBuf {
        let mut buf = PlanBuf::default();
        buf.steps.resize_with(steps, MaybeUninit::uninit);
        buf.operands.resize_with(operands, MaybeUninit::uninit);
        buf
    }

    /// Room for `model`'s plan.
    pub fn for_model(model: &Model<'_>) -> PlanBuf {
        let size = PlanSize::of(model);
        PlanBuf::new(size.steps, size.operands)
    }

    /// The buffers as [`PlanStorage`].
    pub fn storage(&mut self) -> PlanStorage<'_> {
        PlanStorage::new(&mut self.steps, &mut self.operands)
    }
}
