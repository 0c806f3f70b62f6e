//! Typed views of an operand's bytes: what the executor hands each kernel, so a
//! kernel gets `&[i8]`, `&[i32]`, `&[f32]` or `&[f64]` as its element type needs,
//! never bytes to decode. The loader checked every tensor's element type and its
//! 16-byte alignment, so building a view is a pointer check, not a decode.

use crate::cast::{self, Plain};
use crate::format::DType;

/// A read-only operand: a constant in the blob or a tensor in the arena.
#[derive(Debug, Clone, Copy)]
pub enum View<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// i8 elements.
    I8(&'a [i8]),
    /// i32 elements.
    I32(&'a [i32]),
    /// f64 elements (constants only).
    F64(&'a [f64]),
}

/// A writable operand (a node's output or scratch, in the arena).
#[derive(Debug)]
pub enum ViewMut<'a> {
    /// f32 elements.
    F32(&'a mut [f32]),
    /// i8 elements.
    I8(&'a mut [i8]),
    /// i32 elements.
    I32(&'a mut [i32]),
}

impl<'a> View<'a> {
    /// `bytes` viewed as elements of `dtype`; `None` when misaligned or of a length
    /// that is not a whole number of elements.
    pub fn of(dtype: DType, bytes: &'a [u8]) -> Option<View<'a>> {
        Some(match dtype {
            DType::F32 => View::F32(cast::view(bytes)?),
            DType::I8 => View::I8(cast::view(bytes)?),
            DType::I32 => View::I32(cast::view(bytes)?),
            DType::F64 => View::F64(cast::view(bytes)?),
        })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            View::F32(_) => DType::F32,
            View::I8(_) => DType::I8,
            View::I32(_) => DType::I32,
            View::F64(_) => DType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            View::F32(s) => s.len(),
            View::I8(s) => s.len(),
            View::I32(s) => s.len(),
            View::F64(s) => s.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as f32, if that is their type.
    pub fn f32(self) -> Option<&'a [f32]> {
        match self {
            View::F32(s) => Some(s),
            _ => None,
        }
    }

    /// The elements as i8, if that is their type.
    pub fn i8(self) -> Option<&'a [i8]> {
        match self {
            View::I8(s) => Some(s),
            _ => None,
        }
    }

    /// The elements as i32, if that is their type.
    pub fn i32(self) -> Option<&'a [i32]> {
        match self {
            View::I32(s) => Some(s),
            _ => None,
        }
    }

    /// The elements as f64, if that is their type.
    pub fn f64(self) -> Option<&'a [f64]> {
        match self {
            View::F64(s) => Some(s),
            _ => None,
        }
    }

    /// The raw bytes.
    pub fn bytes(self) -> &'a [u8] {
        match self {
            View::F32(s) => cast::bytes(s),
            View::I8(s) => cast::bytes(s),
            View::I32(s) => cast::bytes(s),
            View::F64(s) => cast::bytes(s),
        }
    }

    /// The elements as `T` of the same size (`u32` for f32 and i32, `u8` for i8):
    /// what the data-movement kernels copy, whatever the element type.
    pub(crate) fn words<T: Plain>(self) -> Option<&'a [T]> {
        if self.dtype().size() != size_of::<T>() {
            return None;
        }
        cast::view(self.bytes())
    }
}

impl<'a> ViewMut<'a> {
    /// `bytes` viewed as elements of `dtype` (`None` for f64, which is never
    /// written, or when misaligned).
    pub fn of(dtype: DType, bytes: &'a mut [u8]) -> Option<ViewMut<'a>> {
        Some(match dtype {
            DType::F32 => ViewMut::F32(cast::view_mut(bytes)?),
            DType::I8 => ViewMut::I8(cast::view_mut(bytes)?),
            DType::I32 => ViewMut::I32(cast::view_mut(bytes)?),
            DType::F64 => return None,
        })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            ViewMut::F32(_) => DType::F32,
            ViewMut::I8(_) => DType::I8,
            ViewMut::I32(_) => DType::I32,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ViewMut::F32(s) => s.len(),
            ViewMut::I8(s) => s.len(),
            ViewMut::I32(s) => s.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as f32, if that is their type; an empty view is any type's
    /// (a kernel that needs no scratch gets an empty one).
    pub fn f32(self) -> Option<&'a mut [f32]> {
        match self {
            ViewMut::F32(s) => Some(s),
            v if v.is_empty() => Some(&mut []),
            _ => None,
        }
    }

    /// The elements as i8, if that is their type (or the view is empty).
    pub fn i8(self) -> Option<&'a mut [i8]> {
        match self {
            ViewMut::I8(s) => Some(s),
            v if v.is_empty() => Some(&mut []),
            _ => None,
        }
    }

    /// The elements as i32, if that is their type (or the view is empty).
    pub fn i32(self) -> Option<&'a mut [i32]> {
        match self {
            ViewMut::I32(s) => Some(s),
            v if v.is_empty() => Some(&mut []),
            _ => None,
        }
    }

    /// The raw bytes.
    pub fn bytes(self) -> &'a mut [u8] {
        match self {
            ViewMut::F32(s) => cast::bytes_mut(s),
            ViewMut::I8(s) => cast::bytes_mut(s),
            ViewMut::I32(s) => cast::bytes_mut(s),
        }
    }

    /// The elements as `T` of the same size, for the data-movement kernels.
    pub(crate) fn words<T: Plain>(self) -> Option<&'a mut [T]> {
        if self.dtype().size() != size_of::<T>() {
            return None;
        }
        cast::view_mut(self.bytes())
    }
}
