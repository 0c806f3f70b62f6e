//! Fixed-capacity shapes (rank ≤ 6), so that no shape ever needs a heap.

use crate::format::MAX_RANK;

/// A tensor shape of rank 0..=6.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dims {
    rank: usize,
    d: [usize; MAX_RANK],
}

impl core::fmt::Debug for Dims {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Dims {
    /// Rank 0.
    pub const fn scalar() -> Dims {
        Dims {
            rank: 0,
            d: [0; MAX_RANK],
        }
    }

    /// From a slice of at most 6 dims; `None` when longer.
    pub fn from_slice(dims: &[usize]) -> Option<Dims> {
        if dims.len() > MAX_RANK {
            return None;
        }
        let mut d = [0; MAX_RANK];
        d[..dims.len()].copy_from_slice(dims);
        Some(Dims {
            rank: dims.len(),
            d,
        })
    }

    /// Appends a dimension (ignored past rank 6; callers check rank first).
    pub fn push(mut self, dim: usize) -> Dims {
        if self.rank < MAX_RANK {
            self.d[self.rank] = dim;
            self.rank += 1;
        }
        self
    }

    /// Rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The dims as a slice.
    pub fn as_slice(&self) -> &[usize] {
        &self.d[..self.rank]
    }

    /// Dimension `i`, or 1 past the rank.
    pub fn get(&self, i: usize) -> usize {
        if i < self.rank { self.d[i] } else { 1 }
    }

    /// Element count, `None` on overflow.
    pub fn checked_elements(&self) -> Option<usize> {
        self.as_slice()
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Element count (validated shapes never overflow).
    pub fn elements(&self) -> usize {
        self.as_slice().iter().product()
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> [usize; MAX_RANK] {
        let mut s = [0; MAX_RANK];
        let mut acc = 1;
        for i in (0..self.rank).rev() {
            s[i] = acc;
            acc *= self.d[i];
        }
        s
    }
}
