#!/usr/bin/env python3
"""Warm latency of medwasm detectors under Wasmtime next to LiteRT, onnxruntime, onnxruntime-web and tract.

On one machine, in one run: for the template and every shared MLPerf Tiny model,
scaffolds a detector from `model.tflite` and one from `model.onnx` with the release
`cargo-medwasm`, runs `cargo medwasm bench --target wasmtime --json` on each, and
times the same model files on the same input vector in the peers:

- `litert`: LiteRT native (`ai-edge-litert`, Python), 1 thread, default kernels
  (XNNPACK delegate);
- `litert-ref`: the same with the reference kernels (`OpResolverType.BUILTIN_REF`);
- `ort`: onnxruntime native (Python), CPU provider, 1 thread;
- `ort-web`: onnxruntime-web in Node, wasm backend, SIMD, 1 thread
  (`ort_web_bench.mjs`, the package pinned by this folder's `package-lock.json`);
- `tract`: tract natively (`native_bench`), where it runs the model.

Writes a markdown report and the raw JSON it was made from beside it. A peer that
is missing stops the run with an error; `--skip-peer NAME` leaves one out on
purpose, and the report says so.

Usage (from anywhere; paths are relative to the repository root):

    bash .ci/setup                                        # the peers, once
    export CARGO_TARGET_DIR=$HOME/.cache/medwasm-target   # optional
    python3 conformance/bench/compare.py /tmp/bench.md [--models kws_int8,ad01_int8] [--runs 500]

The shared models are read from `$MEDWASM_SHARED_MODELS`, else from
`../shared/models` beside the repository.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parent

# Untimed runs before the timed ones, as many as the Wasmtime runner and native_bench
# do, so every runtime starts timing in the same state.
WARMUP_RUNS = 10
# Cold starts per runtime; the median is reported (the Wasmtime runner also does 3).
COLD_STARTS = 3

TEMPLATE = "vitals-anomaly"
# Every model the report covers, in its order; the template is the `vitals-anomaly`
# project template, the others are folders of the shared models.
MODELS = [TEMPLATE, "ad01_fp32", "ad01_int8", "kws_float32", "kws_int8", "ic_resnet8_fp32", "ic_resnet8_int8"]
# The float model each int8 model was quantized from.
FLOAT_OF = {"ad01_int8": "ad01_fp32", "kws_int8": "kws_float32", "ic_resnet8_int8": "ic_resnet8_fp32"}
# Models slow enough per inference to get `--runs-large` warm runs.
LARGE = {"ic_resnet8_fp32", "ic_resnet8_int8"}

PEERS = ["litert", "litert-ref", "ort", "ort-web", "tract"]
PEER_TITLE = {
    "litert": "LiteRT, XNNPACK",
    "litert-ref": "LiteRT, ref. kernels",
    "ort": "onnxruntime",
    "ort-web": "onnxruntime-web",
    "tract": "tract",
}
# Every runtime column of the report: the two detectors, then the peers.
MEDWASM = ["medwasm-tflite", "medwasm-onnx"]
TITLE = {"medwasm-tflite": "medwasm ← .tflite", "medwasm-onnx": "medwasm ← .onnx", **PEER_TITLE}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class PeerMissing(Exception):
    pass


def run(cmd: list, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `cmd`, stdout and stderr captured; failures name the command and show stderr."""
    log(f"$ {' '.join(str(c) for c in cmd)}" + (f"    (in {cwd})" if cwd else ""))
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(str(c) for c in cmd)}` exited with {proc.returncode}; stderr:\n{proc.stderr}\nstdout:\n{proc.stdout}"
        )
    return proc


def first_error_line(text: str) -> str:
    """The line of a tool's output that says what went wrong, for a table cell."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    error = next((line for line in lines if line.lower().startswith("error")), None)
    if error is None:
        return lines[-1] if lines else "(no output)"
    # anyhow's chain: the innermost cause says what the tool could not do.
    causes = [line for line in lines if line.startswith("caused by:")]
    return f"{error} ({causes[-1]})" if causes else error


# One build for both binaries, even with tract skipped: cargo unifies dependency
# features over what one invocation builds, so building them apart (or one alone)
# would compile Wasmtime and tract again. `targets.py` builds the same, to share it.
RELEASE_BUILD = ["-p", "cargo-medwasm", "--bin", "cargo-medwasm", "-p", "medwasm-conformance", "--bin", "native_bench"]


def cargo_build(args: list[str]) -> dict[str, Path]:
    """`cargo build --release` with JSON messages; returns the built executables by name."""
    proc = run(["cargo", "build", "--release", "--message-format", "json", *args], cwd=REPO)
    exes = {}
    for line in proc.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            exes[msg["target"]["name"]] = Path(msg["executable"])
    return exes


def percentiles(samples_us: list[float]) -> dict:
    """Median, p95 and p99 picked the way `cargo_medwasm::report::percentiles` does."""
    s = sorted(samples_us)
    at = lambda q: s[min(round((len(s) - 1) * q), len(s) - 1)]  # noqa: E731
    return {"median_us": at(0.5), "p95_us": at(0.95), "p99_us": at(0.99), "runs": len(s)}


def timed(call, runs: int) -> dict:
    """Warm latency of `call()`: untimed warm-up, then each run timed alone."""
    for _ in range(WARMUP_RUNS):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1e3)
    return percentiles(samples)


def cold(make_and_run) -> float:
    """Median of a few start-ups: `make_and_run()` loads the model and runs it once."""
    colds = []
    for _ in range(COLD_STARTS):
        start = time.perf_counter_ns()
        make_and_run()
        colds.append((time.perf_counter_ns() - start) / 1e3)
    return statistics.median(colds)


def max_abs(got: np.ndarray, want: np.ndarray | None) -> float | None:
    """How far a peer's output on the timed vector is from the stored reference: a
    check that what was timed computes the model."""
    if want is None:
        return None
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    want = np.asarray(want, dtype=np.float64).reshape(-1)
    if got.shape != want.shape:
        return float("inf")
    return float(np.max(np.abs(got - want))) if got.size else 0.0


# Peers


def identity_onnx(x: np.ndarray) -> bytes:
    """An Identity graph on `x`'s dtype and shape: a call with no work in it."""
    import onnx
    from onnx import TensorProto, helper

    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int8): TensorProto.INT8}[x.dtype]
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "floor",
            [helper.make_tensor_value_info("x", elem, list(x.shape))],
            [helper.make_tensor_value_info("y", elem, list(x.shape))],
        ),
        opset_imports=[helper.make_opsetid("", 13)],
        # The onnx package may write a newer IR version than the installed onnxruntime reads.
        ir_version=8,
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_session(model: Path | bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        model if isinstance(model, bytes) else str(model),
        sess_options=opts,
        providers=["CPUExecutionProvider"],
    )


def ort_bench(model: Path, x: np.ndarray, want: np.ndarray | None, runs: int) -> dict:
    """Warm latency, cold start (session creation + first run) and the Python floor."""
    import onnxruntime as ort

    session = ort_session(model)
    feed = {session.get_inputs()[0].name: x}
    out = session.run(None, feed)[0]
    result = timed(lambda: session.run(None, feed), runs)
    result["cold_start_us"] = cold(lambda: ort_session(model).run(None, feed))
    # What a call costs with no work in it, run the same way. Timing from Python
    # includes this; a C++ caller would not pay most of it.
    floor = ort_session(identity_onnx(x))
    result["floor_median_us"] = timed(lambda: floor.run(None, {"x": x}), runs)["median_us"]
    result["max_abs_vs_stored"] = max_abs(out, want)
    result["runtime"] = f"onnxruntime {ort.__version__} (Python, CPUExecutionProvider, 1 thread)"
    return result


# The LiteRT per-call floor: a committed fixture doing one RESHAPE of 24 floats.
LITERT_FLOOR_MODEL = REPO / "conformance" / "tflite" / "reshape_f32.tflite"


def litert_interpreter(model: Path, reference: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    it = Interpreter(model_path=str(model), num_threads=1, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    return it


def litert_call(it, x: np.ndarray):
    """One inference as a caller makes it: input in, invoke, output out (copied)."""
    inp = it.get_input_details()[0]["index"]
    out = it.get_output_details()[0]["index"]

    def call():
        it.set_tensor(inp, x)
        it.invoke()
        return it.get_tensor(out)

    return call


def litert_bench(model: Path, x: np.ndarray, want: np.ndarray | None, runs: int, reference: bool) -> dict:
    it = litert_interpreter(model, reference)
    detail = it.get_input_details()[0]
    if list(detail["shape"]) != list(x.shape) or np.dtype(detail["dtype"]) != x.dtype:
        raise RuntimeError(
            f"`{model}` takes {detail['dtype'].__name__} {list(detail['shape'])}, the vector is {x.dtype} {list(x.shape)}"
        )
    call = litert_call(it, x)
    out = call()
    result = timed(call, runs)
    result["cold_start_us"] = cold(lambda: litert_call(litert_interpreter(model, reference), x)())
    floor_it = litert_interpreter(LITERT_FLOOR_MODEL, reference)
    floor_x = np.zeros(floor_it.get_input_details()[0]["shape"], dtype=np.float32)
    result["floor_median_us"] = timed(litert_call(floor_it, floor_x), runs)["median_us"]
    result["max_abs_vs_stored"] = max_abs(out, want)
    kernels = "reference kernels (BUILTIN_REF)" if reference else "default kernels (XNNPACK delegate)"
    result["runtime"] = f"ai-edge-litert {importlib.metadata.version('ai-edge-litert')} (Python, {kernels}, 1 thread)"
    return result


def ort_web_bench(model: Path, x: np.ndarray, want: np.ndarray | None, runs: int, work: Path) -> dict:
    """onnxruntime-web in Node on the same model and vector (`ort_web_bench.mjs`)."""
    tag = f"{model.parent.name}-{model.stem}"
    data = work / f"{tag}.input.bin"
    x.tofile(data)
    floor = work / f"{tag}.floor.onnx"
    floor.write_bytes(identity_onnx(x))
    shape = ",".join(str(d) for d in x.shape)
    script = [BENCH / "ort_web_bench.mjs", model, data, str(x.dtype), shape]
    # Warm figures from TurboFan code: V8 starts a wasm module in its baseline compiler
    # (Liftoff) and tiers hot functions up in the background, which ten warm-up runs of
    # a 14 MB module on a busy machine do not reach (resnet8 measured 3.7x slower so).
    # `--no-liftoff` compiles everything with TurboFan up front: the steady state a
    # long-running page reaches, and what Wasmtime's Cranelift gives the detector.
    proc = run(["node", "--no-liftoff", *script, str(runs), floor], cwd=BENCH)
    result = json.loads(proc.stdout)
    # Start-up as a page gets it: Node's default tiering (Liftoff first), timed in a
    # process of its own.
    start = json.loads(run(["node", *script, "1", floor], cwd=BENCH).stdout)
    result["cold_start_us"] = start["cold_start_us"]
    result["first_session_us"] = start["first_session_us"]
    result["runtime"] = result["runtime"].replace("1 thread)", "1 thread; warm: TurboFan, `node --no-liftoff`)")
    out = np.asarray(result.pop("output"))
    result["floor_median_us"] = result.pop("js_floor_median_us")
    result["max_abs_vs_stored"] = max_abs(out, want)
    return result


def tract_bench(native: Path, model: Path, inputs: Path, runs: int) -> dict:
    """tract natively, or why it does not run the model (a cell of the table, not a gap)."""
    proc = run([native, model, inputs, str(runs)], check=False)
    if proc.returncode != 0:
        return {"unsupported": first_error_line(proc.stderr or proc.stdout)}
    return json.loads(proc.stdout)


def check_peers(skip: set[str]) -> dict:
    """Every peer not skipped must be installed; returns their versions. Fails loudly."""
    missing = []
    versions = {}
    if {"ort", "ort-web"} - skip:
        try:
            import onnx
            import onnxruntime

            versions["onnxruntime"] = onnxruntime.__version__
            versions["onnx"] = onnx.__version__
        except ImportError as err:
            missing.append(f"`ort`: the Python package onnxruntime (and onnx) is not importable ({err})")
    if {"litert", "litert-ref"} - skip:
        try:
            import ai_edge_litert.interpreter  # noqa: F401

            versions["ai-edge-litert"] = importlib.metadata.version("ai-edge-litert")
        except ImportError as err:
            missing.append(f"`litert`: the Python package ai-edge-litert is not importable ({err})")
    if "ort-web" not in skip:
        node = shutil.which("node")
        package = BENCH / "node_modules" / "onnxruntime-web" / "package.json"
        if node is None:
            missing.append("`ort-web`: Node.js is not on PATH")
        elif not package.exists():
            missing.append(f"`ort-web`: `{package.relative_to(REPO)}` is missing (npm ci --prefix conformance/bench)")
        else:
            versions["node"] = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
            versions["onnxruntime-web"] = json.loads(package.read_text())["version"]
    if missing:
        raise PeerMissing(
            "error: peers missing:\n  "
            + "\n  ".join(missing)
            + "\ninstall them with `bash .ci/setup`, or leave one out on purpose with `--skip-peer NAME`"
        )
    return versions


# Wasmtime through cargo-medwasm


def scaffold(cli: Path, workdir: Path, name: str, template: str, imports: list[str] | None) -> tuple[Path, list[str]]:
    """A detector project; `imports` are `cargo medwasm import` arguments, or None for the template's model.
    Returns the project and the commands run, as a reader would type them."""
    run([cli, "medwasm", "new", name, "--template", template], cwd=workdir)
    commands = [f"cargo medwasm new {name} --template {template}"]
    if imports is not None:
        run([cli, "medwasm", "import", *imports], cwd=workdir / name)
        shown = [os.path.relpath(a, REPO) if a.startswith("/") else a for a in imports]
        commands.append(f"(cd {name} && cargo medwasm import {' '.join(shown)})")
    return workdir / name, commands


def wasmtime_bench(cli: Path, project: Path, runs: int) -> tuple[dict, str]:
    """The `bench --json` report; a conformance failure still yields a report."""
    cmd = [cli, "medwasm", "bench", "--target", "wasmtime", "--json", "--runs", str(runs)]
    proc = run(cmd, cwd=project, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        raise RuntimeError(
            f"`{' '.join(str(c) for c in cmd)}` (in {project}) exited with {proc.returncode} and printed no JSON report "
            f"({err}); stderr:\n{proc.stderr}"
        ) from None
    return report, f"(cd {project.name} && cargo medwasm bench --target wasmtime --json --runs {runs})"


def medwasm_detector(cli: Path, work: Path, name: str, template: str, imports: list[str] | None, runs: int) -> dict:
    """Scaffold, import and bench one detector; an import that fails is a result (its error), not a crash."""
    try:
        project, commands = scaffold(cli, work, name, template, imports)
    except RuntimeError as err:
        return {"unsupported": first_error_line(str(err).split("stderr:", 1)[-1]), "commands": []}
    report, bench_cmd = wasmtime_bench(cli, project, runs)
    target = report["targets"][0]
    lat = target["latency"]
    if lat.get("median_us") is None:
        raise RuntimeError(f"`{bench_cmd}` timed nothing: {target.get('failure')}")
    passed = sum(
        1 for v in target["vectors"]
        if v["error"] is None
        and any(v[k] is not None for k in ("vs_tract", "vs_expected"))
        and all(v[k]["pass"] for k in ("vs_tract", "vs_expected") if v[k] is not None)
    )
    return {
        "median_us": lat["median_us"],
        "p95_us": lat["p95_us"],
        "p99_us": lat["p99_us"],
        "runs": lat["runs"],
        "cold_start_us": lat.get("cold_start_us"),
        "cold_start_cached_us": lat.get("cold_start_cached_us"),
        "wasm_ops": lat.get("wasm_ops"),
        "size": target["size"],
        "memory": target["memory"],
        "passed": target["passed"],
        "vectors_passed": passed,
        "vectors": len(target["vectors"]),
        "runtime": target["runtime"],
        "project": project,
        "commands": [*commands, bench_cmd],
        "report": report,
    }


# Machine facts


def machine() -> dict:
    cpu = "unknown CPU"
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip() and cpu == "unknown CPU":
                cpu = value.strip()
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni") if f in flags]

    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "unknown"

    # `--no-optional-locks` keeps `git status` from refreshing (writing) the index.
    dirty = out(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu": cpu,
        "cpu_simd": simd,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "rustc": out(["rustc", "-V"]),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "commit": out(["git", "rev-parse", "HEAD"]) + (" (with uncommitted changes)" if dirty else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


# Report


def us(x: float | None) -> str:
    if x is None:
        return "–"
    if x < 1000:
        return f"{x:.1f} µs"
    return f"{x / 1000:.2f} ms"


def kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def cell(t: dict | None, key: str = "median_us") -> str:
    if t is None:
        return "skipped"
    if "unsupported" in t:
        return "n/a¹"
    return us(t.get(key))


def ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or "median_us" not in a or "median_us" not in b:
        return "–"
    return f"{a['median_us'] / b['median_us']:.2f}×"


def medwasm_of(r: dict) -> tuple[str, dict | None]:
    """The detector the ratios use: from the `.tflite` where it imports, else from the `.onnx`."""
    for key in MEDWASM:
        t = r["runtimes"].get(key)
        if t and "median_us" in t:
            return key, t
    return MEDWASM[0], None


def markdown(results: list[dict], facts: dict, commands: list[str], skipped: list[str], command_line: str) -> str:
    lines = []
    w = lambda s="": lines.append(s)  # noqa: E731
    v = facts["versions"]
    w(f"Machine: {facts['cpu']} ({', '.join(facts['cpu_simd'])}), {facts['cores']} cores, {facts['os']}")
    runtimes = sorted({t["runtime"] for r in results for t in r["runtimes"].values() if t and "runtime" in t})
    w(f"Runtimes: {'; '.join(runtimes)}")
    w(f"Toolchain: {facts['rustc']}; Python {facts['python']}, numpy {facts['numpy']}"
      + (f", onnx {v['onnx']}" if "onnx" in v else "") + (f"; Node {v['node']}" if "node" in v else ""))
    w(f"Commit: {facts['commit']}; date: {facts['date']}")
    w(f"Load average (1, 5, 15 min): {facts['load_before']} at the start, {facts['load_after']} at the end")
    w(f"Command: `{command_line}`")
    if skipped:
        w(f"**Peers left out on purpose (`--skip-peer`): {', '.join(f'`{p}`' for p in skipped)}.**")
    w()
    cols = [c for c in [*MEDWASM, *PEERS] if c not in skipped]
    w("Warm latency, one inference on the first stored vector, batch 1, median:")
    w()
    w("| model | " + " | ".join(TITLE[c] for c in cols) + " |")
    w("|---|" + "---:|" * len(cols))
    for r in results:
        w(f"| `{r['name']}` | " + " | ".join(cell(r["runtimes"].get(c)) for c in cols) + " |")
    w()
    notes = [
        f"`{r['name']}` {TITLE[c]}: {t['unsupported']}"
        for r in results for c in cols
        if (t := r["runtimes"].get(c)) and "unsupported" in t
    ]
    if notes:
        w("¹ Not run: " + "; ".join(notes) + ".")
        w()
    w("The same, p95 / p99:")
    w()
    w("| model | " + " | ".join(TITLE[c] for c in cols) + " |")
    w("|---|" + "---:|" * len(cols))
    for r in results:
        w(f"| `{r['name']}` | " + " | ".join(
            (f"{cell(t, 'p95_us')} / {cell(t, 'p99_us')}" if t and "median_us" in t else cell(t))
            for c in cols for t in [r["runtimes"].get(c)]) + " |")
    w()
    peers = [p for p in PEERS if p not in skipped]
    w("medwasm ÷ peer (warm medians; below 1 means medwasm is faster). The detector is the one "
      "imported from `.tflite`, or from `.onnx` where the model has no `.tflite` (the template):")
    w()
    w("| model | detector | " + " | ".join(PEER_TITLE[p] for p in peers) + " |")
    w("|---|---|" + "---:|" * len(peers))
    for r in results:
        key, m = medwasm_of(r)
        w(f"| `{r['name']}` | {'.tflite' if key == 'medwasm-tflite' else '.onnx'} | "
          + " | ".join(ratio(m, r["runtimes"].get(p)) for p in peers) + " |")
    w()
    floors = [p for p in ("litert", "litert-ref", "ort", "ort-web") if p in peers]
    if floors:
        w("Per-call floor of the timed-from-a-script peers, included in their figures above (a call with no "
          "work in it, timed the same way: LiteRT `set_tensor` + `invoke` + `get_tensor` on a one-RESHAPE "
          "model; onnxruntime and onnxruntime-web `run` of an Identity model on the same input):")
        w()
        w("| model | " + " | ".join(PEER_TITLE[p] for p in floors) + " |")
        w("|---|" + "---:|" * len(floors))
        for r in results:
            w(f"| `{r['name']}` | " + " | ".join(
                us(t.get("floor_median_us")) if t and "floor_median_us" in t else cell(t)
                for p in floors for t in [r["runtimes"].get(p)]) + " |")
        w()
    int8 = [r for r in results if r["name"] in FLOAT_OF]
    by_name = {r["name"]: r for r in results}
    if int8:
        w("int8 ÷ f32 of the same model, per runtime (warm medians; below 1 means int8 is faster):")
        w()
        w("| model | " + " | ".join(TITLE[c] for c in cols) + " |")
        w("|---|" + "---:|" * len(cols))
        for r in int8:
            f = by_name.get(FLOAT_OF[r["name"]])
            w(f"| `{r['name']}` ÷ `{FLOAT_OF[r['name']]}` | " + " | ".join(
                ratio(r["runtimes"].get(c), f["runtimes"].get(c) if f else None) for c in cols) + " |")
        w()
    goals = goal_rows(results, by_name, skipped)
    if goals:
        w("The issues' latency goals (issue 7: int8 models; issue 8: float models and the template), "
          "from the medians above:")
        w()
        w("| goal | model | measured | |")
        w("|---|---|---:|---|")
        for goal, model, value, met in goals:
            w(f"| {goal} | `{model}` | {value:.2f}× | {'met' if met else '**not met**'} |")
        w()
    w("Start-up: load (compile), prepare and run once; median of 3. medwasm: Wasmtime without and with its "
      "compilation cache; onnxruntime-web (Node's default tiering, Liftoff first): a new session once the "
      "wasm runtime is loaded, and the first session of the process (compiling its wasm) in parentheses:")
    w()
    w("| model | " + " | ".join(TITLE[c] for c in cols) + " |")
    w("|---|" + "---:|" * len(cols))
    for r in results:
        row = []
        for c in cols:
            t = r["runtimes"].get(c)
            if not t or "median_us" not in t:
                row.append(cell(t))
            elif c in MEDWASM:
                row.append(f"{us(t['cold_start_us'])} / {us(t['cold_start_cached_us'])}")
            elif c == "ort-web":
                row.append(f"{us(t['cold_start_us'])} ({us(t['first_session_us'])})")
            else:
                row.append(us(t.get("cold_start_us")))
        w(f"| `{r['name']}` | " + " | ".join(row) + " |")
    w()
    w("medwasm detectors (release build, after `wasm-opt -O3`); wasm operators per inference counted "
      "exactly by Wasmtime's fuel:")
    w()
    w("| model | from | wasm ops | code | weights | arena | conformance |")
    w("|---|---|---:|---:|---:|---:|---|")
    for r in results:
        for c in MEDWASM:
            t = r["runtimes"].get(c)
            if not t or (r["name"] == TEMPLATE and c == "medwasm-tflite"):
                continue
            src = ".tflite" if c == "medwasm-tflite" else ".onnx"
            if "unsupported" in t:
                w(f"| `{r['name']}` | {src} | n/a¹ | | | | |")
                continue
            ops = "–" if t["wasm_ops"] is None else f"{t['wasm_ops']:,}".replace(",", " ")
            s = t["size"]
            w(f"| `{r['name']}` | {src} | {ops} | {kib(s['code'])} | {kib(s['weights'])} "
              f"| {kib(t['memory']['arena_bytes'])} | {'PASS' if t['passed'] else 'FAIL'} "
              f"{t['vectors_passed']}/{t['vectors']} |")
    w()
    checks = []
    for r in results:
        for p in peers:
            t = r["runtimes"].get(p)
            if t and t.get("max_abs_vs_stored") is not None:
                checks.append((r["name"], p, t["max_abs_vs_stored"], t.get("reference_file")))
    if checks:
        w("Each peer's output on the timed vector against the stored reference (max abs difference; "
          "int8 outputs in steps): "
          + "; ".join(f"`{n}` {PEER_TITLE[p]} {d:.3g} vs `{f}`" for n, p, d, f in checks) + ".")
        w()
    ort_web = next((t for r in results if (t := r["runtimes"].get("ort-web")) and "wasm_file" in t), None)
    if ort_web:
        w(f"onnxruntime-web ran `{os.path.relpath(ort_web['wasm_file'], REPO)}` ({ort_web['wasm_bytes']} B, "
          f"sha256 {ort_web['wasm_sha256'][:16]}…) with `ort.env.wasm.numThreads = {ort_web['env']['numThreads']}`, "
          f"`simd = {str(ort_web['env']['simd']).lower()}`, `proxy = false`; warm figures from TurboFan code "
          "(`node --no-liftoff`), start-up with Node's default tiering.")
        w()
    w("Commands run:")
    w()
    w("```")
    lines.extend(commands)
    w("```")
    return "\n".join(lines) + "\n"


def goal_rows(results: list[dict], by_name: dict, skipped: list[str]) -> list[tuple[str, str, float, bool]]:
    """(goal, model, ratio, met) for the issues' latency goals the run has figures for."""
    rows = []

    def med(r: dict, c: str) -> float | None:
        t = r["runtimes"].get(c)
        return t["median_us"] if t and "median_us" in t else None

    for r in results:
        _, m = medwasm_of(r)
        if m is None:
            continue
        name, mw = r["name"], m["median_us"]
        if name in FLOAT_OF:
            if (p := med(r, "ort-web")) is not None:
                rows.append(("int8 under Wasmtime faster than onnxruntime-web", name, mw / p, mw < p))
            for peer in ("litert", "litert-ref"):
                if (p := med(r, peer)) is not None:
                    rows.append((f"int8 within 2× of {PEER_TITLE[peer]}", name, mw / p, mw <= 2 * p))
            f = by_name.get(FLOAT_OF[name])
            if f is not None:
                _, fm = medwasm_of(f)
                if fm is not None:
                    rows.append((f"int8 faster than `{FLOAT_OF[name]}` under Wasmtime", name,
                                 mw / fm["median_us"], mw < fm["median_us"]))
        else:
            if (p := med(r, "ort-web")) is not None:
                rows.append(("≤ 0.5× onnxruntime-web", name, mw / p, mw <= 0.5 * p))
            if name == "ad01_fp32" and (p := med(r, "ort")) is not None:
                rows.append(("≤ 1.5× onnxruntime native", name, mw / p, mw <= 1.5 * p))
    return rows


def case_files(models: Path, name: str) -> dict:
    d = models / name
    int8 = name in FLOAT_OF
    return {
        "dir": d,
        "tflite": d / "model.tflite",
        "onnx": d / "model.onnx",
        "inputs": d / "inputs.npy",
        # What each detector's conformance and each peer's output are checked against.
        "expected_tflite": d / "expected_tflite_ref.npy",
        "expected_onnx": d / ("expected_tflite_ref.npy" if int8 else "expected_onnx.npy"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="markdown report; the raw JSON goes beside it as .json")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated models to run, from {', '.join(MODELS)} [all]")
    parser.add_argument("--runs", type=int, default=2000, help="warm runs per runtime for the small models [2000]")
    parser.add_argument("--runs-large", type=int, default=300,
                        help=f"warm runs per runtime for {', '.join(sorted(LARGE))} [300]")
    parser.add_argument("--skip-peer", action="append", default=[], choices=PEERS, metavar="NAME",
                        help=f"leave a peer out on purpose (repeatable): {', '.join(PEERS)}")
    parser.add_argument("--keep", action="store_true", help="keep the scaffolded detectors")
    args = parser.parse_args()
    command_line = "python3 conformance/bench/compare.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        log(f"error: unknown models {', '.join(f'`{m}`' for m in unknown) or '(none given)'}; pick from {', '.join(MODELS)}")
        return 2
    if args.runs < 1 or args.runs_large < 1:
        log("error: `--runs` and `--runs-large` must be 1 or more")
        return 2
    skip = set(args.skip_peer)
    models = Path(os.environ.get("MEDWASM_SHARED_MODELS", REPO / ".." / "shared" / "models")).resolve()
    if any(m != TEMPLATE for m in names) and not (models / "ad01_fp32" / "model.onnx").exists():
        log(f"error: the shared reference models are not at `{models}`; set MEDWASM_SHARED_MODELS")
        return 2
    try:
        versions = check_peers(skip)
    except PeerMissing as err:
        log(str(err))
        return 2

    facts = machine()
    facts["versions"] = versions
    facts["load_before"] = load()
    build = RELEASE_BUILD
    commands = [" ".join(["cargo", "build", "--release", *build])]
    exes = cargo_build(build)
    cli, native = exes["cargo-medwasm"], exes["native_bench"]

    work = Path(tempfile.mkdtemp(prefix="medwasm-compare-"))
    results = []
    try:
        for name in names:
            log(f"== {name}")
            runs = args.runs_large if name in LARGE else args.runs
            det = name.replace("_", "-")
            runtimes: dict[str, dict | None] = {}
            if name == TEMPLATE:
                t = medwasm_detector(cli, work, det, TEMPLATE, None, runs)
                commands.extend(t["commands"])
                runtimes["medwasm-tflite"] = {"unsupported": "the template's model is ONNX only"}
                runtimes["medwasm-onnx"] = t
                # The peers run the file and vectors the detector was built from.
                manifest = json.loads((t["project"] / "model" / "manifest.json").read_text())
                onnx_model = t["project"] / "model" / manifest["source"]["file"]
                inputs = t["project"] / "vectors" / "inputs.npy"
                expected_path = t["project"] / "vectors" / "expected.npy"
                tflite_model = None
                expected_onnx = np.load(expected_path)[0] if expected_path.exists() else None
                expected_tflite = expected_tflite_ref = None
                ref_files = {"onnx": os.path.relpath(expected_path, t["project"].parent)}
            else:
                f = case_files(models, name)
                t = medwasm_detector(cli, work, f"{det}-tflite", "blank",
                                     [str(f["tflite"]), "--inputs", str(f["inputs"]), "--expected", str(f["expected_tflite"])],
                                     runs)
                commands.extend(t["commands"])
                runtimes["medwasm-tflite"] = t
                t = medwasm_detector(cli, work, f"{det}-onnx", "blank",
                                     [str(f["onnx"]), "--inputs", str(f["inputs"]), "--expected", str(f["expected_onnx"])],
                                     runs)
                commands.extend(t["commands"])
                runtimes["medwasm-onnx"] = t
                onnx_model, tflite_model, inputs = f["onnx"], f["tflite"], f["inputs"]
                expected_onnx = np.load(f["dir"] / "expected_onnx.npy")[0]
                expected_tflite = np.load(f["dir"] / "expected_tflite.npy")[0]
                expected_tflite_ref = np.load(f["dir"] / "expected_tflite_ref.npy")[0]
                ref_files = {"onnx": "expected_onnx.npy", "tflite": "expected_tflite.npy",
                             "tflite_ref": "expected_tflite_ref.npy"}

            # One sample, batch 1, in the dtype the model files take (int8 for the int8 models).
            x = np.load(inputs)[:1]
            if x.dtype != np.int8:
                x = x.astype(np.float32)
            rel_inputs = os.path.relpath(inputs, REPO) if name != TEMPLATE else f"{det}/vectors/inputs.npy"

            if "litert" not in skip:
                if tflite_model is None:
                    runtimes["litert"] = {"unsupported": "the template's model is ONNX only"}
                else:
                    log(f"LiteRT (XNNPACK): {runs} warm runs of {name}.tflite")
                    runtimes["litert"] = litert_bench(tflite_model, x, expected_tflite, runs, reference=False)
                    runtimes["litert"]["reference_file"] = ref_files["tflite"]
            if "litert-ref" not in skip:
                if tflite_model is None:
                    runtimes["litert-ref"] = {"unsupported": "the template's model is ONNX only"}
                else:
                    log(f"LiteRT (BUILTIN_REF): {runs} warm runs of {name}.tflite")
                    runtimes["litert-ref"] = litert_bench(tflite_model, x, expected_tflite_ref, runs, reference=True)
                    runtimes["litert-ref"]["reference_file"] = ref_files["tflite_ref"]
            if "ort" not in skip:
                log(f"onnxruntime: {runs} warm runs of {onnx_model.name} on {x.dtype} {list(x.shape)}")
                runtimes["ort"] = ort_bench(onnx_model, x, expected_onnx, runs)
                runtimes["ort"]["reference_file"] = ref_files["onnx"]
            if "ort-web" not in skip:
                log(f"onnxruntime-web (Node): {runs} warm runs of {onnx_model.name}")
                runtimes["ort-web"] = ort_web_bench(onnx_model, x, expected_onnx, runs, work)
                runtimes["ort-web"]["reference_file"] = ref_files["onnx"]
            if "tract" not in skip:
                runtimes["tract"] = tract_bench(native, onnx_model, inputs, runs)
                shown = os.path.relpath(onnx_model, REPO) if name != TEMPLATE else f"{det}/model/{onnx_model.name}"
                commands.append(f"native_bench {shown} {rel_inputs} {runs}")
            if name != TEMPLATE:
                commands.append(f"(LiteRT, onnxruntime, onnxruntime-web: in compare.py on {rel_inputs}[0], {runs} runs)")

            results.append({"name": name, "runtimes": runtimes})
            log("   " + "; ".join(f"{c} {cell(t)}" for c, t in runtimes.items()))
    finally:
        if args.keep:
            log(f"detectors kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    facts["load_after"] = load()
    text = markdown(results, facts, commands, sorted(skip), command_line)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw = args.output.with_suffix(".json")
    for r in results:
        for t in r["runtimes"].values():
            if t and "project" in t:
                t["project"] = t["project"].name
    raw.write_text(json.dumps({"machine": facts, "command": command_line, "skipped_peers": sorted(skip),
                               "commands": commands, "results": results}, indent=2) + "\n")
    log(f"wrote {args.output} and {raw}")
    # A detector that failed conformance or a .tflite that did not import fails the run
    # (after the report is written); an .onnx that does not import is a reported result.
    failed = [
        f"{r['name']} {c}" for r in results for c in MEDWASM
        if (t := r["runtimes"].get(c)) and (
            ("unsupported" in t and c == "medwasm-tflite" and r["name"] != TEMPLATE)
            or ("passed" in t and not t["passed"])
        )
    ]
    if failed:
        log(f"error: {', '.join(failed)}: failed conformance or did not import; see the report")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
