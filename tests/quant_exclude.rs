//! `--exclude` beyond exact names and op types (issue 11): node-name glob patterns and `start..end` subgraphs, in
//! the library's configuration (quantize_graph on a small real graph) and on the command line (named errors before
//! calibration).

use ipuflow::onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto, ValueInfoProto};
use ipuflow::quant::{
    quantize_graph, Calibration, ExcludeSubgraph, Preset, QuantConfig, QuantReport, TensorStats,
};
use ipuflow::ErrorKind;

fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dims: Vec<D> = dims.iter().map(|&d| D::Fixed(d)).collect();
    ort_support::vi(name, 1, &dims)
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        ..ort_support::node(op, inputs, &[output])
    }
}

/// x -> backbone/conv -> backbone/relu -> head/conv -> post/add -> post/mul -> y, with a side branch
/// backbone/relu -> side/conv -> post/add (so the subgraph head/conv..post/mul leaves side/conv out).
fn model() -> ModelProto {
    let w: Vec<f32> = (0..4).map(|i| 0.25 * i as f32 - 0.3).collect();
    let nodes = vec![
        node("Conv", "backbone/conv", &["x", "W1", "B1"], "a"),
        node("Relu", "backbone/relu", &["a"], "r"),
        node("Conv", "head/conv", &["r", "W2", "B2"], "h"),
        node("Conv", "side/conv", &["r", "W3", "B3"], "s"),
        node("Add", "post/add", &["h", "s"], "p"),
        node("Mul", "post/mul", &["p", "K"], "y"),
    ];
    let mut inits = Vec::new();
    for k in 1..=3 {
        inits.push(f32_init(&format!("W{k}"), &[2, 2, 1, 1], &w));
        inits.push(f32_init(&format!("B{k}"), &[2], &[0.1, -0.2]));
    }
    inits.push(f32_init("K", &[], &[0.5]));
    ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            node: nodes,
            name: Some("g".into()),
            initializer: inits,
            input: vec![vi("x", &[1, 2, 4, 4])],
            output: vec![vi("y", &[1, 2, 4, 4])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn calib() -> Calibration {
    ["x", "a", "r", "h", "s", "p", "y"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                TensorStats {
                    min: -2.0,
                    max: 2.0,
                    elem_type: 1,
                    shape: vec![],
                },
            )
        })
        .collect()
}

fn run(cfg: &QuantConfig) -> QuantReport {
    quantize_graph(&model(), &calib(), cfg)
        .unwrap_or_else(|e| panic!("{e}"))
        .1
}

/// (name, quantized, reason) of every node.
fn nodes(r: &QuantReport) -> Vec<(String, bool, String)> {
    r.nodes
        .iter()
        .map(|n| (n.name.clone(), n.quantized, n.reason.clone()))
        .collect()
}

fn float_nodes(r: &QuantReport) -> Vec<String> {
    nodes(r)
        .into_iter()
        .filter(|(_, q, _)| !q)
        .map(|(n, _, _)| n)
        .collect()
}

#[test]
fn without_exclusions_everything_is_quantized() {
    let r = run(&QuantConfig::preset(Preset::A8W8));
    assert!(float_nodes(&r).is_empty(), "{:?}", nodes(&r));
}

#[test]
fn a_glob_pattern_keeps_the_matching_nodes_float() {
    let cfg = QuantConfig {
        exclude_patterns: vec!["post/*".into(), "side/con?".into()],
        ..QuantConfig::preset(Preset::A8W8)
    };
    let r = run(&cfg);
    assert_eq!(float_nodes(&r), ["side/conv", "post/add", "post/mul"]);
    let add = r.nodes.iter().find(|n| n.name == "post/add").unwrap();
    assert!(add.reason.contains("pattern 'post/*'"), "{}", add.reason);
}

#[test]
fn a_subgraph_keeps_every_node_between_its_ends_float() {
    let cfg = QuantConfig {
        exclude_subgraphs: vec![ExcludeSubgraph::parse("head/conv..post/mul").unwrap()],
        ..QuantConfig::preset(Preset::A8W8)
    };
    let r = run(&cfg);
    // side/conv feeds post/add but is not reachable from head/conv: it stays quantized.
    assert_eq!(float_nodes(&r), ["head/conv", "post/add", "post/mul"]);
    let mul = r.nodes.iter().find(|n| n.name == "post/mul").unwrap();
    assert!(
        mul.reason.contains("subgraph 'head/conv..post/mul'"),
        "{}",
        mul.reason
    );
    // Several starts: both convolutions' paths.
    let cfg = QuantConfig {
        exclude_subgraphs: vec![ExcludeSubgraph::parse("head/conv, side/conv..post/add").unwrap()],
        ..QuantConfig::preset(Preset::A8W8)
    };
    assert_eq!(
        float_nodes(&run(&cfg)),
        ["head/conv", "side/conv", "post/add"]
    );
}

#[test]
fn exclusions_that_name_nothing_are_errors_naming_them() {
    let err = |cfg: QuantConfig| quantize_graph(&model(), &calib(), &cfg).unwrap_err();
    let e = err(QuantConfig {
        exclude_patterns: vec!["nms/*".into()],
        ..QuantConfig::preset(Preset::A8W8)
    });
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("'nms/*'"), "{e}");
    let e = err(QuantConfig {
        exclude_subgraphs: vec![ExcludeSubgraph::parse("head/conv..nms").unwrap()],
        ..QuantConfig::preset(Preset::A8W8)
    });
    assert!(e.message().contains("no node named 'nms'"), "{e}");
    // Backwards: no path from post/mul to head/conv.
    let e = err(QuantConfig {
        exclude_subgraphs: vec![ExcludeSubgraph::parse("post/mul..head/conv").unwrap()],
        ..QuantConfig::preset(Preset::A8W8)
    });
    assert!(e.message().contains("no path"), "{e}");
    for bad in ["head/conv", "..post/mul", "a,..b", "a.."] {
        let e = ExcludeSubgraph::parse(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        assert!(e.message().contains(bad), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Command line

mod ort_support;

use ort_support::{common, f32_init, D};

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ipuflow");

#[test]
fn cli_takes_patterns_and_subgraphs_and_names_what_matches_nothing() {
    let (Some(m), Some(calib)) = (
        common::shared("models/blazeface-short-range.onnx"),
        common::shared("data/images/calib"),
    ) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("ipuflow-exclude-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("q.onnx");
    let quantize = |extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(["quantize", m.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        c.args([
            "--preset",
            "xint8",
            "--calib",
            calib.to_str().unwrap(),
            "--json",
        ]);
        c.args(["--max-samples", "2"]).args(extra);
        c.env("IPUFLOW_ORT_LIBRARY", ort_support::ort_library());
        c.output().unwrap()
    };
    let json = |o: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
    };
    // A pattern and a subgraph that name nothing: refused, naming the value, before calibrating.
    for (arg, needle) in [
        ("nms/*", "'nms/*'"),
        ("regressor_8..nms", "no node named 'nms'"),
        ("classificators..regressor_8", "no path"),
    ] {
        let o = quantize(&["--exclude", arg]);
        assert_eq!(o.status.code(), Some(1), "{arg}");
        let v = json(&o);
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{arg}: {v}");
        assert!(!out.exists(), "{arg}: nothing written");
    }
    // The post-processing heads: a pattern and a subgraph, reported and left float.
    let o = quantize(&[
        "--exclude",
        "reshape*",
        "--exclude",
        "TFLITE2ONNX_Transposed_classificator_8,TFLITE2ONNX_Transposed_classificator_16..classificators",
    ]);
    let v = json(&o);
    assert_eq!(o.status.code(), Some(0), "{v}");
    assert_eq!(v["excluded_patterns"], serde_json::json!(["reshape*"]));
    assert_eq!(
        v["excluded_subgraphs"][0],
        "TFLITE2ONNX_Transposed_classificator_8,TFLITE2ONNX_Transposed_classificator_16..classificators"
    );
    assert!(out.exists());
    let _ = std::fs::remove_dir_all(dir);
}
