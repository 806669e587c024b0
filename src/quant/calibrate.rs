//! Calibration: run the prepared model over the calibration batches and learn a range for every float activation.
//!
//! The prepared model is *augmented*: every float activation that is not already a graph output becomes one, so a
//! single ONNX Runtime run per batch yields all of them. Statistics are accumulated as each batch arrives, by one
//! [`Collector`] per tensor, and the run's outputs are freed before the next batch: memory does not grow with the
//! number of samples (a test checks peak RSS flat between 8 and 64 samples).
//!
//! Collectors are pluggable: [`MinMax`], [`MovingAverageMinMax`], and the histogram methods (percentile, entropy,
//! MinMSE, NonOverflow) of [`crate::quant::histogram`]: a fixed-size histogram with power-of-two-aligned bins that
//! merge when the range grows, so there is no second pass and the result does not depend on batch size or order.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::error::{Error, ErrorKind, Result};
use crate::onnx::proto::ModelProto;
use crate::onnx::{DataType, Model};
use crate::quant::calib_cache::{self, CacheKey, CachedTensor, DataDigest};
use crate::quant::data::CalibrationSource;
use crate::quant::histogram::{choose_range, Grid, Histogram, HistogramCollector, RangeMethod};
use crate::quant::prepare::{ActivationInfo, Prepared};
use crate::quant::{CalibMethod, Calibration, QuantConfig, TensorStats};
use crate::runtime::{
    ElementType, GraphOptimizationLevel, Session, SessionOptions, TensorInfo, TensorRef,
};

/// Accumulates the statistics of one tensor, batch by batch, in constant memory.
pub trait Collector: Send {
    /// One batch of the tensor's values (any shape, flattened). NaNs are ignored.
    fn observe(&mut self, data: &[f32]);
    /// The range to quantize, or `None` if no finite value was seen.
    fn range(&self) -> Option<(f32, f32)>;
    /// What was collected as a range, before any histogram method: the extremes (or the moving average's range).
    fn range_collected(&self) -> Option<(f32, f32)> {
        self.range()
    }
    /// The histogram, for collectors that keep one (the calibration cache stores it).
    fn histogram(&self) -> Option<&Histogram> {
        None
    }
}

/// Something else that reads each calibration batch's activations from the calibration run itself: bias
/// correction's tap takes its layer inputs, and its guard the model's float outputs, from there instead of running the
/// float model again for each batch.
pub trait BatchObserver {
    /// The activations (graph outputs included) it reads, by name.
    fn wanted(&self) -> Vec<String>;
    /// One batch, after calibration ran it: `fetched[k]` holds the values and shape of `wanted()[k]`, or `None`
    /// where calibration did not run the model (a cache hit) or does not fetch that tensor (not a float
    /// activation). Errors are the observer's to keep: calibration goes on.
    fn observe(
        &mut self,
        batch: &crate::quant::data::Batch<'_>,
        fetched: &[Option<(&[f32], &[i64])>],
    );
}

/// The histogram method behind `method` (None for MinMax with a moving average, which needs no histogram).
pub fn range_method(method: &CalibMethod) -> Option<RangeMethod> {
    Some(match *method {
        CalibMethod::MinMax {
            moving_average: Some(_),
        } => return None,
        CalibMethod::MinMax {
            moving_average: None,
        } => RangeMethod::MinMax,
        CalibMethod::Percentile { percentile } => RangeMethod::Percentile(percentile as f64),
        CalibMethod::Entropy => RangeMethod::Entropy,
        CalibMethod::MinMse => RangeMethod::MinMse,
        CalibMethod::NonOverflow => RangeMethod::NonOverflow,
    })
}

/// The grid the emitter will quantize activation `name` on (its type override, else the config's).
pub fn activation_grid(config: &QuantConfig, name: &str) -> Grid {
    Grid {
        qtype: config
            .tensor_overrides
            .get(name)
            .and_then(|o| o.qtype)
            .unwrap_or(config.activation_type),
        symmetric: config.activation_symmetric,
        pow2: config.power_of_two_scales,
    }
}

/// Creates the collector for `method` (one per tensor) quantized on `grid`. `keep_histogram` makes plain MinMax
/// keep a histogram too (for the calibration cache, which then serves every method).
pub fn collector_for(method: &CalibMethod, grid: Grid, keep_histogram: bool) -> Box<dyn Collector> {
    match (*method, range_method(method)) {
        (
            CalibMethod::MinMax {
                moving_average: Some(c),
            },
            _,
        ) => Box::new(MovingAverageMinMax::new(c)),
        (_, Some(RangeMethod::MinMax)) if !keep_histogram => Box::new(MinMax::default()),
        (_, Some(m)) => Box::new(HistogramCollector {
            hist: Histogram::default(),
            method: m,
            grid,
        }),
        (_, None) => Box::new(MinMax::default()),
    }
}

/// Finite minimum and maximum of `data` (None if it has no finite value).
///
/// Fast path: packed min/max that skip NaNs (AVX when the CPU has it, else SSE on x86-64, else 16 plain lanes);
/// only when an infinity shows up is the slice scanned again with a finiteness filter. This loop reads every
/// activation of every batch, so it matters.
pub fn finite_min_max(data: &[f32]) -> Option<(f32, f32)> {
    let (a, b) = raw_min_max(data);
    if a == f32::NEG_INFINITY || b == f32::INFINITY {
        // Rare: infinities present; take the finite extremes.
        let (mut a, mut b) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in data.iter().filter(|v| v.is_finite()) {
            a = a.min(v);
            b = b.max(v);
        }
        return (a <= b).then_some((a, b));
    }
    (a <= b && a.is_finite() && b.is_finite()).then_some((a, b))
}

/// Minimum and maximum ignoring NaNs ((inf, -inf) when there is no non-NaN value).
fn raw_min_max(data: &[f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX (checked just above).
            return unsafe { simd::min_max_avx(data) };
        }
        // SAFETY: SSE is part of the x86-64 baseline.
        unsafe { simd::min_max_sse(data) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        const L: usize = 16;
        let (mut lo, mut hi) = ([f32::INFINITY; L], [f32::NEG_INFINITY; L]);
        let chunks = data.chunks_exact(L);
        let rest = chunks.remainder();
        for c in chunks {
            for k in 0..L {
                lo[k] = if c[k] < lo[k] { c[k] } else { lo[k] };
                hi[k] = if c[k] > hi[k] { c[k] } else { hi[k] };
            }
        }
        scalar_tail(lo.iter().chain(rest), hi.iter().chain(rest))
    }
}

/// Min of `lo` and max of `hi`, NaNs skipped.
fn scalar_tail<'a>(
    lo: impl Iterator<Item = &'a f32>,
    hi: impl Iterator<Item = &'a f32>,
) -> (f32, f32) {
    let (mut a, mut b) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in lo {
        a = if v < a { v } else { a };
    }
    for &v in hi {
        b = if v > b { v } else { b };
    }
    (a, b)
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    // `_mm*_min_ps(v, acc)` returns its second operand when either is NaN, so NaNs in `v` are skipped.

    #[target_feature(enable = "avx")]
    pub(super) unsafe fn min_max_avx(data: &[f32]) -> (f32, f32) {
        let (mut lo0, mut lo1) = (_mm256_set1_ps(f32::INFINITY), _mm256_set1_ps(f32::INFINITY));
        let (mut hi0, mut hi1) = (
            _mm256_set1_ps(f32::NEG_INFINITY),
            _mm256_set1_ps(f32::NEG_INFINITY),
        );
        let chunks = data.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            let a = _mm256_loadu_ps(c.as_ptr());
            let b = _mm256_loadu_ps(c.as_ptr().add(8));
            lo0 = _mm256_min_ps(a, lo0);
            lo1 = _mm256_min_ps(b, lo1);
            hi0 = _mm256_max_ps(a, hi0);
            hi1 = _mm256_max_ps(b, hi1);
        }
        let mut lo = [0f32; 16];
        let mut hi = [0f32; 16];
        _mm256_storeu_ps(lo.as_mut_ptr(), lo0);
        _mm256_storeu_ps(lo.as_mut_ptr().add(8), lo1);
        _mm256_storeu_ps(hi.as_mut_ptr(), hi0);
        _mm256_storeu_ps(hi.as_mut_ptr().add(8), hi1);
        super::scalar_tail(lo.iter().chain(rest), hi.iter().chain(rest))
    }

    pub(super) unsafe fn min_max_sse(data: &[f32]) -> (f32, f32) {
        let mut lo = [_mm_set1_ps(f32::INFINITY); 4];
        let mut hi = [_mm_set1_ps(f32::NEG_INFINITY); 4];
        let chunks = data.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for k in 0..4 {
                let v = _mm_loadu_ps(c.as_ptr().add(4 * k));
                lo[k] = _mm_min_ps(v, lo[k]);
                hi[k] = _mm_max_ps(v, hi[k]);
            }
        }
        let mut l = [0f32; 16];
        let mut h = [0f32; 16];
        for k in 0..4 {
            _mm_storeu_ps(l.as_mut_ptr().add(4 * k), lo[k]);
            _mm_storeu_ps(h.as_mut_ptr().add(4 * k), hi[k]);
        }
        super::scalar_tail(l.iter().chain(rest), h.iter().chain(rest))
    }
}

/// The global minimum and maximum over all batches.
#[derive(Clone, Debug, Default)]
pub struct MinMax {
    range: Option<(f32, f32)>,
}

impl Collector for MinMax {
    fn observe(&mut self, data: &[f32]) {
        if let Some((a, b)) = finite_min_max(data) {
            self.range = Some(match self.range {
                Some((lo, hi)) => (lo.min(a), hi.max(b)),
                None => (a, b),
            });
        }
    }
    fn range(&self) -> Option<(f32, f32)> {
        self.range
    }
}

/// Per-batch minimum and maximum, averaged exponentially: `r = r + c * (batch - r)` (the first batch starts it).
#[derive(Clone, Debug)]
pub struct MovingAverageMinMax {
    c: f32,
    range: Option<(f32, f32)>,
}

impl MovingAverageMinMax {
    pub fn new(c: f32) -> Self {
        MovingAverageMinMax { c, range: None }
    }
}

impl Collector for MovingAverageMinMax {
    fn observe(&mut self, data: &[f32]) {
        if let Some((a, b)) = finite_min_max(data) {
            self.range = Some(match self.range {
                Some((lo, hi)) => (lo + self.c * (a - lo), hi + self.c * (b - hi)),
                None => (a, b),
            });
        }
    }
    fn range(&self) -> Option<(f32, f32)> {
        self.range
    }
}

/// Feeds `data[k]` to `collectors[k]`, on up to `workers` threads (contiguous groups of about equal size).
fn observe_parallel(collectors: &mut [Box<dyn Collector>], data: &[&[f32]], workers: usize) {
    let total: usize = data.iter().map(|d| d.len()).sum();
    if workers <= 1 || total < (1 << 16) || collectors.len() < 2 {
        for (c, d) in collectors.iter_mut().zip(data) {
            c.observe(d);
        }
        return;
    }
    // Boundaries: group g ends where the running size passes (g + 1) / workers of the total.
    let mut bounds = Vec::with_capacity(workers + 1);
    bounds.push(0);
    let mut acc = 0usize;
    for (k, d) in data.iter().enumerate() {
        acc += d.len();
        if acc * workers >= total * bounds.len() && bounds.len() < workers {
            bounds.push(k + 1);
        }
    }
    bounds.push(data.len());
    std::thread::scope(|scope| {
        let mut rest: &mut [Box<dyn Collector>] = collectors;
        for w in bounds.windows(2) {
            let (mine, tail) = rest.split_at_mut(w[1] - w[0]);
            rest = tail;
            let d = &data[w[0]..w[1]];
            scope.spawn(move || {
                for (c, x) in mine.iter_mut().zip(d) {
                    c.observe(x);
                }
            });
        }
    });
}

/// The prepared model with every float activation (not already an output) added as a typed graph output.
pub fn augment(prepared: &Prepared) -> ModelProto {
    let mut m = prepared.model.clone();
    let g = m.graph.as_mut().expect("prepared model has a graph");
    let outputs: HashSet<String> = g.output.iter().filter_map(|v| v.name.clone()).collect();
    let vi: HashMap<String, usize> = g
        .value_info
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.name.clone().map(|n| (n, i)))
        .collect();
    let mut add = Vec::new();
    for a in prepared
        .float_activations()
        .filter(|a| !a.is_graph_input && !outputs.contains(&a.name))
    {
        match vi.get(&a.name) {
            Some(&i) => add.push(g.value_info[i].clone()),
            None => add.push(crate::onnx::proto::ValueInfoProto {
                name: Some(a.name.clone()),
                ..Default::default()
            }),
        }
    }
    g.output.extend(add);
    m
}

/// Reinterprets float bytes (copying only if misaligned).
pub(crate) fn f32_data(bytes: &[u8]) -> Cow<'_, [f32]> {
    let n = bytes.len() / 4;
    if (bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f32>()) {
        // SAFETY: aligned, `n * 4 <= len` bytes, every bit pattern is a valid f32.
        Cow::Borrowed(unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const f32, n) })
    } else {
        Cow::Owned(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
}

/// Runs `source` through the augmented model and returns the range of every float activation (graph inputs
/// included).
///
/// `on_batch(done, total)` is called after each batch; an error from it (e.g. `Cancelled`) stops calibration and
/// is returned as is. Errors: `Calibration` if the source gave no batch at all; `TensorMismatch` for a batch with
/// an unknown/missing input or a wrong element type or shape (naming the tensor, both values and the batch);
/// the source's own errors (kept as they are, with the batch named); `Runtime` for ONNX Runtime failures.
/// Options of every session the quantizer measures a model with (calibration, bias correction and its guard).
/// ALL: ONNX Runtime's NCHWc convolution kernels are 2x faster than BASIC's here; fusions cannot hide an activation
/// the quantizer reads (each is a graph output), so the values seen are the float model's up to rounding. No
/// spinning: the collectors run on the cores between runs. The model as written, never the CPU plan's rewrite.
pub(crate) fn measuring_session_options() -> SessionOptions {
    let mut options = SessionOptions {
        graph_optimization_level: GraphOptimizationLevel::All,
        log_level: Some(crate::runtime::LogLevel::Error),
        fallback_execution: crate::runtime::FallbackExecution::AsWritten,
        ..Default::default()
    };
    options.config_entry("session.intra_op.allow_spinning", "0");
    options
}

pub fn calibrate(
    prepared: &Prepared,
    config: &QuantConfig,
    source: &mut dyn CalibrationSource,
    on_batch: &mut dyn FnMut(usize, Option<usize>) -> Result<()>,
) -> Result<Calibration> {
    calibrate_observed(prepared, config, source, on_batch, None)
}

/// [`calibrate`], showing every batch and the activations `observer` wants to it (see [`BatchObserver`]).
pub fn calibrate_observed(
    prepared: &Prepared,
    config: &QuantConfig,
    source: &mut dyn CalibrationSource,
    on_batch: &mut dyn FnMut(usize, Option<usize>) -> Result<()>,
    mut observer: Option<&mut dyn BatchObserver>,
) -> Result<Calibration> {
    let augmented = augment(prepared);
    let options = measuring_session_options();
    let key_now = cache_key(prepared, config);
    if let Some(path) = config.calib_cache.as_deref() {
        if let Some((key, tensors)) = calib_cache::read(path)? {
            let cached = Cached {
                path,
                key,
                tensors,
                key_now,
            };
            return from_cache(cached, prepared, config, source, on_batch, observer);
        }
    }
    let session = Session::from_model(&Model::from_proto(augmented), &options)
        .map_err(|e| e.context("creating the calibration session"))?;
    let Some(path) = config.calib_cache.as_deref() else {
        let collected = collect(
            &session,
            prepared,
            config,
            false,
            source,
            on_batch,
            (None, observer),
        )?;
        return Ok(to_calibration(&collected));
    };
    // Write path of the cache (a hit returned above, before the session was created).
    let mut digest = DataDigest::default();
    let collected = collect(
        &session,
        prepared,
        config,
        true,
        source,
        on_batch,
        (Some(&mut digest), observer.take()),
    )?;
    let key = CacheKey {
        data: digest.finish(),
        samples: digest.samples(),
        ..key_now
    };
    let tensors: Vec<CachedTensor> = collected
        .iter()
        .map(|c| CachedTensor {
            name: c.name.clone(),
            shape: c.shape.clone(),
            range: c.collector.range_collected(),
            histogram: c.collector.histogram().cloned(),
        })
        .collect();
    calib_cache::write(path, &key, &tensors)?;
    Ok(to_calibration(&collected))
}

/// One tensor's collector after calibration.
struct Collected {
    name: String,
    shape: Vec<i64>,
    collector: Box<dyn Collector>,
}

fn to_calibration(collected: &[Collected]) -> Calibration {
    let mut calib = Calibration::new();
    for c in collected {
        if let Some((min, max)) = c.collector.range() {
            calib.insert(
                c.name.clone(),
                TensorStats {
                    min,
                    max,
                    elem_type: DataType::Float.onnx(),
                    shape: c.shape.clone(),
                },
            );
        }
    }
    calib
}

/// The cache key's model and settings parts for `prepared` and `config` (the data part is left zero).
fn cache_key(prepared: &Prepared, config: &QuantConfig) -> CacheKey {
    use prost::Message;
    let moving_average = match config.method {
        CalibMethod::MinMax { moving_average } => moving_average,
        _ => None,
    };
    CacheKey {
        model: calib_cache::digest(&prepared.model.encode_to_vec()),
        settings: calib_cache::settings_digest(moving_average),
        data: [0; 32],
        samples: 0,
    }
}

/// A calibration cache that exists, and the key the model and settings give now.
struct Cached<'p> {
    path: &'p std::path::Path,
    key: CacheKey,
    tensors: Vec<CachedTensor>,
    key_now: CacheKey,
}

/// The calibration from a cache that exists: its key is checked (the data by reading every batch, without running
/// the model; `observer` sees each batch with nothing fetched), then each tensor's range is chosen from its cached
/// histogram with `config`'s method and grid.
fn from_cache(
    cached: Cached<'_>,
    prepared: &Prepared,
    config: &QuantConfig,
    source: &mut dyn CalibrationSource,
    on_batch: &mut dyn FnMut(usize, Option<usize>) -> Result<()>,
    mut observer: Option<&mut dyn BatchObserver>,
) -> Result<Calibration> {
    let Cached {
        path,
        key,
        tensors,
        key_now,
    } = cached;
    let nothing = vec![None; observer.as_ref().map_or(0, |o| o.wanted().len())];
    // Model and settings first: a foreign cache is refused before any data is read.
    calib_cache::check_key(
        path,
        &CacheKey {
            data: key.data,
            samples: key.samples,
            ..key_now.clone()
        },
        &key,
    )?;
    // The sources need the inputs' names, types and shapes: a session of the prepared model gives them without
    // the cost of the augmented one (nothing is run).
    let light = Session::from_model(
        &Model::from_proto(prepared.model.clone()),
        &SessionOptions {
            graph_optimization_level: GraphOptimizationLevel::Disable,
            log_level: Some(crate::runtime::LogLevel::Error),
            // The quantizer measures the model as written, never the CPU plan's rewrite.
            fallback_execution: crate::runtime::FallbackExecution::AsWritten,
            ..Default::default()
        },
    )
    .map_err(|e| e.context("creating a session to read the calibration cache's data"))?;
    let inputs = light.inputs().to_vec();
    let mut digest = DataDigest::default();
    for_each_batch(source, &inputs, on_batch, |batch, _| {
        digest.add(&batch.tensors);
        if let Some(o) = observer.as_deref_mut() {
            o.observe(batch, &nothing);
        }
        Ok(())
    })?;
    calib_cache::check_key(
        path,
        &key,
        &CacheKey {
            data: digest.finish(),
            samples: digest.samples(),
            ..key_now
        },
    )?;
    let method = range_method(&config.method);
    let mut calib = Calibration::new();
    for t in tensors {
        let range = match (&t.histogram, method) {
            (Some(h), Some(m)) => choose_range(h, m, &activation_grid(config, &t.name)),
            _ => t.range,
        };
        if let Some((min, max)) = range {
            calib.insert(
                t.name,
                TensorStats {
                    min,
                    max,
                    elem_type: DataType::Float.onnx(),
                    shape: t.shape,
                },
            );
        }
    }
    Ok(calib)
}

/// The source's next batch, with its errors put in context (callback and cancel errors kept as they are).
/// Feeds every batch of `source` to `f` (with its index), reporting progress after each; the number of batches, or
/// an error when the source gave none.
fn for_each_batch(
    source: &mut dyn CalibrationSource,
    inputs: &[TensorInfo],
    on_batch: &mut dyn FnMut(usize, Option<usize>) -> Result<()>,
    mut f: impl FnMut(&crate::quant::data::Batch<'_>, usize) -> Result<()>,
) -> Result<usize> {
    let total = source.len_hint();
    let mut done = 0usize;
    while let Some(batch) = next_batch(source, inputs, done)? {
        f(&batch, done)?;
        drop(batch);
        done += 1;
        on_batch(done, total)?;
    }
    if done == 0 {
        return Err(Error::new(
            ErrorKind::Calibration,
            "no calibration data: the source gave no batch",
        ));
    }
    Ok(done)
}

fn next_batch<'s>(
    source: &'s mut dyn CalibrationSource,
    inputs: &[TensorInfo],
    done: usize,
) -> Result<Option<crate::quant::data::Batch<'s>>> {
    match source.next_batch(inputs) {
        Ok(b) => Ok(b),
        Err(e) if matches!(e.kind(), ErrorKind::Callback | ErrorKind::Cancelled) => Err(e),
        Err(e) => Err(e.context(format!("calibration batch {done}"))),
    }
}

/// Runs every batch of `source` through `session` and feeds each float activation (and float graph input) to its
/// collector; `keep_histogram` makes MinMax keep histograms (for the cache); of `taps`, the digest hashes the
/// samples and the observer sees each batch's activations it wants.
fn collect(
    session: &Session,
    prepared: &Prepared,
    config: &QuantConfig,
    keep_histogram: bool,
    source: &mut dyn CalibrationSource,
    on_batch: &mut dyn FnMut(usize, Option<usize>) -> Result<()>,
    taps: (Option<&mut DataDigest>, Option<&mut dyn BatchObserver>),
) -> Result<Vec<Collected>> {
    let (mut digest, mut observer) = taps;
    let mut state = CollectState::new(session, prepared, config, keep_histogram);
    // Per wanted name, its index among the fetched outputs.
    let shown: Vec<Option<usize>> = observer.as_ref().map_or_else(Vec::new, |o| {
        o.wanted()
            .iter()
            .map(|w| state.out_names.iter().position(|n| n == w))
            .collect()
    });
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let inputs = state.inputs.clone();
    let done = for_each_batch(source, &inputs, on_batch, |batch, i| {
        if let Some(d) = digest.as_deref_mut() {
            d.add(&batch.tensors);
        }
        let tensors = state.observe_batch(session, batch, i, workers)?;
        if let Some(o) = observer.as_deref_mut() {
            let fetched: Vec<Option<(&[f32], &[i64])>> = shown
                .iter()
                .map(|k| {
                    let t = tensors.get((*k)?)?.as_ref()?;
                    Some((t.as_slice::<f32>().ok()?, t.shape()))
                })
                .collect();
            o.observe(batch, &fetched);
        }
        Ok(())
    })?;
    state.check_inputs_finite(done)?;
    Ok(state.into_collected())
}

/// What `collect` keeps between batches: one collector and last shape per fetched float output and per float
/// graph input.
struct CollectState {
    /// The session's inputs (names for messages and results).
    inputs: Vec<TensorInfo>,
    /// Indices of the session outputs fetched (the float activations) and their names.
    out_idx: Vec<usize>,
    out_names: Vec<String>,
    collectors: Vec<Box<dyn Collector>>,
    shapes: Vec<Vec<i64>>,
    /// Indices of the float session inputs.
    float_inputs: Vec<usize>,
    in_collectors: Vec<Box<dyn Collector>>,
    in_shapes: Vec<Vec<i64>>,
}

impl CollectState {
    fn new(
        session: &Session,
        prepared: &Prepared,
        config: &QuantConfig,
        keep_histogram: bool,
    ) -> CollectState {
        let float: HashMap<&str, &ActivationInfo> = prepared
            .float_activations()
            .map(|a| (a.name.as_str(), a))
            .collect();
        // Outputs to fetch: the float ones.
        let out_idx: Vec<usize> = session
            .outputs()
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                o.element_type_code == DataType::Float.onnx() && float.contains_key(o.name.as_str())
            })
            .map(|(i, _)| i)
            .collect();
        let out_names: Vec<String> = out_idx
            .iter()
            .map(|&i| session.outputs()[i].name.clone())
            .collect();
        let collector =
            |n: &str| collector_for(&config.method, activation_grid(config, n), keep_histogram);
        let collectors: Vec<Box<dyn Collector>> = out_names.iter().map(|n| collector(n)).collect();
        let float_inputs: Vec<usize> = session
            .inputs()
            .iter()
            .enumerate()
            .filter(|(_, i)| i.element_type_code == DataType::Float.onnx())
            .map(|(k, _)| k)
            .collect();
        let in_collectors: Vec<Box<dyn Collector>> = float_inputs
            .iter()
            .map(|&k| collector(&session.inputs()[k].name))
            .collect();
        CollectState {
            inputs: session.inputs().to_vec(),
            shapes: vec![Vec::new(); out_idx.len()],
            in_shapes: vec![Vec::new(); float_inputs.len()],
            out_idx,
            out_names,
            collectors,
            float_inputs,
            in_collectors,
        }
    }

    /// Runs one batch and feeds its float inputs and fetched outputs to their collectors; returns the fetched
    /// outputs (in `out_names` order).
    fn observe_batch(
        &mut self,
        session: &Session,
        batch: &crate::quant::data::Batch<'_>,
        done: usize,
        workers: usize,
    ) -> Result<Vec<Option<crate::runtime::Tensor>>> {
        let ctx = |e: Error| e.context(format!("calibration batch {done} ({})", batch.origin));
        let mut ins: Vec<(usize, TensorRef<'_>)> = Vec::with_capacity(batch.tensors.len());
        for (name, t) in &batch.tensors {
            ins.push((session.input_index(name).map_err(ctx)?, *t));
        }
        let mut outs: Vec<(usize, Option<crate::runtime::TensorMut<'_>>)> =
            self.out_idx.iter().map(|&i| (i, None)).collect();
        let tensors = session.run_indexed(None, &ins, &mut outs).map_err(ctx)?;
        for (k, &ii) in self.float_inputs.iter().enumerate() {
            if let Some((_, t)) = ins.iter().find(|(i, _)| *i == ii) {
                if t.element_type() == ElementType::Float32 {
                    self.in_collectors[k].observe(&f32_data(t.data()));
                    self.in_shapes[k] = t.shape().to_vec();
                }
            }
        }
        let mut views: Vec<&[f32]> = Vec::with_capacity(tensors.len());
        for (k, t) in tensors.iter().enumerate() {
            let t = t
                .as_ref()
                .ok_or_else(|| Error::internal("calibration run returned no tensor"))?;
            views.push(t.as_slice::<f32>()?);
            if self.shapes[k].as_slice() != t.shape() {
                self.shapes[k] = t.shape().to_vec();
            }
        }
        observe_parallel(&mut self.collectors, &views, workers);
        Ok(tensors)
    }

    /// An input whose every value was NaN/Inf (bad files, a tiny std) gives no range at all: every node downstream
    /// would silently stay float. Named here instead.
    fn check_inputs_finite(&self, done: usize) -> Result<()> {
        for (k, &ii) in self.float_inputs.iter().enumerate() {
            let seen = !self.in_shapes[k].is_empty() && self.in_shapes[k].iter().all(|&d| d > 0);
            if seen && self.in_collectors[k].range_collected().is_none() {
                return Err(Error::new(
                    ErrorKind::NonFinite,
                    format!(
                        "calibration data for input '{}' holds no finite value (every value is NaN or infinite, \
                         over {done} batch(es)): check the files, and the mean/std options",
                        self.inputs[ii].name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The collectors, float inputs first, then the fetched outputs in session order.
    fn into_collected(self) -> Vec<Collected> {
        let mut out = Vec::with_capacity(self.in_collectors.len() + self.collectors.len());
        let mut in_shapes = self.in_shapes;
        for ((k, &ii), c) in self.float_inputs.iter().enumerate().zip(self.in_collectors) {
            out.push(Collected {
                name: self.inputs[ii].name.clone(),
                shape: std::mem::take(&mut in_shapes[k]),
                collector: c,
            });
        }
        for ((name, c), shape) in self
            .out_names
            .into_iter()
            .zip(self.collectors)
            .zip(self.shapes)
        {
            out.push(Collected {
                name,
                shape,
                collector: c,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_ignores_nan_and_infinities() {
        let mut v: Vec<f32> = (0..37).map(|i| i as f32 - 10.0).collect();
        v[3] = f32::NAN;
        v[9] = f32::INFINITY;
        v[30] = f32::NEG_INFINITY;
        assert_eq!(finite_min_max(&v), Some((-10.0, 26.0)));
        assert_eq!(finite_min_max(&[f32::NAN; 20]), None);
        assert_eq!(finite_min_max(&[]), None);
        #[cfg(target_arch = "x86_64")]
        {
            let v: Vec<f32> = (0..1000)
                .map(|i| ((i * 37) % 101) as f32 - 50.0)
                .chain([f32::NAN; 3])
                .collect();
            assert_eq!(unsafe { simd::min_max_sse(&v) }, (-50.0, 50.0));
            if std::arch::is_x86_feature_detected!("avx") {
                assert_eq!(unsafe { simd::min_max_avx(&v) }, (-50.0, 50.0));
            }
        }
        let mut c = MinMax::default();
        c.observe(&[1.0, 2.0]);
        c.observe(&[-1.0, 0.5]);
        assert_eq!(c.range(), Some((-1.0, 2.0)));
    }

    #[test]
    fn moving_average() {
        let mut c = MovingAverageMinMax::new(0.5);
        c.observe(&[0.0, 4.0]);
        c.observe(&[-2.0, 2.0]);
        assert_eq!(c.range(), Some((-1.0, 3.0)));
    }
}
