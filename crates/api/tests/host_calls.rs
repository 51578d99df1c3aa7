//! Calls between the host and wasm on their fast paths.
//!
//! From wasm into typed host functions: those whose values all fit in 64
//! bits (at most one result, no `v128`) go through a *direct* trampoline,
//! the values in registers; the others through the array trampoline. From
//! the host into wasm through `TypedFunc`: up to five parameters and one
//! result (no `v128`) go through a *typed entry*, the values in registers;
//! the others through the array entry. Every path must deliver exactly the
//! same bits, errors, traps and panics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use weft::{Caller, Engine, Error, ExternRef, Instance, Linker, Module, Store, V128};

const WAT: &str = r#"(module
  (import "h" "i32" (func $i32 (param i32) (result i32)))
  (import "h" "i64" (func $i64 (param i64) (result i64)))
  (import "h" "f32" (func $f32 (param f32) (result f32)))
  (import "h" "f64" (func $f64 (param f64) (result f64)))
  (import "h" "mixed" (func $mixed (param i32 i64 f32 f64 i32 i64 f32 f64) (result i64)))
  (import "h" "none" (func $none))
  (import "h" "caller" (func $caller (param i32) (result i32)))
  (import "h" "ext" (func $ext (param externref) (result externref)))
  (import "h" "v128" (func $v128 (param v128) (result v128)))
  (import "h" "pair" (func $pair (param i32) (result i32 i64)))
  (import "h" "fails" (func $fails (param i32) (result i32)))
  (func (export "i32") (param i32) (result i32) (call $i32 (local.get 0)))
  (func (export "i64") (param i64) (result i64) (call $i64 (local.get 0)))
  ;; Floats cross as bit patterns, so that NaN payloads can be checked.
  (func (export "f32") (param i32) (result i32)
    (i32.reinterpret_f32 (call $f32 (f32.reinterpret_i32 (local.get 0)))))
  (func (export "f64") (param i64) (result i64)
    (i64.reinterpret_f64 (call $f64 (f64.reinterpret_i64 (local.get 0)))))
  (func (export "mixed") (param i32 i64 i32 i64) (result i64)
    (call $mixed (local.get 0) (local.get 1)
      (f32.reinterpret_i32 (local.get 2)) (f64.reinterpret_i64 (local.get 3))
      (i32.add (local.get 0) (i32.const 1)) (i64.add (local.get 1) (i64.const 1))
      (f32.reinterpret_i32 (i32.xor (local.get 2) (i32.const 1)))
      (f64.reinterpret_i64 (i64.xor (local.get 3) (i64.const 1)))))
  (func (export "none") (param i32)
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get 0)))
      (call $none)
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l))))
  (func (export "caller") (param i32) (result i32) (call $caller (local.get 0)))
  (func (export "ext") (param externref) (result externref) (call $ext (local.get 0)))
  (func (export "v128") (param i64 i64) (result i64)
    (i64x2.extract_lane 1
      (call $v128 (i64x2.replace_lane 1 (i64x2.splat (local.get 0)) (local.get 1)))))
  (func (export "pair") (param i32) (result i64)
    (local i64)
    local.get 0
    call $pair
    local.set 1
    i64.extend_i32_u
    local.get 1
    i64.add)
  (func (export "fails") (param i32) (result i32) (call $fails (local.get 0)))
)"#;

#[allow(
    clippy::too_many_arguments,
    reason = "the host function under test takes eight parameters"
)]
fn mix(a: i32, b: i64, c: f32, d: f64, e: i32, f: i64, g: f32, h: f64) -> i64 {
    let words = [
        a as u32 as u64,
        b as u64,
        u64::from(c.to_bits()),
        d.to_bits(),
        e as u32 as u64,
        f as u64,
        u64::from(g.to_bits()),
        h.to_bits(),
    ];
    words.iter().enumerate().fold(0u64, |acc, (i, w)| {
        acc.rotate_left(7) ^ w.wrapping_mul(i as u64 * 2 + 1)
    }) as i64
}

struct Host {
    calls: Arc<AtomicUsize>,
    base: i32,
}

fn setup() -> (Store<Host>, Instance, Arc<AtomicUsize>) {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT).expect("module compiles");
    let calls = Arc::new(AtomicUsize::new(0));
    let mut linker = Linker::<Host>::new();
    linker
        .func_wrap("h", "i32", |x: i32| x ^ 0x5a5a_5a5a)
        .unwrap()
        .func_wrap("h", "i64", |x: i64| x.rotate_left(13))
        .unwrap()
        .func_wrap("h", "f32", |x: f32| {
            f32::from_bits(x.to_bits() ^ 0x0040_0001)
        })
        .unwrap()
        .func_wrap("h", "f64", |x: f64| {
            f64::from_bits(x.to_bits() ^ 0x0008_0000_0000_0001)
        })
        .unwrap()
        .func_wrap("h", "mixed", mix)
        .unwrap();
    let counter = calls.clone();
    linker
        .func_wrap("h", "none", move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap()
        .func_wrap("h", "caller", |caller: Caller<'_, Host>, x: i32| {
            caller.data().base.wrapping_add(x)
        })
        .unwrap()
        .func_wrap("h", "ext", |x: Option<ExternRef>| {
            let n = *x?.data().downcast_ref::<u64>()?;
            Some(ExternRef::new(n + 1))
        })
        .unwrap()
        .func_wrap("h", "v128", |v: V128| {
            V128::from(u128::from(v).rotate_left(64))
        })
        .unwrap()
        .func_wrap("h", "pair", |x: i32| {
            (x.wrapping_mul(3), i64::from(x) << 32)
        })
        .unwrap()
        .func_wrap("h", "fails", |x: i32| -> weft::Result<i32> {
            match x {
                0 => Err(Error::InvalidArgument("host says no".into())),
                1 => panic!("host panics"),
                _ => Ok(x),
            }
        })
        .unwrap();
    let mut store = Store::new(
        &engine,
        Host {
            calls: calls.clone(),
            base: 1000,
        },
    );
    let instance = linker.instantiate(&mut store, &module).unwrap();
    (store, instance, calls)
}

const I32S: [i32; 6] = [0, 1, -1, i32::MIN, i32::MAX, 0x1234_5678];
const I64S: [i64; 6] = [0, 1, -1, i64::MIN, i64::MAX, 0x0123_4567_89ab_cdef];
/// f32 bit patterns: zeros, a quiet NaN with a payload, a signalling NaN,
/// infinity, a subnormal.
const F32S: [u32; 6] = [
    0,
    0x8000_0000,
    0x7fc0_1234,
    0x7fa0_0001,
    0x7f80_0000,
    0x0000_0001,
];
const F64S: [u64; 6] = [
    0,
    0x8000_0000_0000_0000,
    0x7ff8_0000_0000_1234,
    0x7ff4_0000_0000_0001,
    0x7ff0_0000_0000_0000,
    1,
];

#[test]
fn every_scalar_crosses_a_host_call_bit_for_bit() {
    let (mut store, inst, _) = setup();
    let f = inst.get_typed_func::<i32, i32>(&mut store, "i32").unwrap();
    for x in I32S {
        assert_eq!(f.call(&mut store, x).unwrap(), x ^ 0x5a5a_5a5a);
    }
    let f = inst.get_typed_func::<i64, i64>(&mut store, "i64").unwrap();
    for x in I64S {
        assert_eq!(f.call(&mut store, x).unwrap(), x.rotate_left(13));
    }
    let f = inst.get_typed_func::<u32, u32>(&mut store, "f32").unwrap();
    for x in F32S {
        assert_eq!(f.call(&mut store, x).unwrap(), x ^ 0x0040_0001, "{x:#x}");
    }
    let f = inst.get_typed_func::<u64, u64>(&mut store, "f64").unwrap();
    for x in F64S {
        assert_eq!(
            f.call(&mut store, x).unwrap(),
            x ^ 0x0008_0000_0000_0001,
            "{x:#x}"
        );
    }
}

#[test]
fn eight_parameters_of_both_register_kinds_arrive_in_order() {
    // Eight parameters: more than the registers for integers, so some go
    // on the stack, mixed with floats in their own registers.
    let (mut store, inst, _) = setup();
    let f = inst
        .get_typed_func::<(i32, i64, u32, u64), i64>(&mut store, "mixed")
        .unwrap();
    for (i, a) in I32S.into_iter().enumerate() {
        let (b, c, d) = (I64S[i], F32S[i], F64S[i]);
        let want = mix(
            a,
            b,
            f32::from_bits(c),
            f64::from_bits(d),
            a.wrapping_add(1),
            b.wrapping_add(1),
            f32::from_bits(c ^ 1),
            f64::from_bits(d ^ 1),
        );
        assert_eq!(f.call(&mut store, (a, b, c, d)).unwrap(), want);
    }
}

#[test]
fn no_value_caller_and_reference_host_calls_work() {
    let (mut store, inst, calls) = setup();
    let none = inst.get_typed_func::<i32, ()>(&mut store, "none").unwrap();
    none.call(&mut store, 1000).unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 1000);
    assert_eq!(store.data().calls.load(Ordering::Relaxed), 1000);

    let caller = inst
        .get_typed_func::<i32, i32>(&mut store, "caller")
        .unwrap();
    assert_eq!(caller.call(&mut store, 5).unwrap(), 1005);
    store.data_mut().base = -7;
    assert_eq!(caller.call(&mut store, 5).unwrap(), -2);

    let ext = inst
        .get_typed_func::<Option<ExternRef>, Option<ExternRef>>(&mut store, "ext")
        .unwrap();
    let out = ext
        .call(&mut store, Some(ExternRef::new(41u64)))
        .unwrap()
        .expect("a reference back");
    assert_eq!(out.data().downcast_ref::<u64>(), Some(&42));
    assert!(ext.call(&mut store, None).unwrap().is_none());
}

#[test]
fn v128_and_multi_value_host_calls_take_the_array_path_and_still_work() {
    let (mut store, inst, _) = setup();
    let v = inst
        .get_typed_func::<(i64, i64), i64>(&mut store, "v128")
        .unwrap();
    // Lanes (a, b) rotated by 64 bits become (b, a): lane 1 is `a`.
    assert_eq!(v.call(&mut store, (3, 4)).unwrap(), 3);
    let pair = inst.get_typed_func::<i32, i64>(&mut store, "pair").unwrap();
    assert_eq!(pair.call(&mut store, 5).unwrap(), (5i64 << 32) + 15);
}

#[test]
fn a_host_functions_error_and_panic_reach_the_embedder_and_the_store_stays_usable() {
    let (mut store, inst, _) = setup();
    let f = inst
        .get_typed_func::<i32, i32>(&mut store, "fails")
        .unwrap();
    match f.call(&mut store, 0) {
        Err(Error::InvalidArgument(m)) => assert_eq!(m, "host says no"),
        other => panic!("expected the host's error, got {other:?}"),
    }
    let panicked = catch_unwind(AssertUnwindSafe(|| f.call(&mut store, 1)));
    let payload = panicked.expect_err("the host's panic is resumed");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"host panics"));
    assert_eq!(f.call(&mut store, 9).unwrap(), 9);
    let g = inst.get_typed_func::<i32, i32>(&mut store, "i32").unwrap();
    assert_eq!(g.call(&mut store, 0).unwrap(), 0x5a5a_5a5a);
}

/// Calls from the host into wasm through `TypedFunc`: functions of up to
/// five parameters and one result (no `v128`) go through a typed entry with
/// the values in registers; the others through the array entry. Both must
/// deliver the same bits.
const INTO_WAT: &str = r#"(module
  (func (export "f32") (param f32) (result f32) (local.get 0))
  (func (export "f64") (param f64) (result f64) (local.get 0))
  (func (export "five") (param i32 f32 i64 f64 i32) (result i64)
    (i64.xor
      (i64.xor (i64.extend_i32_u (local.get 0))
               (i64.shl (i64.extend_i32_u (i32.reinterpret_f32 (local.get 1))) (i64.const 7)))
      (i64.xor (i64.rotl (local.get 2) (i64.const 13))
               (i64.xor (i64.reinterpret_f64 (local.get 3))
                        (i64.shl (i64.extend_i32_u (local.get 4)) (i64.const 32))))))
  (func (export "six") (param i32 f32 i64 f64 i32 i32) (result i64)
    (i64.add
      (i64.xor
        (i64.xor (i64.extend_i32_u (local.get 0))
                 (i64.shl (i64.extend_i32_u (i32.reinterpret_f32 (local.get 1))) (i64.const 7)))
        (i64.xor (i64.rotl (local.get 2) (i64.const 13))
                 (i64.xor (i64.reinterpret_f64 (local.get 3))
                          (i64.shl (i64.extend_i32_u (local.get 4)) (i64.const 32)))))
      (i64.extend_i32_u (local.get 5))))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "nothing"))
)"#;

fn five(a: i32, b: u32, c: i64, d: u64, e: i32) -> i64 {
    ((a as u32 as u64)
        ^ (u64::from(b) << 7)
        ^ (c as u64).rotate_left(13)
        ^ d
        ^ ((e as u32 as u64) << 32)) as i64
}

#[test]
fn typed_calls_into_wasm_carry_every_scalar_bit_for_bit() {
    let engine = Engine::default();
    let module = Module::new(&engine, INTO_WAT).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let f = inst.get_typed_func::<f32, f32>(&mut store, "f32").unwrap();
    for x in F32S {
        let got = f.call(&mut store, f32::from_bits(x)).unwrap();
        assert_eq!(got.to_bits(), x, "{x:#x}");
    }
    let f = inst.get_typed_func::<f64, f64>(&mut store, "f64").unwrap();
    for x in F64S {
        let got = f.call(&mut store, f64::from_bits(x)).unwrap();
        assert_eq!(got.to_bits(), x, "{x:#x}");
    }
    // Five parameters (a typed entry) and six (the array entry) agree with
    // each other and with the same computation in Rust.
    let f5 = inst
        .get_typed_func::<(i32, f32, i64, f64, i32), i64>(&mut store, "five")
        .unwrap();
    let f6 = inst
        .get_typed_func::<(i32, f32, i64, f64, i32, i32), i64>(&mut store, "six")
        .unwrap();
    for i in 0..I32S.len() {
        let (a, b, c, d, e) = (
            I32S[i],
            F32S[i],
            I64S[i],
            F64S[i],
            I32S[(i + 1) % I32S.len()],
        );
        let want = five(a, b, c, d, e);
        let args = (a, f32::from_bits(b), c, f64::from_bits(d), e);
        assert_eq!(f5.call(&mut store, args).unwrap(), want);
        let args6 = (a, f32::from_bits(b), c, f64::from_bits(d), e, 9);
        assert_eq!(f6.call(&mut store, args6).unwrap(), want.wrapping_add(9));
    }
    let nothing = inst
        .get_typed_func::<(), ()>(&mut store, "nothing")
        .unwrap();
    nothing.call(&mut store, ()).unwrap();
}

#[test]
fn a_trap_in_a_typed_call_is_an_error_and_the_next_call_works() {
    let engine = Engine::default();
    let module = Module::new(&engine, INTO_WAT).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let div = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "div")
        .unwrap();
    for _ in 0..3 {
        match div.call(&mut store, (1, 0)) {
            Err(Error::Trap(t)) => assert_eq!(t.kind(), weft::TrapKind::IntegerDivisionByZero),
            other => panic!("expected a trap, got {other:?}"),
        }
        assert_eq!(div.call(&mut store, (-9, 2)).unwrap(), -4);
    }
}
