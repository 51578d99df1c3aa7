//! The decoded module description and the single-pass decoder that builds it.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use wasmparser::{
    BinaryReader, DataKind, ElementItems, ElementKind, ExternalKind, FuncValidatorAllocations,
    KnownCustom, Name, Operator, Parser, Payload, TypeRef, Validator, WasmFeatures,
};

use crate::error::{DecodeError, Result};
use crate::types::*;

/// One instruction of a constant expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConstOp {
    /// `i32.const`
    I32Const(i32),
    /// `i64.const`
    I64Const(i64),
    /// `f32.const`, as raw bits.
    F32Const(u32),
    /// `f64.const`, as raw bits.
    F64Const(u64),
    /// `v128.const`, as raw bits.
    V128Const(u128),
    /// `ref.null` of the given reference type.
    RefNull(ValType),
    /// `ref.func`
    RefFunc(u32),
    /// `global.get` (of an imported or earlier global).
    GlobalGet(u32),
    /// `i32.add` (extended-const).
    I32Add,
    /// `i32.sub` (extended-const).
    I32Sub,
    /// `i32.mul` (extended-const).
    I32Mul,
    /// `i64.add` (extended-const).
    I64Add,
    /// `i64.sub` (extended-const).
    I64Sub,
    /// `i64.mul` (extended-const).
    I64Mul,
}

/// A validated constant expression: a short stack program producing one value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConstExpr {
    /// The instructions, in order, without the final `end`.
    pub ops: Vec<ConstOp>,
}

impl ConstExpr {
    /// If the expression is a single constant `i32`/`i64`, its value as `i64`.
    pub fn as_const_int(&self) -> Option<i64> {
        match self.ops.as_slice() {
            [ConstOp::I32Const(v)] => Some(i64::from(*v)),
            [ConstOp::I64Const(v)] => Some(*v),
            _ => None,
        }
    }
}

/// An import of the module.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// The module name.
    pub module: String,
    /// The field name.
    pub name: String,
    /// What is imported.
    pub ty: EntityType,
}

/// An export of the module.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The export name.
    pub name: String,
    /// What is exported.
    pub index: ExternIndex,
}

/// A defined global: its type and its initialiser.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalDef {
    /// The type.
    pub ty: GlobalType,
    /// The initial value.
    pub init: ConstExpr,
}

/// A defined table: its type and an optional initialiser for every element.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    /// The type.
    pub ty: TableType,
    /// The value of every element at instantiation (`None`: null).
    pub init: Option<ConstExpr>,
}

/// How an element or data segment is used.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentMode {
    /// Copied by `table.init`/`memory.init` on request.
    Passive,
    /// Copied into table/memory `index` at `offset` during instantiation.
    Active {
        /// Table or memory index.
        index: u32,
        /// Offset expression.
        offset: ConstExpr,
    },
    /// Only declares function references (element segments only).
    Declared,
}

/// The items of an element segment.
#[derive(Debug, Clone, PartialEq)]
pub enum ElementItems2 {
    /// Function indices.
    Functions(Vec<u32>),
    /// Constant expressions producing references.
    Expressions(Vec<ConstExpr>),
}

/// An element segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementSegment {
    /// The element type.
    pub ty: ValType,
    /// Mode.
    pub mode: SegmentMode,
    /// Items.
    pub items: ElementItems2,
}

impl ElementSegment {
    /// Number of items.
    pub fn len(&self) -> usize {
        match &self.items {
            ElementItems2::Functions(v) => v.len(),
            ElementItems2::Expressions(v) => v.len(),
        }
    }

    /// Whether the segment has no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A data segment.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSegment {
    /// Mode (never `Declared`).
    pub mode: SegmentMode,
    /// Byte range of the contents within [`Module::bytes`].
    pub data: Range<usize>,
}

/// A defined function body.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionBody {
    /// Index of the function's type in [`Module::types`].
    pub type_index: u32,
    /// Declared locals (beyond the parameters), run-length encoded.
    pub locals: Vec<(u32, ValType)>,
    /// Byte range of the whole body (locals and code) within [`Module::bytes`].
    pub range: Range<usize>,
    /// Byte range of the instructions within [`Module::bytes`].
    pub code: Range<usize>,
}

/// Names from the custom `name` section, when present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    /// The module's name.
    pub module: Option<String>,
    /// Function names by function index.
    pub functions: HashMap<u32, String>,
}

/// A decoded and validated WebAssembly module: immutable, cheap to share.
///
/// Index spaces follow the spec: imports come first in every index space.
#[derive(Debug, Clone)]
pub struct Module {
    /// The original bytes; body and data ranges index into them.
    pub bytes: Arc<[u8]>,
    /// The function types of the type section.
    pub types: Vec<FuncType>,
    /// Imports in order.
    pub imports: Vec<Import>,
    /// Type index of every function (imported first).
    pub functions: Vec<u32>,
    /// Every table type (imported first).
    pub tables: Vec<TableType>,
    /// Initialisers of the defined tables (after the imported ones).
    pub table_defs: Vec<TableDef>,
    /// Every memory type (imported first).
    pub memories: Vec<MemoryType>,
    /// Every global type (imported first).
    pub globals: Vec<GlobalType>,
    /// The defined globals with their initialisers.
    pub global_defs: Vec<GlobalDef>,
    /// Exports in order.
    pub exports: Vec<Export>,
    /// The start function.
    pub start: Option<u32>,
    /// Element segments.
    pub elements: Vec<ElementSegment>,
    /// Data segments.
    pub data: Vec<DataSegment>,
    /// The data count section's value, when present.
    pub data_count: Option<u32>,
    /// Bodies of the defined functions.
    pub bodies: Vec<FunctionBody>,
    /// Functions that may be referenced by `ref.func` (declared in segments,
    /// exports or global initialisers), sorted.
    pub referenced_functions: Vec<u32>,
    /// Names from the name section.
    pub names: Names,
    /// Every custom section in order: its name and the byte range of its
    /// contents in `bytes`.
    pub custom_sections: Vec<(String, std::ops::Range<usize>)>,
    /// Where the code section's contents start in `bytes` (DWARF addresses
    /// in wasm are relative to it).
    pub code_section_start: Option<usize>,
    /// The features this module was validated with.
    pub features: WasmFeatures,
    /// Number of imported functions.
    pub num_imported_funcs: u32,
    /// Number of imported tables.
    pub num_imported_tables: u32,
    /// Number of imported memories.
    pub num_imported_memories: u32,
    /// Number of imported globals.
    pub num_imported_globals: u32,
    /// Every tag (imported first): the index of its function type in
    /// [`Module::types`].
    pub tags: Vec<u32>,
    /// Number of imported tags.
    pub num_imported_tags: u32,
}

/// Which WebAssembly features a module may use.
///
/// The default is WebAssembly 2.0 plus threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features(pub WasmFeatures);

impl Default for Features {
    fn default() -> Self {
        Features(WasmFeatures::WASM2 | WasmFeatures::THREADS)
    }
}

impl Module {
    /// Decodes and validates `bytes` with the default features.
    ///
    /// ```
    /// let bytes = wat::parse_str("(module (func (export \"f\") (result i32) i32.const 7))").unwrap();
    /// let m = weft_decoder::Module::decode(&bytes).unwrap();
    /// assert_eq!(m.exports[0].name, "f");
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Module> {
        Self::decode_with(bytes, Features::default())
    }

    /// Decodes and validates `bytes` with the given features, in one pass.
    pub fn decode_with(bytes: &[u8], features: Features) -> Result<Module> {
        Decoder::new(bytes, features.0)
            .run()
            .map_err(|e| number_cut_by_section_end(bytes, e))
    }

    /// Type of function `index`.
    pub fn func_type(&self, index: u32) -> &FuncType {
        &self.types[self.functions[index as usize] as usize]
    }

    /// Whether function `index` is imported.
    pub fn is_imported_func(&self, index: u32) -> bool {
        index < self.num_imported_funcs
    }

    /// The body of defined function `index` (a function index, not a body index).
    pub fn body(&self, func_index: u32) -> Option<&FunctionBody> {
        func_index
            .checked_sub(self.num_imported_funcs)
            .and_then(|i| self.bodies.get(i as usize))
    }

    /// A reader for a defined function's body, to walk its locals and operators.
    pub fn body_reader(&self, body: &FunctionBody) -> wasmparser::FunctionBody<'_> {
        let reader = BinaryReader::new_features(
            &self.bytes[body.range.clone()],
            body.range.start as u64,
            self.features,
        );
        wasmparser::FunctionBody::new(reader)
    }

    /// The bytes of data segment `index`.
    pub fn data_bytes(&self, index: u32) -> &[u8] {
        &self.bytes[self.data[index as usize].data.clone()]
    }

    /// The export with the given name.
    pub fn export(&self, name: &str) -> Option<&Export> {
        self.exports.iter().find(|e| e.name == name)
    }

    /// The debug name of a function, if the name section gives one.
    pub fn func_name(&self, index: u32) -> Option<&str> {
        self.names.functions.get(&index).map(String::as_str)
    }
}

struct Decoder<'a> {
    bytes: &'a [u8],
    features: WasmFeatures,
    m: Module,
}

fn err(e: wasmparser::BinaryReaderError) -> DecodeError {
    DecodeError::from(e)
}

/// Reports a malformed number that a section's end cuts through as the
/// malformed number, not as the end of the section.
///
/// The specification decodes a LEB128 number to its last byte and only then
/// checks that the section's length was respected, so a number that is too
/// long (or too large) is malformed for that reason even when the declared
/// section length ends inside it. wasmparser stops reading at the section's
/// end and reports "unexpected end-of-file". Both defects are real; this
/// picks the spec's. A number that is well-formed when read past the
/// section's end keeps the end-of-file error, and so does a truncated
/// module (there is nothing past its end to read).
fn number_cut_by_section_end(bytes: &[u8], e: DecodeError) -> DecodeError {
    let DecodeError::Invalid { message, offset } = &e else {
        return e;
    };
    let end = *offset;
    if !message.starts_with("unexpected end-of-file") || end == 0 || end >= bytes.len() {
        return e;
    }
    // A LEB128 number's bytes before its last all have the top bit set; a
    // u32 has at most four of them before the byte that must end it.
    let mut start = end;
    while start > 0 && end - start < 4 && bytes[start - 1] & 0x80 != 0 {
        start -= 1;
    }
    if start == end {
        return e;
    }
    let mut past_the_end = BinaryReader::new(&bytes[start..], start as u64);
    match past_the_end.read_var_u32() {
        Err(number) if !number.message().starts_with("unexpected end-of-file") => number.into(),
        _ => e,
    }
}

/// Converts a wasmparser value type.
pub(crate) fn val_type(t: wasmparser::ValType, offset: usize) -> Result<ValType> {
    Ok(match t {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(r) => ref_type(r, offset)?,
    })
}

pub(crate) fn ref_type(r: wasmparser::RefType, offset: usize) -> Result<ValType> {
    use wasmparser::{AbstractHeapType as A, UnpackedIndex};
    let heap = match r.heap_type() {
        wasmparser::HeapType::Abstract {
            shared: false,
            ty: A::Func,
        } => HeapType::Func,
        wasmparser::HeapType::Abstract {
            shared: false,
            ty: A::Extern,
        } => HeapType::Extern,
        wasmparser::HeapType::Abstract {
            shared: false,
            ty: A::Exn,
        } => HeapType::Exn,
        wasmparser::HeapType::Concrete(UnpackedIndex::Module(i)) => HeapType::Concrete(i),
        _ => {
            return Err(DecodeError::unsupported(
                format!("reference type {r} is not supported"),
                offset,
            ));
        }
    };
    Ok(ValType::Ref(RefType::new(r.is_nullable(), heap)))
}

fn limits(min: u64, max: Option<u64>) -> Limits {
    Limits { min, max }
}

fn table_type(t: wasmparser::TableType, offset: usize) -> Result<TableType> {
    Ok(TableType {
        element: ref_type(t.element_type, offset)?,
        limits: limits(t.initial, t.maximum),
        table64: t.table64,
    })
}

fn memory_type(t: wasmparser::MemoryType) -> MemoryType {
    MemoryType {
        limits: limits(t.initial, t.maximum),
        shared: t.shared,
        memory64: t.memory64,
        page_size_log2: t.page_size_log2.unwrap_or(16),
    }
}

fn global_type(t: wasmparser::GlobalType, offset: usize) -> Result<GlobalType> {
    Ok(GlobalType {
        ty: val_type(t.content_type, offset)?,
        mutable: t.mutable,
    })
}

fn const_expr(e: &wasmparser::ConstExpr<'_>) -> Result<ConstExpr> {
    let mut ops = Vec::new();
    let mut reader = e.get_operators_reader();
    loop {
        let offset = reader.original_position() as usize;
        let op = reader.read().map_err(err)?;
        ops.push(match op {
            Operator::End => break,
            Operator::I32Const { value } => ConstOp::I32Const(value),
            Operator::I64Const { value } => ConstOp::I64Const(value),
            Operator::F32Const { value } => ConstOp::F32Const(value.bits()),
            Operator::F64Const { value } => ConstOp::F64Const(value.bits()),
            Operator::V128Const { value } => ConstOp::V128Const(value.i128() as u128),
            Operator::RefNull { hty } => ConstOp::RefNull(ref_type(
                wasmparser::RefType::new(true, hty).ok_or_else(|| {
                    DecodeError::unsupported("unsupported heap type".into(), offset)
                })?,
                offset,
            )?),
            Operator::RefFunc { function_index } => ConstOp::RefFunc(function_index),
            Operator::GlobalGet { global_index } => ConstOp::GlobalGet(global_index),
            Operator::I32Add => ConstOp::I32Add,
            Operator::I32Sub => ConstOp::I32Sub,
            Operator::I32Mul => ConstOp::I32Mul,
            Operator::I64Add => ConstOp::I64Add,
            Operator::I64Sub => ConstOp::I64Sub,
            Operator::I64Mul => ConstOp::I64Mul,
            other => {
                return Err(DecodeError::unsupported(
                    format!("constant instruction {other:?} is not supported"),
                    offset,
                ));
            }
        });
    }
    Ok(ConstExpr { ops })
}

impl<'a> Decoder<'a> {
    fn new(bytes: &'a [u8], features: WasmFeatures) -> Self {
        Decoder {
            bytes,
            features,
            m: Module {
                bytes: Arc::from(bytes),
                types: Vec::new(),
                imports: Vec::new(),
                functions: Vec::new(),
                tables: Vec::new(),
                table_defs: Vec::new(),
                memories: Vec::new(),
                globals: Vec::new(),
                global_defs: Vec::new(),
                exports: Vec::new(),
                start: None,
                elements: Vec::new(),
                data: Vec::new(),
                data_count: None,
                bodies: Vec::new(),
                referenced_functions: Vec::new(),
                names: Names::default(),
                custom_sections: Vec::new(),
                code_section_start: None,
                features,
                num_imported_funcs: 0,
                num_imported_tables: 0,
                num_imported_memories: 0,
                num_imported_globals: 0,
                tags: Vec::new(),
                num_imported_tags: 0,
            },
        }
    }

    fn run(mut self) -> Result<Module> {
        let mut validator = Validator::new_with_features(self.features);
        let mut allocs = FuncValidatorAllocations::default();
        let mut referenced = Vec::new();
        let mut parser = Parser::new(0);
        parser.set_features(self.features);
        for payload in parser.parse_all(self.bytes) {
            let payload = payload.map_err(err)?;
            match validator.payload(&payload).map_err(err)? {
                wasmparser::ValidPayload::Func(func, body) => {
                    let mut fv = func.into_validator(std::mem::take(&mut allocs));
                    fv.validate(&body).map_err(err)?;
                    allocs = fv.into_allocations();
                    self.body(&body)?;
                    continue;
                }
                wasmparser::ValidPayload::Parser(_) => {
                    return Err(DecodeError::unsupported(
                        "nested modules are not supported".into(),
                        0,
                    ));
                }
                _ => {}
            }
            self.section(payload, &mut referenced)?;
        }
        referenced.sort_unstable();
        referenced.dedup();
        self.m.referenced_functions = referenced;
        Ok(self.m)
    }

    fn body(&mut self, body: &wasmparser::FunctionBody<'_>) -> Result<()> {
        let index = self.m.num_imported_funcs as usize + self.m.bodies.len();
        let type_index = self.m.functions[index];
        let mut locals = Vec::new();
        let mut lr = body.get_locals_reader().map_err(err)?;
        for _ in 0..lr.get_count() {
            let offset = lr.original_position() as usize;
            let (n, t) = lr.read().map_err(err)?;
            locals.push((n, val_type(t, offset)?));
        }
        let code = lr.original_position() as usize;
        let r = body.range();
        self.m.bodies.push(FunctionBody {
            type_index,
            locals,
            range: r.start as usize..r.end as usize,
            code: code..r.end as usize,
        });
        Ok(())
    }

    fn section(&mut self, payload: Payload<'_>, referenced: &mut Vec<u32>) -> Result<()> {
        let m = &mut self.m;
        match payload {
            Payload::TypeSection(r) => {
                for group in r.into_iter_with_offsets() {
                    let (offset, group) = group.map_err(err)?;
                    for sub in group.into_types() {
                        match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                let params = f
                                    .params()
                                    .iter()
                                    .map(|t| val_type(*t, offset as usize))
                                    .collect::<Result<_>>()?;
                                let results = f
                                    .results()
                                    .iter()
                                    .map(|t| val_type(*t, offset as usize))
                                    .collect::<Result<_>>()?;
                                m.types.push(FuncType { params, results });
                            }
                            _ => {
                                return Err(DecodeError::unsupported(
                                    "non-function types (GC proposal) are not supported".into(),
                                    offset as usize,
                                ));
                            }
                        }
                    }
                }
            }
            Payload::ImportSection(r) => {
                for item in r.into_imports_with_offsets() {
                    let (offset, imp) = item.map_err(err)?;
                    let offset = offset as usize;
                    let ty = match imp.ty {
                        TypeRef::Func(i) | TypeRef::FuncExact(i) => {
                            m.functions.push(i);
                            m.num_imported_funcs += 1;
                            EntityType::Func(i)
                        }
                        TypeRef::Table(t) => {
                            let t = table_type(t, offset)?;
                            m.tables.push(t);
                            m.num_imported_tables += 1;
                            EntityType::Table(t)
                        }
                        TypeRef::Memory(t) => {
                            let t = memory_type(t);
                            m.memories.push(t);
                            m.num_imported_memories += 1;
                            EntityType::Memory(t)
                        }
                        TypeRef::Global(t) => {
                            let t = global_type(t, offset)?;
                            m.globals.push(t);
                            m.num_imported_globals += 1;
                            EntityType::Global(t)
                        }
                        TypeRef::Tag(t) => {
                            m.tags.push(t.func_type_idx);
                            m.num_imported_tags += 1;
                            EntityType::Tag(t.func_type_idx)
                        }
                    };
                    m.imports.push(Import {
                        module: imp.module.to_string(),
                        name: imp.name.to_string(),
                        ty,
                    });
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    m.functions.push(t.map_err(err)?);
                }
            }
            Payload::TableSection(r) => {
                for t in r.into_iter_with_offsets() {
                    let (offset, t) = t.map_err(err)?;
                    let ty = table_type(t.ty, offset as usize)?;
                    let init = match &t.init {
                        wasmparser::TableInit::RefNull => None,
                        wasmparser::TableInit::Expr(e) => Some(const_expr(e)?),
                    };
                    if let Some(e) = &init {
                        collect_refs(e, referenced);
                    }
                    m.tables.push(ty);
                    m.table_defs.push(TableDef { ty, init });
                }
            }
            Payload::MemorySection(r) => {
                for t in r {
                    m.memories.push(memory_type(t.map_err(err)?));
                }
            }
            Payload::GlobalSection(r) => {
                for g in r.into_iter_with_offsets() {
                    let (offset, g) = g.map_err(err)?;
                    let ty = global_type(g.ty, offset as usize)?;
                    let init = const_expr(&g.init_expr)?;
                    collect_refs(&init, referenced);
                    m.globals.push(ty);
                    m.global_defs.push(GlobalDef { ty, init });
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(err)?;
                    let index = match e.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => {
                            referenced.push(e.index);
                            ExternIndex::Func(e.index)
                        }
                        ExternalKind::Table => ExternIndex::Table(e.index),
                        ExternalKind::Memory => ExternIndex::Memory(e.index),
                        ExternalKind::Global => ExternIndex::Global(e.index),
                        ExternalKind::Tag => ExternIndex::Tag(e.index),
                    };
                    m.exports.push(Export {
                        name: e.name.to_string(),
                        index,
                    });
                }
            }
            Payload::StartSection { func, .. } => m.start = Some(func),
            Payload::TagSection(r) => {
                for t in r {
                    m.tags.push(t.map_err(err)?.func_type_idx);
                }
            }
            Payload::ElementSection(r) => {
                for e in r {
                    let e = e.map_err(err)?;
                    let offset = e.range.start as usize;
                    let (ty, items) = match e.items {
                        ElementItems::Functions(f) => {
                            let v = f.into_iter().collect::<std::result::Result<Vec<_>, _>>();
                            let v = v.map_err(err)?;
                            referenced.extend_from_slice(&v);
                            (ValType::FUNCREF, ElementItems2::Functions(v))
                        }
                        ElementItems::Expressions(t, exprs) => {
                            let mut v = Vec::new();
                            for x in exprs {
                                let x = const_expr(&x.map_err(err)?)?;
                                collect_refs(&x, referenced);
                                v.push(x);
                            }
                            (ref_type(t, offset)?, ElementItems2::Expressions(v))
                        }
                    };
                    let mode = match e.kind {
                        ElementKind::Passive => SegmentMode::Passive,
                        ElementKind::Declared => SegmentMode::Declared,
                        ElementKind::Active {
                            table_index,
                            offset_expr,
                        } => SegmentMode::Active {
                            index: table_index.unwrap_or(0),
                            offset: const_expr(&offset_expr)?,
                        },
                    };
                    m.elements.push(ElementSegment { ty, mode, items });
                }
            }
            Payload::DataCountSection { count, .. } => m.data_count = Some(count),
            Payload::DataSection(r) => {
                for d in r {
                    let d = d.map_err(err)?;
                    let mode = match d.kind {
                        DataKind::Passive => SegmentMode::Passive,
                        DataKind::Active {
                            memory_index,
                            offset_expr,
                        } => SegmentMode::Active {
                            index: memory_index,
                            offset: const_expr(&offset_expr)?,
                        },
                    };
                    let end = d.range.end as usize;
                    let start = end - d.data.len();
                    m.data.push(DataSegment {
                        mode,
                        data: start..end,
                    });
                }
            }
            Payload::CodeSectionStart {
                unchecked_range, ..
            } => m.code_section_start = usize::try_from(unchecked_range.start).ok(),
            Payload::CustomSection(c) => {
                let start = usize::try_from(c.data_offset()).unwrap_or(usize::MAX);
                m.custom_sections.push((
                    c.name().to_string(),
                    start..start.saturating_add(c.data().len()),
                ));
                if let KnownCustom::Name(names) = c.as_known() {
                    // A malformed name section is not an error (spec, appendix 7.4).
                    let _ = read_names(names, &mut m.names);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn collect_refs(e: &ConstExpr, out: &mut Vec<u32>) {
    for op in &e.ops {
        if let ConstOp::RefFunc(f) = op {
            out.push(*f);
        }
    }
}

fn read_names(
    reader: wasmparser::NameSectionReader<'_>,
    names: &mut Names,
) -> wasmparser::Result<()> {
    for n in reader {
        match n? {
            Name::Module { name, .. } => names.module = Some(name.to_string()),
            Name::Function(map) => {
                for naming in map {
                    let naming = naming?;
                    names
                        .functions
                        .insert(naming.index, naming.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(())
}
