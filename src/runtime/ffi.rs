//! The FFI plumbing shared by the runtime module: calling through the versioned `OrtApi` table, turning every
//! `OrtStatus` into an [`Error`] (and releasing it at once), and OS path strings.

use std::ffi::CStr;
use std::path::Path;

use ort_sys::{OrtErrorCode, OrtStatus, OrtStatusPtr};

use super::loader::Runtime;
use crate::error::{Error, ErrorKind, Result};

/// Reads one function pointer of the `OrtApi` table of `$rt` (a `&Runtime`).
///
/// Only the named field is read, never the whole struct: a table handed out for an older API version is shorter
/// than `ort_sys::OrtApi`. Functions added after API 17 must be guarded with `Runtime::require_api` first.
macro_rules! ort_fn {
    ($rt:expr, $name:ident) => {
        {
            // SAFETY: `api_ptr` is the table ORT returned for `api_version >= 17`; every unguarded field is part of
            // API 17.
            #[allow(unused_unsafe)]
            let f = unsafe { (*$rt.api_ptr()).$name };
            f
        }
    };
}

/// Calls an `OrtApi` function returning `OrtStatus*` and converts the status with [`check`]:
/// `ort_call!(rt, SetIntraOpNumThreads(raw, 4))?`.
macro_rules! ort_call {
    ($rt:expr, $name:ident ( $($arg:expr),* $(,)? )) => {{
        let f = ort_fn!($rt, $name);
        #[allow(unused_unsafe)]
        let status = unsafe { f($($arg),*) };
        $crate::runtime::ffi::check($rt, status)
    }};
}

/// The name of an ORT error code, as in `onnxruntime_c_api.h`.
pub(crate) fn error_code_name(code: i32) -> &'static str {
    match code {
        0 => "ORT_OK",
        1 => "ORT_FAIL",
        2 => "ORT_INVALID_ARGUMENT",
        3 => "ORT_NO_SUCHFILE",
        4 => "ORT_NO_MODEL",
        5 => "ORT_ENGINE_ERROR",
        6 => "ORT_RUNTIME_EXCEPTION",
        7 => "ORT_INVALID_PROTOBUF",
        8 => "ORT_MODEL_LOADED",
        9 => "ORT_NOT_IMPLEMENTED",
        10 => "ORT_INVALID_GRAPH",
        11 => "ORT_EP_FAIL",
        12 => "ORT_MODEL_LOAD_CANCELED",
        13 => "ORT_MODEL_REQUIRES_COMPILATION",
        14 => "ORT_NOT_FOUND",
        15 => "ORT_DEVICE_RESET",
        _ => "ORT_UNKNOWN_ERROR",
    }
}

/// An ORT error, taken out of its status (which is released): the code number and the message.
pub(crate) struct OrtError {
    pub code: i32,
    pub message: String,
}

impl OrtError {
    pub fn into_error(self) -> Error {
        // ORT_MODEL_LOAD_CANCELED: the load cancellation flag of the session options stopped a creation.
        let kind = if self.code == 12 {
            ErrorKind::Cancelled
        } else {
            ErrorKind::Runtime
        };
        Error::new(
            kind,
            format!("{}: {}", error_code_name(self.code), self.message),
        )
    }
}

/// Takes the code and message out of a non-NULL status and releases it. NULL is `Ok`.
pub(crate) fn take_status(rt: &Runtime, status: OrtStatusPtr) -> std::result::Result<(), OrtError> {
    let st: *mut OrtStatus = status.0;
    if st.is_null() {
        return Ok(());
    }
    // The code is read as a plain integer: a code newer than ort-sys's enum must not become an invalid Rust enum.
    let get_code: unsafe extern "system" fn(*const OrtStatus) -> i32 = unsafe {
        std::mem::transmute::<unsafe extern "system" fn(*const OrtStatus) -> OrtErrorCode, _>(
            ort_fn!(rt, GetErrorCode),
        )
    };
    let code = unsafe { get_code(st) };
    let msg_ptr = unsafe { ort_fn!(rt, GetErrorMessage)(st) };
    let message = if msg_ptr.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(msg_ptr) }
            .to_string_lossy()
            .into_owned()
    };
    unsafe { ort_fn!(rt, ReleaseStatus)(st) };
    Err(OrtError { code, message })
}

/// Converts an `OrtStatus*` into `Result`: NULL is success; anything else becomes
/// `Error { kind: Runtime, message: "<ORT error code name>: <text>" }` and the status is released immediately.
pub(crate) fn check(rt: &Runtime, status: OrtStatusPtr) -> Result<()> {
    take_status(rt, status).map_err(OrtError::into_error)
}

/// A path as ORT's `ORTCHAR_T*` string (UTF-8 bytes on Unix, UTF-16 on Windows), NUL-terminated.
pub(crate) fn os_string(path: &Path) -> Result<Vec<ort_sys::os_char>> {
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStrExt;
        let mut v: Vec<u16> = path.as_os_str().encode_wide().collect();
        if v.contains(&0) {
            return Err(Error::invalid_argument(format!(
                "path '{}' contains a NUL character",
                path.display()
            )));
        }
        v.push(0);
        Ok(v)
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        if bytes.contains(&0) {
            return Err(Error::invalid_argument(format!(
                "path '{}' contains a NUL character",
                path.display()
            )));
        }
        let mut v: Vec<ort_sys::os_char> = bytes.iter().map(|&b| b as ort_sys::os_char).collect();
        v.push(0);
        Ok(v)
    }
}

/// A Rust string as a C string for ORT, refusing interior NULs with a message naming `what`.
pub(crate) fn c_string(s: &str, what: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| {
        Error::invalid_argument(format!(
            "{what} '{}' contains a NUL character",
            s.escape_debug()
        ))
    })
}
