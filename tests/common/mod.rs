//! Test data that can be absent on a developer's machine (../shared, the demo cache, the Python venv, a C compiler)
//! and what a test does then. Outside CI it prints why it checks nothing and returns; under CI (the `CI` environment
//! variable set to anything but "", "0", "false" or "no", as CI services and `scripts/test.sh --ci` do) the missing
//! data FAILS the test: cargo hides the printed reason of a passing test, so a suite could otherwise pass green
//! having checked nothing.
//!
//! Use: `mod common;` (tests/ort_support includes it as `ort_support::common`).
#![allow(dead_code)]

use std::path::PathBuf;

/// Whether this is a CI run (the `CI` variable, as CI services set it).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        )
    })
}

/// Call where a test is about to return early for want of `what`: panics under CI, else prints the reason.
#[track_caller]
pub fn missing(what: impl std::fmt::Display) {
    if ci() {
        panic!(
            "CI: missing test data: {what} (outside CI this test would skip; under CI it must not)"
        );
    }
    eprintln!("SKIPPED (missing test data; this fails under CI=true): {what}");
}

/// `../shared` beside the repository (read-only material; CI always has it).
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// `../shared/<rel>` when it exists, else [`missing`] and None.
#[track_caller]
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = shared_dir().join(rel);
    if p.exists() {
        Some(p)
    } else {
        missing(format_args!(
            "{} is not there (it comes with ../shared)",
            p.display()
        ));
        None
    }
}

/// Where the scripts cache downloads: `IPUFLOW_CACHE`, else ~/.cache/ipuflow (scripts/common.sh).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("IPUFLOW_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ipuflow")
        })
}
