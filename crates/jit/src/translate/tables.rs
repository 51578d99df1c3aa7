//! Tables and references: bounds-checked element accesses, `table.size`,
//! `table.grow`, and `ref.null`, `ref.is_null` and `ref.func`.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};

use super::FuncTranslator;
use super::abi::readonly_flags;
use super::numeric::eqz;
use crate::builtins::Builtin;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

impl FuncTranslator<'_, '_> {
    /// `vmctx->tables[index]`: the table's `VMTableDefinition`.
    fn table_def(&mut self, index: u32) -> Value {
        let off = self.env.offsets.table(index) as i32;
        self.builder
            .ins()
            .load(I64, readonly_flags(), self.vmctx, off)
    }

    /// Flags of loads of a table's `base` and `current_elements`: they
    /// change only inside builtins and calls, so they are re-read after
    /// any call.
    fn table_def_flags(&self) -> MemFlagsData {
        MemFlagsData::trusted().with_alias_region(Some(self.vmctx_region))
    }

    pub(super) fn table_elem_flags(&self) -> MemFlagsData {
        MemFlagsData::trusted().with_alias_region(Some(self.table_region))
    }

    fn table_length(&mut self, def: Value) -> Value {
        let f = self.table_def_flags();
        self.builder
            .ins()
            .load(I64, f, def, VMOffsets::TABLE_CURRENT_ELEMENTS as i32)
    }

    /// The address of element `index` (an `i32` or `i64` operand) of
    /// `table`, after checking it against the table's current length
    /// (trapping with `oob`).
    pub(super) fn table_elem_addr(&mut self, table: u32, index: Value, oob: TrapKind) -> Value {
        let def = self.table_def(table);
        let index = self.widen(index);
        let len = self.table_length(def);
        let out = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, len);
        self.builder.ins().trapnz(out, Self::trap_code(oob));
        let f = self.table_def_flags();
        let base = self
            .builder
            .ins()
            .load(I64, f, def, VMOffsets::TABLE_BASE as i32);
        let scaled = self.builder.ins().ishl_imm_u(index, 3);
        self.builder.ins().iadd(base, scaled)
    }

    fn table64(&self, table: u32) -> bool {
        self.env.module.tables[table as usize].table64
    }

    pub(super) fn op_table_get(&mut self, table: u32) {
        let index = self.pop();
        let addr = self.table_elem_addr(table, index, TrapKind::TableOutOfBounds);
        let f = self.table_elem_flags();
        let v = self.builder.ins().load(I64, f, addr, 0);
        self.push(v);
    }

    pub(super) fn op_table_set(&mut self, table: u32) {
        let value = self.pop();
        let index = self.pop();
        let addr = self.table_elem_addr(table, index, TrapKind::TableOutOfBounds);
        let f = self.table_elem_flags();
        self.builder.ins().store(f, value, addr, 0);
    }

    pub(super) fn op_table_size(&mut self, table: u32) {
        let def = self.table_def(table);
        let len = self.table_length(def);
        let v = if self.table64(table) {
            len
        } else {
            self.builder.ins().ireduce(I32, len)
        };
        self.push(v);
    }

    pub(super) fn op_table_grow(&mut self, table: u32) {
        let delta = self.pop();
        let init = self.pop();
        let delta = self.widen(delta);
        let t = self.u32_const(table);
        let old = self
            .call_builtin(Builtin::TableGrow, &[t, delta, init])
            .expect("table.grow returns a value");
        self.trap_on_grow_trap(old);
        let v = if self.table64(table) {
            old
        } else {
            self.builder.ins().ireduce(I32, old)
        };
        self.push(v);
    }

    // ----------------------------------------------------------- references

    /// `ref.null`: references are pointers, null is 0.
    pub(super) fn op_ref_null(&mut self) {
        let v = self.builder.ins().iconst(I64, 0);
        self.push(v);
    }

    pub(super) fn op_ref_is_null(&mut self) {
        self.unop(eqz);
    }

    /// `ref.as_non_null`: traps on null ("null reference"), else leaves the
    /// reference (now of a non-nullable type) on the stack.
    pub(super) fn op_ref_as_non_null(&mut self) {
        let v = self.peek();
        self.builder
            .ins()
            .trapz(v, Self::trap_code(TrapKind::NullReference));
    }

    /// `ref.func f`: the address of `f`'s `VMFuncRef`.
    pub(super) fn op_ref_func(&mut self, func_index: u32) {
        let module = self.env.module;
        let v = if module.is_imported_func(func_index) {
            let off = self.env.offsets.imported_func(func_index) as i32;
            self.builder
                .ins()
                .load(I64, readonly_flags(), self.vmctx, off)
        } else {
            let off = self
                .env
                .offsets
                .func_ref(func_index - module.num_imported_funcs);
            self.builder.ins().iadd_imm_s(self.vmctx, i64::from(off))
        };
        self.push(v);
    }
}
