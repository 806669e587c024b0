//! Running the `ipuflow` command in the tests: a fresh folder per test, the command with the test's ONNX Runtime,
//! exit codes checked with both streams printed on failure, and the .npy files the command reads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ipuflow");

/// An empty folder `ipuflow-<suite>-<pid>-<name>` in the temporary directory (emptied if a run left it behind).
pub fn tmpdir(suite: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ipuflow-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The command with `args`, pointed at the tests' ONNX Runtime.
pub fn ipuflow(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    c.env("IPUFLOW_ORT_LIBRARY", super::ort_library());
    c
}

pub fn run(args: &[&str]) -> Output {
    ipuflow(args).output().expect("spawning ipuflow")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and checks the exit code, printing both streams on failure.
#[track_caller]
pub fn expect(args: &[&str], code: i32) -> Output {
    let o = run(args);
    assert_eq!(
        o.status.code(),
        Some(code),
        "ipuflow {args:?}: expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    o
}

/// Standard output parsed as JSON.
#[track_caller]
pub fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(&o.stdout)))
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A .npy (version 1) file of little-endian f32 of `shape`.
pub fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    write_npy_raw(path, &shape_s, values);
}

/// A .npy (version 1) file of little-endian f32; `shape_s` is the header's shape tuple as written (also a wrong
/// one, for the tests of bad files).
pub fn write_npy_raw(path: &Path, shape_s: &str, values: &[f32]) {
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_s}, }}");
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend((h.len() as u16).to_le_bytes());
    v.extend(h.as_bytes());
    v.extend(values.iter().flat_map(|f| f.to_le_bytes()));
    std::fs::write(path, v).unwrap();
}

/// `ipuflow quantize MODEL -o OUT --preset PRESET --calib CALIB EXTRA...`, checked as [`expect`].
#[track_caller]
pub fn quantize(
    m: &Path,
    out: &Path,
    preset: &str,
    calib: &Path,
    extra: &[&str],
    code: i32,
) -> Output {
    let mut args = vec![
        "quantize",
        s(m),
        "-o",
        s(out),
        "--preset",
        preset,
        "--calib",
        s(calib),
    ];
    args.extend_from_slice(extra);
    expect(&args, code)
}
