//! Threads: `cargo bench -p weft --bench threads`.
//!
//! - atomic `i32.atomic.rmw.add` throughput from wasm on one shared memory,
//!   with 1 and 2 threads (each thread its own store and instance);
//! - uncontended `memory.atomic.wait32`/`notify` round trip between two
//!   threads (ping-pong through one word).

use std::time::Instant;

use weft::{Engine, Instance, MemoryType, Module, SharedMemory, Store};

const WAT: &str = r#"(module
  (import "env" "memory" (memory 1 1 shared))
  (func (export "adds") (param i32)
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get 0)))
      (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l))))
  ;; Ping-pong: wait while word 64 != me, then pass the turn and notify.
  (func (export "pingpong") (param $me i32) (param $rounds i32)
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get $rounds)))
      (block $mine (loop $w
        (br_if $mine (i32.eq (i32.atomic.load (i32.const 64)) (local.get $me)))
        (drop (memory.atomic.wait32 (i32.const 64) (i32.sub (i32.const 1) (local.get $me)) (i64.const -1)))
        (br $w)))
      (i32.atomic.store (i32.const 64) (i32.sub (i32.const 1) (local.get $me)))
      (drop (memory.atomic.notify (i32.const 64) (i32.const 1)))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br $l))))
)"#;

fn run_threads(
    n: usize,
    engine: &Engine,
    module: &Module,
    memory: &SharedMemory,
    f: &'static str,
    arg: impl Fn(usize) -> (i32, i32) + Send + Sync + Copy + 'static,
    two: bool,
) -> f64 {
    let start = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let (engine, module, memory) = (engine.clone(), module.clone(), memory.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let inst = Instance::new(&mut store, &module, &[memory.into()]).unwrap();
                let (a, b) = arg(i);
                if two {
                    let g = inst
                        .get_typed_func::<(i32, i32), ()>(&mut store, f)
                        .unwrap();
                    g.call(&mut store, (a, b)).unwrap();
                } else {
                    let g = inst.get_typed_func::<i32, ()>(&mut store, f).unwrap();
                    g.call(&mut store, a).unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT).unwrap();
    let ty = MemoryType::shared(1, 1);
    let memory = SharedMemory::new(&engine, ty).unwrap();
    let per = 20_000_000i32;
    for threads in [1usize, 2] {
        let mut best = f64::MAX;
        for _ in 0..5 {
            best = best.min(run_threads(
                threads,
                &engine,
                &module,
                &memory,
                "adds",
                move |_| (per, 0),
                false,
            ));
        }
        let ops = threads as f64 * per as f64;
        println!(
            "atomic rmw.add from wasm, {threads} thread(s): {:.1} M ops/s ({:.2} ns/op per thread)",
            ops / best / 1e6,
            best * 1e9 / per as f64
        );
    }
    let rounds = 100_000i32;
    let mut best = f64::MAX;
    for _ in 0..3 {
        memory.atomic_store::<u32>(64, 0).unwrap();
        best = best.min(run_threads(
            2,
            &engine,
            &module,
            &memory,
            "pingpong",
            move |i| (i as i32, rounds),
            true,
        ));
    }
    println!(
        "wait/notify ping-pong between 2 threads: {:.2} us per round trip",
        best * 1e6 / rounds as f64
    );
}
