//! Finding the Ryzen AI NPU and the compile target it needs.
//!
//! Facts (shared/docs/ryzen-ai-flow.md): PCI vendor 0x1022 (AMD); device 0x1502 = Phoenix / Hawk Point, target
//! `X1`; device 0x17F0 = Strix (revisions 0x00, 0x10, 0x11) or Krackan (revision 0x20), target `X2`. A 0x17F0
//! with any other revision is reported as target `X2` with a note that the revision is unknown (newer parts keep
//! the X2 target; the note lets the host decide).
//!
//! - Linux: the PCI devices under a sysfs root (default `/sys/bus/pci/devices`; overridden by the `root`
//!   parameter or the `IPUFLOW_SYSFS_ROOT` environment variable), files `vendor`, `device`, `revision`, and the
//!   `driver` link (the upstream driver is `amdxdna`).
//! - Windows: SetupAPI enumeration of present PCI devices, matching hardware IDs `PCI\VEN_1022&DEV_1502...` and
//!   `PCI\VEN_1022&DEV_17F0...&REV_xx`. `IPUFLOW_SYSFS_ROOT`, when set, is honoured there too (tests).
//!
//! A scan never fails because one device entry is odd: malformed entries become warnings.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Target;
use crate::error::{Error, Result};

/// AMD's PCI vendor ID.
pub const AMD_VENDOR_ID: u16 = 0x1022;
/// Phoenix / Hawk Point NPU (target X1).
pub const DEVICE_ID_PHX_HPT: u16 = 0x1502;
/// Strix / Krackan NPU (target X2).
pub const DEVICE_ID_STX_KRK: u16 = 0x17F0;
/// The default sysfs directory listing PCI devices on Linux.
pub const DEFAULT_SYSFS_ROOT: &str = "/sys/bus/pci/devices";
/// Environment variable overriding the sysfs root (used by tests and containers).
pub const SYSFS_ROOT_ENV: &str = "IPUFLOW_SYSFS_ROOT";
/// The upstream Linux kernel driver of the NPU.
pub const LINUX_DRIVER: &str = "amdxdna";

/// NPU generation, by PCI device ID and revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NpuFamily {
    /// Phoenix / Hawk Point (0x1502).
    PhoenixHawkPoint,
    /// Strix (0x17F0, revision 0x00, 0x10 or 0x11).
    Strix,
    /// Krackan (0x17F0, revision 0x20).
    Krackan,
    /// 0x17F0 with a revision not in the table (or unreadable).
    UnknownRevision,
}

/// One NPU found on the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NpuDevice {
    /// Human-readable name: "PHX/HPT", "STX", "KRK", or "STX/KRK family (unknown revision 0x..)".
    pub name: String,
    pub family: NpuFamily,
    pub vendor_id: u16,
    pub device_id: u16,
    /// PCI revision; `None` when it could not be read.
    pub revision: Option<u8>,
    /// "1022:17f0" (lower-case hex, like lspci).
    pub pci_id: String,
    /// The VitisAI EP `target` this device needs.
    pub target: Target,
    /// Where it was found: the sysfs device directory, or the Windows device instance ID.
    pub location: String,
    /// The bound driver (Linux: the `driver` link's name; Windows: the service name), if visible.
    pub driver: Option<String>,
    /// Linux: whether the bound driver is `amdxdna`. Windows: whether any driver service is bound.
    pub driver_ok: bool,
    /// Remarks: unknown revision, no driver bound, ...
    pub notes: Vec<String>,
}

/// The result of a device scan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceScan {
    /// What was scanned ("sysfs:/sys/bus/pci/devices", "windows:setupapi").
    pub source: String,
    pub devices: Vec<NpuDevice>,
    /// Entries that could not be read or parsed, and similar remarks. Never fatal.
    pub warnings: Vec<String>,
}

impl DeviceScan {
    /// The target of the first device found, if any.
    pub fn target(&self) -> Option<Target> {
        self.devices.first().map(|d| d.target)
    }

    /// Pretty JSON of the scan.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Classification of one (vendor, device, revision) triple: `None` when it is not a known NPU.
/// Returns (name, family, target, notes).
pub fn classify(
    vendor: u16,
    device: u16,
    revision: Option<u8>,
) -> Option<(String, NpuFamily, Target, Vec<String>)> {
    if vendor != AMD_VENDOR_ID {
        return None;
    }
    match device {
        DEVICE_ID_PHX_HPT => Some(("PHX/HPT".to_string(), NpuFamily::PhoenixHawkPoint, Target::X1, Vec::new())),
        DEVICE_ID_STX_KRK => Some(match revision {
            Some(0x00 | 0x10 | 0x11) => ("STX".to_string(), NpuFamily::Strix, Target::X2, Vec::new()),
            Some(0x20) => ("KRK".to_string(), NpuFamily::Krackan, Target::X2, Vec::new()),
            Some(r) => (
                format!("STX/KRK family (unknown revision 0x{r:02x})"),
                NpuFamily::UnknownRevision,
                Target::X2,
                vec![format!(
                    "unknown revision 0x{r:02x} of device 0x17f0 (known: 0x00/0x10/0x11 = STX, 0x20 = KRK); \
                     assuming target X2"
                )],
            ),
            None => (
                "STX/KRK family (unknown revision)".to_string(),
                NpuFamily::UnknownRevision,
                Target::X2,
                vec!["unknown revision: the revision of device 0x17f0 could not be read; assuming target X2".into()],
            ),
        }),
        _ => None,
    }
}

fn make_device(
    vendor: u16,
    device: u16,
    revision: Option<u8>,
    location: String,
    driver: Option<String>,
    driver_ok: bool,
) -> Option<NpuDevice> {
    let (name, family, target, notes) = classify(vendor, device, revision)?;
    Some(NpuDevice {
        name,
        family,
        vendor_id: vendor,
        device_id: device,
        revision,
        pci_id: format!("{vendor:04x}:{device:04x}"),
        target,
        location,
        driver,
        driver_ok,
        notes,
    })
}

/// Parses a sysfs hex value such as "0x17f0\n" (the `0x` is optional). `None` if malformed or too wide.
pub fn parse_sysfs_hex(text: &str, max: u32) -> Option<u32> {
    let t = text.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(digits, 16).ok()?;
    (v <= max).then_some(v)
}

/// Parses a Windows PCI hardware ID such as `PCI\VEN_1022&DEV_17F0&SUBSYS_00000000&REV_10`.
/// Returns (vendor, device, revision); `None` if it is not a PCI hardware ID with vendor and device.
pub fn parse_windows_hardware_id(id: &str) -> Option<(u16, u16, Option<u8>)> {
    let upper = id.trim().to_ascii_uppercase();
    let rest = upper.strip_prefix("PCI\\")?;
    let (mut ven, mut dev, mut rev) = (None, None, None);
    for part in rest.split('&') {
        if let Some(v) = part.strip_prefix("VEN_") {
            ven = Some(u16::from_str_radix(v, 16).ok()?);
        } else if let Some(v) = part.strip_prefix("DEV_") {
            dev = Some(u16::from_str_radix(v, 16).ok()?);
        } else if let Some(v) = part.strip_prefix("REV_") {
            rev = Some(u8::from_str_radix(v, 16).ok()?);
        }
    }
    Some((ven?, dev?, rev))
}

/// Scans the platform's devices: the sysfs root from `IPUFLOW_SYSFS_ROOT` when set, else
/// `/sys/bus/pci/devices` (Linux and other Unix), else SetupAPI (Windows).
///
/// A missing default sysfs root is not an error (an empty scan with a warning); a missing root named by
/// the environment variable is `FileNotFound`.
pub fn detect() -> Result<DeviceScan> {
    if let Some(root) = std::env::var_os(SYSFS_ROOT_ENV).filter(|v| !v.is_empty()) {
        return detect_in_sysfs(Path::new(&root)).map_err(|e| e.context(SYSFS_ROOT_ENV));
    }
    detect_platform()
}

#[cfg(windows)]
fn detect_platform() -> Result<DeviceScan> {
    windows_scan::scan()
}

#[cfg(not(windows))]
fn detect_platform() -> Result<DeviceScan> {
    let root = Path::new(DEFAULT_SYSFS_ROOT);
    if !root.is_dir() {
        return Ok(DeviceScan {
            source: format!("sysfs:{DEFAULT_SYSFS_ROOT}"),
            devices: Vec::new(),
            warnings: vec![format!(
                "{DEFAULT_SYSFS_ROOT} does not exist: cannot list PCI devices on this system"
            )],
        });
    }
    detect_in_sysfs(root)
}

/// Scans a sysfs-style directory of PCI devices (`<root>/<bdf>/{vendor,device,revision,driver}`).
///
/// `root` missing → `FileNotFound`; unreadable → `FileRead`. Individual malformed entries are warnings.
pub fn detect_in_sysfs(root: &Path) -> Result<DeviceScan> {
    let mut scan = DeviceScan {
        source: format!("sysfs:{}", root.display()),
        ..Default::default()
    };
    let read = fs::read_dir(root).map_err(|e| Error::io("read", root, e))?;
    let mut entries: Vec<PathBuf> = Vec::new();
    for entry in read {
        match entry {
            Ok(e) => entries.push(e.path()),
            Err(e) => scan
                .warnings
                .push(format!("cannot list an entry of '{}': {e}", root.display())),
        }
    }
    entries.sort();
    for dir in entries {
        if !dir.is_dir() {
            continue;
        }
        scan_sysfs_device(&dir, &mut scan);
    }
    Ok(scan)
}

fn read_hex_file(dir: &Path, file: &str, max: u32) -> std::result::Result<Option<u32>, String> {
    let path = dir.join(file);
    match fs::read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            parse_sysfs_hex(&text, max).map(Some).ok_or_else(|| {
                format!(
                    "'{}' is malformed ({:?}): expected a hex number",
                    path.display(),
                    text.trim()
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read '{}': {e}", path.display())),
    }
}

fn scan_sysfs_device(dir: &Path, scan: &mut DeviceScan) {
    let vendor = match read_hex_file(dir, "vendor", 0xFFFF) {
        Ok(Some(v)) => v as u16,
        Ok(None) => return, // not a PCI device directory
        Err(w) => {
            scan.warnings.push(w);
            return;
        }
    };
    if vendor != AMD_VENDOR_ID {
        return;
    }
    let device = match read_hex_file(dir, "device", 0xFFFF) {
        Ok(Some(v)) => v as u16,
        Ok(None) => {
            scan.warnings.push(format!(
                "'{}': AMD device without a 'device' file",
                dir.display()
            ));
            return;
        }
        Err(w) => {
            scan.warnings.push(w);
            return;
        }
    };
    if device != DEVICE_ID_PHX_HPT && device != DEVICE_ID_STX_KRK {
        return;
    }
    let mut extra_notes = Vec::new();
    let revision = match read_hex_file(dir, "revision", 0xFF) {
        Ok(r) => r.map(|r| r as u8),
        Err(w) => {
            extra_notes.push(w.clone());
            scan.warnings.push(w);
            None
        }
    };
    let driver = fs::read_link(dir.join("driver"))
        .ok()
        .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()));
    let driver_ok = driver.as_deref() == Some(LINUX_DRIVER);
    match &driver {
        None => extra_notes.push(format!(
            "no driver bound (the {LINUX_DRIVER} kernel driver is not loaded?)"
        )),
        Some(d) if d != LINUX_DRIVER => {
            extra_notes.push(format!("bound to driver '{d}', not {LINUX_DRIVER}"))
        }
        _ => {}
    }
    if device == DEVICE_ID_PHX_HPT && revision.is_none() {
        extra_notes.push("revision not readable (not needed to choose target X1)".into());
    }
    if let Some(mut d) = make_device(
        vendor,
        device,
        revision,
        dir.display().to_string(),
        driver,
        driver_ok,
    ) {
        d.notes.extend(extra_notes);
        scan.devices.push(d);
    }
}

/// Builds the device of a Windows hardware-ID list (first PCI ID that is an NPU wins). Public for tests.
pub fn device_from_hardware_ids(
    ids: &[String],
    instance_id: &str,
    service: Option<String>,
) -> Option<NpuDevice> {
    // The most specific ID (with REV_) comes first in Windows' list; take the first that classifies, but prefer
    // one carrying a revision.
    let parsed: Vec<(u16, u16, Option<u8>)> = ids
        .iter()
        .filter_map(|s| parse_windows_hardware_id(s))
        .collect();
    let best = parsed
        .iter()
        .find(|(v, d, r)| r.is_some() && classify(*v, *d, *r).is_some())
        .or_else(|| {
            parsed
                .iter()
                .find(|(v, d, r)| classify(*v, *d, *r).is_some())
        })?;
    let driver_ok = service.is_some();
    let mut dev = make_device(
        best.0,
        best.1,
        best.2,
        instance_id.to_string(),
        service,
        driver_ok,
    )?;
    if !driver_ok {
        dev.notes
            .push("no driver service bound (install the NPU driver)".into());
    }
    Some(dev)
}

#[cfg(windows)]
mod windows_scan {
    //! SetupAPI enumeration. The only unsafe code of `ipu`: calls into setupapi.dll with buffers we own.
    use super::*;
    use crate::error::ErrorKind;
    use windows_sys::Win32::Devices::DeviceAndDriverInstallation::{
        SetupDiDestroyDeviceInfoList, SetupDiEnumDeviceInfo, SetupDiGetClassDevsW,
        SetupDiGetDeviceInstanceIdW, SetupDiGetDeviceRegistryPropertyW, DIGCF_ALLCLASSES,
        DIGCF_PRESENT, SPDRP_HARDWAREID, SPDRP_SERVICE, SP_DEVINFO_DATA,
    };
    use windows_sys::Win32::Foundation::{
        GetLastError, ERROR_INSUFFICIENT_BUFFER, ERROR_NO_MORE_ITEMS, INVALID_HANDLE_VALUE,
    };

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// Splits a REG_MULTI_SZ buffer (UTF-16, double-NUL terminated) into strings.
    fn multi_sz(buf: &[u16]) -> Vec<String> {
        buf.split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(String::from_utf16_lossy)
            .collect()
    }

    unsafe fn registry_property(
        set: *mut core::ffi::c_void,
        data: &SP_DEVINFO_DATA,
        prop: u32,
    ) -> Option<Vec<u16>> {
        let mut needed: u32 = 0;
        let mut buf: Vec<u16> = vec![0; 256];
        for _ in 0..2 {
            let ok = SetupDiGetDeviceRegistryPropertyW(
                set as _,
                data,
                prop,
                std::ptr::null_mut(),
                buf.as_mut_ptr() as *mut u8,
                (buf.len() * 2) as u32,
                &mut needed,
            );
            if ok != 0 {
                let n = (needed as usize).div_ceil(2).min(buf.len());
                buf.truncate(n);
                return Some(buf);
            }
            if GetLastError() != ERROR_INSUFFICIENT_BUFFER {
                return None;
            }
            buf = vec![0; (needed as usize).div_ceil(2) + 1];
        }
        None
    }

    unsafe fn instance_id(set: *mut core::ffi::c_void, data: &SP_DEVINFO_DATA) -> String {
        let mut buf: Vec<u16> = vec![0; 512];
        let mut needed: u32 = 0;
        let ok = SetupDiGetDeviceInstanceIdW(
            set as _,
            data,
            buf.as_mut_ptr(),
            buf.len() as u32,
            &mut needed,
        );
        if ok == 0 {
            return String::new();
        }
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        String::from_utf16_lossy(&buf[..end])
    }

    pub(super) fn scan() -> Result<DeviceScan> {
        let mut scan = DeviceScan {
            source: "windows:setupapi".into(),
            ..Default::default()
        };
        let enumerator = wide("PCI");
        // SAFETY: every pointer passed below points into a live buffer owned here, sized as stated; the device
        // info set is destroyed before returning.
        unsafe {
            let set = SetupDiGetClassDevsW(
                std::ptr::null(),
                enumerator.as_ptr(),
                std::ptr::null_mut(),
                DIGCF_PRESENT | DIGCF_ALLCLASSES,
            );
            if set as isize == INVALID_HANDLE_VALUE as isize {
                return Err(Error::new(
                    ErrorKind::DeviceUnavailable,
                    format!("SetupDiGetClassDevsW failed (error {})", GetLastError()),
                ));
            }
            let set = set as *mut core::ffi::c_void;
            let mut index = 0u32;
            loop {
                let mut data: SP_DEVINFO_DATA = std::mem::zeroed();
                data.cbSize = std::mem::size_of::<SP_DEVINFO_DATA>() as u32;
                if SetupDiEnumDeviceInfo(set as _, index, &mut data) == 0 {
                    let err = GetLastError();
                    if err != ERROR_NO_MORE_ITEMS {
                        scan.warnings.push(format!(
                            "SetupDiEnumDeviceInfo stopped at {index} (error {err})"
                        ));
                    }
                    break;
                }
                index += 1;
                let Some(ids) = registry_property(set, &data, SPDRP_HARDWAREID) else {
                    continue;
                };
                let ids = multi_sz(&ids);
                if !ids
                    .iter()
                    .any(|s| s.to_ascii_uppercase().contains("VEN_1022"))
                {
                    continue;
                }
                let service = registry_property(set, &data, SPDRP_SERVICE)
                    .map(|b| multi_sz(&b).into_iter().next().unwrap_or_default())
                    .filter(|s| !s.is_empty());
                let inst = instance_id(set, &data);
                if let Some(dev) = device_from_hardware_ids(&ids, &inst, service) {
                    scan.devices.push(dev);
                }
            }
            SetupDiDestroyDeviceInfoList(set as _);
        }
        Ok(scan)
    }
}
