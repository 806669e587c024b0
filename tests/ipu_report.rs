//! The vitisai_ep_report.json-shaped report built from ONNX Runtime's EP graph-assignment info.

use ipuflow::ipu::preflight::preflight;
use ipuflow::ipu::report::{
    compare, device_name, format_op, AssignedNode, AssignedSubgraph, EpAssignment, EpReport,
};
use ipuflow::ipu::Target;
use ipuflow::onnx::proto::{GraphProto, ModelProto, NodeProto};

fn n(name: &str, domain: &str, op: &str) -> AssignedNode {
    AssignedNode {
        name: name.into(),
        domain: domain.into(),
        op_type: op.into(),
        ..Default::default()
    }
}

fn sample() -> EpAssignment {
    EpAssignment {
        subgraphs: vec![
            AssignedSubgraph {
                ep_name: "CPUExecutionProvider".into(),
                nodes: vec![n("q_in", "", "QuantizeLinear")],
            },
            AssignedSubgraph {
                ep_name: "VitisAIExecutionProvider".into(),
                nodes: vec![
                    n("conv1", "", "Conv"),
                    n("relu1", "", "Relu"),
                    n("conv2", "ai.onnx", "Conv"),
                ],
            },
            AssignedSubgraph {
                ep_name: "CPUExecutionProvider".into(),
                nodes: vec![
                    n("sig", "", "Sigmoid"),
                    n("fused", "com.microsoft", "QLinearAdd"),
                ],
            },
        ],
    }
}

#[test]
fn device_stat_has_the_vitisai_shape() {
    let r = EpReport::from_assignment(&sample());
    let names: Vec<&str> = r.device_stat.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["all", "CPU", "NPU"]);
    assert_eq!(r.node_num("all"), 6);
    assert_eq!(r.node_num("CPU"), 3);
    assert_eq!(r.node_num("NPU"), 3);
    assert_eq!(
        r.device("NPU").unwrap().supported_op_type,
        ["::Conv", "::Relu"]
    );
    assert_eq!(
        r.device("CPU").unwrap().supported_op_type,
        ["::QuantizeLinear", "::Sigmoid", "com.microsoft::QLinearAdd"]
    );
    assert_eq!(r.device("all").unwrap().supported_op_type.len(), 5);
    assert_eq!(r.npu_coverage_percent(), 50.0);
    assert_eq!(r.subgraph_stat.len(), 3);
    let conv = r.node_stat.iter().find(|x| x.name == "conv1").unwrap();
    assert_eq!(
        (conv.op.as_str(), conv.device.as_str(), conv.subgraph),
        ("::Conv", "NPU", 1)
    );
    assert_eq!(
        r.summary_line(),
        "No. of Operators : CPU 3 NPU 3 | No. of Subgraphs : CPU 2 NPU 1"
    );

    // JSON keys are the EP's.
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let ds = v["deviceStat"].as_array().unwrap();
    assert_eq!(ds[0]["name"], "all");
    assert_eq!(ds[0]["nodeNum"], 6);
    assert_eq!(ds[2]["supportedOpType"][0], "::Conv");
    assert_eq!(v["nodeStat"].as_array().unwrap().len(), 6);
    // And it reads back.
    assert_eq!(EpReport::from_json(&r.to_json()).unwrap(), r);
}

#[test]
fn empty_and_other_eps() {
    let r = EpReport::from_assignment(&EpAssignment::default());
    assert_eq!(r.device_stat.len(), 3);
    assert_eq!(r.node_num("all"), 0);
    assert_eq!(r.npu_coverage_percent(), 0.0);
    let a = EpAssignment {
        subgraphs: vec![AssignedSubgraph {
            ep_name: "DmlExecutionProvider".into(),
            nodes: vec![n("a", "", "Add")],
        }],
    };
    let r = EpReport::from_assignment(&a);
    assert_eq!(r.device_stat.last().unwrap().name, "Dml");
    assert_eq!(device_name("VitisAIExecutionProvider"), "NPU");
    assert_eq!(device_name("CPUExecutionProvider"), "CPU");
    assert_eq!(device_name("ExecutionProvider"), "ExecutionProvider");
    assert_eq!(format_op("", "Conv"), "::Conv");
    assert_eq!(
        format_op("com.microsoft", "QLinearConv"),
        "com.microsoft::QLinearConv"
    );
}

#[test]
fn reads_an_ep_written_report_with_the_old_dpu_name() {
    let text = r#"{
      "deviceStat": [
        {"name": "all", "nodeNum": 400, "supportedOpType": ["::Conv", "::DequantizeLinear"]},
        {"name": "CPU", "nodeNum": 2, "supportedOpType": ["::DequantizeLinear"]},
        {"name": "DPU", "nodeNum": 398, "supportedOpType": ["::Conv"]}
      ],
      "somethingNewer": {"x": 1}
    }"#;
    let r = EpReport::from_json(text).unwrap();
    assert_eq!(r.node_num("NPU"), 398);
    assert_eq!(r.npu_coverage_percent(), 99.5);
    assert!(EpReport::from_json("{not json").is_err());
    assert!(EpReport::from_json("{}").is_err(), "deviceStat is required");
}

#[test]
fn fills_io_and_compares_with_the_preflight() {
    let node = |op: &str, name: &str, i: &[&str], o: &[&str]| NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: i.iter().map(|s| s.to_string()).collect(),
        output: o.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let m = ModelProto {
        graph: Some(GraphProto {
            node: vec![
                node("Relu", "relu1", &["x"], &["y"]),
                node("Sigmoid", "sig", &["y"], &["z"]),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut a = EpAssignment {
        subgraphs: vec![
            AssignedSubgraph {
                ep_name: "VitisAIExecutionProvider".into(),
                nodes: vec![n("relu1", "", "Relu")],
            },
            AssignedSubgraph {
                ep_name: "CPUExecutionProvider".into(),
                nodes: vec![n("sig", "", "Sigmoid"), n("gone", "", "Add")],
            },
        ],
    };
    a.fill_io_from_model(&m);
    assert_eq!(a.subgraphs[0].nodes[0].inputs, ["x"]);
    assert_eq!(a.subgraphs[1].nodes[0].outputs, ["z"]);
    assert!(a.subgraphs[1].nodes[1].inputs.is_empty());
    let r = EpReport::from_assignment(&a);
    assert_eq!(r.node_stat[0].outputs, ["y"]);
    // The float model is predicted all-CPU; the EP "ran" relu1 on the NPU: one disagreement.
    let p = preflight(&m, Target::X2).unwrap();
    let d = compare(&p, &r);
    assert_eq!(d.len(), 1);
    assert_eq!(
        (
            d[0].name.as_str(),
            d[0].predicted.as_str(),
            d[0].actual.as_str()
        ),
        ("relu1", "CPU", "NPU")
    );
}
