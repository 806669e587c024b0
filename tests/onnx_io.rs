//! Model I/O: external data (save, reload, refused and broken references), atomic saving, malformed files, and the
//! summary of a real model.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use ipuflow::onnx::proto::{
    attribute_proto, tensor_proto, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, SparseTensorProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use ipuflow::onnx::{Dim, ExternalDataOptions, Model, SaveOptions, ValueKind};
use ipuflow::ErrorKind;
use prost::Message;

/// A fresh empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ipuflow-onnx-io-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// File names in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn shared_model(name: &str) -> Option<PathBuf> {
    common::shared(&format!("models/{name}"))
}

fn f32_tensor(name: &str, dims: &[i64], seed: u32) -> TensorProto {
    let n: i64 = dims.iter().product();
    let raw: Vec<u8> = (0..n)
        .flat_map(|i| ((i as f32) * 0.25 + seed as f32).to_le_bytes())
        .collect();
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(tensor_proto::DataType::Float as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn tensor_type(elem: i32, dims: &[Option<i64>]) -> TypeProto {
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: Some(elem),
            shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|d| tensor_shape_proto::Dimension {
                        value: Some(match d {
                            Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                            None => tensor_shape_proto::dimension::Value::DimParam("batch".into()),
                        }),
                        ..Default::default()
                    })
                    .collect(),
            }),
        })),
        ..Default::default()
    }
}

fn value(name: &str, t: TypeProto) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(t),
        ..Default::default()
    }
}

fn node(op: &str, domain: Option<&str>, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        domain: domain.map(Into::into),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A small model with tensors everywhere external data can live: initializers (large and small), a Constant
/// node's tensor attribute, a sparse initializer, and an initializer inside an If subgraph.
fn sample_model() -> ModelProto {
    let mut constant = node("Constant", None, &[], &["c"]);
    constant.attribute.push(AttributeProto {
        name: Some("value".into()),
        r#type: Some(attribute_proto::AttributeType::Tensor as i32),
        t: Some(Box::new(f32_tensor("", &[64], 3))),
        ..Default::default()
    });
    let then_branch = GraphProto {
        name: Some("then".into()),
        initializer: vec![f32_tensor("sub_w", &[32, 8], 4)],
        node: vec![node("Identity", None, &["sub_w"], &["t_out"])],
        output: vec![value("t_out", tensor_type(1, &[Some(32), Some(8)]))],
        ..Default::default()
    };
    let mut if_node = node("If", None, &["cond"], &["y2"]);
    if_node.attribute.push(AttributeProto {
        name: Some("then_branch".into()),
        r#type: Some(attribute_proto::AttributeType::Graph as i32),
        g: Some(Box::new(then_branch.clone())),
        ..Default::default()
    });
    if_node.attribute.push(AttributeProto {
        name: Some("else_branch".into()),
        r#type: Some(attribute_proto::AttributeType::Graph as i32),
        g: Some(Box::new(GraphProto {
            name: Some("else".into()),
            ..then_branch
        })),
        ..Default::default()
    });
    let sparse = SparseTensorProto {
        values: Some(Box::new(f32_tensor("sp", &[40], 5))),
        indices: Some(Box::new(TensorProto {
            name: Some("sp_idx".into()),
            dims: vec![40],
            data_type: Some(tensor_proto::DataType::Int64 as i32),
            int64_data: (0..40).map(|i| i * 3).collect(),
            ..Default::default()
        })),
        dims: vec![200],
    };
    ModelProto {
        ir_version: Some(10),
        producer_name: Some("ipuflow-tests".into()),
        opset_import: vec![
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17),
            },
            OperatorSetIdProto {
                domain: Some("com.microsoft".into()),
                version: Some(1),
            },
        ],
        graph: Some(GraphProto {
            name: Some("sample".into()),
            node: vec![
                node("MatMul", None, &["x", "w"], &["y"]),
                node("Add", None, &["y", "b"], &["z"]),
                node("Add", Some(""), &["z", "c"], &["z2"]),
                node("FusedGemm", Some("com.microsoft"), &["z2", "w"], &["out"]),
                constant,
                if_node,
            ],
            initializer: vec![f32_tensor("w", &[16, 64], 1), f32_tensor("b", &[4], 2)],
            sparse_initializer: vec![sparse],
            // "w" is also listed as an input (old-style exporters): it must not count as a model input.
            input: vec![
                value("x", tensor_type(1, &[None, Some(16)])),
                value("cond", tensor_type(9, &[])),
                value("w", tensor_type(1, &[Some(16), Some(64)])),
            ],
            output: vec![
                value("out", tensor_type(1, &[None, Some(64)])),
                value("y2", TypeProto::default()),
            ],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Every tensor of `m` whose data are external: (name, location, offset, length).
fn external_refs(m: &ModelProto) -> Vec<(String, String, u64, u64)> {
    fn walk(g: &GraphProto, out: &mut Vec<(String, String, u64, u64)>) {
        let mut tensors: Vec<&TensorProto> = g.initializer.iter().collect();
        for s in &g.sparse_initializer {
            tensors.extend(s.values.as_deref().into_iter().chain(s.indices.as_deref()));
        }
        for n in &g.node {
            for a in &n.attribute {
                tensors.extend(a.t.as_deref().into_iter().chain(a.tensors.iter()));
                for sub in a.g.as_deref().into_iter().chain(a.graphs.iter()) {
                    walk(sub, out);
                }
            }
        }
        for t in tensors {
            if t.data_location == Some(tensor_proto::DataLocation::External as i32) {
                let get = |k: &str| {
                    t.external_data
                        .iter()
                        .find(|e| e.key.as_deref() == Some(k))
                        .and_then(|e| e.value.clone())
                        .unwrap_or_default()
                };
                assert!(t.raw_data.is_none(), "external tensor keeps raw_data");
                out.push((
                    t.name.clone().unwrap_or_default(),
                    get("location"),
                    get("offset").parse().unwrap(),
                    get("length").parse().unwrap(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(m.graph.as_ref().unwrap(), &mut out);
    out
}

/// A model whose one initializer "w" (10 floats) lives in `location` at `offset`/`length`.
fn model_with_external(location: &str, offset: Option<u64>, length: Option<u64>) -> Vec<u8> {
    let mut ext = vec![StringStringEntryProto {
        key: Some("location".into()),
        value: Some(location.into()),
    }];
    if let Some(o) = offset {
        ext.push(StringStringEntryProto {
            key: Some("offset".into()),
            value: Some(o.to_string()),
        });
    }
    if let Some(l) = length {
        ext.push(StringStringEntryProto {
            key: Some("length".into()),
            value: Some(l.to_string()),
        });
    }
    let w = TensorProto {
        name: Some("w".into()),
        dims: vec![10],
        data_type: Some(tensor_proto::DataType::Float as i32),
        external_data: ext,
        data_location: Some(tensor_proto::DataLocation::External as i32),
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(10),
        graph: Some(GraphProto {
            name: Some("g".into()),
            initializer: vec![w],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn external_data_save_and_reload() {
    let dir = TempDir::new("ext");
    let original = sample_model();
    let model = Model::from_proto(original.clone());
    let path = dir.join("m.onnx");
    let opts = SaveOptions {
        external_data: Some(ExternalDataOptions {
            location: "m.weights".into(),
            size_threshold: 100,
        }),
    };
    model.save(&path, &opts).unwrap();
    assert_eq!(dir.names(), ["m.onnx", "m.weights"]);

    // What went where: every raw tensor of >= 100 bytes (w: 4096, c: 256, sub_w twice: 1024, sp: 160) is external,
    // b (16 bytes) and the int64_data indices are inline. Offsets are aligned and in file order.
    let saved = ModelProto::decode(&*fs::read(&path).unwrap()).unwrap();
    let refs = external_refs(&saved);
    let mut names: Vec<_> = refs.iter().map(|r| r.0.as_str()).collect();
    names.sort();
    assert_eq!(names, ["", "sp", "sub_w", "sub_w", "w"], "{refs:?}");
    let data_len = fs::metadata(dir.join("m.weights")).unwrap().len();
    for (name, location, offset, length) in &refs {
        assert_eq!(location, "m.weights");
        assert_eq!(offset % 64, 0, "{name} at {offset}");
        if *length >= 4096 {
            assert_eq!(offset % 4096, 0, "{name} at {offset}");
        }
        assert!(offset + length <= data_len);
    }
    assert!(
        fs::metadata(&path).unwrap().len() < 1024,
        "the weights are not in the model file"
    );

    // Reloading inlines everything again: the same message as before saving.
    let loaded = Model::load_file(&path).unwrap();
    assert_eq!(loaded.proto(), &original);
    assert_eq!(loaded.base_dir(), Some(dir.path()));
    // from_bytes resolves against the base dir it is given, and refuses without one.
    let bytes = fs::read(&path).unwrap();
    assert_eq!(
        Model::from_bytes(&bytes, Some(dir.path())).unwrap().proto(),
        &original
    );
    let err = Model::from_bytes(&bytes, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExternalData);
    assert!(
        err.message().contains("m.weights") && err.message().contains("base directory"),
        "{err}"
    );

    // Saving the loaded model over itself (same paths) works: nothing is read from the files any more.
    loaded.save(&path, &opts).unwrap();
    assert_eq!(Model::load_file(&path).unwrap().proto(), &original);
    // And without external data: one self-contained file equal to to_bytes().
    let inline = dir.join("inline.onnx");
    loaded.save(&inline, &SaveOptions::default()).unwrap();
    assert_eq!(fs::read(&inline).unwrap(), loaded.to_bytes().unwrap());
    assert_eq!(fs::read(&inline).unwrap(), original.encode_to_vec());
    assert_eq!(
        dir.names(),
        ["inline.onnx", "m.onnx", "m.weights"],
        "no temporary files left"
    );
}

#[test]
fn external_data_in_a_subdirectory_and_without_qualifying_tensors() {
    let dir = TempDir::new("extsub");
    fs::create_dir(dir.join("data")).unwrap();
    let model = Model::from_proto(sample_model());
    let path = dir.join("m.onnx");
    let opts = |location: &str, size_threshold| SaveOptions {
        external_data: Some(ExternalDataOptions {
            location: location.into(),
            size_threshold,
        }),
    };
    model.save(&path, &opts("data/w.bin", 1000)).unwrap();
    assert!(dir.join("data/w.bin").is_file());
    assert_eq!(Model::load_file(&path).unwrap().proto(), model.proto());
    // A threshold no tensor reaches: no data file at all, everything inline.
    let path2 = dir.join("m2.onnx");
    model.save(&path2, &opts("m2.bin", 1 << 30)).unwrap();
    assert!(!dir.join("m2.bin").exists());
    assert_eq!(fs::read(&path2).unwrap(), model.to_bytes().unwrap());
}

#[test]
fn refused_external_data_locations() {
    let dir = TempDir::new("refuse");
    fs::write(dir.join("w.bin"), [0u8; 40]).unwrap();
    // The control: a good location loads.
    fs::write(
        dir.join("ok.onnx"),
        model_with_external("w.bin", None, None),
    )
    .unwrap();
    Model::load_file(&dir.join("ok.onnx")).unwrap();

    let outside = dir.join("w.bin");
    for location in [
        outside.to_str().unwrap(),
        "/etc/passwd",
        "../w.bin",
        "sub/../../w.bin",
        "..\\w.bin",
    ] {
        let path = dir.join("bad.onnx");
        fs::write(&path, model_with_external(location, None, None)).unwrap();
        let err = Model::load_file(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PathRefused, "{location}: {err}");
        assert!(
            err.message().contains(location) && err.message().contains("'w'"),
            "{err}"
        );
        let err = Model::from_bytes(&fs::read(&path).unwrap(), Some(dir.path())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PathRefused, "{location}: {err}");
    }

    // Saving refuses the same locations before writing anything.
    let model = Model::from_proto(sample_model());
    for location in ["/tmp/ipuflow-w.bin", "../w.bin"] {
        let opts = SaveOptions {
            external_data: Some(ExternalDataOptions {
                location: location.into(),
                size_threshold: 0,
            }),
        };
        let err = model.save(&dir.join("out.onnx"), &opts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PathRefused, "{err}");
    }
    assert!(!Path::new("/tmp/ipuflow-w.bin").exists());
    // The data file cannot be the model file itself.
    let opts = SaveOptions {
        external_data: Some(ExternalDataOptions {
            location: "out.onnx".into(),
            size_threshold: 0,
        }),
    };
    assert_eq!(
        model.save(&dir.join("out.onnx"), &opts).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(dir.names(), ["bad.onnx", "ok.onnx", "w.bin"]);
}

#[test]
fn missing_and_short_external_data() {
    let dir = TempDir::new("short");
    let path = dir.join("m.onnx");

    fs::write(&path, model_with_external("weights.bin", None, None)).unwrap();
    let err = Model::load_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExternalData);
    assert!(
        err.message().contains("'w'")
            && err.message().contains("weights.bin")
            && err.message().contains("does not exist"),
        "{err}"
    );

    // 40 bytes needed at offset 8 of a 30-byte file.
    fs::write(dir.join("weights.bin"), [1u8; 30]).unwrap();
    fs::write(&path, model_with_external("weights.bin", Some(8), Some(40))).unwrap();
    let err = Model::load_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExternalData);
    let msg = err.message();
    assert!(
        msg.contains("'w'")
            && msg.contains("weights.bin")
            && msg.contains("40")
            && msg.contains("30 bytes"),
        "{msg}"
    );

    // Offset past the end, no length.
    fs::write(&path, model_with_external("weights.bin", Some(100), None)).unwrap();
    let err = Model::load_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExternalData);
    assert!(
        err.message().contains("100") && err.message().contains("30 bytes"),
        "{err}"
    );

    // A huge length must be refused from the file size, not attempted as an allocation.
    fs::write(
        &path,
        model_with_external("weights.bin", Some(0), Some(u64::MAX)),
    )
    .unwrap();
    assert_eq!(
        Model::load_file(&path).unwrap_err().kind(),
        ErrorKind::ExternalData
    );

    // In range but not what a float[10] needs.
    fs::write(&path, model_with_external("weights.bin", Some(0), Some(12))).unwrap();
    let err = Model::load_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExternalData);
    assert!(
        err.message().contains("12") && err.message().contains("40"),
        "{err}"
    );

    // Non-numeric offset.
    let mut m = ModelProto::decode(&*model_with_external("weights.bin", None, None)).unwrap();
    m.graph.as_mut().unwrap().initializer[0]
        .external_data
        .push(StringStringEntryProto {
            key: Some("offset".into()),
            value: Some("-4".into()),
        });
    fs::write(&path, m.encode_to_vec()).unwrap();
    assert_eq!(
        Model::load_file(&path).unwrap_err().kind(),
        ErrorKind::ExternalData
    );

    // Exactly right: offset 4, the rest of a 44-byte file.
    let data: Vec<u8> = (0..44u8).collect();
    fs::write(dir.join("weights.bin"), &data).unwrap();
    fs::write(&path, model_with_external("weights.bin", Some(4), None)).unwrap();
    let m = Model::load_file(&path).unwrap();
    let w = &m.proto().graph.as_ref().unwrap().initializer[0];
    assert_eq!(w.raw_data.as_deref(), Some(&data[4..]));
    assert!(w.external_data.is_empty() && w.data_location.is_none());
}

#[test]
fn save_to_an_unwritable_place_fails_cleanly() {
    let dir = TempDir::new("unwritable");
    let model = Model::from_proto(sample_model());

    // The parent "directory" is a file, or does not exist.
    fs::write(dir.join("file"), b"x").unwrap();
    for path in [dir.join("file/m.onnx"), dir.join("missing/m.onnx")] {
        let err = model.save(&path, &SaveOptions::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileWrite, "{err}");
        assert!(err.message().contains("m.onnx"), "{err}");
    }

    // A read-only directory (root ignores permissions, so only where we are not root).
    #[cfg(unix)]
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        let err = model
            .save(&ro.join("m.onnx"), &SaveOptions::default())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileWrite, "{err}");
        assert_eq!(
            fs::read_dir(&ro).unwrap().count(),
            0,
            "nothing written into the read-only directory"
        );
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
    }
    // A file system nobody may create files in, not even root.
    #[cfg(target_os = "linux")]
    if Path::new("/proc/self").is_dir() {
        let err = model
            .save(
                Path::new("/proc/ipuflow-test.onnx"),
                &SaveOptions::default(),
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileWrite, "{err}");
    }

    // The destination is a directory: the temporary file is written, the rename fails, the temporary is removed.
    fs::create_dir(dir.join("taken.onnx")).unwrap();
    let err = model
        .save(&dir.join("taken.onnx"), &SaveOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileWrite, "{err}");
    assert!(dir.join("taken.onnx").is_dir());
    assert_eq!(
        dir.names(),
        ["file", "ro", "taken.onnx"]
            .iter()
            .filter(|n| **n != "ro" || dir.join("ro").exists())
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn failed_save_leaves_the_existing_files_intact() {
    let dir = TempDir::new("intact");
    let path = dir.join("m.onnx");
    fs::write(&path, b"previous model").unwrap();
    // The data file's place is taken by a directory: the data is written to a temporary file, its rename fails.
    fs::create_dir(dir.join("m.data")).unwrap();
    let model = Model::from_proto(sample_model());
    let opts = SaveOptions {
        external_data: Some(ExternalDataOptions {
            location: "m.data".into(),
            size_threshold: 0,
        }),
    };
    let err = model.save(&path, &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileWrite, "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"previous model");
    assert_eq!(dir.names(), ["m.data", "m.onnx"], "no temporary files left");

    // A successful save replaces the file (and keeps its permissions).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    }
    model.save(&path, &SaveOptions::default()).unwrap();
    assert_eq!(fs::read(&path).unwrap(), model.to_bytes().unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }
    assert_eq!(dir.names(), ["m.data", "m.onnx"]);
}

#[test]
fn malformed_files_are_decode_errors() {
    let dir = TempDir::new("malformed");
    let good = sample_model().encode_to_vec();

    let truncated = dir.join("truncated.onnx");
    fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let err = Model::load_file(&truncated).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelDecode, "{err}");
    assert!(err.message().contains("truncated.onnx"), "{err}");
    // Every truncation point is an error or (at a field boundary) a smaller valid model; never a panic.
    for n in 0..good.len() {
        let _ = Model::from_bytes(&good[..n], None);
    }
    let err = Model::from_bytes(&good[..good.len() - 1], None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelDecode, "{err}");

    let garbage = dir.join("garbage.onnx");
    fs::write(&garbage, b"this is not an ONNX model, just some text\n").unwrap();
    let err = Model::load_file(&garbage).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelDecode, "{err}");
    assert!(err.message().contains("garbage.onnx"), "{err}");
    // Pseudo-random bytes.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    assert_eq!(
        Model::from_bytes(&noise, None).unwrap_err().kind(),
        ErrorKind::ModelDecode
    );
    // Well-formed protobuf that is not a model (unknown fields only).
    assert_eq!(
        Model::from_bytes(&[0x98, 0x06, 0x01], None)
            .unwrap_err()
            .kind(),
        ErrorKind::ModelDecode
    );

    let empty = dir.join("empty.onnx");
    fs::write(&empty, b"").unwrap();
    let err = Model::load_file(&empty).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelDecode, "{err}");
    assert!(
        err.message().contains("empty.onnx") && err.message().contains("empty"),
        "{err}"
    );
    assert_eq!(
        Model::from_bytes(&[], None).unwrap_err().kind(),
        ErrorKind::ModelDecode
    );

    let err = Model::load_file(&dir.join("nope.onnx")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileNotFound, "{err}");
    assert!(err.message().contains("nope.onnx"), "{err}");
    assert_eq!(
        Model::load_file(dir.path()).unwrap_err().kind(),
        ErrorKind::FileRead
    );

    // Deeply nested messages hit prost's recursion limit instead of overflowing the stack.
    let mut t = TypeProto::default();
    for _ in 0..200 {
        t = TypeProto {
            value: Some(type_proto::Value::SequenceType(Box::new(
                type_proto::Sequence {
                    elem_type: Some(Box::new(t)),
                },
            ))),
            ..Default::default()
        };
    }
    let deep = ModelProto {
        ir_version: Some(10),
        graph: Some(GraphProto {
            input: vec![value("x", t)],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        Model::from_bytes(&deep.encode_to_vec(), None)
            .unwrap_err()
            .kind(),
        ErrorKind::ModelDecode
    );
}

#[test]
fn summary_of_the_sample_model() {
    let s = Model::from_proto(sample_model()).summary();
    assert_eq!(s.ir_version, 10);
    assert_eq!(s.producer_name, "ipuflow-tests");
    assert_eq!(s.graph_name, "sample");
    assert_eq!(
        s.opsets,
        [(String::new(), 17), ("com.microsoft".to_string(), 1)]
    );
    let inputs: Vec<_> = s.inputs.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(inputs, ["x", "cond"], "initializer 'w' is not an input");
    assert_eq!(s.inputs[0].kind, ValueKind::Tensor);
    assert_eq!(s.inputs[0].elem_type, 1);
    assert_eq!(
        s.inputs[0].shape,
        Some(vec![Dim::Symbolic("batch".into()), Dim::Fixed(16)])
    );
    assert_eq!(
        s.inputs[1].shape,
        Some(vec![]),
        "a scalar has rank 0, not an unknown shape"
    );
    assert_eq!(s.outputs[1].kind, ValueKind::Unknown);
    assert_eq!(s.outputs[1].shape, None);
    assert_eq!(s.node_count, 6);
    let hist: Vec<_> = s
        .op_histogram
        .iter()
        .map(|(op, n)| (op.as_str(), *n))
        .collect();
    assert_eq!(
        hist,
        [
            ("Add", 2),
            ("Constant", 1),
            ("If", 1),
            ("MatMul", 1),
            ("com.microsoft::FusedGemm", 1)
        ]
    );
    assert_eq!(s.initializer_count, 3);
    // w 16*64*4 + b 4*4 + sparse values 40*4 + indices 40*8 (int64_data).
    assert_eq!(s.initializer_bytes, 4096 + 16 + 160 + 320);

    // External (not inlined) tensors count by their length.
    let m = Model::from_proto(
        ModelProto::decode(&*model_with_external("w.bin", Some(0), Some(40))).unwrap(),
    );
    assert_eq!(m.summary().initializer_bytes, 40);
}

#[test]
fn efficientnet_lite0_summary_and_lossless_io() {
    let Some(path) = shared_model("efficientnet-lite0.onnx") else {
        return;
    };
    let model = Model::load_file(&path).unwrap();
    let s = model.summary();
    assert_eq!(s.ir_version, 7);
    assert_eq!(s.producer_name, "pytorch");
    assert_eq!(s.graph_name, "main_graph");
    assert_eq!(s.opsets, [(String::new(), 13)]);
    assert_eq!(s.inputs.len(), 1);
    assert_eq!(s.inputs[0].name, "input");
    assert_eq!(s.inputs[0].kind, ValueKind::Tensor);
    assert_eq!(s.inputs[0].elem_type, 1);
    assert_eq!(
        s.inputs[0].shape,
        Some(vec![
            Dim::Symbolic("N".into()),
            Dim::Fixed(3),
            Dim::Fixed(224),
            Dim::Fixed(224)
        ])
    );
    assert_eq!(s.outputs.len(), 1);
    assert_eq!(s.outputs[0].name, "logits");
    assert_eq!(
        s.outputs[0].shape,
        Some(vec![Dim::Symbolic("N".into()), Dim::Fixed(1000)])
    );
    assert_eq!(s.node_count, 456);
    assert_eq!(s.op_histogram[0], ("Constant".to_string(), 222));
    assert_eq!(s.op_histogram[1], ("Conv".to_string(), 49));
    assert_eq!(s.op_histogram.iter().map(|(_, n)| n).sum::<usize>(), 456);
    assert_eq!(s.initializer_count, 100);
    assert_eq!(s.initializer_bytes, 18_524_000);

    // Lossless: to_bytes gives the file back byte for byte.
    let original = fs::read(&path).unwrap();
    assert_eq!(model.to_bytes().unwrap(), original);

    // Through external data and back.
    let dir = TempDir::new("effnet");
    let out = dir.join("effnet.onnx");
    let opts = SaveOptions {
        external_data: Some(ExternalDataOptions {
            location: "effnet.onnx.data".into(),
            size_threshold: 1024,
        }),
    };
    model.save(&out, &opts).unwrap();
    assert!(fs::metadata(&out).unwrap().len() < 1_000_000);
    let reloaded = Model::load_file(&out).unwrap();
    assert_eq!(reloaded.to_bytes().unwrap(), original);
    assert_eq!(reloaded.summary(), s);
}

#[test]
fn mediapipe_models_summaries() {
    let Some(path) = shared_model("hand-landmark-lite.onnx") else {
        return;
    };
    let s = Model::load_file(&path).unwrap().summary();
    assert_eq!(s.node_count, 97);
    assert_eq!(s.inputs.len(), 1);
    assert_eq!(s.inputs[0].name, "input_1");
    let outputs: Vec<_> = s.outputs.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        outputs,
        ["Identity", "Identity_1", "Identity_2", "Identity_3"]
    );
    assert_eq!(s.initializer_count, 104);
    // Two initializers use typed fields rather than raw_data; their size is counted from type and shape.
    assert_eq!(s.initializer_bytes, 4_046_856);
    let Some(path) = shared_model("blazeface-short-range.onnx") else {
        return;
    };
    let s = Model::load_file(&path).unwrap().summary();
    assert_eq!(
        (s.node_count, s.initializer_count, s.initializer_bytes),
        (94, 87, 406_312)
    );
    assert_eq!(
        s.inputs[0].shape,
        Some(vec![
            Dim::Fixed(1),
            Dim::Fixed(3),
            Dim::Fixed(128),
            Dim::Fixed(128)
        ])
    );
}
