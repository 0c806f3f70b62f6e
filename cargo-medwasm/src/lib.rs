//! cargo-medwasm: the host side of the medwasm toolchain.
//!
//! The binary is a thin shell over this library so that tests and the conformance
//! suite can call the converter, the vector readers and the targets directly.
//! ARCHITECTURE.md draws the layers: `cli` → `cmd` → the sessions (`bench`,
//! `importer`, `scaffold`) → `targets` → the shared layers → `convert` and the SDK.

pub mod args;
pub mod artifact;
pub mod bench;
pub mod cargo;
pub mod cli;
pub mod cmd;
pub mod convert;
pub mod files;
pub mod harness;
pub mod http;
pub mod importer;
pub mod manifest;
pub mod npy;
pub mod prereq;
pub mod process;
pub mod project;
pub mod protocol;
pub mod pyref;
pub mod reference;
pub mod report;
pub mod scaffold;
pub mod targets;
pub mod templates;
pub mod toolchain;
pub mod ui;
pub mod vectors;
pub mod wasm;
pub mod wasm_build;
