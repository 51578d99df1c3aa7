//! The bulk memory and table operations: each is one call to a builtin,
//! which does the bounds checks and the work.

use cranelift_codegen::ir::Value;

use super::FuncTranslator;
use crate::builtins::Builtin;

impl FuncTranslator<'_, '_> {
    /// The bulk operations: pops `dst, x, len` (`x` is the source, or the
    /// fill value), zero-extends the indices (`x` too if `x_is_index`), and
    /// calls status-returning builtin `b` with `imms` first.
    fn op_bulk(&mut self, b: Builtin, imms: &[u32], x_is_index: bool) {
        let len = self.pop();
        let x = self.pop();
        let dst = self.pop();
        let len = self.widen(len);
        let x = if x_is_index { self.widen(x) } else { x };
        let dst = self.widen(dst);
        let mut args: Vec<Value> = imms.iter().map(|&i| self.u32_const(i)).collect();
        args.extend([dst, x, len]);
        self.call_builtin_checked(b, &args);
    }

    pub(super) fn op_memory_copy(&mut self, dst_mem: u32, src_mem: u32) {
        self.op_bulk(Builtin::MemoryCopy, &[dst_mem, src_mem], true);
    }

    pub(super) fn op_memory_fill(&mut self, mem: u32) {
        self.op_bulk(Builtin::MemoryFill, &[mem], false);
    }

    pub(super) fn op_memory_init(&mut self, data: u32, mem: u32) {
        self.op_bulk(Builtin::MemoryInit, &[mem, data], true);
    }

    pub(super) fn op_data_drop(&mut self, data: u32) {
        let d = self.u32_const(data);
        self.call_builtin(Builtin::DataDrop, &[d]);
    }

    pub(super) fn op_table_fill(&mut self, table: u32) {
        self.op_bulk(Builtin::TableFill, &[table], false);
    }

    pub(super) fn op_table_copy(&mut self, dst_table: u32, src_table: u32) {
        self.op_bulk(Builtin::TableCopy, &[dst_table, src_table], true);
    }

    pub(super) fn op_table_init(&mut self, elem: u32, table: u32) {
        self.op_bulk(Builtin::TableInit, &[table, elem], true);
    }

    pub(super) fn op_elem_drop(&mut self, elem: u32) {
        let e = self.u32_const(elem);
        self.call_builtin(Builtin::ElemDrop, &[e]);
    }
}
