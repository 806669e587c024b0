//! Sensitivity analysis and accuracy-aware mixed precision (`ipuflow::quant::mixed`) on a real model (BlazeFace,
//! ../shared/models) with real calibration images: the loop stops as soon as the target holds, makes no step when
//! the target already holds, and returns the best model with `met: false` and the reason when the NPU-coverage
//! floor blocks it. A host metric callback (the host's own SQNR on photos the calibration never saw) drives the
//! loop the same way, and its failures stop the quantization with a `Callback` error; a calibration-cache hit gives
//! sensitivity and mixed precision the same samples as the run that wrote the cache.

mod ort_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ipuflow::onnx::Model;
use ipuflow::quant::data::{
    CalibrationSource, ImageFolder, ImagePreprocess, OwnedTensor, TensorSamples,
};
use ipuflow::quant::mixed::{HostMetric, MixedReport};
use ipuflow::quant::{quantize, Hooks, Preset, QuantConfig, QuantReport};
use ipuflow::runtime::{Session, SessionOptions};
use ipuflow::ErrorKind;

/// Calibration samples held by the test (the sensitivity ranking uses 8, so its baseline is the loop's).
const SAMPLES: usize = 8;

/// BlazeFace and its first `SAMPLES` calibration images, or None after `missing` (a failure under CI).
fn blazeface() -> Option<(Model, TensorSamples)> {
    let (model, mut images) = blazeface_images(SAMPLES)?;
    let mut samples = TensorSamples::new();
    for s in images.drain(..) {
        samples.push(s);
    }
    Some((model, samples))
}

/// One sample: its named input tensors.
type Sample = Vec<(String, OwnedTensor)>;

/// BlazeFace and its first `n` calibration images as samples.
fn blazeface_images(n: usize) -> Option<(Model, Vec<Sample>)> {
    ort_support::runtime();
    let path = ort_support::shared_model("blazeface-short-range.onnx")?;
    let dir = ort_support::common::shared("data/images/calib")?;
    let model = Model::load_file(&path).unwrap();
    let inputs = Session::from_model(&model, &SessionOptions::default())
        .unwrap()
        .inputs()
        .to_vec();
    let mut images = ImageFolder::open(&dir, ImagePreprocess::default()).unwrap();
    let mut samples = Vec::new();
    for _ in 0..n {
        let b = images
            .next_batch(&inputs)
            .unwrap()
            .expect("enough calibration images");
        let owned = b
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), owned(t)))
            .collect();
        samples.push(owned);
    }
    Some((model, samples))
}

fn owned(t: &ipuflow::runtime::TensorRef<'_>) -> ipuflow::quant::data::OwnedTensor {
    ipuflow::quant::data::OwnedTensor::from_bytes(t.element_type(), t.shape(), t.data().to_vec())
        .unwrap()
}

fn run(model: &Model, data: &mut TensorSamples, config: &QuantConfig) -> QuantReport {
    run_model(model, data, config).1
}

fn run_model(
    model: &Model,
    data: &mut TensorSamples,
    config: &QuantConfig,
) -> (Model, QuantReport) {
    data.rewind();
    quantize(model, config, data, Hooks::default()).expect("quantize")
}

/// The `mixed` object of the quantized model's provenance record `ipuflow.settings`.
fn mixed_settings(q: &Model) -> serde_json::Value {
    let (_, v) = ipuflow::quant::provenance::read(q.proto())
        .into_iter()
        .find(|(k, _)| k == "settings")
        .expect("ipuflow.settings");
    serde_json::from_str::<serde_json::Value>(&v).unwrap()["mixed"].clone()
}

fn xint8(target: Option<f32>, floor: Option<f32>) -> QuantConfig {
    let mut c = QuantConfig::preset(Preset::Xint8);
    c.mixed.target_sqnr_db = target;
    c.mixed.min_npu_coverage = floor;
    c
}

/// The stopping rule on a record: before every step the target did not hold yet; after the last kept step (or
/// at once) it holds when `met`.
fn check_stopping_rule(m: &MixedReport) {
    let target = f64::from(m.target_sqnr_db.unwrap());
    let mut current = m.baseline.unwrap().sqnr_db;
    for s in &m.steps {
        assert!(current < target, "a step after the target held: {m:#?}");
        if s.kept {
            current = s.sqnr_db;
        }
    }
    assert_eq!(m.result.unwrap().sqnr_db, current, "{m:#?}");
    assert_eq!(m.met, current >= target, "{m:#?}");
}

#[test]
fn loop_stops_as_soon_as_the_target_holds() {
    let Some((model, mut data)) = blazeface() else {
        return;
    };
    let mut sens = QuantConfig::preset(Preset::Xint8);
    sens.mixed.sensitivity = true;
    let r = run(&model, &mut data, &sens);
    let s = r.sensitivity.as_ref().expect("sensitivity report");
    assert_eq!(s.samples, SAMPLES);
    assert_eq!(s.layers.len(), r.counts().0, "one entry per quantized node");
    assert!(s.layers.windows(2).all(|w| w[0].gain_db >= w[1].gain_db));
    assert!(r.mixed_precision.is_none(), "no target, no loop");
    let base = s.baseline_sqnr_db;
    let best = s.layers[0].gain_db;
    assert!(best > 0.0, "some node gains by staying float: {s:#?}");

    // Already met: no step, the all-quantized model.
    let r = run(&model, &mut data, &xint8(Some((base - 1.0) as f32), None));
    let m = r.mixed_precision.as_ref().unwrap();
    assert!(m.met && m.steps.is_empty(), "{m:#?}");
    assert_eq!(m.baseline.unwrap().sqnr_db, base);

    // Half the best single gain above the baseline: met, and no step once it held.
    let r = run(
        &model,
        &mut data,
        &xint8(Some((base + best / 2.0) as f32), None),
    );
    let m = r.mixed_precision.as_ref().unwrap();
    check_stopping_rule(m);
    assert!(m.met, "{m:#?}");
    assert!(m.steps.iter().any(|s| s.kept));
    assert!(m.notes.iter().any(|n| n.contains("int16")), "{m:#?}");
    assert!(r.notes.iter().any(|n| n.starts_with("mixed precision:")));
}

#[test]
fn coverage_floor_blocks_float_and_best_effort_is_reported() {
    let Some((model, mut data)) = blazeface() else {
        return;
    };
    // Output-aware activations leave BlazeFace's score tail float (predicted coverage 0.989), which would put the
    // baseline itself under a floor of 1.0; off here, every node starts on the NPU and only raises can fall below.
    let mut config = xint8(Some(200.0), Some(1.0));
    config.output_aware = false;
    let r = run(&model, &mut data, &config);
    let m = r.mixed_precision.as_ref().unwrap();
    check_stopping_rule(m);
    assert!(!m.met, "200 dB cannot be met: {m:#?}");
    assert_eq!(m.baseline_npu_coverage, 1.0, "{m:#?}");
    // A float node that leaves the NPU goes below a floor of 1.0: refused, with its reason; nothing kept is below.
    let mut refused = 0;
    for s in &m.steps {
        let below = s.predicted_npu_coverage < 1.0;
        assert_eq!(below, s.reason.contains("below the floor"), "{s:#?}");
        assert!(!(below && s.kept), "{s:#?}");
        refused += usize::from(below);
    }
    assert!(refused > 0, "{m:#?}");
    assert!(m.result_npu_coverage >= 1.0, "{m:#?}");
    let why = m
        .notes
        .iter()
        .find(|n| n.contains("target not met"))
        .expect("reason");
    assert!(why.contains("NPU-coverage floor"), "{why}");
    assert!(r.to_json().contains("\"mixed_precision\""));
}

#[test]
fn bad_targets_are_invalid_arguments_naming_the_setting() {
    let Some((model, mut data)) = blazeface() else {
        return;
    };
    for (c, what) in [
        (xint8(Some(f32::INFINITY), None), "target SQNR"),
        (xint8(Some(20.0), Some(1.5)), "min NPU coverage"),
        (
            {
                let mut c = xint8(None, None);
                c.mixed.max_agreement_drop = Some(-0.1);
                c
            },
            "max agreement drop",
        ),
    ] {
        data.rewind();
        let e = quantize(&model, &c, &mut data, Hooks::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        assert!(e.message().contains(what), "{e}");
    }
}

/// Every float output of `model` on `samples`, per sample.
fn outputs(
    model: &Model,
    samples: &[Vec<(String, OwnedTensor)>],
) -> Result<Vec<Vec<Vec<f32>>>, String> {
    let session =
        Session::from_model(model, &SessionOptions::default()).map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    for s in samples {
        let ins: Vec<(&str, ipuflow::runtime::TensorRef<'_>)> =
            s.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
        let outs = session.run(&ins).map_err(|e| e.to_string())?;
        let values = outs
            .iter()
            .map(|t| t.as_slice::<f32>().map(<[f32]>::to_vec));
        all.push(
            values
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(all)
}

/// The host's own metric: the worst output's SQNR (dB) against the float outputs `reference`, on photos the
/// calibration never saw, computed the way a host would (its own session on the candidate).
fn host_sqnr(
    candidate: &Model,
    held: &[Sample],
    reference: &[Vec<Vec<f32>>],
) -> Result<f64, String> {
    let got = outputs(candidate, held)?;
    let k = reference[0].len();
    let (mut signal, mut noise) = (vec![0f64; k], vec![0f64; k]);
    for (r, q) in reference.iter().zip(&got) {
        for (o, (a, b)) in r.iter().zip(q).enumerate() {
            for (x, y) in a.iter().zip(b) {
                signal[o] += f64::from(*x) * f64::from(*x);
                noise[o] += f64::from(x - y) * f64::from(x - y);
            }
        }
    }
    let db = signal
        .iter()
        .zip(&noise)
        .map(|(s, n)| 10.0 * (s / n).log10());
    Ok(db.fold(f64::INFINITY, f64::min))
}

/// XINT8 with the host metric `f` and `target`, and a counter of its calls.
fn with_metric(
    target: f64,
    f: impl Fn(&Model) -> Result<f64, String> + Send + Sync + 'static,
) -> (QuantConfig, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let mut c = QuantConfig::preset(Preset::Xint8);
    c.mixed.host_metric = Some(HostMetric::new(target, move |m| {
        counted.fetch_add(1, Ordering::SeqCst);
        f(m)
    }));
    (c, calls)
}

#[test]
fn host_metric_drives_the_loop_and_stops_as_soon_as_it_holds() {
    let Some((model, mut images)) = blazeface_images(SAMPLES + 4) else {
        return;
    };
    let held = Arc::new(images.split_off(SAMPLES));
    let mut data = TensorSamples::new();
    for s in images {
        data.push(s);
    }
    let reference = Arc::new(outputs(&model, &held).unwrap());
    let metric = {
        let (held, reference) = (held.clone(), reference.clone());
        move |m: &Model| host_sqnr(m, &held, &reference)
    };

    // Met at once: the host is asked once, about the all-quantized model, and no step is made.
    let (config, calls) = with_metric(-1000.0, metric.clone());
    let (q, r) = run_model(&model, &mut data, &config);
    let m = r.mixed_precision.as_ref().unwrap();
    let p = mixed_settings(&q);
    assert_eq!(p["host_metric"], true, "{p}");
    assert_eq!(p["host_metric_target"], -1000.0, "{p}");
    assert_eq!(p["sensitivity"], true, "{p}");
    let base = m.baseline_metric.expect("baseline metric");
    assert!(m.met && m.steps.is_empty(), "{m:#?}");
    assert_eq!((m.metric_calls, calls.load(Ordering::SeqCst)), (1, 1));
    assert_eq!(m.result_metric, Some(base));
    assert_eq!(m.target_metric, Some(-1000.0));
    assert!(r.sensitivity.is_some(), "a target implies the ranking");

    // 0.1 dB above the host's baseline: before every step the metric was below the target, a kept step never
    // lowered it, and the loop stopped at the first step that reached it.
    let target = base + 0.1;
    let (config, calls) = with_metric(target, metric);
    let r = run(&model, &mut data, &config);
    let m = r.mixed_precision.as_ref().unwrap();
    eprintln!(
        "host SQNR {base:.2} dB -> {:?}, {} steps",
        m.result_metric,
        m.steps.len()
    );
    let mut current = base;
    for s in &m.steps {
        assert!(current < target, "a step after the target held: {m:#?}");
        if let Some(v) = s.metric {
            assert_eq!(s.kept, v >= current, "{s:#?}");
            if s.kept {
                current = v;
            }
        }
    }
    assert_eq!(m.result_metric, Some(current), "{m:#?}");
    assert_eq!(m.met, current >= target, "{m:#?}");
    assert!(m.met, "0.1 dB above the baseline is reachable: {m:#?}");
    assert_eq!(m.metric_calls, calls.load(Ordering::SeqCst));
    assert_eq!(
        m.metric_calls,
        1 + m.steps.iter().filter(|s| s.metric.is_some()).count()
    );
}

#[test]
fn host_metric_failures_stop_the_quantization_with_a_callback_error() {
    let Some((model, mut data)) = blazeface() else {
        return;
    };
    let cases: [(QuantConfig, &str); 3] = [
        (
            with_metric(0.5, |_| Err("no labels for these photos".into())).0,
            "no labels for these photos",
        ),
        (with_metric(0.5, |_| Ok(f64::NAN)).0, "returned NaN"),
        (
            with_metric(0.5, |_| panic!("host bug")).0,
            "panicked on the all-quantized model: host bug",
        ),
    ];
    for (config, needle) in cases {
        data.rewind();
        let e = quantize(&model, &config, &mut data, Hooks::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Callback, "{e}");
        assert!(e.message().contains(needle), "{e}");
        assert!(e.message().contains("all-quantized model"), "{e}");
    }
    let mut c = QuantConfig::preset(Preset::Xint8);
    c.mixed.host_metric = Some(HostMetric::new(f64::INFINITY, |_| Ok(1.0)));
    data.rewind();
    let e = quantize(&model, &c, &mut data, Hooks::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.message().contains("host metric target"), "{e}");
}

#[test]
fn calibration_cache_hit_feeds_sensitivity_and_mixed_precision() {
    let Some((model, mut data)) = blazeface() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("ipuflow-mixed-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("calib.cache");
    let mut config = xint8(None, None);
    config.mixed.sensitivity = true;
    config.calib_cache = Some(cache.clone());
    let miss = run(&model, &mut data, &config);
    assert!(cache.is_file(), "the first run writes the cache");
    // The hit runs no calibration session but still reads the samples: the same ranking, and a target below its
    // baseline is met at once.
    config.mixed.target_sqnr_db =
        Some((miss.sensitivity.as_ref().unwrap().baseline_sqnr_db - 1.0) as f32);
    let (q, hit) = run_model(&model, &mut data, &config);
    let p = mixed_settings(&q);
    assert_eq!(p["sensitivity"], true, "{p}");
    assert_eq!(p["host_metric"], false, "{p}");
    assert_eq!(
        p["target_sqnr_db"].as_f64().map(|v| v as f32),
        config.mixed.target_sqnr_db,
        "{p}"
    );
    let (a, b) = (miss.sensitivity.unwrap(), hit.sensitivity.unwrap());
    assert_eq!(b.samples, SAMPLES);
    assert_eq!(a.baseline_sqnr_db, b.baseline_sqnr_db);
    let names = |s: &ipuflow::quant::sensitivity::SensitivityReport| {
        s.layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&a), names(&b));
    let m = hit.mixed_precision.as_ref().unwrap();
    assert!(m.met && m.steps.is_empty(), "{m:#?}");
    assert_eq!(m.samples, SAMPLES);
    let _ = std::fs::remove_dir_all(&dir);
}
