//! The C ABI: a thin, checked layer over the Rust core, one file per handle type.
//!
//! Conventions (they are the ABI; see README "ABI stability"):
//! - every fallible export returns `ipuflow_status` and runs inside [`guard`], which catches panics (they become
//!   `IPUFLOW_STATUS_INTERNAL` with the panic message) and records the thread's last error message;
//! - pointers are checked through the helpers below (`arg_*`, `out_*`), never ad hoc: NULL is
//!   `IPUFLOW_STATUS_NULL_ARGUMENT` naming the parameter;
//! - output parameters are written only on success (all checks first, then [`write_out`]);
//! - enums cross the boundary as plain integers and are validated with [`enum_arg`];
//! - handles are opaque; [`BoxHandle`] ties each to its Rust type so casts are checked by the compiler.

// C names (`ipuflow_model`, `ipuflow_status`) are the ABI's, not Rust's.
#![allow(non_camel_case_types)]
// Every export's safety contract (pointer validity, ownership, NULL, thread safety) is written in its C-facing doc
// comment, in the header's own terms; a Rust-style `# Safety` heading would only repeat it in the generated header.
#![allow(clippy::missing_safety_doc)]

pub mod cpu_plan;
pub mod env;
pub mod library;
pub mod model;
pub mod npu;
pub mod quantize;
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

/// A Rust string returned to C as a heap `char*` freed with `ipuflow_string_free`.
pub(crate) fn string_to_c(s: String) -> *mut c_char {
    CString::new(s.replace('\0', "\\0"))
        .unwrap_or_default()
        .into_raw()
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
