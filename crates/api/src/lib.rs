//! # weft
//!
//! A WebAssembly runtime that gets concurrency right: memory that grows
//! safely while other threads run, calls that cannot race (a [`Store`] is
//! `Send` but not `Sync`, and every call takes `&mut Store`), execution that
//! stops when asked, at Cranelift speed.
//!
//! ```
//! use weft::{Engine, Instance, Module, Store};
//!
//! # fn main() -> weft::Result<()> {
//! let engine = Engine::default();
//! let module = Module::new(&engine, r#"
//!     (module
//!       (func $fib (export "fib") (param i32) (result i32)
//!         (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
//!           (then (local.get 0))
//!           (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
//!                          (call $fib (i32.sub (local.get 0) (i32.const 2))))))))
//! "#)?;
//! let mut store = Store::new(&engine, ());
//! let instance = Instance::new(&mut store, &module, &[])?;
//! let fib = instance.get_typed_func::<i32, i32>(&mut store, "fib")?;
//! assert_eq!(fib.call(&mut store, 20)?, 6765);
//! # Ok(())
//! # }
//! ```
//!
//! Traps are ordinary errors, and the store stays usable after one:
//!
//! ```
//! # use weft::{Engine, Instance, Module, Store, TrapKind};
//! # fn main() -> weft::Result<()> {
//! let engine = Engine::default();
//! let module = Module::new(&engine, r#"(module
//!     (func (export "div") (param i32 i32) (result i32)
//!       (i32.div_s (local.get 0) (local.get 1))))"#)?;
//! let mut store = Store::new(&engine, ());
//! let instance = Instance::new(&mut store, &module, &[])?;
//! let div = instance.get_typed_func::<(i32, i32), i32>(&mut store, "div")?;
//! let err = div.call(&mut store, (1, 0)).unwrap_err();
//! assert_eq!(err.as_trap().unwrap().kind(), TrapKind::IntegerDivisionByZero);
//! assert_eq!(div.call(&mut store, (7, 2))?, 3);
//! # Ok(())
//! # }
//! ```
//!
//! # The crate boundary
//!
//! Everything public is listed here. `weft` is a thin face over
//! `weft-runtime`: every type it names is weft's own (or, for the atomics
//! helpers, `weft-memory`'s, a crate usable on its own); no type of
//! wasmparser, the decoder or the JIT appears in a public signature, and the
//! runtime's internals that signal handlers and compiled code trust (the
//! code registry, the trap handlers, store internals) are not reachable.
//! `tests/public_surface.rs` enforces it.
#![deny(missing_docs)]

pub use weft_runtime::{
    AsContext, AsContextMut, AtomicInt, Caller, Config, Engine, Error, Exn, ExportType, Extern,
    ExternRef, ExternType, FrameInfo, Func, FuncType, Global, GlobalType, HeapType, ImportType,
    Instance, InstanceAllocationStrategy, InstancePool, InstancePoolConfig, InstancePoolStats,
    InstancePre, InterruptHandle, IntoFunc, IntoResults, Linker, MAX_LIVE_EXCEPTION_BYTES,
    MAX_LIVE_EXCEPTIONS, MAX_TABLE_ELEMENTS, Memory, MemoryType, Module, OptLevel, PooledInstance,
    PoolingAllocationConfig, PoolingStats, RefType, ResourceLimiter, Result, ReturnPolicy, RmwOp,
    SharedMemory, Store, StoreContext, StoreContextMut, Table, TableType, Tag, TagType, Trap,
    TrapKind, TypedFunc, UpdateDeadline, V128, Val, ValType, WaitOutcome, WasmList, WasmTy,
};

/// The guide in `docs/embedding.md`, compiled and run as doctests.
#[doc = include_str!("../../../docs/embedding.md")]
#[cfg(doctest)]
pub struct EmbeddingGuide;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeExamples;
