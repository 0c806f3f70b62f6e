//! The portable bench harness under real WASI runtimes, with no host code of ours
//! between them and the module: Node's `node:wasi` (through the runner emitted beside
//! the harness) and the Wasmtime that `cargo medwasm wasi-run` embeds (a plain WASI
//! command runner). Its JSON is checked here against the reference outputs stored
//! with the model (onnxruntime's), not against another run of our code.

use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_medwasm::npy::Array;
use serde_json::Value;

use super::{import_shared, need, ok, shared_models, tool};

/// `cargo medwasm build --target wasmedge --release`, and the harness it emitted.
fn build_harness(project: &Path) -> PathBuf {
    let built = ok(project, &["build", "--target", "wasmedge", "--release"]);
    let line = built
        .lines()
        .find(|l| l.contains("(bench harness"))
        .unwrap_or_else(|| panic!("the build names no harness:\n{built}"));
    let path = PathBuf::from(line.split_whitespace().next().unwrap());
    let path = if path.is_absolute() {
        path
    } else {
        project.join(path)
    };
    assert!(path.is_file(), "{}", path.display());
    path
}

/// Runs `cmd` and returns the one JSON result the harness printed.
fn harness_json(mut cmd: Command) -> Value {
    let out = cmd.output().expect("the runtime runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{cmd:?} printed no JSON result ({e}):\n{stdout}"))
}

/// f32 bits in hex, as the harness prints outputs.
fn floats(hex: &str) -> Vec<f32> {
    (0..hex.len() / 8)
        .map(|k| f32::from_bits(u32::from_str_radix(&hex[k * 8..k * 8 + 8], 16).unwrap()))
        .collect()
}

/// Every vector ran, and every output is within |got - want| <= 1e-4 + 1e-3 * |want|
/// of `expected` (one array per output); `runs` warm samples were timed. Returns the
/// largest deviation seen.
fn check(json: &Value, expected: &[Array], runs: usize, what: &str) -> f32 {
    assert_eq!(json["harness"], 1, "{what}: {json}");
    assert_eq!(json["init"]["code"], 0, "{what}: {json}");
    let vectors = json["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), expected[0].samples(), "{what}");
    let mut worst = 0.0f32;
    for (n, v) in vectors.iter().enumerate() {
        assert_eq!(v["ok"], true, "{what} vector {n}: {v}");
        let outputs = v["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), expected.len(), "{what} vector {n}");
        for (k, hex) in outputs.iter().enumerate() {
            let got = floats(hex.as_str().unwrap());
            let want = expected[k].sample(n).unwrap();
            assert_eq!(got.len(), want.len(), "{what} vector {n} output {k}");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                let d = (g - w).abs();
                assert!(
                    d <= 1e-4 + 1e-3 * w.abs(),
                    "{what} vector {n} output {k}[{i}]: {g} vs {w}"
                );
                worst = worst.max(d);
            }
        }
    }
    let samples = json["samples_us"].as_array().unwrap();
    assert_eq!(samples.len(), runs, "{what}");
    assert!(
        samples.iter().all(|s| s.as_f64().unwrap() > 0.0),
        "{what}: {samples:?}"
    );
    worst
}

/// The harness of `project` under Node and the embedded Wasmtime, against `expected`.
fn run_everywhere(project: &Path, expected: &[Array]) {
    let node = need!(tool("node", "install Node.js 20 or newer"));
    let harness = build_harness(project);
    let runner = harness.with_file_name("harness-node.mjs");
    assert!(
        runner.is_file(),
        "Node's runner is emitted beside the harness"
    );

    let mut under_node = Command::new(node);
    under_node.arg(&runner).arg(&harness).arg("25");
    let a = check(&harness_json(under_node), expected, 25, "node:wasi");

    let mut under_wasmtime = Command::new(env!("CARGO_BIN_EXE_cargo-medwasm"));
    under_wasmtime
        .args(["medwasm", "wasi-run"])
        .arg(&harness)
        .arg("25");
    let b = check(&harness_json(under_wasmtime), expected, 25, "wasi-run");
    eprintln!("largest deviation from the reference: node {a:e}, wasmtime {b:e}");
}

fn stored_expected(project: &Path, outputs: usize) -> Vec<Array> {
    (0..outputs)
        .map(|i| {
            let file = if i == 0 {
                "vectors/expected.npy".to_string()
            } else {
                format!("vectors/expected.{i}.npy")
            };
            Array::read(&project.join(file)).unwrap()
        })
        .collect()
}

#[test]
fn template_harness_conforms_under_node_wasi_and_wasmtime() {
    let tmp = tempfile::tempdir().unwrap();
    ok(
        tmp.path(),
        &["new", "vitals-h", "--template", "vitals-anomaly"],
    );
    let project = tmp.path().join("vitals-h");
    // The template has two outputs, so two files of expected values.
    run_everywhere(&project, &stored_expected(&project, 2));
}

#[test]
fn ad01_fp32_harness_conforms_under_node_wasi_and_wasmtime() {
    let models = need!(shared_models());
    let (_tmp, project) = need!(import_shared("ad01_fp32"));
    // onnxruntime's outputs, read where the team keeps them.
    let expected = Array::read(&models.join("ad01_fp32/expected_onnx.npy")).unwrap();
    run_everywhere(&project, &[expected]);
}

#[test]
fn ad01_int8_with_int8_io_harness_is_bit_exact_under_node_wasi_and_wasmtime() {
    let models = need!(shared_models());
    let (_tmp, project) = need!(super::import_int8_io("ad01_int8", "ad01-io8"));
    // LiteRT's reference kernels' int8 outputs: the harness prints the detector's
    // int8 outputs as their values, which must be these exactly.
    let expected = Array::read(&models.join("ad01_int8/expected_tflite_ref.npy")).unwrap();
    assert!(expected.integers);
    run_everywhere(&project, &[expected]);
}
