//! The multiply-accumulate primitives under every int8 and hybrid convolution and
//! fully connected layer, as a trait with one implementation per instruction set:
//! [`Scalar`] (plain Rust, every target), `Simd128` (wasm `simd128`,
//! `mac_simd128.rs`) and `Dsp` (Cortex-M4/M7 dual 16-bit MACs, `mac_dsp.rs`). Each
//! fast file is compiled only for its target, gated once at `mod` level;
//! `fast::Fast` is the best this build has.
//!
//! Every primitive computes sums of products `w · (x + x_off)` with `w`, `x` int8
//! and `x_off` in `−128..=128` (the negated zero point of an int8 input), so each
//! factor `x + x_off` lies in `−255..=255` and every product is exact in 16×16-bit
//! multiplies. The sums are taken modulo 2^32 (wrapping), as the scalar reference
//! does: integer addition modulo 2^32 is associative and commutative, so every
//! implementation, in whatever order and grouping it adds the exact products, gives
//! the reference's bits — whether or not a sum overflows (the loader proves none
//! does, which is what makes them TFLite's values too).

/// A contiguous run of products: input elements `x[x..x + len]` against weight
/// elements `w[w..w + len]` of each weight row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seg {
    /// First input element.
    pub x: usize,
    /// First weight element, within a row.
    pub w: usize,
    /// Elements.
    pub len: usize,
}

/// A depthwise tap: the input pixel and the weight tap whose channels line up
/// (depth multiplier 1: channel `c` of both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tap {
    /// First channel of the input pixel.
    pub x: usize,
    /// First channel of the weight tap.
    pub w: usize,
}

/// Output channels of one [`Mac::dot4`] call.
pub const ROWS: usize = 4;
/// Channels of one [`Mac::depthwise8`] call.
pub const LANES: usize = 8;

/// Multiply-accumulate primitives; see the module docs for the arithmetic.
///
/// The loops of [`super::acc`] call these (an implementation may also replace a
/// whole loop: `acc::Loops`). Indices come from geometry the loader validated; an
/// index outside a slice is a bug and panics on a bounds check (a trap in wasm),
/// it is never read past.
pub trait Mac: Sized {
    /// Name for reports.
    const NAME: &'static str;

    /// `acc[r] += Σ_seg Σ_i w[r·stride + seg.w + i] · (x[seg.x + i] + x_off)` for
    /// the [`ROWS`] weight rows `r` (output channels) at `stride` from each other.
    fn dot4(x: &[i8], x_off: i32, w: &[i8], stride: usize, segs: &[Seg], acc: &mut [i32; ROWS]);

    /// The same for one weight row.
    fn dot1(x: &[i8], x_off: i32, w: &[i8], segs: &[Seg]) -> i32;

    /// Depthwise, depth multiplier 1: `acc[l] += Σ_tap w[tap.w + c + l] ·
    /// (x[tap.x + c + l] + x_off)` for the [`LANES`] channels from `c`.
    fn depthwise8(x: &[i8], x_off: i32, w: &[i8], taps: &[Tap], c: usize, acc: &mut [i32; LANES]);
}

/// Plain Rust: the reference for the others, and the fast path of targets without
/// SIMD or DSP instructions.
#[derive(Debug, Clone, Copy)]
pub struct Scalar;

/// `Σ w[i] · (x[i] + x_off)` over two slices of the same length, wrapping.
#[inline(always)]
fn run(x: &[i8], x_off: i32, w: &[i8]) -> i32 {
    x.iter().zip(w).fold(0i32, |acc, (&x, &w)| {
        acc.wrapping_add(w as i32 * (x as i32 + x_off))
    })
}

impl Mac for Scalar {
    const NAME: &'static str = "scalar";

    fn dot4(x: &[i8], x_off: i32, w: &[i8], stride: usize, segs: &[Seg], acc: &mut [i32; ROWS]) {
        for s in segs {
            let xs = &x[s.x..s.x + s.len];
            for (r, a) in acc.iter_mut().enumerate() {
                let start = r * stride + s.w;
                *a = a.wrapping_add(run(xs, x_off, &w[start..start + s.len]));
            }
        }
    }

    fn dot1(x: &[i8], x_off: i32, w: &[i8], segs: &[Seg]) -> i32 {
        segs.iter().fold(0i32, |acc, s| {
            acc.wrapping_add(run(&x[s.x..s.x + s.len], x_off, &w[s.w..s.w + s.len]))
        })
    }

    fn depthwise8(x: &[i8], x_off: i32, w: &[i8], taps: &[Tap], c: usize, acc: &mut [i32; LANES]) {
        for t in taps {
            let xs = &x[t.x + c..t.x + c + LANES];
            let ws = &w[t.w + c..t.w + c + LANES];
            for ((a, &x), &w) in acc.iter_mut().zip(xs).zip(ws) {
                *a = a.wrapping_add(w as i32 * (x as i32 + x_off));
            }
        }
    }
}
