//! Raising a model of default-domain opset 7, 8 or 9 to opset 10, exactly (no op changes what it computes).
//!
//! The QDQ emitter carries opset 10 on to 13 (per-channel Q/DQ needs 13); this covers the older exports (TF/Keras
//! converters still write opset 9). Between 7 and 10 only these ops changed signature in a way a model can trip on:
//! - `Slice` (10): `starts`/`ends`/`axes` attributes became inputs: moved into int64 initializers.
//! - `TopK` (10): the `k` attribute became an input: moved into an int64 initializer.
//! - `Upsample` (9): the `scales` attribute became an input: moved into a float initializer.
//! - `BatchNormalization` (9): the `spatial` attribute was removed; `spatial = 1` (the default) is what 9 computes,
//!   `spatial = 0` is refused.
//! - `Dropout` (10): the mask output became bool: refused only if a node reads that mask.
//! - `Scan` (9): a new signature (no batch axis): refused.
//!
//! Every other change from 7 to 10 only widened types or added optional attributes whose defaults keep the old
//! behaviour (MaxPool/AveragePool `ceil_mode`, broadcasting of Max/Min/Sum/Mean), so those nodes stay as they are.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::onnx::node::{label, op, take_attr};
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, TensorProto};
use crate::quant::qdq::opset::i64_tensor;

/// The opset the conversion produces.
pub const TARGET: i64 = 10;

fn is_default_domain(d: Option<&str>) -> bool {
    crate::onnx::node::is_default_domain_name(d.unwrap_or(""))
}

/// Every name a graph (and its subgraphs) defines or reads, so new initializers get fresh names.
fn collect_names(g: &GraphProto, out: &mut HashSet<String>) {
    out.extend(g.initializer.iter().filter_map(|t| t.name.clone()));
    out.extend(
        g.input
            .iter()
            .chain(&g.output)
            .filter_map(|v| v.name.clone()),
    );
    for n in &g.node {
        out.extend(n.input.iter().chain(&n.output).cloned());
        for a in &n.attribute {
            for sg in a.g.iter().map(|b| b.as_ref()).chain(&a.graphs) {
                collect_names(sg, out);
            }
        }
    }
}

fn fresh(base: &str, names: &mut HashSet<String>) -> String {
    let mut n = base.to_string();
    let mut k = 1;
    while names.contains(&n) {
        n = format!("{base}_{k}");
        k += 1;
    }
    names.insert(n.clone());
    n
}

/// Converts one graph's nodes (and its subgraphs') in place; counts converted nodes by op.
fn convert_graph(
    g: &mut GraphProto,
    names: &mut HashSet<String>,
    changed: &mut std::collections::BTreeMap<String, usize>,
) -> Result<()> {
    let read: HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(g.output.iter().filter_map(|v| v.name.clone()))
        .collect();
    let mut new_inits = Vec::new();
    for n in &mut g.node {
        for a in &mut n.attribute {
            for sg in
                a.g.iter_mut()
                    .map(|b| b.as_mut())
                    .chain(a.graphs.iter_mut())
            {
                convert_graph(sg, names, changed)?;
            }
        }
        if !is_default_domain(n.domain.as_deref()) {
            continue;
        }
        if convert_node(n, &read, names, &mut new_inits)? {
            *changed.entry(op(n).to_string()).or_default() += 1;
        }
    }
    g.initializer.extend(new_inits);
    Ok(())
}

/// Converts one default-domain node; `read`: the tensors the graph reads. Returns whether it changed; the
/// initializers it needs go to `new_inits`.
fn convert_node(
    n: &mut NodeProto,
    read: &HashSet<String>,
    names: &mut HashSet<String>,
    new_inits: &mut Vec<TensorProto>,
) -> Result<bool> {
    let base = n
        .name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| n.output.first().cloned().unwrap_or_default());
    match op(n) {
        "Slice" => {
            let starts = take_attr(n, "starts");
            let ends = take_attr(n, "ends");
            let (Some(starts), Some(ends)) = (starts, ends) else {
                return Err(Error::model_invalid(format!(
                    "{}: opset-9 Slice needs the starts and ends attributes",
                    label(n)
                )));
            };
            let axes = take_attr(n, "axes");
            n.input.truncate(1);
            for (what, a) in [("starts", Some(starts)), ("ends", Some(ends)), ("axes", axes)] {
                let Some(a) = a else { continue };
                let name = fresh(&format!("{base}_{what}"), names);
                new_inits.push(i64_tensor(&name, &a.ints));
                n.input.push(name);
            }
        }
        "TopK" => {
            let Some(k) = take_attr(n, "k").and_then(|a| a.i) else {
                return Err(Error::model_invalid(format!(
                    "{}: opset-1 TopK needs the k attribute",
                    label(n)
                )));
            };
            let name = fresh(&format!("{base}_k"), names);
            new_inits.push(i64_tensor(&name, &[k]));
            n.input.truncate(1);
            n.input.push(name);
        }
        "Upsample" => {
            // Opset 7 form: scales as an attribute (opset 9 already has the input).
            let Some(scales) = take_attr(n, "scales") else {
                return Ok(false);
            };
            let name = fresh(&format!("{base}_scales"), names);
            new_inits.push(crate::quant::qdq::weights::f32_tensor(
                &name,
                &[scales.floats.len() as i64],
                &scales.floats,
            ));
            n.input.truncate(1);
            n.input.push(name);
        }
        "BatchNormalization" => match take_attr(n, "spatial") {
            None => return Ok(false),
            Some(a) if a.i.unwrap_or(1) == 1 => {}
            Some(_) => {
                return Err(Error::unsupported(format!(
                    "{}: BatchNormalization with spatial=0 (per-element statistics) has no opset-9+ form",
                    label(n)
                )))
            }
        },
        "Dropout" => {
            if n.output.get(1).is_some_and(|m| !m.is_empty() && read.contains(m)) {
                return Err(Error::unsupported(format!(
                    "{}: its mask output is read, and opset 10 changed the mask's type to bool",
                    label(n)
                )));
            }
            return Ok(false);
        }
        "Scan" => {
            return Err(Error::unsupported(format!(
                "{}: Scan changed signature in opset 9 (no batch axis); this opset-8 Scan is not converted",
                label(n)
            )))
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// If `m` imports a default-domain opset from 7 to 9, returns it converted to opset [`TARGET`] with a note naming
/// the conversion (and the nodes rewritten); `None` when the opset is already [`TARGET`] or newer.
///
/// Errors: `Unsupported` naming a node whose old form has no exact opset-10 equivalent (see the module docs),
/// `ModelInvalid` for a node missing a required attribute.
pub fn upgrade_old_opset(m: &ModelProto) -> Result<Option<(ModelProto, String)>> {
    let Ok(from) = crate::onnx::node::default_opset(m) else {
        return Ok(None);
    };
    if from >= TARGET {
        return Ok(None);
    }
    let mut m = m.clone();
    let mut changed = std::collections::BTreeMap::new();
    if let Some(g) = m.graph.as_mut() {
        let mut names = HashSet::new();
        collect_names(g, &mut names);
        convert_graph(g, &mut names, &mut changed)?;
    }
    for o in &mut m.opset_import {
        if is_default_domain(o.domain.as_deref()) {
            o.version = Some(TARGET);
        }
    }
    // Opset 10 needs IR version 5 or newer.
    m.ir_version = Some(m.ir_version.unwrap_or(0).max(5));
    let what = if changed.is_empty() {
        "no node needed rewriting".to_string()
    } else {
        let list: Vec<String> = changed.iter().map(|(k, v)| format!("{v} {k}")).collect();
        format!("rewritten: {}", list.join(", "))
    };
    Ok(Some((
        m,
        format!("default-domain opset {from} converted to {TARGET} (exact; {what})"),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{AttributeProto, NodeProto, OperatorSetIdProto};

    fn model(opset: i64, nodes: Vec<NodeProto>, outputs: &[&str]) -> ModelProto {
        ModelProto {
            ir_version: Some(3),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            graph: Some(GraphProto {
                node: nodes,
                output: outputs
                    .iter()
                    .map(|o| crate::onnx::proto::ValueInfoProto {
                        name: Some(o.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn n(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            name: Some(name.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn opset_10_and_newer_are_left_alone() {
        assert!(upgrade_old_opset(&model(10, vec![], &[]))
            .unwrap()
            .is_none());
        assert!(upgrade_old_opset(&model(17, vec![], &[]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn slice_attributes_become_inputs_with_fresh_names() {
        let mut s = n("Slice", "s", &["x"], &["y"]);
        for (name, v) in [("starts", vec![0, 1]), ("ends", vec![2, 3])] {
            s.attribute.push(AttributeProto {
                name: Some(name.into()),
                ints: v,
                ..Default::default()
            });
        }
        // A tensor already called like the new input: the new one gets another name.
        let m = model(9, vec![s, n("Relu", "r", &["s_starts"], &["z"])], &["y"]);
        let (m, note) = upgrade_old_opset(&m).unwrap().unwrap();
        let g = m.graph.unwrap();
        assert_eq!(g.node[0].input, ["x", "s_starts_1", "s_ends"]);
        assert!(g.node[0].attribute.is_empty());
        assert_eq!(
            crate::onnx::tensor::int_values(&g.initializer[0])
                .ok()
                .as_deref(),
            Some(&[0i64, 1][..])
        );
        assert_eq!(m.opset_import[0].version, Some(10));
        assert_eq!(m.ir_version, Some(5));
        assert!(
            note.contains("opset 9 converted to 10") && note.contains("1 Slice"),
            "{note}"
        );
    }

    #[test]
    fn inexact_conversions_are_refused_naming_the_node() {
        let mut bn = n(
            "BatchNormalization",
            "bn",
            &["x", "s", "b", "m", "v"],
            &["y"],
        );
        bn.attribute.push(AttributeProto {
            name: Some("spatial".into()),
            i: Some(0),
            ..Default::default()
        });
        let drop = n("Dropout", "drop", &["x"], &["y", "mask"]);
        let scan = n("Scan", "scan", &["x"], &["y"]);
        for (m, what) in [
            (model(8, vec![bn], &["y"]), "'bn'"),
            (model(9, vec![drop], &["y", "mask"]), "'drop'"),
            (model(8, vec![scan], &["y"]), "'scan'"),
        ] {
            let e = upgrade_old_opset(&m).unwrap_err();
            assert!(e.message().contains(what), "{}", e.message());
        }
        // An unread Dropout mask is fine.
        let drop = n("Dropout", "drop", &["x"], &["y", "mask"]);
        assert!(upgrade_old_opset(&model(9, vec![drop], &["y"])).is_ok());
    }
}
