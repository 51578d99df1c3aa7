//! Exception handling: `cargo xtask bench exceptions` (or `cargo bench -p
//! weft --bench exceptions`).
//!
//! 1. What the check after calls costs code that never throws: the same
//!    call-heavy kernels under an engine with exceptions on (the default: a
//!    load and a not-taken branch after each call that may throw; direct
//!    calls of functions that cannot throw have none) and one with
//!    `Config::wasm_exceptions(false)`, interleaved round by round.
//! 2. What a throw costs: a `throw` caught in the same function, and one
//!    caught 10 frames up (each frame returns on its way).
//!
//! The report gives the median of the rounds for each row and, for part 1,
//! the ratio on/off. `--quick` runs fewer rounds.

mod kernels;

use std::time::Instant;

use weft::{Config, Engine, Linker, Module, Store, TypedFunc};

/// Calls of a small wasm function, through a table, and of a host function.
fn calls_wat() -> String {
    format!(
        r#"
  (import "host" "inc" (func $inc (param i32) (result i32)))
  (func $leaf (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  {}
  ;; fib through a table: calls through a table are always checked.
  (type $un (func (param i32) (result i32)))
  (table $tf 1 funcref)
  (elem (table $tf) (i32.const 0) func $fib_i)
  (func $fib_i (export "fib_indirect") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add
        (call_indirect $tf (type $un) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0))
        (call_indirect $tf (type $un) (i32.sub (local.get 0) (i32.const 2)) (i32.const 0))))))
  {}
"#,
        kernels::call_loop("call_loop", "$leaf"),
        kernels::call_loop("host_loop", "$inc"),
    )
}

const THROWS: &str = r#"
  (tag $t (param i32))
  (func $down (param i32 i32)
    (if (i32.eqz (local.get 1))
      (then (throw $t (local.get 0)))
      (else (call $down (local.get 0) (i32.sub (local.get 1) (i32.const 1))))))
  ;; n throws, each caught `depth` frames above the throw.
  (func (export "throw_loop") (param $n i32) (param $depth i32) (result i32) (local $sum i32)
    (loop $l
      (block $h (result i32)
        (try_table (catch $t $h) (call $down (local.get $n) (local.get $depth)))
        (unreachable))
      (local.set $sum (i32.add (local.get $sum)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $sum))
"#;

struct Setup {
    store: Store<()>,
    fib: TypedFunc<i32, i32>,
    fib_indirect: TypedFunc<i32, i32>,
    call_loop: TypedFunc<i32, i32>,
    host_loop: TypedFunc<i32, i32>,
    throw_loop: Option<TypedFunc<(i32, i32), i32>>,
}

fn setup(exceptions: bool) -> Setup {
    let mut config = Config::new();
    config.wasm_exceptions(exceptions);
    let engine = Engine::new(&config).unwrap();
    let throws = if exceptions { THROWS } else { "" };
    let wat = format!(
        "(module {} (memory 17) {throws} {})",
        calls_wat(),
        kernels::FIB_LOOP_SCAN
    );
    let module = Module::new(&engine, wat).unwrap();
    let mut linker = Linker::new();
    linker.func_wrap("host", "inc", |x: i32| x + 1).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let fib = inst.get_typed_func(&mut store, "fib").unwrap();
    let fib_indirect = inst.get_typed_func(&mut store, "fib_indirect").unwrap();
    let call_loop = inst.get_typed_func(&mut store, "call_loop").unwrap();
    let host_loop = inst.get_typed_func(&mut store, "host_loop").unwrap();
    let throw_loop = exceptions.then(|| inst.get_typed_func(&mut store, "throw_loop").unwrap());
    Setup {
        store,
        fib,
        fib_indirect,
        call_loop,
        host_loop,
        throw_loop,
    }
}

/// Nanoseconds per unit of `f`, which does `units` units.
fn time(units: u64, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / units as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 5 } else { 21 };
    let mut on = setup(true);
    let mut off = setup(false);

    // fib(27) makes 635,621 calls (2·fib(28) − 1); the loops 1,000,000.
    const FIB_N: i32 = 27;
    const FIB_CALLS: u64 = 635_621;
    const LOOP: i32 = 1_000_000;
    let rows = [
        "fib(27), per call (cannot throw: no checks)",
        "fib(27) through a table, per call",
        "wasm→wasm call loop (no checks)",
        "wasm→host call loop",
    ];
    let mut times = vec![(Vec::new(), Vec::new()); rows.len()];
    for round in 0..rounds {
        // Alternate which engine goes first.
        let order: [&mut Setup; 2] = if round % 2 == 0 {
            [&mut on, &mut off]
        } else {
            [&mut off, &mut on]
        };
        for s in order {
            let is_on = s.throw_loop.is_some();
            let r = [
                time(FIB_CALLS, || {
                    s.fib.call(&mut s.store, FIB_N).unwrap();
                }),
                time(FIB_CALLS, || {
                    s.fib_indirect.call(&mut s.store, FIB_N).unwrap();
                }),
                time(LOOP as u64, || {
                    s.call_loop.call(&mut s.store, LOOP).unwrap();
                }),
                time(LOOP as u64, || {
                    s.host_loop.call(&mut s.store, LOOP).unwrap();
                }),
            ];
            for (i, t) in r.into_iter().enumerate() {
                if is_on {
                    times[i].0.push(t);
                } else {
                    times[i].1.push(t);
                }
            }
        }
    }
    println!("Exception check after every call ({rounds} rounds, interleaved; median ns):\n");
    println!("| kernel | exceptions on | exceptions off | on/off |");
    println!("|---|---|---|---|");
    for (name, (a, b)) in rows.iter().zip(times) {
        let (a, b) = (median(a), median(b));
        println!("| {name} | {a:.2} | {b:.2} | {:.3}× |", a / b);
    }

    let throw_loop = on.throw_loop.expect("exceptions on");
    const THROWS_N: i32 = 100_000;
    println!("\nThrow and catch ({rounds} rounds; median ns per throw):\n");
    println!("| caught | ns |");
    println!("|---|---|");
    for depth in [0, 10] {
        let mut t = Vec::new();
        for _ in 0..rounds {
            t.push(time(THROWS_N as u64, || {
                throw_loop.call(&mut on.store, (THROWS_N, depth)).unwrap();
            }));
        }
        let what = if depth == 0 {
            "one call below the handler".to_string()
        } else {
            format!("{} calls below the handler", depth + 1)
        };
        println!("| {what} | {:.1} |", median(t));
    }
}
