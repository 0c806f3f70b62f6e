//! The data movers (Copy, Transpose, Concat, Pad) move int8 values without reading
//! them, so each input must be quantized as the output is. Where a frontend gives
//! one that is not (an ONNX QDQ graph may; TFLite's converter inserts QUANTIZE
//! itself), the input is requantized to the output's parameters first, as TFLite
//! does with an int8 → int8 QUANTIZE: an elementwise rescaling, so it commutes with
//! any movement of the values.

use crate::convert::ir::{DType, Graph, Node, Op, Tensor};

/// Inserts a requantization before every int8 data-mover input quantized unlike
/// the output; returns how many.
pub fn requantize_moved_inputs(g: &mut Graph) -> usize {
    let mut inserted = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let mover = matches!(
            g.nodes[i].op,
            Op::Copy | Op::Transpose { .. } | Op::Concat { .. } | Op::Pad { .. }
        );
        let out = g.nodes[i].output;
        let target = &g.tensors[out];
        if !mover || target.dtype != DType::I8 || target.quant.is_none() {
            i += 1;
            continue;
        }
        let quant = target.quant.clone();
        let mut added = 0;
        for k in 0..g.nodes[i].inputs.len() {
            let Some(t) = g.nodes[i].inputs[k] else {
                continue;
            };
            let src = &g.tensors[t];
            if src.dtype != DType::I8 || src.quant.is_none() || src.quant == quant {
                continue;
            }
            let name = format!("{}.requantized_{k}", g.nodes[i].name);
            let r = g.add_tensor(Tensor {
                name: name.clone(),
                quant: quant.clone(),
                ..Tensor::activation(name.clone(), src.dims.clone(), DType::I8)
            });
            g.nodes.insert(
                i,
                Node {
                    name,
                    op: Op::Quantize,
                    inputs: vec![Some(t)],
                    output: r,
                },
            );
            added += 1;
            g.nodes[i + added].inputs[k] = Some(r);
        }
        inserted += added;
        i += added + 1;
    }
    inserted
}

#[cfg(test)]
mod tests {
    use super::requantize_moved_inputs;
    use crate::convert::ir::{DType, Graph, Node, Op, Quant, Tensor};
    use crate::convert::testing::{assert_close, run_graph};

    fn q(scale: f32, zp: i64) -> Option<Quant> {
        Some(Quant {
            scale: vec![scale],
            zero_point: vec![zp],
            axis: None,
        })
    }

    #[test]
    fn a_concat_of_differently_quantized_inputs_requantizes_them() {
        // Two f32 inputs quantized to (0.5, 0) and (0.25, 10), joined into (0.5, 0).
        let mut g = Graph::default();
        let mut parts = vec![];
        for (k, (scale, zp)) in [(0.5, 0), (0.25, 10)].into_iter().enumerate() {
            let x = crate::convert::testing::input(&mut g, &format!("x{k}"), &[1, 2]);
            let t = g.add_tensor(Tensor {
                quant: q(scale, zp),
                ..Tensor::activation(format!("q{k}"), vec![1, 2], DType::I8)
            });
            g.nodes.push(Node {
                name: format!("quantize{k}"),
                op: Op::Quantize,
                inputs: vec![Some(x)],
                output: t,
            });
            parts.push(Some(t));
        }
        let cat = g.add_tensor(Tensor {
            quant: q(0.5, 0),
            ..Tensor::activation("cat", vec![1, 4], DType::I8)
        });
        g.nodes.push(Node {
            name: "concat".into(),
            op: Op::Concat { axis: 1 },
            inputs: parts,
            output: cat,
        });
        let y = g.add_node("dequantize", Op::Dequantize, vec![Some(cat)], vec![1, 4]);
        g.outputs.push(y);
        assert_eq!(
            requantize_moved_inputs(&mut g),
            1,
            "only the second differs"
        );
        let labels: Vec<String> = g.nodes.iter().map(|n| n.op.label()).collect();
        assert_eq!(
            labels,
            ["Quantize", "Quantize", "Quantize", "Concat", "Dequantize"]
        );
        // 1.25 → q0 2.5 → 3 (ties away) → 1.5; 0.6 → q1 2.4 + 10 → 12 → 0.5 → q 1;
        // -1 → q1 -4 + 10 = 6 → (6 − 10) · 0.25 / 0.5 = −2 → −1.0.
        let out = run_graph(&g, &[vec![1.25, -0.2], vec![0.6, -1.0]]);
        assert_close(&out[0], &[1.5, 0.0, 0.5, -1.0], 0.0);
    }
}
