//! `array_call` and host trampolines.
use cranelift_codegen::ir;
use cranelift_frontend::FunctionBuilderContext;
use weft_decoder::FuncType;
use crate::{compiler::Compiler, error::CompileError};
pub(crate) fn array_trampoline(_c: &Compiler, _t: &FuncType, _a: u32, _b: u32, _f: &mut ir::Function, _x: &mut FunctionBuilderContext) -> Result<(), CompileError> { Err(CompileError::Unsupported("todo".into())) }
pub(crate) fn host_trampoline(_c: &Compiler, _t: &FuncType, _f: &mut ir::Function, _x: &mut FunctionBuilderContext) -> Result<(), CompileError> { Err(CompileError::Unsupported("todo".into())) }
