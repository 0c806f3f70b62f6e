//! int8 fully connected, TFLite's `reference_integer_ops::FullyConnected` and
//! `FullyConnectedPerChannel` (spec §2.4), with the two requantizations a blob can
//! ask for:
//!
//! - fixed point: `mbqm(acc, M, shift)` per unit (TFLite Micro, CMSIS-NN, LiteRT
//!   before its 2025 change);
//! - "litert-ref": `(i32) round(acc · eff)` with `eff` an f64 per unit, what
//!   LiteRT's BUILTIN_REF computes today (`expected_tflite_ref.npy`).
//!
//! Weights are `[units, depth]` (a row per output unit), so each output is one
//! contiguous dot product: [`fully_connected_ref`] takes them one at a time,
//! [`fully_connected`] several units at a time with the build's fastest
//! [`super::mac::Mac`] primitives.

use super::acc::{Reference, Sums};
use super::fast::Best;
use super::fixed::round_away_f64_to_i32;
use super::requant::Requant;

/// How an FC accumulator becomes an output value.
#[derive(Debug, Clone, Copy)]
pub enum FcScales<'a> {
    /// `mbqm(acc, mult[u], shift[u])` (one pair may serve every unit).
    FixedPoint {
        /// Multipliers, `[units]` or `[1]`.
        mult: &'a [i32],
        /// Shifts, `[units]` or `[1]`.
        shift: &'a [i32],
    },
    /// `round_away(acc as f64 · scale[u])` (one scale may serve every unit).
    LiteRtRef {
        /// `s_in · s_w[u] / s_out` in f64, `[units]` or `[1]`.
        scale: &'a [f64],
    },
}

/// int8 fully connected: `x` `[batches, depth]`, `wt` `[units, depth]`, `bias`
/// `[units]`, `y` `[batches, units]`. `zp_w` is the weights' zero point (per-tensor
/// weights only; 0 for per-channel ones). The sums come from the build's fastest
/// primitives; the result is [`fully_connected_ref`]'s, bit for bit.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected(
    batches: usize,
    depth: usize,
    units: usize,
    q: &Requant,
    zp_w: i32,
    x: &[i8],
    wt: &[i8],
    bias: Option<&[i32]>,
    scales: FcScales<'_>,
    y: &mut [i8],
) {
    let x_off = -q.zp_in;
    for b in 0..batches {
        let row = &x[b * depth..][..depth];
        let out = &mut y[b * units..][..units];
        // `Σ (w − zp_w)(x + x_off) = Σ w (x + x_off) − zp_w Σ (x + x_off)`, exactly
        // in the wrapping arithmetic of the sums (see `mac`).
        let correction = if zp_w == 0 {
            0
        } else {
            let sum_x = row
                .iter()
                .fold(0i32, |s, &v| s.wrapping_add(v as i32 + x_off));
            zp_w.wrapping_mul(sum_x)
        };
        <Best as Sums>::fully_connected(depth, units, row, x_off, wt, |u, acc| {
            out[u] = output(q, bias, scales, u, acc.wrapping_sub(correction));
        });
    }
}

/// [`fully_connected`] with TFLite's reference loop.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_ref(
    batches: usize,
    depth: usize,
    units: usize,
    q: &Requant,
    zp_w: i32,
    x: &[i8],
    wt: &[i8],
    bias: Option<&[i32]>,
    scales: FcScales<'_>,
    y: &mut [i8],
) {
    let x_off = -q.zp_in;
    for b in 0..batches {
        let row = &x[b * depth..][..depth];
        let out = &mut y[b * units..][..units];
        if zp_w == 0 {
            <Reference as Sums>::fully_connected(depth, units, row, x_off, wt, |u, acc| {
                out[u] = output(q, bias, scales, u, acc);
            });
            continue;
        }
        // Per-tensor weights with a zero point (LiteRT allows one): upstream's
        // per-product form, kept literal in the reference.
        for (u, o) in out.iter_mut().enumerate() {
            let w = &wt[u * depth..][..depth];
            let acc = w.iter().zip(row).fold(0i32, |acc, (&w, &v)| {
                acc.wrapping_add((w as i32 - zp_w) * (v as i32 + x_off))
            });
            *o = output(q, bias, scales, u, acc);
        }
    }
}

/// Unit `u`'s output from its sum: the bias, then the requantization of `scales`.
#[inline(always)]
fn output(q: &Requant, bias: Option<&[i32]>, scales: FcScales<'_>, u: usize, acc: i32) -> i8 {
    let acc = match bias {
        Some(b) => acc.wrapping_add(b[u]),
        None => acc,
    };
    match scales {
        FcScales::FixedPoint { mult, shift } => {
            let c = if mult.len() == 1 { 0 } else { u };
            q.output(acc, mult[c], shift[c])
        }
        FcScales::LiteRtRef { scale } => {
            let s = if scale.len() == 1 { scale[0] } else { scale[u] };
            // Upstream adds the zero point to the i32 result; saturating keeps
            // values whose cast C leaves undefined at the clamp.
            let v = round_away_f64_to_i32(acc as f64 * s).saturating_add(q.zp_out);
            v.clamp(q.act_min, q.act_max) as i8
        }
    }
}
