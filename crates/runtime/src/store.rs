//! Stores: the owners of all runtime state.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::func::FuncData;
use crate::global::GlobalData;
use crate::instance::InstanceData;
use crate::interrupt::{InterruptHandle, UpdateDeadline, VMStoreContext};
use crate::memory::MemoryData;
use crate::values::ExternRef;

/// A store owns instances, memories, globals and host functions, plus the
/// embedder's data `T`. It is `Send` but not `Sync`: every call takes
/// `&mut Store`, so two threads can never run code in one store at once.
pub struct Store<T> {
    /// The store's allocation (from `Box::into_raw`). Every access goes
    /// through this one root pointer, and the copy kept in
    /// `StoreOpaque::self_ptr` (for host contexts, instances and callbacks)
    /// is the same pointer: none of them is derived from a temporary
    /// borrow of another.
    root: std::ptr::NonNull<StoreInner<T>>,
    _owns: std::marker::PhantomData<Box<StoreInner<T>>>,
}

// SAFETY: a store owns its contents exclusively (the raw pointers inside
// point only at allocations it owns or at immutable engine code); moving it
// to another thread is sound when its data may move, as `Box` would allow.
// It is deliberately not `Sync`.
unsafe impl<T: Send> Send for Store<T> {}

impl<T> Drop for Store<T> {
    fn drop(&mut self) {
        // SAFETY: `root` came from `Box::into_raw` in `Store::new` and is
        // released exactly once, here or in `into_data`.
        drop(unsafe { Box::from_raw(self.root.as_ptr()) });
    }
}

/// The store's contents; `opaque` must stay the first field so that a pointer
/// to it is also a pointer to the whole (see `func::host_callback`).
#[repr(C)]
pub(crate) struct StoreInner<T> {
    pub(crate) opaque: StoreOpaque,
    pub(crate) data: T,
}

/// The part of a store that does not depend on `T`. `pub` only so that the
/// sealed value traits can name it; this module is private, so nothing
/// outside the crate can.
#[doc(hidden)]
pub struct StoreOpaque {
    pub(crate) engine: Engine,
    pub(crate) id: u64,
    pub(crate) vmstore: Arc<VMStoreContext>,
    /// The epoch deadline the embedder asked for (the context's field is
    /// lowered to 0 to interrupt).
    pub(crate) epoch_deadline: u64,
    /// Called when the epoch deadline is reached (default: trap).
    pub(crate) epoch_callback: Option<EpochCallback>,
    /// The embedder's limiter on memory and table growth.
    pub(crate) limiter: Option<LimiterFn>,
    /// Boxed: compiled code and builtins reach an instance through a raw
    /// pointer stored in its vmctx, so it must not move when this grows.
    #[allow(clippy::vec_box, reason = "instances need stable addresses")]
    pub(crate) instances: Vec<Box<InstanceData>>,
    pub(crate) funcs: Vec<FuncData>,
    pub(crate) memories: Vec<MemoryData>,
    pub(crate) globals: Vec<GlobalData>,
    /// Linker host functions already created in this store: the address of
    /// the closure's `Arc` (kept alive by the function) to its index.
    pub(crate) host_func_cache: HashMap<usize, usize>,
    /// Function index of every `VMFuncRef` address in this store.
    pub(crate) funcref_index: HashMap<usize, usize>,
    /// Every `externref` that has entered the store (kept until the store
    /// is dropped; see `ExternRef`).
    pub(crate) externrefs: HashMap<usize, ExternRef>,
    /// Tags (boxed: a tag's address is its identity in compiled code).
    #[allow(clippy::vec_box, reason = "tags need stable addresses")]
    pub(crate) tags: Vec<Box<crate::exception::TagEntity>>,
    /// Thrown exceptions.
    pub(crate) exceptions: crate::exception::ExnHeap,
    /// Tables.
    pub(crate) tables: Vec<crate::table::TableData>,
    /// A host error or panic waiting to be delivered to the outermost caller.
    pub(crate) pending: Option<Pending>,
    /// Depth of wasm activations of this store on the stack.
    /// Calls into wasm that ended in an error (trap, host error or
    /// panic), counted so an `InstancePool` can tell a store that failed.
    /// The stack of async calls, kept between calls (given back to the
    /// pool, or freed, when the store goes).
    pub(crate) fiber_stack: Option<Box<crate::fiber::FiberStack>>,
    /// Fuel set aside beyond the slice compiled code sees (see
    /// `Store::fuel_async_yield_interval`).
    pub(crate) fuel_reserve: u64,
    /// The fuel slice: async calls yield each time one is used up.
    pub(crate) fuel_yield_interval: Option<u64>,
    pub(crate) failed_calls: u64,
    pub(crate) depth: u32,
    /// (An address near) the stack pointer of this store's outermost call
    /// into wasm now running: the top of the stack an exception collection
    /// scans.
    pub(crate) entry_sp: usize,
    /// The store's root pointer (see `Store::root`), for the raw pointers
    /// that host contexts, instances and callbacks keep.
    pub(crate) self_ptr: *mut StoreOpaque,
}

pub(crate) enum Pending {
    Error(crate::Error),
    Panic(Box<dyn Any + Send>),
    /// A runtime builtin failed with this trap (e.g. `table.copy` out of bounds).
    Trap(weft_jit::TrapKind),
}

// SAFETY: the raw pointers inside a store (vmctx blocks, memory definitions,
// function references) point only at allocations the store itself owns or
// at engine-owned code that is immutable and `Sync`; they are never shared
// with another store, so moving the whole store to another thread is sound.
unsafe impl Send for StoreOpaque {}

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

impl<T> Store<T> {
    /// Creates a store holding `data`.
    ///
    /// # Panics
    /// With `Config::interruptible`, if the kernel refuses to map the one
    /// page the store's interrupt polls read (an out-of-memory condition).
    pub fn new(engine: &Engine, data: T) -> Store<T> {
        let boxed = Box::new(StoreInner {
            opaque: StoreOpaque {
                engine: engine.clone(),
                id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
                vmstore: Arc::new(
                    VMStoreContext::new(
                        &engine.inner.epoch,
                        engine
                            .inner
                            .config
                            .tunables
                            .interrupt_poll
                            .then_some(&engine.inner.poll_pages),
                    )
                    .expect("weft: cannot map a store's interrupt page"),
                ),
                epoch_deadline: u64::MAX,
                epoch_callback: None,
                limiter: None,
                instances: Vec::new(),
                funcs: Vec::new(),
                memories: Vec::new(),
                globals: Vec::new(),
                host_func_cache: HashMap::new(),
                funcref_index: HashMap::new(),
                externrefs: HashMap::new(),
                tags: Vec::new(),
                exceptions: Default::default(),
                tables: Vec::new(),
                pending: None,
                depth: 0,
                entry_sp: 0,
                failed_calls: 0,
                fuel_reserve: 0,
                fuel_yield_interval: None,
                fiber_stack: None,
                self_ptr: std::ptr::null_mut(),
            },
            data,
        });
        let root = std::ptr::NonNull::from(Box::leak(boxed));
        let store = Store {
            root,
            _owns: std::marker::PhantomData,
        };
        // SAFETY: `root` is the live allocation just made; nothing else
        // refers to it yet.
        unsafe { (*root.as_ptr()).opaque.self_ptr = root.as_ptr().cast::<StoreOpaque>() };
        store
    }

    /// The store's contents.
    pub(crate) fn inner(&self) -> &StoreInner<T> {
        // SAFETY: `root` is live while the store is; `&self` excludes
        // mutation through the store for the borrow's length.
        unsafe { self.root.as_ref() }
    }

    /// The store's contents, mutably.
    pub(crate) fn inner_mut(&mut self) -> &mut StoreInner<T> {
        // SAFETY: as for `inner`; `&mut self` makes the borrow exclusive.
        unsafe { self.root.as_mut() }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner().opaque.engine
    }

    /// The embedder's data.
    pub fn data(&self) -> &T {
        &self.inner().data
    }

    /// The embedder's data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.inner_mut().data
    }

    /// How many exceptions the store holds. One caught for its fields only
    /// (and held by no [`Exn`](crate::Exn)) is freed at once; one that
    /// became a value (`catch_ref`, an `exnref` global or table element,
    /// an `Exn`) is freed by a collection once nothing reaches it.
    /// Collections run by themselves as the count grows; at most
    /// [`MAX_LIVE_EXCEPTIONS`](crate::MAX_LIVE_EXCEPTIONS) are live.
    pub fn exceptions_held(&self) -> usize {
        self.inner().opaque.exceptions.held()
    }

    /// Frees every exception nothing reaches any more (no `Exn` the host
    /// holds, no global, table or other live exception), and returns how
    /// many it freed. Collections also run by themselves; this is for an
    /// embedder that wants the memory back now, say between requests.
    ///
    /// ```
    /// use weft_runtime::{Engine, Exn, Store, Tag, TagType};
    /// let mut store = Store::new(&Engine::default(), ());
    /// let tag = Tag::new(&mut store, &TagType::new([]))?;
    /// let exn = Exn::new(&mut store, &tag, &[])?;
    /// assert_eq!(store.collect_exceptions(), 0); // `exn` holds it
    /// drop(exn);
    /// assert_eq!(store.collect_exceptions(), 1);
    /// assert_eq!(store.exceptions_held(), 0);
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    pub fn collect_exceptions(&mut self) -> usize {
        self.inner_mut().opaque.collect_exceptions()
    }

    /// Sets the epoch deadline `ticks` epochs from now (see
    /// [`Engine::increment_epoch`]) and clears any pending interrupt.
    pub fn set_epoch_deadline(&mut self, ticks: u64) {
        let o = &mut self.inner_mut().opaque;
        let deadline = o.engine.current_epoch().saturating_add(ticks);
        o.set_vm_deadline(deadline);
    }

    /// When the epoch deadline is reached, yield to the async executor and
    /// then continue with the deadline `delta` ticks later: cooperative
    /// time-slicing of async calls (a synchronous call reaching the
    /// deadline traps with an error). Interrupt handles and wall-clock
    /// deadlines still stop the call.
    pub fn epoch_deadline_async_yield_and_update(&mut self, delta: u64)
    where
        T: 'static,
    {
        self.epoch_deadline_callback(move |_| Ok(UpdateDeadline::Yield(delta)));
    }

    /// When the epoch deadline is reached, trap with "interrupt" (the default).
    pub fn epoch_deadline_trap(&mut self) {
        self.inner_mut().opaque.epoch_callback = None;
    }

    /// When the epoch deadline is reached, call `f`, which decides whether to
    /// continue (with a new deadline) or to trap. Interrupt handles and
    /// wall-clock deadlines always trap, without consulting `f`.
    pub fn epoch_deadline_callback(
        &mut self,
        mut f: impl FnMut(StoreContextMut<'_, T>) -> Result<UpdateDeadline> + Send + 'static,
    ) where
        T: 'static,
    {
        self.inner_mut().opaque.epoch_callback = Some(Box::new(move |opaque: *mut StoreOpaque| {
            // SAFETY: the callback is only called by the EpochInterrupt
            // builtin with the store it was installed in; `StoreInner<T>` is
            // `repr(C)` with `opaque` first.
            let inner = unsafe { &mut *(opaque as *mut StoreInner<T>) };
            f(StoreContextMut(inner))
        }));
    }

    /// Installs a resource limiter: before any memory or table of this store
    /// grows (`memory.grow`, `table.grow`, [`Memory::grow`](crate::Memory::grow),
    /// [`Table::grow`](crate::Table::grow)), weft asks the limiter that `f`
    /// returns from the store's data. A refusal makes the grow fail (wasm
    /// sees -1); an error from the limiter ends the call with that error. A
    /// panic in the limiter is carried to the caller of the wasm function,
    /// as a host function's panic is; the limiter stays installed.
    ///
    /// ```
    /// use weft_runtime::{Engine, Linker, Module, ResourceLimiter, Store};
    ///
    /// struct Cap(usize);
    /// impl ResourceLimiter for Cap {
    ///     fn memory_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> weft_runtime::Result<bool> {
    ///         Ok(desired <= self.0)
    ///     }
    ///     fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> weft_runtime::Result<bool> {
    ///         Ok(true)
    ///     }
    /// }
    ///
    /// let engine = Engine::default();
    /// let module = Module::new(&engine, r#"(module (memory 1)
    ///     (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#)?;
    /// let mut store = Store::new(&engine, Cap(4 << 16));
    /// store.limiter(|cap| cap as &mut dyn ResourceLimiter);
    /// let instance = Linker::new().instantiate(&mut store, &module)?;
    /// let grow = instance.get_typed_func::<i32, i32>(&mut store, "grow")?;
    /// assert_eq!(grow.call(&mut store, 3)?, 1); // 4 pages: allowed
    /// assert_eq!(grow.call(&mut store, 1)?, -1); // 5 pages: refused
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    pub fn limiter(
        &mut self,
        mut f: impl (FnMut(&mut T) -> &mut dyn ResourceLimiter) + Send + 'static,
    ) where
        T: 'static,
    {
        self.inner_mut().opaque.limiter =
            Some(Box::new(move |opaque: *mut StoreOpaque, g: Growth| {
                // SAFETY: the limiter is only called by `StoreOpaque::allow_growth`
                // of the store it was installed in, which passes the store's own
                // pointer and holds no other reference to the data; `StoreInner<T>`
                // is `repr(C)` with `opaque` first.
                let inner = unsafe { &mut *(opaque as *mut StoreInner<T>) };
                let l = f(&mut inner.data);
                if g.table {
                    l.table_growing(g.current, g.desired, g.maximum)
                } else {
                    l.memory_growing(g.current, g.desired, g.maximum)
                }
            }));
    }

    /// Interrupts calls that are still running at `at` (they trap with
    /// "interrupt"), and clears any pending interrupt. An epoch deadline
    /// (`set_epoch_deadline`) stays as it was: the two are independent. One
    /// ticker thread per engine fires all wall-clock deadlines; it starts on
    /// first use.
    ///
    /// # Errors
    /// Fails unless the engine compiles interruption checks
    /// (`Config::interruptible` or `Config::epoch_interruption`): without
    /// them the deadline could never stop a running call.
    pub fn set_deadline(&mut self, at: Instant) -> Result<()> {
        let o = &mut self.inner_mut().opaque;
        o.check_interruptible()?;
        let epoch_deadline = o.epoch_deadline;
        o.set_vm_deadline(epoch_deadline);
        o.engine.inner.ticker.schedule(&o.vmstore, at);
        Ok(())
    }

    /// [`set_deadline`](Self::set_deadline) `timeout` from now.
    ///
    /// # Errors
    /// As for [`set_deadline`](Self::set_deadline).
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        match Instant::now().checked_add(timeout) {
            Some(at) => self.set_deadline(at),
            None => {
                self.inner_mut().opaque.check_interruptible()?;
                self.clear_deadline();
                Ok(())
            }
        }
    }

    /// Removes every deadline and clears any pending interrupt.
    pub fn clear_deadline(&mut self) {
        self.inner_mut().opaque.set_vm_deadline(u64::MAX);
    }

    /// A handle that interrupts this store's running or next call from any
    /// thread. Running wasm notices it only if the engine compiles
    /// interruption checks (`Config::interruptible` or
    /// `Config::epoch_interruption`); bulk memory operations always do.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            ctx: self.inner().opaque.vmstore.clone(),
        }
    }

    /// Sets the fuel available to wasm in this store.
    ///
    /// # Errors
    /// Fails unless the engine was configured with `Config::consume_fuel`.
    pub fn set_fuel(&mut self, fuel: u64) -> Result<()> {
        let o = &mut self.inner_mut().opaque;
        o.check_fuel()?;
        let fuel = fuel.min(i64::MAX as u64);
        let slice = o.fuel_yield_interval.map_or(fuel, |i| i.min(fuel));
        o.fuel_reserve = fuel - slice;
        o.vmstore
            .fuel_consumed
            .store(-(slice as i64), Ordering::SeqCst);
        Ok(())
    }

    /// Makes async calls yield to the executor each time they have used
    /// `interval` units of fuel (`None`: never, the default): cooperative
    /// time-slicing by work done rather than by time. The store's fuel
    /// ([`set_fuel`](Self::set_fuel)) still bounds the total; synchronous
    /// calls are unaffected. Re-splits the fuel left.
    ///
    /// # Errors
    /// Fails unless the engine consumes fuel, or if `interval` is 0.
    pub fn fuel_async_yield_interval(&mut self, interval: Option<u64>) -> Result<()> {
        self.inner().opaque.check_fuel()?;
        if interval == Some(0) {
            return Err(Error::InvalidArgument(
                "the fuel yield interval must be at least 1".into(),
            ));
        }
        let left = self.get_fuel()?;
        self.inner_mut().opaque.fuel_yield_interval = interval;
        self.set_fuel(left)
    }

    /// The fuel left.
    ///
    /// # Errors
    /// Fails unless the engine was configured with `Config::consume_fuel`.
    pub fn get_fuel(&self) -> Result<u64> {
        self.inner().opaque.check_fuel()?;
        let c = self
            .inner()
            .opaque
            .vmstore
            .fuel_consumed
            .load(Ordering::SeqCst);
        let active = if c < 0 { c.unsigned_abs() } else { 0 };
        Ok(active.saturating_add(self.inner().opaque.fuel_reserve))
    }

    /// Consumes the store and returns the embedder's data; everything else
    /// the store owns is released.
    pub fn into_data(self) -> T {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `root` came from `Box::into_raw`; `this` is never dropped,
        // so the allocation is released exactly once, here.
        let inner = unsafe { Box::from_raw(this.root.as_ptr()) };
        inner.data
    }
}

impl<T> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("id", &self.inner().opaque.id)
            .finish_non_exhaustive()
    }
}

/// A shared borrow of a store, for reading (types, sizes, memory contents).
pub struct StoreContext<'a, T>(pub(crate) &'a StoreInner<T>);

impl<T> StoreContext<'_, T> {
    /// The embedder's data.
    pub fn data(&self) -> &T {
        &self.0.data
    }
    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.0.opaque.engine
    }
}

impl<'a, T> From<&'a Store<T>> for StoreContext<'a, T> {
    fn from(s: &'a Store<T>) -> Self {
        StoreContext(s.inner())
    }
}

impl<'a, T> From<&'a mut Store<T>> for StoreContext<'a, T> {
    fn from(s: &'a mut Store<T>) -> Self {
        StoreContext(s.inner())
    }
}

impl<'a, T> From<&'a StoreContextMut<'_, T>> for StoreContext<'a, T> {
    fn from(s: &'a StoreContextMut<'_, T>) -> Self {
        StoreContext(s.0)
    }
}

impl<'a, T> From<&'a mut Store<T>> for StoreContextMut<'a, T> {
    fn from(s: &'a mut Store<T>) -> Self {
        StoreContextMut(s.inner_mut())
    }
}

impl<'a, T> From<&'a mut StoreContextMut<'_, T>> for StoreContextMut<'a, T> {
    fn from(s: &'a mut StoreContextMut<'_, T>) -> Self {
        StoreContextMut(s.0)
    }
}

/// Anything that can lend shared access to a store: `&Store<T>`,
/// `&mut Store<T>`, [`StoreContext`], [`StoreContextMut`] and
/// [`Caller`](crate::Caller). Read-only methods take `impl AsContext`.
pub trait AsContext {
    /// The store's data type.
    type Data;
    /// Borrows the store.
    fn as_context(&self) -> StoreContext<'_, Self::Data>;
}

impl<T> AsContext for Store<T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.inner())
    }
}

impl<T> AsContext for StoreContext<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}

impl<T> AsContext for StoreContextMut<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}

impl<T: AsContext> AsContext for &T {
    type Data = T::Data;
    fn as_context(&self) -> StoreContext<'_, T::Data> {
        (**self).as_context()
    }
}

impl<T: AsContext> AsContext for &mut T {
    type Data = T::Data;
    fn as_context(&self) -> StoreContext<'_, T::Data> {
        (**self).as_context()
    }
}

/// A mutable borrow of a store, as handed to host functions and API calls.
pub struct StoreContextMut<'a, T>(pub(crate) &'a mut StoreInner<T>);

impl<T> StoreContextMut<'_, T> {
    /// The embedder's data.
    pub fn data(&self) -> &T {
        &self.0.data
    }
    /// The embedder's data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.0.data
    }
    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.0.opaque.engine
    }
}

/// Anything that can lend mutable access to a store: `&mut Store<T>`,
/// [`StoreContextMut`] and [`Caller`](crate::Caller).
pub trait AsContextMut: AsContext {
    /// Borrows the store.
    fn as_context_mut(&mut self) -> StoreContextMut<'_, Self::Data>;
}

impl<T> AsContextMut for Store<T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.inner_mut())
    }
}

impl<T> AsContextMut for StoreContextMut<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.0)
    }
}

impl<T: AsContextMut> AsContextMut for &mut T {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, <T as AsContext>::Data> {
        (**self).as_context_mut()
    }
}

/// An epoch-deadline callback, type-erased over the store's data.
/// Decides whether a store's memories and tables may grow (see
/// [`Store::limiter`]). Sizes are in bytes for memories and in elements for
/// tables; `maximum` is the declared maximum, if any.
pub trait ResourceLimiter: Send {
    /// May a memory of `current` bytes grow to `desired` bytes? `Ok(false)`
    /// makes the grow fail (wasm's `memory.grow` returns -1); `Err` ends the
    /// running call with that error.
    ///
    /// # Errors
    /// Whatever the embedder wants the call to end with.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool>;

    /// May a table of `current` elements grow to `desired` elements?
    ///
    /// # Errors
    /// As for [`memory_growing`](Self::memory_growing).
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool>;
}

/// One growth request for the limiter.
#[derive(Clone, Copy)]
pub(crate) struct Growth {
    pub(crate) table: bool,
    pub(crate) current: usize,
    pub(crate) desired: usize,
    pub(crate) maximum: Option<usize>,
}

pub(crate) type LimiterFn = Box<dyn FnMut(*mut StoreOpaque, Growth) -> Result<bool> + Send>;

pub(crate) type EpochCallback = Box<dyn FnMut(*mut StoreOpaque) -> Result<UpdateDeadline> + Send>;

impl StoreOpaque {
    /// Grows memory `m` of the store by `delta` pages if the limiter allows:
    /// the old size, or `None` if refused (by the limiter or the memory).
    pub(crate) fn grow_memory(&mut self, m: usize, delta: u64) -> Result<Option<u64>> {
        if delta > 0
            && let Some(g) = self.memories[m].growth(delta)
            && !self.allow_growth(g)?
        {
            return Ok(None);
        }
        Ok(self.memories[m].grow(delta))
    }

    /// Grows table `t` of the store by `delta` elements set to `init` if the
    /// limiter allows: the old size, or `None` if refused.
    pub(crate) fn grow_table(&mut self, t: usize, delta: u64, init: usize) -> Result<Option<u64>> {
        let table = &self.tables[t];
        if delta > 0
            && let (Ok(current), Ok(d)) = (usize::try_from(table.len()), usize::try_from(delta))
            && let Some(desired) = current.checked_add(d)
        {
            let maximum = table.ty.limits.max.and_then(|m| usize::try_from(m).ok());
            let g = Growth {
                table: true,
                current,
                desired,
                maximum,
            };
            if !self.allow_growth(g)? {
                return Ok(None);
            }
        }
        Ok(self.tables[t].grow(delta, init))
    }

    /// Asks the embedder's limiter (if any) whether a grow may happen. A
    /// panic in the limiter unwinds through here with the limiter put back.
    pub(crate) fn allow_growth(&mut self, g: Growth) -> Result<bool> {
        let Some(f) = self.limiter.take() else {
            return Ok(true);
        };
        /// Puts the limiter back when the call ends, even by unwinding.
        struct Restore(*mut StoreOpaque, Option<LimiterFn>);
        impl Drop for Restore {
            fn drop(&mut self) {
                // SAFETY: the store outlives this frame; the limiter's
                // borrow of it has ended by the time this runs.
                let opaque = unsafe { &mut *self.0 };
                if opaque.limiter.is_none() {
                    opaque.limiter = self.1.take();
                }
            }
        }
        let me = self.self_ptr;
        let mut guard = Restore(me, Some(f));
        let f = guard.1.as_mut().expect("just set");
        f(me, g)
    }

    /// Sets the deadline compiled code compares against, a new wall-clock
    /// generation (so pending ticker entries are void) and no interrupt.
    pub(crate) fn set_vm_deadline(&mut self, deadline: u64) {
        self.epoch_deadline = deadline;
        self.vmstore.new_deadline_period(deadline);
    }

    fn check_interruptible(&self) -> Result<()> {
        let t = &self.engine.inner.config.tunables;
        if t.interrupt_poll || t.epoch_interruption {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "deadlines need interruption checks: use Config::interruptible(true)".into(),
            ))
        }
    }

    fn check_fuel(&self) -> Result<()> {
        if self.engine.inner.config.tunables.consume_fuel {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "fuel is not enabled: use Config::consume_fuel(true)".into(),
            ))
        }
    }

    #[inline]
    pub(crate) fn check(&self, store_id: u64, what: &str) -> crate::Result<()> {
        if self.id == store_id {
            Ok(())
        } else {
            Err(other_store(what))
        }
    }
}

#[cold]
#[inline(never)]
fn other_store(what: &str) -> crate::Error {
    crate::Error::InvalidArgument(format!("{what} belongs to a different store"))
}
