//! wasm `simd128` GEMM: 4×8 register tiles, the same summation order as
//! [`super::gemm::gemm_ref`] (multiply then add, `p` ascending), so results are
//! bit-identical to the reference.

use core::arch::wasm32::*;

/// `C += A · B`; the caller has checked that the strided matrices fit their slices.
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
    let ap = a.as_ptr();
    let bp = b.as_ptr();
    let cp = c.as_mut_ptr();
    let mut i = 0;
    // SAFETY: `gemm::fits` guaranteed every index below is inside its slice:
    // rows < m, cols < n, p < k, with the leading dimensions checked.
    unsafe {
        while i + 4 <= m {
            let mut j = 0;
            while j + 8 <= n {
                tile_4x8(
                    k,
                    ap.add(i * lda),
                    lda,
                    bp.add(j),
                    ldb,
                    cp.add(i * ldc + j),
                    ldc,
                );
                j += 8;
            }
            while j + 4 <= n {
                tile_rx4::<4>(
                    k,
                    ap.add(i * lda),
                    lda,
                    bp.add(j),
                    ldb,
                    cp.add(i * ldc + j),
                    ldc,
                );
                j += 4;
            }
            for r in 0..4 {
                scalar_tail(
                    k,
                    ap.add((i + r) * lda),
                    bp,
                    ldb,
                    cp.add((i + r) * ldc),
                    j,
                    n,
                );
            }
            i += 4;
        }
        while i < m {
            let mut j = 0;
            while j + 16 <= n {
                row_x16(k, ap.add(i * lda), bp.add(j), ldb, cp.add(i * ldc + j));
                j += 16;
            }
            while j + 4 <= n {
                tile_rx4::<1>(
                    k,
                    ap.add(i * lda),
                    lda,
                    bp.add(j),
                    ldb,
                    cp.add(i * ldc + j),
                    ldc,
                );
                j += 4;
            }
            scalar_tail(k, ap.add(i * lda), bp, ldb, cp.add(i * ldc), j, n);
            i += 1;
        }
    }
}

#[inline(always)]
unsafe fn ld(p: *const f32) -> v128 {
    // SAFETY: caller guarantees 4 readable f32 at p; v128_load has no alignment need.
    unsafe { v128_load(p as *const v128) }
}

#[inline(always)]
unsafe fn st(p: *mut f32, v: v128) {
    // SAFETY: caller guarantees 4 writable f32 at p.
    unsafe { v128_store(p as *mut v128, v) }
}

#[inline(always)]
unsafe fn tile_4x8(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    unsafe {
        let mut acc = [[f32x4_splat(0.0); 2]; 4];
        for (r, row) in acc.iter_mut().enumerate() {
            row[0] = ld(c.add(r * ldc));
            row[1] = ld(c.add(r * ldc + 4));
        }
        for p in 0..k {
            let b0 = ld(b.add(p * ldb));
            let b1 = ld(b.add(p * ldb + 4));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = f32x4_splat(*a.add(r * lda + p));
                row[0] = f32x4_add(row[0], f32x4_mul(av, b0));
                row[1] = f32x4_add(row[1], f32x4_mul(av, b1));
            }
        }
        for (r, row) in acc.iter().enumerate() {
            st(c.add(r * ldc), row[0]);
            st(c.add(r * ldc + 4), row[1]);
        }
    }
}

#[inline(always)]
unsafe fn tile_rx4<const R: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    unsafe {
        let mut acc = [f32x4_splat(0.0); R];
        for (r, v) in acc.iter_mut().enumerate() {
            *v = ld(c.add(r * ldc));
        }
        for p in 0..k {
            let bv = ld(b.add(p * ldb));
            for (r, v) in acc.iter_mut().enumerate() {
                *v = f32x4_add(*v, f32x4_mul(f32x4_splat(*a.add(r * lda + p)), bv));
            }
        }
        for (r, v) in acc.iter().enumerate() {
            st(c.add(r * ldc), *v);
        }
    }
}

#[inline(always)]
unsafe fn row_x16(k: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32) {
    unsafe {
        let mut acc = [ld(c), ld(c.add(4)), ld(c.add(8)), ld(c.add(12))];
        for p in 0..k {
            let av = f32x4_splat(*a.add(p));
            let bp = b.add(p * ldb);
            for (q, v) in acc.iter_mut().enumerate() {
                *v = f32x4_add(*v, f32x4_mul(av, ld(bp.add(q * 4))));
            }
        }
        for (q, v) in acc.iter().enumerate() {
            st(c.add(q * 4), *v);
        }
    }
}

#[inline(always)]
unsafe fn scalar_tail(
    k: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    from: usize,
    n: usize,
) {
    unsafe {
        for j in from..n {
            let mut acc = *c.add(j);
            for p in 0..k {
                acc += *a.add(p) * *b.add(p * ldb + j);
            }
            *c.add(j) = acc;
        }
    }
}
