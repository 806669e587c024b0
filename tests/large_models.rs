//! Models over protobuf's 2 GiB limit (issue 9, class 5), through the `ipuflow` command: a model whose 2.4 GB of
//! weights live in an external data file is inspected, pre-flighted and run. The data file is sparse (made with
//! `set_len`), so the test writes a few hundred bytes, not gigabytes; ONNX Runtime maps it.
//!
//! `inspect` and `check` must not read the weights (peak memory of the child well under their size); `run` must
//! create the session from the path instead of re-serializing the model (which cannot exceed 2 GiB).

#![cfg(unix)]

mod ort_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ipuflow::onnx::proto::{
    tensor_proto, GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
};
use ipuflow::onnx::Model;
use ort_support::{node, vi, D};

const BIN: &str = env!("CARGO_BIN_EXE_ipuflow");
/// 600 M floats: 2.4 GB, over protobuf's 2 GiB - 1.
const N: i64 = 600_000_000;

/// `y = Gather(w, i)` with `w` float [N] in external file `w.bin` (offset 0) and `i` int64 [1].
fn write_big_model(dir: &Path) -> PathBuf {
    let w = TensorProto {
        name: Some("w".into()),
        dims: vec![N],
        data_type: Some(tensor_proto::DataType::Float as i32),
        data_location: Some(tensor_proto::DataLocation::External as i32),
        external_data: ["location=w.bin", "offset=0", &format!("length={}", N * 4)]
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                StringStringEntryProto {
                    key: Some(k.into()),
                    value: Some(v.into()),
                }
            })
            .collect(),
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        producer_name: Some("ipuflow-tests".into()),
        graph: Some(GraphProto {
            name: Some("big".into()),
            node: vec![node("Gather", &["w", "i"], &["y"])],
            initializer: vec![w],
            input: vec![vi("i", 7, &[D::Fixed(1)])],
            output: vec![vi("y", 1, &[D::Fixed(1)])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = dir.join("big.onnx");
    std::fs::write(&path, Model::from_proto(proto).to_bytes().unwrap()).unwrap();
    let data = std::fs::File::create(dir.join("w.bin")).unwrap();
    data.set_len((N * 4) as u64).unwrap(); // a hole: no disk blocks, reads as zeros
    path
}

/// Runs ipuflow and returns (exit code, stdout, stderr, peak resident memory of the child in MB).
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its peak memory
fn run_measured(args: &[&str]) -> (i32, String, String, u64) {
    let child = Command::new(BIN)
        .args(args)
        .env("IPUFLOW_ORT_LIBRARY", ort_support::ort_library())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (mut out, mut err) = (child.stdout.unwrap(), child.stderr.unwrap());
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut out, &mut stdout).unwrap();
    let stderr = t.join().unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, stdout, stderr, usage.ru_maxrss as u64 / 1024)
}

#[test]
fn a_model_over_2_gib_with_external_data_is_inspected_checked_and_run() {
    let dir = std::env::temp_dir().join(format!("ipuflow-large-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model = write_big_model(&dir);
    let m = model.to_str().unwrap();
    let weights_mb = (N * 4) as u64 / 1_000_000;

    for cmd in [vec!["inspect", m], vec!["check", m, "--cpu-only"]] {
        let (code, out, err, rss) = run_measured(&cmd);
        assert_eq!(code, 0, "ipuflow {cmd:?}\n{out}\n{err}");
        eprintln!(
            "ipuflow {}: peak RSS {rss} MB (weights {weights_mb} MB)",
            cmd[0]
        );
        assert!(
            rss < weights_mb / 4,
            "ipuflow {} held {rss} MB for {weights_mb} MB of weights",
            cmd[0]
        );
    }

    let (code, out, err, rss) = run_measured(&["--json", "run", m, "--device", "cpu"]);
    assert_eq!(code, 0, "ipuflow run\n{out}\n{err}");
    eprintln!("ipuflow run: peak RSS {rss} MB (weights {weights_mb} MB)");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["outputs"][0]["name"], "y", "{v}");
    assert_eq!(v["outputs"][0]["max"], 0.0, "{v}");
    let _ = std::fs::remove_dir_all(dir);
}
