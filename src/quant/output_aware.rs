//! Output-aware activations (issue 13 item 4): the few nodes at a model's outputs that one activation scale would
//! ruin are left float, with the reason in the report.
//!
//! Two cases, one rule ("fewer than [`MIN_LEVELS`] levels over the observed range"):
//! - **Mixed-range Concat**: a detector head joining box coordinates in pixels with [0, 1] scores. The NPU presets
//!   give a Concat's inputs and output one scale (the XINT8 format aligns them), and every preset quantizes the
//!   Concat's output with one scale, so the scores round to 0 whatever the inputs' own scales: the Concat and what
//!   depends on it (the tail, up to the outputs) stay float, each input keeping its own quantized scale. A
//!   requantizing Concat would not help on the CPU preset either: its output is still one tensor with one scale.
//! - **Small score output**: a bounded op (Sigmoid, Softmax, ...) at an output whose observed range is a sliver of
//!   the op's range (hand-landmark's presence score: [0.001, 0.05] of [0, 1]). Its calibrated scale clips every
//!   value the calibration data did not reach (an evaluation image scores 0.44, the quantized output says 0.05);
//!   the op's full range would leave fewer than [`MIN_LEVELS`] levels. The op stays float; its input keeps its own
//!   scale.
//!
//! A tail is taken only when it is small ([`MAX_TAIL_NODES`]), holds no weighted op (Conv, Gemm, MatMul: never
//! the backbone) and reaches a graph output; otherwise a note says what was found and why it stayed quantized.
//! The quantized model records the tail's nodes under [`METADATA_KEY`] so that the pre-flight says why they are
//! float instead of calling them unquantized. The heads feeding these outputs (the Conv/Gemm before a tail) also
//! get the output-head bias correction (`crate::quant::head_bias`) when this rule is on.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::onnx::node::op;
use crate::onnx::proto::{GraphProto, NodeProto};
use crate::quant::qdq::scale::tensor_params;
use crate::quant::{Calibration, QuantConfig};

/// K: the fewest quantization levels an output's observed range may get. 16 levels is 4 bits: below that a score
/// is a coarse step function (a box threshold of 0.5 lands on one of a handful of values, and everything below
/// one step reads 0). The cases met sit far from it on both sides: BlazeFace's and hand-landmark's other outputs
/// get over 200 levels, the presence score 12 at [0, 1] and a [0, 1] score beside 640-pixel boxes fewer than 1.
pub const MIN_LEVELS: f32 = 16.0;

/// The most nodes a float tail may hold (a decode head: Reshape, Transpose, Concat, Sigmoid, Mul, Add, ...).
pub const MAX_TAIL_NODES: usize = 32;

/// Model metadata key: JSON array of the first output name of each node left float by this rule (outside the
/// provenance prefix `ipuflow.`, which provenance rewrites).
pub const METADATA_KEY: &str = "ipuflow_output_aware.float_nodes";

/// Ops never left float by this rule: the weighted ops the NPU is there for.
const WEIGHTED: &[&str] = &["Conv", "ConvTranspose", "Gemm", "MatMul"];

/// The nodes to leave float (keyed by their first output's name, with the reason) and model-level notes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatTail {
    pub nodes: BTreeMap<String, String>,
    /// Score outputs quantized over their op's whole range instead of the calibrated one.
    pub ranges: BTreeMap<String, (f32, f32)>,
    pub notes: Vec<String>,
}

/// The graph's edges as this rule (and the output-head bias correction) needs them.
pub(crate) struct Edges<'a> {
    nodes: &'a [NodeProto],
    consumers: HashMap<&'a str, Vec<usize>>,
    outputs: HashSet<&'a str>,
    inits: HashSet<&'a str>,
}

impl<'a> Edges<'a> {
    pub(crate) fn new(g: &'a GraphProto) -> Self {
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for x in n.input.iter().filter(|s| !s.is_empty()) {
                consumers.entry(x.as_str()).or_default().push(i);
            }
        }
        Edges {
            nodes: &g.node,
            consumers,
            outputs: g.output.iter().filter_map(|v| v.name.as_deref()).collect(),
            inits: g
                .initializer
                .iter()
                .filter_map(|t| t.name.as_deref())
                .collect(),
        }
    }

    /// Node `seed` and everything downstream of it, when that is a tail: at most [`MAX_TAIL_NODES`], no weighted
    /// op, reaching a graph output. `Err` says why not.
    pub(crate) fn tail(&self, seed: usize) -> Result<Vec<usize>, String> {
        let mut seen = vec![seed];
        let mut queue = VecDeque::from([seed]);
        let mut reaches_output = false;
        while let Some(i) = queue.pop_front() {
            for o in self.nodes[i].output.iter().filter(|s| !s.is_empty()) {
                reaches_output |= self.outputs.contains(o.as_str());
                for &c in self.consumers.get(o.as_str()).into_iter().flatten() {
                    if seen.contains(&c) {
                        continue;
                    }
                    let cop = op(&self.nodes[c]);
                    if WEIGHTED.contains(&cop) {
                        return Err(format!(
                            "a {cop} ('{}') depends on it",
                            label(&self.nodes[c], c)
                        ));
                    }
                    if seen.len() == MAX_TAIL_NODES {
                        return Err(format!("more than {MAX_TAIL_NODES} nodes depend on it"));
                    }
                    seen.push(c);
                    queue.push_back(c);
                }
            }
        }
        if !reaches_output {
            return Err("it reaches no graph output".into());
        }
        Ok(seen)
    }
}

fn label(n: &NodeProto, i: usize) -> String {
    n.name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{}#{i}", op(n)))
}

/// The levels of the activation type that range `[lo, hi]` spans when the scale is the one of `[slo, shi]`.
fn levels(lo: f32, hi: f32, slo: f32, shi: f32, cfg: &QuantConfig) -> f32 {
    let p = tensor_params(
        slo,
        shi,
        cfg.activation_type,
        cfg.activation_symmetric,
        cfg.power_of_two_scales,
    );
    (hi - lo) / p.scale[0].max(f32::MIN_POSITIVE)
}

/// Why Concat node `n` is mixed-range (its narrowest input gets fewer than K levels under one scale), or `None`.
fn mixed_concat(
    n: &NodeProto,
    calib: &Calibration,
    e: &Edges,
    cfg: &QuantConfig,
) -> Option<String> {
    let ranges: Vec<(&str, f32, f32)> = n
        .input
        .iter()
        .filter(|x| !x.is_empty() && !e.inits.contains(x.as_str()))
        .filter_map(|x| {
            calib
                .get(x)
                .filter(|s| s.elem_type == 1)
                .map(|s| (x.as_str(), s.min, s.max))
        })
        .collect();
    if ranges.len() < 2 {
        return None;
    }
    let lo = ranges.iter().map(|r| r.1).fold(0.0f32, f32::min);
    let hi = ranges.iter().map(|r| r.2).fold(0.0f32, f32::max);
    let span = |r: &(&str, f32, f32)| (r.2 - r.1).max(0.0);
    let narrow = ranges.iter().min_by(|a, b| span(a).total_cmp(&span(b)))?;
    let wide = ranges.iter().max_by(|a, b| span(a).total_cmp(&span(b)))?;
    let l = levels(narrow.1, narrow.2, lo, hi, cfg);
    if l.is_nan() || l >= MIN_LEVELS || span(narrow) <= 0.0 {
        return None;
    }
    Some(format!(
        "mixed-range Concat: input ranges {:.4} vs {:.4}, one scale would leave {l:.1} levels for '{}' \
         (fewer than {MIN_LEVELS}): left float on the CPU with what depends on it, each input keeping its own scale",
        span(wide),
        span(narrow),
        narrow.0
    ))
}

/// The range a bounded op's output can take, by op.
fn bounded_range(n: &NodeProto) -> Option<(f32, f32)> {
    match op(n) {
        "Sigmoid" | "HardSigmoid" | "Softmax" => Some((0.0, 1.0)),
        "Tanh" => Some((-1.0, 1.0)),
        _ => None,
    }
}

/// What to do with a bounded op's output.
enum Score {
    /// Quantize it over the op's whole range (enough levels there): nothing the calibration missed is clipped.
    Widen((f32, f32), String),
    /// Too few levels over the op's whole range: leave the op float.
    Float(String),
}

/// A bounded op `n` (Sigmoid, Softmax, ...): its calibrated range (a sliver of the op's range when the calibration
/// data never scores high) would clip every value the calibration did not reach; the op's whole range is used when
/// it leaves at least K levels over the observed range, else the op stays float. `None` for other ops and for
/// outputs whose calibrated range spans half the op's range or more.
fn small_score(n: &NodeProto, calib: &Calibration, cfg: &QuantConfig) -> Option<Score> {
    let (blo, bhi) = bounded_range(n)?;
    let y = n.output.first()?;
    let s = calib.get(y)?;
    // A calibrated range over half the op's range or more leaves little unseen to clip.
    if s.max - s.min.max(blo) >= 0.5 * (bhi - blo) {
        return None;
    }
    let l = levels(s.min, s.max, blo, bhi, cfg);
    let seen = format!(
        "observed range [{:.4}, {:.4}] of {}'s [{blo}, {bhi}]",
        s.min,
        s.max,
        op(n)
    );
    if l >= MIN_LEVELS {
        return Some(Score::Widen(
            (blo, bhi),
            format!("score output '{y}': {seen} quantized over [{blo}, {bhi}] ({l:.0} levels over the observed range), so that no score beyond the calibration data is clipped"),
        ));
    }
    Some(Score::Float(format!(
        "small score output: {seen}: its calibrated scale clips every value beyond the calibration data, the \
         full range would leave {l:.1} levels (fewer than {MIN_LEVELS}): left float on the CPU, its input keeping \
         its own scale"
    )))
}

impl FloatTail {
    /// `calib` with the widened output ranges, or `None` when there are none.
    pub fn widen(&self, calib: &Calibration) -> Option<Calibration> {
        if self.ranges.is_empty() {
            return None;
        }
        let mut c = calib.clone();
        for (name, &(lo, hi)) in &self.ranges {
            if let Some(s) = c.get_mut(name) {
                (s.min, s.max) = (lo, hi);
            }
        }
        Some(c)
    }

    /// Leaves node `i` of `g` and what depends on it float for `why`, or says why not.
    fn take(&mut self, g: &GraphProto, e: &Edges, i: usize, why: String) {
        let n = &g.node[i];
        match e.tail(i) {
            Ok(members) => {
                let seed = label(n, i);
                for m in members {
                    let reason = if m == i {
                        why.clone()
                    } else {
                        format!("output-aware tail of '{seed}' ({})", why.split(':').next().unwrap_or(""))
                    };
                    if let Some(o) = g.node[m].output.first() {
                        self.nodes.entry(o.clone()).or_insert(reason);
                    }
                }
            }
            Err(not) => self.notes.push(format!(
                "'{}': {why}; but kept quantized: {not} (the rule leaves only small output tails float)",
                label(n, i)
            )),
        }
    }
}

/// The nodes of `g` (a prepared graph about to be quantized with `cfg` and the ranges `calib`) to leave float, and
/// notes on the cases found but left quantized. Empty when `cfg.output_aware` is off.
pub fn plan(g: &GraphProto, calib: &Calibration, cfg: &QuantConfig) -> FloatTail {
    let mut tail = FloatTail::default();
    if !cfg.output_aware {
        return tail;
    }
    let e = Edges::new(g);
    for (i, n) in g.node.iter().enumerate() {
        let first = n.output.first().map(String::as_str).unwrap_or("");
        if tail.nodes.contains_key(first) {
            continue;
        }
        if op(n) == "Concat" {
            if let Some(why) = mixed_concat(n, calib, &e, cfg) {
                tail.take(g, &e, i, why);
            }
            continue;
        }
        // Only a score that reaches an output through a small float-able tail: inside the model a bounded op's
        // calibrated range is what the next layer saw.
        if e.tail(i).is_err() {
            continue;
        }
        match small_score(n, calib, cfg) {
            Some(Score::Float(why)) => tail.take(g, &e, i, why),
            Some(Score::Widen(r, why)) => {
                tail.ranges.insert(first.to_string(), r);
                tail.notes.push(why);
            }
            None => {}
        }
    }
    if !tail.nodes.is_empty() {
        tail.notes.push(format!(
            "output-aware activations: {} node(s) left float at the outputs (mixed-range Concat or small score; \
             K = {MIN_LEVELS} levels)",
            tail.nodes.len()
        ));
    }
    tail
}
