//! Sessions with a device (CPU / IPU / AUTO), the fallback policy and ONNX Runtime's placement report, against the
//! CPU-only ONNX Runtime 1.32.0 (scripts/fetch_ort.sh). That runtime really refuses the VitisAI EP ("Failed to load
//! shared library"), so the STRICT and PREFER paths run for real here; the NPU-success path needs a Ryzen AI PC.

// Options are built field by field, as a host would.
#![allow(clippy::field_reassign_with_default)]

mod ort_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ipuflow::ipu::cache::default_cache_key;
use ipuflow::ipu::report::{CPU_EP, VITISAI_EP};
use ipuflow::onnx::Model;
use ipuflow::runtime::{
    DeviceUsed, ElementType, Environment, FallbackPolicy, LogLevel, Placement, Session,
    SessionDevice, SessionOptions, TensorRef,
};
use ipuflow::ErrorKind;
use ort_support::*;

/// ORT's own refusal of the VitisAI EP on a CPU-only build.
const ORT_REASON: &str = "Failed to load shared library";

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("npu_session")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ipu(policy: Option<FallbackPolicy>, min: f64) -> SessionOptions {
    let mut o = SessionOptions::default();
    o.device = SessionDevice::Ipu;
    if let Some(p) = policy {
        o.fallback_policy(p, min).unwrap();
    }
    o
}

#[test]
fn cpu_session_reports_cpu_and_no_reason() {
    runtime();
    let s = Session::from_bytes(&add_model(), &SessionOptions::default()).unwrap();
    let e = s.execution();
    assert_eq!(e.requested, SessionDevice::Cpu);
    assert_eq!(s.device_used(), DeviceUsed::Cpu);
    assert_eq!(s.fallback_reason(), "");
    assert_eq!(e.cache_key, None);
    let a = e
        .placement
        .assignment()
        .expect("ORT 1.32 reports the placement");
    assert_eq!(a.subgraphs.len(), 1);
    assert_eq!(a.subgraphs[0].ep_name, CPU_EP);
    assert_eq!(a.subgraphs[0].nodes[0].op_type, "Add");
    assert_eq!(e.placement.npu_counts(), Some((0, 1)));
}

#[test]
fn strict_ipu_fails_with_device_unavailable_and_orts_reason() {
    runtime();
    // STRICT is the default for IPU.
    for o in [ipu(None, 0.0), ipu(Some(FallbackPolicy::Strict), 0.0)] {
        let e = Session::from_bytes(&add_model(), &o).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DeviceUnavailable, "{}", e.message());
        assert!(e.message().contains(ORT_REASON), "{}", e.message());
        assert!(e.message().contains("VitisAI"), "{}", e.message());
    }
}

#[test]
fn prefer_falls_back_to_cpu_with_the_reason_and_logs_it() {
    runtime();
    let o = ipu(Some(FallbackPolicy::Prefer), 0.0);
    let s = Session::from_bytes(&add_model(), &o).unwrap();
    assert_eq!(s.device_used(), DeviceUsed::Cpu);
    let r = s.fallback_reason();
    assert!(r.contains(ORT_REASON), "{r}");
    // The fraction rule: nothing landed on the NPU, and the reason says so.
    assert!(r.contains("0 of 1 nodes"), "{r}");
    assert!(s
        .execution()
        .warnings
        .iter()
        .any(|w| w.contains(ORT_REASON)));
    // It still runs, on the CPU.
    let x = [1.0f32, 2.0, 3.0, 4.0];
    let y = [10.0f32, 20.0, 30.0, 40.0];
    let out = s
        .run(&[
            ("x", TensorRef::from_slice(&[1, 4], &x[..])),
            ("y", TensorRef::from_slice(&[1, 4], &y[..])),
        ])
        .unwrap();
    assert_eq!(out[0].element_type(), ElementType::Float32);
    // The report says where it runs and why.
    let json: serde_json::Value = serde_json::from_str(&s.execution().report_json()).unwrap();
    assert_eq!(json["session"]["deviceUsed"], "CPU");
    assert_eq!(json["session"]["requestedDevice"], "IPU");
    assert!(json["session"]["fallbackReason"]
        .as_str()
        .unwrap()
        .contains(ORT_REASON));
}

#[test]
fn prefer_fallback_goes_to_the_log_callback() {
    runtime();
    // Environments are one per process: this test holds its own only while it runs; others share it meanwhile.
    let seen: Arc<Mutex<Vec<(LogLevel, String, String)>>> = Arc::default();
    // Environments are one per process and other tests create default ones: retry until ours can be created
    // (while it is alive, the other tests share it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let env = loop {
        let s2 = seen.clone();
        match Environment::builder()
            .log_level(LogLevel::Warning)
            .log_callback(move |r| {
                s2.lock()
                    .unwrap()
                    .push((r.level, r.category.to_string(), r.message.to_string()))
            })
            .build()
        {
            Ok(e) => break e,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("no environment of our own: {}", e.message())
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    };
    let s = Session::from_bytes_in(&env, &add_model(), &ipu(Some(FallbackPolicy::Prefer), 0.0))
        .unwrap();
    assert_eq!(s.device_used(), DeviceUsed::Cpu);
    let logs = seen.lock().unwrap();
    assert!(
        logs.iter()
            .any(|(l, c, m)| *l == LogLevel::Warning && c == "ipuflow" && m.contains(ORT_REASON)),
        "{logs:?}"
    );
}

#[test]
fn min_fraction_is_validated() {
    let mut o = SessionOptions::default();
    for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        let e = o.fallback_policy(FallbackPolicy::Prefer, bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("fraction"), "{}", e.message());
    }
    assert_eq!(o.fallback, None, "unchanged on error");
    o.fallback_policy(FallbackPolicy::Strict, 1.0).unwrap();
}

#[test]
fn strict_with_a_minimum_fraction_names_orts_reason() {
    runtime();
    let e = Session::from_bytes(&add_model(), &ipu(Some(FallbackPolicy::Strict), 0.5)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceUnavailable);
    assert!(e.message().contains(ORT_REASON), "{}", e.message());
    let s = Session::from_bytes(&add_model(), &ipu(Some(FallbackPolicy::Prefer), 0.5)).unwrap();
    assert_eq!(s.device_used(), DeviceUsed::Cpu);
    assert!(
        s.fallback_reason().contains("0 of 1 nodes (0.0%)"),
        "{}",
        s.fallback_reason()
    );
}

#[test]
fn vitisai_options_are_validated_naming_the_option() {
    let mut o = SessionOptions::default();
    let cases: &[(&str, &str, ErrorKind, &str)] = &[
        ("opt_level", "7", ErrorKind::InvalidArgument, "opt_level"),
        ("target", "X9", ErrorKind::InvalidArgument, "target"),
        (
            "encryptionKey",
            "abc",
            ErrorKind::InvalidArgument,
            "encryption_key",
        ),
        ("cacheKey", "../escape", ErrorKind::PathRefused, "cache_key"),
        (
            "config_file",
            "/no/such/vaip_config.json",
            ErrorKind::FileNotFound,
            "config_file",
        ),
        (
            "enable_cache_file_io_in_mem",
            "yes",
            ErrorKind::InvalidArgument,
            "enable_cache_file_io_in_mem",
        ),
        ("", "1", ErrorKind::InvalidArgument, "empty"),
    ];
    for (k, v, kind, needle) in cases {
        let e = o.vitisai_option(*k, *v).unwrap_err();
        assert_eq!(e.kind(), *kind, "{k}={v}: {}", e.message());
        assert!(e.message().contains(needle), "{k}={v}: {}", e.message());
    }
    assert!(o.vitisai_options.is_empty(), "a refused option is not kept");
    o.vitisai_option("target", "x2").unwrap();
    let e = o.vitisai_option("target", "X1").unwrap_err();
    assert!(e.message().contains("different values"), "{}", e.message());
    assert_eq!(o.vitisai_options.len(), 1);
    // EP-context entries are checked at session creation (and at once by the C setter).
    runtime();
    let mut o = SessionOptions::default();
    o.config_entry("ep.context_enable", "2");
    let e = Session::from_bytes(&add_model(), &o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("ep.context_enable"), "{}", e.message());
}

#[test]
fn cache_key_defaults_to_model_runtime_and_options_unless_set() {
    let rt = runtime();
    let model = add_model();
    let mut o = ipu(Some(FallbackPolicy::Prefer), 0.0);
    o.vitisai_option("target", "X2").unwrap();
    o.vitisai_option("cacheDir", "/tmp/ipuflow-cache").unwrap();
    let s = Session::from_bytes(&model, &o).unwrap();
    let key = s
        .execution()
        .cache_key
        .clone()
        .expect("a key is computed for the NPU attempt");
    let normalized = vec![
        ("target".to_string(), "X2".to_string()),
        ("cache_dir".to_string(), "/tmp/ipuflow-cache".to_string()),
    ];
    assert_eq!(key, default_cache_key(&model, rt.version(), &normalized));
    assert_eq!(key.len(), 32);
    assert!(s
        .execution()
        .provider_options
        .iter()
        .any(|(k, v)| k == "cache_key" && *v == key));
    // Another option set, another key.
    o.vitisai_option("opt_level", "2").unwrap();
    let s2 = Session::from_bytes(&model, &o).unwrap();
    assert_ne!(s2.execution().cache_key.as_deref(), Some(key.as_str()));
    // The host's key wins.
    o.vitisai_option("cache_key", "my-model-v3").unwrap();
    let s3 = Session::from_bytes(&model, &o).unwrap();
    assert_eq!(s3.execution().cache_key.as_deref(), Some("my-model-v3"));
    // A file model hashes the file's bytes.
    let dir = scratch("cache_key");
    let path = dir.join("add.onnx");
    std::fs::write(&path, &model).unwrap();
    let s4 = Session::from_file(&path, &ipu(Some(FallbackPolicy::Prefer), 0.0)).unwrap();
    assert_eq!(
        s4.execution().cache_key.clone().unwrap(),
        default_cache_key::<&str, &str>(&model, rt.version(), &[])
    );
}

#[test]
fn generic_provider_append() {
    runtime();
    let mut o = SessionOptions::default();
    o.execution_provider("NoSuchEP", vec![("k".into(), "v".into())])
        .unwrap();
    let e = Session::from_bytes(&add_model(), &o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Runtime, "{}", e.message());
    assert!(e.message().contains("'NoSuchEP'"), "{}", e.message());
    assert!(
        e.message().contains("Unknown provider name"),
        "{}",
        e.message()
    );
    // The VitisAI EP goes through the device setting, not this path.
    let mut o = SessionOptions::default();
    for n in ["VitisAI", "VitisAIExecutionProvider"] {
        let e = o.execution_provider(n, vec![]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("device"), "{}", e.message());
    }
    assert_eq!(
        o.execution_provider(" ", vec![]).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        o.execution_provider("XNNPACK", vec![("".into(), "1".into())])
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    // ORT's CPU EP by name works.
    o.execution_provider("CPU", vec![]).unwrap();
    let s = Session::from_bytes(&add_model(), &o).unwrap();
    assert_eq!(s.device_used(), DeviceUsed::Cpu);
}

/// AUTO with a fake sysfs tree. One test, so the process-wide IPUFLOW_SYSFS_ROOT is never changed concurrently.
#[test]
fn auto_uses_detection() {
    runtime();
    let root = scratch("auto");
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::env::set_var("IPUFLOW_SYSFS_ROOT", &empty);
    let mut o = SessionOptions::default();
    o.device = SessionDevice::Auto;
    // No NPU: CPU, with the reason (PREFER is AUTO's default).
    let s = Session::from_bytes(&add_model(), &o).unwrap();
    assert_eq!(s.device_used(), DeviceUsed::Cpu);
    assert!(
        s.fallback_reason().contains("no Ryzen AI NPU was found"),
        "{}",
        s.fallback_reason()
    );
    assert_eq!(s.execution().cache_key, None);
    // AUTO + explicit STRICT: an error.
    o.fallback_policy(FallbackPolicy::Strict, 0.0).unwrap();
    let e = Session::from_bytes(&add_model(), &o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceUnavailable);
    assert!(e.message().contains("no Ryzen AI NPU"), "{}", e.message());

    // An STX device: the target comes from detection; the EP is refused by this runtime, so the CPU it is.
    let stx = root.join("stx");
    let dev = stx.join("0000:c4:00.1");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("vendor"), "0x1022\n").unwrap();
    std::fs::write(dev.join("device"), "0x17f0\n").unwrap();
    std::fs::write(dev.join("revision"), "0x10\n").unwrap();
    std::env::set_var("IPUFLOW_SYSFS_ROOT", &stx);
    o.fallback_policy(FallbackPolicy::Prefer, 0.0).unwrap();
    let s = Session::from_bytes(&add_model(), &o).unwrap();
    assert_eq!(s.device_used(), DeviceUsed::Cpu);
    assert!(
        s.fallback_reason().contains(ORT_REASON),
        "{}",
        s.fallback_reason()
    );
    assert!(
        s.execution()
            .provider_options
            .contains(&("target".into(), "X2".into())),
        "{:?}",
        s.execution().provider_options
    );
    // The host's target wins over detection.
    o.vitisai_option("target", "X1").unwrap();
    let s = Session::from_bytes(&add_model(), &o).unwrap();
    assert!(s
        .execution()
        .provider_options
        .contains(&("target".into(), "X1".into())));
    std::env::remove_var("IPUFLOW_SYSFS_ROOT");
}

fn count_nodes(path: &std::path::Path) -> (usize, BTreeSet<String>) {
    let m = Model::load_file(path).unwrap();
    let g = m.proto().graph.as_ref().unwrap();
    (
        g.node.len(),
        g.node
            .iter()
            .map(|n| n.name.clone().unwrap_or_default())
            .collect(),
    )
}

/// The placement lists every node of a real model as ONNX Runtime partitioned it among the EPs: after its basic
/// (level 1) optimizations, before the EP-specific fusions of levels 2 and 3 (measured: efficientnet-lite0 has 456
/// nodes, 94 after level 1, 61 after level 2, 53 after level 3; the placement of a default (level 3) session lists
/// the 94). So the reference is the optimized graph ORT writes at level 1, and at level 0 the graph as loaded.
#[test]
fn placement_lists_every_node_of_a_real_model() {
    runtime();
    let Some(model) = shared_model("efficientnet-lite0.onnx") else {
        return;
    };
    let dir = scratch("placement");
    let placed_names = |s: &Session| -> Vec<String> {
        let a = s
            .execution()
            .placement
            .assignment()
            .expect("placement")
            .clone();
        a.subgraphs
            .iter()
            .flat_map(|sg| sg.nodes.iter().map(|n| n.name.clone()))
            .collect()
    };
    // Level 0 and level 1: the placement is exactly the optimized graph ORT writes out.
    use ipuflow::runtime::GraphOptimizationLevel as L;
    let mut basic_names = BTreeSet::new();
    for (lvl, file) in [(L::Disable, "level0.onnx"), (L::Basic, "level1.onnx")] {
        let optimized = dir.join(file);
        let mut o = SessionOptions::default();
        o.graph_optimization_level = lvl;
        o.optimized_model_path = Some(optimized.clone());
        let s = Session::from_file(&model, &o).unwrap();
        let (n, names) = count_nodes(&optimized);
        let placed = placed_names(&s);
        assert_eq!(
            placed.len(),
            n,
            "{lvl:?}: placement lists {} nodes, the optimized graph has {n}",
            placed.len()
        );
        assert_eq!(
            placed.iter().cloned().collect::<BTreeSet<_>>(),
            names,
            "{lvl:?}"
        );
        basic_names = names;
    }
    // The default session (level 3): the same nodes as level 1.
    let s = Session::from_file(&model, &SessionOptions::default()).unwrap();
    let placed = placed_names(&s);
    let n = basic_names.len();
    assert_eq!(placed.len(), n);
    assert_eq!(placed.into_iter().collect::<BTreeSet<_>>(), basic_names);
    let a = s.execution().placement.assignment().unwrap();
    assert!(a.subgraphs.iter().all(|sg| sg.ep_name == CPU_EP));
    // The EP-report shape.
    let r = s.placement_report();
    assert_eq!(r.node_num("all"), n);
    assert_eq!(r.node_num("CPU"), n);
    assert_eq!(r.node_num("NPU"), 0);
    assert!(r
        .device("CPU")
        .unwrap()
        .supported_op_type
        .iter()
        .any(|op| op.ends_with("::Conv") || op.contains("Conv")));
    assert!(
        r.summary_line()
            .starts_with(&format!("No. of Operators : CPU {n} NPU 0")),
        "{}",
        r.summary_line()
    );
    // The JSON numbers subgraphs by the one definition (issue 11 item 3): all CPU and connected, one subgraph,
    // however many ONNX Runtime listed (kept apart under onnxRuntimeSubgraphs).
    let json: serde_json::Value = serde_json::from_str(&s.execution().report_json()).unwrap();
    let stat = json["subgraphStat"].as_array().unwrap();
    assert_eq!(stat.len(), 1, "{:#}", json["subgraphStat"]);
    assert_eq!(stat[0]["nodeNum"], n);
    assert!(json["nodeStat"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["subgraph"] == 0));
    let raw = json["onnxRuntimeSubgraphs"].as_array().unwrap();
    assert_eq!(raw.len(), a.subgraphs.len());
    let raw_nodes: u64 = raw.iter().map(|x| x["nodeNum"].as_u64().unwrap()).sum();
    assert_eq!(raw_nodes as usize, n);
    let _ = VITISAI_EP;
    // Recording turned off by the host: "unavailable", never guessed.
    let mut o = SessionOptions::default();
    o.config_entry("session.record_ep_graph_assignment_info", "0");
    let s = Session::from_file(&model, &o).unwrap();
    match &s.execution().placement {
        Placement::Unavailable(why) => {
            assert!(why.contains("record_ep_graph_assignment_info"), "{why}")
        }
        p => panic!("{p:?}"),
    }
    let json: serde_json::Value = serde_json::from_str(&s.execution().report_json()).unwrap();
    assert!(json["unavailable"].as_str().is_some());
}
