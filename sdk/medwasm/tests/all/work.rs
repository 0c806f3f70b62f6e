//! The loader's bound on each node's work: no blob may stall a device. A window
//! that does not fit its padded input is refused, and so is a node whose kernel
//! would run more than `MAX_WORK_PER_ELEMENT` inner-loop iterations per element of
//! its tensors. Each refusal has its blob built here, beside a near twin that must
//! still load and run.

use super::{Graph, act};
use medwasm::format::{DType, MAX_WORK_PER_ELEMENT, NO_TENSOR, OpCode};
use medwasm::kernels::act::Act;
use medwasm::ops::TOO_MUCH_WORK;
use medwasm::{AlignedBuf, Error, Model, PlanBuf, Runtime};

/// Loads `blob`, and when it loads, prepares and runs it once on inputs of 0.5.
fn load_and_run(blob: &[u8]) -> Result<(), Error> {
    let buf = AlignedBuf::from_bytes(blob);
    let model = Model::load(buf.as_slice())?;
    let mut arena = AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = PlanBuf::for_model(&model);
    let mut rt = Runtime::new(model, arena.as_mut_slice(), plan.storage())?;
    if let Ok(x) = rt.input_mut(0) {
        x.fill(0.5);
    }
    rt.run()
}

fn malformed(what: &'static str, index: u32) -> Error {
    Error::Malformed { what, index }
}

/// An f32 AveragePool from a `[1,1,1,1]` input to a `[1,1,1,1]` output with a
/// `k × k` window, stride `k`, and `k − 1` padding before each axis and `pad_after`
/// after: the window fits the padded input, touches the input, and sums `k²` taps.
fn lone_pixel_pool(k: u32, pad_after: u32) -> Vec<u8> {
    let mut g = Graph::default();
    let x = g.arena("x", &[1, 1, 1, 1]);
    let y = g.arena("y", &[1, 1, 1, 1]);
    let (p0, p1) = (k - 1, pad_after);
    g.node(
        OpCode::AveragePool,
        &[x],
        y,
        NO_TENSOR,
        &[k, k, k, k, 1, 1, p0, p0, p1, p1, 1],
    );
    g.finish(&[x], &[y])
}

/// The hang the first loader fuzzing campaign found (issue 11), rebuilt: a blob of a
/// few hundred bytes whose AveragePool sums 2^30 padding taps around a single input
/// element. It passed `Model::load` and then ran for seconds.
#[test]
fn a_pool_window_far_larger_than_its_input_is_refused() {
    let blob = lone_pixel_pool(1 << 15, 1 << 15);
    assert!(blob.len() < 300, "a blob of {} bytes", blob.len());
    let buf = AlignedBuf::from_bytes(&blob);
    assert_eq!(
        Model::load(buf.as_slice()).err(),
        Some(malformed(TOO_MUCH_WORK, 0))
    );
}

/// The bound is the product of the tensors' elements (here 2) and the constant:
/// a window of exactly that many taps loads and runs, one more tap is refused.
#[test]
fn the_work_bound_sits_exactly_at_its_constant() {
    let per_element = MAX_WORK_PER_ELEMENT as u32;
    // 2 · 4096 = 8192 = 64 · 128 taps: a 64 × 128 window, stride and pads per axis.
    let pool = |kh: u32, kw: u32| {
        let mut g = Graph::default();
        let x = g.arena("x", &[1, 1, 1, 1]);
        let y = g.arena("y", &[1, 1, 1, 1]);
        g.node(
            OpCode::AveragePool,
            &[x],
            y,
            NO_TENSOR,
            &[kh, kw, kh, kw, 1, 1, kh - 1, kw - 1, 0, 0, 1],
        );
        g.finish(&[x], &[y])
    };
    assert_eq!(64 * 128, 2 * per_element);
    load_and_run(&pool(64, 128)).expect("a pool at the bound loads and runs");
    let buf = AlignedBuf::from_bytes(&pool(65, 127));
    assert_eq!(
        Model::load(buf.as_slice()).err(),
        Some(malformed(TOO_MUCH_WORK, 0))
    );
}

/// An ordinary padded pool on a tiny input (3 × 3, pad 1, on 1 × 1: nine taps for
/// two elements) is far below the bound.
#[test]
fn a_small_padded_pool_still_loads() {
    load_and_run(&lone_pixel_pool(3, 1)).expect("3 × 3 pad 1 on one pixel");
}

/// The int8 pools have the same bound: a QAveragePool of 2^22 taps (below the
/// i32-sum limit `MAX_POOL_TAPS`) on one element is refused.
#[test]
fn an_int8_pool_window_far_larger_than_its_input_is_refused() {
    let qpool = |k: u32| {
        let mut g = Graph::default();
        let x = g.arena_q("x", &[1, 1, 1, 1], 0.1, 0);
        let y = g.arena_q("y", &[1, 1, 1, 1], 0.1, 0);
        let min = -128i32 as u32;
        g.node(
            OpCode::QAveragePool,
            &[x],
            y,
            NO_TENSOR,
            &[k, k, k, k, 1, 1, k - 1, k - 1, 0, 0, min, 127],
        );
        g.finish(&[x], &[y])
    };
    let buf = AlignedBuf::from_bytes(&qpool(1 << 11));
    assert_eq!(
        Model::load(buf.as_slice()).err(),
        Some(malformed(TOO_MUCH_WORK, 0))
    );
    let buf = AlignedBuf::from_bytes(&qpool(3));
    Model::load(buf.as_slice()).expect("a 3 × 3 int8 pool on one element loads");
}

/// A one-channel convolution whose `k × k` kernel slides over one input element
/// padded by `k − 1` on every side: `k²` outputs of `k²` multiply-accumulates, all
/// but one of them with padding. Its taps are paid for by weights in the blob, so
/// the bound allows it up to a ratio of 4096 and refuses it past.
fn padded_conv(k: u32) -> Vec<u8> {
    let mut g = Graph::default();
    let x = g.arena("x", &[1, 1, 1, 1]);
    let n = (k * k) as usize;
    let w = g.constant(&[1, 1, k, k], &vec![0.25; n]);
    let y = g.arena("y", &[1, 1, k, k]);
    let p = k - 1;
    let mut params = vec![k, k, 1, 1, 1, 1, p, p, p, p, 1];
    params.extend(act(Act::None));
    g.node(OpCode::Conv, &[x, w], y, NO_TENSOR, &params);
    g.finish(&[x], &[y])
}

#[test]
fn a_convolution_of_mostly_padding_is_bounded() {
    // 64²·64² = 2^24 MACs over 1 + 2·4096 elements: a ratio of 2048, allowed.
    load_and_run(&padded_conv(64)).expect("ratio 2048 loads and runs");
    // 128²·128² = 2^28 MACs over 1 + 2·16384 elements: a ratio above 8191.
    let buf = AlignedBuf::from_bytes(&padded_conv(128));
    assert_eq!(
        Model::load(buf.as_slice()).err(),
        Some(malformed(TOO_MUCH_WORK, 0))
    );
}

/// A window wider than the padded input (3 taps over 2 elements, no padding) is
/// refused by name, for convolutions and pools alike.
#[test]
fn a_window_larger_than_the_padded_input_is_refused() {
    let larger = "window larger than the padded input";
    let mut g = Graph::default();
    let x = g.arena("x", &[1, 1, 2, 2]);
    let w = g.constant(&[1, 1, 3, 3], &[0.5; 9]);
    let y = g.arena("y", &[1, 1, 1, 1]);
    let mut params = vec![3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1];
    params.extend(act(Act::None));
    g.node(OpCode::Conv, &[x, w], y, NO_TENSOR, &params);
    let buf = AlignedBuf::from_bytes(&g.finish(&[x], &[y]));
    assert_eq!(
        Model::load(buf.as_slice()).err(),
        Some(malformed(larger, 0))
    );

    let mut g = Graph::default();
    let x = g.arena("x", &[1, 1, 2, 2]);
    let y = g.arena("y", &[1, 1, 1, 1]);
    g.node(
        OpCode::MaxPool,
        &[x],
        y,
        NO_TENSOR,
        &[3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    );
    let buf = AlignedBuf::from_bytes(&g.finish(&[x], &[y]));
    assert_eq!(
        Model::load(buf.as_slice()).err(),
        Some(malformed(larger, 0))
    );

    // The int8 (NHWC) window check is the same one.
    let mut g = Graph::default();
    let x = g.arena_of("x", DType::I8, &[1, 2, 2, 1], Some((0.1, 0)));
    let y = g.arena_of("y", DType::I8, &[1, 1, 1, 1], Some((0.1, 0)));
    let min = -128i32 as u32;
    g.node(
        OpCode::QMaxPool,
        &[x],
        y,
        NO_TENSOR,
        &[3, 3, 1, 1, 1, 1, 0, 0, 0, 0, min, 127],
    );
    let buf = AlignedBuf::from_bytes(&g.finish(&[x], &[y]));
    assert_eq!(
        Model::load(buf.as_slice()).err(),
        Some(malformed(larger, 0))
    );
}
