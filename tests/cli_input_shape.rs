//! `--input-shape NAME=D0,D1,...` (issue 11 item 3): quantize, check and run fix a dynamic input the same way
//! (`ipuflow::onnx::apply_input_shapes`); check names the dimension still dynamic and the option that fixes it; run
//! prints the shapes it used (JSON too) and refuses to invent a size for a dynamic dimension. Also the library's
//! session option.

mod ort_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use ipuflow::onnx::proto::{AttributeProto, GraphProto, TensorProto};
use ipuflow::onnx::InputShape;
use ipuflow::runtime::{Session, SessionOptions};
use ort_support::{model, node, vi, D};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ipuflow");

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ipuflow-shape-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn expect(args: &[&str], code: i32) -> Output {
    let o = std::process::Command::new(BIN)
        .args(args)
        .env("IPUFLOW_ORT_LIBRARY", ort_support::ort_library())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(code),
        "ipuflow {args:?}\n--- stdout\n{}\n--- stderr\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    o
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// x [N,3,H,W] -> Conv(4, 3x3, pad 1) -> Relu -> Conv(4, 3x3, pad 1) -> y [N,4,H,W]: a detector-like model whose
/// batch, height and width are all dynamic.
fn dynamic_conv_model() -> Vec<u8> {
    fn w(name: &str, dims: &[i64]) -> TensorProto {
        let n: i64 = dims.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 40.0)
            .collect();
        TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(1),
            raw_data: Some(v.iter().flat_map(|f| f.to_le_bytes()).collect()),
            ..Default::default()
        }
    }
    let pads = AttributeProto {
        name: Some("pads".into()),
        r#type: Some(7),
        ints: vec![1, 1, 1, 1],
        ..Default::default()
    };
    let mut c1 = node("Conv", &["x", "w1", "b1"], &["c1"]);
    c1.attribute.push(pads.clone());
    let mut c2 = node("Conv", &["r1", "w2", "b2"], &["y"]);
    c2.attribute.push(pads);
    let dyn4 = |c| [D::Sym("N"), D::Fixed(c), D::Sym("H"), D::Sym("W")];
    model(GraphProto {
        name: Some("dynconv".into()),
        node: vec![c1, node("Relu", &["c1"], &["r1"]), c2],
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

fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut h = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}",
        dims.join(", ")
    );
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend((h.len() as u16).to_le_bytes());
    v.extend(h.as_bytes());
    v.extend(values.iter().flat_map(|f| f.to_le_bytes()));
    std::fs::write(path, v).unwrap();
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
    expect(
        &[
            "quantize",
            s(&m),
            "-o",
            s(&q),
            "--preset",
            "xint8",
            "--calib",
            s(&calib),
            "--input-shape",
            "x=1,3,32,32",
        ],
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
    expect(
        &[
            "quantize",
            s(&m),
            "-o",
            s(&q3),
            "--preset",
            "a8w8",
            "--calib",
            s(&calib),
            "--input-shape",
            "x=1,3,32,32",
            "--max-samples",
            "3",
        ],
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
    let o = expect(
        &[
            "quantize",
            s(&m),
            "-o",
            s(&q2),
            "--preset",
            "xint8",
            "--calib",
            s(&calib),
            "--input-shape",
            "images=1,3,32,32",
        ],
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
