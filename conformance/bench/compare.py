#!/usr/bin/env python3
"""Warm latency of medwasm detectors under Wasmtime next to onnxruntime and tract.

On one machine, in one run: scaffolds a detector for each model with the release
`cargo-medwasm`, runs `cargo medwasm bench --target wasmtime --json` on it, times the
same ONNX model in onnxruntime (CPU, 1 thread, from Python) and in tract natively
(`native_bench`), and writes a markdown report and the raw JSON it was made from.

Usage (from anywhere; paths are relative to the repository root):

    export CARGO_TARGET_DIR=$HOME/.cache/medwasm-target   # optional
    python3 conformance/bench/compare.py docs/bench-results.md

The shared MLPerf Tiny models are read from `$MEDWASM_SHARED_MODELS`, else from
`../shared/models` beside the repository.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

REPO = Path(__file__).resolve().parents[2]

# Untimed runs before the timed ones, as many as the Wasmtime runner and native_bench
# do, so every runtime starts timing in the same state.
WARMUP_RUNS = 10
# Cold starts per runtime; the median is reported (the Wasmtime runner also does 3).
COLD_STARTS = 3


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: list[str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `cmd`, stdout captured, stderr passed through; failures name the command."""
    log(f"$ {' '.join(str(c) for c in cmd)}" + (f"    (in {cwd})" if cwd else ""))
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(str(c) for c in cmd)}` exited with {proc.returncode}; stdout:\n{proc.stdout}"
        )
    return proc


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


# onnxruntime


def ort_session(model: Path | bytes) -> ort.InferenceSession:
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


def ort_warm(session: ort.InferenceSession, feed: dict, runs: int) -> dict:
    for _ in range(WARMUP_RUNS):
        session.run(None, feed)
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        session.run(None, feed)
        samples.append((time.perf_counter_ns() - start) / 1e3)
    return percentiles(samples)


def ort_bench(model: Path, x: np.ndarray, runs: int) -> dict:
    """Warm latency, cold start (session creation + first run) and the Python floor."""
    session = ort_session(model)
    name = session.get_inputs()[0].name
    feed = {name: x}
    result = ort_warm(session, feed, runs)

    colds = []
    for _ in range(COLD_STARTS):
        start = time.perf_counter_ns()
        s = ort_session(model)
        s.run(None, feed)
        colds.append((time.perf_counter_ns() - start) / 1e3)
    result["cold_start_us"] = statistics.median(colds)

    # What a call costs with no work in it: an Identity graph on the same input, run the
    # same way. Timing from Python includes this; a C++ caller would not pay most of it.
    identity = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "floor",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x.shape))],
        ),
        opset_imports=[helper.make_opsetid("", 13)],
        # The onnx package may write a newer IR version than the installed onnxruntime reads.
        ir_version=8,
    )
    floor = ort_warm(ort_session(identity.SerializeToString()), {"x": x}, runs)
    result["python_floor_median_us"] = floor["median_us"]
    result["runtime"] = f"onnxruntime {ort.__version__} (Python, CPUExecutionProvider, 1 thread)"
    return result


# Wasmtime through cargo-medwasm


def scaffold(cli: Path, workdir: Path, name: str, template: str, model_dir: Path | None) -> Path:
    run([str(cli), "medwasm", "new", name, "--template", template], cwd=workdir)
    project = workdir / name
    if model_dir is not None:
        run(
            [
                str(cli), "medwasm", "import", str(model_dir / "model.onnx"),
                "--inputs", str(model_dir / "inputs.npy"),
                "--expected", str(model_dir / "expected_onnx.npy"),
            ],
            cwd=project,
        )
    return project


def wasmtime_bench(cli: Path, project: Path, runs: int) -> tuple[dict, str]:
    """The `bench --json` report; a conformance failure still yields a report."""
    cmd = [str(cli), "medwasm", "bench", "--target", "wasmtime", "--json", "--runs", str(runs)]
    proc = run(cmd, cwd=project, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        raise RuntimeError(
            f"`{' '.join(cmd)}` (in {project}) exited with {proc.returncode} and printed no JSON report ({err}); stdout:\n{proc.stdout}"
        ) from None
    return report, " ".join(["cargo", "medwasm", *cmd[2:]])


# Machine facts


def machine() -> dict:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                cpu = value.strip()
                break
    except OSError:
        pass
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
                break
    except OSError:
        pass
    simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f") if f in flags]

    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "unknown"

    # `--no-optional-locks` keeps `git status` from refreshing (writing) the index.
    dirty = out(["git", "--no-optional-locks", "status", "--porcelain"])
    return {
        "cpu": cpu,
        "cpu_simd": simd,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "rustc": out(["rustc", "-V"]),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "commit": out(["git", "rev-parse", "HEAD"]) + (" (with uncommitted changes)" if dirty else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# Report


def us(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 1000:
        return f"{x:.1f} µs"
    return f"{x / 1000:.2f} ms"


def trio(t: dict) -> str:
    return f"{us(t['median_us'])} / {us(t['p95_us'])} / {us(t['p99_us'])}"


def kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB ({n} B)"


def markdown(results: list[dict], facts: dict, commands: list[str]) -> str:
    lines = []
    w = lambda s="": lines.append(s)  # noqa: E731
    runtimes = {r["wasmtime"]["runtime"] for r in results}
    w("Machine: " + f"{facts['cpu']} ({', '.join(facts['cpu_simd'])}), {facts['cores']} cores, {facts['os']}")
    w(f"Toolchain: {facts['rustc']}; {', '.join(sorted(runtimes))}; {results[0]['tract']['runtime']}; "
      f"{results[0]['ort']['runtime']}, numpy {facts['numpy']}")
    w(f"Commit: {facts['commit']}; date: {facts['date']}")
    w()
    w("Warm latency, one inference on the first stored vector, batch 1, median / p95 / p99:")
    w()
    w("| model | runs | medwasm on Wasmtime | onnxruntime, 1 thread | tract, native | Wasmtime ÷ ort | Wasmtime ÷ tract |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        wt = r["wasmtime"]["latency"]
        w(f"| `{r['name']}` | {wt['runs']} | {trio(wt)} | {trio(r['ort'])} | {trio(r['tract'])} "
          f"| {wt['median_us'] / r['ort']['median_us']:.2f}× | {wt['median_us'] / r['tract']['median_us']:.2f}× |")
    w()
    w("onnxruntime is timed from Python; an Identity model with the same input costs "
      + ", ".join(f"{us(r['ort']['python_floor_median_us'])} (`{r['name']}`)" for r in results)
      + " per call there, which is included above.")
    w()
    w("Start-up: compile (or load), instantiate, initialize and run once; median of 3:")
    w()
    w("| model | Wasmtime, no cache | Wasmtime, from cache | onnxruntime session + run | tract load + optimize + run |")
    w("|---|---:|---:|---:|---:|")
    for r in results:
        wt = r["wasmtime"]["latency"]
        w(f"| `{r['name']}` | {us(wt['cold_start_us'])} | {us(wt['cold_start_cached_us'])} "
          f"| {us(r['ort']['cold_start_us'])} | {us(r['tract'].get('cold_start_us'))} |")
    w()
    w("Detector (release build, after `wasm-opt -O3`):")
    w()
    w("| model | code | weights | total | arena | linear memory | conformance |")
    w("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        t = r["wasmtime"]
        s, m = t["size"], t["memory"]
        pages = m.get("wasm_pages")
        passed = sum(
            1 for v in t["vectors"]
            if v["error"] is None
            and any(v[k] is not None for k in ("vs_tract", "vs_expected"))
            and all(v[k]["pass"] for k in ("vs_tract", "vs_expected") if v[k] is not None)
        )
        w(f"| `{r['name']}` | {kib(s['code'])} | {kib(s['weights'])} | {kib(s['total'])} "
          f"| {kib(m['arena_bytes'])} | {'-' if pages is None else f'{pages} × 64 KiB'} "
          f"| {'PASS' if t['passed'] else 'FAIL'} {passed}/{len(t['vectors'])} |")
    w()
    w("Commands run:")
    w()
    w("```")
    lines.extend(commands)
    w("```")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="markdown report; the raw JSON goes beside it as .json")
    parser.add_argument("--runs", type=int, default=2000, help="warm runs for the small models [2000]")
    parser.add_argument("--runs-large", type=int, default=200, help="warm runs for ic_resnet8_fp32 [200]")
    parser.add_argument("--keep", action="store_true", help="keep the scaffolded detectors")
    args = parser.parse_args()

    models = Path(os.environ.get("MEDWASM_SHARED_MODELS", REPO / ".." / "shared" / "models")).resolve()
    if not (models / "ad01_fp32" / "model.onnx").exists():
        log(f"error: the shared reference models are not at `{models}`; set MEDWASM_SHARED_MODELS")
        return 2

    commands = []
    build = ["cargo", "build", "--release", "-p", "cargo-medwasm"]
    commands.append(" ".join(build))
    cli = cargo_build(["-p", "cargo-medwasm"])["cargo-medwasm"]
    commands.append("cargo build --release -p medwasm-conformance --bin native_bench")
    native = cargo_build(["-p", "medwasm-conformance", "--bin", "native_bench"])["native_bench"]

    facts = machine()
    work = Path(tempfile.mkdtemp(prefix="medwasm-compare-"))
    cases = [
        # (report name, template, model folder or None, warm runs)
        ("vitals-anomaly", "vitals-anomaly", None, args.runs),
        ("ad01_fp32", "blank", models / "ad01_fp32", args.runs),
        ("ic_resnet8_fp32", "blank", models / "ic_resnet8_fp32", args.runs_large),
    ]
    results = []
    try:
        for name, template, model_dir, runs in cases:
            log(f"== {name}")
            detector = name.replace("_", "-")
            project = scaffold(cli, work, detector, template, model_dir)
            commands.append(f"cargo medwasm new {detector} --template {template}")
            if model_dir is not None:
                rel = os.path.relpath(model_dir, REPO)
                commands.append(
                    f"(cd {detector} && cargo medwasm import {rel}/model.onnx "
                    f"--inputs {rel}/inputs.npy --expected {rel}/expected_onnx.npy)"
                )
            report, bench_cmd = wasmtime_bench(cli, project, runs)
            commands.append(f"(cd {detector} && {bench_cmd})")
            target = report["targets"][0]

            # The other runtimes run exactly the file and vector the detector was built from.
            manifest = json.loads((project / "model" / "manifest.json").read_text())
            onnx_model = project / "model" / manifest["source"]["file"]
            inputs = project / "vectors" / "inputs.npy"
            x = np.load(inputs)[:1].astype(np.float32)

            log(f"onnxruntime: {runs} warm runs of {onnx_model.name} on {list(x.shape)}")
            ort_result = ort_bench(onnx_model, x, runs)
            proc = run([str(native), str(onnx_model), str(inputs), str(runs)])
            tract_result = json.loads(proc.stdout)
            commands.append(f"native_bench {detector}/model/{onnx_model.name} {detector}/vectors/inputs.npy {runs}")

            results.append({
                "name": name,
                "model": str(model_dir / "model.onnx") if model_dir else f"template `{template}`",
                "wasmtime": target,
                "wasmtime_report": report,
                "ort": ort_result,
                "tract": tract_result,
            })
            log(f"   Wasmtime {trio(target['latency'])}; ort {trio(ort_result)}; tract {trio(tract_result)}")
    finally:
        if args.keep:
            log(f"detectors kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    text = markdown(results, facts, commands)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw = args.output.with_suffix(".json")
    raw.write_text(json.dumps({"machine": facts, "commands": commands, "results": results}, indent=2) + "\n")
    log(f"wrote {args.output} and {raw}")
    return 0 if all(r["wasmtime"]["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
