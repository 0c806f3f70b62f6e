//! The ONNX frontend and the shared lowering: any bytes as an `.onnx` file. A
//! refusal is fine; an internal error (a blob the runtime's own loader refuses,
//! a broken invariant) or a panic is a bug.
#![no_main]

use std::path::Path;

use cargo_medwasm::convert::{ConvertError, ConvertOptions, convert_onnx_bytes};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let opts = ConvertOptions::default();
    if let Err(ConvertError::Internal(message)) =
        convert_onnx_bytes(Path::new("fuzz.onnx"), data, &opts)
    {
        panic!("internal converter error: {message}");
    }
});
