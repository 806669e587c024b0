//! VitisAI provider options and EP-context session entries: normalization and validation.

use std::fs;
use std::path::PathBuf;

use ipuflow::ipu::options::{normalize, validate_session_config};
use ipuflow::ipu::Target;
use ipuflow::ErrorKind;

fn tmpfile(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ipuflow-ipu-options-{tag}-{}", std::process::id()));
    fs::write(&p, "{}").unwrap();
    p
}

const KEY64: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

#[test]
fn current_names_pass_and_keep_their_order() {
    let cfg = tmpfile("cfg");
    let cfg_s = cfg.to_string_lossy().to_string();
    let opts = vec![
        ("target", "x2"),
        ("config_file", cfg_s.as_str()),
        ("cache_dir", "/tmp/vaip/.cache"),
        ("cache_key", "resnet50"),
        ("opt_level", "65536"),
        ("encryption_key", KEY64),
        ("enable_cache_file_io_in_mem", "0"),
        ("ai_analyzer_visualization", "1"),
        ("ai_analyzer_profiling", "0"),
    ];
    let n = normalize(&opts).unwrap();
    let keys: Vec<&str> = n.entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "target",
            "config_file",
            "cache_dir",
            "cache_key",
            "opt_level",
            "encryption_key",
            "enable_cache_file_io_in_mem",
            "ai_analyzer_visualization",
            "ai_analyzer_profiling"
        ]
    );
    assert_eq!(n.get("target"), Some("X2"));
    assert_eq!(n.target(), Some(Target::X2));
    assert!(n.warnings.is_empty(), "{:?}", n.warnings);
    let (k, v) = n.keys_values();
    assert_eq!(k.len(), v.len());
    fs::remove_file(cfg).ok();
}

#[test]
fn legacy_names_are_normalized() {
    let n = normalize(&[
        ("cacheDir", "/c"),
        ("cacheKey", "k1"),
        ("encryptionKey", KEY64),
    ])
    .unwrap();
    assert_eq!(
        n.entries,
        vec![
            ("cache_dir".to_string(), "/c".to_string()),
            ("cache_key".to_string(), "k1".to_string()),
            ("encryption_key".to_string(), KEY64.to_string())
        ]
    );
    assert_eq!(n.warnings.len(), 3);
    assert!(n.warnings[0].contains("legacy"));
}

#[test]
fn duplicate_under_both_names_with_different_values_names_both() {
    let e = normalize(&[("cache_dir", "/a"), ("cacheDir", "/b")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.message().contains("'cache_dir'") && e.message().contains("'cacheDir'"),
        "{}",
        e.message()
    );
    // Same value under both names: merged, one entry.
    let n = normalize(&[("cacheKey", "m"), ("cache_key", "m")]).unwrap();
    assert_eq!(n.entries.len(), 1);
    // Same name twice, different values.
    let e = normalize(&[("opt_level", "1"), ("opt_level", "2")]).unwrap_err();
    assert!(e.message().contains("'opt_level'"), "{}", e.message());
    // Values compared after canonicalization: x1 == X1.
    assert_eq!(
        normalize(&[("target", "x1"), ("target", "X1")])
            .unwrap()
            .entries
            .len(),
        1
    );
}

#[test]
fn bad_values_name_the_option() {
    let cases: &[(&str, &str)] = &[
        ("encryption_key", "abc"),
        ("encryption_key", &"g".repeat(64)),
        ("encryptionKey", &"0".repeat(63)),
        ("opt_level", "4"),
        ("opt_level", "-1"),
        ("opt_level", "max"),
        ("target", "X3"),
        ("target", ""),
        ("enable_cache_file_io_in_mem", "true"),
        ("ai_analyzer_visualization", "2"),
        ("ai_analyzer_profiling", ""),
        ("cache_dir", ""),
    ];
    for (k, v) in cases {
        let e = normalize(&[(*k, *v)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{k}={v}");
        let canon = match *k {
            "encryptionKey" => "encryption_key",
            other => other,
        };
        assert!(e.message().contains(canon), "{k}={v}: {}", e.message());
    }
    for ok in ["0", "1", "2", "3", "65536"] {
        assert!(normalize(&[("opt_level", ok)]).is_ok());
    }
    let e = normalize(&[("", "x")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = normalize(&[("bad key", "x")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn cache_key_must_be_one_directory_name() {
    for bad in ["../x", "a/b", "a\\b", "..", ".", "c:x", ""] {
        let e = normalize(&[("cache_key", bad)]).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::PathRefused | ErrorKind::InvalidArgument
            ),
            "{bad}"
        );
        assert!(e.message().contains("cache_key"), "{}", e.message());
    }
}

#[test]
fn missing_files_are_file_not_found_naming_option_and_path() {
    for key in ["config_file", "xclbin"] {
        let e = normalize(&[(key, "/nonexistent/ipuflow/x.bin")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FileNotFound, "{key}");
        assert!(
            e.message().contains(key) && e.message().contains("/nonexistent/ipuflow/x.bin"),
            "{}",
            e.message()
        );
    }
    // A directory is not a file.
    let e = normalize(&[("xclbin", std::env::temp_dir().to_string_lossy().as_ref())]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // An existing xclbin with target X2 is allowed but warned about.
    let x = tmpfile("xclbin");
    let n = normalize(&[("target", "X2"), ("xclbin", x.to_string_lossy().as_ref())]).unwrap();
    assert!(
        n.warnings.iter().any(|w| w.contains("PHX/HPT")),
        "{:?}",
        n.warnings
    );
    fs::remove_file(x).ok();
}

#[test]
fn unknown_keys_pass_through_with_a_warning_and_log_level_is_deprecated() {
    let n = normalize(&[("log_level", "info"), ("some_future_option", "7")]).unwrap();
    assert_eq!(n.get("log_level"), Some("info"));
    assert_eq!(n.get("some_future_option"), Some("7"));
    assert!(
        n.warnings
            .iter()
            .any(|w| w.contains("log_level") && w.contains("deprecated")),
        "{:?}",
        n.warnings
    );
    assert!(n
        .warnings
        .iter()
        .any(|w| w.contains("some_future_option") && w.contains("unchanged")));
}

#[test]
fn ep_context_session_entries() {
    let dir = std::env::temp_dir();
    let path = dir.join("model_ctx.onnx").to_string_lossy().to_string();
    let s = validate_session_config(&[
        ("ep.context_enable", "1"),
        ("ep.context_file_path", path.as_str()),
        ("ep.context_embed_mode", "0"),
        ("session.record_ep_graph_assignment_info", "1"),
        ("ep.vitisaiexecutionprovider.target", "x1"),
    ])
    .unwrap();
    assert_eq!(s.entries.len(), 5);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.entries[4].1, "X1");

    for (k, v) in [
        ("ep.context_enable", "yes"),
        ("ep.context_embed_mode", "2"),
        ("ep.context_file_path", ""),
    ] {
        let e = validate_session_config(&[(k, v)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains(k), "{}", e.message());
    }
    let e = validate_session_config(&[("ep.context_file_path", "/nonexistent/dir/m_ctx.onnx")])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileNotFound);
    assert!(e.message().contains("ep.context_file_path"));
    // Forwarded provider options are validated like provider options.
    let e = validate_session_config(&[("ep.vitisaiexecutionprovider.opt_level", "9")]).unwrap_err();
    assert!(e.message().contains("opt_level"), "{}", e.message());
    // Path / embed mode without enable: warning.
    let s = validate_session_config(&[("ep.context_embed_mode", "1")]).unwrap();
    assert!(s.warnings.iter().any(|w| w.contains("no effect")));
    // Conflicting duplicate.
    let e = validate_session_config(&[("ep.context_enable", "1"), ("ep.context_enable", "0")])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}
