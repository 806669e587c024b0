//! The `ipuflow` command: the library's flow from a terminal.
//!
//! One file per subcommand; `util` holds what they share (errors and exit codes, JSON output, the runtime, progress
//! bars, Ctrl-C), `data` the input options (images, .npy files) and `metrics` the accuracy and latency numbers.
//!
//! Exit codes: 0 success; 1 the user's input is wrong (a missing file, a bad model, a device that is not there);
//! 2 bad command-line usage (clap); 3 an internal error of ipuflow; 130 cancelled (Ctrl-C).

/// `println!` for text output: the line goes through `util::escape` (model-controlled strings are printed).
macro_rules! outln {
    () => { println!() };
    ($($t:tt)*) => { println!("{}", $crate::util::escape(&format!($($t)*))) };
}

/// `eprintln!` through `util::escape`, like `outln!`.
macro_rules! errln {
    ($($t:tt)*) => { eprintln!("{}", $crate::util::escape(&format!($($t)*))) };
}

/// `print!` through `util::escape`, like `outln!`.
macro_rules! out {
    ($($t:tt)*) => { print!("{}", $crate::util::escape(&format!($($t)*))) };
}

mod check;
mod data;
mod demo;
mod demo_picture;
mod demo_set;
mod eval;
mod inspect;
mod metrics;
mod quantize;
mod roundtrip;
mod run;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ipuflow",
    version,
    about = "Quantize ONNX models and run them on Ryzen AI NPUs, no Python.",
    after_help = "Exit codes: 0 ok, 1 bad input (file, model, device), 2 bad usage, 3 internal error, 130 cancelled.\n\
                  ONNX Runtime is found through --ort, then IPUFLOW_ORT_LIBRARY, then next to ipuflow, then the system \
                  loader (scripts/fetch_ort.sh fetches one)."
)]
struct Cli {
    /// Print machine-readable JSON on stdout (errors too: {"error": {...}}).
    #[arg(long, global = true)]
    json: bool,
    /// The ONNX Runtime library to load (a file or a directory); default: IPUFLOW_ORT_LIBRARY, then next to ipuflow,
    /// then the system loader. For the NPU use the onnxruntime.dll of a Ryzen AI installation.
    #[arg(long, global = true, value_name = "PATH")]
    ort: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a model's interface, opsets, producer and op statistics.
    Inspect(inspect::Args),
    /// Quantize a float model to QDQ (XINT8, A8W8, A16W8 or CPU) on calibration images or .npy files.
    Quantize(quantize::Args),
    /// Pre-flight: predict, without an NPU, which nodes the NPU would take and why the others would not.
    Check(check::Args),
    /// Create a session (CPU, NPU or auto), run it, and report where it ran, its latency and its outputs.
    Run(run::Args),
    /// Compare a quantized model with its float model: top-1 agreement and SQNR of the outputs.
    Eval(eval::Args),
    /// The whole flow on the demo model and photos (scripts/fetch_demo_data.sh): quantize, check, run, compare.
    Demo(demo::Args),
    /// Decode a model and write it back (atomically), checking that nothing is lost.
    Roundtrip(roundtrip::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let ctx = util::Ctx {
        json: cli.json,
        ort: cli.ort.clone(),
    };
    util::install_ctrlc_handler();
    quiet_on_closed_stdout();
    let result = match &cli.command {
        Command::Inspect(a) => inspect::main(&ctx, a),
        Command::Quantize(a) => quantize::main(&ctx, a),
        Command::Check(a) => check::main(&ctx, a),
        Command::Run(a) => run::main(&ctx, a),
        Command::Eval(a) => eval::main(&ctx, a),
        Command::Demo(a) => demo::main(&ctx, a),
        Command::Roundtrip(a) => roundtrip::main(&ctx, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            f.print(ctx.json);
            ExitCode::from(f.code)
        }
    }
}

/// `ipuflow check MODEL | head -1`: once the reader has closed the pipe, `println!` panics with "failed printing to
/// stdout: Broken pipe" (Rust ignores SIGPIPE, so the write fails with EPIPE instead of killing the process). The
/// reader took all it wanted, so, as `head` users expect of any Unix tool, the program ends there quietly with exit
/// 0; every other panic keeps the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info)
    }));
}

/// A command line clap refused: its message on stderr and exit 2 as always; with `--json` anywhere on the line (it is
/// global) also the JSON error on stdout, as the README promises. `--help` and `--version` print as usual.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    let code = e.exit_code();
    if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
        let _ = e.print();
        return ExitCode::from(code as u8);
    }
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let _ = e.print();
    if json {
        let message = e.render().to_string();
        // clap's first line is the message; the rest is its usage reminder.
        let first = message.lines().next().unwrap_or_default();
        let v = serde_json::json!({"error": {
            "kind": "Usage",
            "message": first.trim_start_matches("error: "),
            "hint": "ipuflow --help lists the subcommands; ipuflow SUBCOMMAND --help their options",
            "exit_code": code,
        }});
        util::print_json(&v);
    }
    ExitCode::from(code as u8)
}
