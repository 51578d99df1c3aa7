//! [`LinearMemory`]: a non-shared memory owned by one store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::access::{self, AtomicInt, RmwOp};
use crate::config::{MemoryConfig, MemoryInfo, ResourceLimiter, ValidatedSizes, pages_to_bytes};
use crate::error::{AccessError, Error, GrowError};
use crate::parking::WaitOutcome;
use crate::reservation::Reservation;
use crate::{MemoryDefinition, sync::Ordering};

/// What a successful grow did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowOutcome {
    /// Size before the grow, in pages (what `memory.grow` returns).
    pub old_pages: u64,
    /// Size after the grow, in pages.
    pub new_pages: u64,
    /// Whether the memory moved to a new base address. Compiled code and
    /// anything else that cached [`LinearMemory::base_ptr`] must reload it.
    pub moved: bool,
}

/// The size limits and hook shared by every grow implementation.
#[derive(Clone)]
pub(crate) struct GrowPolicy {
    pub(crate) page_size_log2: u8,
    /// Effective maximum in pages (declared, else the index type's limit).
    pub(crate) max_pages: u64,
    /// Declared maximum in pages.
    pub(crate) declared_max: Option<u64>,
    pub(crate) limiter: Option<Arc<dyn ResourceLimiter>>,
}

impl GrowPolicy {
    pub(crate) fn new(cfg: &MemoryConfig, sizes: &ValidatedSizes) -> Self {
        GrowPolicy {
            page_size_log2: cfg.page_size_log2,
            max_pages: sizes.max_pages,
            declared_max: cfg.maximum_pages,
            limiter: cfg.limiter.clone(),
        }
    }

    fn declared_max_bytes(&self) -> Option<usize> {
        self.declared_max
            .and_then(|p| pages_to_bytes(p, self.page_size_log2))
    }

    /// Asks the limiter about a memory's initial size.
    pub(crate) fn check_initial(&self, initial_bytes: usize) -> Result<(), Error> {
        match &self.limiter {
            Some(l) if initial_bytes > 0 => {
                if l.memory_growing(0, initial_bytes, self.declared_max_bytes()) {
                    Ok(())
                } else {
                    Err(Error::LimiterRefused {
                        bytes: initial_bytes,
                    })
                }
            }
            _ => Ok(()),
        }
    }

    /// Validates growing a memory of `old_len` bytes by `delta` pages and
    /// consults the limiter. Returns `(old_pages, new_len)`; `delta == 0`
    /// is the caller's business (it never reaches here).
    pub(crate) fn plan(&self, old_len: usize, delta: u64) -> Result<(u64, usize), GrowError> {
        let old_pages = (old_len as u64) >> self.page_size_log2;
        let exceeds = GrowError::ExceedsMaximum {
            current_pages: old_pages,
            delta_pages: delta,
            maximum_pages: self.max_pages,
        };
        let new_pages = old_pages
            .checked_add(delta)
            .filter(|&p| p <= self.max_pages)
            .ok_or(exceeds)?;
        let new_len =
            pages_to_bytes(new_pages, self.page_size_log2).ok_or(GrowError::OutOfMemory {
                requested_bytes: usize::MAX,
                kind: std::io::ErrorKind::OutOfMemory,
            })?;
        if let Some(l) = &self.limiter
            && !l.memory_growing(old_len, new_len, self.declared_max_bytes())
        {
            return Err(GrowError::LimiterRefused {
                current_bytes: old_len,
                desired_bytes: new_len,
            });
        }
        Ok((old_pages, new_len))
    }
}

/// A non-shared linear memory, owned by one store (or any single owner).
///
/// Reserves `guard_before + reservation + guard_after` bytes of inaccessible
/// address space and makes pages read-write as it grows. Growth beyond the
/// reservation moves the memory (reserve elsewhere, copy, release the old
/// range) if the configuration allows it, and fails otherwise. A failed grow
/// changes nothing.
///
/// Host access is through ordinary slices ([`data`](Self::data),
/// [`data_mut`](Self::data_mut)), which the borrow checker keeps from
/// overlapping a grow.
///
/// ```
/// use weft_memory::{LinearMemory, MemoryConfig};
///
/// let mut mem = LinearMemory::new(&MemoryConfig::new(1).with_maximum(Some(4)))?;
/// mem.write(100, b"hello")?;
/// assert_eq!(mem.grow(2)?, 1);
/// assert_eq!(mem.size_pages(), 3);
/// let mut buf = [0; 5];
/// mem.read(100, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// assert!(mem.grow(2).is_err()); // beyond the maximum: nothing changes
/// assert_eq!(mem.byte_len(), 3 * 65536);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LinearMemory {
    /// Boxed so its address is stable for the memory's life, even when the
    /// `LinearMemory` value itself is moved.
    def: Box<MemoryDefinition>,
    res: Reservation,
    policy: GrowPolicy,
    index64: bool,
    may_move: bool,
    guard_before: usize,
    guard_after: usize,
    reservation_for_growth: usize,
}

impl fmt::Debug for LinearMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinearMemory")
            .field("base", &self.res.base())
            .field("byte_len", &self.byte_len())
            .field("info", &self.info())
            .finish()
    }
}

impl LinearMemory {
    /// Creates a memory. Fails (never panics) on an invalid configuration, a
    /// refused reservation, or a limiter that refuses the initial size.
    pub fn new(cfg: &MemoryConfig) -> Result<Self, Error> {
        let sizes = cfg.validate()?;
        let policy = GrowPolicy::new(cfg, &sizes);
        policy.check_initial(sizes.initial_bytes)?;
        let mut reservation = cfg.reservation_bytes;
        if sizes.initial_bytes > reservation {
            if !cfg.may_move {
                return Err(Error::InitialExceedsReservation {
                    initial_bytes: sizes.initial_bytes,
                    reservation_bytes: reservation,
                });
            }
            reservation = sizes.initial_bytes;
        }
        let mut res =
            Reservation::new_owned(reservation, cfg.guard_before_bytes, cfg.guard_after_bytes)?;
        if cfg.write_marks && !cfg.index64 {
            // A 32-bit memory never exceeds 4 GiB, wherever it moves.
            res.add_marks(1 << 32).map_err(|source| Error::Reserve {
                bytes: (1 << 32 >> crate::MARK_SHIFT) + 2,
                source,
            })?;
        }
        Self::from_reservation(res, cfg, &sizes, policy, cfg.may_move)
    }

    /// Builds a memory in an existing reservation (own or pooled); the
    /// limiter has already been consulted.
    pub(crate) fn from_reservation(
        res: Reservation,
        cfg: &MemoryConfig,
        sizes: &ValidatedSizes,
        policy: GrowPolicy,
        may_move: bool,
    ) -> Result<Self, Error> {
        if sizes.initial_bytes > res.reservation() {
            return Err(Error::InitialExceedsReservation {
                initial_bytes: sizes.initial_bytes,
                reservation_bytes: res.reservation(),
            });
        }
        res.commit(sizes.initial_bytes)
            .map_err(|source| Error::Commit {
                bytes: sizes.initial_bytes,
                source,
            })?;
        // Compiled code marks stores to 32-bit memories only: a 64-bit
        // memory in a slot that has marks shows compiled code none, and its
        // resets read the page tables.
        let marks = if cfg.index64 {
            res.set_untracked();
            std::ptr::null_mut()
        } else {
            res.marks_ptr()
        };
        let def = Box::new(MemoryDefinition::with_marks(
            res.base(),
            sizes.initial_bytes,
            marks,
        ));
        Ok(LinearMemory {
            def,
            res,
            policy,
            index64: cfg.index64,
            may_move,
            guard_before: cfg.guard_before_bytes,
            guard_after: cfg.guard_after_bytes,
            reservation_for_growth: cfg.reservation_for_growth,
        })
    }

    /// Grows by `delta_pages` and returns the old size in pages (what wasm's
    /// `memory.grow` returns on success). On error nothing changed.
    pub fn grow(&mut self, delta_pages: u64) -> Result<u64, GrowError> {
        self.grow_with_outcome(delta_pages).map(|o| o.old_pages)
    }

    /// Like [`grow`](Self::grow), but also reports the new size and whether
    /// the memory moved.
    pub fn grow_with_outcome(&mut self, delta_pages: u64) -> Result<GrowOutcome, GrowError> {
        let old_len = self.byte_len();
        let old_pages = (old_len as u64) >> self.policy.page_size_log2;
        if delta_pages == 0 {
            return Ok(GrowOutcome {
                old_pages,
                new_pages: old_pages,
                moved: false,
            });
        }
        let (old_pages, new_len) = self.policy.plan(old_len, delta_pages)?;
        let new_pages = old_pages + delta_pages;
        let oom = |e: std::io::Error| GrowError::OutOfMemory {
            requested_bytes: new_len,
            kind: e.kind(),
        };
        if new_len <= self.res.reservation() {
            self.res.commit(new_len).map_err(oom)?;
            self.def.current_length.store(new_len, Ordering::SeqCst);
            return Ok(GrowOutcome {
                old_pages,
                new_pages,
                moved: false,
            });
        }
        if !self.may_move {
            return Err(GrowError::ExceedsReservation {
                requested_bytes: new_len,
                reservation_bytes: self.res.reservation(),
            });
        }
        // Move: reserve a bigger range, copy, switch, release the old one.
        let mut size = new_len.saturating_add(self.reservation_for_growth);
        if let Some(max) = pages_to_bytes(self.policy.max_pages, self.policy.page_size_log2) {
            size = size.min(max.max(new_len));
        }
        let new_res =
            Reservation::new_owned(size, self.guard_before, self.guard_after).map_err(|e| {
                GrowError::OutOfMemory {
                    requested_bytes: new_len,
                    kind: match e {
                        Error::Reserve { source, .. } => source.kind(),
                        _ => std::io::ErrorKind::OutOfMemory,
                    },
                }
            })?;
        new_res.commit(new_len).map_err(oom)?;
        // SAFETY: both ranges are accessible for `old_len` bytes (old: its
        // committed length; new: just committed `new_len >= old_len`); they
        // are distinct mappings so they do not overlap; `&mut self` means no
        // slice of the old memory is alive.
        unsafe { std::ptr::copy_nonoverlapping(self.res.base(), new_res.base(), old_len) };
        // The marks (sized for any 32-bit length) move with the memory:
        // the definition's pointer to them stays valid.
        let mut new_res = new_res;
        new_res.take_marks_from(&mut self.res);
        self.res = new_res;
        self.def
            .base
            .store(self.res.base(), std::sync::atomic::Ordering::SeqCst);
        self.def.current_length.store(new_len, Ordering::SeqCst);
        Ok(GrowOutcome {
            old_pages,
            new_pages,
            moved: true,
        })
    }

    /// Makes `image.offset() .. image.offset() + image.len()` hold the
    /// image: mapped copy-on-write when the image is a file and this memory
    /// has real pages (O(1) whatever the image's size), copied otherwise.
    /// What was in that range before is gone; the rest of the memory is
    /// untouched. Fails, changing nothing, if the memory is smaller than
    /// [`MemoryImage::min_memory_bytes`](crate::MemoryImage::min_memory_bytes).
    pub fn apply_image(&mut self, image: &crate::MemoryImage) -> Result<(), Error> {
        self.apply_image_with(image, false)
    }

    /// [`apply_image`](Self::apply_image), mapping the image whenever it
    /// has a file if `prefer_map` (a pool slot keeps the mapping for the
    /// next memory of the same image), else copying small images.
    pub(crate) fn apply_image_with(
        &mut self,
        image: &crate::MemoryImage,
        prefer_map: bool,
    ) -> Result<(), Error> {
        let memory_bytes = self.byte_len();
        if image.min_memory_bytes() > memory_bytes
            || image.offset() + image.len() > self.res.committed()
        {
            return Err(Error::ImageExceedsMemory {
                image_bytes: image.min_memory_bytes(),
                memory_bytes,
            });
        }
        let copy = image.bytes().filter(|_| !prefer_map || !image.fd_present());
        if copy.is_none() {
            // SAFETY: `&mut self`: no slice of this memory is alive; the
            // range is committed (checked above).
            if unsafe { self.res.map_image(image) }.map_err(Error::MapImage)? {
                return Ok(());
            }
        }
        let Some(bytes) = copy.or(image.bytes()) else {
            return Err(Error::MapImage(std::io::Error::other(
                "this memory cannot map a file image",
            )));
        };
        let offset = image.offset();
        let end = (offset + bytes.len()).min(memory_bytes);
        self.data_mut_marked_by_caller()[offset..end].copy_from_slice(&bytes[..end - offset]);
        self.def.mark_written(offset, end - offset);
        Ok(())
    }

    /// Current size in pages.
    pub fn size_pages(&self) -> u64 {
        (self.byte_len() as u64) >> self.policy.page_size_log2
    }

    /// Current size in bytes.
    pub fn byte_len(&self) -> usize {
        self.def.current_length.load(Ordering::Acquire)
    }

    /// Byte 0 of the memory. Changes only when a grow moves the memory.
    /// With write marks, handing out this pointer makes the memory
    /// untracked until its next reset (its writes are not marked).
    pub fn base_ptr(&self) -> *mut u8 {
        self.res.set_untracked();
        self.res.base()
    }

    /// The memory's contents.
    pub fn data(&self) -> &[u8] {
        // SAFETY: base .. base + byte_len is committed (read-write) and stays
        // so while `self` is borrowed (grow and drop need `&mut self`/`self`);
        // only `&mut self` methods write through Rust references.
        unsafe { std::slice::from_raw_parts(self.res.base(), self.byte_len()) }
    }

    /// The memory's contents, mutably. With write marks, this makes the
    /// memory untracked until its next reset (see
    /// [`MemoryDefinition`](crate::MemoryDefinition)); prefer
    /// [`write`](Self::write), which marks what it writes.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.res.set_untracked();
        self.data_mut_marked_by_caller()
    }

    /// Makes the next reset of this memory read the page tables instead of
    /// trusting its write marks (a write may have missed them: a store cut
    /// short by a fault, say). Nothing happens without marks.
    pub fn untrack(&self) {
        self.res.set_untracked();
    }

    /// `data_mut` for this crate's writers that mark what they write.
    fn data_mut_marked_by_caller(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.res.base(), self.byte_len()) }
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        let start = access::check_range(offset, buf.len(), self.byte_len())?;
        buf.copy_from_slice(&self.data()[start..start + buf.len()]);
        Ok(())
    }

    /// Copies `buf` into the memory at `offset`.
    pub fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), AccessError> {
        let start = access::check_range(offset, buf.len(), self.byte_len())?;
        self.data_mut_marked_by_caller()[start..start + buf.len()].copy_from_slice(buf);
        self.def.mark_written(start, buf.len());
        Ok(())
    }

    fn atomic_ptr<T: AtomicInt>(&self, offset: u64) -> Result<*mut u8, AccessError> {
        let start = access::check_atomic(offset, T::SIZE, self.byte_len())?;
        // SAFETY: start + SIZE <= byte_len, inside the committed range.
        Ok(unsafe { self.res.base().add(start) })
    }

    /// Atomically loads a little-endian `T` at `offset` (naturally aligned).
    pub fn atomic_load<T: AtomicInt>(&self, offset: u64) -> Result<T, AccessError> {
        let p = self.atomic_ptr::<T>(offset)?;
        // SAFETY: `p` is aligned (base is page aligned, offset checked) and
        // in bounds; other references to these bytes are shared reads.
        Ok(unsafe { T::atomic_load(p) })
    }

    /// Atomically stores a little-endian `T` at `offset`.
    pub fn atomic_store<T: AtomicInt>(&mut self, offset: u64, value: T) -> Result<(), AccessError> {
        let p = self.atomic_ptr::<T>(offset)?;
        // SAFETY: aligned and in bounds; `&mut self` excludes other references.
        unsafe { T::atomic_store(p, value) };
        self.def.mark_written(offset as usize, T::SIZE);
        Ok(())
    }

    /// Atomic read-modify-write at `offset`; returns the old value.
    pub fn atomic_rmw<T: AtomicInt>(
        &mut self,
        offset: u64,
        op: RmwOp,
        value: T,
    ) -> Result<T, AccessError> {
        let p = self.atomic_ptr::<T>(offset)?;
        self.def.mark_written(offset as usize, T::SIZE);
        // SAFETY: aligned and in bounds; `&mut self` excludes other references.
        Ok(unsafe { T::atomic_rmw(p, op, value) })
    }

    /// Atomic compare-and-exchange at `offset`; returns the old value (the
    /// exchange happened iff it equals `expected`).
    pub fn atomic_cmpxchg<T: AtomicInt>(
        &mut self,
        offset: u64,
        expected: T,
        replacement: T,
    ) -> Result<T, AccessError> {
        let p = self.atomic_ptr::<T>(offset)?;
        self.def.mark_written(offset as usize, T::SIZE);
        // SAFETY: aligned and in bounds; `&mut self` excludes other references.
        Ok(unsafe { T::atomic_cmpxchg(p, expected, replacement) })
    }

    /// `memory.atomic.wait32` on a non-shared memory: after the alignment and
    /// bounds checks, always [`AccessError::NotShared`] (wasm traps).
    pub fn wait32(
        &self,
        offset: u64,
        _expected: u32,
        _timeout: Option<Duration>,
    ) -> Result<WaitOutcome, AccessError> {
        self.atomic_ptr::<u32>(offset)?;
        Err(AccessError::NotShared)
    }

    /// `memory.atomic.wait64` on a non-shared memory: see [`wait32`](Self::wait32).
    pub fn wait64(
        &self,
        offset: u64,
        _expected: u64,
        _timeout: Option<Duration>,
    ) -> Result<WaitOutcome, AccessError> {
        self.atomic_ptr::<u64>(offset)?;
        Err(AccessError::NotShared)
    }

    /// `memory.atomic.notify` on a non-shared memory: after the alignment and
    /// bounds checks, wakes nobody and returns 0 (nobody can wait on it).
    pub fn notify(&self, offset: u64, _count: u32) -> Result<u32, AccessError> {
        self.atomic_ptr::<u32>(offset)?;
        Ok(0)
    }

    /// The `#[repr(C)]` base/length header compiled code reads. The pointer is
    /// valid and stable for the memory's whole life (even if the
    /// `LinearMemory` value is moved); grow keeps it current.
    ///
    /// Writing the definition is not allowed (writing the memory's bytes
    /// through `base` is; with write marks, such a writer must mark what it
    /// wrote with [`MemoryDefinition::mark_written`], or the next reset of
    /// a pool slot will not restore it). Reading `base` and
    /// `current_length` is, at any time from the owning thread. A moving
    /// memory changes `base` during [`grow`](Self::grow).
    pub fn definition(&self) -> *mut MemoryDefinition {
        std::ptr::from_ref::<MemoryDefinition>(&self.def).cast_mut()
    }

    /// Static facts for compilers (reservation, guards, movability, ...).
    pub fn info(&self) -> MemoryInfo {
        MemoryInfo {
            page_size_log2: self.policy.page_size_log2,
            index64: self.index64,
            shared: false,
            pooled: self.res.is_pooled(),
            maximum_pages: self.policy.declared_max,
            reservation_bytes: self.res.reservation(),
            guard_after_bytes: self.res.guard_after(),
            guard_before_bytes: self.res.guard_before(),
            may_move: self.may_move,
        }
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> u64 {
        1 << self.policy.page_size_log2
    }

    /// The declared maximum in pages.
    pub fn maximum_pages(&self) -> Option<u64> {
        self.policy.declared_max
    }

    /// Bytes of address space currently reserved for the memory.
    pub fn reservation_bytes(&self) -> usize {
        self.res.reservation()
    }

    /// Inaccessible bytes after the reservation.
    pub fn guard_after_bytes(&self) -> usize {
        self.res.guard_after()
    }

    /// Inaccessible bytes before the base.
    pub fn guard_before_bytes(&self) -> usize {
        self.res.guard_before()
    }

    /// Whether the base may change on grow.
    pub fn may_move(&self) -> bool {
        self.may_move
    }

    /// Always `false`.
    pub fn is_shared(&self) -> bool {
        false
    }
}
