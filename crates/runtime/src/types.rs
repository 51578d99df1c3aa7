//! The public descriptions of WebAssembly types: weft's own, so that no type
//! of the decoder (or of wasmparser) appears in the public API. Internally
//! the runtime works with `weft_decoder`'s types; the conversions here are
//! crate-private.

use std::fmt;

use weft_decoder as wd;

/// A WebAssembly value type.
///
/// ```
/// use weft_runtime::{FuncType, HeapType, RefType, ValType};
/// assert_eq!(ValType::I32.to_string(), "i32");
/// assert!(ValType::FUNCREF.is_ref());
/// // `(ref $t)` with `$t = (func (param i32))`: a non-null typed reference.
/// let t = ValType::Ref(RefType::new(
///     false,
///     HeapType::Concrete(FuncType::new([ValType::I32], [])),
/// ));
/// assert_eq!(t.to_string(), "(ref (func (param i32)))");
/// assert!(t.matches(&ValType::FUNCREF));
/// assert!(!ValType::FUNCREF.matches(&t));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 128-bit vector.
    V128,
    /// A reference: `funcref` ([`ValType::FUNCREF`]), `externref`
    /// ([`ValType::EXTERNREF`]) or a typed function reference such as
    /// `(ref $t)` (function-references proposal).
    Ref(RefType),
}

/// A reference type: what it points to, and whether null is a value of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefType {
    nullable: bool,
    heap: HeapType,
}

/// What a reference points to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeapType {
    /// Any function (`func`).
    Func,
    /// Any host value (`extern`).
    Extern,
    /// An exception (`exn`): see [`Exn`](crate::Exn).
    Exn,
    /// Functions of one type (`$t` in `(ref $t)`), described by its
    /// structure: types of different modules with the same structure are
    /// the same type.
    Concrete(FuncType),
}

impl RefType {
    /// `funcref`: `(ref null func)`.
    pub const FUNCREF: RefType = RefType::new(true, HeapType::Func);
    /// `externref`: `(ref null extern)`.
    pub const EXTERNREF: RefType = RefType::new(true, HeapType::Extern);
    /// `exnref`: `(ref null exn)`.
    pub const EXNREF: RefType = RefType::new(true, HeapType::Exn);

    /// A reference type.
    pub const fn new(nullable: bool, heap: HeapType) -> RefType {
        RefType { nullable, heap }
    }

    /// Whether null is a value of this type.
    pub fn is_nullable(&self) -> bool {
        self.nullable
    }

    /// What the references point to.
    pub fn heap_type(&self) -> &HeapType {
        &self.heap
    }

    /// Subtyping: `self <: other` (`(ref $t) <: (ref null $t) <: funcref`,
    /// `(ref func) <: funcref`; function types have no other subtypes).
    pub fn matches(&self, other: &RefType) -> bool {
        (other.nullable || !self.nullable)
            && match (&self.heap, &other.heap) {
                (HeapType::Concrete(_), HeapType::Func) => true,
                (a, b) => a == b,
            }
    }
}

impl fmt::Display for RefType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.nullable, &self.heap) {
            (true, HeapType::Func) => f.write_str("funcref"),
            (true, HeapType::Extern) => f.write_str("externref"),
            (true, HeapType::Exn) => f.write_str("exnref"),
            (nullable, heap) => {
                f.write_str(if nullable { "(ref null " } else { "(ref " })?;
                match heap {
                    HeapType::Func => f.write_str("func")?,
                    HeapType::Extern => f.write_str("extern")?,
                    HeapType::Exn => f.write_str("exn")?,
                    HeapType::Concrete(t) => t.fmt(f)?,
                }
                f.write_str(")")
            }
        }
    }
}

impl ValType {
    /// `funcref`, the nullable reference to any function.
    pub const FUNCREF: ValType = ValType::Ref(RefType::FUNCREF);
    /// `externref`, the nullable reference to any host value.
    pub const EXTERNREF: ValType = ValType::Ref(RefType::EXTERNREF);
    /// `exnref`, the nullable reference to an exception.
    pub const EXNREF: ValType = ValType::Ref(RefType::EXNREF);

    /// Whether this is a reference type.
    pub fn is_ref(&self) -> bool {
        matches!(self, ValType::Ref(_))
    }

    /// The reference type, if this is one.
    pub fn as_ref_type(&self) -> Option<&RefType> {
        match self {
            ValType::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// Subtyping: `self <: other` (see [`RefType::matches`]); other types
    /// match only themselves.
    pub fn matches(&self, other: &ValType) -> bool {
        match (self, other) {
            (ValType::Ref(a), ValType::Ref(b)) => a.matches(b),
            (a, b) => a == b,
        }
    }

    /// From a canonical decoder type (concrete heap types are `engine`'s
    /// canonical type ids).
    pub(crate) fn from_wasm(t: wd::ValType, engine: &crate::Engine) -> ValType {
        match t {
            wd::ValType::I32 => ValType::I32,
            wd::ValType::I64 => ValType::I64,
            wd::ValType::F32 => ValType::F32,
            wd::ValType::F64 => ValType::F64,
            wd::ValType::V128 => ValType::V128,
            wd::ValType::Ref(r) => ValType::Ref(RefType::new(
                r.nullable,
                match r.heap {
                    wd::HeapType::Func => HeapType::Func,
                    wd::HeapType::Extern => HeapType::Extern,
                    wd::HeapType::Exn => HeapType::Exn,
                    wd::HeapType::Concrete(id) => HeapType::Concrete(
                        engine
                            .canonical_type(id)
                            .map(|t| FuncType::from_wasm(&t, engine))
                            .unwrap_or_default(),
                    ),
                },
            )),
        }
    }

    /// The canonical decoder type (concrete heap types registered with
    /// `engine`).
    pub(crate) fn to_wasm(&self, engine: &crate::Engine) -> wd::ValType {
        match self {
            ValType::I32 => wd::ValType::I32,
            ValType::I64 => wd::ValType::I64,
            ValType::F32 => wd::ValType::F32,
            ValType::F64 => wd::ValType::F64,
            ValType::V128 => wd::ValType::V128,
            ValType::Ref(r) => wd::ValType::Ref(wd::RefType::new(
                r.nullable,
                match &r.heap {
                    HeapType::Func => wd::HeapType::Func,
                    HeapType::Extern => wd::HeapType::Extern,
                    HeapType::Exn => wd::HeapType::Exn,
                    HeapType::Concrete(t) => {
                        wd::HeapType::Concrete(engine.type_id(&t.to_wasm(engine)))
                    }
                },
            )),
        }
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::Ref(r) => return r.fmt(f),
        })
    }
}

/// A function signature: parameter and result types.
///
/// ```
/// use weft_runtime::{FuncType, ValType};
/// let ty = FuncType::new([ValType::I32, ValType::I64], [ValType::F32]);
/// assert_eq!(ty.params(), &[ValType::I32, ValType::I64]);
/// assert_eq!(ty.results(), &[ValType::F32]);
/// assert_eq!(ty.to_string(), "(func (param i32 i64) (result f32))");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FuncType {
    params: Box<[ValType]>,
    results: Box<[ValType]>,
}

impl FuncType {
    /// A function type from parameter and result types.
    pub fn new(
        params: impl IntoIterator<Item = ValType>,
        results: impl IntoIterator<Item = ValType>,
    ) -> FuncType {
        FuncType {
            params: params.into_iter().collect(),
            results: results.into_iter().collect(),
        }
    }

    /// The parameter types, in order.
    pub fn params(&self) -> &[ValType] {
        &self.params
    }

    /// The result types, in order.
    pub fn results(&self) -> &[ValType] {
        &self.results
    }

    /// From a canonical decoder type (see [`ValType::from_wasm`]).
    pub(crate) fn from_wasm(t: &wd::FuncType, engine: &crate::Engine) -> FuncType {
        FuncType::new(
            t.params.iter().map(|v| ValType::from_wasm(*v, engine)),
            t.results.iter().map(|v| ValType::from_wasm(*v, engine)),
        )
    }

    /// The canonical decoder type (see [`ValType::to_wasm`]).
    pub(crate) fn to_wasm(&self, engine: &crate::Engine) -> wd::FuncType {
        wd::FuncType::new(
            self.params.iter().map(|v| v.to_wasm(engine)),
            self.results.iter().map(|v| v.to_wasm(engine)),
        )
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(func")?;
        for (word, list) in [("param", &self.params), ("result", &self.results)] {
            if !list.is_empty() {
                write!(f, " ({word}")?;
                for t in list.iter() {
                    write!(f, " {t}")?;
                }
                f.write_str(")")?;
            }
        }
        f.write_str(")")
    }
}

/// The type of a linear memory: its size limits in pages, whether it is
/// shared between threads, and whether it is indexed with 64-bit addresses.
///
/// ```
/// use weft_runtime::MemoryType;
/// let ty = MemoryType::shared(1, 16);
/// assert!(ty.is_shared());
/// assert_eq!((ty.minimum(), ty.maximum()), (1, Some(16)));
/// assert_eq!(ty.page_size(), 65536);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryType {
    minimum: u64,
    maximum: Option<u64>,
    shared: bool,
    memory64: bool,
    page_size_log2: u8,
}

impl MemoryType {
    /// A non-shared 32-bit memory of `minimum` 64 KiB pages, at most `maximum`.
    pub fn new(minimum: u64, maximum: Option<u64>) -> MemoryType {
        MemoryType {
            minimum,
            maximum,
            shared: false,
            memory64: false,
            page_size_log2: 16,
        }
    }

    /// A non-shared 64-bit (memory64) memory of `minimum` 64 KiB pages, at
    /// most `maximum`.
    pub fn new64(minimum: u64, maximum: Option<u64>) -> MemoryType {
        MemoryType {
            memory64: true,
            ..MemoryType::new(minimum, maximum)
        }
    }

    /// A shared 32-bit memory of `minimum` 64 KiB pages, at most `maximum`
    /// (shared memories always have a maximum).
    pub fn shared(minimum: u64, maximum: u64) -> MemoryType {
        MemoryType {
            shared: true,
            ..MemoryType::new(minimum, Some(maximum))
        }
    }

    /// Minimum (initial) size in pages.
    pub fn minimum(&self) -> u64 {
        self.minimum
    }

    /// Maximum size in pages, if any.
    pub fn maximum(&self) -> Option<u64> {
        self.maximum
    }

    /// Whether the memory is shared between threads.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Whether the memory is indexed with 64-bit addresses.
    pub fn is_64(&self) -> bool {
        self.memory64
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> u64 {
        1u64 << self.page_size_log2
    }

    pub(crate) fn from_wasm(t: &wd::MemoryType) -> MemoryType {
        MemoryType {
            minimum: t.limits.min,
            maximum: t.limits.max,
            shared: t.shared,
            memory64: t.memory64,
            page_size_log2: t.page_size_log2 as u8,
        }
    }

    pub(crate) fn to_wasm(self) -> wd::MemoryType {
        wd::MemoryType {
            limits: wd::Limits {
                min: self.minimum,
                max: self.maximum,
            },
            shared: self.shared,
            memory64: self.memory64,
            page_size_log2: u32::from(self.page_size_log2),
        }
    }
}

impl fmt::Display for MemoryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(memory {}", if self.memory64 { "i64 " } else { "" })?;
        write!(f, "{}", self.minimum)?;
        if let Some(m) = self.maximum {
            write!(f, " {m}")?;
        }
        if self.shared {
            f.write_str(" shared")?;
        }
        f.write_str(")")
    }
}

/// The type of a table: its element type and size limits in elements.
///
/// ```
/// use weft_runtime::{TableType, ValType};
/// let ty = TableType::new(ValType::FUNCREF, 10, Some(20));
/// assert_eq!(ty.element(), ValType::FUNCREF);
/// assert_eq!((ty.minimum(), ty.maximum()), (10, Some(20)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableType {
    element: ValType,
    minimum: u64,
    maximum: Option<u64>,
    table64: bool,
}

impl TableType {
    /// A 32-bit table of `element` references (a reference type; a table
    /// of a non-nullable type needs an initial value for its elements).
    pub fn new(element: ValType, minimum: u64, maximum: Option<u64>) -> TableType {
        TableType {
            element,
            minimum,
            maximum,
            table64: false,
        }
    }

    /// A 64-bit (memory64) table of `element` references.
    pub fn new64(element: ValType, minimum: u64, maximum: Option<u64>) -> TableType {
        TableType {
            table64: true,
            ..TableType::new(element, minimum, maximum)
        }
    }

    /// The element type.
    pub fn element(&self) -> ValType {
        self.element.clone()
    }

    /// Minimum (initial) size in elements.
    pub fn minimum(&self) -> u64 {
        self.minimum
    }

    /// Maximum size in elements, if any.
    pub fn maximum(&self) -> Option<u64> {
        self.maximum
    }

    /// Whether the table is indexed with 64-bit values.
    pub fn is_64(&self) -> bool {
        self.table64
    }

    pub(crate) fn from_wasm(t: &wd::TableType, engine: &crate::Engine) -> TableType {
        TableType {
            element: ValType::from_wasm(t.element, engine),
            minimum: t.limits.min,
            maximum: t.limits.max,
            table64: t.table64,
        }
    }

    pub(crate) fn to_wasm(&self, engine: &crate::Engine) -> wd::TableType {
        wd::TableType {
            element: self.element.to_wasm(engine),
            limits: wd::Limits {
                min: self.minimum,
                max: self.maximum,
            },
            table64: self.table64,
        }
    }
}

impl fmt::Display for TableType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(table {}", self.minimum)?;
        if let Some(m) = self.maximum {
            write!(f, " {m}")?;
        }
        write!(f, " {})", self.element)
    }
}

/// The type of a global: its value type and whether it may be set.
///
/// ```
/// use weft_runtime::{GlobalType, ValType};
/// let ty = GlobalType::new(ValType::I64, true);
/// assert_eq!(ty.content(), ValType::I64);
/// assert!(ty.is_mutable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GlobalType {
    content: ValType,
    mutable: bool,
}

impl GlobalType {
    /// A global holding `content` values; `mutable` if it may be set.
    pub fn new(content: ValType, mutable: bool) -> GlobalType {
        GlobalType { content, mutable }
    }

    /// The value type.
    pub fn content(&self) -> ValType {
        self.content.clone()
    }

    /// Whether the global may be set.
    pub fn is_mutable(&self) -> bool {
        self.mutable
    }

    pub(crate) fn from_wasm(t: &wd::GlobalType, engine: &crate::Engine) -> GlobalType {
        GlobalType::new(ValType::from_wasm(t.ty, engine), t.mutable)
    }

    pub(crate) fn to_wasm(&self, engine: &crate::Engine) -> wd::GlobalType {
        wd::GlobalType {
            ty: self.content.to_wasm(engine),
            mutable: self.mutable,
        }
    }
}

impl fmt::Display for GlobalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mutable {
            write!(f, "(global (mut {}))", self.content)
        } else {
            write!(f, "(global {})", self.content)
        }
    }
}

/// The type of something a module imports or exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternType {
    /// A function.
    Func(FuncType),
    /// A table.
    Table(TableType),
    /// A linear memory.
    Memory(MemoryType),
    /// A global.
    Global(GlobalType),
    /// An exception tag.
    Tag(crate::TagType),
}

impl fmt::Display for ExternType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternType::Func(t) => t.fmt(f),
            ExternType::Table(t) => t.fmt(f),
            ExternType::Memory(t) => t.fmt(f),
            ExternType::Global(t) => t.fmt(f),
            ExternType::Tag(t) => t.fmt(f),
        }
    }
}

/// One import of a module: where it comes from and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportType<'module> {
    pub(crate) module: &'module str,
    pub(crate) name: &'module str,
    pub(crate) ty: ExternType,
}

impl<'module> ImportType<'module> {
    /// The module name the import is looked up in.
    pub fn module(&self) -> &'module str {
        self.module
    }

    /// The import's name within that module.
    pub fn name(&self) -> &'module str {
        self.name
    }

    /// What the import must be.
    pub fn ty(&self) -> &ExternType {
        &self.ty
    }
}

/// One export of a module: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportType<'module> {
    pub(crate) name: &'module str,
    pub(crate) ty: ExternType,
}

impl<'module> ExportType<'module> {
    /// The export's name.
    pub fn name(&self) -> &'module str {
        self.name
    }

    /// What is exported.
    pub fn ty(&self) -> &ExternType {
        &self.ty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let engine = crate::Engine::default();
        for v in [
            ValType::I32,
            ValType::I64,
            ValType::F32,
            ValType::F64,
            ValType::V128,
            ValType::FUNCREF,
            ValType::EXTERNREF,
            ValType::Ref(RefType::new(false, HeapType::Func)),
            ValType::Ref(RefType::new(
                true,
                HeapType::Concrete(FuncType::new([ValType::FUNCREF], [])),
            )),
        ] {
            assert_eq!(ValType::from_wasm(v.to_wasm(&engine), &engine), v);
        }
        let m = MemoryType::shared(2, 9);
        assert_eq!(MemoryType::from_wasm(&m.to_wasm()), m);
        let t = TableType::new(ValType::EXTERNREF, 1, None);
        assert_eq!(TableType::from_wasm(&t.to_wasm(&engine), &engine), t);
        let g = GlobalType::new(ValType::F64, false);
        assert_eq!(GlobalType::from_wasm(&g.to_wasm(&engine), &engine), g);
        let f = FuncType::new([ValType::I32], [ValType::I64, ValType::V128]);
        assert_eq!(FuncType::from_wasm(&f.to_wasm(&engine), &engine), f);
    }

    #[test]
    fn display() {
        assert_eq!(FuncType::new([], []).to_string(), "(func)");
        assert_eq!(
            FuncType::new([], [ValType::I32]).to_string(),
            "(func (result i32))"
        );
        assert_eq!(MemoryType::shared(1, 2).to_string(), "(memory 1 2 shared)");
        assert_eq!(
            TableType::new(ValType::FUNCREF, 3, None).to_string(),
            "(table 3 funcref)"
        );
        assert_eq!(
            GlobalType::new(ValType::I32, true).to_string(),
            "(global (mut i32))"
        );
    }
}
