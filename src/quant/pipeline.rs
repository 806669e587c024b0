//! The whole post-training quantization: check, prepare, calibrate, emit QDQ, verify that ONNX Runtime loads it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::onnx::proto::ModelProto;
use crate::onnx::Model;
use crate::quant::bias_correct::MeanTap;
use crate::quant::bias_guard::Emitted;
use crate::quant::calibrate::{calibrate_observed, BatchObserver};
use crate::quant::data::CalibrationSource;
use crate::quant::equalize::equalize;
use crate::quant::head_bias;
use crate::quant::mixed;
use crate::quant::prepare::{check_quantizable, observed_ranks, prepare, Prepared};
use crate::quant::provenance::{record, Digesting};
use crate::quant::sensitivity::{Holding, Sample};
use crate::quant::{quantize_graph, Calibration, QuantConfig, QuantReport};
use crate::runtime::{GraphOptimizationLevel, Session, SessionOptions};

/// A flag another thread (or a progress callback) sets to stop a quantization. Cloning shares the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The step a quantization is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// ONNX Runtime BASIC optimization, Constant/BatchNorm patches, type inference.
    Prepare = 0,
    /// Running the calibration batches (`done` of `total` batches).
    Calibrate = 1,
    /// QDQ emission.
    Quantize = 2,
    /// Loading the result into ONNX Runtime.
    Verify = 3,
}

/// One progress report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub stage: Stage,
    /// Units done in this stage (batches for `Calibrate`; 0 or 1 for the others).
    pub done: usize,
    /// Units in this stage, if known.
    pub total: Option<usize>,
}

/// Optional progress reporting and cancellation of [`quantize`].
#[derive(Default)]
pub struct Hooks<'a> {
    /// Called at the start and end of each stage and after each calibration batch; returning `false` cancels.
    pub progress: Option<&'a mut dyn FnMut(&Progress) -> bool>,
    /// Checked between steps and batches.
    pub cancel: Option<CancelToken>,
}

impl Hooks<'_> {
    fn report(&mut self, stage: Stage, done: usize, total: Option<usize>) -> Result<()> {
        if let Some(p) = self.progress.as_mut() {
            if !p(&Progress { stage, done, total }) {
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    format!("quantization cancelled by the progress callback during {stage:?} ({done} done)"),
                ));
            }
        }
        if self.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(Error::new(
                ErrorKind::Cancelled,
                format!("quantization cancelled during {stage:?} ({done} done)"),
            ));
        }
        Ok(())
    }
}

/// Quantizes `model` to QDQ as `config` says, calibrating on the batches of `data`. Nothing is written anywhere;
/// the caller saves the returned model.
///
/// Steps: validate the configuration; refuse already-quantized models and unsupported opsets
/// ([`check_quantizable`]); [`prepare`]; [`calibrate`]; [`quantize_graph`]; check that ONNX Runtime loads the result.
///
/// Errors: `InvalidArgument` (configuration), `Unsupported` (already quantized, opset), `Calibration` (no data),
/// `TensorMismatch` (a batch does not fit the model), `Callback` (a host data callback failed, with its message),
/// `Cancelled`, `Runtime` (ONNX Runtime refused something), `NonFinite` (an input's calibration data holds no
/// finite value; a weight to quantize holds NaN/Inf), `NothingQuantized` (every node stayed float), and those of the
/// QDQ emitter.
pub fn quantize(
    model: &Model,
    config: &QuantConfig,
    data: &mut dyn CalibrationSource,
    mut hooks: Hooks<'_>,
) -> Result<(Model, QuantReport)> {
    config.validate()?;
    let reshaped = with_input_shapes(model, config)?;
    let model = reshaped.as_ref().unwrap_or(model);
    check_quantizable(model.proto())?;
    if data.len_hint() == Some(0) {
        return Err(Error::new(
            ErrorKind::Calibration,
            "no calibration data: the source holds no sample",
        ));
    }
    let (mut prepared, mut extra_notes) = prepare_float(model, config, &mut hooks)?;
    hooks.report(Stage::Calibrate, 0, data.len_hint())?;
    // Every batch calibration reads is digested for the provenance record.
    let mut digesting = Digesting::new(data);
    // Sensitivity and mixed precision re-run the calibration samples: held as they stream, with the float weights.
    let mixed = config.mixed.active();
    // The output-head bias correction runs the float and quantized models on held samples too.
    let float_prepared = (mixed || config.output_aware).then(|| prepared.model.clone());
    let mut holding = match mixed {
        true => Holding::new(&mut digesting, true),
        false => Holding::with_limit(
            &mut digesting,
            HEAD_HOLD_BYTES * usize::from(config.output_aware),
        ),
    };
    let (calib, emitted) = calibrate_and_tap(
        &mut prepared,
        config,
        &mut holding,
        &mut hooks,
        &mut extra_notes,
    )?;
    let held = std::mem::take(&mut holding.held);
    drop(holding);
    prepared.notes.extend(extra_notes);
    let (mut qproto, mut report) = emit_qdq(model, &prepared, &calib, config, &mut hooks, emitted)?;
    if let (true, Some(float)) = (config.output_aware, &float_prepared) {
        let (emitted, notes) = correct_heads(
            model,
            &mut prepared,
            float,
            &qproto,
            &held,
            &calib,
            config,
            &mut hooks,
        )?;
        if let Some(e) = emitted {
            (qproto, report) = e;
        }
        report.notes.extend(notes);
    }
    if let (true, Some(float)) = (mixed, &float_prepared) {
        let inp = mixed::Inputs {
            prepared: &prepared.model,
            float_prepared: float,
            calib: &calib,
            config,
        };
        let mut check = || hooks.report(Stage::Quantize, 1, Some(1));
        (qproto, report) = mixed::run(model, &inp, held, (qproto, report), &mut check)?;
    }
    hooks.report(Stage::Verify, 0, Some(1))?;
    let runtime = crate::runtime::Runtime::get().map(|r| r.version().to_string());
    record(
        &mut qproto,
        config,
        &digesting.digest,
        runtime.as_deref().unwrap_or("unknown"),
    );
    let quantized = Model::from_proto(qproto);
    check_loads(&quantized)?;
    hooks.report(Stage::Verify, 1, Some(1))?;
    Ok((quantized, report))
}

/// A QDQ emission: the quantized model and its report.
type HeadEmission = (ModelProto, QuantReport);

/// Calibration bytes held for the output-head bias correction alone (mixed precision holds up to its own budget).
const HEAD_HOLD_BYTES: usize = 64 << 20;

/// The output-head bias correction ([`head_bias`]): the quantized model emitted again from the corrected prepared
/// model (`None` when nothing was corrected), and the correction's notes. The prepared model keeps the corrections,
/// so mixed precision emits from it.
#[allow(clippy::too_many_arguments)]
fn correct_heads(
    model: &Model,
    prepared: &mut Prepared,
    float: &ModelProto,
    qproto: &ModelProto,
    held: &[Sample],
    calib: &Calibration,
    config: &QuantConfig,
    hooks: &mut Hooks<'_>,
) -> Result<(Option<HeadEmission>, Vec<String>)> {
    let base = prepared.clone();
    // The last emission's report: when every correction is kept, the measured emission is the result.
    let mut report = None;
    let mut emit = |m: &ModelProto| {
        let p = Prepared {
            model: m.clone(),
            ..base.clone()
        };
        let (q, r) = emit_qdq(model, &p, calib, config, hooks, None)?;
        report = Some(r);
        Ok(q)
    };
    let Some(c) = head_bias::correct(&prepared.model, float, qproto, held, &mut emit)? else {
        return Ok((None, Vec::new()));
    };
    let Some(corrected) = c.prepared else {
        return Ok((None, c.notes));
    };
    prepared.model = corrected;
    let emitted = match (c.emitted, report) {
        (Some(q), Some(r)) => (q, r),
        _ => emit_qdq(model, prepared, calib, config, hooks, None)?,
    };
    Ok((Some(emitted), c.notes))
}

/// `model` with the configuration's input shapes applied, or `None` when it sets none (the model is used as is).
fn with_input_shapes(model: &Model, config: &QuantConfig) -> Result<Option<Model>> {
    if config.input_shapes.is_empty() {
        return Ok(None);
    }
    let mut m = model.proto().clone();
    crate::onnx::apply_input_shapes(&mut m, &config.input_shapes)?;
    Ok(Some(Model::from_proto(m)))
}

/// The Prepare stage: [`prepare`], the exclusions resolved, equalization; returns the prepared model and the
/// equalization's notes.
fn prepare_float(
    model: &Model,
    config: &QuantConfig,
    hooks: &mut Hooks<'_>,
) -> Result<(Prepared, Vec<String>)> {
    hooks.report(Stage::Prepare, 0, Some(1))?;
    let mut prepared = prepare(model)?;
    // Exclusion patterns and subgraphs that name nothing fail now, not after calibrating.
    if let Some(g) = prepared.model.graph.as_ref() {
        crate::quant::qdq::exclude::resolve(
            g,
            &config.exclude_patterns,
            &config.exclude_subgraphs,
        )?;
    }
    let mut extra_notes = Vec::new();
    if config.equalize {
        extra_notes.extend(equalize(&mut prepared.model, config.replace_clip6_relu)?);
    }
    hooks.report(Stage::Prepare, 1, Some(1))?;
    Ok((prepared, extra_notes))
}

/// The Calibrate stage: activation ranges, and with bias correction or learned rounding the streamed means and
/// moments of the same pass (read from the calibration run itself) applied to the prepared model (their notes added
/// to `notes`). Also returns the QDQ emission of the prepared model where bias correction's guard made one.
fn calibrate_and_tap(
    prepared: &mut Prepared,
    config: &QuantConfig,
    data: &mut dyn CalibrationSource,
    hooks: &mut Hooks<'_>,
    notes: &mut Vec<String>,
) -> Result<(Calibration, Option<Emitted>)> {
    let mut tap = if config.bias_correction || config.learned_rounding {
        MeanTap::new(&prepared.model, config)?
    } else {
        None
    };
    // A cache hit does not run calibration's model: the tap then runs that same model, for the same values.
    if let (Some(t), Some(_)) = (tap.as_mut(), &config.calib_cache) {
        t.set_session_model(crate::quant::calibrate::augment(prepared));
    }
    let calib = {
        let mut on_batch = |done, total| hooks.report(Stage::Calibrate, done, total);
        let observer = tap.as_mut().map(|t| t as &mut dyn BatchObserver);
        calibrate_observed(prepared, config, data, &mut on_batch, observer)?
    };
    let mut emitted = None;
    if let Some(tap) = tap {
        let (n, e) = tap.apply_emitting(&mut prepared.model, config, Some(&calib))?;
        notes.extend(n);
        emitted = e;
    }
    Ok((calib, emitted))
}

/// The Quantize stage: QDQ emission on the prepared graph, refused when nothing was quantized, with the
/// preparation's notes ahead of the emitter's.
fn emit_qdq(
    model: &Model,
    prepared: &Prepared,
    calib: &Calibration,
    config: &QuantConfig,
    hooks: &mut Hooks<'_>,
    emitted: Option<Emitted>,
) -> Result<(ModelProto, QuantReport)> {
    hooks.report(Stage::Quantize, 0, Some(1))?;
    // The guard's emission of this very model (same graph, calibration and settings) where it made one.
    let (qproto, mut report, ranks) = match emitted {
        Some(e) => (e.proto, e.report, e.ranks),
        None => {
            let mut graph = prepared.model.clone();
            let ranks = observed_ranks(&mut graph, calib);
            let (qproto, report) = quantize_graph(&graph, calib, config)?;
            (qproto, report, ranks)
        }
    };
    refuse_nothing_quantized(&report)?;
    // The emitter saw the prepared graph, which preparation may have raised from an older opset.
    if let Ok(o) = crate::quant::prepare::default_opset(model.proto()) {
        report.opset_in = o;
    }
    let mut notes = prepared.notes.clone();
    if ranks > 0 {
        notes.push(format!(
            "{ranks} activations of unknown rank: rank taken from the calibration runs"
        ));
    }
    notes.append(&mut report.notes);
    report.notes = notes;
    hooks.report(Stage::Quantize, 1, Some(1))?;
    Ok((qproto, report))
}

/// The Verify stage's check: ONNX Runtime loads the quantized model as written.
fn check_loads(quantized: &Model) -> Result<()> {
    let options = SessionOptions {
        graph_optimization_level: GraphOptimizationLevel::Disable,
        intra_op_threads: Some(1),
        // The quantizer measures the model as written, never the CPU plan's rewrite.
        fallback_execution: crate::runtime::FallbackExecution::AsWritten,
        ..Default::default()
    };
    Session::from_model(quantized, &options).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!(
                "the quantized model does not load into ONNX Runtime (a quantizer bug): {}",
                e.message()
            ),
        )
    })?;
    Ok(())
}

/// A "quantized" model with no quantized node is a silent non-result (the user asked for INT8 and gets float):
/// refused with the reasons the nodes stayed float, most frequent first.
fn refuse_nothing_quantized(report: &QuantReport) -> Result<()> {
    if report.nodes.is_empty() || report.nodes.iter().any(|n| n.quantized) {
        return Ok(());
    }
    let mut reasons: Vec<(usize, &str)> = Vec::new();
    for n in &report.nodes {
        match reasons.iter_mut().find(|(_, r)| *r == n.reason) {
            Some(e) => e.0 += 1,
            None => reasons.push((1, &n.reason)),
        }
    }
    reasons.sort_by_key(|r| std::cmp::Reverse(r.0));
    let listed: Vec<String> = reasons
        .iter()
        .take(3)
        .map(|(c, r)| format!("{c} node(s): {r}"))
        .collect();
    Err(Error::new(
        ErrorKind::NothingQuantized,
        format!(
            "no node of the {} was quantized, so the result would be the float model: {}",
            report.nodes.len(),
            listed.join("; ")
        ),
    ))
}
