//! `ipuflow run MODEL --device cpu|npu|auto`: create a session, say where it runs (and why not on the NPU), time
//! it and summarize its outputs.

use std::path::PathBuf;
use std::time::Instant;

use ipuflow::ipu::preflight::NodeCount;
use ipuflow::ipu::report::EpReport;
use ipuflow::onnx::Model;
use ipuflow::quant::data::OwnedTensor;
use ipuflow::runtime::{
    DeviceUsed, ElementType, FallbackExecution, FallbackPolicy, Session, SessionDevice,
    SessionOptions, Tensor, TensorInfo,
};
use serde::Serialize;

use crate::check::TargetArg;
use crate::data::{parse_input_spec, read_inputs, Sample};
use crate::metrics::{self, Latency};
use crate::util::{self, cancelled, cancelled_failure, CliResult, Ctx, Failure};

/// `--device`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// The Ryzen AI NPU (VitisAI EP); strict by default: fails when the NPU cannot be used. `ipu` is the 0.1
    /// spelling, kept as an alias.
    #[value(alias = "ipu")]
    Npu,
    /// The NPU when one is found and works, else the CPU (with the reason).
    Auto,
}

/// `--fallback-execution`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FallbackExecutionArg {
    /// A quantized model on the CPU runs through the CPU plan: integer kernels for 8-bit QDQ, float activations
    /// for 16-bit QDQ.
    Fast,
    /// Only exact rewrites (within 1 LSB of the model as written); 16-bit QDQ runs as written.
    Faithful,
    /// The model as written, no rewrite.
    AsWritten,
}

/// `--policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// Fail when the NPU cannot be used (default for --device npu).
    Strict,
    /// Run on the CPU and say why (default for --device auto).
    Prefer,
}

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model.
    pub model: PathBuf,
    /// Where to run.
    #[arg(long, value_enum, ignore_case = true, default_value = "auto")]
    pub device: DeviceArg,
    /// What happens when the NPU cannot be used.
    #[arg(long, value_enum, ignore_case = true)]
    pub policy: Option<PolicyArg>,
    /// The NPU compile target (default: the detected NPU's).
    #[arg(long, value_enum, ignore_case = true)]
    pub target: Option<TargetArg>,
    /// Fail (strict) or warn (prefer) unless at least this share of the nodes runs on the NPU (0..1).
    #[arg(long, value_name = "FRACTION")]
    pub min_npu_fraction: Option<f64>,
    /// Input data: FILE.npy for a single-input model, NAME=FILE.npy per input (repeatable). Default: generated
    /// values (uniform in [-1, 1)) of the model's input shapes; a dynamic dimension needs --input-shape.
    #[arg(long, value_name = "[NAME=]FILE.npy", value_parser = parse_input_spec)]
    pub input: Vec<(Option<String>, PathBuf)>,
    /// Fix a dynamic input's shape, e.g. images=1,3,640,640 (repeatable, one per input): the session is created
    /// for it, and generated inputs have it.
    #[arg(long, value_name = "NAME=D0,D1,...", value_parser = crate::data::parse_input_shape)]
    pub input_shape: Vec<ipuflow::onnx::InputShape>,
    /// Timed runs, 1 to 1 000 000.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=ipuflow::limits::MAX_TIMED_RUNS))]
    pub repeat: u64,
    /// Untimed runs first.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Intra-op threads, 1 to 1024 (default: ONNX Runtime's choice).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=ipuflow::limits::MAX_THREADS as i64))]
    pub threads: Option<u32>,
    /// VitisAI compile-cache folder (default: the EP's); the CPU plan of a quantized model is kept there too.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// How a quantized model runs when the session is on the CPU.
    #[arg(long, value_enum, ignore_case = true, default_value = "fast")]
    pub fallback_execution: FallbackExecutionArg,
}

#[derive(Serialize)]
pub struct OutputSummary {
    pub name: String,
    pub element_type: String,
    pub shape: Vec<i64>,
    pub min: Option<f32>,
    pub max: Option<f32>,
    pub mean: Option<f64>,
    /// For a [1, C] or [C] output: the 5 largest (index, value).
    pub top5: Vec<(usize, f32)>,
}

#[derive(Serialize)]
pub struct SessionSummary {
    pub requested: String,
    pub device_used: String,
    pub fallback_reason: String,
    pub cache_key: Option<String>,
    /// "N of M nodes (p%) on the NPU" or why the placement is unknown.
    pub placement: String,
    /// The EP's log-style line: "No. of Operators : NPU n CPU m | No. of Subgraphs : ...".
    pub operators: String,
    pub npu_nodes: Option<usize>,
    pub total_nodes: Option<usize>,
    /// What `total_nodes` counts (ipuflow's one definition; the graph is ONNX Runtime's).
    pub node_count: Option<NodeCount>,
    /// Maximal connected groups of nodes on one device (the definition the pre-flight counts for the NPU limit).
    pub subgraphs: Option<usize>,
    pub warnings: Vec<String>,
    pub create_seconds: f64,
    /// The CPU plan of a session on the CPU (see `ipuflow::runtime::cpu_plan`).
    pub cpu_plan: Option<ipuflow::runtime::CpuPlan>,
}

/// One input as it was fed.
#[derive(Serialize)]
pub struct InputUsed {
    pub name: String,
    pub element_type: String,
    /// The shape run.
    pub shape: Vec<i64>,
    /// The model's declaration, e.g. `[N,3,640,640]`.
    pub declared: String,
    /// "generated" or the file it was read from.
    pub source: String,
}

#[derive(Serialize)]
struct Outcome {
    model: String,
    runtime: String,
    inputs: Vec<InputUsed>,
    session: SessionSummary,
    latency: Latency,
    outputs: Vec<OutputSummary>,
}

/// The session's placement in ipuflow's terms: nodes counted as `NodeCount` defines them (of ONNX Runtime's graph)
/// and subgraphs as `device_subgraphs` defines them, the nodes' tensors taken from `model` (the file) by name.
pub fn session_summary(
    s: &Session,
    model: Option<&ipuflow::onnx::proto::ModelProto>,
    create_seconds: f64,
) -> SessionSummary {
    let e = s.execution();
    let counts = e.placement.npu_counts();
    let report = e.placement.assignment().map(|a| {
        let mut a = a.clone();
        if let Some(m) = model {
            a.fill_io_from_model(m);
        }
        EpReport::from_assignment(&a)
    });
    SessionSummary {
        requested: format!("{:?}", e.requested).to_uppercase(),
        device_used: match e.device_used {
            DeviceUsed::Npu => "NPU".into(),
            DeviceUsed::Cpu => "CPU".into(),
        },
        fallback_reason: e.fallback_reason.clone(),
        cache_key: e.cache_key.clone(),
        placement: match counts {
            Some((npu, all)) => format!(
                "{npu} on the NPU ({:.1}%) of {}",
                if all == 0 {
                    0.0
                } else {
                    npu as f64 * 100.0 / all as f64
                },
                NodeCount::onnx_runtime(all).describe()
            ),
            None => e.placement.describe(),
        },
        operators: report
            .as_ref()
            .map(|r| r.summary_line())
            .unwrap_or_default(),
        npu_nodes: counts.map(|c| c.0),
        total_nodes: counts.map(|c| c.1),
        node_count: counts.map(|c| NodeCount::onnx_runtime(c.1)),
        subgraphs: report.map(|r| r.subgraph_stat.len()),
        warnings: e.warnings.clone(),
        create_seconds,
        cpu_plan: e.cpu_plan.clone(),
    }
}

/// Deterministic input values for a model input: uniform in [-1, 1) for floats, zeros otherwise. A dynamic
/// dimension is refused: a size made up here would be silently wrong (a detector crashes in Resize or reports the
/// latency of a 1×1 image), so the user says it with `--input-shape` (or gives a file).
pub fn generated_input(info: &TensorInfo) -> CliResult<OwnedTensor> {
    if info.shape.iter().any(|d| *d < 0) {
        let mut example = crate::check::example_dims(&info.model_shape());
        if info.shape.len() >= 2 && info.shape[0] < 0 {
            // The batch needs no thought: the hint shows 1 there, a name only where a real size is wanted.
            if let Some((_, rest)) = example.split_once(',') {
                example = format!("1,{rest}");
            }
        }
        return Err(Failure::user(
            format!(
                "input '{}' is {} with dynamic dimension(s): run does not invent sizes for generated inputs",
                info.name,
                info.model_shape()
            ),
            Some(&format!(
                "give the size: --input-shape {}={} (or the data: --input {}=FILE.npy)",
                info.name, example, info.name
            )),
        ));
    }
    let shape = info.shape.clone();
    let et = info.element_type().ok_or_else(|| {
        Failure::user(
            format!(
                "input '{}' is not a tensor ipuflow can generate: pass --input {}=FILE.npy",
                info.name, info.name
            ),
            None,
        )
    })?;
    // The model declares the shape: bounded before anything is allocated from it.
    let what = format!("generated input '{}'", info.name);
    let bytes = ipuflow::limits::tensor_bytes(&what, &shape, et.size().unwrap_or(1))?;
    let n = bytes / et.size().unwrap_or(1).max(1);
    if et == ElementType::Float32 {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect();
        return Ok(OwnedTensor::from_f32(&shape, &v)?);
    }
    let size = et.size().ok_or_else(|| {
        Failure::user(
            format!("input '{}' is a string tensor: not supported", info.name),
            None,
        )
    })?;
    Ok(OwnedTensor::from_bytes(
        et,
        &shape,
        ipuflow::limits::zeroed(&what, n * size)?,
    )?)
}

fn summarize(name: &str, t: &Tensor) -> OutputSummary {
    let values = metrics::to_f32(t);
    let (mut min, mut max, mut mean) = (None, None, None);
    let mut top5 = Vec::new();
    if let Some(v) = &values {
        if !v.is_empty() {
            min = v.iter().copied().reduce(f32::min);
            max = v.iter().copied().reduce(f32::max);
            mean = Some(v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64);
        }
        let s = t.shape();
        let is_vector = s.len() == 1 || (s.len() == 2 && s[0] == 1);
        if is_vector && v.len() > 1 {
            let mut idx: Vec<(usize, f32)> = v.iter().copied().enumerate().collect();
            idx.sort_by(|a, b| b.1.total_cmp(&a.1));
            idx.truncate(5);
            top5 = idx;
        }
    }
    OutputSummary {
        name: name.to_string(),
        element_type: t.element_type().name().to_string(),
        shape: t.shape().to_vec(),
        min,
        max,
        mean,
        top5,
    }
}

pub fn main(ctx: &Ctx, a: &Args) -> CliResult {
    util::require_exists(&a.model, "model")?;
    let rt = util::load_runtime(ctx)?;
    // Checked here (clear messages), run from the path: ONNX Runtime reads external data itself, so a model over
    // protobuf's 2 GiB limit runs and its weights are not held twice.
    let file = Model::load_file_lazy(&a.model)?;
    let opts = session_options(a)?;
    let (session, summary) = create_session(a, &opts, &file)?;
    let tensors = input_tensors(a, &session)?;
    let inputs_used = inputs_used(a, &session, &tensors);
    let sample = Sample {
        origin: "the input".into(),
        tensors,
        label: None,
    };
    let outputs = metrics::run_sample(&session, &sample)?;
    let latency = timed_runs(a, &session, &sample)?;
    let outs: Vec<OutputSummary> = outputs
        .iter()
        .enumerate()
        .map(|(i, t)| summarize(&session.outputs()[i].name, t))
        .collect();
    let out = Outcome {
        model: a.model.display().to_string(),
        runtime: format!("ONNX Runtime {} ({})", rt.version(), rt.path().display()),
        inputs: inputs_used,
        session: summary,
        latency,
        outputs: outs,
    };
    if ctx.json {
        util::print_json(&out);
        return Ok(());
    }
    print_outcome(&out, a.warmup);
    Ok(())
}

/// The session options the flags ask for (device, threads, shapes, fallback policy, VitisAI options).
fn session_options(a: &Args) -> CliResult<SessionOptions> {
    let mut opts = SessionOptions {
        device: match a.device {
            DeviceArg::Cpu => SessionDevice::Cpu,
            DeviceArg::Npu => SessionDevice::Ipu,
            DeviceArg::Auto => SessionDevice::Auto,
        },
        intra_op_threads: a.threads,
        input_shapes: a.input_shape.clone(),
        ..Default::default()
    };
    if a.policy.is_some() || a.min_npu_fraction.is_some() {
        let policy = match a.policy {
            Some(PolicyArg::Strict) => FallbackPolicy::Strict,
            Some(PolicyArg::Prefer) => FallbackPolicy::Prefer,
            None if a.device == DeviceArg::Npu => FallbackPolicy::Strict,
            None => FallbackPolicy::Prefer,
        };
        opts.fallback_policy(policy, a.min_npu_fraction.unwrap_or(0.0))?;
    }
    if let Some(t) = a.target {
        opts.vitisai_option("target", t.target().as_str())?;
    }
    if let Some(d) = &a.cache_dir {
        opts.vitisai_option("cache_dir", d.display().to_string())?;
    }
    opts.fallback_execution = match a.fallback_execution {
        FallbackExecutionArg::Fast => FallbackExecution::Fast,
        FallbackExecutionArg::Faithful => FallbackExecution::Faithful,
        FallbackExecutionArg::AsWritten => FallbackExecution::AsWritten,
    };
    Ok(opts)
}

/// Creates the session behind a spinner and summarizes where it runs.
fn create_session(
    a: &Args,
    opts: &SessionOptions,
    file: &Model,
) -> CliResult<(Session, SessionSummary)> {
    let spinner = util::progress_bar(None, "creating the session");
    let dev = match a.device {
        DeviceArg::Cpu => "CPU",
        DeviceArg::Npu => "NPU",
        DeviceArg::Auto => "AUTO",
    };
    util::stage_line(&format!("creating the session (device {dev})"));
    let t0 = Instant::now();
    let session = Session::from_file(&a.model, opts);
    spinner.finish_and_clear();
    let session = session?;
    let summary = session_summary(&session, Some(file.proto()), t0.elapsed().as_secs_f64());
    Ok((session, summary))
}

/// The `--input` files, or one generated tensor per model input when none is given.
fn input_tensors(a: &Args, session: &Session) -> CliResult<Vec<(String, OwnedTensor)>> {
    if a.input.is_empty() {
        session
            .inputs()
            .iter()
            .map(|i| generated_input(i).map(|t| (i.name.clone(), t)))
            .collect::<CliResult<_>>()
    } else {
        read_inputs(&a.input, session.inputs())
    }
}

/// What each input tensor was, what the model declares and where it came from.
fn inputs_used(a: &Args, session: &Session, tensors: &[(String, OwnedTensor)]) -> Vec<InputUsed> {
    tensors
        .iter()
        .map(|(name, t)| {
            let info = session.inputs().iter().find(|i| &i.name == name);
            let source = a
                .input
                .iter()
                .find(|(n, _)| n.as_deref().is_none_or(|n| n == name))
                .map_or("generated".to_string(), |(_, f)| f.display().to_string());
            InputUsed {
                name: name.clone(),
                element_type: t.element_type.name().to_string(),
                shape: t.shape.clone(),
                declared: info.map(|i| i.model_shape()).unwrap_or_default(),
                source,
            }
        })
        .collect()
}

/// `--warmup` then `--repeat` timed runs behind a progress bar; Ctrl-C stops them with an error.
fn timed_runs(a: &Args, session: &Session, sample: &Sample) -> CliResult<Latency> {
    let bar = util::progress_bar(Some(a.repeat), "running");
    util::stage_line(&format!("timing {} runs", a.repeat));
    let latency = metrics::time_runs(
        session,
        sample,
        a.warmup as usize,
        a.repeat as usize,
        &mut || {
            bar.inc(1);
            !cancelled()
        },
    );
    bar.finish_and_clear();
    let latency = latency?;
    if cancelled() {
        return Err(cancelled_failure("run"));
    }
    Ok(latency)
}

/// The text report: model, inputs, session placement, latency, outputs.
fn print_outcome(out: &Outcome, warmup: u64) {
    outln!("model       {}", out.model);
    outln!("runtime     {}", out.runtime);
    for i in &out.inputs {
        outln!(
            "input       {} {} {} ({}; model declares {})",
            i.name,
            i.element_type,
            util::shape_str(&i.shape),
            i.source,
            i.declared
        );
    }
    print_session(&out.session);
    let l = &out.latency;
    outln!(
        "latency     p50 {}  p90 {}  p99 {}  (mean {}, {} runs after {} warm-up)",
        util::ms(l.p50_ms),
        util::ms(l.p90_ms),
        util::ms(l.p99_ms),
        util::ms(l.mean_ms),
        l.runs,
        warmup
    );
    for o in &out.outputs {
        out!(
            "output      {} {} {}",
            o.name,
            o.element_type,
            util::shape_str(&o.shape)
        );
        if let (Some(mn), Some(mx), Some(me)) = (o.min, o.max, o.mean) {
            out!("  min {mn:.4} max {mx:.4} mean {me:.4}");
        }
        outln!();
        if !o.top5.is_empty() {
            let t: Vec<String> = o.top5.iter().map(|(i, v)| format!("{i}: {v:.4}")).collect();
            outln!("            top-5 {}", t.join(", "));
        }
    }
}

/// The session lines of the text report: device, fallback, placement, cache key, CPU plan, warnings.
fn print_session(s: &SessionSummary) {
    outln!(
        "session     requested {}, runs on {} (created in {:.2} s)",
        s.requested,
        s.device_used,
        s.create_seconds
    );
    if !s.fallback_reason.is_empty() {
        outln!("fallback    {}", s.fallback_reason);
    }
    outln!("placement   {}", s.placement);
    if !s.operators.is_empty() {
        outln!("            {}", s.operators);
    }
    if let Some(k) = &s.cache_key {
        outln!("cache key   {k}");
    }
    if let Some(p) = &s.cpu_plan {
        outln!("cpu plan    {}", p.describe());
    }
    for w in s
        .warnings
        .iter()
        .filter(|w| s.fallback_reason.is_empty() || !w.contains(&s.fallback_reason))
    {
        outln!("warning     {w}");
    }
}
