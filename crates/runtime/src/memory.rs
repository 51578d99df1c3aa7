//! Linear memories, backed by weft-memory.

use weft_decoder::MemoryType;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::store::AsContextMut;

pub(crate) enum MemoryData {
    Local(weft_memory::LinearMemory),
    Shared(weft_memory::SharedMemory),
}

impl MemoryData {
    pub(crate) fn new(engine: &Engine, ty: &MemoryType) -> Result<MemoryData> {
        if ty.memory64 {
            return Err(Error::Link("64-bit memories are not supported".into()));
        }
        let t = &engine.inner.config.tunables;
        let mut cfg = weft_memory::MemoryConfig::new(ty.limits.min, ty.limits.max);
        cfg.page_size(ty.page_size())
            .reservation(t.memory_reservation)
            .guard_after(t.memory_guard_size)
            .may_move(t.memory_may_move);
        if ty.shared {
            let m = weft_memory::SharedMemory::new(&cfg)
                .map_err(|e| Error::Resource(format!("cannot create shared memory: {e}")))?;
            Ok(MemoryData::Shared(m))
        } else {
            let m = weft_memory::LinearMemory::new(&cfg)
                .map_err(|e| Error::Resource(format!("cannot create memory: {e}")))?;
            Ok(MemoryData::Local(m))
        }
    }

    pub(crate) fn ty(&self) -> MemoryType {
        let (min, max, shared, page) = match self {
            MemoryData::Local(m) => (m.size_pages(), m.maximum_pages(), false, m.page_size()),
            MemoryData::Shared(m) => (m.size_pages(), m.maximum_pages(), true, m.page_size()),
        };
        MemoryType {
            limits: weft_decoder::Limits { min, max },
            shared,
            memory64: false,
            page_size_log2: page.trailing_zeros(),
        }
    }

    /// Import matching: limits subtyping, same sharedness and page size.
    pub(crate) fn matches(&self, want: &MemoryType) -> bool {
        let have = self.ty();
        have.shared == want.shared
            && have.memory64 == want.memory64
            && have.page_size_log2 == want.page_size_log2
            && have.limits.matches(&want.limits)
    }

    pub(crate) fn definition(&self) -> *mut u8 {
        match self {
            MemoryData::Local(m) => m.definition() as *mut u8,
            MemoryData::Shared(m) => m.definition() as *mut u8,
        }
    }

    pub(crate) fn is_64(&self) -> bool {
        false
    }

    /// Grows by `delta` pages; the old size in pages.
    pub(crate) fn grow(&mut self, delta: u64) -> Option<u64> {
        match self {
            MemoryData::Local(m) => m.grow(delta).ok(),
            MemoryData::Shared(m) => m.grow(delta).ok(),
        }
    }

    pub(crate) fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let r = match self {
            MemoryData::Local(m) => m.write(offset as usize, bytes).map_err(|e| e.to_string()),
            MemoryData::Shared(m) => m.write(offset as usize, bytes).map_err(|e| e.to_string()),
        };
        r.map_err(Error::InvalidArgument)
    }

    pub(crate) fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        let r = match self {
            MemoryData::Local(m) => m.read(offset as usize, out).map_err(|e| e.to_string()),
            MemoryData::Shared(m) => m.read(offset as usize, out).map_err(|e| e.to_string()),
        };
        r.map_err(Error::InvalidArgument)
    }

    pub(crate) fn byte_len(&self) -> usize {
        match self {
            MemoryData::Local(m) => m.byte_len(),
            MemoryData::Shared(m) => m.byte_len(),
        }
    }
}

/// A linear memory that belongs to a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Memory {
    pub(crate) store_id: u64,
    pub(crate) index: usize,
}

impl Memory {
    /// Creates a memory of type `ty` in the store.
    pub fn new(mut store: impl AsContextMut, ty: MemoryType) -> Result<Memory> {
        let cx = store.as_context_mut();
        let opaque = &mut cx.0.opaque;
        let data = MemoryData::new(&opaque.engine, &ty)?;
        opaque.memories.push(data);
        Ok(Memory {
            store_id: opaque.id,
            index: opaque.memories.len() - 1,
        })
    }

    /// The memory's current type (its minimum is the current size).
    pub fn ty(&self, mut store: impl AsContextMut) -> Result<MemoryType> {
        let cx = store.as_context_mut();
        cx.0.opaque.check(self.store_id, "memory")?;
        Ok(cx.0.opaque.memories[self.index].ty())
    }

    /// Current size in pages.
    pub fn size(&self, store: impl AsContextMut) -> Result<u64> {
        Ok(self.ty(store)?.limits.min)
    }

    /// Current size in bytes.
    pub fn data_size(&self, mut store: impl AsContextMut) -> Result<usize> {
        let cx = store.as_context_mut();
        cx.0.opaque.check(self.store_id, "memory")?;
        Ok(cx.0.opaque.memories[self.index].byte_len())
    }

    /// Grows by `delta` pages and returns the old size in pages.
    ///
    /// # Errors
    /// Growing past the maximum (or a refused reservation) is an error and
    /// changes nothing.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64) -> Result<u64> {
        let cx = store.as_context_mut();
        cx.0.opaque.check(self.store_id, "memory")?;
        cx.0.opaque.memories[self.index]
            .grow(delta)
            .ok_or_else(|| Error::InvalidArgument(format!("cannot grow memory by {delta} pages")))
    }

    /// Copies bytes out of the memory at `offset`.
    pub fn read(&self, mut store: impl AsContextMut, offset: usize, out: &mut [u8]) -> Result<()> {
        let cx = store.as_context_mut();
        cx.0.opaque.check(self.store_id, "memory")?;
        cx.0.opaque.memories[self.index].read_at(offset as u64, out)
    }

    /// Copies bytes into the memory at `offset`.
    pub fn write(&self, mut store: impl AsContextMut, offset: usize, bytes: &[u8]) -> Result<()> {
        let cx = store.as_context_mut();
        cx.0.opaque.check(self.store_id, "memory")?;
        cx.0.opaque.memories[self.index].write_at(offset as u64, bytes)
    }
}
