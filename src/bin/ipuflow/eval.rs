//! `ipuflow eval FLOAT QUANT --data DIR`: how far a quantized model's outputs are from its float model's.

use std::path::PathBuf;

use ipuflow::eval::{Evaluator, OutputEval, OutputKind};
use ipuflow::onnx::Model;
use ipuflow::runtime::{Session, SessionOptions};
use serde::Serialize;

use crate::data::{load_samples, ImageArgs, Sample};
use crate::metrics::{self, Collected, Comparison};
use crate::util::{self, cancelled, cancelled_failure, CliResult, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// The float reference model.
    pub float: PathBuf,
    /// The quantized model.
    pub quant: PathBuf,
    /// Evaluation data: a folder of .jpg/.png images (preprocessed as the options say) or of .npy files.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Use at most N samples (in name order).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_samples: Option<u64>,
    /// Also feed every image turned clockwise by 90, 180 and 270 degrees, labelled 0..3: for rotation classifiers
    /// (like the demo's) this also gives each model's labelled accuracy.
    #[arg(long)]
    pub rotate: bool,
    /// Intra-op threads per session (default: ONNX Runtime's choice).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// What an output is, when its shape does not say:
    /// NAME=classes|sequence|sequence-time-major|yolo-rows|yolo-columns|anchor-boxes|anchor-scores|values
    /// (repeatable; sequence is [N, T, C], sequence-time-major [T, N, C]). Decides the agreement metric printed for
    /// it. An anchor head (SSD, BlazeFace) is two outputs, boxes [N, A, 4 + extra] and
    /// scores [N, A, C]: the box metrics are printed under the boxes output.
    #[arg(long, value_name = "NAME=KIND", value_parser = parse_output_kind)]
    pub output_kind: Vec<(String, OutputKind)>,
    #[command(flatten)]
    pub image: ImageArgs,
}

fn parse_output_kind(s: &str) -> Result<(String, OutputKind), String> {
    let (n, k) = s
        .rsplit_once('=')
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| format!("'{s}': expected NAME=KIND"))?;
    Ok((
        n.to_string(),
        OutputKind::parse(k).map_err(|e| e.message().to_string())?,
    ))
}

/// Labelled accuracy: (correct, total).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Labelled {
    pub correct: usize,
    pub total: usize,
}

pub fn labelled(c: &Collected, samples: &[Sample]) -> Option<Labelled> {
    let top = c.top1();
    let labels: Vec<usize> = samples.iter().filter_map(|s| s.label).collect();
    if labels.len() != samples.len() || top.len() != labels.len() {
        return None;
    }
    Some(Labelled {
        correct: top.iter().zip(&labels).filter(|(a, b)| a == b).count(),
        total: labels.len(),
    })
}

/// Runs both models on every sample, feeding the by-kind evaluator and the older per-model collections.
fn compare_by_kind(
    fs: &Session,
    qs: &Session,
    samples: &[Sample],
    kinds: &[(String, OutputKind)],
) -> CliResult<(Collected, Collected, Vec<OutputEval>)> {
    let bar = util::progress_bar(Some(samples.len() as u64), "evaluating");
    let mut ev = Evaluator::new();
    for (n, k) in kinds {
        if !fs.outputs().iter().any(|o| &o.name == n) {
            bar.finish_and_clear();
            return Err(crate::util::Failure::user(
                format!("--output-kind {n}=...: the float model has no output '{n}'"),
                None,
            ));
        }
        ev.set_kind(n, *k);
    }
    let (mut fc, mut qc) = (Collected::new(), Collected::new());
    for s in samples {
        if cancelled() {
            bar.finish_and_clear();
            return Err(cancelled_failure("evaluation"));
        }
        let fo = metrics::run_sample(fs, s)?;
        let qo = metrics::run_sample(qs, s)?;
        for (i, f) in fo.iter().enumerate() {
            let name = &fs.outputs()[i].name;
            let Some(j) = qs.outputs().iter().position(|o| &o.name == name) else {
                continue;
            };
            if let (Some(a), Some(b)) = (metrics::to_f32(f), metrics::to_f32(&qo[j])) {
                ev.add(name, f.shape(), &a, &b)?;
            }
        }
        fc.push(fs, &fo);
        qc.push(qs, &qo);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((fc, qc, ev.finish()))
}

/// Runs `session` on every sample (progress bar on stderr; Ctrl-C stops).
pub fn collect(session: &Session, samples: &[Sample], label: &str) -> CliResult<Collected> {
    let bar = util::progress_bar(Some(samples.len() as u64), label);
    let mut c = Collected::new();
    for s in samples {
        if cancelled() {
            bar.finish_and_clear();
            return Err(cancelled_failure("evaluation"));
        }
        let out = metrics::run_sample(session, s)?;
        c.push(session, &out);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(c)
}

#[derive(Serialize)]
struct Outcome {
    float: String,
    quant: String,
    samples: usize,
    comparison: Comparison,
    /// Per output, by kind (ipuflow::eval): SQNR and cosine always, the agreement its kind has.
    outputs: Vec<OutputEval>,
    float_labelled: Option<Labelled>,
    quant_labelled: Option<Labelled>,
}

pub fn main(ctx: &Ctx, a: &Args) -> CliResult {
    util::require_exists(&a.float, "float model")?;
    util::require_exists(&a.quant, "quantized model")?;
    util::require_exists(&a.data, "data folder")?;
    util::load_runtime(ctx)?;
    let mut opts = SessionOptions {
        intra_op_threads: a.threads,
        // Accuracy of the quantized model as written (what the NPU computes), not of the CPU plan's rewrite.
        fallback_execution: ipuflow::runtime::FallbackExecution::AsWritten,
        ..Default::default()
    };
    // On a CPU where ONNX Runtime's fused U8S8 kernels saturate (x86 without VNNI), both models run without QDQ
    // fusion (the same options for both: a model against itself stays identical), so what is measured is the
    // quantized model's own arithmetic, not that kernel's overflow.
    if ipuflow::runtime::cpu_plan::Host::this().u8s8_saturates {
        opts.graph_optimization_level = ipuflow::runtime::GraphOptimizationLevel::Basic;
        util::stage_line(
            "this CPU has no VNNI (ONNX Runtime's U8S8 kernels saturate): the models run unfused",
        );
    }
    // Checked here, run from the paths (see `run`).
    Model::load_file_lazy(&a.float)?;
    Model::load_file_lazy(&a.quant)?;
    let fs = Session::from_file(&a.float, &opts)
        .map_err(|e| e.context(format!("'{}'", a.float.display())))?;
    let qs = Session::from_file(&a.quant, &opts)
        .map_err(|e| e.context(format!("'{}'", a.quant.display())))?;
    let samples = load_samples(
        &a.data,
        &a.image,
        fs.inputs(),
        a.max_samples.map(|n| n as usize),
        a.rotate,
    )?;
    util::stage_line(&format!("evaluating {} samples", samples.len()));
    let (fc, qc, outputs) = compare_by_kind(&fs, &qs, &samples, &a.output_kind)?;
    let out = Outcome {
        float: a.float.display().to_string(),
        quant: a.quant.display().to_string(),
        samples: samples.len(),
        comparison: metrics::compare(&fc, &qc),
        outputs,
        float_labelled: labelled(&fc, &samples),
        quant_labelled: labelled(&qc, &samples),
    };
    if ctx.json {
        util::print_json(&out);
        return Ok(());
    }
    outln!("float            {}", out.float);
    outln!("quantized        {}", out.quant);
    outln!("samples          {}", out.samples);
    for o in &out.outputs {
        let pair = o
            .paired_with
            .as_ref()
            .map(|p| format!(", paired with {p}"))
            .unwrap_or_default();
        outln!(
            "output {} {} ({:?}{}{pair})",
            o.name,
            util::shape_str(&o.shape),
            o.kind,
            if o.kind_given {
                ", given"
            } else {
                ", inferred"
            }
        );
        if let Some(n) = &o.note {
            outln!("  note                {n}");
        }
        for m in &o.metrics {
            let v = match (m.name.as_str(), m.value) {
                ("sqnr_db", v) => metrics::db(v),
                (_, Some(v)) => format!("{v:.3}"),
                (_, None) => "n/a".into(),
            };
            outln!("  {:<19} {v:<9} {}", m.name, m.meaning);
        }
    }
    if let (Some(f), Some(q)) = (out.float_labelled, out.quant_labelled) {
        outln!(
            "rotation labels  float {}/{}, quantized {}/{}",
            f.correct,
            f.total,
            q.correct,
            q.total
        );
    }
    Ok(())
}
