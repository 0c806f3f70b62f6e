//! The [`Mac`] primitives with the Cortex-M4/M7 DSP extension (Armv7E-M): four
//! int8 values per 32-bit load, split into two pairs of 16-bit lanes by `SXTB16`
//! (bytes 0 and 2, or with `ROR #8` bytes 1 and 3) — `SXTAB16` adds the input
//! offset to both lanes in the same instruction — and multiplied pairwise and
//! accumulated by `SMLAD` (`acc + lo·lo + hi·hi`), two MACs per instruction.
//!
//! Input and weights are split the same way, so the lanes pair up `x0·w0 + x2·w2`
//! and `x1·w1 + x3·w3`: the same products as the reference, added in another order.
//! Each lane holds `x + x_off` in `−255..=255` or a weight in `−128..=127`, so the
//! 16-bit lanes never overflow and every product is exact; `SMLAD` adds modulo
//! 2^32 (it only sets the sticky Q flag on overflow), as the reference's wrapping
//! sums do (see [`super::mac`]).
//!
//! Stable Rust has no DSP intrinsics (`core::arch::arm`'s are unstable), so each
//! instruction is a one-line `asm!` the compiler schedules and allocates registers
//! for. Compiled only for `thumbv7em-*` (`medwasm_dsp`, set by `build.rs`).

use core::arch::asm;

use super::mac::{LANES, Mac, ROWS, Seg, Tap};

/// The DSP primitives.
#[derive(Debug, Clone, Copy)]
pub struct Dsp;

/// `SXTB16`: bytes 0 and 2 of `v`, sign-extended into the two 16-bit lanes.
#[inline(always)]
fn sxtb16(v: u32) -> u32 {
    let r;
    // SAFETY: a register-only instruction.
    unsafe {
        asm!("sxtb16 {r}, {v}", r = lateout(reg) r, v = in(reg) v,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// `SXTB16 …, ROR #8`: bytes 1 and 3 of `v`, sign-extended into the two lanes.
#[inline(always)]
fn sxtb16_ror8(v: u32) -> u32 {
    let r;
    // SAFETY: a register-only instruction.
    unsafe {
        asm!("sxtb16 {r}, {v}, ror #8", r = lateout(reg) r, v = in(reg) v,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// `SXTAB16`: `a` plus bytes 0 and 2 of `v` sign-extended, lane by lane.
#[inline(always)]
fn sxtab16(a: u32, v: u32) -> u32 {
    let r;
    // SAFETY: a register-only instruction.
    unsafe {
        asm!("sxtab16 {r}, {a}, {v}", r = lateout(reg) r, a = in(reg) a, v = in(reg) v,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// `SXTAB16 …, ROR #8`: `a` plus bytes 1 and 3 of `v` sign-extended.
#[inline(always)]
fn sxtab16_ror8(a: u32, v: u32) -> u32 {
    let r;
    // SAFETY: a register-only instruction.
    unsafe {
        asm!("sxtab16 {r}, {a}, {v}, ror #8", r = lateout(reg) r, a = in(reg) a, v = in(reg) v,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// `SMLAD`: `acc + a.lo · b.lo + a.hi · b.hi` (modulo 2^32; sets Q on overflow).
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r;
    // SAFETY: a register-only instruction; it may set the sticky Q flag, so the
    // flags are not declared preserved.
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// `SMLABB`: `acc + a.lo · b.lo`.
#[inline(always)]
fn smlabb(a: u32, b: u32, acc: i32) -> i32 {
    let r;
    // SAFETY: a register-only instruction (may set Q).
    unsafe {
        asm!("smlabb {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// `SMLATT`: `acc + a.hi · b.hi`.
#[inline(always)]
fn smlatt(a: u32, b: u32, acc: i32) -> i32 {
    let r;
    // SAFETY: a register-only instruction (may set Q).
    unsafe {
        asm!("smlatt {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// Four int8 values from `p` (any alignment: Armv7-M loads words unaligned).
///
/// # Safety
/// `p..p + 4` must be readable.
#[inline(always)]
unsafe fn word(p: *const i8) -> u32 {
    // SAFETY: the caller's.
    unsafe { core::ptr::read_unaligned(p as *const u32) }
}

/// `x_off` in both 16-bit lanes.
#[inline(always)]
fn lanes(x_off: i32) -> u32 {
    (x_off as u32 & 0xffff) | ((x_off as u32) << 16)
}

impl Mac for Dsp {
    const NAME: &'static str = "dsp";

    fn dot4(x: &[i8], x_off: i32, w: &[i8], stride: usize, segs: &[Seg], acc: &mut [i32; ROWS]) {
        let off = lanes(x_off);
        let [mut a0, mut a1, mut a2, mut a3] = *acc;
        for s in segs {
            let len = s.len;
            // Bounds checked once per run; the loop below reads inside these.
            let xs = &x[s.x..s.x + len];
            let w0 = &w[s.w..s.w + len];
            let w1 = &w[stride + s.w..stride + s.w + len];
            let w2 = &w[2 * stride + s.w..2 * stride + s.w + len];
            let w3 = &w[3 * stride + s.w..3 * stride + s.w + len];
            let whole = len & !3;
            let mut i = 0;
            while i < whole {
                // SAFETY: `i + 4 <= whole <= len`, the length of every slice.
                unsafe {
                    let v = word(xs.as_ptr().add(i));
                    let (xl, xh) = (sxtab16(off, v), sxtab16_ror8(off, v));
                    let v = word(w0.as_ptr().add(i));
                    a0 = smlad(sxtb16(v), xl, a0);
                    a0 = smlad(sxtb16_ror8(v), xh, a0);
                    let v = word(w1.as_ptr().add(i));
                    a1 = smlad(sxtb16(v), xl, a1);
                    a1 = smlad(sxtb16_ror8(v), xh, a1);
                    let v = word(w2.as_ptr().add(i));
                    a2 = smlad(sxtb16(v), xl, a2);
                    a2 = smlad(sxtb16_ror8(v), xh, a2);
                    let v = word(w3.as_ptr().add(i));
                    a3 = smlad(sxtb16(v), xl, a3);
                    a3 = smlad(sxtb16_ror8(v), xh, a3);
                }
                i += 4;
            }
            for k in whole..len {
                let v = xs[k] as i32 + x_off;
                a0 = a0.wrapping_add(w0[k] as i32 * v);
                a1 = a1.wrapping_add(w1[k] as i32 * v);
                a2 = a2.wrapping_add(w2[k] as i32 * v);
                a3 = a3.wrapping_add(w3[k] as i32 * v);
            }
        }
        *acc = [a0, a1, a2, a3];
    }

    fn dot1(x: &[i8], x_off: i32, w: &[i8], segs: &[Seg]) -> i32 {
        let off = lanes(x_off);
        let mut a = 0i32;
        for s in segs {
            let len = s.len;
            let xs = &x[s.x..s.x + len];
            let ws = &w[s.w..s.w + len];
            let whole = len & !3;
            let mut i = 0;
            while i < whole {
                // SAFETY: `i + 4 <= whole <= len`, the length of both slices.
                unsafe {
                    let v = word(xs.as_ptr().add(i));
                    let u = word(ws.as_ptr().add(i));
                    a = smlad(sxtb16(u), sxtab16(off, v), a);
                    a = smlad(sxtb16_ror8(u), sxtab16_ror8(off, v), a);
                }
                i += 4;
            }
            for k in whole..len {
                a = a.wrapping_add(ws[k] as i32 * (xs[k] as i32 + x_off));
            }
        }
        a
    }

    fn depthwise8(x: &[i8], x_off: i32, w: &[i8], taps: &[Tap], c: usize, acc: &mut [i32; LANES]) {
        // Channels c..c+4 and c+4..c+8 in two passes of four accumulators each
        // (eight at once would not fit the core's registers): lane-wise products,
        // `SMLABB` for the low lane and `SMLATT` for the high one.
        let off = lanes(x_off);
        for half in 0..2 {
            let c = c + 4 * half;
            let [mut a0, mut a1, mut a2, mut a3] = [0i32; 4];
            for t in taps {
                let xs = &x[t.x + c..t.x + c + 4];
                let ws = &w[t.w + c..t.w + c + 4];
                // SAFETY: both slices hold exactly four elements.
                let (v, u) = unsafe { (word(xs.as_ptr()), word(ws.as_ptr())) };
                // Lanes (c, c+2) and (c+1, c+3).
                let (xl, xh) = (sxtab16(off, v), sxtab16_ror8(off, v));
                let (wl, wh) = (sxtb16(u), sxtb16_ror8(u));
                a0 = smlabb(xl, wl, a0);
                a2 = smlatt(xl, wl, a2);
                a1 = smlabb(xh, wh, a1);
                a3 = smlatt(xh, wh, a3);
            }
            let out = &mut acc[4 * half..4 * half + 4];
            out[0] = out[0].wrapping_add(a0);
            out[1] = out[1].wrapping_add(a1);
            out[2] = out[2].wrapping_add(a2);
            out[3] = out[3].wrapping_add(a3);
        }
    }
}
