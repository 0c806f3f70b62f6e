#!/usr/bin/env python3
"""int8 against f32 of the same model, on every target, in one run.

For each MLPerf Tiny model pair in the shared models (`ad01`, `kws`, `ic_resnet8`,
float and int8), scaffolds a detector with the release `cargo-medwasm`, imports the
model's `.tflite` (or, with `--source onnx`, its `.onnx`) with its stored inputs and
reference outputs, and
runs `cargo medwasm bench --target all --json`: the embedded Wasmtime, headless
Chromium, Node.js and the Cortex-M4 board in QEMU (instructions, not cycles). The
report puts each int8 model beside its float one per target, with the ratio, the
conformance result, code and weight sizes and the M4's memory report, and says on
which machine it ran. Optionally `--io int8` adds a row per int8 model imported with
int8 inputs and outputs.

Usage (paths relative to the repository root):

    export CARGO_TARGET_DIR=$HOME/.cache/medwasm-target   # optional
    python3 conformance/bench/targets.py docs/bench/targets.md [--runs 200] [--io-int8] [--source onnx]

The shared models are read from `$MEDWASM_SHARED_MODELS`, else `../shared/models`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
from pathlib import Path

from compare import RELEASE_BUILD, cargo_build, log, run

REPO = Path(__file__).resolve().parents[2]
PAIRS = [("ad01_fp32", "ad01_int8"), ("kws_float32", "kws_int8"), ("ic_resnet8_fp32", "ic_resnet8_int8")]
TARGETS = ["wasmtime", "browser", "node", "mcu"]


def release_cli() -> Path:
    """The release CLI, from compare.py's one build (which the two scripts share)."""
    return cargo_build(RELEASE_BUILD)["cargo-medwasm"]


def shared_models() -> Path:
    env = os.environ.get("MEDWASM_SHARED_MODELS")
    path = Path(env) if env else REPO.parent / "shared" / "models"
    if not path.is_dir():
        raise SystemExit(f"error: no shared models at `{path}`: set MEDWASM_SHARED_MODELS")
    return path


def bench(cli: Path, work: Path, model: str, runs: int, io: str, source: str) -> dict:
    models = shared_models() / model
    name = f"{model.replace('_', '-')}-{source}-{io}"
    run([cli, "medwasm", "new", name, "--template", "blank"], cwd=work)
    project = work / name
    # The reference outputs: LiteRT's reference kernels for every `.tflite` and for
    # tf2onnx's int8 `.onnx` (bit-exact is the bar), onnxruntime's for a float `.onnx`.
    expected = "expected_onnx.npy" if source == "onnx" and "int8" not in model else "expected_tflite_ref.npy"
    args = [cli, "medwasm", "import", models / f"model.{source}", "--inputs", models / "inputs.npy",
            "--expected", models / expected]
    if io == "int8":
        args += ["--io", "int8"]
    run(args, cwd=project)
    report = json.loads(run([cli, "medwasm", "bench", "--target", "all", "--json", "--runs", str(runs)], cwd=project).stdout)
    manifest = json.loads((project / "model" / "manifest.json").read_text())
    memory = {}
    for f in Path(os.environ.get("CARGO_TARGET_DIR", project / "target")).glob(f"medwasm/mcu/qemu-mps2-an386/{name}/memory.json"):
        memory = json.loads(f.read_text())
    return {"model": model, "io": io, "source": source, "expected": expected, "macs": manifest["macs"],
            "report": report, "memory": memory}


def row_figures(entry: dict) -> dict:
    out = {}
    for t in entry["report"]["targets"]:
        lat = t.get("latency") or {}
        out[t["target"]] = {
            "passed": t.get("passed"),
            "median_us": lat.get("median_us"),
            "p95_us": lat.get("p95_us"),
            "instructions": lat.get("instructions") or (t.get("device") or {}).get("instructions"),
            "per_mac": (t.get("device") or {}).get("instructions_per_mac"),
            "code": (t.get("size") or {}).get("code"),
            "weights": (t.get("size") or {}).get("weights"),
        }
    return out


def fmt_time(f: dict) -> str:
    if f.get("median_us") is not None:
        return f"{f['median_us']:.1f} µs"
    if f.get("instructions") is not None:
        return f"{f['instructions'] / 1e6:.2f} M instr"
    return "–"


def value(f: dict) -> float | None:
    return f.get("median_us") if f.get("median_us") is not None else f.get("instructions")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="markdown report to write; the raw JSON goes beside it")
    ap.add_argument("--runs", type=int, default=200, help="warm runs per target (default 200)")
    ap.add_argument("--io-int8", action="store_true", help="also bench each int8 model imported with `--io int8`")
    ap.add_argument("--source", choices=["tflite", "onnx"], default="tflite", help="which file of each model to import")
    args = ap.parse_args()
    cli = release_cli()
    load_before = os.getloadavg()
    entries = []
    with tempfile.TemporaryDirectory(prefix="medwasm-targets-") as tmp:
        for f32, i8 in PAIRS:
            entries.append(bench(cli, Path(tmp), f32, args.runs, "f32", args.source))
            entries.append(bench(cli, Path(tmp), i8, args.runs, "f32", args.source))
            if args.io_int8:
                entries.append(bench(cli, Path(tmp), i8, args.runs, "int8", args.source))
    load_after = os.getloadavg()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), platform.processor())
    commit = run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO).stdout.strip()
    lines = [
        f"Measured {datetime.date.today()} at commit `{commit}` on {cpu}, {os.cpu_count()} cores, "
        f"Linux {platform.release()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after. "
        f"`python3 conformance/bench/targets.py {args.out} --runs {args.runs} --source {args.source}{' --io-int8' if args.io_int8 else ''}`: "
        f"each model's `model.{args.source}` imported with its `inputs.npy` and reference outputs (LiteRT's reference kernels' "
        "`expected_tflite_ref.npy`, bit-exact for int8; onnxruntime's `expected_onnx.npy` for a float `.onnx`); "
        f"release CLI, `bench --target all --json --runs {args.runs}` per model; warm median per target "
        "(Wasmtime, Chromium, Node) and exact instructions per inference on the Cortex-M4 board in QEMU "
        "(`qemu-mps2-an386`, instructions, not cycles). Ratio: int8 ÷ f32 of the same model (below 1: int8 is faster).",
        "",
        "| model | I/O | " + " | ".join(TARGETS) + " | M4 instr/MAC | wasm code | weights | all conform |",
        "|---|---|" + "---:|" * len(TARGETS) + "---:|---:|---:|---|",
    ]
    by_model = {(e["model"], e["io"]): row_figures(e) for e in entries}
    for e in entries:
        figs = by_model[(e["model"], e["io"])]
        cells = []
        for t in TARGETS:
            f = figs.get(t, {})
            cell = fmt_time(f)
            pair = next((p for p in PAIRS if p[1] == e["model"]), None)
            if pair:
                base = by_model.get((pair[0], "f32"), {}).get(t, {})
                if value(f) and value(base):
                    cell += f" ({value(f) / value(base):.2f}×)"
            cells.append(cell)
        m4 = figs.get("mcu", {})
        wt = figs.get("wasmtime", {})
        conform = all(f.get("passed") for f in figs.values())
        lines.append(
            f"| {e['model']} | {e['io']} | " + " | ".join(cells)
            + f" | {m4.get('per_mac') or 0:.2f} | {(wt.get('code') or 0) / 1024:.1f} KiB | {(wt.get('weights') or 0) / 1024:.1f} KiB | {'yes' if conform else '**no**'} |"
        )
    lines.append("")
    lines.append("Memory on the Cortex-M4 board (the build's report of the linked firmware):")
    lines.append("")
    lines.append("| model | I/O | code | weights | constants | flash (code + weights + constants) | arena | statics | RAM (arena + statics) |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    kib = lambda b: f"{b / 1024:.1f} KiB"  # noqa: E731
    for e in entries:
        m = e["memory"]
        if not m:
            raise SystemExit(f"error: no memory report for {e['model']} ({e['io']}); was the mcu target built?")
        lines.append(
            f"| {e['model']} | {e['io']} | {kib(m['code'])} | {kib(m['weights'])} | {kib(m['constants'])} | "
            f"{kib(m['code'] + m['weights'] + m['constants'])} | {kib(m['arena'])} | {kib(m['statics'])} | "
            f"{kib(m['arena'] + m['statics'])} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(entries, indent=1) + "\n")
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
