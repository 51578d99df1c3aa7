//! Engine and configuration.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weft_decoder::{FuncType, wasmparser::WasmFeatures};
use weft_jit::{CompiledTrampoline, Compiler, Tunables};

use crate::error::{Error, Result};
use crate::registry::{self, CodeInfo, Registration};

/// How hard Cranelift optimises generated code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OptLevel {
    /// No optimisation: fastest compilation.
    None,
    /// Optimise for speed (the default).
    #[default]
    Speed,
    /// Optimise for speed and code size.
    SpeedAndSize,
}

/// Global configuration for an [`Engine`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) features: WasmFeatures,
    pub(crate) tunables: Tunables,
    pub(crate) max_wasm_stack: usize,
    pub(crate) max_memory_size: Option<usize>,
    pub(crate) memory_init_cow: bool,
    pub(crate) allocation: crate::pooling::InstanceAllocationStrategy,
    pub(crate) async_support: bool,
    pub(crate) async_stack_size: usize,
    pub(crate) parallel_compilation: bool,
    pub(crate) cache_dir: Option<std::path::PathBuf>,
    pub(crate) cache_max_bytes: u64,
}

/// Without real guard pages (weft-memory's heap backing, under loom or
/// Miri) nothing faults, so compiled code must check every access itself:
/// no reservation or guard is assumed.
fn guarded_or_checked(t: Tunables) -> Tunables {
    if weft_memory::guard_pages_supported() {
        t
    } else {
        Tunables {
            memory_reservation: 0,
            memory_guard_size: 0,
            ..t
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            features: WasmFeatures::WASM2
                | WasmFeatures::THREADS
                | WasmFeatures::MULTI_MEMORY
                | WasmFeatures::MEMORY64
                | WasmFeatures::EXTENDED_CONST
                | WasmFeatures::TAIL_CALL
                | WasmFeatures::FUNCTION_REFERENCES
                | WasmFeatures::RELAXED_SIMD
                | WasmFeatures::EXCEPTIONS,
            tunables: Tunables {
                // Interruption is on by default (see `interruptible`).
                interrupt_poll: true,
                ..guarded_or_checked(Tunables::default())
            },
            max_wasm_stack: 512 * 1024,
            max_memory_size: None,
            memory_init_cow: true,
            allocation: crate::pooling::InstanceAllocationStrategy::OnDemand,
            async_support: false,
            async_stack_size: 2 << 20,
            parallel_compilation: true,
            cache_dir: None,
            cache_max_bytes: 512 << 20,
        }
    }
}

impl Config {
    /// The default configuration: WebAssembly 2.0 plus threads,
    /// multi-memory, memory64, extended constants and relaxed SIMD, 4 GiB
    /// reservations with 2 GiB guards (no explicit bounds checks for 32-bit
    /// memories on 64-bit hosts), a 512 KiB wasm stack.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enables or disables the threads proposal (shared memories, atomics).
    pub fn wasm_threads(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::THREADS, enable);
        self
    }

    /// Enables or disables 128-bit SIMD (`v128` values and their
    /// operators). On by default, as in WebAssembly 2.0. When disabled,
    /// modules that use `v128` are invalid, and so are modules using relaxed
    /// SIMD (see [`wasm_relaxed_simd`](Self::wasm_relaxed_simd)), whatever
    /// that setting says.
    pub fn wasm_simd(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::SIMD, enable);
        self
    }

    /// Enables or disables relaxed SIMD (WebAssembly 3.0: the `relaxed_*`
    /// operators, whose results the spec lets depend on the host). On by
    /// default; it needs [`wasm_simd`](Self::wasm_simd) on as well. When
    /// disabled, modules that use a relaxed operator are invalid
    /// ([`Error::Invalid`](crate::Error::Invalid)).
    ///
    /// weft picks one of the allowed results for each relaxed operator, the
    /// same on every host, every run and every optimisation level:
    ///
    /// * `i8x16.relaxed_swizzle` is `i8x16.swizzle`: an index of 16 or more
    ///   selects 0;
    /// * `i32x4.relaxed_trunc_*` are the matching `trunc_sat` conversions:
    ///   NaN becomes 0 and out-of-range values saturate;
    /// * `f32x4`/`f64x2` `relaxed_madd` and `relaxed_nmadd` are *unfused*:
    ///   the product `a * b` is rounded, then `c` is added (`nmadd` negates
    ///   the product first), as `mul` then `add` would compute;
    /// * `relaxed_laneselect` is `v128.bitselect`: every bit is chosen by the
    ///   mask's bit, not only by the top bit of each lane;
    /// * `relaxed_min`/`relaxed_max` are `min`/`max`: a NaN operand gives NaN,
    ///   and -0 is less than +0;
    /// * `i16x8.relaxed_q15mulr_s` is `i16x8.q15mulr_sat_s` (saturating);
    /// * the dot products treat both `i8x16` operands as signed:
    ///   `i16x8.relaxed_dot_i8x16_i7x16_s` sums two products per lane,
    ///   wrapping on overflow, and `i32x4.relaxed_dot_i8x16_i7x16_add_s` adds
    ///   the exact sum of four products to the accumulator lane (wrapping).
    ///
    /// ```
    /// let mut config = weft_runtime::Config::new();
    /// config.wasm_relaxed_simd(false);
    /// let engine = weft_runtime::Engine::new(&config)?;
    /// let relaxed = r#"(module (func (param v128 v128) (result v128)
    ///     (i8x16.relaxed_swizzle (local.get 0) (local.get 1))))"#;
    /// assert!(matches!(
    ///     weft_runtime::Module::new(&engine, relaxed),
    ///     Err(weft_runtime::Error::Invalid { .. })
    /// ));
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    pub fn wasm_relaxed_simd(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::RELAXED_SIMD, enable);
        self
    }

    /// Enables or disables multi-memory (WebAssembly 3.0: any number of
    /// memories per module, a memory index on every memory instruction). On
    /// by default. Single-memory modules compile to the same code either way.
    pub fn wasm_multi_memory(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::MULTI_MEMORY, enable);
        self
    }

    /// Enables or disables extended constant expressions (WebAssembly 3.0:
    /// `i32`/`i64` `add`, `sub` and `mul` in initialisers and segment
    /// offsets). On by default.
    pub fn wasm_extended_const(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::EXTENDED_CONST, enable);
        self
    }

    /// Enables or disables exception handling (WebAssembly 3.0: tags,
    /// `throw`, `throw_ref`, `try_table` and `exnref`; see [`crate::Exn`]).
    /// On by default.
    ///
    /// Compiled code then reads the store's pending exception after every
    /// call (a load and a branch that is not taken), in every module of
    /// the engine, since an exception may pass through any of them; turning
    /// the feature off removes that check, and modules that use
    /// exceptions are then refused.
    pub fn wasm_exceptions(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::EXCEPTIONS, enable);
        self.tunables.exceptions = enable;
        self
    }

    /// Enables or disables tail calls (WebAssembly 3.0: `return_call` and
    /// `return_call_indirect`, which replace the caller's frame, so tail
    /// recursion of any depth runs in constant stack). On by default.
    pub fn wasm_tail_call(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::TAIL_CALL, enable);
        self
    }

    /// Enables or disables typed function references (WebAssembly 3.0, the
    /// function-references proposal): reference types such as `(ref $t)`
    /// and `(ref null func)` for locals, globals, tables, parameters and
    /// results, `call_ref`/`return_call_ref`, `ref.as_non_null`,
    /// `br_on_null`/`br_on_non_null`, and tables with an initialiser. On by
    /// default. The GC proposal (struct, array, `i31`, `any`/`eq` heap types)
    /// is not supported: modules that need it are rejected.
    ///
    /// ```
    /// use weft_runtime::{Config, Engine, Module};
    /// let wat = "(module (type $t (func)) (func (param (ref $t)) local.get 0 call_ref $t))";
    /// assert!(Module::new(&Engine::default(), wat).is_ok());
    /// let mut config = Config::default();
    /// config.wasm_function_references(false);
    /// assert!(Module::new(&Engine::new(&config)?, wat).is_err());
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    pub fn wasm_function_references(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::FUNCTION_REFERENCES, enable);
        self
    }

    /// Enables or disables memory64 (WebAssembly 3.0: memories and tables
    /// indexed with `i64`). On by default. 64-bit memories are bounds-checked
    /// explicitly and reserve up to 64 GiB of address space (not memory), so
    /// they can grow past 4 GiB.
    pub fn wasm_memory64(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::MEMORY64, enable);
        self
    }

    /// Enables or disables reference types (`funcref`/`externref` values,
    /// several tables). On by default (WebAssembly 2.0).
    pub fn wasm_reference_types(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::REFERENCE_TYPES, enable);
        self
    }

    /// Enables or disables bulk memory operations (`memory.copy`,
    /// `memory.fill`, passive segments, ...). On by default (WebAssembly
    /// 2.0).
    pub fn wasm_bulk_memory(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::BULK_MEMORY, enable);
        self
    }

    /// Enables or disables multi-value (several results, block
    /// parameters). On by default (WebAssembly 2.0).
    pub fn wasm_multi_value(&mut self, enable: bool) -> &mut Self {
        self.features.set(WasmFeatures::MULTI_VALUE, enable);
        self
    }

    /// Bytes of address space reserved for each linear memory.
    pub fn memory_reservation(&mut self, bytes: u64) -> &mut Self {
        self.tunables.memory_reservation = bytes;
        self
    }

    /// Bytes of inaccessible guard region after each linear memory.
    pub fn memory_guard_size(&mut self, bytes: u64) -> &mut Self {
        self.tunables.memory_guard_size = bytes;
        self
    }

    /// Whether instantiation maps a module's initial memory contents
    /// copy-on-write from an image built once per module (on by default),
    /// rather than copying every active data segment into each new memory.
    /// With it, instantiating a module with megabytes of data costs about
    /// what a module with none costs; pages are copied only when written.
    /// Images are used when every active data segment has a constant offset
    /// and fits its (defined, non-shared) memory's initial size; otherwise
    /// segments are copied as before. On Linux images live in a sealed
    /// `memfd`; elsewhere they are copied from one prepared buffer.
    ///
    /// ```
    /// let mut config = weft_runtime::Config::new();
    /// config.memory_init_cow(false);
    /// let engine = weft_runtime::Engine::new(&config)?;
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    pub fn memory_init_cow(&mut self, enable: bool) -> &mut Self {
        self.memory_init_cow = enable;
        self
    }

    /// Caches compiled modules in `dir` (`None`, the default: no cache):
    /// `Module::new` of a module compiled before by an engine with the same
    /// settings loads its code instead of compiling. Entries are bound to
    /// weft's version and every code-generation setting, written atomically
    /// (safe when several processes fill the cache at once), and the least
    /// recently used are deleted beyond [`cache_max_bytes`](Self::cache_max_bytes).
    /// The directory is trusted: its code runs as it is, so it must be
    /// writable only by the user (weft creates it with mode 0700).
    /// [`Config::default_cache_dir`] is where `weft run` caches.
    pub fn cache_dir(&mut self, dir: Option<std::path::PathBuf>) -> &mut Self {
        self.cache_dir = dir;
        self
    }

    /// The size bound of the compiled-module cache (default 512 MiB).
    pub fn cache_max_bytes(&mut self, bytes: u64) -> &mut Self {
        self.cache_max_bytes = bytes;
        self
    }

    /// `$XDG_CACHE_HOME/weft`, else `$HOME/.cache/weft` (`None` if neither
    /// is set).
    pub fn default_cache_dir() -> Option<std::path::PathBuf> {
        crate::cache::default_dir()
    }

    /// Whether `Module::new` compiles a module's functions on every core
    /// (on by default; modules with few functions use one thread anyway).
    /// The generated code is the same either way.
    pub fn parallel_compilation(&mut self, enable: bool) -> &mut Self {
        self.parallel_compilation = enable;
        self
    }

    /// Enables async calls (`call_async`, `new_async`, `instantiate_async`)
    /// and async host functions (`Linker::func_wrap_async`): wasm then runs
    /// on a separate stack (a fiber) that suspends while a host future is
    /// pending. Off by default. Synchronous calls keep working; an async
    /// host function called from one fails (traps) with an error.
    pub fn async_support(&mut self, enable: bool) -> &mut Self {
        self.async_support = enable;
        self
    }

    /// Bytes of each async call's stack (default 2 MiB). It holds the wasm
    /// stack (`max_wasm_stack`) and the host code wasm calls, so it must be
    /// larger than `max_wasm_stack` plus 64 KiB (checked by `Engine::new`).
    pub fn async_stack_size(&mut self, bytes: usize) -> &mut Self {
        self.async_stack_size = bytes;
        self
    }

    /// How instances' memories, tables and state are allocated: on demand
    /// (the default) or from slots set aside when the engine is created
    /// ([`PoolingAllocationConfig`](crate::PoolingAllocationConfig)).
    pub fn allocation_strategy(
        &mut self,
        strategy: crate::pooling::InstanceAllocationStrategy,
    ) -> &mut Self {
        self.allocation = strategy;
        self
    }

    /// Whether non-shared memories may move when they outgrow their reservation.
    pub fn memory_may_move(&mut self, may_move: bool) -> &mut Self {
        self.tunables.memory_may_move = may_move;
        self
    }

    /// Maximum bytes of native stack that wasm code may use on one thread
    /// (default 512 KiB). The budget is per thread: stores entered from a
    /// host function while wasm is active on the thread share it. It is also
    /// capped by the thread's real stack, keeping 32 KiB free below the
    /// deepest wasm frame for host code, so recursion on a small thread traps
    /// with "call stack exhausted" instead of overflowing the thread.
    pub fn max_wasm_stack(&mut self, bytes: usize) -> &mut Self {
        self.max_wasm_stack = bytes;
        self.tunables.max_wasm_stack = bytes;
        self
    }

    /// Whether compiled code can be interrupted (wall-clock deadlines,
    /// `Store::set_timeout`, `Store::interrupt_handle`). **On by default.**
    /// Loop headers do one load from a per-store page that an interrupt
    /// makes unreadable; function entries reuse the prologue's stack-limit
    /// check, which an interrupt makes fail. Measured at +2.3 % geomean on
    /// the interrupt bench kernels and +2.5 % on the C programs, against no
    /// checks (`cargo bench -p weft --bench interrupt`,
    /// `cargo bench -p weft-wasi --bench interrupt_programs`). Turn it off
    /// only for code that must never be stopped: deadlines and interrupt
    /// handles then cannot stop running loops.
    pub fn interruptible(&mut self, enable: bool) -> &mut Self {
        self.tunables.interrupt_poll = enable;
        self
    }

    /// Whether compiled code also compares the engine epoch with the store's
    /// epoch deadline at every function entry and loop header
    /// (`Store::set_epoch_deadline`, `Store::epoch_deadline_callback`). Off
    /// by default: it costs more than the interrupt poll.
    ///
    /// Interrupt handles and wall-clock deadlines also work with this alone.
    pub fn epoch_interruption(&mut self, enable: bool) -> &mut Self {
        self.tunables.epoch_interruption = enable;
        self
    }

    /// Whether direct calls of small functions that call nothing are
    /// compiled inline (the body copied into the caller) instead of as
    /// calls; off by default. `cargo bench -p weft-cli --bench levers`
    /// measures what it changes. A trap in an inlined function is reported
    /// in the caller's frame.
    pub fn inline_small_functions(&mut self, enable: bool) -> &mut Self {
        self.tunables.inline_small_functions = enable;
        self
    }

    /// Sets a Cranelift code generation setting by name (one of
    /// `cranelift_codegen::settings`' shared settings), after weft's own;
    /// an unknown name or value makes [`Engine::new`] fail. For measuring
    /// code generation choices (`cargo bench -p weft-cli --bench levers`
    /// sets `log2_min_function_alignment` this way).
    ///
    /// # Safety
    /// Some settings change what weft's runtime relies on (frame pointers,
    /// absolute addresses, stack probes, ...): code compiled with them may
    /// crash or misbehave. Use only settings known to keep compiled code
    /// sound, such as alignment and optimisation choices.
    ///
    /// ```
    /// # fn main() -> weft_runtime::Result<()> {
    /// let mut config = weft_runtime::Config::new();
    /// // SAFETY: function alignment changes only where code is placed.
    /// unsafe { config.cranelift_flag_set("log2_min_function_alignment", "6") };
    /// let engine = weft_runtime::Engine::new(&config)?;
    /// # let _ = engine;
    /// # Ok(())
    /// # }
    /// ```
    pub unsafe fn cranelift_flag_set(&mut self, name: &str, value: &str) -> &mut Self {
        self.tunables
            .cranelift_flags
            .push((name.to_string(), value.to_string()));
        self
    }

    /// Whether compiled code counts fuel (`Store::set_fuel`); off by default.
    pub fn consume_fuel(&mut self, enable: bool) -> &mut Self {
        self.tunables.consume_fuel = enable;
        self
    }

    /// Refuses to create or grow any linear memory beyond `bytes` (a failed
    /// `memory.grow` returns -1; a module whose initial memory is larger
    /// fails to instantiate). `None`: only the memories' own maxima apply.
    pub fn max_memory_size(&mut self, bytes: Option<usize>) -> &mut Self {
        self.max_memory_size = bytes;
        self
    }

    /// Cranelift's optimisation level.
    pub fn cranelift_opt_level(&mut self, level: OptLevel) -> &mut Self {
        self.tunables.opt_level = match level {
            OptLevel::None => weft_jit::OptLevel::None,
            OptLevel::Speed => weft_jit::OptLevel::Speed,
            OptLevel::SpeedAndSize => weft_jit::OptLevel::SpeedAndSize,
        };
        self
    }
}

/// A compilation and execution environment, shared by modules and stores.
///
/// `Engine` is `Send + Sync` and cheap to clone: clones share one compiler,
/// one function-type registry and one cache of host trampolines.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

pub(crate) struct EngineInner {
    pub(crate) config: Config,
    /// The engine-wide epoch counter compiled code compares deadlines with.
    pub(crate) epoch: AtomicU64,
    /// Fires wall-clock deadlines (a thread, started on first use).
    pub(crate) ticker: crate::interrupt::Ticker,
    /// Poll pages for this engine's stores (with interrupt polls on).
    pub(crate) poll_pages: Arc<crate::interrupt::PollPages>,
    pub(crate) compiler: Compiler,
    /// The pooling allocator's slots, with `InstanceAllocationStrategy::Pooling`.
    pub(crate) pool: Option<Arc<crate::pooling::Pool>>,
    types: Mutex<TypeRegistry>,
    trampolines: Mutex<HashMap<(FuncType, TrampolineKind), Arc<HostTrampoline>>>,
}

/// Engine-wide canonical function types. A registered type is "canonical":
/// its concrete heap types hold canonical ids, not module type indices. A
/// type only refers to types registered before it (without the GC proposal
/// types are not recursive), so two types get the same id exactly when they
/// have the same structure.
#[derive(Default)]
struct TypeRegistry {
    ids: HashMap<FuncType, u32>,
    types: Vec<FuncType>,
}

/// A compiled host trampoline, registered for trap lookup while alive.
/// Which trampoline of a function type (see `Engine::trampoline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TrampolineKind {
    /// Host function, values through a slot array.
    Host,
    /// Host function, values in registers (a direct callback).
    DirectHost,
    /// Entry from the host into wasm, values in registers.
    TypedEntry,
}

pub(crate) struct HostTrampoline {
    pub(crate) code: Arc<CompiledTrampoline>,
    _registration: Registration,
}

struct TrampolineCode(Arc<CompiledTrampoline>);

impl CodeInfo for TrampolineCode {
    fn lookup_trap(&self, pc: usize) -> Option<weft_jit::TrapKind> {
        self.0.lookup_trap(pc)
    }
    fn frame(&self, _pc: usize) -> Option<crate::error::FrameInfo> {
        None
    }
    fn func_name(&self, _pc: usize) -> Option<String> {
        Some("host trampoline".to_string())
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(&Config::default()).expect("the default configuration is valid")
    }
}

impl Engine {
    /// Creates an engine for the host CPU.
    ///
    /// # Errors
    /// Fails if the host ISA is not supported by Cranelift or the
    /// configuration is inconsistent.
    pub fn new(config: &Config) -> Result<Engine> {
        crate::traphandlers::init();
        if config.async_support
            && config.async_stack_size < config.max_wasm_stack.saturating_add(64 << 10)
        {
            return Err(Error::InvalidArgument(format!(
                "async_stack_size ({}) must exceed max_wasm_stack ({}) by at least 64 KiB",
                config.async_stack_size, config.max_wasm_stack
            )));
        }
        let mut config = config.clone();
        if let crate::pooling::InstanceAllocationStrategy::Pooling(p) = &config.allocation {
            // Marks pay only where a reset restores pages in place.
            config.tunables.write_marks = p.write_marks && p.keep_resident_bytes > 0;
        }
        let config = &config;
        let compiler = Compiler::new(config.tunables.clone()).map_err(Error::from_compile)?;
        let pool = match &config.allocation {
            crate::pooling::InstanceAllocationStrategy::OnDemand => None,
            crate::pooling::InstanceAllocationStrategy::Pooling(p) => {
                Some(crate::pooling::Pool::new(p, &config.tunables)?)
            }
        };
        Ok(Engine {
            inner: Arc::new(EngineInner {
                config: config.clone(),
                epoch: AtomicU64::new(0),
                ticker: crate::interrupt::Ticker::default(),
                poll_pages: Arc::default(),
                compiler,
                pool,
                types: Mutex::new(TypeRegistry::default()),
                trampolines: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// How many pooling-allocator slots are in use, if the engine pools
    /// (`None` with on-demand allocation).
    pub fn pooling_stats(&self) -> Option<crate::pooling::PoolingStats> {
        self.inner.pool.as_ref().map(|p| p.stats())
    }

    /// The configuration this engine was created with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The engine-wide canonical id of a function type. Modules created by
    /// the same engine agree on these ids, which `call_indirect` compares.
    ///
    /// `ty` must be canonical: its concrete heap types are ids this engine
    /// gave out (see [`Engine::module_type_ids`]).
    pub(crate) fn type_id(&self, ty: &FuncType) -> u32 {
        let mut reg = self.inner.types.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = reg.ids.get(ty) {
            return id;
        }
        let id = reg.types.len() as u32;
        reg.types.push(ty.clone());
        reg.ids.insert(ty.clone(), id);
        id
    }

    /// The canonical ids of a module's function types, in order: each
    /// type's references to earlier types of the module are replaced by
    /// their ids before it is registered, so structurally equal types of
    /// different modules get the same id.
    pub(crate) fn module_type_ids(&self, types: &[FuncType]) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::with_capacity(types.len());
        for t in types {
            // Validation admits only references to earlier types; an index
            // past them (impossible) maps to an id no type has.
            let canonical = t.map_concrete(|i| ids.get(i as usize).copied().unwrap_or(u32::MAX));
            let id = self.type_id(&canonical);
            ids.push(id);
        }
        ids
    }

    /// The canonical function type with id `id` (from [`Engine::type_id`]).
    pub(crate) fn canonical_type(&self, id: u32) -> Option<FuncType> {
        let reg = self.inner.types.lock().unwrap_or_else(|e| e.into_inner());
        reg.types.get(id as usize).cloned()
    }

    /// The host trampoline for a function type, compiled once per engine:
    /// the array one, or (`direct`) the one that passes values in registers
    /// to a direct callback.
    pub(crate) fn host_trampoline(
        &self,
        ty: &FuncType,
        direct: bool,
    ) -> Result<Arc<HostTrampoline>> {
        let kind = if direct {
            TrampolineKind::DirectHost
        } else {
            TrampolineKind::Host
        };
        self.trampoline(ty, kind)
    }

    /// The typed entry for a function type, compiled once per engine, or
    /// `None` where the type or the platform has none
    /// (`weft_jit::typed_entry_supported`).
    pub(crate) fn typed_entry(&self, ty: &FuncType) -> Result<Option<Arc<HostTrampoline>>> {
        if !weft_jit::typed_entry_supported(ty) {
            return Ok(None);
        }
        self.trampoline(ty, TrampolineKind::TypedEntry).map(Some)
    }

    /// A trampoline of `kind` for functions of type `ty`: compiled and
    /// registered (so traps and backtraces know its code) on first use,
    /// then shared by the whole engine.
    fn trampoline(&self, ty: &FuncType, kind: TrampolineKind) -> Result<Arc<HostTrampoline>> {
        let mut map = self
            .inner
            .trampolines
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let key = (ty.clone(), kind);
        if let Some(t) = map.get(&key) {
            return Ok(t.clone());
        }
        let compiler = &self.inner.compiler;
        let code = Arc::new(
            match kind {
                TrampolineKind::Host => compiler.host_trampoline(ty),
                TrampolineKind::DirectHost => compiler.direct_host_trampoline(ty),
                TrampolineKind::TypedEntry => compiler.typed_entry(ty),
            }
            .map_err(Error::from_compile)?,
        );
        let (start, end) = code.code_range();
        let registration = registry::register(start, end, Arc::new(TrampolineCode(code.clone())));
        let t = Arc::new(HostTrampoline {
            code,
            _registration: registration,
        });
        map.insert(key, t.clone());
        Ok(t)
    }

    /// Advances the engine-wide epoch by one. Stores whose epoch deadline
    /// this reaches trap with "interrupt" (or run their deadline callback)
    /// at the next check. A single atomic increment: safe to call from any
    /// thread, and from a signal handler.
    pub fn increment_epoch(&self) {
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The current epoch.
    pub fn current_epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    /// Whether two engines are the same.
    pub fn same(a: &Engine, b: &Engine) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_decoder::{HeapType, RefType, ValType};

    fn ref_to(nullable: bool, index: u32) -> ValType {
        ValType::Ref(RefType::new(nullable, HeapType::Concrete(index)))
    }

    #[test]
    fn canonical_ids_follow_structure_not_indices() {
        let engine = Engine::default();
        let unit = FuncType::new([], [ValType::I32]);
        let other = FuncType::new([], [ValType::I64]);
        // Module A: $a = unit at 0, $f takes (ref $a).
        let a = engine.module_type_ids(&[unit.clone(), FuncType::new([ref_to(false, 0)], [])]);
        // Module B: padding first, so $b = unit sits at index 1.
        let b = engine.module_type_ids(&[
            other.clone(),
            unit.clone(),
            FuncType::new([ref_to(false, 1)], []),
        ]);
        assert_eq!(a[0], b[1], "the same structure, different indices");
        assert_eq!(a[1], b[2], "(ref $a) and (ref $b) name equal types");
        // A reference to the other structure, or a nullable one, differs.
        assert_ne!(
            b[2],
            engine.module_type_ids(&[other, FuncType::new([ref_to(false, 0)], [])])[1]
        );
        let nullable = engine.module_type_ids(&[unit, FuncType::new([ref_to(true, 0)], [])]);
        assert_eq!(nullable[0], a[0]);
        assert_ne!(nullable[1], a[1]);
        // Ids map back to their canonical types.
        let f = engine.canonical_type(a[1]).unwrap();
        assert_eq!(f.params[0], ref_to(false, a[0]));
    }
}
