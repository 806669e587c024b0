//! Output-head bias correction: the mean error that the quantized backbone carries into each output head, measured
//! end to end on the calibration samples, is removed from the head's bias.
//!
//! Why (hand-landmark XINT8, traced layer by layer): the four heads read one pooled 672-vector whose quantized value
//! is systematically low (5.7 dB, mean error -29 % of its magnitude, built up over the last depthwise blocks). The
//! presence head's logit is then 2.2 too high on every image (calibration 2.19, evaluation 2.21), which a score
//! output shows once it is no longer clipped to its calibrated range. The heads' own weights cost nothing (47 dB
//! with float inputs). Per-layer bias correction cannot see this: it measures weight error with float inputs.
//!
//! A head is a Conv or Gemm with a float bias whose output reaches a graph output through the small, weight-free
//! tail the output-aware rule uses. Its correction is the per-channel mean of (quantized - float) over the held
//! calibration samples. The model is emitted again with the corrected biases (so an INT8 bias gets its scale from
//! the same rule as before) and the corrections of heads reaching an output that got further from the float model
//! on those samples are dropped.

use crate::error::Result;
use crate::onnx::node::op;
use crate::onnx::proto::{GraphProto, ModelProto, ValueInfoProto};
use crate::onnx::Model;
use crate::quant::output_aware::Edges;
use crate::quant::qdq::weights::{f32_tensor, read_f32};
use crate::quant::sensitivity::Sample;
use crate::runtime::Session;

/// One head: node index in the prepared graph, its output, the bias initializer and the output's channel axis.
#[derive(Clone, Debug)]
struct Head {
    node: usize,
    output: String,
    bias: String,
    axis: usize,
    /// Bit k: the head reaches graph output k.
    reach: u64,
}

/// The heads of `g` (see the module doc).
fn heads(g: &GraphProto, reach: &[u64]) -> Vec<Head> {
    let e = Edges::new(g);
    let readers = |name: &str| {
        g.node
            .iter()
            .filter(|n| n.input.iter().any(|x| x == name))
            .count()
    };
    let float_init = |name: &str| {
        g.initializer
            .iter()
            .any(|t| t.name.as_deref() == Some(name) && t.data_type == Some(1))
    };
    let mut out = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let axis = match op(n) {
            "Gemm" => 1,
            "Conv" => 1,
            _ => continue,
        };
        let Some(bias) = n.input.get(2).filter(|b| !b.is_empty()) else {
            continue;
        };
        // A shared bias would move another node too.
        if !float_init(bias) || readers(bias) != 1 || e.tail(i).is_err() {
            continue;
        }
        out.push(Head {
            node: i,
            output: n.output[0].clone(),
            bias: bias.clone(),
            axis,
            reach: reach.get(i).copied().unwrap_or(0),
        });
    }
    out
}

/// Per sample: the graph outputs, then `extra`, each as (values, shape); `None` where not float.
type Runs = Vec<Vec<Option<(Vec<f32>, Vec<i64>)>>>;

/// Runs `model` with `extra` added to its outputs on every held sample.
fn run(model: &ModelProto, extra: &[String], held: &[Sample]) -> Result<Runs> {
    let mut m = model.clone();
    if let Some(g) = m.graph.as_mut() {
        for x in extra {
            g.output.push(ValueInfoProto {
                name: Some(x.clone()),
                ..Default::default()
            });
        }
    }
    // The measuring sessions' options: the same graph optimizations (so the same values) without idle spinning,
    // which only burns CPU time on a busy machine.
    let options = crate::quant::calibrate::measuring_session_options();
    let session = Session::from_model(&Model::from_proto(m), &options)?;
    let mut runs = Vec::with_capacity(held.len());
    for sample in held {
        let ins: Vec<_> = sample.iter().map(|(n, t)| (n.as_str(), t.view())).collect();
        let outs = session.run(&ins)?;
        runs.push(
            outs.iter()
                .map(|t| {
                    let v = t.as_slice::<f32>().ok()?.to_vec();
                    Some((v, t.shape().to_vec()))
                })
                .collect(),
        );
    }
    Ok(runs)
}

/// Per graph output (the first `n` of each run): the summed squared difference of `q` from `f`, `None` where not
/// comparable.
fn errors(f: &Runs, q: &Runs, n: usize) -> Vec<Option<f64>> {
    (0..n)
        .map(|k| {
            let mut sum = 0.0f64;
            for (fs, qs) in f.iter().zip(q) {
                match (&fs[k], &qs[k]) {
                    (Some((a, _)), Some((b, _))) if a.len() == b.len() => {
                        sum += a
                            .iter()
                            .zip(b)
                            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
                            .sum::<f64>();
                    }
                    _ => return None,
                }
            }
            Some(sum)
        })
        .collect()
}

/// The per-channel mean of `q - f` for the tensor at run slot `slot` (channel axis `axis`), or `None` when shapes
/// disagree or there are not `channels` channels.
fn channel_mean(f: &Runs, q: &Runs, slot: usize, axis: usize, channels: usize) -> Option<Vec<f32>> {
    let (mut sum, mut count) = (vec![0.0f64; channels], vec![0u64; channels]);
    for (fs, qs) in f.iter().zip(q) {
        let (Some((a, shape)), Some((b, qshape))) = (&fs[slot], &qs[slot]) else {
            return None;
        };
        if shape != qshape || shape.len() <= axis || shape[axis] as usize != channels {
            return None;
        }
        let inner: usize = shape[axis + 1..].iter().product::<i64>().max(1) as usize;
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let c = (i / inner) % channels;
            sum[c] += *y as f64 - *x as f64;
            count[c] += 1;
        }
    }
    Some(
        sum.iter()
            .zip(&count)
            .map(|(s, n)| (*s / (*n).max(1) as f64) as f32)
            .collect(),
    )
}

/// `prepared` with each head's bias shifted by its delta.
fn shifted(prepared: &ModelProto, deltas: &[(&Head, Vec<f32>)]) -> Result<ModelProto> {
    let mut m = prepared.clone();
    let g = m.graph.as_mut().expect("a prepared model has a graph");
    for (h, d) in deltas {
        if let Some(t) = g
            .initializer
            .iter_mut()
            .find(|t| t.name.as_deref() == Some(&h.bias))
        {
            let mut b = read_f32(t)?;
            b.iter_mut().zip(d).for_each(|(b, d)| *b -= d);
            *t = f32_tensor(&h.bias, &t.dims.clone(), &b);
        }
    }
    Ok(m)
}

/// What [`correct`] did: the model to emit from (`None`: every correction was dropped) and the report's notes.
pub struct Corrected {
    pub prepared: Option<ModelProto>,
    pub notes: Vec<String>,
    /// `emit`'s output for `prepared` when every correction was kept (it was emitted to be measured), so the caller
    /// need not emit the same model again.
    pub emitted: Option<ModelProto>,
}

/// `held` with each batch cut into single samples where every input's first dimension is dynamic: ONNX Runtime's
/// results for a batch of two differ from two batches of one in the last bits, and the correction (a mean of small
/// differences) would otherwise depend on how the calibration data was batched. `None` when no batch holds more
/// than one sample: the held samples are then used as they are, not copied (a copy was up to the pipeline's 64 MiB
/// hold budget of peak memory).
fn single_samples(g: &GraphProto, held: &[Sample]) -> Option<Vec<Sample>> {
    use crate::onnx::proto::tensor_shape_proto::dimension::Value as D;
    use crate::onnx::proto::type_proto::Value as T;
    let dynamic_batch = |name: &str| {
        g.input
            .iter()
            .find(|v| v.name.as_deref() == Some(name))
            .is_some_and(|v| {
                let first = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                    Some(T::TensorType(t)) => t.shape.as_ref().and_then(|s| s.dim.first()),
                    _ => None,
                };
                !matches!(first.and_then(|d| d.value.as_ref()), Some(D::DimValue(_)))
            })
    };
    let batch = |sample: &Sample| sample.first().and_then(|(_, t)| t.shape.first().copied());
    if held.iter().all(|s| batch(s).unwrap_or(1) <= 1) {
        return None;
    }
    let mut out = Vec::with_capacity(held.len());
    for sample in held {
        let n = batch(sample).unwrap_or(1);
        let splittable = n > 1
            && sample.iter().all(|(name, t)| {
                t.shape.first() == Some(&n) && t.data.len() % n as usize == 0 && dynamic_batch(name)
            });
        if !splittable {
            out.push(sample.clone());
            continue;
        }
        for i in 0..n as usize {
            out.push(
                sample
                    .iter()
                    .map(|(name, t)| {
                        let step = t.data.len() / n as usize;
                        let mut shape = t.shape.clone();
                        shape[0] = 1;
                        let one = crate::quant::data::OwnedTensor {
                            element_type: t.element_type,
                            shape,
                            data: t.data[i * step..(i + 1) * step].to_vec(),
                        };
                        (name.clone(), one)
                    })
                    .collect(),
            );
        }
    }
    Some(out)
}

/// Measures the heads of `prepared` (as emitted in `quantized`) against `float` on `held` and returns `prepared`
/// with the corrections that do not worsen any output, or `None` when there is nothing to correct. `emit` quantizes
/// a prepared model as the pipeline does.
pub fn correct(
    prepared: &ModelProto,
    float: &ModelProto,
    quantized: &ModelProto,
    held: &[Sample],
    emit: &mut dyn FnMut(&ModelProto) -> Result<ModelProto>,
) -> Result<Option<Corrected>> {
    let Some(g) = prepared.graph.as_ref() else {
        return Ok(None);
    };
    let Some(reach) = crate::quant::bias_guard::output_reach(prepared) else {
        return Ok(None);
    };
    let hs = heads(g, &reach);
    if hs.is_empty() || held.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = hs.iter().map(|h| h.output.clone()).collect();
    let n_out = g.output.len();
    let split = single_samples(g, held);
    let held = split.as_deref().unwrap_or(held);
    let f = run(float, &names, held)?;
    let q = run(quantized, &names, held)?;
    let mut deltas = Vec::new();
    for (k, h) in hs.iter().enumerate() {
        let channels = g
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(&h.bias))
            .map(|t| t.dims.iter().product::<i64>() as usize)
            .unwrap_or(0);
        if let Some(d) = channel_mean(&f, &q, n_out + k, h.axis, channels) {
            deltas.push((h, d));
        }
    }
    if deltas.is_empty() {
        return Ok(None);
    }
    let before = errors(&f, &q, n_out);
    let n_deltas = deltas.len();
    let candidate = shifted(prepared, &deltas)?;
    let emitted = emit(&candidate)?;
    let after = errors(&f, &run(&emitted, &[], held)?, n_out);
    let worse: u64 = (0..n_out)
        .filter(|&k| matches!((before[k], after[k]), (Some(b), Some(a)) if a > b))
        .fold(0, |m, k| m | 1 << k);
    let signal = |k: usize| -> f64 {
        f.iter()
            .filter_map(|s| s[k].as_ref())
            .flat_map(|(v, _)| v.iter().map(|x| (*x as f64).powi(2)))
            .sum()
    };
    let db = |k: usize, e: Option<f64>| e.map(|e| 10.0 * (signal(k) / e.max(1e-30)).log10());
    let rows: Vec<String> = (0..n_out)
        .filter_map(|k| {
            Some(format!(
                "output {k} {:.1} -> {:.1} dB",
                db(k, before[k])?,
                db(k, after[k])?
            ))
        })
        .collect();
    let kept: Vec<(&Head, Vec<f32>)> = deltas
        .into_iter()
        .filter(|(h, _)| h.reach & worse == 0)
        .collect();
    let mut notes = vec![format!(
        "output-head bias correction (the mean error the quantized backbone carries into each output head, measured \
         on {} calibration samples): {} of {} head(s) corrected; calibration SQNR with all corrections: {}",
        held.len(),
        kept.len(),
        hs.len(),
        rows.join(", ")
    )];
    for (h, d) in &kept {
        let mean = d.iter().map(|x| x.abs()).sum::<f32>() / d.len().max(1) as f32;
        notes.push(format!(
            "'{}' ({}): bias shifted by the measured mean error (mean |shift| {mean:.4} over {} channel(s))",
            h.output,
            op(&g.node[h.node]),
            d.len()
        ));
    }
    let all = kept.len() == n_deltas;
    let prepared = match (kept.is_empty(), all) {
        (true, _) => None,
        (false, true) => Some(candidate),
        (false, false) => Some(shifted(prepared, &kept)?),
    };
    Ok(Some(Corrected {
        prepared,
        notes,
        emitted: all.then_some(emitted),
    }))
}
