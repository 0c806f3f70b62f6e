//! cargo-medwasm: the host side of the medwasm toolchain.
//!
//! The binary is a thin shell over this library so that tests and the conformance
//! suite can call the converter, the vector readers and the runners directly.

pub mod browser;
pub mod cli;
pub mod cmd;
pub mod convert;
pub mod manifest;
pub mod mcu;
pub mod npy;
pub mod project;
pub mod reference;
pub mod report;
pub mod runner;
pub mod toolchain;
pub mod ui;
