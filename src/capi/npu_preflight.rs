//! `ipuflow_preflight`: the NPU pre-flight prediction for a model, without hardware.

use std::ffi::{c_char, CString};

use super::model::ipuflow_model;
use super::npu::{target_arg, target_to_c, IPUFLOW_DEVICE_CPU, IPUFLOW_DEVICE_NPU};
use super::{
    box_handle, c_string, check_index, guard, guard_value, ipuflow_status, out_ptr, string_to_c,
    write_out, BoxHandle,
};
use crate::ipu::preflight::{preflight, Device, Preflight};

/// The NPU pre-flight prediction for a model: which nodes the NPU would take and why every other node stays on the
/// CPU. Immutable: thread-safe to read; strings are owned by it until `ipuflow_preflight_free`.
pub struct ipuflow_preflight {
    _private: [u8; 0],
}

pub(crate) struct PreflightHandle {
    result: Preflight,
    strings: Vec<[CString; 4]>,
}

box_handle!(ipuflow_preflight => PreflightHandle);

/// The prediction for one node.
#[repr(C)]
pub struct ipuflow_node_prediction {
    /// The node's name, or "<op_type>#<index>" when it has none.
    pub name: *const c_char,
    pub op_type: *const c_char,
    /// "" for the default ONNX domain.
    pub domain: *const c_char,
    /// `IPUFLOW_DEVICE_NPU` or `IPUFLOW_DEVICE_CPU`.
    pub device: i32,
    /// Why: the rule that keeps it on the CPU, or what made it eligible for the NPU.
    pub reason: *const c_char,
    /// Whether the node would run on the NPU once the model is quantized.
    pub supported_if_quantized: bool,
}

/// Totals of a pre-flight prediction.
#[repr(C)]
pub struct ipuflow_preflight_summary {
    /// The target checked (`IPUFLOW_TARGET_*`).
    pub target: i32,
    /// Whether the model is a QDQ (quantized) model.
    pub quantized: bool,
    pub total_nodes: usize,
    pub npu_nodes: usize,
    pub cpu_nodes: usize,
    /// Predicted NPU subgraphs.
    pub subgraphs: usize,
    /// NPU nodes / all nodes, in percent.
    pub coverage_percent: f64,
    /// The same, counting neither QuantizeLinear nor DequantizeLinear nodes.
    pub coverage_excluding_qdq_percent: f64,
}

/// Predicts, without hardware, how the VitisAI EP would place `model` for `target` (`IPUFLOW_TARGET_X1`/`X2`):
/// per node NPU or CPU with the reason (op not supported at the node's precision, dynamic shape or batch > 1,
/// unquantized input in an INT8 flow, non-power-of-two scale on X1, fewer than two Conv nodes, more subgraphs than
/// the compiler accepts, linear-mode Resize). The support table is a best-known approximation kept in one data file.
///
/// `out` receives the prediction (free with `ipuflow_preflight_free`). Errors: NULL_ARGUMENT, INVALID_ENUM.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_run(
    model: *const ipuflow_model,
    target: i32,
    out: *mut *mut ipuflow_preflight,
) -> ipuflow_status {
    guard(|| {
        let m = ipuflow_model::try_ref(model, "model")?;
        let out = out_ptr(out, "out")?;
        let target = target_arg(target, "target")?;
        let result = preflight(m.model.proto(), target)?;
        let strings = result
            .nodes
            .iter()
            .map(|n| {
                [
                    c_string(&n.name),
                    c_string(&n.op_type),
                    c_string(&n.domain),
                    c_string(&n.reason),
                ]
            })
            .collect();
        write_out(
            out,
            ipuflow_preflight::into_raw(PreflightHandle { result, strings }),
        );
        Ok(())
    })
}

/// Frees a prediction. `preflight` may be NULL (no-op).
///
/// Never fails (returns nothing; a panic inside is contained). Not thread-safe: no other call may use the object at
/// the same time.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_free(preflight: *mut ipuflow_preflight) {
    guard_value((), || ipuflow_preflight::free(preflight))
}

/// The prediction's totals. Errors: NULL_ARGUMENT. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_get_summary(
    preflight: *const ipuflow_preflight,
    out: *mut ipuflow_preflight_summary,
) -> ipuflow_status {
    guard(|| {
        let p = &ipuflow_preflight::try_ref(preflight, "preflight")?.result;
        let out = out_ptr(out, "out")?;
        write_out(
            out,
            ipuflow_preflight_summary {
                target: target_to_c(p.target),
                quantized: p.quantized,
                total_nodes: p.total_nodes,
                npu_nodes: p.npu_nodes,
                cpu_nodes: p.cpu_nodes,
                subgraphs: p.subgraphs.len(),
                coverage_percent: p.coverage_percent,
                coverage_excluding_qdq_percent: p.coverage_excluding_qdq_percent,
            },
        );
        Ok(())
    })
}

/// Number of nodes with a prediction (`ipuflow_preflight_get_node` takes 0 to count - 1).
/// Errors: NULL_ARGUMENT. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_get_node_count(
    preflight: *const ipuflow_preflight,
    out_count: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let p = ipuflow_preflight::try_ref(preflight, "preflight")?;
        let out_count = out_ptr(out_count, "out_count")?;
        write_out(out_count, p.result.nodes.len());
        Ok(())
    })
}

/// Alias of `ipuflow_preflight_get_node_count` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_preflight_get_node_count`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_node_count(
    preflight: *const ipuflow_preflight,
    out_count: *mut usize,
) -> ipuflow_status {
    ipuflow_preflight_get_node_count(preflight, out_count)
}

/// The prediction for node `index`. Errors: NULL_ARGUMENT, OUT_OF_RANGE. Thread-safe.
///
/// Ownership: the strings in `*out` are owned by the prediction, valid until `ipuflow_preflight_free`.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_get_node(
    preflight: *const ipuflow_preflight,
    index: usize,
    out: *mut ipuflow_node_prediction,
) -> ipuflow_status {
    guard(|| {
        let p = ipuflow_preflight::try_ref(preflight, "preflight")?;
        let out = out_ptr(out, "out")?;
        let i = check_index(index, p.result.nodes.len(), "node", "the prediction")?;
        let (n, s) = (&p.result.nodes[i], &p.strings[i]);
        write_out(
            out,
            ipuflow_node_prediction {
                name: s[0].as_ptr(),
                op_type: s[1].as_ptr(),
                domain: s[2].as_ptr(),
                device: if n.device == Device::Npu {
                    IPUFLOW_DEVICE_NPU
                } else {
                    IPUFLOW_DEVICE_CPU
                },
                reason: s[3].as_ptr(),
                supported_if_quantized: n.supported_if_quantized,
            },
        );
        Ok(())
    })
}

/// The whole prediction as JSON (nodes, subgraphs, coverage, model-wide reasons); freed with
/// `ipuflow_string_free`. Errors: NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_to_json(
    preflight: *const ipuflow_preflight,
    out_json: *mut *mut c_char,
) -> ipuflow_status {
    guard(|| {
        let p = ipuflow_preflight::try_ref(preflight, "preflight")?;
        let out_json = out_ptr(out_json, "out_json")?;
        write_out(out_json, string_to_c(p.result.to_json()));
        Ok(())
    })
}
