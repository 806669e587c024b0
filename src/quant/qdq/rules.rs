//! Per-op rules: which inputs of a node are activations, weights or biases, and how its outputs are quantized.
//! Ops without a rule, and the ops deliberately kept float, say why.

use crate::onnx::node::{attr_f, attr_i, attr_s};
use crate::onnx::proto::NodeProto;
use crate::quant::QuantConfig;

/// The role of one node input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A float activation (or a constant quantized like one): Q/DQ with per-tensor parameters.
    Act,
    /// A weight: quantized into an integer initializer when it is a float constant, per channel along `axis`
    /// when the configuration asks for per-channel weights. A non-constant weight falls back to `Act`.
    Weight { axis: Option<usize> },
    /// A bias: INT32 with scale input_scale * weight_scale (when input 0 and the weight are quantized and the
    /// bias is a float constant); otherwise left float.
    Bias,
    /// Not quantized (shapes, indices, axes, scalar bounds, ...).
    Skip,
}

/// How a quantized node's outputs get their parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutRule {
    /// From their own calibrated range.
    Own,
    /// The same scale and zero point as input 0 (layout ops, MaxPool, nearest/linear Resize): the values are a
    /// subset or rearrangement of the input's, so the Q/DQ around them cancel.
    ShareInput,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeRule {
    pub inputs: Vec<Slot>,
    pub outputs: OutRule,
    /// Output indices that are quantized (e.g. MaxPool's `Indices` is not).
    pub quantized_outputs: Vec<usize>,
}

/// A node's fate before calibration data is consulted.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Quantize(NodeRule),
    Float(String),
}

/// Ops whose outputs reuse their input's parameters.
pub const SHARE_OPS: &[&str] = &[
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Slice",
    "Pad",
    "Split",
    "MaxPool",
    "Resize",
    "Identity",
    "DepthToSpace",
    "SpaceToDepth",
];

/// True for the rules quantized only next to other quantized nodes (so float glue stays float).
pub fn is_passthrough(op: &str) -> bool {
    SHARE_OPS.contains(&op)
}

/// The rule for one node (domain already checked by the caller: default domain, or com.microsoft for Gelu).
pub fn decide(n: &NodeProto, cfg: &QuantConfig) -> Decision {
    let op = n.op_type.as_deref().unwrap_or("");
    let name = n.name.as_deref().unwrap_or("");
    if cfg.exclude_nodes.iter().any(|x| x == name) && !name.is_empty() {
        return Decision::Float(format!("excluded by name ('{name}' is in exclude_nodes)"));
    }
    if cfg.exclude_op_types.iter().any(|x| x == op) {
        return Decision::Float(format!(
            "excluded by op type ('{op}' is in exclude_op_types)"
        ));
    }
    let domain = n.domain.as_deref().unwrap_or("");
    if !matches!(domain, "" | "ai.onnx") {
        return Decision::Float(format!(
            "op '{op}' of domain '{domain}' has no quantization rule"
        ));
    }
    let pc = |axis: usize| if cfg.per_channel { Some(axis) } else { None };
    let n_in = n.input.len();
    let acts_then_skip = |k: usize| -> Vec<Slot> {
        (0..n_in)
            .map(|i| if i < k { Slot::Act } else { Slot::Skip })
            .collect()
    };
    let own = |inputs: Vec<Slot>| {
        Decision::Quantize(NodeRule {
            inputs,
            outputs: OutRule::Own,
            quantized_outputs: vec![0],
        })
    };
    let share = |inputs: Vec<Slot>, outs: Vec<usize>| {
        Decision::Quantize(NodeRule {
            inputs,
            outputs: OutRule::ShareInput,
            quantized_outputs: outs,
        })
    };
    match op {
        "Conv" => own(vec![Slot::Act, Slot::Weight { axis: pc(0) }, Slot::Bias][..n_in.min(3)].to_vec()),
        "ConvTranspose" => own(vec![Slot::Act, Slot::Weight { axis: pc(1) }, Slot::Bias][..n_in.min(3)].to_vec()),
        "Gemm" => {
            let trans_b = attr_i(n, "transB").unwrap_or(0) != 0;
            let alpha = attr_f(n, "alpha").unwrap_or(1.0);
            let beta = attr_f(n, "beta").unwrap_or(1.0);
            // An INT32 bias needs C = bias * (scale_A * scale_B) exactly, i.e. alpha = beta = 1.
            let c = if alpha == 1.0 && beta == 1.0 { Slot::Bias } else { Slot::Act };
            let w = Slot::Weight { axis: pc(if trans_b { 0 } else { 1 }) };
            own(vec![Slot::Act, w, c][..n_in.min(3)].to_vec())
        }
        // Constant B: [K, N] weight, per channel along N (the last axis; resolved against the rank later).
        "MatMul" => own(vec![Slot::Act, Slot::Weight { axis: pc(usize::MAX) }]),
        "Add" | "Sub" | "Mul" => own(vec![Slot::Act, Slot::Act]),
        "Concat" => own(vec![Slot::Act; n_in]),
        "AveragePool" | "GlobalAveragePool" => own(vec![Slot::Act]),
        "Relu" | "LeakyRelu" | "Sigmoid" | "HardSigmoid" | "HardSwish" | "Tanh" => own(vec![Slot::Act]),
        "Clip" => own(acts_then_skip(1)),
        "Softmax" => own(vec![Slot::Act]),
        "MaxPool" => share(vec![Slot::Act], vec![0]),
        "Resize" => {
            let mode = attr_s(n, "mode").unwrap_or_else(|| "nearest".into());
            if mode == "cubic" {
                // Cubic interpolation overshoots the input range: the output needs its own parameters.
                own(acts_then_skip(1))
            } else {
                share(acts_then_skip(1), vec![0])
            }
        }
        "Split" => share(acts_then_skip(1), (0..n.output.len()).collect()),
        "Reshape" | "Transpose" | "Squeeze" | "Unsqueeze" | "Flatten" | "Slice" | "Pad" | "Identity"
        | "DepthToSpace" | "SpaceToDepth" => share(acts_then_skip(1), vec![0]),
        "LayerNormalization" => Decision::Float(
            "LayerNormalization kept float on purpose: its mean/variance need more resolution than the activation \
             type gives, and ONNX Runtime has no QDQ kernel for it (the NPU flow leaves it to BF16/float too)"
                .into(),
        ),
        "Gelu" => Decision::Float(
            "Gelu kept float on purpose: no integer kernel in ONNX Runtime's CPU provider, and it is not in the \
             NPU's INT8 op table"
                .into(),
        ),
        "BatchNormalization" => Decision::Float(
            "BatchNormalization kept float: the prepared model should have folded it into the preceding Conv".into(),
        ),
        _ => Decision::Float(format!("no quantization rule for op '{op}'")),
    }
}
