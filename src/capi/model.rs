//! `ipuflow_model`: an ONNX model in memory. Loading, saving, serializing and inspecting.

use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{
    arg_bytes, arg_path, arg_str, arg_wide_path, box_handle, c_string, check_index, guard,
    guard_value, input_shape_arg, ipuflow_status, opt_path, opt_wide_path, out_ptr, string_to_c,
    write_opt, write_out, BoxHandle,
};
use crate::error::{Error, ErrorKind, Result};
use crate::onnx::{
    Dim, ExternalDataOptions, Model, ModelSummary, SaveOptions, ValueInfo, ValueKind,
};

/// An ONNX model held in memory: its graph, weights (external data already read in) and metadata.
///
/// Created by `ipuflow_model_load_file`, `ipuflow_model_load_file_w` or `ipuflow_model_load_bytes`; freed with
/// `ipuflow_model_free`. A model is immutable once created, so every `const ipuflow_model*` call is thread-safe
/// and may run concurrently with any other such call; strings and arrays it returns are owned by the model and
/// stay valid until `ipuflow_model_free`.
pub struct ipuflow_model {
    _private: [u8; 0],
}

/// The Rust side of `ipuflow_model`: the model plus C views of its summary, built on first use.
pub(crate) struct ModelHandle {
    pub(crate) model: Model,
    views: OnceLock<SummaryViews>,
}

impl ModelHandle {
    pub(crate) fn new(model: Model) -> Self {
        ModelHandle {
            model,
            views: OnceLock::new(),
        }
    }
    fn views(&self) -> &SummaryViews {
        self.views
            .get_or_init(|| SummaryViews::new(self.model.summary()))
    }
}

box_handle!(ipuflow_model => ModelHandle);

/// The value is a dense tensor.
pub const IPUFLOW_VALUE_KIND_TENSOR: i32 = 1;
/// The value is a sparse tensor.
pub const IPUFLOW_VALUE_KIND_SPARSE_TENSOR: i32 = 2;
/// The value is a sequence (its `element_type` is that of the innermost tensor, if known).
pub const IPUFLOW_VALUE_KIND_SEQUENCE: i32 = 3;
/// The value is a map.
pub const IPUFLOW_VALUE_KIND_MAP: i32 = 4;
/// The value is an optional (its `element_type` is that of the innermost tensor, if known).
pub const IPUFLOW_VALUE_KIND_OPTIONAL: i32 = 5;
/// The model does not say what the value is.
pub const IPUFLOW_VALUE_KIND_UNKNOWN: i32 = 0;

/// A graph input or output, as reported by `ipuflow_model_get_input` / `ipuflow_model_get_output`.
///
/// Every pointer in it is owned by the model and valid until `ipuflow_model_free`.
#[repr(C)]
pub struct ipuflow_value_info {
    /// The value's name (UTF-8, never NULL).
    pub name: *const c_char,
    /// One of `IPUFLOW_VALUE_KIND_*`.
    pub kind: i32,
    /// ONNX `TensorProto.DataType` of the elements (`IPUFLOW_ELEMENT_TYPE_*`), 0 if unknown.
    pub element_type: i32,
    /// Number of dimensions, or -1 when the model gives no shape (unknown rank).
    pub rank: i64,
    /// `rank` sizes; -1 for a symbolic or unknown dimension. NULL when `rank` <= 0.
    pub dims: *const i64,
    /// `rank` names: the symbolic name of each dimension (e.g. "batch"), or NULL for a fixed or unnamed one.
    /// NULL when `rank` <= 0.
    pub dim_names: *const *const c_char,
}

/// Owned C strings and arrays behind the pointers handed out for one value.
struct ValueView {
    name: CString,
    dims: Vec<i64>,
    dim_name_strings: Vec<Option<CString>>,
    dim_names: Vec<*const c_char>,
    kind: i32,
    element_type: i32,
    rank: i64,
}

// The raw pointers point into the CStrings owned by the same struct, which never move once built.
unsafe impl Send for ValueView {}
unsafe impl Sync for ValueView {}

impl ValueView {
    fn new(v: &ValueInfo) -> Self {
        let kind = match v.kind {
            ValueKind::Tensor => IPUFLOW_VALUE_KIND_TENSOR,
            ValueKind::SparseTensor => IPUFLOW_VALUE_KIND_SPARSE_TENSOR,
            ValueKind::Sequence => IPUFLOW_VALUE_KIND_SEQUENCE,
            ValueKind::Map => IPUFLOW_VALUE_KIND_MAP,
            ValueKind::Optional => IPUFLOW_VALUE_KIND_OPTIONAL,
            ValueKind::Unknown => IPUFLOW_VALUE_KIND_UNKNOWN,
        };
        let (rank, dims, dim_name_strings) = match &v.shape {
            None => (-1, Vec::new(), Vec::new()),
            Some(shape) => {
                let dims = shape
                    .iter()
                    .map(|d| if let Dim::Fixed(n) = d { *n } else { -1 })
                    .collect();
                let names = shape
                    .iter()
                    .map(|d| {
                        if let Dim::Symbolic(s) = d {
                            Some(c_string(s))
                        } else {
                            None
                        }
                    })
                    .collect();
                (shape.len() as i64, dims, names)
            }
        };
        let dim_names = dim_name_strings
            .iter()
            .map(|n: &Option<CString>| n.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
            .collect();
        ValueView {
            name: c_string(&v.name),
            dims,
            dim_name_strings,
            dim_names,
            kind,
            element_type: v.elem_type,
            rank,
        }
    }

    fn to_c(&self) -> ipuflow_value_info {
        let _ = &self.dim_name_strings; // owns the strings dim_names points into
        ipuflow_value_info {
            name: self.name.as_ptr(),
            kind: self.kind,
            element_type: self.element_type,
            rank: self.rank,
            dims: if self.rank > 0 {
                self.dims.as_ptr()
            } else {
                std::ptr::null()
            },
            dim_names: if self.rank > 0 {
                self.dim_names.as_ptr()
            } else {
                std::ptr::null()
            },
        }
    }
}

struct SummaryViews {
    summary: ModelSummary,
    producer_name: CString,
    producer_version: CString,
    domain: CString,
    graph_name: CString,
    opset_domains: Vec<CString>,
    op_types: Vec<CString>,
    inputs: Vec<ValueView>,
    outputs: Vec<ValueView>,
}

impl SummaryViews {
    fn new(summary: ModelSummary) -> Self {
        SummaryViews {
            producer_name: c_string(&summary.producer_name),
            producer_version: c_string(&summary.producer_version),
            domain: c_string(&summary.domain),
            graph_name: c_string(&summary.graph_name),
            opset_domains: summary.opsets.iter().map(|(d, _)| c_string(d)).collect(),
            op_types: summary
                .op_histogram
                .iter()
                .map(|(op, _)| c_string(op))
                .collect(),
            inputs: summary.inputs.iter().map(ValueView::new).collect(),
            outputs: summary.outputs.iter().map(ValueView::new).collect(),
            summary,
        }
    }
}

fn load_path(path: &Path, out: *mut *mut ipuflow_model) -> Result<()> {
    let model = Model::load_file(path)?;
    unsafe { write_out(out, ipuflow_model::into_raw(ModelHandle::new(model))) };
    Ok(())
}

/// Loads an ONNX model from a file (memory-mapped while decoding), reading its external data files.
///
/// - `path`: UTF-8 path, not NULL, naming a regular file (a FIFO, device, socket or directory is FILE_READ, never
///   waited on). External data locations are resolved relative to the model's directory; an absolute location,
///   one containing `..`, or one that resolves (through symlinks) outside the model's directory is refused, as
///   ONNX Runtime 1.32 refuses it. A data file must be a regular file too (EXTERNAL_DATA otherwise).
/// - `out`: receives a new model on success (free with `ipuflow_model_free`); untouched on failure.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, FILE_NOT_FOUND, FILE_READ, MODEL_DECODE (not an ONNX protobuf),
/// EXTERNAL_DATA (missing, short or non-regular data file), PATH_REFUSED. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_load_file(
    path: *const c_char,
    out: *mut *mut ipuflow_model,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        load_path(&arg_path(path, "path")?, out)
    })
}

/// Same as `ipuflow_model_load_file` with a NUL-terminated UTF-16 path (`wchar_t*` on Windows).
///
/// Errors as `ipuflow_model_load_file`; INVALID_UTF8 if the path is not valid UTF-16. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_load_file_w(
    path: *const u16,
    out: *mut *mut ipuflow_model,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        load_path(&arg_wide_path(path, "path")?, out)
    })
}

/// Decodes an ONNX model from a byte buffer.
///
/// - `data`, `len`: the serialized ModelProto; the bytes are copied, the caller keeps ownership.
/// - `base_dir`: directory against which external data locations are resolved (and which they may not leave,
///   symlinks included: PATH_REFUSED), or NULL if the model has none (a model that references external data with
///   `base_dir` NULL gets EXTERNAL_DATA).
/// - `out`: receives a new model on success; untouched on failure.
///
/// Errors: NULL_ARGUMENT, MODEL_DECODE, EXTERNAL_DATA, PATH_REFUSED, INVALID_UTF8. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_load_bytes(
    data: *const u8,
    len: usize,
    base_dir: *const c_char,
    out: *mut *mut ipuflow_model,
) -> ipuflow_status {
    guard(|| load_bytes(data, len, opt_path(base_dir, "base_dir")?, out))
}

/// Same as `ipuflow_model_load_bytes` with `base_dir` a NUL-terminated UTF-16 path (`wchar_t*` on Windows), or
/// NULL.
///
/// Errors: as `ipuflow_model_load_bytes` (INVALID_UTF8: invalid UTF-16). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_load_bytes_w(
    data: *const u8,
    len: usize,
    base_dir: *const u16,
    out: *mut *mut ipuflow_model,
) -> ipuflow_status {
    guard(|| load_bytes(data, len, opt_wide_path(base_dir, "base_dir")?, out))
}

unsafe fn load_bytes(
    data: *const u8,
    len: usize,
    base: Option<PathBuf>,
    out: *mut *mut ipuflow_model,
) -> Result<()> {
    let out = out_ptr(out, "out")?;
    let bytes = arg_bytes(data, len, "data")?;
    let model = Model::from_bytes(bytes, base.as_deref())?;
    write_out(out, ipuflow_model::into_raw(ModelHandle::new(model)));
    Ok(())
}

/// Frees a model. `model` may be NULL (no-op). Pointers previously returned by the model's getters become invalid.
/// Not thread-safe with respect to other calls on the same model.
///
/// Never fails (returns nothing; a panic inside is contained).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_free(model: *mut ipuflow_model) {
    guard_value((), || ipuflow_model::free(model))
}

/// Saves the model to `path` atomically: it is written to a temporary file beside `path`, flushed, then renamed,
/// so an error or a crash never leaves a half-written file and never touches an existing file at `path` unless
/// the save succeeds (on Linux the temporary file has no name until then, so not even SIGKILL leaves one). An
/// existing `path` must be a regular file: a device, FIFO, socket or directory there is FILE_WRITE and is left as
/// it is. A model larger than protobuf's 2 GiB limit is saved with its weights in `<path>.data`.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, FILE_WRITE (the message names the path and the reason).
/// Thread-safe (the model is not modified).
///
/// Ownership: the model is only read; the arguments are not kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_save(
    model: *const ipuflow_model,
    path: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let m = ipuflow_model::try_ref(model, "model")?;
        m.model
            .save(&arg_path(path, "path")?, &SaveOptions::default())
    })
}

/// Same as `ipuflow_model_save` with a NUL-terminated UTF-16 path (`wchar_t*` on Windows).
///
/// Ownership: the model is only read; the arguments are not kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_save_w(
    model: *const ipuflow_model,
    path: *const u16,
) -> ipuflow_status {
    guard(|| {
        let m = ipuflow_model::try_ref(model, "model")?;
        m.model
            .save(&arg_wide_path(path, "path")?, &SaveOptions::default())
    })
}

/// Saves the model atomically with every initializer of at least `size_threshold` bytes stored in the external
/// data file `data_location`, a plain file name or relative path resolved against the directory of `path` (an
/// absolute location or one containing `..` gets PATH_REFUSED). Both files are written atomically.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT, PATH_REFUSED, FILE_WRITE. Thread-safe.
///
/// Ownership: the model is only read; the arguments are not kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_save_with_external_data(
    model: *const ipuflow_model,
    path: *const c_char,
    data_location: *const c_char,
    size_threshold: usize,
) -> ipuflow_status {
    guard(|| {
        let location = arg_str(data_location, "data_location")?.to_string();
        save_external(model, arg_path(path, "path")?, location, size_threshold)
    })
}

/// Same as `ipuflow_model_save_with_external_data` with `path` and `data_location` as NUL-terminated UTF-16
/// strings (`wchar_t*` on Windows); the location is stored in the model as UTF-8.
///
/// Errors: as `ipuflow_model_save_with_external_data` (INVALID_UTF8: invalid UTF-16). Thread-safe.
///
/// Ownership: the model is only read; the arguments are not kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_save_with_external_data_w(
    model: *const ipuflow_model,
    path: *const u16,
    data_location: *const u16,
    size_threshold: usize,
) -> ipuflow_status {
    guard(|| {
        let location = arg_wide_path(data_location, "data_location")?;
        let location = location.to_str().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidUtf8,
                "argument 'data_location' is not valid UTF-16",
            )
        })?;
        save_external(
            model,
            arg_wide_path(path, "path")?,
            location.to_string(),
            size_threshold,
        )
    })
}

unsafe fn save_external(
    model: *const ipuflow_model,
    path: PathBuf,
    location: String,
    size_threshold: usize,
) -> Result<()> {
    let m = ipuflow_model::try_ref(model, "model")?;
    let opts = SaveOptions {
        external_data: Some(ExternalDataOptions {
            location,
            size_threshold,
        }),
    };
    m.model.save(&path, &opts)
}

/// Serializes the model to protobuf bytes.
///
/// - `out_data`: receives a buffer owned by the caller, freed with `ipuflow_bytes_free(data, len)`.
/// - `out_len`: receives its length.
///
/// Both are written only on success. Errors: NULL_ARGUMENT, UNSUPPORTED (over protobuf's 2 GiB limit: save with
/// external data instead), OUT_OF_MEMORY. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_serialize(
    model: *const ipuflow_model,
    out_data: *mut *mut u8,
    out_len: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let m = ipuflow_model::try_ref(model, "model")?;
        let out_data = out_ptr(out_data, "out_data")?;
        let out_len = out_ptr(out_len, "out_len")?;
        let bytes = m.model.to_bytes()?.into_boxed_slice();
        let len = bytes.len();
        write_out(out_len, len);
        write_out(out_data, Box::into_raw(bytes) as *mut u8);
        Ok(())
    })
}

/// Frees a buffer returned by `ipuflow_model_serialize`; `len` must be the length returned with it.
/// `data` may be NULL (no-op). Thread-safe.
///
/// Never fails (returns nothing; a panic inside is contained).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_bytes_free(data: *mut u8, len: usize) {
    guard_value((), || {
        if !data.is_null() {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len)));
        }
    })
}

/// Reports the model's IR version and its own model version (0 when absent). Either output may be NULL if not
/// wanted. Errors: NULL_ARGUMENT (model). Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_get_versions(
    model: *const ipuflow_model,
    out_ir_version: *mut i64,
    out_model_version: *mut i64,
) -> ipuflow_status {
    guard(|| {
        let s = &ipuflow_model::try_ref(model, "model")?.views().summary;
        write_opt(out_ir_version, s.ir_version);
        write_opt(out_model_version, s.model_version);
        Ok(())
    })
}

/// Reports the producer name and version, the model domain and the main graph's name (each "" when absent).
/// Each output may be NULL if not wanted; strings are owned by the model (valid until `ipuflow_model_free`).
/// Errors: NULL_ARGUMENT (model). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_get_producer(
    model: *const ipuflow_model,
    out_producer_name: *mut *const c_char,
    out_producer_version: *mut *const c_char,
    out_domain: *mut *const c_char,
    out_graph_name: *mut *const c_char,
) -> ipuflow_status {
    guard(|| {
        let v = ipuflow_model::try_ref(model, "model")?.views();
        for (out, s) in [
            (out_producer_name, &v.producer_name),
            (out_producer_version, &v.producer_version),
            (out_domain, &v.domain),
            (out_graph_name, &v.graph_name),
        ] {
            write_opt(out, s.as_ptr());
        }
        Ok(())
    })
}

/// Reports counts: nodes of the main graph, initializers and their total bytes (inline and external), graph
/// inputs (initializers excluded) and outputs, opset imports and distinct op types. Each output may be NULL if not
/// wanted. Errors: NULL_ARGUMENT (model). Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_get_counts(
    model: *const ipuflow_model,
    out_node_count: *mut usize,
    out_initializer_count: *mut usize,
    out_initializer_bytes: *mut u64,
    out_input_count: *mut usize,
    out_output_count: *mut usize,
    out_opset_count: *mut usize,
    out_op_type_count: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let s = &ipuflow_model::try_ref(model, "model")?.views().summary;
        for (out, n) in [
            (out_node_count, s.node_count),
            (out_initializer_count, s.initializer_count),
            (out_input_count, s.inputs.len()),
            (out_output_count, s.outputs.len()),
            (out_opset_count, s.opsets.len()),
            (out_op_type_count, s.op_histogram.len()),
        ] {
            write_opt(out, n);
        }
        write_opt(out_initializer_bytes, s.initializer_bytes);
        Ok(())
    })
}

/// Reports opset import `index` (0-based, below the count from `ipuflow_model_get_counts`): its domain ("" for
/// the default ONNX domain; owned by the model) and version. Both outputs are required.
/// Errors: NULL_ARGUMENT, OUT_OF_RANGE. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_get_opset(
    model: *const ipuflow_model,
    index: usize,
    out_domain: *mut *const c_char,
    out_version: *mut i64,
) -> ipuflow_status {
    guard(|| {
        let v = ipuflow_model::try_ref(model, "model")?.views();
        let out_domain = out_ptr(out_domain, "out_domain")?;
        let out_version = out_ptr(out_version, "out_version")?;
        let i = check_index(index, v.opset_domains.len(), "opset", "the model")?;
        write_out(out_domain, v.opset_domains[i].as_ptr());
        write_out(out_version, v.summary.opsets[i].1);
        Ok(())
    })
}

/// Reports entry `index` of the op-type histogram, sorted by count (descending) then name: the op type (prefixed
/// with "domain::" outside the default ONNX domain; owned by the model) and how many nodes of the main graph use it.
/// Errors: NULL_ARGUMENT, OUT_OF_RANGE. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_get_op_type(
    model: *const ipuflow_model,
    index: usize,
    out_op_type: *mut *const c_char,
    out_count: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let v = ipuflow_model::try_ref(model, "model")?.views();
        let out_op_type = out_ptr(out_op_type, "out_op_type")?;
        let out_count = out_ptr(out_count, "out_count")?;
        let i = check_index(index, v.op_types.len(), "op type", "the model")?;
        write_out(out_op_type, v.op_types[i].as_ptr());
        write_out(out_count, v.summary.op_histogram[i].1);
        Ok(())
    })
}

fn value_info(
    views: &[ValueView],
    index: usize,
    what: &str,
    out: *mut ipuflow_value_info,
) -> Result<()> {
    let out = out_ptr(out, "out")?;
    let i = check_index(index, views.len(), what, "the model")?;
    unsafe { write_out(out, views[i].to_c()) };
    Ok(())
}

/// Describes graph input `index` (initializers excluded): name, kind, element type and shape with symbolic
/// dimensions. The pointers written into `*out` are owned by the model. Errors: NULL_ARGUMENT, OUT_OF_RANGE.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_get_input(
    model: *const ipuflow_model,
    index: usize,
    out: *mut ipuflow_value_info,
) -> ipuflow_status {
    guard(|| {
        value_info(
            &ipuflow_model::try_ref(model, "model")?.views().inputs,
            index,
            "input",
            out,
        )
    })
}

/// Describes graph output `index`, like `ipuflow_model_get_input`. Errors: NULL_ARGUMENT, OUT_OF_RANGE.
/// Thread-safe.
///
/// Ownership: the pointers in `*out` are owned by the model, valid until `ipuflow_model_free`.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_get_output(
    model: *const ipuflow_model,
    index: usize,
    out: *mut ipuflow_value_info,
) -> ipuflow_status {
    guard(|| {
        value_info(
            &ipuflow_model::try_ref(model, "model")?.views().outputs,
            index,
            "output",
            out,
        )
    })
}

/// Writes the whole inspection summary (what `ipuflow inspect --json` prints) as a JSON object.
///
/// `out_json` receives a NUL-terminated UTF-8 string owned by the caller, freed with `ipuflow_string_free`; it is
/// written only on success. Errors: NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_to_json(
    model: *const ipuflow_model,
    out_json: *mut *mut c_char,
) -> ipuflow_status {
    guard(|| {
        let v = ipuflow_model::try_ref(model, "model")?.views();
        let out_json = out_ptr(out_json, "out_json")?;
        write_out(out_json, string_to_c(v.summary.to_json()));
        Ok(())
    })
}

/// Alias of `ipuflow_model_to_json` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_model_to_json`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_summary_json(
    model: *const ipuflow_model,
    out_json: *mut *mut c_char,
) -> ipuflow_status {
    ipuflow_model_to_json(model, out_json)
}

/// Creates a copy of `model` whose graph input `input_name` has the `rank` sizes at `dims` (each >= 1), for the
/// pre-flight (`ipuflow_preflight_run`) or anything else that takes a model; `model` itself is not changed (models
/// are immutable). Symbolic dimensions of that input fixed here are fixed under the same name in the rest of the
/// model's declarations. Chain calls to fix several inputs.
///
/// - `dims` may be NULL only when `rank` is 0; it is copied.
/// - `out` receives the new model (free with `ipuflow_model_free`); untouched on failure.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty name,
/// a size below 1, no such input (the message lists the inputs), another rank than the input's, a size
/// contradicting a fixed one), IPUFLOW_STATUS_LIMIT_EXCEEDED (rank over 64). Thread-safe (`model` is only read).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_model_copy_with_input_shape(
    model: *const ipuflow_model,
    input_name: *const c_char,
    dims: *const i64,
    rank: usize,
    out: *mut *mut ipuflow_model,
) -> ipuflow_status {
    guard(|| {
        let m = ipuflow_model::try_ref(model, "model")?;
        let shape = input_shape_arg(input_name, dims, rank)?;
        let out = out_ptr(out, "out")?;
        let mut proto = m.model.proto().clone();
        crate::onnx::apply_input_shapes(&mut proto, std::slice::from_ref(&shape))?;
        // External data was read in when `model` was loaded: the copy is self-contained.
        let copy = crate::onnx::Model::from_proto(proto);
        write_out(out, ipuflow_model::into_raw(ModelHandle::new(copy)));
        Ok(())
    })
}
