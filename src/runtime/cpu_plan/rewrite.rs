//! The graph rewrites of the CPU plan. Each pass works on the main graph of a decoded model, rebuilds its index of
//! producers and consumers first, and counts what it changed. Subgraphs (If/Loop bodies) are left as written.
//!
//! Why each rewrite is what ONNX Runtime (1.32) needs, from its QDQ selectors
//! (`onnxruntime/core/optimizer/qdq_transformer/selectors_actions/qdq_selectors.cc`, `qdq_selector_action_transformer.cc`):
//! - `ConvNodeGroupSelector` / `MatMulNodeGroupSelector` refuse int8 activations unless `QDQIsInt8Allowed()`, which
//!   is false on every non-ARM build: x86 fuses only uint8 activations. Int8 → uint8 with the zero point + 128 is
//!   exact (QuantizeLinear saturates to the same values shifted by 128; DequantizeLinear subtracts the shifted zero
//!   point).
//! - The same selectors fuse a bias only when its DequantizeLinear input is int32, and the fused kernel (QLinearConv,
//!   QGemm) reads those int32 values as if their scale were `scale_x * scale_w`; the bias DequantizeLinear's own
//!   scale is ignored. So an int8 or power-of-two bias is requantized to int32 at `scale_x * scale_w` (exact when the
//!   ratio of the scales is an integer, otherwise within half an accumulator unit).
//! - `NodeGroupSelector::GetQDQSelection` accepts a Relu/Clip between the target and its Q only when the Q makes it
//!   redundant (`IsClipMadeRedundantByQ`: the Q's range lies inside the clip's), which a zero point of 128 never
//!   does. Quantizing the producer's output with the Q's own scale and zero point and clamping the integers is
//!   exact because QuantizeLinear is monotone: Q(clip(x, lo, hi)) = clip(Q(x), Q(lo), Q(hi)). ONNX Runtime's CPU
//!   Clip kernel takes int8 and uint8 from opset 12 (`clip.cc`), so the clamp is one integer Clip.
//! - On x86 without VNNI the U8S8 kernels add pairs of u8·s8 products in saturating int16 (`vpmaddubsw`): there the
//!   plan gives per-tensor int8 weights uint8 (zero point + 128) so the exact U8U8 kernels run instead.
//! - `CheckQDQNodes` requires the target's output edges to go to its Q nodes only; a DequantizeLinear read by several
//!   nodes is duplicated so every consumer owns one (as ONNX Runtime's `EnsureUniqueDQForNodeUnit` does).

use std::collections::{HashMap, HashSet};

use super::tensor::{self, INT16, INT32, INT8, UINT16, UINT8};
use crate::onnx::node::{attr, attr_f, attr_i, op};
use crate::onnx::proto::{attribute_proto::AttributeType, AttributeProto, GraphProto, NodeProto};

/// One kind of change and how many times it was made.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// What was rewritten, e.g. "int8 activations -> uint8 (zero point + 128)".
    pub rewrite: String,
    pub count: usize,
    /// True when the rewrite gives the same integers as the model as written (up to ONNX Runtime's own kernels).
    pub exact: bool,
}

pub(super) fn is_q(n: &NodeProto) -> bool {
    op(n) == "QuantizeLinear" && qdq_domain(n)
}

pub(super) fn is_dq(n: &NodeProto) -> bool {
    op(n) == "DequantizeLinear" && qdq_domain(n)
}

fn qdq_domain(n: &NodeProto) -> bool {
    matches!(
        n.domain.as_deref().unwrap_or(""),
        "" | "ai.onnx" | "com.microsoft"
    )
}

/// Producers, consumers, initializers and graph outputs of a graph, by tensor name. It borrows the names from the
/// graph (no copies: building an index with owned keys was a fifth of the plan's preparation); a pass builds it,
/// collects its edits, and lets it go before applying them.
pub(super) struct Index<'g> {
    init: HashMap<&'g str, usize>,
    producer: HashMap<&'g str, usize>,
    consumers: HashMap<&'g str, Vec<usize>>,
    outputs: HashSet<&'g str>,
}

impl<'g> Index<'g> {
    pub fn new(g: &'g GraphProto) -> Index<'g> {
        let mut ix = Index {
            init: HashMap::with_capacity(g.initializer.len()),
            producer: HashMap::with_capacity(g.node.len()),
            consumers: HashMap::with_capacity(g.node.len() + g.initializer.len()),
            outputs: g.output.iter().filter_map(|o| o.name.as_deref()).collect(),
        };
        // Names a subgraph (If/Loop/Scan body) reads from this graph count as outputs: no pass renames or removes
        // them, since the passes do not rewrite subgraphs.
        ix.outputs.extend(subgraph_reads(g));
        for (i, t) in g.initializer.iter().enumerate() {
            if let Some(n) = &t.name {
                ix.init.insert(n, i);
            }
        }
        for (i, n) in g.node.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                ix.producer.insert(o, i);
            }
            for (k, x) in n.input.iter().enumerate() {
                // Once per node, however many of its inputs read the tensor.
                if !x.is_empty() && !n.input[..k].contains(x) {
                    ix.consumers.entry(x).or_default().push(i);
                }
            }
        }
        ix
    }

    fn consumers(&self, t: &str) -> &[usize] {
        self.consumers.get(t).map(Vec::as_slice).unwrap_or(&[])
    }

    fn is_init(&self, t: &str) -> bool {
        self.init.contains_key(t)
    }

    /// The position of initializer `t` in the graph's list.
    fn init(&self, t: &str) -> Option<usize> {
        self.init.get(t).copied()
    }

    /// The node that produces `t`.
    fn producer(&self, t: &str) -> Option<usize> {
        self.producer.get(t).copied()
    }

    /// Whether `t` is a graph output or read by a subgraph.
    fn is_output(&self, t: &str) -> bool {
        self.outputs.contains(t)
    }
}

/// Every tensor name the node inputs of the graph's subgraphs (recursively) read: a superset of what they take
/// from the outer scope.
fn subgraph_reads(g: &GraphProto) -> HashSet<&str> {
    fn walk<'g>(g: &'g GraphProto, out: &mut HashSet<&'g str>) {
        for n in &g.node {
            out.extend(n.input.iter().map(String::as_str));
            for a in &n.attribute {
                for sub in a.g.iter().map(|b| &**b).chain(a.graphs.iter()) {
                    walk(sub, out);
                }
            }
        }
    }
    let mut out = HashSet::new();
    for n in &g.node {
        for a in &n.attribute {
            for sub in a.g.iter().map(|b| &**b).chain(a.graphs.iter()) {
                walk(sub, &mut out);
            }
        }
    }
    out
}

/// Quantization parameters of a Q or DQ node whose scale (and zero point, if any) are initializers.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct QParams {
    pub scale: Vec<f32>,
    pub zp: Vec<i64>,
    /// The integer type (the zero point's; uint8 for a Q without one).
    pub dt: i32,
}

pub(super) fn qparams(g: &GraphProto, ix: &Index, n: &NodeProto) -> Option<QParams> {
    if attr(n, "block_size").is_some() || attr(n, "output_dtype").is_some() {
        return None;
    }
    let scale = tensor::floats(&g.initializer[ix.init(n.input.get(1)?)?])?;
    let (zp, dt) = match n.input.get(2).filter(|z| !z.is_empty()) {
        Some(z) => {
            let t = &g.initializer[ix.init(z)?];
            (tensor::ints(t)?, t.data_type?)
        }
        None if is_q(n) => (vec![0; scale.len()], UINT8),
        None => {
            // A DQ without zero point: its type is its input's, known only for an initializer.
            let t = &g.initializer[ix.init(n.input.first()?)?];
            (vec![0; scale.len()], t.data_type?)
        }
    };
    (zp.len() == scale.len() && !scale.is_empty()).then_some(QParams { scale, zp, dt })
}

/// Unique names for new tensors and nodes. It keeps a 64-bit hash of each name in use rather than a copy (copying
/// every name of the graph cost more than the passes that use it); a hash collision only makes `fresh` skip a free
/// name, so the names stay unique and deterministic.
pub(super) struct Names {
    used: HashSet<u64>,
}

fn name_hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same graph always gets the same names (the cache key relies on determinism).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl Names {
    pub fn new(g: &GraphProto) -> Names {
        let nodes = g
            .node
            .iter()
            .flat_map(|n| n.input.iter().chain(n.output.iter()).chain(n.name.iter()));
        let values = [&g.input, &g.output]
            .into_iter()
            .flatten()
            .filter_map(|v| v.name.as_ref());
        let used = nodes
            .chain(g.initializer.iter().filter_map(|t| t.name.as_ref()))
            .chain(values)
            .map(|s| name_hash(s))
            .collect();
        Names { used }
    }

    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 1;
        while !self.used.insert(name_hash(&name)) {
            name = format!("{base}_{i}");
            i += 1;
        }
        name
    }
}

/// Edits collected during a pass, applied at its end so node indices stay valid meanwhile.
#[derive(Default)]
struct Edits {
    remove: HashSet<usize>,
    /// New nodes placed just before node i (in the order given).
    before: HashMap<usize, Vec<NodeProto>>,
}

impl Edits {
    fn apply(self, g: &mut GraphProto) {
        let mut before = self.before;
        let old = std::mem::take(&mut g.node);
        for (i, n) in old.into_iter().enumerate() {
            if let Some(new) = before.remove(&i) {
                g.node.extend(new);
            }
            if !self.remove.contains(&i) {
                g.node.push(n);
            }
        }
    }
}

fn node(
    op_type: &str,
    domain: &str,
    name: String,
    input: Vec<String>,
    output: Vec<String>,
) -> NodeProto {
    NodeProto {
        op_type: Some(op_type.into()),
        domain: (!domain.is_empty()).then(|| domain.to_string()),
        name: Some(name),
        input,
        output,
        ..Default::default()
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

/// The activation Q/DQ data types used in the graph (activation: input not an initializer).
pub(super) fn activation_types(g: &GraphProto, ix: &Index) -> HashSet<i32> {
    g.node
        .iter()
        .filter(|n| (is_q(n) || is_dq(n)) && !n.input.first().is_some_and(|x| ix.is_init(x)))
        .filter_map(|n| qparams(g, ix, n).map(|p| p.dt))
        .collect()
}

/// Int8 activation Q→DQ groups become uint8 with the zero point shifted by 128. Exact.
pub(super) fn int8_to_uint8(g: &mut GraphProto, names: &mut Names) -> usize {
    let ix = Index::new(g);
    let mut new_zp: HashMap<String, String> = HashMap::new();
    let mut count = 0;
    let mut retarget: Vec<(usize, String)> = Vec::new();
    let mut new_inits = Vec::new();
    for (i, q) in g.node.iter().enumerate() {
        if !is_q(q) || q.input.first().is_none_or(|x| ix.is_init(x)) {
            continue;
        }
        let Some(p) = qparams(g, &ix, q).filter(|p| p.dt == INT8) else {
            continue;
        };
        let t = &q.output[0];
        let cons = ix.consumers(t);
        if ix.is_output(t)
            || cons.is_empty()
            || !cons.iter().all(|&c| {
                let d = &g.node[c];
                is_dq(d) && d.input[0] == *t && qparams(g, &ix, d).as_ref() == Some(&p)
            })
        {
            continue;
        }
        for &n in std::iter::once(&i).chain(cons) {
            let zp_name = g.node[n].input[2].clone();
            let u8_name = new_zp
                .entry(zp_name.clone())
                .or_insert_with(|| {
                    let name = names.fresh(&format!("{zp_name}_u8"));
                    let src = &g.initializer[ix.init[zp_name.as_str()]];
                    let vals: Vec<i64> = p.zp.iter().map(|z| z + 128).collect();
                    new_inits.push(tensor::int_tensor(&name, UINT8, &src.dims, &vals));
                    name
                })
                .clone();
            retarget.push((n, u8_name));
        }
        count += 1;
    }
    for (n, zp) in retarget {
        g.node[n].input[2] = zp;
    }
    g.initializer.extend(new_inits);
    count
}

/// Outcome of the bias pass: (requantized exactly, requantized with rounding, float biases quantized).
pub(super) fn bias_to_int32(g: &mut GraphProto, names: &mut Names) -> (usize, usize) {
    let ix = Index::new(g);
    let mut edits = Edits::default();
    let mut new_inits = Vec::new();
    let mut set_bias: Vec<(usize, String)> = Vec::new();
    let (mut exact, mut rounded) = (0, 0);
    for (i, n) in g.node.iter().enumerate() {
        let Some((xp, wp, bias)) = bias_operands(g, &ix, n) else {
            continue;
        };
        let scale: Vec<f32> = (0..bias.len())
            .map(|k| xp.scale[0] * wp.scale[if wp.scale.len() == 1 { 0 } else { k }])
            .collect();
        let q: Vec<i64> = bias
            .iter()
            .zip(&scale)
            .map(|(&v, &s)| tensor::quantize(v, s, 0, INT32))
            .collect();
        if q.iter()
            .zip(&scale)
            .zip(&bias)
            .all(|((&q, &s), &v)| q as f32 * s == v)
        {
            exact += 1;
        } else {
            rounded += 1;
        }
        let per_channel = wp.scale.len() != 1;
        let (dq, out) = int32_bias(names, &n.input[2], &q, &scale, per_channel, &mut new_inits);
        edits.before.entry(i).or_default().push(dq);
        // The old bias DequantizeLinear, read by nothing else now, would stay in the graph and run on every call.
        if let Some(old) = sole_dq(g, &ix, &n.input[2]) {
            edits.remove.insert(old);
        }
        set_bias.push((i, out));
    }
    for (i, b) in set_bias {
        g.node[i].input[2] = b;
    }
    g.initializer.extend(new_inits);
    edits.apply(g);
    (exact, rounded)
}

/// The DequantizeLinear that produces `t` when `t` has no other reader and is no graph output.
fn sole_dq(g: &GraphProto, ix: &Index, t: &str) -> Option<usize> {
    let p = ix.producer(t).filter(|&p| is_dq(&g.node[p]))?;
    (ix.consumers(t).len() == 1 && !ix.is_output(t)).then_some(p)
}

/// For a Conv or Gemm (beta 1) with a bias whose input and weight come through DequantizeLinear (8-bit per-tensor
/// activations, constant weights): the activation's and weight's parameters and the float bias (a float
/// initializer, or a dequantized one not already int32 at scale_x*scale_w). `None` for any other node.
fn bias_operands(
    g: &GraphProto,
    ix: &Index,
    n: &NodeProto,
) -> Option<(QParams, QParams, Vec<f32>)> {
    if !matches!(op(n), "Conv" | "Gemm") || n.input.len() < 3 || n.input[2].is_empty() {
        return None;
    }
    if op(n) == "Gemm" && attr_f(n, "beta").unwrap_or(1.0) != 1.0 {
        return None;
    }
    let dq_of = |x: &str| ix.producer(x).map(|p| &g.node[p]).filter(|d| is_dq(d));
    let (xdq, wdq) = (dq_of(&n.input[0])?, dq_of(&n.input[1])?);
    let (xp, wp) = (qparams(g, ix, xdq)?, qparams(g, ix, wdq)?);
    // Only 8-bit activations fuse on the CPU; 16-bit ones stay as written.
    if !matches!(xp.dt, UINT8 | INT8) || xp.scale.len() != 1 || !ix.is_init(&wdq.input[0]) {
        return None;
    }
    let b = &n.input[2];
    let bias: Vec<f32> = if let Some(bdq) = dq_of(b) {
        dequantized_bias(g, ix, bdq, &xp, &wp)?
    } else {
        tensor::floats(&g.initializer[ix.init(b)?])?
    };
    if wp.scale.len() != 1 && wp.scale.len() != bias.len() {
        return None;
    }
    Some((xp, wp, bias))
}

/// The float values of a bias dequantized by `bdq` from an integer initializer; `None` when it cannot be read or
/// is already int32 with zero point 0 at scale_x*scale_w (nothing to do).
fn dequantized_bias(
    g: &GraphProto,
    ix: &Index,
    bdq: &NodeProto,
    xp: &QParams,
    wp: &QParams,
) -> Option<Vec<f32>> {
    let (q, p) = ix
        .init(&bdq.input[0])
        .and_then(|t| tensor::ints(&g.initializer[t]))
        .zip(qparams(g, ix, bdq))?;
    let per = |v: &[f32], k: usize| if v.len() == 1 { v[0] } else { v[k % v.len()] };
    let perz = |v: &[i64], k: usize| if v.len() == 1 { v[0] } else { v[k % v.len()] };
    if p.scale.len() != 1 && p.scale.len() != q.len() {
        return None;
    }
    let target: Vec<f32> = (0..q.len())
        .map(|k| xp.scale[0] * per(&wp.scale, k))
        .collect();
    let already = p.dt == INT32
        && p.zp.iter().all(|&z| z == 0)
        && (0..q.len()).all(|k| per(&p.scale, k) == target[k]);
    if already {
        return None;
    }
    Some(
        (0..q.len())
            .map(|k| (q[k] - perz(&p.zp, k)) as f32 * per(&p.scale, k))
            .collect(),
    )
}

/// The int32 bias `q` at `scale` for bias `b`: its initializers go to `new_inits`; returns the DequantizeLinear
/// node that reads them and the name of its output (the new bias).
fn int32_bias(
    names: &mut Names,
    b: &str,
    q: &[i64],
    scale: &[f32],
    per_channel: bool,
    new_inits: &mut Vec<crate::onnx::proto::TensorProto>,
) -> (NodeProto, String) {
    let base = names.fresh(&format!("{b}_i32"));
    let sname = names.fresh(&format!("{b}_i32_scale"));
    let out = names.fresh(&format!("{b}_i32_dq"));
    let dims = [q.len() as i64];
    new_inits.push(tensor::int_tensor(&base, INT32, &dims, q));
    if per_channel {
        new_inits.push(tensor::float_tensor(&sname, &dims, scale));
    } else {
        new_inits.push(tensor::float_tensor(&sname, &[], &scale[..1]));
    }
    let mut dq = node(
        "DequantizeLinear",
        "",
        names.fresh(&format!("{out}_node")),
        vec![base, sname],
        vec![out.clone()],
    );
    if per_channel {
        dq.attribute.push(int_attr("axis", 0));
    }
    (dq, out)
}

/// The producers whose QDQ groups ONNX Runtime's CPU provider fuses into one integer kernel.
const FUSED_PRODUCERS: &[&str] = &["Conv", "Gemm", "MatMul", "Add", "Mul"];

/// Producer → Relu/Clip → Q (no Q/DQ between) becomes producer → Q → integer Clip (or just Q when the clamp is the
/// full integer range). Exact (QuantizeLinear is monotone). Needs opset ≥ 12 for integer Clip.
pub(super) fn clamp_after_q(g: &mut GraphProto, names: &mut Names, opset: i64) -> usize {
    if opset < 12 {
        return 0;
    }
    let ix = Index::new(g);
    let mut edits = Edits::default();
    let mut new_inits = Vec::new();
    let mut count = 0;
    for (i, r) in g.node.iter().enumerate() {
        let kind = op(r);
        if !matches!(kind, "Relu" | "Clip") || !r.domain.as_deref().unwrap_or("").is_empty() {
            continue;
        }
        let x = &r.input[0];
        let Some(p) = ix.producer(x) else {
            continue;
        };
        if !FUSED_PRODUCERS.contains(&op(&g.node[p]))
            || ix.consumers(x).len() != 1
            || ix.is_output(x)
        {
            continue;
        }
        let y = &r.output[0];
        let cons = ix.consumers(y);
        if cons.len() != 1 || ix.is_output(y) || !is_q(&g.node[cons[0]]) {
            continue;
        }
        let q = &g.node[cons[0]];
        let Some(qp) =
            qparams(g, &ix, q).filter(|p| p.scale.len() == 1 && matches!(p.dt, UINT8 | INT8))
        else {
            continue;
        };
        let bound = |k: usize, attr_name: &str| -> Option<Option<f32>> {
            match r.input.get(k).filter(|s| !s.is_empty()) {
                Some(name) => {
                    let v = tensor::floats(&g.initializer[ix.init(name)?])?;
                    (v.len() == 1).then(|| Some(v[0]))
                }
                None => Some(attr_f(r, attr_name)),
            }
        };
        let (lo, hi) = if kind == "Relu" {
            (Some(0.0), None)
        } else {
            match (bound(1, "min"), bound(2, "max")) {
                (Some(lo), Some(hi)) => (lo, hi),
                _ => continue,
            }
        };
        let (qmin, qmax) = tensor::range(qp.dt).unwrap_or((0, 255));
        let qlo = lo.map_or(qmin, |v| tensor::quantize(v, qp.scale[0], qp.zp[0], qp.dt));
        let qhi = hi.map_or(qmax, |v| tensor::quantize(v, qp.scale[0], qp.zp[0], qp.dt));
        if qlo > qhi {
            continue;
        }
        let qout = q.output[0].clone();
        let domain = q.domain.clone().unwrap_or_default();
        let mut inputs = q.input.clone();
        inputs[0] = x.clone();
        let mut new_q = q.clone();
        new_q.input = inputs;
        new_q.domain = (!domain.is_empty()).then_some(domain);
        let mut added = Vec::new();
        if qlo == qmin && qhi == qmax {
            new_q.output = vec![qout];
            added.push(new_q);
        } else {
            let mid = names.fresh(&format!("{x}_q"));
            new_q.output = vec![mid.clone()];
            new_q.name = Some(names.fresh(&format!("{mid}_node")));
            let lo_name = names.fresh(&format!("{qout}_clip_min"));
            let hi_name = names.fresh(&format!("{qout}_clip_max"));
            new_inits.push(tensor::int_tensor(&lo_name, qp.dt, &[], &[qlo]));
            new_inits.push(tensor::int_tensor(&hi_name, qp.dt, &[], &[qhi]));
            added.push(new_q);
            added.push(node(
                "Clip",
                "",
                names.fresh(&format!("{qout}_clip")),
                vec![mid, lo_name, hi_name],
                vec![qout],
            ));
        }
        edits.remove.insert(i);
        edits.remove.insert(cons[0]);
        edits.before.entry(i).or_default().extend(added);
        count += 1;
    }
    g.initializer.extend(new_inits);
    edits.apply(g);
    count
}

/// Int8 weights read by Conv, Gemm or MatMul (as their second input) become uint8 with the zero point + 128, so
/// ONNX Runtime fuses them into its U8U8 kernels. For CPUs where its U8S8 kernels are not exact: on x86 without
/// VNNI they sum pairs of u8·s8 products in saturating int16 (`vpmaddubsw`), which the U8U8 kernels do not.
/// Exact: the dequantized weights are unchanged (the byte of an int8 plus 128 is the byte with its top bit flipped).
/// Per-tensor weights only: ONNX Runtime 1.32's fused QLinearConv with per-channel uint8 weights is off by up to 250
/// LSB against the model's own arithmetic (EfficientNet-Lite0's CPU preset, first Conv), so per-channel weights stay
/// int8 and run as ONNX Runtime runs the model as written.
pub(super) fn int8_weights_to_uint8(g: &mut GraphProto, names: &mut Names) -> usize {
    let ix = Index::new(g);
    let mut shifted: HashMap<(String, String), (String, String)> = HashMap::new();
    let mut retarget: Vec<(usize, String, String)> = Vec::new();
    let mut new_inits = Vec::new();
    for (i, d) in g.node.iter().enumerate() {
        let Some(w) = d.input.first().and_then(|x| ix.init(x)) else {
            continue;
        };
        if !is_dq(d) || g.initializer[w].data_type != Some(INT8) || ix.is_output(&d.output[0]) {
            continue;
        }
        let Some(p) = qparams(g, &ix, d).filter(|p| p.dt == INT8 && p.scale.len() == 1) else {
            continue;
        };
        let cons = ix.consumers(&d.output[0]);
        let weight_of = |c: &usize| {
            let n = &g.node[*c];
            matches!(op(n), "Conv" | "Gemm" | "MatMul") && n.input.get(1) == Some(&d.output[0])
        };
        if cons.is_empty() || !cons.iter().all(weight_of) {
            continue;
        }
        let zp_name = d.input.get(2).cloned().unwrap_or_default();
        let key = (d.input[0].clone(), zp_name.clone());
        if !shifted.contains_key(&key) {
            let Some(t) = flipped(&g.initializer[w], names.fresh(&format!("{}_u8", key.0))) else {
                continue;
            };
            let zp_dims = match ix.init(&zp_name) {
                Some(z) => g.initializer[z].dims.clone(),
                None => g.initializer[ix.init(&d.input[1]).expect("qparams read the scale")]
                    .dims
                    .clone(),
            };
            let base = if zp_name.is_empty() { &key.0 } else { &zp_name };
            let zp = names.fresh(&format!("{base}_zp_u8"));
            let vals: Vec<i64> = p.zp.iter().map(|z| z + 128).collect();
            new_inits.push(tensor::int_tensor(&zp, UINT8, &zp_dims, &vals));
            shifted.insert(key.clone(), (t.name.clone().unwrap_or_default(), zp));
            new_inits.push(t);
        }
        let (w_u8, zp_u8) = shifted[&key].clone();
        retarget.push((i, w_u8, zp_u8));
    }
    let count = retarget.len();
    for (n, w, zp) in retarget {
        let d = &mut g.node[n];
        d.input.resize(3, String::new());
        d.input[0] = w;
        d.input[2] = zp;
    }
    g.initializer.extend(new_inits);
    count
}

/// How many DequantizeLinear nodes read per-channel int8 weight initializers (what the uint8 shift leaves int8).
pub(super) fn per_channel_int8_weights(g: &GraphProto, ix: &Index) -> usize {
    g.node
        .iter()
        .filter(|d| is_dq(d) && d.input.first().is_some_and(|x| ix.is_init(x)))
        .filter(|d| qparams(g, ix, d).is_some_and(|p| p.dt == INT8 && p.scale.len() > 1))
        .count()
}

/// `t` (int8) as uint8 plus 128, named `name`; None for data this pass cannot read (external, or malformed).
fn flipped(
    t: &crate::onnx::proto::TensorProto,
    name: String,
) -> Option<crate::onnx::proto::TensorProto> {
    if !t.external_data.is_empty() {
        return None;
    }
    let raw: Vec<u8> = match t.raw_data.as_deref() {
        Some(raw) if !raw.is_empty() => raw.iter().map(|b| b ^ 0x80).collect(),
        _ => tensor::ints(t)?.iter().map(|&v| (v + 128) as u8).collect(),
    };
    (Some(raw.len()) == tensor::numel(t)).then(|| crate::onnx::proto::TensorProto {
        name: Some(name),
        data_type: Some(UINT8),
        dims: t.dims.clone(),
        raw_data: Some(raw),
        ..Default::default()
    })
}

/// A DequantizeLinear of an activation read by several nodes is duplicated, one per reader. Exact.
pub(super) fn split_shared_dq(g: &mut GraphProto, names: &mut Names) -> usize {
    let ix = Index::new(g);
    let mut edits = Edits::default();
    let mut renames: Vec<(usize, String, String)> = Vec::new();
    let mut count = 0;
    for (i, d) in g.node.iter().enumerate() {
        if !is_dq(d) || d.input.first().is_none_or(|x| ix.is_init(x)) {
            continue;
        }
        let out = &d.output[0];
        let cons = ix.consumers(out);
        if cons.len() < 2 {
            continue;
        }
        for &c in &cons[1..] {
            let mut copy = d.clone();
            let o = names.fresh(&format!("{out}_dup"));
            copy.output = vec![o.clone()];
            copy.name = Some(names.fresh(&format!("{o}_node")));
            edits.before.entry(i).or_default().push(copy);
            renames.push((c, out.clone(), o));
        }
        count += 1;
    }
    for (c, from, to) in renames {
        for x in g.node[c].input.iter_mut().filter(|x| **x == from) {
            *x = to.clone();
        }
    }
    // Insert the copies after the original: `before` of the next node keeps topological order.
    let shifted: HashMap<usize, Vec<NodeProto>> =
        edits.before.drain().map(|(i, v)| (i + 1, v)).collect();
    edits.before = shifted;
    let n = g.node.len();
    let tail = edits.before.remove(&n);
    edits.apply(g);
    if let Some(t) = tail {
        g.node.extend(t);
    }
    count
}

/// What [`float_activations`] changed.
pub(super) struct FloatActivations {
    /// DequantizeLinear of a weight folded into a float initializer.
    pub weights: usize,
    /// Activation Q → DQ pairs that became a float Clip to the Q's range (no record from the quantizer).
    pub clipped: usize,
    /// Pairs that became the model's own Relu/Clip, which the quantizer had folded into the Q (its record).
    pub own_activation: usize,
    /// Pairs removed outright: the record says their range is a calibrated one.
    pub dropped: usize,
}

/// The float-activation plan: every DequantizeLinear of an initializer becomes a float initializer (weights as
/// quantized), and every activation Q → DQ pair is removed.
///
/// What replaces a pair depends on `folded`, the quantizer's record of the Qs whose range is a Relu/Clip it folded
/// (tensor read by the Q → the activation's own bounds):
/// - no record (another tool's model): a float Clip to the Q's representable range, since a quantizer may have
///   folded a Relu/Clip into any range (the Q's saturation is then the activation), so only the rounding goes;
/// - a recorded tensor: the model's own activation, Relu for [0, ∞), else Clip(lo, hi);
/// - any other tensor: nothing. Its range is calibrated, so dropping the clamp is a bounded change (outputs differ
///   from the QDQ model only where an activation leaves its calibration range, where they follow the float model)
///   and it lets ONNX Runtime fuse Conv + Add (+ Relu) across residual connections.
pub(super) fn float_activations(
    g: &mut GraphProto,
    folded: Option<&HashMap<String, (f32, f32)>>,
) -> FloatActivations {
    let ix = Index::new(g);
    let mut edits = Edits::default();
    let mut new_inits = Vec::new();
    let mut n = FloatActivations {
        weights: 0,
        clipped: 0,
        own_activation: 0,
        dropped: 0,
    };
    for (i, d) in g.node.iter().enumerate() {
        let Some((t, vals)) = dequantized_weight(g, &ix, d) else {
            continue;
        };
        new_inits.push(tensor::float_tensor(&d.output[0], &t.dims, &vals));
        edits.remove.insert(i);
        n.weights += 1;
    }
    let mut rename: HashMap<String, String> = HashMap::new();
    let mut names = Names::new(g);
    for (i, q) in g.node.iter().enumerate() {
        let Some((lo, hi, cons)) = activation_pair(g, &ix, q) else {
            continue;
        };
        let x = &q.input[0];
        let bounds = match folded {
            None => Some((lo, hi)),
            Some(rec) => rec.get(x).copied(),
        };
        let out = match bounds {
            None => {
                n.dropped += 1;
                x.clone()
            }
            Some(b) => {
                if folded.is_some() {
                    n.own_activation += 1;
                } else {
                    n.clipped += 1;
                }
                let (node, inits) = float_clamp(&mut names, x, b);
                new_inits.extend(inits);
                let out = node.output[0].clone();
                edits.before.entry(i).or_default().push(node);
                out
            }
        };
        for &c in cons {
            rename.insert(g.node[c].output[0].clone(), out.clone());
            edits.remove.insert(c);
        }
        edits.remove.insert(i);
    }
    g.initializer.extend(new_inits);
    edits.apply(g);
    rename_inputs(g, &rename);
    n
}

/// The float clamp of `x` to `(lo, hi)`: a Relu for [0, ∞), else a Clip with scalar bound initializers (ONNX
/// Runtime fuses either into a preceding Conv). Returns the node and its new initializers.
fn float_clamp(
    names: &mut Names,
    x: &str,
    (lo, hi): (f32, f32),
) -> (NodeProto, Vec<crate::onnx::proto::TensorProto>) {
    let out = names.fresh(&format!("{x}_float"));
    if lo == 0.0 && hi == f32::INFINITY {
        let name = names.fresh(&format!("{out}_relu"));
        return (
            node("Relu", "", name, vec![x.to_string()], vec![out]),
            Vec::new(),
        );
    }
    let (lo_name, hi_name) = (
        names.fresh(&format!("{out}_min")),
        names.fresh(&format!("{out}_max")),
    );
    let inits = vec![
        tensor::float_tensor(&lo_name, &[], &[lo]),
        tensor::float_tensor(&hi_name, &[], &[hi.min(f32::MAX)]),
    ];
    let name = names.fresh(&format!("{out}_clip"));
    let clip = node(
        "Clip",
        "",
        name,
        vec![x.to_string(), lo_name, hi_name],
        vec![out],
    );
    (clip, inits)
}

/// For a DequantizeLinear of an integer initializer (not a graph output, per-tensor or per-axis parameters that
/// fit its shape): the initializer and its dequantized values. `None` for any other node.
fn dequantized_weight<'g>(
    g: &'g GraphProto,
    ix: &Index,
    d: &NodeProto,
) -> Option<(&'g crate::onnx::proto::TensorProto, Vec<f32>)> {
    if !is_dq(d) || !d.input.first().is_some_and(|x| ix.is_init(x)) || ix.is_output(&d.output[0]) {
        return None;
    }
    let t = &g.initializer[ix.init[d.input[0].as_str()]];
    let (q, p) = (tensor::ints(t)?, qparams(g, ix, d)?);
    let rank = t.dims.len() as i64;
    let axis = attr_i(d, "axis").unwrap_or(1);
    let axis = if axis < 0 { axis + rank } else { axis };
    let c = p.scale.len();
    let inner: usize = if c == 1 {
        1
    } else if (0..rank).contains(&axis) && t.dims[axis as usize] as usize == c {
        t.dims[axis as usize + 1..].iter().product::<i64>() as usize
    } else {
        return None;
    };
    let vals: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let ch = (k / inner) % c;
            finite((v - p.zp[ch]) as f64 * p.scale[ch] as f64)
        })
        .collect();
    Some((t, vals))
}

/// For an activation QuantizeLinear (per-tensor) whose every reader is a DequantizeLinear, none of them or it a
/// graph output: the float range it represents (lo, hi) and its readers. `None` for any other node.
fn activation_pair<'i>(
    g: &GraphProto,
    ix: &'i Index,
    q: &NodeProto,
) -> Option<(f32, f32, &'i [usize])> {
    if !is_q(q) || q.input.first().is_none_or(|x| ix.is_init(x)) {
        return None;
    }
    let t = &q.output[0];
    let cons = ix.consumers(t);
    if ix.is_output(t) || cons.is_empty() || !cons.iter().all(|&c| is_dq(&g.node[c])) {
        return None;
    }
    if cons.iter().any(|&c| ix.is_output(&g.node[c].output[0])) {
        return None;
    }
    let p = qparams(g, ix, q).filter(|p| p.scale.len() == 1)?;
    let (qmin, qmax) = tensor::range(p.dt)?;
    let lo = finite((qmin - p.zp[0]) as f64 * p.scale[0] as f64);
    let hi = finite((qmax - p.zp[0]) as f64 * p.scale[0] as f64);
    Some((lo, hi, cons))
}

/// Points every input renamed by the pair removal at its float source; chains (x → Q → DQ → Q → DQ) resolve to
/// the first float input.
fn rename_inputs(g: &mut GraphProto, rename: &HashMap<String, String>) {
    let resolve = |mut s: String| {
        let mut hops = 0;
        while let Some(n) = rename.get(&s) {
            s = n.clone();
            hops += 1;
            if hops > rename.len() {
                break;
            }
        }
        s
    };
    for n in g.node.iter_mut() {
        for x in n.input.iter_mut() {
            if rename.contains_key(x) {
                *x = resolve(x.clone());
            }
        }
    }
}

/// A dequantized value as a finite f32. Quantized "minus infinity" constants (attention masks use the float minimum)
/// overflow to -inf in f32; as written, the next QuantizeLinear launders the `0 * -inf` NaN that follows into a
/// number, but with the Q gone it would poison the output. Saturating to the largest finite value keeps the mask.
fn finite(v: f64) -> f32 {
    v.clamp(f32::MIN as f64, f32::MAX as f64) as f32
}

/// Drops initializers no node or graph output reads any more (the originals of rewritten ones). Initializers a
/// graph input declares (IR < 4 models list them there) are kept: dropping them would turn them into inputs to feed.
pub(super) fn drop_unused_initializers(g: &mut GraphProto) {
    let mut used: HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    used.extend(g.output.iter().filter_map(|o| o.name.as_deref()));
    used.extend(g.input.iter().filter_map(|o| o.name.as_deref()));
    used.extend(subgraph_reads(g));
    let keep: Vec<bool> = g
        .initializer
        .iter()
        .map(|t| t.name.as_deref().is_some_and(|n| used.contains(n)))
        .collect();
    let mut k = keep.iter();
    g.initializer.retain(|_| *k.next().unwrap_or(&true));
}

/// How many weight values the graph holds quantized (integer initializers read by a DequantizeLinear).
pub(super) fn quantized_weight_count(g: &GraphProto, ix: &Index) -> usize {
    g.node
        .iter()
        .filter(|n| is_dq(n))
        .filter_map(|n| ix.init(n.input.first()?))
        .filter_map(|t| {
            let t = &g.initializer[t];
            matches!(t.data_type, Some(INT8 | UINT8)).then(|| tensor::numel(t).unwrap_or(0))
        })
        .sum()
}

/// Whether an integer type is 16 bits wide.
pub(super) fn is_16bit(dt: i32) -> bool {
    matches!(dt, INT16 | UINT16)
}
