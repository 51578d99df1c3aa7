//! `v128` values across every boundary: typed and dynamic calls into wasm,
//! host functions called from wasm (typed and dynamic), multiple results
//! (the return area), many parameters (passed on the stack), globals, and
//! block parameters; and relaxed SIMD's fixed choices, identical on every
//! run.

use weft::{
    Engine, Func, FuncType, Global, GlobalType, Instance, Module, Store, V128, Val, ValType,
};

/// A vector whose bytes are `seed, seed+1, ...` (wrapping).
fn ramp(seed: u8) -> V128 {
    let mut b = [0u8; 16];
    for (i, x) in b.iter_mut().enumerate() {
        *x = seed.wrapping_add(i as u8);
    }
    V128::from_bytes(b)
}

/// Byte-wise wrapping add, computed in Rust.
fn add_bytes(a: V128, b: V128) -> V128 {
    let (a, b) = (a.to_bytes(), b.to_bytes());
    let mut r = [0u8; 16];
    for i in 0..16 {
        r[i] = a[i].wrapping_add(b[i]);
    }
    V128::from_bytes(r)
}

fn instance(wat: &str) -> (Store<()>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    (store, instance)
}

#[test]
fn v128_lanes_and_bytes_agree_with_memory_order() {
    let (mut store, instance) = instance(
        r#"(module (memory (export "m") 1)
            (func (export "store") (param v128) (v128.store (i32.const 0) (local.get 0)))
            (func (export "lane1") (param v128) (result i32) (i32x4.extract_lane 1 (local.get 0))))"#,
    );
    let v = V128::from_i32x4([7, -8, 9, 10]);
    let store_fn = instance
        .get_typed_func::<V128, ()>(&mut store, "store")
        .unwrap();
    store_fn.call(&mut store, v).unwrap();
    let memory = instance.get_memory(&mut store, "m").unwrap();
    assert_eq!(memory.data(&store)[..16], v.to_bytes());
    let lane1 = instance
        .get_typed_func::<V128, i32>(&mut store, "lane1")
        .unwrap();
    assert_eq!(lane1.call(&mut store, v).unwrap(), -8);
}

#[test]
fn many_v128_parameters_and_several_results() {
    // Ten vector parameters: more than the registers that carry them.
    let params = "(param v128 v128 v128 v128 v128 v128 v128 v128 v128 v128)";
    let sum = (0..10)
        .map(|i| format!("(local.get {i})"))
        .fold(String::from("(v128.const i64x2 0 0)"), |acc, g| {
            format!("(i8x16.add {acc} {g})")
        });
    let wat = format!(
        r#"(module
            (func $sum (export "sum") {params} (result v128) {sum})
            (func (export "swap") (param v128 i32 v128) (result v128 i32 v128)
                (local.get 2) (local.get 1) (local.get 0))
            (func (export "call_sum") (param v128) (result v128)
                (call $sum (local.get 0) (local.get 0) (local.get 0) (local.get 0) (local.get 0)
                           (local.get 0) (local.get 0) (local.get 0) (local.get 0) (local.get 0))))"#
    );
    let (mut store, instance) = instance(&wat);
    let vs: Vec<V128> = (0..10).map(|i| ramp(i * 17)).collect();
    let expected = vs.iter().fold(V128::default(), |acc, &v| add_bytes(acc, v));
    let f = instance.get_func(&mut store, "sum").unwrap();
    let args: Vec<Val> = vs.iter().map(|&v| Val::from(v)).collect();
    let mut out = [Val::I32(0)];
    f.call(&mut store, &args, &mut out).unwrap();
    assert_eq!(out[0].v128(), Some(expected));

    let call_sum = instance
        .get_typed_func::<V128, V128>(&mut store, "call_sum")
        .unwrap();
    let x = ramp(3);
    let ten_x = (0..10).fold(V128::default(), |acc, _| add_bytes(acc, x));
    assert_eq!(call_sum.call(&mut store, x).unwrap(), ten_x);

    let swap = instance
        .get_typed_func::<(V128, i32, V128), (V128, i32, V128)>(&mut store, "swap")
        .unwrap();
    let (a, b) = (ramp(1), ramp(100));
    assert_eq!(swap.call(&mut store, (a, 5, b)).unwrap(), (b, 5, a));
}

#[test]
fn host_functions_take_and_return_v128() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "typed" (func $typed (param v128 v128) (result v128)))
            (import "host" "dynamic" (func $dynamic (param v128) (result v128 v128)))
            (func (export "run") (param v128 v128) (result v128)
                (call $typed (local.get 0) (local.get 1))
                (call $dynamic)
                (i8x16.add)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let typed = Func::wrap(&mut store, |a: V128, b: V128| add_bytes(a, b)).unwrap();
    let ty = FuncType::new([ValType::V128], [ValType::V128, ValType::V128]);
    let dynamic = Func::new(&mut store, ty, |_, params, results| {
        let v = params[0].v128().unwrap();
        results[0] = Val::from(v);
        results[1] = Val::from(ramp(200));
        Ok(())
    })
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[typed.into(), dynamic.into()]).unwrap();
    let run = instance
        .get_typed_func::<(V128, V128), V128>(&mut store, "run")
        .unwrap();
    let (a, b) = (ramp(10), ramp(250));
    let expected = add_bytes(add_bytes(a, b), ramp(200));
    assert_eq!(run.call(&mut store, (a, b)).unwrap(), expected);
}

#[test]
fn v128_globals_and_block_parameters() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "g" (global $g (mut v128)))
            (global $h (export "h") (mut v128) (v128.const i32x4 1 2 3 4))
            (func (export "run") (param $n i32) (result v128)
                (global.get $g)
                (loop $l (param v128) (result v128)
                    (i32x4.add (global.get $h))
                    (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                    (br_if $l (local.get $n)))
                (global.set $h (global.get $g))
                (if (param v128) (result v128) (i32.const 1)
                    (then (i32x4.mul (i32x4.splat (i32.const 2))))
                    (else))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let g = Global::new(
        &mut store,
        GlobalType::new(ValType::V128, true),
        Val::from(V128::from_i32x4([100, 200, 300, 400])),
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[g.into()]).unwrap();
    let run = instance
        .get_typed_func::<i32, V128>(&mut store, "run")
        .unwrap();
    let expected: Vec<i32> = [100, 200, 300, 400]
        .iter()
        .zip([1, 2, 3, 4])
        .map(|(g, h)| (g + 3 * h) * 2)
        .collect();
    assert_eq!(
        run.call(&mut store, 3).unwrap().to_i32x4()[..],
        expected[..]
    );
    let h = instance.get_global(&mut store, "h").unwrap();
    assert_eq!(
        h.get(&store).unwrap().v128(),
        Some(V128::from_i32x4([100, 200, 300, 400]))
    );
}

#[test]
fn relaxed_simd_results_are_the_documented_choices() {
    let (mut store, instance) = instance(
        r#"(module
            (func (export "swizzle") (param v128 v128) (result v128)
                (i8x16.relaxed_swizzle (local.get 0) (local.get 1)))
            (func (export "trunc") (param v128) (result v128)
                (i32x4.relaxed_trunc_f32x4_s (local.get 0)))
            (func (export "madd") (param v128 v128 v128) (result v128)
                (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))
            (func (export "laneselect") (param v128 v128 v128) (result v128)
                (i32x4.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2))))"#,
    );
    let f4 = |x: [f32; 4]| {
        let mut b = [0u8; 16];
        for (c, v) in b.chunks_exact_mut(4).zip(x) {
            c.copy_from_slice(&v.to_le_bytes());
        }
        V128::from_bytes(b)
    };
    let swizzle = instance
        .get_typed_func::<(V128, V128), V128>(&mut store, "swizzle")
        .unwrap();
    let trunc = instance
        .get_typed_func::<V128, V128>(&mut store, "trunc")
        .unwrap();
    let madd = instance
        .get_typed_func::<(V128, V128, V128), V128>(&mut store, "madd")
        .unwrap();
    let laneselect = instance
        .get_typed_func::<(V128, V128, V128), V128>(&mut store, "laneselect")
        .unwrap();
    // (1 + 2^-12)^2 is 1 + 2^-11 + 2^-24: unfused, the 2^-24 is rounded
    // away (a tie, to even) before 1 is subtracted; fused, it survives.
    let e = 1.0f32 + 1.0 / 4096.0;
    let unfused = e * e - 1.0;
    assert_ne!(unfused, e.mul_add(e, -1.0));
    // Indices >= 16 select 0, as `i8x16.swizzle` does.
    let idx = V128::from_bytes([0, 15, 16, 0x80, 0xff, 1, 2, 3, 17, 4, 5, 6, 7, 8, 9, 200]);
    let got = swizzle
        .call(&mut store, (ramp(50), idx))
        .unwrap()
        .to_bytes();
    let want: Vec<u8> = idx
        .to_bytes()
        .iter()
        .map(|&i| if i < 16 { 50 + i } else { 0 })
        .collect();
    assert_eq!(got[..], want[..]);
    // NaN -> 0, out of range saturates, as `trunc_sat`.
    let t = trunc
        .call(&mut store, f4([f32::NAN, 3e9, -3e9, -2.7]))
        .unwrap();
    assert_eq!(t.to_i32x4(), [0, i32::MAX, i32::MIN, -2]);
    let m = madd
        .call(&mut store, (f4([e; 4]), f4([e; 4]), f4([-1.0; 4])))
        .unwrap();
    assert_eq!(m, f4([unfused; 4]));
    // Bit by bit, not by the top bit of each lane.
    let mask = V128::from_i32x4([0x0000_ffff, -1, 0, 0x7fff_ffff]);
    let (a, b) = (V128::from_i32x4([-1; 4]), V128::from_i32x4([0; 4]));
    let s = laneselect.call(&mut store, (a, b, mask)).unwrap();
    assert_eq!(s, mask);
}

#[test]
fn simd_code_survives_serialization_and_traps_out_of_bounds() {
    // Vector constants, a shuffle mask and a lane load live in the code's
    // constant pool or immediates: they must come back with the code.
    let wat = r#"(module (memory 1) (data (i32.const 65534) "\ab\cd")
        (func (export "f") (param v128) (result v128)
            (i8x16.shuffle 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0
                (i8x16.add (local.get 0) (v128.const i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16))
                (local.get 0)))
        (func (export "load") (param i32) (result v128) (v128.load (local.get 0)))
        (func (export "lane") (param i32) (result v128)
            (v128.load16_lane 7 (local.get 0) (v128.const i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16))))"#;
    // Guard pages elide the bounds checks; without them they are explicit.
    let mut checked = weft::Config::new();
    checked.memory_reservation(1 << 20).memory_guard_size(0);
    for engine in [Engine::default(), Engine::new(&checked).unwrap()] {
        serialized_simd_module_runs(&engine, wat);
    }
}

fn serialized_simd_module_runs(engine: &Engine, wat: &str) {
    let bytes = Module::new(engine, wat).unwrap().serialize().unwrap();
    // SAFETY: weft's own output, for the same engine settings.
    let module = unsafe { Module::deserialize(engine, &bytes) }.unwrap();
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let f = instance
        .get_typed_func::<V128, V128>(&mut store, "f")
        .unwrap();
    let x = ramp(40);
    let sum = add_bytes(x, ramp(1)).to_bytes();
    let expected: [u8; 16] = std::array::from_fn(|i| sum[15 - i]);
    assert_eq!(f.call(&mut store, x).unwrap().to_bytes(), expected);

    let load = instance
        .get_typed_func::<i32, V128>(&mut store, "load")
        .unwrap();
    let lane = instance
        .get_typed_func::<i32, V128>(&mut store, "lane")
        .unwrap();
    // The last in-bounds 16 bytes (and 2 bytes), then one byte further.
    let mut last = [0u8; 16];
    last[14..].copy_from_slice(&[0xab, 0xcd]);
    assert_eq!(load.call(&mut store, 65536 - 16).unwrap().to_bytes(), last);
    // Lane 7 (bytes 14 and 15) from memory, the others kept.
    let mut lane7: [u8; 16] = std::array::from_fn(|i| i as u8 + 1);
    lane7[14..].copy_from_slice(&[0xab, 0xcd]);
    assert_eq!(lane.call(&mut store, 65536 - 2).unwrap().to_bytes(), lane7);
    for r in [
        load.call(&mut store, 65536 - 15),
        lane.call(&mut store, 65536 - 1),
    ] {
        match r {
            Err(weft::Error::Trap(t)) => assert_eq!(t.kind(), weft::TrapKind::MemoryOutOfBounds),
            other => panic!("expected an out-of-bounds trap, got {other:?}"),
        }
    }
}
