//! Address-space reservation: the only code that talks to the OS.
//!
//! A [`Backing`] is a host-page-aligned range of address space that starts out
//! inaccessible (`PROT_NONE`). Sub-ranges are made read-write with
//! [`Backing::make_accessible`] and returned to the zeroed, inaccessible state
//! with [`Backing::reset`]. Dropping a `Backing` releases the whole range.
//!
//! Two implementations exist:
//!
//! * **region** (the unix platforms `region` supports: Linux, the BSDs,
//!   macOS, ...): `region::alloc(NONE)` reserves,
//!   `region::protect(READ_WRITE)` commits, dropping the allocation releases.
//!   Zeroing for reuse is the one raw system call (`region` has none):
//!   `madvise(MADV_DONTNEED)` on Linux, writing zeros elsewhere
//!   (see `zero_pages`).
//! * **heap** (loom models, Miri, and Windows, where `region::alloc` commits
//!   what it reserves, so a 4 GiB reservation per memory would count in full
//!   against the commit limit): one zeroed heap allocation, no guard pages
//!   (`guard_pages_supported()` is false). Nothing faults, so under loom every granule carries a
//!   loom-tracked cell recording whether it is accessible; every host access
//!   first calls [`Backing::check_accessible`], which reads those cells. loom
//!   then reports any access whose "make accessible" write does not
//!   happen-before it, which is exactly an access that could fault for real.

use std::io;
use std::ptr::NonNull;

// `heap_backing!`/`mmap_backing!` keep the items of exactly one
// implementation, chosen by cfg.
#[cfg(any(all(test, loom), miri, not(unix)))]
macro_rules! heap_backing {
    ($($item:item)*) => { $($item)* };
}
#[cfg(not(any(all(test, loom), miri, not(unix))))]
macro_rules! heap_backing {
    ($($item:item)*) => {};
}
#[cfg(not(any(all(test, loom), miri, not(unix))))]
macro_rules! mmap_backing {
    ($($item:item)*) => { $($item)* };
}
#[cfg(any(all(test, loom), miri, not(unix)))]
macro_rules! mmap_backing {
    ($($item:item)*) => {};
}

/// The host page size: the granularity of reservation and protection.
pub(crate) fn host_page_size() -> usize {
    #[cfg(all(test, loom))]
    {
        // Tiny "pages" keep the loom models small.
        8
    }
    #[cfg(all(not(all(test, loom)), any(miri, not(unix))))]
    {
        4096
    }
    #[cfg(not(any(all(test, loom), miri, not(unix))))]
    {
        use std::sync::OnceLock;
        static SIZE: OnceLock<usize> = OnceLock::new();
        *SIZE.get_or_init(|| {
            let size = region::page::size();
            if size.is_power_of_two() { size } else { 4096 }
        })
    }
}

/// Rounds `n` up to a multiple of the host page size; `None` on overflow.
pub(crate) fn round_up_to_host_page(n: usize) -> Option<usize> {
    let page = host_page_size();
    n.checked_add(page - 1).map(|v| v & !(page - 1))
}

/// A reserved range of address space (see the module docs).
///
/// Invariants: `ptr` is aligned to the host page size, `len` is a non-zero
/// multiple of it, and `ptr..ptr + len` is owned by this value until drop.
pub(crate) struct Backing {
    ptr: NonNull<u8>,
    len: usize,
    /// The reservation; dropping it releases the address space.
    #[cfg(not(any(all(test, loom), miri, not(unix))))]
    #[allow(dead_code, reason = "held for its drop")]
    alloc: Reservation,
    #[cfg(all(test, loom))]
    accessible: Box<[loom::cell::UnsafeCell<bool>]>,
}

// SAFETY: a Backing is an owned address range with no thread affinity; the
// types that hand out access to its bytes (LinearMemory, SharedMemory) carry
// the aliasing discipline.
unsafe impl Send for Backing {}
// SAFETY: every `&self` method either only reads the immutable `ptr`/`len`
// or performs a system call that the kernel serialises; callers serialise
// `make_accessible`/`reset` on overlapping ranges themselves (grow lock or
// `&mut`).
unsafe impl Sync for Backing {}

impl Backing {
    /// The first byte of the range.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn debug_check_range(&self, start: usize, len: usize) {
        debug_assert!(start.is_multiple_of(host_page_size()), "unaligned start");
        debug_assert!(len.is_multiple_of(host_page_size()), "unaligned length");
        debug_assert!(start.checked_add(len).is_some_and(|end| end <= self.len));
    }
}

mmap_backing! {
    impl Backing {
        /// Reserves `len` bytes of inaccessible address space through
        /// `region` (an anonymous private mapping with no access; Linux does
        /// not count such a mapping against the commit limit until parts of
        /// it become writable, so a 4 GiB + guard reservation per memory is
        /// cheap).
        pub(crate) fn reserve(len: usize) -> io::Result<Backing> {
            debug_assert!(len > 0 && len.is_multiple_of(host_page_size()));
            let alloc = Reservation::new(len)?;
            let Some(ptr) = NonNull::new(alloc.ptr()) else {
                return Err(io::Error::other("the reservation is at the null address"));
            };
            Ok(Backing { ptr, len, alloc })
        }

        /// Makes `[start, start + len)` readable and writable.
        pub(crate) fn make_accessible(&self, start: usize, len: usize) -> io::Result<()> {
            self.debug_check_range(start, len);
            if len == 0 {
                return Ok(());
            }
            // SAFETY: the range lies within this reservation (checked above)
            // and is only ever given more access here; nothing else maps it.
            unsafe {
                region::protect(
                    self.ptr.as_ptr().add(start).cast_const(),
                    len,
                    region::Protection::READ_WRITE,
                )
            }
            .map_err(region_error)
        }

        /// Returns `[start, start + len)` to zeroed and inaccessible. The
        /// first `keep` bytes' pages that are resident stay resident (zeroed
        /// by hand rather than dropped), so reusing them does not fault.
        ///
        /// # Safety
        /// No reference into the range may be live (its contents vanish).
        pub(crate) unsafe fn reset(&self, start: usize, len: usize, keep: usize) -> io::Result<()> {
            // SAFETY: forwarded from the caller (the range is accessible
            // until `protect_none`, and unreferenced).
            unsafe {
                self.clear(start, len, keep)?;
                self.protect_none(start, len)
            }
        }

        /// Returns `[start, start + len)` to its initial contents without
        /// changing its protection: anonymous pages read as zero again (the
        /// first `keep` bytes' resident pages zeroed in place), pages of a
        /// private file mapping read the file again.
        ///
        /// # Safety
        /// The range is accessible and no reference into it is live.
        pub(crate) unsafe fn clear(&self, start: usize, len: usize, keep: usize) -> io::Result<()> {
            self.debug_check_range(start, len);
            if len == 0 {
                return Ok(());
            }
            // SAFETY: within the reservation (checked above).
            let addr = unsafe { self.ptr.as_ptr().add(start) };
            let keep = keep.min(len) & !(host_page_size() - 1);
            // SAFETY: accessible and unreferenced (caller).
            unsafe { zero_resident(addr, keep) };
            // SAFETY: within the range (keep <= len).
            zero_pages(unsafe { addr.add(keep) }, len - keep)
        }

        /// Makes `[start, start + len)` inaccessible (its contents must
        /// already be zero: see [`clear`](Self::clear)).
        ///
        /// # Safety
        /// No reference into the range may be live.
        pub(crate) unsafe fn protect_none(&self, start: usize, len: usize) -> io::Result<()> {
            self.debug_check_range(start, len);
            if len == 0 {
                return Ok(());
            }
            // SAFETY: within the reservation (checked above).
            let addr = unsafe { self.ptr.as_ptr().add(start) };
            // SAFETY: as above; the caller guarantees nothing refers into
            // the range any more.
            unsafe { region::protect(addr.cast_const(), len, region::Protection::NONE) }
                .map_err(region_error)
        }

        #[inline(always)]
        pub(crate) fn check_accessible(&self, _start: usize, _len: usize) {}

        /// Maps `fd` (from offset 0) private and read-write over
        /// `[start, start + len)`, replacing what was there.
        ///
        /// # Safety
        /// No reference into the range may be live.
        #[cfg(target_os = "linux")]
        pub(crate) unsafe fn map_file(
            &self,
            start: usize,
            len: usize,
            fd: std::os::fd::RawFd,
        ) -> io::Result<()> {
            self.debug_check_range(start, len);
            // SAFETY: MAP_FIXED inside our own reservation (checked above):
            // it replaces only pages this Backing owns; the caller
            // guarantees nothing refers into them.
            let p = unsafe {
                libc::mmap(
                    self.ptr.as_ptr().add(start).cast(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    fd,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// Puts fresh anonymous, inaccessible, zero pages over `[start,
        /// start + len)` (undoing [`map_file`](Self::map_file)).
        ///
        /// # Safety
        /// No reference into the range may be live.
        #[cfg(target_os = "linux")]
        pub(crate) unsafe fn unmap_file(&self, start: usize, len: usize) -> io::Result<()> {
            self.debug_check_range(start, len);
            // SAFETY: as in `map_file`.
            let p = unsafe {
                libc::mmap(
                    self.ptr.as_ptr().add(start).cast(),
                    len,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }

    /// The reserved address space, released on drop.
    ///
    /// On Linux the reservation is an `mmap(PROT_NONE, MAP_NORESERVE)` made
    /// here, because `region::alloc` cannot pass `MAP_NORESERVE`: without it
    /// the kernel charges every `mprotect` to writable against the commit
    /// limit, which measured 18 % slower `memory.grow` (`cargo bench -p
    /// weft-memory`, grow_linear 963 µs vs 814 µs per 1024 pages). Everywhere
    /// else it is a `region::Allocation`.
    pub(crate) struct Reservation {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        ptr: *mut u8,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        len: usize,
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        alloc: region::Allocation,
    }

    impl Reservation {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        fn new(len: usize) -> io::Result<Reservation> {
            // SAFETY: a fresh private anonymous mapping with no access,
            // owned by the returned value and unmapped in its drop.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(Reservation {
                ptr: ptr.cast(),
                len,
            })
        }

        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        fn new(len: usize) -> io::Result<Reservation> {
            let alloc = region::alloc(len, region::Protection::NONE).map_err(region_error)?;
            Ok(Reservation { alloc })
        }

        fn ptr(&self) -> *mut u8 {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                self.ptr
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            {
                self.alloc.as_ptr::<u8>().cast_mut()
            }
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    impl Drop for Reservation {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, released once; its owner
            // (`Backing`) is being dropped, so nothing refers into it.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }

    /// Zeroes the resident pages of the accessible `[addr, addr + len)`
    /// in place (non-resident ones already read as zero and are left
    /// alone, so this never makes a page resident).
    ///
    /// # Safety
    /// The range is accessible, page-aligned and unreferenced.
    unsafe fn zero_resident(addr: *mut u8, len: usize) {
        if len == 0 {
            return;
        }
        let page = host_page_size();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let mut resident = vec![0u8; len / page];
            // SAFETY: `resident` has one byte per page of the range.
            let rc = unsafe { libc::mincore(addr.cast(), len, resident.as_mut_ptr()) };
            if rc == 0 {
                for (i, r) in resident.iter().enumerate() {
                    if r & 1 != 0 {
                        // SAFETY: page `i` of the accessible range (caller).
                        unsafe { std::ptr::write_bytes(addr.add(i * page), 0, page) };
                    }
                }
                return;
            }
        }
        // SAFETY: the caller's range.
        unsafe { std::ptr::write_bytes(addr, 0, len) };
    }

    /// Zeroes pages that are accessible. `region` has no "discard pages"
    /// call, so this is the one raw system call of the crate, in one place:
    /// on Linux, `madvise(MADV_DONTNEED)` drops the pages (they read as zero
    /// again and stop using memory); elsewhere they are zeroed by hand.
    fn zero_pages(addr: *mut u8, len: usize) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: `addr..addr + len` is a page-aligned part of a
            // private anonymous mapping that this crate owns.
            let rc = unsafe { libc::madvise(addr.cast(), len, libc::MADV_DONTNEED) };
            if rc == 0 {
                return Ok(());
            }
            Err(io::Error::last_os_error())
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            // SAFETY: the caller made the range accessible before (only
            // accessible ranges are reset) and nothing refers into it.
            unsafe {
                region::protect(addr.cast_const(), len, region::Protection::READ_WRITE)
                    .map_err(region_error)?;
                std::ptr::write_bytes(addr, 0, len);
            }
            Ok(())
        }
    }

    fn region_error(e: region::Error) -> io::Error {
        match e {
            region::Error::SystemCall(e) => e,
            other => io::Error::other(other.to_string()),
        }
    }
}

heap_backing! {
    impl Backing {
        fn layout(len: usize) -> io::Result<std::alloc::Layout> {
            std::alloc::Layout::from_size_align(len, host_page_size())
                .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))
        }

        /// Reserves `len` bytes (a non-zero multiple of the host page size),
        /// here as one zeroed heap allocation.
        pub(crate) fn reserve(len: usize) -> io::Result<Backing> {
            debug_assert!(len > 0 && len.is_multiple_of(host_page_size()));
            let layout = Self::layout(len)?;
            // SAFETY: layout has non-zero size (len > 0).
            let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
            let Some(ptr) = NonNull::new(ptr) else {
                return Err(io::Error::from(io::ErrorKind::OutOfMemory));
            };
            Ok(Backing {
                ptr,
                len,
                #[cfg(all(test, loom))]
                accessible: (0..len / host_page_size())
                    .map(|_| loom::cell::UnsafeCell::new(false))
                    .collect(),
            })
        }

        /// Marks `start..start + len` accessible (heap memory always is; under
        /// loom this writes the tracking cells).
        pub(crate) fn make_accessible(&self, start: usize, len: usize) -> io::Result<()> {
            self.debug_check_range(start, len);
            #[cfg(all(test, loom))]
            for cell in &self.accessible[start / host_page_size()..(start + len) / host_page_size()] {
                // SAFETY: the write through the loom cell is tracked by loom;
                // the pointer is valid for the cell's lifetime.
                cell.with_mut(|p| unsafe { *p = true });
            }
            Ok(())
        }

        /// Zeroes `start..start + len` and marks it inaccessible.
        ///
        /// # Safety
        ///
        /// No reference into the range may be live, and no other thread may
        /// access it concurrently.
        /// Zeroes `start..start + len` (the heap has no protection to keep).
        ///
        /// # Safety
        /// No reference into the range may be live, and no other thread may
        /// access it concurrently.
        pub(crate) unsafe fn clear(&self, start: usize, len: usize, _keep: usize) -> io::Result<()> {
            self.debug_check_range(start, len);
            // SAFETY: in range of our allocation; the caller guarantees no
            // concurrent access or live reference.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(start), 0, len) };
            Ok(())
        }

        /// Marks `start..start + len` inaccessible (contents already zero).
        ///
        /// # Safety
        /// As for [`reset`](Self::reset).
        pub(crate) unsafe fn protect_none(&self, start: usize, len: usize) -> io::Result<()> {
            // SAFETY: forwarded; zeroing zeros again is harmless.
            unsafe { self.reset(start, len, 0) }
        }

        pub(crate) unsafe fn reset(&self, start: usize, len: usize, _keep: usize) -> io::Result<()> {
            self.debug_check_range(start, len);
            // SAFETY: in range of our allocation; the caller guarantees no
            // concurrent access or live reference.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(start), 0, len) };
            #[cfg(all(test, loom))]
            for cell in &self.accessible[start / host_page_size()..(start + len) / host_page_size()] {
                // SAFETY: tracked by loom; pointer valid for the cell's life.
                cell.with_mut(|p| unsafe { *p = false });
            }
            Ok(())
        }

        /// Under loom, asserts (through loom-tracked reads) that every granule
        /// of `start..start + len` has been made accessible and that making
        /// it so happens-before this access. Elsewhere a no-op.
        #[inline(always)]
        pub(crate) fn check_accessible(&self, _start: usize, _len: usize) {
            #[cfg(all(test, loom))]
            if _len > 0 {
                let page = host_page_size();
                for cell in &self.accessible[_start / page..=(_start + _len - 1) / page] {
                    // SAFETY: tracked read through the loom cell.
                    let ok = cell.with(|p| unsafe { *p });
                    assert!(ok, "weft-memory: access to an inaccessible page");
                }
            }
        }
    }

    impl Drop for Backing {
        fn drop(&mut self) {
            if let Ok(layout) = Self::layout(self.len) {
                // SAFETY: allocated in `reserve` with this same layout.
                unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
            }
        }
    }
}
