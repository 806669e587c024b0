//! Tensors crossing into and out of ONNX Runtime: element types, borrowed caller buffers ([`TensorRef`],
//! [`TensorMut`]) and library-allocated outputs ([`Tensor`]).

use std::fmt;
use std::ptr::NonNull;

use ort_sys::OrtValue;

use super::loader::Runtime;
use crate::error::{Error, ErrorKind, Result};
use crate::onnx::DataType;

/// A tensor element type, numbered as ONNX `TensorProto.DataType` (the numbers are the C ABI's
/// `IPUFLOW_ELEMENT_TYPE_*`; ONNX Runtime's own enum differs for 24..26, see `session::ort_elem`).
///
/// Storage: one element per 1/2/4/8 bytes, little-endian; the float8 types are raw bytes (their bit patterns);
/// int4/uint4 pack two elements per byte and int2/uint2 four, as ONNX packs them (the first element in the least
/// significant bits; a tensor of n elements takes (n+1)/2 resp. (n+3)/4 bytes, see [`ElementType::byte_size`]);
/// strings are UTF-8 text ([`TensorRef::from_strs`], [`Tensor::string`]).
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
    /// UTF-8 strings: inputs from `&str` slices, outputs allocated by ONNX Runtime (never caller buffers).
    String = 8,
    Bool = 9,
    Float16 = 10,
    Float64 = 11,
    Uint32 = 12,
    Uint64 = 13,
    Bfloat16 = 16,
    /// float8 with 4 exponent and 3 mantissa bits, no infinities (one NaN pattern per sign).
    Float8E4M3FN = 17,
    /// float8 E4M3, no infinities, no negative zero (0x80 is the only NaN).
    Float8E4M3FNUZ = 18,
    /// float8 with 5 exponent and 2 mantissa bits (IEEE-like, with infinities).
    Float8E5M2 = 19,
    /// float8 E5M2, no infinities, no negative zero (0x80 is the only NaN).
    Float8E5M2FNUZ = 20,
    /// Unsigned 4-bit integers, two per byte.
    Uint4 = 21,
    /// Signed 4-bit integers (two's complement), two per byte.
    Int4 = 22,
    /// float8 with 8 exponent bits and no mantissa: powers of two 2^-127..2^127 (0xFF is NaN).
    Float8E8M0 = 24,
    /// Unsigned 2-bit integers, four per byte.
    Uint2 = 25,
    /// Signed 2-bit integers (two's complement), four per byte.
    Int2 = 26,
}

impl ElementType {
    /// Every type, for tests and tables.
    pub const ALL: [ElementType; 23] = {
        use ElementType::*;
        [
            Float32,
            Uint8,
            Int8,
            Uint16,
            Int16,
            Int32,
            Int64,
            String,
            Bool,
            Float16,
            Float64,
            Uint32,
            Uint64,
            Bfloat16,
            Float8E4M3FN,
            Float8E4M3FNUZ,
            Float8E5M2,
            Float8E5M2FNUZ,
            Uint4,
            Int4,
            Float8E8M0,
            Uint2,
            Int2,
        ]
    };

    /// The type for an ONNX `TensorProto.DataType` number, if ipuflow knows it.
    pub fn from_onnx(code: i32) -> Option<ElementType> {
        ElementType::ALL.iter().copied().find(|t| *t as i32 == code)
    }

    /// The ONNX `TensorProto.DataType` number.
    pub fn onnx(self) -> i32 {
        self as i32
    }

    /// The ONNX element type (every runtime type is one; the names, sizes and kinds live there).
    pub fn data_type(self) -> DataType {
        DataType::from_onnx(self as i32).expect("ElementType numbers are ONNX numbers")
    }

    /// Bits per element; `None` for strings.
    pub fn bits(self) -> Option<usize> {
        self.data_type().bits().map(|b| b as usize)
    }

    /// Bytes per element; `None` for strings and for the packed sub-byte types (int4/uint4/int2/uint2: use
    /// [`ElementType::byte_size`]).
    pub fn size(self) -> Option<usize> {
        self.bits().filter(|b| b % 8 == 0).map(|b| b / 8)
    }

    /// Bytes taken by `count` elements: `count * size`, or for packed types `ceil(count * bits / 8)` (int4/uint4:
    /// `(count + 1) / 2`, int2/uint2: `(count + 3) / 4`). `None` for strings and on overflow.
    pub fn byte_size(self, count: usize) -> Option<usize> {
        let bits = self.bits()?;
        Some(count.checked_mul(bits)?.div_ceil(8))
    }

    /// The ONNX name of the type ("float", "float16", "int64", ...).
    pub fn name(self) -> &'static str {
        self.data_type().name()
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
    match DataType::from_onnx(code) {
        Some(t) => t.name().to_string(),
        None if code == 0 => "undefined".into(),
        None => format!("element type {code}"),
    }
}

/// A Rust type that is the in-memory representation of an [`ElementType`].
///
/// # Safety
/// `Self` must have exactly the size and layout of one element of `TYPE`, and every bit pattern ORT writes for that
/// type must be a valid `Self` (ONNX Runtime writes output buffers given by [`TensorMut::from_slice`]). Reading and
/// viewing as bytes is checked by `bytemuck` (the supertraits).
pub unsafe trait Element:
    Copy + 'static + bytemuck::NoUninit + bytemuck::CheckedBitPattern
{
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

/// The elements of a [`TensorRef`]: bytes in caller memory, or strings.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TensorData<'a> {
    /// Little-endian element bytes (packed for the sub-byte types), handed to ONNX Runtime without copying.
    Bytes(&'a [u8]),
    /// UTF-8 strings, copied into ONNX Runtime's string tensor at run.
    Strs(&'a [&'a str]),
    /// The strings of a library-allocated string [`Tensor`] (its [`Tensor::view`]).
    Owned(&'a Strings),
}

impl TensorData<'_> {
    /// Number of strings (0 for bytes).
    pub(crate) fn string_count(&self) -> usize {
        match self {
            TensorData::Bytes(_) => 0,
            TensorData::Strs(v) => v.len(),
            TensorData::Owned(s) => s.len(),
        }
    }

    /// String `i` as bytes (empty for bytes data or out of range).
    pub(crate) fn string(&self, i: usize) -> &[u8] {
        match self {
            TensorData::Bytes(_) => &[],
            TensorData::Strs(v) => v.get(i).map_or(&[][..], |s| s.as_bytes()),
            TensorData::Owned(s) => s.get(i).unwrap_or(&[]),
        }
    }
}

/// A read-only tensor for a run's input: caller memory handed to ONNX Runtime without copying, or strings (copied
/// into ONNX Runtime's string tensor, the one element type ONNX Runtime cannot borrow).
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    pub(crate) element_type: ElementType,
    pub(crate) shape: &'a [i64],
    pub(crate) data: TensorData<'a>,
}

impl<'a> TensorRef<'a> {
    /// A tensor over raw bytes (for float16/bfloat16, float8, packed int4/int2, or data from elsewhere). Checked
    /// against the model at run; a STRING tensor cannot be given as bytes (the run refuses it: use
    /// [`TensorRef::from_strs`]).
    pub fn from_bytes(element_type: ElementType, shape: &'a [i64], data: &'a [u8]) -> Self {
        TensorRef {
            element_type,
            shape,
            data: TensorData::Bytes(data),
        }
    }

    /// A tensor over a typed slice.
    pub fn from_slice<T: Element>(shape: &'a [i64], data: &'a [T]) -> Self {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        TensorRef {
            element_type: T::TYPE,
            shape,
            data: TensorData::Bytes(bytes),
        }
    }

    /// A string tensor: one `&str` per element, row-major. Copied into ONNX Runtime at run; a string may contain
    /// NUL (ONNX Runtime stores each with its length).
    pub fn from_strs(shape: &'a [i64], data: &'a [&'a str]) -> Self {
        TensorRef {
            element_type: ElementType::String,
            shape,
            data: TensorData::Strs(data),
        }
    }

    pub fn element_type(&self) -> ElementType {
        self.element_type
    }
    pub fn shape(&self) -> &'a [i64] {
        self.shape
    }
    /// The element bytes; empty for a string tensor (see [`TensorRef::string`]).
    pub fn data(&self) -> &'a [u8] {
        match self.data {
            TensorData::Bytes(b) => b,
            _ => &[],
        }
    }
    /// Number of strings of a string tensor (0 for other types).
    pub fn string_count(&self) -> usize {
        self.data.string_count()
    }
    /// String `i` of a string tensor as UTF-8 bytes (empty for other types or out of range).
    pub fn string(&self, i: usize) -> &[u8] {
        self.data.string(i)
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
    /// An output buffer over raw bytes. Not for strings: string outputs are always allocated by ONNX Runtime
    /// (a STRING buffer is refused at run with `InvalidArgument`).
    pub fn from_bytes(element_type: ElementType, shape: &'a [i64], data: &'a mut [u8]) -> Self {
        TensorMut {
            element_type,
            shape,
            data,
        }
    }

    /// An output buffer over a typed slice.
    pub fn from_slice<T: Element>(shape: &'a [i64], data: &'a mut [T]) -> Self {
        let len = std::mem::size_of_val(data);
        // SAFETY: `Element` types have no padding (`NoUninit`); bytemuck cannot hand out a writable byte view of
        // bool, whose validity here rests on ONNX Runtime writing only 0/1 (the `Element` contract).
        let bytes = unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr() as *mut u8, len) };
        TensorMut {
            element_type: T::TYPE,
            shape,
            data: bytes,
        }
    }

    pub fn element_type(&self) -> ElementType {
        self.element_type
    }
    pub fn shape(&self) -> &[i64] {
        self.shape
    }
}

/// The strings of a library-allocated string tensor: element `i` is `bytes[starts[i]..starts[i+1]-1]`, and each
/// is followed by a NUL byte in `bytes` (so a C view can point at it; an embedded NUL ends that view early).
#[derive(Debug, Default)]
pub struct Strings {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl Strings {
    /// Number of strings.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// String `i` as bytes (without the NUL that follows it).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (a, b) = (*self.starts.get(i)?, *self.starts.get(i + 1)?);
        Some(&self.bytes[a..b - 1])
    }

    /// String `i` followed by its NUL byte (for the C ABI's `const char*` view).
    pub(crate) fn get_with_nul(&self, i: usize) -> Option<&[u8]> {
        let (a, b) = (*self.starts.get(i)?, *self.starts.get(i + 1)?);
        Some(&self.bytes[a..b])
    }

    /// Builds the storage from ORT's `GetStringTensorContent` layout: concatenated bytes and per-element offsets.
    fn from_content(content: &[u8], offsets: &[usize]) -> Option<Strings> {
        let mut bytes = Vec::with_capacity(content.len() + offsets.len());
        let mut starts = Vec::with_capacity(offsets.len() + 1);
        for (i, &a) in offsets.iter().enumerate() {
            let b = offsets.get(i + 1).copied().unwrap_or(content.len());
            starts.push(bytes.len());
            bytes.extend_from_slice(content.get(a..b)?);
            bytes.push(0);
        }
        starts.push(bytes.len());
        Some(Strings { bytes, starts })
    }
}

/// A tensor allocated by ONNX Runtime (a run's output), owned; its data is freed when it is dropped.
pub struct Tensor {
    rt: &'static Runtime,
    value: NonNull<OrtValue>,
    element_type: ElementType,
    shape: Vec<i64>,
    count: usize,
    data: *mut u8,
    byte_len: usize,
    /// String tensors: their strings, copied out of ONNX Runtime (`data` is then NULL and `byte_len` 0).
    strings: Option<Strings>,
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
            .field("bytes", &self.byte_len)
            .finish()
    }
}

impl Tensor {
    /// Takes ownership of an ORT-allocated tensor value, reading its type, shape and data pointer (strings are
    /// copied out).
    pub(crate) fn from_value(
        rt: &'static Runtime,
        value: NonNull<OrtValue>,
        name: &str,
    ) -> Result<Tensor> {
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
        let element_type = ElementType::from_onnx(code).ok_or_else(|| {
            Error::unsupported(format!(
                "output '{name}' has element type {}, which ipuflow does not support",
                onnx_type_name(code)
            ))
        })?;
        let bad_shape = || {
            Error::internal(format!(
                "output '{name}' has an invalid shape {}",
                shape_str(&shape)
            ))
        };
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| {
                usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
            })
            .ok_or_else(bad_shape)?;
        if element_type == ElementType::String {
            let mut total = 0usize;
            ort_call!(rt, GetStringTensorDataLength(value.as_ptr(), &mut total))?;
            let mut content = vec![0u8; total];
            let mut offsets = vec![0usize; count];
            ort_call!(
                rt,
                GetStringTensorContent(
                    value.as_ptr(),
                    content.as_mut_ptr().cast(),
                    total,
                    offsets.as_mut_ptr(),
                    count
                )
            )
            .map_err(|e| e.context(format!("output '{name}'")))?;
            let strings = Strings::from_content(&content, &offsets).ok_or_else(|| {
                Error::new(
                    ErrorKind::Runtime,
                    format!("output '{name}': ONNX Runtime returned invalid string offsets"),
                )
            })?;
            guard.1 = std::ptr::null_mut();
            return Ok(Tensor {
                rt,
                value,
                element_type,
                shape,
                count,
                data: std::ptr::null_mut(),
                byte_len: 0,
                strings: Some(strings),
            });
        }
        let len = element_type.byte_size(count).ok_or_else(bad_shape)?;
        let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
        ort_call!(rt, GetTensorMutableData(value.as_ptr(), &mut data))?;
        if data.is_null() && len != 0 {
            return Err(Error::new(
                ErrorKind::Runtime,
                format!("output '{name}': ONNX Runtime returned no data"),
            ));
        }
        guard.1 = std::ptr::null_mut();
        Ok(Tensor {
            rt,
            value,
            element_type,
            shape,
            count,
            data: data as *mut u8,
            byte_len: len,
            strings: None,
        })
    }

    pub fn element_type(&self) -> ElementType {
        self.element_type
    }

    pub fn shape(&self) -> &[i64] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the data in bytes (packed for int4/int2); 0 for a string tensor (see [`Tensor::string`]).
    pub fn byte_size(&self) -> usize {
        self.byte_len
    }

    /// The data as bytes; empty for a string tensor.
    pub fn as_bytes(&self) -> &[u8] {
        if self.byte_len == 0 {
            return &[];
        }
        // SAFETY: ORT owns `len` bytes at `data` for as long as the value lives.
        unsafe { std::slice::from_raw_parts(self.data, self.byte_len) }
    }

    /// The data as mutable bytes; empty for a string tensor.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        if self.byte_len == 0 {
            return &mut [];
        }
        // SAFETY: as above, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.byte_len) }
    }

    /// The data as a typed slice; `TensorMismatch` if `T` is not the tensor's element type.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        if T::TYPE != self.element_type {
            return Err(Error::new(
                ErrorKind::TensorMismatch,
                format!(
                    "tensor has element type {}, not {}",
                    self.element_type,
                    T::TYPE
                ),
            ));
        }
        if self.byte_len == 0 {
            return Ok(&[]);
        }
        // bytemuck checks alignment and size, and that every byte pattern is a valid `T` (a bool other than 0/1).
        bytemuck::checked::try_cast_slice(self.as_bytes()).map_err(|e| match e {
            bytemuck::checked::CheckedCastError::InvalidBitPattern => Error::new(
                ErrorKind::TensorMismatch,
                format!("tensor data holds a value that is not a valid {}", T::TYPE),
            ),
            bytemuck::checked::CheckedCastError::PodCastError(
                bytemuck::PodCastError::TargetAlignmentGreaterAndInputNotAligned,
            ) => Error::internal("tensor data is not aligned for its element type"),
            _ => Error::internal(format!("tensor data cannot be viewed as {}: {e}", T::TYPE)),
        })
    }

    /// The strings of a string tensor (`None` for other types).
    pub fn strings(&self) -> Option<&Strings> {
        self.strings.as_ref()
    }

    /// String `i` of a string tensor as bytes (UTF-8 as ONNX specifies, not re-checked); `None` for other types or
    /// out of range.
    pub fn string(&self, i: usize) -> Option<&[u8]> {
        self.strings.as_ref()?.get(i)
    }

    /// Every string of a string tensor as `&str`; `TensorMismatch` for other types, `InvalidUtf8` if ONNX Runtime
    /// produced bytes that are not UTF-8.
    pub fn to_strs(&self) -> Result<Vec<&str>> {
        let s = self.strings.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::TensorMismatch,
                format!("tensor has element type {}, not string", self.element_type),
            )
        })?;
        (0..s.len())
            .map(|i| {
                std::str::from_utf8(s.get(i).unwrap_or(&[])).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidUtf8,
                        format!("string element {i} is not valid UTF-8: {e}"),
                    )
                })
            })
            .collect()
    }

    /// The data pointer (for the C ABI, which hands the caller-owned tensor's memory out as `void*`); NULL for a
    /// string tensor.
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.data
    }

    /// A borrowed view, e.g. to feed this output into another run.
    pub fn view(&self) -> TensorRef<'_> {
        let data = match &self.strings {
            Some(s) => TensorData::Owned(s),
            None => TensorData::Bytes(self.as_bytes()),
        };
        TensorRef {
            element_type: self.element_type,
            shape: &self.shape,
            data,
        }
    }
}

impl Drop for Tensor {
    fn drop(&mut self) {
        unsafe { ort_fn!(self.rt, ReleaseValue)(self.value.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_pack_sub_byte_types() {
        assert_eq!(ElementType::Float32.byte_size(3), Some(12));
        assert_eq!(ElementType::Float8E5M2.byte_size(3), Some(3));
        assert_eq!(ElementType::Int4.byte_size(3), Some(2));
        assert_eq!(ElementType::Uint4.byte_size(4), Some(2));
        assert_eq!(ElementType::Int2.byte_size(5), Some(2));
        assert_eq!(ElementType::Uint2.byte_size(4), Some(1));
        assert_eq!(ElementType::Int2.byte_size(0), Some(0));
        assert_eq!(ElementType::String.byte_size(1), None);
        assert_eq!(ElementType::Float64.byte_size(usize::MAX), None, "overflow");
        assert_eq!(
            (
                ElementType::Int4.size(),
                ElementType::Float8E8M0.size(),
                ElementType::String.size()
            ),
            (None, Some(1), None)
        );
        for t in ElementType::ALL {
            assert_eq!(ElementType::from_onnx(t.onnx()), Some(t));
        }
        assert_eq!(ElementType::from_onnx(23), None, "float4e2m1");
        assert_eq!(onnx_type_name(23), "float4e2m1");
    }

    #[test]
    fn strings_from_ort_content_keep_embedded_nuls() {
        let s = Strings::from_content(b"abc\0dxy", &[0, 3, 3, 5]).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            (s.get(0), s.get(1), s.get(2), s.get(3), s.get(4)),
            (
                Some(&b"abc"[..]),
                Some(&b""[..]),
                Some(&b"\0d"[..]),
                Some(&b"xy"[..]),
                None
            )
        );
        assert_eq!(s.get_with_nul(2), Some(&b"\0d\0"[..]));
        let empty = Strings::from_content(b"", &[]).unwrap();
        assert!(empty.is_empty() && empty.get(0).is_none());
        assert!(
            Strings::from_content(b"ab", &[0, 3]).is_none(),
            "offset past the end"
        );
        assert!(
            Strings::from_content(b"ab", &[2, 1]).is_none(),
            "decreasing offsets"
        );
    }
}
