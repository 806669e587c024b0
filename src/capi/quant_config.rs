//! `ipuflow_quant_config`: a quantization preset and the changes made to it (types, symmetry, calibration method,
//! cache, exclusions, per-tensor overrides).

use std::ffi::{c_char, c_void};

use super::model::{ipuflow_model, ModelHandle};
use super::{
    arg_array, arg_nonempty_str, box_handle, flag, guard, guard_value, input_shape_arg,
    invalid_enum, ipuflow_status, opt_path, opt_wide_path, out_ptr, set_input_shape, write_out,
    BoxHandle,
};
use crate::error::{Error, Result};
use crate::quant::{
    BiasType, CalibMethod, ExcludeSubgraph, Preset, QuantConfig, QuantType, WeightRange,
};

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

/// Bias type: INT32 at the accumulator's scale (input scale × weight scale), exact; what ONNX Runtime's CPU kernels
/// fuse. The number is the ONNX element type (IPUFLOW_ELEMENT_TYPE_INT32).
pub const IPUFLOW_BIAS_TYPE_INT32: i32 = 6;
/// Bias type: INT8 with a power-of-two scale of its own, the smallest keeping every value within ±127 (AMD's XINT8
/// format). The number is the ONNX element type (IPUFLOW_ELEMENT_TYPE_INT8).
pub const IPUFLOW_BIAS_TYPE_INT8: i32 = 3;

/// Weight range: each weight's (per-channel) minimum and maximum; nothing is clipped.
pub const IPUFLOW_WEIGHT_RANGE_MINMAX: i32 = 0;
/// Weight range: for symmetric per-tensor or power-of-two weights, the clipping range (and power-of-two shift)
/// minimising the weight's own squared quantization error; per-channel float scales keep MinMax.
pub const IPUFLOW_WEIGHT_RANGE_MINMSE: i32 = 1;

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
///
/// Never fails (returns nothing; a panic inside is contained). Not thread-safe: no other call may use the object at
/// the same time.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_free(config: *mut ipuflow_quant_config) {
    guard_value((), || ipuflow_quant_config::free(config))
}

/// Sets the type of quantized activations (`IPUFLOW_QUANT_TYPE_*`).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_ENUM. Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_calib_cache(
    config: *mut ipuflow_quant_config,
    path: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.calib_cache = opt_path(path, "path")?;
        Ok(())
    })
}

/// Same as `ipuflow_quant_config_set_calib_cache` with a NUL-terminated UTF-16 path (`wchar_t*` on Windows); NULL
/// for no cache.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (config), IPUFLOW_STATUS_INVALID_UTF8 (invalid UTF-16),
/// IPUFLOW_STATUS_INVALID_ARGUMENT (empty path). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_calib_cache_w(
    config: *mut ipuflow_quant_config,
    path: *const u16,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.calib_cache = opt_wide_path(path, "path")?;
        Ok(())
    })
}

/// Leaves the node named `node_name` in float. Adding a name twice is harmless.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty
/// name). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_exclude_node(
    config: *mut ipuflow_quant_config,
    node_name: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let n = arg_nonempty_str(node_name, "node_name")?;
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_exclude_op_type(
    config: *mut ipuflow_quant_config,
    op_type: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let n = arg_nonempty_str(op_type, "op_type")?;
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
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_tensor_type(
    config: *mut ipuflow_quant_config,
    tensor_name: *const c_char,
    qtype: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let n = arg_nonempty_str(tensor_name, "tensor_name")?;
        let t = qtype_from(qtype, "qtype")?;
        c.tensor_overrides.entry(n.to_string()).or_default().qtype = Some(t);
        Ok(())
    })
}

/// Uses the range [`min`, `max`] for the activation tensor `tensor_name` instead of the calibrated one.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty
/// name, non-finite bounds or `min > max`). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept (strings are copied).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_tensor_range(
    config: *mut ipuflow_quant_config,
    tensor_name: *const c_char,
    min: f32,
    max: f32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let n = arg_nonempty_str(tensor_name, "tensor_name")?;
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(Error::invalid_argument(format!(
                "range ({min}, {max}) for tensor '{n}' must be finite with min <= max"
            )));
        }
        c.tensor_overrides.entry(n.to_string()).or_default().range = Some((min, max));
        Ok(())
    })
}

/// Leaves in float every node whose name matches the glob `pattern`: `*` matches any run of characters (none
/// included), `?` one character, anything else itself (case-sensitive), e.g. `"decode_*"`. Adding a pattern twice is
/// harmless.
///
/// - `config`: the configuration to change (borrowed).
/// - `pattern`: UTF-8, NUL-terminated, not empty; copied.
///
/// A pattern that matches no node of the model makes `ipuflow_quantize` fail with IPUFLOW_STATUS_INVALID_ARGUMENT
/// naming it (before calibration).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`, `pattern`), IPUFLOW_STATUS_INVALID_UTF8,
/// IPUFLOW_STATUS_INVALID_ARGUMENT (empty pattern). On error the config is unchanged. Not thread-safe on the same
/// config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_exclude_pattern(
    config: *mut ipuflow_quant_config,
    pattern: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let p = unsafe { arg_nonempty_str(pattern, "pattern") }?;
        if !c.exclude_patterns.iter().any(|x| x == p) {
            c.exclude_patterns.push(p.to_string());
        }
        Ok(())
    })
}

/// Leaves in float the subgraph from the start nodes to the end nodes: every node on a path (along tensor edges)
/// from one of the `start_count` nodes named in `start_nodes` to one of the `end_count` nodes named in `end_nodes`,
/// both ends included, e.g. a detector's post-processing.
///
/// - `config`: the configuration to change (borrowed).
/// - `start_nodes`, `end_nodes`: arrays of UTF-8, NUL-terminated, non-empty node names; copied. Neither count may
///   be 0.
///
/// A name that is not a node of the model, or ends that no path joins, make `ipuflow_quantize` fail with
/// IPUFLOW_STATUS_INVALID_ARGUMENT naming the subgraph (before calibration).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`, an array or one of its entries), IPUFLOW_STATUS_INVALID_UTF8,
/// IPUFLOW_STATUS_INVALID_ARGUMENT (a count of 0, an empty name). On error the config is unchanged. Not
/// thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_exclude_subgraph(
    config: *mut ipuflow_quant_config,
    start_nodes: *const *const c_char,
    start_count: usize,
    end_nodes: *const *const c_char,
    end_count: usize,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let start = unsafe { names(start_nodes, start_count, "start_nodes") }?;
        let end = unsafe { names(end_nodes, end_count, "end_nodes") }?;
        let sg = ExcludeSubgraph { start, end };
        if !c.exclude_subgraphs.contains(&sg) {
            c.exclude_subgraphs.push(sg);
        }
        Ok(())
    })
}

/// `count` node names from the C array `p` (argument `what`): non-NULL, UTF-8, non-empty, at least one.
unsafe fn names(p: *const *const c_char, count: usize, what: &str) -> Result<Vec<String>> {
    if count == 0 {
        return Err(Error::invalid_argument(format!(
            "argument '{what}' holds no name (count 0)"
        )));
    }
    let ptrs = unsafe { arg_array(p, count, what) }?;
    ptrs.iter()
        .enumerate()
        .map(|(i, &s)| Ok(unsafe { arg_nonempty_str(s, &format!("{what}[{i}]")) }?.to_string()))
        .collect()
}

/// Fixes the shape of the dynamic graph input `input_name` to the `rank` sizes at `dims` (each >= 1) before the
/// model is prepared for quantization (e.g. a detector's `images` to 1,3,640,640). Calling it again for the same
/// input replaces the shape. Checked against the model when `ipuflow_quantize` runs: an unknown input, another
/// rank, or a size contradicting a fixed one is IPUFLOW_STATUS_INVALID_ARGUMENT there, naming the input.
///
/// - `dims` may be NULL only when `rank` is 0 (a scalar); it is copied.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty name,
/// a size below 1), IPUFLOW_STATUS_LIMIT_EXCEEDED (rank over 64). Not thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_input_shape(
    config: *mut ipuflow_quant_config,
    input_name: *const c_char,
    dims: *const i64,
    rank: usize,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let shape = input_shape_arg(input_name, dims, rank)?;
        set_input_shape(&mut c.input_shapes, shape);
        Ok(())
    })
}

// The recipe switches: which float-model rewrites and weight refinements run around calibration, and the bias format.

/// Sets the integer type of Conv/ConvTranspose/Gemm biases: `IPUFLOW_BIAS_TYPE_INT32` or `IPUFLOW_BIAS_TYPE_INT8`.
///
/// Default per preset: INT8 for IPUFLOW_PRESET_XINT8 (AMD's format), INT32 for A8W8, A16W8 and CPU.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (another value; the config is then
/// unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_bias_type(
    config: *mut ipuflow_quant_config,
    bias_type: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.bias_type = match bias_type {
            IPUFLOW_BIAS_TYPE_INT32 => BiasType::Int32,
            IPUFLOW_BIAS_TYPE_INT8 => BiasType::Int8,
            _ => {
                return Err(invalid_enum(
                    "bias_type",
                    bias_type,
                    "IPUFLOW_BIAS_TYPE_INT32 (6) or IPUFLOW_BIAS_TYPE_INT8 (3)",
                ))
            }
        };
        Ok(())
    })
}

/// Sets how weight quantization ranges are chosen: `IPUFLOW_WEIGHT_RANGE_MINMAX` or `IPUFLOW_WEIGHT_RANGE_MINMSE`.
///
/// Default per preset: MINMSE for IPUFLOW_PRESET_XINT8 (power-of-two weights gain from the search), MINMAX for
/// A8W8, A16W8 and CPU.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (another value; the config is then
/// unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_weight_range(
    config: *mut ipuflow_quant_config,
    range: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.weight_range = match range {
            IPUFLOW_WEIGHT_RANGE_MINMAX => WeightRange::MinMax,
            IPUFLOW_WEIGHT_RANGE_MINMSE => WeightRange::MinMse,
            _ => {
                return Err(invalid_enum(
                    "range",
                    range,
                    "IPUFLOW_WEIGHT_RANGE_MINMAX (0) or IPUFLOW_WEIGHT_RANGE_MINMSE (1)",
                ))
            }
        };
        Ok(())
    })
}

/// Cross-layer equalization (1) of Conv->(Relu)->Conv chains on the float model before calibration, or none (0).
///
/// Default: on for every preset.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_equalization(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.equalize = flag(value, "value")?;
        Ok(())
    })
}

/// With equalization on: replace `Clip(0, 6)` (Relu6) between two equalizable convolutions by `Relu` (1), so the
/// chain can be equalized, or keep it and leave that chain unequalized (0). This changes the float model (values
/// above 6 are no longer clipped); the report names each node replaced.
///
/// Default: off for every preset.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_replace_clip6_relu(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.replace_clip6_relu = flag(value, "value")?;
        Ok(())
    })
}

/// Empirical bias correction (1): the mean output error the weight quantization causes, measured on the
/// calibration data, is subtracted from each Conv/Gemm bias; or none (0).
///
/// Default: on for every preset.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_bias_correction(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.bias_correction = flag(value, "value")?;
        Ok(())
    })
}

/// Learned weight rounding (1): each Conv/Gemm weight is rounded to minimise its layer's output error on the
/// calibration data (second-order error compensation), instead of to the nearest grid point (0). Same grid, same
/// format. It needs at least 16 calibration samples; with fewer it is skipped and the report says so.
///
/// Default: on for XINT8, A8W8 and A16W8; off for the CPU preset (per-channel weights leave it little to win).
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_learned_rounding(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.learned_rounding = flag(value, "value")?;
        Ok(())
    })
}

/// Sensitivity analysis (1): each quantized node is left float alone and the output SQNR against the float model
/// measured on the calibration samples (held in memory, up to 256 MiB); the report JSON of `ipuflow_quantize` then
/// has a `sensitivity` object (`layers`: `name`, `op_type`, `sqnr_db_if_float`, `gain_db`, most sensitive first).
/// Costs one emission and one CPU session per node. Or none (0). Implied by a mixed-precision target.
///
/// Default: off.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_sensitivity(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.mixed.sensitivity = flag(value, "value")?;
        Ok(())
    })
}

/// `None` for NaN (the setting cleared), else the value once `check` accepts it.
fn optional(
    value: f32,
    what: &str,
    check: impl Fn(f32) -> bool,
    range: &str,
) -> Result<Option<f32>> {
    if value.is_nan() {
        return Ok(None);
    }
    if !check(value) {
        return Err(Error::invalid_argument(format!(
            "{what} {value} must be {range} (or NaN to clear it)"
        )));
    }
    Ok(Some(value))
}

/// Mixed precision with a minimum output SQNR: after quantizing, the most sensitive nodes are raised one at a time
/// (16-bit activations where the NPU support table allows it for target X2, then float on the CPU) until the
/// worst output's SQNR against the float model, on the calibration samples, is at least `db`. The report JSON's
/// `mixed_precision` object lists each step (node, change, SQNR after, predicted NPU coverage) and whether the
/// target was met; when it cannot be met the best model found is returned (IPUFLOW_STATUS_OK) with `met: false`.
///
/// Default: none (NaN clears it).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ARGUMENT (infinite `db`; the config is
/// then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_target_sqnr(
    config: *mut ipuflow_quant_config,
    db: f32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.mixed.target_sqnr_db = optional(db, "target SQNR", f32::is_finite, "finite")?;
        Ok(())
    })
}

/// Mixed precision with a maximum top-1 agreement drop: as `ipuflow_quant_config_set_target_sqnr`, until the
/// first output's top-1 (argmax over its last axis) agrees with the float model's on at least 1 - `drop` of the
/// calibration samples' rows. Both targets may be set; both must then hold.
///
/// Default: none (NaN clears it).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ARGUMENT (`drop` outside [0, 1]; the
/// config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_max_agreement_drop(
    config: *mut ipuflow_quant_config,
    drop: f32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let in01 = |v: f32| (0.0..=1.0).contains(&v);
        c.mixed.max_agreement_drop = optional(drop, "max agreement drop", in01, "in [0, 1]")?;
        Ok(())
    })
}

/// Floor on the NPU coverage of mixed precision: a raise whose result the pre-flight predicts (target X2, fixed
/// to the calibration samples' shapes) to put less than `fraction` of the non-Q/DQ nodes on the NPU is not made.
/// A prediction, unlike the real placement a session checks. Used only with a mixed-precision target.
///
/// Default: none (NaN clears it).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ARGUMENT (`fraction` outside [0, 1];
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_min_npu_coverage(
    config: *mut ipuflow_quant_config,
    fraction: f32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let in01 = |v: f32| (0.0..=1.0).contains(&v);
        c.mixed.min_npu_coverage = optional(fraction, "min NPU coverage", in01, "in [0, 1]")?;
        Ok(())
    })
}

/// Output-aware activations (1): a Concat at the model's outputs that joins tensors of very different ranges (a
/// detector head's box coordinates in pixels beside [0, 1] scores) and small score outputs are left float with their
/// tail (on the CPU), with the reason in the report, instead of one scale rounding every score to 0; or none (0).
/// Recorded in the model's `ipuflow.settings` (`output_aware`).
///
/// Default: on for every preset.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_output_aware(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.output_aware = flag(value, "value")?;
        Ok(())
    })
}

/// AMD's NPU-mode rescales (1) or none (0): a Mul after AveragePool, GlobalAveragePool, ReduceMean and
/// HardSigmoid that reproduces the NPU's fixed-point division, and LeakyRelu's alpha rounded to a multiple of 1/256,
/// so the model computes what the NPU does (docs/xint8-format.md). Recorded in `ipuflow.settings` (`npu_mode`).
///
/// Default: on for XINT8, off for the other presets.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_npu_rescale(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.npu_rescale = flag(value, "value")?;
        Ok(())
    })
}

/// Sigmoid -> HardSigmoid(1/6, 0.5) for each quantized Sigmoid (1), as AMD's NPU mode can, so the NPU places it;
/// this changes the model's function (measured in docs/xint8-format.md), or none (0). Recorded in `ipuflow.settings`
/// (`npu_mode`).
///
/// Default: off for every preset.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_sigmoid_to_hard_sigmoid(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.sigmoid_to_hard_sigmoid = flag(value, "value")?;
        Ok(())
    })
}

/// Learned rounding's scale search (1) or none (0): per-tensor weights are also rounded on a few finer scales and
/// the grid with the lowest output error is kept (docs/quantization-sweep.md). Only with learned rounding on.
/// Recorded in `ipuflow.settings` (`rounding_scale_search`).
///
/// Default: off for every preset.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_rounding_scale_search(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.rounding.scale_search = flag(value, "value")?;
        Ok(())
    })
}

/// Learned rounding visits each weight row's inputs by decreasing second moment (1, GPTQ's act-order) or in
/// order (0). Only with learned rounding on. Recorded in `ipuflow.settings` (`rounding_act_order`).
///
/// Default: off for every preset.
///
/// `value`: 0 or 1. Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ENUM (other values;
/// the config is then unchanged). Not thread-safe on the same config.
///
/// Ownership: the value is stored in the object; no pointer argument is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_rounding_act_order(
    config: *mut ipuflow_quant_config,
    value: i32,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        c.rounding.act_order = flag(value, "value")?;
        Ok(())
    })
}

/// Computes the host's own metric of a candidate model for mixed precision (higher is better).
///
/// - `user`: the pointer given to `ipuflow_quant_config_set_metric_callback`, as is.
/// - `candidate`: the candidate quantized model, borrowed: valid only during this call, read-only, never to be
///   freed. The callback may run it (`ipuflow_session_create_from_model`), save it or read it with any
///   `const ipuflow_model*` function.
/// - `metric`: where to write the metric (must be finite).
/// - `message`, `message_size`: a buffer for a NUL-terminated reason when the callback fails (it may leave it
///   empty; longer text is cut).
///
/// Returns 0 when `*metric` is written, any other value on failure: `ipuflow_quantize` then stops with
/// IPUFLOW_STATUS_CALLBACK and the message. A non-finite metric stops it the same way.
///
/// Called by `ipuflow_quantize` on its calling thread, once per candidate, never concurrently within one
/// quantization. It may call back into ipuflow (sessions, models, tensors), but must not change or free the config
/// it was set on, nor the calibration data being read.
pub type ipuflow_quant_metric_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        candidate: *const ipuflow_model,
        metric: *mut f64,
        message: *mut c_char,
        message_size: usize,
    ) -> i32,
>;

/// The host's C callback and its user pointer.
struct CMetric {
    f: unsafe extern "C" fn(*mut c_void, *const ipuflow_model, *mut f64, *mut c_char, usize) -> i32,
    user: *mut c_void,
}

// SAFETY: the host's callback and its user pointer are called on whichever thread runs `ipuflow_quantize`; the
// setter's documentation makes thread safety of `user` the host's promise (as for the calibration callback).
unsafe impl Send for CMetric {}
unsafe impl Sync for CMetric {}

impl CMetric {
    /// Hands `model` to the host as a borrowed `ipuflow_model` and reads back its metric or its message.
    fn call(&self, model: &crate::onnx::Model) -> std::result::Result<f64, String> {
        let handle = ModelHandle::new(model.clone());
        let ptr = &handle as *const ModelHandle as *const ipuflow_model;
        let (mut metric, mut msg) = (f64::NAN, [0 as c_char; 512]);
        // SAFETY: `handle` outlives the call; `msg` is writable for its length.
        let rc = unsafe { (self.f)(self.user, ptr, &mut metric, msg.as_mut_ptr(), msg.len()) };
        if rc == 0 {
            return Ok(metric);
        }
        msg[msg.len() - 1] = 0;
        // SAFETY: NUL-terminated just above.
        let text = unsafe { std::ffi::CStr::from_ptr(msg.as_ptr()) }.to_string_lossy();
        Err(if text.is_empty() {
            format!("it returned {rc}")
        } else {
            format!("{text} (returned {rc})")
        })
    }
}

/// Mixed precision with the host's own metric: after quantizing, `callback` gets the all-quantized model, then each
/// candidate the loop tries (the most sensitive nodes raised one at a time, as for
/// `ipuflow_quant_config_set_target_sqnr`), and returns its metric (higher is better, e.g. top-1 agreement or mAP
/// on the host's own data); the loop stops once the metric is >= `target`, and undoes a change that lowers it. SQNR
/// and agreement targets, when also set, must hold too. The report JSON's `mixed_precision` object gives
/// `target_metric`, `baseline_metric`, `result_metric`, `metric_calls` and each step's `metric`; the model's
/// `ipuflow.settings` records that a host metric was used and its target. A callback failure or a non-finite
/// metric stops `ipuflow_quantize` with IPUFLOW_STATUS_CALLBACK (the message names the candidate).
///
/// - `callback`: see `ipuflow_quant_metric_fn`; NULL clears the host metric (`user` and `target` are then ignored).
/// - `user`: passed to `callback` as is (may be NULL); not owned by ipuflow, it must stay valid while the config
///   (or a copy made by a quantization) may call it.
///
/// Default: none.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`), IPUFLOW_STATUS_INVALID_ARGUMENT (non-finite `target`; the
/// config is then unchanged). Not thread-safe on the same config. Thread safety of the callback: it runs on the
/// thread calling `ipuflow_quantize`; a config used by concurrent `ipuflow_quantize` calls calls it from each of
/// their threads at once, so `user` must then be thread-safe.
///
/// Ownership: the function pointer and `user` are stored in the object; nothing else is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_set_metric_callback(
    config: *mut ipuflow_quant_config,
    callback: ipuflow_quant_metric_fn,
    user: *mut c_void,
    target: f64,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let Some(f) = callback else {
            c.mixed.host_metric = None;
            return Ok(());
        };
        if !target.is_finite() {
            return Err(Error::invalid_argument(format!(
                "host metric target {target} must be finite"
            )));
        }
        let host = CMetric { f, user };
        c.mixed.host_metric = Some(crate::quant::mixed::HostMetric::new(target, move |m| {
            host.call(m)
        }));
        Ok(())
    })
}
