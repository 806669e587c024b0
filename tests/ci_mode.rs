//! CI mode of the tests (tests/common): a test without its data skips with a printed reason outside CI and fails
//! under `CI=true`. Runs this binary's own probe test as a child process under each setting of `CI`.

mod common;

use std::process::Command;

/// The probe: reports missing data when run as the child of the test below, else does nothing.
#[test]
fn probe_missing_data() {
    if std::env::var_os("IPUFLOW_CI_MODE_PROBE").is_some() {
        common::missing("the probe's data (on purpose)");
    }
}

#[test]
fn missing_data_fails_under_ci_and_skips_outside() {
    for (ci, fails) in [
        (Some("true"), true),
        (Some("1"), true),
        (Some("TRUE"), true),
        (Some(""), false),
        (Some("false"), false),
        (Some("0"), false),
        (None, false),
    ] {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "probe_missing_data",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("IPUFLOW_CI_MODE_PROBE", "1")
        .env_remove("CI");
        if let Some(v) = ci {
            cmd.env("CI", v);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert_eq!(!out.status.success(), fails, "CI={ci:?}:\n{text}");
        let expect = if fails {
            "CI: missing test data: the probe's data"
        } else {
            "SKIPPED (missing test data; this fails under CI=true): the probe's data"
        };
        assert!(text.contains(expect), "CI={ci:?}: no {expect:?} in\n{text}");
    }
}
