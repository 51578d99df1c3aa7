//! The address range of one memory: `[guard_before][reservation][guard_after]`,
//! owned outright or leased from a pool slot, with a committed (accessible)
//! prefix that only ever grows until the reservation is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Error;
use crate::pool::PoolInner;
use crate::sys::{Backing, round_up_to_host_page};

enum Storage {
    Owned(Backing),
    Pooled { pool: Arc<PoolInner>, slot: usize },
}

/// One memory's reserved range.
///
/// Invariants:
/// * `base()` is host-page aligned; `base() - guard_before .. base() +
///   reservation + guard_after` lies inside the backing and belongs to this
///   memory alone (for pools: to this slot, whose lease we hold).
/// * `0 .. committed` (relative to the base) is read-write, everything else in
///   that range is inaccessible; `committed` is a host-page multiple
///   `<= reservation`.
/// * `committed` only changes through [`Reservation::commit`], whose callers
///   hold exclusive access (a `&mut` memory or the shared memory's grow lock);
///   it is an atomic only so that `Reservation` is `Sync`.
pub(crate) struct Reservation {
    storage: Storage,
    base_offset: usize,
    reservation: usize,
    guard_before: usize,
    guard_after: usize,
    committed: AtomicUsize,
    /// The range (relative to the base) where a memory image's file is
    /// mapped over the anonymous reservation, if any.
    image: Option<(usize, usize)>,
}

impl Reservation {
    /// Reserves a fresh range. All sizes are rounded up to the host page
    /// size; the reservation is at least one host page.
    pub(crate) fn new_owned(
        reservation: usize,
        guard_before: usize,
        guard_after: usize,
    ) -> Result<Reservation, Error> {
        let too_big = Error::InvalidConfig("reservation plus guards exceed the address space");
        let reservation = round_up_to_host_page(reservation.max(1)).ok_or(too_big)?;
        let guard_before = round_up_to_host_page(guard_before)
            .ok_or(Error::InvalidConfig("guard size exceeds the address space"))?;
        let guard_after = round_up_to_host_page(guard_after)
            .ok_or(Error::InvalidConfig("guard size exceeds the address space"))?;
        let total = guard_before
            .checked_add(reservation)
            .and_then(|n| n.checked_add(guard_after))
            .ok_or(Error::InvalidConfig(
                "reservation plus guards exceed the address space",
            ))?;
        let backing = Backing::reserve(total).map_err(|source| Error::Reserve {
            bytes: total,
            source,
        })?;
        Ok(Reservation {
            storage: Storage::Owned(backing),
            base_offset: guard_before,
            reservation,
            guard_before,
            guard_after,
            committed: AtomicUsize::new(0),
            image: None,
        })
    }

    /// Wraps a leased pool slot. The slot's pages must all be inaccessible
    /// and zero; dropping the reservation resets what was committed and
    /// returns the slot.
    pub(crate) fn new_pooled(pool: Arc<PoolInner>, slot: usize) -> Reservation {
        let (base_offset, reservation, guard_before, guard_after) = pool.slot_layout(slot);
        Reservation {
            storage: Storage::Pooled { pool, slot },
            base_offset,
            reservation,
            guard_before,
            guard_after,
            committed: AtomicUsize::new(0),
            image: None,
        }
    }

    fn backing(&self) -> &Backing {
        match &self.storage {
            Storage::Owned(b) => b,
            Storage::Pooled { pool, .. } => pool.backing(),
        }
    }

    /// Byte 0 of the memory.
    pub(crate) fn base(&self) -> *mut u8 {
        // SAFETY: base_offset + reservation + guard_after <= backing length
        // (struct invariant), so the offset stays inside the allocation.
        unsafe { self.backing().as_ptr().add(self.base_offset) }
    }

    pub(crate) fn reservation(&self) -> usize {
        self.reservation
    }

    pub(crate) fn guard_before(&self) -> usize {
        self.guard_before
    }

    pub(crate) fn guard_after(&self) -> usize {
        self.guard_after
    }

    pub(crate) fn is_pooled(&self) -> bool {
        matches!(self.storage, Storage::Pooled { .. })
    }

    /// Makes `0 .. len` accessible (rounded up to host pages). Already
    /// accessible pages are untouched; on failure nothing changes that a
    /// caller could observe (the committed mark stays where it was).
    ///
    /// Callers must hold exclusive access to the memory's growth (see the
    /// struct invariants) and ensure `len <= reservation`.
    pub(crate) fn commit(&self, len: usize) -> std::io::Result<()> {
        debug_assert!(len <= self.reservation);
        let target = round_up_to_host_page(len).unwrap_or(self.reservation);
        let current = self.committed.load(Ordering::Relaxed);
        if target > current {
            self.backing()
                .make_accessible(self.base_offset + current, target - current)?;
            self.committed.store(target, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The committed length (host-page multiple).
    pub(crate) fn committed(&self) -> usize {
        self.committed.load(Ordering::Relaxed)
    }

    /// Maps `image` private over `image.offset() .. + image.len()`, which
    /// must lie in the committed range. `Ok(false)` if the image or the
    /// backing cannot be mapped (the caller copies instead).
    ///
    /// # Safety
    /// No reference into the range may be live: its contents are replaced.
    pub(crate) unsafe fn map_image(&mut self, image: &crate::MemoryImage) -> std::io::Result<bool> {
        debug_assert!(image.offset() + image.len() <= self.committed());
        #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
        if let Some(fd) = image.fd() {
            // SAFETY: the range is inside this reservation's committed part
            // (caller), which only this memory uses; the caller guarantees no
            // reference into it. A second image replaces the first (MAP_FIXED).
            unsafe {
                self.backing()
                    .map_file(self.base_offset + image.offset(), image.len(), fd)?;
            }
            let (start, end) = match self.image {
                Some((s, l)) => (
                    s.min(image.offset()),
                    (s + l).max(image.offset() + image.len()),
                ),
                None => (image.offset(), image.offset() + image.len()),
            };
            self.image = Some((start, end - start));
            return Ok(true);
        }
        let _ = image;
        Ok(false)
    }

    /// Under loom, checks (loom-tracked) that `offset .. offset + len` is
    /// accessible to this thread; a no-op otherwise.
    #[inline(always)]
    pub(crate) fn check_accessible(&self, offset: usize, len: usize) {
        self.backing()
            .check_accessible(self.base_offset + offset, len);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Storage::Pooled { pool, slot } = &self.storage {
            let committed = *self.committed.get_mut();
            // A mapped image first goes back to anonymous memory: dropping
            // its pages would otherwise show the image again, not zeros.
            let unmapped = match self.image {
                #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
                // SAFETY: the image range is inside this slot and nothing
                // refers into it any more (we are being dropped).
                Some((start, len)) => unsafe {
                    pool.backing().unmap_file(self.base_offset + start, len)
                },
                _ => Ok::<(), std::io::Error>(()),
            };
            // SAFETY: we are being dropped, so the memory that owned us is
            // gone together with every borrow of its bytes; the slot range
            // `base_offset .. base_offset + committed` is ours alone.
            let reset = unsafe {
                pool.backing()
                    .reset(self.base_offset, committed, pool.keep_resident())
            };
            pool.release(*slot, reset.is_ok() && unmapped.is_ok());
        }
        // Owned: the Backing's own Drop unmaps everything.
    }
}
