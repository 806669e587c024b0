//! The NPU presets' output against the pre-flight (`ipuflow check`, src/ipu): every shared model quantized with
//! every NPU preset, defaults on (equalization, bias correction and weight-range search included), leaves no node
//! the pre-flight calls unquantized (a float tensor or float weight where the NPU needs a DequantizeLinear).

mod ort_support;

use std::path::PathBuf;

use ipuflow::ipu::preflight::preflight;
use ipuflow::ipu::Target;
use ipuflow::onnx::Model;
use ipuflow::quant::data::{list_images, ImageFolder, ImagePreprocess};
use ipuflow::quant::{quantize, Hooks, Preset, QuantConfig};
use ort_support::{runtime, shared_model};

#[test]
fn preflight_finds_no_unquantized_node_in_any_npu_preset_output() {
    runtime();
    let calib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/images/calib");
    if !calib.exists() {
        eprintln!("skipping: {} is not available", calib.display());
        return;
    }
    // Four images are enough for the structure; the format does not depend on the ranges.
    let files: Vec<PathBuf> = list_images(&calib).unwrap().into_iter().take(4).collect();
    for file in [
        "efficientnet-lite0.onnx",
        "blazeface-short-range.onnx",
        "hand-landmark-lite.onnx",
    ] {
        let Some(path) = shared_model(file) else {
            continue;
        };
        let model = Model::load_file(&path).unwrap();
        for preset in [Preset::Xint8, Preset::A8W8, Preset::A16W8] {
            let cfg = QuantConfig::preset(preset);
            let mut data =
                ImageFolder::from_files(files.clone(), ImagePreprocess::default()).unwrap();
            let (q, _) = quantize(&model, &cfg, &mut data, Hooks::default()).unwrap();
            for target in [Target::X1, Target::X2] {
                let p = preflight(q.proto(), target).unwrap();
                assert!(p.quantized, "{file} {preset:?} {target}");
                let bad: Vec<String> = p
                    .nodes
                    .iter()
                    .filter(|n| n.reason.contains("unquantized"))
                    .map(|n| format!("{} ({}): {}", n.name, n.op_type, n.reason))
                    .collect();
                assert!(
                    bad.is_empty(),
                    "{file} {preset:?} {target}: the pre-flight calls these nodes unquantized:\n{}",
                    bad.join("\n")
                );
            }
        }
    }
}
