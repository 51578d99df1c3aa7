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
    pub(crate) inner: Box<StoreInner<T>>,
}

/// The store's contents; `opaque` must stay the first field so that a pointer
/// to it is also a pointer to the whole (see `func::host_callback`).
#[repr(C)]
pub struct StoreInner<T> {
    pub(crate) opaque: StoreOpaque,
    pub(crate) data: T,
}

/// The part of a store that does not depend on `T`.
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
    /// Boxed: compiled code and builtins reach an instance through a raw
    /// pointer stored in its vmctx, so it must not move when this grows.
    #[allow(clippy::vec_box, reason = "instances need stable addresses")]
    pub(crate) instances: Vec<Box<InstanceData>>,
    pub(crate) funcs: Vec<FuncData>,
    pub(crate) memories: Vec<MemoryData>,
    pub(crate) globals: Vec<GlobalData>,
    /// Function index of every `VMFuncRef` address in this store.
    pub(crate) funcref_index: HashMap<usize, usize>,
    /// Every `externref` that has entered the store (kept until the store
    /// is dropped; see `ExternRef`).
    pub(crate) externrefs: HashMap<usize, ExternRef>,
    /// Tables.
    pub(crate) tables: Vec<crate::table::TableData>,
    /// A host error or panic waiting to be delivered to the outermost caller.
    pub(crate) pending: Option<Pending>,
    /// Depth of wasm activations of this store on the stack.
    pub(crate) depth: u32,
}

pub(crate) enum Pending {
    Error(crate::Error),
    Panic(Box<dyn Any + Send>),
    /// A runtime builtin failed with this trap (e.g. `table.copy` out of bounds).
    Trap(crate::TrapKind),
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
        Store {
            inner: Box::new(StoreInner {
                opaque: StoreOpaque {
                    engine: engine.clone(),
                    id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
                    vmstore: Arc::new(
                        VMStoreContext::new(
                            &engine.inner.epoch,
                            engine.inner.config.tunables.interrupt_poll,
                        )
                        .expect("weft: cannot map a store's interrupt page"),
                    ),
                    epoch_deadline: u64::MAX,
                    epoch_callback: None,
                    instances: Vec::new(),
                    funcs: Vec::new(),
                    memories: Vec::new(),
                    globals: Vec::new(),
                    funcref_index: HashMap::new(),
                    externrefs: HashMap::new(),
                    tables: Vec::new(),
                    pending: None,
                    depth: 0,
                },
                data,
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.opaque.engine
    }

    /// The embedder's data.
    pub fn data(&self) -> &T {
        &self.inner.data
    }

    /// The embedder's data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.inner.data
    }

    /// Sets the epoch deadline `ticks` epochs from now (see
    /// [`Engine::increment_epoch`]) and clears any pending interrupt.
    pub fn set_epoch_deadline(&mut self, ticks: u64) {
        let o = &mut self.inner.opaque;
        let deadline = o.engine.current_epoch().saturating_add(ticks);
        o.set_vm_deadline(deadline);
    }

    /// When the epoch deadline is reached, trap with "interrupt" (the default).
    pub fn epoch_deadline_trap(&mut self) {
        self.inner.opaque.epoch_callback = None;
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
        self.inner.opaque.epoch_callback = Some(Box::new(move |opaque: *mut StoreOpaque| {
            // SAFETY: the callback is only called by the EpochInterrupt
            // builtin with the store it was installed in; `StoreInner<T>` is
            // `repr(C)` with `opaque` first.
            let inner = unsafe { &mut *(opaque as *mut StoreInner<T>) };
            f(StoreContextMut(inner))
        }));
    }

    /// Interrupts calls that are still running at `at` (they trap with
    /// "interrupt"), and clears any pending interrupt. One ticker thread per
    /// engine fires all wall-clock deadlines; it starts on first use.
    ///
    /// # Errors
    /// Fails unless the engine compiles interruption checks
    /// (`Config::interruptible` or `Config::epoch_interruption`): without
    /// them the deadline could never stop a running call.
    pub fn set_deadline(&mut self, at: Instant) -> Result<()> {
        let o = &mut self.inner.opaque;
        o.check_interruptible()?;
        o.set_vm_deadline(u64::MAX);
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
                self.inner.opaque.check_interruptible()?;
                self.clear_deadline();
                Ok(())
            }
        }
    }

    /// Removes every deadline and clears any pending interrupt.
    pub fn clear_deadline(&mut self) {
        self.inner.opaque.set_vm_deadline(u64::MAX);
    }

    /// A handle that interrupts this store's running or next call from any
    /// thread. Running wasm notices it only if the engine compiles
    /// interruption checks (`Config::interruptible` or
    /// `Config::epoch_interruption`); bulk memory operations always do.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            ctx: self.inner.opaque.vmstore.clone(),
        }
    }

    /// Sets the fuel available to wasm in this store.
    ///
    /// # Errors
    /// Fails unless the engine was configured with `Config::consume_fuel`.
    pub fn set_fuel(&mut self, fuel: u64) -> Result<()> {
        self.inner.opaque.check_fuel()?;
        let f = i64::try_from(fuel).unwrap_or(i64::MAX);
        self.inner
            .opaque
            .vmstore
            .fuel_consumed
            .store(-f, Ordering::SeqCst);
        Ok(())
    }

    /// The fuel left.
    ///
    /// # Errors
    /// Fails unless the engine was configured with `Config::consume_fuel`.
    pub fn get_fuel(&self) -> Result<u64> {
        self.inner.opaque.check_fuel()?;
        let c = self
            .inner
            .opaque
            .vmstore
            .fuel_consumed
            .load(Ordering::SeqCst);
        Ok(if c < 0 { c.unsigned_abs() } else { 0 })
    }

    /// Consumes the store and returns the embedder's data; everything else
    /// the store owns is released.
    pub fn into_data(self) -> T {
        let inner = *self.inner;
        inner.data
    }
}

impl<T> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("id", &self.inner.opaque.id)
            .finish_non_exhaustive()
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
pub trait AsContextMut {
    /// The store's data type.
    type Data;
    /// Borrows the store.
    fn as_context_mut(&mut self) -> StoreContextMut<'_, Self::Data>;
}

impl<T> AsContextMut for Store<T> {
    type Data = T;
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(&mut self.inner)
    }
}

impl<T> AsContextMut for StoreContextMut<'_, T> {
    type Data = T;
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.0)
    }
}

impl<T: AsContextMut> AsContextMut for &mut T {
    type Data = T::Data;
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T::Data> {
        (**self).as_context_mut()
    }
}

/// An epoch-deadline callback, type-erased over the store's data.
pub(crate) type EpochCallback = Box<dyn FnMut(*mut StoreOpaque) -> Result<UpdateDeadline> + Send>;

impl StoreOpaque {
    /// Sets the deadline compiled code compares against, a new wall-clock
    /// generation (so pending ticker entries are void) and no interrupt.
    pub(crate) fn set_vm_deadline(&mut self, deadline: u64) {
        self.epoch_deadline = deadline;
        let ctx = &self.vmstore;
        ctx.deadline_generation.fetch_add(1, Ordering::SeqCst);
        ctx.clear_interrupt();
        ctx.epoch_deadline.store(deadline, Ordering::SeqCst);
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

    pub(crate) fn check(&self, store_id: u64, what: &str) -> crate::Result<()> {
        if self.id == store_id {
            Ok(())
        } else {
            Err(crate::Error::InvalidArgument(format!(
                "{what} belongs to a different store"
            )))
        }
    }
}
