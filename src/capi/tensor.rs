//! Tensors at the C boundary: element types, `ipuflow_tensor_view` (caller memory) and `ipuflow_tensor` (an output
//! allocated by ONNX Runtime and owned by the caller).

#![allow(non_camel_case_types)]
// Each export's safety contract is its C documentation (pointer validity, ownership, thread safety).
#![allow(clippy::missing_safety_doc)]

use std::ffi::c_void;

use super::{box_handle, enum_arg, guard, guard_value, out_ptr, write_out, BoxHandle, ipuflow_status};
use crate::runtime::{ElementType, Tensor};

// Element type numbers: ONNX `TensorProto.DataType` values (the numbers are the ABI).
/// 32-bit IEEE 754 float.
pub const IPUFLOW_ELEMENT_TYPE_FLOAT: i32 = 1;
/// Unsigned 8-bit integer.
pub const IPUFLOW_ELEMENT_TYPE_UINT8: i32 = 2;
/// Signed 8-bit integer.
pub const IPUFLOW_ELEMENT_TYPE_INT8: i32 = 3;
/// Unsigned 16-bit integer.
pub const IPUFLOW_ELEMENT_TYPE_UINT16: i32 = 4;
/// Signed 16-bit integer.
pub const IPUFLOW_ELEMENT_TYPE_INT16: i32 = 5;
/// Signed 32-bit integer.
pub const IPUFLOW_ELEMENT_TYPE_INT32: i32 = 6;
/// Signed 64-bit integer.
pub const IPUFLOW_ELEMENT_TYPE_INT64: i32 = 7;
/// Strings appear in model metadata only; runs refuse them (IPUFLOW_STATUS_UNSUPPORTED).
pub const IPUFLOW_ELEMENT_TYPE_STRING: i32 = 8;
/// One byte per element, 0 or 1.
pub const IPUFLOW_ELEMENT_TYPE_BOOL: i32 = 9;
/// IEEE 754 half precision, 2 bytes per element.
pub const IPUFLOW_ELEMENT_TYPE_FLOAT16: i32 = 10;
/// 64-bit IEEE 754 float.
pub const IPUFLOW_ELEMENT_TYPE_DOUBLE: i32 = 11;
/// Unsigned 32-bit integer.
pub const IPUFLOW_ELEMENT_TYPE_UINT32: i32 = 12;
/// Unsigned 64-bit integer.
pub const IPUFLOW_ELEMENT_TYPE_UINT64: i32 = 13;
/// bfloat16 (the upper half of a float32), 2 bytes per element.
pub const IPUFLOW_ELEMENT_TYPE_BFLOAT16: i32 = 16;

/// A tensor in caller memory, described for a run: used as an input, or as a preallocated output that ONNX Runtime
/// writes into. Nothing is copied and ipuflow keeps no pointer after the call returns.
///
/// - `element_type`: an `IPUFLOW_ELEMENT_TYPE_*` value (not STRING).
/// - `shape`, `rank`: `rank` dimensions, each >= 0 (a scalar has rank 0 and `shape` may be NULL).
/// - `data`: the elements, row-major, aligned to the element size; NULL only when `byte_size` is 0. Input data is
///   only read.
/// - `byte_size`: exactly product(shape) * element size, else IPUFLOW_STATUS_TENSOR_MISMATCH.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ipuflow_tensor_view {
    pub element_type: i32,
    pub shape: *const i64,
    pub rank: usize,
    pub data: *mut c_void,
    pub byte_size: usize,
}

/// A tensor allocated by ONNX Runtime: a run's output, owned by the caller.
///
/// Obtained from `ipuflow_session_run` (its `out_tensors`), freed with `ipuflow_tensor_free`. Its data may be read
/// and written by the caller until it is freed. It does not depend on the session: it may outlive it. Read-only
/// calls are thread-safe.
pub struct ipuflow_tensor {
    _private: [u8; 0],
}

box_handle!(ipuflow_tensor => Tensor);

/// Describes a tensor as a view: its element type, shape (owned by the tensor) and data.
///
/// - `out`: receives the view on success; its pointers stay valid until `ipuflow_tensor_free(tensor)`. The view can
///   be passed as an input of another run.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_tensor_get_view(tensor: *const ipuflow_tensor, out: *mut ipuflow_tensor_view) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let t = ipuflow_tensor::try_ref(tensor, "tensor")?;
        let view = ipuflow_tensor_view {
            element_type: t.element_type().onnx(),
            shape: if t.shape().is_empty() { std::ptr::null() } else { t.shape().as_ptr() },
            rank: t.shape().len(),
            data: if t.byte_size() == 0 { std::ptr::null_mut() } else { t.data_ptr().cast() },
            byte_size: t.byte_size(),
        };
        write_out(out, view);
        Ok(())
    })
}

/// Gives a tensor's data pointer and size in bytes (either out pointer may be NULL if not wanted; the pointer is
/// NULL for an empty tensor). The data stays valid until `ipuflow_tensor_free(tensor)`.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`tensor`). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_tensor_data(tensor: *const ipuflow_tensor, data: *mut *mut c_void, byte_size: *mut usize) -> ipuflow_status {
    guard(|| {
        let t = ipuflow_tensor::try_ref(tensor, "tensor")?;
        if !data.is_null() {
            write_out(data, if t.byte_size() == 0 { std::ptr::null_mut() } else { t.data_ptr().cast() });
        }
        if !byte_size.is_null() {
            write_out(byte_size, t.byte_size());
        }
        Ok(())
    })
}

/// Frees a tensor returned by a run. `tensor` may be NULL (no-op). Pointers obtained from it become invalid.
/// Must not race with other calls on the same tensor.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_tensor_free(tensor: *mut ipuflow_tensor) {
    guard_value((), || ipuflow_tensor::free(tensor))
}

/// Gives the size in bytes of one element of `element_type` (an `IPUFLOW_ELEMENT_TYPE_*`).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (unknown type),
/// IPUFLOW_STATUS_UNSUPPORTED (STRING has no fixed size). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_element_type_size(element_type: i32, out: *mut usize) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let t: ElementType = enum_arg(element_type, "element_type", "an IPUFLOW_ELEMENT_TYPE_* value")?;
        let size = t.size().ok_or_else(|| crate::Error::unsupported("string elements have no fixed size"))?;
        write_out(out, size);
        Ok(())
    })
}
