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
        CoreError::NonFiniteGradient { .. } => "ERR_NON_FINITE_GRADIENT",
        CoreError::Aborted { .. } => "ABORT_ERR",
        CoreError::ModelFile { .. } => "ERR_MODEL_FILE",
        CoreError::NonFiniteData { .. } => "ERR_NON_FINITE_DATA",
        CoreError::InvalidInput { .. } => "ERR_INVALID_INPUT",
        CoreError::OutOfMemory { .. } => "ERR_OUT_OF_MEMORY",
    }
}

pub fn to_js(e: CoreError) -> Error {
    let status = match e {
        CoreError::Aborted { .. } => Status::Cancelled,
        CoreError::InvalidConfig { .. }
        | CoreError::Shape { .. }
        | CoreError::TargetWidth { .. }
        | CoreError::Graph { .. }
        | CoreError::LabelOutOfRange { .. }
        | CoreError::NonFiniteData { .. }
        | CoreError::InvalidInput { .. } => Status::InvalidArg,
        CoreError::NonFiniteLoss { .. } | CoreError::NonFiniteGradient { .. } | CoreError::ModelFile { .. } | CoreError::OutOfMemory { .. } => Status::GenericFailure,
    };
    Error::new(status, format!("{}: {e}", code_of(&e)))
}

pub fn coded(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("{code}: {message}"))
}

/// Where the last panic happened (any thread): the hook records it instead of
/// printing Rust's panic dump on the user's stderr; the guard puts it in the error.
static LAST_PANIC_AT: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Installed when the addon loads: a panic becomes a typed JS error (see `guard`), so
/// the default hook's stderr dump would only be noise in the user's terminal. Set
/// `FERRONET_DEBUG_PANICS=1` to see the dumps.
pub fn install_panic_hook() {
    if std::env::var_os("FERRONET_DEBUG_PANICS").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        if let Some(l) = info.location() {
            *LAST_PANIC_AT.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{}:{}", l.file(), l.line()));
        }
    }));
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    };
    match LAST_PANIC_AT.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(at) => format!("{text} (at {at})"),
        None => text,
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
