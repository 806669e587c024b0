//! `ipuflow_env`: ONNX Runtime's environment (logging and optional global thread pools).

use std::ffi::{c_char, c_void, CString};

use super::{
    box_handle, enum_arg, guard, guard_value, ipuflow_status, opt_str, out_ptr, write_out,
    BoxHandle,
};
use crate::error::Result;
use crate::runtime::{Environment, EnvironmentBuilder, GlobalThreadPools, LogLevel, LogRecord};

/// Log level: everything, including per-node details.
pub const IPUFLOW_LOG_LEVEL_VERBOSE: i32 = 0;
/// Log level: informational messages and above.
pub const IPUFLOW_LOG_LEVEL_INFO: i32 = 1;
/// Log level: warnings and above (the default).
pub const IPUFLOW_LOG_LEVEL_WARNING: i32 = 2;
/// Log level: errors and above.
pub const IPUFLOW_LOG_LEVEL_ERROR: i32 = 3;
/// Log level: fatal errors only.
pub const IPUFLOW_LOG_LEVEL_FATAL: i32 = 4;

/// Receives one ONNX Runtime log message.
///
/// `user_data` is the pointer given at creation; `level` an `IPUFLOW_LOG_LEVEL_*`; `category` ORT's category
/// (e.g. "onnxruntime"); `message` the text with its source location prefix removed. Strings are valid only during
/// the call. The callback is called from ONNX Runtime's threads, possibly several at once, so it must be
/// thread-safe; it must not call back into ipuflow functions that create or free environments.
pub type ipuflow_log_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: i32,
        category: *const c_char,
        message: *const c_char,
    ),
>;

/// ONNX Runtime's environment: logging settings and, optionally, thread pools shared by all its sessions.
///
/// ONNX Runtime allows one per process: while an environment (or a session created in it) is alive, creating
/// another fails with IPUFLOW_STATUS_INVALID_ARGUMENT. Sessions created with a NULL environment share the live
/// one or create a default one (warning level, ORT's stderr logger). Sessions keep their environment alive, so
/// `ipuflow_env_free` may be called before freeing them. Thread-safe: a `const ipuflow_env*` may be used by many
/// threads at once.
pub struct ipuflow_env {
    _private: [u8; 0],
}

box_handle!(ipuflow_env => Environment);

struct UserData(*mut c_void);
// SAFETY: the host promises its callback and user data are thread-safe (documented on ipuflow_log_callback).
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

fn builder(
    log_level: i32,
    log_id: *const c_char,
    callback: ipuflow_log_callback,
    user_data: *mut c_void,
) -> Result<EnvironmentBuilder> {
    let level: LogLevel = enum_arg(
        log_level,
        "log_level",
        "IPUFLOW_LOG_LEVEL_VERBOSE..IPUFLOW_LOG_LEVEL_FATAL (0..4)",
    )?;
    let mut b = Environment::builder().log_level(level);
    if let Some(id) = unsafe { opt_str(log_id, "log_id") }? {
        b = b.log_id(id);
    }
    if let Some(cb) = callback {
        let user = UserData(user_data);
        b = b.log_callback(move |r: &LogRecord<'_>| {
            let cat = CString::new(r.category.replace('\0', "")).unwrap_or_default();
            let msg = CString::new(r.message.replace('\0', "")).unwrap_or_default();
            let u = &user;
            // SAFETY: the host's function, called as documented.
            unsafe { cb(u.0, r.level as i32, cat.as_ptr(), msg.as_ptr()) };
        });
    }
    Ok(b)
}

/// Creates the process's ONNX Runtime environment.
///
/// - `log_level`: an `IPUFLOW_LOG_LEVEL_*` value; messages below it are not produced.
/// - `log_id`: a name for the environment in log messages, or NULL for "ipuflow". Copied.
/// - `callback`: receives every log message instead of ORT's stderr logger, or NULL.
/// - `user_data`: passed to `callback` unchanged (may be NULL); must stay valid until the environment and all its
///   sessions are freed.
/// - `out`: receives the new environment on success (free with `ipuflow_env_free`); untouched on failure.
///
/// Loads ONNX Runtime automatically (as `ipuflow_runtime_load(NULL)`) if it is not loaded.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`out`), IPUFLOW_STATUS_INVALID_ENUM (`log_level`),
/// IPUFLOW_STATUS_INVALID_UTF8 (`log_id`), IPUFLOW_STATUS_INVALID_ARGUMENT (an environment is already alive),
/// the RUNTIME_* load errors, IPUFLOW_STATUS_RUNTIME (ORT refused). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_env_create(
    log_level: i32,
    log_id: *const c_char,
    callback: ipuflow_log_callback,
    user_data: *mut c_void,
    out: *mut *mut ipuflow_env,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let env = builder(log_level, log_id, callback, user_data)?.build()?;
        write_out(out, ipuflow_env::into_raw(env));
        Ok(())
    })
}

/// Creates the process's ONNX Runtime environment with global thread pools shared by every session created in it
/// (sessions then must not set their own thread counts: that is IPUFLOW_STATUS_INVALID_ARGUMENT at session
/// creation).
///
/// - `log_level`, `log_id`, `callback`, `user_data`, `out`: as `ipuflow_env_create`.
/// - `intra_op_threads`, `inter_op_threads`: pool sizes; 0 lets ONNX Runtime choose. Negative is
///   IPUFLOW_STATUS_INVALID_ARGUMENT.
/// - `allow_spinning`: 1 lets idle pool threads spin (ORT's default, lowest latency), 0 makes them sleep (less CPU),
///   -1 keeps ORT's default. Other values: IPUFLOW_STATUS_INVALID_ARGUMENT.
///
/// Errors: as `ipuflow_env_create`. Thread-safe.
///
/// NULL `log_id`, `callback` and `user_data` mean what they mean for `ipuflow_env_create`; a NULL `out` is
/// IPUFLOW_STATUS_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_env_create_with_global_thread_pools(
    log_level: i32,
    log_id: *const c_char,
    callback: ipuflow_log_callback,
    user_data: *mut c_void,
    intra_op_threads: i32,
    inter_op_threads: i32,
    allow_spinning: i32,
    out: *mut *mut ipuflow_env,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let threads = |v: i32, name: &str| {
            u32::try_from(v).map_err(|_| {
                crate::Error::invalid_argument(format!("argument '{name}' is {v}; it must be >= 0"))
            })
        };
        let allow_spinning = match allow_spinning {
            -1 => None,
            0 => Some(false),
            1 => Some(true),
            v => {
                return Err(crate::Error::invalid_argument(format!(
                    "argument 'allow_spinning' is {v}; it must be -1, 0 or 1"
                )))
            }
        };
        let pools = GlobalThreadPools {
            intra_op_threads: threads(intra_op_threads, "intra_op_threads")?,
            inter_op_threads: threads(inter_op_threads, "inter_op_threads")?,
            allow_spinning,
            denormal_as_zero: false,
        };
        let env = builder(log_level, log_id, callback, user_data)?
            .global_thread_pools(pools)
            .build()?;
        write_out(out, ipuflow_env::into_raw(env));
        Ok(())
    })
}

/// Releases the caller's reference to an environment. Sessions created in it keep it alive until they are freed.
/// `env` may be NULL (no-op). Must not race with other calls using the same `env` pointer.
///
/// Never fails (returns nothing; a panic inside is contained). Not thread-safe: no other call may use the object at
/// the same time.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_env_free(env: *mut ipuflow_env) {
    guard_value((), || ipuflow_env::free(env))
}
