//! Portable bench harness of a medwasm detector: a WASI command (`wasm32-wasip1`)
//! that holds the detector, its test vectors and a timed loop, and prints one JSON
//! result on stdout. It needs nothing from the host but WASI's monotonic clock,
//! arguments and stdout, so any WASI runtime runs it as it is: `wasmtime run`,
//! `wasmedge`, Node's `node:wasi`, Wasmer. `cargo medwasm` generates a crate around
//! this file (`cargo-medwasm/src/harness.rs`), which also reads the result back.
//!
//! Usage: `<runtime> harness.wasm [warm runs]`; without an argument, the runs stored
//! with the vectors.
//!
//! The vectors (`vectors.bin`, embedded at build) are the binary format of the MCU
//! firmware: `MWV2`, vector count, warm runs, 0 (u32 little-endian each), then per
//! vector every input's elements in order, in the element type the ABI takes for it
//! (`medwasm_input_dtype`: f32 little-endian, or int8 for `--io int8`).
//!
//! The result (harness protocol 1), every output element as the 8 hex digits of the
//! IEEE bits of its f32 value (an int8 element's value is exact in f32) so nothing
//! is rounded on the way:
//! `{"harness":1,"abi":…,"init":{"code":…,"us":…,"message":…},"io":{"inputs":[len…],
//! "outputs":[len…]},"vectors":[{"ok":true,"score":"hex","label":…,"alert":…,
//! "outputs":["hex…"…]} or {"ok":false,"code":…,"message":…}…],"first_us":…,
//! "timed_vector":…,"warmup":…,"samples_us":[…],"memory_pages":…}`.

use std::io::Write as _;
use std::time::Instant;

// Linking the detector brings in its exported `medwasm_*` functions.
use detector as _;

unsafe extern "C" {
    fn medwasm_abi_version() -> i32;
    fn medwasm_init() -> i32;
    fn medwasm_input_count() -> i32;
    fn medwasm_output_count() -> i32;
    fn medwasm_input_len(i: i32) -> i32;
    fn medwasm_output_len(i: i32) -> i32;
    fn medwasm_input_dtype(i: i32) -> i32;
    fn medwasm_output_dtype(i: i32) -> i32;
    fn medwasm_input_ptr(i: i32) -> *mut u8;
    fn medwasm_output_ptr(i: i32) -> *mut u8;
    fn medwasm_run() -> i32;
    fn medwasm_finding_score() -> f32;
    fn medwasm_finding_label() -> i32;
    fn medwasm_finding_alert() -> i32;
    fn medwasm_error_ptr() -> *const u8;
    fn medwasm_error_len() -> i32;
}

/// The test vectors, written by `cargo medwasm` beside this crate.
static VECTORS: &[u8] = include_bytes!("../vectors.bin");
/// Untimed runs before the timed ones (page faults, cold caches, tiering JITs).
const WARMUP: u32 = 10;
/// `medwasm_input_dtype`/`medwasm_output_dtype` of an int8 tensor (f32 is 1).
const DTYPE_I8: i32 = 2;

/// Bytes per element of input (`output` false) or output `i` at the ABI.
fn element_bytes(output: bool, i: i32) -> usize {
    let dtype = unsafe {
        if output {
            medwasm_output_dtype(i)
        } else {
            medwasm_input_dtype(i)
        }
    };
    if dtype == DTYPE_I8 { 1 } else { 4 }
}

fn main() {
    let out = run();
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
    if written.is_err() {
        std::process::exit(3);
    }
}

/// Runs everything and returns the JSON result; a harness-level failure (a broken
/// vectors file, an argument that is not a number) is a JSON `fatal` for the host.
fn run() -> String {
    let header = |k: usize| -> Option<u32> {
        let b = VECTORS.get(k * 4..k * 4 + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (Some(magic), Some(count), Some(stored_runs)) = (header(0), header(1), header(2)) else {
        return fatal("the embedded vectors are shorter than their header");
    };
    if magic != u32::from_le_bytes(*b"MWV2") {
        return fatal("the embedded vectors do not start with MWV2");
    }
    let runs = match std::env::args().nth(1) {
        None => stored_runs,
        Some(text) => match text.parse::<u32>() {
            Ok(runs) => runs,
            Err(_) => return fatal("the argument must be the number of warm runs"),
        },
    };

    let abi = unsafe { medwasm_abi_version() };
    let started = Instant::now();
    let init = unsafe { medwasm_init() };
    let init_us = micros(started);
    let mut json = format!("{{\"harness\":1,\"abi\":{abi},\"init\":{{\"code\":{init},\"us\":{init_us}");
    if init != 0 {
        json.push_str(&format!(",\"message\":{}}}}}", error_message()));
        return json;
    }
    json.push_str("},");

    let inputs: Vec<usize> = (0..unsafe { medwasm_input_count() })
        .map(|i| unsafe { medwasm_input_len(i) }.max(0) as usize)
        .collect();
    let outputs: Vec<usize> = (0..unsafe { medwasm_output_count() })
        .map(|j| unsafe { medwasm_output_len(j) }.max(0) as usize)
        .collect();
    json.push_str(&format!(
        "\"io\":{{\"inputs\":{},\"outputs\":{}}},",
        list(inputs.iter()),
        list(outputs.iter())
    ));
    let input_bytes: Vec<usize> = inputs
        .iter()
        .enumerate()
        .map(|(i, &len)| len * element_bytes(false, i as i32))
        .collect();
    let per_vector: usize = input_bytes.iter().sum();
    let body = &VECTORS[16..];
    if body.len() != per_vector * count as usize {
        return fatal("the embedded vectors do not fit the detector's inputs");
    }
    let load = |v: usize| {
        let mut at = v * per_vector;
        for (i, &bytes) in input_bytes.iter().enumerate() {
            let dst = unsafe { medwasm_input_ptr(i as i32) };
            // SAFETY: the detector reported `bytes` bytes (its elements in its dtype)
            // at `dst` for input `i`; the vectors are bytes in that layout.
            unsafe { core::ptr::copy_nonoverlapping(body[at..at + bytes].as_ptr(), dst, bytes) };
            at += bytes;
        }
    };

    json.push_str("\"vectors\":[");
    let mut timed: Option<usize> = None;
    let mut first_us = None;
    for v in 0..count as usize {
        load(v);
        let started = Instant::now();
        let code = unsafe { medwasm_run() };
        if v == 0 {
            first_us = Some(micros(started));
        }
        if v > 0 {
            json.push(',');
        }
        if code != 0 {
            json.push_str(&format!(
                "{{\"ok\":false,\"code\":{code},\"message\":{}}}",
                error_message()
            ));
            continue;
        }
        timed.get_or_insert(v);
        json.push_str(&format!(
            "{{\"ok\":true,\"score\":\"{:08x}\",\"label\":{},\"alert\":{},\"outputs\":[",
            unsafe { medwasm_finding_score() }.to_bits(),
            unsafe { medwasm_finding_label() },
            unsafe { medwasm_finding_alert() } != 0
        ));
        for (j, &len) in outputs.iter().enumerate() {
            if j > 0 {
                json.push(',');
            }
            let src = unsafe { medwasm_output_ptr(j as i32) };
            let int8 = element_bytes(true, j as i32) == 1;
            let mut hex = String::with_capacity(len * 8 + 2);
            hex.push('"');
            for k in 0..len {
                // SAFETY: the detector reported `len` elements of its dtype at `src`
                // for output `j`; f32 ones are 4-byte aligned (the arena's 16).
                let value = if int8 {
                    f32::from(unsafe { src.cast::<i8>().add(k).read() })
                } else {
                    unsafe { src.cast::<f32>().add(k).read() }
                };
                hex.push_str(&format!("{:08x}", value.to_bits()));
            }
            hex.push('"');
            json.push_str(&hex);
        }
        json.push_str("]}");
    }
    json.push_str("],");
    if let Some(us) = first_us {
        json.push_str(&format!("\"first_us\":{us},"));
    }

    let mut samples = Vec::new();
    if let Some(v) = timed {
        load(v);
        for _ in 0..WARMUP {
            unsafe { medwasm_run() };
        }
        samples.reserve(runs as usize);
        for _ in 0..runs {
            let started = Instant::now();
            let code = unsafe { medwasm_run() };
            samples.push(micros(started));
            if code != 0 {
                return fatal("a vector that passed once failed in the timed loop");
            }
        }
        json.push_str(&format!("\"timed_vector\":{v},"));
    }
    json.push_str(&format!(
        "\"warmup\":{WARMUP},\"samples_us\":{},\"memory_pages\":{}}}",
        list(samples.iter()),
        memory_pages()
    ));
    json
}

/// Microseconds since `started`, as a JSON number.
fn micros(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e6
}

/// `[a,b,c]` of numbers.
fn list<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|x| x.to_string()).collect();
    format!("[{}]", items.join(","))
}

/// The detector's last error message as a JSON string.
fn error_message() -> String {
    let ptr = unsafe { medwasm_error_ptr() };
    let len = unsafe { medwasm_error_len() }.max(0) as usize;
    // SAFETY: the detector reports `len` bytes of message at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    json_string(&String::from_utf8_lossy(bytes))
}

fn fatal(why: &str) -> String {
    format!("{{\"harness\":1,\"fatal\":{}}}", json_string(why))
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Linear memory in 64 KiB pages (the harness is only ever built for wasm32).
fn memory_pages() -> usize {
    core::arch::wasm32::memory_size(0)
}
