//! Per-call overhead of `ipuflow_session_run` against ONNX Runtime's C API called directly.
//!
//!   cargo bench --bench session_overhead                 # both models
//!   cargo bench --bench session_overhead -- --tiny-only  # skip the CNN
//!   IPUFLOW_BENCH_TINY_RUNS=50000 IPUFLOW_BENCH_CNN_RUNS=400 cargo bench --bench session_overhead
//!
//! One process, one ONNX Runtime: ipuflow loads it (`ipuflow_runtime_load`, the file of scripts/fetch_ort.sh or
//! IPUFLOW_ORT_LIBRARY) and the direct path gets ORT's function table (`OrtGetApiBase()->GetApi(24)`, ort-sys
//! types) from that same loaded library (checked with RTLD_NOLOAD on Unix). Both paths get a session of the same
//! model with the same options (1 intra-op and 1 inter-op thread, all graph optimizations, sequential, CPU arena)
//! and run the same inputs (their outputs are checked equal first). Five call shapes are timed, interleaved call by
//! call (rotating the order), each call timed on its own, in wall-clock time and in the calling thread's CPU time
//! (with one intra-op thread ORT computes on the calling thread, so CPU time leaves out preemption by other
//! processes):
//!
//!   direct, caller output : CreateTensorWithDataAsOrtValue for every input and the output, Run, ReleaseValue each
//!   ipuflow, caller output: ipuflow_session_run with `preallocated_outputs`
//!   direct, ORT output    : input values, Run with a NULL output (ORT allocates), GetTensorTypeAndShape +
//!                           GetTensorElementType + GetDimensionsCount + GetDimensions + GetTensorMutableData (what a
//!                           host needs to read it), release everything
//!   ipuflow, ORT output   : ipuflow_session_run with `out_tensors`, ipuflow_tensor_get_view, ipuflow_tensor_free
//!   control               : "direct, caller output" on a second direct session of the same model: the A/A
//!                           difference is the noise floor (two sessions of one model are not equally fast to the
//!                           last percent: different weight buffers)
//!
//! Reported per shape: median, p10, p90 (wall) and median (thread CPU); per pair: the difference of medians, the
//! ratio, and the median of the paired per-iteration differences.
//!
//! Models: a tiny Add of two float [1,4] tensors built in code (20,000 calls per shape), and
//! ../shared/models/efficientnet-lite0.onnx, batch 1, a fixed input (200 calls per shape; skipped with a printed
//! reason when ../shared is not there). Goals (issue 3): < 5 us of overhead per call on the tiny model, < 2 % on the
//! CNN.

#[path = "../tests/ort_support/mod.rs"]
mod ort_support;

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::time::Instant;

use ipuflow::capi::ipuflow_status;
use ipuflow::capi::library::ipuflow_last_error;
use ipuflow::capi::runtime::{ipuflow_runtime_load, ipuflow_runtime_path, ipuflow_runtime_version};
use ipuflow::capi::session::*;
use ipuflow::capi::session_options::*;
use ipuflow::capi::tensor::*;
use ipuflow::onnx::proto::GraphProto;
use ort_support::{model, node, vi, D};
use ort_sys::*;

// ---------------------------------------------------------------- plumbing

fn ok(st: ipuflow_status, what: &str) {
    if st as i32 != 0 {
        let msg = unsafe { CStr::from_ptr(ipuflow_last_error()) }.to_string_lossy();
        panic!("{what} failed: status {} ({msg})", st as i32);
    }
}

struct Ort {
    api: &'static OrtApi,
    _lib: libloading::Library,
}

impl Ort {
    fn ok(&self, st: OrtStatusPtr, what: &str) {
        if !st.0.is_null() {
            let msg = unsafe { CStr::from_ptr((self.api.GetErrorMessage)(st.0)) }
                .to_string_lossy()
                .into_owned();
            unsafe { (self.api.ReleaseStatus)(st.0) };
            panic!("{what} failed: {msg}");
        }
    }
}

/// ORT's function table from the library ipuflow has loaded (the same file; on Unix, RTLD_NOLOAD proves it is
/// the very module already in the process, not a second copy).
fn ort_from_loaded_library(path: &str) -> Ort {
    #[cfg(unix)]
    let lib: libloading::Library = unsafe {
        libloading::os::unix::Library::open(
            Some(path),
            libloading::os::unix::RTLD_NOW | libc::RTLD_NOLOAD,
        )
        .unwrap_or_else(|e| panic!("{path} is not loaded in this process: {e}"))
        .into()
    };
    #[cfg(not(unix))]
    let lib = unsafe { libloading::Library::new(path).expect("open ONNX Runtime") };
    let api = unsafe {
        let base: libloading::Symbol<unsafe extern "system" fn() -> *const OrtApiBase> =
            lib.get(b"OrtGetApiBase\0").unwrap();
        let api = ((*base()).GetApi)(24);
        assert!(!api.is_null(), "GetApi(24) returned NULL");
        &*api
    };
    Ort { api, _lib: lib }
}

/// 8-byte aligned zeroed bytes.
fn aligned(len: usize) -> Vec<u64> {
    vec![0u64; len.div_ceil(8)]
}

/// CPU time of the calling thread in ns. With one intra-op thread ONNX Runtime computes on the calling thread, so
/// this leaves out the time other processes take the core away (the 2-core build machines are rarely idle).
#[cfg(unix)]
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
#[cfg(not(unix))]
fn thread_cpu_ns() -> u64 {
    0
}

/// Per-call samples of one call shape, in ns.
struct Stats {
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn median(v: &[f64]) -> f64 {
    pct(v, 0.5)
}

/// Median of the per-iteration differences b[i] - a[i] (calls of the same iteration ran back to back).
fn paired(a: &[f64], b: &[f64]) -> f64 {
    median(&a.iter().zip(b).map(|(x, y)| y - x).collect::<Vec<_>>())
}

/// Times `runs` calls of each closure, interleaved call by call with a rotating order, after `warmup` calls each.
fn measure(fs: &mut [&mut dyn FnMut()], warmup: usize, runs: usize) -> Vec<Stats> {
    for _ in 0..warmup {
        for f in fs.iter_mut() {
            f();
        }
    }
    let mut stats: Vec<Stats> = fs
        .iter()
        .map(|_| Stats {
            wall: Vec::with_capacity(runs),
            cpu: Vec::with_capacity(runs),
        })
        .collect();
    let n = fs.len();
    for i in 0..runs {
        for k in 0..n {
            let j = (i + k) % n;
            let c = thread_cpu_ns();
            let t = Instant::now();
            (fs[j])();
            let w = t.elapsed().as_nanos() as f64;
            stats[j].cpu.push((thread_cpu_ns() - c) as f64);
            stats[j].wall.push(w);
        }
    }
    stats
}

/// The tensors of one benchmark: names, input data and shapes, the output shape and element count (float).
struct Case {
    label: String,
    in_names: Vec<CString>,
    in_shapes: Vec<Vec<i64>>,
    in_data: Vec<Vec<f32>>,
    out_name: CString,
    out_shape: Vec<i64>,
}

/// Runs the four call shapes on `case` with an ipuflow session and a direct ORT session; prints and returns the
/// caller-output and ORT-output rows.
unsafe fn bench(
    ort: &Ort,
    ipf: *const ipuflow_session,
    direct: *mut OrtSession,
    direct_b: *mut OrtSession,
    case: &mut Case,
    warmup: usize,
    runs: usize,
) -> [Row; 3] {
    let api = ort.api;
    let mut mem = null_mut();
    ort.ok(
        (api.CreateCpuMemoryInfo)(
            OrtAllocatorType::OrtArenaAllocator,
            OrtMemType::OrtMemTypeDefault,
            &mut mem,
        ),
        "CreateCpuMemoryInfo",
    );
    let f32t = ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    let n_in = case.in_names.len();
    let in_ptrs: Vec<*const c_char> = case.in_names.iter().map(|c| c.as_ptr()).collect();
    let out_ptrs = [case.out_name.as_ptr()];
    let out_elems: usize = case.out_shape.iter().product::<i64>() as usize;
    let mut out_buf = aligned(out_elems * 4);
    let out_ptr = out_buf.as_mut_ptr() as *mut c_void;
    let views: Vec<ipuflow_tensor_view> = case
        .in_data
        .iter_mut()
        .zip(&case.in_shapes)
        .map(|(d, s)| ipuflow_tensor_view {
            element_type: IPUFLOW_ELEMENT_TYPE_FLOAT,
            shape: s.as_ptr(),
            rank: s.len(),
            data: d.as_mut_ptr().cast(),
            byte_size: d.len() * 4,
        })
        .collect();
    let pre = [ipuflow_tensor_view {
        element_type: IPUFLOW_ELEMENT_TYPE_FLOAT,
        shape: case.out_shape.as_ptr(),
        rank: case.out_shape.len(),
        data: out_ptr,
        byte_size: out_elems * 4,
    }];

    let mut ipf_pre = || {
        let st = ipuflow_session_run(
            ipf,
            null(),
            in_ptrs.as_ptr(),
            views.as_ptr(),
            n_in,
            out_ptrs.as_ptr(),
            pre.as_ptr(),
            null_mut(),
            1,
        );
        if st as i32 != 0 {
            ok(st, "ipuflow_session_run (caller output)");
        }
    };
    let mut ipf_alloc = || {
        let mut t = null_mut();
        let st = ipuflow_session_run(
            ipf,
            null(),
            in_ptrs.as_ptr(),
            views.as_ptr(),
            n_in,
            out_ptrs.as_ptr(),
            null(),
            &mut t,
            1,
        );
        if st as i32 != 0 {
            ok(st, "ipuflow_session_run (ORT output)");
        }
        let mut v = std::mem::zeroed::<ipuflow_tensor_view>();
        ipuflow_tensor_get_view(t, &mut v);
        std::hint::black_box(v.data);
        ipuflow_tensor_free(t);
    };
    let make_inputs = |vals: &mut [*mut OrtValue]| {
        for (k, v) in views.iter().enumerate() {
            let st = (api.CreateTensorWithDataAsOrtValue)(
                mem,
                v.data,
                v.byte_size,
                v.shape,
                v.rank,
                f32t,
                &mut vals[k],
            );
            if !st.0.is_null() {
                ort.ok(st, "CreateTensorWithDataAsOrtValue");
            }
        }
    };
    let direct_pre_on = |direct: *mut OrtSession| {
        let mut vals = [null_mut::<OrtValue>(); 8];
        make_inputs(&mut vals[..n_in]);
        let mut out = [null_mut::<OrtValue>()];
        let st = (api.CreateTensorWithDataAsOrtValue)(
            mem,
            out_ptr,
            out_elems * 4,
            case.out_shape.as_ptr(),
            case.out_shape.len(),
            f32t,
            &mut out[0],
        );
        if !st.0.is_null() {
            ort.ok(st, "CreateTensorWithDataAsOrtValue (output)");
        }
        let st = (api.Run)(
            direct,
            null(),
            in_ptrs.as_ptr(),
            vals.as_ptr() as *const *const OrtValue,
            n_in,
            out_ptrs.as_ptr(),
            1,
            out.as_mut_ptr(),
        );
        if !st.0.is_null() {
            ort.ok(st, "Run");
        }
        for v in &vals[..n_in] {
            (api.ReleaseValue)(*v);
        }
        (api.ReleaseValue)(out[0]);
    };
    let mut direct_pre = || direct_pre_on(direct);
    let mut direct_pre_b = || direct_pre_on(direct_b);
    let mut direct_alloc = || {
        let mut vals = [null_mut::<OrtValue>(); 8];
        make_inputs(&mut vals[..n_in]);
        let mut out = [null_mut::<OrtValue>()];
        let st = (api.Run)(
            direct,
            null(),
            in_ptrs.as_ptr(),
            vals.as_ptr() as *const *const OrtValue,
            n_in,
            out_ptrs.as_ptr(),
            1,
            out.as_mut_ptr(),
        );
        if !st.0.is_null() {
            ort.ok(st, "Run");
        }
        for v in &vals[..n_in] {
            (api.ReleaseValue)(*v);
        }
        // What a host does to read the output: its type, shape and data.
        let mut info = null_mut();
        ort.ok(
            (api.GetTensorTypeAndShape)(out[0], &mut info),
            "GetTensorTypeAndShape",
        );
        let mut et = ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
        ort.ok(
            (api.GetTensorElementType)(info, &mut et),
            "GetTensorElementType",
        );
        let mut rank = 0usize;
        ort.ok(
            (api.GetDimensionsCount)(info, &mut rank),
            "GetDimensionsCount",
        );
        let mut dims = [0i64; 8];
        ort.ok(
            (api.GetDimensions)(info, dims.as_mut_ptr(), rank.min(8)),
            "GetDimensions",
        );
        (api.ReleaseTensorTypeAndShapeInfo)(info);
        let mut data = null_mut();
        ort.ok(
            (api.GetTensorMutableData)(out[0], &mut data),
            "GetTensorMutableData",
        );
        std::hint::black_box((data, dims, et));
        (api.ReleaseValue)(out[0]);
    };

    // Both paths must compute the same thing.
    ipf_pre();
    let a: Vec<u64> = out_buf.clone();
    direct_pre();
    assert_eq!(
        a, out_buf,
        "{}: ipuflow and direct ORT outputs differ",
        case.label
    );

    let stats = measure(
        &mut [
            &mut direct_pre,
            &mut ipf_pre,
            &mut direct_alloc,
            &mut ipf_alloc,
            &mut direct_pre_b,
        ],
        warmup,
        runs,
    );
    (api.ReleaseMemoryInfo)(mem);

    let us = |ns: f64| ns / 1000.0;
    println!(
        "\n{} ({runs} calls per row, interleaved, after {warmup} warm-up calls each)",
        case.label
    );
    println!(
        "  {:<36} {:>11} {:>11} {:>11} | {:>12}",
        "call", "wall med us", "wall p10", "wall p90", "thread CPU med us"
    );
    let names = [
        "direct ORT C API, caller output",
        "ipuflow_session_run, caller output",
        "direct ORT C API, ORT output",
        "ipuflow_session_run, ORT output",
        "control: 2nd direct session, caller",
    ];
    for (n, s) in names.iter().zip(&stats) {
        println!(
            "  {:<36} {:>11.3} {:>11.3} {:>11.3} | {:>12.3}",
            n,
            us(median(&s.wall)),
            us(pct(&s.wall, 0.1)),
            us(pct(&s.wall, 0.9)),
            us(median(&s.cpu))
        );
    }
    let mut rows = Vec::new();
    for (label, d, i) in [
        ("caller output", &stats[0], &stats[1]),
        ("ORT output", &stats[2], &stats[3]),
        ("control A/A", &stats[0], &stats[4]),
    ] {
        let r = Row {
            wall: (median(&d.wall), median(&i.wall)),
            cpu: (median(&d.cpu), median(&i.cpu)),
            wall_paired: paired(&d.wall, &i.wall),
            cpu_paired: paired(&d.cpu, &i.cpu),
        };
        println!(
            "  overhead, {label:<14}: wall {:+.3} us ({:+.2} %; median of paired differences {:+.3} us), \
             thread CPU {:+.3} us ({:+.2} %; paired {:+.3} us)",
            us(r.wall.1 - r.wall.0),
            (r.wall.1 / r.wall.0 - 1.0) * 100.0,
            us(r.wall_paired),
            us(r.cpu.1 - r.cpu.0),
            (r.cpu.1 / r.cpu.0 - 1.0) * 100.0,
            us(r.cpu_paired),
        );
        rows.push(r);
    }
    [rows.remove(0), rows.remove(0), rows.remove(0)]
}

/// Medians (direct, ipuflow) in ns and the medians of the paired differences.
struct Row {
    wall: (f64, f64),
    cpu: (f64, f64),
    wall_paired: f64,
    cpu_paired: f64,
}

unsafe fn options(ort: &Ort) -> (*mut ipuflow_session_options, *mut OrtSessionOptions) {
    let mut o = null_mut();
    ok(
        ipuflow_session_options_create(&mut o),
        "ipuflow_session_options_create",
    );
    ok(
        ipuflow_session_options_set_intra_op_threads(o, 1),
        "set_intra_op_threads",
    );
    ok(
        ipuflow_session_options_set_inter_op_threads(o, 1),
        "set_inter_op_threads",
    );
    let api = ort.api;
    let mut so = null_mut();
    ort.ok((api.CreateSessionOptions)(&mut so), "CreateSessionOptions");
    ort.ok((api.SetIntraOpNumThreads)(so, 1), "SetIntraOpNumThreads");
    ort.ok((api.SetInterOpNumThreads)(so, 1), "SetInterOpNumThreads");
    ort.ok(
        (api.SetSessionGraphOptimizationLevel)(so, GraphOptimizationLevel::ORT_ENABLE_ALL),
        "SetSessionGraphOptimizationLevel",
    );
    ort.ok(
        (api.SetSessionExecutionMode)(so, ExecutionMode::ORT_SEQUENTIAL),
        "SetSessionExecutionMode",
    );
    ort.ok((api.EnableCpuMemArena)(so), "EnableCpuMemArena");
    (o, so)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let tiny_only = std::env::args().any(|a| a == "--tiny-only");
    let tiny_runs = env_usize("IPUFLOW_BENCH_TINY_RUNS", 20_000);
    let cnn_runs = env_usize("IPUFLOW_BENCH_CNN_RUNS", 200);

    let lib = ort_support::ort_library();
    let lib_c = CString::new(lib.to_str().expect("UTF-8 path")).unwrap();
    unsafe { ok(ipuflow_runtime_load(lib_c.as_ptr()), "ipuflow_runtime_load") };
    let (mut ver, mut path) = (null(), null());
    unsafe {
        ok(ipuflow_runtime_version(&mut ver), "ipuflow_runtime_version");
        ok(ipuflow_runtime_path(&mut path), "ipuflow_runtime_path");
    }
    let path = unsafe { CStr::from_ptr(path) }
        .to_str()
        .unwrap()
        .to_string();
    let ort = ort_from_loaded_library(&path);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!(
        "session_overhead: ONNX Runtime {} ({path}), {} logical cores, {cpu}; sessions with 1 intra-op thread",
        unsafe { CStr::from_ptr(ver) }.to_string_lossy(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut summary = Vec::new();
    unsafe {
        let (o, so) = options(&ort);
        let api = ort.api;
        // ORT keeps one OrtEnv per process: this returns the one ipuflow created (reference counted).
        let mut env = null_mut();
        // The tiny model: z = x + y, all float [1,4].
        let bytes = model(GraphProto {
            name: Some("add".into()),
            node: vec![node("Add", &["x", "y"], &["z"])],
            input: vec![
                vi("x", 1, &[D::Fixed(1), D::Fixed(4)]),
                vi("y", 1, &[D::Fixed(1), D::Fixed(4)]),
            ],
            output: vec![vi("z", 1, &[D::Fixed(1), D::Fixed(4)])],
            ..Default::default()
        });
        let mut s = null_mut();
        ok(
            ipuflow_session_create_from_memory(
                null(),
                bytes.as_ptr().cast(),
                bytes.len(),
                o,
                &mut s,
            ),
            "ipuflow_session_create_from_memory",
        );
        ort.ok(
            (api.CreateEnv)(
                OrtLoggingLevel::ORT_LOGGING_LEVEL_WARNING,
                c"session_overhead".as_ptr(),
                &mut env,
            ),
            "CreateEnv",
        );
        let (mut ds, mut ds_b) = (null_mut(), null_mut());
        ort.ok(
            (api.CreateSessionFromArray)(env, bytes.as_ptr().cast(), bytes.len(), so, &mut ds),
            "CreateSessionFromArray",
        );
        ort.ok(
            (api.CreateSessionFromArray)(env, bytes.as_ptr().cast(), bytes.len(), so, &mut ds_b),
            "CreateSessionFromArray",
        );
        let mut tiny = Case {
            label: "tiny model: Add, float [1,4] + [1,4]".into(),
            in_names: vec![CString::new("x").unwrap(), CString::new("y").unwrap()],
            in_shapes: vec![vec![1, 4], vec![1, 4]],
            in_data: vec![vec![1.0, 2.0, 3.0, 4.0], vec![0.5, 0.25, 0.125, 0.0625]],
            out_name: CString::new("z").unwrap(),
            out_shape: vec![1, 4],
        };
        let m = bench(&ort, s, ds, ds_b, &mut tiny, tiny_runs / 10, tiny_runs);
        summary.push(("tiny Add [1,4]", m, Goal::Us(5.0)));
        ipuflow_session_free(s);
        (api.ReleaseSession)(ds);
        (api.ReleaseSession)(ds_b);

        // The CNN.
        let cnn = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/models/efficientnet-lite0.onnx");
        if tiny_only {
            println!("\nefficientnet-lite0: skipped (--tiny-only)");
        } else if !cnn.exists() {
            println!(
                "\nefficientnet-lite0: skipped ({} is not there; it comes with ../shared only)",
                cnn.display()
            );
        } else {
            let cp = CString::new(cnn.to_str().unwrap()).unwrap();
            let mut s = null_mut();
            ok(
                ipuflow_session_create(null(), cp.as_ptr(), o, &mut s),
                "ipuflow_session_create",
            );
            let (mut ds, mut ds_b) = (null_mut(), null_mut());
            ort.ok(
                (api.CreateSession)(env, cp.as_ptr(), so, &mut ds),
                "CreateSession",
            );
            ort.ok(
                (api.CreateSession)(env, cp.as_ptr(), so, &mut ds_b),
                "CreateSession",
            );
            // Input 'input' [1,3,224,224], output 'logits' [1,1000] (shared/docs/quantization-anchors.md).
            let mut info = std::mem::zeroed::<ipuflow_tensor_info>();
            ok(ipuflow_session_input_info(s, 0, &mut info), "input_info");
            let in_name = CStr::from_ptr(info.name).to_owned();
            ok(ipuflow_session_output_info(s, 0, &mut info), "output_info");
            let out_name = CStr::from_ptr(info.name).to_owned();
            // A fixed input: a deterministic pseudo-random pattern in the preprocessed range [-1, 1).
            let n = 3 * 224 * 224;
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 256) as f32 - 127.0) / 128.0)
                .collect();
            let mut case = Case {
                label: format!(
                    "efficientnet-lite0: '{}' float [1,3,224,224] -> '{}' [1,1000]",
                    in_name.to_string_lossy(),
                    out_name.to_string_lossy()
                ),
                in_names: vec![in_name],
                in_shapes: vec![vec![1, 3, 224, 224]],
                in_data: vec![x],
                out_name,
                out_shape: vec![1, 1000],
            };
            let m = bench(&ort, s, ds, ds_b, &mut case, 10, cnn_runs);
            summary.push(("efficientnet-lite0", m, Goal::Percent(2.0)));
            ipuflow_session_free(s);
            (api.ReleaseSession)(ds);
            (api.ReleaseSession)(ds_b);
        }
        ipuflow_session_options_free(o);
        (api.ReleaseSessionOptions)(so);
        (api.ReleaseEnv)(env);
    }

    println!("\nsummary, per call (overhead = ipuflow - direct)");
    println!("  wall clock: medians; thread CPU: medians and the median of the paired per-iteration differences");
    println!("  (the goal is judged on the paired CPU-time difference, the estimate least disturbed by other processes)");
    println!(
        "  {:<19} {:<14} | {:>10} {:>10} {:>9} {:>8} | {:>10} {:>10} {:>9} {:>8} | goal",
        "model",
        "output",
        "direct us",
        "ipuflow us",
        "ovh us",
        "ovh %",
        "direct us",
        "ipuflow us",
        "paired us",
        "paired %"
    );
    println!(
        "  {:<19} {:<14} | {:^40} | {:^40} |",
        "", "", "wall clock", "thread CPU time"
    );
    for (name, rows, goal) in &summary {
        for (row, out) in rows
            .iter()
            .zip(["caller buffer", "ORT-allocated", "A/A control"])
        {
            let (d, i) = row.wall;
            let wall = format!(
                "{:>10.3} {:>10.3} {:>+9.3} {:>+7.2}%",
                d / 1e3,
                i / 1e3,
                (i - d) / 1e3,
                (i / d - 1.0) * 100.0
            );
            let (dc, ic) = row.cpu;
            let pc = row.cpu_paired;
            let cpu = format!(
                "{:>10.3} {:>10.3} {:>+9.3} {:>+7.3}%",
                dc / 1e3,
                ic / 1e3,
                pc / 1e3,
                pc / dc * 100.0
            );
            let verdict = if out == "A/A control" {
                "noise floor: direct vs a 2nd direct session".to_string()
            } else {
                match goal {
                    Goal::Us(g) => {
                        format!("< {g} us: {}", if pc / 1e3 < *g { "met" } else { "MISSED" })
                    }
                    Goal::Percent(g) => format!(
                        "< {g} %: {}",
                        if pc / dc * 100.0 < *g {
                            "met"
                        } else {
                            "MISSED"
                        }
                    ),
                }
            };
            println!(
                "  {:<19} {:<14} | {} | {} | {}",
                name, out, wall, cpu, verdict
            );
        }
    }
}

enum Goal {
    Us(f64),
    Percent(f64),
}
