//! 128-bit SIMD and relaxed SIMD.
//!
//! Every `v128` value on the translator's stack, in locals, globals, block
//! parameters and calls has one Cranelift type, [`V128`] (`i8x16`). An
//! operator bitcasts its operands to the lane type it works on (a free
//! register reinterpretation) and its vector result back to [`V128`], so
//! values of different lane shapes never meet at a block parameter.
//!
//! [`simd_op`] is the table: it maps each SIMD operator to a [`Simd`]
//! descriptor; [`FuncTranslator::op_simd`] emits any descriptor. Operators
//! that are one Cranelift instruction are rows naming its [`Opcode`]; the
//! rest have a descriptor of their own.
//!
//! Relaxed SIMD operators get one fixed result that the relaxed-simd spec
//! allows, the same on every host and every run (see
//! `Config::wasm_relaxed_simd` in the runtime):
//!
//! * `relaxed_swizzle` is `swizzle` (out-of-range indices give 0);
//! * `relaxed_trunc*` are the `trunc_sat` conversions (NaN gives 0,
//!   out-of-range values saturate);
//! * `relaxed_madd`/`relaxed_nmadd` are unfused: `a * b` is rounded, then
//!   added to `c` (`nmadd` negates the product);
//! * `relaxed_laneselect` is `v128.bitselect` (bit by bit);
//! * `relaxed_min`/`relaxed_max` are `fmin`/`fmax` (NaN propagates, -0 < +0);
//! * `relaxed_q15mulr_s` is `q15mulr_sat_s`;
//! * the relaxed dot products treat both operands as signed; the `i16` sums
//!   of `i16x8.relaxed_dot_i8x16_i7x16_s` wrap, and
//!   `i32x4.relaxed_dot_i8x16_i7x16_add_s` adds the exact sum of four
//!   products.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32X4, F64X2, I8, I8X16, I16, I16X8, I32, I32X4, I64X2};
use cranelift_codegen::ir::{
    ConstantData, Endianness, InstBuilder, MemFlagsData, Opcode, Type, Value,
};
use cranelift_frontend::FunctionBuilder;
use weft_decoder::wasmparser::{MemArg, Operator};

use super::FuncTranslator;
use super::memory::Ext;
use crate::error::CompileError;

/// The Cranelift type of every `v128` value between operators.
pub(crate) const V128: Type = I8X16;

/// How a SIMD operator is translated. `ty` fields are the lane shape the
/// operands are viewed as.
#[derive(Clone, Copy, Debug)]
pub(super) enum Simd {
    /// `v128.const`.
    Const([u8; 16]),
    /// A `Unary`-format instruction on a `ty` vector, typed by it (`iabs`,
    /// `fneg`, `popcnt`, `swiden_low`...). Boolean results (`vany_true`,
    /// `vall_true`) become an `i32` 0 or 1.
    Unary(Opcode, Type),
    /// A `Unary`-format conversion of a `from` vector to a `to` vector
    /// (`fcvt_from_sint`, `fcvt_to_sint_sat`...).
    Convert(Opcode, Type, Type),
    /// A `Binary`-format instruction on two `ty` vectors, typed by the
    /// first (`iadd`, `fmin`, `snarrow`, `swizzle`...). Shifts are in this
    /// family too: the scalar shift amount is passed as is, and Cranelift
    /// takes it modulo the lane width as wasm requires.
    Binary(Opcode, Type),
    /// An integer lane comparison (all-ones or zero per lane).
    Icmp(IntCC, Type),
    /// A float lane comparison (all-ones or zero per lane).
    Fcmp(FloatCC, Type),
    /// `splat` of a scalar to a `ty` vector (narrowing `i32` for 8/16-bit
    /// lanes).
    Splat(Type),
    /// `extract_lane`; for 8/16-bit lanes, extended to `i32` (`signed`).
    ExtractLane(Type, u8, bool),
    /// `replace_lane` (narrowing `i32` for 8/16-bit lanes).
    ReplaceLane(Type, u8),
    /// `v128.andnot`: `a & !b`.
    AndNot,
    /// `v128.bitselect` (and `relaxed_laneselect`).
    Bitselect,
    /// `i8x16.bitmask` and the others: the top bit of every lane.
    Bitmask(Type),
    /// `i8x16.shuffle` with its 16 lane indices.
    Shuffle([u8; 16]),
    /// `pmin` (`b < a ? b : a`) or `pmax` (`a < b ? b : a`) per lane.
    PseudoMinMax { ty: Type, max: bool },
    /// `extmul_{low,high}`: widens the low or high halves of two `from`
    /// vectors and multiplies them.
    ExtMul {
        from: Type,
        high: bool,
        signed: bool,
    },
    /// `extadd_pairwise`: widens a `from` vector and adds adjacent lanes.
    ExtAddPairwise { from: Type, signed: bool },
    /// Signed dot product of two `from` vectors: adjacent products summed in
    /// lanes twice as wide (`i32x4.dot_i16x8_s`, and the relaxed
    /// `i16x8.relaxed_dot_i8x16_i7x16_s`).
    Dot(Type),
    /// `i32x4.relaxed_dot_i8x16_i7x16_add_s`.
    DotAdd,
    /// `f64x2.convert_low_i32x4_{s,u}`.
    ConvertLow { signed: bool },
    /// `i32x4.trunc_sat_f64x2_{s,u}_zero`.
    TruncSatZero { signed: bool },
    /// `f64x2.promote_low_f32x4`.
    PromoteLow,
    /// `f32x4.demote_f64x2_zero`.
    DemoteZero,
    /// `relaxed_madd` (`a * b + c`) or `relaxed_nmadd` (`-(a * b) + c`),
    /// unfused.
    Madd { ty: Type, negate: bool },
}

/// Emits one of Cranelift's widening vector loads.
pub(super) type LoadExtendFn = fn(&mut FunctionBuilder, MemFlagsData, Value, i32) -> Value;

/// A SIMD memory access.
#[derive(Clone, Copy, Debug)]
pub(super) enum SimdAccess {
    /// `v128.load8x8_s` and the other widening loads (8 bytes), emitted by
    /// the Cranelift builder given (flags, address, offset).
    LoadExtend(LoadExtendFn),
    /// `v128.loadN_splat`: one `lane` scalar, in every lane.
    LoadSplat(Type),
    /// `v128.loadN_zero`: one `lane` scalar in lane 0, zeros elsewhere.
    LoadZero(Type),
    /// `v128.loadN_lane`: one scalar into the given lane of the operand.
    LoadLane(Type, u8),
    /// `v128.storeN_lane`: the given lane of the operand to memory.
    StoreLane(Type, u8),
}

/// The SIMD operators other than plain `v128.load`/`v128.store` (those are
/// in `memory_access`) and other than memory accesses (see
/// [`simd_access`]), as [`Simd`] descriptors.
pub(super) fn simd_op(op: &Operator<'_>) -> Option<Simd> {
    use Operator as O;
    use Simd::{Binary, Convert, Fcmp, Icmp, Unary};
    Some(match *op {
        O::V128Const { value } => Simd::Const(*value.bytes()),

        // ---- lanes
        O::I8x16Splat => Simd::Splat(I8X16),
        O::I16x8Splat => Simd::Splat(I16X8),
        O::I32x4Splat => Simd::Splat(I32X4),
        O::I64x2Splat => Simd::Splat(I64X2),
        O::F32x4Splat => Simd::Splat(F32X4),
        O::F64x2Splat => Simd::Splat(F64X2),
        O::I8x16ExtractLaneS { lane } => Simd::ExtractLane(I8X16, lane, true),
        O::I8x16ExtractLaneU { lane } => Simd::ExtractLane(I8X16, lane, false),
        O::I16x8ExtractLaneS { lane } => Simd::ExtractLane(I16X8, lane, true),
        O::I16x8ExtractLaneU { lane } => Simd::ExtractLane(I16X8, lane, false),
        O::I32x4ExtractLane { lane } => Simd::ExtractLane(I32X4, lane, false),
        O::I64x2ExtractLane { lane } => Simd::ExtractLane(I64X2, lane, false),
        O::F32x4ExtractLane { lane } => Simd::ExtractLane(F32X4, lane, false),
        O::F64x2ExtractLane { lane } => Simd::ExtractLane(F64X2, lane, false),
        O::I8x16ReplaceLane { lane } => Simd::ReplaceLane(I8X16, lane),
        O::I16x8ReplaceLane { lane } => Simd::ReplaceLane(I16X8, lane),
        O::I32x4ReplaceLane { lane } => Simd::ReplaceLane(I32X4, lane),
        O::I64x2ReplaceLane { lane } => Simd::ReplaceLane(I64X2, lane),
        O::F32x4ReplaceLane { lane } => Simd::ReplaceLane(F32X4, lane),
        O::F64x2ReplaceLane { lane } => Simd::ReplaceLane(F64X2, lane),
        O::I8x16Shuffle { lanes } => Simd::Shuffle(lanes),
        // Cranelift's `swizzle` gives 0 for indices >= 16, as wasm requires.
        O::I8x16Swizzle | O::I8x16RelaxedSwizzle => Binary(Opcode::Swizzle, I8X16),

        // ---- bitwise
        O::V128Not => Unary(Opcode::Bnot, I8X16),
        O::V128And => Binary(Opcode::Band, I8X16),
        O::V128AndNot => Simd::AndNot,
        O::V128Or => Binary(Opcode::Bor, I8X16),
        O::V128Xor => Binary(Opcode::Bxor, I8X16),
        O::V128Bitselect
        | O::I8x16RelaxedLaneselect
        | O::I16x8RelaxedLaneselect
        | O::I32x4RelaxedLaneselect
        | O::I64x2RelaxedLaneselect => Simd::Bitselect,
        O::V128AnyTrue => Unary(Opcode::VanyTrue, I8X16),
        O::I8x16AllTrue => Unary(Opcode::VallTrue, I8X16),
        O::I16x8AllTrue => Unary(Opcode::VallTrue, I16X8),
        O::I32x4AllTrue => Unary(Opcode::VallTrue, I32X4),
        O::I64x2AllTrue => Unary(Opcode::VallTrue, I64X2),
        O::I8x16Bitmask => Simd::Bitmask(I8X16),
        O::I16x8Bitmask => Simd::Bitmask(I16X8),
        O::I32x4Bitmask => Simd::Bitmask(I32X4),
        O::I64x2Bitmask => Simd::Bitmask(I64X2),

        // ---- integer comparisons
        O::I8x16Eq => Icmp(IntCC::Equal, I8X16),
        O::I8x16Ne => Icmp(IntCC::NotEqual, I8X16),
        O::I8x16LtS => Icmp(IntCC::SignedLessThan, I8X16),
        O::I8x16LtU => Icmp(IntCC::UnsignedLessThan, I8X16),
        O::I8x16GtS => Icmp(IntCC::SignedGreaterThan, I8X16),
        O::I8x16GtU => Icmp(IntCC::UnsignedGreaterThan, I8X16),
        O::I8x16LeS => Icmp(IntCC::SignedLessThanOrEqual, I8X16),
        O::I8x16LeU => Icmp(IntCC::UnsignedLessThanOrEqual, I8X16),
        O::I8x16GeS => Icmp(IntCC::SignedGreaterThanOrEqual, I8X16),
        O::I8x16GeU => Icmp(IntCC::UnsignedGreaterThanOrEqual, I8X16),
        O::I16x8Eq => Icmp(IntCC::Equal, I16X8),
        O::I16x8Ne => Icmp(IntCC::NotEqual, I16X8),
        O::I16x8LtS => Icmp(IntCC::SignedLessThan, I16X8),
        O::I16x8LtU => Icmp(IntCC::UnsignedLessThan, I16X8),
        O::I16x8GtS => Icmp(IntCC::SignedGreaterThan, I16X8),
        O::I16x8GtU => Icmp(IntCC::UnsignedGreaterThan, I16X8),
        O::I16x8LeS => Icmp(IntCC::SignedLessThanOrEqual, I16X8),
        O::I16x8LeU => Icmp(IntCC::UnsignedLessThanOrEqual, I16X8),
        O::I16x8GeS => Icmp(IntCC::SignedGreaterThanOrEqual, I16X8),
        O::I16x8GeU => Icmp(IntCC::UnsignedGreaterThanOrEqual, I16X8),
        O::I32x4Eq => Icmp(IntCC::Equal, I32X4),
        O::I32x4Ne => Icmp(IntCC::NotEqual, I32X4),
        O::I32x4LtS => Icmp(IntCC::SignedLessThan, I32X4),
        O::I32x4LtU => Icmp(IntCC::UnsignedLessThan, I32X4),
        O::I32x4GtS => Icmp(IntCC::SignedGreaterThan, I32X4),
        O::I32x4GtU => Icmp(IntCC::UnsignedGreaterThan, I32X4),
        O::I32x4LeS => Icmp(IntCC::SignedLessThanOrEqual, I32X4),
        O::I32x4LeU => Icmp(IntCC::UnsignedLessThanOrEqual, I32X4),
        O::I32x4GeS => Icmp(IntCC::SignedGreaterThanOrEqual, I32X4),
        O::I32x4GeU => Icmp(IntCC::UnsignedGreaterThanOrEqual, I32X4),
        O::I64x2Eq => Icmp(IntCC::Equal, I64X2),
        O::I64x2Ne => Icmp(IntCC::NotEqual, I64X2),
        O::I64x2LtS => Icmp(IntCC::SignedLessThan, I64X2),
        O::I64x2GtS => Icmp(IntCC::SignedGreaterThan, I64X2),
        O::I64x2LeS => Icmp(IntCC::SignedLessThanOrEqual, I64X2),
        O::I64x2GeS => Icmp(IntCC::SignedGreaterThanOrEqual, I64X2),

        // ---- float comparisons
        O::F32x4Eq => Fcmp(FloatCC::Equal, F32X4),
        O::F32x4Ne => Fcmp(FloatCC::NotEqual, F32X4),
        O::F32x4Lt => Fcmp(FloatCC::LessThan, F32X4),
        O::F32x4Gt => Fcmp(FloatCC::GreaterThan, F32X4),
        O::F32x4Le => Fcmp(FloatCC::LessThanOrEqual, F32X4),
        O::F32x4Ge => Fcmp(FloatCC::GreaterThanOrEqual, F32X4),
        O::F64x2Eq => Fcmp(FloatCC::Equal, F64X2),
        O::F64x2Ne => Fcmp(FloatCC::NotEqual, F64X2),
        O::F64x2Lt => Fcmp(FloatCC::LessThan, F64X2),
        O::F64x2Gt => Fcmp(FloatCC::GreaterThan, F64X2),
        O::F64x2Le => Fcmp(FloatCC::LessThanOrEqual, F64X2),
        O::F64x2Ge => Fcmp(FloatCC::GreaterThanOrEqual, F64X2),

        // ---- integer arithmetic
        O::I8x16Abs => Unary(Opcode::Iabs, I8X16),
        O::I16x8Abs => Unary(Opcode::Iabs, I16X8),
        O::I32x4Abs => Unary(Opcode::Iabs, I32X4),
        O::I64x2Abs => Unary(Opcode::Iabs, I64X2),
        O::I8x16Neg => Unary(Opcode::Ineg, I8X16),
        O::I16x8Neg => Unary(Opcode::Ineg, I16X8),
        O::I32x4Neg => Unary(Opcode::Ineg, I32X4),
        O::I64x2Neg => Unary(Opcode::Ineg, I64X2),
        O::I8x16Popcnt => Unary(Opcode::Popcnt, I8X16),
        O::I8x16Add => Binary(Opcode::Iadd, I8X16),
        O::I16x8Add => Binary(Opcode::Iadd, I16X8),
        O::I32x4Add => Binary(Opcode::Iadd, I32X4),
        O::I64x2Add => Binary(Opcode::Iadd, I64X2),
        O::I8x16Sub => Binary(Opcode::Isub, I8X16),
        O::I16x8Sub => Binary(Opcode::Isub, I16X8),
        O::I32x4Sub => Binary(Opcode::Isub, I32X4),
        O::I64x2Sub => Binary(Opcode::Isub, I64X2),
        O::I16x8Mul => Binary(Opcode::Imul, I16X8),
        O::I32x4Mul => Binary(Opcode::Imul, I32X4),
        O::I64x2Mul => Binary(Opcode::Imul, I64X2),
        O::I8x16AddSatS => Binary(Opcode::SaddSat, I8X16),
        O::I8x16AddSatU => Binary(Opcode::UaddSat, I8X16),
        O::I8x16SubSatS => Binary(Opcode::SsubSat, I8X16),
        O::I8x16SubSatU => Binary(Opcode::UsubSat, I8X16),
        O::I16x8AddSatS => Binary(Opcode::SaddSat, I16X8),
        O::I16x8AddSatU => Binary(Opcode::UaddSat, I16X8),
        O::I16x8SubSatS => Binary(Opcode::SsubSat, I16X8),
        O::I16x8SubSatU => Binary(Opcode::UsubSat, I16X8),
        O::I8x16MinS => Binary(Opcode::Smin, I8X16),
        O::I8x16MinU => Binary(Opcode::Umin, I8X16),
        O::I8x16MaxS => Binary(Opcode::Smax, I8X16),
        O::I8x16MaxU => Binary(Opcode::Umax, I8X16),
        O::I16x8MinS => Binary(Opcode::Smin, I16X8),
        O::I16x8MinU => Binary(Opcode::Umin, I16X8),
        O::I16x8MaxS => Binary(Opcode::Smax, I16X8),
        O::I16x8MaxU => Binary(Opcode::Umax, I16X8),
        O::I32x4MinS => Binary(Opcode::Smin, I32X4),
        O::I32x4MinU => Binary(Opcode::Umin, I32X4),
        O::I32x4MaxS => Binary(Opcode::Smax, I32X4),
        O::I32x4MaxU => Binary(Opcode::Umax, I32X4),
        O::I8x16AvgrU => Binary(Opcode::AvgRound, I8X16),
        O::I16x8AvgrU => Binary(Opcode::AvgRound, I16X8),
        O::I16x8Q15MulrSatS | O::I16x8RelaxedQ15mulrS => Binary(Opcode::SqmulRoundSat, I16X8),
        O::I8x16Shl => Binary(Opcode::Ishl, I8X16),
        O::I8x16ShrS => Binary(Opcode::Sshr, I8X16),
        O::I8x16ShrU => Binary(Opcode::Ushr, I8X16),
        O::I16x8Shl => Binary(Opcode::Ishl, I16X8),
        O::I16x8ShrS => Binary(Opcode::Sshr, I16X8),
        O::I16x8ShrU => Binary(Opcode::Ushr, I16X8),
        O::I32x4Shl => Binary(Opcode::Ishl, I32X4),
        O::I32x4ShrS => Binary(Opcode::Sshr, I32X4),
        O::I32x4ShrU => Binary(Opcode::Ushr, I32X4),
        O::I64x2Shl => Binary(Opcode::Ishl, I64X2),
        O::I64x2ShrS => Binary(Opcode::Sshr, I64X2),
        O::I64x2ShrU => Binary(Opcode::Ushr, I64X2),

        // ---- widening, narrowing, products
        O::I8x16NarrowI16x8S => Binary(Opcode::Snarrow, I16X8),
        O::I8x16NarrowI16x8U => Binary(Opcode::Unarrow, I16X8),
        O::I16x8NarrowI32x4S => Binary(Opcode::Snarrow, I32X4),
        O::I16x8NarrowI32x4U => Binary(Opcode::Unarrow, I32X4),
        O::I16x8ExtendLowI8x16S => Unary(Opcode::SwidenLow, I8X16),
        O::I16x8ExtendHighI8x16S => Unary(Opcode::SwidenHigh, I8X16),
        O::I16x8ExtendLowI8x16U => Unary(Opcode::UwidenLow, I8X16),
        O::I16x8ExtendHighI8x16U => Unary(Opcode::UwidenHigh, I8X16),
        O::I32x4ExtendLowI16x8S => Unary(Opcode::SwidenLow, I16X8),
        O::I32x4ExtendHighI16x8S => Unary(Opcode::SwidenHigh, I16X8),
        O::I32x4ExtendLowI16x8U => Unary(Opcode::UwidenLow, I16X8),
        O::I32x4ExtendHighI16x8U => Unary(Opcode::UwidenHigh, I16X8),
        O::I64x2ExtendLowI32x4S => Unary(Opcode::SwidenLow, I32X4),
        O::I64x2ExtendHighI32x4S => Unary(Opcode::SwidenHigh, I32X4),
        O::I64x2ExtendLowI32x4U => Unary(Opcode::UwidenLow, I32X4),
        O::I64x2ExtendHighI32x4U => Unary(Opcode::UwidenHigh, I32X4),
        O::I16x8ExtMulLowI8x16S => ext_mul(I8X16, false, true),
        O::I16x8ExtMulHighI8x16S => ext_mul(I8X16, true, true),
        O::I16x8ExtMulLowI8x16U => ext_mul(I8X16, false, false),
        O::I16x8ExtMulHighI8x16U => ext_mul(I8X16, true, false),
        O::I32x4ExtMulLowI16x8S => ext_mul(I16X8, false, true),
        O::I32x4ExtMulHighI16x8S => ext_mul(I16X8, true, true),
        O::I32x4ExtMulLowI16x8U => ext_mul(I16X8, false, false),
        O::I32x4ExtMulHighI16x8U => ext_mul(I16X8, true, false),
        O::I64x2ExtMulLowI32x4S => ext_mul(I32X4, false, true),
        O::I64x2ExtMulHighI32x4S => ext_mul(I32X4, true, true),
        O::I64x2ExtMulLowI32x4U => ext_mul(I32X4, false, false),
        O::I64x2ExtMulHighI32x4U => ext_mul(I32X4, true, false),
        O::I16x8ExtAddPairwiseI8x16S => Simd::ExtAddPairwise {
            from: I8X16,
            signed: true,
        },
        O::I16x8ExtAddPairwiseI8x16U => Simd::ExtAddPairwise {
            from: I8X16,
            signed: false,
        },
        O::I32x4ExtAddPairwiseI16x8S => Simd::ExtAddPairwise {
            from: I16X8,
            signed: true,
        },
        O::I32x4ExtAddPairwiseI16x8U => Simd::ExtAddPairwise {
            from: I16X8,
            signed: false,
        },
        O::I32x4DotI16x8S => Simd::Dot(I16X8),
        O::I16x8RelaxedDotI8x16I7x16S => Simd::Dot(I8X16),
        O::I32x4RelaxedDotI8x16I7x16AddS => Simd::DotAdd,

        // ---- float arithmetic (Cranelift's fmin/fmax/nearest follow wasm)
        O::F32x4Abs => Unary(Opcode::Fabs, F32X4),
        O::F32x4Neg => Unary(Opcode::Fneg, F32X4),
        O::F32x4Sqrt => Unary(Opcode::Sqrt, F32X4),
        O::F32x4Ceil => Unary(Opcode::Ceil, F32X4),
        O::F32x4Floor => Unary(Opcode::Floor, F32X4),
        O::F32x4Trunc => Unary(Opcode::Trunc, F32X4),
        O::F32x4Nearest => Unary(Opcode::Nearest, F32X4),
        O::F64x2Abs => Unary(Opcode::Fabs, F64X2),
        O::F64x2Neg => Unary(Opcode::Fneg, F64X2),
        O::F64x2Sqrt => Unary(Opcode::Sqrt, F64X2),
        O::F64x2Ceil => Unary(Opcode::Ceil, F64X2),
        O::F64x2Floor => Unary(Opcode::Floor, F64X2),
        O::F64x2Trunc => Unary(Opcode::Trunc, F64X2),
        O::F64x2Nearest => Unary(Opcode::Nearest, F64X2),
        O::F32x4Add => Binary(Opcode::Fadd, F32X4),
        O::F32x4Sub => Binary(Opcode::Fsub, F32X4),
        O::F32x4Mul => Binary(Opcode::Fmul, F32X4),
        O::F32x4Div => Binary(Opcode::Fdiv, F32X4),
        O::F32x4Min | O::F32x4RelaxedMin => Binary(Opcode::Fmin, F32X4),
        O::F32x4Max | O::F32x4RelaxedMax => Binary(Opcode::Fmax, F32X4),
        O::F64x2Add => Binary(Opcode::Fadd, F64X2),
        O::F64x2Sub => Binary(Opcode::Fsub, F64X2),
        O::F64x2Mul => Binary(Opcode::Fmul, F64X2),
        O::F64x2Div => Binary(Opcode::Fdiv, F64X2),
        O::F64x2Min | O::F64x2RelaxedMin => Binary(Opcode::Fmin, F64X2),
        O::F64x2Max | O::F64x2RelaxedMax => Binary(Opcode::Fmax, F64X2),
        O::F32x4PMin => Simd::PseudoMinMax {
            ty: F32X4,
            max: false,
        },
        O::F32x4PMax => Simd::PseudoMinMax {
            ty: F32X4,
            max: true,
        },
        O::F64x2PMin => Simd::PseudoMinMax {
            ty: F64X2,
            max: false,
        },
        O::F64x2PMax => Simd::PseudoMinMax {
            ty: F64X2,
            max: true,
        },
        O::F32x4RelaxedMadd => Simd::Madd {
            ty: F32X4,
            negate: false,
        },
        O::F32x4RelaxedNmadd => Simd::Madd {
            ty: F32X4,
            negate: true,
        },
        O::F64x2RelaxedMadd => Simd::Madd {
            ty: F64X2,
            negate: false,
        },
        O::F64x2RelaxedNmadd => Simd::Madd {
            ty: F64X2,
            negate: true,
        },

        // ---- conversions
        O::F32x4ConvertI32x4S => Convert(Opcode::FcvtFromSint, I32X4, F32X4),
        O::F32x4ConvertI32x4U => Convert(Opcode::FcvtFromUint, I32X4, F32X4),
        O::I32x4TruncSatF32x4S | O::I32x4RelaxedTruncF32x4S => {
            Convert(Opcode::FcvtToSintSat, F32X4, I32X4)
        }
        O::I32x4TruncSatF32x4U | O::I32x4RelaxedTruncF32x4U => {
            Convert(Opcode::FcvtToUintSat, F32X4, I32X4)
        }
        O::I32x4TruncSatF64x2SZero | O::I32x4RelaxedTruncF64x2SZero => {
            Simd::TruncSatZero { signed: true }
        }
        O::I32x4TruncSatF64x2UZero | O::I32x4RelaxedTruncF64x2UZero => {
            Simd::TruncSatZero { signed: false }
        }
        O::F64x2ConvertLowI32x4S => Simd::ConvertLow { signed: true },
        O::F64x2ConvertLowI32x4U => Simd::ConvertLow { signed: false },
        O::F64x2PromoteLowF32x4 => Simd::PromoteLow,
        O::F32x4DemoteF64x2Zero => Simd::DemoteZero,
        _ => return None,
    })
}

fn ext_mul(from: Type, high: bool, signed: bool) -> Simd {
    Simd::ExtMul { from, high, signed }
}

/// The SIMD memory accesses other than `v128.load`/`v128.store`.
pub(super) fn simd_access(op: &Operator<'_>) -> Option<(MemArg, SimdAccess)> {
    use Operator as O;
    use SimdAccess::{LoadExtend, LoadLane, LoadSplat, LoadZero, StoreLane};
    Some(match *op {
        O::V128Load8x8S { memarg } => (memarg, LoadExtend(|b, f, p, o| b.ins().sload8x8(f, p, o))),
        O::V128Load8x8U { memarg } => (memarg, LoadExtend(|b, f, p, o| b.ins().uload8x8(f, p, o))),
        O::V128Load16x4S { memarg } => {
            (memarg, LoadExtend(|b, f, p, o| b.ins().sload16x4(f, p, o)))
        }
        O::V128Load16x4U { memarg } => {
            (memarg, LoadExtend(|b, f, p, o| b.ins().uload16x4(f, p, o)))
        }
        O::V128Load32x2S { memarg } => {
            (memarg, LoadExtend(|b, f, p, o| b.ins().sload32x2(f, p, o)))
        }
        O::V128Load32x2U { memarg } => {
            (memarg, LoadExtend(|b, f, p, o| b.ins().uload32x2(f, p, o)))
        }
        O::V128Load8Splat { memarg } => (memarg, LoadSplat(I8X16)),
        O::V128Load16Splat { memarg } => (memarg, LoadSplat(I16X8)),
        O::V128Load32Splat { memarg } => (memarg, LoadSplat(I32X4)),
        O::V128Load64Splat { memarg } => (memarg, LoadSplat(I64X2)),
        O::V128Load32Zero { memarg } => (memarg, LoadZero(I32X4)),
        O::V128Load64Zero { memarg } => (memarg, LoadZero(I64X2)),
        O::V128Load8Lane { memarg, lane } => (memarg, LoadLane(I8X16, lane)),
        O::V128Load16Lane { memarg, lane } => (memarg, LoadLane(I16X8, lane)),
        O::V128Load32Lane { memarg, lane } => (memarg, LoadLane(I32X4, lane)),
        O::V128Load64Lane { memarg, lane } => (memarg, LoadLane(I64X2, lane)),
        O::V128Store8Lane { memarg, lane } => (memarg, StoreLane(I8X16, lane)),
        O::V128Store16Lane { memarg, lane } => (memarg, StoreLane(I16X8, lane)),
        O::V128Store32Lane { memarg, lane } => (memarg, StoreLane(I32X4, lane)),
        O::V128Store64Lane { memarg, lane } => (memarg, StoreLane(I64X2, lane)),
        _ => return None,
    })
}

/// Flags of the register-level bitcasts between vector shapes (Cranelift
/// asks for an explicit byte order when the lane count changes).
fn lane_flags() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// `v` viewed as a `ty` vector; scalars (shift amounts) are returned as is.
fn as_lanes(b: &mut FunctionBuilder, ty: Type, v: Value) -> Value {
    let vt = b.func.dfg.value_type(v);
    if vt.is_vector() && vt != ty {
        b.ins().bitcast(ty, lane_flags(), v)
    } else {
        v
    }
}

/// A vector result as [`V128`]; a scalar result as is.
fn canonical(b: &mut FunctionBuilder, v: Value) -> Value {
    as_lanes(b, V128, v)
}

/// A vector constant of type `ty`.
fn vconst(b: &mut FunctionBuilder, ty: Type, bytes: &[u8; 16]) -> Value {
    let handle = b.func.dfg.constants.insert(ConstantData::from(&bytes[..]));
    b.ins().vconst(ty, handle)
}

/// The all-zero `v128` (the default of `v128` locals).
pub(super) fn zero(b: &mut FunctionBuilder) -> Value {
    vconst(b, V128, &[0; 16])
}

/// Widens the low or high half of `v` (lanes of `v`'s type).
fn widen(b: &mut FunctionBuilder, v: Value, high: bool, signed: bool) -> Value {
    let ins = b.ins();
    match (high, signed) {
        (false, true) => ins.swiden_low(v),
        (true, true) => ins.swiden_high(v),
        (false, false) => ins.uwiden_low(v),
        (true, false) => ins.uwiden_high(v),
    }
}

/// Signed dot product of two vectors: products of the widened lanes, with
/// adjacent products added (wrapping).
fn dot(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let xl = widen(b, x, false, true);
    let yl = widen(b, y, false, true);
    let lo = b.ins().imul(xl, yl);
    let xh = widen(b, x, true, true);
    let yh = widen(b, y, true, true);
    let hi = b.ins().imul(xh, yh);
    b.ins().iadd_pairwise(lo, hi)
}

/// Widens a vector and adds adjacent lanes.
fn ext_add_pairwise(b: &mut FunctionBuilder, v: Value, signed: bool) -> Value {
    let lo = widen(b, v, false, signed);
    let hi = widen(b, v, true, signed);
    b.ins().iadd_pairwise(lo, hi)
}

impl FuncTranslator<'_, '_> {
    /// Pops a `v128` operand viewed as a `ty` vector.
    fn pop_lanes(&mut self, ty: Type) -> Value {
        let v = self.pop();
        as_lanes(&mut self.builder, ty, v)
    }

    /// Pushes a result, vectors as [`V128`].
    fn push_canonical(&mut self, v: Value) {
        let v = canonical(&mut self.builder, v);
        self.push(v);
    }

    /// Emits SIMD operator `s` (see [`simd_op`]).
    pub(super) fn op_simd(&mut self, s: Simd) {
        let r = match s {
            Simd::Const(bytes) => vconst(&mut self.builder, V128, &bytes),
            Simd::Unary(opcode, ty) => {
                let x = self.pop_lanes(ty);
                let (inst, dfg) = self.builder.ins().Unary(opcode, ty, x);
                let r = dfg.first_result(inst);
                if self.builder.func.dfg.value_type(r) == I8 {
                    // `vany_true`/`vall_true`: a boolean.
                    self.builder.ins().uextend(I32, r)
                } else {
                    r
                }
            }
            Simd::Convert(opcode, from, to) => {
                let x = self.pop_lanes(from);
                let (inst, dfg) = self.builder.ins().Unary(opcode, to, x);
                dfg.first_result(inst)
            }
            Simd::Binary(opcode, ty) => {
                let y = self.pop_lanes(ty);
                let x = self.pop_lanes(ty);
                let (inst, dfg) = self.builder.ins().Binary(opcode, ty, x, y);
                dfg.first_result(inst)
            }
            Simd::Icmp(cc, ty) => {
                let y = self.pop_lanes(ty);
                let x = self.pop_lanes(ty);
                self.builder.ins().icmp(cc, x, y)
            }
            Simd::Fcmp(cc, ty) => {
                let y = self.pop_lanes(ty);
                let x = self.pop_lanes(ty);
                self.builder.ins().fcmp(cc, x, y)
            }
            Simd::Splat(ty) => {
                let x = self.pop();
                let x = self.narrow_to_lane(ty, x);
                self.builder.ins().splat(ty, x)
            }
            Simd::ExtractLane(ty, lane, signed) => {
                let v = self.pop_lanes(ty);
                let x = self.builder.ins().extractlane(v, lane);
                match ty.lane_type() {
                    I8 | I16 if signed => self.builder.ins().sextend(I32, x),
                    I8 | I16 => self.builder.ins().uextend(I32, x),
                    _ => x,
                }
            }
            Simd::ReplaceLane(ty, lane) => {
                let x = self.pop();
                let x = self.narrow_to_lane(ty, x);
                let v = self.pop_lanes(ty);
                self.builder.ins().insertlane(v, x, lane)
            }
            Simd::AndNot => {
                let y = self.pop_lanes(V128);
                let x = self.pop_lanes(V128);
                self.builder.ins().band_not(x, y)
            }
            Simd::Bitselect => {
                let c = self.pop_lanes(V128);
                let y = self.pop_lanes(V128);
                let x = self.pop_lanes(V128);
                self.builder.ins().bitselect(c, x, y)
            }
            Simd::Bitmask(ty) => {
                let v = self.pop_lanes(ty);
                self.builder.ins().vhigh_bits(I32, v)
            }
            Simd::Shuffle(lanes) => {
                let y = self.pop_lanes(I8X16);
                let x = self.pop_lanes(I8X16);
                let mask = self
                    .builder
                    .func
                    .dfg
                    .immediates
                    .push(ConstantData::from(&lanes[..]));
                self.builder.ins().shuffle(x, y, mask)
            }
            Simd::PseudoMinMax { ty, max } => {
                let y = self.pop_lanes(ty);
                let x = self.pop_lanes(ty);
                // pmin: y < x ? y : x; pmax: x < y ? y : x.
                let (l, r) = if max { (x, y) } else { (y, x) };
                let lt = self.builder.ins().fcmp(FloatCC::LessThan, l, r);
                let mask = as_lanes(&mut self.builder, ty, lt);
                self.builder.ins().bitselect(mask, y, x)
            }
            Simd::ExtMul { from, high, signed } => {
                let y = self.pop_lanes(from);
                let x = self.pop_lanes(from);
                let xw = widen(&mut self.builder, x, high, signed);
                let yw = widen(&mut self.builder, y, high, signed);
                self.builder.ins().imul(xw, yw)
            }
            Simd::ExtAddPairwise { from, signed } => {
                let x = self.pop_lanes(from);
                ext_add_pairwise(&mut self.builder, x, signed)
            }
            Simd::Dot(from) => {
                let y = self.pop_lanes(from);
                let x = self.pop_lanes(from);
                dot(&mut self.builder, x, y)
            }
            Simd::DotAdd => {
                let acc = self.pop_lanes(I32X4);
                let y = self.pop_lanes(I8X16);
                let x = self.pop_lanes(I8X16);
                // i16 lanes: the exact products (|a * b| <= 2^14), then
                // sums of four in i32.
                let b = &mut self.builder;
                let xl = widen(b, x, false, true);
                let yl = widen(b, y, false, true);
                let lo = b.ins().imul(xl, yl);
                let xh = widen(b, x, true, true);
                let yh = widen(b, y, true, true);
                let hi = b.ins().imul(xh, yh);
                let lo2 = ext_add_pairwise(b, lo, true);
                let hi2 = ext_add_pairwise(b, hi, true);
                let sums = b.ins().iadd_pairwise(lo2, hi2);
                b.ins().iadd(sums, acc)
            }
            Simd::ConvertLow { signed } => {
                let x = self.pop_lanes(I32X4);
                let w = widen(&mut self.builder, x, false, signed);
                if signed {
                    self.builder.ins().fcvt_from_sint(F64X2, w)
                } else {
                    self.builder.ins().fcvt_from_uint(F64X2, w)
                }
            }
            Simd::TruncSatZero { signed } => {
                let x = self.pop_lanes(F64X2);
                let zero = vconst(&mut self.builder, I64X2, &[0; 16]);
                let ins = self.builder.ins();
                if signed {
                    let w = ins.fcvt_to_sint_sat(I64X2, x);
                    self.builder.ins().snarrow(w, zero)
                } else {
                    let w = ins.fcvt_to_uint_sat(I64X2, x);
                    self.builder.ins().uunarrow(w, zero)
                }
            }
            Simd::PromoteLow => {
                let x = self.pop_lanes(F32X4);
                self.builder.ins().fvpromote_low(x)
            }
            Simd::DemoteZero => {
                let x = self.pop_lanes(F64X2);
                self.builder.ins().fvdemote(x)
            }
            Simd::Madd { ty, negate } => {
                let c = self.pop_lanes(ty);
                let y = self.pop_lanes(ty);
                let x = self.pop_lanes(ty);
                let p = self.builder.ins().fmul(x, y);
                let p = if negate {
                    self.builder.ins().fneg(p)
                } else {
                    p
                };
                self.builder.ins().fadd(p, c)
            }
        };
        self.push_canonical(r);
    }

    /// A scalar operand for a lane of `ty`: `i32` narrowed for 8- and
    /// 16-bit lanes, other types as they are.
    fn narrow_to_lane(&mut self, ty: Type, x: Value) -> Value {
        match ty.lane_type() {
            l @ (I8 | I16) => self.builder.ins().ireduce(l, x),
            _ => x,
        }
    }

    /// A SIMD memory access (see [`simd_access`]).
    pub(super) fn op_simd_access(
        &mut self,
        memarg: &MemArg,
        access: SimdAccess,
    ) -> Result<(), CompileError> {
        let r = match access {
            SimdAccess::LoadExtend(load) => {
                let (addr, off) = self.heap_addr(memarg, 8)?;
                let f = self.heap_flags();
                load(&mut self.builder, f, addr, off)
            }
            SimdAccess::LoadSplat(ty) => {
                let x = self.load_lane_scalar(memarg, ty)?;
                self.builder.ins().splat(ty, x)
            }
            SimdAccess::LoadZero(ty) => {
                let x = self.load_lane_scalar(memarg, ty)?;
                self.builder.ins().scalar_to_vector(ty, x)
            }
            SimdAccess::LoadLane(ty, lane) => {
                let v = self.pop_lanes(ty);
                let x = self.load_lane_scalar(memarg, ty)?;
                self.builder.ins().insertlane(v, x, lane)
            }
            SimdAccess::StoreLane(ty, lane) => {
                let v = self.pop_lanes(ty);
                let x = self.builder.ins().extractlane(v, lane);
                self.push(x);
                return self.op_store(memarg, ty.lane_type().bytes());
            }
        };
        self.push_canonical(r);
        Ok(())
    }

    /// Pops an address and loads one lane of a `ty` vector from it (the
    /// scalar load of `memory.rs`).
    fn load_lane_scalar(&mut self, memarg: &MemArg, ty: Type) -> Result<Value, CompileError> {
        self.op_load(memarg, ty.lane_type(), Ext::None)?;
        Ok(self.pop())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operand type a table row names is a 128-bit vector, so the
    /// bitcasts to and from [`V128`] are lossless.
    #[test]
    fn table_types_are_128_bit_vectors() {
        let ops = [
            Operator::I16x8Add,
            Operator::F64x2PMin,
            Operator::I32x4TruncSatF32x4U,
            Operator::I8x16NarrowI16x8U,
            Operator::I64x2GeS,
        ];
        for op in ops {
            let ty = match simd_op(&op).unwrap() {
                Simd::Binary(_, t) | Simd::Icmp(_, t) | Simd::Unary(_, t) => t,
                Simd::Convert(_, from, to) => {
                    assert_eq!(to.bits(), 128);
                    from
                }
                Simd::PseudoMinMax { ty, .. } => ty,
                other => panic!("unexpected row {other:?}"),
            };
            assert!(ty.is_vector() && ty.bits() == 128, "{op:?}");
        }
    }
}
