//! [`SharedMemory`]: a memory shared between threads (wasm `shared`).
//!
//! # The grow / length-publication protocol
//!
//! * The reservation covers the maximum, so the base never changes.
//! * `grow` takes the grow lock, reads the current length (only ever written
//!   under that lock), consults the limiter, makes the new pages read-write
//!   (`mprotect`) and only then stores the new length into
//!   [`MemoryDefinition::current_length`] with `SeqCst` (a release store).
//! * Every reader (host accessors here, JIT code) loads the length with
//!   `Acquire` (or stronger). Reading length `L` therefore happens-after the
//!   `mprotect` that made `0..L` accessible: a reader never sees a length
//!   whose bytes could fault.
//! * Concurrent grows are serialised by the lock, so they take effect in one
//!   order and each returns a distinct old size (threads#224).
//! * Length never decreases and the base never moves, so a bounds check made
//!   against any length once loaded stays valid.
//!
//! The loom models in `loom_tests.rs` run exactly this code.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::access::{self, AtomicInt, RmwOp};
use crate::config::{MemoryConfig, MemoryInfo};
use crate::error::{AccessError, Error, GrowError};
use crate::linear::GrowPolicy;
use crate::parking::{ParkingLot, WaitCancelled, WaitCanceller, WaitOutcome};
use crate::reservation::Reservation;
use crate::sync::{self, Mutex, Ordering};
use crate::{MemoryDefinition, access::sealed::Sealed};

/// A memory that many threads may access and grow at once. A cheap
/// [`Clone`]able handle (`Arc` inside); `Send + Sync`.
///
/// The host never gets `&[u8]`/`&mut [u8]` into it (other threads and
/// compiled code may write at any time): use the copy accessors
/// [`read`](Self::read)/[`write`](Self::write) (byte-atomic, relaxed) and the
/// sequentially consistent atomics ([`atomic_load`](Self::atomic_load),
/// [`atomic_store`](Self::atomic_store), [`atomic_rmw`](Self::atomic_rmw),
/// [`atomic_cmpxchg`](Self::atomic_cmpxchg)), plus
/// [`wait32`](Self::wait32)/[`wait64`](Self::wait64)/[`notify`](Self::notify).
///
/// ```
/// use std::thread;
/// use weft_memory::{MemoryConfig, RmwOp, SharedMemory};
///
/// let mem = SharedMemory::new(&MemoryConfig::new(1).with_maximum(Some(8)))?;
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let mem = mem.clone();
///         thread::spawn(move || {
///             mem.grow(1).unwrap();
///             mem.atomic_rmw::<u32>(0, RmwOp::Add, 1).unwrap();
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(mem.size_pages(), 5);
/// assert_eq!(mem.atomic_load::<u32>(0)?, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SharedMemory(Arc<SharedInner>);

struct SharedInner {
    /// Inside the `Arc` allocation: its address is stable while any handle
    /// lives.
    def: MemoryDefinition,
    res: Reservation,
    /// Serialises grows; the length is only written while it is held.
    grow_lock: Mutex<()>,
    lot: Arc<ParkingLot>,
    policy: GrowPolicy,
    index64: bool,
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("base", &self.base_ptr())
            .field("byte_len", &self.byte_len())
            .field("info", &self.info())
            .finish()
    }
}

impl SharedMemory {
    /// Creates a shared memory. `cfg.maximum_pages` is required (as in wasm);
    /// the reservation is raised to cover the maximum so the memory never
    /// moves (`cfg.may_move` is ignored).
    pub fn new(cfg: &MemoryConfig) -> Result<Self, Error> {
        let sizes = cfg.validate()?;
        if cfg.maximum_pages.is_none() {
            return Err(Error::InvalidConfig("a shared memory needs a maximum size"));
        }
        let max_bytes = sizes.max_bytes.ok_or(Error::InvalidConfig(
            "the maximum exceeds the host address space",
        ))?;
        let policy = GrowPolicy::new(cfg, &sizes);
        policy.check_initial(sizes.initial_bytes)?;
        let res = Reservation::new_owned(
            cfg.reservation_bytes.max(max_bytes),
            cfg.guard_before_bytes,
            cfg.guard_after_bytes,
        )?;
        res.commit(sizes.initial_bytes)
            .map_err(|source| Error::Commit {
                bytes: sizes.initial_bytes,
                source,
            })?;
        Ok(SharedMemory(Arc::new(SharedInner {
            def: MemoryDefinition::new(res.base(), sizes.initial_bytes),
            res,
            grow_lock: Mutex::new(()),
            lot: Arc::new(ParkingLot::new()),
            policy,
            index64: cfg.index64,
        })))
    }

    /// Grows by `delta_pages`; returns the old size in pages. Serialised with
    /// other grows. On error nothing changed. See the module docs for the
    /// publication protocol.
    pub fn grow(&self, delta_pages: u64) -> Result<u64, GrowError> {
        let inner = &*self.0;
        if delta_pages == 0 {
            return Ok(self.size_pages());
        }
        let _guard = sync::lock(&inner.grow_lock);
        // Only written under the grow lock, which we hold: the lock's
        // acquire makes the latest value visible.
        let old_len = inner.def.current_length.load(Ordering::Relaxed);
        let (old_pages, new_len) = inner.policy.plan(old_len, delta_pages)?;
        if new_len > inner.res.reservation() {
            // Unreachable while reservation >= maximum; kept as a guard.
            return Err(GrowError::ExceedsReservation {
                requested_bytes: new_len,
                reservation_bytes: inner.res.reservation(),
            });
        }
        // 1. Make the new pages accessible ...
        inner
            .res
            .commit(new_len)
            .map_err(|e| GrowError::OutOfMemory {
                requested_bytes: new_len,
                kind: e.kind(),
            })?;
        // 2. ... then publish the new length (SeqCst includes Release).
        inner.def.current_length.store(new_len, Ordering::SeqCst);
        Ok(old_pages)
    }

    /// Current size in bytes (an `Acquire` load: every byte below it is
    /// accessible).
    pub fn byte_len(&self) -> usize {
        self.0.def.current_length.load(Ordering::Acquire)
    }

    /// Current size in pages.
    pub fn size_pages(&self) -> u64 {
        (self.byte_len() as u64) >> self.0.policy.page_size_log2
    }

    /// Byte 0 of the memory; never changes.
    pub fn base_ptr(&self) -> *mut u8 {
        self.0.res.base()
    }

    /// Copies bytes at `offset` into `buf` with relaxed byte-atomic loads
    /// (so racing with other threads is defined behaviour; the copy is not a
    /// single atomic snapshot).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        let start = access::check_range(offset, buf.len(), self.byte_len())?;
        self.0.res.check_accessible(start, buf.len());
        // SAFETY: start .. start + len is below the length we loaded with
        // Acquire, hence accessible; length never shrinks and the base never
        // moves, so it stays so. Every access to shared memory is atomic.
        unsafe { access::atomic_copy_out(self.base_ptr().add(start), buf) };
        Ok(())
    }

    /// Copies `buf` into the memory at `offset` with relaxed byte-atomic
    /// stores.
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<(), AccessError> {
        let start = access::check_range(offset, buf.len(), self.byte_len())?;
        self.0.res.check_accessible(start, buf.len());
        // SAFETY: as in `read`.
        unsafe { access::atomic_copy_in(self.base_ptr().add(start), buf) };
        Ok(())
    }

    /// Checks alignment and bounds for a `T`-sized atomic at `offset` and
    /// returns its address.
    fn atomic_ptr<T: Sealed>(&self, offset: u64) -> Result<*mut u8, AccessError> {
        let start = access::check_atomic(offset, T::SIZE, self.byte_len())?;
        self.0.res.check_accessible(start, T::SIZE);
        // SAFETY: in bounds of the accessible length (see `read`).
        Ok(unsafe { self.base_ptr().add(start) })
    }

    /// Sequentially consistent load of a little-endian `T` at `offset`.
    pub fn atomic_load<T: AtomicInt>(&self, offset: u64) -> Result<T, AccessError> {
        let p = self.atomic_ptr::<T>(offset)?;
        // SAFETY: aligned (page-aligned base, checked offset), in bounds and
        // stays accessible; all host accesses to shared memory are atomic.
        Ok(unsafe { T::atomic_load(p) })
    }

    /// Sequentially consistent store of a little-endian `T` at `offset`.
    pub fn atomic_store<T: AtomicInt>(&self, offset: u64, value: T) -> Result<(), AccessError> {
        let p = self.atomic_ptr::<T>(offset)?;
        // SAFETY: as in `atomic_load`.
        unsafe { T::atomic_store(p, value) };
        Ok(())
    }

    /// Sequentially consistent read-modify-write; returns the old value.
    pub fn atomic_rmw<T: AtomicInt>(
        &self,
        offset: u64,
        op: RmwOp,
        value: T,
    ) -> Result<T, AccessError> {
        let p = self.atomic_ptr::<T>(offset)?;
        // SAFETY: as in `atomic_load`.
        Ok(unsafe { T::atomic_rmw(p, op, value) })
    }

    /// Sequentially consistent compare-and-exchange; returns the old value
    /// (the exchange happened iff it equals `expected`).
    pub fn atomic_cmpxchg<T: AtomicInt>(
        &self,
        offset: u64,
        expected: T,
        replacement: T,
    ) -> Result<T, AccessError> {
        let p = self.atomic_ptr::<T>(offset)?;
        // SAFETY: as in `atomic_load`.
        Ok(unsafe { T::atomic_cmpxchg(p, expected, replacement) })
    }

    fn wait<T: AtomicInt>(
        &self,
        offset: u64,
        expected: T,
        timeout: Option<Duration>,
        cancel: Option<&WaitCanceller>,
    ) -> Result<Result<WaitOutcome, WaitCancelled>, AccessError> {
        let p = self.atomic_ptr::<T>(offset)?;
        let res = &self.0.res;
        Ok(self.0.lot.wait_cancellable(
            offset,
            || {
                res.check_accessible(offset as usize, T::SIZE);
                // SAFETY: as in `atomic_load` (checked just above).
                unsafe { T::atomic_load(p) == expected }
            },
            timeout,
            cancel,
        ))
    }

    /// [`wait32`](Self::wait32) that `cancel` can end from another thread
    /// (`Ok(Err(WaitCancelled))`); see [`WaitCanceller`].
    pub fn wait32_cancellable(
        &self,
        offset: u64,
        expected: u32,
        timeout: Option<Duration>,
        cancel: &WaitCanceller,
    ) -> Result<Result<WaitOutcome, WaitCancelled>, AccessError> {
        self.wait::<u32>(offset, expected, timeout, Some(cancel))
    }

    /// [`wait64`](Self::wait64) that `cancel` can end from another thread.
    pub fn wait64_cancellable(
        &self,
        offset: u64,
        expected: u64,
        timeout: Option<Duration>,
        cancel: &WaitCanceller,
    ) -> Result<Result<WaitOutcome, WaitCancelled>, AccessError> {
        self.wait::<u64>(offset, expected, timeout, Some(cancel))
    }

    /// `memory.atomic.wait32`: if the `u32` at `offset` equals `expected`,
    /// sleeps until a [`notify`](Self::notify) on `offset` wakes this thread
    /// ([`WaitOutcome::Woken`]) or `timeout` passes
    /// ([`WaitOutcome::TimedOut`]); otherwise returns
    /// [`WaitOutcome::NotEqual`] at once. `None` waits forever. The check and
    /// the enqueue are atomic with respect to `notify`; waiters are woken in
    /// FIFO order; `Woken` is never spurious.
    pub fn wait32(
        &self,
        offset: u64,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome, AccessError> {
        Ok(self
            .wait::<u32>(offset, expected, timeout, None)?
            .unwrap_or(WaitOutcome::TimedOut))
    }

    /// `memory.atomic.wait64`: as [`wait32`](Self::wait32) for a `u64`
    /// (8-byte aligned).
    pub fn wait64(
        &self,
        offset: u64,
        expected: u64,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome, AccessError> {
        Ok(self
            .wait::<u64>(offset, expected, timeout, None)?
            .unwrap_or(WaitOutcome::TimedOut))
    }

    /// `memory.atomic.notify`: wakes up to `count` threads waiting on
    /// `offset` (4-byte aligned, in bounds), oldest first, and returns how
    /// many it woke.
    pub fn notify(&self, offset: u64, count: u32) -> Result<u32, AccessError> {
        self.atomic_ptr::<u32>(offset)?;
        Ok(self.0.lot.notify(offset, count))
    }

    /// How many threads are currently waiting on `offset` (a snapshot, for
    /// diagnostics and tests).
    pub fn waiters(&self, offset: u64) -> usize {
        self.0.lot.waiters(offset)
    }

    /// The `#[repr(C)]` base/length header compiled code reads. Valid while
    /// any handle to this memory lives; `base` never changes and
    /// `current_length` is published with `SeqCst` after the pages are
    /// accessible, so readers must load it with `Acquire` (or `SeqCst`).
    /// Writing through the pointer is not allowed.
    pub fn definition(&self) -> *mut MemoryDefinition {
        std::ptr::from_ref::<MemoryDefinition>(&self.0.def).cast_mut()
    }

    /// Static facts for compilers.
    pub fn info(&self) -> MemoryInfo {
        MemoryInfo {
            page_size_log2: self.0.policy.page_size_log2,
            index64: self.0.index64,
            shared: true,
            pooled: false,
            maximum_pages: self.0.policy.declared_max,
            reservation_bytes: self.0.res.reservation(),
            guard_after_bytes: self.0.res.guard_after(),
            guard_before_bytes: self.0.res.guard_before(),
            may_move: false,
        }
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> u64 {
        1 << self.0.policy.page_size_log2
    }

    /// The declared maximum in pages (always `Some` for shared memories).
    pub fn maximum_pages(&self) -> Option<u64> {
        self.0.policy.declared_max
    }

    /// Bytes of address space reserved (at least the maximum).
    pub fn reservation_bytes(&self) -> usize {
        self.0.res.reservation()
    }

    /// Inaccessible bytes after the reservation.
    pub fn guard_after_bytes(&self) -> usize {
        self.0.res.guard_after()
    }

    /// Inaccessible bytes before the base.
    pub fn guard_before_bytes(&self) -> usize {
        self.0.res.guard_before()
    }

    /// Always `false`: shared memories never move.
    pub fn may_move(&self) -> bool {
        false
    }

    /// Always `true`.
    pub fn is_shared(&self) -> bool {
        true
    }

    /// Whether two handles refer to the same memory.
    pub fn ptr_eq(a: &SharedMemory, b: &SharedMemory) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    #[cfg(all(test, loom))]
    pub(crate) fn check_accessible(&self, offset: usize, len: usize) {
        self.0.res.check_accessible(offset, len);
    }
}
