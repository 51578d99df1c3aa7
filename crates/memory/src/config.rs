//! Configuration ([`MemoryConfig`]), static facts about a created memory
//! ([`MemoryInfo`]) and the [`ResourceLimiter`] hook.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;

/// The WebAssembly page size, 64 KiB.
pub const WASM_PAGE_SIZE: u64 = 1 << WASM_PAGE_SIZE_LOG2;
/// log2 of [`WASM_PAGE_SIZE`].
pub const WASM_PAGE_SIZE_LOG2: u8 = 16;

const GIB: usize = 1 << 30;
const MIB: usize = 1 << 20;

/// Default reservation: enough for any 32-bit memory on 64-bit hosts, so
/// compiled code can rely on guard pages instead of bounds checks.
#[cfg(target_pointer_width = "64")]
pub const DEFAULT_RESERVATION: usize = 4 * GIB;
/// Default reservation on 32-bit hosts (address space is scarce).
#[cfg(not(target_pointer_width = "64"))]
pub const DEFAULT_RESERVATION: usize = 10 * MIB;

/// Default guard region after the reservation.
#[cfg(target_pointer_width = "64")]
pub const DEFAULT_GUARD_AFTER: usize = 2 * GIB;
/// Default guard region after the reservation on 32-bit hosts.
#[cfg(not(target_pointer_width = "64"))]
pub const DEFAULT_GUARD_AFTER: usize = 64 * 1024;

/// Default guard region before the memory (catches negative-offset codegen bugs).
#[cfg(target_pointer_width = "64")]
pub const DEFAULT_GUARD_BEFORE: usize = 32 * MIB;
/// Default guard region before the memory on 32-bit hosts.
#[cfg(not(target_pointer_width = "64"))]
pub const DEFAULT_GUARD_BEFORE: usize = 64 * 1024;

/// Default extra address space reserved when a movable memory is moved.
#[cfg(target_pointer_width = "64")]
pub const DEFAULT_RESERVATION_FOR_GROWTH: usize = 2 * GIB;
/// Default extra address space reserved when a movable memory is moved.
#[cfg(not(target_pointer_width = "64"))]
pub const DEFAULT_RESERVATION_FOR_GROWTH: usize = MIB;

/// Consulted before a memory grows (and before it is created with a non-zero
/// size); returning `false` refuses the growth, which then fails like any
/// other failed grow and changes nothing.
///
/// Sizes are in bytes. `maximum` is the memory's declared maximum, if any.
///
/// For a [`SharedMemory`](crate::SharedMemory) the limiter is called with the
/// grow lock held, possibly from several threads: it must not call back into
/// the same memory (that would deadlock) and should return quickly.
///
/// Any `Fn(usize, usize, Option<usize>) -> bool + Send + Sync` closure is a
/// limiter:
///
/// ```
/// use std::sync::Arc;
/// use weft_memory::{LinearMemory, MemoryConfig};
///
/// let cfg = MemoryConfig::new(1)
///     .with_maximum(Some(100))
///     .with_limiter(Arc::new(|_cur: usize, desired: usize, _max: Option<usize>| {
///         desired <= 4 * 65536
///     }));
/// let mut mem = LinearMemory::new(&cfg).unwrap();
/// assert_eq!(mem.grow(3).unwrap(), 1);
/// assert!(mem.grow(1).is_err()); // 5 pages would exceed the limiter's budget
/// assert_eq!(mem.size_pages(), 4);
/// ```
pub trait ResourceLimiter: Send + Sync {
    /// Returns whether a memory of `current` bytes may grow to `desired`
    /// bytes (its declared maximum is `maximum` bytes).
    fn memory_growing(&self, current: usize, desired: usize, maximum: Option<usize>) -> bool;
}

impl<F> ResourceLimiter for F
where
    F: Fn(usize, usize, Option<usize>) -> bool + Send + Sync,
{
    fn memory_growing(&self, current: usize, desired: usize, maximum: Option<usize>) -> bool {
        self(current, desired, maximum)
    }
}

/// How to create a memory: the wasm memory type (minimum, maximum, page size,
/// index type) plus the host tunables (reservation, guards, movability).
///
/// Build it from a wasm `MemoryType` like this:
///
/// ```
/// use weft_memory::{Memory, MemoryConfig};
///
/// // (memory i32 1 10 shared)
/// let (min, max, shared, memory64) = (1u64, Some(10u64), true, false);
/// let cfg = MemoryConfig::new(min).with_maximum(max).with_index64(memory64);
/// let mem = Memory::new(&cfg, shared).unwrap();
/// assert!(mem.info().shared);
/// assert_eq!(mem.size_pages(), 1);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Initial size in pages.
    pub initial_pages: u64,
    /// Declared maximum in pages (`None`: the index type's limit). Required
    /// for shared memories.
    pub maximum_pages: Option<u64>,
    /// log2 of the page size in bytes: 16 (64 KiB, the default) or anything
    /// down to 0 (the custom-page-sizes proposal allows 1-byte pages).
    pub page_size_log2: u8,
    /// Whether the memory is indexed with 64-bit addresses (memory64).
    pub index64: bool,
    /// Bytes of address space reserved for the memory itself (rounded up to
    /// the host page size). Default [`DEFAULT_RESERVATION`]. Shared memories
    /// always reserve at least their maximum.
    pub reservation_bytes: usize,
    /// Inaccessible bytes after the reservation. Default [`DEFAULT_GUARD_AFTER`].
    pub guard_after_bytes: usize,
    /// Inaccessible bytes before the memory. Default [`DEFAULT_GUARD_BEFORE`].
    pub guard_before_bytes: usize,
    /// Whether a [`LinearMemory`](crate::LinearMemory) may be moved to a new,
    /// larger reservation when it outgrows its current one. Default `true`.
    /// Ignored for shared and pooled memories, which never move.
    pub may_move: bool,
    /// Extra bytes reserved beyond the new size when a memory is moved.
    /// Default [`DEFAULT_RESERVATION_FOR_GROWTH`].
    pub reservation_for_growth: usize,
    /// Optional hook consulted before every grow.
    pub limiter: Option<Arc<dyn ResourceLimiter>>,
    /// Whether the memory keeps write marks (see
    /// [`MemoryDefinition`](crate::MemoryDefinition)); 32-bit memories
    /// only (ignored with `index64`). Default `false`. Pool slots take
    /// theirs from [`PoolConfig::write_marks`](crate::PoolConfig::write_marks).
    pub write_marks: bool,
}

impl fmt::Debug for MemoryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConfig")
            .field("initial_pages", &self.initial_pages)
            .field("maximum_pages", &self.maximum_pages)
            .field("page_size_log2", &self.page_size_log2)
            .field("index64", &self.index64)
            .field("reservation_bytes", &self.reservation_bytes)
            .field("guard_after_bytes", &self.guard_after_bytes)
            .field("guard_before_bytes", &self.guard_before_bytes)
            .field("may_move", &self.may_move)
            .field("reservation_for_growth", &self.reservation_for_growth)
            .field("limiter", &self.limiter.is_some())
            .field("write_marks", &self.write_marks)
            .finish()
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            initial_pages: 0,
            maximum_pages: None,
            page_size_log2: WASM_PAGE_SIZE_LOG2,
            index64: false,
            reservation_bytes: DEFAULT_RESERVATION,
            guard_after_bytes: DEFAULT_GUARD_AFTER,
            guard_before_bytes: DEFAULT_GUARD_BEFORE,
            may_move: true,
            reservation_for_growth: DEFAULT_RESERVATION_FOR_GROWTH,
            limiter: None,
            write_marks: false,
        }
    }
}

impl MemoryConfig {
    /// A default configuration with `initial_pages` 64 KiB pages.
    pub fn new(initial_pages: u64) -> Self {
        MemoryConfig {
            initial_pages,
            ..Self::default()
        }
    }

    /// Sets the declared maximum in pages.
    pub fn with_maximum(mut self, maximum_pages: Option<u64>) -> Self {
        self.maximum_pages = maximum_pages;
        self
    }

    /// Sets log2 of the page size (16 for 64 KiB, 0 for 1-byte pages).
    pub fn with_page_size_log2(mut self, log2: u8) -> Self {
        self.page_size_log2 = log2;
        self
    }

    /// Sets whether the memory uses 64-bit indices.
    pub fn with_index64(mut self, index64: bool) -> Self {
        self.index64 = index64;
        self
    }

    /// Sets the reservation size in bytes.
    pub fn with_reservation(mut self, bytes: usize) -> Self {
        self.reservation_bytes = bytes;
        self
    }

    /// Sets the guard sizes in bytes (before the memory, after the reservation).
    pub fn with_guards(mut self, before: usize, after: usize) -> Self {
        self.guard_before_bytes = before;
        self.guard_after_bytes = after;
        self
    }

    /// Sets whether a non-shared memory may move when it outgrows its reservation.
    pub fn with_may_move(mut self, may_move: bool) -> Self {
        self.may_move = may_move;
        self
    }

    /// Sets the extra reservation made when a memory moves.
    pub fn with_reservation_for_growth(mut self, bytes: usize) -> Self {
        self.reservation_for_growth = bytes;
        self
    }

    /// Sets [`write_marks`](Self::write_marks).
    pub fn with_write_marks(mut self, on: bool) -> Self {
        self.write_marks = on;
        self
    }

    /// Installs a resource limiter.
    pub fn with_limiter(mut self, limiter: Arc<dyn ResourceLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> u64 {
        1u64.checked_shl(u32::from(self.page_size_log2))
            .unwrap_or(0)
    }

    /// Checks the wasm-level part of the configuration and returns
    /// `(initial_bytes, maximum_bytes)` where `maximum_bytes` is the smaller
    /// of the declared maximum and the index type's limit, capped to what the
    /// host can address (`None`: unbounded within the host's address space).
    pub(crate) fn validate(&self) -> Result<ValidatedSizes, Error> {
        if self.page_size_log2 > WASM_PAGE_SIZE_LOG2 {
            return Err(Error::InvalidConfig("page size must be at most 64 KiB"));
        }
        let log2 = u32::from(self.page_size_log2);
        // The largest number of pages the index type can address.
        let index_limit_pages: u64 = if self.index64 {
            // 2^64 bytes
            if log2 == 0 {
                u64::MAX
            } else {
                1u64 << (64 - log2)
            }
        } else {
            // 2^32 bytes; with 1-byte pages the spec limit is 2^32 - 1.
            if log2 == 0 {
                u32::MAX.into()
            } else {
                1u64 << (32 - log2)
            }
        };
        if let Some(max) = self.maximum_pages {
            if max < self.initial_pages {
                return Err(Error::InvalidConfig(
                    "maximum is smaller than the initial size",
                ));
            }
            if max > index_limit_pages {
                return Err(Error::InvalidConfig(
                    "maximum exceeds the index type's limit",
                ));
            }
        }
        if self.initial_pages > index_limit_pages {
            return Err(Error::InvalidConfig(
                "initial size exceeds the index type's limit",
            ));
        }
        let initial_bytes = pages_to_bytes(self.initial_pages, self.page_size_log2).ok_or(
            Error::InvalidConfig("initial size exceeds the host address space"),
        )?;
        let max_pages = self.maximum_pages.unwrap_or(index_limit_pages);
        Ok(ValidatedSizes {
            initial_bytes,
            max_pages,
            max_bytes: pages_to_bytes(max_pages, self.page_size_log2),
        })
    }
}

pub(crate) struct ValidatedSizes {
    pub(crate) initial_bytes: usize,
    /// Effective maximum in pages (declared, else the index limit).
    pub(crate) max_pages: u64,
    /// `max_pages` in bytes, `None` if that does not fit in `usize`.
    pub(crate) max_bytes: Option<usize>,
}

/// `pages << log2` as a `usize`, or `None` if it does not fit.
pub(crate) fn pages_to_bytes(pages: u64, log2: u8) -> Option<usize> {
    let bytes = pages.checked_mul(1u64 << log2)?;
    usize::try_from(bytes).ok()
}

/// Static facts about a created memory, for compilers and runtimes.
///
/// Only `reservation_bytes` can change, and only for a movable
/// [`LinearMemory`](crate::LinearMemory) that moved during a grow; `info()`
/// always reports the current value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryInfo {
    /// log2 of the page size in bytes.
    pub page_size_log2: u8,
    /// Whether the memory uses 64-bit indices.
    pub index64: bool,
    /// Whether this is a shared memory (never moves, grows under a lock).
    pub shared: bool,
    /// Whether the memory lives in a [`MemoryPool`](crate::MemoryPool) slot.
    pub pooled: bool,
    /// The declared maximum in pages, if any.
    pub maximum_pages: Option<u64>,
    /// Bytes of address space reserved for the memory; accesses at or above
    /// the current length and below this fault.
    pub reservation_bytes: usize,
    /// Inaccessible bytes directly after the reservation.
    pub guard_after_bytes: usize,
    /// Inaccessible bytes directly before the base.
    pub guard_before_bytes: usize,
    /// Whether the base pointer can change on grow. When `true`, compiled code
    /// must reload the base (and length) after every call and `memory.grow`.
    pub may_move: bool,
}

impl MemoryInfo {
    /// The page size in bytes.
    pub fn page_size(&self) -> u64 {
        1u64 << self.page_size_log2
    }

    /// Whether an access `addr + offset .. addr + offset + size`, with `addr`
    /// a wasm index and `offset_plus_size = offset + size` a static quantity,
    /// is guaranteed to fault (rather than touch foreign memory) whenever it is
    /// out of bounds, so compiled code may omit the explicit bounds check.
    ///
    /// True only for 32-bit memories whose page size is a multiple of the host
    /// page size (so nothing past the current length is accessible) and whose
    /// reservation plus trailing guard covers every 32-bit index plus
    /// `offset_plus_size`. The runtime must also turn the fault into a trap.
    pub fn can_elide_bounds_check(&self, offset_plus_size: u64) -> bool {
        if self.index64 {
            return false;
        }
        let host_page = crate::sys::host_page_size() as u64;
        if self.page_size() < host_page {
            return false;
        }
        let covered = (self.reservation_bytes as u128) + (self.guard_after_bytes as u128);
        covered >= (1u128 << 32) + u128::from(offset_plus_size)
    }
}
