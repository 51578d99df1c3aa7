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
//! * `numeric`: constants and the numeric operators.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64, Offset32};
use cranelift_codegen::ir::types::{F32, F64, I8, I16, I32, I64};
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
mod interrupt;
mod memory;
mod numeric;
mod tables;
mod variables;

use abi::wasmparser_type;
pub(crate) use abi::{clif_type, first_wasm_param, readonly_flags, wasm_signature};
use atomics::atomic_rmw_op;
use control::{Frame, FrameKind};
use memory::Ext;

/// Module-wide state shared by the translation of every function.
pub(crate) struct ModuleEnv<'a> {
    module: &'a Module,
    offsets: &'a VMOffsets,
    tunables: &'a Tunables,
    call_conv: CallConv,
    frontend: TargetFrontendConfig,
}

impl<'a> ModuleEnv<'a> {
    pub(crate) fn new(compiler: &'a Compiler, module: &'a Module, offsets: &'a VMOffsets) -> Self {
        ModuleEnv {
            module,
            offsets,
            tunables: compiler.tunables(),
            call_conv: compiler.call_conv(),
            frontend: compiler.frontend_config(),
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
        func.signature = wasm_signature(ty, self.call_conv)?;

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

    /// Translates one reachable operator, in the module of its family.
    fn operator(&mut self, op: Operator<'_>) -> Result<(), CompileError> {
        use Operator as O;
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
            O::BrTable { targets } => {
                let default = targets.default();
                let list = targets.targets().collect::<Result<Vec<u32>, _>>()?;
                self.op_br_table(&list, default);
            }
            O::Return => self.op_return(),

            // ---- calls
            O::Call { function_index } => self.op_call(function_index)?,
            O::CallIndirect {
                type_index,
                table_index,
            } => self.op_call_indirect(type_index, table_index)?,

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

            // ---- memory
            O::I32Load { memarg } => self.op_load(&memarg, I32, Ext::None)?,
            O::I64Load { memarg } => self.op_load(&memarg, I64, Ext::None)?,
            O::F32Load { memarg } => self.op_load(&memarg, F32, Ext::None)?,
            O::F64Load { memarg } => self.op_load(&memarg, F64, Ext::None)?,
            O::I32Load8S { memarg } => self.op_load(&memarg, I32, Ext::S8)?,
            O::I32Load8U { memarg } => self.op_load(&memarg, I32, Ext::U8)?,
            O::I32Load16S { memarg } => self.op_load(&memarg, I32, Ext::S16)?,
            O::I32Load16U { memarg } => self.op_load(&memarg, I32, Ext::U16)?,
            O::I64Load8S { memarg } => self.op_load(&memarg, I64, Ext::S8)?,
            O::I64Load8U { memarg } => self.op_load(&memarg, I64, Ext::U8)?,
            O::I64Load16S { memarg } => self.op_load(&memarg, I64, Ext::S16)?,
            O::I64Load16U { memarg } => self.op_load(&memarg, I64, Ext::U16)?,
            O::I64Load32S { memarg } => self.op_load(&memarg, I64, Ext::S32)?,
            O::I64Load32U { memarg } => self.op_load(&memarg, I64, Ext::U32)?,
            O::I32Store { memarg } => self.op_store(&memarg, 4)?,
            O::I64Store { memarg } => self.op_store(&memarg, 8)?,
            O::F32Store { memarg } => self.op_store(&memarg, 4)?,
            O::F64Store { memarg } => self.op_store(&memarg, 8)?,
            O::I32Store8 { memarg } | O::I64Store8 { memarg } => self.op_store(&memarg, 1)?,
            O::I32Store16 { memarg } | O::I64Store16 { memarg } => self.op_store(&memarg, 2)?,
            O::I64Store32 { memarg } => self.op_store(&memarg, 4)?,
            O::MemorySize { mem } => self.op_memory_size(mem),
            // ---- atomics (threads)
            O::I32AtomicLoad { memarg } => self.op_atomic_load(&memarg, I32, I32)?,
            O::I64AtomicLoad { memarg } => self.op_atomic_load(&memarg, I64, I64)?,
            O::I32AtomicLoad8U { memarg } => self.op_atomic_load(&memarg, I32, I8)?,
            O::I32AtomicLoad16U { memarg } => self.op_atomic_load(&memarg, I32, I16)?,
            O::I64AtomicLoad8U { memarg } => self.op_atomic_load(&memarg, I64, I8)?,
            O::I64AtomicLoad16U { memarg } => self.op_atomic_load(&memarg, I64, I16)?,
            O::I64AtomicLoad32U { memarg } => self.op_atomic_load(&memarg, I64, I32)?,
            O::I32AtomicStore { memarg } => self.op_atomic_store(&memarg, I32)?,
            O::I64AtomicStore { memarg } => self.op_atomic_store(&memarg, I64)?,
            O::I32AtomicStore8 { memarg } | O::I64AtomicStore8 { memarg } => {
                self.op_atomic_store(&memarg, I8)?
            }
            O::I32AtomicStore16 { memarg } | O::I64AtomicStore16 { memarg } => {
                self.op_atomic_store(&memarg, I16)?
            }
            O::I64AtomicStore32 { memarg } => self.op_atomic_store(&memarg, I32)?,
            O::I32AtomicRmwCmpxchg { memarg } => self.op_atomic_cmpxchg(&memarg, I32, I32)?,
            O::I64AtomicRmwCmpxchg { memarg } => self.op_atomic_cmpxchg(&memarg, I64, I64)?,
            O::I32AtomicRmw8CmpxchgU { memarg } => self.op_atomic_cmpxchg(&memarg, I32, I8)?,
            O::I32AtomicRmw16CmpxchgU { memarg } => self.op_atomic_cmpxchg(&memarg, I32, I16)?,
            O::I64AtomicRmw8CmpxchgU { memarg } => self.op_atomic_cmpxchg(&memarg, I64, I8)?,
            O::I64AtomicRmw16CmpxchgU { memarg } => self.op_atomic_cmpxchg(&memarg, I64, I16)?,
            O::I64AtomicRmw32CmpxchgU { memarg } => self.op_atomic_cmpxchg(&memarg, I64, I32)?,
            O::MemoryAtomicNotify { memarg } => self.op_atomic_notify(&memarg)?,
            O::MemoryAtomicWait32 { memarg } => {
                self.op_atomic_wait(&memarg, Builtin::MemoryAtomicWait32)?
            }
            O::MemoryAtomicWait64 { memarg } => {
                self.op_atomic_wait(&memarg, Builtin::MemoryAtomicWait64)?
            }
            O::AtomicFence { .. } => self.op_atomic_fence(),

            O::MemoryGrow { mem } => self.op_memory_grow(mem),

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
            O::RefFunc { function_index } => self.op_ref_func(function_index),

            // ---- constants
            O::I32Const { value } => self.op_iconst(I32, i64::from(value)),
            O::I64Const { value } => self.op_iconst(I64, value),
            O::F32Const { value } => self.op_f32const(value.bits()),
            O::F64Const { value } => self.op_f64const(value.bits()),

            // ---- integer comparisons
            O::I32Eqz | O::I64Eqz => self.unop(|b, x| {
                let c = b.ins().icmp_imm_s(IntCC::Equal, x, 0);
                b.ins().uextend(I32, c)
            }),
            O::I32Eq | O::I64Eq => self.icmp(IntCC::Equal),
            O::I32Ne | O::I64Ne => self.icmp(IntCC::NotEqual),
            O::I32LtS | O::I64LtS => self.icmp(IntCC::SignedLessThan),
            O::I32LtU | O::I64LtU => self.icmp(IntCC::UnsignedLessThan),
            O::I32GtS | O::I64GtS => self.icmp(IntCC::SignedGreaterThan),
            O::I32GtU | O::I64GtU => self.icmp(IntCC::UnsignedGreaterThan),
            O::I32LeS | O::I64LeS => self.icmp(IntCC::SignedLessThanOrEqual),
            O::I32LeU | O::I64LeU => self.icmp(IntCC::UnsignedLessThanOrEqual),
            O::I32GeS | O::I64GeS => self.icmp(IntCC::SignedGreaterThanOrEqual),
            O::I32GeU | O::I64GeU => self.icmp(IntCC::UnsignedGreaterThanOrEqual),

            // ---- float comparisons
            O::F32Eq | O::F64Eq => self.fcmp(FloatCC::Equal),
            O::F32Ne | O::F64Ne => self.fcmp(FloatCC::NotEqual),
            O::F32Lt | O::F64Lt => self.fcmp(FloatCC::LessThan),
            O::F32Gt | O::F64Gt => self.fcmp(FloatCC::GreaterThan),
            O::F32Le | O::F64Le => self.fcmp(FloatCC::LessThanOrEqual),
            O::F32Ge | O::F64Ge => self.fcmp(FloatCC::GreaterThanOrEqual),

            // ---- integer arithmetic
            O::I32Clz | O::I64Clz => self.unop(|b, x| b.ins().clz(x)),
            O::I32Ctz | O::I64Ctz => self.unop(|b, x| b.ins().ctz(x)),
            O::I32Popcnt | O::I64Popcnt => self.unop(|b, x| b.ins().popcnt(x)),
            O::I32Add | O::I64Add => self.binop(|b, x, y| b.ins().iadd(x, y)),
            O::I32Sub | O::I64Sub => self.binop(|b, x, y| b.ins().isub(x, y)),
            O::I32Mul | O::I64Mul => self.binop(|b, x, y| b.ins().imul(x, y)),
            O::I32DivS | O::I64DivS => self.op_div(Opcode::Sdiv),
            O::I32DivU | O::I64DivU => self.op_div(Opcode::Udiv),
            O::I32RemS | O::I64RemS => self.op_div(Opcode::Srem),
            O::I32RemU | O::I64RemU => self.op_div(Opcode::Urem),
            O::I32And | O::I64And => self.binop(|b, x, y| b.ins().band(x, y)),
            O::I32Or | O::I64Or => self.binop(|b, x, y| b.ins().bor(x, y)),
            O::I32Xor | O::I64Xor => self.binop(|b, x, y| b.ins().bxor(x, y)),
            // Cranelift masks shift and rotate amounts like wasm does.
            O::I32Shl | O::I64Shl => self.binop(|b, x, y| b.ins().ishl(x, y)),
            O::I32ShrS | O::I64ShrS => self.binop(|b, x, y| b.ins().sshr(x, y)),
            O::I32ShrU | O::I64ShrU => self.binop(|b, x, y| b.ins().ushr(x, y)),
            O::I32Rotl | O::I64Rotl => self.binop(|b, x, y| b.ins().rotl(x, y)),
            O::I32Rotr | O::I64Rotr => self.binop(|b, x, y| b.ins().rotr(x, y)),

            // ---- float arithmetic (Cranelift's fmin/fmax/nearest follow wasm)
            O::F32Abs | O::F64Abs => self.unop(|b, x| b.ins().fabs(x)),
            O::F32Neg | O::F64Neg => self.unop(|b, x| b.ins().fneg(x)),
            O::F32Ceil | O::F64Ceil => self.unop(|b, x| b.ins().ceil(x)),
            O::F32Floor | O::F64Floor => self.unop(|b, x| b.ins().floor(x)),
            O::F32Trunc | O::F64Trunc => self.unop(|b, x| b.ins().trunc(x)),
            O::F32Nearest | O::F64Nearest => self.unop(|b, x| b.ins().nearest(x)),
            O::F32Sqrt | O::F64Sqrt => self.unop(|b, x| b.ins().sqrt(x)),
            O::F32Add | O::F64Add => self.binop(|b, x, y| b.ins().fadd(x, y)),
            O::F32Sub | O::F64Sub => self.binop(|b, x, y| b.ins().fsub(x, y)),
            O::F32Mul | O::F64Mul => self.binop(|b, x, y| b.ins().fmul(x, y)),
            O::F32Div | O::F64Div => self.binop(|b, x, y| b.ins().fdiv(x, y)),
            O::F32Min | O::F64Min => self.binop(|b, x, y| b.ins().fmin(x, y)),
            O::F32Max | O::F64Max => self.binop(|b, x, y| b.ins().fmax(x, y)),
            O::F32Copysign | O::F64Copysign => self.binop(|b, x, y| b.ins().fcopysign(x, y)),

            // ---- conversions
            O::I32WrapI64 => self.unop(|b, x| b.ins().ireduce(I32, x)),
            O::I64ExtendI32S => self.unop(|b, x| b.ins().sextend(I64, x)),
            O::I64ExtendI32U => self.unop(|b, x| b.ins().uextend(I64, x)),
            O::I32Extend8S => self.sign_extend_low(I8, I32),
            O::I32Extend16S => self.sign_extend_low(I16, I32),
            O::I64Extend8S => self.sign_extend_low(I8, I64),
            O::I64Extend16S => self.sign_extend_low(I16, I64),
            O::I64Extend32S => self.sign_extend_low(I32, I64),
            // Trapping conversions: Cranelift traps with
            // BAD_CONVERSION_TO_INTEGER on NaN and INTEGER_OVERFLOW when
            // out of range, through explicit checks.
            O::I32TruncF32S | O::I32TruncF64S => self.unop(|b, x| b.ins().fcvt_to_sint(I32, x)),
            O::I32TruncF32U | O::I32TruncF64U => self.unop(|b, x| b.ins().fcvt_to_uint(I32, x)),
            O::I64TruncF32S | O::I64TruncF64S => self.unop(|b, x| b.ins().fcvt_to_sint(I64, x)),
            O::I64TruncF32U | O::I64TruncF64U => self.unop(|b, x| b.ins().fcvt_to_uint(I64, x)),
            O::I32TruncSatF32S | O::I32TruncSatF64S => {
                self.unop(|b, x| b.ins().fcvt_to_sint_sat(I32, x))
            }
            O::I32TruncSatF32U | O::I32TruncSatF64U => {
                self.unop(|b, x| b.ins().fcvt_to_uint_sat(I32, x))
            }
            O::I64TruncSatF32S | O::I64TruncSatF64S => {
                self.unop(|b, x| b.ins().fcvt_to_sint_sat(I64, x))
            }
            O::I64TruncSatF32U | O::I64TruncSatF64U => {
                self.unop(|b, x| b.ins().fcvt_to_uint_sat(I64, x))
            }
            O::F32ConvertI32S | O::F32ConvertI64S => {
                self.unop(|b, x| b.ins().fcvt_from_sint(F32, x))
            }
            O::F32ConvertI32U | O::F32ConvertI64U => {
                self.unop(|b, x| b.ins().fcvt_from_uint(F32, x))
            }
            O::F64ConvertI32S | O::F64ConvertI64S => {
                self.unop(|b, x| b.ins().fcvt_from_sint(F64, x))
            }
            O::F64ConvertI32U | O::F64ConvertI64U => {
                self.unop(|b, x| b.ins().fcvt_from_uint(F64, x))
            }
            O::F32DemoteF64 => self.unop(|b, x| b.ins().fdemote(F32, x)),
            O::F64PromoteF32 => self.unop(|b, x| b.ins().fpromote(F64, x)),
            O::I32ReinterpretF32 => self.unop(|b, x| b.ins().bitcast(I32, MemFlagsData::new(), x)),
            O::I64ReinterpretF64 => self.unop(|b, x| b.ins().bitcast(I64, MemFlagsData::new(), x)),
            O::F32ReinterpretI32 => self.unop(|b, x| b.ins().bitcast(F32, MemFlagsData::new(), x)),
            O::F64ReinterpretI64 => self.unop(|b, x| b.ins().bitcast(F64, MemFlagsData::new(), x)),

            other => match atomic_rmw_op(&other) {
                Some((memarg, ty, access, op)) => self.op_atomic_rmw(&memarg, ty, access, op)?,
                None => return Err(unsupported(operator_name(&other))),
            },
        }
        Ok(())
    }

    /// `select` and typed `select`.
    fn op_select(&mut self) {
        let c = self.pop();
        self.binop(|b, x, y| b.ins().select(c, x, y));
    }
}
