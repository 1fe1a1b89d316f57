//! Core errors and panics → JS errors. The message starts with a stable code,
//! `CODE: human text`, which `src/native.ts` parses into a typed error.

use ferronet_core::Error as CoreError;
use napi::{Error, Status};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub fn code_of(e: &CoreError) -> &'static str {
    match e {
        CoreError::InvalidConfig { .. } => "ERR_INVALID_OPTION",
        CoreError::Shape { .. } | CoreError::TargetWidth { .. } => "ERR_SHAPE",
        CoreError::Graph { .. } => "ERR_GRAPH",
        CoreError::LabelOutOfRange { .. } => "ERR_LABEL_OUT_OF_RANGE",
        CoreError::NonFiniteLoss { .. } => "ERR_NON_FINITE_LOSS",
        CoreError::Aborted { .. } => "ABORT_ERR",
        CoreError::ModelFile { .. } => "ERR_MODEL_FILE",
    }
}

pub fn to_js(e: CoreError) -> Error {
    let status = match e {
        CoreError::Aborted { .. } => Status::Cancelled,
        CoreError::InvalidConfig { .. }
        | CoreError::Shape { .. }
        | CoreError::TargetWidth { .. }
        | CoreError::Graph { .. }
        | CoreError::LabelOutOfRange { .. } => Status::InvalidArg,
        CoreError::NonFiniteLoss { .. } | CoreError::ModelFile { .. } => Status::GenericFailure,
    };
    Error::new(status, format!("{}: {e}", code_of(&e)))
}

pub fn coded(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("{code}: {message}"))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs `f`, turning a panic (here or in a rayon worker, which re-raises on join)
/// into an `ERR_PANIC` error instead of unwinding into C, which would abort Node.
pub fn guard<T>(what: &str, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(coded(
            "ERR_PANIC",
            format!(
                "internal error in {what} (a Rust panic, please report it): {}",
                panic_message(&*payload)
            ),
        )),
    }
}
