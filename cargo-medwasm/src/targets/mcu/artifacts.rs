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

/// The vectors file the firmware reads: `MWV1`, vector count, timed runs, 0 (u32
/// little-endian each), then every vector's inputs as f32 little-endian.
pub fn encode_vectors(cases: &[Vec<Vec<f32>>], runs: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"MWV1");
    out.extend_from_slice(&(cases.len() as u32).to_le_bytes());
    out.extend_from_slice(&(runs.min(u32::MAX as usize) as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for case in cases {
        for input in case {
            for x in input {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_file_layout() {
        let bytes = encode_vectors(&[vec![vec![1.0, 2.0]], vec![vec![3.0, -0.5]]], 7);
        assert_eq!(&bytes[..4], b"MWV1");
        assert_eq!(bytes[4..8], 2u32.to_le_bytes());
        assert_eq!(bytes[8..12], 7u32.to_le_bytes());
        assert_eq!(bytes.len(), 16 + 4 * 4);
        assert_eq!(bytes[28..32], (-0.5f32).to_le_bytes());
    }
}
