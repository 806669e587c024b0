//! Shared by the runtime tests: finding the ONNX Runtime fetched by scripts/fetch_ort.sh, and tiny ONNX models
//! built in memory (no Python needed).
#![allow(dead_code)]

use std::path::PathBuf;

use ipuflow::onnx::proto::{
    tensor_shape_proto::{dimension::Value as DimValue, Dimension},
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use ipuflow::onnx::Model;
use ipuflow::runtime::Runtime;

/// Missing test data: skip outside CI, fail under CI (tests/common).
#[path = "../common/mod.rs"]
pub mod common;

/// Running the `ipuflow` command.
pub mod cli;

/// The ONNX Runtime library for the tests: `IPUFLOW_ORT_LIBRARY`, else the cache path of scripts/fetch_ort.sh.
/// Missing: the test fails and says how to get it.
pub fn ort_library() -> PathBuf {
    if let Some(p) = std::env::var_os("IPUFLOW_ORT_LIBRARY").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("IPUFLOW_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ipuflow")
        });
    #[cfg(windows)]
    let p = cache.join("onnxruntime-1.32.0/win-x64/onnxruntime.dll");
    #[cfg(not(windows))]
    let p = cache.join("onnxruntime-1.32.0/linux-x64/libonnxruntime.so.1.32.0");
    assert!(
        p.exists(),
        "ONNX Runtime not found at {}: run scripts/fetch_ort.sh (or set IPUFLOW_ORT_LIBRARY to libonnxruntime)",
        p.display()
    );
    p
}

/// Loads the process-wide runtime from [`ort_library`].
pub fn runtime() -> &'static Runtime {
    Runtime::load(Some(&ort_library())).expect("loading ONNX Runtime")
}

pub enum D {
    Fixed(i64),
    Sym(&'static str),
    Unknown,
}

pub fn vi(name: &str, elem: i32, dims: &[D]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: None,
            value: match d {
                D::Fixed(v) => Some(DimValue::DimValue(*v)),
                D::Sym(s) => Some(DimValue::DimParam(s.to_string())),
                D::Unknown => None,
            },
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        ..Default::default()
    }
}

pub fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: Some(format!("{op}_{}", outputs[0])),
        ..Default::default()
    }
}

/// [`node`] with attributes.
pub fn node_with(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        attribute,
        ..node(op, inputs, outputs)
    }
}

/// A Conv that pads by 1 on every side (a 3x3 kernel keeps the height and width).
pub fn conv_pad1(inputs: &[&str], output: &str) -> NodeProto {
    node_with(
        "Conv",
        inputs,
        &[output],
        vec![attr_ints("pads", &[1, 1, 1, 1])],
    )
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(2),
        i: Some(v),
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(7),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(1),
        f: Some(f),
        ..Default::default()
    }
}

/// A float initializer (raw little-endian data); `v` must hold exactly the elements of `dims`.
#[track_caller]
pub fn f32_init(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    assert_eq!(dims.iter().product::<i64>() as usize, v.len(), "{name}");
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        raw_data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// A 1-D int64 initializer.
pub fn i64_init(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![v.len() as i64],
        data_type: Some(7),
        raw_data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// Deterministic values in [-1, 1] (xorshift32).
pub fn noise(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

pub fn model(graph: GraphProto) -> Vec<u8> {
    let proto = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        producer_name: Some("ipuflow-tests".into()),
        graph: Some(graph),
        ..Default::default()
    };
    Model::from_proto(proto).to_bytes().expect("encode model")
}

/// `z = x + y` with x: float [N,4] (N symbolic), y: float [1,4], z: float [N,4].
pub fn add_model() -> Vec<u8> {
    model(GraphProto {
        name: Some("add".into()),
        node: vec![node("Add", &["x", "y"], &["z"])],
        input: vec![
            vi("x", 1, &[D::Sym("N"), D::Fixed(4)]),
            vi("y", 1, &[D::Fixed(1), D::Fixed(4)]),
        ],
        output: vec![vi("z", 1, &[D::Sym("N"), D::Fixed(4)])],
        ..Default::default()
    })
}

/// For each element type code: input `in_<code>` [2, d] -> Identity -> output `out_<code>`.
pub fn identity_model(codes: &[i32]) -> Vec<u8> {
    let mut g = GraphProto {
        name: Some("identity".into()),
        ..Default::default()
    };
    for c in codes {
        let (i, o) = (format!("in_{c}"), format!("out_{c}"));
        g.node.push(node("Identity", &[&i], &[&o]));
        g.input.push(vi(&i, *c, &[D::Fixed(2), D::Sym("d")]));
        g.output.push(vi(&o, *c, &[D::Fixed(2), D::Unknown]));
    }
    model(g)
}

/// A slow model for cancellation: `y = x @ W @ W ... ` (n MatMuls of 512x512), x: float [512,512].
pub fn slow_model(n: usize) -> Vec<u8> {
    let size = 512usize;
    let w: Vec<f32> = (0..size * size)
        .map(|i| if i % (size + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let raw: Vec<u8> = w.iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut g = GraphProto {
        name: Some("slow".into()),
        ..Default::default()
    };
    g.initializer.push(TensorProto {
        name: Some("W".into()),
        dims: vec![size as i64, size as i64],
        data_type: Some(1),
        raw_data: Some(raw),
        ..Default::default()
    });
    let mut prev = "x".to_string();
    for k in 0..n {
        let out = if k + 1 == n {
            "y".to_string()
        } else {
            format!("t{k}")
        };
        g.node.push(node("MatMul", &[&prev, "W"], &[&out]));
        prev = out;
    }
    g.input
        .push(vi("x", 1, &[D::Fixed(size as i64), D::Fixed(size as i64)]));
    g.output
        .push(vi("y", 1, &[D::Fixed(size as i64), D::Fixed(size as i64)]));
    model(g)
}

/// `../shared/models/<name>`, or None after [`common::missing`] (which fails the test under CI).
#[track_caller]
pub fn shared_model(name: &str) -> Option<PathBuf> {
    common::shared(&format!("models/{name}"))
}
