//! Hostile paths and files against the one place that opens files and the one place that writes them
//! (src/onnx/fs.rs), through the library and the `ipuflow` command: FIFOs and devices where a file is expected
//! (an error, never a wait or an endless read), external data that escapes the model folder through a symlink
//! (refused as ONNX Runtime 1.32 refuses it), outputs that are a device, a FIFO or an input under another name
//! (refused, nothing replaced), and interrupted or failed writes (nothing left behind).

#![cfg(unix)]

mod ort_support;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use ipuflow::onnx::fs::{open_regular, read_regular, AtomicFile};
use ipuflow::onnx::proto::{
    tensor_proto, GraphProto, ModelProto, StringStringEntryProto, TensorProto,
};
use ipuflow::onnx::{Model, SaveOptions};
use ipuflow::quant::data::read_npy;
use ipuflow::ErrorKind;
use ort_support::cli::{ipuflow, s};

fn tmpdir(name: &str) -> PathBuf {
    ort_support::cli::tmpdir("hostile", name)
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn mkfifo(p: &Path) {
    assert_eq!(
        unsafe { libc::mkfifo(cstr(p).as_ptr(), 0o644) },
        0,
        "mkfifo {p:?}"
    );
}

/// A private character device node (major 1, minor 3: what /dev/null is on Linux), never the real /dev/null.
/// `None` when this user may not create device nodes (not root).
fn mknod_null(p: &Path) -> Option<()> {
    let rc = unsafe { libc::mknod(cstr(p).as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    (rc == 0).then_some(())
}

/// Runs `f` on a thread and fails the test (instead of hanging it) if it does not finish within 20 s.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what}: still blocked after 20 s"))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A model with one float initializer `w` of `n` floats stored externally in `location`, and `y = Identity(w)`.
fn external_model(location: &str, n: usize) -> Vec<u8> {
    let w = TensorProto {
        name: Some("w".into()),
        dims: vec![n as i64],
        data_type: Some(tensor_proto::DataType::Float as i32),
        data_location: Some(tensor_proto::DataLocation::External as i32),
        external_data: vec![
            StringStringEntryProto {
                key: Some("location".into()),
                value: Some(location.into()),
            },
            StringStringEntryProto {
                key: Some("length".into()),
                value: Some((n * 4).to_string()),
            },
        ],
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: Some(8),
        opset_import: vec![ipuflow::onnx::proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("ext".into()),
            node: vec![ort_support::node("Identity", &["w"], &["y"])],
            initializer: vec![w],
            output: vec![ort_support::vi("y", 1, &[ort_support::D::Fixed(n as i64)])],
            ..Default::default()
        }),
        ..Default::default()
    };
    Model::from_proto(proto).to_bytes().unwrap()
}

// ------------------------------------------------------------------------------------------------------------
// Opening

#[test]
fn a_fifo_model_is_an_error_not_a_wait() {
    let dir = tmpdir("fifo-model");
    let p = dir.join("model.onnx");
    mkfifo(&p);
    let q = p.clone();
    let e = within("Model::load_file on a FIFO", move || Model::load_file(&q)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileRead, "{e}");
    assert!(
        e.message().contains("FIFO") && e.message().contains("model.onnx"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_fifo_or_device_as_external_data_is_an_error_not_a_wait() {
    let dir = tmpdir("fifo-data");
    std::fs::write(dir.join("m.onnx"), external_model("w.bin", 4)).unwrap();
    mkfifo(&dir.join("w.bin"));
    let m = dir.join("m.onnx");
    let e = within("loading a model whose data file is a FIFO", move || {
        Model::load_file(&m)
    })
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ExternalData, "{e}");
    assert!(
        e.message().contains("w.bin") && e.message().contains("FIFO"),
        "{e}"
    );
    // A device node (a private /dev/null-like one) is refused the same way.
    std::fs::remove_file(dir.join("w.bin")).unwrap();
    if mknod_null(&dir.join("w.bin")).is_some() {
        let e = Model::load_file(&dir.join("m.onnx")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ExternalData, "{e}");
        assert!(e.message().contains("character device"), "{e}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn calibration_npy_that_is_a_fifo_is_an_error_not_a_wait() {
    let dir = tmpdir("fifo-npy");
    let p = dir.join("000.npy");
    mkfifo(&p);
    let q = p.clone();
    let e = within("read_npy on a FIFO", move || read_npy(&q)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileRead, "{e}");
    assert!(e.message().contains("000.npy"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_zero_device_is_never_read_to_its_end() {
    // A private node with /dev/zero's numbers: reading it "to the end" never ends (and grows memory ~1 GB/s).
    let dir = tmpdir("zero");
    let p = dir.join("zero.npy");
    let rc = unsafe {
        libc::mknod(
            cstr(&p).as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(1, 5),
        )
    };
    if rc != 0 {
        // Without root the same defect shows with a FIFO (calibration_npy_that_is_a_fifo_...).
        eprintln!(
            "note: cannot create a device node here (not root); the FIFO tests cover the open path"
        );
        return;
    }
    let q = p.clone();
    let e = within("read_regular on a zero device", move || read_regular(&q)).unwrap_err();
    assert!(e.message().contains("character device"), "{e}");
    let q = p.clone();
    let e = within("read_npy on a zero device", move || read_npy(&q)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileRead, "{e}");
    assert!(open_regular(&dir)
        .unwrap_err()
        .message()
        .contains("directory"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn external_data_escaping_the_model_folder_through_a_symlink_is_refused() {
    let root = tmpdir("escape");
    let (models, outside) = (root.join("models"), root.join("outside"));
    std::fs::create_dir_all(&models).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let secret: Vec<u8> = (0..16u8).collect();
    std::fs::write(outside.join("secret.bin"), &secret).unwrap();

    // A file symlink pointing out of the folder.
    std::fs::write(models.join("m.onnx"), external_model("w.bin", 4)).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.bin"), models.join("w.bin")).unwrap();
    let e = Model::load_file(&models.join("m.onnx")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PathRefused, "{e}");
    assert!(
        e.message().contains("escapes model directory") && e.message().contains("w.bin"),
        "{e}"
    );
    // The same through bytes with a base directory (the C ABI's model-from-bytes path).
    let bytes = std::fs::read(models.join("m.onnx")).unwrap();
    let e = Model::from_bytes(&bytes, Some(&models)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PathRefused, "{e}");

    // A directory symlink on the way out.
    std::fs::write(models.join("m2.onnx"), external_model("sub/secret.bin", 4)).unwrap();
    std::os::unix::fs::symlink(&outside, models.join("sub")).unwrap();
    let e = Model::load_file(&models.join("m2.onnx")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PathRefused, "{e}");

    // A symlink that stays inside the folder is fine, and the model is loaded through a symlinked folder too.
    std::fs::write(models.join("real.bin"), &secret).unwrap();
    std::fs::write(models.join("m3.onnx"), external_model("inside.bin", 4)).unwrap();
    std::os::unix::fs::symlink("real.bin", models.join("inside.bin")).unwrap();
    std::os::unix::fs::symlink(&models, root.join("link-to-models")).unwrap();
    for p in [models.join("m3.onnx"), root.join("link-to-models/m3.onnx")] {
        let m = Model::load_file(&p).unwrap();
        let w = &m.proto().graph.as_ref().unwrap().initializer[0];
        assert_eq!(w.raw_data.as_deref(), Some(&secret[..]));
    }
    let _ = std::fs::remove_dir_all(root);
}

// ------------------------------------------------------------------------------------------------------------
// Writing

fn small_model() -> Model {
    Model::from_bytes(&ort_support::add_model(), None).unwrap()
}

#[test]
fn saving_over_a_fifo_or_a_device_is_refused_and_leaves_it_there() {
    let dir = tmpdir("target");
    let fifo = dir.join("out.onnx");
    mkfifo(&fifo);
    let e = small_model()
        .save(&fifo, &SaveOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FileWrite, "{e}");
    assert!(
        e.message().contains("FIFO") && e.message().contains("out.onnx"),
        "{e}"
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let node = dir.join("null");
    if mknod_null(&node).is_some() {
        let e = small_model()
            .save(&node, &SaveOptions::default())
            .unwrap_err();
        assert!(e.message().contains("character device"), "{e}");
        assert!(std::fs::symlink_metadata(&node)
            .unwrap()
            .file_type()
            .is_char_device());
        // A symlink to the device is the device.
        std::os::unix::fs::symlink(&node, dir.join("link.onnx")).unwrap();
        small_model()
            .save(&dir.join("link.onnx"), &SaveOptions::default())
            .unwrap_err();
        assert!(std::fs::symlink_metadata(&node)
            .unwrap()
            .file_type()
            .is_char_device());
    } else {
        eprintln!("note: not root: the device-node case is not run (the FIFO case is)");
    }
    let mut left = entries(&dir);
    left.retain(|n| !["out.onnx", "null", "link.onnx"].contains(&n.as_str()));
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unfinished_write_has_no_name_on_linux_so_sigkill_strands_nothing() {
    let dir = tmpdir("unnamed");
    let dest = dir.join("out.onnx");
    let mut f = AtomicFile::create(&dest).unwrap();
    f.write_all(&[7u8; 4096]).unwrap();
    f.sync().unwrap();
    if cfg!(target_os = "linux") {
        assert!(
            entries(&dir).is_empty(),
            "visible while writing: {:?}",
            entries(&dir)
        );
    }
    f.commit().unwrap();
    assert_eq!(entries(&dir), ["out.onnx"]);
    assert_eq!(std::fs::read(&dest).unwrap(), [7u8; 4096]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_temp_file_stranded_by_sigkill_is_removed_by_the_next_write() {
    let dir = tmpdir("stale");
    // A process that has exited: its pid is free (reuse within this test is not a concern).
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.join(format!(".out.onnx.ipuflow-{dead}-0.tmp"));
    let fresh = dir.join(format!(".out.onnx.ipuflow-{dead}-1.tmp"));
    let live = dir.join(format!(".out.onnx.ipuflow-{}-9.tmp", std::process::id()));
    let other = dir.join(format!(".other.onnx.ipuflow-{dead}-0.tmp"));
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in [&stale, &fresh, &live, &other] {
        std::fs::write(p, b"partial").unwrap();
    }
    for p in [&stale, &live, &other] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    small_model()
        .save(&dir.join("out.onnx"), &SaveOptions::default())
        .unwrap();
    let left = entries(&dir);
    assert!(
        !left.contains(&stale.file_name().unwrap().to_string_lossy().into_owned()),
        "{left:?}"
    );
    // Too recent, our own process, another destination: kept.
    assert_eq!(left.len(), 4, "{left:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_panic_or_a_stop_while_saving_leaves_nothing_and_the_old_file_intact() {
    let dir = tmpdir("stop");
    let dest = dir.join("out.onnx");
    std::fs::write(&dest, b"old").unwrap();
    let d = dest.clone();
    let r = std::panic::catch_unwind(move || {
        let mut f = AtomicFile::create(&d).unwrap();
        f.write_all(b"new").unwrap();
        panic!("a bug while writing");
    });
    assert!(r.is_err());
    assert_eq!(entries(&dir), ["out.onnx"]);
    let e = small_model()
        .save_cancellable(&dest, &SaveOptions::default(), &|| true)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert_eq!(entries(&dir), ["out.onnx"]);
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    let _ = std::fs::remove_dir_all(dir);
}

// ------------------------------------------------------------------------------------------------------------
// The command line

/// Runs, checks the exit code and that standard error says `needle`.
fn expect(args: &[&str], code: i32, needle: &str) -> Output {
    let o = ort_support::cli::expect(args, code);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(needle),
        "ipuflow {args:?}: no '{needle}' in:\n{err}"
    );
    o
}

#[test]
fn cli_refuses_to_overwrite_an_input_named_differently() {
    let dir = tmpdir("cli-same");
    let model = dir.join("m.onnx");
    let bytes = ort_support::add_model();
    std::fs::write(&model, &bytes).unwrap();
    std::os::unix::fs::symlink("m.onnx", dir.join("alias.onnx")).unwrap();
    std::fs::hard_link(&model, dir.join("hard.onnx")).unwrap();
    let calib = dir.join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    let dotted = format!("{}/./m.onnx", dir.display());
    for out in [
        s(&dir.join("alias.onnx")),
        s(&dir.join("hard.onnx")),
        dotted.as_str(),
    ] {
        expect(
            &[
                "quantize",
                s(&model),
                "-o",
                out,
                "--preset",
                "cpu",
                "--calib",
                s(&calib),
            ],
            1,
            "the same file",
        );
        expect(&["roundtrip", s(&model), "-o", out], 1, "the same file");
    }
    // --report naming the input model or the output.
    let out = dir.join("q.onnx");
    expect(
        &[
            "quantize",
            s(&model),
            "-o",
            s(&out),
            "--preset",
            "cpu",
            "--calib",
            s(&calib),
            "--report",
            s(&dir.join("alias.onnx")),
        ],
        1,
        "--report",
    );
    std::fs::write(&out, b"previous output").unwrap();
    std::os::unix::fs::symlink("q.onnx", dir.join("q-link.json")).unwrap();
    expect(
        &[
            "quantize",
            s(&model),
            "-o",
            s(&out),
            "--preset",
            "cpu",
            "--calib",
            s(&calib),
            "--report",
            s(&dir.join("q-link.json")),
        ],
        1,
        "the same file",
    );
    assert_eq!(
        std::fs::read(&model).unwrap(),
        bytes,
        "the input model was changed"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cli_refuses_to_overwrite_the_inputs_external_data() {
    let dir = tmpdir("cli-data");
    std::fs::write(dir.join("m.onnx"), external_model("m.onnx.data", 4)).unwrap();
    std::fs::write(dir.join("m.onnx.data"), [0u8; 16]).unwrap();
    expect(
        &[
            "roundtrip",
            s(&dir.join("m.onnx")),
            "-o",
            s(&dir.join("m.onnx.data")),
        ],
        1,
        "external data file of the input model",
    );
    assert_eq!(std::fs::read(dir.join("m.onnx.data")).unwrap(), [0u8; 16]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cli_roundtrip_of_a_relative_model_path_with_external_data() {
    // `m.onnx` has the parent "": external data must resolve against the current directory.
    let dir = tmpdir("cli-relative");
    std::fs::write(dir.join("m.onnx"), external_model("w.bin", 4)).unwrap();
    std::fs::write(dir.join("w.bin"), [0u8; 16]).unwrap();
    let o = ipuflow(&["roundtrip", "m.onnx", "-o", "copy.onnx"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(dir.join("copy.onnx").is_file());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cli_fifo_model_and_fifo_output_are_errors() {
    let dir = tmpdir("cli-fifo");
    let fifo = dir.join("pipe.onnx");
    mkfifo(&fifo);
    let model = dir.join("m.onnx");
    std::fs::write(&model, ort_support::add_model()).unwrap();
    let f = fifo.clone();
    within("ipuflow inspect FIFO", move || {
        expect(&["inspect", s(&f)], 1, "FIFO");
    });
    let f = fifo.clone();
    within("ipuflow roundtrip FIFO", move || {
        expect(
            &["roundtrip", s(&f), "-o", "/nonexistent/x.onnx"],
            1,
            "FIFO",
        );
    });
    let (f, m) = (fifo.clone(), model.clone());
    within("ipuflow roundtrip -o FIFO", move || {
        expect(&["roundtrip", s(&m), "-o", s(&f)], 1, "FIFO");
    });
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(entries(&dir), ["m.onnx", "pipe.onnx"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cli_outputs_that_are_devices_or_fifos_are_refused_before_any_work() {
    let dir = tmpdir("cli-node");
    let model = dir.join("m.onnx");
    std::fs::write(&model, ort_support::add_model()).unwrap();
    let calib = dir.join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    let fifo = dir.join("report.json");
    mkfifo(&fifo);
    let out = dir.join("q.onnx");
    // Refused before calibrating: the (empty) calibration folder would be the error otherwise.
    expect(
        &[
            "quantize",
            s(&model),
            "-o",
            s(&out),
            "--preset",
            "cpu",
            "--calib",
            s(&calib),
            "--report",
            s(&fifo),
        ],
        1,
        "FIFO",
    );
    let node = dir.join("null.onnx");
    if mknod_null(&node).is_some() {
        expect(
            &["roundtrip", s(&model), "-o", s(&node)],
            1,
            "character device",
        );
        expect(
            &[
                "quantize",
                s(&model),
                "-o",
                s(&node),
                "--preset",
                "cpu",
                "--calib",
                s(&calib),
            ],
            1,
            "character device",
        );
        assert!(std::fs::symlink_metadata(&node)
            .unwrap()
            .file_type()
            .is_char_device());
    } else {
        eprintln!("note: not root: the device-node case is not run (the FIFO case is)");
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// One Ctrl-C (or a SIGTERM) during `roundtrip`: exit 130 and no output file, no temporary file.
#[test]
fn cli_one_ctrl_c_or_sigterm_during_roundtrip_exits_130_and_leaves_no_file() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tmpdir("cli-sigint");
    let model = dir.join("big.onnx");
    // 96 MB of weights: reading, decoding, encoding and writing them takes long enough to be interrupted.
    let mut proto = ModelProto::default();
    prost::Message::merge(&mut proto, &external_model("unused", 24 << 20)[..]).unwrap();
    let w = &mut proto.graph.as_mut().unwrap().initializer[0];
    w.external_data.clear();
    w.data_location = None;
    w.raw_data = Some(vec![1u8; 96 << 20]);
    let bytes = Model::from_proto(proto).to_bytes().unwrap();
    std::fs::write(&model, &bytes).unwrap();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let out_dir = dir.join(format!("out-{signal}"));
        std::fs::create_dir_all(&out_dir).unwrap();
        let mut child = ipuflow(&["roundtrip", s(&model), "-o", s(&out_dir.join("copy.onnx"))])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert!(line.contains("reading"), "first stderr line: {line}");
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        assert_eq!(
            status.code(),
            Some(130),
            "signal {signal}; stderr:\n{line}{rest}"
        );
        assert!(rest.contains("cancelled"), "{rest}");
        assert!(
            entries(&out_dir).is_empty(),
            "left behind: {:?}",
            entries(&out_dir)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
