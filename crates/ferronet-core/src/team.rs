//! A spinning thread team for the many short parallel sections of a training step.
//!
//! Rayon parks idle workers; on a small VM waking a parked worker can take longer
//! than a whole 64-row matrix product (~100 µs), so each product ran serially in
//! practice. During an epoch, `with_team` keeps the pool's other workers inside a
//! rayon scope, spinning on a job slot (as OpenMP's active wait policy does), and
//! `run_parts` hands them work with no wake-up. Outside a team, `run_parts` is a
//! plain rayon parallel loop. Which part runs on which thread never changes a
//! result: parts write disjoint outputs.
//!
//! Parts are taken from a shared counter, not dealt out in advance, and a helper that
//! has not started when the caller runs out of parts is called off: with a busy
//! neighbour on one of the cores, a descheduled helper then costs nothing instead of
//! making the caller wait for it; a helper called off in most of its recent posts sits
//! out a while. Measured by bench/contention.mjs (2 epochs of 8,000 digits, 2 cores, a
//! spinning process pinned to one): default threads ÷ one thread beside the busy core
//! 1.18 → 1.05, and 0.61 → 0.58 on a quiet machine.

use rayon::prelude::*;
use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A job: `parts` pieces, taken one at a time from `next` by whoever runs.
struct Job<'a> {
    work: &'a (dyn Fn(usize) + Sync),
    parts: usize,
    next: std::sync::atomic::AtomicUsize,
}

impl Job<'_> {
    /// Runs parts until none is left.
    fn drain(&self) {
        loop {
            let p = self.next.fetch_add(1, Ordering::AcqRel);
            if p >= self.parts {
                return;
            }
            (self.work)(p);
        }
    }
}

/// Helpers per team at most (a bit each in a u64 mask); more threads just sit out.
const MAX_HELPERS: usize = 64;

const NOT_STARTED: u8 = 0;
const IDLE: u8 = 1;
/// Posted a job it has not picked up yet: the poster may still call it off.
const BUSY: u8 = 2;
/// Picked the job up: the poster waits for it to finish its part in progress.
const RUNNING: u8 = 3;

struct Helper {
    state: AtomicU8,
    /// Valid while state == BUSY; points at a `Job` on the poster's stack.
    job: AtomicPtr<Job<'static>>,
    /// Poster-side bookkeeping (only the posting thread touches these): jobs posted and
    /// called off in the current window, and the post count until which this helper
    /// sits out because it kept being called off (its core is busy elsewhere).
    posts: Cell<u32>,
    calloffs: Cell<u32>,
    benched_until: Cell<u64>,
}

// The Cells are used by the posting thread only.
unsafe impl Sync for Helper {}

/// A helper called off in more than half of a window of this many posts sits out the
/// next `BENCH` posts: beside a busy core, posting to it only made the caller wait.
const WINDOW: u32 = 64;
const BENCH: u64 = 4096;

struct Team {
    helpers: Vec<Helper>,
    /// Jobs posted so far (by the one posting thread).
    jobs: Cell<u64>,
    stop: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// `jobs` (like the helpers' Cells) is used by the posting thread only.
unsafe impl Sync for Team {}

thread_local! {
    static CURRENT: Cell<*const Team> = const { Cell::new(ptr::null()) };
    /// A cap on the threads one run may use (a trainer's `threads`); 0 = the pool's.
    static LIMIT: Cell<usize> = const { Cell::new(0) };
}

/// The process's one compute pool, shared by every trainer and model: one thread per
/// core (or `FERRONET_THREADS`). Two trainers running at once take turns on it per
/// epoch instead of each spinning a pool of its own on the same cores.
pub fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::env::var("FERRONET_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("ferronet-{i}"))
            .build()
            .expect("the compute pool starts")
    })
}

/// Threads the current run may use: the current rayon pool's, capped by `with_threads`.
pub fn threads() -> usize {
    let n = rayon::current_num_threads();
    match LIMIT.with(|l| l.get()) {
        0 => n,
        l => l.min(n),
    }
}

/// Runs `f` on the shared pool with at most `threads` threads (0 = all of them).
pub fn run_on_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    pool().install(|| {
        let before = LIMIT.with(|l| l.replace(threads));
        let r = catch_unwind(AssertUnwindSafe(f));
        LIMIT.with(|l| l.set(before));
        match r {
            Ok(r) => r,
            Err(p) => resume_unwind(p),
        }
    })
}

/// Runs `f` on this thread while the other workers of the current rayon pool spin,
/// ready for `run_parts`. With one thread it just runs `f`.
pub fn with_team<R>(f: impl FnOnce() -> R) -> R {
    let others = threads()
        .saturating_sub(1)
        .min(MAX_HELPERS);
    if others == 0 || !CURRENT.with(|c| c.get().is_null()) {
        return f();
    }
    let team = Team {
        helpers: (0..others)
            .map(|_| Helper {
                state: AtomicU8::new(NOT_STARTED),
                job: AtomicPtr::new(ptr::null_mut()),
                posts: Cell::new(0),
                calloffs: Cell::new(0),
                benched_until: Cell::new(0),
            })
            .collect(),
        stop: AtomicBool::new(false),
        panic: Mutex::new(None),
        jobs: Cell::new(0),
    };
    let team_ref = &team;
    // In place: `f` runs on this thread (it need not be Send); the helpers are
    // spawned into the current pool and the scope waits for them to leave.
    let result = rayon::in_place_scope(|s| {
        for h in 0..others {
            s.spawn(move |_| helper_loop(team_ref, h));
        }
        CURRENT.with(|c| c.set(team_ref));
        let result = catch_unwind(AssertUnwindSafe(f));
        CURRENT.with(|c| c.set(ptr::null()));
        team_ref.stop.store(true, Ordering::Release);
        result
    });
    match result {
        Ok(r) => r,
        Err(p) => resume_unwind(p),
    }
}

fn helper_loop(team: &Team, h: usize) {
    let me = &team.helpers[h];
    me.state.store(IDLE, Ordering::Release);
    let mut idle_since = Instant::now();
    let (mut hot, mut spins) = (true, 0u32);
    loop {
        if me.state.load(Ordering::Acquire) == BUSY {
            // Pick the job up, unless the poster called it off meanwhile.
            if me.state.compare_exchange(BUSY, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
                continue;
            }
            let job = unsafe { &*me.job.load(Ordering::Acquire) };
            let ran = catch_unwind(AssertUnwindSafe(|| job.drain()));
            if let Err(p) = ran {
                *team.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
            me.state.store(IDLE, Ordering::Release);
            idle_since = Instant::now();
            hot = true;
            continue;
        }
        if team.stop.load(Ordering::Acquire) {
            return;
        }
        // Spin hot for a while, then politely: long serial stretches should not starve
        // other threads. The clock is read once per 256 spins, not on every one.
        spins = spins.wrapping_add(1);
        if hot {
            std::hint::spin_loop();
            if spins % 256 == 0 && idle_since.elapsed() > Duration::from_micros(500) {
                hot = false;
            }
        } else {
            std::thread::yield_now();
        }
    }
}

/// Whether this thread is running the body of `with_team`.
pub fn active() -> bool {
    CURRENT.with(|c| !c.get().is_null())
}

/// Runs `work(p)` for p in 0..parts, in parallel. Parts must touch disjoint data.
pub fn run_parts(parts: usize, work: &(dyn Fn(usize) + Sync)) {
    let team = CURRENT.with(|c| c.get());
    if team.is_null() {
        if threads() <= 1 {
            (0..parts).for_each(work);
        } else {
            (0..parts).into_par_iter().for_each(work);
        }
        return;
    }
    let team = unsafe { &*team };
    // Post to helpers that are up and idle; the caller is member 0.
    // Only this thread posts jobs, and helpers only ever turn from not-started to idle
    // on their own, so the idle ones counted here are still idle when posted to. A bit
    // mask (not a Vec) records them: no allocation per call.
    let wanted = parts.saturating_sub(1).min(MAX_HELPERS);
    let idle = |h: &Helper| h.state.load(Ordering::Acquire) == IDLE;
    let job = Job {
        work,
        parts,
        next: std::sync::atomic::AtomicUsize::new(0),
    };
    let job_ptr = &job as *const Job as *mut Job<'static>;
    let mut posted: u64 = 0;
    let mut count = 0;
    let n = team.jobs.get() + 1;
    team.jobs.set(n);
    for (i, h) in team.helpers.iter().enumerate() {
        if count == wanted {
            break;
        }
        if h.benched_until.get() > n {
            continue;
        }
        if idle(h) {
            h.job.store(job_ptr, Ordering::Release);
            h.state.store(BUSY, Ordering::Release);
            posted |= 1 << i;
            count += 1;
        }
    }
    let mine = catch_unwind(AssertUnwindSafe(|| job.drain()));
    // No part is left. A helper that has not picked the job up is called off (it may be
    // descheduled, its core taken by another process); one that has, finishes the part
    // in progress before `job` leaves the stack, even if our part panicked.
    for (i, h) in team.helpers.iter().enumerate() {
        if posted & (1 << i) != 0 {
            let called_off = h.state.compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok();
            h.posts.set(h.posts.get() + 1);
            h.calloffs.set(h.calloffs.get() + u32::from(called_off));
            if h.posts.get() == WINDOW {
                if h.calloffs.get() > WINDOW / 2 {
                    h.benched_until.set(n + BENCH);
                }
                h.posts.set(0);
                h.calloffs.set(0);
            }
            if called_off {
                continue;
            }
            let mut spins = 0u32;
            while h.state.load(Ordering::Acquire) == RUNNING {
                spins = spins.wrapping_add(1);
                // Sharing a core with that helper: give it the core instead of spinning.
                if spins % 64 == 0 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
    if let Err(p) = mine {
        resume_unwind(p);
    }
    if let Some(p) = team.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
        resume_unwind(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn runs_every_part_once_inside_and_outside_a_team() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            for in_team in [false, true] {
                let counts: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
                let body = || {
                    for _ in 0..50 {
                        run_parts(counts.len(), &|p| {
                            counts[p].fetch_add(1, Ordering::Relaxed);
                        });
                    }
                };
                if in_team {
                    with_team(body)
                } else {
                    body()
                }
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 50));
            }
        });
    }

    #[test]
    fn a_panicking_part_propagates_without_hanging() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| with_team(|| run_parts(8, &|p| assert!(p != 5, "part 5 fails"))))
        }));
        assert!(r.is_err());
        // The pool is still usable afterwards.
        pool.install(|| with_team(|| run_parts(4, &|_| {})));
    }
}
