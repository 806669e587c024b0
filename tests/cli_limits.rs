//! Hostile and clumsy input against the `ipuflow` command (issue 9, classes 4, 6, 7 and 10): sizes over the limits
//! of `ipuflow::limits` are refused with a message instead of aborting, model strings are escaped before they reach
//! the terminal, data without a finite value and results with nothing quantized are errors, `--json` usage errors
//! are JSON, a truncated JPEG is named, NaN weights are refused, and quantized models carry no unused initializer.
//!
//! Models are built in memory (tests/ort_support); calibration data is written here.

mod ort_support;

use std::path::PathBuf;

use ipuflow::onnx::proto::{GraphProto, ModelProto, OperatorSetIdProto};
use ipuflow::onnx::Model;
use ort_support::cli::{expect, quantize, s, text, write_npy_raw};
use ort_support::{conv_pad1, f32_init, model, node, noise, vi, D};
use serde_json::Value;

fn tmpdir(name: &str) -> PathBuf {
    ort_support::cli::tmpdir("limits", name)
}

/// x [1,3,16,16] -> Conv(4, 3x3, pad 1) -> Clip(cmin, cmax) -> Conv(4, 3x3) -> GlobalAveragePool -> Flatten -> y.
/// `w1` may be given (e.g. with a NaN in it); the Clip's bounds are initializers, as exporters write them.
fn conv_clip_model(w1: Option<Vec<f32>>) -> Vec<u8> {
    model(GraphProto {
        name: Some("conv".into()),
        node: vec![
            conv_pad1(&["x", "w1", "b1"], "c1"),
            node("Clip", &["c1", "cmin", "cmax"], &["r1"]),
            conv_pad1(&["r1", "w2", "b2"], "c2"),
            node("GlobalAveragePool", &["c2"], &["g"]),
            node("Flatten", &["g"], &["y"]),
        ],
        initializer: vec![
            f32_init(
                "w1",
                &[4, 3, 3, 3],
                &w1.unwrap_or_else(|| noise(108, 1).iter().map(|v| v * 0.3).collect()),
            ),
            f32_init("b1", &[4], &noise(4, 2)),
            f32_init(
                "w2",
                &[4, 4, 3, 3],
                &noise(144, 3).iter().map(|v| v * 0.3).collect::<Vec<_>>(),
            ),
            f32_init("b2", &[4], &noise(4, 4)),
            f32_init("cmin", &[], &[0.0]),
            f32_init("cmax", &[], &[6.0]),
        ],
        input: vec![vi(
            "x",
            1,
            &[D::Fixed(1), D::Fixed(3), D::Fixed(16), D::Fixed(16)],
        )],
        output: vec![vi("y", 1, &[D::Fixed(1), D::Fixed(4)])],
        ..Default::default()
    })
}

/// A folder with the conv/clip model (`w1` as given) and `n` calibration samples made by `sample(i)`.
fn setup(
    name: &str,
    w1: Option<Vec<f32>>,
    n: usize,
    sample: impl Fn(usize) -> Vec<f32>,
) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(name);
    let m = dir.join("conv.onnx");
    std::fs::write(&m, conv_clip_model(w1)).unwrap();
    let calib = dir.join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    for i in 0..n {
        write_npy_raw(
            &calib.join(format!("{i:03}.npy")),
            "(1, 3, 16, 16)",
            &sample(i),
        );
    }
    (dir, m, calib)
}

// ---------------------------------------------------------------------------------------------------------------
// Class 4: sizes from options and files are bounded

#[test]
fn threads_and_runs_over_the_limit_are_usage_errors() {
    let dir = tmpdir("threads");
    let m = dir.join("add.onnx");
    std::fs::write(&m, ort_support::add_model()).unwrap();
    // Before the bound, ONNX Runtime spent minutes creating 100 000 threads.
    let o = expect(&["run", s(&m), "--threads", "100000", "--repeat", "1"], 2);
    assert!(text(&o.stderr).contains("1024"), "{}", text(&o.stderr));
    expect(
        &[
            "run",
            s(&m),
            "--threads",
            "2",
            "--repeat",
            "1",
            "--input-shape",
            "x=1,4",
        ],
        0,
    );
    // Every latency is kept for the percentiles: 10^11 runs reserved 800 GB up front and aborted.
    let o = expect(&["run", s(&m), "--repeat", "100000000000"], 2);
    assert!(text(&o.stderr).contains("1000000"), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn image_sizes_over_the_limit_are_refused_naming_the_option() {
    let (dir, m, _) = setup("crop", None, 0, |_| vec![]);
    let imgs = dir.join("images");
    std::fs::create_dir_all(&imgs).unwrap();
    image::RgbImage::from_fn(24, 20, |x, y| {
        image::Rgb([(x * 10) as u8, (y * 12) as u8, 7])
    })
    .save(imgs.join("a.png"))
    .unwrap();
    let q = dir.join("q.onnx");
    // 100000² pixels: the allocator aborted the process ("memory allocation of N bytes failed").
    for (opt, v) in [("--crop", "100000"), ("--resize", "100000")] {
        let o = quantize(&m, &q, "xint8", &imgs, &[opt, v], 1);
        let err = text(&o.stderr);
        assert!(
            err.contains("8192") && err.contains(if opt == "--crop" { "crop" } else { "resize" }),
            "{opt}: {err}"
        );
        assert!(!q.exists());
    }
    // A long thin image resized on its shorter side grows along the other one past the limit.
    std::fs::remove_file(imgs.join("a.png")).unwrap();
    image::RgbImage::from_fn(4000, 1, |x, _| image::Rgb([x as u8, 0, 0]))
        .save(imgs.join("thin.png"))
        .unwrap();
    let o = quantize(&m, &q, "xint8", &imgs, &["--resize", "8000"], 1);
    let err = text(&o.stderr);
    assert!(err.contains("thin.png") && err.contains("limit"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_model_input_too_large_to_generate_is_refused_naming_it() {
    let dir = tmpdir("huge-input");
    let m = dir.join("huge.onnx");
    let dims = [D::Fixed(100_000), D::Fixed(100_000), D::Fixed(100)];
    std::fs::write(
        &m,
        model(GraphProto {
            name: Some("huge".into()),
            node: vec![node("Relu", &["big"], &["y"])],
            input: vec![vi("big", 1, &dims)],
            output: vec![vi("y", 1, &dims)],
            ..Default::default()
        }),
    )
    .unwrap();
    // 4·10¹² bytes of generated input: an abort before the limit.
    let o = expect(&["run", s(&m), "--repeat", "1"], 1);
    let err = text(&o.stderr);
    assert!(err.contains("'big'") && err.contains("limit"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_npy_header_declaring_a_huge_shape_is_refused_naming_the_limit() {
    let (dir, m, calib) = setup("npy", None, 0, |_| vec![]);
    // 4 TiB declared by a 16-byte file: refused as over the limit (it was only a size mismatch), and a shape whose
    // product overflows is refused the same way.
    for shape in ["(1048576, 1048576)", "(1099511627776, 1099511627776)"] {
        write_npy_raw(&calib.join("000.npy"), shape, &[1.0; 4]);
        let o = quantize(&m, &dir.join("q.onnx"), "xint8", &calib, &["--json"], 1);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["error"]["kind"], "LimitExceeded", "{shape}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("000.npy") && msg.contains("4 GiB"), "{msg}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------------------------
// Class 6: model strings are escaped

/// A model whose producer, node, tensor and metadata strings carry terminal escape sequences.
fn hostile_model() -> Vec<u8> {
    let evil_in = "x\u{1b}]0;pwned\u{7}";
    let evil_out = "y\u{1b}[2J\u{9b}31m\u{202e}";
    let mut n = node("Relu", &[evil_in], &[evil_out]);
    n.name = Some("relu\u{1b}[31m".into());
    let dims = [D::Fixed(1), D::Fixed(4)];
    let proto = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        producer_name: Some("evil\u{1b}]0;owned\u{7}\u{1b}c".into()),
        producer_version: Some("1\u{1b}[2J".into()),
        graph: Some(GraphProto {
            name: Some("g\u{1b}[H".into()),
            node: vec![n],
            input: vec![vi(evil_in, 1, &dims)],
            output: vec![vi(evil_out, 1, &dims)],
            ..Default::default()
        }),
        ..Default::default()
    };
    Model::from_proto(proto).to_bytes().unwrap()
}

fn assert_no_controls(what: &str, out: &[u8]) {
    let t = text(out);
    let bad: Vec<char> = t
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
        .collect();
    assert!(
        bad.is_empty(),
        "{what} printed raw control characters {bad:?}:\n{t:?}"
    );
}

#[test]
fn model_strings_are_escaped_in_every_output() {
    let dir = tmpdir("escape");
    let m = dir.join("evil.onnx");
    std::fs::write(&m, hostile_model()).unwrap();
    let o = expect(&["inspect", s(&m)], 0);
    assert_no_controls("inspect", &o.stdout);
    assert!(
        text(&o.stdout).contains("evil\\x1b]0;owned\\x07"),
        "{}",
        text(&o.stdout)
    );
    let o = expect(&["check", s(&m)], 0);
    assert_no_controls("check", &o.stdout);
    let o = expect(&["run", s(&m), "--repeat", "1"], 0);
    assert_no_controls("run", &o.stdout);
    assert_no_controls("run (stderr)", &o.stderr);
    assert!(text(&o.stdout).contains("\\u{202e}"), "{}", text(&o.stdout));
    // An error message quoting a model name is escaped too.
    write_npy_raw(&dir.join("in.npy"), "(1, 4)", &[1.0; 4]);
    let o = expect(
        &[
            "run",
            s(&m),
            "--input",
            &format!("nope={}", s(&dir.join("in.npy"))),
        ],
        1,
    );
    assert_no_controls("run error", &o.stderr);
    // JSON: serde escapes C0, ipuflow DEL/C1; the document still decodes to the model's strings.
    for cmd in ["inspect", "check"] {
        let o = expect(&[cmd, s(&m), "--json"], 0);
        assert_no_controls(cmd, &o.stdout);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v.to_string().contains("\\u001b"), "{cmd}: {v}");
    }
    let o = expect(&["inspect", s(&m), "--json"], 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["y\u{1b}[2J\u{9b}31m\u{202e}"], "{v}");
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------------------------
// Class 7: silent non-results

#[test]
fn calibration_without_a_finite_value_is_an_error_naming_the_input() {
    let (dir, m, calib) = setup("nan", None, 2, |_| vec![f32::NAN; 768]);
    let q = dir.join("q.onnx");
    // Before: exit 0 and an "XINT8" model in which no node is quantized.
    let o = quantize(&m, &q, "xint8", &calib, &[], 1);
    let err = text(&o.stderr);
    assert!(err.contains("'x'") && err.contains("finite"), "{err}");
    assert!(!q.exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_tiny_std_is_refused_naming_the_option() {
    let (dir, m, _) = setup("std", None, 0, |_| vec![]);
    let imgs = dir.join("images");
    std::fs::create_dir_all(&imgs).unwrap();
    image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 10) as u8, (y * 12) as u8, 7])
    })
    .save(imgs.join("a.png"))
    .unwrap();
    let q = dir.join("q.onnx");
    let o = quantize(&m, &q, "xint8", &imgs, &["--std", "1e-40,1e-40,1e-40"], 1);
    assert!(text(&o.stderr).contains("std"), "{}", text(&o.stderr));
    assert!(!q.exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn nothing_quantized_is_an_error_with_the_reason() {
    let (dir, m, calib) = setup("nothing", None, 2, |i| noise(768, i as u32));
    let q = dir.join("q.onnx");
    let o = quantize(
        &m,
        &q,
        "xint8",
        &calib,
        &[
            "--exclude",
            "Conv",
            "--exclude",
            "Clip",
            "--exclude",
            "GlobalAveragePool",
            "--exclude",
            "Flatten",
            "--json",
        ],
        1,
    );
    let err = text(&o.stderr);
    assert!(err.contains("no node") && err.contains("exclude"), "{err}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "NothingQuantized", "{v}");
    assert!(!q.exists());
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------------------------
// Class 10: the smaller ones

#[test]
fn json_usage_errors_print_json_on_stdout() {
    for args in [
        &["--json", "inspect", "--no-such-option"][..],
        &["inspect", "--json"][..],
        &["run", "m.onnx", "--json", "--device", "gpu"][..],
    ] {
        let o = expect(args, 2);
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {}", text(&o.stdout)));
        assert_eq!(v["error"]["exit_code"], 2, "{v}");
        assert_eq!(v["error"]["kind"], "Usage", "{v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty(), "{v}");
    }
    // Without --json, stdout stays empty.
    let o = expect(&["inspect", "--no-such-option"], 2);
    assert!(o.stdout.is_empty());
}

#[test]
fn a_truncated_jpeg_is_an_error_naming_the_file() {
    let (dir, m, _) = setup("jpeg", None, 0, |_| vec![]);
    let imgs = dir.join("images");
    std::fs::create_dir_all(&imgs).unwrap();
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8])
    });
    let mut jpeg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    std::fs::write(imgs.join("good.jpg"), &jpeg).unwrap();
    let q = dir.join("q.onnx");
    quantize(&m, &q, "xint8", &imgs, &[], 0);
    std::fs::remove_file(&q).unwrap();
    std::fs::write(imgs.join("half.jpg"), &jpeg[..jpeg.len() * 2 / 3]).unwrap();
    let o = quantize(&m, &q, "xint8", &imgs, &[], 1);
    let err = text(&o.stderr);
    assert!(
        err.contains("half.jpg") && err.contains("truncated"),
        "{err}"
    );
    assert!(!q.exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn nan_weights_are_refused_naming_the_tensor() {
    let mut w1: Vec<f32> = noise(108, 1).iter().map(|v| v * 0.3).collect();
    w1[5] = f32::NAN;
    w1[7] = f32::INFINITY;
    let (dir, m, calib) = setup("nanw", Some(w1), 2, |i| noise(768, i as u32));
    let q = dir.join("q.onnx");
    let o = quantize(&m, &q, "xint8", &calib, &[], 1);
    let err = text(&o.stderr);
    assert!(err.contains("'w1'") && err.contains("2 NaN"), "{err}");
    assert!(!q.exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn quantized_models_carry_no_unused_initializer() {
    let (dir, m, calib) = setup("unused", None, 2, |i| noise(768, i as u32));
    for preset in ["xint8", "a8w8", "a16w8", "cpu"] {
        let q = dir.join(format!("q-{preset}.onnx"));
        quantize(&m, &q, preset, &calib, &[], 0);
        let model = Model::load_file(&q).unwrap();
        let g = model.proto().graph.as_ref().unwrap();
        let mut used: Vec<&str> = g
            .node
            .iter()
            .flat_map(|n| n.input.iter().map(|s| s.as_str()))
            .collect();
        used.extend(g.output.iter().filter_map(|o| o.name.as_deref()));
        let unused: Vec<&str> = g
            .initializer
            .iter()
            .filter_map(|t| t.name.as_deref())
            .filter(|n| !used.contains(n))
            .collect();
        assert!(
            unused.is_empty(),
            "{preset}: unused initializers {unused:?}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
