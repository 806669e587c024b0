//! Session creation is cancellable: a token of the session options, cancelled from another thread, makes the
//! creation of a real model (EfficientNet-Lite0 from ../shared) return `Cancelled` and no session. With ONNX
//! Runtime 1.32 (C API >= 22) ONNX Runtime's own load cancellation flag stops it; the oldest supported runtime
//! (1.19, from the cache of scripts/fetch_ort.sh) has no such flag, and ipuflow's phase checks must still return
//! `Cancelled` (that case runs in a child process, since a process loads one runtime).

mod ort_support;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipuflow::runtime::{Session, SessionOptions, LOAD_CANCEL_API_VERSION};
use ipuflow::ErrorKind;
use ort_support::*;

/// The oldest runtime ipuflow supports, as scripts/fetch_ort.sh caches it.
fn oldest_ort() -> Option<PathBuf> {
    let p = common::cache_dir().join("onnxruntime-1.19.0/linux-x64/libonnxruntime.so.1.19.0");
    if cfg!(target_os = "linux") && p.exists() {
        Some(p)
    } else {
        common::missing(format_args!(
            "{} (ONNX Runtime 1.19.0: scripts/fetch_ort.sh)",
            p.display()
        ));
        None
    }
}

#[test]
fn a_cancelled_token_refuses_creation_until_reset() {
    runtime();
    let Some(model) = shared_model("efficientnet-lite0.onnx") else {
        return;
    };
    let mut opts = SessionOptions::default();
    let token = opts.load_cancel();
    token.cancel();
    assert!(token.is_cancelled());
    let e = Session::from_file(&model, &opts).expect_err("a cancelled creation");
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert!(e.message().contains("cancelled"), "{e}");
    // A clone of the options shares the token.
    let clone = opts.clone();
    let e = Session::from_file(&model, &clone).expect_err("a clone is cancelled too");
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    token.reset();
    Session::from_file(&model, &opts).expect("after reset the creation proceeds");
    // Options without a token are never cancelled by another options' token.
    Session::from_file(&model, &SessionOptions::default()).expect("plain options");
}

/// Creates a session from `model` while another thread cancels it `delay` after the creation started. Returns the
/// result and, when the creation returned after the cancel, how long it took to return after the cancel.
fn create_while_cancelling(
    model: &Path,
    delay: Duration,
) -> (ipuflow::Result<Session>, Option<Duration>) {
    let mut opts = SessionOptions::default();
    let token = opts.load_cancel();
    let (tx, rx) = mpsc::channel::<Instant>();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(delay);
        token.cancel();
        tx.send(Instant::now()).unwrap();
    });
    let r = Session::from_file(model, &opts);
    let returned = Instant::now();
    canceller.join().unwrap();
    let cancelled_at = rx.recv().unwrap();
    (r, returned.checked_duration_since(cancelled_at))
}

/// The body shared by the current runtime (in-process) and the oldest one (child process).
fn cancel_in_progress(expect_ort_flag: bool) {
    let rt = runtime();
    let Some(model) = shared_model("efficientnet-lite0.onnx") else {
        return;
    };
    // How long a whole creation takes here (the cancel lands at a quarter of it).
    let t0 = Instant::now();
    Session::from_file(&model, &SessionOptions::default()).expect("a plain creation");
    let full = t0.elapsed();
    let mut landed = 0;
    for attempt in 0..5 {
        let (r, after_cancel) = create_while_cancelling(&model, full / 4);
        match (r, after_cancel) {
            (Err(e), _) => {
                assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
                let by_ort = e.message().contains("ORT_MODEL_LOAD_CANCELED");
                eprintln!(
                    "ONNX Runtime {} (C API {}): creation {full:?}; cancelled after {:?}, returned {:?} later, \
                     stopped by {}",
                    rt.version(),
                    rt.api_version(),
                    full / 4,
                    after_cancel.unwrap_or_default(),
                    if by_ort {
                        "ONNX Runtime's load cancellation flag"
                    } else {
                        "ipuflow's phase check"
                    }
                );
                if !expect_ort_flag {
                    assert!(!by_ort, "C API {} has no load cancellation flag", rt.api_version());
                }
                landed += 1;
                break;
            }
            (Ok(_), Some(_)) => panic!(
                "the creation returned a session although it was cancelled before it returned (attempt {attempt})"
            ),
            // The canceller ran only after the creation had returned (a loaded machine): try again.
            (Ok(_), None) => continue,
        }
    }
    assert_eq!(
        landed, 1,
        "no cancel landed during a creation in 5 attempts"
    );
}

#[test]
fn another_thread_cancels_a_creation_in_progress() {
    let rt = runtime();
    cancel_in_progress(rt.api_version() >= LOAD_CANCEL_API_VERSION);
}

/// Run by [`the_oldest_runtime_degrades_to_phase_checks`] in a child process with ONNX Runtime 1.19 loaded.
#[test]
fn child_cancel_with_oldest_runtime() {
    if std::env::var_os("IPUFLOW_TEST_CANCEL_CHILD").is_none() {
        return;
    }
    let rt = runtime();
    assert!(
        rt.api_version() < LOAD_CANCEL_API_VERSION,
        "the child runs the oldest runtime, C API {}",
        rt.api_version()
    );
    cancel_in_progress(false);
    a_cancelled_token_refuses_creation_until_reset();
}

#[test]
fn the_oldest_runtime_degrades_to_phase_checks() {
    let Some(ort) = oldest_ort() else { return };
    if shared_model("efficientnet-lite0.onnx").is_none() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_cancel_with_oldest_runtime", "--exact", "--nocapture"])
        .env("IPUFLOW_TEST_CANCEL_CHILD", "1")
        .env("IPUFLOW_ORT_LIBRARY", &ort)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    assert!(text.contains("ipuflow's phase check"), "{text}");
    eprintln!("{text}");
}
