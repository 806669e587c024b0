//! The runtime's C ABI, called from Rust exactly as a C host would (status codes, last error, out parameters
//! untouched on failure).

mod ort_support;

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};

use ipuflow::capi::env::*;
use ipuflow::capi::library::ipuflow_last_error;
use ipuflow::capi::runtime::*;
use ipuflow::capi::session::*;
use ipuflow::capi::session_options::*;
use ipuflow::capi::status::ipuflow_status as S;
use ipuflow::capi::tensor::*;
use ort_support::*;

fn last_error() -> String {
    unsafe { CStr::from_ptr(ipuflow_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn load() {
    let p = c(ort_library().to_str().unwrap());
    assert_eq!(
        unsafe { ipuflow_runtime_load(p.as_ptr()) },
        S::Ok,
        "{}",
        last_error()
    );
}

fn view(et: i32, shape: &[i64], data: *const c_void, bytes: usize) -> ipuflow_tensor_view {
    ipuflow_tensor_view {
        element_type: et,
        shape: shape.as_ptr(),
        rank: shape.len(),
        data: data as *mut c_void,
        byte_size: bytes,
    }
}

unsafe fn add_session() -> *mut ipuflow_session {
    let bytes = add_model();
    let mut s = null_mut();
    assert_eq!(
        ipuflow_session_create_from_memory(
            null(),
            bytes.as_ptr().cast(),
            bytes.len(),
            null(),
            &mut s
        ),
        S::Ok,
        "{}",
        last_error()
    );
    s
}

#[test]
fn runtime_load_and_query() {
    unsafe {
        // Errors that do not install anything.
        let bad = c("/nonexistent/libonnxruntime.so");
        let st = ipuflow_runtime_load(bad.as_ptr());
        if !ipuflow::runtime::Runtime::is_loaded() {
            assert_eq!(st, S::RuntimeNotFound);
            assert!(last_error().contains("/nonexistent/libonnxruntime.so"));
        }
        let empty = c("");
        assert_eq!(ipuflow_runtime_load(empty.as_ptr()), S::InvalidArgument);
        let bad_utf16: [u16; 2] = [0xD800, 0];
        assert_eq!(ipuflow_runtime_load_w(bad_utf16.as_ptr()), S::InvalidUtf8);

        load();
        assert_eq!(ipuflow_runtime_is_loaded(), 1);
        let mut v: *const c_char = null();
        assert_eq!(ipuflow_runtime_version(&mut v), S::Ok);
        assert_eq!(CStr::from_ptr(v).to_str().unwrap(), "1.32.0");
        let mut api = 0u32;
        assert_eq!(ipuflow_runtime_api_version(&mut api), S::Ok);
        assert_eq!(api, 24);
        let mut p: *const c_char = null();
        assert_eq!(ipuflow_runtime_path(&mut p), S::Ok);
        assert!(CStr::from_ptr(p).to_str().unwrap().contains("onnxruntime"));
        assert_eq!(ipuflow_runtime_version(null_mut()), S::NullArgument);
        assert!(last_error().contains("'out'"));
        // Same file again: fine. NULL: fine. Another file: refused.
        load();
        assert_eq!(ipuflow_runtime_load(null()), S::Ok);
        let other = c(&format!("{}.other", ort_library().display()));
        assert_eq!(ipuflow_runtime_load(other.as_ptr()), S::InvalidArgument);
        assert!(last_error().contains("already loaded"), "{}", last_error());
        // Wide path, same file.
        let w: Vec<u16> = ort_library()
            .to_str()
            .unwrap()
            .encode_utf16()
            .chain([0])
            .collect();
        assert_eq!(
            ipuflow_runtime_load_w(w.as_ptr()),
            S::Ok,
            "{}",
            last_error()
        );
    }
}

#[test]
fn session_metadata_run_and_errors() {
    load();
    unsafe {
        let s = add_session();
        let mut n = 0usize;
        assert_eq!(ipuflow_session_input_count(s, &mut n), S::Ok);
        assert_eq!(n, 2);
        assert_eq!(ipuflow_session_output_count(s, &mut n), S::Ok);
        assert_eq!(n, 1);
        let mut info: ipuflow_tensor_info = std::mem::zeroed();
        assert_eq!(ipuflow_session_input_info(s, 0, &mut info), S::Ok);
        assert_eq!(CStr::from_ptr(info.name).to_str().unwrap(), "x");
        assert_eq!(info.element_type, IPUFLOW_ELEMENT_TYPE_FLOAT);
        assert_eq!(std::slice::from_raw_parts(info.shape, info.rank), &[-1, 4]);
        assert_eq!(CStr::from_ptr(*info.dim_names).to_str().unwrap(), "N");
        assert_eq!(CStr::from_ptr(*info.dim_names.add(1)).to_str().unwrap(), "");
        let before = info;
        assert_eq!(ipuflow_session_input_info(s, 2, &mut info), S::OutOfRange);
        assert_eq!(info.name, before.name, "out untouched on failure");

        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let y = [10.0f32; 4];
        let xs = [2i64, 4];
        let ys = [1i64, 4];
        let in_names = [c("x"), c("y")];
        let in_ptrs = [in_names[0].as_ptr(), in_names[1].as_ptr()];
        let inputs = [
            view(1, &xs, x.as_ptr().cast(), 32),
            view(1, &ys, y.as_ptr().cast(), 16),
        ];
        let out_name = c("z");
        let out_ptrs = [out_name.as_ptr()];

        // Library-allocated output.
        let mut t: *mut ipuflow_tensor = null_mut();
        let st = ipuflow_session_run(
            s,
            null(),
            in_ptrs.as_ptr(),
            inputs.as_ptr(),
            2,
            out_ptrs.as_ptr(),
            null(),
            &mut t,
            1,
        );
        assert_eq!(st, S::Ok, "{}", last_error());
        let mut v: ipuflow_tensor_view = std::mem::zeroed();
        assert_eq!(ipuflow_tensor_get_view(t, &mut v), S::Ok);
        assert_eq!(v.element_type, 1);
        assert_eq!(std::slice::from_raw_parts(v.shape, v.rank), &[2, 4]);
        assert_eq!(
            std::slice::from_raw_parts(v.data as *const f32, 8),
            &[11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0]
        );
        let (mut d, mut b) = (null_mut(), 0usize);
        assert_eq!(ipuflow_tensor_data(t, &mut d, &mut b), S::Ok);
        assert_eq!((d, b), (v.data, 32));
        ipuflow_tensor_free(t);

        // Caller buffer output; out_tensors slot set to NULL.
        let mut z = [0.0f32; 8];
        let pre = [view(1, &xs, z.as_mut_ptr().cast(), 32)];
        let mut slot: *mut ipuflow_tensor = std::ptr::dangling_mut();
        let st = ipuflow_session_run(
            s,
            null(),
            in_ptrs.as_ptr(),
            inputs.as_ptr(),
            2,
            out_ptrs.as_ptr(),
            pre.as_ptr(),
            &mut slot,
            1,
        );
        assert_eq!(st, S::Ok, "{}", last_error());
        assert!(slot.is_null());
        assert_eq!(z[7], 18.0);
        // ... and without out_tensors at all.
        let st = ipuflow_session_run(
            s,
            null(),
            in_ptrs.as_ptr(),
            inputs.as_ptr(),
            2,
            out_ptrs.as_ptr(),
            pre.as_ptr(),
            null_mut(),
            1,
        );
        assert_eq!(st, S::Ok, "{}", last_error());

        // ---- error paths; out_tensors untouched ----
        let sentinel = 0x1234 as *mut ipuflow_tensor;
        let run = |names: &[*const c_char],
                   ins: &[ipuflow_tensor_view],
                   onames: &[*const c_char],
                   pre: *const ipuflow_tensor_view,
                   out: *mut *mut ipuflow_tensor| {
            ipuflow_session_run(
                s,
                null(),
                names.as_ptr(),
                ins.as_ptr(),
                ins.len(),
                onames.as_ptr(),
                pre,
                out,
                onames.len(),
            )
        };
        let mut t = sentinel;
        assert_eq!(
            ipuflow_session_run(
                null(),
                null(),
                in_ptrs.as_ptr(),
                inputs.as_ptr(),
                2,
                out_ptrs.as_ptr(),
                null(),
                &mut t,
                1
            ),
            S::NullArgument
        );
        assert!(last_error().contains("'session'"));
        assert_eq!(
            ipuflow_session_run(
                s,
                null(),
                null(),
                inputs.as_ptr(),
                2,
                out_ptrs.as_ptr(),
                null(),
                &mut t,
                1
            ),
            S::NullArgument
        );
        assert!(last_error().contains("'input_names'"));
        assert_eq!(
            ipuflow_session_run(
                s,
                null(),
                in_ptrs.as_ptr(),
                null(),
                2,
                out_ptrs.as_ptr(),
                null(),
                &mut t,
                1
            ),
            S::NullArgument
        );
        assert_eq!(
            ipuflow_session_run(
                s,
                null(),
                in_ptrs.as_ptr(),
                inputs.as_ptr(),
                2,
                null(),
                null(),
                &mut t,
                1
            ),
            S::NullArgument
        );
        assert_eq!(
            run(&in_ptrs, &inputs, &out_ptrs, null(), null_mut()),
            S::NullArgument
        );
        assert!(last_error().contains("'out_tensors'"));
        assert_eq!(
            ipuflow_session_run(
                s,
                null(),
                in_ptrs.as_ptr(),
                inputs.as_ptr(),
                2,
                out_ptrs.as_ptr(),
                null(),
                &mut t,
                0
            ),
            S::InvalidArgument
        );
        assert_eq!(
            run(&[in_ptrs[0], null()], &inputs, &out_ptrs, null(), &mut t),
            S::NullArgument
        );
        assert!(last_error().contains("input_names[1]"), "{}", last_error());
        let q = c("q");
        assert_eq!(
            run(
                &[in_ptrs[0], q.as_ptr()],
                &inputs,
                &out_ptrs,
                null(),
                &mut t
            ),
            S::TensorMismatch
        );
        assert!(
            last_error().contains("'q'") && last_error().contains("'x', 'y'"),
            "{}",
            last_error()
        );
        assert_eq!(
            run(&[q.as_ptr()], &inputs[..1], &out_ptrs, null(), &mut t),
            S::TensorMismatch
        );
        assert_eq!(
            run(&in_ptrs[..1], &inputs[..1], &out_ptrs, null(), &mut t),
            S::TensorMismatch
        );
        assert!(last_error().contains("missing"), "{}", last_error());
        assert_eq!(
            run(
                &[in_ptrs[0], in_ptrs[0]],
                &[inputs[0], inputs[0]],
                &out_ptrs,
                null(),
                &mut t
            ),
            S::TensorMismatch
        );
        let bad_type = [view(99, &xs, x.as_ptr().cast(), 32), inputs[1]];
        assert_eq!(
            run(&in_ptrs, &bad_type, &out_ptrs, null(), &mut t),
            S::InvalidEnum
        );
        assert!(
            last_error().contains("inputs[0].element_type"),
            "{}",
            last_error()
        );
        let wrong_type = [
            view(IPUFLOW_ELEMENT_TYPE_INT32, &xs, x.as_ptr().cast(), 32),
            inputs[1],
        ];
        assert_eq!(
            run(&in_ptrs, &wrong_type, &out_ptrs, null(), &mut t),
            S::TensorMismatch
        );
        assert!(
            last_error().contains("int32") && last_error().contains("float"),
            "{}",
            last_error()
        );
        let string_type = [
            view(IPUFLOW_ELEMENT_TYPE_STRING, &xs, x.as_ptr().cast(), 32),
            inputs[1],
        ];
        assert_eq!(
            run(&in_ptrs, &string_type, &out_ptrs, null(), &mut t),
            S::TensorMismatch
        );
        let rank1 = [8i64];
        let wrong_rank = [view(1, &rank1, x.as_ptr().cast(), 32), inputs[1]];
        assert_eq!(
            run(&in_ptrs, &wrong_rank, &out_ptrs, null(), &mut t),
            S::TensorMismatch
        );
        let dims = [4i64, 2];
        let wrong_dim = [view(1, &dims, x.as_ptr().cast(), 32), inputs[1]];
        assert_eq!(
            run(&in_ptrs, &wrong_dim, &out_ptrs, null(), &mut t),
            S::TensorMismatch
        );
        let wrong_size = [view(1, &xs, x.as_ptr().cast(), 28), inputs[1]];
        assert_eq!(
            run(&in_ptrs, &wrong_size, &out_ptrs, null(), &mut t),
            S::TensorMismatch
        );
        assert!(
            last_error().contains("28 bytes given") && last_error().contains("needs 32"),
            "{}",
            last_error()
        );
        let null_shape = [
            ipuflow_tensor_view {
                shape: null(),
                ..inputs[0]
            },
            inputs[1],
        ];
        assert_eq!(
            run(&in_ptrs, &null_shape, &out_ptrs, null(), &mut t),
            S::NullArgument
        );
        assert!(last_error().contains("inputs[0].shape"), "{}", last_error());
        let null_data = [
            ipuflow_tensor_view {
                data: null_mut(),
                ..inputs[0]
            },
            inputs[1],
        ];
        assert_eq!(
            run(&in_ptrs, &null_data, &out_ptrs, null(), &mut t),
            S::NullArgument
        );
        assert!(last_error().contains("inputs[0].data"), "{}", last_error());
        let w = c("w");
        assert_eq!(
            run(&in_ptrs, &inputs, &[w.as_ptr()], null(), &mut t),
            S::TensorMismatch
        );
        assert!(
            last_error().contains("'w'") && last_error().contains("'z'"),
            "{}",
            last_error()
        );
        let mut t2 = [sentinel, sentinel];
        assert_eq!(
            run(
                &in_ptrs,
                &inputs,
                &[out_ptrs[0], out_ptrs[0]],
                null(),
                t2.as_mut_ptr()
            ),
            S::InvalidArgument
        );
        let mut small = [0.0f32; 4];
        let bad_pre = [view(1, &xs, small.as_mut_ptr().cast(), 16)];
        assert_eq!(
            run(&in_ptrs, &inputs, &out_ptrs, bad_pre.as_ptr(), &mut t),
            S::TensorMismatch
        );
        assert!(last_error().contains("output 'z'"), "{}", last_error());
        let mut big = [0.0f32; 12];
        let s34 = [3i64, 4];
        let wrong_shape_pre = [view(1, &s34, big.as_mut_ptr().cast(), 48)];
        assert_eq!(
            run(
                &in_ptrs,
                &inputs,
                &out_ptrs,
                wrong_shape_pre.as_ptr(),
                &mut t
            ),
            S::Runtime
        );
        assert!(last_error().starts_with("run: ORT_"), "{}", last_error());
        assert_eq!(t, sentinel, "out_tensors untouched on failure");
        assert_eq!(t2, [sentinel, sentinel]);

        // Cancellation.
        let mut ro = null_mut();
        assert_eq!(ipuflow_run_options_create(&mut ro), S::Ok);
        assert_eq!(ipuflow_run_options_cancel(ro), S::Ok);
        let mut flag = 0;
        assert_eq!(ipuflow_run_options_is_cancelled(ro, &mut flag), S::Ok);
        assert_eq!(flag, 1);
        assert_eq!(
            ipuflow_session_run(
                s,
                ro,
                in_ptrs.as_ptr(),
                inputs.as_ptr(),
                2,
                out_ptrs.as_ptr(),
                null(),
                &mut t,
                1
            ),
            S::Cancelled
        );
        assert_eq!(ipuflow_run_options_reset(ro), S::Ok);
        let tag = c("tagged");
        assert_eq!(ipuflow_run_options_set_tag(ro, tag.as_ptr()), S::Ok);
        assert_eq!(ipuflow_run_options_set_log_level(ro, 7), S::InvalidEnum);
        assert_eq!(
            ipuflow_run_options_set_log_level(ro, IPUFLOW_LOG_LEVEL_ERROR),
            S::Ok
        );
        let (k, val) = (c("memory.enable_memory_arena_shrinkage"), c("cpu:0"));
        assert_eq!(
            ipuflow_run_options_add_config_entry(ro, k.as_ptr(), val.as_ptr()),
            S::Ok,
            "{}",
            last_error()
        );
        assert_eq!(
            ipuflow_session_run(
                s,
                ro,
                in_ptrs.as_ptr(),
                inputs.as_ptr(),
                2,
                out_ptrs.as_ptr(),
                null(),
                &mut t,
                1
            ),
            S::Ok
        );
        ipuflow_tensor_free(t);
        assert_eq!(ipuflow_run_options_cancel(null()), S::NullArgument);
        ipuflow_run_options_free(ro);
        ipuflow_run_options_free(null_mut());

        ipuflow_session_free(s);
        ipuflow_session_free(null_mut());
        ipuflow_tensor_free(null_mut());
    }
}

#[test]
fn session_creation_and_options_errors() {
    load();
    unsafe {
        let mut o = null_mut();
        assert_eq!(ipuflow_session_options_create(&mut o), S::Ok);
        assert_eq!(ipuflow_session_options_set_intra_op_threads(o, 1), S::Ok);
        assert_eq!(
            ipuflow_session_options_set_intra_op_threads(o, -1),
            S::InvalidArgument
        );
        assert_eq!(ipuflow_session_options_set_inter_op_threads(o, 1), S::Ok);
        assert_eq!(
            ipuflow_session_options_set_graph_optimization(o, IPUFLOW_GRAPH_OPTIMIZATION_EXTENDED),
            S::Ok
        );
        assert_eq!(
            ipuflow_session_options_set_graph_optimization(o, 99),
            S::InvalidEnum
        );
        assert_eq!(
            ipuflow_session_options_set_execution_mode(o, IPUFLOW_EXECUTION_MODE_PARALLEL),
            S::Ok
        );
        assert_eq!(
            ipuflow_session_options_set_execution_mode(o, 2),
            S::InvalidEnum
        );
        assert_eq!(ipuflow_session_options_set_deterministic(o, 1), S::Ok);
        assert_eq!(
            ipuflow_session_options_set_deterministic(o, 2),
            S::InvalidArgument
        );
        assert_eq!(ipuflow_session_options_set_memory_arena(o, 0), S::Ok);
        assert_eq!(ipuflow_session_options_set_profiling(o, null()), S::Ok);
        assert_eq!(
            ipuflow_session_options_set_optimized_model_path(o, null()),
            S::Ok
        );
        let id = c("capi");
        assert_eq!(
            ipuflow_session_options_set_logging(o, id.as_ptr(), IPUFLOW_LOG_LEVEL_WARNING),
            S::Ok
        );
        assert_eq!(
            ipuflow_session_options_set_logging(o, id.as_ptr(), 9),
            S::InvalidEnum
        );
        let (k, v, e) = (c("session.intra_op.allow_spinning"), c("0"), c(""));
        assert_eq!(
            ipuflow_session_options_add_config_entry(o, k.as_ptr(), v.as_ptr()),
            S::Ok
        );
        assert_eq!(
            ipuflow_session_options_add_config_entry(o, e.as_ptr(), v.as_ptr()),
            S::InvalidArgument
        );
        assert_eq!(
            ipuflow_session_options_add_config_entry(o, null(), v.as_ptr()),
            S::NullArgument
        );
        assert_eq!(
            ipuflow_session_options_set_intra_op_threads(null_mut(), 1),
            S::NullArgument
        );

        let bytes = add_model();
        let mut s = 0x99 as *mut ipuflow_session;
        let sentinel = s;
        assert_eq!(
            ipuflow_session_create_from_memory(null(), bytes.as_ptr().cast(), 0, o, &mut s),
            S::ModelDecode
        );
        assert_eq!(
            ipuflow_session_create_from_memory(null(), null(), 10, o, &mut s),
            S::NullArgument
        );
        assert_eq!(
            ipuflow_session_create_from_memory(null(), b"junk".as_ptr().cast(), 4, o, &mut s),
            S::Runtime
        );
        assert!(last_error().contains("ORT_"), "{}", last_error());
        let missing = c("/nonexistent/model.onnx");
        assert_eq!(
            ipuflow_session_create(null(), missing.as_ptr(), o, &mut s),
            S::FileNotFound
        );
        assert_eq!(
            ipuflow_session_create(null(), null(), o, &mut s),
            S::NullArgument
        );
        assert_eq!(
            ipuflow_session_create(null(), missing.as_ptr(), o, null_mut()),
            S::NullArgument
        );
        assert_eq!(s, sentinel, "out untouched on failure");
        assert_eq!(
            ipuflow_session_create_from_memory(
                null(),
                bytes.as_ptr().cast(),
                bytes.len(),
                o,
                &mut s
            ),
            S::Ok,
            "{}",
            last_error()
        );
        ipuflow_session_free(s);

        // From an ipuflow_model.
        let mut m = null_mut();
        assert_eq!(
            ipuflow::capi::model::ipuflow_model_load_bytes(
                bytes.as_ptr(),
                bytes.len(),
                null(),
                &mut m
            ),
            S::Ok
        );
        let mut s = null_mut();
        assert_eq!(
            ipuflow_session_create_from_model(null(), m, o, &mut s),
            S::Ok,
            "{}",
            last_error()
        );
        assert_eq!(
            ipuflow_session_create_from_model(null(), null(), o, &mut s),
            S::NullArgument
        );
        ipuflow::capi::model::ipuflow_model_free(m);
        ipuflow_session_free(s);

        // From a file, UTF-8 and UTF-16 paths.
        let dir = std::env::temp_dir().join(format!("ipuflow-capi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("add.onnx");
        std::fs::write(&path, &bytes).unwrap();
        let p = c(path.to_str().unwrap());
        let mut s = null_mut();
        assert_eq!(
            ipuflow_session_create(null(), p.as_ptr(), null(), &mut s),
            S::Ok,
            "{}",
            last_error()
        );
        ipuflow_session_free(s);
        let w: Vec<u16> = path.to_str().unwrap().encode_utf16().chain([0]).collect();
        assert_eq!(
            ipuflow_session_create_w(null(), w.as_ptr(), null(), &mut s),
            S::Ok,
            "{}",
            last_error()
        );
        ipuflow_session_free(s);
        std::fs::remove_dir_all(&dir).unwrap();

        ipuflow_session_options_free(o);
        ipuflow_session_options_free(null_mut());

        // Element sizes.
        let mut n = 0usize;
        assert_eq!(
            ipuflow_element_type_size(IPUFLOW_ELEMENT_TYPE_BFLOAT16, &mut n),
            S::Ok
        );
        assert_eq!(n, 2);
        assert_eq!(
            ipuflow_element_type_size(IPUFLOW_ELEMENT_TYPE_STRING, &mut n),
            S::Ok
        );
        assert_eq!(n, std::mem::size_of::<*const c_char>());
        for t in [
            IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FN,
            IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FNUZ,
            IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2,
            IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2FNUZ,
            IPUFLOW_ELEMENT_TYPE_FLOAT8E8M0,
        ] {
            n = 0;
            assert_eq!(ipuflow_element_type_size(t, &mut n), S::Ok);
            assert_eq!(n, 1);
        }
        n = 77;
        for (t, rule) in [
            (IPUFLOW_ELEMENT_TYPE_INT4, "(n + 1) / 2"),
            (IPUFLOW_ELEMENT_TYPE_UINT4, "(n + 1) / 2"),
            (IPUFLOW_ELEMENT_TYPE_INT2, "(n + 3) / 4"),
            (IPUFLOW_ELEMENT_TYPE_UINT2, "(n + 3) / 4"),
        ] {
            assert_eq!(ipuflow_element_type_size(t, &mut n), S::Unsupported);
            assert!(last_error().contains(rule), "{}", last_error());
        }
        assert_eq!(n, 77);
        assert_eq!(ipuflow_element_type_size(0, &mut n), S::InvalidEnum);
        assert_eq!(
            ipuflow_element_type_size(23, &mut n),
            S::InvalidEnum,
            "float4e2m1 has no number"
        );
    }
}

#[test]
fn env_argument_errors() {
    unsafe {
        let mut e = null_mut();
        assert_eq!(
            ipuflow_env_create(
                IPUFLOW_LOG_LEVEL_WARNING,
                null(),
                None,
                null_mut(),
                null_mut()
            ),
            S::NullArgument
        );
        assert_eq!(
            ipuflow_env_create(5, null(), None, null_mut(), &mut e),
            S::InvalidEnum
        );
        assert_eq!(
            ipuflow_env_create_with_global_thread_pools(
                2,
                null(),
                None,
                null_mut(),
                -1,
                0,
                -1,
                &mut e
            ),
            S::InvalidArgument
        );
        assert_eq!(
            ipuflow_env_create_with_global_thread_pools(
                2,
                null(),
                None,
                null_mut(),
                0,
                0,
                3,
                &mut e
            ),
            S::InvalidArgument
        );
        assert!(e.is_null());
        ipuflow_env_free(null_mut());
    }
}

unsafe fn identity_session(codes: &[i32]) -> *mut ipuflow_session {
    session_from(&identity_model(codes))
}

/// As `identity_model(codes)` at opset 25, but the types ONNX Runtime 1.32's CPU Identity lacks (int4/uint4,
/// int2/uint2, float8e8m0) go through Cast to float and back: every `in_<code>` comes back as `out_<code>`.
unsafe fn round_trip_session(codes: &[i32]) -> *mut ipuflow_session {
    use ipuflow::onnx::proto::{AttributeProto, ModelProto};
    use prost::Message;
    let mut m = ModelProto::decode(&identity_model(codes)[..]).unwrap();
    m.ir_version = Some(11);
    m.opset_import.iter_mut().for_each(|o| o.version = Some(25));
    let g = m.graph.as_mut().unwrap();
    let cast = |input: &str, output: &str, to: i32| {
        let mut n = node("Cast", &[input], &[output]);
        n.attribute.push(AttributeProto {
            name: Some("to".into()),
            r#type: Some(2),
            i: Some(to as i64),
            ..Default::default()
        });
        n
    };
    for &code in codes {
        if !(IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FN..=IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2FNUZ)
            .contains(&code)
        {
            let (i, mid, o) = (
                format!("in_{code}"),
                format!("mid_{code}"),
                format!("out_{code}"),
            );
            let k = g.node.iter().position(|n| n.output[0] == o).unwrap();
            g.node[k] = cast(&i, &mid, IPUFLOW_ELEMENT_TYPE_FLOAT);
            g.node.push(cast(&mid, &o, code));
        }
    }
    session_from(&m.encode_to_vec())
}

unsafe fn session_from(bytes: &[u8]) -> *mut ipuflow_session {
    let mut s = null_mut();
    assert_eq!(
        ipuflow_session_create_from_memory(
            null(),
            bytes.as_ptr().cast(),
            bytes.len(),
            null(),
            &mut s
        ),
        S::Ok,
        "{}",
        last_error()
    );
    s
}

/// The strings of a STRING tensor through its view and `ipuflow_tensor_string_lengths`.
unsafe fn strings_of(t: *const ipuflow_tensor) -> Vec<Vec<u8>> {
    let mut v = std::mem::zeroed::<ipuflow_tensor_view>();
    assert_eq!(ipuflow_tensor_get_view(t, &mut v), S::Ok);
    assert_eq!(v.element_type, IPUFLOW_ELEMENT_TYPE_STRING);
    let (mut lens, mut n) = (null(), 0usize);
    assert_eq!(
        ipuflow_tensor_string_lengths(t, &mut lens, &mut n),
        S::Ok,
        "{}",
        last_error()
    );
    assert_eq!(v.byte_size, n * std::mem::size_of::<*const c_char>());
    let (mut data, mut size) = (null_mut(), 0usize);
    assert_eq!(ipuflow_tensor_data(t, &mut data, &mut size), S::Ok);
    assert_eq!(
        (data, size),
        (v.data, v.byte_size),
        "ipuflow_tensor_data agrees with the view"
    );
    if n == 0 {
        assert!(v.data.is_null() && lens.is_null());
        return vec![];
    }
    let ptrs = std::slice::from_raw_parts(v.data as *const *const c_char, n);
    let lens = std::slice::from_raw_parts(lens, n);
    ptrs.iter()
        .zip(lens)
        .map(|(&p, &len)| {
            let b = std::slice::from_raw_parts(p as *const u8, len + 1);
            assert_eq!(b[len], 0, "NUL-terminated");
            b[..len].to_vec()
        })
        .collect()
}

#[test]
fn string_tensors_run_through_the_c_abi() {
    load();
    unsafe {
        let s = identity_session(&[IPUFLOW_ELEMENT_TYPE_STRING]);
        let mut info = std::mem::zeroed::<ipuflow_tensor_info>();
        assert_eq!(ipuflow_session_input_info(s, 0, &mut info), S::Ok);
        assert_eq!(info.element_type, IPUFLOW_ELEMENT_TYPE_STRING);
        let (in_n, out_n) = (c("in_8"), c("out_8"));
        let (in_names, out_names) = ([in_n.as_ptr()], [out_n.as_ptr()]);
        let texts = [
            "a",
            "",
            "h\u{e9}llo w\u{f6}rld",
            "\u{1F600}",
            "tab\there",
            "z",
        ];
        let owned: Vec<CString> = texts.iter().map(|t| c(t)).collect();
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let shape = [2i64, 3];
        let ptr_bytes = std::mem::size_of_val(ptrs.as_slice());
        let input = [view(
            IPUFLOW_ELEMENT_TYPE_STRING,
            &shape,
            ptrs.as_ptr().cast(),
            ptr_bytes,
        )];
        let run = |ins: &[ipuflow_tensor_view],
                   pre: *const ipuflow_tensor_view,
                   out: &mut [*mut ipuflow_tensor]| {
            ipuflow_session_run(
                s,
                null(),
                in_names.as_ptr(),
                ins.as_ptr(),
                1,
                out_names.as_ptr(),
                pre,
                out.as_mut_ptr(),
                1,
            )
        };

        // Allocated output: the pointer-array view, the exact lengths.
        let mut out = [null_mut()];
        assert_eq!(run(&input, null(), &mut out), S::Ok, "{}", last_error());
        let got = strings_of(out[0]);
        assert_eq!(
            got,
            texts
                .iter()
                .map(|t| t.as_bytes().to_vec())
                .collect::<Vec<_>>()
        );
        let mut v = std::mem::zeroed::<ipuflow_tensor_view>();
        assert_eq!(ipuflow_tensor_get_view(out[0], &mut v), S::Ok);
        assert_eq!(std::slice::from_raw_parts(v.shape, v.rank), &shape);
        // The output's view is a valid input of another run.
        let mut again = [null_mut()];
        assert_eq!(run(&[v], null(), &mut again), S::Ok, "{}", last_error());
        assert_eq!(strings_of(again[0]), got);
        ipuflow_tensor_free(again[0]);

        // An empty string tensor: NULL data, no lengths.
        let empty_shape = [2i64, 0];
        let mut e = [null_mut()];
        assert_eq!(
            run(
                &[view(IPUFLOW_ELEMENT_TYPE_STRING, &empty_shape, null(), 0)],
                null(),
                &mut e
            ),
            S::Ok,
            "{}",
            last_error()
        );
        assert!(strings_of(e[0]).is_empty());
        ipuflow_tensor_free(e[0]);

        // Errors, all before ONNX Runtime, out slots untouched.
        let mut slot = [0x5e5e as *mut ipuflow_tensor];
        ptrs[4] = null();
        assert_eq!(run(&input, null(), &mut slot), S::NullArgument);
        assert!(
            last_error().contains("inputs[0].data[4]"),
            "{}",
            last_error()
        );
        ptrs[4] = owned[4].as_ptr();
        let bad_utf8 = [b'a', 0xff, 0];
        ptrs[1] = bad_utf8.as_ptr().cast();
        assert_eq!(run(&input, null(), &mut slot), S::InvalidUtf8);
        assert!(
            last_error().contains("inputs[0].data[1]"),
            "{}",
            last_error()
        );
        ptrs[1] = owned[1].as_ptr();
        let odd = [view(
            IPUFLOW_ELEMENT_TYPE_STRING,
            &shape,
            ptrs.as_ptr().cast(),
            ptr_bytes - 1,
        )];
        assert_eq!(run(&odd, null(), &mut slot), S::TensorMismatch);
        assert!(last_error().contains("sizeof(char*)"), "{}", last_error());
        let short = [view(
            IPUFLOW_ELEMENT_TYPE_STRING,
            &shape,
            ptrs.as_ptr().cast(),
            ptr_bytes - std::mem::size_of::<*const c_char>(),
        )];
        assert_eq!(run(&short, null(), &mut slot), S::TensorMismatch);
        assert!(
            last_error().contains("5 strings given") && last_error().contains("needs 6"),
            "{}",
            last_error()
        );
        let no_data = [view(IPUFLOW_ELEMENT_TYPE_STRING, &shape, null(), ptr_bytes)];
        assert_eq!(run(&no_data, null(), &mut slot), S::NullArgument);
        // A string output cannot go into a caller buffer.
        let mut buf = vec![null::<c_char>(); 6];
        let pre = [view(
            IPUFLOW_ELEMENT_TYPE_STRING,
            &shape,
            buf.as_mut_ptr().cast(),
            ptr_bytes,
        )];
        assert_eq!(run(&input, pre.as_ptr(), &mut slot), S::InvalidArgument);
        assert!(
            last_error().contains("string output") && last_error().contains("out_8"),
            "{}",
            last_error()
        );
        assert!(buf.iter().all(|p| p.is_null()));
        // ... but a NULL-data entry asks for an allocated one.
        let pre_alloc = [view(IPUFLOW_ELEMENT_TYPE_STRING, &shape, null(), 0)];
        let mut a = [null_mut()];
        assert_eq!(
            run(&input, pre_alloc.as_ptr(), &mut a),
            S::Ok,
            "{}",
            last_error()
        );
        assert_eq!(strings_of(a[0]), got);
        ipuflow_tensor_free(a[0]);
        assert_eq!(slot[0], 0x5e5e as *mut ipuflow_tensor);

        // A string with an embedded NUL (from a constant: a C input cannot carry one): its char* reads "a", its
        // length says 3 and the bytes are all there.
        {
            use ipuflow::onnx::proto::{AttributeProto, GraphProto, TensorProto};
            let mut k = node("Constant", &[], &["k"]);
            let value = TensorProto {
                data_type: Some(8),
                dims: vec![2],
                string_data: vec![b"a\0b".to_vec(), b"c".to_vec()],
                ..Default::default()
            };
            k.attribute.push(AttributeProto {
                name: Some("value".into()),
                r#type: Some(4),
                t: Some(Box::new(value)),
                ..Default::default()
            });
            let g = GraphProto {
                name: Some("k".into()),
                node: vec![k],
                output: vec![vi("k", 8, &[D::Fixed(2)])],
                ..Default::default()
            };
            let ks = session_from(&model(g));
            let kn = c("k");
            let mut kt = [null_mut()];
            assert_eq!(
                ipuflow_session_run(
                    ks,
                    null(),
                    null(),
                    null(),
                    0,
                    &kn.as_ptr(),
                    null(),
                    kt.as_mut_ptr(),
                    1
                ),
                S::Ok,
                "{}",
                last_error()
            );
            assert_eq!(strings_of(kt[0]), vec![b"a\0b".to_vec(), b"c".to_vec()]);
            let mut v = std::mem::zeroed::<ipuflow_tensor_view>();
            assert_eq!(ipuflow_tensor_get_view(kt[0], &mut v), S::Ok);
            assert_eq!(
                CStr::from_ptr(*(v.data as *const *const c_char)).to_bytes(),
                b"a"
            );
            ipuflow_tensor_free(kt[0]);
            ipuflow_session_free(ks);
        }

        // ipuflow_tensor_string_lengths: arguments, and a non-string tensor.
        let (mut lens, mut n) = (null(), 0usize);
        assert_eq!(
            ipuflow_tensor_string_lengths(null(), &mut lens, &mut n),
            S::NullArgument
        );
        assert_eq!(
            ipuflow_tensor_string_lengths(out[0], null_mut(), &mut n),
            S::NullArgument
        );
        assert_eq!(
            ipuflow_tensor_string_lengths(out[0], &mut lens, null_mut()),
            S::NullArgument
        );
        ipuflow_tensor_free(out[0]);
        ipuflow_session_free(s);

        let f = identity_session(&[IPUFLOW_ELEMENT_TYPE_FLOAT]);
        let (fi, fo) = (c("in_1"), c("out_1"));
        let x = [1.0f32; 6];
        let mut t = [null_mut()];
        let fin = [view(
            IPUFLOW_ELEMENT_TYPE_FLOAT,
            &shape,
            x.as_ptr().cast(),
            24,
        )];
        assert_eq!(
            ipuflow_session_run(
                f,
                null(),
                &fi.as_ptr(),
                fin.as_ptr(),
                1,
                &fo.as_ptr(),
                null(),
                t.as_mut_ptr(),
                1
            ),
            S::Ok
        );
        assert_eq!(
            ipuflow_tensor_string_lengths(t[0], &mut lens, &mut n),
            S::TensorMismatch
        );
        assert!(last_error().contains("float"), "{}", last_error());
        ipuflow_tensor_free(t[0]);
        // A STRING view for a float input is a type mismatch; its "pointers" are never read.
        let garbage = [view(
            IPUFLOW_ELEMENT_TYPE_STRING,
            &shape,
            x.as_ptr().cast(),
            24,
        )];
        assert_eq!(
            ipuflow_session_run(
                f,
                null(),
                &fi.as_ptr(),
                garbage.as_ptr(),
                1,
                &fo.as_ptr(),
                null(),
                t.as_mut_ptr(),
                1
            ),
            S::TensorMismatch
        );
        assert!(
            last_error().contains("string") && last_error().contains("float"),
            "{}",
            last_error()
        );
        ipuflow_session_free(f);
    }
}

#[test]
fn float8_and_packed_int_tensors_run_through_the_c_abi() {
    load();
    unsafe {
        let codes = [
            IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FN,
            IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FNUZ,
            IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2,
            IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2FNUZ,
            IPUFLOW_ELEMENT_TYPE_UINT4,
            IPUFLOW_ELEMENT_TYPE_INT4,
            IPUFLOW_ELEMENT_TYPE_FLOAT8E8M0,
            IPUFLOW_ELEMENT_TYPE_UINT2,
            IPUFLOW_ELEMENT_TYPE_INT2,
        ];
        let s = round_trip_session(&codes);
        // The metadata gives ONNX's numbers, also for the three ONNX Runtime numbers differently (24..26).
        for (i, &code) in codes.iter().enumerate() {
            let mut info = std::mem::zeroed::<ipuflow_tensor_info>();
            assert_eq!(ipuflow_session_input_info(s, i, &mut info), S::Ok);
            assert_eq!(info.element_type, code);
            assert_eq!(ipuflow_session_output_info(s, i, &mut info), S::Ok);
            assert_eq!(info.element_type, code);
        }
        // [2, 5] each: 10 bytes of float8, (10 + 1) / 2 = 5 of int4, (10 + 3) / 4 = 3 of int2.
        let shape = [2i64, 5];
        let bytes_for = |code: i32| match code {
            IPUFLOW_ELEMENT_TYPE_UINT4 | IPUFLOW_ELEMENT_TYPE_INT4 => 5,
            IPUFLOW_ELEMENT_TYPE_UINT2 | IPUFLOW_ELEMENT_TYPE_INT2 => 3,
            _ => 10,
        };
        let datas: Vec<Vec<u8>> = codes
            .iter()
            .map(|&c| {
                let mut d: Vec<u8> = (0..bytes_for(c))
                    .map(|i| (i as u8).wrapping_mul(37).wrapping_add(c as u8))
                    .collect();
                if bytes_for(c) == 3 {
                    d[2] &= 0x0f; // the last 2 of the 12 2-bit slots are padding
                }
                d
            })
            .collect();
        let in_names: Vec<CString> = codes.iter().map(|c| self::c(&format!("in_{c}"))).collect();
        let out_names: Vec<CString> = codes.iter().map(|c| self::c(&format!("out_{c}"))).collect();
        let in_ptrs: Vec<*const c_char> = in_names.iter().map(|c| c.as_ptr()).collect();
        let out_ptrs: Vec<*const c_char> = out_names.iter().map(|c| c.as_ptr()).collect();
        let views: Vec<ipuflow_tensor_view> = codes
            .iter()
            .zip(&datas)
            .map(|(&c, d)| view(c, &shape, d.as_ptr().cast(), d.len()))
            .collect();
        let n = codes.len();
        let mut outs = vec![null_mut(); n];
        assert_eq!(
            ipuflow_session_run(
                s,
                null(),
                in_ptrs.as_ptr(),
                views.as_ptr(),
                n,
                out_ptrs.as_ptr(),
                null(),
                outs.as_mut_ptr(),
                n
            ),
            S::Ok,
            "{}",
            last_error()
        );
        for (k, &t) in outs.iter().enumerate() {
            let mut v = std::mem::zeroed::<ipuflow_tensor_view>();
            assert_eq!(ipuflow_tensor_get_view(t, &mut v), S::Ok);
            assert_eq!(v.element_type, codes[k]);
            let got = std::slice::from_raw_parts(v.data as *const u8, v.byte_size);
            let last = got.len() - 1;
            // Compare the padding bits of int2's last byte only in its element bits.
            let mask = if bytes_for(codes[k]) == 3 { 0x0f } else { 0xff };
            assert_eq!(
                (&got[..last], got[last] & mask),
                (&datas[k][..last], datas[k][last]),
                "type {}",
                codes[k]
            );
            ipuflow_tensor_free(t);
        }
        // Caller buffers of the packed sizes.
        let mut bufs: Vec<Vec<u8>> = datas.iter().map(|d| vec![0u8; d.len()]).collect();
        let pre: Vec<ipuflow_tensor_view> = codes
            .iter()
            .zip(bufs.iter_mut())
            .map(|(&c, b)| view(c, &shape, b.as_mut_ptr().cast(), b.len()))
            .collect();
        assert_eq!(
            ipuflow_session_run(
                s,
                null(),
                in_ptrs.as_ptr(),
                views.as_ptr(),
                n,
                out_ptrs.as_ptr(),
                pre.as_ptr(),
                null_mut(),
                n
            ),
            S::Ok,
            "{}",
            last_error()
        );
        for k in 0..n {
            let mask = if bytes_for(codes[k]) == 3 { 0x0f } else { 0xff };
            let last = bufs[k].len() - 1;
            assert_eq!(bufs[k][last] & mask, datas[k][last]);
            assert_eq!(bufs[k][..last], datas[k][..last], "type {}", codes[k]);
        }
        // A byte size that ignores the packing is a mismatch naming the packed size.
        let mut wrong = views.clone();
        wrong[5].byte_size = 10;
        let mut slots = vec![0x5e5e as *mut ipuflow_tensor; n];
        assert_eq!(
            ipuflow_session_run(
                s,
                null(),
                in_ptrs.as_ptr(),
                wrong.as_ptr(),
                n,
                out_ptrs.as_ptr(),
                null(),
                slots.as_mut_ptr(),
                n
            ),
            S::TensorMismatch
        );
        assert!(
            last_error().contains("needs 5 bytes (packed)") && last_error().contains("int4"),
            "{}",
            last_error()
        );
        assert!(slots.iter().all(|&p| p == 0x5e5e as *mut ipuflow_tensor));
        ipuflow_session_free(s);
    }
}
