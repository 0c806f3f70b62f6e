#!/usr/bin/env python3
"""Generate the DSP goldens in conformance/dsp/ from scipy and numpy.

The runtime's DSP blocks (`sdk/medwasm/src/dsp/`) are checked against these
files on every target (natively, in wasm32 with simd128, and on Cortex-M in
QEMU). Two references per case:

  *.ref.npy    float64, scipy / numpy on the float64 input: the answer the
               block approximates in f32 (checked within a tolerance per block,
               see docs/dsp.md)
  *.f32.npy    float32: the block's arithmetic, written out here one float32
               operation at a time with numpy scalars (IEEE single precision,
               each operation correctly rounded), in the order the Rust code
               documents. Every target must reproduce it bit for bit; it is an
               independent model of the f32 arithmetic, not an output of our code.

For the Butterworth designs the script also writes scipy's `butter(...,
output='sos')` in float64 (`*.sos.npy`): the Rust design must match it within
1e-12 relative. The f32 filter reference runs with scipy's coefficients rounded
to float32, so it does not depend on our design; the script checks that it is
what scipy's own float32 `sosfilt` computes, bit for bit.

Files: index.json (the cases and their parameters) and the npy files it names,
one per block with a row (or a run) per case, so the Rust tests include a fixed
list of files.
Seeded (numpy default_rng(9)); running the script twice gives identical files.

Usage: python3 conformance/gen_dsp_cases.py [--out DIR]
Needs numpy >= 2 and scipy (pip; `.ci/setup` installs both). Not run in CI:
the generated files are committed.
"""

import argparse
import json
import math
import os

import numpy as np
import scipy
from scipy import signal, stats

F32 = np.float32
N = 1024  # samples per test signal
MAX_SECTIONS = 4  # the most sections of any design below


def test_signal(rng, n, fs):
    """Sinusoids across the band, a DC offset, a step, and white noise."""
    t = np.arange(n) / fs
    x = 0.8 + 0.5 * (t > t[n // 3])
    for f in (0.3, 1.2, 5.0, 11.0, 0.2 * fs, 0.4 * fs):
        x = x + rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    x = x + 0.3 * rng.standard_normal(n)
    return x.astype(F32)


def sosfilt_f32(sos32, x32):
    """scipy's sosfilt inner loop (Direct Form II transposed), one f32 op at a time."""
    s = sos32.shape[0]
    z = np.zeros((s, 2), dtype=F32)
    y = np.empty_like(x32)
    for n in range(x32.shape[0]):
        cur = x32[n]
        for k in range(s):
            b0, b1, b2, _, a1, a2 = sos32[k]
            new = b0 * cur + z[k, 0]
            z[k, 0] = (b1 * cur - a1 * new) + z[k, 1]
            z[k, 1] = b2 * cur - a2 * new
            cur = new
        y[n] = cur
    return y


def fir_f32(taps32, x32):
    """y[n] = sum b[k] x[n-k], summed from the oldest sample to the newest."""
    m = taps32.shape[0]
    y = np.empty_like(x32)
    for n in range(x32.shape[0]):
        acc = F32(0.0)
        for k in range(m - 1, -1, -1):
            xv = x32[n - k] if n - k >= 0 else F32(0.0)
            acc = acc + taps32[k] * xv
        y[n] = acc
    return y


def moving_average_f32(width, x32):
    """The window's sum from the oldest sample to the newest, then divided by `width`."""
    y = np.empty_like(x32)
    w = F32(width)
    for n in range(x32.shape[0]):
        acc = F32(0.0)
        for k in range(width - 1, -1, -1):
            acc = acc + (x32[n - k] if n - k >= 0 else F32(0.0))
        y[n] = acc / w
    return y


def dc_block_f32(alpha32, x32):
    """y[n] = (x[n] - x[n-1]) + alpha * y[n-1], from zero state."""
    y = np.empty_like(x32)
    xp, yp = F32(0.0), F32(0.0)
    for n in range(x32.shape[0]):
        yp = (x32[n] - xp) + alpha32 * yp
        xp = x32[n]
        y[n] = yp
    return y


def mean_f32(w32):
    acc = F32(0.0)
    for v in w32:
        acc = acc + v
    return acc / F32(w32.shape[0])


def zscore_f32(w32, min_std32):
    """(x - mean) / max(std, min_std), population std (ddof 0), sums in order."""
    mean = mean_f32(w32)
    acc = F32(0.0)
    for v in w32:
        d = v - mean
        acc = acc + d * d
    std = np.sqrt(acc / F32(w32.shape[0]))
    div = std if std > min_std32 else min_std32
    return np.array([(v - mean) / div for v in w32], dtype=F32)


def minmax_f32(w32, min_range32):
    lo, hi = w32[0], w32[0]
    for v in w32:
        lo = v if v < lo else lo
        hi = v if v > hi else hi
    r = hi - lo
    div = r if r > min_range32 else min_range32
    return np.array([(v - lo) / div for v in w32], dtype=F32)


def smv_f32(xyz32):
    """sqrt((x*x + y*y) + z*z) per sample."""
    out = np.empty(xyz32.shape[0], dtype=F32)
    for i, (x, y, z) in enumerate(xyz32):
        out[i] = np.sqrt((x * x + y * y) + z * z)
    return out


def fft_f32(re, im):
    """Radix-2 decimation in time, one f32 operation at a time (see spectrum.rs)."""
    n = re.shape[0]
    bits = n.bit_length() - 1
    re, im = re.astype(F32).copy(), im.astype(F32).copy()
    for i in range(n):
        j = int(format(i, f"0{bits}b")[::-1], 2) if bits else 0
        if i < j:
            re[i], re[j] = re[j], re[i]
            im[i], im[j] = im[j], im[i]
    cos = [F32(math.cos(2.0 * math.pi * k / n)) for k in range(n // 2)]
    sin = [F32(math.sin(2.0 * math.pi * k / n)) for k in range(n // 2)]
    length = 2
    while length <= n:
        half, step = length // 2, n // length
        for start in range(0, n, length):
            for j in range(half):
                wr, wi = cos[j * step], -sin[j * step]
                a, b = start + j, start + j + half
                tr = wr * re[b] - wi * im[b]
                ti = wr * im[b] + wi * re[b]
                re[b] = re[a] - tr
                im[b] = im[a] - ti
                re[a] = re[a] + tr
                im[a] = im[a] + ti
        length *= 2
    return re, im


def psd_f32(x32, fs, hann, detrend):
    """The periodogram of spectrum.rs, one f32 operation at a time."""
    n = x32.shape[0]
    if hann:
        w = np.array([F32(0.5 - 0.5 * math.cos(2.0 * math.pi * k / n)) for k in range(n)], dtype=F32)
    else:
        w = np.ones(n, dtype=F32)
    energy = 0.0
    for v in w:
        energy += float(v) * float(v)
    scale = F32(1.0 / (float(F32(fs)) * energy))
    mean = F32(0.0)
    if detrend:
        for v in x32:
            mean = mean + v
        mean = mean / F32(n)
    xw = np.array([((v - mean) if detrend else v) * wv for v, wv in zip(x32, w)], dtype=F32)
    re, im = fft_f32(xw, np.zeros(n, dtype=F32))
    psd = np.empty(n // 2 + 1, dtype=F32)
    for k in range(n // 2 + 1):
        v = (re[k] * re[k] + im[k] * im[k]) * scale
        psd[k] = v if k in (0, n // 2) else v * F32(2.0)
    return psd


def band_power_f32(psd32, n, fs, lo, hi):
    freq = np.arange(n // 2 + 1) * (1.0 / (n * (1.0 / fs)))
    acc = F32(0.0)
    for k in range(n // 2 + 1):
        if lo <= freq[k] < hi:
            acc = acc + psd32[k]
    return acc * (F32(fs) / F32(n))


def median_f32(width, x32):
    """The median of the last `width` samples (zeros before the first); for even
    widths (a + b) / 2 of the middle two in f32, as numpy's median of float32."""
    padded = np.concatenate([np.zeros(width - 1, dtype=F32), x32])
    y = np.empty_like(x32)
    for n in range(x32.shape[0]):
        w = np.sort(padded[n:n + width])
        y[n] = w[width // 2] if width % 2 else (w[width // 2 - 1] + w[width // 2]) / F32(2.0)
    return y


def interpolate_f32(taps32, factor, x32):
    """Output factor*n + p = sum over j of taps[p + factor*j] * x[n - j], the
    oldest sample (largest j) first, from 0."""
    m = taps32.shape[0]
    y = np.empty(x32.shape[0] * factor, dtype=F32)
    for n in range(x32.shape[0]):
        for p in range(factor):
            acc = F32(0.0)
            if p < m:
                for j in range((m - 1 - p) // factor, -1, -1):
                    xv = x32[n - j] if n - j >= 0 else F32(0.0)
                    acc = acc + taps32[p + factor * j] * xv
            y[factor * n + p] = acc
    return y


def save(out, name, arr, dtype):
    arr = np.ascontiguousarray(arr, dtype=dtype)
    np.save(os.path.join(out, name), arr)
    return name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "dsp"))
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(9)
    index = {"numpy": np.__version__, "scipy": scipy.__version__, "samples": N}

    x32 = test_signal(rng, N, 360.0)
    index["input"] = save(out, "input.f32.npy", x32, "<f4")
    x64 = x32.astype(np.float64)

    # Butterworth designs: (name, kind, order, cut-offs in Hz, sample rate in Hz).
    specs = [
        ("lp4_40_360", "lowpass", 4, [40.0], 360.0),
        ("lp5_20_100", "lowpass", 5, [20.0], 100.0),
        ("lp1_10_100", "lowpass", 1, [10.0], 100.0),
        ("lp3_20_50", "lowpass", 3, [20.0], 50.0),  # above fs/4: the real pole is negative
        ("hp3_0p5_360", "highpass", 3, [0.5], 360.0),
        ("hp2_0p3_50", "highpass", 2, [0.3], 50.0),
        ("bp2_5_15_360", "bandpass", 2, [5.0, 15.0], 360.0),
        ("bp3_0p5_40_360", "bandpass", 3, [0.5, 40.0], 360.0),
        ("bp4_0p5_8_50", "bandpass", 4, [0.5, 8.0], 50.0),
        ("bp1_1_20_100", "bandpass", 1, [1.0, 20.0], 100.0),
    ]
    # Butterworth: one row per design; `sos` padded with zero rows to 4 sections
    # (index.json gives each design's count).
    butter, sos_rows, refs, f32s = [], [], [], []
    for name, kind, order, cut, fs in specs:
        wn = cut[0] if len(cut) == 1 else cut
        sos = signal.butter(order, wn, btype=kind, fs=fs, output="sos")
        sos32 = sos.astype(F32)
        y32 = sosfilt_f32(sos32, x32)
        # scipy's own float32 path: the same recurrence in C, no FMA on x86-64.
        y_scipy32 = signal.sosfilt(sos32, x32)
        assert y_scipy32.dtype == F32
        if not np.array_equal(y_scipy32.view(np.uint32), y32.view(np.uint32)):
            raise SystemExit(f"{name}: the f32 emulation is not scipy's float32 sosfilt")
        padded = np.zeros((MAX_SECTIONS, 6))
        padded[:sos.shape[0]] = sos
        sos_rows.append(padded)
        refs.append(signal.sosfilt(sos, x64))
        f32s.append(y32)
        butter.append({"name": name, "kind": kind, "order": order, "cutoff_hz": cut, "fs_hz": fs,
                       "sections": int(sos.shape[0])})
    index["butter"] = {
        "cases": butter,
        "sos": save(out, "butter.sos.npy", np.stack(sos_rows), "<f8"),
        "ref": save(out, "butter.ref.npy", np.stack(refs), "<f8"),
        "f32": save(out, "butter.f32.npy", np.stack(f32s), "<f4"),
    }

    # Designs only, every order up to the runtime's MAX_ORDER (8) for each band, at
    # cut-offs from near DC to near Nyquist: scipy's sos padded to 8 sections.
    sweep, sweep_sos = [], []
    for kind, cuts in (("lowpass", ([0.7], [12.0], [47.0])), ("highpass", ([0.3], [20.0], [45.0])),
                       ("bandpass", ([0.5, 40.0], [8.0, 9.0], [2.0, 48.0]))):
        for order in range(1, 9):
            for cut in cuts:
                wn = cut[0] if len(cut) == 1 else cut
                sos = signal.butter(order, wn, btype=kind, fs=100.0, output="sos")
                padded = np.zeros((8, 6))
                padded[:sos.shape[0]] = sos
                sweep_sos.append(padded)
                sweep.append({"kind": kind, "order": order, "cutoff_hz": cut, "fs_hz": 100.0,
                              "sections": int(sos.shape[0])})
    index["butter_designs"] = {
        "cases": sweep,
        "sos": save(out, "butter_designs.sos.npy", np.stack(sweep_sos), "<f8"),
    }

    # FIR: taps padded with zeros to the longest (index.json gives each length).
    firs = [
        ("lowpass31", signal.firwin(31, 0.1)),
        ("bandpass16", signal.firwin(16, [0.1, 0.3], pass_zero=False)),
        ("diff5", np.array([-0.125, -0.25, 0.0, 0.25, 0.125])),  # Pan-Tompkins derivative
    ]
    longest = max(len(t) for _, t in firs)
    taps_rows, refs, f32s = [], [], []
    for _, taps in firs:
        taps32 = taps.astype(F32)
        taps_rows.append(np.concatenate([taps32, np.zeros(longest - len(taps), dtype=F32)]))
        refs.append(signal.lfilter(taps32.astype(np.float64), [1.0], x64))
        f32s.append(fir_f32(taps32, x32))
    index["fir"] = {
        "cases": [{"name": n, "taps": len(t)} for n, t in firs],
        "taps": save(out, "fir.taps.npy", np.stack(taps_rows), "<f4"),
        "ref": save(out, "fir.ref.npy", np.stack(refs), "<f8"),
        "f32": save(out, "fir.f32.npy", np.stack(f32s), "<f4"),
    }

    widths = [1, 5, 32]
    index["moving_average"] = {
        "widths": widths,
        "ref": save(out, "movavg.ref.npy", np.stack([signal.lfilter(np.ones(w) / w, [1.0], x64) for w in widths]), "<f8"),
        "f32": save(out, "movavg.f32.npy", np.stack([moving_average_f32(w, x32) for w in widths]), "<f4"),
    }

    # Moving median over the last `width` samples, zeros before the first.
    widths = [1, 5, 6, 31]
    index["moving_median"] = {
        "widths": widths,
        "ref": save(out, "movmedian.ref.npy", np.stack([
            np.median(np.lib.stride_tricks.sliding_window_view(
                np.concatenate([np.zeros(w - 1), x64]), w), axis=1) for w in widths]), "<f8"),
        "f32": save(out, "movmedian.f32.npy", np.stack([median_f32(w, x32) for w in widths]), "<f4"),
    }

    # Decimation as scipy's decimate(ftype='fir', zero_phase=False), with its own
    # taps (firwin(20q + 1, 1/q), Hamming) rounded to f32; interpolation as
    # upfirdn(taps, x, up=L) with taps L * firwin(n, 1/L).
    dec, dec_taps, dec_ref, dec_32 = [], [], [], []
    for q in (2, 3):
        taps32 = signal.firwin(20 * q + 1, 1.0 / q, window="hamming").astype(F32)
        dec.append({"factor": q, "taps": int(taps32.shape[0])})
        dec_taps.append(taps32)
        dec_ref.append(signal.decimate(x64, q, ftype="fir", zero_phase=False))
        dec_32.append(fir_f32(taps32, x32)[::q])
    inter, int_taps, int_ref, int_32 = [], [], [], []
    for factor, n in ((2, 31), (3, 24)):
        taps32 = (factor * signal.firwin(n, 1.0 / factor)).astype(F32)
        inter.append({"factor": factor, "taps": n})
        int_taps.append(taps32)
        int_ref.append(signal.upfirdn(taps32.astype(np.float64), x64, up=factor)[:N * factor])
        int_32.append(interpolate_f32(taps32, factor, x32))
    index["resample"] = {
        "decimate": dec, "interpolate": inter,
        "decimate_taps": save(out, "decimate.taps.npy", np.concatenate(dec_taps), "<f4"),
        "decimate_ref": save(out, "decimate.ref.npy", np.concatenate(dec_ref), "<f8"),
        "decimate_f32": save(out, "decimate.f32.npy", np.concatenate(dec_32), "<f4"),
        "interpolate_taps": save(out, "interpolate.taps.npy", np.concatenate(int_taps), "<f4"),
        "interpolate_ref": save(out, "interpolate.ref.npy", np.concatenate(int_ref), "<f8"),
        "interpolate_f32": save(out, "interpolate.f32.npy", np.concatenate(int_32), "<f4"),
    }

    alphas = [0.995, 0.9]
    index["dc_block"] = {
        "alphas": alphas,
        "ref": save(out, "dcblock.ref.npy", np.stack([signal.lfilter([1.0, -1.0], [1.0, -float(F32(a))], x64) for a in alphas]), "<f8"),
        "f32": save(out, "dcblock.f32.npy", np.stack([dc_block_f32(F32(a), x32) for a in alphas]), "<f4"),
    }

    # Normalization over windows x[start:start + width] of the input, the results
    # concatenated in the order of `windows`.
    windows = [(0, 64), (300, 250), (900, 7), (500, 1)]
    zs_ref, zs_32, mm_ref, mm_32 = [], [], [], []
    for start, width in windows:
        w32 = x32[start:start + width]
        w64 = w32.astype(np.float64)
        # scipy gives NaN for a single sample (std 0); the block gives 0 (min_std).
        zs_ref.append(stats.zscore(w64) if width > 1 else np.zeros(1))
        zs_32.append(zscore_f32(w32, F32(1e-6)))
        rng64 = w64.max() - w64.min()
        mm_ref.append((w64 - w64.min()) / rng64 if width > 1 else np.zeros(1))
        mm_32.append(minmax_f32(w32, F32(1e-6)))
    index["normalize"] = {
        "min_std": 1e-6, "min_range": 1e-6, "windows": windows,
        "zscore_ref": save(out, "zscore.ref.npy", np.concatenate(zs_ref), "<f8"),
        "zscore_f32": save(out, "zscore.f32.npy", np.concatenate(zs_32), "<f4"),
        "minmax_ref": save(out, "minmax.ref.npy", np.concatenate(mm_ref), "<f8"),
        "minmax_f32": save(out, "minmax.f32.npy", np.concatenate(mm_32), "<f4"),
    }

    # Sliding windows: numpy's view, every `hop`-th start, all frames flattened and
    # concatenated case after case.
    cases = [(64, 16), (100, 100), (50, 120), (1, 1), (1024, 7)]
    frames = [np.lib.stride_tricks.sliding_window_view(x32, wd)[::hop] for wd, hop in cases]
    index["windows"] = {
        "cases": [{"width": wd, "hop": hop, "frames": int(f.shape[0])} for (wd, hop), f in zip(cases, frames)],
        "frames": save(out, "windows.f32.npy", np.concatenate([f.ravel() for f in frames]), "<f4"),
    }

    # Signal magnitude vector of a simulated 3-axis accelerometer in g: gravity on
    # a slowly turning axis, walking, a fall-like spike, and noise.
    t = np.arange(N) / 50.0
    xyz = np.stack([np.sin(0.2 * t), np.cos(0.2 * t), 0.1 * np.sin(1.7 * t)], axis=1)
    xyz[:, 2] += 0.3 * np.sin(2 * np.pi * 1.8 * t)
    xyz[600:610] += rng.uniform(-3, 3, size=(10, 3))
    xyz += 0.05 * rng.standard_normal(xyz.shape)
    xyz32 = xyz.astype(F32)
    index["smv"] = {
        "input": save(out, "smv.input.f32.npy", xyz32, "<f4"),
        "ref": save(out, "smv.ref.npy", np.linalg.norm(xyz32.astype(np.float64), axis=1), "<f8"),
        "f32": save(out, "smv.f32.npy", smv_f32(xyz32), "<f4"),
    }

    # Spectra: the FFT of the first n samples (numpy's fft), and the one-sided
    # periodogram (scipy's, scaling='density') and band powers of the same samples.
    spectra = [(8, 100.0, False, False, [(0.0, 30.0), (30.0, 50.1)]),
               (64, 360.0, False, False, [(0.0, 40.0), (40.0, 180.1)]),
               (256, 50.0, True, True, [(0.5, 3.0), (3.0, 8.0), (8.0, 25.1)]),
               (1024, 360.0, True, True, [(0.5, 40.0), (5.0, 15.0)])]
    fft_ref, fft_32, psd_ref, psd_32, bp_ref, bp_32 = [], [], [], [], [], []
    for n, fs, hann, detrend, bands in spectra:
        xs = x32[:n]
        spec = np.fft.fft(xs.astype(np.float64))
        fft_ref.append(np.concatenate([spec.real, spec.imag]))
        fft_32.append(np.concatenate(fft_f32(xs, np.zeros(n, dtype=F32))))
        f, p = signal.periodogram(xs.astype(np.float64), fs=fs, window="hann" if hann else "boxcar",
                                  detrend="constant" if detrend else False, scaling="density")
        p32 = psd_f32(xs, fs, hann, detrend)
        psd_ref.append(p)
        psd_32.append(p32)
        for lo, hi in bands:
            bp_ref.append(p[(f >= lo) & (f < hi)].sum() * (f[1] - f[0]))
            bp_32.append(band_power_f32(p32, n, fs, lo, hi))
    index["spectrum"] = {
        "cases": [{"n": n, "fs_hz": fs, "hann": hann, "detrend": detrend, "bands": bands}
                  for n, fs, hann, detrend, bands in spectra],
        "fft_ref": save(out, "fft.ref.npy", np.concatenate(fft_ref), "<f8"),
        "fft_f32": save(out, "fft.f32.npy", np.concatenate(fft_32), "<f4"),
        "psd_ref": save(out, "psd.ref.npy", np.concatenate(psd_ref), "<f8"),
        "psd_f32": save(out, "psd.f32.npy", np.concatenate(psd_32), "<f4"),
        "band_power_ref": save(out, "bandpower.ref.npy", np.array(bp_ref), "<f8"),
        "band_power_f32": save(out, "bandpower.f32.npy", np.array(bp_32, dtype=F32), "<f4"),
    }

    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(out, p)) for p in os.listdir(out))
    print(f"wrote {out}: {len(os.listdir(out))} files, {total} bytes")


if __name__ == "__main__":
    main()
