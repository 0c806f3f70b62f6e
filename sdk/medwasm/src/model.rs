//! A model blob's tables, read in place: the header, tensor and node records, the
//! io table and the word pool.
//!
//! Every read is checked (a record, an index or a range that points outside its
//! table or section is an [`Error`]), and nothing is copied: records are decoded
//! on demand and constant tensors are borrowed from the blob. This module knows
//! no operator: the per-operator checks live in [`crate::ops`], and the loader that
//! runs both, [`Model::load`], in `loader.rs` above them.

use crate::error::{Error, malformed};
use crate::format::Element;
use crate::format::{
    self, ALIGN, DType, HEADER_LEN, MAX_GRAPH_IO, MAX_NODE_INPUTS, MAX_RANK, NO_TENSOR,
    NODE_RECORD_LEN, OpCode, QUANTIZED, Quant, Storage, TENSOR_RECORD_LEN, header, read_u16,
    read_u32, tensor,
};
use crate::shape::Dims;
use crate::view::View;

/// A loaded, validated model borrowed from its blob ([`Model::load`]).
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    blob: &'a [u8],
    arena_bytes: usize,
    tensor_count: usize,
    tensors_off: usize,
    node_count: usize,
    nodes_off: usize,
    input_count: usize,
    output_count: usize,
    io_off: usize,
    words_off: usize,
    words_len: usize,
    strings_off: usize,
    strings_len: usize,
    data_off: usize,
    data_len: usize,
    operand_count: usize,
}

/// One tensor's record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorRecord {
    /// Where it lives.
    pub storage: Storage,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub dims: Dims,
    /// Per-tensor quantization, when the record carries it (int8 and int32 only).
    pub quant: Option<Quant>,
    /// Byte offset in the data section (const) or the arena.
    pub offset: usize,
    /// Byte length.
    pub byte_len: usize,
    name_off: usize,
    name_len: usize,
}

/// One node's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRecord {
    /// Operator.
    pub op: OpCode,
    /// Number of inputs.
    pub n_inputs: usize,
    /// Number of outputs.
    pub n_outputs: usize,
    operands: usize,
    params: usize,
    params_len: usize,
    /// Scratch tensor index, if any.
    pub scratch: Option<usize>,
}

/// Name, shape and type of a graph input or output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorInfo<'a> {
    /// Name in the source model.
    pub name: &'a str,
    /// Shape.
    pub dims: Dims,
    /// Element type.
    pub dtype: DType,
    /// Quantization of an int8 input or output.
    pub quant: Option<Quant>,
    /// Tensor index inside the model.
    pub tensor: usize,
}

impl TensorInfo<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.elements()
    }

    /// True when the tensor has no elements (never for a validated model).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn get_u32(blob: &[u8], at: usize) -> Result<usize, Error> {
    read_u32(blob, at)
        .map(|v| v as usize)
        .ok_or(Error::Truncated {
            needed: at + 4,
            actual: blob.len(),
        })
}

/// Checks `[off, off + len)` lies inside `limit` and returns its end.
fn range_end(off: usize, len: usize, limit: usize, what: &'static str) -> Result<usize, Error> {
    match off.checked_add(len) {
        Some(end) if end <= limit => Ok(end),
        _ => Err(malformed(what, 0)),
    }
}

impl<'a> Model<'a> {
    /// Reads `blob`'s header and checks every table, tensor record, node record and
    /// io entry; the per-node operator checks are the loader's ([`Model::load`]).
    pub(crate) fn read_tables(blob: &'a [u8]) -> Result<Model<'a>, Error> {
        if blob.len() < HEADER_LEN {
            return Err(Error::Truncated {
                needed: HEADER_LEN,
                actual: blob.len(),
            });
        }
        if blob[..4] != format::MAGIC {
            return Err(Error::BadMagic);
        }
        let major = read_u16(blob, header::VERSION_MAJOR).unwrap_or(0);
        let minor = read_u16(blob, header::VERSION_MINOR).unwrap_or(0);
        if major != format::VERSION_MAJOR {
            return Err(Error::UnsupportedVersion { major, minor });
        }
        let total = get_u32(blob, header::TOTAL_LEN)?;
        if total > blob.len() {
            return Err(Error::Truncated {
                needed: total,
                actual: blob.len(),
            });
        }
        if total < HEADER_LEN {
            return Err(malformed("total length shorter than the header", 0));
        }
        // Trailing bytes past `total` are tolerated (padding by a linker or loader).
        let blob = &blob[..total];
        let stored = get_u32(blob, header::CRC)? as u32;
        let computed = crate::crc32::crc32(&blob[header::CRC_START..]);
        if stored != computed {
            return Err(Error::Checksum { stored, computed });
        }
        if !(blob.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(Error::Misaligned { what: "model blob" });
        }
        if get_u32(blob, header::FLAGS)? != 0
            || get_u32(blob, header::RESERVED)? != 0
            || get_u32(blob, header::RESERVED + 4)? != 0
        {
            return Err(malformed("header flags or reserved fields set", 0));
        }
        let io_counts = get_u32(blob, header::IO)?;
        let mut model = Model {
            blob,
            arena_bytes: get_u32(blob, header::ARENA_BYTES)?,
            tensor_count: get_u32(blob, header::TENSORS)?,
            tensors_off: get_u32(blob, header::TENSORS + 4)?,
            node_count: get_u32(blob, header::NODES)?,
            nodes_off: get_u32(blob, header::NODES + 4)?,
            input_count: io_counts & 0xFFFF,
            output_count: io_counts >> 16,
            io_off: get_u32(blob, header::IO + 4)?,
            words_off: get_u32(blob, header::WORDS)?,
            words_len: get_u32(blob, header::WORDS + 4)?,
            strings_off: get_u32(blob, header::STRINGS)?,
            strings_len: get_u32(blob, header::STRINGS + 4)?,
            data_off: get_u32(blob, header::DATA)?,
            data_len: get_u32(blob, header::DATA + 4)?,
            operand_count: 0,
        };
        model.check_tables()?;
        Ok(model)
    }

    fn check_tables(&mut self) -> Result<(), Error> {
        let total = self.blob.len();
        let tables = [
            (
                self.tensors_off,
                self.tensor_count.checked_mul(TENSOR_RECORD_LEN),
                "tensor table out of bounds",
            ),
            (
                self.nodes_off,
                self.node_count.checked_mul(NODE_RECORD_LEN),
                "node table out of bounds",
            ),
            (
                self.io_off,
                (self.input_count + self.output_count).checked_mul(4),
                "io table out of bounds",
            ),
            (
                self.words_off,
                self.words_len.checked_mul(4),
                "word pool out of bounds",
            ),
            (
                self.strings_off,
                Some(self.strings_len),
                "string pool out of bounds",
            ),
            (
                self.data_off,
                Some(self.data_len),
                "data section out of bounds",
            ),
        ];
        for (off, len, what) in tables {
            let len = len.ok_or(malformed(what, 0))?;
            if off < HEADER_LEN || !off.is_multiple_of(4) {
                return Err(malformed(what, 0));
            }
            range_end(off, len, total, what)?;
        }
        if !self.data_off.is_multiple_of(ALIGN) {
            return Err(malformed("data section not 16-byte aligned", 0));
        }
        if self.input_count == 0 || self.output_count == 0 {
            return Err(malformed("graph has no inputs or no outputs", 0));
        }
        if self.input_count > MAX_GRAPH_IO || self.output_count > MAX_GRAPH_IO {
            return Err(malformed("too many graph inputs or outputs", 0));
        }
        if !self.arena_bytes.is_multiple_of(ALIGN) {
            return Err(malformed("arena size not a multiple of 16", 0));
        }
        for i in 0..self.tensor_count {
            self.tensor(i)?;
        }
        for i in 0..self.input_count + self.output_count {
            let t = self.io_tensor(i)?;
            let rec = self.tensor(t)?;
            if rec.storage != Storage::Arena {
                return Err(malformed("graph input or output is not an arena tensor", i));
            }
        }
        // Node records are read here too, so that the loader's per-node checks start
        // from in-range records and the prepared plan can be sized before it is built.
        let mut operands = 0usize;
        for i in 0..self.node_count {
            operands = operands
                .checked_add(self.node(i)?.n_inputs)
                .ok_or(malformed("node table out of bounds", i))?;
        }
        self.operand_count = operands;
        Ok(())
    }

    /// Peak arena bytes the memory plan needs.
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// The whole blob.
    pub fn blob(&self) -> &'a [u8] {
        self.blob
    }

    /// Bytes of constant data.
    pub fn data_bytes(&self) -> usize {
        self.data_len
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.tensor_count
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Input slots over all nodes, absent optional inputs included.
    pub(crate) fn operand_count(&self) -> usize {
        self.operand_count
    }

    /// Number of graph inputs.
    pub fn input_count(&self) -> usize {
        self.input_count
    }

    /// Number of graph outputs.
    pub fn output_count(&self) -> usize {
        self.output_count
    }

    /// Graph input `i`.
    pub fn input(&self, i: usize) -> Result<TensorInfo<'a>, Error> {
        if i >= self.input_count {
            return Err(Error::BadIndex {
                index: i as u32,
                count: self.input_count as u32,
            });
        }
        self.info(self.io_tensor(i)?)
    }

    /// Graph output `i`.
    pub fn output(&self, i: usize) -> Result<TensorInfo<'a>, Error> {
        if i >= self.output_count {
            return Err(Error::BadIndex {
                index: i as u32,
                count: self.output_count as u32,
            });
        }
        self.info(self.io_tensor(self.input_count + i)?)
    }

    fn info(&self, tensor: usize) -> Result<TensorInfo<'a>, Error> {
        let rec = self.tensor(tensor)?;
        Ok(TensorInfo {
            name: self.name(&rec),
            dims: rec.dims,
            dtype: rec.dtype,
            quant: rec.quant,
            tensor,
        })
    }

    /// Tensor index of io table entry `i`: the graph inputs, then the outputs.
    pub(crate) fn io_tensor(&self, i: usize) -> Result<usize, Error> {
        let t = get_u32(self.blob, self.io_off + i * 4)?;
        if t >= self.tensor_count {
            return Err(malformed("io table names a missing tensor", i));
        }
        Ok(t)
    }

    /// Name of a tensor (empty if the name is not valid UTF-8; names are informative).
    pub fn name(&self, rec: &TensorRecord) -> &'a str {
        let start = self.strings_off + rec.name_off;
        self.blob
            .get(start..start + rec.name_len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// Reads and checks tensor record `i`.
    pub fn tensor(&self, i: usize) -> Result<TensorRecord, Error> {
        if i >= self.tensor_count {
            return Err(malformed("tensor index out of range", i));
        }
        let at = self.tensors_off + i * TENSOR_RECORD_LEN;
        let b = self.blob;
        let storage = match b[at + tensor::STORAGE] {
            0 => Storage::Const,
            1 => Storage::Arena,
            _ => return Err(malformed("unknown tensor storage", i)),
        };
        let dtype =
            DType::from_u8(b[at + tensor::DTYPE]).ok_or(malformed("unknown tensor dtype", i))?;
        if dtype == DType::F64 && storage != Storage::Const {
            return Err(malformed("f64 tensor not constant", i));
        }
        let rank = b[at + tensor::RANK] as usize;
        if rank > MAX_RANK {
            return Err(malformed("tensor rank above 6", i));
        }
        let flags = b[at + tensor::FLAGS];
        if flags & !QUANTIZED != 0 {
            return Err(malformed("unknown tensor flags", i));
        }
        let scale = f32::from_bits(get_u32(b, at + tensor::SCALE)? as u32);
        let zero_point = get_u32(b, at + tensor::ZERO_POINT)? as u32 as i32;
        let quant = if flags & QUANTIZED != 0 {
            let (lo, hi) = dtype
                .zero_point_range()
                .ok_or(malformed("quantized tensor of a float type", i))?;
            // A zero, negative, infinite or NaN scale has no real value to stand for.
            if !(scale.is_finite() && scale > 0.0) {
                return Err(malformed("quantization scale not finite and positive", i));
            }
            if zero_point < lo || zero_point > hi {
                return Err(malformed("zero point outside the element type", i));
            }
            Some(Quant { scale, zero_point })
        } else {
            if scale.to_bits() != 0 || zero_point != 0 {
                return Err(malformed(
                    "unquantized tensor with a scale or zero point",
                    i,
                ));
            }
            None
        };
        let mut dims = Dims::scalar();
        for d in 0..MAX_RANK {
            let v = get_u32(b, at + tensor::DIMS + d * 4)?;
            if d < rank {
                if v == 0 {
                    return Err(malformed("tensor has a zero dimension", i));
                }
                dims = dims.push(v);
            } else if v != 0 {
                return Err(malformed("unused tensor dimension not zero", i));
            }
        }
        let elements = dims
            .checked_elements()
            .ok_or(malformed("tensor too large", i))?;
        let byte_len = elements
            .checked_mul(dtype.size())
            .ok_or(malformed("tensor too large", i))?;
        let offset = get_u32(b, at + tensor::OFFSET)?;
        let name_off = get_u32(b, at + tensor::NAME)?;
        let name_len = get_u32(b, at + tensor::NAME + 4)?;
        // 16-aligned: every element type's alignment divides 16, so any typed view
        // of a tensor is aligned once the blob and the arena are.
        if !offset.is_multiple_of(ALIGN) {
            return Err(malformed("tensor offset not 16-byte aligned", i));
        }
        let limit = match storage {
            Storage::Const => self.data_len,
            Storage::Arena => self.arena_bytes,
        };
        range_end(offset, byte_len, limit, "tensor outside its section")
            .map_err(|_| malformed("tensor outside its section", i))?;
        range_end(
            name_off,
            name_len,
            self.strings_len,
            "tensor name out of bounds",
        )
        .map_err(|_| malformed("tensor name out of bounds", i))?;
        Ok(TensorRecord {
            storage,
            dtype,
            dims,
            quant,
            offset,
            byte_len,
            name_off,
            name_len,
        })
    }

    /// Reads and checks node record `i` (operand indices are checked by [`Self::node_input`]).
    pub fn node(&self, i: usize) -> Result<NodeRecord, Error> {
        if i >= self.node_count {
            return Err(malformed("node index out of range", i));
        }
        let at = self.nodes_off + i * NODE_RECORD_LEN;
        let b = self.blob;
        let op = read_u16(b, at)
            .and_then(OpCode::from_u16)
            .ok_or(malformed("unknown operator", i))?;
        let n_inputs = b[at + 2] as usize;
        let n_outputs = b[at + 3] as usize;
        let operands = get_u32(b, at + 4)?;
        let params = get_u32(b, at + 8)?;
        let params_len = get_u32(b, at + 12)?;
        let scratch = get_u32(b, at + 16)?;
        if n_inputs == 0 || n_inputs > MAX_NODE_INPUTS || n_outputs != 1 {
            return Err(malformed("node operand count", i));
        }
        range_end(
            operands,
            n_inputs + n_outputs,
            self.words_len,
            "node operands out of bounds",
        )
        .map_err(|_| malformed("node operands out of bounds", i))?;
        range_end(
            params,
            params_len,
            self.words_len,
            "node params out of bounds",
        )
        .map_err(|_| malformed("node params out of bounds", i))?;
        let scratch = if scratch as u32 == NO_TENSOR {
            None
        } else if scratch < self.tensor_count {
            Some(scratch)
        } else {
            return Err(malformed("node scratch tensor out of range", i));
        };
        Ok(NodeRecord {
            op,
            n_inputs,
            n_outputs,
            operands,
            params,
            params_len,
            scratch,
        })
    }

    fn word(&self, index: usize) -> Result<u32, Error> {
        if index >= self.words_len {
            return Err(malformed("word index out of range", index));
        }
        Ok(get_u32(self.blob, self.words_off + index * 4)? as u32)
    }

    /// Tensor index of input `k` of `node`; `None` for an absent optional input.
    pub fn node_input(&self, node: &NodeRecord, k: usize) -> Result<Option<usize>, Error> {
        if k >= node.n_inputs {
            return Ok(None);
        }
        let t = self.word(node.operands + k)?;
        if t == NO_TENSOR {
            return Ok(None);
        }
        if t as usize >= self.tensor_count {
            return Err(malformed(
                "node input names a missing tensor",
                node.operands + k,
            ));
        }
        Ok(Some(t as usize))
    }

    /// Tensor index of output `k` of `node`.
    pub fn node_output(&self, node: &NodeRecord, k: usize) -> Result<usize, Error> {
        if k >= node.n_outputs {
            return Err(malformed("node output index out of range", k));
        }
        let t = self.word(node.operands + node.n_inputs + k)? as usize;
        if t >= self.tensor_count {
            return Err(malformed("node output names a missing tensor", t));
        }
        Ok(t)
    }

    /// Parameter word `k` of `node` (0 past the end, so that a short list is caught by
    /// the per-op length check rather than read past).
    pub fn param(&self, node: &NodeRecord, k: usize) -> u32 {
        if k >= node.params_len {
            return 0;
        }
        self.word(node.params + k).unwrap_or(0)
    }

    /// Number of parameter words of `node`.
    pub fn params_len(&self, node: &NodeRecord) -> usize {
        node.params_len
    }

    /// A constant tensor's bytes, borrowed from the blob.
    pub fn const_bytes(&self, rec: &TensorRecord) -> Result<&'a [u8], Error> {
        if rec.storage != Storage::Const {
            return Err(malformed("expected a constant tensor", 0));
        }
        let start = self.data_off + rec.offset;
        self.blob
            .get(start..start + rec.byte_len)
            .ok_or(malformed("constant out of bounds", 0))
    }

    /// A constant tensor's elements as `T`, borrowed from the blob; an error when
    /// the record's element type is not `T`.
    pub fn const_elems<T: Element>(&self, rec: &TensorRecord) -> Result<&'a [T], Error> {
        if rec.dtype != T::DTYPE {
            return Err(malformed("constant of another element type", 0));
        }
        crate::cast::view(self.const_bytes(rec)?).ok_or(Error::Misaligned { what: "model blob" })
    }

    /// A constant f32 tensor's elements, borrowed from the blob.
    pub fn const_f32(&self, rec: &TensorRecord) -> Result<&'a [f32], Error> {
        self.const_elems(rec)
    }

    /// A constant tensor as a typed view, borrowed from the blob.
    pub fn const_view(&self, rec: &TensorRecord) -> Result<View<'a>, Error> {
        View::of(rec.dtype, self.const_bytes(rec)?).ok_or(Error::Misaligned { what: "model blob" })
    }

    /// Where a constant tensor's bytes start in the blob.
    pub(crate) fn const_start(&self, rec: &TensorRecord) -> usize {
        self.data_off + rec.offset
    }
}

/// True when two arena tensors share a byte.
pub(crate) fn overlaps(a: &TensorRecord, b: &TensorRecord) -> bool {
    a.storage == Storage::Arena
        && b.storage == Storage::Arena
        && a.offset < b.offset + b.byte_len
        && b.offset < a.offset + a.byte_len
}
