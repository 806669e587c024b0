//! Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias
//! Correction") on the float model, before calibration.
//!
//! For a chain `Conv A -> [Relu] -> Conv B` where every link has one consumer, output channel `c` of A can be
//! divided by `s_c > 0` and input channel `c` of B multiplied by it without changing B's output, because Relu is
//! positively homogeneous (`relu(x / s) = relu(x) / s`) and B is linear in its input (zero padding included).
//! Choosing `s_c = sqrt(r1_c / r2_c)` (r1: A's output-channel weight range, r2: B's input-channel range) gives both
//! the same range `sqrt(r1_c r2_c)`, which is what one per-tensor weight scale needs: depthwise convolutions whose
//! channel ranges differ by orders of magnitude stop losing their small channels. Chains are equalized in turn until
//! the scales settle (a Conv can be B of one pair and A of the next).
//!
//! Links allowed between A and B: nothing, Relu, or Clip with lower bound 0 and no upper bound. `Clip(0, 6)`
//! (Relu6) is *not* homogeneous: scaled, its bound would differ per channel and ONNX Clip bounds are scalars. It
//! is equalized only when the caller asks for it to be replaced by Relu (`replace_clip6_relu`), which changes the
//! float model (values above 6 pass); each replacement is reported. A is any Conv (grouped included: its output
//! channel `c` is row `c` of its weight); B is a plain (group 1) or depthwise Conv. Weights and biases must be
//! float initializers used by that node only.
//!
//! Not done: high-bias absorption (it needs each channel's pre-activation distribution; BatchNorm statistics are
//! gone once folded, and the calibration data comes after this step).

use std::collections::HashMap;

use crate::error::Result;
use crate::onnx::node::{attr_f, attr_i, op};
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto};
use crate::onnx::DataType;
use crate::quant::qdq::weights::{f32_tensor, read_f32};

/// One equalizable pair: node indices of A, the optional link, and B.
struct Pair {
    a: usize,
    link: Option<usize>,
    b: usize,
    /// B is depthwise (weight [C, 1, ...]): input channel c is its row c.
    b_depthwise: bool,
    /// The link is a Clip(0, 6) to be replaced by Relu.
    replace: bool,
}

/// Clip's bounds: from inputs 1 and 2 (opset >= 11, constant initializers) or the attributes (older opsets).
/// `None` when a bound is not a known constant.
fn clip_bounds(g: &GraphProto, n: &NodeProto) -> Option<(f32, f32)> {
    let bound = |k: usize, attr: &str, default: f32| -> Option<f32> {
        match n.input.get(k).filter(|s| !s.is_empty()) {
            Some(name) => {
                let t = g
                    .initializer
                    .iter()
                    .find(|t| t.name.as_ref() == Some(name))?;
                read_f32(t).ok().and_then(|v| (v.len() == 1).then(|| v[0]))
            }
            None => Some(attr_f(n, attr).unwrap_or(default)),
        }
    };
    Some((
        bound(1, "min", f32::NEG_INFINITY)?,
        bound(2, "max", f32::INFINITY)?,
    ))
}

/// What pair finding needs to know of the graph: how many times each name is read (node inputs, subgraphs not
/// included, plus graph outputs), the node reading each name, and the initializers by name.
struct Index {
    uses: HashMap<String, usize>,
    consumer: HashMap<String, usize>,
    init: HashMap<String, usize>,
}

impl Index {
    fn of(g: &GraphProto) -> Index {
        let mut uses: HashMap<String, usize> = HashMap::new();
        for n in &g.node {
            for i in n.input.iter().filter(|s| !s.is_empty()) {
                *uses.entry(i.clone()).or_default() += 1;
            }
        }
        for o in &g.output {
            if let Some(name) = &o.name {
                *uses.entry(name.clone()).or_insert(0) += 1;
            }
        }
        let consumer = g
            .node
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.input.iter().map(move |x| (x.clone(), i)))
            .collect();
        let init = g
            .initializer
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.name.clone().map(|n| (n, i)))
            .collect();
        Index {
            uses,
            consumer,
            init,
        }
    }

    /// A Conv whose weight (and bias) are float initializers read by it alone.
    fn own_weights(&self, g: &GraphProto, n: &NodeProto) -> bool {
        op(n) == "Conv"
            && default_domain(n)
            && n.input.len() >= 2
            && n.input[1..].iter().filter(|s| !s.is_empty()).all(|w| {
                self.uses.get(w.as_str()) == Some(&1)
                    && self.init.get(w.as_str()).is_some_and(|&i| {
                        g.initializer[i].data_type == Some(DataType::Float.onnx())
                    })
            })
    }

    /// The one node reading `t`, if exactly one thing reads it.
    fn single_next(&self, t: &str) -> Option<usize> {
        (self.uses.get(t) == Some(&1))
            .then(|| self.consumer.get(t).copied())
            .flatten()
    }
}

fn default_domain(n: &NodeProto) -> bool {
    matches!(n.domain.as_deref().unwrap_or(""), "" | "ai.onnx")
}

/// The pair starting at Conv `ai`, if its chain is equalizable.
fn pair_at(g: &GraphProto, ix: &Index, ai: usize, replace_clip6_relu: bool) -> Option<Pair> {
    let a = &g.node[ai];
    if !ix.own_weights(g, a) || a.output.len() != 1 {
        return None;
    }
    let mut next = ix.single_next(&a.output[0])?;
    let mut link = None;
    let mut replace = false;
    let n = &g.node[next];
    if default_domain(n) && op(n) == "Relu" {
        link = Some(next);
    } else if default_domain(n) && op(n) == "Clip" {
        match clip_bounds(g, n) {
            Some((lo, hi)) if lo == 0.0 && hi == f32::INFINITY => link = Some(next),
            Some((lo, hi)) if lo == 0.0 && hi == 6.0 && replace_clip6_relu => {
                link = Some(next);
                replace = true;
            }
            _ => return None,
        }
    }
    if let Some(l) = link {
        next = ix.single_next(&g.node[l].output[0])?;
    }
    let b = &g.node[next];
    if !ix.own_weights(g, b) || b.input[0] != g.node[link.unwrap_or(ai)].output[0] {
        return None;
    }
    let w2 = &g.initializer[ix.init[b.input[1].as_str()]];
    let w1 = &g.initializer[ix.init[a.input[1].as_str()]];
    let group = attr_i(b, "group").unwrap_or(1);
    let c = w1.dims.first().copied().unwrap_or(0);
    let b_depthwise = group > 1 && group == c && w2.dims.get(1) == Some(&1) && w2.dims[0] == c;
    if !(group == 1 && w2.dims.get(1) == Some(&c) || b_depthwise) || c == 0 {
        return None;
    }
    Some(Pair {
        a: ai,
        link,
        b: next,
        b_depthwise,
        replace,
    })
}

/// Working copies of the weights and biases: name -> (values, dims).
type Values = HashMap<String, (Vec<f32>, Vec<i64>)>;

/// Absolute maximum of each of the `c` contiguous blocks of `w`.
fn block_ranges(w: &[f32], c: usize) -> Vec<f32> {
    let per = w.len() / c;
    (0..c)
        .map(|k| {
            w[k * per..(k + 1) * per]
                .iter()
                .fold(0f32, |m, x| m.max(x.abs()))
        })
        .collect()
}

/// Equalizes one pair once; returns the largest |ln s| of its channel scales (how far it moved).
fn equalize_pair(g: &GraphProto, p: &Pair, vals: &mut Values) -> f32 {
    let (w1n, w2n) = (&g.node[p.a].input[1], &g.node[p.b].input[1]);
    let (c, r1) = {
        let (w1, d1) = &vals[w1n];
        let c = d1[0] as usize;
        (c, block_ranges(w1, c))
    };
    let r2: Vec<f32> = {
        let (w2, d2) = &vals[w2n];
        if p.b_depthwise {
            block_ranges(w2, c)
        } else {
            let mut r = vec![0f32; c];
            let inner: usize = d2[2..].iter().product::<i64>() as usize;
            for (i, x) in w2.iter().enumerate() {
                let k = (i / inner) % c;
                r[k] = r[k].max(x.abs());
            }
            r
        }
    };
    let s: Vec<f32> = (0..c)
        .map(|k| {
            if r1[k] > 0.0 && r2[k] > 0.0 && r1[k].is_finite() && r2[k].is_finite() {
                (r1[k] / r2[k]).sqrt().clamp(1e-6, 1e6)
            } else {
                1.0
            }
        })
        .collect();
    let moved = s.iter().fold(0f32, |m, x| m.max(x.ln().abs()));
    {
        let (w1, _) = vals.get_mut(w1n).unwrap();
        let per = w1.len() / c;
        for (k, sk) in s.iter().enumerate() {
            w1[k * per..(k + 1) * per].iter_mut().for_each(|x| *x /= sk);
        }
    }
    if let Some(bn) = g.node[p.a].input.get(2).filter(|s| !s.is_empty()) {
        let (b1, _) = vals.get_mut(bn).unwrap();
        if b1.len() == c {
            b1.iter_mut().zip(&s).for_each(|(x, sk)| *x /= sk);
        }
    }
    let (w2, d2) = vals.get_mut(w2n).unwrap();
    if p.b_depthwise {
        let per = w2.len() / c;
        for (k, sk) in s.iter().enumerate() {
            w2[k * per..(k + 1) * per].iter_mut().for_each(|x| *x *= sk);
        }
    } else {
        let inner: usize = d2[2..].iter().product::<i64>() as usize;
        for (i, x) in w2.iter_mut().enumerate() {
            *x *= s[(i / inner) % c];
        }
    }
    moved
}

/// Replaces the Clip(0, 6) links of `pairs` that asked for it by Relu; one note each.
fn replace_clips(g: &mut GraphProto, pairs: &[Pair]) -> Vec<String> {
    let mut notes = Vec::new();
    for p in pairs.iter().filter(|p| p.replace) {
        let l = &mut g.node[p.link.expect("replacement has a link")];
        notes.push(format!(
            "Clip(0, 6) node '{}' replaced by Relu so that its Conv pair could be equalized (replace_clip6_relu): \
             values above 6 are no longer clipped",
            l.name.as_deref().unwrap_or("")
        ));
        l.op_type = Some("Relu".into());
        l.input.truncate(1);
        l.attribute.clear();
    }
    notes
}

/// Equalizes every chain it can in `model` (default-domain nodes only). Returns notes for the report: how many
/// pairs were equalized, and every Clip replaced by Relu.
pub fn equalize(model: &mut ModelProto, replace_clip6_relu: bool) -> Result<Vec<String>> {
    let Some(g) = model.graph.as_mut() else {
        return Ok(Vec::new());
    };
    let ix = Index::of(g);
    let pairs: Vec<Pair> = (0..g.node.len())
        .filter_map(|ai| pair_at(g, &ix, ai, replace_clip6_relu))
        .collect();
    if pairs.is_empty() {
        return Ok(vec![
            "cross-layer equalization: no equalizable Conv pair".into()
        ]);
    }
    let mut vals: Values = HashMap::new();
    for p in &pairs {
        for &ni in &[p.a, p.b] {
            for w in g.node[ni].input[1..].iter().filter(|s| !s.is_empty()) {
                if !vals.contains_key(w) {
                    let t = &g.initializer[ix.init[w.as_str()]];
                    vals.insert(w.clone(), (read_f32(t)?, t.dims.clone()));
                }
            }
        }
    }
    // Sweeps until the scales settle (a Conv can be B of one pair and A of the next).
    let mut iterations = 0;
    for _ in 0..20 {
        iterations += 1;
        let moved = pairs
            .iter()
            .fold(0f32, |m, p| m.max(equalize_pair(g, p, &mut vals)));
        if moved < 1e-3 {
            break;
        }
    }
    for (name, (v, dims)) in &vals {
        let i = ix.init[name.as_str()];
        g.initializer[i] = f32_tensor(name, dims, v);
    }
    let mut notes = vec![format!(
        "cross-layer equalization: {} Conv pairs equalized ({iterations} sweeps)",
        pairs.len()
    )];
    notes.extend(replace_clips(g, &pairs));
    Ok(notes)
}
