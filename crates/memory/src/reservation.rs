//! The address range of one memory: `[guard_before][reservation][guard_after]`,
//! owned outright or leased from a pool slot, with a committed (accessible)
//! prefix that only ever grows until the reservation is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Error;
use crate::pool::{FreeSlot, PoolInner};
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
    /// The image mapped there, if exactly one is (a pool slot keeps it).
    image_id: Option<crate::MemoryImage>,
    /// A pool slot's count of coming resets that restore all committed
    /// pages without a scan (see [`Reservation::restore_written`]).
    blind_resets: u8,
    /// Write marks (see `marks`), if this memory keeps them; a pool slot's
    /// go back to the pool with it.
    marks: Option<crate::marks::WriteMarks>,
    /// Set when a host took a mutable view or raw pointer, after which the
    /// marks may miss writes: the next reset reads the page tables.
    untracked: std::sync::atomic::AtomicBool,
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
            image_id: None,
            blind_resets: 0,
            marks: None,
            untracked: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Wraps a leased pool slot as its last memory left it: `committed`
    /// bytes accessible and zero except where `image` is mapped (reading
    /// the image); everything above inaccessible and zero. Dropping the
    /// reservation resets the contents and returns the slot.
    pub(crate) fn new_pooled(pool: Arc<PoolInner>, slot: FreeSlot) -> Reservation {
        let (base_offset, reservation, guard_before, guard_after) = pool.slot_layout(slot.index);
        Reservation {
            storage: Storage::Pooled {
                pool,
                slot: slot.index,
            },
            base_offset,
            reservation,
            guard_before,
            guard_after,
            committed: AtomicUsize::new(slot.committed),
            image: slot.image.as_ref().map(|i| (i.offset(), i.len())),
            image_id: slot.image,
            blind_resets: slot.blind_resets,
            marks: slot.marks,
            untracked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Gives an owned reservation write marks for a memory of at most
    /// `max_bytes`.
    pub(crate) fn add_marks(&mut self, max_bytes: usize) -> std::io::Result<()> {
        self.marks = Some(crate::marks::WriteMarks::new(max_bytes)?);
        Ok(())
    }

    /// Moves `old`'s marks and untracked state here (a memory that moved).
    pub(crate) fn take_marks_from(&mut self, old: &mut Reservation) {
        self.marks = old.marks.take();
        self.untracked = std::sync::atomic::AtomicBool::new(old.untracked.load(Ordering::Relaxed));
    }

    /// The write marks' first byte, or null.
    pub(crate) fn marks_ptr(&self) -> *mut u8 {
        self.marks
            .as_ref()
            .map_or(std::ptr::null_mut(), crate::marks::WriteMarks::ptr)
    }

    /// Records that writes may have bypassed the marks (a mutable view or a
    /// raw pointer was handed out).
    pub(crate) fn set_untracked(&self) {
        if self.marks.is_some() {
            self.untracked.store(true, Ordering::Relaxed);
        }
    }

    /// The written pages as the marks tell them (`None` if there are no
    /// marks or they may have missed writes); clears the marks either way.
    fn take_marks(&mut self) -> Option<Vec<(usize, usize)>> {
        let committed = self.committed();
        let untracked = self.untracked.swap(false, Ordering::Relaxed);
        let marks = self.marks.as_mut()?;
        if untracked {
            marks.clear(committed);
            return None;
        }
        let mut ranges = Vec::new();
        marks.take(committed, crate::sys::host_page_size(), &mut ranges);
        Some(ranges)
    }

    /// Removes any mapped image and makes the whole range inaccessible and
    /// zero again (a pool slot about to hold a memory of another image).
    ///
    /// # Safety
    /// No reference into the range may be live.
    pub(crate) unsafe fn drop_image(&mut self) -> std::io::Result<()> {
        if self.image.is_none() {
            return Ok(());
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.reset_fully() }
    }

    /// Back to the state of a fresh slot: no image, nothing accessible,
    /// all zero.
    ///
    /// # Safety
    /// No reference into the range may be live.
    unsafe fn reset_fully(&mut self) -> std::io::Result<()> {
        #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
        if let Some((start, len)) = self.image {
            // SAFETY: inside this reservation; unreferenced (caller).
            unsafe {
                self.backing().unmap_file(self.base_offset + start, len)?;
            }
        }
        let committed = self.committed();
        if let Some(m) = self.marks.as_mut() {
            m.clear(committed);
        }
        // SAFETY: as above.
        unsafe { self.backing().reset(self.base_offset, committed, 0)? };
        self.committed.store(0, Ordering::Relaxed);
        self.image = None;
        self.image_id = None;
        Ok(())
    }

    /// Makes everything above `len` (rounded up to host pages)
    /// inaccessible; its contents must already be zero.
    ///
    /// # Safety
    /// No reference into the range may be live.
    pub(crate) unsafe fn decommit_beyond(&mut self, len: usize) -> std::io::Result<()> {
        let target = round_up_to_host_page(len).unwrap_or(self.reservation);
        let committed = self.committed();
        if committed > target {
            // SAFETY: inside this reservation; unreferenced (caller).
            unsafe {
                self.backing()
                    .protect_none(self.base_offset + target, committed - target)?;
            }
            self.committed.store(target, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A pool slot's reset for reuse: contents back to zero (and the image
    /// where one is mapped), protection kept. `Err` if it failed or several
    /// images were mapped (the caller then resets fully).
    ///
    /// # Safety
    /// No reference into the range may be live.
    unsafe fn clear_for_reuse(&mut self, keep: usize) -> std::io::Result<()> {
        let committed = self.committed();
        let marked = self.take_marks();
        let (img_start, img_end) = match (&self.image, &self.image_id) {
            (Some((s, l)), Some(_)) => (*s, s + l),
            (None, _) => (committed, committed),
            (Some(_), None) => return Err(std::io::Error::other("several images")),
        };
        #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
        if keep > 0 {
            // SAFETY: forwarded from the caller.
            if let Some(done) = unsafe { self.restore_written(keep, img_start, img_end, marked) } {
                return done;
            }
        }
        #[cfg(not(all(target_os = "linux", not(any(all(test, loom), miri)))))]
        drop(marked);
        let b = self.backing();
        if keep == 0 {
            // One call drops every page: anonymous ones read zero again,
            // the image's read the image again.
            // SAFETY: inside this reservation and committed; unreferenced
            // (caller).
            return unsafe { b.clear(self.base_offset, committed, 0) };
        }
        // SAFETY: (all three calls) inside this reservation and committed;
        // unreferenced (caller). Image pages are only dropped (they read
        // the image again), never zeroed in place.
        unsafe {
            b.clear(self.base_offset, img_start, keep)?;
            b.clear(self.base_offset + img_start, img_end - img_start, 0)?;
            b.clear(
                self.base_offset + img_end,
                committed - img_end,
                keep.saturating_sub(img_end),
            )
        }
    }

    /// The resident reset: the pages that hold private data (written since
    /// they were mapped, see `dirty`) get their initial contents back in
    /// place — the image's bytes inside the image, zero elsewhere — up to
    /// `keep` bytes of them in address order; the rest are dropped. Pages
    /// never written are left alone (they still read zero or the image).
    /// So a slot keeps at most `keep` bytes of private pages, and the next
    /// memory in it finds its working set mapped: no page faults.
    ///
    /// Asking the kernel which pages were written costs about half as much
    /// per page as restoring it (profiled on `cargo bench -p weft --bench
    /// serving`'s dirty-all shape), which only pays when few were. So when a scan finds at
    /// least three quarters of a slot written and the whole slot fits in
    /// `keep`, the next [`BLIND_RESETS`] resets restore every committed
    /// page without a scan; then a scan checks again.
    ///
    /// `marked`: the written pages as the write marks tell them, if they
    /// can (then neither the scan nor the blind resets are needed).
    ///
    /// `None` if the page tables cannot be read (the caller then uses the
    /// plain reset).
    ///
    /// # Safety
    /// No reference into the range may be live.
    #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
    unsafe fn restore_written(
        &mut self,
        keep: usize,
        img_start: usize,
        img_end: usize,
        marked: Option<Vec<(usize, usize)>>,
    ) -> Option<std::io::Result<()>> {
        /// Resets that skip the scan after one found the slot mostly
        /// written.
        const BLIND_RESETS: u8 = 15;
        let committed = self.committed();
        let page = crate::sys::host_page_size();
        let keep = keep & !(page - 1);
        let mut ranges = Vec::new();
        if let Some(marked) = marked {
            ranges = marked;
        } else if self.blind_resets > 0 && committed <= keep {
            self.blind_resets -= 1;
            ranges.push((0, committed));
        } else {
            self.blind_resets = 0;
            crate::dirty::written_ranges(self.base(), committed, &mut ranges).ok()?;
            let written: usize = ranges.iter().map(|r| r.1).sum();
            if committed <= keep && written >= committed / 4 * 3 && written > 0 {
                self.blind_resets = BLIND_RESETS;
            }
        }
        // SAFETY: forwarded from the caller.
        Some(unsafe { self.restore_ranges(&ranges, keep, img_start, img_end) })
    }

    /// Restores `ranges` (relative to the base, within the committed part)
    /// to the initial contents, copying or zeroing up to `budget` bytes in
    /// place and dropping the rest.
    ///
    /// # Safety
    /// No reference into the range may be live.
    #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
    unsafe fn restore_ranges(
        &self,
        ranges: &[(usize, usize)],
        mut budget: usize,
        img_start: usize,
        img_end: usize,
    ) -> std::io::Result<()> {
        let committed = self.committed();
        for &(off, len) in ranges {
            let end = (off + len).min(committed);
            // Split at the image's bounds: each piece is all image or all
            // zero.
            let mut at = off;
            while at < end {
                let in_image = at >= img_start && at < img_end;
                let piece_end = if in_image {
                    end.min(img_end)
                } else if at < img_start {
                    end.min(img_start)
                } else {
                    end
                };
                let restore = (piece_end - at).min(budget);
                budget -= restore;
                // SAFETY: `at .. piece_end` is committed (so read-write) and
                // inside this reservation; nothing refers into it (caller).
                let dst = unsafe { std::slice::from_raw_parts_mut(self.base().add(at), restore) };
                match (&self.image_id, in_image) {
                    (Some(image), true) => image.read_into(at - img_start, dst)?,
                    _ => dst.fill(0),
                }
                // SAFETY: as above.
                unsafe {
                    self.backing().clear(
                        self.base_offset + at + restore,
                        piece_end - at - restore,
                        0,
                    )?
                };
                at = piece_end;
            }
        }
        Ok(())
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
            let single = match (&self.image, &self.image_id) {
                (None, _) => true,
                (Some(_), Some(id)) => id.same(image),
                (Some(_), None) => false,
            };
            self.image_id = single.then(|| image.clone());
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
            let (pool, index) = (pool.clone(), *slot);
            // SAFETY: we are being dropped, so the memory that owned us is
            // gone together with every borrow of its bytes; the slot is
            // ours alone.
            let kept = unsafe { self.clear_for_reuse(pool.keep_resident()) };
            // Otherwise start over: no image, nothing accessible.
            // SAFETY: as above.
            if kept.is_ok() || unsafe { self.reset_fully() }.is_ok() {
                pool.release(FreeSlot {
                    index,
                    committed: self.committed(),
                    image: self.image_id.take(),
                    blind_resets: self.blind_resets,
                    marks: self.marks.take(),
                });
            } else {
                pool.quarantine();
            }
        }
        // Owned: the Backing's own Drop unmaps everything.
    }
}
