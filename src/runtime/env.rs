//! ONNX Runtime's environment: logging (level, optional callback) and optional global thread pools.
//!
//! ONNX Runtime keeps one environment per process: creating a second while one is alive silently returns the
//! first with its settings. ipuflow makes that explicit: [`EnvironmentBuilder::build`] fails while another
//! [`Environment`] is alive, and sessions created without one share the current environment (or a default one).
//! Sessions keep their environment alive; it is released when the last handle and session are gone.

use std::ffi::{c_char, c_void, CStr};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use ort_sys::{OrtEnv, OrtLoggingFunction, OrtLoggingLevel};
use parking_lot::{Condvar, Mutex};

use super::ffi::c_string;
use super::loader::Runtime;
use crate::error::{Error, Result};

/// Severity of ONNX Runtime log messages; messages below the environment's level are not produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i32)]
pub enum LogLevel {
    Verbose = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Fatal = 4,
}

try_from_i32!(LogLevel {
    Verbose,
    Info,
    Warning,
    Error,
    Fatal
});

impl LogLevel {
    fn ort(self) -> OrtLoggingLevel {
        match self {
            LogLevel::Verbose => OrtLoggingLevel::ORT_LOGGING_LEVEL_VERBOSE,
            LogLevel::Info => OrtLoggingLevel::ORT_LOGGING_LEVEL_INFO,
            LogLevel::Warning => OrtLoggingLevel::ORT_LOGGING_LEVEL_WARNING,
            LogLevel::Error => OrtLoggingLevel::ORT_LOGGING_LEVEL_ERROR,
            LogLevel::Fatal => OrtLoggingLevel::ORT_LOGGING_LEVEL_FATAL,
        }
    }
}

/// One log message from ONNX Runtime, borrowed for the duration of the callback.
#[derive(Clone, Copy, Debug)]
pub struct LogRecord<'a> {
    pub level: LogLevel,
    /// ORT's category, e.g. "onnxruntime".
    pub category: &'a str,
    /// The environment's or session's log id.
    pub log_id: &'a str,
    /// Source location inside ORT, e.g. "inference_session.cc:1234 Initialize".
    pub code_location: &'a str,
    pub message: &'a str,
}

/// A log callback. It is called from ORT's threads, possibly several at once, and must not panic across
/// (a panic is caught and the message dropped).
pub type LogCallback = Box<dyn Fn(&LogRecord<'_>) + Send + Sync + 'static>;

/// Settings of the process-wide thread pools shared by every session of an environment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalThreadPools {
    /// Intra-op threads; 0 lets ONNX Runtime choose (one per physical core).
    pub intra_op_threads: u32,
    /// Inter-op threads (parallel execution mode only); 0 lets ONNX Runtime choose.
    pub inter_op_threads: u32,
    /// Whether idle pool threads spin before sleeping; `None` keeps ORT's default (spin).
    pub allow_spinning: Option<bool>,
    /// Flush denormal floats to zero in the pool threads.
    pub denormal_as_zero: bool,
}

/// Builds an [`Environment`].
pub struct EnvironmentBuilder {
    log_level: LogLevel,
    log_id: String,
    callback: Option<LogCallback>,
    thread_pools: Option<GlobalThreadPools>,
}

impl Default for EnvironmentBuilder {
    fn default() -> Self {
        EnvironmentBuilder {
            log_level: LogLevel::Warning,
            log_id: "ipuflow".into(),
            callback: None,
            thread_pools: None,
        }
    }
}

impl fmt::Debug for EnvironmentBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvironmentBuilder")
            .field("log_level", &self.log_level)
            .field("log_id", &self.log_id)
            .field("callback", &self.callback.is_some())
            .field("thread_pools", &self.thread_pools)
            .finish()
    }
}

impl EnvironmentBuilder {
    /// The minimum severity logged (default `Warning`).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }
    /// The environment's log id (default "ipuflow").
    pub fn log_id(mut self, id: impl Into<String>) -> Self {
        self.log_id = id.into();
        self
    }
    /// Routes ORT's log messages to `f` instead of ORT's default (stderr) sink.
    pub fn log_callback(mut self, f: impl Fn(&LogRecord<'_>) + Send + Sync + 'static) -> Self {
        self.callback = Some(Box::new(f));
        self
    }
    /// Gives the environment global thread pools, used by every session created in it.
    pub fn global_thread_pools(mut self, pools: GlobalThreadPools) -> Self {
        self.thread_pools = Some(pools);
        self
    }

    /// Creates the environment (loading ONNX Runtime with the default resolution if needed).
    ///
    /// Fails with `InvalidArgument` while another `Environment` is alive (ORT keeps one per process).
    pub fn build(self) -> Result<Environment> {
        let rt = Runtime::get_or_load()?;
        let mut slot = SLOT.lock();
        if let Some(existing) = slot.current.upgrade() {
            // Unlock before `existing` may drop the last reference (its Drop takes the lock).
            drop(slot);
            drop(existing);
            return Err(Error::invalid_argument(
                "an ONNX Runtime environment already exists in this process (ONNX Runtime keeps one per process): \
                 free every session and environment using it first, or create sessions without an environment to share it",
            ));
        }
        // A previous environment may be in the middle of being released: wait until ORT has let it go, or ORT would
        // hand back the old one (with the old logger).
        while slot.alive {
            SLOT_FREED.wait(&mut slot);
        }
        let inner = Arc::new(EnvInner::create(rt, self)?);
        slot.current = Arc::downgrade(&inner);
        slot.alive = true;
        Ok(Environment(inner))
    }
}

struct Slot {
    current: Weak<EnvInner>,
    // Whether an OrtEnv created by ipuflow has not been released yet.
    alive: bool,
}

static SLOT: Mutex<Slot> = Mutex::new(Slot {
    current: Weak::new(),
    alive: false,
});
static SLOT_FREED: Condvar = Condvar::new();

/// ONNX Runtime's environment. Cheap to clone (shared); `Send + Sync`.
#[derive(Clone)]
pub struct Environment(Arc<EnvInner>);

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("log_level", &self.0.log_level)
            .field("global_thread_pools", &self.0.global_thread_pools)
            .finish()
    }
}

pub(crate) struct EnvInner {
    rt: &'static Runtime,
    raw: *mut OrtEnv,
    log_level: LogLevel,
    global_thread_pools: bool,
    // Boxed twice so ORT gets a thin pointer; it must outlive `raw`, so it is dropped after ReleaseEnv.
    callback: Option<Box<LogCallback>>,
}

// SAFETY: the OrtEnv is thread-safe; the callback is Send + Sync.
unsafe impl Send for EnvInner {}
unsafe impl Sync for EnvInner {}

impl Environment {
    /// A builder with the defaults (warning level, ORT's own log sink, per-session thread pools).
    pub fn builder() -> EnvironmentBuilder {
        EnvironmentBuilder::default()
    }

    /// The environment currently alive, if any.
    pub fn current() -> Option<Environment> {
        let slot = SLOT.lock();
        let env = slot.current.upgrade();
        drop(slot);
        env.map(Environment)
    }

    /// The environment currently alive, or a new default one (kept alive by the returned handle).
    pub fn current_or_default() -> Result<Environment> {
        if let Some(e) = Environment::current() {
            return Ok(e);
        }
        match Environment::builder().build() {
            Ok(e) => Ok(e),
            // Another thread created one in between: share it.
            Err(e) => Environment::current().ok_or(e),
        }
    }

    pub fn log_level(&self) -> LogLevel {
        self.0.log_level
    }

    /// Whether sessions of this environment use its global thread pools.
    pub fn has_global_thread_pools(&self) -> bool {
        self.0.global_thread_pools
    }

    /// Sends an ipuflow message (category "ipuflow") to the environment's log callback, if it has one and `level`
    /// is at or above the environment's level; returns whether it was delivered. ipuflow never prints: without a
    /// callback the message is only kept where the caller stores it (e.g. a session's warnings).
    pub(crate) fn log(&self, level: LogLevel, message: &str) -> bool {
        match &self.0.callback {
            Some(cb) if level >= self.0.log_level => {
                let rec = LogRecord {
                    level,
                    category: "ipuflow",
                    log_id: "ipuflow",
                    code_location: "",
                    message,
                };
                catch_unwind(AssertUnwindSafe(|| cb(&rec))).is_ok()
            }
            _ => false,
        }
    }

    pub(crate) fn raw(&self) -> *mut OrtEnv {
        self.0.raw
    }

    pub(crate) fn runtime(&self) -> &'static Runtime {
        self.0.rt
    }
}

// Receives the severity as a plain integer (a value outside ort-sys's enum must not become an invalid Rust enum).
unsafe extern "system" fn log_trampoline(
    param: *mut c_void,
    severity: i32,
    category: *const c_char,
    logid: *const c_char,
    code_location: *const c_char,
    message: *const c_char,
) {
    if param.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let s = |p: *const c_char| {
            if p.is_null() {
                std::borrow::Cow::Borrowed("")
            } else {
                CStr::from_ptr(p).to_string_lossy()
            }
        };
        let (category, log_id, code_location, message) =
            (s(category), s(logid), s(code_location), s(message));
        let level = LogLevel::try_from(severity.clamp(0, 4)).unwrap_or(LogLevel::Fatal);
        let cb = &*(param as *const LogCallback);
        cb(&LogRecord {
            level,
            category: &category,
            log_id: &log_id,
            code_location: &code_location,
            message: &message,
        });
    }));
}

impl EnvInner {
    fn create(rt: &'static Runtime, b: EnvironmentBuilder) -> Result<EnvInner> {
        let log_id = c_string(&b.log_id, "log id")?;
        let callback: Option<Box<LogCallback>> = b.callback.map(Box::new);
        let (log_fn, log_param): (Option<OrtLoggingFunction>, *mut c_void) = match &callback {
            Some(cb) => {
                type Tramp = unsafe extern "system" fn(
                    *mut c_void,
                    i32,
                    *const c_char,
                    *const c_char,
                    *const c_char,
                    *const c_char,
                );
                // SAFETY: same ABI; the severity parameter is an i32-sized enum read as i32.
                let f: OrtLoggingFunction =
                    unsafe { std::mem::transmute::<Tramp, OrtLoggingFunction>(log_trampoline) };
                (Some(f), &**cb as *const LogCallback as *mut c_void)
            }
            None => (None, std::ptr::null_mut()),
        };
        let level = b.log_level.ort();
        let mut raw: *mut OrtEnv = std::ptr::null_mut();
        match b.thread_pools {
            None => match log_fn {
                Some(f) => ort_call!(
                    rt,
                    CreateEnvWithCustomLogger(f, log_param, level, log_id.as_ptr(), &mut raw)
                )?,
                None => ort_call!(rt, CreateEnv(level, log_id.as_ptr(), &mut raw))?,
            },
            Some(p) => {
                let mut tp = std::ptr::null_mut();
                ort_call!(rt, CreateThreadingOptions(&mut tp))?;
                struct TpGuard(&'static Runtime, *mut ort_sys::OrtThreadingOptions);
                impl Drop for TpGuard {
                    fn drop(&mut self) {
                        unsafe { ort_fn!(self.0, ReleaseThreadingOptions)(self.1) };
                    }
                }
                let _g = TpGuard(rt, tp);
                let threads = |n: u32, what: &str| -> Result<i32> {
                    i32::try_from(n)
                        .map_err(|_| Error::invalid_argument(format!("{what} {n} is too large")))
                };
                for (n, what, set) in [
                    (
                        p.intra_op_threads,
                        "intra-op threads",
                        ort_fn!(rt, SetGlobalIntraOpNumThreads),
                    ),
                    (
                        p.inter_op_threads,
                        "inter-op threads",
                        ort_fn!(rt, SetGlobalInterOpNumThreads),
                    ),
                ] {
                    if n > 0 {
                        let status = unsafe { set(tp, threads(n, what)?) };
                        super::ffi::check(rt, status)?;
                    }
                }
                if let Some(spin) = p.allow_spinning {
                    ort_call!(rt, SetGlobalSpinControl(tp, spin as i32))?;
                }
                if p.denormal_as_zero {
                    ort_call!(rt, SetGlobalDenormalAsZero(tp))?;
                }
                match log_fn {
                    Some(f) => ort_call!(
                        rt,
                        CreateEnvWithCustomLoggerAndGlobalThreadPools(
                            f,
                            log_param,
                            level,
                            log_id.as_ptr(),
                            tp,
                            &mut raw
                        )
                    )?,
                    None => ort_call!(
                        rt,
                        CreateEnvWithGlobalThreadPools(level, log_id.as_ptr(), tp, &mut raw)
                    )?,
                }
            }
        }
        if raw.is_null() {
            return Err(Error::internal("CreateEnv returned no environment"));
        }
        // ipuflow never sends telemetry (a no-op where ORT has none).
        let _ = ort_call!(rt, DisableTelemetryEvents(raw));
        Ok(EnvInner {
            rt,
            raw,
            log_level: b.log_level,
            global_thread_pools: b.thread_pools.is_some(),
            callback,
        })
    }
}

impl Drop for EnvInner {
    fn drop(&mut self) {
        let mut slot = SLOT.lock();
        unsafe { ort_fn!(self.rt, ReleaseEnv)(self.raw) };
        self.callback = None;
        slot.alive = false;
        SLOT_FREED.notify_all();
    }
}
