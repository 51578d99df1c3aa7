//! Several OS threads, each with its own store and instance, cooperate
//! through one shared memory: they claim work items with an atomic counter,
//! sum squares of their items, add the partial sums atomically, and the last
//! one to finish wakes the main thread with `memory.atomic.notify`.
//!
//! Run with `cargo run --release -p weft --example threads`.

use weft::{Engine, Instance, MemoryType, Module, SharedMemory, Store, WaitOutcome};

const WAT: &str = r#"(module
  (import "env" "memory" (memory 1 1 shared))
  ;; word 0: next item to claim; word 8 (i64): total; word 16: threads done
  (func (export "worker") (param $items i32) (param $threads i32) (local $i i32) (local $sum i64)
    (block $d (loop $l
      (local.set $i (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
      (br_if $d (i32.ge_u (local.get $i) (local.get $items)))
      (local.set $sum (i64.add (local.get $sum)
        (i64.mul (i64.extend_i32_u (local.get $i)) (i64.extend_i32_u (local.get $i)))))
      (br $l)))
    (drop (i64.atomic.rmw.add (i32.const 8) (local.get $sum)))
    (if (i32.eq (i32.add (i32.atomic.rmw.add (i32.const 16) (i32.const 1)) (i32.const 1))
                (local.get $threads))
      (then (drop (memory.atomic.notify (i32.const 16) (i32.const 1))))))
)"#;

fn main() -> weft::Result<()> {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT)?;
    let ty = MemoryType::shared(1, 1);
    let memory = SharedMemory::new(&engine, ty)?;
    let (threads, items) = (4u32, 1_000_000u32);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (engine, module, memory) = (engine.clone(), module.clone(), memory.clone());
            std::thread::spawn(move || -> weft::Result<()> {
                let mut store = Store::new(&engine, ());
                let instance = Instance::new(&mut store, &module, &[memory.into()])?;
                let worker = instance.get_typed_func::<(i32, i32), ()>(&mut store, "worker")?;
                worker.call(&mut store, (items as i32, threads as i32))
            })
        })
        .collect();
    // Wait (from the host, on the same memory) until the last worker is done.
    loop {
        let done = memory.atomic_load::<u32>(16)?;
        if done == threads {
            break;
        }
        let _: WaitOutcome =
            memory.atomic_wait32(16, done, Some(std::time::Duration::from_millis(100)))?;
    }
    for h in handles {
        h.join().expect("worker thread")?;
    }
    let total = memory.atomic_load::<u64>(8)?;
    let expected: u64 = (0..u64::from(items)).map(|i| i * i).sum();
    println!("{threads} threads summed squares of 0..{items}: {total}");
    assert_eq!(total, expected);
    Ok(())
}
