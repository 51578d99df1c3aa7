//! Instantiation and instances.

use std::sync::Arc;

use weft_decoder::{ConstExpr, ConstOp, ElementItems2, EntityType, ExternIndex, SegmentMode};
use weft_jit::VMOffsets;

use crate::engine::Engine;
use crate::error::{Error, Result, Trap};
use crate::func::{Func, FuncData, FuncKind, TypedFunc, VMFuncRef};
use crate::global::Global;
use crate::memory::{Memory, MemoryData};
use crate::module::Module;
use crate::shared_memory::SharedMemory;
use crate::store::{AsContextMut, StoreOpaque};
use crate::table::{Table, TableData};
use crate::values::WasmList;
use weft_jit::TrapKind;

/// Something an instance can import or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extern {
    /// A function.
    Func(Func),
    /// A memory.
    Memory(Memory),
    /// A table.
    Table(Table),
    /// A global.
    Global(Global),
    /// A shared memory (not tied to a store).
    SharedMemory(SharedMemory),
    /// An exception tag.
    Tag(crate::Tag),
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
    /// The table, if this is one.
    pub fn into_table(self) -> Option<Table> {
        if let Extern::Table(t) = self {
            Some(t)
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

    /// The tag, if this is one.
    pub fn into_tag(self) -> Option<crate::Tag> {
        if let Extern::Tag(t) = self {
            Some(t)
        } else {
            None
        }
    }
}

impl From<crate::Tag> for Extern {
    fn from(t: crate::Tag) -> Self {
        Extern::Tag(t)
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
impl From<Table> for Extern {
    fn from(t: Table) -> Self {
        Extern::Table(t)
    }
}
impl From<SharedMemory> for Extern {
    fn from(m: SharedMemory) -> Self {
        Extern::SharedMemory(m)
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
    /// Store table index for every table index.
    pub(crate) tables: Vec<usize>,
    /// Store global index for every global index.
    pub(crate) globals: Vec<usize>,
    /// Store indices of the instance's tags (imported and defined).
    pub(crate) tags: Vec<usize>,
    /// Element segments' items (`None` once dropped).
    pub(crate) elems: Vec<Option<Vec<usize>>>,
    /// Whether each data segment has been dropped.
    pub(crate) data_dropped: Vec<bool>,
    /// The pooling allocator's instance slot, given back on drop.
    _slot: Option<crate::pooling::InstanceSlot>,
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
            let p = *(vmctx.add(VMOffsets::VMCTX_RUNTIME as usize) as *const *const InstanceData);
            p.as_ref()
        }
    }
}

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
        tracing::debug!(module = ?module.name(), index = instance.index, "instantiated");
        if let Some(start) = module.inner.decoded.start {
            let f = opaque.instances[instance.index].funcs[start as usize];
            let mut slots = [0u128; 1];
            crate::func::call_raw(cx.0, f, &mut slots)?;
        }
        Ok(instance)
    }

    /// [`Instance::new`] on a fiber, for stores of engines with
    /// [`Config::async_support`](crate::Config::async_support): a start
    /// function may call async host functions.
    ///
    /// # Errors
    /// As for [`Instance::new`]; also if async support is off.
    pub async fn new_async<T: Send + 'static>(
        store: &mut crate::Store<T>,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance> {
        crate::fiber::run_on_store(store, move |cx| Instance::new(cx, module, imports))?.await
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
            ExternIndex::Table(i) => Extern::Table(Table {
                store_id: id,
                index: inst.tables[i as usize],
            }),
            ExternIndex::Tag(i) => Extern::Tag(crate::Tag {
                store_id: id,
                index: inst.tags[i as usize],
            }),
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

    /// An exported table.
    pub fn get_table(&self, store: impl AsContextMut, name: &str) -> Option<Table> {
        self.get_export(store, name)?.into_table()
    }

    /// An exported global.
    pub fn get_global(&self, store: impl AsContextMut, name: &str) -> Option<Global> {
        self.get_export(store, name)?.into_global()
    }
}

fn link_err(module: &str, name: &str, why: &str) -> Error {
    Error::Link(format!("{why}: import `{module}::{name}`"))
}

fn trap(kind: TrapKind) -> Error {
    Error::Trap(Trap::new(kind, None))
}

fn instantiate(opaque: &mut StoreOpaque, module: &Module, imports: &[Extern]) -> Result<Instance> {
    module.check_engine(&opaque.engine)?;
    let m = &module.inner.decoded;
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
    let mut tables = Vec::with_capacity(m.tables.len());
    let mut globals = Vec::with_capacity(m.globals.len());
    let mut tags = Vec::with_capacity(m.tags.len());

    // Imports: check kinds and types (the spec's matching rules).
    for (imp, ext) in m.imports.iter().zip(imports) {
        let incompatible = || link_err(&imp.module, &imp.name, "incompatible import type");
        match (imp.ty, ext) {
            (EntityType::Func(t), Extern::Func(f)) => {
                opaque.check(f.store_id, "imported function")?;
                // Canonical ids are equal exactly for structurally equal types.
                if f.type_id_in(opaque) != module.inner.type_ids.get(t as usize).copied() {
                    return Err(incompatible());
                }
                funcs.push(f.index);
            }
            (EntityType::Memory(t), Extern::Memory(mem)) => {
                opaque.check(mem.store_id, "imported memory")?;
                if !opaque.memories[mem.index].matches(&t) {
                    return Err(incompatible());
                }
                memories.push(mem.index);
            }
            (EntityType::Memory(t), Extern::SharedMemory(shared)) => {
                if !Engine::same(&shared.engine, &opaque.engine) {
                    return Err(Error::InvalidArgument(
                        "shared memory belongs to a different engine".into(),
                    ));
                }
                let data = MemoryData::from_shared(shared.inner.clone());
                if !data.matches(&t) {
                    return Err(incompatible());
                }
                opaque.memories.push(data);
                memories.push(opaque.memories.len() - 1);
            }
            (EntityType::Table(t), Extern::Table(tab)) => {
                opaque.check(tab.store_id, "imported table")?;
                if !opaque.tables[tab.index].matches(&module.inner.canon_table(t)) {
                    return Err(incompatible());
                }
                tables.push(tab.index);
            }
            (EntityType::Global(t), Extern::Global(g)) => {
                opaque.check(g.store_id, "imported global")?;
                // Mutable globals are invariant; immutable ones may be of a
                // subtype (`(ref $t)` where `(ref null $t)` or `funcref` is
                // asked for).
                let want = module.inner.canon_global(t);
                let have = opaque.globals[g.index].ty;
                let ok = have.mutable == want.mutable
                    && if want.mutable {
                        have.ty == want.ty
                    } else {
                        have.ty.matches(want.ty)
                    };
                if !ok {
                    return Err(incompatible());
                }
                globals.push(g.index);
            }
            (EntityType::Tag(t), Extern::Tag(tag)) => {
                opaque.check(tag.store_id, "imported tag")?;
                // Tag types match exactly (they are function types with no
                // results, compared by structure).
                if Some(opaque.tags[tag.index].type_id)
                    != module.inner.type_ids.get(t as usize).copied()
                {
                    return Err(incompatible());
                }
                tags.push(tag.index);
            }
            _ => return Err(incompatible()),
        }
    }

    // The vmctx, and a function entry for every defined function (their
    // VMFuncRefs live in the vmctx, so `ref.func` works in initialisers).
    let slot = match &opaque.engine.inner.pool {
        Some(pool) => Some(pool.instance_slot()?),
        None => None,
    };
    let mut vmctx = VmctxBlock::new(offsets.vmctx_size() as usize);
    let vmctx_ptr = vmctx.ptr();
    let compiled = &module.inner.compiled;
    // One growth each instead of doubling step by step (a fresh store, as
    // an instance pool's reset makes, starts empty).
    opaque.funcs.reserve(m.bodies.len());
    opaque.funcref_index.reserve(m.bodies.len());
    for (i, body) in m.bodies.iter().enumerate() {
        let def = i as u32;
        let funcref_offset = offsets.func_ref(def);
        vmctx.write(
            funcref_offset,
            VMFuncRef {
                wasm_call: compiled.wasm_call(def),
                array_call: compiled.array_call(def),
                vmctx: vmctx_ptr,
                type_id: module.inner.type_ids[body.type_index as usize],
                _pad: 0,
            },
        );
        let funcref = (vmctx_ptr as usize + funcref_offset as usize) as *const VMFuncRef;
        opaque.funcs.push(FuncData {
            ty: module.inner.func_types[body.type_index as usize].clone(),
            funcref,
            kind: FuncKind::Wasm,
            typed_entry: std::cell::Cell::new(crate::func::TYPED_ENTRY_UNKNOWN),
        });
        let index = opaque.funcs.len() - 1;
        opaque.funcref_index.insert(funcref as usize, index);
        funcs.push(index);
    }

    // Defined tags: new identities, one per instantiation.
    for &t in &m.tags[m.num_imported_tags as usize..] {
        let ty = crate::TagType::from_func_type((*module.inner.func_types[t as usize]).clone());
        let tag = opaque.push_tag(ty, module.inner.type_ids[t as usize]);
        tags.push(tag.index);
    }

    // Defined memories, tables and globals, in order.
    // Images may be laid down as memories are created (a pooled slot may
    // already hold the image) unless an element segment could expose a
    // memory of a failed instantiation: only through an imported table.
    let early_images = module.inner.images().filter(|_| m.num_imported_tables == 0);
    let mut image_applied = Vec::new();
    for (d, ty) in m.memories[m.num_imported_memories as usize..]
        .iter()
        .enumerate()
    {
        let image = early_images.and_then(|i| i[d].as_ref());
        let (data, applied) = MemoryData::for_instance(&opaque.engine, ty, image)?;
        image_applied.push(applied);
        opaque.memories.push(data);
        memories.push(opaque.memories.len() - 1);
    }
    for def in &m.global_defs {
        let raw = eval_const(opaque, &globals, &funcs, &def.init)?;
        globals.push(opaque.push_global(module.inner.canon_global(def.ty), raw));
    }
    for def in &m.table_defs {
        let init = match &def.init {
            Some(e) => eval_const(opaque, &globals, &funcs, e)? as usize,
            None => 0,
        };
        opaque.tables.push(TableData::for_instance(
            &opaque.engine,
            module.inner.canon_table(def.ty),
            init,
        )?);
        tables.push(opaque.tables.len() - 1);
    }

    // Element segments: evaluate every item now (the spec does so at
    // instantiation); passive ones stay available to `table.init`.
    let mut elems = Vec::with_capacity(m.elements.len());
    for seg in &m.elements {
        let items: Vec<usize> = match &seg.items {
            ElementItems2::Functions(fs) => fs
                .iter()
                .map(|&f| opaque.funcs[funcs[f as usize]].funcref as usize)
                .collect(),
            ElementItems2::Expressions(es) => es
                .iter()
                .map(|e| eval_const(opaque, &globals, &funcs, e).map(|r| r as usize))
                .collect::<Result<_>>()?,
        };
        elems.push(Some(items));
    }

    // Fill in the vmctx.
    vmctx.write(offsets.store_ctx(), Arc::as_ptr(&opaque.vmstore) as *mut u8);
    vmctx.write(offsets.builtins(), crate::builtins::table());
    for (i, &f) in funcs.iter().take(m.num_imported_funcs as usize).enumerate() {
        vmctx.write(offsets.imported_func(i as u32), opaque.funcs[f].funcref);
    }
    for (i, &mem) in memories.iter().enumerate() {
        vmctx.write(offsets.memory(i as u32), opaque.memories[mem].definition());
    }
    for (i, &t) in tables.iter().enumerate() {
        vmctx.write(offsets.table(i as u32), opaque.tables[t].definition());
    }
    for (i, &g) in globals.iter().enumerate() {
        vmctx.write(offsets.global(i as u32), opaque.globals[g].ptr());
    }
    for (i, &t) in tags.iter().enumerate() {
        vmctx.write(offsets.tag(i as u32), opaque.tag_ptr(t));
    }
    for (i, &id) in module.inner.type_ids.iter().enumerate() {
        vmctx.write(offsets.type_ids(i as u32), id);
    }
    let index = opaque.instances.len();
    let mut data = Box::new(InstanceData {
        module: module.clone(),
        vmctx,
        store: opaque.self_ptr,
        index,
        funcs,
        memories,
        tables,
        globals,
        tags,
        elems,
        data_dropped: vec![false; m.data.len()],
        _slot: slot,
    });
    let data_ptr = &mut *data as *mut InstanceData;
    data.vmctx.write(offsets.runtime(), data_ptr);
    opaque.instances.push(data);

    // Active element segments, then active data segments, in order; the
    // first out-of-bounds one traps, and what was written before stays.
    for (i, seg) in m.elements.iter().enumerate() {
        match &seg.mode {
            SegmentMode::Active {
                index: table,
                offset,
            } => {
                let inst = &opaque.instances[index];
                let dst = eval_const(opaque, &inst.globals, &inst.funcs, offset)? as u32;
                let len = seg.len() as u64;
                table_init(opaque, index, *table, i as u32, u64::from(dst), 0, len)
                    .map_err(trap)?;
                opaque.instances[index].elems[i] = None;
            }
            SegmentMode::Declared => opaque.instances[index].elems[i] = None,
            SegmentMode::Passive => {}
        }
    }
    if let Some(images) = module.inner.images() {
        // Every active segment fits (see `ModuleInner::images`): lay them
        // all down at once.
        let imported = m.num_imported_memories as usize;
        for (d, image) in images.iter().enumerate() {
            if let Some(image) = image.as_ref().filter(|_| !image_applied[d]) {
                let mem_index = opaque.instances[index].memories[imported + d];
                opaque.memories[mem_index].apply_image(image)?;
            }
        }
        for (i, seg) in m.data.iter().enumerate() {
            if let SegmentMode::Active { .. } = seg.mode {
                opaque.instances[index].data_dropped[i] = true;
            }
        }
        return Ok(Instance {
            store_id: opaque.id,
            index,
        });
    }
    for (i, seg) in m.data.iter().enumerate() {
        if let SegmentMode::Active { index: mem, offset } = &seg.mode {
            let inst = &opaque.instances[index];
            let off = eval_const(opaque, &inst.globals, &inst.funcs, offset)?;
            let mem_index = opaque.instances[index].memories[*mem as usize];
            let off = if opaque.memories[mem_index].is_64() {
                off as u64
            } else {
                u64::from(off as u32)
            };
            let len = seg.data.len() as u64;
            memory_init(opaque, index, *mem, i as u32, off, 0, len).map_err(trap)?;
            opaque.instances[index].data_dropped[i] = true;
        }
    }
    Ok(Instance {
        store_id: opaque.id,
        index,
    })
}

/// `table.init`: copies `len` items of element segment `elem` from `src` to
/// `dst` in table `table` of instance `inst`.
pub(crate) fn table_init(
    opaque: &mut StoreOpaque,
    inst: usize,
    table: u32,
    elem: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> std::result::Result<(), TrapKind> {
    let i = &opaque.instances[inst];
    let t = *i
        .tables
        .get(table as usize)
        .ok_or(TrapKind::TableOutOfBounds)?;
    let items: &[usize] = match i.elems.get(elem as usize) {
        Some(Some(v)) => v,
        Some(None) => &[],
        None => return Err(TrapKind::TableOutOfBounds),
    };
    let end = src.checked_add(len).ok_or(TrapKind::TableOutOfBounds)?;
    if end > items.len() as u64 {
        return Err(TrapKind::TableOutOfBounds);
    }
    let items = items[src as usize..end as usize].to_vec();
    if opaque.tables[t].write(dst, &items) {
        Ok(())
    } else {
        Err(TrapKind::TableOutOfBounds)
    }
}

/// `memory.init`: copies `len` bytes of data segment `data` from `src` to
/// `dst` in memory `mem` of instance `inst`.
pub(crate) fn memory_init(
    opaque: &mut StoreOpaque,
    inst: usize,
    mem: u32,
    data: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> std::result::Result<(), TrapKind> {
    let i = &opaque.instances[inst];
    let module = i.module.clone();
    let m = *i
        .memories
        .get(mem as usize)
        .ok_or(TrapKind::MemoryOutOfBounds)?;
    let bytes: &[u8] = match i.data_dropped.get(data as usize) {
        Some(false) => module.inner.decoded.data_bytes(data),
        Some(true) => &[],
        None => return Err(TrapKind::MemoryOutOfBounds),
    };
    let end = src.checked_add(len).ok_or(TrapKind::MemoryOutOfBounds)?;
    if end > bytes.len() as u64 {
        return Err(TrapKind::MemoryOutOfBounds);
    }
    opaque.memories[m]
        .write_at(dst, &bytes[src as usize..end as usize])
        .map_err(|_| TrapKind::MemoryOutOfBounds)
}

/// Evaluates a constant expression; `globals` maps global indices to store
/// globals (only those defined so far may be read, as validation ensures).
fn eval_const(
    opaque: &StoreOpaque,
    globals: &[usize],
    funcs: &[usize],
    e: &ConstExpr,
) -> Result<u128> {
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
            ConstOp::RefFunc(f) => {
                let f = *funcs.get(f as usize).ok_or_else(bad)?;
                opaque.funcs[f].funcref as usize as u128
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

// The structures compiled code reads must be laid out exactly as the JIT's
// contract (`weft_jit::VMOffsets`, crates/jit/CONTRACT.md) says.
const _: () = {
    use std::mem::{offset_of, size_of};
    use weft_jit::VMOffsets as O;

    use crate::func::VMFuncRef;
    use crate::table::VMTableDefinition;

    assert!(offset_of!(VMFuncRef, wasm_call) == O::FUNC_REF_WASM_CALL as usize);
    assert!(offset_of!(VMFuncRef, array_call) == O::FUNC_REF_ARRAY_CALL as usize);
    assert!(offset_of!(VMFuncRef, vmctx) == O::FUNC_REF_VMCTX as usize);
    assert!(offset_of!(VMFuncRef, type_id) == O::FUNC_REF_TYPE_ID as usize);
    assert!(size_of::<VMFuncRef>() == O::FUNC_REF_SIZE as usize);
    assert!(offset_of!(VMTableDefinition, base) == O::TABLE_BASE as usize);
    assert!(offset_of!(VMTableDefinition, current_elements) == O::TABLE_CURRENT_ELEMENTS as usize);
    assert!(size_of::<VMTableDefinition>() == O::TABLE_DEFINITION_SIZE as usize);
    assert!(weft_memory::MemoryDefinition::BASE_OFFSET == O::MEMORY_BASE as usize);
    assert!(
        weft_memory::MemoryDefinition::CURRENT_LENGTH_OFFSET == O::MEMORY_CURRENT_LENGTH as usize
    );
    assert!(weft_memory::MemoryDefinition::MARKS_OFFSET == O::MEMORY_MARKS as usize);
    assert!(size_of::<weft_memory::MemoryDefinition>() == O::MEMORY_DEFINITION_SIZE as usize);
    assert!(size_of::<crate::global::VMGlobalCell>() == O::GLOBAL_SIZE as usize);
};
