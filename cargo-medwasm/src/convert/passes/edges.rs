//! The element types at the detector's ABI. By default (`import --io f32`) it takes
//! and returns f32: each int8 graph input gets a Quantize after it and each int8
//! graph output a Dequantize before it, so an int8 model runs behind the same ABI,
//! JS loader and C header as a float one. The host quantizes nothing itself: the
//! runtime's Quantize does it as TFLite's QUANTIZE does (an f32 division, ties away
//! from zero), so a caller passing real values gets the model's own int8 inputs.
//!
//! With `import --io int8` ([`int8_edges`]) the detector takes and returns the
//! model's int8 tensors themselves: a sensor front end that already produces
//! quantized samples skips a division per element, and the host reads the int8
//! scores TFLite Micro would give it.

use crate::convert::ir::{DType, Graph, Node, Op, Quant, Tensor};
use crate::convert::{Problem, ProblemKind};

/// The element types at the detector's ABI (`import --io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Io {
    /// f32 inputs and outputs; int8 models quantize and dequantize at their edge.
    #[default]
    F32,
    /// The model's int8 inputs and outputs, as they are.
    Int8,
}

impl Io {
    /// The `--io` name.
    pub fn name(self) -> &'static str {
        match self {
            Io::F32 => "f32",
            Io::Int8 => "int8",
        }
    }

    /// The `--io` value `name`, or what the flag takes.
    pub fn from_name(name: &str) -> Result<Io, String> {
        match name {
            "f32" => Ok(Io::F32),
            "int8" => Ok(Io::Int8),
            other => Err(format!(
                "`{other}` is not an I/O element type: use `f32` (the default: an int8 model is quantized and dequantized inside the detector) or `int8` (the model's own int8 inputs and outputs)"
            )),
        }
    }
}

/// What [`quantize_edges`] did to one graph input or output: the quantization the
/// model itself has there (`None` for a float one).
pub type EdgeQuant = Option<(f32, i32)>;

/// Wraps every int8 graph input and output with per-tensor quantization; returns,
/// per input and per output, the model's quantization of it.
pub fn quantize_edges(g: &mut Graph) -> (Vec<EdgeQuant>, Vec<EdgeQuant>) {
    let inputs = (0..g.inputs.len())
        .map(|k| {
            let t = g.inputs[k];
            let q = int8_per_tensor(&g.tensors[t])?;
            // The f32 tensor takes the input's name (the ABI's); the int8 one
            // becomes the Quantize's output.
            let name = g.tensors[t].name.clone();
            let real = g.add_tensor(Tensor::activation(
                name.clone(),
                g.tensors[t].dims.clone(),
                DType::F32,
            ));
            g.tensors[t].name = format!("{name}.quantized");
            g.nodes.insert(
                0,
                Node {
                    name: format!("{name}.quantize"),
                    op: Op::Quantize,
                    inputs: vec![Some(real)],
                    output: t,
                },
            );
            g.inputs[k] = real;
            Some(q)
        })
        .collect();
    let outputs = (0..g.outputs.len())
        .map(|k| {
            let t = g.outputs[k];
            let q = int8_per_tensor(&g.tensors[t])?;
            let name = g.tensors[t].name.clone();
            let real = g.add_tensor(Tensor::activation(
                name.clone(),
                g.tensors[t].dims.clone(),
                DType::F32,
            ));
            g.tensors[t].name = format!("{name}.quantized");
            g.nodes.push(Node {
                name: format!("{name}.dequantize"),
                op: Op::Dequantize,
                inputs: vec![Some(t)],
                output: real,
            });
            g.outputs[k] = real;
            Some(q)
        })
        .collect();
    (inputs, outputs)
}

/// Makes every graph input and output the model's int8 tensor (`--io int8`): an
/// int8 one stays; an f32 input whose only reader is a Quantize to per-tensor int8
/// (a float-interface TFLite model, an ONNX QuantizeLinear) is replaced by that
/// Quantize's output; an f32 output computed by a Dequantize of per-tensor int8 is
/// replaced by the int8 tensor. The int8 tensors take the ABI names. Anything else
/// (a float model, a per-channel edge) is a problem naming the tensor, all at once.
pub fn int8_edges(g: &mut Graph) -> Result<(Vec<EdgeQuant>, Vec<EdgeQuant>), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut inputs = Vec::with_capacity(g.inputs.len());
    for k in 0..g.inputs.len() {
        let t = g.inputs[k];
        if let Some(q) = int8_per_tensor(&g.tensors[t]) {
            inputs.push(Some(q));
            continue;
        }
        let readers = g.consumers(t);
        let quantize = match readers.as_slice() {
            &[n] if g.nodes[n].op == Op::Quantize && g.uses(t) == 1 => Some(n),
            _ => None,
        };
        let target = quantize.map(|n| g.nodes[n].output);
        match (
            quantize,
            target.and_then(|q| int8_per_tensor(&g.tensors[q])),
        ) {
            (Some(n), Some(q)) => {
                let q_t = g.nodes[n].output;
                let name = std::mem::take(&mut g.tensors[t].name);
                g.tensors[t].name = format!("{name}.real");
                g.tensors[q_t].name = name;
                g.nodes.remove(n);
                g.inputs[k] = q_t;
                inputs.push(Some(q));
            }
            _ => {
                problems.push(edge_problem(g, t, "input"));
                inputs.push(None);
            }
        }
    }
    let mut outputs = Vec::with_capacity(g.outputs.len());
    for k in 0..g.outputs.len() {
        let t = g.outputs[k];
        if let Some(q) = int8_per_tensor(&g.tensors[t]) {
            outputs.push(Some(q));
            continue;
        }
        let dequantize = g
            .producer(t)
            .filter(|&n| g.nodes[n].op == Op::Dequantize)
            .and_then(|n| Some((n, g.nodes[n].inputs.first().copied().flatten()?)));
        match dequantize.and_then(|(n, src)| Some((n, src, int8_per_tensor(&g.tensors[src])?))) {
            Some((n, src, q)) => {
                let name = std::mem::take(&mut g.tensors[t].name);
                g.tensors[t].name = format!("{name}.real");
                g.tensors[src].name = name;
                g.outputs[k] = src;
                // The Dequantize goes when nothing else reads its result.
                if g.uses(t) == 0 {
                    g.nodes.remove(n);
                }
                outputs.push(Some(q));
            }
            None => {
                problems.push(edge_problem(g, t, "output"));
                outputs.push(None);
            }
        }
    }
    if problems.is_empty() {
        Ok((inputs, outputs))
    } else {
        Err(problems)
    }
}

/// Why graph input or output `t` cannot be int8 at the ABI.
fn edge_problem(g: &Graph, t: usize, kind: &str) -> Problem {
    let tensor = &g.tensors[t];
    let what = if tensor.dtype == DType::I8 {
        "is int8 with per-channel or invalid quantization".to_string()
    } else {
        format!("is {} in the model", tensor.dtype.name())
    };
    let needs = if kind == "input" {
        "an int8 input with per-tensor quantization, or an f32 one the model quantizes right away (QUANTIZE, QuantizeLinear)"
    } else {
        "an int8 output with per-tensor quantization, or an f32 one the model dequantizes from one (DEQUANTIZE, DequantizeLinear)"
    };
    Problem {
        node: tensor.name.clone(),
        op: kind.into(),
        kind: ProblemKind::Dtype,
        message: format!("{what}; `--io int8` needs {needs}: import it with `--io f32`"),
    }
}

/// Per graph output, the quantization of the int8 tensor the `Dequantize` that
/// writes it reads: a graph output that is the real value of an int8 one (the
/// Dequantize [`quantize_edges`] adds, or a QDQ model's final DequantizeLinear),
/// also behind Transposes and Copies (the layout passes move a Dequantize ahead of
/// them), which move values without changing them.
pub fn dequantized_outputs(g: &Graph) -> Vec<EdgeQuant> {
    g.outputs
        .iter()
        .map(|&out| {
            let mut t = out;
            loop {
                let node = &g.nodes[g.producer(t)?];
                let input = (*node.inputs.first()?)?;
                match node.op {
                    Op::Dequantize => return int8_per_tensor(&g.tensors[input]),
                    Op::Transpose { .. } | Op::Copy => t = input,
                    _ => return None,
                }
            }
        })
        .collect()
}

/// `(scale, zero_point)` of an int8 tensor with valid per-tensor quantization.
pub(crate) fn int8_per_tensor(t: &Tensor) -> Option<(f32, i32)> {
    match &t.quant {
        Some(Quant {
            scale,
            zero_point,
            axis: None,
        }) if t.dtype == DType::I8
            && scale.len() == 1
            && zero_point.len() == 1
            && scale[0].is_finite()
            && scale[0] > 0.0
            && (-128..=127).contains(&zero_point[0]) =>
        {
            Some((scale[0], zero_point[0] as i32))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use medwasm::kernels::act::Act;

    use super::{dequantized_outputs, int8_edges, quantize_edges};
    use crate::convert::ProblemKind;
    use crate::convert::ir::{DType, Graph, Node, Op, Quant, Tensor};
    use crate::convert::testing::{assert_close, run_graph};

    fn int8(name: &str, dims: &[usize], scale: f32, zp: i64) -> Tensor {
        Tensor {
            quant: Some(Quant {
                scale: vec![scale],
                zero_point: vec![zp],
                axis: None,
            }),
            ..Tensor::activation(name, dims.to_vec(), DType::I8)
        }
    }

    #[test]
    fn int8_inputs_and_outputs_get_f32_at_the_edge() {
        // x int8 (0.5, -3) → relu (requantized to 0.25, -128) → y int8.
        let mut g = Graph::default();
        let x = g.add_tensor(int8("x", &[1, 4], 0.5, -3));
        g.inputs.push(x);
        let y = g.add_tensor(int8("y", &[1, 4], 0.25, -128));
        g.nodes.push(crate::convert::ir::Node {
            name: "relu".into(),
            op: Op::Act(Act::Relu),
            inputs: vec![Some(x)],
            output: y,
        });
        g.outputs.push(y);
        let (ins, outs) = quantize_edges(&mut g);
        assert_eq!(ins, [Some((0.5, -3))]);
        assert_eq!(outs, [Some((0.25, -128))]);
        let labels: Vec<String> = g.nodes.iter().map(|n| n.op.label()).collect();
        assert_eq!(labels, ["Quantize", "Relu", "Dequantize"]);
        // The Dequantize added at the edge is found again after it.
        assert_eq!(dequantized_outputs(&g), [Some((0.25, -128))]);
        // The ABI names are the model's; the int8 tensors are renamed.
        assert_eq!(g.tensors[g.inputs[0]].name, "x");
        assert_eq!(g.tensors[g.inputs[0]].dtype, DType::F32);
        assert_eq!(g.tensors[g.outputs[0]].name, "y");
        assert_eq!(g.tensors[x].name, "x.quantized");
        // -2.6 → round(-5.2) = -5 → -8 (q) → relu: max(real 0) → 0; 1.25 → 2.5 → 3
        // (ties away) → real 1.5 → y = 1.5 / 0.25 = 6 steps above -128; 100 saturates
        // at 127, 130 steps of 0.5 → 260 of 0.25, saturated at 127: 255 steps.
        let out = run_graph(&g, &[vec![-2.6, 1.25, 0.0, 100.0]]);
        assert_close(&out[0], &[0.0, 1.5, 0.0, 63.75], 0.0);
        // A float graph is left alone.
        let mut g = Graph::default();
        let x = crate::convert::testing::input(&mut g, "x", &[1, 2]);
        g.outputs.push(x);
        assert_eq!(quantize_edges(&mut g), (vec![None], vec![None]));
        assert!(g.nodes.is_empty());
    }

    /// x int8 (0.5, −3) → relu (requantized to 0.25, −128) → y int8.
    fn int8_relu() -> Graph {
        let mut g = Graph::default();
        let x = g.add_tensor(int8("x", &[1, 4], 0.5, -3));
        g.inputs.push(x);
        let y = g.add_tensor(int8("y", &[1, 4], 0.25, -128));
        g.nodes.push(Node {
            name: "relu".into(),
            op: Op::Act(Act::Relu),
            inputs: vec![Some(x)],
            output: y,
        });
        g.outputs.push(y);
        g
    }

    #[test]
    fn int8_io_keeps_the_models_int8_tensors() {
        let mut g = int8_relu();
        let (ins, outs) = int8_edges(&mut g).unwrap();
        assert_eq!(
            (ins, outs),
            (vec![Some((0.5, -3))], vec![Some((0.25, -128))])
        );
        let labels: Vec<String> = g.nodes.iter().map(|n| n.op.label()).collect();
        assert_eq!(labels, ["Relu"]);
        assert_eq!(g.tensors[g.inputs[0]].dtype, DType::I8);
        assert_eq!(g.tensors[g.outputs[0]].name, "y");
        // The blob runs on int8 values; run_native hands it real ones and gets real
        // ones back: -2.6 → -5 + -3 = -8 → relu → real 0; 1.25 → 3 + -3 = 0 … as
        // with f32 edges, so both imports give the same real outputs.
        let out = run_graph(&g, &[vec![-2.6, 1.25, 0.0, 100.0]]);
        assert_close(&out[0], &[0.0, 1.5, 0.0, 63.75], 0.0);
    }

    #[test]
    fn int8_io_takes_the_quantize_and_dequantize_of_a_float_interface() {
        // x f32 → Quantize → relu → Dequantize → y f32, as a float-interface TFLite
        // model or an ONNX QDQ graph has it.
        let mut g = int8_relu();
        let (xq, yq) = (g.inputs[0], g.outputs[0]);
        g.tensors[xq].name = "x_q".into();
        g.tensors[yq].name = "y_q".into();
        let x = g.add_tensor(Tensor::activation("x", vec![1, 4], DType::F32));
        let y = g.add_tensor(Tensor::activation("y", vec![1, 4], DType::F32));
        g.nodes.insert(
            0,
            Node {
                name: "q".into(),
                op: Op::Quantize,
                inputs: vec![Some(x)],
                output: xq,
            },
        );
        g.nodes.push(Node {
            name: "dq".into(),
            op: Op::Dequantize,
            inputs: vec![Some(yq)],
            output: y,
        });
        g.inputs = vec![x];
        g.outputs = vec![y];
        let (ins, outs) = int8_edges(&mut g).unwrap();
        assert_eq!(
            (ins, outs),
            (vec![Some((0.5, -3))], vec![Some((0.25, -128))])
        );
        let labels: Vec<String> = g.nodes.iter().map(|n| n.op.label()).collect();
        assert_eq!(
            labels,
            ["Relu"],
            "the edge Quantize and Dequantize are gone"
        );
        assert_eq!((g.inputs[0], g.outputs[0]), (xq, yq));
        // The ABI keeps the model's names.
        assert_eq!(g.tensors[xq].name, "x");
        assert_eq!(g.tensors[yq].name, "y");
        let out = run_graph(&g, &[vec![-2.6, 1.25, 0.0, 100.0]]);
        assert_close(&out[0], &[0.0, 1.5, 0.0, 63.75], 0.0);
    }

    #[test]
    fn int8_io_refuses_float_edges_naming_each() {
        let mut g = Graph::default();
        let x = crate::convert::testing::input(&mut g, "x", &[1, 2]);
        let y = g.add_node("y", Op::Act(Act::Relu), vec![Some(x)], vec![1, 2]);
        g.outputs.push(y);
        let problems = int8_edges(&mut g).unwrap_err();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{shown:?}");
        assert!(problems.iter().all(|p| p.kind == ProblemKind::Dtype));
        assert!(
            shown[0].starts_with("input `x`: is f32 in the model; `--io int8` needs an int8 input")
                && shown[0].ends_with("import it with `--io f32`"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("output `y`: is f32 in the model"),
            "{shown:?}"
        );
    }

    #[test]
    fn a_final_dequantize_records_its_int8_input() {
        // A QDQ model's graph: f32 x → relu → y (f32) and q (int8) → Dequantize → z (f32).
        let mut g = Graph::default();
        let x = crate::convert::testing::input(&mut g, "x", &[1, 4]);
        let y = g.add_tensor(Tensor::activation("y", vec![1, 4], DType::F32));
        g.nodes.push(crate::convert::ir::Node {
            name: "relu".into(),
            op: Op::Act(Act::Relu),
            inputs: vec![Some(x)],
            output: y,
        });
        let q = g.add_tensor(int8("q", &[1, 4], 0.125, 5));
        let z = g.add_tensor(Tensor::activation("z", vec![1, 4], DType::F32));
        g.nodes.push(crate::convert::ir::Node {
            name: "dq".into(),
            op: Op::Dequantize,
            inputs: vec![Some(q)],
            output: z,
        });
        // The layout passes leave a Transpose (and a Copy) after a final Dequantize.
        let zt = g.add_tensor(Tensor::activation("zt", vec![4, 1], DType::F32));
        g.nodes.push(crate::convert::ir::Node {
            name: "transpose".into(),
            op: Op::Transpose { perm: vec![1, 0] },
            inputs: vec![Some(z)],
            output: zt,
        });
        let zc = g.add_tensor(Tensor::activation("zc", vec![4], DType::F32));
        g.nodes.push(crate::convert::ir::Node {
            name: "copy".into(),
            op: Op::Copy,
            inputs: vec![Some(zt)],
            output: zc,
        });
        g.outputs.extend([y, z, x, zc]);
        assert_eq!(
            dequantized_outputs(&g),
            [None, Some((0.125, 5)), None, Some((0.125, 5))]
        );
        // Per-channel quantization is not an output's single step.
        g.tensors[q].quant = Some(Quant {
            scale: vec![0.125, 0.25],
            zero_point: vec![0, 0],
            axis: Some(1),
        });
        assert_eq!(dequantized_outputs(&g), [None, None, None, None]);
    }
}
