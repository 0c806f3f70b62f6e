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
//! hand-written leaf function (`medwasm_dsp_mac_2xn`: two positions × every pair
//! of output channels of a block, 16 instructions per 16 MACs unrolled by four;
//! `medwasm_dsp_mac_1x4` for FC rows; `medwasm_dsp_dwn` for every four depthwise
//! channels of a position over its tap list): as a whole function it may use all
//! fourteen general registers, where an `asm!` block gets twelve and the compiler
//! spilled the sums of a four-channel dot product to the stack.
//!
//! An int8 convolution or depthwise layer whose every channel has a right shift
//! (an effective scale below ½, the usual case) also requantizes in
//! assembly (`medwasm_dsp_requant`, [`FusedChannel`]: one `LDM` of a channel's
//! prepared parameters, two `SMLAL`s, 15 instructions per output where the Rust
//! [`super::acc::Sink`] took about 30); any other sink (hybrid layers, a left
//! shift) gets the sums through the [`super::acc::Sink`] as before. Stack: 2.5 KiB
//! of patches and 1.8 KiB of prepared channels and sums for a convolution, 1.8 KiB
//! for a depthwise one (3 KiB on the unfused path).
//!
//! Stable Rust has no DSP intrinsics (`core::arch::arm`'s are unstable): the
//! kernels are `global_asm!`, the rest uses one-line `asm!` wrappers the compiler
//! schedules. Compiled only for `thumbv7em-*` (`medwasm_dsp`, set by `build.rs`).

use core::arch::{asm, global_asm};

use super::acc::{CHUNK, Loops, Sink, Taps, in_pos};
use super::mac::{LANES, Mac, ROWS, Seg, Tap};
use super::requant::{FusedChannel, Int8Out};
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
    let c = g.c;
    let groups = (g.kh * g.kw * c).div_ceil(4);
    assert!(p < 2 && buf.len() >= 4 * groups);
    let mut at = Slots {
        words: buf.as_mut_ptr(),
        p,
        off: lanes(x_off),
        x_off,
    };
    let row = g.kw * c;
    for ky in 0..g.kh {
        let k = ky * row;
        let Some(iy) = in_pos(oy, ky, g.sh, g.dh, g.pt, g.h) else {
            // SAFETY (of every `Slots` call below): elements `k..k + row` lie in
            // groups below `groups`, inside `buf` (checked above).
            unsafe { at.zeros(k, row) };
            continue;
        };
        if g.dw == 1 {
            // The row's taps whose column `ox·sw + kx − pl` lies in `0..w` are one
            // run of the input row: one pass over it, zeros around it (with `c =
            // 1`, as in a first layer, a tap at a time cost several times more).
            let start = ox * g.sw;
            let lo = g.pl.saturating_sub(start).min(g.kw);
            let hi = g.kw.min((g.w + g.pl).saturating_sub(start)).max(lo);
            // SAFETY: as above.
            unsafe {
                at.zeros(k, lo * c);
                if hi > lo {
                    let run = &x[(iy * g.w + start + lo - g.pl) * c..][..(hi - lo) * c];
                    at.run(k + lo * c, run);
                }
                at.zeros(k + hi * c, (g.kw - hi) * c);
            }
            continue;
        }
        for kx in 0..g.kw {
            let k = k + kx * c;
            // SAFETY: as above.
            unsafe {
                match in_pos(ox, kx, g.sw, g.dw, g.pl, g.w) {
                    Some(ix) => at.run(k, &x[(iy * g.w + ix) * c..][..c]),
                    None => at.zeros(k, c),
                }
            }
        }
    }
}

/// Where [`fill`] writes position `p`'s elements (see [`Patches`]).
struct Slots {
    words: *mut u32,
    p: usize,
    off: u32,
    x_off: i32,
}

impl Slots {
    /// Elements `k..k + src.len()`: `src` plus the offset.
    ///
    /// # Safety
    /// Their groups must lie inside the buffer `words` points into.
    #[inline(always)]
    unsafe fn run(&mut self, k: usize, src: &[i8]) {
        if k.is_multiple_of(4) && src.len().is_multiple_of(4) {
            // Whole groups: one load, two `SXTAB16`, the words as they are.
            // SAFETY: reads the `src.len()` bytes of `src`; writes words `4(k/4 + j)
            // + 2p` and `+ 1` for `j < src.len() / 4`, in the group of element `k +
            // 4j`, inside by the caller's promise.
            unsafe {
                medwasm_dsp_expand(
                    src.as_ptr(),
                    src.len() / 4,
                    self.words.add(k + 2 * self.p),
                    self.off,
                );
            }
            return;
        }
        let halves = self.words.cast::<i16>();
        for (j, &v) in src.iter().enumerate() {
            // SAFETY: `slot(k + j, p)` is in the group of element `k + j`.
            unsafe {
                halves
                    .add(slot(k + j, self.p))
                    .write((v as i32 + self.x_off) as i16)
            };
        }
    }

    /// Elements `k..k + len`: zero (padding).
    ///
    /// # Safety
    /// As [`Slots::run`].
    #[inline(always)]
    unsafe fn zeros(&mut self, k: usize, len: usize) {
        let halves = self.words.cast::<i16>();
        for j in k..k + len {
            // SAFETY: as in `run`.
            unsafe { halves.add(slot(j, self.p)).write(0) };
        }
    }
}

// The inner loops, AAPCS leaf functions. `medwasm_dsp_mac_2x2(x, w, stride,
// groups, out)`: `x` the patches of two positions, `w` weight row 0 (row 1 at
// `w + stride`, any alignment), `groups` groups of four elements (may be 0);
// writes `out[0..4]` = position 0 × rows 0, 1, position 1 × rows 0, 1.
// `medwasm_dsp_mac_2xn(x, w, k, groups, pairs, out0, out1)`: `medwasm_dsp_mac_2x2`
// for `pairs` pairs of weight rows `k` bytes apart (rows `2i`, `2i + 1` at `w +
// 2i·k`), position 0's sums to `out0[2i..2i + 2]` and position 1's to `out1[2i..
// 2i + 2]`: one call per position pair instead of one per channel pair.
// `medwasm_dsp_mac_1x4(x, w, stride, groups, out)`: one row of patch (words `2g`,
// `2g + 1`), four weight rows at `stride` from each other; `out[0..4]`.
// `medwasm_dsp_dw4(x, taps, n, w, off, out)`: depthwise, four channels: for each
// of `n` taps (byte offsets `[x, w]`), the channels at `x + tap.x` with `off`
// added to both 16-bit lanes, times those at `w + tap.w`, lane by lane (`SMLABB`,
// `SMLATT`); `out[0..4]` in channel order.
// `medwasm_dsp_dwn(x, taps, n, w, off, out, blocks)`: `medwasm_dsp_dw4` for
// `blocks` blocks of four channels (block `b` at `x + 4b`, `w + 4b`), `out[4b..4b
// + 4]`: one call per position instead of one per block.
// `medwasm_dsp_expand(src, n, dst, off)`: [`fill`]'s whole groups: for each of
// `n` words of `src` (any alignment), `SXTAB16` of `off` and its bytes 0, 2 and
// 1, 3 into the first two words of each group of four words at `dst`.
// `medwasm_dsp_requant(sums, n, channels, out, node)`: `out[i]` = the int8 output of
// `sums[i]` with `channels[i]` (`FusedChannel`, five words `[bias, m, r − 1, lo,
// hi]`) and `node` = `[zp_out, act_min, act_max]`, for `i < n`: each step of
// `FusedChannel::output`, 15 instructions per output (unrolled by four) where the
// Rust `Sink` took about 30.
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
    ".section .text.medwasm_dsp_mac_2xn,\"ax\",%progbits",
    ".global medwasm_dsp_mac_2xn",
    ".type medwasm_dsp_mac_2xn, %function",
    ".thumb_func",
    ".p2align 2",
    "medwasm_dsp_mac_2xn:",
    "push {{r4-r11, lr}}",
    "sub sp, #40",
    "ldr r4, [sp, #76]",
    "cmp r4, #0",
    "beq 9f",
    "ldrd r5, r6, [sp, #80]",
    "strd r0, r1, [sp]",
    "str r3, [sp, #8]",
    "str r4, [sp, #28]",
    "strd r5, r6, [sp, #32]",
    "movs r4, #0",
    "movs r5, #0",
    "strd r4, r5, [sp, #12]",
    "strd r4, r5, [sp, #20]",
    "0:",
    "ldm sp, {{r0, r1, r3-r7}}",
    "add r12, r1, r2, lsl #1",
    "str r12, [sp, #4]",
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
    "tst r3, #2",
    "beq 4f",
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
    "4:",
    "lsrs r3, r3, #2",
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
    "ldrd r0, r1, [sp, #32]",
    "strd r4, r5, [r0], #8",
    "strd r6, r7, [r1], #8",
    "strd r0, r1, [sp, #32]",
    "ldr r0, [sp, #28]",
    "subs r0, r0, #1",
    "str r0, [sp, #28]",
    "bne 0b",
    "9:",
    "add sp, #40",
    "pop {{r4-r11, pc}}",
    ".size medwasm_dsp_mac_2xn, . - medwasm_dsp_mac_2xn",
    ".section .text.medwasm_dsp_dwn,\"ax\",%progbits",
    ".global medwasm_dsp_dwn",
    ".type medwasm_dsp_dwn, %function",
    ".thumb_func",
    ".p2align 2",
    "medwasm_dsp_dwn:",
    "push {{r4-r11, lr}}",
    "sub sp, #32",
    "ldr r4, [sp, #76]",
    "cmp r4, #0",
    "beq 9f",
    "movs r5, #0",
    "movs r6, #0",
    "strd r1, r2, [sp]",
    "strd r5, r6, [sp, #8]",
    "strd r5, r6, [sp, #16]",
    "str r4, [sp, #24]",
    "ldr r4, [sp, #68]",
    "ldr lr, [sp, #72]",
    "0:",
    "ldm sp, {{r1, r2, r5-r8}}",
    "tst r2, #1",
    "beq 3f",
    "ldrd r9, r10, [r1], #8",
    "ldr r9, [r0, r9]",
    "ldr r10, [r3, r10]",
    "sxtab16 r11, r4, r9",
    "sxtab16 r9, r4, r9, ror #8",
    "sxtb16 r12, r10, ror #8",
    "sxtb16 r10, r10",
    "smlabb r5, r11, r10, r5",
    "smlatt r7, r11, r10, r7",
    "smlabb r6, r9, r12, r6",
    "smlatt r8, r9, r12, r8",
    "3:",
    "tst r2, #2",
    "beq 4f",
    "ldrd r9, r10, [r1], #8",
    "ldr r9, [r0, r9]",
    "ldr r10, [r3, r10]",
    "sxtab16 r11, r4, r9",
    "sxtab16 r9, r4, r9, ror #8",
    "sxtb16 r12, r10, ror #8",
    "sxtb16 r10, r10",
    "smlabb r5, r11, r10, r5",
    "smlatt r7, r11, r10, r7",
    "smlabb r6, r9, r12, r6",
    "smlatt r8, r9, r12, r8",
    "ldrd r9, r10, [r1], #8",
    "ldr r9, [r0, r9]",
    "ldr r10, [r3, r10]",
    "sxtab16 r11, r4, r9",
    "sxtab16 r9, r4, r9, ror #8",
    "sxtb16 r12, r10, ror #8",
    "sxtb16 r10, r10",
    "smlabb r5, r11, r10, r5",
    "smlatt r7, r11, r10, r7",
    "smlabb r6, r9, r12, r6",
    "smlatt r8, r9, r12, r8",
    "4:",
    "lsrs r2, r2, #2",
    "beq 2f",
    "1:",
    "ldrd r9, r10, [r1], #8",
    "ldr r9, [r0, r9]",
    "ldr r10, [r3, r10]",
    "sxtab16 r11, r4, r9",
    "sxtab16 r9, r4, r9, ror #8",
    "sxtb16 r12, r10, ror #8",
    "sxtb16 r10, r10",
    "smlabb r5, r11, r10, r5",
    "smlatt r7, r11, r10, r7",
    "smlabb r6, r9, r12, r6",
    "smlatt r8, r9, r12, r8",
    "ldrd r9, r10, [r1], #8",
    "ldr r9, [r0, r9]",
    "ldr r10, [r3, r10]",
    "sxtab16 r11, r4, r9",
    "sxtab16 r9, r4, r9, ror #8",
    "sxtb16 r12, r10, ror #8",
    "sxtb16 r10, r10",
    "smlabb r5, r11, r10, r5",
    "smlatt r7, r11, r10, r7",
    "smlabb r6, r9, r12, r6",
    "smlatt r8, r9, r12, r8",
    "ldrd r9, r10, [r1], #8",
    "ldr r9, [r0, r9]",
    "ldr r10, [r3, r10]",
    "sxtab16 r11, r4, r9",
    "sxtab16 r9, r4, r9, ror #8",
    "sxtb16 r12, r10, ror #8",
    "sxtb16 r10, r10",
    "smlabb r5, r11, r10, r5",
    "smlatt r7, r11, r10, r7",
    "smlabb r6, r9, r12, r6",
    "smlatt r8, r9, r12, r8",
    "ldrd r9, r10, [r1], #8",
    "ldr r9, [r0, r9]",
    "ldr r10, [r3, r10]",
    "sxtab16 r11, r4, r9",
    "sxtab16 r9, r4, r9, ror #8",
    "sxtb16 r12, r10, ror #8",
    "sxtb16 r10, r10",
    "smlabb r5, r11, r10, r5",
    "smlatt r7, r11, r10, r7",
    "smlabb r6, r9, r12, r6",
    "smlatt r8, r9, r12, r8",
    "subs r2, r2, #1",
    "bne 1b",
    "2:",
    "stm lr!, {{r5-r8}}",
    "adds r0, r0, #4",
    "adds r3, r3, #4",
    "ldr r2, [sp, #24]",
    "subs r2, r2, #1",
    "str r2, [sp, #24]",
    "bne 0b",
    "9:",
    "add sp, #32",
    "pop {{r4-r11, pc}}",
    ".size medwasm_dsp_dwn, . - medwasm_dsp_dwn",
    ".section .text.medwasm_dsp_expand,\"ax\",%progbits",
    ".global medwasm_dsp_expand",
    ".type medwasm_dsp_expand, %function",
    ".thumb_func",
    ".p2align 2",
    "medwasm_dsp_expand:",
    "push {{r4, lr}}",
    "cbz r1, 2f",
    "1:",
    "ldr r4, [r0], #4",
    "sxtab16 r12, r3, r4",
    "sxtab16 r4, r3, r4, ror #8",
    "strd r12, r4, [r2], #16",
    "subs r1, r1, #1",
    "bne 1b",
    "2:",
    "pop {{r4, pc}}",
    ".size medwasm_dsp_expand, . - medwasm_dsp_expand",
    ".section .text.medwasm_dsp_requant,\"ax\",%progbits",
    ".global medwasm_dsp_requant",
    ".type medwasm_dsp_requant, %function",
    ".thumb_func",
    ".p2align 2",
    "medwasm_dsp_requant:",
    "push {{r4-r11, lr}}",
    "ldr r4, [sp, #36]",
    "ldm r4, {{r4-r6}}",
    "mov r7, #0x80000000",
    "tst r1, #1",
    "beq 3f",
    "ldr lr, [r0], #4",
    "ldm r2!, {{r8-r12}}",
    "add lr, lr, r8",
    "smlal r11, r12, lr, r9",
    "lsr r8, lr, #31",
    "smlal r11, r12, r8, r7",
    "asr r12, r12, r10",
    "qadd r12, r12, r4",
    "cmp r12, r5",
    "it lt",
    "movlt r12, r5",
    "cmp r12, r6",
    "it gt",
    "movgt r12, r6",
    "strb r12, [r3], #1",
    "3:",
    "tst r1, #2",
    "beq 4f",
    "ldr lr, [r0], #4",
    "ldm r2!, {{r8-r12}}",
    "add lr, lr, r8",
    "smlal r11, r12, lr, r9",
    "lsr r8, lr, #31",
    "smlal r11, r12, r8, r7",
    "asr r12, r12, r10",
    "qadd r12, r12, r4",
    "cmp r12, r5",
    "it lt",
    "movlt r12, r5",
    "cmp r12, r6",
    "it gt",
    "movgt r12, r6",
    "strb r12, [r3], #1",
    "ldr lr, [r0], #4",
    "ldm r2!, {{r8-r12}}",
    "add lr, lr, r8",
    "smlal r11, r12, lr, r9",
    "lsr r8, lr, #31",
    "smlal r11, r12, r8, r7",
    "asr r12, r12, r10",
    "qadd r12, r12, r4",
    "cmp r12, r5",
    "it lt",
    "movlt r12, r5",
    "cmp r12, r6",
    "it gt",
    "movgt r12, r6",
    "strb r12, [r3], #1",
    "4:",
    "lsrs r1, r1, #2",
    "beq 2f",
    "1:",
    "ldr lr, [r0], #4",
    "ldm r2!, {{r8-r12}}",
    "add lr, lr, r8",
    "smlal r11, r12, lr, r9",
    "lsr r8, lr, #31",
    "smlal r11, r12, r8, r7",
    "asr r12, r12, r10",
    "qadd r12, r12, r4",
    "cmp r12, r5",
    "it lt",
    "movlt r12, r5",
    "cmp r12, r6",
    "it gt",
    "movgt r12, r6",
    "strb r12, [r3], #1",
    "ldr lr, [r0], #4",
    "ldm r2!, {{r8-r12}}",
    "add lr, lr, r8",
    "smlal r11, r12, lr, r9",
    "lsr r8, lr, #31",
    "smlal r11, r12, r8, r7",
    "asr r12, r12, r10",
    "qadd r12, r12, r4",
    "cmp r12, r5",
    "it lt",
    "movlt r12, r5",
    "cmp r12, r6",
    "it gt",
    "movgt r12, r6",
    "strb r12, [r3], #1",
    "ldr lr, [r0], #4",
    "ldm r2!, {{r8-r12}}",
    "add lr, lr, r8",
    "smlal r11, r12, lr, r9",
    "lsr r8, lr, #31",
    "smlal r11, r12, r8, r7",
    "asr r12, r12, r10",
    "qadd r12, r12, r4",
    "cmp r12, r5",
    "it lt",
    "movlt r12, r5",
    "cmp r12, r6",
    "it gt",
    "movgt r12, r6",
    "strb r12, [r3], #1",
    "ldr lr, [r0], #4",
    "ldm r2!, {{r8-r12}}",
    "add lr, lr, r8",
    "smlal r11, r12, lr, r9",
    "lsr r8, lr, #31",
    "smlal r11, r12, r8, r7",
    "asr r12, r12, r10",
    "qadd r12, r12, r4",
    "cmp r12, r5",
    "it lt",
    "movlt r12, r5",
    "cmp r12, r6",
    "it gt",
    "movgt r12, r6",
    "strb r12, [r3], #1",
    "subs r1, r1, #1",
    "bne 1b",
    "2:",
    "pop {{r4-r11, pc}}",
    ".size medwasm_dsp_requant, . - medwasm_dsp_requant",
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
    fn medwasm_dsp_mac_2xn(
        x: *const u32,
        w: *const i8,
        k: usize,
        groups: usize,
        pairs: usize,
        out0: *mut i32,
        out1: *mut i32,
    );
    /// See the `global_asm!` above.
    fn medwasm_dsp_dwn(
        x: *const i8,
        taps: *const [u32; 2],
        n: usize,
        w: *const i8,
        off: u32,
        out: *mut i32,
        blocks: usize,
    );
    /// See the `global_asm!` above.
    fn medwasm_dsp_expand(src: *const i8, n: usize, dst: *mut u32, off: u32);
    /// See the `global_asm!` above.
    fn medwasm_dsp_requant(
        sums: *const i32,
        n: usize,
        channels: *const FusedChannel,
        out: *mut i8,
        node: *const [i32; 3],
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

/// Whether every channel of `out` has a right shift, which [`FusedChannel`] needs.
fn fusable(out: &Int8Out<'_>) -> bool {
    out.shift.iter().all(|&s| (-31..=-1).contains(&s))
}

/// `out[i]` = channel `i`'s int8 output of `sums[i]` (see [`FusedChannel`]).
#[inline(always)]
fn requant(sums: &[i32], channels: &[FusedChannel], node: &[i32; 3], out: &mut [i8]) {
    let n = out.len();
    assert!(sums.len() >= n && channels.len() >= n);
    // SAFETY: reads `n` elements of `sums` and of `channels`, writes `n` of `out`.
    unsafe { medwasm_dsp_requant(sums.as_ptr(), n, channels.as_ptr(), out.as_mut_ptr(), node) }
}

/// Output channels whose requantization is prepared at once, for a depthwise or
/// fused convolution loop (20 bytes each on the stack).
const BLOCK: usize = 64;

/// Prepares channels `c0..c0 + n` of `out` into `prm`.
fn prepare(out: &Int8Out<'_>, c0: usize, prm: &mut [FusedChannel]) {
    for (i, p) in prm.iter_mut().enumerate() {
        let (bias, m, shift) = out.channel(c0 + i);
        // `fusable` checked every shift; a channel it did not would give 0s.
        *p = FusedChannel::new(bias, m, shift).unwrap_or_default();
    }
}

/// [`Dsp::conv`] with the requantization in `medwasm_dsp_requant`: per block of
/// [`BLOCK`] channels, prepared once, each pair of positions' patches against
/// every channel pair, then that pair's outputs. `k = kh·kw·c` in `1..=PATCH`.
fn conv_fused(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], out: Int8Out<'_>) {
    let k = g.kh * g.kw * g.c;
    let (whole, groups) = (k & !3, k.div_ceil(4));
    let node = [out.q.zp_out, out.q.act_min, out.q.act_max];
    let mut buf = Patches([0; PATCH]);
    let part = &mut buf.0[..4 * groups];
    let mut prm = [FusedChannel::default(); BLOCK];
    let mut sums = [[0i32; BLOCK]; 2];
    let positions = g.oh * g.ow;
    let mut c0 = 0;
    while c0 < g.m {
        let n = (g.m - c0).min(BLOCK);
        prepare(&out, c0, &mut prm[..n]);
        let mut first = 0;
        while first < positions {
            let count = (positions - first).min(2);
            fill(part, g, x, x_off, first / g.ow, first % g.ow, 0);
            if count == 2 {
                let at = first + 1;
                fill(part, g, x, x_off, at / g.ow, at % g.ow, 1);
            } else {
                // A last odd position is paired with zeros.
                for grp in 0..groups {
                    part[4 * grp + 2] = 0;
                    part[4 * grp + 3] = 0;
                }
            }
            let pairs = n / 2;
            let [s0, s1] = &mut sums;
            let w = &wt[c0 * k..][..n * k];
            // SAFETY: the kernel reads `whole / 4` groups of four words of `part`
            // (`4 · groups` words) and `whole` bytes of each of the `2 · pairs <= n`
            // rows of `w` (`k` bytes each), and writes `2 · pairs` sums to each row of
            // `sums` (`BLOCK >= n` each).
            unsafe {
                medwasm_dsp_mac_2xn(
                    part.as_ptr(),
                    w.as_ptr(),
                    k,
                    whole / 4,
                    pairs,
                    s0.as_mut_ptr(),
                    s1.as_mut_ptr(),
                );
            }
            if n % 2 == 1 {
                // A last odd channel, paired with itself.
                let i = n - 1;
                let mut o = [0i32; 4];
                // SAFETY: as `medwasm_dsp_mac_2xn`, for row `i` twice.
                unsafe {
                    medwasm_dsp_mac_2x2(
                        part.as_ptr(),
                        w[i * k..].as_ptr(),
                        0,
                        whole / 4,
                        o.as_mut_ptr(),
                    );
                }
                s0[i] = o[0];
                s1[i] = o[2];
            }
            // Elements past the last whole group, if any.
            for t in whole..k {
                let (x0, x1) = (half(part, slot(t, 0)), half(part, slot(t, 1)));
                for i in 0..n {
                    let a = w[i * k + t] as i32;
                    s0[i] = s0[i].wrapping_add(a * x0);
                    s1[i] = s1[i].wrapping_add(a * x1);
                }
            }
            for (p, row) in sums.iter().enumerate().take(count) {
                let at = first + p;
                requant(
                    &row[..n],
                    &prm[..n],
                    &node,
                    &mut out.ys[at * g.m + c0..][..n],
                );
            }
            first += count;
        }
        c0 += n;
    }
}

/// [`Dsp::depthwise`] with the requantization in `medwasm_dsp_requant`: per block
/// of [`BLOCK`] channels, prepared once, each position's sums, then its outputs.
/// Depth multiplier 1, at most [`CHUNK`] taps.
fn depthwise_fused(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], out: Int8Out<'_>) {
    let off = lanes(x_off);
    let whole = g.c & !3;
    let node = [out.q.zp_out, out.q.act_min, out.q.act_max];
    let mut taps = [Tap::default(); CHUNK];
    let mut offsets = [[0u32; 2]; CHUNK];
    let mut prm = [FusedChannel::default(); BLOCK];
    let mut sums = [0i32; BLOCK];
    let mut c0 = 0;
    while c0 < g.c {
        let n = (g.c - c0).min(BLOCK);
        prepare(&out, c0, &mut prm[..n]);
        let four = if c0 + n <= whole {
            n
        } else {
            whole.saturating_sub(c0)
        };
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let at = oy * g.ow + ox;
                // The kernel reads four channels at `c0 + b + tap.x` of `x` and `c0 +
                // b + tap.w` of `wt`: both inside, as `tap.x + c <= x.len()` and
                // `tap.w + c <= wt.len()` for every tap (checked in both branches).
                let count = if g.dw == 1 && four == n {
                    row_offsets(g, oy, ox, x.len(), wt.len(), &mut offsets)
                } else {
                    // Dilated columns, or channels past the last four the tail below
                    // takes from `taps`.
                    let count = Taps::new(g, oy, ox).fill(&mut taps);
                    for (o, t) in offsets.iter_mut().zip(&taps[..count]) {
                        assert!(t.x + g.c <= x.len() && t.w + g.c <= wt.len());
                        *o = [t.x as u32, t.w as u32];
                    }
                    count
                };
                // SAFETY: see above: channels `c0 .. c0 + four <= c` of every tap;
                // writes `sums[..four]`, inside as `four <= n <= BLOCK`.
                unsafe {
                    medwasm_dsp_dwn(
                        x.as_ptr().add(c0),
                        offsets.as_ptr(),
                        count,
                        wt.as_ptr().add(c0),
                        off,
                        sums.as_mut_ptr(),
                        four / 4,
                    );
                }
                for (b, s) in sums.iter_mut().enumerate().take(n).skip(four) {
                    *s = super::acc::tap_sum(x, x_off, wt, &taps[..count], c0 + b);
                }
                requant(
                    &sums[..n],
                    &prm[..n],
                    &node,
                    &mut out.ys[at * g.m + c0..][..n],
                );
            }
        }
        c0 += n;
    }
}

/// Depthwise position `(oy, ox)`'s in-bounds taps as byte offsets `[x, w]` (those
/// of [`Tap`]), with dilation 1 along the width: each kernel row's taps are one
/// run, its offsets `c` apart (the general [`Taps`] costs several times more per
/// tap, which 64 channels no longer hide). Checks that each tap's `c` channels
/// lie inside `x_len` and `w_len` bytes. `kh · kw <= CHUNK`.
fn row_offsets(
    g: &Geometry,
    oy: usize,
    ox: usize,
    x_len: usize,
    w_len: usize,
    out: &mut [[u32; 2]; CHUNK],
) -> usize {
    let c = g.c;
    let start = ox * g.sw;
    let lo = g.pl.saturating_sub(start).min(g.kw);
    let hi = g.kw.min((g.w + g.pl).saturating_sub(start)).max(lo);
    let mut n = 0;
    for ky in 0..g.kh {
        let Some(iy) = in_pos(oy, ky, g.sh, g.dh, g.pt, g.h) else {
            continue;
        };
        let x0 = (iy * g.w + start + lo).saturating_sub(g.pl) * c;
        let w0 = (ky * g.kw + lo) * c;
        let len = (hi - lo) * c;
        // Offsets grow along the run: its last tap inside means all are.
        assert!(x0 + len <= x_len && w0 + len <= w_len);
        for j in 0..hi - lo {
            out[n] = [(x0 + j * c) as u32, (w0 + j * c) as u32];
            n += 1;
        }
    }
    n
}

/// The whole loops the DSP primitives want blocked their own way: patches of
/// input expanded to 16-bit pairs once, shared by every output channel.
impl Loops for Dsp {
    fn conv(g: &Geometry, x: &[i8], x_off: i32, wt: &[i8], mut sink: impl Sink) {
        let k = g.kh * g.kw * g.c;
        if k > PATCH || k == 0 {
            return super::acc::conv_runs::<Self>(g, x, x_off, wt, sink);
        }
        if let Some(out) = sink.int8().filter(fusable) {
            return conv_fused(g, x, x_off, wt, out);
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
        if let Some(out) = sink.int8().filter(fusable) {
            return depthwise_fused(g, x, x_off, wt, out);
        }
        let off = lanes(x_off);
        let whole = g.c & !3;
        let mut taps = [Tap::default(); CHUNK];
        let mut offsets = [[0u32; 2]; CHUNK];
        // Channels in chunks of `BLOCK`, each channel prepared once per chunk.
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
