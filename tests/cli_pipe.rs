//! `ipuflow ... | head -1`: a reader that closes the pipe early ends the program quietly with exit 0 (it used to
//! panic with "failed printing to stdout: Broken pipe", exit 101).

mod ort_support;

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ipuflow");

/// Runs `ipuflow ARGS` with stdout a pipe whose read end is closed before the program writes a byte, so its first
/// write fails with EPIPE, deterministically (a reader that reads one line first could race the child's output
/// into the pipe's buffer and never see the failure).
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("IPUFLOW_ORT_LIBRARY", ort_support::ort_library())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning ipuflow");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waiting for ipuflow");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn closed_stdout_ends_quietly_with_exit_0() {
    let dir = std::env::temp_dir().join(format!("ipuflow-cli-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("add.onnx");
    std::fs::write(&model, ort_support::add_model()).unwrap();
    let m = model.to_str().unwrap();
    for args in [
        vec!["inspect", m],
        vec!["check", m],
        vec!["--json", "inspect", m],
        // The add model's first input is [N,4]: run needs its size.
        vec!["run", m, "--repeat", "2", "--input-shape", "x=1,4"],
    ] {
        let (code, stderr) = with_closed_stdout(&args);
        assert_eq!(code, Some(0), "ipuflow {args:?}: stderr {stderr}");
        assert!(!stderr.contains("panicked"), "ipuflow {args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
