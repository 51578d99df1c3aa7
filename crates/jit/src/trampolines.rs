//! `array_call` and host trampolines (see `CONTRACT.md`).

use cranelift_codegen::ir::types::{F32, F64, I32, I64};
use cranelift_codegen::ir::{
    self, AbiParam, ExtFuncData, ExternalName, InstBuilder, MemFlagsData, Signature, StackSlotData,
    StackSlotKind, UserExternalName,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use weft_decoder::FuncType;

use crate::compiler::Compiler;
use crate::error::CompileError;
use crate::translate::{clif_type, first_wasm_param, readonly_flags, wasm_signature};
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

/// `extern "C" fn(callee_vmctx, caller_vmctx, values: *mut ValRaw, len: usize)`,
/// the signature of `array_call` trampolines and of host callbacks (which
/// also return a `u32` status).
pub(crate) fn array_signature(compiler: &Compiler, with_status: bool) -> Signature {
    let mut sig = Signature::new(compiler.call_conv());
    for _ in 0..4 {
        sig.params.push(AbiParam::new(I64));
    }
    if with_status {
        sig.returns.push(AbiParam::new(I32));
    }
    sig
}

/// Starts a trampoline's only block, with the function's parameters as its
/// own, and returns them.
fn entry_block(b: &mut FunctionBuilder) -> Vec<ir::Value> {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    b.block_params(entry).to_vec()
}

fn slot_offset(i: usize) -> i32 {
    (i as u32 * VMOffsets::VAL_RAW_SIZE) as i32
}

/// Builds the `array_call` trampoline of a defined function: reads the
/// parameters from `values`, calls the function's `wasm_call` code (user
/// function `(0, callee_id)` of the same code region) directly, and writes
/// the results back to `values[0..]`.
pub(crate) fn array_trampoline(
    compiler: &Compiler,
    ty: &FuncType,
    callee_id: u32,
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
) -> Result<(), CompileError> {
    func.signature = array_signature(compiler, false);
    let wasm_sig = wasm_signature(ty, compiler.wasm_call_conv())?;
    let mut b = FunctionBuilder::new(func, fctx);
    let p = entry_block(&mut b);
    let (callee_vmctx, caller_vmctx, values) = (p[0], p[1], p[2]);

    let flags = MemFlagsData::trusted();
    let mut args = vec![callee_vmctx, caller_vmctx];
    if ty.results.len() > 1 {
        // Results are written straight into `values`, after every parameter
        // has been read.
        args.push(values);
    }
    for (i, &t) in ty.params.iter().enumerate() {
        let v = b.ins().load(clif_type(t)?, flags, values, slot_offset(i));
        args.push(v);
    }
    let sig = b.import_signature(wasm_sig);
    let name = b
        .func
        .declare_imported_user_function(UserExternalName::new(0, callee_id));
    let callee = b.import_function(ExtFuncData {
        name: ExternalName::User(name),
        signature: sig,
        colocated: true,
        patchable: false,
    });
    let call = b.ins().call(callee, &args);
    if ty.results.len() == 1 {
        let r = b.inst_results(call)[0];
        b.ins().store(flags, r, values, 0);
    }
    b.ins().return_(&[]);
    b.finalize(compiler.frontend_config());
    Ok(())
}

/// Builds the host trampoline for functions of type `ty`: a `wasm_call`
/// function whose callee vmctx is a host context; it spills the parameters
/// to a stack array of `ValRaw`, calls the callback in the host context's
/// first word, traps with [`TrapKind::Host`] on a non-zero status and
/// otherwise returns the results the callback wrote to the array.
pub(crate) fn host_trampoline(
    compiler: &Compiler,
    ty: &FuncType,
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
) -> Result<(), CompileError> {
    func.signature = wasm_signature(ty, compiler.wasm_call_conv())?;
    let mut b = FunctionBuilder::new(func, fctx);
    let p = entry_block(&mut b);
    let (host_ctx, caller_vmctx) = (p[0], p[1]);
    let first = first_wasm_param(ty);

    let len = ty.params.len().max(ty.results.len()).max(1);
    let slot = b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        len as u32 * VMOffsets::VAL_RAW_SIZE,
        4,
    ));
    for i in 0..ty.params.len() {
        b.ins().stack_store(I64, p[first + i], slot, slot_offset(i));
    }
    let values = b.ins().stack_addr(I64, slot, 0);
    let callback = b.ins().load(I64, readonly_flags(), host_ctx, 0);
    let cb_sig = b.import_signature(array_signature(compiler, true));
    let len_v = b.ins().iconst(I64, len as i64);
    let call = b
        .ins()
        .call_indirect(cb_sig, callback, &[host_ctx, caller_vmctx, values, len_v]);
    let status = b.inst_results(call)[0];
    b.ins().trapnz(status, TrapKind::Host.code());

    let mut results = Vec::with_capacity(ty.results.len());
    for (i, &t) in ty.results.iter().enumerate() {
        results.push(b.ins().stack_load(I64, clif_type(t)?, slot, slot_offset(i)));
    }
    if ty.results.len() > 1 {
        let ret_area = p[2];
        let flags = MemFlagsData::trusted();
        for (i, &r) in results.iter().enumerate() {
            b.ins().store(flags, r, ret_area, slot_offset(i));
        }
        b.ins().return_(&[]);
    } else {
        b.ins().return_(&results);
    }
    b.finalize(compiler.frontend_config());
    Ok(())
}

/// A value of wasm type `t` as the 64 bits of a host word: integers
/// zero-extended, floats as their bit patterns, references as they are.
fn to_word(
    b: &mut FunctionBuilder,
    t: weft_decoder::ValType,
    v: ir::Value,
) -> Result<ir::Value, CompileError> {
    Ok(match clif_type(t)? {
        I32 => b.ins().uextend(I64, v),
        F32 => {
            let w = b.ins().bitcast(I32, MemFlagsData::new(), v);
            b.ins().uextend(I64, w)
        }
        F64 => b.ins().bitcast(I64, MemFlagsData::new(), v),
        _ => v,
    })
}

/// The inverse of [`to_word`]: the value of wasm type `t` in the low bits
/// of `word`.
fn from_word(
    b: &mut FunctionBuilder,
    t: weft_decoder::ValType,
    word: ir::Value,
) -> Result<ir::Value, CompileError> {
    Ok(match clif_type(t)? {
        I32 => b.ins().ireduce(I32, word),
        F32 => {
            let w = b.ins().ireduce(I32, word);
            b.ins().bitcast(F32, MemFlagsData::new(), w)
        }
        F64 => b.ins().bitcast(F64, MemFlagsData::new(), word),
        _ => word,
    })
}

/// Whether functions of type `ty` can use a [direct host
/// trampoline](direct_host_trampoline): every parameter and the result (at
/// most one) fit in 64 bits (no `v128`), and the platform returns a pair of
/// words in registers the same way in Rust's `extern "C"` and Cranelift.
pub fn direct_host_call_supported(ty: &FuncType) -> bool {
    cfg!(all(
        unix,
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) && fits_in_words(ty)
}

/// Whether every value of a call of type `ty` fits in one 64-bit word (no
/// `v128`) and there is at most one result.
fn fits_in_words(ty: &FuncType) -> bool {
    ty.results.len() <= 1
        && ty
            .params
            .iter()
            .chain(ty.results.iter())
            .all(|&t| t != weft_decoder::ValType::V128)
}

/// Builds the direct host trampoline for functions of type `ty` (see
/// [`direct_host_call_supported`]): a `wasm_call` function whose callee
/// vmctx is a host context; it calls the callback in the host context's
/// first word as `extern "C" fn(host_vmctx, caller_vmctx, p0: u64, ..) ->
/// (u64, u64)`, each parameter's bits zero-extended to 64 in a register of
/// its own, and gets back the result's bits and a status. A non-zero status
/// traps with [`TrapKind::Host`]. Nothing goes through memory.
pub(crate) fn direct_host_trampoline(
    compiler: &Compiler,
    ty: &FuncType,
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
) -> Result<(), CompileError> {
    func.signature = wasm_signature(ty, compiler.wasm_call_conv())?;
    let mut b = FunctionBuilder::new(func, fctx);
    let p = entry_block(&mut b);
    let (host_ctx, caller_vmctx) = (p[0], p[1]);
    let first = first_wasm_param(ty);

    let mut cb_sig = Signature::new(compiler.call_conv());
    let mut args = vec![host_ctx, caller_vmctx];
    cb_sig.params.push(AbiParam::new(I64));
    cb_sig.params.push(AbiParam::new(I64));
    for (i, &t) in ty.params.iter().enumerate() {
        let bits = to_word(&mut b, t, p[first + i])?;
        cb_sig.params.push(AbiParam::new(I64));
        args.push(bits);
    }
    cb_sig.returns.push(AbiParam::new(I64));
    cb_sig.returns.push(AbiParam::new(I64));
    let callback = b.ins().load(I64, readonly_flags(), host_ctx, 0);
    let cb_sig = b.import_signature(cb_sig);
    let call = b.ins().call_indirect(cb_sig, callback, &args);
    let (value, status) = (b.inst_results(call)[0], b.inst_results(call)[1]);
    b.ins().trapnz(status, TrapKind::Host.code());
    let mut results = Vec::new();
    if let Some(&t) = ty.results.first() {
        results.push(from_word(&mut b, t, value)?);
    }
    b.ins().return_(&results);
    b.finalize(compiler.frontend_config());
    Ok(())
}

/// The most parameters a [typed entry](typed_entry_trampoline) takes: the
/// integer argument registers left after the funcref on x86-64.
pub const TYPED_ENTRY_MAX_PARAMS: usize = 5;

/// Whether functions of type `ty` can be entered through a [typed
/// entry](typed_entry_trampoline): at most [`TYPED_ENTRY_MAX_PARAMS`]
/// parameters and one result, none a `v128`, on x86-64 Linux (where the
/// runtime's assembly entry that calls it exists).
pub fn typed_entry_supported(ty: &FuncType) -> bool {
    cfg!(all(target_arch = "x86_64", target_os = "linux"))
        && ty.params.len() <= TYPED_ENTRY_MAX_PARAMS
        && fits_in_words(ty)
}

/// Builds the typed entry for functions of type `ty` (see
/// [`typed_entry_supported`]): `extern "C" fn(funcref, p0: u64, ..) -> u64`.
/// It calls the funcref's `wasm_call` with the funcref's vmctx as callee
/// and caller, each parameter made from the low bits of its word (f32/f64
/// from their bit patterns), and returns the result's bits zero-extended
/// (0 without a result). The host's parameters and result stay in
/// registers: no value array in memory, unlike `array_call`.
pub(crate) fn typed_entry_trampoline(
    compiler: &Compiler,
    ty: &FuncType,
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
) -> Result<(), CompileError> {
    let mut sig = Signature::new(compiler.call_conv());
    sig.params.push(AbiParam::new(I64));
    for _ in &ty.params {
        sig.params.push(AbiParam::new(I64));
    }
    sig.returns.push(AbiParam::new(I64));
    func.signature = sig;
    let wasm_sig = wasm_signature(ty, compiler.wasm_call_conv())?;
    let mut b = FunctionBuilder::new(func, fctx);
    let p = entry_block(&mut b);
    let funcref = p[0];
    let flags = readonly_flags();
    let vmctx = b
        .ins()
        .load(I64, flags, funcref, VMOffsets::FUNC_REF_VMCTX as i32);
    let wasm_call = b
        .ins()
        .load(I64, flags, funcref, VMOffsets::FUNC_REF_WASM_CALL as i32);
    let mut args = vec![vmctx, vmctx];
    for (i, &t) in ty.params.iter().enumerate() {
        args.push(from_word(&mut b, t, p[1 + i])?);
    }
    let sig_ref = b.import_signature(wasm_sig);
    let call = b.ins().call_indirect(sig_ref, wasm_call, &args);
    let result = match ty.results.first() {
        None => b.ins().iconst(I64, 0),
        Some(&t) => {
            let v = b.inst_results(call)[0];
            to_word(&mut b, t, v)?
        }
    };
    b.ins().return_(&[result]);
    b.finalize(compiler.frontend_config());
    Ok(())
}
