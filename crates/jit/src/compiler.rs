//! The compiler: ISA setup, module compilation, compiled artifacts.

use cranelift_codegen::Context;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir;
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_module::{FuncId, ModuleReloc};
use weft_decoder::{FuncType, Module};

use crate::code::{CodeMemory, CompiledFunc};
use crate::error::CompileError;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

/// How hard Cranelift optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OptLevel {
    /// No optimisation: fastest compilation.
    None,
    /// Optimise for speed (the default).
    #[default]
    Speed,
    /// Optimise for speed and code size.
    SpeedAndSize,
}

/// Knobs that change the generated code. The runtime must configure its
/// memories to match (reservation, guard, whether they may move).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tunables {
    /// Bytes of address space reserved for each linear memory. With at least
    /// 4 GiB, accesses to 32-bit memories whose static offset fits in the
    /// guard need no explicit bounds check (the guard pages fault instead).
    pub memory_reservation: u64,
    /// Bytes of inaccessible guard region after each memory's reservation.
    pub memory_guard_size: u64,
    /// Whether a non-shared memory's base may change when it grows. When
    /// true, compiled code reloads the base after calls and `memory.grow`.
    pub memory_may_move: bool,
    /// Cranelift optimisation level.
    pub opt_level: OptLevel,
    /// Maximum wasm stack, in bytes (informational here: the runtime sets
    /// `VMStoreContext::stack_limit` from it).
    pub max_wasm_stack: usize,
    /// Epoch checks at every function entry and loop header: when
    /// `*VMStoreContext::epoch_ptr >= VMStoreContext::epoch_deadline`,
    /// compiled code calls [`crate::Builtin::EpochInterrupt`]. Off by
    /// default (it costs a compare, a branch and a cold call per check);
    /// the runtime must fill `epoch_ptr` when it is on.
    pub epoch_interruption: bool,
    /// Interrupt polls at every loop header: one byte load from
    /// `VMStoreContext::poll_page`, whose result is unused. To interrupt, the
    /// runtime makes that page unreadable (the load faults and is recorded
    /// as a [`crate::TrapKind::Interrupt`] trap site) *and* sets
    /// `VMStoreContext::stack_limit` to `usize::MAX / 2` (above any stack
    /// pointer; `usize::MAX` itself would overflow the prologue's
    /// `limit + frame size`), so that the next
    /// function prologue's stack check traps (as `StackOverflow`; the
    /// runtime reports it as an interrupt): function entries need no poll of
    /// their own. The runtime must fill `poll_page` with a readable page
    /// when this is on.
    pub interrupt_poll: bool,
    /// Fuel metering: compiled code adds [`crate::fuel_cost`] of every
    /// operator it executes to `VMStoreContext::fuel_consumed` and calls
    /// [`crate::Builtin::OutOfFuel`] at function entries and loop headers
    /// when it is `>= 0`. Off by default.
    pub consume_fuel: bool,
    /// Exception handling: after every call that may throw, compiled code
    /// reads `VMStoreContext::exception` and, when an exception is pending,
    /// goes to the innermost enclosing `try_table`'s handlers or returns to
    /// its caller (see [`crate::VMOffsets::STORE_CTX_EXCEPTION`]). Must be
    /// on for modules that use exceptions, and for every module of an
    /// engine in which exceptions may cross it (from host functions or
    /// other modules): a module compiled without it would go on after a
    /// call that threw.
    pub exceptions: bool,
    /// Write marks: after every store, atomic read-modify-write or
    /// compare-exchange to a non-shared 32-bit memory, compiled code marks
    /// the page the access starts in and the next one as written, by
    /// storing `0x0101_u16` at `VMMemoryDefinition::marks + (ea >> 12)`
    /// (see [`crate::VMOffsets::MEMORY_MARKS`]). The runtime must give
    /// every such memory marks covering its largest length. Off by default
    /// (it costs a shift, an add and a store per store); pools use the marks
    /// to reset a memory without asking the kernel which pages were written.
    pub write_marks: bool,
    /// Inline direct calls of small leaf functions: a defined function
    /// whose translation has at most [`INLINE_MAX_INSTS`] instructions and
    /// makes no direct call is copied into its callers (Cranelift's
    /// inliner) instead of being called. Off by default.
    pub inline_small_functions: bool,
    /// Further Cranelift settings, `(name, value)`, applied after weft's own
    /// (so they may override them). Empty by default. A setting that
    /// changes what weft relies on (`preserve_frame_pointers`, `is_pic`,
    /// ...) makes compiled code unsound; the runtime's setter is `unsafe`.
    pub cranelift_flags: Vec<(String, String)>,
}

/// The size limit of [`Tunables::inline_small_functions`], in Cranelift
/// instructions of the callee's translation.
pub const INLINE_MAX_INSTS: usize = 40;

/// Directs Cranelift to inline direct calls of the functions in `bodies`
/// (indexed by defined function; `None`: not inlined).
struct SmallCallees<'a> {
    bodies: &'a [Option<ir::Function>],
}

impl cranelift_codegen::inline::Inline for SmallCallees<'_> {
    fn inline(
        &mut self,
        caller: &ir::Function,
        _inst: ir::Inst,
        opcode: ir::Opcode,
        callee: ir::FuncRef,
        _args: &[ir::Value],
    ) -> cranelift_codegen::inline::InlineCommand<'_> {
        use cranelift_codegen::inline::InlineCommand;
        if opcode != ir::Opcode::Call {
            return InlineCommand::KeepCall;
        }
        let ir::ExternalName::User(name) = &caller.dfg.ext_funcs[callee].name else {
            return InlineCommand::KeepCall;
        };
        let name = &caller.params.user_named_funcs()[*name];
        match self.bodies.get(name.index as usize) {
            Some(Some(body)) if name.namespace == 0 => InlineCommand::Inline {
                callee: std::borrow::Cow::Borrowed(body),
                visit_callee: false,
            },
            _ => InlineCommand::KeepCall,
        }
    }
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            memory_reservation: 4 << 30,
            memory_guard_size: 2 << 30,
            memory_may_move: false,
            opt_level: OptLevel::Speed,
            max_wasm_stack: 512 << 10,
            epoch_interruption: false,
            interrupt_poll: false,
            consume_fuel: false,
            exceptions: true,
            write_marks: false,
            inline_small_functions: false,
            cranelift_flags: Vec::new(),
        }
    }
}

/// Compiles modules and trampolines for the host. `Send + Sync`: one
/// compiler serves a whole engine.
pub struct Compiler {
    isa: OwnedTargetIsa,
    tunables: Tunables,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiler")
            .field("isa", &self.isa.triple().to_string())
            .field("tunables", &self.tunables)
            .finish()
    }
}

impl Compiler {
    /// Creates a compiler for the host CPU, using every feature it has.
    pub fn new(tunables: Tunables) -> Result<Compiler, CompileError> {
        Self::with_isa_flags(tunables, &[])
    }

    /// Like [`Compiler::new`], with ISA-specific flags overridden (tests use
    /// it to disable CPU features).
    fn with_isa_flags(
        tunables: Tunables,
        isa_flags: &[(&str, &str)],
    ) -> Result<Compiler, CompileError> {
        let isa_err = |e: &dyn std::fmt::Display| CompileError::Isa(e.to_string());
        let mut flags = settings::builder();
        let opt = match tunables.opt_level {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
            OptLevel::SpeedAndSize => "speed_and_size",
        };
        let settings: [(&str, &str); 6] = [
            ("opt_level", opt),
            // cranelift-jit links with absolute addresses.
            ("is_pic", "false"),
            ("use_colocated_libcalls", "false"),
            // The runtime walks frame pointers for backtraces.
            ("preserve_frame_pointers", "true"),
            // Traps are found by PC, never by unwinding with tables.
            ("unwind_info", "false"),
            (
                "enable_verifier",
                if cfg!(debug_assertions) {
                    "true"
                } else {
                    "false"
                },
            ),
        ];
        for (name, value) in settings {
            flags.set(name, value).map_err(|e| isa_err(&e))?;
        }
        for (name, value) in &tunables.cranelift_flags {
            flags
                .set(name, value)
                .map_err(|e| isa_err(&format!("Cranelift setting {name}={value}: {e}")))?;
        }
        let mut isa_builder = cranelift_native::builder().map_err(|e| isa_err(&e))?;
        for (name, value) in isa_flags {
            isa_builder.set(name, value).map_err(|e| isa_err(&e))?;
        }
        let isa = isa_builder
            .finish(settings::Flags::new(flags))
            .map_err(|e| isa_err(&e))?;
        if isa.pointer_bytes() != 8 {
            return Err(CompileError::Isa(
                "weft-jit supports 64-bit hosts only".into(),
            ));
        }
        Ok(Compiler { isa, tunables })
    }

    /// Everything that decides what code this compiler generates: weft-jit's
    /// version, the target, every ISA and shared Cranelift setting (CPU
    /// features included) and the tunables. Code may be reused only by a
    /// compiler with the same fingerprint.
    pub fn fingerprint(&self) -> String {
        let isa_flags: Vec<String> = self.isa.isa_flags().iter().map(|v| v.to_string()).collect();
        format!(
            "weft-jit {}; {}; {}; {}; {:?}",
            env!("CARGO_PKG_VERSION"),
            self.isa.triple(),
            isa_flags.join(","),
            self.isa.flags().to_string().replace('\n', ","),
            self.tunables
        )
    }

    /// The tunables this compiler generates code for.
    pub fn tunables(&self) -> &Tunables {
        &self.tunables
    }

    /// The call convention of builtins, host callbacks and `array_call`
    /// trampolines (the host's C convention).
    pub(crate) fn call_conv(&self) -> CallConv {
        self.isa.default_call_conv()
    }

    /// The call convention of `wasm_call` functions (defined functions and
    /// host trampolines): Cranelift's `tail`, whose callee pops its own
    /// stack arguments, so `return_call` can replace the caller's frame
    /// whatever the two functions' argument counts.
    pub(crate) fn wasm_call_conv(&self) -> CallConv {
        CallConv::Tail
    }

    pub(crate) fn frontend_config(&self) -> cranelift_codegen::isa::TargetFrontendConfig {
        self.isa.frontend_config()
    }

    /// Compiles every defined function of `module`, and an `array_call`
    /// trampoline for each, into one code region, on this thread.
    pub fn compile(&self, module: &Module) -> Result<CompiledModule, CompileError> {
        self.compile_with_threads(module, 1)
    }

    /// [`compile`](Self::compile) with functions compiled on up to
    /// `threads` threads (this one included). The result is the same
    /// whatever the number of threads: every function is compiled on its
    /// own and the code is laid out in function order; if several fail, the
    /// error of the first in that order is returned.
    pub fn compile_with_threads(
        &self,
        module: &Module,
        threads: usize,
    ) -> Result<CompiledModule, CompileError> {
        let offsets = VMOffsets::new(module);
        let funcs = self.compile_funcs(module, &offsets, threads)?;
        self.link_module(module, offsets, funcs)
    }

    /// Places a module's compiled functions (code, then trampolines) in
    /// executable memory.
    pub(crate) fn link_module(
        &self,
        module: &Module,
        offsets: VMOffsets,
        funcs: Vec<CompiledFunc>,
    ) -> Result<CompiledModule, CompileError> {
        let num_defined = module.bodies.len();
        let code = CodeMemory::link(&self.isa, funcs)?;
        let mut func_ranges: Vec<(usize, usize, u32)> = (0..num_defined)
            .map(|i| {
                let (s, e) = code.func_range(i);
                (s, e, module.num_imported_funcs + i as u32)
            })
            .collect();
        func_ranges.sort_unstable();
        Ok(CompiledModule {
            code,
            offsets,
            num_defined: num_defined as u32,
            func_ranges,
        })
    }

    /// Every function and trampoline of `module`, compiled (not yet placed
    /// in memory), in function order.
    fn compile_funcs(
        &self,
        module: &Module,
        offsets: &VMOffsets,
        threads: usize,
    ) -> Result<Vec<CompiledFunc>, CompileError> {
        let num_defined = module.bodies.len();
        let env = crate::translate::ModuleEnv::new(self, module, offsets);
        // Job `j < n` is function `j`, job `n + i` its array trampoline.
        let jobs = 2 * num_defined;
        // The bodies to inline, translated once up front.
        let small: Vec<Option<ir::Function>> = if self.tunables.inline_small_functions {
            let mut fctx = FunctionBuilderContext::new();
            (0..num_defined)
                .map(|j| {
                    let mut f = ir::Function::new();
                    let func_index = module.num_imported_funcs + j as u32;
                    env.translate_function(func_index, &module.bodies[j], &mut f, &mut fctx)?;
                    let leaf = f.layout.blocks().all(|b| {
                        f.layout.block_insts(b).all(|i| {
                            !matches!(
                                f.dfg.insts[i].opcode(),
                                ir::Opcode::Call
                                    | ir::Opcode::ReturnCall
                                    | ir::Opcode::ReturnCallIndirect
                            )
                        })
                    });
                    Ok((leaf && f.dfg.num_insts() <= INLINE_MAX_INSTS).then_some(f))
                })
                .collect::<Result<_, CompileError>>()?
        } else {
            Vec::new()
        };
        let compile_job = |ctx: &mut Context,
                           fctx: &mut FunctionBuilderContext,
                           job: usize|
         -> Result<CompiledFunc, CompileError> {
            ctx.clear();
            if job < num_defined {
                let func_index = module.num_imported_funcs + job as u32;
                env.translate_function(func_index, &module.bodies[job], &mut ctx.func, fctx)?;
                if !small.is_empty() {
                    ctx.inline(SmallCallees { bodies: &small }).map_err(|e| {
                        CompileError::Codegen {
                            func: format!("wasm function {func_index} (inlining)"),
                            message: e.to_string(),
                        }
                    })?;
                }
                self.finish(ctx, job as u32, format!("wasm function {func_index}"))
            } else {
                let i = job - num_defined;
                let func_index = module.num_imported_funcs + i as u32;
                let ty = module.func_type(func_index);
                crate::trampolines::array_trampoline(self, ty, i as u32, &mut ctx.func, fctx)?;
                self.finish(
                    ctx,
                    job as u32,
                    format!("array trampoline of function {func_index}"),
                )
            }
        };
        // Small modules are not worth a thread.
        let threads = if jobs < 32 { 1 } else { threads.clamp(1, jobs) };
        let mut results: Vec<Option<Result<CompiledFunc, CompileError>>> =
            (0..jobs).map(|_| None).collect();
        if threads == 1 {
            let mut ctx = Context::new();
            let mut fctx = FunctionBuilderContext::new();
            for (job, slot) in results.iter_mut().enumerate() {
                let r = compile_job(&mut ctx, &mut fctx, job);
                let failed = r.is_err();
                *slot = Some(r);
                if failed {
                    break;
                }
            }
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let failed = std::sync::atomic::AtomicBool::new(false);
            let worker = || {
                let mut ctx = Context::new();
                let mut fctx = FunctionBuilderContext::new();
                let mut done = Vec::new();
                loop {
                    if failed.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let job = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if job >= jobs {
                        break;
                    }
                    let r = compile_job(&mut ctx, &mut fctx, job);
                    if r.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    done.push((job, r));
                }
                done
            };
            let per_worker: Vec<Vec<(usize, Result<CompiledFunc, CompileError>)>> =
                std::thread::scope(|s| {
                    let helpers: Vec<_> = (1..threads)
                        .map(|_| {
                            std::thread::Builder::new()
                                .name("weft-compile".into())
                                // Cranelift's passes recurse; give helpers
                                // what the main thread usually has.
                                .stack_size(8 << 20)
                                .spawn_scoped(s, worker)
                        })
                        .collect();
                    let mut all = vec![worker()];
                    // A helper that could not be spawned did nothing: the
                    // others took its jobs (the counter is shared).
                    for h in helpers.into_iter().flatten() {
                        all.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                    }
                    all
                });
            for (job, r) in per_worker.into_iter().flatten() {
                results[job] = Some(r);
            }
            // A helper that could not be spawned leaves nothing undone
            // unless every worker stopped early on an error; finish any gap
            // here so the outcome never depends on scheduling.
            let mut ctx = Context::new();
            let mut fctx = FunctionBuilderContext::new();
            for (job, slot) in results.iter_mut().enumerate() {
                if slot.is_none() {
                    *slot = Some(compile_job(&mut ctx, &mut fctx, job));
                }
                if matches!(slot, Some(Err(_))) {
                    break;
                }
            }
        }
        let mut funcs = Vec::with_capacity(jobs);
        for r in results {
            match r {
                Some(Ok(f)) => funcs.push(f),
                Some(Err(e)) => return Err(e),
                None => unreachable!("every job before the first error is done"),
            }
        }
        Ok(funcs)
    }

    /// Compiles the host trampoline for functions of type `ty`: a
    /// `wasm_call`-convention function that passes its arguments to the host
    /// callback stored in the first word of its callee vmctx (see
    /// `CONTRACT.md`) and traps with [`TrapKind::Host`] if it fails.
    pub fn host_trampoline(&self, ty: &FuncType) -> Result<CompiledTrampoline, CompileError> {
        let mut ctx = Context::new();
        let mut fctx = FunctionBuilderContext::new();
        crate::trampolines::host_trampoline(self, ty, &mut ctx.func, &mut fctx)?;
        let f = self.finish(&mut ctx, 0, format!("host trampoline for {ty}"))?;
        let code = CodeMemory::link(&self.isa, vec![f])?;
        Ok(CompiledTrampoline { code })
    }

    /// Compiles the typed entry for functions of type `ty` (only where
    /// [`typed_entry_supported`](crate::typed_entry_supported)): the host
    /// calls it with the funcref and the parameters' bits in registers and
    /// gets the result's bits back in a register (see `CONTRACT.md`).
    pub fn typed_entry(&self, ty: &FuncType) -> Result<CompiledTrampoline, CompileError> {
        if !crate::trampolines::typed_entry_supported(ty) {
            return Err(CompileError::Unsupported(format!(
                "a typed entry for functions of type {ty}"
            )));
        }
        let mut ctx = Context::new();
        let mut fctx = FunctionBuilderContext::new();
        crate::trampolines::typed_entry_trampoline(self, ty, &mut ctx.func, &mut fctx)?;
        let f = self.finish(&mut ctx, 0, format!("typed entry for {ty}"))?;
        let code = CodeMemory::link(&self.isa, vec![f])?;
        Ok(CompiledTrampoline { code })
    }

    /// Compiles the *direct* host trampoline for functions of type `ty`
    /// (only where [`direct_host_call_supported`](crate::direct_host_call_supported)):
    /// like [`Compiler::host_trampoline`], but the callback in the first
    /// word of the callee vmctx takes the parameters in registers and
    /// returns the result and a status in registers (see `CONTRACT.md`).
    pub fn direct_host_trampoline(
        &self,
        ty: &FuncType,
    ) -> Result<CompiledTrampoline, CompileError> {
        if !crate::trampolines::direct_host_call_supported(ty) {
            return Err(CompileError::Unsupported(format!(
                "a direct host call for functions of type {ty}"
            )));
        }
        let mut ctx = Context::new();
        let mut fctx = FunctionBuilderContext::new();
        crate::trampolines::direct_host_trampoline(self, ty, &mut ctx.func, &mut fctx)?;
        let f = self.finish(&mut ctx, 0, format!("host trampoline for {ty}"))?;
        let code = CodeMemory::link(&self.isa, vec![f])?;
        Ok(CompiledTrampoline { code })
    }

    /// Compiles the function in `ctx` to machine code, as function `id` of
    /// its code region.
    fn finish(
        &self,
        ctx: &mut Context,
        id: u32,
        name: String,
    ) -> Result<CompiledFunc, CompileError> {
        ctx.func.name = ir::UserFuncName::user(0, id);
        let signature = ctx.func.signature.clone();
        ctx.compile(&*self.isa, &mut ControlPlane::default())
            .map_err(|e| CompileError::Codegen {
                func: name.clone(),
                message: format!("{:?}", e.inner),
            })?;
        let compiled = ctx.compiled_code().expect("just compiled");

        let align = u64::from(compiled.buffer.alignment);
        let bytes = compiled.code_buffer().to_vec();
        let mut traps = Vec::new();
        for t in compiled.buffer.traps() {
            let kind = TrapKind::from_code(t.code).ok_or_else(|| CompileError::Codegen {
                func: name.clone(),
                message: format!("unexpected trap code {}", t.code),
            })?;
            traps.push((t.offset, kind));
        }
        let relocs = compiled
            .buffer
            .relocs()
            .iter()
            .map(|r| ModuleReloc::from_mach_reloc(r, &ctx.func, FuncId::from_u32(id)))
            .collect();
        let srclocs = compiled
            .buffer
            .get_srclocs_sorted()
            .iter()
            .filter(|s| !s.loc.is_default())
            .map(|s| (s.start, s.loc.bits()))
            .collect();
        Ok(CompiledFunc {
            name,
            signature,
            bytes,
            align,
            relocs,
            traps,
            srclocs,
        })
    }
}

/// A compiled module: the machine code of its defined functions and their
/// `array_call` trampolines, with trap and function tables. `Send + Sync`;
/// the code is freed when this is dropped, so keep it alive (e.g. in an
/// `Arc`) while any instance of it may run.
pub struct CompiledModule {
    pub(crate) code: CodeMemory,
    offsets: VMOffsets,
    num_defined: u32,
    /// `[start, end)` and function index of each defined function, sorted.
    func_ranges: Vec<(usize, usize, u32)>,
}

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModule")
            .field("code_range", &self.code_range())
            .field("num_defined_funcs", &self.num_defined)
            .field("trap_sites", &self.code.num_trap_sites())
            .finish()
    }
}

impl CompiledModule {
    /// The vmctx layout this code was compiled against.
    pub fn offsets(&self) -> &VMOffsets {
        &self.offsets
    }

    /// The `wasm_call` entry of defined function `defined_func_index` (an
    /// index among the defined functions, not the function index space).
    pub fn wasm_call(&self, defined_func_index: u32) -> *const u8 {
        assert!(defined_func_index < self.num_defined);
        self.code.func_ptr(defined_func_index as usize)
    }

    /// The `array_call` trampoline of defined function `defined_func_index`.
    pub fn array_call(&self, defined_func_index: u32) -> *const u8 {
        assert!(defined_func_index < self.num_defined);
        self.code
            .func_ptr((self.num_defined + defined_func_index) as usize)
    }

    /// The trap recorded at exactly `pc`, if any.
    pub fn lookup_trap(&self, pc: usize) -> Option<TrapKind> {
        self.code.lookup_trap(pc)
    }

    /// The function (index in the module's function index space) whose code
    /// contains `pc`; `None` outside wasm functions (trampolines included).
    pub fn func_at(&self, pc: usize) -> Option<u32> {
        let i = self.func_ranges.partition_point(|r| r.0 <= pc);
        let (start, end, index) = *self.func_ranges.get(i.checked_sub(1)?)?;
        (start <= pc && pc < end).then_some(index)
    }

    /// `[start, end)` of all code of this module.
    pub fn code_range(&self) -> (usize, usize) {
        self.code.range()
    }

    /// The byte offset in the module of the wasm operator whose code
    /// contains `pc` (for a return address, pass `pc - 1` to get the call).
    pub fn wasm_offset(&self, pc: usize) -> Option<u32> {
        self.func_at(pc)?;
        self.code.wasm_offset(pc)
    }
}

/// A host trampoline: owns its code. `Send + Sync`.
pub struct CompiledTrampoline {
    code: CodeMemory,
}

impl std::fmt::Debug for CompiledTrampoline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledTrampoline")
            .field("code_range", &self.code_range())
            .finish()
    }
}

impl CompiledTrampoline {
    /// The trampoline's entry, to store as `VMFuncRef::wasm_call`.
    pub fn wasm_call(&self) -> *const u8 {
        self.code.func_ptr(0)
    }

    /// The trap recorded at exactly `pc` ([`TrapKind::Host`] at the
    /// trampoline's status check).
    pub fn lookup_trap(&self, pc: usize) -> Option<TrapKind> {
        self.code.lookup_trap(pc)
    }

    /// `[start, end)` of the trampoline's code.
    pub fn code_range(&self) -> (usize, usize) {
        self.code.range()
    }
}

#[cfg(test)]
mod tests {
    /// Compiling on several threads gives exactly the functions compiling
    /// on one does (bytes, relocations, trap sites, source locations, in
    /// the same order), and the same first error.
    #[test]
    fn parallel_compilation_is_deterministic() {
        let mut wat = String::from("(module (memory 1) (table 4 funcref)");
        for i in 0..300 {
            wat.push_str(&format!(
                "(func (param i32) (result i32) (local i32)
                   (loop $l (local.set 1 (i32.add (local.get 1) (i32.load (local.get 0))))
                     (br_if $l (i32.lt_u (local.get 1) (i32.const {i}))))
                   (call_indirect (param i32) (result i32) (local.get 1) (i32.const {})))",
                i % 4
            ));
        }
        wat.push(')');
        let bytes = wat::parse_str(&wat).unwrap();
        let module = weft_decoder::Module::decode(&bytes).unwrap();
        let compiler = super::Compiler::new(super::Tunables::default()).unwrap();
        let offsets = super::VMOffsets::new(&module);
        let fingerprint = |threads| {
            compiler
                .compile_funcs(&module, &offsets, threads)
                .unwrap()
                .iter()
                .map(|f| {
                    let relocs: Vec<String> = f
                        .relocs
                        .iter()
                        .map(|r| format!("{} {:?} {:?} {}", r.offset, r.kind, r.name, r.addend))
                        .collect();
                    format!(
                        "{} {:?} {} {:?} {:?} {:?}",
                        f.name, f.bytes, f.align, f.traps, f.srclocs, relocs
                    )
                })
                .collect::<Vec<_>>()
        };
        let one = fingerprint(1);
        assert_eq!(one.len(), 600);
        for threads in [2, 3, 8] {
            assert!(one == fingerprint(threads), "{threads} threads differ");
        }
        // Two functions weft cannot compile yet (two GC instructions): the
        // first one is reported.
        let mut wat = String::from("(module");
        for i in 0..300 {
            if i == 40 {
                wat.push_str("(func (result i32) (drop (ref.i31 (i32.const 1))) (i32.const 1))");
            } else if i == 250 {
                wat.push_str(
                    "(func (result i32) (drop (any.convert_extern (ref.null extern))) (i32.const 1))",
                );
            } else {
                wat.push_str("(func (result i32) (i32.const 1))");
            }
        }
        wat.push(')');
        let bytes = wat::parse_str(&wat).unwrap();
        use weft_decoder::wasmparser::WasmFeatures as F;
        let features = F::WASM2 | F::EXCEPTIONS | F::GC | F::FUNCTION_REFERENCES;
        let module =
            weft_decoder::Module::decode_with(&bytes, weft_decoder::Features(features)).unwrap();
        let offsets = super::VMOffsets::new(&module);
        let first = |threads| match compiler.compile_funcs(&module, &offsets, threads) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("compiled"),
        };
        let serial = first(1);
        assert!(serial.contains("RefI31"), "{serial}");
        for threads in [2, 8] {
            assert_eq!(first(threads), serial);
        }
    }

    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    /// On x86-64 CPUs without SSE4.1 or SSSE3 (which Cranelift's lowerings
    /// of several SIMD operators need), SIMD modules compile or fail with
    /// an error: never a panic.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_without_sse41_compiles_or_errors() {
        let bytes = wat::parse_str(
            r#"(module (memory 1)
              (func (param v128 v128) (result v128)
                local.get 0 f32x4.ceil f32x4.nearest
                local.get 1 i8x16.swizzle
                local.get 1 i8x16.shuffle 0 17 2 19 4 21 6 23 8 25 10 27 12 29 14 31
                i64x2.abs i8x16.popcnt
                local.get 1 i32x4.dot_i16x8_s
                i32x4.trunc_sat_f64x2_u_zero f64x2.promote_low_f32x4
                i32x4.trunc_sat_f32x4_u
                local.get 1 i8x16.relaxed_swizzle
                local.get 1 local.get 0 f32x4.relaxed_madd
                i16x8.extend_high_i8x16_u local.set 0
                i32.const 0 local.get 0 v128.load32_lane 2))"#,
        )
        .unwrap();
        let module = Module::decode_with(
            &bytes,
            weft_decoder::Features(
                weft_decoder::wasmparser::WasmFeatures::WASM2
                    | weft_decoder::wasmparser::WasmFeatures::RELAXED_SIMD,
            ),
        )
        .unwrap();
        for flags in [
            &[("has_sse41", "false")][..],
            &[("has_ssse3", "false"), ("has_sse41", "false")][..],
        ] {
            let compiler = Compiler::with_isa_flags(Tunables::default(), flags).unwrap();
            match compiler.compile(&module) {
                Ok(_) | Err(CompileError::Codegen { .. } | CompileError::Unsupported(_)) => {}
                Err(e) => panic!("{flags:?}: {e}"),
            }
        }
    }

    /// Without SSSE3, Cranelift lowers byte shuffles to a `pshufb` libcall,
    /// which must resolve to our implementation and compute wasm's results.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn shuffle_libcall_resolves_and_follows_wasm() {
        let compiler = Compiler::with_isa_flags(
            Tunables::default(),
            &[("has_ssse3", "false"), ("has_sse41", "false")],
        )
        .unwrap();
        let bytes = wat::parse_str(
            r#"(module
              (func (export "f") (param v128 v128) (result v128)
                local.get 0 local.get 1 i8x16.swizzle
                local.get 0
                i8x16.shuffle 16 1 18 3 20 5 22 7 24 9 26 11 28 13 30 15))"#,
        )
        .unwrap();
        let module = Module::decode(&bytes).unwrap();
        let compiled = compiler.compile(&module).unwrap();
        let x: [u8; 16] = std::array::from_fn(|i| 100 + i as u8);
        let idx: [u8; 16] = [0, 15, 16, 0x80, 0xff, 1, 2, 3, 17, 4, 5, 6, 7, 8, 9, 200];
        let mut values = [u128::from_le_bytes(x), u128::from_le_bytes(idx)];
        call_first_function(&compiled, &mut values);
        let swizzled: [u8; 16] = idx.map(|i| if i < 16 { x[usize::from(i)] } else { 0 });
        // Even bytes from `x` (shuffle indices 16.. pick the second
        // operand), odd bytes from the swizzle.
        let expected: [u8; 16] =
            std::array::from_fn(|i| if i % 2 == 0 { x[i] } else { swizzled[i] });
        assert_eq!(values[0].to_le_bytes(), expected);
    }

    /// Without SSE4.1, Cranelift lowers rounding to libcalls, which must
    /// resolve to our own implementations.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn rounding_libcalls_resolve() {
        let compiler =
            Compiler::with_isa_flags(Tunables::default(), &[("has_sse41", "false")]).unwrap();
        let bytes = wat::parse_str(
            r#"(module
              (func (export "f") (param f32 f64) (result f32 f64)
                local.get 0 f32.nearest f32.floor
                local.get 1 f64.nearest f64.ceil f64.trunc))"#,
        )
        .unwrap();
        let module = Module::decode(&bytes).unwrap();
        let compiled = compiler.compile(&module).unwrap();
        let mut values = [
            u128::from(2.5f32.to_bits()),
            u128::from((-3.5f64).to_bits()),
        ];
        call_first_function(&compiled, &mut values);
        assert_eq!(f32::from_bits(values[0] as u32), 2.0);
        assert_eq!(f64::from_bits(values[1] as u64), -4.0);
    }

    /// With `inline_small_functions`, a direct call of a small function
    /// that calls nothing is compiled inline: the caller has no call
    /// relocation left, a larger or calling callee keeps its call, and the
    /// result is the same.
    #[test]
    fn small_leaf_callees_are_inlined_and_compute_the_same() {
        let bytes = wat::parse_str(
            r#"(module
              (func $caller (param i32) (result i32)
                (call $leaf (call $calls (local.get 0))))
              (func $leaf (param i32) (result i32)
                (i32.add (i32.mul (local.get 0) (i32.const 3)) (i32.const 1)))
              (func $calls (param i32) (result i32) (call $leaf (local.get 0))))"#,
        )
        .unwrap();
        let module = Module::decode(&bytes).unwrap();
        let calls_in = |tunables: Tunables| {
            let compiler = Compiler::new(tunables).unwrap();
            let offsets = VMOffsets::new(&module);
            let funcs = compiler.compile_funcs(&module, &offsets, 1).unwrap();
            let calls: Vec<usize> = funcs[..3]
                .iter()
                .map(|f| {
                    f.relocs
                        .iter()
                        .filter(|r| format!("{:?}", r.kind).contains("Call"))
                        .count()
                })
                .collect();
            let compiled = compiler.link_module(&module, offsets, funcs).unwrap();
            let mut values = [5u128];
            call_first_function(&compiled, &mut values);
            (calls, values[0] as u32)
        };
        let plain = calls_in(Tunables::default());
        let inlined = calls_in(Tunables {
            inline_small_functions: true,
            ..Tunables::default()
        });
        // 3 * (3 * 5 + 1) + 1 either way.
        assert_eq!((plain.1, inlined.1), (49, 49));
        assert_eq!(plain.0, [2, 0, 1], "calls before inlining");
        // The caller keeps its call of $calls (which calls), and $calls
        // and the caller no longer call $leaf.
        assert_eq!(inlined.0, [1, 0, 0], "calls after inlining");
    }

    /// Calls defined function 0 of `compiled` through its `array_call`
    /// entry on `values` (parameters in, results out), with a minimal
    /// vmctx: a store context with stack limit 0, no fuel, epoch 0 far
    /// from its deadline and a readable poll page. For functions that
    /// touch nothing else.
    fn call_first_function(compiled: &CompiledModule, values: &mut [u128]) {
        let epoch = 0u64;
        let poll = [0u8; 64];
        let store_ctx: [u64; 5] = [
            0,
            0,
            u64::MAX,
            &epoch as *const u64 as u64,
            poll.as_ptr() as u64,
        ];
        let mut vmctx = vec![0u128; compiled.offsets().vmctx_size() as usize / 16];
        vmctx[0] = store_ctx.as_ptr() as u128;
        // SAFETY: `array_call` has the contract's signature; the vmctx's
        // `store_ctx` points at a valid store context that outlives the
        // call, and the function (the caller's promise) touches nothing
        // else; `values` holds `values.len()` 16-byte slots.
        unsafe {
            let f: unsafe extern "C" fn(*mut u8, *mut u8, *mut u128, usize) =
                std::mem::transmute(compiled.array_call(0));
            let v = vmctx.as_mut_ptr().cast::<u8>();
            f(v, v, values.as_mut_ptr(), values.len());
        }
    }

    #[test]
    fn public_types_are_send_sync() {
        assert_send_sync::<Compiler>();
        assert_send_sync::<CompiledModule>();
        assert_send_sync::<CompiledTrampoline>();
    }
}
