//! `ipuflow roundtrip MODEL -o OUT`: decode a model, write it back atomically, check nothing was lost.

use std::path::PathBuf;

use ipuflow::onnx::fs::{read_regular, refuse_same_file};
use ipuflow::onnx::{Model, SaveOptions};
use ipuflow::Error;

use crate::util::{self, cancelled, cancelled_failure, critical, CliResult, Ctx};

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model file.
    pub model: PathBuf,
    /// Where to write the re-encoded model.
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn main(ctx: &Ctx, a: &Args) -> CliResult {
    let (path, output) = (&a.model, &a.output);
    util::stage_line(&format!("roundtrip: reading '{}'", path.display()));
    let original = read_regular(path)?;
    let model = Model::from_bytes(&original, path.parent())?;
    let output_what = format!("--output '{}'", output.display());
    let mut inputs = vec![(path.as_path(), "the input model")];
    inputs.extend(
        model
            .source_files()
            .iter()
            .map(|p| (p.as_path(), "an external data file of the input model")),
    );
    refuse_same_file(output, &output_what, &inputs)?;
    refuse_same_file(&util::auto_data_file(output), &output_what, &inputs)?;
    if cancelled() {
        return Err(cancelled_failure("roundtrip"));
    }
    util::stage_line(&format!("roundtrip: writing '{}'", output.display()));
    critical(|| model.save_cancellable(output, &SaveOptions::default(), &cancelled))?;
    let written = read_regular(output)?;
    let again = Model::from_bytes(&written, output.parent())?;
    let verdict = if written == original {
        "identical bytes"
    } else if again.proto() == model.proto() {
        "field-for-field equal (the input was not canonically encoded)"
    } else {
        return Err(Error::internal(format!(
            "re-encoded '{}' differs from '{}'",
            output.display(),
            path.display()
        ))
        .into());
    };
    if ctx.json {
        crate::util::print_json(&serde_json::json!({
            "model": path.display().to_string(), "output": output.display().to_string(),
            "identical_bytes": written == original, "verdict": verdict, "bytes": written.len(),
        }));
    } else {
        outln!(
            "{} -> {}: {} ({} bytes)",
            path.display(),
            output.display(),
            verdict,
            written.len()
        );
    }
    Ok(())
}
