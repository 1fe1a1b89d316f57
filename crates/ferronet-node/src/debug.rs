//! Test hooks proving that panics never abort Node. Not part of the public API.

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Result, Task};
use napi_derive::napi;

use crate::error::guard;

/// Panics inside a guarded synchronous call.
#[napi(js_name = "__debugPanicSync", catch_unwind)]
pub fn debug_panic_sync() -> Result<()> {
    guard("__debugPanicSync", || {
        panic!("deliberate test panic (sync)")
    })
}

pub struct PanicTask;

impl Task for PanicTask {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> Result<()> {
        // Panic inside a rayon worker: it must come back as a rejected Promise.
        guard("__debugPanicAsync", || {
            rayon::scope(|s| s.spawn(|_| panic!("deliberate test panic (async, rayon worker)")));
            Ok(())
        })
    }
    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

/// Panics inside an AsyncTask's compute on a rayon worker.
#[napi(js_name = "__debugPanicAsync")]
pub fn debug_panic_async() -> AsyncTask<PanicTask> {
    AsyncTask::new(PanicTask)
}
