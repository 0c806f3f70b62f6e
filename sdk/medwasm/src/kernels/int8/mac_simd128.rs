//! The [`Mac`] primitives with wasm `simd128`: eight int8 values per
//! `i16x8.load8x8_s` (load and sign-extend to 16 bits), the input offset added in
//! 16-bit lanes, and `i32x4.dot_i16x8_s` multiplying lane by lane and adding
//! neighbouring products into four 32-bit sums — eight MACs per instruction —
//! with one input vector shared by the [`ROWS`] weight rows of a block.
//!
//! Every 16-bit lane holds `x + x_off` in `−255..=255` or a weight in
//! `−128..=127`, so the lanes never overflow and every product is exact; the
//! 32-bit lanes add modulo 2^32, as the reference's wrapping sums do (see
//! [`super::mac`]), so the result is the reference's bit for bit. Compiled only for
//! wasm with `simd128`.

use core::arch::wasm32::*;

use super::mac::{LANES, Mac, ROWS, Seg, Tap};

/// The `simd128` primitives.
#[derive(Debug, Clone, Copy)]
pub struct Simd128;

/// Eight int8 values at `p`, sign-extended to 16 bits.
///
/// # Safety
/// `p..p + 8` must be readable.
#[inline(always)]
unsafe fn load8(p: *const i8) -> v128 {
    // SAFETY: the caller's; the load has no alignment requirement.
    unsafe { i16x8_load_extend_i8x8(p) }
}

/// The sum of the four 32-bit lanes, wrapping.
#[inline(always)]
fn sum4(v: v128) -> i32 {
    let pairs = i32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    i32x4_extract_lane::<0>(pairs).wrapping_add(i32x4_extract_lane::<1>(pairs))
}

impl Mac for Simd128 {
    const NAME: &'static str = "simd128";

    fn dot4(x: &[i8], x_off: i32, w: &[i8], stride: usize, segs: &[Seg], acc: &mut [i32; ROWS]) {
        let off = i16x8_splat(x_off as i16);
        let mut sums = [i32x4_splat(0); ROWS];
        let mut tail = [0i32; ROWS];
        for s in segs {
            let len = s.len;
            // Bounds checked once per run; the loop below reads inside these.
            let xs = &x[s.x..s.x + len];
            let rows: [&[i8]; ROWS] =
                core::array::from_fn(|r| &w[r * stride + s.w..r * stride + s.w + len]);
            let whole = len & !7;
            let mut i = 0;
            while i < whole {
                // SAFETY: `i + 8 <= whole <= len`, the length of every slice.
                unsafe {
                    let xv = i16x8_add(load8(xs.as_ptr().add(i)), off);
                    for (sum, row) in sums.iter_mut().zip(rows) {
                        *sum = i32x4_add(*sum, i32x4_dot_i16x8(xv, load8(row.as_ptr().add(i))));
                    }
                }
                i += 8;
            }
            for k in whole..len {
                let v = xs[k] as i32 + x_off;
                for (t, row) in tail.iter_mut().zip(rows) {
                    *t = t.wrapping_add(row[k] as i32 * v);
                }
            }
        }
        for ((a, sum), t) in acc.iter_mut().zip(sums).zip(tail) {
            *a = a.wrapping_add(sum4(sum)).wrapping_add(t);
        }
    }

    fn dot1(x: &[i8], x_off: i32, w: &[i8], segs: &[Seg]) -> i32 {
        let off = i16x8_splat(x_off as i16);
        let mut sum = i32x4_splat(0);
        let mut tail = 0i32;
        for s in segs {
            let len = s.len;
            let xs = &x[s.x..s.x + len];
            let ws = &w[s.w..s.w + len];
            let whole = len & !7;
            let mut i = 0;
            while i < whole {
                // SAFETY: `i + 8 <= whole <= len`, the length of both slices.
                unsafe {
                    let xv = i16x8_add(load8(xs.as_ptr().add(i)), off);
                    sum = i32x4_add(sum, i32x4_dot_i16x8(xv, load8(ws.as_ptr().add(i))));
                }
                i += 8;
            }
            for k in whole..len {
                tail = tail.wrapping_add(ws[k] as i32 * (xs[k] as i32 + x_off));
            }
        }
        sum4(sum).wrapping_add(tail)
    }

    fn depthwise8(x: &[i8], x_off: i32, w: &[i8], taps: &[Tap], c: usize, acc: &mut [i32; LANES]) {
        // Lane-wise products (no neighbours added): `i32x4.extmul_{low,high}_i16x8_s`.
        let off = i16x8_splat(x_off as i16);
        let (mut lo, mut hi) = (i32x4_splat(0), i32x4_splat(0));
        for t in taps {
            let xs = &x[t.x + c..t.x + c + LANES];
            let ws = &w[t.w + c..t.w + c + LANES];
            // SAFETY: both slices hold exactly eight elements.
            let (xv, wv) = unsafe { (i16x8_add(load8(xs.as_ptr()), off), load8(ws.as_ptr())) };
            lo = i32x4_add(lo, i32x4_extmul_low_i16x8(xv, wv));
            hi = i32x4_add(hi, i32x4_extmul_high_i16x8(xv, wv));
        }
        let lanes = [
            i32x4_extract_lane::<0>(lo),
            i32x4_extract_lane::<1>(lo),
            i32x4_extract_lane::<2>(lo),
            i32x4_extract_lane::<3>(lo),
            i32x4_extract_lane::<0>(hi),
            i32x4_extract_lane::<1>(hi),
            i32x4_extract_lane::<2>(hi),
            i32x4_extract_lane::<3>(hi),
        ];
        for (a, l) in acc.iter_mut().zip(lanes) {
            *a = a.wrapping_add(l);
        }
    }
}

/// The blocked loops of `acc` as they are: `simd128` wants no other blocking.
impl super::acc::Loops for Simd128 {}
