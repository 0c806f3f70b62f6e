#!/usr/bin/env python3
"""Train and export the demo model of the `vitals-anomaly` template.

What it makes, in templates/vitals-anomaly/:
  model/vitals_ae.onnx   a small dense autoencoder over a 32 s window of
                         heart rate, SpO2 and respiration rate (1 Hz), with
                         outputs `reconstruction` and `score` (mean squared
                         reconstruction error in normalized units)
  vectors/inputs.npy     16 test windows: 8 held-out normal, then 8 anomalous
  vectors/expected.npy   onnxruntime `reconstruction` for each test window
  vectors/expected.1.npy onnxruntime `score` for each test window
  template.json          alert threshold and metadata for the template

The training data is synthetic: plausible resting adult vitals, generated
here with a fixed seed. Besides the normal windows the autoencoder also sees
copies with channel levels shifted out of range, whose target is clipped back
to the normal range (see make_range_shifted: without them it reconstructs a
steady bradycardia or bradypnoea almost perfectly). It is a demo that
exercises the toolchain end to end; it is NOT a clinically validated detector.

Run from the repository root (or anywhere; paths are relative to this file):
    python3 templates/scripts/train_vitals_anomaly.py
Running it twice gives byte-identical output files.
Needs numpy, onnx and onnxruntime; trains with plain numpy on one core.
"""

import os

# Pin BLAS to one thread before numpy loads it: float sums in a threaded BLAS
# may be split differently from run to run, which would break byte-identical
# outputs, and the brief is "one core" anyway.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import json
import pathlib
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SEED = 20261121
WINDOW = 32  # samples, 1 Hz
CHANNELS = ["heart_rate_bpm", "spo2_percent", "resp_rate_bpm"]
HR, SPO2, RR = 0, 1, 2

N_TRAIN_SUBJECTS = 320
N_HELDOUT_SUBJECTS = 80
WINDOWS_PER_SUBJECT = 20  # 6400 training windows, 1600 held-out windows

EPOCHS = 300
BATCH = 128
LEARNING_RATE = 2e-3
THRESHOLD_PERCENTILE = 99.5

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "vitals-anomaly"


# ---------------------------------------------------------------------------
# Synthetic vitals
# ---------------------------------------------------------------------------

def make_subjects(rng, n):
    """Per-subject resting baselines (bpm, %, breaths/min).

    Spread chosen to cover healthy resting adults: HR 62-88, SpO2 96-98.8,
    RR 13-18, so the window drift and noise keep HR in ~55-100,
    SpO2 in ~95-99.5 (capped at 100) and RR in ~12-20.
    """
    return np.stack(
        [
            rng.uniform(62.0, 88.0, n),
            rng.uniform(96.0, 98.8, n),
            rng.uniform(13.0, 18.0, n),
        ],
        axis=1,
    )


def ar1_noise(rng, n_windows, sd, phi=0.6):
    """Stationary AR(1) noise: sensor/beat-to-beat jitter is not white."""
    e = rng.normal(0.0, sd * np.sqrt(1.0 - phi**2), (n_windows, WINDOW))
    out = np.empty_like(e)
    out[:, 0] = rng.normal(0.0, sd, n_windows)
    for t in range(1, WINDOW):
        out[:, t] = phi * out[:, t - 1] + e[:, t]
    return out


def make_windows(rng, baselines, per_subject):
    """Normal windows, [len(baselines) * per_subject, WINDOW, 3] float64.

    A shared slow "activity" signal (linear trend plus a slow oscillation)
    moves HR and RR together, as they do with posture, talking or light
    movement; SpO2 dips very slightly with it. On top come per-window
    offsets (the same person is not identical from hour to hour) and small
    correlated noise.
    """
    base = np.repeat(baselines, per_subject, axis=0)
    n = base.shape[0]
    t = np.arange(WINDOW) / (WINDOW - 1)

    # Bounded draws (uniform, clipped normal) keep every window in range
    # instead of letting rare tails produce implausible "normal" vitals.
    slope = rng.uniform(-1.5, 1.5, (n, 1))
    amp = rng.uniform(0.0, 1.0, (n, 1))
    period = rng.uniform(20.0, 60.0, (n, 1))  # seconds: slow, not beat-level
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, 1))
    activity = slope * (t - 0.5) + amp * np.sin(
        2.0 * np.pi * np.arange(WINDOW) / period + phase
    )

    offset = np.clip(rng.normal(0.0, 1.0, (n, 3)), -2.0, 2.0) * np.array([2.0, 0.3, 0.7])

    hr = base[:, [HR]] + offset[:, [HR]] + 2.5 * activity + ar1_noise(rng, n, 0.8)
    rr = base[:, [RR]] + offset[:, [RR]] + 0.7 * activity + ar1_noise(rng, n, 0.35)
    spo2 = base[:, [SPO2]] + offset[:, [SPO2]] - 0.1 * activity + ar1_noise(rng, n, 0.25)
    spo2 = np.minimum(spo2, 100.0)  # a saturation cannot exceed 100 %
    return np.stack([hr, spo2, rr], axis=2)


def make_anomalies(rng):
    """Eight abnormal windows, each a pattern a bedside monitor should flag.

    Each starts from a fresh normal window of a new subject so the rest of
    the signal stays realistic, then one clinical event is imposed.
    """
    x = make_windows(rng, make_subjects(rng, 8), 1)
    t = np.arange(WINDOW, dtype=np.float64)
    names = []

    # 0: desaturation, SpO2 sliding from baseline to ~86 % over 20 s
    #    (e.g. obstructive apnoea); HR rises a little in response.
    ramp = np.clip((t - 8.0) / 20.0, 0.0, 1.0)
    x[0, :, SPO2] = x[0, :, SPO2] * (1 - ramp) + (86.0 + rng.normal(0, 0.4, WINDOW)) * ramp
    x[0, :, HR] += 8.0 * ramp
    names.append("desaturation to ~86% SpO2")

    # 1: sustained tachycardia ~135 bpm.
    x[1, :, HR] = 135.0 + rng.normal(0, 1.5, WINDOW)
    names.append("tachycardia ~135 bpm")

    # 2: bradypnoea ~6 breaths/min (e.g. opioid-induced respiratory depression).
    x[2, :, RR] = 6.0 + rng.normal(0, 0.3, WINDOW)
    names.append("bradypnoea ~6/min")

    # 3: sensor dropout: the oximeter probe falls off at t=12 s; the device
    #    then reports 0 for HR and SpO2 (a common "no signal" encoding).
    x[3, 12:, HR] = 0.0
    x[3, 12:, SPO2] = 0.0
    names.append("sensor dropout (HR, SpO2 flat at 0)")

    # 4: sudden HR jump of +40 bpm at t=16 s (e.g. onset of SVT/AF with RVR).
    x[4, 16:, HR] += 40.0
    names.append("sudden HR jump +40 bpm")

    # 5: bradycardia ~38 bpm.
    x[5, :, HR] = 38.0 + rng.normal(0, 1.0, WINDOW)
    names.append("bradycardia ~38 bpm")

    # 6: tachypnoea ~32 breaths/min.
    x[6, :, RR] = 32.0 + rng.normal(0, 0.8, WINDOW)
    names.append("tachypnoea ~32/min")

    # 7: combined deterioration (sepsis-like): HR 118, SpO2 91 %, RR 27.
    x[7, :, HR] = 118.0 + rng.normal(0, 1.5, WINDOW)
    x[7, :, SPO2] = 91.0 + rng.normal(0, 0.4, WINDOW)
    x[7, :, RR] = 27.0 + rng.normal(0, 0.6, WINDOW)
    names.append("combined: HR 118, SpO2 91%, RR 27")

    return x, names


def make_range_shifted(rng, normal, lo, hi, n):
    """Copies of normal windows with whole-channel level shifts, and their targets.

    Why: a ReLU network extrapolates linearly, and an autoencoder trained only
    on normal windows learns "channel level" as a direction it can represent,
    so it reconstructs a steady out-of-range level (bradycardia at 38 bpm,
    bradypnoea at 6/min) almost perfectly and scores it as normal. Here each
    copy gets 1-3 channels shifted by a random amount, and the target is the
    input clipped to the range seen in normal training data [lo, hi]. For a
    normal window clipping changes nothing, so the objective stays "reproduce
    the input", extended to "... as it would look within the normal range".
    The score then grows with how far a window leaves that range.
    """
    x = normal[rng.integers(0, len(normal), n)].copy()
    shifted = rng.random((n, 3)) < 0.5
    shifted[~shifted.any(axis=1), rng.integers(0, 3)] = True  # at least one channel
    sign = np.where(rng.random((n, 3)) < 0.5, -1.0, 1.0)
    sign[:, SPO2] = -1.0  # SpO2 is already near its ceiling of 100 %
    size = rng.uniform(0.0, 1.0, (n, 3)) * np.array([70.0, 25.0, 20.0])
    x += (shifted * sign * size)[:, None, :]
    # Keep the inputs physical: no negative rates, no saturation above 100 %.
    x = np.maximum(x, 0.0)
    x[..., SPO2] = np.minimum(x[..., SPO2], 100.0)
    return x, np.clip(x, lo, hi)


# ---------------------------------------------------------------------------
# Autoencoder in numpy
# ---------------------------------------------------------------------------

LAYERS = [(96, 24), (24, 8), (8, 24), (24, 96)]
LAYER_NAMES = ["enc_fc1", "enc_fc2", "dec_fc1", "dec_fc2"]


def init_params(rng):
    """He-normal weights (ReLU network), zero biases; W is [out, in] like Gemm transB=1."""
    params = []
    for fan_in, fan_out in LAYERS:
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_out, fan_in))
        params += [w, np.zeros(fan_out)]
    return params


def forward(params, x):
    """Returns the reconstruction and the per-layer activations for backprop."""
    acts = [x]
    h = x
    for i in range(len(LAYERS)):
        w, b = params[2 * i], params[2 * i + 1]
        z = h @ w.T + b
        h = np.maximum(z, 0.0) if i < len(LAYERS) - 1 else z
        acts.append(h)
    return h, acts


def train(rng, x_in, x_target, x_monitor):
    """Minibatch Adam on MSE(f(x_in), x_target).

    Returns the params and the per-epoch MSE on `x_monitor` (the normal
    training windows, i.e. plain reconstruction error).
    """
    params = init_params(rng)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    n = x_in.shape[0]
    step = 0
    curve = []
    for epoch in range(EPOCHS):
        order = rng.permutation(n)
        # Cosine decay: large steps early, then settle so the final weights
        # (and hence the threshold) do not depend on the last minibatch.
        lr = LEARNING_RATE * 0.5 * (1.0 + np.cos(np.pi * epoch / EPOCHS))
        for start in range(0, n, BATCH):
            batch = order[start : start + BATCH]
            y, acts = forward(params, x_in[batch])
            g = 2.0 * (y - x_target[batch]) / y.size  # d(mean squared error)/dy
            grads = [None] * len(params)
            for i in reversed(range(len(LAYERS))):
                w = params[2 * i]
                grads[2 * i] = g.T @ acts[i]
                grads[2 * i + 1] = g.sum(axis=0)
                if i > 0:
                    g = (g @ w) * (acts[i] > 0.0)
            step += 1
            for k, (p, gk) in enumerate(zip(params, grads)):
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mhat = m[k] / (1 - b1**step)
                vhat = v[k] / (1 - b2**step)
                p -= lr * mhat / (np.sqrt(vhat) + eps)
        y, _ = forward(params, x_monitor)
        curve.append(float(np.mean((y - x_monitor) ** 2)))
    return params, curve


# ---------------------------------------------------------------------------
# ONNX export and inference
# ---------------------------------------------------------------------------

def export(params, mean, std):
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)
    inits = [
        numpy_helper.from_array(f32(mean.reshape(1, 1, 3)), "norm_mean"),
        numpy_helper.from_array(f32(std.reshape(1, 1, 3)), "norm_std"),
        numpy_helper.from_array(np.array([1, WINDOW, 3], dtype=np.int64), "window_shape"),
    ]
    nodes = [
        helper.make_node("Sub", ["vitals", "norm_mean"], ["centered"], name="normalize_sub"),
        helper.make_node("Div", ["centered", "norm_std"], ["xn"], name="normalize_div"),
        helper.make_node("Flatten", ["xn"], ["flat"], name="flatten", axis=1),
    ]
    h = "flat"
    for i, name in enumerate(LAYER_NAMES):
        inits.append(numpy_helper.from_array(f32(params[2 * i]), f"{name}.weight"))
        inits.append(numpy_helper.from_array(f32(params[2 * i + 1]), f"{name}.bias"))
        out = f"{name}_out"
        nodes.append(
            helper.make_node(
                "Gemm", [h, f"{name}.weight", f"{name}.bias"], [out], name=name, transB=1
            )
        )
        h = out
        if i < len(LAYER_NAMES) - 1:
            nodes.append(helper.make_node("Relu", [h], [f"{name}_relu"], name=f"{name}_relu"))
            h = f"{name}_relu"
    nodes += [
        helper.make_node("Reshape", [h, "window_shape"], ["reconstruction"], name="unflatten"),
        helper.make_node("Sub", ["reconstruction", "xn"], ["residual"], name="score_residual"),
        helper.make_node("Mul", ["residual", "residual"], ["residual_sq"], name="score_square"),
        helper.make_node(
            "ReduceMean", ["residual_sq"], ["score"], name="score_mean", axes=[1, 2], keepdims=0
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "vitals_anomaly_autoencoder",
        [helper.make_tensor_value_info("vitals", TensorProto.FLOAT, [1, WINDOW, 3])],
        [
            helper.make_tensor_value_info("reconstruction", TensorProto.FLOAT, [1, WINDOW, 3]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, [1]),
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13)],
        producer_name="cargo-medwasm train_vitals_anomaly.py",
        producer_version="1",
        doc_string=(
            "Demo autoencoder over 32 s of HR (bpm), SpO2 (%), RR (/min) at 1 Hz, "
            "trained on synthetic normal vitals. score = mean squared reconstruction "
            "error in normalized units. Not clinically validated."
        ),
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {
        o.name: [d.dim_value for d in o.type.tensor_type.shape.dim]
        for o in inferred.graph.output
    }
    assert shapes == {"reconstruction": [1, WINDOW, 3], "score": [1]}, shapes
    return model


def ort_session(model_bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def run_each(sess, windows):
    """Batch 1 per run, as on the device; returns reconstructions and scores."""
    recs, scores = [], []
    for w in windows:
        rec, score = sess.run(["reconstruction", "score"], {"vitals": w[None].astype(np.float32)})
        recs.append(rec[0])
        scores.append(score)
    return np.stack(recs).astype(np.float32), np.stack(scores).astype(np.float32)


def save_npy(path, a):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


# ---------------------------------------------------------------------------

def main():
    t0 = time.perf_counter()
    root = np.random.default_rng(SEED)
    # Independent streams, so changing e.g. the anomalies does not change
    # the training data or the trained weights.
    data_rng, train_rng, anomaly_rng, shift_rng = root.spawn(4)

    train_x = make_windows(data_rng, make_subjects(data_rng, N_TRAIN_SUBJECTS), WINDOWS_PER_SUBJECT)
    # Held-out windows come from subjects never seen in training, so the
    # threshold reflects new patients rather than memorised baselines.
    held_x = make_windows(data_rng, make_subjects(data_rng, N_HELDOUT_SUBJECTS), WINDOWS_PER_SUBJECT)

    # Sanity: the normal data must stay in the plausible ranges promised above.
    for name, c, lo, hi in [("HR", HR, 50, 105), ("SpO2", SPO2, 94, 100), ("RR", RR, 10, 22)]:
        vals = np.concatenate([train_x[..., c].ravel(), held_x[..., c].ravel()])
        assert lo <= vals.min() and vals.max() <= hi, (name, vals.min(), vals.max())

    # Per-channel statistics over all training samples and time steps.
    mean = train_x.reshape(-1, 3).mean(axis=0)
    std = train_x.reshape(-1, 3).std(axis=0)
    norm = lambda w: ((w - mean) / std).reshape(len(w), -1)

    # Range-shifted copies (see make_range_shifted), as many as normal windows.
    lo = train_x.reshape(-1, 3).min(axis=0)
    hi = train_x.reshape(-1, 3).max(axis=0)
    shift_in, shift_target = make_range_shifted(shift_rng, train_x, lo, hi, len(train_x))

    xn_train = norm(train_x)
    params, curve = train(
        train_rng,
        np.concatenate([xn_train, norm(shift_in)]),
        np.concatenate([xn_train, norm(shift_target)]),
        xn_train,
    )

    model = export(params, mean, std)
    model_bytes = model.SerializeToString()
    sess = ort_session(model_bytes)

    # Threshold from onnxruntime scores on held-out normals (float32, exactly
    # as deployed), rounded to the 6 significant digits stored in template.json.
    _, held_scores = run_each(sess, held_x)
    threshold = float(f"{np.percentile(held_scores[:, 0].astype(np.float64), THRESHOLD_PERCENTILE):.6g}")

    anomalies, anomaly_names = make_anomalies(anomaly_rng)
    # The first held-out window of each of the first 8 held-out subjects:
    # different people, taken in order rather than hand-picked.
    normal = held_x[np.arange(8) * WINDOWS_PER_SUBJECT]
    inputs = np.concatenate([normal, anomalies]).astype(np.float32)
    rec, scores = run_each(sess, inputs)

    (OUT / "model").mkdir(parents=True, exist_ok=True)
    (OUT / "model" / "vitals_ae.onnx").write_bytes(model_bytes)
    save_npy(OUT / "vectors" / "inputs.npy", inputs)
    save_npy(OUT / "vectors" / "expected.npy", rec)
    save_npy(OUT / "vectors" / "expected.1.npy", scores)
    meta = {
        "threshold": threshold,
        "window": WINDOW,
        "channels": CHANNELS,
        "normal_vectors": 8,
        "anomalous_vectors": 8,
        "train_seed": SEED,
        "onnxruntime": ort.__version__,
    }
    (OUT / "template.json").write_text(json.dumps(meta, indent=2) + "\n")

    # ---- summary -----------------------------------------------------------
    print("architecture: [1,32,3] -> (x-mean)/std -> flatten 96 -> Gemm 96x24 -> Relu"
          " -> Gemm 24x8 -> Relu -> Gemm 8x24 -> Relu -> Gemm 24x96 -> reshape [1,32,3]")
    print(f"parameters: {sum(p.size for p in params)}; training windows {len(train_x)},"
          f" held-out {len(held_x)} ({N_HELDOUT_SUBJECTS} unseen subjects)")
    print("normalization mean:", np.round(mean, 3).tolist(), "std:", np.round(std, 3).tolist())
    print(f"normal range used for clipped targets: lo {np.round(lo, 2).tolist()}, hi {np.round(hi, 2).tolist()};"
          f" {len(shift_in)} range-shifted copies")
    print("training reconstruction MSE on normal windows (normalized units):")
    for e in [0, 9, 49, 99, 199, EPOCHS - 1]:
        print(f"  epoch {e + 1:4d}: {curve[e]:.5f}")
    print(f"held-out score: median {np.median(held_scores):.5f}, max {held_scores.max():.5f}")
    print(f"threshold ({THRESHOLD_PERCENTILE}th percentile of held-out scores): {threshold:.6g}")
    labels = [f"normal (held-out subject {i})" for i in range(8)] + anomaly_names
    ok = True
    for i, (label, s) in enumerate(zip(labels, scores[:, 0])):
        alert = bool(s > threshold)
        want = i >= 8
        ok &= alert == want
        print(f"  vector {i:2d}  score {s:10.5f}  {'ALERT' if alert else 'ok   '}  {label}")
    print(f"done in {time.perf_counter() - t0:.1f} s; outputs in {OUT}")
    assert ok, "a normal window alerted or an anomaly did not"


if __name__ == "__main__":
    main()
