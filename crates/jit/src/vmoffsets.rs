//! The vmctx layout that compiled code is built against (see `CONTRACT.md`).
//!
//! Every offset is in bytes, for a 64-bit host (pointers are 8 bytes). The
//! runtime allocates each instance's vmctx with [`VMOffsets::vmctx_size`]
//! bytes, 16-aligned, and fills the fields at the offsets given here.

use weft_decoder::Module;

/// Size of a pointer on the hosts weft supports.
pub const PTR_SIZE: u32 = 8;

/// Byte offsets of every field of an instance's vmctx, computed from a module.
///
/// Layout (in this order, each array immediately after the previous one):
///
/// | offset | field |
/// |---|---|
/// | 0 | `store_ctx: *mut VMStoreContext` |
/// | 8 | `builtins: *const *const u8` (indexed by [`crate::Builtin`]) |
/// | 16 | `runtime: *mut u8` (opaque to compiled code) |
/// | 24.. | `imported_funcs: [*const VMFuncRef; num_imported_funcs]` |
/// | .. | `memories: [*mut VMMemoryDefinition; num_memories]` |
/// | .. | `tables: [*mut VMTableDefinition; num_tables]` |
/// | .. | `globals: [*mut VMGlobal; num_globals]` |
/// | .. | `tags: [*const VMTag; num_tags]` |
/// | .. | `type_ids: [u32; num_types]`, padded to 8 bytes |
/// | .. | `func_refs: [VMFuncRef; num_defined_funcs]` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VMOffsets {
    num_imported_funcs: u32,
    num_defined_funcs: u32,
    num_memories: u32,
    num_tables: u32,
    num_globals: u32,
    num_tags: u32,
    num_types: u32,
    imported_funcs: u32,
    memories: u32,
    tables: u32,
    globals: u32,
    tags: u32,
    type_ids: u32,
    func_refs: u32,
    size: u32,
}

impl VMOffsets {
    // ---- VMStoreContext ----
    /// `VMStoreContext::stack_limit: usize`: the lowest stack pointer wasm
    /// code may use. Function prologues trap with
    /// [`crate::TrapKind::StackOverflow`] below it.
    pub const STORE_CTX_STACK_LIMIT: u32 = 0;
    /// `VMStoreContext::fuel_consumed: i64`: fuel consumed so far, minus the
    /// fuel available; `-fuel_consumed` is the fuel remaining. Compiled code
    /// (with `Tunables::consume_fuel`) adds the cost of what it executes and
    /// calls [`crate::Builtin::OutOfFuel`] at a check when it is `>= 0`.
    pub const STORE_CTX_FUEL_CONSUMED: u32 = 8;
    /// `VMStoreContext::epoch_deadline: u64`: compiled code (with
    /// `Tunables::epoch_interruption`) calls
    /// [`crate::Builtin::EpochInterrupt`] at a check when `*epoch_ptr >=
    /// epoch_deadline`.
    pub const STORE_CTX_EPOCH_DEADLINE: u32 = 16;
    /// `VMStoreContext::epoch_ptr: *const u64`: the engine's epoch counter
    /// (an `AtomicU64`). Read-only for compiled code, and fixed while wasm
    /// runs (compiled code loads it once per function call).
    pub const STORE_CTX_EPOCH_PTR: u32 = 24;
    /// `VMStoreContext::poll_page: *const u8`: a page compiled code (with
    /// `Tunables::interrupt_poll`) reads one byte of at every check; the
    /// runtime makes it unreadable to interrupt. Fixed while wasm runs.
    pub const STORE_CTX_POLL_PAGE: u32 = 32;
    /// `VMStoreContext::exception: u64`: non-zero while an exception is
    /// being thrown (the runtime's handle for it). Compiled code (with
    /// `Tunables::exceptions`) reads it after every call that may throw and,
    /// when it is set, goes to the innermost `try_table`'s handlers or
    /// returns at once (its results are then meaningless).
    pub const STORE_CTX_EXCEPTION: u32 = 40;
    /// `VMStoreContext::exception_tag: *const u8`: the tag (a `tags[i]`
    /// pointer of some vmctx) of the exception being thrown; valid while
    /// `exception` is non-zero. Handlers compare it with their tags.
    pub const STORE_CTX_EXCEPTION_TAG: u32 = 48;
    /// Size of the `VMStoreContext` fields compiled code knows (the runtime
    /// may append its own).
    pub const STORE_CTX_SIZE: u32 = 56;

    // ---- VMFuncRef ----
    /// `VMFuncRef::wasm_call: *const u8`.
    pub const FUNC_REF_WASM_CALL: u32 = 0;
    /// `VMFuncRef::array_call: *const u8`.
    pub const FUNC_REF_ARRAY_CALL: u32 = 8;
    /// `VMFuncRef::vmctx: *mut u8` (the callee's vmctx, or a host context).
    pub const FUNC_REF_VMCTX: u32 = 16;
    /// `VMFuncRef::type_id: u32` (engine-wide canonical type id).
    pub const FUNC_REF_TYPE_ID: u32 = 24;
    /// Size of a `VMFuncRef` (8-aligned).
    pub const FUNC_REF_SIZE: u32 = 32;

    // ---- VMMemoryDefinition ----
    /// `VMMemoryDefinition::base: *mut u8`.
    pub const MEMORY_BASE: u32 = 0;
    /// `VMMemoryDefinition::current_length: usize` (bytes; written with
    /// `Release`, read with `Acquire`).
    pub const MEMORY_CURRENT_LENGTH: u32 = 8;
    /// `VMMemoryDefinition::marks: *mut u8`: the memory's write marks (one
    /// byte per 4 KiB page, plus one), when [`crate::Tunables::write_marks`]
    /// is on; compiled code stores `0x0101_u16` at `marks + (ea >> 12)`
    /// after every store to a non-shared 32-bit memory.
    pub const MEMORY_MARKS: u32 = 16;
    /// Size of a `VMMemoryDefinition`.
    pub const MEMORY_DEFINITION_SIZE: u32 = 24;

    // ---- VMTableDefinition ----
    /// `VMTableDefinition::base: *mut usize`.
    pub const TABLE_BASE: u32 = 0;
    /// `VMTableDefinition::current_elements: usize`.
    pub const TABLE_CURRENT_ELEMENTS: u32 = 8;
    /// Size of a `VMTableDefinition`.
    pub const TABLE_DEFINITION_SIZE: u32 = 16;

    // ---- VMGlobal / ValRaw ----
    /// Size of a `VMGlobal` (one `ValRaw`, 16-aligned).
    pub const GLOBAL_SIZE: u32 = 16;
    /// Size (and alignment) of a `ValRaw` slot.
    pub const VAL_RAW_SIZE: u32 = 16;

    /// Computes the layout for `module`.
    pub fn new(module: &Module) -> VMOffsets {
        let num_imported_funcs = module.num_imported_funcs;
        let num_defined_funcs = module.bodies.len() as u32;
        let num_memories = module.memories.len() as u32;
        let num_tables = module.tables.len() as u32;
        let num_globals = module.globals.len() as u32;
        let num_types = module.types.len() as u32;
        let mut o = Self::from_counts(
            num_imported_funcs,
            num_defined_funcs,
            num_memories,
            num_tables,
            num_globals,
            num_types,
        );
        o.add_tags(module.tags.len() as u32);
        o
    }

    /// Computes the layout from the entity counts directly.
    pub fn from_counts(
        num_imported_funcs: u32,
        num_defined_funcs: u32,
        num_memories: u32,
        num_tables: u32,
        num_globals: u32,
        num_types: u32,
    ) -> VMOffsets {
        let imported_funcs = 3 * PTR_SIZE;
        let memories = imported_funcs + num_imported_funcs * PTR_SIZE;
        let tables = memories + num_memories * PTR_SIZE;
        let globals = tables + num_tables * PTR_SIZE;
        let type_ids = globals + num_globals * PTR_SIZE;
        let func_refs = align(type_ids + num_types * 4, 8);
        let size = align(func_refs + num_defined_funcs * Self::FUNC_REF_SIZE, 16);
        VMOffsets {
            num_imported_funcs,
            num_defined_funcs,
            num_memories,
            num_tables,
            num_globals,
            num_tags: 0,
            num_types,
            imported_funcs,
            memories,
            tables,
            globals,
            tags: type_ids,
            type_ids,
            func_refs,
            size,
        }
    }

    /// Makes room for `num_tags` tag pointers after the globals (the
    /// arrays after them move up).
    pub fn add_tags(&mut self, num_tags: u32) {
        let extra = (num_tags - self.num_tags) * PTR_SIZE;
        self.num_tags = num_tags;
        self.type_ids += extra;
        self.func_refs = align(self.type_ids + self.num_types * 4, 8);
        self.size = align(
            self.func_refs + self.num_defined_funcs * Self::FUNC_REF_SIZE,
            16,
        );
    }

    /// Total size of the vmctx in bytes (a multiple of 16; allocate it
    /// 16-aligned).
    pub fn vmctx_size(&self) -> u32 {
        self.size
    }

    /// Offset of `store_ctx: *mut VMStoreContext`.
    pub fn store_ctx(&self) -> u32 {
        0
    }

    /// Offset of `builtins: *const *const u8`.
    pub fn builtins(&self) -> u32 {
        PTR_SIZE
    }

    /// Offset of `runtime: *mut u8` (opaque to compiled code).
    pub fn runtime(&self) -> u32 {
        Self::VMCTX_RUNTIME
    }

    /// Offset of the vmctx's `runtime` field; the same in every module (the
    /// vmctx header does not depend on the module), so the runtime can find
    /// its instance from any vmctx without the module's offsets.
    pub const VMCTX_RUNTIME: u32 = 2 * PTR_SIZE;

    /// Offset of `imported_funcs[i]: *const VMFuncRef`.
    pub fn imported_func(&self, i: u32) -> u32 {
        assert!(
            i < self.num_imported_funcs,
            "imported function {i} out of range"
        );
        self.imported_funcs + i * PTR_SIZE
    }

    /// Offset of `memories[i]: *mut VMMemoryDefinition` (imported and defined).
    pub fn memory(&self, i: u32) -> u32 {
        assert!(i < self.num_memories, "memory {i} out of range");
        self.memories + i * PTR_SIZE
    }

    /// Offset of `tables[i]: *mut VMTableDefinition` (imported and defined).
    pub fn table(&self, i: u32) -> u32 {
        assert!(i < self.num_tables, "table {i} out of range");
        self.tables + i * PTR_SIZE
    }

    /// Offset of `globals[i]: *mut VMGlobal` (imported and defined).
    pub fn global(&self, i: u32) -> u32 {
        assert!(i < self.num_globals, "global {i} out of range");
        self.globals + i * PTR_SIZE
    }

    /// Offset of `tags[i]: *const VMTag` (imported and defined), the
    /// identity of tag `i`: two tags are the same tag exactly when these
    /// pointers are equal.
    pub fn tag(&self, i: u32) -> u32 {
        assert!(i < self.num_tags, "tag {i} out of range");
        self.tags + i * PTR_SIZE
    }

    /// Offset of `type_ids[i]: u32`, the canonical id of type `i`.
    pub fn type_ids(&self, i: u32) -> u32 {
        assert!(i < self.num_types, "type {i} out of range");
        self.type_ids + i * 4
    }

    /// Offset of `func_refs[defined_i]: VMFuncRef`, the funcref of defined
    /// function `defined_i` (an index among defined functions).
    pub fn func_ref(&self, defined_i: u32) -> u32 {
        assert!(
            defined_i < self.num_defined_funcs,
            "defined function {defined_i} out of range"
        );
        self.func_refs + defined_i * Self::FUNC_REF_SIZE
    }

    /// Number of imported functions.
    pub fn num_imported_funcs(&self) -> u32 {
        self.num_imported_funcs
    }

    /// Number of defined functions.
    pub fn num_defined_funcs(&self) -> u32 {
        self.num_defined_funcs
    }

    /// Number of memories (imported and defined).
    pub fn num_memories(&self) -> u32 {
        self.num_memories
    }

    /// Number of tables (imported and defined).
    pub fn num_tables(&self) -> u32 {
        self.num_tables
    }

    /// Number of globals (imported and defined).
    pub fn num_globals(&self) -> u32 {
        self.num_globals
    }

    /// Number of tags (imported and defined).
    pub fn num_tags(&self) -> u32 {
        self.num_tags
    }

    /// Number of function types.
    pub fn num_types(&self) -> u32 {
        self.num_types
    }
}

fn align(x: u32, to: u32) -> u32 {
    x.div_ceil(to) * to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_contract() {
        let o = VMOffsets::from_counts(2, 3, 1, 1, 2, 3);
        assert_eq!(o.store_ctx(), 0);
        assert_eq!(o.builtins(), 8);
        assert_eq!(o.runtime(), 16);
        assert_eq!(o.imported_func(0), 24);
        assert_eq!(o.imported_func(1), 32);
        assert_eq!(o.memory(0), 40);
        assert_eq!(o.table(0), 48);
        assert_eq!(o.global(0), 56);
        assert_eq!(o.global(1), 64);
        assert_eq!(o.type_ids(0), 72);
        assert_eq!(o.type_ids(2), 80);
        // 72 + 12 = 84, padded to 88.
        assert_eq!(o.func_ref(0), 88);
        assert_eq!(o.func_ref(2), 88 + 64);
        assert_eq!(o.vmctx_size(), 192);
        assert_eq!(o.vmctx_size() % 16, 0);
    }

    #[test]
    fn store_context_follows_contract() {
        assert_eq!(VMOffsets::STORE_CTX_STACK_LIMIT, 0);
        assert_eq!(VMOffsets::STORE_CTX_FUEL_CONSUMED, 8);
        assert_eq!(VMOffsets::STORE_CTX_EPOCH_DEADLINE, 16);
        assert_eq!(VMOffsets::STORE_CTX_EPOCH_PTR, 24);
        assert_eq!(VMOffsets::STORE_CTX_POLL_PAGE, 32);
        assert_eq!(VMOffsets::STORE_CTX_EXCEPTION, 40);
        assert_eq!(VMOffsets::STORE_CTX_EXCEPTION_TAG, 48);
        assert_eq!(VMOffsets::STORE_CTX_SIZE, 56);
    }

    #[test]
    fn tags_sit_between_globals_and_type_ids() {
        let mut o = VMOffsets::from_counts(2, 3, 1, 1, 2, 3);
        o.add_tags(2);
        assert_eq!(o.tag(0), 72);
        assert_eq!(o.tag(1), 80);
        assert_eq!(o.type_ids(0), 88);
        // 88 + 12 = 100, padded to 104.
        assert_eq!(o.func_ref(0), 104);
        assert_eq!(o.vmctx_size(), 208);
    }

    #[test]
    fn empty_module() {
        let o = VMOffsets::from_counts(0, 0, 0, 0, 0, 0);
        assert_eq!(o.vmctx_size(), 32);
    }
}
