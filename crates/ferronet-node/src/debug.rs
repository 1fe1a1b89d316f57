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

/// Makes the next atomic save to `path` fail after `bytes` bytes (once), to prove a
/// failed save leaves the previous file intact.
#[napi(js_name = "__debugFailNextSave")]
pub fn debug_fail_next_save(path: String, bytes: u32) {
    ferronet_core::io::atomic::fail_next_write(std::path::Path::new(&path), bytes as usize);
}
