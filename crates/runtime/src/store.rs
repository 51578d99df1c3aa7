//! Stores: the owners of all runtime state.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::Engine;
use crate::func::FuncData;
use crate::global::GlobalData;
use crate::instance::InstanceData;
use crate::memory::MemoryData;
use crate::values::ExternRef;

/// The per-store record that compiled code reads (the contract's
/// `VMStoreContext`); fields are at offsets defined by weft-jit.
#[repr(C, align(64))]
pub(crate) struct VMStoreBlock(pub(crate) [u8; 256]);

impl VMStoreBlock {
    pub(crate) fn ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr()
    }

    pub(crate) fn stack_limit(&mut self) -> &mut usize {
        let off = weft_jit::VMOffsets::STORE_CTX_STACK_LIMIT as usize;
        // SAFETY: the offset is within the 256-byte, 64-aligned block and
        // usize-aligned (checked by a unit test against the contract).
        unsafe { &mut *(self.0.as_mut_ptr().add(off) as *mut usize) }
    }
}

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
    pub(crate) vmstore: Box<VMStoreBlock>,
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
    pub fn new(engine: &Engine, data: T) -> Store<T> {
        Store {
            inner: Box::new(StoreInner {
                opaque: StoreOpaque {
                    engine: engine.clone(),
                    id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
                    vmstore: Box::new(VMStoreBlock([0; 256])),
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

impl StoreOpaque {
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
