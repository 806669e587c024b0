//! The op conversions of AMD's XINT8 NPU mode (Quark's `SimulateDPU` post-process, run on the emitted QDQ graph).
//!
//! The NPU computes some ops in fixed point in a way that differs from their ONNX definition, and places only some
//! ops at all. Quark rewrites the quantized model so that running it on the CPU gives what the NPU gives, and so
//! that the op is one the NPU takes. Quark's defaults for XINT8 (`enable_npu_cnn`), and what ipuflow does:
//!
//! | Quark option (XINT8 default) | what it does | why | ipuflow |
//! |---|---|---|---|
//! | `ConvertAvgPoolToDPUVersion` (on) | `Mul` by `k·n/2^s` after AveragePool/GlobalAveragePool (square `n` = kh·kw window, e.g. 7×7: 49·21/1024) | the NPU divides by a shift and a small integer multiplier, not by `n` | `npu_rescale` (XINT8 default) |
//! | `ConvertReduceMeanToDPUVersion` (on) | the same `Mul` after ReduceMean over `n` elements | the same division | `npu_rescale` |
//! | `ConvertHardSigmoidToDPUVersion` (on) | `Mul` by (2731/16384)/(1/6) after a HardSigmoid(alpha 1/6, beta 0.5) | the NPU's 1/6 is 2731/16384 | `npu_rescale` |
//! | `ConvertLeakyReluToDPUVersion` (on) | alpha rounded to a multiple of 1/256 (0.1 → 26/256 = 0.1015625) | the NPU's slope has 8 fraction bits | `npu_rescale` |
//! | `ConvertSigmoidToHardSigmoid` (on) | Sigmoid → HardSigmoid(alpha 1/6, beta 0.5) (then the row above) | Sigmoid is not an NPU op (HardSigmoid is) | `sigmoid_to_hard_sigmoid` (option: changes the function) |
//! | `ConvertSoftmaxToDPUVersion`, `ConvertInstanceNormToDPUVersion`, `ConvertClipToDPUVersion` (off) | — | — | not done |
//!
//! Only quantized nodes are rewritten (input from a DequantizeLinear, output read by QuantizeLinear nodes only), as
//! Quark rewrites only the nodes it quantizes; an op left float (an output-aware tail) runs on the CPU as defined.

use crate::onnx::node::{attr_f, attr_ints, op};
use crate::onnx::proto::{AttributeProto, GraphProto, NodeProto, ValueInfoProto};
use crate::quant::qdq::weights::f32_tensor;
use crate::quant::{Calibration, QuantConfig};

/// The NPU's 1/6 in HardSigmoid, over the exact 1/6 (Quark's `HARD_SIGMOID_SCALE`).
pub const HARD_SIGMOID_SCALE: f32 = (2731.0 / 16384.0) / (1.0 / 6.0);

/// Quark's `dpu_leaky_relu_alpha`: the slope as a multiple of 1/256.
pub fn dpu_leaky_relu_alpha(alpha: f32) -> f32 {
    (alpha * 256.0).round() / 256.0
}

/// The factor by which the NPU's mean over `n` elements differs from the exact mean: `k/2^s · n` for the `k/2^s`
/// closest to `1/n` with `s < 7 + ceil(log2 n)` (Quark's `_get_reduce_mean_scale`).
pub fn reciprocal_scale(n: u64) -> f32 {
    let rec = n as f64;
    let s_max = 7 + rec.log2().ceil() as i32;
    let (mut best, mut best_diff) = (1.0f64, f64::INFINITY);
    for s in 0..s_max {
        let p = 2f64.powi(s);
        let k = (p / rec).round();
        let diff = (k / p - 1.0 / rec).abs();
        if diff < best_diff {
            (best, best_diff) = (k / p, diff);
        }
    }
    (best * rec) as f32
}

/// The factor for a square `k × k` pooling window (Quark's `_get_avgpool_scale`, with its table of window sizes
/// the NPU implements with a fixed multiplier).
pub fn avg_pool_scale(k: u64) -> f32 {
    match k {
        256.. => 1.0,
        3 => 9.0 * 7.0 / 64.0,
        5 => 25.0 * 10.0 / 256.0,
        6 => 36.0 * 7.0 / 256.0,
        7 => 49.0 * 21.0 / 1024.0,
        14 => 196.0 * 21.0 / 4096.0,
        _ => reciprocal_scale(k * k),
    }
}

/// Whether `n` is quantized: its input 0 comes from a DequantizeLinear and only QuantizeLinear nodes read output 0.
fn quantized(g: &GraphProto, n: &NodeProto) -> bool {
    let (Some(x), Some(y)) = (n.input.first(), n.output.first()) else {
        return false;
    };
    let from_dq = g
        .node
        .iter()
        .any(|p| op(p) == "DequantizeLinear" && p.output.first() == Some(x));
    let readers: Vec<&NodeProto> = g
        .node
        .iter()
        .filter(|c| c.input.iter().any(|i| i == y))
        .collect();
    let is_output = g.output.iter().any(|o| o.name.as_ref() == Some(y));
    from_dq
        && !is_output
        && !readers.is_empty()
        && readers.iter().all(|c| op(c) == "QuantizeLinear")
}

/// The calibrated tensor behind `x`: through a DequantizeLinear and its QuantizeLinear to the float tensor.
fn calibrated_name<'a>(g: &'a GraphProto, x: &'a str) -> &'a str {
    let producer = |t: &str| {
        g.node
            .iter()
            .find(|p| p.output.first().map(String::as_str) == Some(t))
    };
    match producer(x).filter(|p| op(p) == "DequantizeLinear") {
        Some(dq) => match producer(&dq.input[0]).filter(|p| op(p) == "QuantizeLinear") {
            Some(q) => q.input[0].as_str(),
            None => x,
        },
        None => x,
    }
}

/// The NPU's rescale factor for node `n`, or `None` when it needs none or its window is unknown (with the reason).
fn rescale_factor(
    g: &GraphProto,
    n: &NodeProto,
    calib: &Calibration,
) -> Result<Option<f32>, String> {
    let in_shape = || {
        n.input
            .first()
            .map(|x| calibrated_name(g, x))
            .and_then(|x| calib.get(x))
            .map(|s| s.shape.clone())
            .filter(|s| !s.is_empty() && s.iter().all(|d| *d > 0))
    };
    match op(n) {
        "HardSigmoid" => {
            let (a, b) = (
                attr_f(n, "alpha").unwrap_or(0.2),
                attr_f(n, "beta").unwrap_or(0.5),
            );
            let npu = (a - 1.0 / 6.0).abs() < 1e-6 && (b - 0.5).abs() < 1e-6;
            Ok(npu.then_some(HARD_SIGMOID_SCALE))
        }
        "AveragePool" => match attr_ints(n, "kernel_shape").as_deref() {
            Some([kh, kw]) if kh == kw && *kh > 0 => Ok(Some(avg_pool_scale(*kh as u64))),
            k => Err(format!("kernel {k:?} is not a square 2-D window")),
        },
        "GlobalAveragePool" => match in_shape().as_deref() {
            Some([_, _, h, w]) if h == w => Ok(Some(avg_pool_scale(*h as u64))),
            s => Err(format!("input shape {s:?} is not a square 2-D map")),
        },
        "ReduceMean" => {
            let shape = in_shape().ok_or("input shape unknown")?;
            let axes = attr_ints(n, "axes").ok_or("axes not an attribute")?;
            let rank = shape.len() as i64;
            let count: i64 = axes
                .iter()
                .map(|a| {
                    shape
                        .get((if *a < 0 { a + rank } else { *a }) as usize)
                        .copied()
                        .unwrap_or(0)
                })
                .product();
            match count {
                c if c > 0 => Ok(Some(reciprocal_scale(c as u64))),
                _ => Err(format!("axes {axes:?} do not fit shape {shape:?}")),
            }
        }
        _ => Ok(None),
    }
}

/// Inserts `y = y_in · factor` after node `i` (its output renamed `y_in`).
fn insert_mul(g: &mut GraphProto, i: usize, factor: f32) {
    let y = g.node[i].output[0].clone();
    let (inner, scale) = (format!("{y}_npu_rescale_in"), format!("{y}_npu_rescale"));
    g.node[i].output[0] = inner.clone();
    g.initializer.push(f32_tensor(&scale, &[], &[factor]));
    // The inner tensor has the output's shape and type (the pre-flight reads them).
    if let Some(v) = g
        .value_info
        .iter()
        .find(|v| v.name.as_ref() == Some(&y))
        .cloned()
    {
        g.value_info.push(ValueInfoProto {
            name: Some(inner.clone()),
            ..v
        });
    }
    let mul = NodeProto {
        op_type: Some("Mul".into()),
        name: Some(format!("{y}_npu_rescale_mul")),
        input: vec![inner, scale],
        output: vec![y],
        ..Default::default()
    };
    g.node.insert(i + 1, mul);
}

/// Sigmoid node `n` as HardSigmoid(alpha 1/6, beta 0.5), Quark's replacement.
fn to_hard_sigmoid(n: &mut NodeProto) {
    n.op_type = Some("HardSigmoid".into());
    n.attribute = ["alpha", "beta"]
        .iter()
        .zip([1.0f32 / 6.0, 0.5])
        .map(|(k, v)| AttributeProto {
            name: Some(k.to_string()),
            f: Some(v),
            r#type: Some(1),
            ..Default::default()
        })
        .collect();
}

/// Applies the configured conversions to the quantized graph `g`; returns the report's notes (one per conversion
/// kind, naming the nodes).
pub fn apply(g: &mut GraphProto, calib: &Calibration, cfg: &QuantConfig) -> Vec<String> {
    let mut done: Vec<(&str, Vec<String>)> = Vec::new();
    let mut note = |kind: &'static str, what: String| match done.iter_mut().find(|d| d.0 == kind) {
        Some(d) => d.1.push(what),
        None => done.push((kind, vec![what])),
    };
    let mut i = 0;
    while i < g.node.len() {
        let label = g.node[i].output.first().cloned().unwrap_or_default();
        let is_q = quantized(g, &g.node[i]);
        if cfg.sigmoid_to_hard_sigmoid && is_q && op(&g.node[i]) == "Sigmoid" {
            to_hard_sigmoid(&mut g.node[i]);
            note(
                "Sigmoid -> HardSigmoid(alpha 1/6, beta 0.5) (ConvertSigmoidToHardSigmoid)",
                label.clone(),
            );
        }
        if cfg.npu_rescale && op(&g.node[i]) == "LeakyRelu" {
            let a = attr_f(&g.node[i], "alpha").unwrap_or(0.01);
            let npu = dpu_leaky_relu_alpha(a);
            if let Some(at) = g.node[i]
                .attribute
                .iter_mut()
                .find(|x| x.name.as_deref() == Some("alpha"))
            {
                at.f = Some(npu);
            } else if npu != a {
                g.node[i].attribute.push(AttributeProto {
                    name: Some("alpha".into()),
                    f: Some(npu),
                    r#type: Some(1),
                    ..Default::default()
                });
            }
            note(
                "LeakyRelu alpha as a multiple of 1/256 (ConvertLeakyReluToDPUVersion)",
                format!("{label} ({a} -> {npu})"),
            );
        }
        if cfg.npu_rescale && is_q {
            match rescale_factor(g, &g.node[i], calib) {
                Ok(Some(f)) => {
                    let kind = op(&g.node[i]).to_string();
                    insert_mul(g, i, f);
                    note(
                        "NPU rescale Mul (Convert{AvgPool,ReduceMean,HardSigmoid}ToDPUVersion)",
                        format!("{kind} '{label}' x {f}"),
                    );
                    i += 1;
                }
                Ok(None) => {}
                Err(why) => note(
                    "NPU rescale not applied",
                    format!("{} '{label}': {why}", op(&g.node[i])),
                ),
            }
        }
        i += 1;
    }
    done.into_iter()
        .map(|(kind, nodes)| {
            format!(
                "NPU mode: {kind}: {} node(s): {}",
                nodes.len(),
                nodes.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quark's figures: its table for 3x3 and 7x7 windows, the 1/256 LeakyRelu slope, the HardSigmoid factor.
    #[test]
    fn factors_match_quark() {
        assert_eq!(avg_pool_scale(3), 63.0 / 64.0);
        assert_eq!(avg_pool_scale(7), 49.0 * 21.0 / 1024.0);
        // 49 values by the reciprocal search: 21/1024 again (the closest k/2^s to 1/49 with s < 13).
        assert_eq!(reciprocal_scale(49), 49.0 * 21.0 / 1024.0);
        assert_eq!(reciprocal_scale(4), 1.0);
        assert_eq!(dpu_leaky_relu_alpha(0.1), 0.1015625);
        assert_eq!(HARD_SIGMOID_SCALE, 1.000_122_1);
    }
}
