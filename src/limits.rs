//! The limits ipuflow enforces on sizes that come from untrusted input, in one place.
//!
//! Models, calibration files, command-line options and C ABI arguments all carry numbers that become allocations
//! (a tensor's shape, an image's crop size, a thread count). An unchecked one makes the allocator abort the whole
//! process — the host's, through the C ABI — or makes session creation run for minutes. Every such number is
//! checked here first and refused with `ErrorKind::LimitExceeded` (`IPUFLOW_STATUS_LIMIT_EXCEEDED`, 106) and a
//! message naming the option or tensor. docs/SECURITY.md lists these values; change both together.

use crate::error::{Error, ErrorKind, Result};

/// Bytes of one tensor ipuflow allocates from a size it was given (a `.npy` shape, a generated model input, an
/// image tensor, a C view's shape): 4 GiB. Larger weights stay possible in a model (they are read from the file,
/// whose size bounds them); this bounds what a few header bytes can make ipuflow allocate.
pub const MAX_TENSOR_BYTES: u64 = 4 << 30;

/// Dimensions of one tensor (ONNX sets no bound; numpy's is 64).
pub const MAX_RANK: usize = 64;

/// Side, in pixels, of an image crop or of the resize target (`--crop`, `--resize`, `ipuflow_image_preprocess`).
/// 8192² RGB floats are 768 MiB; real models take a few hundred pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;

/// Intra-op or inter-op threads of one session (`--threads`, `ipuflow_session_options_set_*_threads`). ONNX
/// Runtime creates them all at session creation; 100 000 take minutes.
pub const MAX_THREADS: u32 = 1024;

/// Timed runs of one latency measurement (`ipuflow run --repeat`, `ipuflow demo --runs`): each run's latency is kept
/// for the percentiles, so memory grows with the count (8 MB at this bound).
pub const MAX_TIMED_RUNS: u64 = 1_000_000;

fn exceeded(message: String) -> Error {
    Error::new(ErrorKind::LimitExceeded, message)
}

/// Checks a rank against [`MAX_RANK`]; `what` names the tensor or argument.
pub fn check_rank(what: &str, rank: usize) -> Result<()> {
    if rank > MAX_RANK {
        return Err(exceeded(format!(
            "{what}: rank {rank} exceeds ipuflow's limit of {MAX_RANK} dimensions"
        )));
    }
    Ok(())
}

/// The byte size of a tensor of `shape` with `elem_size`-byte elements, refused (naming `what`) when a dimension is
/// negative, the rank exceeds [`MAX_RANK`] or the size exceeds [`MAX_TENSOR_BYTES`].
pub fn tensor_bytes(what: &str, shape: &[i64], elem_size: usize) -> Result<usize> {
    check_rank(what, shape.len())?;
    let mut n: u64 = elem_size as u64;
    for &d in shape {
        let d = u64::try_from(d).map_err(|_| {
            Error::invalid_argument(format!("{what}: shape {shape:?} has a negative dimension"))
        })?;
        n = n.saturating_mul(d);
    }
    if n > MAX_TENSOR_BYTES {
        return Err(exceeded(format!(
            "{what}: shape {shape:?} needs {n} bytes, over ipuflow's limit of {MAX_TENSOR_BYTES} bytes \
             ({} GiB) per tensor",
            MAX_TENSOR_BYTES >> 30
        )));
    }
    usize::try_from(n).map_err(|_| exceeded(format!("{what}: {n} bytes do not fit in memory")))
}

/// Checks an image side (crop or resize target) against [`MAX_IMAGE_SIDE`]; `what` names the option.
pub fn check_image_side(what: &str, side: u32) -> Result<()> {
    if side > MAX_IMAGE_SIDE {
        return Err(exceeded(format!(
            "{what} is {side} pixels; ipuflow's limit is {MAX_IMAGE_SIDE}"
        )));
    }
    Ok(())
}

/// Checks a thread count against [`MAX_THREADS`]; `what` names the option.
pub fn check_threads(what: &str, n: u32) -> Result<()> {
    if n > MAX_THREADS {
        return Err(exceeded(format!(
            "{what} = {n} exceeds ipuflow's limit of {MAX_THREADS} threads"
        )));
    }
    Ok(())
}

/// A zeroed byte buffer of `len` bytes, or `OutOfMemory` naming `what` when the allocator refuses (instead of the
/// process abort `vec![0; len]` would be).
pub fn zeroed(what: &str, len: usize) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::new(
            ErrorKind::OutOfMemory,
            format!("{what}: cannot allocate {len} bytes"),
        )
    })?;
    v.resize(len, 0);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded_and_named() {
        assert_eq!(tensor_bytes("t", &[2, 3], 4).unwrap(), 24);
        assert_eq!(tensor_bytes("t", &[], 4).unwrap(), 4);
        let e = tensor_bytes("input 'x'", &[1 << 20, 1 << 20, 1 << 20], 4).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert!(e.message().contains("input 'x'"), "{e}");
        // Overflowing u64 saturates into the same refusal.
        let e = tensor_bytes("t", &[i64::MAX, i64::MAX], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded);
        assert_eq!(
            tensor_bytes("t", &[-1], 4).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            tensor_bytes("t", &vec![1; MAX_RANK + 1], 1)
                .unwrap_err()
                .kind(),
            ErrorKind::LimitExceeded
        );
        assert!(check_threads("--threads", MAX_THREADS).is_ok());
        assert!(check_threads("--threads", MAX_THREADS + 1).is_err());
        assert!(check_image_side("--crop", MAX_IMAGE_SIDE + 1).is_err());
    }
}
