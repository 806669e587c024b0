//! Folding small integer tensors: the shape arithmetic exporters leave in graphs (torch's static-padding glue,
//! `Shape -> Gather -> Concat -> Reshape` chains), computed from constants so that shape inference
//! ([`super::shape_infer`]) sees through it.

use super::shape_infer::{get, tensor_i64, Consts, Infos};
use crate::onnx::node::{attr, attr_i, attr_ints, is_default_domain, op};
use crate::onnx::proto::{NodeProto, TensorProto};
use crate::onnx::DataType;

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
        strides(&self.dims)
    }
    fn to_proto(&self, elem: DataType) -> TensorProto {
        TensorProto {
            dims: self.dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(elem.onnx()),
            int64_data: if elem == DataType::Int64 {
                self.v.clone()
            } else {
                Vec::new()
            },
            int32_data: if elem == DataType::Int32 {
                self.v.iter().map(|&x| x as i32).collect()
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut st = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * dims[i + 1];
    }
    st
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
pub(crate) fn fold(n: &NodeProto, m: &Infos, consts: &Consts) -> Option<TensorProto> {
    if !is_default_domain(n) || n.output.len() != 1 {
        return None;
    }
    let r = match op(n) {
        "Shape" => fold_shape(n, m)?,
        "ConstantOfShape" => fold_constant_of_shape(n, consts)?,
        "Identity" => int_const(consts, n, 0)?,
        // Cast keeps the integer values and only changes the stored type.
        "Cast" => {
            let to = DataType::from_onnx(attr_i(n, "to")? as i32)?;
            let x = int_const(consts, n, 0)?;
            return matches!(to, DataType::Int64 | DataType::Int32).then(|| x.to_proto(to));
        }
        "Reshape" => fold_reshape(n, consts)?,
        "Squeeze" | "Unsqueeze" => fold_squeeze(n, consts)?,
        "Concat" => fold_concat(n, consts)?,
        "Transpose" => fold_transpose(n, consts)?,
        "Slice" => fold_slice(n, consts)?,
        "Gather" => fold_gather(n, consts)?,
        "Add" | "Sub" | "Mul" | "Div" => fold_arith(n, consts)?,
        _ => return None,
    };
    (r.v.len() <= FOLD_MAX_ELEMS && checked_product(&r.dims) == Some(r.v.len()))
        .then(|| r.to_proto(DataType::Int64))
}

fn fold_shape(n: &NodeProto, m: &Infos) -> Option<IntT> {
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
    Some(IntT {
        dims: vec![v.len()],
        v,
    })
}

fn fold_constant_of_shape(n: &NodeProto, consts: &Consts) -> Option<IntT> {
    let shape = int_const(consts, n, 0)?;
    let dims: Vec<usize> = shape
        .v
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let count = checked_product(&dims).filter(|&c| c <= FOLD_MAX_ELEMS)?;
    // Without a value the fill is float 0, not an integer tensor.
    let value = *tensor_i64(attr(n, "value")?.t.as_ref()?)?.first()?;
    Some(IntT {
        dims,
        v: vec![value; count],
    })
}

fn fold_reshape(n: &NodeProto, consts: &Consts) -> Option<IntT> {
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
    Some(IntT { dims, v: x.v })
}

fn fold_squeeze(n: &NodeProto, consts: &Consts) -> Option<IntT> {
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
    Some(IntT { dims, v: x.v })
}

fn fold_concat(n: &NodeProto, consts: &Consts) -> Option<IntT> {
    let parts: Vec<IntT> = (0..n.input.len())
        .map(|i| int_const(consts, n, i))
        .collect::<Option<_>>()?;
    let first = parts.first()?;
    let r = first.dims.len();
    let axis = norm_axis(attr_i(n, "axis")?, r)?;
    if parts
        .iter()
        .any(|p| p.dims.len() != r || (0..r).any(|d| d != axis && p.dims[d] != first.dims[d]))
    {
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
    Some(IntT { dims, v })
}

fn fold_transpose(n: &NodeProto, consts: &Consts) -> Option<IntT> {
    let x = int_const(consts, n, 0)?;
    let r = x.dims.len();
    let perm: Vec<usize> = match attr_ints(n, "perm") {
        Some(p) => p.iter().map(|&a| norm_axis(a, r)).collect::<Option<_>>()?,
        None => (0..r).rev().collect(),
    };
    let dims: Vec<usize> = perm.iter().map(|&p| x.dims[p]).collect();
    let (st, ost) = (x.strides(), strides(&dims));
    let mut v = vec![0i64; x.v.len()];
    for (flat, slot) in v.iter_mut().enumerate() {
        let mut src = 0;
        for (k, &p) in perm.iter().enumerate() {
            let idx = (flat / ost[k]) % dims[k].max(1);
            src += idx * st[p];
        }
        *slot = x.v[src];
    }
    Some(IntT { dims, v })
}

/// The source indices Slice picks along an axis of `dim` elements.
fn slice_indices(dim: i64, s: i64, e: i64, st: i64) -> Vec<usize> {
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
    idx
}

fn fold_slice(n: &NodeProto, consts: &Consts) -> Option<IntT> {
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
        let (s, e, st) = (*starts.get(k)?, *ends.get(k)?, *steps.get(k)?);
        if st == 0 {
            return None;
        }
        pick[ax] = slice_indices(x.dims[ax] as i64, s, e, st);
    }
    let dims: Vec<usize> = pick.iter().map(|p| p.len()).collect();
    let (st, ost) = (x.strides(), strides(&dims));
    let total: usize = dims.iter().product();
    let mut v = Vec::with_capacity(total);
    for flat in 0..total {
        let mut src = 0;
        for k in 0..r {
            let idx = (flat / ost[k]) % dims[k];
            src += pick[k][idx] * st[k];
        }
        v.push(x.v[src]);
    }
    Some(IntT { dims, v })
}

fn fold_gather(n: &NodeProto, consts: &Consts) -> Option<IntT> {
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
    Some(IntT { dims: ind.dims, v })
}

/// Add/Sub/Mul/Div of equal shapes or with a scalar side; `None` on overflow or division by zero.
fn fold_arith(n: &NodeProto, consts: &Consts) -> Option<IntT> {
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
    let (dims, v): (Vec<usize>, Option<Vec<i64>>) = if a.dims == b.dims {
        let v = a.v.iter().zip(&b.v).map(|(&x, &y)| f(x, y)).collect();
        (a.dims, v)
    } else if b.v.len() == 1 && b.dims.len() <= a.dims.len() {
        (a.dims, a.v.iter().map(|&x| f(x, b.v[0])).collect())
    } else if a.v.len() == 1 && a.dims.len() <= b.dims.len() {
        (b.dims, b.v.iter().map(|&y| f(a.v[0], y)).collect())
    } else {
        return None;
    };
    Some(IntT { dims, v: v? })
}
