//! `ipuflow quantize MODEL -o OUT --preset P --calib DIR`: post-training quantization to a QDQ model.
//!
//! Ctrl-C sets the quantizer's cancel flag: it stops at the next calibration batch and nothing is written (the
//! output is saved atomically, after the quantizer returns, and only if it was not cancelled).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::ProgressBar;
use ipuflow::onnx::fs::{check_target, refuse_same_file, write_atomic};
use ipuflow::onnx::{Model, SaveOptions};
use ipuflow::quant::data::CalibrationSource;
use ipuflow::quant::qdq::exclude;
use ipuflow::quant::{
    quantize, BiasType, CalibMethod, ExcludeSubgraph, Hooks, Preset, Progress, QuantConfig,
    QuantReport, Stage, WeightRange,
};
use serde::Serialize;

use crate::data::{calibration_source, ImageArgs};
use crate::util::{
    self, cancel_token, cancelled, cancelled_failure, critical, CliResult, Ctx, Failure,
};

/// `--preset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PresetArg {
    /// Symmetric INT8, power-of-two scales, per-tensor weights: the NPU CNN recipe (AMD Quark's XINT8).
    Xint8,
    /// INT8 activations, symmetric INT8 weights, float scales.
    A8w8,
    /// INT16 activations, INT8 weights.
    A16w8,
    /// For ONNX Runtime's CPU kernels: U8 activations, per-channel S8 weights, fusable QDQ.
    Cpu,
}

impl PresetArg {
    pub fn preset(self) -> Preset {
        match self {
            PresetArg::Xint8 => Preset::Xint8,
            PresetArg::A8w8 => Preset::A8W8,
            PresetArg::A16w8 => Preset::A16W8,
            PresetArg::Cpu => Preset::Cpu,
        }
    }
}

/// `--method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// The observed minimum and maximum of each activation.
    Minmax,
    /// Clip magnitudes at a percentile of |x| (--percentile, default 99.999).
    Percentile,
    /// TensorRT's entropy calibration (minimum KL divergence).
    Entropy,
    /// The range (or power-of-two shift) minimising the expected quantization error on the preset's grid.
    Minmse,
    /// The extremes, power-of-two scales rounded up so nothing clips.
    Nonoverflow,
}

/// `--bias`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BiasArg {
    Int8,
    Int32,
}

/// `--weight-range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightRangeArg {
    /// Each weight's (per-channel) minimum and maximum: nothing is clipped.
    Minmax,
    /// The clipping range (power-of-two shift) minimising the weight's own error (per-tensor or power-of-two).
    Minmse,
}

/// The value of a recipe switch (`--equalize on|off`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn is_on(self) -> bool {
        self == OnOff::On
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The float ONNX model.
    pub model: PathBuf,
    /// Where to write the quantized model (atomically: never a partial file).
    #[arg(short, long, value_name = "OUT.onnx")]
    pub output: PathBuf,
    /// The quantization recipe.
    #[arg(long, value_enum, ignore_case = true)]
    pub preset: PresetArg,
    /// Calibration data: a folder of .jpg/.png images (preprocessed as the options below say) or of .npy files.
    #[arg(long, value_name = "DIR")]
    pub calib: PathBuf,
    /// Use at most N calibration samples (in name order).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_samples: Option<u64>,
    /// How activation ranges are computed (default: the preset's).
    #[arg(long, value_enum, ignore_case = true)]
    pub method: Option<MethodArg>,
    /// Calibration cache: reused when it matches the model, settings and data (any method or preset), written
    /// after calibrating when it does not exist, refused when stale (delete it to recalibrate).
    #[arg(long, value_name = "FILE")]
    pub calib_cache: Option<PathBuf>,
    /// With --method percentile: the percentile of |x| kept unclipped, in (0, 100].
    #[arg(long, value_name = "P")]
    pub percentile: Option<f32>,
    /// With minmax: average the per-batch extremes exponentially with this constant (0..1) instead of keeping the
    /// global ones (less sensitive to outlier images).
    #[arg(long, value_name = "C")]
    pub moving_average: Option<f32>,
    /// Bias type: int8 with a power-of-two scale of its own (AMD's XINT8 format), or int32 at the accumulator
    /// scale (input × weight; exact, what ONNX Runtime's CPU kernels fuse). Default: the preset's (XINT8: int8,
    /// others: int32).
    #[arg(long, value_enum, ignore_case = true)]
    pub bias: Option<BiasArg>,
    /// How weight ranges are chosen. Default: the preset's (XINT8: minmse, others: minmax).
    #[arg(long, value_enum, ignore_case = true)]
    pub weight_range: Option<WeightRangeArg>,
    /// Cross-layer equalization of Conv chains on the float model before calibration. Default: on (every preset).
    #[arg(long, value_enum, ignore_case = true, value_name = "on|off")]
    pub equalize: Option<OnOff>,
    /// With equalization: replace Clip(0, 6) (Relu6) between two equalizable convolutions by Relu so the chain
    /// is equalized (changes the float model: values above 6 are no longer clipped). Default: off.
    #[arg(long)]
    pub replace_relu6: bool,
    /// Bias correction: subtract each Conv/Gemm's mean output error from weight quantization, measured on the
    /// calibration data. Default: on (every preset).
    #[arg(long, value_enum, ignore_case = true, value_name = "on|off")]
    pub bias_correction: Option<OnOff>,
    /// Learned weight rounding (second-order error compensation on the calibration data; needs 16 samples or
    /// more). Default: on (every preset).
    #[arg(long, value_enum, ignore_case = true, value_name = "on|off")]
    pub learned_rounding: Option<OnOff>,
    /// Learned rounding also tries finer per-tensor weight scales and keeps the grid with the lowest output error.
    /// Default: off.
    #[arg(long, value_enum, ignore_case = true, value_name = "on|off")]
    pub rounding_scale_search: Option<OnOff>,
    /// Learned rounding visits each weight row's inputs by decreasing second moment (GPTQ's act-order). Default: off.
    #[arg(long, value_enum, ignore_case = true, value_name = "on|off")]
    pub rounding_act_order: Option<OnOff>,
    /// Output-aware activations: a Concat at the outputs joining very different ranges (boxes in pixels beside
    /// [0, 1] scores) and small score outputs are left float on the CPU, with the reason in the report. Default: on
    /// (every preset).
    #[arg(long, value_enum, ignore_case = true, value_name = "on|off")]
    pub output_aware: Option<OnOff>,
    /// AMD's NPU-mode rescales (a Mul after AveragePool/GlobalAveragePool/ReduceMean/HardSigmoid, LeakyRelu's
    /// alpha in steps of 1/256), so the CPU computes what the NPU does. Default: on for XINT8, off otherwise.
    #[arg(long, value_enum, ignore_case = true, value_name = "on|off")]
    pub npu_rescale: Option<OnOff>,
    /// Quark's ConvertSigmoidToHardSigmoid: each quantized Sigmoid becomes HardSigmoid(1/6, 0.5), which the NPU
    /// places (Sigmoid it does not). Changes the model's function. Default: off.
    #[arg(long)]
    pub sigmoid_to_hard_sigmoid: bool,
    /// Leave nodes in float: a node name, an op type (e.g. Softmax), a node-name glob pattern (`*` any run, `?`
    /// one character: 'head/*'), or a subgraph START..END (every node on a path from the start node(s) to the end
    /// node(s), several names separated by commas: 'decode_0,decode_1..nms'). Repeatable.
    #[arg(long, value_name = "NODE|OPTYPE|PATTERN|START..END")]
    pub exclude: Vec<String>,
    /// Fix the inputs' dynamic batch dimension to N first (the NPU needs fixed shapes; Ryzen AI runs batch 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub batch: Option<i64>,
    /// Write the per-node and per-tensor quantization report (JSON) here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub image: ImageArgs,

    // Sensitivity and mixed precision (issue 13 items 2 and 3).
    /// Measure each quantized node's sensitivity (output SQNR gained by leaving it alone float, on the held
    /// calibration samples), write it to the report and print the worst 5. Implied by a target below.
    #[arg(long)]
    pub sensitivity: bool,
    /// Mixed precision: raise the most sensitive nodes (16-bit activations where the NPU table allows, then
    /// float) until the worst output's SQNR against the float model on the calibration data is at least DB.
    #[arg(long, value_name = "DB")]
    pub target_sqnr: Option<f32>,
    /// Mixed precision: ... until the top-1 agreement with the float model drops by at most D (0 to 1).
    #[arg(long, value_name = "D")]
    pub max_drop: Option<f32>,
    /// Mixed precision: refuse any raise that leaves the pre-flight's predicted NPU coverage (target X2, share
    /// of non-Q/DQ nodes, 0 to 1) below F. A prediction, unlike `run --min-npu-fraction`.
    #[arg(long, value_name = "F")]
    pub min_npu_coverage: Option<f32>,

    // Shapes (issue 11 item 3): kept apart from the flags above.
    /// Fix a dynamic input's shape, e.g. images=1,3,640,640 (every dimension given; repeatable, one per input).
    #[arg(long, value_name = "NAME=D0,D1,...", value_parser = crate::data::parse_input_shape)]
    pub input_shape: Vec<ipuflow::onnx::InputShape>,
}

/// The outcome, as printed with `--json`.
#[derive(Serialize)]
pub struct Outcome {
    pub model: String,
    pub output: String,
    pub preset: String,
    pub calibration: String,
    pub seconds: f64,
    pub nodes_quantized: usize,
    pub nodes_float: usize,
    pub excluded_nodes: Vec<String>,
    pub excluded_op_types: Vec<String>,
    pub excluded_patterns: Vec<String>,
    pub excluded_subgraphs: Vec<String>,
    pub recipe: Recipe,
    pub report: Option<String>,
    pub output_bytes: u64,
    pub notes: Vec<String>,
    /// The 5 most sensitive nodes (with --sensitivity or a mixed-precision target).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sensitive_nodes: Vec<String>,
    /// The mixed-precision result, one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed_precision: Option<String>,
}

/// The recipe switches as used (the preset's defaults with the flags applied).
#[derive(Serialize)]
pub struct Recipe {
    pub bias_type: String,
    pub weight_range: String,
    pub equalize: bool,
    pub replace_relu6: bool,
    pub bias_correction: bool,
    pub learned_rounding: bool,
    pub output_aware: bool,
}

impl Recipe {
    fn of(c: &QuantConfig) -> Recipe {
        Recipe {
            bias_type: c.bias_type.name().to_string(),
            weight_range: match c.weight_range {
                WeightRange::MinMax => "minmax",
                WeightRange::MinMse => "minmse",
            }
            .to_string(),
            equalize: c.equalize,
            replace_relu6: c.replace_clip6_relu,
            bias_correction: c.bias_correction,
            learned_rounding: c.learned_rounding,
            output_aware: c.output_aware,
        }
    }

    /// One line: `bias int8, weight range minmse, equalize on, ...`.
    fn line(&self) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "bias {}, weight range {}, equalize {}, replace relu6 {}, bias correction {}, learned rounding {}, \
             output-aware {}",
            self.bias_type,
            self.weight_range,
            on(self.equalize),
            on(self.replace_relu6),
            on(self.bias_correction),
            on(self.learned_rounding),
            on(self.output_aware)
        )
    }
}

/// `--exclude` values sorted by kind.
#[derive(Default)]
pub struct Excludes {
    pub nodes: Vec<String>,
    pub op_types: Vec<String>,
    pub patterns: Vec<String>,
    pub subgraphs: Vec<ExcludeSubgraph>,
}

/// Sorts `--exclude` values into subgraphs (`START..END`), glob patterns (`*`, `?`), node names and op types of
/// `model`; a pattern or subgraph that names nothing, and a value that is neither a node nor an op type, is an
/// error naming it.
pub fn resolve_excludes(model: &Model, values: &[String]) -> CliResult<Excludes> {
    let mut out = Excludes::default();
    let mut plain = Vec::new();
    for v in values {
        if v.contains("..") {
            out.subgraphs.push(
                ExcludeSubgraph::parse(v)
                    .map_err(|e| Failure::user(format!("--exclude: {}", e.message()), None))?,
            );
        } else if exclude::is_pattern(v) {
            out.patterns.push(v.clone());
        } else {
            plain.push(v.clone());
        }
    }
    if let Some(g) = model.proto().graph.as_ref() {
        exclude::resolve(g, &out.patterns, &out.subgraphs).map_err(|e| {
            Failure::user(
                format!("--exclude: {}", e.message()),
                Some("`ipuflow check MODEL` lists every node with its name and op type"),
            )
        })?;
    }
    let (nodes, op_types) = resolve_names(model, &plain)?;
    out.nodes = nodes;
    out.op_types = op_types;
    Ok(out)
}

/// Splits plain `--exclude` values into node names and op types of `model`; a value that is neither is an error.
fn resolve_names(model: &Model, values: &[String]) -> CliResult<(Vec<String>, Vec<String>)> {
    let graph = model.proto().graph.as_ref();
    let nodes: BTreeSet<&str> = graph
        .map(|g| g.node.iter().filter_map(|n| n.name.as_deref()).collect())
        .unwrap_or_default();
    let ops: BTreeSet<&str> = graph
        .map(|g| g.node.iter().filter_map(|n| n.op_type.as_deref()).collect())
        .unwrap_or_default();
    let (mut en, mut eo) = (Vec::new(), Vec::new());
    for v in values {
        let (is_node, is_op) = (nodes.contains(v.as_str()), ops.contains(v.as_str()));
        if is_node {
            en.push(v.clone());
        }
        if is_op {
            eo.push(v.clone());
        }
        if !is_node && !is_op {
            let some: Vec<&str> = ops.iter().copied().collect();
            return Err(Failure::user(
                format!("--exclude '{v}': the model has no node and no op type of that name (op types: {})", some.join(", ")),
                Some("`ipuflow check MODEL` lists every node with its name and op type"),
            ));
        }
    }
    Ok((en, eo))
}

/// Sets the dynamic first dimension of the graph inputs to `n`, and every dimension elsewhere (outputs, value
/// infos) named like one of them. Returns the names of the inputs changed.
pub fn fix_batch(model: &mut Model, n: i64) -> Vec<String> {
    use ipuflow::onnx::proto::tensor_shape_proto::dimension::Value as D;
    use ipuflow::onnx::proto::{type_proto, ValueInfoProto};
    fn dims(
        v: &mut ValueInfoProto,
    ) -> Option<&mut Vec<ipuflow::onnx::proto::tensor_shape_proto::Dimension>> {
        match v.r#type.as_mut()?.value.as_mut()? {
            type_proto::Value::TensorType(t) => t.shape.as_mut().map(|s| &mut s.dim),
            _ => None,
        }
    }
    let Some(g) = model.proto_mut().graph.as_mut() else {
        return Vec::new();
    };
    let inits: BTreeSet<String> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.clone())
        .collect();
    let mut params = BTreeSet::new();
    let mut changed = Vec::new();
    for v in g
        .input
        .iter_mut()
        .filter(|v| !v.name.as_ref().is_some_and(|n| inits.contains(n)))
    {
        let name = v.name.clone().unwrap_or_default();
        if let Some(first) = dims(v).and_then(|d| d.first_mut()) {
            match &first.value {
                Some(D::DimValue(_)) => continue,
                Some(D::DimParam(p)) => {
                    params.insert(p.clone());
                }
                None => {}
            }
            first.value = Some(D::DimValue(n));
            changed.push(name);
        }
    }
    for v in g.output.iter_mut().chain(g.value_info.iter_mut()) {
        for d in dims(v).into_iter().flatten() {
            if matches!(&d.value, Some(D::DimParam(p)) if params.contains(p)) {
                d.value = Some(D::DimValue(n));
            }
        }
    }
    changed
}

/// Quantizes with progress bars on stderr and the Ctrl-C cancel flag; returns the model and its report.
pub fn quantize_with_progress(
    model: &Model,
    config: &QuantConfig,
    data: &mut dyn CalibrationSource,
    label: &str,
) -> CliResult<(Model, QuantReport)> {
    let mut bar: Option<ProgressBar> = None;
    let mut progress = |p: &Progress| {
        let start = p.done == 0;
        match (p.stage, start) {
            (Stage::Calibrate, true) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                util::stage_line(&format!(
                    "{label}: calibrating on {} samples",
                    p.total.map_or("?".into(), |t| t.to_string())
                ));
                bar = Some(util::progress_bar(p.total.map(|t| t as u64), "calibrating"));
            }
            (Stage::Calibrate, false) => {
                if let Some(b) = &bar {
                    b.set_position(p.done as u64);
                }
            }
            (stage, true) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                let what = match stage {
                    Stage::Prepare => "preparing",
                    Stage::Quantize => "writing QDQ",
                    Stage::Verify => "verifying",
                    Stage::Calibrate => "calibrating",
                };
                util::stage_line(&format!("{label}: {what}"));
                bar = Some(util::progress_bar(None, what));
            }
            (_, false) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
        }
        !cancelled()
    };
    let r = quantize(
        model,
        config,
        data,
        Hooks {
            progress: Some(&mut progress),
            cancel: Some(cancel_token()),
        },
    );
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    match r {
        Err(e) if e.kind() == ipuflow::ErrorKind::Cancelled || cancelled() => {
            Err(cancelled_failure("quantization"))
        }
        Err(e) => Err(e.into()),
        Ok(v) => Ok(v),
    }
}

pub fn main(ctx: &Ctx, a: &Args) -> CliResult {
    let t0 = Instant::now();
    // Option combinations first: a usage error (exit 2) before any file is looked at.
    let mut config = config_from_args(a)?;
    util::require_exists(&a.model, "model")?;
    util::require_exists(&a.calib, "calibration folder")?;
    util::load_runtime(ctx)?;
    let mut model = Model::load_file(&a.model)?;
    check_output_paths(a, &model)?;
    let ex = apply_model_options(a, &mut model, &mut config)?;
    let (mut data, described) =
        calibration_source(&a.calib, &a.image, a.max_samples.map(|n| n as usize))?;
    let (quantized, report) =
        quantize_with_progress(&model, &config, data.as_mut(), config.preset.name())?;
    if cancelled() {
        return Err(cancelled_failure("quantization"));
    }
    critical(|| quantized.save_cancellable(&a.output, &SaveOptions::default(), &cancelled))?;
    if let Some(r) = &a.report {
        critical(|| write_atomic(r, report.to_json().as_bytes()))?;
    }
    let (nq, nf) = report.counts();
    let out = Outcome {
        model: a.model.display().to_string(),
        output: a.output.display().to_string(),
        preset: config.preset.name().to_string(),
        calibration: described,
        seconds: t0.elapsed().as_secs_f64(),
        nodes_quantized: nq,
        nodes_float: nf,
        excluded_nodes: ex.nodes,
        excluded_op_types: ex.op_types,
        excluded_patterns: ex.patterns,
        excluded_subgraphs: ex.subgraphs.iter().map(|s| s.to_string()).collect(),
        recipe: Recipe::of(&config),
        report: a.report.as_ref().map(|p| p.display().to_string()),
        output_bytes: std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0),
        notes: report.notes.clone(),
        sensitive_nodes: report
            .sensitivity
            .as_ref()
            .map(|s| s.worst(5))
            .unwrap_or_default(),
        mixed_precision: report.mixed_precision.as_ref().map(mixed_line),
    };
    print_outcome(ctx, &out);
    Ok(())
}

/// The preset's configuration with the calibration and recipe flags applied; a contradictory combination is a
/// usage error.
fn config_from_args(a: &Args) -> CliResult<QuantConfig> {
    let mut config = QuantConfig::preset(a.preset.preset());
    config.method = method_from_args(a, config.method)?;
    config.calib_cache = a.calib_cache.clone();
    if let Some(b) = a.bias {
        config.bias_type = match b {
            BiasArg::Int8 => BiasType::Int8,
            BiasArg::Int32 => BiasType::Int32,
        };
    }
    if let Some(w) = a.weight_range {
        config.weight_range = match w {
            WeightRangeArg::Minmax => WeightRange::MinMax,
            WeightRangeArg::Minmse => WeightRange::MinMse,
        };
    }
    if let Some(v) = a.equalize {
        config.equalize = v.is_on();
    }
    if a.replace_relu6 {
        if !config.equalize {
            return Err(Failure::usage(
                "--replace-relu6 goes with equalization (not with --equalize off)",
            ));
        }
        config.replace_clip6_relu = true;
    }
    if let Some(v) = a.bias_correction {
        config.bias_correction = v.is_on();
    }
    if let Some(v) = a.learned_rounding {
        config.learned_rounding = v.is_on();
    }
    if let Some(v) = a.rounding_scale_search {
        config.rounding.scale_search = v.is_on();
    }
    if let Some(v) = a.rounding_act_order {
        config.rounding.act_order = v.is_on();
    }
    if let Some(v) = a.output_aware {
        config.output_aware = v.is_on();
    }
    if let Some(v) = a.npu_rescale {
        config.npu_rescale = v.is_on();
    }
    config.sigmoid_to_hard_sigmoid |= a.sigmoid_to_hard_sigmoid;
    config.mixed = ipuflow::quant::MixedPrecision {
        sensitivity: a.sensitivity,
        target_sqnr_db: a.target_sqnr,
        max_agreement_drop: a.max_drop,
        min_npu_coverage: a.min_npu_coverage,
        host_metric: None,
    };
    if config.mixed.min_npu_coverage.is_some() && !config.mixed.has_target() {
        return Err(Failure::usage(
            "--min-npu-coverage goes with --target-sqnr or --max-drop",
        ));
    }
    // Only the flags above are usage errors; the rest of `validate` runs in the library (exit 1, as before).
    config
        .validate_mixed()
        .map_err(|e| Failure::usage(e.message().to_string()))?;
    Ok(config)
}

/// `--method`, `--percentile` and `--moving-average` together (`preset` is the preset's method).
fn method_from_args(a: &Args, preset: CalibMethod) -> CliResult<CalibMethod> {
    let percentile = a.percentile.unwrap_or(CalibMethod::DEFAULT_PERCENTILE);
    let name = |m: MethodArg| {
        clap::ValueEnum::to_possible_value(&m)
            .expect("no skipped variants")
            .get_name()
            .to_string()
    };
    let method = match (a.method, a.moving_average) {
        (Some(MethodArg::Minmax) | None, Some(c)) => CalibMethod::MinMax {
            moving_average: Some(c),
        },
        (Some(m), None) => CalibMethod::parse(&name(m), percentile)?,
        (None, None) => preset,
        (Some(m), Some(_)) => {
            return Err(Failure::usage(format!(
                "--moving-average goes with --method minmax, not {}",
                name(m)
            )))
        }
    };
    if a.percentile.is_some() && !matches!(method, CalibMethod::Percentile { .. }) {
        return Err(Failure::usage("--percentile goes with --method percentile"));
    }
    Ok(method)
}

/// Refuses an output or report that is the model (or its data file) or cannot be written, before calibrating.
fn check_output_paths(a: &Args, model: &Model) -> CliResult {
    // By file identity, not by name: `./m.onnx`, a symlink or a hard link to the model are the model too.
    let output_what = format!("--output '{}'", a.output.display());
    let inputs = util::model_files(model);
    refuse_same_file(&a.output, &output_what, &inputs)?;
    refuse_same_file(&util::auto_data_file(&a.output), &output_what, &inputs)?;
    // A device, FIFO or directory as an output fails now, not after calibrating.
    check_target(&a.output)?;
    if let Some(r) = &a.report {
        check_target(r)?;
        let mut protected = inputs.clone();
        protected.push((&a.output, "--output"));
        refuse_same_file(r, &format!("--report '{}'", r.display()), &protected)?;
    }
    Ok(())
}

/// `--batch`, `--input-shape` and `--exclude`, checked against the model: into the model and the config.
fn apply_model_options(
    a: &Args,
    model: &mut Model,
    config: &mut QuantConfig,
) -> CliResult<Excludes> {
    if let Some(n) = a.batch {
        fix_batch(model, n);
    }
    // Checked against the model now (a wrong name or rank is a user error before calibration starts).
    ipuflow::onnx::apply_input_shapes(&mut model.proto().clone(), &a.input_shape)?;
    config.input_shapes = a.input_shape.clone();
    let ex = resolve_excludes(model, &a.exclude)?;
    config.exclude_nodes = ex.nodes.clone();
    config.exclude_op_types = ex.op_types.clone();
    config.exclude_patterns = ex.patterns.clone();
    config.exclude_subgraphs = ex.subgraphs.clone();
    Ok(ex)
}

fn print_outcome(ctx: &Ctx, out: &Outcome) {
    if ctx.json {
        util::print_json(out);
        return;
    }
    outln!(
        "{} -> {} ({}, {:.2} MB)",
        out.model,
        out.output,
        out.preset,
        out.output_bytes as f64 / 1e6
    );
    outln!("calibrated on {}", out.calibration);
    outln!("recipe: {}", out.recipe.line());
    outln!(
        "{} nodes quantized, {} left in float, in {:.1} s",
        out.nodes_quantized,
        out.nodes_float,
        out.seconds
    );
    if !out.excluded_nodes.is_empty() || !out.excluded_op_types.is_empty() {
        outln!(
            "excluded: nodes {:?}, op types {:?}",
            out.excluded_nodes,
            out.excluded_op_types
        );
    }
    for n in &out.notes {
        outln!("note: {n}");
    }
    if !out.sensitive_nodes.is_empty() {
        outln!("most sensitive nodes:");
        for n in &out.sensitive_nodes {
            outln!("  {n}");
        }
    }
    if let Some(m) = &out.mixed_precision {
        outln!("mixed precision: {m}");
    }
    if let Some(r) = &out.report {
        outln!("report: {r}");
    }
}

/// The mixed-precision result in one line: met or not, SQNR and coverage before and after, the kept steps.
fn mixed_line(m: &ipuflow::quant::mixed::MixedReport) -> String {
    let db = |s: &Option<ipuflow::quant::sensitivity::Score>| s.map_or(f64::NAN, |s| s.sqnr_db);
    let kept = m.steps.iter().filter(|s| s.kept).count();
    format!(
        "target {} on {} calibration samples: SQNR {:.2} -> {:.2} dB, predicted NPU coverage ({}) {:.3} -> {:.3}, \
         {kept} of {} steps kept",
        if m.met { "met" } else { "NOT met (best effort)" },
        m.samples,
        db(&m.baseline),
        db(&m.result),
        m.npu_target,
        m.baseline_npu_coverage,
        m.result_npu_coverage,
        m.steps.len()
    )
}
