//! The hardware-independent parts of running on the Ryzen AI NPU ("IPU" in early releases).
//!
//! - [`device`]: find the NPU (PCI vendor 0x1022, device 0x1502 / 0x17F0) and the compile target it needs.
//! - [`options`]: normalize and validate VitisAI execution-provider options and EP-context session entries.
//! - [`cache`]: stable compile-cache keys and removal of one model's cache entries.
//! - [`preflight`]: predict, without hardware, which nodes of a model the NPU would take and why the rest would not.
//! - [`report`]: turn ONNX Runtime's EP graph-assignment info into a `vitisai_ep_report.json`-shaped report, read an
//!   EP-written report, and compare either with a pre-flight prediction.
//!
//! The NPU support table the pre-flight checker uses is data, not code: `npu_support.json` beside this file
//! (embedded with `include_str!`), each entry naming its source. `shapes` (private) gives the checker its names for
//! the shape / element-type propagation and integer constant folding of [`crate::onnx`].
//!
//! Everything here is plain Rust: owned `String`s, plain enums, no raw pointers (the Windows device scan in
//! `device` is the one place that calls an OS API, behind `cfg(windows)`).

pub mod cache;
pub mod device;
pub mod options;
pub mod preflight;
pub mod report;
mod shapes;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The NPU compile target the VitisAI EP is given in its `target` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// Legacy target, required on Phoenix / Hawk Point (PCI device 0x1502).
    X1,
    /// Default target: Strix / Krackan (PCI device 0x17F0) and newer.
    X2,
}

impl Target {
    /// The canonical option value: `"X1"` or `"X2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::X1 => "X1",
            Target::X2 => "X2",
        }
    }

    /// Parses a target name case-insensitively (`"x2"` → `X2`); anything else is `InvalidArgument`.
    pub fn parse(s: &str) -> Result<Target> {
        match s.trim().to_ascii_uppercase().as_str() {
            "X1" => Ok(Target::X1),
            "X2" => Ok(Target::X2),
            _ => Err(Error::invalid_argument(format!(
                "NPU target '{s}' is not one of X1 (PHX/HPT), X2 (STX/KRK and newer)"
            ))),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Target> {
        Target::parse(s)
    }
}
