//! Structured control flow: `block`, `loop`, `if`/`else`, `end`, the
//! branches, `return` and `unreachable`, and the skipping of unreachable
//! code.

use cranelift_codegen::ir::{
    Block, BlockArg, InstBuilder, JumpTableData, MemFlagsData, Type, Value,
};
use weft_decoder::wasmparser::{BlockType, Catch, Operator};

use super::FuncTranslator;
use super::abi::{clif_type, wasmparser_type};
use crate::error::CompileError;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

#[derive(Debug)]
pub(super) enum FrameKind {
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
    /// A `try_table` (a block with catch clauses).
    TryTable {
        catches: Vec<Catch>,
        /// Where exceptions thrown inside go; made on first use and filled
        /// at `end` (see `exceptions.rs`).
        dispatch: Option<Block>,
    },
}

/// An open construct on the control stack.
#[derive(Debug)]
pub(super) struct Frame {
    pub(super) kind: FrameKind,
    /// The block following `end`; its parameters are the results.
    pub(super) dest: Block,
    pub(super) num_params: usize,
    pub(super) num_results: usize,
    /// Stack height below this construct's parameters.
    pub(super) stack_base: usize,
    /// Whether anything branches (or falls through) to `dest`.
    pub(super) dest_reachable: bool,
}

impl FuncTranslator<'_, '_> {
    fn block_args(values: &[Value]) -> Vec<BlockArg> {
        values.iter().copied().map(BlockArg::from).collect()
    }

    pub(super) fn jump(&mut self, block: Block, values: &[Value]) {
        self.fuel_flush();
        let args = Self::block_args(values);
        self.builder.ins().jump(block, &args);
    }

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
    pub(super) fn branch_target(&mut self, depth: u32) -> (Block, usize) {
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

    pub(super) fn emit_return(&mut self, values: &[Value]) {
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

    pub(super) fn op_unreachable(&mut self) {
        self.builder
            .ins()
            .trap(Self::trap_code(TrapKind::UnreachableCodeReached));
        // Never executed past the trap: nothing to flush.
        self.fuel_pending = 0;
        self.reachable = false;
    }

    pub(super) fn op_block(&mut self, bt: BlockType) -> Result<(), CompileError> {
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

    pub(super) fn op_loop(&mut self, bt: BlockType) -> Result<(), CompileError> {
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

    pub(super) fn op_if(&mut self, bt: BlockType) -> Result<(), CompileError> {
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

    pub(super) fn op_else(&mut self) {
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

    pub(super) fn op_end(&mut self) {
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
            FrameKind::TryTable {
                dispatch: Some(dispatch),
                ref catches,
            } => self.emit_dispatch(dispatch, catches),
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

    pub(super) fn op_br(&mut self, depth: u32) {
        let (target, n) = self.branch_target(depth);
        let args = self.top(n).to_vec();
        self.jump(target, &args);
        self.reachable = false;
    }

    pub(super) fn op_br_if(&mut self, depth: u32) {
        let cond = self.pop();
        let (target, n) = self.branch_target(depth);
        let args = Self::block_args(self.top(n));
        let next = self.builder.create_block();
        self.fuel_flush();
        self.builder.ins().brif(cond, target, &args, next, &[]);
        self.builder.seal_block(next);
        self.builder.switch_to_block(next);
    }

    /// `br_on_null`: branches with the values below the reference when it
    /// is null (dropping it); otherwise goes on with the reference.
    pub(super) fn op_br_on_null(&mut self, depth: u32) {
        let r = self.pop();
        let (target, n) = self.branch_target(depth);
        let args = Self::block_args(self.top(n));
        let next = self.builder.create_block();
        self.fuel_flush();
        self.builder.ins().brif(r, next, &[], target, &args);
        self.builder.seal_block(next);
        self.builder.switch_to_block(next);
        self.push(r);
    }

    /// `br_on_non_null`: branches with the values and the reference on top
    /// when it is not null; otherwise drops it and goes on.
    pub(super) fn op_br_on_non_null(&mut self, depth: u32) {
        let r = self.peek();
        let (target, n) = self.branch_target(depth);
        let args = Self::block_args(self.top(n));
        let next = self.builder.create_block();
        self.fuel_flush();
        self.builder.ins().brif(r, target, &args, next, &[]);
        self.builder.seal_block(next);
        self.builder.switch_to_block(next);
        self.pop();
    }

    pub(super) fn op_br_table(&mut self, targets: &[u32], default: u32) {
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

    pub(super) fn op_return(&mut self) {
        let n = self.results.len();
        let values = self.top(n).to_vec();
        self.emit_return(&values);
        self.reachable = false;
    }

    /// Skips an operator in unreachable code, tracking nesting.
    pub(super) fn unreachable_operator(&mut self, op: &Operator<'_>) -> Result<(), CompileError> {
        debug_assert_eq!(self.fuel_pending, 0, "fuel left unflushed");
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. } => {
                self.dead_depth += 1;
            }
            Operator::Else if self.dead_depth == 0 => self.op_else(),
            Operator::End if self.dead_depth == 0 => self.op_end(),
            Operator::End => self.dead_depth -= 1,
            _ => {}
        }
        Ok(())
    }
}
