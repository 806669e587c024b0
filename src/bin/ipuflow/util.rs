//! What the subcommands share: failures and exit codes, JSON output, loading ONNX Runtime, progress bars, Ctrl-C.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ipuflow::quant::CancelToken;
use ipuflow::runtime::Runtime;
use ipuflow::{Error, ErrorKind};

/// Options every subcommand sees.
pub struct Ctx {
    /// `--json`: stdout carries one JSON document.
    pub json: bool,
    /// `--ort`: the ONNX Runtime library to load.
    pub ort: Option<PathBuf>,
}

pub const EXIT_USER: u8 = 1;
// 2 (usage) is clap's own exit code for bad command lines.
pub const EXIT_INTERNAL: u8 = 3;
pub const EXIT_CANCELLED: u8 = 130;

/// Why a subcommand failed: the exit code, the error kind, the message, and what to do next.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub kind: String,
    pub message: String,
    pub hint: Option<String>,
}

pub type CliResult<T = ()> = Result<T, Failure>;

impl Failure {
    /// A user error (exit 1) found by the command itself.
    pub fn user(message: impl Into<String>, hint: Option<&str>) -> Failure {
        Failure {
            code: EXIT_USER,
            kind: "InvalidArgument".into(),
            message: message.into(),
            hint: hint.map(String::from),
        }
    }

    /// A bad combination of options (exit 2, as clap's own usage errors).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            kind: "Usage".into(),
            message: message.into(),
            hint: None,
        }
    }

    /// Prints the failure: text on stderr; with `--json` also `{"error": {...}}` on stdout.
    pub fn print(&self, json: bool) {
        // Messages quote tensor and node names from the model: escaped like everything else printed.
        errln!("ipuflow: error: {}", self.message);
        if let Some(h) = &self.hint {
            errln!("ipuflow: hint: {h}");
        }
        if json {
            let v = serde_json::json!({"error": {
                "kind": self.kind, "message": self.message, "hint": self.hint, "exit_code": self.code,
            }});
            print_json(&v);
        }
    }
}

/// What to do next, by error kind (`None` when the message says it all).
fn hint_for(kind: ErrorKind) -> Option<&'static str> {
    use ErrorKind as K;
    Some(match kind {
        K::RuntimeNotFound | K::RuntimeInvalid | K::RuntimeNotLoaded => {
            "run scripts/fetch_ort.sh and set IPUFLOW_ORT_LIBRARY to the path it prints (or pass --ort PATH); \
             for the NPU, point it at the onnxruntime.dll of a Ryzen AI installation"
        }
        K::RuntimeTooOld => {
            "ipuflow needs ONNX Runtime 1.17 or newer: run scripts/fetch_ort.sh, or use the runtime of Ryzen AI 1.1+"
        }
        K::DeviceUnavailable => {
            "`ipuflow check MODEL` predicts which nodes the NPU takes; --device auto or --policy prefer runs on the \
             CPU instead (and says why)"
        }
        K::CalibCacheStale | K::CalibCacheInvalid => {
            "delete the --calib-cache file (or pass another path) and ipuflow recalibrates and writes a new one"
        }
        K::Calibration => "--calib needs a folder of .jpg/.png images, or of .npy files (one file per sample)",
        K::TensorMismatch => {
            "`ipuflow inspect MODEL` shows the inputs the model expects; adjust --input, --crop, --layout or the .npy \
             files"
        }
        K::ModelDecode => "the file is not an ONNX model (a protobuf ModelProto, usually *.onnx)",
        K::NothingQuantized => {
            "the reasons above say why the nodes stayed float: fewer --exclude, or calibration data that reaches the \
             model's inputs (--report FILE lists every node once something is quantized)"
        }
        K::NonFinite => {
            "NaN/Inf values: check the calibration files and --mean/--std; for a weight, fix the model or \
             --exclude its node"
        }
        K::LimitExceeded => "docs/SECURITY.md lists ipuflow's limits and why they exist",
        K::Internal => "this is a bug in ipuflow: please report it with the command line and the model",
        K::Cancelled => return None,
        _ => return None,
    })
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match e.kind() {
            ErrorKind::Internal => EXIT_INTERNAL,
            ErrorKind::Cancelled => EXIT_CANCELLED,
            _ => EXIT_USER,
        };
        Failure {
            code,
            kind: format!("{:?}", e.kind()),
            message: e.message().to_string(),
            hint: hint_for(e.kind()).map(String::from),
        }
    }
}

/// Prints one JSON document on stdout.
pub fn print_json(v: &impl serde::Serialize) {
    print_json_text(
        &serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
    );
}

/// Prints JSON text on stdout with DEL, the C1 controls and the bidi overrides written as `\uXXXX`: serde_json
/// escapes only the C0 controls, and a terminal may take a raw U+009B for an escape sequence's start (CSI). Both
/// forms are valid JSON and decode to the same string.
pub fn print_json_text(text: &str) {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    println!("{out}");
}

/// What a terminal must not receive raw from a model: control characters but the newline, and the bidirectional
/// overrides and isolates.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The one escaping function for text the command prints: control characters (C0 but the newline, DEL, C1) and
/// the Unicode bidirectional overrides become visible escapes (`\x1b`, `\u{202e}`), so a model's producer, node,
/// tensor or metadata strings cannot retitle, clear or recolour the user's terminal, or reorder what it shows.
/// Applied by `outln!`/`errln!` to whole lines; JSON goes through [`print_json_text`] instead.
pub fn escape(s: &str) -> Cow<'_, str> {
    let bad = unsafe_char;
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c as u32 {
            _ if !bad(c) => out.push(c),
            u @ 0..=0xff => {
                let _ = write!(out, "\\x{u:02x}");
            }
            u => {
                let _ = write!(out, "\\u{{{u:04x}}}");
            }
        }
    }
    Cow::Owned(out)
}

/// Loads ONNX Runtime once (the `--ort` path, else the library's resolution order).
pub fn load_runtime(ctx: &Ctx) -> CliResult<&'static Runtime> {
    Ok(Runtime::load(ctx.ort.as_deref())?)
}

/// The files a loaded model came from, each with what it is, for `refuse_same_file`.
pub fn model_files(model: &ipuflow::onnx::Model) -> Vec<(&Path, &'static str)> {
    model
        .source_files()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // Model::load_file lists the model file first.
            let what = if i == 0 {
                "the input model"
            } else {
                "an external data file of the input model"
            };
            (p.as_path(), what)
        })
        .collect()
}

/// The external data file a model saved at `path` gets when it is over 2 GiB (`<file name>.data`).
pub fn auto_data_file(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".data");
    PathBuf::from(s)
}

/// Fails with exit 1 naming `path` when it does not exist (before any work is done).
pub fn require_exists(path: &Path, what: &str) -> CliResult {
    if path.exists() {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_USER,
            kind: "FileNotFound".into(),
            message: format!("{what} '{}' does not exist", path.display()),
            hint: None,
        })
    }
}

// -----------------------------------------------------------------------------------------------------------------
// Progress

/// Whether progress goes to a terminal (bars) or to a log (one line per stage).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar on stderr (hidden by indicatif when stderr is not a terminal). `len`: `None` for a spinner.
pub fn progress_bar(len: Option<u64>, message: &str) -> ProgressBar {
    let pb = match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(
                "{msg:>14} [{bar:30}] {pos}/{len} {elapsed_precise} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    pb.set_message(escape(message).into_owned());
    if len.is_none() {
        pb.enable_steady_tick(Duration::from_millis(120));
    }
    pb
}

/// A stage line for logs: printed on stderr when stderr is not a terminal (a terminal shows the bars instead).
pub fn stage_line(msg: &str) {
    if !stderr_is_terminal() {
        errln!("ipuflow: {msg}");
    }
}

// -----------------------------------------------------------------------------------------------------------------
// Ctrl-C

static CANCEL: OnceLock<CancelToken> = OnceLock::new();
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
static CRITICAL: AtomicBool = AtomicBool::new(false);

/// The process-wide cancel flag Ctrl-C sets.
pub fn cancel_token() -> CancelToken {
    CANCEL.get_or_init(CancelToken::new).clone()
}

pub fn cancelled() -> bool {
    cancel_token().is_cancelled()
}

/// The error a command returns when it stops for Ctrl-C.
pub fn cancelled_failure(what: &str) -> Failure {
    Failure::from(Error::new(
        ErrorKind::Cancelled,
        format!("{what} cancelled (Ctrl-C)"),
    ))
}

/// First Ctrl-C (or SIGTERM/SIGHUP): set the cancel flag (the quantizer stops at the next batch, a save gives up
/// before renaming its file into place: nothing is written, exit 130). Second: exit at once with 130, unless a file
/// is being committed (then the commit finishes first).
pub fn install_ctrlc_handler() {
    let token = cancel_token();
    // With ctrlc's `termination` feature SIGTERM and SIGHUP come here too: a killed command stops the same way.
    let _ = ctrlc::set_handler(move || {
        let n = INTERRUPTS.fetch_add(1, Ordering::SeqCst);
        token.cancel();
        if n == 0 {
            errln!("\nipuflow: interrupted: stopping (press Ctrl-C again to quit at once)");
        } else if !CRITICAL.load(Ordering::SeqCst) {
            // Destructors do not run on exit: remove the temporary files they would have removed.
            ipuflow::onnx::fs::remove_temp_files();
            std::process::exit(EXIT_CANCELLED as i32);
        }
    });
}

/// Runs `f` with a second Ctrl-C deferred (used around the atomic save of an output file).
pub fn critical<T>(f: impl FnOnce() -> T) -> T {
    CRITICAL.store(true, Ordering::SeqCst);
    let r = f();
    CRITICAL.store(false, Ordering::SeqCst);
    r
}

// -----------------------------------------------------------------------------------------------------------------
// Small formatting helpers

/// `[1, 3, 224, 224]` with `?` for dynamic dimensions.
pub fn shape_str(shape: &[i64]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|d| {
            if *d < 0 {
                "?".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Milliseconds with 3 significant-ish digits.
pub fn ms(d: f64) -> String {
    if d >= 100.0 {
        format!("{d:.0} ms")
    } else if d >= 10.0 {
        format!("{d:.1} ms")
    } else {
        format!("{d:.2} ms")
    }
}
