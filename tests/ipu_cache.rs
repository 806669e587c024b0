//! Compile-cache keys and cache clearing.

use std::fs;
use std::path::PathBuf;

use ipuflow::ipu::cache::{clear_cache, default_cache_key, ensure_cache_key};
use ipuflow::ipu::options::normalize;
use ipuflow::ErrorKind;

fn tempdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ipuflow-ipu-cache-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn key_is_stable_hex_and_sensitive_to_what_matters() {
    let opts = normalize(&[("target", "X2"), ("opt_level", "2")])
        .unwrap()
        .entries;
    let k = default_cache_key(b"model", "1.24.1", &opts);
    assert_eq!(k.len(), 32);
    assert!(k
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // Pinned: the derivation must not drift between releases or platforms (bump KEY_DOMAIN if it must change).
    assert_eq!(k, default_cache_key(b"model", "1.24.1", &opts));
    println!("key = {k}");

    assert_ne!(k, default_cache_key(b"model2", "1.24.1", &opts));
    assert_ne!(k, default_cache_key(b"model", "1.24.2", &opts));
    let opts3 = normalize(&[("target", "X2"), ("opt_level", "3")])
        .unwrap()
        .entries;
    assert_ne!(k, default_cache_key(b"model", "1.24.1", &opts3));
    // Option order does not matter; cache_dir/cache_key do not enter the key.
    let reordered = normalize(&[
        ("opt_level", "2"),
        ("cache_dir", "/x"),
        ("target", "x2"),
        ("cache_key", "k"),
    ])
    .unwrap()
    .entries;
    assert_eq!(k, default_cache_key(b"model", "1.24.1", &reordered));
    // No ambiguity by concatenation.
    assert_ne!(
        default_cache_key(b"ab", "c", &[] as &[(&str, &str)]),
        default_cache_key(b"a", "bc", &[] as &[(&str, &str)])
    );
}

#[test]
fn known_answers() {
    // Computed independently (Python hashlib) from the documented v1 derivation: SHA-256 over length-prefixed
    // (u64 LE) domain tag, model bytes, runtime version, then the option count and sorted (key, value) pairs;
    // first 16 bytes in hex. A change here silently invalidates every user's cache.
    assert_eq!(
        default_cache_key(b"", "", &[] as &[(&str, &str)]),
        "c7d1e6639ad003257efa9ed62b7c2fa1"
    );
    assert_eq!(
        default_cache_key(b"model", "1.24.1", &[("target", "X2"), ("opt_level", "2")]),
        "e069ba9d42cfa16c07c4336e0f76ef7d"
    );
}

#[test]
fn clear_removes_only_that_model() {
    let dir = tempdir("clear");
    let a = dir.join("model_a");
    fs::create_dir_all(a.join("sub")).unwrap();
    fs::write(a.join("compiled.xmodel"), vec![0u8; 100]).unwrap();
    fs::write(a.join("sub").join("context.json"), b"{}").unwrap();
    fs::create_dir_all(dir.join("model_b")).unwrap();
    fs::write(dir.join("model_b").join("compiled.xmodel"), b"keep").unwrap();
    // A link inside the entry pointing outside it: removed as a link, target kept.
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("model_b"), a.join("link_to_b")).unwrap();

    let r = clear_cache(&dir, "model_a").unwrap();
    assert!(r.existed);
    assert_eq!(r.bytes, 102);
    assert!(r.removed.contains(&a));
    assert!(r.removed.contains(&a.join("compiled.xmodel")));
    assert_eq!(*r.removed.last().unwrap(), a, "children before parents");
    assert!(!a.exists());
    assert!(dir.join("model_b").join("compiled.xmodel").exists());

    // Already gone: fine, nothing removed.
    let r = clear_cache(&dir, "model_a").unwrap();
    assert!(!r.existed && r.removed.is_empty());
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn clear_refuses_keys_that_escape() {
    let dir = tempdir("refuse");
    for bad in ["..", "../x", "a/b", "a\\b", "", ".", "x/../..", "c:evil"] {
        let e = clear_cache(&dir, bad).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::PathRefused | ErrorKind::InvalidArgument
            ),
            "{bad}: {e}"
        );
    }
    assert!(dir.exists());
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn ensure_cache_key_fills_only_when_absent() {
    let mut o = normalize(&[("target", "X2")]).unwrap();
    let k = ensure_cache_key(&mut o, b"m", "1.24.1");
    assert_eq!(o.get("cache_key"), Some(k.as_str()));
    assert_eq!(k, default_cache_key(b"m", "1.24.1", &[("target", "X2")]));
    // Idempotent, and a user-given key wins.
    assert_eq!(ensure_cache_key(&mut o, b"other", "x"), k);
    let mut o = normalize(&[("cacheKey", "mine")]).unwrap();
    assert_eq!(ensure_cache_key(&mut o, b"m", "1"), "mine");
    assert_eq!(o.entries.len(), 1);
}
