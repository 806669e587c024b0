//! The record of which activation ranges are the model's own Relu/Clip, in the model's metadata.
//!
//! Why: with asymmetric activations a Relu/Clip(0, hi) after a quantized producer is removed and folded into the
//! producer's QuantizeLinear (step 3 of the module docs): that Q's saturation *is* the activation. Every other
//! activation Q saturates at a calibrated range. The two look the same in the QDQ graph, but the CPU plan's
//! float-activation plan must keep the first (dropping it changes the function: EfficientNet-Lite0's Relu6) and may
//! drop the second (a bounded change, closer to the float model, and it lets ONNX Runtime fuse Conv + Add). The
//! quantizer writes the record on every model it quantizes (an empty list included, which says "no Q folds an
//! activation"), so a model without it, from another tool, keeps the plan's conservative clamps.
//!
//! Format (key [`crate::runtime::cpu_plan::FOLDED_ACTIVATIONS_KEY`]): a JSON object `{"version": 1, "folded":
//! {"<tensor read by the Q>": [0.0, hi or null]}}`, null for a Relu's unbounded top.

use std::collections::BTreeMap;

use crate::onnx::proto::{ModelProto, StringStringEntryProto};
use crate::runtime::cpu_plan::FOLDED_ACTIVATIONS_KEY;

/// Writes the record: `folded` maps each folded Relu/Clip output to the activation's own upper bound (infinity for
/// a Relu). Replaces a record already there.
pub(crate) fn record(model: &mut ModelProto, folded: &BTreeMap<String, f32>) {
    let folded: serde_json::Map<String, serde_json::Value> = folded
        .iter()
        .map(|(t, &hi)| {
            let hi = if hi.is_finite() {
                serde_json::json!(hi)
            } else {
                serde_json::Value::Null
            };
            (t.clone(), serde_json::json!([0.0, hi]))
        })
        .collect();
    let value = serde_json::json!({ "version": 1, "folded": folded }).to_string();
    model
        .metadata_props
        .retain(|p| p.key.as_deref() != Some(FOLDED_ACTIVATIONS_KEY));
    model.metadata_props.push(StringStringEntryProto {
        key: Some(FOLDED_ACTIVATIONS_KEY.into()),
        value: Some(value),
    });
}
