//! NPU detection on fake sysfs trees (one per device ID / revision, none, non-AMD, malformed files).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ipuflow::ipu::device::{
    classify, detect, detect_in_sysfs, device_from_hardware_ids, parse_sysfs_hex,
    parse_windows_hardware_id, NpuFamily, SYSFS_ROOT_ENV,
};
use ipuflow::ipu::Target;
use ipuflow::ErrorKind;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ipuflow-ipu-device-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes one PCI device directory; `None` leaves the file out.
fn pci(
    root: &Path,
    bdf: &str,
    vendor: Option<&str>,
    device: Option<&str>,
    revision: Option<&str>,
    driver: Option<&str>,
) {
    let d = root.join(bdf);
    fs::create_dir_all(&d).unwrap();
    if let Some(v) = vendor {
        fs::write(d.join("vendor"), v).unwrap();
    }
    if let Some(v) = device {
        fs::write(d.join("device"), v).unwrap();
    }
    if let Some(v) = revision {
        fs::write(d.join("revision"), v).unwrap();
    }
    #[cfg(unix)]
    if let Some(drv) = driver {
        std::os::unix::fs::symlink(format!("../../../bus/pci/drivers/{drv}"), d.join("driver"))
            .unwrap();
    }
    #[cfg(not(unix))]
    let _ = driver;
}

fn one(root: &Path) -> ipuflow::ipu::device::NpuDevice {
    let scan = detect_in_sysfs(root).unwrap();
    assert_eq!(scan.devices.len(), 1, "{scan:#?}");
    scan.devices.into_iter().next().unwrap()
}

#[test]
fn phoenix_hawk_point_is_x1() {
    let t = TempDir::new("phx");
    pci(
        &t.0,
        "0000:c5:00.1",
        Some("0x1022\n"),
        Some("0x1502\n"),
        Some("0x00\n"),
        Some("amdxdna"),
    );
    let d = one(&t.0);
    assert_eq!(d.name, "PHX/HPT");
    assert_eq!(d.family, NpuFamily::PhoenixHawkPoint);
    assert_eq!(d.target, Target::X1);
    assert_eq!(d.pci_id, "1022:1502");
    assert_eq!(d.revision, Some(0));
    assert!(d.location.ends_with("0000:c5:00.1"));
    if cfg!(unix) {
        assert_eq!(d.driver.as_deref(), Some("amdxdna"));
        assert!(d.driver_ok);
        assert!(d.notes.is_empty(), "{:?}", d.notes);
    }
}

#[test]
fn strix_revisions_are_x2() {
    for rev in ["0x00", "0x10", "0x11"] {
        let t = TempDir::new("stx");
        pci(
            &t.0,
            "0000:c6:00.1",
            Some("0x1022"),
            Some("0x17f0"),
            Some(rev),
            Some("amdxdna"),
        );
        let d = one(&t.0);
        assert_eq!(d.name, "STX", "rev {rev}");
        assert_eq!(d.family, NpuFamily::Strix);
        assert_eq!(d.target, Target::X2);
        assert_eq!(d.pci_id, "1022:17f0");
    }
}

#[test]
fn krackan_is_x2() {
    let t = TempDir::new("krk");
    pci(
        &t.0,
        "0000:c6:00.1",
        Some("0x1022\n"),
        Some("0x17F0\n"),
        Some("0x20\n"),
        None,
    );
    let d = one(&t.0);
    assert_eq!(d.name, "KRK");
    assert_eq!(d.family, NpuFamily::Krackan);
    assert_eq!(d.target, Target::X2);
    assert_eq!(d.revision, Some(0x20));
    // No driver link: noted.
    assert_eq!(d.driver, None);
    assert!(!d.driver_ok);
    assert!(
        d.notes.iter().any(|n| n.contains("no driver bound")),
        "{:?}",
        d.notes
    );
}

#[test]
fn unknown_revision_is_x2_with_a_note() {
    let t = TempDir::new("unk");
    pci(
        &t.0,
        "0000:c6:00.1",
        Some("0x1022"),
        Some("0x17f0"),
        Some("0x30"),
        Some("amdxdna"),
    );
    let d = one(&t.0);
    assert_eq!(d.family, NpuFamily::UnknownRevision);
    assert_eq!(d.target, Target::X2);
    assert!(d.name.contains("unknown revision 0x30"), "{}", d.name);
    assert!(
        d.notes.iter().any(|n| n.contains("unknown revision")),
        "{:?}",
        d.notes
    );
}

#[test]
fn missing_or_malformed_revision_of_17f0_is_unknown_revision() {
    let t = TempDir::new("norev");
    pci(
        &t.0,
        "0000:01:00.0",
        Some("0x1022"),
        Some("0x17f0"),
        None,
        None,
    );
    pci(
        &t.0,
        "0000:02:00.0",
        Some("0x1022"),
        Some("0x17f0"),
        Some("zz\n"),
        None,
    );
    let scan = detect_in_sysfs(&t.0).unwrap();
    assert_eq!(scan.devices.len(), 2);
    for d in &scan.devices {
        assert_eq!(d.family, NpuFamily::UnknownRevision);
        assert_eq!(d.target, Target::X2);
        assert!(
            d.notes.iter().any(|n| n.contains("unknown revision")),
            "{:?}",
            d.notes
        );
    }
    assert!(
        scan.warnings.iter().any(|w| w.contains("malformed")),
        "{:?}",
        scan.warnings
    );
}

#[test]
fn no_npu_and_non_amd_devices_are_ignored() {
    let t = TempDir::new("none");
    // Intel GPU, NVIDIA GPU, an AMD device that is not an NPU, and a directory without a vendor file.
    pci(
        &t.0,
        "0000:00:02.0",
        Some("0x8086"),
        Some("0x1502"),
        Some("0x00"),
        Some("i915"),
    );
    pci(
        &t.0,
        "0000:01:00.0",
        Some("0x10de"),
        Some("0x17f0"),
        Some("0x10"),
        Some("nvidia"),
    );
    pci(
        &t.0,
        "0000:c4:00.0",
        Some("0x1022"),
        Some("0x15bf"),
        Some("0xc1"),
        Some("amdgpu"),
    );
    pci(&t.0, "not-a-device", None, None, None, None);
    fs::write(t.0.join("stray-file"), "x").unwrap();
    let scan = detect_in_sysfs(&t.0).unwrap();
    assert!(scan.devices.is_empty(), "{scan:#?}");
    assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
    assert_eq!(scan.target(), None);

    let empty = TempDir::new("empty");
    assert!(detect_in_sysfs(&empty.0).unwrap().devices.is_empty());
}

#[test]
fn malformed_files_become_warnings_not_errors() {
    let t = TempDir::new("bad");
    pci(
        &t.0,
        "0000:00:01.0",
        Some("garbage\n"),
        Some("0x1502"),
        None,
        None,
    );
    pci(
        &t.0,
        "0000:00:02.0",
        Some("0x1022"),
        Some("0x1502zz"),
        None,
        None,
    );
    pci(&t.0, "0000:00:03.0", Some(""), None, None, None);
    pci(&t.0, "0000:00:04.0", Some("0x1022"), None, None, None);
    pci(&t.0, "0000:00:05.0", Some("0x123456789"), None, None, None);
    // And one good device among them.
    pci(
        &t.0,
        "0000:c5:00.1",
        Some("0x1022"),
        Some("0x1502"),
        Some("0x00"),
        None,
    );
    let scan = detect_in_sysfs(&t.0).unwrap();
    assert_eq!(scan.devices.len(), 1, "{scan:#?}");
    assert_eq!(scan.devices[0].target, Target::X1);
    assert_eq!(scan.warnings.len(), 5, "{:?}", scan.warnings);
    assert!(scan
        .warnings
        .iter()
        .any(|w| w.contains("0000:00:01.0") && w.contains("vendor")));
}

#[test]
fn driver_other_than_amdxdna_is_noted() {
    let t = TempDir::new("drv");
    pci(
        &t.0,
        "0000:c5:00.1",
        Some("0x1022"),
        Some("0x1502"),
        Some("0x00"),
        Some("vfio-pci"),
    );
    let d = one(&t.0);
    if cfg!(unix) {
        assert_eq!(d.driver.as_deref(), Some("vfio-pci"));
        assert!(!d.driver_ok);
        assert!(
            d.notes.iter().any(|n| n.contains("not amdxdna")),
            "{:?}",
            d.notes
        );
    }
}

#[test]
fn missing_root_is_file_not_found_and_env_override_works() {
    let e = detect_in_sysfs(Path::new("/nonexistent/ipuflow/sysfs")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileNotFound);
    assert!(e.message().contains("/nonexistent/ipuflow/sysfs"));

    // The only test of this binary that touches the environment.
    let t = TempDir::new("env");
    pci(
        &t.0,
        "0000:c6:00.1",
        Some("0x1022"),
        Some("0x17f0"),
        Some("0x10"),
        None,
    );
    std::env::set_var(SYSFS_ROOT_ENV, &t.0);
    let scan = detect().unwrap();
    assert_eq!(scan.target(), Some(Target::X2));
    assert!(scan.source.contains(&*t.0.to_string_lossy()));
    std::env::set_var(SYSFS_ROOT_ENV, "/nonexistent/ipuflow/env-root");
    let e = detect().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileNotFound);
    assert!(e.message().contains(SYSFS_ROOT_ENV), "{}", e.message());
    std::env::remove_var(SYSFS_ROOT_ENV);
    // The real system: an empty scan is fine on a machine without /sys or without an NPU.
    match detect() {
        Ok(real) => println!("{}", real.to_json()),
        // On Windows (or wine) SetupAPI may refuse; that must be an error value, never a panic.
        Err(e) => println!("real scan: {e}"),
    }
}

#[test]
fn hex_and_classification_helpers() {
    assert_eq!(parse_sysfs_hex("0x1022\n", 0xffff), Some(0x1022));
    assert_eq!(parse_sysfs_hex("17F0", 0xffff), Some(0x17f0));
    assert_eq!(parse_sysfs_hex("0x", 0xffff), None);
    assert_eq!(parse_sysfs_hex("0x10000", 0xffff), None);
    assert_eq!(parse_sysfs_hex(" 0x20 ", 0xff), Some(0x20));
    assert!(classify(0x1022, 0x1234, None).is_none());
    assert!(classify(0x8086, 0x1502, None).is_none());
    assert_eq!(classify(0x1022, 0x1502, None).unwrap().2, Target::X1);
}

#[test]
fn windows_hardware_ids() {
    assert_eq!(
        parse_windows_hardware_id(r"PCI\VEN_1022&DEV_1502&SUBSYS_00000000&REV_00"),
        Some((0x1022, 0x1502, Some(0)))
    );
    assert_eq!(
        parse_windows_hardware_id(r"pci\ven_1022&dev_17f0&rev_20"),
        Some((0x1022, 0x17f0, Some(0x20)))
    );
    assert_eq!(
        parse_windows_hardware_id(r"PCI\VEN_1022&DEV_17F0"),
        Some((0x1022, 0x17f0, None))
    );
    assert_eq!(parse_windows_hardware_id(r"USB\VID_1022&PID_1502"), None);
    assert_eq!(parse_windows_hardware_id(r"PCI\VEN_ZZZZ&DEV_17F0"), None);

    let ids: Vec<String> = [
        r"PCI\VEN_1022&DEV_17F0&SUBSYS_0B851028&REV_10",
        r"PCI\VEN_1022&DEV_17F0&SUBSYS_0B851028",
        r"PCI\VEN_1022&DEV_17F0&CC_118000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let d = device_from_hardware_ids(
        &ids,
        r"PCI\VEN_1022&DEV_17F0\4&1234",
        Some("IpuMcdmDriver".into()),
    )
    .unwrap();
    assert_eq!(d.name, "STX");
    assert_eq!(d.target, Target::X2);
    assert!(d.driver_ok);
    let d = device_from_hardware_ids(&[r"PCI\VEN_1022&DEV_1502&REV_00".to_string()], "x", None)
        .unwrap();
    assert_eq!(d.target, Target::X1);
    assert!(!d.driver_ok);
    assert!(
        device_from_hardware_ids(&[r"PCI\VEN_10DE&DEV_17F0&REV_10".to_string()], "x", None)
            .is_none()
    );
}
