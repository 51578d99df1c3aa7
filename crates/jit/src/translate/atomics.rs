//! The threads proposal: atomic loads, stores, read-modify-writes and
//! compare-exchanges (mapped from their operators by [`atomic_op`]),
//! `memory.atomic.wait*`/`notify` (builtin calls) and `atomic.fence`.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8, I16, I32, I64};
use cranelift_codegen::ir::{
    AtomicRmwOp, InstBuilder, InstructionData, Opcode, Type, Value, ValueDef,
};
use weft_decoder::wasmparser::{MemArg, Operator};

use super::FuncTranslator;
use super::memory::Written;
use crate::builtins::Builtin;
use crate::error::CompileError;
use crate::trap::TrapKind;

/// An atomic memory operator. `ty` is the wasm operand/result type and
/// `access` the type of the memory access (narrower for the `{N}_u` forms).
#[derive(Clone, Copy)]
pub(super) enum Atomic {
    /// `t.atomic.load{N}_u`.
    Load { ty: Type, access: Type },
    /// `t.atomic.store{N}`.
    Store { access: Type },
    /// `t.atomic.rmw{N}.op{_u}` (but `cmpxchg`).
    Rmw {
        ty: Type,
        access: Type,
        op: AtomicRmwOp,
    },
    /// `t.atomic.rmw{N}.cmpxchg{_u}`.
    Cmpxchg { ty: Type, access: Type },
    /// `memory.atomic.notify`.
    Notify,
    /// `memory.atomic.wait32`/`wait64`, through builtin `b`.
    Wait(Builtin),
}

/// The atomic memory operators: memarg and what they do.
pub(super) fn atomic_op(op: &Operator<'_>) -> Option<(MemArg, Atomic)> {
    use AtomicRmwOp as R;
    use Operator as O;
    let load = |ty, access| Atomic::Load { ty, access };
    let store = |access| Atomic::Store { access };
    let rmw = |ty, access, op| Atomic::Rmw { ty, access, op };
    let cmpxchg = |ty, access| Atomic::Cmpxchg { ty, access };
    Some(match *op {
        O::I32AtomicLoad { memarg } => (memarg, load(I32, I32)),
        O::I64AtomicLoad { memarg } => (memarg, load(I64, I64)),
        O::I32AtomicLoad8U { memarg } => (memarg, load(I32, I8)),
        O::I32AtomicLoad16U { memarg } => (memarg, load(I32, I16)),
        O::I64AtomicLoad8U { memarg } => (memarg, load(I64, I8)),
        O::I64AtomicLoad16U { memarg } => (memarg, load(I64, I16)),
        O::I64AtomicLoad32U { memarg } => (memarg, load(I64, I32)),

        O::I32AtomicStore { memarg } => (memarg, store(I32)),
        O::I64AtomicStore { memarg } => (memarg, store(I64)),
        O::I32AtomicStore8 { memarg } | O::I64AtomicStore8 { memarg } => (memarg, store(I8)),
        O::I32AtomicStore16 { memarg } | O::I64AtomicStore16 { memarg } => (memarg, store(I16)),
        O::I64AtomicStore32 { memarg } => (memarg, store(I32)),

        O::I32AtomicRmwAdd { memarg } => (memarg, rmw(I32, I32, R::Add)),
        O::I64AtomicRmwAdd { memarg } => (memarg, rmw(I64, I64, R::Add)),
        O::I32AtomicRmw8AddU { memarg } => (memarg, rmw(I32, I8, R::Add)),
        O::I32AtomicRmw16AddU { memarg } => (memarg, rmw(I32, I16, R::Add)),
        O::I64AtomicRmw8AddU { memarg } => (memarg, rmw(I64, I8, R::Add)),
        O::I64AtomicRmw16AddU { memarg } => (memarg, rmw(I64, I16, R::Add)),
        O::I64AtomicRmw32AddU { memarg } => (memarg, rmw(I64, I32, R::Add)),
        O::I32AtomicRmwSub { memarg } => (memarg, rmw(I32, I32, R::Sub)),
        O::I64AtomicRmwSub { memarg } => (memarg, rmw(I64, I64, R::Sub)),
        O::I32AtomicRmw8SubU { memarg } => (memarg, rmw(I32, I8, R::Sub)),
        O::I32AtomicRmw16SubU { memarg } => (memarg, rmw(I32, I16, R::Sub)),
        O::I64AtomicRmw8SubU { memarg } => (memarg, rmw(I64, I8, R::Sub)),
        O::I64AtomicRmw16SubU { memarg } => (memarg, rmw(I64, I16, R::Sub)),
        O::I64AtomicRmw32SubU { memarg } => (memarg, rmw(I64, I32, R::Sub)),
        O::I32AtomicRmwAnd { memarg } => (memarg, rmw(I32, I32, R::And)),
        O::I64AtomicRmwAnd { memarg } => (memarg, rmw(I64, I64, R::And)),
        O::I32AtomicRmw8AndU { memarg } => (memarg, rmw(I32, I8, R::And)),
        O::I32AtomicRmw16AndU { memarg } => (memarg, rmw(I32, I16, R::And)),
        O::I64AtomicRmw8AndU { memarg } => (memarg, rmw(I64, I8, R::And)),
        O::I64AtomicRmw16AndU { memarg } => (memarg, rmw(I64, I16, R::And)),
        O::I64AtomicRmw32AndU { memarg } => (memarg, rmw(I64, I32, R::And)),
        O::I32AtomicRmwOr { memarg } => (memarg, rmw(I32, I32, R::Or)),
        O::I64AtomicRmwOr { memarg } => (memarg, rmw(I64, I64, R::Or)),
        O::I32AtomicRmw8OrU { memarg } => (memarg, rmw(I32, I8, R::Or)),
        O::I32AtomicRmw16OrU { memarg } => (memarg, rmw(I32, I16, R::Or)),
        O::I64AtomicRmw8OrU { memarg } => (memarg, rmw(I64, I8, R::Or)),
        O::I64AtomicRmw16OrU { memarg } => (memarg, rmw(I64, I16, R::Or)),
        O::I64AtomicRmw32OrU { memarg } => (memarg, rmw(I64, I32, R::Or)),
        O::I32AtomicRmwXor { memarg } => (memarg, rmw(I32, I32, R::Xor)),
        O::I64AtomicRmwXor { memarg } => (memarg, rmw(I64, I64, R::Xor)),
        O::I32AtomicRmw8XorU { memarg } => (memarg, rmw(I32, I8, R::Xor)),
        O::I32AtomicRmw16XorU { memarg } => (memarg, rmw(I32, I16, R::Xor)),
        O::I64AtomicRmw8XorU { memarg } => (memarg, rmw(I64, I8, R::Xor)),
        O::I64AtomicRmw16XorU { memarg } => (memarg, rmw(I64, I16, R::Xor)),
        O::I64AtomicRmw32XorU { memarg } => (memarg, rmw(I64, I32, R::Xor)),
        O::I32AtomicRmwXchg { memarg } => (memarg, rmw(I32, I32, R::Xchg)),
        O::I64AtomicRmwXchg { memarg } => (memarg, rmw(I64, I64, R::Xchg)),
        O::I32AtomicRmw8XchgU { memarg } => (memarg, rmw(I32, I8, R::Xchg)),
        O::I32AtomicRmw16XchgU { memarg } => (memarg, rmw(I32, I16, R::Xchg)),
        O::I64AtomicRmw8XchgU { memarg } => (memarg, rmw(I64, I8, R::Xchg)),
        O::I64AtomicRmw16XchgU { memarg } => (memarg, rmw(I64, I16, R::Xchg)),
        O::I64AtomicRmw32XchgU { memarg } => (memarg, rmw(I64, I32, R::Xchg)),

        O::I32AtomicRmwCmpxchg { memarg } => (memarg, cmpxchg(I32, I32)),
        O::I64AtomicRmwCmpxchg { memarg } => (memarg, cmpxchg(I64, I64)),
        O::I32AtomicRmw8CmpxchgU { memarg } => (memarg, cmpxchg(I32, I8)),
        O::I32AtomicRmw16CmpxchgU { memarg } => (memarg, cmpxchg(I32, I16)),
        O::I64AtomicRmw8CmpxchgU { memarg } => (memarg, cmpxchg(I64, I8)),
        O::I64AtomicRmw16CmpxchgU { memarg } => (memarg, cmpxchg(I64, I16)),
        O::I64AtomicRmw32CmpxchgU { memarg } => (memarg, cmpxchg(I64, I32)),

        O::MemoryAtomicNotify { memarg } => (memarg, Atomic::Notify),
        O::MemoryAtomicWait32 { memarg } => (memarg, Atomic::Wait(Builtin::MemoryAtomicWait32)),
        O::MemoryAtomicWait64 { memarg } => (memarg, Atomic::Wait(Builtin::MemoryAtomicWait64)),
        _ => return None,
    })
}

impl FuncTranslator<'_, '_> {
    /// An atomic memory operator (see [`atomic_op`]).
    pub(super) fn op_atomic(
        &mut self,
        memarg: &MemArg,
        atomic: Atomic,
    ) -> Result<(), CompileError> {
        match atomic {
            Atomic::Load { ty, access } => self.op_atomic_load(memarg, ty, access),
            Atomic::Store { access } => self.op_atomic_store(memarg, access),
            Atomic::Rmw { ty, access, op } => self.op_atomic_rmw(memarg, ty, access, op),
            Atomic::Cmpxchg { ty, access } => self.op_atomic_cmpxchg(memarg, ty, access),
            Atomic::Notify => self.op_atomic_notify(memarg),
            Atomic::Wait(b) => self.op_atomic_wait(memarg, b),
        }
    }

    pub(super) fn op_atomic_fence(&mut self) {
        self.builder.ins().fence();
    }

    /// Pops the address operand of an atomic access of `size` bytes and
    /// returns the native address, after the checks in the contract's
    /// order: the effective address must be a multiple of `size`
    /// (`UnalignedAtomic`), then in bounds exactly as for ordinary accesses
    /// (`MemoryOutOfBounds`: an explicit check, or a fault in the guard
    /// region recorded as a trap site on the atomic instruction itself).
    fn atomic_addr(&mut self, memarg: &MemArg, size: u32) -> Result<Value, CompileError> {
        self.atomic_addr_for_store(memarg, size).map(|(a, _)| a)
    }

    /// [`atomic_addr`](Self::atomic_addr) for an access that writes: also
    /// what `mark_written` needs after it.
    fn atomic_addr_for_store(
        &mut self,
        memarg: &MemArg,
        size: u32,
    ) -> Result<(Value, Written), CompileError> {
        let mem = Self::memarg_memory(memarg)?;
        let mty = self.memory_type(mem);
        let operand = self.peek();
        let index = self.pop_index(&mty);
        self.alignment_check(index, memarg.offset, size);
        let (addr, off) = self.bounds_checked_addr(mem, &mty, index, memarg.offset, size);
        let addr = if off == 0 {
            addr
        } else {
            self.builder.ins().iadd_imm_s(addr, i64::from(off))
        };
        Ok((addr, Written::new(mem, operand, index, memarg.offset)))
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
        let (addr, written) = self.atomic_addr_for_store(memarg, access.bytes())?;
        let v = self.narrow(v, access);
        let f = self.heap_flags();
        self.builder.ins().atomic_store(f, v, addr);
        self.mark_written(written);
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
        let (addr, written) = self.atomic_addr_for_store(memarg, access.bytes())?;
        let x = self.narrow(x, access);
        let f = self.heap_flags();
        let old = self.builder.ins().atomic_rmw(access, f, op, addr, x);
        self.mark_written(written);
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
        let (addr, written) = self.atomic_addr_for_store(memarg, access.bytes())?;
        let expected = self.narrow(expected, access);
        let replacement = self.narrow(replacement, access);
        let f = self.heap_flags();
        let old = self
            .builder
            .ins()
            .atomic_cas(f, addr, expected, replacement);
        self.mark_written(written);
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
}
