//! Unit tests (ordinary builds; the loom models are in `loom_tests.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::*;

const PAGE: usize = 65536;
/// Failsafe for tests that block: long enough never to matter, short enough
/// that a bug fails the test instead of hanging it.
const FAILSAFE: Duration = Duration::from_secs(30);

/// Small reservations keep tests cheap in address space.
fn small(initial: u64, max: Option<u64>) -> MemoryConfig {
    MemoryConfig::new(initial)
        .with_maximum(max)
        .with_reservation(4 * PAGE)
        .with_guards(PAGE, PAGE)
}

fn def(p: *mut MemoryDefinition) -> &'static MemoryDefinition {
    // SAFETY: tests only call this while the owning memory is alive and do
    // not keep the reference past it.
    unsafe { &*p }
}

#[test]
fn definition_layout_matches_jit_contract() {
    assert_eq!(MemoryDefinition::BASE_OFFSET, 0);
    assert_eq!(
        MemoryDefinition::CURRENT_LENGTH_OFFSET,
        std::mem::size_of::<usize>()
    );
    assert_eq!(
        std::mem::align_of::<MemoryDefinition>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn default_config_reserves_for_bounds_check_elision() {
    let mem = LinearMemory::new(&MemoryConfig::new(1)).unwrap();
    let info = mem.info();
    #[cfg(target_pointer_width = "64")]
    {
        assert_eq!(info.reservation_bytes, 4 << 30);
        assert_eq!(info.guard_after_bytes, 2 << 30);
        assert_eq!(info.guard_before_bytes, 32 << 20);
        assert!(info.can_elide_bounds_check(0));
        assert!(info.can_elide_bounds_check(1 << 30));
        assert!(!info.can_elide_bounds_check(3 << 30));
    }
    assert!(info.may_move && !info.shared && !info.pooled);
    assert_eq!(info.page_size(), 65536);
    assert_eq!(mem.byte_len(), PAGE);
    assert!(mem.data().iter().all(|&b| b == 0));
    // memory64 and byte pages never elide checks
    let m64 = LinearMemory::new(&MemoryConfig::new(1).with_index64(true)).unwrap();
    assert!(!m64.info().can_elide_bounds_check(0));
    let small = LinearMemory::new(&small(1, None)).unwrap();
    assert!(!small.info().can_elide_bounds_check(0));
}

#[test]
fn linear_grow_read_write_and_definition() {
    let mut mem = LinearMemory::new(&small(1, Some(4)).with_may_move(false)).unwrap();
    let d = mem.definition();
    assert_eq!(def(d).base(), mem.base_ptr());
    assert_eq!(def(d).current_length(), PAGE);
    mem.write(10, b"abc").unwrap();
    assert_eq!(mem.grow(0).unwrap(), 1);
    assert_eq!(mem.grow(2).unwrap(), 1);
    assert_eq!(mem.size_pages(), 3);
    assert_eq!(def(d).current_length(), 3 * PAGE);
    assert_eq!(&mem.data()[10..13], b"abc");
    assert!(mem.data()[PAGE..].iter().all(|&b| b == 0));
    mem.write(3 * PAGE as u64 - 1, &[9]).unwrap();
    assert!(matches!(
        mem.write(3 * PAGE as u64 - 1, &[9, 9]),
        Err(AccessError::OutOfBounds { .. })
    ));
    let mut buf = [0u8; 2];
    assert!(mem.read(u64::MAX, &mut buf).is_err());
    assert!(mem.read(3 * PAGE as u64, &mut []).is_ok());
    assert!(mem.read(3 * PAGE as u64 + 1, &mut []).is_err());
    // grow beyond the maximum changes nothing
    assert!(matches!(
        mem.grow(2),
        Err(GrowError::ExceedsMaximum {
            current_pages: 3,
            ..
        })
    ));
    assert!(mem.grow(u64::MAX).is_err());
    assert_eq!(mem.size_pages(), 3);
    assert_eq!(mem.grow(1).unwrap(), 3);
    assert_eq!(mem.grow(0).unwrap(), 4);
}

#[test]
fn non_moving_memory_fails_past_its_reservation() {
    let mut mem = LinearMemory::new(&small(1, None).with_may_move(false)).unwrap();
    mem.write(0, b"keep").unwrap();
    let base = mem.base_ptr();
    assert_eq!(mem.grow(3).unwrap(), 1);
    assert!(matches!(
        mem.grow(1),
        Err(GrowError::ExceedsReservation { reservation_bytes, .. }) if reservation_bytes == 4 * PAGE
    ));
    assert_eq!(mem.size_pages(), 4);
    assert_eq!(mem.base_ptr(), base);
    assert_eq!(&mem.data()[..4], b"keep");
    // initial bigger than the reservation: an error, not a panic
    assert!(matches!(
        LinearMemory::new(&small(5, None).with_may_move(false)),
        Err(Error::InitialExceedsReservation { .. })
    ));
}

#[test]
fn moving_memory_relocates_and_copies() {
    let cfg = small(1, Some(100)).with_reservation_for_growth(2 * PAGE);
    let mut mem = LinearMemory::new(&cfg).unwrap();
    let d = mem.definition();
    mem.write(5, b"moved").unwrap();
    let out = mem.grow_with_outcome(3).unwrap();
    assert_eq!(
        out,
        GrowOutcome {
            old_pages: 1,
            new_pages: 4,
            moved: false
        }
    );
    let out = mem.grow_with_outcome(1).unwrap();
    assert!(out.moved);
    assert_eq!(out.old_pages, 4);
    assert_eq!(mem.definition(), d, "the definition pointer is stable");
    assert_eq!(def(d).base(), mem.base_ptr());
    assert_eq!(def(d).current_length(), 5 * PAGE);
    assert_eq!(mem.reservation_bytes(), 7 * PAGE);
    assert_eq!(&mem.data()[5..10], b"moved");
    assert!(mem.data()[10..].iter().all(|&b| b == 0));
    // initial bigger than the reservation of a movable memory: reservation grows
    let big = LinearMemory::new(&small(6, None)).unwrap();
    assert_eq!(big.size_pages(), 6);
}

#[test]
fn moving_memory_value_keeps_definition() {
    let mem = LinearMemory::new(&small(1, None)).unwrap();
    let d = mem.definition();
    let boxed = Box::new(mem);
    assert_eq!(boxed.definition(), d);
}

#[test]
fn byte_pages_and_custom_page_sizes() {
    let mut mem = LinearMemory::new(&small(3, Some(10)).with_page_size_log2(0)).unwrap();
    assert_eq!(mem.byte_len(), 3);
    assert_eq!(mem.page_size(), 1);
    assert_eq!(mem.grow(4).unwrap(), 3);
    assert_eq!(mem.byte_len(), 7);
    mem.write(6, &[1]).unwrap();
    assert!(mem.write(7, &[1]).is_err());
    assert!(mem.grow(4).is_err());
    assert!(!mem.info().can_elide_bounds_check(0));
    // invalid page sizes and limits are errors
    assert!(matches!(
        LinearMemory::new(&MemoryConfig::new(1).with_page_size_log2(17)),
        Err(Error::InvalidConfig(_))
    ));
    assert!(LinearMemory::new(&MemoryConfig::new(2).with_maximum(Some(1))).is_err());
    assert!(LinearMemory::new(&MemoryConfig::new(0).with_maximum(Some(65537))).is_err());
    assert!(LinearMemory::new(&MemoryConfig::new(65537)).is_err());
}

#[test]
fn huge_reservations_fail_cleanly() {
    let r = LinearMemory::new(&MemoryConfig::new(0).with_reservation(usize::MAX));
    assert!(matches!(r, Err(Error::InvalidConfig(_))), "{r:?}");
    let r = LinearMemory::new(&MemoryConfig::new(0).with_reservation(usize::MAX / 2));
    assert!(matches!(r, Err(Error::Reserve { .. })), "{r:?}");
    let r = LinearMemory::new(&MemoryConfig::new(0).with_guards(usize::MAX, 0));
    assert!(r.is_err());
    // memory64 with an absurd size
    let r = LinearMemory::new(&MemoryConfig::new(1 << 40).with_index64(true));
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn linear_atomics_and_wait_notify_rules() {
    let mut mem = LinearMemory::new(&small(1, None)).unwrap();
    assert_eq!(mem.atomic_rmw::<u32>(8, RmwOp::Add, 5), Ok(0));
    assert_eq!(mem.atomic_cmpxchg::<u32>(8, 5, 7), Ok(5));
    assert_eq!(mem.atomic_load::<u32>(8), Ok(7));
    assert_eq!(&mem.data()[8..12], &7u32.to_le_bytes());
    assert!(matches!(
        mem.atomic_load::<u64>(4),
        Err(AccessError::Misaligned { alignment: 8, .. })
    ));
    assert!(matches!(
        mem.atomic_store::<u16>(PAGE as u64, 1),
        Err(AccessError::OutOfBounds { .. })
    ));
    assert_eq!(mem.wait32(0, 0, None), Err(AccessError::NotShared));
    assert_eq!(
        mem.wait64(0, 0, Some(Duration::ZERO)),
        Err(AccessError::NotShared)
    );
    assert!(matches!(
        mem.wait32(2, 0, None),
        Err(AccessError::Misaligned { .. })
    ));
    assert!(matches!(
        mem.wait64(PAGE as u64, 0, None),
        Err(AccessError::OutOfBounds { .. })
    ));
    assert_eq!(mem.notify(0, 10), Ok(0));
    assert!(matches!(
        mem.notify(1, 1),
        Err(AccessError::Misaligned { .. })
    ));
    assert!(matches!(
        mem.notify(PAGE as u64, 1),
        Err(AccessError::OutOfBounds { .. })
    ));
}

#[test]
fn every_rmw_op_every_width() {
    let mem = SharedMemory::new(&small(1, Some(1))).unwrap();
    macro_rules! check {
        ($t:ty, $off:expr) => {{
            let off: u64 = $off;
            let x: $t = 0b1100;
            let cases = [
                (RmwOp::Add, x.wrapping_add(0b1010)),
                (RmwOp::Sub, x.wrapping_sub(0b1010)),
                (RmwOp::And, x & 0b1010),
                (RmwOp::Or, x | 0b1010),
                (RmwOp::Xor, x ^ 0b1010),
                (RmwOp::Xchg, 0b1010),
            ];
            for (op, want) in cases {
                mem.atomic_store::<$t>(off, x).unwrap();
                assert_eq!(mem.atomic_rmw::<$t>(off, op, 0b1010), Ok(x), "{op:?}");
                assert_eq!(mem.atomic_load::<$t>(off), Ok(want), "{op:?}");
            }
            // wrap-around and little-endian layout
            mem.atomic_store::<$t>(off, <$t>::MAX).unwrap();
            assert_eq!(mem.atomic_rmw::<$t>(off, RmwOp::Add, 1), Ok(<$t>::MAX));
            assert_eq!(mem.atomic_load::<$t>(off), Ok(0));
            mem.atomic_store::<$t>(off, 1).unwrap();
            let mut b = [0u8; std::mem::size_of::<$t>()];
            mem.read(off, &mut b).unwrap();
            assert_eq!(b[0], 1);
            assert_eq!(mem.atomic_cmpxchg::<$t>(off, 2, 3), Ok(1));
            assert_eq!(mem.atomic_cmpxchg::<$t>(off, 1, 3), Ok(1));
            assert_eq!(mem.atomic_load::<$t>(off), Ok(3));
            if std::mem::size_of::<$t>() > 1 {
                assert!(matches!(
                    mem.atomic_load::<$t>(off + 1),
                    Err(AccessError::Misaligned { .. })
                ));
            }
            let end = PAGE as u64;
            assert!(matches!(
                mem.atomic_load::<$t>(end),
                Err(AccessError::OutOfBounds { .. })
            ));
            assert!(
                mem.atomic_load::<$t>(end - std::mem::size_of::<$t>() as u64)
                    .is_ok()
            );
        }};
    }
    check!(u8, 1);
    check!(u16, 2);
    check!(u32, 4);
    check!(u64, 8);
}

#[test]
fn shared_requires_maximum_and_reserves_it() {
    assert!(matches!(
        SharedMemory::new(&small(1, None)),
        Err(Error::InvalidConfig(_))
    ));
    // reservation raised to cover the maximum, memory never moves
    let mem = SharedMemory::new(&small(1, Some(16))).unwrap();
    assert_eq!(mem.reservation_bytes(), 16 * PAGE);
    assert!(!mem.may_move() && mem.is_shared());
    let base = mem.base_ptr();
    assert_eq!(mem.grow(15).unwrap(), 1);
    assert_eq!(mem.base_ptr(), base);
    assert!(mem.grow(1).is_err());
    let m2 = mem.clone();
    assert!(SharedMemory::ptr_eq(&mem, &m2));
    let d = def(mem.definition());
    assert_eq!(d.current_length(), 16 * PAGE);
    assert_eq!(d.base(), base);
    let mut buf = [1u8; 100];
    mem.read(16 * PAGE as u64 - 100, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn shared_copy_accessors_handle_any_alignment() {
    let mem = SharedMemory::new(&small(1, Some(1))).unwrap();
    let data: Vec<u8> = (0..200u8).collect();
    for off in [0u64, 1, 3, 7, 8, 13] {
        mem.write(off, &data).unwrap();
        let mut back = vec![0u8; data.len()];
        mem.read(off, &mut back).unwrap();
        assert_eq!(back, data, "offset {off}");
    }
    assert!(mem.write(PAGE as u64 - 1, &[1, 2]).is_err());
    assert!(mem.read(u64::MAX - 1, &mut [0; 4]).is_err());
}

#[test]
fn limiter_can_refuse_growth_and_creation() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let limiter = Arc::new(move |cur: usize, desired: usize, max: Option<usize>| {
        c.fetch_add(1, Ordering::SeqCst);
        assert!(desired > cur);
        assert_eq!(max, Some(8 * PAGE));
        desired <= 3 * PAGE
    });
    let cfg = small(1, Some(8)).with_limiter(limiter.clone());
    let mut lin = LinearMemory::new(&cfg).unwrap();
    assert_eq!(lin.grow(2).unwrap(), 1);
    assert!(matches!(
        lin.grow(1),
        Err(GrowError::LimiterRefused { current_bytes, desired_bytes })
            if current_bytes == 3 * PAGE && desired_bytes == 4 * PAGE
    ));
    assert_eq!(lin.size_pages(), 3);
    let shared = SharedMemory::new(&cfg).unwrap();
    assert!(shared.grow(3).is_err());
    assert_eq!(shared.size_pages(), 1);
    assert!(matches!(
        LinearMemory::new(&small(4, Some(8)).with_limiter(limiter)),
        Err(Error::LimiterRefused { .. })
    ));
    assert!(calls.load(Ordering::SeqCst) >= 6);
}

#[test]
fn panicking_limiter_does_not_poison_shared_memory() {
    let cfg =
        small(1, Some(4)).with_limiter(Arc::new(|_: usize, desired: usize, _: Option<usize>| {
            assert!(desired != 2 * PAGE, "limiter panics on purpose");
            true
        }));
    let mem = SharedMemory::new(&cfg).unwrap();
    let m = mem.clone();
    assert!(thread::spawn(move || m.grow(1)).join().is_err());
    assert_eq!(mem.size_pages(), 1);
    assert_eq!(mem.grow(2).unwrap(), 1);
}

#[test]
fn wait_timeouts_and_not_equal() {
    let mem = SharedMemory::new(&small(1, Some(1))).unwrap();
    mem.atomic_store::<u32>(0, 5).unwrap();
    assert_eq!(mem.wait32(0, 4, None), Ok(WaitOutcome::NotEqual));
    assert_eq!(
        mem.wait32(0, 5, Some(Duration::ZERO)),
        Ok(WaitOutcome::TimedOut)
    );
    assert_eq!(
        mem.wait32(0, 5, Some(Duration::from_millis(5))),
        Ok(WaitOutcome::TimedOut)
    );
    assert_eq!(
        mem.wait64(8, 0, Some(Duration::from_millis(1))),
        Ok(WaitOutcome::TimedOut)
    );
    assert_eq!(mem.waiters(0), 0, "timed-out waiters leave the queue");
    assert_eq!(WaitOutcome::TimedOut.as_wasm_result(), 2);
    // a duration too large for Instant waits "forever": check it via NotEqual
    assert_eq!(
        mem.wait32(0, 6, Some(Duration::MAX)),
        Ok(WaitOutcome::NotEqual)
    );
    assert!(matches!(
        mem.wait32(1, 0, None),
        Err(AccessError::Misaligned { .. })
    ));
    assert!(matches!(
        mem.wait64(4, 0, None),
        Err(AccessError::Misaligned { .. })
    ));
    assert!(matches!(
        mem.wait64(PAGE as u64, 0, None),
        Err(AccessError::OutOfBounds { .. })
    ));
    assert!(matches!(
        mem.notify(PAGE as u64, 1),
        Err(AccessError::OutOfBounds { .. })
    ));
    assert_eq!(mem.notify(0, 0), Ok(0));
}

/// Spawns a thread that waits on offset 0 and reports `(id, outcome)`.
fn spawn_waiter(
    mem: &SharedMemory,
    id: usize,
    tx: &mpsc::Sender<(usize, WaitOutcome)>,
) -> thread::JoinHandle<()> {
    let (mem, tx) = (mem.clone(), tx.clone());
    thread::spawn(move || {
        let r = mem.wait32(0, 0, Some(FAILSAFE)).unwrap();
        tx.send((id, r)).unwrap();
    })
}

/// Blocks until `n` threads are queued on offset 0 (bounded).
fn until_waiters(mem: &SharedMemory, n: usize) {
    for _ in 0..FAILSAFE.as_millis() {
        if mem.waiters(0) == n {
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
    panic!("waiters never reached {n}");
}

#[test]
fn notify_wakes_in_fifo_order_with_exact_counts() {
    let mem = SharedMemory::new(&small(1, Some(1))).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for id in 0..4 {
        handles.push(spawn_waiter(&mem, id, &tx));
        until_waiters(&mem, id + 1);
    }
    assert_eq!(
        mem.notify(4, 1).unwrap(),
        0,
        "other addresses are not woken"
    );
    assert_eq!(mem.notify(0, 1).unwrap(), 1);
    assert_eq!(rx.recv_timeout(FAILSAFE).unwrap(), (0, WaitOutcome::Woken));
    assert_eq!(mem.notify(0, 2).unwrap(), 2);
    let mut next: Vec<_> = (0..2).map(|_| rx.recv_timeout(FAILSAFE).unwrap()).collect();
    next.sort_by_key(|(id, _)| *id);
    assert_eq!(next, vec![(1, WaitOutcome::Woken), (2, WaitOutcome::Woken)]);
    assert_eq!(mem.notify(0, u32::MAX).unwrap(), 1);
    assert_eq!(rx.recv_timeout(FAILSAFE).unwrap(), (3, WaitOutcome::Woken));
    assert_eq!(mem.notify(0, u32::MAX).unwrap(), 0);
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn pool_allocate_release_and_reset() {
    let pool = MemoryPool::new(&PoolConfig::new(3, 4 * PAGE).with_guards(PAGE, 2 * PAGE)).unwrap();
    assert_eq!(
        (pool.capacity(), pool.free_slots(), pool.in_use()),
        (3, 3, 0)
    );
    let mut a = pool.allocate(1, Some(10)).unwrap();
    let info = a.info();
    assert!(info.pooled && !info.may_move);
    assert_eq!(info.reservation_bytes, 4 * PAGE);
    assert!(info.guard_after_bytes >= 2 * PAGE && info.guard_before_bytes >= PAGE);
    let d = a.definition();
    let base = a.base_ptr();
    a.write(0, b"dirty").unwrap();
    assert_eq!(a.grow(3).unwrap(), 1);
    a.write(4 * PAGE as u64 - 1, &[7]).unwrap();
    assert!(matches!(
        a.grow(1),
        Err(GrowError::ExceedsReservation { .. })
    ));
    assert_eq!(a.base_ptr(), base);
    assert_eq!(def(d).current_length(), 4 * PAGE);
    let b = pool.allocate(0, None).unwrap();
    let c = pool.allocate(4, None).unwrap();
    assert!(matches!(
        pool.allocate(0, None),
        Err(Error::PoolExhausted { capacity: 3 })
    ));
    assert_eq!((pool.free_slots(), pool.in_use()), (0, 3));
    drop(a);
    assert_eq!((pool.free_slots(), pool.in_use()), (1, 2));
    let a2 = pool.allocate(4, None).unwrap();
    assert_eq!(a2.base_ptr(), base, "the freed slot is reused");
    assert!(a2.data().iter().all(|&x| x == 0), "reused slots are zeroed");
    drop((a2, b, c));
    assert_eq!(
        (pool.free_slots(), pool.in_use(), pool.quarantined()),
        (3, 0, 0)
    );
}

#[test]
fn pool_bad_input_is_an_error() {
    assert!(matches!(
        MemoryPool::new(&PoolConfig::new(0, PAGE)),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        MemoryPool::new(&PoolConfig::new(1, 0)),
        Err(Error::InvalidConfig(_))
    ));
    assert!(MemoryPool::new(&PoolConfig::new(usize::MAX, PAGE)).is_err());
    assert!(MemoryPool::new(&PoolConfig::new(2, usize::MAX)).is_err());
    let pool = MemoryPool::new(&PoolConfig::new(1, 2 * PAGE).with_guards(0, 0)).unwrap();
    assert!(matches!(
        pool.allocate(3, None),
        Err(Error::InitialExceedsReservation { .. })
    ));
    assert!(matches!(
        pool.allocate(3, Some(2)),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(pool.free_slots(), 1, "failed allocations keep the slot");
    let refuse =
        MemoryConfig::new(1).with_limiter(Arc::new(|_: usize, _: usize, _: Option<usize>| false));
    assert!(matches!(
        pool.allocate_with(&refuse),
        Err(Error::LimiterRefused { .. })
    ));
    assert_eq!(pool.free_slots(), 1);
}

#[test]
fn pooled_memory_outlives_pool_handle() {
    let pool = MemoryPool::new(&PoolConfig::new(1, PAGE).with_guards(0, 0)).unwrap();
    let mut m = pool.allocate(1, None).unwrap();
    let p2 = pool.clone();
    drop(pool);
    m.write(0, &[1]).unwrap();
    drop(m);
    assert_eq!(p2.free_slots(), 1);
}

#[test]
fn pool_is_shared_across_threads_without_losing_slots() {
    let pool = MemoryPool::new(&PoolConfig::new(4, 2 * PAGE).with_guards(0, PAGE)).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut got = 0;
                for i in 0..200u32 {
                    if let Ok(mut m) = pool.allocate(1, None) {
                        assert_eq!(m.atomic_load::<u32>(0), Ok(0), "slot was not reset");
                        m.atomic_store::<u32>(0, i + t).unwrap();
                        got += 1;
                    }
                }
                got
            })
        })
        .collect();
    let total: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(total > 0);
    assert_eq!((pool.free_slots(), pool.in_use()), (4, 0));
}

#[test]
fn memory_enum_dispatches() {
    let mut lin = Memory::new(&small(1, Some(2)), false).unwrap();
    let mut sh = Memory::new(&small(1, Some(2)), true).unwrap();
    let pool = MemoryPool::new(&PoolConfig::new(1, 2 * PAGE).with_guards(0, 0)).unwrap();
    let mut pooled = Memory::Pooled(pool.allocate(1, Some(2)).unwrap());
    for m in [&mut lin, &mut sh, &mut pooled] {
        assert_eq!(m.grow(1).unwrap(), 1);
        m.write(0, &[1, 2, 3, 4]).unwrap();
        let mut b = [0; 4];
        m.read(0, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        assert_eq!(m.byte_len(), 2 * PAGE);
        assert_eq!(def(m.definition()).current_length(), 2 * PAGE);
        assert_eq!(m.notify(0, 1), Ok(0));
        assert!(m.grow(1).is_err());
    }
    assert_eq!(lin.wait32(0, 0, None), Err(AccessError::NotShared));
    assert_eq!(pooled.wait64(0, 0, None), Err(AccessError::NotShared));
    assert_eq!(sh.wait32(0, 0, None), Ok(WaitOutcome::NotEqual));
    assert!(sh.as_shared().is_some() && lin.as_shared().is_none());
    assert!(sh.info().shared && pooled.info().pooled);
}

/// Touching a byte at `addr` in a forked child must kill it with SIGSEGV
/// (or SIGBUS): proof that the byte is inaccessible.
#[cfg(target_os = "linux")]
fn faults(addr: *const u8) -> bool {
    // SAFETY: the child only performs one volatile read and `_exit`s; it
    // touches no locks or allocator state inherited from the parent.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            std::ptr::read_volatile(addr);
            libc::_exit(0);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        libc::WIFSIGNALED(status) && matches!(libc::WTERMSIG(status), libc::SIGSEGV | libc::SIGBUS)
    }
}

#[cfg(target_os = "linux")]
#[test]
fn guard_pages_and_uncommitted_pages_fault() {
    let mut mem = LinearMemory::new(&small(1, Some(4)).with_may_move(false)).unwrap();
    let base = mem.base_ptr();
    assert!(!faults(base));
    assert!(!faults(base.wrapping_add(PAGE - 1)));
    assert!(faults(base.wrapping_add(PAGE)), "past the length");
    assert!(faults(base.wrapping_sub(1)), "guard before");
    mem.grow(1).unwrap();
    assert!(!faults(base.wrapping_add(PAGE)), "grown page is accessible");
    assert!(faults(base.wrapping_add(4 * PAGE)), "guard after");
    // pool slot: a released slot keeps its pages (zeroed) for the next
    // memory, which sees only its own size: the rest faults again.
    let pool = MemoryPool::new(&PoolConfig::new(1, 2 * PAGE).with_guards(PAGE, PAGE)).unwrap();
    let mut m = pool.allocate(2, None).unwrap();
    let pbase = m.base_ptr();
    assert!(!faults(pbase.wrapping_add(PAGE)));
    m.write(PAGE as u64, &[7]).unwrap();
    drop(m);
    let m = pool.allocate(1, None).unwrap();
    assert_eq!(m.base_ptr(), pbase);
    assert!(!faults(pbase));
    assert!(faults(pbase.wrapping_add(PAGE)), "beyond the new size");
    assert!(faults(pbase.wrapping_sub(1)));
    drop(m);
    let m = pool.allocate(2, None).unwrap();
    assert_eq!(m.data()[PAGE], 0, "regrown page reads zero");
}

#[test]
fn thread_safety_markers() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SharedMemory>();
    send_sync::<LinearMemory>();
    send_sync::<PooledMemory>();
    send_sync::<MemoryPool>();
    send_sync::<Memory>();
}

/// Each default memory reserves ~6 GiB of address space; 25 000 of them
/// (~150 TiB) exceed what a 47-bit address space (128 TiB) or the default
/// `vm.max_map_count` allows, so this only passes if drop releases every
/// reservation.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[test]
fn drop_releases_every_reservation() {
    for i in 0..25_000u32 {
        let mut mem = LinearMemory::new(&MemoryConfig::new(1).with_maximum(Some(2)))
            .unwrap_or_else(|e| panic!("iteration {i}: {e}"));
        mem.grow(1).unwrap();
        if i % 8 == 0 {
            let shared = SharedMemory::new(&MemoryConfig::new(1).with_maximum(Some(2))).unwrap();
            drop(shared.clone());
        }
    }
}

#[test]
fn a_cancelled_wait_wakes_and_later_waits_return_at_once_until_reset() {
    use std::time::{Duration, Instant};
    let mem = crate::Memory::new(&MemoryConfig::new(1).with_maximum(Some(1)), true).unwrap();
    let shared = mem.as_shared().unwrap().clone();
    let cancel = crate::WaitCanceller::new();
    let (s, c) = (shared.clone(), cancel.clone());
    let waiter = std::thread::spawn(move || s.wait32_cancellable(0, 0, None, &c).unwrap());
    // Wait until it is queued, then cancel it.
    let start = Instant::now();
    while shared.waiters(0) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the waiter never queued"
        );
        std::thread::yield_now();
    }
    cancel.cancel();
    assert_eq!(waiter.join().unwrap(), Err(crate::WaitCancelled));
    assert_eq!(shared.waiters(0), 0);
    // Still cancelled: a new wait returns at once, even with no timeout.
    assert_eq!(
        shared.wait32_cancellable(0, 0, None, &cancel).unwrap(),
        Err(crate::WaitCancelled)
    );
    cancel.reset();
    assert_eq!(
        shared
            .wait64_cancellable(0, 0, Some(Duration::from_millis(1)), &cancel)
            .unwrap(),
        Ok(crate::WaitOutcome::TimedOut)
    );
    // A notify still wakes a cancellable waiter normally.
    let (s, c) = (shared.clone(), cancel.clone());
    let waiter = std::thread::spawn(move || s.wait32_cancellable(0, 0, None, &c).unwrap());
    while shared.waiters(0) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the waiter never queued"
        );
        std::thread::yield_now();
    }
    assert_eq!(shared.notify(0, 1).unwrap(), 1);
    assert_eq!(waiter.join().unwrap(), Ok(crate::WaitOutcome::Woken));
}

#[test]
fn an_image_is_laid_out_in_order_and_private_to_each_memory() {
    // Overlapping segments: the later one wins, as wasm's active segments.
    let img = MemoryImage::new([
        (PAGE + 10, &b"aaaaaa"[..]),
        (PAGE + 12, &b"BB"[..]),
        (3 * PAGE - 1, &b"z"[..]),
        (0, &b""[..]),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(img.offset(), PAGE);
    assert_eq!(img.min_memory_bytes(), 3 * PAGE);
    #[cfg(target_os = "linux")]
    assert!(img.is_mapped(), "Linux images are memfds");
    let mut a = LinearMemory::new(&small(3, Some(4))).unwrap();
    let mut b = LinearMemory::new(&small(3, Some(4))).unwrap();
    a.data_mut()[5] = 9; // outside the image: untouched by applying it
    a.apply_image(&img).unwrap();
    b.apply_image(&img).unwrap();
    for m in [&a, &b] {
        assert_eq!(&m.data()[PAGE + 10..PAGE + 16], b"aaBBaa");
        assert_eq!(m.data()[3 * PAGE - 1], b'z');
        assert!(m.data()[PAGE..PAGE + 10].iter().all(|&x| x == 0));
    }
    assert_eq!(a.data()[5], 9);
    a.write(PAGE as u64 + 10, b"xy").unwrap();
    assert_eq!(&a.data()[PAGE + 10..PAGE + 12], b"xy");
    assert_eq!(&b.data()[PAGE + 10..PAGE + 12], b"aa", "writes are private");
    // Growing keeps the image; growing past the reservation moves it.
    a.grow(1).unwrap();
    assert_eq!(&a.data()[PAGE + 12..PAGE + 14], b"BB");
    let mut m = LinearMemory::new(&small(3, None).with_may_move(true)).unwrap();
    m.apply_image(&img).unwrap();
    assert!(m.grow_with_outcome(4).unwrap().moved);
    assert_eq!(&m.data()[PAGE + 10..PAGE + 16], b"aaBBaa");
    assert_eq!(m.data()[3 * PAGE - 1], b'z');
    assert!(MemoryImage::new([(7, &b""[..])]).unwrap().is_none());
}

#[test]
fn an_image_larger_than_the_memory_is_refused_and_changes_nothing() {
    let img = MemoryImage::new([(2 * PAGE - 2, &b"abc"[..])])
        .unwrap()
        .unwrap();
    let mut m = LinearMemory::new(&small(2, Some(4))).unwrap();
    m.data_mut()[2 * PAGE - 2] = 7;
    assert!(matches!(
        m.apply_image(&img),
        Err(Error::ImageExceedsMemory { image_bytes, memory_bytes })
            if image_bytes == 2 * PAGE + 1 && memory_bytes == 2 * PAGE
    ));
    assert_eq!(m.data()[2 * PAGE - 2], 7);
    m.grow(1).unwrap();
    m.apply_image(&img).unwrap();
    assert_eq!(&m.data()[2 * PAGE - 2..2 * PAGE + 1], b"abc");
}

/// A pool slot that held a mapped image comes back zeroed, not showing the
/// image again (dropping a private file mapping's pages would).
#[test]
fn a_pool_slot_that_held_an_image_comes_back_zeroed() {
    let img = MemoryImage::new([(100, &[0xAB; 5000][..])])
        .unwrap()
        .unwrap();
    let pool = MemoryPool::new(&PoolConfig::new(1, 4 * PAGE).with_guards(PAGE, PAGE)).unwrap();
    for _ in 0..3 {
        let mut m = pool.allocate(2, None).unwrap();
        assert!(m.data().iter().all(|&b| b == 0), "slot reused dirty");
        m.apply_image(&img).unwrap();
        assert_eq!(m.data()[100], 0xAB);
        m.write(200, &[1]).unwrap();
        m.write(PAGE as u64 + 3, &[2]).unwrap();
        drop(m);
        assert_eq!((pool.free_slots(), pool.quarantined()), (1, 0));
    }
}

/// With `keep_resident_bytes`, released slots are zeroed in place: the
/// next memory reads zeros, and the kept pages are still resident.
#[cfg(target_os = "linux")]
#[test]
fn keep_resident_slots_come_back_zeroed_and_resident() {
    let cfg = PoolConfig::new(1, 4 * PAGE)
        .with_guards(PAGE, PAGE)
        .with_keep_resident(PAGE);
    let pool = MemoryPool::new(&cfg).unwrap();
    let mut m = pool.allocate(2, None).unwrap();
    m.data_mut().fill(0x5A);
    let base = m.base_ptr();
    drop(m);
    let m = pool.allocate(2, None).unwrap();
    assert_eq!(m.base_ptr(), base);
    assert!(m.data().iter().all(|&b| b == 0), "slot reused dirty");
    let host = crate::sys::host_page_size();
    let mut v = vec![0u8; 2 * PAGE / host];
    // SAFETY: the memory's two committed pages; `v` has a byte per page.
    let rc = unsafe { libc::mincore(base.cast(), 2 * PAGE, v.as_mut_ptr()) };
    assert_eq!(rc, 0);
    let kept = PAGE / host;
    assert!(
        v[..kept].iter().all(|r| r & 1 == 1),
        "kept pages were dropped"
    );
}

/// A slot that comes back to a memory of the same image is reused as it
/// is: the image's pages read the image again, everything else zero,
/// whatever the last memory wrote or how far it grew; another image or none
/// replaces it completely.
#[test]
fn pool_slots_keep_their_image_and_reset_to_it() {
    let mut bytes = vec![0x11u8; 80_000];
    bytes[0] = 0xEE;
    let img = MemoryImage::new([(PAGE, &bytes[..])]).unwrap().unwrap();
    let img2 = MemoryImage::new([(0, &[0x22u8; 70_000][..])])
        .unwrap()
        .unwrap();
    let pool = MemoryPool::new(&PoolConfig::new(1, 8 * PAGE).with_guards(PAGE, PAGE)).unwrap();
    let cfg = MemoryConfig::new(3).with_maximum(Some(8));
    let expect = |m: &PooledMemory, img: Option<(&MemoryImage, usize, &[u8])>| {
        let mut want = vec![0u8; m.byte_len()];
        if let Some((_, at, b)) = img {
            want[at..at + b.len()].copy_from_slice(b);
        }
        assert!(m.data() == &want[..], "contents differ from a fresh memory");
    };
    let base;
    {
        let mut m = pool.allocate_with_image(&cfg, Some(&img)).unwrap();
        base = m.base_ptr();
        expect(&m, Some((&img, PAGE, &bytes)));
        m.write(PAGE as u64, &[1, 2, 3]).unwrap();
        m.write(10, &[4]).unwrap();
        m.grow(2).unwrap();
        m.write(4 * PAGE as u64, &[5]).unwrap();
    }
    for _ in 0..2 {
        let mut m = pool.allocate_with_image(&cfg, Some(&img)).unwrap();
        assert_eq!((m.base_ptr(), m.byte_len()), (base, 3 * PAGE));
        expect(&m, Some((&img, PAGE, &bytes)));
        m.write(PAGE as u64 + 5, &[9]).unwrap();
        #[cfg(target_os = "linux")]
        assert!(
            faults(base.wrapping_add(3 * PAGE)),
            "grown pages decommitted"
        );
    }
    let m = pool.allocate_with_image(&cfg, Some(&img2)).unwrap();
    expect(&m, Some((&img2, 0, &[0x22u8; 70_000])));
    drop(m);
    let m = pool.allocate_with(&cfg).unwrap();
    expect(&m, None);
    drop(m);
    assert_eq!((pool.free_slots(), pool.quarantined()), (1, 0));
}

/// Host pages of `[base, base + len)` that hold private data (written and
/// not given back), counted from the page tables.
#[cfg(target_os = "linux")]
fn private_bytes(base: *mut u8, len: usize) -> usize {
    let mut out = Vec::new();
    crate::dirty::written_ranges(base, len, &mut out).unwrap();
    out.iter().map(|r| r.1).sum()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// The resident reset (`keep_resident_bytes > 0`): whatever a memory
    /// wrote (inside and outside its image, across a grow), the next memory
    /// in the slot reads exactly what a fresh one reads, and the slot keeps
    /// at most the budget of private pages — the written pages within it,
    /// so they do not fault again.
    #[test]
    fn resident_reset_restores_what_was_written(
        writes in proptest::collection::vec((0usize..5 * PAGE, 1u8..=255), 1..40),
        keep_pages in 0usize..40,
        grow in proptest::bool::ANY,
    ) {
        let host = crate::sys::host_page_size();
        let keep = keep_pages * host;
        let mut bytes = vec![0u8; 3 * PAGE / 2];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i.wrapping_mul(2_654_435_761) >> 13) as u8;
        }
        let img = MemoryImage::new([(PAGE / 2, &bytes[..])]).unwrap().unwrap();
        let pool = MemoryPool::new(
            &PoolConfig::new(1, 8 * PAGE).with_guards(PAGE, PAGE).with_keep_resident(keep),
        )
        .unwrap();
        let cfg = MemoryConfig::new(3).with_maximum(Some(8));
        let mut fresh = vec![0u8; 3 * PAGE];
        fresh[PAGE / 2..PAGE / 2 + bytes.len()].copy_from_slice(&bytes);
        for round in 0..3 {
            let mut m = pool.allocate_with_image(&cfg, Some(&img)).unwrap();
            proptest::prop_assert!(m.data() == &fresh[..], "round {} differs from fresh", round);
            if grow {
                m.grow(2).unwrap();
            }
            let len = m.byte_len();
            let mut touched = std::collections::BTreeSet::new();
            for &(at, v) in &writes {
                if at < len {
                    m.write(at as u64, &[v]).unwrap();
                    touched.insert(at / host);
                }
            }
            let base = m.base_ptr();
            drop(m);
            #[cfg(target_os = "linux")]
            {
                let private = private_bytes(base, 5 * PAGE);
                proptest::prop_assert!(private <= keep, "{} private bytes kept, budget {}", private, keep);
                if keep >= touched.len() * host {
                    // Every written page was restored in place, none dropped.
                    proptest::prop_assert_eq!(private, touched.len() * host);
                }
            }
        }
    }
}

/// A slot whose memories write most of it switches to restoring every
/// page without a scan, and back: the contents are a fresh memory's in
/// every round whatever the mix of dense and sparse writers.
#[test]
fn resident_reset_adapts_to_dense_writers() {
    let mut bytes = vec![0u8; PAGE];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 251) as u8 + 1;
    }
    let img = MemoryImage::new([(PAGE, &bytes[..])]).unwrap().unwrap();
    let pool = MemoryPool::new(
        &PoolConfig::new(1, 8 * PAGE)
            .with_guards(PAGE, PAGE)
            .with_keep_resident(8 * PAGE),
    )
    .unwrap();
    let cfg = MemoryConfig::new(4).with_maximum(Some(8));
    let mut fresh = vec![0u8; 4 * PAGE];
    fresh[PAGE..2 * PAGE].copy_from_slice(&bytes);
    for round in 0..40u8 {
        let mut m = pool.allocate_with_image(&cfg, Some(&img)).unwrap();
        assert!(m.data() == &fresh[..], "round {round} differs from fresh");
        if round % 7 < 4 {
            m.data_mut().fill(round | 1);
        } else {
            m.write(u64::from(round) * 4099, &[round | 1]).unwrap();
        }
        if round % 5 == 0 {
            m.grow(1).unwrap();
            m.write(4 * PAGE as u64 + 3, &[9]).unwrap();
        }
    }
}

/// A one-slot pool with write marks and a 1 MiB resident budget.
#[cfg(target_os = "linux")]
fn marks_pool() -> MemoryPool {
    MemoryPool::new(
        &PoolConfig::new(1, 8 * PAGE)
            .with_guards(PAGE, PAGE)
            .with_keep_resident(1 << 20)
            .with_write_marks(true),
    )
    .unwrap()
}

/// With write marks, a pool slot's reset restores exactly the pages the
/// marks name: a byte written through the raw base without a mark
/// survives it (so the reset read the marks, not the page tables), and a
/// marked one does not. A host's mutable view makes the next reset read
/// the page tables, which finds everything.
#[cfg(target_os = "linux")]
#[test]
fn a_slot_with_write_marks_restores_the_marked_pages() {
    let pool = marks_pool();
    let cfg = MemoryConfig::new(2);
    let raw_write = |m: &PooledMemory, at: usize, v: u8| {
        // SAFETY: `at` is below the memory's length; nothing else refers
        // to these bytes.
        unsafe { def(m.definition()).base().add(at).write(v) }
    };
    {
        let m = pool.allocate_with(&cfg).unwrap();
        let d = def(m.definition());
        assert!(!d.marks().is_null());
        raw_write(&m, 5, 1);
        raw_write(&m, PAGE + 7, 2);
        d.mark_written(PAGE + 7, 1);
    }
    {
        let mut m = pool.allocate_with(&cfg).unwrap();
        assert_eq!((m.data()[5], m.data()[PAGE + 7]), (1, 0));
        // A mutable view: the marks no longer tell every write.
        m.data_mut()[9000] = 3;
    }
    let m = pool.allocate_with(&cfg).unwrap();
    assert!(m.data().iter().all(|&b| b == 0), "the scan restores it all");
}

/// An owned memory's marks move with it when a grow moves it, so the
/// definition's pointer to them stays valid.
#[test]
fn write_marks_survive_a_moving_grow() {
    let mut mem = LinearMemory::new(
        &small(1, Some(100))
            .with_reservation(PAGE)
            .with_may_move(true)
            .with_write_marks(true),
    )
    .unwrap();
    let marks = def(mem.definition()).marks();
    assert!(!marks.is_null());
    let base = mem.base_ptr();
    mem.grow(10).unwrap();
    assert_ne!(mem.base_ptr(), base, "the memory moved");
    assert_eq!(def(mem.definition()).marks(), marks);
    mem.write(9 * PAGE as u64, &[1]).unwrap();
    // SAFETY: the marks cover every page of a 32-bit memory.
    assert_eq!(unsafe { *marks.add((9 * PAGE) >> crate::MARK_SHIFT) }, 1);
}

/// Compiled code marks no 64-bit memory's stores, so a 64-bit memory in a
/// slot with write marks shows none and its reset reads the page tables:
/// a byte written through the raw base does not survive it.
#[cfg(target_os = "linux")]
#[test]
fn a_64_bit_memory_in_a_slot_with_marks_is_reset_by_the_page_tables() {
    let pool = marks_pool();
    for index64 in [false, true] {
        let cfg = MemoryConfig::new(2).with_index64(index64);
        let m = pool.allocate_with(&cfg).unwrap();
        assert_eq!(def(m.definition()).marks().is_null(), index64);
        // SAFETY: byte 100 is below the memory's length; nothing else
        // refers to it.
        unsafe { def(m.definition()).base().add(100).write(7) };
        drop(m);
        let m = pool.allocate_with(&cfg).unwrap();
        // Unmarked: a 32-bit memory's reset trusts its marks and leaves the
        // byte (what compiled code never does: it marks every store).
        assert_eq!(m.data()[100], if index64 { 0 } else { 7 });
    }
}
