//! weft-memory benchmarks (divan).
//!
//! Run with `cargo bench -p weft-memory --bench memory`.
//!
//! * `grow_*`: pages per second when growing one page at a time (each grow
//!   is an `mprotect` plus bookkeeping; the shared variant also takes the
//!   grow lock and publishes the length). `grow_shared` with 2 threads
//!   includes spawning two scoped threads per sample (tens of µs against
//!   ~1000 grows).
//! * `reserve_4gib_and_release`: create and drop a memory with the default
//!   4 GiB reservation and 2 GiB guard, one page accessible (reserve,
//!   commit, release).
//! * `pool_reset_16_pages`: allocate a pooled memory, write one byte in each
//!   of its 16 pages, drop it (the slot is zeroed and made inaccessible).
//! * `atomic_rmw_*`: `SharedMemory::atomic_rmw::<u32>(Add)` throughput, on
//!   one shared word (contended) and on a word per thread, next to a bare
//!   `AtomicU32::fetch_add` for the accessor's overhead.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use divan::Bencher;
use divan::counter::ItemsCount;
use weft_memory::{LinearMemory, MemoryConfig, MemoryPool, PoolConfig, RmwOp, SharedMemory};

fn main() {
    // Map the shared memory before any benchmark is calibrated.
    LazyLock::force(&SHARED);
    divan::main();
}

const GROW_PAGES: u64 = 1024;

fn grow_config() -> MemoryConfig {
    MemoryConfig::new(0)
        .with_maximum(Some(GROW_PAGES))
        .with_reservation((GROW_PAGES * 65536) as usize)
        .with_guards(65536, 65536)
        .with_may_move(false)
}

#[divan::bench(sample_count = 200, sample_size = 10)]
fn reserve_4gib_and_release() -> LinearMemory {
    LinearMemory::new(&MemoryConfig::new(1)).unwrap()
}

static POOL: LazyLock<MemoryPool> =
    LazyLock::new(|| MemoryPool::new(&PoolConfig::new(4, 16 << 16)).unwrap());

#[divan::bench(sample_count = 200, sample_size = 10)]
fn pool_reset_16_pages() {
    let mut m = POOL.allocate(16, Some(16)).unwrap();
    for page in 0..16u64 {
        m.write(page * 65536, &[1]).unwrap();
    }
    drop(m);
}

#[divan::bench(sample_count = 40, sample_size = 1)]
fn grow_linear(b: Bencher) {
    b.counter(ItemsCount::new(GROW_PAGES))
        .with_inputs(|| LinearMemory::new(&grow_config()).unwrap())
        .bench_local_values(|mut mem| {
            for _ in 0..GROW_PAGES {
                mem.grow(1).unwrap();
            }
            mem
        });
}

#[divan::bench(args = [1, 2], sample_count = 40, sample_size = 1)]
fn grow_shared(b: Bencher, threads: u64) {
    b.counter(ItemsCount::new(GROW_PAGES))
        .with_inputs(|| SharedMemory::new(&grow_config()).unwrap())
        .bench_local_values(|mem| {
            if threads == 1 {
                for _ in 0..GROW_PAGES {
                    mem.grow(1).unwrap();
                }
            } else {
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..GROW_PAGES / threads {
                                mem.grow(1).unwrap();
                            }
                        });
                    }
                });
            }
            mem
        });
}

static SHARED: LazyLock<SharedMemory> =
    LazyLock::new(|| SharedMemory::new(&MemoryConfig::new(1).with_maximum(Some(1))).unwrap());
static NEXT_SLOT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// A cache line of its own for each benchmarking thread.
    static MY_OFFSET: u64 = (NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % 512) * 128;
}

#[divan::bench(threads = [1, 2], sample_size = 10_000)]
fn atomic_rmw_add_same_word(b: Bencher) {
    let mem = &*SHARED;
    b.counter(ItemsCount::new(1u32)).bench(|| {
        mem.atomic_rmw::<u32>(divan::black_box(0), RmwOp::Add, 1)
            .unwrap()
    });
}

#[divan::bench(threads = [1, 2], sample_size = 10_000)]
fn atomic_rmw_add_own_word(b: Bencher) {
    let mem = &*SHARED;
    b.counter(ItemsCount::new(1u32)).bench(|| {
        let off = MY_OFFSET.with(|o| *o) + 4096;
        mem.atomic_rmw::<u32>(divan::black_box(off), RmwOp::Add, 1)
            .unwrap()
    });
}

static BARE: AtomicU32 = AtomicU32::new(0);

#[divan::bench(threads = [1, 2], sample_size = 10_000)]
fn baseline_fetch_add_same_word(b: Bencher) {
    b.counter(ItemsCount::new(1u32))
        .bench(|| divan::black_box(&BARE).fetch_add(1, Ordering::SeqCst));
}

#[divan::bench(threads = [1, 2], sample_size = 10_000)]
fn notify_without_waiters(b: Bencher) {
    let mem = &*SHARED;
    b.counter(ItemsCount::new(1u32))
        .bench(|| mem.notify(divan::black_box(0), 1).unwrap());
}
