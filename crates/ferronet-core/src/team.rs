//! A spinning thread team for the many short parallel sections of a training step.
//!
//! Rayon parks idle workers; on a small VM waking a parked worker can take longer
//! than a whole 64-row matrix product (~100 µs), so each product ran serially in
//! practice. During an epoch, `with_team` keeps the pool's other workers inside a
//! rayon scope, spinning on a job slot (as OpenMP's active wait policy does), and
//! `run_parts` hands them work with no wake-up. Outside a team, `run_parts` is a
//! plain rayon parallel loop. Which part runs on which thread never changes a
//! result: parts write disjoint outputs.

use rayon::prelude::*;
use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A job: `parts` pieces; member `rank` of `members` runs pieces rank, rank+members, ...
struct Job<'a> {
    work: &'a (dyn Fn(usize) + Sync),
    parts: usize,
    members: usize,
}

/// Helpers per team at most (a bit each in a u64 mask); more threads just sit out.
const MAX_HELPERS: usize = 64;

const NOT_STARTED: u8 = 0;
const IDLE: u8 = 1;
const BUSY: u8 = 2;

struct Helper {
    state: AtomicU8,
    /// Valid while state == BUSY; points at a `Job` on the poster's stack.
    job: AtomicPtr<Job<'static>>,
    rank: Cell<usize>,
}

// `rank` is written by the poster only while the helper is idle and read by the helper only while busy.
unsafe impl Sync for Helper {}

struct Team {
    helpers: Vec<Helper>,
    stop: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

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
                rank: Cell::new(0),
            })
            .collect(),
        stop: AtomicBool::new(false),
        panic: Mutex::new(None),
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
            let job = unsafe { &*me.job.load(Ordering::Acquire) };
            let rank = me.rank.get();
            let ran = catch_unwind(AssertUnwindSafe(|| {
                for p in (rank..job.parts).step_by(job.members) {
                    (job.work)(p);
                }
            }));
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
    let members = 1 + team.helpers.iter().filter(|h| idle(h)).take(wanted).count();
    let job = Job {
        work,
        parts,
        members,
    };
    let job_ptr = &job as *const Job as *mut Job<'static>;
    let mut posted: u64 = 0;
    let mut rank = 1;
    for (i, h) in team.helpers.iter().enumerate() {
        if rank == members {
            break;
        }
        if idle(h) {
            h.rank.set(rank);
            h.job.store(job_ptr, Ordering::Release);
            h.state.store(BUSY, Ordering::Release);
            posted |= 1 << i;
            rank += 1;
        }
    }
    let mine = catch_unwind(AssertUnwindSafe(|| {
        for p in (0..parts).step_by(job.members) {
            work(p);
        }
    }));
    // Wait for every helper before `job` leaves the stack, even if our part panicked.
    for (i, h) in team.helpers.iter().enumerate() {
        if posted & (1 << i) != 0 {
            while h.state.load(Ordering::Acquire) == BUSY {
                std::hint::spin_loop();
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
