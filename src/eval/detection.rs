//! Candidate boxes of detection outputs and their matching: YOLO-style heads (one output, greedy matching by IoU
//! within a class) and anchor heads (SSD, BlazeFace: a box output and a score output, matched by anchor index).

use super::{DetectionLayout, DETECTION_IOU, DETECTION_SCORE};

/// One candidate box: corners and class.
#[derive(Clone, Copy, Debug)]
pub(super) struct Det {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    class: usize,
}

impl Det {
    fn centred(cx: f32, cy: f32, w: f32, h: f32, class: usize) -> Det {
        Det {
            x0: cx - w / 2.0,
            y0: cy - h / 2.0,
            x1: cx + w / 2.0,
            y1: cy + h / 2.0,
            class,
        }
    }
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

/// The candidates of one sample of a YOLO-style output ([N, boxes, 5 + classes] rows or [N, 4 + classes,
/// anchors] columns) above [`DETECTION_SCORE`].
pub(super) fn yolo_detections(layout: DetectionLayout, shape: &[i64], v: &[f32]) -> Vec<Det> {
    let (a, b) = (shape[1] as usize, shape[2] as usize);
    let at = |box_i: usize, field: usize| match layout {
        DetectionLayout::YoloColumns => v[field * b + box_i],
        _ => v[box_i * b + field],
    };
    let (n_boxes, fields, first_class) = match layout {
        DetectionLayout::YoloColumns => (b, a, 4),
        _ => (a, b, 5),
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
            DetectionLayout::YoloColumns => best,
            _ => at(i, 4) * best,
        };
        if score >= DETECTION_SCORE {
            out.push(Det::centred(at(i, 0), at(i, 1), at(i, 2), at(i, 3), class));
        }
    }
    out
}

/// Greedy one-to-one matching by IoU within a class: how many of `a` find a partner in `b`.
pub(super) fn matched(a: &[Det], b: &[Det]) -> usize {
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

/// How an anchor head's scores read: logits (a sigmoid gives the score) or probabilities, and whether class 0 is
/// the background of a softmax over classes (then it never counts as a detection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ScoreForm {
    pub logits: bool,
    pub background: bool,
}

impl ScoreForm {
    /// Decided once from the reference model's first sample of the score output ([anchors × classes] values).
    pub fn of(reference: &[f32], classes: usize) -> ScoreForm {
        let logits = reference.iter().any(|v| !(0.0..=1.0).contains(v));
        ScoreForm {
            logits,
            background: !logits && classes > 1 && super::rows_are_distributions(reference, classes),
        }
    }
}

/// Per anchor: `Some(box)` when its best class scores at least [`DETECTION_SCORE`]. `boxes` holds `box_fields`
/// values per anchor (cx, cy, w, h first, as the model writes them), `scores` `classes` values per anchor.
pub(super) fn anchor_detections(
    boxes: &[f32],
    box_fields: usize,
    scores: &[f32],
    classes: usize,
    form: ScoreForm,
) -> Vec<Option<Det>> {
    let first = usize::from(form.background);
    boxes
        .chunks(box_fields)
        .zip(scores.chunks(classes))
        .map(|(b, s)| {
            let (class, best) = s[first..]
                .iter()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |m, (c, v)| if *v > m.1 { (c, *v) } else { m },
                );
            let score = if form.logits {
                1.0 / (1.0 + (-best).exp())
            } else {
                best
            };
            (score >= DETECTION_SCORE).then(|| Det::centred(b[0], b[1], b[2], b[3], class + first))
        })
        .collect()
}

/// Anchors detected by `a`, by `b`, and by both with the same class and IoU >= [`DETECTION_IOU`].
pub(super) fn anchor_matches(a: &[Option<Det>], b: &[Option<Det>]) -> (usize, usize, usize) {
    let mut n = (0, 0, 0);
    for (x, y) in a.iter().zip(b) {
        n.0 += usize::from(x.is_some());
        n.1 += usize::from(y.is_some());
        if let (Some(x), Some(y)) = (x, y) {
            n.2 += usize::from(x.class == y.class && iou(x, y) >= DETECTION_IOU);
        }
    }
    n
}
