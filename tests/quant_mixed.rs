//! Sensitivity analysis and accuracy-aware mixed precision (`ipuflow::quant::mixed`) on a real model (BlazeFace,
//! ../shared/models) with real calibration images: the loop stops as soon as the target holds, makes no step when
//! the target already holds, and returns the best model with `met: false` and the reason when the NPU-coverage
//! floor blocks it.

mod ort_support;

use ipuflow::onnx::Model;
use ipuflow::quant::data::{CalibrationSource, ImageFolder, ImagePreprocess, TensorSamples};
use ipuflow::quant::mixed::MixedReport;
use ipuflow::quant::{quantize, Hooks, Preset, QuantConfig, QuantReport};
use ipuflow::runtime::{Session, SessionOptions};
use ipuflow::ErrorKind;

/// Calibration samples held by the test (the sensitivity ranking uses 8, so its baseline is the loop's).
const SAMPLES: usize = 8;

/// BlazeFace and its first `SAMPLES` calibration images, or None after `missing` (a failure under CI).
fn blazeface() -> Option<(Model, TensorSamples)> {
    ort_support::runtime();
    let path = ort_support::shared_model("blazeface-short-range.onnx")?;
    let dir = ort_support::common::shared("data/images/calib")?;
    let model = Model::load_file(&path).unwrap();
    let inputs = Session::from_model(&model, &SessionOptions::default())
        .unwrap()
        .inputs()
        .to_vec();
    let mut images = ImageFolder::open(&dir, ImagePreprocess::default()).unwrap();
    let mut samples = TensorSamples::new();
    for _ in 0..SAMPLES {
        let b = images
            .next_batch(&inputs)
            .unwrap()
            .expect("8 calibration images");
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
    data.rewind();
    quantize(model, config, data, Hooks::default())
        .expect("quantize")
        .1
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
