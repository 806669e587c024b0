//! `ipuflow_session_options`: the settings of a session, collected before the session is created.

use std::ffi::c_char;

use super::{
    arg_array, arg_str, box_handle, enum_arg, flag_or, guard, guard_value, input_shape_arg,
    ipuflow_status, opt_path, opt_str, opt_wide_path, out_ptr, set_input_shape, write_out,
    BoxHandle,
};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::{
    ExecutionMode, FallbackExecution, FallbackPolicy, GraphOptimizationLevel, LoadCancel, LogLevel,
    SessionDevice, SessionOptions,
};

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
/// optimized-model output, log id/level, arbitrary ONNX Runtime session config entries, and where the session runs:
/// the device (CPU / NPU / auto), VitisAI provider options, other execution providers and the fallback policy.
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
pub unsafe extern "C" fn ipuflow_session_options_create(
    out: *mut *mut ipuflow_session_options,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        // Every C options object has its load-cancel token, so `ipuflow_session_options_cancel_load` can take a
        // `const` pointer while a creation reads the same object on another thread.
        let options = SessionOptions {
            load_cancel: Some(LoadCancel::new()),
            ..SessionOptions::default()
        };
        write_out(out, ipuflow_session_options::into_raw(options));
        Ok(())
    })
}

/// Frees session options. `options` may be NULL (no-op). Sessions already created are not affected.
///
/// Never fails (returns nothing; a panic inside is contained). Not thread-safe: no other call may use the object at
/// the same time.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_free(options: *mut ipuflow_session_options) {
    guard_value((), || ipuflow_session_options::free(options))
}

fn with(
    options: *mut ipuflow_session_options,
    f: impl FnOnce(&mut SessionOptions) -> Result<()>,
) -> ipuflow_status {
    guard(|| f(unsafe { ipuflow_session_options::try_mut(options, "options") }?))
}

fn threads(v: i32, name: &str) -> Result<Option<u32>> {
    if v < 0 {
        return Err(Error::invalid_argument(format!(
            "argument '{name}' is {v}; it must be >= 0 (0: ONNX Runtime chooses)"
        )));
    }
    // Refused here, at the setter, so the host learns it where it set the value (not at session creation).
    crate::limits::check_threads(&format!("argument '{name}'"), v as u32)?;
    Ok(if v == 0 { None } else { Some(v as u32) })
}

/// Sets the number of threads of the session's intra-op pool; 0 (the default) lets ONNX Runtime choose (one per
/// physical core). Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (negative),
/// IPUFLOW_STATUS_LIMIT_EXCEEDED (over 1024, docs/SECURITY.md).
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_intra_op_threads(
    options: *mut ipuflow_session_options,
    n: i32,
) -> ipuflow_status {
    with(options, |o| {
        o.intra_op_threads = threads(n, "n")?;
        Ok(())
    })
}

/// Sets the number of inter-op threads (used in parallel execution mode); 0 (the default) lets ONNX Runtime
/// choose. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (negative),
/// IPUFLOW_STATUS_LIMIT_EXCEEDED (over 1024, docs/SECURITY.md).
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_inter_op_threads(
    options: *mut ipuflow_session_options,
    n: i32,
) -> ipuflow_status {
    with(options, |o| {
        o.inter_op_threads = threads(n, "n")?;
        Ok(())
    })
}

/// Sets the graph optimization level, an `IPUFLOW_GRAPH_OPTIMIZATION_*` value.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM.
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied). Not thread-safe
/// on the same options object (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_graph_optimization(
    options: *mut ipuflow_session_options,
    level: i32,
) -> ipuflow_status {
    with(options, |o| {
        o.graph_optimization_level = enum_arg::<GraphOptimizationLevel>(
            level,
            "level",
            "IPUFLOW_GRAPH_OPTIMIZATION_DISABLE..IPUFLOW_GRAPH_OPTIMIZATION_ALL (0..3)",
        )?;
        Ok(())
    })
}

/// Sets the execution mode, an `IPUFLOW_EXECUTION_MODE_*` value.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM.
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied). Not thread-safe
/// on the same options object (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_execution_mode(
    options: *mut ipuflow_session_options,
    mode: i32,
) -> ipuflow_status {
    with(options, |o| {
        o.execution_mode = enum_arg::<ExecutionMode>(
            mode,
            "mode",
            "IPUFLOW_EXECUTION_MODE_SEQUENTIAL or IPUFLOW_EXECUTION_MODE_PARALLEL",
        )?;
        Ok(())
    })
}

/// Asks for deterministic kernels (1) or not (0, the default).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (not 0 or 1).
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied). Not thread-safe
/// on the same options object (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_deterministic(
    options: *mut ipuflow_session_options,
    enable: i32,
) -> ipuflow_status {
    with(options, |o| {
        o.deterministic_compute = flag_or(enable, "enable", ErrorKind::InvalidArgument)?;
        Ok(())
    })
}

/// Turns ONNX Runtime's CPU memory arena on (1, the default) or off (0: lower peak memory, slower allocation).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (not 0 or 1).
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied). Not thread-safe
/// on the same options object (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_memory_arena(
    options: *mut ipuflow_session_options,
    enable: i32,
) -> ipuflow_status {
    with(options, |o| {
        o.memory_arena = flag_or(enable, "enable", ErrorKind::InvalidArgument)?;
        Ok(())
    })
}

/// Enables profiling: a Chrome-trace JSON file `<prefix>_<timestamp>.json` is written when the session is freed.
/// `prefix` is a UTF-8 path prefix (copied), or NULL to disable profiling (the default).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`options`), IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT ("").
///
/// Not thread-safe on the same options object (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_profiling(
    options: *mut ipuflow_session_options,
    prefix: *const c_char,
) -> ipuflow_status {
    with(options, |o| {
        o.profiling_prefix = unsafe { opt_path(prefix, "prefix") }?;
        Ok(())
    })
}

/// Same as `ipuflow_session_options_set_profiling` with a NUL-terminated UTF-16 prefix (`wchar_t*` on Windows).
///
/// Not thread-safe on the same options object (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_profiling_w(
    options: *mut ipuflow_session_options,
    prefix: *const u16,
) -> ipuflow_status {
    with(options, |o| {
        o.profiling_prefix = unsafe { opt_wide_path(prefix, "prefix") }?;
        Ok(())
    })
}

/// Makes session creation save the optimized graph to `path` (UTF-8, copied); NULL turns it off (the default).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`options`), IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT ("").
/// A path ONNX Runtime cannot write makes session creation fail with IPUFLOW_STATUS_RUNTIME.
///
/// Not thread-safe on the same options object (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_optimized_model_path(
    options: *mut ipuflow_session_options,
    path: *const c_char,
) -> ipuflow_status {
    with(options, |o| {
        o.optimized_model_path = unsafe { opt_path(path, "path") }?;
        Ok(())
    })
}

/// Same as `ipuflow_session_options_set_optimized_model_path` with a NUL-terminated UTF-16 path.
///
/// Not thread-safe on the same options object (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_optimized_model_path_w(
    options: *mut ipuflow_session_options,
    path: *const u16,
) -> ipuflow_status {
    with(options, |o| {
        o.optimized_model_path = unsafe { opt_wide_path(path, "path") }?;
        Ok(())
    })
}

/// Sets the session's log id (UTF-8, copied; NULL restores the default) and minimum log severity
/// (`IPUFLOW_LOG_LEVEL_*`, or -1 for the environment's level).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`options`), IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ENUM.
///
/// Not thread-safe on the same options object (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_logging(
    options: *mut ipuflow_session_options,
    log_id: *const c_char,
    log_level: i32,
) -> ipuflow_status {
    with(options, |o| {
        let level = if log_level == -1 {
            None
        } else {
            Some(enum_arg::<LogLevel>(
                log_level,
                "log_level",
                "-1 or IPUFLOW_LOG_LEVEL_VERBOSE..IPUFLOW_LOG_LEVEL_FATAL (0..4)",
            )?)
        };
        let id = unsafe { opt_str(log_id, "log_id") }?.map(str::to_string);
        o.log_id = id;
        o.log_level = level;
        Ok(())
    })
}

/// Adds an ONNX Runtime session config entry (`AddSessionConfigEntry`), e.g. "session.intra_op.allow_spinning" =
/// "0"; a key set twice keeps the last value. Both strings are UTF-8 and copied. Unknown keys are accepted (ORT
/// ignores them); values ORT refuses make session creation fail with IPUFLOW_STATUS_RUNTIME naming the entry.
/// EP-context export entries are checked at once: `ep.context_enable` / `ep.context_embed_mode` must be 0 or 1,
/// `ep.context_file_path` a path whose directory exists; `ep.vitisaiexecutionprovider.<key>` values are checked like
/// the VitisAI option `<key>` (see `ipuflow_session_options_set_provider_option`).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty key; a
/// refused EP-context or VitisAI value, naming the entry), IPUFLOW_STATUS_FILE_NOT_FOUND (the directory of
/// `ep.context_file_path`; a VitisAI file option). Not thread-safe (setters).
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
        // EP-context export entries (ep.context_*) and ep.vitisaiexecutionprovider.* values are checked now.
        crate::ipu::options::validate_session_config(&[(k, v)])?;
        o.config_entry(k, v);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Execution device, execution providers, fallback policy

/// Session device: ONNX Runtime's CPU execution provider only (the default).
pub const IPUFLOW_SESSION_DEVICE_CPU: i32 = 0;
/// Session device: the Ryzen AI NPU through the VitisAI execution provider; nodes it does not take run on the CPU.
/// The fallback policy (default STRICT) decides what happens when the NPU cannot be used.
pub const IPUFLOW_SESSION_DEVICE_NPU: i32 = 1;
/// Alias of `IPUFLOW_SESSION_DEVICE_NPU` (the same value), its 0.1 name; new code uses `IPUFLOW_SESSION_DEVICE_NPU`.
pub const IPUFLOW_SESSION_DEVICE_IPU: i32 = 1;
// A literal above (cbindgen writes it as is: the 0.1 header's `#define ... 1` stays identical); always the same value.
const _: () = assert!(IPUFLOW_SESSION_DEVICE_IPU == IPUFLOW_SESSION_DEVICE_NPU);
/// Session device: the NPU when `ipuflow_npu_detect` finds one and the VitisAI EP works, else the CPU (default
/// policy PREFER). The detected device's `target` is used unless the host set one.
pub const IPUFLOW_SESSION_DEVICE_AUTO: i32 = 2;

/// Fallback policy: session creation fails with IPUFLOW_STATUS_DEVICE_UNAVAILABLE (and ONNX Runtime's own reason
/// in `ipuflow_last_error`) when the NPU cannot be used or takes fewer nodes than the minimum.
pub const IPUFLOW_FALLBACK_STRICT: i32 = 0;
/// Fallback policy: the session runs on the CPU instead; the reason is kept (`ipuflow_session_get_fallback_reason`)
/// and sent as a warning to the environment's log callback, if it has one (ipuflow itself never prints).
pub const IPUFLOW_FALLBACK_PREFER: i32 = 1;

/// Selects where sessions run: `IPUFLOW_SESSION_DEVICE_CPU` (default), `_NPU` (also spelled `_IPU`) or `_AUTO`.
///
/// With NPU or AUTO, session creation appends the VitisAI execution provider with the options set by
/// `ipuflow_session_options_set_provider_option` plus a `cache_key` computed from the model bytes, the ONNX
/// Runtime version and the options (unless one was set), so a changed model, runtime or option set never loads a
/// stale compiled model. The key used is given by `ipuflow_session_get_cache_key`.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM. Not thread-safe (setters).
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_device(
    options: *mut ipuflow_session_options,
    device: i32,
) -> ipuflow_status {
    with(options, |o| {
        o.device = enum_arg::<SessionDevice>(
            device,
            "device",
            "IPUFLOW_SESSION_DEVICE_CPU (0), IPUFLOW_SESSION_DEVICE_NPU (1), IPUFLOW_SESSION_DEVICE_AUTO (2)",
        )?;
        Ok(())
    })
}

/// Sets the fallback policy (`IPUFLOW_FALLBACK_STRICT` or `IPUFLOW_FALLBACK_PREFER`) and the minimum share of the
/// model's nodes (after ONNX Runtime's optimizations) that must be assigned to the NPU for it to count as used,
/// between 0 and 1. The NPU always needs at least one node. Without this call the policy is STRICT for
/// IPUFLOW_SESSION_DEVICE_NPU and PREFER for IPUFLOW_SESSION_DEVICE_AUTO, with a minimum of 0.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (`policy`), IPUFLOW_STATUS_INVALID_ARGUMENT
/// (`min_npu_fraction` NaN or outside [0, 1]). Nothing is changed on error. Not thread-safe (setters).
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_fallback(
    options: *mut ipuflow_session_options,
    policy: i32,
    min_npu_fraction: f64,
) -> ipuflow_status {
    with(options, |o| {
        let p = enum_arg::<FallbackPolicy>(
            policy,
            "policy",
            "IPUFLOW_FALLBACK_STRICT (0), IPUFLOW_FALLBACK_PREFER (1)",
        )?;
        o.fallback_policy(p, min_npu_fraction)
            .map_err(|e| e.context("argument 'min_npu_fraction'"))?;
        Ok(())
    })
}

/// Adds a VitisAI execution-provider option (used with IPUFLOW_SESSION_DEVICE_NPU / _AUTO), e.g. "target" = "X2",
/// "cache_dir", "config_file", "opt_level". Legacy (Ryzen AI <= 1.3) camelCase names are accepted and renamed;
/// unknown names are passed to the EP unchanged. Each value is checked at once together with the options given
/// before: `target` X1/X2, `encryption_key` 64 hex chars, `opt_level` 0/1/2/3/65536, 0/1 flags, `config_file` and
/// `xclbin` existing files, `cache_key` a single directory name; the same option twice with different values is an
/// error. Both strings are UTF-8 and copied.
///
/// Errors (the message names the option): IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8,
/// IPUFLOW_STATUS_INVALID_ARGUMENT, IPUFLOW_STATUS_FILE_NOT_FOUND, IPUFLOW_STATUS_PATH_REFUSED (`cache_key`).
/// The options are unchanged on error. Not thread-safe (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_provider_option(
    options: *mut ipuflow_session_options,
    key: *const c_char,
    value: *const c_char,
) -> ipuflow_status {
    with(options, |o| {
        let k = unsafe { arg_str(key, "key") }?;
        let v = unsafe { arg_str(value, "value") }?;
        o.vitisai_option(k, v)?;
        Ok(())
    })
}

/// Appends an execution provider by ONNX Runtime's name (`SessionOptionsAppendExecutionProvider`: "XNNPACK",
/// "OpenVINO", "QNN", ...) with `n` key/value options (UTF-8, copied; `keys`/`values` may be NULL when `n` is 0).
/// Providers are appended in call order, before the NPU; whether the loaded ONNX Runtime has the provider is known
/// only at session creation, which then fails with IPUFLOW_STATUS_RUNTIME and ONNX Runtime's message (for an unknown
/// name it lists the names it knows). The VitisAI EP is refused here: select it with
/// `ipuflow_session_options_set_device` so that the fallback policy and cache key apply.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`options`, `name`, `keys`/`values` or one of their entries),
/// IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty name or key; VitisAI). Not thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_append_provider(
    options: *mut ipuflow_session_options,
    name: *const c_char,
    keys: *const *const c_char,
    values: *const *const c_char,
    n: usize,
) -> ipuflow_status {
    with(options, |o| {
        let name = unsafe { arg_str(name, "name") }?;
        let keys = unsafe { arg_array(keys, n, "keys") }?;
        let values = unsafe { arg_array(values, n, "values") }?;
        let mut pairs = Vec::with_capacity(n);
        for (i, (&k, &v)) in keys.iter().zip(values).enumerate() {
            let k = unsafe { arg_str(k, &format!("keys[{i}]")) }?;
            let v = unsafe { arg_str(v, &format!("values[{i}]")) }?;
            pairs.push((k.to_string(), v.to_string()));
        }
        o.execution_provider(name, pairs)?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Cancelling session creation

fn load_cancel_of<'a>(options: *const ipuflow_session_options) -> Result<&'a LoadCancel> {
    let o = unsafe { ipuflow_session_options::try_ref(options, "options") }?;
    o.load_cancel
        .as_ref()
        .ok_or_else(|| Error::internal("session options without a load-cancel token"))
}

/// Cancels every session creation (`ipuflow_session_create*`) that uses these options, now and until
/// `ipuflow_session_options_reset_load_cancel`: each returns IPUFLOW_STATUS_CANCELLED and no session. An NPU
/// compile can take a minute; this stops it from another thread.
///
/// How soon a creation in progress stops depends on the loaded ONNX Runtime (`ipuflow_runtime_get_api_version`):
/// from 1.22 (C API 22) ipuflow sets ONNX Runtime's load cancellation flag, which it checks between its loading,
/// optimization, partitioning and compilation steps; with 1.19 to 1.21 ipuflow checks at its own phase boundaries
/// only (before the session options are built, before the NPU attempt and the CPU fallback, and when ONNX Runtime
/// returns the session, which is then released), so the call in progress runs until ONNX Runtime returns.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Idempotent. Thread-safe: meant to be called from another thread while a
/// creation reads the same options; the options object must stay alive until this call returns.
///
/// Ownership: nothing is kept or transferred.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_cancel_load(
    options: *const ipuflow_session_options,
) -> ipuflow_status {
    guard(|| {
        load_cancel_of(options)?.cancel();
        Ok(())
    })
}

/// Clears the load cancellation set by `ipuflow_session_options_cancel_load`, so that later creations with these
/// options proceed. A creation already stopped stays stopped.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: nothing is kept or transferred.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_reset_load_cancel(
    options: *const ipuflow_session_options,
) -> ipuflow_status {
    guard(|| {
        load_cancel_of(options)?.reset();
        Ok(())
    })
}

/// Gives 1 if creations with these options are cancelled (`ipuflow_session_options_cancel_load` was called and
/// not reset), else 0.
///
/// - `out`: receives the flag on success.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_get_load_cancelled(
    options: *const ipuflow_session_options,
    out: *mut i32,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let c = load_cancel_of(options)?.is_cancelled();
        write_out(out, c as i32);
        Ok(())
    })
}

/// Fixes the shape of the dynamic graph input `input_name` to the `rank` sizes at `dims` (each >= 1) for sessions
/// created with these options: the model is rewritten before ONNX Runtime sees it (the NPU compiles fixed shapes
/// only). Calling it again for the same input replaces the shape. Checked against the model at session creation:
/// an unknown input, another rank, or a size contradicting a fixed one is IPUFLOW_STATUS_INVALID_ARGUMENT there.
///
/// - `dims` may be NULL only when `rank` is 0; it is copied.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty name,
/// a size below 1), IPUFLOW_STATUS_LIMIT_EXCEEDED (rank over 64). Not thread-safe on the same options.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_input_shape(
    options: *mut ipuflow_session_options,
    input_name: *const c_char,
    dims: *const i64,
    rank: usize,
) -> ipuflow_status {
    guard(|| {
        let o = ipuflow_session_options::try_mut(options, "options")?;
        let shape = input_shape_arg(input_name, dims, rank)?;
        set_input_shape(&mut o.input_shapes, shape);
        Ok(())
    })
}

/// Fallback execution (the default): a QDQ model whose session runs on the CPU (device CPU, or an AUTO/PREFER
/// fallback) is rewritten in memory so ONNX Runtime's CPU provider runs it with integer kernels (8-bit
/// activations; every quantized tensor within 1 LSB of the model as written when its inputs agree), or in float
/// with the quantized weights (16-bit activations, which the CPU provider cannot run as integers).
pub const IPUFLOW_FALLBACK_EXECUTION_FAST: i32 = 0;
/// Fallback execution: only the exact integer rewrites; 16-bit QDQ runs as written (bit-faithful, slow).
pub const IPUFLOW_FALLBACK_EXECUTION_FAITHFUL: i32 = 1;
/// Fallback execution: no rewrite, ONNX Runtime gets the model as written.
pub const IPUFLOW_FALLBACK_EXECUTION_AS_WRITTEN: i32 = 2;

/// Chooses how a quantized model runs when the session runs on the CPU: `IPUFLOW_FALLBACK_EXECUTION_FAST`
/// (default), `_FAITHFUL` or `_AS_WRITTEN`. The model file is never changed: the rewrite is kept in memory for the
/// process and, when the VitisAI provider option `cache_dir` is set, written under `<cache_dir>/ipuflow-cpu-plan/`.
/// The plan that ran and what it changed are in `ipuflow_session_placement_json` (`session.cpuPlan`). A session on
/// the NPU is not affected.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`options`), IPUFLOW_STATUS_INVALID_ENUM (`mode`); nothing is changed on
/// error. The options are borrowed and keep only the mode (no
/// ownership passes). Not thread-safe (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_fallback_execution(
    options: *mut ipuflow_session_options,
    mode: i32,
) -> ipuflow_status {
    guard(|| {
        let o = unsafe { ipuflow_session_options::try_mut(options, "options") }?;
        o.fallback_execution = enum_arg::<FallbackExecution>(
            mode,
            "mode",
            "IPUFLOW_FALLBACK_EXECUTION_FAST (0), IPUFLOW_FALLBACK_EXECUTION_FAITHFUL (1), \
             IPUFLOW_FALLBACK_EXECUTION_AS_WRITTEN (2)",
        )?;
        Ok(())
    })
}
