//! Sessions: a model loaded into ONNX Runtime, its input/output metadata, and runs over caller buffers.
//!
//! A [`Session`] is `Send + Sync`; [`Session::run`] and friends may be called from many threads at once (ONNX
//! Runtime's `Run` is thread-safe). Inputs are caller memory wrapped without copying (strings excepted: ONNX
//! Runtime keeps them in its own objects, so they are copied in); outputs go either into caller buffers (also
//! without copying; never strings) or into tensors ONNX Runtime allocates ([`Tensor`]). Every input and
//! preallocated output is checked against the model before ONNX Runtime sees it, and a mismatch is a
//! `TensorMismatch` error naming the tensor and both values.

use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use ort_sys::{OrtMemoryInfo, OrtRunOptions, OrtSession, OrtTensorTypeAndShapeInfo, OrtValue};

use super::env::{Environment, LogLevel};
use super::ffi::{c_string, os_string};
use super::loader::Runtime;
use super::npu::{self, DeviceUsed, Execution};
use super::options::SessionOptions;
use super::tensor::{
    onnx_type_name, shape_str, ElementType, Tensor, TensorData, TensorMut, TensorRef,
};
use crate::error::{Error, ErrorKind, Result};

/// What kind of value an input or output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    Tensor,
    Sequence,
    Map,
    Optional,
    SparseTensor,
    Other,
}

/// Metadata of one model input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub kind: ValueKind,
    /// The element type's ONNX number (0 for non-tensors); see [`TensorInfo::element_type`].
    pub element_type_code: i32,
    /// The shape; `-1` marks a dimension that is not fixed (symbolic or unknown).
    pub shape: Vec<i64>,
    /// Per dimension, its symbolic name ("batch", "N", ...) or "" when fixed or unnamed.
    pub dim_names: Vec<String>,
}

impl TensorInfo {
    /// The element type, if ipuflow handles it (always `None` for non-tensors).
    pub fn element_type(&self) -> Option<ElementType> {
        if self.kind == ValueKind::Tensor {
            ElementType::from_onnx(self.element_type_code)
        } else {
            None
        }
    }

    fn describe(&self) -> String {
        match self.kind {
            ValueKind::Tensor => format!(
                "{} {}",
                onnx_type_name(self.element_type_code),
                self.model_shape()
            ),
            k => format!("{k:?}").to_lowercase(),
        }
    }

    /// The shape with symbolic names, e.g. `[batch,3,224,224]`.
    pub fn model_shape(&self) -> String {
        let parts: Vec<String> = self
            .shape
            .iter()
            .zip(&self.dim_names)
            .map(|(d, n)| {
                if *d >= 0 {
                    d.to_string()
                } else if n.is_empty() {
                    "?".into()
                } else {
                    n.clone()
                }
            })
            .collect();
        format!("[{}]", parts.join(","))
    }
}

/// Per-run settings and a cancel token.
///
/// `Send + Sync`: [`RunOptions::cancel`] may be called from any thread while runs using these options are in
/// progress; they then stop as soon as ONNX Runtime checks the flag and return `ErrorKind::Cancelled`. The flag
/// stays set (later runs with these options fail at once) until [`RunOptions::reset`].
pub struct RunOptions {
    rt: &'static Runtime,
    raw: NonNull<OrtRunOptions>,
    cancelled: AtomicBool,
}

// SAFETY: ORT documents RunOptionsSetTerminate as the way to stop runs from another thread; the other setters take
// `&mut self`.
unsafe impl Send for RunOptions {}
unsafe impl Sync for RunOptions {}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl RunOptions {
    /// New run options (loads ONNX Runtime with the default resolution if needed).
    pub fn new() -> Result<RunOptions> {
        let rt = Runtime::get_or_load()?;
        let mut raw = std::ptr::null_mut();
        ort_call!(rt, CreateRunOptions(&mut raw))?;
        let raw =
            NonNull::new(raw).ok_or_else(|| Error::internal("CreateRunOptions returned NULL"))?;
        Ok(RunOptions {
            rt,
            raw,
            cancelled: AtomicBool::new(false),
        })
    }

    /// Asks every run using these options to stop. Thread-safe; idempotent.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let _ = ort_call!(self.rt, RunOptionsSetTerminate(self.raw.as_ptr()));
    }

    /// Clears the cancel flag so the options can be used again.
    pub fn reset(&self) {
        let _ = ort_call!(self.rt, RunOptionsUnsetTerminate(self.raw.as_ptr()));
        self.cancelled.store(false, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// A tag for ORT's log messages of these runs.
    pub fn set_tag(&mut self, tag: &str) -> Result<()> {
        let t = c_string(tag, "run tag")?;
        ort_call!(self.rt, RunOptionsSetRunTag(self.raw.as_ptr(), t.as_ptr()))
    }

    /// The minimum log severity of these runs.
    pub fn set_log_level(&mut self, level: LogLevel) -> Result<()> {
        ort_call!(
            self.rt,
            RunOptionsSetRunLogSeverityLevel(self.raw.as_ptr(), level as i32)
        )
    }

    /// An arbitrary `AddRunConfigEntry` key/value pair.
    pub fn add_config_entry(&mut self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid_argument(
                "run config entry with an empty key",
            ));
        }
        let (k, v) = (
            c_string(key, "run config key")?,
            c_string(value, "run config value")?,
        );
        ort_call!(
            self.rt,
            AddRunConfigEntry(self.raw.as_ptr(), k.as_ptr(), v.as_ptr())
        )
        .map_err(|e| e.context(format!("run config entry '{key}' = '{value}'")))
    }
}

impl Drop for RunOptions {
    fn drop(&mut self) {
        unsafe { ort_fn!(self.rt, ReleaseRunOptions)(self.raw.as_ptr()) };
    }
}

/// A model loaded into ONNX Runtime. `Send + Sync`; runs may be concurrent.
pub struct Session {
    rt: &'static Runtime,
    raw: NonNull<OrtSession>,
    mem_info: NonNull<OrtMemoryInfo>,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    input_names_c: Vec<CString>,
    output_names_c: Vec<CString>,
    execution: Execution,
    // The environment must outlive the session.
    _env: Environment,
    /// The copy of a model over 2 GiB that the session was created from (see `from_model_in`); removed after the
    /// session is released (Windows cannot delete a file ONNX Runtime still maps).
    _spill: Option<SpillDir>,
}

/// A private temporary folder, removed with everything in it when dropped.
#[derive(Debug)]
struct SpillDir(std::path::PathBuf);

impl SpillDir {
    fn new() -> Result<SpillDir> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ipuflow-session-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| Error::io("create", &dir, e))?;
        Ok(SpillDir(dir))
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// SAFETY: OrtSession's Run is thread-safe; everything else here is immutable after creation.
unsafe impl Send for Session {}
unsafe impl Sync for Session {}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

/// OrtValues created for one run; the non-NULL ones are released on drop.
struct ValueList<'r, 'a> {
    rt: &'r Runtime,
    values: &'a mut [*mut OrtValue],
}

/// The first `n` entries of `inline` when they fit, else of `heap` (resized to `n` with `fill`).
fn inline_or_heap<'a, T: Copy, const N: usize>(
    inline: &'a mut [T; N],
    heap: &'a mut Vec<T>,
    n: usize,
    fill: T,
) -> &'a mut [T] {
    if n <= N {
        &mut inline[..n]
    } else {
        heap.resize(n, fill);
        heap
    }
}

impl Drop for ValueList<'_, '_> {
    fn drop(&mut self) {
        for v in self.values.iter() {
            if !v.is_null() {
                unsafe { ort_fn!(self.rt, ReleaseValue)(*v) };
            }
        }
    }
}

/// Reads the element type code (as ONNX numbers it) and the shape from a tensor type-and-shape info.
pub(crate) fn read_tensor_info(
    rt: &Runtime,
    info: *const OrtTensorTypeAndShapeInfo,
) -> Result<(i32, Vec<i64>)> {
    let mut code: i32 = 0;
    // Read as a plain integer: an element type newer than ort-sys's enum must not become an invalid Rust enum.
    ort_call!(
        rt,
        GetTensorElementType(
            info,
            &mut code as *mut i32 as *mut ort_sys::ONNXTensorElementDataType
        )
    )?;
    let code = onnx_code_of_ort(code);
    let mut rank = 0usize;
    ort_call!(rt, GetDimensionsCount(info, &mut rank))?;
    let mut shape = vec![0i64; rank];
    ort_call!(rt, GetDimensions(info, shape.as_mut_ptr(), rank))?;
    Ok((code, shape))
}

fn read_type_info(
    rt: &Runtime,
    ti: *const ort_sys::OrtTypeInfo,
    name: String,
) -> Result<TensorInfo> {
    let mut onnx_type: i32 = 0;
    ort_call!(
        rt,
        GetOnnxTypeFromTypeInfo(ti, &mut onnx_type as *mut i32 as *mut ort_sys::ONNXType)
    )?;
    let kind = match onnx_type {
        1 => ValueKind::Tensor,
        2 => ValueKind::Sequence,
        3 => ValueKind::Map,
        5 => ValueKind::SparseTensor,
        6 => ValueKind::Optional,
        _ => ValueKind::Other,
    };
    if kind != ValueKind::Tensor {
        return Ok(TensorInfo {
            name,
            kind,
            element_type_code: 0,
            shape: vec![],
            dim_names: vec![],
        });
    }
    let mut tinfo: *const OrtTensorTypeAndShapeInfo = std::ptr::null();
    ort_call!(rt, CastTypeInfoToTensorInfo(ti, &mut tinfo))?;
    if tinfo.is_null() {
        return Err(Error::internal(format!(
            "'{name}': ONNX Runtime gave no tensor info"
        )));
    }
    let (code, shape) = read_tensor_info(rt, tinfo)?;
    let mut syms: Vec<*const c_char> = vec![std::ptr::null(); shape.len()];
    ort_call!(
        rt,
        GetSymbolicDimensions(tinfo, syms.as_mut_ptr(), syms.len())
    )?;
    let dim_names = syms
        .iter()
        .map(|p| {
            if p.is_null() {
                String::new()
            } else {
                unsafe { CStr::from_ptr(*p) }.to_string_lossy().into_owned()
            }
        })
        .collect();
    Ok(TensorInfo {
        name,
        kind,
        element_type_code: code,
        shape,
        dim_names,
    })
}

impl Session {
    /// Creates a session from a model file, in the current (or a default) environment.
    pub fn from_file(path: impl AsRef<Path>, options: &SessionOptions) -> Result<Session> {
        Session::from_file_in(&Environment::current_or_default()?, path, options)
    }

    /// Creates a session from a model file in `env`. A missing file is `FileNotFound`.
    pub fn from_file_in(
        env: &Environment,
        path: impl AsRef<Path>,
        options: &SessionOptions,
    ) -> Result<Session> {
        let path = path.as_ref();
        if !options.input_shapes.is_empty() {
            // The declarations change, so ONNX Runtime gets the rewritten model, not the file.
            let model = crate::onnx::Model::load_file(path)?;
            return Session::from_model_in(env, &model, options);
        }
        // ONNX Runtime opens the path itself, blocking on a FIFO: only a regular file goes through.
        drop(crate::onnx::fs::open_regular(path)?);
        let p = os_string(path)?;
        let rt = env.runtime();
        let (raw, exec) = npu::create(env, options, npu::ModelSource::File(path), &|opts| {
            let mut raw = std::ptr::null_mut();
            ort_call!(rt, CreateSession(env.raw(), p.as_ptr(), opts, &mut raw))
                .map_err(|e| e.context(format!("creating a session for '{}'", path.display())))?;
            Ok(raw)
        })?;
        Session::finish(env, options, raw, exec)
    }

    /// Creates a session from model bytes (an encoded `ModelProto`), in the current (or a default) environment.
    pub fn from_bytes(bytes: &[u8], options: &SessionOptions) -> Result<Session> {
        Session::from_bytes_in(&Environment::current_or_default()?, bytes, options)
    }

    /// Creates a session from model bytes in `env`. External data cannot be resolved from bytes: inline it first
    /// (as [`crate::onnx::Model`] does) or use [`Session::from_file_in`].
    pub fn from_bytes_in(
        env: &Environment,
        bytes: &[u8],
        options: &SessionOptions,
    ) -> Result<Session> {
        if bytes.is_empty() {
            return Err(Error::new(
                ErrorKind::ModelDecode,
                "cannot create a session: the model bytes are empty",
            ));
        }
        if !options.input_shapes.is_empty() {
            let model = crate::onnx::Model::from_bytes(bytes, None)?;
            return Session::from_model_in(env, &model, options);
        }
        Session::from_encoded(env, bytes, None, options)
    }

    /// A session from model bytes (no input shapes left to apply); `decoded` is the same model already decoded,
    /// when the caller has it, so that the CPU plan does not decode the bytes again.
    fn from_encoded(
        env: &Environment,
        bytes: &[u8],
        decoded: Option<Box<std::borrow::Cow<'_, crate::onnx::proto::ModelProto>>>,
        options: &SessionOptions,
    ) -> Result<Session> {
        let rt = env.runtime();
        let source = npu::ModelSource::Bytes(bytes, decoded);
        let (raw, exec) = npu::create(env, options, source, &|opts| {
            let mut raw = std::ptr::null_mut();
            ort_call!(
                rt,
                CreateSessionFromArray(
                    env.raw(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    opts,
                    &mut raw
                )
            )
            .map_err(|e| e.context("creating a session from model bytes"))?;
            Ok(raw)
        })?;
        Session::finish(env, options, raw, exec)
    }

    /// Creates a session from a model in memory (its external data is already inlined).
    pub fn from_model(model: &crate::onnx::Model, options: &SessionOptions) -> Result<Session> {
        Session::from_model_in(&Environment::current_or_default()?, model, options)
    }

    /// Creates a session from a model in memory, in `env`. A model over protobuf's 2 GiB limit cannot be handed
    /// to ONNX Runtime as bytes: it is saved with external data in a private folder of the system's temporary
    /// directory and the session created from that file (the folder goes when the session does). For a model that
    /// is already on disk, [`Session::from_file_in`] avoids the copy.
    pub fn from_model_in(
        env: &Environment,
        model: &crate::onnx::Model,
        options: &SessionOptions,
    ) -> Result<Session> {
        Session::from_model_limited(env, model, options, crate::onnx::PROTOBUF_LIMIT)
    }

    fn from_model_limited(
        env: &Environment,
        model: &crate::onnx::Model,
        options: &SessionOptions,
        limit: usize,
    ) -> Result<Session> {
        use prost::Message;
        use std::borrow::Cow;
        let (model, options) = if options.input_shapes.is_empty() {
            (Cow::Borrowed(model), Cow::Borrowed(options))
        } else {
            let mut m = model.proto().clone();
            crate::onnx::apply_input_shapes(&mut m, &options.input_shapes)?;
            let options = SessionOptions {
                input_shapes: Vec::new(),
                ..options.clone()
            };
            (
                Cow::Owned(crate::onnx::Model::from_proto(m)),
                Cow::Owned(options),
            )
        };
        if model.proto().encoded_len() <= limit {
            let bytes = model.to_bytes()?;
            if bytes.is_empty() {
                return Session::from_bytes_in(env, &bytes, &options); // the "empty bytes" error
            }
            // The CPU plan takes the decoded model (a reshaped one without a copy) instead of decoding the bytes.
            let decoded = match model {
                Cow::Borrowed(m) => Cow::Borrowed(m.proto()),
                Cow::Owned(m) => Cow::Owned(m.into_proto()),
            };
            return Session::from_encoded(env, &bytes, Some(Box::new(decoded)), &options);
        }
        let options = options.as_ref();
        let spill = SpillDir::new()?;
        let path = spill.0.join("model.onnx");
        let save = crate::onnx::SaveOptions {
            external_data: Some(crate::onnx::ExternalDataOptions {
                location: "model.onnx.data".into(),
                size_threshold: 1024,
            }),
        };
        model.save(&path, &save).map_err(|e| {
            e.context("the model is over 2 GiB: saving it with external data for ONNX Runtime")
        })?;
        let mut session = Session::from_file_in(env, &path, options)?;
        session._spill = Some(spill);
        Ok(session)
    }

    fn finish(
        env: &Environment,
        options: &SessionOptions,
        raw: *mut OrtSession,
        execution: Execution,
    ) -> Result<Session> {
        let rt = env.runtime();
        let raw =
            NonNull::new(raw).ok_or_else(|| Error::internal("CreateSession returned NULL"))?;
        // From here on, the partially built session is released by a guard on error.
        struct Guard(&'static Runtime, *mut OrtSession);
        impl Drop for Guard {
            fn drop(&mut self) {
                if !self.1.is_null() {
                    unsafe { ort_fn!(self.0, ReleaseSession)(self.1) };
                }
            }
        }
        let mut guard = Guard(rt, raw.as_ptr());
        // The last phase boundary: a creation cancelled while ONNX Runtime worked (a runtime without the load
        // cancellation flag finishes it) returns no session; the guard releases it.
        options.check_load_cancel("when ONNX Runtime returned the session, which was released")?;
        let mut mem = std::ptr::null_mut();
        ort_call!(
            rt,
            CreateCpuMemoryInfo(
                ort_sys::OrtAllocatorType::OrtArenaAllocator,
                ort_sys::OrtMemType::OrtMemTypeDefault,
                &mut mem
            )
        )?;
        let mem_info = NonNull::new(mem)
            .ok_or_else(|| Error::internal("CreateCpuMemoryInfo returned NULL"))?;
        let mut session = Session {
            rt,
            raw,
            mem_info,
            inputs: vec![],
            outputs: vec![],
            input_names_c: vec![],
            output_names_c: vec![],
            execution,
            _env: env.clone(),
            _spill: None,
        };
        guard.1 = std::ptr::null_mut(); // owned by `session` now
        session.inputs = session.read_infos(true)?;
        session.outputs = session.read_infos(false)?;
        let cnames = |v: &[TensorInfo]| -> Result<Vec<CString>> {
            v.iter().map(|i| c_string(&i.name, "tensor name")).collect()
        };
        session.input_names_c = cnames(&session.inputs)?;
        session.output_names_c = cnames(&session.outputs)?;
        Ok(session)
    }

    fn read_infos(&self, inputs: bool) -> Result<Vec<TensorInfo>> {
        let rt = self.rt;
        let s = self.raw.as_ptr();
        let mut n = 0usize;
        if inputs {
            ort_call!(rt, SessionGetInputCount(s, &mut n))?;
        } else {
            ort_call!(rt, SessionGetOutputCount(s, &mut n))?;
        }
        let mut alloc = std::ptr::null_mut();
        ort_call!(rt, GetAllocatorWithDefaultOptions(&mut alloc))?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let mut name_ptr: *mut c_char = std::ptr::null_mut();
            if inputs {
                ort_call!(rt, SessionGetInputName(s, i, alloc, &mut name_ptr))?;
            } else {
                ort_call!(rt, SessionGetOutputName(s, i, alloc, &mut name_ptr))?;
            }
            let name = if name_ptr.is_null() {
                String::new()
            } else {
                let n = unsafe { CStr::from_ptr(name_ptr) }
                    .to_string_lossy()
                    .into_owned();
                ort_call!(rt, AllocatorFree(alloc, name_ptr.cast()))?;
                n
            };
            let mut ti = std::ptr::null_mut();
            if inputs {
                ort_call!(rt, SessionGetInputTypeInfo(s, i, &mut ti))?;
            } else {
                ort_call!(rt, SessionGetOutputTypeInfo(s, i, &mut ti))?;
            }
            let info = read_type_info(rt, ti, name);
            unsafe { ort_fn!(rt, ReleaseTypeInfo)(ti) };
            out.push(info?);
        }
        Ok(out)
    }

    /// The model's inputs (those a run must feed), in model order.
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    /// The model's outputs, in model order.
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// How the session was created: the device requested and used, the fallback reason, the VitisAI cache key,
    /// and ONNX Runtime's placement of every node.
    pub fn execution(&self) -> &Execution {
        &self.execution
    }

    /// The device the session runs on (NPU only when ONNX Runtime assigned nodes to the VitisAI EP).
    pub fn device_used(&self) -> DeviceUsed {
        self.execution.device_used
    }

    /// Why the NPU is not used although it was requested; "" when there is nothing to report.
    pub fn fallback_reason(&self) -> &str {
        &self.execution.fallback_reason
    }

    /// The placement as a `vitisai_ep_report.json`-shaped report (empty when unavailable: see
    /// [`Execution::placement`]).
    pub fn placement_report(&self) -> crate::ipu::report::EpReport {
        self.execution.report()
    }

    /// The runtime this session runs on.
    pub fn runtime(&self) -> &'static Runtime {
        self.rt
    }

    fn names(list: &[TensorInfo]) -> String {
        let v: Vec<String> = list.iter().map(|i| format!("'{}'", i.name)).collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }

    /// The index of the input named `name`; `TensorMismatch` listing the valid names otherwise.
    pub fn input_index(&self, name: &str) -> Result<usize> {
        self.inputs
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| self.unknown("input", name.as_bytes()))
    }

    /// The index of the output named `name`; `TensorMismatch` listing the valid names otherwise.
    pub fn output_index(&self, name: &str) -> Result<usize> {
        self.outputs
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| self.unknown("output", name.as_bytes()))
    }

    /// Index lookup on raw name bytes (for the C ABI: no UTF-8 check on the fast path).
    pub(crate) fn input_index_bytes(&self, name: &[u8]) -> Result<usize> {
        self.input_names_c
            .iter()
            .position(|c| c.to_bytes() == name)
            .ok_or_else(|| self.unknown("input", name))
    }

    pub(crate) fn output_index_bytes(&self, name: &[u8]) -> Result<usize> {
        self.output_names_c
            .iter()
            .position(|c| c.to_bytes() == name)
            .ok_or_else(|| self.unknown("output", name))
    }

    fn unknown(&self, what: &str, name: &[u8]) -> Error {
        let list = if what == "input" {
            &self.inputs
        } else {
            &self.outputs
        };
        Error::new(
            ErrorKind::TensorMismatch,
            format!(
                "unknown {what} '{}'; the model's {what}s are: {}",
                String::from_utf8_lossy(name),
                Self::names(list)
            ),
        )
    }

    /// Runs the model on `inputs` (name, tensor) and returns every output, in model order, allocated by ORT.
    pub fn run(&self, inputs: &[(&str, TensorRef<'_>)]) -> Result<Vec<Tensor>> {
        let outs: Vec<usize> = (0..self.outputs.len()).collect();
        self.run_outputs(None, inputs, &outs)
    }

    /// Runs the model and returns the outputs at `outputs` (indices), allocated by ORT.
    pub fn run_outputs(
        &self,
        options: Option<&RunOptions>,
        inputs: &[(&str, TensorRef<'_>)],
        outputs: &[usize],
    ) -> Result<Vec<Tensor>> {
        let ins = inputs
            .iter()
            .map(|(n, t)| Ok((self.input_index(n)?, *t)))
            .collect::<Result<Vec<_>>>()?;
        let mut outs: Vec<(usize, Option<TensorMut<'_>>)> =
            outputs.iter().map(|&i| (i, None)).collect();
        let res = self.run_indexed(options, &ins, &mut outs)?;
        Ok(res.into_iter().flatten().collect())
    }

    /// Runs the model and returns the named outputs, allocated by ORT.
    pub fn run_named(
        &self,
        options: Option<&RunOptions>,
        inputs: &[(&str, TensorRef<'_>)],
        outputs: &[&str],
    ) -> Result<Vec<Tensor>> {
        let idx = outputs
            .iter()
            .map(|n| self.output_index(n))
            .collect::<Result<Vec<_>>>()?;
        self.run_outputs(options, inputs, &idx)
    }

    /// Runs the model writing the named outputs into caller buffers (no copy, no allocation of output data).
    pub fn run_into(
        &self,
        options: Option<&RunOptions>,
        inputs: &[(&str, TensorRef<'_>)],
        outputs: &mut [(&str, TensorMut<'_>)],
    ) -> Result<()> {
        let ins = inputs
            .iter()
            .map(|(n, t)| Ok((self.input_index(n)?, *t)))
            .collect::<Result<Vec<_>>>()?;
        let mut outs = Vec::with_capacity(outputs.len());
        for (name, t) in outputs.iter_mut() {
            let i = self.output_index(name)?;
            outs.push((
                i,
                Some(TensorMut {
                    element_type: t.element_type,
                    shape: t.shape,
                    data: &mut *t.data,
                }),
            ));
        }
        self.run_indexed(options, &ins, &mut outs)?;
        Ok(())
    }

    /// The general run: inputs and outputs by index. An output with a buffer is written in place; one without
    /// gets an ORT-allocated [`Tensor`] in the returned list (same positions as `outputs`, `None` for in-place
    /// outputs). When every output has a buffer the list is empty (nothing is allocated).
    ///
    /// Every input of the model must be given exactly once; at least one output must be requested, each at most
    /// once. All checks happen before ORT is called. Cancelled runs return `ErrorKind::Cancelled`.
    pub fn run_indexed(
        &self,
        options: Option<&RunOptions>,
        inputs: &[(usize, TensorRef<'_>)],
        outputs: &mut [(usize, Option<TensorMut<'_>>)],
    ) -> Result<Vec<Option<Tensor>>> {
        // No ORT call before every check passes.
        self.check_run_inputs(inputs)?;
        self.check_run_outputs(outputs)?;
        if options.is_some_and(|o| o.is_cancelled()) {
            return Err(Error::new(
                ErrorKind::Cancelled,
                "the run was cancelled before it started",
            ));
        }

        // Caller memory as OrtValues (pointer arrays on the stack for up to INLINE tensors: no allocation).
        const INLINE: usize = 8;
        let (n_in, n_out) = (inputs.len(), outputs.len());
        let (mut in_vals_s, mut in_vals_h) =
            ([std::ptr::null_mut::<OrtValue>(); INLINE], Vec::new());
        let (mut in_names_s, mut in_names_h) = ([std::ptr::null::<c_char>(); INLINE], Vec::new());
        let (mut out_vals_s, mut out_vals_h) =
            ([std::ptr::null_mut::<OrtValue>(); INLINE], Vec::new());
        let (mut out_names_s, mut out_names_h) = ([std::ptr::null::<c_char>(); INLINE], Vec::new());
        let in_vals = ValueList {
            rt: self.rt,
            values: inline_or_heap(&mut in_vals_s, &mut in_vals_h, n_in, std::ptr::null_mut()),
        };
        let in_names = inline_or_heap(&mut in_names_s, &mut in_names_h, n_in, std::ptr::null());
        self.wrap_inputs(inputs, in_vals.values, in_names)?;
        let out_vals = ValueList {
            rt: self.rt,
            values: inline_or_heap(
                &mut out_vals_s,
                &mut out_vals_h,
                n_out,
                std::ptr::null_mut(),
            ),
        };
        let out_names = inline_or_heap(&mut out_names_s, &mut out_names_h, n_out, std::ptr::null());
        let n_allocated = self.wrap_outputs(outputs, out_vals.values, out_names)?;

        self.ort_run(
            options,
            in_names,
            in_vals.values,
            out_names,
            out_vals.values,
        )?;
        if n_allocated == 0 {
            return Ok(Vec::new());
        }
        self.collect_outputs(outputs, out_vals.values)
    }

    /// Run check: every input given once, in range, of the model's type and shape.
    fn check_run_inputs(&self, inputs: &[(usize, TensorRef<'_>)]) -> Result<()> {
        let mut seen_in = 0u64;
        let mut seen_in_big: Vec<bool> = Vec::new();
        for (idx, t) in inputs {
            let info = self.inputs.get(*idx).ok_or_else(|| {
                Error::new(
                    ErrorKind::OutOfRange,
                    format!(
                        "input index {idx} is out of range: the model has {} inputs",
                        self.inputs.len()
                    ),
                )
            })?;
            if mark(&mut seen_in, &mut seen_in_big, *idx, self.inputs.len()) {
                return Err(Error::new(
                    ErrorKind::TensorMismatch,
                    format!("input '{}' is given more than once", info.name),
                ));
            }
            let payload = match t.data {
                TensorData::Bytes(b) => Payload::Bytes {
                    len: b.len(),
                    addr: b.as_ptr() as usize,
                },
                d => Payload::Strings(d.string_count()),
            };
            check_tensor("input", info, t.element_type, t.shape, payload)?;
        }
        if inputs.len() != self.inputs.len() {
            let missing: Vec<String> = self
                .inputs
                .iter()
                .enumerate()
                .filter(|(i, _)| !is_marked(seen_in, &seen_in_big, *i))
                .map(|(_, info)| format!("'{}' ({})", info.name, info.describe()))
                .collect();
            return Err(Error::new(
                ErrorKind::TensorMismatch,
                format!("missing input(s): {}", missing.join(", ")),
            ));
        }
        Ok(())
    }

    /// Run check: at least one output, each in range and requested once, caller buffers of the right type and size.
    fn check_run_outputs(&self, outputs: &[(usize, Option<TensorMut<'_>>)]) -> Result<()> {
        if outputs.is_empty() {
            return Err(Error::invalid_argument(format!(
                "no output requested; the model's outputs are: {}",
                Self::names(&self.outputs)
            )));
        }
        let (mut seen_out, mut seen_out_big) = (0u64, Vec::new());
        for (idx, buf) in outputs.iter() {
            let info = self.outputs.get(*idx).ok_or_else(|| {
                Error::new(
                    ErrorKind::OutOfRange,
                    format!(
                        "output index {idx} is out of range: the model has {} outputs",
                        self.outputs.len()
                    ),
                )
            })?;
            if mark(&mut seen_out, &mut seen_out_big, *idx, self.outputs.len()) {
                return Err(Error::invalid_argument(format!(
                    "output '{}' is requested more than once",
                    info.name
                )));
            }
            match buf {
                Some(t) if t.element_type == ElementType::String => {
                    return Err(Error::invalid_argument(format!(
                        "output '{}': a string output cannot be written into a caller buffer (ONNX Runtime keeps \
                         strings in its own objects); request it allocated instead",
                        info.name
                    )))
                }
                Some(t) => check_tensor(
                    "output",
                    info,
                    t.element_type,
                    t.shape,
                    Payload::Bytes { len: t.data.len(), addr: t.data.as_ptr() as usize },
                )?,
                None => check_kind("output", info)?,
            }
        }
        Ok(())
    }

    /// Wraps the (checked) inputs as OrtValues over the caller's memory, filling `vals` and `names`.
    fn wrap_inputs(
        &self,
        inputs: &[(usize, TensorRef<'_>)],
        vals: &mut [*mut OrtValue],
        names: &mut [*const c_char],
    ) -> Result<()> {
        let (rt, mem) = (self.rt, self.mem_info.as_ptr());
        for (k, (idx, t)) in inputs.iter().enumerate() {
            let input_name = || format!("input '{}'", self.inputs[*idx].name);
            match t.data {
                TensorData::Bytes(data) => ort_call!(
                    rt,
                    CreateTensorWithDataAsOrtValue(
                        mem,
                        data.as_ptr() as *mut std::ffi::c_void, // ORT never writes to inputs
                        data.len(),
                        t.shape.as_ptr(),
                        t.shape.len(),
                        ort_elem(t.element_type),
                        &mut vals[k]
                    )
                )
                .map_err(|e| e.context(input_name()))?,
                strs => fill_string_tensor(rt, t.shape, &strs, &mut vals[k])
                    .map_err(|e| e.context(input_name()))?,
            }
            names[k] = self.input_names_c[*idx].as_ptr();
        }
        Ok(())
    }

    /// Wraps the outputs that have caller buffers as OrtValues, fills `names`; returns how many ORT allocates.
    fn wrap_outputs(
        &self,
        outputs: &mut [(usize, Option<TensorMut<'_>>)],
        vals: &mut [*mut OrtValue],
        names: &mut [*const c_char],
    ) -> Result<usize> {
        let (rt, mem) = (self.rt, self.mem_info.as_ptr());
        let mut n_allocated = 0usize;
        for (k, (idx, buf)) in outputs.iter_mut().enumerate() {
            match buf {
                Some(t) => ort_call!(
                    rt,
                    CreateTensorWithDataAsOrtValue(
                        mem,
                        t.data.as_mut_ptr().cast(),
                        t.data.len(),
                        t.shape.as_ptr(),
                        t.shape.len(),
                        ort_elem(t.element_type),
                        &mut vals[k]
                    )
                )
                .map_err(|e| e.context(format!("output '{}'", self.outputs[*idx].name)))?,
                None => n_allocated += 1,
            }
            names[k] = self.output_names_c[*idx].as_ptr();
        }
        Ok(n_allocated)
    }

    /// The ORT call itself; a failure after the run options were cancelled is `Cancelled`.
    fn ort_run(
        &self,
        options: Option<&RunOptions>,
        in_names: &[*const c_char],
        in_vals: &[*mut OrtValue],
        out_names: &[*const c_char],
        out_vals: &mut [*mut OrtValue],
    ) -> Result<()> {
        let rt = self.rt;
        let run = ort_fn!(rt, Run);
        let status = unsafe {
            run(
                self.raw.as_ptr(),
                options.map_or(std::ptr::null(), |o| o.raw.as_ptr() as *const _),
                in_names.as_ptr(),
                in_vals.as_ptr() as *const *const OrtValue,
                in_vals.len(),
                out_names.as_ptr(),
                out_names.len(),
                out_vals.as_mut_ptr(),
            )
        };
        if let Err(e) = super::ffi::take_status(rt, status) {
            if options.is_some_and(|o| o.is_cancelled()) {
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    format!("the run was cancelled ({})", e.message),
                ));
            }
            return Err(e.into_error().context("run"));
        }
        Ok(())
    }

    /// Takes the ORT-allocated outputs out of `vals` (same positions as `outputs`, `None` for in-place ones).
    fn collect_outputs(
        &self,
        outputs: &[(usize, Option<TensorMut<'_>>)],
        vals: &mut [*mut OrtValue],
    ) -> Result<Vec<Option<Tensor>>> {
        let mut result = Vec::with_capacity(outputs.len());
        for (k, (idx, buf)) in outputs.iter().enumerate() {
            if buf.is_some() {
                result.push(None);
                continue;
            }
            let v = std::mem::replace(&mut vals[k], std::ptr::null_mut());
            let v = NonNull::new(v).ok_or_else(|| {
                Error::internal(format!(
                    "output '{}': ORT returned no value",
                    self.outputs[*idx].name
                ))
            })?;
            result.push(Some(Tensor::from_value(
                self.rt,
                v,
                &self.outputs[*idx].name,
            )?));
        }
        Ok(result)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        unsafe {
            ort_fn!(self.rt, ReleaseSession)(self.raw.as_ptr());
            ort_fn!(self.rt, ReleaseMemoryInfo)(self.mem_info.as_ptr());
        }
    }
}

fn ort_elem(t: ElementType) -> ort_sys::ONNXTensorElementDataType {
    use ort_sys::ONNXTensorElementDataType as O;
    match t {
        ElementType::Float32 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
        ElementType::Uint8 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8,
        ElementType::Int8 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8,
        ElementType::Uint16 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16,
        ElementType::Int16 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16,
        ElementType::Int32 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32,
        ElementType::Int64 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64,
        ElementType::String => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING,
        ElementType::Bool => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL,
        ElementType::Float16 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
        ElementType::Float64 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE,
        ElementType::Uint32 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32,
        ElementType::Uint64 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64,
        ElementType::Bfloat16 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16,
        ElementType::Float8E4M3FN => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FN,
        ElementType::Float8E4M3FNUZ => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FNUZ,
        ElementType::Float8E5M2 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2,
        ElementType::Float8E5M2FNUZ => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2FNUZ,
        ElementType::Uint4 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT4,
        ElementType::Int4 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT4,
        // ONNX Runtime's C enum orders the last three differently from ONNX (it added UINT2/INT2 first).
        ElementType::Float8E8M0 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E8M0,
        ElementType::Uint2 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT2,
        ElementType::Int2 => O::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT2,
    }
}

/// The ONNX `TensorProto.DataType` number of an ONNX Runtime element type number: equal up to FLOAT4E2M1 (23);
/// ORT numbers UINT2 = 24, INT2 = 25, FLOAT8E8M0 = 26 where ONNX has FLOAT8E8M0 = 24, UINT2 = 25, INT2 = 26.
fn onnx_code_of_ort(code: i32) -> i32 {
    use ort_sys::ONNXTensorElementDataType as O;
    match code {
        c if c == O::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT2 as i32 => ElementType::Uint2.onnx(),
        c if c == O::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT2 as i32 => ElementType::Int2.onnx(),
        c if c == O::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E8M0 as i32 => {
            ElementType::Float8E8M0.onnx()
        }
        c => c,
    }
}

/// Creates an ORT string tensor of `shape` (allocated by ORT's default allocator) and copies `strs` into it, one
/// element at a time through `GetResizedStringTensorElementBuffer` (no NUL terminator needed, embedded NULs kept).
/// The value is stored in `*out` as soon as it exists, so the caller's [`ValueList`] releases it on any error.
fn fill_string_tensor(
    rt: &Runtime,
    shape: &[i64],
    strs: &TensorData<'_>,
    out: &mut *mut OrtValue,
) -> Result<()> {
    let mut alloc = std::ptr::null_mut();
    ort_call!(rt, GetAllocatorWithDefaultOptions(&mut alloc))?;
    let mut v = std::ptr::null_mut();
    ort_call!(
        rt,
        CreateTensorAsOrtValue(
            alloc,
            shape.as_ptr(),
            shape.len(),
            ort_sys::ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING,
            &mut v
        )
    )?;
    // Owned by the caller's ValueList from here on (released on error there).
    *out = v;
    for i in 0..strs.string_count() {
        let s = strs.string(i);
        let mut buf: *mut c_char = std::ptr::null_mut();
        ort_call!(
            rt,
            GetResizedStringTensorElementBuffer(v, i, s.len(), &mut buf)
        )
        .map_err(|e| e.context(format!("string element {i}")))?;
        if !s.is_empty() {
            if buf.is_null() {
                return Err(Error::internal(format!(
                    "string element {i}: ONNX Runtime returned no buffer"
                )));
            }
            // SAFETY: ORT resized element `i` to `s.len()` bytes and returned its buffer.
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len()) };
        }
    }
    Ok(())
}

/// What a caller tensor carries, for [`check_tensor`].
#[derive(Clone, Copy)]
enum Payload {
    /// Element bytes at an address.
    Bytes { len: usize, addr: usize },
    /// A number of strings.
    Strings(usize),
}

/// Marks index `i` as seen; returns whether it already was. Small lists use a bit set (no allocation).
fn mark(bits: &mut u64, big: &mut Vec<bool>, i: usize, n: usize) -> bool {
    if n <= 64 {
        let was = *bits & (1 << i) != 0;
        *bits |= 1 << i;
        was
    } else {
        if big.is_empty() {
            big.resize(n, false);
        }
        std::mem::replace(&mut big[i], true)
    }
}

fn is_marked(bits: u64, big: &[bool], i: usize) -> bool {
    if big.is_empty() {
        i < 64 && bits & (1 << i) != 0
    } else {
        big[i]
    }
}

/// Refuses inputs/outputs ipuflow cannot pass (non-tensors, unknown element types).
fn check_kind(what: &str, info: &TensorInfo) -> Result<()> {
    if info.kind != ValueKind::Tensor {
        return Err(Error::unsupported(format!(
            "{what} '{}' is a {} value; ipuflow passes tensors only",
            info.name,
            format!("{:?}", info.kind).to_lowercase()
        )));
    }
    match ElementType::from_onnx(info.element_type_code) {
        Some(_) => Ok(()),
        None => Err(Error::unsupported(format!(
            "{what} '{}' has element type {}, which ipuflow does not support",
            info.name,
            onnx_type_name(info.element_type_code)
        ))),
    }
}

/// Checks one caller tensor against the model's description: element type, rank, fixed dimensions, byte size,
/// alignment (strings: their number). Errors name the tensor and both values.
fn check_tensor(
    what: &str,
    info: &TensorInfo,
    et: ElementType,
    shape: &[i64],
    payload: Payload,
) -> Result<()> {
    check_kind(what, info)?;
    let name = &info.name;
    let mismatch =
        |msg: String| Error::new(ErrorKind::TensorMismatch, format!("{what} '{name}': {msg}"));
    if et.onnx() != info.element_type_code {
        return Err(mismatch(format!(
            "element type is {}, the model expects {}",
            et,
            onnx_type_name(info.element_type_code)
        )));
    }
    // ONNX Runtime describes a scalar and a tensor of unknown rank alike (no dimensions): an input so described
    // takes any rank here, and ONNX Runtime itself refuses a wrong one for a declared scalar.
    let unknown_rank = what == "input" && info.shape.is_empty();
    if shape.len() != info.shape.len() && !unknown_rank {
        return Err(mismatch(format!(
            "rank is {} (shape {}), the model expects rank {} (shape {})",
            shape.len(),
            shape_str(shape),
            info.shape.len(),
            info.model_shape()
        )));
    }
    for (d, (&given, &model)) in shape.iter().zip(&info.shape).enumerate() {
        if given < 0 {
            return Err(mismatch(format!(
                "dimension {d} is {given} (shape {}); dimensions must be >= 0",
                shape_str(shape)
            )));
        }
        if model >= 0 && given != model {
            return Err(mismatch(format!(
                "dimension {d} is {given} (shape {}), the model expects {model} (shape {})",
                shape_str(shape),
                info.model_shape()
            )));
        }
    }
    let too_large = || {
        mismatch(format!(
            "shape {} of {et} is too large to address",
            shape_str(shape)
        ))
    };
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
        .ok_or_else(too_large)?;
    let (len, addr) = match payload {
        Payload::Strings(n) if et == ElementType::String => {
            if n != count {
                return Err(mismatch(format!(
                    "{n} strings given, shape {} of string needs {count}",
                    shape_str(shape)
                )));
            }
            return Ok(());
        }
        Payload::Strings(_) => {
            return Err(Error::internal(format!(
                "{what} '{name}': strings given for element type {et}"
            )))
        }
        Payload::Bytes { .. } if et == ElementType::String => {
            return Err(Error::invalid_argument(format!(
                "{what} '{name}': a string tensor must be given as strings, not bytes"
            )))
        }
        Payload::Bytes { len, addr } => (len, addr),
    };
    let need = et.byte_size(count).ok_or_else(too_large)?;
    if len != need {
        let packed = if et.size().is_none() { " (packed)" } else { "" };
        return Err(mismatch(format!(
            "{len} bytes given, shape {} of {et} needs {need} bytes{packed}",
            shape_str(shape)
        )));
    }
    let elem = et.size().unwrap_or(1);
    if need != 0 && !addr.is_multiple_of(elem) {
        return Err(Error::invalid_argument(format!(
            "{what} '{name}': the data address is not aligned to {elem} bytes ({et} elements)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto};

    /// `y = w` for a 64 KiB initializer `w`: over a 1000-byte "protobuf limit", so the spill path is taken.
    fn model() -> crate::onnx::Model {
        let n = 16 * 1024;
        let w = TensorProto {
            name: Some("w".into()),
            dims: vec![n],
            data_type: Some(crate::onnx::DataType::Float.onnx()),
            raw_data: Some((0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()),
            ..Default::default()
        };
        crate::onnx::Model::from_proto(ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17),
            }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: vec![NodeProto {
                    op_type: Some("Identity".into()),
                    input: vec!["w".into()],
                    output: vec!["y".into()],
                    ..Default::default()
                }],
                initializer: vec![w],
                output: vec![crate::onnx::proto::ValueInfoProto {
                    name: Some("y".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn a_model_over_the_protobuf_limit_gets_a_session_through_a_spilled_copy() {
        // Needs ONNX Runtime: IPUFLOW_ORT_LIBRARY (as every runtime test); the lead's suite sets it.
        let env =
            Environment::current_or_default().expect("ONNX Runtime (set IPUFLOW_ORT_LIBRARY)");
        let m = model();
        let s = Session::from_model_limited(&env, &m, &SessionOptions::default(), 1000).unwrap();
        let dir = s._spill.as_ref().expect("spilled").0.clone();
        assert!(dir.join("model.onnx.data").is_file());
        let outs = s.run(&[]).unwrap();
        let out = outs[0].as_bytes();
        assert_eq!(out.len(), 16 * 1024 * 4);
        assert_eq!(&out[4..8], &1f32.to_le_bytes());
        drop(s);
        assert!(!dir.exists(), "the spilled copy outlived the session");
    }
}
