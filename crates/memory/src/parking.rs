//! Wait queues for `memory.atomic.wait32/64` and `memory.atomic.notify`.
//!
//! One [`ParkingLot`] per shared memory: a mutex over a map from byte offset
//! to a FIFO queue of waiters, each with its own condition variable.
//!
//! Protocol (the part the loom models check):
//!
//! * **wait**: lock the map; load the value (SeqCst) and compare it with the
//!   expected one *while holding the lock*; if different return `NotEqual`,
//!   else enqueue a waiter at the back of the offset's queue and sleep on its
//!   condvar (releasing the lock) until its `notified` flag is set or the
//!   deadline passes. On timeout, a waiter that is still unnotified removes
//!   itself from the queue and reports `TimedOut`.
//! * **notify**: lock the map; pop up to `count` waiters from the front of the
//!   offset's queue, set each one's `notified` flag and signal its condvar;
//!   return how many were popped.
//!
//! Because the value check and the enqueue happen under the same lock that
//! notify takes, a notifier that changed the value before notifying either
//! finds the waiter in the queue or the waiter sees the new value: no lost
//! wake-ups. `Woken` is returned only for a waiter that notify popped and
//! counted, so there are no spurious `Woken` results and the count notify
//! returns is exact. Condvar spurious wake-ups just loop.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::sync::{self, Condvar, Mutex};

/// The result of a successful `wait32`/`wait64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitOutcome {
    /// Another thread's `notify` woke this waiter (wasm result 0, "ok").
    Woken,
    /// The value in memory differed from the expected one; the caller did not
    /// sleep (wasm result 1, "not-equal").
    NotEqual,
    /// The timeout expired before a notify (wasm result 2, "timed-out").
    TimedOut,
}

impl WaitOutcome {
    /// The value `memory.atomic.wait32/64` returns for this outcome.
    pub fn as_wasm_result(self) -> u32 {
        match self {
            WaitOutcome::Woken => 0,
            WaitOutcome::NotEqual => 1,
            WaitOutcome::TimedOut => 2,
        }
    }
}

struct Waiter {
    /// Set by `notify` after popping this waiter. Only read or written with
    /// the lot's lock held, so relaxed ordering suffices.
    notified: AtomicBool,
    cond: Condvar,
}

type Queues = HashMap<u64, VecDeque<Arc<Waiter>>>;

pub(crate) struct ParkingLot {
    queues: Mutex<Queues>,
}

impl ParkingLot {
    pub(crate) fn new() -> Self {
        ParkingLot {
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Waits on `key` if `still_expected()` (called with the lock held)
    /// returns true. `None` waits forever.
    pub(crate) fn wait(
        &self,
        key: u64,
        still_expected: impl FnOnce() -> bool,
        timeout: Option<Duration>,
    ) -> WaitOutcome {
        // A deadline that overflows `Instant` is as good as no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut queues = sync::lock(&self.queues);
        if !still_expected() {
            return WaitOutcome::NotEqual;
        }
        if timeout.is_some_and(|t| t.is_zero()) {
            return WaitOutcome::TimedOut;
        }
        let me = Arc::new(Waiter {
            notified: AtomicBool::new(false),
            cond: Condvar::new(),
        });
        queues.entry(key).or_default().push_back(Arc::clone(&me));
        loop {
            if me.notified.load(std::sync::atomic::Ordering::Relaxed) {
                return WaitOutcome::Woken;
            }
            match deadline {
                None => queues = sync::wait(&me.cond, queues),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Still queued (not notified): leave the queue.
                        if let Some(q) = queues.get_mut(&key) {
                            q.retain(|w| !Arc::ptr_eq(w, &me));
                            if q.is_empty() {
                                queues.remove(&key);
                            }
                        }
                        return WaitOutcome::TimedOut;
                    }
                    queues = sync::wait_timeout(&me.cond, queues, deadline - now);
                }
            }
        }
    }

    /// Wakes up to `count` waiters on `key`, oldest first; returns how many.
    pub(crate) fn notify(&self, key: u64, count: u32) -> u32 {
        if count == 0 {
            return 0;
        }
        let mut queues = sync::lock(&self.queues);
        let Some(q) = queues.get_mut(&key) else {
            return 0;
        };
        let mut woken = 0;
        while woken < count {
            let Some(w) = q.pop_front() else { break };
            w.notified.store(true, std::sync::atomic::Ordering::Relaxed);
            w.cond.notify_one();
            woken += 1;
        }
        if q.is_empty() {
            queues.remove(&key);
        }
        woken
    }

    /// Number of threads currently queued on `key` (for tests and diagnostics).
    pub(crate) fn waiters(&self, key: u64) -> usize {
        sync::lock(&self.queues).get(&key).map_or(0, VecDeque::len)
    }
}
