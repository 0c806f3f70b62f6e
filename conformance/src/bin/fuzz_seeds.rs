//! Seed corpora for the fuzz targets in `fuzz/` (`docs/security.md`), from the
//! conformance models: every ONNX and TFLite case and shared model as itself (the
//! frontends' seeds) and converted (the loader's seeds: real blobs), their `.npy`
//! vectors, and the requests and firmware reports the tests use. It also prints the
//! largest work per tensor element of any node of those blobs, the figure the
//! loader's `MAX_WORK_PER_ELEMENT` is set against.
//!
//! Usage: `fuzz_seeds <corpus dir>` writes `<corpus dir>/<target>/<seed>`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use cargo_medwasm::convert::{ConvertOptions, convert_model};
use medwasm::{AlignedBuf, Model};
use medwasm_conformance::{cases_dir, shared_models};

/// Seeds larger than this are left out: libFuzzer mutates small inputs faster, and
/// the small conformance cases already cover every operator.
const MAX_SEED: usize = 256 * 1024;

/// Firmware reports: the protocol of `targets/mcu/firmware/main.rs`, one complete
/// report and pieces the parser refuses.
const REPORTS: &[&str] = &[
    "medwasm-firmware 2\ncalibration 100000\nabi 1\ninit 0\nio 1 2 2 2 1\nvector 0 ok 3f800000 1 1\noutput 0 3f800000 c0000000\noutput 1 3f800000\nvector 1 error 11\nmessage input 0 element 1 is NaN or infinite\nstack 1234\ntiming 0 10\ndone\n",
    "abi 1\ninit 6\nmessage arena too small\n",
    "vector 0 ok 3f800000 0 0\noutput 1 00\n",
    "fatal cannot open medwasm-vectors.bin\n",
];

/// Request heads as browsers and the bench harness send them, and refused ones.
const REQUESTS: &[&str] = &[
    "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8421\r\nAccept: */*\r\n\r\n",
    "GET /pkg/x.wasm?v=1#f HTTP/1.1\r\nHost: localhost:8421\r\n\r\n",
    "POST /result HTTP/1.1\r\nHost: 127.0.0.1:8421\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"ok\": true}\n",
    "POST /result HTTP/1.1\r\nHost: 127.0.0.1:8421\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /%2e%2e/secret HTTP/1.1\r\nHost: evil.example:8421\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8421\r\nContent-Length: 99999999999\r\n\r\n",
];

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: fuzz_seeds <corpus dir>")?;
    let cases = cases_dir();
    let tflite = cases.join("../tflite");
    let mut models: Vec<PathBuf> = Vec::new();
    for dir in [&cases, &tflite] {
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))?
        {
            models.push(entry?.path());
        }
    }
    let shared = shared_models();
    for entry in std::fs::read_dir(&shared)? {
        let dir = entry?.path();
        for file in ["model.onnx", "model.tflite", "inputs.npy"] {
            if dir.join(file).is_file() {
                models.push(dir.join(file));
            }
        }
    }
    models.sort();

    let mut counts = [("loader", 0), ("onnx", 0), ("tflite", 0), ("npy", 0)];
    let mut worst = (0.0f64, String::new());
    for path in &models {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let name = seed_name(path, &shared);
        let bytes = std::fs::read(path)?;
        let target = match ext {
            "onnx" => "onnx",
            "tflite" => "tflite",
            "npy" => "npy",
            _ => continue,
        };
        if bytes.len() <= MAX_SEED {
            write(&out, target, &name, &bytes)?;
            bump(&mut counts, target);
        }
        if target == "npy" {
            continue;
        }
        // Models that do not convert (the refusal cases) seed the frontends only.
        let Ok(converted) = convert_model(path, &ConvertOptions::default()) else {
            continue;
        };
        let ratio = largest_work_ratio(&converted.blob)?;
        if ratio.0 > worst.0 {
            worst = (ratio.0, format!("{name} node {}", ratio.1));
        }
        if converted.blob.len() <= MAX_SEED {
            write(&out, "loader", &format!("{name}.mwm"), &converted.blob)?;
            bump(&mut counts, "loader");
        }
    }
    for (i, report) in REPORTS.iter().enumerate() {
        write(
            &out,
            "mcu_report",
            &format!("report-{i}.txt"),
            report.as_bytes(),
        )?;
    }
    for (i, request) in REQUESTS.iter().enumerate() {
        write(
            &out,
            "http_head",
            &format!("request-{i}.http"),
            request.as_bytes(),
        )?;
    }
    for (target, n) in counts {
        println!("{target}: {n} seeds");
    }
    println!(
        "mcu_report: {} seeds\nhttp_head: {} seeds",
        REPORTS.len(),
        REQUESTS.len()
    );
    println!(
        "largest work per tensor element: {:.1} ({}); the loader allows {}",
        worst.0,
        worst.1,
        medwasm::format::MAX_WORK_PER_ELEMENT
    );
    Ok(())
}

fn bump(counts: &mut [(&str, usize)], target: &str) {
    if let Some((_, n)) = counts.iter_mut().find(|(t, _)| *t == target) {
        *n += 1;
    }
}

/// `ad01_fp32-model.onnx` for a shared model, the file name for a case.
fn seed_name(path: &Path, shared: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match path.parent() {
        Some(dir) if dir.parent() == Some(shared) => format!(
            "{}-{file}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ),
        _ => file,
    }
}

/// The largest `work / tensor elements` of any node of `blob`, and that node.
fn largest_work_ratio(blob: &[u8]) -> Result<(f64, usize)> {
    let buf = AlignedBuf::from_bytes(blob);
    let model = Model::load(buf.as_slice())?;
    let mut worst = (0.0, 0);
    for i in 0..model.node_count() {
        let p = medwasm::ops::prepare(&model, i, &model.node(i)?)?;
        let ratio = medwasm::ops::work(&p) as f64 / medwasm::ops::tensor_elements(&p) as f64;
        if ratio > worst.0 {
            worst = (ratio, i);
        }
    }
    Ok(worst)
}

fn write(out: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let file = dir.join(name);
    if file.exists() && std::fs::read(&file)? != bytes {
        bail!("two seeds are named `{}`", file.display());
    }
    std::fs::write(&file, bytes).with_context(|| format!("cannot write `{}`", file.display()))
}
