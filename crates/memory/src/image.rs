//! [`MemoryImage`]: a memory's initial contents, laid out once and mapped
//! copy-on-write into every memory that starts from it.
//!
//! A module's active data segments are the same for every instance, yet
//! copying them costs O(data) per instantiation. An image holds them once,
//! in an anonymous in-memory file (`memfd`) on Linux; applying it to a
//! memory maps that file *private* over the image's page range, so the
//! memory reads the image and its first write to a page copies that page
//! (the kernel's copy-on-write). Applying it costs one `mmap` whatever the
//! data size. Where there is no memfd (other systems, the heap backing, a
//! kernel that refuses it), the image keeps its bytes and applying copies
//! them: the same result, at O(data).

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::sys::{host_page_size, round_up_to_host_page};

/// Images smaller than this are copied rather than mapped.
pub const MIN_MAPPED_IMAGE_BYTES: usize = 64 * 1024;

/// A memory's initial contents (see the module docs). Cheap to clone;
/// `Send + Sync`; immutable once built.
///
/// ```
/// use weft_memory::{LinearMemory, MemoryConfig, MemoryImage};
///
/// let image = MemoryImage::new([(16, &b"hello"[..]), (100_000, &b"world"[..])])?
///     .expect("non-empty");
/// assert!(image.is_mapped() || !cfg!(target_os = "linux"));
/// let mut a = LinearMemory::new(&MemoryConfig::new(2))?;
/// let mut b = LinearMemory::new(&MemoryConfig::new(2))?;
/// a.apply_image(&image)?;
/// b.apply_image(&image)?;
/// a.write(16, b"HELLO")?; // private to `a`
/// assert_eq!(&a.data()[16..21], b"HELLO");
/// assert_eq!(&b.data()[16..21], b"hello");
/// assert_eq!(&b.data()[100_000..100_005], b"world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MemoryImage(Arc<ImageInner>);

struct ImageInner {
    /// Where the image starts in the memory: host-page aligned.
    offset: usize,
    /// Bytes covered: a non-zero host-page multiple.
    len: usize,
    /// One past the last byte any segment wrote: a memory must be at least
    /// this long to take the image.
    data_end: usize,
    /// A sealed memfd of `len` bytes, mapped private by memories.
    #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
    file: Option<std::os::fd::OwnedFd>,
    /// The image's bytes, for memories that copy: kept when there is no
    /// file, and for small images (which a fresh memory copies faster than
    /// it maps; a reused pool slot maps them once and keeps them).
    bytes: Option<Box<[u8]>>,
}

impl fmt::Debug for MemoryImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryImage")
            .field("offset", &self.0.offset)
            .field("len", &self.0.len)
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

impl MemoryImage {
    /// Lays out `segments` (byte offset in the memory, contents), later
    /// ones overwriting earlier ones where they overlap, as wasm's active
    /// data segments do. `Ok(None)` if every segment is empty.
    pub fn new<'a>(
        segments: impl IntoIterator<Item = (usize, &'a [u8])>,
    ) -> Result<Option<MemoryImage>, Error> {
        let too_big = || Error::InvalidConfig("memory image exceeds the address space");
        let segments: Vec<(usize, &[u8])> = segments
            .into_iter()
            .filter(|(_, b)| !b.is_empty())
            .collect();
        let mut start = usize::MAX;
        let mut data_end = 0usize;
        for &(off, bytes) in &segments {
            start = start.min(off);
            data_end = data_end.max(off.checked_add(bytes.len()).ok_or_else(too_big)?);
        }
        if segments.is_empty() {
            return Ok(None);
        }
        let offset = start & !(host_page_size() - 1);
        let end = round_up_to_host_page(data_end).ok_or_else(too_big)?;
        let len = end - offset;
        #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
        let file = Self::file(len, offset, &segments);
        #[cfg(not(all(target_os = "linux", not(any(all(test, loom), miri)))))]
        let file: Option<()> = None;
        // Mapping costs a fresh memory more than copying a few pages
        // (measured with `cargo bench -p weft --bench instantiate`: a
        // 100-byte segment took 23 µs mapped vs 20 µs copied per
        // instantiation), so small images keep their bytes too.
        let bytes = (file.is_none() || len < MIN_MAPPED_IMAGE_BYTES).then(|| {
            let mut bytes = vec![0u8; len].into_boxed_slice();
            for &(off, b) in &segments {
                bytes[off - offset..off - offset + b.len()].copy_from_slice(b);
            }
            bytes
        });
        Ok(Some(MemoryImage(Arc::new(ImageInner {
            offset,
            len,
            data_end,
            #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
            file,
            bytes,
        }))))
    }

    /// A sealed memfd holding the image, or `None` if the system cannot
    /// make one (the caller then keeps the bytes).
    #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
    fn file(
        len: usize,
        offset: usize,
        segments: &[(usize, &[u8])],
    ) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        // SAFETY: memfd_create takes a NUL-terminated name and flags; the
        // returned descriptor (if any) is owned by the `OwnedFd` below.
        let fd = unsafe {
            libc::memfd_create(
                c"weft-memory-image".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        // SAFETY: plain system calls on our own descriptor; each write
        // reads `b.len()` bytes from a live slice.
        unsafe {
            if libc::ftruncate(raw, len as libc::off_t) != 0 {
                return None;
            }
            for &(off, b) in segments {
                let mut done = 0;
                while done < b.len() {
                    let n = libc::pwrite(
                        raw,
                        b[done..].as_ptr().cast(),
                        b.len() - done,
                        (off - offset + done) as libc::off_t,
                    );
                    if n <= 0 {
                        return None;
                    }
                    done += n as usize;
                }
            }
            // Nobody may change the file from here on: a shrink would make
            // mapped memories fault (SIGBUS), a write would change every
            // memory that has not copied the page yet.
            let seals =
                libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
            if libc::fcntl(raw, libc::F_ADD_SEALS, seals) != 0 {
                return None;
            }
        }
        Some(fd)
    }

    /// Whether `self` and `other` are the same image (clones of one).
    pub fn same(&self, other: &MemoryImage) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether a fresh memory maps this image (copy-on-write, O(1) to
    /// apply) rather than copying it. (Pool slots map any image that has a
    /// file, small ones included, and keep it mapped for reuse.)
    pub fn is_mapped(&self) -> bool {
        self.fd_present() && self.0.bytes.is_none()
    }

    /// Whether the image has a file that memories can map.
    pub(crate) fn fd_present(&self) -> bool {
        #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
        return self.0.file.is_some();
        #[cfg(not(all(target_os = "linux", not(any(all(test, loom), miri)))))]
        false
    }

    /// The byte offset in the memory where the image starts (host-page
    /// aligned).
    pub fn offset(&self) -> usize {
        self.0.offset
    }

    /// The bytes the image covers (a host-page multiple); everything in
    /// `offset .. offset + len` that no segment wrote is zero.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// Always false: an image covers at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The smallest memory, in bytes, that can take the image.
    pub fn min_memory_bytes(&self) -> usize {
        self.0.data_end
    }

    /// The descriptor to map, if the image is a file.
    #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
    pub(crate) fn fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.0.file.as_ref().map(|fd| fd.as_raw_fd())
    }

    /// The bytes, if the image is copied rather than mapped.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        self.0.bytes.as_deref()
    }

    /// Copies the image's bytes `at .. at + dst.len()` (relative to the
    /// image's start) into `dst`: from the kept bytes, else read from the
    /// file (the kernel copies from its page cache; nothing is mapped).
    #[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
    pub(crate) fn read_into(&self, at: usize, dst: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let end = at
            .checked_add(dst.len())
            .filter(|&e| e <= self.0.len)
            .ok_or_else(|| std::io::Error::other("read past the image's end"))?;
        if let Some(bytes) = &self.0.bytes {
            dst.copy_from_slice(&bytes[at..end]);
            return Ok(());
        }
        let Some(fd) = &self.0.file else {
            return Err(std::io::Error::other("image has neither bytes nor file"));
        };
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: the descriptor is open for as long as `self` lives, and
        // `ManuallyDrop` keeps this borrowed `File` from closing it.
        let file =
            std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd.as_raw_fd()) });
        file.read_exact_at(dst, at as u64)
    }
}
