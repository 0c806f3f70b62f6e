//! The model loader: any bytes, checksum re-stamped, through `Model::load`, then
//! prepared and run once on a fixed input when they load.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medwasm_fuzz::load_and_run(data));
