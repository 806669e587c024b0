//! Loading ONNX Runtime and asking what was loaded.

use std::ffi::c_char;

use super::{guard, guard_value, ipuflow_status, opt_path, opt_wide_path, out_ptr, write_out};
use crate::runtime::Runtime;

/// Loads ONNX Runtime for the whole process; it stays loaded until the process exits.
///
/// - `path`: the ONNX Runtime shared library (`libonnxruntime.so.1.x`, `onnxruntime.dll`), or a directory holding
///   it, as UTF-8; or NULL for automatic resolution: the environment variable `IPUFLOW_ORT_LIBRARY` if set (a file
///   or directory), otherwise `libonnxruntime.so`/`libonnxruntime.so.1`/`libonnxruntime.so.1.*`
///   (`onnxruntime.dll`, `libonnxruntime.dylib`) next to the ipuflow library, then the system loader's default
///   search. A path or the variable, when given, is the only place tried: ipuflow never falls back to another copy.
///
/// Calling it again is allowed: with NULL or the same file it succeeds and changes nothing; with a different file
/// it fails with IPUFLOW_STATUS_INVALID_ARGUMENT (one runtime per process). A failed load leaves nothing loaded and
/// may be retried. Sessions and environments load the runtime automatically (as with NULL) when this was not
/// called, so calling it is needed only to choose the file or to check for errors early.
///
/// Errors: IPUFLOW_STATUS_RUNTIME_NOT_FOUND (the message lists every place tried and the loader's error for each),
/// IPUFLOW_STATUS_RUNTIME_INVALID (the file is not ONNX Runtime: no OrtGetApiBase; the file is named),
/// IPUFLOW_STATUS_RUNTIME_TOO_OLD (older than ONNX Runtime 1.17 / C API 17; both versions given),
/// IPUFLOW_STATUS_INVALID_ARGUMENT (another file already loaded, or `path` is ""), IPUFLOW_STATUS_INVALID_UTF8.
/// Thread-safe (concurrent calls are serialized).
///
/// Ownership: `path` is read during the call, not kept; the runtime stays loaded for the life of the process.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_runtime_load(path: *const c_char) -> ipuflow_status {
    guard(|| {
        let p = opt_path(path, "path")?;
        Runtime::load(p.as_deref()).map(|_| ())
    })
}

/// Same as `ipuflow_runtime_load` with a NUL-terminated UTF-16 path (`wchar_t*` on Windows); NULL for automatic
/// resolution. Errors as `ipuflow_runtime_load`, plus IPUFLOW_STATUS_INVALID_UTF8 for invalid UTF-16.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_runtime_load_w(path: *const u16) -> ipuflow_status {
    guard(|| {
        let p = opt_wide_path(path, "path")?;
        Runtime::load(p.as_deref()).map(|_| ())
    })
}

/// Returns 1 if ONNX Runtime is loaded in this process, else 0. Never fails. Thread-safe.
///
/// Takes no argument, so no NULL handling or ownership applies.
#[no_mangle]
pub extern "C" fn ipuflow_runtime_is_loaded() -> i32 {
    guard_value(0, || Runtime::is_loaded() as i32)
}

/// Gives the loaded ONNX Runtime's version string, e.g. "1.32.0".
///
/// - `out`: receives a string owned by ipuflow, valid until the process exits (never freed by the caller).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_RUNTIME_NOT_LOADED (nothing loaded yet: `ipuflow_runtime_load`
/// first). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_runtime_get_version(out: *mut *const c_char) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let rt = Runtime::get()?;
        write_out(out, rt.version_cstr().as_ptr());
        Ok(())
    })
}

/// Alias of `ipuflow_runtime_get_version` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_runtime_get_version`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_runtime_version(out: *mut *const c_char) -> ipuflow_status {
    ipuflow_runtime_get_version(out)
}

/// Gives the ONNX Runtime C API version ipuflow obtained (17 to 24; ipuflow calls nothing newer).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_RUNTIME_NOT_LOADED. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_runtime_get_api_version(out: *mut u32) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let rt = Runtime::get()?;
        write_out(out, rt.api_version());
        Ok(())
    })
}

/// Alias of `ipuflow_runtime_get_api_version` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_runtime_get_api_version`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_runtime_api_version(out: *mut u32) -> ipuflow_status {
    ipuflow_runtime_get_api_version(out)
}

/// Gives the path ONNX Runtime was loaded from, as UTF-8 (a bare file name when the system loader found it).
///
/// - `out`: receives a string owned by ipuflow, valid until the process exits.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_RUNTIME_NOT_LOADED. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_runtime_get_path(out: *mut *const c_char) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let rt = Runtime::get()?;
        write_out(out, rt.path_cstr().as_ptr());
        Ok(())
    })
}

/// Alias of `ipuflow_runtime_get_path` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_runtime_get_path`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_runtime_path(out: *mut *const c_char) -> ipuflow_status {
    ipuflow_runtime_get_path(out)
}
