//! Every item of include/ipuflow.h is documented, and every function's comment states the four things a C caller
//! needs (house style, docs/house-style.md): who owns what (ownership), what NULL means (NULL handling), which
//! status codes it returns (errors) and whether it may be called concurrently (thread safety). An alias ("Alias of
//! `ipuflow_x`") inherits them from the function it names, which must exist. Opaque handle types state ownership
//! (how they are freed) and thread safety. The naming rules of the 1.0 ABI are checked here too: `npu` (never
//! `ipu`) in new names, and a `_w` twin for every function taking a path.
//!
//! The test fails naming each item and what it lacks.

mod header_parse;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use header_parse::{parse, Item, Kind};

fn header() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/ipuflow.h");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn baseline() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/abi/ipuflow-baseline-0.1.h");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The function a twin's comment defers to ("Same as `ipuflow_x` with a UTF-16 path"): its statements apply.
fn same_as(doc: &str) -> Option<&str> {
    let rest = doc.strip_prefix("Same as `")?;
    rest.split('`').next()
}

/// The name an alias comment points to ("Alias of `ipuflow_x`").
fn alias_target(doc: &str) -> Option<&str> {
    let rest = doc.strip_prefix("Alias of `")?;
    rest.split('`').next()
}

fn has_any(doc: &str, words: &[&str]) -> bool {
    let lower = doc.to_lowercase();
    words.iter().any(|w| lower.contains(&w.to_lowercase()))
}

const ERRORS: &[&str] = &["Errors", "IPUFLOW_STATUS_", "never fails", "cannot fail"];
const NULL: &[&str] = &["NULL"];
const THREADS: &[&str] = &["thread"];
const OWNERSHIP: &[&str] = &[
    "owned",
    "owner",
    "free",
    "copied",
    "copies",
    "borrowed",
    "valid until",
    "not kept",
    "caller",
    "keeps",
];

/// What a function's comment lacks of the four statements.
fn missing_parts(doc: &str) -> Vec<&'static str> {
    let mut m = Vec::new();
    if !has_any(doc, OWNERSHIP) {
        m.push("ownership");
    }
    if !has_any(doc, NULL) {
        m.push("NULL handling");
    }
    if !has_any(doc, ERRORS) {
        m.push("errors");
    }
    if !has_any(doc, THREADS) {
        m.push("thread safety");
    }
    m
}

/// Every problem of the header, one line each.
fn problems(items: &[Item]) -> Vec<String> {
    let functions: BTreeMap<&str, &Item> = items
        .iter()
        .filter(|i| i.kind == Kind::Function)
        .map(|i| (i.name.as_str(), i))
        .collect();
    let mut out = Vec::new();
    for it in items {
        if it.doc.trim().is_empty() {
            out.push(format!("{:?} {}: no doc comment", it.kind, it.name));
            continue;
        }
        match it.kind {
            Kind::Function => {
                if let Some(target) = alias_target(&it.doc) {
                    match functions.get(target) {
                        None => out.push(format!(
                            "{}: alias of `{target}`, which the header does not declare",
                            it.name
                        )),
                        Some(t) if alias_target(&t.doc).is_some() => {
                            out.push(format!("{}: alias of an alias (`{target}`)", it.name))
                        }
                        Some(_) => {}
                    }
                    continue;
                }
                // A twin ("Same as `ipuflow_x` with ...") states what differs; the rest is said by `ipuflow_x`.
                let doc = match same_as(&it.doc) {
                    Some(t) => match functions.get(t) {
                        Some(base) => format!("{}\n{}", it.doc, base.doc),
                        None => {
                            out.push(format!(
                                "{}: same as `{t}`, which the header does not declare",
                                it.name
                            ));
                            continue;
                        }
                    },
                    None => it.doc.clone(),
                };
                let m = missing_parts(&doc);
                if !m.is_empty() {
                    out.push(format!("{}: does not state {}", it.name, m.join(", ")));
                }
            }
            Kind::Typedef if it.decl.starts_with("typedef struct") => {
                // An opaque handle: how it is freed and whether threads may share it.
                let mut m = Vec::new();
                if !has_any(&it.doc, &["free"]) {
                    m.push("ownership (how it is freed)");
                }
                if !has_any(&it.doc, THREADS) {
                    m.push("thread safety");
                }
                if !m.is_empty() {
                    out.push(format!(
                        "handle {}: does not state {}",
                        it.name,
                        m.join(", ")
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_item_is_documented_with_the_four_statements() {
    let items = parse(&header());
    assert!(
        items.iter().filter(|i| i.kind == Kind::Function).count() >= 150,
        "the header reader found too few functions"
    );
    let p = problems(&items);
    assert!(
        p.is_empty(),
        "include/ipuflow.h: {} items lack documentation (say ownership, NULL handling, errors and thread safety \
         in the Rust doc comment of the export, then regenerate the header):\n{}",
        p.len(),
        p.join("\n")
    );
}

#[test]
fn a_function_without_a_statement_is_named() {
    let h = "#define IPUFLOW_H\n/**\n * Does a thing. Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.\n */\n\
             ipuflow_status ipuflow_thing_do(const struct ipuflow_thing *thing);\n\
             /**\n * Alias of `ipuflow_thing_gone`.\n */\nipuflow_status ipuflow_old(void);\n\
             ipuflow_status ipuflow_undocumented(void);\n";
    let p = problems(&parse(h)).join("\n");
    assert!(
        p.contains("ipuflow_thing_do: does not state ownership"),
        "{p}"
    );
    assert!(
        !p.contains("ipuflow_thing_do: does not state ownership, NULL"),
        "{p}"
    );
    assert!(
        p.contains("ipuflow_old: alias of `ipuflow_thing_gone`"),
        "{p}"
    );
    assert!(p.contains("ipuflow_undocumented: no doc comment"), "{p}");
}

/// Parameter names that hold a file-system path.
fn path_params(decl: &str) -> Vec<String> {
    const PATHS: &[&str] = &[
        "path",
        "model_path",
        "dir",
        "base_dir",
        "sysfs_root",
        "cache_dir",
        "prefix",
    ];
    let inner = &decl[decl.find('(').map_or(0, |i| i + 1)..decl.rfind(')').unwrap_or(decl.len())];
    inner
        .split(',')
        .filter(|p| p.contains("char *") || p.contains("uint16_t *"))
        .filter_map(|p| {
            let name = p.trim().rsplit([' ', '*']).next()?.to_string();
            PATHS.contains(&name.as_str()).then_some(name)
        })
        .collect()
}

#[test]
fn every_function_taking_a_path_has_a_wide_twin() {
    let items = parse(&header());
    let names: BTreeSet<&str> = items
        .iter()
        .filter(|i| i.kind == Kind::Function)
        .map(|i| i.name.as_str())
        .collect();
    let mut lacking = Vec::new();
    let mut checked = 0;
    for it in items.iter().filter(|i| i.kind == Kind::Function) {
        if it.name.ends_with("_w") || path_params(&it.decl).is_empty() {
            continue;
        }
        checked += 1;
        let twin = format!("{}_w", it.name);
        match items.iter().find(|i| i.name == twin) {
            None => lacking.push(format!("{} (no {twin})", it.name)),
            Some(w) if !w.decl.contains("uint16_t *") => {
                lacking.push(format!("{twin} takes no UTF-16 path"))
            }
            Some(_) => {}
        }
        assert!(names.contains(it.name.as_str()));
    }
    assert!(checked >= 13, "only {checked} path functions found");
    assert!(
        lacking.is_empty(),
        "path functions without a wide twin:\n{}",
        lacking.join("\n")
    );
}

#[test]
fn new_names_say_npu_never_ipu() {
    // The 0.1 names are kept as they were (aliases); anything added since spells the accelerator NPU.
    let old: BTreeSet<String> = parse(&baseline()).into_iter().map(|i| i.name).collect();
    let new_ipu: Vec<String> = parse(&header())
        .into_iter()
        .filter(|i| !old.contains(&i.name))
        .filter(|i| {
            let n = i.name.to_lowercase();
            n.split('_').any(|w| w == "ipu")
        })
        .map(|i| i.name)
        .collect();
    assert!(new_ipu.is_empty(), "new names with 'ipu': {new_ipu:?}");
    // And the NPU spelling of the one 0.1 IPU name exists with the same value.
    let items = parse(&header());
    let value = |n: &str| items.iter().find(|i| i.name == n).map(|i| i.decl.clone());
    assert_eq!(
        value("IPUFLOW_SESSION_DEVICE_NPU"),
        value("IPUFLOW_SESSION_DEVICE_IPU")
    );
    assert!(value("IPUFLOW_SESSION_DEVICE_NPU").is_some());
}
