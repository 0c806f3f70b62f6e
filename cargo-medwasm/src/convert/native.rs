//! Running a blob on the host with the SDK's scalar kernels, exactly as a detector
//! runs it: the import self-check, the conformance suite and the converter's tests.

/// Runs a blob with the SDK natively (scalar kernels).
pub fn run_native(blob: &[u8], inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, medwasm::Error> {
    let aligned = medwasm::AlignedBuf::from_bytes(blob);
    let model = medwasm::Model::load(aligned.as_slice())?;
    let mut arena = medwasm::AlignedBuf::zeroed(model.arena_bytes());
    let mut plan = medwasm::PlanBuf::for_model(&model);
    let mut rt = medwasm::Runtime::new(model, arena.as_mut_slice(), plan.storage())?;
    for (i, data) in inputs.iter().enumerate() {
        rt.set_input(i, data)?;
    }
    rt.run()?;
    (0..model.output_count())
        .map(|i| rt.output(i).map(<[f32]>::to_vec))
        .collect()
}
