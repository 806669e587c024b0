//! Fixing dynamic input shapes from C: for quantization, sessions and the pre-flight (the CLI's `--input-shape`).
//!
//! All three go through `crate::onnx::apply_input_shapes`, so a shape given here means the same everywhere.

#![allow(non_camel_case_types)]
// Each export's safety contract is its C documentation (pointer validity, ownership, thread safety).
#![allow(clippy::missing_safety_doc)]

use std::ffi::c_char;

use super::model::{ipuflow_model, ModelHandle};
use super::quantize::ipuflow_quant_config;
use super::session_options::ipuflow_session_options;
use super::{arg_str, guard, ipuflow_status, out_ptr, write_out, BoxHandle};
use crate::error::Result;
use crate::onnx::{apply_input_shapes, InputShape, Model};

/// Reads `(input_name, dims, rank)` into an [`InputShape`], checking every pointer and size.
unsafe fn shape_arg(
    input_name: *const c_char,
    dims: *const i64,
    rank: usize,
) -> Result<InputShape> {
    let name = arg_str(input_name, "input_name")?;
    crate::limits::check_rank("argument 'rank'", rank)?;
    let dims: Vec<i64> = if rank == 0 {
        Vec::new()
    } else if dims.is_null() {
        return Err(super::null_arg("dims"));
    } else {
        std::slice::from_raw_parts(dims, rank).to_vec()
    };
    InputShape::new(name, dims)
}

/// Adds `shape` to `list`, replacing an earlier shape for the same input.
fn set(list: &mut Vec<InputShape>, shape: InputShape) {
    match list.iter_mut().find(|s| s.name == shape.name) {
        Some(s) => *s = shape,
        None => list.push(shape),
    }
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
        let shape = shape_arg(input_name, dims, rank)?;
        set(&mut c.input_shapes, shape);
        Ok(())
    })
}

/// Fixes the shape of the dynamic graph input `input_name` to the `rank` sizes at `dims` (each >= 1) for sessions
/// created with these options: the model is rewritten before ONNX Runtime sees it (the NPU compiles fixed shapes
/// only). Calling it again for the same input replaces the shape. Checked against the model at session creation:
/// an unknown input, another rank, or a size contradicting a fixed one is IPUFLOW_STATUS_INVALID_ARGUMENT there.
///
/// - `dims` may be NULL only when `rank` is 0; it is copied.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (empty name,
/// a size below 1), IPUFLOW_STATUS_LIMIT_EXCEEDED (rank over 64). Not thread-safe on the same options.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_input_shape(
    options: *mut ipuflow_session_options,
    input_name: *const c_char,
    dims: *const i64,
    rank: usize,
) -> ipuflow_status {
    guard(|| {
        let o = ipuflow_session_options::try_mut(options, "options")?;
        let shape = shape_arg(input_name, dims, rank)?;
        set(&mut o.input_shapes, shape);
        Ok(())
    })
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
        let shape = shape_arg(input_name, dims, rank)?;
        let out = out_ptr(out, "out")?;
        let mut proto = m.model.proto().clone();
        apply_input_shapes(&mut proto, std::slice::from_ref(&shape))?;
        // External data was read in when `model` was loaded: the copy is self-contained.
        let copy = Model::from_proto(proto);
        write_out(out, ipuflow_model::into_raw(ModelHandle::new(copy)));
        Ok(())
    })
}
