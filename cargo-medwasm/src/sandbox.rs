//! The embedded Wasmtime as a sandbox with limits: one [`Limits`] type for `bench`
//! (the detector runner), `wasi-run` and any library user, applied by [`Sandbox`].
//!
//! A module runs with a wall-clock deadline per call (Wasmtime's epoch
//! interruption, ticked by a thread of the sandbox), a cap on its linear memory and
//! its tables (a [`wasmtime::ResourceLimiter`] in the store), and only the imports
//! its kind may have, checked before it is instantiated: a detector imports nothing,
//! a WASI command only WASI preview 1 functions ([`WASI_PREVIEW1`]). Every refusal
//! names the limit, its value and how to raise it. `docs/security.md` says what
//! this guarantees and what it does not.

use std::fmt;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use wasmtime::{Config, Engine, ExternType, Module, ResourceLimiter, Store, Trap};

/// The functions of WASI preview 1 (`wasi_snapshot_preview1`), all of which Wasmtime
/// and WasmEdge implement: what a WASI command run by `wasi-run` may import, and what
/// the `wasmedge` target checks its builds against.
pub const WASI_PREVIEW1: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The WASI module name of preview 1.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// The WASI preview 1 functions the portable bench harness may import: arguments,
/// the environment, clocks, randomness (a `HashMap`'s seed), writing to its
/// standard streams, `fd_fdstat_get` (what Rust's `std` asks about them) and exit.
/// None of them reaches a file, a socket or another process: with no preopened
/// directory or socket, the only descriptors a WASI program has are its standard
/// streams. The build refuses a harness that imports more, and the privacy test
/// checks it.
pub const WASI_HARNESS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "random_get",
    "fd_write",
    "fd_fdstat_get",
    "proc_exit",
    "sched_yield",
];

/// What a module may import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imports {
    /// Nothing: a detector (`docs/detector-abi.md`).
    Nothing,
    /// WASI preview 1 functions ([`WASI_PREVIEW1`]): a WASI command.
    WasiPreview1,
    /// The WASI functions of the bench harness ([`WASI_HARNESS`]).
    WasiHarness,
}

impl Imports {
    /// True when a function import `module::name` is allowed.
    pub fn allows(self, module: &str, name: &str) -> bool {
        let list = match self {
            Imports::Nothing => return false,
            Imports::WasiPreview1 => WASI_PREVIEW1,
            Imports::WasiHarness => WASI_HARNESS,
        };
        module == WASI_MODULE && list.contains(&name)
    }

    /// The imports of `module` this policy refuses, as `` `module::name` ``, in
    /// module order. Only functions can be allowed: an imported memory, table or
    /// global is refused by name too.
    pub fn refused(self, module: &Module) -> Vec<String> {
        module
            .imports()
            .filter(|i| {
                !(matches!(i.ty(), ExternType::Func(_)) && self.allows(i.module(), i.name()))
            })
            .map(|i| format!("`{}::{}`", i.module(), i.name()))
            .collect()
    }

    /// The names of `imports` (module and name pairs, as `wasm::imports` lists a
    /// file's) this policy refuses, as `` `module::name` ``.
    pub fn refused_names(self, imports: &[(String, String)]) -> Vec<String> {
        imports
            .iter()
            .filter(|(module, name)| !self.allows(module, name))
            .map(|(module, name)| format!("`{module}::{name}`"))
            .collect()
    }

    fn what(self) -> &'static str {
        match self {
            Imports::Nothing => "a detector imports nothing (see `docs/detector-abi.md`)",
            Imports::WasiPreview1 => {
                "only WASI preview 1 functions are linked: build it for `wasm32-wasip1` without the dependency that imports the others"
            }
            Imports::WasiHarness => {
                "the bench harness may import only WASI arguments, clocks, randomness, its standard streams and `proc_exit`"
            }
        }
    }
}

/// Resource limits of one sandboxed module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one call into the module may take: `medwasm_init` or one
    /// `medwasm_run` of a detector, or the whole `_start` of a WASI command.
    pub deadline: Duration,
    /// Most bytes of linear memory the module may have, at instantiation or grown.
    pub max_memory: u64,
    /// Most elements a table may have, at instantiation or grown.
    pub max_table_elements: u64,
    /// Where the user sets these, for the "how to raise it" part of a message.
    pub source: Source,
}

impl Limits {
    /// For detectors (`bench`): a detector allocates nothing, so its memory is its
    /// stack, its model blob and its arena, all fixed at build time; one inference
    /// of a model meant for a device takes milliseconds, so ten seconds per call is
    /// far from any real detector, even an unoptimized (`--debug`) build.
    pub const DETECTOR: Limits = Limits {
        deadline: Duration::from_secs(10),
        max_memory: 256 * MIB,
        max_table_elements: 10_000,
        source: Source::Library,
    };

    /// For WASI commands (`wasi-run`): the SDK's test battery (allocating, with a
    /// few thousand functions in its table) and the bench harness, whose one
    /// `_start` runs every warm inference.
    pub const WASI_COMMAND: Limits = Limits {
        deadline: Duration::from_secs(600),
        max_memory: GIB,
        max_table_elements: 100_000,
        source: Source::Library,
    };
}

impl Limits {
    /// Starts the deadline of the next call into `store`: call it before each one.
    pub fn arm<T>(&self, store: &mut Store<T>) {
        // The epoch advances every `TICK` from an arbitrary phase, so one extra tick
        // makes the deadline a lower bound: a call is never stopped early.
        let ticks = self.deadline.as_nanos().div_ceil(TICK.as_nanos()) as u64 + 1;
        store.set_epoch_deadline(ticks);
    }

    /// The message for `err` from `what` (a call, such as `` `medwasm_run` ``) when a
    /// limit stopped it, with the limit, its value and how to raise it; `None` for
    /// any other failure.
    pub fn explain(&self, err: &wasmtime::Error, what: &str) -> Option<String> {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(format!("{what} was stopped: {refused}"));
        }
        if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            return Some(
                self.past_deadline(what, "it loops forever or is far slower than expected"),
            );
        }
        None
    }

    /// The message for `what` stopped at its deadline, `why` saying what it was
    /// doing, with how to raise the deadline.
    pub fn past_deadline(&self, what: &str, why: &str) -> String {
        let ms = self.deadline.as_millis();
        format!(
            "{what} did not finish within its {ms} ms deadline (`deadline-ms`) and was stopped: {why}; {}",
            self.source
                .raise(Limit::Deadline, &(ms.saturating_mul(4)).to_string())
        )
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Where the user sets the limits, for the "how to raise it" part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `[package.metadata.medwasm]` keys (`bench`).
    Metadata,
    /// Command-line flags (`wasi-run`).
    Flags,
    /// A [`Limits`] value built by a library user.
    Library,
}

/// The three limits, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::deadline`].
    Deadline,
    /// [`Limits::max_memory`].
    Memory,
    /// [`Limits::max_table_elements`].
    Table,
}

impl Limit {
    /// The metadata key and flag name.
    pub fn key(self) -> &'static str {
        match self {
            Limit::Deadline => "deadline-ms",
            Limit::Memory => "max-memory",
            Limit::Table => "max-table-elements",
        }
    }
}

impl Source {
    /// How to set `limit` to `value` (already written for the source: `4000`,
    /// `"512MiB"`).
    fn raise(self, limit: Limit, value: &str) -> String {
        let key = limit.key();
        match self {
            Source::Metadata => {
                format!("raise it with `{key} = {value}` in `[package.metadata.medwasm]`")
            }
            Source::Flags => format!("raise it with `--{key} {}`", value.trim_matches('"')),
            Source::Library => {
                let field = match limit {
                    Limit::Deadline => "deadline",
                    Limit::Memory => "max_memory",
                    Limit::Table => "max_table_elements",
                };
                format!("raise `Limits::{field}`")
            }
        }
    }
}

/// A memory or table growth the limiter refused: the call traps with this error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Which limit: [`Limit::Memory`] or [`Limit::Table`].
    pub limit: Limit,
    /// Bytes (memory) or elements (table) the module asked for.
    pub desired: u64,
    /// The cap.
    pub cap: u64,
    /// Where the cap is set.
    pub source: Source,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Limit::Memory => write!(
                f,
                "the module asked for {} of linear memory, past the {} cap (`max-memory`); {}",
                show_bytes(self.desired),
                show_bytes(self.cap),
                self.source.raise(
                    Limit::Memory,
                    &format!("\"{}\"", show_bytes(self.desired.next_multiple_of(MIB)))
                )
            ),
            Limit::Table => write!(
                f,
                "the module asked for a table of {} elements, past the cap of {} (`max-table-elements`); {}",
                self.desired,
                self.cap,
                self.source.raise(Limit::Table, &self.desired.to_string())
            ),
            Limit::Deadline => write!(
                f,
                "the call ran past its {} ms deadline (`deadline-ms`)",
                self.cap
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// The store data of a sandboxed module: the embedder's `T` and the limiter.
#[derive(Debug)]
pub struct Guest<T> {
    /// The embedder's data (a WASI context, or nothing).
    pub data: T,
    limiter: Limiter,
}

/// Caps every memory and table of a store; at most one instance, one memory and
/// one table, so that the caps are caps on the whole module.
#[derive(Debug, Clone, Copy)]
struct Limiter {
    limits: Limits,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A trap with the limit's name rather than `memory.grow` returning -1: a
        // detector allocates nothing, and a WASI program would abort on the failed
        // allocation with a message that names no limit.
        if desired as u64 > self.limits.max_memory {
            return Err(wasmtime::Error::new(Refused {
                limit: Limit::Memory,
                desired: desired as u64,
                cap: self.limits.max_memory,
                source: self.limits.source,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.max_table_elements {
            return Err(wasmtime::Error::new(Refused {
                limit: Limit::Table,
                desired: desired as u64,
                cap: self.limits.max_table_elements,
                source: self.limits.source,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }
}

/// How often the ticker advances the engine's epoch; a deadline is enforced to
/// within two ticks.
const TICK: Duration = Duration::from_millis(10);

/// An engine configured for [`Limits`], with the thread that ticks its epoch.
#[derive(Debug)]
pub struct Sandbox {
    engine: Engine,
    limits: Limits,
    imports: Imports,
    ticker: Option<Ticker>,
}

#[derive(Debug)]
struct Ticker {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Sandbox {
    /// An engine from `config` (epoch interruption turned on) for modules with
    /// `imports` under `limits`.
    pub fn new(mut config: Config, limits: Limits, imports: Imports) -> Result<Sandbox> {
        if limits.deadline.is_zero() {
            bail!(
                "a deadline of 0 ms lets no call run; {}",
                limits.source.raise(Limit::Deadline, "1000")
            );
        }
        config.epoch_interruption(true);
        let engine = Engine::new(&config)
            .map_err(|e| anyhow!("{e:#}"))
            .context("cannot create a wasmtime engine")?;
        let ticking = engine.clone();
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("medwasm-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    ticking.increment_epoch();
                }
            })
            .context("cannot start the thread that enforces the wasm deadline")?;
        Ok(Sandbox {
            engine,
            limits,
            imports,
            ticker: Some(Ticker { stop, thread }),
        })
    }

    /// The engine to compile modules with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Refuses `module` when it imports anything its kind may not, naming every such
    /// import: call it before instantiating (`what` names the module in the message).
    pub fn check_imports(&self, module: &Module, what: &str) -> Result<()> {
        let refused = self.imports.refused(module);
        if refused.is_empty() {
            return Ok(());
        }
        bail!(
            "{what} imports {}, which the sandbox does not allow: {}; it was refused before instantiation",
            refused.join(", "),
            self.imports.what()
        )
    }

    /// A store holding `data` whose memories and tables are capped.
    pub fn store<T>(&self, data: T) -> Store<Guest<T>> {
        let mut store = Store::new(
            &self.engine,
            Guest {
                data,
                limiter: Limiter {
                    limits: self.limits,
                },
            },
        );
        store.limiter(|guest| &mut guest.limiter);
        // Until the first `arm`, instantiation (start functions) has the deadline too.
        self.limits.arm(&mut store);
        store
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.stop.send(());
            let _ = ticker.thread.join();
        }
    }
}

/// Parses a byte size: a number of bytes, or a number with `KiB`, `MiB` or `GiB`
/// (`"256MiB"`, `"1 GiB"`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_bytes = match unit.trim() {
        "" | "B" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        other => {
            return Err(format!(
                "`{other}` is not a unit: write bytes, or a number with `KiB`, `MiB` or `GiB` such as `256MiB`"
            ));
        }
    };
    let n: u64 = number.parse().map_err(|_| {
        format!("`{text}` is not a size: write bytes, or a number with `KiB`, `MiB` or `GiB` such as `256MiB`")
    })?;
    match n.checked_mul(unit_bytes) {
        Some(0) | None => Err(format!(
            "`{text}` is not a usable memory cap: give at least one 64 KiB page, such as `256MiB`"
        )),
        Some(bytes) => Ok(bytes),
    }
}

/// `bytes` in the largest binary unit that divides it (`256MiB`, `1536KiB`).
pub fn show_bytes(bytes: u64) -> String {
    for (unit, size) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print_in_binary_units() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size(" 1 GiB "), Ok(1 << 30));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        for bad in ["", "MiB", "12MB", "-1", "0", "0MiB", "99999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(show_bytes(256 << 20), "256MiB");
        assert_eq!(show_bytes(6464 << 10), "6464KiB");
        assert_eq!(show_bytes(1 << 30), "1GiB");
        assert_eq!(show_bytes(1000), "1000B");
    }

    #[test]
    fn the_allow_lists_are_what_they_say() {
        assert!(!Imports::Nothing.allows(WASI_MODULE, "fd_write"));
        assert!(Imports::WasiPreview1.allows(WASI_MODULE, "sock_send"));
        assert!(!Imports::WasiPreview1.allows("env", "fd_write"));
        assert!(!Imports::WasiPreview1.allows(WASI_MODULE, "thread_spawn"));
        // The harness's list is a part of preview 1 that reaches no file or socket.
        assert!(WASI_HARNESS.iter().all(|f| WASI_PREVIEW1.contains(f)));
        for reach in [
            "path_open",
            "sock_send",
            "sock_accept",
            "fd_prestat_get",
            "poll_oneoff",
        ] {
            assert!(!Imports::WasiHarness.allows(WASI_MODULE, reach), "{reach}");
        }
        let listed = [
            ("env".to_string(), "send".to_string()),
            (WASI_MODULE.to_string(), "fd_write".to_string()),
        ];
        assert_eq!(Imports::WasiHarness.refused_names(&listed), ["`env::send`"]);
    }

    #[test]
    fn an_imported_memory_is_refused_even_under_a_wasi_name() {
        let sandbox =
            Sandbox::new(Config::new(), Limits::WASI_COMMAND, Imports::WasiPreview1).unwrap();
        let wasm =
            wat::parse_str(r#"(module (import "wasi_snapshot_preview1" "fd_write" (memory 1)))"#)
                .unwrap();
        let module = Module::new(sandbox.engine(), wasm).unwrap();
        let err = sandbox
            .check_imports(&module, "`m.wasm`")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("`m.wasm` imports `wasi_snapshot_preview1::fd_write`, which the sandbox does not allow"),
            "{err}"
        );
    }

    #[test]
    fn a_zero_deadline_is_refused_with_the_fix() {
        let limits = Limits {
            deadline: Duration::ZERO,
            source: Source::Flags,
            ..Limits::WASI_COMMAND
        };
        let err = Sandbox::new(Config::new(), limits, Imports::Nothing)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "a deadline of 0 ms lets no call run; raise it with `--deadline-ms 1000`"
        );
    }
}
