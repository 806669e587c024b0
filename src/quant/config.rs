//! Quantization settings: element types, presets under the names Ryzen AI users know, and per-model overrides.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::onnx::DataType;

/// The integer type of a quantized tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantType {
    U8,
    S8,
    U16,
    S16,
}

impl QuantType {
    /// Smallest representable value.
    pub fn qmin(self) -> i32 {
        match self {
            QuantType::U8 | QuantType::U16 => 0,
            QuantType::S8 => -128,
            QuantType::S16 => -32768,
        }
    }
    /// Largest representable value.
    pub fn qmax(self) -> i32 {
        match self {
            QuantType::U8 => 255,
            QuantType::S8 => 127,
            QuantType::U16 => 65535,
            QuantType::S16 => 32767,
        }
    }
    /// ONNX `TensorProto.DataType` of the type.
    pub fn onnx_type(self) -> i32 {
        match self {
            QuantType::U8 => DataType::Uint8.onnx(),
            QuantType::S8 => DataType::Int8.onnx(),
            QuantType::U16 => DataType::Uint16.onnx(),
            QuantType::S16 => DataType::Int16.onnx(),
        }
    }
    pub fn is_16bit(self) -> bool {
        matches!(self, QuantType::U16 | QuantType::S16)
    }
    pub fn is_signed(self) -> bool {
        matches!(self, QuantType::S8 | QuantType::S16)
    }
    pub fn name(self) -> &'static str {
        match self {
            QuantType::U8 => "uint8",
            QuantType::S8 => "int8",
            QuantType::U16 => "uint16",
            QuantType::S16 => "int16",
        }
    }
}

/// The integer type of Conv/ConvTranspose/Gemm biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BiasType {
    /// INT32 at the accumulator's scale (input scale × weight scale): exact, and what ONNX Runtime's CPU kernels
    /// fuse.
    Int32,
    /// INT8 with a power-of-two scale of its own, the smallest that keeps every value of the bias within ±127 (no
    /// value saturates): AMD's XINT8 format.
    Int8,
}

impl BiasType {
    /// Parses `int8` or `int32` (case-insensitive).
    pub fn parse(s: &str) -> Result<BiasType> {
        match s.to_ascii_lowercase().as_str() {
            "int8" => Ok(BiasType::Int8),
            "int32" => Ok(BiasType::Int32),
            _ => Err(Error::invalid_argument(format!(
                "unknown bias type '{s}' (expected int8 or int32)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BiasType::Int8 => "int8",
            BiasType::Int32 => "int32",
        }
    }
}

/// A ready-made recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Symmetric activations (uint8, zero point 128) and INT8 weights, power-of-two scales, per-tensor weights: the
    /// NPU CNN recipe.
    Xint8,
    /// INT8 activations, symmetric INT8 weights, float scales.
    A8W8,
    /// INT16 activations, symmetric INT8 weights.
    A16W8,
    /// For ONNX Runtime's CPU kernels: U8 asymmetric activations, S8 symmetric per-channel weights, QDQ shaped so
    /// the CPU provider fuses it into QLinear/integer kernels.
    Cpu,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::Xint8, Preset::A8W8, Preset::A16W8, Preset::Cpu];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Xint8 => "XINT8",
            Preset::A8W8 => "A8W8",
            Preset::A16W8 => "A16W8",
            Preset::Cpu => "CPU",
        }
    }

    /// Parses a preset name, case-insensitively ("xint8", "A8W8", ...).
    pub fn parse(s: &str) -> Result<Preset> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid_argument(format!(
                    "unknown preset '{s}' (expected one of XINT8, A8W8, A16W8, CPU)"
                ))
            })
    }
}

/// How activation ranges are derived from the calibration data.
///
/// All but moving-average MinMax work on a streaming histogram per tensor (`quant::histogram`), the same for any
/// batch size and order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CalibMethod {
    /// The observed minimum and maximum; with `moving_average`, the per-batch extremes are averaged
    /// exponentially with that constant instead of taken globally.
    MinMax { moving_average: Option<f32> },
    /// Clip magnitudes at this percentile of `|x|` (in (0, 100], e.g. 99.999).
    Percentile { percentile: f32 },
    /// TensorRT's entropy calibration (minimum KL divergence between clipped and quantized distributions).
    Entropy,
    /// The range that minimises the expected squared quantization error on the preset's grid; with power-of-two
    /// scales, the shift that minimises it (AMD's PowerOfTwoMethod.MinMSE).
    MinMse,
    /// The data's extremes, power-of-two scales rounded up so nothing clips (AMD's NonOverflow).
    NonOverflow,
}

impl CalibMethod {
    /// The default percentile of [`CalibMethod::Percentile`] (ONNX Runtime's).
    pub const DEFAULT_PERCENTILE: f32 = 99.999;

    /// Parses a method name as the command line spells it (case-insensitive); `percentile` is used by
    /// `percentile` only.
    pub fn parse(s: &str, percentile: f32) -> Result<CalibMethod> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "minmax" => CalibMethod::MinMax {
                moving_average: None,
            },
            "percentile" => CalibMethod::Percentile { percentile },
            "entropy" => CalibMethod::Entropy,
            "minmse" => CalibMethod::MinMse,
            "nonoverflow" => CalibMethod::NonOverflow,
            _ => {
                return Err(Error::invalid_argument(format!(
                    "unknown calibration method '{s}' (expected minmax, percentile, entropy, minmse or nonoverflow)"
                )))
            }
        })
    }

    /// Short name as the command line spells it.
    pub fn name(&self) -> &'static str {
        match self {
            CalibMethod::MinMax { .. } => "minmax",
            CalibMethod::Percentile { .. } => "percentile",
            CalibMethod::Entropy => "entropy",
            CalibMethod::MinMse => "minmse",
            CalibMethod::NonOverflow => "nonoverflow",
        }
    }
}

/// How a weight's quantization range is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightRange {
    /// The weight's (per-channel) minimum and maximum: nothing is clipped.
    MinMax,
    /// For symmetric per-tensor or power-of-two weights: the clipping range (and, for power-of-two, the shift) that
    /// minimises the squared quantization error of the weight itself. Per-channel float scales keep MinMax (one
    /// channel's range is already tight).
    MinMse,
}

/// A subgraph left in float: every node on a path from one of the `start` nodes to one of the `end` nodes (both
/// included), e.g. a detector's post-processing. Written `start..end`, each side a node name or several separated
/// by commas (`a,b..c`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExcludeSubgraph {
    pub start: Vec<String>,
    pub end: Vec<String>,
}

impl ExcludeSubgraph {
    /// Parses `start..end` (see the type). Errors: `InvalidArgument` naming the value when there is no `..`, or a
    /// side or a name in it is empty.
    pub fn parse(s: &str) -> Result<ExcludeSubgraph> {
        let (a, b) = s.split_once("..").ok_or_else(|| {
            Error::invalid_argument(format!(
                "exclude subgraph '{s}': expected START..END (node names, several separated by commas)"
            ))
        })?;
        let side = |v: &str, what: &str| -> Result<Vec<String>> {
            let names: Vec<String> = v.split(',').map(|n| n.trim().to_string()).collect();
            if names.iter().any(|n| n.is_empty()) {
                return Err(Error::invalid_argument(format!(
                    "exclude subgraph '{s}': an empty {what} node name"
                )));
            }
            Ok(names)
        };
        Ok(ExcludeSubgraph {
            start: side(a, "start")?,
            end: side(b, "end")?,
        })
    }
}

impl std::fmt::Display for ExcludeSubgraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.start.join(","), self.end.join(","))
    }
}

/// Per-tensor overrides, keyed by tensor name in [`QuantConfig::tensor_overrides`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorOverride {
    /// Quantize this activation with another type.
    pub qtype: Option<QuantType>,
    /// Use this (min, max) instead of the calibrated range.
    pub range: Option<(f32, f32)>,
}

/// Everything the quantizer needs to know besides the model and the data.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantConfig {
    /// The preset this configuration started from (for the report).
    pub preset: Preset,
    pub activation_type: QuantType,
    pub activation_symmetric: bool,
    pub weight_type: QuantType,
    /// Weights are always symmetric in the presets; false allows asymmetric weights.
    pub weight_symmetric: bool,
    /// One scale per output channel for Conv/ConvTranspose/Gemm/MatMul weights.
    pub per_channel: bool,
    /// Round every scale to a power of two (the X1 NPU requires it).
    pub power_of_two_scales: bool,
    pub method: CalibMethod,
    /// Give all inputs of a Concat and its output one shared scale.
    pub concat_shared_scale: bool,
    /// Shape the QDQ graph for ONNX Runtime's CPU fusions (QLinear/integer kernels).
    pub cpu_fusion: bool,
    /// Nodes left in float, by node name.
    pub exclude_nodes: Vec<String>,
    /// Op types left in float.
    pub exclude_op_types: Vec<String>,
    /// Node-name glob patterns (`*` any run, `?` one character) whose nodes stay float; a pattern that matches no
    /// node is an error when quantizing.
    pub exclude_patterns: Vec<String>,
    /// Subgraphs left in float (see [`ExcludeSubgraph`]).
    pub exclude_subgraphs: Vec<ExcludeSubgraph>,
    pub tensor_overrides: BTreeMap<String, TensorOverride>,
    /// How weight ranges are chosen (see [`WeightRange`]).
    pub weight_range: WeightRange,
    /// The integer type of Conv/ConvTranspose/Gemm biases (see [`BiasType`]): INT8 with a power-of-two scale in
    /// XINT8, INT32 in the other presets.
    pub bias_type: BiasType,
    /// Cross-layer equalization of Conv->(Relu)->Conv chains on the float model before calibration
    /// (`crate::quant::equalize`).
    pub equalize: bool,
    /// With `equalize`: replace `Clip(0, 6)` (Relu6) between two equalizable convolutions by `Relu`, so the chain
    /// can be equalized. Changes the float model (values above 6 are no longer clipped); reported per node.
    pub replace_clip6_relu: bool,
    /// Empirical bias correction: the expected output error the weight quantization causes, measured on the
    /// calibration data, is subtracted from each Conv/Gemm bias (`crate::quant::bias_correct`).
    pub bias_correction: bool,
    /// Learned weight rounding (`crate::quant::gptq`): each Conv/Gemm weight is rounded to minimise its layer's
    /// output error on the calibration data (second-order error compensation from the input's second moment),
    /// instead of to the nearest grid point. Same grid, same format.
    pub learned_rounding: bool,
    /// Variants of learned rounding (`crate::quant::gptq::Options`: scale search for per-tensor weights, act-order).
    pub rounding: crate::quant::gptq::Options,
    /// Output-aware activations (`crate::quant::output_aware`): a mixed-range Concat at the outputs (boxes in
    /// pixels beside [0, 1] scores) or a small score output is left float with its tail, with the reason reported;
    /// and the output heads' biases absorb the mean error the quantized backbone carries into them
    /// (`crate::quant::head_bias`, measured on up to 64 MB of held calibration samples).
    pub output_aware: bool,
    /// AMD's XINT8 NPU-mode rewrites that make the CPU run compute what the NPU computes (`crate::quant::npu_mode`):
    /// a rescale `Mul` after AveragePool/GlobalAveragePool/ReduceMean/HardSigmoid, LeakyRelu's alpha in steps of
    /// 1/256. On in XINT8 (AMD's format).
    pub npu_rescale: bool,
    /// Quark's `ConvertSigmoidToHardSigmoid` (`crate::quant::npu_mode`): each quantized Sigmoid becomes
    /// HardSigmoid(alpha 1/6, beta 0.5), an op the NPU places. Changes the model's function: off by default.
    pub sigmoid_to_hard_sigmoid: bool,
    /// Calibration cache file (`quant::calib_cache`): read when it exists and matches the model, the collection
    /// settings and the data (refused when it does not), else written after calibrating.
    pub calib_cache: Option<std::path::PathBuf>,
    /// Fixed shapes for dynamic graph inputs, applied before preparation
    /// ([`crate::onnx::input_shape::apply_input_shapes`]).
    pub input_shapes: Vec<crate::onnx::InputShape>,
    /// Sensitivity analysis and accuracy-aware mixed precision (`crate::quant::mixed`); off by default.
    pub mixed: MixedPrecision,
}

/// Per-layer sensitivity analysis and the accuracy target of mixed precision (`crate::quant::mixed`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MixedPrecision {
    /// Measure each quantized node's sensitivity (the output SQNR gained by leaving it float) and report it.
    pub sensitivity: bool,
    /// Minimum output SQNR (dB, worst output) against the float model on the calibration data.
    pub target_sqnr_db: Option<f32>,
    /// Maximum drop of top-1 agreement with the float model (first output, in [0, 1]) on the calibration data.
    pub max_agreement_drop: Option<f32>,
    /// Floor on the NPU coverage the pre-flight predicts (fraction of non-Q/DQ nodes, in [0, 1]); a change that
    /// would go below it is not made.
    pub min_npu_coverage: Option<f32>,
    /// The host's own metric of each candidate model and its target (`crate::quant::mixed::HostMetric`).
    pub host_metric: Option<crate::quant::mixed::HostMetric>,
}

impl MixedPrecision {
    /// Whether a target is set (mixed precision runs).
    pub fn has_target(&self) -> bool {
        self.target_sqnr_db.is_some()
            || self.max_agreement_drop.is_some()
            || self.host_metric.is_some()
    }
    /// Whether the quantizer needs the held calibration samples (sensitivity or mixed precision).
    pub fn active(&self) -> bool {
        self.sensitivity || self.has_target()
    }
}

impl QuantConfig {
    pub fn preset(p: Preset) -> QuantConfig {
        let base = QuantConfig {
            preset: p,
            activation_type: QuantType::S8,
            activation_symmetric: false,
            weight_type: QuantType::S8,
            weight_symmetric: true,
            per_channel: false,
            power_of_two_scales: false,
            // MinMax stays the default of A16W8 and CPU by measurement (bench/quantize/calib_sweep.sh, results
            // in bench/results/calib_sweep.md): no histogram method improves every model there without lowering some
            // output. XINT8 and A8W8 use MinMSE (below).
            method: CalibMethod::MinMax {
                moving_average: None,
            },
            concat_shared_scale: false,
            cpu_fusion: false,
            exclude_nodes: Vec::new(),
            exclude_op_types: Vec::new(),
            exclude_patterns: Vec::new(),
            exclude_subgraphs: Vec::new(),
            tensor_overrides: BTreeMap::new(),
            // Chosen by measurement (docs/quantization-sweep.md): equalization and bias correction help every preset
            // on the shared models; the weight-range search helps power-of-two weights only (XINT8).
            weight_range: WeightRange::MinMax,
            bias_type: BiasType::Int32,
            equalize: true,
            replace_clip6_relu: false,
            bias_correction: true,
            // On for the NPU presets by measurement (docs/quantization-sweep.md): EfficientNet-Lite0 XINT8 8.3 ->
            // 13.6 dB, A8W8 9.4 -> 16.7, A16W8 9.5 -> 18.6; BlazeFace's classificators lose 0.4-0.7 dB on XINT8/A8W8.
            // Off for the CPU preset (below).
            learned_rounding: true,
            rounding: crate::quant::gptq::Options::default(),
            output_aware: true,
            npu_rescale: false,
            sigmoid_to_hard_sigmoid: false,
            calib_cache: None,
            input_shapes: Vec::new(),
            mixed: MixedPrecision::default(),
        };
        match p {
            // AMD's XINT8 format: uint8 activations with zero point 128 (symmetric), which has exactly the levels
            // of int8 with zero point 0; uint8 is what the NPU compiler is known to accept.
            Preset::Xint8 => QuantConfig {
                activation_type: QuantType::U8,
                activation_symmetric: true,
                power_of_two_scales: true,
                concat_shared_scale: true,
                weight_range: WeightRange::MinMse,
                // AMD's XINT8 recipe also searches the power-of-two shift (PowerOfTwoMethod.MinMSE). Kept against
                // the corpus sweep's Percentile (bench/results/calib_sweep.md, 2026-12-03): on the merged recipe
                // MinMSE is ahead on every output of the three shared models (74 inputs each; BlazeFace
                // classificators 11.5 against 8.6 dB), Percentile's gains are on 4-sample corpus models.
                method: CalibMethod::MinMse,
                // AMD's XINT8 format: INT8 bias with a power-of-two scale (the accumulator-scale INT32 bias stays
                // an option). Measured in docs/xint8-format.md.
                bias_type: BiasType::Int8,
                // Learned rounding taking each INT8 bias in first (the weights carry its rounding error) stays an
                // option, off (docs/xint8-format.md, 2026-12-03): on the 74-input bench EfficientNet-Lite0 goes
                // 0.905 / 11.7 dB -> 0.932 / 13.1, but hand-landmark's presence output, measured through the CPU
                // plan on the 37 eval + labelled images (tests/quant_score_heads.rs), falls from 0.4 to -1.9 dB,
                // under the floor that shows the output-head correction at work. Not understood yet.
                // AMD's NPU-mode rescales (Quark's SimulateDPU defaults), measured in docs/xint8-format.md.
                npu_rescale: true,
                ..base
            },
            // MinMSE activations (docs/quantization-sweep.md, with learned rounding and the bias guard):
            // EfficientNet-Lite0 0.946 / 16.7 dB / 16 of 20 -> 0.959 / 17.3 / 18. The corpus sweep's worst-case rule
            // picks Percentile (bench/results/calib_sweep.md, 2026-12-03), but that takes Lite0's labelled top-1 to
            // 16/20, under float's 17/20, and loses task metrics on four corpus models: kept MinMSE.
            Preset::A8W8 => QuantConfig {
                method: CalibMethod::MinMse,
                ..base
            },
            // Learned rounding's scale search stays off (docs/quantization-sweep.md, 2026-12-03): with the
            // output-head bias correction in, EfficientNet-Lite0 is 0.959 / 18.6 dB / 18 without it and
            // 0.932 / 18.8 / 19 with it (issue 12 needs >= 0.95 and >= 18 dB), for 1.3x the CPU time; BlazeFace
            // 30.8/20.4 vs 31.5/21.1, hand-landmark 22.3/11.8/10.9/3.2 vs 23.2/7.5/11.6/3.6.
            Preset::A16W8 => QuantConfig {
                activation_type: QuantType::S16,
                ..base
            },
            // Learned rounding off by measurement (bench/quantize/accuracy.py, 2026-12-03): per-channel weights leave
            // it little to win. EfficientNet-Lite0 0.959 / 20.9 dB with it, 0.986 / 20.5 without; BlazeFace
            // 22.9/15.3 vs 22.6/15.1; hand-landmark 30.0/1.6/18.4/9.1 vs 30.0/1.6/18.1/9.9; and 13.6 s vs 2.3 s.
            Preset::Cpu => QuantConfig {
                activation_type: QuantType::U8,
                per_channel: true,
                cpu_fusion: true,
                learned_rounding: false,
                ..base
            },
        }
    }

    /// Checks the combination of settings; the message names the offending field.
    pub fn validate(&self) -> Result<()> {
        if let CalibMethod::MinMax {
            moving_average: Some(c),
        } = self.method
        {
            if !(c > 0.0 && c < 1.0) {
                return Err(Error::invalid_argument(format!(
                    "moving_average constant {c} must be in (0, 1)"
                )));
            }
        }
        if let CalibMethod::Percentile { percentile } = self.method {
            if !(percentile > 0.0 && percentile <= 100.0) {
                return Err(Error::invalid_argument(format!(
                    "percentile {percentile} must be in (0, 100]"
                )));
            }
        }
        self.validate_mixed()?;
        for (name, o) in &self.tensor_overrides {
            if let Some((lo, hi)) = o.range {
                if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                    return Err(Error::invalid_argument(format!(
                        "override range for tensor '{name}' is ({lo}, {hi}); it must be finite with min <= max"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The mixed-precision part of [`QuantConfig::validate`] (the CLI reports it as a usage error).
    pub fn validate_mixed(&self) -> Result<()> {
        let m = &self.mixed;
        if let Some(t) = m.target_sqnr_db {
            if !t.is_finite() {
                return Err(Error::invalid_argument(format!(
                    "target SQNR {t} dB must be finite"
                )));
            }
        }
        if let Some(h) = &m.host_metric {
            if !h.target.is_finite() {
                return Err(Error::invalid_argument(format!(
                    "host metric target {} must be finite",
                    h.target
                )));
            }
        }
        for (what, v) in [
            ("max agreement drop", m.max_agreement_drop),
            ("min NPU coverage", m.min_npu_coverage),
        ] {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v) {
                    return Err(Error::invalid_argument(format!(
                        "{what} {v} must be in [0, 1]"
                    )));
                }
            }
        }
        Ok(())
    }
}
