//! `ipuflow_session_options`: the settings of a session, collected before the session is created.

#![allow(non_camel_case_types)]
// Each export's safety contract is its C documentation (pointer validity, ownership, thread safety).
#![allow(clippy::missing_safety_doc)]

use std::ffi::c_char;

use super::{arg_path, arg_str, arg_wide_path, box_handle, enum_arg, guard, guard_value, out_ptr, write_out, BoxHandle, ipuflow_status};
use crate::error::{Error, Result};
use crate::runtime::{ExecutionMode, GraphOptimizationLevel, LogLevel, SessionOptions};

/// Graph optimization: none.
pub const IPUFLOW_GRAPH_OPTIMIZATION_DISABLE: i32 = 0;
/// Graph optimization: semantics-preserving rewrites (constant folding, redundant node removal).
pub const IPUFLOW_GRAPH_OPTIMIZATION_BASIC: i32 = 1;
/// Graph optimization: basic plus complex fusions.
pub const IPUFLOW_GRAPH_OPTIMIZATION_EXTENDED: i32 = 2;
/// Graph optimization: everything, including layout changes (the default).
pub const IPUFLOW_GRAPH_OPTIMIZATION_ALL: i32 = 3;

/// Execution mode: nodes run one after another (the default).
pub const IPUFLOW_EXECUTION_MODE_SEQUENTIAL: i32 = 0;
/// Execution mode: independent nodes run in parallel on the inter-op threads.
pub const IPUFLOW_EXECUTION_MODE_PARALLEL: i32 = 1;

/// The settings of a session: threads, graph optimization, execution mode, determinism, memory arena, profiling,
/// optimized-model output, log id/level and arbitrary ONNX Runtime session config entries.
///
/// Created with `ipuflow_session_options_create` (ONNX Runtime's defaults), changed with the setters, read when a
/// session is created (later changes do not affect existing sessions), freed with `ipuflow_session_options_free`.
/// Values are checked by the setters where possible and by ONNX Runtime at session creation otherwise.
/// Not thread-safe for setters; a `const` options object may be used by many session creations at once.
pub struct ipuflow_session_options {
    _private: [u8; 0],
}

box_handle!(ipuflow_session_options => SessionOptions);

/// Creates session options holding ONNX Runtime's defaults. Needs no runtime loaded.
///
/// - `out`: receives the new options on success (free with `ipuflow_session_options_free`); untouched on failure.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_create(out: *mut *mut ipuflow_session_options) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        write_out(out, ipuflow_session_options::into_raw(SessionOptions::default()));
        Ok(())
    })
}

/// Frees session options. `options` may be NULL (no-op). Sessions already created are not affected.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_free(options: *mut ipuflow_session_options) {
    guard_value((), || ipuflow_session_options::free(options))
}

fn with(options: *mut ipuflow_session_options, f: impl FnOnce(&mut SessionOptions) -> Result<()>) -> ipuflow_status {
    guard(|| f(unsafe { ipuflow_session_options::try_mut(options, "options") }?))
}

fn threads(v: i32, name: &str) -> Result<Option<u32>> {
    if v < 0 {
        return Err(Error::invalid_argument(format!("argument '{name}' is {v}; it must be >= 0 (0: ONNX Runtime chooses)")));
    }
    Ok(if v == 0 { None } else { Some(v as u32) })
}

/// Sets the number of threads of the session's intra-op pool; 0 (the default) lets ONNX Runtime choose (one per
/// physical core). Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (negative).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_intra_op_threads(options: *mut ipuflow_session_options, n: i32) -> ipuflow_status {
    with(options, |o| {
        o.intra_op_threads = threads(n, "n")?;
        Ok(())
    })
}

/// Sets the number of inter-op threads (used in parallel execution mode); 0 (the default) lets ONNX Runtime
/// choose. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (negative).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_inter_op_threads(options: *mut ipuflow_session_options, n: i32) -> ipuflow_status {
    with(options, |o| {
        o.inter_op_threads = threads(n, "n")?;
        Ok(())
    })
}

/// Sets the graph optimization level, an `IPUFLOW_GRAPH_OPTIMIZATION_*` value.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_graph_optimization(options: *mut ipuflow_session_options, level: i32) -> ipuflow_status {
    with(options, |o| {
        o.graph_optimization_level =
            enum_arg::<GraphOptimizationLevel>(level, "level", "IPUFLOW_GRAPH_OPTIMIZATION_DISABLE..IPUFLOW_GRAPH_OPTIMIZATION_ALL (0..3)")?;
        Ok(())
    })
}

/// Sets the execution mode, an `IPUFLOW_EXECUTION_MODE_*` value.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_execution_mode(options: *mut ipuflow_session_options, mode: i32) -> ipuflow_status {
    with(options, |o| {
        o.execution_mode = enum_arg::<ExecutionMode>(mode, "mode", "IPUFLOW_EXECUTION_MODE_SEQUENTIAL or IPUFLOW_EXECUTION_MODE_PARALLEL")?;
        Ok(())
    })
}

fn flag(v: i32, name: &str) -> Result<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::invalid_argument(format!("argument '{name}' is {v}; it must be 0 or 1"))),
    }
}

/// Asks for deterministic kernels (1) or not (0, the default).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (not 0 or 1).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_deterministic(options: *mut ipuflow_session_options, enable: i32) -> ipuflow_status {
    with(options, |o| {
        o.deterministic_compute = flag(enable, "enable")?;
        Ok(())
    })
}

/// Turns ONNX Runtime's CPU memory arena on (1, the default) or off (0: lower peak memory, slower allocation).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (not 0 or 1).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_memory_arena(options: *mut ipuflow_session_options, enable: i32) -> ipuflow_status {
    with(options, |o| {
        o.memory_arena = flag(enable, "enable")?;
        Ok(())
    })
}

/// Enables profiling: a Chrome-trace JSON file `<prefix>_<timestamp>.json` is written when the session is freed.
/// `prefix` is a UTF-8 path prefix (copied), or NULL to disable profiling (the default).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`options`), IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT ("").
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_profiling(options: *mut ipuflow_session_options, prefix: *const c_char) -> ipuflow_status {
    with(options, |o| {
        o.profiling_prefix = if prefix.is_null() { None } else { Some(unsafe { arg_path(prefix, "prefix") }?) };
        Ok(())
    })
}

/// Same as `ipuflow_session_options_set_profiling` with a NUL-terminated UTF-16 prefix (`wchar_t*` on Windows).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_profiling_w(options: *mut ipuflow_session_options, prefix: *const u16) -> ipuflow_status {
    with(options, |o| {
        o.profiling_prefix = if prefix.is_null() { None } else { Some(unsafe { arg_wide_path(prefix, "prefix") }?) };
        Ok(())
    })
}

/// Makes session creation save the optimized graph to `path` (UTF-8, copied); NULL turns it off (the default).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`options`), IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT ("").
/// A path ONNX Runtime cannot write makes session creation fail with IPUFLOW_STATUS_RUNTIME.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_optimized_model_path(options: *mut ipuflow_session_options, path: *const c_char) -> ipuflow_status {
    with(options, |o| {
        o.optimized_model_path = if path.is_null() { None } else { Some(unsafe { arg_path(path, "path") }?) };
        Ok(())
    })
}

/// Same as `ipuflow_session_options_set_optimized_model_path` with a NUL-terminated UTF-16 path.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_optimized_model_path_w(options: *mut ipuflow_session_options, path: *const u16) -> ipuflow_status {
    with(options, |o| {
        o.optimized_model_path = if path.is_null() { None } else { Some(unsafe { arg_wide_path(path, "path") }?) };
        Ok(())
    })
}

/// Sets the session's log id (UTF-8, copied; NULL restores the default) and minimum log severity
/// (`IPUFLOW_LOG_LEVEL_*`, or -1 for the environment's level).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`options`), IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ENUM.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_logging(options: *mut ipuflow_session_options, log_id: *const c_char, log_level: i32) -> ipuflow_status {
    with(options, |o| {
        let level = if log_level == -1 {
            None
        } else {
            Some(enum_arg::<LogLevel>(log_level, "log_level", "-1 or IPUFLOW_LOG_LEVEL_VERBOSE..IPUFLOW_LOG_LEVEL_FATAL (0..4)")?)
        };
        let id = if log_id.is_null() { None } else { Some(unsafe { arg_str(log_id, "log_id") }?.to_string()) };
        o.log_id = id;
        o.log_level = level;
        Ok(())
    })
}

/// Adds an ONNX Runtime session config entry (`AddSessionConfigEntry`), e.g. "session.intra_op.allow_spinning" =
/// "0"; a key set twice keeps the last value. Both strings are UTF-8 and copied. Unknown keys are accepted (ORT
/// ignores them); values ORT refuses make session creation fail with IPUFLOW_STATUS_RUNTIME naming the entry.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty key).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_add_config_entry(
    options: *mut ipuflow_session_options,
    key: *const c_char,
    value: *const c_char,
) -> ipuflow_status {
    with(options, |o| {
        let k = unsafe { arg_str(key, "key") }?;
        let v = unsafe { arg_str(value, "value") }?;
        if k.is_empty() {
            return Err(Error::invalid_argument("argument 'key' is empty"));
        }
        o.config_entry(k, v);
        Ok(())
    })
}
