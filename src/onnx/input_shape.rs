//! Fixing a model's dynamic input dimensions (`--input-shape NAME=1,3,640,640`).
//!
//! The NPU compiles fixed shapes only, and ONNX Runtime's shape inference (used by quantize preparation) can only
//! resolve a detector's Resize or a recognizer's Reshape when the input's height and width are known. One function,
//! [`apply_input_shapes`], rewrites the graph's input declarations; quantize preparation, the pre-flight and
//! session creation all call it, so the three see the same model.
//!
//! A symbolic dimension (`dim_param`, e.g. "height") fixed on one input is fixed under that name everywhere in the
//! graph's declarations (other inputs, outputs, value_info): the model says those sizes are equal. Declared sizes
//! derived from it in other ways ("height/32") are left for shape inference, which recomputes them.

use std::collections::BTreeMap;

use super::proto::tensor_shape_proto::{dimension::Value as DimValue, Dimension};
use super::proto::{type_proto, GraphProto, ModelProto, TensorShapeProto, ValueInfoProto};
use crate::error::{Error, Result};

/// The shape a graph input is to have: every dimension fixed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InputShape {
    /// The graph input's name.
    pub name: String,
    /// Its sizes, each at least 1.
    pub dims: Vec<i64>,
}

impl InputShape {
    /// A shape for input `name`; `InvalidArgument` when the name is empty or a size is below 1, `LimitExceeded` over
    /// the rank limit.
    pub fn new(name: impl Into<String>, dims: Vec<i64>) -> Result<InputShape> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::invalid_argument(
                "input shape: the input name is empty",
            ));
        }
        crate::limits::check_rank(&format!("input shape of '{name}'"), dims.len())?;
        if let Some((i, d)) = dims.iter().enumerate().find(|(_, d)| **d < 1) {
            return Err(Error::invalid_argument(format!(
                "input shape of '{name}': dimension {i} is {d}; every size must be at least 1"
            )));
        }
        Ok(InputShape { name, dims })
    }

    /// Parses `NAME=1,3,640,640` (spaces around sizes allowed; the name is everything before the last `=`, so
    /// names holding `=` work). `InvalidArgument` naming what is wrong.
    pub fn parse(spec: &str) -> Result<InputShape> {
        let (name, dims) = spec.rsplit_once('=').ok_or_else(|| {
            Error::invalid_argument(format!(
                "input shape '{spec}': expected NAME=D0,D1,... (e.g. images=1,3,640,640)"
            ))
        })?;
        let dims = dims
            .split(',')
            .map(|d| {
                d.trim().parse::<i64>().map_err(|_| {
                    Error::invalid_argument(format!(
                        "input shape '{spec}': '{}' is not a size (expected NAME=D0,D1,... with integers)",
                        d.trim()
                    ))
                })
            })
            .collect::<Result<Vec<i64>>>()?;
        InputShape::new(name, dims)
    }
}

impl std::fmt::Display for InputShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d: Vec<String> = self.dims.iter().map(|d| d.to_string()).collect();
        write!(f, "{}={}", self.name, d.join(","))
    }
}

/// A dimension of a graph input that is not fixed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicDim {
    /// The graph input.
    pub input: String,
    /// The dimension's position; `None` when the input has no shape at all (unknown rank).
    pub index: Option<usize>,
    /// Its symbolic name ("height"), "" when unnamed.
    pub symbol: String,
    /// The input's declared shape, e.g. `[batch,3,?,?]`.
    pub declared: String,
}

impl DynamicDim {
    /// "input 'images' dimension 2 ('height') of [1,3,height,width]".
    pub fn describe(&self) -> String {
        match self.index {
            None => format!("input '{}' has no declared shape", self.input),
            Some(i) if self.symbol.is_empty() => {
                format!("input '{}' dimension {i} of {}", self.input, self.declared)
            }
            Some(i) => format!(
                "input '{}' dimension {i} ('{}') of {}",
                self.input, self.symbol, self.declared
            ),
        }
    }
}

fn shape_of(v: &ValueInfoProto) -> Option<&TensorShapeProto> {
    match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => t.shape.as_ref(),
        _ => None,
    }
}

fn shape_of_mut(v: &mut ValueInfoProto) -> Option<&mut Option<TensorShapeProto>> {
    match v.r#type.as_mut()?.value.as_mut()? {
        type_proto::Value::TensorType(t) => Some(&mut t.shape),
        _ => None,
    }
}

/// A declared shape as text: `[batch,3,?,224]`.
pub fn declared_shape(v: &ValueInfoProto) -> String {
    match shape_of(v) {
        None => "[unknown rank]".into(),
        Some(s) => {
            let d: Vec<String> = s
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(DimValue::DimValue(n)) => n.to_string(),
                    Some(DimValue::DimParam(p)) if !p.is_empty() => p.clone(),
                    _ => "?".into(),
                })
                .collect();
            format!("[{}]", d.join(","))
        }
    }
}

/// The graph inputs a run must feed (initializers with the same name are defaults, not inputs).
fn fed_inputs(g: &GraphProto) -> impl Iterator<Item = &ValueInfoProto> {
    let inits: std::collections::HashSet<&str> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    g.input
        .iter()
        .filter(move |v| !v.name.as_deref().is_some_and(|n| inits.contains(n)))
}

/// Every dimension of the model's (non-initializer) tensor inputs that is not fixed, in input order.
pub fn dynamic_input_dims(model: &ModelProto) -> Vec<DynamicDim> {
    let Some(g) = model.graph.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for v in fed_inputs(g) {
        let is_tensor = matches!(
            v.r#type.as_ref().and_then(|t| t.value.as_ref()),
            Some(type_proto::Value::TensorType(_))
        );
        if !is_tensor {
            continue;
        }
        let input = v.name.clone().unwrap_or_default();
        let declared = declared_shape(v);
        match shape_of(v) {
            None => out.push(DynamicDim {
                input,
                index: None,
                symbol: String::new(),
                declared,
            }),
            Some(s) => {
                for (i, d) in s.dim.iter().enumerate() {
                    let symbol = match &d.value {
                        Some(DimValue::DimValue(n)) if *n >= 1 => continue,
                        Some(DimValue::DimParam(p)) => p.clone(),
                        _ => String::new(),
                    };
                    out.push(DynamicDim {
                        input: input.clone(),
                        index: Some(i),
                        symbol,
                        declared: declared.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Fixes the shapes of graph inputs as `shapes` say. Returns one line per input changed ("images:
/// [1,3,height,width] -> [1,3,640,640]"); an input already declared with exactly that shape is not listed.
///
/// Errors (nothing is changed then): `InvalidArgument` when a name is given twice, names no graph input (the
/// message lists the inputs), names an input that is not a tensor, has another rank than the input declares, or
/// contradicts a fixed size the model declares (the message names the dimension and both sizes); `ModelInvalid`
/// when the model has no graph.
pub fn apply_input_shapes(model: &mut ModelProto, shapes: &[InputShape]) -> Result<Vec<String>> {
    if shapes.is_empty() {
        return Ok(Vec::new());
    }
    let g = model
        .graph
        .as_mut()
        .ok_or_else(|| Error::model_invalid("model has no graph"))?;
    // Check everything before changing anything.
    let mut plan: Vec<(usize, &InputShape)> = Vec::new();
    let mut symbols: Symbols = BTreeMap::new();
    for (k, s) in shapes.iter().enumerate() {
        if shapes[..k].iter().any(|o| o.name == s.name) {
            return Err(Error::invalid_argument(format!(
                "input shape: '{}' is given twice",
                s.name
            )));
        }
        plan.push((check_input_shape(g, s, &mut symbols)?, s));
    }
    let changed = write_shapes(g, &plan);
    // The same symbol elsewhere in the declarations is the same size.
    if !symbols.is_empty() {
        substitute_symbols(g, &symbols);
    }
    Ok(changed)
}

/// Symbolic dimension name -> (size, which shape option set it).
type Symbols = BTreeMap<String, (i64, String)>;

/// Checks `s` against the graph input it names (recording the sizes it gives symbolic dimensions in `symbols`);
/// returns that input's index in `g.input`.
fn check_input_shape(g: &GraphProto, s: &InputShape, symbols: &mut Symbols) -> Result<usize> {
    let fed: Vec<&ValueInfoProto> = fed_inputs(g).collect();
    let Some(v) = fed
        .iter()
        .find(|v| v.name.as_deref() == Some(s.name.as_str()))
    else {
        return Err(no_such_input(s, &fed));
    };
    let Some(declared) = shape_of_mut_ro(v) else {
        return Err(Error::invalid_argument(format!(
            "input shape '{s}': input '{}' is not a tensor",
            s.name
        )));
    };
    if let Some(dims) = declared {
        check_dims(s, v, dims, symbols)?;
    }
    Ok(g.input
        .iter()
        .position(|x| x.name.as_deref() == Some(s.name.as_str()))
        .expect("found among the inputs above"))
}

/// The error for a shape naming no fed graph input: it lists the inputs there are.
fn no_such_input(s: &InputShape, fed: &[&ValueInfoProto]) -> Error {
    let names: Vec<String> = fed
        .iter()
        .map(|v| {
            format!(
                "'{}' {}",
                v.name.as_deref().unwrap_or(""),
                declared_shape(v)
            )
        })
        .collect();
    Error::invalid_argument(format!(
        "input shape '{s}': the model has no input '{}' (its inputs: {})",
        s.name,
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    ))
}

/// The rank of `s` against the declared one, each size against a fixed declared size, each symbolic dimension
/// against the size another shape already gave that symbol.
fn check_dims(
    s: &InputShape,
    v: &ValueInfoProto,
    dims: &TensorShapeProto,
    symbols: &mut Symbols,
) -> Result<()> {
    if dims.dim.len() != s.dims.len() {
        return Err(Error::invalid_argument(format!(
            "input shape '{s}': input '{}' has rank {} ({}), the shape given has rank {}",
            s.name,
            dims.dim.len(),
            declared_shape(v),
            s.dims.len()
        )));
    }
    for (i, (d, want)) in dims.dim.iter().zip(&s.dims).enumerate() {
        match &d.value {
            Some(DimValue::DimValue(n)) if *n >= 1 && n != want => {
                return Err(Error::invalid_argument(format!(
                    "input shape '{s}': dimension {i} of input '{}' is fixed at {n} by the model ({}), \
                     not {want}",
                    s.name,
                    declared_shape(v)
                )))
            }
            Some(DimValue::DimParam(p)) if !p.is_empty() => {
                if let Some((other, by)) = symbols.get(p) {
                    if other != want {
                        return Err(Error::invalid_argument(format!(
                            "input shape '{s}': dimension {i} of input '{}' is '{p}', which {by} sets to \
                             {other}, not {want} (the model says they are equal)",
                            s.name
                        )));
                    }
                }
                symbols.insert(p.clone(), (*want, format!("'{s}'")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Writes each checked shape into its input; one line per input whose declaration changed.
fn write_shapes(g: &mut GraphProto, plan: &[(usize, &InputShape)]) -> Vec<String> {
    let mut changed = Vec::new();
    for &(idx, s) in plan {
        let v = &mut g.input[idx];
        let before = declared_shape(v);
        let slot = shape_of_mut(v).expect("checked: a tensor");
        *slot = Some(TensorShapeProto {
            dim: s
                .dims
                .iter()
                .map(|&n| Dimension {
                    value: Some(DimValue::DimValue(n)),
                    denotation: None,
                })
                .collect(),
        });
        let after = declared_shape(v);
        if before != after {
            changed.push(format!("{}: {before} -> {after}", s.name));
        }
    }
    changed
}

/// Replaces each symbol given a size by that size in every input, output and value_info declaration.
fn substitute_symbols(g: &mut GraphProto, symbols: &Symbols) {
    for v in g
        .input
        .iter_mut()
        .chain(g.output.iter_mut())
        .chain(g.value_info.iter_mut())
    {
        if let Some(Some(shape)) = shape_of_mut(v) {
            for d in &mut shape.dim {
                if let Some(DimValue::DimParam(p)) = &d.value {
                    if let Some((n, _)) = symbols.get(p) {
                        d.value = Some(DimValue::DimValue(*n));
                    }
                }
            }
        }
    }
}

/// `Some(declared shape or None for unknown rank)` for a tensor input, `None` for other kinds.
fn shape_of_mut_ro(v: &ValueInfoProto) -> Option<Option<&TensorShapeProto>> {
    match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(t.shape.as_ref()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{type_proto::Tensor, TypeProto};

    fn vi(name: &str, dims: Option<Vec<DimValue>>) -> ValueInfoProto {
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(Tensor {
                    elem_type: Some(1),
                    shape: dims.map(|d| TensorShapeProto {
                        dim: d
                            .into_iter()
                            .map(|v| Dimension {
                                value: Some(v),
                                denotation: None,
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn model() -> ModelProto {
        use DimValue::{DimParam, DimValue as Fixed};
        ModelProto {
            graph: Some(GraphProto {
                input: vec![
                    vi(
                        "images",
                        Some(vec![
                            DimParam("N".into()),
                            Fixed(3),
                            DimParam("h".into()),
                            DimParam(String::new()),
                        ]),
                    ),
                    vi("any", None),
                ],
                output: vec![vi(
                    "y",
                    Some(vec![DimParam("N".into()), DimParam("h".into())]),
                )],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn parses_and_refuses_bad_specs() {
        let s = InputShape::parse("a=b= 1, 3,640,640").unwrap();
        assert_eq!(s.name, "a=b");
        assert_eq!(s.dims, vec![1, 3, 640, 640]);
        for bad in ["images", "=1,2", "x=1,,2", "x=1,0", "x=-1", "x=1.5"] {
            assert!(InputShape::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fixes_dynamic_dims_and_their_symbol_everywhere() {
        let mut m = model();
        assert_eq!(dynamic_input_dims(&m).len(), 4);
        let changed = apply_input_shapes(
            &mut m,
            &[
                InputShape::parse("images=1,3,640,480").unwrap(),
                InputShape::parse("any=2,2").unwrap(),
            ],
        )
        .unwrap();
        assert_eq!(changed[0], "images: [N,3,h,?] -> [1,3,640,480]");
        assert_eq!(changed[1], "any: [unknown rank] -> [2,2]");
        let g = m.graph.as_ref().unwrap();
        assert_eq!(declared_shape(&g.output[0]), "[1,640]");
        assert!(dynamic_input_dims(&m).is_empty());
    }

    #[test]
    fn refusals_change_nothing_and_name_the_problem() {
        let before = model();
        for (spec, says) in [
            ("nope=1", "no input 'nope'"),
            ("images=1,3,640", "rank 4"),
            ("images=1,4,640,640", "fixed at 3"),
        ] {
            let mut m = model();
            let e = apply_input_shapes(&mut m, &[InputShape::parse(spec).unwrap()]).unwrap_err();
            assert!(e.message().contains(says), "{spec}: {}", e.message());
            assert_eq!(m, before);
        }
    }
}
