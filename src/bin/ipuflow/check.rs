//! `ipuflow check MODEL --target x1|x2`: the NPU pre-flight prediction, node by node, without an NPU.

use std::path::PathBuf;

use ipuflow::ipu::preflight::{preflight, Device, Preflight};
use ipuflow::ipu::Target;
use ipuflow::onnx::Model;

use crate::util::{CliResult, Ctx};

/// `--target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
    /// Phoenix / Hawk Point (PCI 1022:1502).
    X1,
    /// Strix / Krackan and newer (PCI 1022:17f0).
    X2,
}

impl TargetArg {
    pub fn target(self) -> Target {
        match self {
            TargetArg::X1 => Target::X1,
            TargetArg::X2 => Target::X2,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model (float or QDQ).
    pub model: PathBuf,
    /// The NPU compile target.
    #[arg(long, value_enum, ignore_case = true, default_value = "x2")]
    pub target: TargetArg,
    /// List only the nodes predicted to run on the CPU.
    #[arg(long)]
    pub cpu_only: bool,
    /// Fix a dynamic input's shape first, e.g. images=1,3,640,640 (repeatable, one per input), as quantize and run
    /// take it.
    #[arg(long, value_name = "NAME=D0,D1,...", value_parser = crate::data::parse_input_shape)]
    pub input_shape: Vec<ipuflow::onnx::InputShape>,
}

/// The hint for dynamic shapes: per input, the dimensions still dynamic and the option that fixes them; when every
/// input is fixed, that the dynamic shapes come from inside the graph.
pub fn dynamic_shape_hint(model: &ipuflow::onnx::proto::ModelProto) -> String {
    let dims = ipuflow::onnx::dynamic_input_dims(model);
    if dims.is_empty() {
        return "every input shape is fixed, but ipuflow's shape inference leaves some inner tensors dynamic (see \
                the nodes' reasons); the quantized model carries ONNX Runtime's inferred shapes"
            .into();
    }
    let mut parts = Vec::new();
    let mut inputs: Vec<&str> = dims.iter().map(|d| d.input.as_str()).collect();
    inputs.dedup();
    for input in inputs {
        let mine: Vec<_> = dims.iter().filter(|d| d.input == input).collect();
        let declared = &mine[0].declared;
        let which: Vec<String> = mine
            .iter()
            .filter_map(|d| d.index)
            .map(
                |i| match &mine.iter().find(|d| d.index == Some(i)).unwrap().symbol {
                    s if s.is_empty() => i.to_string(),
                    s => format!("{i} ('{s}')"),
                },
            )
            .collect();
        let what = if which.is_empty() {
            format!("input '{input}' has no declared shape")
        } else {
            format!(
                "input '{input}' {declared}: dimension {} dynamic",
                which.join(", ")
            )
        };
        parts.push(format!(
            "{what}; `--input-shape {input}={}` fixes it",
            example_dims(declared)
        ));
    }
    format!(
        "the NPU needs fixed shapes: {} (the same option for check, quantize and run)",
        parts.join("; ")
    )
}

/// `[N,3,height,width]` -> `N,3,HEIGHT,WIDTH`: a template of the sizes to give (`D<i>` for unnamed or odd names).
pub fn example_dims(declared: &str) -> String {
    let inner = declared.trim_start_matches('[').trim_end_matches(']');
    if inner == "unknown rank" {
        return "D0,D1,...".into();
    }
    inner
        .split(',')
        .enumerate()
        .map(|(i, d)| {
            if d.parse::<i64>().is_ok() {
                d.to_string()
            } else if !d.is_empty()
                && d.len() <= 12
                && d.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                d.to_uppercase()
            } else {
                format!("D{i}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// (nodes that would be on the NPU once quantized, all nodes).
pub fn if_quantized(p: &Preflight) -> (usize, usize) {
    (
        p.nodes.iter().filter(|n| n.supported_if_quantized).count(),
        p.nodes.len(),
    )
}

/// One line: "X2: 120 of 150 nodes on the NPU (80.0%, 90.0% without Q/DQ), 1 subgraph".
pub fn coverage_line(p: &Preflight) -> String {
    if p.quantized {
        format!(
            "{}: {} of {} nodes on the NPU ({:.1}%, {:.1}% without Q/DQ), {} subgraph(s)",
            p.target,
            p.npu_nodes,
            p.total_nodes,
            p.coverage_percent,
            p.coverage_excluding_qdq_percent,
            p.subgraphs.len()
        )
    } else {
        let (q, all) = if_quantized(p);
        format!(
            "{}: float model, nothing runs on the NPU; once quantized {q} of {all} nodes would ({:.1}%), {} subgraph(s)",
            p.target,
            if all == 0 { 0.0 } else { q as f64 * 100.0 / all as f64 },
            p.subgraphs_if_quantized.len()
        )
    }
}

pub fn main(ctx: &Ctx, a: &Args) -> CliResult {
    let mut model = Model::load_file_lazy(&a.model)?;
    // The same rewrite quantize and run apply (so the three agree); the hint below reads the rewritten inputs.
    ipuflow::onnx::apply_input_shapes(model.proto_mut(), &a.input_shape)?;
    let p = preflight(model.proto(), a.target.target())?;
    if ctx.json {
        crate::util::print_json_text(&p.to_json());
        return Ok(());
    }
    let rows: Vec<_> = p
        .nodes
        .iter()
        .filter(|n| !a.cpu_only || n.device == Device::Cpu)
        .collect();
    let w_name = rows
        .iter()
        .map(|n| n.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 48);
    let w_op = rows
        .iter()
        .map(|n| n.op_type.len())
        .max()
        .unwrap_or(2)
        .clamp(2, 24);
    outln!(
        "{:<w_name$}  {:<w_op$}  {:<6}  reason",
        "node",
        "op",
        "device"
    );
    for n in &rows {
        let name: String = if n.name.chars().count() > w_name {
            let tail: String = n
                .name
                .chars()
                .rev()
                .take(w_name - 1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("…{tail}")
        } else {
            n.name.clone()
        };
        let dev = match n.device {
            Device::Npu => "NPU",
            Device::Cpu => "CPU",
        };
        outln!(
            "{name:<w_name$}  {:<w_op$}  {dev:<6}  {}",
            n.op_type,
            n.reason
        );
    }
    outln!();
    outln!("model     {}", a.model.display());
    outln!("coverage  {}", coverage_line(&p));
    outln!("counted   {}", p.node_count.describe());
    outln!(
        "          (subgraph: a maximal connected group of nodes on one device; the EP refuses more than {} NPU ones)",
        ipuflow::ipu::preflight::SupportTable::builtin().limits.max_subgraphs
    );
    for r in &p.model_reasons {
        outln!("model-wide: {r}");
    }
    for n in &p.notes {
        outln!("note: {n}");
    }
    if p.nodes.iter().any(|n| n.reason.contains("dynamic shape")) {
        outln!("hint: {}", dynamic_shape_hint(model.proto()));
    }
    if !p.quantized {
        outln!("hint: the NPU runs quantized models: `ipuflow quantize MODEL -o OUT --preset xint8 --calib DIR`");
    }
    Ok(())
}
