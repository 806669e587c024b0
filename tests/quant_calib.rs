//! Histogram calibration and the calibration cache on a real model (EfficientNet-Lite0 of ../shared/models) and
//! real photos (../shared/data/images/calib): the quantized model does not depend on the order or batching of the
//! calibration samples; a cache is reused while model, settings and data match and refused otherwise.

mod ort_support;

use std::path::PathBuf;

use ipuflow::onnx::Model;
use ipuflow::quant::data::{list_images, ImagePreprocess, OwnedTensor, TensorSamples};
use ipuflow::quant::{quantize, CalibMethod, Hooks, Preset, QuantConfig};
use ipuflow::runtime::Session;
use ipuflow::ErrorKind;

fn effnet() -> Option<Model> {
    ort_support::runtime();
    ort_support::shared_model("efficientnet-lite0.onnx").map(|p| Model::load_file(&p).unwrap())
}

/// The first `n` calibration photos as [1, 3, 224, 224] tensors, and the input name.
fn photos(model: &Model, n: usize) -> (String, Vec<OwnedTensor>) {
    let s = Session::from_model(model, &Default::default()).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/images/calib");
    let mut files = list_images(&dir).unwrap();
    files.truncate(n);
    let r = ImagePreprocess::default().resolve(s.inputs()).unwrap();
    (
        s.inputs()[0].name.clone(),
        files.iter().map(|f| r.load(f).unwrap()).collect(),
    )
}

/// One batch per group of consecutive tensors (concatenated along the batch axis).
fn batched(name: &str, tensors: &[&OwnedTensor], sizes: &[usize]) -> TensorSamples {
    let mut out = TensorSamples::new();
    let mut at = 0;
    for &k in sizes {
        let group = &tensors[at..at + k];
        at += k;
        let mut values: Vec<f32> = Vec::new();
        for t in group {
            let b = t.view().data();
            values.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        let mut shape = group[0].view().shape().to_vec();
        shape[0] = k as i64;
        out.push(vec![(
            name.to_string(),
            OwnedTensor::from_f32(&shape, &values).unwrap(),
        )]);
    }
    assert_eq!(at, tensors.len());
    out
}

fn quantized_bytes(model: &Model, config: &QuantConfig, data: &mut TensorSamples) -> Vec<u8> {
    let (q, _) = quantize(model, config, data, Hooks::default()).unwrap();
    q.to_bytes().unwrap()
}

#[test]
fn histogram_methods_give_the_same_model_for_any_sample_order() {
    let Some(model) = effnet() else { return };
    let (name, t) = photos(&model, 6);
    let forward: Vec<&OwnedTensor> = t.iter().collect();
    let reversed: Vec<&OwnedTensor> = t.iter().rev().collect();
    for (preset, method) in [
        (Preset::Xint8, CalibMethod::MinMse),
        (Preset::Cpu, CalibMethod::Entropy),
        (Preset::A8W8, CalibMethod::Percentile { percentile: 99.99 }),
    ] {
        let config = QuantConfig {
            method,
            ..QuantConfig::preset(preset)
        };
        let a = quantized_bytes(&model, &config, &mut batched(&name, &forward, &[1; 6]));
        let b = quantized_bytes(&model, &config, &mut batched(&name, &reversed, &[1; 6]));
        assert!(
            a == b,
            "{preset:?} {method:?}: the sample order changed the model"
        );
    }
}

#[test]
fn histogram_methods_give_the_same_model_for_any_batch_size() {
    let Some(model) = effnet() else { return };
    let (name, t) = photos(&model, 6);
    let forward: Vec<&OwnedTensor> = t.iter().collect();
    let reversed: Vec<&OwnedTensor> = t.iter().rev().collect();
    let config = QuantConfig {
        method: CalibMethod::MinMse,
        ..QuantConfig::preset(Preset::Xint8)
    };
    let a = quantized_bytes(&model, &config, &mut batched(&name, &forward, &[1; 6]));
    let b = quantized_bytes(&model, &config, &mut batched(&name, &reversed, &[2, 3, 1]));
    assert!(
        a == b,
        "batches of 2, 3, 1 in reverse order changed the model"
    );
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ipuflow-calib-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn calibration_cache_is_reused_while_everything_matches_and_refused_when_stale() {
    let Some(model) = effnet() else { return };
    let (name, t) = photos(&model, 5);
    let all: Vec<&OwnedTensor> = t.iter().collect();
    let dir = temp_dir("cache");
    let path = dir.join("effnet.calib");
    let with_cache = |method: CalibMethod, preset: Preset| QuantConfig {
        method,
        calib_cache: Some(path.clone()),
        ..QuantConfig::preset(preset)
    };
    let plain = |method: CalibMethod, preset: Preset| QuantConfig {
        method,
        ..QuantConfig::preset(preset)
    };
    // Written on the first run, and the model is the one without a cache.
    let first = quantized_bytes(
        &model,
        &with_cache(CalibMethod::MinMse, Preset::Xint8),
        &mut batched(&name, &all, &[1; 5]),
    );
    let written = std::fs::read(&path).expect("the cache was written");
    assert!(written.starts_with(b"IPUFCALC"));
    assert!(
        first
            == quantized_bytes(
                &model,
                &plain(CalibMethod::MinMse, Preset::Xint8),
                &mut batched(&name, &all, &[1; 5])
            )
    );
    // Reused: same samples in another order and batching, and another method and preset from the same histograms.
    let reversed: Vec<&OwnedTensor> = t.iter().rev().collect();
    for (method, preset) in [
        (CalibMethod::MinMse, Preset::Xint8),
        (CalibMethod::Entropy, Preset::Cpu),
        (
            CalibMethod::MinMax {
                moving_average: None,
            },
            Preset::A16W8,
        ),
    ] {
        let hit = quantized_bytes(
            &model,
            &with_cache(method, preset),
            &mut batched(&name, &reversed, &[2, 3]),
        );
        let fresh = quantized_bytes(
            &model,
            &plain(method, preset),
            &mut batched(&name, &all, &[1; 5]),
        );
        assert!(
            hit == fresh,
            "{method:?} {preset:?}: cached and fresh calibrations differ"
        );
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        written,
        "a hit must not rewrite the cache"
    );

    let err = |config: &QuantConfig, model: &Model, data: &mut TensorSamples| {
        quantize(model, config, data, Hooks::default()).unwrap_err()
    };
    // Stale: one sample fewer, or one sample changed.
    let e = err(
        &with_cache(CalibMethod::MinMse, Preset::Xint8),
        &model,
        &mut batched(&name, &all[..4], &[1; 4]),
    );
    assert_eq!(e.kind(), ErrorKind::CalibCacheStale, "{e}");
    assert!(
        e.message().contains("effnet.calib") && e.message().contains("data changed"),
        "{e}"
    );
    let changed = OwnedTensor::from_f32(&[1, 3, 224, 224], &vec![0.25f32; 3 * 224 * 224]).unwrap();
    let mut other: Vec<&OwnedTensor> = all.clone();
    other[2] = &changed;
    let e = err(
        &with_cache(CalibMethod::MinMse, Preset::Xint8),
        &model,
        &mut batched(&name, &other, &[1; 5]),
    );
    assert_eq!(e.kind(), ErrorKind::CalibCacheStale, "{e}");
    // Stale: a moving average collects something else.
    let e = err(
        &with_cache(
            CalibMethod::MinMax {
                moving_average: Some(0.1),
            },
            Preset::Cpu,
        ),
        &model,
        &mut batched(&name, &all, &[1; 5]),
    );
    assert!(
        e.kind() == ErrorKind::CalibCacheStale && e.message().contains("settings"),
        "{e}"
    );
    // Foreign: another model.
    let blaze = Model::load_file(&ort_support::shared_model("blazeface-short-range.onnx").unwrap())
        .unwrap();
    let (bname, bt) = photos(&blaze, 2);
    let e = err(
        &with_cache(CalibMethod::MinMse, Preset::Xint8),
        &blaze,
        &mut batched(&bname, &bt.iter().collect::<Vec<_>>(), &[1, 1]),
    );
    assert!(
        e.kind() == ErrorKind::CalibCacheStale && e.message().contains("another model"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        written,
        "a refused cache is left as it was"
    );
    // Invalid: not a cache, or damaged.
    for bad in [
        b"not a calibration cache".to_vec(),
        written[..written.len() - 9].to_vec(),
    ] {
        std::fs::write(&path, &bad).unwrap();
        let e = err(
            &with_cache(CalibMethod::MinMse, Preset::Xint8),
            &model,
            &mut batched(&name, &all, &[1; 5]),
        );
        assert_eq!(e.kind(), ErrorKind::CalibCacheInvalid, "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), bad);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
