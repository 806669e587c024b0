//! QDQ emission (`ipuflow::quant::quantize_graph`): structural tests per op rule on small graphs built here, and an
//! end-to-end check on the real models of ../shared/models with the Python onnxruntime of scripts/common.sh's venv
//! (skipped, saying so, when the venv or the models are missing).
//!
//! The calibration ranges of the end-to-end test come from tests/tools/qdq_ref.py (`calib`), a stand-in until the
//! Rust calibration run lands.

mod ort_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use ipuflow::onnx::proto::{
    tensor_shape_proto::{dimension::Value as DimValue, Dimension},
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use ipuflow::onnx::{Model, SaveOptions};
use ipuflow::quant::{
    quantize_graph, BiasType, Calibration, Preset, QuantConfig, QuantReport, QuantType,
    TensorOverride, TensorStats,
};
use ipuflow::runtime::cpu_plan::Host;
use ipuflow::ErrorKind;
use ort_support::{attr_float, attr_int, attr_ints, common, f32_init, i64_init};

// ---------------------------------------------------------------- model building

fn vi(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(DimValue::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
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
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: Some(name.into()),
        op_type: Some(op.into()),
        attribute: attrs,
        ..Default::default()
    }
}

/// Deterministic pseudo-random weights in [-1, 1).
fn weights(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    opset: i64,
) -> ModelProto {
    ModelProto {
        ir_version: Some(if opset >= 21 { 10 } else { 7 }),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        producer_name: Some("quant_qdq test".into()),
        graph: Some(GraphProto {
            node: nodes,
            name: Some("g".into()),
            initializer: inits,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn st(min: f32, max: f32) -> TensorStats {
    TensorStats {
        min,
        max,
        elem_type: 1,
        shape: vec![],
    }
}
fn calib(entries: &[(&str, f32, f32)]) -> Calibration {
    entries
        .iter()
        .map(|(n, a, b)| (n.to_string(), st(*a, *b)))
        .collect()
}

// ---------------------------------------------------------------- inspecting results

struct Q<'a> {
    g: &'a GraphProto,
}

impl<'a> Q<'a> {
    fn new(m: &'a ModelProto) -> Self {
        Q {
            g: m.graph.as_ref().unwrap(),
        }
    }
    fn init(&self, name: &str) -> &TensorProto {
        self.g
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no initializer {name}"))
    }
    fn has_init(&self, name: &str) -> bool {
        self.g
            .initializer
            .iter()
            .any(|t| t.name.as_deref() == Some(name))
    }
    fn f32s(&self, name: &str) -> Vec<f32> {
        let t = self.init(name);
        assert_eq!(t.data_type, Some(1));
        t.raw_data
            .as_ref()
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    /// Integer values and the element type.
    fn ints(&self, name: &str) -> (i32, Vec<i32>) {
        let t = self.init(name);
        let r = t.raw_data.as_ref().unwrap();
        let dt = t.data_type.unwrap();
        let v = match dt {
            2 => r.iter().map(|&b| b as i32).collect(),
            3 => r.iter().map(|&b| b as i8 as i32).collect(),
            4 => r
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i32)
                .collect(),
            5 => r
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i32)
                .collect(),
            6 => r
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            _ => panic!("type {dt}"),
        };
        (dt, v)
    }
    fn producer(&self, t: &str) -> Option<&NodeProto> {
        self.g.node.iter().find(|n| n.output.iter().any(|o| o == t))
    }
    fn consumers(&self, t: &str) -> Vec<&NodeProto> {
        self.g
            .node
            .iter()
            .filter(|n| n.input.iter().any(|i| i == t))
            .collect()
    }
    fn by_name(&self, name: &str) -> &NodeProto {
        self.g
            .node
            .iter()
            .find(|n| n.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no node {name}"))
    }
    fn count(&self, op: &str) -> usize {
        self.g
            .node
            .iter()
            .filter(|n| n.op_type.as_deref() == Some(op))
            .count()
    }
    /// The DQ feeding input `k` of node `name`.
    fn dq_in(&self, name: &str, k: usize) -> &NodeProto {
        let n = self.by_name(name);
        let p = self
            .producer(&n.input[k])
            .unwrap_or_else(|| panic!("input {k} of {name} has no producer"));
        assert_eq!(
            p.op_type.as_deref(),
            Some("DequantizeLinear"),
            "input {k} of {name}"
        );
        p
    }
    /// The Q reading node `name`'s output `k`.
    fn q_out(&self, name: &str, k: usize) -> &NodeProto {
        let n = self.by_name(name);
        let c = self.consumers(&n.output[k]);
        assert_eq!(
            c.len(),
            1,
            "output {k} of {name} should feed exactly one Q: {c:?}"
        );
        assert_eq!(c[0].op_type.as_deref(), Some("QuantizeLinear"));
        c[0]
    }
    /// (scale, zero points, zp type) of a Q/DQ node.
    fn params(&self, qdq: &NodeProto) -> (Vec<f32>, Vec<i32>, i32) {
        let s = self.f32s(&qdq.input[1]);
        let (dt, z) = self.ints(&qdq.input[2]);
        (s, z, dt)
    }
    fn axis(n: &NodeProto) -> Option<i64> {
        n.attribute
            .iter()
            .find(|a| a.name.as_deref() == Some("axis"))
            .and_then(|a| a.i)
    }
}

fn quant(m: &ModelProto, c: &Calibration, cfg: &QuantConfig) -> (ModelProto, QuantReport) {
    let (q, r) = quantize_graph(m, c, cfg)
        .unwrap_or_else(|e| panic!("quantize_graph: {e} ({:?})", e.kind()));
    // Every result must encode, and keep the graph outputs' names and types.
    Model::from_proto(q.clone()).to_bytes().unwrap();
    assert_eq!(
        q.graph.as_ref().unwrap().output,
        m.graph.as_ref().unwrap().output
    );
    assert_eq!(
        q.graph.as_ref().unwrap().input,
        m.graph.as_ref().unwrap().input
    );
    serde_json::from_str::<serde_json::Value>(&r.to_json()).unwrap();
    save_for_ort(&q, m);
    (q, r)
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-30)
}

/// The venv python of scripts/common.sh (`IPUFLOW_VENV`, else ~/.cache/ipuflow/venv), if it exists.
fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("IPUFLOW_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("IPUFLOW_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/ipuflow")
                });
            cache.join("venv")
        });
    let p = venv.join(if cfg!(windows) {
        "Scripts/python.exe"
    } else {
        "bin/python"
    });
    p.exists().then_some(p)
}

fn tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/qdq_ref.py")
}

fn py(args: &[&str]) -> String {
    let python = venv_python().expect("venv python");
    let out = Command::new(&python)
        .arg(tool())
        .args(args)
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "qdq_ref.py {args:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Saves the float and quantized small models and has ONNX Runtime load and run both (when the venv exists).
fn save_for_ort(q: &ModelProto, f: &ModelProto) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    if venv_python().is_none() {
        common::missing(
            "the venv of scripts/common.sh (ensure_venv) to run the saved models in ONNX Runtime",
        );
        return;
    }
    let k = N.fetch_add(1, Ordering::SeqCst);
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("quant_qdq_small");
    std::fs::create_dir_all(&d).unwrap();
    let tid = std::thread::current()
        .name()
        .unwrap_or("t")
        .replace(|c: char| !c.is_alphanumeric(), "_");
    let (fp, qp) = (
        d.join(format!("{tid}_{k}.float.onnx")),
        d.join(format!("{tid}_{k}.quant.onnx")),
    );
    Model::from_proto(f.clone())
        .save(&fp, &SaveOptions::default())
        .unwrap();
    Model::from_proto(q.clone())
        .save(&qp, &SaveOptions::default())
        .unwrap();
    let out = py(&["check", fp.to_str().unwrap(), qp.to_str().unwrap()]);
    eprintln!("{tid}: ORT loads and runs the QDQ model: {}", out.trim());
}

// ---------------------------------------------------------------- structural tests

/// x[1,2,4,4] -> Conv(W[3,2,1,1], B[3]) -> c -> Relu -> y
fn conv_relu(act: &str) -> ModelProto {
    let mut w = weights(6, 1);
    w[3] = 0.0;
    w[4] = 0.0;
    w[5] = 0.0; // output channel 2: all-zero weights (degenerate)
    model(
        vec![
            node("Conv", "conv", &["x", "W", "B"], &["c"], vec![]),
            node(
                act,
                "act",
                &if act == "Clip" {
                    vec!["c", "lo", "hi"]
                } else {
                    vec!["c"]
                },
                &["y"],
                vec![],
            ),
        ],
        vec![
            f32_init("W", &[3, 2, 1, 1], &w),
            f32_init("B", &[3], &[0.5, -0.25, 1e-3]),
            f32_init("lo", &[], &[0.0]),
            f32_init("hi", &[], &[6.0]),
        ],
        vec![vi("x", 1, &[1, 2, 4, 4])],
        vec![vi("y", 1, &[1, 3, 4, 4])],
        13,
    )
}

fn conv_relu_calib() -> Calibration {
    calib(&[("x", -1.0, 1.0), ("c", -2.0, 3.0), ("y", 0.0, 3.0)])
}

#[test]
fn conv_relu_cpu_preset_folds_relu_and_quantizes_per_channel() {
    let m = conv_relu("Relu");
    let (q, r) = quant(&m, &conv_relu_calib(), &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    assert_eq!(
        g.count("Relu"),
        0,
        "Relu folded into the Conv's output range"
    );
    assert!(
        r.node("act").unwrap().reason.contains("fused"),
        "{}",
        r.to_json()
    );
    // Input: U8 asymmetric, range [-1, 1].
    let (s, z, dt) = g.params(g.dq_in("conv", 0));
    assert_eq!(dt, 2);
    // zp = round(0 - (-1) / s): 127.5 up to float rounding of s.
    assert!(
        close(s[0], 2.0 / 255.0) && (z == vec![127] || z == vec![128]),
        "{s:?} {z:?}"
    );
    // Weight: int8 per channel on axis 0, symmetric.
    let wdq = g.dq_in("conv", 1);
    assert_eq!(Q::axis(wdq), Some(0));
    let (ws, wz, wdt) = g.params(wdq);
    assert_eq!((wdt, wz.clone()), (3, vec![0, 0, 0]));
    let w = weights(6, 1);
    assert!(close(ws[0], w[0].abs().max(w[1].abs()) / 127.0));
    assert_eq!(ws[2], 1.0, "all-zero channel gets scale 1");
    let (wdt, wq) = g.ints(&wdq.input[0]);
    assert_eq!(wdt, 3);
    assert!(wq.iter().all(|&v| (-127..=127).contains(&v)) && wq[3..] == [0, 0, 0]);
    // Bias: int32, per channel, scale = input scale * weight scale.
    let bdq = g.dq_in("conv", 2);
    let (bs, bz, bdt) = g.params(bdq);
    assert_eq!((bdt, bz), (6, vec![0, 0, 0]));
    assert_eq!(Q::axis(bdq), Some(0));
    for c in 0..3 {
        assert!(close(bs[c], s[0] * ws[c]), "bias scale {c}");
    }
    let (_, bq) = g.ints(&bdq.input[0]);
    assert_eq!(bq[0], (0.5 / bs[0]).round() as i32);
    // Output: the Relu's range [0, 3] -> zero point 0 = qmin, so saturation is the Relu; Conv feeds only its Q.
    let qn = g.q_out("conv", 0);
    let (os, oz, odt) = g.params(qn);
    assert!(close(os[0], 3.0 / 255.0) && oz == vec![0] && odt == 2);
    // The graph output keeps its name, written by a DQ.
    assert_eq!(
        g.producer("y").unwrap().op_type.as_deref(),
        Some("DequantizeLinear")
    );
    assert_eq!(q.opset_import[0].version, Some(13));
    assert!(
        !g.has_init("W") && !g.has_init("B"),
        "float weights dropped"
    );
}

#[test]
fn clip_relu6_folds_with_asymmetric_activations() {
    let m = conv_relu("Clip");
    let c = calib(&[("x", -1.0, 1.0), ("c", -2.0, 8.0), ("y", 0.0, 6.0)]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::A8W8));
    let g = Q::new(&q);
    assert_eq!(g.count("Clip"), 0);
    let (os, oz, odt) = g.params(g.q_out("conv", 0));
    assert_eq!(
        (oz, odt),
        (vec![-128], 3),
        "A8W8: S8 asymmetric, range [0, 6] -> zp = qmin"
    );
    assert!(close(os[0], 6.0 / 255.0));
    // A8W8: per-tensor weights.
    assert_eq!(Q::axis(g.dq_in("conv", 1)), None);
    assert!(r
        .tensor("y")
        .unwrap()
        .notes
        .iter()
        .any(|n| n.contains("folded")));
}

#[test]
fn xint8_keeps_relu_without_qdq_between_and_uses_power_of_two_scales() {
    let m = conv_relu("Relu");
    let (q, r) = quant(&m, &conv_relu_calib(), &QuantConfig::preset(Preset::Xint8));
    let g = Q::new(&q);
    assert_eq!(g.count("Relu"), 1);
    // Conv -> Relu directly.
    let c = g.consumers("c");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].op_type.as_deref(), Some("Relu"));
    assert!(
        r.node("conv").unwrap().reason.contains("fused"),
        "{}",
        r.to_json()
    );
    // AMD's XINT8 format: uint8 activations with zero point 128.
    let (os, oz, odt) = g.params(g.q_out("act", 0));
    assert_eq!((oz, odt), (vec![128], 2));
    assert_eq!(os[0], 1.0 / 32.0, "3/127.5 rounded up to a power of two");
    let (xs, xz, _) = g.params(g.dq_in("conv", 0));
    assert_eq!((xs[0], xz), (1.0 / 64.0, vec![128]));
    let wdq = g.dq_in("conv", 1);
    assert_eq!(Q::axis(wdq), None, "XINT8: per-tensor weights");
    let (ws, _, _) = g.params(wdq);
    assert_eq!(ws[0].log2().fract(), 0.0, "power-of-two weight scale");
    // AMD's XINT8 format: INT8 bias with a power-of-two scale of its own, the smallest that saturates no value
    // (max |B| = 0.5: 0.5 / 127 rounded up to 2^-7, so 0.5 -> 64).
    let bdq = g.dq_in("conv", 2);
    let (bs, bz, bdt) = g.params(bdq);
    assert_eq!((bs, bz, bdt), (vec![1.0 / 128.0], vec![0], 3), "int8 bias");
    assert_eq!(g.ints(&bdq.input[0]), (3, vec![64, -32, 0]));
    assert!(r.node("conv").unwrap().reason.contains("int8 bias"));
    // INT32 at the accumulator scale stays available.
    let int32 = QuantConfig {
        bias_type: BiasType::Int32,
        ..QuantConfig::preset(Preset::Xint8)
    };
    let (q, _) = quant(&m, &conv_relu_calib(), &int32);
    let g = Q::new(&q);
    let (bs, _, bdt) = g.params(g.dq_in("conv", 2));
    assert_eq!((bs, bdt), (vec![xs[0] * ws[0]], 6));
}

#[test]
fn conv_transpose_weights_per_channel_on_axis_1_with_groups() {
    // C_in = 4, group = 2 -> W [4, 3, 2, 2], C_out = 6.
    let w = weights(4 * 3 * 4, 7);
    let m = model(
        vec![node(
            "ConvTranspose",
            "ct",
            &["x", "W", "B"],
            &["y"],
            vec![attr_int("group", 2)],
        )],
        vec![
            f32_init("W", &[4, 3, 2, 2], &w),
            f32_init("B", &[6], &[0.1, 0.2, 0.3, -0.1, -0.2, -0.3]),
        ],
        vec![vi("x", 1, &[1, 4, 3, 3])],
        vec![vi("y", 1, &[1, 6, 4, 4])],
        13,
    );
    let c = calib(&[("x", -1.0, 1.0), ("y", -4.0, 4.0)]);
    let (q, _) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    let wdq = g.dq_in("ct", 1);
    assert_eq!(Q::axis(wdq), Some(1));
    let (ws, _, _) = g.params(wdq);
    assert_eq!(ws.len(), 3);
    // channel j of axis 1: elements [i][j][..] for all i.
    for (j, &s) in ws.iter().enumerate() {
        let mx = (0..4)
            .flat_map(|i| (0..4).map(move |k| i * 12 + j * 4 + k))
            .map(|e| w[e].abs())
            .fold(0f32, f32::max);
        assert!(close(s, mx / 127.0), "channel {j}");
    }
    let (xs, _, _) = g.params(g.dq_in("ct", 0));
    let (bs, _, _) = g.params(g.dq_in("ct", 2));
    assert_eq!(bs.len(), 6);
    for i in 0..6 {
        assert!(close(bs[i], xs[0] * ws[i % 3]), "bias {i}");
    }
}

fn gemm(trans_b: bool) -> ModelProto {
    let (k, n) = (4, 3);
    let bdims = if trans_b { [n, k] } else { [k, n] };
    model(
        vec![node(
            "Gemm",
            "gemm",
            &["a", "B", "C"],
            &["y"],
            vec![attr_int("transB", trans_b as i64)],
        )],
        vec![
            f32_init("B", &bdims, &weights(12, 3)),
            f32_init("C", &[n], &[0.1, 0.2, 0.3]),
        ],
        vec![vi("a", 1, &[2, k])],
        vec![vi("y", 1, &[2, n])],
        13,
    )
}

#[test]
fn gemm_weight_axis_follows_trans_b() {
    let c = calib(&[("a", -1.0, 1.0), ("y", -3.0, 3.0)]);
    for (tb, axis) in [(false, 1), (true, 0)] {
        let (q, r) = quant(&gemm(tb), &c, &QuantConfig::preset(Preset::Cpu));
        let g = Q::new(&q);
        let wdq = g.dq_in("gemm", 1);
        assert_eq!(Q::axis(wdq), Some(axis), "transB={tb}");
        assert_eq!(g.params(wdq).0.len(), 3);
        let bdq = g.dq_in("gemm", 2);
        assert_eq!(g.params(bdq).2, 6, "int32 bias");
        assert_eq!(r.tensor("B").unwrap().axis, Some(axis));
    }
    // C of shape [1, N] is a bias too (written as [N]).
    let mut m = gemm(false);
    let gr = m.graph.as_mut().unwrap();
    gr.initializer[1].dims = vec![1, 3];
    let (q, _) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    let bdq = g.dq_in("gemm", 2);
    assert_eq!(g.params(bdq).2, 6);
    assert_eq!(g.init(&bdq.input[0]).dims, vec![3]);
    // alpha != 1: the bias cannot be INT32 with scale sA*sB; it is quantized like an activation constant.
    let mut m = gemm(false);
    m.graph.as_mut().unwrap().node[0]
        .attribute
        .push(attr_float("alpha", 0.5));
    let (q, _) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    assert_eq!(
        g.params(g.dq_in("gemm", 2)).2,
        2,
        "C quantized as a U8 constant"
    );
}

#[test]
fn matmul_constant_and_activation_inputs() {
    let m = model(
        vec![
            node("MatMul", "mm1", &["a", "B"], &["h"], vec![]),
            node("MatMul", "mm2", &["h", "a2"], &["y"], vec![]),
        ],
        vec![f32_init("B", &[4, 3], &weights(12, 5))],
        vec![vi("a", 1, &[2, 4]), vi("a2", 1, &[3, 5])],
        vec![vi("y", 1, &[2, 5])],
        13,
    );
    let c = calib(&[
        ("a", -1.0, 1.0),
        ("a2", -2.0, 2.0),
        ("h", -3.0, 3.0),
        ("y", -5.0, 5.0),
    ]);
    let (q, _) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    let wdq = g.dq_in("mm1", 1);
    assert_eq!(
        Q::axis(wdq),
        Some(1),
        "constant B [K, N]: per channel along N"
    );
    assert_eq!(g.ints(&wdq.input[0]).0, 3);
    // Activation B: per-tensor U8 Q/DQ fed by the graph input.
    let bdq = g.dq_in("mm2", 1);
    let (s, z, dt) = g.params(bdq);
    assert!(dt == 2 && (z == vec![127] || z == vec![128]), "{dt} {z:?}");
    assert!(close(s[0], 4.0 / 255.0));
    assert_eq!(
        g.producer(&bdq.input[0]).unwrap().op_type.as_deref(),
        Some("QuantizeLinear")
    );
    g.dq_in("mm2", 0);
}

#[test]
fn add_with_activation_and_constant_inputs() {
    let m = model(
        vec![
            node("Add", "add", &["x", "k"], &["s"], vec![]),
            node("Mul", "mul", &["s", "x2"], &["y"], vec![]),
        ],
        vec![f32_init("k", &[2], &[0.5, -1.5])],
        vec![vi("x", 1, &[2]), vi("x2", 1, &[2])],
        vec![vi("y", 1, &[2])],
        13,
    );
    let c = calib(&[
        ("x", -1.0, 1.0),
        ("x2", 0.0, 2.0),
        ("s", -2.0, 1.0),
        ("y", -4.0, 2.0),
    ]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::A8W8));
    let g = Q::new(&q);
    g.dq_in("add", 0);
    let kdq = g.dq_in("add", 1);
    let (ks, kz, kdt) = g.params(kdq);
    assert_eq!(kdt, 3);
    let (_, kq) = g.ints(&kdq.input[0]);
    // The constant's own range [-1.5, 0.5] (S8 asymmetric): values map back within half a step.
    for (i, v) in [0.5f32, -1.5].iter().enumerate() {
        assert!(((kq[i] - kz[0]) as f32 * ks[0] - v).abs() <= ks[0] / 2.0 + 1e-6);
    }
    assert_eq!(r.tensor("k").unwrap().kind, "constant");
    let qs = g.q_out("add", 0);
    let (ss, sz, _) = g.params(qs);
    assert!(close(ss[0], 3.0 / 255.0) && sz == vec![(-128.0f32 + 2.0 / ss[0]).round() as i32]);
    g.dq_in("mul", 0);
    g.dq_in("mul", 1);
    assert!(r.node("mul").unwrap().quantized);
}

fn concat_model() -> ModelProto {
    model(
        vec![
            node("Relu", "r1", &["a"], &["ra"], vec![]),
            node("Sigmoid", "s1", &["b"], &["sb"], vec![]),
            node(
                "Concat",
                "cat",
                &["ra", "sb"],
                &["y"],
                vec![attr_int("axis", 1)],
            ),
        ],
        vec![],
        vec![vi("a", 1, &[1, 2]), vi("b", 1, &[1, 2])],
        vec![vi("y", 1, &[1, 4])],
        13,
    )
}

#[test]
fn concat_shared_scale_xint8_and_separate_scales_a8w8() {
    let c = calib(&[
        ("a", -3.0, 3.0),
        ("b", -5.0, 5.0),
        ("ra", 0.0, 3.0),
        ("sb", 0.0, 1.0),
        ("y", 0.0, 3.0),
    ]);
    let (q, r) = quant(&concat_model(), &c, &QuantConfig::preset(Preset::Xint8));
    let g = Q::new(&q);
    let p0 = g.params(g.dq_in("cat", 0));
    let p1 = g.params(g.dq_in("cat", 1));
    let po = g.params(g.q_out("cat", 0));
    assert_eq!(p0, p1);
    assert_eq!(p0, po);
    assert!(!r.tensor("y").unwrap().shared_with.is_empty());
    let (q, _) = quant(&concat_model(), &c, &QuantConfig::preset(Preset::A8W8));
    let g = Q::new(&q);
    assert_ne!(g.params(g.dq_in("cat", 0)), g.params(g.dq_in("cat", 1)));
}

#[test]
fn concat_shared_scale_never_widens_a_folded_relu() {
    // a -> Conv -> Relu (folded) -> Concat <- b (negative range); shared Concat scale asked with U8 activations.
    let m = model(
        vec![
            node("Conv", "conv", &["a", "W"], &["c"], vec![]),
            node("Relu", "relu", &["c"], &["r"], vec![]),
            node(
                "Concat",
                "cat",
                &["r", "b"],
                &["y"],
                vec![attr_int("axis", 1)],
            ),
        ],
        vec![f32_init("W", &[1, 1, 1, 1], &[0.5])],
        vec![vi("a", 1, &[1, 1, 2, 2]), vi("b", 1, &[1, 1, 2, 2])],
        vec![vi("y", 1, &[1, 2, 2, 2])],
        13,
    );
    let c = calib(&[
        ("a", -1.0, 1.0),
        ("b", -2.0, 2.0),
        ("c", -0.5, 0.5),
        ("r", 0.0, 0.5),
        ("y", -2.0, 2.0),
    ]);
    let mut cfg = QuantConfig::preset(Preset::Cpu);
    cfg.concat_shared_scale = true;
    let (q, r) = quant(&m, &c, &cfg);
    let g = Q::new(&q);
    assert_eq!(g.count("Relu"), 0);
    let (_, z, _) = g.params(g.q_out("conv", 0));
    assert_eq!(z, vec![0], "the folded Relu's tensor keeps zero point qmin");
    assert_eq!(
        g.params(g.dq_in("cat", 1)),
        g.params(g.q_out("cat", 0)),
        "the other input still shares"
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("1 Relu/Clip nodes folded")),
        "{:?}",
        r.notes
    );
}

#[test]
fn shape_ops_and_maxpool_reuse_their_input_parameters() {
    let m = model(
        vec![
            node("Conv", "conv", &["x", "W"], &["c"], vec![]),
            node(
                "MaxPool",
                "pool",
                &["c"],
                &["p"],
                vec![
                    attr_ints("kernel_shape", &[2, 2]),
                    attr_ints("strides", &[2, 2]),
                ],
            ),
            node("Reshape", "reshape", &["p", "shape"], &["rs"], vec![]),
            node(
                "Transpose",
                "tr",
                &["rs"],
                &["t"],
                vec![attr_ints("perm", &[1, 0])],
            ),
            node("MatMul", "mm", &["t", "M"], &["y"], vec![]),
        ],
        vec![
            f32_init("W", &[2, 1, 1, 1], &[0.5, -1.0]),
            i64_init("shape", &[2, 4]),
            f32_init("M", &[2, 3], &weights(6, 9)),
        ],
        vec![vi("x", 1, &[1, 1, 4, 4])],
        vec![vi("y", 1, &[4, 3])],
        13,
    );
    let c = calib(&[
        ("x", -1.0, 1.0),
        ("c", -1.0, 0.9),
        ("p", -0.2, 0.9),
        ("rs", -0.2, 0.9),
        ("t", -0.2, 0.9),
        ("y", -2.0, 2.0),
    ]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    let pc = g.params(g.q_out("conv", 0));
    for n in ["pool", "reshape", "tr"] {
        assert_eq!(g.params(g.dq_in(n, 0)), pc, "{n} input");
        assert_eq!(g.params(g.q_out(n, 0)), pc, "{n} output");
        assert!(
            r.node(n).unwrap().reason.contains("shares"),
            "{n}: {}",
            r.node(n).unwrap().reason
        );
    }
    // The shape input of Reshape stays an int64 initializer.
    assert_eq!(g.by_name("reshape").input[1], "shape");
}

#[test]
fn layout_ops_between_float_nodes_stay_float() {
    let m = model(
        vec![
            node("Softplus", "sp", &["x"], &["a"], vec![]),
            node(
                "Transpose",
                "tr",
                &["a"],
                &["b"],
                vec![attr_ints("perm", &[1, 0])],
            ),
            node("Softplus", "sp2", &["b"], &["y"], vec![]),
        ],
        vec![],
        vec![vi("x", 1, &[2, 3])],
        vec![vi("y", 1, &[3, 2])],
        13,
    );
    let c = calib(&[
        ("x", -1.0, 1.0),
        ("a", 0.0, 2.0),
        ("b", 0.0, 2.0),
        ("y", 0.0, 2.0),
    ]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::A8W8));
    assert_eq!(Q::new(&q).count("QuantizeLinear"), 0);
    assert!(!r.node("tr").unwrap().quantized);
    assert!(r
        .node("sp")
        .unwrap()
        .reason
        .contains("no quantization rule"));
}

#[test]
fn float_ops_read_dq_outputs_and_say_why() {
    // Conv -> LayerNormalization (kept float) -> output; Conv -> Gelu (com.microsoft, float).
    let m = model(
        vec![
            node("Conv", "conv", &["x", "W"], &["c"], vec![]),
            node(
                "LayerNormalization",
                "ln",
                &["c", "gamma"],
                &["y"],
                vec![attr_int("axis", -1)],
            ),
        ],
        vec![
            f32_init("W", &[2, 1, 1, 1], &[0.5, -1.0]),
            f32_init("gamma", &[4], &[1.0; 4]),
        ],
        vec![vi("x", 1, &[1, 1, 2, 4])],
        vec![vi("y", 1, &[1, 2, 2, 4])],
        17,
    );
    let c = calib(&[("x", -1.0, 1.0), ("c", -1.0, 1.0), ("y", -2.0, 2.0)]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    g.q_out("conv", 0);
    g.dq_in("ln", 0);
    assert_eq!(g.by_name("ln").input[1], "gamma");
    let ln = r.node("ln").unwrap();
    assert!(!ln.quantized && ln.reason.contains("kept float"), "{ln:?}");
    assert_eq!(
        g.producer("y").unwrap().op_type.as_deref(),
        Some("LayerNormalization")
    );
    assert_eq!(q.opset_import[0].version, Some(17), "opset >= 13 is kept");
}

#[test]
fn exclusion_by_node_name_and_op_type() {
    let m = conv_relu("Relu");
    let mut cfg = QuantConfig::preset(Preset::A8W8);
    cfg.exclude_nodes = vec!["conv".into()];
    let (q, r) = quant(&m, &conv_relu_calib(), &cfg);
    let g = Q::new(&q);
    assert!(r.node("conv").unwrap().reason.contains("excluded by name"));
    assert_eq!(g.by_name("conv").input[1], "W", "float weight kept");
    assert_eq!(g.count("Relu"), 1, "no folding into a float producer");
    // The Relu is still quantized on its own: its input is DQ'd.
    g.dq_in("act", 0);
    let mut cfg = QuantConfig::preset(Preset::A8W8);
    cfg.exclude_op_types = vec!["Conv".into(), "Relu".into()];
    let (q, r) = quant(&m, &conv_relu_calib(), &cfg);
    assert_eq!(Q::new(&q).count("QuantizeLinear"), 0);
    assert!(r
        .node("act")
        .unwrap()
        .reason
        .contains("excluded by op type"));
}

#[test]
fn tensor_overrides_of_type_and_range_use_com_microsoft_for_16_bit_below_opset_21() {
    let m = conv_relu("Relu");
    let mut cfg = QuantConfig::preset(Preset::A8W8);
    cfg.tensor_overrides.insert(
        "x".into(),
        TensorOverride {
            qtype: Some(QuantType::U16),
            range: Some((-4.0, 4.0)),
        },
    );
    let (q, r) = quant(&m, &conv_relu_calib(), &cfg);
    let g = Q::new(&q);
    let dq = g.dq_in("conv", 0);
    assert_eq!(dq.domain.as_deref(), Some("com.microsoft"));
    let (s, z, dt) = g.params(dq);
    assert_eq!((dt, z), (4, vec![32768]));
    assert!(close(s[0], 8.0 / 65535.0));
    assert!(q
        .opset_import
        .iter()
        .any(|o| o.domain.as_deref() == Some("com.microsoft")));
    assert_eq!(r.qdq16_domain.as_deref(), Some("com.microsoft"));
    // 8-bit tensors stay in the default domain.
    assert_eq!(g.q_out("conv", 0).domain, None);
    let t = r.tensor("x").unwrap();
    assert!(t.notes.iter().any(|n| n.contains("range overridden")) && t.qtype == "uint16");
}

#[test]
fn a16w8_uses_int16_activations_int8_weights() {
    let m = conv_relu("Relu");
    let (q, _) = quant(&m, &conv_relu_calib(), &QuantConfig::preset(Preset::A16W8));
    let g = Q::new(&q);
    let dq = g.dq_in("conv", 0);
    assert_eq!(g.params(dq).2, 5);
    assert_eq!(dq.domain.as_deref(), Some("com.microsoft"));
    let wdq = g.dq_in("conv", 1);
    assert_eq!(g.params(wdq).2, 3);
    assert_eq!(wdq.domain, None);
    // At opset 21 the standard Q/DQ take int16.
    let mut m21 = conv_relu("Relu");
    m21.opset_import[0].version = Some(21);
    m21.ir_version = Some(10);
    let (q, r) = quant(
        &m21,
        &conv_relu_calib(),
        &QuantConfig::preset(Preset::A16W8),
    );
    let g = Q::new(&q);
    assert_eq!(g.dq_in("conv", 0).domain, None);
    assert!(!q
        .opset_import
        .iter()
        .any(|o| o.domain.as_deref() == Some("com.microsoft")));
    assert_eq!(r.qdq16_domain.as_deref(), Some(""));
}

#[test]
fn cpu_preset_gives_each_consumer_its_own_dq() {
    // x -> Conv -> c -> {Conv2, Sigmoid(float-excluded)}; c single Q, one DQ per consumer.
    let m = model(
        vec![
            node("Conv", "conv", &["x", "W"], &["c"], vec![]),
            node("Conv", "conv2", &["c", "W2"], &["y"], vec![]),
            node("Sigmoid", "sig", &["c"], &["z"], vec![]),
        ],
        vec![
            f32_init("W", &[2, 1, 1, 1], &[0.5, -1.0]),
            f32_init("W2", &[1, 2, 1, 1], &[0.5, -1.0]),
        ],
        vec![vi("x", 1, &[1, 1, 2, 2])],
        vec![vi("y", 1, &[1, 1, 2, 2]), vi("z", 1, &[1, 2, 2, 2])],
        13,
    );
    let c = calib(&[
        ("x", -1.0, 1.0),
        ("c", -1.0, 1.0),
        ("y", -2.0, 2.0),
        ("z", 0.0, 1.0),
    ]);
    let mut cfg = QuantConfig::preset(Preset::Cpu);
    cfg.exclude_op_types = vec!["Sigmoid".into()];
    let (q, _) = quant(&m, &c, &cfg);
    let g = Q::new(&q);
    let qn = g.q_out("conv", 0);
    let dqs = g.consumers(&qn.output[0]);
    assert_eq!(dqs.len(), 2, "one DQ per consumer");
    assert_ne!(g.dq_in("conv2", 0).name, g.dq_in("sig", 0).name);
    // Shared mode (A8W8): one DQ for both.
    let (q, _) = quant(&m, &c, &QuantConfig::preset(Preset::A8W8));
    let g = Q::new(&q);
    assert_eq!(g.dq_in("conv2", 0).name, g.dq_in("sig", 0).name);
}

#[test]
fn graph_output_that_is_also_consumed_keeps_its_name() {
    let m = model(
        vec![
            node("Conv", "conv", &["x", "W"], &["c"], vec![]),
            node("Relu", "r", &["c"], &["y"], vec![]),
        ],
        vec![f32_init("W", &[2, 1, 1, 1], &[0.5, -1.0])],
        vec![vi("x", 1, &[1, 1, 2, 2])],
        vec![vi("c", 1, &[1, 2, 2, 2]), vi("y", 1, &[1, 2, 2, 2])],
        13,
    );
    let c = calib(&[("x", -1.0, 1.0), ("c", -1.0, 1.0), ("y", 0.0, 1.0)]);
    for p in Preset::ALL {
        let (q, _) = quant(&m, &c, &QuantConfig::preset(p));
        let g = Q::new(&q);
        assert_eq!(
            g.producer("c").unwrap().op_type.as_deref(),
            Some("DequantizeLinear"),
            "{p:?}"
        );
        assert_eq!(g.count("Relu"), 1, "{p:?}: c is a graph output: no folding");
    }
}

#[test]
fn bias_overflow_raises_the_weight_scale() {
    let m = model(
        vec![node("Conv", "conv", &["x", "W", "B"], &["y"], vec![])],
        vec![
            f32_init("W", &[2, 1, 1, 1], &[1e-12, 0.5]),
            f32_init("B", &[2], &[100.0, 0.25]),
        ],
        vec![vi("x", 1, &[1, 1, 2, 2])],
        vec![vi("y", 1, &[1, 2, 2, 2])],
        13,
    );
    let c = calib(&[("x", -1.0, 1.0), ("y", -100.0, 100.0)]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    let (xs, _, _) = g.params(g.dq_in("conv", 0));
    let (ws, _, _) = g.params(g.dq_in("conv", 1));
    let (bs, _, _) = g.params(g.dq_in("conv", 2));
    let (_, bq) = g.ints(&g.dq_in("conv", 2).input[0]);
    assert!(
        ws[0] > 1e-12 / 127.0 * 1.5,
        "channel 0 scale raised: {ws:?}"
    );
    assert!(close(ws[1], 0.5 / 127.0), "channel 1 untouched");
    assert!(close(bs[0], xs[0] * ws[0]));
    assert!(
        ((bq[0] as f64) * bs[0] as f64 - 100.0).abs() < 1e-3,
        "bias kept exact: {}",
        bq[0] as f64 * bs[0] as f64
    );
    assert!(r
        .tensor("W")
        .unwrap()
        .notes
        .iter()
        .any(|n| n.contains("overflow")));
}

#[test]
fn degenerate_activation_range_gets_scale_one() {
    let m = model(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![],
        vec![vi("x", 1, &[4])],
        vec![vi("y", 1, &[4])],
        13,
    );
    let c = calib(&[("x", 0.0, 0.0), ("y", 0.0, 0.0)]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    assert_eq!(g.params(g.dq_in("r", 0)), (vec![1.0], vec![0], 2));
    assert!(r
        .tensor("x")
        .unwrap()
        .notes
        .iter()
        .any(|n| n.contains("degenerate")));
}

#[test]
fn missing_calibration_leaves_the_node_float_with_the_reason() {
    let m = conv_relu("Relu");
    let c = calib(&[("c", -2.0, 3.0), ("y", 0.0, 3.0)]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::A8W8));
    let conv = r.node("conv").unwrap();
    assert!(
        !conv.quantized && conv.reason.contains("no calibration range for input 'x'"),
        "{conv:?}"
    );
    assert_eq!(Q::new(&q).count("Relu"), 1);
}

#[test]
fn sigmoid_softmax_hardswish_resize_rules() {
    let m = model(
        vec![
            node("Sigmoid", "sig", &["x"], &["a"], vec![]),
            node("HardSwish", "hs", &["a"], &["b"], vec![]),
            node("Resize", "rs", &["b", "", "scales"], &["c"], vec![]),
            node("Softmax", "sm", &["c"], &["y"], vec![attr_int("axis", -1)]),
        ],
        vec![f32_init("scales", &[4], &[1.0, 1.0, 2.0, 2.0])],
        vec![vi("x", 1, &[1, 1, 2, 2])],
        vec![vi("y", 1, &[1, 1, 4, 4])],
        14,
    );
    let c = calib(&[
        ("x", -3.0, 3.0),
        ("a", 0.0, 1.0),
        ("b", 0.0, 1.0),
        ("c", 0.0, 1.0),
        ("y", 0.0, 1.0),
    ]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::A8W8));
    let g = Q::new(&q);
    for n in ["sig", "hs", "rs", "sm"] {
        assert!(r.node(n).unwrap().quantized, "{n}");
        g.dq_in(n, 0);
    }
    assert_eq!(
        g.params(g.dq_in("rs", 0)),
        g.params(g.q_out("rs", 0)),
        "nearest Resize shares"
    );
    assert_eq!(g.by_name("rs").input[2], "scales");
    // The CPU preset leaves Softmax float (QLinearSoftmax is slower than float, rules::CPU_FLOAT_OPS) and says
    // so; Sigmoid (QLinearSigmoid), HardSwish and nearest Resize keep their Q/DQ.
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    for n in ["sig", "hs", "rs"] {
        assert!(r.node(n).unwrap().quantized, "{n}");
    }
    let sm = r.node("sm").unwrap();
    assert!(
        !sm.quantized && sm.reason.contains("kept float by the CPU preset"),
        "{sm:?}"
    );
    assert_eq!(
        g.by_name("sm").output[0],
        "y",
        "the graph output comes from the float Softmax"
    );
}

#[test]
fn refuses_already_quantized_models_naming_the_node() {
    let m = model(
        vec![node(
            "DequantizeLinear",
            "dq0",
            &["xq", "s"],
            &["y"],
            vec![],
        )],
        vec![f32_init("s", &[], &[0.1])],
        vec![vi("xq", 3, &[2])],
        vec![vi("y", 1, &[2])],
        13,
    );
    let e =
        quantize_graph(&m, &Calibration::new(), &QuantConfig::preset(Preset::A8W8)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.message().contains("dq0") && e.message().contains("already quantized"),
        "{e}"
    );
    let m = model(
        vec![node("QLinearConv", "qc", &["x"], &["y"], vec![])],
        vec![],
        vec![],
        vec![],
        13,
    );
    let e =
        quantize_graph(&m, &Calibration::new(), &QuantConfig::preset(Preset::A8W8)).unwrap_err();
    assert!(e.message().contains("qc"), "{e}");
}

#[test]
fn refuses_unsupported_opsets_naming_them() {
    for v in [9, 24] {
        let mut m = conv_relu("Relu");
        m.opset_import[0].version = Some(v);
        let e =
            quantize_graph(&m, &conv_relu_calib(), &QuantConfig::preset(Preset::A8W8)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains(&format!("opset {v}")), "{e}");
    }
}

#[test]
fn opset_11_models_are_raised_to_13_converting_attribute_inputs() {
    // Unsqueeze/Squeeze with `axes` attributes, Split with `split`, Clip with inputs (valid at 11 and 13).
    let m = model(
        vec![
            node(
                "Unsqueeze",
                "unsq",
                &["x"],
                &["u"],
                vec![attr_ints("axes", &[0])],
            ),
            node(
                "Squeeze",
                "sq",
                &["u"],
                &["s"],
                vec![attr_ints("axes", &[0])],
            ),
            node(
                "Split",
                "split",
                &["s"],
                &["p1", "p2"],
                vec![attr_int("axis", 0), attr_ints("split", &[1, 3])],
            ),
            node("Clip", "clip", &["p2", "lo", "hi"], &["y"], vec![]),
            node("Relu", "relu", &["p1"], &["y2"], vec![]),
        ],
        vec![f32_init("lo", &[], &[-1.0]), f32_init("hi", &[], &[1.0])],
        vec![vi("x", 1, &[4])],
        vec![vi("y", 1, &[3]), vi("y2", 1, &[1])],
        11,
    );
    let c = calib(&[
        ("x", -2.0, 2.0),
        ("u", -2.0, 2.0),
        ("s", -2.0, 2.0),
        ("p1", -2.0, 2.0),
        ("p2", -2.0, 2.0),
        ("y", -1.0, 1.0),
        ("y2", 0.0, 2.0),
    ]);
    let (q, r) = quant(&m, &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    assert_eq!(q.opset_import[0].version, Some(13));
    assert_eq!(r.opset_in, 11);
    for n in ["unsq", "sq"] {
        let node = g.by_name(n);
        assert!(node.attribute.is_empty(), "{n}: axes moved to an input");
        assert_eq!(Q::new(&q).ints_i64(&node.input[1]), vec![0]);
    }
    assert_eq!(
        Q::new(&q).ints_i64(&g.by_name("split").input[1]),
        vec![1, 3]
    );
    assert!(r.notes.iter().any(|n| n.contains("raised from 11 to 13")));
    // Softmax on a non-last axis cannot be carried from 11 to 13.
    let m = model(
        vec![node(
            "Softmax",
            "sm",
            &["x"],
            &["y"],
            vec![attr_int("axis", 1)],
        )],
        vec![],
        vec![vi("x", 1, &[1, 2, 3])],
        vec![vi("y", 1, &[1, 2, 3])],
        11,
    );
    let e = quantize_graph(
        &m,
        &calib(&[("x", -1.0, 1.0), ("y", 0.0, 1.0)]),
        &QuantConfig::preset(Preset::A8W8),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("Softmax node 'sm'"), "{e}");
}

#[test]
fn opset_10_clip_and_pad_attributes_become_inputs() {
    let m = model(
        vec![
            node(
                "Pad",
                "pad",
                &["x"],
                &["p"],
                vec![attr_ints("pads", &[1, 1])],
            ),
            node(
                "Clip",
                "clip",
                &["p"],
                &["y"],
                vec![attr_float("min", 0.0), attr_float("max", 6.0)],
            ),
        ],
        vec![],
        vec![vi("x", 1, &[2])],
        vec![vi("y", 1, &[4])],
        10,
    );
    let c = calib(&[("x", -1.0, 8.0), ("p", -1.0, 8.0), ("y", 0.0, 6.0)]);
    let (q, _) = quant(&m, &c, &QuantConfig::preset(Preset::A8W8));
    let g = Q::new(&q);
    let clip = g.by_name("clip");
    assert!(clip.attribute.is_empty());
    assert_eq!(clip.input.len(), 3);
    let pad = g.by_name("pad");
    assert_eq!(g.ints_i64(&pad.input[1]), vec![1, 1]);
}

#[test]
fn report_json_lists_nodes_and_tensors() {
    let (_, r) = quant(
        &conv_relu("Relu"),
        &conv_relu_calib(),
        &QuantConfig::preset(Preset::Cpu),
    );
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["preset"], "CPU");
    assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
    let w = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "W")
        .unwrap();
    assert_eq!(w["kind"], "weight");
    assert_eq!(w["axis"], 0);
    assert_eq!(w["scale"].as_array().unwrap().len(), 3);
    assert_eq!(r.counts(), (2, 0));
}

impl<'a> Q<'a> {
    fn ints_i64(&self, name: &str) -> Vec<i64> {
        let t = self.init(name);
        assert_eq!(t.data_type, Some(7));
        t.raw_data
            .as_ref()
            .unwrap()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}

// ---------------------------------------------------------------- end to end on the real models

fn load_calibration(path: &Path) -> Calibration {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                TensorStats {
                    min: s["min"].as_f64().unwrap() as f32,
                    max: s["max"].as_f64().unwrap() as f32,
                    elem_type: s["elem_type"].as_i64().unwrap() as i32,
                    shape: s["shape"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_i64().unwrap())
                        .collect(),
                },
            )
        })
        .collect()
}

/// (model file stem, preprocessing of qdq_ref.py)
const REAL: &[(&str, &str)] = &[
    ("efficientnet-lite0", "eff"),
    ("blazeface-short-range", "pm1"),
    ("hand-landmark-lite", "unit"),
];

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

#[test]
fn real_models_every_preset_loads_runs_and_cpu_preset_fuses() {
    let (Some(_), true) = (venv_python(), shared().join("models").exists()) else {
        common::missing("the venv of scripts/common.sh (ensure_venv) and ../shared/models");
        return;
    };
    let images = shared().join("data/images");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("quant_qdq_real");
    std::fs::create_dir_all(&dir).unwrap();
    let mut table = Vec::new();
    for (stem, norm) in REAL {
        let src = shared().join(format!("models/{stem}.onnx"));
        let prep = dir.join(format!("{stem}.prep.onnx"));
        let cal = dir.join(format!("{stem}.calib.json"));
        if !prep.exists() {
            py(&["prepare", src.to_str().unwrap(), prep.to_str().unwrap()]);
        }
        if !cal.exists() {
            py(&[
                "calib",
                prep.to_str().unwrap(),
                images.to_str().unwrap(),
                norm,
                cal.to_str().unwrap(),
            ]);
        }
        let prepared = Model::load_file(&prep).unwrap();
        let calibration = load_calibration(&cal);
        for preset in Preset::ALL {
            let cfg = QuantConfig::preset(preset);
            let t0 = std::time::Instant::now();
            let (q, report) = quantize_graph(prepared.proto(), &calibration, &cfg)
                .unwrap_or_else(|e| panic!("{stem} {}: {e}", preset.name()));
            let qtime = t0.elapsed();
            assert_eq!(
                q.graph.as_ref().unwrap().output,
                prepared.proto().graph.as_ref().unwrap().output
            );
            let qp = dir.join(format!("{stem}.{}.onnx", preset.name()));
            Model::from_proto(q)
                .save(&qp, &SaveOptions::default())
                .unwrap();
            std::fs::write(
                dir.join(format!("{stem}.{}.report.json", preset.name())),
                report.to_json(),
            )
            .unwrap();
            let out = dir.join(format!("{stem}.{}.eval.json", preset.name()));
            let mut args = vec![
                "eval",
                src.to_str().unwrap(),
                qp.to_str().unwrap(),
                images.to_str().unwrap(),
                norm,
                out.to_str().unwrap(),
            ];
            // On a CPU where ONNX Runtime's fused U8S8 kernels saturate (x86 without VNNI), the CPU preset's
            // accuracy is read from its unfused execution (BlazeFace: -4.9 dB fused there); ipuflow's own sessions
            // run such a model through the CPU plan (tests/cpu_plan.rs).
            let unfused = preset == Preset::Cpu && Host::this().u8s8_saturates;
            if preset == Preset::Cpu {
                args.push("fusion");
            }
            if unfused {
                args.push("unfused");
            }
            py(&args);
            let res: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
            let (nq, nf) = report.counts();
            let line = format!(
                "{stem:22} {:6} quantize {:6.1} ms  nodes q/float {nq}/{nf}  SQNR {:6.2} dB (first output {:6.2})  top-1 agreement {}  labelled {}{}",
                preset.name(),
                qtime.as_secs_f64() * 1e3,
                res["sqnr_db"].as_f64().unwrap(),
                res["sqnr_first_output_db"].as_f64().unwrap(),
                res.get("top1_agreement").map(|v| v.to_string()).unwrap_or("-".into()),
                res.get("labelled_top1").and_then(|v| v.as_str()).unwrap_or("-"),
                if unfused { "  (unfused: this CPU's U8S8 kernels saturate)" } else { "" },
            );
            eprintln!("{line}");
            table.push(line.clone());
            assert!(res["sqnr_db"].as_f64().unwrap() > 0.0, "{line}");
            if preset == Preset::Cpu {
                let ops = res["optimized_ops"].as_object().unwrap();
                let count = |k: &str| ops.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                let float_left = count("Conv")
                    + count("Gemm")
                    + count("MatMul")
                    + count("FusedConv")
                    + count("FusedGemm")
                    + count("FusedMatMul");
                let fused = count("QLinearConv")
                    + count("QGemm")
                    + count("QLinearMatMul")
                    + count("MatMulIntegerToFloat");
                let line = format!("{stem:22} CPU optimized ops: {ops:?}");
                eprintln!("{line}");
                table.push(line.clone());
                assert_eq!(float_left, 0, "every Conv/Gemm/MatMul must fuse: {line}");
                assert!(fused > 0, "{line}");
            }
        }
    }
    std::fs::write(dir.join("summary.txt"), table.join("\n")).unwrap();
}

/// Measurement aid, not a check: quantizes `$STEM` (prepared model and calibration from the end-to-end test's
/// directory; `raw-<stem>` for an unprepared copy placed there) with preset variants and prints the evaluation.
/// `STEM=efficientnet-lite0 NORM=eff cargo test --test quant_qdq preset_variants -- --ignored --nocapture`
#[test]
#[ignore]
fn preset_variants_on_real_models() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("quant_qdq_real");
    let images = shared().join("data/images");
    let stem = std::env::var("STEM").unwrap_or_else(|_| "efficientnet-lite0".into());
    let norm = std::env::var("NORM").unwrap_or_else(|_| "eff".into());
    let prepared = Model::load_file(&dir.join(format!("{stem}.prep.onnx"))).unwrap();
    let calibration = load_calibration(&dir.join(format!("{stem}.calib.json")));
    let src = shared().join(format!("models/{}.onnx", stem.trim_start_matches("raw-")));
    for (label, mut cfg) in [
        ("CPU", QuantConfig::preset(Preset::Cpu)),
        ("XINT8", QuantConfig::preset(Preset::Xint8)),
        ("A8W8", QuantConfig::preset(Preset::A8W8)),
        (
            "A8W8sym",
            QuantConfig {
                activation_symmetric: true,
                ..QuantConfig::preset(Preset::A8W8)
            },
        ),
        (
            "A8W8pc",
            QuantConfig {
                per_channel: true,
                ..QuantConfig::preset(Preset::A8W8)
            },
        ),
        (
            "A16W8pc",
            QuantConfig {
                per_channel: true,
                ..QuantConfig::preset(Preset::A16W8)
            },
        ),
        (
            "XINT8pc",
            QuantConfig {
                per_channel: true,
                ..QuantConfig::preset(Preset::Xint8)
            },
        ),
    ] {
        if let Ok(x) = std::env::var("EXCL") {
            cfg.exclude_op_types = x.split(',').map(String::from).collect();
        }
        let (q, _) = quantize_graph(prepared.proto(), &calibration, &cfg).unwrap();
        let qp = dir.join(format!("{stem}.{label}.x.onnx"));
        Model::from_proto(q)
            .save(&qp, &SaveOptions::default())
            .unwrap();
        let out = dir.join(format!("{stem}.{label}.x.json"));
        let r = py(&[
            "eval",
            src.to_str().unwrap(),
            qp.to_str().unwrap(),
            images.to_str().unwrap(),
            &norm,
            out.to_str().unwrap(),
        ]);
        eprintln!("{label}: {}", r.trim());
    }
}

#[test]
fn constant_nodes_holding_weights_are_quantized() {
    let mut m = conv_relu("Relu");
    let g = m.graph.as_mut().unwrap();
    let w = g.initializer.remove(0);
    g.node.insert(
        0,
        node(
            "Constant",
            "wconst",
            &[],
            &["W"],
            vec![AttributeProto {
                name: Some("value".into()),
                r#type: Some(4),
                t: Some(Box::new(w)),
                ..Default::default()
            }],
        ),
    );
    let (q, r) = quant(&m, &conv_relu_calib(), &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    assert_eq!(g.count("Constant"), 0);
    assert_eq!(Q::axis(g.dq_in("conv", 1)), Some(0));
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("Constant nodes turned into initializers")));
}

#[test]
fn cpu_preset_puts_inlined_hardswish_back_together() {
    let gate = |opset: i64, alpha: f32| {
        model(
            vec![
                node(
                    "HardSigmoid",
                    "hsig",
                    &["x"],
                    &["h"],
                    vec![attr_float("alpha", alpha), attr_float("beta", 0.5)],
                ),
                node("Mul", "gate", &["x", "h"], &["y"], vec![]),
            ],
            vec![],
            vec![vi("x", 1, &[1, 4, 2, 2])],
            vec![vi("y", 1, &[1, 4, 2, 2])],
            opset,
        )
    };
    let c = calib(&[("x", -4.0, 4.0), ("h", 0.0, 1.0), ("y", -0.4, 4.0)]);
    let (q, r) = quant(&gate(14, 1.0 / 6.0), &c, &QuantConfig::preset(Preset::Cpu));
    let g = Q::new(&q);
    assert_eq!(
        (g.count("HardSigmoid"), g.count("Mul"), g.count("HardSwish")),
        (0, 0, 1)
    );
    let hs = g.by_name("gate");
    assert_eq!(hs.op_type.as_deref(), Some("HardSwish"));
    assert!(hs.attribute.is_empty());
    g.dq_in("gate", 0);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("1 x * HardSigmoid(x) gates")),
        "{:?}",
        r.notes
    );
    // Only the CPU preset, only HardSwish's constants, only where the opset has HardSwish.
    for (m, cfg) in [
        (gate(14, 1.0 / 6.0), QuantConfig::preset(Preset::A8W8)),
        (gate(14, 0.2), QuantConfig::preset(Preset::Cpu)),
        (gate(13, 1.0 / 6.0), QuantConfig::preset(Preset::Cpu)),
    ] {
        let (q, _) = quant(&m, &c, &cfg);
        let g = Q::new(&q);
        assert_eq!((g.count("HardSigmoid"), g.count("HardSwish")), (1, 0));
    }
}
