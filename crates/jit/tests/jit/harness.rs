//! A minimal fake runtime: builds a vmctx from `VMOffsets` and calls
//! compiled code through `array_call`. Traps cannot be recovered from here
//! (no unwinding out of compiled code), so tests exercise non-trapping
//! behaviour, except through [`Instance::trap_of`], which runs a call in a
//! forked child and reports the trap kind it stopped with.
//!
//! Every builtin is implemented (tables, bulk memory, fake wait/notify that
//! never block) and records its arguments in [`Instance::builtin_log`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weft_decoder::{
    ConstExpr, ConstOp, ElementItems2, EntityType, ExternIndex, Features, FuncType, Module,
    SegmentMode, ValType,
};
use weft_jit::{Builtin, CompiledModule, CompiledTrampoline, Compiler, Tunables, VMOffsets};

/// Engine-wide canonical type ids: the index of the type in this list.
static TYPES: Mutex<Vec<FuncType>> = Mutex::new(Vec::new());

/// The canonical id of a function type.
pub fn type_id(ty: &FuncType) -> u32 {
    let mut types = TYPES.lock().unwrap();
    match types.iter().position(|t| t == ty) {
        Some(i) => i as u32,
        None => {
            types.push(ty.clone());
            types.len() as u32 - 1
        }
    }
}

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
            Val::Ref(x) => r.0[..8].copy_from_slice(&x.to_le_bytes()),
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
            ValType::Ref(_) => Val::Ref(u64::from_le_bytes(b[..8].try_into().unwrap())),
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
    /// A funcref or externref: the raw pointer-sized word (0 = null).
    Ref(u64),
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
    pub fuel_consumed: i64,
    pub epoch_deadline: u64,
    pub epoch_ptr: *const AtomicU64,
    pub poll_page: *const u8,
    /// The pending exception (0: none): an index into
    /// `Instance::exceptions`, plus one.
    pub exception: u64,
    pub exception_tag: usize,
}

/// A readable page for the interrupt poll (the fake runtime never
/// interrupts through it).
#[repr(align(4096))]
pub struct PollPage(pub [u8; 4096]);
pub static POLL_PAGE: PollPage = PollPage([0; 4096]);

#[repr(C)]
pub struct VMMemoryDefinition {
    pub base: *mut u8,
    pub current_length: usize,
}

#[repr(C)]
pub struct VMTableDefinition {
    pub base: *mut usize,
    pub current_elements: usize,
}

/// A table: elements in a `Vec` that is reallocated (so its base moves) on
/// every successful grow.
pub struct TestTable {
    elems: Vec<usize>,
    max: u64,
    pub def: VMTableDefinition,
}

impl TestTable {
    pub fn new(size: u64, max: Option<u64>, init: usize) -> Box<TestTable> {
        let mut t = Box::new(TestTable {
            elems: vec![init; size as usize],
            // Keep the harness's tables small.
            max: max.unwrap_or(u64::from(u32::MAX)).min(1 << 20),
            def: VMTableDefinition {
                base: std::ptr::null_mut(),
                current_elements: 0,
            },
        });
        t.sync();
        t
    }

    fn sync(&mut self) {
        self.def.base = self.elems.as_mut_ptr();
        self.def.current_elements = self.elems.len();
    }

    pub fn grow(&mut self, delta: u64, init: usize) -> u64 {
        let old = self.elems.len() as u64;
        match old.checked_add(delta) {
            Some(new) if new <= self.max => {
                let mut v = Vec::with_capacity(new as usize + 1);
                v.extend_from_slice(&self.elems);
                v.resize(new as usize, init);
                self.elems = v;
                self.sync();
                old
            }
            _ => u64::MAX,
        }
    }

    pub fn elems(&self) -> &[usize] {
        &self.elems
    }

    pub fn elems_mut(&mut self) -> &mut [usize] {
        &mut self.elems
    }

    /// `[start, start + len)` as a `usize` range, if within `size`.
    fn range(start: u64, len: u64, size: usize) -> Option<std::ops::Range<usize>> {
        let end = start.checked_add(len)?;
        (end <= size as u64).then_some(start as usize..end as usize)
    }
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
    /// A function of another test instance: (vmctx, `wasm_call`).
    Wasm(*mut u8, *const u8),
    /// A funcref of another instance, used as is.
    FuncRef(*const VMFuncRef),
    /// A table of another instance (or of the test).
    Table(*mut TestTable),
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
    pub store: Box<VMStoreContext>,
    /// The engine's epoch counter (`store.epoch_ptr` points to it).
    pub epoch: Arc<AtomicU64>,
    /// What the `EpochInterrupt` builtin does (after counting the call).
    pub on_epoch: fn(&mut Instance) -> u32,
    /// What the `OutOfFuel` builtin does (after counting the call).
    pub on_out_of_fuel: fn(&mut Instance) -> u32,
    pub epoch_calls: usize,
    pub fuel_calls: usize,
    /// `fuel_consumed` as `OutOfFuel` saw it, at each call.
    pub fuel_seen: Vec<i64>,
    builtins: Box<[usize; Builtin::COUNT]>,
    pub memories: Vec<TestMemory>,
    /// Every table of the module's index space (imported ones point into
    /// other instances).
    tables: Vec<*mut TestTable>,
    own_tables: Vec<Box<TestTable>>,
    pub globals: Vec<Box<ValRaw>>,
    _funcrefs: Vec<Box<VMFuncRef>>,
    pub host_ctxs: Vec<Box<HostCtx>>,
    _trampolines: Vec<CompiledTrampoline>,
    /// Element segments (`None` once dropped).
    elems: Vec<Option<Vec<usize>>>,
    /// Data segments (`None` once dropped).
    data: Vec<Option<Vec<u8>>>,
    grows: usize,
    /// Every builtin call but `memory.grow`: (builtin, arguments after the
    /// vmctx, widened to u64).
    pub builtin_log: Vec<(Builtin, Vec<u64>)>,
    /// What the fake `memory.atomic.notify` returns (the "woken" count).
    pub notify_result: u64,
    /// Thrown exceptions: tag index and fields (never freed).
    pub exceptions: Vec<(u32, Vec<ValRaw>)>,
}

/// The instance whose vmctx compiled code passed to a builtin.
///
/// # Safety
/// `vmctx` must be the vmctx of a live harness `Instance` (its `runtime`
/// field points to it), and no other reference to it may be in use.
pub unsafe fn instance<'a>(vmctx: *mut u8) -> &'a mut Instance {
    // SAFETY: per the contract above.
    unsafe { &mut **(vmctx.add(16) as *mut *mut Instance) }
}

extern "C" fn memory_grow(vmctx: *mut u8, memory_index: u32, delta: u64) -> u64 {
    // SAFETY: the runtime field of every vmctx the harness builds points to
    // its `Instance`, which outlives the call.
    let inst = unsafe { instance(vmctx) };
    inst.grows += 1;
    inst.memories[memory_index as usize].grow(delta)
}

impl Instance {
    fn table(&mut self, i: u32) -> &mut TestTable {
        // SAFETY: table pointers point to boxed tables owned by this or an
        // earlier, still live instance (or by the test).
        unsafe { &mut *self.tables[i as usize] }
    }

    pub fn table_ptr(&self, i: u32) -> *mut TestTable {
        self.tables[i as usize]
    }

    pub fn table_elems(&mut self, i: u32) -> Vec<usize> {
        self.table(i).elems().to_vec()
    }

    fn log(&mut self, b: Builtin, args: &[u64]) {
        self.builtin_log.push((b, args.to_vec()));
    }
}

extern "C" fn table_grow(vmctx: *mut u8, table: u32, delta: u64, init: u64) -> u64 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(Builtin::TableGrow, &[table.into(), delta, init]);
    inst.table(table).grow(delta, init as usize)
}

extern "C" fn table_fill(vmctx: *mut u8, table: u32, dst: u64, val: u64, len: u64) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(Builtin::TableFill, &[table.into(), dst, val, len]);
    let t = inst.table(table);
    match TestTable::range(dst, len, t.elems.len()) {
        Some(r) => {
            t.elems[r].fill(val as usize);
            0
        }
        None => 1,
    }
}

extern "C" fn table_copy(
    vmctx: *mut u8,
    dst_table: u32,
    src_table: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(
        Builtin::TableCopy,
        &[dst_table.into(), src_table.into(), dst, src, len],
    );
    let s = inst.table(src_table);
    let Some(sr) = TestTable::range(src, len, s.elems.len()) else {
        return 1;
    };
    let items = s.elems[sr].to_vec();
    let d = inst.table(dst_table);
    match TestTable::range(dst, len, d.elems.len()) {
        Some(dr) => {
            d.elems[dr].copy_from_slice(&items);
            0
        }
        None => 1,
    }
}

extern "C" fn table_init(
    vmctx: *mut u8,
    table: u32,
    elem: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(
        Builtin::TableInit,
        &[table.into(), elem.into(), dst, src, len],
    );
    let seg = inst.elems[elem as usize].clone().unwrap_or_default();
    let Some(sr) = TestTable::range(src, len, seg.len()) else {
        return 1;
    };
    let t = inst.table(table);
    match TestTable::range(dst, len, t.elems.len()) {
        Some(dr) => {
            t.elems[dr].copy_from_slice(&seg[sr]);
            0
        }
        None => 1,
    }
}

extern "C" fn epoch_interrupt(vmctx: *mut u8) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.epoch_calls += 1;
    (inst.on_epoch)(inst)
}

extern "C" fn out_of_fuel(vmctx: *mut u8) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.fuel_calls += 1;
    inst.fuel_seen.push(inst.store.fuel_consumed);
    (inst.on_out_of_fuel)(inst)
}

/// Default `EpochInterrupt`: move the deadline out of reach, continue.
pub fn epoch_far_deadline(inst: &mut Instance) -> u32 {
    inst.store.epoch_deadline = u64::MAX;
    0
}

/// Default `OutOfFuel`: add 1000 fuel, continue.
pub fn refill_1000(inst: &mut Instance) -> u32 {
    inst.store.fuel_consumed -= 1000;
    0
}

extern "C" fn elem_drop(vmctx: *mut u8, elem: u32) {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(Builtin::ElemDrop, &[elem.into()]);
    inst.elems[elem as usize] = None;
}

extern "C" fn memory_copy(
    vmctx: *mut u8,
    dst_mem: u32,
    src_mem: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(
        Builtin::MemoryCopy,
        &[dst_mem.into(), src_mem.into(), dst, src, len],
    );
    let s = inst.memories[src_mem as usize].bytes();
    let Some(sr) = TestTable::range(src, len, s.len()) else {
        return 1;
    };
    let bytes = s[sr].to_vec();
    let d = inst.memories[dst_mem as usize].bytes_mut();
    match TestTable::range(dst, len, d.len()) {
        Some(dr) => {
            d[dr].copy_from_slice(&bytes);
            0
        }
        None => 1,
    }
}

extern "C" fn memory_fill(vmctx: *mut u8, mem: u32, dst: u64, val: u32, len: u64) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(Builtin::MemoryFill, &[mem.into(), dst, val.into(), len]);
    let m = inst.memories[mem as usize].bytes_mut();
    match TestTable::range(dst, len, m.len()) {
        Some(r) => {
            m[r].fill(val as u8);
            0
        }
        None => 1,
    }
}

extern "C" fn memory_init(
    vmctx: *mut u8,
    mem: u32,
    data: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(
        Builtin::MemoryInit,
        &[mem.into(), data.into(), dst, src, len],
    );
    let seg = inst.data[data as usize].clone().unwrap_or_default();
    let Some(sr) = TestTable::range(src, len, seg.len()) else {
        return 1;
    };
    let m = inst.memories[mem as usize].bytes_mut();
    match TestTable::range(dst, len, m.len()) {
        Some(dr) => {
            m[dr].copy_from_slice(&seg[sr]);
            0
        }
        None => 1,
    }
}

extern "C" fn data_drop(vmctx: *mut u8, data: u32) {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(Builtin::DataDrop, &[data.into()]);
    inst.data[data as usize] = None;
}

/// Checks a wait/notify address like the runtime does: alignment, then
/// bounds. Returns the offset, or `None` (the builtin then fails).
fn atomic_check(inst: &Instance, mem: u32, addr: u64, size: u64) -> Option<usize> {
    let len = inst.memories[mem as usize].def.current_length as u64;
    (addr.is_multiple_of(size) && addr.checked_add(size)? <= len).then_some(addr as usize)
}

extern "C" fn memory_atomic_notify(vmctx: *mut u8, mem: u32, addr: u64, count: u32) -> u64 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(
        Builtin::MemoryAtomicNotify,
        &[mem.into(), addr, count.into()],
    );
    if atomic_check(inst, mem, addr, 4).is_none() {
        return u64::MAX;
    }
    // Nobody ever waits in the fake runtime: report what the test asked for.
    inst.notify_result
}

/// Fake `wait32`/`wait64`: never blocks; "times out" (2) when the value
/// matches, 1 when it does not; fails on a non-shared memory.
fn fake_wait(inst: &mut Instance, mem: u32, addr: u64, expected: u64, size: u64) -> u64 {
    let Some(off) = atomic_check(inst, mem, addr, size) else {
        return u64::MAX;
    };
    if !inst.module.memories[mem as usize].shared {
        return u64::MAX;
    }
    let m = &inst.memories[mem as usize];
    // SAFETY: `off` is aligned and in bounds (checked above); other threads
    // only access the memory atomically.
    let value = unsafe {
        let p = m.def.base.add(off);
        if size == 4 {
            u64::from((*p.cast::<std::sync::atomic::AtomicU32>()).load(Ordering::SeqCst))
        } else {
            (*p.cast::<AtomicU64>()).load(Ordering::SeqCst)
        }
    };
    if value == expected { 2 } else { 1 }
}

extern "C" fn memory_atomic_wait32(
    vmctx: *mut u8,
    mem: u32,
    addr: u64,
    expected: u32,
    timeout: i64,
) -> u64 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(
        Builtin::MemoryAtomicWait32,
        &[mem.into(), addr, expected.into(), timeout as u64],
    );
    fake_wait(inst, mem, addr, expected.into(), 4)
}

extern "C" fn memory_atomic_wait64(
    vmctx: *mut u8,
    mem: u32,
    addr: u64,
    expected: u64,
    timeout: i64,
) -> u64 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(
        Builtin::MemoryAtomicWait64,
        &[mem.into(), addr, expected, timeout as u64],
    );
    fake_wait(inst, mem, addr, expected, 8)
}

type Grow = extern "C" fn(*mut u8, u32, u64) -> u64;
type TGrow = extern "C" fn(*mut u8, u32, u64, u64) -> u64;
type TFill = extern "C" fn(*mut u8, u32, u64, u64, u64) -> u32;
type Copy5 = extern "C" fn(*mut u8, u32, u32, u64, u64, u64) -> u32;
type Drop1 = extern "C" fn(*mut u8, u32);
type MFill = extern "C" fn(*mut u8, u32, u64, u32, u64) -> u32;
type Status = extern "C" fn(*mut u8) -> u32;
type Notify = extern "C" fn(*mut u8, u32, u64, u32) -> u64;
type Wait32 = extern "C" fn(*mut u8, u32, u64, u32, i64) -> u64;
type Wait64 = extern "C" fn(*mut u8, u32, u64, u64, i64) -> u64;
type ThrowFn = extern "C" fn(*mut u8, u32, *const ValRaw) -> u32;
type ThrowRefFn = extern "C" fn(*mut u8, u64) -> u32;
type CatchFn = extern "C" fn(*mut u8, *mut ValRaw, u32) -> u64;

extern "C" fn throw(vmctx: *mut u8, tag: u32, values: *const ValRaw) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(Builtin::Throw, &[tag.into()]);
    let ty = inst.module.tags[tag as usize];
    let n = inst.module.types[ty as usize].params.len();
    // SAFETY: compiled code passes one slot per tag parameter.
    let fields = (0..n)
        .map(|i| unsafe { values.add(i).read_unaligned() })
        .collect();
    inst.exceptions.push((tag, fields));
    inst.store.exception = inst.exceptions.len() as u64;
    inst.store.exception_tag = tag as usize + 1;
    0
}

extern "C" fn throw_ref(vmctx: *mut u8, exn: u64) -> u32 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    inst.log(Builtin::ThrowRef, &[exn]);
    let tag = inst.exceptions[exn as usize - 1].0;
    inst.store.exception = exn;
    inst.store.exception_tag = tag as usize + 1;
    0
}

extern "C" fn catch_exception(vmctx: *mut u8, values: *mut ValRaw, keep: u32) -> u64 {
    // SAFETY: see `memory_grow`.
    let inst = unsafe { instance(vmctx) };
    let exn = std::mem::take(&mut inst.store.exception);
    inst.log(Builtin::CatchException, &[exn, keep.into()]);
    if !values.is_null() {
        for (i, f) in inst.exceptions[exn as usize - 1].1.iter().enumerate() {
            // SAFETY: compiled code passes one slot per field of the tag.
            unsafe { values.add(i).write_unaligned(*f) };
        }
    }
    if keep != 0 { exn } else { 0 }
}

/// The fake builtins, in `Builtin` order.
pub fn builtins_table() -> [usize; Builtin::COUNT] {
    let mut t = [0usize; Builtin::COUNT];
    for b in Builtin::ALL {
        t[b.index() as usize] = match b {
            Builtin::MemoryGrow => memory_grow as Grow as usize,
            Builtin::TableGrow => table_grow as TGrow as usize,
            Builtin::TableFill => table_fill as TFill as usize,
            Builtin::TableCopy => table_copy as Copy5 as usize,
            Builtin::TableInit => table_init as Copy5 as usize,
            Builtin::ElemDrop => elem_drop as Drop1 as usize,
            Builtin::MemoryCopy => memory_copy as Copy5 as usize,
            Builtin::MemoryFill => memory_fill as MFill as usize,
            Builtin::MemoryInit => memory_init as Copy5 as usize,
            Builtin::DataDrop => data_drop as Drop1 as usize,
            Builtin::EpochInterrupt => epoch_interrupt as Status as usize,
            Builtin::OutOfFuel => out_of_fuel as Status as usize,
            Builtin::MemoryAtomicNotify => memory_atomic_notify as Notify as usize,
            Builtin::MemoryAtomicWait32 => memory_atomic_wait32 as Wait32 as usize,
            Builtin::MemoryAtomicWait64 => memory_atomic_wait64 as Wait64 as usize,
            Builtin::Throw => throw as ThrowFn as usize,
            Builtin::ThrowRef => throw_ref as ThrowRefFn as usize,
            Builtin::CatchException => catch_exception as CatchFn as usize,
            other => panic!("harness lacks builtin {other:?}"),
        };
    }
    t
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
        Self::with_features(src, tunables, imports, Features::default())
    }

    /// Like `with`, decoding with the given features.
    pub fn with_features(
        src: &str,
        tunables: Tunables,
        imports: Vec<ImportVal>,
        features: Features,
    ) -> Box<Instance> {
        let compiler = Compiler::new(tunables).expect("host ISA");
        let module = Module::decode_with(&wat(src), features).expect("valid module");
        let compiled = compiler.compile(&module).expect("compiles");
        Self::instantiate(&compiler, module, compiled, imports)
    }

    /// Evaluates a constant expression; `funcref(f)` is the address of
    /// function `f`'s `VMFuncRef`.
    fn eval(&self, e: &ConstExpr, funcref: &dyn Fn(u32) -> usize) -> ValRaw {
        let mut stack: Vec<ValRaw> = Vec::new();
        for op in &e.ops {
            let v = match *op {
                ConstOp::I32Const(x) => ValRaw::from_val(Val::I32(x)),
                ConstOp::I64Const(x) => ValRaw::from_val(Val::I64(x)),
                ConstOp::F32Const(x) => ValRaw::from_val(Val::F32(x)),
                ConstOp::F64Const(x) => ValRaw::from_val(Val::F64(x)),
                ConstOp::RefNull(_) => ValRaw::from_val(Val::Ref(0)),
                ConstOp::RefFunc(f) => ValRaw::from_val(Val::Ref(funcref(f) as u64)),
                ConstOp::GlobalGet(i) => *self.globals[i as usize],
                ref other => panic!("unsupported init {other:?}"),
            };
            stack.push(v);
        }
        stack.pop().unwrap()
    }

    fn eval_word(&self, e: &ConstExpr, funcref: &dyn Fn(u32) -> usize) -> u64 {
        u64::from_le_bytes(self.eval(e, funcref).0[..8].try_into().unwrap())
    }

    pub fn instantiate(
        compiler: &Compiler,
        module: Module,
        compiled: CompiledModule,
        imports: Vec<ImportVal>,
    ) -> Box<Instance> {
        let o = compiled.offsets().clone();
        let chunks = o.vmctx_size() as usize / 16;
        let epoch = Arc::new(AtomicU64::new(0));
        let mut inst = Box::new(Instance {
            vmctx: (0..chunks).map(|_| Chunk([0; 16])).collect(),
            store: Box::new(VMStoreContext {
                stack_limit: 0,
                fuel_consumed: -1_000_000,
                epoch_deadline: u64::MAX,
                epoch_ptr: Arc::as_ptr(&epoch),
                poll_page: POLL_PAGE.0.as_ptr(),
                exception: 0,
                exception_tag: 0,
            }),
            epoch,
            on_epoch: epoch_far_deadline,
            on_out_of_fuel: refill_1000,
            epoch_calls: 0,
            fuel_calls: 0,
            fuel_seen: Vec::new(),
            builtins: Box::new(builtins_table()),
            memories: Vec::new(),
            tables: Vec::new(),
            own_tables: Vec::new(),
            globals: Vec::new(),
            _funcrefs: Vec::new(),
            host_ctxs: Vec::new(),
            _trampolines: Vec::new(),
            elems: Vec::new(),
            data: Vec::new(),
            grows: 0,
            builtin_log: Vec::new(),
            notify_result: 0,
            exceptions: Vec::new(),
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

        let base = inst.vmctx.as_mut_ptr() as *mut u8;
        let mut imports = imports.into_iter();
        // Address of each imported function's `VMFuncRef`.
        let mut func_imports: Vec<*const VMFuncRef> = Vec::new();
        for imp in inst.module.imports.clone() {
            match imp.ty {
                EntityType::Func(ty) => {
                    let ty = inst.module.types[ty as usize].clone();
                    let type_id = type_id(&ty);
                    let fr = match imports.next().expect("import provided") {
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
                                type_id,
                            });
                            inst.host_ctxs.push(ctx);
                            inst._trampolines.push(tramp);
                            fr
                        }
                        ImportVal::Wasm(vmctx, code) => Box::new(VMFuncRef {
                            wasm_call: code,
                            array_call: std::ptr::null(),
                            vmctx,
                            type_id,
                        }),
                        ImportVal::FuncRef(p) => {
                            func_imports.push(p);
                            continue;
                        }
                        _ => panic!("expected a function import"),
                    };
                    func_imports.push(&*fr);
                    inst._funcrefs.push(fr);
                }
                EntityType::Global(_) => match imports.next().expect("import provided") {
                    ImportVal::Global(v) => inst.globals.push(Box::new(ValRaw::from_val(v))),
                    _ => panic!("expected a global import"),
                },
                EntityType::Table(_) => match imports.next().expect("import provided") {
                    ImportVal::Table(t) => inst.tables.push(t),
                    _ => panic!("expected a table import"),
                },
                _ => panic!("test harness does not import memories"),
            }
        }
        let num_imported = inst.module.num_imported_funcs;
        let funcref = |f: u32| -> usize {
            if f < num_imported {
                func_imports[f as usize] as usize
            } else {
                base as usize + o.func_ref(f - num_imported) as usize
            }
        };
        for g in inst.module.global_defs.clone() {
            let v = inst.eval(&g.init, &funcref);
            inst.globals.push(Box::new(v));
        }
        for td in inst.module.table_defs.clone() {
            let init = td
                .init
                .as_ref()
                .map_or(0, |e| inst.eval_word(e, &funcref) as usize);
            let mut t = TestTable::new(td.ty.limits.min, td.ty.limits.max, init);
            inst.tables.push(&mut *t);
            inst.own_tables.push(t);
        }

        // Fill the vmctx.
        let inst_ptr: *mut Instance = &mut *inst;
        let put = |off: u32, v: usize| {
            // SAFETY: every offset comes from `VMOffsets` and lies inside the
            // vmctx buffer of `vmctx_size()` bytes; it is 8-aligned.
            unsafe { (base.add(off as usize) as *mut usize).write(v) }
        };
        put(
            o.store_ctx(),
            &*inst.store as *const VMStoreContext as usize,
        );
        put(o.builtins(), inst.builtins.as_ptr() as usize);
        put(o.runtime(), inst_ptr as usize);
        for (i, &fr) in func_imports.iter().enumerate() {
            put(o.imported_func(i as u32), fr as usize);
        }
        for (i, m) in inst.memories.iter().enumerate() {
            put(
                o.memory(i as u32),
                &*m.def as *const VMMemoryDefinition as usize,
            );
        }
        for (i, &t) in inst.tables.iter().enumerate() {
            // SAFETY: `t` points to a live boxed table.
            put(o.table(i as u32), unsafe { &raw mut (*t).def } as usize);
        }
        for (i, g) in inst.globals.iter_mut().enumerate() {
            put(o.global(i as u32), &mut **g as *mut ValRaw as usize);
        }
        // Tag identities: tag i is i + 1 (modules here import no tags).
        for i in 0..o.num_tags() {
            put(o.tag(i), i as usize + 1);
        }
        for (i, ty) in inst.module.types.iter().enumerate() {
            let off = o.type_ids(i as u32);
            // SAFETY: as in `put`; 4-aligned.
            unsafe { (base.add(off as usize) as *mut u32).write(type_id(ty)) };
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
            let tid = type_id(inst.module.func_type(num_imported + i));
            // SAFETY: as in `put`; 8-aligned.
            unsafe {
                (base.add((off + VMOffsets::FUNC_REF_TYPE_ID) as usize) as *mut u32).write(tid)
            };
        }

        // Element and data segments: active ones are copied now, and only
        // passive ones stay available to `table.init`/`memory.init`.
        for seg in inst.module.elements.clone() {
            let items: Vec<usize> = match &seg.items {
                ElementItems2::Functions(fs) => fs.iter().map(|&f| funcref(f)).collect(),
                ElementItems2::Expressions(es) => es
                    .iter()
                    .map(|e| inst.eval_word(e, &funcref) as usize)
                    .collect(),
            };
            match &seg.mode {
                SegmentMode::Passive => inst.elems.push(Some(items)),
                SegmentMode::Active { index, offset } => {
                    let off = inst.eval_word(offset, &funcref) as u32 as usize;
                    inst.table(*index).elems_mut()[off..off + items.len()].copy_from_slice(&items);
                    inst.elems.push(None);
                }
                SegmentMode::Declared => inst.elems.push(None),
            }
        }
        for d in inst.module.data.clone() {
            let bytes = inst.module.bytes[d.data.clone()].to_vec();
            match &d.mode {
                SegmentMode::Active { index, offset } => {
                    let off = inst.eval_word(offset, &funcref) as u32 as usize;
                    inst.memories[*index as usize].bytes_mut()[off..off + bytes.len()]
                        .copy_from_slice(&bytes);
                    inst.data.push(None);
                }
                _ => inst.data.push(Some(bytes)),
            }
        }
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

    /// The `VMFuncRef` of function `f` (what `ref.func f` evaluates to).
    pub fn funcref(&mut self, f: u32) -> *const VMFuncRef {
        let o = self.compiled.offsets().clone();
        let base = self.vmctx();
        if self.module.is_imported_func(f) {
            // SAFETY: the vmctx slot of an imported function holds its
            // funcref pointer.
            unsafe { *(base.add(o.imported_func(f) as usize) as *const *const VMFuncRef) }
        } else {
            let off = o.func_ref(f - self.module.num_imported_funcs);
            // SAFETY: the offset lies inside the vmctx.
            unsafe { base.add(off as usize) as *const VMFuncRef }
        }
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

    /// Sets the epoch counter (as the engine would, from any thread).
    pub fn set_epoch(&self, e: u64) {
        self.epoch.store(e, Ordering::Relaxed);
    }

    pub fn grows(&self) -> usize {
        self.grows
    }

    pub fn global(&self, i: usize, ty: ValType) -> Val {
        self.globals[i].to_val(ty)
    }
}

/// The module whose trap table the forked child's signal handler consults.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
static TRAP_MODULE: std::sync::atomic::AtomicPtr<CompiledModule> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Exit status of a child whose signal was not at a known trap site.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const UNKNOWN_FAULT: i32 = 99;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
extern "C" fn trap_exit(_sig: i32, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `ucontext_t` to an SA_SIGINFO
    // handler; `TRAP_MODULE` points to the module, alive in this child.
    // `lookup_trap` is a binary search that does not allocate, and the child
    // leaves with `_exit` without returning into the faulting code.
    unsafe {
        let uc = ctx as *const libc::ucontext_t;
        let pc = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        let m = TRAP_MODULE.load(Ordering::SeqCst);
        let code = match (*m).lookup_trap(pc) {
            Some(k) => {
                100 + weft_jit::TrapKind::ALL
                    .iter()
                    .position(|&x| x == k)
                    .expect("listed") as i32
            }
            None => UNKNOWN_FAULT,
        };
        libc::_exit(code);
    }
}

impl Instance {
    /// Calls `name` in a forked child and reports how it ended: `None` if
    /// it returned, or the trap kind of the trap site it stopped at (the
    /// child's SIGILL/SIGSEGV/SIGBUS handler maps the faulting PC). Lets
    /// tests observe traps although the harness cannot recover from them.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    pub fn trap_of(&mut self, name: &str, args: &[Val]) -> Option<weft_jit::TrapKind> {
        // SAFETY: the child only runs this test's code (glibc keeps malloc
        // usable after fork) and always leaves through `_exit`; the parent
        // only waits for it.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0, "fork");
            if pid == 0 {
                TRAP_MODULE.store(&mut self.compiled, Ordering::SeqCst);
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = trap_exit as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO;
                for sig in [libc::SIGILL, libc::SIGSEGV, libc::SIGBUS] {
                    libc::sigaction(sig, &sa, std::ptr::null_mut());
                }
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.call(name, args);
                }))
                .is_ok();
                libc::_exit(if ok { 0 } else { 98 });
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid, "waitpid");
            assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
            match libc::WEXITSTATUS(status) {
                0 => None,
                c @ 100.. => Some(weft_jit::TrapKind::ALL[(c - 100) as usize]),
                c => panic!("child of {name} ended with {c} (98 = panic, 99 = unknown fault)"),
            }
        }
    }
}
