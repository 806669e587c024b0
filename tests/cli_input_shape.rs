//! `--input-shape NAME=D0,D1,...` (issue 11 item 3): quantize, check and run fix a dynamic input the same way
//! (`ipuflow::onnx::apply_input_shapes`); check names the dimension still dynamic and the option that fixes it; run
//! prints the shapes it used (JSON too) and refuses to invent a size for a dynamic dimension. Also the library's
//! session option.

mod ort_support;

use std::path::PathBuf;

use ipuflow::onnx::proto::GraphProto;
use ipuflow::onnx::InputShape;
use ipuflow::runtime::{Session, SessionOptions};
use ort_support::cli::{expect, json, quantize, s, text, write_npy};
use ort_support::{conv_pad1, f32_init, model, node, vi, D};

fn tmpdir(name: &str) -> PathBuf {
    ort_support::cli::tmpdir("shape", name)
}

/// x [N,3,H,W] -> Conv(4, 3x3, pad 1) -> Relu -> Conv(4, 3x3, pad 1) -> y [N,4,H,W]: a detector-like model whose
/// batch, height and width are all dynamic.
fn dynamic_conv_model() -> Vec<u8> {
    fn w(name: &str, dims: &[i64]) -> ipuflow::onnx::proto::TensorProto {
        let n: i64 = dims.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 40.0)
            .collect();
        f32_init(name, dims, &v)
    }
    let dyn4 = |c| [D::Sym("N"), D::Fixed(c), D::Sym("H"), D::Sym("W")];
    model(GraphProto {
        name: Some("dynconv".into()),
        node: vec![
            conv_pad1(&["x", "w1", "b1"], "c1"),
            node("Relu", &["c1"], &["r1"]),
            conv_pad1(&["r1", "w2", "b2"], "y"),
        ],
        initializer: vec![
            w("w1", &[4, 3, 3, 3]),
            w("b1", &[4]),
            w("w2", &[4, 4, 3, 3]),
            w("b2", &[4]),
        ],
        input: vec![vi("x", 1, &dyn4(3))],
        output: vec![vi("y", 1, &dyn4(4))],
        ..Default::default()
    })
}

fn setup(name: &str) -> (PathBuf, PathBuf) {
    let dir = tmpdir(name);
    let m = dir.join("dyn.onnx");
    std::fs::write(&m, dynamic_conv_model()).unwrap();
    (dir, m)
}

#[test]
fn run_refuses_to_invent_a_size_and_prints_the_shapes_it_used() {
    let (dir, m) = setup("run");
    let o = expect(&["run", s(&m), "--device", "cpu", "--repeat", "1"], 1);
    let err = text(&o.stderr);
    assert!(
        err.contains("'x'")
            && err.contains("does not invent")
            && err.contains("--input-shape x=1,3,H,W"),
        "{err}"
    );
    let v = json(&expect(
        &[
            "run",
            s(&m),
            "--device",
            "cpu",
            "--repeat",
            "1",
            "--input-shape",
            "x=1,3,20,24",
            "--json",
        ],
        0,
    ));
    assert_eq!(v["inputs"][0]["name"], "x");
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 3, 20, 24]));
    assert_eq!(v["inputs"][0]["source"], "generated");
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([1, 4, 20, 24]));
    let o = expect(
        &[
            "run",
            s(&m),
            "--device",
            "cpu",
            "--repeat",
            "1",
            "--input-shape",
            "x=2,3,8,8",
        ],
        0,
    );
    let t = text(&o.stdout);
    assert!(
        t.contains("input       x float [2, 3, 8, 8] (generated"),
        "{t}"
    );
    // A shape that does not fit the model is the user's error, naming the input and the dimension.
    for (spec, says) in [
        ("y=1,3,8,8", "no input 'y'"),
        ("x=1,3,8", "rank 4"),
        ("x=1,4,8,8", "fixed at 3"),
    ] {
        let o = expect(&["run", s(&m), "--repeat", "1", "--input-shape", spec], 1);
        assert!(
            text(&o.stderr).contains(says),
            "{spec}: {}",
            text(&o.stderr)
        );
    }
    // Not a shape at all: usage (exit 2).
    for bad in ["x", "x=1,0,8,8", "x=a,b"] {
        expect(&["run", s(&m), "--input-shape", bad], 2);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_names_the_dynamic_dimensions_and_the_option_that_fixes_them() {
    let (dir, m) = setup("check");
    let t = text(&expect(&["check", s(&m)], 0).stdout);
    assert!(
        t.contains("input 'x' [N,3,H,W]: dimension 0 ('N'), 2 ('H'), 3 ('W') dynamic")
            && t.contains("`--input-shape x=N,3,H,W` fixes it"),
        "{t}"
    );
    assert!(!t.contains("--batch"), "{t}");
    let t = text(&expect(&["check", s(&m), "--input-shape", "x=1,3,32,32"], 0).stdout);
    assert!(!t.contains("dynamic"), "{t}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn quantize_writes_the_fixed_shape_and_check_agrees() {
    let (dir, m) = setup("quantize");
    let calib = dir.join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    for i in 0..4 {
        let v: Vec<f32> = (0..3 * 32 * 32)
            .map(|k| ((k * (i + 3)) % 29) as f32 / 14.5 - 1.0)
            .collect();
        write_npy(&calib.join(format!("{i}.npy")), &[1, 3, 32, 32], &v);
    }
    let q = dir.join("q.onnx");
    quantize(
        &m,
        &q,
        "xint8",
        &calib,
        &["--input-shape", "x=1,3,32,32"],
        0,
    );
    let t = text(&expect(&["inspect", s(&q)], 0).stdout);
    assert!(t.contains("input     x float [1, 3, 32, 32]"), "{t}");
    let t = text(&expect(&["check", s(&q)], 0).stdout);
    assert!(!t.contains("dynamic"), "{t}");
    // Provenance (issue 11 item 7): the file says how it was made, and inspect shows it.
    let t = text(&expect(&["inspect", s(&q)], 0).stdout);
    assert!(
        t.contains(&format!(
            "made by   ipuflow {}, preset XINT8, ONNX Runtime ",
            env!("CARGO_PKG_VERSION")
        )) && t.contains("calibration data sha256:")
            && t.contains("over 4 samples")
            && t.contains("\"input_shapes\":[\"x=1,3,32,32\"]"),
        "{t}"
    );
    let v = json(&expect(&["inspect", s(&q), "--json"], 0));
    let calib4 = v["provenance"]["calibration"].as_str().unwrap().to_string();
    assert_eq!(v["provenance"]["preset"], "XINT8");
    let q3 = dir.join("q3.onnx");
    quantize(
        &m,
        &q3,
        "a8w8",
        &calib,
        &["--input-shape", "x=1,3,32,32", "--max-samples", "3"],
        0,
    );
    let v = json(&expect(&["inspect", s(&q3), "--json"], 0));
    assert_eq!(v["provenance"]["preset"], "A8W8");
    let calib3 = v["provenance"]["calibration"].as_str().unwrap();
    assert!(
        calib3.ends_with("over 3 samples") && calib3 != calib4,
        "{calib3} vs {calib4}"
    );
    // A float model has no record.
    let v = json(&expect(&["inspect", s(&m), "--json"], 0));
    assert_eq!(v["provenance"], serde_json::json!({}));
    // A wrong name is refused before calibrating, naming the inputs, and writes nothing.
    let q2 = dir.join("q2.onnx");
    let o = quantize(
        &m,
        &q2,
        "xint8",
        &calib,
        &["--input-shape", "images=1,3,32,32"],
        1,
    );
    assert!(
        text(&o.stderr).contains("'x' [N,3,H,W]"),
        "{}",
        text(&o.stderr)
    );
    assert!(!q2.exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn session_option_fixes_the_input_for_onnx_runtime() {
    ort_support::runtime();
    let (dir, m) = setup("session");
    let plain = Session::from_file(&m, &SessionOptions::default()).unwrap();
    assert_eq!(plain.inputs()[0].shape, vec![-1, 3, -1, -1]);
    let opts = SessionOptions {
        input_shapes: vec![InputShape::parse("x=1,3,40,30").unwrap()],
        ..Default::default()
    };
    for s in [
        Session::from_file(&m, &opts).unwrap(),
        Session::from_bytes(&std::fs::read(&m).unwrap(), &opts).unwrap(),
    ] {
        assert_eq!(s.inputs()[0].shape, vec![1, 3, 40, 30]);
        assert_eq!(s.outputs()[0].shape[..2], [1, 4]);
    }
    let bad = SessionOptions {
        input_shapes: vec![InputShape::parse("x=1,3,40").unwrap()],
        ..Default::default()
    };
    let e = Session::from_file(&m, &bad).unwrap_err();
    assert_eq!(e.kind(), ipuflow::ErrorKind::InvalidArgument);
    assert!(e.message().contains("rank 4"), "{}", e.message());
    let _ = std::fs::remove_dir_all(dir);
}
