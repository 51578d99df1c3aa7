//! The value and entity types of a decoded module.

use std::fmt;

/// A WebAssembly value type, as weft supports them.
///
/// References are described by a [`RefType`]: `funcref` is
/// [`ValType::FUNCREF`], `(ref $t)` is a non-nullable reference to the
/// function type at index `$t` of the module's type section.
///
/// ```
/// use weft_decoder::{HeapType, RefType, ValType};
/// assert_eq!(ValType::FUNCREF.to_string(), "funcref");
/// let t = ValType::Ref(RefType::new(false, HeapType::Concrete(3)));
/// assert_eq!(t.to_string(), "(ref 3)");
/// assert!(!t.is_defaultable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// A reference (`funcref`, `externref`, or a typed function reference).
    Ref(RefType),
}

/// What a reference points to.
///
/// Within a decoded module, [`HeapType::Concrete`] holds an index into the
/// module's type section. The runtime also uses this type with engine-wide
/// canonical type ids in place of module indices ("canonical" types), so
/// that types of different modules compare by structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeapType {
    /// Any function (`func`).
    Func,
    /// Any host value (`extern`).
    Extern,
    /// An exception (`exn`, exception-handling proposal).
    Exn,
    /// A function of one function type (function-references proposal).
    Concrete(u32),
}

/// A reference type: a heap type and whether null is a value of the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefType {
    /// Whether the null reference belongs to the type.
    pub nullable: bool,
    /// What the reference points to.
    pub heap: HeapType,
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

    /// Whether the references point to functions (`func` or a concrete
    /// function type), rather than host values.
    pub fn is_func(&self) -> bool {
        matches!(self.heap, HeapType::Func | HeapType::Concrete(_))
    }

    /// Subtyping without indirection: `self <: other` when both use the same
    /// index space for concrete types (one module's, or canonical ids), where
    /// function types have no declared supertypes (no GC proposal), so a
    /// concrete type matches only itself and `func`.
    pub fn matches(&self, other: &RefType) -> bool {
        (other.nullable || !self.nullable)
            && match (self.heap, other.heap) {
                (a, b) if a == b => true,
                (HeapType::Concrete(_), HeapType::Func) => true,
                _ => false,
            }
    }
}

impl fmt::Display for RefType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.nullable, self.heap) {
            (true, HeapType::Func) => f.write_str("funcref"),
            (true, HeapType::Extern) => f.write_str("externref"),
            (true, HeapType::Exn) => f.write_str("exnref"),
            (nullable, heap) => {
                f.write_str(if nullable { "(ref null " } else { "(ref " })?;
                match heap {
                    HeapType::Func => f.write_str("func")?,
                    HeapType::Extern => f.write_str("extern")?,
                    HeapType::Exn => f.write_str("exn")?,
                    HeapType::Concrete(i) => write!(f, "{i}")?,
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
    /// `exnref`.
    pub const EXNREF: ValType = ValType::Ref(RefType::EXNREF);

    /// Whether this is a reference type.
    pub fn is_ref(self) -> bool {
        matches!(self, ValType::Ref(_))
    }

    /// The reference type, if this is one.
    pub fn as_ref(self) -> Option<RefType> {
        match self {
            ValType::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// Whether the type has a default value (zero or null): every type but
    /// the non-nullable references.
    pub fn is_defaultable(self) -> bool {
        !matches!(self, ValType::Ref(r) if !r.nullable)
    }

    /// `self <: other`, see [`RefType::matches`].
    pub fn matches(self, other: ValType) -> bool {
        match (self, other) {
            (ValType::Ref(a), ValType::Ref(b)) => a.matches(&b),
            (a, b) => a == b,
        }
    }

    /// The same type with every concrete type index mapped by `f` (e.g. from
    /// module indices to canonical ids).
    pub fn map_concrete(self, f: impl FnOnce(u32) -> u32) -> ValType {
        match self {
            ValType::Ref(RefType {
                nullable,
                heap: HeapType::Concrete(i),
            }) => ValType::Ref(RefType::new(nullable, HeapType::Concrete(f(i)))),
            t => t,
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

/// A function signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FuncType {
    /// Parameter types, in order.
    pub params: Box<[ValType]>,
    /// Result types, in order.
    pub results: Box<[ValType]>,
}

impl FuncType {
    /// Builds a function type from parameter and result lists.
    pub fn new(
        params: impl IntoIterator<Item = ValType>,
        results: impl IntoIterator<Item = ValType>,
    ) -> Self {
        FuncType {
            params: params.into_iter().collect(),
            results: results.into_iter().collect(),
        }
    }

    /// The same type with every concrete type index mapped by `f`.
    pub fn map_concrete(&self, mut f: impl FnMut(u32) -> u32) -> FuncType {
        FuncType {
            params: self.params.iter().map(|t| t.map_concrete(&mut f)).collect(),
            results: self
                .results
                .iter()
                .map(|t| t.map_concrete(&mut f))
                .collect(),
        }
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[ValType]| {
            v.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        write!(
            f,
            "(func (param {}) (result {}))",
            list(&self.params),
            list(&self.results)
        )
    }
}

/// Size limits of a table or memory, in elements or pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Initial size.
    pub min: u64,
    /// Optional maximum size.
    pub max: Option<u64>,
}

impl Limits {
    /// Whether `self` (the actual limits of a provided entity) matches
    /// `required` (the limits an import asks for), by the spec's subtyping rule.
    pub fn matches(&self, required: &Limits) -> bool {
        if self.min < required.min {
            return false;
        }
        match (self.max, required.max) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => a <= b,
        }
    }
}

/// A table type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableType {
    /// Element type (a reference type).
    pub element: ValType,
    /// Size limits in elements.
    pub limits: Limits,
    /// Whether the table is indexed with 64-bit values (memory64 proposal).
    pub table64: bool,
}

/// A linear memory type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryType {
    /// Size limits in pages.
    pub limits: Limits,
    /// Whether the memory is shared between threads (threads proposal).
    pub shared: bool,
    /// Whether the memory is indexed with 64-bit addresses (memory64 proposal).
    pub memory64: bool,
    /// log2 of the page size (16 for the standard 64 KiB pages).
    pub page_size_log2: u32,
}

impl MemoryType {
    /// A non-shared 32-bit memory of `min` 64 KiB pages, at most `max`.
    pub fn new(min: u64, max: Option<u64>) -> MemoryType {
        MemoryType {
            limits: Limits { min, max },
            shared: false,
            memory64: false,
            page_size_log2: 16,
        }
    }

    /// A shared 32-bit memory of `min` 64 KiB pages, at most `max` (shared
    /// memories always have a maximum).
    ///
    /// ```
    /// let ty = weft_decoder::MemoryType::shared(1, 16);
    /// assert!(ty.shared);
    /// assert_eq!(ty.limits.max, Some(16));
    /// ```
    pub fn shared(min: u64, max: u64) -> MemoryType {
        MemoryType {
            shared: true,
            ..MemoryType::new(min, Some(max))
        }
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> u64 {
        1u64 << self.page_size_log2
    }
}

/// A global type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlobalType {
    /// Value type of the global.
    pub ty: ValType,
    /// Whether the global may be set.
    pub mutable: bool,
}

/// The kind and type of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityType {
    /// A function with the given type index.
    Func(u32),
    /// A table.
    Table(TableType),
    /// A memory.
    Memory(MemoryType),
    /// A global.
    Global(GlobalType),
    /// An exception tag whose parameters are those of the function type
    /// with the given index (its results are empty).
    Tag(u32),
}

/// What an export refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExternIndex {
    /// A function index.
    Func(u32),
    /// A table index.
    Table(u32),
    /// A memory index.
    Memory(u32),
    /// A global index.
    Global(u32),
    /// A tag index.
    Tag(u32),
}
