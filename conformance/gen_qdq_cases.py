#!/usr/bin/env python3
"""Generate the quantized-ONNX conformance cases in conformance/qdq/.

Each case is a small float ONNX model (one operator family, or a short
network) quantized by onnxruntime's own quantizer,
`onnxruntime.quantization.quantize_static`, with int8 activations and int8
weights (symmetric, onnxruntime's default), in the formats and granularities
that apply to it:

  qdq_pt   QuantFormat.QDQ, per-tensor weights
  qdq_pc   QuantFormat.QDQ, per-channel weights (models with weights only)
  qop_pt   QuantFormat.QOperator (QLinearConv, QLinearMatMul, com.microsoft
           QGemm / QLinearAdd / QLinearSigmoid / ...), per-tensor weights
  qop_pc   QuantFormat.QOperator, per-channel weights

Graph input and output stay float32: the quantizer puts a QuantizeLinear
after the input and a DequantizeLinear before the output.

For a case <name> = <base>_<flavour> it writes:

  <name>.onnx                  the quantized model
  <name>.inputs.npy            float32 [8, *input_shape]
  <name>.expected.npy          onnxruntime, CPU, 1 thread, default graph
                               optimizations: QDQ groups fused into its int8
                               kernels, which requantize in float (what users
                               of onnxruntime get)
  <name>.expected_literal.npy  onnxruntime with graph optimizations disabled:
                               DequantizeLinear, the float operator and
                               QuantizeLinear run one by one, as the ONNX
                               standard defines the graph

plus index.json and README.md. index.json gives, per case, the output's
quantization (the last DequantizeLinear's scale and zero point, so that
outputs compare in quantization steps) and how many steps onnxruntime's two
ways of running the same model differ by (`ort_fused_vs_literal`): the
spread inherent in running a quantized ONNX model at all.

Weights come from np.random.default_rng(zlib.crc32(base)), calibration data
(16 samples, uniform in the input range) from crc32(base + "/calibration"),
the test samples (8, 1.2x the range, so that some saturate) from
crc32(base + "/inputs"). Running the script twice gives byte-identical files.

Usage (from anywhere, a few seconds):
    python3 conformance/gen_qdq_cases.py [--out DIR]
Needs numpy, onnx and onnxruntime (with onnxruntime.quantization); not run in
CI: the generated files are committed.
"""

import os

# One BLAS/OpenMP thread: deterministic float sums and no contention.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import logging
import pathlib
import sys
import tempfile
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

OUT = pathlib.Path(__file__).resolve().parent / "qdq"
OPSET = 13
IR_VERSION = 8
SAMPLES = 8
CALIBRATION = 16

# The quantizer logs advice ("consider pre-processing", "use QDQ for QInt8 on
# x64") that does not apply to these tiny models.
logging.getLogger().setLevel(logging.ERROR)


def rng(*parts):
    return np.random.default_rng(zlib.crc32("/".join(parts).encode()))


class Net:
    """A float model under construction: one input `x`, one output `y`."""

    def __init__(self, base, shape):
        self.base = base
        self.shape = list(shape)
        self.rng = rng(base)
        self.nodes = []
        self.inits = []

    def const(self, name, value, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, shape, fan_in):
        """Uniform weights scaled by 1/sqrt(fan_in): outputs stay O(1)."""
        b = 1.0 / np.sqrt(fan_in)
        return self.const(f"w{len(self.inits)}", self.rng.uniform(-b, b, shape))

    def bias(self, n):
        return self.const(f"b{len(self.inits)}", self.rng.uniform(-0.3, 0.3, [n]))

    def node(self, op, inputs, out=None, **attrs):
        out = out or f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}_{len(self.nodes)}", **attrs))
        return out

    def conv(self, x, cin, cout, k, group=1, bias=True, out=None, **attrs):
        w = self.weight([cout, cin // group, k, k], cin // group * k * k)
        ins = [x, w] + ([self.bias(cout)] if bias else [])
        if group != 1:
            attrs["group"] = group
        return self.node("Conv", ins, out, **attrs)

    def model(self):
        graph = helper.make_graph(
            self.nodes,
            self.base,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, self.shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            initializer=self.inits,
        )
        m = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="cargo-medwasm conformance/gen_qdq_cases.py",
            producer_version="1",
        )
        m.ir_version = IR_VERSION
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
        return m


CASES = []


def case(base, shape, weights, note=""):
    """Register a float model; `weights` says whether per-channel applies."""

    def register(fn):
        CASES.append((base, shape, weights, note, fn))
        return fn

    return register


@case("conv_relu", [1, 3, 8, 8], True)
def _(n):
    n.node("Relu", [n.conv("x", 3, 8, 3, pads=[1, 1, 1, 1])], "y")


@case("conv_s2_relu6", [1, 4, 9, 9], True, "TF-style SAME padding, the odd one at the end")
def _(n):
    c = n.conv("x", 4, 6, 3, strides=[2, 2], pads=[0, 0, 1, 1])
    n.node("Clip", [c, n.const("lo", 0.0), n.const("hi", 6.0)], "y")


@case("depthwise", [1, 6, 8, 8], True, "group = channels: the int8 depthwise kernel")
def _(n):
    n.node("Relu", [n.conv("x", 6, 6, 3, group=6, bias=True, pads=[1, 1, 1, 1])], "y")


@case("depthwise_m2_nobias", [1, 4, 7, 7], True, "depth multiplier 2, no bias")
def _(n):
    n.conv("x", 4, 8, 3, group=4, bias=False, out="y", pads=[1, 1, 1, 1])


@case("matmul_add", [1, 16], True, "MatMul then Add of a bias")
def _(n):
    m = n.node("MatMul", ["x", n.weight([16, 10], 16)])
    n.node("Add", [m, n.bias(10)], "y")


@case("gemm_relu", [1, 16], True)
def _(n):
    g = n.node("Gemm", ["x", n.weight([10, 16], 16), n.bias(10)], transB=1)
    n.node("Relu", [g], "y")


@case("add_mul", [1, 4, 6, 6], False, "two run-time operands")
def _(n):
    r = n.node("Relu", ["x"])
    a = n.node("Add", ["x", r])
    n.node("Mul", [a, "x"], "y")


@case("maxpool", [1, 4, 8, 8], True)
def _(n):
    c = n.conv("x", 4, 4, 3, pads=[1, 1, 1, 1])
    n.node("MaxPool", [c], "y", kernel_shape=[2, 2], strides=[2, 2])


@case("avgpool", [1, 4, 9, 9], True, "padding excluded from the average")
def _(n):
    c = n.conv("x", 4, 4, 3, pads=[1, 1, 1, 1])
    n.node("AveragePool", [c], "y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])


@case("global_avgpool", [1, 6, 7, 5], True)
def _(n):
    c = n.conv("x", 6, 8, 3, pads=[1, 1, 1, 1])
    g = n.node("GlobalAveragePool", [c])
    n.node("Flatten", [g], "y")


@case("softmax", [1, 16], True)
def _(n):
    g = n.node("Gemm", ["x", n.weight([10, 16], 16), n.bias(10)], transB=1)
    # Logits of a few units, so that the probabilities spread.
    s = n.node("Mul", [g, n.const("k", 3.0)])
    n.node("Softmax", [s], "y", axis=-1)


@case("sigmoid", [1, 16], True)
def _(n):
    g = n.node("Gemm", ["x", n.weight([12, 16], 16), n.bias(12)], transB=1)
    n.node("Sigmoid", [g], "y")


@case("concat", [1, 3, 6, 6], True, "parts quantized differently")
def _(n):
    a = n.conv("x", 3, 4, 3, pads=[1, 1, 1, 1])
    b = n.conv("x", 3, 2, 1)
    n.node("Concat", [a, n.node("Relu", [b])], "y", axis=1)


@case("movers", [1, 4, 5, 5], True, "Transpose and Reshape between quantized operators")
def _(n):
    c = n.conv("x", 4, 3, 3, pads=[1, 1, 1, 1])
    t = n.node("Transpose", [c], perm=[0, 2, 3, 1])
    r = n.node("Reshape", [t, n.const("shape", [1, -1], np.int64)])
    n.node("Gemm", [r, n.weight([6, 75], 75), n.bias(6)], "y", transB=1)


@case("tiny_cnn", [1, 3, 12, 12], True, "a small classifier end to end")
def _(n):
    c = n.node("Relu", [n.conv("x", 3, 8, 3, pads=[1, 1, 1, 1])])
    p = n.node("MaxPool", [c], kernel_shape=[2, 2], strides=[2, 2])
    d = n.node("Relu", [n.conv(p, 8, 8, 3, group=8, pads=[1, 1, 1, 1])])
    e = n.node("Relu", [n.conv(d, 8, 16, 1)])
    g = n.node("Flatten", [n.node("GlobalAveragePool", [e])])
    f = n.node("Gemm", [g, n.weight([5, 16], 16), n.bias(5)], transB=1)
    n.node("Softmax", [f], "y", axis=-1)


FLAVOURS = [
    ("qdq_pt", QuantFormat.QDQ, False),
    ("qdq_pc", QuantFormat.QDQ, True),
    ("qop_pt", QuantFormat.QOperator, False),
    ("qop_pc", QuantFormat.QOperator, True),
]


class Reader(CalibrationDataReader):
    def __init__(self, samples):
        self.samples = list(samples)

    def get_next(self):
        return {"x": self.samples.pop(0)} if self.samples else None


def session(model_bytes, optimize):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def output_quant(model):
    """Scale and zero point of the DequantizeLinear that writes `y`."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    (dq,) = [n for n in model.graph.node if list(n.output) == ["y"]]
    assert dq.op_type == "DequantizeLinear", dq.op_type
    scale = inits[dq.input[1]].reshape(-1)
    zp = inits[dq.input[2]].reshape(-1)
    assert scale.size == 1 and zp.size == 1 and zp.dtype == np.int8, (scale, zp)
    return float(scale[0]), int(zp[0])


def steps(a, b, scale):
    return int(np.max(np.rint(np.abs(a.astype(np.float64) - b.astype(np.float64)) / scale)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    index = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for base, shape, weights, note, fn in CASES:
            net = Net(base, shape)
            fn(net)
            float_model = net.model()
            float_path = tmp / f"{base}.float.onnx"
            onnx.save(float_model, float_path)
            cal = rng(base, "calibration").uniform(-1.0, 1.0, [CALIBRATION] + shape).astype(np.float32)
            x = rng(base, "inputs").uniform(-1.2, 1.2, [SAMPLES] + shape).astype(np.float32)
            float_sess = session(float_model.SerializeToString(), False)
            for flavour, fmt, per_channel in FLAVOURS:
                if per_channel and not weights:
                    continue
                name = f"{base}_{flavour}"
                q_path = tmp / f"{name}.onnx"
                quantize_static(
                    str(float_path),
                    str(q_path),
                    Reader(cal),
                    quant_format=fmt,
                    per_channel=per_channel,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                )
                model = onnx.load(q_path)
                model_bytes = model.SerializeToString()
                fused, literal = session(model_bytes, True), session(model_bytes, False)
                ys = np.stack([fused.run(["y"], {"x": s})[0] for s in x]).astype(np.float32)
                ys_lit = np.stack([literal.run(["y"], {"x": s})[0] for s in x]).astype(np.float32)
                yf = np.stack([float_sess.run(["y"], {"x": s})[0] for s in x]).astype(np.float32)
                scale, zp = output_quant(model)
                (out / f"{name}.onnx").write_bytes(model_bytes)
                np.save(out / f"{name}.inputs.npy", np.ascontiguousarray(x))
                np.save(out / f"{name}.expected.npy", np.ascontiguousarray(ys))
                np.save(out / f"{name}.expected_literal.npy", np.ascontiguousarray(ys_lit))
                entry = {
                    "name": name,
                    "base": base,
                    "format": "qdq" if fmt == QuantFormat.QDQ else "qoperator",
                    "per_channel": per_channel,
                    "ops": [n.op_type for n in model.graph.node],
                    "input_shape": shape,
                    "output_shape": list(ys.shape[1:]),
                    "output_quant": {"scale": scale, "zero_point": zp},
                    "ort_fused_vs_literal": {
                        "max_steps": steps(ys, ys_lit, scale),
                        "differing": int(np.count_nonzero(ys != ys_lit)),
                    },
                    "vs_float_steps": round(float(np.max(np.abs(ys.astype(np.float64) - yf) / scale)), 3),
                }
                if note:
                    entry["note"] = note
                index.append(entry)
                print(f"{name:32s} {str(shape):16s} -> {str(list(ys.shape[1:])):10s} "
                      f"fused vs literal: {entry['ort_fused_vs_literal']['max_steps']} steps "
                      f"({entry['ort_fused_vs_literal']['differing']} values)")
    versions = {"onnx": onnx.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__,
                "python": ".".join(map(str, sys.version_info[:3]))}
    (out / "index.json").write_text(
        "{\n \"versions\": " + json.dumps(versions) + ",\n \"cases\": [\n"
        + ",\n".join("  " + json.dumps(e) for e in index) + "\n ]\n}\n"
    )
    (out / "README.md").write_text(readme(index, versions))
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(index)} cases, {total} bytes in {out}")


def readme(index, versions):
    rows = "\n".join(
        f"| `{e['name']}` | {e['format']} | {'per channel' if e['per_channel'] else 'per tensor'} | "
        f"{', '.join(sorted(set(e['ops'])))} | {e['ort_fused_vs_literal']['max_steps']} |"
        for e in index
    )
    return f"""# Quantized ONNX conformance cases

Generated by `python3 conformance/gen_qdq_cases.py` with onnx {versions['onnx']},
onnxruntime {versions['onnxruntime']} and numpy {versions['numpy']}. Do not edit by hand:
change the script and rerun it (the output is byte-for-byte reproducible).

Small float models quantized by onnxruntime's `quantize_static` (int8
activations, symmetric int8 weights) in the QDQ and QOperator formats, per
tensor and per channel; float32 graph input and output. For each case
`<name>`:

- `<name>.onnx`: the quantized model;
- `<name>.inputs.npy`: float32 `[8, *input_shape]`;
- `<name>.expected.npy`: onnxruntime (CPU, 1 thread, default optimizations: its
  fused int8 kernels);
- `<name>.expected_literal.npy`: onnxruntime with optimizations disabled (each
  DequantizeLinear, float operator and QuantizeLinear on its own, the ONNX
  standard's reading of the graph).

There is no bit-exact oracle for these models: cargo-medwasm runs them on
TFLite's integer kernels, which round differently (docs/ops.md, "Quantized
ONNX"), and onnxruntime's two ways of running them already disagree by the
steps in the last column. `index.json` holds each case's output quantization
(`output_quant`) so that outputs compare in quantization steps.

| case | format | weights | operators | onnxruntime fused vs literal (steps) |
|---|---|---|---|---|
{rows}
"""


if __name__ == "__main__":
    main()
