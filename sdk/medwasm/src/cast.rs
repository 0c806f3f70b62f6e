//! Reinterpreting aligned byte slices as `f32` slices: the only `unsafe` in the
//! kernels' path, kept in one place.

/// `bytes` as `&[f32]`, or `None` if misaligned or not a multiple of 4 long.
pub fn f32s(bytes: &[u8]) -> Option<&[f32]> {
    // SAFETY: every bit pattern is a valid f32, and `align_to` only puts correctly
    // aligned, in-bounds elements in the middle slice; we refuse any prefix/suffix.
    let (pre, mid, post) = unsafe { bytes.align_to::<f32>() };
    (pre.is_empty() && post.is_empty()).then_some(mid)
}

/// `bytes` as `&mut [f32]`, or `None` if misaligned or not a multiple of 4 long.
pub fn f32s_mut(bytes: &mut [u8]) -> Option<&mut [f32]> {
    // SAFETY: as above; any f32 written is a valid byte pattern too.
    let (pre, mid, post) = unsafe { bytes.align_to_mut::<f32>() };
    (pre.is_empty() && post.is_empty()).then_some(mid)
}
