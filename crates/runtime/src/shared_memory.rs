//! Shared linear memories: one memory, many stores, many threads.

use std::time::Duration;

use crate::types::MemoryType;
pub use weft_memory::{AtomicInt, RmwOp, WaitOutcome};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::memory::MemoryData;

/// A shared linear memory (threads proposal): `Send + Sync`, cheap to
/// clone, importable into any number of instances in any number of stores on
/// any number of threads.
///
/// Its base address never moves; `grow` is serialised and publishes the new
/// length with release ordering (see weft-memory, whose protocol is
/// model-checked under loom). Host access never hands out `&[u8]`: other
/// threads may be writing. Use the copy-in/copy-out and atomic accessors.
///
/// ```
/// use weft_runtime::{Engine, Instance, Module, MemoryType, SharedMemory, Store};
/// # fn main() -> weft_runtime::Result<()> {
/// let engine = Engine::default();
/// let memory = SharedMemory::new(&engine, MemoryType::shared(1, 4))?;
/// let module = Module::new(&engine, r#"(module
///     (import "env" "memory" (memory 1 4 shared))
///     (func (export "bump") (result i32)
///       (i32.atomic.rmw.add (i32.const 0) (i32.const 1))))"#)?;
/// let threads: Vec<_> = (0..2).map(|_| {
///     let (engine, module, memory) = (engine.clone(), module.clone(), memory.clone());
///     std::thread::spawn(move || {
///         let mut store = Store::new(&engine, ());
///         let inst = Instance::new(&mut store, &module, &[memory.into()]).unwrap();
///         let bump = inst.get_typed_func::<(), i32>(&mut store, "bump").unwrap();
///         for _ in 0..1000 { bump.call(&mut store, ()).unwrap(); }
///     })
/// }).collect();
/// for t in threads { t.join().unwrap(); }
/// assert_eq!(memory.atomic_load::<u32>(0)?, 2000);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    pub(crate) inner: weft_memory::SharedMemory,
    pub(crate) engine: Engine,
}

impl PartialEq for SharedMemory {
    fn eq(&self, other: &Self) -> bool {
        SharedMemory::same(self, other)
    }
}
impl Eq for SharedMemory {}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory")
            .field("pages", &self.inner.size_pages())
            .field("max", &self.inner.maximum_pages())
            .finish()
    }
}

impl SharedMemory {
    /// Creates a shared memory; `ty` must be shared and have a maximum.
    pub fn new(engine: &Engine, ty: MemoryType) -> Result<SharedMemory> {
        if !ty.is_shared() {
            return Err(Error::InvalidArgument(
                "SharedMemory::new needs a shared memory type".into(),
            ));
        }
        if ty.maximum().is_none() {
            return Err(Error::InvalidArgument(
                "a shared memory needs a maximum size".into(),
            ));
        }
        let data = MemoryData::new(engine, &ty.to_wasm())?;
        Self::from_data(engine, &data)
            .ok_or_else(|| Error::Resource("the memory is not shared".into()))
    }

    pub(crate) fn from_data(engine: &Engine, data: &MemoryData) -> Option<SharedMemory> {
        data.as_shared().map(|inner| SharedMemory {
            inner: inner.clone(),
            engine: engine.clone(),
        })
    }

    /// The memory's type (its minimum is the current size).
    pub fn ty(&self) -> MemoryType {
        MemoryType::from_wasm(&MemoryData::from_shared(self.inner.clone()).ty())
    }

    /// How many threads are waiting (`memory.atomic.wait32/64`) on the byte
    /// at `offset` right now: a snapshot, for diagnostics and tests.
    pub fn waiters(&self, offset: u64) -> usize {
        self.inner.waiters(offset)
    }

    /// Current size in pages.
    pub fn size(&self) -> u64 {
        self.inner.size_pages()
    }

    /// Current size in bytes.
    pub fn data_size(&self) -> usize {
        self.inner.byte_len()
    }

    /// Grows by `delta` pages; returns the old size in pages.
    ///
    /// # Errors
    /// Growing past the maximum is an error and changes nothing.
    pub fn grow(&self, delta: u64) -> Result<u64> {
        self.inner
            .grow(delta)
            .map_err(|e| Error::InvalidArgument(format!("cannot grow shared memory: {e}")))
    }

    /// Copies bytes out of the memory.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<()> {
        self.inner
            .read(offset as u64, out)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// Copies bytes into the memory.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        self.inner
            .write(offset as u64, bytes)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// A sequentially consistent atomic load (8/16/32/64-bit, aligned).
    pub fn atomic_load<T: AtomicInt>(&self, offset: usize) -> Result<T> {
        self.inner
            .atomic_load(offset as u64)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// A sequentially consistent atomic store.
    pub fn atomic_store<T: AtomicInt>(&self, offset: usize, value: T) -> Result<()> {
        self.inner
            .atomic_store(offset as u64, value)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// An atomic read-modify-write; returns the old value.
    pub fn atomic_rmw<T: AtomicInt>(&self, offset: usize, op: RmwOp, value: T) -> Result<T> {
        self.inner
            .atomic_rmw(offset as u64, op, value)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// Wakes up to `count` waiters at `offset`; returns how many woke.
    pub fn atomic_notify(&self, offset: usize, count: u32) -> Result<u32> {
        self.inner
            .notify(offset as u64, count)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// Blocks while the 32-bit value at `offset` equals `expected`, until
    /// notified or `timeout` passes (as `memory.atomic.wait32`).
    pub fn atomic_wait32(
        &self,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome> {
        self.inner
            .wait32(offset as u64, expected, timeout)
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// Whether two handles are the same memory.
    pub fn same(a: &SharedMemory, b: &SharedMemory) -> bool {
        weft_memory::SharedMemory::ptr_eq(&a.inner, &b.inner)
    }
}
