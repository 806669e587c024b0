//! Accuracy-aware mixed precision: the most sensitive nodes are raised one at a time until the output meets the
//! host's target on the held calibration samples.
//!
//! Order: the sensitivity ranking ([`crate::quant::sensitivity`], leave one float), nodes with a positive gain
//! only. First pass: each node's activations 8 -> 16 bit, where the NPU support table lists the op at int16 for the
//! target (X2). A change that lowers the score is undone. Second pass: each node float (CPU, the node
//! excluded, its float weights restored). After every change the target is checked, and the loop stops as soon as
//! it holds. A change whose predicted NPU coverage (the pre-flight on the candidate) is below the host's floor is
//! not made; if the target cannot be met the best model found is returned with `met: false` and the reason.
//!
//! The target may also be the host's own metric ([`HostMetric`], higher is better): the host is handed each
//! candidate model (the all-quantized one first, then one per change the coverage floor allows) and the loop stops
//! once its metric reaches the host's target; a change that lowers it is undone. A failing, panicking or non-finite
//! callback stops the quantization with a `Callback` error naming the candidate.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::ipu::preflight::{preflight_with_input_shapes, Precision, SupportTable};
use crate::ipu::Target;
use crate::onnx::proto::ModelProto;
use crate::onnx::{InputShape, Model};
use crate::quant::prepare::observed_ranks;
use crate::quant::sensitivity::{rank, Reference, Score, SensitivityReport};
use crate::quant::{quantize_graph, Calibration, QuantConfig, QuantReport, QuantType};

/// The NPU target whose support table and pre-flight mixed precision uses.
pub const TARGET: Target = Target::X2;

/// The host's evaluation of one candidate: its metric (higher is better), or why it could not be computed.
pub type MetricFn = dyn Fn(&Model) -> std::result::Result<f64, String> + Send + Sync;

/// A host metric for mixed precision (TensorRT's and Quark's "evaluate the candidate yourself" hook): `eval` gets
/// each candidate model and returns its metric, higher is better; the target holds when it is `>= target`.
///
/// Called on the thread running [`crate::quant::quantize`], once per candidate, never concurrently within one
/// quantization (a config shared by concurrent quantizations calls it from each of their threads).
#[derive(Clone)]
pub struct HostMetric {
    pub target: f64,
    pub eval: Arc<MetricFn>,
}

impl HostMetric {
    pub fn new(
        target: f64,
        eval: impl Fn(&Model) -> std::result::Result<f64, String> + Send + Sync + 'static,
    ) -> Self {
        HostMetric {
            target,
            eval: Arc::new(eval),
        }
    }

    /// The metric of `model`; `what` names the candidate in errors. A panic in `eval` becomes an error here.
    fn measure(&self, model: &Model, what: &str) -> Result<f64> {
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.eval)(model)));
        let fail = |m: String| Err(Error::new(ErrorKind::Callback, m));
        match call {
            Ok(Ok(v)) if v.is_finite() => Ok(v),
            Ok(Ok(v)) => fail(format!(
                "mixed precision: the host metric callback returned {v} for {what}; a metric must be finite"
            )),
            Ok(Err(m)) => fail(format!(
                "mixed precision: the host metric callback failed on {what}: {m}"
            )),
            Err(p) => {
                let m = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                fail(format!(
                    "mixed precision: the host metric callback panicked on {what}: {m}"
                ))
            }
        }
    }
}

impl std::fmt::Debug for HostMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostMetric")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Two host metrics are equal when they share the callback and the target.
impl PartialEq for HostMetric {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target && Arc::ptr_eq(&self.eval, &other.eval)
    }
}

/// What mixed precision needs besides the held samples.
pub struct Inputs<'a> {
    /// The prepared model as emitted (after learned rounding and bias correction).
    pub prepared: &'a ModelProto,
    /// The same before learned rounding and bias correction: the float weights of a node left float.
    pub float_prepared: &'a ModelProto,
    pub calib: &'a Calibration,
    pub config: &'a QuantConfig,
}

/// Which nodes are raised.
#[derive(Clone, Debug, Default)]
struct Plan {
    int16: Vec<String>,
    float: Vec<String>,
}

/// One change the loop made (or refused).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub node: String,
    pub op_type: String,
    /// "int16" (activations 8 -> 16 bit) or "float" (CPU).
    pub change: String,
    /// Output SQNR (worst output, dB) and top-1 agreement after the change, on the held samples.
    pub sqnr_db: f64,
    pub agreement: f64,
    /// NPU coverage the pre-flight predicts after the change (fraction of non-Q/DQ nodes).
    pub predicted_npu_coverage: f64,
    /// The host metric after the change (with a host metric; not measured when the coverage floor refused it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<f64>,
    /// Whether the change was kept, and if not why.
    pub kept: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The mixed-precision record of the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MixedReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_sqnr_db: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_agreement_drop: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_npu_coverage: Option<f32>,
    /// The host metric's target, when the host gave a metric callback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_metric: Option<f64>,
    /// The host metric of the all-quantized model and of the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_metric: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_metric: Option<f64>,
    /// Calls of the host metric callback.
    pub metric_calls: usize,
    /// The pre-flight target coverage is predicted for.
    pub npu_target: String,
    /// Held calibration samples the target is checked on.
    pub samples: usize,
    pub baseline: Option<Score>,
    pub baseline_npu_coverage: f64,
    pub result: Option<Score>,
    pub result_npu_coverage: f64,
    /// Whether the target holds on the result.
    pub met: bool,
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    pub seconds: f64,
}

/// The accuracy target of `config`, on a score and the host metric (when there is one).
fn meets(config: &QuantConfig, s: &Score, metric: Option<f64>) -> bool {
    let m = &config.mixed;
    m.target_sqnr_db.is_none_or(|t| s.sqnr_db >= f64::from(t))
        && m.max_agreement_drop
            .is_none_or(|d| 1.0 - s.agreement <= f64::from(d))
        && m.host_metric
            .as_ref()
            .is_none_or(|h| metric.is_some_and(|v| v >= h.target))
}

/// Emits the prepared model with `plan` applied.
fn emit(inp: &Inputs<'_>, plan: &Plan) -> Result<(ModelProto, QuantReport)> {
    let mut graph = inp.prepared.clone();
    let float = with_fused_partners(&graph, &plan.float);
    restore_float_weights(&mut graph, inp.float_prepared, &float);
    observed_ranks(&mut graph, inp.calib);
    let mut cfg = inp.config.clone();
    cfg.exclude_nodes.extend(float);
    let wide = match cfg.activation_type {
        QuantType::U8 => QuantType::U16,
        _ => QuantType::S16,
    };
    for t in activation_outputs(&graph, &plan.int16) {
        cfg.tensor_overrides.entry(t).or_default().qtype = Some(wide);
    }
    quantize_graph(&graph, inp.calib, &cfg)
}

/// `nodes` with the Relu/Clip the emitter folds into each (the sole consumer of its output) and the node each
/// such Relu/Clip is folded into: leaving one of a fused pair float alone quantizes the other's output with the
/// unclipped range (measured on EfficientNet-Lite0 XINT8: down to -5.7 dB instead of a gain).
fn with_fused_partners(m: &ModelProto, nodes: &[String]) -> Vec<String> {
    let mut out = nodes.to_vec();
    let Some(g) = m.graph.as_ref() else {
        return out;
    };
    let act =
        |n: &crate::onnx::proto::NodeProto| matches!(n.op_type.as_deref(), Some("Relu" | "Clip"));
    let name = |n: &crate::onnx::proto::NodeProto| n.name.clone().unwrap_or_default();
    for n in &g.node {
        let Some(o) = n.output.first() else { continue };
        let consumers: Vec<_> = g.node.iter().filter(|c| c.input.contains(o)).collect();
        let [c] = consumers.as_slice() else { continue };
        if !act(c) || n.output.len() != 1 || name(n).is_empty() || name(c).is_empty() {
            continue;
        }
        let (a, b) = (name(n), name(c));
        let has = |x: &String| out.contains(x);
        if has(&a) != has(&b) {
            out.push(if has(&a) { b } else { a });
        }
    }
    out
}

/// The initializers read by `nodes`, put back to their values before learned rounding and bias correction.
fn restore_float_weights(m: &mut ModelProto, float: &ModelProto, nodes: &[String]) {
    let (Some(g), Some(fg)) = (m.graph.as_mut(), float.graph.as_ref()) else {
        return;
    };
    let names: HashSet<&str> = nodes.iter().map(String::as_str).collect();
    let inputs: HashSet<String> = g
        .node
        .iter()
        .filter(|n| n.name.as_deref().is_some_and(|x| names.contains(x)))
        .flat_map(|n| n.input.iter().cloned())
        .collect();
    for t in g.initializer.iter_mut() {
        let Some(name) = t.name.as_ref().filter(|n| inputs.contains(*n)) else {
            continue;
        };
        if let Some(f) = fg
            .initializer
            .iter()
            .find(|f| f.name.as_ref() == Some(name))
        {
            *t = f.clone();
        }
    }
}

/// The quantized activations of `nodes`: their outputs, and the output of a Relu/Clip that is an output's only
/// consumer (the emitter folds it, so its output is the one quantized).
fn activation_outputs(m: &ModelProto, nodes: &[String]) -> Vec<String> {
    let Some(g) = m.graph.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in g
        .node
        .iter()
        .filter(|n| n.name.as_ref().is_some_and(|x| nodes.contains(x)))
    {
        for o in &n.output {
            out.push(o.clone());
            let consumers: Vec<_> = g.node.iter().filter(|c| c.input.contains(o)).collect();
            if let [c] = consumers.as_slice() {
                if matches!(c.op_type.as_deref(), Some("Relu" | "Clip")) {
                    out.extend(c.output.iter().cloned());
                }
            }
        }
    }
    out
}

/// Predicted NPU coverage of a QDQ model (fraction of non-Q/DQ nodes), for [`TARGET`], with the inputs fixed to the
/// calibration samples' shapes.
fn coverage(m: &ModelProto, shapes: &[InputShape]) -> Result<f64> {
    let p = preflight_with_input_shapes(m, TARGET, shapes)?;
    Ok(p.coverage_excluding_qdq_percent / 100.0)
}

/// Whether the support table lists `op` at int16 for [`TARGET`].
fn int16_supported(op: &str) -> bool {
    SupportTable::builtin()
        .ops(TARGET, Precision::Int16)
        .is_some_and(|ops| ops.iter().any(|o| o == op))
}

/// The sensitivity ranking of every quantized node of `report` (graph order), from `emit` with each node float.
pub fn sensitivity(
    inp: &Inputs<'_>,
    reference: &Reference,
    baseline: &ModelProto,
    report: &QuantReport,
    check: &mut dyn FnMut() -> Result<()>,
) -> Result<SensitivityReport> {
    let nodes: Vec<(String, String)> = report
        .nodes
        .iter()
        .filter(|n| n.quantized)
        .map(|n| (n.name.clone(), n.op_type.clone()))
        .collect();
    let mut one = |name: &str| {
        let plan = Plan {
            float: vec![name.to_string()],
            ..Plan::default()
        };
        Ok(Model::from_proto(emit(inp, &plan)?.0))
    };
    rank(
        reference,
        &Model::from_proto(baseline.clone()),
        &nodes,
        &mut one,
        check,
    )
}

/// The loop's state: the plan so far and its model.
struct Current {
    plan: Plan,
    model: (ModelProto, QuantReport),
    score: Score,
    metric: Option<f64>,
    coverage: f64,
}

/// The host metric of the all-quantized model `start`, when the config has a host metric.
pub fn baseline_metric(config: &QuantConfig, start: &ModelProto) -> Result<Option<f64>> {
    match &config.mixed.host_metric {
        Some(h) => Ok(Some(h.measure(
            &Model::from_proto(start.clone()),
            "the all-quantized model",
        )?)),
        None => Ok(None),
    }
}

/// Raises nodes of `ranking` until the target of `inp.config` holds (see the module). `start` is the all-quantized
/// model, `metric` its host metric ([`baseline_metric`]). Returns the chosen model, its report and the record.
pub fn refine(
    inp: &Inputs<'_>,
    reference: &Reference,
    ranking: &SensitivityReport,
    (start, metric): ((ModelProto, QuantReport), Option<f64>),
    check: &mut dyn FnMut() -> Result<()>,
) -> Result<(ModelProto, QuantReport, MixedReport)> {
    let t0 = std::time::Instant::now();
    let m = &inp.config.mixed;
    let score = reference.score(&Model::from_proto(start.0.clone()), usize::MAX)?;
    let shapes = reference.input_shapes();
    let cov = coverage(&start.0, &shapes)?;
    let mut rec = MixedReport {
        target_sqnr_db: m.target_sqnr_db,
        max_agreement_drop: m.max_agreement_drop,
        min_npu_coverage: m.min_npu_coverage,
        target_metric: m.host_metric.as_ref().map(|h| h.target),
        baseline_metric: metric,
        metric_calls: usize::from(metric.is_some()),
        npu_target: TARGET.as_str().into(),
        samples: reference.len(),
        baseline: Some(score),
        baseline_npu_coverage: cov,
        notes: vec![int16_note()],
        ..MixedReport::default()
    };
    let mut cur = Current {
        plan: Plan::default(),
        model: start,
        score,
        metric,
        coverage: cov,
    };
    let order: Vec<(&str, &str)> = ranking
        .layers
        .iter()
        .filter(|l| l.gain_db > 0.0)
        .map(|l| (l.name.as_str(), l.op_type.as_str()))
        .collect();
    let wide_ok = !inp.config.activation_type.is_16bit();
    for change in ["int16", "float"] {
        for &(node, op) in &order {
            if meets(inp.config, &cur.score, cur.metric) {
                break;
            }
            if change == "int16" && !(wide_ok && int16_supported(op)) {
                continue;
            }
            // The fused partner of a node already float is float too.
            if with_fused_partners(inp.prepared, &cur.plan.float)
                .iter()
                .any(|n| n == node)
            {
                continue;
            }
            check()?;
            let step = try_step(inp, reference, &shapes, &mut cur, (node, op, change))?;
            rec.metric_calls += usize::from(step.metric.is_some());
            rec.steps.push(step);
        }
    }
    rec.met = meets(inp.config, &cur.score, cur.metric);
    if !rec.met {
        rec.notes.push(not_met_note(inp.config, &cur, &rec));
    }
    rec.result = Some(cur.score);
    rec.result_metric = cur.metric;
    rec.result_npu_coverage = cur.coverage;
    rec.seconds = t0.elapsed().as_secs_f64();
    Ok((cur.model.0, cur.model.1, rec))
}

/// Tries one change on top of `cur`; keeps it when it respects the coverage floor and does not lower the host
/// metric (with one) or else the SQNR (each node's own gain is small and the gains add up, so an unchanged score is
/// no reason to refuse). The host metric is not asked for a change the floor refuses.
fn try_step(
    inp: &Inputs<'_>,
    reference: &Reference,
    shapes: &[InputShape],
    cur: &mut Current,
    (node, op, change): (&str, &str, &str),
) -> Result<Step> {
    let mut plan = cur.plan.clone();
    plan.int16.retain(|n| change == "int16" || n != node);
    match change {
        "int16" => plan.int16.push(node.to_string()),
        _ => plan.float.push(node.to_string()),
    }
    let model = emit(inp, &plan)?;
    let coverage = coverage(&model.0, shapes)?;
    let candidate = Model::from_proto(model.0.clone());
    let score = reference.score(&candidate, usize::MAX)?;
    let floor = inp.config.mixed.min_npu_coverage.map(f64::from);
    let below = floor.filter(|f| coverage < *f);
    let metric = match (&inp.config.mixed.host_metric, below) {
        (Some(h), None) => {
            let what = format!("the candidate with node '{node}' raised to {change}");
            Some(h.measure(&candidate, &what)?)
        }
        _ => None,
    };
    let reason = if let Some(f) = below {
        format!("predicted NPU coverage {coverage:.3} below the floor {f:.3}")
    } else if let (Some(v), Some(c)) = (metric, cur.metric) {
        if v < c {
            format!("lowered the host metric ({v} < {c})")
        } else {
            String::new()
        }
    } else if score.sqnr_db < cur.score.sqnr_db {
        format!("lowered the output SQNR ({:.2} dB)", score.sqnr_db)
    } else {
        String::new()
    };
    let kept = reason.is_empty();
    if kept {
        *cur = Current {
            plan,
            model,
            score,
            metric,
            coverage,
        };
    }
    Ok(Step {
        node: node.into(),
        op_type: op.into(),
        change: change.into(),
        sqnr_db: score.sqnr_db,
        agreement: score.agreement,
        predicted_npu_coverage: coverage,
        metric,
        kept,
        reason,
    })
}

/// Says where the int16 verdicts come from: the support table's int16 lists are an assumption where it says so.
fn int16_note() -> String {
    let source = SupportTable::builtin()
        .targets
        .get(TARGET.as_str())
        .and_then(|t| t.precisions.get("int16"))
        .map(|l| l.source.clone())
        .unwrap_or_else(|| "none: no int16 list".into());
    let assumed = if source.contains('A') {
        " (an ASSUMPTION of the support table, not a documented fact; the real EP decides)"
    } else {
        ""
    };
    format!(
        "int16 activations on {} per src/ipu/npu_support.json, source {source}{assumed}",
        TARGET.as_str()
    )
}

/// Why the target was not met: which raises the coverage floor refused.
fn not_met_note(config: &QuantConfig, cur: &Current, rec: &MixedReport) -> String {
    let blocked = rec
        .steps
        .iter()
        .filter(|s| s.reason.contains("floor"))
        .count();
    format!(
        "target not met (best effort returned): SQNR {:.2} dB, agreement {:.3}, host metric {:?} against target \
         SQNR {:?} dB / drop {:?} / host metric {:?}; {} raise(s) refused by the NPU-coverage floor {:?}, {} node(s) \
         float, {} at int16",
        cur.score.sqnr_db,
        cur.score.agreement,
        cur.metric,
        config.mixed.target_sqnr_db,
        config.mixed.max_agreement_drop,
        config.mixed.host_metric.as_ref().map(|h| h.target),
        blocked,
        config.mixed.min_npu_coverage,
        cur.plan.float.len(),
        cur.plan.int16.len()
    )
}

/// Sensitivity analysis and, with a target, mixed precision on the emitted `start` model (the pipeline's hook).
/// `float_model` is the model as given (the reference); `held` the calibration samples kept while calibrating.
/// The returned report is `start`'s (notes, opset) with the chosen model's nodes and tensors, and both records.
pub fn run(
    float_model: &Model,
    inp: &Inputs<'_>,
    held: Vec<crate::quant::sensitivity::Sample>,
    start: (ModelProto, QuantReport),
    check: &mut dyn FnMut() -> Result<()>,
) -> Result<(ModelProto, QuantReport)> {
    // The host is asked first: a failing callback stops the quantization before the ranking's cost.
    let metric = baseline_metric(inp.config, &start.0)?;
    let reference = Reference::new(float_model, held)?;
    let ranking = sensitivity(inp, &reference, &start.0, &start.1, check)?;
    if !inp.config.mixed.has_target() {
        let (q, mut report) = start;
        report.sensitivity = Some(ranking);
        return Ok((q, report));
    }
    let (notes, opset_in) = (start.1.notes.clone(), start.1.opset_in);
    let (q, mut report, rec) = refine(inp, &reference, &ranking, (start, metric), check)?;
    report.notes = notes;
    report.opset_in = opset_in;
    let (int16, float) = rec
        .steps
        .iter()
        .filter(|s| s.kept)
        .fold((0, 0), |(a, b), s| {
            if s.change == "int16" {
                (a + 1, b)
            } else {
                (a, b + 1)
            }
        });
    report.notes.push(format!(
        "mixed precision: {int16} node(s) raised to 16-bit activations, {float} left float; target {}",
        if rec.met { "met" } else { "NOT met (best effort)" }
    ));
    report.sensitivity = Some(ranking);
    report.mixed_precision = Some(rec);
    Ok((q, report))
}
