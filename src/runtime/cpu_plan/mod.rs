//! The CPU execution plan: a model quantized for the NPU, rewritten in memory so that ONNX Runtime's CPU provider
//! fuses its QDQ groups into integer kernels (QLinearConv, QGemm, QLinearMatMul, QLinearAdd...).
//!
//! Why: NPU formats (XINT8, A8W8, A16W8) run 3–4× slower than the float model on ONNX Runtime's CPU provider,
//! because its x86 fusions take uint8 activations with int32 biases and a Q right after each fused op, and no 16-bit
//! activations at all (issue 14). The plan, chosen by [`FallbackExecution`]:
//! - **integer** (8-bit activations, `Fast` and `Faithful`): int8 activations → uint8 (zero point + 128), int8 or
//!   power-of-two biases → int32 at `scale_x * scale_w`, producer → Relu/Clip → Q → producer → Q → integer Clip, a
//!   DequantizeLinear read by several nodes split per reader. Every quantized tensor stays within 1 LSB of ONNX
//!   Runtime's execution of the model as written (the rewrites are exact; ONNX Runtime's fused kernels requantize
//!   in one step instead of dequantize → float op → quantize). See [`rewrite`] for each rule and its source.
//! - **float activations** (16-bit activations under `Fast`): weights dequantized once into float initializers and
//!   every activation Q → DQ pair removed, so the model runs as float with the quantized weights: float speed, and
//!   closer to the float model than the 16-bit QDQ (which ONNX Runtime's CPU provider cannot run as integers). A
//!   model from ipuflow's quantizer says which Qs fold the model's own Relu/Clip ([`FOLDED_ACTIVATIONS_KEY`]): those
//!   become that Relu/Clip again and the other pairs (calibrated ranges) go without a clamp, a bounded change that
//!   lets ONNX Runtime fuse Conv + Add. Without the record every pair becomes a float Clip to the Q's range (a
//!   quantizer may have folded an activation into any range), so only the rounding goes.
//! - Under `Fast`, an 8-bit model with fewer than [`INTEGER_PLAN_MIN_WEIGHTS`] quantized weights also takes the
//!   float-activation plan (a modelled decision from measurements: integer kernels lose on tiny models); the report
//!   says so.
//! - **as written**: `Faithful` keeps 16-bit QDQ as written (bit-faithful, slow); `AsWritten` never rewrites.
//!
//! The rewrite never touches the user's file: it lives in a per-process cache keyed by the model bytes, the mode and
//! the plan version, and is written to disk only under the session's cache directory when the host gave one
//! (`<cache_dir>/ipuflow-cpu-plan/<key>.onnx` + `.json`, the key derived like the compile cache's).
//!
//! This module depends only on `crate::onnx`.

mod rewrite;
mod tensor;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use rewrite::Change;

use crate::error::Result;
use crate::onnx::proto::ModelProto;
use crate::onnx::Model;

/// How a session that runs a quantized model on the CPU executes it (session option `fallback_execution`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(i32)]
pub enum FallbackExecution {
    /// The fastest plan: exact integer rewrites for 8-bit activations, float activations for 16-bit ones.
    #[default]
    Fast = 0,
    /// Only the exact integer rewrites (within 1 LSB of the model as written); 16-bit QDQ runs as written.
    Faithful = 1,
    /// No rewrite: ONNX Runtime gets the model as written.
    AsWritten = 2,
}

impl TryFrom<i32> for FallbackExecution {
    type Error = ();
    fn try_from(v: i32) -> std::result::Result<Self, ()> {
        Ok(match v {
            0 => Self::Fast,
            1 => Self::Faithful,
            2 => Self::AsWritten,
            _ => return Err(()),
        })
    }
}

impl FallbackExecution {
    /// "fast", "faithful" or "as_written".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Faithful => "faithful",
            Self::AsWritten => "as_written",
        }
    }

    /// Parses "fast", "faithful" or "as_written" (also "as-written"), case-insensitively.
    pub fn parse(s: &str) -> Option<FallbackExecution> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "fast" => Some(Self::Fast),
            "faithful" => Some(Self::Faithful),
            "as_written" => Some(Self::AsWritten),
            _ => None,
        }
    }
}

/// Which plan ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanKind {
    /// QDQ rewritten so ONNX Runtime fuses it into integer kernels.
    Integer,
    /// Weights dequantized, activation Q/DQ removed: the model runs in float.
    FloatActivations,
    /// The model as written (nothing to rewrite, not a QDQ model, or the host asked for it).
    AsWritten,
}

/// What the CPU plan did for one session: the plan, why, and each rewrite with its count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuPlan {
    /// The session option: "fast", "faithful" or "as_written".
    pub mode: FallbackExecution,
    pub plan: PlanKind,
    /// Why this plan (one sentence).
    pub reason: String,
    pub changes: Vec<Change>,
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Where the rewritten model came from: "rewritten", "process cache", "disk cache" ("" when none).
    pub source: String,
    /// The file the plan was written to or read from under the host's cache directory ("" when none).
    pub cache_file: String,
    /// Microseconds spent decoding, rewriting and encoding (or reading the cache).
    pub prepare_us: u64,
}

impl CpuPlan {
    fn as_written(mode: FallbackExecution, reason: impl Into<String>, nodes: usize) -> CpuPlan {
        CpuPlan {
            mode,
            plan: PlanKind::AsWritten,
            reason: reason.into(),
            changes: Vec::new(),
            nodes_before: nodes,
            nodes_after: nodes,
            source: String::new(),
            cache_file: String::new(),
            prepare_us: 0,
        }
    }

    /// One line: "integer plan (fast): 33 Relu/Clip ..., 50 biases ...".
    pub fn describe(&self) -> String {
        let plan = match self.plan {
            PlanKind::Integer => "integer plan",
            PlanKind::FloatActivations => "float-activation plan",
            PlanKind::AsWritten => "model as written",
        };
        let mut s = format!("{plan} ({}): {}", self.mode.as_str(), self.reason);
        if !self.changes.is_empty() {
            let parts: Vec<String> = self
                .changes
                .iter()
                .map(|c| format!("{} {}", c.count, c.rewrite))
                .collect();
            s.push_str(&format!(" [{}]", parts.join("; ")));
        }
        s
    }

    /// The plan as a JSON object (camelCase keys).
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}))
    }
}

/// Below this many quantized weight values, `Fast` runs an 8-bit model with float activations instead of integer
/// kernels: per-node quantize/requantize overheads dominate small models. Measured on the shared models (one thread,
/// ONNX Runtime 1.32, bench/results/cpu_plan.md): EfficientNet-Lite0 (4.6 M weights) integer plan 2.2x float,
/// hand-landmark-lite (1.0 M) 1.3x, BlazeFace (0.1 M) 0.8x float.
pub const INTEGER_PLAN_MIN_WEIGHTS: usize = 500_000;

/// Version of the rewrite rules; bump when any rewrite changes so cached plans are not reused.
const PLAN_VERSION: &str = "ipuflow/cpu-plan/v5";

/// What of the CPU a plan depends on (part of the cache key: a plan made on one CPU is not reused on another kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// ONNX Runtime's U8S8 kernels (uint8 activations, int8 weights) are not exact here: on x86 without VNNI they
    /// add pairs of u8·s8 products in saturating int16 (`vpmaddubsw`); a Conv's output then differs by up to 255
    /// LSB from the QDQ model's (measured on the shared models, bench/results/cpu_plan.md). The plan then gives
    /// the weights uint8 (the U8U8 kernels widen to 32 bits first).
    pub u8s8_saturates: bool,
}

impl Host {
    /// This process's CPU.
    pub fn this() -> Host {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        let u8s8_saturates = !(std::is_x86_feature_detected!("avx512vnni")
            || std::is_x86_feature_detected!("avxvnni"));
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        let u8s8_saturates = false;
        Host { u8s8_saturates }
    }

    fn key(self) -> &'static str {
        if self.u8s8_saturates {
            "u8s8-saturates"
        } else {
            "u8s8-exact"
        }
    }
}

/// Metadata key of ipuflow's quantizer's record of the activation Qs that fold the model's own Relu/Clip
/// (written by `quant::qdq::clamp_record`; read by the float-activation plan, see [`rewrite::float_activations`]).
pub const FOLDED_ACTIVATIONS_KEY: &str = "ipuflow_qdq.folded_activations";

/// The quantizer's record: folded tensor -> the activation's own (lo, hi), hi infinite for a Relu. `None` when the
/// model has no record (another tool's model) or one this version cannot read.
fn folded_activations(model: &ModelProto) -> Option<HashMap<String, (f32, f32)>> {
    let entry = model
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some(FOLDED_ACTIVATIONS_KEY))?;
    let v: serde_json::Value = serde_json::from_str(entry.value.as_deref()?).ok()?;
    if v["version"] != 1 {
        return None;
    }
    let mut out = HashMap::new();
    for (t, b) in v["folded"].as_object()? {
        let lo = b.get(0)?.as_f64()? as f32;
        let hi = match b.get(1)? {
            serde_json::Value::Null => f32::INFINITY,
            h => h.as_f64()? as f32,
        };
        out.insert(t.clone(), (lo, hi));
    }
    Some(out)
}

fn push(changes: &mut Vec<Change>, rewrite: &str, count: usize, exact: bool) {
    if count > 0 {
        changes.push(Change {
            rewrite: rewrite.to_string(),
            count,
            exact,
        });
    }
}

fn opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref().unwrap_or(""), "" | "ai.onnx"))
        .and_then(|o| o.version)
        .unwrap_or(1)
}

/// Plans a model for ONNX Runtime's CPU provider. Returns the rewritten model (`None` when the plan is to run the
/// model as written) and the report. Pure: no I/O, no cache.
pub fn plan_model(model: &ModelProto, mode: FallbackExecution) -> (Option<ModelProto>, CpuPlan) {
    plan_model_for(model, mode, Host::this())
}

/// [`plan_model`] for the CPU `host` describes (tests plan for both kinds on any machine).
pub fn plan_model_for(
    model: &ModelProto,
    mode: FallbackExecution,
    host: Host,
) -> (Option<ModelProto>, CpuPlan) {
    if mode == FallbackExecution::AsWritten {
        return plan_owned(ModelProto::default(), mode, host);
    }
    plan_owned(model.clone(), mode, host)
}

/// [`plan_model_for`] on a model it may consume (no copy of the weights).
fn plan_owned(
    model: ModelProto,
    mode: FallbackExecution,
    host: Host,
) -> (Option<ModelProto>, CpuPlan) {
    let nodes = model.graph.as_ref().map_or(0, |g| g.node.len());
    if mode == FallbackExecution::AsWritten {
        return (
            None,
            CpuPlan::as_written(
                mode,
                "the session option fallback_execution is as_written",
                nodes,
            ),
        );
    }
    let Some(g) = model.graph.as_ref() else {
        return (None, CpuPlan::as_written(mode, "the model has no graph", 0));
    };
    // One index for the two read-only scans of the model as given.
    let ix = rewrite::Index::new(g);
    let types = rewrite::activation_types(g, &ix);
    if types.is_empty() {
        return (
            None,
            CpuPlan::as_written(mode, "not a QDQ model (no quantized activations)", nodes),
        );
    }
    let wide = types.iter().any(|&t| rewrite::is_16bit(t));
    let weights = rewrite::quantized_weight_count(g, &ix);
    let per_channel = rewrite::per_channel_int8_weights(g, &ix);
    let opset = opset(&model);
    let mut out = model;
    let mut changes = Vec::new();
    let folded = folded_activations(&out);
    let g = out.graph.as_mut().expect("graph checked above");
    let small = !wide && mode == FallbackExecution::Fast && weights < INTEGER_PLAN_MIN_WEIGHTS;
    // Per-channel int8 weights cannot take the uint8 shift (see `rewrite::int8_weights_to_uint8`): on a CPU where
    // the U8S8 kernels saturate, `Fast` runs them as float rather than wrong (BlazeFace's CPU preset: -4.9 dB against
    // float through ONNX Runtime's fused kernels on such a CPU).
    let saturating = host.u8s8_saturates && per_channel > 0;
    let (plan, reason) = if small {
        float_activation_plan(g, folded.as_ref(), &mut changes);
        (
            PlanKind::FloatActivations,
            format!(
                "small model ({weights} quantized weights < {INTEGER_PLAN_MIN_WEIGHTS}): ONNX Runtime's integer \
                 kernels cost more than they save here, float activations are faster (modelled)"
            ),
        )
    } else if saturating && mode == FallbackExecution::Fast {
        float_activation_plan(g, folded.as_ref(), &mut changes);
        (
            PlanKind::FloatActivations,
            "per-channel int8 weights on a CPU without VNNI, where ONNX Runtime's U8S8 kernels saturate: float \
             activations (exact weights, float arithmetic)"
                .to_string(),
        )
    } else if wide && mode == FallbackExecution::Fast {
        float_activation_plan(g, folded.as_ref(), &mut changes);
        (
            PlanKind::FloatActivations,
            "16-bit activations, which ONNX Runtime's CPU provider cannot run as integers, run as float".to_string(),
        )
    } else {
        integer_plan(g, opset, wide, host, &mut changes)
    };
    rewrite::drop_unused_initializers(g);
    let after = g.node.len();
    if changes.is_empty() {
        return (
            None,
            CpuPlan::as_written(
                mode,
                "nothing to rewrite: ONNX Runtime's CPU provider fuses the model as written",
                nodes,
            ),
        );
    }
    let report = CpuPlan {
        mode,
        plan,
        reason,
        changes,
        nodes_before: nodes,
        nodes_after: after,
        source: "rewritten".into(),
        cache_file: String::new(),
        prepare_us: 0,
    };
    (Some(out), report)
}

/// The integer plan: 8-bit QDQ rewritten for ONNX Runtime's integer kernels (uint8 activations, int32 biases,
/// integer Clips, one DequantizeLinear per reader); 16-bit QDQ kept as written. Its changes go to `changes`.
fn integer_plan(
    g: &mut crate::onnx::proto::GraphProto,
    opset: i64,
    wide: bool,
    host: Host,
    changes: &mut Vec<Change>,
) -> (PlanKind, String) {
    let mut names = rewrite::Names::new(g);
    let shifted = rewrite::int8_to_uint8(g, &mut names);
    if host.u8s8_saturates {
        let weights = rewrite::int8_weights_to_uint8(g, &mut names);
        push(
            changes,
            "int8 weights -> uint8 (zero point + 128): this CPU has no VNNI, where ONNX Runtime's U8S8 kernels \
             saturate",
            weights,
            true,
        );
    }
    let (exact, rounded) = rewrite::bias_to_int32(g, &mut names);
    let clamps = rewrite::clamp_after_q(g, &mut names, opset);
    let split = rewrite::split_shared_dq(g, &mut names);
    push(
        changes,
        "int8 activations -> uint8 (zero point + 128)",
        shifted,
        true,
    );
    push(
        changes,
        "biases requantized to int32 at scale_x*scale_w",
        exact,
        true,
    );
    push(
        changes,
        "biases requantized to int32 at scale_x*scale_w (rounded, < 0.5 accumulator unit)",
        rounded,
        false,
    );
    push(
        changes,
        "Relu/Clip before a Q -> Q then integer Clip",
        clamps,
        true,
    );
    push(
        changes,
        "shared DequantizeLinear split per reader",
        split,
        true,
    );
    let why = if wide {
        "8-bit QDQ rewritten for ONNX Runtime's integer kernels; 16-bit QDQ kept as written (faithful)"
    } else {
        "8-bit QDQ rewritten for ONNX Runtime's integer kernels"
    };
    (PlanKind::Integer, why.to_string())
}

/// A prepared plan: the bytes to hand ONNX Runtime (`None`: use the model as the host gave it) and the report.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub bytes: Option<Arc<Vec<u8>>>,
    pub report: CpuPlan,
}

/// The cache key of a model under a mode: 32 hex chars of SHA-256 over the plan version, the CPU kind ([`Host`]),
/// the mode, the runtime version and the model bytes (length-prefixed, like the compile cache's key).
pub fn plan_key(model_bytes: &[u8], mode: FallbackExecution, runtime_version: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        PLAN_VERSION.as_bytes(),
        Host::this().key().as_bytes(),
        mode.as_str().as_bytes(),
        runtime_version.as_bytes(),
        model_bytes,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Plans kept for this process, by key (a few models; oldest dropped first).
fn process_cache() -> &'static Mutex<Vec<(String, Prepared)>> {
    static CACHE: OnceLock<Mutex<Vec<(String, Prepared)>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Vec::new()))
}

const PROCESS_CACHE_ENTRIES: usize = 8;

/// The model a plan is prepared from: its encoded bytes (the key hashes them), and either the directory that
/// resolves their external data or the same model already decoded (then the plan rewrites it, without a copy when
/// it is owned, instead of decoding the bytes again).
pub enum PlanInput<'a> {
    Bytes(&'a [u8], Option<&'a Path>),
    Decoded(&'a [u8], Box<Cow<'a, ModelProto>>),
}

impl<'a> PlanInput<'a> {
    fn bytes(&self) -> &'a [u8] {
        match self {
            PlanInput::Bytes(b, _) | PlanInput::Decoded(b, _) => b,
        }
    }
}

/// Prepares the plan for a session about to run on the CPU from `input` (the model as the host gave it);
/// `cache_dir` is the host's cache directory, if any. A model that cannot be planned (undecodable, over 2 GiB once
/// rewritten) runs as written, with the reason in the report.
pub fn prepare(
    input: PlanInput<'_>,
    mode: FallbackExecution,
    cache_dir: Option<&Path>,
    runtime_version: &str,
) -> Prepared {
    let t0 = Instant::now();
    if mode == FallbackExecution::AsWritten {
        let (_, report) = plan_model(&ModelProto::default(), mode);
        return Prepared {
            bytes: None,
            report,
        };
    }
    let elapsed = |p: &mut Prepared| p.report.prepare_us = t0.elapsed().as_micros() as u64;
    // Without a cache directory only the process cache could spare the rewrite, and it hits only when a process
    // opens the same model twice: hash and rewrite side by side (the SHA-256 of a 5 MB model is ~18 % of the
    // preparation, profile in bench/results/cpu_plan.md). With one, a disk hit must not pay for a rewrite first.
    let bytes = input.bytes();
    // `work`: the plan already rewritten, or the input still to plan.
    let (key, work) = if cache_dir.is_none() {
        std::thread::scope(|s| {
            let hasher = s.spawn(|| plan_key(bytes, mode, runtime_version));
            let p = rewrite_input(input, mode);
            let key = hasher
                .join()
                .unwrap_or_else(|_| plan_key(bytes, mode, runtime_version));
            (key, Ok(p))
        })
    } else {
        (plan_key(bytes, mode, runtime_version), Err(input))
    };
    if let Some((_, hit)) = process_cache()
        .lock()
        .ok()
        .and_then(|c| c.iter().find(|(k, _)| *k == key).cloned())
    {
        let mut p = hit;
        if p.bytes.is_some() {
            p.report.source = "process cache".into();
        }
        elapsed(&mut p);
        return p;
    }
    let file = cache_dir.map(|d| d.join("ipuflow-cpu-plan").join(format!("{key}.onnx")));
    let mut p = match work {
        Ok(p) => p,
        Err(input) => read_disk(file.as_deref()).unwrap_or_else(|| rewrite_input(input, mode)),
    };
    if let (Some(f), Some(bytes), "rewritten") = (&file, &p.bytes, p.report.source.as_str()) {
        match write_disk(f, bytes, &p.report) {
            Ok(()) => p.report.cache_file = f.display().to_string(),
            Err(e) => p
                .report
                .reason
                .push_str(&format!(" (not cached on disk: {})", e.message())),
        }
    }
    if let Ok(mut c) = process_cache().lock() {
        c.retain(|(k, _)| *k != key);
        if c.len() >= PROCESS_CACHE_ENTRIES {
            c.remove(0);
        }
        c.push((key, p.clone()));
    }
    elapsed(&mut p);
    p
}

fn rewrite_input(input: PlanInput<'_>, mode: FallbackExecution) -> Prepared {
    let model = match input {
        PlanInput::Decoded(_, m) => (*m).into_owned(),
        PlanInput::Bytes(b, base_dir) => match Model::from_bytes(b, base_dir) {
            Ok(m) => m.into_proto(),
            Err(e) => {
                return Prepared {
                    bytes: None,
                    report: CpuPlan::as_written(
                        mode,
                        format!("the model could not be planned: {}", e.message()),
                        0,
                    ),
                }
            }
        },
    };
    let (planned, mut report) = plan_owned(model, mode, Host::this());
    let bytes = match planned.map(|m| Model::from_proto(m).to_bytes()) {
        None => None,
        Some(Ok(b)) => Some(Arc::new(b)),
        Some(Err(e)) => {
            report = CpuPlan::as_written(
                mode,
                format!("the rewritten model could not be encoded: {}", e.message()),
                report.nodes_before,
            );
            None
        }
    };
    Prepared { bytes, report }
}

fn read_disk(file: Option<&Path>) -> Option<Prepared> {
    let file = file?;
    let json = crate::onnx::fs::read_regular(&file.with_extension("json")).ok()?;
    let mut report: CpuPlan = serde_json::from_slice(&json).ok()?;
    let bytes = crate::onnx::fs::read_regular(file).ok()?;
    report.source = "disk cache".into();
    report.cache_file = file.display().to_string();
    Some(Prepared {
        bytes: Some(Arc::new(bytes)),
        report,
    })
}

fn write_disk(file: &Path, bytes: &[u8], report: &CpuPlan) -> Result<()> {
    let dir: PathBuf = file.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(|e| crate::error::Error::io("create", &dir, e))?;
    // The model first: a JSON file only ever sits next to a complete model.
    crate::onnx::fs::write_atomic(file, bytes)?;
    let json = serde_json::to_vec_pretty(report).unwrap_or_default();
    crate::onnx::fs::write_atomic(&file.with_extension("json"), &json)
}

/// Counts per op type of a model (for reports and tests).
pub fn op_histogram(model: &ModelProto) -> HashMap<String, usize> {
    let mut h = HashMap::new();
    for n in model.graph.iter().flat_map(|g| g.node.iter()) {
        *h.entry(n.op_type.clone().unwrap_or_default()).or_insert(0) += 1;
    }
    h
}

/// The float-activation rewrite and the change lines it reports. `folded`: the quantizer's record (see
/// [`FOLDED_ACTIVATIONS_KEY`]); without one every activation Q keeps its clamp.
fn float_activation_plan(
    g: &mut crate::onnx::proto::GraphProto,
    folded: Option<&HashMap<String, (f32, f32)>>,
    changes: &mut Vec<Change>,
) {
    let n = rewrite::float_activations(g, folded);
    push(
        changes,
        "weights dequantized into float initializers",
        n.weights,
        true,
    );
    push(
        changes,
        "activation Q/DQ pairs -> float Clip to the Q range (float activations)",
        n.clipped,
        false,
    );
    push(
        changes,
        "activation Q/DQ pairs -> the model's own Relu/Clip the quantizer folded into them (float activations)",
        n.own_activation,
        false,
    );
    push(
        changes,
        "activation Q/DQ pairs removed: calibrated saturation ranges, per the quantizer's record (float activations)",
        n.dropped,
        false,
    );
}
