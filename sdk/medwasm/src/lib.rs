#![doc = include_str!("../README.md")]
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(target_endian = "big")]
compile_error!("the medwasm model format is little-endian; big-endian targets are not supported");

mod cast;
mod crc32;
pub mod detector;
pub mod dsp;
mod error;
pub mod format;
pub mod glue;
pub mod kernels;
mod loader;
mod model;
pub mod ops;
mod plan;
mod runtime;
mod shape;
mod view;

#[cfg(feature = "std")]
mod aligned;

#[cfg(feature = "std")]
pub use aligned::AlignedBuf;
pub use crc32::crc32;
pub use detector::{Detector, Finding, Io, Values, run_once};
pub use error::{Error, MessageSink, NAMES as ERROR_NAMES};
pub use format::{DType, Quant};
pub use model::{Model, NodeRecord, TensorInfo, TensorRecord};
#[cfg(feature = "std")]
pub use plan::PlanBuf;
pub use plan::{Operand, PlanArrays, PlanSize, PlanStorage, Step};
pub use runtime::Runtime;
pub use shape::Dims;
pub use view::{View, ViewMut};
