//! `ipuflow run --device npu` is the 1.0 spelling; `ipu` (0.1) is kept as an alias and behaves the same.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ipuflow"))
        .args(args)
        .output()
        .expect("the ipuflow binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

#[test]
fn help_names_npu() {
    let (code, help) = run(&["run", "--help"]);
    assert_eq!(code, 0, "{help}");
    assert!(help.contains("npu"), "{help}");
}

#[test]
fn npu_and_its_ipu_alias_are_both_accepted_and_mean_the_same() {
    let dir = std::env::temp_dir().join(format!("ipuflow-cli-npu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.onnx");
    let m = missing.to_str().unwrap();
    // The device parses (no clap error about the value); the run then fails on the missing model, the same way.
    let (c1, t1) = run(&["run", m, "--device", "npu"]);
    let (c2, t2) = run(&["run", m, "--device", "ipu"]);
    let (c3, t3) = run(&["run", m, "--device", "NPU"]);
    for t in [&t1, &t2, &t3] {
        assert!(!t.contains("invalid value"), "{t}");
        assert!(t.contains("missing.onnx"), "{t}");
    }
    assert_eq!(c1, c2, "{t1}\n{t2}");
    assert_eq!(c1, c3);
    assert_ne!(c1, 0);
    // An unknown device is still refused by name.
    let (c4, t4) = run(&["run", m, "--device", "gpu"]);
    assert_ne!(c4, 0);
    assert!(t4.contains("gpu"), "{t4}");
    std::fs::remove_dir_all(&dir).ok();
}
