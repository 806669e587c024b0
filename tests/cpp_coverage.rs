//! Every function of the C ABI a host needs has a C++ wrapper: each exported `ipuflow_*` function of
//! include/ipuflow.h is named in include/ipuflow.hpp (called, or given to a `Handle` as its deleter), except the
//! few listed in `NOT_WRAPPED` below, each with the reason. A new C function without a C++ method fails here, and
//! so does an entry of the list that the wrapper does call or that the header no longer has (a stale excuse).

mod header_parse;

use std::collections::BTreeSet;
use std::path::PathBuf;

use header_parse::{parse, Kind};

/// C functions the wrapper deliberately does not call, with why.
const NOT_WRAPPED: &[(&str, &str)] = &[
    // The 0.1 names kept as exported aliases ("Alias of `ipuflow_x`" in the header): the wrapper calls the new
    // name, which does the same.
    (
        "ipuflow_calib_batch_input_count",
        "alias of ipuflow_calib_batch_get_input_count",
    ),
    (
        "ipuflow_calib_batch_input_name",
        "alias of ipuflow_calib_batch_get_input_name",
    ),
    (
        "ipuflow_model_summary_json",
        "alias of ipuflow_model_to_json",
    ),
    (
        "ipuflow_npu_scan_count",
        "alias of ipuflow_npu_scan_get_count",
    ),
    (
        "ipuflow_npu_scan_get",
        "alias of ipuflow_npu_scan_get_device",
    ),
    (
        "ipuflow_preflight_node_count",
        "alias of ipuflow_preflight_get_node_count",
    ),
    (
        "ipuflow_run_options_is_cancelled",
        "alias of ipuflow_run_options_get_cancelled",
    ),
    (
        "ipuflow_runtime_version",
        "alias of ipuflow_runtime_get_version",
    ),
    (
        "ipuflow_runtime_api_version",
        "alias of ipuflow_runtime_get_api_version",
    ),
    ("ipuflow_runtime_path", "alias of ipuflow_runtime_get_path"),
    (
        "ipuflow_session_input_count",
        "alias of ipuflow_session_get_input_count",
    ),
    (
        "ipuflow_session_output_count",
        "alias of ipuflow_session_get_output_count",
    ),
    (
        "ipuflow_session_input_info",
        "alias of ipuflow_session_get_input_info",
    ),
    (
        "ipuflow_session_output_info",
        "alias of ipuflow_session_get_output_info",
    ),
    (
        "ipuflow_session_placement_subgraph_count",
        "alias of ipuflow_session_placement_get_subgraph_count",
    ),
    (
        "ipuflow_session_placement_json",
        "alias of ipuflow_session_placement_to_json",
    ),
    ("ipuflow_tensor_data", "alias of ipuflow_tensor_get_data"),
    (
        "ipuflow_tensor_string_lengths",
        "alias of ipuflow_tensor_get_string_lengths",
    ),
    (
        "ipuflow_element_type_size",
        "alias of ipuflow_element_type_get_size",
    ),
    // Not a host's call in C++: Tensor reads a run output once through ipuflow_tensor_get_view, which gives the
    // data pointer too.
    (
        "ipuflow_tensor_get_data",
        "Tensor reads its data through ipuflow_tensor_get_view",
    ),
];

fn read(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The identifiers `ipuflow_*` that the wrapper's code (comments left out) names.
fn named_in_wrapper(hpp: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in hpp.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("ipuflow_") {
            let before = rest[..i].chars().next_back();
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                names.insert(tail[..end].to_string());
            }
            rest = &tail[end..];
        }
    }
    names
}

#[test]
fn every_c_function_has_a_cpp_wrapper() {
    let header = read("include/ipuflow.h");
    let functions: BTreeSet<String> = parse(&header)
        .into_iter()
        .filter(|i| i.kind == Kind::Function)
        .map(|i| i.name)
        .collect();
    assert!(
        functions.len() > 100,
        "the header parser found only {} functions in include/ipuflow.h",
        functions.len()
    );
    let used = named_in_wrapper(&read("include/ipuflow.hpp"));
    let excused: BTreeSet<&str> = NOT_WRAPPED.iter().map(|(n, _)| *n).collect();
    let missing: Vec<&String> = functions
        .iter()
        .filter(|f| !used.contains(*f) && !excused.contains(f.as_str()))
        .collect();
    let stale: Vec<&str> = NOT_WRAPPED
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| used.contains(*n) || !functions.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} C function(s) of include/ipuflow.h that include/ipuflow.hpp never calls (wrap each, or add it to \
         NOT_WRAPPED with the reason):\n  {}",
        missing.len(),
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
    );
    assert!(
        stale.is_empty(),
        "NOT_WRAPPED entries that the wrapper calls or the header no longer has (remove them): {stale:?}"
    );
}

#[test]
fn the_excused_aliases_are_aliases() {
    // An entry excused as an alias must be one in the header, so the list cannot hide a real function.
    let header = read("include/ipuflow.h");
    let items = parse(&header);
    for (name, why) in NOT_WRAPPED {
        let Some(target) = why.strip_prefix("alias of ") else {
            continue;
        };
        let item = items
            .iter()
            .find(|i| i.kind == Kind::Function && i.name == *name)
            .unwrap_or_else(|| panic!("{name} is not a function of include/ipuflow.h"));
        assert!(
            item.doc.starts_with(&format!("Alias of `{target}`")),
            "{name} is excused as an alias of {target}, but its comment does not say so:\n{}",
            item.doc
        );
    }
}
