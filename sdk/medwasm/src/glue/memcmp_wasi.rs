//! `memcmp` for `no_std` detectors built for WASI. On `wasm32-wasip1` Rust leaves the
//! C memory functions to wasi-libc, which a `no_std` detector does not link; bulk
//! memory covers `memcpy`/`memset`, but `memcmp` (which `core` calls to compare byte
//! slices, when an unoptimized build does not inline the comparison) would stay an
//! undefined symbol and become an `env::memcmp` import, which no WASI runtime has
//! and the detector ABI forbids. A debug build hit it; release builds inline it.
//! (`wasm32-unknown-unknown` and the Cortex-M targets get it from compiler-builtins.)

/// C's `memcmp`: compares `n` bytes and returns their first difference's sign.
///
/// # Safety
///
/// `a` and `b` must be valid for reads of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, and the caller promises n readable bytes behind each.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// `bcmp`: `memcmp` where only equality matters (LLVM emits it for `==`).
///
/// # Safety
///
/// As [`memcmp`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's promise, passed on.
    unsafe { memcmp(a, b, n) }
}
