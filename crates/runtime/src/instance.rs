//! Instantiation and instances.

use std::sync::Arc;

use weft_decoder::{ConstExpr, ConstOp, EntityType, ExternIndex, SegmentMode};
use weft_jit::{Builtin, VMOffsets};

use crate::error::{Error, Result, Trap, TrapKind};
use crate::func::{Func, FuncData, FuncKind, TypedFunc, VMFuncRef};
use crate::global::Global;
use crate::memory::Memory;
use crate::module::Module;
use crate::store::{AsContextMut, StoreOpaque};
use crate::values::WasmList;

/// Something an instance can import or export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extern {
    /// A function.
    Func(Func),
    /// A memory.
    Memory(Memory),
    /// A global.
    Global(Global),
}

impl Extern {
    /// The function, if this is one.
    pub fn into_func(self) -> Option<Func> {
        if let Extern::Func(f) = self {
            Some(f)
        } else {
            None
        }
    }
    /// The memory, if this is one.
    pub fn into_memory(self) -> Option<Memory> {
        if let Extern::Memory(m) = self {
            Some(m)
        } else {
            None
        }
    }
    /// The global, if this is one.
    pub fn into_global(self) -> Option<Global> {
        if let Extern::Global(g) = self {
            Some(g)
        } else {
            None
        }
    }
}

impl From<Func> for Extern {
    fn from(f: Func) -> Self {
        Extern::Func(f)
    }
}
impl From<Memory> for Extern {
    fn from(m: Memory) -> Self {
        Extern::Memory(m)
    }
}
impl From<Global> for Extern {
    fn from(g: Global) -> Self {
        Extern::Global(g)
    }
}

/// An instantiated module inside a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Instance {
    pub(crate) store_id: u64,
    pub(crate) index: usize,
}

/// A 16-aligned, zeroed block holding an instance's vmctx.
pub(crate) struct VmctxBlock(Box<[u128]>);

impl VmctxBlock {
    fn new(size: usize) -> Self {
        VmctxBlock(vec![0u128; size.div_ceil(16).max(1)].into_boxed_slice())
    }
    pub(crate) fn ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr() as *mut u8
    }
    fn write<V: Copy>(&mut self, offset: u32, v: V) {
        assert!(offset as usize + size_of::<V>() <= self.0.len() * 16);
        // SAFETY: in bounds (checked above); vmctx fields are naturally
        // aligned by the layout, and the block is 16-aligned.
        unsafe { (self.ptr().add(offset as usize) as *mut V).write(v) }
    }
}

pub(crate) struct InstanceData {
    pub(crate) module: Module,
    pub(crate) vmctx: VmctxBlock,
    pub(crate) store: *mut StoreOpaque,
    pub(crate) index: usize,
    /// Store function index for every function index.
    pub(crate) funcs: Vec<usize>,
    /// Store memory index for every memory index.
    pub(crate) memories: Vec<usize>,
    /// Store global index for every global index.
    pub(crate) globals: Vec<usize>,
}

impl InstanceData {
    /// The instance a vmctx belongs to.
    ///
    /// # Safety
    /// `vmctx` must be the vmctx of a live instance created by this runtime.
    pub(crate) unsafe fn from_vmctx<'a>(vmctx: *mut u8) -> Option<&'a InstanceData> {
        // SAFETY: the runtime field holds the InstanceData pointer (see
        // `Instance::new`), at the offset fixed by the contract.
        unsafe {
            let p = *(vmctx.add(runtime_offset()) as *const *const InstanceData);
            p.as_ref()
        }
    }
}

fn runtime_offset() -> usize {
    // The fixed header: store_ctx @0, builtins @8, runtime @16.
    VMOffsets::from_counts(0, 0, 0, 0, 0, 0).runtime() as usize
}

type MemoryGrowFn = unsafe extern "C" fn(*mut u8, u32, u64) -> u64;

unsafe extern "C" fn builtin_memory_grow(vmctx: *mut u8, memory_index: u32, delta: u64) -> u64 {
    // SAFETY: compiled code passes its own live vmctx.
    let Some(inst) = (unsafe { InstanceData::from_vmctx(vmctx) }) else {
        return u64::MAX;
    };
    let Some(&mem) = inst.memories.get(memory_index as usize) else {
        return u64::MAX;
    };
    let store = inst.store;
    // SAFETY: the store outlives its instances, and the Rust frame that
    // entered wasm does not touch the store until the call returns.
    let store = unsafe { &mut *store };
    store.memories[mem].grow(delta).unwrap_or(u64::MAX)
}

struct Builtins([*const u8; Builtin::COUNT]);

// SAFETY: the table holds code addresses of functions, immutable for the
// life of the process.
unsafe impl Sync for Builtins {}

static BUILTINS: Builtins = Builtins([builtin_memory_grow as MemoryGrowFn as *const u8]);

impl Instance {
    /// Instantiates `module` in `store` with `imports` given in the order of
    /// the module's imports.
    ///
    /// # Errors
    /// A missing or mistyped import is an [`Error::Link`]; a trap while
    /// initialising (an out-of-bounds data segment, a trapping start
    /// function) is an [`Error::Trap`].
    pub fn new<S>(mut store: S, module: &Module, imports: &[Extern]) -> Result<Instance>
    where
        S: AsContextMut,
        S::Data: 'static,
    {
        let cx = store.as_context_mut();
        let opaque = &mut cx.0.opaque;
        let instance = instantiate(opaque, module, imports)?;
        if let Some(start) = module.inner.decoded.start {
            let f = opaque.instances[instance.index].funcs[start as usize];
            let mut slots = [0u128; 1];
            crate::func::call_raw(cx.0, f, &mut slots)?;
        }
        Ok(instance)
    }

    /// The module this instance was created from.
    pub fn module(&self, mut store: impl AsContextMut) -> Result<Module> {
        let cx = store.as_context_mut();
        cx.0.opaque.check(self.store_id, "instance")?;
        Ok(cx.0.opaque.instances[self.index].module.clone())
    }

    /// An export by name.
    pub fn get_export(&self, mut store: impl AsContextMut, name: &str) -> Option<Extern> {
        let cx = store.as_context_mut();
        let opaque = &cx.0.opaque;
        opaque.check(self.store_id, "instance").ok()?;
        let inst = &opaque.instances[self.index];
        let export = inst.module.inner.decoded.export(name)?;
        let id = opaque.id;
        Some(match export.index {
            ExternIndex::Func(i) => Extern::Func(Func {
                store_id: id,
                index: inst.funcs[i as usize],
            }),
            ExternIndex::Memory(i) => Extern::Memory(Memory {
                store_id: id,
                index: inst.memories[i as usize],
            }),
            ExternIndex::Global(i) => Extern::Global(Global {
                store_id: id,
                index: inst.globals[i as usize],
            }),
            ExternIndex::Table(_) => return None,
        })
    }

    /// An exported function.
    pub fn get_func(&self, store: impl AsContextMut, name: &str) -> Option<Func> {
        self.get_export(store, name)?.into_func()
    }

    /// An exported function with static types.
    ///
    /// # Errors
    /// Fails if there is no such function or its type differs.
    pub fn get_typed_func<P: WasmList, R: WasmList>(
        &self,
        mut store: impl AsContextMut,
        name: &str,
    ) -> Result<TypedFunc<P, R>> {
        let f = self
            .get_func(&mut store, name)
            .ok_or_else(|| Error::InvalidArgument(format!("no exported function `{name}`")))?;
        f.typed(store)
    }

    /// An exported memory.
    pub fn get_memory(&self, store: impl AsContextMut, name: &str) -> Option<Memory> {
        self.get_export(store, name)?.into_memory()
    }

    /// An exported global.
    pub fn get_global(&self, store: impl AsContextMut, name: &str) -> Option<Global> {
        self.get_export(store, name)?.into_global()
    }
}

fn link_err(module: &str, name: &str, why: &str) -> Error {
    Error::Link(format!("{why}: import `{module}::{name}`"))
}

fn instantiate(opaque: &mut StoreOpaque, module: &Module, imports: &[Extern]) -> Result<Instance> {
    module.check_engine(&opaque.engine)?;
    let m = &module.inner.decoded;
    if !m.tables.is_empty() || !m.elements.is_empty() {
        return Err(Error::Link(
            "tables are not supported by this version of weft".into(),
        ));
    }
    if imports.len() != m.imports.len() {
        return Err(Error::Link(format!(
            "expected {} imports, got {}",
            m.imports.len(),
            imports.len()
        )));
    }
    let offsets = module.inner.compiled.offsets();
    let mut funcs = Vec::with_capacity(m.functions.len());
    let mut memories = Vec::with_capacity(m.memories.len());
    let mut globals = Vec::with_capacity(m.globals.len());

    // Imports: check kinds and types.
    for (imp, ext) in m.imports.iter().zip(imports) {
        match (imp.ty, ext) {
            (EntityType::Func(t), Extern::Func(f)) => {
                opaque.check(f.store_id, "imported function")?;
                let want = &m.types[t as usize];
                if *opaque.funcs[f.index].ty != *want {
                    return Err(link_err(&imp.module, &imp.name, "incompatible import type"));
                }
                funcs.push(f.index);
            }
            (EntityType::Memory(t), Extern::Memory(mem)) => {
                opaque.check(mem.store_id, "imported memory")?;
                if !opaque.memories[mem.index].matches(&t) {
                    return Err(link_err(&imp.module, &imp.name, "incompatible import type"));
                }
                memories.push(mem.index);
            }
            (EntityType::Global(t), Extern::Global(g)) => {
                opaque.check(g.store_id, "imported global")?;
                if opaque.globals[g.index].ty != t {
                    return Err(link_err(&imp.module, &imp.name, "incompatible import type"));
                }
                globals.push(g.index);
            }
            _ => return Err(link_err(&imp.module, &imp.name, "incompatible import type")),
        }
    }

    // Defined memories.
    for ty in &m.memories[m.num_imported_memories as usize..] {
        let data = crate::memory::MemoryData::new(&opaque.engine, ty)?;
        opaque.memories.push(data);
        memories.push(opaque.memories.len() - 1);
    }

    // Defined globals, in order (initialisers may read earlier globals).
    for def in &m.global_defs {
        let raw = eval_const(opaque, &globals, &def.init)?;
        globals.push(opaque.push_global(def.ty, raw));
    }

    // The vmctx.
    let mut vmctx = VmctxBlock::new(offsets.vmctx_size() as usize);
    let index = opaque.instances.len();
    vmctx.write(offsets.store_ctx(), opaque.vmstore.ptr());
    vmctx.write(offsets.builtins(), BUILTINS.0.as_ptr());
    for (i, &f) in funcs.iter().enumerate() {
        vmctx.write(offsets.imported_func(i as u32), opaque.funcs[f].funcref);
    }
    for (i, &mem) in memories.iter().enumerate() {
        vmctx.write(offsets.memory(i as u32), opaque.memories[mem].definition());
    }
    for (i, &g) in globals.iter().enumerate() {
        vmctx.write(offsets.global(i as u32), opaque.globals[g].ptr());
    }
    for (i, &id) in module.inner.type_ids.iter().enumerate() {
        vmctx.write(offsets.type_ids(i as u32), id);
    }
    let vmctx_ptr = vmctx.ptr();
    let compiled = &module.inner.compiled;
    for (i, body) in m.bodies.iter().enumerate() {
        let i32_ = i as u32;
        vmctx.write(
            offsets.func_ref(i32_),
            VMFuncRef {
                wasm_call: compiled.wasm_call(i32_),
                array_call: compiled.array_call(i32_),
                vmctx: vmctx_ptr,
                type_id: module.inner.type_ids[body.type_index as usize],
                _pad: 0,
            },
        );
    }
    let mut data = Box::new(InstanceData {
        module: module.clone(),
        vmctx,
        store: opaque as *mut StoreOpaque,
        index,
        funcs,
        memories,
        globals,
    });
    let data_ptr = &mut *data as *mut InstanceData;
    data.vmctx.write(offsets.runtime(), data_ptr);
    for (i, body) in m.bodies.iter().enumerate() {
        let funcref =
            (data.vmctx.ptr() as usize + offsets.func_ref(i as u32) as usize) as *const VMFuncRef;
        opaque.funcs.push(FuncData {
            ty: Arc::new(m.types[body.type_index as usize].clone()),
            funcref,
            kind: FuncKind::Wasm,
        });
        data.funcs.push(opaque.funcs.len() - 1);
    }
    let memories = data.memories.clone();
    let globals = data.globals.clone();
    opaque.instances.push(data);

    // Active data segments, in order; the first out-of-bounds one traps
    // (what was written before stays written).
    for (seg_index, seg) in m.data.iter().enumerate() {
        if let SegmentMode::Active { index, offset } = &seg.mode {
            let off = eval_const(opaque, &globals, offset)?;
            let mem = &mut opaque.memories[memories[*index as usize]];
            let bytes = m.data_bytes(seg_index as u32);
            let off = if mem.is_64() {
                off as u64
            } else {
                u64::from(off as u32)
            };
            if mem.write_at(off, bytes).is_err() {
                return Err(Error::Trap(Trap::new(TrapKind::MemoryOutOfBounds, None)));
            }
        }
    }
    Ok(Instance {
        store_id: opaque.id,
        index,
    })
}

/// Evaluates a constant expression; `globals` maps global indices to store
/// globals (only those defined so far may be read, as validation ensures).
fn eval_const(opaque: &StoreOpaque, globals: &[usize], e: &ConstExpr) -> Result<u128> {
    let mut stack: Vec<u128> = Vec::with_capacity(2);
    let bad = || Error::Link("malformed constant expression".into());
    for op in &e.ops {
        let v = match *op {
            ConstOp::I32Const(v) => u128::from(v as u32),
            ConstOp::I64Const(v) => u128::from(v as u64),
            ConstOp::F32Const(b) => u128::from(b),
            ConstOp::F64Const(b) => u128::from(b),
            ConstOp::V128Const(b) => b,
            ConstOp::RefNull(_) => 0,
            ConstOp::RefFunc(_) => {
                return Err(Error::Link(
                    "function references are not supported by this version of weft".into(),
                ));
            }
            ConstOp::GlobalGet(i) => {
                let g = *globals.get(i as usize).ok_or_else(bad)?;
                opaque.globals[g].get()
            }
            ConstOp::I32Add | ConstOp::I32Sub | ConstOp::I32Mul => {
                let b = stack.pop().ok_or_else(bad)? as u32;
                let a = stack.pop().ok_or_else(bad)? as u32;
                u128::from(match *op {
                    ConstOp::I32Add => a.wrapping_add(b),
                    ConstOp::I32Sub => a.wrapping_sub(b),
                    _ => a.wrapping_mul(b),
                })
            }
            ConstOp::I64Add | ConstOp::I64Sub | ConstOp::I64Mul => {
                let b = stack.pop().ok_or_else(bad)? as u64;
                let a = stack.pop().ok_or_else(bad)? as u64;
                u128::from(match *op {
                    ConstOp::I64Add => a.wrapping_add(b),
                    ConstOp::I64Sub => a.wrapping_sub(b),
                    _ => a.wrapping_mul(b),
                })
            }
        };
        stack.push(v);
    }
    stack.pop().ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    #[test]
    fn runtime_offset_is_fixed() {
        assert_eq!(super::runtime_offset(), 16);
    }
}
