//! The request reader of `cargo medwasm serve` (and the Chromium runner's server):
//! any bytes as what a client sends on a connection; the path of what it accepts
//! then goes through the file lookup, which must never leave the served folder.
#![no_main]

use std::path::{Component, Path};

use cargo_medwasm::http::{Incoming, MAX_BODY, read_request, resolve};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    match read_request(&mut reader, 8421) {
        Ok(Incoming::Request(request)) => {
            assert!(request.body.len() <= MAX_BODY.min(data.len()));
            // A folder that does not exist: the lookup only joins paths.
            let root = Path::new("/nonexistent/medwasm-fuzz-root");
            if let Some(file) = resolve(root, &request.path) {
                let inside = file
                    .strip_prefix(root)
                    .is_ok_and(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))));
                assert!(
                    inside,
                    "`{}` resolved to `{}`",
                    request.path,
                    file.display()
                );
            }
        }
        Ok(Incoming::Refused(response)) => assert!(response.status >= 400),
        Ok(Incoming::Closed) | Err(_) => {}
    }
});
