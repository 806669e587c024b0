//! ONNX element types (`TensorProto.DataType`): the one table of numbers, names, sizes and kinds that the graph
//! code, the quantizer, the pre-flight and the runtime share.

/// An ONNX element type, numbered as `TensorProto.DataType`: the schema's own enum, with the table of names, sizes
/// and kinds attached here (so a regenerated schema keeps them). UNDEFINED (0) is not an element type:
/// [`DataType::from_onnx`] answers `None` for it, as for numbers newer than this table.
pub use super::proto::tensor_proto::DataType;

impl DataType {
    /// The type of an ONNX number; `None` for 0 (UNDEFINED) and unknown numbers.
    pub fn from_onnx(code: i32) -> Option<DataType> {
        DataType::try_from(code)
            .ok()
            .filter(|t| *t != DataType::Undefined)
    }

    /// The ONNX `TensorProto.DataType` number.
    pub const fn onnx(self) -> i32 {
        self as i32
    }

    /// Bits per element; `None` for STRING. Sub-byte types are packed densely in `raw_data`.
    pub fn bits(self) -> Option<u64> {
        use DataType::*;
        Some(match self {
            Undefined | String => return None,
            Uint2 | Int2 => 2,
            Uint4 | Int4 | Float4e2m1 => 4,
            Float6e2m3 | Float6e3m2 => 6,
            Bool | Uint8 | Int8 | Float8e4m3fn | Float8e4m3fnuz | Float8e5m2 | Float8e5m2fnuz
            | Float8e8m0 => 8,
            Uint16 | Int16 | Float16 | Bfloat16 => 16,
            Float | Int32 | Uint32 => 32,
            Int64 | Double | Uint64 | Complex64 => 64,
            Complex128 => 128,
        })
    }

    /// Bytes per element; `None` for STRING and the packed sub-byte types.
    pub fn size(self) -> Option<usize> {
        self.bits()
            .filter(|b| b % 8 == 0)
            .and_then(|b| usize::try_from(b / 8).ok())
    }

    /// Bytes `n` elements take in `raw_data` (rounded up for sub-byte types); `None` for strings or overflow.
    pub fn raw_size(self, n: u64) -> Option<u64> {
        Some(n.checked_mul(self.bits()?)?.div_ceil(8))
    }

    /// The ONNX name ("float", "uint8", "bfloat16", ...).
    pub fn name(self) -> &'static str {
        use DataType::*;
        match self {
            Undefined => "undefined",
            Float => "float",
            Uint8 => "uint8",
            Int8 => "int8",
            Uint16 => "uint16",
            Int16 => "int16",
            Int32 => "int32",
            Int64 => "int64",
            String => "string",
            Bool => "bool",
            Float16 => "float16",
            Double => "double",
            Uint32 => "uint32",
            Uint64 => "uint64",
            Complex64 => "complex64",
            Complex128 => "complex128",
            Bfloat16 => "bfloat16",
            Float8e4m3fn => "float8e4m3fn",
            Float8e4m3fnuz => "float8e4m3fnuz",
            Float8e5m2 => "float8e5m2",
            Float8e5m2fnuz => "float8e5m2fnuz",
            Uint4 => "uint4",
            Int4 => "int4",
            Float4e2m1 => "float4e2m1",
            Float8e8m0 => "float8e8m0",
            Uint2 => "uint2",
            Int2 => "int2",
            Float6e2m3 => "float6e2m3",
            Float6e3m2 => "float6e3m2",
        }
    }

    /// The IEEE-style float types arithmetic is done in: float, float16, double, bfloat16 (not the float8/6/4
    /// storage formats, which only Q/DQ-style ops read).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DataType::Float | DataType::Float16 | DataType::Double | DataType::Bfloat16
        )
    }

    /// Integer types of any width (bool is not one).
    pub fn is_int(self) -> bool {
        use DataType::*;
        matches!(
            self,
            Uint8
                | Int8
                | Uint16
                | Int16
                | Int32
                | Int64
                | Uint32
                | Uint64
                | Uint4
                | Int4
                | Uint2
                | Int2
        )
    }

    /// Signed integer types.
    pub fn is_signed_int(self) -> bool {
        use DataType::*;
        matches!(self, Int8 | Int16 | Int32 | Int64 | Int4 | Int2)
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The name of an ONNX element type number, "undefined(N)" for 0 and unknown numbers (for messages about a
/// model's own, possibly hostile, type fields).
pub fn element_type_name(code: i32) -> String {
    match DataType::from_onnx(code) {
        Some(t) => t.name().to_string(),
        None => format!("undefined({code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_index_the_table() {
        for code in 1..=28 {
            let t = DataType::from_onnx(code).expect("ONNX numbers 1..=28 are element types");
            assert_eq!(t.onnx(), code);
            assert!(!t.name().is_empty() && t.name() != "undefined");
        }
        assert_eq!(DataType::from_onnx(0), None);
        assert_eq!(DataType::from_onnx(29), None);
        assert_eq!(DataType::from_onnx(i32::MIN), None);
        assert_eq!(element_type_name(0), "undefined(0)");
        assert_eq!(element_type_name(16), "bfloat16");
    }

    #[test]
    fn sizes() {
        assert_eq!(DataType::Float.size(), Some(4));
        assert_eq!(DataType::Int4.size(), None);
        assert_eq!(DataType::Int4.raw_size(3), Some(2));
        assert_eq!(DataType::Uint2.raw_size(5), Some(2));
        assert_eq!(DataType::String.raw_size(1), None);
        assert_eq!(DataType::Double.raw_size(u64::MAX), None);
    }

    #[test]
    fn kinds() {
        assert!(DataType::Bfloat16.is_float() && !DataType::Float8e4m3fn.is_float());
        assert!(DataType::Uint4.is_int() && !DataType::Uint4.is_signed_int());
        assert!(DataType::Int16.is_signed_int() && !DataType::Bool.is_int());
    }
}
