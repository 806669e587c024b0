//! `ipuflow eval FLOAT QUANT --data DIR`: how far a quantized model's outputs are from its float model's.

use std::path::PathBuf;

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
    #[command(flatten)]
    pub image: ImageArgs,
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
    float_labelled: Option<Labelled>,
    quant_labelled: Option<Labelled>,
}

pub fn main(ctx: &Ctx, a: &Args) -> CliResult {
    util::require_exists(&a.float, "float model")?;
    util::require_exists(&a.quant, "quantized model")?;
    util::require_exists(&a.data, "data folder")?;
    util::load_runtime(ctx)?;
    let opts = SessionOptions {
        intra_op_threads: a.threads,
        // Accuracy of the quantized model as written (what the NPU computes), not of the CPU plan's rewrite.
        fallback_execution: ipuflow::runtime::FallbackExecution::AsWritten,
        ..Default::default()
    };
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
    let fc = collect(&fs, &samples, "float")?;
    let qc = collect(&qs, &samples, "quantized")?;
    let out = Outcome {
        float: a.float.display().to_string(),
        quant: a.quant.display().to_string(),
        samples: samples.len(),
        comparison: metrics::compare(&fc, &qc),
        float_labelled: labelled(&fc, &samples),
        quant_labelled: labelled(&qc, &samples),
    };
    if ctx.json {
        util::print_json(&out);
        return Ok(());
    }
    let c = &out.comparison;
    outln!("float            {}", out.float);
    outln!("quantized        {}", out.quant);
    outln!("samples          {}", out.samples);
    outln!(
        "top-1 agreement  {:.3} ({} of {})",
        c.top1_agreement,
        (c.top1_agreement * c.rows as f64).round(),
        c.rows
    );
    outln!("SQNR             {}", metrics::db(c.sqnr_db));
    if c.sqnr_per_output_db.len() > 1 {
        for (n, v) in &c.sqnr_per_output_db {
            outln!("  {n:<14} {}", metrics::db(*v));
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
