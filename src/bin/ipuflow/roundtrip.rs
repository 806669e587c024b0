//! `ipuflow roundtrip MODEL -o OUT`: decode a model, write it back atomically, check nothing was lost.

use std::path::PathBuf;

use ipuflow::onnx::{Model, SaveOptions};
use ipuflow::Error;

use crate::util::{critical, CliResult, Ctx};

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
    let original = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let model = Model::from_bytes(&original, path.parent())?;
    critical(|| model.save(output, &SaveOptions::default()))?;
    let written = std::fs::read(output).map_err(|e| Error::io("read", output, e))?;
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
