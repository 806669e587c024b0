//! Typed reads of a `TensorProto`'s values, one behaviour for every module: the values come from `raw_data`
//! (little-endian) when it holds bytes, else from the typed field ONNX stores the type in; a raw length that is not
//! a whole number of elements, a value count that is not what the dims call for, external data or an element type
//! the read does not take is an error naming the tensor, never a silently shortened vector.

use half::{bf16, f16};

use super::dtype::DataType;
use crate::error::{Error, Result};
use crate::onnx::proto::{tensor_proto::DataLocation, TensorProto};

fn name(t: &TensorProto) -> &str {
    t.name.as_deref().unwrap_or("")
}

fn type_name(t: &TensorProto) -> String {
    super::dtype::element_type_name(t.data_type.unwrap_or(0))
}

/// The tensor's element type, checked against the types a read takes.
fn check_type(t: &TensorProto, takes: &[DataType], what: &str) -> Result<DataType> {
    match t.data_type.and_then(DataType::from_onnx) {
        Some(dt) if takes.contains(&dt) => Ok(dt),
        _ => Err(Error::unsupported(format!(
            "tensor '{}' has element type {}, expected {what}",
            name(t),
            type_name(t)
        ))),
    }
}

/// `raw_data` when it holds the values (present and non-empty, or the typed field empty too).
fn raw(t: &TensorProto, typed_len: usize) -> Result<Option<&[u8]>> {
    if t.data_location == Some(DataLocation::External as i32) || !t.external_data.is_empty() {
        return Err(Error::unsupported(format!(
            "tensor '{}' still has external data",
            name(t)
        )));
    }
    Ok(t.raw_data
        .as_deref()
        .filter(|r| !r.is_empty() || typed_len == 0))
}

/// Decodes `raw` as little-endian `N`-byte elements, refusing a ragged length.
fn chunks<const N: usize, T>(
    t: &TensorProto,
    raw: &[u8],
    f: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    if !raw.len().is_multiple_of(N) {
        return Err(Error::model_invalid(format!(
            "tensor '{}' has {} bytes of raw_data, not a whole number of {} elements",
            name(t),
            raw.len(),
            type_name(t)
        )));
    }
    Ok(raw
        .chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
        .collect())
}

/// Checks the value count against the dims (a tensor with no dims is a scalar: one value).
fn check_count<T>(t: &TensorProto, v: Vec<T>) -> Result<Vec<T>> {
    let need = t
        .dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?));
    if need != Some(v.len() as u64) {
        return Err(Error::model_invalid(format!(
            "tensor '{}' holds {} values but its dims {:?} need {}",
            name(t),
            v.len(),
            t.dims,
            need.map_or_else(|| "an impossible count".to_string(), |n| n.to_string())
        )));
    }
    Ok(v)
}

/// The values of a FLOAT tensor; any other element type is refused.
pub fn f32_values(t: &TensorProto) -> Result<Vec<f32>> {
    check_type(t, &[DataType::Float], "float")?;
    let v = match raw(t, t.float_data.len())? {
        Some(r) => chunks(t, r, f32::from_le_bytes)?,
        None => t.float_data.clone(),
    };
    check_count(t, v)
}

/// The values of a FLOAT, FLOAT16, BFLOAT16 or DOUBLE tensor, as f32 (doubles rounded to nearest).
pub fn float_values(t: &TensorProto) -> Result<Vec<f32>> {
    use DataType::*;
    let dt = check_type(t, &[Float, Float16, Bfloat16, Double], "a float type")?;
    let v = match dt {
        Float16 | Bfloat16 => {
            // ONNX keeps 16-bit floats' bit patterns in int32_data when raw_data is not used.
            let bits = match raw(t, t.int32_data.len())? {
                Some(r) => chunks(t, r, u16::from_le_bytes)?,
                None => t.int32_data.iter().map(|&v| v as u16).collect(),
            };
            if dt == Float16 {
                bits.into_iter()
                    .map(|b| f16::from_bits(b).to_f32())
                    .collect()
            } else {
                bits.into_iter()
                    .map(|b| bf16::from_bits(b).to_f32())
                    .collect()
            }
        }
        Double => match raw(t, t.double_data.len())? {
            Some(r) => chunks(t, r, |b| f64::from_le_bytes(b) as f32)?,
            None => t.double_data.iter().map(|&v| v as f32).collect(),
        },
        _ => return f32_values(t),
    };
    check_count(t, v)
}

/// The values of an INT64 or INT32 tensor, as i64.
pub fn int_values(t: &TensorProto) -> Result<Vec<i64>> {
    let v = match check_type(t, &[DataType::Int64, DataType::Int32], "int64 or int32")? {
        DataType::Int64 => match raw(t, t.int64_data.len())? {
            Some(r) => chunks(t, r, i64::from_le_bytes)?,
            None => t.int64_data.clone(),
        },
        _ => match raw(t, t.int32_data.len())? {
            Some(r) => chunks(t, r, |b| i64::from(i32::from_le_bytes(b)))?,
            None => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
        },
    };
    check_count(t, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn t(dt: DataType, dims: &[i64], raw: Option<Vec<u8>>) -> TensorProto {
        TensorProto {
            name: Some("w".into()),
            data_type: Some(dt.onnx()),
            dims: dims.to_vec(),
            raw_data: raw,
            ..Default::default()
        }
    }

    #[test]
    fn raw_and_typed_storage_read_alike() {
        let raw = t(
            DataType::Float,
            &[2],
            Some([1.5f32.to_le_bytes(), (-2f32).to_le_bytes()].concat()),
        );
        assert_eq!(f32_values(&raw).unwrap(), vec![1.5, -2.0]);
        let typed = TensorProto {
            float_data: vec![1.5, -2.0],
            ..t(DataType::Float, &[2], Some(Vec::new()))
        };
        assert_eq!(f32_values(&typed).unwrap(), vec![1.5, -2.0]);
        let i32s = TensorProto {
            int32_data: vec![-1, 7],
            ..t(DataType::Int32, &[2], None)
        };
        assert_eq!(int_values(&i32s).unwrap(), vec![-1, 7]);
    }

    #[test]
    fn half_floats_widen() {
        // 1.0, 0.5, -2.0 and the smallest subnormal as float16; 1.0 as bfloat16.
        let bits: Vec<u8> = [0x3c00u16, 0x3800, 0xc000, 0x0001]
            .iter()
            .flat_map(|b| b.to_le_bytes())
            .collect();
        let v = float_values(&t(DataType::Float16, &[4], Some(bits))).unwrap();
        assert_eq!(v, vec![1.0, 0.5, -2.0, 2f32.powi(-24)]);
        let b = TensorProto {
            int32_data: vec![0x3f80],
            ..t(DataType::Bfloat16, &[], None)
        };
        assert_eq!(float_values(&b).unwrap(), vec![1.0]);
    }

    #[test]
    fn malformed_tensors_are_errors_naming_the_tensor() {
        let ragged = t(DataType::Int64, &[1], Some(vec![0; 9]));
        let e = int_values(&ragged).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ModelInvalid);
        assert!(e.to_string().contains("'w'"), "{e}");
        let short = t(DataType::Float, &[3], Some(vec![0; 8]));
        assert!(f32_values(&short).unwrap_err().to_string().contains("'w'"));
        let wrong = t(DataType::Float16, &[0], Some(Vec::new()));
        let e = f32_values(&wrong).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().contains("float16"), "{e}");
        let hostile = t(DataType::Int64, &[i64::MAX, 4], Some(Vec::new()));
        assert!(int_values(&hostile).is_err());
    }
}
