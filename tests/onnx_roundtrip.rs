//! Lossless round trip of the ONNX backend test suite (and the real models of ../shared/models).
//!
//! For every `.onnx` file: decode -> encode must give the same bytes; where it does not, the re-encoded bytes must
//! decode to an equal message (counted as "non-canonical"). The test data `.pb` files are checked the same way as
//! TensorProto (or SequenceProto/MapProto/OptionalProto, following the model's input/output type).
//! Files of the backend suites must be byte-identical (protobuf wrote them canonically); the real models may be
//! non-canonical (other writers), as long as they decode equal.
//! Every model also goes through `Model::from_bytes` and `Model::to_bytes`.
//!
//! The data come from `scripts/fetch_onnx_testdata.sh`, which writes them and a manifest with the number of files of
//! each suite to `$IPUFLOW_CACHE/onnx-testdata` (default `$HOME/.cache/ipuflow`); the test fails if it checked fewer
//! files than the manifest lists.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use ipuflow::onnx::proto::{
    type_proto, MapProto, ModelProto, OptionalProto, SequenceProto, TensorProto, TypeProto,
};
use ipuflow::onnx::Model;
use prost::Message;

#[derive(Default, Debug)]
struct Counts {
    models: usize,
    models_noncanonical: usize,
    pb: usize,
    pb_noncanonical: usize,
}

/// Prints the first few non-canonical files (all of them would flood the output if the schema broke).
fn note_noncanonical(path: &Path) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SHOWN: AtomicUsize = AtomicUsize::new(0);
    if SHOWN.fetch_add(1, Ordering::Relaxed) < 20 {
        eprintln!(
            "non-canonical (equal after re-decoding): {}",
            path.display()
        );
    }
}

#[derive(PartialEq, Debug)]
enum Outcome {
    Identical,
    NonCanonical,
}

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IPUFLOW_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("neither IPUFLOW_CACHE nor HOME is set");
    Path::new(&home).join(".cache").join("ipuflow")
}

/// decode -> encode: identical bytes, or an equal message after a second decode.
fn roundtrip<M: Message + Default + PartialEq + Debug>(bytes: &[u8]) -> Result<Outcome, String> {
    let m = M::decode(bytes).map_err(|e| format!("decode failed: {e}"))?;
    let out = m.encode_to_vec();
    if out == bytes {
        return Ok(Outcome::Identical);
    }
    let m2 = M::decode(&*out).map_err(|e| format!("re-encoded bytes do not decode: {e}"))?;
    // PartialEq is field-for-field; NaN floats compare unequal to themselves, so fall back to the (bit-exact)
    // encodings of both decoded messages.
    if m2 == m || m2.encode_to_vec() == out {
        Ok(Outcome::NonCanonical)
    } else {
        Err(format!(
            "re-encoded message differs ({} bytes in, {} out)",
            bytes.len(),
            out.len()
        ))
    }
}

fn check_model(path: &Path, counts: &mut Counts, failures: &mut Vec<String>) -> Option<ModelProto> {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    counts.models += 1;
    match roundtrip::<ModelProto>(&bytes) {
        Ok(Outcome::Identical) => {}
        Ok(Outcome::NonCanonical) => {
            counts.models_noncanonical += 1;
            note_noncanonical(path);
        }
        Err(e) => failures.push(format!("{}: {e}", path.display())),
    }
    match Model::from_bytes(&bytes, path.parent()) {
        Ok(model) => {
            let proto = ModelProto::decode(&*bytes).ok()?;
            match model.to_bytes() {
                Ok(out) if out == proto.encode_to_vec() => {}
                Ok(_) => failures.push(format!(
                    "{}: Model::to_bytes differs from the proto's encoding",
                    path.display()
                )),
                Err(e) => failures.push(format!("{}: Model::to_bytes failed: {e}", path.display())),
            }
            Some(proto)
        }
        Err(e) => {
            failures.push(format!("{}: Model::from_bytes failed: {e}", path.display()));
            None
        }
    }
}

/// The type of graph input/output `index` if the file is named `input_K.pb`/`output_K.pb` or `*_output_K.pb`.
fn value_type<'a>(model: Option<&'a ModelProto>, file_name: &str) -> Option<&'a TypeProto> {
    let graph = model?.graph.as_ref()?;
    let stem = file_name.strip_suffix(".pb")?;
    let (list, index) = if let Some(pos) = stem.rfind("input_") {
        (&graph.input, &stem[pos + 6..])
    } else if let Some(pos) = stem.rfind("output_") {
        (&graph.output, &stem[pos + 7..])
    } else {
        return None;
    };
    list.get(index.parse::<usize>().ok()?)?.r#type.as_ref()
}

fn check_pb(
    path: &Path,
    model: Option<&ModelProto>,
    counts: &mut Counts,
    failures: &mut Vec<String>,
) {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy();
    let outcome = match value_type(model, &name).and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::SequenceType(_)) => roundtrip::<SequenceProto>(&bytes),
        Some(type_proto::Value::MapType(_)) => roundtrip::<MapProto>(&bytes),
        Some(type_proto::Value::OptionalType(_)) => roundtrip::<OptionalProto>(&bytes),
        _ => roundtrip::<TensorProto>(&bytes),
    };
    counts.pb += 1;
    match outcome {
        Ok(Outcome::Identical) => {}
        Ok(Outcome::NonCanonical) => {
            counts.pb_noncanonical += 1;
            note_noncanonical(path);
        }
        Err(e) => failures.push(format!("{}: {e}", path.display())),
    }
}

fn files_with(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_with(&p, ext, out);
        } else if p.extension().is_some_and(|e| e == ext) {
            out.push(p);
        }
    }
}

/// Checks one suite directory: every .onnx, then every .pb with the model it belongs to.
fn check_suite(dir: &Path, counts: &mut Counts, failures: &mut Vec<String>) {
    let mut models = Vec::new();
    files_with(dir, "onnx", &mut models);
    let mut decoded: BTreeMap<PathBuf, ModelProto> = BTreeMap::new();
    for m in &models {
        if let Some(p) = check_model(m, counts, failures) {
            decoded.insert(m.clone(), p);
        }
    }
    let mut pbs = Vec::new();
    files_with(dir, "pb", &mut pbs);
    for pb in &pbs {
        // node/<case>/test_data_set_0/input_0.pb -> node/<case>/model.onnx;
        // light/light_x_output_0.pb -> light/light_x.onnx.
        let parent = pb.parent().unwrap();
        let name = pb.file_name().unwrap().to_string_lossy();
        let owner = if parent
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
        {
            parent.parent().unwrap().join("model.onnx")
        } else {
            let stem = name
                .rsplit_once("_output_")
                .or_else(|| name.rsplit_once("_input_"))
                .map_or("", |(s, _)| s);
            parent.join(format!("{stem}.onnx"))
        };
        check_pb(pb, decoded.get(&owner), counts, failures);
    }
}

#[test]
fn onnx_backend_suite_round_trips_losslessly() {
    let root = cache_dir().join("onnx-testdata");
    let manifest_path = root.join("manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap_or_else(|e| {
        panic!(
            "the ONNX backend test data are missing ({}: {e}). Run scripts/fetch_onnx_testdata.sh to create them \
             (set IPUFLOW_CACHE to use another cache directory).",
            manifest_path.display()
        )
    });
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest).expect("manifest.json is not valid JSON");
    let suites = manifest["suites"]
        .as_object()
        .expect("manifest.json has no 'suites' object");
    assert!(!suites.is_empty(), "manifest.json lists no suites");

    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut short = Vec::new();
    let mut total = Counts::default();
    let mut suite_noncanonical = 0;
    println!(
        "ONNX backend test data (onnx {}), {}",
        manifest["onnx_version"],
        root.display()
    );
    for (suite, expected) in suites {
        let mut counts = Counts::default();
        check_suite(&root.join(suite), &mut counts, &mut failures);
        println!(
            "  {suite:<18} models: {:>5} ({} non-canonical)   pb: {:>5} ({} non-canonical)",
            counts.models, counts.models_noncanonical, counts.pb, counts.pb_noncanonical
        );
        let want_models = expected["models"].as_u64().unwrap_or(0) as usize;
        let want_pb = expected["pb"].as_u64().unwrap_or(0) as usize;
        if counts.models < want_models || counts.pb < want_pb {
            short.push(format!(
                "{suite}: checked {} models and {} pb files, the manifest lists {want_models} and {want_pb}",
                counts.models, counts.pb
            ));
        }
        suite_noncanonical += counts.models_noncanonical + counts.pb_noncanonical;
        total.models += counts.models;
        total.models_noncanonical += counts.models_noncanonical;
        total.pb += counts.pb;
        total.pb_noncanonical += counts.pb_noncanonical;
    }

    // The real models (optional: ../shared may be absent on other machines).
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
    if shared.is_dir() {
        let mut counts = Counts::default();
        let mut models: Vec<_> = std::fs::read_dir(&shared)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
            .collect();
        models.sort();
        for m in &models {
            check_model(m, &mut counts, &mut failures);
        }
        println!(
            "  {:<18} models: {:>5} ({} non-canonical)",
            "shared/models", counts.models, counts.models_noncanonical
        );
        total.models += counts.models;
        total.models_noncanonical += counts.models_noncanonical;
    } else {
        common::missing(format_args!(
            "shared/models: {} is not there",
            shared.display()
        ));
    }
    println!(
        "  {:<18} models: {:>5} ({} non-canonical)   pb: {:>5} ({} non-canonical)   in {:.1?}",
        "total",
        total.models,
        total.models_noncanonical,
        total.pb,
        total.pb_noncanonical,
        started.elapsed()
    );

    assert!(
        failures.is_empty(),
        "{} files do not round-trip:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The suites were serialized by protobuf itself (onnx's Python API), which writes canonical bytes; prost writes
    // the same canonical form, so a difference there means the schema deviates from onnx.proto (a field packed that
    // should not be, a wrong field number or type...), even when the message still decodes equal.
    assert!(
        suite_noncanonical == 0,
        "{suite_noncanonical} backend-suite files re-encode to different bytes (see the list above): \
         src/onnx/proto/onnx.rs (tools/protogen) deviates from onnx.proto"
    );
    assert!(
        short.is_empty(),
        "fewer files than the manifest lists:\n{}",
        short.join("\n")
    );
}
