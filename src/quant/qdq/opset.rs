//! Raising the default-domain opset to 13 (per-channel Q/DQ needs it).
//!
//! Ops whose signature or meaning changed between the model's opset and 13 are converted (attributes that became
//! inputs: Squeeze/Unsqueeze/Split/ReduceSum `axes`/`split` (13), Clip `min`/`max` and Pad `pads`/`value` (11),
//! Dropout `ratio` (12, ignored at inference)), or refused with `Unsupported` naming the node (Softmax/LogSoftmax/
//! Hardmax on a non-last axis (13 changed 2-D coercion to one axis), Resize/Upsample of opset 10, Scatter, ops with
//! subgraphs).

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::onnx::proto::{GraphProto, NodeProto, TensorProto};

use super::weights::f32_tensor;
use crate::onnx::node::{label as node_label, op, take_attr};

pub const TARGET: i64 = 13;

/// A 1-D INT64 initializer (opset conversions turn INTS attributes into such inputs).
pub(crate) fn i64_tensor(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: vec![v.len() as i64],
        data_type: Some(crate::onnx::DataType::Int64.onnx()),
        raw_data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// Rank of a tensor if the graph states it (inputs, outputs, value_info).
fn rank_of(g: &GraphProto, name: &str) -> Option<usize> {
    use crate::onnx::proto::type_proto::Value;
    g.input
        .iter()
        .chain(&g.output)
        .chain(&g.value_info)
        .find(|v| v.name.as_deref() == Some(name))
        .and_then(|v| match v.r#type.as_ref()?.value.as_ref()? {
            Value::TensorType(t) => t.shape.as_ref().map(|s| s.dim.len()),
            _ => None,
        })
}

/// Converts the graph's default-domain nodes from `from` to opset 13. Returns notes for the report.
pub fn upgrade(g: &mut GraphProto, from: i64, names: &mut HashSet<String>) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let mut added = Added {
        names,
        inits: Vec::new(),
    };
    let ranks: Vec<Option<usize>> = g
        .node
        .iter()
        .map(|n| n.input.first().and_then(|i| rank_of(g, i)))
        .collect();
    for (idx, n) in g.node.iter_mut().enumerate() {
        if !matches!(n.domain.as_deref().unwrap_or(""), "" | "ai.onnx") {
            continue;
        }
        if n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
        {
            return Err(Error::unsupported(format!(
                "{} has a subgraph; raising opset {from} to {TARGET} through control flow is not supported",
                node_label(n)
            )));
        }
        notes.extend(upgrade_node(n, idx, ranks[idx], from, &mut added)?);
    }
    g.initializer.extend(added.inits);
    Ok(notes)
}

/// The initializers a conversion adds, under names unique in the graph.
struct Added<'a> {
    names: &'a mut HashSet<String>,
    inits: Vec<TensorProto>,
}

impl Added<'_> {
    fn unique(&mut self, base: String) -> String {
        let mut n = base.clone();
        let mut k = 1;
        while self.names.contains(&n) {
            n = format!("{base}_{k}");
            k += 1;
        }
        self.names.insert(n.clone());
        n
    }

    fn i64s(&mut self, base: String, v: &[i64]) -> String {
        let name = self.unique(base);
        self.inits.push(i64_tensor(&name, v));
        name
    }

    fn f32_scalar(&mut self, base: String, v: f32) -> String {
        let name = self.unique(base);
        self.inits.push(f32_tensor(&name, &[], &[v]));
        name
    }
}

/// Converts one default-domain node (`idx`: its position, for unnamed nodes; `rank`: its input 0's rank if
/// known). Returns the report note, if the node changed.
fn upgrade_node(
    n: &mut NodeProto,
    idx: usize,
    rank: Option<usize>,
    from: i64,
    added: &mut Added<'_>,
) -> Result<Option<String>> {
    let label = node_label(n);
    let base = n
        .name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("node{idx}"));
    match op(n) {
        "Squeeze" | "Unsqueeze" | "ReduceSum" if from < 13 => {
            if let Some(a) = take_attr(n, "axes") {
                let name = added.i64s(format!("{base}_axes"), &a.ints);
                n.input.truncate(1);
                n.input.push(name);
                return Ok(Some(format!(
                    "{label}: attribute 'axes' moved to an input (opset 13)"
                )));
            }
        }
        "Split" if from < 13 => {
            if let Some(a) = take_attr(n, "split") {
                let name = added.i64s(format!("{base}_split"), &a.ints);
                n.input.truncate(1);
                n.input.push(name);
                return Ok(Some(format!(
                    "{label}: attribute 'split' moved to an input (opset 13)"
                )));
            }
        }
        "Clip" if from < 11 => {
            let lo = take_attr(n, "min").and_then(|a| a.f);
            let hi = take_attr(n, "max").and_then(|a| a.f);
            n.input.truncate(1);
            let lo_name = match lo {
                Some(v) => added.f32_scalar(format!("{base}_min"), v),
                None => String::new(),
            };
            n.input.push(lo_name);
            if let Some(v) = hi {
                let name = added.f32_scalar(format!("{base}_max"), v);
                n.input.push(name);
            }
            return Ok(Some(format!(
                "{label}: attributes 'min'/'max' moved to inputs (opset 11)"
            )));
        }
        "Pad" if from < 11 => {
            let pads = take_attr(n, "pads").map(|a| a.ints).unwrap_or_default();
            let value = take_attr(n, "value").and_then(|a| a.f).unwrap_or(0.0);
            let pn = added.i64s(format!("{base}_pads"), &pads);
            let vn = added.f32_scalar(format!("{base}_value"), value);
            n.input.truncate(1);
            n.input.push(pn);
            n.input.push(vn);
            return Ok(Some(format!(
                "{label}: attributes 'pads'/'value' moved to inputs (opset 11)"
            )));
        }
        "Dropout" if from < 12 => {
            take_attr(n, "ratio");
        }
        "Softmax" | "LogSoftmax" | "Hardmax" if from < 13 => {
            let axis = n
                .attribute
                .iter()
                .find(|a| a.name.as_deref() == Some("axis"))
                .and_then(|a| a.i)
                .unwrap_or(1);
            let ok = match rank {
                Some(r) => axis == -1 || axis == r as i64 - 1,
                None => axis == -1,
            };
            if !ok {
                return Err(Error::unsupported(format!(
                    "{label}: axis {axis} has different semantics in opset {from} (2-D coercion) than in \
                     opset {TARGET}; cannot raise the opset"
                )));
            }
        }
        "Resize" | "Upsample" if from < 11 => {
            return Err(Error::unsupported(format!(
                "{label}: opset-{from} {} cannot be converted to opset {TARGET}",
                op(n)
            )));
        }
        "Scatter" | "Upsample" => {
            return Err(Error::unsupported(format!(
                "{label}: op '{}' does not exist in opset {TARGET}",
                op(n)
            )));
        }
        _ => {}
    }
    Ok(None)
}
