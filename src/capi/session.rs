//! `ipuflow_session`: a model loaded into ONNX Runtime, run over caller buffers, with where its nodes run.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;

use super::env::ipuflow_env;
use super::model::ipuflow_model;
// The Rust paths of 0.1 (`capi::session::ipuflow_run_options_*`) keep working after the split into one file per
// handle type.
pub use super::run_options::*;
use super::session_options::ipuflow_session_options;
use super::tensor::{ipuflow_tensor, ipuflow_tensor_view, TensorHandle};
use super::{
    arg_array, arg_bytes, arg_path, arg_wide_path, box_handle, c_string, check_index, enum_arg,
    guard, guard_value, ipuflow_status, null_arg, opt_array, out_ptr, view_bytes, view_shape,
    write_opt, write_out, BoxHandle,
};
use crate::error::{Error, ErrorKind, Result};
use crate::ipu::report::{CPU_EP, VITISAI_EP};
use crate::runtime::{
    DeviceUsed, ElementType, Environment, Placement, Session, SessionOptions, TensorInfo,
    TensorMut, TensorRef,
};

/// A model loaded into ONNX Runtime, ready to run.
///
/// Created by `ipuflow_session_create` (a file), `_w`, `ipuflow_session_create_from_memory` or
/// `ipuflow_session_create_from_model`; freed with `ipuflow_session_free`. Thread-safe: `ipuflow_session_run` and
/// the getters may be called on the same session from many threads at once. Strings and arrays the getters return
/// are owned by the session and valid until it is freed.
pub struct ipuflow_session {
    _private: [u8; 0],
}

/// Metadata of one model input or output; its pointers are owned by the session.
///
/// - `name`: UTF-8, NUL-terminated.
/// - `element_type`: an `IPUFLOW_ELEMENT_TYPE_*` value (other ONNX numbers may appear for types ipuflow cannot
///   pass, e.g. 23 = float4e2m1, 14 = complex64); 0 when the value is not a tensor (sequence, map, optional).
/// - `shape`, `rank`: the model's dimensions; -1 marks a dimension that is not fixed. `shape` is NULL when rank is 0.
/// - `dim_names`: `rank` strings: the symbolic name of each dimension ("batch", "N") or "" when fixed or unnamed;
///   NULL when rank is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ipuflow_tensor_info {
    pub name: *const c_char,
    pub element_type: i32,
    pub shape: *const i64,
    pub rank: usize,
    pub dim_names: *const *const c_char,
}

struct CInfo {
    name: CString,
    dim_names: Vec<CString>,
    dim_name_ptrs: Vec<*const c_char>,
}

/// The Rust side of `ipuflow_session`: the session plus C views of its metadata.
pub(crate) struct SessionHandle {
    pub(crate) session: Session,
    inputs: Vec<CInfo>,
    outputs: Vec<CInfo>,
    placement: CPlacement,
}

/// C views of a session's execution info: fallback reason, cache key, and the placement (EP name and, per node,
/// name / domain / op type).
struct CPlacement {
    fallback_reason: CString,
    cache_key: CString,
    /// ipuflow's one definition (maximal connected groups on one device), as the placement JSON and line count.
    subgraphs: Vec<CSubgraph>,
    /// ONNX Runtime's own partition: EP name and node count per entry (one per CPU node with ONNX Runtime 1.32).
    ort_subgraphs: Vec<(CString, usize)>,
}

/// The placement's subgraphs by the one definition: the report's groups (`subgraphStat`), each with its nodes in
/// ONNX Runtime's order (the report lists nodes in that order, with their group).
fn one_definition_groups(a: &crate::ipu::report::EpAssignment) -> Vec<CSubgraph> {
    let report = crate::ipu::report::EpReport::from_assignment(a);
    let mut groups: Vec<CSubgraph> = report
        .subgraph_stat
        .iter()
        .map(|g| (c_string(&g.ep), Vec::with_capacity(g.node_num)))
        .collect();
    let nodes = a.subgraphs.iter().flat_map(|sg| &sg.nodes);
    for (n, stat) in nodes.zip(&report.node_stat) {
        if let Some(g) = groups.get_mut(stat.subgraph) {
            g.1.push([c_string(&n.name), c_string(&n.domain), c_string(&n.op_type)]);
        }
    }
    groups
}

fn ort_partition(a: &crate::ipu::report::EpAssignment) -> Vec<(CString, usize)> {
    a.subgraphs
        .iter()
        .map(|sg| (c_string(&sg.ep_name), sg.nodes.len()))
        .collect()
}

/// A subgraph's EP name and its nodes' [name, domain, op type].
type CSubgraph = (CString, Vec<[CString; 3]>);

impl CPlacement {
    fn new(e: &crate::runtime::Execution) -> CPlacement {
        let (subgraphs, ort_subgraphs) = e
            .placement
            .assignment()
            .map(|a| (one_definition_groups(a), ort_partition(a)))
            .unwrap_or_default();
        CPlacement {
            fallback_reason: c_string(&e.fallback_reason),
            cache_key: c_string(e.cache_key.as_deref().unwrap_or("")),
            subgraphs,
            ort_subgraphs,
        }
    }
}

// SAFETY: the raw pointers point into the handle's own immutable CStrings.
unsafe impl Send for SessionHandle {}
unsafe impl Sync for SessionHandle {}

impl SessionHandle {
    fn new(session: Session) -> SessionHandle {
        let conv = |infos: &[TensorInfo]| -> Vec<CInfo> {
            infos
                .iter()
                .map(|i| {
                    let dim_names: Vec<CString> = i.dim_names.iter().map(|n| c_string(n)).collect();
                    let dim_name_ptrs = dim_names.iter().map(|c| c.as_ptr()).collect();
                    CInfo {
                        name: c_string(&i.name),
                        dim_names,
                        dim_name_ptrs,
                    }
                })
                .collect()
        };
        let inputs = conv(session.inputs());
        let outputs = conv(session.outputs());
        let placement = CPlacement::new(session.execution());
        SessionHandle {
            session,
            inputs,
            outputs,
            placement,
        }
    }

    fn info(&self, is_input: bool, index: usize) -> Result<ipuflow_tensor_info> {
        let (infos, cinfos, what) = if is_input {
            (self.session.inputs(), &self.inputs, "input")
        } else {
            (self.session.outputs(), &self.outputs, "output")
        };
        let k = check_index(index, infos.len().min(cinfos.len()), what, "the model")?;
        let (i, c) = (&infos[k], &cinfos[k]);
        debug_assert_eq!(c.dim_names.len(), i.shape.len());
        Ok(ipuflow_tensor_info {
            name: c.name.as_ptr(),
            element_type: if i.kind == crate::runtime::ValueKind::Tensor {
                i.element_type_code
            } else {
                0
            },
            shape: if i.shape.is_empty() {
                std::ptr::null()
            } else {
                i.shape.as_ptr()
            },
            rank: i.shape.len(),
            dim_names: if c.dim_name_ptrs.is_empty() {
                std::ptr::null()
            } else {
                c.dim_name_ptrs.as_ptr()
            },
        })
    }
}

box_handle!(ipuflow_session => SessionHandle);

/// The environment and options of a session creation: NULL environment = the live one or a default one.
unsafe fn env_and_options(
    env: *const ipuflow_env,
    options: *const ipuflow_session_options,
) -> Result<(Environment, SessionOptions)> {
    let env = match ipuflow_env::try_opt_ref(env) {
        Some(e) => e.clone(),
        None => Environment::current_or_default()?,
    };
    let options = ipuflow_session_options::try_opt_ref(options)
        .cloned()
        .unwrap_or_default();
    Ok((env, options))
}

unsafe fn create_from_path(
    env: *const ipuflow_env,
    path: &Path,
    options: *const ipuflow_session_options,
    out: *mut *mut ipuflow_session,
) -> Result<()> {
    create_in(env, options, out, |env, options| {
        Session::from_file_in(env, path, options)
    })
}

/// The body of a getter: checks `out`, then `session`, and writes what `value` gives (only on success).
unsafe fn get<T>(
    session: *const ipuflow_session,
    out: *mut T,
    value: impl FnOnce(&SessionHandle) -> Result<T>,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let v = value(ipuflow_session::try_ref(session, "session")?)?;
        write_out(out, v);
        Ok(())
    })
}

/// Creates a session with `make` in the call's environment and options, and hands it to `out` (checked by the
/// caller).
unsafe fn create_in(
    env: *const ipuflow_env,
    options: *const ipuflow_session_options,
    out: *mut *mut ipuflow_session,
    make: impl FnOnce(&Environment, &SessionOptions) -> Result<Session>,
) -> Result<()> {
    let (env, options) = env_and_options(env, options)?;
    let s = make(&env, &options)?;
    write_out(out, ipuflow_session::into_raw(SessionHandle::new(s)));
    Ok(())
}

/// Creates a session from an ONNX model file (UTF-8 path). External data files are found relative to the model
/// and read by ONNX Runtime itself, so this is the way for models over 2 GiB (nothing is re-serialized).
///
/// - `env`: the environment, or NULL to share the live one (or create a default one).
/// - `model_path`: the .onnx file; a regular file (a FIFO, device, socket or directory is FILE_READ, never waited
///   on).
/// - `options`: session options (read, not kept), or NULL for ONNX Runtime's defaults.
/// - `out`: receives the new session on success (free with `ipuflow_session_free`); untouched on failure.
///
/// Loads ONNX Runtime automatically (as `ipuflow_runtime_load(NULL)`) if it is not loaded.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`model_path`, `out`), IPUFLOW_STATUS_INVALID_UTF8,
/// IPUFLOW_STATUS_INVALID_ARGUMENT (empty path; thread counts with a global-thread-pool environment; NUL in a
/// config entry), IPUFLOW_STATUS_FILE_NOT_FOUND, IPUFLOW_STATUS_FILE_READ (not a regular file),
/// IPUFLOW_STATUS_RUNTIME_NOT_FOUND / _INVALID / _TOO_OLD (automatic load), IPUFLOW_STATUS_RUNTIME (ONNX Runtime
/// refused the model or an option; the message starts with ORT's error code name; an execution provider appended
/// with `ipuflow_session_options_append_provider` that this ONNX Runtime does not have),
/// IPUFLOW_STATUS_DEVICE_UNAVAILABLE (device NPU or AUTO under the STRICT fallback policy: the VitisAI EP could not
/// be added, no NPU was detected (AUTO), or it took fewer nodes than the minimum; the message carries ONNX Runtime's
/// own reason). Under the PREFER policy the session is created on the CPU instead: check
/// `ipuflow_session_get_device` and `ipuflow_session_get_fallback_reason`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_create(
    env: *const ipuflow_env,
    model_path: *const c_char,
    options: *const ipuflow_session_options,
    out: *mut *mut ipuflow_session,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        create_from_path(env, &arg_path(model_path, "model_path")?, options, out)
    })
}

/// Same as `ipuflow_session_create` with a NUL-terminated UTF-16 path (`wchar_t*` on Windows).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_create_w(
    env: *const ipuflow_env,
    model_path: *const u16,
    options: *const ipuflow_session_options,
    out: *mut *mut ipuflow_session,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        create_from_path(env, &arg_wide_path(model_path, "model_path")?, options, out)
    })
}

/// Creates a session from a serialized ONNX model in memory (the bytes are read during the call, not kept).
/// A model with external data cannot be created this way (load it with `ipuflow_model_load_file` and use
/// `ipuflow_session_create_from_model`).
///
/// Errors: as `ipuflow_session_create`, plus IPUFLOW_STATUS_MODEL_DECODE for `len` 0 and IPUFLOW_STATUS_NULL_ARGUMENT
/// for `data` NULL with `len` > 0; undecodable bytes are IPUFLOW_STATUS_RUNTIME (ORT_INVALID_PROTOBUF). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_create_from_memory(
    env: *const ipuflow_env,
    data: *const c_void,
    len: usize,
    options: *const ipuflow_session_options,
    out: *mut *mut ipuflow_session,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let bytes = arg_bytes(data.cast(), len, "data")?;
        create_in(env, options, out, |env, options| {
            Session::from_bytes_in(env, bytes, options)
        })
    })
}

/// Creates a session from a model held by ipuflow (e.g. loaded, edited or quantized). The model is serialized for
/// ONNX Runtime during the call and not referenced afterwards. A model over protobuf's 2 GiB limit cannot be passed
/// as bytes: it is saved with external data in a private folder of the system's temporary directory (`TMPDIR`),
/// which needs that much free space there, and the session is created from it; the folder is removed when the
/// session is freed. For a model already on disk, `ipuflow_session_create` avoids that copy.
///
/// Errors: as `ipuflow_session_create` (IPUFLOW_STATUS_NULL_ARGUMENT for `model`), plus IPUFLOW_STATUS_FILE_WRITE
/// when a model over 2 GiB cannot be written to the temporary directory. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_create_from_model(
    env: *const ipuflow_env,
    model: *const ipuflow_model,
    options: *const ipuflow_session_options,
    out: *mut *mut ipuflow_session,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let m = ipuflow_model::try_ref(model, "model")?;
        create_in(env, options, out, |env, options| {
            Session::from_model_in(env, &m.model, options)
        })
    })
}

/// Frees a session. `session` may be NULL (no-op). Must not be called while another thread uses the session.
/// Tensors returned by its runs stay valid.
///
/// Never fails (returns nothing; a panic inside is contained).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_free(session: *mut ipuflow_session) {
    guard_value((), || ipuflow_session::free(session))
}

/// Gives the number of model inputs a run must feed. Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_get_input_count(
    session: *const ipuflow_session,
    out: *mut usize,
) -> ipuflow_status {
    get(session, out, |s| Ok(s.session.inputs().len()))
}

/// Alias of `ipuflow_session_get_input_count` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_session_get_input_count`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_input_count(
    session: *const ipuflow_session,
    out: *mut usize,
) -> ipuflow_status {
    ipuflow_session_get_input_count(session, out)
}

/// Gives the number of model outputs. Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_get_output_count(
    session: *const ipuflow_session,
    out: *mut usize,
) -> ipuflow_status {
    get(session, out, |s| Ok(s.session.outputs().len()))
}

/// Alias of `ipuflow_session_get_output_count` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_session_get_output_count`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_output_count(
    session: *const ipuflow_session,
    out: *mut usize,
) -> ipuflow_status {
    ipuflow_session_get_output_count(session, out)
}

/// Describes input `index` (0-based, model order). The pointers in `*out` are owned by the session.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_OUT_OF_RANGE. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_get_input_info(
    session: *const ipuflow_session,
    index: usize,
    out: *mut ipuflow_tensor_info,
) -> ipuflow_status {
    get(session, out, |s| s.info(true, index))
}

/// Alias of `ipuflow_session_get_input_info` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_session_get_input_info`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_input_info(
    session: *const ipuflow_session,
    index: usize,
    out: *mut ipuflow_tensor_info,
) -> ipuflow_status {
    ipuflow_session_get_input_info(session, index, out)
}

/// Describes output `index` (0-based, model order). The pointers in `*out` are owned by the session.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_OUT_OF_RANGE. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_get_output_info(
    session: *const ipuflow_session,
    index: usize,
    out: *mut ipuflow_tensor_info,
) -> ipuflow_status {
    get(session, out, |s| s.info(false, index))
}

/// Alias of `ipuflow_session_get_output_info` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_session_get_output_info`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_output_info(
    session: *const ipuflow_session,
    index: usize,
    out: *mut ipuflow_tensor_info,
) -> ipuflow_status {
    ipuflow_session_get_output_info(session, index, out)
}

/// A view's fields as a core tensor (element type validated, pointers checked). `name` is e.g. "inputs[1]".
///
/// `model` is the model's description of the tensor and `what` "input" or "output": a rank that differs from the
/// model's is reported before `shape` is read, so a `rank` larger than the caller's array is never read past.
unsafe fn view_parts<'a>(
    v: &ipuflow_tensor_view,
    name: &dyn Fn() -> String,
    model: &crate::runtime::TensorInfo,
    what: &str,
) -> Result<(crate::runtime::ElementType, &'a [i64])> {
    // The argument name is formatted only on error: this runs on every call.
    let et = match crate::runtime::ElementType::from_onnx(v.element_type) {
        Some(t) => t,
        None => enum_arg::<crate::runtime::ElementType>(
            v.element_type,
            &format!("{}.element_type", name()),
            "an IPUFLOW_ELEMENT_TYPE_* value",
        )?,
    };
    if model.kind == crate::runtime::ValueKind::Tensor && v.rank != model.shape.len() {
        return Err(Error::new(
            ErrorKind::TensorMismatch,
            format!(
                "{what} '{}' ({}): rank is {}, the model expects rank {} (shape {})",
                model.name,
                name(),
                v.rank,
                model.shape.len(),
                model.model_shape()
            ),
        ));
    }
    let shape = view_shape(v.shape, v.rank, name)?;
    view_bytes(v.data, v.byte_size, name)?;
    Ok((et, shape))
}

/// The strings of a STRING input view: its `data` is `byte_size / sizeof(char*)` pointers to NUL-terminated UTF-8
/// strings. `name` is e.g. "inputs[1]"; a NULL entry is reported as "inputs[1].data[3]".
unsafe fn view_strings<'a>(
    v: &ipuflow_tensor_view,
    name: &dyn Fn() -> String,
) -> Result<Vec<&'a str>> {
    const PTR: usize = std::mem::size_of::<*const c_char>();
    if !v.byte_size.is_multiple_of(PTR) {
        return Err(Error::new(
            ErrorKind::TensorMismatch,
            format!(
                "{}: byte_size {} is not a multiple of sizeof(char*) ({PTR}): a STRING view's data is an array of const char*",
                name(),
                v.byte_size
            ),
        ));
    }
    if v.byte_size == 0 {
        return Ok(Vec::new());
    }
    if !(v.data as usize).is_multiple_of(std::mem::align_of::<*const c_char>()) {
        return Err(Error::invalid_argument(format!(
            "{}: the data address is not aligned to sizeof(char*) (a STRING view)",
            name()
        )));
    }
    let ptrs = std::slice::from_raw_parts(v.data as *const *const c_char, v.byte_size / PTR);
    // The pointer array as &CStr slices, then checked UTF-8 (ONNX strings are UTF-8).
    ptrs.iter()
        .enumerate()
        .map(|(j, &p)| {
            if p.is_null() {
                return Err(null_arg(&format!("{}.data[{j}]", name())));
            }
            CStr::from_ptr(p).to_str().map_err(|e| {
                Error::new(
                    ErrorKind::InvalidUtf8,
                    format!("{}.data[{j}] is not valid UTF-8: {e}", name()),
                )
            })
        })
        .collect()
}

/// Runs the model once.
///
/// - `session`: the session (shared: any number of threads may run it at once).
/// - `run_options`: per-run settings and cancel token, or NULL.
/// - `input_names`, `inputs`, `n_inputs`: every model input exactly once, by name (UTF-8), in any order, as views of
///   caller memory that ONNX Runtime reads in place (no copy; STRING inputs are copied, see
///   `IPUFLOW_ELEMENT_TYPE_STRING`). Both arrays may be NULL when `n_inputs` is 0.
/// - `output_names`, `n_outputs`: the outputs wanted (at least one), by name, each at most once.
/// - `preallocated_outputs`: NULL, or `n_outputs` views; an entry with non-NULL `data` is a caller buffer that
///   ONNX Runtime writes output `i` into (its element type, rank and fixed dimensions must match the model and its
///   shape must be the output's actual shape); an entry with NULL `data` asks for an allocated output. STRING
///   outputs are always allocated: a STRING entry with non-NULL `data` is IPUFLOW_STATUS_INVALID_ARGUMENT.
/// - `out_tensors`: NULL, or `n_outputs` slots. Each output not written into a caller buffer is returned here as a
///   new `ipuflow_tensor` owned by the caller (free with `ipuflow_tensor_free`); slots of caller-buffer outputs are
///   set to NULL. Required unless every output has a caller buffer. Written only on success.
///
/// Every argument is checked before ONNX Runtime is called; checks report the tensor by name and both values.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (a required array, name, shape or data pointer: e.g. `input_names[1]`; a
/// NULL string in a STRING input: `inputs[1].data[3]`), IPUFLOW_STATUS_INVALID_ENUM (a view's element type),
/// IPUFLOW_STATUS_INVALID_ARGUMENT (no outputs; an output twice; misaligned data; a preallocated STRING output),
/// IPUFLOW_STATUS_INVALID_UTF8 (a string of a STRING input),
/// IPUFLOW_STATUS_TENSOR_MISMATCH (unknown input/output name, listing the valid ones; an input given twice or
/// missing; wrong element type, rank or fixed dimension, a rank that differs from the model's being reported
/// before `shape` is read; negative dimension; byte size != product(shape) *
/// element size, packed for int4/int2, product(shape) * sizeof(char*) for STRING), IPUFLOW_STATUS_UNSUPPORTED
/// (non-tensor values: sequences, maps, optionals; element types without an IPUFLOW_ELEMENT_TYPE_*), IPUFLOW_STATUS_CANCELLED (the run
/// options were cancelled before or during the run), IPUFLOW_STATUS_RUNTIME (ONNX Runtime failed; e.g. a caller
/// output buffer whose shape differs from the computed one). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_run(
    session: *const ipuflow_session,
    run_options: *const ipuflow_run_options,
    input_names: *const *const c_char,
    inputs: *const ipuflow_tensor_view,
    n_inputs: usize,
    output_names: *const *const c_char,
    preallocated_outputs: *const ipuflow_tensor_view,
    out_tensors: *mut *mut ipuflow_tensor,
    n_outputs: usize,
) -> ipuflow_status {
    guard(|| {
        let h = ipuflow_session::try_ref(session, "session")?;
        let s = &h.session;
        let ro = ipuflow_run_options::try_opt_ref(run_options);
        let input_names = arg_array(input_names, n_inputs, "input_names")?;
        let inputs = arg_array(inputs, n_inputs, "inputs")?;
        if n_outputs == 0 {
            return Err(no_outputs_requested(s));
        }
        let output_names = arg_array(output_names, n_outputs, "output_names")?;
        let strings = string_inputs(s, input_names, inputs)?;
        let ins = input_refs(s, input_names, inputs, &strings)?;
        let prealloc = opt_array(preallocated_outputs, n_outputs);
        let (mut outs, need_slots) = output_slots(s, output_names, prealloc)?;
        if need_slots && out_tensors.is_null() {
            return Err(null_arg("out_tensors"));
        }
        let results = s.run_indexed(ro, &ins, &mut outs)?;
        if !out_tensors.is_null() {
            write_results(results, out_tensors, n_outputs);
        }
        Ok(())
    })
}

/// The error for `n_outputs == 0`: it lists the model's outputs.
fn no_outputs_requested(s: &Session) -> Error {
    let names: Vec<String> = s
        .outputs()
        .iter()
        .map(|o| format!("'{}'", o.name))
        .collect();
    Error::invalid_argument(format!(
        "n_outputs is 0: request at least one output; the model's outputs are: {}",
        names.join(", ")
    ))
}

/// Whether input view `v` named `np` is a STRING view of a STRING model input (a NULL name is not: it is
/// reported later, in order).
unsafe fn is_string_input(s: &Session, v: &ipuflow_tensor_view, np: *const c_char) -> Result<bool> {
    if v.element_type != super::tensor::IPUFLOW_ELEMENT_TYPE_STRING || np.is_null() {
        return Ok(false);
    }
    let idx = s.input_index_bytes(CStr::from_ptr(np).to_bytes())?;
    Ok(s.inputs()[idx].element_type() == Some(ElementType::String))
}

/// STRING views of string inputs, converted first (the TensorRefs of `input_refs` borrow them; no allocation when
/// a run has none). The view of a non-string input is never read: its type mismatch is reported by the run.
unsafe fn string_inputs<'a>(
    s: &Session,
    input_names: &[*const c_char],
    inputs: &[ipuflow_tensor_view],
) -> Result<Vec<Vec<&'a str>>> {
    let mut strings: Vec<Vec<&str>> = Vec::new();
    for (i, v) in inputs.iter().enumerate() {
        if is_string_input(s, v, input_names[i])? {
            view_bytes(v.data, v.byte_size, &|| format!("inputs[{i}]"))?;
            strings.push(view_strings(v, &|| format!("inputs[{i}]"))?);
        }
    }
    Ok(strings)
}

/// The checked input views as (model input index, tensor), string inputs taken in order from `strings`.
unsafe fn input_refs<'a>(
    s: &Session,
    input_names: &[*const c_char],
    inputs: &'a [ipuflow_tensor_view],
    strings: &'a [Vec<&'a str>],
) -> Result<Vec<(usize, TensorRef<'a>)>> {
    let mut strings = strings.iter();
    let mut ins: Vec<(usize, TensorRef<'_>)> = Vec::with_capacity(inputs.len());
    for (i, (&np, v)) in input_names.iter().zip(inputs).enumerate() {
        if np.is_null() {
            return Err(null_arg(&format!("input_names[{i}]")));
        }
        let idx = s.input_index_bytes(CStr::from_ptr(np).to_bytes())?;
        let (et, shape) = view_parts(v, &|| format!("inputs[{i}]"), &s.inputs()[idx], "input")?;
        let t = if et != ElementType::String {
            TensorRef::from_bytes(
                et,
                shape,
                view_bytes(v.data, v.byte_size, &|| String::new())?,
            )
        } else if is_string_input(s, v, np)? {
            TensorRef::from_strs(
                shape,
                strings
                    .next()
                    .ok_or_else(|| Error::internal("string inputs out of step"))?,
            )
        } else {
            TensorRef::from_strs(shape, &[])
        };
        ins.push((idx, t));
    }
    Ok(ins)
}

/// A requested output: its index among the model's outputs and the caller's buffer (`None`: allocate).
type OutputSlot<'a> = (usize, Option<TensorMut<'a>>);

/// The requested outputs as (model output index, caller buffer or None to allocate), and whether any is
/// allocated (then `out_tensors` is required).
unsafe fn output_slots<'a>(
    s: &Session,
    output_names: &[*const c_char],
    prealloc: Option<&'a [ipuflow_tensor_view]>,
) -> Result<(Vec<OutputSlot<'a>>, bool)> {
    let mut outs: Vec<OutputSlot<'_>> = Vec::with_capacity(output_names.len());
    let mut need_slots = false;
    for (i, &np) in output_names.iter().enumerate() {
        if np.is_null() {
            return Err(null_arg(&format!("output_names[{i}]")));
        }
        let idx = s.output_index_bytes(CStr::from_ptr(np).to_bytes())?;
        // An entry with NULL data asks for an allocated output.
        let buf = match prealloc.map(|views| &views[i]) {
            Some(v) if !v.data.is_null() => {
                let (et, shape) = view_parts(
                    v,
                    &|| format!("preallocated_outputs[{i}]"),
                    &s.outputs()[idx],
                    "output",
                )?;
                let data = std::slice::from_raw_parts_mut(v.data as *mut u8, v.byte_size);
                Some(TensorMut::from_bytes(et, shape, data))
            }
            _ => None,
        };
        need_slots |= buf.is_none();
        outs.push((idx, buf));
    }
    Ok((outs, need_slots))
}

/// Writes one slot per requested output: a new tensor handle, or NULL for an output written into a caller buffer
/// (`results` is empty when every output went into one).
unsafe fn write_results(
    results: Vec<Option<crate::runtime::Tensor>>,
    out_tensors: *mut *mut ipuflow_tensor,
    n_outputs: usize,
) {
    let mut results = results.into_iter();
    for i in 0..n_outputs {
        let p = match results.next().flatten() {
            Some(t) => ipuflow_tensor::into_raw(TensorHandle::new(t)),
            None => std::ptr::null_mut(),
        };
        write_out(out_tensors.add(i), p);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Where the session runs

/// Gives the device the session runs on: `IPUFLOW_DEVICE_NPU` when ONNX Runtime assigned nodes to the VitisAI EP
/// (at least one, and at least the minimum fraction set by `ipuflow_session_options_set_fallback`), else
/// `IPUFLOW_DEVICE_CPU` (also after a PREFER fallback: see `ipuflow_session_get_fallback_reason`).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_get_device(
    session: *const ipuflow_session,
    out_device_used: *mut i32,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out_device_used, "out_device_used")?;
        let h = ipuflow_session::try_ref(session, "session")?;
        let d = match h.session.device_used() {
            DeviceUsed::Cpu => super::npu::IPUFLOW_DEVICE_CPU,
            DeviceUsed::Npu => super::npu::IPUFLOW_DEVICE_NPU,
        };
        write_out(out, d);
        Ok(())
    })
}

/// Gives why the NPU is not used although it was requested (NPU or AUTO under the PREFER policy), with ONNX
/// Runtime's own reason text, e.g. "the VitisAI execution provider could not be added: ...; the session runs on
/// the CPU (0 of 63 nodes (0.0%) on the NPU)". "" when the NPU is used or was not requested.
/// `*out` is owned by the session (valid until `ipuflow_session_free`).
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_get_fallback_reason(
    session: *const ipuflow_session,
    out: *mut *const c_char,
) -> ipuflow_status {
    get(session, out, |h| Ok(h.placement.fallback_reason.as_ptr()))
}

/// Gives the VitisAI compile-cache key computed for the session (the host's `cache_key` option, or the default
/// derived from the model bytes, the ONNX Runtime version and the provider options). It is kept after a PREFER
/// fallback, so the host can clear that entry with `ipuflow_npu_cache_clear`; "" when the NPU was not attempted
/// (device CPU, or AUTO without a detected NPU). `*out` is owned by the session. Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_get_cache_key(
    session: *const ipuflow_session,
    out: *mut *const c_char,
) -> ipuflow_status {
    get(session, out, |h| Ok(h.placement.cache_key.as_ptr()))
}

/// Where a session's nodes run, counted from ONNX Runtime's own assignment info: the graph as ONNX Runtime
/// partitioned it among the execution providers (after its basic optimizations, before the EP-specific fusions of
/// optimization levels 2 and 3, which may merge nodes further).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ipuflow_placement_summary {
    /// 1 when ONNX Runtime reported the placement; 0 when it is unavailable (ONNX Runtime older than 1.24, or the
    /// host set `session.record_ep_graph_assignment_info` to 0): every count is then 0, never guessed.
    pub available: i32,
    /// The device the session runs on (`IPUFLOW_DEVICE_*`), as `ipuflow_session_get_device`.
    pub device_used: i32,
    pub total_nodes: usize,
    /// Nodes assigned to the VitisAI EP.
    pub npu_nodes: usize,
    /// Nodes assigned to ONNX Runtime's CPU EP.
    pub cpu_nodes: usize,
    /// Nodes assigned to any other execution provider.
    pub other_nodes: usize,
    /// Subgraphs by ipuflow's one definition (maximal connected groups of nodes on one device), as
    /// `ipuflow_session_placement_get_subgraph_count` and the placement JSON (before 1.0: ONNX Runtime's own
    /// partition, now `ipuflow_session_placement_get_ort_subgraph_count`).
    pub subgraphs: usize,
    /// Of those, the groups on the NPU (the VitisAI EP).
    pub npu_subgraphs: usize,
    /// npu_nodes / total_nodes in percent (0 when there are no nodes).
    pub npu_percent: f64,
}

/// Summarizes where the session's nodes run, like the VitisAI EP's "No. of Operators : NPU n CPU m" line.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_get_placement_summary(
    session: *const ipuflow_session,
    out: *mut ipuflow_placement_summary,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let h = ipuflow_session::try_ref(session, "session")?;
        let e = h.session.execution();
        let mut sum = ipuflow_placement_summary {
            available: 0,
            device_used: match e.device_used {
                DeviceUsed::Cpu => super::npu::IPUFLOW_DEVICE_CPU,
                DeviceUsed::Npu => super::npu::IPUFLOW_DEVICE_NPU,
            },
            total_nodes: 0,
            npu_nodes: 0,
            cpu_nodes: 0,
            other_nodes: 0,
            subgraphs: 0,
            npu_subgraphs: 0,
            npu_percent: 0.0,
        };
        if e.placement.assignment().is_some() {
            sum.available = 1;
            sum.subgraphs = h.placement.subgraphs.len();
            for (ep, nodes) in &h.placement.subgraphs {
                let n = nodes.len();
                sum.total_nodes += n;
                match ep.to_str().unwrap_or("") {
                    VITISAI_EP => {
                        sum.npu_nodes += n;
                        sum.npu_subgraphs += 1;
                    }
                    CPU_EP => sum.cpu_nodes += n,
                    _ => sum.other_nodes += n,
                }
            }
            if sum.total_nodes > 0 {
                sum.npu_percent = sum.npu_nodes as f64 * 100.0 / sum.total_nodes as f64;
            }
        }
        write_out(out, sum);
        Ok(())
    })
}

fn placement_of(h: &SessionHandle) -> Result<&[CSubgraph]> {
    match &h.session.execution().placement {
        Placement::Available(_) => Ok(&h.placement.subgraphs),
        Placement::Unavailable(why) => Err(Error::unsupported(format!(
            "the placement is unavailable: {why}"
        ))),
    }
}

/// Gives the number of subgraphs of the placement by ipuflow's one definition: maximal connected groups of nodes on
/// one device, as the placement JSON (`subgraphStat`), the placement line and the pre-flight's 32-subgraph rule count
/// them. (Before 1.0 this counted ONNX Runtime's own partition, one entry per CPU node with ONNX Runtime 1.32; that
/// partition is `ipuflow_session_placement_get_ort_subgraph_count`.)
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_UNSUPPORTED (placement unavailable, with the reason).
/// Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_placement_get_subgraph_count(
    session: *const ipuflow_session,
    out_count: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out_count, "out_count")?;
        let h = ipuflow_session::try_ref(session, "session")?;
        let n = placement_of(h)?.len();
        write_out(out, n);
        Ok(())
    })
}

/// Alias of `ipuflow_session_placement_get_subgraph_count` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_session_placement_get_subgraph_count`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_placement_subgraph_count(
    session: *const ipuflow_session,
    out_count: *mut usize,
) -> ipuflow_status {
    ipuflow_session_placement_get_subgraph_count(session, out_count)
}

/// Describes subgraph `index` of the placement (the one definition, as `ipuflow_session_placement_get_subgraph_count`):
/// the EP name ONNX Runtime gives its nodes ("VitisAIExecutionProvider", "CPUExecutionProvider", ...; owned by the
/// session) and its number of nodes (`ipuflow_session_placement_get_node` lists them). Either output may be NULL if not
/// wanted. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`session`), IPUFLOW_STATUS_OUT_OF_RANGE,
/// IPUFLOW_STATUS_UNSUPPORTED (placement unavailable). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_placement_get_subgraph(
    session: *const ipuflow_session,
    index: usize,
    ep_name: *mut *const c_char,
    node_count: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let h = ipuflow_session::try_ref(session, "session")?;
        let sgs = placement_of(h)?;
        let (name, nodes) = &sgs[check_index(index, sgs.len(), "subgraph", "the placement")?];
        write_opt(ep_name, name.as_ptr());
        write_opt(node_count, nodes.len());
        Ok(())
    })
}

/// Gives the number of entries of ONNX Runtime's own partition of the session (its EP graph-assignment info as it
/// reports it: ONNX Runtime 1.32's CPU EP gives one entry per node, a compiling EP such as VitisAI one per fused
/// partition), for hosts that need ONNX Runtime's numbering; `ipuflow_session_placement_get_subgraph_count` counts
/// ipuflow's one definition instead. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_UNSUPPORTED (placement
/// unavailable, with the reason). Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_placement_get_ort_subgraph_count(
    session: *const ipuflow_session,
    out_count: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out_count, "out_count")?;
        let h = ipuflow_session::try_ref(session, "session")?;
        placement_of(h)?;
        write_out(out, h.placement.ort_subgraphs.len());
        Ok(())
    })
}

/// Describes entry `index` of ONNX Runtime's own partition (as `ipuflow_session_placement_get_ort_subgraph_count`):
/// its EP name (owned by the session) and number of nodes; the nodes' names are in the placement JSON's
/// `onnxRuntimeSubgraphs`. Either output may be NULL if not wanted. Errors: IPUFLOW_STATUS_NULL_ARGUMENT
/// (`session`), IPUFLOW_STATUS_OUT_OF_RANGE, IPUFLOW_STATUS_UNSUPPORTED (placement unavailable). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_placement_get_ort_subgraph(
    session: *const ipuflow_session,
    index: usize,
    ep_name: *mut *const c_char,
    node_count: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let h = ipuflow_session::try_ref(session, "session")?;
        placement_of(h)?;
        let sgs = &h.placement.ort_subgraphs;
        let (name, n) =
            &sgs[check_index(index, sgs.len(), "ONNX Runtime subgraph", "the placement")?];
        write_opt(ep_name, name.as_ptr());
        write_opt(node_count, *n);
        Ok(())
    })
}

/// One node of the placement; its strings are owned by the session.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ipuflow_placed_node {
    /// The node's name in the partitioned graph (ONNX Runtime's basic optimizations may rename or remove nodes).
    pub name: *const c_char,
    /// "" for the default ONNX domain.
    pub domain: *const c_char,
    pub op_type: *const c_char,
}

/// Describes node `node_index` of subgraph `subgraph_index`.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_OUT_OF_RANGE (either index), IPUFLOW_STATUS_UNSUPPORTED
/// (placement unavailable). Thread-safe.
///
/// Ownership: the strings in `*out` are owned by the session, valid until `ipuflow_session_free`.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_placement_get_node(
    session: *const ipuflow_session,
    subgraph_index: usize,
    node_index: usize,
    out: *mut ipuflow_placed_node,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let h = ipuflow_session::try_ref(session, "session")?;
        let sgs = placement_of(h)?;
        let (_, nodes) = &sgs[check_index(subgraph_index, sgs.len(), "subgraph", "the placement")?];
        let owner = format!("subgraph {subgraph_index}");
        let n = &nodes[check_index(node_index, nodes.len(), "node", &owner)?];
        write_out(
            out,
            ipuflow_placed_node {
                name: n[0].as_ptr(),
                domain: n[1].as_ptr(),
                op_type: n[2].as_ptr(),
            },
        );
        Ok(())
    })
}

/// Gives the placement as JSON in the shape of Ryzen AI's `vitisai_ep_report.json`: `deviceStat` (entries "all",
/// "CPU", "NPU", then other devices, each with `nodeNum` and `supportedOpType` ["domain::Op", ...]),
/// `subgraphStat`, `nodeStat`, plus `session` {requestedDevice, deviceUsed, fallbackReason, cacheKey} and, when
/// the placement is unavailable, `"unavailable": "<why>"` (the counts are then empty, not guessed).
/// `*out` is a new string owned by the caller: free it with `ipuflow_string_free`.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_placement_to_json(
    session: *const ipuflow_session,
    out: *mut *mut c_char,
) -> ipuflow_status {
    get(session, out, |h| {
        Ok(super::string_to_c(h.session.execution().report_json()))
    })
}

/// Alias of `ipuflow_session_placement_to_json` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_session_placement_to_json`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_placement_json(
    session: *const ipuflow_session,
    out: *mut *mut c_char,
) -> ipuflow_status {
    ipuflow_session_placement_to_json(session, out)
}
