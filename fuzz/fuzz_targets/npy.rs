//! The `.npy` reader of test vectors: any bytes; every sample of what parses is read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(array) = cargo_medwasm::npy::Array::parse(data) {
        for i in 0..array.samples() {
            assert!(
                array.sample(i).is_some(),
                "sample {i} of {} is missing",
                array.samples()
            );
        }
        assert!(array.sample(array.samples()).is_none());
    }
});
