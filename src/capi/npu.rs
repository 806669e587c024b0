//! The NPU without a session: device detection (`ipuflow_npu_scan`) and compile-cache maintenance. The
//! pre-flight checker (`ipuflow_preflight`) is in `npu_preflight.rs`.

use std::ffi::{c_char, CString};
use std::path::PathBuf;

// The Rust paths of 0.1 (`capi::npu::ipuflow_preflight_*`) keep working after the split into one file per handle
// type.
pub use super::npu_preflight::*;

use super::ipuflow_status;
use super::{
    arg_path, arg_str, arg_wide_path, box_handle, c_string, check_index, guard, guard_value,
    invalid_enum, opt_path, opt_wide_path, out_ptr, string_to_c, write_opt, write_out, BoxHandle,
};
use crate::error::Result;
use crate::ipu::device::{detect, detect_in_sysfs, DeviceScan};
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

pub(crate) fn target_to_c(t: Target) -> i32 {
    match t {
        Target::X1 => IPUFLOW_TARGET_X1,
        Target::X2 => IPUFLOW_TARGET_X2,
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
    guard(|| scan_into(opt_path(sysfs_root, "sysfs_root")?, out))
}

/// Same as `ipuflow_npu_detect` with `sysfs_root` a NUL-terminated UTF-16 path (`wchar_t*` on Windows), or NULL.
///
/// Errors: as `ipuflow_npu_detect` (INVALID_UTF8: invalid UTF-16). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_detect_w(
    sysfs_root: *const u16,
    out: *mut *mut ipuflow_npu_scan,
) -> ipuflow_status {
    guard(|| scan_into(opt_wide_path(sysfs_root, "sysfs_root")?, out))
}

unsafe fn scan_into(sysfs_root: Option<PathBuf>, out: *mut *mut ipuflow_npu_scan) -> Result<()> {
    let out = out_ptr(out, "out")?;
    let scan = match sysfs_root {
        Some(root) => detect_in_sysfs(&root)?,
        None => detect()?,
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
}

/// Frees a scan. `scan` may be NULL (no-op).
///
/// Never fails (returns nothing; a panic inside is contained). Not thread-safe: no other call may use the object at
/// the same time.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_scan_free(scan: *mut ipuflow_npu_scan) {
    guard_value((), || ipuflow_npu_scan::free(scan))
}

/// Number of NPUs the scan found. Errors: NULL_ARGUMENT. Thread-safe.
///
/// Ownership: the outputs are plain values owned by the caller, written only on success.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_scan_get_count(
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

/// Alias of `ipuflow_npu_scan_get_count` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_npu_scan_get_count`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_scan_count(
    scan: *const ipuflow_npu_scan,
    out_count: *mut usize,
) -> ipuflow_status {
    ipuflow_npu_scan_get_count(scan, out_count)
}

/// Describes NPU `index` of the scan. Errors: NULL_ARGUMENT, OUT_OF_RANGE. Thread-safe.
///
/// Ownership: the strings in `*out` are owned by the scan, valid until `ipuflow_npu_scan_free`.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_scan_get_device(
    scan: *const ipuflow_npu_scan,
    index: usize,
    out: *mut ipuflow_npu_device,
) -> ipuflow_status {
    guard(|| {
        let s = ipuflow_npu_scan::try_ref(scan, "scan")?;
        let out = out_ptr(out, "out")?;
        let i = check_index(index, s.scan.devices.len(), "NPU", "the scan")?;
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

/// Alias of `ipuflow_npu_scan_get_device` (its 0.1 name), kept as a real exported symbol.
/// New code uses `ipuflow_npu_scan_get_device`; ownership, NULL handling, errors and thread safety are as there.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_scan_get(
    scan: *const ipuflow_npu_scan,
    index: usize,
    out: *mut ipuflow_npu_device,
) -> ipuflow_status {
    ipuflow_npu_scan_get_device(scan, index, out)
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
// Compile cache

/// Removes one model's compiled NPU cache, `<cache_dir>/<cache_key>`, so the next session recompiles instead of
/// loading a stale result. Links are removed, never followed. A missing entry is not an error.
///
/// - `cache_key`: a single directory name (no separators, no `..`): PATH_REFUSED otherwise.
/// - `out_bytes_removed`: may be NULL; receives the bytes of the files removed.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT, PATH_REFUSED, FILE_WRITE. Thread-safe, but racing a
/// session that compiles into the same entry is the host's problem.
///
/// Ownership: the strings are read during the call, not kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_cache_clear(
    cache_dir: *const c_char,
    cache_key: *const c_char,
    out_bytes_removed: *mut u64,
) -> ipuflow_status {
    guard(|| {
        cache_clear(
            arg_path(cache_dir, "cache_dir")?,
            cache_key,
            out_bytes_removed,
        )
    })
}

/// Same as `ipuflow_npu_cache_clear` with `cache_dir` a NUL-terminated UTF-16 path (`wchar_t*` on Windows);
/// `cache_key` stays UTF-8 (it is a VitisAI option value).
///
/// Errors: as `ipuflow_npu_cache_clear` (INVALID_UTF8: invalid UTF-16). Thread-safe, with the same caveat.
///
/// Ownership: the strings are read during the call, not kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_npu_cache_clear_w(
    cache_dir: *const u16,
    cache_key: *const c_char,
    out_bytes_removed: *mut u64,
) -> ipuflow_status {
    guard(|| {
        cache_clear(
            arg_wide_path(cache_dir, "cache_dir")?,
            cache_key,
            out_bytes_removed,
        )
    })
}

unsafe fn cache_clear(
    dir: PathBuf,
    cache_key: *const c_char,
    out_bytes_removed: *mut u64,
) -> Result<()> {
    let key = arg_str(cache_key, "cache_key")?;
    let cleared = crate::ipu::cache::clear_cache(&dir, key)?;
    write_opt(out_bytes_removed, cleared.bytes);
    Ok(())
}
