//! Bounds checks, atomic accessors and racy-safe byte copies shared by every
//! memory type.
//!
//! WebAssembly memory is little-endian: multi-byte values are stored in
//! little-endian order whatever the host, and all accessors here convert.

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use crate::error::AccessError;

/// A read-modify-write operation for [`SharedMemory::atomic_rmw`](crate::SharedMemory::atomic_rmw)
/// (the wasm `*.atomic.rmw.*` instructions). Arithmetic wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RmwOp {
    /// `old + v`
    Add,
    /// `old - v`
    Sub,
    /// `old & v`
    And,
    /// `old | v`
    Or,
    /// `old ^ v`
    Xor,
    /// `v` (exchange)
    Xchg,
}

/// The integer types usable with the atomic accessors: `u8`, `u16`, `u32`
/// and `u64`. Accesses must be naturally aligned (offset a multiple of the
/// size). Sealed: it cannot be implemented outside this crate.
pub trait AtomicInt: sealed::Sealed + Copy + Eq + fmt::Debug + Send + Sync + 'static {}

pub(crate) mod sealed {
    use super::RmwOp;

    /// The raw operations behind [`AtomicInt`](super::AtomicInt).
    pub trait Sealed {
        /// Size (and alignment) in bytes.
        const SIZE: usize;
        /// # Safety
        /// `ptr` must be valid for atomic reads of `SIZE` bytes and aligned to `SIZE`.
        unsafe fn atomic_load(ptr: *mut u8) -> Self;
        /// # Safety
        /// `ptr` must be valid for atomic writes of `SIZE` bytes and aligned to `SIZE`.
        unsafe fn atomic_store(ptr: *mut u8, v: Self);
        /// # Safety
        /// As `atomic_store`.
        unsafe fn atomic_rmw(ptr: *mut u8, op: RmwOp, v: Self) -> Self;
        /// # Safety
        /// As `atomic_store`.
        unsafe fn atomic_cmpxchg(ptr: *mut u8, expected: Self, replacement: Self) -> Self;
    }
}

macro_rules! atomic_int {
    ($t:ty, $atomic:ty) => {
        impl AtomicInt for $t {}
        impl sealed::Sealed for $t {
            const SIZE: usize = std::mem::size_of::<$t>();

            unsafe fn atomic_load(ptr: *mut u8) -> Self {
                // SAFETY: the caller guarantees validity and alignment, and
                // every concurrent access to these bytes is atomic.
                let a = unsafe { <$atomic>::from_ptr(ptr.cast()) };
                <$t>::from_le(a.load(Ordering::SeqCst))
            }

            unsafe fn atomic_store(ptr: *mut u8, v: Self) {
                // SAFETY: as in atomic_load.
                let a = unsafe { <$atomic>::from_ptr(ptr.cast()) };
                a.store(v.to_le(), Ordering::SeqCst)
            }

            unsafe fn atomic_rmw(ptr: *mut u8, op: RmwOp, v: Self) -> Self {
                // SAFETY: as in atomic_load.
                let a = unsafe { <$atomic>::from_ptr(ptr.cast()) };
                let sc = Ordering::SeqCst;
                let old = match op {
                    RmwOp::Add | RmwOp::Sub if cfg!(target_endian = "big") => {
                        // Native add/sub would carry in the wrong direction on
                        // byte-swapped values: compute in host order.
                        let f = |x: $t| {
                            let x = <$t>::from_le(x);
                            let r = if op == RmwOp::Add {
                                x.wrapping_add(v)
                            } else {
                                x.wrapping_sub(v)
                            };
                            Some(r.to_le())
                        };
                        match a.fetch_update(sc, sc, f) {
                            Ok(x) | Err(x) => x,
                        }
                    }
                    RmwOp::Add => a.fetch_add(v, sc),
                    RmwOp::Sub => a.fetch_sub(v, sc),
                    RmwOp::And => a.fetch_and(v.to_le(), sc),
                    RmwOp::Or => a.fetch_or(v.to_le(), sc),
                    RmwOp::Xor => a.fetch_xor(v.to_le(), sc),
                    RmwOp::Xchg => a.swap(v.to_le(), sc),
                };
                <$t>::from_le(old)
            }

            unsafe fn atomic_cmpxchg(ptr: *mut u8, expected: Self, replacement: Self) -> Self {
                // SAFETY: as in atomic_load.
                let a = unsafe { <$atomic>::from_ptr(ptr.cast()) };
                let sc = Ordering::SeqCst;
                match a.compare_exchange(expected.to_le(), replacement.to_le(), sc, sc) {
                    Ok(x) | Err(x) => <$t>::from_le(x),
                }
            }
        }
    };
}

atomic_int!(u8, AtomicU8);
atomic_int!(u16, AtomicU16);
atomic_int!(u32, AtomicU32);
atomic_int!(u64, AtomicU64);

/// Checks that `offset .. offset + len` lies inside `0 .. memory_len` and
/// returns `offset` as a `usize`.
pub(crate) fn check_range(
    offset: u64,
    len: usize,
    memory_len: usize,
) -> Result<usize, AccessError> {
    let oob = AccessError::OutOfBounds {
        offset,
        len: len as u64,
        memory_len,
    };
    let start = usize::try_from(offset).map_err(|_| oob)?;
    match start.checked_add(len) {
        Some(end) if end <= memory_len => Ok(start),
        _ => Err(oob),
    }
}

/// Checks an atomic access of `size` bytes: alignment first (as wasm
/// engines do), then bounds. Returns the offset as a `usize`.
pub(crate) fn check_atomic(
    offset: u64,
    size: usize,
    memory_len: usize,
) -> Result<usize, AccessError> {
    if !offset.is_multiple_of(size as u64) {
        return Err(AccessError::Misaligned {
            offset,
            alignment: size as u64,
        });
    }
    check_range(offset, size, memory_len)
}

/// Copies `dst.len()` bytes out of shared memory at `src` using relaxed
/// atomic loads (8 bytes at a time where aligned), so racing with other
/// threads' atomic or plain wasm accesses is not undefined behaviour.
///
/// # Safety
///
/// `src .. src + dst.len()` must be valid for atomic reads for the duration
/// of the call.
pub(crate) unsafe fn atomic_copy_out(src: *const u8, dst: &mut [u8]) {
    let n = dst.len();
    let mut i = 0;
    while i < n {
        let p = src.wrapping_add(i);
        if (p as usize).is_multiple_of(8) && n - i >= 8 {
            // SAFETY: 8 aligned bytes inside the range (caller contract).
            let v = unsafe { AtomicU64::from_ptr(p.cast_mut().cast()) }.load(Ordering::Relaxed);
            dst[i..i + 8].copy_from_slice(&v.to_ne_bytes());
            i += 8;
        } else {
            // SAFETY: one byte inside the range (caller contract).
            dst[i] = unsafe { AtomicU8::from_ptr(p.cast_mut()) }.load(Ordering::Relaxed);
            i += 1;
        }
    }
}

/// Copies `src` into shared memory at `dst` using relaxed atomic stores
/// (8 bytes at a time where aligned).
///
/// # Safety
///
/// `dst .. dst + src.len()` must be valid for atomic writes for the duration
/// of the call.
pub(crate) unsafe fn atomic_copy_in(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let mut i = 0;
    while i < n {
        let p = dst.wrapping_add(i);
        if (p as usize).is_multiple_of(8) && n - i >= 8 {
            let mut word = [0u8; 8];
            word.copy_from_slice(&src[i..i + 8]);
            // SAFETY: 8 aligned bytes inside the range (caller contract).
            unsafe { AtomicU64::from_ptr(p.cast()) }
                .store(u64::from_ne_bytes(word), Ordering::Relaxed);
            i += 8;
        } else {
            // SAFETY: one byte inside the range (caller contract).
            unsafe { AtomicU8::from_ptr(p) }.store(src[i], Ordering::Relaxed);
            i += 1;
        }
    }
}
