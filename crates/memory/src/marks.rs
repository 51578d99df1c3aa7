//! Write marks: one byte per 4 KiB of a memory, set by whoever writes it,
//! so that a pool slot's reset knows which pages to restore without asking
//! the kernel (see [`MemoryDefinition::marks`](crate::MemoryDefinition)).
//!
//! Compiled code marks after every store that succeeded: it writes the
//! 16-bit value `0x0101` at `marks + ((index + offset) >> 12)`, marking the
//! page the access starts in and the next one (an access of at most 16
//! bytes reaches no further), in one instruction. So the map holds one
//! byte per 4 KiB page of the largest memory that can live there, plus one
//! for the page after the last. Host writes that go through the memory's
//! own methods mark exactly the pages they wrote; a host that takes a
//! mutable view or a raw pointer makes the memory *untracked* until its
//! next reset, which then reads the page tables instead.

use std::io;

use crate::sys::{Backing, round_up_to_host_page};

/// log2 of the bytes one mark covers.
pub const MARK_SHIFT: u32 = 12;

/// A memory's write marks (zero: not written since the last reset).
pub(crate) struct WriteMarks {
    backing: Backing,
    /// Marks in use: one per 4 KiB of the largest memory, plus one.
    len: usize,
}

impl WriteMarks {
    /// Marks for a memory that never exceeds `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> io::Result<WriteMarks> {
        let len = (max_bytes >> MARK_SHIFT) + 2;
        let bytes =
            round_up_to_host_page(len).ok_or_else(|| io::Error::other("marks too large"))?;
        let backing = Backing::reserve(bytes)?;
        backing.make_accessible(0, bytes)?;
        Ok(WriteMarks { backing, len })
    }

    /// The first mark, for [`MemoryDefinition`](crate::MemoryDefinition).
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.backing.as_ptr()
    }

    /// The marks of a memory of `committed` bytes (a multiple of 4 KiB):
    /// one per page, plus the one after the last (which a write to the
    /// last page may set).
    fn used(&mut self, committed: usize) -> &mut [u8] {
        let n = ((committed >> MARK_SHIFT) + 1).min(self.len);
        // SAFETY: the first `len` bytes are mapped read-write for our
        // life; `&mut self` means the memory they belong to is gone or
        // being reset, so nothing writes them concurrently.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), n) }
    }

    /// Appends the marked pages of the first `committed` bytes as
    /// `(offset, length)` ranges, widened to host pages, in address order;
    /// clears every mark.
    pub(crate) fn take(
        &mut self,
        committed: usize,
        host_page: usize,
        out: &mut Vec<(usize, usize)>,
    ) {
        /// Marks checked at once for being all clear (a vectorised OR).
        const CHUNK: usize = 64;
        let marks = self.used(committed);
        let pages = committed >> MARK_SHIFT;
        let mut p = 0;
        while p < pages {
            if p + CHUNK <= pages && marks[p..p + CHUNK].iter().fold(0, |a, &b| a | b) == 0 {
                p += CHUNK;
                continue;
            }
            if marks[p] == 0 {
                p += 1;
                continue;
            }
            let start = p;
            while p < pages && marks[p] != 0 {
                p += 1;
            }
            // Cleared run by run: most of the marks are clear already.
            marks[start..p].fill(0);
            let s = (start << MARK_SHIFT) & !(host_page - 1);
            let e = ((p << MARK_SHIFT) + host_page - 1) & !(host_page - 1);
            let e = e.min(committed);
            match out.last_mut() {
                Some((ls, ll)) if *ls + *ll >= s => *ll = (*ll).max(e - *ls),
                _ => out.push((s, e - s)),
            }
        }
        // The mark after the last page (set by a write to the last page).
        if let Some(last) = marks.get_mut(pages) {
            *last = 0;
        }
    }

    /// Clears every mark of a memory of `committed` bytes.
    pub(crate) fn clear(&mut self, committed: usize) {
        self.used(committed).fill(0);
    }
}
