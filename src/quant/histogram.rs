//! Histogram calibration: a streaming, order-independent histogram per activation, and the range choices made from
//! it (percentile, entropy, MinMSE on the preset's actual grid, power-of-two shift search).
//!
//! # Why the result does not depend on batch size or order
//! Bins have width `2^e` and are aligned at multiples of it: bin `i` of the positive side holds `[i·2^e, (i+1)·2^e)`,
//! bin `i` of the negative side holds `(-(i+1)·2^e, -i·2^e]`; exact zeros are counted apart (they quantize without
//! error, and a ReLU emits many). `e` is the smallest exponent for which the largest magnitude seen so far fits in
//! [`BINS`] bins. When a batch brings a larger magnitude, `e` grows and pairs of neighbouring bins merge: bin
//! `i` at `e` becomes bin `i >> d` at `e + d`, which is exactly the histogram one would have built at `e + d` from the
//! start, because the bins are nested. So the final histogram is the one at the exponent of the global maximum,
//! whatever the batches were, and counts are integers: byte-identical results for any batching. One pass, no second
//! run over the data, memory `2·BINS` counters per tensor whatever the number of samples. The price: the data
//! covers between half and all of the bins (at least `BINS / 2` bins over the range).

use crate::quant::calibrate::{finite_min_max, Collector};
use crate::quant::QuantType;

/// Bins per side (positive and negative magnitudes). 2048 as TensorRT's entropy calibrator.
pub const BINS: usize = 2048;

/// The streaming histogram of one tensor (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Bin width exponent (`None` until a non-zero finite value was seen).
    pub exp: Option<i32>,
    /// Counts of `|x|` for positive values, by bin.
    pub pos: Vec<u64>,
    /// Counts of `|x|` for negative values, by bin.
    pub neg: Vec<u64>,
    /// Exact zeros.
    pub zeros: u64,
    /// Finite extremes seen (`min > max` when none).
    pub min: f32,
    pub max: f32,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            exp: None,
            pos: vec![0; BINS],
            neg: vec![0; BINS],
            zeros: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }
}

/// The smallest exponent `e` with `m < BINS · 2^e` (m > 0, finite).
fn exponent_for(m: f64) -> i32 {
    let n = BINS as f64;
    let mut e = (m / n).log2().floor() as i32 + 1;
    // log2 rounding can be off by one either way; settle it exactly.
    while m >= n * 2f64.powi(e) {
        e += 1;
    }
    while m < n * 2f64.powi(e - 1) {
        e -= 1;
    }
    e
}

impl Histogram {
    /// The bin width (0 when no non-zero value was seen).
    pub fn width(&self) -> f64 {
        self.exp.map_or(0.0, |e| 2f64.powi(e))
    }

    /// True when no finite value was seen.
    pub fn is_empty(&self) -> bool {
        self.min > self.max
    }

    /// Finite values counted.
    pub fn count(&self) -> u64 {
        self.zeros + self.pos.iter().sum::<u64>() + self.neg.iter().sum::<u64>()
    }

    fn grow_to(&mut self, e: i32) {
        let Some(old) = self.exp else {
            self.exp = Some(e);
            return;
        };
        if e <= old {
            return;
        }
        let d = (e - old) as u32;
        for side in [&mut self.pos, &mut self.neg] {
            if d >= usize::BITS {
                let total: u64 = side.iter().sum();
                side.iter_mut().for_each(|c| *c = 0);
                side[0] = total;
                continue;
            }
            for i in 0..BINS {
                let c = std::mem::take(&mut side[i]);
                side[i >> d] += c;
            }
        }
        self.exp = Some(e);
    }

    /// Adds one batch of values (NaN and infinities skipped).
    pub fn add(&mut self, data: &[f32]) {
        let Some((a, b)) = finite_min_max(data) else {
            return;
        };
        self.min = self.min.min(a);
        self.max = self.max.max(b);
        let m = (-(a as f64)).max(b as f64);
        if m > 0.0 {
            self.grow_to(exponent_for(m));
        }
        let Some(e) = self.exp else {
            // Only zeros (and non-finite values) so far.
            self.zeros += data.iter().filter(|v| **v == 0.0).count() as u64;
            return;
        };
        let inv = 2f32.powi(-e);
        if inv.is_normal() {
            self.add_fast(data, inv, (a, b));
            return;
        }
        // 2^-e outside f32's normal range: no real activation gets here; the plain f64 loop is exact.
        let last = BINS - 1;
        let inv = 2f64.powi(-e);
        for &v in data.iter().filter(|v| v.is_finite()) {
            let i = (((v.abs() as f64) * inv) as usize).min(last);
            if v > 0.0 {
                self.pos[i] += 1;
            } else if v < 0.0 {
                self.neg[i] += 1;
            } else {
                self.zeros += 1;
            }
        }
    }

    /// The binning loop, which reads every activation of every batch: branch-free slot selection (the sign of
    /// activations is unpredictable, and a mispredicted branch per value cost more than the model run), and four
    /// interleaved sets of counters so runs of values in one bin (a ReLU's zeros) do not serialize on one counter.
    /// Multiplying by the power of two `inv` is exact (bar values so small they land in bin 0 anyway), so a value's
    /// bin never depends on the batch.
    /// `extremes` are the batch's finite minimum and maximum: no value lands beyond their bins, so only the bins up
    /// to them are merged (a ReLU's output never touches the negative side).
    fn add_fast(&mut self, data: &[f32], inv: f32, extremes: (f32, f32)) {
        const SLOTS: usize = 2 * BINS + 2;
        const ZERO: usize = 2 * BINS;
        const SKIP: usize = 2 * BINS + 1;
        // Small tensors: one set of counters (zeroing and merging four would cost more than the binning).
        let lanes = if data.len() < (1 << 16) { 1 } else { 4 };
        let last = BINS - 1;
        let slot = |v: f32| -> usize {
            let bits = v.to_bits();
            let a = f32::from_bits(bits & 0x7fff_ffff);
            // NaN converts to 0 and infinity saturates: both are sent to SKIP below.
            let i = ((a * inv) as usize).min(last) + ((bits >> 31) as usize) * BINS;
            let i = if a == 0.0 { ZERO } else { i };
            if a.is_finite() {
                i
            } else {
                SKIP
            }
        };
        // Bins reachable on the positive and negative sides (one past the extremes' bins).
        let top = |m: f32| match m > 0.0 {
            true => ((m * inv) as usize).min(last) + 1,
            false => 0,
        };
        let reach = (top(extremes.1), top(-extremes.0));
        let mut sub = vec![0u32; lanes * SLOTS];
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        // u32 counters: flushed every 2^30 values per lane at most.
        for block in data.chunks(4 << 30) {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2 (checked above); `sub` holds `lanes * SLOTS` counters.
                let rest = unsafe { simd::bin_avx2(block, inv, &mut sub, lanes) };
                for &v in rest {
                    sub[slot(v)] += 1;
                }
            } else if lanes == 1 {
                for &v in block {
                    sub[slot(v)] += 1;
                }
            } else {
                bin4(block, &mut sub, &slot);
            }
            #[cfg(not(target_arch = "x86_64"))]
            if lanes == 1 {
                for &v in block {
                    sub[slot(v)] += 1;
                }
            } else {
                bin4(block, &mut sub, &slot);
            }
            for l in 0..lanes {
                let s = &mut sub[l * SLOTS..(l + 1) * SLOTS];
                for (c, n) in self.pos[..reach.0].iter_mut().zip(&mut s[..reach.0]) {
                    *c += std::mem::take(n) as u64;
                }
                for (c, n) in self.neg[..reach.1]
                    .iter_mut()
                    .zip(&mut s[BINS..BINS + reach.1])
                {
                    *c += std::mem::take(n) as u64;
                }
                self.zeros += std::mem::take(&mut s[ZERO]) as u64;
                s[SKIP] = 0;
            }
        }
    }

    /// Adds another histogram (e.g. a cached one) to this one; exact, as adding their data would be.
    pub fn merge(&mut self, other: &Histogram) {
        if other.is_empty() {
            return;
        }
        let mut o = other.clone();
        if let (Some(a), Some(b)) = (self.exp, o.exp) {
            let e = a.max(b);
            self.grow_to(e);
            o.grow_to(e);
        } else if self.exp.is_none() {
            self.exp = o.exp;
        }
        for i in 0..BINS {
            self.pos[i] += o.pos[i];
            self.neg[i] += o.neg[i];
        }
        self.zeros += o.zeros;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// The same histogram with bins `2^d` times wider (exact, as if collected at that width).
    pub fn coarsened(&self, d: i32) -> Histogram {
        let mut c = self.clone();
        if let Some(e) = c.exp {
            c.grow_to(e + d);
        }
        c
    }

    /// Index one past the last non-empty bin of a side.
    fn occupied(side: &[u64]) -> usize {
        side.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1)
    }

    /// Counts of `|x|` over both sides; exact zeros in bin 0 when `with_zeros`.
    fn magnitudes(&self, with_zeros: bool) -> Vec<u64> {
        let mut m: Vec<u64> = self.pos.iter().zip(&self.neg).map(|(a, b)| a + b).collect();
        if with_zeros {
            m[0] += self.zeros;
        }
        m
    }
}

/// Bins `block` into four interleaved counter sets of `SLOTS` each.
fn bin4(block: &[f32], sub: &mut [u32], slot: &impl Fn(f32) -> usize) {
    const SLOTS: usize = 2 * BINS + 2;
    let chunks = block.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        sub[slot(c[0])] += 1;
        sub[SLOTS + slot(c[1])] += 1;
        sub[2 * SLOTS + slot(c[2])] += 1;
        sub[3 * SLOTS + slot(c[3])] += 1;
    }
    for &v in rest {
        sub[slot(v)] += 1;
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::BINS;
    use std::arch::x86_64::*;

    // The sign moves to the negative side with a shift by 11.
    const _: () = assert!(BINS == 1 << 11);

    /// The slots of eight values at a time, exactly as the scalar `slot` computes them (the product by a power of
    /// two is exact and below BINS, so truncation agrees), counted into `lanes` (4 or 1) interleaved sets. Returns
    /// the tail (fewer than 8 values) for the caller.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn bin_avx2<'a>(
        block: &'a [f32],
        inv: f32,
        sub: &mut [u32],
        lanes: usize,
    ) -> &'a [f32] {
        const SLOTS: usize = 2 * BINS + 2;
        assert!(sub.len() >= lanes * SLOTS && (lanes == 4 || lanes == 1));
        // One set (small tensors): every lane counts into the first.
        let set = if lanes == 4 { SLOTS as i32 } else { 0 };
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let vinv = _mm256_set1_ps(inv);
        let inf = _mm256_set1_ps(f32::INFINITY);
        let zero = _mm256_setzero_ps();
        let last = _mm256_set1_epi32(BINS as i32 - 1);
        let zslot = _mm256_set1_epi32(2 * BINS as i32);
        let skip = _mm256_set1_epi32(2 * BINS as i32 + 1);
        // Lane k of each group of 8 goes to counter set k % 4.
        let offs = _mm256_setr_epi32(0, set, 2 * set, 3 * set, 0, set, 2 * set, 3 * set);
        let chunks = block.chunks_exact(8);
        let rest = chunks.remainder();
        let mut idx = [0i32; 8];
        let p = sub.as_mut_ptr();
        for c in chunks {
            let v = _mm256_loadu_ps(c.as_ptr());
            let a = _mm256_and_ps(v, abs_mask);
            // Finite: a < inf (false for NaN and infinity).
            let finite = _mm256_cmp_ps::<_CMP_LT_OQ>(a, inf);
            let is_zero = _mm256_cmp_ps::<_CMP_EQ_OQ>(a, zero);
            let i = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_mul_ps(a, vinv)), last);
            let sign = _mm256_slli_epi32::<11>(_mm256_srli_epi32::<31>(_mm256_castps_si256(v)));
            let i = _mm256_add_epi32(i, sign);
            let i = _mm256_blendv_epi8(i, zslot, _mm256_castps_si256(is_zero));
            let i = _mm256_blendv_epi8(skip, i, _mm256_castps_si256(finite));
            let i = _mm256_add_epi32(i, offs);
            _mm256_storeu_si256(idx.as_mut_ptr() as *mut __m256i, i);
            for &k in &idx {
                // SAFETY: every slot is < SLOTS and every offset <= (lanes - 1) * SLOTS.
                *p.add(k as usize) += 1;
            }
        }
        rest
    }
}

/// The quantization grid a range is chosen for: what the preset will do with it (see `qdq::scale`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    pub qtype: QuantType,
    pub symmetric: bool,
    pub pow2: bool,
}

impl Grid {
    /// (scale, zero point) the emitter will derive from `(lo, hi)`.
    fn params(&self, lo: f64, hi: f64) -> (f64, f64) {
        let (s, z, _) = crate::quant::qdq::scale::range_params(
            lo as f32,
            hi as f32,
            self.qtype,
            self.symmetric,
            self.pow2,
        );
        (s as f64, z as f64)
    }

    /// The range whose parameters are exactly power-of-two `scale` (symmetric grids), sign-shaped like the data.
    fn pow2_range(&self, scale: f64, h: &Histogram) -> (f32, f32) {
        let (qmin, qmax) = (self.qtype.qmin() as f64, self.qtype.qmax() as f64);
        let t = if self.qtype.is_signed() {
            scale * qmax
        } else {
            scale * (qmax - qmin) / 2.0
        };
        shape_symmetric(t, h)
    }
}

/// A symmetric threshold `t` as a range: the side with the larger magnitude reaches `t` exactly (so the scale comes
/// out of `t`), the other side is clipped to `t` but not widened beyond the data.
fn shape_symmetric(t: f64, h: &Histogram) -> (f32, f32) {
    let t = t as f32;
    let (lo, hi) = (h.min.min(0.0), h.max.max(0.0));
    if -lo > hi {
        (-t, hi.min(t))
    } else {
        (lo.max(-t), t)
    }
}

/// Expected squared error of quantizing the histogram's data with scale `s` and zero point `zp` on `grid`.
///
/// Each bin is taken as uniform over its width `w`: values beyond the representable range cost their distance to the
/// edge (plus the bin's own `w²/12`); values that round to zero cost their square; the others cost the uniform
/// rounding noise `s²/12`. Exact zeros cost nothing (zero is always representable).
fn grid_error(h: &Histogram, grid: &Grid, s: f64, zp: f64) -> f64 {
    let w = h.width();
    let (qmin, qmax) = (grid.qtype.qmin() as f64, grid.qtype.qmax() as f64);
    let (lo_r, hi_r) = ((qmin - zp) * s, (qmax - zp) * s);
    let within = w * w / 12.0;
    let wide = w >= s;
    let bin_err = |c: f64| -> f64 {
        if c > hi_r {
            (c - hi_r).powi(2) + within
        } else if c < lo_r {
            (c - lo_r).powi(2) + within
        } else if c.abs() < s / 2.0 && !wide {
            // Rounds to zero: the whole value is lost.
            c * c + within
        } else {
            // Rounding noise, uniform over a step. (The error at the bin centre would alias when bins are only a
            // few per step and favour scales that happen to put centres on levels.)
            s * s / 12.0
        }
    };
    let mut err = 0.0;
    for (side, sign) in [(&h.pos, 1.0), (&h.neg, -1.0)] {
        for (i, &n) in side[..Histogram::occupied(side)].iter().enumerate() {
            if n > 0 {
                err += n as f64 * bin_err(sign * (i as f64 + 0.5) * w);
            }
        }
    }
    err
}

/// The range whose grid minimises the expected squared error over the histogram.
///
/// Power-of-two symmetric grids: every shift from the one that never clips down to 16 below it (AMD's
/// `PowerOfTwoMethod.MinMSE`). Symmetric float scales: 256 thresholds up to the largest magnitude. Asymmetric:
/// the upper then the lower end then the upper again, 128 candidates each (coordinate descent; each end's error is
/// nearly separable). Ties keep the wider range.
pub fn min_mse_range(h: &Histogram, grid: &Grid) -> Option<(f32, f32)> {
    if h.is_empty() {
        return None;
    }
    // The search evaluates the error hundreds of times: on bins 4x wider (still 256 to 512 per side, finer than an
    // 8-bit step) it is 4x cheaper and picks the same ranges within a candidate step.
    let coarse = h.coarsened(2);
    let h = &coarse;
    let (lo0, hi0) = (h.min.min(0.0) as f64, h.max.max(0.0) as f64);
    if h.exp.is_none() {
        return Some((lo0 as f32, hi0 as f32));
    }
    if grid.symmetric && grid.pow2 {
        let (s0, _) = grid.params(lo0, hi0);
        let mut best: Option<(f64, f64)> = None;
        for k in 0..=16 {
            let s = s0 / 2f64.powi(k);
            let (_, zp) = grid.params(-s, s);
            let e = grid_error(h, grid, s, zp);
            if best.is_none_or(|(be, _)| e < be) {
                best = Some((e, s));
            }
        }
        return best.map(|(_, s)| grid.pow2_range(s, h));
    }
    if grid.symmetric {
        let m = (-lo0).max(hi0);
        let mut best: Option<(f64, f64)> = None;
        for j in (1..=256).rev() {
            let t = m * j as f64 / 256.0;
            let (lo, hi) = shape_symmetric(t, h);
            let (s, zp) = grid.params(lo as f64, hi as f64);
            let e = grid_error(h, grid, s, zp);
            if best.is_none_or(|(be, _)| e < be) {
                best = Some((e, t));
            }
        }
        return best.map(|(_, t)| shape_symmetric(t, h));
    }
    let eval = |lo: f64, hi: f64| {
        let (s, zp) = grid.params(lo, hi);
        grid_error(h, grid, s, zp)
    };
    let (mut lo, mut hi) = (lo0, hi0);
    let mut best_e = eval(lo, hi);
    for round in 0..3 {
        let upper = round != 1;
        let end = if upper { hi0 } else { lo0 };
        if end == 0.0 {
            continue;
        }
        for j in (1..128).rev() {
            let c = end * j as f64 / 128.0;
            let e = if upper { eval(lo, c) } else { eval(c, hi) };
            if e < best_e {
                best_e = e;
                if upper {
                    hi = c;
                } else {
                    lo = c;
                }
            }
        }
    }
    Some((lo as f32, hi as f32))
}

/// The range clipping the magnitudes at the `percentile`-th percentile (in (0, 100]) of `|x|`, never wider than the
/// data. The threshold is the upper edge of the bin where the cumulative count reaches it.
pub fn percentile_range(h: &Histogram, percentile: f64) -> Option<(f32, f32)> {
    if h.is_empty() {
        return None;
    }
    let m = h.magnitudes(true);
    let total: u64 = m.iter().sum();
    let need = (total as f64 * percentile / 100.0).ceil() as u64;
    let mut acc = 0u64;
    let mut k = BINS - 1;
    for (i, &c) in m.iter().enumerate() {
        acc += c;
        if acc >= need {
            k = i;
            break;
        }
    }
    let t = (k as f64 + 1.0) * h.width();
    let (lo, hi) = (h.min.min(0.0) as f64, h.max.max(0.0) as f64);
    Some(((lo.max(-t)) as f32, (hi.min(t)) as f32))
}

/// Levels available to the larger side of the data on `grid` (the entropy method's target bin count).
fn levels(h: &Histogram, grid: &Grid) -> usize {
    let (qmin, qmax) = (grid.qtype.qmin() as i64, grid.qtype.qmax() as i64);
    let span = (qmax - qmin) as usize;
    if !grid.symmetric && h.min >= 0.0 {
        span + 1
    } else {
        span / 2 + 1
    }
}

/// TensorRT's entropy calibration: the threshold `i` (in bins of `|x|`) whose quantized distribution is closest
/// in KL divergence to the clipped reference (outliers folded into the last bin), with as many quantized bins as
/// the grid has levels on one side.
///
/// Two departures, both measured: exact zeros are left out of the distribution (they quantize without error; a
/// ReLU's spike of zeros in bin 0, merged with its neighbours, made every threshold but the smallest look bad and
/// clipped EfficientNet-Lite0 to 0 % agreement), and at most 256 thresholds are tried, evenly spaced (the
/// search is quadratic in the bins otherwise).
pub fn entropy_range(h: &Histogram, grid: &Grid) -> Option<(f32, f32)> {
    if h.is_empty() {
        return None;
    }
    let (lo, hi) = (h.min.min(0.0) as f64, h.max.max(0.0) as f64);
    let m = h.magnitudes(false);
    let used = Histogram::occupied(&m);
    let nq = levels(h, grid);
    if h.exp.is_none() || used <= nq {
        return Some((lo as f32, hi as f32));
    }
    // suffix[i]: the mass at and beyond bin i.
    let mut suffix = vec![0f64; used + 1];
    for i in (0..used).rev() {
        suffix[i] = suffix[i + 1] + m[i] as f64;
    }
    // Prefix sums of the counts and of the non-empty bins, so each level's mass and support are two lookups (the
    // counts are integers, so the sums are exact and equal to summing each level's bins).
    let (mut mass_to, mut nz_to) = (vec![0u64; used + 1], vec![0usize; used + 1]);
    for k in 0..used {
        mass_to[k + 1] = mass_to[k] + m[k];
        nz_to[k + 1] = nz_to[k] + usize::from(m[k] > 0);
    }
    let mut best: Option<(f64, usize)> = None;
    let mut p = vec![0f64; used];
    let mut q = vec![0f64; used];
    let stride = ((used - nq) / 256).max(1);
    let candidates = (nq..=used).step_by(stride).chain(std::iter::once(used));
    for i in candidates {
        // Reference: the first i bins, the rest of the mass in the last one.
        let outliers = suffix[i];
        for k in 0..i {
            p[k] = m[k] as f64;
        }
        p[i - 1] += outliers;
        // Candidate: the first i bins merged into nq levels, each level's mass spread over its non-empty bins.
        for j in 0..nq {
            let (a, b) = (j * i / nq, (j + 1) * i / nq);
            let mass = (mass_to[b] - mass_to[a]) as f64;
            let nz = nz_to[b] - nz_to[a];
            for k in a..b {
                q[k] = if m[k] > 0 { mass / nz as f64 } else { 0.0 };
            }
        }
        let kl = kl_divergence(&p[..i], &q[..i]);
        if best.is_none_or(|(b, _)| kl < b) {
            best = Some((kl, i));
        }
    }
    let (_, i) = best?;
    let t = (i as f64 + 0.5) * h.width();
    Some(((lo.max(-t)) as f32, (hi.min(t)) as f32))
}

/// KL(p || q) of two unnormalised histograms, with the smoothing of MXNet's / ONNX Runtime's entropy calibrators:
/// empty bins of q get `eps` *counts*, taken evenly from its non-empty ones, so a bin where only p has mass costs a
/// large finite amount. (Smoothing the normalised probabilities instead, as a first version did, swamps the many
/// small bins of a 2048-bin histogram and drove the search to the smallest thresholds.)
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    const EPS: f64 = 1e-4;
    let ps: f64 = p.iter().sum();
    let qs: f64 = q.iter().sum();
    if ps <= 0.0 || qs <= 0.0 {
        return f64::INFINITY;
    }
    let nz = q.iter().filter(|&&v| v > 0.0).count();
    let zeros = q.len() - nz;
    let take = if nz > 0 {
        EPS * zeros as f64 / nz as f64
    } else {
        0.0
    };
    let mut kl = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        if a <= 0.0 {
            continue;
        }
        let pa = a / ps;
        let qb = if b > 0.0 {
            (b - take).max(EPS) / qs
        } else {
            EPS / qs
        };
        kl += pa * (pa / qb.max(1e-12)).ln();
    }
    kl
}

/// A collector that keeps the histogram and turns it into a range with `method` on `grid` at the end.
#[derive(Clone, Debug)]
pub struct HistogramCollector {
    pub hist: Histogram,
    pub method: RangeMethod,
    pub grid: Grid,
}

/// The histogram-based ways to pick a range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeMethod {
    MinMax,
    Percentile(f64),
    Entropy,
    MinMse,
    /// The data's extremes: with power-of-two scales the shift is rounded up, so nothing clips.
    NonOverflow,
}

/// The range `method` picks from `h` for `grid`.
pub fn choose_range(h: &Histogram, method: RangeMethod, grid: &Grid) -> Option<(f32, f32)> {
    match method {
        RangeMethod::MinMax | RangeMethod::NonOverflow => (!h.is_empty()).then_some((h.min, h.max)),
        RangeMethod::Percentile(p) => percentile_range(h, p),
        RangeMethod::Entropy => entropy_range(h, grid),
        RangeMethod::MinMse => min_mse_range(h, grid),
    }
}

impl Collector for HistogramCollector {
    fn observe(&mut self, data: &[f32]) {
        self.hist.add(data);
    }
    fn range(&self) -> Option<(f32, f32)> {
        choose_range(&self.hist, self.method, &self.grid)
    }
    fn range_collected(&self) -> Option<(f32, f32)> {
        (!self.hist.is_empty()).then_some((self.hist.min, self.hist.max))
    }
    fn histogram(&self) -> Option<&Histogram> {
        Some(&self.hist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(qtype: QuantType, symmetric: bool, pow2: bool) -> Grid {
        Grid {
            qtype,
            symmetric,
            pow2,
        }
    }
    use crate::quant::qdq::scale::range_params;

    /// Deterministic pseudo-random numbers (xorshift), no dependency.
    fn rng(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Laplace(0, 1) samples (heavy tails).
    fn laplace(n: usize, seed: u64) -> Vec<f32> {
        let mut r = rng(seed);
        (0..n)
            .map(|_| {
                let u = r() - 0.5;
                (-(u.signum()) * (1.0 - 2.0 * u.abs()).max(1e-12).ln()) as f32
            })
            .collect()
    }

    /// Laplace samples and two big outliers.
    fn laplace_outliers(n: usize, seed: u64) -> Vec<f32> {
        let mut v = laplace(n, seed);
        v[7] = 40.0;
        v[9] = -35.0;
        v
    }

    #[test]
    fn any_batching_and_order_gives_the_same_histogram() {
        let v = laplace_outliers(50_000, 1);
        let mut whole = Histogram::default();
        whole.add(&v);
        let mut chunks = Histogram::default();
        // Small chunks first: the range grows several times, so bins merge.
        for c in v.chunks(333) {
            chunks.add(c);
        }
        let mut reversed = Histogram::default();
        for c in v.rchunks(1000) {
            reversed.add(c);
        }
        assert_eq!(whole, chunks);
        assert_eq!(whole, reversed);
        assert_eq!(whole.count(), 50_000);
        let mut merged = Histogram::default();
        let (a, b) = v.split_at(20_000);
        let mut ha = Histogram::default();
        ha.add(b);
        merged.add(a);
        merged.merge(&ha);
        assert_eq!(whole, merged);
        // The largest magnitude fits and uses the top half of the bins.
        let top = (40.0 / whole.width()) as usize;
        assert!((BINS / 2..BINS).contains(&top), "{top}");
    }

    #[test]
    fn fast_binning_matches_a_plain_reference_on_big_tensors_with_special_values() {
        // Big enough for the four-lane (and AVX2) path; NaN, infinities, signed zeros, subnormals, exact edges.
        let mut v = laplace(300_001, 5);
        for (k, x) in [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            1e-40,
            -1e-40,
            0.5,
            -0.5,
        ]
        .into_iter()
        .enumerate()
        {
            v[k * 1000 + 3] = x;
        }
        let mut h = Histogram::default();
        h.add(&v);
        let (a, b) = finite_min_max(&v).unwrap();
        let e = exponent_for((-(a as f64)).max(b as f64));
        let mut r = Histogram {
            exp: Some(e),
            min: a,
            max: b,
            ..Histogram::default()
        };
        for &x in v.iter().filter(|x| x.is_finite()) {
            let i = ((x.abs() as f64) / 2f64.powi(e)).floor() as usize;
            match x.partial_cmp(&0.0).unwrap() {
                std::cmp::Ordering::Greater => r.pos[i] += 1,
                std::cmp::Ordering::Less => r.neg[i] += 1,
                std::cmp::Ordering::Equal => r.zeros += 1,
            }
        }
        assert_eq!(h, r);
    }

    #[test]
    fn non_negative_data_uses_only_the_positive_side_and_counts_zeros_apart() {
        let mut h = Histogram::default();
        h.add(&[0.0, 0.0, 0.0]);
        assert_eq!((h.exp, h.zeros), (None, 3));
        h.add(&[0.0, 1.0, 2.0, 3.0, f32::NAN, f32::INFINITY]);
        assert_eq!(h.zeros, 4);
        assert!(h.neg.iter().all(|&c| c == 0));
        assert_eq!(h.pos.iter().sum::<u64>(), 3);
        assert_eq!((h.min, h.max), (0.0, 3.0));
    }

    #[test]
    fn percentile_finds_the_known_quantile() {
        // Uniform on [0, 1): the 90th percentile is 0.9.
        let v: Vec<f32> = (0..100_000).map(|i| i as f32 / 100_000.0).collect();
        let mut h = Histogram::default();
        h.add(&v);
        let (lo, hi) = percentile_range(&h, 90.0).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 0.9).abs() < 2.0 * h.width() as f32, "{hi}");
        assert_eq!(percentile_range(&h, 100.0).unwrap().1, h.max);
    }

    /// Brute force: the mean squared error of actually quantizing `v` with the scale a range gives.
    fn true_mse(v: &[f32], range: (f32, f32), grid: &Grid) -> f64 {
        let (s, zp, _) = range_params(range.0, range.1, grid.qtype, grid.symmetric, grid.pow2);
        let (qmin, qmax) = (grid.qtype.qmin(), grid.qtype.qmax());
        v.iter()
            .map(|&x| {
                let q = crate::quant::qdq::scale::quantize_value(x, s, zp, qmin, qmax);
                let d = x as f64 - ((q - zp) as f64 * s as f64);
                d * d
            })
            .sum::<f64>()
            / v.len() as f64
    }

    #[test]
    fn min_mse_clips_outliers_and_beats_min_max_on_the_real_error() {
        let v = laplace(200_000, 2);
        let mut h = Histogram::default();
        h.add(&v);
        for grid in [
            grid(QuantType::S8, true, false),
            grid(QuantType::U8, false, false),
            grid(QuantType::U8, true, true),
        ] {
            let r = min_mse_range(&h, &grid).unwrap();
            let mm = (h.min, h.max);
            let (e, e_mm) = (true_mse(&v, r, &grid), true_mse(&v, mm, &grid));
            // Laplace(0, 1) at 8 bits: the MSE-optimal symmetric clip is about 9.9 (Banner et al., "ACIQ", 2019);
            // the largest of 200 000 samples is about 12.
            assert!(r.1 < 11.5 && r.1 > 7.0, "{grid:?}: {r:?}");
            assert!(e < 0.9 * e_mm, "{grid:?}: {e} vs minmax {e_mm}");
            // The search's optimum is the true one within a few percent: scan thresholds on the real data.
            let best_true = (1..=160)
                .map(|j| {
                    let t = j as f32 * 0.25;
                    true_mse(&v, (-t, t), &grid)
                })
                .fold(f64::INFINITY, f64::min);
            assert!(e <= best_true * 1.1, "{grid:?}: {e} vs best {best_true}");
        }
    }

    #[test]
    fn pow2_min_mse_picks_the_shift_that_minimises_error_not_the_ceiling() {
        let v = laplace(200_000, 3);
        let mut h = Histogram::default();
        h.add(&v);
        let grid = grid(QuantType::S8, true, true);
        let r = min_mse_range(&h, &grid).unwrap();
        let (s, _, _) = range_params(r.0, r.1, grid.qtype, true, true);
        let (s_ceil, _, _) = range_params(h.min, h.max, grid.qtype, true, true);
        assert_eq!(s.log2().fract(), 0.0);
        assert!(s < s_ceil, "{s} {s_ceil}");
        // The chosen shift is the best of all shifts on the real data.
        let errs: Vec<(f32, f64)> = (0..12)
            .map(|k| {
                let s = s_ceil / 2f32.powi(k);
                (s, true_mse(&v, (-s * 127.0, s * 127.0), &grid))
            })
            .collect();
        let best = errs.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        assert_eq!(s, best.0, "{errs:?}");
        // NonOverflow keeps the ceiling: nothing clips.
        let r = choose_range(&h, RangeMethod::NonOverflow, &grid).unwrap();
        assert_eq!(range_params(r.0, r.1, grid.qtype, true, true).0, s_ceil);
    }

    #[test]
    fn entropy_keeps_the_bulk_of_a_wide_smooth_distribution() {
        // Gaussian bulk spread over many bins (each with a small probability) and one far outlier: the threshold
        // must cover the bulk (|x| up to about 4.5), not collapse to the smallest candidate.
        let mut r = rng(6);
        let mut v: Vec<f32> = (0..400_000)
            .map(|_| {
                let (a, b) = (r().max(1e-12), r());
                ((-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()) as f32
            })
            .collect();
        v[0] = 9.0;
        let mut h = Histogram::default();
        h.add(&v);
        for grid in [
            grid(QuantType::S8, true, false),
            grid(QuantType::U8, false, false),
        ] {
            let (lo, hi) = entropy_range(&h, &grid).unwrap();
            assert!(hi > 3.0 && lo < -3.0, "{grid:?}: ({lo}, {hi})");
        }
    }

    #[test]
    fn entropy_clips_a_long_tail_and_keeps_a_bounded_distribution() {
        let grid = grid(QuantType::S8, true, false);
        let v = laplace_outliers(200_000, 4);
        let mut h = Histogram::default();
        h.add(&v);
        let (_, hi) = entropy_range(&h, &grid).unwrap();
        assert!(hi < 20.0 && hi > 3.0, "{hi}");
        // Uniform data has nothing to clip: the threshold stays at the top.
        let u: Vec<f32> = (0..100_000).map(|i| i as f32 / 50_000.0 - 1.0).collect();
        let mut h = Histogram::default();
        h.add(&u);
        let (lo, hi) = entropy_range(&h, &grid).unwrap();
        assert!(hi > 0.95 && lo < -0.95, "{lo} {hi}");
    }
}
