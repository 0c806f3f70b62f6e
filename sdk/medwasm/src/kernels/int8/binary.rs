//! int8 ADD, SUB and MUL with NumPy broadcasting, TFLite's
//! `reference_integer_ops::Add`/`Mul` and `reference_ops::Sub` (spec §4).

use super::fixed::{mbqm, rdbpot, srdhm};
use crate::kernels::binary::broadcast_zip;
use crate::shape::Dims;

/// ADD/SUB parameters, computed by the converter as TFLite's `Prepare` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddParams {
    /// SUB instead of ADD.
    pub sub: bool,
    /// Left shift applied to both inputs first (20 for int8).
    pub left_shift: u8,
    /// Input 1 multiplier and (≤ 0) shift.
    pub m1: i32,
    /// Input 1 shift.
    pub s1: i8,
    /// Input 2 multiplier.
    pub m2: i32,
    /// Input 2 shift.
    pub s2: i8,
    /// Output multiplier.
    pub mo: i32,
    /// Output shift.
    pub so: i8,
    /// Input 1 zero point.
    pub zp1: i16,
    /// Input 2 zero point.
    pub zp2: i16,
    /// Output zero point.
    pub zpo: i16,
    /// Fused activation range.
    pub act_min: i8,
    /// Fused activation range.
    pub act_max: i8,
}

/// `MultiplyByQuantizedMultiplierSmallerThanOneExp`: the loader keeps `shift ≤ 0`.
#[inline(always)]
fn scale_down(x: i32, m: i32, shift: i8) -> i32 {
    rdbpot(srdhm(x, m), (-(shift as i32)) as u32)
}

impl AddParams {
    /// One output element.
    #[inline]
    pub fn eval(&self, x1: i8, x2: i8) -> i8 {
        let a = (x1 as i32 - self.zp1 as i32) * (1 << self.left_shift);
        let b = (x2 as i32 - self.zp2 as i32) * (1 << self.left_shift);
        let sa = scale_down(a, self.m1, self.s1);
        let sb = scale_down(b, self.m2, self.s2);
        let raw = if self.sub { sa - sb } else { sa + sb };
        let y = scale_down(raw, self.mo, self.so) + self.zpo as i32;
        y.clamp(self.act_min as i32, self.act_max as i32) as i8
    }
}

/// MUL parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulParams {
    /// Output multiplier.
    pub m: i32,
    /// Output shift (may be positive).
    pub shift: i8,
    /// Input 1 zero point.
    pub zp1: i16,
    /// Input 2 zero point.
    pub zp2: i16,
    /// Output zero point.
    pub zpo: i16,
    /// Fused activation range.
    pub act_min: i8,
    /// Fused activation range.
    pub act_max: i8,
}

impl MulParams {
    /// One output element.
    #[inline]
    pub fn eval(&self, x1: i8, x2: i8) -> i8 {
        let p = (x1 as i32 - self.zp1 as i32) * (x2 as i32 - self.zp2 as i32);
        let y = mbqm(p, self.m, self.shift as i32).saturating_add(self.zpo as i32);
        y.clamp(self.act_min as i32, self.act_max as i32) as i8
    }
}

/// Elements from which [`add`] tabulates each input's rescaling first.
const TABULATE: usize = 1024;

impl AddParams {
    /// Each input's rescaled value for every int8 input: `scale_down((x − zp) ·
    /// 2^left_shift, m, s)` depends on `x` alone.
    fn tables(&self) -> ([i32; 256], [i32; 256]) {
        let scaled = |x: i32, zp: i16, m: i32, s: i8| {
            scale_down((x - zp as i32) * (1 << self.left_shift), m, s)
        };
        (
            core::array::from_fn(|k| scaled(k as u8 as i8 as i32, self.zp1, self.m1, self.s1)),
            core::array::from_fn(|k| scaled(k as u8 as i8 as i32, self.zp2, self.m2, self.s2)),
        )
    }

    /// [`AddParams::eval`] with the inputs' rescaling looked up in `tables`.
    #[inline(always)]
    fn eval_tabulated(&self, (ta, tb): &([i32; 256], [i32; 256]), x1: i8, x2: i8) -> i8 {
        let (sa, sb) = (ta[x1 as u8 as usize], tb[x2 as u8 as usize]);
        let raw = if self.sub { sa - sb } else { sa + sb };
        let y = scale_down(raw, self.mo, self.so) + self.zpo as i32;
        y.max(self.act_min as i32).min(self.act_max as i32) as i8
    }
}

/// int8 ADD or SUB of `a` and `b` broadcast to `yd`. A large output (a residual
/// connection) first tabulates what each input's 256 values rescale to (2 KiB of
/// stack), the same function [`AddParams::eval`] evaluates per element.
pub fn add(p: &AddParams, a: &[i8], ad: &Dims, b: &[i8], bd: &Dims, y: &mut [i8], yd: &Dims) {
    if y.len() >= TABULATE {
        let tables = p.tables();
        broadcast_zip(a, ad, b, bd, y, yd, |x1, x2| {
            p.eval_tabulated(&tables, x1, x2)
        });
    } else {
        broadcast_zip(a, ad, b, bd, y, yd, |x1, x2| p.eval(x1, x2));
    }
}

/// int8 MUL of `a` and `b` broadcast to `yd`.
pub fn mul(p: &MulParams, a: &[i8], ad: &Dims, b: &[i8], bd: &Dims, y: &mut [i8], yd: &Dims) {
    broadcast_zip(a, ad, b, bd, y, yd, |x1, x2| p.eval(x1, x2));
}
