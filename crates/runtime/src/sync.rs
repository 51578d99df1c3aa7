//! The synchronisation shim for the interrupt state (`interrupt.rs`).
//!
//! The store context's atomics and its state lock come from here. In
//! ordinary builds they are std's; when the crate's own tests are compiled
//! with `--cfg loom` (`cfg(all(test, loom))`, as in weft-memory) they are
//! loom's, so the loom models in `interrupt.rs` run the real interrupt,
//! clear, ticker and call-entry code. (Under loom the context's layout no
//! longer matches what compiled code expects; the models never run wasm.)

#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::Mutex;
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize};

#[cfg(all(test, loom))]
pub(crate) use loom::sync::Mutex;
#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize};
