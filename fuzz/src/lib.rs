//! What the fuzz targets share: the loader target's checksum re-stamp and run,
//! and the fixed manifest the firmware report is parsed against.

use medwasm::format::header;
use medwasm::{AlignedBuf, Error, Model, PlanBuf, Runtime, ViewMut};

/// Largest arena the loader target gives a model, a microcontroller's RAM: a
/// mutated header can claim gigabytes, which the runtime must then refuse to use a
/// smaller arena for. It also bounds a run: the loader allows each node
/// `format::MAX_WORK_PER_ELEMENT` operations per element of its tensors, so a model
/// that fits in 1 MiB of arena (and a small blob) finishes within the fuzzer's
/// timeout, and one that does not is a hang worth reporting.
const MAX_ARENA: usize = 1 << 20;

/// Rewrites the header's CRC-32 so that a mutated blob gets past the checksum
/// and into the structural checks behind it. The checksummed range is the one
/// the loader reads: up to the header's total length when that lies inside
/// the bytes, else to the end.
pub fn restamp(blob: &mut [u8]) {
    if blob.len() < header::CRC_START {
        return;
    }
    let total = blob
        .get(header::TOTAL_LEN..header::TOTAL_LEN + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .filter(|&t| (header::CRC_START..=blob.len()).contains(&t))
        .unwrap_or(blob.len());
    let crc = medwasm::crc32(&blob[header::CRC_START..total]);
    blob[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The fixed input every model is run on: a deterministic ramp, finite and
/// inside the int8 range, whatever the input's element type.
fn fill(view: ViewMut<'_>) {
    match view {
        ViewMut::F32(x) => x
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = ((i % 17) as f32 - 8.0) * 0.25),
        ViewMut::I8(x) => x
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = ((i * 37) % 256) as u8 as i8),
        ViewMut::I32(x) => x
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = (i % 5) as i32 - 2),
    }
}

/// Re-stamps the checksum of `data`, loads it, and when it loads prepares and
/// runs it once on the fixed input. A panic or an out-of-bounds access is a bug;
/// so is a model that loads but does not prepare with the arena it asks for.
pub fn load_and_run(data: &[u8]) {
    let mut blob = data.to_vec();
    restamp(&mut blob);
    let buf = AlignedBuf::from_bytes(&blob);
    let Ok(model) = Model::load(buf.as_slice()) else {
        return;
    };
    let mut plan = PlanBuf::for_model(&model);
    if model.arena_bytes() > MAX_ARENA {
        let mut small = AlignedBuf::zeroed(4096);
        let refused = Runtime::new(model, small.as_mut_slice(), plan.storage()).err();
        assert!(
            matches!(refused, Some(Error::ArenaTooSmall { .. })),
            "a {}-byte arena was accepted for a plan of {} bytes: {refused:?}",
            4096,
            model.arena_bytes()
        );
        return;
    }
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage())
        .unwrap_or_else(|e| panic!("a model that loads did not prepare: {e}"));
    for i in 0..model.input_count() {
        let info = model.input(i).expect("a loaded model has its inputs");
        let view = rt
            .input_view_mut(i)
            .unwrap_or_else(|e| panic!("input {i} of a loaded model has no view: {e}"));
        assert_eq!(
            (view.dtype(), view.len()),
            (info.dtype, info.len()),
            "input {i}'s view disagrees with its record"
        );
        fill(view);
    }
    if rt.run().is_ok() {
        for i in 0..model.output_count() {
            let info = model.output(i).expect("a loaded model has its outputs");
            let out = rt
                .output_view(i)
                .unwrap_or_else(|e| panic!("output {i} of a run model has no view: {e}"));
            assert_eq!(
                (out.dtype(), out.len()),
                (info.dtype, info.len()),
                "output {i}'s view disagrees with its record"
            );
        }
    }
}

/// The manifest the firmware report target parses against: one input of 2
/// elements, two outputs of 2 and 1 (what `bench --target mcu`'s unit tests use).
#[cfg(feature = "cli")]
pub fn report_manifest() -> cargo_medwasm::manifest::Manifest {
    let json = r#"{
        "format_version": 2,
        "source": {"file": "model.onnx", "sha256": "00", "format": "onnx", "opset": 13,
                   "producer": "fuzz", "input_shapes": [[1, 2]]},
        "inputs": [{"name": "x", "shape": [1, 2], "dtype": "f32"}],
        "outputs": [{"name": "y", "shape": [2], "dtype": "f32"},
                    {"name": "s", "shape": [1], "dtype": "f32"}],
        "arena_bytes": 32, "weights_bytes": 0, "blob_bytes": 0, "blob_sha256": "00",
        "nodes": 1, "macs": 4, "ops": [["Gemm", 1]], "notes": [],
        "converter": "cargo-medwasm"
    }"#;
    serde_json::from_str(json).expect("the fuzz manifest parses")
}
