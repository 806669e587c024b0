//! The whole quantization pipeline (`ipuflow::quant::quantize`) on the real models of ../shared/models and real
//! images of ../shared/data/images: preparation keeps the function, every preset gives a model ONNX Runtime runs,
//! accuracy on the anchor protocol (printed), and every bad input is a clear error.
//!
//! Run with `cargo test --release --test quant_pipeline -- --nocapture` to see the accuracy table.

mod ort_support;

use std::path::PathBuf;

use ipuflow::onnx::proto::{ModelProto, NodeProto};
use ipuflow::onnx::Model;
use ipuflow::quant::calibrate::calibrate;
use ipuflow::quant::data::{
    list_images, CalibrationSource, FnSource, ImageFolder, ImagePreprocess, Layout, NpyDir,
    OwnedTensor, TensorSamples,
};
use ipuflow::quant::prepare::prepare;
use ipuflow::quant::{quantize, CancelToken, Hooks, Preset, Progress, QuantConfig, Stage};
use ipuflow::runtime::{ElementType, Session, SessionOptions, TensorRef};
use ipuflow::{Error, ErrorKind};

const MODELS: [&str; 3] = [
    "efficientnet-lite0.onnx",
    "blazeface-short-range.onnx",
    "hand-landmark-lite.onnx",
];

/// `../shared/data/images/<sub>`, or None after `missing` (a failure under CI).
fn images(sub: &str) -> Option<PathBuf> {
    ort_support::common::shared(&format!("data/images/{sub}"))
}

fn float_session(m: &Model) -> Session {
    let o = SessionOptions {
        intra_op_threads: Some(2),
        ..Default::default()
    };
    Session::from_model(m, &o).expect("session")
}

/// All outputs of one run, as f32 vectors.
fn run_all(s: &Session, input: &str, t: &OwnedTensor) -> Vec<Vec<f32>> {
    let outs = s.run(&[(input, t.view())]).expect("run");
    outs.iter()
        .filter(|o| o.element_type() == ElementType::Float32)
        .map(|o| o.as_slice::<f32>().unwrap().to_vec())
        .collect()
}

fn input_name(m: &Model) -> String {
    float_session(m).inputs()[0].name.clone()
}

/// The eval inputs of the anchor protocol: eval/ + labelled/, each as is and flipped.
fn eval_tensors(model: &Model, limit: Option<usize>) -> Vec<OwnedTensor> {
    let s = float_session(model);
    let mut files = list_images(&images("eval").unwrap()).unwrap();
    files.extend(list_images(&images("labelled").unwrap()).unwrap());
    if let Some(l) = limit {
        files.truncate(l);
    }
    let mut out = Vec::new();
    for flip in [false, true] {
        let r = ImagePreprocess {
            flip_horizontal: flip,
            ..Default::default()
        }
        .resolve(s.inputs())
        .unwrap();
        for f in &files {
            out.push(r.load(f).unwrap());
        }
    }
    out
}

fn sqnr(r: &[f32], q: &[f32]) -> f64 {
    let s: f64 = r.iter().map(|&x| (x as f64).powi(2)).sum();
    let n: f64 = r
        .iter()
        .zip(q)
        .map(|(&a, &b)| ((a - b) as f64).powi(2))
        .sum();
    10.0 * (s / n.max(1e-30)).log10()
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

#[test]
fn prepared_models_compute_the_same_function() {
    ort_support::runtime();
    let Some(eval) = images("eval") else { return };
    for name in MODELS {
        let Some(path) = ort_support::shared_model(name) else {
            return;
        };
        let model = Model::load_file(&path).unwrap();
        let prepared = prepare(&model).unwrap();
        let pm = Model::from_proto(prepared.model.clone());
        let ops: std::collections::BTreeSet<&str> = prepared
            .model
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.as_deref().unwrap())
            .collect();
        for banned in [
            "Constant",
            "Identity",
            "Dropout",
            "Shape",
            "Gather",
            "ConstantOfShape",
            "BatchNormalization",
        ] {
            assert!(
                !ops.contains(banned),
                "{name}: {banned} left in the prepared model: {ops:?}"
            );
        }
        assert!(
            prepared.model.opset_import.iter().all(|o| o
                .domain
                .as_deref()
                .unwrap_or("")
                .is_empty()),
            "{:?}",
            prepared.model.opset_import
        );
        assert!(
            prepared.float_activations().count() > 20,
            "{name}: activations {:?}",
            prepared.activations.len()
        );
        let (a, b) = (float_session(&model), float_session(&pm));
        let inp = a.inputs()[0].name.clone();
        let r = ImagePreprocess::default().resolve(a.inputs()).unwrap();
        let mut worst = 0f32;
        for f in list_images(&eval).unwrap().iter().take(6) {
            let t = r.load(f).unwrap();
            for (x, y) in run_all(&a, &inp, &t).iter().zip(run_all(&b, &inp, &t)) {
                for (p, q) in x.iter().zip(&y) {
                    worst = worst.max((p - q).abs() / p.abs().max(1.0));
                }
            }
        }
        println!(
            "{name}: {} notes {:?}; worst |diff| {worst:e}",
            prepared.activations.len(),
            prepared.notes
        );
        assert!(worst <= 1e-5, "{name}: prepared model differs by {worst}");
        // Dynamic batch: efficientnet takes N images at once, the prepared model too.
        if a.inputs()[0].shape[0] < 0 {
            let t1 = r.load(&list_images(&eval).unwrap()[0]).unwrap();
            let t2 = r.load(&list_images(&eval).unwrap()[1]).unwrap();
            let mut both = t1.data.clone();
            both.extend_from_slice(&t2.data);
            let mut shape = t1.shape.clone();
            shape[0] = 2;
            let outs = b
                .run(&[(
                    inp.as_str(),
                    TensorRef::from_bytes(ElementType::Float32, &shape, &both),
                )])
                .unwrap();
            let o = outs[0].as_slice::<f32>().unwrap();
            let single = run_all(&a, &inp, &t2);
            let half = o.len() / 2;
            let d = o[half..]
                .iter()
                .zip(&single[0])
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-4, "{name}: batch of 2 differs from single by {d}");
        }
    }
}

fn calib_source(limit: Option<usize>) -> ImageFolder {
    let mut files = list_images(&images("calib").unwrap()).unwrap();
    if let Some(l) = limit {
        files.truncate(l);
    }
    ImageFolder::from_files(files, ImagePreprocess::default()).unwrap()
}

#[test]
fn every_preset_on_every_model_runs_in_onnx_runtime() {
    ort_support::runtime();
    if images("calib").is_none() {
        return;
    }
    for name in MODELS {
        let Some(path) = ort_support::shared_model(name) else {
            return;
        };
        let model = Model::load_file(&path).unwrap();
        let evals = eval_tensors(&model, Some(4));
        let fs = float_session(&model);
        let inp = input_name(&model);
        for preset in Preset::ALL {
            let cfg = QuantConfig::preset(preset);
            let mut src = calib_source(Some(8));
            let (q, report) = quantize(&model, &cfg, &mut src, Hooks::default())
                .unwrap_or_else(|e| panic!("{name} {}: {e}", preset.name()));
            let (nq, nf) = report.counts();
            let qs = float_session(&q);
            let (mut rs, mut qv) = (Vec::new(), Vec::new());
            for t in &evals {
                rs.extend(run_all(&fs, &inp, t).concat());
                qv.extend(run_all(&qs, &inp, t).concat());
            }
            let db = sqnr(&rs, &qv);
            println!(
                "{name:28} {:6} nodes quantized {nq:3} float {nf:3}  all-outputs SQNR {db:6.2} dB",
                preset.name()
            );
            assert!(qv.iter().all(|v| v.is_finite()));
            assert!(db > 0.0, "{name} {}: SQNR {db}", preset.name());
        }
    }
}

/// The anchor protocol on EfficientNet-Lite0: calib = 31 images, eval = 74 inputs; the numbers are printed next to
/// the anchors of ../shared/docs/quantization-anchors.md.
#[test]
fn efficientnet_anchor_protocol() {
    ort_support::runtime();
    let Some(path) = ort_support::shared_model("efficientnet-lite0.onnx") else {
        return;
    };
    if images("calib").is_none() {
        return;
    }
    let model = Model::load_file(&path).unwrap();
    let evals = eval_tensors(&model, None);
    let labelled = list_images(&images("labelled").unwrap()).unwrap();
    let labels: Vec<usize> = labelled
        .iter()
        .map(|p| {
            p.file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .rsplit('_')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let n_eval = evals.len() / 2; // first half: as is
    let fs = float_session(&model);
    let inp = input_name(&model);
    let refs: Vec<Vec<f32>> = evals
        .iter()
        .map(|t| run_all(&fs, &inp, t).remove(0))
        .collect();
    let ref_top1 = (0..labels.len())
        .filter(|&i| argmax(&refs[n_eval - labels.len() + i]) == labels[i])
        .count();
    println!("float: labelled top-1 {ref_top1}/20");
    for preset in Preset::ALL {
        let cfg = QuantConfig::preset(preset);
        let t0 = std::time::Instant::now();
        let mut src = calib_source(None);
        let (q, _) = quantize(&model, &cfg, &mut src, Hooks::default()).unwrap();
        let secs = t0.elapsed().as_secs_f64();
        let qs = float_session(&q);
        let outs: Vec<Vec<f32>> = evals
            .iter()
            .map(|t| run_all(&qs, &inp, t).remove(0))
            .collect();
        let agree = refs
            .iter()
            .zip(&outs)
            .filter(|(r, o)| argmax(r) == argmax(o))
            .count() as f64
            / refs.len() as f64;
        let db = sqnr(&refs.concat(), &outs.concat());
        let top1 = (0..labels.len())
            .filter(|&i| argmax(&outs[n_eval - labels.len() + i]) == labels[i])
            .count();
        println!(
            "efficientnet-lite0 {:6}: quantize {secs:5.2} s  top-1 agreement {agree:.3}  logits SQNR {db:5.2} dB  labelled top-1 {top1}/20",
            preset.name()
        );
        assert!(agree > 0.3, "{}: agreement {agree}", preset.name());
    }
}

// ---------------------------------------------------------------- errors

fn effnet() -> Option<Model> {
    ort_support::runtime();
    ort_support::shared_model("efficientnet-lite0.onnx").map(|p| Model::load_file(&p).unwrap())
}

fn one_sample(shape: &[i64]) -> OwnedTensor {
    let n: i64 = shape.iter().product();
    OwnedTensor::from_f32(
        shape,
        &(0..n)
            .map(|i| ((i % 251) as f32 - 125.0) / 128.0)
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

fn quantize_err(model: &Model, src: &mut dyn CalibrationSource) -> Error {
    quantize(
        model,
        &QuantConfig::preset(Preset::Cpu),
        src,
        Hooks::default(),
    )
    .map(|_| ())
    .unwrap_err()
}

#[test]
fn no_calibration_data_is_a_calibration_error() {
    let Some(m) = effnet() else { return };
    let e = quantize_err(&m, &mut TensorSamples::new());
    assert_eq!(e.kind(), ErrorKind::Calibration, "{e}");
    assert!(e.message().contains("no calibration data"), "{e}");
    let dir = std::env::temp_dir().join(format!("ipuflow-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(
        ImageFolder::open(&dir, ImagePreprocess::default())
            .unwrap_err()
            .kind(),
        ErrorKind::Calibration
    );
    assert_eq!(
        NpyDir::open(&dir).unwrap_err().kind(),
        ErrorKind::Calibration
    );
    assert_eq!(
        NpyDir::open(&dir.join("missing")).unwrap_err().kind(),
        ErrorKind::FileNotFound
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_name_shape_or_type_names_the_tensor_and_both_values() {
    let Some(m) = effnet() else { return };
    let mut s = TensorSamples::new();
    s.push(vec![("image".into(), one_sample(&[1, 3, 224, 224]))]);
    let e = quantize_err(&m, &mut s);
    assert_eq!(e.kind(), ErrorKind::TensorMismatch, "{e}");
    assert!(
        e.message().contains("'image'") && e.message().contains("'input'"),
        "{e}"
    );

    let mut s = TensorSamples::new();
    s.push(vec![("input".into(), one_sample(&[1, 3, 224, 224]))]);
    s.push(vec![("input".into(), one_sample(&[1, 3, 128, 128]))]);
    let e = quantize_err(&m, &mut s);
    assert_eq!(e.kind(), ErrorKind::TensorMismatch, "{e}");
    assert!(
        e.message().contains("'input'")
            && e.message().contains("128")
            && e.message().contains("224"),
        "{e}"
    );
    assert!(e.message().contains("calibration batch 1"), "{e}");

    let mut s = TensorSamples::new();
    s.push(vec![(
        "input".into(),
        OwnedTensor::from_bytes(
            ElementType::Uint8,
            &[1, 3, 224, 224],
            vec![0; 3 * 224 * 224],
        )
        .unwrap(),
    )]);
    let e = quantize_err(&m, &mut s);
    assert_eq!(e.kind(), ErrorKind::TensorMismatch, "{e}");
    assert!(
        e.message().contains("uint8")
            && e.message().contains("float")
            && e.message().contains("'input'"),
        "{e}"
    );
}

fn with_default_opset(m: &Model, v: i64) -> Model {
    let mut p: ModelProto = m.proto().clone();
    for o in &mut p.opset_import {
        if o.domain.as_deref().unwrap_or("").is_empty() {
            o.version = Some(v);
        }
    }
    Model::from_proto(p)
}

#[test]
fn already_quantized_models_and_unsupported_opsets_are_refused() {
    let Some(m) = effnet() else { return };
    let mut s = TensorSamples::new();
    s.push(vec![("input".into(), one_sample(&[1, 3, 224, 224]))]);
    let (q, _) = quantize(
        &m,
        &QuantConfig::preset(Preset::A8W8),
        &mut s,
        Hooks::default(),
    )
    .unwrap();
    s.rewind();
    let e = quantize_err(&q, &mut s);
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("already quantized"), "{e}");
    s.rewind();
    // Opsets 7 to 9 are converted up (tests/quant_prepare.rs); below 7 is refused.
    let e = quantize_err(&with_default_opset(&m, 6), &mut s);
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("opset 6"), "{e}");
    // A QLinearConv anywhere means quantized, too.
    let mut p = m.proto().clone();
    p.graph.as_mut().unwrap().node.push(NodeProto {
        op_type: Some("QLinearConv".into()),
        name: Some("qc".into()),
        ..Default::default()
    });
    let e = quantize_err(&Model::from_proto(p), &mut s);
    assert!(e.message().contains("'qc'"), "{e}");
}

#[test]
fn callback_errors_and_cancellation() {
    let Some(m) = effnet() else { return };
    let mut n = 0;
    let mut src = FnSource::new(Some(4), |_inputs: &[ipuflow::runtime::TensorInfo]| {
        n += 1;
        if n == 3 {
            return Err(Error::new(ErrorKind::Callback, "the camera is unplugged"));
        }
        Ok(Some(vec![(
            "input".to_string(),
            one_sample(&[1, 3, 224, 224]),
        )]))
    });
    let e = quantize_err(&m, &mut src);
    assert_eq!(e.kind(), ErrorKind::Callback, "{e}");
    assert_eq!(e.message(), "the camera is unplugged");

    // Cancelled by the progress callback midway through calibration.
    let mut s = TensorSamples::new();
    for _ in 0..4 {
        s.push(vec![("input".into(), one_sample(&[1, 3, 224, 224]))]);
    }
    let mut seen: Vec<Progress> = Vec::new();
    let mut progress = |p: &Progress| {
        seen.push(*p);
        !(p.stage == Stage::Calibrate && p.done == 2)
    };
    let e = quantize(
        &m,
        &QuantConfig::preset(Preset::Cpu),
        &mut s,
        Hooks {
            progress: Some(&mut progress),
            cancel: None,
        },
    )
    .map(|_| ())
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert!(
        seen.iter()
            .any(|p| p.stage == Stage::Calibrate && p.done == 1 && p.total == Some(4)),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|p| p.stage == Stage::Quantize));

    // Cancelled through a token (e.g. from another thread).
    s.rewind();
    let token = CancelToken::new();
    let t2 = token.clone();
    let mut progress = move |p: &Progress| {
        if p.stage == Stage::Calibrate && p.done == 1 {
            t2.cancel();
        }
        true
    };
    let e = quantize(
        &m,
        &QuantConfig::preset(Preset::Cpu),
        &mut s,
        Hooks {
            progress: Some(&mut progress),
            cancel: Some(token),
        },
    )
    .map(|_| ())
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
}

#[test]
fn npy_directory_and_nhwc_images() {
    let Some(m) = effnet() else { return };
    let dir = std::env::temp_dir().join(format!("ipuflow-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = one_sample(&[1, 3, 224, 224]);
    let mut header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(&t.data);
    std::fs::write(dir.join("a.npy"), &bytes).unwrap();
    std::fs::write(dir.join("b.npy"), &bytes).unwrap();
    let mut src = NpyDir::open(&dir).unwrap();
    let prepared = prepare(&m).unwrap();
    let calib = calibrate(
        &prepared,
        &QuantConfig::preset(Preset::Cpu),
        &mut src,
        &mut |_, _| Ok(()),
    )
    .unwrap();
    assert!(calib.len() > 50, "{}", calib.len());
    let inp = &calib["input"];
    assert!(inp.min < -0.9 && inp.max > 0.9, "{inp:?}");
    // A truncated file: the error names it.
    std::fs::write(dir.join("c.npy"), &bytes[..bytes.len() - 4]).unwrap();
    let mut src = NpyDir::open(&dir).unwrap();
    let e = calibrate(
        &prepared,
        &QuantConfig::preset(Preset::Cpu),
        &mut src,
        &mut |_, _| Ok(()),
    )
    .unwrap_err();
    assert!(e.message().contains("c.npy"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();

    // NHWC: the image loader lays pixels out channel-last, same values.
    let infos = float_session(&m).inputs().to_vec();
    let f = &list_images(&images("eval").unwrap()).unwrap()[0];
    let nchw = ImagePreprocess::default()
        .resolve(&infos)
        .unwrap()
        .load(f)
        .unwrap();
    let mut nhwc_info = infos.clone();
    nhwc_info[0].shape = vec![1, 224, 224, 3];
    let nhwc = ImagePreprocess {
        layout: Layout::Nhwc,
        ..Default::default()
    }
    .resolve(&nhwc_info)
    .unwrap()
    .load(f)
    .unwrap();
    assert_eq!(nhwc.shape, vec![1, 224, 224, 3]);
    let a = |t: &OwnedTensor, i: usize| {
        f32::from_ne_bytes(t.data[i * 4..i * 4 + 4].try_into().unwrap())
    };
    for (y, x, c) in [(0usize, 0usize, 0usize), (10, 200, 1), (223, 17, 2)] {
        assert_eq!(
            a(&nchw, c * 224 * 224 + y * 224 + x),
            a(&nhwc, (y * 224 + x) * 3 + c)
        );
    }
    // Auto layout picks NHWC from the shape.
    let auto = ImagePreprocess::default().resolve(&nhwc_info).unwrap();
    assert_eq!(auto.layout, Layout::Nhwc);
}

/// The CPU preset, quantized entirely by ipuflow (Rust calibration), is shaped so ONNX Runtime's CPU provider fuses
/// every Conv, Gemm and MatMul into a QLinear or integer kernel: read back ORT's optimized model and count.
#[test]
fn cpu_preset_fuses_every_conv_gemm_and_matmul_on_the_cpu_provider() {
    use ipuflow::runtime::GraphOptimizationLevel;
    ort_support::runtime();
    if images("calib").is_none() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("quant_pipeline_fusion");
    std::fs::create_dir_all(&dir).unwrap();
    for name in MODELS {
        let Some(path) = ort_support::shared_model(name) else {
            return;
        };
        let model = Model::load_file(&path).unwrap();
        let (q, _) = quantize(
            &model,
            &QuantConfig::preset(Preset::Cpu),
            &mut calib_source(Some(8)),
            Hooks::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let optimized = dir.join(name);
        let o = SessionOptions {
            graph_optimization_level: GraphOptimizationLevel::All,
            optimized_model_path: Some(optimized.clone()),
            intra_op_threads: Some(1),
            // The model as written: what the preset emits must fuse by itself (the CPU plan may pick float
            // activations for a small model such as blazeface, which is a different question).
            fallback_execution: ipuflow::runtime::FallbackExecution::AsWritten,
            ..Default::default()
        };
        drop(Session::from_model(&q, &o).expect("session on the quantized model"));
        let summary = Model::load_file(&optimized).unwrap().summary();
        let count = |op: &str| {
            summary
                .op_histogram
                .iter()
                .filter(|(o, _)| o.rsplit("::").next() == Some(op))
                .map(|(_, n)| n)
                .sum::<usize>()
        };
        let float_left: usize = [
            "Conv",
            "Gemm",
            "MatMul",
            "FusedConv",
            "FusedGemm",
            "FusedMatMul",
        ]
        .iter()
        .map(|o| count(o))
        .sum();
        let fused: usize = [
            "QLinearConv",
            "QGemm",
            "QLinearMatMul",
            "MatMulIntegerToFloat",
        ]
        .iter()
        .map(|o| count(o))
        .sum();
        println!("{name:28} CPU preset after ORT's optimizer: {fused} fused kernels, {float_left} float Conv/Gemm/MatMul");
        assert_eq!(
            float_left, 0,
            "{name}: every Conv/Gemm/MatMul must fuse: {:?}",
            summary.op_histogram
        );
        assert!(fused > 0, "{name}: {:?}", summary.op_histogram);
    }
}
