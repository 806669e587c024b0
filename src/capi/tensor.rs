//! Tensors at the C boundary: element types, `ipuflow_tensor_view` (caller memory) and `ipuflow_tensor` (an output
//! allocated by ONNX Runtime and owned by the caller).

use std::ffi::{c_char, c_void};

use super::{
    box_handle, enum_arg, guard, guard_value, ipuflow_status, out_ptr, write_opt, write_out,
    BoxHandle,
};
use crate::error::{Error, ErrorKind};
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
/// UTF-8 strings. In an `ipuflow_tensor_view`, `data` is an array of `const char*` (one NUL-terminated string per
/// element, row-major) and `byte_size` is n * sizeof(char*). Inputs are copied into ONNX Runtime during the run;
/// outputs are always allocated by ipuflow (never a preallocated buffer). See `ipuflow_tensor_get_view` and
/// `ipuflow_tensor_string_lengths`.
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
/// float8 E4M3FN (4 exponent, 3 mantissa bits, no infinities), 1 byte per element, passed as raw bits.
pub const IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FN: i32 = 17;
/// float8 E4M3FNUZ (no infinities, no negative zero; 0x80 is NaN), 1 byte per element, passed as raw bits.
pub const IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FNUZ: i32 = 18;
/// float8 E5M2 (5 exponent, 2 mantissa bits, with infinities), 1 byte per element, passed as raw bits.
pub const IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2: i32 = 19;
/// float8 E5M2FNUZ (no infinities, no negative zero; 0x80 is NaN), 1 byte per element, passed as raw bits.
pub const IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2FNUZ: i32 = 20;
/// Unsigned 4-bit integers, packed two per byte as ONNX packs them: element 2k in the low nibble of byte k,
/// element 2k+1 in the high nibble. A tensor of n elements takes (n + 1) / 2 bytes.
pub const IPUFLOW_ELEMENT_TYPE_UINT4: i32 = 21;
/// Signed 4-bit integers (two's complement), packed two per byte as IPUFLOW_ELEMENT_TYPE_UINT4: (n + 1) / 2 bytes.
pub const IPUFLOW_ELEMENT_TYPE_INT4: i32 = 22;
/// float8 E8M0 (8 exponent bits, no sign or mantissa: 2^(bits - 127); 0xFF is NaN), 1 byte per element, raw bits.
/// The number is ONNX's (24); ONNX Runtime's C API numbers it 26, and ipuflow converts.
pub const IPUFLOW_ELEMENT_TYPE_FLOAT8E8M0: i32 = 24;
/// Unsigned 2-bit integers, packed four per byte as ONNX packs them: element 4k + j in bits 2j..2j+1 of byte k.
/// A tensor of n elements takes (n + 3) / 4 bytes. (ONNX number 25; ONNX Runtime's C API numbers it 24.)
pub const IPUFLOW_ELEMENT_TYPE_UINT2: i32 = 25;
/// Signed 2-bit integers (two's complement), packed four per byte as IPUFLOW_ELEMENT_TYPE_UINT2: (n + 3) / 4
/// bytes. (ONNX number 26; ONNX Runtime's C API numbers it 25.)
pub const IPUFLOW_ELEMENT_TYPE_INT2: i32 = 26;

/// A tensor in caller memory, described for a run: used as an input, or as a preallocated output that ONNX Runtime
/// writes into. Nothing is copied and ipuflow keeps no pointer after the call returns.
///
/// - `element_type`: an `IPUFLOW_ELEMENT_TYPE_*` value.
/// - `shape`, `rank`: `rank` dimensions, each >= 0 (a scalar has rank 0 and `shape` may be NULL).
/// - `data`: the elements, row-major, aligned to the element size; NULL only when `byte_size` is 0. Input data is
///   only read. For STRING: an array of product(shape) `const char*`, each a non-NULL NUL-terminated UTF-8 string
///   (copied during the run; a string cannot carry an embedded NUL this way), aligned to sizeof(char*).
/// - `byte_size`: exactly product(shape) * element size (int4/uint4: (product + 1) / 2, int2/uint2:
///   (product + 3) / 4; STRING: product * sizeof(char*)), else IPUFLOW_STATUS_TENSOR_MISMATCH.
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
/// and written by the caller until it is freed (a STRING tensor's strings are read-only). It does not depend on
/// the session: it may outlive it. Read-only calls are thread-safe.
pub struct ipuflow_tensor {
    _private: [u8; 0],
}

/// The Rust side of `ipuflow_tensor`: the tensor plus, for a string tensor, the C view of its strings.
pub(crate) struct TensorHandle {
    pub(crate) tensor: Tensor,
    /// Per string element, a pointer to its bytes followed by a NUL (owned by `tensor`, whose heap storage does not
    /// move); empty for other types.
    string_ptrs: Vec<*const c_char>,
    /// Per string element, its length in bytes (without the NUL).
    string_lens: Vec<usize>,
}

// SAFETY: the pointers point into the tensor's own immutable string storage.
unsafe impl Send for TensorHandle {}
unsafe impl Sync for TensorHandle {}

impl TensorHandle {
    pub(crate) fn new(tensor: Tensor) -> TensorHandle {
        let (mut string_ptrs, mut string_lens) = (Vec::new(), Vec::new());
        if let Some(s) = tensor.strings() {
            string_ptrs.reserve_exact(s.len());
            string_lens.reserve_exact(s.len());
            for i in 0..s.len() {
                let with_nul = s.get_with_nul(i).unwrap_or(b"\0");
                string_ptrs.push(with_nul.as_ptr().cast::<c_char>());
                string_lens.push(with_nul.len() - 1);
            }
        }
        TensorHandle {
            tensor,
            string_ptrs,
            string_lens,
        }
    }

    /// The data pointer and byte size of the C view (STRING: the pointer array).
    fn data(&self) -> (*mut c_void, usize) {
        if self.tensor.element_type() == ElementType::String {
            if self.string_ptrs.is_empty() {
                return (std::ptr::null_mut(), 0);
            }
            (
                self.string_ptrs.as_ptr() as *mut c_void,
                std::mem::size_of_val(self.string_ptrs.as_slice()),
            )
        } else if self.tensor.byte_size() == 0 {
            (std::ptr::null_mut(), 0)
        } else {
            (self.tensor.data_ptr().cast(), self.tensor.byte_size())
        }
    }
}

box_handle!(ipuflow_tensor => TensorHandle);

/// Describes a tensor as a view: its element type, shape (owned by the tensor) and data.
///
/// - `out`: receives the view on success; its pointers stay valid until `ipuflow_tensor_free(tensor)`. The view can
///   be passed as an input of another run.
///
/// For a STRING tensor, `data` is a `const char* const*` array of one NUL-terminated UTF-8 string per element
/// (row-major) and `byte_size` is n * sizeof(char*); the array and the strings are owned by the tensor and must
/// not be written. A string that contains an embedded NUL reads shorter through its `char*` alone: its full length
/// is given by `ipuflow_tensor_string_lengths` (the bytes up to that length are all there, followed by a NUL).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_tensor_get_view(
    tensor: *const ipuflow_tensor,
    out: *mut ipuflow_tensor_view,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let h = ipuflow_tensor::try_ref(tensor, "tensor")?;
        let t = &h.tensor;
        let (data, byte_size) = h.data();
        let view = ipuflow_tensor_view {
            element_type: t.element_type().onnx(),
            shape: if t.shape().is_empty() {
                std::ptr::null()
            } else {
                t.shape().as_ptr()
            },
            rank: t.shape().len(),
            data,
            byte_size,
        };
        write_out(out, view);
        Ok(())
    })
}

/// Gives a tensor's data pointer and size in bytes (either out pointer may be NULL if not wanted; the pointer is
/// NULL for an empty tensor), as in `ipuflow_tensor_get_view` (STRING: the `const char*` array and
/// n * sizeof(char*)). The data stays valid until `ipuflow_tensor_free(tensor)`.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`tensor`). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_tensor_get_data(
    tensor: *const ipuflow_tensor,
    data: *mut *mut c_void,
    byte_size: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let h = ipuflow_tensor::try_ref(tensor, "tensor")?;
        let (p, n) = h.data();
        write_opt(data, p);
        write_opt(byte_size, n);
        Ok(())
    })
}

/// Alias of `ipuflow_tensor_get_data` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_tensor_get_data`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_tensor_data(
    tensor: *const ipuflow_tensor,
    data: *mut *mut c_void,
    byte_size: *mut usize,
) -> ipuflow_status {
    ipuflow_tensor_get_data(tensor, data, byte_size)
}

/// Gives the byte length (without the terminating NUL) of each string of a STRING tensor, in element order: the
/// exact lengths, also for strings with embedded NULs, which their `const char*` in the view cuts short.
///
/// - `out_lengths`: receives an array of `*out_count` lengths owned by the tensor (valid until
///   `ipuflow_tensor_free(tensor)`); NULL when the tensor has no elements.
/// - `out_count`: receives the number of elements.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_TENSOR_MISMATCH (not a STRING tensor). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_tensor_get_string_lengths(
    tensor: *const ipuflow_tensor,
    out_lengths: *mut *const usize,
    out_count: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let out_lengths = out_ptr(out_lengths, "out_lengths")?;
        let out_count = out_ptr(out_count, "out_count")?;
        let h = ipuflow_tensor::try_ref(tensor, "tensor")?;
        if h.tensor.element_type() != ElementType::String {
            return Err(Error::new(
                ErrorKind::TensorMismatch,
                format!(
                    "the tensor has element type {}, not string",
                    h.tensor.element_type()
                ),
            ));
        }
        write_out(
            out_lengths,
            if h.string_lens.is_empty() {
                std::ptr::null()
            } else {
                h.string_lens.as_ptr()
            },
        );
        write_out(out_count, h.string_lens.len());
        Ok(())
    })
}

/// Alias of `ipuflow_tensor_get_string_lengths` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_tensor_get_string_lengths`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_tensor_string_lengths(
    tensor: *const ipuflow_tensor,
    out_lengths: *mut *const usize,
    out_count: *mut usize,
) -> ipuflow_status {
    ipuflow_tensor_get_string_lengths(tensor, out_lengths, out_count)
}

/// Frees a tensor returned by a run. `tensor` may be NULL (no-op). Pointers obtained from it become invalid.
/// Must not race with other calls on the same tensor.
///
/// Never fails (returns nothing; a panic inside is contained). Not thread-safe: no other call may use the object at
/// the same time.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_tensor_free(tensor: *mut ipuflow_tensor) {
    guard_value((), || ipuflow_tensor::free(tensor))
}

/// Gives the size in bytes of one element of `element_type` (an `IPUFLOW_ELEMENT_TYPE_*`) in an
/// `ipuflow_tensor_view`: for STRING, sizeof(char*) (a view holds one `const char*` per element), so that
/// `byte_size` = product(shape) * size holds for every type but the packed ones.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (unknown type),
/// IPUFLOW_STATUS_UNSUPPORTED (INT4/UINT4/INT2/UINT2: several elements share a byte; n elements take (n + 1) / 2
/// resp. (n + 3) / 4 bytes). Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_element_type_get_size(
    element_type: i32,
    out: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let t: ElementType = enum_arg(
            element_type,
            "element_type",
            "an IPUFLOW_ELEMENT_TYPE_* value",
        )?;
        let size = match t {
            ElementType::String => std::mem::size_of::<*const c_char>(),
            t => t.size().ok_or_else(|| {
                let per_byte = 8 / t.bits().unwrap_or(8);
                Error::unsupported(format!(
                    "{t} packs {per_byte} elements per byte: n elements take (n + {}) / {per_byte} bytes",
                    per_byte - 1
                ))
            })?,
        };
        write_out(out, size);
        Ok(())
    })
}

/// Alias of `ipuflow_element_type_get_size` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_element_type_get_size`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_element_type_size(
    element_type: i32,
    out: *mut usize,
) -> ipuflow_status {
    ipuflow_element_type_get_size(element_type, out)
}
