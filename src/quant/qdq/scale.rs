//! Scale and zero-point arithmetic.
//!
//! - Every range is widened to include 0 (so zero padding and ReLU's 0 are exact).
//! - Asymmetric: `scale = (max - min) / (qmax - qmin)`, `zp = round(qmin - min / scale)` clamped to the type.
//! - Symmetric, signed: restricted range `[-qmax, qmax]` (as ONNX Runtime's quantizer): `scale = absmax / qmax`,
//!   `zp = 0`. Symmetric, unsigned: `scale = 2 absmax / (qmax - qmin)`, `zp = (qmin + qmax + 1) / 2` (128 for U8).
//! - Power of two: the scale is rounded *up* to `2^ceil(log2 scale)`, so the calibrated range is never clipped;
//!   the zero point is recomputed from the new scale.
//! - Degenerate ranges (both ends 0, or a width too small to divide by, or non-finite): scale 1, zero point as for
//!   the range [0, 0]; the caller reports it.

use crate::quant::QuantType;

/// Scales below this are treated as degenerate (the range is effectively all zeros).
pub const MIN_SCALE: f32 = 1e-30;

/// Quantization parameters of one tensor: per tensor (one scale) or per channel along `axis`.
#[derive(Clone, Debug, PartialEq)]
pub struct QParams {
    pub qtype: QuantType,
    pub scale: Vec<f32>,
    pub zero_point: Vec<i32>,
    /// Per-channel axis (`None`: per tensor, one scale and zero point).
    pub axis: Option<i64>,
    /// The range the parameters were computed from (after widening to include 0), per channel.
    pub rmin: Vec<f32>,
    pub rmax: Vec<f32>,
    /// Some channel's range was degenerate (scale set to 1).
    pub degenerate: bool,
}

impl QParams {
    pub fn per_tensor(
        qtype: QuantType,
        scale: f32,
        zp: i32,
        rmin: f32,
        rmax: f32,
        degenerate: bool,
    ) -> QParams {
        QParams {
            qtype,
            scale: vec![scale],
            zero_point: vec![zp],
            axis: None,
            rmin: vec![rmin],
            rmax: vec![rmax],
            degenerate,
        }
    }
}

/// Rounds a positive scale up to the next power of two (`2^ceil(log2 s)`).
pub fn pow2_ceil(s: f32) -> f32 {
    if s.is_nan() || s <= 0.0 || !s.is_finite() {
        return 1.0;
    }
    let e = (s as f64).log2().ceil();
    let p = 2f64.powf(e);
    // log2 of an exact power of two can come out a hair high; keep the smaller power when it still covers `s`.
    let half = p / 2.0;
    (if half >= s as f64 { half } else { p }) as f32
}

/// (scale, zero point, degenerate) for one range.
pub fn range_params(
    min: f32,
    max: f32,
    qtype: QuantType,
    symmetric: bool,
    pow2: bool,
) -> (f32, i32, bool) {
    let (qmin, qmax) = (qtype.qmin() as f64, qtype.qmax() as f64);
    let (mut lo, mut hi) = (min.min(0.0) as f64, max.max(0.0) as f64);
    if !lo.is_finite() || !hi.is_finite() {
        lo = 0.0;
        hi = 0.0;
    }
    let zero_zp = |signed_sym: bool| -> i32 {
        if symmetric {
            if signed_sym {
                0
            } else {
                ((qmin + qmax + 1.0) / 2.0).floor() as i32
            }
        } else {
            qmin as i32
        }
    };
    let signed = qtype.is_signed();
    if symmetric {
        let absmax = lo.abs().max(hi.abs());
        let mut scale = if signed {
            absmax / qmax
        } else {
            2.0 * absmax / (qmax - qmin)
        };
        if scale.is_nan() || scale < MIN_SCALE as f64 || !scale.is_finite() {
            return (1.0, zero_zp(signed), true);
        }
        if pow2 {
            scale = pow2_ceil(scale as f32) as f64;
        }
        let zp = zero_zp(signed);
        return (scale as f32, zp, false);
    }
    let mut scale = (hi - lo) / (qmax - qmin);
    if scale.is_nan() || scale < MIN_SCALE as f64 || !scale.is_finite() {
        return (1.0, zero_zp(false), true);
    }
    if pow2 {
        scale = pow2_ceil(scale as f32) as f64;
    }
    let scale32 = scale as f32;
    let zp = (qmin - lo / scale32 as f64).round().clamp(qmin, qmax) as i32;
    (scale32, zp, false)
}

/// Per-tensor parameters for a range.
pub fn tensor_params(min: f32, max: f32, qtype: QuantType, symmetric: bool, pow2: bool) -> QParams {
    let (s, z, d) = range_params(min, max, qtype, symmetric, pow2);
    QParams::per_tensor(qtype, s, z, min.min(0.0), max.max(0.0), d)
}

/// Quantizes one value with ONNX `QuantizeLinear` semantics (round half to even, saturate to `[lo, hi]`).
#[inline]
pub fn quantize_value(x: f32, scale: f32, zp: i32, lo: i32, hi: i32) -> i32 {
    let v = (x / scale).round_ties_even() as f64 + zp as f64;
    if v.is_nan() {
        return zp.clamp(lo, hi);
    }
    v.clamp(lo as f64, hi as f64) as i32
}

/// The integer range weights are quantized into: symmetric signed weights use `[-qmax, qmax]`.
pub fn weight_qrange(qtype: QuantType, symmetric: bool) -> (i32, i32) {
    if symmetric && qtype.is_signed() {
        (-qtype.qmax(), qtype.qmax())
    } else {
        (qtype.qmin(), qtype.qmax())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2() {
        assert_eq!(pow2_ceil(1.0), 1.0);
        assert_eq!(pow2_ceil(0.3), 0.5);
        assert_eq!(pow2_ceil(0.25), 0.25);
        assert_eq!(pow2_ceil(3.0), 4.0);
    }

    #[test]
    fn asym_u8() {
        let (s, z, d) = range_params(-1.0, 3.0, QuantType::U8, false, false);
        assert!((s - 4.0 / 255.0).abs() < 1e-7 && z == 64 && !d);
        let (s, z, _) = range_params(0.5, 3.0, QuantType::S8, false, false);
        assert!((s - 3.0 / 255.0).abs() < 1e-7 && z == -128);
        assert_eq!(
            range_params(0.0, 0.0, QuantType::U8, false, false),
            (1.0, 0, true)
        );
    }

    #[test]
    fn sym() {
        let (s, z, _) = range_params(-2.0, 1.0, QuantType::S8, true, false);
        assert!((s - 2.0 / 127.0).abs() < 1e-7 && z == 0);
        let (s, z, _) = range_params(-2.0, 1.0, QuantType::S8, true, true);
        assert_eq!((s, z), (1.0 / 32.0, 0));
        let (_, z, _) = range_params(-2.0, 1.0, QuantType::U8, true, false);
        assert_eq!(z, 128);
    }
}
