//! ipuflow: the Ryzen AI development flow in-process, behind a stable C ABI.
//!
//! - [`onnx`]: lossless ONNX model I/O (prost), inspection, atomic saving.
//! - [`runtime`]: ONNX Runtime opened at run time, sessions, tensors.
//! - [`capi`]: the thin, checked C ABI over the core (`include/ipuflow.h`).
//!
//! The Rust core knows nothing about raw pointers; all of that lives in `capi`.

pub mod capi;
pub mod error;
pub mod eval;
pub mod ipu;
pub mod limits;
pub mod onnx;
pub mod quant;
pub mod runtime;

pub use error::{Error, ErrorKind, Result};

/// The library version as `major * 1_000_000 + minor * 1_000 + patch` (like `SQLITE_VERSION_NUMBER`); equal to
/// the header's `IPUFLOW_VERSION_NUMBER` (checked by a test).
pub const VERSION_NUMBER: u32 = capi::library::IPUFLOW_VERSION_NUMBER;
