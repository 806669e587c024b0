//! The calibration cache: per-tensor statistics (histograms included) saved to a file and reused while the model,
//! the collection settings and the calibration data are unchanged.
//!
//! The cache stores what calibration *collected*, not the ranges chosen from it: every histogram method
//! (MinMax, Percentile, Entropy, MinMSE, NonOverflow) and every preset is computed from the same cache, so switching
//! method or preset needs no recalibration. What invalidates it is in its key:
//! - the model: SHA-256 of the prepared model (so a different model, ipuflow or ONNX Runtime prepare changes it);
//! - the settings that change what is collected: the format version, [`BINS`], a moving-average constant;
//! - the data: an order-independent digest of every sample (each batch split along its first axis), so the same
//!   samples in another order or batching match, and any changed, added or removed sample does not.
//!
//! A cache whose key differs is refused (`CalibCacheStale`, naming what differs): the host deletes the file to
//! recalibrate, it is never overwritten silently. A file that is not a cache of this version, or is damaged, is
//! refused as `CalibCacheInvalid`.
//!
//! # Format (little-endian)
//! `IPUFCALC`, u32 version, 3 × 32-byte key digests (model, settings, data), u64 samples, then sections
//! `{u32 tag, u64 length, payload}`, then the SHA-256 of everything before it. Section 1: tensor statistics.
//! Tags 2 (per-layer second moments) and 3 (sensitivities) are reserved for later parts; readers skip tags they
//! do not know, so a newer writer's extra sections do not invalidate the file.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::quant::histogram::{Histogram, BINS};
use crate::runtime::TensorRef;

const MAGIC: &[u8; 8] = b"IPUFCALC";
/// Bumped when the layout or the meaning of a statistic changes.
pub const VERSION: u32 = 1;
/// Section tag of the per-tensor statistics.
pub const SECTION_TENSORS: u32 = 1;
/// Reserved for part 2: per-layer second moments.
pub const SECTION_SECOND_MOMENTS: u32 = 2;
/// Reserved for part 2: per-layer sensitivities.
pub const SECTION_SENSITIVITIES: u32 = 3;

/// What the cache is valid for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    pub model: [u8; 32],
    pub settings: [u8; 32],
    pub data: [u8; 32],
    pub samples: u64,
}

/// One tensor's collected statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedTensor {
    pub name: String,
    pub shape: Vec<i64>,
    /// The collector's range (the extremes, or the moving average's).
    pub range: Option<(f32, f32)>,
    pub histogram: Option<Histogram>,
}

/// The digest of the settings that change what calibration collects.
pub fn settings_digest(moving_average: Option<f32>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(VERSION.to_le_bytes());
    h.update((BINS as u64).to_le_bytes());
    match moving_average {
        Some(c) => h.update(
            [1u8]
                .iter()
                .chain(c.to_le_bytes().iter())
                .copied()
                .collect::<Vec<_>>(),
        ),
        None => h.update([0u8]),
    }
    h.finalize().into()
}

/// SHA-256 of bytes.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Order- and batching-independent digest of calibration samples: the wrapping sum of per-sample digests (a
/// sample is one index along the first axis of every input, inputs taken in name order).
#[derive(Clone, Debug, Default)]
pub struct DataDigest {
    sum: [u64; 4],
    samples: u64,
}

impl DataDigest {
    /// Adds one batch (every input's first dimension is the batch size; a rank-0 input counts as one sample).
    pub fn add(&mut self, tensors: &[(String, TensorRef<'_>)]) {
        let mut ins: Vec<&(String, TensorRef<'_>)> = tensors.iter().collect();
        ins.sort_by(|a, b| a.0.cmp(&b.0));
        let n = ins
            .first()
            .and_then(|(_, t)| t.shape().first().copied())
            .filter(|&n| n > 0 && ins.iter().all(|(_, t)| t.shape().first() == Some(&n)))
            .unwrap_or(1) as usize;
        for s in 0..n {
            let mut h = Sha256::new();
            for (name, t) in &ins {
                let data = t.data();
                let per = data.len() / n;
                h.update((name.len() as u64).to_le_bytes());
                h.update(name.as_bytes());
                h.update((t.element_type() as i32).to_le_bytes());
                let inner: &[i64] = if n > 1 || t.shape().first() == Some(&1) {
                    &t.shape()[1..]
                } else {
                    t.shape()
                };
                for d in inner {
                    h.update(d.to_le_bytes());
                }
                h.update(&data[s * per..(s + 1) * per]);
            }
            let d: [u8; 32] = h.finalize().into();
            for k in 0..4 {
                let w = u64::from_le_bytes(d[8 * k..8 * k + 8].try_into().expect("8 bytes"));
                self.sum[k] = self.sum[k].wrapping_add(w);
            }
            self.samples += 1;
        }
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn finish(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for w in self.sum {
            h.update(w.to_le_bytes());
        }
        h.update(self.samples.to_le_bytes());
        h.finalize().into()
    }
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::CalibCacheInvalid,
        format!(
            "'{}' is not a usable ipuflow calibration cache (version {VERSION}): {what}; delete it to recalibrate",
            path.display()
        ),
    )
}

/// Encodes the cache.
pub fn encode(key: &CacheKey, tensors: &[CachedTensor]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&key.model);
    b.extend_from_slice(&key.settings);
    b.extend_from_slice(&key.data);
    b.extend_from_slice(&key.samples.to_le_bytes());
    let mut p = Vec::new();
    p.extend_from_slice(&(tensors.len() as u32).to_le_bytes());
    for t in tensors {
        p.extend_from_slice(&(t.name.len() as u32).to_le_bytes());
        p.extend_from_slice(t.name.as_bytes());
        p.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        for d in &t.shape {
            p.extend_from_slice(&d.to_le_bytes());
        }
        match t.range {
            Some((lo, hi)) => {
                p.push(1);
                p.extend_from_slice(&lo.to_le_bytes());
                p.extend_from_slice(&hi.to_le_bytes());
            }
            None => p.push(0),
        }
        match &t.histogram {
            None => p.push(0),
            Some(h) => {
                p.push(1);
                p.extend_from_slice(&h.exp.unwrap_or(i32::MIN).to_le_bytes());
                p.extend_from_slice(&h.zeros.to_le_bytes());
                p.extend_from_slice(&h.min.to_le_bytes());
                p.extend_from_slice(&h.max.to_le_bytes());
                for side in [&h.pos, &h.neg] {
                    // Only up to the last non-empty bin: most tensors use half of the bins or less on one side.
                    let used = side.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
                    p.extend_from_slice(&(used as u32).to_le_bytes());
                    for c in &side[..used] {
                        p.extend_from_slice(&c.to_le_bytes());
                    }
                }
            }
        }
    }
    b.extend_from_slice(&SECTION_TENSORS.to_le_bytes());
    b.extend_from_slice(&(p.len() as u64).to_le_bytes());
    b.extend_from_slice(&p);
    let d = digest(&b);
    b.extend_from_slice(&d);
    b
}

/// A bounds-checked reader over the file's bytes.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes(s.try_into().expect("4")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8")))
    }
    fn i32(&mut self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }
    fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| v as i64)
    }
    fn f32(&mut self) -> Option<f32> {
        self.u32().map(f32::from_bits)
    }
    fn d32(&mut self) -> Option<[u8; 32]> {
        self.take(32).map(|s| s.try_into().expect("32"))
    }
}

/// Decodes a cache file's bytes; `path` names it in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<(CacheKey, Vec<CachedTensor>)> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(invalid(
            path,
            "it does not start with the cache's magic bytes",
        ));
    }
    if bytes.len() < 8 + 4 + 32 {
        return Err(invalid(path, "it is truncated"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4"));
    if version != VERSION {
        return Err(invalid(path, format!("it has format version {version}")));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if digest(body) != sum {
        return Err(invalid(
            path,
            "its checksum does not match (truncated or damaged)",
        ));
    }
    let mut r = Reader { b: body, at: 12 };
    let bad = || invalid(path, "a record is malformed");
    let key = CacheKey {
        model: r.d32().ok_or_else(bad)?,
        settings: r.d32().ok_or_else(bad)?,
        data: r.d32().ok_or_else(bad)?,
        samples: r.u64().ok_or_else(bad)?,
    };
    let mut tensors = None;
    while r.at < body.len() {
        let tag = r.u32().ok_or_else(bad)?;
        let len = r.u64().ok_or_else(bad)?;
        let payload = r
            .take(usize::try_from(len).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        if tag == SECTION_TENSORS {
            tensors = Some(decode_tensors(payload).ok_or_else(bad)?);
        }
        // Other tags: sections of later versions of part 2, skipped.
    }
    Ok((
        key,
        tensors.ok_or_else(|| invalid(path, "it has no tensor section"))?,
    ))
}

fn decode_tensors(payload: &[u8]) -> Option<Vec<CachedTensor>> {
    let mut r = Reader { b: payload, at: 0 };
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let len = r.u32()? as usize;
        let name = String::from_utf8(r.take(len)?.to_vec()).ok()?;
        let rank = r.u32()? as usize;
        if rank > 64 {
            return None;
        }
        let shape = (0..rank).map(|_| r.i64()).collect::<Option<Vec<_>>>()?;
        let range = match r.u8()? {
            0 => None,
            1 => Some((r.f32()?, r.f32()?)),
            _ => return None,
        };
        let histogram = match r.u8()? {
            0 => None,
            1 => {
                let exp = r.i32()?;
                let mut h = Histogram {
                    exp: (exp != i32::MIN).then_some(exp),
                    zeros: r.u64()?,
                    min: r.f32()?,
                    max: r.f32()?,
                    ..Histogram::default()
                };
                for side in [&mut h.pos, &mut h.neg] {
                    let used = r.u32()? as usize;
                    if used > BINS {
                        return None;
                    }
                    for c in side.iter_mut().take(used) {
                        *c = r.u64()?;
                    }
                }
                Some(h)
            }
            _ => return None,
        };
        out.push(CachedTensor {
            name,
            shape,
            range,
            histogram,
        });
    }
    (r.at == payload.len()).then_some(out)
}

/// Reads a cache file; `Ok(None)` when it does not exist.
pub fn read(path: &Path) -> Result<Option<(CacheKey, Vec<CachedTensor>)>> {
    match std::fs::read(path) {
        Ok(b) => decode(&b, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Writes a cache file atomically (a temporary file next to it, then a rename): never a partial file.
pub fn write(path: &Path, key: &CacheKey, tensors: &[CachedTensor]) -> Result<()> {
    let bytes = encode(key, tensors);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        Error::invalid_argument(format!(
            "calibration cache path '{}' has no file name",
            path.display()
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write", path, e)
    })
}

/// Checks a cache's key against the current one; the error names what differs.
pub fn check_key(path: &Path, cached: &CacheKey, now: &CacheKey) -> Result<()> {
    let what = if cached.model != now.model {
        "it was made for another model (or another ipuflow / ONNX Runtime preparing it differently)"
            .to_string()
    } else if cached.settings != now.settings {
        "it was collected with other settings (histogram bins or moving average)".to_string()
    } else if cached.data != now.data {
        format!(
            "the calibration data changed ({} samples cached, {} now, or their contents differ)",
            cached.samples, now.samples
        )
    } else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::CalibCacheStale,
        format!(
            "calibration cache '{}' is stale: {what}; delete it (or pass another path) to recalibrate",
            path.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (CacheKey, Vec<CachedTensor>) {
        let mut h = Histogram::default();
        h.add(&[0.0, 1.0, -2.5, 3.0, 0.001]);
        let key = CacheKey {
            model: [1; 32],
            settings: settings_digest(None),
            data: [3; 32],
            samples: 7,
        };
        let t = vec![
            CachedTensor {
                name: "a".into(),
                shape: vec![1, 3],
                range: Some((-2.5, 3.0)),
                histogram: Some(h),
            },
            CachedTensor {
                name: "b/é".into(),
                shape: vec![],
                range: Some((0.0, 1.0)),
                histogram: None,
            },
        ];
        (key, t)
    }

    #[test]
    fn round_trip_and_unknown_sections_are_skipped() {
        let (key, t) = sample();
        let b = encode(&key, &t);
        let p = Path::new("x.calib");
        assert_eq!(decode(&b, p).unwrap(), (key.clone(), t.clone()));
        // A later writer's extra section (tag 2) before the checksum is skipped.
        let mut body = b[..b.len() - 32].to_vec();
        body.extend_from_slice(&SECTION_SECOND_MOMENTS.to_le_bytes());
        body.extend_from_slice(&3u64.to_le_bytes());
        body.extend_from_slice(&[9, 9, 9]);
        let d = digest(&body);
        body.extend_from_slice(&d);
        assert_eq!(decode(&body, p).unwrap(), (key, t));
    }

    #[test]
    fn damaged_foreign_and_other_version_files_are_invalid() {
        let (key, t) = sample();
        let b = encode(&key, &t);
        let p = Path::new("x.calib");
        for bad in [
            b[..b.len() - 1].to_vec(),
            b"not a cache".to_vec(),
            Vec::new(),
            {
                let mut c = b.clone();
                c[60] ^= 1;
                c
            },
            {
                let mut c = b.clone();
                c[8] = 9;
                c
            },
        ] {
            let e = decode(&bad, p).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::CalibCacheInvalid, "{e}");
            assert!(e.message().contains("x.calib"));
        }
    }

    #[test]
    fn data_digest_ignores_order_and_batching() {
        let shape1 = [1i64, 2];
        let shape2 = [2i64, 2];
        let (x, y) = ([1f32, 2.0], [3f32, 4.0]);
        let both = [1f32, 2.0, 3.0, 4.0];
        let t = |s: &'static [i64], d: &'static [f32]| {
            vec![("in".to_string(), TensorRef::from_slice(s, d))]
        };
        let x: &'static [f32] = Box::leak(Box::new(x));
        let y: &'static [f32] = Box::leak(Box::new(y));
        let both: &'static [f32] = Box::leak(Box::new(both));
        let s1: &'static [i64] = Box::leak(Box::new(shape1));
        let s2: &'static [i64] = Box::leak(Box::new(shape2));
        let mut a = DataDigest::default();
        a.add(&t(s1, x));
        a.add(&t(s1, y));
        let mut b = DataDigest::default();
        b.add(&t(s1, y));
        b.add(&t(s1, x));
        let mut c = DataDigest::default();
        c.add(&t(s2, both));
        assert_eq!(a.finish(), b.finish());
        assert_eq!(a.finish(), c.finish());
        assert_eq!(c.samples(), 2);
        let mut d = DataDigest::default();
        d.add(&t(s1, x));
        assert_ne!(a.finish(), d.finish());
    }
}
