//! ONNX Runtime, opened at run time: loading, environment, session options, sessions, tensors.
//!
//! - [`Runtime`]: the process-wide ONNX Runtime library, found and checked once ([`Runtime::load`]);
//! - [`Environment`]: ONNX Runtime's per-process environment (logging, global thread pools);
//! - [`SessionOptions`]: a plain struct applied to `OrtSessionOptions` when a session is created;
//! - [`Session`]: a loaded model, `Send + Sync`, run from many threads at once, with caller-owned buffers;
//! - [`Tensor`], [`TensorRef`], [`TensorMut`]: owned outputs and borrowed caller buffers;
//! - [`RunOptions`]: per-run settings and a cancel token usable from another thread;
//! - [`cpu_plan`]: quantized models rewritten so ONNX Runtime's CPU provider runs them as integers (or float);
//! - [`npu`]: the session device (CPU / NPU / auto), other execution providers, the fallback policy, placement.
//!
//! All raw pointers and `unsafe` FFI stay inside this module; its public API is safe Rust.

/// `TryFrom<i32>` for a `#[repr(i32)]` enum from the list of its variants: the numbers are the discriminants, so a
/// value a host passes maps back to the variant declared with it and nothing else.
macro_rules! try_from_i32 {
    ($t:ident { $($v:ident),+ $(,)? }) => {
        impl TryFrom<i32> for $t {
            type Error = ();
            fn try_from(v: i32) -> std::result::Result<Self, ()> {
                $(if v == $t::$v as i32 {
                    return Ok($t::$v);
                })+
                Err(())
            }
        }
    };
}

#[macro_use]
mod ffi;
pub mod cpu_plan;
pub mod env;
pub mod loader;
pub mod npu;
pub mod options;
pub mod session;
pub mod tensor;

pub use cpu_plan::{CpuPlan, FallbackExecution, PlanKind};
pub use env::{Environment, EnvironmentBuilder, GlobalThreadPools, LogLevel, LogRecord};
pub use loader::{Runtime, RuntimeSource, ENV_VAR, MIN_API_VERSION};
pub use npu::{
    DeviceUsed, Execution, ExecutionProvider, FallbackPolicy, NpuFraction, Placement, SessionDevice,
};
pub use options::{
    ExecutionMode, GraphOptimizationLevel, LoadCancel, SessionOptions, LOAD_CANCEL_API_VERSION,
};
pub use session::{RunOptions, Session, TensorInfo, ValueKind};
pub use tensor::{Element, ElementType, Tensor, TensorMut, TensorRef};
