//! Node.js binding of ferronet-core. It only translates: JS values in, core calls,
//! JS values out. Long work (fit, evaluate, generate) runs off the JS thread on
//! threads of its own (`spawn`), file work as napi `AsyncTask`s; every core error and every panic becomes a JS `Error` whose message
//! starts with a stable code (`ERR_SHAPE: ...`) that the TypeScript layer maps to
//! its typed errors. Nothing here may abort the Node process.

mod bench;
mod data;
mod debug;
mod error;
mod files;
mod gan;
mod net;
mod options;
mod spawn;
mod step;
mod trainer;

#[napi_derive::module_init]
fn init() {
    error::install_panic_hook();
}

/// Stops every fit and evaluate of this process before its next batch, for good. The
/// TypeScript layer calls it from the main thread's `exit` event. When fits ran as
/// libuv requests, Node joined libuv's threads before it exited (process.exit() during
/// a fit took 21.8 s without this, 0.65 s with it); they now run on threads of their
/// own (`spawn`), which an exit does not wait for, and this only ends them cleanly.
#[napi_derive::napi]
pub fn stop_all_training() {
    ferronet_core::train::stop_all();
}
