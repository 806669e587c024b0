//! Reading and building the small initializers the CPU plan touches (scales, zero points, weights, biases).

use crate::onnx::proto::{tensor_proto::DataType, TensorProto};

pub(super) const FLOAT: i32 = DataType::Float as i32;
pub(super) const UINT8: i32 = DataType::Uint8 as i32;
pub(super) const INT8: i32 = DataType::Int8 as i32;
pub(super) const UINT16: i32 = DataType::Uint16 as i32;
pub(super) const INT16: i32 = DataType::Int16 as i32;
pub(super) const INT32: i32 = DataType::Int32 as i32;

/// The element count of a tensor (`None` when a dimension is negative or the product overflows).
pub(super) fn numel(t: &TensorProto) -> Option<usize> {
    t.dims.iter().try_fold(1usize, |n, &d| {
        usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
    })
}

/// The values of an integer tensor (int8/uint8/int16/uint16/int32) as i64, or `None` for other types, external
/// data, or data that does not match the shape.
pub(super) fn ints(t: &TensorProto) -> Option<Vec<i64>> {
    if !t.external_data.is_empty() {
        return None;
    }
    let n = numel(t)?;
    let dt = t.data_type?;
    let v: Vec<i64> = match (&t.raw_data, dt) {
        (Some(raw), INT8) => raw.iter().map(|&b| b as i8 as i64).collect(),
        (Some(raw), UINT8) => raw.iter().map(|&b| b as i64).collect(),
        (Some(raw), INT16) => raw
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
            .collect(),
        (Some(raw), UINT16) => raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
            .collect(),
        (Some(raw), INT32) => raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
        // Without raw data, every one of these types is stored in int32_data (one value per entry).
        (None, INT8 | UINT8 | INT16 | UINT16 | INT32) => {
            t.int32_data.iter().map(|&v| v as i64).collect()
        }
        _ => return None,
    };
    (v.len() == n).then_some(v)
}

/// The values of a float tensor, or `None` (other type, external data, size mismatch).
pub(super) fn floats(t: &TensorProto) -> Option<Vec<f32>> {
    if !t.external_data.is_empty() || t.data_type != Some(FLOAT) {
        return None;
    }
    let n = numel(t)?;
    let v: Vec<f32> = match &t.raw_data {
        Some(raw) => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        None => t.float_data.clone(),
    };
    (v.len() == n).then_some(v)
}

/// The (min, max) an integer type can hold.
pub(super) fn range(dt: i32) -> Option<(i64, i64)> {
    Some(match dt {
        UINT8 => (0, 255),
        INT8 => (-128, 127),
        UINT16 => (0, 65535),
        INT16 => (-32768, 32767),
        INT32 => (i32::MIN as i64, i32::MAX as i64),
        _ => return None,
    })
}

/// A new integer tensor of type `dt` (values must be in its range).
pub(super) fn int_tensor(name: &str, dt: i32, dims: &[i64], values: &[i64]) -> TensorProto {
    let raw: Vec<u8> = match dt {
        UINT8 => values.iter().map(|&v| v as u8).collect(),
        INT8 => values.iter().map(|&v| v as i8 as u8).collect(),
        UINT16 => values
            .iter()
            .flat_map(|&v| (v as u16).to_le_bytes())
            .collect(),
        INT16 => values
            .iter()
            .flat_map(|&v| (v as i16).to_le_bytes())
            .collect(),
        _ => values
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect(),
    };
    TensorProto {
        name: Some(name.to_string()),
        data_type: Some(dt),
        dims: dims.to_vec(),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// A new float tensor.
pub(super) fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        data_type: Some(FLOAT),
        dims: dims.to_vec(),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// ONNX QuantizeLinear of one value: round half to even, add the zero point, saturate.
pub(super) fn quantize(x: f32, scale: f32, zp: i64, dt: i32) -> i64 {
    let (lo, hi) = range(dt).unwrap_or((i64::MIN, i64::MAX));
    let q = (x / scale).round_ties_even();
    let q = if q.is_nan() { 0.0 } else { q as f64 };
    ((q + zp as f64).clamp(lo as f64, hi as f64)) as i64
}
