//! Running a blob on the host with the SDK's scalar kernels, exactly as a detector
//! runs it: the import self-check, the conformance suite and the converter's tests.

/// Runs a blob with the SDK natively (scalar kernels) on real input values and
/// returns real output values: an int8 graph input (`import --io int8`) takes them
/// quantized and an int8 output is dequantized, by the SDK's own
/// `Runtime::set_input_values` and `Io::output_values` with the quantization the
/// blob records, as a detector's `interpret` and tests see them.
pub fn run_native(blob: &[u8], inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, medwasm::Error> {
    let aligned = medwasm::AlignedBuf::from_bytes(blob);
    let model = medwasm::Model::load(aligned.as_slice())?;
    let mut arena = medwasm::AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = medwasm::PlanBuf::for_model(&model);
    let mut rt = medwasm::Runtime::new(model, arena.as_mut_slice(), plan.storage())?;
    for (i, data) in inputs.iter().enumerate() {
        rt.set_input_values(i, data)?;
    }
    rt.run()?;
    let io = medwasm::Io::new(&rt);
    (0..model.output_count())
        .map(|i| io.output_values(i).map(Iterator::collect))
        .collect()
}
