//! Mean over a set of axes.

use super::Counter;
use crate::shape::Dims;

/// `y = mean of x over the axes set in `mask``; `y` has the kept dims in order.
pub fn reduce_mean(x: &[f32], xd: &Dims, mask: u32, y: &mut [f32]) {
    let dims = xd.as_slice();
    // Output strides over the input's axes, 0 on reduced ones.
    let mut ostride = [0usize; crate::format::MAX_RANK];
    let mut acc = 1;
    let mut count = 1usize;
    for i in (0..dims.len()).rev() {
        if mask & (1 << i) != 0 {
            count *= dims[i];
        } else {
            ostride[i] = acc;
            acc *= dims[i];
        }
    }
    y.fill(0.0);
    let mut c = Counter::new(dims);
    for &v in x {
        let o: usize = c.index().iter().zip(&ostride).map(|(i, s)| i * s).sum();
        y[o] += v;
        c.advance();
    }
    let inv = count as f32;
    y.iter_mut().for_each(|v| *v /= inv);
}
