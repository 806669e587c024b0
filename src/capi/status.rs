//! `ipuflow_status`: the pinned result codes of every fallible C call.
//!
//! Numbers are grouped by kind (0 success, 1xx caller errors, 2xx files, 3xx models, 4xx runtime, 5xx
//! quantization, 9xx ipuflow itself). A number, once published, is never reused or renumbered; a retired code
//! stays here as a comment.

use crate::error::ErrorKind;

/// Result code of every fallible ipuflow call. Codes are pinned: a code's number never changes between releases.
/// `ipuflow_status_str()` gives its name, `ipuflow_last_error()` the detailed message of the failing call.
#[allow(non_camel_case_types)]
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ipuflow_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 100,
    /// An argument's value is outside its domain.
    InvalidArgument = 101,
    /// An integer passed for an enum is not one of its values.
    InvalidEnum = 102,
    /// A string argument is not valid UTF-8 (or a wide path not valid UTF-16).
    InvalidUtf8 = 103,
    /// A caller buffer is too small; the message gives the size needed.
    BufferTooSmall = 104,
    /// An index is past the end of a list.
    OutOfRange = 105,
    /// A size, count or rank exceeds one of ipuflow's documented limits (docs/SECURITY.md): a tensor over 4 GiB, a
    /// rank over 64, an image side over 8192, more than 1024 threads. The message names the tensor or option.
    LimitExceeded = 106,
    /// A file or directory does not exist.
    FileNotFound = 200,
    /// A file could not be read.
    FileRead = 201,
    /// A file could not be written; nothing was left behind.
    FileWrite = 202,
    /// A path was refused (an external-data location that is absolute, has `..` or resolves outside the model's
    /// directory).
    PathRefused = 203,
    /// The bytes are not a valid ONNX protobuf.
    ModelDecode = 300,
    /// The model is structurally invalid.
    ModelInvalid = 301,
    /// A tensor's external data is missing, short or malformed.
    ExternalData = 302,
    /// The request is valid but not supported (opset, operator, data type...).
    Unsupported = 303,
    /// The ONNX Runtime library was not found; the message lists the places tried.
    RuntimeNotFound = 400,
    /// A library was found but is not ONNX Runtime.
    RuntimeInvalid = 401,
    /// ONNX Runtime is too old for ipuflow.
    RuntimeTooOld = 402,
    /// No ONNX Runtime is loaded.
    RuntimeNotLoaded = 403,
    /// ONNX Runtime reported an error; the message carries its text.
    Runtime = 404,
    /// The requested device (e.g. the NPU) is unavailable and falling back was not allowed.
    DeviceUnavailable = 405,
    /// A tensor does not match the model (name, element type, rank, dimension or byte size).
    TensorMismatch = 406,
    /// The operation was cancelled by the host.
    Cancelled = 407,
    /// Calibration data is missing or unusable.
    Calibration = 500,
    /// A host callback reported an error.
    Callback = 501,
    /// Quantization finished but quantized no node (every node left float: no calibration range, all excluded,
    /// nothing quantizable); no model is returned. The message gives the reasons.
    NothingQuantized = 502,
    /// NaN or infinite values where finite ones are needed: a weight of a node to quantize (the message names the
    /// tensor; exclude the node or fix the model), or calibration data of an input without a single finite value.
    NonFinite = 503,
    /// A calibration cache was made for another model, other settings or other data; the message says which.
    /// Delete the file (or pass another path) to recalibrate.
    CalibCacheStale = 505,
    /// A file given as calibration cache is not one of this format version, or is damaged.
    CalibCacheInvalid = 506,
    /// Memory could not be allocated.
    OutOfMemory = 900,
    /// An internal error in ipuflow (a bug), including a caught panic.
    Internal = 901,
}

/// One table gives each code its name and the `ErrorKind` it stands for (every kind but success), so the list of
/// codes, their names and the conversion cannot drift apart.
macro_rules! status_table {
    ($($code:ident => $name:literal,)+) => {
        impl ipuflow_status {
            /// Every code, for `ipuflow_status_str` and the tests.
            pub const ALL: [ipuflow_status; 1 + [$(stringify!($code)),+].len()] =
                [ipuflow_status::Ok, $(ipuflow_status::$code),+];

            /// The code's stable name, as a NUL-terminated static string.
            pub const fn name(self) -> &'static str {
                match self {
                    ipuflow_status::Ok => "IPUFLOW_STATUS_OK\0",
                    $(ipuflow_status::$code => concat!($name, "\0"),)+
                }
            }
        }

        impl From<ErrorKind> for ipuflow_status {
            fn from(kind: ErrorKind) -> Self {
                match kind {
                    $(ErrorKind::$code => ipuflow_status::$code,)+
                }
            }
        }
    };
}

status_table! {
    NullArgument => "IPUFLOW_STATUS_NULL_ARGUMENT",
    InvalidArgument => "IPUFLOW_STATUS_INVALID_ARGUMENT",
    InvalidEnum => "IPUFLOW_STATUS_INVALID_ENUM",
    InvalidUtf8 => "IPUFLOW_STATUS_INVALID_UTF8",
    BufferTooSmall => "IPUFLOW_STATUS_BUFFER_TOO_SMALL",
    OutOfRange => "IPUFLOW_STATUS_OUT_OF_RANGE",
    LimitExceeded => "IPUFLOW_STATUS_LIMIT_EXCEEDED",
    FileNotFound => "IPUFLOW_STATUS_FILE_NOT_FOUND",
    FileRead => "IPUFLOW_STATUS_FILE_READ",
    FileWrite => "IPUFLOW_STATUS_FILE_WRITE",
    PathRefused => "IPUFLOW_STATUS_PATH_REFUSED",
    ModelDecode => "IPUFLOW_STATUS_MODEL_DECODE",
    ModelInvalid => "IPUFLOW_STATUS_MODEL_INVALID",
    ExternalData => "IPUFLOW_STATUS_EXTERNAL_DATA",
    Unsupported => "IPUFLOW_STATUS_UNSUPPORTED",
    RuntimeNotFound => "IPUFLOW_STATUS_RUNTIME_NOT_FOUND",
    RuntimeInvalid => "IPUFLOW_STATUS_RUNTIME_INVALID",
    RuntimeTooOld => "IPUFLOW_STATUS_RUNTIME_TOO_OLD",
    RuntimeNotLoaded => "IPUFLOW_STATUS_RUNTIME_NOT_LOADED",
    Runtime => "IPUFLOW_STATUS_RUNTIME",
    DeviceUnavailable => "IPUFLOW_STATUS_DEVICE_UNAVAILABLE",
    TensorMismatch => "IPUFLOW_STATUS_TENSOR_MISMATCH",
    Cancelled => "IPUFLOW_STATUS_CANCELLED",
    Calibration => "IPUFLOW_STATUS_CALIBRATION",
    Callback => "IPUFLOW_STATUS_CALLBACK",
    NothingQuantized => "IPUFLOW_STATUS_NOTHING_QUANTIZED",
    NonFinite => "IPUFLOW_STATUS_NON_FINITE",
    CalibCacheStale => "IPUFLOW_STATUS_CALIB_CACHE_STALE",
    CalibCacheInvalid => "IPUFLOW_STATUS_CALIB_CACHE_INVALID",
    OutOfMemory => "IPUFLOW_STATUS_OUT_OF_MEMORY",
    Internal => "IPUFLOW_STATUS_INTERNAL",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_pinned() {
        // The numbers are the ABI: this list may only grow.
        let pinned: Vec<(i32, &str)> = ipuflow_status::ALL
            .iter()
            .map(|s| (*s as i32, s.name()))
            .collect();
        assert_eq!(pinned[0], (0, "IPUFLOW_STATUS_OK\0"));
        use ipuflow_status as S;
        for (code, number) in [
            (S::NullArgument, 100),
            (S::FileNotFound, 200),
            (S::ModelDecode, 300),
            (S::RuntimeNotFound, 400),
            (S::DeviceUnavailable, 405),
            (S::Calibration, 500),
            (S::LimitExceeded, 106),
            (S::NothingQuantized, 502),
            (S::NonFinite, 503),
            (S::CalibCacheStale, 505),
            (S::CalibCacheInvalid, 506),
            (S::Internal, 901),
        ] {
            assert_eq!(code as i32, number, "{code:?}");
        }
        let mut nums: Vec<i32> = pinned.iter().map(|p| p.0).collect();
        nums.dedup();
        assert_eq!(
            nums.len(),
            ipuflow_status::ALL.len(),
            "codes are unique and sorted"
        );
        for (_, name) in pinned {
            assert!(name.ends_with('\0') && name.starts_with("IPUFLOW_STATUS_"));
        }
    }
}
