//! The VitisAI EP's compile cache: stable keys and removal of one model's entries.
//!
//! Facts:
//! - shared/docs/ryzen-ai-flow.md: the EP caches compiled models under `cache_dir` (default
//!   `C:\temp\%USERNAME%\vaip\.cache`), keyed by `cache_key` (default: MD5 of the model); a cache must not be
//!   reused across EP or driver versions, and detecting that is left to the app.
//! - Ryzen AI 1.4 documentation ("Model Compilation and Deployment", provider options): `cache_key` is "the
//!   subfolder in the cache directory where the compiled model is stored", i.e. `<cache_dir>/<cache_key>/...`;
//!   the `ort` crate's VitisAI options say the same ("name of the subfolder under cache_dir"). AMD's advice on stale
//!   caches: on an EP or NPU-driver version change, delete the cache or use a directory with a different name.
//!
//! So ipuflow's default key covers the model bytes **and** the runtime version string (callers append the NPU
//! driver version when they know it) **and** the EP options: a new runtime, driver or option set gets a fresh
//! subfolder instead of a stale hit. What the EP writes inside the subfolder is not assumed: [`clear_cache`]
//! removes the subfolder as a whole.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::options::{check_cache_key, ProviderOptions};
use crate::error::{Error, ErrorKind, Result};

/// Options that name the cache itself and so are not hashed into the key.
pub const KEY_EXCLUDED_OPTIONS: &[&str] = &["cache_key", "cache_dir", "cacheKey", "cacheDir"];

/// Version tag of the key derivation; bump when what is hashed changes.
const KEY_DOMAIN: &[u8] = b"ipuflow/vitisai-cache-key/v1";

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The default cache key: 32 lower-case hex chars (the first 128 bits of SHA-256) over the model bytes, the
/// runtime version string (put the driver version in it too, if known), and the EP options sorted by key,
/// excluding `cache_key`/`cache_dir`. Every field is length-prefixed, so no two inputs collide by concatenation.
///
/// Options should already be normalized ([`super::options::normalize`]) so that spellings do not change the key.
pub fn default_cache_key<K: AsRef<str>, V: AsRef<str>>(
    model_bytes: &[u8],
    runtime_version: &str,
    ep_options: &[(K, V)],
) -> String {
    let mut opts: Vec<(&str, &str)> = ep_options
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .filter(|(k, _)| !KEY_EXCLUDED_OPTIONS.contains(k))
        .collect();
    opts.sort();
    opts.dedup();
    let mut h = Sha256::new();
    put(&mut h, KEY_DOMAIN);
    put(&mut h, model_bytes);
    put(&mut h, runtime_version.as_bytes());
    h.update((opts.len() as u64).to_le_bytes());
    for (k, v) in opts {
        put(&mut h, k.as_bytes());
        put(&mut h, v.as_bytes());
    }
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Sets `cache_key` to [`default_cache_key`] unless the options already carry one; returns the key in use.
pub fn ensure_cache_key(
    options: &mut ProviderOptions,
    model_bytes: &[u8],
    runtime_version: &str,
) -> String {
    if let Some(k) = options.get("cache_key") {
        return k.to_string();
    }
    let key = default_cache_key(model_bytes, runtime_version, &options.entries);
    options.entries.push(("cache_key".to_string(), key.clone()));
    key
}

/// What [`clear_cache`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearedCache {
    /// `<cache_dir>/<cache_key>`.
    pub entry: PathBuf,
    /// Whether that entry existed.
    pub existed: bool,
    /// Every file, link and directory removed (children before parents).
    pub removed: Vec<PathBuf>,
    /// Bytes of the regular files removed.
    pub bytes: u64,
}

/// Removes one model's compiled cache: `<cache_dir>/<cache_key>` and everything under it.
///
/// `cache_key` must be a single directory name (no `/`, `\`, `:`, `..`, NUL; not empty): `PathRefused` otherwise.
/// Symbolic links are removed, never followed. A missing entry is not an error (`existed: false`).
pub fn clear_cache(cache_dir: &Path, cache_key: &str) -> Result<ClearedCache> {
    check_cache_key("cache_key", cache_key)?;
    if cache_dir.as_os_str().is_empty() {
        return Err(Error::invalid_argument("cache_dir is empty"));
    }
    // A cache_dir that exists but is a file is the host's mistake: say so rather than report an odd read error.
    if fs::metadata(cache_dir).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::new(
            ErrorKind::FileNotFound,
            format!("cache_dir '{}' is not a directory", cache_dir.display()),
        ));
    }
    let entry = cache_dir.join(cache_key);
    let mut out = ClearedCache {
        entry: entry.clone(),
        ..Default::default()
    };
    let meta = match fs::symlink_metadata(&entry) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("read", &entry, e)),
    };
    out.existed = true;
    remove_tree(&entry, &meta, &mut out)?;
    Ok(out)
}

fn remove_tree(path: &Path, meta: &fs::Metadata, out: &mut ClearedCache) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_dir() {
        let mut children: Vec<PathBuf> = Vec::new();
        for e in fs::read_dir(path).map_err(|e| Error::io("read", path, e))? {
            children.push(e.map_err(|e| Error::io("read", path, e))?.path());
        }
        children.sort();
        for c in children {
            let m = fs::symlink_metadata(&c).map_err(|e| Error::io("read", &c, e))?;
            remove_tree(&c, &m, out)?;
        }
        fs::remove_dir(path).map_err(|e| remove_err(path, e))?;
    } else {
        if ft.is_file() {
            out.bytes += meta.len();
        }
        // A link (file or directory link, any platform) is removed as a link.
        fs::remove_file(path)
            .or_else(|e| {
                // Windows directory symlinks / junctions need remove_dir.
                if cfg!(windows) {
                    fs::remove_dir(path)
                } else {
                    Err(e)
                }
            })
            .map_err(|e| remove_err(path, e))?;
    }
    out.removed.push(path.to_path_buf());
    Ok(())
}

fn remove_err(path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::FileWrite,
        format!("cannot remove '{}': {e}", path.display()),
    )
}
