//! Reading a node's op type, domain and attributes (and a model's default opset): one behaviour for every module that walks graphs (an absent field reads
//! as empty or `None`, never as a default value).

use crate::error::{Error, Result};
use crate::onnx::proto::{AttributeProto, ModelProto, NodeProto};

/// The node's op type, "" when absent.
pub fn op(n: &NodeProto) -> &str {
    n.op_type.as_deref().unwrap_or("")
}

/// The node's domain, "" when absent.
pub fn domain(n: &NodeProto) -> &str {
    n.domain.as_deref().unwrap_or("")
}

/// Whether a domain name is the default ONNX domain ("" or "ai.onnx").
pub fn is_default_domain_name(d: &str) -> bool {
    matches!(d, "" | "ai.onnx")
}

/// Whether the node is in the default ONNX domain.
pub fn is_default_domain(n: &NodeProto) -> bool {
    is_default_domain_name(domain(n))
}

/// The default-domain opset a model imports; `Unsupported` when it imports none.
pub fn default_opset(m: &ModelProto) -> Result<i64> {
    m.opset_import
        .iter()
        .find(|o| is_default_domain_name(o.domain.as_deref().unwrap_or("")))
        .and_then(|o| o.version)
        .ok_or_else(|| Error::unsupported("the model imports no default-domain (ai.onnx) opset"))
}

/// The attribute called `name`, if the node has one.
pub fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}

/// An INT attribute's value.
pub fn attr_i(n: &NodeProto, name: &str) -> Option<i64> {
    attr(n, name).and_then(|a| a.i)
}

/// A FLOAT attribute's value.
pub fn attr_f(n: &NodeProto, name: &str) -> Option<f32> {
    attr(n, name).and_then(|a| a.f)
}

/// An INTS attribute's values (empty when the attribute exists without any).
pub fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

/// A STRING attribute's value, decoded as UTF-8 with invalid bytes replaced.
pub fn attr_s(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

/// Removes the attribute called `name` from the node and returns it (opset conversions turn attributes into inputs).
pub fn take_attr(n: &mut NodeProto, name: &str) -> Option<AttributeProto> {
    let i = n
        .attribute
        .iter()
        .position(|a| a.name.as_deref() == Some(name))?;
    Some(n.attribute.remove(i))
}

/// "Conv node 'name'", for messages that name a node.
pub fn label(n: &NodeProto) -> String {
    format!("{} node '{}'", op(n), n.name.as_deref().unwrap_or(""))
}
