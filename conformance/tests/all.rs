//! Conformance: every op case and the shared reference models, converted and run by
//! the native (scalar) runtime, against onnxruntime's outputs (ONNX) and LiteRT's
//! reference kernels (TFLite).

use std::collections::HashMap;

use cargo_medwasm::convert::{ConvertError, ConvertOptions, ProblemKind, convert_onnx};
use cargo_medwasm::npy::Array;
use medwasm_conformance::{
    NATIVE_MODEL_TOLERANCE, NATIVE_OP_TOLERANCE, cases, cases_dir, check_native, shared_models,
};

#[test]
fn op_cases_match_onnxruntime() {
    let dir = cases_dir();
    let mut failures = vec![];
    let mut ran = 0;
    for case in cases().unwrap() {
        if case.expect != "pass" {
            continue;
        }
        let model = dir.join(format!("{}.onnx", case.name));
        let inputs = Array::read(&dir.join(format!("{}.inputs.npy", case.name))).unwrap();
        let expected = Array::read(&dir.join(format!("{}.expected.npy", case.name))).unwrap();
        match check_native(
            &model,
            &ConvertOptions::default(),
            &inputs,
            &expected,
            NATIVE_OP_TOLERANCE,
        ) {
            Ok(d) if d.pass => {}
            Ok(d) => failures.push(format!(
                "{}: max abs {:.3e}, max rel {:.3e}",
                case.name, d.max_abs, d.max_rel
            )),
            Err(e) => failures.push(format!("{}: {e:#}", case.name)),
        }
        ran += 1;
    }
    assert!(ran >= 60, "only {ran} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn unsupported_ops_are_reported_at_once() {
    let model = cases_dir().join("unsupported_ops.onnx");
    let err = convert_onnx(&model, &ConvertOptions::default()).unwrap_err();
    let ConvertError::Unsupported { problems, .. } = &err else {
        panic!("unexpected error: {err}")
    };
    let nodes: Vec<&str> = problems.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(nodes, ["erf_0", "cos_1"], "{err}");
    assert!(problems.iter().all(|p| p.kind == ProblemKind::Operator));
    let msg = err.to_string();
    assert!(
        msg.contains("2 problems") && msg.contains("docs/ops.md"),
        "{msg}"
    );
}

#[test]
fn dynamic_dims_need_an_input_shape() {
    let dir = cases_dir();
    let model = dir.join("dynamic_other.onnx");
    let err = convert_onnx(&model, &ConvertOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`T` (axis 1)") && msg.contains("--input-shape"),
        "{msg}"
    );
    let opts = ConvertOptions {
        input_shapes: HashMap::from([("x".to_string(), vec![1, 10, 3])]),
    };
    let inputs = Array::read(&dir.join("dynamic_other.inputs.npy")).unwrap();
    let expected = Array::read(&dir.join("dynamic_other.expected.npy")).unwrap();
    let d = check_native(&model, &opts, &inputs, &expected, NATIVE_OP_TOLERANCE).unwrap();
    assert!(d.pass, "{d:?}");
}

#[test]
fn dynamic_batch_is_fixed_to_one() {
    let converted = convert_onnx(
        &cases_dir().join("dynamic_batch.onnx"),
        &ConvertOptions::default(),
    )
    .unwrap();
    assert_eq!(converted.manifest.inputs[0].shape, [1, 20]);
    assert!(
        converted
            .manifest
            .notes
            .iter()
            .any(|n| n.contains("fixed to 1")),
        "{:?}",
        converted.manifest.notes
    );
}

#[test]
fn malformed_models_are_errors() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let bytes = std::fs::read(cases_dir().join("conv2d_basic.onnx")).unwrap();
    for (name, data) in [
        ("garbage.onnx", b"not a model at all".to_vec()),
        ("truncated.onnx", bytes[..bytes.len() / 2].to_vec()),
        ("empty.onnx", vec![]),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        let err = convert_onnx(&path, &ConvertOptions::default()).unwrap_err();
        assert!(
            matches!(
                err,
                ConvertError::Parse { .. } | ConvertError::Unsupported { .. }
            ),
            "{name}: {err}"
        );
    }
    let missing = convert_onnx(&dir.join("missing.onnx"), &ConvertOptions::default()).unwrap_err();
    assert!(matches!(missing, ConvertError::Io { .. }));
}

fn shared_case(name: &str) {
    let dir = shared_models().join(name);
    let inputs = Array::read(&dir.join("inputs.npy")).unwrap();
    let expected = Array::read(&dir.join("expected_onnx.npy")).unwrap();
    let d = check_native(
        &dir.join("model.onnx"),
        &ConvertOptions::default(),
        &inputs,
        &expected,
        NATIVE_MODEL_TOLERANCE,
    )
    .unwrap();
    println!(
        "{name}: max abs {:.3e}, max rel {:.3e} vs onnxruntime",
        d.max_abs, d.max_rel
    );
    assert!(d.pass, "{name}: {d:?}");
}

#[test]
fn ad01_fp32_matches_onnxruntime() {
    shared_case("ad01_fp32");
}

#[test]
fn ic_resnet8_fp32_matches_onnxruntime() {
    shared_case("ic_resnet8_fp32");
}

#[test]
fn kws_float32_matches_onnxruntime() {
    shared_case("kws_float32");
}

/// A shared model's `.tflite`, against LiteRT's reference kernels
/// (`expected_tflite_ref.npy`).
fn shared_tflite_case(name: &str) {
    let dir = shared_models().join(name);
    let inputs = Array::read(&dir.join("inputs.npy")).unwrap();
    let expected = Array::read(&dir.join("expected_tflite_ref.npy")).unwrap();
    let d = check_native(
        &dir.join("model.tflite"),
        &ConvertOptions::default(),
        &inputs,
        &expected,
        NATIVE_MODEL_TOLERANCE,
    )
    .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    println!(
        "{name}.tflite: max abs {:.3e}, max rel {:.3e} vs LiteRT BUILTIN_REF",
        d.max_abs, d.max_rel
    );
    assert!(d.pass, "{name}: {d:?}");
}

#[test]
fn ad01_fp32_tflite_matches_litert() {
    shared_tflite_case("ad01_fp32");
}

#[test]
fn ic_resnet8_fp32_tflite_matches_litert() {
    shared_tflite_case("ic_resnet8_fp32");
}

/// Models the runtime cannot run yet are refused with one problem per node, all of
/// element types, none a panic or a parse error.
fn refused_tflite(name: &str, needle: &str) {
    let path = shared_models().join(name).join("model.tflite");
    let err = cargo_medwasm::convert::convert_tflite(&path, &ConvertOptions::default())
        .expect_err("not runnable yet");
    let ConvertError::Unsupported { problems, .. } = &err else {
        panic!("{name}: {err}")
    };
    assert!(
        problems
            .iter()
            .all(|p| p.kind == ProblemKind::Dtype && p.message.contains(needle)),
        "{name}: {err}"
    );
    let mut nodes: Vec<&str> = problems.iter().map(|p| p.node.as_str()).collect();
    let all = nodes.len();
    nodes.dedup();
    assert_eq!(nodes.len(), all, "one problem per node: {err}");
}

#[test]
fn kws_float32_needs_hybrid_convolution() {
    // Its CONV_2D has int8 weights on float activations (dynamic range).
    refused_tflite("kws_float32", "hybrid (dynamic-range) kernels");
}

#[test]
fn int8_tflite_models_are_read_and_refused_per_node() {
    for name in ["ad01_int8", "kws_int8", "ic_resnet8_int8"] {
        refused_tflite(name, "int8 kernels are not in this build yet");
    }
}
