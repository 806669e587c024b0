//! The runtime core against the real ONNX Runtime 1.32.0 (scripts/fetch_ort.sh, or IPUFLOW_ORT_LIBRARY).

mod ort_support;

#[allow(unused_imports)] // used by the Linux-only tests
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipuflow::runtime::{
    ElementType, GraphOptimizationLevel, RunOptions, Runtime, Session, SessionOptions, TensorMut,
    TensorRef, ValueKind,
};
use ipuflow::ErrorKind;
use ort_support::*;

#[cfg(target_os = "linux")]
fn non_ort_library() -> &'static str {
    [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/libz.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("a non-ORT shared library (libz or libc)")
}

// ---------------------------------------------------------------- loading

#[test]
fn loads_and_reports_version() {
    let rt = runtime();
    assert_eq!(rt.version(), "1.32.0");
    assert_eq!(rt.api_version(), ort_sys_api_version());
    assert!(Runtime::is_loaded());
    assert!(std::ptr::eq(Runtime::get().unwrap(), rt));
    // The same file again (or no path) is fine.
    assert!(std::ptr::eq(
        Runtime::load(Some(&ort_library())).unwrap(),
        rt
    ));
    assert!(std::ptr::eq(Runtime::load(None).unwrap(), rt));
    // Through the symlink names fetch_ort.sh creates: the same file.
    let dir = ort_library().parent().unwrap().to_path_buf();
    assert!(std::ptr::eq(Runtime::load(Some(&dir)).unwrap(), rt));
    // Functions newer than what was obtained are refused.
    assert_eq!(
        rt.require_api(rt.api_version() + 1, "SomethingNew")
            .unwrap_err()
            .kind(),
        ErrorKind::RuntimeTooOld
    );
    rt.require_api(17, "anything in API 17").unwrap();
}

fn ort_sys_api_version() -> u32 {
    24
}

#[cfg(target_os = "linux")]
#[test]
fn loading_another_library_once_loaded_is_refused() {
    let rt = runtime();
    let e = Runtime::load(Some(Path::new(non_ort_library()))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{}", e.message());
    assert!(e.message().contains("already loaded"), "{}", e.message());
    assert!(
        e.message().contains(&rt.path().display().to_string()),
        "{}",
        e.message()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn missing_library_is_not_found_listing_the_place() {
    let e = Runtime::open(Some(Path::new("/nonexistent/libonnxruntime.so.1.32.0"))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RuntimeNotFound);
    assert!(
        e.message()
            .contains("/nonexistent/libonnxruntime.so.1.32.0"),
        "{}",
        e.message()
    );
    // The loader's own error is part of it.
    assert!(
        e.message().to_lowercase().contains("no such file"),
        "{}",
        e.message()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn directory_without_library_lists_every_name_tried() {
    let dir = std::env::temp_dir().join(format!("ipuflow-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = Runtime::open(Some(&dir)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RuntimeNotFound);
    for name in ["libonnxruntime.so", "libonnxruntime.so.1"] {
        assert!(
            e.message().contains(&dir.join(name).display().to_string()),
            "{}",
            e.message()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn non_ort_library_is_invalid_and_named() {
    let p = non_ort_library();
    let e = Runtime::open(Some(Path::new(p))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RuntimeInvalid, "{}", e.message());
    assert!(
        e.message().contains(p) && e.message().contains("OrtGetApiBase"),
        "{}",
        e.message()
    );
}

#[test]
fn open_without_installing_reports_the_same_runtime() {
    let rt = Runtime::open(Some(&ort_library())).unwrap();
    assert_eq!(rt.version(), "1.32.0");
    assert_eq!(rt.source(), ipuflow::runtime::RuntimeSource::Explicit);
}

#[cfg(target_os = "linux")]
/// A fake ONNX Runtime whose `OrtGetApiBase` reports an old version: built with the C compiler when there is one.
#[test]
fn old_runtime_is_too_old() {
    let dir = std::env::temp_dir().join(format!("ipuflow-fakeort-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("fake.c");
    std::fs::write(
        &src,
        r#"
        #include <stddef.h>
        typedef struct { const void* (*GetApi)(unsigned); const char* (*GetVersionString)(void); } Base;
        static const void* get_api(unsigned v) { (void)v; return NULL; }
        static const char* version(void) { return VERSION; }
        static const Base base = { get_api, version };
        const Base* OrtGetApiBase(void) { return &base; }
        "#,
    )
    .unwrap();
    for (version, tag) in [("\"1.16.3\"", "old"), ("\"1.40.0\"", "noapi")] {
        let lib = dir.join(format!("libfake_{tag}.so"));
        let st = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&lib)
            .arg(format!("-DVERSION={version}"))
            .arg(&src)
            .status();
        match st {
            Ok(s) if s.success() => {}
            _ => {
                ort_support::common::missing("a C compiler (cc) to build a fake runtime");
                return;
            }
        }
        let e = Runtime::open(Some(&lib)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RuntimeTooOld, "{}", e.message());
        let v = version.trim_matches('"');
        assert!(
            e.message().contains(v) && e.message().contains("17"),
            "{}",
            e.message()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- sessions and metadata

fn add_session() -> Session {
    runtime();
    Session::from_bytes(&add_model(), &SessionOptions::default()).expect("add session")
}

#[test]
fn tiny_model_metadata_and_run() {
    let s = add_session();
    let ins = s.inputs();
    assert_eq!(ins.len(), 2);
    assert_eq!(ins[0].name, "x");
    assert_eq!(ins[0].kind, ValueKind::Tensor);
    assert_eq!(ins[0].element_type(), Some(ElementType::Float32));
    assert_eq!(ins[0].shape, vec![-1, 4]);
    assert_eq!(ins[0].dim_names, vec!["N".to_string(), String::new()]);
    assert_eq!(s.outputs()[0].name, "z");

    for n in [0usize, 1, 3, 7] {
        let x: Vec<f32> = (0..n * 4).map(|i| i as f32).collect();
        let y = [10.0f32, 20.0, 30.0, 40.0];
        let xs = [n as i64, 4];
        let out = s
            .run(&[
                ("x", TensorRef::from_slice(&xs, &x)),
                ("y", TensorRef::from_slice(&[1, 4], &y)),
            ])
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].shape(), &[n as i64, 4]);
        assert_eq!(out[0].element_type(), ElementType::Float32);
        let z = out[0].as_slice::<f32>().unwrap();
        for (i, v) in z.iter().enumerate() {
            assert_eq!(*v, i as f32 + y[i % 4]);
        }
        assert_eq!(
            out[0].as_slice::<i32>().unwrap_err().kind(),
            ErrorKind::TensorMismatch
        );
    }
}

#[test]
fn run_into_preallocated_buffers() {
    let s = add_session();
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    let y = [0.5f32; 4];
    let mut z = [0.0f32; 8];
    let shape = [2i64, 4];
    s.run_into(
        None,
        &[
            ("x", TensorRef::from_slice(&shape, &x)),
            ("y", TensorRef::from_slice(&[1, 4], &y)),
        ],
        &mut [("z", TensorMut::from_slice(&shape, &mut z))],
    )
    .unwrap();
    assert_eq!(z, [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5]);
}

#[test]
fn session_from_file_and_missing_file() {
    runtime();
    let dir = std::env::temp_dir().join(format!("ipuflow-sess-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("add.onnx");
    std::fs::write(&path, add_model()).unwrap();
    let s = Session::from_file(&path, &SessionOptions::default()).unwrap();
    assert_eq!(s.inputs().len(), 2);
    let e = Session::from_file(dir.join("nope.onnx"), &SessionOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileNotFound, "{}", e.message());
    // Garbage bytes: ORT's own error, with its code name.
    std::fs::write(dir.join("bad.onnx"), b"this is not a model").unwrap();
    let e = Session::from_file(dir.join("bad.onnx"), &SessionOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Runtime);
    assert!(e.message().contains("ORT_"), "{}", e.message());
    let e = Session::from_bytes(b"garbage", &SessionOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Runtime);
    assert!(
        e.message().contains("ORT_INVALID_PROTOBUF") || e.message().contains("ORT_"),
        "{}",
        e.message()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn session_from_model() {
    runtime();
    let model = ipuflow::onnx::Model::from_bytes(&add_model(), None).unwrap();
    let s = Session::from_model(&model, &SessionOptions::default()).unwrap();
    assert_eq!(s.outputs()[0].name, "z");
}

#[test]
fn session_options_are_applied() {
    runtime();
    let dir = std::env::temp_dir().join(format!("ipuflow-opts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut o = SessionOptions {
        intra_op_threads: Some(1),
        inter_op_threads: Some(1),
        graph_optimization_level: GraphOptimizationLevel::Basic,
        execution_mode: ipuflow::runtime::ExecutionMode::Parallel,
        deterministic_compute: true,
        memory_arena: false,
        profiling_prefix: Some(dir.join("prof")),
        optimized_model_path: Some(dir.join("optimized.onnx")),
        log_id: Some("opts-test".into()),
        log_level: Some(ipuflow::runtime::LogLevel::Error),
        ..Default::default()
    };
    o.config_entry("session.intra_op.allow_spinning", "0");
    let s = Session::from_bytes(&add_model(), &o).unwrap();
    assert!(
        dir.join("optimized.onnx").exists(),
        "optimized model written"
    );
    let out = s
        .run(&[
            ("x", TensorRef::from_slice(&[1, 4], &[1.0f32; 4])),
            ("y", TensorRef::from_slice(&[1, 4], &[1.0f32; 4])),
        ])
        .unwrap();
    assert_eq!(out[0].as_slice::<f32>().unwrap(), &[2.0; 4]);
    drop(out);
    drop(s);
    let profiles: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("prof"))
        .collect();
    assert!(!profiles.is_empty(), "a profile file was written");

    // A bad config entry value is ORT's error, naming the entry.
    let mut bad = SessionOptions::default();
    bad.config_entry("", "x");
    assert_eq!(
        Session::from_bytes(&add_model(), &bad).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let mut bad = SessionOptions::default();
    bad.config_entry("k".repeat(5000), "1"); // ORT refuses over-long keys
    let e = Session::from_bytes(&add_model(), &bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Runtime, "{}", e.message());
    let bad = SessionOptions {
        intra_op_threads: Some(u32::MAX),
        ..Default::default()
    };
    // Over the documented thread limit (src/limits.rs: 1024).
    assert_eq!(
        Session::from_bytes(&add_model(), &bad).unwrap_err().kind(),
        ErrorKind::LimitExceeded
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- every element type

#[test]
fn every_element_type_round_trips() {
    runtime();
    let types = [
        ElementType::Float32,
        ElementType::Float16,
        ElementType::Bfloat16,
        ElementType::Float64,
        ElementType::Int8,
        ElementType::Uint8,
        ElementType::Int16,
        ElementType::Uint16,
        ElementType::Int32,
        ElementType::Uint32,
        ElementType::Int64,
        ElementType::Uint64,
        ElementType::Bool,
    ];
    let codes: Vec<i32> = types.iter().map(|t| t.onnx()).collect();
    let s = Session::from_bytes(&identity_model(&codes), &SessionOptions::default()).unwrap();
    let shape = [2i64, 3];
    // Bytes valid for every type (bool: 0/1), aligned for 8-byte types.
    let datas: Vec<Vec<u64>> = types
        .iter()
        .map(|t| {
            let n = 6 * t.size().unwrap();
            let bytes: Vec<u8> = (0..n)
                .map(|i| {
                    if *t == ElementType::Bool {
                        (i % 2) as u8
                    } else {
                        (i * 7 + 1) as u8
                    }
                })
                .collect();
            let mut words = vec![0u64; n.div_ceil(8)];
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr() as *mut u8, n)
            };
            words
        })
        .collect();
    let bytes_of = |i: usize| -> &[u8] {
        let n = 6 * types[i].size().unwrap();
        unsafe { std::slice::from_raw_parts(datas[i].as_ptr() as *const u8, n) }
    };
    let names: Vec<String> = codes.iter().map(|c| format!("in_{c}")).collect();
    let inputs: Vec<(&str, TensorRef)> = (0..types.len())
        .map(|i| {
            (
                names[i].as_str(),
                TensorRef::from_bytes(types[i], &shape, bytes_of(i)),
            )
        })
        .collect();
    let out = s.run(&inputs).unwrap();
    for (i, t) in out.iter().enumerate() {
        assert_eq!(t.element_type(), types[i]);
        assert_eq!(t.shape(), &shape);
        assert_eq!(t.as_bytes(), bytes_of(i), "{:?}", types[i]);
    }
    // Typed access for the Rust-native types.
    let b = out[12].as_slice::<bool>().unwrap();
    assert_eq!(b, &[false, true, false, true, false, true]);
    // Preallocated outputs of every type.
    let mut bufs: Vec<Vec<u64>> = datas.iter().map(|d| vec![0u64; d.len()]).collect();
    let onames: Vec<String> = codes.iter().map(|c| format!("out_{c}")).collect();
    {
        let mut outs: Vec<(&str, TensorMut)> = bufs
            .iter_mut()
            .enumerate()
            .map(|(i, b)| {
                let n = 6 * types[i].size().unwrap();
                let bytes = unsafe { std::slice::from_raw_parts_mut(b.as_mut_ptr() as *mut u8, n) };
                (
                    onames[i].as_str(),
                    TensorMut::from_bytes(types[i], &shape, bytes),
                )
            })
            .collect();
        s.run_into(None, &inputs, &mut outs).unwrap();
    }
    for i in 0..types.len() {
        assert_eq!(bufs[i], datas[i], "{:?}", types[i]);
    }
}

// ---------------------------------------------------------------- run-time errors, all before ORT

fn err_of<T: std::fmt::Debug>(r: ipuflow::Result<T>) -> ipuflow::Error {
    r.expect_err("expected an error")
}

#[test]
fn run_errors_name_the_tensor_and_both_values() {
    let s = add_session();
    let x = [0.0f32; 8];
    let y = [0.0f32; 4];
    let xi = [0i64; 8];
    let good_y = TensorRef::from_slice(&[1, 4], &y);

    // unknown input: lists the valid ones
    let e = err_of(s.run(&[("q", TensorRef::from_slice(&[2, 4], &x)), ("y", good_y)]));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);
    assert!(
        e.message().contains("'q'") && e.message().contains("'x', 'y'"),
        "{}",
        e.message()
    );

    // wrong element type
    let e = err_of(s.run(&[("x", TensorRef::from_slice(&[2, 4], &xi)), ("y", good_y)]));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);
    assert!(
        e.message().contains("'x'")
            && e.message().contains("int64")
            && e.message().contains("float"),
        "{}",
        e.message()
    );

    // wrong rank
    let e = err_of(s.run(&[("x", TensorRef::from_slice(&[8], &x)), ("y", good_y)]));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);
    assert!(
        e.message().contains("rank is 1")
            && e.message().contains("rank 2")
            && e.message().contains("[N,4]"),
        "{}",
        e.message()
    );

    // wrong fixed dimension
    let e = err_of(s.run(&[("x", TensorRef::from_slice(&[4, 2], &x)), ("y", good_y)]));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);
    assert!(
        e.message().contains("dimension 1 is 2") && e.message().contains("expects 4"),
        "{}",
        e.message()
    );

    // byte size != product(shape) * element size
    let e = err_of(s.run(&[("x", TensorRef::from_slice(&[3, 4], &x)), ("y", good_y)]));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);
    assert!(
        e.message().contains("32 bytes given") && e.message().contains("needs 48 bytes"),
        "{}",
        e.message()
    );

    // negative dimension
    let e = err_of(s.run(&[("x", TensorRef::from_slice(&[-2, 4], &x)), ("y", good_y)]));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);

    // missing input
    let e = err_of(s.run(&[("x", TensorRef::from_slice(&[2, 4], &x))]));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);
    assert!(
        e.message().contains("missing")
            && e.message().contains("'y'")
            && e.message().contains("float [1,4]"),
        "{}",
        e.message()
    );

    // the same input twice
    let e = err_of(s.run(&[
        ("x", TensorRef::from_slice(&[2, 4], &x)),
        ("x", TensorRef::from_slice(&[2, 4], &x)),
        ("y", good_y),
    ]));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);
    assert!(e.message().contains("more than once"), "{}", e.message());

    // unknown output
    let e = err_of(s.run_named(
        None,
        &[("x", TensorRef::from_slice(&[2, 4], &x)), ("y", good_y)],
        &["w"],
    ));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);
    assert!(
        e.message().contains("'w'") && e.message().contains("'z'"),
        "{}",
        e.message()
    );

    // no outputs
    let e = err_of(s.run_named(
        None,
        &[("x", TensorRef::from_slice(&[2, 4], &x)), ("y", good_y)],
        &[],
    ));
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);

    // a preallocated output of the wrong size
    let mut z = [0.0f32; 4];
    let e = err_of(s.run_into(
        None,
        &[("x", TensorRef::from_slice(&[2, 4], &x)), ("y", good_y)],
        &mut [("z", TensorMut::from_slice(&[2, 4], &mut z))],
    ));
    assert_eq!(e.kind(), ErrorKind::TensorMismatch);
    assert!(
        e.message().contains("output 'z'") && e.message().contains("16 bytes given"),
        "{}",
        e.message()
    );

    // a preallocated output whose shape is not what the run produces: ORT's own error (Runtime)
    let mut z = [0.0f32; 12];
    let e = err_of(s.run_into(
        None,
        &[("x", TensorRef::from_slice(&[2, 4], &x)), ("y", good_y)],
        &mut [("z", TensorMut::from_slice(&[3, 4], &mut z))],
    ));
    assert_eq!(e.kind(), ErrorKind::Runtime, "{}", e.message());

    // misaligned data
    let raw = [0u8; 36];
    let e = err_of(s.run(&[
        (
            "x",
            TensorRef::from_bytes(ElementType::Float32, &[2, 4], &raw[1..33]),
        ),
        ("y", good_y),
    ]));
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{}", e.message());

    // index out of range (the indexed API)
    let e = err_of(s.run_indexed(None, &[(5, good_y)], &mut [(0, None)]));
    assert_eq!(e.kind(), ErrorKind::OutOfRange);

    // and the session still works
    let out = s
        .run(&[("x", TensorRef::from_slice(&[2, 4], &x)), ("y", good_y)])
        .unwrap();
    assert_eq!(out[0].shape(), &[2, 4]);
}

// ---------------------------------------------------------------- threads

fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

#[test]
fn efficientnet_metadata_and_threads_match_single_thread() {
    runtime();
    let Some(path) = shared_model("efficientnet-lite0.onnx") else {
        return;
    };
    let s = Arc::new(
        Session::from_file(
            &path,
            &SessionOptions {
                intra_op_threads: Some(1),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    assert_eq!(s.inputs().len(), 1);
    let info = s.inputs()[0].clone();
    assert_eq!(info.element_type(), Some(ElementType::Float32));
    assert_eq!(info.shape.len(), 4);
    let shape: Vec<i64> = info
        .shape
        .iter()
        .map(|&d| if d < 0 { 1 } else { d })
        .collect();
    let n: usize = shape.iter().product::<i64>() as usize;
    let inputs: Vec<Vec<f32>> = (0..4).map(|k| pseudo_random(n, k + 1)).collect();

    let single: Vec<Vec<f32>> = inputs
        .iter()
        .map(|x| {
            let out = s
                .run(&[(info.name.as_str(), TensorRef::from_slice(&shape, x))])
                .unwrap();
            out[0].as_slice::<f32>().unwrap().to_vec()
        })
        .collect();
    assert_eq!(s.outputs()[0].element_type(), Some(ElementType::Float32));
    assert!(single[0].len() >= 1000, "classifier output");

    let inputs = Arc::new(inputs);
    let single = Arc::new(single);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (s, inputs, single, shape, name) = (
                s.clone(),
                inputs.clone(),
                single.clone(),
                shape.clone(),
                info.name.clone(),
            );
            std::thread::spawn(move || {
                for r in 0..3 {
                    let k = (t + r) % inputs.len();
                    let out = s
                        .run(&[(name.as_str(), TensorRef::from_slice(&shape, &inputs[k]))])
                        .unwrap();
                    assert_eq!(
                        out[0].as_slice::<f32>().unwrap(),
                        single[k].as_slice(),
                        "thread {t} run {r}"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn tiny_model_many_threads() {
    let s = Arc::new(add_session());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let y = [t as f32; 4];
                for n in 1..50usize {
                    let x: Vec<f32> = (0..n * 4).map(|i| i as f32).collect();
                    let mut z = vec![0.0f32; n * 4];
                    let shape = [n as i64, 4];
                    s.run_into(
                        None,
                        &[
                            ("x", TensorRef::from_slice(&shape, &x)),
                            ("y", TensorRef::from_slice(&[1, 4], &y)),
                        ],
                        &mut [("z", TensorMut::from_slice(&shape, &mut z))],
                    )
                    .unwrap();
                    for (i, v) in z.iter().enumerate() {
                        assert_eq!(*v, i as f32 + t as f32);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

// ---------------------------------------------------------------- cancellation

#[test]
fn cancelled_before_start() {
    let s = add_session();
    let ro = RunOptions::new().unwrap();
    ro.cancel();
    assert!(ro.is_cancelled());
    let x = [0.0f32; 4];
    let inputs = [
        ("x", TensorRef::from_slice(&[1, 4], &x)),
        ("y", TensorRef::from_slice(&[1, 4], &x)),
    ];
    let e = err_of(s.run_named(Some(&ro), &inputs, &["z"]));
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    ro.reset();
    assert!(!ro.is_cancelled());
    s.run_named(Some(&ro), &inputs, &["z"]).unwrap();
}

#[test]
fn cancel_from_another_thread_stops_a_run() {
    runtime();
    let s = Session::from_bytes(
        &slow_model(400),
        &SessionOptions {
            intra_op_threads: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let x: Vec<f32> = pseudo_random(512 * 512, 7);
    let shape = [512i64, 512];
    let ro = Arc::new(RunOptions::new().unwrap());
    // How long does a full run take?
    let t0 = Instant::now();
    s.run_named(None, &[("x", TensorRef::from_slice(&shape, &x))], &["y"])
        .unwrap();
    let full = t0.elapsed();
    let canceller = {
        let ro = ro.clone();
        let delay = full / 10;
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            ro.cancel();
        })
    };
    let t1 = Instant::now();
    let e = err_of(s.run_named(
        Some(&ro),
        &[("x", TensorRef::from_slice(&shape, &x))],
        &["y"],
    ));
    let took = t1.elapsed();
    canceller.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{}", e.message());
    assert!(
        took < full.mul_f32(0.8) + Duration::from_millis(50),
        "cancelled run took {took:?}, a full run {full:?}"
    );
    ro.reset();
    s.run_named(
        Some(&ro),
        &[("x", TensorRef::from_slice(&shape, &x))],
        &["y"],
    )
    .unwrap();
}

// ---------------------------------------------------------------- resolution order (in child processes)

#[cfg(target_os = "linux")]
/// Runs this test binary again, with `envs`, for the child half of `test` (mode in IPUFLOW_TEST_CHILD).
fn run_child(
    exe: &Path,
    test: &str,
    mode: &str,
    envs: &[(&str, &std::ffi::OsStr)],
    remove: &[&str],
) {
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("IPUFLOW_TEST_CHILD", mode);
    for k in remove {
        cmd.env_remove(k);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child '{mode}' failed:\n{text}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn resolution_order() {
    use ipuflow::runtime::RuntimeSource;
    match std::env::var("IPUFLOW_TEST_CHILD").as_deref() {
        Ok("env-missing") => {
            let e = Runtime::load(None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::RuntimeNotFound);
            assert!(
                e.message().contains("IPUFLOW_ORT_LIBRARY")
                    && e.message().contains("/nonexistent/ort.so"),
                "{}",
                e.message()
            );
            // An explicit path still wins over the variable.
            let rt = Runtime::load(Some(&ort_library_from_cache())).unwrap();
            assert_eq!(rt.source(), RuntimeSource::Explicit);
            return;
        }
        Ok("env-dir") => {
            let rt = Runtime::load(None).unwrap();
            assert_eq!(rt.source(), RuntimeSource::EnvVar);
            assert_eq!(rt.version(), "1.32.0");
            return;
        }
        Ok("system") => {
            let rt = Runtime::load(None).unwrap();
            assert_eq!(rt.source(), RuntimeSource::SystemDefault);
            assert_eq!(rt.path(), Path::new("libonnxruntime.so.1"));
            return;
        }
        Ok("nothing") => {
            let e = Runtime::load(None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::RuntimeNotFound);
            let own_dir = ipuflow::runtime::loader::own_module_path()
                .unwrap()
                .parent()
                .unwrap()
                .to_path_buf();
            for place in [
                own_dir.join("libonnxruntime.so").display().to_string(),
                "'libonnxruntime.so.1' (system loader default)".into(),
            ] {
                assert!(
                    e.message().contains(&place),
                    "{place} missing from: {}",
                    e.message()
                );
            }
            assert_eq!(
                Runtime::get().unwrap_err().kind(),
                ErrorKind::RuntimeNotLoaded
            );
            return;
        }
        Ok("next-to") => {
            let rt = Runtime::load(None).unwrap();
            assert_eq!(rt.source(), RuntimeSource::NextToIpuflow);
            return;
        }
        Ok(other) => panic!("unknown child mode {other}"),
        Err(_) => {}
    }
    let exe = std::env::current_exe().unwrap();
    let lib = ort_library_from_cache();
    let dir = lib.parent().unwrap();
    let t = "resolution_order";
    run_child(
        &exe,
        t,
        "env-missing",
        &[("IPUFLOW_ORT_LIBRARY", "/nonexistent/ort.so".as_ref())],
        &[],
    );
    run_child(
        &exe,
        t,
        "env-dir",
        &[("IPUFLOW_ORT_LIBRARY", dir.as_os_str())],
        &[],
    );
    run_child(
        &exe,
        t,
        "system",
        &[("LD_LIBRARY_PATH", dir.as_os_str())],
        &["IPUFLOW_ORT_LIBRARY"],
    );
    run_child(
        &exe,
        t,
        "nothing",
        &[],
        &["IPUFLOW_ORT_LIBRARY", "LD_LIBRARY_PATH"],
    );
    // A copy of this executable with the runtime next to it.
    let tmp = std::env::temp_dir().join(format!("ipuflow-nextto-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let exe_copy = tmp.join(exe.file_name().unwrap());
    std::fs::copy(&exe, &exe_copy).unwrap();
    std::os::unix::fs::symlink(&lib, tmp.join("libonnxruntime.so")).unwrap();
    run_child(
        &exe_copy,
        t,
        "next-to",
        &[],
        &["IPUFLOW_ORT_LIBRARY", "LD_LIBRARY_PATH"],
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[cfg(target_os = "linux")]
/// The fetched runtime, ignoring IPUFLOW_ORT_LIBRARY (which the children change).
fn ort_library_from_cache() -> std::path::PathBuf {
    let cache = std::env::var_os("IPUFLOW_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/ipuflow")
        });
    let p = cache.join("onnxruntime-1.32.0/linux-x64/libonnxruntime.so.1.32.0");
    if p.exists() {
        p
    } else {
        ort_library()
    }
}
