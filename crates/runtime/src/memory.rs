//! Linear memories, backed by weft-memory.

use weft_decoder::MemoryType as WasmMemoryType;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::store::{AsContext, AsContextMut, Growth, StoreContext, StoreContextMut};
use crate::types::MemoryType;
use weft_jit::TrapKind;

pub(crate) struct MemoryData(weft_memory::Memory);

/// Address space reserved at most for one 64-bit memory (its size limit
/// unless a `ResourceLimiter` or `Config::max_memory_size` sets a lower one).
const MEMORY64_RESERVATION: u64 = 64 << 30;

impl MemoryData {
    /// A memory defined by an instance: from the engine's pool, if it
    /// pools (shared memories are never pooled). A pooled memory starts as
    /// `image` (the `bool` says so); others start zeroed.
    pub(crate) fn for_instance(
        engine: &Engine,
        ty: &WasmMemoryType,
        image: Option<&weft_memory::MemoryImage>,
    ) -> Result<(MemoryData, bool)> {
        match &engine.inner.pool {
            Some(pool) if !ty.shared && !ty.memory64 => {
                let limit = engine
                    .inner
                    .config
                    .max_memory_size
                    .map_or(pool.cfg.max_memory_size, |l| {
                        l.min(pool.cfg.max_memory_size)
                    });
                let cfg = weft_memory::MemoryConfig::new(ty.limits.min)
                    .with_maximum(ty.limits.max)
                    .with_page_size_log2(ty.page_size_log2 as u8)
                    .with_limiter(std::sync::Arc::new(
                        move |_current: usize, desired: usize, _max: Option<usize>| {
                            desired <= limit
                        },
                    ));
                let data = MemoryData(pool.memory(&cfg, image)?);
                data.check_engine(engine)?;
                Ok((data, image.is_some()))
            }
            _ => Ok((Self::new(engine, ty)?, false)),
        }
    }

    pub(crate) fn new(engine: &Engine, ty: &WasmMemoryType) -> Result<MemoryData> {
        let t = &engine.inner.config.tunables;
        let mut reservation = usize::try_from(t.memory_reservation).unwrap_or(usize::MAX);
        if ty.memory64 {
            // 64-bit memories are bounds-checked explicitly (no guard can
            // cover a 64-bit index); reserving up to their maximum lets
            // them grow past 4 GiB without moving.
            let max_bytes = ty
                .limits
                .max
                .and_then(|p| p.checked_mul(1u64 << ty.page_size_log2))
                .unwrap_or(u64::MAX)
                .min(MEMORY64_RESERVATION);
            reservation = reservation.max(usize::try_from(max_bytes).unwrap_or(usize::MAX));
        }
        let cfg = weft_memory::MemoryConfig::new(ty.limits.min)
            .with_maximum(ty.limits.max)
            .with_index64(ty.memory64)
            .with_page_size_log2(ty.page_size_log2 as u8)
            .with_reservation(reservation)
            .with_guards(
                weft_memory::DEFAULT_GUARD_BEFORE,
                usize::try_from(t.memory_guard_size).unwrap_or(usize::MAX),
            )
            .with_may_move(t.memory_may_move)
            // Compiled code marks every store when the engine keeps marks.
            .with_write_marks(t.write_marks);
        let cfg = match engine.inner.config.max_memory_size {
            Some(limit) => cfg.with_limiter(std::sync::Arc::new(
                move |_current: usize, desired: usize, _max: Option<usize>| desired <= limit,
            )),
            None => cfg,
        };
        let m = weft_memory::Memory::new(&cfg, ty.shared)
            .map_err(|e| Error::Resource(format!("cannot create memory: {e}")))?;
        let data = MemoryData(m);
        data.check_engine(engine)?;
        Ok(data)
    }

    pub(crate) fn from_shared(m: weft_memory::SharedMemory) -> MemoryData {
        MemoryData(weft_memory::Memory::Shared(m))
    }

    pub(crate) fn as_shared(&self) -> Option<&weft_memory::SharedMemory> {
        self.0.as_shared()
    }

    /// Checks that compiled code of `engine` may access this memory the way
    /// the engine's tunables promise (reservation and guard at least as large
    /// as assumed when bounds checks were elided; no moving base when code
    /// may hoist it).
    pub(crate) fn check_engine(&self, engine: &Engine) -> Result<()> {
        let t = &engine.inner.config.tunables;
        let info = self.0.info();
        let covered = info.reservation_bytes as u128 + info.guard_after_bytes as u128;
        let assumed = u128::from(t.memory_reservation) + u128::from(t.memory_guard_size);
        if covered < assumed.min(u128::from(u64::MAX)) && t.memory_reservation >= 1 << 32 {
            return Err(Error::Link(format!(
                "memory reservation ({} + {} guard bytes) is smaller than the engine assumes",
                info.reservation_bytes, info.guard_after_bytes
            )));
        }
        if info.may_move && !info.shared && !t.memory_may_move {
            return Err(Error::Link(
                "memory may move but the engine compiles code that assumes it does not".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn ty(&self) -> WasmMemoryType {
        let info = self.0.info();
        WasmMemoryType {
            limits: weft_decoder::Limits {
                min: self.0.size_pages(),
                max: info.maximum_pages,
            },
            shared: info.shared,
            memory64: info.index64,
            page_size_log2: u32::from(info.page_size_log2),
        }
    }

    /// Import matching: limits subtyping, same sharedness and page size.
    pub(crate) fn matches(&self, want: &WasmMemoryType) -> bool {
        let have = self.ty();
        have.shared == want.shared
            && have.memory64 == want.memory64
            && have.page_size_log2 == want.page_size_log2
            && have.limits.matches(&want.limits)
    }

    pub(crate) fn definition(&self) -> *mut u8 {
        self.0.definition() as *mut u8
    }

    pub(crate) fn is_64(&self) -> bool {
        self.0.info().index64
    }

    /// What growing by `delta` pages asks of a limiter (`None` when the
    /// request is too large to describe, which the grow itself refuses).
    pub(crate) fn growth(&self, delta: u64) -> Option<Growth> {
        let info = self.0.info();
        let shift = u32::from(info.page_size_log2);
        let bytes = |pages: u64| usize::try_from(pages.checked_mul(1u64 << shift)?).ok();
        let current = self.byte_len();
        Some(Growth {
            table: false,
            current,
            desired: current.checked_add(bytes(delta)?)?,
            maximum: info.maximum_pages.and_then(bytes),
        })
    }

    /// Grows by `delta` pages; the old size in pages.
    pub(crate) fn grow(&mut self, delta: u64) -> Option<u64> {
        self.0.grow(delta).ok()
    }

    /// Lays the module's initial data over the memory (see
    /// [`crate::module::ModuleInner::images`]).
    pub(crate) fn apply_image(&mut self, image: &weft_memory::MemoryImage) -> Result<()> {
        self.0
            .apply_image(image)
            .map_err(|e| Error::Resource(format!("cannot initialise memory: {e}")))
    }

    pub(crate) fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.0
            .write(offset, bytes)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    pub(crate) fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        self.0
            .read(offset, out)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// The memory's bytes, if it is not shared (a shared memory may be
    /// written by other threads at any time, so no Rust slice of it exists).
    pub(crate) fn slice(&self) -> Option<&[u8]> {
        match &self.0 {
            weft_memory::Memory::Linear(m) => Some(m.data()),
            weft_memory::Memory::Pooled(m) => Some(m.data()),
            _ => None,
        }
    }

    /// See [`slice`](Self::slice).
    pub(crate) fn slice_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.0 {
            weft_memory::Memory::Linear(m) => Some(m.data_mut()),
            weft_memory::Memory::Pooled(m) => Some(m.data_mut()),
            _ => None,
        }
    }

    pub(crate) fn byte_len(&self) -> usize {
        self.0.byte_len()
    }

    /// `memory.atomic.notify` at byte `addr`.
    pub(crate) fn notify(&self, addr: u64, count: u32) -> Result<u32, TrapKind> {
        self.0.notify(addr, count).map_err(access_trap)
    }

    /// `memory.atomic.wait32` at byte `addr`; a negative timeout waits forever.
    ///
    /// `cancel` (the store's, cancelled by an interrupt) ends the wait with
    /// an interrupt trap.
    pub(crate) fn wait32(
        &self,
        addr: u64,
        expected: u32,
        timeout_ns: i64,
        cancel: &weft_memory::WaitCanceller,
    ) -> Result<u32, TrapKind> {
        let outcome = match self.0.as_shared() {
            Some(shared) => shared
                .wait32_cancellable(addr, expected, timeout(timeout_ns), cancel)
                .map_err(access_trap)?
                .map_err(|weft_memory::WaitCancelled| TrapKind::Interrupt)?,
            None => self
                .0
                .wait32(addr, expected, timeout(timeout_ns))
                .map_err(access_trap)?,
        };
        Ok(outcome.as_wasm_result())
    }

    /// `memory.atomic.wait64` at byte `addr`; a negative timeout waits forever.
    ///
    /// `cancel` (the store's, cancelled by an interrupt) ends the wait with
    /// an interrupt trap.
    pub(crate) fn wait64(
        &self,
        addr: u64,
        expected: u64,
        timeout_ns: i64,
        cancel: &weft_memory::WaitCanceller,
    ) -> Result<u32, TrapKind> {
        let outcome = match self.0.as_shared() {
            Some(shared) => shared
                .wait64_cancellable(addr, expected, timeout(timeout_ns), cancel)
                .map_err(access_trap)?
                .map_err(|weft_memory::WaitCancelled| TrapKind::Interrupt)?,
            None => self
                .0
                .wait64(addr, expected, timeout(timeout_ns))
                .map_err(access_trap)?,
        };
        Ok(outcome.as_wasm_result())
    }

    /// See `weft_memory::LinearMemory::untrack`.
    pub(crate) fn untrack(&self) {
        match &self.0 {
            weft_memory::Memory::Linear(m) => m.untrack(),
            weft_memory::Memory::Pooled(m) => m.untrack(),
            _ => {}
        }
    }

    /// Marks `[offset, offset + len)` as written (after a builtin wrote it
    /// through [`range_ptr`](Self::range_ptr); see
    /// `weft_memory::MemoryDefinition`).
    pub(crate) fn mark_written(&self, offset: u64, len: u64) {
        if let (Ok(offset), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) {
            // SAFETY: the definition lives as long as the memory.
            unsafe { &*self.0.definition() }.mark_written(offset, len);
        }
    }

    /// The address of `[offset, offset + len)` if it lies within the
    /// current length. A caller that writes there marks what it wrote
    /// ([`mark_written`](Self::mark_written)).
    pub(crate) fn range_ptr(&self, offset: u64, len: u64) -> Option<*mut u8> {
        // SAFETY: the definition lives as long as the memory.
        let def = unsafe { &*self.0.definition() };
        let end = offset.checked_add(len)?;
        if end > def.current_length() as u64 {
            return None;
        }
        // SAFETY: `offset <= current_length`, within the mapping.
        Some(unsafe { def.base().add(offset as usize) })
    }
}

fn timeout(ns: i64) -> Option<std::time::Duration> {
    u64::try_from(ns).ok().map(std::time::Duration::from_nanos)
}

fn access_trap(e: weft_memory::AccessError) -> TrapKind {
    match e {
        weft_memory::AccessError::Misaligned { .. } => TrapKind::UnalignedAtomic,
        weft_memory::AccessError::NotShared => TrapKind::AtomicWaitNonShared,
        _ => TrapKind::MemoryOutOfBounds,
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
    ///
    /// ```
    /// use weft_runtime::{Engine, Memory, MemoryType, Store};
    /// let mut store = Store::new(&Engine::default(), ());
    /// let mem = Memory::new(&mut store, MemoryType::new(1, Some(2)))?;
    /// mem.data_mut(&mut store)[10] = 7;
    /// assert_eq!(mem.data(&store)[10], 7);
    /// assert_eq!(mem.data_size(&store)?, 65536);
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the memory cannot be reserved, or the type does not fit the
    /// engine's configuration.
    pub fn new(mut store: impl AsContextMut, ty: MemoryType) -> Result<Memory> {
        let cx = store.as_context_mut();
        let opaque = &mut cx.0.opaque;
        let data = MemoryData::new(&opaque.engine, &ty.to_wasm())?;
        opaque.memories.push(data);
        Ok(Memory {
            store_id: opaque.id,
            index: opaque.memories.len() - 1,
        })
    }

    /// This memory as a [`SharedMemory`](crate::SharedMemory) handle, if it
    /// is shared (e.g. a shared memory a module defined and exported).
    pub fn as_shared(&self, store: impl AsContext) -> Option<crate::SharedMemory> {
        let cx = store.as_context();
        cx.0.opaque.check(self.store_id, "memory").ok()?;
        let o = &cx.0.opaque;
        crate::SharedMemory::from_data(&o.engine, &o.memories[self.index])
    }

    /// The memory's current type (its minimum is the current size).
    pub fn ty(&self, store: impl AsContext) -> Result<MemoryType> {
        let cx = store.as_context();
        cx.0.opaque.check(self.store_id, "memory")?;
        Ok(MemoryType::from_wasm(
            &cx.0.opaque.memories[self.index].ty(),
        ))
    }

    /// Current size in pages.
    pub fn size(&self, store: impl AsContext) -> Result<u64> {
        Ok(self.ty(store)?.minimum())
    }

    /// The memory's bytes, borrowed from the store: valid until the store is
    /// next used mutably (a call may grow, and so move, the memory).
    ///
    /// A shared memory gives an empty slice: other threads may write it at
    /// any time, which a Rust slice cannot allow; use
    /// [`SharedMemory`](crate::SharedMemory)'s methods (or
    /// [`read`](Self::read)) instead. A memory from another store also gives
    /// an empty slice.
    pub fn data<'a, T: 'a>(&self, store: impl Into<StoreContext<'a, T>>) -> &'a [u8] {
        let cx: StoreContext<'a, T> = store.into();
        if cx.0.opaque.check(self.store_id, "memory").is_err() {
            return &[];
        }
        cx.0.opaque.memories[self.index].slice().unwrap_or(&[])
    }

    /// The memory's bytes, mutably (see [`data`](Self::data); shared
    /// memories and memories of another store give an empty slice).
    pub fn data_mut<'a, T: 'a>(&self, store: impl Into<StoreContextMut<'a, T>>) -> &'a mut [u8] {
        let cx: StoreContextMut<'a, T> = store.into();
        if cx.0.opaque.check(self.store_id, "memory").is_err() {
            return &mut [];
        }
        cx.0.opaque.memories[self.index]
            .slice_mut()
            .unwrap_or(&mut [])
    }

    /// Current size in bytes.
    pub fn data_size(&self, store: impl AsContext) -> Result<usize> {
        let cx = store.as_context();
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
        cx.0.opaque
            .grow_memory(self.index, delta)?
            .ok_or_else(|| Error::InvalidArgument(format!("cannot grow memory by {delta} pages")))
    }

    /// Copies bytes out of the memory at `offset`.
    pub fn read(&self, store: impl AsContext, offset: usize, out: &mut [u8]) -> Result<()> {
        let cx = store.as_context();
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
