//! Locals (Cranelift variables) and globals (reached through the vmctx).

use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};

use super::FuncTranslator;
use super::abi::{clif_type, readonly_flags};
use crate::error::CompileError;

impl FuncTranslator<'_, '_> {
    pub(super) fn op_local_get(&mut self, index: u32) {
        let v = self.builder.use_var(self.locals[index as usize]);
        self.push(v);
    }

    pub(super) fn op_local_set(&mut self, index: u32) {
        let v = self.pop();
        self.builder.def_var(self.locals[index as usize], v);
    }

    pub(super) fn op_local_tee(&mut self, index: u32) {
        let v = self.peek();
        self.builder.def_var(self.locals[index as usize], v);
    }

    /// `vmctx->globals[index]`: the address of the global's value.
    fn global_ptr(&mut self, index: u32) -> Value {
        let off = self.env.offsets.global(index) as i32;
        self.builder
            .ins()
            .load(I64, readonly_flags(), self.vmctx, off)
    }

    fn global_flags(&self, mutable: bool) -> MemFlagsData {
        let f = MemFlagsData::trusted().with_alias_region(Some(self.vmctx_region));
        if mutable {
            f
        } else {
            f.with_readonly().with_can_move()
        }
    }

    pub(super) fn op_global_get(&mut self, index: u32) -> Result<(), CompileError> {
        let gt = self.env.module.globals[index as usize];
        let ty = clif_type(gt.ty)?;
        let ptr = self.global_ptr(index);
        let flags = self.global_flags(gt.mutable);
        let v = self.builder.ins().load(ty, flags, ptr, 0);
        self.push(v);
        Ok(())
    }

    pub(super) fn op_global_set(&mut self, index: u32) -> Result<(), CompileError> {
        let gt = self.env.module.globals[index as usize];
        clif_type(gt.ty)?;
        let v = self.pop();
        let ptr = self.global_ptr(index);
        let flags = self.global_flags(true);
        self.builder.ins().store(flags, v, ptr, 0);
        Ok(())
    }
}
