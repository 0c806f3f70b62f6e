//! Normalization of a window in place: z-score and min-max. No state; the window
//! is the caller's slice.

use super::DspError;

fn check_floor(name: &'static str, value: f32) -> Result<(), DspError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(DspError::Parameter {
            name,
            value,
            range: "a positive finite number (1e-6 keeps a flat window at zero)",
        })
    }
}

/// Standardises `window` in place: `(x - mean) / max(std, min_std)`, with the
/// population standard deviation (`scipy.stats.zscore`, `ddof = 0`).
///
/// In f32, in this order: `mean` = the sum from the first sample to the last,
/// divided by the length; `var` = the sum of `(x - mean)·(x - mean)` in the same
/// order, divided by the length; `std = sqrt(var)`. `min_std > 0` keeps a flat
/// window (a lead off, a sensor at rest) finite: it comes out as zeros rather
/// than the NaN scipy gives. An empty window is left alone.
pub fn z_score(window: &mut [f32], min_std: f32) -> Result<(), DspError> {
    check_floor("min_std", min_std)?;
    if window.is_empty() {
        return Ok(());
    }
    let n = window.len() as f32;
    let mut sum = 0.0f32;
    for v in window.iter() {
        sum += v;
    }
    let mean = sum / n;
    let mut sq = 0.0f32;
    for v in window.iter() {
        let d = v - mean;
        sq += d * d;
    }
    let std = libm::sqrtf(sq / n);
    let div = if std > min_std { std } else { min_std };
    for v in window.iter_mut() {
        *v = (*v - mean) / div;
    }
    Ok(())
}

/// Rescales `window` in place to `[0, 1]`: `(x - min) / max(max - min,
/// min_range)`. `min_range > 0` keeps a flat window at zeros. An empty window is
/// left alone; a NaN in the window is not skipped by the minimum and maximum (the
/// runtime refuses NaN inputs before they get here).
pub fn min_max(window: &mut [f32], min_range: f32) -> Result<(), DspError> {
    check_floor("min_range", min_range)?;
    let Some(&first) = window.first() else {
        return Ok(());
    };
    let (mut lo, mut hi) = (first, first);
    for &v in window.iter() {
        lo = if v < lo { v } else { lo };
        hi = if v > hi { v } else { hi };
    }
    let range = hi - lo;
    let div = if range > min_range { range } else { min_range };
    for v in window.iter_mut() {
        *v = (*v - lo) / div;
    }
    Ok(())
}
