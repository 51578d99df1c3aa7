//! The synchronisation shim.
//!
//! Every atomic, mutex and condition variable that takes part in the grow,
//! length-publication and wait/notify protocols is imported from here, never
//! from `std` directly. In ordinary builds this re-exports `std`; when the
//! crate's own unit tests are compiled with `--cfg loom` (`all(test, loom)`,
//! the tokio convention) it re-exports loom's model-checked versions instead,
//! so the loom models in `loom_tests.rs` run the real protocol code.
//!
//! Bookkeeping that is not part of those protocols (the pool's free list, the
//! committed high-water mark that is only touched under the grow lock) uses
//! `std` directly and is not model-checked.

#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(all(test, loom))]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning.
///
/// The data behind weft-memory's mutexes is kept consistent at every point
/// where user code (a resource limiter) could panic, so a poisoned lock is
/// still safe to use; recovering keeps a panicking limiter from turning every
/// later grow into a panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cond`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(cond: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cond.wait(guard).unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cond` for at most `dur`, ignoring poisoning (see [`lock`]).
///
/// Under loom a timed wait is an untimed wait (loom cannot model time), so
/// the models only exercise the no-timeout path.
pub(crate) fn wait_timeout<'a, T>(
    cond: &Condvar,
    guard: MutexGuard<'a, T>,
    dur: std::time::Duration,
) -> MutexGuard<'a, T> {
    match cond.wait_timeout(guard, dur) {
        Ok((guard, _)) => guard,
        Err(e) => e.into_inner().0,
    }
}
