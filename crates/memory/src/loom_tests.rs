//! loom models of the real grow / length-publication / wait-notify code.
//!
//! Built only for `cfg(all(test, loom))`. Through `sync.rs` the crate's
//! atomics, mutexes and condvars are loom's, and `sys.rs` backs memories by
//! a heap allocation whose per-page accessibility is a loom-tracked cell: an
//! access to a page whose "make accessible" write does not happen-before the
//! access is reported by loom as a causality violation, and an access to a
//! page never made accessible fails an assertion. A lost wake-up shows up as
//! a loom deadlock.
//!
//! Memories here use 8-byte pages (`page_size_log2 = 3`), which equals the
//! loom "host page", so every wasm page is one tracked granule.
//!
//! Timeouts cannot be modelled (loom has no time); every wait here is the
//! `None` (forever) path.

use loom::thread;

use crate::{AccessError, GrowError, MemoryConfig, RmwOp, SharedMemory, WaitOutcome};

/// Runs `f` under `loom::model` and reports how many executions loom
/// explored (visible with `--nocapture`).
fn model<F>(name: &str, f: F)
where
    F: Fn() + Send + Sync + 'static,
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    loom::model(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{name}: {} executions explored",
        runs.load(Ordering::Relaxed)
    );
}

/// A shared memory of `initial` 8-byte pages, at most `max`, no guards.
fn small_shared(initial: u64, max: u64) -> SharedMemory {
    let cfg = MemoryConfig::new(initial)
        .with_maximum(Some(max))
        .with_page_size_log2(3)
        .with_reservation(0)
        .with_guards(0, 0);
    SharedMemory::new(&cfg).expect("small shared memory")
}

/// Two threads grow concurrently while a third reads the published length
/// through the `MemoryDefinition` (as compiled code does) and touches the
/// last byte below it.
#[test]
fn concurrent_grows_and_length_reader() {
    model("concurrent_grows_and_length_reader", || {
        let mem = small_shared(1, 3);
        let growers: Vec<_> = (0..2)
            .map(|_| {
                let m = mem.clone();
                thread::spawn(move || m.grow(1))
            })
            .collect();
        let m = mem.clone();
        let reader = thread::spawn(move || {
            let def = m.definition();
            // SAFETY: the definition lives as long as `m`.
            let len = unsafe { (*def).current_length() };
            // Every byte below the observed length must be accessible to
            // this thread (loom-checked happens-before on each page).
            m.check_accessible(0, len);
            assert_eq!(m.atomic_load::<u8>(len as u64 - 1), Ok(0));
            len
        });
        let mut olds: Vec<u64> = growers
            .into_iter()
            .map(|t| t.join().unwrap().expect("both grows fit"))
            .collect();
        olds.sort_unstable();
        assert_eq!(olds, vec![1, 2], "old sizes must be distinct");
        let seen = reader.join().unwrap();
        assert!([8, 16, 24].contains(&seen), "reader saw {seen}");
        assert_eq!(mem.size_pages(), 3);
        assert_eq!(mem.byte_len(), 24);
    });
}

/// Two grows race for the last page: exactly one succeeds, the loser
/// changes nothing, and the final size is the sum of successful grows.
#[test]
fn concurrent_grows_at_the_maximum() {
    model("concurrent_grows_at_the_maximum", || {
        let mem = small_shared(1, 2);
        let growers: Vec<_> = (0..2)
            .map(|_| {
                let m = mem.clone();
                thread::spawn(move || m.grow(1))
            })
            .collect();
        let results: Vec<_> = growers.into_iter().map(|t| t.join().unwrap()).collect();
        let ok: Vec<u64> = results.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(ok, vec![1]);
        assert!(results.iter().any(|r| matches!(
            r,
            Err(GrowError::ExceedsMaximum {
                current_pages: 2,
                ..
            })
        )));
        assert_eq!(mem.size_pages(), 2);
    });
}

/// A grow races an atomic access just past the old end: the access either
/// fails with an out-of-bounds error (and has no effect) or lands in the new,
/// accessible, zeroed page. An access below the old end always succeeds.
#[test]
fn grow_races_atomic_access_near_old_end() {
    model("grow_races_atomic_access_near_old_end", || {
        let mem = small_shared(1, 2);
        let m = mem.clone();
        let grower = thread::spawn(move || m.grow(1));
        let m = mem.clone();
        let accessor = thread::spawn(move || {
            let past = m.atomic_rmw::<u32>(8, RmwOp::Add, 1);
            let below = m.atomic_rmw::<u32>(4, RmwOp::Add, 1);
            (past, below)
        });
        let (past, below) = accessor.join().unwrap();
        assert_eq!(below, Ok(0));
        assert_eq!(grower.join().unwrap(), Ok(1));
        match past {
            Ok(old) => {
                assert_eq!(old, 0);
                assert_eq!(mem.atomic_load::<u32>(8), Ok(1));
            }
            Err(e) => {
                assert!(matches!(
                    e,
                    AccessError::OutOfBounds {
                        offset: 8,
                        memory_len: 8,
                        ..
                    }
                ));
                assert_eq!(mem.atomic_load::<u32>(8), Ok(0));
            }
        }
    });
}

/// A waiter and a notifier that changes the value first: in every
/// interleaving the waiter either sees the new value or is woken, never
/// sleeps forever (loom would report the deadlock), and notify's count
/// matches.
#[test]
fn wait_notify_no_lost_wakeup() {
    model("wait_notify_no_lost_wakeup", || {
        let mem = small_shared(1, 1);
        let m = mem.clone();
        let waiter = thread::spawn(move || m.wait32(0, 0, None).unwrap());
        let m = mem.clone();
        let notifier = thread::spawn(move || {
            m.atomic_store::<u32>(0, 1).unwrap();
            m.notify(0, 1).unwrap()
        });
        let woken = notifier.join().unwrap();
        match waiter.join().unwrap() {
            WaitOutcome::Woken => assert_eq!(woken, 1),
            WaitOutcome::NotEqual => assert_eq!(woken, 0),
            WaitOutcome::TimedOut => panic!("no timeout was set"),
        }
        assert_eq!(mem.waiters(0), 0);
    });
}

/// Two waiters, two notifies of one each: the counts notify returns add up
/// to exactly the number of `Woken` results, each notify wakes at most one,
/// and nobody is left asleep.
#[test]
fn wait_notify_exact_counts() {
    model("wait_notify_exact_counts", || {
        let mem = small_shared(1, 1);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let m = mem.clone();
                thread::spawn(move || m.wait64(0, 0, None).unwrap())
            })
            .collect();
        let m = mem.clone();
        let notifier = thread::spawn(move || {
            m.atomic_store::<u64>(0, 1).unwrap();
            let n1 = m.notify(0, 1).unwrap();
            let n2 = m.notify(0, 1).unwrap();
            (n1, n2)
        });
        let (n1, n2) = notifier.join().unwrap();
        assert!(n1 <= 1 && n2 <= 1);
        let woken = waiters
            .into_iter()
            .map(|t| t.join().unwrap())
            .inspect(|r| assert_ne!(*r, WaitOutcome::TimedOut))
            .filter(|r| *r == WaitOutcome::Woken)
            .count();
        assert_eq!((n1 + n2) as usize, woken);
        assert_eq!(mem.waiters(0), 0);
    });
}

/// A waiter and a canceller: in every interleaving the wait ends (loom
/// would report a waiter asleep forever) as cancelled, and leaves no queue
/// entry behind.
#[test]
fn wait_cancel_is_never_lost() {
    model("wait_cancel_is_never_lost", || {
        let mem = small_shared(1, 1);
        let cancel = crate::WaitCanceller::new();
        let (m, c) = (mem.clone(), cancel.clone());
        let waiter = thread::spawn(move || m.wait32_cancellable(0, 0, None, &c).unwrap());
        let c = cancel.clone();
        let canceller = thread::spawn(move || c.cancel());
        canceller.join().unwrap();
        assert_eq!(waiter.join().unwrap(), Err(crate::WaitCancelled));
        assert_eq!(mem.waiters(0), 0);
    });
}

/// A waiter, a notifier and a canceller: the waiter is woken exactly when
/// notify counts it, and is otherwise cancelled; nobody sleeps forever.
#[test]
fn wait_cancel_and_notify_agree() {
    model("wait_cancel_and_notify_agree", || {
        let mem = small_shared(1, 1);
        let cancel = crate::WaitCanceller::new();
        let (m, c) = (mem.clone(), cancel.clone());
        let waiter = thread::spawn(move || m.wait32_cancellable(0, 0, None, &c).unwrap());
        let m = mem.clone();
        let notifier = thread::spawn(move || m.notify(0, 1).unwrap());
        cancel.cancel();
        let woken = notifier.join().unwrap();
        match waiter.join().unwrap() {
            Ok(WaitOutcome::Woken) => assert_eq!(woken, 1),
            Err(crate::WaitCancelled) => assert_eq!(woken, 0),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(mem.waiters(0), 0);
    });
}
