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

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64, Offset32};
use cranelift_codegen::ir::types::{F32, F64, I8, I16, I32, I64};
use cranelift_codegen::ir::{
    self, AbiParam, AliasRegion, AliasRegionData, ArgumentPurpose, AtomicRmwOp, Block, BlockArg,
    Endianness, ExtFuncData, ExternalName, FuncRef, GlobalValueData, InstBuilder, InstructionData,
    JumpTableData, MemFlagsData, Opcode, SigRef, Signature, SourceLoc, StackSlotData,
    StackSlotKind, TrapCode, Type, UserExternalName, Value, ValueDef,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use weft_decoder::wasmparser::{self, BlockType, MemArg, MemArgTarget, Operator};
use weft_decoder::{FuncType, FunctionBody, MemoryType, Module, ValType};

use crate::builtins::Builtin;
use crate::compiler::{Compiler, Tunables};
use crate::error::CompileError;
use crate::fuel::fuel_cost;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

/// The Cranelift type of a wasm value type. References are pointers.
pub(crate) fn clif_type(t: ValType) -> Result<Type, CompileError> {
    Ok(match t {
        ValType::I32 => I32,
        ValType::I64 => I64,
        ValType::F32 => F32,
        ValType::F64 => F64,
        ValType::FuncRef | ValType::ExternRef => I64,
        ValType::V128 => {
            return Err(CompileError::Unsupported("v128 values (SIMD)".into()));
        }
    })
}

/// The Cranelift type of a value type as wasmparser spells it.
fn wasmparser_type(t: wasmparser::ValType) -> Result<Type, CompileError> {
    Ok(match t {
        wasmparser::ValType::I32 => I32,
        wasmparser::ValType::I64 => I64,
        wasmparser::ValType::F32 => F32,
        wasmparser::ValType::F64 => F64,
        wasmparser::ValType::Ref(_) => I64,
        wasmparser::ValType::V128 => {
            return Err(CompileError::Unsupported("v128 values (SIMD)".into()));
        }
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
fn funcref_field_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly()
}

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
        let tunables = self.tunables;
        if tunables.epoch_interruption || tunables.consume_fuel || tunables.interrupt_poll {
            let store_ctx = t.builder.ins().load(
                I64,
                readonly_flags(),
                vmctx,
                self.offsets.store_ctx() as i32,
            );
            t.store_ctx = Some(store_ctx);
            if tunables.epoch_interruption {
                let p = t.builder.ins().load(
                    I64,
                    readonly_flags(),
                    store_ctx,
                    VMOffsets::STORE_CTX_EPOCH_PTR as i32,
                );
                t.epoch_ptr = Some(p);
            }
            if tunables.interrupt_poll {
                let p = t.builder.ins().load(
                    I64,
                    readonly_flags(),
                    store_ctx,
                    VMOffsets::STORE_CTX_POLL_PAGE as i32,
                );
                t.poll_page = Some(p);
            }
            if tunables.consume_fuel {
                let var = t.builder.declare_var(I64);
                t.fuel = Some(var);
                t.fuel_reload();
            }
            t.interrupt_checks(true);
        }

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

#[derive(Debug)]
enum FrameKind {
    Block,
    Loop {
        header: Block,
    },
    If {
        else_block: Block,
        /// The block's parameter values, re-pushed for the `else` arm.
        params: Vec<Value>,
        has_else: bool,
    },
}

#[derive(Debug)]
struct Frame {
    kind: FrameKind,
    /// The block following `end`; its parameters are the results.
    dest: Block,
    num_params: usize,
    num_results: usize,
    /// Stack height below this construct's parameters.
    stack_base: usize,
    /// Whether anything branches (or falls through) to `dest`.
    dest_reachable: bool,
}

/// What a call calls.
#[derive(Clone, Copy)]
enum Callee {
    /// A defined function of this module, by defined index: a direct call.
    Direct(u32),
    /// Through a `*const VMFuncRef` (imports and `call_indirect`).
    FuncRef(Value),
}

/// Size/sign of a narrow load.
#[derive(Clone, Copy)]
enum Ext {
    None,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
}

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

    fn icmp(&mut self, cc: IntCC) {
        self.binop(|b, x, y| {
            let c = b.ins().icmp(cc, x, y);
            b.ins().uextend(I32, c)
        });
    }

    fn fcmp(&mut self, cc: FloatCC) {
        self.binop(|b, x, y| {
            let c = b.ins().fcmp(cc, x, y);
            b.ins().uextend(I32, c)
        });
    }

    fn zero(&mut self, ty: Type) -> Value {
        match ty {
            F32 => self.builder.ins().f32const(Ieee32::with_bits(0)),
            F64 => self.builder.ins().f64const(Ieee64::with_bits(0)),
            _ => self.builder.ins().iconst(ty, 0),
        }
    }

    fn block_args(values: &[Value]) -> Vec<BlockArg> {
        values.iter().copied().map(BlockArg::from).collect()
    }

    fn jump(&mut self, block: Block, values: &[Value]) {
        self.fuel_flush();
        let args = Self::block_args(values);
        self.builder.ins().jump(block, &args);
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

    fn trap_code(kind: TrapKind) -> TrapCode {
        kind.code()
    }

    // -------------------------------------------------------------- control

    fn block_type(&self, bt: BlockType) -> Result<(Vec<Type>, Vec<Type>), CompileError> {
        Ok(match bt {
            BlockType::Empty => (vec![], vec![]),
            BlockType::Type(t) => (vec![], vec![wasmparser_type(t)?]),
            BlockType::FuncType(i) => {
                let ft = &self.env.module.types[i as usize];
                let p = ft
                    .params
                    .iter()
                    .map(|&t| clif_type(t))
                    .collect::<Result<_, _>>()?;
                let r = ft
                    .results
                    .iter()
                    .map(|&t| clif_type(t))
                    .collect::<Result<_, _>>()?;
                (p, r)
            }
        })
    }

    fn new_block_with(&mut self, types: &[Type]) -> Block {
        let b = self.builder.create_block();
        for &t in types {
            self.builder.append_block_param(b, t);
        }
        b
    }

    /// Where a branch to relative depth `depth` goes, and with how many values.
    fn branch_target(&mut self, depth: u32) -> (Block, usize) {
        let i = self.control.len() - 1 - depth as usize;
        let frame = &mut self.control[i];
        match frame.kind {
            FrameKind::Loop { header } => (header, frame.num_params),
            _ => {
                frame.dest_reachable = true;
                (frame.dest, frame.num_results)
            }
        }
    }

    fn emit_return(&mut self, values: &[Value]) {
        self.fuel_save();
        if let Some(area) = self.ret_area {
            let flags = MemFlagsData::trusted();
            for (i, &v) in values.iter().enumerate() {
                self.builder.ins().store(
                    flags,
                    v,
                    area,
                    (i as u32 * VMOffsets::VAL_RAW_SIZE) as i32,
                );
            }
            self.builder.ins().return_(&[]);
        } else {
            self.builder.ins().return_(values);
        }
    }

    fn op_block(&mut self, bt: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_type(bt)?;
        let dest = self.new_block_with(&results);
        self.control.push(Frame {
            kind: FrameKind::Block,
            dest,
            num_params: params.len(),
            num_results: results.len(),
            stack_base: self.stack.len() - params.len(),
            dest_reachable: false,
        });
        Ok(())
    }

    fn op_loop(&mut self, bt: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_type(bt)?;
        let header = self.new_block_with(&params);
        let dest = self.new_block_with(&results);
        let args = self.popn(params.len());
        self.jump(header, &args);
        self.builder.switch_to_block(header);
        let header_params = self.builder.block_params(header).to_vec();
        self.interrupt_checks(false);
        self.stack.extend(header_params);
        self.control.push(Frame {
            kind: FrameKind::Loop { header },
            dest,
            num_params: params.len(),
            num_results: results.len(),
            stack_base: self.stack.len() - params.len(),
            dest_reachable: false,
        });
        Ok(())
    }

    fn op_if(&mut self, bt: BlockType) -> Result<(), CompileError> {
        let cond = self.pop();
        let (params, results) = self.block_type(bt)?;
        let then_block = self.builder.create_block();
        let else_block = self.builder.create_block();
        let dest = self.new_block_with(&results);
        self.fuel_flush();
        self.builder
            .ins()
            .brif(cond, then_block, &[], else_block, &[]);
        self.builder.seal_block(then_block);
        self.builder.seal_block(else_block);
        self.builder.switch_to_block(then_block);
        let param_values = self.top(params.len()).to_vec();
        self.control.push(Frame {
            kind: FrameKind::If {
                else_block,
                params: param_values,
                has_else: false,
            },
            dest,
            num_params: params.len(),
            num_results: results.len(),
            stack_base: self.stack.len() - params.len(),
            dest_reachable: false,
        });
        Ok(())
    }

    fn op_else(&mut self) {
        let reachable = self.reachable;
        let frame = self.control.last_mut().expect("validated: else inside if");
        let FrameKind::If {
            else_block,
            ref params,
            ref mut has_else,
        } = frame.kind
        else {
            unreachable!("validated: else closes an if");
        };
        *has_else = true;
        let params = params.clone();
        let (dest, n, base) = (frame.dest, frame.num_results, frame.stack_base);
        if reachable {
            frame.dest_reachable = true;
            let results = self.top(n).to_vec();
            self.jump(dest, &results);
        }
        self.stack.truncate(base);
        self.stack.extend(params);
        self.builder.switch_to_block(else_block);
        self.reachable = true;
    }

    fn op_end(&mut self) {
        let mut frame = self.control.pop().expect("validated: end closes a block");
        if self.reachable {
            frame.dest_reachable = true;
            let results = self.top(frame.num_results).to_vec();
            self.jump(frame.dest, &results);
        }
        match frame.kind {
            FrameKind::If {
                else_block,
                params,
                has_else: false,
            } => {
                // An `if` without `else` passes its parameters through.
                self.builder.switch_to_block(else_block);
                self.jump(frame.dest, &params);
                frame.dest_reachable = true;
            }
            FrameKind::Loop { header } => self.builder.seal_block(header),
            _ => {}
        }
        self.stack.truncate(frame.stack_base);
        if frame.dest_reachable {
            self.builder.switch_to_block(frame.dest);
            self.builder.seal_block(frame.dest);
            let results = self.builder.block_params(frame.dest).to_vec();
            if self.control.is_empty() {
                // The end of the function body.
                self.emit_return(&results);
            } else {
                self.stack.extend(results);
            }
            self.reachable = true;
        } else {
            self.reachable = false;
        }
    }

    fn op_br(&mut self, depth: u32) {
        let (target, n) = self.branch_target(depth);
        let args = self.top(n).to_vec();
        self.jump(target, &args);
        self.reachable = false;
    }

    fn op_br_if(&mut self, depth: u32) {
        let cond = self.pop();
        let (target, n) = self.branch_target(depth);
        let args = Self::block_args(self.top(n));
        let next = self.builder.create_block();
        self.fuel_flush();
        self.builder.ins().brif(cond, target, &args, next, &[]);
        self.builder.seal_block(next);
        self.builder.switch_to_block(next);
    }

    fn op_br_table(&mut self, targets: &[u32], default: u32) {
        let index = self.pop();
        let (def_block, n) = self.branch_target(default);
        let args = Self::block_args(self.top(n));
        let def_call = self.builder.func.dfg.block_call(def_block, &args);
        let mut calls = Vec::with_capacity(targets.len());
        for &depth in targets {
            let (block, _) = self.branch_target(depth);
            calls.push(self.builder.func.dfg.block_call(block, &args));
        }
        let jt = self
            .builder
            .create_jump_table(JumpTableData::new(def_call, &calls));
        self.fuel_flush();
        self.builder.ins().br_table(index, jt);
        self.reachable = false;
    }

    /// Skips an operator in unreachable code, tracking nesting.
    fn unreachable_operator(&mut self, op: &Operator<'_>) -> Result<(), CompileError> {
        debug_assert_eq!(self.fuel_pending, 0, "fuel left unflushed");
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                self.dead_depth += 1;
            }
            Operator::Else if self.dead_depth == 0 => self.op_else(),
            Operator::End if self.dead_depth == 0 => self.op_end(),
            Operator::End => self.dead_depth -= 1,
            _ => {}
        }
        Ok(())
    }

    // ---------------------------------------------------------- interruption

    fn store_ctx_flags(&self) -> MemFlagsData {
        MemFlagsData::trusted().with_alias_region(Some(self.vmctx_region))
    }

    /// Adds the fuel of the operators translated since the last flush to
    /// the fuel variable. Called before every branch, call and return, so
    /// that each block starts with nothing pending.
    ///
    /// A segment that overdraws the fuel (`fuel_consumed > 0` after adding
    /// its cost) calls `OutOfFuel` right there, so a call given one unit less
    /// than it needs always traps, while exactly enough fuel ends at 0.
    fn fuel_flush(&mut self) {
        if let Some(var) = self.fuel
            && self.fuel_pending != 0
        {
            let v = self.builder.use_var(var);
            let v = self.builder.ins().iadd_imm_s(v, self.fuel_pending as i64);
            self.builder.def_var(var, v);
            self.fuel_pending = 0;
            let over = self
                .builder
                .ins()
                .icmp_imm_s(IntCC::SignedGreaterThan, v, 0);
            self.cold_builtin_call(over, Builtin::OutOfFuel);
        }
    }

    /// Flushes and writes the fuel variable to `store_ctx->fuel_consumed`
    /// (before calls and returns).
    fn fuel_save(&mut self) {
        self.fuel_flush();
        if let (Some(var), Some(store_ctx)) = (self.fuel, self.store_ctx) {
            let v = self.builder.use_var(var);
            let f = self.store_ctx_flags();
            self.builder
                .ins()
                .store(f, v, store_ctx, VMOffsets::STORE_CTX_FUEL_CONSUMED as i32);
        }
    }

    /// Re-reads `store_ctx->fuel_consumed` into the fuel variable (at entry
    /// and after calls).
    fn fuel_reload(&mut self) {
        if let (Some(var), Some(store_ctx)) = (self.fuel, self.store_ctx) {
            let f = self.store_ctx_flags();
            let v = self.builder.ins().load(
                I64,
                f,
                store_ctx,
                VMOffsets::STORE_CTX_FUEL_CONSUMED as i32,
            );
            self.builder.def_var(var, v);
        }
    }

    /// The checks at function entry and loop headers: fuel, then epoch,
    /// then the interrupt poll (at loop headers only: at entry the
    /// prologue's stack-limit check does its job, because an interrupt also
    /// raises the store's stack limit so that the next prologue traps; the
    /// runtime reports such a trap as an interrupt).
    fn interrupt_checks(&mut self, entry: bool) {
        if let Some(page) = self.poll_page.filter(|_| !entry) {
            // A load whose only effect is that it may trap: the runtime
            // interrupts by making the page unreadable. It must be an atomic
            // load: Cranelift merges a plain load with an earlier one from
            // the same address (it assumes protections never change), which
            // removed the poll from loop headers. An atomic load is never
            // merged, moved or removed, and on x86-64 it is still one `mov`.
            let flags =
                MemFlagsData::new().with_trap_code(Some(Self::trap_code(TrapKind::Interrupt)));
            self.builder.ins().atomic_load(I8, flags, page);
        }
        if let Some(var) = self.fuel {
            debug_assert_eq!(self.fuel_pending, 0);
            let v = self.builder.use_var(var);
            let out = self
                .builder
                .ins()
                .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, v, 0);
            self.cold_builtin_call(out, Builtin::OutOfFuel);
        }
        if let (Some(epoch_ptr), Some(store_ctx)) = (self.epoch_ptr, self.store_ctx) {
            // Plain loads, re-done at every check: the slow path's call
            // makes every check point a new memory state, so they are
            // never merged with an earlier load.
            let f = MemFlagsData::trusted();
            let epoch = self.builder.ins().load(I64, f, epoch_ptr, 0);
            let deadline = self.builder.ins().load(
                I64,
                f,
                store_ctx,
                VMOffsets::STORE_CTX_EPOCH_DEADLINE as i32,
            );
            let hit = self
                .builder
                .ins()
                .icmp(IntCC::UnsignedGreaterThanOrEqual, epoch, deadline);
            self.cold_builtin_call(hit, Builtin::EpochInterrupt);
        }
    }

    /// If `cond`, calls status-returning builtin `b` (with no arguments
    /// beyond the vmctx) in a cold block, trapping on a non-zero status.
    fn cold_builtin_call(&mut self, cond: Value, b: Builtin) {
        let slow = self.builder.create_block();
        let cont = self.builder.create_block();
        self.builder.set_cold_block(slow);
        self.builder.ins().brif(cond, slow, &[], cont, &[]);
        self.builder.seal_block(slow);
        self.builder.switch_to_block(slow);
        self.call_builtin_checked(b, &[]);
        self.builder.ins().jump(cont, &[]);
        self.builder.seal_block(cont);
        self.builder.switch_to_block(cont);
    }

    // ---------------------------------------------------------------- calls

    fn signature_for_type(&mut self, type_index: u32) -> Result<SigRef, CompileError> {
        if let Some(&s) = self.sigs.get(&type_index) {
            return Ok(s);
        }
        let ty = &self.env.module.types[type_index as usize];
        let sig = wasm_signature(ty, self.env.call_conv)?;
        let s = self.builder.import_signature(sig);
        self.sigs.insert(type_index, s);
        Ok(s)
    }

    fn op_call(&mut self, func_index: u32) -> Result<(), CompileError> {
        let module = self.env.module;
        let type_index = module.functions[func_index as usize];
        let callee = if module.is_imported_func(func_index) {
            let ro = readonly_flags();
            let funcref = self.builder.ins().load(
                I64,
                ro,
                self.vmctx,
                self.env.offsets.imported_func(func_index) as i32,
            );
            Callee::FuncRef(funcref)
        } else {
            Callee::Direct(func_index - module.num_imported_funcs)
        };
        self.emit_call(type_index, callee)
    }

    /// `call_indirect (type type_index) table`: checks the index against the
    /// table's length (`UndefinedElement`), the element for null
    /// (`IndirectCallToNull`) and the callee's canonical type id against
    /// ours (`BadSignature`), then calls through the funcref.
    fn op_call_indirect(&mut self, type_index: u32, table: u32) -> Result<(), CompileError> {
        let index = self.pop();
        let addr = self.table_elem_addr(table, index, TrapKind::UndefinedElement);
        let f = self.table_elem_flags();
        let funcref = self.builder.ins().load(I64, f, addr, 0);
        self.builder
            .ins()
            .trapz(funcref, Self::trap_code(TrapKind::IndirectCallToNull));
        let actual = self.builder.ins().load(
            I32,
            funcref_field_flags(),
            funcref,
            VMOffsets::FUNC_REF_TYPE_ID as i32,
        );
        let expected = self.builder.ins().load(
            I32,
            readonly_flags(),
            self.vmctx,
            self.env.offsets.type_ids(type_index) as i32,
        );
        let mismatch = self.builder.ins().icmp(IntCC::NotEqual, actual, expected);
        self.builder
            .ins()
            .trapnz(mismatch, Self::trap_code(TrapKind::BadSignature));
        self.emit_call(type_index, Callee::FuncRef(funcref))
    }

    /// Pops the arguments of a call to a function of type `type_index`,
    /// calls `callee` and pushes its results.
    fn emit_call(&mut self, type_index: u32, callee: Callee) -> Result<(), CompileError> {
        let ty = &self.env.module.types[type_index as usize];
        let (nparams, results) = (ty.params.len(), ty.results.clone());
        let sig = self.signature_for_type(type_index)?;
        let args = self.popn(nparams);

        let ret_slot = (results.len() > 1).then(|| {
            self.builder.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                results.len() as u32 * VMOffsets::VAL_RAW_SIZE,
                4,
            ))
        });
        let mut call_args = Vec::with_capacity(args.len() + 3);
        call_args.push(self.vmctx); // the callee's, replaced below for funcrefs
        call_args.push(self.vmctx);
        if let Some(slot) = ret_slot {
            let addr = self.builder.ins().stack_addr(I64, slot, 0);
            call_args.push(addr);
        }
        call_args.extend_from_slice(&args);

        let inst = match callee {
            Callee::FuncRef(funcref) => {
                self.fuel_save();
                let ro = funcref_field_flags();
                let code =
                    self.builder
                        .ins()
                        .load(I64, ro, funcref, VMOffsets::FUNC_REF_WASM_CALL as i32);
                let callee_vmctx =
                    self.builder
                        .ins()
                        .load(I64, ro, funcref, VMOffsets::FUNC_REF_VMCTX as i32);
                call_args[0] = callee_vmctx;
                self.builder.ins().call_indirect(sig, code, &call_args)
            }
            Callee::Direct(defined) => {
                let fref = match self.direct_funcs.get(&defined) {
                    Some(&f) => f,
                    None => {
                        let name = self
                            .builder
                            .func
                            .declare_imported_user_function(UserExternalName::new(0, defined));
                        let f = self.builder.import_function(ExtFuncData {
                            name: ExternalName::User(name),
                            signature: sig,
                            colocated: true,
                            patchable: false,
                        });
                        self.direct_funcs.insert(defined, f);
                        f
                    }
                };
                self.fuel_save();
                self.builder.ins().call(fref, &call_args)
            }
        };
        self.fuel_reload();

        if let Some(slot) = ret_slot {
            for (i, &r) in results.iter().enumerate() {
                let t = clif_type(r)?;
                let v = self.builder.ins().stack_load(
                    I64,
                    t,
                    slot,
                    (i as u32 * VMOffsets::VAL_RAW_SIZE) as i32,
                );
                self.push(v);
            }
        } else {
            let rs = self.builder.inst_results(inst).to_vec();
            self.stack.extend(rs);
        }
        Ok(())
    }

    // -------------------------------------------------------------- globals

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

    fn op_global_get(&mut self, index: u32) -> Result<(), CompileError> {
        let gt = self.env.module.globals[index as usize];
        let ty = clif_type(gt.ty)?;
        let ptr = self.global_ptr(index);
        let flags = self.global_flags(gt.mutable);
        let v = self.builder.ins().load(ty, flags, ptr, 0);
        self.push(v);
        Ok(())
    }

    fn op_global_set(&mut self, index: u32) -> Result<(), CompileError> {
        let gt = self.env.module.globals[index as usize];
        clif_type(gt.ty)?;
        let v = self.pop();
        let ptr = self.global_ptr(index);
        let flags = self.global_flags(true);
        self.builder.ins().store(flags, v, ptr, 0);
        Ok(())
    }

    // --------------------------------------------------------------- memory

    fn memory_type(&self, index: u32) -> MemoryType {
        self.env.module.memories[index as usize]
    }

    /// Whether the base pointer of memory `index` may change while code runs.
    fn memory_may_move(&self, mty: &MemoryType) -> bool {
        self.env.tunables.memory_may_move && !mty.shared
    }

    /// `vmctx->memories[index]`: the memory's `VMMemoryDefinition`.
    fn memory_def(&mut self, index: u32) -> Value {
        let off = self.env.offsets.memory(index) as i32;
        self.builder
            .ins()
            .load(I64, readonly_flags(), self.vmctx, off)
    }

    fn memory_base(&mut self, def: Value, mty: &MemoryType) -> Value {
        let flags = if self.memory_may_move(mty) {
            MemFlagsData::trusted().with_alias_region(Some(self.vmctx_region))
        } else {
            readonly_flags()
        };
        self.builder
            .ins()
            .load(I64, flags, def, VMOffsets::MEMORY_BASE as i32)
    }

    /// The memory's current length in bytes. Shared memories are read
    /// atomically (the length is published by growers with `Release`).
    fn memory_length(&mut self, def: Value, mty: &MemoryType) -> Value {
        if mty.shared {
            let p = self
                .builder
                .ins()
                .iadd_imm_s(def, i64::from(VMOffsets::MEMORY_CURRENT_LENGTH));
            self.builder
                .ins()
                .atomic_load(I64, MemFlagsData::trusted(), p)
        } else {
            let flags = MemFlagsData::trusted().with_alias_region(Some(self.vmctx_region));
            self.builder
                .ins()
                .load(I64, flags, def, VMOffsets::MEMORY_CURRENT_LENGTH as i32)
        }
    }

    fn heap_flags(&self) -> MemFlagsData {
        MemFlagsData::new()
            .with_endianness(Endianness::Little)
            .with_trap_code(Some(TrapKind::MemoryOutOfBounds.code()))
            .with_alias_region(Some(self.heap_region))
    }

    /// The memory a `memarg` addresses.
    fn memarg_memory(memarg: &MemArg) -> Result<u32, CompileError> {
        match memarg.target {
            MemArgTarget::Memory(m) => Ok(m),
            MemArgTarget::Array(_) => Err(unsupported("GC array accesses")),
        }
    }

    /// Pops the address operand of an access to memory `mem` and returns it
    /// as an `i64` (zero-extended for 32-bit memories).
    fn pop_index(&mut self, mty: &MemoryType) -> Value {
        let index = self.pop();
        if mty.memory64 {
            index
        } else {
            self.builder.ins().uextend(I64, index)
        }
    }

    /// Pops the address operand of an access of `size` bytes and returns the
    /// native address and the static offset to add to it, after the bounds
    /// check this access needs.
    fn heap_addr(&mut self, memarg: &MemArg, size: u32) -> Result<(Value, i32), CompileError> {
        let mem = Self::memarg_memory(memarg)?;
        let mty = self.memory_type(mem);
        let index = self.pop_index(&mty);
        Ok(self.bounds_checked_addr(mem, &mty, index, memarg.offset, size))
    }

    /// Checks an access of `size` bytes at `index + offset` (`index` an
    /// `i64`) against memory `mem`'s bounds (unless guard pages make the
    /// check unnecessary) and returns the native address and the static
    /// offset to add to it.
    fn bounds_checked_addr(
        &mut self,
        mem: u32,
        mty: &MemoryType,
        index: Value,
        offset: u64,
        size: u32,
    ) -> (Value, i32) {
        let def = self.memory_def(mem);
        let tunables = self.env.tunables;
        let end_offset = offset.checked_add(u64::from(size));
        let elide = !mty.memory64
            && mty.page_size_log2 >= 16
            && tunables.memory_reservation >= 1 << 32
            && end_offset.is_some_and(|e| e <= tunables.memory_guard_size);
        if !elide {
            let oob = Self::trap_code(TrapKind::MemoryOutOfBounds);
            match end_offset {
                Some(end_offset) => {
                    let length = self.memory_length(def, mty);
                    let end = if mty.memory64 {
                        let k = self.builder.ins().iconst(I64, end_offset as i64);
                        self.builder.ins().uadd_overflow_trap(index, k, oob)
                    } else {
                        // Cannot overflow: both are below 2^33.
                        self.builder.ins().iadd_imm_s(index, end_offset as i64)
                    };
                    let out = self
                        .builder
                        .ins()
                        .icmp(IntCC::UnsignedGreaterThan, end, length);
                    self.builder.ins().trapnz(out, oob);
                }
                None => {
                    // offset + size > u64::MAX: always out of bounds.
                    let one = self.builder.ins().iconst(I32, 1);
                    self.builder.ins().trapnz(one, oob);
                }
            }
        }
        let base = self.memory_base(def, mty);
        let addr = self.builder.ins().iadd(base, index);
        match i32::try_from(offset) {
            Ok(off) => (addr, off),
            Err(_) => {
                let addr = self.builder.ins().iadd_imm_s(addr, offset as i64);
                (addr, 0)
            }
        }
    }

    fn op_load(&mut self, memarg: &MemArg, ty: Type, ext: Ext) -> Result<(), CompileError> {
        let size = match ext {
            Ext::None => ty.bytes(),
            Ext::S8 | Ext::U8 => 1,
            Ext::S16 | Ext::U16 => 2,
            Ext::S32 | Ext::U32 => 4,
        };
        let (addr, off) = self.heap_addr(memarg, size)?;
        let f = self.heap_flags();
        let ins = self.builder.ins();
        let v = match ext {
            Ext::None => ins.load(ty, f, addr, off),
            Ext::S8 => ins.sload8(ty, f, addr, off),
            Ext::U8 => ins.uload8(ty, f, addr, off),
            Ext::S16 => ins.sload16(ty, f, addr, off),
            Ext::U16 => ins.uload16(ty, f, addr, off),
            Ext::S32 => ins.sload32(f, addr, off),
            Ext::U32 => ins.uload32(f, addr, off),
        };
        self.push(v);
        Ok(())
    }

    fn op_store(&mut self, memarg: &MemArg, size: u32) -> Result<(), CompileError> {
        let v = self.pop();
        let (addr, off) = self.heap_addr(memarg, size)?;
        let f = self.heap_flags();
        let full = self.builder.func.dfg.value_type(v).bytes();
        let ins = self.builder.ins();
        match size {
            _ if size == full => ins.store(f, v, addr, off),
            1 => ins.istore8(f, v, addr, off),
            2 => ins.istore16(f, v, addr, off),
            4 => ins.istore32(f, v, addr, off),
            _ => unreachable!("store width"),
        };
        Ok(())
    }

    // -------------------------------------------------------------- atomics

    /// Pops the address operand of an atomic access of `size` bytes and
    /// returns the native address, after the checks in the contract's
    /// order: the effective address must be a multiple of `size`
    /// (`UnalignedAtomic`), then in bounds exactly as for ordinary accesses
    /// (`MemoryOutOfBounds`: an explicit check, or a fault in the guard
    /// region recorded as a trap site on the atomic instruction itself).
    fn atomic_addr(&mut self, memarg: &MemArg, size: u32) -> Result<Value, CompileError> {
        let mem = Self::memarg_memory(memarg)?;
        let mty = self.memory_type(mem);
        let index = self.pop_index(&mty);
        self.alignment_check(index, memarg.offset, size);
        let (addr, off) = self.bounds_checked_addr(mem, &mty, index, memarg.offset, size);
        Ok(if off == 0 {
            addr
        } else {
            self.builder.ins().iadd_imm_s(addr, i64::from(off))
        })
    }

    /// The constant value of an address operand, looking through the
    /// zero extension of a 32-bit index.
    fn const_index(&self, v: Value) -> Option<i64> {
        let dfg = &self.builder.func.dfg;
        if let ValueDef::Result(inst, _) = dfg.value_def(v)
            && let InstructionData::Unary {
                opcode: Opcode::Uextend,
                arg,
            } = dfg.insts[inst]
        {
            return self.const_of(arg);
        }
        self.const_of(v)
    }

    /// Traps with `UnalignedAtomic` unless `index + offset` is a multiple of
    /// `size` (a power of two). Only the low bits matter and `size` divides
    /// 2^64, so the sum is taken modulo 2^64 without an overflow check (an
    /// effective address past 2^64 is out of bounds anyway).
    fn alignment_check(&mut self, index: Value, offset: u64, size: u32) {
        let mask = u64::from(size) - 1;
        if mask == 0 {
            return;
        }
        let low = offset & mask;
        if let Some(c) = self.const_index(index)
            && (c as u64).wrapping_add(low) & mask == 0
        {
            return;
        }
        let ea_low = if low == 0 {
            index
        } else {
            self.builder.ins().iadd_imm_s(index, low as i64)
        };
        let misaligned = self.builder.ins().band_imm_u(ea_low, mask as i64);
        self.builder
            .ins()
            .trapnz(misaligned, Self::trap_code(TrapKind::UnalignedAtomic));
    }

    /// Narrows `v` to `access` (a no-op when it already has that type).
    fn narrow(&mut self, v: Value, access: Type) -> Value {
        if self.builder.func.dfg.value_type(v) == access {
            v
        } else {
            self.builder.ins().ireduce(access, v)
        }
    }

    /// Zero-extends `v` to `ty` (a no-op when it already has that type).
    fn zero_extend(&mut self, v: Value, ty: Type) -> Value {
        if self.builder.func.dfg.value_type(v) == ty {
            v
        } else {
            self.builder.ins().uextend(ty, v)
        }
    }

    /// `t.atomic.load{N}_u`: a sequentially consistent load of `access`
    /// bytes, zero-extended to `ty`.
    fn op_atomic_load(
        &mut self,
        memarg: &MemArg,
        ty: Type,
        access: Type,
    ) -> Result<(), CompileError> {
        let addr = self.atomic_addr(memarg, access.bytes())?;
        let f = self.heap_flags();
        let v = self.builder.ins().atomic_load(access, f, addr);
        let v = self.zero_extend(v, ty);
        self.push(v);
        Ok(())
    }

    /// `t.atomic.store{N}`: stores the low `access` bytes of the operand.
    fn op_atomic_store(&mut self, memarg: &MemArg, access: Type) -> Result<(), CompileError> {
        let v = self.pop();
        let addr = self.atomic_addr(memarg, access.bytes())?;
        let v = self.narrow(v, access);
        let f = self.heap_flags();
        self.builder.ins().atomic_store(f, v, addr);
        Ok(())
    }

    /// `t.atomic.rmw{N}.op{_u}`: returns the old value, zero-extended.
    fn op_atomic_rmw(
        &mut self,
        memarg: &MemArg,
        ty: Type,
        access: Type,
        op: AtomicRmwOp,
    ) -> Result<(), CompileError> {
        let x = self.pop();
        let addr = self.atomic_addr(memarg, access.bytes())?;
        let x = self.narrow(x, access);
        let f = self.heap_flags();
        let old = self.builder.ins().atomic_rmw(access, f, op, addr, x);
        let old = self.zero_extend(old, ty);
        self.push(old);
        Ok(())
    }

    /// `t.atomic.rmw{N}.cmpxchg{_u}`: compares with the expected operand
    /// wrapped to `access` bytes, returns the old value zero-extended.
    fn op_atomic_cmpxchg(
        &mut self,
        memarg: &MemArg,
        ty: Type,
        access: Type,
    ) -> Result<(), CompileError> {
        let replacement = self.pop();
        let expected = self.pop();
        let addr = self.atomic_addr(memarg, access.bytes())?;
        let expected = self.narrow(expected, access);
        let replacement = self.narrow(replacement, access);
        let f = self.heap_flags();
        let old = self
            .builder
            .ins()
            .atomic_cas(f, addr, expected, replacement);
        let old = self.zero_extend(old, ty);
        self.push(old);
        Ok(())
    }

    /// Pops the address operand of `memory.atomic.wait*`/`notify` and returns
    /// the memory and the effective address (index + offset, an `i64`) for
    /// the builtin, which does the alignment, shared and bounds checks. A
    /// memory64 effective address past 2^64 traps here (out of bounds).
    fn atomic_effective_addr(&mut self, memarg: &MemArg) -> Result<(u32, Value), CompileError> {
        let mem = Self::memarg_memory(memarg)?;
        let mty = self.memory_type(mem);
        let index = self.pop_index(&mty);
        let offset = memarg.offset;
        let ea = if offset == 0 {
            index
        } else if mty.memory64 {
            let k = self.builder.ins().iconst(I64, offset as i64);
            self.builder.ins().uadd_overflow_trap(
                index,
                k,
                Self::trap_code(TrapKind::MemoryOutOfBounds),
            )
        } else {
            // Cannot overflow: both are below 2^32.
            self.builder.ins().iadd_imm_s(index, offset as i64)
        };
        Ok((mem, ea))
    }

    /// Calls wait/notify builtin `b` with `(mem, ea, rest...)`, traps with
    /// `Host` on `u64::MAX` and pushes the low 32 bits of the result.
    fn call_atomic_builtin(&mut self, b: Builtin, mem: u32, ea: Value, rest: &[Value]) {
        let m = self.u32_const(mem);
        let mut args = vec![m, ea];
        args.extend_from_slice(rest);
        let r = self
            .call_builtin(b, &args)
            .expect("wait/notify builtins return a value");
        let failed = self.builder.ins().icmp_imm_s(IntCC::Equal, r, -1);
        self.builder
            .ins()
            .trapnz(failed, Self::trap_code(TrapKind::Host));
        let v = self.builder.ins().ireduce(I32, r);
        self.push(v);
    }

    fn op_atomic_notify(&mut self, memarg: &MemArg) -> Result<(), CompileError> {
        let count = self.pop();
        let (mem, ea) = self.atomic_effective_addr(memarg)?;
        self.call_atomic_builtin(Builtin::MemoryAtomicNotify, mem, ea, &[count]);
        Ok(())
    }

    fn op_atomic_wait(&mut self, memarg: &MemArg, b: Builtin) -> Result<(), CompileError> {
        let timeout = self.pop();
        let expected = self.pop();
        let (mem, ea) = self.atomic_effective_addr(memarg)?;
        self.call_atomic_builtin(b, mem, ea, &[expected, timeout]);
        Ok(())
    }

    fn op_memory_size(&mut self, mem: u32) {
        let mty = self.memory_type(mem);
        let def = self.memory_def(mem);
        let len = self.memory_length(def, &mty);
        let pages = self
            .builder
            .ins()
            .ushr_imm_u(len, i64::from(mty.page_size_log2));
        let v = if mty.memory64 {
            pages
        } else {
            self.builder.ins().ireduce(I32, pages)
        };
        self.push(v);
    }

    /// Traps with `Host` when a grow builtin returned [`GROW_TRAP`].
    fn trap_on_grow_trap(&mut self, result: Value) {
        let trap = self
            .builder
            .ins()
            .icmp_imm_s(IntCC::Equal, result, crate::GROW_TRAP as i64);
        self.builder
            .ins()
            .trapnz(trap, Self::trap_code(TrapKind::Host));
    }

    fn op_memory_grow(&mut self, mem: u32) {
        let mty = self.memory_type(mem);
        let delta = self.pop();
        let delta = if mty.memory64 {
            delta
        } else {
            self.builder.ins().uextend(I64, delta)
        };
        let idx = self.builder.ins().iconst(I32, i64::from(mem));
        let old = self
            .call_builtin(Builtin::MemoryGrow, &[idx, delta])
            .expect("memory.grow returns a value");
        self.trap_on_grow_trap(old);
        let v = if mty.memory64 {
            old
        } else {
            self.builder.ins().ireduce(I32, old)
        };
        self.push(v);
    }

    /// The address of builtin `b`. Loaded where it is called, never hoisted:
    /// builtins are called on slow paths (interruption checks) or next to
    /// work that dwarfs a load, and hoisted pointers would occupy
    /// callee-saved registers across whole loops.
    fn builtin(&mut self, b: Builtin) -> Value {
        let ro = MemFlagsData::trusted().with_readonly();
        let table =
            self.builder
                .ins()
                .load(I64, ro, self.vmctx, self.env.offsets.builtins() as i32);
        self.builder
            .ins()
            .load(I64, ro, table, b.table_offset() as i32)
    }

    /// Calls builtin `b` with the caller's vmctx and `args`; returns its
    /// result, if it has one.
    fn call_builtin(&mut self, b: Builtin, args: &[Value]) -> Option<Value> {
        let sig = match self.builtin_sigs[b.index() as usize] {
            Some(s) => s,
            None => {
                let (params, ret) = b.signature();
                let mut sig = Signature::new(self.env.call_conv);
                sig.params.push(AbiParam::new(I64));
                sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
                sig.returns.extend(ret.map(AbiParam::new));
                let s = self.builder.import_signature(sig);
                self.builtin_sigs[b.index() as usize] = Some(s);
                s
            }
        };
        let f = self.builtin(b);
        let mut call_args = Vec::with_capacity(args.len() + 1);
        call_args.push(self.vmctx);
        call_args.extend_from_slice(args);
        self.fuel_save();
        let call = self.builder.ins().call_indirect(sig, f, &call_args);
        let result = self.builder.inst_results(call).first().copied();
        self.fuel_reload();
        result
    }

    /// Calls a status-returning builtin and traps with [`TrapKind::Host`]
    /// if the status is non-zero.
    fn call_builtin_checked(&mut self, b: Builtin, args: &[Value]) {
        let status = self
            .call_builtin(b, args)
            .expect("status-returning builtin");
        self.builder
            .ins()
            .trapnz(status, Self::trap_code(TrapKind::Host));
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

    // ----------------------------------------------------- bulk operations

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

    fn op_memory_copy(&mut self, dst_mem: u32, src_mem: u32) {
        self.op_bulk(Builtin::MemoryCopy, &[dst_mem, src_mem], true);
    }

    fn op_memory_fill(&mut self, mem: u32) {
        self.op_bulk(Builtin::MemoryFill, &[mem], false);
    }

    fn op_memory_init(&mut self, data: u32, mem: u32) {
        self.op_bulk(Builtin::MemoryInit, &[mem, data], true);
    }

    fn op_data_drop(&mut self, data: u32) {
        let d = self.u32_const(data);
        self.call_builtin(Builtin::DataDrop, &[d]);
    }

    // --------------------------------------------------------------- tables

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

    fn table_elem_flags(&self) -> MemFlagsData {
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
    fn table_elem_addr(&mut self, table: u32, index: Value, oob: TrapKind) -> Value {
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

    fn op_table_get(&mut self, table: u32) {
        let index = self.pop();
        let addr = self.table_elem_addr(table, index, TrapKind::TableOutOfBounds);
        let f = self.table_elem_flags();
        let v = self.builder.ins().load(I64, f, addr, 0);
        self.push(v);
    }

    fn op_table_set(&mut self, table: u32) {
        let value = self.pop();
        let index = self.pop();
        let addr = self.table_elem_addr(table, index, TrapKind::TableOutOfBounds);
        let f = self.table_elem_flags();
        self.builder.ins().store(f, value, addr, 0);
    }

    fn op_table_size(&mut self, table: u32) {
        let def = self.table_def(table);
        let len = self.table_length(def);
        let v = if self.table64(table) {
            len
        } else {
            self.builder.ins().ireduce(I32, len)
        };
        self.push(v);
    }

    fn op_table_grow(&mut self, table: u32) {
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

    fn op_table_fill(&mut self, table: u32) {
        self.op_bulk(Builtin::TableFill, &[table], false);
    }

    fn op_table_copy(&mut self, dst_table: u32, src_table: u32) {
        self.op_bulk(Builtin::TableCopy, &[dst_table, src_table], true);
    }

    fn op_table_init(&mut self, elem: u32, table: u32) {
        self.op_bulk(Builtin::TableInit, &[table, elem], true);
    }

    fn op_elem_drop(&mut self, elem: u32) {
        let e = self.u32_const(elem);
        self.call_builtin(Builtin::ElemDrop, &[e]);
    }

    // ----------------------------------------------------------- references

    /// `ref.func f`: the address of `f`'s `VMFuncRef`.
    fn op_ref_func(&mut self, func_index: u32) {
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

    // ------------------------------------------------------------- numerics

    /// Traps on a zero divisor, and on `MIN / -1` for signed division.
    fn div_checks(&mut self, x: Value, y: Value, check_overflow: bool) {
        let ty = self.builder.func.dfg.value_type(y);
        let mask: i64 = if ty == I32 { 0xffff_ffff } else { -1 };
        let c = self.const_of(y).map(|c| c & mask);
        if c.is_none_or(|c| c == 0) {
            self.builder
                .ins()
                .trapz(y, Self::trap_code(TrapKind::IntegerDivisionByZero));
        }
        if check_overflow && c.is_none_or(|c| c == mask) {
            let min = if ty == I32 {
                i64::from(i32::MIN)
            } else {
                i64::MIN
            };
            let is_min = self.builder.ins().icmp_imm_s(IntCC::Equal, x, min);
            let is_neg1 = self.builder.ins().icmp_imm_s(IntCC::Equal, y, -1);
            let both = self.builder.ins().band(is_min, is_neg1);
            self.builder
                .ins()
                .trapnz(both, Self::trap_code(TrapKind::IntegerOverflow));
        }
    }

    fn op_div(&mut self, op: Opcode) {
        let y = self.pop();
        let x = self.pop();
        self.div_checks(x, y, op == Opcode::Sdiv);
        let ins = self.builder.ins();
        let r = match op {
            Opcode::Sdiv => ins.sdiv(x, y),
            Opcode::Udiv => ins.udiv(x, y),
            Opcode::Srem => ins.srem(x, y),
            Opcode::Urem => ins.urem(x, y),
            _ => unreachable!(),
        };
        self.push(r);
    }

    fn sign_extend_low(&mut self, from: Type, to: Type) {
        self.unop(|b, x| {
            let n = b.ins().ireduce(from, x);
            b.ins().sextend(to, n)
        });
    }

    // ------------------------------------------------------------ operators

    fn operator(&mut self, op: Operator<'_>) -> Result<(), CompileError> {
        use Operator as O;
        match op {
            // ---- control
            O::Unreachable => {
                self.builder
                    .ins()
                    .trap(Self::trap_code(TrapKind::UnreachableCodeReached));
                // Never executed past the trap: nothing to flush.
                self.fuel_pending = 0;
                self.reachable = false;
            }
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
            O::Return => {
                let n = self.results.len();
                let values = self.top(n).to_vec();
                self.emit_return(&values);
                self.reachable = false;
            }
            O::Call { function_index } => self.op_call(function_index)?,
            O::CallIndirect {
                type_index,
                table_index,
            } => self.op_call_indirect(type_index, table_index)?,
            O::Drop => {
                self.pop();
            }
            O::Select => {
                let c = self.pop();
                self.binop(|b, x, y| b.ins().select(c, x, y));
            }
            O::TypedSelect { ty } => {
                wasmparser_type(ty)?;
                let c = self.pop();
                self.binop(|b, x, y| b.ins().select(c, x, y));
            }

            // ---- locals and globals
            O::LocalGet { local_index } => {
                let v = self.builder.use_var(self.locals[local_index as usize]);
                self.push(v);
            }
            O::LocalSet { local_index } => {
                let v = self.pop();
                self.builder.def_var(self.locals[local_index as usize], v);
            }
            O::LocalTee { local_index } => {
                let v = self.peek();
                self.builder.def_var(self.locals[local_index as usize], v);
            }
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
            O::AtomicFence { .. } => {
                self.builder.ins().fence();
            }

            O::MemoryGrow { mem } => self.op_memory_grow(mem),
            O::MemoryCopy { dst_mem, src_mem } => self.op_memory_copy(dst_mem, src_mem),
            O::MemoryFill { mem } => self.op_memory_fill(mem),
            O::MemoryInit { data_index, mem } => self.op_memory_init(data_index, mem),
            O::DataDrop { data_index } => self.op_data_drop(data_index),

            // ---- tables and references
            O::TableGet { table } => self.op_table_get(table),
            O::TableSet { table } => self.op_table_set(table),
            O::TableSize { table } => self.op_table_size(table),
            O::TableGrow { table } => self.op_table_grow(table),
            O::TableFill { table } => self.op_table_fill(table),
            O::TableCopy {
                dst_table,
                src_table,
            } => self.op_table_copy(dst_table, src_table),
            O::TableInit { elem_index, table } => self.op_table_init(elem_index, table),
            O::ElemDrop { elem_index } => self.op_elem_drop(elem_index),
            O::RefNull { .. } => {
                let v = self.builder.ins().iconst(I64, 0);
                self.push(v);
            }
            O::RefIsNull => self.unop(|b, x| {
                let c = b.ins().icmp_imm_s(IntCC::Equal, x, 0);
                b.ins().uextend(I32, c)
            }),
            O::RefFunc { function_index } => self.op_ref_func(function_index),

            // ---- constants
            O::I32Const { value } => {
                let v = self.builder.ins().iconst(I32, i64::from(value));
                self.push(v);
            }
            O::I64Const { value } => {
                let v = self.builder.ins().iconst(I64, value);
                self.push(v);
            }
            O::F32Const { value } => {
                let v = self.builder.ins().f32const(Ieee32::with_bits(value.bits()));
                self.push(v);
            }
            O::F64Const { value } => {
                let v = self.builder.ins().f64const(Ieee64::with_bits(value.bits()));
                self.push(v);
            }

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
}

/// The `atomic.rmw` operators (but `cmpxchg`): memarg, result type, access
/// type and Cranelift operation.
fn atomic_rmw_op(op: &Operator<'_>) -> Option<(MemArg, Type, Type, AtomicRmwOp)> {
    use AtomicRmwOp as R;
    use Operator as O;
    Some(match *op {
        O::I32AtomicRmwAdd { memarg } => (memarg, I32, I32, R::Add),
        O::I64AtomicRmwAdd { memarg } => (memarg, I64, I64, R::Add),
        O::I32AtomicRmw8AddU { memarg } => (memarg, I32, I8, R::Add),
        O::I32AtomicRmw16AddU { memarg } => (memarg, I32, I16, R::Add),
        O::I64AtomicRmw8AddU { memarg } => (memarg, I64, I8, R::Add),
        O::I64AtomicRmw16AddU { memarg } => (memarg, I64, I16, R::Add),
        O::I64AtomicRmw32AddU { memarg } => (memarg, I64, I32, R::Add),
        O::I32AtomicRmwSub { memarg } => (memarg, I32, I32, R::Sub),
        O::I64AtomicRmwSub { memarg } => (memarg, I64, I64, R::Sub),
        O::I32AtomicRmw8SubU { memarg } => (memarg, I32, I8, R::Sub),
        O::I32AtomicRmw16SubU { memarg } => (memarg, I32, I16, R::Sub),
        O::I64AtomicRmw8SubU { memarg } => (memarg, I64, I8, R::Sub),
        O::I64AtomicRmw16SubU { memarg } => (memarg, I64, I16, R::Sub),
        O::I64AtomicRmw32SubU { memarg } => (memarg, I64, I32, R::Sub),
        O::I32AtomicRmwAnd { memarg } => (memarg, I32, I32, R::And),
        O::I64AtomicRmwAnd { memarg } => (memarg, I64, I64, R::And),
        O::I32AtomicRmw8AndU { memarg } => (memarg, I32, I8, R::And),
        O::I32AtomicRmw16AndU { memarg } => (memarg, I32, I16, R::And),
        O::I64AtomicRmw8AndU { memarg } => (memarg, I64, I8, R::And),
        O::I64AtomicRmw16AndU { memarg } => (memarg, I64, I16, R::And),
        O::I64AtomicRmw32AndU { memarg } => (memarg, I64, I32, R::And),
        O::I32AtomicRmwOr { memarg } => (memarg, I32, I32, R::Or),
        O::I64AtomicRmwOr { memarg } => (memarg, I64, I64, R::Or),
        O::I32AtomicRmw8OrU { memarg } => (memarg, I32, I8, R::Or),
        O::I32AtomicRmw16OrU { memarg } => (memarg, I32, I16, R::Or),
        O::I64AtomicRmw8OrU { memarg } => (memarg, I64, I8, R::Or),
        O::I64AtomicRmw16OrU { memarg } => (memarg, I64, I16, R::Or),
        O::I64AtomicRmw32OrU { memarg } => (memarg, I64, I32, R::Or),
        O::I32AtomicRmwXor { memarg } => (memarg, I32, I32, R::Xor),
        O::I64AtomicRmwXor { memarg } => (memarg, I64, I64, R::Xor),
        O::I32AtomicRmw8XorU { memarg } => (memarg, I32, I8, R::Xor),
        O::I32AtomicRmw16XorU { memarg } => (memarg, I32, I16, R::Xor),
        O::I64AtomicRmw8XorU { memarg } => (memarg, I64, I8, R::Xor),
        O::I64AtomicRmw16XorU { memarg } => (memarg, I64, I16, R::Xor),
        O::I64AtomicRmw32XorU { memarg } => (memarg, I64, I32, R::Xor),
        O::I32AtomicRmwXchg { memarg } => (memarg, I32, I32, R::Xchg),
        O::I64AtomicRmwXchg { memarg } => (memarg, I64, I64, R::Xchg),
        O::I32AtomicRmw8XchgU { memarg } => (memarg, I32, I8, R::Xchg),
        O::I32AtomicRmw16XchgU { memarg } => (memarg, I32, I16, R::Xchg),
        O::I64AtomicRmw8XchgU { memarg } => (memarg, I64, I8, R::Xchg),
        O::I64AtomicRmw16XchgU { memarg } => (memarg, I64, I16, R::Xchg),
        O::I64AtomicRmw32XchgU { memarg } => (memarg, I64, I32, R::Xchg),
        _ => return None,
    })
}

/// A short name for an operator, for error messages.
fn operator_name(op: &Operator<'_>) -> String {
    let s = format!("{op:?}");
    let end = s.find([' ', '{', '(']).unwrap_or(s.len());
    format!("instruction {}", &s[..end])
}
