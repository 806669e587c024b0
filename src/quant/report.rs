//! What the quantizer did, tensor by tensor and node by node, as data and as JSON.

use serde::Serialize;

/// How one tensor was quantized.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorReport {
    pub name: String,
    /// "activation", "weight", "bias" or "constant" (a constant input quantized like an activation).
    pub kind: String,
    /// "uint8", "int8", "uint16", "int16" or "int32".
    pub qtype: String,
    /// The range the parameters come from (widened to include 0); per channel for per-channel tensors.
    pub min: Vec<f32>,
    pub max: Vec<f32>,
    pub scale: Vec<f32>,
    pub zero_point: Vec<i32>,
    /// Per-channel axis, absent for per-tensor parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub axis: Option<i64>,
    /// Tensors sharing these exact parameters (shape ops, Concat), besides this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
    /// Anything worth knowing: degenerate range, override applied, bias overflow guard, ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Whether one node was quantized, and why (not).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub op_type: String,
    pub quantized: bool,
    pub reason: String,
}

/// The whole report of one `quantize_graph` call.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QuantReport {
    pub preset: String,
    /// Default-domain opset of the input model and of the result.
    pub opset_in: i64,
    pub opset_out: i64,
    /// Domain of the 16-bit Q/DQ nodes ("" or "com.microsoft"), if any were written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qdq16_domain: Option<String>,
    pub nodes: Vec<NodeReport>,
    pub tensors: Vec<TensorReport>,
    /// Model-level notes: opset conversions, removed activations, ...
    pub notes: Vec<String>,
    /// Per-node sensitivity, most sensitive first (with sensitivity analysis or mixed precision).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<crate::quant::sensitivity::SensitivityReport>,
    /// The mixed-precision loop's steps and result (with a target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed_precision: Option<crate::quant::mixed::MixedReport>,
}

impl QuantReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
    pub fn node(&self, name: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.name == name)
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorReport> {
        self.tensors.iter().find(|t| t.name == name)
    }
    /// (quantized, left float) node counts.
    pub fn counts(&self) -> (usize, usize) {
        let q = self.nodes.iter().filter(|n| n.quantized).count();
        (q, self.nodes.len() - q)
    }
}
