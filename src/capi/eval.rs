//! `ipuflow_evaluator`: accuracy of a model against a reference, by output kind, from C (`crate::eval`).
//!
//! The host runs both models (its own sessions, its own data) and hands each pair of float outputs to the
//! evaluator; the evaluator says, per output, SQNR and cosine similarity and the agreement metric of its kind.

#![allow(non_camel_case_types)]
// Each export's safety contract is its C documentation (pointer validity, ownership, thread safety).
#![allow(clippy::missing_safety_doc)]

use std::ffi::c_char;

use super::{
    arg_nonempty_str, box_handle, guard, guard_value, ipuflow_status, out_ptr, string_to_c,
    write_out, BoxHandle,
};
use crate::error::{Error, ErrorKind};
use crate::eval::{DetectionLayout, Evaluator, OutputKind};

/// Output kind: inferred from the shape and the reference values (the default).
pub const IPUFLOW_OUTPUT_KIND_INFER: i32 = 0;
/// Output kind: class scores ([N, C] or [N, C, 1, 1]): top-1 agreement.
pub const IPUFLOW_OUTPUT_KIND_CLASSES: i32 = 1;
/// Output kind: per-step scores [N, T, C] (CTC recognizers): whole-sequence and per-step argmax agreement.
pub const IPUFLOW_OUTPUT_KIND_SEQUENCE: i32 = 2;
/// Output kind: YOLO-style rows [N, boxes, 5 + classes]: candidate boxes matched by class and IoU.
pub const IPUFLOW_OUTPUT_KIND_YOLO_ROWS: i32 = 3;
/// Output kind: YOLO-style columns [N, 4 + classes, anchors]: candidate boxes matched by class and IoU.
pub const IPUFLOW_OUTPUT_KIND_YOLO_COLUMNS: i32 = 4;
/// Output kind: plain values: SQNR and cosine similarity only.
pub const IPUFLOW_OUTPUT_KIND_VALUES: i32 = 5;
/// Output kind: an anchor head's boxes [N, A, 4 + extra] (SSD, BlazeFace's regressors), paired with the
/// `IPUFLOW_OUTPUT_KIND_ANCHOR_SCORES` output of the same A: detected anchors matched by index, class and IoU of the
/// boxes as written (cx, cy, w, h first). Add both outputs of a sample before the next sample's.
pub const IPUFLOW_OUTPUT_KIND_ANCHOR_BOXES: i32 = 6;
/// Output kind: an anchor head's scores [N, A, C] (logits or probabilities), paired with the
/// `IPUFLOW_OUTPUT_KIND_ANCHOR_BOXES` output of the same A (whose JSON entry carries the box metrics).
pub const IPUFLOW_OUTPUT_KIND_ANCHOR_SCORES: i32 = 7;
/// Output kind: per-step scores, time-major [T, N, C] (recurrent exports, e.g. a CRNN's [24, 1, 8210] logits):
/// whole-sequence and per-step argmax agreement. Inferred for [T, 1, C] with T >= 4.
pub const IPUFLOW_OUTPUT_KIND_SEQUENCE_TIME_MAJOR: i32 = 8;

/// Accumulates the comparison of a model's outputs with a reference model's over samples, in constant memory per
/// output. Created with `ipuflow_evaluator_create`, fed with `ipuflow_evaluator_add`, read with
/// `ipuflow_evaluator_to_json`, freed with `ipuflow_evaluator_free`. Not thread-safe: one thread at a time.
pub struct ipuflow_evaluator {
    _private: [u8; 0],
}

box_handle!(ipuflow_evaluator => Evaluator);

/// Creates an empty evaluator. `out` receives it (free with `ipuflow_evaluator_free`); untouched on failure.
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_evaluator_create(
    out: *mut *mut ipuflow_evaluator,
) -> ipuflow_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        write_out(out, ipuflow_evaluator::into_raw(Evaluator::new()));
        Ok(())
    })
}

/// Frees an evaluator and everything it accumulated; the handle is invalid afterwards. NULL is a no-op. Errors:
/// none (nothing is reported). Not thread-safe: no other call may use the evaluator during or after this one.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_evaluator_free(evaluator: *mut ipuflow_evaluator) {
    guard_value((), || ipuflow_evaluator::free(evaluator))
}

/// Says what output `output_name` is (`IPUFLOW_OUTPUT_KIND_*`) instead of inferring it; call before its first
/// `ipuflow_evaluator_add`. `output_name` is copied (the caller keeps its string). Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8,
/// IPUFLOW_STATUS_INVALID_ARGUMENT (empty name), IPUFLOW_STATUS_INVALID_ENUM. Not thread-safe on the same evaluator.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_evaluator_set_output_kind(
    evaluator: *mut ipuflow_evaluator,
    output_name: *const c_char,
    kind: i32,
) -> ipuflow_status {
    guard(|| {
        let e = ipuflow_evaluator::try_mut(evaluator, "evaluator")?;
        let name = arg_nonempty_str(output_name, "output_name")?;
        let k = match kind {
            IPUFLOW_OUTPUT_KIND_INFER => return Ok(()),
            IPUFLOW_OUTPUT_KIND_CLASSES => OutputKind::ClassScores,
            IPUFLOW_OUTPUT_KIND_SEQUENCE => OutputKind::Sequence,
            IPUFLOW_OUTPUT_KIND_YOLO_ROWS => OutputKind::Detection(DetectionLayout::YoloRows),
            IPUFLOW_OUTPUT_KIND_YOLO_COLUMNS => OutputKind::Detection(DetectionLayout::YoloColumns),
            IPUFLOW_OUTPUT_KIND_VALUES => OutputKind::Values,
            IPUFLOW_OUTPUT_KIND_ANCHOR_BOXES => OutputKind::Detection(DetectionLayout::AnchorBoxes),
            IPUFLOW_OUTPUT_KIND_ANCHOR_SCORES => {
                OutputKind::Detection(DetectionLayout::AnchorScores)
            }
            IPUFLOW_OUTPUT_KIND_SEQUENCE_TIME_MAJOR => OutputKind::SequenceTimeMajor,
            v => {
                return Err(super::invalid_enum(
                    "kind",
                    v,
                    "IPUFLOW_OUTPUT_KIND_INFER..IPUFLOW_OUTPUT_KIND_SEQUENCE_TIME_MAJOR (0..8)",
                ))
            }
        };
        e.set_kind(name, k);
        Ok(())
    })
}

/// Adds one sample of output `output_name`: `count` float values of the reference model (`reference`) and of the
/// model evaluated (`other`), of shape `shape` (`rank` sizes, the product being `count`). The arrays are read
/// during the call only (the caller keeps them; the evaluator keeps its running sums and at most one sample per
/// output: the first, until every output's kind is known, or an anchor head's half until its other half comes).
/// Add every output of a sample before the next sample's.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (a pointer NULL with `count` or `rank` > 0), IPUFLOW_STATUS_INVALID_UTF8,
/// IPUFLOW_STATUS_INVALID_ARGUMENT (empty name, negative size), IPUFLOW_STATUS_TENSOR_MISMATCH (the shape's product
/// is not `count`; the two halves of an anchor head not added sample by sample), IPUFLOW_STATUS_LIMIT_EXCEEDED (rank
/// over 64). Not thread-safe on the same evaluator.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_evaluator_add(
    evaluator: *mut ipuflow_evaluator,
    output_name: *const c_char,
    shape: *const i64,
    rank: usize,
    reference: *const f32,
    other: *const f32,
    count: usize,
) -> ipuflow_status {
    guard(|| {
        let e = ipuflow_evaluator::try_mut(evaluator, "evaluator")?;
        let name = arg_nonempty_str(output_name, "output_name")?;
        crate::limits::check_rank("argument 'rank'", rank)?;
        let slice = |p: *const f32, n: usize, what: &str| -> crate::Result<&[f32]> {
            if n == 0 {
                Ok(&[])
            } else if p.is_null() {
                Err(super::null_arg(what))
            } else {
                Ok(std::slice::from_raw_parts(p, n))
            }
        };
        let shape: &[i64] = if rank == 0 {
            &[]
        } else if shape.is_null() {
            return Err(super::null_arg("shape"));
        } else {
            std::slice::from_raw_parts(shape, rank)
        };
        if shape.iter().any(|d| *d < 0) {
            return Err(Error::invalid_argument(format!(
                "output '{name}': shape {shape:?} has a negative size"
            )));
        }
        let product = shape
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d as usize));
        if product != Some(count) {
            return Err(Error::new(
                ErrorKind::TensorMismatch,
                format!("output '{name}': shape {shape:?} does not hold {count} values"),
            ));
        }
        let (r, o) = (
            slice(reference, count, "reference")?,
            slice(other, count, "other")?,
        );
        e.add(name, shape, r, o)
    })
}

/// The metrics of every output added so far, as JSON: a list of `{name, shape, kind, kind_given, paired_with (an
/// anchor head's half only), metrics: [{name, value, meaning}]}` (value null for an infinite SQNR or an empty
/// ratio). `out_json` is freed with
/// `ipuflow_string_free`. Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Not thread-safe on the same evaluator.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_evaluator_to_json(
    evaluator: *const ipuflow_evaluator,
    out_json: *mut *mut c_char,
) -> ipuflow_status {
    guard(|| {
        let e = ipuflow_evaluator::try_ref(evaluator, "evaluator")?;
        let out_json = out_ptr(out_json, "out_json")?;
        let json = serde_json::to_string_pretty(&e.finish())
            .map_err(|err| Error::internal(format!("evaluation JSON: {err}")))?;
        write_out(out_json, string_to_c(json));
        Ok(())
    })
}
