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
    unsafe { CStr::from_ptr(ipuflow_last_error()) }.to_string_lossy().into_owned()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn load() {
    let p = c(ort_library().to_str().unwrap());
    assert_eq!(unsafe { ipuflow_runtime_load(p.as_ptr()) }, S::Ok, "{}", last_error());
}

fn view(et: i32, shape: &[i64], data: *const c_void, bytes: usize) -> ipuflow_tensor_view {
    ipuflow_tensor_view { element_type: et, shape: shape.as_ptr(), rank: shape.len(), data: data as *mut c_void, byte_size: bytes }
}

unsafe fn add_session() -> *mut ipuflow_session {
    let bytes = add_model();
    let mut s = null_mut();
    assert_eq!(ipuflow_session_create_from_memory(null(), bytes.as_ptr().cast(), bytes.len(), null(), &mut s), S::Ok, "{}", last_error());
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
        let w: Vec<u16> = ort_library().to_str().unwrap().encode_utf16().chain([0]).collect();
        assert_eq!(ipuflow_runtime_load_w(w.as_ptr()), S::Ok, "{}", last_error());
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
        let inputs = [view(1, &xs, x.as_ptr().cast(), 32), view(1, &ys, y.as_ptr().cast(), 16)];
        let out_name = c("z");
        let out_ptrs = [out_name.as_ptr()];

        // Library-allocated output.
        let mut t: *mut ipuflow_tensor = null_mut();
        let st = ipuflow_session_run(s, null(), in_ptrs.as_ptr(), inputs.as_ptr(), 2, out_ptrs.as_ptr(), null(), &mut t, 1);
        assert_eq!(st, S::Ok, "{}", last_error());
        let mut v: ipuflow_tensor_view = std::mem::zeroed();
        assert_eq!(ipuflow_tensor_get_view(t, &mut v), S::Ok);
        assert_eq!(v.element_type, 1);
        assert_eq!(std::slice::from_raw_parts(v.shape, v.rank), &[2, 4]);
        assert_eq!(std::slice::from_raw_parts(v.data as *const f32, 8), &[11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0]);
        let (mut d, mut b) = (null_mut(), 0usize);
        assert_eq!(ipuflow_tensor_data(t, &mut d, &mut b), S::Ok);
        assert_eq!((d, b), (v.data, 32));
        ipuflow_tensor_free(t);

        // Caller buffer output; out_tensors slot set to NULL.
        let mut z = [0.0f32; 8];
        let pre = [view(1, &xs, z.as_mut_ptr().cast(), 32)];
        let mut slot: *mut ipuflow_tensor = 1 as *mut _;
        let st = ipuflow_session_run(s, null(), in_ptrs.as_ptr(), inputs.as_ptr(), 2, out_ptrs.as_ptr(), pre.as_ptr(), &mut slot, 1);
        assert_eq!(st, S::Ok, "{}", last_error());
        assert!(slot.is_null());
        assert_eq!(z[7], 18.0);
        // ... and without out_tensors at all.
        let st = ipuflow_session_run(s, null(), in_ptrs.as_ptr(), inputs.as_ptr(), 2, out_ptrs.as_ptr(), pre.as_ptr(), null_mut(), 1);
        assert_eq!(st, S::Ok, "{}", last_error());

        // ---- error paths; out_tensors untouched ----
        let sentinel = 0x1234 as *mut ipuflow_tensor;
        let run = |names: &[*const c_char], ins: &[ipuflow_tensor_view], onames: &[*const c_char], pre: *const ipuflow_tensor_view, out: *mut *mut ipuflow_tensor| {
            ipuflow_session_run(s, null(), names.as_ptr(), ins.as_ptr(), ins.len(), onames.as_ptr(), pre, out, onames.len())
        };
        let mut t = sentinel;
        assert_eq!(ipuflow_session_run(null(), null(), in_ptrs.as_ptr(), inputs.as_ptr(), 2, out_ptrs.as_ptr(), null(), &mut t, 1), S::NullArgument);
        assert!(last_error().contains("'session'"));
        assert_eq!(ipuflow_session_run(s, null(), null(), inputs.as_ptr(), 2, out_ptrs.as_ptr(), null(), &mut t, 1), S::NullArgument);
        assert!(last_error().contains("'input_names'"));
        assert_eq!(ipuflow_session_run(s, null(), in_ptrs.as_ptr(), null(), 2, out_ptrs.as_ptr(), null(), &mut t, 1), S::NullArgument);
        assert_eq!(ipuflow_session_run(s, null(), in_ptrs.as_ptr(), inputs.as_ptr(), 2, null(), null(), &mut t, 1), S::NullArgument);
        assert_eq!(run(&in_ptrs, &inputs, &out_ptrs, null(), null_mut()), S::NullArgument);
        assert!(last_error().contains("'out_tensors'"));
        assert_eq!(ipuflow_session_run(s, null(), in_ptrs.as_ptr(), inputs.as_ptr(), 2, out_ptrs.as_ptr(), null(), &mut t, 0), S::InvalidArgument);
        assert_eq!(run(&[in_ptrs[0], null()], &inputs, &out_ptrs, null(), &mut t), S::NullArgument);
        assert!(last_error().contains("input_names[1]"), "{}", last_error());
        let q = c("q");
        assert_eq!(run(&[in_ptrs[0], q.as_ptr()], &inputs, &out_ptrs, null(), &mut t), S::TensorMismatch);
        assert!(last_error().contains("'q'") && last_error().contains("'x', 'y'"), "{}", last_error());
        assert_eq!(run(&[q.as_ptr()], &inputs[..1], &out_ptrs, null(), &mut t), S::TensorMismatch);
        assert_eq!(run(&in_ptrs[..1], &inputs[..1], &out_ptrs, null(), &mut t), S::TensorMismatch);
        assert!(last_error().contains("missing"), "{}", last_error());
        assert_eq!(run(&[in_ptrs[0], in_ptrs[0]], &[inputs[0], inputs[0]], &out_ptrs, null(), &mut t), S::TensorMismatch);
        let bad_type = [view(99, &xs, x.as_ptr().cast(), 32), inputs[1]];
        assert_eq!(run(&in_ptrs, &bad_type, &out_ptrs, null(), &mut t), S::InvalidEnum);
        assert!(last_error().contains("inputs[0].element_type"), "{}", last_error());
        let wrong_type = [view(IPUFLOW_ELEMENT_TYPE_INT32, &xs, x.as_ptr().cast(), 32), inputs[1]];
        assert_eq!(run(&in_ptrs, &wrong_type, &out_ptrs, null(), &mut t), S::TensorMismatch);
        assert!(last_error().contains("int32") && last_error().contains("float"), "{}", last_error());
        let string_type = [view(IPUFLOW_ELEMENT_TYPE_STRING, &xs, x.as_ptr().cast(), 32), inputs[1]];
        assert_eq!(run(&in_ptrs, &string_type, &out_ptrs, null(), &mut t), S::TensorMismatch);
        let rank1 = [8i64];
        let wrong_rank = [view(1, &rank1, x.as_ptr().cast(), 32), inputs[1]];
        assert_eq!(run(&in_ptrs, &wrong_rank, &out_ptrs, null(), &mut t), S::TensorMismatch);
        let dims = [4i64, 2];
        let wrong_dim = [view(1, &dims, x.as_ptr().cast(), 32), inputs[1]];
        assert_eq!(run(&in_ptrs, &wrong_dim, &out_ptrs, null(), &mut t), S::TensorMismatch);
        let wrong_size = [view(1, &xs, x.as_ptr().cast(), 28), inputs[1]];
        assert_eq!(run(&in_ptrs, &wrong_size, &out_ptrs, null(), &mut t), S::TensorMismatch);
        assert!(last_error().contains("28 bytes given") && last_error().contains("needs 32"), "{}", last_error());
        let null_shape = [ipuflow_tensor_view { shape: null(), ..inputs[0] }, inputs[1]];
        assert_eq!(run(&in_ptrs, &null_shape, &out_ptrs, null(), &mut t), S::NullArgument);
        assert!(last_error().contains("inputs[0].shape"), "{}", last_error());
        let null_data = [ipuflow_tensor_view { data: null_mut(), ..inputs[0] }, inputs[1]];
        assert_eq!(run(&in_ptrs, &null_data, &out_ptrs, null(), &mut t), S::NullArgument);
        assert!(last_error().contains("inputs[0].data"), "{}", last_error());
        let w = c("w");
        assert_eq!(run(&in_ptrs, &inputs, &[w.as_ptr()], null(), &mut t), S::TensorMismatch);
        assert!(last_error().contains("'w'") && last_error().contains("'z'"), "{}", last_error());
        let mut t2 = [sentinel, sentinel];
        assert_eq!(run(&in_ptrs, &inputs, &[out_ptrs[0], out_ptrs[0]], null(), t2.as_mut_ptr()), S::InvalidArgument);
        let mut small = [0.0f32; 4];
        let bad_pre = [view(1, &xs, small.as_mut_ptr().cast(), 16)];
        assert_eq!(run(&in_ptrs, &inputs, &out_ptrs, bad_pre.as_ptr(), &mut t), S::TensorMismatch);
        assert!(last_error().contains("output 'z'"), "{}", last_error());
        let mut big = [0.0f32; 12];
        let s34 = [3i64, 4];
        let wrong_shape_pre = [view(1, &s34, big.as_mut_ptr().cast(), 48)];
        assert_eq!(run(&in_ptrs, &inputs, &out_ptrs, wrong_shape_pre.as_ptr(), &mut t), S::Runtime);
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
        assert_eq!(ipuflow_session_run(s, ro, in_ptrs.as_ptr(), inputs.as_ptr(), 2, out_ptrs.as_ptr(), null(), &mut t, 1), S::Cancelled);
        assert_eq!(ipuflow_run_options_reset(ro), S::Ok);
        let tag = c("tagged");
        assert_eq!(ipuflow_run_options_set_tag(ro, tag.as_ptr()), S::Ok);
        assert_eq!(ipuflow_run_options_set_log_level(ro, 7), S::InvalidEnum);
        assert_eq!(ipuflow_run_options_set_log_level(ro, IPUFLOW_LOG_LEVEL_ERROR), S::Ok);
        let (k, val) = (c("memory.enable_memory_arena_shrinkage"), c("cpu:0"));
        assert_eq!(ipuflow_run_options_add_config_entry(ro, k.as_ptr(), val.as_ptr()), S::Ok, "{}", last_error());
        assert_eq!(ipuflow_session_run(s, ro, in_ptrs.as_ptr(), inputs.as_ptr(), 2, out_ptrs.as_ptr(), null(), &mut t, 1), S::Ok);
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
        assert_eq!(ipuflow_session_options_set_intra_op_threads(o, -1), S::InvalidArgument);
        assert_eq!(ipuflow_session_options_set_inter_op_threads(o, 1), S::Ok);
        assert_eq!(ipuflow_session_options_set_graph_optimization(o, IPUFLOW_GRAPH_OPTIMIZATION_EXTENDED), S::Ok);
        assert_eq!(ipuflow_session_options_set_graph_optimization(o, 99), S::InvalidEnum);
        assert_eq!(ipuflow_session_options_set_execution_mode(o, IPUFLOW_EXECUTION_MODE_PARALLEL), S::Ok);
        assert_eq!(ipuflow_session_options_set_execution_mode(o, 2), S::InvalidEnum);
        assert_eq!(ipuflow_session_options_set_deterministic(o, 1), S::Ok);
        assert_eq!(ipuflow_session_options_set_deterministic(o, 2), S::InvalidArgument);
        assert_eq!(ipuflow_session_options_set_memory_arena(o, 0), S::Ok);
        assert_eq!(ipuflow_session_options_set_profiling(o, null()), S::Ok);
        assert_eq!(ipuflow_session_options_set_optimized_model_path(o, null()), S::Ok);
        let id = c("capi");
        assert_eq!(ipuflow_session_options_set_logging(o, id.as_ptr(), IPUFLOW_LOG_LEVEL_WARNING), S::Ok);
        assert_eq!(ipuflow_session_options_set_logging(o, id.as_ptr(), 9), S::InvalidEnum);
        let (k, v, e) = (c("session.intra_op.allow_spinning"), c("0"), c(""));
        assert_eq!(ipuflow_session_options_add_config_entry(o, k.as_ptr(), v.as_ptr()), S::Ok);
        assert_eq!(ipuflow_session_options_add_config_entry(o, e.as_ptr(), v.as_ptr()), S::InvalidArgument);
        assert_eq!(ipuflow_session_options_add_config_entry(o, null(), v.as_ptr()), S::NullArgument);
        assert_eq!(ipuflow_session_options_set_intra_op_threads(null_mut(), 1), S::NullArgument);

        let bytes = add_model();
        let mut s = 0x99 as *mut ipuflow_session;
        let sentinel = s;
        assert_eq!(ipuflow_session_create_from_memory(null(), bytes.as_ptr().cast(), 0, o, &mut s), S::ModelDecode);
        assert_eq!(ipuflow_session_create_from_memory(null(), null(), 10, o, &mut s), S::NullArgument);
        assert_eq!(ipuflow_session_create_from_memory(null(), b"junk".as_ptr().cast(), 4, o, &mut s), S::Runtime);
        assert!(last_error().contains("ORT_"), "{}", last_error());
        let missing = c("/nonexistent/model.onnx");
        assert_eq!(ipuflow_session_create(null(), missing.as_ptr(), o, &mut s), S::FileNotFound);
        assert_eq!(ipuflow_session_create(null(), null(), o, &mut s), S::NullArgument);
        assert_eq!(ipuflow_session_create(null(), missing.as_ptr(), o, null_mut()), S::NullArgument);
        assert_eq!(s, sentinel, "out untouched on failure");
        assert_eq!(ipuflow_session_create_from_memory(null(), bytes.as_ptr().cast(), bytes.len(), o, &mut s), S::Ok, "{}", last_error());
        ipuflow_session_free(s);

        // From an ipuflow_model.
        let mut m = null_mut();
        assert_eq!(ipuflow::capi::model::ipuflow_model_load_bytes(bytes.as_ptr(), bytes.len(), null(), &mut m), S::Ok);
        let mut s = null_mut();
        assert_eq!(ipuflow_session_create_from_model(null(), m, o, &mut s), S::Ok, "{}", last_error());
        assert_eq!(ipuflow_session_create_from_model(null(), null(), o, &mut s), S::NullArgument);
        ipuflow::capi::model::ipuflow_model_free(m);
        ipuflow_session_free(s);

        // From a file, UTF-8 and UTF-16 paths.
        let dir = std::env::temp_dir().join(format!("ipuflow-capi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("add.onnx");
        std::fs::write(&path, &bytes).unwrap();
        let p = c(path.to_str().unwrap());
        let mut s = null_mut();
        assert_eq!(ipuflow_session_create(null(), p.as_ptr(), null(), &mut s), S::Ok, "{}", last_error());
        ipuflow_session_free(s);
        let w: Vec<u16> = path.to_str().unwrap().encode_utf16().chain([0]).collect();
        assert_eq!(ipuflow_session_create_w(null(), w.as_ptr(), null(), &mut s), S::Ok, "{}", last_error());
        ipuflow_session_free(s);
        std::fs::remove_dir_all(&dir).unwrap();

        ipuflow_session_options_free(o);
        ipuflow_session_options_free(null_mut());

        // Element sizes.
        let mut n = 0usize;
        assert_eq!(ipuflow_element_type_size(IPUFLOW_ELEMENT_TYPE_BFLOAT16, &mut n), S::Ok);
        assert_eq!(n, 2);
        assert_eq!(ipuflow_element_type_size(IPUFLOW_ELEMENT_TYPE_STRING, &mut n), S::Unsupported);
        assert_eq!(ipuflow_element_type_size(0, &mut n), S::InvalidEnum);
    }
}

#[test]
fn env_argument_errors() {
    unsafe {
        let mut e = null_mut();
        assert_eq!(ipuflow_env_create(IPUFLOW_LOG_LEVEL_WARNING, null(), None, null_mut(), null_mut()), S::NullArgument);
        assert_eq!(ipuflow_env_create(5, null(), None, null_mut(), &mut e), S::InvalidEnum);
        assert_eq!(ipuflow_env_create_with_global_thread_pools(2, null(), None, null_mut(), -1, 0, -1, &mut e), S::InvalidArgument);
        assert_eq!(ipuflow_env_create_with_global_thread_pools(2, null(), None, null_mut(), 0, 0, 3, &mut e), S::InvalidArgument);
        assert!(e.is_null());
        ipuflow_env_free(null_mut());
    }
}
