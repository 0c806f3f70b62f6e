//! Hidden `cargo medwasm wasi-run <file.wasm> [args]`: runs a WASI command in the
//! embedded Wasmtime so that `cargo test --target wasm32-wasip1` needs no external
//! runtime (set it as `CARGO_TARGET_WASM32_WASIP1_RUNNER`).
//!
//! ```text
//! CARGO_TARGET_WASM32_WASIP1_RUNNER="/path/to/cargo-medwasm medwasm wasi-run" \
//!     RUSTFLAGS="-C target-feature=+simd128" cargo test -p medwasm --target wasm32-wasip1
//! ```

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};

/// Run a WASI program.
#[derive(Debug, clap::Args)]
pub struct WasiRunArgs {
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
        match execute(Path::new(module), args) {
            Ok(Outcome::Exited(code)) => exit_code(code),
            Ok(Outcome::Trapped(trap)) => {
                eprintln!("error: `{module}` trapped: {trap}");
                ExitCode::from(TRAP_EXIT)
            }
            Err(err) => {
                crate::ui::print_error(&err);
                ExitCode::from(2)
            }
        }
    }
}

/// Loads, links and runs `path`'s `_start`.
fn execute(path: &Path, args: &[String]) -> Result<Outcome> {
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
    let engine = Engine::new(&config).map_err(wasmtime_error)?;
    let module = Module::new(&engine, &bytes)
        .map_err(wasmtime_error)
        .with_context(|| format!("`{shown}` is not a WebAssembly module Wasmtime can run"))?;
    if module.get_export("_start").is_none() {
        bail!(
            "`{shown}` exports no `_start`, so it is not a WASI command; detectors (`cdylib`s) are run by `cargo medwasm bench`"
        );
    }

    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    p1::add_to_linker_sync(&mut linker, |cx| cx).map_err(wasmtime_error)?;
    let wasi = WasiCtxBuilder::new()
        .inherit_stdio()
        .envs(&utf8_env())
        .args(&argv(path, args))
        .build_p1();
    let mut store = Store::new(&engine, wasi);
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(wasmtime_error)
        .with_context(|| format!("cannot instantiate `{shown}`"))?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(wasmtime_error)
        .with_context(|| format!("`_start` of `{shown}` is not a `() -> ()` function"))?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(Outcome::Exited(0)),
        Err(err) => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => Ok(Outcome::Exited(exit.0)),
            // `{:?}` carries the trap code and the wasm backtrace.
            None => Ok(Outcome::Trapped(format!("{err:?}"))),
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
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.wasm");
        std::fs::write(&path, wasm)?;
        execute(&path, &[])
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
