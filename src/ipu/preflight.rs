//! The NPU pre-flight checker: predict, without hardware, where the VitisAI EP would place each node.
//!
//! Given a model (float or QDQ) and a target (X1 or X2), every node of the main graph gets a predicted device (NPU
//! or CPU) and the reason. The rules, in the order they are applied:
//!
//! 1. A float model (no QuantizeLinear/DequantizeLinear) runs wholly on CPU: the NPU runs INT8/INT16 QDQ models (or
//!    BF16 with a `config_file`). Each node still carries `supported_if_quantized`, the verdict of rules 2-8 with
//!    the quantization-specific ones (6, 7) left out.
//! 2. The op must be in the support table (`npu_support.json`) for the target and the node's precision (int8 or
//!    int16, from the zero-point type of the DequantizeLinear nodes feeding it).
//! 3. Attribute rules of the table (a Resize with `mode=linear` → CPU).
//! 4. Every activation the node reads or writes must have a known, fixed shape (dynamic dims → CPU, unknown shape →
//!    CPU "shape unknown"), and batch (dim 0 of tensors of rank ≥ 2) at most `max_batch`.
//! 5. (QDQ models) Every non-constant float input must come from a DequantizeLinear (an unquantized float tensor in an
//!    INT8 flow), and the weight of Conv/Gemm/MatMul must be quantized too. Exception: a Relu/Clip/LeakyRelu reading
//!    the output of a Conv/Gemm/MatMul/Add it alone consumes (the fused pair of the XINT8 format, no Q/DQ between).
//!    A float node the quantizer leaves float by its own rules (an op it does not quantize, layout glue between
//!    float nodes) is said to be that, not an unquantized tensor: what a preset emits is what this checker expects.
//! 6. (X1) Every Q/DQ scale next to the node must be a power of two.
//! 7. Q/DQ nodes follow their neighbours: a Q/DQ node adjacent to an NPU node is fused into the NPU partition.
//! 8. Model-wide: fewer than `minimum_num_of_conv` Conv nodes → everything CPU; more than `max_subgraphs` NPU
//!    subgraphs → everything CPU.
//!
//! Predicted subgraphs are the maximal connected groups of NPU nodes (connected through tensors). `Constant` nodes are
//! treated as initializers (ONNX Runtime folds them) and are not listed. Nodes inside control-flow subgraphs are
//! not looked at. The table is a best-known approximation (see the file); the real placement comes from the EP.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::shapes::{self, TInfo, D};
use super::Target;
use crate::error::{Error, ErrorKind, Result};
use crate::onnx::proto::{ModelProto, NodeProto};

/// The support table shipped with ipuflow (one data file).
pub const BUILTIN_TABLE_JSON: &str = include_str!("npu_support.json");

/// The reason every node of a float model gets.
pub const NOT_QUANTIZED_REASON: &str =
    "model is not quantized: the NPU runs INT8/INT16 QDQ models (or BF16 with config_file)";

/// Where a node is predicted to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Device {
    #[serde(rename = "NPU")]
    Npu,
    #[serde(rename = "CPU")]
    Cpu,
}

/// The precision a node is checked under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Not quantized.
    Float,
    Int8,
    Int16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Float => "float",
            Precision::Int8 => "int8",
            Precision::Int16 => "int16",
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The support table.

/// Model-wide limits of the EP (vaip_config.json knobs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_subgraphs: usize,
    pub minimum_num_of_conv: usize,
    pub max_batch: i64,
    #[serde(default)]
    pub source: String,
}

/// The ops of one precision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpList {
    pub ops: Vec<String>,
    #[serde(default)]
    pub source: String,
}

/// What one target takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetTable {
    #[serde(default)]
    pub devices: String,
    /// Whether Q/DQ scales must be powers of two (XINT8 on X1).
    pub power_of_two_scales: bool,
    /// "int8" / "int16" → ops.
    pub precisions: BTreeMap<String, OpList>,
    #[serde(default)]
    pub source: String,
}

/// An attribute value that sends an otherwise supported op to CPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeRule {
    pub op_type: String,
    pub attribute: String,
    /// The string (or integer, written as a string) value that triggers the rule.
    pub equals: String,
    pub reason: String,
    #[serde(default)]
    pub source: String,
}

/// The NPU support table (see `npu_support.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportTable {
    pub schema: u32,
    #[serde(default)]
    pub about: String,
    #[serde(default)]
    pub sources: Vec<String>,
    pub limits: Limits,
    pub qdq_ops: Vec<String>,
    pub conv_ops: Vec<String>,
    /// "X1" / "X2" → table.
    pub targets: BTreeMap<String, TargetTable>,
    #[serde(default)]
    pub cpu_rules: Vec<AttributeRule>,
}

impl SupportTable {
    /// Parses a table (same format as `npu_support.json`); `InvalidArgument` naming what is wrong.
    pub fn from_json(text: &str) -> Result<SupportTable> {
        let t: SupportTable = serde_json::from_str(text)
            .map_err(|e| Error::invalid_argument(format!("NPU support table: {e}")))?;
        if t.schema != 1 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("NPU support table schema {} (want 1)", t.schema),
            ));
        }
        for (name, tt) in &t.targets {
            Target::parse(name).map_err(|_| {
                Error::invalid_argument(format!("NPU support table: unknown target '{name}'"))
            })?;
            for p in tt.precisions.keys() {
                if p != "int8" && p != "int16" {
                    return Err(Error::invalid_argument(format!(
                        "NPU support table: target {name}: unknown precision '{p}' (int8, int16)"
                    )));
                }
            }
        }
        Ok(t)
    }

    /// The table compiled into ipuflow.
    pub fn builtin() -> &'static SupportTable {
        static TABLE: OnceLock<SupportTable> = OnceLock::new();
        // The embedded file is checked by the crate's tests; a broken one is a build defect.
        TABLE.get_or_init(|| {
            SupportTable::from_json(BUILTIN_TABLE_JSON).expect("embedded npu_support.json is valid")
        })
    }

    /// The ops of a target and precision; `None` when the target has no list for that precision.
    pub fn ops(&self, target: Target, precision: Precision) -> Option<&[String]> {
        self.targets
            .get(target.as_str())
            .and_then(|t| t.precisions.get(precision.as_str()))
            .map(|l| l.ops.as_slice())
    }

    fn power_of_two(&self, target: Target) -> bool {
        self.targets
            .get(target.as_str())
            .is_some_and(|t| t.power_of_two_scales)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Results.

/// The prediction for one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodePrediction {
    /// Position in `graph.node`.
    pub index: usize,
    /// The node's name, or `<op_type>#<index>` when it has none.
    pub name: String,
    pub op_type: String,
    pub domain: String,
    pub device: Device,
    /// Why (for NPU nodes: what made it eligible). Several causes are joined with "; ".
    pub reason: String,
    /// Whether the node would be on the NPU once the model is quantized (for a QDQ model: `device == Npu`).
    pub supported_if_quantized: bool,
    /// The precision the node was checked under (`float` for float models).
    pub precision: Precision,
}

/// A predicted NPU subgraph: a maximal connected group of NPU nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subgraph {
    pub index: usize,
    /// Node indices, ascending.
    pub node_indices: Vec<usize>,
    pub node_names: Vec<String>,
}

/// The whole prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preflight {
    pub target: Target,
    /// Whether the model is a QDQ model.
    pub quantized: bool,
    pub nodes: Vec<NodePrediction>,
    pub subgraphs: Vec<Subgraph>,
    /// For a float model: the subgraphs the quantized model would get (empty for a QDQ model).
    pub subgraphs_if_quantized: Vec<Subgraph>,
    pub total_nodes: usize,
    pub npu_nodes: usize,
    pub cpu_nodes: usize,
    /// NPU nodes / all nodes, in percent.
    pub coverage_percent: f64,
    /// Same, counting neither QuantizeLinear nor DequantizeLinear nodes.
    pub coverage_excluding_qdq_percent: f64,
    /// Model-wide reasons that overrode per-node verdicts (Conv count, subgraph count, not quantized).
    pub model_reasons: Vec<String>,
    /// Remarks: Constant nodes skipped, control-flow subgraphs not inspected, the table's nature.
    pub notes: Vec<String>,
    /// What `total_nodes` counts ([`NODE_COUNT_DEFINITION`], of the file's main graph).
    pub node_count: NodeCount,
}

impl Preflight {
    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The prediction of a node by name.
    pub fn node(&self, name: &str) -> Option<&NodePrediction> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// Which graph a node count is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountedGraph {
    /// The model file's main graph (`inspect`, `check`).
    File,
    /// The graph ONNX Runtime partitioned among execution providers, after its basic optimizations (`run`, the
    /// placement report); it has already folded what the definition leaves out.
    OnnxRuntime,
}

/// ipuflow's one definition of a model's node count, used by `inspect`, `check`, `run` and the placement report.
pub const NODE_COUNT_DEFINITION: &str = "nodes that compute: Constant nodes and nodes computing only from \
                                         constants are not counted (ONNX Runtime folds them before partitioning)";

/// A node count under [`NODE_COUNT_DEFINITION`], saying which graph it is of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCount {
    pub graph: CountedGraph,
    /// The nodes counted.
    pub nodes: usize,
    /// Left out: Constant nodes.
    pub constant_nodes: usize,
    /// Left out: nodes computing only from constants.
    pub folded_nodes: usize,
}

impl NodeCount {
    /// The count of ONNX Runtime's graph (`nodes` as it reported them).
    pub fn onnx_runtime(nodes: usize) -> NodeCount {
        NodeCount {
            graph: CountedGraph::OnnxRuntime,
            nodes,
            constant_nodes: 0,
            folded_nodes: 0,
        }
    }

    /// "328 nodes of the file's main graph (342 Constant and 2 constant-only nodes not counted: ONNX Runtime folds
    /// them)".
    pub fn describe(&self) -> String {
        match self.graph {
            CountedGraph::OnnxRuntime => format!(
                "{} nodes of ONNX Runtime's graph as partitioned (after its basic optimizations, constants folded)",
                self.nodes
            ),
            CountedGraph::File if self.constant_nodes + self.folded_nodes == 0 => {
                format!("{} nodes of the file's main graph", self.nodes)
            }
            CountedGraph::File => format!(
                "{} nodes of the file's main graph ({} Constant and {} constant-only nodes not counted: ONNX \
                 Runtime folds them)",
                self.nodes, self.constant_nodes, self.folded_nodes
            ),
        }
    }
}

/// Counts the nodes of the model file's main graph under [`NODE_COUNT_DEFINITION`] (the nodes the pre-flight
/// predicts). Errors: `ModelInvalid` when the model has no graph.
pub fn count_nodes(model: &ModelProto) -> Result<NodeCount> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::model_invalid("model has no graph"))?;
    let mut consts = shapes::constants(graph);
    let _ = shapes::infer(graph, &mut consts);
    let s = select_nodes(&graph.node, &consts, SupportTable::builtin());
    Ok(NodeCount {
        graph: CountedGraph::File,
        nodes: s.considered.len(),
        constant_nodes: s.constant_nodes,
        folded_nodes: s.folded_nodes,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// The checker.

/// Runs the pre-flight check with the built-in table.
pub fn preflight(model: &ModelProto, target: Target) -> Result<Preflight> {
    preflight_with_table(model, target, SupportTable::builtin())
}

/// Runs the pre-flight check with the built-in table on `model` with `shapes` fixed first (as `quantize` and
/// sessions fix them: [`crate::onnx::apply_input_shapes`]). Errors: those of `apply_input_shapes`, `ModelInvalid`.
pub fn preflight_with_input_shapes(
    model: &ModelProto,
    target: Target,
    shapes: &[crate::onnx::InputShape],
) -> Result<Preflight> {
    if shapes.is_empty() {
        return preflight(model, target);
    }
    let mut m = model.clone();
    crate::onnx::apply_input_shapes(&mut m, shapes)?;
    preflight(&m, target)
}

struct Ctx<'a> {
    nodes: &'a [NodeProto],
    /// Indices of the nodes considered (Constant nodes left out).
    considered: Vec<usize>,
    consts: shapes::Consts<'a>,
    /// Constants and tensors computed from constants only (e.g. a DequantizeLinear of a weight): not activations.
    const_like: HashSet<String>,
    info: HashMap<String, TInfo>,
    producer: HashMap<&'a str, usize>,
    consumers: HashMap<&'a str, Vec<usize>>,
    table: &'a SupportTable,
    target: Target,
    /// Nodes (first output names) the quantizer's output-aware rule left float, from the model's metadata.
    output_tail: HashSet<String>,
}

/// The nodes `quant::output_aware` recorded as left float in a quantized model's metadata.
fn output_tail(model: &ModelProto) -> HashSet<String> {
    model
        .metadata_props
        .iter()
        .filter(|p| p.key.as_deref() == Some(crate::quant::output_aware::METADATA_KEY))
        .filter_map(|p| serde_json::from_str::<Vec<String>>(p.value.as_deref()?).ok())
        .flatten()
        .collect()
}

impl<'a> Ctx<'a> {
    fn is_qdq(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        let d = shapes::domain(n);
        (d.is_empty() || d == "ai.onnx" || d == "com.microsoft")
            && self.table.qdq_ops.iter().any(|q| q == shapes::op(n))
    }
    fn is_op(&self, i: usize, op: &str) -> bool {
        self.is_qdq(i) && shapes::op(&self.nodes[i]) == op
    }
    fn is_const(&self, name: &str) -> bool {
        self.consts.contains(name)
    }
    fn is_const_like(&self, name: &str) -> bool {
        self.const_like.contains(name)
    }
    /// AMD's XINT8 format (and ipuflow's symmetric presets) keep no Q/DQ between a Conv/Gemm and its Relu/Clip: the
    /// pair runs as one fused NPU op. True when node `i` is such an activation and `tensor` is the output of a
    /// compute node read by `i` alone.
    fn fused_activation_input(&self, i: usize, tensor: &str) -> bool {
        let act = shapes::op(&self.nodes[i]);
        if act == "Mul" {
            return self.npu_rescale_input(i, tensor);
        }
        if !matches!(act, "Relu" | "Clip" | "LeakyRelu") {
            return false;
        }
        self.producer_of(tensor).is_some_and(|p| {
            matches!(
                shapes::op(&self.nodes[p]),
                "Conv" | "ConvTranspose" | "Gemm" | "MatMul" | "Add"
            ) && self.consumers_of(tensor) == [i]
        })
    }

    /// AMD's XINT8 NPU mode (`quant::npu_mode`) puts a Mul by a constant scalar right after a pooling, ReduceMean
    /// or HardSigmoid, with no Q/DQ between: the NPU's own fixed-point division, part of the op. True when node `i`
    /// is such a Mul and `tensor` is the output of such an op read by `i` alone.
    fn npu_rescale_input(&self, i: usize, tensor: &str) -> bool {
        let n = &self.nodes[i];
        let other_const = n.input.iter().any(|x| x != tensor && self.is_const(x));
        other_const
            && self.producer_of(tensor).is_some_and(|p| {
                matches!(
                    shapes::op(&self.nodes[p]),
                    "AveragePool" | "GlobalAveragePool" | "ReduceMean" | "HardSigmoid"
                ) && self.consumers_of(tensor) == [i]
            })
    }

    fn producer_of(&self, tensor: &str) -> Option<usize> {
        self.producer.get(tensor).copied()
    }
    fn consumers_of(&self, tensor: &str) -> &[usize] {
        self.consumers
            .get(tensor)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }

    /// The DequantizeLinear nodes feeding node `i` and the QuantizeLinear nodes fed by it.
    fn qdq_neighbours(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let n = &self.nodes[i];
        n.input
            .iter()
            .filter_map(|t| self.producer_of(t))
            .filter(|&p| self.is_op(p, "DequantizeLinear"))
            .chain(
                n.output
                    .iter()
                    .flat_map(|t| self.consumers_of(t).iter().copied())
                    .filter(|&c| self.is_op(c, "QuantizeLinear")),
            )
    }

    /// Precision of a compute node: int16 if any DQ feeding it (or Q fed by it) is 16-bit, else int8.
    fn precision(&self, i: usize) -> Precision {
        for q in self.qdq_neighbours(i) {
            if matches!(self.qdq_elem(q), Some(shapes::INT16 | shapes::UINT16)) {
                return Precision::Int16;
            }
        }
        Precision::Int8
    }

    /// Quantized element type of a Q/DQ node (zero point type; DQ input type; Q default uint8).
    fn qdq_elem(&self, q: usize) -> Option<i32> {
        let n = &self.nodes[q];
        let zp = n
            .input
            .get(2)
            .filter(|s| !s.is_empty())
            .and_then(|z| self.info.get(z))
            .and_then(|t| t.elem);
        if zp.is_some() {
            return zp;
        }
        if shapes::op(n) == "DequantizeLinear" {
            n.input
                .first()
                .and_then(|x| self.info.get(x))
                .and_then(|t| t.elem)
        } else {
            n.output
                .first()
                .and_then(|y| self.info.get(y))
                .and_then(|t| t.elem)
        }
    }

    /// The scales of a Q/DQ node that are not powers of two (empty if all are, or the scale is not constant).
    fn non_pow2_scale(&self, q: usize) -> Option<f32> {
        let n = &self.nodes[q];
        let t = n.input.get(1).and_then(|s| self.consts.get(s))?;
        let vals = shapes::tensor_f32(t)?;
        vals.into_iter().find(|&v| !is_power_of_two(v))
    }

    fn describe_shape_issues(&self, i: usize) -> Vec<String> {
        let n = &self.nodes[i];
        let mut reasons = Vec::new();
        let mut unknown: Vec<&str> = Vec::new();
        let mut integer: Vec<&str> = Vec::new();
        let tensors = n
            .input
            .iter()
            .chain(n.output.iter())
            .filter(|t| !t.is_empty() && !self.is_const_like(t));
        for t in tensors {
            let info = self.info.get(t.as_str());
            if let Some(e) = info.and_then(|x| x.elem) {
                if matches!(e, shapes::INT64 | shapes::INT32 | shapes::BOOL) {
                    integer.push(t);
                }
            }
            match info.and_then(|x| x.shape.as_ref()) {
                None => unknown.push(t),
                Some(s) => {
                    if s.iter().any(|d| !matches!(d, D::Fixed(_))) {
                        reasons.push(format!(
                            "activation '{t}' has a dynamic shape {} (the NPU needs fixed shapes)",
                            shapes::fmt_shape(s)
                        ));
                    } else if s.len() >= 2 {
                        if let D::Fixed(b) = s[0] {
                            if b > self.table.limits.max_batch {
                                reasons.push(format!(
                                    "batch {b} > {} on '{t}' (the NPU runs batch {})",
                                    self.table.limits.max_batch, self.table.limits.max_batch
                                ));
                            }
                        }
                    }
                }
            }
        }
        if !integer.is_empty() {
            reasons.insert(
                0,
                format!(
                    "works on integer tensor(s) {} (shape computation, not NPU work)",
                    integer
                        .iter()
                        .map(|t| format!("'{t}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        match unknown.len() {
            0 => {}
            1 => reasons.push(format!(
                "shape of activation '{}' is unknown (no value_info, not inferable here; run shape inference)",
                unknown[0]
            )),
            _ => reasons.push(format!(
                "shapes of activations {} are unknown (no value_info, not inferable here; run shape inference)",
                unknown.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
            )),
        }
        reasons
    }

    /// Rules 2-6 for one compute node. `quantized` = apply the QDQ-only rules (5, 6).
    fn check_compute(&self, i: usize, quantized: bool) -> (bool, Vec<String>, Precision) {
        let precision = if quantized {
            self.precision(i)
        } else {
            Precision::Int8
        };
        let mut reasons = self.op_support_reasons(i, precision);
        reasons.extend(self.describe_shape_issues(i));
        let in_tail = self.nodes[i]
            .output
            .first()
            .is_some_and(|o| self.output_tail.contains(o));
        if quantized && in_tail {
            // Float on purpose (`quant::output_aware`), whatever its inputs: it runs on the CPU.
            reasons.push(
                "left in float by the quantizer (output-aware tail: a mixed-range Concat or small score output and \
                 what depends on it, see the quantization report): a float node runs on the CPU"
                    .into(),
            );
        } else if quantized {
            let unquantized = self.unquantized_input_reasons(i);
            match self.float_by_choice(i) {
                // What the quantizer chose (an op it has no rule for, or layout glue between float nodes) is said
                // as such, not as an unquantized tensor in an INT8 flow, which reads as a format error of a preset.
                Some(why) if !unquantized.is_empty() => reasons.push(format!(
                    "left in float by the quantizer ({why}): a float node runs on the CPU"
                )),
                _ => reasons.extend(unquantized),
            }
            reasons.extend(self.power_of_two_reasons(i));
        }
        dedup(&mut reasons);
        (reasons.is_empty(), reasons, precision)
    }

    /// Why ipuflow's quantizer leaves node `i` float whatever the preset (its own rules, `quant::qdq::rules`):
    /// an op it has no rule for, or a layout op, quantized only between quantized nodes. `None` for an op it
    /// quantizes on its own, where a float input is a format mismatch worth reporting.
    fn float_by_choice(&self, i: usize) -> Option<String> {
        use crate::quant::qdq::rules::{decide, Decision, OutRule};
        let preset = crate::quant::QuantConfig::preset(crate::quant::Preset::A8W8);
        match decide(&self.nodes[i], &preset) {
            Decision::Float(why) => Some(why),
            Decision::Quantize(r) if r.outputs == OutRule::ShareInput => Some(format!(
                "{} is quantized only between quantized nodes",
                shapes::op(&self.nodes[i])
            )),
            Decision::Quantize(_) => None,
        }
    }

    /// Rules 2 and 3: the op's domain, its entry in the support table, and the table's attribute rules.
    fn op_support_reasons(&self, i: usize, precision: Precision) -> Vec<String> {
        let n = &self.nodes[i];
        let op = shapes::op(n);
        let mut reasons = Vec::new();
        if !shapes::is_default_domain(n) {
            reasons.push(format!(
                "op '{}::{op}' is outside the ONNX domain; the NPU table lists ONNX ops only",
                shapes::domain(n)
            ));
            return reasons;
        }
        match self.table.ops(self.target, precision) {
            None => reasons.push(format!(
                "target {} has no {} op table ({} activations are not taken on this target)",
                self.target,
                precision.as_str(),
                precision.as_str()
            )),
            Some(ops) if !ops.iter().any(|o| o == op) => reasons.push(format!(
                "op {op} is not in the NPU support table for {} {}",
                self.target,
                precision.as_str()
            )),
            Some(_) => {}
        }
        for rule in &self.table.cpu_rules {
            if rule.op_type == op {
                let val = shapes::attr(n, &rule.attribute).map(|a| {
                    a.s.as_ref()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .or(a.i.map(|v| v.to_string()))
                        .unwrap_or_default()
                });
                if val.as_deref() == Some(rule.equals.as_str()) {
                    reasons.push(rule.reason.clone());
                }
            }
        }
        reasons
    }

    /// Rule 5: every non-constant float input comes from a DequantizeLinear (or is the fused activation's input),
    /// and a Conv/Gemm/MatMul weight is quantized.
    fn unquantized_input_reasons(&self, i: usize) -> Vec<String> {
        let n = &self.nodes[i];
        let op = shapes::op(n);
        let mut reasons = Vec::new();
        for (k, t) in n.input.iter().enumerate() {
            if t.is_empty() {
                continue;
            }
            let from_dq = self
                .producer_of(t)
                .is_some_and(|p| self.is_op(p, "DequantizeLinear"));
            if from_dq || (k == 0 && self.fused_activation_input(i, t)) {
                continue;
            }
            let elem = self.info.get(t.as_str()).and_then(|x| x.elem);
            if self.is_const(t) {
                let is_weight =
                    k == 1 && matches!(op, "Conv" | "ConvTranspose" | "Gemm" | "MatMul");
                if is_weight && elem.is_none_or(shapes::is_float_type) {
                    reasons.push(format!(
                        "weight '{t}' is an unquantized float initializer (no DequantizeLinear) in an INT8 flow"
                    ));
                }
                continue;
            }
            match elem {
                Some(e) if !shapes::is_float_type(e) => {}
                Some(_) => reasons.push(format!(
                    "input '{t}' is an unquantized float tensor (it does not come from a DequantizeLinear) in an \
                     INT8 flow"
                )),
                None => reasons.push(format!(
                    "input '{t}' does not come from a DequantizeLinear and its type is unknown (unquantized \
                     tensor in an INT8 flow?)"
                )),
            }
        }
        reasons
    }

    /// Rule 6: on a power-of-two target, every Q/DQ scale next to the node is a power of two.
    fn power_of_two_reasons(&self, i: usize) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.table.power_of_two(self.target) {
            return reasons;
        }
        for q in self.qdq_neighbours(i) {
            if let Some(s) = self.non_pow2_scale(q) {
                reasons.push(format!(
                    "scale {s} of {} '{}' is not a power of two (target {} needs power-of-two scales: XINT8)",
                    shapes::op(&self.nodes[q]),
                    display_name(&self.nodes[q], q),
                    self.target
                ));
            }
        }
        reasons
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

fn display_name(n: &NodeProto, i: usize) -> String {
    match n.name.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => format!("{}#{i}", shapes::op(n)),
    }
}

/// Whether `v` is ±2^k (k any integer) — what XINT8 scales are.
pub fn is_power_of_two(v: f32) -> bool {
    if !v.is_finite() || v == 0.0 {
        return false;
    }
    let bits = v.abs().to_bits();
    let exp = bits >> 23;
    let man = bits & 0x7F_FFFF;
    if exp == 0 {
        man.is_power_of_two() // subnormal
    } else {
        man == 0
    }
}

/// One verdict per considered node, before model-wide rules.
struct Verdict {
    npu: bool,
    reasons: Vec<String>,
    precision: Precision,
}

fn assign(ctx: &Ctx, quantized: bool) -> HashMap<usize, Verdict> {
    let mut v = assign_compute(ctx, quantized);
    // Q/DQ nodes follow the compute nodes they serve:
    //  a. a DequantizeLinear goes with the NPU if it feeds an NPU compute node (an input or weight of it);
    //  b. a QuantizeLinear goes with the NPU if an NPU compute node produces its input, or if it feeds a
    //     DequantizeLinear taken in (a) (e.g. the model's input quantization);
    //  c. a DequantizeLinear that feeds no node (a graph output) follows the QuantizeLinear before it.
    // Everything else stays on CPU next to the CPU nodes it serves.
    let qdq: Vec<usize> = ctx
        .considered
        .iter()
        .copied()
        .filter(|&i| ctx.is_qdq(i))
        .collect();
    let mut qv = qdq_scale_refusals(ctx, quantized, &qdq);
    qdq_follow_consumers(ctx, &v, &qdq, &mut qv);
    qdq_follow_producers(ctx, &v, &qdq, &mut qv);
    qdq_rest(ctx, &qdq, &mut qv);
    for (q, (npu, reason)) in qv {
        let elem = ctx.qdq_elem(q);
        let precision = if matches!(elem, Some(shapes::INT16 | shapes::UINT16)) {
            Precision::Int16
        } else {
            Precision::Int8
        };
        v.insert(
            q,
            Verdict {
                npu,
                reasons: vec![reason],
                precision,
            },
        );
    }
    v
}

/// Verdicts of the compute (non-Q/DQ) nodes.
fn assign_compute(ctx: &Ctx, quantized: bool) -> HashMap<usize, Verdict> {
    let mut v: HashMap<usize, Verdict> = HashMap::new();
    for &i in &ctx.considered {
        if ctx.is_qdq(i) {
            continue;
        }
        let (npu, reasons, precision) = ctx.check_compute(i, quantized);
        v.insert(
            i,
            Verdict {
                npu,
                reasons,
                precision,
            },
        );
    }
    v
}

/// Whether compute node `i` is on the NPU.
fn compute_npu(ctx: &Ctx, v: &HashMap<usize, Verdict>, i: usize) -> bool {
    !ctx.is_qdq(i) && v.get(&i).is_some_and(|x| x.npu)
}

/// Q/DQ nodes refused for their own non-power-of-two scale (power-of-two targets only).
fn qdq_scale_refusals(ctx: &Ctx, quantized: bool, qdq: &[usize]) -> HashMap<usize, (bool, String)> {
    let mut qv: HashMap<usize, (bool, String)> = HashMap::new();
    for &q in qdq {
        let own_scale = if quantized && ctx.table.power_of_two(ctx.target) {
            ctx.non_pow2_scale(q)
        } else {
            None
        };
        if let Some(s) = own_scale {
            qv.insert(
                q,
                (
                    false,
                    format!("scale {s} is not a power of two (target {} needs power-of-two scales: XINT8)", ctx.target),
                ),
            );
        }
    }
    qv
}

/// (a) a DequantizeLinear feeding an NPU compute node goes with it.
fn qdq_follow_consumers(
    ctx: &Ctx,
    v: &HashMap<usize, Verdict>,
    qdq: &[usize],
    qv: &mut HashMap<usize, (bool, String)>,
) {
    for &q in qdq.iter().filter(|&&q| ctx.is_op(q, "DequantizeLinear")) {
        if qv.contains_key(&q) {
            continue;
        }
        let out = ctx.nodes[q]
            .output
            .first()
            .map(String::as_str)
            .unwrap_or("");
        if let Some(&c) = ctx
            .consumers_of(out)
            .iter()
            .find(|&&c| compute_npu(ctx, v, c))
        {
            qv.insert(
                q,
                (
                    true,
                    format!(
                        "dequantizes an input of NPU node '{}'",
                        display_name(&ctx.nodes[c], c)
                    ),
                ),
            );
        }
    }
}

/// (b) a QuantizeLinear after an NPU compute node, or feeding a DequantizeLinear taken in (a), goes with them.
fn qdq_follow_producers(
    ctx: &Ctx,
    v: &HashMap<usize, Verdict>,
    qdq: &[usize],
    qv: &mut HashMap<usize, (bool, String)>,
) {
    for &q in qdq.iter().filter(|&&q| ctx.is_op(q, "QuantizeLinear")) {
        if qv.contains_key(&q) {
            continue;
        }
        let n = &ctx.nodes[q];
        let producer = n.input.first().and_then(|t| ctx.producer_of(t));
        if let Some(p) = producer.filter(|&p| compute_npu(ctx, v, p)) {
            qv.insert(
                q,
                (
                    true,
                    format!(
                        "quantizes the output of NPU node '{}'",
                        display_name(&ctx.nodes[p], p)
                    ),
                ),
            );
            continue;
        }
        let out = n.output.first().map(String::as_str).unwrap_or("");
        if let Some(&d) = ctx
            .consumers_of(out)
            .iter()
            .find(|&&d| qv.get(&d).is_some_and(|x| x.0))
        {
            qv.insert(
                q,
                (
                    true,
                    format!("feeds '{}' on the NPU", display_name(&ctx.nodes[d], d)),
                ),
            );
        }
    }
}

/// (c) a DequantizeLinear of a graph output follows its QuantizeLinear; every other Q/DQ node stays on the CPU.
fn qdq_rest(ctx: &Ctx, qdq: &[usize], qv: &mut HashMap<usize, (bool, String)>) {
    for &q in qdq {
        if qv.contains_key(&q) {
            continue;
        }
        let n = &ctx.nodes[q];
        let out = n.output.first().map(String::as_str).unwrap_or("");
        let producer = n.input.first().and_then(|t| ctx.producer_of(t));
        let entry = match producer {
            Some(p)
                if ctx.is_op(q, "DequantizeLinear")
                    && ctx.consumers_of(out).is_empty()
                    && qv.get(&p).is_some_and(|x| x.0) =>
            {
                (
                    true,
                    format!(
                        "dequantizes a graph output after '{}' on the NPU",
                        display_name(&ctx.nodes[p], p)
                    ),
                )
            }
            _ => (
                false,
                "serves no NPU node: stays with its CPU neighbours".to_string(),
            ),
        };
        qv.insert(q, entry);
    }
}

fn components(ctx: &Ctx, npu: &HashSet<usize>) -> Vec<Vec<usize>> {
    let mut sorted: Vec<usize> = npu.iter().copied().collect();
    sorted.sort();
    let nodes: Vec<GroupNode<'_, ()>> = sorted
        .iter()
        .map(|&i| GroupNode {
            device: (),
            unit: None,
            inputs: &ctx.nodes[i].input,
            outputs: &ctx.nodes[i].output,
        })
        .collect();
    device_subgraphs(&nodes)
        .into_iter()
        .map(|g| g.into_iter().map(|k| sorted[k]).collect())
        .collect()
}

/// A node as [`device_subgraphs`] sees it.
pub struct GroupNode<'a, D> {
    /// Where it runs.
    pub device: D,
    /// Nodes with the same `Some(unit)` are one group whatever their tensors say (an execution provider's compiled
    /// partition, whose inner tensors ONNX Runtime does not report).
    pub unit: Option<usize>,
    pub inputs: &'a [String],
    pub outputs: &'a [String],
}

/// ipuflow's one definition of a subgraph, used by the pre-flight (the 32-subgraph rule) and by the placement
/// report of a session: a maximal connected group of nodes placed on the same device, two nodes being connected
/// when one reads a tensor the other writes. Returns the groups as indices into `nodes`, each ascending, ordered by
/// their first node.
pub fn device_subgraphs<D: PartialEq>(nodes: &[GroupNode<'_, D>]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        let mut c = x;
        while p[c] != r {
            let next = p[c];
            p[c] = r;
            c = next;
        }
        r
    }
    fn union(p: &mut [usize], a: usize, b: usize) {
        let (ra, rb) = (find(p, a), find(p, b));
        if ra != rb {
            p[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut first_of_unit: HashMap<usize, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            producer.insert(o.as_str(), i);
        }
        if let Some(u) = n.unit {
            let first = *first_of_unit.entry(u).or_insert(i);
            union(&mut parent, first, i);
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        for t in n.inputs.iter().filter(|t| !t.is_empty()) {
            if let Some(&p) = producer.get(t.as_str()) {
                if nodes[p].device == n.device {
                    union(&mut parent, i, p);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..nodes.len() {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().collect();
    out.sort_by_key(|g| g[0]);
    out
}

fn to_subgraphs(ctx: &Ctx, groups: &[Vec<usize>]) -> Vec<Subgraph> {
    groups
        .iter()
        .enumerate()
        .map(|(k, g)| Subgraph {
            index: k,
            node_indices: g.clone(),
            node_names: g.iter().map(|&i| display_name(&ctx.nodes[i], i)).collect(),
        })
        .collect()
}

/// Applies rule 8 to a verdict map; returns the model-wide reason if one fired, and the subgraphs.
fn model_rules(ctx: &Ctx, v: &mut HashMap<usize, Verdict>) -> (Option<String>, Vec<Vec<usize>>) {
    let conv_count = ctx
        .considered
        .iter()
        .filter(|&&i| {
            shapes::is_default_domain(&ctx.nodes[i])
                && ctx
                    .table
                    .conv_ops
                    .iter()
                    .any(|c| c == shapes::op(&ctx.nodes[i]))
        })
        .count();
    let min_conv = ctx.table.limits.minimum_num_of_conv;
    let fired = if conv_count < min_conv {
        Some(format!(
            "model has {conv_count} Conv node(s): the EP leaves models with fewer than {min_conv} on CPU \
             (vaip_config minimum_num_of_conv)"
        ))
    } else {
        let npu: HashSet<usize> = v.iter().filter(|(_, x)| x.npu).map(|(&i, _)| i).collect();
        let groups = components(ctx, &npu);
        let max = ctx.table.limits.max_subgraphs;
        if groups.len() > max {
            Some(format!(
                "the NPU part would split into {} subgraphs, more than {max} (vaip_config dpu_subgraph_num): the EP \
                 runs the whole model on CPU",
                groups.len()
            ))
        } else {
            return (None, groups);
        }
    };
    let reason = fired.clone().unwrap();
    for x in v.values_mut() {
        if x.npu {
            x.npu = false;
            x.reasons = vec![reason.clone()];
        } else {
            x.reasons.push(reason.clone());
        }
    }
    (fired, Vec::new())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs the pre-flight check with a given table.
///
/// Errors: `ModelInvalid` when the model has no graph.
pub fn preflight_with_table(
    model: &ModelProto,
    target: Target,
    table: &SupportTable,
) -> Result<Preflight> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::model_invalid("model has no graph"))?;
    let mut consts = shapes::constants(graph);
    let info = shapes::infer(graph, &mut consts);
    let nodes = graph.node.as_slice();
    let selected = select_nodes(nodes, &consts, table);
    let notes = selection_notes(&selected);
    let node_count = NodeCount {
        graph: CountedGraph::File,
        nodes: selected.considered.len(),
        constant_nodes: selected.constant_nodes,
        folded_nodes: selected.folded_nodes,
    };
    let (producer, consumers) = edges(nodes, &selected.considered);
    let ctx = Ctx {
        nodes,
        considered: selected.considered,
        consts,
        const_like: selected.const_like,
        info,
        producer,
        consumers,
        table,
        target,
        output_tail: output_tail(model),
    };
    let quantized = ctx.considered.iter().any(|&i| ctx.is_qdq(i));
    let (verdicts, subgraphs, subgraphs_if_quantized, model_reasons) = verdicts(&ctx, quantized);
    let preds = predictions(&ctx, verdicts, quantized);
    let mut p = totals(
        &ctx,
        preds,
        quantized,
        subgraphs,
        subgraphs_if_quantized,
        model_reasons,
        notes,
    );
    p.node_count = node_count;
    Ok(p)
}

/// The nodes the prediction looks at, and what it leaves out.
struct Selection {
    /// Indices of the nodes considered.
    considered: Vec<usize>,
    /// Constants and tensors computed from constants only (e.g. a DequantizeLinear of a weight): not activations.
    const_like: HashSet<String>,
    constant_nodes: usize,
    folded_nodes: usize,
    has_subgraphs: bool,
}

/// Leaves out Constant nodes and what is computed from constants only: ONNX Runtime folds such nodes before
/// partitioning (except Q/DQ, which it keeps for the QDQ fusion).
fn select_nodes(
    nodes: &[NodeProto],
    consts: &shapes::Consts<'_>,
    table: &SupportTable,
) -> Selection {
    let is_qdq_node = |n: &NodeProto| {
        matches!(shapes::domain(n), "" | "ai.onnx" | "com.microsoft")
            && table.qdq_ops.iter().any(|q| q == shapes::op(n))
    };
    let mut const_like: HashSet<String> = consts
        .base
        .keys()
        .chain(consts.folded.keys())
        .cloned()
        .collect();
    let mut considered = Vec::new();
    let (mut constant_nodes, mut folded_nodes) = (0usize, 0usize);
    let mut has_subgraphs = false;
    for (i, n) in nodes.iter().enumerate() {
        if shapes::op(n) == "Constant" && shapes::is_default_domain(n) {
            constant_nodes += 1;
            continue;
        }
        if n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
        {
            has_subgraphs = true;
        }
        let ins: Vec<&String> = n.input.iter().filter(|t| !t.is_empty()).collect();
        let from_consts = !ins.is_empty() && ins.iter().all(|t| const_like.contains(t.as_str()));
        if from_consts {
            const_like.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
        }
        let outs_folded = !n.output.is_empty() && n.output.iter().all(|o| consts.is_folded(o));
        if !is_qdq_node(n)
            && (from_consts || outs_folded)
            && n.attribute.iter().all(|a| a.g.is_none())
        {
            const_like.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
            folded_nodes += 1;
            continue;
        }
        considered.push(i);
    }
    Selection {
        considered,
        const_like,
        constant_nodes,
        folded_nodes,
        has_subgraphs,
    }
}

fn selection_notes(s: &Selection) -> Vec<String> {
    let mut notes = Vec::new();
    if s.constant_nodes > 0 {
        notes.push(format!(
            "{} Constant node(s) treated as initializers (ONNX Runtime folds them); not counted",
            s.constant_nodes
        ));
    }
    if s.folded_nodes > 0 {
        notes.push(format!(
            "{} node(s) computing only from constants (shape arithmetic) are folded by ONNX Runtime before \
             partitioning; not counted",
            s.folded_nodes
        ));
    }
    if s.has_subgraphs {
        notes.push("nodes inside control-flow subgraphs (If/Loop/Scan) were not inspected".into());
    }
    notes.push(
        "prediction from ipuflow's NPU support table, a best-known approximation; the EP decides"
            .into(),
    );
    notes
}

/// Producer and consumers of every tensor among the considered nodes.
#[allow(clippy::type_complexity)]
fn edges<'a>(
    nodes: &'a [NodeProto],
    considered: &[usize],
) -> (HashMap<&'a str, usize>, HashMap<&'a str, Vec<usize>>) {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for &i in considered {
        for o in nodes[i].output.iter().filter(|o| !o.is_empty()) {
            producer.insert(o.as_str(), i);
        }
        for t in nodes[i].input.iter().filter(|t| !t.is_empty()) {
            consumers.entry(t.as_str()).or_default().push(i);
        }
    }
    (producer, consumers)
}

/// Per-node verdicts after the model-wide rules, the subgraphs (of the model, or of the model once quantized) and
/// the model-wide reasons.
fn verdicts(
    ctx: &Ctx,
    quantized: bool,
) -> (
    HashMap<usize, Verdict>,
    Vec<Subgraph>,
    Vec<Subgraph>,
    Vec<String>,
) {
    let mut model_reasons = Vec::new();
    if quantized {
        let mut v = assign(ctx, true);
        let (fired, groups) = model_rules(ctx, &mut v);
        model_reasons.extend(fired);
        (v, to_subgraphs(ctx, &groups), Vec::new(), model_reasons)
    } else {
        let mut v = assign(ctx, false);
        let (fired, groups) = model_rules(ctx, &mut v);
        if let Some(f) = fired {
            model_reasons.push(format!("if quantized: {f}"));
        }
        model_reasons.insert(0, NOT_QUANTIZED_REASON.to_string());
        (v, Vec::new(), to_subgraphs(ctx, &groups), model_reasons)
    }
}

/// One prediction per considered node, in graph order.
fn predictions(
    ctx: &Ctx,
    mut verdicts: HashMap<usize, Verdict>,
    quantized: bool,
) -> Vec<NodePrediction> {
    let mut preds = Vec::with_capacity(ctx.considered.len());
    for &i in &ctx.considered {
        let n = &ctx.nodes[i];
        let x = verdicts
            .remove(&i)
            .expect("every considered node has a verdict");
        let joined = x.reasons.join("; ");
        let (device, reason, supported_if_quantized, precision) = if quantized {
            let reason = if x.npu && !ctx.is_qdq(i) {
                format!(
                    "{} is in the NPU support table for {} {}",
                    shapes::op(n),
                    ctx.target,
                    x.precision.as_str()
                )
            } else {
                joined
            };
            (
                if x.npu { Device::Npu } else { Device::Cpu },
                reason,
                x.npu,
                x.precision,
            )
        } else {
            let after = if x.npu {
                "supported".to_string()
            } else {
                joined
            };
            (
                Device::Cpu,
                format!("{NOT_QUANTIZED_REASON}; if quantized: {after}"),
                x.npu,
                Precision::Float,
            )
        };
        preds.push(NodePrediction {
            index: i,
            name: display_name(n, i),
            op_type: shapes::op(n).to_string(),
            domain: shapes::domain(n).to_string(),
            device,
            reason,
            supported_if_quantized,
            precision,
        });
    }
    preds
}

/// The whole prediction with its counts and coverage.
fn totals(
    ctx: &Ctx,
    preds: Vec<NodePrediction>,
    quantized: bool,
    subgraphs: Vec<Subgraph>,
    subgraphs_if_quantized: Vec<Subgraph>,
    model_reasons: Vec<String>,
    notes: Vec<String>,
) -> Preflight {
    let total = preds.len();
    let npu = preds.iter().filter(|p| p.device == Device::Npu).count();
    let non_qdq: Vec<&NodePrediction> = preds.iter().filter(|p| !ctx.is_qdq(p.index)).collect();
    let npu_non_qdq = non_qdq.iter().filter(|p| p.device == Device::Npu).count();
    let pct = |a: usize, b: usize| {
        if b == 0 {
            0.0
        } else {
            round2(a as f64 * 100.0 / b as f64)
        }
    };
    let coverage_excluding_qdq_percent = pct(npu_non_qdq, non_qdq.len());
    Preflight {
        target: ctx.target,
        quantized,
        subgraphs,
        subgraphs_if_quantized,
        total_nodes: total,
        npu_nodes: npu,
        cpu_nodes: total - npu,
        coverage_percent: pct(npu, total),
        coverage_excluding_qdq_percent,
        nodes: preds,
        model_reasons,
        notes,
        node_count: NodeCount {
            graph: CountedGraph::File,
            nodes: total,
            constant_nodes: 0,
            folded_nodes: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_holds_the_facts() {
        let t = SupportTable::builtin();
        assert_eq!(t.limits.max_subgraphs, 32);
        assert_eq!(t.limits.minimum_num_of_conv, 2);
        for target in [Target::X1, Target::X2] {
            let ops = t.ops(target, Precision::Int8).unwrap();
            for absent in ["ConvTranspose", "Sigmoid", "Split", "Gather"] {
                assert!(
                    !ops.iter().any(|o| o == absent),
                    "{absent} must not be in {target} int8"
                );
            }
            assert!(ops.iter().any(|o| o == "Conv"));
        }
        assert!(t.ops(Target::X1, Precision::Int16).is_none());
        assert!(t.ops(Target::X2, Precision::Int16).is_some());
    }

    #[test]
    fn powers_of_two() {
        for v in [1.0f32, 0.5, 0.25, 2.0, 1024.0, 2f32.powi(-20), -0.125] {
            assert!(is_power_of_two(v), "{v}");
        }
        for v in [0.0f32, 0.3, 0.0123, 3.0, f32::NAN, f32::INFINITY] {
            assert!(!is_power_of_two(v), "{v}");
        }
    }
}
