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
    let model = Model::load_file_lazy(&a.model)?;
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
    for r in &p.model_reasons {
        outln!("model-wide: {r}");
    }
    for n in &p.notes {
        outln!("note: {n}");
    }
    if p.nodes.iter().any(|n| n.reason.contains("dynamic shape")) {
        outln!("hint: the NPU needs fixed shapes: `ipuflow quantize ... --batch 1` fixes a dynamic batch dimension");
    }
    if !p.quantized {
        outln!("hint: the NPU runs quantized models: `ipuflow quantize MODEL -o OUT --preset xint8 --calib DIR`");
    }
    Ok(())
}
