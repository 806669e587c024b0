//! Where nodes actually ran: ONNX Runtime's EP graph-assignment info as a `vitisai_ep_report.json`-shaped report.
//!
//! Facts (shared/docs/ryzen-ai-flow.md): ONNX Runtime 1.24+ lists, with `session.record_ep_graph_assignment_info=1`,
//! subgraphs with their EP name and nodes (name, domain, op type) through `Session_GetEpGraphAssignmentInfo`. The
//! VitisAI EP's own `vitisai_ep_report.json` has `deviceStat`: a list of `{name: "all"|"CPU"|"NPU", nodeNum,
//! supportedOpType: ["::Conv", ...]}` plus per-node entries (name, op, inputs, outputs); older releases say "DPU" for
//! "NPU". This module builds that shape from the assignment info (input: [`EpAssignment`], filled by the runtime
//! layer), reads an EP-written report back, and compares either with a [`Preflight`] prediction.
//!
//! Caveat: nodes the VitisAI EP took but then ran on its own CPU fallback (`VITIS_EP_CPU` in its log) are assigned to
//! the VitisAI EP as far as ONNX Runtime knows, so they count as NPU here.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::preflight::{device_subgraphs, Device, GroupNode, Preflight};
use crate::error::{Error, Result};
use crate::onnx::proto::ModelProto;

/// EP name of the VitisAI execution provider.
pub const VITISAI_EP: &str = "VitisAIExecutionProvider";
/// EP name of ONNX Runtime's CPU execution provider.
pub const CPU_EP: &str = "CPUExecutionProvider";

/// One node as ONNX Runtime reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedNode {
    pub name: String,
    /// "" for the default ONNX domain.
    pub domain: String,
    pub op_type: String,
    /// Optional: not in ONNX Runtime's assignment info; [`EpAssignment::fill_io_from_model`] fills them by name.
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
}

/// One subgraph assigned to one EP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedSubgraph {
    /// E.g. "VitisAIExecutionProvider", "CPUExecutionProvider".
    pub ep_name: String,
    pub nodes: Vec<AssignedNode>,
}

/// ONNX Runtime's EP graph-assignment info of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpAssignment {
    pub subgraphs: Vec<AssignedSubgraph>,
}

impl EpAssignment {
    /// Fills each node's inputs/outputs from the model's main graph, matching by node name (unnamed or unmatched
    /// nodes are left as they are). An input written by a file node ONNX Runtime removed (folded into a constant,
    /// or fused into its producer, as a BatchNormalization into the Conv before it) is replaced by the inputs that
    /// node read, back to tensors of nodes still present: so a fused Conv still connects to its consumers.
    pub fn fill_io_from_model(&mut self, model: &ModelProto) {
        let Some(g) = model.graph.as_ref() else {
            return;
        };
        let by_name: HashMap<&str, &crate::onnx::proto::NodeProto> = g
            .node
            .iter()
            .filter_map(|n| n.name.as_deref().filter(|s| !s.is_empty()).map(|s| (s, n)))
            .collect();
        let present: HashSet<String> = self
            .subgraphs
            .iter()
            .flat_map(|sg| sg.nodes.iter().map(|n| n.name.clone()))
            .collect();
        let mut producer: HashMap<&str, &crate::onnx::proto::NodeProto> = HashMap::new();
        for n in &g.node {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                producer.insert(o.as_str(), n);
            }
        }
        let mut memo: HashMap<String, Vec<String>> = HashMap::new();
        for sg in &mut self.subgraphs {
            for node in &mut sg.nodes {
                if let Some(n) = by_name.get(node.name.as_str()) {
                    let mut inputs = Vec::new();
                    for t in n.input.iter().filter(|t| !t.is_empty()) {
                        for r in resolve_input(t, &producer, &present, &mut memo) {
                            if !inputs.contains(&r) {
                                inputs.push(r);
                            }
                        }
                    }
                    node.inputs = inputs;
                    node.outputs = n.output.clone();
                }
            }
        }
    }
}

/// The tensors `t` stands for among nodes still present: itself when a present node (or no node) writes it, else
/// what its removed producer read, recursively. Iterative, so a deep chain of removed nodes cannot overflow the stack.
fn resolve_input(
    t: &str,
    producer: &HashMap<&str, &crate::onnx::proto::NodeProto>,
    present: &HashSet<String>,
    memo: &mut HashMap<String, Vec<String>>,
) -> Vec<String> {
    if let Some(r) = memo.get(t) {
        return r.clone();
    }
    let mut out = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack = vec![t];
    while let Some(x) = stack.pop() {
        if !seen.insert(x) {
            continue;
        }
        match producer.get(x) {
            Some(p) if !p.name.as_deref().is_some_and(|n| present.contains(n)) => {
                stack.extend(p.input.iter().filter(|i| !i.is_empty()).map(String::as_str));
            }
            _ => out.push(x.to_string()),
        }
    }
    memo.insert(t.to_string(), out.clone());
    out
}

/// The device name an EP is reported under: VitisAI → "NPU", CPU → "CPU", others → their name without the
/// "ExecutionProvider" suffix.
pub fn device_name(ep_name: &str) -> String {
    match ep_name {
        VITISAI_EP => "NPU".into(),
        CPU_EP => "CPU".into(),
        other => other
            .strip_suffix("ExecutionProvider")
            .filter(|s| !s.is_empty())
            .unwrap_or(other)
            .to_string(),
    }
}

/// An op type as the EP report writes it: "domain::op" ("::Conv" for the default domain).
pub fn format_op(domain: &str, op_type: &str) -> String {
    let d = if domain == "ai.onnx" { "" } else { domain };
    format!("{d}::{op_type}")
}

/// One `deviceStat` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStat {
    pub name: String,
    #[serde(rename = "nodeNum")]
    pub node_num: usize,
    /// Distinct op types, "domain::op", sorted.
    #[serde(rename = "supportedOpType", default)]
    pub supported_op_type: Vec<String>,
}

/// One per-node entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStat {
    pub name: String,
    /// "domain::op".
    pub op: String,
    /// "NPU", "CPU", ...
    pub device: String,
    /// The EP name as ONNX Runtime gave it.
    #[serde(default)]
    pub ep: String,
    /// Index into `subgraphStat`.
    #[serde(default)]
    pub subgraph: usize,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
}

/// One subgraph entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubgraphStat {
    pub device: String,
    pub ep: String,
    #[serde(rename = "nodeNum")]
    pub node_num: usize,
}

/// A report in the shape of Ryzen AI's `vitisai_ep_report.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpReport {
    /// "all", then "CPU", "NPU", then any other device, by name.
    #[serde(rename = "deviceStat")]
    pub device_stat: Vec<DeviceStat>,
    #[serde(rename = "subgraphStat", default)]
    pub subgraph_stat: Vec<SubgraphStat>,
    #[serde(rename = "nodeStat", default)]
    pub node_stat: Vec<NodeStat>,
    /// Nodes whose tensors are unknown (not matched to the model by name): each stays in the subgraph ONNX Runtime
    /// put it in, unconnected to its neighbours, so the subgraph count may be too high by up to this many.
    #[serde(rename = "nodesWithoutTensors", default)]
    pub nodes_without_tensors: usize,
}

impl EpReport {
    /// Builds the report from ONNX Runtime's assignment info. Subgraphs follow ipuflow's one definition
    /// ([`super::preflight::device_subgraphs`]): maximal connected groups of nodes on one device, so ONNX Runtime's
    /// one-node CPU subgraphs that feed each other count as one. Connections come from the nodes' tensors
    /// ([`EpAssignment::fill_io_from_model`]); nodes of one ONNX Runtime subgraph are always together.
    pub fn from_assignment(a: &EpAssignment) -> EpReport {
        let mut per_device: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
        per_device.insert("CPU".into(), (0, BTreeSet::new()));
        per_device.insert("NPU".into(), (0, BTreeSet::new()));
        let mut all = (0usize, BTreeSet::new());
        let mut report = EpReport::default();
        let flat: Vec<(&AssignedSubgraph, &AssignedNode, String)> = a
            .subgraphs
            .iter()
            .flat_map(|sg| {
                let dev = device_name(&sg.ep_name);
                sg.nodes.iter().map(move |n| (sg, n, dev.clone()))
            })
            .collect();
        let mut unit_of: Vec<usize> = Vec::with_capacity(flat.len());
        for (k, sg) in a.subgraphs.iter().enumerate() {
            unit_of.extend(std::iter::repeat_n(k, sg.nodes.len()));
        }
        let nodes: Vec<GroupNode<'_, &str>> = flat
            .iter()
            .zip(&unit_of)
            .map(|((_, n, dev), &k)| GroupNode {
                device: dev.as_str(),
                unit: Some(k),
                inputs: &n.inputs,
                outputs: &n.outputs,
            })
            .collect();
        let groups = device_subgraphs(&nodes);
        let mut group_of = vec![0usize; flat.len()];
        for (g, members) in groups.iter().enumerate() {
            for &i in members {
                group_of[i] = g;
            }
            let (sg, _, dev) = &flat[members[0]];
            report.subgraph_stat.push(SubgraphStat {
                device: dev.clone(),
                ep: sg.ep_name.clone(),
                node_num: members.len(),
            });
        }
        for (i, (sg, n, dev)) in flat.iter().enumerate() {
            let op = format_op(&n.domain, &n.op_type);
            let entry = per_device.entry(dev.clone()).or_default();
            entry.0 += 1;
            entry.1.insert(op.clone());
            all.0 += 1;
            all.1.insert(op.clone());
            if n.inputs.is_empty() && n.outputs.is_empty() {
                report.nodes_without_tensors += 1;
            }
            report.node_stat.push(NodeStat {
                name: n.name.clone(),
                op,
                device: dev.clone(),
                ep: sg.ep_name.clone(),
                subgraph: group_of[i],
                inputs: n.inputs.clone(),
                outputs: n.outputs.clone(),
            });
        }
        report.device_stat.push(DeviceStat {
            name: "all".into(),
            node_num: all.0,
            supported_op_type: all.1.into_iter().collect(),
        });
        let mut names: Vec<String> = per_device.keys().cloned().collect();
        names.sort_by_key(|n| {
            (
                match n.as_str() {
                    "CPU" => 0,
                    "NPU" => 1,
                    _ => 2,
                },
                n.clone(),
            )
        });
        for name in names {
            let (num, ops) = per_device.remove(&name).unwrap();
            report.device_stat.push(DeviceStat {
                name,
                node_num: num,
                supported_op_type: ops.into_iter().collect(),
            });
        }
        report
    }

    /// Reads a report (one written by the EP, or by [`EpReport::to_json`]). The old device name "DPU" is read as
    /// "NPU". Fields this type does not know are ignored. `InvalidArgument` on malformed JSON.
    pub fn from_json(text: &str) -> Result<EpReport> {
        let mut r: EpReport = serde_json::from_str(text)
            .map_err(|e| Error::invalid_argument(format!("EP report JSON: {e}")))?;
        for d in &mut r.device_stat {
            if d.name == "DPU" {
                d.name = "NPU".into();
            }
        }
        for n in &mut r.node_stat {
            if n.device == "DPU" {
                n.device = "NPU".into();
            }
        }
        for s in &mut r.subgraph_stat {
            if s.device == "DPU" {
                s.device = "NPU".into();
            }
        }
        Ok(r)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The `deviceStat` entry of a device ("all", "CPU", "NPU").
    pub fn device(&self, name: &str) -> Option<&DeviceStat> {
        self.device_stat.iter().find(|d| d.name == name)
    }

    /// Nodes on a device (0 if absent).
    pub fn node_num(&self, device: &str) -> usize {
        self.device(device).map_or(0, |d| d.node_num)
    }

    /// NPU nodes / all nodes, in percent (0 for an empty report).
    pub fn npu_coverage_percent(&self) -> f64 {
        let all = self.node_num("all");
        if all == 0 {
            0.0
        } else {
            (self.node_num("NPU") as f64 * 10000.0 / all as f64).round() / 100.0
        }
    }

    /// The EP's log-style summary: `No. of Operators : NPU 398 CPU 2 | No. of Subgraphs : NPU 1 CPU 1`.
    pub fn summary_line(&self) -> String {
        let ops: Vec<String> = self
            .device_stat
            .iter()
            .filter(|d| d.name != "all")
            .map(|d| format!("{} {}", d.name, d.node_num))
            .collect();
        let mut sg: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.subgraph_stat {
            *sg.entry(s.device.as_str()).or_default() += 1;
        }
        let sgs: Vec<String> = sg.iter().map(|(d, n)| format!("{d} {n}")).collect();
        format!(
            "No. of Operators : {} | No. of Subgraphs : {}",
            ops.join(" "),
            sgs.join(" ")
        )
    }

    /// What the subgraph count of [`EpReport::summary_line`] means, when it is not exact: "" when every node's
    /// tensors are known.
    pub fn subgraph_caveat(&self) -> String {
        if self.nodes_without_tensors == 0 {
            return String::new();
        }
        format!(
            "subgraphs at most: {} node(s) with unknown tensors (not matched to the model by name) counted apart",
            self.nodes_without_tensors
        )
    }
}

/// A node where the prediction and the EP disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disagreement {
    pub name: String,
    pub op: String,
    /// "NPU"/"CPU" as predicted.
    pub predicted: String,
    /// The device in the report.
    pub actual: String,
    /// The pre-flight reason.
    pub predicted_reason: String,
}

/// Compares a pre-flight prediction with a report, node by node (matched by name; nodes absent from either side
/// are skipped: ONNX Runtime's optimizations rename and fuse nodes).
pub fn compare(pred: &Preflight, report: &EpReport) -> Vec<Disagreement> {
    let actual: HashMap<&str, &NodeStat> = report
        .node_stat
        .iter()
        .map(|n| (n.name.as_str(), n))
        .collect();
    let mut out = Vec::new();
    for p in &pred.nodes {
        let Some(a) = actual.get(p.name.as_str()) else {
            continue;
        };
        let predicted = match p.device {
            Device::Npu => "NPU",
            Device::Cpu => "CPU",
        };
        if a.device != predicted {
            out.push(Disagreement {
                name: p.name.clone(),
                op: format_op(&p.domain, &p.op_type),
                predicted: predicted.into(),
                actual: a.device.clone(),
                predicted_reason: p.reason.clone(),
            });
        }
    }
    out
}
