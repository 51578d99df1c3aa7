//! WebAssembly function bodies to Cranelift IR.
use cranelift_codegen::ir;
use cranelift_frontend::FunctionBuilderContext;
use weft_decoder::{FunctionBody, Module};
use crate::{compiler::Compiler, error::CompileError, vmoffsets::VMOffsets};
pub(crate) struct ModuleEnv<'a> { _c: &'a Compiler, _m: &'a Module, _o: &'a VMOffsets }
impl<'a> ModuleEnv<'a> {
    pub(crate) fn new(c: &'a Compiler, m: &'a Module, o: &'a VMOffsets) -> Self { ModuleEnv { _c: c, _m: m, _o: o } }
    pub(crate) fn translate_function(&self, _i: u32, _b: &FunctionBody, _f: &mut ir::Function, _x: &mut FunctionBuilderContext) -> Result<(), CompileError> { Err(CompileError::Unsupported("todo".into())) }
}
