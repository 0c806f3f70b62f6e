//! Integration tests: the real `cargo-medwasm` binary on scaffolded projects, real
//! cargo builds for wasm32-wasip1, the embedded Wasmtime and tract. One test binary
//! for the crate keeps link times down.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod browser;
mod device;
mod harness;

fn cli(dir: &Path, args: &[&str]) -> Output {
    cli_env(dir, args, &[])
}

/// [`cli`] with extra environment variables.
fn cli_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-medwasm"))
        .arg("medwasm")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("the cargo-medwasm binary runs");
    eprintln!(
        "$ cargo medwasm {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "`cargo medwasm {}` failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether this run must run every test: CI sets `CI=true` (and `.ci/test` does), and
/// then a missing tool or model fails the test that needs it instead of skipping it.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Says why a test does not run here, or fails it under CI.
fn skip(why: &str) {
    assert!(
        !in_ci(),
        "{why}; CI runs every test, so this one fails (`.ci/setup` installs what the tests need)"
    );
    eprintln!("skipped: {why}");
}

/// The program an end-to-end test needs, or `None` (after saying so) when it is not
/// installed on this machine.
fn tool(program: &str, install: &str) -> Option<PathBuf> {
    match which::which(program) {
        Ok(path) => Some(path),
        Err(_) => {
            skip(&format!("`{program}` is not on PATH; {install}"));
            None
        }
    }
}

/// A TCP port nothing listens on at the moment (on loopback).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `need!(option)`: the value, or return from the test (skipped) when it is `None`.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return,
        }
    };
}
pub(crate) use need;

/// The team's reference models (`../shared/models` or `MEDWASM_SHARED_MODELS`), or
/// `None` (after saying so) when they are not on this machine.
fn shared_models() -> Option<PathBuf> {
    let dir = std::env::var_os("MEDWASM_SHARED_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"));
    if dir.join("ad01_fp32/model.onnx").exists() {
        Some(dir)
    } else {
        skip(&format!(
            "the shared reference models are not at `{}`: put the team's `shared/models` there or set MEDWASM_SHARED_MODELS",
            dir.display()
        ));
        None
    }
}

/// One target's rows for the vitals-anomaly template's 16 vectors: the first 8 are
/// normal windows, the last 8 anomalies, and every one agrees with tract and with
/// the stored outputs.
fn assert_template_vectors(target: &Value) {
    let name = target["target"].as_str().unwrap_or("?");
    let vectors = target["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 16, "{name}");
    for v in vectors {
        let i = v["index"].as_u64().unwrap();
        assert_eq!(v["finding"]["alert"], i >= 8, "{name} vector {i}: {v}");
        assert_eq!(v["vs_tract"]["pass"], true, "{name} vector {i}: {v}");
        assert_eq!(v["vs_expected"]["pass"], true, "{name} vector {i}: {v}");
    }
}

fn bench_json(project: &Path, runs: &str) -> Value {
    let out = ok(
        project,
        &["bench", "--target", "wasmtime", "--json", "--runs", runs],
    );
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("bench --json printed something else ({e}):\n{out}"))
}

#[test]
fn vitals_template_new_build_bench() {
    let tmp = tempfile::tempdir().unwrap();
    ok(
        tmp.path(),
        &["new", "vitals-it", "--template", "vitals-anomaly"],
    );
    let project = tmp.path().join("vitals-it");
    for f in [
        "Cargo.toml",
        "src/lib.rs",
        "src/model.rs",
        "README.md",
        "model/vitals_ae.onnx",
        "model/model.mwm",
        "model/manifest.json",
        "vectors/inputs.npy",
        "vectors/expected.npy",
        "vectors/expected.1.npy",
    ] {
        assert!(project.join(f).exists(), "{f} missing");
    }
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(
        readme.to_lowercase().contains("not a clinical"),
        "the README must say the model is a demo"
    );

    let built = ok(&project, &["build", "--target", "wasmtime", "--release"]);
    assert!(
        built.contains("code") && built.contains("weights"),
        "{built}"
    );

    let report = bench_json(&project, "50");
    let target = &report["targets"][0];
    assert_eq!(target["target"], "wasmtime");
    assert_eq!(target["passed"], true, "{report:#}");
    assert_template_vectors(target);
    let size = &target["size"];
    let code = size["code"].as_u64().unwrap();
    assert!(
        code > 0 && code <= 100 * 1024,
        "detector code {code} bytes (the budget is 100 KB)"
    );
    assert!(target["latency"]["median_us"].as_f64().unwrap() > 0.0);
    assert!(target["memory"]["arena_bytes"].as_u64().unwrap() > 0);

    // The human table on stdout names every vector and the verdict.
    let table = ok(&project, &["bench", "--target", "wasmtime", "--runs", "10"]);
    assert!(
        table.contains("PASS") && table.contains("cold start"),
        "{table}"
    );

    // `--artifact` benches a given file as it is: a copy, so nothing can rebuild it.
    let built_wasm = PathBuf::from(target["artifact"].as_str().unwrap());
    let shipped = tmp.path().join("shipped.wasm");
    std::fs::copy(&built_wasm, &shipped).unwrap();
    let out = ok(
        &project,
        &[
            "bench",
            "--target",
            "wasmtime",
            "--artifact",
            shipped.to_str().unwrap(),
            "--json",
            "--runs",
            "5",
        ],
    );
    let given: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(given["targets"][0]["passed"], true, "{given:#}");
    assert_eq!(
        given["targets"][0]["artifact"].as_str(),
        shipped.to_str(),
        "{given:#}"
    );
    // Refused for another target, and when it holds another detector.
    let refused = |args: &[&str], why: &str| {
        let out = cli(&project, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(why), "{err}");
    };
    let shipped_arg = shipped.to_str().unwrap();
    refused(
        &["bench", "--target", "browser", "--artifact", shipped_arg],
        "was built for target `wasmtime`, not `browser`",
    );
    refused(
        &["bench", "--target", "mcu", "--artifact", shipped_arg],
        "is not an ELF file",
    );
    refused(
        &["bench", "--target", "all", "--artifact", shipped_arg],
        "`--artifact` benches one file on one target",
    );
    let mut wasm = std::fs::read(&shipped).unwrap();
    let record = cargo_medwasm::artifact::read_embedded(&wasm)
        .unwrap()
        .unwrap();
    let mut other = record.clone();
    other.build.package = Some("another-detector".into());
    cargo_medwasm::wasm::set_custom_section(
        &mut wasm,
        "medwasm.manifest",
        &serde_json::to_vec(&other).unwrap(),
    )
    .unwrap();
    std::fs::write(&shipped, &wasm).unwrap();
    refused(
        &["bench", "--target", "wasmtime", "--artifact", shipped_arg],
        "is the detector `another-detector`, not `vitals-it`",
    );
}

fn import_shared(name: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let models = shared_models()?.join(name);
    let tmp = tempfile::tempdir().unwrap();
    let project_name = format!("{}-it", name.replace('_', "-"));
    ok(tmp.path(), &["new", &project_name, "--template", "blank"]);
    let project = tmp.path().join(&project_name);
    let out = ok(
        &project,
        &[
            "import",
            models.join("model.onnx").to_str().unwrap(),
            "--inputs",
            models.join("inputs.npy").to_str().unwrap(),
            "--expected",
            models.join("expected_onnx.npy").to_str().unwrap(),
        ],
    );
    assert!(out.contains("MACs"), "{out}");
    Some((tmp, project))
}

fn bench_shared(name: &str) {
    let (_tmp, project) = need!(import_shared(name));
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("model/manifest.json")).unwrap(),
    )
    .unwrap();
    assert!(
        manifest["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("fixed to 1")),
        "dynamic batch note: {manifest:#}"
    );
    let report = bench_json(&project, "5");
    let target = &report["targets"][0];
    assert_eq!(target["passed"], true, "{report:#}");
    assert_eq!(target["vectors"].as_array().unwrap().len(), 8);
    for v in target["vectors"].as_array().unwrap() {
        // Against onnxruntime's stored outputs and tract: both must agree.
        assert_eq!(v["vs_expected"]["pass"], true, "{v}");
        assert_eq!(v["vs_tract"]["pass"], true, "{v}");
    }
}

#[test]
fn ad01_fp32_conforms_under_wasmtime() {
    bench_shared("ad01_fp32");
}

#[test]
fn ic_resnet8_fp32_conforms_under_wasmtime() {
    bench_shared("ic_resnet8_fp32");
}

/// `import`s a shared model's `model.tflite` with its inputs and LiteRT's
/// reference-kernel outputs into a new project.
fn import_shared_tflite(
    name: &str,
    extra_env: &[(&str, &str)],
) -> Option<(tempfile::TempDir, PathBuf, Output)> {
    let project_name = format!("{}-tflite-it", name.replace('_', "-"));
    import_shared_tflite_as(name, &project_name, &[], extra_env)
}

/// [`import_shared_tflite`] into a project named `project_name` (tests that build
/// the same model differently need their own names: they share a target folder),
/// with `extra_args` after the import's own.
fn import_shared_tflite_as(
    name: &str,
    project_name: &str,
    extra_args: &[&str],
    extra_env: &[(&str, &str)],
) -> Option<(tempfile::TempDir, PathBuf, Output)> {
    let models = shared_models()?.join(name);
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["new", project_name, "--template", "blank"]);
    let project = tmp.path().join(project_name);
    let model = |f: &str| models.join(f).to_str().unwrap().to_string();
    let (file, inputs, expected) = (
        model("model.tflite"),
        model("inputs.npy"),
        model("expected_tflite_ref.npy"),
    );
    let mut args = vec![
        "import",
        &file,
        "--inputs",
        &inputs,
        "--expected",
        &expected,
    ];
    args.extend_from_slice(extra_args);
    let out = cli_env(&project, &args, extra_env);
    Some((tmp, project, out))
}

/// Whether `python3` can `import` these modules; says so (with `install`) when not.
fn python_modules(modules: &str, install: &str) -> Option<()> {
    let found = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Some(())
    } else {
        skip(&format!("`{modules}` cannot be imported (`{install}`)"));
        None
    }
}

/// Whether LiteRT's Python package is installed; says so when it is not.
fn litert() -> Option<()> {
    python_modules("ai_edge_litert.interpreter", "pip install ai-edge-litert")
}

fn bench_shared_tflite(name: &str, transposes_note: bool) {
    need!(litert());
    let (_tmp, project, out) = need!(import_shared_tflite(name, &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("against LiteRT") && stderr.contains("BUILTIN_REF"),
        "the self-check names its reference: {stderr}"
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("model/manifest.json")).unwrap(),
    )
    .unwrap();
    let source = &manifest["source"];
    assert_eq!(source["format"], "tflite", "{manifest:#}");
    assert_eq!(source["file"], "model.tflite");
    assert_eq!(source["opset"], 3);
    assert_eq!(source["min_runtime_version"], "1.5.0", "{manifest:#}");
    let notes = manifest["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("fixed to 1")),
        "{manifest:#}"
    );
    assert_eq!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("Transposes inserted")),
        transposes_note,
        "{manifest:#}"
    );
    assert!(project.join("model/model.tflite").exists());

    let out = cli(
        &project,
        &["bench", "--target", "wasmtime", "--json", "--runs", "5"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("tract cannot run TFLite models"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let target = &report["targets"][0];
    assert_eq!(target["passed"], true, "{report:#}");
    let vectors = target["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 8);
    for v in vectors {
        assert_eq!(v["vs_expected"]["pass"], true, "{v}");
        assert!(v["vs_tract"].is_null(), "no tract for TFLite: {v}");
    }
}

#[test]
fn ad01_fp32_tflite_conforms_under_wasmtime() {
    bench_shared_tflite("ad01_fp32", false);
}

#[test]
fn ic_resnet8_fp32_tflite_conforms_under_wasmtime() {
    bench_shared_tflite("ic_resnet8_fp32", true);
}

#[test]
fn kws_float32_tflite_conforms_under_wasmtime_with_hybrid_convolutions() {
    // Its CONV_2Ds have int8 weights on f32 activations: LiteRT's dynamic range.
    bench_shared_tflite("kws_float32", true);
}

/// `bench --json` of `project` on `target` (`all`, `wasmtime`, `mcu` …).
fn bench_target(project: &Path, target: &str, runs: &str) -> Value {
    let out = ok(
        project,
        &["bench", "--target", target, "--json", "--runs", runs],
    );
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("bench --json printed something else ({e}):\n{out}"))
}

/// Imports a shared int8 model's `model.tflite` against LiteRT (its outputs must be
/// identical, 0 quantization steps) and checks what the manifest records.
fn import_int8_tflite(name: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    litert()?;
    let (tmp, project, out) = import_shared_tflite(name, &[])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("against LiteRT") && stderr.contains("0 quantization steps off"),
        "{stderr}"
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("model/manifest.json")).unwrap(),
    )
    .unwrap();
    // The ABI stays f32; the manifest says how the model quantizes its edges.
    for edge in ["inputs", "outputs"] {
        let t = &manifest[edge][0];
        assert_eq!(t["dtype"], "f32", "{manifest:#}");
        assert_eq!(t["quant"]["dtype"], "i8", "{manifest:#}");
        assert!(t["quant"]["scale"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(manifest["fc_requant"], "litert-ref", "{manifest:#}");
    // The stored expected outputs are LiteRT's int8 values.
    let expected = cargo_medwasm::npy::Array::read(&project.join("vectors/expected.npy")).unwrap();
    assert!(expected.integers, "int8 expected outputs");
    Some((tmp, project))
}

/// Every vector of every target of a bench report passed with 0 steps off.
fn assert_bit_exact(report: &Value, targets: usize) {
    let list = report["targets"].as_array().unwrap();
    assert_eq!(list.len(), targets, "{report:#}");
    for target in list {
        let name = target["target"].as_str().unwrap();
        assert_eq!(target["passed"], true, "{name}: {report:#}");
        let vectors = target["vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 8, "{name}");
        for v in vectors {
            let steps = &v["vs_expected"]["steps"];
            assert_eq!(steps["max"], 0, "{name}: {v}");
            assert_eq!(steps["one"], 0, "{name}: {v}");
            assert_eq!(steps["argmax_agrees"], true, "{name}: {v}");
        }
    }
}

#[test]
fn kws_int8_tflite_is_bit_exact_on_every_target() {
    need!(tool(
        "qemu-system-arm",
        "install it with `apt-get install qemu-system-arm`"
    ));
    need!(tool(
        "chromium",
        "install it with `apt-get install chromium`"
    ));
    need!(tool("node", "install Node.js 20 or newer"));
    let (_tmp, project) = need!(import_int8_tflite("kws_int8"));
    let report = bench_target(&project, "all", "2");
    assert_bit_exact(&report, 4);
    let names: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["wasmtime", "browser", "node", "mcu"]);
    let mcu = &report["targets"][3];
    assert_device_figures(mcu, "qemu-mps2-an386");
    // 2.66 M MACs per inference: the instruction count is per MAC.
    let device = &mcu["device"];
    let per_mac = device["instructions_per_mac"].as_f64().unwrap();
    let instructions = device["instructions"].as_u64().unwrap() as f64;
    assert!(
        (instructions / 2_656_768.0 - per_mac).abs() < 1e-6 * per_mac,
        "{device}"
    );
    println!(
        "kws_int8 on the M4 in QEMU: {instructions} instructions per inference, {per_mac:.2} per MAC"
    );
}

/// Imports shared int8 model `name`'s `.tflite` with `--io int8` into a new blank
/// project `project_name`, bit-exact with LiteRT, and checks its manifest: int8
/// inputs and outputs with their quantization, no Quantize or Dequantize left.
fn import_int8_io(name: &str, project_name: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    litert()?;
    let (tmp, project, out) = import_shared_tflite_as(name, project_name, &["--io", "int8"], &[])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("0 quantization steps off"), "{stderr}");
    assert!(
        stderr.contains("as the model's int8 tensors (`--io int8`)"),
        "{stderr}"
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("model/manifest.json")).unwrap(),
    )
    .unwrap();
    for edge in ["inputs", "outputs"] {
        assert_eq!(manifest[edge][0]["dtype"], "i8", "{manifest:#}");
        assert_eq!(manifest[edge][0]["quant"]["dtype"], "i8", "{manifest:#}");
    }
    // No Quantize or Dequantize at the edges: the graph starts and ends in int8.
    let ops = manifest["ops"].to_string();
    assert!(
        !ops.contains("\"Quantize\"") && !ops.contains("\"Dequantize\""),
        "{ops}"
    );
    Some((tmp, project))
}

/// What a Node.js service does with an int8-I/O package: int8 in, int8 out, and the
/// quantization helpers; `argv`: module URL, then a JSON file with one vector's int8
/// input, LiteRT's int8 output for it and the two tensors' scale and zero point.
const NODE_INT8_IO_TEST: &str = r#"
import { readFile } from "node:fs/promises";
import assert from "node:assert/strict";

const [moduleUrl, casePath] = process.argv.slice(2);
const { Detector, MedwasmError } = await import(moduleUrl);
const c = JSON.parse(await readFile(casePath, "utf8"));
const d = await Detector.create();
assert.equal(d.inputs[0].dtype, "i8");
assert.equal(d.outputs[0].dtype, "i8");
assert.deepEqual(d.inputs[0].quant, c.input_quant);

const r = d.run(Int8Array.from(c.input));
assert.ok(r.outputs[0] instanceof Int8Array);
assert.deepEqual(Array.from(r.outputs[0]), c.expected);
// A plain array of the same integers is the same input.
assert.deepEqual(Array.from(d.run(c.input).outputs[0]), c.expected);
// Values an int8 input cannot hold are refused, never wrapped or truncated.
const bad = (k, v) => { const x = c.input.slice(); x[k] = v; return x; };
assert.throws(() => d.run(bad(3, 128)), (e) => e instanceof RangeError && /element 3 is 128/.test(e.message));
assert.throws(() => d.run(bad(0, 1.5)), RangeError);
assert.throws(() => d.run(bad(7, NaN)), (e) => e instanceof MedwasmError && e.code === 11);
// quantize() of the real values gives the int8 input back; dequantize() the reals.
const { scale, zero_point } = c.input_quant;
const reals = c.input.map((q) => Math.fround(scale) * (q - zero_point));
assert.deepEqual(Array.from(d.quantize(0, reals)), c.input);
const out = d.dequantize(0, r.outputs[0]);
assert.ok(out instanceof Float32Array);
assert.equal(out[0], Math.fround(Math.fround(c.output_quant.scale) * (c.expected[0] - c.output_quant.zero_point)));
console.log("int8 io ok");
"#;

/// `kws_int8` imported with `--io int8`: the detector takes and returns the model's
/// int8 tensors, and is bit-exact with LiteRT's reference kernels on every target;
/// the JS package works in `Int8Array`s and the C header and example in `int8_t`.
#[test]
fn kws_int8_with_int8_io_is_bit_exact_on_every_target() {
    need!(tool(
        "qemu-system-arm",
        "install it with `apt-get install qemu-system-arm`"
    ));
    need!(tool(
        "chromium",
        "install it with `apt-get install chromium`"
    ));
    let node = need!(tool("node", "install Node.js 20 or newer"));
    let gcc = need!(tool(
        "arm-none-eabi-gcc",
        "install it with `apt-get install gcc-arm-none-eabi`"
    ));
    let models = need!(shared_models()).join("kws_int8");
    let (tmp, project) = need!(import_int8_io("kws_int8", "kws-io8"));
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("model/manifest.json")).unwrap(),
    )
    .unwrap();
    let report = bench_target(&project, "all", "2");
    assert_bit_exact(&report, 4);

    // The JS package in Node.js: Int8Array in and out.
    let built = ok(&project, &["build", "--target", "browser", "--release"]);
    let pkg = project
        .join(built.split_whitespace().next().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let dts = std::fs::read_to_string(pkg.join("kws-io8.d.ts")).unwrap();
    assert!(
        dts.contains("int8 [1, 49, 10, 1]: real = ") && dts.contains("*/ Int8Input,"),
        "{dts}"
    );
    assert!(dts.contains("*/ Int8Array,\n];"), "{dts}");
    let int8_row = |file: &str| -> Vec<i64> {
        let a = cargo_medwasm::npy::Array::read(&models.join(file)).unwrap();
        assert!(a.integers, "{file} holds int8 values");
        a.sample(0).unwrap().iter().map(|&v| v as i64).collect()
    };
    let quant = |edge: &str| {
        let q = &manifest[edge][0]["quant"];
        serde_json::json!({"dtype": "i8", "scale": q["scale"], "zero_point": q["zero_point"]})
    };
    let case = serde_json::json!({
        "input": int8_row("inputs.npy"),
        "expected": int8_row("expected_tflite_ref.npy"),
        "input_quant": quant("inputs"),
        "output_quant": quant("outputs"),
    });
    std::fs::write(tmp.path().join("io8.mjs"), NODE_INT8_IO_TEST).unwrap();
    std::fs::write(tmp.path().join("case.json"), case.to_string()).unwrap();
    let module = cargo_medwasm::targets::node::file_url(&pkg.join("kws-io8.js")).unwrap();
    let out = Command::new(&node)
        .arg(tmp.path().join("io8.mjs"))
        .arg(&module)
        .arg(tmp.path().join("case.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("int8 io ok"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // C: the header types the tensors int8_t with their scale and zero point, and
    // the example, built with -Werror, runs on the M4 and prints the int8 output the
    // SDK computes natively for the same input (64 everywhere).
    let dir = target_dir(&project).join("medwasm/mcu/qemu-mps2-an386/kws-io8");
    let header = std::fs::read_to_string(dir.join("kws_io8.h")).unwrap();
    for want in [
        "#define MEDWASM_ABI_VERSION 2",
        "KWS_IO8_INPUT_0_TYPE int8_t",
        "KWS_IO8_INPUT_0_SCALE ",
        "KWS_IO8_OUTPUT_0_ZERO_POINT (",
        "void *medwasm_input_ptr(int32_t i);",
    ] {
        assert!(
            header.contains(want),
            "`{want}` missing from the header:\n{header}"
        );
    }
    let board = cargo_medwasm::targets::mcu::board::Board::resolve("qemu-mps2-an386").unwrap();
    let args = cargo_medwasm::targets::mcu::example_gcc_args(&dir, "kws_io8", &board);
    let out = Command::new(&gcc).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = dir.join("example/example.elf");
    let mut qemu = cargo_medwasm::targets::mcu::qemu_command("mps2-an386", &elf, &dir);
    let printed = cargo_medwasm::targets::mcu::run_with_timeout(&mut qemu, "qemu example").unwrap();
    let blob =
        medwasm::AlignedBuf::from_bytes(&std::fs::read(project.join("model/model.mwm")).unwrap());
    let model = medwasm::Model::load(blob.as_slice()).unwrap();
    let mut arena = medwasm::AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = medwasm::PlanBuf::for_model(&model);
    let mut rt = medwasm::Runtime::new(model, arena.as_mut_slice(), plan.storage()).unwrap();
    match rt.input_view_mut(0).unwrap() {
        medwasm::ViewMut::I8(x) => x.fill(64),
        other => panic!("input 0 is {:?}", other.dtype()),
    }
    rt.run().unwrap();
    let native = rt.output_view(0).unwrap().i8().unwrap()[0];
    assert!(
        printed.contains(&format!("output0[0] int8 {native}\n")),
        "native output0[0] is {native}; the C example printed:\n{printed}"
    );
}

/// A shared int8 model under Wasmtime and on the Cortex-M4 in QEMU.
fn int8_tflite_on_wasmtime_and_the_m4(name: &str) {
    need!(tool(
        "qemu-system-arm",
        "install it with `apt-get install qemu-system-arm`"
    ));
    let (_tmp, project) = need!(import_int8_tflite(name));
    assert_bit_exact(&bench_target(&project, "wasmtime", "2"), 1);
    let report = bench_mcu(&project, "qemu-mps2-an386", "1");
    assert_bit_exact(&report, 1);
    let mcu = &report["targets"][0];
    assert_device_figures(mcu, "qemu-mps2-an386");
    println!(
        "{name} on the M4 in QEMU: {} instructions per inference, {:.2} per MAC",
        mcu["device"]["instructions"], mcu["device"]["instructions_per_mac"]
    );
}

#[test]
fn ic_resnet8_int8_tflite_is_bit_exact_under_wasmtime_and_on_the_m4() {
    int8_tflite_on_wasmtime_and_the_m4("ic_resnet8_int8");
}

#[test]
fn ad01_int8_tflite_is_bit_exact_under_wasmtime_and_on_the_m4() {
    int8_tflite_on_wasmtime_and_the_m4("ad01_int8");
}

#[test]
fn fc_requant_tflm_is_checked_against_litert_with_the_projects_steps() {
    need!(litert());
    let models = need!(shared_models()).join("ad01_int8");
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["new", "tflm-it", "--template", "blank"]);
    let project = tmp.path().join("tflm-it");
    let args = [
        "import",
        models.join("model.tflite").to_str().unwrap(),
        "--inputs",
        models.join("inputs.npy").to_str().unwrap(),
        "--expected",
        models.join("expected_tflite_ref.npy").to_str().unwrap(),
        "--fc-requant",
        "tflm",
    ]
    .map(str::to_string);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // TFLite Micro's fixed-point requantization is up to 3 steps from LiteRT's
    // over the 8 vectors (all are checked): refused at 0 steps, with what to do.
    let out = cli(&project, &args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("quantization steps from LiteRT") && err.contains("int8-tolerance-steps = 3"),
        "{err}"
    );
    assert!(!project.join("model/model.mwm").exists());
    let toml = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "[package.metadata.medwasm]\n",
        "[package.metadata.medwasm]\nint8-tolerance-steps = 3\n",
    );
    std::fs::write(&toml, text).unwrap();
    ok(&project, &args);
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("model/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["fc_requant"], "tflm", "{manifest:#}");
    // A mode that does not exist is a usage error naming both.
    let out = cli(&project, &["import", "x.tflite", "--fc-requant", "cmsis"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("litert-ref") && err.contains("tflm"), "{err}");
}

#[test]
fn an_asymmetric_dynamic_range_model_is_refused_with_nothing_written() {
    // Distinct per-channel weight scales on a float convolution: LiteRT's asymmetric
    // hybrid path, which the runtime does not have.
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["new", "dyn-it", "--template", "blank"]);
    let project = tmp.path().join("dyn-it");
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/tflite/conv2d_same_relu_dyn.tflite");
    let out = cli(&project, &["import", model.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("(Conv+Relu)") && err.contains("asymmetric dynamic-range path"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!project.join("model/model.mwm").exists());
}

#[test]
fn tflite_import_without_litert_says_so_and_needs_expected() {
    let models = need!(shared_models()).join("ad01_fp32");
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["new", "no-litert", "--template", "blank"]);
    let project = tmp.path().join("no-litert");
    let no_python = [("MEDWASM_PYTHON", "/nonexistent/python3")];
    let model = models.join("model.tflite");
    let out = cli_env(&project, &["import", model.to_str().unwrap()], &no_python);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LiteRT") && err.contains("not available") && err.contains("--expected"),
        "{err}"
    );
    assert!(!project.join("model/model.mwm").exists());

    // With `--expected`, the import checks against it and says what it used.
    let (_tmp, project, out) = need!(import_shared_tflite("ad01_fp32", &no_python));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("not available") && err.contains("expected_tflite_ref.npy"),
        "{err}"
    );
    assert!(project.join("vectors/expected.npy").exists());
}

/// Whether onnxruntime's Python package is installed; says so when it is not.
fn onnxruntime() -> Option<()> {
    python_modules("onnxruntime, numpy", "pip install onnxruntime numpy")
}

/// A case of `conformance/qdq`: a model onnxruntime's quantizer wrote, its inputs
/// and onnxruntime's outputs.
fn qdq_case(name: &str) -> [PathBuf; 3] {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/qdq");
    ["onnx", "inputs.npy", "expected.npy"].map(|ext| dir.join(format!("{name}.{ext}")))
}

/// A new blank project called `name` in a temporary folder.
fn blank_project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["new", name, "--template", "blank"]);
    let project = tmp.path().join(name);
    (tmp, project)
}

/// `bench --target wasmtime --json` of a project the import did not check against
/// tract: no tract column, and `steps` as the default int8 tolerance.
fn bench_without_tract(project: &Path, steps: u64) -> Value {
    let out = cli(
        project,
        &["bench", "--target", "wasmtime", "--json", "--runs", "2"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("not with tract"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tolerance"]["steps"], steps, "{report:#}");
    for v in report["targets"][0]["vectors"].as_array().unwrap() {
        assert!(v["vs_tract"].is_null(), "no tract column: {v}");
    }
    report
}

fn manifest_json(project: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(project.join("model/manifest.json")).unwrap())
        .unwrap()
}

#[test]
fn kws_int8_onnx_from_tf2onnx_is_bit_exact_with_the_given_reference_kernel_outputs() {
    // tract cannot load this int8-input graph; onnxruntime runs its Softmax as
    // TFLite's optimized kernels do, steps away from the reference kernels: the
    // outputs given with `--expected` (LiteRT's reference kernels) decide, at 0 steps.
    let models = need!(shared_models()).join("kws_int8");
    let (_tmp, project) = blank_project("kws-onnx-it");
    let [model, inputs, expected] = ["model.onnx", "inputs.npy", "expected_tflite_ref.npy"]
        .map(|f| models.join(f).to_str().unwrap().to_string());
    let args = [
        "import",
        &model,
        "--inputs",
        &inputs,
        "--expected",
        &expected,
    ];
    let out = cli(&project, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("expected_tflite_ref.npy`: the int8 outputs are identical"),
        "{err}"
    );
    if onnxruntime().is_some() {
        assert!(
            err.contains("from onnxruntime") && err.contains("`--expected` decide"),
            "onnxruntime's distance is reported: {err}"
        );
    }
    let manifest = manifest_json(&project);
    assert_eq!(
        manifest["outputs"][0]["quant"]["dtype"], "i8",
        "{manifest:#}"
    );
    assert_eq!(
        manifest["reference"]["int8_tolerance_steps"], 0,
        "{manifest:#}"
    );
    // The copy chains tf2onnx leaves around its Reshapes are gone: as many nodes
    // as the `.tflite` original.
    assert_eq!(manifest["nodes"], 15, "{manifest:#}");

    assert_bit_exact(&bench_without_tract(&project, 0), 1);
}

#[test]
fn an_onnxruntime_quantized_model_is_checked_against_onnxruntime_and_benched() {
    need!(onnxruntime());
    let [model, inputs, _] = qdq_case("softmax_qdq_pt");
    let (_tmp, project) = blank_project("qdq-it");
    let out = cli(
        &project,
        &[
            "import",
            model.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // tract is 0.99 off on this model (it runs the QDQ Softmax in float); the import
    // says which reference it used and how far the int8 kernels are from it.
    assert!(
        err.contains("Verified against onnxruntime") && err.contains("one quantization step off"),
        "{err}"
    );
    let manifest = manifest_json(&project);
    let reference = &manifest["reference"];
    assert_eq!(reference["kind"], "onnxruntime", "{manifest:#}");
    assert_eq!(reference["int8_tolerance_steps"], 1, "{manifest:#}");
    // The f32 output is the final DequantizeLinear's: compared in its steps.
    let quant = &manifest["outputs"][0]["quant"];
    assert_eq!(quant["zero_point"], -128, "{manifest:#}");
    let expected = cargo_medwasm::npy::Array::read(&project.join("vectors/expected.npy")).unwrap();
    assert_eq!(expected.samples(), 8, "onnxruntime's outputs are stored");

    let report = bench_without_tract(&project, 1);
    let target = &report["targets"][0];
    assert_eq!(target["passed"], true, "{report:#}");
    let mut one = 0;
    for v in target["vectors"].as_array().unwrap() {
        let steps = &v["vs_expected"]["steps"];
        assert!(steps["max"].as_u64().unwrap() <= 1, "{v}");
        one += steps["one"].as_u64().unwrap();
    }
    assert!(
        one > 0,
        "onnxruntime rounds otherwise on some values: {report:#}"
    );

    // Two steps (QLinearAveragePool rounds twice here, onnxruntime once) are
    // refused by default with what to do, and nothing is written.
    let [model, inputs, _] = qdq_case("avgpool_qop_pt");
    let args = [
        "import",
        model.to_str().unwrap(),
        "--inputs",
        inputs.to_str().unwrap(),
    ];
    let before = std::fs::read(project.join("model/model.mwm")).unwrap();
    let out = cli(&project, &args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 quantization steps from onnxruntime")
            && err.contains("int8-tolerance-steps = 2")
            && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(project.join("model/model.mwm")).unwrap(),
        before
    );

    // With `--io int8` the detector takes the int8 values the model's first
    // QuantizeLinear makes, but onnxruntime still gets the real ones it takes.
    let [model, inputs, _] = qdq_case("softmax_qdq_pt");
    let args = [
        "import",
        model.to_str().unwrap(),
        "--inputs",
        inputs.to_str().unwrap(),
        "--io",
        "int8",
    ];
    let out = cli(&project, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Verified against onnxruntime"), "{err}");
    assert_eq!(manifest_json(&project)["inputs"][0]["dtype"], "i8");
}

#[test]
fn quantized_onnx_import_without_onnxruntime_says_so_and_needs_expected() {
    let [model, inputs, expected] = qdq_case("tiny_cnn_qop_pc");
    let (_tmp, project) = blank_project("no-ort");
    let no_python = [("MEDWASM_PYTHON", "/nonexistent/python3")];
    let out = cli_env(&project, &["import", model.to_str().unwrap()], &no_python);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("onnxruntime, the reference for this ONNX model, is not available")
            && err.contains("/nonexistent/python3")
            && err.contains("--expected")
            && err.contains("pip install onnxruntime"),
        "{err}"
    );
    assert!(!project.join("model/model.mwm").exists() && !project.join("src/model.rs").exists());

    // With `--expected` (here onnxruntime's own outputs, identical on this model),
    // the import checks against them at 0 steps and says what it used.
    let out = cli_env(
        &project,
        &[
            "import",
            model.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
            "--expected",
            expected.to_str().unwrap(),
        ],
        &no_python,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("not available")
            && err.contains("tiny_cnn_qop_pc.expected.npy`: the int8 outputs are identical"),
        "{err}"
    );
    let manifest = manifest_json(&project);
    assert_eq!(manifest["reference"]["kind"], "expected", "{manifest:#}");
    // The manifest (embedded in every artifact) names the file, not this machine's path.
    assert_eq!(
        manifest["reference"]["name"], "`tiny_cnn_qop_pc.expected.npy`",
        "{manifest:#}"
    );
}

#[test]
fn unsupported_model_is_refused_with_every_problem_and_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["new", "refuse-it", "--template", "blank"]);
    let project = tmp.path().join("refuse-it");
    let case =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/cases/unsupported_ops.onnx");
    let out = cli(&project, &["import", case.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`erf_0` (Erf)")
            && err.contains("`cos_1` (Cos)")
            && err.contains("docs/ops.md"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!project.join("model/model.mwm").exists() && !project.join("src/model.rs").exists());

    // A malformed file is an error too, not a panic.
    let junk = tmp.path().join("junk.onnx");
    std::fs::write(&junk, b"\x08\x07garbage that is not protobuf").unwrap();
    let out = cli(&project, &["import", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid ONNX model"));

    // Building before any import says what to do.
    let out = cli(&project, &["build", "--target", "wasmtime"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo medwasm import"));
}

#[test]
fn nan_test_vector_fails_conformance_with_the_detectors_message() {
    let (_tmp, project) = need!(import_shared("ad01_fp32"));
    // Poison one element of the last vector: the detector must refuse it by name.
    let path = project.join("vectors/inputs.npy");
    let mut a = cargo_medwasm::npy::Array::read(&path).unwrap();
    let last = a.data.len() - 1;
    a.data[last] = f32::NAN;
    a.write(&path).unwrap();
    let out = cli(
        &project,
        &["bench", "--target", "wasmtime", "--json", "--runs", "3"],
    );
    assert_eq!(out.status.code(), Some(1), "a conformance failure exits 1");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &report["targets"][0]["vectors"][7];
    assert!(
        v["error"].as_str().unwrap().contains("NaN or infinite"),
        "{v}"
    );
    assert_eq!(report["targets"][0]["passed"], false);
}

#[test]
fn default_target_in_the_metadata_is_used_without_target() {
    let tmp = tempfile::tempdir().unwrap();
    ok(
        tmp.path(),
        &["new", "vitals-dt", "--template", "vitals-anomaly"],
    );
    let project = tmp.path().join("vitals-dt");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    let with = |target: &str| {
        let edited = manifest.replacen(
            "[package.metadata.medwasm]\n",
            &format!("[package.metadata.medwasm]\ndefault-target = \"{target}\"\n"),
            1,
        );
        assert_ne!(edited, manifest);
        std::fs::write(project.join("Cargo.toml"), edited).unwrap();
    };
    with("wasmedg");
    let out = cli(&project, &["build"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`default-target = \"wasmedg\"`") && err.contains("`wasmedge`"),
        "{err}"
    );
    with("wasmedge");
    let built = ok(&project, &["build"]);
    assert!(built.contains("bench harness"), "{built}");
    // `--target` still wins.
    let built = ok(&project, &["build", "--target", "wasmtime"]);
    assert!(!built.contains("bench harness"), "{built}");
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cli(tmp.path(), &["new", "9lives"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("name"));
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/keep.txt"), "mine").unwrap();
    let out = cli(tmp.path(), &["new", "taken"]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("taken/keep.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn ops_table_and_help() {
    let tmp = tempfile::tempdir().unwrap();
    let ops = ok(tmp.path(), &["ops"]);
    assert!(ops.contains("| `Conv` |") && ops.contains("| `Softmax` |"));
    assert!(ops.contains("## TFLite") && ops.contains("| `DEPTHWISE_CONV_2D` |"));
    let help = ok(tmp.path(), &["--help"]);
    for cmd in ["new", "import", "build", "bench", "doctor", "ops"] {
        assert!(help.contains(cmd), "{help}");
    }
}

// ---------------------------------------------------------------------------------
// The microcontroller target: real builds for thumbv7em-none-eabihf, real QEMU.

/// Cargo's target folder for `project`, as cargo-medwasm finds it.
fn target_dir(project: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project.join("target"))
}

fn bench_mcu(project: &Path, board: &str, runs: &str) -> Value {
    let out = ok(
        project,
        &[
            "bench", "--target", "mcu", "--board", board, "--json", "--runs", runs,
        ],
    );
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("bench --json printed something else ({e}):\n{out}"))
}

/// Checks the device figures every `mcu` report must carry.
fn assert_device_figures(target: &Value, board: &str) {
    assert_eq!(target["target"], "mcu");
    let device = &target["device"];
    assert_eq!(device["board"], board);
    assert!(
        device["counting"]
            .as_str()
            .unwrap()
            .contains("instructions, not cycles"),
        "{device}"
    );
    let instructions = device["instructions"].as_u64().unwrap();
    assert!(instructions > 1000, "{device}");
    assert_eq!(
        target["latency"]["instructions"].as_u64(),
        Some(instructions)
    );
    // QEMU times nothing in wall-clock terms: null, not 0.
    assert!(target["latency"]["median_us"].is_null(), "{target}");
    assert!(device["instructions_per_mac"].as_f64().unwrap() > 1.0);
    // Init checks the CRC-32 of every blob byte: never free.
    assert!(
        device["init_instructions"].as_u64().unwrap() > 1000,
        "{device}"
    );
    let peak = device["stack_peak_bytes"].as_u64().unwrap();
    assert!(
        peak > 0 && peak <= device["stack_reserved_bytes"].as_u64().unwrap(),
        "{device}"
    );
    assert!(device["flash_bytes"].as_u64().unwrap() <= device["flash_budget"].as_u64().unwrap());
    assert!(device["ram_bytes"].as_u64().unwrap() <= device["ram_budget"].as_u64().unwrap());
}

#[test]
fn mcu_template_builds_conforms_in_qemu_and_links_from_c() {
    need!(tool(
        "qemu-system-arm",
        "install it with `apt-get install qemu-system-arm`"
    ));
    let gcc = need!(tool(
        "arm-none-eabi-gcc",
        "install it with `apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi`"
    ));
    let tmp = tempfile::tempdir().unwrap();
    ok(
        tmp.path(),
        &["new", "vitals-mcu", "--template", "vitals-anomaly"],
    );
    let project = tmp.path().join("vitals-mcu");

    // The build prints the memory report of the linked ELF.
    let built = ok(&project, &["build", "--target", "mcu", "--release"]);
    for part in [
        "code",
        "weights",
        "never copied to RAM",
        "arena",
        "stack",
        "of 4.00 MiB",
    ] {
        assert!(built.contains(part), "`{part}` missing from:\n{built}");
    }
    let dir = target_dir(&project).join("medwasm/mcu/qemu-mps2-an386/vitals-mcu");
    for f in [
        "vitals_mcu.elf",
        "libvitals_mcu.a",
        "vitals_mcu.h",
        "example/main.c",
        "example/link.ld",
        "memory.json",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }

    // Same vectors, same comparison as Wasmtime, on the M4 and the M7.
    for board in ["qemu-mps2-an386", "qemu-mps2-an500"] {
        let report = bench_mcu(&project, board, "5");
        let target = &report["targets"][0];
        assert_eq!(target["passed"], true, "{report:#}");
        assert_template_vectors(target);
        assert_device_figures(target, board);
    }
    let table = ok(&project, &["bench", "--target", "mcu", "--runs", "2"]);
    assert!(
        table.contains("instructions per inference") && table.contains("not cycles"),
        "{table}"
    );

    // The C example links against the static library and runs in QEMU; its finding
    // matches the SDK running the same model natively.
    let board = cargo_medwasm::targets::mcu::board::Board::resolve("qemu-mps2-an386").unwrap();
    let args = cargo_medwasm::targets::mcu::example_gcc_args(&dir, "vitals_mcu", &board);
    let out = Command::new(&gcc).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {}\n{}",
        gcc.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = dir.join("example/example.elf");
    let mut qemu = cargo_medwasm::targets::mcu::qemu_command("mps2-an386", &elf, &dir);
    let printed = cargo_medwasm::targets::mcu::run_with_timeout(&mut qemu, "qemu example").unwrap();
    let score_bits = printed
        .split_whitespace()
        .skip_while(|w| *w != "score")
        .nth(1)
        .unwrap_or_else(|| panic!("no score in:\n{printed}"));
    let score = f32::from_bits(u32::from_str_radix(score_bits, 16).unwrap());

    let blob =
        medwasm::AlignedBuf::from_bytes(&std::fs::read(project.join("model/model.mwm")).unwrap());
    let model = medwasm::Model::load(blob.as_slice()).unwrap();
    let mut arena = medwasm::AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = medwasm::PlanBuf::for_model(&model);
    let mut rt = medwasm::Runtime::new(model, arena.as_mut_slice(), plan.storage()).unwrap();
    rt.set_input(0, &[0.5; 96]).unwrap();
    rt.run().unwrap();
    let native = rt.output(1).unwrap()[0];
    assert!(
        (score - native).abs() <= 1e-4 + 1e-3 * native.abs(),
        "C example score {score}, native {native}\n{printed}"
    );
    assert!(printed.contains("label 1 alert 1"), "{printed}");

    // A board with 32 KiB of flash cannot hold it: the build fails with the report.
    let tiny = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../targets/boards/qemu-mps2-an386.toml"),
    )
    .unwrap()
    .replace("name = \"qemu-mps2-an386\"", "name = \"tiny-m4\"")
    .replace("size = 0x0040_0000 # ZBT SSRAM1", "size = 0x8000 # 32 KiB,");
    std::fs::write(project.join("tiny.toml"), tiny).unwrap();
    let out = cli(
        &project,
        &[
            "build",
            "--target",
            "mcu",
            "--release",
            "--board",
            "tiny.toml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not fit board `tiny-m4`")
            && err.contains("flash needs")
            && err.contains("over by")
            && err.contains("the largest part is weights")
            && err.contains("never copied to RAM"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !target_dir(&project)
            .join("medwasm/mcu/tiny-m4/vitals-mcu/vitals_mcu.elf")
            .exists()
    );
}

/// Appended to a detector's `src/lib.rs`: code that is linked but never runs, so
/// everything the linker places after it lands at other addresses.
const LAYOUT_SHIFT: &str = r#"
/// Not part of the detector: shifts the code linked after it (layout test).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn layout_shift(x: u32) -> u32 {
    let mut acc = x;
    for i in 0..(x % 7) {
        acc = acc.rotate_left(3) ^ i.wrapping_mul(0x9e37_79b9);
    }
    acc
}

/// Keeps `layout_shift` in the image although nothing calls it.
#[used]
static KEEP_LAYOUT_SHIFT: extern "C" fn(u32) -> u32 = layout_shift;
"#;

/// Address of `symbol` in a firmware ELF.
fn symbol_address(elf: &Path, symbol: &str) -> u64 {
    use object::{Object as _, ObjectSymbol as _};
    let bytes = std::fs::read(elf).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    file.symbols()
        .find(|s| s.name() == Ok(symbol))
        .unwrap_or_else(|| panic!("no `{symbol}` in {}", elf.display()))
        .address()
}

#[test]
fn mcu_instruction_counts_do_not_depend_on_where_the_code_lands() {
    need!(tool(
        "qemu-system-arm",
        "install it with `apt-get install qemu-system-arm`"
    ));
    let tmp = tempfile::tempdir().unwrap();
    // The template twice: as made, and under another name with code that shifts
    // everything linked after it.
    let projects = ["vitals-layout-a", "vitals-layout-b"].map(|name| {
        ok(tmp.path(), &["new", name, "--template", "vitals-anomaly"]);
        tmp.path().join(name)
    });
    let lib = projects[1].join("src/lib.rs");
    let mut source = std::fs::read_to_string(&lib).unwrap();
    source.push_str(LAYOUT_SHIFT);
    std::fs::write(&lib, source).unwrap();

    for board in ["qemu-mps2-an386", "qemu-mps2-an500"] {
        let counts = projects.each_ref().map(|project| {
            let report = bench_mcu(project, board, "3");
            let target = &report["targets"][0];
            assert_eq!(target["passed"], true, "{report:#}");
            assert_device_figures(target, board);
            let device = &target["device"];
            (
                device["instructions"].as_u64().unwrap(),
                device["init_instructions"].as_u64().unwrap(),
            )
        });
        let elf = |project: &Path| {
            let name = project.file_name().unwrap().to_str().unwrap();
            target_dir(project)
                .join("medwasm/mcu")
                .join(board)
                .join(name)
                .join(format!("{}.elf", name.replace('-', "_")))
        };
        let run = projects
            .each_ref()
            .map(|p| symbol_address(&elf(p), "medwasm_run"));
        // Otherwise this test would compare one layout with itself.
        assert_ne!(
            run[0], run[1],
            "on {board} `layout_shift` did not move `medwasm_run`; make it land before the detector's code"
        );
        assert_eq!(
            counts[0], counts[1],
            "on {board}, (instructions, init instructions) with `medwasm_run` at {:#x} and at {:#x}",
            run[0], run[1]
        );
    }
}

/// A folder of stand-ins put first on `PATH`: each `(name, script)` becomes an
/// executable shell script.
#[cfg(unix)]
fn fake_bin(scripts: &[(&str, &str)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    for (name, script) in scripts {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// `cargo medwasm bench --target mcu` in `project` with `path` as `PATH`: it must
/// fail before building anything, with an error that contains every `needle`.
#[cfg(unix)]
fn mcu_bench_refused(project: &Path, path: &std::ffi::OsStr, needles: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-medwasm"))
        .args(["medwasm", "bench", "--target", "mcu"])
        .current_dir(project)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("target `mcu` cannot run here"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "`{needle}` missing from:\n{err}");
    }
    assert!(!err.contains("Compiling"), "refused before building: {err}");
}

#[cfg(unix)]
#[test]
fn mcu_bench_names_a_missing_counting_prerequisite() {
    let tmp = tempfile::tempdir().unwrap();
    ok(
        tmp.path(),
        &["new", "vitals-prereq", "--template", "vitals-anomaly"],
    );
    let project = tmp.path().join("vitals-prereq");
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .or_else(|| which::which("cargo").ok())
        .expect("cargo runs this test");
    let cargo_dir = cargo.parent().unwrap().to_path_buf();
    let path_with = |fake: &Path, rest: &[PathBuf]| {
        std::env::join_paths(std::iter::once(fake.to_path_buf()).chain(rest.iter().cloned()))
            .unwrap()
    };

    // A QEMU built without plugins (this is what such a build prints for `-plugin`).
    let no_plugins = fake_bin(&[(
        "qemu-system-arm",
        "echo 'qemu-system-arm: plugin interface not enabled in this build' >&2; exit 1",
    )]);
    let system: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap()).collect();
    mcu_bench_refused(
        &project,
        &path_with(no_plugins.path(), &system),
        &[
            "without TCG plugin support",
            "apt-get install qemu-system-arm",
        ],
    );

    // A QEMU with plugins, but no `cc` to link the counting plugin: only the fake
    // QEMU and cargo's own folder are on `PATH`.
    let plugins = fake_bin(&[(
        "qemu-system-arm",
        "echo 'qemu-system-arm: Could not load plugin /nonexistent/medwasm-probe.so: cannot open shared object file' >&2; exit 1",
    )]);
    assert!(
        !cargo_dir.join("cc").exists(),
        "`cc` sits beside cargo in {}; this test cannot hide it",
        cargo_dir.display()
    );
    mcu_bench_refused(
        &project,
        &path_with(plugins.path(), &[cargo_dir]),
        &["links it with `cc`", "apt-get install gcc"],
    );
}

#[test]
fn ad01_fp32_conforms_in_qemu_on_the_m4() {
    need!(tool(
        "qemu-system-arm",
        "install it with `apt-get install qemu-system-arm`"
    ));
    let (_tmp, project) = need!(import_shared("ad01_fp32"));
    // 1000 runs, as in issue 12: SysTick timing failed there on a wrap inside a run.
    let report = bench_mcu(&project, "qemu-mps2-an386", "1000");
    let target = &report["targets"][0];
    assert_eq!(target["passed"], true, "{report:#}");
    assert_eq!(target["vectors"].as_array().unwrap().len(), 8);
    for v in target["vectors"].as_array().unwrap() {
        assert_eq!(v["vs_expected"]["pass"], true, "{v}");
        assert_eq!(v["vs_tract"]["pass"], true, "{v}");
    }
    assert_device_figures(target, "qemu-mps2-an386");
    // The weights (over 1 MiB) stay in flash: RAM is the arena, statics and stack.
    let device = &target["device"];
    assert!(
        device["ram_bytes"].as_u64().unwrap() < 64 * 1024,
        "{device}"
    );
    assert!(
        device["flash_bytes"].as_u64().unwrap() > 1024 * 1024,
        "{device}"
    );
}
