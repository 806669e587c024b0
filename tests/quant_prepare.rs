//! Preparation accepts what ONNX Runtime accepts: tensors of unknown rank, opsets below 10 (converted up exactly),
//! Constant-node weights. Each model here is tiny and built in memory; the quantized result must load, run and stay
//! close to the float model.

mod ort_support;

use ipuflow::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TypeProto,
    ValueInfoProto,
};
use ipuflow::onnx::Model;
use ipuflow::quant::data::{OwnedTensor, TensorSamples};
use ipuflow::quant::{quantize, Hooks, Preset, QuantConfig, QuantReport};
use ipuflow::runtime::{Session, SessionOptions};
use ort_support::{attr_ints, node, vi, D};

fn model_at(g: GraphProto, opset: i64, ir: i64) -> Model {
    Model::from_proto(ModelProto {
        ir_version: Some(ir),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        producer_name: Some("ipuflow-tests".into()),
        graph: Some(g),
        ..Default::default()
    })
}

fn f32_init(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        float_data: v.to_vec(),
        ..Default::default()
    }
}

/// A deterministic float input in [-1, 1).
fn input(shape: &[i64], seed: u32) -> OwnedTensor {
    let n: i64 = shape.iter().product();
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    OwnedTensor::from_f32(shape, &v).unwrap()
}

fn run(m: &Model, feeds: &[(String, OwnedTensor)]) -> Vec<f32> {
    let s = Session::from_model(m, &SessionOptions::default()).expect("session");
    let inputs: Vec<_> = feeds.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
    let out = s.run(&inputs).expect("run");
    out[0].as_slice::<f32>().unwrap().to_vec()
}

/// Quantizes with `preset` on 4 samples of `shape`, and checks the result against the float model on a fifth
/// (SQNR above 20 dB: 8-bit on these small graphs gives 30+).
fn quantize_and_compare(m: &Model, name: &str, shape: &[i64], preset: Preset) -> QuantReport {
    quantize_samples(
        m,
        preset,
        &|k| vec![(name.to_string(), input(shape, k))],
        true,
    )
}

/// As [`quantize_and_compare`], with each sample (several inputs) made by `sample(k)`.
fn quantize_samples(
    m: &Model,
    preset: Preset,
    sample: &dyn Fn(u32) -> Vec<(String, OwnedTensor)>,
    expect_qdq: bool,
) -> QuantReport {
    let _ = ort_support::runtime();
    let mut data = TensorSamples::new();
    for k in 0..4 {
        data.push(sample(k));
    }
    // These tests are about what the quantizer takes in (Constant-node weights, opsets, shapes). The output-head
    // bias correction is left out: measured on 4 samples and judged on a fifth it overfits on these tiny graphs
    // (constant_node_weights A8W8: 11.8 dB with it, > 20 without, on an AVX2 CPU without VNNI, 2026-12-03; its
    // guard compares on the same 4 samples, so whether it is kept depends on the last bits of ONNX Runtime's float
    // kernels).
    let config = QuantConfig {
        output_aware: false,
        ..QuantConfig::preset(preset)
    };
    let (q, report) = quantize(m, &config, &mut data, Hooks::default())
        .unwrap_or_else(|e| panic!("{preset:?}: {e}"));
    let x = sample(99);
    let (f, qv) = (run(m, &x), run(&q, &x));
    assert_eq!(f.len(), qv.len());
    let sig: f64 = f.iter().map(|&a| (a as f64).powi(2)).sum();
    let noise: f64 = f
        .iter()
        .zip(&qv)
        .map(|(&a, &b)| ((a - b) as f64).powi(2))
        .sum();
    let sqnr = 10.0 * (sig / noise.max(1e-30)).log10();
    assert!(sqnr > 20.0, "{preset:?}: SQNR {sqnr:.1} dB");
    assert_eq!(
        q.proto()
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .any(|n| n.op_type.as_deref() == Some("QuantizeLinear")),
        expect_qdq,
        "{preset:?}: Q/DQ nodes present or not as expected"
    );
    report
}

/// The issue's reproduction: ONNX Runtime reports `[]` for a tensor of unknown rank; preparation used to write that
/// into value_info, ONNX read it as a scalar, and the calibration session failed ("Invalid attribute perm").
#[test]
fn transpose_of_an_unknown_rank_tensor_quantizes() {
    let x = ValueInfoProto {
        name: Some("x".into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(ipuflow::onnx::proto::type_proto::Value::TensorType(
                ipuflow::onnx::proto::type_proto::Tensor {
                    elem_type: Some(1),
                    shape: None, // unknown rank
                },
            )),
        }),
        ..Default::default()
    };
    let mut t = node("Transpose", &["r"], &["y"]);
    t.attribute.push(attr_ints("perm", &[1, 0, 2]));
    let g = GraphProto {
        name: Some("unknown_rank".into()),
        node: vec![node("Relu", &["x"], &["r"]), t],
        input: vec![x],
        output: vec![vi("y", 1, &[D::Unknown, D::Unknown, D::Unknown])],
        ..Default::default()
    };
    let m = model_at(g, 17, 8);
    for p in [Preset::A8W8, Preset::Xint8] {
        quantize_and_compare(&m, "x", &[2, 3, 4], p);
    }
}

/// Opset 9 (Conv, a Slice with attribute starts/ends/axes, Relu, BatchNormalization with `spatial`): converted to
/// 10 and then 13, exactly, and the report names the conversion. It used to be refused ("supported: 10 to 23").
#[test]
fn opset_9_model_is_converted_and_quantized() {
    let mut slice = node("Slice", &["c"], &["s"]);
    slice.attribute.extend([
        attr_ints("starts", &[1]),
        attr_ints("ends", &[5]),
        attr_ints("axes", &[2]),
    ]);
    let conv = NodeProto {
        name: Some("conv".into()),
        ..node("Conv", &["x", "w", "b"], &["c"])
    };
    let w: Vec<f32> = (0..4 * 2 * 3 * 3)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
        .collect();
    let g = GraphProto {
        name: Some("opset9".into()),
        node: vec![conv, slice, node("Relu", &["s"], &["y"])],
        initializer: vec![
            f32_init("w", &[4, 2, 3, 3], &w),
            f32_init("b", &[4], &[0.1, -0.2, 0.3, 0.0]),
        ],
        input: vec![vi(
            "x",
            1,
            &[D::Fixed(1), D::Fixed(2), D::Fixed(8), D::Fixed(8)],
        )],
        output: vec![vi(
            "y",
            1,
            &[D::Fixed(1), D::Fixed(4), D::Fixed(4), D::Fixed(6)],
        )],
        ..Default::default()
    };
    let m = model_at(g, 9, 4);
    for p in [Preset::A8W8, Preset::Xint8, Preset::A16W8, Preset::Cpu] {
        let r = quantize_and_compare(&m, "x", &[1, 2, 8, 8], p);
        assert_eq!(r.opset_in, 9, "the report gives the file's opset");
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("opset 9 converted to 10") && n.contains("1 Slice")),
            "{p:?}: notes {:?}",
            r.notes
        );
    }
}

/// Below opset 7 broadcasting had other semantics: refused with the supported range named.
#[test]
fn opset_6_is_refused_naming_the_range() {
    let g = GraphProto {
        name: Some("opset6".into()),
        node: vec![node("Relu", &["x"], &["y"])],
        input: vec![vi("x", 1, &[D::Fixed(2)])],
        output: vec![vi("y", 1, &[D::Fixed(2)])],
        ..Default::default()
    };
    let e = ipuflow::quant::prepare::check_quantizable(model_at(g, 6, 3).proto()).unwrap_err();
    assert!(
        e.message().contains("supported: 7 to 23"),
        "{}",
        e.message()
    );
}

/// Weights held by Constant nodes (as PaddlePaddle exports write them) are quantized like initializers: the Conv's
/// weight comes from an int8 initializer through a DequantizeLinear.
#[test]
fn constant_node_weights_are_quantized() {
    let w: Vec<f32> = (0..4 * 2).map(|i| (i as f32 - 3.5) / 4.0).collect();
    let constant = |name: &str, t: TensorProto| NodeProto {
        op_type: Some("Constant".into()),
        name: Some(format!("const_{name}")),
        output: vec![name.to_string()],
        attribute: vec![AttributeProto {
            name: Some("value".into()),
            t: Some(Box::new(t)),
            r#type: Some(4),
            ..Default::default()
        }],
        ..Default::default()
    };
    let g = GraphProto {
        name: Some("constant_weights".into()),
        node: vec![
            constant("w", f32_init("", &[4, 2, 1, 1], &w)),
            constant("b", f32_init("", &[4], &[0.0, 0.1, 0.2, 0.3])),
            NodeProto {
                name: Some("conv".into()),
                ..node("Conv", &["x", "w", "b"], &["y"])
            },
        ],
        input: vec![vi(
            "x",
            1,
            &[D::Fixed(1), D::Fixed(2), D::Fixed(4), D::Fixed(4)],
        )],
        output: vec![vi(
            "y",
            1,
            &[D::Fixed(1), D::Fixed(4), D::Fixed(4), D::Fixed(4)],
        )],
        ..Default::default()
    };
    let m = model_at(g, 13, 8);
    let r = quantize_and_compare(&m, "x", &[1, 2, 4, 4], Preset::A8W8);
    assert!(r.node("conv").is_some_and(|n| n.quantized), "{:?}", r.nodes);
    let w = r
        .tensor("w")
        .expect("the Constant's weight is in the report");
    assert!(w.kind.contains("weight"), "{w:?}");
}

/// An If (as Silero VAD chooses its 8/16 kHz branch) stays float with its subgraphs, and the report says so by
/// name; the main graph around it is still quantized.
#[test]
fn if_subgraphs_stay_float_with_a_reason() {
    let branch = |name: &str, op: &str| GraphProto {
        name: Some(name.into()),
        node: vec![node(op, &["c"], &[&format!("{name}_out")])],
        output: vec![vi(
            &format!("{name}_out"),
            1,
            &[D::Fixed(1), D::Fixed(4), D::Fixed(4), D::Fixed(4)],
        )],
        ..Default::default()
    };
    let graph_attr = |name: &str, g: GraphProto| AttributeProto {
        name: Some(name.into()),
        g: Some(Box::new(g)),
        r#type: Some(5),
        ..Default::default()
    };
    let mut iff = node("If", &["flag"], &["y"]);
    iff.name = Some("choose".into());
    iff.attribute = vec![
        graph_attr("then_branch", branch("then", "Relu")),
        graph_attr("else_branch", branch("else", "Neg")),
    ];
    let w: Vec<f32> = (0..4 * 2).map(|i| (i as f32 - 3.5) / 4.0).collect();
    let g = GraphProto {
        name: Some("with_if".into()),
        node: vec![
            NodeProto {
                name: Some("conv".into()),
                ..node("Conv", &["x", "w"], &["c"])
            },
            iff,
        ],
        initializer: vec![f32_init("w", &[4, 2, 1, 1], &w)],
        input: vec![
            vi(
                "x",
                1,
                &[D::Fixed(1), D::Fixed(2), D::Fixed(4), D::Fixed(4)],
            ),
            vi("flag", 9, &[]),
        ],
        output: vec![vi(
            "y",
            1,
            &[D::Fixed(1), D::Fixed(4), D::Fixed(4), D::Fixed(4)],
        )],
        ..Default::default()
    };
    let m = model_at(g, 17, 8);
    let sample = |k: u32| {
        vec![
            ("x".to_string(), input(&[1, 2, 4, 4], k)),
            (
                "flag".to_string(),
                OwnedTensor::from_bytes(ipuflow::runtime::ElementType::Bool, &[], vec![1]).unwrap(),
            ),
        ]
    };
    let r = quantize_samples(&m, Preset::A8W8, &sample, true);
    assert!(r.node("conv").is_some_and(|n| n.quantized), "{:?}", r.nodes);
    assert!(
        r.node("choose").is_some_and(|n| !n.quantized),
        "{:?}",
        r.nodes
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("If/Loop/Scan") && n.contains("choose")),
        "{:?}",
        r.notes
    );
}

/// Opset 12 with a Softmax on a tensor of unknown rank (PP-OCRv4's recognizer): raising the opset to 13 is exact only
/// for the last axis, so the emitter needs the rank, which here only the calibration runs know.
#[test]
fn softmax_on_an_unknown_rank_tensor_is_raised_to_opset_13() {
    let x = ValueInfoProto {
        name: Some("x".into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(ipuflow::onnx::proto::type_proto::Value::TensorType(
                ipuflow::onnx::proto::type_proto::Tensor {
                    elem_type: Some(1),
                    shape: None,
                },
            )),
        }),
        ..Default::default()
    };
    let mut sm = node("Softmax", &["r"], &["y"]);
    sm.attribute.push(AttributeProto {
        name: Some("axis".into()),
        i: Some(2),
        r#type: Some(2),
        ..Default::default()
    });
    let g = GraphProto {
        name: Some("softmax_unknown_rank".into()),
        node: vec![node("Relu", &["x"], &["r"]), sm],
        input: vec![x],
        output: vec![vi("y", 1, &[D::Unknown, D::Unknown, D::Unknown])],
        ..Default::default()
    };
    let r = quantize_and_compare(&model_at(g, 12, 7), "x", &[2, 3, 4], Preset::A8W8);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("rank taken from the calibration")),
        "{:?}",
        r.notes
    );
}

/// Opset 8: BatchNormalization with `spatial`, TopK with its `k` attribute (both changed by opset 10) are converted;
/// the quantized model computes what ONNX Runtime computes on the opset-8 original.
#[test]
fn opset_8_batchnorm_and_topk_are_converted() {
    let int_attr = |name: &str, i: i64| AttributeProto {
        name: Some(name.into()),
        i: Some(i),
        r#type: Some(2),
        ..Default::default()
    };
    let mut bn = node("BatchNormalization", &["c", "s", "b", "m", "v"], &["n"]);
    bn.attribute.push(int_attr("spatial", 1));
    let mut topk = node("TopK", &["f"], &["y", "idx"]);
    topk.attribute.push(int_attr("k", 5));
    let w: Vec<f32> = (0..4 * 2).map(|i| (i as f32 - 3.5) / 4.0).collect();
    let g = GraphProto {
        name: Some("opset8".into()),
        node: vec![
            node("Conv", &["x", "w"], &["c"]),
            bn,
            node("Flatten", &["n"], &["f"]),
            topk,
        ],
        initializer: vec![
            f32_init("w", &[4, 2, 1, 1], &w),
            f32_init("s", &[4], &[1.0, 0.5, 2.0, 1.5]),
            f32_init("b", &[4], &[0.1, 0.0, -0.1, 0.2]),
            f32_init("m", &[4], &[0.0, 0.1, 0.2, 0.3]),
            f32_init("v", &[4], &[1.0, 2.0, 0.5, 1.0]),
        ],
        input: vec![vi(
            "x",
            1,
            &[D::Fixed(1), D::Fixed(2), D::Fixed(4), D::Fixed(4)],
        )],
        output: vec![
            vi("y", 1, &[D::Fixed(1), D::Fixed(5)]),
            vi("idx", 7, &[D::Fixed(1), D::Fixed(5)]),
        ],
        ..Default::default()
    };
    let r = quantize_and_compare(&model_at(g, 8, 3), "x", &[1, 2, 4, 4], Preset::A8W8);
    assert!(
        r.notes.iter().any(|n| n.contains("opset 8 converted to 10")
            && n.contains("1 BatchNormalization")
            && n.contains("1 TopK")),
        "{:?}",
        r.notes
    );
}
