//! Learned weight rounding by second-order error compensation (GPTQ class: Frantar et al. 2022, after OBQ).
//!
//! A linear layer's output error from quantizing its weight row `w` to `q` is `E[((q - w) x)^2] = (q - w) H
//! (q - w)^T` with `H = E[x x^T]`, the second moment of the layer's input (for a Conv: of the im2col patches of one
//! group). So `H` is all the data the rounding needs. It is accumulated streaming from the float model's layer inputs
//! (the bias-correction tap, `crate::quant::bias_correct`), one `d x d` matrix per Conv group (`d = C/group * kh *
//! kw`) or per Gemm, whatever the number of samples: memory is fixed by the model.
//!
//! The rounding then visits the row's elements in order; each is rounded to its grid point with the layer's own
//! scale (the same [`WeightSpec`] the emitter uses), and its rounding error is spread over the elements not yet
//! rounded, weighted by the inverse of `H` (the upper Cholesky factor `U` of `H^-1`: `w[j] -= e / U[i][i] *
//! U[i][j]`), which is the least-squares compensation of the output error. Rows are independent given `H`, so they
//! run on all cores; every row's arithmetic is sequential, so the result does not depend on the thread count.
//!
//! The grid is never changed: the elements that fix the range (a channel's, or the tensor's, extreme integers
//! under plain rounding) keep their rounded value, so the emitter, re-deriving the parameters from the new weight,
//! finds the same scale. That is checked per layer; a layer where it does not hold keeps plain rounding.

use ndarray::ArrayView2;

use crate::onnx::node::{attr_i, attr_ints, op};
use crate::onnx::proto::NodeProto;
use crate::quant::qdq::scale::{quantize_value, weight_qrange};
use crate::quant::qdq::weights::{dequantize, quantize_weight, QWeight, WeightSpec};

/// Damping added to `H`'s diagonal, relative to its mean diagonal (GPTQ's default): keeps the factorization
/// stable where inputs are nearly collinear.
const DAMP: f64 = 0.01;

/// Layers with more inputs per group than this keep plain rounding: `H` would cost `8 d^2` bytes and its
/// factorization `d^3` operations.
pub const MAX_INPUTS: usize = 1536;

/// Accumulators (f64) all second moments of a model may hold together (256 MB); layers beyond it keep plain
/// rounding, in graph order.
pub const BUDGET: usize = 32 << 20;

/// Fewer calibration samples than this: plain rounding everywhere. With the 4 samples of the real-model corpus the
/// second moments are too noisy: ppocr-mobile-cls XINT8 fell from 20.4 to 7.6 dB and pplcnet-orientation CPU from
/// 13.2 to 8.4 dB, while the shared models with 31 samples gained on every preset.
pub const MIN_SAMPLES: u64 = 16;

/// Variants of the rounding, off by default until measured (docs/quantization-sweep.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Per-tensor weights: also round on a few finer scales (clipping the largest weights, which the compensation
    /// then spreads) and keep the grid with the lowest output error `sum e H e^T` after rounding.
    pub scale_search: bool,
    /// Visit each row's inputs by decreasing second moment (GPTQ's act-order): the large inputs are rounded while
    /// most of the row is still free to absorb their error.
    pub act_order: bool,
    /// An INT8 bias is the weight of a constant input 1 (its second-moment row is the input's mean `E[x]`, its
    /// corner 1), rounded first on its power-of-two grid: the weights then carry its rounding error through the
    /// inputs' mean. The bias itself stays float for bias correction, which lands it on, or next to, that grid
    /// point.
    pub bias_first: bool,
}

/// The finer per-tensor scales [`Options::scale_search`] tries beside the emitter's `s` (float scales: 10 %, 20 %
/// and 30 % of the range clipped; power of two: the next finer shift).
fn candidate_scales(s: f32, pow2: bool) -> Vec<f32> {
    if pow2 {
        vec![s / 2.0]
    } else {
        [0.9f32, 0.8, 0.7].iter().map(|f| s * f).collect()
    }
}

/// Where a layer's rows and input patches come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Geometry {
    /// 2-D Conv: weight `[m, cg, kh, kw]`, `group` groups.
    Conv {
        group: usize,
        cg: usize,
        kh: usize,
        kw: usize,
        strides: [usize; 2],
        pads: [usize; 4],
        dil: [usize; 2],
    },
    /// Gemm with input `[N, K]` (or MatMul with input `[N, ..., K]`); the weight is `[K, N]`, or `[N, K]` with
    /// `trans_b`.
    Gemm { k: usize, trans_b: bool },
}

impl Geometry {
    /// The geometry of `n` (weight dims `wd`), or `None` for a layout not handled.
    pub fn of(n: &NodeProto, wd: &[i64]) -> Option<Geometry> {
        match op(n) {
            "Conv" if wd.len() == 4 && wd.iter().all(|&d| d > 0) => {
                let group = attr_i(n, "group").unwrap_or(1);
                let two = |name: &str| -> Option<[usize; 2]> {
                    match attr_ints(n, name).as_deref() {
                        None => Some([1, 1]),
                        Some([a, b]) if *a > 0 && *b > 0 => Some([*a as usize, *b as usize]),
                        _ => None,
                    }
                };
                let pads = match attr_ints(n, "pads").as_deref() {
                    None => [0; 4],
                    Some([a, b, c, d]) if [a, b, c, d].iter().all(|&&x| x >= 0) => {
                        [*a as usize, *b as usize, *c as usize, *d as usize]
                    }
                    _ => return None,
                };
                if group <= 0 || wd[0] % group != 0 {
                    return None;
                }
                Some(Geometry::Conv {
                    group: group as usize,
                    cg: wd[1] as usize,
                    kh: wd[2] as usize,
                    kw: wd[3] as usize,
                    strides: two("strides")?,
                    pads,
                    dil: two("dilations")?,
                })
            }
            "Gemm" if wd.len() == 2 && wd.iter().all(|&d| d > 0) => {
                let trans_b = attr_i(n, "transB").unwrap_or(0) != 0;
                Some(Geometry::Gemm {
                    k: if trans_b { wd[1] } else { wd[0] } as usize,
                    trans_b,
                })
            }
            // MatMul by a constant `[K, N]` matrix: a Gemm without bias, row by row.
            "MatMul" if wd.len() == 2 && wd.iter().all(|&d| d > 0) => Some(Geometry::Gemm {
                k: wd[0] as usize,
                trans_b: false,
            }),
            _ => None,
        }
    }

    /// f64 accumulators the layer's moment needs, or `None` above [`MAX_INPUTS`].
    pub fn accumulators(&self) -> Option<usize> {
        let (g, d) = self.blocks();
        (d <= MAX_INPUTS).then(|| g * d * d)
    }

    /// (number of `H` matrices, their dimension).
    fn blocks(&self) -> (usize, usize) {
        match *self {
            Geometry::Conv {
                group, cg, kh, kw, ..
            } => (group, cg * kh * kw),
            Geometry::Gemm { k, .. } => (1, k),
        }
    }
}

/// The streaming second moment of one layer's input: `sum x x^T` per group (f64, row-major `d x d`).
pub struct Moment {
    pub geometry: Geometry,
    /// Per group `sum x x^T`; after [`Moment::factor`] with the bias in, the `(d + 1)^2` matrix whose last
    /// row and column are `sum x` and the count of rows (the bias's constant input).
    h: Vec<Vec<f64>>,
    /// Per group `sum x` (the bias's row of the second moment).
    sum: Vec<Vec<f64>>,
    /// The layer has a bias that [`Options::bias`] may round.
    has_bias: bool,
    /// `h` holds the bias's row and column (the factors and order are of `d + 1` inputs, the bias last in `h`).
    augmented: bool,
    /// Per group, the factor of [`inverse_cholesky_upper`] once [`Moment::factor`] ran (`None` inside: not
    /// positive definite).
    factors: Option<Vec<Option<Vec<f64>>>>,
    /// Per group, the order the inputs are rounded in (the factors are of `H` permuted so); identity unless
    /// [`Options::act_order`].
    order: Vec<Vec<usize>>,
    /// Input shape without the batch dimension, fixed by the first batch; `None` once it changed (no rounding
    /// then).
    shape: Option<Vec<i64>>,
    rows: u64,
}

impl Moment {
    pub fn new(geometry: Geometry, has_bias: bool) -> Moment {
        let (g, d) = geometry.blocks();
        Moment {
            geometry,
            h: vec![vec![0.0; d * d]; g],
            sum: vec![vec![0.0; d]; g],
            has_bias,
            augmented: false,
            shape: Some(Vec::new()),
            rows: 0,
            factors: None,
            order: Vec::new(),
        }
    }

    /// Factors every group's second moment now: the costly step of [`round_layer`] (`d^3` for a layer with `d`
    /// inputs, one thread per group), which a caller can so run for all layers at once on all cores. Needs no
    /// more data after this.
    pub fn factor(&mut self, opts: Options) {
        if self.factors.is_none() && self.shape.is_some() && self.rows > 0 {
            let mut d = self.geometry.blocks().1;
            if opts.bias_first && self.has_bias {
                self.augment();
                d += 1;
            }
            self.order = self
                .h
                .iter()
                .map(|h| input_order(h, d, opts, self.augmented))
                .collect();
            self.factors = Some(
                self.h
                    .iter()
                    .zip(&self.order)
                    .map(|(h, o)| inverse_cholesky_upper(&permuted(h, d, o), d))
                    .collect(),
            );
        }
    }

    /// Extends every group's `h` by the bias's constant input (last row and column: `sum x`, then the row count).
    fn augment(&mut self) {
        let d = self.geometry.blocks().1;
        for (h, s) in self.h.iter_mut().zip(&self.sum) {
            let mut a = vec![0f64; (d + 1) * (d + 1)];
            for i in 0..d {
                a[i * (d + 1)..i * (d + 1) + d].copy_from_slice(&h[i * d..(i + 1) * d]);
                a[i * (d + 1) + d] = s[i];
                a[d * (d + 1) + i] = s[i];
            }
            a[(d + 1) * (d + 1) - 1] = self.rows as f64;
            *h = a;
        }
        self.augmented = true;
    }

    /// f64 accumulators held: fixed by the layer, whatever the number of samples.
    pub fn accumulators(&self) -> usize {
        self.h.iter().map(Vec::len).sum::<usize>() + self.sum.iter().map(Vec::len).sum::<usize>()
    }

    /// Adds one batch of the layer's input (`data` with `shape`, batch first). Non-finite values count as 0.
    /// Every item is added on its own, so the sums do not depend on how the samples were batched.
    pub fn add(&mut self, data: &[f32], shape: &[i64]) {
        let Some(known) = self.shape.as_mut() else {
            return;
        };
        let (n, rest) = match shape.split_first() {
            Some((&n, rest)) if n > 0 && !data.is_empty() => (n as usize, rest),
            _ => return,
        };
        if known.is_empty() {
            *known = rest.to_vec();
        } else if known.as_slice() != rest {
            self.shape = None;
            return;
        }
        let per = data.len() / n;
        match self.geometry {
            Geometry::Gemm { k, .. } => {
                // Gemm: `[N, K]`; MatMul: `[N, ..., K]`, every leading position a row of its own.
                if rest.last() != Some(&(k as i64)) {
                    self.shape = None;
                    return;
                }
                let mut x = vec![0f32; per];
                for item in data.chunks_exact(per) {
                    x.iter_mut().zip(item).for_each(|(o, v)| *o = finite(*v));
                    let m = ArrayView2::from_shape((per / k, k), &x).expect("rows * k values");
                    add_gram(&mut self.h[0], m.t());
                    for row in x.chunks_exact(k) {
                        self.sum[0]
                            .iter_mut()
                            .zip(row)
                            .for_each(|(s, v)| *s += *v as f64);
                    }
                }
                self.rows += (data.len() / k) as u64;
            }
            Geometry::Conv { .. } => {
                let Some(pt) = Patches::of(&self.geometry, rest) else {
                    self.shape = None;
                    return;
                };
                let (groups, d) = self.geometry.blocks();
                let mut cols = vec![0f32; d * pt.p()];
                for item in data.chunks_exact(per) {
                    for (g, (h, s)) in self
                        .h
                        .iter_mut()
                        .zip(&mut self.sum)
                        .enumerate()
                        .take(groups)
                    {
                        pt.im2col(&item[g * pt.cg * pt.h * pt.w..], &mut cols);
                        let m = ArrayView2::from_shape((d, pt.p()), &cols).expect("d * p values");
                        add_gram(h, m);
                        for (si, row) in s.iter_mut().zip(cols.chunks_exact(pt.p())) {
                            *si += row.iter().map(|v| *v as f64).sum::<f64>();
                        }
                    }
                }
                self.rows += (n * pt.p()) as u64;
            }
        }
    }
}

/// A Conv layer's patch geometry for one input shape `[C, H, W]`.
struct Patches {
    cg: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    strides: [usize; 2],
    pads: [usize; 4],
    dil: [usize; 2],
}

impl Patches {
    /// `None` when `rest` (the input shape without batch) does not fit the Conv.
    fn of(geometry: &Geometry, rest: &[i64]) -> Option<Patches> {
        let Geometry::Conv {
            group,
            cg,
            kh,
            kw,
            strides,
            pads,
            dil,
        } = *geometry
        else {
            return None;
        };
        let [c, h, w] = match *rest {
            [c, h, w] if c > 0 && h > 0 && w > 0 => [c as usize, h as usize, w as usize],
            _ => return None,
        };
        let span = |k: usize, dl: usize| (k - 1) * dl + 1;
        let (eh, ew) = (h + pads[0] + pads[2], w + pads[1] + pads[3]);
        if c != cg * group || eh < span(kh, dil[0]) || ew < span(kw, dil[1]) {
            return None;
        }
        Some(Patches {
            cg,
            h,
            w,
            oh: (eh - span(kh, dil[0])) / strides[0] + 1,
            ow: (ew - span(kw, dil[1])) / strides[1] + 1,
            kh,
            kw,
            strides,
            pads,
            dil,
        })
    }

    /// Output positions: the columns of the patch matrix.
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// The valid output columns `lo..hi` of kernel column `b` (where the input column is inside the image), and
    /// the input column of output column 0 (offset by the left pad).
    fn columns(&self, b: usize) -> (usize, usize) {
        let off = b * self.dil[1];
        let (s, pad) = (self.strides[1], self.pads[1]);
        let lo = pad.saturating_sub(off).div_ceil(s).min(self.ow);
        let hi = (self.w + pad)
            .saturating_sub(off)
            .div_ceil(s)
            .clamp(lo, self.ow);
        (lo, hi)
    }

    /// Writes the `d x p` patch matrix of one group (`group`: its `cg` input planes, and possibly more after them)
    /// into `cols`: the valid range of each output row is found once, so the inner loop has no bounds tests.
    fn im2col(&self, group: &[f32], cols: &mut [f32]) {
        let (h, w, ow, p) = (self.h, self.w, self.ow, self.p());
        for ci in 0..self.cg {
            let plane = &group[ci * h * w..(ci + 1) * h * w];
            for a in 0..self.kh {
                for b in 0..self.kw {
                    let row = &mut cols[((ci * self.kh + a) * self.kw + b) * p..][..p];
                    let (lo, hi) = self.columns(b);
                    let off = b * self.dil[1];
                    for (y, out) in row.chunks_exact_mut(ow).enumerate() {
                        let iy = (y * self.strides[0] + a * self.dil[0]).wrapping_sub(self.pads[0]);
                        if iy >= h || lo == hi {
                            out.fill(0.0);
                            continue;
                        }
                        out[..lo].fill(0.0);
                        out[hi..].fill(0.0);
                        let line = &plane[iy * w..(iy + 1) * w];
                        let x0 = lo * self.strides[1] + off - self.pads[1];
                        if self.strides[1] == 1 {
                            out[lo..hi]
                                .iter_mut()
                                .zip(&line[x0..x0 + hi - lo])
                                .for_each(|(o, v)| *o = finite(*v));
                        } else {
                            out[lo..hi]
                                .iter_mut()
                                .zip(line[x0..].iter().step_by(self.strides[1]))
                                .for_each(|(o, v)| *o = finite(*v));
                        }
                    }
                }
            }
        }
    }
}

/// The order a group's inputs are rounded in: by decreasing diagonal of `h` (ties by index) with
/// [`Options::act_order`], else as stored; with `bias` (the last of the `d` inputs) that input first.
fn input_order(h: &[f64], d: usize, opts: Options, bias: bool) -> Vec<usize> {
    let n = d - usize::from(bias);
    let mut o: Vec<usize> = (0..n).collect();
    if opts.act_order {
        o.sort_by(|&a, &b| h[b * d + b].total_cmp(&h[a * d + a]).then(a.cmp(&b)));
    }
    if bias {
        o.insert(0, n);
    }
    o
}

/// `h` (`d x d`) with rows and columns taken in `order`.
fn permuted(h: &[f64], d: usize, order: &[usize]) -> Vec<f64> {
    if order.iter().enumerate().all(|(i, &j)| i == j) {
        return h.to_vec();
    }
    let mut p = vec![0f64; d * d];
    for (a, &i) in order.iter().enumerate() {
        for (b, &j) in order.iter().enumerate() {
            p[a * d + b] = h[i * d + j];
        }
    }
    p
}

fn finite(v: f32) -> f32 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// `h += m m^T` (`m`: `d x p`), the product in f32 (one item), the sum in f64.
fn add_gram(h: &mut [f64], m: ArrayView2<'_, f32>) {
    let g = m.dot(&m.t());
    for (acc, v) in h.iter_mut().zip(g.iter()) {
        *acc += *v as f64;
    }
}

/// Upper-triangular `U` with `U^T U = H^-1` for a symmetric positive definite `H` (`d x d`, row-major), after
/// damping; `None` if `H` is not positive definite even so. Inputs that never fire (zero diagonal) get a unit
/// diagonal: nothing is spread onto or from them.
fn inverse_cholesky_upper(h: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut a = h.to_vec();
    let mean_diag = (0..d).map(|i| a[i * d + i]).sum::<f64>() / d as f64;
    if !mean_diag.is_finite() {
        return None;
    }
    // A depthwise channel that never fires has an all-zero moment: identity, plain rounding.
    let mean_diag = if mean_diag > 0.0 { mean_diag } else { 1.0 };
    for i in 0..d {
        if a[i * d + i] <= 0.0 {
            for j in 0..d {
                a[i * d + j] = 0.0;
                a[j * d + i] = 0.0;
            }
            a[i * d + i] = 1.0;
        } else {
            a[i * d + i] += DAMP * mean_diag;
        }
    }
    // With J the order reversal, J H J = L L^T gives H = V V^T with V = J L J upper triangular, so
    // H^-1 = V^-T V^-1 and U = V^-1. Factor H from the bottom-right corner up (that is L of J H J, in place).
    let idx = |i: usize, j: usize| i * d + j;
    let mut v = vec![0f64; d * d];
    for j in (0..d).rev() {
        let vj = &v[idx(j, j + 1)..idx(j, d)];
        let s = a[idx(j, j)] - dot(vj, vj);
        if !(s > 0.0 && s.is_finite()) {
            return None;
        }
        let vjj = s.sqrt();
        v[idx(j, j)] = vjj;
        let vj: Vec<f64> = v[idx(j, j + 1)..idx(j, d)].to_vec();
        for i in (0..j).rev() {
            let vi = &v[idx(i, j + 1)..idx(i, d)];
            let s = a[idx(i, j)] - dot(vi, &vj);
            v[idx(i, j)] = s / vjj;
        }
    }
    // U = V^-1, upper triangular, row by row from the bottom (V U = I): each step is an update of one contiguous
    // row by later rows.
    let mut u = vec![0f64; d * d];
    for i in (0..d).rev() {
        let (head, tail) = u.split_at_mut((i + 1) * d);
        let row = &mut head[i * d..];
        row[i] = 1.0;
        for k in i + 1..d {
            let c = v[idx(i, k)];
            if c != 0.0 {
                let later = &tail[(k - i - 1) * d..(k - i) * d];
                row[k..]
                    .iter_mut()
                    .zip(&later[k..])
                    .for_each(|(a, b)| *a -= c * b);
            }
        }
        let inv = 1.0 / v[idx(i, i)];
        row[i..].iter_mut().for_each(|a| *a *= inv);
    }
    Some(u)
}

/// Runs `f` on every item of `items` on all cores, each idle thread taking the next item (layers differ in cost by
/// orders of magnitude, so a fixed split leaves a core idle); each item is handled by one thread, sequentially, so
/// results do not depend on the number of threads or on which thread took which item.
pub(crate) fn parallel<T: Send, F: Fn(&mut T) + Sync>(items: &mut [T], f: F) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    if threads == 1 {
        items.iter_mut().for_each(f);
        return;
    }
    let queue = std::sync::Mutex::new(items.iter_mut());
    let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).next();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (f, next) = (&f, &next);
            s.spawn(move || {
                while let Some(item) = next() {
                    f(item);
                }
            });
        }
    });
}

/// `a . b` with four partial sums in a fixed order: vectorizes, and the result does not depend on anything but
/// the inputs.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The outcome of rounding one layer.
pub struct Rounded {
    /// The dequantized weight values (on the grid of `spec`), same layout as the float weight.
    pub values: Vec<f32>,
    /// Output error `sum (q - w) H (q - w)^T` over rows, relative to plain rounding's (< 1 means better).
    pub ratio: f64,
    /// The per-tensor scale is finer than the emitter's first choice ([`Options::scale_search`]).
    pub finer: bool,
    /// The bias took part ([`Options::bias_first`]).
    pub bias: bool,
}

/// A layer's INT8 bias for [`round_layer`]: its float values (one per output row) and its power-of-two scale (the
/// emitter's, [`crate::quant::qdq::quantize_bias_int8`]).
#[derive(Clone, Copy, Debug)]
pub struct Bias<'a> {
    pub values: &'a [f32],
    pub scale: f32,
}

/// The bias's plain integers on its grid and the largest magnitude among them, which fixes the emitter's scale and
/// so is kept.
struct BiasGrid<'a> {
    bias: Bias<'a>,
    plain: Vec<i32>,
    max: i32,
}

impl<'a> BiasGrid<'a> {
    fn new(bias: Bias<'a>) -> Self {
        let plain: Vec<i32> = bias
            .values
            .iter()
            .map(|&b| quantize_value(b, bias.scale, 0, -128, 127))
            .collect();
        let max = plain.iter().map(|q| q.abs()).max().unwrap_or(0);
        BiasGrid { bias, plain, max }
    }

    /// Row `r`'s bias rounded from `x` (its plain integer where that fixes the scale), dequantized.
    fn round(&self, r: usize, x: f64) -> f64 {
        let s = self.bias.scale;
        let p = self.plain[r];
        let q = if p.abs() == self.max {
            p
        } else {
            (x / s as f64).round_ties_even().clamp(-127.0, 127.0) as i32
        };
        q as f64 * s as f64
    }

    /// Row `r`'s plain bias, dequantized.
    fn plain(&self, r: usize) -> f64 {
        self.plain[r] as f64 * self.bias.scale as f64
    }
}

/// How a layer's weight splits into rows of `d` inputs: row `r`'s elements are `w[r * step + i * stride]`, `i < d`;
/// `per_group` rows share one second moment.
#[derive(Clone, Copy)]
struct RowLayout {
    nrows: usize,
    step: usize,
    stride: usize,
    d: usize,
    per_group: usize,
}

impl RowLayout {
    fn of(
        geometry: &Geometry,
        w_len: usize,
        dims: &[i64],
    ) -> std::result::Result<Self, &'static str> {
        let (groups, d) = geometry.blocks();
        let (nrows, step, stride) = match *geometry {
            Geometry::Conv { .. } => (dims[0] as usize, d, 1),
            Geometry::Gemm { k, trans_b } => {
                let nout = w_len / k;
                if trans_b {
                    (nout, k, 1)
                } else {
                    (nout, 1, nout)
                }
            }
        };
        if nrows * d != w_len || nrows % groups != 0 {
            return Err("weight layout");
        }
        Ok(RowLayout {
            nrows,
            step,
            stride,
            d,
            per_group: nrows / groups,
        })
    }

    /// Index in `w` of element `i` of row `r`.
    fn at(&self, r: usize, i: usize) -> usize {
        r * self.step + i * self.stride
    }
}

/// The plain-rounded weight and what the rounding must keep of it: the quantization grid (scale and zero point per
/// channel) and each channel's extreme integers, which fix the range the emitter re-derives.
struct Grid<'a> {
    plain: QWeight,
    dims: &'a [i64],
    lo: Vec<i32>,
    hi: Vec<i32>,
    qrange: (i32, i32),
}

impl<'a> Grid<'a> {
    fn new(
        w: &[f32],
        dims: &'a [i64],
        spec: WeightSpec,
    ) -> std::result::Result<Self, &'static str> {
        let plain = quantize_weight(w, dims, spec);
        if plain.params.degenerate {
            return Err("degenerate range");
        }
        let mut grid = Grid {
            lo: vec![i32::MAX; plain.params.scale.len()],
            hi: vec![i32::MIN; plain.params.scale.len()],
            qrange: weight_qrange(spec.qtype, spec.symmetric),
            plain,
            dims,
        };
        grid.extremes();
        Ok(grid)
    }

    /// The same grid with the per-tensor scale `s` instead (plain rounding, clipped to the integer range).
    fn with_scale(&self, w: &[f32], s: f32) -> Grid<'a> {
        let (qlo, qhi) = self.qrange;
        let mut plain = self.plain.clone();
        plain.params.scale[0] = s;
        let z = plain.params.zero_point[0];
        plain.values = w
            .iter()
            .map(|&v| quantize_value(v, s, z, qlo, qhi))
            .collect();
        let mut grid = Grid {
            plain,
            dims: self.dims,
            lo: vec![i32::MAX],
            hi: vec![i32::MIN],
            qrange: self.qrange,
        };
        grid.extremes();
        grid
    }

    /// Each channel's extreme integers under plain rounding.
    fn extremes(&mut self) {
        for i in 0..self.plain.values.len() {
            let (c, q) = (self.chan(i), self.plain.values[i]);
            self.lo[c] = self.lo[c].min(q);
            self.hi[c] = self.hi[c].max(q);
        }
    }

    /// The channel of weight element `i`.
    fn chan(&self, i: usize) -> usize {
        let p = &self.plain.params;
        match p.axis {
            Some(a) if p.scale.len() > 1 => {
                let inner: i64 = self.dims[a as usize + 1..].iter().product();
                ((i as i64 / inner.max(1)) % self.dims[a as usize]) as usize
            }
            _ => 0,
        }
    }

    fn dequant(&self, i: usize, q: i32) -> f64 {
        let c = self.chan(i);
        (q - self.plain.params.zero_point[c]) as f64 * self.plain.params.scale[c] as f64
    }
}

/// One row's rounded integers and the output error (`e H e^T`) of its new and its plain rounding.
struct Row {
    r: usize,
    q: Vec<i32>,
    /// The rounded bias, dequantized (with the bias in).
    bias: f64,
    err_new: f64,
    err_plain: f64,
}

/// `e H e^T` for a symmetric `d x d` row-major `h`, from its upper triangle (half the work of the full product).
fn quad(h: &[f64], e: &[f64]) -> f64 {
    let d = e.len();
    h.chunks_exact(d)
        .zip(e)
        .enumerate()
        .map(|(i, (hr, ei))| ei * (hr[i] * ei + 2.0 * dot(&hr[i + 1..], &e[i + 1..])))
        .sum()
}

/// One group's second moment `h`, the order its inputs are rounded in, and the upper Cholesky factor `u` of
/// `H^-1` with `H` permuted to that order.
struct Factored<'a> {
    h: &'a [f64],
    u: &'a [f64],
    order: &'a [usize],
    /// Also measure plain rounding's error (only the emitter's own grid needs it).
    plain_too: bool,
}

/// Rounds row `row.r` of `w` in `g.order`, spreading each element's error over the later ones through `g.u`, then
/// measures both roundings' output error under `g.h`. With `bias`, input `lay.d` is the bias's constant input.
fn round_row(
    row: &mut Row,
    w: &[f32],
    lay: &RowLayout,
    grid: &Grid<'_>,
    bias: Option<&BiasGrid<'_>>,
    g: &Factored<'_>,
) {
    let (d, u, h, da) = (lay.d, g.u, g.h, g.order.len());
    let p = &grid.plain.params;
    let (qlo, qhi) = grid.qrange;
    let bias = bias.filter(|_| da > d);
    let mut orig: Vec<f64> = (0..d).map(|i| w[lay.at(row.r, i)] as f64).collect();
    if let Some(b) = bias {
        orig.push(b.bias.values[row.r] as f64);
    }
    // `x` in rounding order: position `i` is input `g.order[i]`.
    let mut x: Vec<f64> = g.order.iter().map(|&j| orig[j]).collect();
    for i in 0..da {
        let j = g.order[i];
        let v = match bias {
            Some(b) if j == d => {
                row.bias = b.round(row.r, x[i]);
                row.bias
            }
            _ => {
                let at = lay.at(row.r, j);
                let c = grid.chan(at);
                let (s, z) = (p.scale[c] as f64, p.zero_point[c]);
                let fixed = grid.plain.values[at];
                let q = if fixed == grid.lo[c] || fixed == grid.hi[c] {
                    fixed
                } else {
                    ((x[i] / s).round_ties_even() + z as f64).clamp(qlo as f64, qhi as f64) as i32
                };
                row.q[j] = q;
                (q - z) as f64 * s
            }
        };
        let ur = &u[i * da..(i + 1) * da];
        let e = (x[i] - v) / ur[i];
        x[i + 1..]
            .iter_mut()
            .zip(&ur[i + 1..])
            .for_each(|(a, b)| *a -= e * b);
    }
    let err = |q: &dyn Fn(usize) -> i32, b: f64| -> Vec<f64> {
        let mut e: Vec<f64> = (0..d)
            .map(|i| grid.dequant(lay.at(row.r, i), q(i)) - orig[i])
            .collect();
        if da > d {
            e.push(b - orig[d]);
        }
        e
    };
    row.err_new = quad(h, &err(&|i| row.q[i], row.bias));
    if g.plain_too {
        let pb = bias.map_or(0.0, |b| b.plain(row.r));
        row.err_plain = quad(h, &err(&|i| grid.plain.values[lay.at(row.r, i)], pb));
    }
}

/// The dequantized values of `q` on `grid`, provided the emitter, re-deriving the parameters from them, gives back
/// the same integers and grid.
fn reproduced(
    q: Vec<i32>,
    grid: &Grid<'_>,
    spec: WeightSpec,
) -> std::result::Result<Vec<f32>, &'static str> {
    let plain = &grid.plain.params;
    let values = dequantize(&QWeight {
        values: q.clone(),
        params: plain.clone(),
        dims: grid.dims.to_vec(),
    });
    let again = quantize_weight(&values, grid.dims, spec);
    let same_scale = again
        .params
        .scale
        .iter()
        .zip(&plain.scale)
        .all(|(a, b)| (a - b).abs() <= 1e-6 * b.abs());
    if again.values != q || !same_scale || again.params.zero_point != plain.zero_point {
        return Err("the emitter would not reproduce the grid");
    }
    Ok(values)
}

/// Rounds the float weight `w` (`dims`) of the layer whose input moment is `m`, with the emitter's `spec`, and its
/// `bias` with it where [`Options::bias`] asks and `m` was made for one. `Err(why)` when plain rounding stays: the
/// moment is unusable (input shape changed, no data, not positive definite), the emitter would not reproduce the
/// rounded grid, or the result is not better on the calibration data.
pub fn round_layer(
    w: &[f32],
    dims: &[i64],
    spec: WeightSpec,
    m: &Moment,
    opts: Options,
    bias: Option<Bias<'_>>,
) -> std::result::Result<Rounded, &'static str> {
    if m.shape.is_none() || m.rows == 0 {
        return Err("input shape varied or no data");
    }
    // Fewer input rows than inputs: H is singular and the compensation would fit the calibration data alone.
    if m.rows < m.geometry.blocks().1 as u64 {
        return Err("fewer calibration rows than inputs");
    }
    if w.iter().any(|v| !v.is_finite()) {
        return Err("non-finite weight");
    }
    let grid = Grid::new(w, dims, spec)?;
    let lay = RowLayout::of(&m.geometry, w.len(), dims)?;
    // Factors from [`Moment::factor`] if the caller ran it, else here.
    let mut own;
    let m = match m.factors {
        Some(_) => m,
        None => {
            own = Moment {
                geometry: m.geometry.clone(),
                h: m.h.clone(),
                sum: m.sum.clone(),
                has_bias: m.has_bias,
                augmented: false,
                factors: None,
                order: Vec::new(),
                shape: m.shape.clone(),
                rows: m.rows,
            };
            own.factor(opts);
            &own
        }
    };
    let factors = m.factors.as_deref().unwrap_or(&[]);
    if factors.iter().any(|u| u.is_none()) {
        return Err("second moment not positive definite");
    }
    let bias = match bias {
        Some(b) if m.augmented => {
            if b.values.len() != lay.nrows || b.values.iter().any(|v| !v.is_finite()) {
                return Err("bias length or values");
            }
            Some(BiasGrid::new(b))
        }
        None if m.augmented => return Err("the layer's bias is missing"),
        _ => None,
    };
    let bias = bias.as_ref();
    let (q, en, ep) = round_on(&grid, bias, w, &lay, m, true);
    let mut best = reproduced(q, &grid, spec).map(|v| (v, en, false));
    if opts.scale_search && grid.plain.params.scale.len() == 1 {
        for s in candidate_scales(grid.plain.params.scale[0], spec.pow2) {
            let alt = grid.with_scale(w, s);
            let (q, e, _) = round_on(&alt, bias, w, &lay, m, false);
            if best.as_ref().map_or(true, |b| e < b.1) {
                if let Ok(v) = reproduced(q, &alt, spec) {
                    best = Ok((v, e, true));
                }
            }
        }
    }
    let (values, en, finer) = best?;
    // Damping makes the compensation approximate: keep plain rounding where it is not better on this data.
    if en > ep {
        return Err("not better than plain rounding on the calibration data");
    }
    Ok(Rounded {
        values,
        ratio: if ep > 0.0 { en / ep } else { 1.0 },
        finer,
        bias: bias.is_some(),
    })
}

/// Rounds every row of `w` on `grid` (rows on all cores), the bias first if given: the integers, and the output
/// error of this rounding and (with `plain_too`, else 0) of `grid`'s plain rounding, summed over rows.
fn round_on(
    grid: &Grid<'_>,
    bias: Option<&BiasGrid<'_>>,
    w: &[f32],
    lay: &RowLayout,
    m: &Moment,
    plain_too: bool,
) -> (Vec<i32>, f64, f64) {
    let factors = m.factors.as_deref().expect("factored");
    let mut rows: Vec<Row> = (0..lay.nrows)
        .map(|r| Row {
            r,
            q: vec![0; lay.d],
            bias: 0.0,
            err_new: 0.0,
            err_plain: 0.0,
        })
        .collect();
    parallel(&mut rows, |row| {
        let g = row.r / lay.per_group;
        let f = Factored {
            h: &m.h[g],
            u: factors[g].as_ref().expect("checked"),
            order: &m.order[g],
            plain_too,
        };
        round_row(row, w, lay, grid, bias, &f);
    });
    let mut q = grid.plain.values.clone();
    for row in &rows {
        for (i, v) in row.q.iter().enumerate() {
            q[lay.at(row.r, i)] = *v;
        }
    }
    let (en, ep) = rows
        .iter()
        .fold((0.0, 0.0), |(a, b), r| (a + r.err_new, b + r.err_plain));
    (q, en, ep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_cholesky_upper_inverts_the_damped_moment() {
        let d = 6;
        // H = X X^T for a fixed, well-conditioned X.
        let x: Vec<f64> = (0..d * 9)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0 + if i % 10 == 0 { 2.0 } else { 0.0 })
            .collect();
        let mut h = vec![0f64; d * d];
        for i in 0..d {
            for j in 0..d {
                h[i * d + j] = (0..9).map(|k| x[i * 9 + k] * x[j * 9 + k]).sum();
            }
        }
        let u = inverse_cholesky_upper(&h, d).expect("positive definite");
        let mean = (0..d).map(|i| h[i * d + i]).sum::<f64>() / d as f64;
        for i in 0..d {
            for j in 0..i {
                assert_eq!(u[i * d + j], 0.0, "upper triangular");
            }
            h[i * d + i] += DAMP * mean;
        }
        // (U^T U) H = I.
        for i in 0..d {
            for j in 0..d {
                let v: f64 = (0..d)
                    .map(|k| {
                        (0..d).map(|l| u[l * d + i] * u[l * d + k]).sum::<f64>() * h[k * d + j]
                    })
                    .sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-9, "({i}, {j}): {v}");
            }
        }
    }

    /// A per-tensor weight whose range one outlier sets, on an input whose next column nearly repeats the
    /// outlier's: the search takes a finer scale (the outlier clipped, its error carried by its twin) and lowers
    /// the output error under the same moment; off, the grid stays.
    #[test]
    fn scale_search_takes_a_finer_grid_for_an_outlier() {
        use crate::quant::QuantType;
        let k = 16;
        let mut m = Moment::new(Geometry::Gemm { k, trans_b: true }, false);
        // Columns 2j and 2j + 1 nearly equal.
        let x: Vec<f32> = (0..64 * k)
            .map(|i| ((i / 2 * 7919 % 97) as f32 - 48.0) / 24.0 + (i % 2) as f32 * 0.01)
            .collect();
        m.add(&x, &[64, k as i64]);
        let mut w: Vec<f32> = (0..8 * k)
            .map(|i| ((i * 31 % 23) as f32 - 11.0) / 200.0)
            .collect();
        w[4] = 0.9;
        let spec = WeightSpec {
            qtype: QuantType::S8,
            symmetric: true,
            pow2: false,
            axis: None,
            mse: false,
        };
        let dims = [8, k as i64];
        let off = round_layer(&w, &dims, spec, &m, Options::default(), None).expect("rounded");
        let on = Options {
            scale_search: true,
            ..Options::default()
        };
        let searched = round_layer(&w, &dims, spec, &m, on, None).expect("rounded");
        assert!(!off.finer && searched.finer);
        assert!(
            searched.ratio < off.ratio,
            "{} vs {}",
            searched.ratio,
            off.ratio
        );
        let again = round_layer(&w, &dims, spec, &m, on, None).expect("rounded");
        assert_eq!(again.values, searched.values, "deterministic");
    }

    /// An INT8 power-of-two bias on inputs with a large mean (after a Relu): rounded first, its error is carried by
    /// the weights through the mean, so the layer's output error (bias included) falls well below that of plain
    /// weights plus the plainly rounded bias; deterministic; without the option the bias stays out.
    #[test]
    fn bias_rounded_first_is_carried_by_the_weights() {
        use crate::quant::QuantType;
        let k = 12;
        let mut m = Moment::new(Geometry::Gemm { k, trans_b: true }, true);
        let x: Vec<f32> = (0..256 * k)
            .map(|i| 1.0 + ((i * 7919 % 101) as f32) / 100.0)
            .collect();
        m.add(&x, &[256, k as i64]);
        let w: Vec<f32> = (0..6 * k)
            .map(|i| ((i * 31 % 23) as f32 - 11.0) / 50.0)
            .collect();
        let b = [0.9f32, 0.013, -0.021, 0.006, 0.35, -0.0123];
        let spec = WeightSpec {
            qtype: QuantType::S8,
            symmetric: true,
            pow2: true,
            axis: None,
            mse: false,
        };
        let bias = Bias {
            values: &b,
            scale: crate::quant::qdq::quantize_bias_int8(&b).scale[0],
        };
        let first = Options {
            bias_first: true,
            ..Options::default()
        };
        let dims = [6, k as i64];
        let r = round_layer(&w, &dims, spec, &m, first, Some(bias)).expect("rounded");
        assert!(r.bias && r.ratio < 0.5, "output error ratio {}", r.ratio);
        let again = round_layer(&w, &dims, spec, &m, first, Some(bias)).expect("rounded");
        assert_eq!(again.values, r.values, "deterministic");
        let off = round_layer(&w, &dims, spec, &m, Options::default(), Some(bias));
        assert!(
            !off.expect("rounded").bias,
            "the bias stays out unless asked"
        );
    }
}
