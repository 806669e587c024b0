//! The ONNX protobuf schema as prost messages, generated from ONNX's own `.proto` files.
//!
//! `proto/onnx.rs` is written by `scripts/gen_proto.sh` (tools/protogen: protox parses `onnx/onnx-ml.proto`, the
//! ONNX-ML superset of `onnx.proto`, and `onnx/onnx-data.proto` of the pinned onnx wheel; prost-build writes the
//! types) and checked by the lint section of `scripts/test.sh`: never edit it, change tools/protogen and rerun the
//! script. prost-build's naming: snake_case fields, nested messages and enums in snake_case modules
//! (`tensor_proto::DataType`, `type_proto::Value`, `tensor_shape_proto::dimension::Value`), `r#type` for `type`.
//! Hand-written additions (element sizes, the IR version) are in `proto_ext.rs`.
//!
//! Encoding is lossless for proto2:
//! - every singular scalar/string is `Option<_>`, so an explicitly written default (e.g. `ir_version: 0`) keeps its
//!   presence and re-encodes to the same bytes;
//! - enum-typed fields are `Option<i32>` (prost's `enumeration`), so values this schema does not know survive;
//! - repeated scalars are packed only where the `.proto` says `[packed = true]` (TensorProto's `*_data` fields);
//!   all others are `packed = "false"`. prost decodes both forms either way.
//! - prost encodes fields in field-number order, like protobuf's C++/upb serializers. The one place that can differ
//!   is a message with a oneof whose members' numbers straddle another field (`TypeProto.denotation` = 6 vs. the
//!   `value` oneof 1..9): prost writes the oneof where its smallest number would go.
//! - The large optional sub-messages of `AttributeProto` (`t`, `g`, `sparse_tensor`, `tp`), `SparseTensorProto`
//!   (`values`, `indices`) and the onnx-data values are boxed (tools/protogen's `BOXED`): unboxed, an empty 2-byte
//!   `AttributeProto` on the wire would cost ~1.6 KB in memory, letting a small malicious file allocate ~1000x its
//!   size. Boxed, the worst case is an empty `TensorProto` (~340 bytes per 2 input bytes), in line with
//!   protobuf's C++ objects. prost boxes the recursive ones itself (`TypeProto`'s sequence/map/optional members).
//! - Unknown fields are dropped by prost (the backend test suite has none; `tests/onnx_roundtrip.rs` checks that
//!   every model re-encodes to the same bytes or to an equal message).

// Generated code: its doc comments are the .proto's prose, and its style is prost-build's.
#[allow(clippy::all, clippy::pedantic, rustdoc::all)]
mod onnx;

pub use super::proto_ext::IR_VERSION;
pub use onnx::*;
