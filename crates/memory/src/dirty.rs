//! Which pages of a pool slot hold data of their own (Linux).
//!
//! A slot's pages are private mappings: anonymous zero pages, or a memory
//! image's file mapped copy-on-write. A page that was never written is
//! either not mapped at all, the shared zero page, or the image file's own
//! page; the first write to it gives it a private anonymous copy. So the
//! pages whose contents may differ from the slot's initial state are
//! exactly the private anonymous ones (present, or swapped out), and the
//! kernel reports those without touching them:
//!
//! * `PAGEMAP_SCAN` (an `ioctl` on `/proc/self/pagemap`, Linux 6.7+) walks
//!   the page tables and returns just the matching ranges, in one call for
//!   a typical slot;
//! * elsewhere, reading `/proc/self/pagemap` gives one 64-bit entry per
//!   page ("present", "swapped", "file page"); it cannot tell the shared
//!   zero page from a written page, so zero pages that were only read count
//!   as written there (restoring them is harmless, just not free).
//!
//! A pool then restores those pages in place (copying the image or zeroing)
//! instead of dropping them, and the next memory in the slot does not fault
//! them in again.

use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::fs::FileExt;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

use crate::sys::host_page_size;

/// `/proc/self/pagemap`, opened once per process (-1: not open). After a
/// `fork` an inherited descriptor would still describe the parent's pages,
/// so a `pthread_atfork` child handler closes it and the child opens its
/// own on first use.
static PAGEMAP: AtomicI32 = AtomicI32::new(-1);

extern "C" fn forget_in_child() {
    let fd = PAGEMAP.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: our own descriptor, which nothing in the child uses yet
        // (only the forking thread exists); `close` is async-signal-safe.
        unsafe { libc::close(fd) };
    }
}

/// The pagemap descriptor, borrowed as a `File` that is never dropped.
fn pagemap() -> io::Result<ManuallyDrop<File>> {
    static AT_FORK: Once = Once::new();
    let mut fd = PAGEMAP.load(Ordering::Acquire);
    if fd < 0 {
        AT_FORK.call_once(|| {
            // SAFETY: registers a handler that only touches an atomic and
            // closes a descriptor (async-signal-safe work).
            unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
        });
        // `File::open` sets O_CLOEXEC: the descriptor never leaks into a
        // program a host function might start.
        let opened = File::open("/proc/self/pagemap")?.into_raw_fd();
        fd = match PAGEMAP.compare_exchange(-1, opened, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => opened,
            Err(winner) => {
                // SAFETY: `opened` is ours and unused; another thread's
                // descriptor won the race.
                unsafe { libc::close(opened) };
                winner
            }
        };
    }
    // SAFETY: `fd` stays open for the process's life (it is only closed in
    // a forked child, before any other use there); `ManuallyDrop` keeps
    // this `File` from closing it.
    Ok(ManuallyDrop::new(unsafe { File::from_raw_fd(fd) }))
}

// The `PAGEMAP_SCAN` interface (include/uapi/linux/fs.h); not in `libc`.
const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
const PAGE_IS_PFNZERO: u64 = 1 << 5;

#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = (3 << 30)
    | ((std::mem::size_of::<PmScanArg>() as libc::c_ulong) << 16)
    | ((b'f' as libc::c_ulong) << 8)
    | 16;

/// Whether `PAGEMAP_SCAN` works here: 0 not tried yet, 1 yes, 2 no.
static SCAN: AtomicU8 = AtomicU8::new(0);

/// The pages of `[addr, addr + len)` that hold private data (see the
/// module docs), as page-aligned `(offset, length)` ranges relative to
/// `addr`, in address order, appended to `out`.
///
/// `addr` and `len` are host-page aligned and the range is mapped (any
/// protection). Reading the page tables never changes them.
pub(crate) fn written_ranges(
    addr: *const u8,
    len: usize,
    out: &mut Vec<(usize, usize)>,
) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let file = pagemap()?;
    if SCAN.load(Ordering::Relaxed) != 2 {
        match scan(&file, addr as u64, len as u64, out) {
            Ok(()) => {
                SCAN.store(1, Ordering::Relaxed);
                return Ok(());
            }
            // ENOTTY/EINVAL: a kernel without PAGEMAP_SCAN (or without a
            // category we ask for). Remember it and read entries instead.
            Err(e)
                if SCAN.load(Ordering::Relaxed) == 0
                    && matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EINVAL)) =>
            {
                SCAN.store(2, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    read_entries(&file, addr as usize, len, out)
}

fn push(out: &mut Vec<(usize, usize)>, off: usize, len: usize) {
    match out.last_mut() {
        Some((s, l)) if *s + *l == off => *l += len,
        _ => out.push((off, len)),
    }
}

fn scan(file: &File, start: u64, len: u64, out: &mut Vec<(usize, usize)>) -> io::Result<()> {
    let end = start + len;
    let mut regions = [PageRegion::default(); 32];
    let mut from = start;
    let first = out.len();
    while from < end {
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            flags: 0,
            start: from,
            end,
            walk_end: 0,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            max_pages: 0,
            // Private pages: not the file's, not the zero page, and
            // present or swapped out.
            category_inverted: PAGE_IS_FILE | PAGE_IS_PFNZERO,
            category_mask: PAGE_IS_FILE | PAGE_IS_PFNZERO,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        };
        // SAFETY: PAGEMAP_SCAN reads `arg` and writes at most `vec_len`
        // regions into `regions` (live for the call) and `arg.walk_end`; it
        // only reads the page tables of our own process.
        let n = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
        if n < 0 {
            out.truncate(first);
            return Err(io::Error::last_os_error());
        }
        for r in &regions[..(n as usize).min(regions.len())] {
            let (s, e) = (r.start.clamp(start, end), r.end.clamp(start, end));
            if e > s {
                push(out, (s - start) as usize, (e - s) as usize);
            }
        }
        if arg.walk_end <= from {
            // No progress would loop forever; the kernel always advances,
            // but a hostile or buggy answer must not hang a reset.
            out.truncate(first);
            return Err(io::Error::other("PAGEMAP_SCAN made no progress"));
        }
        from = arg.walk_end;
    }
    Ok(())
}

/// The fallback: one pagemap entry per page, read in chunks.
fn read_entries(
    file: &File,
    addr: usize,
    len: usize,
    out: &mut Vec<(usize, usize)>,
) -> io::Result<()> {
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const FILE_PAGE: u64 = 1 << 61;
    let page = host_page_size();
    let pages = len / page;
    let mut buf = vec![0u8; 512 * 8];
    let mut done = 0;
    while done < pages {
        let n = (pages - done).min(512);
        let bytes = &mut buf[..n * 8];
        file.read_exact_at(bytes, ((addr / page + done) * 8) as u64)?;
        for (i, e) in bytes.chunks_exact(8).enumerate() {
            let e = u64::from_ne_bytes(e.try_into().expect("8 bytes"));
            if e & (PRESENT | SWAPPED) != 0 && e & FILE_PAGE == 0 {
                push(out, (done + i) * page, page);
            }
        }
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private anonymous mapping of `pages` pages, unmapped on drop.
    struct Map(*mut u8, usize);
    impl Map {
        fn new(pages: usize) -> Map {
            let len = pages * host_page_size();
            // SAFETY: a fresh private anonymous mapping owned by `Map`.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            Map(p.cast(), len)
        }
    }
    impl Drop for Map {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`.
            unsafe { libc::munmap(self.0.cast(), self.1) };
        }
    }

    fn written(m: &Map, use_scan: bool) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let f = pagemap().unwrap();
        if use_scan {
            scan(&f, m.0 as u64, m.1 as u64, &mut out).unwrap();
        } else {
            read_entries(&f, m.0 as usize, m.1, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn reports_written_pages_only() {
        let page = host_page_size();
        let m = Map::new(16);
        // Write pages 1, 2 and 9; read page 5 (zero page, not written).
        // SAFETY: inside the read-write mapping.
        unsafe {
            m.0.add(page).write_volatile(1);
            m.0.add(2 * page + 7).write_volatile(1);
            m.0.add(9 * page).write_volatile(1);
            std::hint::black_box(m.0.add(5 * page).read_volatile());
        }
        let expected = vec![(page, 2 * page), (9 * page, page)];
        // The portable fallback also reports the page that was only read
        // if the kernel mapped the zero page there; never misses one.
        let fallback = written(&m, false);
        for r in &expected {
            assert!(fallback.contains(r), "{fallback:?} misses {r:?}");
        }
        let mut out = Vec::new();
        written_ranges(m.0, m.1, &mut out).unwrap();
        if SCAN.load(Ordering::Relaxed) == 1 {
            assert_eq!(written(&m, true), expected);
            assert_eq!(out, expected);
        }
        // Dropping the pages makes them unwritten again.
        // SAFETY: our own mapping; nothing refers into it.
        unsafe { libc::madvise(m.0.add(page).cast(), 2 * page, libc::MADV_DONTNEED) };
        let mut out = Vec::new();
        written_ranges(m.0, m.1, &mut out).unwrap();
        assert!(!out.contains(&(page, 2 * page)) && out.contains(&(9 * page, page)));
    }
}
