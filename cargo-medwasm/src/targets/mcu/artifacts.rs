//! The files an MCU build leaves beside its artifacts and the runner reads back: the
//! board they were built for, the memory report, the build record, and the test
//! vectors file the firmware reads over semihosting.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::memory::MemoryReport;

/// The file next to the artifacts that records the board they were built for.
pub const BOARD_FILE: &str = "board.toml";
/// The memory report of the last build, as JSON.
pub const MEMORY_FILE: &str = "memory.json";
/// Test vectors for the firmware, read over semihosting from QEMU's working folder.
pub const VECTORS_FILE: &str = "medwasm-vectors.bin";

/// The build record (`{"manifest", "build"}`, as in a wasm artifact's section).
pub const MANIFEST_FILE: &str = "manifest.json";

/// The memory report written next to the artifacts by the last build.
pub fn read_memory(dir: &Path) -> Result<MemoryReport> {
    let path = dir.join(MEMORY_FILE);
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read `{}`: build with `cargo medwasm build --target mcu` first",
            path.display()
        )
    })?;
    serde_json::from_slice(&text).with_context(|| {
        format!(
            "`{}` is not a memory report; build again with `cargo medwasm build --target mcu`",
            path.display()
        )
    })
}
