//! ONNX models: the protobuf schema (prost), lossless load/save, external data, inspection, and the graph toolkit
//! the quantizer, the pre-flight and the CLI share: element types ([`DataType`]), typed tensor reads
//! ([`tensor`]), node attributes ([`node`]), shape inference with integer constant folding (`shape_infer`, `fold`).

mod dtype;
pub(crate) mod fold;
pub mod fs;
pub mod input_shape;
mod inspect;
mod io;
pub mod node;
pub mod nodes_only;
pub mod proto;
mod proto_ext;
pub(crate) mod shape_infer;
pub mod tensor;

pub use dtype::{element_type_name, DataType};

pub use input_shape::{apply_input_shapes, dynamic_input_dims, DynamicDim, InputShape};
pub use inspect::{Dim, ModelSummary, ValueInfo, ValueKind};
pub(crate) use io::PROTOBUF_LIMIT;
pub use io::{ExternalDataOptions, Model, SaveOptions, LAZY_INLINE_LIMIT};
