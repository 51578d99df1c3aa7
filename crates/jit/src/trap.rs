//! Trap kinds and their Cranelift trap codes.

use cranelift_codegen::ir::TrapCode;

/// Why compiled code trapped.
///
/// Compiled code records, for every instruction that may trap (an explicit
/// trap instruction, or a memory access that may fault), the trap's kind; the
/// runtime's signal handler maps the faulting PC to it with
/// [`crate::CompiledModule::lookup_trap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrapKind {
    /// The wasm stack limit was reached (`VMStoreContext::stack_limit`).
    StackOverflow,
    /// A linear-memory access out of bounds.
    MemoryOutOfBounds,
    /// A misaligned access where alignment is required.
    HeapMisaligned,
    /// A table access out of bounds (`table.get`/`set`/`fill`/`copy`/`init`).
    TableOutOfBounds,
    /// An indirect call through an index past the end of the table.
    UndefinedElement,
    /// An indirect call through a null table entry.
    IndirectCallToNull,
    /// An indirect call whose callee has the wrong type.
    BadSignature,
    /// Integer overflow (signed division of the minimum by -1, or a
    /// float-to-int conversion out of range).
    IntegerOverflow,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero,
    /// A float-to-int conversion of NaN.
    BadConversionToInteger,
    /// The `unreachable` instruction was executed.
    UnreachableCodeReached,
    /// Execution was interrupted (epoch, deadline or cancellation).
    Interrupt,
    /// Fuel ran out.
    OutOfFuel,
    /// An atomic access (or `memory.atomic.wait`/`notify`) whose effective
    /// address is not a multiple of its size.
    UnalignedAtomic,
    /// `memory.atomic.wait32`/`wait64` on a non-shared memory.
    AtomicWaitNonShared,
    /// A host function returned an error; the runtime stored the reason.
    Host,
    /// `call_ref`/`return_call_ref` through a null function reference.
    NullFunctionReference,
    /// `ref.as_non_null` of a null reference.
    NullReference,
    /// `throw_ref` of a null exception reference.
    NullExceptionReference,
}

impl TrapKind {
    /// Every trap kind.
    pub const ALL: [TrapKind; 19] = [
        TrapKind::StackOverflow,
        TrapKind::MemoryOutOfBounds,
        TrapKind::HeapMisaligned,
        TrapKind::TableOutOfBounds,
        TrapKind::UndefinedElement,
        TrapKind::IndirectCallToNull,
        TrapKind::BadSignature,
        TrapKind::IntegerOverflow,
        TrapKind::IntegerDivisionByZero,
        TrapKind::BadConversionToInteger,
        TrapKind::UnreachableCodeReached,
        TrapKind::Interrupt,
        TrapKind::OutOfFuel,
        TrapKind::UnalignedAtomic,
        TrapKind::AtomicWaitNonShared,
        TrapKind::Host,
        TrapKind::NullFunctionReference,
        TrapKind::NullReference,
        TrapKind::NullExceptionReference,
    ];

    /// The message the spec testsuite expects for this trap.
    pub fn message(self) -> &'static str {
        match self {
            TrapKind::StackOverflow => "call stack exhausted",
            TrapKind::MemoryOutOfBounds => "out of bounds memory access",
            TrapKind::HeapMisaligned => "misaligned memory access",
            TrapKind::TableOutOfBounds => "out of bounds table access",
            TrapKind::UndefinedElement => "undefined element",
            TrapKind::IndirectCallToNull => "uninitialized element",
            TrapKind::BadSignature => "indirect call type mismatch",
            TrapKind::IntegerOverflow => "integer overflow",
            TrapKind::IntegerDivisionByZero => "integer divide by zero",
            TrapKind::BadConversionToInteger => "invalid conversion to integer",
            TrapKind::UnreachableCodeReached => "unreachable",
            TrapKind::Interrupt => "interrupt",
            TrapKind::OutOfFuel => "all fuel consumed by WebAssembly",
            TrapKind::UnalignedAtomic => "unaligned atomic",
            TrapKind::AtomicWaitNonShared => "expected shared memory",
            TrapKind::Host => "host function error",
            TrapKind::NullFunctionReference => "null function reference",
            TrapKind::NullReference => "null reference",
            TrapKind::NullExceptionReference => "null exception reference",
        }
    }

    /// The Cranelift trap code compiled code uses for this kind.
    pub(crate) fn code(self) -> TrapCode {
        match self {
            TrapKind::StackOverflow => TrapCode::STACK_OVERFLOW,
            TrapKind::MemoryOutOfBounds => TrapCode::HEAP_OUT_OF_BOUNDS,
            TrapKind::IntegerOverflow => TrapCode::INTEGER_OVERFLOW,
            TrapKind::IntegerDivisionByZero => TrapCode::INTEGER_DIVISION_BY_ZERO,
            TrapKind::BadConversionToInteger => TrapCode::BAD_CONVERSION_TO_INTEGER,
            TrapKind::HeapMisaligned => TrapCode::unwrap_user(1),
            TrapKind::TableOutOfBounds => TrapCode::unwrap_user(2),
            TrapKind::IndirectCallToNull => TrapCode::unwrap_user(3),
            TrapKind::BadSignature => TrapCode::unwrap_user(4),
            TrapKind::UnreachableCodeReached => TrapCode::unwrap_user(5),
            TrapKind::Interrupt => TrapCode::unwrap_user(6),
            TrapKind::OutOfFuel => TrapCode::unwrap_user(7),
            TrapKind::UnalignedAtomic => TrapCode::unwrap_user(8),
            TrapKind::AtomicWaitNonShared => TrapCode::unwrap_user(9),
            TrapKind::Host => TrapCode::unwrap_user(10),
            TrapKind::UndefinedElement => TrapCode::unwrap_user(11),
            TrapKind::NullFunctionReference => TrapCode::unwrap_user(12),
            TrapKind::NullReference => TrapCode::unwrap_user(13),
            TrapKind::NullExceptionReference => TrapCode::unwrap_user(14),
        }
    }

    /// The kind for a Cranelift trap code, if it is one weft emits.
    pub(crate) fn from_code(code: TrapCode) -> Option<TrapKind> {
        TrapKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// A sorted table of trap sites: (code offset, kind).
#[derive(Debug, Default, Clone)]
pub(crate) struct TrapTable {
    sites: Vec<(u32, TrapKind)>,
}

impl TrapTable {
    pub(crate) fn push(&mut self, offset: u32, kind: TrapKind) {
        self.sites.push((offset, kind));
    }

    pub(crate) fn finish(&mut self) {
        self.sites.sort_unstable_by_key(|s| s.0);
        self.sites.dedup_by_key(|s| s.0);
    }

    pub(crate) fn lookup(&self, offset: u32) -> Option<TrapKind> {
        self.sites
            .binary_search_by_key(&offset, |s| s.0)
            .ok()
            .map(|i| self.sites[i].1)
    }

    pub(crate) fn len(&self) -> usize {
        self.sites.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        for k in TrapKind::ALL {
            assert_eq!(TrapKind::from_code(k.code()), Some(k));
            assert!(!k.message().is_empty());
        }
    }

    #[test]
    fn table_lookup_is_exact() {
        let mut t = TrapTable::default();
        t.push(20, TrapKind::Host);
        t.push(4, TrapKind::UnreachableCodeReached);
        t.finish();
        assert_eq!(t.lookup(4), Some(TrapKind::UnreachableCodeReached));
        assert_eq!(t.lookup(20), Some(TrapKind::Host));
        assert_eq!(t.lookup(5), None);
        assert_eq!(t.len(), 2);
    }
}
