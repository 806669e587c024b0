//! The one error type of the Rust core.
//!
//! Every error carries a kind (which becomes the C ABI's pinned status code) and a message that names the file,
//! tensor or option involved and what is wrong with it. The core never panics on bad input; it returns these.

use std::fmt;

/// What went wrong, by kind. Each kind maps to exactly one `ipuflow_status` code (see `capi::status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A required pointer argument was NULL (C ABI only).
    NullArgument,
    /// An argument has a value outside its domain (bad option value, empty name, wrong index...).
    InvalidArgument,
    /// An integer passed for an enum is not one of its values.
    InvalidEnum,
    /// A string argument is not valid UTF-8 (or UTF-16 for wide paths).
    InvalidUtf8,
    /// A caller-provided buffer is smaller than what must be written into it.
    BufferTooSmall,
    /// An index is past the end of a list.
    OutOfRange,
    /// A size, count or rank exceeds one of ipuflow's documented limits (`crate::limits`, docs/SECURITY.md).
    LimitExceeded,
    /// A file or directory does not exist.
    FileNotFound,
    /// A file exists but could not be read (permissions, I/O error, short read).
    FileRead,
    /// A file could not be written (permissions, full disk, missing directory).
    FileWrite,
    /// A path was refused for safety (absolute or `..` external-data locations).
    PathRefused,
    /// The bytes are not a valid ONNX protobuf.
    ModelDecode,
    /// The model decodes but is inconsistent (dangling references, bad tensor sizes, ...).
    ModelInvalid,
    /// External data of a tensor is missing, short or malformed.
    ExternalData,
    /// A valid request that ipuflow does not support (yet): an opset, an op, a data type.
    Unsupported,
    /// The ONNX Runtime shared library was not found in any of the places tried.
    RuntimeNotFound,
    /// A shared library was found but is not ONNX Runtime (no `OrtGetApiBase`).
    RuntimeInvalid,
    /// ONNX Runtime is older than the API version ipuflow needs.
    RuntimeTooOld,
    /// A call needs ONNX Runtime but none is loaded.
    RuntimeNotLoaded,
    /// ONNX Runtime returned an error status; the message carries its text.
    Runtime,
    /// The requested execution device (e.g. the NPU) is unavailable and the policy forbade falling back.
    DeviceUnavailable,
    /// A tensor's name, element type, rank, dimension or byte size does not match what the model expects.
    TensorMismatch,
    /// Calibration data is missing or unusable.
    Calibration,
    /// The host cancelled the operation.
    Cancelled,
    /// A host callback reported an error.
    Callback,
    /// Quantization produced a model in which no node is quantized; the message says why.
    NothingQuantized,
    /// Values ipuflow needs finite are NaN or infinite (a weight, or every calibration value of an input).
    NonFinite,
    /// A calibration cache was made for another model, other collection settings or other data.
    CalibCacheStale,
    /// A calibration cache file is not a cache of this format version, or is damaged.
    CalibCacheInvalid,
    /// Memory could not be allocated.
    OutOfMemory,
    /// A bug in ipuflow (including a caught panic).
    Internal,
}

/// An error of the Rust core: a kind and a message naming what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Prefixes the message with context (e.g. the file being loaded), keeping the kind.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }

    pub fn invalid_argument(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, msg)
    }
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, msg)
    }
    pub fn model_invalid(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::ModelInvalid, msg)
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, msg)
    }

    /// Maps an I/O error on `path` to the right kind, naming the path and the action.
    pub fn io(action: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match (err.kind(), action) {
            (K::NotFound, "read" | "open" | "map") => ErrorKind::FileNotFound,
            (K::OutOfMemory, _) => ErrorKind::OutOfMemory,
            (_, "read" | "open" | "map") => ErrorKind::FileRead,
            _ => ErrorKind::FileWrite,
        };
        Self::new(kind, format!("cannot {action} '{}': {err}", path.display()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
