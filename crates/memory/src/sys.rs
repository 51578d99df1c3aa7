//! Address-space reservation: the only code that talks to the OS.
//!
//! A [`Backing`] is a host-page-aligned range of address space that starts out
//! inaccessible (`PROT_NONE`). Sub-ranges are made read-write with
//! [`Backing::make_accessible`] and returned to the zeroed, inaccessible state
//! with [`Backing::reset`]. Dropping a `Backing` releases the whole range.
//!
//! Two implementations exist:
//!
//! * **mmap** (unix, the default): `mmap(PROT_NONE, MAP_NORESERVE)` reserves,
//!   `mprotect(PROT_READ|PROT_WRITE)` commits, `madvise(MADV_DONTNEED)` (Linux)
//!   or a fresh `MAP_FIXED` mapping (other unix) zeroes, `munmap` releases.
//! * **heap** (loom models, Miri and non-unix hosts): one zeroed heap
//!   allocation. Nothing faults, so under loom every granule carries a
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
            // SAFETY: sysconf has no memory-safety preconditions.
            let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            usize::try_from(size)
                .ok()
                .filter(|s| s.is_power_of_two())
                .unwrap_or(4096)
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
        /// Reserves `len` bytes (a non-zero multiple of the host page size)
        /// of inaccessible address space.
        pub(crate) fn reserve(len: usize) -> io::Result<Backing> {
            debug_assert!(len > 0 && len.is_multiple_of(host_page_size()));
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let flags = libc::MAP_PRIVATE | libc::MAP_ANON;
            // SAFETY: a fresh anonymous mapping with a null hint cannot alias
            // any existing Rust object; failure is reported as MAP_FAILED.
            let ptr = unsafe {
                libc::mmap(std::ptr::null_mut(), len, libc::PROT_NONE, flags, -1, 0)
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let Some(ptr) = NonNull::new(ptr.cast::<u8>()) else {
                return Err(io::Error::other("mmap returned the null address"));
            };
            Ok(Backing { ptr, len })
        }

        /// Makes `start..start + len` (host-page aligned, in range) readable
        /// and writable. Pages that were already accessible keep their
        /// contents.
        pub(crate) fn make_accessible(&self, start: usize, len: usize) -> io::Result<()> {
            self.debug_check_range(start, len);
            if len == 0 {
                return Ok(());
            }
            // SAFETY: the range lies inside our own mapping (checked above in
            // debug builds, guaranteed by every caller), so changing its
            // protection cannot affect memory owned by anyone else; making
            // pages *more* accessible never invalidates existing references.
            let rc = unsafe {
                libc::mprotect(
                    self.ptr.as_ptr().add(start).cast(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
        }

        /// Zeroes `start..start + len` and makes it inaccessible again.
        ///
        /// # Safety
        ///
        /// No reference into the range may be live, and no other thread may
        /// access it concurrently (its contents vanish and accesses fault).
        pub(crate) unsafe fn reset(&self, start: usize, len: usize) -> io::Result<()> {
            self.debug_check_range(start, len);
            if len == 0 {
                return Ok(());
            }
            // SAFETY: in range (see make_accessible); the caller guarantees
            // nobody observes the range while it is discarded.
            let addr = unsafe { self.ptr.as_ptr().add(start) };
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                // SAFETY: as above; MADV_DONTNEED on a private anonymous
                // mapping drops the pages, so they read back as zero.
                let rc = unsafe { libc::madvise(addr.cast(), len, libc::MADV_DONTNEED) };
                if rc == 0 {
                    // SAFETY: as above; only our own range changes protection.
                    let rc = unsafe { libc::mprotect(addr.cast(), len, libc::PROT_NONE) };
                    if rc == 0 {
                        return Ok(());
                    }
                }
            }
            // Portable path (and Linux fallback): atomically replace the range
            // by a fresh inaccessible anonymous mapping, which is zero-filled.
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED;
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let flags = libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_FIXED;
            // SAFETY: MAP_FIXED over a range we own replaces only our pages.
            let ptr = unsafe { libc::mmap(addr.cast(), len, libc::PROT_NONE, flags, -1, 0) };
            if ptr == libc::MAP_FAILED {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }

        /// Under loom, asserts that the range is accessible; a no-op here
        /// (the MMU checks for real).
        #[inline(always)]
        pub(crate) fn check_accessible(&self, _start: usize, _len: usize) {}
    }

    impl Drop for Backing {
        fn drop(&mut self) {
            // SAFETY: we own the mapping and no borrow of it can outlive self.
            // munmap of a valid mapping only fails for invalid arguments; there
            // is nothing useful to do about a failure in drop.
            unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.len);
            }
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
        pub(crate) unsafe fn reset(&self, start: usize, len: usize) -> io::Result<()> {
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
