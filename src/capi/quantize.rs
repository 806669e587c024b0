//! `ipuflow_quantize`: a float model, a `ipuflow_quant_config` and `ipuflow_calib_data` in, a QDQ model and its
//! report out.

use std::ffi::{c_char, c_void};

// The Rust paths of 0.1 (`capi::quantize::ipuflow_quant_config_*`, calibration data, images) keep working after
// the split into one file per handle type.
use super::model::{ipuflow_model, ModelHandle};
pub use super::{calib_data::*, image::*, quant_config::*};
use super::{guard, ipuflow_status, out_ptr, string_to_c, write_out, BoxHandle};
use crate::quant::{quantize, Hooks, Progress, Stage};

/// Quantization stage: ONNX Runtime BASIC optimization, Constant/BatchNorm folding, type inference.
pub const IPUFLOW_QUANT_STAGE_PREPARE: i32 = 0;
/// Quantization stage: calibration runs (`done` of `total` batches).
pub const IPUFLOW_QUANT_STAGE_CALIBRATE: i32 = 1;
/// Quantization stage: QDQ emission.
pub const IPUFLOW_QUANT_STAGE_QUANTIZE: i32 = 2;
/// Quantization stage: loading the result into ONNX Runtime as a check.
pub const IPUFLOW_QUANT_STAGE_VERIFY: i32 = 3;

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
        let mut source = d.source()?;
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
        // Made only when asked for: an owned string written nowhere would leak.
        if !out_report_json.is_null() {
            write_out(out_report_json, string_to_c(report.to_json()));
        }
        write_out(out_model, ipuflow_model::into_raw(ModelHandle::new(q)));
        Ok(())
    })
}
