//! Generated modules for the decoder's property tests: a proptest strategy
//! for a module description ([`Spec`]), its encoding with `wasm-encoder`, and
//! what the decoder must report for it.
//!
//! Generation happens in two steps: [`raw`] draws independent random choices,
//! and [`Spec::from_raw`] resolves them into a module that is valid under
//! WebAssembly 2.0 + threads (indices are taken modulo what exists, a shared
//! memory always gets a maximum, at most one memory, ...).

use std::borrow::Cow;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use wasm_encoder as enc;
use weft_decoder::{
    ConstExpr, ConstOp, DataSegment, ElementItems2, ElementSegment, EntityType, Export,
    ExternIndex, FuncType, GlobalDef, GlobalType, Import, Limits, MemoryType, Module, SegmentMode,
    TableType, ValType,
};

/// The value types of WebAssembly 2.0, indexed by a random byte.
pub const VALTYPES: [ValType; 7] = [
    ValType::I32,
    ValType::I64,
    ValType::F32,
    ValType::F64,
    ValType::V128,
    ValType::FUNCREF,
    ValType::EXTERNREF,
];

fn vt(i: u8) -> ValType {
    VALTYPES[i as usize % VALTYPES.len()]
}

fn enc_vt(t: ValType) -> enc::ValType {
    match t {
        ValType::I32 => enc::ValType::I32,
        ValType::I64 => enc::ValType::I64,
        ValType::F32 => enc::ValType::F32,
        ValType::F64 => enc::ValType::F64,
        ValType::V128 => enc::ValType::V128,
        ValType::Ref(_) => enc::ValType::Ref(enc_ref(t)),
    }
}

fn enc_ref(t: ValType) -> enc::RefType {
    match t {
        ValType::FUNCREF => enc::RefType::FUNCREF,
        ValType::EXTERNREF => enc::RefType::EXTERNREF,
        other => panic!("{other} is not a reference type"),
    }
}

fn heap(t: ValType) -> enc::HeapType {
    match t {
        ValType::FUNCREF => enc::HeapType::FUNC,
        ValType::EXTERNREF => enc::HeapType::EXTERN,
        other => panic!("{other} is not a reference type"),
    }
}

/// Kind, index selector, minimum, maximum - minimum, flag (externref table,
/// shared memory, mutable global).
type RawImport = (u8, u32, u32, Option<u32>, bool);
/// Type selector, a run of locals (count, type), number of `nop`s.
type RawFunc = (u32, Option<(u32, u8)>, u8);
/// Type, mutable, value bits, initialiser kind, selector.
type RawGlobal = (u8, bool, u64, u8, u32);
/// Mode, selector, as function indices, item selectors, offset, explicit
/// table index.
type RawElem = (u8, u32, bool, Vec<u32>, u32, bool);

/// Independent random choices; see [`Spec::from_raw`] for their meaning.
#[derive(Debug, Clone)]
pub struct Raw {
    types: Vec<(Vec<u8>, Vec<u8>)>,
    imports: Vec<RawImport>,
    funcs: Vec<RawFunc>,
    tables: Vec<(bool, u32, Option<u32>)>,
    memory: Option<(u32, Option<u32>, bool)>,
    globals: Vec<RawGlobal>,
    exports: Vec<(u8, u32)>,
    start: bool,
    elements: Vec<RawElem>,
    data: Vec<(bool, Vec<u8>, u32)>,
    data_count: bool,
    names: Option<(bool, Vec<u32>)>,
}

/// The strategy for [`Raw`].
pub fn raw() -> impl Strategy<Value = Raw> {
    let a = (
        vec((vec(any::<u8>(), 0..3), vec(any::<u8>(), 0..3)), 1..5),
        vec(
            (
                0u8..4,
                any::<u32>(),
                0u32..4,
                option::of(0u32..4),
                any::<bool>(),
            ),
            0..5,
        ),
        vec(
            (any::<u32>(), option::of((1u32..4, any::<u8>())), 0u8..3),
            0..6,
        ),
        vec((any::<bool>(), 0u32..5, option::of(0u32..5)), 0..3),
        option::of((0u32..3, option::of(0u32..3), any::<bool>())),
        vec(
            (
                any::<u8>(),
                any::<bool>(),
                any::<u64>(),
                0u8..4,
                any::<u32>(),
            ),
            0..5,
        ),
    );
    let b = (
        vec((0u8..4, any::<u32>()), 0..6),
        any::<bool>(),
        vec(
            (
                0u8..3,
                any::<u32>(),
                any::<bool>(),
                vec(any::<u32>(), 0..4),
                0u32..8,
                any::<bool>(),
            ),
            0..4,
        ),
        vec((any::<bool>(), vec(any::<u8>(), 0..8), 0u32..64), 0..3),
        any::<bool>(),
        option::of((any::<bool>(), vec(any::<u32>(), 0..4))),
    );
    (a, b).prop_map(
        |(
            (types, imports, funcs, tables, memory, globals),
            (exports, start, elements, data, data_count, names),
        )| Raw {
            types,
            imports,
            funcs,
            tables,
            memory,
            globals,
            exports,
            start,
            elements,
            data,
            data_count,
            names,
        },
    )
}

/// A constant initialiser.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// A constant of the global's type (raw bits for floats and vectors).
    Const(ValType, u128),
    /// `ref.null`.
    Null(ValType),
    /// `ref.func`.
    RefFunc(u32),
    /// `global.get` of an imported global.
    GlobalGet(u32),
}

impl Init {
    fn encode(self) -> enc::ConstExpr {
        match self {
            Init::Const(t, bits) => match t {
                ValType::I32 => enc::ConstExpr::i32_const(bits as u32 as i32),
                ValType::I64 => enc::ConstExpr::i64_const(bits as u64 as i64),
                ValType::F32 => enc::ConstExpr::f32_const(enc::Ieee32::new(bits as u32)),
                ValType::F64 => enc::ConstExpr::f64_const(enc::Ieee64::new(bits as u64)),
                ValType::V128 => enc::ConstExpr::v128_const(bits as i128),
                r => enc::ConstExpr::ref_null(heap(r)),
            },
            Init::Null(t) => enc::ConstExpr::ref_null(heap(t)),
            Init::RefFunc(f) => enc::ConstExpr::ref_func(f),
            Init::GlobalGet(g) => enc::ConstExpr::global_get(g),
        }
    }

    /// What the decoder reports.
    fn expected(self) -> ConstExpr {
        let op = match self {
            Init::Const(t, bits) => match t {
                ValType::I32 => ConstOp::I32Const(bits as u32 as i32),
                ValType::I64 => ConstOp::I64Const(bits as u64 as i64),
                ValType::F32 => ConstOp::F32Const(bits as u32),
                ValType::F64 => ConstOp::F64Const(bits as u64),
                ValType::V128 => ConstOp::V128Const(bits),
                r => ConstOp::RefNull(r),
            },
            Init::Null(t) => ConstOp::RefNull(t),
            Init::RefFunc(f) => ConstOp::RefFunc(f),
            Init::GlobalGet(g) => ConstOp::GlobalGet(g),
        };
        ConstExpr { ops: vec![op] }
    }
}

/// The items of an element segment.
#[derive(Debug, Clone)]
pub enum Items {
    /// Function indices (funcref).
    Funcs(Vec<u32>),
    /// Expressions of the given reference type.
    Exprs(ValType, Vec<Init>),
}

/// An element segment's mode.
#[derive(Debug, Clone, Copy)]
pub enum ElemMode {
    /// Into table `table` at `offset`; `explicit` forces the encoding with a
    /// table index even for table 0.
    Active {
        table: u32,
        offset: i32,
        explicit: bool,
    },
    /// Passive.
    Passive,
    /// Declared.
    Declared,
}

/// A function body: declared locals, and a constant pushed per result.
#[derive(Debug, Clone)]
pub struct Body {
    locals: Vec<(u32, ValType)>,
    nops: u8,
}

/// A valid module, as generated.
#[derive(Debug, Clone)]
pub struct Spec {
    pub types: Vec<FuncType>,
    pub imports: Vec<Import>,
    pub funcs: Vec<u32>,
    pub bodies: Vec<Body>,
    pub tables: Vec<TableType>,
    pub memory: Option<MemoryType>,
    pub globals: Vec<(GlobalType, Init)>,
    pub exports: Vec<Export>,
    pub start: Option<u32>,
    pub elements: Vec<(ElemMode, Items)>,
    pub data: Vec<(Option<i32>, Vec<u8>)>,
    pub data_count: bool,
    pub module_name: Option<String>,
    pub func_names: Vec<(u32, String)>,
}

impl Spec {
    /// Resolves random choices into a valid module.
    pub fn from_raw(r: &Raw) -> Spec {
        let types: Vec<FuncType> = r
            .types
            .iter()
            .map(|(p, res)| FuncType::new(p.iter().map(|&b| vt(b)), res.iter().map(|&b| vt(b))))
            .collect();
        let ntypes = types.len() as u32;
        let mut s = Spec {
            types,
            imports: Vec::new(),
            funcs: Vec::new(),
            bodies: Vec::new(),
            tables: Vec::new(),
            memory: None,
            globals: Vec::new(),
            exports: Vec::new(),
            start: None,
            elements: Vec::new(),
            data: Vec::new(),
            data_count: r.data_count,
            module_name: None,
            func_names: Vec::new(),
        };

        // Imports, in order; they come first in every index space.
        let mut imported_funcs = Vec::new();
        let mut imported_tables = Vec::new();
        let mut imported_memory = None;
        let mut imported_globals = Vec::new();
        for (i, &(kind, sel, min, delta, flag)) in r.imports.iter().enumerate() {
            let max = delta.map(|d| u64::from(min + d));
            let ty = match kind {
                0 => {
                    imported_funcs.push(sel % ntypes);
                    EntityType::Func(sel % ntypes)
                }
                1 => {
                    let t = TableType {
                        element: if flag {
                            ValType::EXTERNREF
                        } else {
                            ValType::FUNCREF
                        },
                        limits: Limits {
                            min: min.into(),
                            max,
                        },
                        table64: false,
                    };
                    imported_tables.push(t);
                    EntityType::Table(t)
                }
                2 if imported_memory.is_none() => {
                    let m = memory_type(min, delta, flag);
                    imported_memory = Some(m);
                    EntityType::Memory(m)
                }
                _ => {
                    let g = GlobalType {
                        ty: vt(sel as u8),
                        mutable: flag,
                    };
                    imported_globals.push(g);
                    EntityType::Global(g)
                }
            };
            s.imports.push(Import {
                module: format!("m{}", i % 2),
                name: format!("i{i}"),
                ty,
            });
        }

        // Functions, index space = imported ++ defined.
        s.funcs = imported_funcs.clone();
        for &(sel, local, nops) in &r.funcs {
            s.funcs.push(sel % ntypes);
            s.bodies.push(Body {
                locals: local.map(|(n, t)| vec![(n, vt(t))]).unwrap_or_default(),
                nops,
            });
        }
        let nfuncs = s.funcs.len() as u32;

        s.tables = imported_tables.clone();
        for &(ext, min, delta) in &r.tables {
            s.tables.push(TableType {
                element: if ext {
                    ValType::EXTERNREF
                } else {
                    ValType::FUNCREF
                },
                limits: Limits {
                    min: min.into(),
                    max: delta.map(|d| u64::from(min + d)),
                },
                table64: false,
            });
        }
        if imported_memory.is_none() {
            s.memory = r
                .memory
                .map(|(min, delta, shared)| memory_type(min, delta, shared));
        }
        let has_memory = imported_memory.is_some() || s.memory.is_some();

        // Globals: initialisers may read imported immutable globals of the
        // same type and take references to any function.
        for &(t, mutable, bits, how, sel) in &r.globals {
            let ty = vt(t);
            let readable: Vec<u32> = imported_globals
                .iter()
                .enumerate()
                .filter(|(_, g)| g.ty == ty && !g.mutable)
                .map(|(i, _)| i as u32)
                .collect();
            let init = match how {
                1 if ty.is_ref() => Init::Null(ty),
                2 if ty == ValType::FUNCREF && nfuncs > 0 => Init::RefFunc(sel % nfuncs),
                3 if !readable.is_empty() => {
                    Init::GlobalGet(readable[sel as usize % readable.len()])
                }
                _ => Init::Const(ty, u128::from(bits) | (u128::from(bits) << 64)),
            };
            s.globals.push((GlobalType { ty, mutable }, init));
        }
        let nglobals = (imported_globals.len() + s.globals.len()) as u32;

        for (i, &(kind, sel)) in r.exports.iter().enumerate() {
            let count = match kind {
                0 => nfuncs,
                1 => s.tables.len() as u32,
                2 => u32::from(has_memory),
                _ => nglobals,
            };
            if count == 0 {
                continue;
            }
            let index = sel % count;
            s.exports.push(Export {
                name: format!("e{i}"),
                index: match kind {
                    0 => ExternIndex::Func(index),
                    1 => ExternIndex::Table(index),
                    2 => ExternIndex::Memory(index),
                    _ => ExternIndex::Global(index),
                },
            });
        }

        if r.start {
            s.start = (0..nfuncs).find(|&f| {
                let t = &s.types[s.funcs[f as usize] as usize];
                t.params.is_empty() && t.results.is_empty()
            });
        }

        for &(mode, sel, funcs_form, ref items, offset, explicit) in &r.elements {
            let mut mode = match mode {
                0 if !s.tables.is_empty() => ElemMode::Active {
                    table: sel % s.tables.len() as u32,
                    offset: offset as i32,
                    explicit,
                },
                0 | 1 => ElemMode::Passive,
                _ => ElemMode::Declared,
            };
            // The element type: the table's for active segments.
            let ty = match mode {
                ElemMode::Active { table, .. } => s.tables[table as usize].element,
                ElemMode::Declared => ValType::FUNCREF,
                ElemMode::Passive if sel % 2 == 1 => ValType::EXTERNREF,
                ElemMode::Passive => ValType::FUNCREF,
            };
            let items = if ty == ValType::FUNCREF && funcs_form && nfuncs > 0 {
                Items::Funcs(items.iter().map(|x| x % nfuncs).collect())
            } else {
                Items::Exprs(
                    ty,
                    items
                        .iter()
                        .map(|&x| {
                            if ty == ValType::FUNCREF && nfuncs > 0 && x % 3 != 0 {
                                Init::RefFunc(x % nfuncs)
                            } else {
                                Init::Null(ty)
                            }
                        })
                        .collect(),
                )
            };
            // Without an explicit index, the encoding means table 0.
            if let ElemMode::Active {
                table, explicit, ..
            } = &mut mode
                && *table != 0
            {
                *explicit = true;
            }
            s.elements.push((mode, items));
        }

        for (active, bytes, offset) in &r.data {
            let offset = (*active && has_memory).then_some(*offset as i32);
            s.data.push((offset, bytes.clone()));
        }

        if let Some((with_module_name, funcs)) = &r.names {
            if *with_module_name {
                s.module_name = Some("generated".into());
            }
            if nfuncs > 0 {
                let mut names: Vec<u32> = funcs.iter().map(|f| f % nfuncs).collect();
                names.sort_unstable();
                names.dedup();
                s.func_names = names.into_iter().map(|f| (f, format!("f{f}"))).collect();
            }
        }
        s
    }

    /// Encodes the module with wasm-encoder.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = enc::Module::new();

        let mut types = enc::TypeSection::new();
        for t in &self.types {
            types.ty().function(
                t.params.iter().map(|&v| enc_vt(v)),
                t.results.iter().map(|&v| enc_vt(v)),
            );
        }
        m.section(&types);

        if !self.imports.is_empty() {
            let mut imports = enc::ImportSection::new();
            for i in &self.imports {
                let ty: enc::EntityType = match i.ty {
                    EntityType::Func(t) => enc::EntityType::Function(t),
                    EntityType::Table(t) => enc::EntityType::Table(enc_table(&t)),
                    EntityType::Memory(m) => enc::EntityType::Memory(enc_memory(&m)),
                    EntityType::Global(g) => enc::EntityType::Global(enc::GlobalType {
                        val_type: enc_vt(g.ty),
                        mutable: g.mutable,
                        shared: false,
                    }),
                    EntityType::Tag(t) => enc::EntityType::Tag(enc::TagType {
                        kind: enc::TagKind::Exception,
                        func_type_idx: t,
                    }),
                };
                imports.import(&i.module, &i.name, ty);
            }
            m.section(&imports);
        }

        let imported_funcs = self.funcs.len() - self.bodies.len();
        if !self.bodies.is_empty() {
            let mut funcs = enc::FunctionSection::new();
            for &t in &self.funcs[imported_funcs..] {
                funcs.function(t);
            }
            m.section(&funcs);
        }

        let defined_tables = &self.tables[self.imported_tables()..];
        if !defined_tables.is_empty() {
            let mut tables = enc::TableSection::new();
            for t in defined_tables {
                tables.table(enc_table(t));
            }
            m.section(&tables);
        }

        if let Some(mem) = &self.memory {
            let mut memories = enc::MemorySection::new();
            memories.memory(enc_memory(mem));
            m.section(&memories);
        }

        if !self.globals.is_empty() {
            let mut globals = enc::GlobalSection::new();
            for (g, init) in &self.globals {
                globals.global(
                    enc::GlobalType {
                        val_type: enc_vt(g.ty),
                        mutable: g.mutable,
                        shared: false,
                    },
                    &init.encode(),
                );
            }
            m.section(&globals);
        }

        if !self.exports.is_empty() {
            let mut exports = enc::ExportSection::new();
            for e in &self.exports {
                let (kind, index) = match e.index {
                    ExternIndex::Func(i) => (enc::ExportKind::Func, i),
                    ExternIndex::Table(i) => (enc::ExportKind::Table, i),
                    ExternIndex::Memory(i) => (enc::ExportKind::Memory, i),
                    ExternIndex::Global(i) => (enc::ExportKind::Global, i),
                    ExternIndex::Tag(i) => (enc::ExportKind::Tag, i),
                };
                exports.export(&e.name, kind, index);
            }
            m.section(&exports);
        }

        if let Some(f) = self.start {
            m.section(&enc::StartSection { function_index: f });
        }

        if !self.elements.is_empty() {
            let mut elements = enc::ElementSection::new();
            for (mode, items) in &self.elements {
                let exprs: Vec<enc::ConstExpr>;
                let items = match items {
                    Items::Funcs(f) => enc::Elements::Functions(Cow::Borrowed(f)),
                    Items::Exprs(t, e) => {
                        exprs = e.iter().map(|i| i.encode()).collect();
                        enc::Elements::Expressions(enc_ref(*t), Cow::Borrowed(&exprs))
                    }
                };
                match *mode {
                    ElemMode::Active {
                        table,
                        offset,
                        explicit,
                    } => {
                        let table = explicit.then_some(table);
                        elements.active(table, &enc::ConstExpr::i32_const(offset), items);
                    }
                    ElemMode::Passive => {
                        elements.passive(items);
                    }
                    ElemMode::Declared => {
                        elements.declared(items);
                    }
                }
            }
            m.section(&elements);
        }

        if self.data_count {
            m.section(&enc::DataCountSection {
                count: self.data.len() as u32,
            });
        }

        if !self.bodies.is_empty() {
            let mut code = enc::CodeSection::new();
            for (i, b) in self.bodies.iter().enumerate() {
                let ty = &self.types[self.funcs[imported_funcs + i] as usize];
                let mut f = enc::Function::new(b.locals.iter().map(|&(n, t)| (n, enc_vt(t))));
                let mut sink = f.instructions();
                for _ in 0..b.nops {
                    sink.nop();
                }
                for &r in ty.results.iter() {
                    match r {
                        ValType::I32 => sink.i32_const(7),
                        ValType::I64 => sink.i64_const(-7),
                        ValType::F32 => sink.f32_const(enc::Ieee32::new(0)),
                        ValType::F64 => sink.f64_const(enc::Ieee64::new(0)),
                        ValType::V128 => sink.v128_const(0),
                        r => sink.ref_null(heap(r)),
                    };
                }
                sink.end();
                code.function(&f);
            }
            m.section(&code);
        }

        if !self.data.is_empty() {
            let mut data = enc::DataSection::new();
            for (offset, bytes) in &self.data {
                match offset {
                    Some(o) => {
                        data.active(0, &enc::ConstExpr::i32_const(*o), bytes.iter().copied())
                    }
                    None => data.passive(bytes.iter().copied()),
                };
            }
            m.section(&data);
        }

        if self.module_name.is_some() || !self.func_names.is_empty() {
            let mut names = enc::NameSection::new();
            if let Some(n) = &self.module_name {
                names.module(n);
            }
            if !self.func_names.is_empty() {
                let mut map = enc::NameMap::new();
                for (f, n) in &self.func_names {
                    map.append(*f, n);
                }
                names.functions(&map);
            }
            m.section(&names);
        }

        m.finish()
    }

    fn imported_tables(&self) -> usize {
        self.imports
            .iter()
            .filter(|i| matches!(i.ty, EntityType::Table(_)))
            .count()
    }

    fn imported_globals(&self) -> Vec<GlobalType> {
        self.imports
            .iter()
            .filter_map(|i| match i.ty {
                EntityType::Global(g) => Some(g),
                _ => None,
            })
            .collect()
    }

    /// Every index space and section of `m` as the generator built them.
    /// Returns a description of the first difference.
    pub fn check(&self, m: &Module) -> Result<(), String> {
        fn eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
            if got == want {
                Ok(())
            } else {
                Err(format!("{what}: decoded {got:?}, encoded {want:?}"))
            }
        }
        eq("types", &m.types, &self.types)?;
        eq("imports", &m.imports, &self.imports)?;
        eq("functions", &m.functions, &self.funcs)?;
        let imported_funcs = (self.funcs.len() - self.bodies.len()) as u32;
        eq("imported functions", m.num_imported_funcs, imported_funcs)?;
        eq("tables", &m.tables, &self.tables)?;
        eq(
            "imported tables",
            m.num_imported_tables as usize,
            self.imported_tables(),
        )?;
        let defs: Vec<TableType> = m.table_defs.iter().map(|d| d.ty).collect();
        eq(
            "defined tables",
            &defs[..],
            &self.tables[self.imported_tables()..],
        )?;
        eq(
            "table initialisers",
            m.table_defs.iter().all(|d| d.init.is_none()),
            true,
        )?;
        let memories: Vec<MemoryType> = self
            .imports
            .iter()
            .filter_map(|i| match i.ty {
                EntityType::Memory(t) => Some(t),
                _ => None,
            })
            .chain(self.memory)
            .collect();
        eq("memories", &m.memories, &memories)?;
        let mut globals = self.imported_globals();
        eq(
            "imported globals",
            m.num_imported_globals as usize,
            globals.len(),
        )?;
        globals.extend(self.globals.iter().map(|g| g.0));
        eq("globals", &m.globals, &globals)?;
        let defs: Vec<GlobalDef> = self
            .globals
            .iter()
            .map(|(ty, init)| GlobalDef {
                ty: *ty,
                init: init.expected(),
            })
            .collect();
        eq("global definitions", &m.global_defs, &defs)?;
        eq("exports", &m.exports, &self.exports)?;
        eq("start", m.start, self.start)?;

        let elements: Vec<ElementSegment> = self
            .elements
            .iter()
            .map(|(mode, items)| {
                let mode = match *mode {
                    ElemMode::Active { table, offset, .. } => SegmentMode::Active {
                        index: table,
                        offset: ConstExpr {
                            ops: vec![ConstOp::I32Const(offset)],
                        },
                    },
                    ElemMode::Passive => SegmentMode::Passive,
                    ElemMode::Declared => SegmentMode::Declared,
                };
                let (ty, items) = match items {
                    Items::Funcs(f) => (ValType::FUNCREF, ElementItems2::Functions(f.clone())),
                    Items::Exprs(t, e) => (
                        *t,
                        ElementItems2::Expressions(e.iter().map(|i| i.expected()).collect()),
                    ),
                };
                ElementSegment { ty, mode, items }
            })
            .collect();
        eq("elements", &m.elements, &elements)?;

        eq("data segments", m.data.len(), self.data.len())?;
        for (i, (offset, bytes)) in self.data.iter().enumerate() {
            let DataSegment { mode, .. } = &m.data[i];
            let want = match offset {
                Some(o) => SegmentMode::Active {
                    index: 0,
                    offset: ConstExpr {
                        ops: vec![ConstOp::I32Const(*o)],
                    },
                },
                None => SegmentMode::Passive,
            };
            eq(&format!("data {i} mode"), mode, &want)?;
            eq(
                &format!("data {i} bytes"),
                m.data_bytes(i as u32),
                &bytes[..],
            )?;
        }
        eq(
            "data count",
            m.data_count,
            self.data_count.then_some(self.data.len() as u32),
        )?;

        eq("bodies", m.bodies.len(), self.bodies.len())?;
        for (i, b) in self.bodies.iter().enumerate() {
            let body = &m.bodies[i];
            let f = imported_funcs + i as u32;
            eq(
                &format!("body {i} type"),
                body.type_index,
                self.funcs[f as usize],
            )?;
            eq(&format!("body {i} locals"), &body.locals, &b.locals)?;
            eq(
                &format!("body {i} lookup"),
                m.body(f).map(|x| x.range.clone()),
                Some(body.range.clone()),
            )?;
            // The instructions: the nops, one constant per result, `end`.
            let mut ops = m
                .body_reader(body)
                .get_operators_reader()
                .map_err(|e| e.to_string())?;
            let mut n = 0;
            while !ops.eof() {
                ops.read().map_err(|e| e.to_string())?;
                n += 1;
            }
            let results = self.types[body.type_index as usize].results.len();
            eq(
                &format!("body {i} instructions"),
                n,
                usize::from(b.nops) + results + 1,
            )?;
        }

        let mut referenced: Vec<u32> = Vec::new();
        for (_, init) in &self.globals {
            if let Init::RefFunc(f) = init {
                referenced.push(*f);
            }
        }
        for e in &self.exports {
            if let ExternIndex::Func(f) = e.index {
                referenced.push(f);
            }
        }
        for (_, items) in &self.elements {
            match items {
                Items::Funcs(f) => referenced.extend(f),
                Items::Exprs(_, e) => referenced.extend(e.iter().filter_map(|i| match i {
                    Init::RefFunc(f) => Some(*f),
                    _ => None,
                })),
            }
        }
        referenced.sort_unstable();
        referenced.dedup();
        eq("referenced functions", &m.referenced_functions, &referenced)?;

        eq("module name", &m.names.module, &self.module_name)?;
        eq(
            "function names",
            m.names.functions.len(),
            self.func_names.len(),
        )?;
        for (f, n) in &self.func_names {
            eq(&format!("name of {f}"), m.func_name(*f), Some(n.as_str()))?;
        }
        eq("bytes", &m.bytes[..], &self.encode()[..])?;
        Ok(())
    }
}

fn memory_type(min: u32, delta: Option<u32>, shared: bool) -> MemoryType {
    // A shared memory must have a maximum.
    let delta = if shared {
        Some(delta.unwrap_or(0))
    } else {
        delta
    };
    MemoryType {
        limits: Limits {
            min: min.into(),
            max: delta.map(|d| u64::from(min + d)),
        },
        shared,
        memory64: false,
        page_size_log2: 16,
    }
}

fn enc_table(t: &TableType) -> enc::TableType {
    enc::TableType {
        element_type: enc_ref(t.element),
        table64: false,
        minimum: t.limits.min,
        maximum: t.limits.max,
        shared: false,
    }
}

fn enc_memory(m: &MemoryType) -> enc::MemoryType {
    enc::MemoryType {
        minimum: m.limits.min,
        maximum: m.limits.max,
        memory64: false,
        shared: m.shared,
        page_size_log2: None,
    }
}
