//! Just enough shape and element-type knowledge for the pre-flight checker.
//!
//! Starts from what the model states (graph inputs, outputs, `value_info`, initializers, `Constant` nodes) and
//! propagates through the ops CNNs are made of (Q/DQ, elementwise, Conv, pooling, Gemm/MatMul, layout ops). Where a
//! rule is missing or an input is unknown the output stays unknown; the checker then says so. This is not ONNX shape
//! inference and never overrides what the model states.

use std::collections::HashMap;

pub(crate) use crate::onnx::node::{attr, attr_s, domain, is_default_domain, op};
use crate::onnx::node::{attr_i, attr_ints};
use crate::onnx::proto::{
    tensor_shape_proto::dimension::Value as DimValue, type_proto::Value as TypeValue, GraphProto,
    NodeProto, TensorProto, ValueInfoProto,
};
use crate::onnx::DataType;

/// ONNX element types used here.
pub(crate) const FLOAT: i32 = DataType::Float.onnx();
pub(crate) const UINT8: i32 = DataType::Uint8.onnx();
pub(crate) const UINT16: i32 = DataType::Uint16.onnx();
pub(crate) const INT16: i32 = DataType::Int16.onnx();
pub(crate) const INT32: i32 = DataType::Int32.onnx();
pub(crate) const INT64: i32 = DataType::Int64.onnx();
pub(crate) const BOOL: i32 = DataType::Bool.onnx();

pub(crate) fn is_float_type(t: i32) -> bool {
    DataType::from_onnx(t).is_some_and(DataType::is_float)
}

/// One dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum D {
    Fixed(i64),
    Sym(String),
    Unknown,
}

impl D {
    fn fixed(&self) -> Option<i64> {
        match self {
            D::Fixed(v) => Some(*v),
            _ => None,
        }
    }
}

impl std::fmt::Display for D {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            D::Fixed(v) => write!(f, "{v}"),
            D::Sym(s) => write!(f, "{s}"),
            D::Unknown => f.write_str("?"),
        }
    }
}

pub(crate) fn fmt_shape(s: &[D]) -> String {
    let parts: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// What is known of one tensor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TInfo {
    pub elem: Option<i32>,
    pub shape: Option<Vec<D>>,
}

/// Constant tensors: the graph's own (initializers, `Constant` outputs) and the small integer tensors folded from
/// them here (shape arithmetic such as torch's static-padding glue).
#[derive(Default)]
pub(crate) struct Consts<'a> {
    pub base: HashMap<String, &'a TensorProto>,
    pub folded: HashMap<String, TensorProto>,
}

impl<'a> Consts<'a> {
    pub fn get(&self, name: &str) -> Option<&TensorProto> {
        self.base
            .get(name)
            .copied()
            .or_else(|| self.folded.get(name))
    }
    pub fn contains(&self, name: &str) -> bool {
        self.base.contains_key(name) || self.folded.contains_key(name)
    }
    pub fn is_folded(&self, name: &str) -> bool {
        self.folded.contains_key(name)
    }
}

/// Constant tensors of the graph: initializers and `Constant` node outputs (`value` attribute).
pub(crate) fn constants(graph: &GraphProto) -> Consts<'_> {
    Consts {
        base: base_constants(graph),
        folded: HashMap::new(),
    }
}

fn base_constants(graph: &GraphProto) -> HashMap<String, &TensorProto> {
    let mut m: HashMap<String, &TensorProto> = HashMap::new();
    for t in &graph.initializer {
        if let Some(n) = &t.name {
            m.insert(n.clone(), t);
        }
    }
    for n in &graph.node {
        if op(n) == "Constant" && is_default_domain(n) {
            if let (Some(out), Some(t)) = (
                n.output.first(),
                attr(n, "value").and_then(|a| a.t.as_ref()),
            ) {
                m.insert(out.clone(), t);
            }
        }
    }
    m
}

/// Integer values of a constant tensor (INT64 / INT32); `None` for external, malformed or other data.
pub(crate) fn tensor_i64(t: &TensorProto) -> Option<Vec<i64>> {
    crate::onnx::tensor::int_values(t).ok()
}

/// Float values of a constant tensor (FLOAT, FLOAT16, BFLOAT16, DOUBLE); `None` for external, malformed or other
/// data.
pub(crate) fn tensor_f32(t: &TensorProto) -> Option<Vec<f32>> {
    crate::onnx::tensor::float_values(t).ok()
}

fn info_of_value(vi: &ValueInfoProto) -> Option<TInfo> {
    let tp = vi.r#type.as_ref()?;
    match tp.value.as_ref()? {
        TypeValue::TensorType(t) => Some(TInfo {
            elem: t.elem_type.filter(|&e| e != 0),
            shape: t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(DimValue::DimValue(v)) => D::Fixed(*v),
                        Some(DimValue::DimParam(p)) if !p.is_empty() => D::Sym(p.clone()),
                        _ => D::Unknown,
                    })
                    .collect()
            }),
        }),
        _ => None,
    }
}

/// Tensor facts for every name the graph mentions that could be learned.
pub(crate) fn infer(graph: &GraphProto, consts: &mut Consts) -> HashMap<String, TInfo> {
    let mut m: HashMap<String, TInfo> = HashMap::new();
    for (name, t) in &consts.base {
        m.insert(
            name.clone(),
            TInfo {
                elem: t.data_type,
                shape: Some(t.dims.iter().map(|&d| D::Fixed(d)).collect()),
            },
        );
    }
    for vi in graph
        .input
        .iter()
        .chain(graph.value_info.iter())
        .chain(graph.output.iter())
    {
        if let (Some(name), Some(info)) = (&vi.name, info_of_value(vi)) {
            if consts.contains(name) {
                continue;
            }
            let e = m.entry(name.clone()).or_default();
            if e.elem.is_none() {
                e.elem = info.elem;
            }
            if e.shape.is_none() {
                e.shape = info.shape;
            }
        }
    }
    // Nodes are topologically sorted in a valid model; two passes cover the rare unsorted graph.
    for _ in 0..2 {
        for n in &graph.node {
            let ms_qdq = domain(n) == "com.microsoft"
                && matches!(op(n), "QuantizeLinear" | "DequantizeLinear");
            if !is_default_domain(n) && !ms_qdq {
                continue;
            }
            if let Some(t) = fold(n, &m, consts) {
                if let Some(name) = n.output.first().filter(|s| !s.is_empty()) {
                    m.insert(
                        name.clone(),
                        TInfo {
                            elem: t.data_type,
                            shape: Some(t.dims.iter().map(|&d| D::Fixed(d)).collect()),
                        },
                    );
                    consts.folded.insert(name.clone(), t);
                    continue;
                }
            }
            let outs = infer_node(n, &m, consts);
            for (i, o) in outs.into_iter().enumerate() {
                let Some(name) = n.output.get(i).filter(|s| !s.is_empty()) else {
                    continue;
                };
                let e = m.entry(name.clone()).or_default();
                if e.elem.is_none() {
                    e.elem = o.elem;
                }
                if e.shape.is_none() {
                    e.shape = o.shape;
                }
            }
        }
    }
    m
}

fn get<'a>(m: &'a HashMap<String, TInfo>, n: &NodeProto, i: usize) -> Option<&'a TInfo> {
    n.input
        .get(i)
        .filter(|s| !s.is_empty())
        .and_then(|s| m.get(s))
}

fn const_i64(consts: &Consts, n: &NodeProto, i: usize) -> Option<Vec<i64>> {
    n.input
        .get(i)
        .filter(|s| !s.is_empty())
        .and_then(|s| consts.get(s))
        .and_then(tensor_i64)
}

fn broadcast(a: &[D], b: &[D]) -> Vec<D> {
    let r = a.len().max(b.len());
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r].clone()
        } else {
            D::Fixed(1)
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r].clone()
        } else {
            D::Fixed(1)
        };
        out.push(match (&da, &db) {
            (D::Fixed(1), _) => db,
            (_, D::Fixed(1)) => da,
            (D::Fixed(x), D::Fixed(y)) if x == y => da,
            (D::Sym(x), D::Sym(y)) if x == y => da,
            (D::Sym(_), D::Fixed(_)) => db,
            (D::Fixed(_), D::Sym(_)) => da,
            _ => D::Unknown,
        });
    }
    out
}

/// Output size of a sliding window along one axis.
#[allow(clippy::too_many_arguments)]
fn window(inp: &D, k: i64, s: i64, d: i64, pb: i64, pe: i64, auto_pad: &str, ceil: bool) -> D {
    // i128 arithmetic: hostile attribute values must not overflow.
    let Some(x) = inp.fixed() else {
        return D::Unknown;
    };
    let (x, k, s, d, pb, pe) = (
        x as i128,
        k as i128,
        (s as i128).max(1),
        d as i128,
        pb as i128,
        pe as i128,
    );
    let out = match auto_pad {
        "SAME_UPPER" | "SAME_LOWER" => (x + s - 1) / s,
        _ => {
            let (pb, pe) = if auto_pad == "VALID" {
                (0, 0)
            } else {
                (pb, pe)
            };
            let eff = (k - 1) * d + 1;
            let num = x + pb + pe - eff;
            if num < 0 || k < 1 || d < 1 {
                return D::Unknown;
            }
            if ceil {
                (num + s - 1) / s + 1
            } else {
                num / s + 1
            }
        }
    };
    i64::try_from(out).map(D::Fixed).unwrap_or(D::Unknown)
}

fn spatial(n: &NodeProto, x: &[D], kernel: &[i64]) -> Option<Vec<D>> {
    let sp = kernel.len();
    if x.len() != sp + 2 {
        return None;
    }
    let strides = attr_ints(n, "strides")
        .filter(|v| v.len() == sp)
        .unwrap_or(vec![1; sp]);
    let dil = attr_ints(n, "dilations")
        .filter(|v| v.len() == sp)
        .unwrap_or(vec![1; sp]);
    let pads = attr_ints(n, "pads")
        .filter(|v| v.len() == 2 * sp)
        .unwrap_or(vec![0; 2 * sp]);
    let auto_pad = attr_s(n, "auto_pad").unwrap_or_else(|| "NOTSET".into());
    let ceil = attr_i(n, "ceil_mode") == Some(1);
    Some(
        (0..sp)
            .map(|i| {
                window(
                    &x[i + 2],
                    kernel[i],
                    strides[i],
                    dil[i],
                    pads[i],
                    pads[i + sp],
                    &auto_pad,
                    ceil,
                )
            })
            .collect(),
    )
}

const SAME_SHAPE_OPS: &[&str] = &[
    "Relu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "LeakyRelu",
    "PRelu",
    "Identity",
    "BatchNormalization",
    "Softmax",
    "LogSoftmax",
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Erf",
    "Elu",
    "Selu",
    "Softplus",
    "Dropout",
    "LayerNormalization",
    "InstanceNormalization",
    "LRN",
    "Floor",
    "Ceil",
    "Round",
    "Reciprocal",
    "Gelu",
    "Mish",
    "Swish",
    "Sin",
    "Cos",
];

const BROADCAST_OPS: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean",
];

fn infer_node(n: &NodeProto, m: &HashMap<String, TInfo>, consts: &Consts) -> Vec<TInfo> {
    let x = get(m, n, 0).cloned().unwrap_or_default();
    let xs = x.shape.clone();
    let one = |elem: Option<i32>, shape: Option<Vec<D>>| vec![TInfo { elem, shape }];
    match op(n) {
        "QuantizeLinear" => {
            let elem = get(m, n, 2).and_then(|z| z.elem).or(Some(UINT8));
            let elem = attr_i(n, "output_dtype")
                .filter(|&d| d != 0)
                .map(|d| d as i32)
                .or(elem);
            one(elem, xs)
        }
        "DequantizeLinear" => {
            let elem = get(m, n, 1).and_then(|s| s.elem).or(Some(FLOAT));
            one(elem, xs)
        }
        "Cast" => one(attr_i(n, "to").map(|t| t as i32), xs),
        o if SAME_SHAPE_OPS.contains(&o) => one(x.elem, xs),
        o if BROADCAST_OPS.contains(&o) => {
            let mut shape = xs;
            let mut elem = x.elem;
            for i in 1..n.input.len() {
                let other = get(m, n, i).cloned().unwrap_or_default();
                elem = elem.or(other.elem);
                shape = match (shape, other.shape) {
                    (Some(a), Some(b)) => Some(broadcast(&a, &b)),
                    _ => None,
                };
            }
            one(elem, shape)
        }
        "Equal" | "Greater" | "Less" | "GreaterOrEqual" | "LessOrEqual" | "And" | "Or" | "Not" => {
            let b = get(m, n, 1).and_then(|t| t.shape.clone());
            let shape = match (xs, b) {
                (Some(a), Some(b)) => Some(broadcast(&a, &b)),
                (Some(a), None) if op(n) == "Not" => Some(a),
                _ => None,
            };
            one(Some(BOOL), shape)
        }
        "Conv" => {
            let w = get(m, n, 1).and_then(|t| t.shape.clone());
            let shape = match (&xs, &w) {
                (Some(x), Some(w)) if w.len() >= 3 => {
                    let kernel: Option<Vec<i64>> = attr_ints(n, "kernel_shape")
                        .filter(|k| k.len() == w.len() - 2)
                        .or_else(|| w[2..].iter().map(|d| d.fixed()).collect());
                    kernel.and_then(|k| spatial(n, x, &k)).map(|sp| {
                        let mut s = vec![x[0].clone(), w[0].clone()];
                        s.extend(sp);
                        s
                    })
                }
                _ => None,
            };
            one(x.elem, shape)
        }
        "MaxPool" | "AveragePool" | "LpPool" => {
            let shape = match (&xs, attr_ints(n, "kernel_shape")) {
                (Some(x), Some(k)) => spatial(n, x, &k).map(|sp| {
                    let mut s = vec![x[0].clone(), x[1].clone()];
                    s.extend(sp);
                    s
                }),
                _ => None,
            };
            one(x.elem, shape)
        }
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => {
            let shape = xs.filter(|x| x.len() >= 2).map(|x| {
                let mut s = vec![x[0].clone(), x[1].clone()];
                s.extend(std::iter::repeat_n(D::Fixed(1), x.len() - 2));
                s
            });
            one(x.elem, shape)
        }
        "Gemm" => {
            let b = get(m, n, 1).and_then(|t| t.shape.clone());
            let shape = match (&xs, &b) {
                (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => {
                    let ta = attr_i(n, "transA").unwrap_or(0) != 0;
                    let tb = attr_i(n, "transB").unwrap_or(0) != 0;
                    Some(vec![
                        if ta { a[1].clone() } else { a[0].clone() },
                        if tb { b[0].clone() } else { b[1].clone() },
                    ])
                }
                _ => None,
            };
            one(x.elem, shape)
        }
        "MatMul" => {
            let b = get(m, n, 1).and_then(|t| t.shape.clone());
            let shape = match (&xs, &b) {
                (Some(a), Some(b)) if a.len() >= 2 && b.len() == 2 => {
                    let mut s = a[..a.len() - 1].to_vec();
                    s.push(b[1].clone());
                    Some(s)
                }
                (Some(a), Some(b)) if a.len() >= 2 && b.len() >= 2 => {
                    let batch = broadcast(&a[..a.len() - 2], &b[..b.len() - 2]);
                    let mut s = batch;
                    s.push(a[a.len() - 2].clone());
                    s.push(b[b.len() - 1].clone());
                    Some(s)
                }
                _ => None,
            };
            one(x.elem, shape)
        }
        "Flatten" => {
            let shape = xs.and_then(|x| {
                let r = x.len() as i64;
                let mut axis = attr_i(n, "axis").unwrap_or(1);
                if axis < 0 {
                    axis += r;
                }
                if !(0..=r).contains(&axis) {
                    return None;
                }
                let prod = |s: &[D]| -> D {
                    s.iter()
                        .try_fold(1i64, |acc, d| d.fixed().and_then(|v| acc.checked_mul(v)))
                        .map(D::Fixed)
                        .unwrap_or(D::Unknown)
                };
                Some(vec![prod(&x[..axis as usize]), prod(&x[axis as usize..])])
            });
            one(x.elem, shape)
        }
        "Reshape" => {
            let shape = const_i64(consts, n, 1).map(|target| {
                let src = xs.clone().unwrap_or_default();
                let mut out: Vec<D> = target
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| match v {
                        0 if attr_i(n, "allowzero").unwrap_or(0) == 0 => {
                            src.get(i).cloned().unwrap_or(D::Unknown)
                        }
                        -1 => D::Unknown,
                        v => D::Fixed(v),
                    })
                    .collect();
                if let Some(pos) = target.iter().position(|&v| v == -1) {
                    let total: Option<i64> = xs.as_ref().and_then(|s| {
                        s.iter()
                            .try_fold(1i64, |acc, d| d.fixed().and_then(|v| acc.checked_mul(v)))
                    });
                    let known: Option<i64> = out
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != pos)
                        .try_fold(1i64, |acc, (_, d)| {
                            d.fixed().and_then(|v| acc.checked_mul(v))
                        });
                    if let (Some(t), Some(k)) = (total, known) {
                        if k != 0 && t % k == 0 {
                            out[pos] = D::Fixed(t / k);
                        }
                    }
                }
                out
            });
            one(x.elem, shape)
        }
        "Transpose" => {
            let shape = xs.map(|x| {
                let perm =
                    attr_ints(n, "perm").unwrap_or_else(|| (0..x.len() as i64).rev().collect());
                perm.iter()
                    .map(|&p| x.get(p as usize).cloned().unwrap_or(D::Unknown))
                    .collect()
            });
            one(x.elem, shape)
        }
        "Concat" => {
            let shapes: Option<Vec<Vec<D>>> = (0..n.input.len())
                .map(|i| get(m, n, i).and_then(|t| t.shape.clone()))
                .collect();
            let elem = (0..n.input.len()).find_map(|i| get(m, n, i).and_then(|t| t.elem));
            let shape = shapes.filter(|s| !s.is_empty()).and_then(|s| {
                let r = s[0].len() as i64;
                let mut axis = attr_i(n, "axis").unwrap_or(0);
                if axis < 0 {
                    axis += r;
                }
                if !(0..r).contains(&axis) || s.iter().any(|x| x.len() as i64 != r) {
                    return None;
                }
                let mut out = s[0].clone();
                out[axis as usize] = s
                    .iter()
                    .try_fold(0i64, |acc, x| {
                        x[axis as usize].fixed().and_then(|v| acc.checked_add(v))
                    })
                    .map(D::Fixed)
                    .unwrap_or(D::Unknown);
                Some(out)
            });
            one(elem, shape)
        }
        "Pad" => {
            let pads = const_i64(consts, n, 1).or_else(|| attr_ints(n, "pads"));
            let shape = match (&xs, pads) {
                (Some(x), Some(p))
                    if p.len() == 2 * x.len() && n.input.get(3).is_none_or(|a| a.is_empty()) =>
                {
                    Some(
                        x.iter()
                            .enumerate()
                            .map(|(i, d)| match d.fixed() {
                                _ if p[i] == 0 && p[i + x.len()] == 0 => d.clone(),
                                Some(v) => v
                                    .checked_add(p[i])
                                    .and_then(|v| v.checked_add(p[i + x.len()]))
                                    .filter(|&v| v >= 0)
                                    .map(D::Fixed)
                                    .unwrap_or(D::Unknown),
                                None => D::Unknown,
                            })
                            .collect(),
                    )
                }
                _ => None,
            };
            one(x.elem, shape)
        }
        "Resize" | "Upsample" => {
            let sizes = if op(n) == "Resize" {
                const_i64(consts, n, 3)
            } else {
                None
            };
            let scale_idx = if op(n) == "Resize" { 2 } else { 1 };
            let scales = n
                .input
                .get(scale_idx)
                .filter(|s| !s.is_empty())
                .and_then(|s| consts.get(s))
                .and_then(tensor_f32)
                .filter(|v| !v.is_empty());
            let shape = match (&xs, sizes.filter(|v| !v.is_empty()), scales) {
                (Some(x), Some(sz), _) if sz.len() == x.len() => {
                    Some(sz.into_iter().map(D::Fixed).collect())
                }
                (Some(x), _, Some(sc)) if sc.len() == x.len() => Some(
                    x.iter()
                        .zip(sc)
                        .map(|(d, s)| {
                            d.fixed()
                                .map(|v| D::Fixed((v as f64 * s as f64).floor() as i64))
                                .unwrap_or(D::Unknown)
                        })
                        .collect(),
                ),
                _ => None,
            };
            one(x.elem, shape)
        }
        "Squeeze" | "Unsqueeze" => {
            let axes = attr_ints(n, "axes").or_else(|| const_i64(consts, n, 1));
            let shape = xs.and_then(|x| {
                if op(n) == "Squeeze" {
                    match axes {
                        None => Some(x.into_iter().filter(|d| *d != D::Fixed(1)).collect()),
                        Some(a) => {
                            let r = x.len() as i64;
                            let a: Vec<i64> =
                                a.iter().map(|&v| if v < 0 { v + r } else { v }).collect();
                            Some(
                                x.into_iter()
                                    .enumerate()
                                    .filter(|(i, _)| !a.contains(&(*i as i64)))
                                    .map(|(_, d)| d)
                                    .collect(),
                            )
                        }
                    }
                } else {
                    let a = axes?;
                    let r = (x.len() + a.len()) as i64;
                    let mut a: Vec<i64> =
                        a.iter().map(|&v| if v < 0 { v + r } else { v }).collect();
                    a.sort();
                    let mut it = x.into_iter();
                    let mut out = Vec::new();
                    for i in 0..r {
                        if a.contains(&i) {
                            out.push(D::Fixed(1));
                        } else {
                            out.push(it.next()?);
                        }
                    }
                    Some(out)
                }
            });
            one(x.elem, shape)
        }
        "Slice" => {
            let shape = xs.and_then(|x| {
                let starts = const_i64(consts, n, 1)?;
                let ends = const_i64(consts, n, 2)?;
                let r = x.len() as i64;
                let axes =
                    const_i64(consts, n, 3).unwrap_or_else(|| (0..starts.len() as i64).collect());
                let steps = const_i64(consts, n, 4).unwrap_or_else(|| vec![1; starts.len()]);
                let mut out = x.clone();
                for (k, &ax) in axes.iter().enumerate() {
                    let ax = if ax < 0 { ax + r } else { ax };
                    let (Some(&s), Some(&e), Some(&st)) =
                        (starts.get(k), ends.get(k), steps.get(k))
                    else {
                        return None;
                    };
                    let slot = out.get_mut(ax as usize)?;
                    let Some(dim) = x[ax as usize].fixed() else {
                        *slot = D::Unknown;
                        continue;
                    };
                    if st == 0 {
                        return None;
                    }
                    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
                    let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
                    let len = if st > 0 {
                        let (s, e) = (clamp(norm(s), 0, dim), clamp(norm(e), 0, dim));
                        (((e - s).max(0) as i128 + st as i128 - 1) / st as i128) as i64
                    } else {
                        let (s, e) = (clamp(norm(s), -1, dim - 1), clamp(norm(e), -1, dim - 1));
                        (((s - e).max(0) as i128 - st as i128 - 1) / -(st as i128)) as i64
                    };
                    *slot = D::Fixed(len);
                }
                Some(out)
            });
            one(x.elem, shape)
        }
        "Shape" => one(Some(INT64), xs.map(|x| vec![D::Fixed(x.len() as i64)])),
        "ConstantOfShape" => {
            let elem = attr(n, "value")
                .and_then(|a| a.t.as_ref())
                .and_then(|t| t.data_type)
                .or(Some(FLOAT));
            one(
                elem,
                const_i64(consts, n, 0).map(|d| d.into_iter().map(D::Fixed).collect()),
            )
        }
        "Size" => one(Some(INT64), Some(vec![])),
        "Gather" | "NonZero" | "ArgMax" | "ArgMin" => {
            vec![TInfo {
                elem: if op(n) == "Gather" {
                    x.elem
                } else {
                    Some(INT64)
                },
                shape: None,
            }]
        }
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Folding small integer tensors (shape arithmetic).

/// Folded tensors larger than this are not computed.
const FOLD_MAX_ELEMS: usize = 4096;

/// A small integer tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IntT {
    dims: Vec<usize>,
    v: Vec<i64>,
}

impl IntT {
    fn strides(&self) -> Vec<usize> {
        let mut st = vec![1usize; self.dims.len()];
        for i in (0..self.dims.len().saturating_sub(1)).rev() {
            st[i] = st[i + 1] * self.dims[i + 1];
        }
        st
    }
    fn to_proto(&self, elem: i32) -> TensorProto {
        TensorProto {
            dims: self.dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(elem),
            int64_data: if elem == INT64 {
                self.v.clone()
            } else {
                Vec::new()
            },
            int32_data: if elem == INT32 {
                self.v.iter().map(|&x| x as i32).collect()
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }
}

fn int_const(consts: &Consts, n: &NodeProto, i: usize) -> Option<IntT> {
    let t = consts.get(n.input.get(i).filter(|s| !s.is_empty())?)?;
    let v = tensor_i64(t)?;
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    (checked_product(&dims) == Some(v.len())).then_some(IntT { dims, v })
}

fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn norm_axis(a: i64, r: usize) -> Option<usize> {
    let a = if a < 0 { a + r as i64 } else { a };
    (0..r as i64).contains(&a).then_some(a as usize)
}

/// Folds a node whose inputs are small integer constants (or a Shape of a fixed shape). `None` if it cannot.
fn fold(n: &NodeProto, m: &HashMap<String, TInfo>, consts: &Consts) -> Option<TensorProto> {
    if !is_default_domain(n) || n.output.len() != 1 {
        return None;
    }
    let out_elem = |x: &IntT| -> Option<TensorProto> {
        (x.v.len() <= FOLD_MAX_ELEMS && checked_product(&x.dims) == Some(x.v.len()))
            .then(|| x.to_proto(INT64))
    };
    let r = match op(n) {
        "Shape" => {
            let s = get(m, n, 0)?.shape.as_ref()?;
            let dims: Vec<i64> = s.iter().map(|d| d.fixed()).collect::<Option<_>>()?;
            let r = dims.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let start = clampi(attr_i(n, "start").unwrap_or(0));
            let end = clampi(attr_i(n, "end").unwrap_or(r));
            let v = if start < end {
                dims[start..end].to_vec()
            } else {
                Vec::new()
            };
            IntT {
                dims: vec![v.len()],
                v,
            }
        }
        "ConstantOfShape" => {
            let shape = int_const(consts, n, 0)?;
            let dims: Vec<usize> = shape
                .v
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<_>>()?;
            let count = checked_product(&dims).filter(|&c| c <= FOLD_MAX_ELEMS)?;
            let value = match attr(n, "value").and_then(|a| a.t.as_ref()) {
                Some(t) => *tensor_i64(t)?.first()?,
                None => return None, // default value is float 0
            };
            IntT {
                dims,
                v: vec![value; count],
            }
        }
        "Identity" => int_const(consts, n, 0)?,
        "Cast" => {
            let to = attr_i(n, "to")? as i32;
            let x = int_const(consts, n, 0)?;
            return match to {
                INT64 | INT32 => Some(x.to_proto(to)),
                _ => None,
            };
        }
        "Reshape" => {
            let x = int_const(consts, n, 0)?;
            let target = int_const(consts, n, 1)?.v;
            let mut dims = Vec::with_capacity(target.len());
            let mut infer_at = None;
            for (i, &d) in target.iter().enumerate() {
                match d {
                    0 => dims.push(*x.dims.get(i)?),
                    -1 if infer_at.is_none() => {
                        infer_at = Some(i);
                        dims.push(1);
                    }
                    d if d > 0 => dims.push(d as usize),
                    _ => return None,
                }
            }
            let known = checked_product(&dims)?;
            if let Some(i) = infer_at {
                if known == 0 || x.v.len() % known != 0 {
                    return None;
                }
                dims[i] = x.v.len() / known;
            }
            IntT { dims, v: x.v }
        }
        "Squeeze" | "Unsqueeze" => {
            let x = int_const(consts, n, 0)?;
            let axes = attr_ints(n, "axes").or_else(|| int_const(consts, n, 1).map(|t| t.v));
            let dims = if op(n) == "Squeeze" {
                match axes {
                    None => x.dims.iter().copied().filter(|&d| d != 1).collect(),
                    Some(a) => {
                        let a: Vec<usize> = a
                            .iter()
                            .map(|&v| norm_axis(v, x.dims.len()))
                            .collect::<Option<_>>()?;
                        x.dims
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| !a.contains(i))
                            .map(|(_, &d)| d)
                            .collect()
                    }
                }
            } else {
                let a = axes?;
                let r = x.dims.len() + a.len();
                let a: Vec<usize> = a.iter().map(|&v| norm_axis(v, r)).collect::<Option<_>>()?;
                let mut it = x.dims.iter();
                (0..r)
                    .map(|i| {
                        if a.contains(&i) {
                            Some(1)
                        } else {
                            it.next().copied()
                        }
                    })
                    .collect::<Option<_>>()?
            };
            IntT { dims, v: x.v }
        }
        "Concat" => {
            let parts: Vec<IntT> = (0..n.input.len())
                .map(|i| int_const(consts, n, i))
                .collect::<Option<_>>()?;
            let first = parts.first()?;
            let r = first.dims.len();
            let axis = norm_axis(attr_i(n, "axis")?, r)?;
            if parts.iter().any(|p| {
                p.dims.len() != r || (0..r).any(|d| d != axis && p.dims[d] != first.dims[d])
            }) {
                return None;
            }
            let outer: usize = first.dims[..axis].iter().product();
            let mut dims = first.dims.clone();
            dims[axis] = parts.iter().map(|p| p.dims[axis]).sum();
            let mut v = Vec::new();
            for o in 0..outer {
                for p in &parts {
                    let chunk: usize = p.dims[axis..].iter().product();
                    v.extend_from_slice(&p.v[o * chunk..(o + 1) * chunk]);
                }
            }
            IntT { dims, v }
        }
        "Transpose" => {
            let x = int_const(consts, n, 0)?;
            let r = x.dims.len();
            let perm: Vec<usize> = match attr_ints(n, "perm") {
                Some(p) => p.iter().map(|&a| norm_axis(a, r)).collect::<Option<_>>()?,
                None => (0..r).rev().collect(),
            };
            let dims: Vec<usize> = perm.iter().map(|&p| x.dims[p]).collect();
            let st = x.strides();
            let out = IntT {
                dims: dims.clone(),
                v: Vec::new(),
            };
            let ost = out.strides();
            let total = x.v.len();
            let mut v = vec![0i64; total];
            for (flat, slot) in v.iter_mut().enumerate() {
                let mut src = 0;
                for (k, &p) in perm.iter().enumerate() {
                    let idx = (flat / ost[k]) % dims[k].max(1);
                    src += idx * st[p];
                }
                *slot = x.v[src];
            }
            IntT { dims, v }
        }
        "Slice" => {
            let x = int_const(consts, n, 0)?;
            let starts = int_const(consts, n, 1)?.v;
            let ends = int_const(consts, n, 2)?.v;
            let r = x.dims.len();
            let axes: Vec<usize> = match int_const(consts, n, 3) {
                Some(a) => {
                    a.v.iter()
                        .map(|&v| norm_axis(v, r))
                        .collect::<Option<_>>()?
                }
                None => (0..starts.len()).collect(),
            };
            let steps = int_const(consts, n, 4)
                .map(|s| s.v)
                .unwrap_or_else(|| vec![1; starts.len()]);
            // Per axis: the list of source indices.
            let mut pick: Vec<Vec<usize>> = x.dims.iter().map(|&d| (0..d).collect()).collect();
            for (k, &ax) in axes.iter().enumerate() {
                let dim = x.dims[ax] as i64;
                let (s, e, st) = (*starts.get(k)?, *ends.get(k)?, *steps.get(k)?);
                if st == 0 {
                    return None;
                }
                let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
                let mut idx = Vec::new();
                if st > 0 {
                    let (mut i, e) = (norm(s).clamp(0, dim), norm(e).clamp(0, dim));
                    while i < e {
                        idx.push(i as usize);
                        let Some(next) = i.checked_add(st) else { break };
                        i = next;
                    }
                } else {
                    let (mut i, e) = (norm(s).clamp(-1, dim - 1), norm(e).clamp(-1, dim - 1));
                    while i > e {
                        idx.push(i as usize);
                        let Some(next) = i.checked_add(st) else { break };
                        i = next;
                    }
                }
                pick[ax] = idx;
            }
            let dims: Vec<usize> = pick.iter().map(|p| p.len()).collect();
            let st = x.strides();
            let total: usize = dims.iter().product();
            let out = IntT {
                dims: dims.clone(),
                v: Vec::new(),
            };
            let ost = out.strides();
            let mut v = Vec::with_capacity(total);
            for flat in 0..total {
                let mut src = 0;
                for k in 0..r {
                    let idx = (flat / ost[k]) % dims[k];
                    src += pick[k][idx] * st[k];
                }
                v.push(x.v[src]);
            }
            IntT { dims, v }
        }
        "Gather" => {
            let x = int_const(consts, n, 0)?;
            let ind = int_const(consts, n, 1)?;
            if x.dims.len() != 1 || attr_i(n, "axis").unwrap_or(0) != 0 {
                return None;
            }
            let len = x.dims[0] as i64;
            let v: Vec<i64> = ind
                .v
                .iter()
                .map(|&i| {
                    let i = if i < 0 { i + len } else { i };
                    (0..len).contains(&i).then(|| x.v[i as usize])
                })
                .collect::<Option<_>>()?;
            IntT { dims: ind.dims, v }
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            let a = int_const(consts, n, 0)?;
            let b = int_const(consts, n, 1)?;
            let f = |x: i64, y: i64| -> Option<i64> {
                match op(n) {
                    "Add" => x.checked_add(y),
                    "Sub" => x.checked_sub(y),
                    "Mul" => x.checked_mul(y),
                    _ => (y != 0).then(|| x.div_euclid(y)),
                }
            };
            if a.dims == b.dims {
                IntT {
                    dims: a.dims,
                    v: a.v
                        .iter()
                        .zip(&b.v)
                        .map(|(&x, &y)| f(x, y))
                        .collect::<Option<_>>()?,
                }
            } else if b.v.len() == 1 && b.dims.len() <= a.dims.len() {
                IntT {
                    dims: a.dims,
                    v: a.v.iter().map(|&x| f(x, b.v[0])).collect::<Option<_>>()?,
                }
            } else if a.v.len() == 1 && a.dims.len() <= b.dims.len() {
                IntT {
                    dims: b.dims,
                    v: b.v.iter().map(|&y| f(a.v[0], y)).collect::<Option<_>>()?,
                }
            } else {
                return None;
            }
        }
        _ => return None,
    };
    out_elem(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes() {
        assert_eq!(
            window(&D::Fixed(224), 3, 2, 1, 1, 1, "NOTSET", false),
            D::Fixed(112)
        );
        assert_eq!(
            window(&D::Fixed(224), 3, 2, 1, 0, 0, "SAME_UPPER", false),
            D::Fixed(112)
        );
        assert_eq!(
            window(&D::Fixed(7), 7, 1, 1, 0, 0, "VALID", false),
            D::Fixed(1)
        );
        assert_eq!(
            window(&D::Sym("h".into()), 3, 1, 1, 1, 1, "NOTSET", false),
            D::Unknown
        );
    }

    #[test]
    fn folding_torch_static_padding_glue() {
        // pads = Cast(Reshape(Transpose(Slice(Reshape(Concat([1,1,1,1], zeros(4)), [-1,2]), [-1], [-inf], [0], [-1])), [-1]))
        let i64t = |name: &str, dims: &[i64], v: &[i64]| TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(INT64),
            int64_data: v.to_vec(),
            ..Default::default()
        };
        let node = |op: &str,
                    ins: &[&str],
                    out: &str,
                    attrs: Vec<crate::onnx::proto::AttributeProto>| NodeProto {
            op_type: Some(op.into()),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            attribute: attrs,
            ..Default::default()
        };
        let ai = |name: &str, i: i64| crate::onnx::proto::AttributeProto {
            name: Some(name.into()),
            i: Some(i),
            ..Default::default()
        };
        let aints = |name: &str, v: &[i64]| crate::onnx::proto::AttributeProto {
            name: Some(name.into()),
            ints: v.to_vec(),
            ..Default::default()
        };
        let zero = crate::onnx::proto::AttributeProto {
            name: Some("value".into()),
            t: Some(Box::new(i64t("", &[1], &[0]))),
            ..Default::default()
        };
        let g = GraphProto {
            initializer: vec![
                i64t("four", &[1], &[4]),
                i64t("pads_hw", &[4], &[0, 1, 0, 1]),
                i64t("shape2", &[2], &[-1, 2]),
                i64t("m1", &[1], &[-1]),
                i64t("big", &[1], &[-9223372036854775807]),
                i64t("z", &[1], &[0]),
            ],
            node: vec![
                node("ConstantOfShape", &["four"], "zeros", vec![zero]),
                node("Concat", &["pads_hw", "zeros"], "cat", vec![ai("axis", 0)]),
                node("Reshape", &["cat", "shape2"], "r", vec![]),
                node("Slice", &["r", "m1", "big", "z", "m1"], "sl", vec![]),
                node("Transpose", &["sl"], "tr", vec![aints("perm", &[1, 0])]),
                node("Reshape", &["tr", "m1"], "flat", vec![]),
                node("Cast", &["flat"], "pads", vec![ai("to", INT64 as i64)]),
            ],
            ..Default::default()
        };
        let mut c = constants(&g);
        infer(&g, &mut c);
        let pads = tensor_i64(c.get("pads").expect("folded")).unwrap();
        // cat = [0,1,0,1,0,0,0,0] -> rows [[0,1],[0,1],[0,0],[0,0]] reversed -> [[0,0],[0,0],[0,1],[0,1]]
        // transposed -> [[0,0,0,0],[0,0,1,1]] -> flat.
        assert_eq!(pads, vec![0, 0, 0, 0, 0, 0, 1, 1]);
    }

    #[test]
    fn broadcasting() {
        let a = vec![D::Fixed(1), D::Fixed(8), D::Fixed(4), D::Fixed(4)];
        let b = vec![D::Fixed(8), D::Fixed(1), D::Fixed(1)];
        assert_eq!(broadcast(&a, &b), a);
        let s = vec![D::Sym("N".into()), D::Fixed(3)];
        assert_eq!(broadcast(&s, &[D::Fixed(3)]), s);
    }
}
