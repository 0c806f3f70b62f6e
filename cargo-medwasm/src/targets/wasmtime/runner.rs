//! The embedded Wasmtime runner: loads a detector artifact, drives it through the
//! detector ABI exactly as `docs/detector-abi.md` describes, and times cold starts
//! (with and without a compilation cache) and warm inferences.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use wasmtime::{Config, Engine, Instance, Memory, Module, Store, Trap, TypedFunc};

use crate::manifest::{Manifest, TensorSpec};
use crate::protocol::{ABI_VERSION, DetectorError, Execution, Inference, Job, Outcome, Progress};
use crate::report::{Finding, Latency, percentiles};
use crate::toolchain::EMBEDDED_WASMTIME;

/// Cold starts measured per variant; the median is reported.
const COLD_STARTS: usize = 3;

/// Untimed `medwasm_run` calls before the timed ones, so that the first timed call
/// does not pay for page faults and cold caches.
const WARMUP_RUNS: usize = 10;

/// Longest error message read back from a detector; a longer length is a corrupt
/// `medwasm_error_len`, not a message.
const MAX_ERROR_LEN: usize = 64 * 1024;

/// Runs `job` in the Wasmtime embedded in cargo-medwasm.
pub fn execute(job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution> {
    let wasm = std::fs::read(job.artifact).with_context(|| {
        format!(
            "cannot read the artifact `{}`: build it with `cargo medwasm build --target wasmtime`",
            job.artifact.display()
        )
    })?;
    let engine = engine()?;
    let module = Module::new(&engine, &wasm)
        .map_err(wasm_error)
        .with_context(|| format!("wasmtime cannot compile `{}`", job.artifact.display()))?;

    progress(Progress::Phase {
        verb: "Checking",
        len: job.cases.len() as u64,
    });
    let mut detector = Detector::instantiate(&engine, &module, job.manifest)?;
    let mut outcomes = Vec::with_capacity(job.cases.len());
    for case in job.cases {
        let outcome = detector.infer(&case.inputs)?;
        if matches!(outcome, Err(DetectorError::Trap(_))) {
            // After a trap the instance holds whatever the detector had half
            // written; the next vector gets a fresh one so one trap fails one row.
            detector = Detector::instantiate(&engine, &module, job.manifest)?;
        }
        outcomes.push(outcome);
        progress(Progress::Step);
    }

    // Latency is measured on the first vector the detector accepts (vector 0
    // unless it is an error case): timing an error path says nothing useful.
    let Some(timed) = outcomes.iter().position(Result::is_ok) else {
        return Ok(Execution {
            runtime: runtime(),
            outcomes,
            latency: Latency::default(),
            wasm_pages: Some(detector.pages()),
            device: None,
        });
    };
    let inputs = &job.cases[timed].inputs;

    progress(Progress::Phase {
        verb: "Cold start",
        len: 2 * COLD_STARTS as u64,
    });
    let cold = median_of(COLD_STARTS, progress, || {
        cold_start(ModuleSource::Wasm(&wasm), job.manifest, inputs)
    })?;
    // A compilation cache stores what `Module::serialize` returns and hands it to
    // `Module::deserialize` on the next start; that is exactly what is timed here,
    // without the file system so the figure does not depend on the disk.
    let serialized = module
        .serialize()
        .map_err(wasm_error)
        .context("wasmtime cannot serialize the compiled detector")?;
    let cold_cached = median_of(COLD_STARTS, progress, || {
        cold_start(ModuleSource::Serialized(&serialized), job.manifest, inputs)
    })?;

    progress(Progress::Phase {
        verb: "Timing",
        len: job.runs as u64,
    });
    let mut samples = detector.time_runs(inputs, job.runs, progress)?;
    let ops = wasm_ops(&wasm, job.manifest, inputs)?;
    Ok(Execution {
        runtime: runtime(),
        outcomes,
        latency: Latency {
            cold_start_us: Some(cold),
            cold_start_cached_us: Some(cold_cached),
            wasm_ops: Some(ops),
            ..Latency::default()
        }
        .with_warm(&mut samples),
        wasm_pages: Some(detector.pages()),
        device: None,
    })
}

fn runtime() -> String {
    format!("wasmtime {EMBEDDED_WASMTIME} (embedded)")
}

/// The engine configuration every measurement uses. Caching is off explicitly: a
/// cold start must compile, and the cached variant is measured separately.
fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.cache(None);
    Engine::new(&config)
        .map_err(wasm_error)
        .context("cannot create a wasmtime engine")
}

/// Where a cold start gets its module from.
#[derive(Clone, Copy)]
enum ModuleSource<'a> {
    /// The artifact's wasm bytes, compiled from scratch.
    Wasm(&'a [u8]),
    /// Output of `Module::serialize` from this process, as a compilation cache holds.
    Serialized(&'a [u8]),
}

/// Times a fresh engine, module, instance, `medwasm_init` and first inference.
fn cold_start(source: ModuleSource<'_>, manifest: &Manifest, inputs: &[Vec<f32>]) -> Result<f64> {
    let start = Instant::now();
    let engine = engine()?;
    let module = match source {
        ModuleSource::Wasm(wasm) => Module::new(&engine, wasm),
        // SAFETY: the bytes are the unmodified output of `Module::serialize`, made in
        // this process by the same Wasmtime with the same `Config`, which is what
        // `Module::deserialize` requires.
        ModuleSource::Serialized(bytes) => unsafe { Module::deserialize(&engine, bytes) },
    }
    .map_err(wasm_error)
    .context("wasmtime cannot load the detector for a cold start")?;
    let mut detector = Detector::instantiate(&engine, &module, manifest)?;
    let outcome = detector.infer(inputs)?;
    let elapsed = start.elapsed();
    outcome.map_err(|err| anyhow!("the detector failed during a cold start: {err}"))?;
    Ok(micros(elapsed))
}

/// WebAssembly operators one inference of `inputs` executes (the second one, after an
/// untimed first), counted with Wasmtime's fuel, which charges one unit per operator:
/// a figure that does not move with the machine's load the way timings do.
fn wasm_ops(wasm: &[u8], manifest: &Manifest, inputs: &[Vec<f32>]) -> Result<u64> {
    let mut config = Config::new();
    config.cache(None);
    config.consume_fuel(true);
    let engine = Engine::new(&config)
        .map_err(wasm_error)
        .context("cannot create a fuel-counting wasmtime engine")?;
    let module = Module::new(&engine, wasm)
        .map_err(wasm_error)
        .context("wasmtime cannot compile the detector to count its operators")?;
    let mut detector = Detector::instantiate(&engine, &module, manifest)?;
    detector
        .infer(inputs)?
        .map_err(|err| anyhow!("the detector failed while its operators were counted: {err}"))?;
    let before = detector.store.get_fuel().map_err(wasm_error)?;
    detector
        .infer(inputs)?
        .map_err(|err| anyhow!("the detector failed while its operators were counted: {err}"))?;
    let after = detector.store.get_fuel().map_err(wasm_error)?;
    Ok(before - after)
}

/// Median of `count` timings, reporting one progress step each.
fn median_of(
    count: usize,
    progress: &mut dyn FnMut(Progress),
    mut time: impl FnMut() -> Result<f64>,
) -> Result<f64> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        samples.push(time()?);
        progress(Progress::Step);
    }
    percentiles(&mut samples)
        .map(|p| p.0)
        .context("no start-up was timed; this is a bug in cargo-medwasm")
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Wasmtime has its own error type; it converts to `anyhow` only with a feature this
/// crate does not rely on, so it is carried over by message (with its causes).
fn wasm_error(err: wasmtime::Error) -> anyhow::Error {
    anyhow!("{err:#}")
}

/// Where one tensor lives in linear memory, and what it is.
#[derive(Debug, Clone)]
struct Region {
    ptr: usize,
    len: usize,
    /// Its manifest entry: an int8 tensor (`--io int8`) is written and read as its
    /// int8 values, one byte each, and converted from and to real values.
    spec: TensorSpec,
}

impl Region {
    /// Bytes per element at the ABI.
    fn element_bytes(&self) -> usize {
        if self.spec.abi_int8().is_some() { 1 } else { 4 }
    }
}

/// `medwasm_<kind>_dtype` codes (the model format's `DType`).
const DTYPE_F32: i32 = 1;
const DTYPE_I8: i32 = 2;

/// One initialized detector instance with its ABI exports resolved.
struct Detector {
    store: Store<()>,
    memory: Memory,
    run: TypedFunc<(), i32>,
    error_ptr: TypedFunc<(), i32>,
    error_len: TypedFunc<(), i32>,
    score: TypedFunc<(), f32>,
    label: TypedFunc<(), i32>,
    alert: TypedFunc<(), i32>,
    inputs: Vec<Region>,
    outputs: Vec<Region>,
}

impl Detector {
    /// Instantiates `module`, checks its ABI version, runs `medwasm_init` and checks the
    /// tensors it reports against the manifest.
    fn instantiate(engine: &Engine, module: &Module, manifest: &Manifest) -> Result<Detector> {
        if let Some(import) = module.imports().next() {
            bail!(
                "the artifact imports `{}::{}`, but a detector imports nothing (see `docs/detector-abi.md`); build it with `cargo medwasm build --target wasmtime`",
                import.module(),
                import.name()
            );
        }
        let mut store = Store::new(engine, ());
        // On the fuel-counting engine (`wasm_ops`): all the fuel there is, so the
        // count is what was used, never a limit. Other engines have no fuel to set,
        // which is the one error this can give.
        let _ = store.set_fuel(u64::MAX);
        let instance = Instance::new(&mut store, module, &[])
            .map_err(wasm_error)
            .context("cannot instantiate the detector")?;
        let memory = instance.get_memory(&mut store, "memory").context(
            "the artifact exports no `memory`; it is not a medwasm detector: build it with `cargo medwasm build --target wasmtime`",
        )?;

        let abi: TypedFunc<(), i32> = export(&instance, &mut store, "medwasm_abi_version")?;
        let version = call(&abi, &mut store, "medwasm_abi_version")?;
        if version != ABI_VERSION {
            bail!(
                "the detector speaks ABI version {version} but this cargo-medwasm speaks version {ABI_VERSION}: build the detector with the `medwasm` SDK that matches cargo-medwasm {}",
                env!("CARGO_PKG_VERSION")
            );
        }

        let mut detector = Detector {
            run: export(&instance, &mut store, "medwasm_run")?,
            error_ptr: export(&instance, &mut store, "medwasm_error_ptr")?,
            error_len: export(&instance, &mut store, "medwasm_error_len")?,
            score: export(&instance, &mut store, "medwasm_finding_score")?,
            label: export(&instance, &mut store, "medwasm_finding_label")?,
            alert: export(&instance, &mut store, "medwasm_finding_alert")?,
            store,
            memory,
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        let init: TypedFunc<(), i32> = export(&instance, &mut detector.store, "medwasm_init")?;
        let code = call(&init, &mut detector.store, "medwasm_init")?;
        if code != 0 {
            let message = detector.error_message()?;
            bail!(
                "`medwasm_init` failed with {}; rebuild with `cargo medwasm import` and `cargo medwasm build`, and if it persists report a bug at {} with the model attached",
                DetectorError::Code { code, message },
                env!("CARGO_PKG_REPOSITORY")
            );
        }
        detector.inputs = detector.regions(&instance, "input", &manifest.inputs)?;
        detector.outputs = detector.regions(&instance, "output", &manifest.outputs)?;
        Ok(detector)
    }

    /// Reads `medwasm_<kind>_count/len/ptr` and checks them against the manifest.
    fn regions(
        &mut self,
        instance: &Instance,
        kind: &str,
        specs: &[TensorSpec],
    ) -> Result<Vec<Region>> {
        let store = &mut self.store;
        let count_fn = format!("medwasm_{kind}_count");
        let count: TypedFunc<(), i32> = export(instance, &mut *store, &count_fn)?;
        let len_fn = format!("medwasm_{kind}_len");
        let len: TypedFunc<i32, i32> = export(instance, &mut *store, &len_fn)?;
        let ptr_fn = format!("medwasm_{kind}_ptr");
        let ptr: TypedFunc<i32, i32> = export(instance, &mut *store, &ptr_fn)?;
        let dtype_fn = format!("medwasm_{kind}_dtype");
        let dtype: TypedFunc<i32, i32> = export(instance, &mut *store, &dtype_fn)?;
        let stale = "the artifact and `model/manifest.json` disagree: run `cargo medwasm build` again after `cargo medwasm import`";

        let got = call(&count, &mut *store, &count_fn)?;
        if usize::try_from(got).ok() != Some(specs.len()) {
            bail!(
                "the detector has {got} {kind}s but the manifest lists {}; {stale}",
                specs.len()
            );
        }
        let memory_bytes = self.memory.data_size(&*store);
        let mut regions = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let index = i as i32;
            let got_len = len
                .call(&mut *store, index)
                .map_err(wasm_error)
                .with_context(|| format!("`{len_fn}({i})` trapped"))?;
            if usize::try_from(got_len).ok() != Some(spec.len()) {
                bail!(
                    "the detector's {kind} {i} (`{}`) has {got_len} elements but the manifest says {:?} ({} elements); {stale}",
                    spec.name,
                    spec.shape,
                    spec.len()
                );
            }
            let got_dtype = dtype
                .call(&mut *store, index)
                .map_err(wasm_error)
                .with_context(|| format!("`{dtype_fn}({i})` trapped"))?;
            let want_dtype = if spec.abi_int8().is_some() {
                DTYPE_I8
            } else {
                DTYPE_F32
            };
            if got_dtype != want_dtype {
                let name = |code| match code {
                    DTYPE_F32 => "f32".to_string(),
                    DTYPE_I8 => "int8".to_string(),
                    other => format!("element type {other}"),
                };
                bail!(
                    "the detector's {kind} {i} (`{}`) holds {} but the manifest says {}; {stale}",
                    spec.name,
                    name(got_dtype),
                    name(want_dtype)
                );
            }
            let got_ptr = ptr
                .call(&mut *store, index)
                .map_err(wasm_error)
                .with_context(|| format!("`{ptr_fn}({i})` trapped"))?;
            let region = Region {
                ptr: got_ptr as u32 as usize,
                len: spec.len(),
                spec: spec.clone(),
            };
            let end = region.ptr.checked_add(region.len * region.element_bytes());
            if got_ptr == 0 || end.is_none_or(|end| end > memory_bytes) {
                bail!(
                    "the detector places {kind} {i} (`{}`) at {got_ptr}, outside its {memory_bytes}-byte memory; this is a bug in the medwasm SDK, please report it at {}",
                    spec.name,
                    env!("CARGO_PKG_REPOSITORY")
                );
            }
            regions.push(region);
        }
        Ok(regions)
    }

    /// Writes `inputs` (one slice per model input, real values) as the ABI takes
    /// them: little-endian f32, or an int8 input's int8 values.
    fn write_inputs(&mut self, inputs: &[Vec<f32>]) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            bail!(
                "{} inputs given for a detector with {}; this is a bug in cargo-medwasm, please report it at {}",
                inputs.len(),
                self.inputs.len(),
                env!("CARGO_PKG_REPOSITORY")
            );
        }
        for (i, (data, region)) in inputs.iter().zip(&self.inputs).enumerate() {
            if data.len() != region.len {
                bail!(
                    "input {i} has {} elements but the detector takes {}; this is a bug in cargo-medwasm, please report it at {}",
                    data.len(),
                    region.len,
                    env!("CARGO_PKG_REPOSITORY")
                );
            }
            let bytes: Vec<u8> = match region.spec.abi_int8() {
                Some(_) => region
                    .spec
                    .to_abi(data)
                    .iter()
                    .map(|&q| q as i8 as u8)
                    .collect(),
                None => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            self.memory
                .write(&mut self.store, region.ptr, &bytes)
                .with_context(|| format!("cannot write input {i} into the detector's memory"))?;
        }
        Ok(())
    }

    /// Calls `medwasm_run`; `Err` only when the host cannot call it at all.
    fn run_once(&mut self) -> Result<std::result::Result<(), DetectorError>> {
        let code = match self.run.call(&mut self.store, ()) {
            Ok(code) => code,
            Err(err) => return Ok(Err(DetectorError::Trap(trap_message(&err)))),
        };
        if code == 0 {
            Ok(Ok(()))
        } else {
            Ok(Err(DetectorError::Code {
                code,
                message: self.error_message()?,
            }))
        }
    }

    /// Writes the inputs, runs once and reads the outputs and finding.
    fn infer(&mut self, inputs: &[Vec<f32>]) -> Result<Outcome> {
        self.write_inputs(inputs)?;
        if let Err(err) = self.run_once()? {
            return Ok(Err(err));
        }
        let mut outputs = Vec::with_capacity(self.outputs.len());
        for (j, region) in self.outputs.iter().enumerate() {
            let mut bytes = vec![0u8; region.len * region.element_bytes()];
            self.memory
                .read(&self.store, region.ptr, &mut bytes)
                .with_context(|| format!("cannot read output {j} from the detector's memory"))?;
            let abi: Vec<f32> = match region.spec.abi_int8() {
                Some(_) => bytes.iter().map(|&b| f32::from(b as i8)).collect(),
                None => bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            };
            outputs.push(region.spec.from_abi(abi));
        }
        let finding = Finding {
            score: call(&self.score, &mut self.store, "medwasm_finding_score")?,
            label: call(&self.label, &mut self.store, "medwasm_finding_label")?,
            alert: call(&self.alert, &mut self.store, "medwasm_finding_alert")? != 0,
        };
        Ok(Ok(Inference { outputs, finding }))
    }

    /// Times `runs` calls of `medwasm_run` on `inputs`, after untimed warm-up calls.
    /// The inputs are written once: the ABI keeps them untouched across runs.
    fn time_runs(
        &mut self,
        inputs: &[Vec<f32>],
        runs: usize,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<f64>> {
        self.write_inputs(inputs)?;
        let mut samples = Vec::with_capacity(runs);
        for i in 0..WARMUP_RUNS + runs {
            let start = Instant::now();
            let result = self.run.call(&mut self.store, ());
            let elapsed = start.elapsed();
            match result {
                Ok(0) => {}
                Ok(code) => bail!(
                    "the detector failed on run {i} of the same input it accepted before: {}",
                    DetectorError::Code {
                        code,
                        message: self.error_message()?
                    }
                ),
                Err(err) => bail!(
                    "the detector trapped on run {i} of the same input it accepted before: {}",
                    trap_message(&err)
                ),
            }
            if i >= WARMUP_RUNS {
                samples.push(micros(elapsed));
                progress(Progress::Step);
            }
        }
        Ok(samples)
    }

    /// The message at `medwasm_error_ptr`, or a note when it cannot be read.
    fn error_message(&mut self) -> Result<String> {
        let ptr = call(&self.error_ptr, &mut self.store, "medwasm_error_ptr")?;
        let len = call(&self.error_len, &mut self.store, "medwasm_error_len")?;
        let Ok(len) = usize::try_from(len) else {
            return Ok(format!("(`medwasm_error_len` returned {len})"));
        };
        if len > MAX_ERROR_LEN {
            return Ok(format!(
                "(`medwasm_error_len` returned {len}, too long to be a message)"
            ));
        }
        let mut bytes = vec![0u8; len];
        if self
            .memory
            .read(&self.store, ptr as u32 as usize, &mut bytes)
            .is_err()
        {
            return Ok(format!(
                "(message at {ptr} with length {len} is outside memory)"
            ));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Linear memory size in 64 KiB pages.
    fn pages(&self) -> u64 {
        self.memory.size(&self.store)
    }
}

/// Looks up a typed ABI export, saying which one is missing or mistyped.
fn export<P, R>(instance: &Instance, store: &mut Store<()>, name: &str) -> Result<TypedFunc<P, R>>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    instance
        .get_typed_func::<P, R>(&mut *store, name)
        .map_err(wasm_error)
        .with_context(|| {
            format!(
                "the artifact lacks the detector export `{name}` or has it with another signature (see `docs/detector-abi.md`); build it with `cargo medwasm build --target wasmtime`"
            )
        })
}

/// Calls a no-argument ABI export, naming it when it traps.
fn call<R: wasmtime::WasmResults>(
    func: &TypedFunc<(), R>,
    store: &mut Store<()>,
    name: &str,
) -> Result<R> {
    func.call(&mut *store, ())
        .map_err(|err| anyhow!("`{name}` trapped: {}", trap_message(&err)))
}

/// The trap's own one-line description, without Wasmtime's backtrace.
fn trap_message(err: &wasmtime::Error) -> String {
    match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use walrus::ir::{BinaryOp, LoadKind, MemArg, StoreKind, UnaryOp, Value};
    use walrus::{
        ConstExpr, DataKind, FunctionBuilder, Module as WasmModule, ModuleConfig, ValType,
    };

    use std::path::Path;

    use super::*;
    use crate::protocol::{Case, conformance};
    use crate::report::{Size, Tolerance};

    const IN: i32 = 1024;
    const OUT: i32 = 2048;
    const ERR: i32 = 4096;
    const MESSAGE: &str = "input 0 holds a non-finite element";
    const N: i32 = 4;

    /// Builds a detector implementing the ABI over a fixed layout: one input and one
    /// output of 4 elements, `output = 2 * input`, score = sum of the output, label =
    /// score > 0, alert = score > 10. A non-finite input returns 11 with [`MESSAGE`];
    /// an element below -100 executes `unreachable`. `abi` and `reported_len` are what
    /// `medwasm_abi_version` and `medwasm_input_len(0)` return.
    fn fixture(abi: i32, reported_len: i32) -> Vec<u8> {
        use ValType::{F32, I32};
        let mut m = WasmModule::with_config(ModuleConfig::new());
        let memory = m.memories.add_local(false, false, 1, None, None);
        m.exports.add("memory", memory);
        m.data.add(
            DataKind::Active {
                memory,
                offset: ConstExpr::Value(Value::I32(ERR)),
            },
            MESSAGE.as_bytes().to_vec(),
        );
        let mut global = |ty, init| m.globals.add_local(ty, true, false, ConstExpr::Value(init));
        let initialized = global(I32, Value::I32(0));
        let error_len = global(I32, Value::I32(0));
        let score = global(F32, Value::F32(0.0));
        let label = global(I32, Value::I32(0));
        let alert = global(I32, Value::I32(0));

        let constant = |m: &mut WasmModule, name: &str, value: i32| {
            let mut f = FunctionBuilder::new(&mut m.types, &[], &[I32]);
            f.func_body().i32_const(value);
            let id = f.finish(vec![], &mut m.funcs);
            m.exports.add(name, id);
        };
        constant(&mut m, "medwasm_abi_version", abi);
        constant(&mut m, "medwasm_input_count", 1);
        constant(&mut m, "medwasm_output_count", 1);
        constant(&mut m, "medwasm_error_ptr", ERR);
        constant(&mut m, "medwasm_model_ptr", 0);
        constant(&mut m, "medwasm_model_len", 0);

        let getter = |m: &mut WasmModule, name: &str, g, ty| {
            let mut f = FunctionBuilder::new(&mut m.types, &[], &[ty]);
            f.func_body().global_get(g);
            let id = f.finish(vec![], &mut m.funcs);
            m.exports.add(name, id);
        };
        getter(&mut m, "medwasm_error_len", error_len, I32);
        getter(&mut m, "medwasm_finding_score", score, F32);
        getter(&mut m, "medwasm_finding_label", label, I32);
        getter(&mut m, "medwasm_finding_alert", alert, I32);

        // `(i32) -> i32` returning `value` for index 0 and `fallback` otherwise.
        let indexed = |m: &mut WasmModule, name: &str, value: i32, fallback: i32| {
            let i = m.locals.add(I32);
            let mut f = FunctionBuilder::new(&mut m.types, &[I32], &[I32]);
            f.func_body().local_get(i).unop(UnaryOp::I32Eqz).if_else(
                I32,
                |then| {
                    then.i32_const(value);
                },
                |otherwise| {
                    otherwise.i32_const(fallback);
                },
            );
            let id = f.finish(vec![i], &mut m.funcs);
            m.exports.add(name, id);
        };
        indexed(&mut m, "medwasm_input_len", reported_len, -1);
        indexed(&mut m, "medwasm_output_len", N, -1);
        indexed(&mut m, "medwasm_input_ptr", IN, 0);
        indexed(&mut m, "medwasm_output_ptr", OUT, 0);
        indexed(&mut m, "medwasm_input_dtype", DTYPE_F32, -1);
        indexed(&mut m, "medwasm_output_dtype", DTYPE_F32, -1);

        let mut init = FunctionBuilder::new(&mut m.types, &[], &[I32]);
        init.func_body()
            .i32_const(1)
            .global_set(initialized)
            .i32_const(0);
        let init = init.finish(vec![], &mut m.funcs);
        m.exports.add("medwasm_init", init);

        let (k, x, y, sum) = (
            m.locals.add(I32),
            m.locals.add(F32),
            m.locals.add(F32),
            m.locals.add(F32),
        );
        let f32_at = |offset: i32| MemArg {
            align: 4,
            offset: offset as u64,
        };
        let mut run = FunctionBuilder::new(&mut m.types, &[], &[I32]);
        let mut body = run.func_body();
        body.global_get(initialized).unop(UnaryOp::I32Eqz).if_else(
            None,
            |then| {
                then.i32_const(8).return_();
            },
            |_| {},
        );
        body.i32_const(0).global_set(error_len);
        body.block(None, |done| {
            let done_id = done.id();
            done.loop_(None, |each| {
                let each_id = each.id();
                each.local_get(k)
                    .i32_const(N)
                    .binop(BinaryOp::I32Eq)
                    .br_if(done_id);
                each.local_get(k)
                    .i32_const(4)
                    .binop(BinaryOp::I32Mul)
                    .load(memory, LoadKind::F32, f32_at(IN))
                    .local_set(x);
                // x - x is NaN exactly when x is NaN or infinite.
                each.local_get(x)
                    .local_get(x)
                    .binop(BinaryOp::F32Sub)
                    .f32_const(0.0)
                    .binop(BinaryOp::F32Ne)
                    .if_else(
                        None,
                        |then| {
                            then.i32_const(MESSAGE.len() as i32)
                                .global_set(error_len)
                                .i32_const(11)
                                .return_();
                        },
                        |_| {},
                    );
                each.local_get(x)
                    .f32_const(-100.0)
                    .binop(BinaryOp::F32Lt)
                    .if_else(
                        None,
                        |then| {
                            then.unreachable();
                        },
                        |_| {},
                    );
                each.local_get(x)
                    .f32_const(2.0)
                    .binop(BinaryOp::F32Mul)
                    .local_set(y);
                each.local_get(k)
                    .i32_const(4)
                    .binop(BinaryOp::I32Mul)
                    .local_get(y)
                    .store(memory, StoreKind::F32, f32_at(OUT));
                each.local_get(sum)
                    .local_get(y)
                    .binop(BinaryOp::F32Add)
                    .local_set(sum);
                each.local_get(k)
                    .i32_const(1)
                    .binop(BinaryOp::I32Add)
                    .local_set(k);
                each.br(each_id);
            });
        });
        body.local_get(sum).global_set(score);
        body.local_get(sum)
            .f32_const(0.0)
            .binop(BinaryOp::F32Gt)
            .global_set(label);
        body.local_get(sum)
            .f32_const(10.0)
            .binop(BinaryOp::F32Gt)
            .global_set(alert);
        body.i32_const(0);
        let run = run.finish(vec![], &mut m.funcs);
        m.exports.add("medwasm_run", run);
        m.emit_wasm()
    }

    fn manifest() -> Manifest {
        let shape = [1, N as u64];
        Manifest {
            arena_bytes: 32,
            ops: vec![("Mul".into(), 1)],
            ..Manifest::for_tests(&[("x", &shape)], &[("y", &shape)])
        }
    }

    /// A case whose references are what a correct detector computes.
    fn case(input: [f32; 4]) -> Case {
        let doubled: Vec<f32> = input.iter().map(|v| v * 2.0).collect();
        Case {
            inputs: vec![input.to_vec()],
            tract: Some(vec![doubled.clone()]),
            expected: vec![Some(doubled)],
        }
    }

    fn execute(wasm: &[u8], cases: &[Case], runs: usize) -> (Result<Execution>, Vec<Progress>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let artifact = dir.path().join("detector.wasm");
        std::fs::write(&artifact, wasm).expect("write fixture");
        let manifest = manifest();
        let job = Job {
            artifact: &artifact,
            manifest: &manifest,
            cases,
            runs,
        };
        let mut events = Vec::new();
        let result = super::execute(&job, &mut |p| events.push(p));
        (result, events)
    }

    #[test]
    fn runs_vectors_and_times_the_fixture() {
        let mut cases = vec![
            case([1.0, 2.0, 3.0, 4.0]),
            case([1.0, f32::NAN, 0.0, 0.0]),
            case([-200.0, 0.0, 0.0, 0.0]),
            case([-1.0, -1.0, -1.0, -1.0]),
        ];
        let (result, events) = execute(&fixture(ABI_VERSION, N), &cases, 25);
        let execution = result.expect("the fixture follows the ABI");

        let Ok(first) = &execution.outcomes[0] else {
            panic!("vector 0 must run: {:?}", execution.outcomes[0])
        };
        assert_eq!(first.outputs, vec![vec![2.0, 4.0, 6.0, 8.0]]);
        assert_eq!(
            (
                first.finding.score,
                first.finding.label,
                first.finding.alert
            ),
            (20.0, 1, true)
        );
        assert_eq!(
            execution.outcomes[1].as_ref().err(),
            Some(&DetectorError::Code {
                code: 11,
                message: MESSAGE.into()
            })
        );
        assert!(
            matches!(&execution.outcomes[2], Err(DetectorError::Trap(m)) if m.contains("unreachable")),
            "{:?}",
            execution.outcomes[2]
        );
        // The operator count is exact: the same on a second run, and at least the
        // fixture's four multiplies per run.
        let ops = execution.latency.wasm_ops.expect("counted under Wasmtime");
        assert!(ops > 4, "{ops}");
        let (again, _) = execute(&fixture(ABI_VERSION, N), &cases, 3);
        assert_eq!(again.unwrap().latency.wasm_ops, Some(ops));
        // The vector after a trap runs on a fresh instance and succeeds.
        let Ok(last) = &execution.outcomes[3] else {
            panic!("vector 3 must run: {:?}", execution.outcomes[3])
        };
        assert_eq!(
            (last.finding.score, last.finding.label, last.finding.alert),
            (-8.0, 0, false)
        );

        let latency = &execution.latency;
        assert_eq!(latency.runs, 25);
        assert!(latency.cold_start_us.is_some_and(|us| us > 0.0));
        assert!(latency.cold_start_cached_us.is_some_and(|us| us > 0.0));
        let (Some(median), Some(p95), Some(p99)) =
            (latency.median_us, latency.p95_us, latency.p99_us)
        else {
            panic!("warm runs were timed: {latency:?}");
        };
        assert!(0.0 < median && median <= p95 && p95 <= p99);
        assert_eq!(execution.wasm_pages, Some(1));
        assert!(execution.runtime.starts_with("wasmtime 48."));
        let steps = events.iter().filter(|e| **e == Progress::Step).count();
        assert_eq!(steps, cases.len() + 2 * COLD_STARTS + 25);

        let tol = Tolerance {
            abs: 1e-4,
            rel: 1e-3,
            steps: 0,
        };
        let job_manifest = manifest();
        let job = Job {
            artifact: Path::new("detector.wasm"),
            manifest: &job_manifest,
            cases: &cases,
            runs: 25,
        };
        let report = conformance("wasmtime", &job, execution.clone(), Size::default(), tol);
        assert!(!report.passed, "error rows fail the target");
        let passing: Vec<bool> = report.vectors.iter().map(|v| v.passed()).collect();
        assert_eq!(passing, [true, false, false, true]);
        assert_eq!(report.memory.arena_bytes, 32);
        assert!(
            report.vectors[1]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("`NonFinite`"))
        );

        // A wrong stored expectation fails its row with the deviation it measured.
        cases[0].expected = vec![Some(vec![2.0, 4.0, 6.0, 8.5])];
        let job = Job {
            artifact: Path::new("detector.wasm"),
            manifest: &job_manifest,
            cases: &cases,
            runs: 25,
        };
        let report = conformance("wasmtime", &job, execution, Size::default(), tol);
        let row = &report.vectors[0];
        assert!(row.vs_tract.is_some_and(|d| d.pass));
        assert!(
            row.vs_expected
                .is_some_and(|d| !d.pass && (d.max_abs - 0.5).abs() < 1e-6)
        );
    }

    #[test]
    fn all_passing_vectors_pass_the_target() {
        let cases = vec![case([0.5, 0.25, 0.0, -1.0]), case([3.0, 3.0, 3.0, 3.0])];
        let (result, _) = execute(&fixture(ABI_VERSION, N), &cases, 5);
        let execution = result.expect("the fixture follows the ABI");
        let manifest = manifest();
        let job = Job {
            artifact: Path::new("detector.wasm"),
            manifest: &manifest,
            cases: &cases,
            runs: 5,
        };
        let report = conformance(
            "wasmtime",
            &job,
            execution,
            Size::default(),
            Tolerance {
                abs: 1e-4,
                rel: 1e-3,
                steps: 0,
            },
        );
        assert!(report.passed, "{report:#?}");
    }

    #[test]
    fn only_error_vectors_skip_latency() {
        let cases = vec![case([f32::INFINITY, 0.0, 0.0, 0.0])];
        let (result, _) = execute(&fixture(ABI_VERSION, N), &cases, 5);
        let execution = result.expect("a detector error is a row, not a failure");
        assert!(execution.outcomes[0].is_err());
        assert_eq!(execution.latency.runs, 0);
        assert_eq!(execution.latency.cold_start_us, None);
    }

    #[test]
    fn rejects_another_abi_version() {
        let (result, _) = execute(&fixture(ABI_VERSION + 1, N), &[case([0.0; 4])], 1);
        let err = format!("{:#}", result.expect_err("another ABI must be refused"));
        assert!(
            err.contains(&format!("ABI version {}", ABI_VERSION + 1)),
            "{err}"
        );
    }

    #[test]
    fn rejects_a_detector_that_disagrees_with_the_manifest() {
        let (result, _) = execute(&fixture(ABI_VERSION, N + 1), &[case([0.0; 4])], 1);
        let err = format!("{:#}", result.expect_err("input length 5 must be refused"));
        assert!(
            err.contains("input 0 (`x`) has 5 elements but the manifest says [1, 4]"),
            "{err}"
        );
    }

    #[test]
    fn rejects_a_module_without_the_abi() {
        let mut m = WasmModule::with_config(ModuleConfig::new());
        let memory = m.memories.add_local(false, false, 1, None, None);
        m.exports.add("memory", memory);
        let (result, _) = execute(&m.emit_wasm(), &[case([0.0; 4])], 1);
        let err = format!("{:#}", result.expect_err("a bare module must be refused"));
        assert!(err.contains("`medwasm_abi_version`"), "{err}");
    }
}
