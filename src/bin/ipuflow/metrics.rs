//! Accuracy and latency numbers: top-1 agreement, SQNR, percentiles.

use std::time::Instant;

use ipuflow::runtime::{ElementType, Session, Tensor, TensorRef};
use serde::Serialize;

use crate::data::Sample;
use crate::util::{CliResult, Failure};

/// A float copy of an output tensor (float, float64, integer types; `None` for others).
pub fn to_f32(t: &Tensor) -> Option<Vec<f32>> {
    Some(match t.element_type() {
        ElementType::Float32 => t.as_slice::<f32>().ok()?.to_vec(),
        ElementType::Float64 => t
            .as_slice::<f64>()
            .ok()?
            .iter()
            .map(|v| *v as f32)
            .collect(),
        ElementType::Int64 => t
            .as_slice::<i64>()
            .ok()?
            .iter()
            .map(|v| *v as f32)
            .collect(),
        ElementType::Int32 => t
            .as_slice::<i32>()
            .ok()?
            .iter()
            .map(|v| *v as f32)
            .collect(),
        ElementType::Uint8 => t.as_bytes().iter().map(|v| *v as f32).collect(),
        ElementType::Int8 => t.as_bytes().iter().map(|v| *v as i8 as f32).collect(),
        _ => return None,
    })
}

/// Index of the largest value of each row (rows along the last axis).
pub fn argmax_rows(values: &[f32], row: usize) -> Vec<usize> {
    if row == 0 {
        return Vec::new();
    }
    values
        .chunks(row)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                )
                .0
        })
        .collect()
}

/// 10·log10(Σ ref² / Σ (ref − q)²) in dB; infinite when equal.
pub fn sqnr_db(reference: &[f32], other: &[f32]) -> f64 {
    let (mut s, mut n) = (0f64, 0f64);
    for (r, q) in reference.iter().zip(other) {
        s += (*r as f64) * (*r as f64);
        n += (*r as f64 - *q as f64).powi(2);
    }
    if n == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (s / n).log10()
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency statistics in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub runs: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn from_ms(mut v: Vec<f64>) -> Latency {
        v.sort_by(|a, b| a.total_cmp(b));
        let mean = if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        };
        Latency {
            runs: v.len(),
            p50_ms: percentile(&v, 50.0),
            p90_ms: percentile(&v, 90.0),
            p99_ms: percentile(&v, 99.0),
            mean_ms: mean,
            min_ms: v.first().copied().unwrap_or(f64::NAN),
            max_ms: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// Runs `session` on one sample and returns its outputs.
pub fn run_sample(session: &Session, s: &Sample) -> CliResult<Vec<Tensor>> {
    let inputs: Vec<(&str, TensorRef<'_>)> = s
        .tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.view()))
        .collect();
    session
        .run(&inputs)
        .map_err(|e| Failure::from(e.context(format!("running {}", s.origin))))
}

/// Times `runs` runs of `session` on `sample` after `warmup` untimed ones; `tick` is called after each timed run
/// and stops the loop when it returns false (Ctrl-C).
pub fn time_runs(
    session: &Session,
    sample: &Sample,
    warmup: usize,
    runs: usize,
    tick: &mut dyn FnMut() -> bool,
) -> CliResult<Latency> {
    let inputs: Vec<(&str, TensorRef<'_>)> = sample
        .tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.view()))
        .collect();
    for _ in 0..warmup {
        session.run(&inputs)?;
    }
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        session.run(&inputs)?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
        if !tick() {
            break;
        }
    }
    Ok(Latency::from_ms(v))
}

/// The outputs of a model over samples: per output, the values of all samples concatenated, and the row length.
pub struct Collected {
    pub names: Vec<String>,
    pub values: Vec<Vec<f32>>,
    pub row: Vec<usize>,
}

impl Collected {
    pub fn new() -> Collected {
        Collected {
            names: Vec::new(),
            values: Vec::new(),
            row: Vec::new(),
        }
    }

    /// Appends one run's outputs (float-convertible ones; the others are skipped).
    pub fn push(&mut self, session: &Session, outputs: &[Tensor]) {
        for (i, t) in outputs.iter().enumerate() {
            let Some(v) = to_f32(t) else { continue };
            let name = session
                .outputs()
                .get(i)
                .map(|o| o.name.clone())
                .unwrap_or_else(|| format!("output {i}"));
            let k = match self.names.iter().position(|n| *n == name) {
                Some(k) => k,
                None => {
                    self.names.push(name);
                    self.values.push(Vec::new());
                    self.row
                        .push(t.shape().last().copied().unwrap_or(1).max(1) as usize);
                    self.names.len() - 1
                }
            };
            self.values[k].extend_from_slice(&v);
        }
    }

    /// Top-1 classes of the first output, one per row.
    pub fn top1(&self) -> Vec<usize> {
        match (self.values.first(), self.row.first()) {
            (Some(v), Some(&r)) => argmax_rows(v, r),
            _ => Vec::new(),
        }
    }
}

/// How one model's outputs compare with the reference's.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Rows (samples × batch) compared for top-1.
    pub rows: usize,
    /// Share of rows whose top-1 class equals the reference's.
    pub top1_agreement: f64,
    /// SQNR of the first output, in dB (`null` in JSON when identical).
    pub sqnr_db: Option<f64>,
    /// SQNR of each output.
    pub sqnr_per_output_db: Vec<(String, Option<f64>)>,
}

fn finite(v: f64) -> Option<f64> {
    if v.is_finite() {
        Some(v)
    } else {
        None
    }
}

pub fn compare(reference: &Collected, other: &Collected) -> Comparison {
    let (a, b) = (reference.top1(), other.top1());
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    let per: Vec<(String, Option<f64>)> = reference
        .names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let j = other.names.iter().position(|m| m == n)?;
            Some((
                n.clone(),
                finite(sqnr_db(&reference.values[i], &other.values[j])),
            ))
        })
        .collect();
    Comparison {
        rows: a.len(),
        top1_agreement: if a.is_empty() {
            0.0
        } else {
            same as f64 / a.len() as f64
        },
        sqnr_db: per.first().and_then(|p| p.1),
        sqnr_per_output_db: per,
    }
}

/// "∞" for identical outputs.
pub fn db(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("{v:.1} dB"),
        None => "inf".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(argmax_rows(&[0.0, 2.0, 1.0, 5.0, 0.0, 0.0], 3), vec![1, 0]);
        assert!(sqnr_db(&[1.0, 2.0], &[1.0, 2.0]).is_infinite());
        assert!((sqnr_db(&[1.0, 0.0], &[0.9, 0.0]) - 20.0).abs() < 1e-4);
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 90.0), 9.0);
        assert_eq!(percentile(&v, 99.0), 10.0);
    }
}
