//! The `ipuflow` command: the library's flow from a terminal.
//!
//! Exit codes: 0 success, 1 the user's input is wrong (a file, an option), 2 bad command-line usage (clap),
//! 3 an internal error of ipuflow.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ipuflow::onnx::{Dim, Model, SaveOptions};
use ipuflow::{Error, ErrorKind};

#[derive(Parser)]
#[command(name = "ipuflow", version, about = "Quantize ONNX models and run them on Ryzen AI NPUs, no Python.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a model's interface, opsets, producer and op statistics.
    Inspect {
        /// The ONNX model file.
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Decode a model and write it back (atomically), checking that nothing is lost.
    Roundtrip {
        /// The ONNX model file.
        model: PathBuf,
        /// Where to write the re-encoded model.
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn dims(shape: &Option<Vec<Dim>>) -> String {
    match shape {
        None => "(unknown rank)".to_string(),
        Some(s) => {
            let parts: Vec<String> = s
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => n.to_string(),
                    Dim::Symbolic(name) => name.clone(),
                    Dim::Unknown => "?".to_string(),
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

fn inspect(path: &PathBuf, json: bool) -> Result<(), Error> {
    let model = Model::load_file(path)?;
    let s = model.summary();
    if json {
        println!("{}", s.to_json());
        return Ok(());
    }
    println!("model     {}", path.display());
    println!("producer  {} {}", s.producer_name, s.producer_version);
    println!("ir        {}", s.ir_version);
    let opsets: Vec<String> =
        s.opsets.iter().map(|(d, v)| format!("{}:{v}", if d.is_empty() { "ai.onnx" } else { d })).collect();
    println!("opsets    {}", opsets.join(", "));
    for v in &s.inputs {
        println!("input     {} {} {}", v.name, ipuflow::onnx::element_type_name(v.elem_type), dims(&v.shape));
    }
    for v in &s.outputs {
        println!("output    {} {} {}", v.name, ipuflow::onnx::element_type_name(v.elem_type), dims(&v.shape));
    }
    println!("nodes     {}", s.node_count);
    println!("weights   {} initializers, {:.2} MB", s.initializer_count, s.initializer_bytes as f64 / 1e6);
    let ops: Vec<String> = s.op_histogram.iter().map(|(op, n)| format!("{op}×{n}")).collect();
    println!("ops       {}", ops.join(" "));
    Ok(())
}

fn roundtrip(path: &PathBuf, output: &PathBuf) -> Result<(), Error> {
    let original = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let model = Model::from_bytes(&original, path.parent())?;
    model.save(output, &SaveOptions::default())?;
    let written = std::fs::read(output).map_err(|e| Error::io("read", output, e))?;
    let again = Model::from_bytes(&written, output.parent())?;
    let verdict = if written == original {
        "identical bytes"
    } else if again.proto() == model.proto() {
        "field-for-field equal (the input was not canonically encoded)"
    } else {
        return Err(Error::internal(format!("re-encoded '{}' differs from '{}'", output.display(), path.display())));
    };
    println!("{} -> {}: {} ({} bytes)", path.display(), output.display(), verdict, written.len());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Inspect { model, json } => inspect(model, *json),
        Command::Roundtrip { model, output } => roundtrip(model, output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipuflow: error: {e}");
            if e.kind() == ErrorKind::Internal {
                ExitCode::from(3)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
