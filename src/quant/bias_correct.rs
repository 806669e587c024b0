//! Empirical bias correction: the expected output error that weight quantization causes, measured on the
//! calibration data, is subtracted from each layer's bias.
//!
//! For a layer `y = W x + b` quantized to `y' = W' x + b`, the expected error is `E[y' - y] = (W' - W) E[x]`: linear
//! in the mean of the input, so the mean is all that has to be measured. For a Conv the mean is taken per input
//! channel *and position* (a `[C, H, W]` map averaged over the samples), and the expectation over output positions
//! is computed with the Conv's own strides, pads and dilations, so border positions that read zero padding are
//! exact too. Memory: one map per Conv input, independent of the number of samples (streaming sums in f64).
//!
//! The means come from the calibration run itself: the tap is a [`BatchObserver`] of
//! [`crate::quant::calibrate::calibrate_observed`], which shows it the layer inputs (float activations the augmented
//! calibration model fetches anyway) and the model's outputs, so no second float inference runs per batch. Only
//! where calibration does not run the model (a calibration-cache hit) or through the [`Tapped`] source does the tap
//! run a float session of its own (created on first use). The calibration source is read once either way, as host
//! callbacks cannot rewind. `W'` is computed with the same
//! [`weight_spec`] and [`quantize_weight`] the QDQ emitter uses, so the correction matches the emitted weights.
//! Activation quantization error is not corrected here (it is not linear in anything measured).
//!
//! The same tap accumulates the input second moments of learned rounding (`crate::quant::gptq`) when that is on;
//! [`MeanTap::apply`] then rounds each weight first and corrects the bias for the learned weight's error.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::onnx::node::{attr_f, attr_i, attr_ints, attr_s, op};
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, ValueInfoProto};
use crate::onnx::{DataType, Model};
use crate::quant::bias_guard::Emitted;
use crate::quant::calibrate::BatchObserver;
use crate::quant::data::{Batch, CalibrationSource};
use crate::quant::gptq::{self, parallel, round_layer, Geometry, Moment};
use crate::quant::qdq::rules::{decide, Decision};
use crate::quant::qdq::weight_spec;
use crate::quant::qdq::weights::{dequantize, f32_tensor, quantize_weight, read_f32};
use crate::quant::{bias_guard, Calibration, QuantConfig};
use crate::runtime::{ElementType, Session, TensorInfo, TensorRef};

fn is_float_init(g: &GraphProto, name: &str) -> bool {
    g.initializer
        .iter()
        .any(|t| t.name.as_deref() == Some(name) && t.data_type == Some(DataType::Float.onnx()))
}

/// The nodes bias correction applies to: quantized 2-D Convs (explicit pads) and Gemms (alpha = beta = 1, no
/// transA) whose weight is a float initializer and whose bias, if any, is one too. Returns node indices.
fn targets(g: &GraphProto, cfg: &QuantConfig) -> Vec<usize> {
    g.node
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            if !matches!(n.domain.as_deref().unwrap_or(""), "" | "ai.onnx") || n.input.len() < 2 {
                return false;
            }
            if !matches!(decide(n, cfg), Decision::Quantize(_)) || !is_float_init(g, &n.input[1]) {
                return false;
            }
            if n.input
                .get(2)
                .is_some_and(|b| !b.is_empty() && !is_float_init(g, b))
            {
                return false;
            }
            match op(n) {
                "Conv" => {
                    matches!(
                        attr_s(n, "auto_pad").as_deref(),
                        None | Some("NOTSET") | Some("VALID")
                    ) && g
                        .initializer
                        .iter()
                        .find(|t| t.name.as_ref() == Some(&n.input[1]))
                        .is_some_and(|t| t.dims.len() == 4)
                }
                "Gemm" => {
                    attr_f(n, "alpha").unwrap_or(1.0) == 1.0
                        && attr_f(n, "beta").unwrap_or(1.0) == 1.0
                        && attr_i(n, "transA").unwrap_or(0) == 0
                }
                // A constant 2-D B: learned rounding only (no bias input to correct).
                "MatMul" => {
                    cfg.learned_rounding
                        && n.input.len() == 2
                        && g.initializer
                            .iter()
                            .find(|t| t.name.as_ref() == Some(&n.input[1]))
                            .is_some_and(|t| t.dims.len() == 2)
                }
                _ => false,
            }
        })
        .map(|(i, _)| i)
        .collect()
}

/// Streaming per-element sums of the layer inputs over the calibration batches.
pub struct MeanTap {
    /// The float model with the tapped layer inputs as its outputs, and once needed its session with, per tapped
    /// tensor, the session output index (None: a graph input, read from the batch). Needed only when calibration
    /// does not show the layer inputs (a calibration cache hit, or a [`Tapped`] source).
    tap_model: ModelProto,
    session: Option<(Session, Vec<Option<usize>>)>,
    /// Per tapped tensor: its name, and its index in [`BatchObserver::wanted`] (None: a graph input).
    tensors: Vec<(String, Option<usize>)>,
    /// The model's outputs, read from calibration for the guard's float reference (empty without bias correction).
    outputs: Vec<String>,
    /// The float model's outputs on the held batches, per output, concatenated in batch order; `None` once a held
    /// batch came without them (then the guard runs the float model itself).
    reference: Option<Vec<Option<Vec<f32>>>>,
    sums: Vec<Vec<f64>>,
    /// Per tensor: the shape without the batch dimension, or None once it changed between batches (then the
    /// layers reading it are not corrected).
    shapes: Vec<Option<Vec<i64>>>,
    /// Per tensor: whether a layer reading it needs the mean per position (a Conv with a kernel, stride or pads);
    /// otherwise only per-channel sums are kept (1x1 Convs and Gemms), a fraction of the memory.
    full_map: Vec<bool>,
    items: Vec<u64>,
    /// Learned rounding's input second moments: (target node index, tapped tensor index, moment).
    moments: Vec<(usize, usize, Moment)>,
    /// Layers learned rounding leaves alone for size ([`gptq::MAX_INPUTS`], [`gptq::BUDGET`]).
    too_big: Vec<String>,
    /// The first calibration batches, kept for the guard of [`MeanTap::apply`] (at most [`HOLD_BATCHES`] and
    /// [`HOLD_BYTES`]).
    held: Vec<HeldBatch>,
    held_bytes: usize,
    error: Option<Error>,
}

/// Bytes of calibration batches the tap keeps for the bias-correction guard (EfficientNet-Lite0's 31 images take
/// 19 MB); later batches are not held.
pub const HOLD_BYTES: usize = 64 << 20;

/// Calibration batches the tap keeps for the guard at most, so that its cost (two quantized inferences per batch)
/// stops growing with the calibration set. Not lower: with 8, equalization + bias correction took 2.0x the MinMax-only
/// CPU time on EfficientNet-Lite0 (2.9x with all 31 images), but the guard's decision changed on the CPU preset
/// and hand-landmark's output 3 fell from 9.9 to 3.7 dB (docs/quantization-sweep.md).
pub const HOLD_BATCHES: usize = 32;

/// One calibration batch, copied: (input name, element type, shape, bytes) per tensor.
pub(crate) type HeldBatch = Vec<(String, ElementType, Vec<i64>, Vec<u8>)>;

/// `model` with only the layer inputs `names` as outputs (ORT then skips what nothing needs).
fn tap_model(model: &ModelProto, names: &[String]) -> ModelProto {
    let mut m = model.clone();
    let gm = m.graph.as_mut().expect("the tap's model has a graph");
    let inputs: HashSet<String> = gm.input.iter().filter_map(|v| v.name.clone()).collect();
    let old_outputs = std::mem::take(&mut gm.output);
    for x in names.iter().filter(|x| !inputs.contains(*x)) {
        let vi = gm
            .value_info
            .iter()
            .chain(old_outputs.iter())
            .find(|v| v.name.as_ref() == Some(x))
            .cloned()
            .unwrap_or_else(|| ValueInfoProto {
                name: Some(x.clone()),
                ..Default::default()
            });
        gm.output.push(vi);
    }
    if gm.output.is_empty() {
        // Every layer reads a graph input: keep one real output so the model stays valid.
        gm.output.push(old_outputs[0].clone());
    }
    m
}

/// One tapped tensor's values in a batch, and its shape.
type Seen<'a> = Option<(Cow<'a, [f32]>, Vec<i64>)>;

impl MeanTap {
    /// A tap for the layers of `model` that bias correction applies to under `cfg`; `None` when there is none.
    pub fn new(model: &ModelProto, cfg: &QuantConfig) -> Result<Option<MeanTap>> {
        let Some(g) = model.graph.as_ref() else {
            return Ok(None);
        };
        let mut names: Vec<String> = Vec::new();
        let mut full: Vec<bool> = Vec::new();
        let mut moments = Vec::new();
        let (mut held, mut too_big) = (0usize, Vec::new());
        for i in targets(g, cfg) {
            let n = &g.node[i];
            let x = &n.input[0];
            let map = op(n) == "Conv" && !pointwise(g, n);
            let k = match names.iter().position(|y| y == x) {
                Some(k) => {
                    full[k] |= map;
                    k
                }
                None => {
                    names.push(x.clone());
                    full.push(map);
                    names.len() - 1
                }
            };
            if cfg.learned_rounding {
                let geometry = g
                    .initializer
                    .iter()
                    .find(|t| t.name.as_ref() == Some(&n.input[1]))
                    .and_then(|t| Geometry::of(n, &t.dims));
                if let Some(geometry) = geometry {
                    match geometry.accumulators() {
                        Some(a) if held + a <= gptq::BUDGET => {
                            held += a;
                            let bias = cfg.rounding.bias_first
                                && cfg.bias_type == crate::quant::BiasType::Int8
                                && n.input.get(2).is_some_and(|b| !b.is_empty());
                            moments.push((i, k, Moment::new(geometry, bias)));
                        }
                        _ => too_big.push(n.name.clone().unwrap_or_else(|| n.output[0].clone())),
                    }
                }
            }
        }
        if names.is_empty() {
            return Ok(None);
        }
        let inputs: HashSet<&str> = g.input.iter().filter_map(|v| v.name.as_deref()).collect();
        let mut wanted = 0usize;
        let tensors = names
            .iter()
            .map(|x| {
                let slot = (!inputs.contains(x.as_str())).then(|| {
                    wanted += 1;
                    wanted - 1
                });
                (x.clone(), slot)
            })
            .collect();
        let outputs: Vec<String> = match cfg.bias_correction {
            true => g.output.iter().filter_map(|v| v.name.clone()).collect(),
            false => Vec::new(),
        };
        let n = names.len();
        Ok(Some(MeanTap {
            tap_model: tap_model(model, &names),
            session: None,
            tensors,
            reference: Some(vec![Some(Vec::new()); outputs.len()]),
            outputs,
            sums: vec![Vec::new(); n],
            shapes: vec![Some(Vec::new()); n],
            full_map: full,
            items: vec![0; n],
            moments,
            too_big,
            held: Vec::new(),
            held_bytes: 0,
            error: None,
        }))
    }

    /// Number of accumulators held (f64 sums): fixed by the model once the first batch is seen, whatever the
    /// number of samples.
    pub fn accumulators(&self) -> usize {
        self.sums.iter().map(Vec::len).sum::<usize>()
            + self
                .moments
                .iter()
                .map(|(_, _, m)| m.accumulators())
                .sum::<usize>()
    }

    /// Samples (batch items) seen so far, per tapped tensor, maximum over tensors.
    pub fn samples(&self) -> u64 {
        self.items.iter().copied().max().unwrap_or(0)
    }

    fn add(&mut self, k: usize, data: &[f32], shape: &[i64]) {
        let Some(known) = self.shapes[k].as_mut() else {
            return;
        };
        let (n, rest) = match shape.split_first() {
            Some((&n, rest)) if n > 0 => (n as usize, rest),
            _ => return,
        };
        let channels = rest.first().copied().unwrap_or(1).max(1) as usize;
        let per = data.len() / n;
        if known.is_empty() {
            *known = rest.to_vec();
            self.sums[k] = vec![0.0; if self.full_map[k] { per } else { channels }];
        } else if known.as_slice() != rest {
            self.shapes[k] = None;
            return;
        }
        // A non-finite input would poison the mean; such a value is not an expectation to correct for.
        let finite = |v: &f32| if v.is_finite() { *v as f64 } else { 0.0 };
        if self.full_map[k] {
            for item in data.chunks_exact(per) {
                for (s, v) in self.sums[k].iter_mut().zip(item) {
                    *s += finite(v);
                }
            }
        } else {
            let inner = (per / channels).max(1);
            for item in data.chunks_exact(per) {
                for (s, plane) in self.sums[k].iter_mut().zip(item.chunks_exact(inner)) {
                    // Per-channel sums of the spatial mean: the same weight for every item.
                    *s += plane.iter().map(finite).sum::<f64>() / inner as f64;
                }
            }
        }
        self.items[k] += n as u64;
    }

    /// Keeps a copy of `batch` while the budget allows (string tensors are not held), with the float model's
    /// outputs on it from `fetched` (the model's outputs follow the layer inputs there) for the guard.
    fn hold(&mut self, batch: &Batch<'_>, fetched: &[Option<(&[f32], &[i64])>]) {
        let bytes: usize = batch.tensors.iter().map(|(_, t)| t.data().len()).sum();
        let strings = batch
            .tensors
            .iter()
            .any(|(_, t)| t.element_type() == ElementType::String);
        if strings || self.held.len() >= HOLD_BATCHES || self.held_bytes + bytes > HOLD_BYTES {
            return;
        }
        self.held_bytes += bytes;
        self.held.push(
            batch
                .tensors
                .iter()
                .map(|(n, t)| {
                    (
                        n.clone(),
                        t.element_type(),
                        t.shape().to_vec(),
                        t.data().to_vec(),
                    )
                })
                .collect(),
        );
        let first = self.tensors.iter().filter(|(_, s)| s.is_some()).count();
        let outs = (first..first + self.outputs.len()).map(|j| fetched.get(j).copied().flatten());
        let complete = self.reference.as_mut().is_some_and(|r| {
            r.iter_mut()
                .zip(outs)
                .all(|(slot, f)| match (slot.as_mut(), f) {
                    (Some(v), Some((data, _))) => {
                        v.extend_from_slice(data);
                        true
                    }
                    _ => false,
                })
        });
        if !complete {
            self.reference = None;
        }
    }

    /// The tapped tensors of `batch` from the tap's own float session (created on first use), and the model's
    /// outputs where that session has them (calibration's augmented model has, see [`MeanTap::set_session_model`]).
    #[allow(clippy::type_complexity)]
    fn run_own<'b>(
        &mut self,
        batch: &'b Batch<'_>,
    ) -> Result<(Vec<Seen<'b>>, Vec<Option<(Vec<f32>, Vec<i64>)>>)> {
        if self.session.is_none() {
            let options = crate::quant::calibrate::measuring_session_options();
            let session = Session::from_model(&Model::from_proto(self.tap_model.clone()), &options)
                .map_err(|e| e.context("creating the bias-correction session"))?;
            let at = |x: &String| session.outputs().iter().position(|o| &o.name == x);
            let idx = self
                .tensors
                .iter()
                .map(|(x, slot)| slot.and_then(|_| at(x)))
                .chain(self.outputs.iter().map(at))
                .collect();
            self.session = Some((session, idx));
        }
        let (session, idx) = self.session.as_ref().expect("created above");
        let mut ins: Vec<(usize, TensorRef<'_>)> = Vec::with_capacity(batch.tensors.len());
        for (name, t) in &batch.tensors {
            ins.push((session.input_index(name)?, *t));
        }
        let mut wanted: Vec<usize> = idx.iter().filter_map(|o| *o).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut outs: Vec<(usize, Option<crate::runtime::TensorMut<'_>>)> =
            wanted.iter().map(|&i| (i, None)).collect();
        let ran = if outs.is_empty() {
            Vec::new()
        } else {
            session.run_indexed(None, &ins, &mut outs)?
        };
        let get = |o: usize| -> Result<(Vec<f32>, Vec<i64>)> {
            let j = wanted.iter().position(|w| *w == o).expect("requested");
            let t = ran[j]
                .as_ref()
                .ok_or_else(|| Error::internal("bias-correction run returned no tensor"))?;
            Ok((t.as_slice::<f32>()?.to_vec(), t.shape().to_vec()))
        };
        let n = self.tensors.len();
        let mut seen = Vec::with_capacity(n);
        for (k, o) in idx[..n].iter().enumerate() {
            seen.push(match o {
                Some(o) => get(*o).map(|(d, s)| Some((Cow::Owned(d), s)))?,
                None => self.input_values(k, batch),
            });
        }
        let mut model_outs = Vec::with_capacity(idx.len() - n);
        for o in &idx[n..] {
            model_outs.push(match o {
                Some(o) => get(*o).ok(),
                None => None,
            });
        }
        Ok((seen, model_outs))
    }

    /// Runs the tap's own session, where one is needed, on `model` (with every tapped tensor and the model's
    /// outputs among its outputs) instead of the layer-input model: the pipeline passes calibration's augmented
    /// model, so that a calibration-cache hit sees the values, bit for bit, that a fresh calibration shows.
    pub(crate) fn set_session_model(&mut self, model: ModelProto) {
        self.tap_model = model;
    }

    /// Tapped tensor `k` when it is a float graph input of `batch`.
    fn input_values<'b>(&self, k: usize, batch: &'b Batch<'_>) -> Seen<'b> {
        let name = &self.tensors[k].0;
        let (_, t) = batch.tensors.iter().find(|(n, _)| n == name)?;
        (t.element_type() == ElementType::Float32).then(|| {
            (
                crate::quant::calibrate::f32_data(t.data()),
                t.shape().to_vec(),
            )
        })
    }

    /// One batch: the layer inputs from `fetched` (the calibration run's, aligned with [`BatchObserver::wanted`]),
    /// or, where one is missing, all of them from the tap's own session.
    fn observe_fetched(
        &mut self,
        batch: &Batch<'_>,
        fetched: &[Option<(&[f32], &[i64])>],
    ) -> Result<()> {
        let shown = |slot: &Option<usize>| slot.map(|j| fetched.get(j).copied().flatten());
        let seen: Vec<Seen<'_>> = if self
            .tensors
            .iter()
            .any(|(_, slot)| shown(slot).is_some_and(|f| f.is_none()))
        {
            let (seen, outs) = self.run_own(batch)?;
            // The model's outputs where calibration's would be: after the layer inputs.
            let first = self.tensors.iter().filter(|(_, s)| s.is_some()).count();
            let mut own: Vec<Option<(&[f32], &[i64])>> = vec![None; first];
            own.extend(
                outs.iter()
                    .map(|o| o.as_ref().map(|(d, s)| (&d[..], &s[..]))),
            );
            self.hold(batch, &own);
            seen
        } else {
            self.hold(batch, fetched);
            (0..self.tensors.len())
                .map(|k| match shown(&self.tensors[k].1) {
                    Some(f) => f.map(|(d, sh)| (Cow::Borrowed(d), sh.to_vec())),
                    None => self.input_values(k, batch),
                })
                .collect()
        };
        for (k, s) in seen.iter().enumerate() {
            if let Some((data, shape)) = s {
                self.add(k, data, shape);
            }
        }
        // Second moments: one layer per task on all cores (each layer's sums stay in batch order).
        let seen = &seen;
        parallel(&mut self.moments, |(_, k, m)| {
            if let Some((data, shape)) = &seen[*k] {
                m.add(data, shape);
            }
        });
        Ok(())
    }

    /// The per-element means of every tapped tensor with a stable shape: name -> (mean, shape without batch).
    fn means(&self) -> HashMap<String, (Vec<f32>, Vec<i64>)> {
        let mut out = HashMap::new();
        for (k, (name, _)) in self.tensors.iter().enumerate() {
            if let (Some(shape), n) = (&self.shapes[k], self.items[k]) {
                if n > 0 {
                    let m = self.sums[k].iter().map(|s| (s / n as f64) as f32).collect();
                    let shape = if self.full_map[k] {
                        shape.clone()
                    } else {
                        shape[..shape.len().min(1)].to_vec()
                    };
                    out.insert(name.clone(), (m, shape));
                }
            }
        }
        out
    }

    /// Folds the measured error into the biases of `model` (the model the tap was built from), after learned
    /// rounding where that is on. With `calib` (the activation ranges), the corrections are then kept only if the
    /// quantized model with them is no worse on any output, on the held calibration samples, than without them
    /// ([`crate::quant::bias_guard`]). Returns report notes. Errors: the tap's own run failure, if calibration
    /// succeeded in spite of it.
    pub fn apply(
        self,
        model: &mut ModelProto,
        cfg: &QuantConfig,
        calib: Option<&Calibration>,
    ) -> Result<Vec<String>> {
        self.apply_emitting(model, cfg, calib)
            .map(|(notes, _)| notes)
    }

    /// [`MeanTap::apply`], with the QDQ emission of the model as left in `model` where the guard made one (the
    /// pipeline then need not emit it again).
    pub(crate) fn apply_emitting(
        mut self,
        model: &mut ModelProto,
        cfg: &QuantConfig,
        calib: Option<&Calibration>,
    ) -> Result<(Vec<String>, Option<Emitted>)> {
        if let Some(e) = self.error.take() {
            return Err(e.context("bias correction"));
        }
        let means = self.means();
        let held = std::mem::take(&mut self.held);
        let guarded = cfg.bias_correction && calib.is_some() && !held.is_empty();
        // The guard compares against the float model as calibrated (equalized, before rounding): its outputs as
        // calibration saw them, else a copy of it to run.
        let reference = self.reference.take().filter(|_| guarded);
        let float = (guarded && reference.is_none()).then(|| model.clone());
        let Some(g) = model.graph.as_mut() else {
            return Ok((Vec::new(), None));
        };
        let (errors, mut notes) = self.round_weights(g, cfg)?;
        if !cfg.bias_correction {
            return Ok((notes, None));
        }
        let uncorrected = guarded.then(|| model.clone());
        let g = model.graph.as_mut().expect("checked above");
        let (done, skipped) = correct_biases(g, &errors, &means)?;
        notes.push(format!(
            "bias correction: {done} layers corrected for the mean error of their quantized weights"
        ));
        if !skipped.is_empty() {
            notes.push(format!(
                "bias correction skipped (input shape varied between batches or layout not handled): {}",
                skipped.join(", ")
            ));
        }
        let mut emitted = None;
        if let (Some(uncorrected), Some(calib)) = (uncorrected, calib) {
            if done > 0 {
                let guard = Guard {
                    float: reference.ok_or_else(|| float.as_ref().expect("cloned above")),
                    uncorrected: &uncorrected,
                    held: &held,
                    calib,
                    cfg,
                };
                let (note, e) = guard.decide(model, &errors, &means, done);
                notes.push(note);
                emitted = e;
            }
        }
        Ok((notes, emitted))
    }

    /// Learned rounding of every target layer with a second moment (the weight is rewritten in place, on the
    /// emitter's grid); returns each target's weight error `W' - W` (learned or plain) and the rounding notes.
    fn round_weights(
        self,
        g: &mut GraphProto,
        cfg: &QuantConfig,
    ) -> Result<(Vec<LayerError>, Vec<String>)> {
        let samples = self.samples();
        let few = samples < gptq::MIN_SAMPLES;
        let moments: HashMap<usize, Moment> = if few {
            HashMap::new()
        } else {
            factored(self.moments, cfg.rounding)
        };
        let (mut rounded, mut ratio_sum, mut finer, mut biased) = (0usize, 0f64, 0usize, 0usize);
        let mut plain: Vec<String> = self
            .too_big
            .iter()
            .map(|l| format!("{l} (too many inputs for the second-moment budget)"))
            .collect();
        let mut errors = Vec::new();
        for i in targets(g, cfg) {
            let n = &g.node[i].clone();
            let label = n.name.clone().unwrap_or_else(|| n.output[0].clone());
            let wi = g
                .initializer
                .iter()
                .position(|t| t.name.as_ref() == Some(&n.input[1]))
                .expect("target weight is an initializer");
            let (wv, wd) = (
                read_f32(&g.initializer[wi])?,
                g.initializer[wi].dims.clone(),
            );
            let axis = cfg.per_channel.then_some(match op(n) {
                "Gemm" if attr_i(n, "transB").unwrap_or(0) == 0 => 1,
                "MatMul" => 1,
                _ => 0,
            });
            // Learned rounding writes the weight in place (already on the emitter's grid): only a weight no other
            // node reads.
            let own = readers(g, &n.input[1]) == 1;
            let learned = match moments.get(&i) {
                Some(_) if !own => {
                    plain.push(format!("{label} (weight shared)"));
                    None
                }
                Some(m) => round_target(g, n, (&wv, &wd), axis, m, cfg)?
                    .map_err(|why| plain.push(format!("{label} ({why})")))
                    .ok(),
                None => None,
            };
            let err: Vec<f32> = match &learned {
                Some(r) => r.values.iter().zip(&wv).map(|(a, b)| a - b).collect(),
                None => weight_error(&wv, &wd, cfg, axis),
            };
            if let Some(r) = learned {
                rounded += 1;
                finer += usize::from(r.finer);
                ratio_sum += r.ratio;
                biased += usize::from(r.bias);
                let name = n.input[1].clone();
                g.initializer[wi] = f32_tensor(&name, &wd, &r.values);
            }
            // A MatMul has no bias to take the correction.
            if op(n) == "MatMul" {
                continue;
            }
            errors.push(LayerError {
                node: i,
                label,
                err,
                dims: wd,
            });
        }
        let mut notes = Vec::new();
        if cfg.learned_rounding && few {
            notes.push(format!(
                "learned rounding skipped: {samples} calibration samples, it needs at least {}",
                gptq::MIN_SAMPLES
            ));
        } else if cfg.learned_rounding {
            let tail = rounding_tail(
                rounded,
                ratio_sum,
                cfg.rounding.scale_search.then_some(finer),
            );
            notes.push(format!(
                "learned rounding: {rounded} of {} layers rounded by second-order error compensation{tail}",
                moments.len() + self.too_big.len(),
            ));
            notes.extend((biased > 0).then(|| {
                format!("learned rounding: {biased} int8 biases rounded first, their error carried by the weights")
            }));
            if !plain.is_empty() {
                notes.push(format!(
                    "learned rounding kept plain rounding for: {}",
                    plain.join(", ")
                ));
            }
        }
        Ok((errors, notes))
    }
}

/// Learned rounding of target `n`'s weight `w` (values, dims) with its moment `m`, its INT8 bias taken in where
/// [`gptq::Options::bias_first`] asks; the inner `Err` says why plain rounding stays.
fn round_target(
    g: &GraphProto,
    n: &NodeProto,
    w: (&[f32], &[i64]),
    axis: Option<usize>,
    m: &Moment,
    cfg: &QuantConfig,
) -> Result<std::result::Result<gptq::Rounded, &'static str>> {
    let bias = layer_bias(g, n, cfg)?;
    let bias = bias.as_ref().map(|(v, scale)| gptq::Bias {
        values: v,
        scale: *scale,
    });
    Ok(round_layer(
        w.0,
        w.1,
        weight_spec(cfg, axis),
        m,
        cfg.rounding,
        bias,
    ))
}

/// The INT8 bias of target `n` for learned rounding, when [`gptq::Options::bias_first`] takes it in: its values and
/// the emitter's power-of-two scale for them.
fn layer_bias(g: &GraphProto, n: &NodeProto, cfg: &QuantConfig) -> Result<Option<(Vec<f32>, f32)>> {
    if !cfg.rounding.bias_first || cfg.bias_type != crate::quant::BiasType::Int8 {
        return Ok(None);
    }
    let Some(b) = n.input.get(2).filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let Some(t) = g.initializer.iter().find(|t| t.name.as_ref() == Some(b)) else {
        return Ok(None);
    };
    let v = read_f32(t)?;
    let scale = crate::quant::qdq::quantize_bias_int8(&v).scale[0];
    Ok(Some((v, scale)))
}

/// The end of the learned-rounding note: the mean error ratio over the `rounded` layers, and how many of them took
/// a finer scale (`finer`, when the scale search is on).
fn rounding_tail(rounded: usize, ratio_sum: f64, finer: Option<usize>) -> String {
    let mut tail = String::new();
    if rounded > 0 {
        let r = ratio_sum / rounded as f64;
        tail =
            format!(" (calibration output error {r:.2}x that of plain rounding, mean over layers)");
    }
    if let Some(f) = finer {
        tail += &format!("; {f} on a finer per-tensor scale than the emitter's first choice");
    }
    tail
}

/// The moments by target node, factored (the costly step of learned rounding) for all layers at once on all
/// cores: one layer at a time left a core idle on the large single-group layers.
fn factored(
    mut moments: Vec<(usize, usize, Moment)>,
    opts: gptq::Options,
) -> HashMap<usize, Moment> {
    parallel(&mut moments, |(_, _, m)| m.factor(opts));
    moments.into_iter().map(|(i, _, m)| (i, m)).collect()
}

/// How many node inputs read `name`.
fn readers(g: &GraphProto, name: &str) -> usize {
    g.node
        .iter()
        .flat_map(|m| m.input.iter())
        .filter(|x| *x == name)
        .count()
}

/// What the guard of the bias corrections measures with ([`bias_guard`]).
struct Guard<'a> {
    float: bias_guard::Reference<'a>,
    uncorrected: &'a ModelProto,
    held: &'a [HeldBatch],
    calib: &'a Calibration,
    cfg: &'a QuantConfig,
}

impl Guard<'_> {
    /// Keeps the `done` corrections in `model` if no output is worse with them on the held calibration batches;
    /// otherwise keeps only those of layers that reach no worse output, if that subset passes the same test; otherwise
    /// none (`model` becomes the uncorrected model). Returns the report note and the emission of the model kept
    /// (`None` when the guard could not run).
    fn decide(
        self,
        model: &mut ModelProto,
        errors: &[LayerError],
        means: &HashMap<String, (Vec<f32>, Vec<i64>)>,
        done: usize,
    ) -> (String, Option<Emitted>) {
        let b = self.held.len();
        let measured = bias_guard::baseline(
            self.uncorrected,
            self.float,
            self.held,
            self.calib,
            self.cfg,
        )
        .and_then(|base| {
            Ok((
                bias_guard::compare(model, &base, self.calib, self.cfg)?,
                base,
            ))
        });
        let (v, mut base) = match measured {
            Ok(m) => m,
            Err(e) => {
                let note = format!(
                    "bias correction kept unchecked: the guard could not run ({})",
                    e.message()
                );
                return (note, None);
            }
        };
        if v.worse.is_empty() {
            let note = format!(
                "bias correction kept: no output worse on {b} held calibration batches ({})",
                v.rows
            );
            return (note, Some(v.emitted));
        }
        let mask = v.worse.iter().fold(0u64, |m, k| m | (1 << k));
        let subset: Vec<LayerError> = bias_guard::output_reach(self.uncorrected)
            .map(|reach| {
                errors
                    .iter()
                    .filter(|e| reach[e.node] & mask == 0)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut partial = self.uncorrected.clone();
        let kept = match partial.graph.as_mut() {
            Some(g) if !subset.is_empty() => {
                correct_biases(g, &subset, means).map_or(0, |(n, _)| n)
            }
            _ => 0,
        };
        let pv = (kept > 0)
            .then(|| bias_guard::compare(&partial, &base, self.calib, self.cfg).ok())
            .flatten();
        if let Some(pv) = pv.filter(|pv| pv.worse.is_empty()) {
            *model = partial;
            let note = format!(
                "bias correction kept on {kept} of {done} layers: with all, output(s) {:?} were worse on {b} held \
                 calibration batches ({}); the layers reaching them keep their bias ({})",
                v.worse, v.rows, pv.rows
            );
            return (note, Some(pv.emitted));
        }
        *model = self.uncorrected.clone();
        let note = format!(
            "bias correction dropped: output(s) {:?} worse with it on {b} held calibration batches ({})",
            v.worse, v.rows
        );
        (note, base.uncorrected.take())
    }
}

/// One target layer's weight quantization error.
#[derive(Clone)]
struct LayerError {
    node: usize,
    label: String,
    /// `W' - W`, laid out as the weight.
    err: Vec<f32>,
    dims: Vec<i64>,
}

/// Subtracts each layer's expected output error (its weight error times its input mean) from its bias, in a new
/// initializer. Returns how many layers were corrected and the labels of those skipped.
fn correct_biases(
    g: &mut GraphProto,
    errors: &[LayerError],
    means: &HashMap<String, (Vec<f32>, Vec<i64>)>,
) -> Result<(usize, Vec<String>)> {
    let mut taken: HashSet<String> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.clone())
        .chain(g.node.iter().flat_map(|n| n.output.iter().cloned()))
        .chain(g.input.iter().filter_map(|v| v.name.clone()))
        .collect();
    let (mut done, mut skipped, mut replaced) = (0usize, Vec::new(), Vec::new());
    for e in errors {
        let n = &g.node[e.node];
        let delta = means
            .get(&n.input[0])
            .and_then(|(mean, shape)| match op(n) {
                "Conv" => conv_delta(n, &e.err, &e.dims, mean, shape),
                _ => gemm_delta(n, &e.err, &e.dims, mean),
            });
        let Some(delta) = delta else {
            skipped.push(e.label.clone());
            continue;
        };
        let bias_name = n.input.get(2).filter(|b| !b.is_empty()).cloned();
        let mut bias = match &bias_name {
            Some(b) => read_f32(
                g.initializer
                    .iter()
                    .find(|t| t.name.as_ref() == Some(b))
                    .expect("target bias is an initializer"),
            )?,
            None => vec![0.0; delta.len()],
        };
        if bias.len() != delta.len() {
            skipped.push(e.label.clone());
            continue;
        }
        replaced.extend(bias_name.clone());
        bias.iter_mut().zip(&delta).for_each(|(b, d)| *b -= d);
        // A new initializer: the old bias may be shared with a layer that is not corrected the same way.
        let base = format!("{}_corrected", bias_name.as_deref().unwrap_or(&e.label));
        let mut name = base.clone();
        let mut k = 1;
        while taken.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        taken.insert(name.clone());
        g.initializer
            .push(f32_tensor(&name, &[bias.len() as i64], &bias));
        let node = &mut g.node[e.node];
        if node.input.len() < 3 {
            node.input.resize(3, String::new());
        }
        node.input[2] = name;
        done += 1;
    }
    drop_unread(g, replaced);
    Ok((done, skipped))
}

/// Drops the replaced biases nothing reads any more (ORT warns about unused initializers). Not when a node has a
/// subgraph, which may read an outer initializer by name.
fn drop_unread(g: &mut GraphProto, replaced: Vec<String>) {
    let has_subgraphs = g.node.iter().any(|n| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    });
    if has_subgraphs {
        return;
    }
    let read: HashSet<&String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .chain(g.output.iter().filter_map(|v| v.name.as_ref()))
        .collect();
    let gone: HashSet<String> = replaced.into_iter().filter(|b| !read.contains(b)).collect();
    g.initializer
        .retain(|t| t.name.as_ref().is_none_or(|n| !gone.contains(n)));
}

/// A 1x1 Conv without padding: every output position reads exactly one input position per channel, so with stride 1
/// the expectation over output positions is the channel mean. (Strided 1x1 Convs skip positions: full map.)
fn pointwise(g: &GraphProto, n: &NodeProto) -> bool {
    let ones = |a: &str| attr_ints(n, a).is_none_or(|v| v.iter().all(|&x| x == 1));
    let no_pads = attr_ints(n, "pads").is_none_or(|v| v.iter().all(|&x| x == 0));
    let k1 = g
        .initializer
        .iter()
        .find(|t| t.name.as_ref() == Some(&n.input[1]))
        .is_some_and(|t| t.dims.len() == 4 && t.dims[2] == 1 && t.dims[3] == 1);
    k1 && ones("strides") && no_pads
}

/// `(W' - W)` of `w` under `cfg` with per-channel `axis`.
fn weight_error(w: &[f32], dims: &[i64], cfg: &QuantConfig, axis: Option<usize>) -> Vec<f32> {
    let q = quantize_weight(w, dims, weight_spec(cfg, axis));
    dequantize(&q).iter().zip(w).map(|(a, b)| a - b).collect()
}

/// Conv: expected error per output channel, with the input mean map `mean` ([C, H, W]).
fn conv_delta(
    n: &NodeProto,
    err: &[f32],
    wd: &[i64],
    mean: &[f32],
    shape: &[i64],
) -> Option<Vec<f32>> {
    if wd.len() != 4 {
        return None;
    }
    // Per-channel means only (see `pointwise`): the same as an [C, 1, 1] map with a 1x1 kernel.
    let (c, h, wi) = match *shape {
        [c, h, w] => (c, h, w),
        [c] if wd[2] == 1 && wd[3] == 1 => (c, 1, 1),
        _ => return None,
    };
    if mean.len() as i64 != c * h * wi {
        return None;
    }
    let (m, cg, kh, kw) = (wd[0], wd[1], wd[2], wd[3]);
    let group = attr_i(n, "group").unwrap_or(1);
    if group <= 0 || cg * group != c || m % group != 0 {
        return None;
    }
    let pw = shape.len() == 1;
    let strides = if pw {
        vec![1, 1]
    } else {
        attr_ints(n, "strides").unwrap_or_else(|| vec![1, 1])
    };
    let dil = attr_ints(n, "dilations").unwrap_or_else(|| vec![1, 1]);
    let pads = if pw {
        vec![0; 4]
    } else {
        attr_ints(n, "pads").unwrap_or_else(|| vec![0; 4])
    };
    if strides.len() != 2 || dil.len() != 2 || pads.len() != 4 {
        return None;
    }
    let oh = (h + pads[0] + pads[2] - ((kh - 1) * dil[0] + 1)) / strides[0] + 1;
    let ow = (wi + pads[1] + pads[3] - ((kw - 1) * dil[1] + 1)) / strides[1] + 1;
    if oh <= 0 || ow <= 0 {
        return None;
    }
    // E over output positions of the input each kernel tap reads: [C, KH, KW].
    let mut tap = vec![0f64; (c * kh * kw) as usize];
    for ci in 0..c {
        let plane = &mean[(ci * h * wi) as usize..((ci + 1) * h * wi) as usize];
        for a in 0..kh {
            for b in 0..kw {
                let mut s = 0f64;
                for y in 0..oh {
                    let iy = y * strides[0] - pads[0] + a * dil[0];
                    if iy < 0 || iy >= h {
                        continue;
                    }
                    let row = &plane[(iy * wi) as usize..((iy + 1) * wi) as usize];
                    for x in 0..ow {
                        let ix = x * strides[1] - pads[1] + b * dil[1];
                        if ix >= 0 && ix < wi {
                            s += row[ix as usize] as f64;
                        }
                    }
                }
                tap[((ci * kh + a) * kw + b) as usize] = s / (oh * ow) as f64;
            }
        }
    }
    let per_group = m / group;
    let k = (cg * kh * kw) as usize;
    Some(
        (0..m)
            .map(|o| {
                let base = ((o / per_group) * cg * kh * kw) as usize;
                let e = &err[o as usize * k..(o as usize + 1) * k];
                e.iter()
                    .zip(&tap[base..base + k])
                    .map(|(a, b)| *a as f64 * b)
                    .sum::<f64>() as f32
            })
            .collect(),
    )
}

/// Gemm (alpha = beta = 1, no transA): expected error per output, with the input mean `mean` ([K]).
fn gemm_delta(n: &NodeProto, err: &[f32], wd: &[i64], mean: &[f32]) -> Option<Vec<f32>> {
    if wd.len() != 2 {
        return None;
    }
    let trans_b = attr_i(n, "transB").unwrap_or(0) != 0;
    let (k, nout) = if trans_b {
        (wd[1], wd[0])
    } else {
        (wd[0], wd[1])
    };
    if mean.len() as i64 != k {
        return None;
    }
    let (k, nout) = (k as usize, nout as usize);
    Some(
        (0..nout)
            .map(|j| {
                (0..k)
                    .map(|i| {
                        let e = if trans_b {
                            err[j * k + i]
                        } else {
                            err[i * nout + j]
                        };
                        e as f64 * mean[i] as f64
                    })
                    .sum::<f64>() as f32
            })
            .collect(),
    )
}

impl BatchObserver for MeanTap {
    /// The layer inputs that are not graph inputs, then the model's outputs (for the guard).
    fn wanted(&self) -> Vec<String> {
        self.tensors
            .iter()
            .filter(|(_, slot)| slot.is_some())
            .map(|(n, _)| n.clone())
            .chain(self.outputs.iter().cloned())
            .collect()
    }
    fn observe(&mut self, batch: &Batch<'_>, fetched: &[Option<(&[f32], &[i64])>]) {
        if self.error.is_none() {
            if let Err(e) = self.observe_fetched(batch, fetched) {
                self.error = Some(e.context(format!("batch {}", batch.origin)));
            }
        }
    }
}

/// A calibration source that also feeds each batch to a [`MeanTap`] (which then runs the float model itself:
/// [`crate::quant::calibrate::calibrate_observed`] spares that run). A tap failure does not stop calibration
/// (calibration reports bad batches better); it is returned by [`MeanTap::apply`].
pub struct Tapped<'a> {
    pub inner: &'a mut dyn CalibrationSource,
    pub tap: &'a mut MeanTap,
}

impl CalibrationSource for Tapped<'_> {
    fn len_hint(&self) -> Option<usize> {
        self.inner.len_hint()
    }
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>> {
        let b = self.inner.next_batch(inputs)?;
        if let Some(batch) = &b {
            if self.tap.error.is_none() {
                if let Err(e) = self.tap.observe_fetched(batch, &[]) {
                    self.tap.error = Some(e.context(format!("batch {}", batch.origin)));
                }
            }
        }
        Ok(b)
    }
}
