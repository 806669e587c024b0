//! Where a session runs: the CPU, the Ryzen AI NPU (VitisAI execution provider) or "auto"; other execution
//! providers by name; the fallback policy; and where ONNX Runtime actually placed each node.
//!
//! Decisions (see shared/docs/ryzen-ai-flow.md for the facts):
//! - [`SessionDevice::Ipu`] appends the VitisAI EP (`SessionOptionsAppendExecutionProvider_VitisAI`, API 18) with
//!   the host's provider options, normalized by [`crate::ipu::options::normalize`]. [`SessionDevice::Auto`] does the
//!   same when [`crate::ipu::device::detect`] finds an NPU (its `target` is used unless the host gave one) and runs
//!   on the CPU otherwise.
//! - The compile-cache key defaults to [`crate::ipu::cache::ensure_cache_key`] over the model bytes, the runtime
//!   version and the options, so a new model, runtime or option set never loads a stale compiled model. A key the
//!   host set is kept. The key used is exposed ([`Execution::cache_key`]).
//! - The fallback policy decides what happens when the NPU is not used: [`FallbackPolicy::Strict`] fails with
//!   `ErrorKind::DeviceUnavailable` carrying ONNX Runtime's own reason verbatim; [`FallbackPolicy::Prefer`] creates
//!   the session on the CPU, records why ([`Execution::fallback_reason`]) and sends a warning to the environment's
//!   log callback. Default: `Strict` for `Ipu` (the host asked for the NPU), `Prefer` for `Auto`; an explicit policy
//!   applies to both.
//! - The NPU counts as used only when ONNX Runtime assigned at least one node to the VitisAI EP and at least the
//!   host's minimum fraction of all nodes ([`SessionOptions::min_npu_fraction`], default 0). A session with the EP
//!   but no node on it is a CPU session: "every op on CPU, test passed" is the complaint this prevents.
//! - The placement comes from ONNX Runtime itself (API 24+: `session.record_ep_graph_assignment_info=1`, then
//!   `Session_GetEpGraphAssignmentInfo`). On an older runtime it is [`Placement::Unavailable`] with the reason,
//!   never guessed; the minimum fraction then cannot be checked (Strict with a minimum > 0 fails, Prefer warns).
//!   ONNX Runtime records the graph as it partitions it among the EPs: after its basic (level 1) optimizations,
//!   before the EP-specific fusions of levels 2 and 3 (efficientnet-lite0: 456 nodes loaded, 94 placed; the level 3
//!   graph it runs has 53). So node counts match the graph the EPs were offered, which is what the VitisAI EP counts.
//! - The library never prints: warnings go to the environment's log callback when it has one, and are always kept
//!   in [`Execution::warnings`].

use std::path::Path;

use ort_sys::{OrtEpAssignedNode, OrtEpAssignedSubgraph, OrtSession, OrtSessionOptions};

use super::env::{Environment, LogLevel};
use super::ffi::c_string;
use super::loader::Runtime;
use super::options::{RawSessionOptions, SessionOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::ipu::report::{AssignedNode, AssignedSubgraph, EpAssignment, EpReport, VITISAI_EP};
use crate::onnx::proto::ModelProto;

/// The session config entry that makes ONNX Runtime (API 24+) record which EP each node was assigned to.
pub const RECORD_ASSIGNMENT_CONFIG: &str = "session.record_ep_graph_assignment_info";

/// The device a session is asked to run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum SessionDevice {
    /// ONNX Runtime's CPU execution provider only (the default).
    #[default]
    Cpu = 0,
    /// The Ryzen AI NPU through the VitisAI execution provider (CPU for the nodes it does not take).
    Ipu = 1,
    /// The NPU when one is detected and the EP works, else the CPU.
    Auto = 2,
}

try_from_i32!(SessionDevice { Cpu, Ipu, Auto });

/// What happens when the NPU was requested but cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum FallbackPolicy {
    /// Session creation fails with `DeviceUnavailable` and ONNX Runtime's reason.
    Strict = 0,
    /// The session runs on the CPU; the reason is recorded and logged.
    Prefer = 1,
}

try_from_i32!(FallbackPolicy { Strict, Prefer });

/// The device a created session actually runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceUsed {
    /// Every node on a CPU (ONNX Runtime's CPU EP, or any non-NPU provider).
    Cpu,
    /// At least the required share of nodes on the NPU (the rest on the CPU).
    Npu,
}

/// A fraction in [0, 1]; `Eq` because NaN is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct NpuFraction(f64);

impl Eq for NpuFraction {}

impl NpuFraction {
    /// `InvalidArgument` unless `0 <= v <= 1`.
    pub fn new(v: f64) -> Result<NpuFraction> {
        if v.is_finite() && (0.0..=1.0).contains(&v) {
            Ok(NpuFraction(v))
        } else {
            Err(Error::invalid_argument(format!(
                "minimum NPU node fraction {v} is not between 0 and 1"
            )))
        }
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

/// An execution provider appended by name (`SessionOptionsAppendExecutionProvider`), e.g. "XNNPACK".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionProvider {
    pub name: String,
    pub options: Vec<(String, String)>,
}

/// Where ONNX Runtime placed the nodes of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// ONNX Runtime's own assignment info.
    Available(EpAssignment),
    /// Not known, and why (runtime older than API 24, or recording turned off by the host).
    Unavailable(String),
}

impl Placement {
    pub fn assignment(&self) -> Option<&EpAssignment> {
        match self {
            Placement::Available(a) => Some(a),
            Placement::Unavailable(_) => None,
        }
    }

    /// (NPU nodes, all nodes), when known.
    pub fn npu_counts(&self) -> Option<(usize, usize)> {
        let a = self.assignment()?;
        let all = a.subgraphs.iter().map(|s| s.nodes.len()).sum();
        let npu = a
            .subgraphs
            .iter()
            .filter(|s| s.ep_name == VITISAI_EP)
            .map(|s| s.nodes.len())
            .sum();
        Some((npu, all))
    }

    /// "NPU n of m nodes (p%)", or "placement unavailable: <why>".
    pub fn describe(&self) -> String {
        match (self.npu_counts(), self) {
            (Some((npu, all)), _) => {
                format!("{npu} of {all} nodes ({}) on the NPU", percent(npu, all))
            }
            (None, Placement::Unavailable(why)) => format!("placement unavailable: {why}"),
            (None, _) => String::new(),
        }
    }
}

fn percent(n: usize, all: usize) -> String {
    if all == 0 {
        "0%".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / all as f64)
    }
}

/// How a session was created: what was asked, what runs, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub requested: SessionDevice,
    pub device_used: DeviceUsed,
    /// Why the NPU is not used although it was requested ("" when it is, or when the CPU was requested).
    pub fallback_reason: String,
    /// The VitisAI compile-cache key computed for the EP (kept after a fallback, so the host can clear that cache
    /// entry); `None` when the NPU was not attempted (CPU requested, or AUTO found no NPU).
    pub cache_key: Option<String>,
    /// The VitisAI provider options prepared for the EP (normalized, with `target` and `cache_key`); empty when the
    /// NPU was not attempted.
    pub provider_options: Vec<(String, String)>,
    /// Non-fatal remarks (option warnings, detection notes, fallback).
    pub warnings: Vec<String>,
    pub placement: Placement,
    /// How a session on the CPU runs its model (see [`super::cpu_plan`]); `None` for a session on the NPU.
    pub cpu_plan: Option<super::cpu_plan::CpuPlan>,
}

impl Execution {
    /// The placement as a `vitisai_ep_report.json`-shaped report (empty when unavailable).
    pub fn report(&self) -> EpReport {
        self.placement
            .assignment()
            .map(EpReport::from_assignment)
            .unwrap_or_default()
    }

    /// The report as JSON, plus a `session` object (requested device, device used, fallback reason, cache key),
    /// `onnxRuntimeSubgraphs` (ONNX Runtime's raw partition: `ep`, `nodeNum`, `nodes` per entry) and, when the
    /// placement is unknown, `"unavailable": "<why>"`.
    pub fn report_json(&self) -> String {
        let mut v = serde_json::to_value(self.report()).unwrap_or_else(|_| serde_json::json!({}));
        if let serde_json::Value::Object(m) = &mut v {
            if let Placement::Unavailable(why) = &self.placement {
                m.insert("unavailable".into(), why.clone().into());
            }
            // ONNX Runtime's own partition, as it gave it (one entry per CPU node, for example): for a host that
            // needs its numbering. `subgraphStat` and each node's `subgraph` use ipuflow's one definition.
            if let Some(a) = self.placement.assignment() {
                let raw: Vec<serde_json::Value> = a
                    .subgraphs
                    .iter()
                    .map(|sg| {
                        serde_json::json!({
                            "ep": sg.ep_name,
                            "nodeNum": sg.nodes.len(),
                            "nodes": sg.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                m.insert("onnxRuntimeSubgraphs".into(), raw.into());
            }
            m.insert(
                "session".into(),
                serde_json::json!({
                    "requestedDevice": match self.requested { SessionDevice::Cpu => "CPU", SessionDevice::Ipu => "IPU", SessionDevice::Auto => "AUTO" },
                    "deviceUsed": match self.device_used { DeviceUsed::Cpu => "CPU", DeviceUsed::Npu => "NPU" },
                    "fallbackReason": self.fallback_reason,
                    "cacheKey": self.cache_key.clone().unwrap_or_default(),
                    "cpuPlan": self.cpu_plan.as_ref().map(|p| p.to_json_value()),
                }),
            );
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}

/// Where the model comes from (for the default cache key).
pub(crate) enum ModelSource<'a> {
    File(&'a Path),
    /// Encoded bytes, and the same model already decoded when the caller has it (the CPU plan then skips a decode,
    /// and a copy when it is owned: the plan takes it).
    Bytes(&'a [u8], Option<Box<std::borrow::Cow<'a, ModelProto>>>),
}

/// What the NPU part of a creation will do.
struct NpuPlan {
    policy: FallbackPolicy,
    /// Normalized VitisAI options with target and cache key; `None`: the NPU is not attempted.
    options: Option<Vec<(String, String)>>,
    cache_key: Option<String>,
    /// Why the NPU is not attempted (AUTO without a detected device).
    skipped: Option<String>,
    warnings: Vec<String>,
}

fn plan(rt: &Runtime, options: &SessionOptions, source: &ModelSource<'_>) -> Result<NpuPlan> {
    let policy = options.fallback.unwrap_or(match options.device {
        SessionDevice::Auto => FallbackPolicy::Prefer,
        _ => FallbackPolicy::Strict,
    });
    let mut p = NpuPlan {
        policy,
        options: None,
        cache_key: None,
        skipped: None,
        warnings: Vec::new(),
    };
    if options.device == SessionDevice::Cpu {
        return Ok(p);
    }
    let mut po = crate::ipu::options::normalize(&options.vitisai_options)?;
    p.warnings.append(&mut po.warnings);
    if options.device == SessionDevice::Auto {
        let scan = crate::ipu::device::detect()?;
        match scan.devices.first() {
            None => {
                let mut why = scan.source.clone();
                for w in &scan.warnings {
                    why.push_str("; ");
                    why.push_str(w);
                }
                p.skipped = Some(format!("AUTO: no Ryzen AI NPU was found ({why})"));
                return Ok(p);
            }
            Some(d) => {
                p.warnings.extend(d.notes.iter().cloned());
                if po.get("target").is_none() {
                    po.entries.push(("target".into(), d.target.as_str().into()));
                }
            }
        }
    }
    let key = if po.get("cache_key").is_some() {
        crate::ipu::cache::ensure_cache_key(&mut po, &[], rt.version())
    } else {
        let bytes;
        let model: &[u8] = match source {
            ModelSource::Bytes(b, _) => b,
            ModelSource::File(path) => {
                bytes = crate::onnx::fs::read_regular(path)?;
                &bytes
            }
        };
        crate::ipu::cache::ensure_cache_key(&mut po, model, rt.version())
    };
    p.cache_key = Some(key);
    p.options = Some(po.entries);
    Ok(p)
}

/// The base options (everything but the NPU) with the assignment recording and the generic providers.
fn base_options(env: &Environment, options: &SessionOptions) -> Result<RawSessionOptions> {
    let rt = env.runtime();
    let raw = options.build(env)?;
    if rt.api_version() >= 24
        && !options
            .config_entries
            .iter()
            .any(|(k, _)| k == RECORD_ASSIGNMENT_CONFIG)
    {
        let (k, v) = (
            c_string(RECORD_ASSIGNMENT_CONFIG, "session config key")?,
            c_string("1", "session config value")?,
        );
        ort_call!(rt, AddSessionConfigEntry(raw.raw(), k.as_ptr(), v.as_ptr()))?;
    }
    for ep in &options.execution_providers {
        let name = c_string(&ep.name, "execution provider name")?;
        let (keys, values) = c_pairs(&ep.options, "execution provider option")?;
        let (kp, vp) = (ptrs(&keys), ptrs(&values));
        ort_call!(
            rt,
            SessionOptionsAppendExecutionProvider(
                raw.raw(),
                name.as_ptr(),
                kp.as_ptr(),
                vp.as_ptr(),
                kp.len()
            )
        )
        .map_err(|e| e.context(format!("cannot append execution provider '{}'", ep.name)))?;
    }
    Ok(raw)
}

fn c_pairs(
    pairs: &[(String, String)],
    what: &str,
) -> Result<(Vec<std::ffi::CString>, Vec<std::ffi::CString>)> {
    let mut ks = Vec::with_capacity(pairs.len());
    let mut vs = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        ks.push(c_string(k, &format!("{what} key"))?);
        vs.push(c_string(v, &format!("{what} value"))?);
    }
    Ok((ks, vs))
}

fn ptrs(v: &[std::ffi::CString]) -> Vec<*const std::ffi::c_char> {
    v.iter().map(|c| c.as_ptr()).collect()
}

/// Appends the VitisAI EP; the error text is ONNX Runtime's own (or the API-version refusal).
fn append_vitisai(
    rt: &Runtime,
    raw: *mut OrtSessionOptions,
    opts: &[(String, String)],
) -> std::result::Result<(), String> {
    rt.require_api(18, "SessionOptionsAppendExecutionProvider_VitisAI")
        .map_err(|e| e.message().to_string())?;
    let (keys, values) = c_pairs(opts, "VitisAI option").map_err(|e| e.message().to_string())?;
    let (kp, vp) = (ptrs(&keys), ptrs(&values));
    let f = ort_fn!(rt, SessionOptionsAppendExecutionProvider_VitisAI);
    let status = unsafe { f(raw, kp.as_ptr(), vp.as_ptr(), kp.len()) };
    super::ffi::take_status(rt, status).map_err(|e| e.message)
}

fn release(rt: &Runtime, s: *mut OrtSession) {
    if !s.is_null() {
        unsafe { ort_fn!(rt, ReleaseSession)(s) };
    }
}

/// Creates a session with the device, providers and fallback policy of `options`. `create` makes the session from
/// prepared `OrtSessionOptions` (file or bytes). Returns the session (owned by the caller) and how it runs.
pub(crate) fn create(
    env: &Environment,
    options: &SessionOptions,
    mut source: ModelSource<'_>,
    create: &dyn Fn(*mut OrtSessionOptions) -> Result<*mut OrtSession>,
) -> Result<(*mut OrtSession, Execution)> {
    let rt = env.runtime();
    options.validate()?;
    let plan = plan(rt, options, &source)?;
    let mut exec = Execution {
        requested: options.device,
        device_used: DeviceUsed::Cpu,
        fallback_reason: String::new(),
        cache_key: None,
        provider_options: Vec::new(),
        warnings: plan.warnings.clone(),
        placement: Placement::Unavailable(String::new()),
        cpu_plan: None,
    };
    let strict = plan.policy == FallbackPolicy::Strict;

    // 1. The NPU attempt; 2. did the NPU take enough of the graph?
    let mut reason: Option<String> = plan.skipped.clone();
    if let (Some(reason), true) = (&reason, strict) {
        return Err(unavailable(&format!("{reason} (fallback policy STRICT)")));
    }
    let mut session: *mut OrtSession = std::ptr::null_mut();
    if let Some(npu_opts) = &plan.options {
        exec.cache_key = plan.cache_key.clone();
        exec.provider_options = npu_opts.clone();
        match npu_session(env, options, npu_opts, strict, create)? {
            Ok(s) => session = s,
            Err(r) => reason = Some(r),
        }
    }
    if !session.is_null() {
        if let Some(r) = keep_npu_session(rt, &mut session, options, strict, &mut exec)? {
            reason = Some(r);
        }
    }

    // 3. The CPU session (requested, or the fallback).
    if session.is_null() {
        let raw = base_options(env, options)?;
        let (s, cpu_plan) = cpu_session(env, raw.raw(), options, &mut source, create)?;
        session = s;
        exec.cpu_plan = Some(cpu_plan);
        exec.placement = read_placement(rt, session, options);
        exec.device_used = DeviceUsed::Cpu;
    }
    if let Some(r) = reason {
        record_fallback(env, &mut exec, r);
    }
    connect_placement(&mut exec.placement, &source);
    for w in &plan.warnings {
        env.log(LogLevel::Warning, w);
    }
    Ok((session, exec))
}

fn unavailable(reason: &str) -> Error {
    Error::new(ErrorKind::DeviceUnavailable, reason.to_string())
}

/// Creates the session with the VitisAI EP. `Ok(Err(reason))` when it failed and the policy allows the CPU
/// fallback; an error when it failed under STRICT.
fn npu_session(
    env: &Environment,
    options: &SessionOptions,
    npu_opts: &[(String, String)],
    strict: bool,
    create: &dyn Fn(*mut OrtSessionOptions) -> Result<*mut OrtSession>,
) -> Result<std::result::Result<*mut OrtSession, String>> {
    let raw = base_options(env, options)?;
    if let Err(ort_reason) = append_vitisai(env.runtime(), raw.raw(), npu_opts) {
        let r = format!("the VitisAI execution provider could not be added: {ort_reason}");
        if strict {
            return Err(unavailable(&r));
        }
        return Ok(Err(r));
    }
    match create(raw.raw()) {
        Ok(s) => Ok(Ok(s)),
        Err(e) if !strict => Ok(Err(format!(
            "creating the session with the VitisAI execution provider failed: {}",
            e.message()
        ))),
        Err(e) => Err(e.context("creating the session with the VitisAI execution provider")),
    }
}

/// Why the NPU's share of the graph is not enough (`None` when it is, or when nothing is required).
fn npu_shortfall(placement: &Placement, min: f64) -> Option<String> {
    match placement.npu_counts() {
        Some((0, all)) => Some(format!("no node was assigned to the NPU (0 of {all} nodes)")),
        Some((npu, all)) if (npu as f64) < min * all as f64 => Some(format!(
            "{npu} of {all} nodes ({}) were assigned to the NPU, below the required minimum of {:.1}%",
            percent(npu, all),
            min * 100.0
        )),
        Some(_) => None,
        None if min > 0.0 => Some(format!(
            "the minimum NPU node fraction {min} cannot be checked: {}",
            placement.describe()
        )),
        None => None,
    }
}

/// Reads the NPU session's placement and keeps the session when the NPU took enough; otherwise releases it (setting
/// `session` to null) and returns the fallback reason, or fails under STRICT.
fn keep_npu_session(
    rt: &Runtime,
    session: &mut *mut OrtSession,
    options: &SessionOptions,
    strict: bool,
    exec: &mut Execution,
) -> Result<Option<String>> {
    exec.placement = read_placement(rt, *session, options);
    match npu_shortfall(&exec.placement, options.min_npu_fraction.get()) {
        None => exec.device_used = DeviceUsed::Npu,
        Some(r) if strict => {
            release(rt, *session);
            *session = std::ptr::null_mut();
            return Err(unavailable(&r));
        }
        Some(r) if exec.placement.assignment().is_none() => {
            // Prefer, placement unknown: keep the NPU session, say that the minimum was not checked.
            exec.device_used = DeviceUsed::Npu;
            exec.warnings.push(r);
        }
        Some(r) => {
            release(rt, *session);
            *session = std::ptr::null_mut();
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// Says (in the log and the execution record) why the NPU was requested but the CPU runs the session.
fn record_fallback(env: &Environment, exec: &mut Execution, reason: String) {
    let r = format!(
        "{reason}; the session runs on the CPU ({})",
        exec.placement.describe()
    );
    env.log(
        LogLevel::Warning,
        &format!("NPU requested but not used: {r}"),
    );
    exec.warnings.push(format!("fallback to the CPU: {r}"));
    exec.fallback_reason = r;
}

/// The CPU session: the model through the CPU plan when it rewrites it (ONNX Runtime refusing the rewritten model
/// falls back to the model as written, with the reason in the plan), else the model as the host gave it.
fn cpu_session(
    env: &Environment,
    raw: *mut OrtSessionOptions,
    options: &SessionOptions,
    source: &mut ModelSource<'_>,
    create: &dyn Fn(*mut OrtSessionOptions) -> Result<*mut OrtSession>,
) -> Result<(*mut OrtSession, super::cpu_plan::CpuPlan)> {
    use super::cpu_plan::{prepare, FallbackExecution, PlanInput};
    let rt = env.runtime();
    let cache_dir = options
        .vitisai_options
        .iter()
        .rev()
        .find(|(k, _)| k == "cache_dir" || k == "cacheDir")
        .map(|(_, v)| std::path::PathBuf::from(v));
    let mode = options.fallback_execution;
    let prepared = match (mode, source) {
        (FallbackExecution::AsWritten, _) => {
            prepare(PlanInput::Bytes(&[], None), mode, None, rt.version())
        }
        (_, ModelSource::Bytes(b, decoded)) => {
            // The plan takes the decoded model; the placement then reads the nodes from the bytes (0.4 ms).
            let input = match decoded.take() {
                Some(m) => PlanInput::Decoded(b, m),
                None => PlanInput::Bytes(b, None),
            };
            prepare(input, mode, cache_dir.as_deref(), rt.version())
        }
        (_, ModelSource::File(p)) => {
            let bytes = crate::onnx::fs::read_regular(p)?;
            prepare(
                PlanInput::Bytes(&bytes, p.parent()),
                mode,
                cache_dir.as_deref(),
                rt.version(),
            )
        }
    };
    let mut report = prepared.report;
    if let Some(bytes) = prepared.bytes {
        let mut s = std::ptr::null_mut();
        let made = ort_call!(
            rt,
            CreateSessionFromArray(env.raw(), bytes.as_ptr().cast(), bytes.len(), raw, &mut s)
        );
        match made {
            Ok(()) => return Ok((s, report)),
            Err(e) => {
                let why = format!("ONNX Runtime refused the rewritten model ({})", e.message());
                env.log(LogLevel::Warning, &format!("CPU plan not used: {why}"));
                report.plan = super::cpu_plan::PlanKind::AsWritten;
                report.reason = why;
            }
        }
    }
    Ok((create(raw)?, report))
}

/// Gives the placed nodes their tensors from the model (by node name), so that the report's subgraphs follow the one
/// definition (maximal connected groups on one device) rather than ONNX Runtime's one entry per CPU node. A model
/// that cannot be read again leaves the nodes unconnected (counted in `nodesWithoutTensors`).
fn connect_placement(placement: &mut Placement, source: &ModelSource<'_>) {
    let Placement::Available(a) = placement else {
        return;
    };
    // Only the nodes: a whole second decode cost 19-36 % of session creation on a 69 MB model, the nodes 0.4 ms.
    let model = match source {
        ModelSource::Bytes(_, Some(m)) => return a.fill_io_from_model(m),
        ModelSource::File(path) => crate::onnx::nodes_only::nodes_only_of_file(path),
        ModelSource::Bytes(b, None) => crate::onnx::nodes_only::nodes_only(b),
    };
    if let Ok(m) = model {
        a.fill_io_from_model(&m);
    }
}

fn read_placement(rt: &Runtime, session: *mut OrtSession, options: &SessionOptions) -> Placement {
    if options
        .config_entries
        .iter()
        .any(|(k, v)| k == RECORD_ASSIGNMENT_CONFIG && v.trim() != "1")
    {
        return Placement::Unavailable(format!(
            "the session config sets '{RECORD_ASSIGNMENT_CONFIG}' to a value other than 1"
        ));
    }
    match read_assignment(rt, session) {
        Ok(a) => Placement::Available(a),
        Err(e) => Placement::Unavailable(e.message().to_string()),
    }
}

fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned()
    }
}

/// ONNX Runtime's EP graph-assignment info of a session (API 24+; recording must have been enabled).
fn read_assignment(rt: &Runtime, session: *mut OrtSession) -> Result<EpAssignment> {
    rt.require_api(
        24,
        "the EP graph assignment info (Session_GetEpGraphAssignmentInfo)",
    )?;
    let mut subs: *const *const OrtEpAssignedSubgraph = std::ptr::null();
    let mut n = 0usize;
    ort_call!(
        rt,
        Session_GetEpGraphAssignmentInfo(session, &mut subs, &mut n)
    )?;
    let mut out = EpAssignment::default();
    for i in 0..n {
        let sg = unsafe { *subs.add(i) };
        let mut name = std::ptr::null();
        ort_call!(rt, EpAssignedSubgraph_GetEpName(sg, &mut name))?;
        let mut nodes: *const *const OrtEpAssignedNode = std::ptr::null();
        let mut m = 0usize;
        ort_call!(rt, EpAssignedSubgraph_GetNodes(sg, &mut nodes, &mut m))?;
        let mut sub = AssignedSubgraph {
            ep_name: cstr(name),
            nodes: Vec::with_capacity(m),
        };
        for j in 0..m {
            let node = unsafe { *nodes.add(j) };
            let (mut nm, mut dom, mut op) = (std::ptr::null(), std::ptr::null(), std::ptr::null());
            ort_call!(rt, EpAssignedNode_GetName(node, &mut nm))?;
            ort_call!(rt, EpAssignedNode_GetDomain(node, &mut dom))?;
            ort_call!(rt, EpAssignedNode_GetOperatorType(node, &mut op))?;
            sub.nodes.push(AssignedNode {
                name: cstr(nm),
                domain: cstr(dom),
                op_type: cstr(op),
                ..Default::default()
            });
        }
        out.subgraphs.push(sub);
    }
    Ok(out)
}
