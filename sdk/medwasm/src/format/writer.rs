//! Serializes a planned graph into a blob (host side only, behind `std`).

use super::{
    ALIGN, DType, Element, HEADER_LEN, NODE_RECORD_LEN, OpCode, QUANTIZED, Quant, Storage,
    TENSOR_RECORD_LEN, header, tensor,
};
use crate::crc32::crc32;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// A tensor to write.
#[derive(Debug, Clone)]
pub struct TensorSpec {
    /// Name (from the source model).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape, at most `MAX_RANK` dims.
    pub dims: Vec<u32>,
    /// Constant data (little-endian elements) or `None` for an arena tensor.
    pub data: Option<Vec<u8>>,
    /// Arena offset for arena tensors (from the memory plan).
    pub arena_offset: u32,
    /// Per-tensor quantization (int8 and int32 tensors only), or `None`.
    pub quant: Option<Quant>,
}

impl TensorSpec {
    /// An arena tensor of `dtype` at `offset`, unquantized.
    pub fn arena(name: &str, dtype: DType, dims: &[u32], offset: u32) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype,
            dims: dims.to_vec(),
            data: None,
            arena_offset: offset,
            quant: None,
        }
    }

    /// A constant holding `values` (row-major, `dims` elements), unquantized.
    pub fn constant<T: Element>(name: &str, dims: &[u32], values: &[T]) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype: T::DTYPE,
            dims: dims.to_vec(),
            data: Some(le_bytes(values)),
            arena_offset: 0,
            quant: None,
        }
    }

    /// `self` with per-tensor quantization `scale`, `zero_point`.
    pub fn quantized(mut self, scale: f32, zero_point: i32) -> TensorSpec {
        self.quant = Some(Quant { scale, zero_point });
        self
    }
}

/// The little-endian bytes of `values`, as a constant's `data`.
pub fn le_bytes<T: Element>(values: &[T]) -> Vec<u8> {
    let size = T::DTYPE.size();
    let mut out = vec![0u8; values.len() * size];
    for (v, chunk) in values.iter().zip(out.chunks_exact_mut(size)) {
        v.write_le(chunk);
    }
    out
}

/// A node to write.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Operator.
    pub op: OpCode,
    /// Input tensor indices (`NO_TENSOR` for an absent optional input).
    pub inputs: Vec<u32>,
    /// Output tensor indices.
    pub outputs: Vec<u32>,
    /// Scratch tensor index or `NO_TENSOR`.
    pub scratch: u32,
    /// Parameters as u32 words (layout per op in `crate::ops`).
    pub params: Vec<u32>,
}

/// Collects a graph and writes the blob.
#[derive(Debug, Default)]
pub struct BlobWriter {
    /// Tensors, indexed by position.
    pub tensors: Vec<TensorSpec>,
    /// Nodes in execution order.
    pub nodes: Vec<NodeSpec>,
    /// Graph input tensor indices.
    pub inputs: Vec<u32>,
    /// Graph output tensor indices.
    pub outputs: Vec<u32>,
    /// Peak arena bytes.
    pub arena_bytes: u32,
}

fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn align_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

impl BlobWriter {
    /// Bytes of constant data the blob will carry (with alignment padding).
    pub fn data_bytes(&self) -> usize {
        self.tensors
            .iter()
            .filter_map(|t| t.data.as_ref())
            .map(|d| align_up(d.len(), ALIGN))
            .sum()
    }

    /// Serializes. Panics only on a writer bug (counts that overflow u32 are refused
    /// by the converter before this point).
    pub fn finish(&self) -> Vec<u8> {
        let tensors_off = HEADER_LEN;
        let nodes_off = tensors_off + self.tensors.len() * TENSOR_RECORD_LEN;
        let io_off = nodes_off + self.nodes.len() * NODE_RECORD_LEN;
        let words_off = io_off + (self.inputs.len() + self.outputs.len()) * 4;

        let mut words: Vec<u32> = Vec::new();
        let mut node_words = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let operands = words.len();
            words.extend(&n.inputs);
            words.extend(&n.outputs);
            let params = words.len();
            words.extend(&n.params);
            node_words.push((operands, params));
        }
        let strings_off = words_off + words.len() * 4;
        let mut strings = Vec::new();
        let mut names = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            names.push((strings.len(), t.name.len()));
            strings.extend_from_slice(t.name.as_bytes());
        }
        let data_off = align_up(strings_off + strings.len(), ALIGN);
        let mut data = Vec::new();
        let mut data_offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            match &t.data {
                Some(d) => {
                    data_offsets.push(data.len());
                    data.extend_from_slice(d);
                    data.resize(align_up(data.len(), ALIGN), 0);
                }
                None => data_offsets.push(0),
            }
        }
        let total = data_off + data.len();
        let mut out = vec![0u8; total];
        out[..4].copy_from_slice(&super::MAGIC);
        put_u16(&mut out, header::VERSION_MAJOR, super::VERSION_MAJOR);
        put_u16(&mut out, header::VERSION_MINOR, super::VERSION_MINOR);
        put_u32(&mut out, header::TOTAL_LEN, total as u32);
        put_u32(&mut out, header::ARENA_BYTES, self.arena_bytes);
        put_u32(&mut out, header::TENSORS, self.tensors.len() as u32);
        put_u32(&mut out, header::TENSORS + 4, tensors_off as u32);
        put_u32(&mut out, header::NODES, self.nodes.len() as u32);
        put_u32(&mut out, header::NODES + 4, nodes_off as u32);
        put_u16(&mut out, header::IO, self.inputs.len() as u16);
        put_u16(&mut out, header::IO + 2, self.outputs.len() as u16);
        put_u32(&mut out, header::IO + 4, io_off as u32);
        put_u32(&mut out, header::WORDS, words_off as u32);
        put_u32(&mut out, header::WORDS + 4, words.len() as u32);
        put_u32(&mut out, header::STRINGS, strings_off as u32);
        put_u32(&mut out, header::STRINGS + 4, strings.len() as u32);
        put_u32(&mut out, header::DATA, data_off as u32);
        put_u32(&mut out, header::DATA + 4, data.len() as u32);

        for (i, t) in self.tensors.iter().enumerate() {
            let at = tensors_off + i * TENSOR_RECORD_LEN;
            let storage = if t.data.is_some() {
                Storage::Const
            } else {
                Storage::Arena
            };
            out[at + tensor::STORAGE] = storage as u8;
            out[at + tensor::DTYPE] = t.dtype as u8;
            out[at + tensor::RANK] = t.dims.len() as u8;
            for (d, &dim) in t.dims.iter().enumerate() {
                put_u32(&mut out, at + tensor::DIMS + d * 4, dim);
            }
            let offset = if t.data.is_some() {
                data_offsets[i] as u32
            } else {
                t.arena_offset
            };
            put_u32(&mut out, at + tensor::OFFSET, offset);
            put_u32(&mut out, at + tensor::NAME, names[i].0 as u32);
            put_u32(&mut out, at + tensor::NAME + 4, names[i].1 as u32);
            if let Some(q) = t.quant {
                out[at + tensor::FLAGS] = QUANTIZED;
                put_u32(&mut out, at + tensor::SCALE, q.scale.to_bits());
                put_u32(&mut out, at + tensor::ZERO_POINT, q.zero_point as u32);
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let at = nodes_off + i * NODE_RECORD_LEN;
            put_u16(&mut out, at, n.op as u16);
            out[at + 2] = n.inputs.len() as u8;
            out[at + 3] = n.outputs.len() as u8;
            put_u32(&mut out, at + 4, node_words[i].0 as u32);
            put_u32(&mut out, at + 8, node_words[i].1 as u32);
            put_u32(&mut out, at + 12, n.params.len() as u32);
            put_u32(&mut out, at + 16, n.scratch);
        }
        for (i, &t) in self.inputs.iter().chain(&self.outputs).enumerate() {
            put_u32(&mut out, io_off + i * 4, t);
        }
        for (i, &w) in words.iter().enumerate() {
            put_u32(&mut out, words_off + i * 4, w);
        }
        out[strings_off..strings_off + strings.len()].copy_from_slice(&strings);
        out[data_off..].copy_from_slice(&data);
        let crc = crc32(&out[header::CRC_START..]);
        put_u32(&mut out, header::CRC, crc);
        out
    }
}
