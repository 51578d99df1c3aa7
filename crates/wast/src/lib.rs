//! WebAssembly spec-script (`.wast`) support on the public `weft` API:
//! argument values, result patterns, the `spectest` host module, and a
//! sequential script runner. `weft wast` runs scripts with it; the project's
//! spec harness (`xtask`) uses the same values, patterns and host module.

mod runner;

use wast::WastArg;
use wast::core::{AbstractHeapType, HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};
use weft::{
    Extern, ExternRef, Global, GlobalType, Linker, Memory, MemoryType, Store, Table, TableType,
    Val, ValType,
};

pub use runner::{Report, run_script};

/// Something a script uses that this support does not handle (counted as
/// skipped, with the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip(pub String);

/// A script argument as a value; an `externref` `N` is an [`ExternRef`]
/// holding the `u32` `N`.
pub fn arg(a: &WastArg<'_>) -> Result<Val, Skip> {
    Ok(match a {
        WastArg::Core(WastArgCore::I32(v)) => Val::I32(*v),
        WastArg::Core(WastArgCore::I64(v)) => Val::I64(*v),
        WastArg::Core(WastArgCore::F32(v)) => Val::F32(v.bits),
        WastArg::Core(WastArgCore::F64(v)) => Val::F64(v.bits),
        WastArg::Core(WastArgCore::V128(v)) => Val::V128(u128::from_le_bytes(v.to_le_bytes())),
        WastArg::Core(WastArgCore::RefNull(HeapType::Abstract { ty, .. })) => match ty {
            AbstractHeapType::Func => Val::FuncRef(None),
            AbstractHeapType::Extern => Val::ExternRef(None),
            AbstractHeapType::Exn => Val::ExnRef(None),
            other => return Err(Skip(format!("ref.null {other:?} not supported"))),
        },
        // A concrete heap type is a function type (no GC types in weft).
        WastArg::Core(WastArgCore::RefNull(HeapType::Concrete(_))) => Val::FuncRef(None),
        WastArg::Core(WastArgCore::RefExtern(n)) => Val::ExternRef(Some(ExternRef::new(*n))),
        other => return Err(Skip(format!("argument {other:?} not supported"))),
    })
}

fn f32_matches(p: &NanPattern<wast::token::F32>, bits: u32) -> bool {
    let v = f32::from_bits(bits);
    match p {
        NanPattern::CanonicalNan => v.is_nan() && bits & 0x7fff_ffff == 0x7fc0_0000,
        NanPattern::ArithmeticNan => v.is_nan() && bits & 0x0040_0000 != 0,
        NanPattern::Value(x) => x.bits == bits,
    }
}

fn f64_matches(p: &NanPattern<wast::token::F64>, bits: u64) -> bool {
    let v = f64::from_bits(bits);
    match p {
        NanPattern::CanonicalNan => {
            v.is_nan() && bits & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000
        }
        NanPattern::ArithmeticNan => v.is_nan() && bits & 0x0008_0000_0000_0000 != 0,
        NanPattern::Value(x) => x.bits == bits,
    }
}

fn v128_matches(p: &V128Pattern, v: u128) -> bool {
    let b = v.to_le_bytes();
    match p {
        V128Pattern::I8x16(x) => x.iter().enumerate().all(|(i, x)| b[i] as i8 == *x),
        V128Pattern::I16x8(x) => x
            .iter()
            .enumerate()
            .all(|(i, x)| i16::from_le_bytes([b[2 * i], b[2 * i + 1]]) == *x),
        V128Pattern::I32x4(x) => x
            .iter()
            .enumerate()
            .all(|(i, x)| i32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) == *x),
        V128Pattern::I64x2(x) => x
            .iter()
            .enumerate()
            .all(|(i, x)| i64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()) == *x),
        V128Pattern::F32x4(x) => x.iter().enumerate().all(|(i, p)| {
            f32_matches(
                p,
                u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()),
            )
        }),
        V128Pattern::F64x2(x) => x.iter().enumerate().all(|(i, p)| {
            f64_matches(
                p,
                u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()),
            )
        }),
    }
}

/// Whether a result matches what the script expects (NaN patterns,
/// `either`, references).
pub fn ret_matches(expected: &WastRetCore<'_>, got: &Val) -> Result<bool, Skip> {
    Ok(match (expected, got) {
        (WastRetCore::I32(e), Val::I32(g)) => e == g,
        (WastRetCore::I64(e), Val::I64(g)) => e == g,
        (WastRetCore::F32(p), Val::F32(g)) => f32_matches(p, *g),
        (WastRetCore::F64(p), Val::F64(g)) => f64_matches(p, *g),
        (WastRetCore::V128(p), Val::V128(g)) => v128_matches(p, *g),
        (WastRetCore::Either(options), g) => {
            for o in options {
                if ret_matches(o, g)? {
                    return Ok(true);
                }
            }
            false
        }
        // `ref.null exn` is only a null exception reference.
        (
            WastRetCore::RefNull(Some(HeapType::Abstract {
                ty: AbstractHeapType::Exn,
                ..
            })),
            g,
        ) => matches!(g, Val::ExnRef(None)),
        (WastRetCore::RefNull(_), Val::ExnRef(_)) => false,
        // `ref.null extern` is no function reference, and `ref.null func`
        // or `ref.null $t` (a function type) no host reference.
        (
            WastRetCore::RefNull(Some(HeapType::Abstract {
                ty: AbstractHeapType::Extern,
                ..
            })),
            Val::FuncRef(_),
        ) => false,
        (
            WastRetCore::RefNull(Some(
                HeapType::Abstract {
                    ty: AbstractHeapType::Func,
                    ..
                }
                | HeapType::Concrete(_),
            )),
            Val::ExternRef(_),
        ) => false,
        (WastRetCore::RefNull(_), Val::FuncRef(f)) => f.is_none(),
        (WastRetCore::RefNull(_), Val::ExternRef(e)) => e.is_none(),
        (WastRetCore::RefExtern(None), Val::ExternRef(e)) => e.is_some(),
        (WastRetCore::RefExtern(Some(n)), Val::ExternRef(Some(e))) => {
            e.downcast_ref::<u32>() == Some(n)
        }
        (WastRetCore::RefFunc(None), Val::FuncRef(f)) => f.is_some(),
        (WastRetCore::RefFunc(Some(_)), Val::FuncRef(_)) => {
            return Err(Skip("ref.func with an index in results".into()));
        }
        (WastRetCore::RefNull(_) | WastRetCore::RefExtern(_) | WastRetCore::RefFunc(_), _) => false,
        (
            WastRetCore::I32(_)
            | WastRetCore::I64(_)
            | WastRetCore::F32(_)
            | WastRetCore::F64(_)
            | WastRetCore::V128(_),
            _,
        ) => false,
        (other, _) => return Err(Skip(format!("result {other:?} not supported"))),
    })
}

/// Whether an error message matches what the script expects: weft uses the
/// spec's wording, so the expected text must appear in ours.
pub fn message_matches(got: &str, expected: &str) -> bool {
    got.contains(expected) || expected.starts_with(got)
}

/// Defines the `spectest` host module the scripts import: `print*`
/// functions, `global_*` globals (666 and 666.6), a 1-2 page `memory`, a
/// shared one, and 10-20 element tables `table` and `table64` (64-bit
/// indices). Later definitions may shadow
/// names (scripts register names again).
///
/// # Errors
/// If the store cannot create the memories.
pub fn define_spectest(store: &mut Store<()>, linker: &mut Linker<()>) -> weft::Result<()> {
    // A script may register a name again; the newest definition wins.
    linker.allow_shadowing(true);
    linker
        .func_wrap("spectest", "print", || {})?
        .func_wrap("spectest", "print_i32", |_: i32| {})?
        .func_wrap("spectest", "print_i64", |_: i64| {})?
        .func_wrap("spectest", "print_f32", |_: f32| {})?
        .func_wrap("spectest", "print_f64", |_: f64| {})?
        .func_wrap("spectest", "print_i32_f32", |_: i32, _: f32| {})?
        .func_wrap("spectest", "print_f64_f64", |_: f64, _: f64| {})?;
    let g = |ty| GlobalType::new(ty, false);
    let globals = [
        ("global_i32", g(ValType::I32), Val::I32(666)),
        ("global_i64", g(ValType::I64), Val::I64(666)),
        ("global_f32", g(ValType::F32), Val::F32(666.6f32.to_bits())),
        ("global_f64", g(ValType::F64), Val::F64(666.6f64.to_bits())),
    ];
    for (name, ty, v) in globals {
        let global = Global::new(&mut *store, ty, v)?;
        linker.define("spectest", name, global)?;
    }
    let memory = Memory::new(&mut *store, MemoryType::new(1, Some(2)))?;
    linker.define("spectest", "memory", Extern::Memory(memory))?;
    let shared = Memory::new(&mut *store, MemoryType::shared(1, 2))?;
    linker.define("spectest", "shared_memory", Extern::Memory(shared))?;
    let table = Table::new(
        &mut *store,
        TableType::new(ValType::FUNCREF, 10, Some(20)),
        Val::FuncRef(None),
    )?;
    linker.define("spectest", "table", Extern::Table(table))?;
    let table64 = Table::new(
        &mut *store,
        TableType::new64(ValType::FUNCREF, 10, Some(20)),
        Val::FuncRef(None),
    )?;
    linker.define("spectest", "table64", Extern::Table(table64))?;
    Ok(())
}
