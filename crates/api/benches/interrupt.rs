//! The cost of interruption checks: `cargo bench -p weft --bench interrupt`.
//!
//! Four workloads (tight arithmetic loop, recursive calls, memory scan,
//! call-heavy loop) are compiled three times: no checks, epoch checks (the
//! default), and epoch checks plus fuel. Runs are interleaved round-robin so
//! that machine noise hits every configuration alike; the report gives the
//! median time per configuration and the overhead relative to no checks,
//! per workload and as a geometric mean.

mod kernels;

use std::time::{Duration, Instant};

use weft::{Config, Engine, Instance, Module, Store, TypedFunc};

fn wat() -> String {
    format!(
        r#"(module
  (memory 17)
  {}
  (func $mix (param i32 i32) (result i32)
    (i32.xor (i32.mul (local.get 0) (i32.const 31)) (local.get 1)))
  (func (export "calls") (param i32) (result i32) (local i32)
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get 0)))
      (local.set 1 (call $mix (local.get 1) (local.get 0)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l)))
    (local.get 1))
)"#,
        kernels::FIB_LOOP_SCAN
    )
}

struct Setup {
    store: Store<()>,
    fib: TypedFunc<i32, i32>,
    looped: TypedFunc<i32, i32>,
    scan: TypedFunc<i32, i64>,
    calls: TypedFunc<i32, i32>,
}

fn setup(poll: bool, epoch: bool, fuel: bool) -> Setup {
    let mut config = Config::new();
    config
        .interruptible(poll)
        .epoch_interruption(epoch)
        .consume_fuel(fuel);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, wat()).unwrap();
    let mut store = Store::new(&engine, ());
    if fuel {
        store.set_fuel(u64::MAX / 2).unwrap();
    }
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    Setup {
        fib: inst.get_typed_func(&mut store, "fib").unwrap(),
        looped: inst.get_typed_func(&mut store, "loop").unwrap(),
        scan: inst.get_typed_func(&mut store, "scan").unwrap(),
        calls: inst.get_typed_func(&mut store, "calls").unwrap(),
        store,
    }
}

const WORKLOADS: [&str; 4] = ["arith loop", "recursive fib", "memory scan", "call-heavy"];

fn run(s: &mut Setup, w: usize) -> Duration {
    let t = Instant::now();
    match w {
        0 => drop(std::hint::black_box(
            s.looped.call(&mut s.store, 20_000_000).unwrap(),
        )),
        1 => drop(std::hint::black_box(s.fib.call(&mut s.store, 27).unwrap())),
        2 => {
            for _ in 0..16 {
                std::hint::black_box(s.scan.call(&mut s.store, 1 << 20).unwrap());
            }
        }
        _ => drop(std::hint::black_box(
            s.calls.call(&mut s.store, 10_000_000).unwrap(),
        )),
    }
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore harness flags.
    let rounds: usize = std::env::var("WEFT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let mut setups = [
        setup(false, false, false), // no checks
        setup(true, false, false),  // interrupt poll (the default)
        setup(false, true, false),  // epoch compare
        setup(false, false, true),  // fuel
    ];
    println!("interruption overhead: median of {rounds} interleaved runs per cell");
    println!(
        "{:<15} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8}",
        "workload", "no checks", "poll", "", "epoch", "", "fuel", ""
    );
    let mut ratios = [Vec::new(), Vec::new(), Vec::new()];
    for (w, wname) in WORKLOADS.iter().enumerate() {
        let mut times: [Vec<Duration>; 4] = Default::default();
        for s in setups.iter_mut() {
            run(s, w); // warm up
        }
        for _ in 0..rounds {
            for (i, s) in setups.iter_mut().enumerate() {
                times[i].push(run(s, w));
            }
        }
        let m: Vec<Duration> = times.into_iter().map(median).collect();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut line = format!("{wname:<15} {:>8.2}ms", ms(m[0]));
        for i in 1..4 {
            let r = m[i].as_secs_f64() / m[0].as_secs_f64();
            ratios[i - 1].push(r);
            line += &format!(" {:>8.2}ms {:>+7.1}%", ms(m[i]), (r - 1.0) * 100.0);
        }
        println!("{line}");
    }
    let geo = |v: &[f64]| (v.iter().map(|r| r.ln()).sum::<f64>() / v.len() as f64).exp();
    let mut line = format!("{:<15} {:>10}", "geomean", "");
    for r in &ratios {
        line += &format!(" {:>10} {:>+7.1}%", "", (geo(r) - 1.0) * 100.0);
    }
    println!("{line}");
}
