//! `check` agrees with `quantize` on real models (issue 11 item 5): every model of the corpus
//! (tests/corpus/manifest.json, fetched with its data by scripts/fetch_corpus.sh into $IPUFLOW_CACHE/corpus),
//! quantized with every NPU preset, leaves no node the pre-flight calls unquantized (a float tensor or weight where
//! the NPU needs a DequantizeLinear), on either target. As tests/quant_npu_format.rs does for the shared models.
//!
//! Four calibration samples per model (the format does not depend on the ranges). `IPUFLOW_CORPUS_MODELS` (space
//! separated) restricts it to some models. A model whose manifest entry expects quantization to be refused is
//! checked for that refusal instead.

mod ort_support;

use std::path::PathBuf;

use ipuflow::ipu::preflight::preflight;
use ipuflow::ipu::Target;
use ipuflow::onnx::Model;
use ipuflow::quant::data::NpyDir;
use ipuflow::quant::{quantize, Hooks, Preset, QuantConfig};
use ort_support::common;

/// The first `n` calibration samples of a corpus model (files or per-sample folders), in a private copy.
fn first_samples(calib: &std::path::Path, n: usize, into: &std::path::Path) -> PathBuf {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(calib)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into).unwrap();
    for e in entries.into_iter().take(n) {
        let dst = into.join(e.file_name().unwrap());
        if e.is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            for f in std::fs::read_dir(&e).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, dst.join(f.file_name().unwrap())).unwrap();
            }
        } else {
            std::fs::copy(&e, &dst).unwrap();
        }
    }
    into.to_path_buf()
}

#[test]
fn preflight_finds_no_unquantized_node_in_any_corpus_model() {
    ort_support::runtime();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/corpus/manifest.json")).unwrap(),
    )
    .unwrap();
    let only: Option<Vec<String>> = std::env::var("IPUFLOW_CORPUS_MODELS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split_whitespace().map(String::from).collect());
    let corpus = common::cache_dir().join("corpus");
    let tmp = std::env::temp_dir().join(format!("ipuflow-corpus-npu-{}", std::process::id()));
    let mut failures = Vec::new();
    let mut checked = 0;
    for m in manifest["models"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == name)) {
            continue;
        }
        let dir = corpus.join(name);
        if !dir.join("model.onnx").exists() || !dir.join("calib").exists() {
            common::missing(format!("{} (scripts/fetch_corpus.sh)", dir.display()));
            continue;
        }
        let model = Model::load_file(&dir.join("model.onnx")).unwrap();
        let calib = first_samples(&dir.join("calib"), 4, &tmp.join(name));
        for preset in [Preset::Xint8, Preset::A8W8, Preset::A16W8] {
            let mut data = NpyDir::open(&calib).unwrap();
            let r = quantize(
                &model,
                &QuantConfig::preset(preset),
                &mut data,
                Hooks::default(),
            );
            let q = match (r, m["expect_quantize_error"].as_str()) {
                (Err(e), Some(kind)) if format!("{:?}", e.kind()) == kind => continue,
                (Ok(_), Some(kind)) => {
                    failures.push(format!("{name} {preset:?}: quantized, expected {kind}"));
                    continue;
                }
                (Err(e), _) => {
                    failures.push(format!(
                        "{name} {preset:?}: quantize failed: {}",
                        e.message()
                    ));
                    continue;
                }
                (Ok((q, _)), None) => q,
            };
            for target in [Target::X1, Target::X2] {
                let p = preflight(q.proto(), target).unwrap();
                checked += 1;
                let bad: Vec<String> = p
                    .nodes
                    .iter()
                    .filter(|n| n.reason.contains("unquantized"))
                    .map(|n| format!("  {} ({}): {}", n.name, n.op_type, n.reason))
                    .collect();
                if !bad.is_empty() {
                    failures.push(format!(
                        "{name} {preset:?} {target}: {} node(s) called unquantized, e.g.\n{}",
                        bad.len(),
                        bad.iter().take(3).cloned().collect::<Vec<_>>().join("\n")
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{checked} quantized model/target pairs checked");
}
