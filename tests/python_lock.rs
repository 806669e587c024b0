//! The Python venv of scripts/common.sh is exactly scripts/requirements.lock: every package at its locked version,
//! nothing else, and built from this very lock (its `.lock-sha256`). A venv that drifted (a transitive package
//! upgraded by hand, a lock edited without rebuilding) would make generated test data differ from machine to
//! machine, as an unpinned ml_dtypes once did. Without a venv the test skips outside CI and fails under CI.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn lock_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/requirements.lock")
}

/// PEP 503 normalized name: lowercase, runs of `-`, `_`, `.` as one `-`.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// `name==version` requirement lines of a requirements file, with how many `--hash=sha256:` options each has.
fn pins(text: &str) -> BTreeMap<String, (String, usize)> {
    let mut out: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        if let Some(h) = line.strip_prefix("--hash=sha256:") {
            let h = h.trim_end_matches('\\').trim();
            assert!(
                h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                "bad hash {h:?}"
            );
            let name: &String = current.as_ref().expect("a hash before any requirement");
            out.get_mut(name).unwrap().1 += 1;
        } else if let Some((name, rest)) = line.split_once("==") {
            let version = rest.split_whitespace().next().unwrap().to_string();
            let name = normalize(name.trim());
            assert!(
                out.insert(name.clone(), (version, 0)).is_none(),
                "{name} pinned twice"
            );
            current = Some(name);
        } else {
            panic!("unexpected requirement line {line:?} (only name==version and --hash lines)");
        }
    }
    out
}

#[test]
fn lock_pins_every_package_with_hashes_and_matches_the_top_level_pins() {
    let lock = pins(&std::fs::read_to_string(lock_path()).unwrap());
    for (name, (version, hashes)) in &lock {
        assert!(
            hashes > &0,
            "{name}=={version} has no sha256 hash in the lock"
        );
    }
    let top = std::fs::read_to_string(lock_path().with_file_name("requirements.in")).unwrap();
    for (name, (version, _)) in pins(&top) {
        assert_eq!(
            lock.get(&name).map(|v| v.0.as_str()),
            Some(version.as_str()),
            "{name}: requirements.in pins {version}; regenerate scripts/requirements.lock (see requirements.in)"
        );
    }
    // What made the fresh-machine failure: ml_dtypes (onnx's) and protobuf are transitive and must be pinned too.
    for transitive in ["ml-dtypes", "protobuf", "typing-extensions"] {
        assert!(
            lock.contains_key(transitive),
            "{transitive} not in the lock"
        );
    }
}

#[test]
fn venv_is_exactly_the_lock() {
    let venv = std::env::var_os("IPUFLOW_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| common::cache_dir().join("venv"));
    let python = venv.join(if cfg!(windows) {
        "Scripts/python.exe"
    } else {
        "bin/python"
    });
    if !python.exists() {
        common::missing(format_args!(
            "no venv at {} (scripts/common.sh ensure_venv makes it)",
            venv.display()
        ));
        return;
    }
    let lock_bytes = std::fs::read(lock_path()).unwrap();
    let key = format!("{:x}", Sha256::digest(&lock_bytes));
    let made_from = std::fs::read_to_string(venv.join(".lock-sha256")).unwrap_or_default();
    assert_eq!(
        made_from.trim(),
        key,
        "{} was not built from this scripts/requirements.lock (its .lock-sha256 differs or is missing): \
         scripts/common.sh ensure_venv rebuilds it",
        venv.display()
    );

    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m\nfor d in m.distributions(): print(d.metadata['Name'], d.version)",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{python:?}: {out:?}");
    let mut installed: BTreeMap<String, String> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (name, version) = line.split_once(' ').unwrap();
        installed.insert(normalize(name), version.to_string());
    }
    let lock = pins(std::str::from_utf8(&lock_bytes).unwrap());
    let mut diffs = Vec::new();
    for (name, (version, _)) in &lock {
        match installed.get(name) {
            Some(v) if v == version => {}
            Some(v) => diffs.push(format!("{name}: {v} installed, {version} locked")),
            None => diffs.push(format!("{name}: not installed, {version} locked")),
        }
    }
    for (name, v) in &installed {
        // pip and setuptools come with `python -m venv` itself, not from the lock.
        if !lock.contains_key(name) && !matches!(name.as_str(), "pip" | "setuptools") {
            diffs.push(format!("{name}: {v} installed, not in the lock"));
        }
    }
    assert!(
        diffs.is_empty(),
        "the venv {} differs from scripts/requirements.lock:\n{}",
        venv.display(),
        diffs.join("\n")
    );
}
