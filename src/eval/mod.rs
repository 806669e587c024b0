//! Accuracy of a quantized model against its float model, by output kind (issue 11 item 6).
//!
//! Every output gets SQNR and cosine similarity. The decision metrics depend on what the output is:
//! - class scores ([N, C] or [N, C, 1, 1], C > 1): top-1 agreement;
//! - a sequence of per-step scores ([N, T, C], rows summing to 1 like CTC or softmax outputs): agreement of the
//!   whole argmax sequence (per sample) and of the steps;
//! - detections, YOLO-style ([N, boxes, 5 + classes] YOLOX-style rows, or [N, 4 + classes, anchors] YOLOv8-style
//!   columns): candidate boxes above a score threshold matched by IoU and class;
//! - detections, anchor heads (SSD-style, BlazeFace): two outputs, boxes [N, A, 4 + extra] and scores [N, A, C],
//!   paired by their anchor count A; a box counts where its anchor's best score passes the threshold, and the two
//!   models' boxes are matched by anchor index, same class and IoU (see [`DetectionLayout::AnchorBoxes`]);
//! - anything else: SQNR and cosine only (a one-value output has no decision to agree on).
//!
//! The kind is inferred from the shapes and values of the first sample (all its outputs: a pair needs both), or
//! given per output ([`OutputKind::parse`]). Each metric carries what it means ([`Metric::meaning`]), for printing
//! next to the number.

mod detection;

use serde::Serialize;

use crate::error::{Error, Result};
use detection::ScoreForm;

/// How a detection output lays out its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionLayout {
    /// [N, boxes, 5 + classes]: cx, cy, w, h, objectness, class scores per row (YOLOX, YOLOv5).
    YoloRows,
    /// [N, 4 + classes, anchors]: cx, cy, w, h, class scores per column (YOLOv8).
    YoloColumns,
    /// [N, A, 4 + extra]: one box per anchor (SSD, BlazeFace's regressors), scored by the `AnchorScores` output
    /// with the same A. The IoU is of the boxes as the model writes them (cx, cy, w, h first; no anchor decoding):
    /// both models' boxes belong to the same anchor, so where the encoding offsets the centre and scales the size
    /// linearly (BlazeFace, MediaPipe's SSDs) this is the IoU of the decoded boxes. Log-size encodings (TF SSD's
    /// tw, th) give an IoU of the raw numbers only.
    AnchorBoxes,
    /// [N, A, C]: class scores per anchor for the `AnchorBoxes` output with the same A; logits (any value outside
    /// 0..1 in the first reference sample) go through a sigmoid; a softmax over C > 1 classes has class 0 as its
    /// background.
    AnchorScores,
}

/// What an output is, for choosing its decision metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    ClassScores,
    /// [N, T, C]: per sample, T steps of C scores (batch-major: most recognizers, CTC heads).
    Sequence,
    /// [T, N, C]: the same, time-major (recurrent exports such as ddddocr's CRNN: [24, 1, 8210] logits).
    SequenceTimeMajor,
    Detection(DetectionLayout),
    Values,
}

impl OutputKind {
    /// Parses `classes`, `sequence`, `sequence-time-major`, `yolo-rows`, `yolo-columns`, `anchor-boxes`, `anchor-scores` or `values`.
    pub fn parse(s: &str) -> Result<OutputKind> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "classes" => OutputKind::ClassScores,
            "sequence" => OutputKind::Sequence,
            "sequence-time-major" => OutputKind::SequenceTimeMajor,
            "yolo-rows" => OutputKind::Detection(DetectionLayout::YoloRows),
            "yolo-columns" => OutputKind::Detection(DetectionLayout::YoloColumns),
            "anchor-boxes" => OutputKind::Detection(DetectionLayout::AnchorBoxes),
            "anchor-scores" => OutputKind::Detection(DetectionLayout::AnchorScores),
            "values" => OutputKind::Values,
            _ => {
                return Err(Error::invalid_argument(format!(
                    "output kind '{s}': expected classes, sequence, sequence-time-major, yolo-rows, yolo-columns, anchor-boxes, \
                     anchor-scores or values"
                )))
            }
        })
    }

    /// Infers the kind of one output from its shape and the reference model's values. An anchor head's two
    /// outputs are recognised together ([`anchor_roles`]), not here. [T, 1, C] with T >= 4 steps reads as a
    /// time-major sequence (samples are fed one at a time, so a middle 1 is the batch; logits or probabilities
    /// alike, as only each step's argmax counts). An LSTM state ([2, 1, H]: layers x batch x hidden) stays values.
    pub fn infer(shape: &[i64], values: &[f32]) -> OutputKind {
        let d = |i: usize| shape.get(i).copied().unwrap_or(0);
        match shape.len() {
            2 if d(1) > 1 => OutputKind::ClassScores,
            4 if d(1) > 1 && d(2) == 1 && d(3) == 1 => OutputKind::ClassScores,
            3 if d(0) >= 4 && d(1) == 1 && d(2) > 1 => OutputKind::SequenceTimeMajor,
            3 if d(1) > 1 && d(2) > 1 => {
                let c = d(2) as usize;
                if rows_are_distributions(values, c) {
                    OutputKind::Sequence
                } else if (6..=100).contains(&d(2))
                    && d(1) >= 100
                    && yolo_values(DetectionLayout::YoloRows, shape, values)
                {
                    OutputKind::Detection(DetectionLayout::YoloRows)
                } else if (5..=100).contains(&d(1))
                    && d(2) >= 100
                    && yolo_values(DetectionLayout::YoloColumns, shape, values)
                {
                    OutputKind::Detection(DetectionLayout::YoloColumns)
                } else {
                    OutputKind::Values
                }
            }
            _ => OutputKind::Values,
        }
    }
}

/// Whether one sample's values read as YOLO candidates: every score within 0..1 and some box value above 1 (pixels or
/// grid cells; ddddocr's YOLOX head writes undecoded boxes, so their signs say nothing). Embeddings, logits and box distributions of the same shapes fail it
/// (paraphrase-MiniLM's [1, 16, 384], PicoDet's [1, 7600, 32] and its [1, 7600, 10] sigmoid scores).
fn yolo_values(layout: DetectionLayout, shape: &[i64], values: &[f32]) -> bool {
    let (a, b) = (shape[1] as usize, shape[2] as usize);
    if values.len() < a * b {
        return false;
    }
    let (n_boxes, fields, first_score) = match layout {
        DetectionLayout::YoloColumns => (b, a, 4),
        _ => (a, b, 4),
    };
    let at = |i: usize, f: usize| match layout {
        DetectionLayout::YoloColumns => values[f * b + i],
        _ => values[i * b + f],
    };
    let mut pixels = false;
    for i in 0..n_boxes {
        if (first_score..fields).any(|f| !(-1e-6..=1.0 + 1e-6).contains(&at(i, f))) {
            return false;
        }
        pixels |= (0..4).any(|f| at(i, f) > 1.0);
    }
    pixels
}

/// Whether two outputs of shapes `a` and `b` are an anchor head's boxes and scores: both [N, A, K] with the same
/// N and A; the boxes have K = 4 (then the scores any C), or K = 4 + 2m keypoints with one score per anchor
/// (BlazeFace: [1, 896, 16] and [1, 896, 1]). `Some(true)` when `a` is the boxes, `Some(false)` when `b` is.
pub fn anchor_roles(a: &[i64], b: &[i64]) -> Option<bool> {
    if a.len() != 3 || b.len() != 3 || a[0] != b[0] || a[1] != b[1] || a[1] < 2 {
        return None;
    }
    let boxes = |k: i64, other: i64| k == 4 || (k > 4 && k % 2 == 0 && other == 1);
    match (boxes(a[2], b[2]), boxes(b[2], a[2])) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Whether every row of `c` values is non-negative and sums to about 1 (softmax / CTC probabilities).
fn rows_are_distributions(values: &[f32], c: usize) -> bool {
    if c < 2 || values.is_empty() || !values.len().is_multiple_of(c) {
        return false;
    }
    values.chunks(c).all(|r| {
        r.iter().all(|v| *v >= -1e-6)
            && (r.iter().map(|v| *v as f64).sum::<f64>() - 1.0).abs() < 1e-2
    })
}

/// One metric of one output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metric {
    /// "sqnr_db", "cosine", "top1_agreement", "sequence_agreement", "step_agreement", "box_recall",
    /// "box_precision".
    pub name: String,
    /// `None` for an infinite SQNR (identical outputs).
    pub value: Option<f64>,
    /// What the number means, one line.
    pub meaning: String,
}

/// The metrics of one output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputEval {
    pub name: String,
    /// The shape of one sample's output.
    pub shape: Vec<i64>,
    pub kind: OutputKind,
    /// Whether `kind` was given rather than inferred.
    pub kind_given: bool,
    /// For an anchor head's half: the other output of the pair (the box metrics are on the boxes output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paired_with: Option<String>,
    pub metrics: Vec<Metric>,
    /// Why an output that looks like part of a detection head has no box metric (e.g. PicoDet's split heads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Score threshold and IoU for matching detection candidates.
pub const DETECTION_SCORE: f32 = 0.25;
pub const DETECTION_IOU: f32 = 0.5;

/// One sample of one output kept back: the first sample until every kind is known, or an anchor head's half
/// until the other half of the same sample comes.
#[derive(Clone, Debug)]
struct Held {
    sample: usize,
    reference: Vec<f32>,
    other: Vec<f32>,
}

#[derive(Clone, Default)]
struct Acc {
    name: String,
    shape: Vec<i64>,
    kind: Option<OutputKind>,
    kind_given: bool,
    /// Whether `kind` (and an anchor pair's partner) is final; the first sample waits in `held` until it is.
    resolved: bool,
    samples: usize,
    held: Option<Held>,
    partner: Option<usize>,
    score_form: ScoreForm,
    signal: f64,
    noise: f64,
    dot: f64,
    norm_a: f64,
    norm_b: f64,
    rows: usize,
    rows_same: usize,
    sequences: usize,
    sequences_same: usize,
    boxes_ref: usize,
    boxes_other: usize,
    boxes_matched: usize,
}

/// Accumulates the comparison over samples, in constant memory per output (at most one sample kept back).
/// Add every output of a sample before the next sample's: an anchor head's two outputs are paired by sample.
#[derive(Clone, Default)]
pub struct Evaluator {
    given: Vec<(String, OutputKind)>,
    outputs: Vec<Acc>,
}

fn argmax(r: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in r.iter().enumerate() {
        if *v > r[best] {
            best = i;
        }
    }
    best
}

impl Acc {
    /// Sequence decisions of one [T, N, C] output: step t of sequence n is the row at (t * N + n) * C.
    fn add_time_major(&mut self, shape: &[i64], reference: &[f32], other: &[f32]) {
        let (t, n, c) = (
            shape[0].max(1) as usize,
            shape[1].max(1) as usize,
            shape[2].max(1) as usize,
        );
        if reference.len() < t * n * c || other.len() < t * n * c {
            return;
        }
        for seq in 0..n {
            let mut all = true;
            for step in 0..t {
                let at = (step * n + seq) * c;
                let same = argmax(&reference[at..at + c]) == argmax(&other[at..at + c]);
                self.rows += 1;
                self.rows_same += usize::from(same);
                all &= same;
            }
            self.sequences += 1;
            self.sequences_same += usize::from(all);
        }
    }

    fn add_values(&mut self, reference: &[f32], other: &[f32]) {
        for (a, b) in reference.iter().zip(other) {
            let (a, b) = (*a as f64, *b as f64);
            self.signal += a * a;
            self.noise += (a - b) * (a - b);
            self.dot += a * b;
            self.norm_a += a * a;
            self.norm_b += b * b;
        }
    }

    /// The decisions of one sample of a one-output kind (classes, sequence, YOLO-style detection).
    fn add_decisions(&mut self, shape: &[i64], reference: &[f32], other: &[f32]) {
        let last = shape.last().copied().unwrap_or(1).max(1) as usize;
        match self.kind.unwrap_or(OutputKind::Values) {
            OutputKind::ClassScores => {
                let c = shape.get(1).copied().unwrap_or(1).max(1) as usize;
                for (ra, rb) in reference.chunks(c).zip(other.chunks(c)) {
                    self.rows += 1;
                    self.rows_same += usize::from(argmax(ra) == argmax(rb));
                }
            }
            OutputKind::Sequence => {
                let per_sample =
                    (reference.len() / shape.first().copied().unwrap_or(1).max(1) as usize).max(1);
                for (sa, sb) in reference.chunks(per_sample).zip(other.chunks(per_sample)) {
                    let mut all = true;
                    for (ra, rb) in sa.chunks(last).zip(sb.chunks(last)) {
                        let same = argmax(ra) == argmax(rb);
                        self.rows += 1;
                        self.rows_same += usize::from(same);
                        all &= same;
                    }
                    self.sequences += 1;
                    self.sequences_same += usize::from(all);
                }
            }
            OutputKind::SequenceTimeMajor if shape.len() == 3 => {
                self.add_time_major(shape, reference, other)
            }
            OutputKind::Detection(
                layout @ (DetectionLayout::YoloRows | DetectionLayout::YoloColumns),
            ) if shape.len() == 3 => {
                let per = (shape[1] * shape[2]).max(1) as usize;
                for (sa, sb) in reference.chunks(per).zip(other.chunks(per)) {
                    if sa.len() < per {
                        break;
                    }
                    let da = detection::yolo_detections(layout, shape, sa);
                    let db = detection::yolo_detections(layout, shape, sb);
                    self.boxes_ref += da.len();
                    self.boxes_other += db.len();
                    self.boxes_matched += detection::matched(&da, &db);
                }
            }
            _ => {}
        }
    }
}

fn is_anchor_kind(k: Option<OutputKind>) -> bool {
    matches!(
        k,
        Some(OutputKind::Detection(
            DetectionLayout::AnchorBoxes | DetectionLayout::AnchorScores
        ))
    )
}

impl Evaluator {
    pub fn new() -> Evaluator {
        Evaluator::default()
    }

    /// Gives the kind of output `name` instead of inferring it.
    pub fn set_kind(&mut self, name: &str, kind: OutputKind) {
        self.given.retain(|(n, _)| n != name);
        self.given.push((name.to_string(), kind));
    }

    /// Adds one sample: one output of the reference (float) model and the same output of the other model, with the
    /// output's shape. `TensorMismatch` when the two differ in shape; `InvalidArgument` when an anchor head's output
    /// comes twice before its other half came once.
    pub fn add(
        &mut self,
        name: &str,
        shape: &[i64],
        reference: &[f32],
        other: &[f32],
    ) -> Result<()> {
        if reference.len() != other.len() {
            return Err(Error::new(
                crate::ErrorKind::TensorMismatch,
                format!(
                    "output '{name}': the models give {} and {} values for one sample",
                    reference.len(),
                    other.len()
                ),
            ));
        }
        let k = self.slot(name, shape);
        // A second sample of any output: the first sample is complete, every kind can be decided.
        if self.outputs[k].samples > 0 && self.outputs.iter().any(|o| !o.resolved) {
            self.resolve()?;
        }
        let acc = &mut self.outputs[k];
        acc.add_values(reference, other);
        let sample = acc.samples;
        acc.samples += 1;
        if !acc.resolved {
            acc.held = Some(Held {
                sample,
                reference: reference.to_vec(),
                other: other.to_vec(),
            });
            return Ok(());
        }
        self.decide(k, sample, shape, reference, other)
    }

    /// The index of output `name`, created on its first sample.
    fn slot(&mut self, name: &str, shape: &[i64]) -> usize {
        if let Some(k) = self.outputs.iter().position(|o| o.name == name) {
            return k;
        }
        let given = self.given.iter().find(|(n, _)| n == name).map(|g| g.1);
        self.outputs.push(Acc {
            name: name.to_string(),
            shape: shape.to_vec(),
            kind: given,
            kind_given: given.is_some(),
            ..Default::default()
        });
        self.outputs.len() - 1
    }

    /// The decision metrics of one sample of output `k`.
    fn decide(
        &mut self,
        k: usize,
        sample: usize,
        shape: &[i64],
        reference: &[f32],
        other: &[f32],
    ) -> Result<()> {
        if !is_anchor_kind(self.outputs[k].kind) {
            self.outputs[k].add_decisions(shape, reference, other);
            return Ok(());
        }
        let Some(p) = self.outputs[k].partner else {
            return Ok(()); // an anchor half without its other half: SQNR and cosine only
        };
        let Some(h) = self.outputs[p].held.take() else {
            if self.outputs[k].held.is_some() {
                return Err(self.order_error(k, p));
            }
            self.outputs[k].held = Some(Held {
                sample,
                reference: reference.to_vec(),
                other: other.to_vec(),
            });
            return Ok(());
        };
        if h.sample != sample {
            return Err(self.order_error(p, k));
        }
        let here = (reference, other);
        let there = (h.reference.as_slice(), h.other.as_slice());
        if self.outputs[k].kind == Some(OutputKind::Detection(DetectionLayout::AnchorBoxes)) {
            self.add_anchor_sample(k, p, here, there);
        } else {
            self.add_anchor_sample(p, k, there, here);
        }
        Ok(())
    }

    fn order_error(&self, early: usize, missing: usize) -> Error {
        Error::invalid_argument(format!(
            "output '{}': sample {} added before output '{}' of sample {} (an anchor head's boxes and scores are \
             paired by sample: add every output of a sample before the next sample's)",
            self.outputs[early].name,
            self.outputs[early].samples,
            self.outputs[missing].name,
            self.outputs[early].samples - 1,
        ))
    }

    /// One sample of an anchor head: boxes output `b` and scores output `s`, (reference, other) values each.
    fn add_anchor_sample(
        &mut self,
        b: usize,
        s: usize,
        boxes: (&[f32], &[f32]),
        scores: (&[f32], &[f32]),
    ) {
        let fields = self.outputs[b].shape[2].max(1) as usize;
        let classes = self.outputs[s].shape[2].max(1) as usize;
        let form = self.outputs[s].score_form;
        let da = detection::anchor_detections(boxes.0, fields, scores.0, classes, form);
        let db = detection::anchor_detections(boxes.1, fields, scores.1, classes, form);
        let (r, o, m) = detection::anchor_matches(&da, &db);
        let acc = &mut self.outputs[b];
        acc.boxes_ref += r;
        acc.boxes_other += o;
        acc.boxes_matched += m;
    }

    /// Decides every undecided kind from the first sample (held back until now), pairs anchor heads' outputs,
    /// then counts the held samples' decisions.
    fn resolve(&mut self) -> Result<()> {
        let open: Vec<usize> = (0..self.outputs.len())
            .filter(|k| !self.outputs[*k].resolved)
            .collect();
        self.pair_anchor_heads(&open);
        for &k in &open {
            let acc = &mut self.outputs[k];
            let first = acc
                .held
                .as_ref()
                .map(|h| h.reference.as_slice())
                .unwrap_or(&[]);
            if acc.kind.is_none() {
                acc.kind = Some(OutputKind::infer(&acc.shape, first));
            }
            if acc.kind == Some(OutputKind::Detection(DetectionLayout::AnchorScores)) {
                acc.score_form = ScoreForm::of(
                    first,
                    acc.shape.last().copied().unwrap_or(1).max(1) as usize,
                );
            }
            acc.resolved = true;
        }
        let held: Vec<(usize, Held)> = open
            .iter()
            .filter_map(|&k| self.outputs[k].held.take().map(|h| (k, h)))
            .collect();
        for (k, h) in held {
            let shape = self.outputs[k].shape.clone();
            self.decide(k, h.sample, &shape, &h.reference, &h.other)?;
        }
        Ok(())
    }

    /// Pairs the open outputs that make an anchor head (kinds given, or both inferred by [`anchor_roles`]).
    fn pair_anchor_heads(&mut self, open: &[usize]) {
        use DetectionLayout::{AnchorBoxes, AnchorScores};
        for &i in open {
            for &j in open {
                let (a, b) = (&self.outputs[i], &self.outputs[j]);
                if i == j || a.partner.is_some() || b.partner.is_some() {
                    continue;
                }
                let roles = anchor_roles(&a.shape, &b.shape);
                // A given half is never re-paired against its kind; `roles` only decides between two open ones.
                let boxes_scores = match (a.kind, b.kind) {
                    (
                        Some(OutputKind::Detection(AnchorBoxes)),
                        Some(OutputKind::Detection(AnchorScores)),
                    ) => true,
                    // One half given: the other is the open output with the same anchors.
                    (Some(OutputKind::Detection(AnchorBoxes)), None) => true,
                    (None, Some(OutputKind::Detection(AnchorScores))) => true,
                    (None, None) => roles == Some(true),
                    _ => false,
                };
                if boxes_scores && same_anchors(a, b) {
                    self.outputs[i].kind = Some(OutputKind::Detection(AnchorBoxes));
                    self.outputs[j].kind = Some(OutputKind::Detection(AnchorScores));
                    self.outputs[i].partner = Some(j);
                    self.outputs[j].partner = Some(i);
                }
            }
        }
    }

    /// The metrics of every output seen, in the order first seen.
    pub fn finish(&self) -> Vec<OutputEval> {
        if self.outputs.iter().any(|o| !o.resolved) {
            let mut done = self.clone();
            // Only an anchor head's order error can fail here, and `add` has reported it already.
            if done.resolve().is_ok() {
                return done.finish();
            }
        }
        let mut evals: Vec<OutputEval> = self
            .outputs
            .iter()
            .map(|a| finish_one(a, a.partner.map(|p| self.outputs[p].name.clone())))
            .collect();
        note_split_heads(&mut evals);
        evals
    }
}

/// Whether two outputs are [N, A, K] with the same N and A (an anchor head's halves must be).
fn same_anchors(a: &Acc, b: &Acc) -> bool {
    a.shape.len() == 3 && b.shape.len() == 3 && a.shape[..2] == b.shape[..2]
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn metric(name: &str, value: Option<f64>, meaning: String) -> Metric {
    Metric {
        name: name.into(),
        value,
        meaning,
    }
}

fn finish_one(a: &Acc, paired_with: Option<String>) -> OutputEval {
    let mut metrics = value_metrics(a);
    metrics.extend(task_metrics(a, paired_with.as_deref()));
    OutputEval {
        name: a.name.clone(),
        shape: a.shape.clone(),
        kind: a.kind.unwrap_or(OutputKind::Values),
        kind_given: a.kind_given,
        paired_with,
        metrics,
        note: None,
    }
}

/// Marks a detection head split per feature level (PicoDet: scores [1, A_l, C] and box distributions [1, A_l, 4k]
/// for each level l) rather than leaving it silently without a box metric: two or more groups of [N, A, K] value
/// outputs (one group per K) over the same two or more anchor counts A.
fn note_split_heads(evals: &mut [OutputEval]) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut by_k: BTreeMap<(i64, i64), BTreeSet<i64>> = BTreeMap::new();
    for e in evals
        .iter()
        .filter(|e| e.kind == OutputKind::Values && e.shape.len() == 3)
    {
        by_k.entry((e.shape[0], e.shape[2]))
            .or_default()
            .insert(e.shape[1]);
    }
    let mut counts: BTreeMap<&BTreeSet<i64>, usize> = BTreeMap::new();
    for anchors in by_k.values().filter(|a| a.len() >= 2) {
        *counts.entry(anchors).or_default() += 1;
    }
    let Some((levels, _)) = counts.into_iter().find(|(_, n)| *n >= 2) else {
        return;
    };
    let levels = levels.clone();
    let note = format!(
        "no box metric: split heads (scores and boxes per feature level, {} levels, decoded outside the model); \
         SQNR and cosine only",
        levels.len()
    );
    for e in evals.iter_mut() {
        let split = e.kind == OutputKind::Values
            && e.shape.len() == 3
            && levels.contains(&e.shape[1])
            && by_k.get(&(e.shape[0], e.shape[2])) == Some(&levels);
        if split {
            e.note = Some(note.clone());
        }
    }
}

/// SQNR and cosine similarity: meaningful for every output.
fn value_metrics(a: &Acc) -> Vec<Metric> {
    let sqnr = if a.noise == 0.0 {
        None
    } else {
        Some(10.0 * (a.signal / a.noise).log10())
    };
    let cosine = if a.norm_a == 0.0 || a.norm_b == 0.0 {
        Some(if a.norm_a == a.norm_b { 1.0 } else { 0.0 })
    } else {
        Some(a.dot / (a.norm_a.sqrt() * a.norm_b.sqrt()))
    };
    vec![
        metric(
            "sqnr_db",
            sqnr,
            "signal-to-quantization-noise ratio of all values, dB (higher is closer; +10 dB = 10x less error power)"
                .into(),
        ),
        metric(
            "cosine",
            cosine,
            "cosine similarity of all values (1 = same direction)".into(),
        ),
    ]
}

/// The task metric of the output's kind (none for plain values and for an anchor head's scores half, whose box
/// metrics are on the boxes half).
fn task_metrics(a: &Acc, paired_with: Option<&str>) -> Vec<Metric> {
    let mut metrics = Vec::new();
    match a.kind.unwrap_or(OutputKind::Values) {
        OutputKind::ClassScores => metrics.push(metric(
            "top1_agreement",
            ratio(a.rows_same, a.rows),
            format!(
                "share of {} rows whose highest-scoring class is the float model's",
                a.rows
            ),
        )),
        OutputKind::Sequence | OutputKind::SequenceTimeMajor => {
            metrics.push(metric(
                "sequence_agreement",
                ratio(a.sequences_same, a.sequences),
                format!(
                    "share of {} samples whose whole argmax sequence (e.g. the decoded text) is the float model's",
                    a.sequences
                ),
            ));
            metrics.push(metric(
                "step_agreement",
                ratio(a.rows_same, a.rows),
                format!(
                    "share of {} steps whose argmax is the float model's",
                    a.rows
                ),
            ));
        }
        OutputKind::Detection(DetectionLayout::AnchorScores) => {}
        OutputKind::Detection(DetectionLayout::AnchorBoxes) => {
            let scores = paired_with.unwrap_or("?");
            metrics.push(metric(
                "box_recall",
                a.partner.and(ratio(a.boxes_matched, a.boxes_ref)),
                format!(
                    "share of the float model's {} detected anchors (best score in '{scores}' >= {DETECTION_SCORE}) \
                     the quantized model also detects (same anchor and class, IoU >= {DETECTION_IOU} of the raw \
                     boxes)",
                    a.boxes_ref
                ),
            ));
            metrics.push(metric(
                "box_precision",
                a.partner.and(ratio(a.boxes_matched, a.boxes_other)),
                format!(
                    "share of the quantized model's {} detected anchors the float model also has",
                    a.boxes_other
                ),
            ));
        }
        OutputKind::Detection(_) => {
            metrics.push(metric(
                "box_recall",
                ratio(a.boxes_matched, a.boxes_ref),
                format!(
                    "share of the float model's {} candidate boxes (score >= {DETECTION_SCORE}) the quantized model \
                     also finds (same class, IoU >= {DETECTION_IOU})",
                    a.boxes_ref
                ),
            ));
            metrics.push(metric(
                "box_precision",
                ratio(a.boxes_matched, a.boxes_other),
                format!(
                    "share of the quantized model's {} candidate boxes the float model also has",
                    a.boxes_other
                ),
            ));
        }
        OutputKind::Values => {}
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(e: &OutputEval, name: &str) -> Option<f64> {
        e.metrics
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.value)
    }

    #[test]
    fn kinds_are_inferred_from_shapes() {
        assert_eq!(OutputKind::infer(&[1, 1000], &[]), OutputKind::ClassScores);
        assert_eq!(
            OutputKind::infer(&[1, 4, 1, 1], &[]),
            OutputKind::ClassScores
        );
        assert_eq!(OutputKind::infer(&[1, 1], &[0.5]), OutputKind::Values);
        let rows: Vec<f32> = (0..3549)
            .flat_map(|_| [40.0, 30.0, 8.0, 9.0, 0.3, 0.9])
            .collect();
        assert_eq!(
            OutputKind::infer(&[1, 3549, 6], &rows),
            OutputKind::Detection(DetectionLayout::YoloRows)
        );
        let mut columns = vec![0.3; 22 * 2100];
        columns[0] = 120.0;
        assert_eq!(
            OutputKind::infer(&[1, 22, 2100], &columns),
            OutputKind::Detection(DetectionLayout::YoloColumns)
        );
        // The same shapes holding scores only (no pixel coordinates) or signed values are no candidates.
        assert_eq!(
            OutputKind::infer(&[1, 3549, 6], &vec![0.3; 3549 * 6]),
            OutputKind::Values
        );
        let signed: Vec<f32> = (0..16 * 384).map(|i| (i as f32).sin() * 3.0).collect();
        assert_eq!(
            OutputKind::infer(&[1, 16, 384], &signed),
            OutputKind::Values
        );
        let probs: Vec<f32> = (0..40).flat_map(|_| [0.25f32; 4]).collect();
        assert_eq!(OutputKind::infer(&[1, 40, 4], &probs), OutputKind::Sequence);
    }

    #[test]
    fn a_one_value_output_gets_no_agreement_and_class_scores_do() {
        let mut e = Evaluator::new();
        e.add("p", &[1, 1], &[0.9], &[0.4]).unwrap();
        e.add("c", &[1, 3], &[0.1, 0.7, 0.2], &[0.1, 0.2, 0.7])
            .unwrap();
        let r = e.finish();
        assert!(value(&r[0], "top1_agreement").is_none());
        assert_eq!(r[0].metrics.len(), 2);
        assert_eq!(value(&r[1], "top1_agreement"), Some(0.0));
    }

    /// A [T, N, C] output is read step by step per sequence: with N = 2, only the second sequence's last step
    /// differs, so one of two sequences and 5 of 6 steps agree; [2, 1, 128] (an LSTM state) is not a sequence.
    #[test]
    fn time_major_sequences_are_read_by_step() {
        let logits: Vec<f32> = (0..24 * 8).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        assert_eq!(
            OutputKind::infer(&[24, 1, 8], &logits),
            OutputKind::SequenceTimeMajor
        );
        assert_eq!(
            OutputKind::infer(&[2, 1, 128], &[0.0; 256]),
            OutputKind::Values
        );
        // [3, 2, 2]: step t of sequence n at (t * 2 + n) * 2.
        let a = [
            1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0,
        ];
        let mut b = a;
        b[10] = 2.0; // step 2, sequence 1: argmax 1 -> 0
        let mut e = Evaluator::new();
        e.set_kind("s", OutputKind::parse("sequence-time-major").unwrap());
        e.add("s", &[3, 2, 2], &a, &b).unwrap();
        let r = e.finish();
        assert_eq!(value(&r[0], "sequence_agreement"), Some(0.5));
        assert_eq!(value(&r[0], "step_agreement"), Some(5.0 / 6.0));
    }

    /// PicoDet-style heads: scores [1, A, 10] and boxes [1, A, 32] for two levels get the note; a lone embedding
    /// does not.
    #[test]
    fn split_heads_are_named() {
        let mut e = Evaluator::new();
        for (a, k) in [(40, 10), (10, 10), (40, 32), (10, 32), (16, 384)] {
            let v: Vec<f32> = (0..a * k).map(|i| (i % 7) as f32 - 3.0).collect();
            e.add(&format!("{a}x{k}"), &[1, a as i64, k as i64], &v, &v)
                .unwrap();
        }
        let r = e.finish();
        assert!(r[..4].iter().all(|o| o
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("no box metric: split heads"))));
        assert!(r[4].note.is_none());
    }

    #[test]
    fn sequences_agree_only_when_every_step_does() {
        let mut e = Evaluator::new();
        let a = [0.9f32, 0.1, 0.2, 0.8, 0.6, 0.4];
        let b = [0.8f32, 0.2, 0.3, 0.7, 0.4, 0.6];
        e.add("s", &[1, 3, 2], &a, &a).unwrap();
        e.add("s", &[1, 3, 2], &a, &b).unwrap();
        let r = e.finish();
        assert_eq!(r[0].kind, OutputKind::Sequence);
        assert_eq!(value(&r[0], "sequence_agreement"), Some(0.5));
        assert!((value(&r[0], "step_agreement").unwrap() - 5.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn detection_boxes_are_matched_by_iou_and_class() {
        // Two YOLO-row candidates, 7 fields (obj + 2 classes), padded to 100 rows of zeros.
        let mut a = vec![0f32; 100 * 7];
        a[..7].copy_from_slice(&[50.0, 50.0, 20.0, 20.0, 0.9, 0.9, 0.1]);
        a[7..14].copy_from_slice(&[10.0, 10.0, 8.0, 8.0, 0.9, 0.1, 0.9]);
        let mut b = a.clone();
        b[0] = 52.0; // shifted a little: IoU 0.82
        b[12] = 0.9; // second box changes class
        b[13] = 0.1;
        let mut e = Evaluator::new();
        e.add("d", &[1, 100, 7], &a, &b).unwrap();
        let r = e.finish();
        assert_eq!(r[0].kind, OutputKind::Detection(DetectionLayout::YoloRows));
        assert_eq!(value(&r[0], "box_recall"), Some(0.5));
        assert_eq!(value(&r[0], "box_precision"), Some(0.5));
        assert!(value(&r[0], "top1_agreement").is_none());
    }

    /// BlazeFace-like head: boxes [1, A, 16] (cx, cy, w, h + 6 keypoints) and logits [1, A, 1].
    fn anchor_sample(a: usize, faces: &[(usize, f32, f32)]) -> (Vec<f32>, Vec<f32>) {
        let mut boxes = vec![0f32; a * 16];
        let mut logits = vec![-20f32; a];
        for &(i, cx, logit) in faces {
            boxes[i * 16..i * 16 + 4].copy_from_slice(&[cx, 0.0, 20.0, 20.0]);
            logits[i] = logit;
        }
        (boxes, logits)
    }

    #[test]
    fn anchor_heads_pair_by_anchor_count_and_match_by_anchor() {
        assert_eq!(anchor_roles(&[1, 896, 16], &[1, 896, 1]), Some(true));
        assert_eq!(anchor_roles(&[1, 896, 1], &[1, 896, 16]), Some(false));
        assert_eq!(anchor_roles(&[1, 100, 4], &[1, 100, 91]), Some(true));
        assert_eq!(anchor_roles(&[1, 3800, 32], &[1, 3800, 10]), None); // box distributions, not boxes
        assert_eq!(anchor_roles(&[1, 896, 16], &[1, 512, 1]), None);
        let mut e = Evaluator::new();
        // Float: faces at anchors 3 and 7. Quantized: anchor 3 moved by 2 (IoU 0.82), anchor 7 lost, 9 new.
        let (fb, fs) = anchor_sample(200, &[(3, 50.0, 3.0), (7, 10.0, 2.0)]);
        let (qb, qs) = anchor_sample(200, &[(3, 52.0, 2.5), (7, 10.0, -3.0), (9, 0.0, 1.0)]);
        for _ in 0..2 {
            e.add("regressors", &[1, 200, 16], &fb, &qb).unwrap();
            e.add("classificators", &[1, 200, 1], &fs, &qs).unwrap();
        }
        let r = e.finish();
        assert_eq!(
            r[0].kind,
            OutputKind::Detection(DetectionLayout::AnchorBoxes)
        );
        assert_eq!(
            r[1].kind,
            OutputKind::Detection(DetectionLayout::AnchorScores)
        );
        assert_eq!(r[0].paired_with.as_deref(), Some("classificators"));
        assert_eq!(value(&r[0], "box_recall"), Some(0.5));
        assert_eq!(value(&r[0], "box_precision"), Some(0.5));
        assert!(r[0].metrics[2].meaning.contains("4 detected")); // 2 per sample, twice
        assert!(value(&r[1], "box_recall").is_none());
    }

    #[test]
    fn anchor_halves_must_come_sample_by_sample() {
        let (b, s) = anchor_sample(200, &[(3, 50.0, 3.0)]);
        let mut e = Evaluator::new();
        e.set_kind("boxes", OutputKind::parse("anchor-boxes").unwrap());
        e.add("scores", &[1, 200, 1], &s, &s).unwrap();
        e.add("boxes", &[1, 200, 16], &b, &b).unwrap();
        e.add("boxes", &[1, 200, 16], &b, &b).unwrap();
        let err = e.add("boxes", &[1, 200, 16], &b, &b).unwrap_err();
        assert!(err.message().contains("'scores'"), "{}", err.message());
        // Scores given as probabilities, one half given: same result as inferred.
        let mut e = Evaluator::new();
        e.set_kind("s", OutputKind::Detection(DetectionLayout::AnchorScores));
        let p: Vec<f32> = s.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
        e.add("b", &[1, 200, 16], &b, &b).unwrap();
        e.add("s", &[1, 200, 1], &p, &p).unwrap();
        let r = e.finish();
        assert_eq!(
            r[0].kind,
            OutputKind::Detection(DetectionLayout::AnchorBoxes)
        );
        assert_eq!(value(&r[0], "box_recall"), Some(1.0));
    }
}
