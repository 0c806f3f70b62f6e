//! Reinterpreting aligned byte slices as slices of plain numbers (`f32`, `i8`,
//! `i32`, `f64` and the `u8`/`u32` the data-movement kernels copy): the only
//! `unsafe` in the kernels' path, kept in one place.

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for i8 {}
    impl Sealed for u32 {}
    impl Sealed for i32 {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A number type for which every bit pattern is a valid value and which has no
/// padding, so a byte slice of the right alignment and length can be viewed as a
/// slice of it and back. Sealed: implemented for `u8 i8 u32 i32 f32 f64` only.
pub trait Plain: sealed::Sealed + Copy {}

impl Plain for u8 {}
impl Plain for i8 {}
impl Plain for u32 {}
impl Plain for i32 {}
impl Plain for f32 {}
impl Plain for f64 {}

/// `bytes` as `&[T]`, or `None` if misaligned or not a multiple of `size_of::<T>()`.
pub fn view<T: Plain>(bytes: &[u8]) -> Option<&[T]> {
    // SAFETY: `T` is `Plain` (every bit pattern valid, no padding), and `align_to`
    // only puts correctly aligned, in-bounds elements in the middle slice; we
    // refuse any prefix/suffix.
    let (pre, mid, post) = unsafe { bytes.align_to::<T>() };
    (pre.is_empty() && post.is_empty()).then_some(mid)
}

/// `bytes` as `&mut [T]`, or `None` if misaligned or not a multiple of its size.
pub fn view_mut<T: Plain>(bytes: &mut [u8]) -> Option<&mut [T]> {
    // SAFETY: as above; any `T` written is a valid byte pattern too.
    let (pre, mid, post) = unsafe { bytes.align_to_mut::<T>() };
    (pre.is_empty() && post.is_empty()).then_some(mid)
}

/// The bytes of a slice of plain numbers.
pub fn bytes<T: Plain>(values: &[T]) -> &[u8] {
    // SAFETY: `T` has no padding, so every byte of the slice is initialized; `u8`
    // has alignment 1 and the length is the slice's size in bytes.
    unsafe { core::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) }
}

/// The bytes of a mutable slice of plain numbers.
pub fn bytes_mut<T: Plain>(values: &mut [T]) -> &mut [u8] {
    // SAFETY: as above; any byte pattern written back is a valid `T` (`Plain`).
    unsafe {
        core::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), size_of_val(values))
    }
}

/// `bytes` as `&[f32]`, or `None` if misaligned or not a multiple of 4 long.
pub fn f32s(bytes: &[u8]) -> Option<&[f32]> {
    view(bytes)
}

/// `bytes` as `&mut [f32]`, or `None` if misaligned or not a multiple of 4 long.
pub fn f32s_mut(bytes: &mut [u8]) -> Option<&mut [f32]> {
    view_mut(bytes)
}
