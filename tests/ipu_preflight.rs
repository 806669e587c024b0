//! The NPU pre-flight checker: each rule tripped on its own by a small graph built in code, plus the real float
//! models of shared/models.

mod ort_support;

use ipuflow::ipu::preflight::{
    preflight, Device, Precision, Preflight, SupportTable, NOT_QUANTIZED_REASON,
};
use ipuflow::ipu::Target;
use ipuflow::onnx::proto::{
    tensor_shape_proto::{dimension::Value as DimValue, Dimension},
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use ipuflow::onnx::Model;
use ort_support::{attr_ints, common, f32_init};

const FLOAT: i32 = 1;
const INT8: i32 = 3;
const INT16: i32 = 5;
const INT64: i32 = 7;

// ---- builders --------------------------------------------------------------------------------------------------

enum Dm {
    F(i64),
    S(&'static str),
}

fn vi(name: &str, elem: i32, dims: Option<&[Dm]>) -> ValueInfoProto {
    let shape = dims.map(|d| TensorShapeProto {
        dim: d
            .iter()
            .map(|x| Dimension {
                denotation: None,
                value: Some(match x {
                    Dm::F(v) => DimValue::DimValue(*v),
                    Dm::S(s) => DimValue::DimParam(s.to_string()),
                }),
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape,
            })),
        }),
        ..Default::default()
    }
}

fn fixed(dims: &[i64]) -> Vec<Dm> {
    dims.iter().map(|&d| Dm::F(d)).collect()
}

fn init_int(name: &str, elem: i32, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    let width = match elem {
        INT16 => 2,
        INT64 => 8,
        _ => 1,
    };
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(elem),
        raw_data: Some(vec![0u8; (n as usize) * width]),
        ..Default::default()
    }
}

fn init_i64(name: &str, vals: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![vals.len() as i64],
        data_type: Some(INT64),
        int64_data: vals.to_vec(),
        ..Default::default()
    }
}

fn a_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(3),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: nodes,
            initializer: inits,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How to build a test CNN.
struct Spec<'a> {
    ops: &'a [&'a str],
    quantized: bool,
    scale: f32,
    zp_type: i32,
    input_dims: Option<Vec<Dm>>,
    resize_mode: &'a str,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            ops: &["Conv", "Relu", "Conv"],
            quantized: true,
            scale: 0.125,
            zp_type: INT8,
            input_dims: Some(fixed(&[1, 4, 8, 8])),
            resize_mode: "nearest",
        }
    }
}

/// x [1,4,8,8] → (Q → DQ) → op0 → (Q → DQ) → op1 ... (the last tensor is the graph output). Conv: 4→4 channels, 3x3, pad 1 (shape kept).
/// Shapes are left to the checker's propagation (no value_info).
fn cnn(spec: &Spec) -> ModelProto {
    let mut nodes = Vec::new();
    let mut inits = vec![
        f32_init("s", &[], &[spec.scale]),
        init_int("zp", spec.zp_type, &[]),
        init_int("zpw", INT8, &[]),
    ];
    let mut prev = "x".to_string();
    let qdq = |nodes: &mut Vec<NodeProto>, t: &str, tag: &str| -> String {
        if !spec.quantized {
            return t.to_string();
        }
        let q = format!("{t}_q");
        let dq = format!("{t}_dq");
        nodes.push(node(
            "QuantizeLinear",
            &format!("Q_{tag}"),
            &[t, "s", "zp"],
            &[&q],
            vec![],
        ));
        nodes.push(node(
            "DequantizeLinear",
            &format!("DQ_{tag}"),
            &[&q, "s", "zp"],
            &[&dq],
            vec![],
        ));
        dq
    };
    prev = qdq(&mut nodes, &prev, "in");
    for (k, op) in spec.ops.iter().enumerate() {
        let name = format!("{op}_{k}");
        let y = format!("y{k}");
        match *op {
            "Conv" => {
                let w = format!("w{k}");
                let w_in = if spec.quantized {
                    inits.push(init_int(&w, INT8, &[4, 4, 3, 3]));
                    let wdq = format!("{w}_dq");
                    nodes.push(node(
                        "DequantizeLinear",
                        &format!("DQ_{w}"),
                        &[&w, "s", "zpw"],
                        &[&wdq],
                        vec![],
                    ));
                    wdq
                } else {
                    inits.push(f32_init(&w, &[4, 4, 3, 3], &[0.0; 144]));
                    w
                };
                nodes.push(node(
                    "Conv",
                    &name,
                    &[&prev, &w_in],
                    &[&y],
                    vec![
                        attr_ints("pads", &[1, 1, 1, 1]),
                        attr_ints("kernel_shape", &[3, 3]),
                    ],
                ));
            }
            "Resize" => {
                if !inits.iter().any(|t| t.name.as_deref() == Some("scales1")) {
                    inits.push(f32_init("scales1", &[4], &[1.0, 1.0, 1.0, 1.0]));
                }
                nodes.push(node(
                    "Resize",
                    &name,
                    &[&prev, "", "scales1"],
                    &[&y],
                    vec![a_s("mode", spec.resize_mode)],
                ));
            }
            other => nodes.push(node(other, &name, &[&prev], &[&y], vec![])),
        }
        prev = qdq(&mut nodes, &y, &format!("{k}"));
    }
    model(
        nodes,
        inits,
        vec![vi("x", FLOAT, spec.input_dims.as_deref())],
        vec![vi(&prev, FLOAT, None)],
    )
}

fn run(m: &ModelProto, t: Target) -> Preflight {
    let p = preflight(m, t).unwrap();
    // Every result must serialize.
    let j = p.to_json();
    assert!(j.contains("\"coverage_percent\""));
    p
}

fn dev(p: &Preflight, name: &str) -> Device {
    p.node(name)
        .unwrap_or_else(|| panic!("no node {name}: {:#?}", p.nodes))
        .device
}

fn reason<'a>(p: &'a Preflight, name: &str) -> &'a str {
    &p.node(name).unwrap().reason
}

// ---- rules -----------------------------------------------------------------------------------------------------

#[test]
fn qdq_cnn_goes_wholly_to_the_npu() {
    for t in [Target::X1, Target::X2] {
        let p = run(&cnn(&Spec::default()), t);
        assert!(p.quantized);
        assert_eq!(p.cpu_nodes, 0, "{t}: {}", p.to_json());
        assert_eq!(p.subgraphs.len(), 1);
        assert_eq!(p.subgraphs[0].node_indices.len(), p.total_nodes);
        assert_eq!(p.coverage_percent, 100.0);
        assert_eq!(p.coverage_excluding_qdq_percent, 100.0);
        assert!(p
            .nodes
            .iter()
            .all(|n| n.supported_if_quantized && n.precision == Precision::Int8));
        assert!(reason(&p, "Conv_0").contains("support table"));
        assert!(p.model_reasons.is_empty());
    }
}

#[test]
fn op_missing_from_the_table_goes_to_cpu() {
    let m = cnn(&Spec {
        ops: &["Conv", "Sigmoid", "Conv"],
        ..Default::default()
    });
    let p = run(&m, Target::X2);
    assert_eq!(dev(&p, "Sigmoid_1"), Device::Cpu);
    assert!(
        reason(&p, "Sigmoid_1").contains("Sigmoid is not in the NPU support table for X2 int8"),
        "{}",
        reason(&p, "Sigmoid_1")
    );
    assert_eq!(dev(&p, "Conv_0"), Device::Npu);
    assert_eq!(dev(&p, "Conv_2"), Device::Npu);
    // The DQ feeding the CPU Sigmoid stays on CPU; the Q after Conv_0 is on the NPU.
    assert_eq!(dev(&p, "DQ_0"), Device::Cpu);
    assert_eq!(dev(&p, "Q_0"), Device::Npu);
    assert_eq!(
        dev(&p, "Q_1"),
        Device::Npu,
        "quantizes Sigmoid's output for Conv_2 on the NPU"
    );
    assert_eq!(p.subgraphs.len(), 2, "{:#?}", p.subgraphs);
    assert!(p.coverage_excluding_qdq_percent > 66.0 && p.coverage_excluding_qdq_percent < 67.0);
    for absent in ["ConvTranspose", "Split", "Gather"] {
        let m = cnn(&Spec {
            ops: &["Conv", absent, "Conv"],
            ..Default::default()
        });
        let p = run(&m, Target::X2);
        assert_eq!(dev(&p, &format!("{absent}_1")), Device::Cpu, "{absent}");
    }
}

#[test]
fn non_onnx_domain_goes_to_cpu() {
    let mut m = cnn(&Spec {
        ops: &["Conv", "Relu", "Conv"],
        ..Default::default()
    });
    let g = m.graph.as_mut().unwrap();
    g.node
        .iter_mut()
        .find(|n| n.name.as_deref() == Some("Relu_1"))
        .unwrap()
        .domain = Some("com.example".into());
    let p = run(&m, Target::X2);
    assert_eq!(dev(&p, "Relu_1"), Device::Cpu);
    assert!(reason(&p, "Relu_1").contains("com.example::Relu"));
}

#[test]
fn linear_resize_goes_to_cpu_nearest_does_not() {
    let p = run(
        &cnn(&Spec {
            ops: &["Conv", "Resize", "Conv"],
            resize_mode: "linear",
            ..Default::default()
        }),
        Target::X2,
    );
    assert_eq!(dev(&p, "Resize_1"), Device::Cpu);
    assert!(
        reason(&p, "Resize_1").contains("mode=linear"),
        "{}",
        reason(&p, "Resize_1")
    );
    let p = run(
        &cnn(&Spec {
            ops: &["Conv", "Resize", "Conv"],
            resize_mode: "nearest",
            ..Default::default()
        }),
        Target::X2,
    );
    assert_eq!(
        dev(&p, "Resize_1"),
        Device::Npu,
        "{}",
        reason(&p, "Resize_1")
    );
}

#[test]
fn dynamic_shapes_go_to_cpu() {
    let p = run(
        &cnn(&Spec {
            input_dims: Some(vec![Dm::S("N"), Dm::F(4), Dm::F(8), Dm::F(8)]),
            ..Default::default()
        }),
        Target::X2,
    );
    assert_eq!(dev(&p, "Conv_0"), Device::Cpu);
    assert!(
        reason(&p, "Conv_0").contains("dynamic shape [N,4,8,8]"),
        "{}",
        reason(&p, "Conv_0")
    );
    assert_eq!(p.npu_nodes, 0);
}

#[test]
fn batch_above_one_goes_to_cpu() {
    let p = run(
        &cnn(&Spec {
            input_dims: Some(fixed(&[2, 4, 8, 8])),
            ..Default::default()
        }),
        Target::X2,
    );
    assert_eq!(dev(&p, "Conv_0"), Device::Cpu);
    assert!(
        reason(&p, "Conv_0").contains("batch 2 > 1"),
        "{}",
        reason(&p, "Conv_0")
    );
}

#[test]
fn unknown_shapes_are_said_so() {
    let p = run(
        &cnn(&Spec {
            input_dims: None,
            ..Default::default()
        }),
        Target::X2,
    );
    assert_eq!(dev(&p, "Conv_0"), Device::Cpu);
    let r = reason(&p, "Conv_0");
    assert!(
        r.contains("'x_dq'") && r.contains("unknown") && r.contains("run shape inference"),
        "{r}"
    );
}

#[test]
fn unquantized_float_input_in_an_int8_flow_goes_to_cpu() {
    // Conv_0 → Q → DQ → Add(dq, x): Add's second input is the float graph input, not from a DequantizeLinear.
    let mut m = cnn(&Spec {
        ops: &["Conv", "Conv"],
        ..Default::default()
    });
    let g = m.graph.as_mut().unwrap();
    g.node
        .push(node("Add", "add_float", &["y1_dq", "x"], &["sum"], vec![]));
    g.output = vec![vi("sum", FLOAT, None)];
    let p = run(&m, Target::X2);
    assert_eq!(dev(&p, "add_float"), Device::Cpu);
    assert!(
        reason(&p, "add_float").contains("input 'x' is an unquantized float tensor"),
        "{}",
        reason(&p, "add_float")
    );
    assert_eq!(dev(&p, "Conv_0"), Device::Npu);
    // A float weight straight into a Conv is flagged too.
    let mut m = cnn(&Spec {
        ops: &["Conv", "Conv"],
        ..Default::default()
    });
    let g = m.graph.as_mut().unwrap();
    g.initializer
        .push(f32_init("wf", &[4, 4, 3, 3], &[0.0; 144]));
    g.node
        .iter_mut()
        .find(|n| n.name.as_deref() == Some("Conv_1"))
        .unwrap()
        .input[1] = "wf".into();
    let p = run(&m, Target::X2);
    assert!(
        reason(&p, "Conv_1").contains("weight 'wf' is an unquantized float initializer"),
        "{}",
        reason(&p, "Conv_1")
    );
}

#[test]
fn non_power_of_two_scale_goes_to_cpu_on_x1_only() {
    let m = cnn(&Spec {
        scale: 0.3,
        ..Default::default()
    });
    let p = run(&m, Target::X1);
    assert_eq!(dev(&p, "Conv_0"), Device::Cpu);
    assert!(
        reason(&p, "Conv_0").contains("is not a power of two"),
        "{}",
        reason(&p, "Conv_0")
    );
    assert!(reason(&p, "Q_in").contains("not a power of two"));
    assert_eq!(p.npu_nodes, 0);
    let p = run(&m, Target::X2);
    assert_eq!(p.cpu_nodes, 0, "X2 takes float scales: {}", p.to_json());
}

#[test]
fn int16_is_an_x2_precision() {
    let m = cnn(&Spec {
        zp_type: INT16,
        ..Default::default()
    });
    let p = run(&m, Target::X2);
    assert_eq!(p.cpu_nodes, 0, "{}", p.to_json());
    assert_eq!(p.node("Conv_0").unwrap().precision, Precision::Int16);
    let p = run(&m, Target::X1);
    assert_eq!(dev(&p, "Conv_0"), Device::Cpu);
    assert!(
        reason(&p, "Conv_0").contains("target X1 has no int16 op table"),
        "{}",
        reason(&p, "Conv_0")
    );
}

#[test]
fn fewer_than_two_convs_sends_everything_to_cpu() {
    let p = run(
        &cnn(&Spec {
            ops: &["Conv", "Relu"],
            ..Default::default()
        }),
        Target::X2,
    );
    assert_eq!(p.npu_nodes, 0);
    assert!(
        p.model_reasons[0].contains("1 Conv node(s)"),
        "{:?}",
        p.model_reasons
    );
    assert!(p
        .nodes
        .iter()
        .all(|n| n.reason.contains("minimum_num_of_conv") && !n.supported_if_quantized));
    assert!(p.subgraphs.is_empty());
}

#[test]
fn more_than_max_subgraphs_sends_everything_to_cpu() {
    let build = |convs: usize| {
        let mut ops = Vec::new();
        for k in 0..convs {
            ops.push("Conv");
            if k + 1 < convs {
                ops.push("Sigmoid");
            }
        }
        cnn(&Spec {
            ops: &ops,
            ..Default::default()
        })
    };
    let p = run(&build(32), Target::X2);
    assert_eq!(p.subgraphs.len(), 32);
    assert!(p.model_reasons.is_empty());
    let p = run(&build(33), Target::X2);
    assert_eq!(p.npu_nodes, 0);
    assert!(
        p.model_reasons[0].contains("33 subgraphs, more than 32"),
        "{:?}",
        p.model_reasons
    );
    assert!(p.subgraphs.is_empty());
}

#[test]
fn float_model_is_all_cpu_but_says_what_quantization_would_bring() {
    let p = run(
        &cnn(&Spec {
            ops: &["Conv", "Relu", "Sigmoid", "Conv"],
            quantized: false,
            ..Default::default()
        }),
        Target::X2,
    );
    assert!(!p.quantized);
    assert_eq!(p.npu_nodes, 0);
    assert_eq!(p.model_reasons[0], NOT_QUANTIZED_REASON);
    for n in &p.nodes {
        assert_eq!(n.device, Device::Cpu);
        assert!(n.reason.starts_with(NOT_QUANTIZED_REASON), "{}", n.reason);
        assert_eq!(n.precision, Precision::Float);
    }
    assert!(p.node("Conv_0").unwrap().supported_if_quantized);
    assert!(p.node("Relu_1").unwrap().supported_if_quantized);
    assert!(!p.node("Sigmoid_2").unwrap().supported_if_quantized);
    assert!(
        reason(&p, "Sigmoid_2").contains("if quantized: op Sigmoid is not in"),
        "{}",
        reason(&p, "Sigmoid_2")
    );
    assert_eq!(p.subgraphs_if_quantized.len(), 2);
    assert!(p.subgraphs.is_empty());
}

#[test]
fn unnamed_nodes_constants_and_missing_graph() {
    let mut m = cnn(&Spec::default());
    let g = m.graph.as_mut().unwrap();
    g.node[0].name = None;
    // A Constant node providing the Resize-free graph with nothing; it is skipped and noted.
    g.node.insert(
        0,
        NodeProto {
            op_type: Some("Constant".into()),
            output: vec!["c0".into()],
            attribute: vec![AttributeProto {
                name: Some("value".into()),
                t: Some(init_i64("", &[1]).into()),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let p = run(&m, Target::X2);
    assert!(
        p.nodes.iter().any(|n| n.name == "QuantizeLinear#1"),
        "{:?}",
        p.nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
    );
    assert!(p.notes.iter().any(|n| n.contains("Constant")));
    assert_eq!(p.total_nodes, m.graph.as_ref().unwrap().node.len() - 1);
    let e = preflight(&ModelProto::default(), Target::X2).unwrap_err();
    assert_eq!(e.kind(), ipuflow::ErrorKind::ModelInvalid);
}

#[test]
fn shapes_propagate_through_layout_ops() {
    // Conv → Reshape(const) → Transpose → Flatten → Gemm, float model; all shapes must be known so the only
    // reason is "not quantized".
    let m = model(
        vec![
            node(
                "Conv",
                "c1",
                &["x", "w"],
                &["a"],
                vec![
                    attr_ints("strides", &[2, 2]),
                    attr_ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            node(
                "Conv",
                "c2",
                &["a", "w"],
                &["b"],
                vec![a_s("auto_pad", "SAME_UPPER")],
            ),
            node(
                "MaxPool",
                "mp",
                &["b"],
                &["c"],
                vec![
                    attr_ints("kernel_shape", &[2, 2]),
                    attr_ints("strides", &[2, 2]),
                ],
            ),
            node("Reshape", "rs", &["c", "shape"], &["d"], vec![]),
            node(
                "Transpose",
                "tr",
                &["d"],
                &["e"],
                vec![attr_ints("perm", &[0, 2, 1])],
            ),
            node("Flatten", "fl", &["e"], &["f"], vec![]),
            node("Gemm", "gm", &["f", "wg"], &["g"], vec![]),
            node("GlobalAveragePool", "gap", &["b"], &["h"], vec![]),
        ],
        vec![
            f32_init("w", &[4, 4, 3, 3], &[0.0; 144]),
            init_i64("shape", &[1, 4, -1]),
            f32_init("wg", &[16, 10], &[0.0; 160]),
        ],
        vec![vi("x", FLOAT, Some(&fixed(&[1, 4, 16, 16])))],
        vec![vi("g", FLOAT, None), vi("h", FLOAT, None)],
    );
    let p = run(&m, Target::X2);
    for n in &p.nodes {
        assert!(n.supported_if_quantized, "{}: {}", n.name, n.reason);
    }
}

#[test]
fn custom_tables_are_validated() {
    assert!(SupportTable::from_json("{}").is_err());
    let mut t: serde_json::Value =
        serde_json::from_str(ipuflow::ipu::preflight::BUILTIN_TABLE_JSON).unwrap();
    t["targets"]["X3"] = t["targets"]["X2"].clone();
    assert!(SupportTable::from_json(&t.to_string()).is_err());
    let mut t: serde_json::Value =
        serde_json::from_str(ipuflow::ipu::preflight::BUILTIN_TABLE_JSON).unwrap();
    t["schema"] = 2.into();
    assert_eq!(
        SupportTable::from_json(&t.to_string()).unwrap_err().kind(),
        ipuflow::ErrorKind::Unsupported
    );
    // A table that lacks Relu sends Relu to CPU.
    let mut t: serde_json::Value =
        serde_json::from_str(ipuflow::ipu::preflight::BUILTIN_TABLE_JSON).unwrap();
    let ops = t["targets"]["X2"]["precisions"]["int8"]["ops"]
        .as_array_mut()
        .unwrap();
    ops.retain(|o| o != "Relu");
    let table = SupportTable::from_json(&t.to_string()).unwrap();
    let p =
        ipuflow::ipu::preflight::preflight_with_table(&cnn(&Spec::default()), Target::X2, &table)
            .unwrap();
    assert_eq!(dev(&p, "Relu_1"), Device::Cpu);
}

// ---- real models -----------------------------------------------------------------------------------------------

fn shared_model(name: &str) -> Option<ModelProto> {
    let path = common::shared(&format!("models/{name}"))?;
    Some(Model::load_file(&path).unwrap().proto().clone())
}

#[test]
fn real_float_models_are_cpu_with_quantization_outlook() {
    for (file, fixed_input) in [
        ("blazeface-short-range.onnx", true),
        ("hand-landmark-lite.onnx", true),
        ("efficientnet-lite0.onnx", false),
    ] {
        let Some(m) = shared_model(file) else {
            continue;
        };
        for t in [Target::X1, Target::X2] {
            let p = run(&m, t);
            assert!(!p.quantized, "{file}");
            assert_eq!(p.npu_nodes, 0);
            assert!(p
                .nodes
                .iter()
                .all(|n| n.device == Device::Cpu && n.reason.starts_with(NOT_QUANTIZED_REASON)));
            let would = p.nodes.iter().filter(|n| n.supported_if_quantized).count();
            println!(
                "{file} {t}: {} nodes, {would} supported if quantized, {} subgraphs if quantized",
                p.total_nodes,
                p.subgraphs_if_quantized.len()
            );
            let convs = p
                .nodes
                .iter()
                .filter(|n| n.op_type == "Conv")
                .collect::<Vec<_>>();
            assert!(convs.len() >= 2);
            if fixed_input {
                // Fixed [1,3,H,W] inputs: most Convs would reach the NPU once quantized.
                let ok = convs.iter().filter(|n| n.supported_if_quantized).count();
                assert!(
                    ok * 2 > convs.len(),
                    "{file}: {ok}/{} convs: {}",
                    convs.len(),
                    convs[0].reason
                );
            } else {
                // EfficientNet-Lite0's batch is dynamic ("N"): the outlook must say so.
                assert!(
                    convs.iter().all(|n| !n.supported_if_quantized
                        && (n.reason.contains("dynamic shape") || n.reason.contains("is unknown"))),
                    "{}",
                    convs[0].reason
                );
                assert!(p
                    .nodes
                    .iter()
                    .any(|n| n.reason.contains("dynamic shape [N,3,224,224]")));
                // Fix the batch to 1 (what a user is told to do) and the outlook turns: the Convs would be taken.
                let mut fixed_m = m.clone();
                let input = &mut fixed_m.graph.as_mut().unwrap().input[0];
                if let Some(type_proto::Value::TensorType(tt)) =
                    input.r#type.as_mut().and_then(|t| t.value.as_mut())
                {
                    tt.shape.as_mut().unwrap().dim[0].value = Some(DimValue::DimValue(1));
                }
                let p1 = run(&fixed_m, t);
                let convs1: Vec<_> = p1.nodes.iter().filter(|n| n.op_type == "Conv").collect();
                let ok = convs1.iter().filter(|n| n.supported_if_quantized).count();
                println!(
                    "{file} {t} with batch 1: {ok}/{} Convs supported if quantized, {} subgraphs",
                    convs1.len(),
                    p1.subgraphs_if_quantized.len()
                );
                assert_eq!(
                    ok,
                    convs1.len(),
                    "{}",
                    convs1
                        .iter()
                        .find(|n| !n.supported_if_quantized)
                        .map_or("", |n| n.reason.as_str())
                );
            }
        }
    }
}

#[test]
fn hostile_values_give_answers_not_panics() {
    let big = i64::MAX;
    let m = model(
        vec![
            node(
                "Conv",
                "c1",
                &["x", "w"],
                &["a"],
                vec![
                    attr_ints("strides", &[big, 0]),
                    attr_ints("pads", &[big, big, -big, 1]),
                ],
            ),
            node(
                "Conv",
                "c2",
                &["a", "w"],
                &["b"],
                vec![attr_ints("dilations", &[big, big])],
            ),
            node(
                "MaxPool",
                "mp",
                &["x"],
                &["c"],
                vec![
                    attr_ints("kernel_shape", &[big, -1]),
                    attr_ints("strides", &[-5, big]),
                ],
            ),
            node(
                "Slice",
                "sl",
                &["x", "st", "en", "ax", "steps"],
                &["d"],
                vec![],
            ),
            node("Reshape", "rs", &["x", "huge"], &["e"], vec![]),
            node("Pad", "pd", &["x", "pads"], &["f"], vec![]),
            node(
                "Flatten",
                "fl",
                &["x"],
                &["g"],
                vec![AttributeProto {
                    name: Some("axis".into()),
                    i: Some(big),
                    ..Default::default()
                }],
            ),
            node(
                "Transpose",
                "tr",
                &["x"],
                &["h"],
                vec![attr_ints("perm", &[-big, big, 0, 1])],
            ),
            node(
                "Concat",
                "cc",
                &["x", "x"],
                &["i"],
                vec![AttributeProto {
                    name: Some("axis".into()),
                    i: Some(-big),
                    ..Default::default()
                }],
            ),
            // Folding with hostile constants.
            node("ConstantOfShape", "cos", &["huge"], &["j"], vec![]),
            node(
                "Slice",
                "sl2",
                &["st", "st", "en", "z1", "steps"],
                &["k"],
                vec![],
            ),
            node("Reshape", "rs2", &["huge", "huge"], &["l"], vec![]),
            node("Unsqueeze", "us", &["st", "huge"], &["m"], vec![]),
            node("", "", &[], &[], vec![]),
        ],
        vec![
            f32_init("w", &[4, 4, 3, 3], &[0.0; 144]),
            init_i64("st", &[-big, big, i64::MIN, 0]),
            init_i64("en", &[big, -big, big, i64::MIN]),
            init_i64("ax", &[0, 1, 2, 3]),
            init_i64("steps", &[big, -big, i64::MIN + 1, 1]),
            init_i64("huge", &[big, big, -7, 0]),
            init_i64("pads", &[big, big, big, big, big, big, big, big]),
            init_i64("z1", &[0]),
        ],
        vec![vi(
            "x",
            FLOAT,
            Some(&[Dm::F(big), Dm::F(-3), Dm::F(big), Dm::F(i64::MIN)]),
        )],
        vec![vi("b", FLOAT, None)],
    );
    for t in [Target::X1, Target::X2] {
        let p = run(&m, t);
        assert_eq!(p.npu_nodes, 0);
    }
}
