//! ONNX models: the protobuf schema (prost), lossless load/save, external data, inspection.

pub mod fs;
pub mod input_shape;
mod inspect;
mod io;
pub mod node;
pub mod proto;

pub use input_shape::{apply_input_shapes, dynamic_input_dims, DynamicDim, InputShape};
pub use inspect::{Dim, ModelSummary, ValueInfo, ValueKind};
pub(crate) use io::PROTOBUF_LIMIT;
pub use io::{ExternalDataOptions, Model, SaveOptions, LAZY_INLINE_LIMIT};

/// The ONNX name of a `TensorProto.DataType` value ("float", "uint8", ...), or "undefined(N)" for unknown ones.
pub fn element_type_name(t: i32) -> String {
    const NAMES: [&str; 27] = [
        "undefined",
        "float",
        "uint8",
        "int8",
        "uint16",
        "int16",
        "int32",
        "int64",
        "string",
        "bool",
        "float16",
        "double",
        "uint32",
        "uint64",
        "complex64",
        "complex128",
        "bfloat16",
        "float8e4m3fn",
        "float8e4m3fnuz",
        "float8e5m2",
        "float8e5m2fnuz",
        "uint4",
        "int4",
        "float4e2m1",
        "float8e8m0",
        "uint2",
        "int2",
    ];
    match usize::try_from(t).ok().and_then(|i| NAMES.get(i)) {
        Some(n) if t != 0 => (*n).to_string(),
        _ => format!("undefined({t})"),
    }
}
