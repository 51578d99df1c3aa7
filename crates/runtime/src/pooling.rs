//! The pooling instance allocator (`Config::allocation_strategy`).
//!
//! With pooling, an engine sets aside, when it is created, a fixed number of
//! slots: linear memories (one `weft_memory::MemoryPool` reservation, every
//! slot as large as the engine's memory reservation plus its guard, so
//! compiled code needs no more bounds checks than on demand), tables (element
//! buffers of `table_elements` capacity, reused), and instances (a counted
//! budget; each instance's small vmctx block comes from the system allocator,
//! which recycles it). Instantiation then maps nothing: it takes slots, and a
//! store that is dropped gives every slot of its instances back, reset: the
//! pages its memory wrote get their initial contents back in place (the
//! image's bytes or zero), up to `keep_resident_bytes` of them, so the next
//! instance in the slot does not fault them in again; pages beyond that
//! budget are given back to the OS. (See `PoolingAllocationConfig::
//! keep_resident_bytes` for how to choose it.) A module that could never fit —
//! more memories or tables than a module may have, a memory or table larger
//! than a slot — is refused when it is compiled, naming the limit; running
//! out of slots is an error of the instantiation that found none.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// How an engine allocates instances' memories, tables and instance state.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum InstanceAllocationStrategy {
    /// Everything is allocated when an instance is created and freed when
    /// its store is dropped (the default).
    #[default]
    OnDemand,
    /// Slots set aside when the engine is created and reused (see
    /// [`PoolingAllocationConfig`]).
    Pooling(PoolingAllocationConfig),
}

/// Limits of the pooling allocator. Every limit is checked: a module that
/// exceeds a per-module limit is refused by `Module::new` with an error that
/// names the limit, and an instantiation that finds no free slot fails with
/// an error naming the exhausted resource.
///
/// ```
/// use weft_runtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
///
/// let mut pooling = PoolingAllocationConfig::default();
/// pooling.total_instances(100).total_memories(100).max_memory_size(16 << 20);
/// let mut config = Config::new();
/// config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
/// let engine = Engine::new(&config)?;
/// assert_eq!(engine.pooling_stats().unwrap().memories_in_use, 0);
/// # Ok::<(), weft_runtime::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PoolingAllocationConfig {
    pub(crate) total_instances: usize,
    pub(crate) total_memories: usize,
    pub(crate) total_tables: usize,
    pub(crate) max_memories_per_module: usize,
    pub(crate) max_tables_per_module: usize,
    pub(crate) table_elements: usize,
    pub(crate) max_memory_size: usize,
    pub(crate) max_core_instance_size: usize,
    pub(crate) keep_resident_bytes: usize,
    pub(crate) write_marks: bool,
    pub(crate) total_stacks: usize,
}

impl Default for PoolingAllocationConfig {
    fn default() -> Self {
        PoolingAllocationConfig {
            total_instances: 1000,
            total_memories: 1000,
            total_tables: 1000,
            max_memories_per_module: 1,
            max_tables_per_module: 1,
            table_elements: 20_000,
            max_memory_size: 1 << 32,
            max_core_instance_size: 1 << 20,
            keep_resident_bytes: 1 << 20,
            write_marks: false,
            total_stacks: 1000,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(&mut self, value: $ty) -> &mut Self {
            self.$name = value;
            self
        }
    };
}

impl PoolingAllocationConfig {
    setter!(
        /// Instances alive at once, across all stores of the engine
        /// (default 1000).
        total_instances: usize
    );
    setter!(
        /// Linear memory slots (default 1000). Each reserves the engine's
        /// memory reservation plus its guard of address space (6 GiB by
        /// default), not memory.
        total_memories: usize
    );
    setter!(
        /// Table slots (default 1000).
        total_tables: usize
    );
    setter!(
        /// Defined memories one module may have (default 1).
        max_memories_per_module: usize
    );
    setter!(
        /// Defined tables one module may have (default 1).
        max_tables_per_module: usize
    );
    setter!(
        /// Elements a pooled table may hold, initially or by growing
        /// (default 20 000).
        table_elements: usize
    );
    setter!(
        /// Bytes a pooled memory may hold, initially or by growing (default
        /// 4 GiB); a module whose initial memory is larger is refused.
        max_memory_size: usize
    );
    setter!(
        /// Bytes of instance state (vmctx) one instance may need (default
        /// 1 MiB; it grows with a module's functions, imports and types).
        max_core_instance_size: usize
    );
    setter!(
        /// Async call stacks (fibers) alive at once (default 1000); each is
        /// `Config::async_stack_size` bytes plus a guard page, made on first
        /// use and then reused.
        total_stacks: usize
    );
    setter!(
        /// The resident budget of each memory slot (default 1 MiB): when a
        /// store drops, the pages its memory wrote — found from the page
        /// tables, not guessed from a prefix — are restored in place (the
        /// module's data image copied back, zero elsewhere) up to this many
        /// bytes, and stay mapped, so the next instance in the slot starts
        /// without a single page fault. Written pages beyond the budget are
        /// given back to the OS and fault in again when next touched; pages
        /// that were only read cost nothing either way.
        ///
        /// Choosing it: restoring a page in place costs a copy, several
        /// times less than the fault that a dropped page costs when it is
        /// next touched (`cargo bench -p weft --bench serving` measures
        /// both), so a budget that covers what a request writes is the
        /// fastest; the price is memory, since each slot that
        /// has been used keeps up to this many bytes resident while idle. Set
        /// it to the typical request's written bytes (or the whole memory,
        /// when requests write all of it and memory is plentiful); 0 gives
        /// every written page back (the least memory, the most faults).
        /// Without the kernel's page-table scan (`PAGEMAP_SCAN`, Linux 6.7;
        /// older kernels read `/proc/self/pagemap`) or off Linux, the first
        /// `keep_resident_bytes` of the memory are zeroed in place instead.
        keep_resident_bytes: usize
    );
    setter!(
        /// Whether compiled code marks the pages it writes (default
        /// `false`). Without marks, a reset that restores pages in place
        /// (`keep_resident_bytes` > 0) asks the kernel which pages the
        /// memory wrote: one system call per reset, about 1 µs on the
        /// machine of `cargo bench -p weft --bench instantiate`, most of a
        /// small instance's reset. With marks, every store to a 32-bit
        /// memory also sets a byte in a side table (one shift, one add and
        /// one store; `cargo bench -p weft-cli --bench write_marks` measures
        /// what that costs), and the reset reads the table instead: no
        /// system call. A host
        /// that takes a mutable slice or raw pointer of the memory
        /// (`Memory::data_mut`) makes that memory's next reset read the page
        /// tables, as without marks; `Memory::write` and WASI mark what
        /// they write. Choose it when requests are short and many, so that
        /// the reset is a large part of each. Engine-wide: modules compiled
        /// by the engine carry the marks.
        write_marks: bool
    );
}

/// How many of a pooling engine's slots are in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolingStats {
    /// Instances alive (their stores not yet dropped).
    pub instances_in_use: usize,
    /// Memory slots leased.
    pub memories_in_use: usize,
    /// Table slots leased.
    pub tables_in_use: usize,
    /// Memory slots withdrawn because resetting them failed (expected 0).
    pub memories_quarantined: usize,
    /// Async call stacks in use (cached by a store or running a call).
    pub stacks_in_use: usize,
}

pub(crate) struct Pool {
    pub(crate) cfg: PoolingAllocationConfig,
    pub(crate) memories: weft_memory::MemoryPool,
    instances: AtomicUsize,
    tables: AtomicUsize,
    stacks: AtomicUsize,
    /// Released fiber stacks, kept for reuse.
    free_stacks: Mutex<Vec<corosensei::stack::DefaultStack>>,
    /// Element buffers of released tables, kept for reuse.
    free_elements: Mutex<Vec<Vec<usize>>>,
}

impl Pool {
    pub(crate) fn new(
        cfg: &PoolingAllocationConfig,
        tunables: &weft_jit::Tunables,
    ) -> Result<Arc<Pool>> {
        // A slot is as large as compiled code assumes a memory's
        // reservation to be, so the same code runs pooled or not.
        let reservation = usize::try_from(tunables.memory_reservation).unwrap_or(usize::MAX);
        let slot = reservation.max(cfg.max_memory_size).max(1);
        let guard = usize::try_from(tunables.memory_guard_size).unwrap_or(usize::MAX);
        let pool_cfg = weft_memory::PoolConfig::new(cfg.total_memories.max(1), slot)
            .with_guards(weft_memory::DEFAULT_GUARD_BEFORE, guard)
            .with_keep_resident(cfg.keep_resident_bytes)
            // The engine decided whether its code marks (`Engine::new`).
            .with_write_marks(tunables.write_marks);
        let memories = weft_memory::MemoryPool::new(&pool_cfg).map_err(|e| {
            Error::Resource(format!(
                "cannot set aside {} memory slots of {slot} bytes: {e}",
                cfg.total_memories
            ))
        })?;
        Ok(Arc::new(Pool {
            cfg: cfg.clone(),
            memories,
            instances: AtomicUsize::new(0),
            tables: AtomicUsize::new(0),
            stacks: AtomicUsize::new(0),
            free_stacks: Mutex::new(Vec::new()),
            free_elements: Mutex::new(Vec::new()),
        }))
    }

    pub(crate) fn stats(&self) -> PoolingStats {
        PoolingStats {
            instances_in_use: self.instances.load(Ordering::SeqCst),
            memories_in_use: self.memories.in_use(),
            tables_in_use: self.tables.load(Ordering::SeqCst),
            memories_quarantined: self.memories.quarantined(),
            stacks_in_use: self.stacks.load(Ordering::SeqCst),
        }
    }

    /// Refuses a module that could never be instantiated in this pool.
    pub(crate) fn check_module(&self, m: &weft_decoder::Module, vmctx_size: usize) -> Result<()> {
        let c = &self.cfg;
        let limit = |what: &str, have: u64, max: u64| {
            Err(Error::Resource(format!(
                "module exceeds the pooling allocator's `{what}` limit ({have} > {max})"
            )))
        };
        let memories = &m.memories[m.num_imported_memories as usize..];
        let pooled = memories.iter().filter(|t| !t.shared).count();
        if pooled > c.max_memories_per_module {
            return limit(
                "max_memories_per_module",
                pooled as u64,
                c.max_memories_per_module as u64,
            );
        }
        if m.table_defs.len() > c.max_tables_per_module {
            return limit(
                "max_tables_per_module",
                m.table_defs.len() as u64,
                c.max_tables_per_module as u64,
            );
        }
        for t in memories.iter().filter(|t| !t.shared) {
            let bytes = t.limits.min.saturating_mul(1u64 << t.page_size_log2);
            if bytes > c.max_memory_size as u64 {
                return limit("max_memory_size", bytes, c.max_memory_size as u64);
            }
        }
        for t in &m.table_defs {
            if t.ty.limits.min > c.table_elements as u64 {
                return limit("table_elements", t.ty.limits.min, c.table_elements as u64);
            }
        }
        if vmctx_size > c.max_core_instance_size {
            return limit(
                "max_core_instance_size",
                vmctx_size as u64,
                c.max_core_instance_size as u64,
            );
        }
        Ok(())
    }

    fn take(counter: &AtomicUsize, cap: usize, what: &str, limit: &str) -> Result<()> {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| {
                Error::Resource(format!(
                    "pooling allocator: all {cap} {what} slots are in use (`{limit}`)"
                ))
            })
    }

    /// Takes an instance slot, given back when the returned guard drops.
    pub(crate) fn instance_slot(self: &Arc<Pool>) -> Result<InstanceSlot> {
        Self::take(
            &self.instances,
            self.cfg.total_instances,
            "instance",
            "total_instances",
        )?;
        Ok(InstanceSlot(self.clone()))
    }

    /// Takes a table slot and an element buffer of `len` copies of `init`.
    pub(crate) fn table_slot(
        self: &Arc<Pool>,
        len: usize,
        init: usize,
    ) -> Result<(TableSlot, Vec<usize>)> {
        if len > self.cfg.table_elements {
            return Err(Error::Resource(format!(
                "table of {len} elements exceeds the pooling allocator's `table_elements` limit ({})",
                self.cfg.table_elements
            )));
        }
        Self::take(&self.tables, self.cfg.total_tables, "table", "total_tables")?;
        let slot = TableSlot(self.clone());
        let mut elements = self
            .free_elements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        elements.clear();
        if elements.try_reserve_exact(self.cfg.table_elements).is_err() {
            return Err(Error::Resource("cannot allocate a table".into()));
        }
        elements.resize(len, init);
        Ok((slot, elements))
    }

    /// Takes a fiber stack of `size` bytes (a released one if any).
    pub(crate) fn take_stack(&self, size: usize) -> Result<corosensei::stack::DefaultStack> {
        Self::take(&self.stacks, self.cfg.total_stacks, "stack", "total_stacks")?;
        let reused = self
            .free_stacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        match reused {
            Some(s) => Ok(s),
            None => corosensei::stack::DefaultStack::new(size).map_err(|e| {
                self.stacks.fetch_sub(1, Ordering::SeqCst);
                Error::Resource(format!("cannot allocate a {size}-byte fiber stack: {e}"))
            }),
        }
    }

    /// Gives a fiber stack back.
    pub(crate) fn return_stack(&self, stack: corosensei::stack::DefaultStack) {
        self.free_stacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stack);
        self.stacks.fetch_sub(1, Ordering::SeqCst);
    }

    /// Takes a memory slot, starting as `image` (a slot that last held a
    /// memory of that image is preferred: it needs no system call).
    pub(crate) fn memory(
        &self,
        cfg: &weft_memory::MemoryConfig,
        image: Option<&weft_memory::MemoryImage>,
    ) -> Result<weft_memory::Memory> {
        match self.memories.allocate_with_image(cfg, image) {
            Ok(m) => Ok(weft_memory::Memory::Pooled(m)),
            Err(weft_memory::Error::PoolExhausted { capacity }) => Err(Error::Resource(format!(
                "pooling allocator: all {capacity} memory slots are in use (`total_memories`)"
            ))),
            Err(e) => Err(Error::Resource(format!("cannot create memory: {e}"))),
        }
    }
}

/// An instance's lease on a pool's instance budget.
pub(crate) struct InstanceSlot(Arc<Pool>);

impl Drop for InstanceSlot {
    fn drop(&mut self) {
        self.0.instances.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A table's lease on a pool's table budget; its element buffer goes back
/// with [`TableSlot::release`].
pub(crate) struct TableSlot(Arc<Pool>);

impl TableSlot {
    pub(crate) fn max_elements(&self) -> usize {
        self.0.cfg.table_elements
    }

    /// Gives the table's element buffer back for reuse.
    pub(crate) fn release(&self, elements: Vec<usize>) {
        let mut free = self
            .0
            .free_elements
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if free.len() < self.0.cfg.total_tables {
            free.push(elements);
        }
    }
}

impl Drop for TableSlot {
    fn drop(&mut self) {
        self.0.tables.fetch_sub(1, Ordering::SeqCst);
    }
}
