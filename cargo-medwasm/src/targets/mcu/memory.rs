//! The memory report of a linked firmware ELF: where every byte of flash and RAM
//! goes, read from its sections and symbols, against the board's budget.

use std::fmt;

use anyhow::{Context as _, Result, bail};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SectionFlags, SymbolKind};
use serde::{Deserialize, Serialize};

use super::board::Board;
use crate::report::bytes;

/// Where the bytes of one firmware image go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Board name.
    pub board: String,
    /// Flash the board has.
    pub flash_budget: u64,
    /// RAM the board has.
    pub ram_budget: u64,
    /// Runtime, kernels and detector code (`.text` minus the firmware harness).
    pub code: u64,
    /// The model blob, in `.rodata` in flash.
    pub weights: u64,
    /// Other `.rodata`: constant tables and strings of the runtime.
    pub constants: u64,
    /// Initial values of `.data`, copied from flash to RAM at start-up.
    pub data: u64,
    /// The test harness, start-up code and vector table of the firmware: code the
    /// static library does not contain.
    pub firmware: u64,
    /// The detector's arena (`.bss`).
    pub arena: u64,
    /// Other statics in RAM (`.data`, `.bss`).
    pub statics: u64,
    /// Stack reserved by the board file.
    pub stack_reserved: u64,
}

impl MemoryReport {
    /// Flash the image occupies.
    pub fn flash(&self) -> u64 {
        self.code + self.weights + self.constants + self.data + self.firmware
    }

    /// RAM the image needs, the reserved stack included.
    pub fn ram(&self) -> u64 {
        self.arena + self.statics + self.data + self.stack_reserved
    }

    /// The detector itself: code, weights and constants, without the harness.
    pub fn detector_flash(&self) -> u64 {
        self.code + self.weights + self.constants + self.data
    }

    /// An error saying by how much the image is over budget and what is largest, or
    /// `Ok` when it fits.
    pub fn check_budget(&self) -> Result<()> {
        let mut over = Vec::new();
        if self.flash() > self.flash_budget {
            let parts = [
                ("code", self.code),
                ("weights", self.weights),
                ("constants", self.constants),
                ("firmware harness", self.firmware),
                (".data", self.data),
            ];
            over.push(over_by("flash", self.flash(), self.flash_budget, &parts));
        }
        if self.ram() > self.ram_budget {
            let parts = [
                ("arena", self.arena),
                ("stack (reserved)", self.stack_reserved),
                ("statics", self.statics + self.data),
            ];
            over.push(over_by("RAM", self.ram(), self.ram_budget, &parts));
        }
        if over.is_empty() {
            return Ok(());
        }
        bail!(
            "the detector does not fit board `{}`: {}\n\n{self}\nshrink the model (fewer or smaller layers), pick a board with more memory (`--board`), or lower `stack-bytes` in the board file if the measured stack peak allows it",
            self.board,
            over.join("; ")
        )
    }
}

fn over_by(what: &str, used: u64, budget: u64, parts: &[(&str, u64)]) -> String {
    let (largest, bytes) = parts
        .iter()
        .copied()
        .max_by_key(|(_, b)| *b)
        .unwrap_or(("nothing", 0));
    format!(
        "{what} needs {used} bytes but the board has {budget} (over by {} bytes); the largest part is {largest} ({bytes} bytes)",
        used - budget
    )
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |used: u64, budget: u64| used as f64 * 100.0 / budget.max(1) as f64;
        writeln!(
            f,
            "  flash  {:>10} of {} ({:.1}%)",
            bytes(self.flash()),
            bytes(self.flash_budget),
            pct(self.flash(), self.flash_budget)
        )?;
        let rows_flash = [
            ("code", self.code, "runtime, kernels and detector (.text)"),
            (
                "weights",
                self.weights,
                "model blob in .rodata, read in place, never copied to RAM",
            ),
            ("constants", self.constants, "other .rodata"),
            (
                ".data",
                self.data,
                "initial values copied to RAM at start-up",
            ),
            (
                "firmware",
                self.firmware,
                "test harness, start-up code, vector table (not in the static library)",
            ),
        ];
        for (name, n, what) in rows_flash {
            writeln!(f, "    {name:<10} {:>10}  {what}", bytes(n))?;
        }
        writeln!(
            f,
            "  RAM    {:>10} of {} ({:.1}%)",
            bytes(self.ram()),
            bytes(self.ram_budget),
            pct(self.ram(), self.ram_budget)
        )?;
        let rows_ram = [
            ("arena", self.arena, "static memory plan (.bss)"),
            (
                "stack",
                self.stack_reserved,
                "reserved by the board file; `bench` measures the peak",
            ),
            ("statics", self.statics + self.data, "other .data and .bss"),
        ];
        for (name, n, what) in rows_ram {
            writeln!(f, "    {name:<10} {:>10}  {what}", bytes(n))?;
        }
        Ok(())
    }
}

/// Symbols of the firmware harness rather than the detector: the generated firmware
/// crate, cortex-m-rt's start-up and exception handlers, and the cortex-m crates.
fn is_harness(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "Reset",
        "main",
        "DefaultHandler",
        "DefaultHandler_",
        "DefaultPreInit",
        "HardFault",
        "HardFault_",
        "HardFaultTrampoline",
        "__pre_init",
    ];
    name.contains("medwasm_firmware")
        || name.contains("cortex_m")
        || name.contains("__cortex_m_rt")
        || EXACT.contains(&name)
}

/// Reads the sections and symbols of a firmware ELF linked by
/// [`super::firmware`], for `board`, with a model blob of `blob_bytes`.
pub fn analyze(elf: &[u8], board: &Board, blob_bytes: u64) -> Result<MemoryReport> {
    let file = object::File::parse(elf)
        .context("cannot parse the firmware ELF; this is a bug in cargo-medwasm")?;
    let mut text = 0u64;
    let mut vector_table = 0u64;
    let mut rodata = 0u64;
    let mut data = 0u64;
    let mut bss = 0u64;
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags } = section.flags() else {
            continue;
        };
        if sh_flags & u64::from(object::elf::SHF_ALLOC) == 0 || section.size() == 0 {
            continue;
        }
        let name = section.name().unwrap_or("");
        let size = section.size();
        match name {
            ".vector_table" => vector_table += size,
            n if n.starts_with(".text") => text += size,
            n if n.starts_with(".rodata") => rodata += size,
            n if n.starts_with(".data") => data += size,
            n if n.starts_with(".bss") || n.starts_with(".uninit") => bss += size,
            // Zero-sized or linker bookkeeping sections (`.gnu.sgstubs` …) count as code
            // when they take flash, so nothing is left out of the total.
            _ if board.flash.contains(section.address(), size) => text += size,
            _ => bss += size,
        }
    }

    let mut harness = 0u64;
    let mut blob: Option<(u64, u64, String)> = None;
    let mut arena: Option<(u64, u64)> = None;
    for symbol in file.symbols() {
        let Ok(name) = symbol.name() else { continue };
        let (addr, size) = (symbol.address(), symbol.size());
        match symbol.kind() {
            SymbolKind::Text if is_harness(name) => harness += size,
            SymbolKind::Data if name.contains("BLOB") && size >= blob_bytes => {
                let section = symbol
                    .section_index()
                    .and_then(|i| file.section_by_index(i).ok())
                    .and_then(|s| s.name().ok().map(str::to_string))
                    .unwrap_or_default();
                blob = Some((addr, size, section));
            }
            SymbolKind::Data if name.contains("ARENA") && board.ram.contains(addr, size) => {
                arena = Some((addr, size));
            }
            _ => {}
        }
    }
    let Some((blob_addr, blob_size, blob_section)) = blob else {
        bail!(
            "the model blob (`{blob_bytes}` bytes, a symbol named `BLOB`) is not in the firmware ELF; this is a bug in cargo-medwasm, please report it at {}/issues",
            env!("CARGO_PKG_REPOSITORY")
        );
    };
    // In `.rodata` (read-only, placed in FLASH by cortex-m-rt's `link.x`) the blob is
    // read in place; anywhere else it could be copied to RAM at start-up.
    if !blob_section.starts_with(".rodata") || board.ram.contains(blob_addr, blob_size) {
        bail!(
            "the model blob is linked in `{blob_section}` at {blob_addr:#x} instead of `.rodata` in flash: it would be copied to RAM; this is a bug in cargo-medwasm, please report it at {}/issues",
            env!("CARGO_PKG_REPOSITORY")
        );
    }
    let arena = arena.map_or(0, |(_, size)| size);
    let harness = harness.min(text);
    Ok(MemoryReport {
        board: board.name.clone(),
        flash_budget: board.flash.size,
        ram_budget: board.ram.size,
        code: text - harness,
        weights: blob_size,
        constants: rodata.saturating_sub(blob_size),
        data,
        firmware: harness + vector_table,
        arena,
        statics: bss.saturating_sub(arena),
        stack_reserved: board.stack_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> MemoryReport {
        MemoryReport {
            board: "tiny".into(),
            flash_budget: 64 * 1024,
            ram_budget: 32 * 1024,
            code: 30_000,
            weights: 40_000,
            constants: 2_000,
            data: 8,
            firmware: 4_000,
            arena: 1_536,
            statics: 400,
            stack_reserved: 16_384,
        }
    }

    #[test]
    fn totals_add_up() {
        let r = report();
        assert_eq!(r.flash(), 30_000 + 40_000 + 2_000 + 8 + 4_000);
        assert_eq!(r.ram(), 1_536 + 400 + 8 + 16_384);
        assert_eq!(r.detector_flash(), 72_008);
    }

    #[test]
    fn over_budget_names_the_excess_and_the_largest_part() {
        let err = report().check_budget().unwrap_err().to_string();
        assert!(
            err.contains("flash needs 76008 bytes but the board has 65536 (over by 10472 bytes); the largest part is weights (40000 bytes)"),
            "{err}"
        );
        assert!(!err.contains("RAM needs"), "RAM fits: {err}");
        assert!(
            err.contains("model blob in .rodata"),
            "the report is included: {err}"
        );

        let mut r = report();
        r.flash_budget = 1 << 20;
        r.ram_budget = 8 * 1024;
        let err = r.check_budget().unwrap_err().to_string();
        assert!(
            err.contains("RAM needs 18328 bytes") && err.contains("stack (reserved) (16384 bytes)"),
            "{err}"
        );
        r.ram_budget = 1 << 20;
        assert!(r.check_budget().is_ok());
    }
}
