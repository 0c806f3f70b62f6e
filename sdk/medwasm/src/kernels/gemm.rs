//! `C += A · B` on row-major matrices with leading dimensions: the core of Gemm,
//! MatMul and (through per-row im2col) Conv.

/// Checks that the strided matrices fit in their slices.
fn fits(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &[f32],
    ldc: usize,
) -> bool {
    let need = |rows: usize, ld: usize, cols: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * ld + cols
        }
    };
    lda >= k
        && ldb >= n
        && ldc >= n
        && a.len() >= need(m, lda, k)
        && b.len() >= need(k, ldb, n)
        && c.len() >= need(m, ldc, n)
}

/// Reference: for every `c[i][j]`, adds `a[i][p] * b[p][j]` for `p` in order, with
/// separate multiply and add (no fused multiply-add), so faster versions that keep
/// the same order give bit-identical results.
#[allow(clippy::too_many_arguments)]
pub fn gemm_ref(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    for i in 0..m {
        let crow = &mut c[i * ldc..i * ldc + n];
        let arow = &a[i * lda..i * lda + k];
        for (p, &aip) in arow.iter().enumerate() {
            let brow = &b[p * ldb..p * ldb + n];
            for (cv, &bv) in crow.iter_mut().zip(brow) {
                *cv += aip * bv;
            }
        }
    }
}

/// `C += A · B` with the fastest kernel this build has.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    if !fits(m, n, k, a, lda, b, ldb, c, ldc) {
        // Unreachable for validated models; the reference then fails a bounds check
        // (a trap in wasm) instead of reading out of bounds.
        return gemm_ref(m, n, k, a, lda, b, ldb, c, ldc);
    }
    gemm_fast(m, n, k, a, lda, b, ldb, c, ldc)
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use super::gemm_simd128::gemm as gemm_fast;

#[cfg(all(target_arch = "arm", target_os = "none"))]
use super::gemm_blocked::gemm as gemm_fast;

#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    all(target_arch = "arm", target_os = "none")
)))]
use gemm_ref as gemm_fast;

/// Name of the kernel `gemm` dispatches to, for reports.
pub const KERNEL: &str = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
    "simd128"
} else if cfg!(all(target_arch = "arm", target_os = "none")) {
    "blocked"
} else {
    "scalar"
};
