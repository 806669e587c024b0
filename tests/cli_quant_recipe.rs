//! `ipuflow quantize` recipe switches (issue 12): `--equalize on|off`, `--replace-relu6`, `--bias-correction
//! on|off`, `--learned-rounding on|off`, `--weight-range minmax|minmse` and `--bias int8|int32`. Defaults are the
//! preset's; what was used is printed (`recipe` in `--json`) and recorded in the model's provenance
//! (`ipuflow.settings`); each switch changes what the quantizer does (its notes, the quantized weights).

mod ort_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use ipuflow::onnx::Model;
use ort_support::common;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ipuflow");

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ipuflow-recipe-{}-{name}", std::process::id()));
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

/// BlazeFace and the calibration photos from ../shared, or None (skipped outside CI).
fn material() -> Option<(PathBuf, PathBuf)> {
    Some((
        common::shared("models/blazeface-short-range.onnx")?,
        common::shared("data/images/calib")?,
    ))
}

/// Quantizes with `extra` flags and `samples` calibration photos; gives the `--json` outcome and the output path.
fn quantize(
    dir: &Path,
    name: &str,
    preset: &str,
    samples: u32,
    extra: &[&str],
) -> Option<(Value, PathBuf)> {
    let (model, calib) = material()?;
    let out = dir.join(format!("{name}.onnx"));
    let n = samples.to_string();
    let mut args = vec![
        "--json",
        "quantize",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--preset",
        preset,
        "--calib",
        calib.to_str().unwrap(),
        "--max-samples",
        &n,
    ];
    args.extend_from_slice(extra);
    let o = expect(&args, 0);
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)));
    Some((v, out))
}

/// The provenance record `ipuflow.settings` of a quantized model.
fn settings(path: &Path) -> Value {
    let m = Model::load_file(path).unwrap();
    let entry = m
        .proto()
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some("ipuflow.settings"))
        .unwrap_or_else(|| panic!("{}: no ipuflow.settings", path.display()));
    serde_json::from_str(entry.value.as_deref().unwrap()).unwrap()
}

fn notes(v: &Value) -> String {
    v["notes"].to_string()
}

#[test]
fn defaults_are_the_presets() {
    let dir = tmpdir("defaults");
    for (preset, bias, range) in [("xint8", "int8", "minmse"), ("a8w8", "int32", "minmax")] {
        let Some((v, out)) = quantize(&dir, preset, preset, 2, &[]) else {
            return;
        };
        let r = &v["recipe"];
        assert_eq!(r["bias_type"], bias, "{preset}: {r}");
        assert_eq!(r["weight_range"], range, "{preset}: {r}");
        assert_eq!(r["equalize"], true, "{preset}: {r}");
        assert_eq!(r["replace_relu6"], false, "{preset}: {r}");
        assert_eq!(r["bias_correction"], true, "{preset}: {r}");
        assert_eq!(r["learned_rounding"], true, "{preset}: {r}");
        let s = settings(&out);
        assert_eq!(s["bias_type"], bias, "{preset}: {s}");
        assert_eq!(s["learned_rounding"], true, "{preset}: {s}");
        assert_eq!(r["output_aware"], true, "{preset}: {r}");
        assert_eq!(s["output_aware"], true, "{preset}: {s}");
        // No mixed precision asked for: the record says so.
        assert_eq!(s["mixed"]["sensitivity"], false, "{preset}: {s}");
        assert_eq!(s["mixed"]["host_metric"], false, "{preset}: {s}");
        assert!(s["mixed"]["target_sqnr_db"].is_null(), "{preset}: {s}");
        assert!(
            notes(&v).contains("cross-layer equalization"),
            "{preset}: {}",
            notes(&v)
        );
        assert!(
            notes(&v).contains("bias correction:"),
            "{preset}: {}",
            notes(&v)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_switch_off_is_used_printed_and_recorded() {
    let dir = tmpdir("off");
    let flags = [
        "--equalize",
        "off",
        "--bias-correction",
        "OFF",
        "--learned-rounding",
        "off",
        "--bias",
        "int32",
        "--weight-range",
        "minmax",
        "--output-aware",
        "off",
    ];
    let Some((v, out)) = quantize(&dir, "off", "xint8", 2, &flags) else {
        return;
    };
    let r = &v["recipe"];
    assert_eq!(r["bias_type"], "int32", "{r}");
    assert_eq!(r["weight_range"], "minmax", "{r}");
    for k in [
        "equalize",
        "bias_correction",
        "learned_rounding",
        "replace_relu6",
        "output_aware",
    ] {
        assert_eq!(r[k], false, "{k}: {r}");
    }
    let s = settings(&out);
    for k in [
        "equalize",
        "bias_correction",
        "learned_rounding",
        "output_aware",
    ] {
        assert_eq!(s[k], false, "{k}: {s}");
    }
    assert_eq!(s["bias_type"], "int32", "{s}");
    assert_eq!(s["weight_range"], "minmax", "{s}");
    // Nothing of what was turned off ran.
    let n = notes(&v);
    for absent in [
        "cross-layer equalization",
        "bias correction:",
        "learned rounding",
    ] {
        assert!(!n.contains(absent), "'{absent}' in {n}");
    }
    let text_out = {
        let (model, calib) = material().unwrap();
        let o = dir.join("text.onnx");
        let args = [
            "quantize",
            model.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
            "--preset",
            "a8w8",
            "--calib",
            calib.to_str().unwrap(),
            "--max-samples",
            "2",
            "--learned-rounding",
            "off",
            "--replace-relu6",
        ];
        text(&expect(&args, 0).stdout)
    };
    assert!(
        text_out.contains(
            "recipe: bias int32, weight range minmax, equalize on, replace relu6 on, bias correction on, \
             learned rounding off"
        ),
        "{text_out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn learned_rounding_changes_the_quantized_weights() {
    let dir = tmpdir("learned");
    // 16 samples: the least learned rounding works from (fewer and it is skipped, saying so).
    let base = ["--bias-correction", "off"];
    let Some((v_off, off)) = quantize(
        &dir,
        "off",
        "a8w8",
        16,
        &[&base[..], &["--learned-rounding", "off"]].concat(),
    ) else {
        return;
    };
    let Some((v_on, on)) = quantize(&dir, "on", "a8w8", 16, &base) else {
        return;
    };
    assert!(
        !notes(&v_off).contains("learned rounding"),
        "{}",
        notes(&v_off)
    );
    assert!(
        notes(&v_on).contains("learned rounding:"),
        "{}",
        notes(&v_on)
    );
    let (a, b) = (
        Model::load_file(&off).unwrap(),
        Model::load_file(&on).unwrap(),
    );
    let inits = |m: &Model| -> Vec<(String, Vec<u8>)> {
        let g = m.proto().graph.as_ref().unwrap();
        g.initializer
            .iter()
            // INT8 tensors of rank 2 or more: the quantized weights (biases are INT32 here, zero points scalars).
            .filter(|t| t.data_type == Some(3) && t.dims.len() >= 2)
            .map(|t| {
                (
                    t.name.clone().unwrap_or_default(),
                    t.raw_data.clone().unwrap_or_default(),
                )
            })
            .collect()
    };
    let (wa, wb) = (inits(&a), inits(&b));
    assert!(wa.len() >= 30, "{} INT8 weights", wa.len());
    assert_eq!(
        wa.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        wb.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "the same weights are quantized"
    );
    let changed = wa.iter().zip(&wb).filter(|(x, y)| x.1 != y.1).count();
    eprintln!(
        "learned rounding changed {changed} of {} INT8 weights",
        wa.len()
    );
    assert!(changed > wa.len() / 2, "{changed} of {} changed", wa.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_switch_values_are_usage_errors() {
    let Some((model, calib)) = material() else {
        return;
    };
    let dir = tmpdir("usage");
    let out = dir.join("q.onnx");
    let base = [
        "quantize",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--preset",
        "a8w8",
        "--calib",
        calib.to_str().unwrap(),
    ];
    for (extra, needle) in [
        (&["--equalize", "maybe"][..], "--equalize"),
        (&["--learned-rounding", "1"][..], "--learned-rounding"),
        (&["--output-aware", "yes"][..], "--output-aware"),
        (&["--weight-range", "max"][..], "--weight-range"),
        (
            &["--equalize", "off", "--replace-relu6"][..],
            "--replace-relu6",
        ),
    ] {
        let o = expect(&[&base[..], extra].concat(), 2);
        assert!(
            text(&o.stderr).contains(needle),
            "{extra:?}: {}",
            text(&o.stderr)
        );
    }
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
