//! Elementwise Add/Sub/Mul/Div with NumPy-style (multidirectional) broadcasting.

use super::Counter;
use crate::format::MAX_RANK;
use crate::shape::Dims;

/// Which arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
}

impl BinOp {
    /// Decodes a stored kind.
    pub fn decode(v: u32) -> Option<BinOp> {
        Some(match v {
            0 => BinOp::Add,
            1 => BinOp::Sub,
            2 => BinOp::Mul,
            3 => BinOp::Div,
            _ => return None,
        })
    }

    /// Encodes.
    pub fn encode(self) -> u32 {
        self as u32
    }

    #[inline(always)]
    fn eval(self, a: f32, b: f32) -> f32 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
        }
    }
}

/// The broadcast shape of `a` and `b`, or `None` if they do not broadcast.
pub fn broadcast(a: &Dims, b: &Dims) -> Option<Dims> {
    let rank = a.rank().max(b.rank());
    let mut out = [0usize; MAX_RANK];
    for (i, o) in out.iter_mut().enumerate().take(rank) {
        let da = if i + a.rank() >= rank {
            a.as_slice()[i + a.rank() - rank]
        } else {
            1
        };
        let db = if i + b.rank() >= rank {
            b.as_slice()[i + b.rank() - rank]
        } else {
            1
        };
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Dims::from_slice(&out[..rank])
}

/// Strides of `d` aligned to `rank` dims, 0 where `d` broadcasts.
fn bstrides(d: &Dims, rank: usize) -> [usize; MAX_RANK] {
    let s = d.strides();
    let mut out = [0; MAX_RANK];
    for i in 0..d.rank() {
        let j = i + rank - d.rank();
        out[j] = if d.as_slice()[i] == 1 { 0 } else { s[i] };
    }
    out
}

/// `y = a op b` with `y` of the broadcast shape `yd` (checked by the loader).
pub fn binary(op: BinOp, a: &[f32], ad: &Dims, b: &[f32], bd: &Dims, y: &mut [f32], yd: &Dims) {
    broadcast_zip(a, ad, b, bd, y, yd, |x, z| op.eval(x, z));
}

/// `y[i] = f(a[..], b[..])` over the broadcast shape `yd` of `ad` and `bd`
/// (checked by the loader): the element walk every broadcasting kernel shares,
/// f32 and int8.
#[inline]
pub fn broadcast_zip<A: Copy, B: Copy, Y>(
    a: &[A],
    ad: &Dims,
    b: &[B],
    bd: &Dims,
    y: &mut [Y],
    yd: &Dims,
    f: impl Fn(A, B) -> Y,
) {
    if ad == bd {
        for ((o, &x), &z) in y.iter_mut().zip(a).zip(b) {
            *o = f(x, z);
        }
        return;
    }
    if b.len() == 1 {
        let z = b[0];
        for (o, &x) in y.iter_mut().zip(a) {
            *o = f(x, z);
        }
        return;
    }
    let rank = yd.rank();
    if rank == 0 {
        y[0] = f(a[0], b[0]);
        return;
    }
    let (sa, sb) = (bstrides(ad, rank), bstrides(bd, rank));
    let inner = yd.as_slice()[rank - 1];
    let (ia, ib) = (sa[rank - 1], sb[rank - 1]);
    let mut outer = Counter::new(&yd.as_slice()[..rank - 1]);
    let mut out_off = 0;
    loop {
        let idx = outer.index();
        let mut oa = 0;
        let mut ob = 0;
        for (d, &i) in idx.iter().enumerate() {
            oa += i * sa[d];
            ob += i * sb[d];
        }
        let row = &mut y[out_off..out_off + inner];
        for (j, o) in row.iter_mut().enumerate() {
            *o = f(a[oa + j * ia], b[ob + j * ib]);
        }
        out_off += inner;
        if !outer.advance() {
            break;
        }
    }
}
