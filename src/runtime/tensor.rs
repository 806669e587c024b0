//! Tensors crossing into and out of ONNX Runtime: element types, borrowed caller buffers ([`TensorRef`],
//! [`TensorMut`]) and library-allocated outputs ([`Tensor`]).

use std::fmt;
use std::ptr::NonNull;

use ort_sys::OrtValue;

use super::loader::Runtime;
use crate::error::{Error, ErrorKind, Result};

/// A tensor element type, numbered as ONNX `TensorProto.DataType` (the numbers are the C ABI's
/// `IPUFLOW_ELEMENT_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ElementType {
    Float32 = 1,
    Uint8 = 2,
    Int8 = 3,
    Uint16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    /// Strings are described in model metadata but not accepted as run inputs or outputs.
    String = 8,
    Bool = 9,
    Float16 = 10,
    Float64 = 11,
    Uint32 = 12,
    Uint64 = 13,
    Bfloat16 = 16,
}

impl ElementType {
    /// Every type, for tests and tables.
    pub const ALL: [ElementType; 14] = {
        use ElementType::*;
        [Float32, Uint8, Int8, Uint16, Int16, Int32, Int64, String, Bool, Float16, Float64, Uint32, Uint64, Bfloat16]
    };

    /// The type for an ONNX `TensorProto.DataType` number, if ipuflow knows it.
    pub fn from_onnx(code: i32) -> Option<ElementType> {
        ElementType::ALL.iter().copied().find(|t| *t as i32 == code)
    }

    /// The ONNX `TensorProto.DataType` number.
    pub fn onnx(self) -> i32 {
        self as i32
    }

    /// Bytes per element; `None` for strings.
    pub fn size(self) -> Option<usize> {
        use ElementType::*;
        Some(match self {
            Uint8 | Int8 | Bool => 1,
            Uint16 | Int16 | Float16 | Bfloat16 => 2,
            Float32 | Int32 | Uint32 => 4,
            Float64 | Int64 | Uint64 => 8,
            String => return None,
        })
    }

    /// The ONNX name of the type ("float", "float16", "int64", ...).
    pub fn name(self) -> &'static str {
        use ElementType::*;
        match self {
            Float32 => "float",
            Uint8 => "uint8",
            Int8 => "int8",
            Uint16 => "uint16",
            Int16 => "int16",
            Int32 => "int32",
            Int64 => "int64",
            String => "string",
            Bool => "bool",
            Float16 => "float16",
            Float64 => "double",
            Uint32 => "uint32",
            Uint64 => "uint64",
            Bfloat16 => "bfloat16",
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<i32> for ElementType {
    type Error = ();
    fn try_from(v: i32) -> std::result::Result<Self, ()> {
        ElementType::from_onnx(v).ok_or(())
    }
}

/// The name of an ONNX element type number, also for types ipuflow does not handle.
pub(crate) fn onnx_type_name(code: i32) -> String {
    match ElementType::from_onnx(code) {
        Some(t) => t.name().to_string(),
        None => match code {
            0 => "undefined".into(),
            14 => "complex64".into(),
            15 => "complex128".into(),
            17 => "float8e4m3fn".into(),
            18 => "float8e4m3fnuz".into(),
            19 => "float8e5m2".into(),
            20 => "float8e5m2fnuz".into(),
            21 => "uint4".into(),
            22 => "int4".into(),
            23 => "float4e2m1".into(),
            _ => format!("element type {code}"),
        },
    }
}

/// A Rust type that is the in-memory representation of an [`ElementType`].
///
/// # Safety
/// `Self` must have exactly the size and layout of one element of `TYPE`, and every bit pattern ORT writes for that
/// type must be a valid `Self`.
pub unsafe trait Element: Copy + 'static {
    const TYPE: ElementType;
}

macro_rules! element {
    ($($t:ty => $e:ident),*) => { $(unsafe impl Element for $t { const TYPE: ElementType = ElementType::$e; })* };
}
element!(f32 => Float32, f64 => Float64, i8 => Int8, u8 => Uint8, i16 => Int16, u16 => Uint16, i32 => Int32,
    u32 => Uint32, i64 => Int64, u64 => Uint64, bool => Bool);

/// Formats a shape as `[1,3,224,224]`.
pub(crate) fn shape_str(shape: &[i64]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// A read-only tensor in caller memory, handed to ONNX Runtime without copying.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    pub(crate) element_type: ElementType,
    pub(crate) shape: &'a [i64],
    pub(crate) data: &'a [u8],
}

impl<'a> TensorRef<'a> {
    /// A tensor over raw bytes (for float16/bfloat16, or data from elsewhere). Checked against the model at run.
    pub fn from_bytes(element_type: ElementType, shape: &'a [i64], data: &'a [u8]) -> Self {
        TensorRef { element_type, shape, data }
    }

    /// A tensor over a typed slice.
    pub fn from_slice<T: Element>(shape: &'a [i64], data: &'a [T]) -> Self {
        // SAFETY: `Element` types are plain data; the byte view covers exactly the slice.
        let bytes = unsafe { std::slice::from_raw_parts(data.as_ptr() as *const u8, std::mem::size_of_val(data)) };
        TensorRef { element_type: T::TYPE, shape, data: bytes }
    }

    pub fn element_type(&self) -> ElementType {
        self.element_type
    }
    pub fn shape(&self) -> &'a [i64] {
        self.shape
    }
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// A writable tensor in caller memory that ONNX Runtime writes an output into, without copying.
#[derive(Debug)]
pub struct TensorMut<'a> {
    pub(crate) element_type: ElementType,
    pub(crate) shape: &'a [i64],
    pub(crate) data: &'a mut [u8],
}

impl<'a> TensorMut<'a> {
    /// An output buffer over raw bytes.
    pub fn from_bytes(element_type: ElementType, shape: &'a [i64], data: &'a mut [u8]) -> Self {
        TensorMut { element_type, shape, data }
    }

    /// An output buffer over a typed slice.
    pub fn from_slice<T: Element>(shape: &'a [i64], data: &'a mut [T]) -> Self {
        let len = std::mem::size_of_val(data);
        // SAFETY: as `TensorRef::from_slice`; every byte pattern written back is valid for `T` (see `Element`).
        let bytes = unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr() as *mut u8, len) };
        TensorMut { element_type: T::TYPE, shape, data: bytes }
    }

    pub fn element_type(&self) -> ElementType {
        self.element_type
    }
    pub fn shape(&self) -> &[i64] {
        self.shape
    }
}

/// A tensor allocated by ONNX Runtime (a run's output), owned; its data is freed when it is dropped.
pub struct Tensor {
    rt: &'static Runtime,
    value: NonNull<OrtValue>,
    element_type: ElementType,
    shape: Vec<i64>,
    data: *mut u8,
    len: usize,
}

// SAFETY: the tensor exclusively owns its OrtValue; reading its data from several threads is fine, and ORT values
// can be released from any thread.
unsafe impl Send for Tensor {}
unsafe impl Sync for Tensor {}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("element_type", &self.element_type)
            .field("shape", &self.shape)
            .field("bytes", &self.len)
            .finish()
    }
}

impl Tensor {
    /// Takes ownership of an ORT-allocated tensor value, reading its type, shape and data pointer.
    pub(crate) fn from_value(rt: &'static Runtime, value: NonNull<OrtValue>, name: &str) -> Result<Tensor> {
        struct Release(&'static Runtime, *mut OrtValue);
        impl Drop for Release {
            fn drop(&mut self) {
                if !self.1.is_null() {
                    unsafe { ort_fn!(self.0, ReleaseValue)(self.1) };
                }
            }
        }
        let mut guard = Release(rt, value.as_ptr());
        let mut info = std::ptr::null_mut();
        ort_call!(rt, GetTensorTypeAndShape(value.as_ptr(), &mut info))?;
        let (code, shape) = {
            struct InfoGuard(&'static Runtime, *mut ort_sys::OrtTensorTypeAndShapeInfo);
            impl Drop for InfoGuard {
                fn drop(&mut self) {
                    unsafe { ort_fn!(self.0, ReleaseTensorTypeAndShapeInfo)(self.1) };
                }
            }
            let _ig = InfoGuard(rt, info);
            super::session::read_tensor_info(rt, info)?
        };
        let element_type = ElementType::from_onnx(code).filter(|t| *t != ElementType::String).ok_or_else(|| {
            Error::unsupported(format!("output '{name}' has element type {}, which ipuflow does not support", onnx_type_name(code)))
        })?;
        let elem = element_type.size().unwrap_or(1);
        let count = shape.iter().try_fold(1usize, |acc, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)));
        let len = count.and_then(|c| c.checked_mul(elem)).ok_or_else(|| {
            Error::internal(format!("output '{name}' has an invalid shape {}", shape_str(&shape)))
        })?;
        let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
        ort_call!(rt, GetTensorMutableData(value.as_ptr(), &mut data))?;
        if data.is_null() && len != 0 {
            return Err(Error::new(ErrorKind::Runtime, format!("output '{name}': ONNX Runtime returned no data")));
        }
        guard.1 = std::ptr::null_mut();
        Ok(Tensor { rt, value, element_type, shape, data: data as *mut u8, len })
    }

    pub fn element_type(&self) -> ElementType {
        self.element_type
    }

    pub fn shape(&self) -> &[i64] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len / self.element_type.size().unwrap_or(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of the data in bytes.
    pub fn byte_size(&self) -> usize {
        self.len
    }

    /// The data as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: ORT owns `len` bytes at `data` for as long as the value lives.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// The data as mutable bytes.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: as above, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }

    /// The data as a typed slice; `TensorMismatch` if `T` is not the tensor's element type.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        if T::TYPE != self.element_type {
            return Err(Error::new(
                ErrorKind::TensorMismatch,
                format!("tensor has element type {}, not {}", self.element_type, T::TYPE),
            ));
        }
        if self.len == 0 {
            return Ok(&[]);
        }
        if !(self.data as usize).is_multiple_of(std::mem::align_of::<T>()) {
            return Err(Error::internal("tensor data is not aligned for its element type"));
        }
        // SAFETY: type and alignment checked; `len` is a multiple of the element size.
        Ok(unsafe { std::slice::from_raw_parts(self.data as *const T, self.len / std::mem::size_of::<T>()) })
    }

    /// The data pointer (for the C ABI, which hands the caller-owned tensor's memory out as `void*`).
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.data
    }

    /// A borrowed view, e.g. to feed this output into another run.
    pub fn view(&self) -> TensorRef<'_> {
        TensorRef { element_type: self.element_type, shape: &self.shape, data: self.as_bytes() }
    }
}

impl Drop for Tensor {
    fn drop(&mut self) {
        unsafe { ort_fn!(self.rt, ReleaseValue)(self.value.as_ptr()) };
    }
}
