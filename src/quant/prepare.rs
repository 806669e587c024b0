//! Preparation of a float model for quantization: what real exports need before QDQ rules can be applied.
//!
//! 1. ONNX Runtime's own graph optimizer at the BASIC level (a session with `optimized_model_path`): constant
//!    folding (the Shape→Gather→Concat→Reshape glue of torch exports, ConstantOfShape/Cast chains), Identity and
//!    Dropout removal, Conv+BatchNormalization / Conv+Mul / Conv+Add folding, Pad folded into Conv. BASIC rewrites
//!    stay in the ONNX domain (higher levels introduce ORT-only ops and layouts: never used here). Checked: the
//!    result may not use any op domain the input did not import.
//! 2. Patches in Rust for what ORT leaves: opset imports of every domain ORT registers are pruned back to what the
//!    graph uses, `Constant` nodes become initializers, a BatchNormalization still behind a Conv/ConvTranspose/Gemm
//!    with constant parameters is folded into it.
//! 3. Every activation's element type and shape: the prepared graph is loaded once more with every node output
//!    exposed as an (untyped) graph output, and ONNX Runtime's type inference answers. The result is written into
//!    the graph's `value_info` and returned as [`ActivationInfo`]s.
//!
//! The prepared model computes the same function as the input (tests compare outputs on real images to 1e-5).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};
use crate::onnx::node::{attr_f, attr_i, op};
use crate::onnx::proto::{
    tensor_shape_proto::{dimension::Value as DimValue, Dimension},
    type_proto, AttributeProto, GraphProto, ModelProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use crate::onnx::{DataType, Model};
use crate::quant::legacy_opset::upgrade_old_opset;
use crate::quant::qdq::weights::{f32_tensor, read_f32};
use crate::quant::qdq::MAX_OPSET;
use crate::runtime::{GraphOptimizationLevel, Session, SessionOptions, ValueKind};

/// The oldest default-domain opset accepted: 7 to 9 are converted up to 10 here ([`upgrade_old_opset`]; the QDQ
/// emitter carries 10 on to 13). Below 7, broadcasting was an attribute (`broadcast`/`axis`) with
/// other semantics: not worth converting for models nobody exports any more.
pub const OLDEST_OPSET: i64 = 7;

/// Element type and shape of one activation (a node output or graph input of the prepared main graph).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivationInfo {
    pub name: String,
    /// ONNX element type (1 = float); 0 for non-tensor values.
    pub elem_type: i32,
    /// Dimensions; -1 where not fixed. Empty for a scalar or a tensor of unknown rank (ONNX Runtime reports both
    /// the same way).
    pub shape: Vec<i64>,
    /// Per dimension, the symbolic name (or "").
    pub dim_names: Vec<String>,
    /// True for graph inputs, false for node outputs.
    pub is_graph_input: bool,
}

/// A prepared model and what is known about its activations.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub model: ModelProto,
    /// Graph inputs (non-initializer) first, then node outputs in node order.
    pub activations: Vec<ActivationInfo>,
    /// What preparation did, for the report.
    pub notes: Vec<String>,
}

impl Prepared {
    /// The float activations (element type float): what calibration observes.
    pub fn float_activations(&self) -> impl Iterator<Item = &ActivationInfo> {
        self.activations
            .iter()
            .filter(|a| a.elem_type == DataType::Float.onnx())
    }
}

fn is_default_domain(d: Option<&str>) -> bool {
    crate::onnx::node::is_default_domain_name(d.unwrap_or(""))
}

pub use crate::onnx::node::default_opset;

/// Refuses models the quantizer cannot take, before any work: no graph, already quantized (naming the node),
/// a default-domain opset outside what the QDQ emitter supports.
pub fn check_quantizable(m: &ModelProto) -> Result<()> {
    let g = m
        .graph
        .as_ref()
        .ok_or_else(|| Error::model_invalid("the model has no graph"))?;
    crate::quant::qdq::refuse_quantized(g)?;
    let opset = default_opset(m)?;
    if !(OLDEST_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(Error::unsupported(format!(
            "default-domain opset {opset} is not supported for quantization (supported: {OLDEST_OPSET} to {MAX_OPSET})"
        )));
    }
    if g.node.is_empty() {
        return Err(Error::model_invalid(
            "the model's graph has no nodes: nothing to quantize",
        ));
    }
    Ok(())
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file path removed on drop.
struct TempPath(PathBuf);
impl TempPath {
    fn new(what: &str) -> TempPath {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        TempPath(std::env::temp_dir().join(format!(
            "ipuflow-{what}-{}-{n}-{nanos}.onnx",
            std::process::id()
        )))
    }
}
impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs ONNX Runtime's BASIC graph optimizer over `model` and returns the optimized graph.
fn ort_basic_optimize(model: &Model) -> Result<ModelProto> {
    let tmp = TempPath::new("prepare");
    let options = SessionOptions {
        graph_optimization_level: GraphOptimizationLevel::Basic,
        optimized_model_path: Some(tmp.0.clone()),
        intra_op_threads: Some(1),
        // The input's own leftovers (unused initializers) are not worth ORT's warnings here.
        log_level: Some(crate::runtime::LogLevel::Error),
        // The quantizer measures the model as written, never the CPU plan's rewrite.
        fallback_execution: crate::runtime::FallbackExecution::AsWritten,
        ..Default::default()
    };
    let session = Session::from_model(model, &options)
        .map_err(|e| e.context("preparing the model (ONNX Runtime, BASIC optimization)"))?;
    drop(session);
    let optimized = Model::load_file(&tmp.0).map_err(|e| {
        Error::new(
            ErrorKind::Runtime,
            format!(
                "ONNX Runtime's optimized model could not be read back: {}",
                e.message()
            ),
        )
    })?;
    Ok(optimized.into_proto())
}

/// Prepares `model` for quantization (see the module docs). Needs ONNX Runtime.
///
/// Errors: those of [`check_quantizable`], `Runtime` when ONNX Runtime refuses the model (its message),
/// `Internal` if the optimizer introduced an op domain the model did not use.
pub fn prepare(model: &Model) -> Result<Prepared> {
    check_quantizable(model.proto())?;
    let in_nodes = model.proto().graph.as_ref().map_or(0, |g| g.node.len());
    let upgraded;
    let (model, upgrade_note) = match upgrade_old_opset(model.proto())? {
        Some((m, note)) => {
            upgraded = Model::from_proto(m);
            (&upgraded, Some(note))
        }
        None => (model, None),
    };
    let mut m = basic_optimize_checked(model)?;
    let g = m.graph.as_mut().expect("checked by basic_optimize_checked");
    let mut notes = simplify(g)?;
    notes.insert(
        0,
        format!(
            "ONNX Runtime BASIC optimization: {in_nodes} nodes -> {} nodes",
            g.node.len()
        ),
    );
    notes.extend(subgraph_note(g));
    notes.splice(0..0, upgrade_note);
    let activations = infer_types(&mut m)?;
    Ok(Prepared {
        model: m,
        activations,
        notes,
    })
}

/// ONNX Runtime's BASIC optimization, refusing nodes of a domain the model did not use, with the original
/// model's metadata and opset imports kept.
fn basic_optimize_checked(model: &Model) -> Result<ModelProto> {
    let mut m = ort_basic_optimize(model)?;
    let original_domains: HashSet<String> = model
        .proto()
        .opset_import
        .iter()
        .map(|o| o.domain.clone().unwrap_or_default())
        .collect();
    {
        let g = m
            .graph
            .as_ref()
            .ok_or_else(|| Error::internal("ONNX Runtime's optimized model has no graph"))?;
        for n in &g.node {
            let d = n.domain.clone().unwrap_or_default();
            if !is_default_domain(Some(&d)) && !original_domains.contains(&d) {
                return Err(Error::internal(format!(
                    "ONNX Runtime's BASIC optimizer introduced node '{}' ({} of domain '{d}'), which the model did not use",
                    n.name.as_deref().unwrap_or(""),
                    op(n)
                )));
            }
        }
    }
    // Keep the original model's metadata (ORT rewrites producer and drops nothing else of interest).
    let src = model.proto();
    m.producer_name = src.producer_name.clone();
    m.producer_version = src.producer_version.clone();
    m.model_version = src.model_version;
    m.doc_string = src.doc_string.clone();
    m.domain = src.domain.clone();
    m.metadata_props = src.metadata_props.clone();
    m.ir_version = src.ir_version.max(m.ir_version);
    prune_opsets(&mut m, &original_domains);
    Ok(m)
}

/// Constants to initializers, BatchNorm folding, unused initializers dropped; one note per change.
fn simplify(g: &mut GraphProto) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let consts = constants_to_initializers(g);
    if consts > 0 {
        notes.push(format!("{consts} Constant nodes turned into initializers"));
    }
    let folded = fold_batchnorm(g)?;
    if folded > 0 {
        notes.push(format!(
            "{folded} BatchNormalization nodes folded into the preceding Conv/ConvTranspose/Gemm"
        ));
    }
    let unused = drop_unused_initializers(g);
    if unused > 0 {
        notes.push(format!("{unused} unused initializers removed"));
    }
    let left_bn = g
        .node
        .iter()
        .filter(|n| op(n) == "BatchNormalization")
        .count();
    if left_bn > 0 {
        notes.push(format!(
            "{left_bn} BatchNormalization nodes could not be folded and stay float"
        ));
    }
    Ok(notes)
}

/// The note naming the nodes with subgraphs, which stay float.
fn subgraph_note(g: &GraphProto) -> Option<String> {
    let with_subgraphs: Vec<&str> = g
        .node
        .iter()
        .filter(|n| {
            n.attribute
                .iter()
                .any(|a| a.g.is_some() || !a.graphs.is_empty())
        })
        .map(|n| n.name.as_deref().unwrap_or(""))
        .collect();
    (!with_subgraphs.is_empty()).then(|| {
        format!(
            "{} If/Loop/Scan nodes left in float with their subgraphs (only the main graph is quantized): {}",
            with_subgraphs.len(),
            with_subgraphs.join(", ")
        )
    })
}

/// Drops opset imports of domains no node uses that the original model did not import either (ORT's saved models
/// import every domain it registers).
fn prune_opsets(m: &mut ModelProto, original: &HashSet<String>) {
    let mut used: BTreeSet<String> = BTreeSet::new();
    if let Some(g) = &m.graph {
        for n in &g.node {
            used.insert(n.domain.clone().unwrap_or_default());
        }
    }
    m.opset_import.retain(|o| {
        let d = o.domain.clone().unwrap_or_default();
        is_default_domain(Some(&d)) || used.contains(&d) || original.contains(&d)
    });
}

/// Main-graph `Constant` nodes with a dense value become initializers. Returns how many.
pub fn constants_to_initializers(g: &mut GraphProto) -> usize {
    let mut keep = Vec::with_capacity(g.node.len());
    let mut moved = 0;
    for n in std::mem::take(&mut g.node) {
        if op(&n) == "Constant"
            && is_default_domain(n.domain.as_deref())
            && n.output.len() == 1
            && n.attribute.len() == 1
        {
            if let Some(mut t) = constant_value(&n.attribute[0]) {
                t.name = Some(n.output[0].clone());
                g.initializer.push(t);
                moved += 1;
                continue;
            }
        }
        keep.push(n);
    }
    g.node = keep;
    moved
}

/// The tensor a Constant node's attribute holds (`value`, `value_float(s)`, `value_int(s)`); `None` for the others.
pub(crate) fn constant_value(a: &AttributeProto) -> Option<TensorProto> {
    match a.name.as_deref()? {
        "value" => a.t.as_deref().cloned(),
        "value_float" => a.f.map(|f| f32_tensor("", &[], &[f])),
        "value_floats" => Some(f32_tensor("", &[a.floats.len() as i64], &a.floats)),
        "value_int" => a.i.map(|i| TensorProto {
            dims: vec![],
            data_type: Some(DataType::Int64.onnx()),
            int64_data: vec![i],
            ..Default::default()
        }),
        "value_ints" => Some(TensorProto {
            dims: vec![a.ints.len() as i64],
            data_type: Some(DataType::Int64.onnx()),
            int64_data: a.ints.clone(),
            ..Default::default()
        }),
        _ => None,
    }
}

/// Folds `BatchNormalization(Conv|ConvTranspose|Gemm(x))` into the producer when the producer's output feeds only
/// the BN (and is not a graph output), and the BN's scale/bias/mean/var and the producer's weight (and bias) are
/// float initializers not shared with other nodes. Returns how many were folded.
pub fn fold_batchnorm(g: &mut GraphProto) -> Result<usize> {
    let mut folded = 0;
    // One fold at a time: each rewrites the graph the next search reads. A fold whose shapes do not line up
    // stops the search (as it would be found again).
    while let Some(fold) = find_batchnorm_fold(g) {
        if !apply_batchnorm_fold(g, fold)? {
            break;
        }
        folded += 1;
    }
    // Drop BN parameter initializers nobody uses any more.
    if folded > 0 {
        let used: HashSet<String> = g
            .node
            .iter()
            .flat_map(|n| n.input.iter().cloned())
            .collect();
        let outputs: HashSet<String> = g.output.iter().filter_map(|v| v.name.clone()).collect();
        g.initializer.retain(|t| {
            t.name
                .as_ref()
                .is_some_and(|n| used.contains(n) || outputs.contains(n))
        });
    }
    Ok(folded)
}

/// A BatchNormalization that [`fold_batchnorm`] can fold: node indices and initializer indices.
struct BatchnormFold {
    bn: usize,
    producer: usize,
    /// scale, bias, mean, var.
    params: Vec<usize>,
    weight: usize,
    bias: Option<usize>,
}

/// The first foldable BatchNormalization of `g` (see [`fold_batchnorm`] for the conditions).
fn find_batchnorm_fold(g: &GraphProto) -> Option<BatchnormFold> {
    let inits: HashMap<String, usize> = g
        .initializer
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.name.clone().map(|n| (n, i)))
        .collect();
    let graph_inputs: HashSet<&str> = g.input.iter().filter_map(|v| v.name.as_deref()).collect();
    let graph_outputs: HashSet<&str> = g.output.iter().filter_map(|v| v.name.as_deref()).collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in &g.node {
        for i in &n.input {
            *uses.entry(i.as_str()).or_default() += 1;
        }
    }
    let producer: HashMap<&str, usize> = g
        .node
        .iter()
        .enumerate()
        .flat_map(|(k, n)| n.output.iter().map(move |o| (o.as_str(), k)))
        .collect();
    let constant = |name: &str| -> Option<usize> {
        if graph_inputs.contains(name) {
            return None;
        }
        inits
            .get(name)
            .copied()
            .filter(|&i| g.initializer[i].data_type == Some(DataType::Float.onnx()))
    };
    for (bi, bn) in g.node.iter().enumerate() {
        if op(bn) != "BatchNormalization"
            || !is_default_domain(bn.domain.as_deref())
            || bn.input.len() != 5
            || bn.output.len() != 1
        {
            continue;
        }
        if attr_i(bn, "training_mode").unwrap_or(0) != 0 {
            continue;
        }
        let Some(&pi) = producer.get(bn.input[0].as_str()) else {
            continue;
        };
        let p = &g.node[pi];
        let kind = op(p);
        if !matches!(kind, "Conv" | "ConvTranspose" | "Gemm")
            || !is_default_domain(p.domain.as_deref())
            || p.output.len() != 1
        {
            continue;
        }
        if uses.get(p.output[0].as_str()).copied() != Some(1)
            || graph_outputs.contains(p.output[0].as_str())
        {
            continue;
        }
        if kind == "Gemm"
            && (attr_i(p, "transA").unwrap_or(0) != 0 || attr_f(p, "alpha").unwrap_or(1.0) != 1.0)
        {
            continue;
        }
        let params: Option<Vec<usize>> = bn.input[1..5].iter().map(|n| constant(n)).collect();
        let Some(params) = params else { continue };
        let Some(w) = p.input.get(1).and_then(|n| constant(n)) else {
            continue;
        };
        if uses.get(p.input[1].as_str()).copied() != Some(1) {
            continue;
        }
        let bias = match p.input.get(2).filter(|s| !s.is_empty()) {
            Some(b) => match constant(b) {
                Some(i) if uses.get(b.as_str()).copied() == Some(1) => Some(i),
                _ => continue,
            },
            None => None,
        };
        return Some(BatchnormFold {
            bn: bi,
            producer: pi,
            params,
            weight: w,
            bias,
        });
    }
    None
}

/// Rewrites the producer's weight and bias to absorb the BatchNormalization and removes it. `Ok(false)`: the
/// shapes do not line up, nothing was changed.
fn apply_batchnorm_fold(g: &mut GraphProto, fold: BatchnormFold) -> Result<bool> {
    let BatchnormFold {
        bn: bi,
        producer: pi,
        params,
        weight: wi,
        bias,
    } = fold;
    let eps = attr_f(&g.node[bi], "epsilon").unwrap_or(1e-5);
    let read = |i: usize| read_f32(&g.initializer[i]);
    let (scale, b, mean, var) = (
        read(params[0])?,
        read(params[1])?,
        read(params[2])?,
        read(params[3])?,
    );
    let c = scale.len();
    if [b.len(), mean.len(), var.len()].iter().any(|&l| l != c) {
        return Ok(false);
    }
    let p = &g.node[pi];
    let kind = op(p).to_string();
    let wt = &g.initializer[wi];
    let dims = wt.dims.clone();
    let mut w = read_f32(wt)?;
    // Output-channel axis of the weight and the number of output channels it gives.
    let group = attr_i(p, "group").unwrap_or(1).max(1) as usize;
    let (axis, out_ch) = match kind.as_str() {
        "Conv" => (0usize, dims.first().copied().unwrap_or(0) as usize),
        "ConvTranspose" => (1, dims.get(1).copied().unwrap_or(0) as usize * group),
        _ => {
            let trans_b = attr_i(p, "transB").unwrap_or(0) != 0;
            if dims.len() != 2 {
                return Ok(false);
            }
            (
                if trans_b { 0 } else { 1 },
                dims[if trans_b { 0 } else { 1 }] as usize,
            )
        }
    };
    if out_ch != c || c == 0 {
        // Shapes do not line up (or a grouped ConvTranspose with per-group channels): leave it.
        return Ok(false);
    }
    let k: Vec<f32> = (0..c).map(|i| scale[i] / (var[i] + eps).sqrt()).collect();
    scale_output_channels(&mut w, &dims, axis, &kind, group, &k);
    let beta = if kind == "Gemm" {
        attr_f(p, "beta").unwrap_or(1.0)
    } else {
        1.0
    };
    let old_bias: Vec<f32> = match bias {
        Some(i) => read(i)?.into_iter().map(|v| v * beta).collect(),
        None => vec![0.0; c],
    };
    if old_bias.len() != c {
        return Ok(false);
    }
    let new_bias: Vec<f32> = (0..c)
        .map(|i| (old_bias[i] - mean[i]) * k[i] + b[i])
        .collect();
    let wname = g.initializer[wi].name.clone().unwrap_or_default();
    g.initializer[wi] = f32_tensor(&wname, &dims, &w);
    let bn_out = g.node[bi].output[0].clone();
    let bias_name = match bias {
        Some(i) => {
            let n = g.initializer[i].name.clone().unwrap_or_default();
            g.initializer[i] = f32_tensor(&n, &[c as i64], &new_bias);
            n
        }
        None => {
            let n = format!("{bn_out}_folded_bias");
            g.initializer.push(f32_tensor(&n, &[c as i64], &new_bias));
            n
        }
    };
    let p = &mut g.node[pi];
    if p.input.len() < 3 {
        p.input.resize(2, String::new());
        p.input.push(bias_name);
    } else {
        p.input[2] = bias_name;
    }
    if kind == "Gemm" {
        // C is added with beta: the folded bias is exact only with beta = 1.
        p.attribute.retain(|a| a.name.as_deref() != Some("beta"));
    }
    p.output[0] = bn_out;
    g.node.remove(bi);
    Ok(true)
}

/// Multiplies the weight `w` (shape `dims`) by `k[channel]` along its output-channel `axis`.
fn scale_output_channels(
    w: &mut [f32],
    dims: &[i64],
    axis: usize,
    kind: &str,
    group: usize,
    k: &[f32],
) {
    let c = k.len();
    let inner: usize = dims[axis + 1..].iter().product::<i64>() as usize;
    let axis_len = dims[axis] as usize;
    let outer: usize = dims[..axis].iter().product::<i64>() as usize;
    let per_group_out = if kind == "ConvTranspose" { axis_len } else { c };
    for o in 0..outer {
        for a in 0..axis_len {
            // ConvTranspose weights are [C_in, C_out/group, ...]: the channel is group(o) * C_out/group + a.
            let ch = if kind == "ConvTranspose" {
                (o / (dims[0] as usize / group)) * per_group_out + a
            } else {
                a
            };
            let f = k[ch];
            let start = (o * axis_len + a) * inner;
            for v in &mut w[start..start + inner] {
                *v *= f;
            }
        }
    }
}

/// Names read by the nodes of `g` and of every subgraph under them.
fn used_names(g: &GraphProto, out: &mut HashSet<String>) {
    for n in &g.node {
        out.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
        for a in &n.attribute {
            if let Some(sg) = a.g.as_deref() {
                used_names(sg, out);
            }
            for sg in &a.graphs {
                used_names(sg, out);
            }
        }
    }
    out.extend(g.output.iter().filter_map(|v| v.name.clone()));
}

/// Removes initializers nothing reads (ORT's optimizer leaves some behind). Returns how many.
fn drop_unused_initializers(g: &mut GraphProto) -> usize {
    let mut used = HashSet::new();
    used_names(g, &mut used);
    let mut removed: HashSet<String> = HashSet::new();
    g.initializer.retain(|t| {
        let keep = t.name.as_ref().is_some_and(|n| used.contains(n));
        if !keep {
            removed.extend(t.name.clone());
        }
        keep
    });
    // Graph inputs that only declared a removed initializer (IR < 4 models list them) go too.
    g.input
        .retain(|v| !v.name.as_ref().is_some_and(|n| removed.contains(n)));
    removed.len()
}

fn untyped(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        ..Default::default()
    }
}

/// The `value_info` entry for an activation. ONNX Runtime's C API reports a tensor whose rank it could not infer
/// with 0 dimensions, exactly like a scalar; stating "scalar" for it makes an older runtime's shape inference fail
/// downstream (ORT 1.20 on EfficientNet-Lite0: the Reshape before the classifier Gemm becomes "rank 0", and the
/// calibration session is refused with "First input does not have rank 2"). So 0 dimensions give the element type
/// only, and the runtime infers the shape itself.
fn typed(a: &ActivationInfo) -> ValueInfoProto {
    let shape = (!a.shape.is_empty()).then(|| TensorShapeProto {
        dim: a
            .shape
            .iter()
            .zip(&a.dim_names)
            .map(|(&d, n)| dimension(d, n))
            .collect(),
    });
    ValueInfoProto {
        name: Some(a.name.clone()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(a.elem_type),
                shape,
            })),
        }),
        ..Default::default()
    }
}

fn dimension(d: i64, name: &str) -> Dimension {
    Dimension {
        denotation: None,
        value: if d >= 0 {
            Some(DimValue::DimValue(d))
        } else if !name.is_empty() {
            Some(DimValue::DimParam(name.to_string()))
        } else {
            None
        },
    }
}

/// Gives every float activation whose `value_info` has no shape (ONNX Runtime could not tell its rank before
/// running) the rank it had in the calibration runs, every dimension left unknown: the QDQ emitter needs ranks to
/// raise opsets exactly (e.g. a Softmax on the last axis). Returns how many were filled.
pub fn observed_ranks(m: &mut ModelProto, calib: &crate::quant::Calibration) -> usize {
    let Some(g) = m.graph.as_mut() else { return 0 };
    let mut filled = 0;
    for v in &mut g.value_info {
        let Some(stats) = v.name.as_deref().and_then(|n| calib.get(n)) else {
            continue;
        };
        if let Some(TypeProto {
            value: Some(type_proto::Value::TensorType(t)),
            ..
        }) = v.r#type.as_mut()
        {
            if t.shape.is_none() {
                t.shape = Some(TensorShapeProto {
                    dim: stats.shape.iter().map(|_| dimension(-1, "")).collect(),
                });
                filled += 1;
            }
        }
    }
    filled
}

/// Asks ONNX Runtime for the type and shape of every node output of the main graph (and of the graph inputs), and
/// records them in the graph's `value_info`.
fn infer_types(m: &mut ModelProto) -> Result<Vec<ActivationInfo>> {
    let g = m.graph.as_ref().expect("prepared model has a graph");
    let inits: HashSet<&str> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    let outputs: HashSet<&str> = g.output.iter().filter_map(|v| v.name.as_deref()).collect();
    let mut probe = m.clone();
    {
        let pg = probe.graph.as_mut().expect("graph");
        let mut seen = HashSet::new();
        for n in &g.node {
            for o in &n.output {
                if !o.is_empty() && !outputs.contains(o.as_str()) && seen.insert(o.clone()) {
                    pg.output.push(untyped(o));
                }
            }
        }
    }
    let options = SessionOptions {
        graph_optimization_level: GraphOptimizationLevel::Disable,
        intra_op_threads: Some(1),
        log_level: Some(crate::runtime::LogLevel::Error),
        // The quantizer measures the model as written, never the CPU plan's rewrite.
        fallback_execution: crate::runtime::FallbackExecution::AsWritten,
        ..Default::default()
    };
    let session = Session::from_model(&Model::from_proto(probe), &options)
        .map_err(|e| e.context("inferring activation types (ONNX Runtime)"))?;
    let by_name: HashMap<&str, &crate::runtime::TensorInfo> = session
        .outputs()
        .iter()
        .chain(session.inputs())
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut acts = Vec::new();
    let info = |name: &str, is_input: bool| -> Option<ActivationInfo> {
        let t = by_name.get(name)?;
        Some(ActivationInfo {
            name: name.to_string(),
            elem_type: if t.kind == ValueKind::Tensor {
                t.element_type_code
            } else {
                0
            },
            shape: t.shape.clone(),
            dim_names: t.dim_names.clone(),
            is_graph_input: is_input,
        })
    };
    for v in &g.input {
        let Some(n) = v.name.as_deref() else { continue };
        if inits.contains(n) {
            continue;
        }
        if let Some(a) = info(n, true) {
            acts.push(a);
        }
    }
    let mut seen = HashSet::new();
    for n in &g.node {
        for o in &n.output {
            if !o.is_empty() && seen.insert(o.as_str()) {
                if let Some(a) = info(o, false) {
                    acts.push(a);
                }
            }
        }
    }
    drop(session);
    let g = m.graph.as_mut().expect("graph");
    let known: HashSet<String> = g
        .input
        .iter()
        .chain(&g.output)
        .filter_map(|v| v.name.clone())
        .collect();
    g.value_info.clear();
    for a in &acts {
        if !known.contains(&a.name) && a.elem_type != 0 {
            g.value_info.push(typed(a));
        }
    }
    Ok(acts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{GraphProto, NodeProto};

    fn attr_f32(name: &str, f: f32) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            f: Some(f),
            r#type: Some(1),
            ..Default::default()
        }
    }

    #[test]
    fn batchnorm_after_conv_is_folded_exactly() {
        // Conv 1x1 with 2 output channels over 1 input channel, then BN.
        let w = f32_tensor("w", &[2, 1, 1, 1], &[2.0, -1.0]);
        let bnp = [
            f32_tensor("s", &[2], &[1.5, 0.5]),
            f32_tensor("b", &[2], &[0.1, -0.2]),
            f32_tensor("m", &[2], &[0.3, 0.4]),
            f32_tensor("v", &[2], &[4.0, 0.25]),
        ];
        let mut g = GraphProto {
            node: vec![
                NodeProto {
                    op_type: Some("Conv".into()),
                    input: vec!["x".into(), "w".into()],
                    output: vec!["c".into()],
                    ..Default::default()
                },
                NodeProto {
                    op_type: Some("BatchNormalization".into()),
                    input: vec!["c".into(), "s".into(), "b".into(), "m".into(), "v".into()],
                    output: vec!["y".into()],
                    attribute: vec![attr_f32("epsilon", 0.0)],
                    ..Default::default()
                },
            ],
            initializer: std::iter::once(w).chain(bnp).collect(),
            ..Default::default()
        };
        assert_eq!(fold_batchnorm(&mut g).unwrap(), 1);
        assert_eq!(g.node.len(), 1);
        assert_eq!(g.node[0].output[0], "y");
        let w = read_f32(
            g.initializer
                .iter()
                .find(|t| t.name.as_deref() == Some("w"))
                .unwrap(),
        )
        .unwrap();
        // k = s / sqrt(v) = [0.75, 1.0]
        assert_eq!(w, vec![1.5, -1.0]);
        let bias = read_f32(
            g.initializer
                .iter()
                .find(|t| t.name.as_deref() == Some(g.node[0].input[2].as_str()))
                .unwrap(),
        )
        .unwrap();
        assert!((bias[0] - (-0.3 * 0.75 + 0.1)).abs() < 1e-6);
        assert!((bias[1] - (-0.4 * 1.0 - 0.2)).abs() < 1e-6);
        assert_eq!(g.initializer.len(), 2, "BN parameters are dropped");
    }

    /// ONNX Runtime reports an activation of unknown rank with 0 dimensions; its value_info must not call it a
    /// scalar (ORT 1.20 then refuses EfficientNet-Lite0's calibration model: "First input does not have rank 2").
    #[test]
    fn unknown_rank_gets_a_type_without_a_shape() {
        let tensor = |v: ValueInfoProto| match v.r#type.and_then(|t| t.value) {
            Some(type_proto::Value::TensorType(t)) => t,
            other => panic!("not a tensor type: {other:?}"),
        };
        let unknown = ActivationInfo {
            name: "/Reshape_output_0".into(),
            elem_type: DataType::Float.onnx(),
            shape: vec![],
            dim_names: vec![],
            is_graph_input: false,
        };
        let t = tensor(typed(&unknown));
        assert_eq!(t.elem_type, Some(DataType::Float.onnx()));
        assert!(
            t.shape.is_none(),
            "0 dimensions stated as a shape: {:?}",
            t.shape
        );

        let known = ActivationInfo {
            shape: vec![-1, 1280],
            dim_names: vec!["N".into(), String::new()],
            ..unknown
        };
        let dims = tensor(typed(&known)).shape.expect("a shape").dim;
        let values: Vec<_> = dims.into_iter().map(|d| d.value).collect();
        assert_eq!(
            values,
            vec![
                Some(DimValue::DimParam("N".into())),
                Some(DimValue::DimValue(1280))
            ]
        );
    }
}
