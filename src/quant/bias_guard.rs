//! The guard of bias correction: a correction is kept only where it lowers the measured error.
//!
//! Bias correction removes the mean error that weight quantization causes in each layer's output, measured with the
//! float model's layer inputs. On its own layer that can only help (the mean error is removed from every sample).
//! What it does not see is the quantized model's own activations: with coarse activation steps their rounding has
//! a mean too, and a correction can add to it instead of cancelling it (hand-landmark's XINT8 score fell from 4.1
//! to 0.6 dB that way). So the result is measured end to end: the model is quantized with and without the
//! corrections, both are run on the calibration samples the tap held, and the corrections stay only if no output
//! of the model is further from the float model's than without them.
//!
//! Cost: one QDQ emission and one inference per held batch for each of the two quantized models, and one more of
//! each for a subset of the corrections. The float model's outputs come from the calibration run (the tap holds
//! them with the batches), and the pipeline reuses the emission of the model the guard keeps, so the guard adds
//! one emission to the pipeline's, not three. The tap holds at most [`crate::quant::bias_correct::HOLD_BATCHES`]
//! batches, so the cost does not grow with the calibration set.

use crate::error::Result;
use crate::onnx::proto::ModelProto;
use crate::onnx::Model;
use crate::quant::bias_correct::HeldBatch;
use crate::quant::prepare::observed_ranks;
use crate::quant::{quantize_graph, Calibration, QuantConfig, QuantReport};
use crate::runtime::{ElementType, Session, TensorRef};

/// Runs `model` on every held batch; per model output, the concatenated float values (`None` for an output that is
/// not float).
fn outputs(model: &Model, held: &[HeldBatch]) -> Result<Vec<Option<Vec<f32>>>> {
    let options = crate::quant::calibrate::measuring_session_options();
    let session = Session::from_model(model, &options)?;
    let mut out: Vec<Option<Vec<f32>>> = vec![Some(Vec::new()); session.outputs().len()];
    for batch in held {
        let ins: Vec<(&str, TensorRef<'_>)> = batch
            .iter()
            .map(|(n, t, shape, data)| (n.as_str(), TensorRef::from_bytes(*t, shape, data)))
            .collect();
        for (slot, t) in out.iter_mut().zip(session.run(&ins)?) {
            match (slot.as_mut(), t.element_type()) {
                (Some(v), ElementType::Float32) => v.extend_from_slice(t.as_slice::<f32>()?),
                _ => *slot = None,
            }
        }
    }
    Ok(out)
}

/// One QDQ emission as the pipeline's Quantize stage makes it: the quantized model, its report, and how many
/// activations had their rank taken from calibration. The pipeline reuses the one of the model the guard keeps
/// instead of emitting the same model again.
pub(crate) struct Emitted {
    pub proto: ModelProto,
    pub report: QuantReport,
    pub ranks: usize,
}

/// Quantizes `model` as the pipeline will and returns its outputs on the held batches, and the emission.
fn quantized_outputs(
    mut model: ModelProto,
    held: &[HeldBatch],
    calib: &Calibration,
    cfg: &QuantConfig,
) -> Result<(Vec<Option<Vec<f32>>>, Emitted)> {
    let ranks = observed_ranks(&mut model, calib);
    let (proto, report) = quantize_graph(&model, calib, cfg)?;
    drop(model);
    let q = Model::from_proto(proto);
    let out = outputs(&q, held)?;
    Ok((
        out,
        Emitted {
            proto: q.into_proto(),
            report,
            ranks,
        },
    ))
}

/// Per output: the squared error of `q` against `reference` (`None` where either is missing or the sizes differ).
fn errors(reference: &[Option<Vec<f32>>], q: &[Option<Vec<f32>>]) -> Vec<Option<f64>> {
    reference
        .iter()
        .zip(q)
        .map(|(r, q)| match (r, q) {
            (Some(r), Some(q)) if r.len() == q.len() => Some(
                r.iter()
                    .zip(q)
                    .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                    .sum(),
            ),
            _ => None,
        })
        .collect()
}

/// SQNR in dB of an error against the signal energy of a reference output.
fn db(signal: f64, err: f64) -> f64 {
    10.0 * (signal / err.max(1e-30)).log10()
}

/// The measured effect of the bias corrections on each output of the quantized model.
pub(crate) struct Verdict {
    /// Outputs (model order) further from the float model's with the corrections than without.
    pub worse: Vec<usize>,
    /// Per output, "output k A -> B dB" (calibration SQNR without -> with the corrections).
    pub rows: String,
    /// The emission of the model with the corrections.
    pub emitted: Emitted,
}

/// What every comparison of the guard measures against: the float model's outputs on the held batches and the
/// error of the model quantized without corrections. Computed once, so that trying a subset of the corrections
/// costs one quantized pass, not three.
pub(crate) struct Baseline<'a> {
    held: &'a [HeldBatch],
    reference: Vec<Option<Vec<f32>>>,
    without: Vec<Option<f64>>,
    /// The emission of the model without corrections (taken when the guard drops them).
    pub uncorrected: Option<Emitted>,
}

/// The float model's outputs on the held batches: as calibration saw them (`Ok`), or by running the model
/// (`Err`, when calibration could not show them).
pub(crate) type Reference<'a> = std::result::Result<Vec<Option<Vec<f32>>>, &'a ModelProto>;

/// Runs the model quantized without corrections on `held`, and the float model unless its outputs are known.
pub(crate) fn baseline<'a>(
    uncorrected: &ModelProto,
    float: Reference<'_>,
    held: &'a [HeldBatch],
    calib: &Calibration,
    cfg: &QuantConfig,
) -> Result<Baseline<'a>> {
    let reference = match float {
        Ok(r) => r,
        Err(model) => outputs(&Model::from_proto(model.clone()), held)?,
    };
    let (q, emitted) = quantized_outputs(uncorrected.clone(), held, calib, cfg)?;
    let without = errors(&reference, &q);
    Ok(Baseline {
        held,
        reference,
        without,
        uncorrected: Some(emitted),
    })
}

/// Quantizes `corrected` (the model with some or all bias corrections) and compares, per output, its error against
/// the float model with the baseline's (no corrections).
pub(crate) fn compare(
    corrected: &ModelProto,
    base: &Baseline<'_>,
    calib: &Calibration,
    cfg: &QuantConfig,
) -> Result<Verdict> {
    let (q, emitted) = quantized_outputs(corrected.clone(), base.held, calib, cfg)?;
    let with = errors(&base.reference, &q);
    let (mut worse, mut rows) = (Vec::new(), Vec::new());
    let outs = base.reference.iter().zip(&with).zip(&base.without);
    for (k, ((r, w), wo)) in outs.enumerate() {
        let (Some(r), Some(w), Some(wo)) = (r, w, wo) else {
            continue;
        };
        let signal: f64 = r.iter().map(|v| (*v as f64).powi(2)).sum();
        rows.push(format!(
            "output {k} {:.1} -> {:.1} dB",
            db(signal, *wo),
            db(signal, *w)
        ));
        if w > wo {
            worse.push(k);
        }
    }
    Ok(Verdict {
        worse,
        rows: rows.join(", "),
        emitted,
    })
}

/// Per node of `model` (topologically sorted, as ONNX requires): the bit set of the graph outputs it reaches
/// (bit k: output k). `None` with more than 64 outputs.
pub(crate) fn output_reach(model: &ModelProto) -> Option<Vec<u64>> {
    let g = model.graph.as_ref()?;
    if g.output.len() > 64 {
        return None;
    }
    let mut by_name: std::collections::HashMap<&str, u64> = g
        .output
        .iter()
        .enumerate()
        .filter_map(|(k, o)| o.name.as_deref().map(|n| (n, 1u64 << k)))
        .collect();
    let mut reach = vec![0u64; g.node.len()];
    for (i, n) in g.node.iter().enumerate().rev() {
        let m = n
            .output
            .iter()
            .fold(0, |m, o| m | by_name.get(o.as_str()).copied().unwrap_or(0));
        reach[i] = m;
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            *by_name.entry(x.as_str()).or_insert(0) |= m;
        }
    }
    Some(reach)
}
