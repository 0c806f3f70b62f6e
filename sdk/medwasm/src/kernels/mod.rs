//! Kernels. Each is a plain function over slices and shapes that the loader has
//! already validated. The f32 kernels run NCHW; the int8 and hybrid ones
//! ([`int8`]) run NHWC with TFLite's semantics. The scalar code is the reference;
//! the `simd128` GEMM (`gemm_simd128.rs`, wasm) and the register-blocked GEMM
//! (`gemm_blocked.rs`, Cortex-M) sit beside it and run the same test battery.

pub mod act;
pub mod binary;
pub mod conv;
pub mod gemm;
pub mod gemm_blocked;
pub mod int8;
pub mod misc;
pub mod pool;
pub mod reduce;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod gemm_simd128;

/// Multi-dimensional index counter over a shape (row-major, last dim fastest).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counter {
    idx: [usize; crate::format::MAX_RANK],
    dims: [usize; crate::format::MAX_RANK],
    rank: usize,
}

impl Counter {
    pub(crate) fn new(dims: &[usize]) -> Counter {
        let mut d = [1; crate::format::MAX_RANK];
        d[..dims.len()].copy_from_slice(dims);
        Counter {
            idx: [0; crate::format::MAX_RANK],
            dims: d,
            rank: dims.len(),
        }
    }

    pub(crate) fn index(&self) -> &[usize] {
        &self.idx[..self.rank]
    }

    /// Advances to the next index; false after the last.
    pub(crate) fn advance(&mut self) -> bool {
        let mut i = self.rank;
        while i > 0 {
            i -= 1;
            self.idx[i] += 1;
            if self.idx[i] < self.dims[i] {
                return true;
            }
            self.idx[i] = 0;
        }
        false
    }
}
