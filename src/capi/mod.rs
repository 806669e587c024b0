//! The C ABI: a thin, checked layer over the Rust core, one file per handle type.
//!
//! Conventions (they are the ABI; see README "ABI stability"):
//! - every fallible export returns `ipuflow_status` and runs inside [`guard`], which catches panics (they become
//!   `IPUFLOW_STATUS_INTERNAL` with the panic message) and records the thread's last error message;
//! - pointers are checked through the helpers below, never ad hoc: required arguments (`arg_*`, `BoxHandle::try_*`)
//!   and outputs (`out_ptr`) give `IPUFLOW_STATUS_NULL_ARGUMENT` naming the parameter when NULL; optional ones
//!   (`opt_*`, `BoxHandle::try_opt_ref`, `write_opt`) read NULL as "none" / "not wanted"; arrays with a count go
//!   through [`arg_array`], indices through [`check_index`], 0/1 flags through [`flag`] and the shape and data of
//!   an `ipuflow_tensor_view` through [`view_shape`] and [`view_bytes`];
//! - output parameters are written only on success (all checks first, then [`write_out`]);
//! - enums cross the boundary as plain integers and are validated with [`enum_arg`];
//! - handles are opaque; [`BoxHandle`] ties each to its Rust type so casts are checked by the compiler.

// C names (`ipuflow_model`, `ipuflow_status`) are the ABI's, not Rust's.
#![allow(non_camel_case_types)]
// Every export's safety contract (pointer validity, ownership, NULL, thread safety) is written in its C-facing doc
// comment, in the header's own terms; a Rust-style `# Safety` heading would only repeat it in the generated header.
#![allow(clippy::missing_safety_doc)]

pub mod calib_data;
pub mod env;
pub mod eval;
pub mod image;
pub mod library;
pub mod model;
pub mod npu;
pub mod npu_preflight;
pub mod quant_config;
pub mod quantize;
pub mod run_options;
pub mod runtime;
pub mod session;
pub mod session_options;
pub mod status;
pub mod tensor;

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
pub use status::ipuflow_status;

thread_local! {
    // The detailed message of this thread's last ipuflow call; "" after a success.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `msg` as this thread's last error (interior NULs are replaced so the message is never lost).
pub(crate) fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Empties this thread's last error without allocating when it is already empty (the hot path of every call).
fn clear_last_error() {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        if !e.as_bytes().is_empty() {
            *e = CString::default();
        }
    });
}

pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs the body of an export: converts its `Result` to a status, records the message, and stops any panic.
pub(crate) fn guard(f: impl FnOnce() -> Result<()>) -> ipuflow_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            clear_last_error();
            ipuflow_status::Ok
        }
        Ok(Err(e)) => {
            set_last_error(e.message());
            e.kind().into()
        }
        Err(payload) => {
            set_last_error(&format!(
                "internal error (panic): {}",
                panic_message(&*payload)
            ));
            ipuflow_status::Internal
        }
    }
}

/// Like [`guard`] for exports that cannot report a status (`_free`, getters returning a value): a panic is
/// swallowed (recorded as the last error) and `fallback` returned.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            set_last_error(&format!(
                "internal error (panic): {}",
                panic_message(&*payload)
            ));
            fallback
        }
    }
}

pub(crate) fn null_arg(name: &str) -> Error {
    Error::new(
        ErrorKind::NullArgument,
        format!("argument '{name}' is NULL"),
    )
}

/// Checks an output pointer before any work is done.
pub(crate) fn out_ptr<T>(p: *mut T, name: &str) -> Result<*mut T> {
    if p.is_null() {
        Err(null_arg(name))
    } else {
        Ok(p)
    }
}

/// Writes an output parameter; call only after everything else succeeded.
///
/// # Safety
/// `p` was checked by [`out_ptr`] and points to writable memory for a `T`.
pub(crate) unsafe fn write_out<T>(p: *mut T, v: T) {
    p.write(v)
}

/// Borrows a NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(null_arg(name));
    }
    CStr::from_ptr(p).to_str().map_err(|e| {
        Error::new(
            ErrorKind::InvalidUtf8,
            format!("argument '{name}' is not valid UTF-8: {e}"),
        )
    })
}

/// A UTF-8 path argument.
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn arg_path(p: *const c_char, name: &str) -> Result<PathBuf> {
    let s = arg_str(p, name)?;
    if s.is_empty() {
        return Err(Error::invalid_argument(format!(
            "argument '{name}' is an empty path"
        )));
    }
    Ok(PathBuf::from(s))
}

/// A NUL-terminated UTF-16 path argument (Windows `wchar_t*`), converted losslessly or refused.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated array of `u16`.
pub(crate) unsafe fn arg_wide_path(p: *const u16, name: &str) -> Result<PathBuf> {
    if p.is_null() {
        return Err(null_arg(name));
    }
    let mut len = 0usize;
    while *p.add(len) != 0 {
        len += 1;
    }
    let units = std::slice::from_raw_parts(p, len);
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStringExt;
        let _ = String::from_utf16(units).map_err(|_| {
            Error::new(
                ErrorKind::InvalidUtf8,
                format!("argument '{name}' is not valid UTF-16"),
            )
        })?;
        if len == 0 {
            return Err(Error::invalid_argument(format!(
                "argument '{name}' is an empty path"
            )));
        }
        Ok(PathBuf::from(std::ffi::OsString::from_wide(units)))
    }
    #[cfg(not(windows))]
    {
        let s = String::from_utf16(units).map_err(|_| {
            Error::new(
                ErrorKind::InvalidUtf8,
                format!("argument '{name}' is not valid UTF-16"),
            )
        })?;
        if s.is_empty() {
            return Err(Error::invalid_argument(format!(
                "argument '{name}' is an empty path"
            )));
        }
        Ok(PathBuf::from(s))
    }
}

/// A required, non-empty UTF-8 string argument: "" is IPUFLOW_STATUS_INVALID_ARGUMENT naming it.
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn arg_nonempty_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    let s = arg_str(p, name)?;
    if s.is_empty() {
        return Err(Error::invalid_argument(format!(
            "argument '{name}' is empty"
        )));
    }
    Ok(s)
}

/// An optional UTF-8 string argument: NULL is `None`.
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        arg_str(p, name).map(Some)
    }
}

/// An optional UTF-8 path argument: NULL is `None`, "" is refused.
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn opt_path(p: *const c_char, name: &str) -> Result<Option<PathBuf>> {
    if p.is_null() {
        Ok(None)
    } else {
        arg_path(p, name).map(Some)
    }
}

/// An optional UTF-16 path argument: NULL is `None`, "" is refused.
///
/// # Safety
/// As [`arg_wide_path`].
pub(crate) unsafe fn opt_wide_path(p: *const u16, name: &str) -> Result<Option<PathBuf>> {
    if p.is_null() {
        Ok(None)
    } else {
        arg_wide_path(p, name).map(Some)
    }
}

/// Writes an optional output parameter: NULL means the caller does not want it. Call only after everything else
/// succeeded, as [`write_out`]. A value that owns memory (a C string) is made only after a NULL check: written
/// nowhere, it would leak.
///
/// # Safety
/// `p` is NULL or points to writable memory for a `T`.
pub(crate) unsafe fn write_opt<T>(p: *mut T, v: T) {
    if !p.is_null() {
        p.write(v)
    }
}

/// Borrows an array argument of `len` elements: NULL is allowed only when `len` is 0 (an empty array).
///
/// # Safety
/// `p` is NULL or valid for `len` elements for the duration of the call.
pub(crate) unsafe fn arg_array<'a, T>(p: *const T, len: usize, name: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null_arg(name));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

/// An optional array argument of `len` elements: NULL is `None`.
///
/// # Safety
/// As [`arg_array`].
pub(crate) unsafe fn opt_array<'a, T>(p: *const T, len: usize) -> Option<&'a [T]> {
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p, len))
    }
}

/// A 0/1 flag argument. Another value is IPUFLOW_STATUS_INVALID_ENUM, the status of every enum-like integer.
pub(crate) fn flag(v: i32, name: &str) -> Result<bool> {
    flag_or(v, name, ErrorKind::InvalidEnum)
}

/// [`flag`] with the status of an out-of-domain value given: the 0.1 session-option setters answered
/// IPUFLOW_STATUS_INVALID_ARGUMENT and the ABI keeps what released callers test for.
pub(crate) fn flag_or(v: i32, name: &str, kind: ErrorKind) -> Result<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::new(
            kind,
            format!("argument '{name}' is {v}; it must be 0 or 1"),
        )),
    }
}

/// Checks an index against a count: IPUFLOW_STATUS_OUT_OF_RANGE naming what is indexed and how many there are
/// (`what` e.g. "input", `owner` e.g. "the model"; the message reads "input index 3 is out of range: the model has
/// 2 inputs").
pub(crate) fn check_index(index: usize, len: usize, what: &str, owner: &str) -> Result<usize> {
    if index < len {
        Ok(index)
    } else {
        Err(Error::new(
            ErrorKind::OutOfRange,
            format!("{what} index {index} is out of range: {owner} has {len} {what}s"),
        ))
    }
}

/// The shape of an `ipuflow_tensor_view` (`shape`, `rank`): rank 0 is `[]` whatever `shape` is, a NULL `shape`
/// with rank > 0 is IPUFLOW_STATUS_NULL_ARGUMENT naming `<name>.shape`. `name` is formatted only on error (this
/// runs on every call of a run). Callers bound `rank` before, so a wild rank is never read past.
///
/// # Safety
/// `shape` is NULL or valid for `rank` elements.
pub(crate) unsafe fn view_shape<'a>(
    shape: *const i64,
    rank: usize,
    name: &dyn Fn() -> String,
) -> Result<&'a [i64]> {
    if rank == 0 {
        Ok(&[])
    } else if shape.is_null() {
        Err(null_arg(&format!("{}.shape", name())))
    } else {
        Ok(std::slice::from_raw_parts(shape, rank))
    }
}

/// The data of an `ipuflow_tensor_view` as bytes: `byte_size` 0 is empty whatever `data` is, a NULL `data` with
/// bytes is IPUFLOW_STATUS_NULL_ARGUMENT naming `<name>.data`.
///
/// # Safety
/// `data` is NULL or valid for `byte_size` bytes for the duration of the borrow.
pub(crate) unsafe fn view_bytes<'a>(
    data: *const std::ffi::c_void,
    byte_size: usize,
    name: &dyn Fn() -> String,
) -> Result<&'a [u8]> {
    if byte_size == 0 {
        Ok(&[])
    } else if data.is_null() {
        Err(null_arg(&format!("{}.data", name())))
    } else {
        Ok(std::slice::from_raw_parts(data as *const u8, byte_size))
    }
}

/// Borrows a byte buffer argument; `len == 0` with NULL is an empty buffer.
///
/// # Safety
/// `p` is NULL or valid for `len` bytes for the duration of the call.
pub(crate) unsafe fn arg_bytes<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if p.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(null_arg(name));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

/// An enum that crossed the boundary as an integer: validated, never transmuted.
pub(crate) fn enum_arg<T: TryFrom<i32>>(v: i32, name: &str, valid: &str) -> Result<T> {
    T::try_from(v).map_err(|_| invalid_enum(name, v, valid))
}

/// The error for an integer that is not one of an enum's values.
pub(crate) fn invalid_enum(name: &str, v: i32, valid: &str) -> Error {
    Error::new(
        ErrorKind::InvalidEnum,
        format!("argument '{name}' has value {v}, which is not one of {valid}"),
    )
}

/// A Rust string as a C string owned by a handle: an interior NUL (possible in names read from a model) is shown
/// as `\0` rather than cutting the string short.
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

/// A Rust string returned to C as a heap `char*` freed with `ipuflow_string_free`.
pub(crate) fn string_to_c(s: String) -> *mut c_char {
    c_string(&s).into_raw()
}

/// Ties an opaque C handle type to the boxed Rust value behind it.
///
/// # Safety
/// Implement only through [`box_handle!`], for a zero-sized opaque struct that is never constructed in Rust.
pub(crate) unsafe trait BoxHandle: Sized {
    type Target;

    fn into_raw(value: Self::Target) -> *mut Self {
        Box::into_raw(Box::new(value)) as *mut Self
    }

    /// # Safety
    /// `p` is NULL or a live handle of this type.
    unsafe fn try_ref<'a>(p: *const Self, arg: &str) -> Result<&'a Self::Target> {
        (p as *const Self::Target)
            .as_ref()
            .ok_or_else(|| null_arg(arg))
    }

    /// An optional handle argument: NULL is `None`.
    ///
    /// # Safety
    /// `p` is NULL or a live handle of this type.
    unsafe fn try_opt_ref<'a>(p: *const Self) -> Option<&'a Self::Target> {
        (p as *const Self::Target).as_ref()
    }

    /// # Safety
    /// `p` is NULL or a live handle of this type, not used by another thread during the call.
    unsafe fn try_mut<'a>(p: *mut Self, arg: &str) -> Result<&'a mut Self::Target> {
        (p as *mut Self::Target)
            .as_mut()
            .ok_or_else(|| null_arg(arg))
    }

    /// # Safety
    /// `p` is NULL or a live handle of this type; it is dead afterwards.
    unsafe fn free(p: *mut Self) {
        if !p.is_null() {
            drop(Box::from_raw(p as *mut Self::Target));
        }
    }
}

/// `box_handle!(ipuflow_model => Model)`: declares that the opaque C type is a `Box<Model>`.
macro_rules! box_handle {
    ($handle:ty => $target:ty) => {
        unsafe impl $crate::capi::BoxHandle for $handle {
            type Target = $target;
        }
    };
}
pub(crate) use box_handle;

/// A graph input's fixed shape from C: `input_name` (UTF-8), `rank` sizes at `dims` (NULL only when `rank` is 0).
///
/// # Safety
/// `input_name` as [`arg_str`]; `dims` valid for `rank` reads.
pub(crate) unsafe fn input_shape_arg(
    input_name: *const c_char,
    dims: *const i64,
    rank: usize,
) -> Result<crate::onnx::InputShape> {
    let name = arg_str(input_name, "input_name")?;
    crate::limits::check_rank("argument 'rank'", rank)?;
    let dims = if rank == 0 {
        &[][..]
    } else {
        arg_array(dims, rank, "dims")?
    };
    crate::onnx::InputShape::new(name, dims.to_vec())
}

/// Adds `shape` to `list`, replacing an earlier shape for the same input.
pub(crate) fn set_input_shape(
    list: &mut Vec<crate::onnx::InputShape>,
    shape: crate::onnx::InputShape,
) {
    match list.iter_mut().find(|s| s.name == shape.name) {
        Some(s) => *s = shape,
        None => list.push(shape),
    }
}
