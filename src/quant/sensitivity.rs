//! Per-layer sensitivity: how much of the quantized model's output error each quantized node causes.
//!
//! Method: "leave one float". With every node quantized the model's outputs have some SQNR against the float model;
//! for each quantized node, the model is emitted again with only that node left float (its original float weights
//! restored) and the SQNR measured again. The gain in dB is the node's error contribution: it is exactly what
//! mixed precision buys by raising that node, which is what the ranking is for. One emission and one ONNX Runtime
//! session per node, on the first [`RANK_SAMPLES`] held calibration samples.
//!
//! The calibration samples are held in memory while calibration streams them ([`Holding`], at most
//! [`HOLD_BYTES`]); the float model's outputs on them are kept (outputs only, not activations), and each candidate's
//! outputs are reduced to sums of squares as they come, so memory does not grow with the number of candidates.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::onnx::Model;
use crate::quant::data::{Batch, CalibrationSource, OwnedTensor};
use crate::runtime::{ElementType, Session, SessionOptions, TensorInfo};

/// Budget for the calibration samples held for sensitivity and mixed precision.
pub const HOLD_BYTES: usize = 256 << 20;
/// Samples the leave-one-float ranking runs on (the mixed-precision loop checks its target on all held samples).
pub const RANK_SAMPLES: usize = 8;
/// An SQNR with no error at all is reported as this (JSON has no infinity).
const MAX_DB: f64 = 300.0;

/// One held sample: its named input tensors.
pub type Sample = Vec<(String, OwnedTensor)>;

/// A calibration source that keeps a copy of each batch it hands out, within [`HOLD_BYTES`].
pub struct Holding<'a> {
    pub inner: &'a mut dyn CalibrationSource,
    pub held: Vec<Sample>,
    bytes: usize,
    /// Byte budget: [`HOLD_BYTES`], or 0 when nothing is to be held.
    limit: usize,
    /// Whether a batch was left out for the budget (reported).
    pub overflowed: bool,
}

impl<'a> Holding<'a> {
    /// Holds batches when `hold` (else passes them through untouched).
    pub fn new(inner: &'a mut dyn CalibrationSource, hold: bool) -> Self {
        Holding {
            inner,
            held: Vec::new(),
            bytes: 0,
            limit: if hold { HOLD_BYTES } else { 0 },
            overflowed: false,
        }
    }

    /// Holds batches within `limit` bytes (a smaller budget than [`HOLD_BYTES`], for a cheaper consumer).
    pub fn with_limit(inner: &'a mut dyn CalibrationSource, limit: usize) -> Self {
        Holding {
            limit,
            ..Holding::new(inner, false)
        }
    }
}

/// Copies `batch` into `held` if it fits the budget `limit`; false when it does not (or holds strings).
fn keep(held: &mut Vec<Sample>, bytes: &mut usize, limit: usize, batch: &Batch<'_>) -> bool {
    let size: usize = batch.tensors.iter().map(|(_, t)| t.data().len()).sum();
    let strings = batch
        .tensors
        .iter()
        .any(|(_, t)| t.element_type() == ElementType::String);
    if strings || *bytes + size > limit {
        return false;
    }
    let sample = batch.tensors.iter().map(|(n, t)| {
        let owned = OwnedTensor {
            element_type: t.element_type(),
            shape: t.shape().to_vec(),
            data: t.data().to_vec(),
        };
        (n.clone(), owned)
    });
    *bytes += size;
    held.push(sample.collect());
    true
}

impl CalibrationSource for Holding<'_> {
    fn len_hint(&self) -> Option<usize> {
        self.inner.len_hint()
    }
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>> {
        let b = self.inner.next_batch(inputs)?;
        if let Some(batch) = &b {
            if self.limit > 0 && !keep(&mut self.held, &mut self.bytes, self.limit, batch) {
                self.overflowed = true;
            }
        }
        Ok(b)
    }
}

/// How close a model's outputs are to the float model's on the held samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Score {
    /// SQNR of the worst float output, in dB.
    pub sqnr_db: f64,
    /// Top-1 agreement of the first output (argmax over its last axis) with the float model.
    pub agreement: f64,
}

/// The float model's outputs on the held samples, to score candidates against.
pub struct Reference {
    samples: Vec<Sample>,
    /// Per sample, per output: the float values (None for a non-float output).
    outputs: Vec<Vec<Option<Vec<f32>>>>,
    /// Length of the first output's last axis (for agreement), if known.
    classes: usize,
}

impl Reference {
    /// Runs the float `model` on every held sample. Errors: `Calibration` when no sample is held, and those of
    /// ONNX Runtime.
    pub fn new(model: &Model, samples: Vec<Sample>) -> Result<Reference> {
        if samples.is_empty() {
            return Err(Error::new(
                crate::error::ErrorKind::Calibration,
                "sensitivity / mixed precision: no calibration sample was held (a calibration-cache hit reads none, \
                 or every batch was over the memory budget)",
            ));
        }
        let session = eval_session(model)?;
        let mut outputs = Vec::with_capacity(samples.len());
        let mut classes = 0;
        for s in &samples {
            let (outs, c) = run_outputs(&session, s)?;
            classes = c;
            outputs.push(outs);
        }
        Ok(Reference {
            samples,
            outputs,
            classes,
        })
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The input shapes of the first held sample (the pre-flight needs fixed shapes: the NPU takes batch 1).
    pub fn input_shapes(&self) -> Vec<crate::onnx::InputShape> {
        self.samples[0]
            .iter()
            .map(|(n, t)| crate::onnx::InputShape {
                name: n.clone(),
                dims: t.shape.clone(),
            })
            .collect()
    }

    /// Scores `model` on the first `n` held samples (all when `n` is larger).
    pub fn score(&self, model: &Model, n: usize) -> Result<Score> {
        let session = eval_session(model)?;
        let outs = self.outputs[0].len();
        let (mut signal, mut noise) = (vec![0f64; outs], vec![0f64; outs]);
        let (mut agree, mut rows) = (0usize, 0usize);
        for (s, reference) in self.samples.iter().zip(&self.outputs).take(n) {
            let (got, _) = run_outputs(&session, s)?;
            for (k, (r, q)) in reference.iter().zip(&got).enumerate() {
                let (Some(r), Some(q)) = (r, q) else { continue };
                for (a, b) in r.iter().zip(q) {
                    signal[k] += f64::from(*a) * f64::from(*a);
                    noise[k] += f64::from(a - b) * f64::from(a - b);
                }
            }
            if let (Some(Some(r)), Some(Some(q))) = (reference.first(), got.first()) {
                let c = self.classes.max(1);
                for (ra, qa) in r.chunks(c).zip(q.chunks(c)) {
                    agree += usize::from(argmax(ra) == argmax(qa));
                    rows += 1;
                }
            }
        }
        let sqnr_db = signal
            .iter()
            .zip(&noise)
            .filter(|(s, _)| **s > 0.0)
            .map(|(s, e)| db(*s, *e))
            .fold(MAX_DB, f64::min);
        Ok(Score {
            sqnr_db,
            agreement: if rows == 0 {
                1.0
            } else {
                agree as f64 / rows as f64
            },
        })
    }
}

fn db(signal: f64, noise: f64) -> f64 {
    if noise <= 0.0 {
        MAX_DB
    } else {
        (10.0 * (signal / noise).log10()).min(MAX_DB)
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// A CPU session measuring the model as written (ONNX Runtime's own QDQ fusions, never the CPU plan's rewrite).
fn eval_session(model: &Model) -> Result<Session> {
    let options = SessionOptions {
        fallback_execution: crate::runtime::FallbackExecution::AsWritten,
        ..Default::default()
    };
    Session::from_model(model, &options)
}

/// Every output of one run (float ones as values, others `None`) and the first output's last-axis length.
fn run_outputs(session: &Session, sample: &Sample) -> Result<(Vec<Option<Vec<f32>>>, usize)> {
    let ins: Vec<(&str, crate::runtime::TensorRef<'_>)> =
        sample.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
    let outs = session.run(&ins)?;
    let classes = outs
        .first()
        .and_then(|t| t.shape().last().copied())
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(1);
    let values = outs
        .iter()
        .map(|t| t.as_slice::<f32>().ok().map(<[f32]>::to_vec))
        .collect();
    Ok((values, classes))
}

/// One node's sensitivity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerSensitivity {
    pub name: String,
    pub op_type: String,
    /// Output SQNR (worst output, dB) with only this node left float.
    pub sqnr_db_if_float: f64,
    /// `sqnr_db_if_float` minus the all-quantized SQNR: the node's error contribution (larger is more sensitive).
    pub gain_db: f64,
}

/// The sensitivity analysis, most sensitive node first.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SensitivityReport {
    pub method: String,
    /// Held calibration samples the ranking ran on.
    pub samples: usize,
    /// Output SQNR (worst output, dB) with every node quantized, on the same samples.
    pub baseline_sqnr_db: f64,
    pub seconds: f64,
    pub layers: Vec<LayerSensitivity>,
}

impl SensitivityReport {
    /// The `n` most sensitive nodes, one line each.
    pub fn worst(&self, n: usize) -> Vec<String> {
        self.layers
            .iter()
            .take(n)
            .map(|l| {
                format!(
                    "{} ({}): +{:.2} dB if float ({:.1} dB)",
                    l.name, l.op_type, l.gain_db, l.sqnr_db_if_float
                )
            })
            .collect()
    }
}

/// Ranks `nodes` (name, op type) by leave-one-float gain: `emit(name)` builds the model with that node float.
/// `check` runs between candidates (cancellation).
pub fn rank(
    reference: &Reference,
    baseline: &Model,
    nodes: &[(String, String)],
    emit: &mut dyn FnMut(&str) -> Result<Model>,
    check: &mut dyn FnMut() -> Result<()>,
) -> Result<SensitivityReport> {
    let t0 = std::time::Instant::now();
    let n = RANK_SAMPLES.min(reference.len());
    let base = reference.score(baseline, n)?.sqnr_db;
    let mut layers = Vec::with_capacity(nodes.len());
    for (name, op) in nodes {
        check()?;
        let s = reference.score(&emit(name)?, n)?.sqnr_db;
        layers.push(LayerSensitivity {
            name: name.clone(),
            op_type: op.clone(),
            sqnr_db_if_float: s,
            gain_db: s - base,
        });
    }
    // Stable: equal gains keep graph order, so the ranking is deterministic.
    layers.sort_by(|a, b| b.gain_db.total_cmp(&a.gain_db));
    Ok(SensitivityReport {
        method: "leave one float: each quantized node alone left float (its float weights restored), output SQNR \
                 against the float model"
            .into(),
        samples: n,
        baseline_sqnr_db: base,
        seconds: t0.elapsed().as_secs_f64(),
        layers,
    })
}
