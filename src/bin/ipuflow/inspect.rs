//! `ipuflow inspect MODEL`: the model's interface, opsets, producer and op statistics.

use std::path::PathBuf;

use ipuflow::ipu::preflight::NodeCount;
use ipuflow::onnx::{Dim, Model, ModelSummary};

use crate::util::{CliResult, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model file.
    pub model: PathBuf,
}

pub fn dims(shape: &Option<Vec<Dim>>) -> String {
    match shape {
        None => "(unknown rank)".to_string(),
        Some(s) => {
            let parts: Vec<String> = s
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => n.to_string(),
                    Dim::Symbolic(name) => name.clone(),
                    Dim::Unknown => "?".to_string(),
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// Whether a model is already QDQ-quantized (holds QuantizeLinear/DequantizeLinear nodes), and how many.
pub fn qdq_nodes(model: &Model) -> usize {
    model.proto().graph.as_ref().map_or(0, |g| {
        g.node
            .iter()
            .filter(|n| {
                matches!(
                    n.op_type.as_deref(),
                    Some("QuantizeLinear" | "DequantizeLinear")
                )
            })
            .count()
    })
}

pub fn main(ctx: &Ctx, a: &Args) -> CliResult {
    // Lazy: a model with many GiB of external weights is inspected without reading them.
    let model = Model::load_file_lazy(&a.model)?;
    let s = model.summary();
    let qdq = qdq_nodes(&model);
    // The count check and run use too (file graph here); a model without a graph has none.
    let counted = ipuflow::ipu::preflight::count_nodes(model.proto()).ok();
    if ctx.json {
        crate::util::print_json(&json_summary(a, &model, &s, qdq, counted.as_ref()));
        return Ok(());
    }
    outln!("model     {}", a.model.display());
    outln!("producer  {} {}", s.producer_name, s.producer_version);
    outln!("ir        {}", s.ir_version);
    let opsets: Vec<String> = s
        .opsets
        .iter()
        .map(|(d, v)| format!("{}:{v}", if d.is_empty() { "ai.onnx" } else { d }))
        .collect();
    outln!("opsets    {}", opsets.join(", "));
    for v in &s.inputs {
        outln!(
            "input     {} {} {}",
            v.name,
            ipuflow::onnx::element_type_name(v.elem_type),
            dims(&v.shape)
        );
    }
    for v in &s.outputs {
        outln!(
            "output    {} {} {}",
            v.name,
            ipuflow::onnx::element_type_name(v.elem_type),
            dims(&v.shape)
        );
    }
    match &counted {
        Some(c) => outln!(
            "nodes     {} in the file's main graph; counted: {}",
            s.node_count,
            c.describe()
        ),
        None => outln!("nodes     {}", s.node_count),
    }
    outln!(
        "weights   {} initializers, {:.2} MB",
        s.initializer_count,
        s.initializer_bytes as f64 / 1e6
    );
    outln!(
        "quantized {}",
        if qdq > 0 {
            format!("yes ({qdq} QuantizeLinear/DequantizeLinear nodes)")
        } else {
            "no (float model)".into()
        }
    );
    print_provenance(&model);
    let ops: Vec<String> = s
        .op_histogram
        .iter()
        .map(|(op, n)| format!("{op}×{n}"))
        .collect();
    outln!("ops       {}", ops.join(" "));
    Ok(())
}

/// The `--json` form: the summary plus the path, the QDQ node count, the provenance and the node count.
fn json_summary(
    a: &Args,
    model: &Model,
    s: &ModelSummary,
    qdq: usize,
    counted: Option<&NodeCount>,
) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&s.to_json()).unwrap_or_else(|_| serde_json::json!({}));
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("path".into(), a.model.display().to_string().into());
        m.insert("qdq_nodes".into(), qdq.into());
        let prov: serde_json::Map<String, serde_json::Value> =
            ipuflow::quant::provenance::read(model.proto())
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect();
        m.insert("provenance".into(), prov.into());
        if let Some(c) = counted {
            m.insert(
                "node_count".into(),
                serde_json::to_value(c).unwrap_or_default(),
            );
        }
    }
    v
}

/// The provenance lines of an ipuflow-made model (nothing for another producer's).
fn print_provenance(model: &Model) {
    let prov = ipuflow::quant::provenance::read(model.proto());
    if prov.is_empty() {
        return;
    }
    let get = |k: &str| {
        prov.iter()
            .find(|(key, _)| key == k)
            .map_or("?", |(_, v)| v.as_str())
    };
    outln!(
        "made by   ipuflow {}, preset {}, ONNX Runtime {}",
        get("version"),
        get("preset"),
        get("onnxruntime")
    );
    outln!("          calibration data {}", get("calibration"));
    outln!("          settings {}", get("settings"));
    for (k, v) in prov.iter().filter(|(k, _)| {
        !matches!(
            k.as_str(),
            "version" | "preset" | "onnxruntime" | "calibration" | "settings"
        )
    }) {
        outln!("          {k} {v}");
    }
}
