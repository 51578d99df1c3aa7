//! How wasm values and functions map onto Cranelift: value types, the
//! `wasm_call` signature, and the memory flags of loads from the vmctx and
//! the runtime structures it points to.

use cranelift_codegen::ir::types::{F32, F64, I32, I64};
use cranelift_codegen::ir::{AbiParam, ArgumentPurpose, MemFlagsData, Signature, Type};
use cranelift_codegen::isa::CallConv;
use weft_decoder::wasmparser;
use weft_decoder::{FuncType, ValType};

use super::simd::V128;
use crate::error::CompileError;

/// The Cranelift type of a wasm value type. References are pointers; `v128`
/// is always [`V128`] (see `simd`).
pub(crate) fn clif_type(t: ValType) -> Result<Type, CompileError> {
    Ok(match t {
        ValType::I32 => I32,
        ValType::I64 => I64,
        ValType::F32 => F32,
        ValType::F64 => F64,
        ValType::Ref(_) => I64,
        ValType::V128 => V128,
    })
}

/// The Cranelift type of a value type as wasmparser spells it.
pub(super) fn wasmparser_type(t: wasmparser::ValType) -> Result<Type, CompileError> {
    Ok(match t {
        wasmparser::ValType::I32 => I32,
        wasmparser::ValType::I64 => I64,
        wasmparser::ValType::F32 => F32,
        wasmparser::ValType::F64 => F64,
        wasmparser::ValType::Ref(_) => I64,
        wasmparser::ValType::V128 => V128,
    })
}

/// The `wasm_call` signature of a function type:
/// `(callee_vmctx, caller_vmctx, [ret_area if > 1 result], params...) -> [result if exactly 1]`.
///
/// Functions with more than one result write them to `ret_area`, a
/// caller-provided array of 16-byte `ValRaw` slots (result `i` at `16 * i`).
pub(crate) fn wasm_signature(
    ty: &FuncType,
    call_conv: CallConv,
) -> Result<Signature, CompileError> {
    let mut sig = Signature::new(call_conv);
    sig.params
        .push(AbiParam::special(I64, ArgumentPurpose::VMContext));
    sig.params.push(AbiParam::new(I64));
    if ty.results.len() > 1 {
        sig.params.push(AbiParam::new(I64));
    }
    for &p in ty.params.iter() {
        sig.params.push(AbiParam::new(clif_type(p)?));
    }
    for &r in ty.results.iter() {
        // Validate every result type even when they go through memory.
        let t = clif_type(r)?;
        if ty.results.len() == 1 {
            sig.returns.push(AbiParam::new(t));
        }
    }
    Ok(sig)
}

/// Index of the first wasm parameter in a `wasm_call` signature.
pub(crate) fn first_wasm_param(ty: &FuncType) -> usize {
    if ty.results.len() > 1 { 3 } else { 2 }
}

/// Flags for loads from the vmctx and runtime structures that never change
/// while the instance lives (pointers to memories, globals, funcrefs...):
/// they cannot trap, and may be deduplicated and hoisted.
pub(crate) fn readonly_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly().with_can_move()
}

/// Flags for the fields of a `VMFuncRef` reached through a table element:
/// immutable, but *not* `can_move`: the pointer may be null until the null
/// check, and a movable load could be hoisted above it.
pub(super) fn funcref_field_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly()
}
