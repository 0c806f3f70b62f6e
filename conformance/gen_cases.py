#!/usr/bin/env python3
"""Generate the operator conformance cases in conformance/cases/.

Each case is a tiny ONNX model (one or a few nodes) exercising one operator
or attribute combination of the medwasm runtime, with seeded random inputs
and golden outputs from onnxruntime. For a case <name> it writes:

  <name>.onnx           one graph input `x`, one graph output `y`; all weights
                        and parameters are initializers (constants)
  <name>.inputs.npy     float32 [2, *input_shape]: two samples, batch 1 each
  <name>.expected.npy   float32 [2, *output_shape]: onnxruntime CPU output,
                        one thread, one sample per run

plus index.json (machine-readable list of the cases) and README.md.

Every case draws its numbers from np.random.default_rng(crc32(name)), so
cases are independent of each other and of their order, and running the
script twice gives byte-identical files. As a cross-check of the goldens,
every onnxruntime output is compared with onnx's pure-Python reference
implementation (onnx.reference); a disagreement stops the script.

Usage (from anywhere):
    python3 conformance/gen_cases.py
Needs numpy, onnx and onnxruntime.
"""

import os

# One BLAS/OpenMP thread: deterministic float sums and no contention with
# other work on the machine.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import json
import pathlib
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

OUT = pathlib.Path(__file__).resolve().parent / "cases"
IR_VERSION = 8  # readable by every onnxruntime since 1.10 and by tract
SAMPLES = 2


class BatchNormalization(OpRun):
    """Inference-mode BatchNormalization for the onnx.reference cross-check.

    onnx.reference (1.23) BatchNormalization-9 fills in the schema default
    momentum=0.9 and then takes its "momentum is set" branch, normalizing with
    statistics of the batch itself (training behaviour), so its answers are
    wrong for these inference models. This override uses the running mean
    and variance as the operator specifies for inference.
    """

    op_domain = ""

    def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None, training_mode=None):
        sh = (-1,) + (1,) * (x.ndim - 2)
        y = scale.reshape(sh) * (x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + epsilon)
        return ((y + bias.reshape(sh)).astype(x.dtype),)


class Case:
    """Builder for one single-input, single-output model.

    The graph input is always `x` and the output `y`; builders chain nodes
    with `node()` and add constants with `const()`/`weight()`. Node names are
    <op>_<index> so that error messages of the converter are predictable.
    """

    def __init__(self, name, opset, input_shape, expect, input_range, declared_shape):
        self.name = name
        self.opset = opset
        self.input_shape = list(input_shape)  # concrete shape of one sample
        self.declared_shape = declared_shape or self.input_shape
        self.expect = expect
        self.input_range = input_range
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.nodes = []
        self.inits = []

    def const(self, name, value, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, name, shape, lo=-1.0, hi=1.0):
        return self.const(name, self.rng.uniform(lo, hi, shape))

    def fan_in_weight(self, name, shape, fan_in):
        """Uniform weights scaled by 1/sqrt(fan_in): keeps outputs O(1) so
        that absolute and relative tolerances both make sense."""
        b = 1.0 / np.sqrt(fan_in)
        return self.weight(name, shape, -b, b)

    def node(self, op, inputs, output=None, **attrs):
        idx = len(self.nodes)
        output = output or f"t{idx}"
        self.nodes.append(
            helper.make_node(op, inputs, [output], name=f"{op.lower()}_{idx}", **attrs)
        )
        return output


CASES = []


def case(name, input_shape, opset=13, expect="pass", input_range=(-2.0, 2.0), declared_shape=None,
         reference=None):
    """Register a builder function: it gets a Case and adds nodes ending in `y`.

    `reference` (x -> y in numpy) replaces onnx.reference for the cross-check
    where that implementation is known to be wrong.
    """

    def register(fn):
        CASES.append((fn, dict(name=name, opset=opset, input_shape=input_shape, expect=expect,
                               input_range=input_range, declared_shape=declared_shape),
                      reference))
        return fn

    return register


# ---------------------------------------------------------------------------
# Gemm / MatMul
# ---------------------------------------------------------------------------

@case("gemm_transb", [1, 20])
def _(c):
    c.node("Gemm", ["x", c.fan_in_weight("B", [12, 20], 20), c.weight("C", [12])], "y",
           alpha=1.0, beta=1.0, transB=1)


@case("gemm_notrans", [1, 20])
def _(c):
    c.node("Gemm", ["x", c.fan_in_weight("B", [20, 12], 20), c.weight("C", [1, 12])], "y")


@case("gemm_alpha_beta", [1, 20])
def _(c):
    c.node("Gemm", ["x", c.fan_in_weight("B", [12, 20], 20), c.weight("C", [12])], "y",
           alpha=0.5, beta=2.0, transB=1)


@case("matmul_2d", [1, 20])
def _(c):
    c.node("MatMul", ["x", c.fan_in_weight("W", [20, 7], 20)], "y")


@case("matmul_3d_batch", [1, 4, 6])
def _(c):
    c.node("MatMul", ["x", c.fan_in_weight("W", [6, 5], 6)], "y")


# ---------------------------------------------------------------------------
# Broadcasting binary ops
# ---------------------------------------------------------------------------

@case("add_bcast", [1, 3, 4, 5])
def _(c):
    c.node("Add", ["x", c.weight("c", [3, 1, 1])], "y")


@case("sub_bcast", [1, 3, 4, 5])
def _(c):
    c.node("Sub", ["x", c.weight("c", [5])], "y")


@case("mul_bcast", [1, 3, 4, 5])
def _(c):
    # Constant FIRST: the runtime must not assume the activation is operand A.
    c.node("Mul", [c.weight("c", [1, 1, 4, 1]), "x"], "y")


@case("div_bcast", [1, 3, 4, 5])
def _(c):
    # Divisor kept in [0.5, 2]: away from 0 so the golden is well conditioned.
    c.node("Div", ["x", c.weight("c", [3, 1, 1], 0.5, 2.0)], "y")


@case("add_two_inputs_same", [1, 3, 4, 5])
def _(c):
    # Both operands are activations, one of them the graph input used twice.
    r = c.node("Relu", ["x"])
    c.node("Add", ["x", r], "y")


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

@case("relu", [1, 2, 8, 8])
def _(c):
    c.node("Relu", ["x"], "y")


@case("leaky_relu", [1, 2, 8, 8])
def _(c):
    c.node("LeakyRelu", ["x"], "y", alpha=0.1)


@case("sigmoid", [1, 64], input_range=(-8.0, 8.0))  # wide: reach both saturated tails
def _(c):
    c.node("Sigmoid", ["x"], "y")


@case("tanh", [1, 64], input_range=(-5.0, 5.0))
def _(c):
    c.node("Tanh", ["x"], "y")


@case("clip_6", [1, 2, 8, 8], input_range=(-3.0, 9.0))  # both bounds active
def _(c):
    c.node("Clip", ["x", c.const("min", 0.0), c.const("max", 6.0)], "y")


@case("clip_opset6", [1, 2, 8, 8], opset=6)
def _(c):
    c.node("Clip", ["x"], "y", min=-1.0, max=1.0)


@case("softmax_last", [1, 3, 10], input_range=(-4.0, 4.0))
def _(c):
    c.node("Softmax", ["x"], "y", axis=-1)


@case("softmax_axis1", [1, 5, 4], input_range=(-4.0, 4.0))
def _(c):
    c.node("Softmax", ["x"], "y", axis=1)


def softmax_coerced_2d(x, axis=1):
    """Softmax-1/11 semantics in numpy: flatten to [prod(:axis), prod(axis:)]."""
    f = x.reshape(int(np.prod(x.shape[:axis])), -1).astype(np.float64)
    e = np.exp(f - f.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)


# onnx.reference (1.23) applies opset-13 per-axis semantics to every Softmax
# version, so its answer is wrong here; check against numpy instead.
@case("softmax_opset11", [1, 3, 4], opset=11, input_range=(-4.0, 4.0), reference=softmax_coerced_2d)
def _(c):
    # Opset < 13: input coerced to 2D [1, 3*4]; softmax runs over all 12 values,
    # unlike opset 13 axis=1 which would normalize each of the 4 columns.
    c.node("Softmax", ["x"], "y", axis=1)


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------

def conv(c, w_shape, group=1, bias=True, out="y", inp="x", **attrs):
    cin_per_group, k = w_shape[1], int(np.prod(w_shape[2:]))
    inputs = [inp, c.fan_in_weight(f"W{len(c.nodes)}", w_shape, cin_per_group * k)]
    if bias:
        inputs.append(c.weight(f"b{len(c.nodes)}", [w_shape[0]], -0.5, 0.5))
    if group != 1:
        attrs["group"] = group
    return c.node("Conv", inputs, out, **attrs)


@case("conv1d", [1, 3, 32])
def _(c):
    conv(c, [8, 3, 5], strides=[2], pads=[2, 2])


@case("conv2d_basic", [1, 3, 16, 16])
def _(c):
    conv(c, [8, 3, 3, 3], pads=[1, 1, 1, 1])


@case("conv2d_stride_dilation", [1, 3, 16, 16])
def _(c):
    conv(c, [4, 3, 3, 3], strides=[2, 1], dilations=[2, 2], pads=[2, 1, 2, 1])


@case("conv2d_same_upper", [1, 4, 15, 16])
def _(c):
    # Height 15: total pad 2 (1 + 1). Width 16: total pad 1, which SAME_UPPER
    # puts at the END; a square 15x15 input would pad symmetrically and not
    # tell SAME_UPPER from SAME_LOWER.
    conv(c, [6, 4, 3, 3], strides=[2, 2], auto_pad="SAME_UPPER")


@case("conv2d_same_lower", [1, 3, 9, 9])
def _(c):
    # Kernel 4, stride 1: total pad 3, SAME_LOWER puts 2 at the start, 1 at the end.
    conv(c, [4, 3, 4, 4], auto_pad="SAME_LOWER")


@case("conv2d_valid", [1, 3, 11, 11])
def _(c):
    conv(c, [4, 3, 3, 3], strides=[2, 2], auto_pad="VALID")


@case("conv2d_groups", [1, 4, 10, 10])
def _(c):
    conv(c, [6, 2, 3, 3], group=2)


@case("conv2d_depthwise", [1, 8, 12, 12])
def _(c):
    conv(c, [8, 1, 3, 3], group=8, pads=[1, 1, 1, 1])


@case("conv2d_depthwise_mult", [1, 4, 10, 10])
def _(c):
    # group == C_in == 4, 8 output channels: channel multiplier 2.
    conv(c, [8, 1, 3, 3], group=4, pads=[1, 1, 1, 1])


@case("conv2d_nobias", [1, 3, 8, 8])
def _(c):
    conv(c, [5, 3, 3, 3], bias=False)


@case("conv2d_1x1", [1, 6, 8, 8])
def _(c):
    conv(c, [4, 6, 1, 1])


@case("conv2d_asym_pads", [1, 3, 8, 8])
def _(c):
    # Explicit asymmetric pads as TF-exported "SAME" convolutions carry.
    conv(c, [4, 3, 3, 3], strides=[2, 2], pads=[0, 0, 1, 1])


# ---------------------------------------------------------------------------
# BatchNormalization
# ---------------------------------------------------------------------------

def batchnorm(c, channels, inp, out="y"):
    i = len(c.nodes)
    return c.node(
        "BatchNormalization",
        [
            inp,
            c.weight(f"bn{i}_scale", [channels], 0.5, 1.5),
            c.weight(f"bn{i}_bias", [channels], -0.5, 0.5),
            c.weight(f"bn{i}_mean", [channels], -0.5, 0.5),
            c.weight(f"bn{i}_var", [channels], 0.5, 2.0),
        ],
        out,
        epsilon=1e-3,
    )


@case("conv_bn_relu", [1, 3, 8, 8])
def _(c):
    t = conv(c, [6, 3, 3, 3], out=None, pads=[1, 1, 1, 1])
    t = batchnorm(c, 6, t, out=None)
    c.node("Relu", [t], "y")


@case("gemm_bn", [1, 20])
def _(c):
    t = c.node("Gemm", ["x", c.fan_in_weight("B", [10, 20], 20), c.weight("C", [10])], transB=1)
    batchnorm(c, 10, t)


@case("matmul3d_bn", [1, 4, 3])
def _(c):
    # BatchNormalization scales axis 1 (4 channels); the MatMul's columns are on
    # axis 2 and, here, also 4 wide: folding the BatchNorm into the weights would
    # scale the wrong axis, so the converter must lower it instead.
    t = c.node("MatMul", ["x", c.fan_in_weight("W", [3, 4], 3)])
    batchnorm(c, 4, t)


@case("bn_alone", [1, 4, 6, 6])
def _(c):
    batchnorm(c, 4, "x")


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------

@case("maxpool_2d", [1, 3, 10, 10])
def _(c):
    c.node("MaxPool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])


@case("maxpool_ceil", [1, 2, 10, 10])
def _(c):
    # floor((10-3)/2)+1 = 4, ceil gives 5: the last window hangs over the edge.
    c.node("MaxPool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)


@case("maxpool_1d", [1, 4, 20])
def _(c):
    c.node("MaxPool", ["x"], "y", kernel_shape=[3], strides=[2], pads=[1, 1])


@case("maxpool_dilation", [1, 2, 10, 10])
def _(c):
    c.node("MaxPool", ["x"], "y", kernel_shape=[3, 3], dilations=[2, 2])


@case("avgpool_2d", [1, 3, 8, 8])
def _(c):
    c.node("AveragePool", ["x"], "y", kernel_shape=[2, 2], strides=[2, 2])


@case("avgpool_pads_exclude", [1, 2, 9, 9])
def _(c):
    c.node("AveragePool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
           count_include_pad=0)


@case("avgpool_pads_include", [1, 2, 9, 9])
def _(c):
    c.node("AveragePool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
           count_include_pad=1)


@case("avgpool_ceil", [1, 2, 10, 10])
def _(c):
    c.node("AveragePool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)


@case("global_avgpool", [1, 6, 7, 5])
def _(c):
    c.node("GlobalAveragePool", ["x"], "y")


# ---------------------------------------------------------------------------
# Shape ops (followed by Relu where the op alone would be a pure no-op copy)
# ---------------------------------------------------------------------------

def shape_const(c, name, values):
    return c.const(name, values, dtype=np.int64)


@case("flatten_axis2", [1, 2, 3, 4])
def _(c):
    c.node("Relu", [c.node("Flatten", ["x"], axis=2)], "y")  # -> [2, 12]


@case("reshape_minus1", [1, 2, 3, 4])
def _(c):
    c.node("Relu", [c.node("Reshape", ["x", shape_const(c, "shape", [1, -1, 4])])], "y")


@case("reshape_zero", [1, 2, 3, 4], opset=14)
def _(c):
    # allowzero only exists from Reshape-14; it is set explicitly to 0 here
    # ("0 copies the input dim"), so this case needs opset 14.
    c.node("Relu", [c.node("Reshape", ["x", shape_const(c, "shape", [0, 6, -1])], allowzero=0)], "y")


@case("squeeze_13", [1, 3, 1, 4])
def _(c):
    c.node("Squeeze", ["x", shape_const(c, "axes", [2])], "y")


@case("unsqueeze_13", [3, 4])
def _(c):
    c.node("Unsqueeze", ["x", shape_const(c, "axes", [0, 3])], "y")  # -> [1, 3, 4, 1]


@case("squeeze_11", [1, 3, 1, 4], opset=11)
def _(c):
    c.node("Squeeze", ["x"], "y", axes=[2])


@case("transpose_nhwc_nchw", [1, 8, 6, 3])
def _(c):
    c.node("Transpose", ["x"], "y", perm=[0, 3, 1, 2])


@case("transpose_3d", [1, 4, 6])
def _(c):
    c.node("Transpose", ["x"], "y", perm=[0, 2, 1])


@case("concat_axis1", [1, 3, 4, 4])
def _(c):
    r = c.node("Relu", ["x"])
    c.node("Concat", ["x", r, c.weight("k", [1, 2, 4, 4])], "y", axis=1)


@case("concat_neg_axis", [1, 3, 4])
def _(c):
    r = c.node("Relu", ["x"])
    c.node("Concat", [c.weight("k", [1, 3, 2]), "x", r], "y", axis=-1)


# ---------------------------------------------------------------------------
# Pad
# ---------------------------------------------------------------------------

PADS = [0, 0, 1, 2, 0, 0, 2, 1]  # [b0,c0,h0,w0, b1,c1,h1,w1]: asymmetric on H and W


@case("pad_constant", [1, 2, 4, 5])
def _(c):
    c.node("Pad", ["x", shape_const(c, "pads", PADS), c.const("value", 0.5)], "y", mode="constant")


@case("pad_reflect", [1, 2, 4, 5])
def _(c):
    c.node("Pad", ["x", shape_const(c, "pads", PADS)], "y", mode="reflect")


@case("pad_edge", [1, 2, 4, 5])
def _(c):
    c.node("Pad", ["x", shape_const(c, "pads", PADS)], "y", mode="edge")


@case("pad_opset2", [1, 2, 4, 5], opset=2)
def _(c):
    c.node("Pad", ["x"], "y", mode="constant", pads=PADS, value=0.0)


# ---------------------------------------------------------------------------
# ReduceMean (opset 13: axes is an attribute)
# ---------------------------------------------------------------------------

@case("reduce_mean_keep", [1, 3, 4, 5])
def _(c):
    c.node("ReduceMean", ["x"], "y", axes=[2, 3], keepdims=1)


@case("reduce_mean_nokeep", [1, 3, 4, 5])
def _(c):
    c.node("ReduceMean", ["x"], "y", axes=[1], keepdims=0)


@case("reduce_mean_all", [1, 3, 4, 5])
def _(c):
    c.node("ReduceMean", ["x"], "y", keepdims=1)


# ---------------------------------------------------------------------------
# Inference no-ops, refusals, dynamic shapes
# ---------------------------------------------------------------------------

@case("dropout_identity", [1, 16])
def _(c):
    t = c.node("Identity", ["x"])
    t = c.node("Dropout", [t])  # inference mode: identity; the converter should drop it
    c.node("Relu", [t], "y")


@case("unsupported_ops", [1, 16], expect="unsupported")
def _(c):
    # onnxruntime runs this, but Erf and Cos are not in the runtime's operator
    # set: the converter must refuse, naming both nodes (erf_0, cos_1).
    t = c.node("Erf", ["x"])
    t = c.node("Cos", [t])
    c.node("Relu", [t], "y")


@case("dynamic_batch", [1, 20], declared_shape=["N", 20])
def _(c):
    # Symbolic batch: the converter must fix N = 1.
    c.node("Gemm", ["x", c.fan_in_weight("B", [12, 20], 20), c.weight("C", [12])], "y", transB=1)


@case("dynamic_other", [1, 10, 3], expect="needs_input_shape", declared_shape=[1, "T", 3])
def _(c):
    # Symbolic non-batch dim: the converter must ask for --input-shape; the
    # vectors use T = 10.
    c.node("ReduceMean", ["x"], "y", axes=[1], keepdims=0)


# ---------------------------------------------------------------------------

def build(c, out_shape):
    graph = helper.make_graph(
        c.nodes,
        c.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, c.declared_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=c.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", c.opset)],
        producer_name="cargo-medwasm conformance/gen_cases.py",
        producer_version="1",
    )
    model.ir_version = IR_VERSION
    # The checker requires a declared output shape; the first, shape-less
    # build only feeds shape inference and is checked once rebuilt.
    if out_shape is not None:
        onnx.checker.check_model(model, full_check=True)
    return model


def inferred_output_shape(model):
    """Output shape per onnx shape inference (dims as int or dim_param str)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]


def session(model):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    # Errors only: onnxruntime warns that it "only guarantees" opset >= 7 for
    # the deliberate opset 2 and 6 cases (which it does run correctly).
    so.log_severity_level = 3
    # Op-by-op semantics: no Conv+BatchNormalization folding or other rewrites,
    # so the goldens are what each operator computes as specified.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    names = [spec["name"] for _, spec, _ in CASES]
    assert len(names) == len(set(names)), "duplicate case name"
    index = []
    worst = (0.0, None)
    failures = []
    for fn, spec, reference in CASES:
        c = Case(**spec)
        fn(c)
        assert c.nodes and c.nodes[-1].output[0] == "y", c.name

        # First build with the output shape left open, let shape inference
        # fill it, then rebuild declaring it (symbolic dims stay symbolic).
        out_shape = inferred_output_shape(build(c, None))
        model = build(c, out_shape)

        lo, hi = c.input_range
        x = c.rng.uniform(lo, hi, [SAMPLES] + c.input_shape).astype(np.float32)
        sess = session(model)
        if reference is None:
            evaluator = ReferenceEvaluator(model, new_ops=[BatchNormalization])
            reference = lambda v: evaluator.run(None, {"x": v})[0]
        ys = []
        for s in range(SAMPLES):
            (y,) = sess.run(["y"], {"x": x[s]})
            # Independent cross-check of the golden.
            y_ref = reference(x[s])
            err = float(np.max(np.abs(y - y_ref) / (1.0 + np.abs(y_ref))))
            if err > 1e-5:
                failures.append((c.name, s, err))
            if err > worst[0]:
                worst = (err, c.name)
            ys.append(y)
        y = np.stack(ys).astype(np.float32)

        concrete = [d if isinstance(d, int) else c.input_shape[i] for i, d in enumerate(out_shape)]
        assert list(y.shape[1:]) == concrete, (c.name, y.shape, out_shape)

        (OUT / f"{c.name}.onnx").write_bytes(model.SerializeToString())
        np.save(OUT / f"{c.name}.inputs.npy", np.ascontiguousarray(x))
        np.save(OUT / f"{c.name}.expected.npy", np.ascontiguousarray(y))

        entry = {
            "name": c.name,
            "opset": c.opset,
            "ops": [n.op_type for n in c.nodes],
            "input_shape": c.input_shape,
            "output_shape": list(y.shape[1:]),
            "expect": c.expect,
            "input_range": [lo, hi],
        }
        if c.declared_shape != c.input_shape:
            entry["declared_input_shape"] = c.declared_shape
        index.append(entry)
        print(f"{c.name:24s} opset {c.opset:2d}  {str(c.input_shape):16s} -> "
              f"{str(list(y.shape[1:])):16s} {c.expect}")

    assert not failures, f"onnxruntime and the reference disagree: {failures}"
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    (OUT / "README.md").write_text(readme(index))
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(index)} cases, {total} bytes in {OUT}")
    print(f"largest onnxruntime vs onnx.reference deviation: {worst[0]:.2e} ({worst[1]})")


def readme(index):
    rows = "\n".join(
        f"| `{e['name']}` | {e['opset']} | {', '.join(e['ops'])} | "
        f"{e.get('declared_input_shape', e['input_shape'])} | {e['output_shape']} | {e['expect']} |"
        for e in index
    )
    return f"""# Operator conformance cases

Generated by `python3 conformance/gen_cases.py` with onnx {onnx.__version__},
onnxruntime {ort.__version__} and numpy {np.__version__}. Do not edit by hand:
change the script and rerun it (the output is byte-for-byte reproducible).

For each case `<name>`:

- `<name>.onnx`: one graph input `x`, one graph output `y`, IR version {IR_VERSION};
  weights and parameters are initializers. Node names are `<op>_<index>`.
- `<name>.inputs.npy`: float32 `[2, *input_shape]`, uniform in `input_range`,
  drawn from `np.random.default_rng(zlib.crc32(name))` (weights come from the
  same generator, drawn first).
- `<name>.expected.npy`: float32 `[2, *output_shape]`, onnxruntime
  CPUExecutionProvider, 1 thread, graph optimizations disabled (operator-by-
  operator results, no Conv+BatchNormalization folding), one sample per run.
  Every golden was also checked against `onnx.reference` (max deviation
  |ort - ref| / (1 + |ref|) < 1e-5).

`index.json` lists the cases: `name`, `opset`, `ops` (node op types in
order), `input_shape` and `output_shape` (one sample, concrete),
`expect`, `input_range`, and for models with symbolic dims
`declared_input_shape` (dims as numbers or `dim_param` names). `expect` is:

- `pass`: the converter must accept the model and match `expected.npy`;
- `unsupported`: the converter must refuse, naming the unsupported nodes
  (onnxruntime can run it, so the vectors exist anyway);
- `needs_input_shape`: the converter must refuse without `--input-shape`
  (the vectors use the concrete `input_shape`).

Notes:

- `conv2d_same_upper` uses a 15x16 input so that the width padding is
  asymmetric (a 15x15 input with kernel 3, stride 2 pads 1+1 and would not
  distinguish SAME_UPPER from SAME_LOWER).
- `reshape_zero` is opset 14: the `allowzero` attribute does not exist in
  Reshape-13.
- `softmax_opset11` uses the pre-13 semantics: the input is coerced to 2D at
  `axis` and the softmax runs over all trailing elements.
- `onnx.reference` {onnx.__version__} is wrong in two places, so the cross-check
  replaces it there: Softmax before opset 13 (it applies the per-axis opset-13
  semantics; checked against a numpy coerced-2D softmax instead) and
  BatchNormalization-9..13 (it fills in the default momentum and then
  normalizes with the batch's own statistics; checked against an
  inference-mode override). onnxruntime was right in both.
- `clip_opset6` and `pad_opset2` use opsets below 7, which onnxruntime
  "only guarantees" with a warning; it runs them and matches the reference.

| case | opset | ops | input | output | expect |
|---|---|---|---|---|---|
{rows}
"""


if __name__ == "__main__":
    main()
