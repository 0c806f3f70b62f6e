//! The detector's ABI takes and returns f32: each int8 graph input gets a Quantize
//! after it and each int8 graph output a Dequantize before it, so an int8 model
//! runs behind the same ABI, JS loader and C header as a float one. The host
//! quantizes nothing itself: the runtime's Quantize does it as TFLite's QUANTIZE
//! does (an f32 division, ties away from zero), so a caller passing real values
//! gets the model's own int8 inputs.

use crate::convert::ir::{DType, Graph, Node, Op, Quant, Tensor};

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
fn int8_per_tensor(t: &Tensor) -> Option<(f32, i32)> {
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

    use super::{dequantized_outputs, quantize_edges};
    use crate::convert::ir::{DType, Graph, Op, Quant, Tensor};
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
