//! Constants and the numeric operators.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::types::I32;
use cranelift_codegen::ir::{InstBuilder, Opcode, Type, Value};
use cranelift_frontend::FunctionBuilder;

use super::FuncTranslator;
use crate::trap::TrapKind;

/// `x == 0` as an `i32` 0 or 1 (`eqz`, and `ref.is_null`).
pub(super) fn eqz(b: &mut FunctionBuilder, x: Value) -> Value {
    let c = b.ins().icmp_imm_s(IntCC::Equal, x, 0);
    b.ins().uextend(I32, c)
}

impl FuncTranslator<'_, '_> {
    pub(super) fn icmp(&mut self, cc: IntCC) {
        self.binop(|b, x, y| {
            let c = b.ins().icmp(cc, x, y);
            b.ins().uextend(I32, c)
        });
    }

    pub(super) fn fcmp(&mut self, cc: FloatCC) {
        self.binop(|b, x, y| {
            let c = b.ins().fcmp(cc, x, y);
            b.ins().uextend(I32, c)
        });
    }

    pub(super) fn op_iconst(&mut self, ty: Type, value: i64) {
        let v = self.builder.ins().iconst(ty, value);
        self.push(v);
    }

    pub(super) fn op_f32const(&mut self, bits: u32) {
        let v = self.builder.ins().f32const(Ieee32::with_bits(bits));
        self.push(v);
    }

    pub(super) fn op_f64const(&mut self, bits: u64) {
        let v = self.builder.ins().f64const(Ieee64::with_bits(bits));
        self.push(v);
    }

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

    pub(super) fn op_div(&mut self, op: Opcode) {
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

    pub(super) fn sign_extend_low(&mut self, from: Type, to: Type) {
        self.unop(|b, x| {
            let n = b.ins().ireduce(from, x);
            b.ins().sextend(to, n)
        });
    }
}
