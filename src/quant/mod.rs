//! Post-training static quantization to QDQ models (INT8/INT16), entirely in Rust.

pub mod config;

pub use config::{CalibMethod, Preset, QuantConfig, QuantType, TensorOverride};

use std::collections::BTreeMap;

/// What calibration learned about one activation tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStats {
    /// The range to quantize (after the collector's method: MinMax, moving average, ...).
    pub min: f32,
    pub max: f32,
    /// ONNX element type seen at run time (1 = float).
    pub elem_type: i32,
    /// Shape of the last batch seen (dims as run).
    pub shape: Vec<i64>,
}

/// Calibration result: activation tensor name -> its statistics.
pub type Calibration = BTreeMap<String, TensorStats>;
