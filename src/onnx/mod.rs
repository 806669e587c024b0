//! ONNX models: the protobuf schema (prost), lossless load/save, external data, inspection, and the graph toolkit
//! the quantizer, the pre-flight and the CLI share: element types ([`DataType`]), typed tensor reads
//! ([`tensor`]), node attributes ([`node`]).

mod dtype;
pub mod fs;
mod inspect;
mod io;
pub mod node;
pub mod proto;
pub mod tensor;

pub use dtype::{element_type_name, DataType};

pub use inspect::{Dim, ModelSummary, ValueInfo, ValueKind};
pub(crate) use io::PROTOBUF_LIMIT;
pub use io::{ExternalDataOptions, Model, SaveOptions, LAZY_INLINE_LIMIT};
