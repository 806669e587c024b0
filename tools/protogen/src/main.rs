//! protogen INCLUDE_DIR OUT_DIR: compiles ONNX's `onnx/onnx-ml.proto` and `onnx/onnx-data.proto` (found under
//! INCLUDE_DIR, the onnx wheel's site-packages folder) with protox (a pure-Rust protobuf compiler) and writes
//! prost-build's Rust code for package `onnx` to OUT_DIR/onnx.rs. scripts/gen_proto.sh checks the inputs' sha256,
//! runs this, adds the header and formats the result; use that script rather than this program directly.

use std::path::PathBuf;
use std::process::ExitCode;

/// onnx-ml.proto is the ONNX-ML superset of onnx.proto (onnx's own Python package compiles it); onnx-data.proto
/// adds the value messages (SequenceProto, MapProto, OptionalProto) of the backend test data.
const PROTOS: [&str; 2] = ["onnx/onnx-ml.proto", "onnx/onnx-data.proto"];

/// Sub-messages boxed beyond those prost boxes on its own (directly recursive ones): an unboxed optional message is
/// stored inline, so a 2-byte empty AttributeProto on the wire would cost ~1.6 KB in memory (found by fuzzing),
/// letting a small hostile file allocate ~1000x its size. Boxed, the worst case is an empty TensorProto, ~340 bytes.
/// The onnx-data values are boxed for the same reason (they nest each other through repeated fields, which prost
/// does not count as recursion).
const BOXED: [&str; 9] = [
    ".onnx.AttributeProto.t",
    ".onnx.AttributeProto.g",
    ".onnx.AttributeProto.sparse_tensor",
    ".onnx.AttributeProto.tp",
    ".onnx.SparseTensorProto.values",
    ".onnx.SparseTensorProto.indices",
    ".onnx.MapProto.values",
    ".onnx.OptionalProto.sequence_value",
    ".onnx.OptionalProto.map_value",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [include, out] = args.as_slice() else {
        eprintln!("usage: protogen INCLUDE_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    match run(PathBuf::from(include), PathBuf::from(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("protogen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(include: PathBuf, out: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let mut compiler = protox::Compiler::new([&include])?;
    // Source info carries the .proto comments, which become the doc comments of the generated items.
    compiler.include_source_info(true).include_imports(true);
    for proto in PROTOS {
        compiler
            .open_file(proto)
            .map_err(|e| format!("{}: {e}", include.join(proto).display()))?;
    }
    let fds = compiler.file_descriptor_set();

    std::fs::create_dir_all(&out)?;
    let mut config = prost_build::Config::new();
    config.out_dir(&out);
    for path in BOXED {
        config.boxed(path);
    }
    config.compile_fds(fds)?;
    Ok(())
}
