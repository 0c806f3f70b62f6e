//! Register-blocked GEMM for cores without SIMD, used on Cortex-M: a block of
//! [`NR`] columns of `C` stays in FPU registers (the M4F/M7 have 32 single-precision
//! ones) over the whole `k` loop, so a multiply-accumulate costs one load of `B`, a
//! multiply and an add, instead of also loading and storing `C` every time.
//!
//! Every `c[i][j]` still adds `a[i][p] * b[p][j]` for `p` in order, with separate
//! multiply and add, so the results are bit-identical to
//! [`super::gemm::gemm_ref`]; the SDK's battery checks that on every target it runs on.
//! The code is plain Rust, compiled everywhere so that the battery can run it natively
//! too; only `target_os = "none"` Arm builds dispatch to it.

/// Columns of `C` kept in registers.
pub const NR: usize = 8;

/// `C += A · B`; the caller has checked that the strided matrices fit their slices
/// (a slice that does not fit panics on a bounds check, it is never read past).
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
    for i in 0..m {
        let arow = &a[i * lda..i * lda + k];
        let crow = &mut c[i * ldc..i * ldc + n];
        let blocks = n / NR;
        for blk in 0..blocks {
            let j0 = blk * NR;
            let Ok(cblk) = <&mut [f32; NR]>::try_from(&mut crow[j0..j0 + NR]) else {
                continue;
            };
            // Named locals, not an array indexed in a loop: at `opt-level = "s"` LLVM
            // does not unroll such a loop and the array would live on the stack.
            let [
                mut c0,
                mut c1,
                mut c2,
                mut c3,
                mut c4,
                mut c5,
                mut c6,
                mut c7,
            ] = *cblk;
            for (p, &aip) in arow.iter().enumerate() {
                let start = p * ldb + j0;
                let Ok(&[b0, b1, b2, b3, b4, b5, b6, b7]) =
                    <&[f32; NR]>::try_from(&b[start..start + NR])
                else {
                    continue;
                };
                c0 += aip * b0;
                c1 += aip * b1;
                c2 += aip * b2;
                c3 += aip * b3;
                c4 += aip * b4;
                c5 += aip * b5;
                c6 += aip * b6;
                c7 += aip * b7;
            }
            *cblk = [c0, c1, c2, c3, c4, c5, c6, c7];
        }
        // The last `n % NR` columns, in the reference's order.
        let j0 = blocks * NR;
        if j0 < n {
            let ctail = &mut crow[j0..];
            for (p, &aip) in arow.iter().enumerate() {
                let btail = &b[p * ldb + j0..p * ldb + n];
                for (cv, &bv) in ctail.iter_mut().zip(btail) {
                    *cv += aip * bv;
                }
            }
        }
    }
}
