//! The DSP blocks against `conformance/dsp/` (`conformance/gen_dsp_cases.py`):
//! bit for bit against the float32 model of each block's arithmetic (so every
//! target that runs this battery — native, wasm32 + simd128, and the Cortex-M
//! firmware in `mcu` — gives the same bits), and within the tolerances of
//! `docs/dsp.md` against scipy in float64. Plus the blocks' refusals and the
//! chunking invariance a streaming pipeline relies on.

use medwasm::dsp::design::Sos;
use medwasm::dsp::{
    Band, Butterworth, DcBlocker, Decimator, DspError, Fft, Fir, Interpolator, MovingAverage,
    MovingMedian, Periodogram, SosFilter, Window, Windows, magnitude, magnitudes, min_max, z_score,
};
use serde_json::Value;

use super::Rng;

const INDEX: &str = include_str!("../../../../conformance/dsp/index.json");

macro_rules! golden {
    ($name:literal) => {
        Npy::parse(include_bytes!(concat!(
            "../../../../conformance/dsp/",
            $name
        )))
    };
}

/// A C-order `.npy` array of f32 or f64, as f64 values plus the f32 bits.
pub(crate) struct Npy {
    pub(crate) shape: Vec<usize>,
    pub(crate) f64s: Vec<f64>,
    pub(crate) f32s: Vec<f32>,
}

impl Npy {
    pub(crate) fn parse(bytes: &[u8]) -> Npy {
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let (len, start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            _ => (
                u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
                12,
            ),
        };
        let header = std::str::from_utf8(&bytes[start..start + len]).unwrap();
        assert!(header.contains("'fortran_order': False"), "{header}");
        let dims = &header[header.find("'shape': (").unwrap() + 10..];
        let shape = dims[..dims.find(')').unwrap()]
            .split(',')
            .filter_map(|d| d.trim().parse().ok())
            .collect();
        let data = &bytes[start + len..];
        let (f64s, f32s) = if header.contains("'<f8'") {
            let v: Vec<f64> = data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let w = v.iter().map(|&x| x as f32).collect();
            (v, w)
        } else {
            assert!(header.contains("'<f4'"), "{header}");
            let w: Vec<f32> = data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (w.iter().map(|&x| x as f64).collect(), w)
        };
        Npy { shape, f64s, f32s }
    }

    /// Row `i` of a 2-D array, as f64.
    fn row64(&self, i: usize) -> &[f64] {
        let n = self.shape[1];
        &self.f64s[i * n..(i + 1) * n]
    }

    /// Row `i` of a 2-D array, as f32.
    fn row32(&self, i: usize) -> &[f32] {
        let n = self.shape[1];
        &self.f32s[i * n..(i + 1) * n]
    }
}

fn index() -> Value {
    serde_json::from_str(INDEX).unwrap()
}

pub(crate) fn input() -> Vec<f32> {
    golden!("input.f32.npy").f32s
}

/// Asserts `got` is `want` to the bit.
fn same_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{what}: sample {i} is {g:e}, the f32 model says {w:e}"
        );
    }
}

/// The largest `|got - want|` over the largest `|want|`: the error relative to
/// the signal's scale, which is what an f32 pipeline can promise (an f32 output
/// near a zero crossing has no small relative error to keep).
fn scaled_error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
    err / scale
}

fn spec(case: &Value) -> Butterworth {
    let cut: Vec<f64> = case["cutoff_hz"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let band = match case["kind"].as_str().unwrap() {
        "lowpass" => Band::LowPass { cutoff_hz: cut[0] },
        "highpass" => Band::HighPass { cutoff_hz: cut[0] },
        "bandpass" => Band::BandPass {
            low_hz: cut[0],
            high_hz: cut[1],
        },
        other => panic!("unknown band `{other}`"),
    };
    Butterworth {
        band,
        order: case["order"].as_u64().unwrap() as usize,
        fs_hz: case["fs_hz"].as_f64().unwrap(),
    }
}

/// scipy's sections of case `i` (unpadded).
fn scipy_sos(sos: &Npy, i: usize, sections: usize) -> Vec<[f64; 6]> {
    let per_case = sos.shape[1] * 6;
    (0..sections)
        .map(|s| {
            let at = i * per_case + s * 6;
            sos.f64s[at..at + 6].try_into().unwrap()
        })
        .collect()
}

#[test]
fn butterworth_designs_match_scipy_sos() {
    let index = index();
    let sos = golden!("butter.sos.npy");
    let cases = index["butter"]["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let mut kinds = std::collections::BTreeSet::new();
    let mut worst = 0.0f64;
    for (i, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let spec = spec(case);
        kinds.insert(case["kind"].as_str().unwrap());
        let sections = case["sections"].as_u64().unwrap() as usize;
        assert_eq!(spec.sections(), sections, "{name}: section count");
        let ours: Sos = spec.design().unwrap();
        let want = scipy_sos(&sos, i, sections);
        assert_eq!(ours.sections().len(), sections, "{name}");
        for (s, (o, w)) in ours.sections().iter().zip(&want).enumerate() {
            for c in 0..6 {
                let err = (o[c] - w[c]).abs() / (1.0 + w[c].abs());
                worst = worst.max(err);
                // scipy and libm may differ in the last bit of a cosine or tangent;
                // the pairing and ordering must be scipy's exactly.
                assert!(
                    err <= 1e-12,
                    "{name}: section {s} coefficient {c} is {} where scipy has {}",
                    o[c],
                    w[c]
                );
                // And in f32, what the filter runs on, they are the same number.
                assert_eq!(
                    (o[c] as f32).to_bits(),
                    (w[c] as f32).to_bits(),
                    "{name}: section {s} coefficient {c} rounds differently to f32"
                );
            }
        }
    }
    assert_eq!(
        kinds.len(),
        3,
        "low-, high- and band-pass designs: {kinds:?}"
    );
    eprintln!("butterworth design: largest difference to scipy {worst:.1e} (scaled)");
}

/// A section with its numerator divided by `b0`, and its poles' distance to the
/// unit circle (zpk2sos's order key: the closest go last).
fn normalized(row: &[f64; 6]) -> ([f64; 6], f64) {
    let mut r = *row;
    let b0 = r[0];
    for v in &mut r[..3] {
        *v /= b0;
    }
    // Complex poles have |p|² = a2; a real pair's larger |p| is the worse one.
    let (a1, a2) = (r[4], r[5]);
    let disc = a1 * a1 - 4.0 * a2;
    let radius = if disc < 0.0 {
        a2.sqrt()
    } else {
        ((-a1).abs() + disc.sqrt()) / 2.0
    };
    (r, (1.0 - radius).abs())
}

#[test]
fn butterworth_designs_of_every_order_match_scipy_sos() {
    let index = index();
    let sos = golden!("butter_designs.sos.npy");
    let cases = index["butter_designs"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3 * 8 * 3);
    let mut reordered = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let spec = spec(case);
        let what = format!("{:?} order {}", spec.band, spec.order);
        let sections = case["sections"].as_u64().unwrap() as usize;
        assert_eq!(spec.sections(), sections, "{what}: section count");
        let ours = spec.design().unwrap();
        let want = scipy_sos(&sos, i, sections);
        let close = |a: &[f64; 6], b: &[f64; 6]| {
            (0..6).all(|c| (a[c] - b[c]).abs() / (1.0 + b[c].abs()) <= 1e-12)
        };
        if ours.sections().iter().zip(&want).all(|(o, w)| close(o, w)) {
            for (o, w) in ours.sections().iter().zip(&want) {
                for c in 0..6 {
                    assert_eq!(
                        (o[c] as f32).to_bits(),
                        (w[c] as f32).to_bits(),
                        "{what}: coefficient {c} rounds differently to f32"
                    );
                }
            }
            continue;
        }
        // Sections whose poles are equally far from the unit circle (a band-pass
        // symmetric about fs/4 mirrors its poles) tie in zpk2sos's order, which
        // float64 noise then decides; the design may order such a tie otherwise.
        // Everything else must agree: the order keys, the same sections within each
        // tie, and the overall gain (which zpk2sos puts in the first section).
        let ours_n: Vec<_> = ours.sections().iter().map(normalized).collect();
        let want_n: Vec<_> = want.iter().map(normalized).collect();
        for (s, ((o, od), (_, wd))) in ours_n.iter().zip(&want_n).enumerate() {
            assert!(
                (od - wd).abs() <= 1e-9,
                "{what}: section {s} is out of order"
            );
            assert!(
                want_n
                    .iter()
                    .any(|(w, d)| (d - od).abs() <= 1e-9 && close(o, w)),
                "{what}: section {s} {o:?} is not among scipy's sections tied with it"
            );
        }
        let gain = |rows: &[[f64; 6]]| rows.iter().map(|r| r[0]).product::<f64>();
        let (g, w) = (gain(ours.sections()), gain(&want));
        assert!((g - w).abs() <= 1e-12 * w.abs(), "{what}: gain {g} vs {w}");
        reordered.push(what);
    }
    // Only the symmetric band-pass (2 to 48 Hz at 100 Hz) has such ties.
    assert!(
        reordered
            .iter()
            .all(|w| w.contains("low_hz: 2.0, high_hz: 48.0")),
        "reordered: {reordered:?}"
    );
    eprintln!(
        "{} designs with tied sections ordered otherwise: {reordered:?}",
        reordered.len()
    );
}

#[test]
fn random_butterworth_specs_design_stable_filters_with_unit_gain() {
    // No scipy here: any valid spec must design without a panic into stable
    // sections (poles inside the unit circle) whose gain is 1 in the pass band
    // (at DC for a low-pass, at Nyquist for a high-pass).
    let mut rng = Rng(93);
    let unit = |rng: &mut Rng| (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    for _ in 0..3000 {
        let fs = [50.0, 100.0, 250.0, 360.0, 1000.0][rng.below(5)];
        let order = 1 + rng.below(8);
        // Cut-offs from 1e-4 to 0.9999 of Nyquist.
        let edge = |rng: &mut Rng| fs / 2.0 * (1e-4 + 0.9998 * unit(rng));
        let (a, b) = (edge(&mut rng), edge(&mut rng));
        let band = match rng.below(3) {
            0 => Band::LowPass { cutoff_hz: a },
            1 => Band::HighPass { cutoff_hz: a },
            _ if a == b => continue,
            _ => Band::BandPass {
                low_hz: a.min(b),
                high_hz: a.max(b),
            },
        };
        let spec = Butterworth {
            band,
            order,
            fs_hz: fs,
        };
        let sos = spec.design().unwrap();
        assert_eq!(sos.sections().len(), spec.sections(), "{spec:?}");
        let (mut dc, mut nyquist) = (1.0f64, 1.0f64);
        for row in sos.sections() {
            let [b0, b1, b2, a0, a1, a2] = *row;
            assert_eq!(a0, 1.0);
            assert!(
                a2.abs() < 1.0 && a1.abs() < 1.0 + a2,
                "{spec:?}: unstable section {row:?}"
            );
            dc *= (b0 + b1 + b2) / (1.0 + a1 + a2);
            nyquist *= (b0 - b1 + b2) / (1.0 - a1 + a2);
        }
        match band {
            Band::LowPass { .. } => assert!((dc - 1.0).abs() < 1e-6, "{spec:?}: dc gain {dc}"),
            Band::HighPass { .. } => {
                assert!(
                    (nyquist - 1.0).abs() < 1e-6,
                    "{spec:?}: nyquist gain {nyquist}"
                )
            }
            Band::BandPass { .. } => assert!(dc.abs() < 1e-6 && nyquist.abs() < 1e-6),
        }
    }
}

/// Runs `f` with `SosFilter<S>` for the case's section count.
macro_rules! with_sections {
    ($n:expr, $f:ident ( $($arg:expr),* )) => {
        match $n {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            n => panic!("no test instance for {n} sections"),
        }
    };
}

fn filter_designed<const S: usize>(spec: &Butterworth, x: &[f32]) -> Vec<f32> {
    let mut f = SosFilter::<S>::butterworth(spec).unwrap();
    let mut y = x.to_vec();
    f.process(&mut y);
    y
}

fn filter_given<const S: usize>(
    sos: &[[f64; 6]],
    x: &[f32],
    rng: &mut Rng,
) -> (Vec<f32>, Vec<f32>) {
    let rows: [[f32; 6]; S] = core::array::from_fn(|s| sos[s].map(|v| v as f32));
    let mut whole = SosFilter::<S>::new(&rows).unwrap();
    let mut y = x.to_vec();
    whole.process(&mut y);
    // The same signal in random chunks, some sample by sample.
    let mut chunked = SosFilter::<S>::new(&rows).unwrap();
    let mut z = x.to_vec();
    let mut at = 0;
    while at < z.len() {
        let n = (1 + rng.below(100)).min(z.len() - at);
        if n == 1 {
            z[at] = chunked.push(z[at]);
        } else {
            chunked.process(&mut z[at..at + n]);
        }
        at += n;
    }
    (y, z)
}

#[test]
fn sos_filters_are_bit_exact_to_the_f32_model_and_near_scipy() {
    let index = index();
    let x = input();
    let (sos, refs, f32s) = (
        golden!("butter.sos.npy"),
        golden!("butter.ref.npy"),
        golden!("butter.f32.npy"),
    );
    let mut rng = Rng(90);
    let mut worst = (0.0f64, "");
    for (i, case) in index["butter"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let name = case["name"].as_str().unwrap();
        let sections = case["sections"].as_u64().unwrap() as usize;
        // scipy's coefficients rounded to f32: the f32 model's, bit for bit.
        let given = scipy_sos(&sos, i, sections);
        let (whole, chunked) = with_sections!(sections, filter_given(&given, &x, &mut rng));
        same_bits(&whole, f32s.row32(i), name);
        same_bits(&chunked, f32s.row32(i), &format!("{name} in chunks"));
        // Our design rounds to scipy's f32 coefficients (checked in
        // `butterworth_designs_match_scipy_sos`), so its filter is the f32 model too.
        let ours = with_sections!(sections, filter_designed(&spec(case), &x));
        same_bits(&ours, f32s.row32(i), &format!("{name}, our design"));
        // Against scipy's float64 filter: f32 rounding of coefficients whose poles
        // sit near z = 1 (low cut-offs; the 0.5 Hz high-pass at 360 Hz has a pole
        // at 0.9913) moves the response by up to ~1e-4 of the full scale, as much
        // as scipy's own float32 `sosfilt`; low-pass designs stay near f32 epsilon.
        let tol = if case["kind"] == "lowpass" {
            1e-6
        } else {
            2e-4
        };
        let err = scaled_error(&ours, refs.row64(i));
        assert!(
            err <= tol,
            "{name}: error {err:.2e} of the full scale against scipy's float64 sosfilt"
        );
        if err > worst.0 {
            worst = (err, name);
        }
    }
    eprintln!("sosfilt: worst scaled error {:.2e} ({})", worst.0, worst.1);
}

fn fir_run<const N: usize>(taps: &[f32], x: &[f32]) -> Vec<f32> {
    let mut f = Fir::<N>::from_slice(taps).unwrap();
    let mut y = x.to_vec();
    let (a, b) = y.split_at_mut(x.len() / 3);
    f.process(a);
    for v in b.iter_mut() {
        *v = f.push(*v);
    }
    y
}

#[test]
fn fir_filters_are_bit_exact_to_the_f32_model_and_near_scipy() {
    let index = index();
    let x = input();
    let (taps, refs, f32s) = (
        golden!("fir.taps.npy"),
        golden!("fir.ref.npy"),
        golden!("fir.f32.npy"),
    );
    for (i, case) in index["fir"]["cases"].as_array().unwrap().iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let n = case["taps"].as_u64().unwrap() as usize;
        let t = &taps.row32(i)[..n];
        let y = match n {
            31 => fir_run::<31>(t, &x),
            16 => fir_run::<16>(t, &x),
            5 => fir_run::<5>(t, &x),
            n => panic!("no test instance for {n} taps"),
        };
        same_bits(&y, f32s.row32(i), name);
        let err = scaled_error(&y, refs.row64(i));
        assert!(
            err <= 1e-6,
            "{name}: error {err:.2e} against scipy's lfilter"
        );
    }
}

fn moving_average_run<const N: usize>(x: &[f32]) -> Vec<f32> {
    let mut m = MovingAverage::<N>::new();
    let mut y = x.to_vec();
    m.process(&mut y);
    y
}

#[test]
fn moving_averages_are_bit_exact_to_the_f32_model_and_near_scipy() {
    let index = index();
    let x = input();
    let (refs, f32s) = (golden!("movavg.ref.npy"), golden!("movavg.f32.npy"));
    for (i, w) in index["moving_average"]["widths"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let y = match w.as_u64().unwrap() {
            1 => moving_average_run::<1>(&x),
            5 => moving_average_run::<5>(&x),
            32 => moving_average_run::<32>(&x),
            n => panic!("no test instance for width {n}"),
        };
        same_bits(&y, f32s.row32(i), &format!("moving average {w}"));
        let err = scaled_error(&y, refs.row64(i));
        assert!(err <= 1e-6, "width {w}: error {err:.2e} against scipy");
    }
    // Width 1 is the identity.
    same_bits(&moving_average_run::<1>(&x), &x, "width 1");
}

#[test]
fn dc_blockers_are_bit_exact_to_the_f32_model_and_near_scipy() {
    let index = index();
    let x = input();
    let (refs, f32s) = (golden!("dcblock.ref.npy"), golden!("dcblock.f32.npy"));
    for (i, a) in index["dc_block"]["alphas"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let alpha = a.as_f64().unwrap() as f32;
        let mut d = DcBlocker::new(alpha).unwrap();
        let mut y = x.clone();
        d.process(&mut y);
        same_bits(&y, f32s.row32(i), &format!("dc blocker {alpha}"));
        let err = scaled_error(&y, refs.row64(i));
        assert!(err <= 1e-6, "alpha {alpha}: error {err:.2e} against scipy");
    }
}

#[test]
fn normalization_is_bit_exact_to_the_f32_model_and_near_scipy() {
    let index = index();
    let x = input();
    let norm = &index["normalize"];
    let min_std = norm["min_std"].as_f64().unwrap() as f32;
    let min_range = norm["min_range"].as_f64().unwrap() as f32;
    let (zr, z32, mr, m32) = (
        golden!("zscore.ref.npy"),
        golden!("zscore.f32.npy"),
        golden!("minmax.ref.npy"),
        golden!("minmax.f32.npy"),
    );
    let mut at = 0;
    for w in norm["windows"].as_array().unwrap() {
        let (start, width) = (
            w[0].as_u64().unwrap() as usize,
            w[1].as_u64().unwrap() as usize,
        );
        let span = at..at + width;
        let mut z = x[start..start + width].to_vec();
        z_score(&mut z, min_std).unwrap();
        same_bits(
            &z,
            &z32.f32s[span.clone()],
            &format!("z-score {start}+{width}"),
        );
        // Standardised values are O(1): an absolute bound.
        for (g, r) in z.iter().zip(&zr.f64s[span.clone()]) {
            assert!(
                (*g as f64 - r).abs() <= 2e-6,
                "z-score {start}+{width}: {g} vs {r}"
            );
        }
        let mut m = x[start..start + width].to_vec();
        min_max(&mut m, min_range).unwrap();
        same_bits(
            &m,
            &m32.f32s[span.clone()],
            &format!("min-max {start}+{width}"),
        );
        for (g, r) in m.iter().zip(&mr.f64s[span.clone()]) {
            assert!(
                (*g as f64 - r).abs() <= 1e-6,
                "min-max {start}+{width}: {g} vs {r}"
            );
        }
        at += width;
    }
    assert_eq!(at, zr.f64s.len());
    // A flat window comes out as zeros, not NaN.
    let mut flat = [2.5f32; 8];
    z_score(&mut flat, 1e-6).unwrap();
    assert_eq!(flat, [0.0; 8]);
    let mut flat = [2.5f32; 8];
    min_max(&mut flat, 1e-6).unwrap();
    assert_eq!(flat, [0.0; 8]);
    z_score(&mut [], 1e-6).unwrap();
}

fn windows_run<const W: usize>(x: &[f32], hop: usize, rng: &mut Rng) -> (Vec<u64>, Vec<f32>) {
    let mut w = Windows::<W>::new(hop).unwrap();
    let (mut starts, mut frames) = (Vec::new(), Vec::new());
    let mut at = 0;
    let mut total = 0;
    while at < x.len() {
        let n = rng.below(3 * W + 2).min(x.len() - at);
        total += w
            .push(&x[at..at + n], |start, frame| {
                starts.push(start);
                frames.extend_from_slice(frame);
                Ok::<(), ()>(())
            })
            .unwrap();
        at += n;
    }
    assert_eq!(total, starts.len());
    (starts, frames)
}

#[test]
fn sliding_windows_are_numpys_in_any_chunking() {
    let index = index();
    let x = input();
    let frames = golden!("windows.f32.npy");
    let mut rng = Rng(91);
    let mut at = 0;
    for case in index["windows"]["cases"].as_array().unwrap() {
        let width = case["width"].as_u64().unwrap() as usize;
        let hop = case["hop"].as_u64().unwrap() as usize;
        let count = case["frames"].as_u64().unwrap() as usize;
        let want = &frames.f32s[at..at + width * count];
        for _ in 0..3 {
            let (starts, got) = match width {
                64 => windows_run::<64>(&x, hop, &mut rng),
                100 => windows_run::<100>(&x, hop, &mut rng),
                50 => windows_run::<50>(&x, hop, &mut rng),
                1 => windows_run::<1>(&x, hop, &mut rng),
                1024 => windows_run::<1024>(&x, hop, &mut rng),
                n => panic!("no test instance for width {n}"),
            };
            let expected: Vec<u64> = (0..count as u64).map(|i| i * hop as u64).collect();
            assert_eq!(starts, expected, "width {width} hop {hop}: window starts");
            same_bits(&got, want, &format!("width {width} hop {hop}"));
        }
        at += width * count;
    }
    assert_eq!(at, frames.f32s.len());
}

#[test]
fn a_failing_window_callback_stops_the_push_and_the_stream_continues() {
    let mut w = Windows::<4>::new(2).unwrap();
    let x: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let mut seen = Vec::new();
    let err = w.push(&x, |start, frame| {
        seen.push((start, *frame));
        if start == 2 {
            Err("model failed")
        } else {
            Ok(())
        }
    });
    assert_eq!(err, Err("model failed"));
    assert_eq!(seen, [(0, [0.0, 1.0, 2.0, 3.0]), (2, [2.0, 3.0, 4.0, 5.0])]);
    // The samples after the failing window were not taken; pushing them again
    // continues the stream where it stopped.
    let n = w
        .push(&x[6..], |start, frame| {
            seen.push((start, *frame));
            Ok::<(), ()>(())
        })
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        seen[2..],
        [(4, [4.0, 5.0, 6.0, 7.0]), (6, [6.0, 7.0, 8.0, 9.0])]
    );
}

#[test]
fn signal_magnitude_is_bit_exact_to_the_f32_model_and_near_numpy() {
    let (input, refs, f32s) = (
        golden!("smv.input.f32.npy"),
        golden!("smv.ref.npy"),
        golden!("smv.f32.npy"),
    );
    assert_eq!(input.shape[1], 3);
    let mut out = vec![0.0; input.shape[0]];
    magnitudes(&input.f32s, &mut out).unwrap();
    same_bits(&out, &f32s.f32s, "smv");
    for (g, r) in out.iter().zip(&refs.f64s) {
        // One rounding of each product and sum, and of the square root.
        assert!(
            (*g as f64 - r).abs() <= 4.0 * f32::EPSILON as f64 * r,
            "{g} vs {r}"
        );
    }
    assert_eq!(magnitude(3.0, 4.0, 12.0), 13.0);
}

#[test]
fn bad_parameters_are_clear_errors() {
    let lp = |order, cutoff_hz, fs_hz| Butterworth {
        band: Band::LowPass { cutoff_hz },
        order,
        fs_hz,
    };
    let cases: Vec<(Result<Sos, DspError>, DspError, &str)> = vec![
        (
            lp(0, 10.0, 100.0).design(),
            DspError::Order { order: 0, max: 8 },
            "filter order 0 is not supported; choose an order from 1 to 8",
        ),
        (
            lp(9, 10.0, 100.0).design(),
            DspError::Order { order: 9, max: 8 },
            "filter order 9 is not supported; choose an order from 1 to 8",
        ),
        (
            lp(2, 50.0, 100.0).design(),
            DspError::Cutoff {
                hz: 50.0,
                fs: 100.0,
            },
            "cut-off 50 Hz is not between 0 and half the sample rate (50 Hz); choose a cut-off below the Nyquist frequency",
        ),
        (
            lp(2, 0.0, 100.0).design(),
            DspError::Cutoff { hz: 0.0, fs: 100.0 },
            "cut-off 0 Hz is not between 0 and half the sample rate (50 Hz); choose a cut-off below the Nyquist frequency",
        ),
        (
            lp(2, 10.0, -1.0).design(),
            DspError::SampleRate { fs: -1.0 },
            "sample rate -1 Hz is not a positive number; give the sensor's rate in Hz",
        ),
        (
            Butterworth {
                band: Band::BandPass {
                    low_hz: 15.0,
                    high_hz: 5.0,
                },
                order: 2,
                fs_hz: 360.0,
            }
            .design(),
            DspError::BandEdges {
                low: 15.0,
                high: 5.0,
            },
            "band-pass edges 15 Hz and 5 Hz are not in increasing order; give the lower edge first",
        ),
    ];
    for (got, want, message) in cases {
        assert_eq!(got.unwrap_err(), want);
        assert_eq!(want.to_string(), message);
    }
    assert!(matches!(
        lp(2, f64::NAN, 100.0).validate(),
        Err(DspError::Cutoff { .. })
    ));
    assert!(SosFilter::<2>::butterworth(&lp(3, 10.0, 100.0)).is_ok());
    let err = SosFilter::<1>::butterworth(&lp(3, 10.0, 100.0)).unwrap_err();
    assert_eq!(
        err,
        DspError::Sections {
            needed: 2,
            actual: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "the design has 2 second-order sections but the filter holds 1; declare it as `SosFilter<2>` (`Butterworth::sections` gives the count)"
    );
    let mut row = [1.0, 2.0, 1.0, 1.0, 0.1, 0.2];
    row[3] = 2.0;
    assert_eq!(
        SosFilter::<1>::new(&[row]).unwrap_err(),
        DspError::Coefficient {
            section: 0,
            index: 3
        }
    );
    row[3] = 1.0;
    row[5] = f32::INFINITY;
    assert_eq!(
        SosFilter::<1>::new(&[row]).unwrap_err(),
        DspError::Coefficient {
            section: 0,
            index: 5
        }
    );
    assert_eq!(
        Fir::<3>::new(&[0.5, f32::NAN, 0.5]).unwrap_err(),
        DspError::Tap { index: 1 }
    );
    assert_eq!(
        DspError::Tap { index: 1 }.to_string(),
        "tap 1 is not finite; check the filter design that produced the taps"
    );
    assert_eq!(
        DspError::Coefficient {
            section: 1,
            index: 3
        }
        .to_string(),
        "coefficient 3 of section 1 is not finite or `a0` is not 1; divide each section by its `a0` and check the design"
    );
    let err = Fir::<3>::from_slice(&[1.0; 4]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`taps` holds 4 values but must hold 3; size the buffers together"
    );
    let err = DcBlocker::new(1.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`alpha` is 1 but must be at least 0 and below 1 (0.99 to 0.999 for baseline removal)"
    );
    assert!(DcBlocker::new(f32::NAN).is_err());
    assert!(Windows::<4>::new(0).is_err());
    let err = z_score(&mut [1.0, 2.0], 0.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`min_std` is 0 but must be a positive finite number (1e-6 keeps a flat window at zero)"
    );
    assert!(min_max(&mut [1.0], f32::NAN).is_err());
    let err = magnitudes(&[1.0; 7], &mut [0.0; 2]).unwrap_err();
    assert_eq!(
        err,
        DspError::Length {
            what: "xyz",
            expected: 6,
            actual: 7
        }
    );
}

#[test]
fn a_filter_reset_starts_over() {
    let x = input();
    let spec = Butterworth {
        band: Band::BandPass {
            low_hz: 5.0,
            high_hz: 15.0,
        },
        order: 2,
        fs_hz: 360.0,
    };
    let mut f = SosFilter::<2>::butterworth(&spec).unwrap();
    let mut a = x[..200].to_vec();
    f.process(&mut a);
    f.reset();
    let mut b = x[..200].to_vec();
    f.process(&mut b);
    same_bits(&b, &a, "after reset");
    // The design as f32 coefficients is what `sos()` reports.
    let sos = f.sos();
    let design = spec.design().unwrap();
    for (o, d) in sos.iter().zip(design.sections()) {
        assert_eq!(*o, d.map(|v| v as f32));
    }
}

/// The DSP cases for the Cortex-M firmware (`tests/mcu-battery`), run natively
/// here: the records it reads and, per record, a name, the CRC-32 of the output
/// this build computes, and the input samples it takes (for per-sample counts). Records: u32 kind, u32 payload words, payload —
/// 0 input (f32s); 1 Butterworth (band 0/1/2, order, sections, cut-offs and rate as
/// f64); 2 FIR (count, taps); 3 moving average (width); 4 DC blocker (alpha); 5
/// z-score and 6 min-max (start, width, floor); 7 windows (width, hop, chunk); 8
/// magnitudes (x y z f32 triples); 9 spectrum (points, rate as f32, Hann, detrend,
/// then band edges as f64 pairs; the output is the FFT's re and im, the density
/// and the band powers); 10 moving median (width); 11 decimator and 12
/// interpolator (factor, count, taps); 13 a Butterworth design alone (as 1; the
/// CRC is of the f64 sections' bytes). Every output here is the goldens' (the tests
/// above), so a matching CRC on the board is the goldens' bits too.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn mcu_bundle() -> (Vec<u8>, Vec<(String, u32, usize)>) {
    fn record(out: &mut Vec<u8>, kind: u32, words: &[u32]) {
        out.extend(kind.to_le_bytes());
        out.extend((words.len() as u32).to_le_bytes());
        for w in words {
            out.extend(w.to_le_bytes());
        }
    }
    fn f64_words(v: f64) -> [u32; 2] {
        [v.to_bits() as u32, (v.to_bits() >> 32) as u32]
    }
    fn crc(v: &[f32]) -> u32 {
        medwasm::crc32(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
    }
    let index = index();
    let x = input();
    let (mut out, mut want) = (Vec::new(), Vec::new());
    record(
        &mut out,
        0,
        &x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
    );
    for case in index["butter"]["cases"].as_array().unwrap() {
        let spec = spec(case);
        let (band, c0, c1) = match spec.band {
            Band::LowPass { cutoff_hz } => (0, cutoff_hz, 0.0),
            Band::HighPass { cutoff_hz } => (1, cutoff_hz, 0.0),
            Band::BandPass { low_hz, high_hz } => (2, low_hz, high_hz),
        };
        let mut words = vec![band, spec.order as u32, spec.sections() as u32];
        for v in [c0, c1, spec.fs_hz] {
            words.extend(f64_words(v));
        }
        record(&mut out, 1, &words);
        let y = with_sections!(spec.sections(), filter_designed(&spec, &x));
        want.push((format!("butterworth {}", case["name"]), crc(&y), x.len()));
    }
    let taps = golden!("fir.taps.npy");
    for (i, case) in index["fir"]["cases"].as_array().unwrap().iter().enumerate() {
        let n = case["taps"].as_u64().unwrap() as usize;
        let t = &taps.row32(i)[..n];
        let mut words = vec![n as u32];
        words.extend(t.iter().map(|v| v.to_bits()));
        record(&mut out, 2, &words);
        let y = match n {
            31 => fir_run::<31>(t, &x),
            16 => fir_run::<16>(t, &x),
            5 => fir_run::<5>(t, &x),
            n => panic!("no test instance for {n} taps"),
        };
        want.push((format!("fir {}", case["name"]), crc(&y), x.len()));
    }
    for (width, y) in [
        (1, moving_average_run::<1>(&x)),
        (5, moving_average_run::<5>(&x)),
        (32, moving_average_run::<32>(&x)),
    ] {
        record(&mut out, 3, &[width]);
        want.push((format!("moving average {width}"), crc(&y), x.len()));
    }
    for alpha in [0.995f32, 0.9] {
        record(&mut out, 4, &[alpha.to_bits()]);
        let mut y = x.clone();
        DcBlocker::new(alpha).unwrap().process(&mut y);
        want.push((format!("dc blocker {alpha}"), crc(&y), x.len()));
    }
    for (start, width) in [(0usize, 64usize), (300, 250), (900, 7), (500, 1)] {
        for kind in [5, 6] {
            record(
                &mut out,
                kind,
                &[start as u32, width as u32, 1e-6f32.to_bits()],
            );
            let mut w = x[start..start + width].to_vec();
            if kind == 5 {
                z_score(&mut w, 1e-6).unwrap();
            } else {
                min_max(&mut w, 1e-6).unwrap();
            }
            let what = if kind == 5 { "z-score" } else { "min-max" };
            want.push((format!("{what} {start}+{width}"), crc(&w), width));
        }
    }
    for (width, hop, chunk) in [
        (64u32, 16u32, 37u32),
        (100, 100, 1),
        (50, 120, 200),
        (1, 1, 5),
        (1024, 7, 300),
    ] {
        record(&mut out, 7, &[width, hop, chunk]);
        let mut frames = Vec::new();
        let mut push = |w: &mut dyn FnMut(&[f32], &mut Vec<f32>)| {
            for part in x.chunks(chunk as usize) {
                w(part, &mut frames);
            }
        };
        macro_rules! run {
            ($w:literal) => {{
                let mut win = Windows::<$w>::new(hop as usize).unwrap();
                push(&mut |part, frames| {
                    win.push(part, |_, f| {
                        frames.extend_from_slice(f);
                        Ok::<(), ()>(())
                    })
                    .unwrap();
                })
            }};
        }
        match width {
            64 => run!(64),
            100 => run!(100),
            50 => run!(50),
            1 => run!(1),
            1024 => run!(1024),
            _ => unreachable!(),
        }
        want.push((format!("windows {width} hop {hop}"), crc(&frames), x.len()));
    }
    for c in index["spectrum"]["cases"].as_array().unwrap() {
        let mut words = vec![
            c["n"].as_u64().unwrap() as u32,
            (c["fs_hz"].as_f64().unwrap() as f32).to_bits(),
            c["hann"].as_bool().unwrap() as u32,
            c["detrend"].as_bool().unwrap() as u32,
        ];
        for b in c["bands"].as_array().unwrap() {
            words.extend(f64_words(b[0].as_f64().unwrap()));
            words.extend(f64_words(b[1].as_f64().unwrap()));
        }
        record(&mut out, 9, &words);
        let (fft, psd, powers) = spectrum_case(&x, c);
        let all: Vec<f32> = fft.into_iter().chain(psd).chain(powers).collect();
        want.push((
            format!("periodogram {}", c["n"]),
            crc(&all),
            c["n"].as_u64().unwrap() as usize,
        ));
    }
    // The design sweep in f64, on the board's software double precision.
    for case in index["butter_designs"]["cases"].as_array().unwrap() {
        let spec = spec(case);
        let (band, c0, c1) = match spec.band {
            Band::LowPass { cutoff_hz } => (0, cutoff_hz, 0.0),
            Band::HighPass { cutoff_hz } => (1, cutoff_hz, 0.0),
            Band::BandPass { low_hz, high_hz } => (2, low_hz, high_hz),
        };
        let mut words = vec![band, spec.order as u32, spec.sections() as u32];
        for v in [c0, c1, spec.fs_hz] {
            words.extend(f64_words(v));
        }
        record(&mut out, 13, &words);
        let bytes: Vec<u8> = spec
            .design()
            .unwrap()
            .sections()
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        want.push((
            format!("design {:?} order {}", spec.band, spec.order),
            medwasm::crc32(&bytes),
            1,
        ));
    }
    for width in [1u32, 5, 6, 31] {
        record(&mut out, 10, &[width]);
        let y = moving_median_width(width as u64, &x);
        want.push((format!("moving median {width}"), crc(&y), x.len()));
    }
    let r = &index["resample"];
    for (kind, list, file) in [
        (11, "decimate", golden!("decimate.taps.npy")),
        (12, "interpolate", golden!("interpolate.taps.npy")),
    ] {
        let mut at = 0;
        for c in r[list].as_array().unwrap() {
            let factor = c["factor"].as_u64().unwrap() as usize;
            let n = c["taps"].as_u64().unwrap() as usize;
            let t = &file.f32s[at..at + n];
            at += n;
            let mut words = vec![factor as u32, n as u32];
            words.extend(t.iter().map(|v| v.to_bits()));
            record(&mut out, kind, &words);
            let y = match (kind, n) {
                (11, 41) => decimate_run::<41>(t, factor, &x),
                (11, 61) => decimate_run::<61>(t, factor, &x),
                (12, 31) => interpolate_run::<31>(t, factor, &x),
                (12, 24) => interpolate_run::<24>(t, factor, &x),
                _ => panic!("no test instance for {list} with {n} taps"),
            };
            want.push((format!("{list} by {factor}"), crc(&y), x.len()));
        }
    }
    let xyz = golden!("smv.input.f32.npy").f32s;
    record(
        &mut out,
        8,
        &xyz.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
    );
    let mut m = vec![0.0; xyz.len() / 3];
    magnitudes(&xyz, &mut m).unwrap();
    want.push(("smv".into(), crc(&m), m.len()));
    (out, want)
}

/// The FFT of `x` (re then im), the periodogram and the band powers of case `c`.
fn spectrum_run<const N: usize>(x: &[f32], c: &Value) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let x: &[f32; N] = x[..N].try_into().unwrap();
    let (mut re, mut im) = (*x, [0.0f32; N]);
    Fft::<N>::new().transform(&mut re, &mut im);
    let fft = re.iter().chain(&im).copied().collect();
    let window = if c["hann"].as_bool().unwrap() {
        Window::Hann
    } else {
        Window::Rectangular
    };
    let fs = c["fs_hz"].as_f64().unwrap() as f32;
    let p = Periodogram::<N>::new(fs, window, c["detrend"].as_bool().unwrap()).unwrap();
    let mut psd = vec![0.0; Periodogram::<N>::BINS];
    p.psd(x, (&mut [0.0; N], &mut [0.0; N]), &mut psd).unwrap();
    let bands = c["bands"].as_array().unwrap();
    let powers = bands
        .iter()
        .map(|b| {
            p.band_power(&psd, b[0].as_f64().unwrap(), b[1].as_f64().unwrap())
                .unwrap()
        })
        .collect();
    (fft, psd, powers)
}

fn spectrum_case(x: &[f32], c: &Value) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    match c["n"].as_u64().unwrap() {
        8 => spectrum_run::<8>(x, c),
        64 => spectrum_run::<64>(x, c),
        256 => spectrum_run::<256>(x, c),
        1024 => spectrum_run::<1024>(x, c),
        n => panic!("no test instance for {n} points"),
    }
}

#[test]
fn spectra_are_bit_exact_to_the_f32_model_and_near_numpy_and_scipy() {
    let index = index();
    let x = input();
    let (fft_ref, fft_32, psd_ref, psd_32, bp_ref, bp_32) = (
        golden!("fft.ref.npy"),
        golden!("fft.f32.npy"),
        golden!("psd.ref.npy"),
        golden!("psd.f32.npy"),
        golden!("bandpower.ref.npy"),
        golden!("bandpower.f32.npy"),
    );
    let (mut at_fft, mut at_psd, mut at_bp) = (0, 0, 0);
    for c in index["spectrum"]["cases"].as_array().unwrap() {
        let n = c["n"].as_u64().unwrap() as usize;
        let (fft, psd, powers) = spectrum_case(&x, c);
        let what = format!("{n} points");
        same_bits(
            &fft,
            &fft_32.f32s[at_fft..at_fft + 2 * n],
            &format!("fft, {what}"),
        );
        // numpy's fft in f64: f32 rounding in log2(n) stages.
        let err = scaled_error(&fft, &fft_ref.f64s[at_fft..at_fft + 2 * n]);
        assert!(err <= 1e-6, "fft, {what}: error {err:.2e} against numpy");
        let bins = n / 2 + 1;
        same_bits(
            &psd,
            &psd_32.f32s[at_psd..at_psd + bins],
            &format!("psd, {what}"),
        );
        let err = scaled_error(&psd, &psd_ref.f64s[at_psd..at_psd + bins]);
        assert!(
            err <= 2e-6,
            "psd, {what}: error {err:.2e} against scipy's periodogram"
        );
        let k = powers.len();
        same_bits(
            &powers,
            &bp_32.f32s[at_bp..at_bp + k],
            &format!("band power, {what}"),
        );
        for (g, r) in powers.iter().zip(&bp_ref.f64s[at_bp..at_bp + k]) {
            assert!(
                (*g as f64 - r).abs() <= 1e-6 * r,
                "band power, {what}: {g} vs scipy's {r}"
            );
        }
        (at_fft, at_psd, at_bp) = (at_fft + 2 * n, at_psd + bins, at_bp + k);
    }
    assert_eq!(at_fft, fft_32.f32s.len());
    assert_eq!(at_bp, bp_32.f32s.len());
}

#[test]
fn the_fft_is_exact_on_small_integer_signals() {
    // An impulse has a flat spectrum; a constant puts everything in bin 0.
    let (mut re, mut im) = ([0.0f32; 16], [0.0f32; 16]);
    re[0] = 1.0;
    Fft::<16>::new().transform(&mut re, &mut im);
    assert_eq!((re, im), ([1.0; 16], [0.0; 16]));
    let (mut re, mut im) = ([2.0f32; 16], [0.0f32; 16]);
    Fft::<16>::new().transform(&mut re, &mut im);
    assert_eq!(re[0], 32.0);
    assert!(re[1..].iter().chain(&im).all(|v| v.abs() < 1e-6));
    // Two points: the sum and the difference.
    let (mut re, mut im) = ([3.0f32, 1.0], [0.0f32; 2]);
    Fft::<2>::new().transform(&mut re, &mut im);
    assert_eq!(re, [4.0, 2.0]);
    // Periodogram refusals.
    assert!(Periodogram::<8>::new(0.0, Window::Hann, true).is_err());
    let p = Periodogram::<8>::new(100.0, Window::Hann, true).unwrap();
    let err = p
        .psd(&[0.0; 8], (&mut [0.0; 8], &mut [0.0; 8]), &mut [0.0; 4])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`psd` holds 4 values but must hold 5; size the buffers together"
    );
    assert!(p.band_power(&[0.0; 5], 10.0, 5.0).is_err());
    assert_eq!(
        p.band_power(&[1.0; 5], 1.0, 2.0),
        Ok(0.0),
        "no bin in the band"
    );
}

fn moving_median_run<const N: usize>(x: &[f32]) -> Vec<f32> {
    let mut m = MovingMedian::<N>::new();
    let mut y = x.to_vec();
    let (a, b) = y.split_at_mut(x.len() / 2 + 3);
    m.process(a);
    for v in b.iter_mut() {
        *v = m.push(*v);
    }
    y
}

fn moving_median_width(width: u64, x: &[f32]) -> Vec<f32> {
    match width {
        1 => moving_median_run::<1>(x),
        5 => moving_median_run::<5>(x),
        6 => moving_median_run::<6>(x),
        31 => moving_median_run::<31>(x),
        n => panic!("no test instance for width {n}"),
    }
}

#[test]
fn moving_medians_are_numpys() {
    let index = index();
    let x = input();
    let (refs, f32s) = (golden!("movmedian.ref.npy"), golden!("movmedian.f32.npy"));
    for (i, w) in index["moving_median"]["widths"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let width = w.as_u64().unwrap();
        let y = moving_median_width(width, &x);
        same_bits(&y, f32s.row32(i), &format!("moving median {width}"));
        // An odd window's median is one of its samples: exact. An even one's mean of
        // the middle two rounds once in f32.
        let err = scaled_error(&y, refs.row64(i));
        let tol = if width % 2 == 1 { 0.0 } else { 1e-7 };
        assert!(err <= tol, "width {width}: error {err:.2e} against numpy");
    }
    // A spike shorter than half the window is removed entirely.
    let mut m = MovingMedian::<5>::new();
    let out: Vec<f32> = [1.0, 1.0, 1.0, 1.0, 1.0, 90.0, 90.0, 1.0, 1.0]
        .iter()
        .map(|&v| m.push(v))
        .collect();
    assert_eq!(out[4..], [1.0; 5]);
}

fn decimate_run<const N: usize>(taps: &[f32], q: usize, x: &[f32]) -> Vec<f32> {
    let taps: &[f32; N] = taps.try_into().unwrap();
    let mut d = Decimator::<N>::new(taps, q).unwrap();
    let mut out = vec![0.0; x.len()];
    let mut n = 0;
    // Chunks of sizes that do not divide the factor.
    for chunk in x.chunks(7) {
        n += d.process(chunk, &mut out[n..]).unwrap();
    }
    out.truncate(n);
    out
}

fn interpolate_run<const N: usize>(taps: &[f32], l: usize, x: &[f32]) -> Vec<f32> {
    let taps: &[f32; N] = taps.try_into().unwrap();
    let mut p = Interpolator::<N>::new(taps, l).unwrap();
    let mut out = vec![0.0; x.len() * l];
    let half = x.len() / 2;
    let n = p.process(&x[..half], &mut out[..half * l]).unwrap();
    for (k, v) in x[half..].iter().enumerate() {
        let at = n + k * l;
        p.push(*v, &mut out[at..at + l]).unwrap();
    }
    out
}

#[test]
fn resampling_is_bit_exact_to_the_f32_model_and_near_scipy() {
    let index = index();
    let x = input();
    let r = &index["resample"];
    let (taps, refs, f32s) = (
        golden!("decimate.taps.npy"),
        golden!("decimate.ref.npy"),
        golden!("decimate.f32.npy"),
    );
    let (mut at_taps, mut at_out) = (0, 0);
    for c in r["decimate"].as_array().unwrap() {
        let q = c["factor"].as_u64().unwrap() as usize;
        let n = c["taps"].as_u64().unwrap() as usize;
        let t = &taps.f32s[at_taps..at_taps + n];
        let y = match n {
            41 => decimate_run::<41>(t, q, &x),
            61 => decimate_run::<61>(t, q, &x),
            n => panic!("no test instance for {n} taps"),
        };
        let count = x.len().div_ceil(q);
        same_bits(
            &y,
            &f32s.f32s[at_out..at_out + count],
            &format!("decimate by {q}"),
        );
        let err = scaled_error(&y, &refs.f64s[at_out..at_out + count]);
        assert!(
            err <= 1e-6,
            "decimate by {q}: error {err:.2e} against scipy"
        );
        (at_taps, at_out) = (at_taps + n, at_out + count);
    }
    let (taps, refs, f32s) = (
        golden!("interpolate.taps.npy"),
        golden!("interpolate.ref.npy"),
        golden!("interpolate.f32.npy"),
    );
    let (mut at_taps, mut at_out) = (0, 0);
    for c in r["interpolate"].as_array().unwrap() {
        let l = c["factor"].as_u64().unwrap() as usize;
        let n = c["taps"].as_u64().unwrap() as usize;
        let t = &taps.f32s[at_taps..at_taps + n];
        let y = match n {
            31 => interpolate_run::<31>(t, l, &x),
            24 => interpolate_run::<24>(t, l, &x),
            n => panic!("no test instance for {n} taps"),
        };
        let count = x.len() * l;
        same_bits(
            &y,
            &f32s.f32s[at_out..at_out + count],
            &format!("interpolate by {l}"),
        );
        let err = scaled_error(&y, &refs.f64s[at_out..at_out + count]);
        assert!(
            err <= 1e-6,
            "interpolate by {l}: error {err:.2e} against scipy"
        );
        (at_taps, at_out) = (at_taps + n, at_out + count);
    }
    // Refusals.
    assert!(Decimator::<3>::new(&[1.0; 3], 0).is_err());
    assert_eq!(
        Interpolator::<3>::new(&[1.0, f32::NAN, 1.0], 2).unwrap_err(),
        DspError::Tap { index: 1 }
    );
    assert_eq!(
        Decimator::<3>::new(&[1.0; 3], 0).unwrap_err().to_string(),
        "`factor` is 0 but must be at least 1 (the ratio of the input rate to the output rate)"
    );
    let mut d = Decimator::<3>::new(&[1.0; 3], 2).unwrap();
    assert_eq!(
        d.process(&[1.0; 5], &mut [0.0; 2]).unwrap_err().to_string(),
        "`out` holds 2 values but must hold 3; size the buffers together"
    );
    let mut p = Interpolator::<3>::new(&[1.0; 3], 2).unwrap();
    assert!(p.push(1.0, &mut [0.0; 3]).is_err());
    assert!(p.process(&[1.0; 2], &mut [0.0; 3]).is_err());
}

/// Feeds `x` to a fresh block whole and in random chunks (some of one sample):
/// the outputs must be the same bits.
fn chunking_invariant<B>(
    what: &str,
    x: &[f32],
    rng: &mut Rng,
    make: impl Fn() -> B,
    run: impl Fn(&mut B, &mut [f32]),
) {
    let mut whole = x.to_vec();
    run(&mut make(), &mut whole);
    for round in 0..4 {
        let mut block = make();
        let mut y = x.to_vec();
        let mut at = 0;
        while at < y.len() {
            let n = if rng.below(4) == 0 { 1 } else { rng.below(200) }.min(y.len() - at);
            run(&mut block, &mut y[at..at + n]);
            at += n;
        }
        same_bits(&y, &whole, &format!("{what}, chunked round {round}"));
    }
}

#[test]
fn every_streaming_block_gives_the_same_bits_in_any_chunking() {
    let x = input();
    let mut rng = Rng(92);
    let spec = Butterworth {
        band: Band::BandPass {
            low_hz: 0.5,
            high_hz: 40.0,
        },
        order: 3,
        fs_hz: 360.0,
    };
    chunking_invariant(
        "sos filter",
        &x,
        &mut rng,
        || SosFilter::<3>::butterworth(&spec).unwrap(),
        |b, y| b.process(y),
    );
    let taps: [f32; 9] = core::array::from_fn(|k| (k as f32 - 4.0) / 10.0);
    chunking_invariant(
        "fir",
        &x,
        &mut rng,
        || Fir::<9>::new(&taps).unwrap(),
        |b, y| b.process(y),
    );
    chunking_invariant(
        "moving average",
        &x,
        &mut rng,
        MovingAverage::<7>::new,
        |b, y| b.process(y),
    );
    chunking_invariant(
        "moving median",
        &x,
        &mut rng,
        MovingMedian::<8>::new,
        |b, y| b.process(y),
    );
    chunking_invariant(
        "dc blocker",
        &x,
        &mut rng,
        || DcBlocker::new(0.99).unwrap(),
        |b, y| b.process(y),
    );
}

#[test]
fn block_state_sizes_are_what_docs_dsp_md_says() {
    use std::mem::size_of;
    // 32-bit targets (wasm32, Cortex-M) are what a detector's RAM report counts.
    let word = size_of::<usize>();
    assert_eq!(size_of::<SosFilter<1>>(), 28);
    assert_eq!(size_of::<SosFilter<4>>(), 4 * 28);
    assert_eq!(size_of::<Fir<31>>(), (8 * 31 + word).next_multiple_of(word));
    assert_eq!(
        size_of::<MovingAverage<32>>(),
        (4 * 32 + word + 4).next_multiple_of(word)
    );
    assert_eq!(size_of::<DcBlocker>(), 12);
    assert_eq!(
        size_of::<Windows<720>>(),
        (4 * 720 + 3 * word + 8).next_multiple_of(8)
    );
    assert_eq!(size_of::<Fft<256>>(), 4 * 256);
    assert_eq!(
        size_of::<MovingMedian<31>>(),
        (8 * 31 + word).next_multiple_of(word)
    );
    assert_eq!(
        size_of::<Decimator<41>>(),
        (8 * 41 + 3 * word).next_multiple_of(word)
    );
    assert_eq!(
        size_of::<Interpolator<41>>(),
        (8 * 41 + 2 * word).next_multiple_of(word)
    );
    assert_eq!(size_of::<Periodogram<256>>(), 8 * 256 + 12);
    if word == 4 {
        assert_eq!(size_of::<Fir<31>>(), 252);
        assert_eq!(size_of::<MovingAverage<32>>(), 136);
        assert_eq!(size_of::<Windows<720>>(), 2904);
    }
}
