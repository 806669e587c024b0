//! Per-call overhead of `ipuflow_session_run` against ONNX Runtime's C API called directly, on a tiny model.
//! Ignored by default (timing needs a release build and a quiet machine):
//!   cargo test --release --test runtime_overhead -- --ignored --nocapture

mod ort_support;

use std::ffi::{c_char, CString};
use std::ptr::{null, null_mut};
use std::time::Instant;

use ipuflow::capi::session::*;
use ipuflow::capi::tensor::*;
use ort_support::*;
use ort_sys::*;

#[test]
#[ignore]
fn overhead_per_call_tiny_model() {
    runtime();
    let bytes = add_model();
    unsafe {
        let mut s = null_mut();
        assert_eq!(ipuflow_session_create_from_memory(null(), bytes.as_ptr().cast(), bytes.len(), null(), &mut s) as i32, 0);
        let x = [1.0f32; 8];
        let y = [1.0f32; 4];
        let mut z = [0.0f32; 8];
        let (xs, ys) = ([2i64, 4], [1i64, 4]);
        let names = [CString::new("x").unwrap(), CString::new("y").unwrap()];
        let np = [names[0].as_ptr(), names[1].as_ptr()];
        let on = CString::new("z").unwrap();
        let op = [on.as_ptr()];
        let v = |sh: &[i64], d: *const f32, b| ipuflow_tensor_view {
            element_type: IPUFLOW_ELEMENT_TYPE_FLOAT,
            shape: sh.as_ptr(),
            rank: sh.len(),
            data: d as *mut _,
            byte_size: b,
        };
        let ins = [v(&xs, x.as_ptr(), 32), v(&ys, y.as_ptr(), 16)];
        let pre = [v(&xs, z.as_mut_ptr(), 32)];
        let run_pre = || {
            let st = ipuflow_session_run(s, null(), np.as_ptr(), ins.as_ptr(), 2, op.as_ptr(), pre.as_ptr(), null_mut(), 1);
            assert_eq!(st as i32, 0);
        };
        let run_alloc = || {
            let mut o = null_mut();
            let st = ipuflow_session_run(s, null(), np.as_ptr(), ins.as_ptr(), 2, op.as_ptr(), null(), &mut o, 1);
            assert_eq!(st as i32, 0);
            ipuflow_tensor_free(o);
        };

        // The same work through ORT's C API directly (a fresh OrtValue per tensor per call, as a C host would).
        let lib = libloading::Library::new(ort_library()).unwrap();
        let base: libloading::Symbol<unsafe extern "system" fn() -> *const OrtApiBase> = lib.get(b"OrtGetApiBase\0").unwrap();
        let api = &*((*base()).GetApi)(24);
        let ok = |st: OrtStatusPtr| assert!(st.0.is_null());
        let mut env = null_mut();
        ok((api.CreateEnv)(OrtLoggingLevel::ORT_LOGGING_LEVEL_WARNING, c"bench".as_ptr(), &mut env));
        let mut so = null_mut();
        ok((api.CreateSessionOptions)(&mut so));
        let mut sess = null_mut();
        ok((api.CreateSessionFromArray)(env, bytes.as_ptr().cast(), bytes.len(), so, &mut sess));
        let mut mem = null_mut();
        ok((api.CreateCpuMemoryInfo)(OrtAllocatorType::OrtArenaAllocator, OrtMemType::OrtMemTypeDefault, &mut mem));
        let f32t = ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
        let run_direct = || {
            let (mut a, mut b, mut c) = (null_mut(), null_mut(), null_mut());
            ok((api.CreateTensorWithDataAsOrtValue)(mem, x.as_ptr() as *mut _, 32, xs.as_ptr(), 2, f32t, &mut a));
            ok((api.CreateTensorWithDataAsOrtValue)(mem, y.as_ptr() as *mut _, 16, ys.as_ptr(), 2, f32t, &mut b));
            ok((api.CreateTensorWithDataAsOrtValue)(mem, z.as_ptr() as *mut _, 32, xs.as_ptr(), 2, f32t, &mut c));
            let iv = [a as *const OrtValue, b as *const OrtValue];
            let mut ov = [c];
            ok((api.Run)(sess, null(), np.as_ptr() as *const *const c_char, iv.as_ptr(), 2, op.as_ptr(), 1, ov.as_mut_ptr()));
            (api.ReleaseValue)(a);
            (api.ReleaseValue)(b);
            (api.ReleaseValue)(c);
        };

        for _ in 0..2000 {
            run_direct();
            run_pre();
            run_alloc();
        }
        let n = 50_000;
        let time = |f: &dyn Fn()| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        };
        // Interleaved rounds, best of each: the machine's noise is larger than the difference.
        let (mut direct, mut ipf_pre, mut ipf_alloc) = (f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..6 {
            direct = direct.min(time(&run_direct));
            ipf_pre = ipf_pre.min(time(&run_pre));
            ipf_alloc = ipf_alloc.min(time(&run_alloc));
        }
        eprintln!(
            "tiny model, per call: ORT C API direct {direct:.0} ns; ipuflow_session_run into caller buffers {ipf_pre:.0} ns \
             (overhead {:+.0} ns); with an allocated output {ipf_alloc:.0} ns",
            ipf_pre - direct
        );
        ipuflow_session_free(s);
        (api.ReleaseMemoryInfo)(mem);
        (api.ReleaseSession)(sess);
        (api.ReleaseSessionOptions)(so);
        (api.ReleaseEnv)(env);
        // The goal: < 5 us of overhead per call on a tiny model.
        assert!(ipf_pre - direct < 5000.0, "overhead {} ns", ipf_pre - direct);
    }
}
