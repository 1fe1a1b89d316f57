//! Node.js binding of ferronet-core. It only translates: JS values in, core calls,
//! JS values out. Long work (fit, evaluate) runs as napi `AsyncTask`s off the JS
//! thread; every core error and every panic becomes a JS `Error` whose message
//! starts with a stable code (`ERR_SHAPE: ...`) that the TypeScript layer maps to
//! its typed errors. Nothing here may abort the Node process.

mod bench;
mod data;
mod debug;
mod error;
mod files;
mod net;
mod options;
mod trainer;

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// process.exit() and the end of the process after an uncaught exception run the C
/// exit handlers and then join libuv's threads, one of which may be in the middle of
/// a fit: stop it before its next batch (measured: exit 21.8 s → well under a second).
extern "C" fn stop_training_at_exit() {
    ferronet_core::train::stop_all();
}

#[napi_derive::module_init]
fn init() {
    error::install_panic_hook();
    unsafe {
        atexit(stop_training_at_exit);
    }
}
