//! QDQ emission: a prepared float model + calibration ranges + a configuration -> a QDQ model and a report.
//!
//! The transformation, in order:
//! 1. Checks: the model is not already quantized, its default-domain opset is within [`MIN_OPSET`, `MAX_OPSET`];
//!    `Constant` nodes become initializers; an opset below 13 is raised to 13 ([`opset`]).
//! 2. Per-node rules ([`rules`]): which inputs are activations, weights, biases; exclusions; ops kept float.
//! 3. Relu/Clip fusion: an activation whose lower bound is 0 directly after a quantized producer (single consumer,
//!    not a graph output) is folded: with asymmetric activations the node is removed and the producer's output is
//!    quantized with the activation's range (zero point = qmin, so saturation *is* the ReLU: exact); with
//!    symmetric activations the node stays and the Q/DQ between producer and activation is dropped.
//! 4. Layout ops, MaxPool and Resize are quantized only next to quantized nodes, with their input's parameters;
//!    Concat optionally shares one scale across inputs and output. Shared parameters come from the union of the
//!    members' ranges.
//! 5. Emission: one `QuantizeLinear` right after the producer (graph inputs: at the start), `DequantizeLinear` for
//!    the consumers (one shared, or one per consumer node with `cpu_fusion`, so every QDQ node group has its own
//!    DQ as ONNX Runtime's fusions require); every consumer of a quantized tensor, float ones included, reads a DQ
//!    output, so a quantized producer feeds only its Q node. Graph outputs keep their names and float type (the
//!    last DQ writes them). Weights and biases become integer initializers feeding DQ nodes.
//!    16-bit Q/DQ use the `com.microsoft` domain below opset 21 (ONNX Runtime's contrib Q/DQ accept int16/uint16).
//!
//! Choices worth knowing:
//! - Biases ([`QuantConfig::bias_type`]): XINT8 writes INT8 with a power-of-two scale of its own, the smallest that
//!   saturates no value (AMD's XINT8 format; the accumulator scale would saturate many, and the report counts
//!   them per bias); the other presets write INT32 at the accumulator scale (exact, and what ONNX Runtime's CPU
//!   kernels fuse). INT32 overflow guard: see [`weights`].
//! - With `cpu_fusion` (the CPU preset) each consumer gets its own DQ while the producer feeds exactly one Q: ONNX
//!   Runtime's selectors need "target node -> single Q" and "DQ -> single target"; measured on the three real models,
//!   every Conv/Gemm/MatMul then becomes QLinearConv/QGemm/QLinearMatMul. (ORT's own `DedicatedQDQPair` duplicates
//!   the Q as well, which would give the producer several Q consumers and block its fusion.)
//! - ConvTranspose and Gemm with alpha/beta != 1 are quantized (valid QDQ) but ONNX Runtime's x86 CPU provider has
//!   no fused kernel for them; on the CPU they run as DQ -> float op -> Q.
//! - Activation power-of-two scales are rounded up (never clip the calibrated range); choosing the range is
//!   calibration's job. Weights take the power-of-two shift of least error with `WeightRange::MinMse` (XINT8).

pub(crate) mod clamp_record;
pub mod exclude;
pub(crate) mod opset;
pub mod rules;
pub mod scale;
pub mod weights;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::{Error, ErrorKind, Result};
use crate::onnx::proto::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
};
use crate::quant::output_aware::FloatTail;
use crate::quant::report::{NodeReport, QuantReport, TensorReport};
use crate::quant::{BiasType, Calibration, QuantConfig, QuantType};

use crate::onnx::node::{default_opset, op};
use crate::onnx::DataType;
use rules::{Decision, OutRule, Slot};
use scale::{tensor_params, QParams};
use weights::{
    f32_tensor, int_tensor, quantize_bias, quantize_weight, read_f32, QBias, QWeight, WeightSpec,
};

/// Lowest default-domain opset accepted (QuantizeLinear/DequantizeLinear exist from 10).
pub const MIN_OPSET: i64 = 10;
/// Highest default-domain opset accepted (the newest ONNX Runtime 1.32 knows fully).
pub const MAX_OPSET: i64 = 23;
/// First opset with standard 16-bit QuantizeLinear/DequantizeLinear.
pub const OPSET_QDQ16: i64 = 21;
pub const MS_DOMAIN: &str = "com.microsoft";

/// Ops that mean the model is already quantized.
const QUANTIZED_OPS: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "ConvInteger",
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "QGemm",
    "QAttention",
    "DynamicQuantizeMatMul",
    "DynamicQuantizeLSTM",
];

/// Quantizes a prepared float model (BatchNorm folded, constants folded) with the calibrated ranges `calib` as
/// `config` says. Returns the QDQ model and what was done, node by node and tensor by tensor.
///
/// Errors: `Unsupported` for an already-quantized model (naming a node), an opset outside
/// [`MIN_OPSET`]..=[`MAX_OPSET`] or a node that cannot be carried to opset 13; `InvalidArgument` for a bad
/// configuration; `Calibration` when a tensor that must be quantized has no range at all; `ModelInvalid` for
/// inconsistent models.
pub fn quantize_graph(
    prepared: &ModelProto,
    calib: &Calibration,
    config: &QuantConfig,
) -> Result<(ModelProto, QuantReport)> {
    config.validate()?;
    let mut model = prepared.clone();
    let opset_in = default_opset(&model)?;
    let g = model
        .graph
        .as_mut()
        .ok_or_else(|| Error::model_invalid("the model has no graph"))?;
    refuse_quantized(g)?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset_in) {
        return Err(Error::unsupported(format!(
            "default-domain opset {opset_in} is not supported for quantization (supported: {MIN_OPSET} to {MAX_OPSET})"
        )));
    }
    let mut names = all_names(g);
    let mut report = QuantReport {
        preset: config.preset.name().to_string(),
        opset_in,
        opset_out: opset_in.max(opset::TARGET),
        ..Default::default()
    };
    constants_to_initializers(g, &mut report.notes)?;
    if opset_in < opset::TARGET {
        let notes = opset::upgrade(g, opset_in, &mut names)?;
        report.notes.push(format!(
            "default-domain opset raised from {opset_in} to {}",
            opset::TARGET
        ));
        report.notes.extend(notes);
    }
    let opset_out = report.opset_out;
    if config.cpu_fusion && opset_out >= 14 {
        let n = rules::cpu_fuse_hardswish(g);
        if n > 0 {
            report.notes.push(format!("{n} x * HardSigmoid(x) gates put back together as HardSwish for ONNX Runtime's CPU provider (rules::cpu_fuse_hardswish)"));
        }
    }
    let tail = crate::quant::output_aware::plan(g, calib, config);
    let widened = tail.widen(calib);
    let calib = widened.as_ref().unwrap_or(calib);
    let mut q = Quantizer::new(g, calib, config, names, opset_out);
    q.run(&mut report, &tail)?;
    let used16 = q.used_ms16;
    let folded = std::mem::take(&mut q.folded_clamps);
    drop(q);
    record_float_tail(&mut model, &tail.nodes);
    clamp_record::record(&mut model, &folded);
    if let Some(g) = model.graph.as_mut() {
        report
            .notes
            .extend(crate::quant::npu_mode::apply(g, calib, config));
    }
    // Opset imports and IR version.
    for o in model.opset_import.iter_mut() {
        if matches!(o.domain.as_deref().unwrap_or(""), "" | "ai.onnx") {
            o.version = Some(opset_out);
        }
    }
    if used16 {
        report.qdq16_domain = Some(MS_DOMAIN.to_string());
        if !model
            .opset_import
            .iter()
            .any(|o| o.domain.as_deref() == Some(MS_DOMAIN))
        {
            model.opset_import.push(OperatorSetIdProto {
                domain: Some(MS_DOMAIN.into()),
                version: Some(1),
            });
        }
    } else if report
        .tensors
        .iter()
        .any(|t| t.qtype == "int16" || t.qtype == "uint16")
    {
        report.qdq16_domain = Some(String::new());
    }
    let min_ir = if opset_out >= 21 { 10 } else { 7 };
    if model.ir_version.unwrap_or(0) < min_ir {
        model.ir_version = Some(min_ir);
    }
    Ok((model, report))
}

/// How `config` quantizes a weight with per-channel `axis` (`None`: per tensor). Bias correction uses the same spec
/// so that it corrects exactly the error the emitted weight has.
pub fn weight_spec(config: &QuantConfig, axis: Option<usize>) -> WeightSpec {
    WeightSpec {
        qtype: config.weight_type,
        symmetric: config.weight_symmetric,
        pow2: config.power_of_two_scales,
        axis,
        mse: config.weight_range == crate::quant::WeightRange::MinMse,
    }
}

/// Refuses a graph that already holds quantized ops, naming the first such node.
pub(crate) fn refuse_quantized(g: &GraphProto) -> Result<()> {
    for n in &g.node {
        let o = op(n);
        if QUANTIZED_OPS.contains(&o) || o.starts_with("QLinear") {
            return Err(Error::unsupported(format!(
                "the model is already quantized: node '{}' is a {o}",
                n.name.as_deref().unwrap_or("")
            )));
        }
    }
    Ok(())
}

fn all_names(g: &GraphProto) -> HashSet<String> {
    let mut s = HashSet::new();
    for n in &g.node {
        s.extend(n.input.iter().cloned());
        s.extend(n.output.iter().cloned());
        if let Some(x) = &n.name {
            s.insert(x.clone());
        }
    }
    for t in &g.initializer {
        if let Some(x) = &t.name {
            s.insert(x.clone());
        }
    }
    for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
        if let Some(x) = &v.name {
            s.insert(x.clone());
        }
    }
    s
}

/// `Constant` nodes of the main graph become initializers (the prepared model normally has none left).
fn constants_to_initializers(g: &mut GraphProto, notes: &mut Vec<String>) -> Result<()> {
    let mut keep = Vec::with_capacity(g.node.len());
    let mut moved = 0;
    for n in std::mem::take(&mut g.node) {
        if op(&n) == "Constant"
            && matches!(n.domain.as_deref().unwrap_or(""), "" | "ai.onnx")
            && n.output.len() == 1
        {
            let out = n.output[0].clone();
            let t = n
                .attribute
                .first()
                .and_then(crate::quant::prepare::constant_value);
            if let Some(mut t) = t {
                t.name = Some(out);
                g.initializer.push(t);
                moved += 1;
                continue;
            }
        }
        keep.push(n);
    }
    g.node = keep;
    if moved > 0 {
        notes.push(format!("{moved} Constant nodes turned into initializers"));
    }
    Ok(())
}

/// A node input's resolved role.
#[derive(Clone, Copy, Debug, PartialEq)]
enum In {
    /// A quantized activation (Q/DQ at run time).
    Act,
    /// A float constant quantized like an activation (integer initializer + DQ).
    ConstAct,
    /// A float constant weight (integer initializer + DQ), per-channel axis resolved.
    Weight(Option<usize>),
    Bias,
    Skip,
}

#[derive(Clone, Debug)]
struct Plan {
    inputs: Vec<In>,
    outputs: Vec<usize>,
    share: bool,
    /// Output 0 goes through a kept Relu/Clip without its own Q/DQ (symmetric activations).
    fused_output: bool,
}

struct Quantizer<'a> {
    g: &'a mut GraphProto,
    calib: &'a Calibration,
    cfg: &'a QuantConfig,
    names: HashSet<String>,
    opset: i64,
    inits: HashMap<String, usize>,
    graph_inputs: HashSet<String>,
    graph_outputs: HashSet<String>,
    elem: HashMap<String, i32>,
    /// Range overrides coming from Relu/Clip fusion.
    fused_range: HashMap<String, (f32, f32)>,
    /// Folded Relu/Clip outputs and the activation's own upper bound (infinity for Relu): [`clamp_record`].
    folded_clamps: BTreeMap<String, f32>,
    used_ms16: bool,
}

struct UnionFind {
    parent: Vec<usize>,
}
impl UnionFind {
    fn find(&mut self, x: usize) -> usize {
        let mut r = x;
        while self.parent[r] != r {
            r = self.parent[r];
        }
        let mut y = x;
        while self.parent[y] != r {
            let next = self.parent[y];
            self.parent[y] = r;
            y = next;
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[rb] = ra;
        }
    }
}

fn elem_of_type(t: &Option<crate::onnx::proto::TypeProto>) -> Option<i32> {
    match t.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(tt) => tt.elem_type,
        _ => None,
    }
}

impl<'a> Quantizer<'a> {
    fn new(
        g: &'a mut GraphProto,
        calib: &'a Calibration,
        cfg: &'a QuantConfig,
        names: HashSet<String>,
        opset: i64,
    ) -> Self {
        let inits = g
            .initializer
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.name.clone().map(|n| (n, i)))
            .collect();
        let graph_inputs = g.input.iter().filter_map(|v| v.name.clone()).collect();
        let graph_outputs = g.output.iter().filter_map(|v| v.name.clone()).collect();
        let mut elem = HashMap::new();
        for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
            if let (Some(n), Some(e)) = (&v.name, elem_of_type(&v.r#type)) {
                elem.insert(n.clone(), e);
            }
        }
        for t in &g.initializer {
            if let (Some(n), Some(e)) = (&t.name, t.data_type) {
                elem.insert(n.clone(), e);
            }
        }
        for (n, s) in calib {
            elem.entry(n.clone()).or_insert(s.elem_type);
        }
        Quantizer {
            g,
            calib,
            cfg,
            names,
            opset,
            inits,
            graph_inputs,
            graph_outputs,
            elem,
            fused_range: HashMap::new(),
            folded_clamps: BTreeMap::new(),
            used_ms16: false,
        }
    }

    fn unique(&mut self, base: &str) -> String {
        let mut n = base.to_string();
        let mut k = 1;
        while self.names.contains(&n) {
            n = format!("{base}_{k}");
            k += 1;
        }
        self.names.insert(n.clone());
        n
    }

    /// A constant of the graph (an initializer that is not also a graph input).
    fn constant(&self, name: &str) -> Option<&TensorProto> {
        if self.graph_inputs.contains(name) {
            return None;
        }
        self.inits.get(name).map(|&i| &self.g.initializer[i])
    }

    fn calib_range(&self, name: &str) -> Option<(f32, f32)> {
        if let Some(r) = self.cfg.tensor_overrides.get(name).and_then(|o| o.range) {
            return Some(r);
        }
        if let Some(r) = self.fused_range.get(name) {
            return Some(*r);
        }
        self.calib
            .get(name)
            .filter(|s| s.min.is_finite() && s.max.is_finite())
            .map(|s| (s.min, s.max))
    }

    fn const_range(&self, name: &str) -> Option<(f32, f32)> {
        let t = self.constant(name)?;
        let v = read_f32(t).ok()?;
        let lo = v
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .fold(0f32, f32::min);
        let hi = v
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .fold(0f32, f32::max);
        Some((lo, hi))
    }

    fn qdomain(&mut self, t: QuantType) -> &'static str {
        if t.is_16bit() && self.opset < OPSET_QDQ16 {
            self.used_ms16 = true;
            MS_DOMAIN
        } else {
            ""
        }
    }

    /// Resolves a node's rule against constants, types and ranges. `Err(reason)`: leave the node float.
    fn resolve(
        &self,
        n: &NodeProto,
        rule: &rules::NodeRule,
        fused_in: bool,
        fused_out: bool,
    ) -> std::result::Result<Plan, String> {
        let mut inputs = Vec::with_capacity(n.input.len());
        let mut weight_const = false;
        for (i, name) in n.input.iter().enumerate() {
            let slot = rule.inputs.get(i).copied().unwrap_or(Slot::Skip);
            if name.is_empty() || (i == 0 && fused_in) {
                inputs.push(In::Skip);
                continue;
            }
            let is_float = self.elem.get(name).copied();
            let r = match slot {
                Slot::Skip => In::Skip,
                Slot::Bias => match self.constant(name) {
                    // [N], or Gemm's [1, N] (same broadcast; written back as [N]).
                    Some(t)
                        if t.data_type == Some(DataType::Float.onnx())
                            && weight_const
                            && (t.dims.len() == 1 || (t.dims.len() == 2 && t.dims[0] == 1)) =>
                    {
                        In::Bias
                    }
                    Some(t) if t.data_type == Some(DataType::Float.onnx()) => In::ConstAct,
                    Some(_) => In::Skip,
                    None => self.act_or_reason(name, is_float)?,
                },
                Slot::Weight { axis } => match self.constant(name) {
                    Some(t) if t.data_type == Some(DataType::Float.onnx()) => {
                        weight_const = true;
                        let rank = t.dims.len();
                        let axis = match axis {
                            Some(usize::MAX) if rank == 2 => Some(1),
                            Some(usize::MAX) => None,
                            Some(a) if a < rank => Some(a),
                            _ => None,
                        };
                        In::Weight(axis)
                    }
                    Some(t) => {
                        return Err(format!(
                        "weight '{name}' has element type {} (only float weights are quantized)",
                        crate::onnx::element_type_name(t.data_type.unwrap_or(0))
                    ))
                    }
                    None => self.act_or_reason(name, is_float)?,
                },
                Slot::Act => match self.constant(name) {
                    Some(t) if t.data_type == Some(DataType::Float.onnx()) => In::ConstAct,
                    Some(_) => In::Skip,
                    None => self.act_or_reason(name, is_float)?,
                },
            };
            inputs.push(r);
        }
        let mut outputs = Vec::new();
        for &k in &rule.quantized_outputs {
            if fused_out && k == 0 {
                continue;
            }
            let Some(name) = n.output.get(k).filter(|s| !s.is_empty()) else {
                continue;
            };
            match self.elem.get(name) {
                Some(1) | None => {}
                Some(_) => continue,
            }
            if rule.outputs == OutRule::Own && self.calib_range(name).is_none() {
                return Err(format!("no calibration range for output '{name}'"));
            }
            outputs.push(k);
        }
        if rule.outputs == OutRule::ShareInput && inputs.first() != Some(&In::Act) {
            return Err("its input is not a quantizable float activation".into());
        }
        Ok(Plan {
            inputs,
            outputs,
            share: rule.outputs == OutRule::ShareInput,
            fused_output: false,
        })
    }

    fn act_or_reason(&self, name: &str, elem: Option<i32>) -> std::result::Result<In, String> {
        match elem {
            Some(1) | None => {
                if self.calib_range(name).is_some() {
                    Ok(In::Act)
                } else if elem.is_none() {
                    Err(format!(
                        "no calibration range (and no known type) for input '{name}'"
                    ))
                } else {
                    Err(format!("no calibration range for input '{name}'"))
                }
            }
            Some(_) => Ok(In::Skip),
        }
    }

    /// The phases, in order: index the graph, fuse Relu/Clip, plan every node, give every quantized tensor its
    /// parameters, emit, report node by node.
    /// `tail`: what the output-aware rule leaves float (its ranges are already in the calibration).
    fn run(&mut self, report: &mut QuantReport, tail: &FloatTail) -> Result<()> {
        report.notes.extend(tail.notes.iter().cloned());
        let mut ix = self.index(&tail.nodes)?;
        let fusion = self.fuse_activations(&mut ix, report);
        let planned = self.plan_nodes(&ix, &fusion);
        let mut assigned = self.assign_params(&planned)?;
        let emit = Emit {
            plans: &planned.plans,
            removed: &fusion.removed,
            qset: &planned.qset,
            params: &assigned.params,
            shared_with: &assigned.shared_with,
        };
        self.emit(report, &emit, &mut assigned.notes)?;
        report_nodes(report, &ix, &fusion, &planned, self.cfg.bias_type);
        Ok(())
    }

    /// Labels, rule decisions, op types, producers and consumers of the original nodes; `tail` (first output name
    /// -> reason) is left float.
    fn index(&self, tail: &BTreeMap<String, String>) -> Result<Index> {
        let labels: Vec<String> = self
            .g
            .node
            .iter()
            .enumerate()
            .map(|(i, n)| {
                n.name
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| format!("{}#{i}", op(n)))
            })
            .collect();
        let mut decisions: Vec<Decision> = self
            .g
            .node
            .iter()
            .map(|n| rules::decide(n, self.cfg))
            .collect();
        // Patterns and subgraphs (exact names and op types are the rules' own).
        let excluded = exclude::resolve(
            self.g,
            &self.cfg.exclude_patterns,
            &self.cfg.exclude_subgraphs,
        )?;
        for (i, why) in excluded {
            if matches!(decisions[i], Decision::Quantize(_)) {
                decisions[i] = Decision::Float(why);
            }
        }
        for (i, n) in self.g.node.iter().enumerate() {
            if let Some(why) = n.output.first().and_then(|o| tail.get(o)) {
                decisions[i] = Decision::Float(why.clone());
            }
        }
        let ops: Vec<String> = self.g.node.iter().map(|n| op(n).to_string()).collect();

        // Producers and consumers.
        let mut producer: HashMap<String, usize> = HashMap::new();
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in self.g.node.iter().enumerate() {
            for o in n.output.iter().filter(|s| !s.is_empty()) {
                producer.insert(o.clone(), i);
            }
            for x in n.input.iter().filter(|s| !s.is_empty()) {
                let c = consumers.entry(x.clone()).or_default();
                if c.last() != Some(&i) {
                    c.push(i);
                }
            }
        }
        Ok(Index {
            labels,
            decisions,
            ops,
            producer,
            consumers,
        })
    }

    /// Relu/Clip fusion (module docs, step 3): removes or marks the activations folded into their producers.
    fn fuse_activations(&mut self, ix: &mut Index, report: &mut QuantReport) -> Fusion {
        let nn = self.g.node.len();
        let mut f = Fusion {
            removed: vec![false; nn],
            fused_in: vec![false; nn],
            fused_out: vec![false; nn],
            reason: HashMap::new(),
        };
        for i in 0..nn {
            let n = &self.g.node[i].clone();
            let Some(c) = self.fusion_candidate(i, n, ix) else {
                continue;
            };
            let o = op(n);
            if !self.cfg.activation_symmetric {
                self.fold_into_producer(&c, o, ix, &mut f);
            } else {
                f.fused_in[i] = true;
                f.fused_out[c.p] = true;
                f.reason.insert(
                    i,
                    format!(
                        "fused with '{}': kept (symmetric activations cannot clip at 0), no Q/DQ between them; \
                         the output is quantized with this node's range",
                        ix.labels[c.p]
                    ),
                );
            }
        }
        let folded = f.removed.iter().filter(|&&r| r).count();
        if folded > 0 {
            report.notes.push(format!(
                "{folded} Relu/Clip nodes folded into their producers' quantized range (removed)"
            ));
        }
        let kept = f.fused_in.iter().filter(|&&r| r).count();
        if kept > 0 {
            report.notes.push(format!(
                "{kept} Relu/Clip nodes fused with their producers (kept, no Q/DQ between)"
            ));
        }
        f
    }

    /// Node `i` (`n`) when it is a quantized Relu/Clip clipping at 0 whose input 0 is the only consumer of the
    /// single quantized output of a quantized producer (not a graph output), and its output has a calibrated range.
    fn fusion_candidate(&self, i: usize, n: &NodeProto, ix: &Index) -> Option<FusionCandidate> {
        let o = op(n);
        if !(o == "Relu" || o == "Clip") || !matches!(ix.decisions[i], Decision::Quantize(_)) {
            return None;
        }
        let (Some(x), Some(y)) = (n.input.first().cloned(), n.output.first().cloned()) else {
            return None;
        };
        let &p = ix.producer.get(&x)?;
        match &ix.decisions[p] {
            Decision::Quantize(r) if r.outputs == OutRule::Own && r.quantized_outputs == [0] => {}
            _ => return None,
        }
        if self.g.node[p].output.first() != Some(&x) || self.graph_outputs.contains(&x) {
            return None;
        }
        if ix.consumers.get(&x).map(|c| c.as_slice()) != Some(&[i]) {
            return None;
        }
        let hi = self.zero_clip_bound(n)?;
        let (_, cmax) = self.calib_range(&y)?;
        Some(FusionCandidate { i, p, y, hi, cmax })
    }

    /// Removes the activation `c.i` (op `o`): the producer writes y; y is quantized with [0, min(max, hi)] so
    /// zp = qmin. The producer must then be quantized for sure (else the clipping would be lost): when it cannot
    /// be, nothing changes.
    fn fold_into_producer(&mut self, c: &FusionCandidate, o: &str, ix: &mut Index, f: &mut Fusion) {
        let (i, p, y) = (c.i, c.p, &c.y);
        let Decision::Quantize(pd) = &ix.decisions[p] else {
            return;
        };
        self.fused_range
            .insert(y.clone(), (0.0, c.cmax.min(c.hi).max(0.0)));
        let mut pn = self.g.node[p].clone();
        pn.output[0] = y.clone();
        if self.resolve(&pn, pd, false, false).is_err() {
            self.fused_range.remove(y);
            return;
        }
        self.g.node[p].output[0] = y.clone();
        self.folded_clamps.insert(y.clone(), c.hi);
        f.removed[i] = true;
        ix.producer.insert(y.clone(), p);
        if let Some(cs) = ix.consumers.get(y).cloned() {
            ix.consumers.insert(y.clone(), cs);
        }
        f.reason.insert(
            i,
            format!(
                "fused into '{}': removed; the producer's output is quantized with this node's range \
                 [0, {}] (zero point = qmin, so saturation is exactly the {o})",
                ix.labels[p],
                c.cmax.min(c.hi).max(0.0)
            ),
        );
    }

    /// The upper bound of a Relu (infinity) or of a Clip with constant bounds whose lower bound is exactly 0;
    /// `None` for any other Clip (it cannot be folded into a quantized range starting at 0).
    fn zero_clip_bound(&self, n: &NodeProto) -> Option<f32> {
        let (lo, hi) = if op(n) == "Relu" {
            (0.0f32, f32::INFINITY)
        } else {
            let b = |k: usize| -> Option<Option<f32>> {
                match n.input.get(k).filter(|s| !s.is_empty()) {
                    None => Some(None),
                    Some(name) => {
                        let v = read_f32(self.constant(name)?).ok()?;
                        (v.len() == 1).then(|| Some(v[0]))
                    }
                }
            };
            match (b(1), b(2)) {
                (Some(lo), Some(hi)) => {
                    (lo.unwrap_or(f32::NEG_INFINITY), hi.unwrap_or(f32::INFINITY))
                }
                _ => return None,
            }
        };
        if lo != 0.0 || hi <= 0.0 || hi.is_nan() {
            return None;
        }
        Some(hi)
    }

    /// Resolves a plan for every node left (or the reason it stays float), layout/pool ops last: they are
    /// quantized only next to a quantized tensor, to a fixpoint.
    fn plan_nodes(&self, ix: &Index, fusion: &Fusion) -> Planned {
        let nn = self.g.node.len();
        let decisions = &ix.decisions;
        let consumers = &ix.consumers;
        let Fusion {
            removed,
            fused_in,
            fused_out,
            ..
        } = fusion;
        // Resolve plans for non-passthrough nodes.
        let mut plans: Vec<Option<Plan>> = vec![None; nn];
        let mut reasons: Vec<String> = vec![String::new(); nn];
        let mut pending: Vec<usize> = Vec::new();
        for i in 0..nn {
            if removed[i] {
                continue;
            }
            match &decisions[i] {
                Decision::Float(r) => reasons[i] = r.clone(),
                Decision::Quantize(rule) => {
                    if rules::is_passthrough(op(&self.g.node[i])) {
                        pending.push(i);
                        continue;
                    }
                    match self.resolve(&self.g.node[i], rule, fused_in[i], fused_out[i]) {
                        Ok(mut p) => {
                            p.fused_output = fused_out[i];
                            plans[i] = Some(p)
                        }
                        Err(r) => reasons[i] = format!("left float: {r}"),
                    }
                }
            }
        }
        // Tensors quantized so far.
        let mut qset: HashSet<String> = HashSet::new();
        quantized_tensors(&plans, self.g, &mut qset);
        // Passthrough nodes: quantized when next to a quantized tensor (fixpoint).
        loop {
            let mut changed = false;
            for &i in &pending {
                if plans[i].is_some() {
                    continue;
                }
                let n = &self.g.node[i];
                let touches = n.input.first().is_some_and(|x| qset.contains(x))
                    || n.output.iter().any(|o| {
                        qset.contains(o)
                            || consumers.get(o).is_some_and(|cs| {
                                cs.iter().any(|&c| {
                                    plans[c].as_ref().is_some_and(|p| {
                                        self.g.node[c]
                                            .input
                                            .iter()
                                            .zip(&p.inputs)
                                            .any(|(name, r)| name == o && matches!(r, In::Act))
                                    })
                                })
                            })
                    });
                if !touches {
                    continue;
                }
                let Decision::Quantize(rule) = &decisions[i] else {
                    continue;
                };
                // The input may lack its own range: its output's range (shared) will do.
                let p = match self.resolve(n, rule, fused_in[i], fused_out[i]) {
                    Ok(p) => p,
                    Err(r) => {
                        reasons[i] = format!("left float: {r}");
                        continue;
                    }
                };
                plans[i] = Some(p);
                changed = true;
                quantized_tensors(&plans, self.g, &mut qset);
            }
            if !changed {
                break;
            }
        }
        for &i in &pending {
            if plans[i].is_none() && reasons[i].is_empty() {
                reasons[i] =
                    "left float: no quantized neighbour (layout/pool op between float nodes)"
                        .into();
            }
        }
        Planned {
            plans,
            reasons,
            qset,
        }
    }

    /// The quantized tensors in name order, grouped by the parameters they must share (shared-output ops,
    /// Concat with `concat_shared_scale`): each group lists member indices into the names.
    fn param_groups(
        &self,
        plans: &[Option<Plan>],
        qset: &HashSet<String>,
    ) -> (Vec<String>, BTreeMap<usize, Vec<usize>>) {
        let mut tnames: Vec<String> = qset.iter().cloned().collect();
        tnames.sort();
        let tid: HashMap<String, usize> = tnames
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, n)| (n, i))
            .collect();
        let mut uf = UnionFind {
            parent: (0..tnames.len()).collect(),
        };
        for (i, p) in plans.iter().enumerate() {
            let Some(p) = p else { continue };
            let n = &self.g.node[i];
            if p.share {
                if let Some(&a) = n.input.first().and_then(|x| tid.get(x)) {
                    for &k in &p.outputs {
                        uf.union(a, tid[&n.output[k]]);
                    }
                }
            }
            // A folded Relu/Clip's tensor keeps its own [0, hi] range: widening it would undo the folded clipping.
            if op(n) == "Concat"
                && self.cfg.concat_shared_scale
                && p.outputs.contains(&0)
                && !self.fused_range.contains_key(&n.output[0])
            {
                let o = tid[&n.output[0]];
                for (k, r) in p.inputs.iter().enumerate() {
                    if matches!(r, In::Act | In::ConstAct)
                        && !self.fused_range.contains_key(&n.input[k])
                    {
                        uf.union(o, tid[&n.input[k]]);
                    }
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..tnames.len() {
            groups.entry(uf.find(i)).or_default().push(i);
        }
        (tnames, groups)
    }

    /// Computes each parameter group's parameters from the union of its members' ranges.
    fn assign_params(&self, planned: &Planned) -> Result<Assigned> {
        let (tnames, groups) = self.param_groups(&planned.plans, &planned.qset);
        let mut params: HashMap<String, QParams> = HashMap::new();
        let mut shared_with: HashMap<String, Vec<String>> = HashMap::new();
        let mut tnotes: HashMap<String, Vec<String>> = HashMap::new();
        for members in groups.values() {
            let mut range: Option<(f32, f32)> = None;
            let mut qtype: Option<(QuantType, String)> = None;
            for &m in members {
                let name = &tnames[m];
                let r = self.calib_range(name).or_else(|| self.const_range(name));
                if let Some((lo, hi)) = r {
                    range = Some(match range {
                        None => (lo, hi),
                        Some((a, b)) => (a.min(lo), b.max(hi)),
                    });
                }
                if let Some(t) = self.cfg.tensor_overrides.get(name).and_then(|o| o.qtype) {
                    match &qtype {
                        Some((t0, n0)) if *t0 != t => {
                            return Err(Error::invalid_argument(format!(
                                "tensors '{n0}' and '{name}' must share quantization parameters but their type \
                                 overrides differ ({} vs {})",
                                t0.name(),
                                t.name()
                            )))
                        }
                        _ => qtype = Some((t, name.clone())),
                    }
                }
            }
            let Some((lo, hi)) = range else {
                return Err(Error::new(
                    ErrorKind::Calibration,
                    format!("no calibration range for tensor '{}' (nor for any tensor sharing its parameters)", tnames[members[0]]),
                ));
            };
            let qt = qtype.map(|q| q.0).unwrap_or(self.cfg.activation_type);
            let p = tensor_params(
                lo,
                hi,
                qt,
                self.cfg.activation_symmetric,
                self.cfg.power_of_two_scales,
            );
            for &m in members {
                let name = tnames[m].clone();
                if members.len() > 1 {
                    shared_with.insert(
                        name.clone(),
                        members
                            .iter()
                            .filter(|&&x| x != m)
                            .map(|&x| tnames[x].clone())
                            .collect(),
                    );
                }
                let mut notes = Vec::new();
                if p.degenerate {
                    notes.push("degenerate range (all zeros): scale 1".to_string());
                }
                if let Some(o) = self.cfg.tensor_overrides.get(&name) {
                    if o.range.is_some() {
                        notes.push("range overridden".into());
                    }
                    if o.qtype.is_some() {
                        notes.push("type overridden".into());
                    }
                }
                if self.fused_range.contains_key(&name) {
                    notes.push("range of a folded Relu/Clip".into());
                }
                tnotes.insert(name.clone(), notes);
                params.insert(name, p.clone());
            }
        }
        Ok(Assigned {
            params,
            shared_with,
            notes: tnotes,
        })
    }
}

/// Records the output-aware float tail in the model's metadata (for the pre-flight), when there is one.
fn record_float_tail(model: &mut ModelProto, tail: &BTreeMap<String, String>) {
    if tail.is_empty() {
        return;
    }
    let value = serde_json::to_string(&tail.keys().collect::<Vec<_>>()).unwrap_or_default();
    model
        .metadata_props
        .retain(|p| p.key.as_deref() != Some(crate::quant::output_aware::METADATA_KEY));
    model
        .metadata_props
        .push(crate::onnx::proto::StringStringEntryProto {
            key: Some(crate::quant::output_aware::METADATA_KEY.into()),
            value: Some(value),
        });
}

/// What [`Quantizer::index`] learns about the original nodes.
struct Index {
    labels: Vec<String>,
    decisions: Vec<Decision>,
    ops: Vec<String>,
    producer: HashMap<String, usize>,
    consumers: HashMap<String, Vec<usize>>,
}

/// A Relu/Clip node that can fuse with its producer: the node, the producer, the node's output, the clip's upper
/// bound and the output's calibrated max.
struct FusionCandidate {
    i: usize,
    p: usize,
    y: String,
    hi: f32,
    cmax: f32,
}

/// Relu/Clip fusion, per original node.
struct Fusion {
    removed: Vec<bool>,
    /// The node's input 0 comes from a producer without Q/DQ (kept Relu).
    fused_in: Vec<bool>,
    /// The producer's output 0 has no Q/DQ.
    fused_out: Vec<bool>,
    reason: HashMap<usize, String>,
}

/// Every node's plan (or the reason it stays float) and the tensors that get quantized.
struct Planned {
    plans: Vec<Option<Plan>>,
    reasons: Vec<String>,
    qset: HashSet<String>,
}

/// Parameters of every quantized activation/constant, the tensors each shares them with, and report notes.
struct Assigned {
    params: HashMap<String, QParams>,
    shared_with: HashMap<String, Vec<String>>,
    notes: HashMap<String, Vec<String>>,
}

/// Adds the activations and constants that `plans` quantize to `qset`.
fn quantized_tensors(plans: &[Option<Plan>], g: &GraphProto, qset: &mut HashSet<String>) {
    for (i, p) in plans.iter().enumerate() {
        let Some(p) = p else { continue };
        let n = &g.node[i];
        for (k, r) in p.inputs.iter().enumerate() {
            if matches!(r, In::Act | In::ConstAct) {
                qset.insert(n.input[k].clone());
            }
        }
        for &k in &p.outputs {
            qset.insert(n.output[k].clone());
        }
    }
}

/// The node report: the original nodes, in order, with what was done to each or why it stayed float.
fn report_nodes(
    report: &mut QuantReport,
    ix: &Index,
    fusion: &Fusion,
    planned: &Planned,
    bias: BiasType,
) {
    let (plans, reasons) = (&planned.plans, &planned.reasons);
    let (removed, fuse_reason) = (&fusion.removed, &fusion.reason);
    for i in 0..ix.ops.len() {
        let n = &ix.ops[i];
        let (quantized, reason) = if removed[i] {
            (true, fuse_reason.get(&i).cloned().unwrap_or_default())
        } else if let Some(p) = &plans[i] {
            let mut parts = Vec::new();
            for r in &p.inputs {
                match r {
                    In::Act => parts.push("activation input".to_string()),
                    In::ConstAct => {
                        parts.push("constant input quantized like an activation".into())
                    }
                    In::Weight(Some(a)) => parts.push(format!("weight per channel (axis {a})")),
                    In::Weight(None) => parts.push("weight per tensor".into()),
                    In::Bias => parts.push(format!("{} bias", bias.name())),
                    In::Skip => {}
                }
            }
            if p.share {
                parts.push("output shares the input's scale/zero point".into());
            } else if !p.outputs.is_empty() {
                parts.push("output quantized with its own range".into());
            }
            if p.fused_output {
                parts.push("output feeds a fused Relu/Clip (no Q/DQ between)".into());
            }
            if let Some(f) = fuse_reason.get(&i) {
                parts.push(f.clone());
            }
            (true, parts.join("; "))
        } else {
            (false, reasons[i].clone())
        };
        report.nodes.push(NodeReport {
            name: ix.labels[i].clone(),
            op_type: n.clone(),
            quantized,
            reason,
        });
    }
}

/// An INT8 bias with a power-of-two scale of its own (AMD's XINT8 format): the smallest power of two that keeps
/// the largest |value| within 127, so no value saturates (the accumulator scale, input × weight, would saturate
/// many: `saturating_at_accumulator_scale`).
pub(crate) fn quantize_bias_int8(bias: &[f32]) -> QBias {
    let m = bias.iter().fold(0f32, |a, &b| a.max(b.abs()));
    let s = if m > 0.0 {
        scale::pow2_ceil(m / 127.0)
    } else {
        1.0
    };
    let values = bias
        .iter()
        .map(|&b| scale::quantize_value(b, s, 0, -128, 127))
        .collect();
    QBias {
        values,
        scale: vec![s],
        raised: Vec::new(),
    }
}

/// A quantized bias in the form [`Quantizer::emit_weight`] writes (zero points 0; one scale, or one per element).
fn bias_qweight(qb: QBias, bvals: &[f32]) -> QWeight {
    QWeight {
        values: qb.values,
        params: QParams {
            qtype: QuantType::S8, // the bias's type is written from cfg.bias_type
            zero_point: vec![0; qb.scale.len()],
            axis: if qb.scale.len() > 1 { Some(0) } else { None },
            rmin: vec![bvals.iter().copied().fold(0f32, f32::min)],
            rmax: vec![bvals.iter().copied().fold(0f32, f32::max)],
            scale: qb.scale,
            degenerate: false,
        },
        dims: vec![bvals.len() as i64],
    }
}

/// How many values of `bias` would saturate INT8 at the accumulator scale `input_scale` × the weight's scale of
/// their channel (one scale: per tensor).
fn saturating_at_accumulator_scale(bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> usize {
    bias.iter()
        .enumerate()
        .filter(|&(i, &b)| {
            let ws = weight_scales[if weight_scales.len() == 1 {
                0
            } else {
                i % weight_scales.len()
            }];
            scale::quantize_value(b, input_scale * ws, 0, i32::MIN / 2, i32::MAX / 2).abs() > 127
        })
        .count()
}

/// NaN/Inf in a weight or bias would be quantized without a word (the range ignores them, the values clamp to the
/// range's ends): refused instead, naming the tensor and its node. `--exclude` keeps the node float.
fn refuse_non_finite(kind: &str, tensor: &str, node: &NodeProto, values: &[f32]) -> Result<()> {
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    if bad == 0 {
        return Ok(());
    }
    let name = node.name.as_deref().unwrap_or_default();
    Err(Error::new(
        crate::error::ErrorKind::NonFinite,
        format!(
            "{kind} '{tensor}' of node '{name}' ({}) holds {bad} NaN/infinite value(s) of {}: fix the model, or \
             exclude the node to keep it float",
            op(node),
            values.len()
        ),
    ))
}

fn qdq_node(
    op_type: &str,
    name: String,
    inputs: Vec<String>,
    output: String,
    domain: &str,
    axis: Option<i64>,
) -> NodeProto {
    NodeProto {
        input: inputs,
        output: vec![output],
        name: Some(name),
        op_type: Some(op_type.to_string()),
        domain: if domain.is_empty() {
            None
        } else {
            Some(domain.to_string())
        },
        attribute: axis
            .map(|a| {
                vec![AttributeProto {
                    name: Some("axis".into()),
                    r#type: Some(2),
                    i: Some(a),
                    ..Default::default()
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// The analysis results emission works from.
struct Emit<'e> {
    plans: &'e [Option<Plan>],
    removed: &'e [bool],
    qset: &'e HashSet<String>,
    params: &'e HashMap<String, QParams>,
    shared_with: &'e HashMap<String, Vec<String>>,
}

/// What emission keeps per quantized activation tensor.
struct ActNames {
    scale: String,
    zp: String,
    /// The integer tensor: Q output, or integer initializer for constants.
    src: Option<String>,
    /// Shared DQ output (shared mode), or the tensor's own name for graph outputs.
    shared_dq: Option<String>,
}

impl<'a> Quantizer<'a> {
    fn act_names(
        &mut self,
        t: &str,
        p: &QParams,
        acts: &mut HashMap<String, ActNames>,
        inits: &mut Vec<TensorProto>,
    ) {
        if acts.contains_key(t) {
            return;
        }
        let scale = self.unique(&format!("{t}_scale"));
        let zp = self.unique(&format!("{t}_zero_point"));
        inits.push(f32_tensor(&scale, &[], &[p.scale[0]]));
        inits.push(int_tensor(
            &zp,
            p.qtype.onnx_type(),
            &[],
            &[p.zero_point[0]],
        ));
        acts.insert(
            t.to_string(),
            ActNames {
                scale,
                zp,
                src: None,
                shared_dq: None,
            },
        );
    }

    fn dq_for(
        &mut self,
        t: &str,
        out: String,
        p: &QParams,
        acts: &HashMap<String, ActNames>,
    ) -> NodeProto {
        let a = &acts[t];
        let domain = self.qdomain(p.qtype);
        let name = self.unique(&format!("{t}_DequantizeLinear"));
        qdq_node(
            "DequantizeLinear",
            name,
            vec![
                a.src.clone().unwrap_or_default(),
                a.scale.clone(),
                a.zp.clone(),
            ],
            out,
            domain,
            None,
        )
    }

    /// Emits a weight (integer initializer + DQ); returns the DQ output name.
    #[allow(clippy::too_many_arguments)]
    fn emit_weight(
        &mut self,
        wname: &str,
        qw: &QWeight,
        kind: &str,
        out_nodes: &mut Vec<NodeProto>,
        inits: &mut Vec<TensorProto>,
        report: &mut QuantReport,
        notes: Vec<String>,
    ) -> String {
        let bias8 = kind == "bias" && self.cfg.bias_type == BiasType::Int8;
        let data_type = if bias8 {
            QuantType::S8.onnx_type()
        } else if kind == "bias" {
            6
        } else {
            qw.params.qtype.onnx_type()
        };
        let qname = self.unique(&format!("{wname}_quantized"));
        let sname = self.unique(&format!("{wname}_scale"));
        let zname = self.unique(&format!("{wname}_zero_point"));
        let per = qw.params.scale.len() > 1 || qw.params.axis.is_some();
        let sdims: Vec<i64> = if per {
            vec![qw.params.scale.len() as i64]
        } else {
            vec![]
        };
        inits.push(int_tensor(&qname, data_type, &qw.dims, &qw.values));
        inits.push(f32_tensor(&sname, &sdims, &qw.params.scale));
        inits.push(int_tensor(&zname, data_type, &sdims, &qw.params.zero_point));
        let out = self.unique(&format!("{wname}_DequantizeLinear_Output"));
        let domain = if kind == "bias" {
            ""
        } else {
            self.qdomain(qw.params.qtype)
        };
        let nname = self.unique(&format!("{wname}_DequantizeLinear"));
        out_nodes.push(qdq_node(
            "DequantizeLinear",
            nname,
            vec![qname, sname, zname],
            out.clone(),
            domain,
            if per {
                Some(qw.params.axis.unwrap_or(0))
            } else {
                None
            },
        ));
        report.tensors.push(TensorReport {
            name: wname.to_string(),
            kind: kind.to_string(),
            qtype: if kind == "bias" {
                self.cfg.bias_type.name().into()
            } else {
                qw.params.qtype.name().into()
            },
            min: qw.params.rmin.clone(),
            max: qw.params.rmax.clone(),
            scale: qw.params.scale.clone(),
            zero_point: qw.params.zero_point.clone(),
            axis: if per {
                Some(qw.params.axis.unwrap_or(0))
            } else {
                None
            },
            shared_with: vec![],
            notes,
        });
        out
    }

    /// Emission phases: quantize the graph inputs and constants up front, then node by node its weight and bias,
    /// its activation inputs (read from DQ outputs) and its outputs (Q after the producer); then the activation
    /// report and the new graph's installation.
    fn emit(
        &mut self,
        report: &mut QuantReport,
        e: &Emit<'_>,
        tnotes: &mut HashMap<String, Vec<String>>,
    ) -> Result<()> {
        let old_nodes = std::mem::take(&mut self.g.node);
        let mut out = Emitted {
            nodes: Vec::with_capacity(old_nodes.len() * 3),
            inits: Vec::new(),
            acts: HashMap::new(),
        };
        let mut sorted: Vec<&String> = e.qset.iter().collect();
        sorted.sort();
        self.emit_sources(e, &old_nodes, &sorted, &mut out)?;
        for (i, n0) in old_nodes.iter().enumerate() {
            if e.removed[i] {
                continue;
            }
            let mut n = n0.clone();
            let plan = e.plans[i].as_ref();
            if let Some(p) = plan {
                self.emit_weight_and_bias(&mut n, p, e.params, &mut out, report)?;
            }
            self.read_dq_inputs(&mut n, n0, plan, e, &mut out);
            let after = self.emit_outputs(&mut n, n0, e, &mut out);
            out.nodes.push(n);
            out.nodes.extend(after);
        }
        self.report_activations(report, &sorted, e, tnotes);
        self.install(out.nodes, out.inits);
        Ok(())
    }

    /// Graph inputs and constants among the quantized tensors (`sorted`): Q at the start, or an integer
    /// initializer; and their shared DQ unless every consumer gets its own.
    fn emit_sources(
        &mut self,
        e: &Emit<'_>,
        old_nodes: &[NodeProto],
        sorted: &[&String],
        out: &mut Emitted,
    ) -> Result<()> {
        let dedicated = self.cfg.cpu_fusion;
        let produced: HashSet<&String> = old_nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !e.removed[*i])
            .flat_map(|(_, n)| n.output.iter())
            .collect();
        for t in sorted {
            let t = t.as_str();
            if produced.contains(&t.to_string()) {
                continue;
            }
            let p = &e.params[t];
            self.act_names(t, p, &mut out.acts, &mut out.inits);
            if let Some(c) = self.constant(t) {
                let v = read_f32(c)?;
                let dims = c.dims.clone();
                let q: Vec<i32> = v
                    .iter()
                    .map(|&x| {
                        scale::quantize_value(
                            x,
                            p.scale[0],
                            p.zero_point[0],
                            p.qtype.qmin(),
                            p.qtype.qmax(),
                        )
                    })
                    .collect();
                let qn = self.unique(&format!("{t}_quantized"));
                out.inits
                    .push(int_tensor(&qn, p.qtype.onnx_type(), &dims, &q));
                out.acts.get_mut(t).unwrap().src = Some(qn);
            } else if self.graph_inputs.contains(t) {
                let qo = self.unique(&format!("{t}_QuantizeLinear_Output"));
                let a = &out.acts[t];
                let inputs = vec![t.to_string(), a.scale.clone(), a.zp.clone()];
                let domain = self.qdomain(p.qtype);
                let name = self.unique(&format!("{t}_QuantizeLinear"));
                out.nodes.push(qdq_node(
                    "QuantizeLinear",
                    name,
                    inputs,
                    qo.clone(),
                    domain,
                    None,
                ));
                out.acts.get_mut(t).unwrap().src = Some(qo);
            } else {
                return Err(Error::model_invalid(format!(
                    "tensor '{t}' is used but neither produced, an input nor a constant"
                )));
            }
            if !dedicated {
                let dq_out = self.unique(&format!("{t}_DequantizeLinear_Output"));
                let dq = self.dq_for(t, dq_out.clone(), p, &out.acts);
                out.nodes.push(dq);
                out.acts.get_mut(t).unwrap().shared_dq = Some(dq_out);
            }
        }
        Ok(())
    }

    /// A node's weight and bias become integer initializers + DQ, and `n` reads the DQ outputs. The bias is
    /// quantized first: its overflow guard may raise the weight's scale.
    fn emit_weight_and_bias(
        &mut self,
        n: &mut NodeProto,
        p: &Plan,
        params: &HashMap<String, QParams>,
        out: &mut Emitted,
        report: &mut QuantReport,
    ) -> Result<()> {
        let mut weight: Option<(usize, QWeight, Vec<f32>, WeightSpec)> = None;
        let mut wnotes = Vec::new();
        let mut bias_out: Option<(usize, String)> = None;
        for (k, r) in p.inputs.iter().enumerate() {
            if let In::Weight(axis) = r {
                let c = self
                    .constant(&n.input[k])
                    .expect("resolved weight is a constant");
                let v = read_f32(c)?;
                refuse_non_finite("weight", &n.input[k], n, &v)?;
                let spec = weight_spec(self.cfg, *axis);
                let qw = quantize_weight(&v, &c.dims, spec);
                if qw.params.degenerate {
                    wnotes.push("a channel's weights are all zero: scale 1".to_string());
                }
                weight = Some((k, qw, v, spec));
            }
        }
        for (k, r) in p.inputs.iter().enumerate() {
            if *r != In::Bias {
                continue;
            }
            let in0 = n.input[0].clone();
            let in_scale = match (p.inputs.first(), params.get(&in0)) {
                (Some(In::Act), Some(ip)) => ip.scale[0],
                _ => continue,
            };
            let Some((_, qw, v, spec)) = weight.as_mut() else {
                continue;
            };
            let bname = n.input[k].clone();
            let bvals = read_f32(self.constant(&bname).expect("resolved bias is a constant"))?;
            refuse_non_finite("bias", &bname, n, &bvals)?;
            let wch = qw.params.scale.len();
            if wch > 1 && bvals.len() % wch != 0 {
                continue;
            }
            let (qb, mut bnotes) =
                self.quantize_bias_as_configured(&bvals, in_scale, qw, v, *spec)?;
            for (c, old, new) in &qb.raised {
                let msg = format!(
                    "INT32 bias overflow guard: weight scale of channel {c} raised from {old:e} to {new:e}"
                );
                wnotes.push(msg.clone());
                bnotes.push(msg);
            }
            let dq = self.emit_weight(
                &bname,
                &bias_qweight(qb, &bvals),
                "bias",
                &mut out.nodes,
                &mut out.inits,
                report,
                bnotes,
            );
            bias_out = Some((k, dq));
        }
        if let Some((k, qw, _, _)) = &weight {
            let wname = n.input[*k].clone();
            let dq = self.emit_weight(
                &wname,
                qw,
                "weight",
                &mut out.nodes,
                &mut out.inits,
                report,
                wnotes,
            );
            n.input[*k] = dq;
        }
        // A bias that could not be quantized stays float (still a valid QDQ graph, just not fusable).
        if let Some((k, dq)) = bias_out {
            n.input[k] = dq;
        }
        Ok(())
    }

    /// The bias quantized as `cfg.bias_type` says, with its report notes: INT8 with its own power-of-two scale, or
    /// INT32 at the accumulator scale (which may raise the weight's scales, re-quantizing `qw`).
    fn quantize_bias_as_configured(
        &self,
        bvals: &[f32],
        in_scale: f32,
        qw: &mut QWeight,
        weight_values: &[f32],
        spec: WeightSpec,
    ) -> Result<(QBias, Vec<String>)> {
        if self.cfg.bias_type != BiasType::Int8 {
            return Ok((
                quantize_bias(bvals, in_scale, qw, weight_values, spec)?,
                Vec::new(),
            ));
        }
        let qb = quantize_bias_int8(bvals);
        let clip = saturating_at_accumulator_scale(bvals, in_scale, &qw.params.scale);
        let note = format!(
            "int8 bias, power-of-two scale {:e} of its own (no value saturates); at the accumulator scale \
             (input x weight) {clip} of {} values would saturate int8",
            qb.scale[0],
            bvals.len()
        );
        Ok((qb, vec![note]))
    }

    /// Activation inputs (of every node, quantized or not) read DQ outputs: the shared one, or with `cpu_fusion`
    /// one of the node's own.
    fn read_dq_inputs(
        &mut self,
        n: &mut NodeProto,
        n0: &NodeProto,
        plan: Option<&Plan>,
        e: &Emit<'_>,
        out: &mut Emitted,
    ) {
        let dedicated = self.cfg.cpu_fusion;
        let mut dq_here: HashMap<String, String> = HashMap::new();
        for k in 0..n.input.len() {
            let x = n0.input[k].clone();
            if x.is_empty() || !e.qset.contains(&x) {
                continue;
            }
            if let Some(p) = plan {
                if matches!(p.inputs.get(k), Some(In::Weight(_)) | Some(In::Bias))
                    && n.input[k] != x
                {
                    continue; // already replaced by the weight/bias DQ
                }
            }
            let a = &out.acts[&x];
            let dq_name = if dedicated {
                if let Some(d) = dq_here.get(&x) {
                    d.clone()
                } else {
                    let dq_out = self.unique(&format!("{x}_DequantizeLinear_Output"));
                    let dq = self.dq_for(&x, dq_out.clone(), &e.params[&x], &out.acts);
                    out.nodes.push(dq);
                    dq_here.insert(x.clone(), dq_out.clone());
                    dq_out
                }
            } else {
                a.shared_dq.clone().expect("shared DQ emitted with the Q")
            };
            n.input[k] = dq_name;
        }
    }

    /// Quantized outputs: a Q after the producer (and the shared DQ); a graph output keeps its name on the last
    /// DQ. Returns the nodes that follow `n`.
    fn emit_outputs(
        &mut self,
        n: &mut NodeProto,
        n0: &NodeProto,
        e: &Emit<'_>,
        out: &mut Emitted,
    ) -> Vec<NodeProto> {
        let dedicated = self.cfg.cpu_fusion;
        let mut after: Vec<NodeProto> = Vec::new();
        for k in 0..n.output.len() {
            let o = n0.output[k].clone();
            if o.is_empty() || !e.qset.contains(&o) {
                continue;
            }
            let p = &e.params[&o];
            self.act_names(&o, p, &mut out.acts, &mut out.inits);
            let is_out = self.graph_outputs.contains(&o);
            let src = if is_out {
                let pre = self.unique(&format!("{o}_float"));
                n.output[k] = pre.clone();
                pre
            } else {
                o.clone()
            };
            let qo = self.unique(&format!("{o}_QuantizeLinear_Output"));
            let a = &out.acts[&o];
            let inputs = vec![src, a.scale.clone(), a.zp.clone()];
            let domain = self.qdomain(p.qtype);
            let qn = self.unique(&format!("{o}_QuantizeLinear"));
            after.push(qdq_node(
                "QuantizeLinear",
                qn,
                inputs,
                qo.clone(),
                domain,
                None,
            ));
            out.acts.get_mut(&o).unwrap().src = Some(qo);
            if is_out {
                let dq = self.dq_for(&o, o.clone(), p, &out.acts);
                after.push(dq);
                if !dedicated {
                    out.acts.get_mut(&o).unwrap().shared_dq = Some(o.clone());
                }
            } else if !dedicated {
                let dq_out = self.unique(&format!("{o}_DequantizeLinear_Output"));
                let dq = self.dq_for(&o, dq_out.clone(), p, &out.acts);
                after.push(dq);
                out.acts.get_mut(&o).unwrap().shared_dq = Some(dq_out);
            }
        }
        after
    }

    /// One report entry per quantized activation or constant, in name order.
    fn report_activations(
        &self,
        report: &mut QuantReport,
        sorted: &[&String],
        e: &Emit<'_>,
        tnotes: &mut HashMap<String, Vec<String>>,
    ) {
        for t in sorted {
            let p = &e.params[t.as_str()];
            report.tensors.push(TensorReport {
                name: t.to_string(),
                kind: if self.constant(t).is_some() {
                    "constant".into()
                } else {
                    "activation".into()
                },
                qtype: p.qtype.name().into(),
                min: p.rmin.clone(),
                max: p.rmax.clone(),
                scale: p.scale.clone(),
                zero_point: p.zero_point.clone(),
                axis: None,
                shared_with: e.shared_with.get(t.as_str()).cloned().unwrap_or_default(),
                notes: tnotes.remove(t.as_str()).unwrap_or_default(),
            });
        }
    }

    /// Installs the emitted nodes and initializers, then drops the float initializers and value_info nobody
    /// reads any more.
    fn install(&mut self, nodes: Vec<NodeProto>, inits: Vec<TensorProto>) {
        self.g.node = nodes;
        self.g.initializer.extend(inits);
        let mut used: HashSet<String> = HashSet::new();
        fn collect_used(g: &GraphProto, used: &mut HashSet<String>) {
            for n in &g.node {
                used.extend(n.input.iter().cloned());
                for a in &n.attribute {
                    if let Some(sg) = &a.g {
                        collect_used(sg, used);
                    }
                    for sg in &a.graphs {
                        collect_used(sg, used);
                    }
                }
            }
        }
        collect_used(self.g, &mut used);
        used.extend(self.g.output.iter().filter_map(|v| v.name.clone()));
        // Graph inputs with a default (an initializer of the same name) stay overridable.
        used.extend(self.g.input.iter().filter_map(|v| v.name.clone()));
        // Every initializer nobody reads goes, not only those the emitter replaced: folding a Clip leaves its
        // min/max constants behind, and ONNX Runtime warns about each unused one every time a host loads the model.
        self.g
            .initializer
            .retain(|t| t.name.as_ref().is_some_and(|n| used.contains(n)));
        // value_info of tensors that no longer exist.
        let mut live: HashSet<String> = HashSet::new();
        for n in &self.g.node {
            live.extend(n.output.iter().cloned());
        }
        self.g
            .value_info
            .retain(|v| v.name.as_ref().is_some_and(|n| live.contains(n)));
    }
}

/// What emission builds: the new node list, the new initializers, and the names kept per quantized activation.
struct Emitted {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    acts: HashMap<String, ActNames>,
}
