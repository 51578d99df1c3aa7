//! Tail calls (`return_call`, `return_call_indirect`): constant stack in
//! deep mutual tail recursion, results (one or several) returned to the
//! original caller, host functions as tail callees, and the usual ways a
//! call stops (fuel, deadlines, traps) still reaching a tail loop.

use std::time::{Duration, Instant};

use weft::{Caller, Config, Engine, Error, Linker, Module, Store, TrapKind};

/// `even`/`odd` recurse into each other by tail calls, with different
/// parameter counts (`odd` takes five, so the frame it replaces must grow
/// its stack arguments on the way in and shrink them on the way back);
/// `count` does the same through a table. `pair` returns two results
/// through a tail call.
const MUTUAL: &str = r#"(module
  (type $unary (func (param i64) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $even_i $odd_i)
  (func $even (export "even") (param $n i64) (result i32)
    (if (result i32) (i64.eqz (local.get $n))
      (then (i32.const 1))
      (else (return_call $odd (i64.sub (local.get $n) (i64.const 1))
                              (i64.const 1) (i64.const 2) (i64.const 3) (i64.const 4)))))
  (func $odd (param $n i64) (param i64 i64 i64 i64) (result i32)
    (if (result i32) (i64.eqz (local.get $n))
      (then (i32.const 0))
      (else (return_call $even (i64.sub (local.get $n) (i64.const 1))))))
  (func $even_i (export "even_indirect") (param $n i64) (result i32)
    (if (result i32) (i64.eqz (local.get $n))
      (then (i32.const 1))
      (else (return_call_indirect (type $unary)
              (i64.sub (local.get $n) (i64.const 1)) (i32.const 1)))))
  (func $odd_i (param $n i64) (result i32)
    (if (result i32) (i64.eqz (local.get $n))
      (then (i32.const 0))
      (else (return_call_indirect (type $unary)
              (i64.sub (local.get $n) (i64.const 1)) (i32.const 0)))))
  (func $pair (export "pair") (param $n i32) (param $acc i64) (result i32 i64)
    (if (result i32 i64) (i32.eqz (local.get $n))
      (then (i32.const 7) (local.get $acc))
      (else (return_call $pair (i32.sub (local.get $n) (i32.const 1))
                               (i64.add (local.get $acc) (i64.extend_i32_u (local.get $n)))))))
  (func (export "forever") (param i64) (result i32)
    (return_call $even (i64.const 1000000000000))))"#;

/// Runs `f` on a thread with a 512 KiB stack: deep recursion that used
/// any stack per call would overflow it (and trap) long before the end.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(512 << 10)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn ten_million_mutual_tail_calls_run_in_constant_stack() {
    on_small_stack(|| {
        let mut config = Config::new();
        // A wasm stack budget of 64 KiB: ordinary recursion traps after
        // about a thousand frames.
        config.max_wasm_stack(64 << 10);
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, MUTUAL).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Linker::new().instantiate(&mut store, &module).unwrap();
        let even = inst.get_typed_func::<i64, i32>(&mut store, "even").unwrap();
        let even_indirect = inst
            .get_typed_func::<i64, i32>(&mut store, "even_indirect")
            .unwrap();
        for n in [10_000_000i64, 10_000_001] {
            let expect = i32::from(n % 2 == 0);
            assert_eq!(even.call(&mut store, n).unwrap(), expect);
            assert_eq!(even_indirect.call(&mut store, n).unwrap(), expect);
        }
        let pair = inst
            .get_typed_func::<(i32, i64), (i32, i64)>(&mut store, "pair")
            .unwrap();
        let n = 1_000_000u32;
        let sum = u64::from(n) * u64::from(n + 1) / 2;
        assert_eq!(
            pair.call(&mut store, (n as i32, 5)).unwrap(),
            (7, sum as i64 + 5)
        );
    });
}

#[test]
fn a_tail_loop_still_stops_for_fuel_and_deadlines() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, MUTUAL).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let even = inst.get_typed_func::<i64, i32>(&mut store, "even").unwrap();
    store.set_fuel(1_000_000).unwrap();
    match even.call(&mut store, 10_000_000) {
        Err(Error::Trap(t)) => assert_eq!(t.kind(), TrapKind::OutOfFuel),
        other => panic!("expected out of fuel, got {other:?}"),
    }
    // Fuel is counted across tail calls: a run that fits finishes and
    // leaves the same amount whichever way the count was split.
    store.set_fuel(10_000_000).unwrap();
    assert_eq!(even.call(&mut store, 1000).unwrap(), 1);
    let one_run = 10_000_000 - store.get_fuel().unwrap();
    assert!(one_run > 1000, "each tail call costs fuel ({one_run})");
    assert_eq!(even.call(&mut store, 1000).unwrap(), 1);
    assert_eq!(10_000_000 - store.get_fuel().unwrap(), 2 * one_run);

    let engine = Engine::default();
    let module = Module::new(&engine, MUTUAL).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let forever = inst
        .get_typed_func::<i64, i32>(&mut store, "forever")
        .unwrap();
    store
        .set_deadline(Instant::now() + Duration::from_millis(50))
        .unwrap();
    match forever.call(&mut store, 0) {
        Err(Error::Trap(t)) => assert_eq!(t.kind(), TrapKind::Interrupt),
        other => panic!("expected an interrupt, got {other:?}"),
    }
}

/// A host function can be the target of a tail call (its results are the
/// caller's), and may call back into wasm that tail-calls again.
#[test]
fn host_functions_as_tail_callees() {
    const HOSTED: &str = r#"(module
      (import "host" "twice" (func $twice (param i32) (result i32)))
      (import "host" "pair" (func $host_pair (param i32) (result i32 i64)))
      (import "host" "fail" (func $fail (param i32) (result i32)))
      (type $t (func (param i32) (result i32)))
      (table 1 funcref)
      (elem (i32.const 0) $twice)
      (func (export "via_host") (param i32) (result i32)
        (return_call $twice (i32.add (local.get 0) (i32.const 1))))
      (func (export "via_table") (param i32) (result i32)
        (return_call_indirect (type $t) (local.get 0) (i32.const 0)))
      (func (export "pair") (param i32) (result i32 i64)
        (return_call $host_pair (local.get 0)))
      (func (export "fail") (param i32) (result i32)
        (return_call $fail (local.get 0)))
      (func $down (export "down") (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
          (then (i32.const 0))
          (else (return_call $down (i32.sub (local.get $n) (i32.const 1)))))))"#;
    let engine = Engine::default();
    let module = Module::new(&engine, HOSTED).unwrap();
    let mut linker = Linker::<u32>::new();
    linker
        .func_wrap("host", "twice", |mut caller: Caller<'_, u32>, x: i32| {
            *caller.data_mut() += 1;
            // Back into wasm, which runs its own tail loop.
            let down = caller
                .get_export("down")
                .and_then(|e| e.into_func())
                .expect("down is exported");
            let down = down.typed::<i32, i32>(&caller).unwrap();
            let zero = down.call(&mut caller, 100_000).unwrap();
            x * 2 + zero
        })
        .unwrap()
        .func_wrap("host", "pair", |x: i32| (x + 1, i64::from(x) << 33))
        .unwrap()
        .func_wrap("host", "fail", |_: i32| -> weft::Result<i32> {
            Err(Error::msg("refused"))
        })
        .unwrap();
    let mut store = Store::new(&engine, 0u32);
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let via_host = inst
        .get_typed_func::<i32, i32>(&mut store, "via_host")
        .unwrap();
    assert_eq!(via_host.call(&mut store, 20).unwrap(), 42);
    let via_table = inst
        .get_typed_func::<i32, i32>(&mut store, "via_table")
        .unwrap();
    assert_eq!(via_table.call(&mut store, 21).unwrap(), 42);
    assert_eq!(*store.data(), 2);
    let pair = inst
        .get_typed_func::<i32, (i32, i64)>(&mut store, "pair")
        .unwrap();
    assert_eq!(pair.call(&mut store, 4).unwrap(), (5, 4 << 33));
    let fail = inst.get_typed_func::<i32, i32>(&mut store, "fail").unwrap();
    let err = fail.call(&mut store, 1).unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    // The store is still usable after the host error.
    assert_eq!(via_host.call(&mut store, 0).unwrap(), 2);
}

#[test]
fn tail_calls_can_be_switched_off() {
    let mut config = Config::new();
    config.wasm_tail_call(false);
    let engine = Engine::new(&config).unwrap();
    let err = Module::new(&engine, MUTUAL).unwrap_err();
    assert!(err.to_string().contains("tail"), "{err}");
}
