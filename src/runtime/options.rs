//! Session options: a plain Rust struct, applied to a fresh `OrtSessionOptions` when a session is created.
//!
//! Keeping the settings as data (not as a live ORT object) lets them be cloned, compared, printed, validated up
//! front, and extended: execution providers (the NPU) are appended in `SessionOptions::build`, which turns the
//! struct into an `OrtSessionOptions` at session creation.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ort_sys::OrtSessionOptions;

use super::cpu_plan::FallbackExecution;
use super::env::{Environment, LogLevel};
use super::ffi::{c_string, os_string};
use super::loader::Runtime;
use super::npu::{ExecutionProvider, FallbackPolicy, NpuFraction, SessionDevice};
use crate::error::{Error, ErrorKind, Result};

/// How much ONNX Runtime rewrites the graph before running it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum GraphOptimizationLevel {
    /// No rewrites.
    Disable = 0,
    /// Semantics-preserving rewrites (constant folding, redundant node removal).
    Basic = 1,
    /// Basic plus complex fusions.
    Extended = 2,
    /// Everything, including layout optimizations (ORT's default).
    #[default]
    All = 3,
}

try_from_i32!(GraphOptimizationLevel {
    Disable,
    Basic,
    Extended,
    All
});

/// Whether independent nodes run one after another or in parallel (inter-op threads).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ExecutionMode {
    #[default]
    Sequential = 0,
    Parallel = 1,
}

try_from_i32!(ExecutionMode {
    Sequential,
    Parallel
});

/// Settings of a session. `Default` is ONNX Runtime's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Intra-op threads of the session's own pool; `None` lets ORT choose. Not allowed with global thread pools.
    pub intra_op_threads: Option<u32>,
    /// Inter-op threads (parallel mode); `None` lets ORT choose. Not allowed with global thread pools.
    pub inter_op_threads: Option<u32>,
    pub graph_optimization_level: GraphOptimizationLevel,
    pub execution_mode: ExecutionMode,
    /// Prefer deterministic kernels (same results run to run).
    pub deterministic_compute: bool,
    /// ORT's CPU memory arena (default on); off lowers peak memory at some speed cost.
    pub memory_arena: bool,
    /// Write a Chrome-trace profile to `<prefix>_<timestamp>.json` (written when the session is freed).
    pub profiling_prefix: Option<PathBuf>,
    /// Save the optimized graph to this path when the session is created.
    pub optimized_model_path: Option<PathBuf>,
    /// The session's log id.
    pub log_id: Option<String>,
    /// The session's minimum log severity (defaults to the environment's).
    pub log_level: Option<LogLevel>,
    /// Arbitrary `AddSessionConfigEntry` key/value pairs, applied in order
    /// (e.g. `session.intra_op.allow_spinning` = `0`).
    pub config_entries: Vec<(String, String)>,
    /// The device to run on (default CPU); see [`super::npu`].
    pub device: SessionDevice,
    /// What happens when the NPU cannot be used; `None`: Strict for `Ipu`, Prefer for `Auto`.
    pub fallback: Option<FallbackPolicy>,
    /// The share of nodes that must land on the NPU for it to count as used (default 0: at least one node).
    pub min_npu_fraction: NpuFraction,
    /// VitisAI provider options as the host gave them (validated when set, normalized at session creation).
    pub vitisai_options: Vec<(String, String)>,
    /// Other execution providers, appended by name in this order before the NPU.
    pub execution_providers: Vec<ExecutionProvider>,
    /// Fixed shapes for dynamic graph inputs: the model is rewritten by
    /// [`crate::onnx::input_shape::apply_input_shapes`] before ONNX Runtime sees it.
    pub input_shapes: Vec<crate::onnx::InputShape>,
    /// Cancels session creations that use these options (or a clone of them), from another thread; see
    /// [`LoadCancel`] and [`SessionOptions::load_cancel`].
    pub load_cancel: Option<LoadCancel>,
    /// How a quantized model runs when the session runs on the CPU (device CPU, or an AUTO/PREFER fallback):
    /// default `Fast`, see [`super::cpu_plan`].
    pub fallback_execution: FallbackExecution,
}

/// The ONNX Runtime C API version that added `SessionOptionsSetLoadCancellationFlag` (ONNX Runtime 1.22).
pub const LOAD_CANCEL_API_VERSION: u32 = 22;

/// A cancel token for session creation, shared by clones: [`LoadCancel::cancel`] from any thread makes every
/// session creation using it fail with [`ErrorKind::Cancelled`] until [`LoadCancel::reset`].
///
/// How soon a creation in progress stops depends on the runtime. With ONNX Runtime 1.22 or newer (C API 22) the
/// runtime's own load cancellation flag is set on the creation's `OrtSessionOptions`, and ONNX Runtime stops at
/// its next check (between graph loading, optimization, partitioning and EP compilation steps). With an older
/// runtime (1.19 to 1.21) ipuflow checks the token at its own phase boundaries only: before the options are built,
/// before each attempt (NPU, then the CPU fallback) and when ONNX Runtime returns the session, which is then
/// released. Either way a cancelled creation returns no session.
#[derive(Clone, Debug, Default)]
pub struct LoadCancel(Arc<LoadCancelInner>);

#[derive(Debug, Default)]
struct LoadCancelInner {
    cancelled: AtomicBool,
    /// The `OrtSessionOptions` of creations in progress, by id: `cancel` sets ORT's flag on each. A mutex (not an
    /// atomic list) so that an entry is never used after its options are released.
    live: Mutex<Vec<LiveOptions>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct LiveOptions {
    id: u64,
    rt: &'static Runtime,
    raw: *mut OrtSessionOptions,
}

// SAFETY: `raw` is only used under the `live` mutex, and unregistered (under it) before it is released.
unsafe impl Send for LiveOptions {}

impl PartialEq for LoadCancel {
    /// Two tokens are equal when they are the same token (clones of one another).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for LoadCancel {}

impl LoadCancel {
    pub fn new() -> LoadCancel {
        LoadCancel::default()
    }

    /// Cancels every creation using this token, now and until [`LoadCancel::reset`]. Idempotent; any thread.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let live = self.0.live.lock().unwrap_or_else(|e| e.into_inner());
        for l in live.iter() {
            set_ort_load_cancel(l.rt, l.raw);
        }
    }

    /// Clears the cancellation, so that later creations proceed.
    pub fn reset(&self) {
        self.0.cancelled.store(false, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// `Err(Cancelled)` when cancelled: `what` names the phase that noticed it.
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        if self.is_cancelled() {
            return Err(cancelled(what));
        }
        Ok(())
    }

    /// Registers the options of a creation in progress; fails at once if already cancelled. The check and the
    /// registration happen under the lock `cancel` takes, so a cancel never slips between them.
    fn register(&self, rt: &'static Runtime, raw: *mut OrtSessionOptions) -> Result<u64> {
        let mut live = self.0.live.lock().unwrap_or_else(|e| e.into_inner());
        self.check("before the session options were built")?;
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        live.push(LiveOptions { id, rt, raw });
        Ok(id)
    }

    fn unregister(&self, id: u64) {
        let mut live = self.0.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|l| l.id != id);
    }
}

fn cancelled(what: &str) -> Error {
    Error::new(
        ErrorKind::Cancelled,
        format!("session creation was cancelled ({what})"),
    )
}

/// Sets ONNX Runtime's load cancellation flag when the runtime has it (C API 22); older runtimes rely on ipuflow's
/// own checks. A failure to set it is not an error: the phase checks still stop the creation.
fn set_ort_load_cancel(rt: &Runtime, raw: *mut OrtSessionOptions) {
    if rt.api_version() >= LOAD_CANCEL_API_VERSION {
        let f = ort_fn!(rt, SessionOptionsSetLoadCancellationFlag);
        let status = unsafe { f(raw, true) };
        let _ = super::ffi::take_status(rt, status);
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            intra_op_threads: None,
            inter_op_threads: None,
            graph_optimization_level: GraphOptimizationLevel::All,
            execution_mode: ExecutionMode::Sequential,
            deterministic_compute: false,
            memory_arena: true,
            profiling_prefix: None,
            optimized_model_path: None,
            log_id: None,
            log_level: None,
            config_entries: Vec::new(),
            device: SessionDevice::Cpu,
            fallback: None,
            min_npu_fraction: NpuFraction::default(),
            vitisai_options: Vec::new(),
            execution_providers: Vec::new(),
            input_shapes: Vec::new(),
            load_cancel: None,
            fallback_execution: FallbackExecution::Fast,
        }
    }
}

impl SessionOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// The cancel token of these options (created on first use; clones of the options share it): call
    /// [`LoadCancel::cancel`] on it from another thread to stop a session creation that uses these options.
    pub fn load_cancel(&mut self) -> LoadCancel {
        self.load_cancel.get_or_insert_with(LoadCancel::new).clone()
    }

    /// `Err(Cancelled)` when the options' token is cancelled; `what` names the phase.
    pub(crate) fn check_load_cancel(&self, what: &str) -> Result<()> {
        match &self.load_cancel {
            Some(t) => t.check(what),
            None => Ok(()),
        }
    }

    /// Adds (or replaces) a session config entry.
    pub fn config_entry(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        match self.config_entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = value,
            None => self.config_entries.push((key, value)),
        }
        self
    }

    /// Adds a VitisAI provider option (legacy names accepted), validating it with every option given so far: a bad
    /// value is an error naming the option and leaves the options unchanged.
    pub fn vitisai_option(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<&mut Self> {
        self.vitisai_options.push((key.into(), value.into()));
        if let Err(e) = crate::ipu::options::normalize(&self.vitisai_options) {
            self.vitisai_options.pop();
            return Err(e);
        }
        Ok(self)
    }

    /// Sets the fallback policy and the minimum share of nodes on the NPU (0..=1).
    pub fn fallback_policy(
        &mut self,
        policy: FallbackPolicy,
        min_npu_fraction: f64,
    ) -> Result<&mut Self> {
        self.min_npu_fraction = NpuFraction::new(min_npu_fraction)?;
        self.fallback = Some(policy);
        Ok(self)
    }

    /// Appends an execution provider by ONNX Runtime's name ("XNNPACK", "OpenVINO", ...) with its options. The
    /// VitisAI EP is refused here: use `device` (it applies the fallback policy and the cache key).
    pub fn execution_provider(
        &mut self,
        name: &str,
        options: Vec<(String, String)>,
    ) -> Result<&mut Self> {
        if name.trim().is_empty() {
            return Err(Error::invalid_argument("execution provider name is empty"));
        }
        c_string(name, "execution provider name")?;
        if name.to_ascii_lowercase().starts_with("vitisai") {
            return Err(Error::invalid_argument(format!(
                "execution provider '{name}': the VitisAI EP is selected with the session device (IPU or AUTO) and \
                 its options with the VitisAI provider options, so that the fallback policy and cache key apply"
            )));
        }
        for (k, v) in &options {
            if k.is_empty() {
                return Err(Error::invalid_argument(format!(
                    "execution provider '{name}': an option has an empty key"
                )));
            }
            c_string(k, "execution provider option key")?;
            c_string(v, "execution provider option value")?;
        }
        self.execution_providers.push(ExecutionProvider {
            name: name.to_string(),
            options,
        });
        Ok(self)
    }

    /// Checks the settings without ONNX Runtime: thread counts in range, no NULs or empty keys.
    pub fn validate(&self) -> Result<()> {
        for (n, what) in [
            (self.intra_op_threads, "intra_op_threads"),
            (self.inter_op_threads, "inter_op_threads"),
        ] {
            if let Some(n) = n {
                crate::limits::check_threads(&format!("session option {what}"), n)?;
            }
        }
        for (k, v) in &self.config_entries {
            if k.is_empty() {
                return Err(Error::invalid_argument(
                    "session config entry with an empty key",
                ));
            }
            c_string(k, "session config key")?;
            c_string(v, "session config value")?;
        }
        if let Some(id) = &self.log_id {
            c_string(id, "session log id")?;
        }
        // EP-context export entries and `ep.vitisaiexecutionprovider.*` values.
        crate::ipu::options::validate_session_config(&self.config_entries)?;
        crate::ipu::options::normalize(&self.vitisai_options)?;
        Ok(())
    }

    /// Creates an `OrtSessionOptions` carrying these settings, for a session in `env`.
    pub(crate) fn build(&self, env: &Environment) -> Result<RawSessionOptions> {
        self.validate()?;
        self.check_load_cancel("before the session options were built")?;
        let rt = env.runtime();
        let mut raw = std::ptr::null_mut();
        ort_call!(rt, CreateSessionOptions(&mut raw))?;
        let mut opts = RawSessionOptions {
            rt,
            raw,
            cancel: None,
        };
        let raw = opts.raw;
        if let Some(token) = &self.load_cancel {
            // From here until the options are released, `cancel` also sets ONNX Runtime's own flag on them.
            opts.cancel = Some((token.clone(), token.register(rt, raw)?));
        }

        if env.has_global_thread_pools() {
            if self.intra_op_threads.is_some() || self.inter_op_threads.is_some() {
                return Err(Error::invalid_argument(
                    "the environment has global thread pools: set thread counts on the environment, not on the session",
                ));
            }
            ort_call!(rt, DisablePerSessionThreads(raw))?;
        }
        if let Some(n) = self.intra_op_threads {
            ort_call!(rt, SetIntraOpNumThreads(raw, n as i32))?;
        }
        if let Some(n) = self.inter_op_threads {
            ort_call!(rt, SetInterOpNumThreads(raw, n as i32))?;
        }
        use ort_sys::GraphOptimizationLevel as G;
        let level = match self.graph_optimization_level {
            GraphOptimizationLevel::Disable => G::ORT_DISABLE_ALL,
            GraphOptimizationLevel::Basic => G::ORT_ENABLE_BASIC,
            GraphOptimizationLevel::Extended => G::ORT_ENABLE_EXTENDED,
            GraphOptimizationLevel::All => G::ORT_ENABLE_ALL,
        };
        ort_call!(rt, SetSessionGraphOptimizationLevel(raw, level))?;
        let mode = match self.execution_mode {
            ExecutionMode::Sequential => ort_sys::ExecutionMode::ORT_SEQUENTIAL,
            ExecutionMode::Parallel => ort_sys::ExecutionMode::ORT_PARALLEL,
        };
        ort_call!(rt, SetSessionExecutionMode(raw, mode))?;
        if self.deterministic_compute {
            // SetDeterministicCompute is part of API 17, the minimum ipuflow loads.
            ort_call!(rt, SetDeterministicCompute(raw, true))?;
        }
        if self.memory_arena {
            ort_call!(rt, EnableCpuMemArena(raw))?;
        } else {
            ort_call!(rt, DisableCpuMemArena(raw))?;
        }
        if let Some(prefix) = &self.profiling_prefix {
            let p = os_string(prefix)?;
            ort_call!(rt, EnableProfiling(raw, p.as_ptr()))?;
        }
        if let Some(path) = &self.optimized_model_path {
            let p = os_string(path)?;
            ort_call!(rt, SetOptimizedModelFilePath(raw, p.as_ptr()))?;
        }
        if let Some(id) = &self.log_id {
            let id = c_string(id, "session log id")?;
            ort_call!(rt, SetSessionLogId(raw, id.as_ptr()))?;
        }
        if let Some(level) = self.log_level {
            ort_call!(rt, SetSessionLogSeverityLevel(raw, level as i32))?;
        }
        for (k, v) in &self.config_entries {
            let (kc, vc) = (
                c_string(k, "session config key")?,
                c_string(v, "session config value")?,
            );
            ort_call!(rt, AddSessionConfigEntry(raw, kc.as_ptr(), vc.as_ptr()))
                .map_err(|e| e.context(format!("session config entry '{k}' = '{v}'")))?;
        }
        Ok(opts)
    }
}

/// An `OrtSessionOptions` being prepared for one session creation; released on drop.
///
/// Code adding execution providers (the NPU) gets at the raw handle through [`RawSessionOptions::raw`].
pub(crate) struct RawSessionOptions {
    pub(crate) rt: &'static Runtime,
    raw: *mut OrtSessionOptions,
    /// The cancel token these options are registered with, and the registration id.
    cancel: Option<(LoadCancel, u64)>,
}

impl RawSessionOptions {
    pub(crate) fn raw(&self) -> *mut OrtSessionOptions {
        self.raw
    }
}

impl Drop for RawSessionOptions {
    fn drop(&mut self) {
        if let Some((token, id)) = &self.cancel {
            token.unregister(*id);
        }
        unsafe { ort_fn!(self.rt, ReleaseSessionOptions)(self.raw) };
    }
}
