//! One node-count definition and one subgraph definition (issue 11 item 4): `inspect`, `check` and `run` count the
//! same nodes (Constant and constant-only nodes left out, saying which graph), and the placement line counts
//! subgraphs as the pre-flight does for the 32-subgraph rule: maximal connected groups of nodes on one device, not
//! ONNX Runtime's one-node CPU "subgraphs" ("No. of Subgraphs : CPU 1084").

mod ort_support;

use std::path::Path;

use ipuflow::ipu::preflight::{count_nodes, device_subgraphs, CountedGraph, GroupNode};
use ipuflow::ipu::report::{AssignedNode, AssignedSubgraph, EpAssignment, EpReport};
use ipuflow::onnx::proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};
use ort_support::cli::{expect, text};
use ort_support::{model, node, vi, D};

fn cpu(names: &[&str]) -> AssignedSubgraph {
    AssignedSubgraph {
        ep_name: "CPUExecutionProvider".into(),
        nodes: names
            .iter()
            .map(|n| AssignedNode {
                name: n.to_string(),
                op_type: "Relu".into(),
                ..Default::default()
            })
            .collect(),
    }
}

fn npu(names: &[&str]) -> AssignedSubgraph {
    AssignedSubgraph {
        ep_name: "VitisAIExecutionProvider".into(),
        ..cpu(names)
    }
}

/// a -> b -> c -> d -> e, every node a Relu named after its output.
fn chain() -> ModelProto {
    let names = ["a", "b", "c", "d", "e"];
    let mut g = GraphProto::default();
    let mut prev = "x".to_string();
    for n in names {
        let mut nd = node("Relu", &[&prev], &[n]);
        nd.name = Some(n.into());
        g.node.push(nd);
        prev = n.to_string();
    }
    ModelProto {
        graph: Some(g),
        ..Default::default()
    }
}

#[test]
fn subgraphs_are_connected_groups_on_one_device() {
    // ONNX Runtime reports one CPU subgraph per node: joined when connected.
    let mut a = EpAssignment {
        subgraphs: vec![cpu(&["a"]), cpu(&["b"]), npu(&["c", "d"]), cpu(&["e"])],
    };
    let unconnected = EpReport::from_assignment(&a);
    assert!(
        unconnected
            .summary_line()
            .ends_with("No. of Subgraphs : CPU 3 NPU 1"),
        "{}",
        unconnected.summary_line()
    );
    assert!(unconnected
        .subgraph_caveat()
        .contains("5 node(s) with unknown tensors"));
    a.fill_io_from_model(&chain());
    let r = EpReport::from_assignment(&a);
    assert_eq!(r.subgraph_caveat(), "");
    assert_eq!(
        r.summary_line(),
        "No. of Operators : CPU 3 NPU 2 | No. of Subgraphs : CPU 2 NPU 1"
    );
    let sg: Vec<usize> = r.node_stat.iter().map(|n| n.subgraph).collect();
    assert_eq!(sg, vec![0, 0, 1, 1, 2]);
    // The same definition as the pre-flight's, called directly.
    let ins = [vec!["x".to_string()], vec!["a".into()], vec!["b".into()]];
    let outs = [vec!["a".to_string()], vec!["b".into()], vec!["c".into()]];
    let nodes: Vec<GroupNode<'_, u8>> = (0..3)
        .map(|i| GroupNode {
            device: [0, 1, 0][i],
            unit: None,
            inputs: &ins[i],
            outputs: &outs[i],
        })
        .collect();
    assert_eq!(device_subgraphs(&nodes), vec![vec![0], vec![1], vec![2]]);
}

#[test]
fn a_node_onnx_runtime_fused_away_does_not_split_the_subgraph() {
    // The file has a -> b -> c -> d -> e; ONNX Runtime fused b into a and removed it.
    let mut a = EpAssignment {
        subgraphs: vec![cpu(&["a"]), cpu(&["c"]), cpu(&["d"]), cpu(&["e"])],
    };
    a.fill_io_from_model(&chain());
    assert_eq!(a.subgraphs[1].nodes[0].inputs, vec!["a".to_string()]);
    let r = EpReport::from_assignment(&a);
    assert!(
        r.summary_line().ends_with("No. of Subgraphs : CPU 1"),
        "{}",
        r.summary_line()
    );
}

/// x [1,4] -> Add(x, Constant c) -> Relu -> Mul(., Shape-free constant chain) -> y: three Constant-related nodes
/// ONNX Runtime folds, two that compute.
fn constant_model() -> Vec<u8> {
    let t = |name: &str| TensorProto {
        name: Some(name.into()),
        dims: vec![1, 4],
        data_type: Some(1),
        float_data: vec![1.0, -2.0, 3.0, -4.0],
        ..Default::default()
    };
    let constant = |out: &str| {
        let mut n = node("Constant", &[], &[out]);
        n.attribute.push(AttributeProto {
            name: Some("value".into()),
            r#type: Some(4),
            t: Some(Box::new(t(out))),
            ..Default::default()
        });
        n
    };
    model(GraphProto {
        name: Some("consts".into()),
        node: vec![
            constant("c"),
            constant("k"),
            node("Neg", &["k"], &["nk"]),
            node("Add", &["x", "c"], &["s"]),
            node("Relu", &["s"], &["r"]),
            NodeProto {
                name: Some("mul".into()),
                ..node("Mul", &["r", "nk"], &["y"])
            },
        ],
        input: vec![vi("x", 1, &[D::Fixed(1), D::Fixed(4)])],
        output: vec![vi("y", 1, &[D::Fixed(1), D::Fixed(4)])],
        ..Default::default()
    })
}

#[test]
fn inspect_check_and_run_count_the_same_nodes() {
    let dir = std::env::temp_dir().join(format!("ipuflow-nodecount-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m = dir.join("consts.onnx");
    std::fs::write(&m, constant_model()).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let proto = ipuflow::onnx::Model::load_file(&m).unwrap();
    let c = count_nodes(proto.proto()).unwrap();
    assert_eq!((c.nodes, c.constant_nodes, c.folded_nodes), (3, 2, 1));
    assert_eq!(c.graph, CountedGraph::File);

    let want = "3 nodes of the file's main graph (2 Constant and 1 constant-only nodes not counted";
    let t = text(&expect(&["inspect", &s(&m)], 0).stdout);
    assert!(
        t.contains("nodes     6 in the file's main graph; counted: ") && t.contains(want),
        "{t}"
    );
    let t = text(&expect(&["check", &s(&m)], 0).stdout);
    assert!(
        t.contains(&format!("counted   {want}")) && t.contains("of 3 nodes"),
        "{t}"
    );
    let v: serde_json::Value = serde_json::from_slice(
        &expect(
            &["run", &s(&m), "--device", "cpu", "--repeat", "1", "--json"],
            0,
        )
        .stdout,
    )
    .unwrap();
    let session = &v["session"];
    assert_eq!(session["total_nodes"], 3, "{v}");
    assert_eq!(session["node_count"]["graph"], "onnx_runtime");
    assert_eq!(session["subgraphs"], 1, "{v}");
    assert!(
        session["operators"]
            .as_str()
            .unwrap()
            .ends_with("No. of Subgraphs : CPU 1"),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
