//! The committed C header must be exactly what the pinned cbindgen generates from src/capi/.
//! Regenerate with: IPUFLOW_UPDATE_HEADER=1 cargo test --test header_drift

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Generates the header from the C ABI layer only (src/capi/mod.rs and the modules it declares), so constants of
/// the Rust core never leak into it.
pub fn generate(capi_root: &Path) -> String {
    let config =
        cbindgen::Config::from_file(root().join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(capi_root)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn header_is_up_to_date() {
    let path = root().join("include/ipuflow.h");
    let fresh = generate(&root().join("src/capi/mod.rs"));
    if std::env::var_os("IPUFLOW_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write include/ipuflow.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b);
        panic!(
            "include/ipuflow.h is stale (first difference at line {}). Regenerate it with:\n  \
             IPUFLOW_UPDATE_HEADER=1 cargo test --test header_drift",
            first.map_or_else(|| "end".to_string(), |l| (l + 1).to_string())
        );
    }
}

#[test]
fn drift_is_detected_when_a_doc_comment_changes() {
    // Copy the C ABI sources, change one doc comment, and check that the generated header differs.
    let dir = std::env::temp_dir().join(format!("ipuflow-header-drift-{}", std::process::id()));
    let capi = dir.join("capi");
    std::fs::create_dir_all(&capi).unwrap();
    for entry in std::fs::read_dir(root().join("src/capi")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, capi.join(p.file_name().unwrap())).unwrap();
    }
    let lib = capi.join("library.rs");
    let src = std::fs::read_to_string(&lib).unwrap();
    let changed = src.replacen(
        "Returns the version of the loaded library",
        "Returns the library's version",
        1,
    );
    assert_ne!(src, changed, "the doc comment this test edits exists");
    let baseline = generate(&capi.join("mod.rs"));
    std::fs::write(&lib, changed).unwrap();
    let edited = generate(&capi.join("mod.rs"));
    std::fs::remove_dir_all(&dir).ok();
    assert_ne!(
        baseline, edited,
        "a doc-comment change must change the header"
    );
    assert_eq!(
        baseline,
        generate(&root().join("src/capi/mod.rs")),
        "copy generates the same header as the tree"
    );
}
