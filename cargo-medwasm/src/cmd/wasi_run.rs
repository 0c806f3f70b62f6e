//! Hidden `cargo medwasm wasi-run [limits] <file.wasm> [args]`: runs a WASI command
//! in the embedded Wasmtime so that `cargo test --target wasm32-wasip1` needs no
//! external runtime (set it as `CARGO_TARGET_WASM32_WASIP1_RUNNER`).
//!
//! The command runs in the sandbox (`crate::sandbox`): it may import WASI preview 1
//! functions only (checked before instantiation), gets no preopened directory or
//! socket, and `--deadline-ms`, `--max-memory` and `--max-table-elements` (given
//! before the module) limit it, by default to [`Limits::WASI_COMMAND`].
//!
//! ```text
//! CARGO_TARGET_WASM32_WASIP1_RUNNER="/path/to/cargo-medwasm medwasm wasi-run" \
//!     RUSTFLAGS="-C target-feature=+simd128" cargo test -p medwasm --target wasm32-wasip1
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use wasmtime::{Config, Linker, Module};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};

use crate::sandbox::{Guest, Imports, Limits, Sandbox, Source, parse_size};

/// Run a WASI program.
#[derive(Debug, clap::Args)]
pub struct WasiRunArgs {
    /// Wall-clock milliseconds the whole program may run [default: 600000].
    #[arg(long, value_name = "MS", value_parser = parse_deadline)]
    pub deadline_ms: Option<u64>,

    /// Linear memory cap: bytes, or a number with KiB, MiB or GiB [default: 1GiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,

    /// Cap on the elements of the program's table [default: 100000].
    #[arg(long, value_name = "N")]
    pub max_table_elements: Option<u64>,

    /// The `.wasm` file, then the arguments passed to the program.
    ///
    /// One list rather than a module and its arguments: clap would otherwise take a
    /// program argument that looks like one of our global flags (`--quiet`, which
    /// `cargo test -q` passes to the test harness) for its own.
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "MODULE.wasm [ARGS]"
    )]
    pub command: Vec<String>,
}

/// `--deadline-ms`: milliseconds, at least 1.
fn parse_deadline(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err(
            "a deadline of 0 ms lets no call run: give milliseconds, such as `--deadline-ms 60000`"
                .into(),
        ),
        Ok(ms) => Ok(ms),
        Err(_) => Err(format!(
            "`{text}` is not a number of milliseconds, such as `--deadline-ms 60000`"
        )),
    }
}

/// How long past its deadline `_start` may take to return before the program is
/// reported stopped in a host call: wasm code is interrupted within two 10 ms epoch
/// ticks of the deadline, so only a blocked WASI call is still running by then,
/// even on a busy machine.
const HOST_CALL_GRACE: Duration = Duration::from_secs(1);

/// Exit code of a trapped program: what a native `panic = "abort"` process reports
/// (128 + SIGABRT), as the Wasmtime CLI does.
const TRAP_EXIT: u8 = if cfg!(unix) { 134 } else { 3 };

impl WasiRunArgs {
    /// Runs the module, returning its exit code.
    pub fn run(self) -> ExitCode {
        let Some((module, args)) = self.command.split_first() else {
            // clap requires one value; an empty list is a bug.
            eprintln!(
                "error: no module given; usage: `cargo medwasm wasi-run <MODULE.wasm> [ARGS]`"
            );
            return ExitCode::from(2);
        };
        let defaults = Limits::WASI_COMMAND;
        let limits = Limits {
            deadline: self
                .deadline_ms
                .map_or(defaults.deadline, Duration::from_millis),
            max_memory: self.max_memory.unwrap_or(defaults.max_memory),
            max_table_elements: self
                .max_table_elements
                .unwrap_or(defaults.max_table_elements),
            source: Source::Flags,
        };
        match execute(Path::new(module), args, limits) {
            Ok(Outcome::Exited(code)) => exit_code(code),
            Ok(Outcome::Trapped(trap)) => {
                eprintln!("error: `{module}` trapped: {trap}");
                ExitCode::from(TRAP_EXIT)
            }
            Ok(Outcome::Stopped(why)) => {
                eprintln!("error: {why}");
                ExitCode::from(TRAP_EXIT)
            }
            Err(err) => {
                crate::ui::print_error(&err);
                ExitCode::from(2)
            }
        }
    }
}

/// Loads, checks, links and runs `path`'s `_start` under `limits`.
fn execute(path: &Path, args: &[String], limits: Limits) -> Result<Outcome> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{shown}`"))?;
    if !bytes.starts_with(b"\0asm") {
        bail!("`{shown}` is not a WebAssembly binary (it does not start with `\\0asm`)");
    }
    let mut config = Config::new();
    // SIMD is on by default in Wasmtime; say so, since the kernel tests need it.
    config.wasm_simd(true);
    // Without the cache Cranelift recompiles the same test binary on every run.
    if let Ok(cache) = wasmtime::Cache::from_file(None) {
        config.cache(Some(cache));
    }
    let sandbox = Sandbox::new(config, limits, Imports::WasiPreview1)?;
    let module = Module::new(sandbox.engine(), &bytes)
        .map_err(wasmtime_error)
        .with_context(|| format!("`{shown}` is not a WebAssembly module Wasmtime can run"))?;
    if module.get_export("_start").is_none() {
        bail!(
            "`{shown}` exports no `_start`, so it is not a WASI command; detectors (`cdylib`s) are run by `cargo medwasm bench`"
        );
    }
    sandbox.check_imports(&module, &format!("`{shown}`"))?;

    let mut linker: Linker<Guest<WasiP1Ctx>> = Linker::new(sandbox.engine());
    p1::add_to_linker_sync(&mut linker, |guest| &mut guest.data).map_err(wasmtime_error)?;
    // No preopened directory or socket: the program reaches its standard streams,
    // its arguments and environment, clocks and randomness, nothing else.
    let wasi = WasiCtxBuilder::new()
        .inherit_stdio()
        .envs(&utf8_env())
        .args(&argv(path, args))
        .build_p1();
    let mut store = sandbox.store(wasi);
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(instance) => instance,
        Err(err) => match limits.explain(&err, &format!("instantiating `{shown}`")) {
            Some(why) => return Ok(Outcome::Stopped(why)),
            None => {
                return Err(wasmtime_error(err))
                    .with_context(|| format!("cannot instantiate `{shown}`"));
            }
        },
    };
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(wasmtime_error)
        .with_context(|| format!("`_start` of `{shown}` is not a `() -> ()` function"))?;
    limits.arm(&mut store);
    // The epoch deadline stops wasm code, not a WASI call blocked in the host (a
    // sleep in `poll_oneoff`, `fd_read` waiting on standard input). So `_start` runs
    // on a thread of its own, and when it has not returned once the epoch would have
    // stopped any wasm code, the program is reported stopped; the process then exits
    // without waiting for that thread.
    let (done, finished) = mpsc::channel();
    std::thread::Builder::new()
        .name("wasi-run".into())
        .spawn(move || done.send(start.call(&mut store, ())))
        .context("cannot start the thread that runs the module")?;
    let result = match finished.recv_timeout(limits.deadline + HOST_CALL_GRACE) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => {
            return Ok(Outcome::Stopped(limits.past_deadline(
                &format!("`{shown}`"),
                "it waits in a WASI call (a sleep, a read of standard input), loops forever or is far slower than expected",
            )));
        }
        Err(RecvTimeoutError::Disconnected) => bail!("the thread that ran `{shown}` panicked"),
    };
    match result {
        Ok(()) => Ok(Outcome::Exited(0)),
        Err(err) => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => Ok(Outcome::Exited(exit.0)),
            None => match limits.explain(&err, &format!("`{shown}`")) {
                Some(why) => Ok(Outcome::Stopped(why)),
                // `{:?}` carries the trap code and the wasm backtrace.
                None => Ok(Outcome::Trapped(format!("{err:?}"))),
            },
        },
    }
}

/// How the program ended.
#[derive(Debug)]
enum Outcome {
    /// Returned from `_start` (0) or called `proc_exit`.
    Exited(i32),
    /// Trapped (a panic under `panic = "abort"`, an `unreachable` …).
    Trapped(String),
    /// A sandbox limit stopped it (the message names the limit and how to raise it).
    Stopped(String),
}

/// `argv[0]` is the module path, as a native program sees its own path.
fn argv(module: &Path, args: &[String]) -> Vec<String> {
    std::iter::once(module.to_string_lossy().into_owned())
        .chain(args.iter().cloned())
        .collect()
}

/// The environment, minus variables WASI cannot carry (non-UTF-8 names or values).
fn utf8_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// A process exit code for a WASI exit status; statuses a process cannot report
/// (negative, over 255) become 1 rather than wrapping around to success.
fn exit_code(status: i32) -> ExitCode {
    u8::try_from(status).map_or(ExitCode::FAILURE, ExitCode::from)
}

/// Wasmtime 48 has its own error type; the CLI speaks anyhow.
fn wasmtime_error(err: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{err:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_starts_with_the_module() {
        let argv = argv(Path::new("t/x.wasm"), &["--nocapture".into(), "a b".into()]);
        assert_eq!(argv, ["t/x.wasm", "--nocapture", "a b"]);
    }

    /// A WASI command whose `_start` runs `body` (given the `proc_exit` import).
    fn command(body: impl FnOnce(&mut walrus::InstrSeqBuilder, walrus::FunctionId)) -> Vec<u8> {
        let mut module = walrus::Module::default();
        let exit_ty = module.types.add(&[walrus::ValType::I32], &[]);
        let (proc_exit, _) = module.add_import_func("wasi_snapshot_preview1", "proc_exit", exit_ty);
        let memory = module.memories.add_local(false, false, 1, None, None);
        module.exports.add("memory", memory);
        let mut start = walrus::FunctionBuilder::new(&mut module.types, &[], &[]);
        body(&mut start.func_body(), proc_exit);
        let start = start.finish(vec![], &mut module.funcs);
        module.exports.add("_start", start);
        module.emit_wasm()
    }

    fn run_bytes(wasm: &[u8]) -> Result<Outcome> {
        run_limited(wasm, Limits::WASI_COMMAND)
    }

    fn run_limited(wasm: &[u8], limits: Limits) -> Result<Outcome> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.wasm");
        std::fs::write(&path, wasm)?;
        execute(&path, &[], limits)
    }

    /// Limits as `--deadline-ms 300 --max-memory 4MiB --max-table-elements 64` give.
    const TIGHT: Limits = Limits {
        deadline: Duration::from_millis(300),
        max_memory: 4 << 20,
        max_table_elements: 64,
        source: Source::Flags,
    };

    fn stopped(outcome: Outcome) -> String {
        match outcome {
            Outcome::Stopped(why) => why,
            other => panic!("expected a limit to stop it, got {other:?}"),
        }
    }

    #[test]
    fn a_command_that_loops_forever_is_stopped_at_its_deadline() {
        let wasm =
            wat::parse_str(r#"(module (func (export "_start") (loop $l (br $l))))"#).unwrap();
        let started = std::time::Instant::now();
        let why = stopped(run_limited(&wasm, TIGHT).unwrap());
        let took = started.elapsed();
        assert!(
            why.contains("did not finish within its 300 ms deadline")
                && why.ends_with("raise it with `--deadline-ms 1200`"),
            "{why}"
        );
        // Never early; late by at most two 10 ms ticks, and compiling, on a busy machine.
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(2000), "{took:?}");
    }

    #[test]
    fn a_command_blocked_in_a_wasi_sleep_is_stopped_at_its_deadline() {
        // One clock subscription (48 bytes at 0): userdata 1, tag 0 (clock), the
        // monotonic clock (1), a timeout of one hour in ns; the epoch cannot
        // interrupt the host's sleep.
        let sleeps = r#"(module
            (import "wasi_snapshot_preview1" "poll_oneoff"
                (func $poll (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 0)
                "\01\00\00\00\00\00\00\00" "\00\00\00\00\00\00\00\00"
                "\01\00\00\00\00\00\00\00" "\00\a0\b8\30\46\03\00\00")
            (func (export "_start")
                (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#;
        let started = std::time::Instant::now();
        let why = stopped(run_limited(&wat::parse_str(sleeps).unwrap(), TIGHT).unwrap());
        let took = started.elapsed();
        assert!(
            why.contains("did not finish within its 300 ms deadline")
                && why.contains("waits in a WASI call")
                && why.ends_with("raise it with `--deadline-ms 1200`"),
            "{why}"
        );
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(4000), "{took:?}");
        // A short sleep is not stopped: the watch waits for the deadline.
        let short = sleeps.replace(r"\00\a0\b8\30\46\03\00\00", r"\00\e1\f5\05\00\00\00\00");
        let ran = run_limited(&wat::parse_str(&short).unwrap(), TIGHT).unwrap();
        assert!(matches!(ran, Outcome::Exited(0)), "{ran:?}");
    }

    #[test]
    fn growing_memory_past_the_cap_is_refused() {
        // 1 page, then 100 more: 6.4 MiB against a 4 MiB cap.
        let grows = r#"(module (memory 1)
            (func (export "_start") (drop (memory.grow (i32.const 100)))))"#;
        let why = stopped(run_limited(&wat::parse_str(grows).unwrap(), TIGHT).unwrap());
        assert!(
            why.contains("asked for 6464KiB of linear memory, past the 4MiB cap (`max-memory`)")
                && why.ends_with("raise it with `--max-memory 7MiB`"),
            "{why}"
        );
        // Within the cap, the same growth runs.
        let roomy = Limits {
            max_memory: 8 << 20,
            ..TIGHT
        };
        let ran = run_limited(&wat::parse_str(grows).unwrap(), roomy).unwrap();
        assert!(matches!(ran, Outcome::Exited(0)), "{ran:?}");
        // A module that starts above the cap never runs.
        let big = r#"(module (memory 65) (func (export "_start")))"#;
        let why = stopped(run_limited(&wat::parse_str(big).unwrap(), TIGHT).unwrap());
        assert!(
            why.starts_with("instantiating `") && why.contains("4160KiB"),
            "{why}"
        );
    }

    #[test]
    fn a_table_past_the_cap_is_refused() {
        let table = r#"(module (table 100 funcref) (func (export "_start")))"#;
        let why = stopped(run_limited(&wat::parse_str(table).unwrap(), TIGHT).unwrap());
        assert!(
            why.contains("a table of 100 elements, past the cap of 64 (`max-table-elements`)"),
            "{why}"
        );
    }

    #[test]
    fn imports_outside_wasi_preview1_are_refused_before_instantiation() {
        // Its start function would trap: the refusal must come first.
        let wasm = wat::parse_str(
            r#"(module
                (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                (import "env" "fetch" (func (param i32) (result i32)))
                (import "wasi_snapshot_preview1" "thread_spawn" (func (param i32) (result i32)))
                (func $boom unreachable)
                (start $boom)
                (func (export "_start")))"#,
        )
        .unwrap();
        let err = format!("{:#}", run_bytes(&wasm).unwrap_err());
        assert!(
            err.contains("imports `env::fetch`, `wasi_snapshot_preview1::thread_spawn`, which the sandbox does not allow")
                && err.contains("refused before instantiation")
                && !err.contains("unreachable"),
            "{err}"
        );
    }

    #[test]
    fn limits_are_flags_before_the_module() {
        use clap::Parser as _;
        let cli = crate::cli::CargoCli::try_parse_from([
            "cargo-medwasm",
            "medwasm",
            "wasi-run",
            "--deadline-ms",
            "250",
            "--max-memory",
            "64MiB",
            "t.wasm",
            "--max-memory",
            "1",
        ])
        .unwrap();
        let crate::cli::CargoCli::Medwasm(cli) = cli;
        match cli.command {
            crate::cli::Command::WasiRun(args) => {
                assert_eq!(args.deadline_ms, Some(250));
                assert_eq!(args.max_memory, Some(64 << 20));
                assert_eq!(args.max_table_elements, None);
                // After the module, everything is the program's.
                assert_eq!(args.command, ["t.wasm", "--max-memory", "1"]);
            }
            other => panic!("parsed as {other:?}"),
        }
        for bad in [["--deadline-ms", "0"], ["--max-memory", "12XB"]] {
            let args = [
                "cargo-medwasm",
                "medwasm",
                "wasi-run",
                bad[0],
                bad[1],
                "t.wasm",
            ];
            assert!(
                crate::cli::CargoCli::try_parse_from(args).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn exit_codes_and_traps_come_back() {
        let exits = command(|body, proc_exit| {
            body.i32_const(7).call(proc_exit);
        });
        assert!(matches!(run_bytes(&exits).unwrap(), Outcome::Exited(7)));

        let returns = command(|_, _| {});
        assert!(matches!(run_bytes(&returns).unwrap(), Outcome::Exited(0)));

        let traps = command(|body, _| {
            body.unreachable();
        });
        match run_bytes(&traps).unwrap() {
            Outcome::Trapped(message) => assert!(message.contains("unreachable"), "{message}"),
            other => panic!("expected a trap, got {other:?}"),
        }
    }

    #[test]
    fn non_commands_are_errors() {
        let mut module = walrus::Module::default();
        let memory = module.memories.add_local(false, false, 1, None, None);
        module.exports.add("memory", memory);
        let err = run_bytes(&module.emit_wasm()).unwrap_err().to_string();
        assert!(err.contains("exports no `_start`"), "{err}");
        let err = run_bytes(b"[package]").unwrap_err().to_string();
        assert!(err.contains("not a WebAssembly binary"), "{err}");
    }

    #[test]
    fn program_flags_are_not_taken_for_ours() {
        use clap::Parser as _;
        let cli = crate::cli::CargoCli::try_parse_from([
            "cargo-medwasm",
            "medwasm",
            "wasi-run",
            "t.wasm",
            "--quiet",
            "-v",
            "--help",
        ])
        .unwrap();
        let crate::cli::CargoCli::Medwasm(cli) = cli;
        assert!(!cli.verbosity.quiet && !cli.verbosity.verbose);
        match cli.command {
            crate::cli::Command::WasiRun(args) => {
                assert_eq!(args.command, ["t.wasm", "--quiet", "-v", "--help"]);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn exit_statuses_map_to_process_codes() {
        assert_eq!(exit_code(0), ExitCode::SUCCESS);
        assert_eq!(exit_code(3), ExitCode::from(3));
        assert_eq!(exit_code(256), ExitCode::FAILURE);
        assert_eq!(exit_code(-1), ExitCode::FAILURE);
    }
}
