//! [`MemoryPool`]: pre-reserved, fixed-size slots for non-shared memories.
//!
//! One reservation holds every slot:
//!
//! ```text
//! [guard_before][slot 0][gap][slot 1][gap] ... [slot N-1][gap]
//! ```
//!
//! where `gap = max(guard_before, guard_after)`, so every slot has at least
//! `guard_before` inaccessible bytes below it and `guard_after` above it.
//!
//! Slot accounting: a slot is either on the free list, leased to exactly one
//! live [`PooledMemory`], or quarantined (its reset failed, so it is never
//! handed out again). `free + in_use + quarantined == capacity` always holds.
//! Dropping a `PooledMemory` resets the contents of the pages it committed
//! in place (pages it wrote restored by copying, up to
//! `keep_resident_bytes`, see `dirty`; the others `madvise(MADV_DONTNEED)`:
//! anonymous pages read zero again, a mapped [`MemoryImage`]'s pages read
//! the image again) and puts the slot back on
//! the free list with its committed size and image, which the next memory
//! reuses as they are when they fit it (an image of the same module, a
//! smaller size is made inaccessible beyond its end, another image is
//! unmapped first). Slots are never lost. Pages of a free slot may stay
//! accessible: no memory can reach them (every slot's guard lies between
//! it and the next).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::{DEFAULT_GUARD_AFTER, DEFAULT_GUARD_BEFORE, MemoryConfig};
use crate::error::Error;
use crate::image::MemoryImage;
use crate::linear::{GrowPolicy, LinearMemory};
use crate::reservation::Reservation;
use crate::sys::{Backing, round_up_to_host_page};

/// How to build a [`MemoryPool`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Number of slots (at least 1).
    pub slots: usize,
    /// Bytes of address space per slot: the largest size a pooled memory can
    /// reach (rounded up to the host page size; at least 1).
    pub slot_bytes: usize,
    /// Minimum inaccessible bytes below every slot.
    pub guard_before_bytes: usize,
    /// Minimum inaccessible bytes above every slot.
    pub guard_after_bytes: usize,
    /// The resident budget of each slot (0: give every page back). When a
    /// slot is released, the pages its memory wrote (private pages, read
    /// from the page tables on Linux) get their initial contents back in
    /// place — the image's bytes or zero — up to this many bytes, and
    /// stay mapped, so the next memory in the slot does not fault them in
    /// again; written pages beyond the budget are given back to the OS.
    /// When the page tables cannot be read (other systems), the resident
    /// pages of the first `keep_resident_bytes` outside a mapped image are
    /// zeroed in place instead and the rest given back.
    pub keep_resident_bytes: usize,
    /// Whether slots keep write marks (see
    /// [`MemoryDefinition`](crate::MemoryDefinition)): a reset then
    /// restores the pages the marks name, without reading the page tables,
    /// unless a host took a mutable view or raw pointer of the memory.
    /// Default `false`.
    pub write_marks: bool,
}

impl PoolConfig {
    /// `slots` slots of `slot_bytes` each, with the default guards.
    pub fn new(slots: usize, slot_bytes: usize) -> Self {
        PoolConfig {
            slots,
            slot_bytes,
            guard_before_bytes: DEFAULT_GUARD_BEFORE,
            guard_after_bytes: DEFAULT_GUARD_AFTER,
            keep_resident_bytes: 0,
            write_marks: false,
        }
    }

    /// Sets [`write_marks`](Self::write_marks).
    pub fn with_write_marks(mut self, on: bool) -> Self {
        self.write_marks = on;
        self
    }

    /// Sets [`keep_resident_bytes`](Self::keep_resident_bytes).
    pub fn with_keep_resident(mut self, bytes: usize) -> Self {
        self.keep_resident_bytes = bytes;
        self
    }

    /// Sets the guard sizes.
    pub fn with_guards(mut self, before: usize, after: usize) -> Self {
        self.guard_before_bytes = before;
        self.guard_after_bytes = after;
        self
    }
}

pub(crate) struct PoolInner {
    backing: Backing,
    capacity: usize,
    slot_bytes: usize,
    stride: usize,
    guard_before: usize,
    gap: usize,
    /// Free slots; LIFO so recently used (warm) slots are reused.
    free: Mutex<Vec<FreeSlot>>,
    quarantined: AtomicUsize,
    keep_resident: usize,
    write_marks: bool,
}

impl PoolInner {
    pub(crate) fn backing(&self) -> &Backing {
        &self.backing
    }

    /// `(base_offset, reservation, guard_before, guard_after)` of a slot.
    pub(crate) fn slot_layout(&self, slot: usize) -> (usize, usize, usize, usize) {
        (
            self.guard_before + slot * self.stride,
            self.slot_bytes,
            self.guard_before,
            self.gap,
        )
    }

    /// Returns a slot (called from `Reservation::drop`).
    pub(crate) fn release(&self, slot: FreeSlot) {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
    }

    /// Withdraws a slot whose reset failed.
    pub(crate) fn quarantine(&self) {
        self.quarantined.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the free slot that best fits a memory that will start from
    /// `image`: one that still has that very image mapped (its contents are
    /// already the image: nothing to map), else one with no image mapped
    /// (nothing to unmap), else the most recently freed.
    fn take(&self, image: Option<&MemoryImage>) -> Option<FreeSlot> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let same = |s: &FreeSlot| match (&s.image, image) {
            (Some(a), Some(b)) => a.same(b),
            (None, None) => true,
            _ => false,
        };
        let pos = free
            .iter()
            .rposition(same)
            .or_else(|| free.iter().rposition(|s| s.image.is_none()))
            .or_else(|| free.len().checked_sub(1))?;
        Some(free.swap_remove(pos))
    }

    pub(crate) fn keep_resident(&self) -> usize {
        self.keep_resident
    }

    fn free_count(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A free slot and what its last memory left mapped: `committed` bytes
/// stay accessible (zeroed) and `image`, if any, stays mapped (reset to the
/// image), so that a memory of the same image and size reuses them as they
/// are.
pub(crate) struct FreeSlot {
    pub(crate) index: usize,
    pub(crate) committed: usize,
    pub(crate) image: Option<MemoryImage>,
    /// Resets of this slot still to come that restore every committed page
    /// without asking which were written (see `Reservation::restore`).
    pub(crate) blind_resets: u8,
    /// The slot's write marks, made on its first lease that wants them.
    pub(crate) marks: Option<crate::marks::WriteMarks>,
}

/// A pool of pre-reserved memory slots (see the module docs). Cheap to
/// clone (`Arc` inside); `Send + Sync`. Pooled memories never move: growth
/// past the slot size fails.
///
/// ```
/// use weft_memory::{MemoryPool, PoolConfig};
///
/// let pool = MemoryPool::new(&PoolConfig::new(2, 1 << 20).with_guards(0, 65536))?;
/// let mut a = pool.allocate(1, Some(16))?;
/// a.write(0, b"data")?;
/// let _b = pool.allocate(0, None)?;
/// assert!(pool.allocate(0, None).is_err()); // exhausted
/// drop(a);
/// assert_eq!(pool.free_slots(), 1);
/// let a = pool.allocate(1, None)?; // reused slot comes back zeroed
/// assert_eq!(&a.data()[..4], &[0, 0, 0, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MemoryPool(Arc<PoolInner>);

impl fmt::Debug for MemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPool")
            .field("capacity", &self.capacity())
            .field("free", &self.free_slots())
            .field("in_use", &self.in_use())
            .field("quarantined", &self.quarantined())
            .field("slot_bytes", &self.0.slot_bytes)
            .finish()
    }
}

impl MemoryPool {
    /// Reserves every slot up front. Zero slots or zero-sized slots are an
    /// error, as is a layout that does not fit the address space.
    pub fn new(cfg: &PoolConfig) -> Result<Self, Error> {
        if cfg.slots == 0 {
            return Err(Error::InvalidConfig(
                "a memory pool needs at least one slot",
            ));
        }
        if cfg.slot_bytes == 0 {
            return Err(Error::InvalidConfig("pool slots must not be empty"));
        }
        let too_big = Error::InvalidConfig("pool layout exceeds the address space");
        let slot_bytes = round_up_to_host_page(cfg.slot_bytes).ok_or(too_big)?;
        let guard_before = round_up_to_host_page(cfg.guard_before_bytes).ok_or(
            Error::InvalidConfig("pool layout exceeds the address space"),
        )?;
        let guard_after = round_up_to_host_page(cfg.guard_after_bytes).ok_or(
            Error::InvalidConfig("pool layout exceeds the address space"),
        )?;
        let gap = guard_before.max(guard_after);
        let stride = slot_bytes.checked_add(gap).ok_or(Error::InvalidConfig(
            "pool layout exceeds the address space",
        ))?;
        let total = stride
            .checked_mul(cfg.slots)
            .and_then(|n| n.checked_add(guard_before))
            .ok_or(Error::InvalidConfig(
                "pool layout exceeds the address space",
            ))?;
        let backing = Backing::reserve(total).map_err(|source| Error::Reserve {
            bytes: total,
            source,
        })?;
        Ok(MemoryPool(Arc::new(PoolInner {
            backing,
            capacity: cfg.slots,
            slot_bytes,
            stride,
            guard_before,
            gap,
            // Reversed so that slot 0 is handed out first.
            free: Mutex::new(
                (0..cfg.slots)
                    .rev()
                    .map(|index| FreeSlot {
                        index,
                        committed: 0,
                        image: None,
                        blind_resets: 0,
                        marks: None,
                    })
                    .collect(),
            ),
            quarantined: AtomicUsize::new(0),
            keep_resident: cfg.keep_resident_bytes,
            write_marks: cfg.write_marks,
        })))
    }

    /// Allocates a memory of `initial_pages` 64 KiB pages with an optional
    /// declared maximum. A maximum larger than the slot is allowed (as in
    /// wasm, where the declared maximum is often 4 GiB): growth past the
    /// slot then fails with [`GrowError::ExceedsReservation`](crate::GrowError::ExceedsReservation).
    pub fn allocate(
        &self,
        initial_pages: u64,
        max_pages: Option<u64>,
    ) -> Result<PooledMemory, Error> {
        self.allocate_with(&MemoryConfig::new(initial_pages).with_maximum(max_pages))
    }

    /// Allocates a memory described by `cfg` (its page size, index type,
    /// limits and limiter are used; its reservation, guard and `may_move`
    /// settings are replaced by the slot's).
    pub fn allocate_with(&self, cfg: &MemoryConfig) -> Result<PooledMemory, Error> {
        self.allocate_with_image(cfg, None)
    }

    /// Allocates a memory described by `cfg` whose contents start as
    /// `image` (see [`LinearMemory::apply_image`]). A released slot keeps
    /// its last image mapped and its pages accessible, reset to the image
    /// and zeros, so a slot that comes back to a memory of the same image
    /// and size needs no system call at all: prefer this over
    /// `allocate_with` + `apply_image` when memories of one module come and
    /// go.
    pub fn allocate_with_image(
        &self,
        cfg: &MemoryConfig,
        image: Option<&MemoryImage>,
    ) -> Result<PooledMemory, Error> {
        let sizes = cfg.validate()?;
        if sizes.initial_bytes > self.0.slot_bytes {
            return Err(Error::InitialExceedsReservation {
                initial_bytes: sizes.initial_bytes,
                reservation_bytes: self.0.slot_bytes,
            });
        }
        let policy = GrowPolicy::new(cfg, &sizes);
        policy.check_initial(sizes.initial_bytes)?;
        let slot = self.0.take(image).ok_or(Error::PoolExhausted {
            capacity: self.0.capacity,
        })?;
        let keep_image = match (&slot.image, image) {
            (Some(a), Some(b)) => a.same(b),
            _ => false,
        };
        // From here the lease is owned by `res`: any error below drops it,
        // which resets the slot and returns it.
        let mut res = Reservation::new_pooled(Arc::clone(&self.0), slot);
        let commit_err = |source| Error::Commit {
            bytes: sizes.initial_bytes,
            source,
        };
        if self.0.write_marks && res.marks_ptr().is_null() {
            res.add_marks(self.0.slot_bytes).map_err(commit_err)?;
        }
        if !keep_image {
            // SAFETY: a fresh lease: nothing refers into the slot.
            unsafe { res.drop_image() }.map_err(commit_err)?;
        }
        // SAFETY: as above.
        unsafe { res.decommit_beyond(sizes.initial_bytes) }.map_err(commit_err)?;
        let mut cfg = cfg.clone();
        cfg.guard_before_bytes = self.0.guard_before;
        cfg.guard_after_bytes = self.0.gap;
        cfg.may_move = false;
        let mut mem = LinearMemory::from_reservation(res, &cfg, &sizes, policy, false)?;
        if let Some(image) = image.filter(|_| !keep_image) {
            mem.apply_image_with(image, true)?;
        }
        Ok(PooledMemory(mem))
    }

    /// Total number of slots.
    pub fn capacity(&self) -> usize {
        self.0.capacity
    }

    /// Slots ready to be allocated.
    pub fn free_slots(&self) -> usize {
        self.0.free_count()
    }

    /// Slots leased to live [`PooledMemory`] values.
    pub fn in_use(&self) -> usize {
        self.0.capacity - self.free_slots() - self.quarantined()
    }

    /// Slots withdrawn because resetting them failed (expected to stay 0).
    pub fn quarantined(&self) -> usize {
        self.0.quarantined.load(Ordering::Relaxed)
    }

    /// The size of every slot in bytes (the largest a pooled memory can get).
    pub fn slot_bytes(&self) -> usize {
        self.0.slot_bytes
    }
}

/// A non-shared memory living in a [`MemoryPool`] slot. Derefs to
/// [`LinearMemory`] for every operation (its `may_move()` is `false` and
/// `info().pooled` is `true`). Dropping it zeroes the slot and returns it to
/// the pool, even if the pool handle itself was dropped first (the slot
/// storage lives until the last memory using it is gone).
pub struct PooledMemory(LinearMemory);

impl fmt::Debug for PooledMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PooledMemory").field(&self.0).finish()
    }
}

impl PooledMemory {
    /// The `#[repr(C)]` header for compiled code; see
    /// [`LinearMemory::definition`]. The base never changes.
    pub fn definition(&self) -> *mut crate::MemoryDefinition {
        self.0.definition()
    }
}

impl Deref for PooledMemory {
    type Target = LinearMemory;

    fn deref(&self) -> &LinearMemory {
        &self.0
    }
}

impl DerefMut for PooledMemory {
    fn deref_mut(&mut self) -> &mut LinearMemory {
        &mut self.0
    }
}
