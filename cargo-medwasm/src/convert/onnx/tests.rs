//! ONNX models built in the test (like `conformance/gen_cases.py` builds them in
//! Python) and taken through the frontend and the shared lowering.

use std::collections::HashMap;
use std::path::Path;

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

use super::tensor::{FLOAT, INT64};
use crate::convert::testing::{assert_close, run_blob};
use crate::convert::{ConvertError, Converted, Problem, ProblemKind, lower};

/// A model under construction: one opset, float inputs, nodes in order.
pub(crate) struct Model {
    opset: i64,
    graph: pb::GraphProto,
}

/// An attribute.
pub(crate) fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

pub(crate) fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn attr_float(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

impl Model {
    pub(crate) fn new(opset: i64) -> Model {
        Model {
            opset,
            graph: pb::GraphProto::default(),
        }
    }

    /// A float32 graph input of static shape `dims`.
    pub(crate) fn input(self, name: &str, dims: &[i64]) -> Model {
        self.input_typed(name, dims, FLOAT)
    }

    /// A graph input of ONNX element type `elem_type` and static shape `dims`.
    pub(crate) fn input_typed(mut self, name: &str, dims: &[i64], elem_type: i32) -> Model {
        use pb::tensor_shape_proto::{Dimension, dimension::Value};
        self.graph.input.push(pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type,
                    shape: Some(pb::TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| Dimension {
                                value: Some(Value::DimValue(d)),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        });
        self
    }

    /// A graph output.
    pub(crate) fn output(mut self, name: &str) -> Model {
        self.graph.output.push(pb::ValueInfoProto {
            name: name.into(),
            ..Default::default()
        });
        self
    }

    /// A float32 initializer.
    pub(crate) fn init_f32(mut self, name: &str, dims: &[i64], values: &[f32]) -> Model {
        self.graph.initializer.push(pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: FLOAT,
            float_data: values.to_vec(),
            ..Default::default()
        });
        self
    }

    /// An int64 initializer.
    pub(crate) fn init_i64(mut self, name: &str, dims: &[i64], values: &[i64]) -> Model {
        self.graph.initializer.push(pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: INT64,
            int64_data: values.to_vec(),
            ..Default::default()
        });
        self
    }

    /// An initializer of any integer ONNX type, values as int32_data (ONNX stores
    /// int8, uint8 and int32 there when there is no raw data).
    pub(crate) fn init_int(
        mut self,
        name: &str,
        dims: &[i64],
        data_type: i32,
        values: &[i32],
    ) -> Model {
        self.graph.initializer.push(pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type,
            int32_data: values.to_vec(),
            ..Default::default()
        });
        self
    }

    /// A node named `<op>_<index>`, as the conformance cases name them.
    pub(crate) fn node(
        mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<pb::AttributeProto>,
    ) -> Model {
        let index = self.graph.node.len();
        self.graph.node.push(pb::NodeProto {
            name: format!("{}_{index}", op.to_lowercase()),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attrs,
            ..Default::default()
        });
        self
    }

    /// A node of the `com.microsoft` domain, named `<op>_<index>`.
    pub(crate) fn ms_node(
        mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<pb::AttributeProto>,
    ) -> Model {
        self = self.node(op, inputs, output, attrs);
        if let Some(n) = self.graph.node.last_mut() {
            n.domain = super::MS_DOMAIN.into();
        }
        self
    }

    pub(crate) fn proto(self) -> pb::ModelProto {
        let mut opset_import = vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: self.opset,
        }];
        if self.graph.node.iter().any(|n| n.domain == super::MS_DOMAIN) {
            opset_import.push(pb::OperatorSetIdProto {
                domain: super::MS_DOMAIN.into(),
                version: 1,
            });
        }
        pb::ModelProto {
            ir_version: 8,
            opset_import,
            graph: Some(self.graph),
            ..Default::default()
        }
    }

    /// Imports and lowers the model, as `convert_onnx_bytes` does after parsing.
    pub(crate) fn convert(self) -> Result<Converted, ConvertError> {
        self.convert_with(&HashMap::new())
    }

    pub(crate) fn convert_with(
        self,
        shapes: &HashMap<String, Vec<usize>>,
    ) -> Result<Converted, ConvertError> {
        let proto = self.proto();
        lower(Path::new("test.onnx"), &[], super::import(&proto, shapes))
    }

    /// The problems of a model that must not convert.
    pub(crate) fn problems(self) -> Vec<Problem> {
        match self.convert() {
            Err(ConvertError::Unsupported { problems, .. }) => problems,
            Err(e) => panic!("expected problems, got: {e}"),
            Ok(_) => panic!("expected problems, the model converted"),
        }
    }
}

/// The one problem of a model; panics if there is not exactly one.
pub(crate) fn only_problem(m: Model) -> Problem {
    let problems = m.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!())
}

#[test]
fn every_supported_operator_has_a_translation_and_the_reverse() {
    let mut registered = super::op_names();
    let mut table: Vec<&str> = crate::convert::support::OPS.iter().map(|o| o.op).collect();
    registered.sort_unstable();
    table.sort_unstable();
    assert_eq!(
        registered, table,
        "support::OPS and the ONNX registry differ"
    );
    let mut dedup = registered.clone();
    dedup.dedup();
    assert_eq!(dedup, registered, "an operator is registered twice");
}

#[test]
fn matmul_and_bias_add_become_one_gemm_that_runs() {
    let converted = Model::new(13)
        .input("x", &[1, 2])
        .init_f32("w", &[2, 2], &[1.0, 2.0, 3.0, 4.0])
        .init_f32("b", &[2], &[0.5, -0.5])
        .node("MatMul", &["x", "w"], "t", vec![])
        .node("Add", &["t", "b"], "y", vec![])
        .output("y")
        .convert()
        .unwrap();
    let m = &converted.manifest;
    assert_eq!(m.ops, [("Gemm".to_string(), 1)]);
    assert_eq!(
        (m.inputs[0].dtype.as_str(), m.outputs[0].name.as_str()),
        ("f32", "y")
    );
    assert!(
        m.notes.iter().any(|n| n.contains("bias Add fused")),
        "{:?}",
        m.notes
    );
    let y = run_blob(&converted.blob, &[vec![1.0, -1.0]]);
    assert_close(&y[0], &[1.0 - 3.0 + 0.5, 2.0 - 4.0 - 0.5], 0.0);
}

#[test]
fn unknown_attributes_are_refused_by_name() {
    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 4])
            .node(
                "Relu",
                &["x"],
                "y",
                vec![attr_float("alpha", 0.5), attr_int("beta", 1)],
            )
            .output("y"),
    );
    assert_eq!(p.kind, ProblemKind::Attribute);
    assert_eq!(p.node, "relu_0");
    assert!(
        p.message.contains("unknown attributes `alpha`, `beta`")
            && p.message.contains("Relu takes `consumed_inputs`"),
        "{}",
        p.message
    );
}

#[test]
fn an_attribute_of_the_wrong_type_is_refused_not_defaulted() {
    // `alpha` as an int would otherwise silently become the default 0.01.
    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 4])
            .node("LeakyRelu", &["x"], "y", vec![attr_int("alpha", 1)])
            .output("y"),
    );
    assert_eq!(p.kind, ProblemKind::Attribute);
    assert!(
        p.message
            .contains("attribute `alpha` must be a float, not an int"),
        "{}",
        p.message
    );
}

#[test]
fn integer_constants_are_transposed_and_concatenated_at_conversion() {
    // [[2, 3]] transposed and joined with [[1], [6]] is [[2, 1], [3, 6]]; its second
    // row, [3, 6], is the shape x is reshaped to.
    let converted = Model::new(13)
        .input("x", &[1, 18])
        .init_i64("s", &[1, 2], &[2, 3])
        .init_i64("k", &[2, 1], &[1, 6])
        .init_i64("flat", &[1], &[4])
        .init_i64("pick", &[2], &[2, 3])
        .node("Transpose", &["s"], "st", vec![attr_ints("perm", &[1, 0])])
        .node("Concat", &["st", "k"], "c", vec![attr_int("axis", 1)])
        .node("Reshape", &["c", "flat"], "cf", vec![])
        .node("Gather", &["cf", "pick"], "shape", vec![])
        .node("Reshape", &["x", "shape"], "r", vec![])
        .node("Relu", &["r"], "y", vec![])
        .output("y")
        .convert()
        .unwrap();
    assert_eq!(converted.manifest.outputs[0].shape, [3, 6]);
    let x: Vec<f32> = (0..18).map(|v| v as f32 - 9.0).collect();
    let want: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
    assert_close(&run_blob(&converted.blob, &[x])[0], &want, 0.0);
}

#[test]
fn an_integer_constant_at_run_time_is_a_dtype_problem() {
    // Relu of an int64 constant would need an integer tensor in the arena.
    let problems = Model::new(13)
        .input("x", &[1, 2])
        .init_i64("k", &[1, 2], &[1, 2])
        .node("Relu", &["k"], "r", vec![])
        .node("Add", &["x", "r"], "y", vec![])
        .output("y")
        .problems();
    assert!(!problems.is_empty());
    for p in &problems {
        assert_eq!(p.kind, ProblemKind::Dtype, "{p}");
        assert!(
            p.message.contains("element type i64") && p.message.contains("f32 only"),
            "{p}"
        );
    }
}

#[test]
fn a_conv_with_a_zero_kernel_dimension_is_a_shape_problem() {
    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 3, 8, 8])
            .init_f32("w", &[2, 3, 0, 3], &[])
            .node("Conv", &["x", "w"], "y", vec![])
            .output("y"),
    );
    assert_eq!((p.node.as_str(), p.kind), ("conv_0", ProblemKind::Shape));
    assert!(
        p.message
            .contains("weights `w` of shape [2, 3, 0, 3] have a zero dimension"),
        "{}",
        p.message
    );
}

#[test]
fn a_pool_with_a_zero_or_negative_kernel_is_an_attribute_problem() {
    for ks in [[0, 2], [-1, 2]] {
        let p = only_problem(
            Model::new(13)
                .input("x", &[1, 3, 8, 8])
                .node("MaxPool", &["x"], "y", vec![attr_ints("kernel_shape", &ks)])
                .output("y"),
        );
        assert_eq!(p.kind, ProblemKind::Attribute);
        assert!(
            p.message.contains("`kernel_shape`") && p.message.contains("must be positive"),
            "{}",
            p.message
        );
    }
}

#[test]
fn window_parameters_out_of_range_are_refused() {
    let conv = |attrs| {
        only_problem(
            Model::new(13)
                .input("x", &[1, 1, 4, 4])
                .init_f32("w", &[1, 1, 1, 1], &[1.0])
                .node("Conv", &["x", "w"], "y", attrs)
                .output("y"),
        )
    };
    let p = conv(vec![attr_ints("strides", &[1, 1 << 40])]);
    assert!(
        p.message.contains("`strides`") && p.message.contains("below 2^24"),
        "{p}"
    );
    let p = conv(vec![attr_ints("pads", &[0, 0, 0, i64::MAX])]);
    assert!(
        p.message.contains("`pads`") && p.message.contains("below 2^24"),
        "{p}"
    );
    let p = conv(vec![attr_int("group", 0)]);
    assert!(p.message.contains("`group` 0 must be positive"), "{p}");
}

#[test]
fn pool_windows_entirely_in_padding_are_refused() {
    // Pads of 2 before a 2x2 kernel: the first window sees only padding, where an
    // average (excluding pads) would divide by zero and a maximum would be -inf.
    for op in ["AveragePool", "MaxPool"] {
        let p = only_problem(
            Model::new(13)
                .input("x", &[1, 1, 4, 4])
                .node(
                    op,
                    &["x"],
                    "y",
                    vec![
                        attr_ints("kernel_shape", &[2, 2]),
                        attr_ints("pads", &[2, 2, 0, 0]),
                    ],
                )
                .output("y"),
        );
        assert_eq!(p.kind, ProblemKind::Attribute);
        assert!(
            p.message
                .contains("output 0 along axis 2 pools a window that lies entirely in the padding")
                && p.message.contains("make each pad smaller than the kernel"),
            "{}",
            p.message
        );
    }
    // A dilation that steps over a 1-wide input: taps at -1 and 2.
    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 1, 1])
            .node(
                "MaxPool",
                &["x"],
                "y",
                vec![
                    attr_ints("kernel_shape", &[2]),
                    attr_ints("dilations", &[3]),
                    attr_ints("pads", &[1, 2]),
                ],
            )
            .output("y"),
    );
    assert!(p.message.contains("along axis 2"), "{p}");
}

#[test]
fn a_pool_past_the_runtime_work_bound_is_a_limit_with_the_node_name() {
    // A 100 × 100 window around one element (pads 99, stride 100): 10 000 taps for
    // two elements, past the runtime's 4096 per element. ONNX allows it (each pad is
    // smaller than the kernel), the runtime would refuse the blob: the import says
    // so with the node's name instead of writing it.
    let pool = |k: i64| {
        Model::new(13)
            .input("x", &[1, 1, 1, 1])
            .node(
                "AveragePool",
                &["x"],
                "y",
                vec![
                    attr_ints("kernel_shape", &[k, k]),
                    attr_ints("strides", &[k, k]),
                    attr_ints("pads", &[k - 1, k - 1, k - 1, k - 1]),
                ],
            )
            .output("y")
    };
    let p = only_problem(pool(100));
    assert_eq!(p.kind, ProblemKind::Limit);
    assert_eq!(p.node, "averagepool_0");
    assert!(
        p.message
            .contains("more than 4096 multiply-accumulates or window taps per element")
            && p.message.contains("make the window or the padding smaller"),
        "{p}"
    );
    // 60 × 60 = 3600 taps for two elements is inside the bound and converts.
    pool(60)
        .convert()
        .expect("a 60 × 60 window on one element converts");
}

#[test]
fn constant_integer_overflow_is_an_import_error() {
    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 4])
            .init_i64("a", &[1], &[i64::MAX])
            .init_i64("b", &[1], &[1])
            .node("Add", &["a", "b"], "s", vec![])
            .node("Reshape", &["x", "s"], "y", vec![])
            .output("y"),
    );
    assert_eq!((p.node.as_str(), p.kind), ("add_0", ProblemKind::Shape));
    assert!(
        p.message
            .contains("constant integer arithmetic overflows i64 (9223372036854775807 + 1)"),
        "{}",
        p.message
    );
}

#[test]
fn an_input_beyond_4_gib_is_refused_naming_the_limit() {
    let m = || {
        Model::new(13)
            .input("x", &[1, 100000, 100000])
            .node("Relu", &["x"], "y", vec![])
            .output("y")
    };
    let p = only_problem(m());
    assert_eq!((p.node.as_str(), p.kind), ("x", ProblemKind::Limit));
    let err = m().convert().unwrap_err().to_string();
    assert!(
        err.contains(
            "input `x`: the input of shape [1, 100000, 100000] would need 40000000000 bytes but the model format addresses at most 4 GiB (u32 offsets); pass a smaller `--input-shape x=…`"
        ) && !err.contains("docs/ops.md"),
        "{err}"
    );
    // The same through `--input-shape`, and a zero dimension there.
    let small = || {
        Model::new(13)
            .input("x", &[1, 4])
            .node("Relu", &["x"], "y", vec![])
            .output("y")
    };
    let shapes = HashMap::from([("x".to_string(), vec![1, 100000, 100000])]);
    let err = small().convert_with(&shapes).unwrap_err().to_string();
    assert!(err.contains("at most 4 GiB (u32 offsets)"), "{err}");
    let shapes = HashMap::from([("x".to_string(), vec![1, 0])]);
    let err = small().convert_with(&shapes).unwrap_err().to_string();
    assert!(err.contains("has a zero dimension"), "{err}");
}

#[test]
fn an_arena_beyond_4_gib_is_refused_naming_the_limit() {
    // A 3 GiB input and a 3 GiB output: each fits u32 offsets, together they do not.
    let err = Model::new(13)
        .input("x", &[1, 3 << 28])
        .node("Relu", &["x"], "y", vec![])
        .output("y")
        .convert()
        .unwrap_err();
    let ConvertError::Unsupported { problems, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(problems[0].kind, ProblemKind::Limit);
    assert!(
        err.to_string().contains(
            "the arena would need 6442450944 bytes but the model format addresses at most 4 GiB (u32 offsets)"
        ),
        "{err}"
    );
}

#[test]
fn an_output_beyond_4_gib_is_refused_where_it_is_computed() {
    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 4])
            .init_i64("pads", &[4], &[0, 0, 0, 1 << 30])
            .node("Pad", &["x", "pads"], "y", vec![])
            .output("y"),
    );
    assert_eq!((p.node.as_str(), p.kind), ("pad_0", ProblemKind::Limit));
    assert!(
        p.message
            .contains("output `y` of shape [1, 1073741828] would need 4294967312 bytes"),
        "{}",
        p.message
    );
    // Pads that do not fit the format's u32 words at all.
    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 4])
            .init_i64("pads", &[4], &[0, 0, 0, i64::MAX])
            .node("Pad", &["x", "pads"], "y", vec![])
            .output("y"),
    );
    assert_eq!(p.kind, ProblemKind::Attribute);
}

#[test]
fn reshape_and_reductions_of_absurd_shapes_are_errors() {
    // A -1 next to dimensions whose product overflows.
    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 4])
            .init_i64("s", &[3], &[1 << 40, 1 << 40, -1])
            .node("Reshape", &["x", "s"], "y", vec![])
            .output("y"),
    );
    assert_eq!(p.kind, ProblemKind::Shape);
    // A rank-40 input cannot be reduced by an axis mask of the runtime.
    let p = only_problem(
        Model::new(13)
            .input("x", &[1; 40])
            .node("ReduceMean", &["x"], "y", vec![attr_ints("axes", &[35])])
            .output("y"),
    );
    assert!(p.message.contains("rank 40 above 6"), "{p}");
}

#[test]
fn dequantized_weights_and_a_per_tensor_bias_fold_to_f32() {
    use super::tensor::{INT8, INT32};
    // W int8 [3, 2] per column (axis 1): scales [0.5, 2], zero points [1, -1].
    // Bias int32 [2] with one scale: per tensor, whatever the default axis says.
    let converted = Model::new(13)
        .input("x", &[1, 3])
        .init_int("wq", &[3, 2], INT8, &[3, -1, 1, 0, -3, 2])
        .init_f32("ws", &[2], &[0.5, 2.0])
        .init_int("wz", &[2], INT8, &[1, -1])
        .init_int("bq", &[2], INT32, &[10, -20])
        .init_f32("bs", &[], &[0.25])
        .node(
            "DequantizeLinear",
            &["wq", "ws", "wz"],
            "w",
            vec![attr_int("axis", 1)],
        )
        .node("DequantizeLinear", &["bq", "bs"], "b", vec![])
        .node("MatMul", &["x", "w"], "t", vec![])
        .node("Add", &["t", "b"], "y", vec![])
        .output("y")
        .convert()
        .unwrap();
    // w = [[1, 0], [0, 2], [-2, 6]], b = [2.5, -5]
    let x = vec![1.0, 2.0, 3.0];
    let want = [1.0 - 6.0 + 2.5, 4.0 + 18.0 - 5.0];
    assert_close(&run_blob(&converted.blob, &[x])[0], &want, 1e-6);

    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 2])
            .init_int("bq", &[2], INT32, &[10, -20])
            .init_f32("bs", &[], &[0.25])
            .init_int("bz", &[0], INT32, &[])
            .node("DequantizeLinear", &["bq", "bs", "bz"], "b", vec![])
            .node("Add", &["x", "b"], "y", vec![])
            .output("y"),
    );
    assert!(
        p.message
            .contains("`x_zero_point` has 0 values but `x_scale` 1"),
        "{p}"
    );
}

#[test]
fn an_unreadable_initializer_is_one_problem_not_two() {
    // bool (ONNX type 9) is not read; its reader must not add "reads `mask`, which
    // no earlier node produces".
    let p = only_problem(
        Model::new(13)
            .input("x", &[1, 2])
            .init_int("mask", &[2], 9, &[1, 0])
            .node("Add", &["x", "mask"], "y", vec![])
            .output("y"),
    );
    assert_eq!((p.node.as_str(), p.op.as_str()), ("mask", "initializer"));
    assert!(p.message.contains("element type bool"), "{p}");
}
