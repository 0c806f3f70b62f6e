//! Data movement and normalization: Softmax (f32), and Transpose, Concat and Pad
//! for any element type (generic over the element, instantiated per element size:
//! they copy values, never interpret them).

use super::Counter;
use crate::shape::Dims;

/// Softmax over `n` elements spaced `inner` apart, for every outer and inner index.
pub fn softmax(x: &[f32], y: &mut [f32], outer: usize, n: usize, inner: usize) {
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let mut max = f32::NEG_INFINITY;
            for k in 0..n {
                max = max.max(x[base + k * inner]);
            }
            let mut sum = 0.0;
            for k in 0..n {
                let e = libm::expf(x[base + k * inner] - max);
                y[base + k * inner] = e;
                sum += e;
            }
            for k in 0..n {
                y[base + k * inner] /= sum;
            }
        }
    }
}

/// `y[i] = x[perm-mapped i]` where `y.dims[d] = x.dims[perm[d]]`.
pub fn transpose<T: Copy>(x: &[T], xd: &Dims, perm: &[usize], y: &mut [T], yd: &Dims) {
    let xs = xd.strides();
    let mut step = [0usize; crate::format::MAX_RANK];
    for (d, &p) in perm.iter().enumerate() {
        step[d] = xs[p];
    }
    let mut c = Counter::new(yd.as_slice());
    for o in y.iter_mut() {
        let src: usize = c.index().iter().zip(&step).map(|(i, s)| i * s).sum();
        *o = x[src];
        c.advance();
    }
}

/// Copies one input's block into a concatenation: `outer` blocks of `len` elements,
/// each landing `offset` into an output row of `row` elements.
pub fn concat_part<T: Copy>(
    x: &[T],
    y: &mut [T],
    outer: usize,
    len: usize,
    row: usize,
    offset: usize,
) {
    for o in 0..outer {
        y[o * row + offset..o * row + offset + len].copy_from_slice(&x[o * len..(o + 1) * len]);
    }
}

/// Padding modes of an f32 Pad node (the converter's view; the kernel takes a
/// [`Border`] of the element type).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PadMode {
    /// Fill with a value.
    Constant(f32),
    /// Mirror without repeating the edge.
    Reflect,
    /// Repeat the edge.
    Edge,
}

/// What lies beyond the input's edges, for elements of type `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border<T> {
    /// A fixed element (an f32 constant, or an int8 tensor's zero point).
    Constant(T),
    /// Mirror without repeating the edge.
    Reflect,
    /// Repeat the edge.
    Edge,
}

impl<T> Border<T> {
    /// The same border with the constant mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Border<U> {
        match self {
            Border::Constant(v) => Border::Constant(f(v)),
            Border::Reflect => Border::Reflect,
            Border::Edge => Border::Edge,
        }
    }
}

/// Pads `x` by `begin[d]` before and the rest after each dim to make `y`.
pub fn pad<T: Copy>(
    x: &[T],
    xd: &Dims,
    begin: &[usize],
    border: Border<T>,
    y: &mut [T],
    yd: &Dims,
) {
    let xs = xd.strides();
    let mut c = Counter::new(yd.as_slice());
    for o in y.iter_mut() {
        let mut src = 0usize;
        let mut inside = true;
        for (d, &i) in c.index().iter().enumerate() {
            let n = xd.as_slice()[d];
            let j = i as isize - begin[d] as isize;
            let j = if j >= 0 && (j as usize) < n {
                j as usize
            } else {
                match border {
                    Border::Constant(_) => {
                        inside = false;
                        break;
                    }
                    Border::Edge => j.clamp(0, n as isize - 1) as usize,
                    Border::Reflect => {
                        // Pads are < n (checked by the loader), so one reflection suffices.
                        if j < 0 {
                            (-j) as usize
                        } else {
                            2 * (n - 1) - j as usize
                        }
                    }
                }
            };
            src += j * xs[d];
        }
        *o = match (inside, border) {
            (false, Border::Constant(v)) => v,
            _ => x[src],
        };
        c.advance();
    }
}
