//! The environment: one per process, log callback, global thread pools. One test function (run in order) because
//! the environment is process-wide.

mod ort_support;

use std::sync::{Arc, Mutex};

use ipuflow::runtime::{
    Environment, GlobalThreadPools, LogLevel, Session, SessionOptions, TensorRef,
};
use ipuflow::ErrorKind;
use ort_support::*;

#[test]
fn environment_lifecycle_logging_and_thread_pools() {
    runtime();

    // 1. A log callback at verbose level sees ORT's messages of a session creation.
    let seen: Arc<Mutex<Vec<(LogLevel, String)>>> = Arc::default();
    let env = {
        let seen = seen.clone();
        Environment::builder()
            .log_level(LogLevel::Verbose)
            .log_id("env-test")
            .log_callback(move |r| seen.lock().unwrap().push((r.level, r.message.to_string())))
            .build()
            .unwrap()
    };
    assert_eq!(env.log_level(), LogLevel::Verbose);
    // Only one environment per process.
    let e = Environment::builder().build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{}", e.message());
    // Sessions without an explicit environment share it.
    assert!(Environment::current().is_some());
    let s = Session::from_bytes(&add_model(), &SessionOptions::default()).unwrap();
    let x = [1.0f32; 4];
    s.run(&[
        ("x", TensorRef::from_slice(&[1, 4], &x)),
        ("y", TensorRef::from_slice(&[1, 4], &x)),
    ])
    .unwrap();
    {
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty(), "the callback received ORT's log messages");
        assert!(seen.iter().any(|(l, _)| *l <= LogLevel::Info));
    }
    // The session keeps the environment alive after the handle is dropped.
    drop(env);
    assert!(Environment::current().is_some());
    s.run(&[
        ("x", TensorRef::from_slice(&[1, 4], &x)),
        ("y", TensorRef::from_slice(&[1, 4], &x)),
    ])
    .unwrap();
    drop(s);
    assert!(
        Environment::current().is_none(),
        "released with its last session"
    );
    let n = seen.lock().unwrap().len();

    // 2. A new environment with global thread pools; the old callback is gone.
    let env = Environment::builder()
        .log_level(LogLevel::Warning)
        .global_thread_pools(GlobalThreadPools {
            intra_op_threads: 2,
            inter_op_threads: 1,
            allow_spinning: Some(false),
            denormal_as_zero: true,
        })
        .build()
        .unwrap();
    assert!(env.has_global_thread_pools());
    let s = Session::from_bytes_in(&env, &add_model(), &SessionOptions::default()).unwrap();
    let out = s
        .run(&[
            ("x", TensorRef::from_slice(&[1, 4], &x)),
            ("y", TensorRef::from_slice(&[1, 4], &x)),
        ])
        .unwrap();
    assert_eq!(out[0].as_slice::<f32>().unwrap(), &[2.0; 4]);
    // Per-session thread counts conflict with global pools.
    let e = Session::from_bytes_in(
        &env,
        &add_model(),
        &SessionOptions {
            intra_op_threads: Some(2),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{}", e.message());
    drop(out);
    drop(s);
    drop(env);
    assert_eq!(
        seen.lock().unwrap().len(),
        n,
        "the first environment's callback is no longer called"
    );

    // 3. A default environment is created on demand and released with its sessions.
    assert!(Environment::current().is_none());
    let s = Session::from_bytes(&add_model(), &SessionOptions::default()).unwrap();
    assert_eq!(
        Environment::current().unwrap().log_level(),
        LogLevel::Warning
    );
    drop(s);
    assert!(Environment::current().is_none());
}
