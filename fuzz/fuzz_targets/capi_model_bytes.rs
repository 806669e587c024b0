//! Arbitrary bytes through the C ABI's model-from-bytes path, as a C host calls it: `ipuflow_model_load_bytes`,
//! then every getter, the JSON summary and `ipuflow_model_serialize`, then the frees. A status other than OK or a
//! error with a message, a panic (the guard would report it as INTERNAL) or a bad pointer handed out is a bug.
#![no_main]

use std::ffi::{c_char, CStr};
use std::ptr;

use ipuflow::capi::library::{ipuflow_last_error, ipuflow_string_free};
use ipuflow::capi::model::*;
use ipuflow::capi::status::ipuflow_status;
use libfuzzer_sys::fuzz_target;

/// Reads a string the library handed out; a NULL or non-UTF-8 one is a broken promise of the header.
unsafe fn text(p: *const c_char, what: &str) -> String {
    assert!(!p.is_null(), "{what} is NULL");
    CStr::from_ptr(p)
        .to_str()
        .unwrap_or_else(|_| panic!("{what} is not UTF-8"))
        .to_owned()
}

unsafe fn value(v: &ipuflow_value_info) {
    text(v.name, "value name");
    if v.rank > 0 {
        let dims = std::slice::from_raw_parts(v.dims, v.rank as usize);
        let names = std::slice::from_raw_parts(v.dim_names, v.rank as usize);
        for (d, n) in dims.iter().zip(names) {
            assert!(*d >= -1, "dimension {d} below -1");
            if !n.is_null() {
                text(*n, "dimension name");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| unsafe {
    let mut model = ptr::null_mut();
    let st = ipuflow_model_load_bytes(data.as_ptr(), data.len(), ptr::null(), &mut model);
    if st != ipuflow_status::Ok {
        assert!(model.is_null(), "out written on failure");
        // Bad bytes are the caller's problem, reported with a message; INTERNAL would be a caught panic.
        let msg = text(ipuflow_last_error(), "last error");
        assert_ne!(st, ipuflow_status::Internal, "{msg}");
        assert!(!msg.is_empty(), "status {st:?} without a message");
        return;
    }
    let ok = |st: ipuflow_status, what: &str| assert_eq!(st, ipuflow_status::Ok, "{what}");
    let (mut ir, mut mv) = (0i64, 0i64);
    ok(
        ipuflow_model_get_versions(model, &mut ir, &mut mv),
        "versions",
    );
    let mut s = [ptr::null(); 4];
    ok(
        ipuflow_model_get_producer(model, &mut s[0], &mut s[1], &mut s[2], &mut s[3]),
        "producer",
    );
    for p in s {
        text(p, "producer string");
    }
    let mut n = [0usize; 6];
    let mut bytes = 0u64;
    ok(
        ipuflow_model_get_counts(
            model, &mut n[0], &mut n[1], &mut bytes, &mut n[2], &mut n[3], &mut n[4], &mut n[5],
        ),
        "counts",
    );
    let [_, _, inputs, outputs, opsets, op_types] = n;
    for i in 0..opsets {
        let (mut d, mut v) = (ptr::null(), 0i64);
        ok(ipuflow_model_get_opset(model, i, &mut d, &mut v), "opset");
        text(d, "opset domain");
    }
    for i in 0..op_types {
        let (mut t, mut c) = (ptr::null(), 0usize);
        ok(
            ipuflow_model_get_op_type(model, i, &mut t, &mut c),
            "op type",
        );
        text(t, "op type");
    }
    let mut info: ipuflow_value_info = std::mem::zeroed();
    for i in 0..inputs {
        ok(ipuflow_model_get_input(model, i, &mut info), "input");
        value(&info);
    }
    for i in 0..outputs {
        ok(ipuflow_model_get_output(model, i, &mut info), "output");
        value(&info);
    }
    // One past the end is OUT_OF_RANGE, not a read past the arrays.
    assert_eq!(
        ipuflow_model_get_input(model, inputs, &mut info),
        ipuflow_status::OutOfRange
    );
    let mut json = ptr::null_mut();
    ok(ipuflow_model_summary_json(model, &mut json), "summary json");
    text(json, "summary json");
    ipuflow_string_free(json);
    let (mut out, mut len) = (ptr::null_mut(), 0usize);
    // Serializing can refuse (e.g. over 2 GiB), but never crash; what it gives decodes again.
    if ipuflow_model_serialize(model, &mut out, &mut len) == ipuflow_status::Ok {
        let mut again = ptr::null_mut();
        ok(
            ipuflow_model_load_bytes(out, len, ptr::null(), &mut again),
            "reload of serialized bytes",
        );
        ipuflow_model_free(again);
        ipuflow_bytes_free(out, len);
    }
    ipuflow_model_free(model);
});
