//! # weft-runtime
//!
//! Stores, instances, linking, host calls and traps for weft. The public
//! crate `weft` re-exports this API; see its documentation for examples.
//!
//! The runtime composes [`weft_decoder`] (module descriptions), [`weft_jit`]
//! (compiled code and the vmctx layout it expects) and [`weft_memory`]
//! (linear memories). It lays out every instance's vmctx exactly as
//! `weft_jit::VMOffsets` describes and reaches compiled code only through
//! `array_call` entries, catching traps with signal handlers and a `setjmp`
//! shim (see `ARCHITECTURE.md`). Nothing of those crates appears in this
//! crate's public API: its types (`ValType`, `FuncType`, `Error`,
//! `TrapKind`, ...) are its own.
#![deny(missing_docs)]

mod builtins;
mod cache;
mod dwarf;
mod engine;
mod error;
mod exception;
mod fiber;
mod func;
mod global;
mod instance;
mod instance_pool;
mod interrupt;
mod linker;
mod memory;
mod module;
mod pooling;
mod registry;
mod shared_memory;
mod stack;
mod store;
mod sync;
mod table;
mod traphandlers;
mod types;
mod values;

pub use engine::{Config, Engine, OptLevel};
pub use error::{Error, FrameInfo, Result, Trap, TrapKind};
pub use exception::{Exn, MAX_LIVE_EXCEPTION_BYTES, MAX_LIVE_EXCEPTIONS, Tag, TagType};
pub use func::{Caller, Func, IntoFunc, IntoResults, TypedFunc};
pub use global::Global;
pub use instance::{Extern, Instance};
pub use instance_pool::{
    InstancePool, InstancePoolConfig, InstancePoolStats, PooledInstance, ReturnPolicy,
};
pub use interrupt::{InterruptHandle, UpdateDeadline};
pub use linker::{InstancePre, Linker};
pub use memory::Memory;
pub use module::Module;
pub use pooling::{InstanceAllocationStrategy, PoolingAllocationConfig, PoolingStats};
pub use shared_memory::{AtomicInt, RmwOp, SharedMemory, WaitOutcome};
pub use store::{AsContext, AsContextMut, ResourceLimiter, Store, StoreContext, StoreContextMut};
pub use table::{MAX_TABLE_ELEMENTS, Table};
pub use types::{
    ExportType, ExternType, FuncType, GlobalType, HeapType, ImportType, MemoryType, RefType,
    TableType, ValType,
};
pub use values::{ExternRef, V128, Val, WasmList, WasmTy};
