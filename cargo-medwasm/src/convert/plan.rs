//! The static memory plan: liveness per arena tensor, then greedy placement in one
//! arena (largest first, each at the lowest offset clear of every placed buffer
//! whose lifetime overlaps), as TFLite Micro's `GreedyMemoryPlanner` does. The
//! planner returns placements only; `write.rs` serializes them.
//!
//! **Invariant:** graph inputs stay live for the whole run and graph outputs from
//! the node that computes them to the end, so a host writes inputs once and reads
//! outputs (and inputs) after the run; no node writes over a graph input.

use medwasm::format::ALIGN;

use super::backend::Kernel;
use super::ir::{Graph, TensorId};

/// The largest arena the format can describe: offsets and the arena size are u32,
/// and the size is a multiple of [`ALIGN`].
pub const MAX_ARENA_BYTES: usize = u32::MAX as usize & !(ALIGN - 1);

/// A buffer to place: live from node `first` to node `last`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    /// First node that needs it (writes it).
    pub first: usize,
    /// Last node that needs it (reads it).
    pub last: usize,
    /// Size, a multiple of [`ALIGN`].
    pub bytes: usize,
}

impl Buffer {
    fn overlaps_in_time(&self, o: &Buffer) -> bool {
        o.first <= self.last && self.first <= o.last
    }
}

/// Places `bufs` in one arena; returns each buffer's offset (in input order) and the
/// arena size. Buffers whose lifetimes overlap never share bytes; ties in size keep
/// input order, so the plan is deterministic.
pub fn place(bufs: &[Buffer]) -> (Vec<usize>, usize) {
    let mut offsets = vec![0usize; bufs.len()];
    let mut order: Vec<usize> = (0..bufs.len()).collect();
    order.sort_by(|&a, &b| bufs[b].bytes.cmp(&bufs[a].bytes).then(a.cmp(&b)));
    let mut placed: Vec<usize> = vec![];
    let mut arena = 0usize;
    for &s in &order {
        let me = bufs[s];
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&p| bufs[p].overlaps_in_time(&me))
            .map(|&p| (offsets[p], offsets[p] + bufs[p].bytes))
            .collect();
        busy.sort_unstable();
        let mut offset = 0;
        for (start, end) in busy {
            if offset + me.bytes <= start {
                break;
            }
            offset = offset.max(end);
        }
        offsets[s] = offset;
        arena = arena.max(offset + me.bytes);
        placed.push(s);
    }
    (offsets, arena)
}

/// Where every arena tensor and scratch buffer of a graph lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Arena offset of each tensor, by [`TensorId`]; `None` for constants and
    /// tensors no node uses.
    pub offsets: Vec<Option<usize>>,
    /// Scratch buffer of each node, by node index: `(offset, bytes)`.
    pub scratch: Vec<Option<(usize, usize)>>,
    /// Peak arena bytes.
    pub arena_bytes: usize,
}

/// `v` rounded up to the arena alignment.
pub fn align(v: usize) -> usize {
    v.div_ceil(ALIGN) * ALIGN
}

/// Plans the arena of `g`, whose nodes run `kernels` (one per node, with the
/// scratch each asks for). The error says which limit of the format the plan
/// exceeds.
pub fn plan(g: &Graph, kernels: &[Kernel]) -> Result<Plan, String> {
    let nt = g.tensors.len();
    let n_nodes = g.nodes.len();

    // Liveness, as node indices, of every tensor a node computes or reads at run
    // time; graph inputs are pinned from the start, outputs to the end.
    let mut live: Vec<Option<(usize, usize)>> = vec![None; nt];
    for &t in &g.inputs {
        live[t] = Some((0, n_nodes));
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let e = live[n.output].get_or_insert((i, i));
        e.0 = e.0.min(i);
        for t in n.inputs.iter().flatten() {
            if g.tensors[*t].is_const() {
                continue;
            }
            let e = live[*t].get_or_insert((i, i));
            e.1 = e.1.max(i);
        }
    }
    for &t in &g.outputs {
        if let Some(e) = live[t].as_mut() {
            e.1 = n_nodes;
        }
    }
    let too_large = |what: &str| {
        format!(
            "{what} would need more bytes than fit in 64 bits; the model format addresses at most 4 GiB (u32 offsets)"
        )
    };
    let mut bufs = vec![];
    let mut owners: Vec<TensorId> = vec![];
    for (t, l) in live.iter().enumerate() {
        if let Some((first, last)) = *l {
            let tensor = &g.tensors[t];
            let bytes = tensor
                .len()
                .checked_mul(tensor.dtype.size())
                .ok_or_else(|| too_large(&format!("tensor `{}`", tensor.name)))?;
            bufs.push(Buffer {
                first,
                last,
                bytes: align(bytes),
            });
            owners.push(t);
        }
    }
    // A scratch buffer per kernel that asks for one, live only during its node.
    let mut scratch_buf = vec![None::<usize>; n_nodes];
    for (i, (n, k)) in g.nodes.iter().zip(kernels).enumerate() {
        if let Some(s) = k.scratch.filter(|s| s.elems > 0) {
            let bytes = s
                .bytes()
                .ok_or_else(|| too_large(&format!("the scratch of `{}`", n.name)))?;
            scratch_buf[i] = Some(bufs.len());
            bufs.push(Buffer {
                first: i,
                last: i,
                bytes: align(bytes),
            });
        }
    }
    let (offsets, arena_bytes) = place(&bufs);
    if arena_bytes > MAX_ARENA_BYTES {
        return Err(format!(
            "the arena would need {arena_bytes} bytes but the model format addresses at most 4 GiB (u32 offsets); use a smaller input shape"
        ));
    }
    let mut tensor_offsets = vec![None; nt];
    for (k, &t) in owners.iter().enumerate() {
        tensor_offsets[t] = Some(offsets[k]);
    }
    Ok(Plan {
        offsets: tensor_offsets,
        scratch: scratch_buf
            .iter()
            .map(|b| b.map(|k| (offsets[k], bufs[k].bytes)))
            .collect(),
        arena_bytes,
    })
}

#[cfg(test)]
mod tests {
    use medwasm::format::ALIGN;
    use medwasm::kernels::act::Act;

    use super::{Buffer, MAX_ARENA_BYTES, place};
    use crate::convert::ir::{Graph, Layout, Op, Window};
    use crate::convert::testing::{constant, input, plan_of as plan};

    fn buf(first: usize, last: usize, bytes: usize) -> Buffer {
        Buffer { first, last, bytes }
    }

    /// No two buffers live at the same time share a byte, and all fit the arena.
    fn assert_valid(bufs: &[Buffer], offsets: &[usize], arena: usize) {
        for (i, a) in bufs.iter().enumerate() {
            assert!(offsets[i] + a.bytes <= arena, "buffer {i} past the arena");
            for (j, b) in bufs.iter().enumerate().skip(i + 1) {
                let in_time = a.first <= b.last && b.first <= a.last;
                let in_space =
                    offsets[i] < offsets[j] + b.bytes && offsets[j] < offsets[i] + a.bytes;
                assert!(
                    !(in_time && in_space),
                    "buffers {i} and {j} overlap: {bufs:?} at {offsets:?}"
                );
            }
        }
    }

    #[test]
    fn buffers_live_at_the_same_time_never_overlap() {
        // Seeded pseudo-random lifetimes and sizes (a 64-bit LCG, Knuth's constants).
        let mut state = 0x5EED_u64;
        let mut next = |m: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % m
        };
        for _ in 0..200 {
            let bufs: Vec<Buffer> = (0..1 + next(12))
                .map(|_| {
                    let first = next(10);
                    buf(first, first + next(5), ALIGN * (1 + next(8)))
                })
                .collect();
            let (offsets, arena) = place(&bufs);
            assert_valid(&bufs, &offsets, arena);
            assert!(arena <= bufs.iter().map(|b| b.bytes).sum::<usize>());
        }
    }

    #[test]
    fn buffers_whose_lifetimes_do_not_meet_share_space() {
        let bufs = [buf(0, 1, 64), buf(2, 3, 64), buf(1, 2, 32)];
        let (offsets, arena) = place(&bufs);
        // The two 64-byte buffers are never live together: same bytes; the 32-byte
        // one meets both, so it goes after them.
        assert_eq!(offsets, [0, 0, 64]);
        assert_eq!(arena, 96);
        // A buffer read by node i and one written by node i do overlap in time: a
        // node never computes in place.
        let (offsets, _) = place(&[buf(0, 1, 16), buf(1, 2, 16)]);
        assert_ne!(offsets[0], offsets[1]);
    }

    #[test]
    fn largest_first_and_ties_in_input_order() {
        let bufs = [buf(0, 0, 16), buf(0, 0, 48), buf(0, 0, 16)];
        assert_eq!(place(&bufs).0, [48, 0, 64]);
    }

    /// x [1, 3] → relu → a → tanh → b → sigmoid → y.
    fn chain() -> Graph {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 3]);
        let a = g.add_node("relu", Op::Act(Act::Relu), vec![Some(x)], vec![1, 3]);
        let b = g.add_node("tanh", Op::Act(Act::Tanh), vec![Some(a)], vec![1, 3]);
        let y = g.add_node("sigmoid", Op::Act(Act::Sigmoid), vec![Some(b)], vec![1, 3]);
        g.outputs.push(y);
        g
    }

    #[test]
    fn sizes_are_aligned_and_graph_inputs_stay_pinned() {
        let g = chain();
        let p = plan(&g).unwrap();
        let off = |t: usize| p.offsets[t].unwrap();
        let (x, a, b, y) = (0, 1, 2, 3);
        for t in [x, a, b, y] {
            assert_eq!(off(t) % ALIGN, 0);
        }
        // 12 bytes each, rounded to 16. `a` is dead once `tanh` ran, so the output
        // takes its place; the input is never reused.
        assert_eq!(off(y), off(a));
        for t in [a, b, y] {
            assert_ne!(off(t), off(x), "tensor {t} over the graph input");
        }
        assert_eq!(p.arena_bytes, 3 * 16);
        assert_eq!(p.scratch, [None, None, None]);
    }

    #[test]
    fn an_output_computed_early_is_kept_to_the_end() {
        // y1 = relu(x) is an output computed first; the later tensors must not
        // overwrite it although no node reads it again.
        let mut g = chain();
        let y1 = g.nodes[0].output;
        g.outputs.push(y1);
        let p = plan(&g).unwrap();
        let y1_off = p.offsets[y1].unwrap();
        for t in [2, 3] {
            assert_ne!(p.offsets[t].unwrap(), y1_off, "tensor {t} over output y1");
        }
    }

    #[test]
    fn a_conv_scratch_lives_beside_its_operands_only() {
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[1, 2, 4, 4]);
        let w = constant(&mut g, "w", &[2, 2, 3, 3], vec![0.1; 36]);
        let win = Window {
            kernel: [3, 3],
            strides: [1, 1],
            dilations: [1, 1],
            pads: [1, 1, 1, 1],
        };
        let conv = Op::Conv {
            win,
            group: 1,
            act: Act::None,
            layout: Layout::Nchw,
            depthwise: false,
        };
        let y = g.add_node("conv", conv, vec![Some(x), Some(w), None], vec![1, 2, 4, 4]);
        g.outputs.push(y);
        let p = plan(&g).unwrap();
        let (s_off, s_bytes) = p.scratch[0].expect("an im2col conv needs scratch");
        assert_eq!(s_bytes % ALIGN, 0);
        for t in [x, y] {
            let (o, b) = (p.offsets[t].unwrap(), g.tensors[t].len() * 4);
            assert!(
                s_off >= o + b || o >= s_off + s_bytes,
                "scratch over tensor {t}"
            );
        }
    }

    #[test]
    fn an_arena_beyond_the_format_is_refused_naming_the_limit() {
        // Two 3 GiB tensors live together: each fits u32 offsets, both do not.
        let mut g = Graph::default();
        let x = input(&mut g, "x", &[3 << 28]);
        let y = g.add_node("relu", Op::Act(Act::Relu), vec![Some(x)], vec![3 << 28]);
        g.outputs.push(y);
        let err = plan(&g).unwrap_err();
        assert!(
            err.contains("the arena would need 6442450944 bytes")
                && err.contains("at most 4 GiB (u32 offsets)"),
            "{err}"
        );
        assert!(MAX_ARENA_BYTES < 1 << 32 && MAX_ARENA_BYTES.is_multiple_of(ALIGN));
    }
}
