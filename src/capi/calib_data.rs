//! `ipuflow_calib_data` (where the calibration batches of `ipuflow_quantize` come from: in-memory tensors, a
//! TensorRT-style pull callback, a directory of .npy files, a folder of images) and `ipuflow_calib_batch` (the batch
//! a callback fills).

use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;

use super::image::{image_preprocess, ipuflow_image_preprocess};
use super::tensor::ipuflow_tensor_view;
use super::{
    arg_array, arg_nonempty_str, arg_path, arg_str, arg_wide_path, box_handle, check_index,
    enum_arg, guard, guard_value, ipuflow_status, null_arg, out_ptr, view_bytes, view_shape,
    write_out, BoxHandle,
};
use crate::error::{Error, ErrorKind, Result};
use crate::quant::data::{
    Batch, CalibrationSource, ImageFolder, ImagePreprocess, NpyDir, OwnedTensor, TensorSamples,
};
use crate::runtime::{ElementType, TensorInfo, TensorRef};

/// `ipuflow_calib_next_fn` return value: the batch was filled.
pub const IPUFLOW_CALIB_BATCH: i32 = 1;
/// `ipuflow_calib_next_fn` return value: no more batches.
pub const IPUFLOW_CALIB_DONE: i32 = 0;

/// One calibration batch being filled by an `ipuflow_calib_next_fn` callback. Valid only during that call; only
/// the thread running the callback may use it.
///
/// Owned by ipuflow: the host never creates or frees one.
pub struct ipuflow_calib_batch {
    _private: [u8; 0],
}

/// What the callback sees through `ipuflow_calib_batch`.
pub(crate) struct BatchState {
    input_names: Vec<CString>,
    /// (name, element type, shape, data pointer, byte size): host memory, borrowed until the next callback.
    set: Vec<(String, ElementType, Vec<i64>, *const u8, usize)>,
    error: Option<String>,
}

box_handle!(ipuflow_calib_batch => BatchState);

/// Fills the next calibration batch (TensorRT `getBatch` style).
///
/// Called by `ipuflow_quantize` on the calling thread, once per batch, with the `user` pointer given to
/// `ipuflow_calib_data_create_from_callback`. The callback describes each model input with
/// `ipuflow_calib_batch_set_input` (the memory is the host's and must stay valid and unchanged until the callback
/// is called again or `ipuflow_quantize` returns), then returns:
/// - `IPUFLOW_CALIB_BATCH` (1): the batch is filled;
/// - `IPUFLOW_CALIB_DONE` (0): there is no more data (nothing set is used);
/// - a negative value: failure; quantization stops with IPUFLOW_STATUS_CALLBACK and the message given to
///   `ipuflow_calib_batch_set_error` (or a generic one naming the value).
///
/// The callback must not call `ipuflow_quantize` again with the same calibration data.
pub type ipuflow_calib_next_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, batch: *mut ipuflow_calib_batch) -> i32>;

/// Number of model inputs a batch must provide (callable from inside `ipuflow_calib_next_fn` only).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success. Thread safety: call it
/// only on the thread running the callback, during the callback.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_batch_get_input_count(
    batch: *const ipuflow_calib_batch,
    out: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let b = ipuflow_calib_batch::try_ref(batch, "batch")?;
        write_out(out, b.input_names.len());
        Ok(())
    })
}

/// Alias of `ipuflow_calib_batch_get_input_count` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_calib_batch_get_input_count`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_batch_input_count(
    batch: *const ipuflow_calib_batch,
    out: *mut usize,
) -> ipuflow_status {
    ipuflow_calib_batch_get_input_count(batch, out)
}

/// The name of model input `index`; the string stays valid until the callback returns.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_OUT_OF_RANGE.
///
/// Thread safety: call it only on the thread running the callback, during the callback.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_batch_get_input_name(
    batch: *const ipuflow_calib_batch,
    index: usize,
    out: *mut *const c_char,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let b = ipuflow_calib_batch::try_ref(batch, "batch")?;
        let i = check_index(index, b.input_names.len(), "input", "the model")?;
        let n = &b.input_names[i];
        write_out(out, n.as_ptr());
        Ok(())
    })
}

/// Alias of `ipuflow_calib_batch_get_input_name` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_calib_batch_get_input_name`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_batch_input_name(
    batch: *const ipuflow_calib_batch,
    index: usize,
    out: *mut *const c_char,
) -> ipuflow_status {
    ipuflow_calib_batch_get_input_name(batch, index, out)
}

/// Gives the tensor for input `name` in this batch. The tensor's memory (`view->shape`, `view->data`) is borrowed,
/// not copied: it must stay valid and unchanged until the callback is called again or `ipuflow_quantize` returns.
/// Setting the same name again replaces it. Names, types and shapes are checked against the model when the batch
/// runs (IPUFLOW_STATUS_TENSOR_MISMATCH from `ipuflow_quantize`, naming the tensor and both values).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (also NULL `view->shape` with rank > 0, NULL `view->data` with bytes),
/// IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ENUM (element type), IPUFLOW_STATUS_TENSOR_MISMATCH
/// (`byte_size` does not match the shape and type, a negative dimension), IPUFLOW_STATUS_LIMIT_EXCEEDED (`rank`
/// over 64, checked before `shape` is read).
///
/// Thread safety: call it only on the thread running the callback, during the callback.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_batch_set_input(
    batch: *mut ipuflow_calib_batch,
    name: *const c_char,
    view: *const ipuflow_tensor_view,
) -> ipuflow_status {
    guard(|| {
        let b = ipuflow_calib_batch::try_mut(batch, "batch")?;
        let n = arg_nonempty_str(name, "name")?;
        let v = view.as_ref().ok_or_else(|| null_arg("view"))?;
        let (et, shape, data) = view_parts(v, n)?;
        let item = (n.to_string(), et, shape.to_vec(), data.as_ptr(), data.len());
        match b.set.iter_mut().find(|s| s.0 == n) {
            Some(s) => *s = item,
            None => b.set.push(item),
        }
        Ok(())
    })
}

/// Records why the callback is about to fail (return a negative value next). The message is copied.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8.
///
/// Thread safety: call it only on the thread running the callback, during the callback.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_batch_set_error(
    batch: *mut ipuflow_calib_batch,
    message: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let b = ipuflow_calib_batch::try_mut(batch, "batch")?;
        b.error = Some(arg_str(message, "message")?.to_string());
        Ok(())
    })
}

/// Checks a view: element type, rank limit, shape, byte size against the shape, data pointer.
unsafe fn view_parts<'a>(
    v: &ipuflow_tensor_view,
    name: &str,
) -> Result<(ElementType, &'a [i64], &'a [u8])> {
    let et: ElementType = enum_arg(
        v.element_type,
        &format!("'{name}' element_type"),
        "an IPUFLOW_ELEMENT_TYPE_* value",
    )?;
    let size = et.size().ok_or_else(|| {
        Error::unsupported(format!(
            "tensor '{name}': string tensors cannot be calibration data"
        ))
    })?;
    // The model's rank is not known here: the limit at least keeps a wild `rank` from reading far past the array.
    crate::limits::check_rank(&format!("tensor '{name}'"), v.rank)?;
    let shape = view_shape(v.shape, v.rank, &|| format!("'{name}'"))?;
    let count = shape.iter().try_fold(1usize, |acc, &d| {
        usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    });
    let need = count.and_then(|c| c.checked_mul(size));
    if need != Some(v.byte_size) {
        return Err(Error::new(
            ErrorKind::TensorMismatch,
            format!(
                "tensor '{name}': byte_size is {} but a {et} tensor of shape {shape:?} needs {}",
                v.byte_size,
                need.map_or("an impossible size".to_string(), |n| n.to_string())
            ),
        ));
    }
    let data = view_bytes(v.data, v.byte_size, &|| format!("'{name}'"))?;
    Ok((et, shape, data))
}

/// Where calibration batches come from; rewound at the start of every `ipuflow_quantize`.
pub(crate) enum CalibData {
    Tensors(TensorSamples),
    Callback {
        next: unsafe extern "C" fn(*mut c_void, *mut ipuflow_calib_batch) -> i32,
        user: *mut c_void,
        count: Option<usize>,
    },
    Npy(PathBuf),
    Images(PathBuf, ImagePreprocess),
}

/// Calibration data for `ipuflow_quantize`: in-memory samples, a pull callback, a directory of .npy files or a
/// folder of images.
///
/// Created by one of the `ipuflow_calib_data_create*` functions, freed with `ipuflow_calib_data_free`. Each
/// `ipuflow_quantize` call reads it from the start. Not thread-safe: one call at a time per object (a callback's
/// `user` pointer is used on the thread calling `ipuflow_quantize`).
pub struct ipuflow_calib_data {
    _private: [u8; 0],
}

box_handle!(ipuflow_calib_data => CalibData);

/// Creates an empty in-memory set of calibration samples; add samples with `ipuflow_calib_data_add_sample`.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: `*out` receives a new object owned by the caller (free it with `ipuflow_calib_data_free`); untouched
/// on failure.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_data_create(
    out: *mut *mut ipuflow_calib_data,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        write_out(
            out,
            ipuflow_calib_data::into_raw(CalibData::Tensors(TensorSamples::new())),
        );
        Ok(())
    })
}

/// Adds one sample (one batch): `count` named tensors, copied. `names[i]` names the model input `tensors[i]` feeds.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (count 0,
/// empty or repeated name, data not created by `ipuflow_calib_data_create`), IPUFLOW_STATUS_INVALID_ENUM
/// (element type), IPUFLOW_STATUS_TENSOR_MISMATCH (byte size vs shape), IPUFLOW_STATUS_LIMIT_EXCEEDED (a rank over
/// 64, checked before the shape is read). Names, types and shapes are checked against
/// the model by `ipuflow_quantize`. Nothing is added on error. Not thread-safe on the same data.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_data_add_sample(
    data: *mut ipuflow_calib_data,
    names: *const *const c_char,
    tensors: *const ipuflow_tensor_view,
    count: usize,
) -> ipuflow_status {
    guard(|| {
        let d = ipuflow_calib_data::try_mut(data, "data")?;
        let names = arg_array(names, count, "names")?;
        let tensors = arg_array(tensors, count, "tensors")?;
        if count == 0 {
            return Err(Error::invalid_argument(
                "a calibration sample needs at least one tensor (count is 0)",
            ));
        }
        let CalibData::Tensors(samples) = d else {
            return Err(Error::invalid_argument(
                "samples can only be added to calibration data created by ipuflow_calib_data_create",
            ));
        };
        let mut sample = Vec::with_capacity(count);
        for (i, (&np, v)) in names.iter().zip(tensors).enumerate() {
            let n = arg_nonempty_str(np, &format!("names[{i}]"))?;
            if sample.iter().any(|(x, _): &(String, OwnedTensor)| x == n) {
                return Err(Error::invalid_argument(format!(
                    "input '{n}' appears twice in one sample"
                )));
            }
            let (et, shape, bytes) = view_parts(v, n)?;
            sample.push((
                n.to_string(),
                OwnedTensor::from_bytes(et, shape, bytes.to_vec())?,
            ));
        }
        samples.push(sample);
        Ok(())
    })
}

/// Creates calibration data pulled from a callback (see `ipuflow_calib_next_fn`).
///
/// - `next`: the callback (not NULL); `user`: passed to it as is (may be NULL).
/// - `batch_count`: the number of batches it will give, for progress reports, or -1 if unknown.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (`batch_count` < -1). Thread-safe.
///
/// Ownership: `*out` receives a new object owned by the caller (free it with `ipuflow_calib_data_free`); untouched
/// on failure.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_data_create_from_callback(
    next: ipuflow_calib_next_fn,
    user: *mut c_void,
    batch_count: i64,
    out: *mut *mut ipuflow_calib_data,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let next = next.ok_or_else(|| null_arg("next"))?;
        let count = match batch_count {
            -1 => None,
            n if n >= 0 => Some(n as usize),
            n => {
                return Err(Error::invalid_argument(format!(
                    "batch_count {n} must be -1 (unknown) or >= 0"
                )))
            }
        };
        write_out(
            out,
            ipuflow_calib_data::into_raw(CalibData::Callback { next, user, count }),
        );
        Ok(())
    })
}

/// Creates calibration data from a directory of .npy files (versions 1-3, C order, little-endian; dtypes f2 f4 f8
/// i1 i2 i4 i8 u1 u2 u4 u8 b1, matching the model input's type): one file per batch, sorted by name, for a
/// single-input model; or one subdirectory per batch holding `<input name>.npy` files.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_FILE_NOT_FOUND,
/// IPUFLOW_STATUS_FILE_READ, IPUFLOW_STATUS_CALIBRATION (no .npy file and no subdirectory). Files are read during
/// `ipuflow_quantize`; errors there name the file. Thread-safe.
///
/// Ownership: `*out` receives a new object owned by the caller (free it with `ipuflow_calib_data_free`); untouched
/// on failure.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_data_create_from_npy_dir(
    dir: *const c_char,
    out: *mut *mut ipuflow_calib_data,
) -> ipuflow_status {
    guard(|| from_npy_dir(arg_path(dir, "dir")?, out))
}

/// Same as `ipuflow_calib_data_create_from_npy_dir` with a NUL-terminated UTF-16 path (`wchar_t*` on Windows).
///
/// Errors: as `ipuflow_calib_data_create_from_npy_dir` (IPUFLOW_STATUS_INVALID_UTF8: invalid UTF-16). Thread-safe.
///
/// Ownership: `*out` receives a new object owned by the caller (free it with `ipuflow_calib_data_free`); untouched
/// on failure.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_data_create_from_npy_dir_w(
    dir: *const u16,
    out: *mut *mut ipuflow_calib_data,
) -> ipuflow_status {
    guard(|| from_npy_dir(arg_wide_path(dir, "dir")?, out))
}

unsafe fn from_npy_dir(p: PathBuf, out: *mut *mut ipuflow_calib_data) -> Result<()> {
    let out = out_ptr(out, "out")?;
    NpyDir::open(&p)?;
    write_out(out, ipuflow_calib_data::into_raw(CalibData::Npy(p)));
    Ok(())
}

/// Creates calibration data from a folder of JPEG/PNG images (one image per batch, sorted by file name).
///
/// - `pre`: preprocessing (copied, `input_name` included); NULL: the defaults of `ipuflow_image_preprocess_init`.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_FILE_NOT_FOUND,
/// IPUFLOW_STATUS_FILE_READ, IPUFLOW_STATUS_CALIBRATION (no image in the folder), IPUFLOW_STATUS_INVALID_ARGUMENT /
/// IPUFLOW_STATUS_INVALID_ENUM (bad preprocessing values: a zero crop, a std whose inverse is not finite),
/// IPUFLOW_STATUS_LIMIT_EXCEEDED (a crop or resize side over 8192). Images are decoded during `ipuflow_quantize`;
/// errors there name the file (a truncated JPEG is IPUFLOW_STATUS_FILE_READ). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_data_create_from_image_dir(
    dir: *const c_char,
    pre: *const ipuflow_image_preprocess,
    out: *mut *mut ipuflow_calib_data,
) -> ipuflow_status {
    guard(|| from_image_dir(arg_path(dir, "dir")?, pre, out))
}

/// Same as `ipuflow_calib_data_create_from_image_dir` with a NUL-terminated UTF-16 path (`wchar_t*` on Windows).
///
/// Errors: as `ipuflow_calib_data_create_from_image_dir` (IPUFLOW_STATUS_INVALID_UTF8: invalid UTF-16).
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_data_create_from_image_dir_w(
    dir: *const u16,
    pre: *const ipuflow_image_preprocess,
    out: *mut *mut ipuflow_calib_data,
) -> ipuflow_status {
    guard(|| from_image_dir(arg_wide_path(dir, "dir")?, pre, out))
}

unsafe fn from_image_dir(
    p: PathBuf,
    pre: *const ipuflow_image_preprocess,
    out: *mut *mut ipuflow_calib_data,
) -> Result<()> {
    let out = out_ptr(out, "out")?;
    let pre = match pre.as_ref() {
        Some(x) => image_preprocess(x)?,
        None => ImagePreprocess::default(),
    };
    ImageFolder::open(&p, pre.clone())?;
    write_out(out, ipuflow_calib_data::into_raw(CalibData::Images(p, pre)));
    Ok(())
}

impl CalibData {
    /// The batches of this data from its start, for one `ipuflow_quantize` call.
    pub(crate) fn source(&mut self) -> Result<Box<dyn CalibrationSource + '_>> {
        Ok(match self {
            CalibData::Tensors(t) => {
                t.rewind();
                Box::new(RewoundSamples(t))
            }
            CalibData::Callback { next, user, count } => Box::new(CallbackSource {
                next: *next,
                user: *user,
                count: *count,
                state: Box::new(BatchState {
                    input_names: Vec::new(),
                    set: Vec::new(),
                    error: None,
                }),
                calls: 0,
            }),
            CalibData::Npy(p) => Box::new(NpyDir::open(p)?),
            CalibData::Images(p, pre) => Box::new(ImageFolder::open(p, pre.clone())?),
        })
    }
}

/// Frees calibration data (in-memory samples included). NULL is a no-op.
///
/// Never fails (returns nothing; a panic inside is contained). Not thread-safe: no other call may use the object at
/// the same time.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_data_free(data: *mut ipuflow_calib_data) {
    guard_value((), || ipuflow_calib_data::free(data))
}

/// The callback source: calls the host for each batch and borrows the memory it describes.
struct CallbackSource {
    next: unsafe extern "C" fn(*mut c_void, *mut ipuflow_calib_batch) -> i32,
    user: *mut c_void,
    count: Option<usize>,
    state: Box<BatchState>,
    calls: usize,
}

impl CalibrationSource for CallbackSource {
    fn len_hint(&self) -> Option<usize> {
        self.count
    }
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>> {
        if self.state.input_names.len() != inputs.len() {
            self.state.input_names = inputs
                .iter()
                .map(|i| CString::new(i.name.replace('\0', "")).unwrap_or_default())
                .collect();
        }
        self.state.set.clear();
        self.state.error = None;
        let ptr = &mut *self.state as *mut BatchState as *mut ipuflow_calib_batch;
        let rc = unsafe { (self.next)(self.user, ptr) };
        let k = self.calls;
        self.calls += 1;
        match rc {
            IPUFLOW_CALIB_DONE => Ok(None),
            IPUFLOW_CALIB_BATCH => {
                // SAFETY: the host promised the memory stays valid and unchanged until its next call, which cannot
                // happen while the returned batch (borrowing `self`) is alive.
                let tensors = self
                    .state
                    .set
                    .iter()
                    .map(|(n, et, shape, data, len)| {
                        let bytes: &[u8] = if *len == 0 { &[] } else { unsafe { std::slice::from_raw_parts(*data, *len) } };
                        (n.clone(), TensorRef::from_bytes(*et, shape, bytes))
                    })
                    .collect();
                Ok(Some(Batch { tensors, origin: format!("callback batch {k}") }))
            }
            n if n < 0 => Err(Error::new(
                ErrorKind::Callback,
                self.state.error.take().unwrap_or_else(|| format!("the calibration callback failed (returned {n}) at batch {k}")),
            )),
            n => Err(Error::new(
                ErrorKind::Callback,
                format!("the calibration callback returned {n} at batch {k}; expected 1 (batch), 0 (done) or a negative error"),
            )),
        }
    }
}

/// In-memory samples borrowed from the calibration data object.
struct RewoundSamples<'a>(&'a mut TensorSamples);

impl CalibrationSource for RewoundSamples<'_> {
    fn len_hint(&self) -> Option<usize> {
        self.0.len_hint()
    }
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>> {
        self.0.next_batch(inputs)
    }
}
