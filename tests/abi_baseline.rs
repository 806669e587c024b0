//! The 1.0 ABI is additive only: every item of the header the ABI was settled from (commit cb6da04, kept as
//! tests/abi/ipuflow-baseline-0.1.h) must still be in include/ipuflow.h with the same declaration: each function
//! prototype, struct layout, typedef, enum value and `#define` value. New items may be added; nothing may change
//! or go. (The C test programs of that commit compile and run unchanged against the new header: tests/c.)

mod header_parse;

use header_parse::{index, parse, Kind};
use std::path::PathBuf;

fn read(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The differences that break the baseline, one line each.
fn breaks(baseline: &str, current: &str) -> Vec<String> {
    let old = parse(baseline);
    let new = parse(current);
    let new_index = index(&new);
    let mut out = Vec::new();
    for it in &old {
        match new_index.get(&(it.kind, it.name.clone())) {
            None => out.push(format!("{:?} {} was removed", it.kind, it.name)),
            Some(n) if n.decl != it.decl => out.push(format!(
                "{:?} {} changed:\n    was: {}\n    now: {}",
                it.kind, it.name, it.decl, n.decl
            )),
            Some(_) => {}
        }
    }
    out
}

#[test]
fn the_header_only_adds_to_the_baseline() {
    let baseline = read("tests/abi/ipuflow-baseline-0.1.h");
    let items = parse(&baseline);
    // The reader must see the whole baseline, or a silent miss would let a removal through.
    let count = |k| items.iter().filter(|i| i.kind == k).count();
    assert!(
        count(Kind::Function) >= 120,
        "baseline functions read: {}",
        count(Kind::Function)
    );
    assert!(
        count(Kind::Struct) >= 8,
        "baseline structs read: {}",
        count(Kind::Struct)
    );
    assert!(
        count(Kind::EnumValue) >= 30,
        "baseline status values read: {}",
        count(Kind::EnumValue)
    );
    assert!(
        count(Kind::Define) >= 60,
        "baseline defines read: {}",
        count(Kind::Define)
    );
    let b = breaks(&baseline, &read("include/ipuflow.h"));
    assert!(
        b.is_empty(),
        "include/ipuflow.h breaks the 0.1 ABI baseline ({} items):\n{}",
        b.len(),
        b.join("\n")
    );
}

#[test]
fn a_changed_or_removed_item_is_reported() {
    let baseline = read("tests/abi/ipuflow-baseline-0.1.h");
    // A prototype change, a define's value, a struct field and a status value: each is named.
    let edited = baseline
        .replacen(
            "#define IPUFLOW_DEVICE_NPU 1",
            "#define IPUFLOW_DEVICE_NPU 2",
            1,
        )
        .replacen(
            "IPUFLOW_STATUS_CANCELLED = 407",
            "IPUFLOW_STATUS_CANCELLED = 408",
            1,
        )
        .replacen(
            "  const char *op_type;\n} ipuflow_placed_node;",
            "  const char *op;\n} ipuflow_placed_node;",
            1,
        )
        .replacen(
            "ipuflow_status ipuflow_session_run(const struct ipuflow_session *session,",
            "ipuflow_status ipuflow_session_run(struct ipuflow_session *session,",
            1,
        );
    let b = breaks(&baseline, &edited).join("\n");
    for name in [
        "ipuflow_session_run",
        "IPUFLOW_DEVICE_NPU",
        "IPUFLOW_STATUS_CANCELLED",
        "ipuflow_placed_node",
    ] {
        assert!(b.contains(name), "{name} not reported in:\n{b}");
    }
    let removed = baseline.replacen(
        "void ipuflow_model_free(struct ipuflow_model *model);",
        "",
        1,
    );
    assert_ne!(removed, baseline);
    assert!(breaks(&baseline, &removed)
        .join("\n")
        .contains("ipuflow_model_free was removed"));
    assert!(breaks(&baseline, &baseline).is_empty());
}
