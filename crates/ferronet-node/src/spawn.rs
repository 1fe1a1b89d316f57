//! Long work (fit, evaluate, a GAN's fit, generate) on a thread of its own rather
//! than libuv's pool, so that leaving never waits for it.
//!
//! Why: Node tears an environment down (`worker.terminate()`, a worker's end, the
//! main thread's exit) by first waiting for every libuv request still in flight and
//! only then running the environment's clean-up hooks. A fit running as an
//! `AsyncTask` is such a request, so `worker.terminate()` waited for the whole
//! epoch in progress (measured 7–44 s) and `process.exit()` for libuv's threads.
//! Here the work is no libuv request: the promise is a `JsDeferred` (a threadsafe
//! function, which teardown closes), and a clean-up hook per task asks the run to
//! stop before its next batch and waits until it has, so the JS buffers the task
//! borrows outlive every read of them. `worker.terminate()` now takes at most the
//! batch in progress.
//!
//! The task is the same `napi::Task` an `AsyncTask` would run: `compute` on the
//! new thread, `resolve`/`reject` and `finally` back on the JS thread. If the
//! environment is gone by then, the deferred drops the task instead (napi-rs frees
//! typed-array references of a dead environment as a no-op).

use ferronet_core::TrainControl;
use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{Env, Result, Task};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Stack of a task's thread: the core's loops are shallow, but `compute` once ran
/// on libuv's 8 MiB threads; keep the same room.
const STACK_BYTES: usize = 8 << 20;

/// Longest the clean-up hook waits for a stopped task (a batch normally takes
/// milliseconds to a second). Past it the environment goes on tearing down; the
/// task's thread never touches JS values, only the buffers, which V8 frees last.
const TEARDOWN_WAIT: Duration = Duration::from_secs(30);

/// Shared by the task's thread, its clean-up hook and its resolver.
struct Running {
    control: Arc<TrainControl>,
    done: Mutex<bool>,
    finished: Condvar,
    /// Set by the clean-up hook: its registration is gone, the resolver must not remove it.
    hook_ran: AtomicBool,
}

impl Running {
    fn finish(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.finished.notify_all();
    }

    /// The clean-up hook: stop before the next batch, then wait until compute returned.
    fn stop_and_wait(&self) {
        self.hook_ran.store(true, Ordering::SeqCst);
        self.control.request_stop();
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.finished.wait_timeout_while(done, TEARDOWN_WAIT, |d| !*d);
    }
}

/// The hook's handle, moved to the task's thread and back to the JS thread.
struct HookHandle(napi::CleanupEnvHook<Arc<Running>>);
// SAFETY: only passed through; `remove_env_cleanup_hook` is called on the JS thread
// (in the resolver), never on the task's thread.
unsafe impl Send for HookHandle {}

/// The task between threads. `Task` is `Send`; the wrapper adds the hook handle.
struct Carried<T> {
    task: T,
    hook: HookHandle,
    running: Arc<Running>,
}

/// Runs `task` on a new thread; returns its promise. `control` is the run's stop
/// flag (the trainer's, or one of the task's own), which the clean-up hook raises.
pub fn spawn_task<T>(env: &Env, task: T, control: Arc<TrainControl>) -> Result<Object<'_>>
where
    T: Task + Send + 'static,
    T::JsValue: ToNapiValue,
{
    let (deferred, promise) = env.create_deferred::<T::JsValue, _>()?;
    let running = Arc::new(Running {
        control,
        done: Mutex::new(false),
        finished: Condvar::new(),
        hook_ran: AtomicBool::new(false),
    });
    let hook = env.add_env_cleanup_hook(running.clone(), |r| r.stop_and_wait())?;
    // In a slot, so a thread that cannot start hands everything back.
    let slot = Arc::new(Mutex::new(Some((Carried { task, hook: HookHandle(hook), running }, deferred))));
    let for_thread = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("ferronet-task".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let Some((mut carried, deferred)) = for_thread.lock().unwrap_or_else(|p| p.into_inner()).take() else {
                return;
            };
            drop(for_thread);
            let output = carried.task.compute();
            carried.running.finish();
            deferred.resolve(move |env: Env| {
                let Carried { mut task, hook, running } = carried;
                if !running.hook_ran.load(Ordering::SeqCst) {
                    env.remove_env_cleanup_hook(hook.0)?;
                }
                let value = match output {
                    Ok(v) => task.resolve(env, v),
                    Err(e) => task.reject(env, e),
                };
                task.finally(env)?;
                value
            });
        });
    if let Err(e) = spawned {
        if let Some((Carried { task, hook, .. }, deferred)) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
            env.remove_env_cleanup_hook(hook.0)?;
            task.finally(*env)?;
            deferred.reject(crate::error::coded("ERR_OUT_OF_MEMORY", format!("could not start a thread for the task: {e}")));
        }
    }
    Ok(promise)
}
