//! Read-only facts about a model: its interface, opsets, producer, node and initializer statistics.
//! (API fixed here; bodies are filled in by the model I/O work.)

/// One dimension of a tensor shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A known size.
    Fixed(i64),
    /// A named symbolic size such as "batch".
    Symbolic(String),
    /// Present but neither a value nor a name.
    Unknown,
}

/// What kind of value a graph input or output holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Tensor,
    SparseTensor,
    Sequence,
    Map,
    Optional,
    Unknown,
}

/// A graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueInfo {
    pub name: String,
    pub kind: ValueKind,
    /// `TensorProto.DataType` of the tensor (or of the innermost tensor of a sequence/optional); 0 if unknown.
    pub elem_type: i32,
    /// `None` when the model gives no shape (unknown rank).
    pub shape: Option<Vec<Dim>>,
}

/// Everything `inspect` reports about a model.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ModelSummary {
    pub ir_version: i64,
    pub producer_name: String,
    pub producer_version: String,
    pub domain: String,
    pub model_version: i64,
    pub graph_name: String,
    /// (domain, version); the default ONNX domain is "".
    pub opsets: Vec<(String, i64)>,
    /// Graph inputs that are not initializers.
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    /// Nodes of the main graph (not counting nodes inside subgraphs).
    pub node_count: usize,
    /// (op type, count), op type prefixed with "domain::" outside the default domain; sorted by count descending,
    /// then name.
    pub op_histogram: Vec<(String, usize)>,
    pub initializer_count: usize,
    /// Bytes of initializer data, inline or external.
    pub initializer_bytes: u64,
}

impl Dim {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Dim::Fixed(n) => serde_json::Value::from(*n),
            Dim::Symbolic(s) => serde_json::Value::from(s.as_str()),
            Dim::Unknown => serde_json::Value::Null,
        }
    }
}

impl ValueInfo {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "kind": format!("{:?}", self.kind).to_lowercase(),
            "element_type": crate::onnx::element_type_name(self.elem_type),
            "shape": self.shape.as_ref().map(|s| s.iter().map(Dim::to_json).collect::<Vec<_>>()),
        })
    }
}

impl ModelSummary {
    /// The summary as a JSON object (what `ipuflow inspect --json` and `ipuflow_model_summary_json` give).
    pub fn to_json(&self) -> String {
        let v = serde_json::json!({
            "ir_version": self.ir_version,
            "producer_name": self.producer_name,
            "producer_version": self.producer_version,
            "domain": self.domain,
            "model_version": self.model_version,
            "graph_name": self.graph_name,
            "opsets": self.opsets.iter().map(|(d, v)| serde_json::json!({"domain": d, "version": v})).collect::<Vec<_>>(),
            "inputs": self.inputs.iter().map(ValueInfo::to_json).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(ValueInfo::to_json).collect::<Vec<_>>(),
            "node_count": self.node_count,
            "op_histogram": self.op_histogram.iter().map(|(op, n)| serde_json::json!({"op_type": op, "count": n})).collect::<Vec<_>>(),
            "initializer_count": self.initializer_count,
            "initializer_bytes": self.initializer_bytes,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}

use std::collections::{HashMap, HashSet};

use super::io::expected_raw_size;
use super::proto::{
    tensor_proto, tensor_shape_proto::dimension, type_proto, SparseTensorProto, TensorProto,
    TypeProto, ValueInfoProto,
};
use super::Model;

impl Model {
    /// What `inspect` reports: interface, opsets, producer, node and initializer statistics of the main graph.
    pub fn summary(&self) -> ModelSummary {
        let p = self.proto();
        let mut s = ModelSummary {
            ir_version: p.ir_version.unwrap_or(0),
            producer_name: p.producer_name.clone().unwrap_or_default(),
            producer_version: p.producer_version.clone().unwrap_or_default(),
            domain: p.domain.clone().unwrap_or_default(),
            model_version: p.model_version.unwrap_or(0),
            opsets: p
                .opset_import
                .iter()
                .map(|o| (o.domain.clone().unwrap_or_default(), o.version.unwrap_or(0)))
                .collect(),
            ..Default::default()
        };
        let Some(g) = p.graph.as_ref() else { return s };
        s.graph_name = g.name.clone().unwrap_or_default();

        let initializer_names: HashSet<&str> = g
            .initializer
            .iter()
            .filter_map(|t| t.name.as_deref())
            .chain(
                g.sparse_initializer
                    .iter()
                    .filter_map(|sp| sp.values.as_ref()?.name.as_deref()),
            )
            .collect();
        s.inputs = g
            .input
            .iter()
            .filter(|v| !initializer_names.contains(v.name.as_deref().unwrap_or("")))
            .map(value_info)
            .collect();
        s.outputs = g.output.iter().map(value_info).collect();

        s.node_count = g.node.len();
        let mut hist: HashMap<String, usize> = HashMap::new();
        for n in &g.node {
            let op = n.op_type.as_deref().unwrap_or("");
            let key = match n.domain.as_deref() {
                None | Some("") | Some("ai.onnx") => op.to_string(),
                Some(d) => format!("{d}::{op}"),
            };
            *hist.entry(key).or_default() += 1;
        }
        let mut hist: Vec<(String, usize)> = hist.into_iter().collect();
        hist.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        s.op_histogram = hist;

        s.initializer_count = g.initializer.len() + g.sparse_initializer.len();
        s.initializer_bytes = g.initializer.iter().map(tensor_bytes).sum::<u64>()
            + g.sparse_initializer.iter().map(sparse_bytes).sum::<u64>();
        s
    }
}

fn value_info(v: &ValueInfoProto) -> ValueInfo {
    let name = v.name.clone().unwrap_or_default();
    let Some(tp) = v.r#type.as_ref() else {
        return ValueInfo {
            name,
            kind: ValueKind::Unknown,
            elem_type: 0,
            shape: None,
        };
    };
    let kind = match &tp.value {
        Some(type_proto::Value::TensorType(_)) => ValueKind::Tensor,
        Some(type_proto::Value::SparseTensorType(_)) => ValueKind::SparseTensor,
        Some(type_proto::Value::SequenceType(_)) => ValueKind::Sequence,
        Some(type_proto::Value::MapType(_)) => ValueKind::Map,
        Some(type_proto::Value::OptionalType(_)) => ValueKind::Optional,
        Some(type_proto::Value::OpaqueType(_)) | None => ValueKind::Unknown,
    };
    let (elem_type, shape) = match kind {
        // A sequence has no shape of its own; an optional tensor has the tensor's.
        ValueKind::Sequence => (innermost(tp, 0).0, None),
        _ => innermost(tp, 0),
    };
    ValueInfo {
        name,
        kind,
        elem_type,
        shape,
    }
}

/// Element type and shape of the innermost tensor of a (nested) tensor/sparse tensor/sequence/optional type.
fn innermost(tp: &TypeProto, depth: usize) -> (i32, Option<Vec<Dim>>) {
    let shape = |s: &Option<super::proto::TensorShapeProto>| {
        s.as_ref().map(|s| s.dim.iter().map(dim).collect())
    };
    match &tp.value {
        Some(type_proto::Value::TensorType(t)) => (t.elem_type.unwrap_or(0), shape(&t.shape)),
        Some(type_proto::Value::SparseTensorType(t)) => (t.elem_type.unwrap_or(0), shape(&t.shape)),
        // Depth is bounded by the decoder's recursion limit; the guard protects hand-built protos.
        Some(type_proto::Value::SequenceType(s)) if depth < 64 => s
            .elem_type
            .as_deref()
            .map_or((0, None), |e| innermost(e, depth + 1)),
        Some(type_proto::Value::OptionalType(o)) if depth < 64 => o
            .elem_type
            .as_deref()
            .map_or((0, None), |e| innermost(e, depth + 1)),
        _ => (0, None),
    }
}

fn dim(d: &super::proto::tensor_shape_proto::Dimension) -> Dim {
    match &d.value {
        Some(dimension::Value::DimValue(v)) => Dim::Fixed(*v),
        Some(dimension::Value::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
        _ => Dim::Unknown,
    }
}

/// Bytes of a tensor's data: `raw_data`'s length, the external `length` (or the size its type and shape call
/// for), or for typed `*_data` fields the size the data has as raw bytes.
fn tensor_bytes(t: &TensorProto) -> u64 {
    if let Some(raw) = &t.raw_data {
        return raw.len() as u64;
    }
    if t.data_location == Some(tensor_proto::DataLocation::External as i32) {
        let length = t
            .external_data
            .iter()
            .find(|e| e.key.as_deref() == Some("length"))
            .and_then(|e| e.value.as_deref()?.trim().parse::<u64>().ok());
        return length.or_else(|| expected_raw_size(t)).unwrap_or(0);
    }
    if !t.string_data.is_empty() {
        return t.string_data.iter().map(|s| s.len() as u64).sum();
    }
    expected_raw_size(t).unwrap_or_else(|| {
        (t.float_data.len() * 4
            + t.int32_data.len() * 4
            + t.int64_data.len() * 8
            + t.double_data.len() * 8
            + t.uint64_data.len() * 8) as u64
    })
}

fn sparse_bytes(s: &SparseTensorProto) -> u64 {
    s.values.as_deref().map_or(0, tensor_bytes) + s.indices.as_deref().map_or(0, tensor_bytes)
}
