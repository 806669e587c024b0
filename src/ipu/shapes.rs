//! The pre-flight checker's names for the shared graph toolkit: shape inference and integer constant folding live
//! in [`crate::onnx::shape_infer`] and [`crate::onnx::fold`] (the quantizer and the CLI use them too).

pub(crate) use crate::onnx::node::{attr, domain, is_default_domain, op};
pub(crate) use crate::onnx::shape_infer::{
    constants, fmt_shape, infer, tensor_f32, Consts, TInfo, D,
};
use crate::onnx::DataType;

/// The element types the checker's rules name.
pub(crate) const UINT16: i32 = DataType::Uint16.onnx();
pub(crate) const INT16: i32 = DataType::Int16.onnx();
pub(crate) const INT32: i32 = DataType::Int32.onnx();
pub(crate) const INT64: i32 = DataType::Int64.onnx();
pub(crate) const BOOL: i32 = DataType::Bool.onnx();

pub(crate) fn is_float_type(t: i32) -> bool {
    DataType::from_onnx(t).is_some_and(DataType::is_float)
}
