//! The TFLite frontend and the shared lowering: any bytes as a `.tflite` file. A
//! refusal is fine; an internal error or a panic is a bug.
#![no_main]

use std::path::Path;

use cargo_medwasm::convert::{ConvertError, ConvertOptions, convert_tflite_bytes};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let opts = ConvertOptions::default();
    if let Err(ConvertError::Internal(message)) =
        convert_tflite_bytes(Path::new("fuzz.tflite"), data, &opts)
    {
        panic!("internal converter error: {message}");
    }
});
