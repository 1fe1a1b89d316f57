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
//! making the caller wait for it. A helper that keeps being called off, or that once
//! kept the caller waiting for its last part (preempted mid-part: a scheduler slice),
//! is benched: it sleeps instead of spinning, `threads()` stops counting it (so a
//! product is not split for a thread that will not come), and a bench that outlasts
//! the epoch keeps it out of the next team. Benches start at 10 ms, double while they
//! follow each other (to 8 s) and halve with each good window, so a quiet machine pays
//! ~10 ms for a false alarm and a busy one rarely retries. Measured by
//! bench/contention.mjs (10 epochs of 8,000 digits, 2 cores, a spinning process pinned
//! to one; medians of 7 or 9): default threads ÷ one thread beside the busy core
//! 1.17–1.62 before, 1.00–1.04 after; on a quiet machine 0.56–0.64 either way.

use rayon::prelude::*;
use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
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
    /// called off in the current window.
    posts: Cell<u32>,
    calloffs: Cell<u32>,
    /// Posts in the window where the caller waited long for this helper's last part.
    slow_waits: Cell<u32>,
    /// While set and in the future, this helper sits out: no posts, and `threads()`
    /// does not count it, so products are planned for the threads that can help.
    benched_until: Cell<Option<Instant>>,
    /// How long the next bench lasts: doubles with each bench, halves with each good
    /// window, between `BENCH_MIN` and `BENCH_MAX`.
    bench_len: Cell<Duration>,
    /// Set by the poster while this helper sits out: the helper then sleeps on `nap`
    /// instead of spinning, so it stops taking CPU time from the caller it cannot help.
    benched: AtomicBool,
    nap: (Mutex<()>, Condvar),
    /// Benched when the team formed: not started at all for this team (see `with_team`).
    absent: Cell<bool>,
}

// The Cells are used by the posting thread only.
unsafe impl Sync for Helper {}

impl Helper {
    /// The poster's bookkeeping after a post: bench this helper when it keeps being
    /// called off or keeps the caller waiting.
    fn record(&self, called_off: bool, slow: bool) {
        self.posts.set(self.posts.get() + 1);
        self.calloffs.set(self.calloffs.get() + u32::from(called_off));
        self.slow_waits.set(self.slow_waits.get() + u32::from(slow));
        // Called off in most of a whole window: the helper is not getting a core. (A
        // call-off costs only the parallelism; a long wait costs a scheduler slice.)
        let bad = self.slow_waits.get() >= SLOW_WAITS || (self.posts.get() == WINDOW && self.calloffs.get() > WINDOW * 3 / 4);
        if bad {
            let len = self.bench_len.get();
            self.benched_until.set(Some(Instant::now() + len));
            self.bench_len.set((len * 2).min(BENCH_MAX));
            self.benched.store(true, Ordering::Release);
        } else if self.posts.get() == WINDOW {
            // Halved, not reset: beside a busy core a window sometimes goes well by luck.
            self.bench_len.set((self.bench_len.get() / 2).max(BENCH_MIN));
        }
        if bad || self.posts.get() == WINDOW {
            self.posts.set(0);
            self.calloffs.set(0);
            self.slow_waits.set(0);
        }
    }

    /// Changes what the helper's nap waits on, under the nap's lock (no lost wake-up).
    fn wake(&self, change: impl FnOnce()) {
        let _held = self.nap.0.lock().unwrap_or_else(|p| p.into_inner());
        change();
        self.nap.1.notify_one();
    }

    /// Whether this helper sits out now; ends a bench that is over (poster thread only).
    fn sits_out(&self) -> bool {
        if self.absent.get() {
            return true;
        }
        match self.benched_until.get() {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                self.benched_until.set(None);
                self.wake(|| self.benched.store(false, Ordering::Release));
                false
            }
            None => false,
        }
    }
}

/// A helper called off in over 3/4 of a window of this many posts, or one the caller
/// waited long for (`SLOW_WAITS` times), sits out for `bench_len`: beside a busy core,
/// posting to it only made the caller wait. One long wait is enough: it costs a
/// scheduler slice (milliseconds); beside the busy core of bench/contention.mjs 9 of 870
/// posts waited long, on a quiet machine about one in 10,000 (our own JS thread taking
/// the helper's core), which the short first bench makes cheap.
const WINDOW: u32 = 64;
const SLOW_WAITS: u32 = 1;
const BENCH_MIN: Duration = Duration::from_millis(10);
const BENCH_MAX: Duration = Duration::from_secs(8);
/// A wait for a helper counts as long past twice the caller's own share plus this.
const SLOW_WAIT_SLACK: Duration = Duration::from_micros(300);
/// The longest a benched helper sleeps without looking at its flag (it is woken when
/// the bench ends or the team stops; this only bounds a missed wake-up). Sleeping, not
/// waking every 500 µs to look: the wake-ups cost the caller beside a busy core.
const BENCHED_NAP: Duration = Duration::from_millis(100);

struct Team {
    helpers: Vec<Helper>,
    stop: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// The helpers' Cells are used by the posting thread only.
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
    let n = match LIMIT.with(|l| l.get()) {
        0 => n,
        l => l.min(n),
    };
    // In a team, only the members that are not sitting out: a product split for two
    // threads but run by one packs its shared operand twice (measured beside a busy
    // core: 0.87 s against one thread's 0.78 s with the helper benched throughout).
    let team = CURRENT.with(|c| c.get());
    if team.is_null() {
        return n;
    }
    let team = unsafe { &*team };
    n.min(1 + team.helpers.iter().filter(|h| !h.sits_out()).count())
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
                slow_waits: Cell::new(0),
                benched_until: Cell::new(None),
                bench_len: Cell::new(BENCH_MIN),
                benched: AtomicBool::new(false),
                nap: (Mutex::new(()), Condvar::new()),
                absent: Cell::new(false),
            })
            .collect(),
        stop: AtomicBool::new(false),
        panic: Mutex::new(None),
    };
    // A helper benched in the last team (the last epoch) stays benched: its core is
    // likely still busy. If its bench lasts past now it is not even started for this
    // team, so the team's end does not wait for a thread beside a busy core to wake.
    // Only on the process's own pool (its threads are named ferronet-N): other pools,
    // such as the tests', do not share one machine's history.
    let persist = std::thread::current().name().is_some_and(|n| n.starts_with("ferronet-"));
    if persist {
        BENCHES.with_state(&team);
    }
    let now = Instant::now();
    for h in &team.helpers {
        h.absent.set(h.benched_until.get().is_some_and(|t| t > now));
    }
    let team_ref = &team;
    // In place: `f` runs on this thread (it need not be Send); the helpers are
    // spawned into the current pool and the scope waits for them to leave.
    let result = rayon::in_place_scope(|s| {
        for h in 0..others {
            if !team_ref.helpers[h].absent.get() {
                s.spawn(move |_| helper_loop(team_ref, h));
            }
        }
        CURRENT.with(|c| c.set(team_ref));
        let result = catch_unwind(AssertUnwindSafe(f));
        CURRENT.with(|c| c.set(ptr::null()));
        for h in &team_ref.helpers {
            h.wake(|| team_ref.stop.store(true, Ordering::Release));
        }
        result
    });
    if persist {
        BENCHES.keep_state(&team);
    }
    match result {
        Ok(r) => r,
        Err(p) => resume_unwind(p),
    }
}

/// The helpers' benches between teams: until when, and the next bench's length.
struct Benches(Mutex<Vec<(Option<Instant>, Duration)>>);

static BENCHES: Benches = Benches(Mutex::new(Vec::new()));

impl Benches {
    fn with_state(&self, team: &Team) {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (h, &(until, len)) in team.helpers.iter().zip(kept.iter()) {
            h.benched_until.set(until);
            h.bench_len.set(len);
            h.benched.store(until.is_some(), Ordering::Release);
        }
    }

    fn keep_state(&self, team: &Team) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.clear();
        kept.extend(team.helpers.iter().map(|h| (h.benched_until.get(), h.bench_len.get())));
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
        if me.benched.load(Ordering::Acquire) {
            let held = me.nap.0.lock().unwrap_or_else(|p| p.into_inner());
            let asleep = |_: &mut ()| me.benched.load(Ordering::Acquire) && !team.stop.load(Ordering::Acquire);
            drop(me.nap.1.wait_timeout_while(held, BENCHED_NAP, asleep));
            continue;
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
    for (i, h) in team.helpers.iter().enumerate() {
        if count == wanted {
            break;
        }
        if h.sits_out() {
            continue;
        }
        if idle(h) {
            h.job.store(job_ptr, Ordering::Release);
            h.state.store(BUSY, Ordering::Release);
            posted |= 1 << i;
            count += 1;
        }
    }
    let started = Instant::now();
    let mine = catch_unwind(AssertUnwindSafe(|| job.drain()));
    let drained = started.elapsed();
    // No part is left. A helper that has not picked the job up is called off (it may be
    // descheduled, its core taken by another process); one that has, finishes the part
    // in progress before `job` leaves the stack, even if our part panicked.
    for (i, h) in team.helpers.iter().enumerate() {
        if posted & (1 << i) == 0 {
            continue;
        }
        let called_off = h.state.compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok();
        let mut slow = false;
        if !called_off && h.state.load(Ordering::Acquire) == RUNNING {
            let waiting = Instant::now();
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
            // On a quiet machine a helper ends its last part about when the caller does;
            // one preempted mid-part keeps the caller a scheduler slice (milliseconds).
            slow = waiting.elapsed() > drained * 2 + SLOW_WAIT_SLACK;
        }
        h.record(called_off, slow);
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
    fn a_helper_that_keeps_the_caller_waiting_is_benched_and_no_longer_counted() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            with_team(|| {
                let caller = std::thread::current().id();
                assert_eq!(threads(), 2);
                // Wait (bounded) until the helper is up, then post 2 parts: the caller's
                // waits for the helper to take the other, which then takes 200 ms, as
                // a helper preempted mid-part would.
                let up = Instant::now();
                while team_helper_state(0) != IDLE && up.elapsed() < Duration::from_secs(5) {
                    std::hint::spin_loop();
                }
                let taken = AtomicUsize::new(0);
                let done: Vec<AtomicUsize> = (0..2).map(|_| AtomicUsize::new(0)).collect();
                run_parts(2, &|p| {
                    done[p].fetch_add(1, Ordering::Relaxed);
                    if std::thread::current().id() == caller {
                        let t = Instant::now();
                        while taken.load(Ordering::Acquire) == 0 && t.elapsed() < Duration::from_secs(5) {
                            std::hint::spin_loop();
                        }
                    } else {
                        taken.store(1, Ordering::Release);
                        std::thread::sleep(Duration::from_millis(200));
                    }
                });
                assert!(done.iter().all(|d| d.load(Ordering::Relaxed) == 1));
                assert_eq!(taken.load(Ordering::Relaxed), 1, "the helper took a part");
                // Benched: products are planned for one thread, and parts still all run.
                assert_eq!(threads(), 1);
                let counts: Vec<AtomicUsize> = (0..9).map(|_| AtomicUsize::new(0)).collect();
                run_parts(9, &|p| {
                    counts[p].fetch_add(1, Ordering::Relaxed);
                });
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
                // The first bench is short: the helper is counted again once it ends.
                std::thread::sleep(BENCH_MIN + Duration::from_millis(5));
                assert_eq!(threads(), 2);
            })
        });
    }

    /// State of helper `h` of the current team (tests only).
    fn team_helper_state(h: usize) -> u8 {
        let team = CURRENT.with(|c| c.get());
        unsafe { &*team }.helpers[h].state.load(Ordering::Acquire)
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
