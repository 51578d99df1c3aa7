//! WebAssembly function bodies to Cranelift IR.
//!
//! One pass over the operators with an explicit value stack and control
//! stack, in the style of the classic `cranelift-wasm` translator:
//!
//! * Locals are Cranelift [`Variable`]s; the frontend builds SSA form.
//! * Every `block`/`if` gets a *destination* block whose parameters are the
//!   construct's results; a `loop` gets a *header* block whose parameters are
//!   its parameters. Branches pass the top stack values as block arguments.
//! * After `br`, `br_table`, `return` and `unreachable` the code is
//!   unreachable until the `else`/`end` that closes the innermost open
//!   construct; unreachable operators are skipped, only counting nesting.
//!
//! This file holds the translator's state, its value stack and the operator
//! dispatch; each family of operators is translated in its own module:
//!
//! * `abi`: wasm types and the `wasm_call` signature in Cranelift terms,
//!   and the flags of loads from runtime structures;
//! * `control`: blocks, loops, `if`, branches, `return`, unreachable code;
//! * `interrupt`: fuel metering and the epoch and interrupt-poll checks;
//! * `calls`: direct, imported and indirect calls, and calls to builtins;
//! * `variables`: locals and globals;
//! * `memory`: bounds-checked loads and stores, `memory.size`/`grow`;
//! * `atomics`: the threads proposal's atomic accesses, wait and notify;
//! * `bulk`: the bulk memory and table operations (builtin calls);
//! * `tables`: table accesses and references;
//! * `numeric`: constants and the numeric operators, driven by a table
//!   that maps each operator to the Cranelift instruction it becomes;
//! * `simd`: 128-bit SIMD and relaxed SIMD, table-driven the same way.

use std::collections::HashMap;

use cranelift_codegen::ir::immediates::{Ieee32, Ieee64, Offset32};
use cranelift_codegen::ir::types::{F32, F64, I32, I64};
use cranelift_codegen::ir::{
    self, AliasRegion, AliasRegionData, FuncRef, GlobalValueData, InstBuilder, InstructionData,
    MemFlagsData, Opcode, SigRef, SourceLoc, TrapCode, Type, Value, ValueDef,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use weft_decoder::wasmparser::Operator;
use weft_decoder::{FunctionBody, Module, ValType};

use crate::builtins::Builtin;
use crate::compiler::{Compiler, Tunables};
use crate::error::CompileError;
use crate::fuel::fuel_cost;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

mod abi;
mod atomics;
mod bulk;
mod calls;
mod control;
mod exceptions;
mod interrupt;
mod memory;
mod numeric;
mod simd;
mod tables;
mod variables;

use abi::wasmparser_type;
pub(crate) use abi::{clif_type, first_wasm_param, readonly_flags, wasm_signature};
use atomics::atomic_op;
use control::{Frame, FrameKind};
use memory::memory_access;
use numeric::numeric_op;
use simd::{simd_access, simd_op};

/// Module-wide state shared by the translation of every function.
pub(crate) struct ModuleEnv<'a> {
    module: &'a Module,
    offsets: &'a VMOffsets,
    tunables: &'a Tunables,
    call_conv: CallConv,
    wasm_call_conv: CallConv,
    frontend: TargetFrontendConfig,
    /// Per defined function: whether it may return with an exception
    /// pending (empty when exceptions are off; see `exceptions::may_throw`).
    may_throw: Vec<bool>,
}

impl<'a> ModuleEnv<'a> {
    pub(crate) fn new(compiler: &'a Compiler, module: &'a Module, offsets: &'a VMOffsets) -> Self {
        ModuleEnv {
            module,
            offsets,
            tunables: compiler.tunables(),
            call_conv: compiler.call_conv(),
            wasm_call_conv: compiler.wasm_call_conv(),
            frontend: compiler.frontend_config(),
            may_throw: if compiler.tunables().exceptions {
                exceptions::may_throw(module)
            } else {
                Vec::new()
            },
        }
    }

    /// Translates defined function `func_index` into `func`.
    pub(crate) fn translate_function(
        &self,
        func_index: u32,
        body: &FunctionBody,
        func: &mut ir::Function,
        fctx: &mut FunctionBuilderContext,
    ) -> Result<(), CompileError> {
        let ty = self.module.func_type(func_index);
        func.signature = wasm_signature(ty, self.wasm_call_conv)?;

        // Prologues check the stack pointer against
        // `vmctx->store_ctx->stack_limit`.
        let vmctx_gv = func.create_global_value(GlobalValueData::VMContext);
        let store_flags = func.dfg.mem_flags.insert_unchecked(readonly_flags());
        let store_gv = func.create_global_value(GlobalValueData::Load {
            base: vmctx_gv,
            offset: Offset32::new(self.offsets.store_ctx() as i32),
            global_type: I64,
            flags: store_flags,
        });
        let limit_flags = func.dfg.mem_flags.insert_unchecked(MemFlagsData::trusted());
        let limit_gv = func.create_global_value(GlobalValueData::Load {
            base: store_gv,
            offset: Offset32::new(VMOffsets::STORE_CTX_STACK_LIMIT as i32),
            global_type: I64,
            flags: limit_flags,
        });
        func.stack_limit = Some(limit_gv);

        let vmctx_region = func.dfg.alias_regions.insert(AliasRegionData {
            user_id: 0,
            description: "vmctx".into(),
        });
        let heap_region = func.dfg.alias_regions.insert(AliasRegionData {
            user_id: 1,
            description: "heap".into(),
        });
        let table_region = func.dfg.alias_regions.insert(AliasRegionData {
            user_id: 2,
            description: "table elements".into(),
        });
        let marks_region = func.dfg.alias_regions.insert(AliasRegionData {
            user_id: 3,
            description: "memory write marks".into(),
        });

        let mut builder = FunctionBuilder::new(func, fctx);
        let entry = builder.create_block();
        builder.append_block_params_for_function_params(entry);
        builder.switch_to_block(entry);
        builder.seal_block(entry);
        let params = builder.block_params(entry).to_vec();
        let vmctx = params[0];
        let ret_area = (ty.results.len() > 1).then(|| params[2]);

        let mut t = FuncTranslator {
            env: self,
            builder,
            vmctx,
            ret_area,
            results: ty.results.clone(),
            locals: Vec::new(),
            stack: Vec::new(),
            control: Vec::new(),
            reachable: true,
            dead_depth: 0,
            direct_funcs: HashMap::new(),
            sigs: HashMap::new(),
            builtin_sigs: [None; Builtin::COUNT],
            store_ctx: None,
            epoch_ptr: None,
            poll_page: None,
            fuel: None,
            fuel_pending: 0,
            vmctx_region,
            heap_region,
            table_region,
            marks_region,
            marked: (None, Vec::new()),
            unwind: None,
            exn_area: None,
        };

        // Parameters, then declared locals (zero-initialised).
        let first = first_wasm_param(ty);
        for (i, &p) in ty.params.iter().enumerate() {
            let clif = clif_type(p)?;
            let var = t.builder.declare_var(clif);
            t.builder.def_var(var, params[first + i]);
            t.locals.push(var);
        }
        for &(count, vt) in &body.locals {
            let clif = clif_type(vt)?;
            let zero = t.zero(clif);
            for _ in 0..count {
                let var = t.builder.declare_var(clif);
                t.builder.def_var(var, zero);
                t.locals.push(var);
            }
        }

        // Interruption checks at entry (and at every loop header).
        t.interrupt_prologue();

        // The function body is an implicit block whose results are returned.
        let exit = t.builder.create_block();
        for &r in ty.results.iter() {
            let clif = clif_type(r)?;
            t.builder.append_block_param(exit, clif);
        }
        t.control.push(Frame {
            kind: FrameKind::Block,
            dest: exit,
            num_params: 0,
            num_results: ty.results.len(),
            stack_base: 0,
            dest_reachable: false,
        });

        let mut reader = self.module.body_reader(body).get_operators_reader()?;
        while !reader.eof() {
            let pos = reader.original_position();
            let op = reader.read()?;
            t.builder.set_srcloc(SourceLoc::new(pos as u32));
            if t.reachable {
                if t.fuel.is_some() {
                    t.fuel_pending += fuel_cost(&op);
                }
                t.operator(op)?;
            } else {
                t.unreachable_operator(&op)?;
            }
            if t.control.is_empty() {
                break;
            }
        }
        if !t.control.is_empty() {
            return Err(CompileError::InvalidBody(format!(
                "function {func_index}: body ends inside a block"
            )));
        }
        t.emit_unwind()?;
        t.builder.seal_all_blocks();
        t.builder.finalize(self.frontend);
        Ok(())
    }
}

/// The translation of one function body.
struct FuncTranslator<'e, 'f> {
    env: &'e ModuleEnv<'e>,
    builder: FunctionBuilder<'f>,
    vmctx: Value,
    ret_area: Option<Value>,
    results: Box<[ValType]>,
    locals: Vec<Variable>,
    stack: Vec<Value>,
    control: Vec<Frame>,
    reachable: bool,
    /// Nesting depth of constructs opened while unreachable.
    dead_depth: u32,
    direct_funcs: HashMap<u32, FuncRef>,
    sigs: HashMap<u32, SigRef>,
    builtin_sigs: [Option<SigRef>; Builtin::COUNT],
    /// `vmctx->store_ctx` (loaded at entry when interruption checks need it).
    store_ctx: Option<Value>,
    /// `store_ctx->epoch_ptr`, with epoch interruption on.
    epoch_ptr: Option<Value>,
    /// `store_ctx->poll_page`, with interrupt polls on.
    poll_page: Option<Value>,
    /// The function's view of `store_ctx->fuel_consumed`, with fuel on: kept
    /// in a variable, written back before calls and returns, re-read after
    /// calls.
    fuel: Option<Variable>,
    /// Fuel of the operators translated since the last flush into `fuel`.
    fuel_pending: u64,
    vmctx_region: AliasRegion,
    heap_region: AliasRegion,
    table_region: AliasRegion,
    /// Memory write marks (see `Tunables::write_marks`): only stored to.
    marks_region: AliasRegion,
    /// The write marks already made in the current block: `(memory,
    /// address operand, offset)` (see `mark_written`).
    marked: (Option<cranelift_codegen::ir::Block>, Vec<(u32, Value, u64)>),
    /// Returns with an exception pending (see `exceptions.rs`); made when
    /// something may throw out of this function.
    unwind: Option<ir::Block>,
    /// The stack area for exception fields (see `exceptions.rs`).
    exn_area: Option<ir::StackSlot>,
}

fn unsupported(what: impl Into<String>) -> CompileError {
    CompileError::Unsupported(what.into())
}

/// A short name for an operator, for error messages.
fn operator_name(op: &Operator<'_>) -> String {
    let s = format!("{op:?}");
    let end = s.find([' ', '{', '(']).unwrap_or(s.len());
    format!("instruction {}", &s[..end])
}

impl FuncTranslator<'_, '_> {
    // ---------------------------------------------------------------- stack

    fn push(&mut self, v: Value) {
        self.stack.push(v);
    }

    fn pop(&mut self) -> Value {
        self.stack.pop().expect("validated: value stack underflow")
    }

    fn peek(&self) -> Value {
        *self.stack.last().expect("validated: value stack underflow")
    }

    fn top(&self, n: usize) -> &[Value] {
        &self.stack[self.stack.len() - n..]
    }

    fn popn(&mut self, n: usize) -> Vec<Value> {
        self.stack.split_off(self.stack.len() - n)
    }

    fn unop(&mut self, f: impl FnOnce(&mut FunctionBuilder, Value) -> Value) {
        let a = self.pop();
        let r = f(&mut self.builder, a);
        self.push(r);
    }

    fn binop(&mut self, f: impl FnOnce(&mut FunctionBuilder, Value, Value) -> Value) {
        let b = self.pop();
        let a = self.pop();
        let r = f(&mut self.builder, a, b);
        self.push(r);
    }

    // --------------------------------------------------------------- values

    fn zero(&mut self, ty: Type) -> Value {
        match ty {
            F32 => self.builder.ins().f32const(Ieee32::with_bits(0)),
            F64 => self.builder.ins().f64const(Ieee64::with_bits(0)),
            simd::V128 => simd::zero(&mut self.builder),
            _ => self.builder.ins().iconst(ty, 0),
        }
    }

    /// The constant value of `v` if it is an `iconst`.
    fn const_of(&self, v: Value) -> Option<i64> {
        let dfg = &self.builder.func.dfg;
        if let ValueDef::Result(inst, _) = dfg.value_def(v)
            && let InstructionData::UnaryImm {
                opcode: Opcode::Iconst,
                imm,
            } = dfg.insts[inst]
        {
            return Some(imm.bits());
        }
        None
    }

    /// Zero-extends an `i32` operand to `i64` (`i64` operands are kept).
    fn widen(&mut self, v: Value) -> Value {
        if self.builder.func.dfg.value_type(v) == I32 {
            self.builder.ins().uextend(I64, v)
        } else {
            v
        }
    }

    fn u32_const(&mut self, x: u32) -> Value {
        self.builder.ins().iconst(I32, i64::from(x))
    }

    fn trap_code(kind: TrapKind) -> TrapCode {
        kind.code()
    }

    // ------------------------------------------------------------ operators

    /// Translates one reachable operator: the table-driven families first
    /// (numeric operators, loads and stores, atomic accesses, SIMD), then the
    /// rest, each handled in the module of its family.
    fn operator(&mut self, op: Operator<'_>) -> Result<(), CompileError> {
        use Operator as O;
        if let Some(numeric) = numeric_op(&op) {
            self.op_numeric(numeric);
            return Ok(());
        }
        if let Some((memarg, access)) = memory_access(&op) {
            return self.op_memory_access(&memarg, access);
        }
        if let Some((memarg, atomic)) = atomic_op(&op) {
            return self.op_atomic(&memarg, atomic);
        }
        if let Some(simd) = simd_op(&op) {
            self.op_simd(simd);
            return Ok(());
        }
        if let Some((memarg, access)) = simd_access(&op) {
            return self.op_simd_access(&memarg, access);
        }
        match op {
            // ---- control
            O::Unreachable => self.op_unreachable(),
            O::Nop => {}
            O::Block { blockty } => self.op_block(blockty)?,
            O::Loop { blockty } => self.op_loop(blockty)?,
            O::If { blockty } => self.op_if(blockty)?,
            O::Else => self.op_else(),
            O::End => self.op_end(),
            O::Br { relative_depth } => self.op_br(relative_depth),
            O::BrIf { relative_depth } => self.op_br_if(relative_depth),
            O::BrOnNull { relative_depth } => self.op_br_on_null(relative_depth),
            O::BrOnNonNull { relative_depth } => self.op_br_on_non_null(relative_depth),
            O::BrTable { targets } => {
                let default = targets.default();
                let list = targets.targets().collect::<Result<Vec<u32>, _>>()?;
                self.op_br_table(&list, default);
            }
            O::Return => self.op_return(),
            O::TryTable { try_table } => self.op_try_table(try_table)?,
            O::Throw { tag_index } => self.op_throw(tag_index)?,
            O::ThrowRef => self.op_throw_ref(),

            // ---- calls
            O::Call { function_index } => self.op_call(function_index)?,
            O::CallIndirect {
                type_index,
                table_index,
            } => self.op_call_indirect(type_index, table_index)?,
            O::ReturnCall { function_index } => self.op_return_call(function_index)?,
            O::ReturnCallIndirect {
                type_index,
                table_index,
            } => self.op_return_call_indirect(type_index, table_index)?,
            O::CallRef { type_index } => self.op_call_ref(type_index)?,
            O::ReturnCallRef { type_index } => self.op_return_call_ref(type_index)?,

            // ---- parametric
            O::Drop => {
                self.pop();
            }
            O::Select => self.op_select(),
            O::TypedSelect { ty } => {
                wasmparser_type(ty)?;
                self.op_select();
            }

            // ---- locals and globals
            O::LocalGet { local_index } => self.op_local_get(local_index),
            O::LocalSet { local_index } => self.op_local_set(local_index),
            O::LocalTee { local_index } => self.op_local_tee(local_index),
            O::GlobalGet { global_index } => self.op_global_get(global_index)?,
            O::GlobalSet { global_index } => self.op_global_set(global_index)?,

            // ---- memory (loads and stores are in `memory_access`)
            O::MemorySize { mem } => self.op_memory_size(mem),
            O::MemoryGrow { mem } => self.op_memory_grow(mem),
            // ---- atomics (accesses, wait and notify are in `atomic_op`)
            O::AtomicFence { .. } => self.op_atomic_fence(),

            // ---- bulk memory and table operations
            O::MemoryCopy { dst_mem, src_mem } => self.op_memory_copy(dst_mem, src_mem),
            O::MemoryFill { mem } => self.op_memory_fill(mem),
            O::MemoryInit { data_index, mem } => self.op_memory_init(data_index, mem),
            O::DataDrop { data_index } => self.op_data_drop(data_index),
            O::TableFill { table } => self.op_table_fill(table),
            O::TableCopy {
                dst_table,
                src_table,
            } => self.op_table_copy(dst_table, src_table),
            O::TableInit { elem_index, table } => self.op_table_init(elem_index, table),
            O::ElemDrop { elem_index } => self.op_elem_drop(elem_index),

            // ---- tables and references
            O::TableGet { table } => self.op_table_get(table),
            O::TableSet { table } => self.op_table_set(table),
            O::TableSize { table } => self.op_table_size(table),
            O::TableGrow { table } => self.op_table_grow(table),
            O::RefNull { .. } => self.op_ref_null(),
            O::RefIsNull => self.op_ref_is_null(),
            O::RefAsNonNull => self.op_ref_as_non_null(),
            O::RefFunc { function_index } => self.op_ref_func(function_index),

            // ---- constants (the other numeric operators are in `numeric_op`)
            O::I32Const { value } => self.op_iconst(I32, i64::from(value)),
            O::I64Const { value } => self.op_iconst(I64, value),
            O::F32Const { value } => self.op_f32const(value.bits()),
            O::F64Const { value } => self.op_f64const(value.bits()),

            other => return Err(unsupported(operator_name(&other))),
        }
        Ok(())
    }

    /// `select` and typed `select`.
    fn op_select(&mut self) {
        let c = self.pop();
        self.binop(|b, x, y| b.ins().select(c, x, y));
    }
}
