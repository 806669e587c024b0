mod ort_support;
use ort_support::*;
use std::ffi::{c_char, CString};
use std::ptr::{null, null_mut};
use std::time::Instant;
use ipuflow::capi::session::*;
use ipuflow::capi::tensor::*;
use ort_sys::*;

#[test]
fn bench() {
    runtime();
    let bytes = add_model();
    let n = 200_000;
    unsafe {
        let mut s = null_mut();
        assert_eq!(ipuflow_session_create_from_memory(null(), bytes.as_ptr().cast(), bytes.len(), null(), &mut s) as i32, 0);
        let x = [1.0f32; 8]; let y = [1.0f32; 4]; let mut z = [0.0f32; 8];
        let xs = [2i64, 4]; let ys = [1i64, 4];
        let names = [CString::new("x").unwrap(), CString::new("y").unwrap()];
        let np = [names[0].as_ptr(), names[1].as_ptr()];
        let on = CString::new("z").unwrap(); let op = [on.as_ptr()];
        let v = |sh: &[i64], d: *const f32, b| ipuflow_tensor_view { element_type: 1, shape: sh.as_ptr(), rank: sh.len(), data: d as *mut _, byte_size: b };
        let ins = [v(&xs, x.as_ptr(), 32), v(&ys, y.as_ptr(), 16)];
        let pre = [v(&xs, z.as_mut_ptr(), 32)];
        for _ in 0..2000 { ipuflow_session_run(s, null(), np.as_ptr(), ins.as_ptr(), 2, op.as_ptr(), pre.as_ptr(), null_mut(), 1); }
        let t = Instant::now();
        for _ in 0..n { ipuflow_session_run(s, null(), np.as_ptr(), ins.as_ptr(), 2, op.as_ptr(), pre.as_ptr(), null_mut(), 1); }
        let ipf_pre = t.elapsed().as_nanos() as f64 / n as f64;
        let t = Instant::now();
        for _ in 0..n { let mut o = null_mut(); ipuflow_session_run(s, null(), np.as_ptr(), ins.as_ptr(), 2, op.as_ptr(), null(), &mut o, 1); ipuflow_tensor_free(o); }
        let ipf_alloc = t.elapsed().as_nanos() as f64 / n as f64;

        // Direct ORT C API.
        let lib = libloading::Library::new(ort_library()).unwrap();
        let base: libloading::Symbol<unsafe extern "system" fn() -> *const OrtApiBase> = lib.get(b"OrtGetApiBase\0").unwrap();
        let api = &*((*base()).GetApi)(24);
        let mut env = null_mut(); (api.CreateEnv)(OrtLoggingLevel::ORT_LOGGING_LEVEL_WARNING, c"b".as_ptr(), &mut env);
        let mut so = null_mut(); (api.CreateSessionOptions)(&mut so);
        let mut sess = null_mut(); (api.CreateSessionFromArray)(env, bytes.as_ptr().cast(), bytes.len(), so, &mut sess);
        let mut mem = null_mut(); (api.CreateCpuMemoryInfo)(OrtAllocatorType::OrtArenaAllocator, OrtMemType::OrtMemTypeDefault, &mut mem);
        let t_elem = ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
        let run_direct = || {
            let mut a = null_mut(); let mut b = null_mut(); let mut c = null_mut();
            (api.CreateTensorWithDataAsOrtValue)(mem, x.as_ptr() as *mut _, 32, xs.as_ptr(), 2, t_elem, &mut a);
            (api.CreateTensorWithDataAsOrtValue)(mem, y.as_ptr() as *mut _, 16, ys.as_ptr(), 2, t_elem, &mut b);
            (api.CreateTensorWithDataAsOrtValue)(mem, z.as_ptr() as *mut _, 32, xs.as_ptr(), 2, t_elem, &mut c);
            let iv = [a as *const OrtValue, b as *const OrtValue];
            let mut ov = [c];
            let st = (api.Run)(sess, null(), np.as_ptr() as *const *const c_char, iv.as_ptr(), 2, op.as_ptr(), 1, ov.as_mut_ptr());
            assert!(st.0.is_null());
            (api.ReleaseValue)(a); (api.ReleaseValue)(b); (api.ReleaseValue)(c);
        };
        for _ in 0..2000 { run_direct(); }
        let t = Instant::now();
        for _ in 0..n { run_direct(); }
        let direct = t.elapsed().as_nanos() as f64 / n as f64;
        eprintln!("BENCH tiny add: direct ORT {direct:.0} ns, ipuflow preallocated {ipf_pre:.0} ns (+{:.0}), ipuflow allocated {ipf_alloc:.0} ns", ipf_pre - direct);
        ipuflow_session_free(s);
    }
}
