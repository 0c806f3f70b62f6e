#!/usr/bin/env python3
"""Generate the TFLite operator fixtures in conformance/tflite/.

Each case is a tiny `.tflite` model made by TensorFlow's TFLite converter from
a `tf.function` (one builtin operator, or a short chain), in the flavours
(the same weights in each) that the converter can make of it:

  f32      float32 model
  int8     full-integer: int8 activations, int8 graph I/O, per-channel int8
           weights, int32 bias (representative dataset, seeded)
  int8pt   as int8, but FULLY_CONNECTED weights per-tensor (as older converters
           and the MLPerf Tiny `ad01_int8` model have them)
  int8fio  as int8, but with float32 graph I/O: the converter puts QUANTIZE
           (f32 -> i8) first and DEQUANTIZE (i8 -> f32) last
  dyn      dynamic-range: float I/O, int8 per-channel weights inside a hybrid
           CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED kernel
  dynpt    as dyn, with per-tensor weights (`kws_float32`'s hybrid conv path)

For a case <name> = <base>_<flavour> it writes:

  <name>.tflite                the model
  <name>.inputs.npy            8 samples [8, *input_shape] in the model's input
                               dtype (int8 inputs are the float samples
                               quantized with the model's input scale/zp)
  <name>.expected_ref.npy      LiteRT Interpreter, BUILTIN_REF op resolver
                               (reference kernels), 1 thread, one sample per
                               invoke: the bit-exact goldens
  <name>.expected_default.npy  LiteRT Interpreter, default resolver (optimized
                               kernels, XNNPACK), 1 thread: for information

plus index.json (machine-readable list of the cases) and README.md.

Before anything is written, every model is read back twice: with the LiteRT
interpreter (`_get_ops_details`, tensor dtypes and quantization) and with
LiteRT's flatbuffer schema (operator options). The script stops if the
converter emitted other operators than the case declares, folded one away,
changed a dtype (e.g. left a weight float in a `dyn` model) or did not apply
a declared option (padding, stride, dilation, fused activation, ...). It
also stops if BUILTIN_REF is not repeatable run to run, or if a float model's
reference output is not TensorFlow's own answer (1e-5); the distance of the
quantized flavours to TensorFlow is recorded in index.json.

A few operators or options cannot be obtained from the converter with static
shapes (it rewrites SQUEEZE and EXPAND_DIMS into RESHAPE, never emits a
softmax beta other than 1, never puts DEQUANTIZE in front of int8 weights of
the builtin ops). Those cases take the converter's model and edit the
flatbuffer with LiteRT's own object API (`rewrite` in index.json says how);
the shape-op rewrites are checked to give the same bytes as the model they
were made from.

Everything is seeded from zlib.crc32 of the base name (weights) and of
"<base>/rep" and "<base>/inputs" (calibration and test samples), so cases are
independent of each other and of their order; running the script twice gives
byte-identical files (check with --out and `cmp`).

Usage (from anywhere; under a minute on one core):
    python3 conformance/gen_tflite_cases.py [--out DIR] [--only SUBSTRING]
Needs tensorflow-cpu 2.21 and ai-edge-litert 2.3 (pip); not run in CI: the
generated files are committed.
"""

import os

# Single-threaded everything: deterministic float sums, no contention with the
# compiles this machine runs, and quieter TensorFlow logs.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import importlib.metadata
import json
import pathlib
import re
import sys
import warnings
import zlib

import flatbuffers
import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.get_logger().setLevel("ERROR")
# The converter warns that int8 graph inputs have no "statistics"; the
# representative dataset provides them, so the warning is noise here.
warnings.filterwarnings("ignore", message="Statistics for quantized inputs")

OUT = pathlib.Path(__file__).resolve().parent / "tflite"
SAMPLES = 8
REP_SAMPLES = 32

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
ACT_NAMES = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
PADDING_NAMES = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}
WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}

FLAVOURS = {
    "f32": dict(kind="float"),
    "int8": dict(kind="int8", io="int8"),
    "int8pt": dict(kind="int8", io="int8", per_tensor=True),
    "int8fio": dict(kind="int8", io="float32"),
    "dyn": dict(kind="dynamic"),
    "dynpt": dict(kind="dynamic", per_tensor=True),
}
FI = ("f32", "int8")
FID = ("f32", "int8", "dyn")


class Case:
    """One base case: its weights (drawn once) and the function under test.

    Builders draw every constant through `fan_in`, `uniform` or `bias`, so the
    weights are identical across flavours of the same base.
    """

    def __init__(self, base, input_shape):
        self.base = base
        self.input_shape = list(input_shape)
        self.rng = np.random.default_rng(zlib.crc32(base.encode()))

    def uniform(self, shape, lo=-1.0, hi=1.0):
        return tf.constant(self.rng.uniform(lo, hi, shape).astype(np.float32))

    def fan_in(self, shape, fan_in):
        """Uniform in +-1/sqrt(fan_in): outputs stay O(1), so int8 ranges and
        float tolerances both make sense."""
        b = 1.0 / np.sqrt(fan_in)
        return self.uniform(shape, -b, b)

    def bias(self, n):
        return self.uniform([n], -0.3, 0.3)


CASES = []


def case(base, input_shape, ops, flavours=FI, input_range=(-1.0, 1.0), options=None,
         ops_int8=None, rewrite=None, dynamic_batch=False, hybrid=True, note=None,
         reference=None):
    """Register a builder: it gets a Case and returns `x -> y` in TensorFlow.

    ops         operator names LiteRT must report, in execution order (for
                the f32 and dyn flavours, and for int8 unless `ops_int8`);
                int8fio adds QUANTIZE first and DEQUANTIZE last
    options     {op name: {option: value}}: checked on every op of that name
    rewrite     (description, function(ModelT, flavour), ops before it) when
                the converter cannot emit the case directly
    hybrid      dyn flavours: every CONV/DEPTHWISE/FC must take int8 weights
    reference   x -> y in TensorFlow for the cross-check, when a rewrite makes
                the model compute something else than the builder's function
    """

    def register(fn):
        CASES.append(dict(fn=fn, base=base, input_shape=list(input_shape), ops=ops,
                          flavours=flavours, input_range=input_range, options=options or {},
                          ops_int8=ops_int8, rewrite=rewrite, dynamic_batch=dynamic_batch,
                          hybrid=hybrid, note=note, reference=reference))
        return fn

    return register


def conv_opts(padding, stride=(1, 1), activation="NONE", dilation=(1, 1)):
    return dict(padding=padding, stride_h=stride[0], stride_w=stride[1],
                fused_activation_function=activation,
                dilation_h_factor=dilation[0], dilation_w_factor=dilation[1])


def pool_opts(padding, filt, stride, activation="NONE"):
    return dict(padding=padding, filter_height=filt[0], filter_width=filt[1],
                stride_h=stride[0], stride_w=stride[1], fused_activation_function=activation)


def act(name):
    return dict(fused_activation_function=name)


def relu_n1_to_1(x):
    return tf.clip_by_value(x, -1.0, 1.0)


# ---------------------------------------------------------------------------
# FULLY_CONNECTED (weights [units, depth] in the file; >= 1024 elements where
# a dyn flavour is wanted: the dynamic-range quantizer leaves smaller weights
# float)
# ---------------------------------------------------------------------------

@case("fc_relu", [1, 64], ["FULLY_CONNECTED"], flavours=("f32", "int8", "int8fio", "dyn"),
      options={"FULLY_CONNECTED": dict(act("RELU"), keep_num_dims=False)})
def _(c):
    w, b = c.fan_in([64, 24], 64), c.bias(24)
    return lambda x: tf.nn.relu(tf.matmul(x, w) + b)


@case("fc_per_tensor", [1, 64], ["FULLY_CONNECTED"], flavours=("int8pt", "dynpt"),
      options={"FULLY_CONNECTED": act("NONE")},
      note="per-tensor weights: the int8 FC requant takes its multiplier from an f32 "
           "product (tflite-int8-spec 2.4); dynpt is the hybrid per-tensor path")
def _(c):
    w, b = c.fan_in([64, 20], 64), c.bias(20)
    return lambda x: tf.matmul(x, w) + b


@case("fc_keep_dims_relu6", [1, 3, 48], ["FULLY_CONNECTED"], flavours=FID,
      options={"FULLY_CONNECTED": dict(act("RELU6"), keep_num_dims=True)},
      note="3-D input: FULLY_CONNECTED with keep_num_dims, output [1, 3, 24]")
def _(c):
    w, b = c.fan_in([48, 24], 48), c.bias(24)
    return lambda x: tf.nn.relu6(tf.matmul(x, w) + b)


@case("fc_nobias_n1_to_1", [1, 32], ["FULLY_CONNECTED"], flavours=FID, input_range=(-2.0, 2.0),
      options={"FULLY_CONNECTED": act("RELU_N1_TO_1")},
      note="no bias: the bias input is -1 (absent) in every flavour")
def _(c):
    w = c.fan_in([32, 40], 32)
    return lambda x: relu_n1_to_1(tf.matmul(x, w))


# ---------------------------------------------------------------------------
# CONV_2D (filters OHWI in the file; 3x3x8x16 = 1152 weights)
# ---------------------------------------------------------------------------

@case("conv2d_same_relu", [1, 5, 5, 8], ["CONV_2D"], flavours=("f32", "int8", "int8fio", "dyn", "dynpt"),
      options={"CONV_2D": conv_opts("SAME", activation="RELU")})
def _(c):
    w, b = c.fan_in([3, 3, 8, 16], 72), c.bias(16)
    return lambda x: tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME") + b)


@case("conv2d_same_s2_relu6", [1, 5, 6, 8], ["CONV_2D"], flavours=FID,
      options={"CONV_2D": conv_opts("SAME", (2, 2), "RELU6")},
      note="height 5 pads 1+1, width 6 pads 0+1 (the extra pad at the end)")
def _(c):
    w, b = c.fan_in([3, 3, 8, 16], 72), c.bias(16)
    return lambda x: tf.nn.relu6(tf.nn.conv2d(x, w, 2, "SAME") + b)


@case("conv2d_valid_s2", [1, 6, 7, 8], ["CONV_2D"], flavours=FID,
      options={"CONV_2D": conv_opts("VALID", (2, 2))},
      note="no bias in the graph; the converter still adds a zero bias tensor. "
           "Height 6, kernel 3, stride 2: the last row is never read")
def _(c):
    w = c.fan_in([3, 3, 8, 16], 72)
    return lambda x: tf.nn.conv2d(x, w, 2, "VALID")


@case("conv2d_k4x3_s1x2_n1_to_1", [1, 5, 7, 8], ["CONV_2D"], flavours=FID, input_range=(-2.0, 2.0),
      options={"CONV_2D": conv_opts("SAME", (1, 2), "RELU_N1_TO_1")},
      note="even kernel height 4 with SAME: pads 1 before, 2 after; strides 1 (h) and 2 (w)")
def _(c):
    w, b = c.fan_in([4, 3, 8, 12], 96), c.bias(12)
    return lambda x: relu_n1_to_1(tf.nn.conv2d(x, w, [1, 1, 2, 1], "SAME") + b)


@case("conv2d_dilation2", [1, 5, 6, 8], ["CONV_2D"], flavours=FID,
      options={"CONV_2D": conv_opts("SAME", dilation=(2, 2))})
def _(c):
    w, b = c.fan_in([3, 3, 8, 16], 72), c.bias(16)
    return lambda x: tf.nn.conv2d(x, w, 1, "SAME", dilations=2) + b


# ---------------------------------------------------------------------------
# DEPTHWISE_CONV_2D (filters 1HWO in the file). A depthwise conv reaches the
# quantizer's 1024 weights only with many channels, so only `dw_hybrid_*`
# (small spatial size) has dyn flavours; the others keep the files small.
# ---------------------------------------------------------------------------

@case("dw_m1_same_relu", [1, 7, 7, 8], ["DEPTHWISE_CONV_2D"],
      options={"DEPTHWISE_CONV_2D": dict(conv_opts("SAME", activation="RELU"), depth_multiplier=1)})
def _(c):
    w, b = c.fan_in([3, 3, 8, 1], 9), c.bias(8)
    return lambda x: tf.nn.relu(tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME") + b)


@case("dw_m2_valid_s2_relu6", [1, 9, 8, 6], ["DEPTHWISE_CONV_2D"],
      options={"DEPTHWISE_CONV_2D": dict(conv_opts("VALID", (2, 2), "RELU6"), depth_multiplier=2)},
      note="depth multiplier 2: output channel ic*2+m")
def _(c):
    w, b = c.fan_in([3, 3, 6, 2], 9), c.bias(12)
    return lambda x: tf.nn.relu6(tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], "VALID") + b)


@case("dw_m2_dilation2", [1, 7, 7, 4], ["DEPTHWISE_CONV_2D"],
      options={"DEPTHWISE_CONV_2D": dict(conv_opts("SAME", dilation=(2, 2)), depth_multiplier=2)})
def _(c):
    w, b = c.fan_in([3, 3, 4, 2], 9), c.bias(8)
    return lambda x: tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME", dilations=[2, 2]) + b


@case("dw_k3_s2_same_n1_to_1", [1, 7, 8, 8], ["DEPTHWISE_CONV_2D"], input_range=(-2.0, 2.0),
      options={"DEPTHWISE_CONV_2D": dict(conv_opts("SAME", (2, 2), "RELU_N1_TO_1"), depth_multiplier=1)})
def _(c):
    w, b = c.fan_in([3, 3, 8, 1], 9), c.bias(8)
    return lambda x: relu_n1_to_1(tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], "SAME") + b)


@case("dw_hybrid_m2_s2", [1, 5, 4, 24], ["DEPTHWISE_CONV_2D"], flavours=("dyn",),
      options={"DEPTHWISE_CONV_2D": dict(conv_opts("SAME", (2, 2), "RELU"), depth_multiplier=2)},
      note="5x5x24x2 = 1200 weights, enough for the dynamic-range quantizer; the hybrid "
           "depthwise kernel takes the depth multiplier from the options. No dynpt flavour: "
           "with per-tensor weights LiteRT 2.3.0's hybrid depthwise (reference and default) "
           "reads one filter scale per output channel past the single stored scale and "
           "returns garbage (up to 1e34, different on every run)")
def _(c):
    w, b = c.fan_in([5, 5, 24, 2], 25), c.bias(48)
    return lambda x: tf.nn.relu(tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], "SAME") + b)


# ---------------------------------------------------------------------------
# Pooling (int8: input and output share scale and zero point)
# ---------------------------------------------------------------------------

@case("avgpool_same_s2", [1, 9, 10, 6], ["AVERAGE_POOL_2D"], flavours=("f32", "int8", "int8fio"),
      options={"AVERAGE_POOL_2D": pool_opts("SAME", (3, 3), (2, 2))},
      note="border windows are partly padding: the divisor counts only in-bounds taps")
def _(c):
    return lambda x: tf.nn.avg_pool2d(x, 3, 2, "SAME")


@case("avgpool_valid_k2x3_relu6", [1, 8, 9, 6], ["AVERAGE_POOL_2D"], input_range=(-2.0, 8.0),
      options={"AVERAGE_POOL_2D": pool_opts("VALID", (2, 3), (2, 2), "RELU6")})
def _(c):
    return lambda x: tf.nn.relu6(tf.nn.avg_pool2d(x, (2, 3), 2, "VALID"))


@case("maxpool_same_s2_relu", [1, 9, 10, 6], ["MAX_POOL_2D"],
      options={"MAX_POOL_2D": pool_opts("SAME", (3, 3), (2, 2), "RELU")})
def _(c):
    return lambda x: tf.nn.relu(tf.nn.max_pool2d(x, 3, 2, "SAME"))


@case("maxpool_valid_k2", [1, 7, 8, 6], ["MAX_POOL_2D"],
      options={"MAX_POOL_2D": pool_opts("VALID", (2, 2), (2, 2))},
      note="height 7: the last row is never read")
def _(c):
    return lambda x: tf.nn.max_pool2d(x, 2, 2, "VALID")


# ---------------------------------------------------------------------------
# ADD, SUB, MUL (constants are int8 per-tensor tensors in the int8 flavour)
# ---------------------------------------------------------------------------

@case("add_bcast_relu", [1, 4, 1, 6], ["ADD"], options={"ADD": act("RELU")},
      note="both operands broadcast: [1,4,1,6] + [5,1] -> [1,4,5,6]")
def _(c):
    k = c.uniform([5, 1])
    return lambda x: tf.nn.relu(x + k)


@case("add_two_activations", [1, 4, 5, 6], ["RELU", "ADD"], options={"ADD": act("NONE")},
      note="x + relu(x): two activation operands with different int8 scales")
def _(c):
    return lambda x: x + tf.nn.relu(x)


@case("sub_bcast_relu6", [1, 4, 5, 6], ["SUB"], input_range=(-3.0, 8.0), options={"SUB": act("RELU6")})
def _(c):
    k = c.uniform([6], -2.0, 2.0)
    return lambda x: tf.nn.relu6(x - k)


@case("sub_const_first", [1, 4, 5, 6], ["SUB"], options={"SUB": act("NONE")},
      note="constant [1,5,1] minus the activation: operand order matters")
def _(c):
    k = c.uniform([1, 5, 1])
    return lambda x: k - x


@case("mul_bcast_n1_to_1", [1, 4, 5, 6], ["MUL"], options={"MUL": act("RELU_N1_TO_1")})
def _(c):
    k = c.uniform([4, 1, 1], -2.0, 2.0)
    return lambda x: relu_n1_to_1(x * k)


@case("mul_square", [1, 4, 5, 6], ["MUL"], input_range=(-2.0, 2.0), options={"MUL": act("NONE")},
      note="x * x: the same tensor as both operands")
def _(c):
    return lambda x: x * x


# ---------------------------------------------------------------------------
# Shape ops: pure byte moves, in/out quantization identical
# ---------------------------------------------------------------------------

@case("reshape", [1, 2, 3, 4], ["RESHAPE"])
def _(c):
    return lambda x: tf.reshape(x, [1, 6, 4])


def _replace_reshape(mt, new_op, options_type, options):
    """Turn the model's single RESHAPE into `new_op` (same input tensor)."""
    sub = mt.subgraphs[0]
    (op,) = sub.operators
    assert op_name(mt, op) == "RESHAPE", op_name(mt, op)
    op.opcodeIndex = opcode_index(mt, new_op, version=1)  # the converter's version for f32 and int8
    op.builtinOptionsType = options_type
    op.builtinOptions = options
    return op


def rewrite_squeeze(dims):
    def rw(mt, flavour):
        o = schema.SqueezeOptionsT()
        o.squeezeDims = list(dims)
        op = _replace_reshape(mt, schema.BuiltinOperator.SQUEEZE, schema.BuiltinOptions.SqueezeOptions, o)
        op.inputs = [int(op.inputs[0])]  # SQUEEZE takes no shape tensor
        prune(mt)

    return (f"converter emits RESHAPE for a static squeeze; the RESHAPE was replaced by "
            f"SQUEEZE(squeeze_dims={list(dims)}) and the unused shape tensor removed", rw, ["RESHAPE"])


def rewrite_expand_dims(axis):
    def rw(mt, flavour):
        op = _replace_reshape(mt, schema.BuiltinOperator.EXPAND_DIMS, schema.BuiltinOptions.ExpandDimsOptions,
                              schema.ExpandDimsOptionsT())
        # The shape operand becomes the scalar int32 axis operand.
        sub = mt.subgraphs[0]
        t = sub.tensors[op.inputs[1]]
        t.shape = []
        t.shapeSignature = None
        t.name = b"axis"
        mt.buffers[t.buffer].data = np.array([axis], "<i4").view(np.uint8)

    return (f"converter emits RESHAPE for a static expand_dims; the RESHAPE was replaced by "
            f"EXPAND_DIMS with a scalar int32 axis operand {axis}", rw, ["RESHAPE"])


@case("squeeze", [1, 3, 1, 4], ["SQUEEZE"], rewrite=rewrite_squeeze([2]),
      options={"SQUEEZE": dict(squeeze_dims=[2])})
def _(c):
    return lambda x: tf.squeeze(x, [2])


@case("expand_dims", [1, 3, 4], ["EXPAND_DIMS"], rewrite=rewrite_expand_dims(2))
def _(c):
    return lambda x: tf.expand_dims(x, 2)


@case("expand_dims_dynamic_batch", [1, 3, 4], ["EXPAND_DIMS"], dynamic_batch=True,
      note="input declared [None, 3, 4]: the converter keeps EXPAND_DIMS; tensors carry "
           "shape [1, ...] and shape_signature [-1, ...], as models exported from Keras do")
def _(c):
    return lambda x: tf.expand_dims(x, -2)


@case("transpose_nhwc_nchw", [1, 4, 5, 6], ["TRANSPOSE"])
def _(c):
    return lambda x: tf.transpose(x, [0, 3, 1, 2])


@case("transpose_3d", [1, 4, 6], ["TRANSPOSE"])
def _(c):
    return lambda x: tf.transpose(x, [0, 2, 1])


@case("concat_const_last_axis", [1, 4, 5], ["CONCATENATION"], options={"CONCATENATION": dict(axis=-1)},
      note="the int8 constant is quantized with the output's scale and zero point")
def _(c):
    k = c.uniform([1, 4, 3], -2.0, 2.0)
    return lambda x: tf.concat([x, k], -1)


@case("concat_axis1", [1, 3, 4, 5], ["RELU6", "CONCATENATION"], options={"CONCATENATION": dict(axis=1)})
def _(c):
    return lambda x: tf.concat([tf.nn.relu6(x), x], 1)


@case("concat_requantize", [1, 4, 5], ["LOGISTIC", "TANH", "CONCATENATION"],
      ops_int8=["LOGISTIC", "QUANTIZE", "TANH", "QUANTIZE", "CONCATENATION"], input_range=(-4.0, 4.0),
      options={"CONCATENATION": dict(axis=-1)},
      note="LOGISTIC (scale 1/256, zp -128) and TANH (1/128, 0) outputs get requantized "
           "(int8 -> int8 QUANTIZE) to the concatenation's common scale")
def _(c):
    return lambda x: tf.concat([tf.sigmoid(x), tf.tanh(x)], -1)


@case("pad_asymmetric", [1, 4, 5, 3], ["PAD"], input_range=(0.5, 2.0),
      note="pads [[0,0],[1,2],[2,1],[0,0]]; inputs in [0.5, 2] so the int8 pad value "
           "(the zero point) is not an input value")
def _(c):
    return lambda x: tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]])


# ---------------------------------------------------------------------------
# MEAN
# ---------------------------------------------------------------------------

@case("mean_hw_keep", [1, 5, 6, 8], ["MEAN"], options={"MEAN": dict(keep_dims=True)})
def _(c):
    return lambda x: tf.reduce_mean(x, [1, 2], keepdims=True)


@case("mean_last", [1, 4, 10], ["MEAN"], options={"MEAN": dict(keep_dims=False)})
def _(c):
    return lambda x: tf.reduce_mean(x, -1)


@case("mean_axes_1_3", [1, 4, 5, 6], ["MEAN"], input_range=(-0.5, 1.5),
      options={"MEAN": dict(keep_dims=False)})
def _(c):
    return lambda x: tf.reduce_mean(x, [1, 3])


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

@case("softmax", [1, 10], ["SOFTMAX"], input_range=(-4.0, 4.0), options={"SOFTMAX": dict(beta=1.0)})
def _(c):
    return tf.nn.softmax


@case("softmax_3d", [1, 3, 10], ["SOFTMAX"], input_range=(-6.0, 6.0), options={"SOFTMAX": dict(beta=1.0)})
def _(c):
    return tf.nn.softmax


def rewrite_softmax_beta(beta):
    def rw(mt, flavour):
        (op,) = mt.subgraphs[0].operators
        assert op_name(mt, op) == "SOFTMAX"
        op.builtinOptions.beta = beta

    return (f"the converter never emits a beta other than 1 (tf.nn.softmax has none, "
            f"softmax(x * b) stays MUL + SOFTMAX); SoftmaxOptions.beta set to {beta}",
            rw, ["SOFTMAX"])


@case("softmax_beta", [1, 10], ["SOFTMAX"], input_range=(-4.0, 4.0), rewrite=rewrite_softmax_beta(0.5),
      options={"SOFTMAX": dict(beta=0.5)}, reference=lambda x: tf.nn.softmax(0.5 * x))
def _(c):
    return tf.nn.softmax


@case("logistic", [1, 64], ["LOGISTIC"], input_range=(-8.0, 8.0))
def _(c):
    return tf.sigmoid


@case("tanh", [1, 64], ["TANH"], input_range=(-4.0, 4.0))
def _(c):
    return tf.tanh


@case("relu", [1, 64], ["RELU"], input_range=(-2.0, 2.0))
def _(c):
    return tf.nn.relu


@case("relu6", [1, 64], ["RELU6"], input_range=(-3.0, 9.0))
def _(c):
    return tf.nn.relu6


@case("relu_n1_to_1", [1, 64], ["RELU_N1_TO_1"], input_range=(-2.0, 2.0))
def _(c):
    return relu_n1_to_1


@case("leaky_relu", [1, 64], ["LEAKY_RELU"], input_range=(-3.0, 3.0), options={"LEAKY_RELU": dict(alpha=0.2)})
def _(c):
    return lambda x: tf.nn.leaky_relu(x, 0.2)


@case("leaky_relu_negative_alpha", [1, 64], ["LEAKY_RELU"], input_range=(-3.0, 3.0),
      options={"LEAKY_RELU": dict(alpha=-0.3)},
      note="negative alpha: the int8 multiplier is negative (tflite-int8-spec 5.5)")
def _(c):
    return lambda x: tf.nn.leaky_relu(x, -0.3)


@case("hard_swish", [1, 64], ["HARD_SWISH"], input_range=(-5.0, 5.0),
      note="x * relu6(x + 3) / 6, which the converter fuses into HARD_SWISH")
def _(c):
    return lambda x: x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


# ---------------------------------------------------------------------------
# Float models with int8 weights behind a DEQUANTIZE (weights-only models)
# ---------------------------------------------------------------------------

def rewrite_dequantize_weights():
    def rw(mt, flavour):
        sub = mt.subgraphs[0]
        (op,) = sub.operators
        assert op_name(mt, op) in WEIGHTED
        wi = int(op.inputs[1])
        w = sub.tensors[wi]
        assert w.type == schema.TensorType.INT8 and len(w.quantization.scale) > 1
        mt.buffers.append(schema.BufferT())
        t = schema.TensorT()
        t.shape = list(w.shape)
        t.type = schema.TensorType.FLOAT32
        t.buffer = len(mt.buffers) - 1
        t.name = bytes(w.name) + b"_dequantized"
        sub.tensors.append(t)
        dq = schema.OperatorT()
        # Version 5: int8 input with per-channel quantization (LiteRT op_version.cc).
        dq.opcodeIndex = opcode_index(mt, schema.BuiltinOperator.DEQUANTIZE, version=5)
        dq.inputs = [wi]
        dq.outputs = [len(sub.tensors) - 1]
        op.inputs = [int(i) for i in op.inputs]
        op.inputs[1] = len(sub.tensors) - 1
        # A float kernel now: version 1, not the hybrid kernel's version.
        op.opcodeIndex = opcode_index(mt, mt.operatorCodes[op.opcodeIndex].builtinCode, version=1)
        sub.operators = [dq, op]
        prune(mt)

    return ("the converter emits int8 weights only inside hybrid kernels; the dyn model's "
            "per-channel int8 weights were routed through a DEQUANTIZE (int8 -> f32) into "
            "the now float operator, as weights-only quantized models have them",
            rw, None)


@case("conv2d_dequantized_weights", [1, 5, 5, 8], ["DEQUANTIZE", "CONV_2D"], flavours=("dyn",),
      rewrite=rewrite_dequantize_weights(), hybrid=False,
      options={"CONV_2D": conv_opts("SAME", activation="RELU")})
def _(c):
    w, b = c.fan_in([3, 3, 8, 16], 72), c.bias(16)
    return lambda x: tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME") + b)


@case("fc_dequantized_weights", [1, 64], ["DEQUANTIZE", "FULLY_CONNECTED"], flavours=("dyn",),
      rewrite=rewrite_dequantize_weights(), hybrid=False,
      options={"FULLY_CONNECTED": act("NONE")})
def _(c):
    w, b = c.fan_in([64, 24], 64), c.bias(24)
    return lambda x: tf.matmul(x, w) + b


# ---------------------------------------------------------------------------
# Chains
# ---------------------------------------------------------------------------

@case("chain_kws", [1, 12, 10, 1],
      ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"],
      flavours=("f32", "int8", "int8fio"), input_range=(-2.0, 2.0),
      note="conv 3x3/2 relu -> depthwise 3x3 relu -> avgpool 3x5/3x5 -> reshape [1, 16] -> FC -> "
           "softmax (the shape of the MLPerf Tiny KWS model; with a [1,1,1,C] pool output the "
           "converter folds the reshape into the FC, hence two pooled rows)")
def _(c):
    w1, b1 = c.fan_in([3, 3, 1, 8], 9), c.bias(8)
    w2, b2 = c.fan_in([3, 3, 8, 1], 9), c.bias(8)
    # Large FC weights: the pooled features are small, and the softmax
    # should see logits far enough apart to give a non-uniform output.
    w3, b3 = c.uniform([16, 6], -3.0, 3.0), c.bias(6)

    def f(x):
        y = tf.nn.relu(tf.nn.conv2d(x, w1, 2, "SAME") + b1)              # [1, 6, 5, 8]
        y = tf.nn.relu(tf.nn.depthwise_conv2d(y, w2, [1, 1, 1, 1], "SAME") + b2)
        y = tf.nn.avg_pool2d(y, (3, 5), (3, 5), "VALID")                  # [1, 2, 1, 8]
        y = tf.reshape(y, [1, 16])
        return tf.nn.softmax(tf.matmul(y, w3) + b3)

    return f


@case("chain_residual", [1, 6, 6, 8], ["CONV_2D", "CONV_2D", "ADD"], flavours=("f32", "int8"),
      options={"ADD": act("RELU")},
      note="conv 3x3 relu -> conv 3x3 -> add the block input -> relu (fused into ADD)")
def _(c):
    w1, b1 = c.fan_in([3, 3, 8, 8], 72), c.bias(8)
    w2, b2 = c.fan_in([3, 3, 8, 8], 72), c.bias(8)

    def f(x):
        y = tf.nn.relu(tf.nn.conv2d(x, w1, 1, "SAME") + b1)
        y = tf.nn.conv2d(y, w2, 1, "SAME") + b2
        return tf.nn.relu(x + y)

    return f


@case("chain_mixed", [1, 10, 10, 3],
      ["CONV_2D", "MAX_POOL_2D", "PAD", "DEPTHWISE_CONV_2D", "HARD_SWISH", "MEAN", "FULLY_CONNECTED",
       "LOGISTIC"],
      flavours=("f32", "int8", "int8fio"), input_range=(0.0, 1.0),
      note="conv relu6 -> maxpool -> pad -> depthwise (valid) -> hard_swish -> mean(h,w) -> FC -> "
           "logistic (image-like input in [0, 1])")
def _(c):
    w1, b1 = c.fan_in([3, 3, 3, 8], 27), c.bias(8)
    w2, b2 = c.fan_in([3, 3, 8, 2], 9), c.bias(16)
    w3, b3 = c.uniform([16, 4], -3.0, 3.0), c.bias(4)  # spread the logistic's input

    def f(x):
        y = tf.nn.relu6(tf.nn.conv2d(x, w1, 1, "SAME") + b1)              # [1, 10, 10, 8]
        y = tf.nn.max_pool2d(y, 2, 2, "VALID")                            # [1, 5, 5, 8]
        # Asymmetric, so that no SAME padding equals it and the converter
        # cannot fold the PAD into the depthwise conv (it does for [1, 1]).
        y = tf.pad(y, [[0, 0], [2, 1], [0, 2], [0, 0]])                   # [1, 8, 7, 8]
        y = tf.nn.depthwise_conv2d(y, w2, [1, 2, 2, 1], "VALID") + b2     # [1, 3, 3, 16]
        y = y * tf.nn.relu6(y + 3.0) * (1.0 / 6.0)
        y = tf.reduce_mean(y, [1, 2])                                     # [1, 16]
        return tf.sigmoid(tf.matmul(y, w3) + b3)

    return f


# ---------------------------------------------------------------------------
# Flatbuffer helpers (LiteRT's generated object API)
# ---------------------------------------------------------------------------

class AlignedBuilder(flatbuffers.Builder):
    """A Builder that keeps Buffer.data 16-byte aligned, as schema.fbs asks
    (`data:[ubyte] (force_align: 16)`); the generated Pack() would align the
    bytes to 1 only. Only uint8 vectors are buffer data in these models."""

    def CreateNumpyVector(self, x):
        if x.dtype != np.uint8:
            return super().CreateNumpyVector(x)
        self.StartVector(1, x.size, 16)
        self.head = self.head - x.size
        self.Bytes[self.head:self.head + x.size] = x.tobytes()
        self.vectorNumElems = x.size
        return self.EndVector()


def read_model(data):
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))


def write_model(mt):
    for b in mt.buffers:
        if b.data is not None:
            b.data = np.asarray(b.data, dtype=np.uint8)
    builder = AlignedBuilder(1024)
    builder.Finish(mt.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_name(mt, op):
    oc = mt.operatorCodes[op.opcodeIndex]
    return OP_NAMES[max(oc.builtinCode, oc.deprecatedBuiltinCode)]


def opcode_index(mt, builtin, version):
    for i, oc in enumerate(mt.operatorCodes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == builtin and oc.version == version:
            return i
    oc = schema.OperatorCodeT()
    oc.builtinCode = builtin
    oc.deprecatedBuiltinCode = min(builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    oc.version = version
    mt.operatorCodes.append(oc)
    return len(mt.operatorCodes) - 1


def prune(mt):
    """Drop tensors, buffers and operator codes nothing refers to any more."""
    sub = mt.subgraphs[0]
    used = set(int(i) for i in sub.inputs) | set(int(i) for i in sub.outputs)
    for op in sub.operators:
        used |= {int(i) for i in list(op.inputs) + list(op.outputs) if i >= 0}
    tmap = {old: new for new, old in enumerate(sorted(used))}
    sub.tensors = [sub.tensors[i] for i in sorted(used)]
    for op in sub.operators:
        op.inputs = [tmap[int(i)] if i >= 0 else -1 for i in op.inputs]
        op.outputs = [tmap[int(i)] for i in op.outputs]
    sub.inputs = [tmap[int(i)] for i in sub.inputs]
    sub.outputs = [tmap[int(i)] for i in sub.outputs]
    for sig in mt.signatureDefs or []:
        for tm in list(sig.inputs) + list(sig.outputs):
            tm.tensorIndex = tmap[tm.tensorIndex]

    bused = {0} | {t.buffer for t in sub.tensors} | {m.buffer for m in mt.metadata or []}
    bmap = {old: new for new, old in enumerate(sorted(bused))}
    mt.buffers = [mt.buffers[i] for i in sorted(bused)]
    for t in sub.tensors:
        t.buffer = bmap[t.buffer]
    for m in mt.metadata or []:
        m.buffer = bmap[m.buffer]

    oused = sorted({op.opcodeIndex for op in sub.operators})
    omap = {old: new for new, old in enumerate(oused)}
    mt.operatorCodes = [mt.operatorCodes[i] for i in oused]
    for op in sub.operators:
        op.opcodeIndex = omap[op.opcodeIndex]


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def options_of(op):
    """Builtin options as {schema field name: readable value}."""
    if op.builtinOptions is None:
        return {}
    out = {}
    for k, v in sorted(vars(op.builtinOptions).items()):
        k = snake(k)
        if k == "padding":
            v = PADDING_NAMES[v]
        elif k == "fused_activation_function":
            v = ACT_NAMES[v]
        elif isinstance(v, np.ndarray):
            v = [int(e) for e in v]
        elif isinstance(v, (bool, np.bool_)):
            v = bool(v)
        elif isinstance(v, (float, np.floating)):
            v = float(v)
        elif isinstance(v, (int, np.integer)):
            v = int(v)
        out[k] = v
    return out


def has_data(mt, t):
    d = mt.buffers[t.buffer].data
    return d is not None and len(d) > 0


def tensor_info(mt, idx, full=False):
    """dtype, shape, constness and quantization of one tensor for index.json.

    Per-tensor quantization is given in full; per-channel parameters only by
    axis and count (the values are in the .tflite file).
    """
    sub = mt.subgraphs[0]
    t = sub.tensors[idx]
    info = {"dtype": TYPE_NAMES[t.type], "shape": [int(d) for d in t.shape]}
    sig = t.shapeSignature
    if sig is not None and [int(d) for d in sig] != info["shape"]:
        info["shape_signature"] = [int(d) for d in sig]
    if has_data(mt, t):
        info["const"] = True
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale) > 0:
        if len(q.scale) == 1:
            info["scale"] = float(q.scale[0])
            info["zero_point"] = int(q.zeroPoint[0])
        else:
            info["per_channel"] = {"axis": int(q.quantizedDimension), "channels": len(q.scale)}
    if full:
        info["name"] = bytes(t.name).decode()
    return info


# ---------------------------------------------------------------------------
# Conversion, checks, goldens
# ---------------------------------------------------------------------------

class Module(tf.Module):
    """Gives the model a `serving_default` signature with input `x` and
    output `y`, as Keras- and SavedModel-exported models have."""

    def __init__(self, body, spec):
        super().__init__()
        self.body = body
        self.fn = tf.function(lambda x: {"y": body(x)}, input_signature=[spec])


def convert(spec, body, flavour, rep_samples):
    cfg = FLAVOURS[flavour]
    module = Module(body, spec)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([module.fn.get_concrete_function()], module)
    if cfg["kind"] != "float":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if cfg["kind"] == "int8":
        conv.representative_dataset = lambda: ([s] for s in rep_samples)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = tf.int8 if cfg["io"] == "int8" else tf.float32
        conv.inference_input_type = io
        conv.inference_output_type = io
        if cfg.get("per_tensor"):
            conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    if cfg["kind"] == "dynamic" and cfg.get("per_tensor"):
        conv._experimental_disable_per_channel = True
    return conv.convert()


def interpreter(model, resolver):
    kw = {} if resolver is None else {"experimental_op_resolver_type": resolver}
    it = Interpreter(model_content=model, num_threads=1, **kw)
    it.allocate_tensors()
    return it


def run(model, xs, resolver):
    it = interpreter(model, resolver)
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    ys = []
    for x in xs:
        it.set_tensor(inp["index"], x)
        it.invoke()
        ys.append(it.get_tensor(out["index"]).copy())
    return np.stack(ys)


def check(spec, flavour, mt, it):
    """Everything the case declares, checked on the converted model.

    Returns a list of problems (empty when the model is what was intended).
    """
    cfg = FLAVOURS[flavour]
    kind = cfg["kind"]
    sub = mt.subgraphs[0]
    problems = []
    details = it._get_ops_details()
    got = [d["op_name"] for d in details]
    want = list(spec["ops_int8"] if kind == "int8" and spec["ops_int8"] else spec["ops"])
    if kind == "int8" and cfg["io"] == "float32":
        want = ["QUANTIZE"] + want + ["DEQUANTIZE"]
    if got != want:
        problems.append(f"ops {got}, expected {want}")
        return problems
    fb_ops = [op_name(mt, op) for op in sub.operators]
    if fb_ops != got:
        problems.append(f"flatbuffer ops {fb_ops} differ from the interpreter's {got}")

    td = {t["index"]: t for t in it.get_tensor_details()}

    def dtype(i):
        return np.dtype(td[i]["dtype"]).name

    def nscales(i):
        return len(td[i]["quantization_parameters"]["scales"])

    io_dtype = "int8" if kind == "int8" and cfg["io"] == "int8" else "float32"
    for i in list(sub.inputs) + list(sub.outputs):
        if dtype(i) != io_dtype:
            problems.append(f"graph I/O tensor {i} is {dtype(i)}, expected {io_dtype}")

    for n, (d, op) in enumerate(zip(details, sub.operators)):
        name = d["op_name"]
        want_opts = spec["options"].get(name, {})
        have = options_of(op)
        for k, v in want_opts.items():
            # Float options are stored as f32: compare at that precision.
            same = (isinstance(v, float) and isinstance(have.get(k), float)
                    and np.float32(v) == np.float32(have[k])) or have.get(k) == v
            if not same:
                problems.append(f"{name}#{n} option {k} = {have.get(k)!r}, expected {v!r}")
        for pos, i in enumerate(d["inputs"]):
            if i < 0:
                continue
            dt, ns, const = dtype(i), nscales(i), has_data(mt, sub.tensors[i])
            what = f"{name}#{n} input {pos} ({dt}, {ns} scales{', const' if const else ''})"
            weight = name in WEIGHTED and pos == 1
            bias = name in WEIGHTED and pos == 2
            if weight and (kind == "int8" or (kind == "dynamic" and spec["hybrid"])):
                shape = list(td[i]["shape"])
                channels = shape[3] if name == "DEPTHWISE_CONV_2D" else shape[0]
                per_tensor = cfg.get("per_tensor") and (kind == "dynamic" or name == "FULLY_CONNECTED")
                want_ns = 1 if per_tensor else channels
                zps = td[i]["quantization_parameters"]["zero_points"]
                if dt != "int8" or ns != want_ns or not const or np.any(zps != 0):
                    problems.append(f"{what}: expected const int8 weights, {want_ns} scales, zero points 0")
            elif bias and kind == "int8":
                if dt != "int32" or ns != nscales(d["inputs"][1]):
                    problems.append(f"{what}: expected an int32 bias quantized like the weights")
            elif kind == "int8":
                float_in = cfg["io"] == "float32" and name == "QUANTIZE" and n == 0
                if float_in:
                    if dt != "float32":
                        problems.append(f"{what}: expected the float32 graph input")
                elif not ((dt == "int8" and ns == 1) or (dt == "int32" and const and ns == 0)):
                    problems.append(f"{what}: expected int8 per-tensor (or an int32 shape constant)")
            else:
                dq_weight = name == "DEQUANTIZE" and const and dt == "int8" and ns > 1
                if not (dq_weight or (dt == "float32" and ns == 0) or (dt == "int32" and const and ns == 0)):
                    problems.append(f"{what}: expected float32 (or an int32 shape constant)")
        for i in d["outputs"]:
            dt, ns = dtype(i), nscales(i)
            if kind == "int8":
                float_out = cfg["io"] == "float32" and name == "DEQUANTIZE" and n == len(details) - 1
                ok = dt == "float32" and ns == 0 if float_out else dt == "int8" and ns == 1
            else:
                ok = dt == "float32" and ns == 0
            if not ok:
                problems.append(f"{name}#{n} output ({dt}, {ns} scales) has the wrong type")
    return problems


def round_away(v):
    """C round(): half away from zero (exact for f32 values in f64)."""
    v = np.asarray(v, dtype=np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def quantize_input(xf, scale, zero_point):
    """Float samples to int8 as TFLite's QUANTIZE does: f32 division, round
    half away from zero, add the zero point, saturate."""
    q = round_away(xf.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def versus_tensorflow(fn, x, in_d, out_d, y_ref):
    """How far the LiteRT reference output is from TensorFlow running the
    same function in float on the same (dequantized) inputs.

    float outputs: max |y - y_tf| / (1 + |y_tf|); int8 outputs: the largest
    difference in output quantization steps, with y_tf clamped to the range
    the int8 output can represent. A cross-check of the conversion, and a
    measure of the quantization error; not a tolerance for anything.
    """
    xf = x.astype(np.float32)
    if in_d["dtype"] == np.int8:
        s, zp = in_d["quantization"]
        xf = (np.float32(s) * (x.astype(np.float32) - zp)).astype(np.float32)
    y_tf = np.stack([fn(tf.constant(v)).numpy() for v in xf]).astype(np.float64)
    if out_d["dtype"] == np.int8:
        s, zp = out_d["quantization"]
        y_tf = np.clip(y_tf, s * (-128 - zp), s * (127 - zp))
        y = s * (y_ref.astype(np.float64) - zp)
        return {"max_steps": round(float(np.max(np.abs(y - y_tf)) / s), 3)}
    err = np.abs(y_ref.astype(np.float64) - y_tf) / (1.0 + np.abs(y_tf))
    return {"max_err": float(err.max())}


def compare(a, b):
    if a.dtype == np.int8:
        d = np.abs(a.astype(np.int32) - b.astype(np.int32))
        return {"differing": int(np.count_nonzero(d)), "max_steps": int(d.max())}
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"max_abs": float(d.max()), "max_rel": float((d / (1e-6 + np.abs(b))).max())}


def generate(spec, out):
    c = Case(spec["base"], spec["input_shape"])
    body = spec["fn"](c)
    lo, hi = spec["input_range"]
    shape = spec["input_shape"]
    rep = np.random.default_rng(zlib.crc32(f"{c.base}/rep".encode()))
    rep_samples = rep.uniform(lo, hi, [REP_SAMPLES] + shape).astype(np.float32)
    # Test samples reach 10% beyond the calibration range on each side, so
    # the int8 inputs hit -128 and 127 and QUANTIZE (int8fio) saturates.
    pad = 0.1 * (hi - lo)
    inp = np.random.default_rng(zlib.crc32(f"{c.base}/inputs".encode()))
    xf = inp.uniform(lo - pad, hi + pad, [SAMPLES] + shape).astype(np.float32)
    decl = [None] + shape[1:] if spec["dynamic_batch"] else shape
    tspec = tf.TensorSpec(decl, tf.float32, name="x")

    entries = []
    for flavour in spec["flavours"]:
        name = f"{c.base}_{flavour}"
        tf.keras.utils.set_random_seed(zlib.crc32(name.encode()) & 0x7FFFFFFF)
        model = convert(tspec, body, flavour, rep_samples)
        rewrite = None
        if spec["rewrite"]:
            text, fn, before = spec["rewrite"]
            if before is not None:
                ref = interpreter(model, OpResolverType.BUILTIN_REF)
                got = [d["op_name"] for d in ref._get_ops_details()]
                if got != before:
                    sys.exit(f"{name}: before the rewrite the converter gave {got}, expected {before}")
            original = model
            mt = read_model(model)
            fn(mt, flavour)
            model = write_model(mt)
            rewrite = text
        mt = read_model(model)
        it = interpreter(model, OpResolverType.BUILTIN_REF)
        problems = check(spec, flavour, mt, it)
        if problems:
            sys.exit(f"{name}: the converter did not produce the intended model:\n  " + "\n  ".join(problems))

        (in_d,), (out_d,) = it.get_input_details(), it.get_output_details()
        if in_d["dtype"] == np.int8:
            scale, zp = in_d["quantization"]
            x = quantize_input(xf, scale, zp)
        else:
            x = xf.copy()
        if list(in_d["shape"]) != shape:
            sys.exit(f"{name}: model input shape {list(in_d['shape'])}, expected {shape}")
        y_ref = run(model, x, OpResolverType.BUILTIN_REF)
        if run(model, x, OpResolverType.BUILTIN_REF).tobytes() != y_ref.tobytes():
            sys.exit(f"{name}: BUILTIN_REF gives different outputs on two runs (reads "
                     f"uninitialized or out-of-bounds memory?)")
        if y_ref.dtype == np.float32 and not np.all(np.isfinite(y_ref)):
            sys.exit(f"{name}: BUILTIN_REF output is not finite")
        y_def = run(model, x, None)
        vs_tf = versus_tensorflow(spec["reference"] or body, x, in_d, out_d, y_ref)
        if flavour == "f32" and vs_tf["max_err"] > 1e-5:
            sys.exit(f"{name}: LiteRT and TensorFlow disagree on the float model: {vs_tf}")
        if rewrite and spec["rewrite"][2] == ["RESHAPE"]:
            # A shape op moves bytes: the edited model must give exactly what
            # the converter's RESHAPE model gave.
            y_orig = run(original, x, OpResolverType.BUILTIN_REF)
            if y_orig.tobytes() != y_ref.tobytes():
                sys.exit(f"{name}: the rewritten model differs from the converter's RESHAPE model")

        (out / f"{name}.tflite").write_bytes(model)
        np.save(out / f"{name}.inputs.npy", np.ascontiguousarray(x))
        np.save(out / f"{name}.expected_ref.npy", np.ascontiguousarray(y_ref))
        np.save(out / f"{name}.expected_default.npy", np.ascontiguousarray(y_def))

        sub = mt.subgraphs[0]
        cfg = FLAVOURS[flavour]
        md = {bytes(m.name).decode(): mt.buffers[m.buffer].data for m in mt.metadata or []}
        mrv = md.get("min_runtime_version")
        entry = {
            "name": name,
            "base": c.base,
            "variant": cfg["kind"],
            "flavour": flavour,
            "ops": [op_name(mt, op) for op in sub.operators],
            "input": tensor_info(mt, sub.inputs[0], full=True),
            "output": tensor_info(mt, sub.outputs[0], full=True),
            "input_range": [lo, hi],
            "samples_range": [lo - pad, hi + pad],
            "exact": bool(y_ref.dtype == np.int8),
            "ref_vs_default": compare(y_def, y_ref),
            "vs_tensorflow": vs_tf,
            "signature": [
                {"key": bytes(s.signatureKey).decode(),
                 "inputs": [bytes(t.name).decode() for t in s.inputs],
                 "outputs": [bytes(t.name).decode() for t in s.outputs]}
                for s in mt.signatureDefs or []],
            "min_runtime_version": bytes(mrv).rstrip(b"\0").decode() if mrv is not None else None,
            "op_details": [
                {"op": op_name(mt, op), "version": int(mt.operatorCodes[op.opcodeIndex].version),
                 "options": options_of(op),
                 "inputs": [tensor_info(mt, int(i)) if i >= 0 else None for i in op.inputs],
                 "outputs": [tensor_info(mt, int(i)) for i in op.outputs]}
                for op in sub.operators],
            "tflite_bytes": len(model),
        }
        if rewrite:
            entry["rewrite"] = rewrite
        if spec["note"]:
            entry["note"] = spec["note"]
        entries.append(entry)
        print(f"{name:36s} {' '.join(entry['ops']):60s} {str(shape):16s} -> "
              f"{str(entry['output']['shape']):14s} {len(model):6d} B", flush=True)
    return entries


def versions():
    return {
        "tensorflow": tf.__version__,
        "ai-edge-litert": importlib.metadata.version("ai-edge-litert"),
        "numpy": np.__version__,
        "flatbuffers": importlib.metadata.version("flatbuffers"),
        "python": sys.version.split()[0],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--only", help="only bases whose name contains this (no index/README written)")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    bases = [s["base"] for s in CASES]
    assert len(bases) == len(set(bases)), "duplicate base name"
    index = []
    for spec in CASES:
        if args.only and args.only not in spec["base"]:
            continue
        index.extend(generate(spec, out))
    if args.only:
        return
    v = versions()
    # One case per line: diffs show which cases changed, and the file stays small.
    lines = ",\n".join("  " + json.dumps(e) for e in index)
    (out / "index.json").write_text(f'{{\n "versions": {json.dumps(v)},\n "cases": [\n{lines}\n ]\n}}\n')
    (out / "README.md").write_text(readme(index, v))
    names = {e["name"] for e in index}
    stale = [p.name for p in out.iterdir()
             if p.name not in ("index.json", "README.md") and p.name.split(".")[0] not in names]
    if stale:
        sys.exit(f"files of no case in {out}: {stale} (remove them and rerun)")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(index)} cases, {total} bytes in {out}")


def readme(index, v):
    rows = "\n".join(
        f"| `{e['name']}` | {e['variant']} | {', '.join(e['ops'])} | "
        f"{e['input']['dtype']} {e['input']['shape']} | {e['output']['dtype']} {e['output']['shape']} | "
        f"{'exact' if e['exact'] else 'tolerance'} | "
        + (f"{e['ref_vs_default']['differing']} differ" if e["exact"]
           else f"{e['ref_vs_default']['max_abs']:.1e}")
        + (f" | {e['vs_tensorflow']['max_steps']:g} steps" if e["exact"]
           else f" | {e['vs_tensorflow']['max_err']:.1e}")
        + f" | {'rewritten' if 'rewrite' in e else ''} |"
        for e in index
    )
    bases = list(dict.fromkeys(e["base"] for e in index))
    rewrites = "\n".join(
        f"- `{b}` ({', '.join(e['flavour'] for e in index if e['base'] == b)}): "
        f"{next(e['rewrite'] for e in index if e['base'] == b)}."
        for b in bases if any("rewrite" in e for e in index if e["base"] == b))
    first = {b: next(e for e in index if e["base"] == b) for b in bases}
    notes = "\n".join(f"- `{b}`: {first[b]['note']}." for b in bases if "note" in first[b])
    return f"""# TFLite operator fixtures

Generated by `python3 conformance/gen_tflite_cases.py` with tensorflow-cpu
{v['tensorflow']} (its TFLite converter), ai-edge-litert {v['ai-edge-litert']} (the
LiteRT interpreter that made the goldens), numpy {v['numpy']}, flatbuffers
{v['flatbuffers']}, Python {v['python']}. Do not edit by hand: change the script
and rerun it. The output is byte-for-byte reproducible: the converter's
`CONVERSION_METADATA` holds only its version, the conversion options and a
hash of the input graph, all deterministic (also across tf.function names).
The generator is not run in CI; to regenerate:

    pip install tensorflow-cpu==2.21.0 ai-edge-litert==2.3.0
    python3 conformance/gen_tflite_cases.py            # under a minute, one core
    python3 conformance/gen_tflite_cases.py --out /tmp/t && \\
        for f in conformance/tflite/*; do cmp "$f" "/tmp/t/${{f##*/}}"; done

A newer LiteRT may change the goldens: BUILTIN_REF's int8 FULLY_CONNECTED
requantizes in f64 since LiteRT commit 9213607 (issue LiteRT#8567 asks to
revert it), and its LOGISTIC/TANH tables use the platform's `expf`/`tanhf`.
Record the versions above when comparing.

## Files

For each case `<base>_<flavour>`:

- `<name>.tflite`: one subgraph, one input, one output, signature
  `serving_default` (input `x`, output `y`), converted with
  `TFLiteConverter.from_concrete_functions`.
- `<name>.inputs.npy`: `[8, *input_shape]` in the model's input dtype. Float
  samples are uniform in `samples_range` (the case's `input_range` widened by
  10% each side), drawn from `np.random.default_rng(zlib.crc32("<base>/inputs"))`;
  int8 inputs are those samples quantized with the model's input scale and
  zero point (f32 division, round half away from zero, saturate), so all
  flavours of a base see the same data and int8 inputs reach -128 and 127.
- `<name>.expected_ref.npy`: `[8, *output_shape]` in the output dtype,
  LiteRT `Interpreter(experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
  num_threads=1)`, one sample per `invoke()`. These are the goldens: int8
  outputs must match exactly (`exact: true`), float outputs within the float
  tolerance (1e-4 relative or 1e-5 absolute).
- `<name>.expected_default.npy`: the same with the default op resolver
  (optimized kernels and the XNNPACK delegate); for information only.
  `ref_vs_default` in index.json says how far it is from the reference.

Flavours (`variant` is float, int8 or dynamic):

- `f32`: float32 model.
- `int8`: full-integer post-training quantization: `optimizations=[DEFAULT]`,
  a seeded representative dataset (32 samples uniform in `input_range` from
  `zlib.crc32("<base>/rep")`), `supported_ops=[TFLITE_BUILTINS_INT8]`,
  `inference_input_type = inference_output_type = tf.int8`. Per-channel int8
  weights (zero points 0), int32 biases, per-tensor int8 activations.
- `int8pt`: as `int8`, FULLY_CONNECTED weights per-tensor
  (`_experimental_disable_per_channel_quantization_for_dense_layers`).
- `int8fio`: as `int8` with float32 graph I/O: QUANTIZE (f32 -> i8) first,
  DEQUANTIZE (i8 -> f32) last.
- `dyn`: dynamic-range quantization: `optimizations=[DEFAULT]` without a
  representative dataset; float I/O, int8 per-channel weights feeding the
  hybrid CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED kernels. The
  quantizer leaves weights with fewer than 1024 elements float, so dyn cases
  have at least 1024 weights.
- `dynpt`: as `dyn` with per-tensor weights (`_experimental_disable_per_channel`).

Weights are uniform in +-1/sqrt(fan_in), biases in +-0.3, drawn from
`np.random.default_rng(zlib.crc32("<base>"))`, the same for every flavour of a
base. `tf.keras.utils.set_random_seed(crc32(name))` is set before each
conversion.

## Checks made while generating

Every model is read back with the LiteRT interpreter (`_get_ops_details()`,
tensor dtypes and quantization) and with LiteRT's flatbuffer schema
(`ai_edge_litert.schema_py_generated`, for the operator options). The script
stops if the operators are not exactly the declared ones in order (nothing
folded, fused or split), if a dtype is not the flavour's (int8 activations
per-tensor, const int8 weights with one scale per output channel and zero
points 0, int32 bias; float tensors unquantized; int8 weights in every
hybrid op), or if a declared option (padding, strides, dilation, depth
multiplier, fused activation, keep_num_dims, axis, beta, alpha, keep_dims) is
not what the converter wrote.

It also stops if BUILTIN_REF gives different bytes on a second run over the
same inputs or a non-finite float output, and if a `f32` model's reference
output differs from TensorFlow running the same `tf.function` by more than
1e-5 relative (`|y - y_tf| / (1 + |y_tf|)`). For the other flavours the
distance to TensorFlow (on the dequantized int8 inputs, in output
quantization steps for int8 outputs, TensorFlow's value clamped to what the
int8 output can represent) is recorded as `vs_tensorflow`: it measures the
quantization error, and is no tolerance for anything (for `int8fio` it also
includes the clipping of the samples beyond the calibration range).

Buffer alignment: the converter aligns large buffers (weights) to 16 bytes
but small ones (biases, shape constants, metadata) only to their element
size, so a reader must not assume `force_align: 16`.

## What the converter cannot produce, and the rewritten cases

With static shapes the converter turns SQUEEZE and EXPAND_DIMS into RESHAPE
(SQUEEZE survives only with two or more unknown dimensions, EXPAND_DIMS with
an unknown batch: `expand_dims_dynamic_batch`); it has no way to write a
softmax beta other than 1; and it never puts a DEQUANTIZE in front of the
int8 weights of CONV_2D or FULLY_CONNECTED (dynamic-range quantization uses
the hybrid kernels instead; only ops without a hybrid kernel, such as GATHER,
get DEQUANTIZE). Conv without bias is not expressible either: the converter
adds a zero bias tensor. FULLY_CONNECTED keeps an absent bias (-1). These
cases start from the converter's model and edit it with LiteRT's generated
object API (`rewrite` in index.json). The edited models keep the converter's
metadata (`min_runtime_version` included) and are re-packed with every buffer
16-byte aligned; the SQUEEZE and EXPAND_DIMS models were checked to give
exactly the bytes of the RESHAPE model they came from:

{rewrites}

## index.json

`versions`, then `cases`, one entry per case: `name`, `base`, `variant`
(float, int8, dynamic), `flavour`, `ops` (in execution order), `input` and
`output` (tensor name, dtype, shape, `shape_signature` when it differs,
scale and zero_point when quantized), `input_range`, `samples_range`,
`exact` (int8 output: must match `expected_ref` bit for bit), `ref_vs_default`
(the default resolver against the reference: differing elements and the largest
difference in steps, or the largest absolute and relative float difference),
`vs_tensorflow` (above),
`signature`, `min_runtime_version` (from the model's metadata),
`op_details` (per operator: version, options, and each input/output tensor's
dtype, shape, constness and quantization; per-channel tensors give the axis
and channel count), `tflite_bytes`, and `rewrite` / `note` where present.

## Notes

{notes}

## Cases

| case | variant | ops | input | output | golden | default vs ref | vs TF | |
|---|---|---|---|---|---|---|---|---|
{rows}
"""


if __name__ == "__main__":
    main()
