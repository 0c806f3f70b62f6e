//! The browser target for real: the package imported by Node.js, `bench` in headless
//! Chromium and Node, and the demo page clicked in Chromium through chromedriver
//! (Debian's `chromium-driver`, spoken to over WebDriver's HTTP protocol).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{free_port, import_shared, need, ok, tool};

/// The Chromium flags of the bench runner, so both drive the same browser the same way.
fn chromium_flags() -> Vec<String> {
    cargo_medwasm::targets::browser::CHROMIUM_FLAGS
        .iter()
        .filter(|f| !f.starts_with("--enable-logging"))
        .map(|f| f.to_string())
        .collect()
}

const NODE: (&str, &str) = ("node", "install Node.js 20 or newer");
const CHROMIUM: (&str, &str) = ("chromium", "install it with `apt-get install chromium`");
const CHROMEDRIVER: (&str, &str) = (
    "chromedriver",
    "install it with `apt-get install chromium-driver`",
);

/// A child process killed (by its own handle) when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn new_vitals(parent: &Path, name: &str) -> PathBuf {
    ok(parent, &["new", name, "--template", "vitals-anomaly"]);
    parent.join(name)
}

/// The template's vectors as plain JSON numbers, for the Node script.
fn vectors_json(project: &Path) -> Value {
    let read = |f: &str| cargo_medwasm::npy::Array::read(&project.join("vectors").join(f)).unwrap();
    let (inputs, reconstruction, score) = (
        read("inputs.npy"),
        read("expected.npy"),
        read("expected.1.npy"),
    );
    let rows = |a: &cargo_medwasm::npy::Array| -> Vec<Vec<f32>> {
        (0..a.samples())
            .map(|v| a.sample(v).unwrap().to_vec())
            .collect()
    };
    json!({
        "inputs": rows(&inputs),
        "expected": [rows(&reconstruction), rows(&score)],
    })
}

/// What a Node.js 20 service does with the package: import it, create once, run on
/// every reference vector, and hit both input errors.
const NODE_IMPORT_TEST: &str = r#"
import { readFile } from "node:fs/promises";
import assert from "node:assert/strict";

const [moduleUrl, vectorsPath] = process.argv.slice(2);
const { Detector, MedwasmError, manifest, build } = await import(moduleUrl);
const vectors = JSON.parse(await readFile(vectorsPath, "utf8"));
assert.equal(build.target, "browser");
assert.deepEqual(manifest.inputs[0].shape, [1, 32, 3]);

const detector = await Detector.create();
const close = (got, want) =>
  got.length === want.length && got.every((g, i) => Math.abs(g - want[i]) <= 1e-4 + 1e-3 * Math.abs(want[i]));
vectors.inputs.forEach((input, v) => {
  const result = detector.run(Float32Array.from(input));
  assert.equal(result.alert, v >= 8, `vector ${v}: alert`);
  assert.equal(result.label, v >= 8 ? 1 : 0);
  vectors.expected.forEach((want, j) => assert.ok(close(result.outputs[j], want[v]), `vector ${v} output ${j}`));
  assert.ok(Math.abs(result.score - vectors.expected[1][v][0]) <= 1e-4 + 1e-3 * vectors.expected[1][v][0]);
});

assert.throws(() => detector.run(new Float32Array(95)), (e) =>
  e instanceof MedwasmError && e.code === 10 && e.kind === "InputLength" && e.message === "input 0 needs 96 elements, got 95");
const nan = Float32Array.from(vectors.inputs[0]);
nan[7] = NaN;
assert.throws(() => detector.run(nan), (e) =>
  e instanceof MedwasmError && e.code === 11 && e.kind === "NonFinite" &&
  e.message === "input 0 element 7 is NaN or infinite; clean or impute the signal before running");
// The instance is still good after refused input, and Int8Array inputs are taken.
assert.equal(detector.run(Float32Array.from(vectors.inputs[0])).alert, false);
assert.equal(typeof detector.run(new Int8Array(96).fill(50)).score, "number");
console.log(`ok ${vectors.inputs.length}`);
"#;

#[test]
fn vitals_browser_package_runs_in_node_and_benches_on_every_target() {
    let node = need!(tool(NODE.0, NODE.1));
    need!(tool(CHROMIUM.0, CHROMIUM.1));
    let tmp = tempfile::tempdir().unwrap();
    let project = new_vitals(tmp.path(), "vitals-web");
    let built = ok(&project, &["build", "--target", "browser", "--release"]);
    assert!(built.contains("package: JS"), "{built}");

    // The summary starts with the `.wasm`'s path (cargo's target dir may be elsewhere).
    let wasm = project.join(built.split_whitespace().next().unwrap());
    let pkg = wasm.parent().unwrap().to_path_buf();
    assert!(pkg.ends_with("medwasm/browser/pkg"), "{}", pkg.display());
    for f in [
        "vitals-web.js",
        "vitals-web.d.ts",
        "vitals-web.wasm",
        "package.json",
        "README.md",
    ] {
        assert!(pkg.join(f).is_file(), "{f} missing");
    }
    let package: Value =
        serde_json::from_str(&std::fs::read_to_string(pkg.join("package.json")).unwrap()).unwrap();
    // Tests share one target directory, so `pkg/package.json` may be another detector's.
    assert_eq!(package["type"], "module");
    assert!(package["types"].as_str().unwrap().ends_with(".d.ts"));

    // JS + wasm without the weights within the 150 KB budget.
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("model/manifest.json")).unwrap(),
    )
    .unwrap();
    let len = |f: &str| std::fs::metadata(pkg.join(f)).unwrap().len();
    let without_weights =
        len("vitals-web.js") + len("vitals-web.wasm") - manifest["blob_bytes"].as_u64().unwrap();
    assert!(
        without_weights <= 150_000,
        "package without weights is {without_weights} bytes"
    );

    // Node.js imports the package like any ES module and matches the reference vectors.
    std::fs::write(tmp.path().join("import.mjs"), NODE_IMPORT_TEST).unwrap();
    std::fs::write(
        tmp.path().join("vectors.json"),
        vectors_json(&project).to_string(),
    )
    .unwrap();
    let module = cargo_medwasm::targets::node::file_url(&pkg.join("vitals-web.js")).unwrap();
    let out = Command::new(&node)
        .arg(tmp.path().join("import.mjs"))
        .arg(&module)
        .arg(tmp.path().join("vectors.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node import test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 16");

    // Over HTTP from a server that does not know `.wasm`: it still loads (without
    // streaming) and says how to fix the server; a 404 names the URL.
    use cargo_medwasm::http::{Request, Response, Server};
    let wasm_bytes = std::fs::read(pkg.join("vitals-web.wasm")).unwrap();
    let server = Server::start(
        0,
        std::sync::Arc::new(move |r: &Request| match r.path.as_str() {
            "/d.wasm" => Response::ok("text/plain", wasm_bytes.clone()),
            _ => Response::error(404, "no"),
        }),
    )
    .unwrap();
    let script = format!(
        r#"const {{ Detector }} = await import({module:?});
const d = await Detector.create({{ wasm: "{url}d.wasm" }});
console.log(d.run(new Float32Array(96).fill(1)).outputs.length);
await Detector.create({{ wasm: "{url}gone.wasm" }}).catch((e) => console.log(e.message));"#,
        url = server.url()
    );
    std::fs::write(tmp.path().join("mime.mjs"), script).unwrap();
    let out = Command::new(&node)
        .arg(tmp.path().join("mime.mjs"))
        .output()
        .unwrap();
    drop(server);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("was served as `text/plain` instead of `application/wasm`"),
        "{stderr}"
    );
    assert!(stdout.starts_with("2\n"), "{stdout}");
    assert!(stdout.contains("gone.wasm: HTTP 404"), "{stdout}");

    // One bench over every target: Wasmtime, Chromium and Node rows in one report,
    // also written as JSON and HTML.
    let report_dir = tmp.path().join("report");
    let out = super::cli(
        &project,
        &[
            "bench",
            "--target",
            "all",
            "--json",
            "--runs",
            "50",
            "--report",
            report_dir.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(written, report, "report.json is what --json printed");
    check_report_page(&report_dir.join("report.html"), tmp.path());
    // Without WasmEdge, `all` says it skipped it and passes on the others; asked for
    // alone, the missing runtime is an error, never a silent pass.
    if which::which("wasmedge").is_err() {
        assert!(
            stderr.contains("skipping target `wasmedge`") && stderr.contains("install WasmEdge"),
            "{stderr}"
        );
        let alone = super::cli(&project, &["bench", "--target", "wasmedge", "--runs", "3"]);
        let err = String::from_utf8_lossy(&alone.stderr);
        assert_eq!(alone.status.code(), Some(2), "{err}");
        assert!(err.contains("install WasmEdge"), "{err}");
    } else {
        assert!(
            report["targets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["target"] == "wasmedge" && t["passed"] == true),
            "{report:#}"
        );
    }
    let targets: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    for want in ["wasmtime", "browser", "node"] {
        assert!(targets.contains(&want), "{targets:?}");
    }
    // Other targets (the MCU in QEMU) may join `all` with figures of their own kind.
    for target in report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| ["wasmtime", "browser", "node"].contains(&t["target"].as_str().unwrap()))
    {
        let name = target["target"].as_str().unwrap();
        assert_eq!(target["passed"], true, "{name}: {target:#}");
        super::assert_template_vectors(target);
        assert!(
            target["latency"]["median_us"].as_f64().unwrap() > 0.0,
            "{name}"
        );
        assert!(
            target["latency"]["cold_start_us"].as_f64().unwrap() > 0.0,
            "{name}"
        );
    }
    let runtime = |name: &str| {
        report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == name)
            .unwrap()["runtime"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        runtime("browser").starts_with("Chromium "),
        "{}",
        runtime("browser")
    );
    assert!(runtime("node").starts_with("node v"), "{}", runtime("node"));

    // A NaN in a vector fails that vector with the detector's own message, in both
    // JS engines, and the bench exits 1.
    let path = project.join("vectors/inputs.npy");
    let mut inputs = cargo_medwasm::npy::Array::read(&path).unwrap();
    let last = inputs.data.len() - 1;
    inputs.data[last] = f32::NAN;
    inputs.write(&path).unwrap();
    for target in ["browser", "node"] {
        let out = super::cli(
            &project,
            &["bench", "--target", target, "--json", "--runs", "3"],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{target}: a conformance failure exits 1"
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = &report["targets"][0]["vectors"][15];
        assert_eq!(
            row["error"],
            "error 11 (`NonFinite`): input 0 element 95 is NaN or infinite; clean or impute the signal before running",
            "{target}"
        );
        assert_eq!(
            report["targets"][0]["vectors"][14]["error"],
            Value::Null,
            "{target}"
        );
    }
}

#[test]
fn ic_resnet8_fp32_conforms_in_chromium() {
    need!(tool(CHROMIUM.0, CHROMIUM.1));
    let (_tmp, project) = need!(import_shared("ic_resnet8_fp32"));
    let out = ok(
        &project,
        &["bench", "--target", "browser", "--json", "--runs", "5"],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let target = &report["targets"][0];
    assert_eq!(target["target"], "browser");
    assert_eq!(target["passed"], true, "{report:#}");
    let vectors = target["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 8);
    for v in vectors {
        assert_eq!(v["vs_expected"]["pass"], true, "{v}");
        assert_eq!(v["vs_tract"]["pass"], true, "{v}");
    }
}

#[test]
fn demo_page_runs_in_chromium_when_clicked() {
    let chromium = need!(tool(CHROMIUM.0, CHROMIUM.1));
    let chromedriver = need!(tool(CHROMEDRIVER.0, CHROMEDRIVER.1));
    let tmp = tempfile::tempdir().unwrap();
    let project = new_vitals(tmp.path(), "vitals-demo-page");

    // `serve` builds first, then prints the URL.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_cargo-medwasm"))
        .args(["medwasm", "serve", "--port", "0"])
        .current_dir(&project)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = serve.stdout.take().unwrap();
    let serve = Killed(serve);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("serve printed no URL: {line:?}"))
        .to_string();
    let (head, wasm) = http_get(&format!("{url}pkg/vitals-demo-page.wasm"));
    assert!(head.contains("Content-Type: application/wasm"), "{head}");
    assert!(wasm.starts_with(b"\0asm"));

    let wd = WebDriver::launch(&chromedriver, &chromium, &tmp.path().join("profile"));
    wd.call("POST", "url", json!({ "url": url }));
    let button = wd.find("#run");
    wd.wait(
        Duration::from_secs(60),
        "the Run button to be enabled",
        || wd.call("GET", &format!("element/{button}/enabled"), Value::Null) == json!(true),
    );
    wd.call("POST", &format!("element/{button}/click"), json!({}));
    let status = wd.find("#status");
    let mut text = String::new();
    wd.wait(Duration::from_secs(60), "the page to show results", || {
        text = wd
            .call("GET", &format!("element/{status}/text"), Value::Null)
            .as_str()
            .unwrap_or_default()
            .to_string();
        text.starts_with("Done") || text.starts_with("Error")
    });
    let alerts = wd.call(
        "POST",
        "execute/sync",
        json!({
            "script": "return [...document.querySelectorAll('#results tbody tr')].map(r => r.dataset.alert)",
            "args": [],
        }),
    );
    let screenshot = wd.call("GET", "screenshot", Value::Null);
    let png = base64::engine::general_purpose::STANDARD
        .decode(screenshot.as_str().unwrap())
        .unwrap();
    let artifact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-page.png");
    std::fs::write(&artifact, &png).unwrap();
    eprintln!("screenshot saved as {}", artifact.display());
    let logs = wd.call("POST", "se/log", json!({ "type": "browser" }));
    // Privacy: the page and the package it loads fetched their own files and
    // nothing else. The control request afterwards shows the check would see one.
    let requests = network_requests(&wd);
    assert_only_own_requests(&requests, &url, "the demo page");
    let control = send_control_requests(&wd);
    assert!(
        control.iter().any(|u| u.starts_with(CONTROL_ORIGIN)),
        "the network log missed the control requests: {control:?}"
    );
    drop(wd);
    drop(serve);

    assert!(
        text.starts_with(
            "Done: 16 vectors, 8 alerts, 16 of 16 match the expected outputs; latency"
        ),
        "{text}"
    );
    let want: Vec<Value> = (0..16).map(|i| json!((i >= 8).to_string())).collect();
    assert_eq!(alerts, Value::Array(want));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG screenshot");
    let errors: Vec<&Value> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// Opens the HTML report in headless Chromium: it must render every plot with no
/// console message at all (the page has no script; a blocked fetch or a CSP
/// violation would show up here). A screenshot is kept in the test's target folder.
fn check_report_page(page: &Path, scratch: &Path) {
    let chromium = need!(tool(CHROMIUM.0, CHROMIUM.1));
    let chromedriver = need!(tool(CHROMEDRIVER.0, CHROMEDRIVER.1));
    let html = std::fs::read_to_string(page).unwrap();
    // Nothing to fetch (text may name a URL, as the WasmEdge install hint does).
    for reference in ["src=", "href=\"http", "url(", "@import"] {
        assert!(
            !html.contains(reference),
            "the report references `{reference}`"
        );
    }
    let wd = WebDriver::launch(&chromedriver, &chromium, &scratch.join("report-profile"));
    wd.call(
        "POST",
        "window/rect",
        json!({ "width": 1200, "height": 2400 }),
    );
    wd.call(
        "POST",
        "url",
        json!({ "url": format!("file://{}", page.display()) }),
    );
    let facts = wd.call(
        "POST",
        "execute/sync",
        json!({ "script": "const svgs = [...document.querySelectorAll('svg')]; \
            return { title: document.title, svgs: svgs.length, \
              empty: svgs.filter(s => { const r = s.getBoundingClientRect(); return !(r.width > 0 && r.height > 0); }).length, \
              shapes: document.querySelectorAll('svg rect, svg line, svg circle').length, \
              sections: document.querySelectorAll('section.target').length, \
              verdict: document.querySelector('.verdict').textContent };", "args": [] }),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(wd.call("GET", "screenshot", Value::Null).as_str().unwrap())
        .unwrap();
    let logs = wd.call("POST", "se/log", json!({ "type": "browser" }));
    drop(wd);
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-report.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot of the HTML report: {}", shot.display());
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    assert!(
        facts["title"]
            .as_str()
            .unwrap()
            .starts_with("medwasm bench"),
        "{facts}"
    );
    assert!(
        facts["verdict"].as_str().unwrap().starts_with("PASS"),
        "{facts}"
    );
    // A box plot over all targets; per target a conformance strip, a histogram, cold
    // start and the size split; every one laid out with a size.
    let sections = facts["sections"].as_u64().unwrap();
    assert!(sections >= 3, "{facts}");
    assert!(facts["svgs"].as_u64().unwrap() > 3 * sections, "{facts}");
    assert_eq!(facts["empty"], 0, "{facts}");
    assert!(facts["shapes"].as_u64().unwrap() > 100, "{facts}");
    assert_eq!(logs, json!([]), "the report page logged to the console");
}

/// One HTTP/1.1 request; returns the response head and body (chunked bodies decoded).
fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver keeps connections open whatever the request says, so the body is
    // read by its length (or its chunks), never to the end of the stream.
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let mut body = Vec::new();
    if let Some(length) = header("content-length") {
        body.resize(length.parse().unwrap(), 0);
        reader.read_exact(&mut body).unwrap();
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    (head, body)
}

fn http_get(url: &str) -> (String, Vec<u8>) {
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    http(addr, "GET", path, None)
}

/// A WebDriver session with chromedriver, ended on drop.
struct WebDriver {
    addr: String,
    session: String,
    /// Stopped after the session ends (fields drop after `Drop::drop`).
    _driver: Killed,
}

impl WebDriver {
    /// Starts chromedriver on a free port and a headless Chromium session through it.
    fn launch(chromedriver: &Path, chromium: &Path, profile: &Path) -> WebDriver {
        let port = free_port();
        let driver = Killed(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        Self::start(port, chromium, profile, driver)
    }

    fn start(port: u16, chromium: &Path, profile: &Path, driver: Killed) -> WebDriver {
        let addr = format!("127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if TcpStream::connect(&addr).is_ok() {
                let (_, body) = http(&addr, "GET", "/status", None);
                let status: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not become ready on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args = chromium_flags();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push("--window-size=1000,1000".into());
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": chromium, "args": args },
                // `performance` carries the DevTools network events the privacy
                // checks read (`network_requests`).
                "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" },
            }}
        });
        let (_, body) = http(&addr, "POST", "/session", Some(&capabilities));
        let reply: Value = serde_json::from_slice(&body).unwrap();
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused the session: {reply:#}"))
            .to_string();
        WebDriver {
            addr,
            session,
            _driver: driver,
        }
    }

    /// Calls `/session/<id>/<path>` and returns the reply's `value`; a WebDriver error fails the test.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = (method == "POST").then_some(&body);
        let (_, reply) = http(
            &self.addr,
            method,
            &format!("/session/{}/{path}", self.session),
            body,
        );
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        assert!(
            reply["value"].get("error").is_none(),
            "WebDriver {method} {path}: {reply:#}"
        );
        reply["value"].clone()
    }

    /// The element id of the first match of a CSS selector.
    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "element",
            json!({ "using": "css selector", "value": css }),
        );
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    fn wait(&self, timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = TcpStream::connect(&self.addr).map(|_| {
            http(
                &self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            )
        });
    }
}

/// The bundlers `.ci/setup` installs (`npm ci` in `tests/bundlers/`), or `None` (after
/// saying so) when they are not there.
fn bundlers() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bundlers/node_modules");
    if dir.join("vite/bin/vite.js").is_file() && dir.join("webpack-cli/bin/cli.js").is_file() {
        Some(dir)
    } else {
        super::skip(&format!(
            "Vite and webpack are not installed in `{}`; run `.ci/setup` (`npm ci --prefix cargo-medwasm/tests/bundlers`)",
            dir.display()
        ));
        None
    }
}

/// A page as a user writes one: import the installed package by name, run two of the
/// template's vectors (one normal, one anomaly), show the findings.
const APP_MAIN_JS: &str = r#"import { Detector } from "__PACKAGE__";
import vectors from "./vectors.json";

const out = document.getElementById("result");
(async () => {
  try {
    const detector = await Detector.create();
    const findings = vectors.map((v) => detector.run(Float32Array.from(v)));
    out.textContent = JSON.stringify(findings.map((f) => [f.alert, f.label]));
    out.dataset.done = "ok";
  } catch (err) {
    out.textContent = `error: ${err}`;
    out.dataset.done = "error";
    console.error(err);
  }
})();
"#;

/// Runs a bundler's CLI with Node.js in `app`.
fn run_bundler(node: &Path, cli: &Path, args: &[&str], app: &Path) {
    let out = Command::new(node)
        .arg(cli)
        .args(args)
        .current_dir(app)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {}:\n{}{}",
        cli.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where the control requests go: another loopback address (another origin than
/// the page's) on the discard port, where nothing listens: a test never sends
/// anything off this machine.
const CONTROL_ORIGIN: &str = "http://127.0.0.2:9/";

/// Every URL the page asked for since the last call, from Chromium's DevTools
/// network events in chromedriver's performance log: requests (`fetch`, XHR,
/// scripts, images, beacons …), WebSockets and WebTransport sessions.
fn network_requests(wd: &WebDriver) -> Vec<String> {
    let log = wd.call("POST", "se/log", json!({ "type": "performance" }));
    let mut urls = Vec::new();
    for entry in log.as_array().expect("the performance log is a list") {
        let message: Value =
            serde_json::from_str(entry["message"].as_str().unwrap_or("{}")).unwrap_or_default();
        let event = &message["message"];
        let url = match event["method"].as_str().unwrap_or("") {
            "Network.requestWillBeSent" => &event["params"]["request"]["url"],
            "Network.webSocketCreated" | "Network.webTransportCreated" => &event["params"]["url"],
            _ => continue,
        };
        if let Some(url) = url.as_str() {
            urls.push(url.to_string());
        }
    }
    urls
}

/// Fails unless every request went to `origin` (or is `data:` / `blob:` content the
/// page made itself), and at least one fetched a `.wasm`: a log that saw nothing
/// proves nothing.
fn assert_only_own_requests(requests: &[String], origin: &str, what: &str) {
    assert!(
        requests.iter().any(|u| u.starts_with(origin)
            && u.split(['?', '#']).next().unwrap_or("").ends_with(".wasm")),
        "{what}: the network log shows no fetch of the detector's `.wasm`: {requests:#?}"
    );
    // The browser's own pages (a new-tab page Chromium loads at start-up, as the log
    // of a slow run shows) come from inside the browser, not the network, and no
    // web page can load them: they are not the page's requests.
    let internal = [
        "chrome://",
        "chrome-untrusted://",
        "chrome-search://",
        "devtools://",
    ];
    let foreign: Vec<&String> = requests
        .iter()
        .filter(|u| !(u.starts_with(origin) || u.starts_with("data:") || u.starts_with("blob:")))
        .filter(|u| !internal.iter().any(|scheme| u.starts_with(scheme)))
        .collect();
    assert!(
        foreign.is_empty(),
        "{what} made requests other than for its own files at {origin}: {foreign:#?}"
    );
}

/// Has the page send what a leaking page would (a `fetch`, a beacon, an image) to
/// [`CONTROL_ORIGIN`], and returns the URLs the log then shows.
fn send_control_requests(wd: &WebDriver) -> Vec<String> {
    wd.call(
        "POST",
        "execute/sync",
        json!({
            "script": format!(
                "fetch('{CONTROL_ORIGIN}fetch', {{ mode: 'no-cors' }}).catch(() => {{}}); \
                 navigator.sendBeacon('{CONTROL_ORIGIN}beacon', 'x'); \
                 new Image().src = '{CONTROL_ORIGIN}pixel.png'; return 1;"
            ),
            "args": [],
        }),
    );
    let mut seen = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        seen.extend(network_requests(wd));
        if seen
            .iter()
            .filter(|u| u.starts_with(CONTROL_ORIGIN))
            .count()
            >= 3
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    seen
}

/// Serves `dist` on loopback, opens it in Chromium and returns what `#result` showed
/// and the console's errors; it also checks the page requested nothing but its own
/// files (the package's privacy check in a real app).
fn open_in_chromium(
    dist: &Path,
    chromium: &Path,
    chromedriver: &Path,
    profile: &Path,
) -> (String, Vec<Value>) {
    use cargo_medwasm::http::{Request, Response, Server};
    let root = dist.to_path_buf();
    let server = Server::start(
        0,
        std::sync::Arc::new(move |r: &Request| Response::file(&root, &r.path)),
    )
    .unwrap();
    let wd = WebDriver::launch(chromedriver, chromium, profile);
    wd.call("POST", "url", json!({ "url": server.url() }));
    let result = wd.find("#result");
    let mut done = String::new();
    wd.wait(
        Duration::from_secs(60),
        "the page to show its findings",
        || {
            done = wd
                .call(
                    "GET",
                    &format!("element/{result}/attribute/data-done"),
                    Value::Null,
                )
                .as_str()
                .unwrap_or_default()
                .to_string();
            !done.is_empty()
        },
    );
    let text = wd
        .call("GET", &format!("element/{result}/text"), Value::Null)
        .as_str()
        .unwrap_or_default()
        .to_string();
    let logs = wd.call("POST", "se/log", json!({ "type": "browser" }));
    let requests = network_requests(&wd);
    assert_only_own_requests(
        &requests,
        &server.url(),
        &format!("the app in `{}`", dist.display()),
    );
    drop(wd);
    drop(server);
    let errors = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["level"] == "SEVERE")
        .cloned()
        .collect();
    (text, errors)
}

#[test]
fn browser_package_works_in_vite_and_webpack_production_builds() {
    let node = need!(tool(NODE.0, NODE.1));
    let npm = need!(tool("npm", "install npm (it comes with Node.js)"));
    let chromium = need!(tool(CHROMIUM.0, CHROMIUM.1));
    let chromedriver = need!(tool(CHROMEDRIVER.0, CHROMEDRIVER.1));
    let bundlers = need!(bundlers());
    let tmp = tempfile::tempdir().unwrap();
    let name = "vitals-bundled";
    let project = new_vitals(tmp.path(), name);
    // A target folder of its own: `pkg/package.json` is shared by every detector built
    // into one target folder, and other tests build theirs at the same time.
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-medwasm"))
        .args(["medwasm", "build", "--target", "browser", "--release"])
        .current_dir(&project)
        .env("NO_COLOR", "1")
        .env("CARGO_TARGET_DIR", tmp.path().join("target"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = String::from_utf8_lossy(&out.stdout).into_owned();
    let wasm = project.join(built.split_whitespace().next().unwrap());
    let pkg = wasm.parent().unwrap().to_path_buf();
    let wasm_bytes = std::fs::read(&wasm).unwrap();
    // Privacy: the browser detector imports nothing, so it cannot reach the page or
    // the network except through what the loader hands it (nothing).
    let imports = cargo_medwasm::wasm::imports(&wasm_bytes).unwrap();
    assert!(imports.is_empty(), "{}: {imports:?}", wasm.display());

    // The app installs the package as a user would (a copy, as from a registry) and
    // has no bundler configuration of its own.
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{ "name": "bundled-app", "private": true, "type": "module" }"#,
    )
    .unwrap();
    let out = Command::new(&npm)
        .args([
            "install",
            "--offline",
            "--no-audit",
            "--no-fund",
            "--install-links",
        ])
        .arg(&pkg)
        .current_dir(&app)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "npm install {}:\n{}",
        pkg.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let vectors = vectors_json(&project);
    let two = json!([vectors["inputs"][0], vectors["inputs"][8]]);
    std::fs::write(app.join("vectors.json"), two.to_string()).unwrap();
    std::fs::write(
        app.join("main.js"),
        APP_MAIN_JS.replace("__PACKAGE__", name),
    )
    .unwrap();
    let page = |script: &str| {
        format!(
            "<!doctype html>\n<html lang=\"en\"><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>bundled</title>\n<p id=\"result\"></p>\n{script}\n</html>\n"
        )
    };
    std::fs::write(
        app.join("index.html"),
        page(r#"<script type="module" src="./main.js"></script>"#),
    )
    .unwrap();

    let vite_dist = app.join("dist-vite");
    run_bundler(
        &node,
        &bundlers.join("vite/bin/vite.js"),
        &["build", "--outDir", vite_dist.to_str().unwrap()],
        &app,
    );
    let webpack_dist = app.join("dist-webpack");
    run_bundler(
        &node,
        &bundlers.join("webpack-cli/bin/cli.js"),
        &[
            "--mode",
            "production",
            "--entry",
            "./main.js",
            "--output-path",
            webpack_dist.to_str().unwrap(),
        ],
        &app,
    );
    std::fs::write(
        webpack_dist.join("index.html"),
        page(r#"<script src="./main.js"></script>"#),
    )
    .unwrap();

    for (bundler, dist) in [("vite", &vite_dist), ("webpack", &webpack_dist)] {
        // The bundler saw the `.wasm` and emitted it, byte for byte.
        let mut emitted = Vec::new();
        let mut stack = vec![dist.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "wasm") {
                    emitted.push(path);
                }
            }
        }
        assert_eq!(emitted.len(), 1, "{bundler} emitted {emitted:?}");
        assert_eq!(std::fs::read(&emitted[0]).unwrap(), wasm_bytes, "{bundler}");

        let (text, errors) = open_in_chromium(
            dist,
            &chromium,
            &chromedriver,
            &tmp.path().join(format!("profile-{bundler}")),
        );
        assert_eq!(text, "[[false,0],[true,1]]", "{bundler}");
        assert!(errors.is_empty(), "{bundler}: console errors: {errors:#?}");
    }
}
