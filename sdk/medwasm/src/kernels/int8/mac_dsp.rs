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
//! Convolutions and fully connected rows, where almost every MAC is, go further,
//! as CMSIS-NN does: the input patch of two output positions (or one FC row) is
//! first expanded into 16-bit lanes with the offset added and padding as 0
//! ([`Patches`]), laid out as `SXTB16` splits four weights — `(x0, x2), (x1,
//! x3)` — so that the inner loop loads input pairs ready to use. That loop is a
//! hand-written leaf function (`medwasm_dsp_mac_2x2`: two positions × two output
//! channels, 16 instructions per 16 MACs unrolled by two; `medwasm_dsp_mac_1x4`
//! for FC rows; `medwasm_dsp_dw4` for four depthwise channels over a tap list): as
//! a whole function it may use all fourteen general registers, where an `asm!`
//! block gets twelve and the compiler spilled the sums of a four-channel dot
//! product to the stack. Each output channel's requantization is prepared once per
//! chunk of positions ([`super::acc::Sink`]). Stack: 2.5 KiB of patches for a
//! convolution, up to 3 KiB of prepared channels for a depthwise one.
//!
//! Stable Rust has no DSP intrinsics (`core::arch::arm`'s are unstable): the
//! kernels are `global_asm!`, the rest uses one-line `asm!` wrappers the compiler
//! schedules. Compiled only for `thumbv7em-*` (`medwasm_dsp`, set by `build.rs`).

use core::arch::{asm, global_asm};

use super::acc::{CHUNK, Loops, Sink, Taps, in_pos};
use super::mac::{LANES, Mac, ROWS, Seg, Tap};
use crate::kernels::conv::Geometry;

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

/// Input elements per position that [`Patches`] holds: the patch (`kh · kw · c`)
/// of a convolution with more takes the blocked loop over [`Mac::dot4`], and an FC
/// row of more than twice as many too. 2.5 KiB of stack.
pub const PATCH: usize = 640;

/// Two positions' input patches (or one FC row) as 16-bit `x + x_off`, padding 0,
/// in groups of four elements: for group `g`, word `4g + 2p` holds position `p`'s
/// elements `(4g, 4g + 2)` and word `4g + 2p + 1` its `(4g + 1, 4g + 3)` (low half
/// first), the lanes `SXTB16` gives four weights. One FC row: words `2g`, `2g + 1`.
#[repr(C, align(8))]
struct Patches([u32; PATCH]);

/// The 16-bit element `at` of `words` (low half first).
#[inline(always)]
fn half(words: &[u32], at: usize) -> i32 {
    (words[at / 2] >> (16 * (at & 1))) as u16 as i16 as i32
}

/// Where element `k` of position `p` lies in [`Patches`], in 16-bit units.
#[inline(always)]
fn slot(k: usize, p: usize) -> usize {
    8 * (k >> 2) + 4 * p + 2 * (k & 1) + ((k >> 1) & 1)
}

/// Expands the patch of output position `(oy, ox)` into position `p` of `buf`
/// (which holds `4 · ⌈kh·kw·c / 4⌉` words).
fn fill(buf: &mut [u32], g: &Geometry, x: &[i8], x_off: i32, oy: usize, ox: usize, p: usize) {
    let off = lanes(x_off);
    let c = g.c;
    let groups = (g.kh * g.kw * c).div_ceil(4);
    assert!(p < 2 && buf.len() >= 4 * groups);
    let words = buf.as_mut_ptr();
    let halves = words.cast::<i16>();
    let mut k = 0;
    for ky in 0..g.kh {
        let iy = in_pos(oy, ky, g.sh, g.dh, g.pt, g.h);
        for kx in 0..g.kw {
            let pixel = iy
                .zip(in_pos(ox, kx, g.sw, g.dw, g.pl, g.w))
                .map(|(iy, ix)| &x[(iy * g.w + ix) * c..][..c]);
            // Elements `k..k + c` lie in groups below `groups`: every store below
            // is inside `buf` (checked above), at a slot of position `p`.
            match pixel {
                // Whole groups: one load, two `SXTAB16`, the words as they are.
                Some(px) if c.is_multiple_of(4) => {
                    let src = px.as_ptr();
                    for j in 0..c / 4 {
                        // SAFETY: `4j + 4 <= c` bytes of `px`; word `4(k/4 + j) + 2p
                        // + 1 < 4 · groups`.
                        unsafe {
                            let v = word(src.add(4 * j));
                            let at = words.add(4 * (k / 4 + j) + 2 * p);
                            at.write(sxtab16(off, v));
                            at.add(1).write(sxtab16_ror8(off, v));
                        }
                    }
                }
                Some(px) => {
                    for (j, &v) in px.iter().enumerate() {
                        // SAFETY: `slot(k + j, p) < 8 · groups` halves.
                        unsafe { halves.add(slot(k + j, p)).write((v as i32 + x_off) as i16) };
                    }
                }
                None => {
                    for j in 0..c {
                        // SAFETY: as above.
                        unsafe { halves.add(slot(k + j, p)).write(0) };
                    }
                }
            }
            k += c;
        }
    }
}

// The inner loops, AAPCS leaf functions. `medwasm_dsp_mac_2x2(x, w, stride,
// groups, out)`: `x` the patches of two positions, `w` weight row 0 (row 1 at
// `w + stride`, any alignment), `groups` groups of four elements (may be 0);
// writes `out[0..4]` = position 0 × rows 0, 1, position 1 × rows 0, 1.
// `medwasm_dsp_mac_1x4(x, w, stride, groups, out)`: one row of patch (words `2g`,
// `2g + 1`), four weight rows at `stride` from each other; `out[0..4]`.
// `medwasm_dsp_dw4(x, taps, n, w, off, out)`: depthwise, four channels: for each
// of `n` taps (byte offsets `[x, w]`), the channels at `x + tap.x` with `off`
// added to both 16-bit lanes, times those at `w + tap.w`, lane by lane (`SMLABB`,
// `SMLATT`); `out[0..4]` in channel order.
global_asm!(
    ".section .text.medwasm_dsp_mac_2x2,\"ax\",%progbits",
    ".global medwasm_dsp_mac_2x2",
    ".type medwasm_dsp_mac_2x2, %function",
    ".thumb_func",
    ".p2align 2",
    "medwasm_dsp_mac_2x2:",
    "push {{r4-r11, lr}}",
    "movs r4, #0",
    "movs r5, #0",
    "movs r6, #0",
    "movs r7, #0",
    // An odd group first, then two per iteration.
    "tst r3, #1",
    "beq 3f",
    "ldm r0!, {{r8-r11}}",
    "ldr r12, [r1, r2]",
    "sxtb16 lr, r12, ror #8",
    "sxtb16 r12, r12",
    "smlad r5, r12, r8, r5",
    "smlad r5, lr, r9, r5",
    "smlad r7, r12, r10, r7",
    "smlad r7, lr, r11, r7",
    "ldr r12, [r1], #4",
    "sxtb16 lr, r12, ror #8",
    "sxtb16 r12, r12",
    "smlad r4, r12, r8, r4",
    "smlad r4, lr, r9, r4",
    "smlad r6, r12, r10, r6",
    "smlad r6, lr, r11, r6",
    "3:",
    "lsrs r3, r3, #1",
    "beq 2f",
    "1:",
    "ldm r0!, {{r8-r11}}",
    "ldr r12, [r1, r2]",
    "sxtb16 lr, r12, ror #8",
    "sxtb16 r12, r12",
    "smlad r5, r12, r8, r5",
    "smlad r5, lr, r9, r5",
    "smlad r7, r12, r10, r7",
    "smlad r7, lr, r11, r7",
    "ldr r12, [r1], #4",
    "sxtb16 lr, r12, ror #8",
    "sxtb16 r12, r12",
    "smlad r4, r12, r8, r4",
    "smlad r4, lr, r9, r4",
    "smlad r6, r12, r10, r6",
    "smlad r6, lr, r11, r6",
    "ldm r0!, {{r8-r11}}",
    "ldr r12, [r1, r2]",
    "sxtb16 lr, r12, ror #8",
    "sxtb16 r12, r12",
    "smlad r5, r12, r8, r5",
    "smlad r5, lr, r9, r5",
    "smlad r7, r12, r10, r7",
    "smlad r7, lr, r11, r7",
    "ldr r12, [r1], #4",
    "sxtb16 lr, r12, ror #8",
    "sxtb16 r12, r12",
    "smlad r4, r12, r8, r4",
    "smlad r4, lr, r9, r4",
    "smlad r6, r12, r10, r6",
    "smlad r6, lr, r11, r6",
    "subs r3, r3, #1",
    "bne 1b",
    "2:",
    "ldr r0, [sp, #36]",
    "stm r0, {{r4-r7}}",
    "pop {{r4-r11, pc}}",
    ".size medwasm_dsp_mac_2x2, . - medwasm_dsp_mac_2x2",
    ".section .text.medwasm_dsp_mac_1x4,\"ax\",%progbits",
    ".global medwasm_dsp_mac_1x4",
    ".type medwasm_dsp_mac_1x4, %function",
    ".thumb_func",
    ".p2align 2",
    "medwasm_dsp_mac_1x4:",
    "push {{r4-r11, lr}}",
    "add r12, r1, r2, lsl #1",
    "movs r4, #0",
    "movs r5, #0",
    "movs r6, #0",
    "movs r7, #0",
    "cbz r3, 2f",
    "1:",
    "ldrd r8, r9, [r0], #8",
    "ldr r10, [r1, r2]",
    "sxtb16 r11, r10, ror #8",
    "sxtb16 r10, r10",
    "smlad r5, r10, r8, r5",
    "smlad r5, r11, r9, r5",
    "ldr r10, [r1], #4",
    "sxtb16 r11, r10, ror #8",
    "sxtb16 r10, r10",
    "smlad r4, r10, r8, r4",
    "smlad r4, r11, r9, r4",
    "ldr r10, [r12, r2]",
    "sxtb16 r11, r10, ror #8",
    "sxtb16 r10, r10",
    "smlad r7, r10, r8, r7",
    "smlad r7, r11, r9, r7",
    "ldr r10, [r12], #4",
    "sxtb16 r11, r10, ror #8",
    "sxtb16 r10, r10",
    "smlad r6, r10, r8, r6",
    "smlad r6, r11, r9, r6",
    "subs r3, r3, #1",
    "bne 1b",
    "2:",
    "ldr r0, [sp, #36]",
    "stm r0, {{r4-r7}}",
    "pop {{r4-r11, pc}}",
    ".size medwasm_dsp_mac_1x4, . - medwasm_dsp_mac_1x4",
    ".section .text.medwasm_dsp_dw4,\"ax\",%progbits",
    ".global medwasm_dsp_dw4",
    ".type medwasm_dsp_dw4, %function",
    ".thumb_func",
    ".p2align 2",
    "medwasm_dsp_dw4:",
    "push {{r4-r11, lr}}",
    "ldr r4, [sp, #36]",
    "movs r5, #0",
    "movs r6, #0",
    "movs r7, #0",
    "movs r8, #0",
    "cbz r2, 2f",
    "1:",
    "ldrd r9, r10, [r1], #8",
    "ldr r9, [r0, r9]",
    "ldr r10, [r3, r10]",
    "sxtab16 r11, r4, r9",
    "sxtab16 r12, r4, r9, ror #8",
    "sxtb16 lr, r10, ror #8",
    "sxtb16 r10, r10",
    "smlabb r5, r11, r10, r5",
    "smlatt r7, r11, r10, r7",
    "smlabb r6, r12, lr, r6",
    "smlatt r8, r12, lr, r8",
    "subs r2, r2, #1",
    "bne 1b",
    "2:",
    "ldr r0, [sp, #40]",
    "stm r0, {{r5-r8}}",
    "pop {{r4-r11, pc}}",
    ".size medwasm_dsp_dw4, . - medwasm_dsp_dw4",
);

unsafe extern "C" {
    /// See the `global_asm!` above.
    fn medwasm_dsp_mac_2x2(
        x: *const u32,
        w: *const i8,
        stride: usize,
        groups: usize,
        out: *mut i32,
    );
    /// See the `global_asm!` above.
    fn medwasm_dsp_dw4(
        x: *const i8,
        taps: *const [u32; 2],
        n: usize,
        w: *const i8,
        off: u32,
        out: *mut i32,
    );
    /// See the `global_asm!` above.
    fn medwasm_dsp_mac_1x4(
        x: *const u32,
        w: *const i8,
        stride: usize,
        groups: usize,
        out: *mut i32,
    );
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

/// The whole loops the DSP primitives want blocked their own way: patches of
/// input expanded to 16-bit pairs once, shared by every output channel.
impl Loops for Dsp {
    fn conv(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], mut sink: impl Sink) {
        let k = g.kh * g.kw * g.c;
        if k > PATCH || k == 0 {
            return super::acc::conv_runs::<Self>(g, x, x_off, wt, sink);
        }
        let (whole, groups) = (k & !3, k.div_ceil(4));
        // As many position pairs as the buffer holds (at least one: `k <= PATCH`),
        // so that each output channel is prepared once for all of them.
        let pairs = PATCH / (4 * groups);
        let mut buf = Patches([0; PATCH]);
        let positions = g.oh * g.ow;
        let mut first = 0;
        while first < positions {
            let count = (positions - first).min(2 * pairs);
            for i in 0..count.div_ceil(2) * 2 {
                let (part, p) = (&mut buf.0[i / 2 * 4 * groups..][..4 * groups], i % 2);
                if i < count {
                    let at = first + i;
                    fill(part, g, x, x_off, at / g.ow, at % g.ow, p);
                } else {
                    // A last odd position is paired with zeros.
                    for grp in 0..groups {
                        part[4 * grp + 2] = 0;
                        part[4 * grp + 3] = 0;
                    }
                }
            }
            let mut oc = 0;
            while oc < g.m {
                // Two channels at a time; a last odd one is paired with itself.
                let next = if oc + 1 < g.m { oc + 1 } else { oc };
                let rows = if next != oc { 2 } else { 1 };
                let (c0, c1) = (sink.channel(oc), sink.channel(next));
                let w0 = &wt[oc * k..][..k];
                let w1 = &wt[next * k..][..k];
                for pair in 0..count.div_ceil(2) {
                    let part = &buf.0[pair * 4 * groups..][..4 * groups];
                    let mut out = [0i32; 4];
                    // SAFETY: the kernel reads `whole / 4` groups of four words of
                    // `part` (`4 · groups` words), `whole` bytes of `w0` and of `w1`
                    // (`w0 + (next − oc)·k`), and writes `out`.
                    unsafe {
                        medwasm_dsp_mac_2x2(
                            part.as_ptr(),
                            w0.as_ptr(),
                            (next - oc) * k,
                            whole / 4,
                            out.as_mut_ptr(),
                        );
                    }
                    for j in whole..k {
                        let (x0, x1) = (half(part, slot(j, 0)), half(part, slot(j, 1)));
                        let (a, b) = (w0[j] as i32, w1[j] as i32);
                        out[0] = out[0].wrapping_add(a * x0);
                        out[1] = out[1].wrapping_add(b * x0);
                        out[2] = out[2].wrapping_add(a * x1);
                        out[3] = out[3].wrapping_add(b * x1);
                    }
                    let at = first + 2 * pair;
                    for p in 0..(count - 2 * pair).min(2) {
                        sink.put(&c0, at + p, oc, out[2 * p]);
                        if rows == 2 {
                            sink.put(&c1, at + p, next, out[2 * p + 1]);
                        }
                    }
                }
                oc = next + 1;
            }
            first += count;
        }
    }

    fn depthwise(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], mut sink: impl Sink) {
        if g.m != g.c || g.kh * g.kw > CHUNK {
            return super::acc::depthwise_blocked::<Self>(g, x, x_off, wt, sink);
        }
        let off = lanes(x_off);
        let whole = g.c & !3;
        let mut taps = [Tap::default(); CHUNK];
        let mut offsets = [[0u32; 2]; CHUNK];
        // Channels in chunks of `BLOCK`, each channel prepared once per chunk.
        const BLOCK: usize = 64;
        let mut c0 = 0;
        while c0 < g.c {
            let n = (g.c - c0).min(BLOCK);
            let prepared: [_; BLOCK] = core::array::from_fn(|i| sink.channel(c0 + i.min(n - 1)));
            let four = if c0 + n <= whole {
                n
            } else {
                whole.saturating_sub(c0)
            };
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let at = oy * g.ow + ox;
                    let count = Taps::new(g, oy, ox).fill(&mut taps);
                    // The kernel reads four channels at `c0 + b + tap.x` of `x` and
                    // `c0 + b + tap.w` of `wt`: both inside, as `tap.x + c <= x.len()`
                    // and `tap.w + c <= wt.len()` for every tap (checked here).
                    for (o, t) in offsets.iter_mut().zip(&taps[..count]) {
                        assert!(t.x + g.c <= x.len() && t.w + g.c <= wt.len());
                        *o = [t.x as u32, t.w as u32];
                    }
                    let mut b = 0;
                    while b < four {
                        let mut out = [0i32; 4];
                        // SAFETY: see above: channels `c0 + b .. c0 + b + 4 <= c` of
                        // every tap, and `out`.
                        unsafe {
                            medwasm_dsp_dw4(
                                x.as_ptr().add(c0 + b),
                                offsets.as_ptr(),
                                count,
                                wt.as_ptr().add(c0 + b),
                                off,
                                out.as_mut_ptr(),
                            );
                        }
                        for (l, &acc) in out.iter().enumerate() {
                            sink.put(&prepared[b + l], at, c0 + b + l, acc);
                        }
                        b += 4;
                    }
                    for b in four..n {
                        let acc = super::acc::tap_sum(x, x_off, wt, &taps[..count], c0 + b);
                        sink.put(&prepared[b], at, c0 + b, acc);
                    }
                }
            }
            c0 += n;
        }
    }

    fn fully_connected(
        depth: usize,
        units: usize,
        x: &[i8],
        x_off: i32,
        wt: &[i8],
        mut sink: impl FnMut(usize, i32),
    ) {
        if depth > 2 * PATCH || depth == 0 {
            return super::acc::fully_connected_rows::<Self>(depth, units, x, x_off, wt, sink);
        }
        // The row as 16-bit pairs: words `2g`, `2g + 1` for group `g`.
        let off = lanes(x_off);
        let mut buf = Patches([0; PATCH]);
        let whole = depth & !3;
        for (grp, four) in x[..whole].chunks_exact(4).enumerate() {
            let v =
                u32::from_le_bytes([four[0] as u8, four[1] as u8, four[2] as u8, four[3] as u8]);
            buf.0[2 * grp] = sxtab16(off, v);
            buf.0[2 * grp + 1] = sxtab16_ror8(off, v);
        }
        let mut u = 0;
        while u + ROWS <= units {
            let rows = &wt[u * depth..(u + ROWS) * depth];
            let mut out = [0i32; 4];
            // SAFETY: the kernel reads `whole / 2` words of `buf` and the first
            // `whole` bytes of each of the four rows in `rows`, and writes `out`.
            unsafe {
                medwasm_dsp_mac_1x4(
                    buf.0.as_ptr(),
                    rows.as_ptr(),
                    depth,
                    whole / 4,
                    out.as_mut_ptr(),
                );
            }
            for j in whole..depth {
                let v = x[j] as i32 + x_off;
                for (r, o) in out.iter_mut().enumerate() {
                    *o = o.wrapping_add(wt[(u + r) * depth + j] as i32 * v);
                }
            }
            for (r, &o) in out.iter().enumerate() {
                sink(u + r, o);
            }
            u += ROWS;
        }
        let whole_run = [Seg {
            x: 0,
            w: 0,
            len: depth,
        }];
        while u < units {
            sink(u, Self::dot1(x, x_off, &wt[u * depth..], &whole_run));
            u += 1;
        }
    }
}
