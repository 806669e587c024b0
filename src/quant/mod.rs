//! Post-training static quantization to QDQ models (INT8/INT16), entirely in Rust.
//!
//! [`quantize`] runs the whole flow: [`prepare`] (ONNX Runtime BASIC optimization + Rust patches), [`calibrate`]
//! (one augmented run per batch, statistics accumulated as batches arrive), [`qdq::quantize_graph`] (QDQ emission),
//! and a load check. Calibration batches come from a [`data::CalibrationSource`].

pub mod bias_correct;
mod bias_guard;
pub mod calib_cache;
pub mod calibrate;
pub mod config;
pub mod data;
pub mod equalize;
pub mod gptq;
pub mod histogram;
pub mod legacy_opset;
pub mod mixed;
pub mod output_aware;
pub mod pipeline;
pub mod prepare;
pub mod provenance;
pub mod qdq;
pub mod report;
pub mod sensitivity;

pub use config::{
    BiasType, CalibMethod, ExcludeSubgraph, MixedPrecision, Preset, QuantConfig, QuantType,
    TensorOverride, WeightRange,
};
pub use pipeline::{quantize, CancelToken, Hooks, Progress, Stage};
pub use qdq::quantize_graph;
pub use report::{NodeReport, QuantReport, TensorReport};

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
