//! Growable, shareable, guard-paged linear memory for WebAssembly, usable on
//! its own by any program that needs such a byte region.
//!
//! * [`LinearMemory`]: non-shared, owned by one store; safe slices.
//! * [`SharedMemory`]: `Send + Sync` handle; grows while other threads run;
//!   copy and atomic accessors, `wait32`/`wait64`/`notify`.
//! * [`MemoryPool`] / [`PooledMemory`]: pre-reserved slots, reset and reused.
//! * [`Memory`]: one of the three, for runtimes that store them uniformly.
//! * [`MemoryDefinition`]: the `#[repr(C)]` base/length header compiled code
//!   reads; every memory's `definition()` returns a pointer to it that is
//!   stable for the memory's life.
//!
//! # Layout and growth
//!
//! A memory reserves `guard_before + reservation + guard_after` bytes of
//! inaccessible address space ([`MemoryConfig`]; on 64-bit hosts by default
//! 32 MiB + 4 GiB + 2 GiB, so a 32-bit memory never needs explicit bounds
//! checks: see [`MemoryInfo::can_elide_bounds_check`]). Growing makes pages
//! read-write; bytes past the current length (up to the next host page)
//! stay inaccessible, so stray accesses fault instead of corrupting memory.
//!
//! ```
//! use weft_memory::{MemoryConfig, RmwOp, SharedMemory, WaitOutcome};
//! use std::time::Duration;
//!
//! let mem = SharedMemory::new(&MemoryConfig::new(1).with_maximum(Some(2)))?;
//! assert_eq!(mem.grow(1)?, 1);
//! mem.atomic_store::<u32>(65536, 7)?;
//! assert_eq!(mem.atomic_rmw::<u32>(65536, RmwOp::Add, 1)?, 7);
//! // The value is 8, not 0: wait returns at once.
//! assert_eq!(mem.wait32(65536, 0, None)?, WaitOutcome::NotEqual);
//! assert_eq!(mem.wait32(65536, 8, Some(Duration::ZERO))?, WaitOutcome::TimedOut);
//! assert_eq!(mem.notify(65536, 1)?, 0);
//! assert!(mem.grow(1).is_err()); // maximum reached; nothing changed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Unsafe code and its invariants
//!
//! All `unsafe` lives behind these invariants, each stated where it is
//! relied on:
//!
//! 1. **Reservation** (`sys.rs`, `reservation.rs`): a memory's range is
//!    reserved by `mmap(PROT_NONE)` and owned by exactly one memory (or one
//!    pool slot lease) until dropped; `0..committed` is read-write, the rest
//!    inaccessible; `committed` only grows, and only under exclusive access
//!    (`&mut` or the shared grow lock).
//! 2. **Length ≤ committed**: a memory's published length never exceeds its
//!    committed prefix. For shared memories the pages are committed *before*
//!    the length is published (`SeqCst` store) and readers load it with
//!    `Acquire`, so any length a reader sees is backed by accessible pages.
//! 3. **No shrink, no move for shared memory**: the base of a shared memory
//!    never changes and its length never decreases, so a bounds check against
//!    any length once read stays valid for the memory's life.
//! 4. **Aliasing**: a `LinearMemory` hands out slices only through `&self` /
//!    `&mut self`, so the borrow checker keeps them from overlapping a grow
//!    (which may move or commit). A `SharedMemory` never hands out Rust
//!    references into its bytes: every host access is atomic (byte-atomic
//!    relaxed copies or `SeqCst` atomics), so racing with other threads or
//!    compiled code is defined behaviour.
//! 5. **Pool slots**: a slot is leased to one `PooledMemory`; on drop its
//!    committed pages are zeroed and made inaccessible before the slot
//!    returns to the free list.
//!
//! # loom
//!
//! The grow / length-publication and wait/notify protocols are model-checked
//! with loom. `sync.rs` swaps std's atomics, `Mutex` and `Condvar` for
//! loom's when the crate's own tests are built with `--cfg loom`, and the
//! page mapping becomes a heap allocation whose per-page accessibility is a
//! loom-tracked cell (an access that is not ordered after the page was made
//! accessible is reported by loom). Run the models with
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p weft-memory --release --lib
//! ```
#![deny(missing_docs)]

mod access;
mod config;
#[cfg(all(target_os = "linux", not(any(all(test, loom), miri))))]
mod dirty;
mod error;
mod image;
mod linear;
mod marks;
mod parking;
mod pool;
mod reservation;
mod shared;
mod sync;
mod sys;

#[cfg(all(test, loom))]
mod loom_tests;
/// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
#[cfg(all(test, not(loom)))]
mod tests;

use std::fmt;
use std::sync::atomic::AtomicPtr;
use std::time::Duration;

pub use access::{AtomicInt, RmwOp};
pub use config::{
    DEFAULT_GUARD_AFTER, DEFAULT_GUARD_BEFORE, DEFAULT_RESERVATION, DEFAULT_RESERVATION_FOR_GROWTH,
    MemoryConfig, MemoryInfo, ResourceLimiter, WASM_PAGE_SIZE, WASM_PAGE_SIZE_LOG2,
};
pub use error::{AccessError, Error, GrowError};
pub use image::{MIN_MAPPED_IMAGE_BYTES, MemoryImage};
pub use linear::{GrowOutcome, LinearMemory};
pub use marks::MARK_SHIFT;
pub use parking::{WaitCancelled, WaitCanceller, WaitOutcome};

/// Whether memories here have real guard pages: reserved address space that
/// faults when touched, so that compiled code may leave bounds checks to the
/// MMU. True with the `region` backing (unix); false in the heap backing
/// used under loom and Miri and on Windows, where nothing faults (a runtime
/// must then compile explicit bounds checks).
///
/// ```
/// assert!(weft_memory::guard_pages_supported());
/// ```
pub fn guard_pages_supported() -> bool {
    !cfg!(any(all(test, loom), miri, not(unix)))
}
pub use pool::{MemoryPool, PoolConfig, PooledMemory};
pub use shared::SharedMemory;

/// The base/length header that compiled code reads directly
/// (`VMMemoryDefinition` in the jit contract): `base` at offset 0,
/// `current_length` (bytes) at offset 8 on 64-bit hosts.
///
/// Each memory owns one at a stable address (see the memories'
/// `definition()`). Compiled code loads `base` (it changes only when a
/// non-shared, movable memory moves during a grow) and `current_length`
/// with an `Acquire` (or stronger) load. Only the owning memory writes it.
///
/// `marks` (offset 16) is null or the memory's write marks: one byte per
/// 4 KiB ([`MARK_SHIFT`]), plus one past the last page. Whoever writes the
/// memory's bytes through `base` sets the marks of the pages written
/// ([`mark_written`](Self::mark_written); compiled code stores `0x0101` as
/// a `u16` at `marks + (address >> 12)` after each store), so that a pool
/// slot's reset restores exactly those pages without a system call.
#[repr(C)]
pub struct MemoryDefinition {
    base: AtomicPtr<u8>,
    current_length: sync::AtomicUsize,
    marks: AtomicPtr<u8>,
}

impl MemoryDefinition {
    /// Byte offset of `base`.
    pub const BASE_OFFSET: usize = std::mem::offset_of!(MemoryDefinition, base);
    /// Byte offset of `current_length`.
    pub const CURRENT_LENGTH_OFFSET: usize = std::mem::offset_of!(MemoryDefinition, current_length);

    /// Byte offset of `marks`.
    pub const MARKS_OFFSET: usize = std::mem::offset_of!(MemoryDefinition, marks);

    pub(crate) fn new(base: *mut u8, len: usize) -> Self {
        Self::with_marks(base, len, std::ptr::null_mut())
    }

    pub(crate) fn with_marks(base: *mut u8, len: usize, marks: *mut u8) -> Self {
        MemoryDefinition {
            base: AtomicPtr::new(base),
            current_length: sync::AtomicUsize::new(len),
            marks: AtomicPtr::new(marks),
        }
    }

    /// The write marks, or null if this memory has none.
    pub fn marks(&self) -> *mut u8 {
        self.marks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Marks `[offset, offset + len)` as written (see the type's docs);
    /// call it after writing those bytes through [`base`](Self::base).
    /// Does nothing without marks or for a range beyond the current length
    /// (which no write can have reached).
    pub fn mark_written(&self, offset: usize, len: usize) {
        let marks = self.marks();
        let Some(end) = offset.checked_add(len) else {
            return;
        };
        if marks.is_null() || len == 0 || end > self.current_length() {
            return;
        }
        let (first, last) = (offset >> MARK_SHIFT, (end - 1) >> MARK_SHIFT);
        for page in first..=last {
            // SAFETY: the marks cover one byte per 4 KiB of the largest
            // length the memory can have, plus one, so `page` (below the
            // current length's) is inside them, and they live as long as
            // the memory. An atomic store: this is a `Sync` type, so two
            // threads may mark at once without a data race.
            unsafe {
                (*marks.add(page).cast::<std::sync::atomic::AtomicU8>())
                    .store(1, std::sync::atomic::Ordering::Relaxed)
            };
        }
    }

    /// The current base address.
    pub fn base(&self) -> *mut u8 {
        self.base.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current length in bytes (`Acquire`).
    pub fn current_length(&self) -> usize {
        self.current_length.load(sync::Ordering::Acquire)
    }
}

impl fmt::Debug for MemoryDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDefinition")
            .field("base", &self.base())
            .field("current_length", &self.current_length())
            .finish()
    }
}

// The layout the jit compiles against (crates/jit/CONTRACT.md). Not checked
// under loom, where the length is a loom model object.
#[cfg(not(all(test, loom)))]
const _: () = {
    assert!(MemoryDefinition::BASE_OFFSET == 0);
    assert!(MemoryDefinition::CURRENT_LENGTH_OFFSET == std::mem::size_of::<usize>());
    assert!(MemoryDefinition::MARKS_OFFSET == 2 * std::mem::size_of::<usize>());
    assert!(std::mem::size_of::<MemoryDefinition>() == 3 * std::mem::size_of::<usize>());
};

/// Any of the crate's memories, for runtimes that keep them in one table.
/// Wait and notify follow wasm: on a non-shared memory `wait32`/`wait64` fail
/// with [`AccessError::NotShared`] and `notify` returns 0 (after the
/// alignment and bounds checks).
#[derive(Debug)]
pub enum Memory {
    /// A non-shared memory with its own reservation.
    Linear(LinearMemory),
    /// A shared memory.
    Shared(SharedMemory),
    /// A non-shared memory in a pool slot.
    Pooled(PooledMemory),
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Memory::Linear($m) => $e,
            Memory::Shared($m) => $e,
            Memory::Pooled($m) => $e,
        }
    };
}

impl Memory {
    /// Creates a [`LinearMemory`] or, if `shared`, a [`SharedMemory`]: the
    /// direct translation of a wasm memory type.
    pub fn new(cfg: &MemoryConfig, shared: bool) -> Result<Memory, Error> {
        Ok(if shared {
            Memory::Shared(SharedMemory::new(cfg)?)
        } else {
            Memory::Linear(LinearMemory::new(cfg)?)
        })
    }

    /// The header compiled code reads; stable for the memory's life.
    pub fn definition(&self) -> *mut MemoryDefinition {
        each!(self, m => m.definition())
    }

    /// Static facts for compilers.
    pub fn info(&self) -> MemoryInfo {
        each!(self, m => m.info())
    }

    /// Current size in pages.
    pub fn size_pages(&self) -> u64 {
        each!(self, m => m.size_pages())
    }

    /// Current size in bytes.
    pub fn byte_len(&self) -> usize {
        each!(self, m => m.byte_len())
    }

    /// Grows by `delta_pages`; returns the old size in pages.
    pub fn grow(&mut self, delta_pages: u64) -> Result<u64, GrowError> {
        each!(self, m => m.grow(delta_pages))
    }

    /// Copies bytes at `offset` into `buf`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        each!(self, m => m.read(offset, buf))
    }

    /// Copies `buf` into the memory at `offset`.
    pub fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), AccessError> {
        each!(self, m => m.write(offset, buf))
    }

    /// `memory.atomic.wait32` (errors with `NotShared` on non-shared memory).
    pub fn wait32(
        &self,
        offset: u64,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome, AccessError> {
        each!(self, m => m.wait32(offset, expected, timeout))
    }

    /// `memory.atomic.wait64` (errors with `NotShared` on non-shared memory).
    pub fn wait64(
        &self,
        offset: u64,
        expected: u64,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome, AccessError> {
        each!(self, m => m.wait64(offset, expected, timeout))
    }

    /// `memory.atomic.notify` (returns 0 on non-shared memory).
    pub fn notify(&self, offset: u64, count: u32) -> Result<u32, AccessError> {
        each!(self, m => m.notify(offset, count))
    }

    /// Applies a memory image (see [`LinearMemory::apply_image`]); a
    /// shared memory takes none ([`Error::InvalidConfig`]).
    pub fn apply_image(&mut self, image: &MemoryImage) -> Result<(), Error> {
        match self {
            Memory::Linear(m) => m.apply_image(image),
            Memory::Pooled(m) => m.apply_image(image),
            Memory::Shared(_) => Err(Error::InvalidConfig(
                "a shared memory cannot take a memory image",
            )),
        }
    }

    /// The shared memory, if this is one.
    pub fn as_shared(&self) -> Option<&SharedMemory> {
        match self {
            Memory::Shared(m) => Some(m),
            _ => None,
        }
    }
}
