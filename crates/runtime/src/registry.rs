//! The process-wide registry of compiled code, so that a faulting PC can be
//! mapped to a trap kind and a function.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use weft_jit::TrapKind;

/// Something that owns a range of compiled code.
pub trait CodeInfo: Send + Sync {
    /// The trap recorded at exactly `pc`.
    fn lookup_trap(&self, pc: usize) -> Option<TrapKind>;
    /// The wasm frame at `pc` (not called from the signal handler).
    fn frame(&self, pc: usize) -> Option<crate::error::FrameInfo>;
    /// A printable name of the function containing `pc` (not called from
    /// the signal handler).
    fn func_name(&self, pc: usize) -> Option<String>;
}

struct Entry {
    end: usize,
    info: Arc<dyn CodeInfo>,
}

static REGISTRY: RwLock<BTreeMap<usize, Entry>> = RwLock::new(BTreeMap::new());

/// Registers `[start, end)`; the returned guard unregisters it on drop.
pub fn register(start: usize, end: usize, info: Arc<dyn CodeInfo>) -> Registration {
    if start < end {
        REGISTRY
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(start, Entry { end, info });
    }
    Registration { start }
}

/// Keeps a code range registered while alive.
#[derive(Debug)]
pub struct Registration {
    start: usize,
}

impl Drop for Registration {
    fn drop(&mut self) {
        REGISTRY
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.start);
    }
}

/// Runs `f` on the registered code range containing `pc` (only reads the
/// registry, so it may be called from the signal handler).
fn with_entry<R>(pc: usize, f: impl FnOnce(&Entry) -> Option<R>) -> Option<R> {
    let map = REGISTRY.read().ok()?;
    let (_, entry) = map.range(..=pc).next_back()?;
    if pc >= entry.end {
        return None;
    }
    f(entry)
}

/// Looks up the trap at `pc` (called from the signal handler).
pub(crate) fn lookup_trap(pc: usize) -> Option<TrapKind> {
    with_entry(pc, |e| e.info.lookup_trap(pc))
}

/// A printable name of the function containing `pc`, if it is registered code.
pub fn func_name(pc: usize) -> Option<String> {
    with_entry(pc, |e| e.info.func_name(pc))
}

/// The wasm frame at `pc`, if it is registered wasm code.
pub(crate) fn frame(pc: usize) -> Option<crate::error::FrameInfo> {
    with_entry(pc, |e| e.info.frame(pc))
}

/// Whether `pc` lies in registered code (called from the signal handler).
pub(crate) fn lookup_code(pc: usize) -> Option<()> {
    with_entry(pc, |_| Some(()))
}
