//! Exception handling: `throw`, `throw_ref`, `try_table`, and the check
//! after every call that may throw.
//!
//! An exception in flight is the store's *pending exception*
//! (`VMStoreContext::exception`, non-zero while one is thrown). Throwing
//! makes it pending (through a builtin) and goes to the innermost enclosing
//! `try_table`'s dispatch block in this function or, when there is none, to
//! the function's unwind block, which returns to the caller at once. Every
//! call is followed by a read of the pending exception that does the same.
//! So an exception travels up the stack as a chain of ordinary returns
//! until a dispatch block catches it: no unwinder, no frame tables, no
//! frame pointers, and tail calls need nothing (the frame they return to
//! checks). The price is a load and a not-taken branch after each call
//! that may throw: a direct call of a function of this module that cannot
//! throw (see [`may_throw`]) needs no check.
//!
//! A dispatch block compares the exception's tag with each catch clause's
//! tag in order; the first that matches (or a `catch_all`) takes the
//! exception with [`Builtin::CatchException`] (which clears it and hands
//! over its fields) and branches to its label. When none matches, the
//! exception goes on to the next enclosing handler.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{
    Block, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Value,
};
use weft_decoder::Module;
use weft_decoder::wasmparser::{Catch, Operator, TryTable};

use super::FuncTranslator;
use super::abi::{clif_type, readonly_flags};
use super::control::FrameKind;
use crate::builtins::Builtin;
use crate::error::CompileError;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

/// Which defined functions of `module` may return with an exception
/// pending: those that throw, call an import (a host function or another
/// module's function may throw), call through a table or a reference (any
/// function), or call, directly or by a tail call, a function that may
/// throw. A body that cannot be read counts as throwing.
pub(crate) fn may_throw(module: &Module) -> Vec<bool> {
    let n = module.bodies.len();
    let imported = module.num_imported_funcs;
    let mut throws = vec![false; n];
    // callers[d]: the defined functions that call defined function d.
    let mut callers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, body) in module.bodies.iter().enumerate() {
        let Ok(mut ops) = module.body_reader(body).get_operators_reader() else {
            throws[i] = true;
            continue;
        };
        while !ops.eof() {
            let Ok(op) = ops.read() else {
                throws[i] = true;
                break;
            };
            match op {
                Operator::Throw { .. }
                | Operator::ThrowRef
                | Operator::CallIndirect { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::CallRef { .. }
                | Operator::ReturnCallRef { .. } => throws[i] = true,
                Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
                    match function_index.checked_sub(imported) {
                        Some(d) => callers[d as usize].push(i),
                        None => throws[i] = true,
                    }
                }
                _ => {}
            }
        }
    }
    let mut work: Vec<usize> = (0..n).filter(|&i| throws[i]).collect();
    while let Some(callee) = work.pop() {
        for &caller in &callers[callee] {
            if !throws[caller] {
                throws[caller] = true;
                work.push(caller);
            }
        }
    }
    throws
}

impl FuncTranslator<'_, '_> {
    /// `try_table`: a block whose catch clauses handle exceptions thrown
    /// inside it. Its dispatch block is made when something inside may
    /// throw, and filled at its `end`.
    pub(super) fn op_try_table(&mut self, t: TryTable) -> Result<(), CompileError> {
        self.op_block(t.ty)?;
        let frame = self.control.last_mut().expect("just pushed");
        frame.kind = FrameKind::TryTable {
            catches: t.catches,
            dispatch: None,
        };
        Ok(())
    }

    /// `throw $tag`: makes an exception of the tag's parameters and
    /// throws it.
    pub(super) fn op_throw(&mut self, tag: u32) -> Result<(), CompileError> {
        let module = self.env.module;
        let n = module.types[module.tags[tag as usize] as usize]
            .params
            .len();
        let args = self.popn(n);
        let area = self.value_area(n);
        if let Some(slot) = area.1 {
            for (i, &v) in args.iter().enumerate() {
                self.builder.ins().stack_store(
                    I64,
                    v,
                    slot,
                    (i as u32 * VMOffsets::VAL_RAW_SIZE) as i32,
                );
            }
        }
        let tag = self.u32_const(tag);
        self.call_builtin_checked(Builtin::Throw, &[tag, area.0]);
        self.go_to_handler();
        Ok(())
    }

    /// `throw_ref`: throws the exception again (traps on null).
    pub(super) fn op_throw_ref(&mut self) {
        let exn = self.pop();
        self.builder
            .ins()
            .trapz(exn, Self::trap_code(TrapKind::NullExceptionReference));
        self.call_builtin_checked(Builtin::ThrowRef, &[exn]);
        self.go_to_handler();
    }

    /// After a call of a function that may throw (`defined`: the defined
    /// function called directly, if it is one): if the call left an
    /// exception pending, goes to the handler.
    pub(super) fn exception_check(&mut self, defined: Option<u32>) {
        if !self.env.tunables.exceptions || defined.is_some_and(|d| !self.env.may_throw[d as usize])
        {
            return;
        }
        let pending = self.store_ctx_word(VMOffsets::STORE_CTX_EXCEPTION);
        let handler = self.throw_target();
        let next = self.builder.create_block();
        self.fuel_flush();
        self.builder.ins().brif(pending, handler, &[], next, &[]);
        self.builder.seal_block(next);
        self.builder.switch_to_block(next);
    }

    /// A word of the store's `VMStoreContext` (written by the runtime
    /// between and during calls: read afresh each time).
    fn store_ctx_word(&mut self, offset: u32) -> Value {
        let store_ctx = self.builder.ins().load(
            I64,
            readonly_flags(),
            self.vmctx,
            self.env.offsets.store_ctx() as i32,
        );
        let flags = MemFlagsData::trusted().with_alias_region(Some(self.vmctx_region));
        self.builder
            .ins()
            .load(I64, flags, store_ctx, offset as i32)
    }

    /// Ends the current code with a jump to the handler of an exception
    /// thrown here.
    fn go_to_handler(&mut self) {
        let target = self.throw_target();
        self.jump(target, &[]);
        self.reachable = false;
    }

    /// Where an exception thrown at this point goes: the innermost
    /// enclosing `try_table`'s dispatch block, else the unwind block.
    fn throw_target(&mut self) -> Block {
        let innermost = self
            .control
            .iter()
            .rposition(|f| matches!(f.kind, FrameKind::TryTable { .. }));
        if let Some(i) = innermost {
            let FrameKind::TryTable { dispatch, .. } = &mut self.control[i].kind else {
                unreachable!("found above");
            };
            *dispatch.get_or_insert_with(|| self.builder.create_block())
        } else {
            *self
                .unwind
                .get_or_insert_with(|| self.builder.create_block())
        }
    }

    /// Fills a `try_table`'s dispatch block, at its `end` (the `try_table`
    /// is off the control stack, so catch labels resolve as the spec says:
    /// relative to the blocks around it, and an exception no clause takes
    /// goes to the next handler out).
    pub(super) fn emit_dispatch(&mut self, dispatch: Block, catches: &[Catch]) {
        self.builder.switch_to_block(dispatch);
        self.builder.set_cold_block(dispatch);
        let thrown = self.store_ctx_word(VMOffsets::STORE_CTX_EXCEPTION_TAG);
        for &c in catches {
            let (tag, label, keep) = match c {
                Catch::One { tag, label } => (Some(tag), label, false),
                Catch::OneRef { tag, label } => (Some(tag), label, true),
                Catch::All { label } => (None, label, false),
                Catch::AllRef { label } => (None, label, true),
            };
            let next = tag.map(|tag| {
                let ours = self.builder.ins().load(
                    I64,
                    readonly_flags(),
                    self.vmctx,
                    self.env.offsets.tag(tag) as i32,
                );
                let same = self.builder.ins().icmp(IntCC::Equal, thrown, ours);
                let clause = self.builder.create_block();
                let next = self.builder.create_block();
                self.builder.ins().brif(same, clause, &[], next, &[]);
                self.builder.seal_block(clause);
                self.builder.seal_block(next);
                self.builder.switch_to_block(clause);
                next
            });
            let values = self.catch_values(tag, keep);
            let (target, _) = self.branch_target(label);
            self.jump(target, &values);
            match next {
                Some(next) => self.builder.switch_to_block(next),
                // A catch-all takes everything: later clauses never run.
                None => return,
            }
        }
        let outer = self.throw_target();
        self.jump(outer, &[]);
    }

    /// Takes the pending exception: its fields (those of `tag`'s
    /// parameters; none for a catch-all) and, with `keep`, the exception
    /// itself as an `exnref` after them.
    fn catch_values(&mut self, tag: Option<u32>, keep: bool) -> Vec<Value> {
        let module = self.env.module;
        let params = tag.map_or(&[][..], |t| {
            &module.types[module.tags[t as usize] as usize].params[..]
        });
        let (area, slot) = self.value_area(params.len());
        let keep_v = self.builder.ins().iconst(I32, i64::from(keep));
        let exn = self
            .call_builtin(Builtin::CatchException, &[area, keep_v])
            .expect("CatchException returns the exnref");
        let mut values = Vec::with_capacity(params.len() + 1);
        for (i, &p) in params.iter().enumerate() {
            let ty = clif_type(p).expect("validated tag parameter type");
            let slot = slot.expect("an area for every field");
            values.push(self.builder.ins().stack_load(
                I64,
                ty,
                slot,
                (i as u32 * VMOffsets::VAL_RAW_SIZE) as i32,
            ));
        }
        if keep {
            values.push(exn);
        }
        values
    }

    /// The function's area for exception fields (one `ValRaw` per field of
    /// the module's widest tag: every throw and clause shares it, so the
    /// frame does not grow with their number) and its address; a null
    /// address and no slot for `n == 0`.
    fn value_area(&mut self, n: usize) -> (Value, Option<cranelift_codegen::ir::StackSlot>) {
        if n == 0 {
            return (self.builder.ins().iconst(I64, 0), None);
        }
        let slot = match self.exn_area {
            Some(slot) => slot,
            None => {
                let module = self.env.module;
                let widest = module
                    .tags
                    .iter()
                    .map(|&t| module.types[t as usize].params.len())
                    .max()
                    .unwrap_or(0)
                    .max(n);
                let slot = self.builder.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    widest as u32 * VMOffsets::VAL_RAW_SIZE,
                    4,
                ));
                self.exn_area = Some(slot);
                slot
            }
        };
        (self.builder.ins().stack_addr(I64, slot, 0), Some(slot))
    }

    /// At the end of the function: the unwind block, if anything may throw
    /// out of this function, returns at once (with zero results, which the
    /// caller ignores: it sees the pending exception first).
    pub(super) fn emit_unwind(&mut self) -> Result<(), CompileError> {
        let Some(unwind) = self.unwind else {
            return Ok(());
        };
        self.builder.switch_to_block(unwind);
        self.builder.set_cold_block(unwind);
        let mut zeros = Vec::with_capacity(self.results.len());
        for i in 0..self.results.len() {
            let ty = clif_type(self.results[i])?;
            zeros.push(self.zero(ty));
        }
        self.emit_return(&zeros);
        Ok(())
    }
}
