//! Boards as data: one TOML file per board in `targets/boards/` (built in), or any
//! file a user passes as `--board path/to/board.toml`.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

/// The board used when neither `--board` nor `board` in `[package.metadata.medwasm]`
/// names one.
pub const DEFAULT_BOARD: &str = "qemu-mps2-an386";

/// The boards compiled into cargo-medwasm, as `(file name, TOML)`.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "qemu-mps2-an386",
        include_str!("../../../../targets/boards/qemu-mps2-an386.toml"),
    ),
    (
        "qemu-mps2-an500",
        include_str!("../../../../targets/boards/qemu-mps2-an500.toml"),
    ),
];

/// One board: what the build links against and what QEMU emulates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Board {
    /// Name used with `--board` and as the folder under `target/medwasm/mcu/`.
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// The core, e.g. `cortex-m4f`.
    pub core: String,
    /// `rustc -C target-cpu` and `gcc -mcpu`.
    pub target_cpu: String,
    /// `gcc -mfpu` for C code linked with the static library.
    pub fpu: String,
    /// Frequency of the core clock, Hz. QEMU's bench counts instructions and does not
    /// use it; it says how fast the real board runs.
    pub clock_hz: u64,
    /// Bytes reserved for the stack at the top of RAM.
    pub stack_bytes: u64,
    /// Where code and weights go.
    pub flash: Region,
    /// Where the arena, statics and the stack go.
    pub ram: Region,
    /// How QEMU emulates the board, if it does.
    pub qemu: Option<Qemu>,
}

/// An address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// First address.
    pub origin: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// Whether `[addr, addr + len)` lies inside the region.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.origin && addr.saturating_add(len) <= self.origin + self.size
    }
}

/// The QEMU machine of a board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qemu {
    /// `qemu-system-arm -M <machine>`.
    pub machine: String,
}

impl Board {
    /// A built-in board by name, or a board file when `name` ends in `.toml`.
    pub fn resolve(name: &str) -> Result<Board> {
        if name.ends_with(".toml") {
            return Board::from_file(Path::new(name));
        }
        match BUILT_IN.iter().find(|(n, _)| *n == name) {
            Some((file, text)) => Board::parse(text, &format!("targets/boards/{file}.toml")),
            None => bail!(
                "no board `{name}`; the built-in boards are {}, or pass a board file: `--board path/to/board.toml` (see docs/mcu.md, \"Adding a board\")",
                Board::built_in_names()
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Names of the built-in boards.
    pub fn built_in_names() -> Vec<&'static str> {
        BUILT_IN.iter().map(|(n, _)| *n).collect()
    }

    /// Reads a board file.
    pub fn from_file(path: &Path) -> Result<Board> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the board file `{}`", path.display()))?;
        Board::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a board definition; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Board> {
        let board: Board = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "the board file `{origin}` is not valid: {}; compare it with targets/boards/qemu-mps2-an386.toml",
                e.to_string().trim()
            )
        })?;
        board.check(origin)?;
        Ok(board)
    }

    fn check(&self, origin: &str) -> Result<()> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            bail!(
                "board `{}` in `{origin}`: `name` must be letters, digits, `-` and `_` (it names a folder)",
                self.name
            );
        }
        for (what, r) in [("flash", self.flash), ("ram", self.ram)] {
            if r.size == 0 || r.origin.checked_add(r.size).is_none_or(|end| end > 1 << 32) {
                bail!(
                    "board `{}` in `{origin}`: `[{what}]` must have a non-zero `size` and end inside the 32-bit address space",
                    self.name
                );
            }
        }
        let (flash, ram) = (self.flash, self.ram);
        // The checks above keep these sums far from overflowing a u64.
        if flash.origin < ram.origin + ram.size && ram.origin < flash.origin + flash.size {
            bail!(
                "board `{}` in `{origin}`: `[flash]` and `[ram]` overlap; give each its own address range",
                self.name
            );
        }
        if ram.origin + ram.size >= 1 << 32 {
            bail!(
                "board `{}` in `{origin}`: `[ram]` must end below 4 GiB (the stack starts at its end, a 32-bit address)",
                self.name
            );
        }
        if self.clock_hz == 0 {
            bail!(
                "board `{}` in `{origin}`: `clock-hz` must not be 0",
                self.name
            );
        }
        if self.stack_bytes == 0 || !self.stack_bytes.is_multiple_of(8) {
            bail!(
                "board `{}` in `{origin}`: `stack-bytes` must be a non-zero multiple of 8",
                self.name
            );
        }
        Ok(())
    }

    /// The `memory.x` cortex-m-rt links with.
    pub fn memory_x(&self) -> String {
        format!(
            "/* Generated by cargo-medwasm from board `{name}`. */\nMEMORY\n{{\n  FLASH : ORIGIN = {:#010x}, LENGTH = {:#x}\n  RAM : ORIGIN = {:#010x}, LENGTH = {:#x}\n}}\n",
            self.flash.origin,
            self.flash.size,
            self.ram.origin,
            self.ram.size,
            name = self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_boards_parse() {
        for name in Board::built_in_names() {
            let board = Board::resolve(name).unwrap();
            assert_eq!(board.name, name);
            assert!(board.qemu.is_some(), "{name} runs in QEMU");
            assert_eq!(board.flash.origin, 0);
            assert_eq!(board.ram.origin, 0x2000_0000);
        }
        assert_eq!(Board::resolve(DEFAULT_BOARD).unwrap().core, "cortex-m4f");
        assert_eq!(
            Board::resolve("qemu-mps2-an500").unwrap().target_cpu,
            "cortex-m7"
        );
    }

    #[test]
    fn bad_boards_say_what_to_fix() {
        let err = Board::resolve("stm32-nope").unwrap_err().to_string();
        assert!(
            err.contains("`qemu-mps2-an386`") && err.contains("--board"),
            "{err}"
        );

        let good = BUILT_IN[0].1;
        let typo = good.replace("clock-hz", "clock-hertz");
        let err = Board::parse(&typo, "x.toml").unwrap_err().to_string();
        assert!(
            err.contains("x.toml") && err.contains("clock-hertz"),
            "{err}"
        );

        let empty_flash = good.replace("size = 0x0040_0000 # ZBT SSRAM1", "size = 0 # ");
        let err = Board::parse(&empty_flash, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`[flash]`"), "{err}");

        let overlap = good.replace("origin = 0x2000_0000", "origin = 0x0010_0000");
        let err = Board::parse(&overlap, "x.toml").unwrap_err().to_string();
        assert!(err.contains("overlap"), "{err}");

        let top = good.replace("origin = 0x2000_0000", "origin = 0xFFC0_0000");
        let err = Board::parse(&top, "x.toml").unwrap_err().to_string();
        assert!(err.contains("below 4 GiB"), "{err}");

        let err = Board::resolve("/nonexistent/board.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the board file"), "{err}");
    }

    #[test]
    fn memory_x_matches_the_board() {
        let board = Board::resolve(DEFAULT_BOARD).unwrap();
        let x = board.memory_x();
        assert!(
            x.contains("FLASH : ORIGIN = 0x00000000, LENGTH = 0x400000"),
            "{x}"
        );
        assert!(
            x.contains("RAM : ORIGIN = 0x20000000, LENGTH = 0x400000"),
            "{x}"
        );
        assert!(board.ram.contains(0x2000_0000, 16));
        assert!(!board.ram.contains(0x0, 16));
    }
}
