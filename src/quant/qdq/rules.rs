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
    if cfg.cpu_fusion {
        if let Some(why) = cpu_keeps_float(op) {
            return Decision::Float(why);
        }
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

/// Ops the CPU preset (`cpu_fusion`) leaves float. Measured by `bench/cpu_plan/per_op.py` (ONNX Runtime 1.32's
/// CPU provider; uint8 [1, 64, 56, 56] in and out, one thread, median of 30 interleaved runs; table in
/// bench/results/cpu_plan.md), integer kernel against DQ -> float op -> Q:
/// - Softmax: QLinearSoftmax 0.84 vs 0.24 ms (last axis), and a model's final Softmax then ends in float
///   (ppocr-mobile-cls SQNR 39.8 -> 109.6 dB, open-nsfw 69.4 -> 80.9 dB; latency unchanged).
/// - AveragePool: QLinearAveragePool 14.1 vs 0.20 ms.
///
/// Not listed: the ops with a faster integer kernel (QLinearConv/QGemm, QLinearAdd/Mul, QLinearConcat,
/// QLinearGlobalAveragePool, QLinearSigmoid, QLinearLeakyRelu, Transpose and the layout ops); MaxPool and nearest
/// Resize, whose uint8 NCHW kernels are slow in isolation (24.4 vs 0.33 ms, 0.57 vs 0.40 ms) but which ONNX
/// Runtime's NHWC transformer runs as fast NhwcMaxPool next to integer convolutions (BlazeFace, hand-landmark:
/// unchanged; a float MaxPool's own output scale cost hand-landmark 0.6-0.9 dB on two outputs); and the ops with
/// no integer kernel at all (HardSigmoid, Tanh, Erf, Relu, Div, Pow, ReduceMean: ONNX Runtime runs DQ -> op -> Q
/// either way, 1.00-1.04x), where a float decision changes nothing but the report (HardSwish: see
/// [`cpu_fuse_hardswish`]).
pub const CPU_FLOAT_OPS: &[(&str, &str)] = &[
    ("Softmax", "QLinearSoftmax 3.5x slower than float"),
    ("AveragePool", "QLinearAveragePool 70x slower than float"),
];

/// Why the CPU preset leaves this node float, if it does (see [`CPU_FLOAT_OPS`]).
fn cpu_keeps_float(op: &str) -> Option<String> {
    let (_, why) = CPU_FLOAT_OPS.iter().find(|(o, _)| *o == op)?;
    Some(format!(
        "kept float by the CPU preset: {why} on ONNX Runtime's CPU provider (bench/cpu_plan/per_op.py)"
    ))
}

/// The CPU preset puts HardSwish back together where the prepared model has it inlined (`x * HardSigmoid(x)`
/// with alpha 1/6, beta 0.5, as ONNX Runtime's optimizer leaves it): quantized as written, ONNX Runtime (no
/// integer HardSigmoid) runs DQ -> HardSigmoid -> Q -> QLinearMul with a second Q/DQ round trip; one HardSwish
/// between the producer's Q and the consumer's DQ runs as DQ -> HardSigmoid -> Mul -> Q on a single DQ. Measured
/// on PP-LCNet (pplcnet-orientation, 28 HardSwish; one thread, median of 120 interleaved runs, load 13 on 2
/// cores): 0.68x float inlined, 0.93x re-fused (three runs, re-fused ahead each time by 5-35 %). Leaving the
/// inlined pair float instead is no help: ONNX Runtime gives each consumer its own copy of the shared DQ
/// (0.70x). Returns the number of HardSwish nodes made; the model's opset must have HardSwish (14+).
pub fn cpu_fuse_hardswish(g: &mut crate::onnx::proto::GraphProto) -> usize {
    use std::collections::HashMap;
    let mut uses: HashMap<String, usize> = HashMap::new();
    for n in &g.node {
        for x in n.input.iter().filter(|s| !s.is_empty()) {
            *uses.entry(x.clone()).or_default() += 1;
        }
    }
    let outputs: Vec<&String> = g.output.iter().filter_map(|o| o.name.as_ref()).collect();
    let mut hs_at: HashMap<String, usize> = HashMap::new(); // HardSigmoid output -> node index
    for (i, n) in g.node.iter().enumerate() {
        let (a, b) = (
            attr_f(n, "alpha").unwrap_or(0.2),
            attr_f(n, "beta").unwrap_or(0.5),
        );
        let hardswish = (a - 1.0 / 6.0).abs() < 1e-6 && b == 0.5;
        if n.op_type.as_deref() == Some("HardSigmoid")
            && hardswish
            && n.input.len() == 1
            && n.output.len() == 1
        {
            let o = &n.output[0];
            if uses.get(o) == Some(&1) && !outputs.contains(&o) {
                hs_at.insert(o.clone(), i);
            }
        }
    }
    let mut drop = vec![false; g.node.len()];
    let mut made = 0;
    for m in 0..g.node.len() {
        let n = &g.node[m];
        if n.op_type.as_deref() != Some("Mul")
            || n.input.len() != 2
            || !n.domain.as_deref().unwrap_or("").is_empty()
        {
            continue;
        }
        let Some((k, &h)) = (0..2).find_map(|k| hs_at.get(&n.input[k]).map(|h| (k, h))) else {
            continue;
        };
        // The gate must multiply the HardSigmoid's own input; the HardSigmoid comes first in topological order.
        if h > m || g.node[h].input[0] != n.input[1 - k] || drop[h] {
            continue;
        }
        let x = n.input[1 - k].clone();
        let mul = &mut g.node[m];
        mul.op_type = Some("HardSwish".into());
        mul.input = vec![x];
        mul.attribute.clear();
        drop[h] = true;
        made += 1;
    }
    let mut i = 0;
    g.node.retain(|_| {
        i += 1;
        !drop[i - 1]
    });
    made
}
