//! Runtime functions that compiled code calls through the vmctx builtins table.

use cranelift_codegen::ir::Type;
use cranelift_codegen::ir::types::{I32, I64};

/// What `MemoryGrow` and `TableGrow` return when compiled code must trap
/// with [`TrapKind::Host`](crate::TrapKind::Host) (for example, user code the
/// runtime called panicked). No memory or table size can reach it.
pub const GROW_TRAP: u64 = u64::MAX - 1;

/// Index into the builtins table (`vmctx->builtins[index]`).
///
/// Every builtin is an `extern "C"` function (the host's C calling
/// convention) whose first argument is the *caller's* vmctx. The runtime
/// fills a table of [`Builtin::COUNT`] code pointers, in this order, and
/// stores its address at [`crate::VMOffsets::builtins`].
///
/// Index operands that are `i32` in wasm (32-bit memories and tables, segment
/// offsets and lengths) are zero-extended to `u64`. Builtins that return a
/// `u32` *status* return 0 on success; any other value makes compiled code
/// trap with [`crate::TrapKind::Host`] at once (the runtime has recorded the
/// real reason, e.g. an out-of-bounds access, and reports that). Builtins
/// never unwind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Builtin {
    /// `memory.grow`:
    /// `extern "C" fn(vmctx: *mut u8, memory_index: u32, delta_pages: u64) -> u64`.
    ///
    /// Returns the old size in pages, or `u64::MAX` when the memory cannot
    /// grow (the memory is then unchanged), or [`GROW_TRAP`] when the runtime
    /// wants the caller to trap (it recorded why). `memory_index` is in the module's
    /// memory index space (imported memories first). After it returns,
    /// compiled code reloads the memory's base and length if memories may
    /// move.
    MemoryGrow = 0,
    /// `table.grow`:
    /// `extern "C" fn(vmctx, table: u32, delta: u64, init: u64) -> u64`.
    ///
    /// `init` is the new elements' value (a raw reference word). Returns the
    /// old size in elements, or `u64::MAX` on failure (the table is then
    /// unchanged; a 32-bit table's result becomes -1), or [`GROW_TRAP`] to
    /// trap. The table's `base`
    /// may change; compiled code reloads it at every access anyway.
    TableGrow = 1,
    /// `table.fill`:
    /// `extern "C" fn(vmctx, table: u32, dst: u64, val: u64, len: u64) -> u32` (status).
    TableFill = 2,
    /// `table.copy`: `extern "C" fn(vmctx, dst_table: u32, src_table: u32,
    /// dst: u64, src: u64, len: u64) -> u32` (status).
    TableCopy = 3,
    /// `table.init`: `extern "C" fn(vmctx, table: u32, elem: u32, dst: u64,
    /// src: u64, len: u64) -> u32` (status). `elem` is the element segment
    /// index in the module.
    TableInit = 4,
    /// `elem.drop`: `extern "C" fn(vmctx, elem: u32)`.
    ElemDrop = 5,
    /// `memory.copy`: `extern "C" fn(vmctx, dst_mem: u32, src_mem: u32,
    /// dst: u64, src: u64, len: u64) -> u32` (status).
    MemoryCopy = 6,
    /// `memory.fill`:
    /// `extern "C" fn(vmctx, mem: u32, dst: u64, val: u32, len: u64) -> u32`
    /// (status; the byte written is `val as u8`).
    MemoryFill = 7,
    /// `memory.init`: `extern "C" fn(vmctx, mem: u32, data: u32, dst: u64,
    /// src: u64, len: u64) -> u32` (status). `data` is the data segment
    /// index in the module.
    MemoryInit = 8,
    /// `data.drop`: `extern "C" fn(vmctx, data: u32)`.
    DataDrop = 9,
    /// Epoch check slow path: `extern "C" fn(vmctx) -> u32` (status),
    /// called at a function entry or loop header when `*epoch_ptr >=
    /// epoch_deadline`. To continue, return 0 (normally after moving
    /// `epoch_deadline` forward: compiled code does not check again until
    /// its next check point); non-zero traps with [`crate::TrapKind::Host`]
    /// (record [`crate::TrapKind::Interrupt`] as the reason).
    EpochInterrupt = 10,
    /// Fuel check slow path: `extern "C" fn(vmctx) -> u32` (status), called
    /// at a function entry or loop header when `fuel_consumed >= 0`
    /// (`fuel_consumed` is up to date in the `VMStoreContext` during the
    /// call, and re-read after it). To continue, return 0 (for instance
    /// after refilling, i.e. lowering `fuel_consumed`); non-zero traps with
    /// [`crate::TrapKind::Host`] (record [`crate::TrapKind::OutOfFuel`]).
    OutOfFuel = 11,
    /// `memory.atomic.notify`:
    /// `extern "C" fn(vmctx, mem: u32, addr: u64, count: u32) -> u64`.
    ///
    /// `addr` is the effective address (index + static offset; for a
    /// 32-bit memory at most `2^33`). Returns the number of waiters woken
    /// (compiled code uses the low 32 bits as the wasm `i32` result), or
    /// `u64::MAX` to trap with [`crate::TrapKind::Host`] after recording the
    /// reason: [`crate::TrapKind::UnalignedAtomic`] (`addr` not a multiple
    /// of 4) or [`crate::TrapKind::MemoryOutOfBounds`] (`addr + 4` past the
    /// memory's current length). On a non-shared memory it performs the
    /// same checks and returns 0.
    MemoryAtomicNotify = 12,
    /// `memory.atomic.wait32`: `extern "C" fn(vmctx, mem: u32, addr: u64,
    /// expected: u32, timeout_ns: i64) -> u64`.
    ///
    /// Returns 0 (woken), 1 (the value at `addr` was not `expected`) or 2
    /// (timed out; a negative `timeout_ns` waits forever), or `u64::MAX` to
    /// trap with [`crate::TrapKind::Host`] after recording the reason:
    /// [`crate::TrapKind::UnalignedAtomic`],
    /// [`crate::TrapKind::MemoryOutOfBounds`] or, on a non-shared memory,
    /// [`crate::TrapKind::AtomicWaitNonShared`].
    MemoryAtomicWait32 = 13,
    /// `memory.atomic.wait64`: `extern "C" fn(vmctx, mem: u32, addr: u64,
    /// expected: u64, timeout_ns: i64) -> u64`: as
    /// [`Builtin::MemoryAtomicWait32`] with an 8-byte value (`addr` must be
    /// a multiple of 8).
    MemoryAtomicWait64 = 14,
    /// `throw $tag`: `extern "C" fn(vmctx, tag: u32, values: *const ValRaw)
    /// -> u32` (status).
    ///
    /// Makes an exception of tag `tag` (in the module's tag index space)
    /// whose fields are the tag's parameters, read from `values` (one
    /// 16-byte `ValRaw` each), and makes it the store's pending exception:
    /// sets `VMStoreContext::exception` and `exception_tag`. Compiled code
    /// then goes to its handlers (see
    /// [`VMOffsets::STORE_CTX_EXCEPTION`](crate::VMOffsets::STORE_CTX_EXCEPTION)).
    Throw = 15,
    /// `throw_ref`: `extern "C" fn(vmctx, exn: u64) -> u32` (status).
    /// Makes the exception `exn` (an `exnref`, never null: compiled code
    /// traps on null first) the store's pending exception again.
    ThrowRef = 16,
    /// A handler caught the pending exception: `extern "C" fn(vmctx,
    /// values: *mut ValRaw, keep: u32) -> u64`.
    ///
    /// Clears `VMStoreContext::exception`, writes the exception's fields to
    /// `values` (one `ValRaw` each; `values` may be null for a handler that
    /// takes no fields), and returns the exception as an `exnref` when
    /// `keep` is non-zero (`catch_ref`, `catch_all_ref`), else 0.
    CatchException = 17,
}

impl Builtin {
    /// Number of builtins: the length of the table the runtime provides.
    pub const COUNT: usize = 18;

    /// Every builtin, in table order.
    pub const ALL: [Builtin; Builtin::COUNT] = [
        Builtin::MemoryGrow,
        Builtin::TableGrow,
        Builtin::TableFill,
        Builtin::TableCopy,
        Builtin::TableInit,
        Builtin::ElemDrop,
        Builtin::MemoryCopy,
        Builtin::MemoryFill,
        Builtin::MemoryInit,
        Builtin::DataDrop,
        Builtin::EpochInterrupt,
        Builtin::OutOfFuel,
        Builtin::MemoryAtomicNotify,
        Builtin::MemoryAtomicWait32,
        Builtin::MemoryAtomicWait64,
        Builtin::Throw,
        Builtin::ThrowRef,
        Builtin::CatchException,
    ];

    /// Index of this builtin in the table.
    pub fn index(self) -> u32 {
        self as u32
    }

    /// Byte offset of this builtin's entry within the table.
    pub fn table_offset(self) -> u32 {
        self.index() * crate::vmoffsets::PTR_SIZE
    }

    /// The builtin's signature: parameter types after the leading vmctx
    /// pointer, and its return type (if any), as Cranelift types.
    pub(crate) fn signature(self) -> (&'static [Type], Option<Type>) {
        use Builtin as B;
        match self {
            B::MemoryGrow => (&[I32, I64], Some(I64)),
            B::TableGrow => (&[I32, I64, I64], Some(I64)),
            B::TableFill => (&[I32, I64, I64, I64], Some(I32)),
            B::TableCopy | B::TableInit | B::MemoryCopy | B::MemoryInit => {
                (&[I32, I32, I64, I64, I64], Some(I32))
            }
            B::ElemDrop | B::DataDrop => (&[I32], None),
            B::MemoryFill => (&[I32, I64, I32, I64], Some(I32)),
            B::EpochInterrupt | B::OutOfFuel => (&[], Some(I32)),
            B::MemoryAtomicNotify => (&[I32, I64, I32], Some(I64)),
            B::MemoryAtomicWait32 => (&[I32, I64, I32, I64], Some(I64)),
            B::MemoryAtomicWait64 => (&[I32, I64, I64, I64], Some(I64)),
            B::Throw => (&[I32, I64], Some(I32)),
            B::ThrowRef => (&[I64], Some(I32)),
            B::CatchException => (&[I64, I32], Some(I64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense() {
        for (i, b) in Builtin::ALL.iter().enumerate() {
            assert_eq!(b.index() as usize, i);
        }
    }
}
