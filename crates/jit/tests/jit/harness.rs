//! A minimal fake runtime: builds a vmctx from `VMOffsets` and calls
//! compiled code through `array_call`. Traps cannot be caught here (no
//! signal handlers), so tests only exercise non-trapping behaviour.

use weft_decoder::{ConstOp, EntityType, ExternIndex, Module, SegmentMode, ValType};
use weft_jit::{Builtin, CompiledModule, CompiledTrampoline, Compiler, Tunables, VMOffsets};

/// One 16-byte, 16-aligned value slot.
#[repr(C, align(16))]
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct ValRaw(pub [u8; 16]);

impl ValRaw {
    pub fn from_val(v: Val) -> ValRaw {
        let mut r = ValRaw::default();
        match v {
            Val::I32(x) => r.0[..4].copy_from_slice(&x.to_le_bytes()),
            Val::I64(x) => r.0[..8].copy_from_slice(&x.to_le_bytes()),
            Val::F32(x) => r.0[..4].copy_from_slice(&x.to_le_bytes()),
            Val::F64(x) => r.0[..8].copy_from_slice(&x.to_le_bytes()),
        }
        r
    }

    pub fn to_val(self, ty: ValType) -> Val {
        let b = self.0;
        match ty {
            ValType::I32 => Val::I32(i32::from_le_bytes(b[..4].try_into().unwrap())),
            ValType::I64 => Val::I64(i64::from_le_bytes(b[..8].try_into().unwrap())),
            ValType::F32 => Val::F32(u32::from_le_bytes(b[..4].try_into().unwrap())),
            ValType::F64 => Val::F64(u64::from_le_bytes(b[..8].try_into().unwrap())),
            other => panic!("test harness does not support {other}"),
        }
    }
}

/// A wasm value; floats as raw bits so NaN payloads can be compared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
}

pub fn f32v(x: f32) -> Val {
    Val::F32(x.to_bits())
}

pub fn f64v(x: f64) -> Val {
    Val::F64(x.to_bits())
}

impl Val {
    pub fn i32(self) -> i32 {
        match self {
            Val::I32(x) => x,
            v => panic!("not i32: {v:?}"),
        }
    }
    pub fn i64(self) -> i64 {
        match self {
            Val::I64(x) => x,
            v => panic!("not i64: {v:?}"),
        }
    }
    pub fn f32(self) -> f32 {
        match self {
            Val::F32(x) => f32::from_bits(x),
            v => panic!("not f32: {v:?}"),
        }
    }
    pub fn f64(self) -> f64 {
        match self {
            Val::F64(x) => f64::from_bits(x),
            v => panic!("not f64: {v:?}"),
        }
    }
}

#[repr(C)]
pub struct VMStoreContext {
    pub stack_limit: usize,
}

#[repr(C)]
pub struct VMMemoryDefinition {
    pub base: *mut u8,
    pub current_length: usize,
}

#[repr(C)]
pub struct VMFuncRef {
    pub wasm_call: *const u8,
    pub array_call: *const u8,
    pub vmctx: *mut u8,
    pub type_id: u32,
}

/// The callback of a host function (first word of its host context).
pub type HostCallback = unsafe extern "C" fn(*mut u8, *mut u8, *mut ValRaw, usize) -> u32;

/// A host context: the callback, then test data.
#[repr(C)]
pub struct HostCtx {
    pub callback: HostCallback,
    pub calls: usize,
}

/// What a test provides for an import.
pub enum ImportVal {
    /// A host function through a compiled host trampoline.
    Host(HostCallback),
    /// A function of another test instance: (instance, defined index).
    Wasm(*mut u8, *const u8),
    /// A global's initial value.
    Global(Val),
}

/// Linear memory backed by a `Vec` (moves on grow unless reserved) or by an
/// mmap'd reservation (never moves).
enum Backing {
    Vec(Vec<u8>),
    Mmap { ptr: *mut u8, reserved: usize },
}

pub struct TestMemory {
    backing: Backing,
    max_pages: u64,
    pub def: Box<VMMemoryDefinition>,
}

impl TestMemory {
    fn new_vec(pages: u64, max_pages: u64, reserve: bool) -> TestMemory {
        let len = (pages << 16) as usize;
        let mut v = if reserve {
            Vec::with_capacity((max_pages << 16) as usize)
        } else {
            Vec::new()
        };
        v.resize(len, 0);
        let def = Box::new(VMMemoryDefinition {
            base: v.as_mut_ptr(),
            current_length: len,
        });
        TestMemory {
            backing: Backing::Vec(v),
            max_pages,
            def,
        }
    }

    fn new_mmap(pages: u64, max_pages: u64, reserved: usize) -> TestMemory {
        // SAFETY: an anonymous PROT_NONE reservation; no existing memory is
        // affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserved,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap reservation");
        let mut m = TestMemory {
            backing: Backing::Mmap {
                ptr: ptr.cast(),
                reserved,
            },
            max_pages,
            def: Box::new(VMMemoryDefinition {
                base: ptr.cast(),
                current_length: 0,
            }),
        };
        m.set_len((pages << 16) as usize);
        m
    }

    fn set_len(&mut self, len: usize) {
        match &mut self.backing {
            Backing::Vec(v) => {
                v.resize(len, 0);
                self.def.base = v.as_mut_ptr();
            }
            Backing::Mmap { ptr, .. } => {
                if len > 0 {
                    // SAFETY: `[ptr, ptr + len)` lies inside our reservation.
                    let r = unsafe {
                        libc::mprotect(ptr.cast(), len, libc::PROT_READ | libc::PROT_WRITE)
                    };
                    assert_eq!(r, 0, "mprotect");
                }
            }
        }
        self.def.current_length = len;
    }

    fn grow(&mut self, delta: u64) -> u64 {
        let old = (self.def.current_length >> 16) as u64;
        let Some(new) = old.checked_add(delta) else {
            return u64::MAX;
        };
        if new > self.max_pages {
            return u64::MAX;
        }
        self.set_len((new << 16) as usize);
        old
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `base` is valid for `current_length` bytes.
        unsafe { std::slice::from_raw_parts(self.def.base, self.def.current_length) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `base` is valid for `current_length` bytes, and `&mut self`
        // is unique.
        unsafe { std::slice::from_raw_parts_mut(self.def.base, self.def.current_length) }
    }
}

impl Drop for TestMemory {
    fn drop(&mut self) {
        if let Backing::Mmap { ptr, reserved } = self.backing {
            // SAFETY: unmapping our own reservation, no longer referenced.
            unsafe { libc::munmap(ptr.cast(), reserved) };
        }
    }
}

#[repr(C, align(16))]
struct Chunk([u8; 16]);

/// An instance of a compiled module with a fake runtime around it.
pub struct Instance {
    pub module: Module,
    pub compiled: CompiledModule,
    vmctx: Vec<Chunk>,
    _store: Box<VMStoreContext>,
    _builtins: Box<[usize; Builtin::COUNT]>,
    pub memories: Vec<TestMemory>,
    pub globals: Vec<Box<ValRaw>>,
    _funcrefs: Vec<Box<VMFuncRef>>,
    pub host_ctxs: Vec<Box<HostCtx>>,
    _trampolines: Vec<CompiledTrampoline>,
    grows: usize,
}

extern "C" fn memory_grow(vmctx: *mut u8, memory_index: u32, delta: u64) -> u64 {
    // SAFETY: the runtime field of every vmctx the harness builds points to
    // its `Instance`, which outlives the call.
    let inst = unsafe { &mut **(vmctx.add(16) as *mut *mut Instance) };
    inst.grows += 1;
    inst.memories[memory_index as usize].grow(delta)
}

pub fn wat(src: &str) -> Vec<u8> {
    wat::parse_str(src).expect("valid wat")
}

pub fn small_tunables() -> Tunables {
    Tunables {
        memory_reservation: 1 << 20,
        memory_guard_size: 0,
        memory_may_move: true,
        ..Tunables::default()
    }
}

impl Instance {
    /// Compiles `src` with explicit bounds checks and Vec-backed memories
    /// that move when they grow.
    pub fn new(src: &str) -> Box<Instance> {
        Self::with(src, small_tunables(), Vec::new())
    }

    pub fn with(src: &str, tunables: Tunables, imports: Vec<ImportVal>) -> Box<Instance> {
        let compiler = Compiler::new(tunables).expect("host ISA");
        let module = Module::decode(&wat(src)).expect("valid module");
        let compiled = compiler.compile(&module).expect("compiles");
        Self::instantiate(&compiler, module, compiled, imports)
    }

    pub fn instantiate(
        compiler: &Compiler,
        module: Module,
        compiled: CompiledModule,
        imports: Vec<ImportVal>,
    ) -> Box<Instance> {
        let o = compiled.offsets().clone();
        let chunks = o.vmctx_size() as usize / 16;
        let mut inst = Box::new(Instance {
            vmctx: (0..chunks).map(|_| Chunk([0; 16])).collect(),
            _store: Box::new(VMStoreContext { stack_limit: 0 }),
            _builtins: Box::new([memory_grow as *const () as usize]),
            memories: Vec::new(),
            globals: Vec::new(),
            _funcrefs: Vec::new(),
            host_ctxs: Vec::new(),
            _trampolines: Vec::new(),
            grows: 0,
            module,
            compiled,
        });
        let t = compiler.tunables().clone();
        let big = t.memory_reservation >= 1 << 32;
        for mty in &inst.module.memories.clone() {
            let m = if big {
                let max = mty.limits.max.unwrap_or(1 << 16).min(1 << 16);
                let reserved = (t.memory_reservation + t.memory_guard_size) as usize;
                TestMemory::new_mmap(mty.limits.min, max, reserved)
            } else {
                // Vec-backed memories stay small: at most 1024 pages. Shared
                // memories never move (the contract), so reserve their maximum.
                let max = mty.limits.max.unwrap_or(1024).min(1024);
                TestMemory::new_vec(mty.limits.min, max, !t.memory_may_move || mty.shared)
            };
            inst.memories.push(m);
        }

        let mut imports = imports.into_iter();
        let mut func_imports = Vec::new();
        for imp in inst.module.imports.clone() {
            match imp.ty {
                EntityType::Func(ty) => {
                    let ty = inst.module.types[ty as usize].clone();
                    match imports.next().expect("import provided") {
                        ImportVal::Host(cb) => {
                            let tramp = compiler.host_trampoline(&ty).expect("trampoline");
                            let mut ctx = Box::new(HostCtx {
                                callback: cb,
                                calls: 0,
                            });
                            let fr = Box::new(VMFuncRef {
                                wasm_call: tramp.wasm_call(),
                                array_call: std::ptr::null(),
                                vmctx: (&mut *ctx as *mut HostCtx).cast(),
                                type_id: 0,
                            });
                            inst.host_ctxs.push(ctx);
                            inst._trampolines.push(tramp);
                            func_imports.push(fr);
                        }
                        ImportVal::Wasm(vmctx, code) => {
                            func_imports.push(Box::new(VMFuncRef {
                                wasm_call: code,
                                array_call: std::ptr::null(),
                                vmctx,
                                type_id: 0,
                            }));
                        }
                        ImportVal::Global(_) => panic!("expected a function import"),
                    }
                }
                EntityType::Global(_) => match imports.next().expect("import provided") {
                    ImportVal::Global(v) => inst.globals.push(Box::new(ValRaw::from_val(v))),
                    _ => panic!("expected a global import"),
                },
                _ => panic!("test harness only imports functions and globals"),
            }
        }
        for g in inst.module.global_defs.clone() {
            let mut stack: Vec<ValRaw> = Vec::new();
            for op in &g.init.ops {
                let v = match *op {
                    ConstOp::I32Const(x) => ValRaw::from_val(Val::I32(x)),
                    ConstOp::I64Const(x) => ValRaw::from_val(Val::I64(x)),
                    ConstOp::F32Const(x) => ValRaw::from_val(Val::F32(x)),
                    ConstOp::F64Const(x) => ValRaw::from_val(Val::F64(x)),
                    ConstOp::GlobalGet(i) => *inst.globals[i as usize],
                    ref other => panic!("unsupported init {other:?}"),
                };
                stack.push(v);
            }
            inst.globals.push(Box::new(stack.pop().unwrap()));
        }
        for d in inst.module.data.clone() {
            if let SegmentMode::Active { index, offset } = &d.mode {
                let off = match offset.ops.as_slice() {
                    [ConstOp::I32Const(x)] => *x as u32 as usize,
                    [ConstOp::GlobalGet(g)] => {
                        inst.globals[*g as usize].to_val(ValType::I32).i32() as u32 as usize
                    }
                    other => panic!("unsupported data offset {other:?}"),
                };
                let bytes = &inst.module.bytes[d.data.clone()];
                let bytes = bytes.to_vec();
                inst.memories[*index as usize].bytes_mut()[off..off + bytes.len()]
                    .copy_from_slice(&bytes);
            }
        }

        // Fill the vmctx.
        let inst_ptr: *mut Instance = &mut *inst;
        let base = inst.vmctx.as_mut_ptr() as *mut u8;
        let put = |off: u32, v: usize| {
            // SAFETY: every offset comes from `VMOffsets` and lies inside the
            // vmctx buffer of `vmctx_size()` bytes; it is 8-aligned.
            unsafe { (base.add(off as usize) as *mut usize).write(v) }
        };
        put(
            o.store_ctx(),
            &*inst._store as *const VMStoreContext as usize,
        );
        put(o.builtins(), inst._builtins.as_ptr() as usize);
        put(o.runtime(), inst_ptr as usize);
        for (i, fr) in func_imports.iter().enumerate() {
            put(
                o.imported_func(i as u32),
                &**fr as *const VMFuncRef as usize,
            );
        }
        for (i, m) in inst.memories.iter().enumerate() {
            put(
                o.memory(i as u32),
                &*m.def as *const VMMemoryDefinition as usize,
            );
        }
        for (i, g) in inst.globals.iter_mut().enumerate() {
            put(o.global(i as u32), &mut **g as *mut ValRaw as usize);
        }
        for i in 0..o.num_defined_funcs() {
            let off = o.func_ref(i);
            put(
                off + VMOffsets::FUNC_REF_WASM_CALL,
                inst.compiled.wasm_call(i) as usize,
            );
            put(
                off + VMOffsets::FUNC_REF_ARRAY_CALL,
                inst.compiled.array_call(i) as usize,
            );
            put(off + VMOffsets::FUNC_REF_VMCTX, base as usize);
        }
        inst._funcrefs = func_imports;
        if let Some(start) = inst
            .module
            .start
            .filter(|&s| !inst.module.is_imported_func(s))
        {
            let def = start - inst.module.num_imported_funcs;
            let code = inst.compiled.array_call(def);
            let mut values = [ValRaw::default()];
            // SAFETY: as in `call`: the start function takes and returns
            // nothing; one slot is enough.
            unsafe {
                let f: unsafe extern "C" fn(*mut u8, *mut u8, *mut ValRaw, usize) =
                    std::mem::transmute(code);
                let vmctx = inst.vmctx();
                f(vmctx, vmctx, values.as_mut_ptr(), 1);
            }
        }
        inst
    }

    pub fn vmctx(&mut self) -> *mut u8 {
        self.vmctx.as_mut_ptr() as *mut u8
    }

    pub fn func_index(&self, name: &str) -> u32 {
        match self
            .module
            .export(name)
            .unwrap_or_else(|| panic!("no export {name}"))
            .index
        {
            ExternIndex::Func(f) => f,
            _ => panic!("{name} is not a function"),
        }
    }

    /// `wasm_call` and vmctx of an exported function, to import elsewhere.
    pub fn export_wasm(&mut self, name: &str) -> ImportVal {
        let def = self.func_index(name) - self.module.num_imported_funcs;
        ImportVal::Wasm(self.vmctx(), self.compiled.wasm_call(def))
    }

    pub fn call(&mut self, name: &str, args: &[Val]) -> Vec<Val> {
        let f = self.func_index(name);
        let ty = self.module.func_type(f).clone();
        assert_eq!(ty.params.len(), args.len(), "arity of {name}");
        let def = f - self.module.num_imported_funcs;
        let n = ty.params.len().max(ty.results.len()).max(1);
        let mut values = vec![ValRaw::default(); n];
        for (slot, &a) in values.iter_mut().zip(args) {
            *slot = ValRaw::from_val(a);
        }
        let code = self.compiled.array_call(def);
        // SAFETY: `code` is the array_call trampoline of `def`, which has the
        // contract's signature; the vmctx is fully initialised above and the
        // values array holds max(params, results) slots.
        unsafe {
            let f: unsafe extern "C" fn(*mut u8, *mut u8, *mut ValRaw, usize) =
                std::mem::transmute(code);
            let vmctx = self.vmctx();
            f(vmctx, vmctx, values.as_mut_ptr(), n);
        }
        values
            .iter()
            .zip(ty.results.iter())
            .map(|(v, &t)| v.to_val(t))
            .collect()
    }

    pub fn call1(&mut self, name: &str, args: &[Val]) -> Val {
        let r = self.call(name, args);
        assert_eq!(r.len(), 1);
        r[0]
    }

    pub fn grows(&self) -> usize {
        self.grows
    }

    pub fn global(&self, i: usize, ty: ValType) -> Val {
        self.globals[i].to_val(ty)
    }
}
