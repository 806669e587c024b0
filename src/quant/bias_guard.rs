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
//! Cost: one QDQ emission and one inference per held batch for each of the two quantized models and the float
//! model, and one more of each for a subset of the corrections. The tap holds at most
//! [`crate::quant::bias_correct::HOLD_BATCHES`] batches, so the cost does not grow with the calibration set.

use crate::error::Result;
use crate::onnx::proto::ModelProto;
use crate::onnx::Model;
use crate::quant::bias_correct::HeldBatch;
use crate::quant::prepare::observed_ranks;
use crate::quant::{quantize_graph, Calibration, QuantConfig};
use crate::runtime::{ElementType, Session, TensorRef};

/// Runs `model` on every held batch; per model output, the concatenated float values (`None` for an output that is
/// not float).
fn outputs(model: ModelProto, held: &[HeldBatch]) -> Result<Vec<Option<Vec<f32>>>> {
    let options = crate::quant::calibrate::measuring_session_options();
    let session = Session::from_model(&Model::from_proto(model), &options)?;
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

/// Quantizes `model` as the pipeline will and returns its outputs on the held batches.
fn quantized_outputs(
    mut model: ModelProto,
    held: &[HeldBatch],
    calib: &Calibration,
    cfg: &QuantConfig,
) -> Result<Vec<Option<Vec<f32>>>> {
    observed_ranks(&mut model, calib);
    let (q, _) = quantize_graph(&model, calib, cfg)?;
    outputs(q, held)
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
}

/// What every comparison of the guard measures against: the float model's outputs on the held batches and the
/// error of the model quantized without corrections. Computed once, so that trying a subset of the corrections
/// costs one quantized pass, not three.
pub(crate) struct Baseline<'a> {
    held: &'a [HeldBatch],
    reference: Vec<Option<Vec<f32>>>,
    without: Vec<Option<f64>>,
}

/// Runs the float model and the model quantized without corrections on `held`.
pub(crate) fn baseline<'a>(
    uncorrected: &ModelProto,
    float: &ModelProto,
    held: &'a [HeldBatch],
    calib: &Calibration,
    cfg: &QuantConfig,
) -> Result<Baseline<'a>> {
    let reference = outputs(float.clone(), held)?;
    let without = errors(
        &reference,
        &quantized_outputs(uncorrected.clone(), held, calib, cfg)?,
    );
    Ok(Baseline {
        held,
        reference,
        without,
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
    let with = errors(
        &base.reference,
        &quantized_outputs(corrected.clone(), base.held, calib, cfg)?,
    );
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
