//! Accuracy of a quantized model against its float model, by output kind (issue 11 item 6).
//!
//! Every output gets SQNR and cosine similarity. The decision metrics depend on what the output is:
//! - class scores ([N, C] or [N, C, 1, 1], C > 1): top-1 agreement;
//! - a sequence of per-step scores ([N, T, C], rows summing to 1 like CTC or softmax outputs): agreement of the
//!   whole argmax sequence (per sample) and of the steps;
//! - detections ([N, boxes, 5 + classes] YOLOX-style rows, or [N, 4 + classes, anchors] YOLOv8-style columns):
//!   candidate boxes above a score threshold matched by IoU and class;
//! - anything else: SQNR and cosine only (a one-value output has no decision to agree on).
//!
//! The kind is inferred from the shape and values, or given per output ([`OutputKind::parse`]). Each metric
//! carries what it means ([`Metric::meaning`]), for printing next to the number.

use serde::Serialize;

use crate::error::{Error, Result};

/// How a detection output lays out its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionLayout {
    /// [N, boxes, 5 + classes]: cx, cy, w, h, objectness, class scores per row (YOLOX, YOLOv5).
    YoloRows,
    /// [N, 4 + classes, anchors]: cx, cy, w, h, class scores per column (YOLOv8).
    YoloColumns,
}

/// What an output is, for choosing its decision metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    ClassScores,
    Sequence,
    Detection(DetectionLayout),
    Values,
}

impl OutputKind {
    /// Parses `classes`, `sequence`, `yolo-rows`, `yolo-columns` or `values`.
    pub fn parse(s: &str) -> Result<OutputKind> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "classes" => OutputKind::ClassScores,
            "sequence" => OutputKind::Sequence,
            "yolo-rows" => OutputKind::Detection(DetectionLayout::YoloRows),
            "yolo-columns" => OutputKind::Detection(DetectionLayout::YoloColumns),
            "values" => OutputKind::Values,
            _ => {
                return Err(Error::invalid_argument(format!(
                "output kind '{s}': expected classes, sequence, yolo-rows, yolo-columns or values"
            )))
            }
        })
    }

    /// Infers the kind from an output's shape and the reference model's values.
    pub fn infer(shape: &[i64], values: &[f32]) -> OutputKind {
        let d = |i: usize| shape.get(i).copied().unwrap_or(0);
        match shape.len() {
            2 if d(1) > 1 => OutputKind::ClassScores,
            4 if d(1) > 1 && d(2) == 1 && d(3) == 1 => OutputKind::ClassScores,
            3 if d(1) > 1 && d(2) > 1 => {
                let c = d(2) as usize;
                if rows_are_distributions(values, c) {
                    OutputKind::Sequence
                } else if (6..=100).contains(&d(2)) && d(1) >= 100 {
                    OutputKind::Detection(DetectionLayout::YoloRows)
                } else if (5..=100).contains(&d(1)) && d(2) >= 100 {
                    OutputKind::Detection(DetectionLayout::YoloColumns)
                } else {
                    OutputKind::Values
                }
            }
            _ => OutputKind::Values,
        }
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
    pub metrics: Vec<Metric>,
}

/// Score threshold and IoU for matching detection candidates.
pub const DETECTION_SCORE: f32 = 0.25;
pub const DETECTION_IOU: f32 = 0.5;

#[derive(Default)]
struct Acc {
    name: String,
    shape: Vec<i64>,
    kind: Option<OutputKind>,
    kind_given: bool,
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

/// Accumulates the comparison over samples, in constant memory per output.
#[derive(Default)]
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

/// One candidate box: corners, class, score.
#[derive(Clone, Copy, Debug)]
struct Det {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    class: usize,
}

fn iou(a: &Det, b: &Det) -> f32 {
    let w = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
    let h = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
    let inter = w * h;
    let area = |d: &Det| (d.x1 - d.x0).max(0.0) * (d.y1 - d.y0).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// The candidates of one sample's detection output above [`DETECTION_SCORE`].
fn detections(layout: DetectionLayout, shape: &[i64], v: &[f32]) -> Vec<Det> {
    let (a, b) = (shape[1] as usize, shape[2] as usize);
    let at = |box_i: usize, field: usize| match layout {
        DetectionLayout::YoloRows => v[box_i * b + field],
        DetectionLayout::YoloColumns => v[field * b + box_i],
    };
    let (n_boxes, fields, first_class) = match layout {
        DetectionLayout::YoloRows => (a, b, 5),
        DetectionLayout::YoloColumns => (b, a, 4),
    };
    let mut out = Vec::new();
    for i in 0..n_boxes {
        let (mut class, mut best) = (0, f32::MIN);
        for f in first_class..fields {
            if at(i, f) > best {
                best = at(i, f);
                class = f - first_class;
            }
        }
        let score = match layout {
            DetectionLayout::YoloRows => at(i, 4) * best,
            DetectionLayout::YoloColumns => best,
        };
        if score >= DETECTION_SCORE {
            let (cx, cy, w, h) = (at(i, 0), at(i, 1), at(i, 2), at(i, 3));
            out.push(Det {
                x0: cx - w / 2.0,
                y0: cy - h / 2.0,
                x1: cx + w / 2.0,
                y1: cy + h / 2.0,
                class,
            });
        }
    }
    out
}

/// Greedy one-to-one matching by IoU within a class: how many of `a` find a partner in `b`.
fn matched(a: &[Det], b: &[Det]) -> usize {
    let mut used = vec![false; b.len()];
    let mut n = 0;
    for d in a {
        let best = b
            .iter()
            .enumerate()
            .filter(|(j, e)| !used[*j] && e.class == d.class)
            .map(|(j, e)| (j, iou(d, e)))
            .filter(|(_, v)| *v >= DETECTION_IOU)
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((j, _)) = best {
            used[j] = true;
            n += 1;
        }
    }
    n
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
    /// output's shape. `TensorMismatch` when the two differ in shape.
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
        let k = match self.outputs.iter().position(|o| o.name == name) {
            Some(k) => k,
            None => {
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
        };
        let acc = &mut self.outputs[k];
        let kind = *acc
            .kind
            .get_or_insert_with(|| OutputKind::infer(shape, reference));
        for (a, b) in reference.iter().zip(other) {
            let (a, b) = (*a as f64, *b as f64);
            acc.signal += a * a;
            acc.noise += (a - b) * (a - b);
            acc.dot += a * b;
            acc.norm_a += a * a;
            acc.norm_b += b * b;
        }
        let last = shape.last().copied().unwrap_or(1).max(1) as usize;
        match kind {
            OutputKind::ClassScores => {
                let c = shape.get(1).copied().unwrap_or(1).max(1) as usize;
                for (ra, rb) in reference.chunks(c).zip(other.chunks(c)) {
                    acc.rows += 1;
                    acc.rows_same += usize::from(argmax(ra) == argmax(rb));
                }
            }
            OutputKind::Sequence => {
                let per_sample =
                    reference.len() / shape.first().copied().unwrap_or(1).max(1) as usize;
                for (sa, sb) in reference
                    .chunks(per_sample.max(1))
                    .zip(other.chunks(per_sample.max(1)))
                {
                    let mut all = true;
                    for (ra, rb) in sa.chunks(last).zip(sb.chunks(last)) {
                        let same = argmax(ra) == argmax(rb);
                        acc.rows += 1;
                        acc.rows_same += usize::from(same);
                        all &= same;
                    }
                    acc.sequences += 1;
                    acc.sequences_same += usize::from(all);
                }
            }
            OutputKind::Detection(layout) if shape.len() == 3 => {
                let per = (shape[1] * shape[2]).max(1) as usize;
                for (sa, sb) in reference.chunks(per).zip(other.chunks(per)) {
                    if sa.len() < per {
                        break;
                    }
                    let (da, db) = (detections(layout, shape, sa), detections(layout, shape, sb));
                    acc.boxes_ref += da.len();
                    acc.boxes_other += db.len();
                    acc.boxes_matched += matched(&da, &db);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The metrics of every output seen, in the order first seen.
    pub fn finish(&self) -> Vec<OutputEval> {
        self.outputs.iter().map(finish_one).collect()
    }
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn finish_one(a: &Acc) -> OutputEval {
    let metric = |name: &str, value: Option<f64>, meaning: String| Metric {
        name: name.into(),
        value,
        meaning,
    };
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
    let mut metrics = vec![
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
    ];
    match a.kind.unwrap_or(OutputKind::Values) {
        OutputKind::ClassScores => metrics.push(metric(
            "top1_agreement",
            ratio(a.rows_same, a.rows),
            format!(
                "share of {} rows whose highest-scoring class is the float model's",
                a.rows
            ),
        )),
        OutputKind::Sequence => {
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
    OutputEval {
        name: a.name.clone(),
        shape: a.shape.clone(),
        kind: a.kind.unwrap_or(OutputKind::Values),
        kind_given: a.kind_given,
        metrics,
    }
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
        assert_eq!(
            OutputKind::infer(&[1, 3549, 6], &vec![0.3; 3549 * 6]),
            OutputKind::Detection(DetectionLayout::YoloRows)
        );
        assert_eq!(
            OutputKind::infer(&[1, 22, 2100], &vec![0.3; 22 * 2100]),
            OutputKind::Detection(DetectionLayout::YoloColumns)
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
}
