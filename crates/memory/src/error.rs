//! Error types. Nothing in this crate panics on bad input; every failure is
//! one of these.

use std::io;

/// Failure to create a memory or a pool, or to allocate from a pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is inconsistent (e.g. maximum below minimum, a
    /// shared memory without a maximum, a zero-sized pool).
    #[error("invalid memory configuration: {0}")]
    InvalidConfig(&'static str),
    /// The OS refused to reserve address space.
    #[error("failed to reserve {bytes} bytes of address space: {source}")]
    Reserve {
        /// Bytes requested (guards included).
        bytes: usize,
        /// The OS error.
        source: io::Error,
    },
    /// The OS refused to make the initial pages accessible.
    #[error("failed to commit {bytes} bytes: {source}")]
    Commit {
        /// Bytes requested.
        bytes: usize,
        /// The OS error.
        source: io::Error,
    },
    /// The initial size does not fit in the reservation (or pool slot) and
    /// the memory may not move.
    #[error(
        "initial size of {initial_bytes} bytes exceeds the reservation of {reservation_bytes} bytes"
    )]
    InitialExceedsReservation {
        /// The initial size in bytes.
        initial_bytes: usize,
        /// The reservation (or slot) size in bytes.
        reservation_bytes: usize,
    },
    /// The resource limiter refused the memory's initial size.
    #[error("resource limiter refused a memory of {bytes} bytes")]
    LimiterRefused {
        /// The requested initial size in bytes.
        bytes: usize,
    },
    /// A memory image reaches past the end of the memory it was applied to.
    #[error("memory image needs {image_bytes} bytes but the memory has {memory_bytes}")]
    ImageExceedsMemory {
        /// The smallest memory the image fits.
        image_bytes: usize,
        /// The memory's size in bytes.
        memory_bytes: usize,
    },
    /// The OS refused to map a memory image.
    #[error("failed to map a memory image: {0}")]
    MapImage(io::Error),
    /// Every slot of the pool is in use.
    #[error("memory pool exhausted: all {capacity} slots are in use")]
    PoolExhausted {
        /// The pool's slot count.
        capacity: usize,
    },
}

/// Why a grow failed. A failed grow never changes the memory's size,
/// contents or base.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrowError {
    /// The new size would exceed the memory's maximum (declared or implied
    /// by the index type).
    #[error(
        "cannot grow by {delta_pages} pages from {current_pages}: maximum is {maximum_pages} pages"
    )]
    ExceedsMaximum {
        /// Size before the grow, in pages.
        current_pages: u64,
        /// Requested growth, in pages.
        delta_pages: u64,
        /// Effective maximum, in pages.
        maximum_pages: u64,
    },
    /// The new size would exceed the reservation and the memory may not move
    /// (shared, pooled, or configured with `may_move = false`).
    #[error(
        "cannot grow to {requested_bytes} bytes: the memory cannot move and its reservation is {reservation_bytes} bytes"
    )]
    ExceedsReservation {
        /// The size the grow asked for, in bytes.
        requested_bytes: usize,
        /// The reservation, in bytes.
        reservation_bytes: usize,
    },
    /// The resource limiter refused the grow.
    #[error("resource limiter refused growing from {current_bytes} to {desired_bytes} bytes")]
    LimiterRefused {
        /// Size before the grow, in bytes.
        current_bytes: usize,
        /// Requested size, in bytes.
        desired_bytes: usize,
    },
    /// The OS refused to commit or reserve memory for the grow.
    #[error("out of memory while growing to {requested_bytes} bytes ({kind})")]
    OutOfMemory {
        /// The size the grow asked for, in bytes.
        requested_bytes: usize,
        /// What the OS reported.
        kind: io::ErrorKind,
    },
}

/// A host or atomic access that cannot be performed. These map one-to-one
/// onto wasm traps (out-of-bounds memory access, unaligned atomic, wait on
/// an unshared memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// `offset .. offset + len` is not inside the memory's current length.
    #[error(
        "out of bounds memory access: {len} bytes at offset {offset}, memory is {memory_len} bytes"
    )]
    OutOfBounds {
        /// The byte offset of the access.
        offset: u64,
        /// The access size in bytes.
        len: u64,
        /// The memory's length when the access was checked.
        memory_len: usize,
    },
    /// An atomic access whose offset is not a multiple of its size.
    #[error("unaligned atomic: offset {offset} is not a multiple of {alignment}")]
    Misaligned {
        /// The byte offset of the access.
        offset: u64,
        /// The required alignment in bytes.
        alignment: u64,
    },
    /// `wait32`/`wait64` on a memory that is not shared.
    #[error("atomic wait on non-shared memory")]
    NotShared,
}
