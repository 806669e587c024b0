//! The CPU plan's C surface (issue 14): how a quantized model runs when its session is on the CPU.

// Each export's safety contract is its C documentation (pointer validity, ownership, thread safety).
#![allow(clippy::missing_safety_doc)]

use super::session_options::ipuflow_session_options;
use super::{enum_arg, guard, ipuflow_status, BoxHandle};
use crate::runtime::FallbackExecution;

/// Fallback execution (the default): a QDQ model whose session runs on the CPU (device CPU, or an AUTO/PREFER
/// fallback) is rewritten in memory so ONNX Runtime's CPU provider runs it with integer kernels (8-bit
/// activations; every quantized tensor within 1 LSB of the model as written when its inputs agree), or in float
/// with the quantized weights (16-bit activations, which the CPU provider cannot run as integers).
pub const IPUFLOW_FALLBACK_EXECUTION_FAST: i32 = 0;
/// Fallback execution: only the exact integer rewrites; 16-bit QDQ runs as written (bit-faithful, slow).
pub const IPUFLOW_FALLBACK_EXECUTION_FAITHFUL: i32 = 1;
/// Fallback execution: no rewrite, ONNX Runtime gets the model as written.
pub const IPUFLOW_FALLBACK_EXECUTION_AS_WRITTEN: i32 = 2;

/// Chooses how a quantized model runs when the session runs on the CPU: `IPUFLOW_FALLBACK_EXECUTION_FAST`
/// (default), `_FAITHFUL` or `_AS_WRITTEN`. The model file is never changed: the rewrite is kept in memory for the
/// process and, when the VitisAI provider option `cache_dir` is set, written under `<cache_dir>/ipuflow-cpu-plan/`.
/// The plan that ran and what it changed are in `ipuflow_session_placement_json` (`session.cpuPlan`). A session on
/// the NPU is not affected.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`options`), IPUFLOW_STATUS_INVALID_ENUM (`mode`); nothing is changed on
/// error. Not thread-safe (setters).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_session_options_set_fallback_execution(
    options: *mut ipuflow_session_options,
    mode: i32,
) -> ipuflow_status {
    guard(|| {
        let o = unsafe { ipuflow_session_options::try_mut(options, "options") }?;
        o.fallback_execution = enum_arg::<FallbackExecution>(
            mode,
            "mode",
            "IPUFLOW_FALLBACK_EXECUTION_FAST (0), IPUFLOW_FALLBACK_EXECUTION_FAITHFUL (1), \
             IPUFLOW_FALLBACK_EXECUTION_AS_WRITTEN (2)",
        )?;
        Ok(())
    })
}
