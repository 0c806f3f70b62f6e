//! `cargo medwasm import`: convert a model, embed it, record its manifest (see
//! [`crate::importer`]).

use std::path::PathBuf;

use anyhow::Result;

use crate::args::ProjectArgs;
use crate::convert::{FcRequant, Io};
use crate::importer::{ImportOptions, import_model};
use crate::manifest::Manifest;
use crate::report::bytes;
use crate::ui::Ui;

/// Convert and embed a model.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The model file (`.onnx` or `.tflite`).
    pub model: PathBuf,
    /// Fix an input's shape: `name=1,640` (needed for dynamic dims other than batch).
    #[arg(long = "input-shape", value_name = "NAME=D0,D1,..")]
    pub input_shapes: Vec<String>,
    /// Test inputs to store as `vectors/inputs.npy` (`[N, ...]` float32 .npy).
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    /// Expected outputs for `--inputs` to store as `vectors/expected.npy` (needed for
    /// a `.tflite` model when LiteRT, `pip install ai-edge-litert`, is not installed).
    #[arg(long, requires = "inputs")]
    pub expected: Option<PathBuf>,
    /// How int8 fully connected layers requantize: `litert-ref` in f64, bit-exact
    /// with LiteRT's reference kernels (TFLite's own outputs), or `tflm` in fixed
    /// point, bit-exact with TFLite Micro and CMSIS-NN (the two can differ by one
    /// quantization step).
    #[arg(long, value_name = "MODE", default_value = "litert-ref", value_parser = parse_fc_requant)]
    pub fc_requant: FcRequant,
    /// Element type of the detector's inputs and outputs: `f32` (an int8 model is
    /// quantized and dequantized inside the detector, so every host passes real
    /// values) or `int8` (the model's own int8 tensors, with the scale and zero
    /// point in the manifest: `Int8Array` in JavaScript, `int8_t *` in C).
    #[arg(long, value_name = "TYPE", default_value = "f32", value_parser = Io::from_name)]
    pub io: Io,
    /// The detector project.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// `--fc-requant litert-ref|tflm`.
fn parse_fc_requant(s: &str) -> Result<FcRequant, String> {
    FcRequant::from_name(s)
        .ok_or_else(|| format!("`{s}` is not a mode: use `litert-ref` or `tflm`"))
}

impl ImportArgs {
    /// Runs the import.
    pub fn run(self, ui: &Ui) -> Result<()> {
        let project = self.project.locate(ui)?;
        let opts = ImportOptions {
            input_shapes: self.input_shapes,
            inputs: self.inputs,
            expected: self.expected,
            fc_requant: self.fc_requant,
            io: self.io,
            int8_tolerance_steps: project.metadata.int8_tolerance_steps,
        };
        let manifest = import_model(&project.root, &self.model, &opts, ui)?;
        print_summary(&manifest);
        Ok(())
    }
}

fn print_summary(m: &Manifest) {
    println!(
        "imported {} (sha256 {}…)",
        m.source.file,
        &m.source.sha256[..12]
    );
    for t in &m.inputs {
        println!("  input   {:<24} {:?} {}", t.name, t.shape, t.dtype);
    }
    for t in &m.outputs {
        println!("  output  {:<24} {:?} {}", t.name, t.shape, t.dtype);
    }
    println!(
        "  {} nodes, {} MACs, weights {}, blob {}, peak arena {} bytes",
        m.nodes,
        m.macs,
        bytes(m.weights_bytes),
        bytes(m.blob_bytes),
        m.arena_bytes
    );
}
