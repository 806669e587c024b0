//! The NPU without a session: device detection (`ipuflow_npu_scan`), the pre-flight checker (`ipuflow_preflight`)
//! and compile-cache maintenance.

use std::ffi::{c_char, CString};

use super::ipuflow_status;
use super::model::ipuflow_model;
use super::{
    arg_path, arg_str, box_handle, guard, guard_value, invalid_enum, out_ptr, string_to_c,
    write_out, BoxHandle,
};
use crate::error::{Error, ErrorKind, Result};
use crate::ipu::device::{detect, detect_in_sysfs, DeviceScan};
use crate::ipu::preflight::{preflight, Device, Preflight};
use crate::ipu::Target;

/// NPU compile target X1: Phoenix / Hawk Point (PCI device 0x1502).
pub const IPUFLOW_TARGET_X1: i32 = 1;
/// NPU compile target X2: Strix / Krackan (PCI device 0x17F0) and newer.
pub const IPUFLOW_TARGET_X2: i32 = 2;

/// A node runs (or is predicted to run) on the CPU.
pub const IPUFLOW_DEVICE_CPU: i32 = 0;
/// A node runs (or is predicted to run) on the NPU.
pub const IPUFLOW_DEVICE_NPU: i32 = 1;

pub(crate) fn target_arg(v: i32, name: &str) -> Result<Target> {
    match v {
        IPUFLOW_TARGET_X1 => Ok(Target::X1),
        IPUFLOW_TARGET_X2 => Ok(Target::X2),
        _ => Err(invalid_enum(
            name,
            v,
            "IPUFLOW_TARGET_X1 (1), IPUFLOW_TARGET_X2 (2)",
        )),
    }
}

fn target_to_c(t: Target) -> i32 {
    match t {
        Target::X1 => IPUFLOW_TARGET_X1,
        Target::X2 => IPUFLOW_TARGET_X2,
    }
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

fn check_index(i: usize, len: usize, what: &str) -> Result<usize> {
    if i < len {
        Ok(i)
    } else {
        Err(Error::new(
            ErrorKind::OutOfRange,
            format!("{what} index {i} is out of range (there are {len})"),
        ))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Device detection

/// The result of scanning the machine for Ryzen AI NPUs. Immutable: thread-safe to read from many threads; strings
/// it hands out are owned by it until `ipuflow_npu_scan_free`.
pub struct ipuflow_npu_scan {
    _private: [u8; 0],
}

pub(crate) struct ScanHandle {
    scan: DeviceScan,
    strings: Vec<[CString; 4]>,
}

box_handle!(ipuflow_npu_scan => ScanHandle);

/// One NPU found by `ipuflow_npu_detect`. Strings are owned by the scan.
#[repr(C)]
pub struct ipuflow_npu_device {
    /// "PHX/HPT", "STX", "KRK", or a description of an unknown revision.
    pub name: *const c_char,
    /// PCI vendor ID (0x1022).
    pub vendor_id: u16,
    /// PCI device ID (0x1502 or 0x17F0).
    pub device_id: u16,
    /// PCI revision, or -1 when it could not be read.
    pub revision: i32,
    /// The VitisAI `target` this device needs: `IPUFLOW_TARGET_X1` or `IPUFLOW_TARGET_X2`.
    pub target: i32,
    /// Where it was found: the sysfs device directory or the Windows device instance ID.
    pub location: *const c_char,
    /// The bound driver's name, or "" when none is visible.
    pub driver: *const c_char,
    /// Remarks joined with "; " (unknown revision, no driver bound...), or "".
    pub notes: *const c_char,
}

/// Scans for Ryzen AI NPUs: PCI vendor 0x1022, device 0x1502 (PHX/HPT, target X1) or 0x17F0 (STX revisions
/// 0x00/0x10/0x11, KRK 0x20; target X2).
///
/// - `sysfs_root`: on Linux, the directory holding PCI devices (NULL: `$IPUFLOW_SYSFS_ROOT`, else
///   `/sys/bus/pci/devices`). Ignored on Windows, which uses the device installation API.
/// - `out`: receives the scan (free with `ipuflow_npu_scan_free`), even when it found nothing.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, FILE_NOT_FOUND (an explicit `sysfs_root` that does not exist).
/// Unreadable entries are not errors: they are listed in the scan's JSON warnings. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_detect(
    sysfs_root: *const c_char,
    out: *mut *mut ipuflow_npu_scan,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let scan = if sysfs_root.is_null() {
            detect()?
        } else {
            detect_in_sysfs(&arg_path(sysfs_root, "sysfs_root")?)?
        };
        let strings = scan
            .devices
            .iter()
            .map(|d| {
                [
                    c_string(&d.name),
                    c_string(&d.location),
                    c_string(d.driver.as_deref().unwrap_or("")),
                    c_string(&d.notes.join("; ")),
                ]
            })
            .collect();
        write_out(
            out,
            ipuflow_npu_scan::into_raw(ScanHandle { scan, strings }),
        );
        Ok(())
    })
}

/// Frees a scan. `scan` may be NULL (no-op).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_scan_free(scan: *mut ipuflow_npu_scan) {
    guard_value((), || ipuflow_npu_scan::free(scan))
}

/// Number of NPUs the scan found. Errors: NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_scan_count(
    scan: *const ipuflow_npu_scan,
    out_count: *mut usize,
) -> ipuflow_status {
    guard(|| {
        let s = ipuflow_npu_scan::try_ref(scan, "scan")?;
        let out_count = out_ptr(out_count, "out_count")?;
        write_out(out_count, s.scan.devices.len());
        Ok(())
    })
}

/// Describes NPU `index` of the scan. Errors: NULL_ARGUMENT, OUT_OF_RANGE. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_scan_get(
    scan: *const ipuflow_npu_scan,
    index: usize,
    out: *mut ipuflow_npu_device,
) -> ipuflow_status {
    guard(|| {
        let s = ipuflow_npu_scan::try_ref(scan, "scan")?;
        let out = out_ptr(out, "out")?;
        let i = check_index(index, s.scan.devices.len(), "NPU")?;
        let (d, st) = (&s.scan.devices[i], &s.strings[i]);
        write_out(
            out,
            ipuflow_npu_device {
                name: st[0].as_ptr(),
                vendor_id: d.vendor_id,
                device_id: d.device_id,
                revision: d.revision.map_or(-1, i32::from),
                target: target_to_c(d.target),
                location: st[1].as_ptr(),
                driver: st[2].as_ptr(),
                notes: st[3].as_ptr(),
            },
        );
        Ok(())
    })
}

/// The scan as JSON (devices and warnings); `out_json` is freed with `ipuflow_string_free`.
/// Errors: NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_scan_to_json(
    scan: *const ipuflow_npu_scan,
    out_json: *mut *mut c_char,
) -> ipuflow_status {
    guard(|| {
        let s = ipuflow_npu_scan::try_ref(scan, "scan")?;
        let out_json = out_ptr(out_json, "out_json")?;
        write_out(out_json, string_to_c(s.scan.to_json()));
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Pre-flight

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
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_free(preflight: *mut ipuflow_preflight) {
    guard_value((), || ipuflow_preflight::free(preflight))
}

/// The prediction's totals. Errors: NULL_ARGUMENT. Thread-safe.
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
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_node_count(
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

/// The prediction for node `index`. Errors: NULL_ARGUMENT, OUT_OF_RANGE. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_preflight_get_node(
    preflight: *const ipuflow_preflight,
    index: usize,
    out: *mut ipuflow_node_prediction,
) -> ipuflow_status {
    guard(|| {
        let p = ipuflow_preflight::try_ref(preflight, "preflight")?;
        let out = out_ptr(out, "out")?;
        let i = check_index(index, p.result.nodes.len(), "node")?;
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

// ---------------------------------------------------------------------------------------------------------------
// Compile cache

/// Removes one model's compiled NPU cache, `<cache_dir>/<cache_key>`, so the next session recompiles instead of
/// loading a stale result. Links are removed, never followed. A missing entry is not an error.
///
/// - `cache_key`: a single directory name (no separators, no `..`): PATH_REFUSED otherwise.
/// - `out_bytes_removed`: may be NULL; receives the bytes of the files removed.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT, PATH_REFUSED, FILE_WRITE. Thread-safe, but racing a
/// session that compiles into the same entry is the host's problem.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_cache_clear(
    cache_dir: *const c_char,
    cache_key: *const c_char,
    out_bytes_removed: *mut u64,
) -> ipuflow_status {
    guard(|| {
        let dir = arg_path(cache_dir, "cache_dir")?;
        let key = arg_str(cache_key, "cache_key")?;
        let cleared = crate::ipu::cache::clear_cache(&dir, key)?;
        if !out_bytes_removed.is_null() {
            write_out(out_bytes_removed, cleared.bytes);
        }
        Ok(())
    })
}
