//! `ipuflow_run_options`: per-run settings and the cancel token of `ipuflow_session_run`.

use std::ffi::c_char;

use super::{
    arg_str, box_handle, enum_arg, guard, guard_value, ipuflow_status, out_ptr, write_out,
    BoxHandle,
};
use crate::runtime::{LogLevel, RunOptions};

/// Per-run settings and a cancel token.
///
/// Created by `ipuflow_run_options_create`, freed by `ipuflow_run_options_free` (not while a run uses it). Pass it
/// to `ipuflow_session_run`; `ipuflow_run_options_cancel` may be called from any thread while runs using it are in
/// progress: they stop early and return IPUFLOW_STATUS_CANCELLED. One options object may serve concurrent runs.
/// The setters are not thread-safe; cancel, reset and is_cancelled are.
pub struct ipuflow_run_options {
    _private: [u8; 0],
}

box_handle!(ipuflow_run_options => RunOptions);

/// Creates run options (no tag, the session's log level, not cancelled).
///
/// - `out`: receives the new options on success (free with `ipuflow_run_options_free`); untouched on failure.
///
/// Loads ONNX Runtime automatically if needed. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, the RUNTIME_* load errors,
/// IPUFLOW_STATUS_RUNTIME. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_run_options_create(
    out: *mut *mut ipuflow_run_options,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let ro = RunOptions::new()?;
        write_out(out, ipuflow_run_options::into_raw(ro));
        Ok(())
    })
}

/// Frees run options. `options` may be NULL (no-op). Must not be called while a run uses them.
///
/// Never fails (returns nothing; a panic inside is contained). Not thread-safe: no other call may use the object at
/// the same time.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_run_options_free(options: *mut ipuflow_run_options) {
    guard_value((), || ipuflow_run_options::free(options))
}

/// Cancels every run using these options: runs in progress stop as soon as ONNX Runtime next checks (between
/// nodes) and return IPUFLOW_STATUS_CANCELLED; later runs with these options fail at once until
/// `ipuflow_run_options_reset`. Idempotent. Errors: IPUFLOW_STATUS_NULL_ARGUMENT.
/// Thread-safe: meant to be called from another thread than the one running.
///
/// Ownership: nothing is kept or transferred.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_run_options_cancel(
    options: *const ipuflow_run_options,
) -> ipuflow_status {
    guard(|| {
        ipuflow_run_options::try_ref(options, "options")?.cancel();
        Ok(())
    })
}

/// Clears the cancel flag so the options can be used again. Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: nothing is kept or transferred.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_run_options_reset(
    options: *const ipuflow_run_options,
) -> ipuflow_status {
    guard(|| {
        ipuflow_run_options::try_ref(options, "options")?.reset();
        Ok(())
    })
}

/// Gives 1 if the options are cancelled, else 0. Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_run_options_get_cancelled(
    options: *const ipuflow_run_options,
    out: *mut i32,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let c = ipuflow_run_options::try_ref(options, "options")?.is_cancelled();
        write_out(out, c as i32);
        Ok(())
    })
}

/// Alias of `ipuflow_run_options_get_cancelled` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_run_options_get_cancelled`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_run_options_is_cancelled(
    options: *const ipuflow_run_options,
    out: *mut i32,
) -> ipuflow_status {
    ipuflow_run_options_get_cancelled(options, out)
}

/// Sets a tag shown in ONNX Runtime's log messages of these runs (UTF-8, copied).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8. Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_run_options_set_tag(
    options: *mut ipuflow_run_options,
    tag: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let o = ipuflow_run_options::try_mut(options, "options")?;
        o.set_tag(arg_str(tag, "tag")?)
    })
}

/// Sets the minimum log severity of these runs (an `IPUFLOW_LOG_LEVEL_*`).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM. Not thread-safe.
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_run_options_set_log_level(
    options: *mut ipuflow_run_options,
    log_level: i32,
) -> ipuflow_status {
    guard(|| {
        let o = ipuflow_run_options::try_mut(options, "options")?;
        let level: LogLevel = enum_arg(
            log_level,
            "log_level",
            "IPUFLOW_LOG_LEVEL_VERBOSE..IPUFLOW_LOG_LEVEL_FATAL (0..4)",
        )?;
        o.set_log_level(level)
    })
}

/// Adds an ONNX Runtime run config entry (`AddRunConfigEntry`), e.g. "memory.enable_memory_arena_shrinkage" =
/// "cpu:0". Both strings UTF-8, copied.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty key),
/// IPUFLOW_STATUS_RUNTIME (refused by ORT). Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_run_options_add_config_entry(
    options: *mut ipuflow_run_options,
    key: *const c_char,
    value: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let o = ipuflow_run_options::try_mut(options, "options")?;
        o.add_config_entry(arg_str(key, "key")?, arg_str(value, "value")?)
    })
}
