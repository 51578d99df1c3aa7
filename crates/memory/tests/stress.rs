//! Concurrency stress tests with real threads.
//!
//! Every test runs its body on a helper thread and fails (instead of
//! hanging) if the body does not finish within a generous failsafe; all
//! loops are bounded. Nothing here asserts on timing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use weft_memory::{GrowError, MemoryConfig, RmwOp, SharedMemory, WaitOutcome};

const PAGE: usize = 65536;
const FAILSAFE: Duration = Duration::from_secs(120);
const WAIT_FAILSAFE: Duration = Duration::from_secs(30);
/// Upper bound for every spin/retry loop.
const MAX_SPINS: usize = 50_000_000;

fn with_failsafe(name: &str, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(FAILSAFE) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: surface its panic.
            if let Err(p) = worker.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: did not finish within {FAILSAFE:?}")
        }
    }
}

/// Two threads grow a shared memory to its maximum one page at a time while
/// two others repeatedly add 1 to every `u32` below the length they observe.
/// At the end every word holds exactly the number of rounds whose observed
/// length covered it, the size is the maximum, and the grows returned each
/// old size exactly once.
#[test]
fn grow_to_max_while_incrementing_everywhere() {
    with_failsafe("grow_to_max_while_incrementing_everywhere", || {
        const MAX_PAGES: u64 = 24;
        let mem = SharedMemory::new(&MemoryConfig::new(1).with_maximum(Some(MAX_PAGES))).unwrap();
        let growers_done = Arc::new(AtomicUsize::new(0));
        let rounds_done = Arc::new(AtomicUsize::new(0));

        let growers: Vec<_> = (0..2)
            .map(|_| {
                let (mem, done, rounds) = (mem.clone(), growers_done.clone(), rounds_done.clone());
                thread::spawn(move || {
                    let mut olds = Vec::new();
                    let mut seen_rounds = 0;
                    for _ in 0..MAX_SPINS {
                        // Interleave growth with the incrementers' rounds.
                        let r = rounds.load(Ordering::SeqCst);
                        if r == seen_rounds {
                            thread::yield_now();
                            continue;
                        }
                        seen_rounds = r;
                        match mem.grow(1) {
                            Ok(old) => olds.push(old),
                            Err(GrowError::ExceedsMaximum { .. }) => break,
                            Err(e) => panic!("unexpected grow error: {e}"),
                        }
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                    olds
                })
            })
            .collect();

        let incrementers: Vec<_> = (0..2)
            .map(|_| {
                let (mem, done, rounds) = (mem.clone(), growers_done.clone(), rounds_done.clone());
                thread::spawn(move || {
                    let mut lens = Vec::new();
                    let mut extra_rounds = 0;
                    for _ in 0..10_000 {
                        let finished = done.load(Ordering::SeqCst) == 2;
                        let len = mem.byte_len();
                        for off in (0..len as u64).step_by(4) {
                            mem.atomic_rmw::<u32>(off, RmwOp::Add, 1)
                                .expect("below the observed length is always accessible");
                        }
                        lens.push(len);
                        rounds.fetch_add(1, Ordering::SeqCst);
                        if finished {
                            extra_rounds += 1;
                            if extra_rounds == 2 {
                                break;
                            }
                        }
                    }
                    lens
                })
            })
            .collect();

        let mut olds: Vec<u64> = growers
            .into_iter()
            .flat_map(|g| g.join().unwrap())
            .collect();
        let lens: Vec<usize> = incrementers
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        olds.sort_unstable();
        assert_eq!(
            olds,
            (1..MAX_PAGES).collect::<Vec<_>>(),
            "each old size exactly once"
        );
        assert_eq!(mem.size_pages(), MAX_PAGES);

        // Expected count for each page: the rounds whose length covered it.
        let mut buf = vec![0u8; PAGE];
        for page in 0..MAX_PAGES as usize {
            let want = lens.iter().filter(|&&l| l > page * PAGE).count() as u32;
            mem.read((page * PAGE) as u64, &mut buf).unwrap();
            for (i, w) in buf.chunks_exact(4).enumerate() {
                let got = u32::from_le_bytes(w.try_into().unwrap());
                assert_eq!(got, want, "page {page} word {i}");
            }
        }
    });
}

/// Many grow(1) calls from many threads at once: they behave as if in some
/// order (distinct old sizes, final size = number of successes).
#[test]
fn racing_grows_are_linearizable() {
    with_failsafe("racing_grows_are_linearizable", || {
        const MAX: u64 = 200;
        let mem = SharedMemory::new(
            &MemoryConfig::new(0)
                .with_maximum(Some(MAX))
                .with_page_size_log2(12),
        )
        .unwrap();
        let start = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (mem, start) = (mem.clone(), start.clone());
                thread::spawn(move || {
                    let mut spins = 0;
                    while !start.load(Ordering::SeqCst) && spins < MAX_SPINS {
                        std::hint::spin_loop();
                        spins += 1;
                    }
                    let mut olds = Vec::new();
                    for _ in 0..100 {
                        if let Ok(old) = mem.grow(1) {
                            // the page just grown is accessible and zero
                            let off = old * 4096 + 4092;
                            assert_eq!(mem.atomic_rmw::<u32>(off, RmwOp::Add, 1), Ok(0));
                            olds.push(old);
                        }
                    }
                    olds
                })
            })
            .collect();
        start.store(true, Ordering::SeqCst);
        let mut olds: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        olds.sort_unstable();
        assert_eq!(olds, (0..MAX).collect::<Vec<_>>());
        assert_eq!(mem.size_pages(), MAX);
    });
}

/// Two threads take turns through wait32/notify on one counter. A lost
/// wake-up would leave a thread asleep; the per-wait failsafe turns that
/// into a failure instead of a hang.
#[test]
fn wait_notify_ping_pong() {
    with_failsafe("wait_notify_ping_pong", || {
        const ROUNDS: u32 = 2_000;
        let mem = SharedMemory::new(&MemoryConfig::new(1).with_maximum(Some(1))).unwrap();
        let players: Vec<_> = (0..2u32)
            .map(|me| {
                let mem = mem.clone();
                thread::spawn(move || {
                    let mut sleeps = 0;
                    for i in 0..ROUNDS {
                        let my_turn = 2 * i + me;
                        loop {
                            let cur = mem.atomic_load::<u32>(0).unwrap();
                            if cur == my_turn {
                                break;
                            }
                            match mem.wait32(0, cur, Some(WAIT_FAILSAFE)).unwrap() {
                                WaitOutcome::Woken => sleeps += 1,
                                WaitOutcome::NotEqual => {}
                                WaitOutcome::TimedOut => panic!("lost wake-up at turn {my_turn}"),
                            }
                        }
                        mem.atomic_store::<u32>(0, my_turn + 1).unwrap();
                        mem.notify(0, 1).unwrap();
                    }
                    sleeps
                })
            })
            .collect();
        for p in players {
            p.join().unwrap();
        }
        assert_eq!(mem.atomic_load::<u32>(0).unwrap(), 2 * ROUNDS);
        assert_eq!(mem.waiters(0), 0);
    });
}

/// A grower grows page by page and after each grow bumps a generation word
/// and notifies all; waiters that observe generation `g` must also observe
/// the length of that generation and be able to touch its last byte.
#[test]
fn grow_and_broadcast() {
    with_failsafe("grow_and_broadcast", || {
        const MAX: u64 = 64;
        let mem = SharedMemory::new(
            &MemoryConfig::new(1)
                .with_maximum(Some(MAX))
                .with_page_size_log2(12),
        )
        .unwrap();
        let woken_total = Arc::new(Mutex::new(0u32));
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (mem, woken_total) = (mem.clone(), woken_total.clone());
                thread::spawn(move || {
                    let mut generation = 0u32;
                    let mut woken = 0;
                    while generation < (MAX - 1) as u32 {
                        match mem.wait32(0, generation, Some(WAIT_FAILSAFE)).unwrap() {
                            WaitOutcome::TimedOut => {
                                panic!("lost wake-up at generation {generation}")
                            }
                            WaitOutcome::Woken => woken += 1,
                            WaitOutcome::NotEqual => {}
                        }
                        generation = mem.atomic_load::<u32>(0).unwrap();
                        let len = mem.byte_len() as u64;
                        assert!(len >= (u64::from(generation) + 1) * 4096);
                        mem.atomic_rmw::<u8>(len - 1, RmwOp::Or, 0).unwrap();
                    }
                    *woken_total.lock().unwrap() += woken;
                })
            })
            .collect();
        let mut notified = 0;
        for g in 1..MAX as u32 {
            mem.grow(1).unwrap();
            mem.atomic_store::<u32>(0, g).unwrap();
            notified += mem.notify(0, u32::MAX).unwrap();
        }
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(
            *woken_total.lock().unwrap(),
            notified,
            "notify counts are exact"
        );
        assert_eq!(mem.waiters(0), 0);
    });
}
