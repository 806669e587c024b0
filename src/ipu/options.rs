//! VitisAI execution-provider options: one normalized, validated form.
//!
//! Facts (shared/docs/ryzen-ai-flow.md, Ryzen AI 1.8): the current option names are `config_file`, `target`
//! (X1/X2), `xclbin`, `encryption_key` (64 hex chars), `opt_level` (0,1,2,3,65536), `cache_dir`, `cache_key`,
//! `enable_cache_file_io_in_mem`, `ai_analyzer_visualization`, `ai_analyzer_profiling`; `log_level` is deprecated;
//! releases ≤1.3 spelled three of them in camelCase (`cacheDir`, `cacheKey`, `encryptionKey`).
//!
//! Decisions:
//! - Legacy names are rewritten to the current ones (with a warning). The same option given twice, under one name
//!   or under both, with different values is `InvalidArgument` naming both spellings; equal values are merged.
//! - Unknown keys are **passed through unchanged** with a warning: the EP release on the user's machine may know
//!   options newer than this table, and refusing them would make ipuflow the bottleneck. Key syntax is still
//!   checked (non-empty, no whitespace or NUL).
//! - `log_level` is passed through with a deprecation warning.
//! - Output order is the order of first appearance, so what the host wrote is what the EP gets.
//! - Files the EP must read (`config_file`, `xclbin`) must exist: `FileNotFound` naming the option and path.
//!   `cache_dir` need not exist (the EP creates it).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Target;
use crate::error::{Error, ErrorKind, Result};

/// The current (1.8) provider option names this module knows.
pub const KNOWN_OPTIONS: &[&str] = &[
    "config_file",
    "target",
    "xclbin",
    "encryption_key",
    "opt_level",
    "cache_dir",
    "cache_key",
    "enable_cache_file_io_in_mem",
    "ai_analyzer_visualization",
    "ai_analyzer_profiling",
    "log_level",
];

/// Legacy (≤1.3) camelCase names and their current spelling.
pub const LEGACY_NAMES: &[(&str, &str)] = &[
    ("cacheDir", "cache_dir"),
    ("cacheKey", "cache_key"),
    ("encryptionKey", "encryption_key"),
];

/// Values `opt_level` accepts.
pub const OPT_LEVELS: &[u32] = &[0, 1, 2, 3, 65536];

/// Session config entries of ONNX Runtime's EP-context export this module validates.
pub const EP_CONTEXT_ENABLE: &str = "ep.context_enable";
pub const EP_CONTEXT_FILE_PATH: &str = "ep.context_file_path";
pub const EP_CONTEXT_EMBED_MODE: &str = "ep.context_embed_mode";
/// Session config entries with this prefix are forwarded by ONNX Runtime to the EP as provider options.
pub const VITISAI_CONFIG_PREFIX: &str = "ep.vitisaiexecutionprovider.";

/// Normalized, validated VitisAI provider options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderOptions {
    /// (key, value) in current spelling, in order of first appearance: ready for
    /// `SessionOptionsAppendExecutionProvider_VitisAI(keys, values, n)`.
    pub entries: Vec<(String, String)>,
    /// Non-fatal remarks: legacy names, unknown keys, deprecated options, odd combinations.
    pub warnings: Vec<String>,
}

impl ProviderOptions {
    /// The value of a (current-spelling) option.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `target` option, if given.
    pub fn target(&self) -> Option<Target> {
        self.get("target").and_then(|t| Target::parse(t).ok())
    }

    /// Keys and values as two parallel lists.
    pub fn keys_values(&self) -> (Vec<String>, Vec<String>) {
        self.entries.iter().cloned().unzip()
    }
}

/// The current spelling of a key (legacy camelCase names mapped), and whether it was legacy.
pub fn canonical_name(key: &str) -> (&str, bool) {
    for (legacy, current) in LEGACY_NAMES {
        if key == *legacy {
            return (current, true);
        }
    }
    (key, false)
}

fn check_key_syntax(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid_argument(
            "VitisAI provider option with an empty name",
        ));
    }
    if key.chars().any(|c| c.is_whitespace() || c == '\0') {
        return Err(Error::invalid_argument(format!(
            "VitisAI provider option name {key:?} contains whitespace or NUL"
        )));
    }
    Ok(())
}

fn check_bool(key: &str, value: &str) -> Result<String> {
    match value.trim() {
        "0" | "1" => Ok(value.trim().to_string()),
        _ => Err(Error::invalid_argument(format!(
            "VitisAI option '{key}' must be 0 or 1, not {value:?}"
        ))),
    }
}

fn check_existing_file(key: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid_argument(format!(
            "VitisAI option '{key}' is an empty path"
        )));
    }
    if value.contains('\0') {
        return Err(Error::invalid_argument(format!(
            "VitisAI option '{key}' contains NUL"
        )));
    }
    let path = Path::new(value);
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(value.to_string()),
        Ok(_) => Err(Error::invalid_argument(format!(
            "VitisAI option '{key}': '{value}' is not a file"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::new(
            ErrorKind::FileNotFound,
            format!("VitisAI option '{key}': file '{value}' does not exist"),
        )),
        Err(e) => Err(Error::new(
            ErrorKind::FileRead,
            format!("VitisAI option '{key}': cannot stat '{value}': {e}"),
        )),
    }
}

/// Checks a cache key is usable as one directory name: non-empty, no path separators, not `.`/`..`, no `..`,
/// no NUL or `:` (a Windows drive or stream).
pub fn check_cache_key(key_name: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_argument(format!(
            "VitisAI option '{key_name}' is empty"
        )));
    }
    if value.contains(['/', '\\', '\0', ':']) || value.contains("..") || value == "." {
        return Err(Error::new(
            ErrorKind::PathRefused,
            format!(
                "VitisAI option '{key_name}' {value:?} must be a single directory name \
                 (no '/', '\\', ':', '..')"
            ),
        ));
    }
    Ok(())
}

/// Validates one option's value (key already in current spelling); returns the canonical value.
fn validate_value(key: &str, value: &str) -> Result<String> {
    match key {
        "target" => Target::parse(value)
            .map(|t| t.as_str().to_string())
            .map_err(|_| Error::invalid_argument(format!("VitisAI option 'target' must be X1 or X2, not {value:?}"))),
        "encryption_key" => {
            if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(value.to_string())
            } else {
                Err(Error::invalid_argument(format!(
                    "VitisAI option 'encryption_key' must be exactly 64 hex characters (an AES-256 key), \
                     got {} characters{}",
                    value.chars().count(),
                    if value.bytes().all(|b| b.is_ascii_hexdigit()) { "" } else { " with non-hex ones" }
                )))
            }
        }
        "opt_level" => match value.trim().parse::<u32>() {
            Ok(v) if OPT_LEVELS.contains(&v) => Ok(v.to_string()),
            _ => Err(Error::invalid_argument(format!(
                "VitisAI option 'opt_level' must be one of 0, 1, 2, 3, 65536 (max effort), not {value:?}"
            ))),
        },
        "enable_cache_file_io_in_mem" | "ai_analyzer_visualization" | "ai_analyzer_profiling" => check_bool(key, value),
        "config_file" | "xclbin" => check_existing_file(key, value),
        "cache_dir" => {
            if value.is_empty() || value.contains('\0') {
                Err(Error::invalid_argument("VitisAI option 'cache_dir' must be a non-empty path"))
            } else {
                Ok(value.to_string())
            }
        }
        "cache_key" => check_cache_key(key, value).map(|_| value.to_string()),
        _ => Ok(value.to_string()),
    }
}

/// Normalizes and validates VitisAI provider options.
///
/// Errors: `InvalidArgument` naming the option (bad value, empty name, conflicting duplicates), `FileNotFound`
/// naming the option and path (`config_file`, `xclbin`), `PathRefused` for a `cache_key` that is not one
/// directory name.
pub fn normalize<K: AsRef<str>, V: AsRef<str>>(options: &[(K, V)]) -> Result<ProviderOptions> {
    let mut out = ProviderOptions::default();
    // For each canonical key: the spelling it was first given under.
    let mut given_as: Vec<(String, String)> = Vec::new();
    for (k, v) in options {
        let (raw_key, value) = (k.as_ref(), v.as_ref());
        check_key_syntax(raw_key)?;
        let (key, legacy) = canonical_name(raw_key);
        if legacy {
            out.warnings.push(format!(
                "VitisAI option '{raw_key}' is a legacy (Ryzen AI <= 1.3) name; using '{key}'"
            ));
        }
        let known = KNOWN_OPTIONS.contains(&key);
        let canonical_value = validate_value(key, value)?;
        if let Some(pos) = out.entries.iter().position(|(ek, _)| ek == key) {
            let first_name = &given_as.iter().find(|(c, _)| c == key).expect("recorded").1;
            if out.entries[pos].1 != canonical_value {
                let names = if first_name == raw_key {
                    format!("'{raw_key}' (given twice)")
                } else {
                    format!("'{first_name}' and '{raw_key}'")
                };
                return Err(Error::invalid_argument(format!(
                    "VitisAI option {names} given with different values {:?} and {:?}",
                    out.entries[pos].1, canonical_value
                )));
            }
            out.warnings.push(format!(
                "VitisAI option '{key}' given more than once with the same value"
            ));
            continue;
        }
        if key == "log_level" {
            out.warnings.push(
                "VitisAI option 'log_level' is deprecated; passed to the EP unchanged".into(),
            );
        } else if !known {
            out.warnings.push(format!(
                "VitisAI option '{key}' is not known to ipuflow; passed to the EP unchanged (a newer EP may know it)"
            ));
        }
        given_as.push((key.to_string(), raw_key.to_string()));
        out.entries.push((key.to_string(), canonical_value));
    }
    // Cross-option remarks.
    if out.get("xclbin").is_some() && out.get("target") == Some("X2") {
        out.warnings
            .push("VitisAI option 'xclbin' is for PHX/HPT (target X1) only; target is X2".into());
    }
    if out.get("config_file").is_none()
        && out.get("xclbin").is_some()
        && out.get("target").is_none()
    {
        out.warnings.push(
            "'xclbin' given without 'target': the EP defaults to X2; PHX/HPT needs target=X1"
                .into(),
        );
    }
    Ok(out)
}

/// Session configuration entries, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionConfig {
    /// (key, value), in order of first appearance, for `AddSessionConfigEntry`.
    pub entries: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// Validates session config entries: the EP-context export entries (`ep.context_enable` and
/// `ep.context_embed_mode` 0/1, `ep.context_file_path` a non-empty path whose parent directory exists), and
/// `ep.vitisaiexecutionprovider.<key>` entries, whose value is checked like the provider option `<key>`.
/// Other entries pass unchanged. Duplicates with different values are `InvalidArgument`.
pub fn validate_session_config<K: AsRef<str>, V: AsRef<str>>(
    entries: &[(K, V)],
) -> Result<SessionConfig> {
    let mut out = SessionConfig::default();
    for (k, v) in entries {
        let (key, value) = (k.as_ref(), v.as_ref());
        if key.is_empty() {
            return Err(Error::invalid_argument(
                "session config entry with an empty key",
            ));
        }
        let value = match key {
            EP_CONTEXT_ENABLE | EP_CONTEXT_EMBED_MODE => match value.trim() {
                "0" | "1" => value.trim().to_string(),
                _ => {
                    return Err(Error::invalid_argument(format!(
                        "session config entry '{key}' must be 0 or 1, not {value:?}"
                    )))
                }
            },
            EP_CONTEXT_FILE_PATH => {
                if value.is_empty() || value.contains('\0') {
                    return Err(Error::invalid_argument(format!(
                        "session config entry '{key}' must be a non-empty path"
                    )));
                }
                let parent = Path::new(value)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty());
                if let Some(p) = parent {
                    if !p.is_dir() {
                        return Err(Error::new(
                            ErrorKind::FileNotFound,
                            format!(
                                "session config entry '{key}': directory '{}' does not exist",
                                p.display()
                            ),
                        ));
                    }
                }
                if !value.to_ascii_lowercase().ends_with(".onnx") {
                    out.warnings
                        .push(format!("'{key}' = {value:?} does not end in .onnx"));
                }
                value.to_string()
            }
            _ => {
                if let Some(opt) = key.strip_prefix(VITISAI_CONFIG_PREFIX) {
                    check_key_syntax(opt)?;
                    let (canon, _) = canonical_name(opt);
                    validate_value(canon, value)
                        .map_err(|e| e.context(format!("session config entry '{key}'")))?
                } else {
                    value.to_string()
                }
            }
        };
        if let Some((_, old)) = out.entries.iter().find(|(ek, _)| ek == key) {
            if *old != value {
                return Err(Error::invalid_argument(format!(
                    "session config entry '{key}' given twice with different values {old:?} and {value:?}"
                )));
            }
            continue;
        }
        out.entries.push((key.to_string(), value));
    }
    let enabled = out
        .entries
        .iter()
        .any(|(k, v)| k == EP_CONTEXT_ENABLE && v == "1");
    if !enabled {
        for k in [EP_CONTEXT_FILE_PATH, EP_CONTEXT_EMBED_MODE] {
            if out.entries.iter().any(|(ek, _)| ek == k) {
                out.warnings.push(format!(
                    "'{k}' has no effect without '{EP_CONTEXT_ENABLE}' = 1"
                ));
            }
        }
    }
    Ok(out)
}
