//! Constants and the numeric operators.
//!
//! [`numeric_op`] is the table: it maps each numeric operator to a
//! [`Numeric`] descriptor naming the Cranelift instruction it becomes, and
//! [`FuncTranslator::op_numeric`] emits any descriptor. Most rows are a
//! Cranelift [`Opcode`], emitted through the generic instruction-format
//! builders (`Unary`, `Binary`), which build exactly what the named
//! builders (`iadd`, `clz`, `sextend`...) build.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::instructions::InstructionFormat;
use cranelift_codegen::ir::types::{F32, F64, I8, I16, I32, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Opcode, Type, Value};
use cranelift_frontend::FunctionBuilder;
use weft_decoder::wasmparser::Operator;

use super::FuncTranslator;
use crate::trap::TrapKind;

/// How a numeric operator is translated.
#[derive(Clone, Copy, Debug)]
pub(super) enum Numeric {
    /// A `Unary`-format instruction typed by its operand (`clz`, `fneg`...).
    Unary(Opcode),
    /// A `Unary`-format conversion to the given type (`sextend`,
    /// `fcvt_to_sint`...).
    Convert(Opcode, Type),
    /// A `Binary`-format instruction typed by its operands (`iadd`, `fmin`...).
    Binary(Opcode),
    /// Division or remainder (`sdiv`, `udiv`, `srem`, `urem`), after the
    /// checks for the traps wasm requires.
    Div(Opcode),
    /// `eqz`: compares with zero, giving an `i32` 0 or 1.
    Eqz,
    /// An integer comparison, giving an `i32` 0 or 1.
    Icmp(IntCC),
    /// A float comparison, giving an `i32` 0 or 1.
    Fcmp(FloatCC),
    /// `extendN_s`: sign-extends the low `from` bits to `to`.
    ExtendLow { from: Type, to: Type },
    /// `reinterpret`: the same bits as the given type.
    Reinterpret(Type),
}

/// The numeric operators (all but the constants), as [`Numeric`]
/// descriptors. An `i32` and an `i64` (or `f32` and `f64`) operator share a
/// row when the instruction is typed by its operands.
pub(super) fn numeric_op(op: &Operator<'_>) -> Option<Numeric> {
    use Numeric::{Binary, Convert, Div, Eqz, ExtendLow, Fcmp, Icmp, Reinterpret, Unary};
    use Operator as O;
    Some(match op {
        // ---- integer comparisons
        O::I32Eqz | O::I64Eqz => Eqz,
        O::I32Eq | O::I64Eq => Icmp(IntCC::Equal),
        O::I32Ne | O::I64Ne => Icmp(IntCC::NotEqual),
        O::I32LtS | O::I64LtS => Icmp(IntCC::SignedLessThan),
        O::I32LtU | O::I64LtU => Icmp(IntCC::UnsignedLessThan),
        O::I32GtS | O::I64GtS => Icmp(IntCC::SignedGreaterThan),
        O::I32GtU | O::I64GtU => Icmp(IntCC::UnsignedGreaterThan),
        O::I32LeS | O::I64LeS => Icmp(IntCC::SignedLessThanOrEqual),
        O::I32LeU | O::I64LeU => Icmp(IntCC::UnsignedLessThanOrEqual),
        O::I32GeS | O::I64GeS => Icmp(IntCC::SignedGreaterThanOrEqual),
        O::I32GeU | O::I64GeU => Icmp(IntCC::UnsignedGreaterThanOrEqual),

        // ---- float comparisons
        O::F32Eq | O::F64Eq => Fcmp(FloatCC::Equal),
        O::F32Ne | O::F64Ne => Fcmp(FloatCC::NotEqual),
        O::F32Lt | O::F64Lt => Fcmp(FloatCC::LessThan),
        O::F32Gt | O::F64Gt => Fcmp(FloatCC::GreaterThan),
        O::F32Le | O::F64Le => Fcmp(FloatCC::LessThanOrEqual),
        O::F32Ge | O::F64Ge => Fcmp(FloatCC::GreaterThanOrEqual),

        // ---- integer arithmetic
        O::I32Clz | O::I64Clz => Unary(Opcode::Clz),
        O::I32Ctz | O::I64Ctz => Unary(Opcode::Ctz),
        O::I32Popcnt | O::I64Popcnt => Unary(Opcode::Popcnt),
        O::I32Add | O::I64Add => Binary(Opcode::Iadd),
        O::I32Sub | O::I64Sub => Binary(Opcode::Isub),
        O::I32Mul | O::I64Mul => Binary(Opcode::Imul),
        O::I32DivS | O::I64DivS => Div(Opcode::Sdiv),
        O::I32DivU | O::I64DivU => Div(Opcode::Udiv),
        O::I32RemS | O::I64RemS => Div(Opcode::Srem),
        O::I32RemU | O::I64RemU => Div(Opcode::Urem),
        O::I32And | O::I64And => Binary(Opcode::Band),
        O::I32Or | O::I64Or => Binary(Opcode::Bor),
        O::I32Xor | O::I64Xor => Binary(Opcode::Bxor),
        // Cranelift masks shift and rotate amounts like wasm does.
        O::I32Shl | O::I64Shl => Binary(Opcode::Ishl),
        O::I32ShrS | O::I64ShrS => Binary(Opcode::Sshr),
        O::I32ShrU | O::I64ShrU => Binary(Opcode::Ushr),
        O::I32Rotl | O::I64Rotl => Binary(Opcode::Rotl),
        O::I32Rotr | O::I64Rotr => Binary(Opcode::Rotr),

        // ---- float arithmetic (Cranelift's fmin/fmax/nearest follow wasm)
        O::F32Abs | O::F64Abs => Unary(Opcode::Fabs),
        O::F32Neg | O::F64Neg => Unary(Opcode::Fneg),
        O::F32Ceil | O::F64Ceil => Unary(Opcode::Ceil),
        O::F32Floor | O::F64Floor => Unary(Opcode::Floor),
        O::F32Trunc | O::F64Trunc => Unary(Opcode::Trunc),
        O::F32Nearest | O::F64Nearest => Unary(Opcode::Nearest),
        O::F32Sqrt | O::F64Sqrt => Unary(Opcode::Sqrt),
        O::F32Add | O::F64Add => Binary(Opcode::Fadd),
        O::F32Sub | O::F64Sub => Binary(Opcode::Fsub),
        O::F32Mul | O::F64Mul => Binary(Opcode::Fmul),
        O::F32Div | O::F64Div => Binary(Opcode::Fdiv),
        O::F32Min | O::F64Min => Binary(Opcode::Fmin),
        O::F32Max | O::F64Max => Binary(Opcode::Fmax),
        O::F32Copysign | O::F64Copysign => Binary(Opcode::Fcopysign),

        // ---- conversions
        O::I32WrapI64 => Convert(Opcode::Ireduce, I32),
        O::I64ExtendI32S => Convert(Opcode::Sextend, I64),
        O::I64ExtendI32U => Convert(Opcode::Uextend, I64),
        O::I32Extend8S => ExtendLow { from: I8, to: I32 },
        O::I32Extend16S => ExtendLow { from: I16, to: I32 },
        O::I64Extend8S => ExtendLow { from: I8, to: I64 },
        O::I64Extend16S => ExtendLow { from: I16, to: I64 },
        O::I64Extend32S => ExtendLow { from: I32, to: I64 },
        // Trapping conversions: Cranelift traps with
        // BAD_CONVERSION_TO_INTEGER on NaN and INTEGER_OVERFLOW when
        // out of range, through explicit checks.
        O::I32TruncF32S | O::I32TruncF64S => Convert(Opcode::FcvtToSint, I32),
        O::I32TruncF32U | O::I32TruncF64U => Convert(Opcode::FcvtToUint, I32),
        O::I64TruncF32S | O::I64TruncF64S => Convert(Opcode::FcvtToSint, I64),
        O::I64TruncF32U | O::I64TruncF64U => Convert(Opcode::FcvtToUint, I64),
        O::I32TruncSatF32S | O::I32TruncSatF64S => Convert(Opcode::FcvtToSintSat, I32),
        O::I32TruncSatF32U | O::I32TruncSatF64U => Convert(Opcode::FcvtToUintSat, I32),
        O::I64TruncSatF32S | O::I64TruncSatF64S => Convert(Opcode::FcvtToSintSat, I64),
        O::I64TruncSatF32U | O::I64TruncSatF64U => Convert(Opcode::FcvtToUintSat, I64),
        O::F32ConvertI32S | O::F32ConvertI64S => Convert(Opcode::FcvtFromSint, F32),
        O::F32ConvertI32U | O::F32ConvertI64U => Convert(Opcode::FcvtFromUint, F32),
        O::F64ConvertI32S | O::F64ConvertI64S => Convert(Opcode::FcvtFromSint, F64),
        O::F64ConvertI32U | O::F64ConvertI64U => Convert(Opcode::FcvtFromUint, F64),
        O::F32DemoteF64 => Convert(Opcode::Fdemote, F32),
        O::F64PromoteF32 => Convert(Opcode::Fpromote, F64),
        O::I32ReinterpretF32 => Reinterpret(I32),
        O::I64ReinterpretF64 => Reinterpret(I64),
        O::F32ReinterpretI32 => Reinterpret(F32),
        O::F64ReinterpretI64 => Reinterpret(F64),

        _ => return None,
    })
}

/// `opcode` (of format `Unary`) applied to `x`, with controlling type `ty`.
fn unary(b: &mut FunctionBuilder, opcode: Opcode, ty: Type, x: Value) -> Value {
    debug_assert_eq!(opcode.format(), InstructionFormat::Unary, "{opcode}");
    let (inst, dfg) = b.ins().Unary(opcode, ty, x);
    dfg.first_result(inst)
}

/// `opcode` (of format `Binary`) applied to `x` and `y`, typed by `x`.
fn binary(b: &mut FunctionBuilder, opcode: Opcode, x: Value, y: Value) -> Value {
    debug_assert_eq!(opcode.format(), InstructionFormat::Binary, "{opcode}");
    let ty = b.func.dfg.value_type(x);
    let (inst, dfg) = b.ins().Binary(opcode, ty, x, y);
    dfg.first_result(inst)
}

/// `x == 0` as an `i32` 0 or 1 (`eqz`, and `ref.is_null`).
pub(super) fn eqz(b: &mut FunctionBuilder, x: Value) -> Value {
    let c = b.ins().icmp_imm_s(IntCC::Equal, x, 0);
    b.ins().uextend(I32, c)
}

impl FuncTranslator<'_, '_> {
    /// Emits numeric operator `n` (see [`numeric_op`]).
    pub(super) fn op_numeric(&mut self, n: Numeric) {
        match n {
            Numeric::Unary(opcode) => self.unop(|b, x| {
                let ty = b.func.dfg.value_type(x);
                unary(b, opcode, ty, x)
            }),
            Numeric::Convert(opcode, to) => self.unop(|b, x| unary(b, opcode, to, x)),
            Numeric::Binary(opcode) => self.binop(|b, x, y| binary(b, opcode, x, y)),
            Numeric::Div(opcode) => self.op_div(opcode),
            Numeric::Eqz => self.unop(eqz),
            Numeric::Icmp(cc) => self.binop(|b, x, y| {
                let c = b.ins().icmp(cc, x, y);
                b.ins().uextend(I32, c)
            }),
            Numeric::Fcmp(cc) => self.binop(|b, x, y| {
                let c = b.ins().fcmp(cc, x, y);
                b.ins().uextend(I32, c)
            }),
            Numeric::ExtendLow { from, to } => self.unop(|b, x| {
                let n = b.ins().ireduce(from, x);
                b.ins().sextend(to, n)
            }),
            Numeric::Reinterpret(to) => {
                self.unop(|b, x| b.ins().bitcast(to, MemFlagsData::new(), x))
            }
        }
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

    /// Division or remainder `opcode`, after [`Self::div_checks`].
    fn op_div(&mut self, opcode: Opcode) {
        let y = self.pop();
        let x = self.pop();
        self.div_checks(x, y, opcode == Opcode::Sdiv);
        let r = binary(&mut self.builder, opcode, x, y);
        self.push(r);
    }
}
