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
//!
//! **cancel** (a [`WaitCanceller`], e.g. a runtime's interrupt): the waiter,
//! holding the lot's lock, enqueues itself, *then* registers with the
//! canceller, *then* checks the canceller's flag (SeqCst); the canceller sets
//! the flag (SeqCst), *then* takes the registration and, if there is one,
//! locks the lot, unqueues the waiter unless notify already popped it, marks
//! it cancelled and signals it. Whichever of "register" and "take" comes
//! first under the registration's mutex, either the canceller finds the
//! waiter or the waiter sees the flag: a cancel is never lost, and a waiter
//! that was notified first still reports `Woken` (notify's count stays
//! exact).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::sync::{self, Condvar, Mutex};

/// Cancels waits on shared memories (`memory.atomic.wait32/64`) from another
/// thread: a runtime hands one to every wait of a store and cancels it to
/// interrupt that store. Cancelling wakes the wait in progress (it returns
/// [`WaitCancelled`]) and makes later waits return at once, until
/// [`reset`](Self::reset).
///
/// ```
/// use std::time::Duration;
/// use weft_memory::{Memory, MemoryConfig, WaitCanceller};
///
/// let mem = Memory::new(&MemoryConfig::new(1).with_maximum(Some(1)), true)?;
/// let shared = mem.as_shared().unwrap().clone();
/// let cancel = WaitCanceller::new();
/// let c = cancel.clone();
/// let waiter = std::thread::spawn(move || shared.wait32_cancellable(0, 0, None, &c));
/// std::thread::sleep(Duration::from_millis(10));
/// cancel.cancel();
/// assert_eq!(waiter.join().unwrap()?, Err(weft_memory::WaitCancelled));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct WaitCanceller(Arc<CancelState>);

/// A wait in progress, as its canceller knows it: the lot, key and waiter.
type Registration = (Arc<ParkingLot>, u64, Arc<Waiter>);

#[derive(Default)]
struct CancelState {
    cancelled: sync::AtomicBool,
    /// The wait in progress.
    current: Mutex<Option<Registration>>,
}

impl std::fmt::Debug for WaitCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitCanceller")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl WaitCanceller {
    /// A canceller that has not been cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the wait in progress (if any) and makes every later wait with
    /// this canceller return at once, until [`reset`](Self::reset).
    pub fn cancel(&self) {
        self.0.cancelled.store(true, sync::Ordering::SeqCst);
        let current = sync::lock(&self.0.current).take();
        if let Some((lot, key, waiter)) = current {
            lot.cancel(key, &waiter);
        }
    }

    /// Lets waits sleep again.
    pub fn reset(&self) {
        self.0.cancelled.store(false, sync::Ordering::SeqCst);
    }

    /// Whether waits are cancelled now.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(sync::Ordering::SeqCst)
    }
}

/// A wait ended by its [`WaitCanceller`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WaitCancelled;

impl std::fmt::Display for WaitCancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the wait was cancelled")
    }
}

impl std::error::Error for WaitCancelled {}

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
    /// Set by a canceller after unqueueing this waiter (lock held).
    cancelled: AtomicBool,
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
    /// returns true; `None` waits forever. `cancel` (if given) can end the
    /// wait from another thread (see the module docs for the protocol).
    pub(crate) fn wait_cancellable(
        self: &Arc<Self>,
        key: u64,
        still_expected: impl FnOnce() -> bool,
        timeout: Option<Duration>,
        cancel: Option<&WaitCanceller>,
    ) -> Result<WaitOutcome, WaitCancelled> {
        // A deadline that overflows `Instant` is as good as no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut queues = sync::lock(&self.queues);
        if cancel.is_some_and(WaitCanceller::is_cancelled) {
            return Err(WaitCancelled);
        }
        if !still_expected() {
            return Ok(WaitOutcome::NotEqual);
        }
        if timeout.is_some_and(|t| t.is_zero()) {
            return Ok(WaitOutcome::TimedOut);
        }
        let me = Arc::new(Waiter {
            notified: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            cond: Condvar::new(),
        });
        queues.entry(key).or_default().push_back(Arc::clone(&me));
        if let Some(c) = cancel {
            *sync::lock(&c.0.current) = Some((Arc::clone(self), key, Arc::clone(&me)));
            if c.is_cancelled() {
                // The canceller may or may not have seen the registration;
                // either way this waiter leaves now.
                unqueue(&mut queues, key, &me);
                drop(queues);
                unregister(c, &me);
                return Err(WaitCancelled);
            }
        }
        let outcome = loop {
            if me.notified.load(std::sync::atomic::Ordering::Relaxed) {
                break Ok(WaitOutcome::Woken);
            }
            if me.cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                break Err(WaitCancelled);
            }
            match deadline {
                None => queues = sync::wait(&me.cond, queues),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // Still queued (not notified): leave the queue.
                        unqueue(&mut queues, key, &me);
                        break Ok(WaitOutcome::TimedOut);
                    }
                    queues = sync::wait_timeout(&me.cond, queues, deadline - now);
                }
            }
        };
        drop(queues);
        if let Some(c) = cancel {
            unregister(c, &me);
        }
        outcome
    }

    /// A canceller's half of the protocol: unqueues `waiter` unless notify
    /// popped it first, and wakes it.
    fn cancel(&self, key: u64, waiter: &Arc<Waiter>) {
        let mut queues = sync::lock(&self.queues);
        if waiter.notified.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        unqueue(&mut queues, key, waiter);
        waiter
            .cancelled
            .store(true, std::sync::atomic::Ordering::Relaxed);
        waiter.cond.notify_one();
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

/// Removes `me` from `key`'s queue (if it is still there).
fn unqueue(queues: &mut Queues, key: u64, me: &Arc<Waiter>) {
    if let Some(q) = queues.get_mut(&key) {
        q.retain(|w| !Arc::ptr_eq(w, me));
        if q.is_empty() {
            queues.remove(&key);
        }
    }
}

/// Clears the canceller's registration if it is still `me`'s.
fn unregister(c: &WaitCanceller, me: &Arc<Waiter>) {
    let mut current = sync::lock(&c.0.current);
    if current.as_ref().is_some_and(|(_, _, w)| Arc::ptr_eq(w, me)) {
        *current = None;
    }
}
