//! Quantization through the C ABI: `ipuflow_quant_config` (a preset plus overrides), `ipuflow_calib_data` (where the
//! calibration batches come from: in-memory tensors, a TensorRT-style pull callback, a directory of .npy files, a
//! folder of images) and `ipuflow_quantize`.

#![allow(non_camel_case_types)]
// Each export's safety contract is its C documentation (pointer validity, ownership, thread safety).
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;

use super::model::{ipuflow_model, ModelHandle};
use super::tensor::ipuflow_tensor_view;
use super::{
    arg_path, arg_str, box_handle, enum_arg, guard, guard_value, invalid_enum, ipuflow_status,
    null_arg, out_ptr, string_to_c, write_out, BoxHandle,
};
use crate::error::{Error, ErrorKind, Result};
use crate::quant::data::{
    Batch, CalibrationSource, ChannelOrder, ImageFolder, ImagePreprocess, Layout, NpyDir,
    OwnedTensor, TensorSamples,
};
use crate::quant::{quantize, CalibMethod, Hooks, Preset, Progress, QuantConfig, QuantType, Stage};
use crate::runtime::{ElementType, TensorInfo, TensorRef};

// ------------------------------------------------------------------------------------------------ constants

/// Preset: symmetric activations (uint8, zero point 128) and INT8 weights, power-of-two scales chosen by least
/// weight error, per-tensor weights (the NPU CNN recipe). Every preset also equalizes Conv chains and corrects biases.
pub const IPUFLOW_PRESET_XINT8: i32 = 0;
/// Preset: INT8 activations, symmetric INT8 weights, float scales.
pub const IPUFLOW_PRESET_A8W8: i32 = 1;
/// Preset: INT16 activations, symmetric INT8 weights.
pub const IPUFLOW_PRESET_A16W8: i32 = 2;
/// Preset: for ONNX Runtime's CPU provider: U8 asymmetric activations, per-channel S8 weights, QDQ shaped for its
/// integer kernels.
pub const IPUFLOW_PRESET_CPU: i32 = 3;

/// Calibration method: the observed minimum and maximum (`ipuflow_quant_config_set_calib_method`).
pub const IPUFLOW_CALIB_METHOD_MINMAX: i32 = 0;
/// Calibration method: clip magnitudes at a percentile of |x| (the `percentile` argument).
pub const IPUFLOW_CALIB_METHOD_PERCENTILE: i32 = 1;
/// Calibration method: TensorRT's entropy calibration (minimum KL divergence).
pub const IPUFLOW_CALIB_METHOD_ENTROPY: i32 = 2;
/// Calibration method: the range (or power-of-two shift) minimising the expected error on the preset's grid.
pub const IPUFLOW_CALIB_METHOD_MINMSE: i32 = 3;
/// Calibration method: the extremes, power-of-two scales rounded up so nothing clips.
pub const IPUFLOW_CALIB_METHOD_NONOVERFLOW: i32 = 4;

/// Quantized type: unsigned 8-bit (the number is the ONNX element type, as IPUFLOW_ELEMENT_TYPE_UINT8).
pub const IPUFLOW_QUANT_TYPE_UINT8: i32 = 2;
/// Quantized type: signed 8-bit.
pub const IPUFLOW_QUANT_TYPE_INT8: i32 = 3;
/// Quantized type: unsigned 16-bit.
pub const IPUFLOW_QUANT_TYPE_UINT16: i32 = 4;
/// Quantized type: signed 16-bit.
pub const IPUFLOW_QUANT_TYPE_INT16: i32 = 5;

/// Image layout: NCHW if the model input has 3 channels at axis 1, NHWC if at axis 3.
pub const IPUFLOW_LAYOUT_AUTO: i32 = 0;
/// Image layout: channels first.
pub const IPUFLOW_LAYOUT_NCHW: i32 = 1;
/// Image layout: channels last.
pub const IPUFLOW_LAYOUT_NHWC: i32 = 2;

/// Channel order red, green, blue.
pub const IPUFLOW_CHANNEL_ORDER_RGB: i32 = 0;
/// Channel order blue, green, red (OpenCV-trained models).
pub const IPUFLOW_CHANNEL_ORDER_BGR: i32 = 1;

/// Quantization stage: ONNX Runtime BASIC optimization, Constant/BatchNorm folding, type inference.
pub const IPUFLOW_QUANT_STAGE_PREPARE: i32 = 0;
/// Quantization stage: calibration runs (`done` of `total` batches).
pub const IPUFLOW_QUANT_STAGE_CALIBRATE: i32 = 1;
/// Quantization stage: QDQ emission.
pub const IPUFLOW_QUANT_STAGE_QUANTIZE: i32 = 2;
/// Quantization stage: loading the result into ONNX Runtime as a check.
pub const IPUFLOW_QUANT_STAGE_VERIFY: i32 = 3;

/// `ipuflow_calib_next_fn` return value: the batch was filled.
pub const IPUFLOW_CALIB_BATCH: i32 = 1;
/// `ipuflow_calib_next_fn` return value: no more batches.
pub const IPUFLOW_CALIB_DONE: i32 = 0;

fn preset_from(v: i32) -> Result<Preset> {
    Ok(match v {
        IPUFLOW_PRESET_XINT8 => Preset::Xint8,
        IPUFLOW_PRESET_A8W8 => Preset::A8W8,
        IPUFLOW_PRESET_A16W8 => Preset::A16W8,
        IPUFLOW_PRESET_CPU => Preset::Cpu,
        _ => {
            return Err(invalid_enum(
                "preset",
                v,
                "IPUFLOW_PRESET_XINT8/A8W8/A16W8/CPU (0..3)",
            ))
        }
    })
}

fn qtype_from(v: i32, name: &str) -> Result<QuantType> {
    Ok(match v {
        IPUFLOW_QUANT_TYPE_UINT8 => QuantType::U8,
        IPUFLOW_QUANT_TYPE_INT8 => QuantType::S8,
        IPUFLOW_QUANT_TYPE_UINT16 => QuantType::U16,
        IPUFLOW_QUANT_TYPE_INT16 => QuantType::S16,
        _ => {
            return Err(invalid_enum(
                name,
                v,
                "IPUFLOW_QUANT_TYPE_UINT8/INT8/UINT16/INT16 (2..5)",
            ))
        }
    })
}

fn flag(v: i32, name: &str) -> Result<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(invalid_enum(name, v, "0 or 1")),
    }
}

// ------------------------------------------------------------------------------------------------ config

/// Quantization settings: a preset and the changes made to it.
///
/// Created by `ipuflow_quant_config_create`, freed with `ipuflow_quant_config_free`. Setters change it; a
/// `const ipuflow_quant_config*` may be read by several threads at once (e.g. by concurrent `ipuflow_quantize`
/// calls), but a setter must not race with any other call on the same config.
pub struct ipuflow_quant_config {
    _private: [u8; 0],
}

box_handle!(ipuflow_quant_config => QuantConfig);

/// Creates a configuration from a preset (`IPUFLOW_PRESET_*`).
///
/// - `out`: receives the new config on success; free it with `ipuflow_quant_config_free`.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (unknown preset). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_create(
    preset: i32,
    out: *mut *mut ipuflow_quant_config,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let p = preset_from(preset)?;
        write_out(out, ipuflow_quant_config::into_raw(QuantConfig::preset(p)));
        Ok(())
    })
}

/// Frees a configuration. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_free(config: *mut ipuflow_quant_config) {
    guard_value((), || ipuflow_quant_config::free(config))
}

/// Sets the type of quantized activations (`IPUFLOW_QUANT_TYPE_*`).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM. Not thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_activation_type(
    config: *mut ipuflow_quant_config,
    qtype: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.activation_type = qtype_from(qtype, "qtype")?;
        Ok(())
    })
}

/// Sets the type of quantized weights (`IPUFLOW_QUANT_TYPE_*`).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM. Not thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_weight_type(
    config: *mut ipuflow_quant_config,
    qtype: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.weight_type = qtype_from(qtype, "qtype")?;
        Ok(())
    })
}

/// One scale per output channel for Conv/ConvTranspose/Gemm/MatMul weights (1) or one per tensor (0).
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (other values). Not
/// thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_per_channel(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.per_channel = flag(value, "value")?;
        Ok(())
    })
}

/// Symmetric activations (zero point 0 for signed types).
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (other values). Not
/// thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_activation_symmetric(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.activation_symmetric = flag(value, "value")?;
        Ok(())
    })
}

/// Symmetric weights (the presets' default) or asymmetric.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (other values). Not
/// thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_weight_symmetric(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.weight_symmetric = flag(value, "value")?;
        Ok(())
    })
}

/// Round every scale to a power of two (the X1 NPU requires it).
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (other values). Not
/// thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_power_of_two(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.power_of_two_scales = flag(value, "value")?;
        Ok(())
    })
}

/// Give all inputs of a Concat and its output one shared scale.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (other values). Not
/// thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_concat_shared_scale(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.concat_shared_scale = flag(value, "value")?;
        Ok(())
    })
}

/// Shape the QDQ graph for ONNX Runtime's CPU fusions (QLinear / integer kernels).
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM (other values). Not
/// thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_cpu_fusion(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.cpu_fusion = flag(value, "value")?;
        Ok(())
    })
}

/// Calibrates with MinMax and a moving average of the per-batch extremes with constant `constant` (in (0, 1)), or
/// with the global extremes when `constant` is 0.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ARGUMENT (outside [0, 1), or NaN). Not thread-safe
/// on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_moving_average(
    config: *mut ipuflow_quant_config,
    constant: f32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.method = if constant == 0.0 {
            CalibMethod::MinMax {
                moving_average: None,
            }
        } else if constant > 0.0 && constant < 1.0 {
            CalibMethod::MinMax {
                moving_average: Some(constant),
            }
        } else {
            return Err(Error::invalid_argument(format!(
                "moving average constant {constant} must be 0 (off) or in (0, 1)"
            )));
        };
        Ok(())
    })
}

/// Sets how activation ranges are calibrated (`IPUFLOW_CALIB_METHOD_*`); replaces any moving average.
///
/// - `percentile`: used by IPUFLOW_CALIB_METHOD_PERCENTILE only, in (0, 100] (e.g. 99.999); ignored otherwise.
///
/// Every method but a moving average works on streaming histograms: memory does not grow with the number of
/// samples and the result does not depend on batch size or order. Errors: IPUFLOW_STATUS_NULL_ARGUMENT,
/// IPUFLOW_STATUS_INVALID_ENUM (unknown method), IPUFLOW_STATUS_INVALID_ARGUMENT (percentile outside (0, 100] or
/// NaN, with IPUFLOW_CALIB_METHOD_PERCENTILE). The config is unchanged on error. Not thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_calib_method(
    config: *mut ipuflow_quant_config,
    method: i32,
    percentile: f32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let m = match method {
            IPUFLOW_CALIB_METHOD_MINMAX => CalibMethod::MinMax {
                moving_average: None,
            },
            IPUFLOW_CALIB_METHOD_PERCENTILE => {
                if !(percentile > 0.0 && percentile <= 100.0) {
                    return Err(Error::invalid_argument(format!(
                        "percentile {percentile} must be in (0, 100]"
                    )));
                }
                CalibMethod::Percentile { percentile }
            }
            IPUFLOW_CALIB_METHOD_ENTROPY => CalibMethod::Entropy,
            IPUFLOW_CALIB_METHOD_MINMSE => CalibMethod::MinMse,
            IPUFLOW_CALIB_METHOD_NONOVERFLOW => CalibMethod::NonOverflow,
            _ => {
                return Err(invalid_enum(
                    "method",
                    method,
                    "IPUFLOW_CALIB_METHOD_MINMAX/PERCENTILE/ENTROPY/MINMSE/NONOVERFLOW (0..4)",
                ))
            }
        };
        c.method = m;
        Ok(())
    })
}

/// Uses the calibration cache file `path` (UTF-8), or none when `path` is NULL (the default).
///
/// During `ipuflow_quantize`: when the file exists and was made for the same (prepared) model, the same collection
/// settings and the same calibration samples (in any order or batching), the model is not run and every tensor's
/// range is chosen from the cached histograms with this config's method and preset; the calibration data is still
/// read once, to check it. When the file does not exist, calibration runs and writes it atomically. A cache made
/// for another model, settings or data fails with IPUFLOW_STATUS_CALIB_CACHE_STALE, a file that is not a cache of
/// this version (or is damaged) with IPUFLOW_STATUS_CALIB_CACHE_INVALID; it is never overwritten: delete it to
/// recalibrate. The cache holds histograms, so one cache serves every method and preset.
///
/// Errors (of this call): IPUFLOW_STATUS_NULL_ARGUMENT (config), IPUFLOW_STATUS_INVALID_UTF8,
/// IPUFLOW_STATUS_INVALID_ARGUMENT (empty path). Not thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_calib_cache(
    config: *mut ipuflow_quant_config,
    path: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let p = if path.is_null() {
            None
        } else {
            Some(arg_path(path, "path")?)
        };
        c.calib_cache = p;
        Ok(())
    })
}

/// Leaves the node named `node_name` in float. Adding a name twice is harmless.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty
/// name). Not thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_exclude_node(
    config: *mut ipuflow_quant_config,
    node_name: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let n = nonempty(arg_str(node_name, "node_name")?, "node_name")?;
        if !c.exclude_nodes.iter().any(|x| x == n) {
            c.exclude_nodes.push(n.to_string());
        }
        Ok(())
    })
}

/// Leaves every node of op type `op_type` (e.g. "Softmax") in float.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty).
/// Not thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_exclude_op_type(
    config: *mut ipuflow_quant_config,
    op_type: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let n = nonempty(arg_str(op_type, "op_type")?, "op_type")?;
        if !c.exclude_op_types.iter().any(|x| x == n) {
            c.exclude_op_types.push(n.to_string());
        }
        Ok(())
    })
}

/// Quantizes the activation tensor `tensor_name` with `qtype` (`IPUFLOW_QUANT_TYPE_*`) instead of the
/// configuration's activation type.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty
/// name), IPUFLOW_STATUS_INVALID_ENUM. Not thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_tensor_type(
    config: *mut ipuflow_quant_config,
    tensor_name: *const c_char,
    qtype: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let n = nonempty(arg_str(tensor_name, "tensor_name")?, "tensor_name")?;
        let t = qtype_from(qtype, "qtype")?;
        c.tensor_overrides.entry(n.to_string()).or_default().qtype = Some(t);
        Ok(())
    })
}

/// Uses the range [`min`, `max`] for the activation tensor `tensor_name` instead of the calibrated one.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty
/// name, non-finite bounds or `min > max`). Not thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_tensor_range(
    config: *mut ipuflow_quant_config,
    tensor_name: *const c_char,
    min: f32,
    max: f32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let n = nonempty(arg_str(tensor_name, "tensor_name")?, "tensor_name")?;
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(Error::invalid_argument(format!(
                "range ({min}, {max}) for tensor '{n}' must be finite with min <= max"
            )));
        }
        c.tensor_overrides.entry(n.to_string()).or_default().range = Some((min, max));
        Ok(())
    })
}

fn nonempty<'a>(s: &'a str, name: &str) -> Result<&'a str> {
    if s.is_empty() {
        Err(Error::invalid_argument(format!(
            "argument '{name}' is empty"
        )))
    } else {
        Ok(s)
    }
}

// ------------------------------------------------------------------------------------------------ calibration data

/// One calibration batch being filled by an `ipuflow_calib_next_fn` callback. Valid only during that call; only
/// the thread running the callback may use it.
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
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_batch_input_count(
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

/// The name of model input `index`; the string stays valid until the callback returns.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_OUT_OF_RANGE.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_batch_input_name(
    batch: *const ipuflow_calib_batch,
    index: usize,
    out: *mut *const c_char,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let b = ipuflow_calib_batch::try_ref(batch, "batch")?;
        let n = b.input_names.get(index).ok_or_else(|| {
            Error::new(
                ErrorKind::OutOfRange,
                format!(
                    "input index {index} is out of range: the model has {} inputs",
                    b.input_names.len()
                ),
            )
        })?;
        write_out(out, n.as_ptr());
        Ok(())
    })
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
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_batch_set_input(
    batch: *mut ipuflow_calib_batch,
    name: *const c_char,
    view: *const ipuflow_tensor_view,
) -> ipuflow_status {
    guard(|| {
        let b = ipuflow_calib_batch::try_mut(batch, "batch")?;
        let n = nonempty(arg_str(name, "name")?, "name")?;
        let v = view.as_ref().ok_or_else(|| null_arg("view"))?;
        let (et, shape) = view_parts(v, n)?;
        let item = (
            n.to_string(),
            et,
            shape.to_vec(),
            v.data as *const u8,
            v.byte_size,
        );
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

/// Checks a view: element type, shape pointer, byte size against the shape, data pointer.
unsafe fn view_parts<'a>(v: &ipuflow_tensor_view, name: &str) -> Result<(ElementType, &'a [i64])> {
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
    let shape: &[i64] = if v.rank == 0 {
        &[]
    } else if v.shape.is_null() {
        return Err(null_arg(&format!("'{name}' shape")));
    } else {
        std::slice::from_raw_parts(v.shape, v.rank)
    };
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
    if v.data.is_null() && v.byte_size != 0 {
        return Err(null_arg(&format!("'{name}' data")));
    }
    Ok((et, shape))
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
        if names.is_null() {
            return Err(null_arg("names"));
        }
        if tensors.is_null() {
            return Err(null_arg("tensors"));
        }
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
        for i in 0..count {
            let n = nonempty(
                arg_str(*names.add(i), &format!("names[{i}]"))?,
                &format!("names[{i}]"),
            )?;
            if sample.iter().any(|(x, _): &(String, OwnedTensor)| x == n) {
                return Err(Error::invalid_argument(format!(
                    "input '{n}' appears twice in one sample"
                )));
            }
            let v = &*tensors.add(i);
            let (et, shape) = view_parts(v, n)?;
            let bytes = if v.byte_size == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(v.data as *const u8, v.byte_size).to_vec()
            };
            sample.push((n.to_string(), OwnedTensor::from_bytes(et, shape, bytes)?));
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
#[no_mangle]
pub unsafe extern "C" fn ipuflow_calib_data_create_from_npy_dir(
    dir: *const c_char,
    out: *mut *mut ipuflow_calib_data,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let p = arg_path(dir, "dir")?;
        NpyDir::open(&p)?;
        write_out(out, ipuflow_calib_data::into_raw(CalibData::Npy(p)));
        Ok(())
    })
}

/// How images become input tensors. Fill it with `ipuflow_image_preprocess_init` first (the defaults are the
/// anchor protocol), then change fields. Pixel values are converted as `(pixel - mean[c]) / std[c]` for float
/// inputs; uint8 inputs get the raw pixels.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ipuflow_image_preprocess {
    /// The model input the images feed; NULL: the model's only input. Copied at creation.
    pub input_name: *const c_char,
    /// Crop height and width; 0: the model input's spatial size (which must then be fixed).
    pub height: u32,
    pub width: u32,
    /// Shorter side after resizing (bilinear): > 0 that size; 0: stretch straight to the crop size;
    /// -1: `round(min(crop) * 256 / 224)` (the default).
    pub resize_shorter: i32,
    /// Per channel (in the channel order of the tensor), mean and standard deviation.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// `IPUFLOW_LAYOUT_*`.
    pub layout: i32,
    /// `IPUFLOW_CHANNEL_ORDER_*`.
    pub channel_order: i32,
}

/// Fills `pre` with the defaults: only input, model size, shorter side 256/224 of the crop, mean 127, std 128,
/// layout from the model, RGB.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_image_preprocess_init(
    pre: *mut ipuflow_image_preprocess,
) -> ipuflow_status {
    guard(|| {
        let pre = out_ptr(pre, "pre")?;
        write_out(
            pre,
            ipuflow_image_preprocess {
                input_name: std::ptr::null(),
                height: 0,
                width: 0,
                resize_shorter: -1,
                mean: [127.0; 3],
                std: [128.0; 3],
                layout: IPUFLOW_LAYOUT_AUTO,
                channel_order: IPUFLOW_CHANNEL_ORDER_RGB,
            },
        );
        Ok(())
    })
}

unsafe fn image_preprocess(p: &ipuflow_image_preprocess) -> Result<ImagePreprocess> {
    let input = if p.input_name.is_null() {
        None
    } else {
        Some(nonempty(arg_str(p.input_name, "pre->input_name")?, "pre->input_name")?.to_string())
    };
    let size = match (p.height, p.width) {
        (0, 0) => None,
        (0, _) | (_, 0) => {
            return Err(Error::invalid_argument(format!(
                "pre->height ({}) and pre->width ({}) must both be 0 (model size) or both > 0",
                p.height, p.width
            )))
        }
        (h, w) => Some((h, w)),
    };
    let resize_shorter = match p.resize_shorter {
        -1 => None,
        n if n >= 0 => Some(n as u32),
        n => {
            return Err(Error::invalid_argument(format!(
                "pre->resize_shorter {n} must be -1, 0 or a size"
            )))
        }
    };
    let layout = match p.layout {
        IPUFLOW_LAYOUT_AUTO => Layout::Auto,
        IPUFLOW_LAYOUT_NCHW => Layout::Nchw,
        IPUFLOW_LAYOUT_NHWC => Layout::Nhwc,
        v => {
            return Err(invalid_enum(
                "pre->layout",
                v,
                "IPUFLOW_LAYOUT_AUTO/NCHW/NHWC (0..2)",
            ))
        }
    };
    let order = match p.channel_order {
        IPUFLOW_CHANNEL_ORDER_RGB => ChannelOrder::Rgb,
        IPUFLOW_CHANNEL_ORDER_BGR => ChannelOrder::Bgr,
        v => {
            return Err(invalid_enum(
                "pre->channel_order",
                v,
                "IPUFLOW_CHANNEL_ORDER_RGB/BGR (0, 1)",
            ))
        }
    };
    let pre = ImagePreprocess {
        input,
        size,
        resize_shorter,
        mean: p.mean,
        std: p.std,
        layout,
        order,
        flip_horizontal: false,
    };
    pre.validate()?;
    Ok(pre)
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
    guard(|| {
        let out = out_ptr(out, "out")?;
        let p = arg_path(dir, "dir")?;
        let pre = match pre.as_ref() {
            Some(x) => image_preprocess(x)?,
            None => ImagePreprocess::default(),
        };
        ImageFolder::open(&p, pre.clone())?;
        write_out(out, ipuflow_calib_data::into_raw(CalibData::Images(p, pre)));
        Ok(())
    })
}

/// Frees calibration data (in-memory samples included). NULL is a no-op.
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

// ------------------------------------------------------------------------------------------------ quantize

/// Reports progress of `ipuflow_quantize`: `stage` is an `IPUFLOW_QUANT_STAGE_*`, `done` of `total` units (batches
/// for IPUFLOW_QUANT_STAGE_CALIBRATE; 0 then 1 for the other stages; `total` -1 when unknown). Called on the
/// thread running `ipuflow_quantize`. Return 0 to continue, non-zero to cancel: `ipuflow_quantize` then returns
/// IPUFLOW_STATUS_CANCELLED.
pub type ipuflow_quant_progress_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, stage: i32, done: usize, total: i64) -> i32>;

/// Quantizes `model` to a QDQ model: prepares it (ONNX Runtime BASIC optimization, BatchNorm and Constant
/// folding), calibrates it on `data`, writes Q/DQ nodes as `config` says and checks that ONNX Runtime loads the
/// result. Needs ONNX Runtime (`ipuflow_runtime_load`, or found automatically).
///
/// - `model`, `config`: not modified. `data`: read from its start (its position is reset).
/// - `progress`, `progress_user`: optional (NULL: no reports).
/// - `out_model`: receives the quantized model on success; free it with `ipuflow_model_free`, save it with
///   `ipuflow_model_save` (atomic). Nothing is written to disk by this call.
/// - `out_report_json`: NULL, or receives a JSON report (per node: quantized or why not; per tensor: type, range,
///   scale, zero point) on success, freed with `ipuflow_string_free`.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT; IPUFLOW_STATUS_INVALID_ARGUMENT (inconsistent config);
/// IPUFLOW_STATUS_UNSUPPORTED (already quantized, unsupported opset); IPUFLOW_STATUS_CALIBRATION (no data);
/// IPUFLOW_STATUS_TENSOR_MISMATCH (a sample with an unknown input name, wrong type or shape: the message names the
/// tensor, both values and the batch); IPUFLOW_STATUS_CALLBACK (the data callback failed: its message);
/// IPUFLOW_STATUS_CANCELLED; IPUFLOW_STATUS_FILE_* (data files); IPUFLOW_STATUS_RUNTIME*;
/// IPUFLOW_STATUS_NON_FINITE (an input whose calibration data holds no finite value, or NaN/Inf in a weight or bias
/// of a node to quantize: the message names the tensor; exclude the node to keep it float);
/// IPUFLOW_STATUS_NOTHING_QUANTIZED (every node would stay float: an error, not a float model returned as quantized;
/// the message gives the reasons); IPUFLOW_STATUS_LIMIT_EXCEEDED (a size over a limit of docs/SECURITY.md).
/// Output parameters are untouched on error. Thread-safe for distinct `data` objects.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quantize(
    model: *const ipuflow_model,
    config: *const ipuflow_quant_config,
    data: *mut ipuflow_calib_data,
    progress: ipuflow_quant_progress_fn,
    progress_user: *mut c_void,
    out_model: *mut *mut ipuflow_model,
    out_report_json: *mut *mut c_char,
) -> ipuflow_status {
    guard(|| {
        let out_model = out_ptr(out_model, "out_model")?;
        let m = ipuflow_model::try_ref(model, "model")?;
        let cfg = ipuflow_quant_config::try_ref(config, "config")?;
        let d = ipuflow_calib_data::try_mut(data, "data")?;
        let mut source: Box<dyn CalibrationSource + '_> = match d {
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
        };
        let mut report_fn = |p: &Progress| -> bool {
            let Some(f) = progress else { return true };
            let stage = match p.stage {
                Stage::Prepare => IPUFLOW_QUANT_STAGE_PREPARE,
                Stage::Calibrate => IPUFLOW_QUANT_STAGE_CALIBRATE,
                Stage::Quantize => IPUFLOW_QUANT_STAGE_QUANTIZE,
                Stage::Verify => IPUFLOW_QUANT_STAGE_VERIFY,
            };
            let total = p.total.map_or(-1, |t| t as i64);
            unsafe { f(progress_user, stage, p.done, total) == 0 }
        };
        let hooks = Hooks {
            progress: Some(&mut report_fn),
            cancel: None,
        };
        let (q, report) = quantize(&m.model, cfg, &mut *source, hooks)?;
        drop(source);
        if !out_report_json.is_null() {
            write_out(out_report_json, string_to_c(report.to_json()));
        }
        write_out(out_model, ipuflow_model::into_raw(ModelHandle::new(q)));
        Ok(())
    })
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

/// Loads one image file and preprocesses it exactly as `ipuflow_calib_data_create_from_image_dir` does, into a
/// caller buffer of floats (batch 1), e.g. to evaluate a model on the same preprocessing.
///
/// - `pre`: `height` and `width` must be set (> 0); `IPUFLOW_LAYOUT_AUTO` means NCHW; `input_name` is ignored.
/// - `flip_horizontal`: 0 or 1 (mirror left-right after cropping).
/// - `out`, `out_count`: exactly `3 * height * width` floats, written in the layout asked for.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (sizes,
/// mean/std), IPUFLOW_STATUS_INVALID_ENUM, IPUFLOW_STATUS_BUFFER_TOO_SMALL (`out_count` differs from
/// 3 * height * width), IPUFLOW_STATUS_FILE_NOT_FOUND, IPUFLOW_STATUS_FILE_READ (unreadable or undecodable image).
/// `out` is written only on success. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_image_load(
    path: *const c_char,
    pre: *const ipuflow_image_preprocess,
    flip_horizontal: i32,
    out: *mut f32,
    out_count: usize,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let p = arg_path(path, "path")?;
        let pre_c = pre.as_ref().ok_or_else(|| null_arg("pre"))?;
        let mut pre = image_preprocess(&ipuflow_image_preprocess {
            input_name: std::ptr::null(),
            ..*pre_c
        })?;
        pre.flip_horizontal = flag(flip_horizontal, "flip_horizontal")?;
        let (h, w) = pre.size.ok_or_else(|| {
            Error::invalid_argument("pre->height and pre->width must be set (> 0)")
        })?;
        let need = 3usize * h as usize * w as usize;
        if out_count != need {
            return Err(Error::new(
                ErrorKind::BufferTooSmall,
                format!("out_count is {out_count}; a {h}x{w} image needs exactly {need} floats"),
            ));
        }
        let layout = if pre.layout == Layout::Nhwc {
            Layout::Nhwc
        } else {
            Layout::Nchw
        };
        let shape = if layout == Layout::Nhwc {
            vec![1, h as i64, w as i64, 3]
        } else {
            vec![1, 3, h as i64, w as i64]
        };
        let info = TensorInfo {
            name: "image".into(),
            kind: crate::runtime::ValueKind::Tensor,
            element_type_code: 1,
            shape,
            dim_names: vec![String::new(); 4],
        };
        let r = ImagePreprocess { layout, ..pre }.resolve(std::slice::from_ref(&info))?;
        let t = r.load(&p)?;
        let dst = std::slice::from_raw_parts_mut(out as *mut u8, need * 4);
        dst.copy_from_slice(&t.data);
        Ok(())
    })
}
