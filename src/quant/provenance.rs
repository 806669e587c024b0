//! Provenance: how a quantized model was made, recorded in its `metadata_props` (issue 11 item 7).
//!
//! A quantized model is a derived artefact; when its accuracy surprises someone weeks later, the file itself should
//! say which ipuflow, recipe, calibration data and ONNX Runtime made it. Keys (all strings, as ONNX requires):
//!
//! - `ipuflow.version`: the library version;
//! - `ipuflow.preset`: XINT8, A8W8, A16W8 or CPU;
//! - `ipuflow.settings`: the settings that shape the result, as JSON (types, symmetry, scales, method, exclusions,
//!   equalization, bias correction, learned rounding, output-aware activations, input shapes, and `mixed`: the
//!   sensitivity switch and the mixed-precision targets, coverage floor and whether a host metric callback was used,
//!   with its target);
//! - `ipuflow.calibration`: `sha256:<hex> over <n> samples`, the order- and batching-independent digest of the
//!   calibration samples (the calibration cache's data key);
//! - `ipuflow.onnxruntime`: the ONNX Runtime version that prepared and calibrated it.
//!
//! `ipuflow inspect` prints them ([`read`]).

use crate::error::Result;
use crate::onnx::proto::{ModelProto, StringStringEntryProto};
use crate::quant::calib_cache::DataDigest;
use crate::quant::data::{Batch, CalibrationSource};
use crate::quant::{CalibMethod, QuantConfig};
use crate::runtime::TensorInfo;

/// The prefix of every provenance key.
pub const PREFIX: &str = "ipuflow.";

/// A calibration source that digests every batch it hands out (the data key of the provenance record).
pub struct Digesting<'a> {
    pub inner: &'a mut dyn CalibrationSource,
    pub digest: DataDigest,
}

impl<'a> Digesting<'a> {
    pub fn new(inner: &'a mut dyn CalibrationSource) -> Self {
        Digesting {
            inner,
            digest: DataDigest::default(),
        }
    }
}

impl CalibrationSource for Digesting<'_> {
    fn len_hint(&self) -> Option<usize> {
        self.inner.len_hint()
    }
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>> {
        let b = self.inner.next_batch(inputs)?;
        if let Some(batch) = &b {
            self.digest.add(&batch.tensors);
        }
        Ok(b)
    }
}

/// The settings of `config` that shape the quantized model, as JSON.
pub fn settings_json(config: &QuantConfig) -> String {
    let method = match config.method {
        CalibMethod::MinMax {
            moving_average: Some(c),
        } => format!("minmax(moving_average={c})"),
        CalibMethod::Percentile { percentile } => format!("percentile({percentile})"),
        m => m.name().to_string(),
    };
    let overrides: Vec<String> = config.tensor_overrides.keys().cloned().collect();
    let m = &config.mixed;
    serde_json::json!({
        "activation_type": config.activation_type.name(),
        "activation_symmetric": config.activation_symmetric,
        "weight_type": config.weight_type.name(),
        "weight_symmetric": config.weight_symmetric,
        "per_channel": config.per_channel,
        "power_of_two_scales": config.power_of_two_scales,
        "method": method,
        "weight_range": format!("{:?}", config.weight_range).to_lowercase(),
        "concat_shared_scale": config.concat_shared_scale,
        "cpu_fusion": config.cpu_fusion,
        "equalize": config.equalize,
        "replace_clip6_relu": config.replace_clip6_relu,
        "bias_correction": config.bias_correction,
        "learned_rounding": config.learned_rounding,
        "rounding_scale_search": config.rounding.scale_search,
        "rounding_act_order": config.rounding.act_order,
        "rounding_bias_first": config.rounding.bias_first,
        "output_aware": config.output_aware,
        "bias_type": config.bias_type.name(),
        "npu_mode": npu_mode(config),
        "exclude_nodes": config.exclude_nodes,
        "exclude_op_types": config.exclude_op_types,
        "tensor_overrides": overrides,
        "input_shapes": config.input_shapes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        // The callback itself cannot be recorded: that one was used, and its target.
        "mixed": {
            "sensitivity": m.sensitivity || m.has_target(),
            "target_sqnr_db": m.target_sqnr_db,
            "max_agreement_drop": m.max_agreement_drop,
            "min_npu_coverage": m.min_npu_coverage,
            "host_metric": m.host_metric.is_some(),
            "host_metric_target": m.host_metric.as_ref().map(|h| h.target),
        },
    })
    .to_string()
}

/// The NPU-mode conversions `config` applies (`crate::quant::npu_mode`), by Quark's option names.
fn npu_mode(config: &QuantConfig) -> Vec<&'static str> {
    let mut v = Vec::new();
    if config.npu_rescale {
        v.extend([
            "ConvertAvgPoolToDPUVersion",
            "ConvertReduceMeanToDPUVersion",
            "ConvertHardSigmoidToDPUVersion",
            "ConvertLeakyReluToDPUVersion",
        ]);
    }
    if config.sigmoid_to_hard_sigmoid {
        v.push("ConvertSigmoidToHardSigmoid");
    }
    v
}

/// Writes the provenance record into `model`'s metadata (replacing an older `ipuflow.*` record, keeping every other
/// entry).
pub fn record(
    model: &mut ModelProto,
    config: &QuantConfig,
    data: &DataDigest,
    runtime_version: &str,
) {
    let hex: String = data.finish().iter().map(|b| format!("{b:02x}")).collect();
    let entries = [
        ("version", env!("CARGO_PKG_VERSION").to_string()),
        ("preset", config.preset.name().to_string()),
        ("settings", settings_json(config)),
        (
            "calibration",
            format!("sha256:{hex} over {} samples", data.samples()),
        ),
        ("onnxruntime", runtime_version.to_string()),
    ];
    model
        .metadata_props
        .retain(|e| !e.key.as_deref().is_some_and(|k| k.starts_with(PREFIX)));
    for (k, v) in entries {
        model.metadata_props.push(StringStringEntryProto {
            key: Some(format!("{PREFIX}{k}")),
            value: Some(v),
        });
    }
}

/// The provenance entries of a model: (key without the prefix, value), in file order; empty when ipuflow did not
/// make it.
pub fn read(model: &ModelProto) -> Vec<(String, String)> {
    model
        .metadata_props
        .iter()
        .filter_map(|e| {
            let k = e.key.as_deref()?.strip_prefix(PREFIX)?;
            Some((k.to_string(), e.value.clone().unwrap_or_default()))
        })
        .collect()
}
