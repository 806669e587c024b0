//! Weight and bias quantization into integer initializers (fed to `DequantizeLinear`).
//!
//! Weights are quantized per tensor or per output channel along the axis the op rule names (Conv: 0,
//! ConvTranspose: 1, Gemm: 1 for `transB=0` / 0 for `transB=1`, MatMul: the last axis). Biases become INT32 with
//! `scale[c] = input_scale * weight_scale[c]` and zero point 0.
//!
//! INT32 bias overflow: a bias value that needs more than `i32::MAX` steps (only seen with all-zero or nearly
//! all-zero weight channels, whose scale is tiny) is not clamped, because clamping would change the output by
//! the whole excess. Instead the weight scale of that channel (per channel) or of the whole tensor (per tensor) is
//! raised until the bias fits, and the weights are re-quantized with it; the report lists every such adjustment.
//! Raising a degenerate channel's scale costs nothing (its weights stay 0); for a real channel it costs weight
//! resolution, which is the lesser error.

use crate::error::{Error, Result};
use crate::onnx::proto::TensorProto;
use crate::onnx::DataType;
use crate::quant::QuantType;

use super::scale::{quantize_value, range_params, weight_qrange, QParams, MIN_SCALE};

/// Largest bias quantum count we allow (a margin under `i32::MAX` so rounding never overflows).
pub const BIAS_LIMIT: f64 = (i32::MAX - 1024) as f64;

/// The float values of a FLOAT constant (the one typed accessor: malformed data is an error naming the tensor).
pub use crate::onnx::tensor::f32_values as read_f32;

/// An integer initializer of ONNX type `data_type` (2 uint8, 3 int8, 4 uint16, 5 int16, 6 int32).
pub fn int_tensor(name: &str, data_type: i32, dims: &[i64], values: &[i32]) -> TensorProto {
    let mut raw = Vec::with_capacity(values.len() * 4);
    for &v in values {
        match data_type {
            t if t == DataType::Uint8.onnx() => raw.push(v as u8),
            t if t == DataType::Int8.onnx() => raw.push(v as i8 as u8),
            t if t == DataType::Uint16.onnx() => raw.extend_from_slice(&(v as u16).to_le_bytes()),
            t if t == DataType::Int16.onnx() => raw.extend_from_slice(&(v as i16).to_le_bytes()),
            _ => raw.extend_from_slice(&v.to_le_bytes()),
        }
    }
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.to_vec(),
        data_type: Some(data_type),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// A float initializer.
pub fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float.onnx()),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// A quantized weight: integer values (same layout as the float tensor) and their parameters.
#[derive(Clone, Debug)]
pub struct QWeight {
    pub values: Vec<i32>,
    pub params: QParams,
    pub dims: Vec<i64>,
}

/// How to quantize one weight.
#[derive(Clone, Copy, Debug)]
pub struct WeightSpec {
    pub qtype: QuantType,
    pub symmetric: bool,
    pub pow2: bool,
    /// Per-channel axis (already normalized to be non-negative), or per tensor.
    pub axis: Option<usize>,
    /// Choose the range by minimum squared error instead of MinMax (symmetric signed weights that are per tensor
    /// or power-of-two; see [`mse_scale`]).
    pub mse: bool,
}

fn channel_of(i: usize, dims: &[i64], axis: usize) -> usize {
    let inner: i64 = dims[axis + 1..].iter().product();
    ((i as i64 / inner.max(1)) % dims[axis]) as usize
}

/// Quantizes a float weight (`dims`, `values`) per `spec`.
pub fn quantize_weight(values: &[f32], dims: &[i64], spec: WeightSpec) -> QWeight {
    let nch = match spec.axis {
        Some(a) if a < dims.len() && dims[a] > 0 => dims[a] as usize,
        _ => 1,
    };
    let axis = if nch > 1 || spec.axis.is_some_and(|a| a < dims.len()) {
        spec.axis
    } else {
        None
    };
    let mut lo = vec![0f32; nch];
    let mut hi = vec![0f32; nch];
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            continue;
        }
        let c = if let Some(a) = axis {
            channel_of(i, dims, a)
        } else {
            0
        };
        lo[c] = lo[c].min(v);
        hi[c] = hi[c].max(v);
    }
    let mut scale = Vec::with_capacity(nch);
    let mut zp = Vec::with_capacity(nch);
    let mut degenerate = false;
    for c in 0..nch {
        let (s, z, d) = range_params(lo[c], hi[c], spec.qtype, spec.symmetric, spec.pow2);
        scale.push(s);
        zp.push(z);
        degenerate |= d;
    }
    let search = spec.mse && spec.symmetric && spec.qtype.is_signed() && (spec.pow2 || nch == 1);
    if search {
        let mut groups: Vec<Vec<f32>> = vec![Vec::new(); nch];
        for (i, &v) in values.iter().enumerate() {
            if v.is_finite() {
                let c = axis.map_or(0, |a| channel_of(i, dims, a));
                groups[c].push(v);
            }
        }
        let (_, qmax) = weight_qrange(spec.qtype, true);
        for c in 0..nch {
            if scale[c] > 0.0 && !(lo[c] == 0.0 && hi[c] == 0.0) {
                let s = mse_scale(&groups[c], scale[c], qmax, spec.pow2);
                scale[c] = s;
                // The report's range is the one the scale now represents (clipping included).
                lo[c] = lo[c].max(-s * qmax as f32);
                hi[c] = hi[c].min(s * qmax as f32);
            }
        }
    }
    let params = QParams {
        qtype: spec.qtype,
        scale,
        zero_point: zp,
        axis: axis.map(|a| a as i64),
        rmin: lo,
        rmax: hi,
        degenerate,
    };
    let values = requantize(values, dims, &params, spec);
    QWeight {
        values,
        params,
        dims: dims.to_vec(),
    }
}

/// The float values a quantized weight stands for (what `DequantizeLinear` computes).
pub fn dequantize(w: &QWeight) -> Vec<f32> {
    let p = &w.params;
    w.values
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let c = match p.axis {
                Some(a) if p.scale.len() > 1 => channel_of(i, &w.dims, a as usize),
                _ => 0,
            };
            (q - p.zero_point[c]) as f32 * p.scale[c]
        })
        .collect()
}

/// Squared error of quantizing `v` symmetrically with `scale` into `[-qmax, qmax]`.
///
/// The weight-range search calls this for every element of every weight, four times per emission: on x86-64 with
/// SSE4.1 the same code is compiled with that feature, so rounding is one instruction instead of a call to libm's
/// `rint` per element (the same ties-to-even result, so the same sums bit for bit).
fn sq_error(v: &[f32], scale: f32, qmax: i32) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.1") {
        // SAFETY: the CPU supports SSE4.1 (checked just above).
        return unsafe { sq_error_sse41(v, scale, qmax) };
    }
    sq_error_plain(v, scale, qmax)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.1")]
unsafe fn sq_error_sse41(v: &[f32], scale: f32, qmax: i32) -> f64 {
    sq_error_plain(v, scale, qmax)
}

#[inline(always)]
fn sq_error_plain(v: &[f32], scale: f32, qmax: i32) -> f64 {
    let (inv, q) = (1.0 / scale as f64, qmax as f64);
    v.iter()
        .map(|&x| {
            let x = x as f64;
            let e = (x * inv).round_ties_even().clamp(-q, q) * scale as f64 - x;
            e * e
        })
        .sum()
}

/// The symmetric scale of minimum squared error for the values `v`, starting from the MinMax scale `minmax`.
///
/// Power of two: the MinMax shift and up to three finer ones (each halves the step and clips more), compared by
/// their exact error; ties keep the coarser one (no clipping). Float scales: a coarse grid of clipping thresholds
/// from 10 % to 100 % of the absolute maximum, then a finer grid around the best point, each scored from the sorted
/// magnitudes in O(log n): values under half a step round to 0 (error x^2, exact), clipped values cost
/// (|x| - t)^2 (exact), the rest the uniform rounding error step^2 / 12.
pub fn mse_scale(v: &[f32], minmax: f32, qmax: i32, pow2: bool) -> f32 {
    if v.is_empty() {
        return minmax;
    }
    if pow2 {
        let mut best = (sq_error(v, minmax, qmax), minmax);
        let mut s = minmax;
        for _ in 0..3 {
            s /= 2.0;
            let e = sq_error(v, s, qmax);
            if e < best.0 {
                best = (e, s);
            }
        }
        return best.1;
    }
    let mut a: Vec<f64> = v.iter().map(|x| x.abs() as f64).collect();
    a.sort_unstable_by(|x, y| x.total_cmp(y));
    let n = a.len();
    let (mut p1, mut p2) = (vec![0f64; n + 1], vec![0f64; n + 1]);
    for (i, &x) in a.iter().enumerate() {
        p1[i + 1] = p1[i] + x;
        p2[i + 1] = p2[i] + x * x;
    }
    let err = |s: f64| {
        let t = s * qmax as f64;
        let lo = a.partition_point(|&x| x < s / 2.0);
        let hi = a.partition_point(|&x| x <= t);
        let k = (n - hi) as f64;
        p2[lo] + (hi.saturating_sub(lo)) as f64 * s * s / 12.0 + (p2[n] - p2[hi])
            - 2.0 * t * (p1[n] - p1[hi])
            + t * t * k
    };
    let m = minmax as f64;
    let mut best = (err(m), 1.0f64);
    const COARSE: usize = 45;
    let step = 0.9 / COARSE as f64;
    for i in 1..=COARSE {
        let f = 1.0 - step * i as f64;
        let e = err(m * f);
        if e < best.0 {
            best = (e, f);
        }
    }
    let at = best.1;
    for i in 1..20 {
        for f in [at - step * i as f64 / 20.0, at + step * i as f64 / 20.0] {
            if f > 0.0 && f < 1.0 {
                let e = err(m * f);
                if e < best.0 {
                    best = (e, f);
                }
            }
        }
    }
    (m * best.1) as f32
}

/// Every weight value on its grid. Runs for every weight at every emission: compiled with SSE4.1 where the CPU has
/// it, like [`sq_error`], so rounding is an instruction rather than a libm call (same results).
fn requantize(values: &[f32], dims: &[i64], p: &QParams, spec: WeightSpec) -> Vec<i32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.1") {
        // SAFETY: the CPU supports SSE4.1 (checked just above).
        return unsafe { requantize_sse41(values, dims, p, spec) };
    }
    requantize_plain(values, dims, p, spec)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.1")]
unsafe fn requantize_sse41(
    values: &[f32],
    dims: &[i64],
    p: &QParams,
    spec: WeightSpec,
) -> Vec<i32> {
    requantize_plain(values, dims, p, spec)
}

#[inline(always)]
fn requantize_plain(values: &[f32], dims: &[i64], p: &QParams, spec: WeightSpec) -> Vec<i32> {
    let (qlo, qhi) = weight_qrange(spec.qtype, spec.symmetric);
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = match p.axis {
                Some(a) => channel_of(i, dims, a as usize),
                None => 0,
            };
            quantize_value(v, p.scale[c], p.zero_point[c], qlo, qhi)
        })
        .collect()
}

/// A quantized INT32 bias and what had to be adjusted.
#[derive(Clone, Debug)]
pub struct QBias {
    pub values: Vec<i32>,
    /// One scale per bias element when the weight is per channel (or the weight's channel count divides the bias
    /// length, as for grouped ConvTranspose), else a single scale.
    pub scale: Vec<f32>,
    /// Weight channels whose scale was raised to keep the bias in INT32: (channel, old scale, new scale).
    pub raised: Vec<(usize, f32, f32)>,
}

/// Quantizes `bias` (length `n` = output channels) against the input scale and the weight's scales, raising weight
/// scales where the bias would overflow INT32 (the weight is re-quantized in place).
pub fn quantize_bias(
    bias: &[f32],
    input_scale: f32,
    weight: &mut QWeight,
    weight_values: &[f32],
    spec: WeightSpec,
) -> Result<QBias> {
    let n = bias.len();
    let wch = weight.params.scale.len();
    if wch != 1 && (n == 0 || !n.is_multiple_of(wch)) {
        return Err(Error::model_invalid(format!(
            "bias has {n} values, not a multiple of the weight's {wch} channels"
        )));
    }
    let wc = |i: usize| if wch == 1 { 0 } else { i % wch };
    // Raise weight scales where needed.
    let mut raised = Vec::new();
    let mut need = vec![0f64; wch];
    for (i, &b) in bias.iter().enumerate() {
        if b.is_finite() {
            let c = wc(i);
            need[c] = need[c].max(b.abs() as f64 / (input_scale as f64 * BIAS_LIMIT));
        }
    }
    let mut changed = false;
    for (c, &need) in need.iter().enumerate() {
        let old = weight.params.scale[c];
        if need > old as f64 && need >= MIN_SCALE as f64 {
            let mut new = need as f32 * (1.0 + 1e-6);
            if spec.pow2 {
                new = super::scale::pow2_ceil(new);
            }
            weight.params.scale[c] = new;
            if !spec.symmetric {
                let qmin = spec.qtype.qmin() as f64;
                weight.params.zero_point[c] = (qmin - weight.params.rmin[c] as f64 / new as f64)
                    .round()
                    .clamp(qmin, spec.qtype.qmax() as f64)
                    as i32;
            }
            weight.params.degenerate = false;
            raised.push((c, old, new));
            changed = true;
        }
    }
    if changed {
        weight.values = requantize(weight_values, &weight.dims, &weight.params, spec);
    }
    let per = wch > 1;
    let scale: Vec<f32> = if per {
        (0..n)
            .map(|i| input_scale * weight.params.scale[wc(i)])
            .collect()
    } else {
        vec![input_scale * weight.params.scale[0]]
    };
    let values = bias
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let s = if per { scale[i] } else { scale[0] };
            if s > 0.0 {
                quantize_value(b, s, 0, i32::MIN + 1, i32::MAX)
            } else {
                0
            }
        })
        .collect();
    Ok(QBias {
        values,
        scale,
        raised,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pow2: bool, mse: bool) -> WeightSpec {
        WeightSpec {
            qtype: QuantType::S8,
            symmetric: true,
            pow2,
            axis: None,
            mse,
        }
    }

    fn total_error(v: &[f32], w: &QWeight) -> f64 {
        v.iter()
            .zip(dequantize(w))
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum()
    }

    /// Laplacian weights (the usual shape of trained weights): MinMax spends the range on the few largest; the
    /// error-minimising range clips the tail and wins overall, for float and power-of-two scales alike.
    #[test]
    fn min_mse_range_beats_min_max_on_heavy_tails() {
        let n = 100_000;
        let v: Vec<f32> = (0..n)
            .map(|i| {
                let u = (i as f32 + 0.5) / n as f32;
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                // Scale chosen so absmax / 127 lands just above 2^-11: MinMax rounds the step up to 2^-10.
                sign * -(u.ln()) * 0.0057
            })
            .collect();
        let absmax = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        for pow2 in [false, true] {
            let mm = quantize_weight(&v, &[n as i64], spec(pow2, false));
            let mse = quantize_weight(&v, &[n as i64], spec(pow2, true));
            assert!(mse.params.scale[0] < mm.params.scale[0], "pow2={pow2}");
            let (e0, e1) = (total_error(&v, &mm), total_error(&v, &mse));
            assert!(e1 < 0.8 * e0, "pow2={pow2}: error {e0} -> {e1}");
            assert!(
                mse.params.rmax[0] < absmax,
                "the report shows the clipped range"
            );
            if pow2 {
                let s = mse.params.scale[0];
                assert_eq!(
                    s,
                    2f32.powi(s.log2().round() as i32),
                    "still a power of two"
                );
            }
        }
    }

    /// Evenly spread weights in [-1, 1]: clipping only hurts a float scale, so the search keeps (close to) the full
    /// range. A power-of-two scale rounded up from 1/127 is 1/64 and wastes half the codes; 1/128 clips only the
    /// values above 127/128 and is the better shift (the "lost bit" of power-of-two scales, won back).
    #[test]
    fn min_mse_on_uniform_weights_keeps_float_range_and_takes_the_finer_shift() {
        let v: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) / 500.0).collect();
        let mm = quantize_weight(&v, &[1001], spec(false, false));
        let mse = quantize_weight(&v, &[1001], spec(false, true));
        assert!(mse.params.scale[0] > 0.97 * mm.params.scale[0]);
        let p2mm = quantize_weight(&v, &[1001], spec(true, false));
        let p2 = quantize_weight(&v, &[1001], spec(true, true));
        assert_eq!(
            (p2mm.params.scale[0], p2.params.scale[0]),
            (1.0 / 64.0, 1.0 / 128.0)
        );
        assert!(total_error(&v, &p2) < total_error(&v, &p2mm));
    }
}
