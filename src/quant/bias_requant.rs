//! Bias correction on the quantized model's own activations (a second pass after [`crate::quant::bias_correct`]).
//!
//! The first correction removes each layer's mean *weight* error, measured with the float model's inputs. What is
//! left in a layer's mean output error comes from the quantized model itself: the rounding of its input activations
//! (biased on coarse power-of-two steps), the INT8 bias of XINT8 (one power-of-two step per tensor, `max|b| / 127`
//! or coarser, which nothing upstream sees), and the error every earlier layer passes on. This pass measures that
//! directly: the model is quantized as the pipeline will, run on the calibration batches the tap held beside the
//! float model, and each corrected layer's pre-activation output is compared per channel; the mean difference is
//! subtracted from the layer's bias. Memory: one sum per channel of each layer, whatever the number of samples.
//!
//! All layers are corrected from one measurement, so a layer is also corrected for the error its inputs carried,
//! which the correction of the layers before it removes in part: the result is kept only if no model output is
//! further from the float model's on the held batches than before (the guard's test, [`bias_guard::compare`]).

use crate::error::Result;
use crate::onnx::node::op;
use crate::onnx::proto::{ModelProto, ValueInfoProto};
use crate::onnx::Model;
use crate::quant::bias_correct::HeldBatch;
use crate::quant::prepare::observed_ranks;
use crate::quant::qdq::weights::{f32_tensor, read_f32};
use crate::quant::{bias_guard, quantize_graph, Calibration, QuantConfig};
use crate::runtime::{ElementType, Session, TensorRef};

/// A layer this pass corrects: node index, output tensor, bias initializer.
struct Layer {
    node: usize,
    output: String,
    bias: String,
}

/// The Conv/Gemm nodes of `model` with a float bias initializer (`nodes` filters by index).
fn layers(model: &ModelProto, nodes: &[usize]) -> Vec<Layer> {
    let Some(g) = model.graph.as_ref() else {
        return Vec::new();
    };
    nodes
        .iter()
        .filter_map(|&i| {
            let n = g.node.get(i)?;
            let bias = n.input.get(2).filter(|b| !b.is_empty())?;
            let is_init = g.initializer.iter().any(|t| t.name.as_ref() == Some(bias));
            let output = n.output.first()?.clone();
            (matches!(op(n), "Conv" | "Gemm") && is_init).then(|| Layer {
                node: i,
                output,
                bias: bias.clone(),
            })
        })
        .collect()
}

/// `model` with `names` as its only outputs (those it computes).
fn tapped(mut model: ModelProto, names: &[&str]) -> ModelProto {
    if let Some(g) = model.graph.as_mut() {
        g.output = names
            .iter()
            .map(|n| ValueInfoProto {
                name: Some(n.to_string()),
                ..Default::default()
            })
            .collect();
    }
    model
}

/// Per output of `model` (NCHW or NC layout): per channel, the sum over the held batches of the values, averaged
/// over positions, and the number of items. `None` for an output that is not float or changes shape.
fn channel_sums(model: ModelProto, held: &[HeldBatch]) -> Result<Vec<Option<(Vec<f64>, u64)>>> {
    let options = crate::quant::calibrate::measuring_session_options();
    let session = Session::from_model(&Model::from_proto(model), &options)?;
    let mut out: Vec<Option<(Vec<f64>, u64)>> = vec![Some((Vec::new(), 0)); session.outputs().len()];
    for batch in held {
        let ins: Vec<(&str, TensorRef<'_>)> = batch
            .iter()
            .map(|(n, t, shape, data)| (n.as_str(), TensorRef::from_bytes(*t, shape, data)))
            .collect();
        for (slot, t) in out.iter_mut().zip(session.run(&ins)?) {
            let shape = t.shape().to_vec();
            let ok = t.element_type() == ElementType::Float32 && shape.len() >= 2 && shape[0] > 0;
            let Some((sums, items)) = slot.as_mut().filter(|_| ok) else {
                *slot = None;
                continue;
            };
            let c = shape[1].max(1) as usize;
            if sums.is_empty() {
                sums.resize(c, 0.0);
            } else if sums.len() != c {
                *slot = None;
                continue;
            }
            let data = t.as_slice::<f32>()?;
            let per = data.len() / shape[0] as usize;
            let inner = (per / c).max(1);
            for item in data.chunks_exact(per) {
                for (s, plane) in sums.iter_mut().zip(item.chunks_exact(inner)) {
                    *s += plane.iter().map(|v| *v as f64).sum::<f64>() / inner as f64;
                }
            }
            *items += shape[0] as u64;
        }
    }
    Ok(out)
}

/// Corrects the biases of the layers `nodes` of `model` (the float graph the emitter will quantize) for their mean
/// output error in the quantized model, measured on `held` against `float` (the float model as calibrated). Keeps
/// the result only if no output is worse on `held`. Returns the report note.
pub(crate) fn correct(
    model: &mut ModelProto,
    float: &ModelProto,
    nodes: &[usize],
    held: &[HeldBatch],
    calib: &Calibration,
    cfg: &QuantConfig,
) -> Result<String> {
    let found = layers(model, nodes);
    let mut q = model.clone();
    observed_ranks(&mut q, calib);
    let (q, _) = quantize_graph(&q, calib, cfg)?;
    // Only layers whose output tensor the quantized graph still computes (not folded away by the emitter).
    let produced = |m: &ModelProto, x: &str| {
        m.graph
            .as_ref()
            .is_some_and(|g| g.node.iter().any(|n| n.output.iter().any(|o| o == x)))
    };
    let found: Vec<Layer> = found
        .into_iter()
        .filter(|l| produced(&q, &l.output) && produced(float, &l.output))
        .collect();
    if found.is_empty() {
        return Ok("bias correction on quantized activations: no layer to correct".into());
    }
    let names: Vec<&str> = found.iter().map(|l| l.output.as_str()).collect();
    let qs = channel_sums(tapped(q, &names), held)?;
    let fs = channel_sums(tapped(float.clone(), &names), held)?;
    let before = model.clone();
    let g = model.graph.as_mut().expect("layers found");
    let mut done = 0;
    for (l, (qs, fs)) in found.iter().zip(qs.iter().zip(&fs)) {
        let (Some((qs, n)), Some((fs, _))) = (qs, fs) else {
            continue;
        };
        let Some(t) = g
            .initializer
            .iter_mut()
            .find(|t| t.name.as_ref() == Some(&l.bias))
        else {
            continue;
        };
        let mut bias = read_f32(t)?;
        if bias.len() != qs.len() || *n == 0 || g.node[l.node].input[2] != l.bias {
            continue;
        }
        // The initializer is this layer's own (first correction's `_corrected` copy) only if no other node reads it.
        let readers = g.node.iter().flat_map(|m| m.input.iter()).filter(|x| **x == l.bias).count();
        if readers != 1 {
            continue;
        }
        for (b, (a, f)) in bias.iter_mut().zip(qs.iter().zip(fs)) {
            *b -= ((a - f) / *n as f64) as f32;
        }
        *t = f32_tensor(&l.bias, &[bias.len() as i64], &bias);
        done += 1;
    }
    if done == 0 {
        return Ok("bias correction on quantized activations: no layer corrected".into());
    }
    let base = bias_guard::baseline(&before, float, held, calib, cfg)?;
    let v = bias_guard::compare(model, &base, calib, cfg)?;
    let b = held.len();
    if v.worse.is_empty() {
        return Ok(format!(
            "bias correction on quantized activations: {done} layers corrected, no output worse on {b} held \
             calibration batches ({})",
            v.rows
        ));
    }
    *model = before;
    Ok(format!(
        "bias correction on quantized activations dropped: output(s) {:?} worse with it on {b} held calibration \
         batches ({})",
        v.worse, v.rows
    ))
}
