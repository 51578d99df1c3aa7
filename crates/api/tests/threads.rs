//! Threads: many OS threads, each with its own store, running wasm on one
//! shared memory. Every wait is bounded, so a bug fails a test instead of
//! hanging it.

use std::sync::Arc;

use weft::{Engine, Instance, MemoryType, Module, SharedMemory, Store};

fn shared(engine: &Engine, min: u64, max: u64) -> SharedMemory {
    SharedMemory::new(engine, MemoryType::shared(min, max)).unwrap()
}

/// Runs `f(thread_index, store, instance)` on `n` threads, each with its own
/// store and instance of `module` importing `memory`.
fn on_threads<R: Send + 'static>(
    n: usize,
    engine: &Engine,
    module: &Module,
    memory: &SharedMemory,
    f: impl Fn(usize, &mut Store<()>, &Instance) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (engine, module, memory, f) =
                (engine.clone(), module.clone(), memory.clone(), f.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let inst = Instance::new(&mut store, &module, &[memory.into()]).unwrap();
                f(i, &mut store, &inst)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn atomic_adds_from_many_threads_are_exact() {
    let engine = Engine::default();
    let memory = shared(&engine, 1, 1);
    let module = Module::new(
        &engine,
        r#"(module
          (import "env" "memory" (memory 1 1 shared))
          (func (export "add") (param i32)
            (block $d (loop $l
              (br_if $d (i32.eqz (local.get 0)))
              (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
              (drop (i64.atomic.rmw.add (i32.const 8) (i64.const 3)))
              (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
              (br $l)))))"#,
    )
    .unwrap();
    let (threads, per) = (4usize, 50_000i32);
    for _ in 0..3 {
        memory.atomic_store::<u32>(0, 0).unwrap();
        memory.atomic_store::<u64>(8, 0).unwrap();
        on_threads(threads, &engine, &module, &memory, move |_, store, inst| {
            let add = inst.get_typed_func::<i32, ()>(&mut *store, "add").unwrap();
            add.call(&mut *store, per).unwrap();
        });
        assert_eq!(
            memory.atomic_load::<u32>(0).unwrap(),
            threads as u32 * per as u32
        );
        assert_eq!(
            memory.atomic_load::<u64>(8).unwrap(),
            3 * threads as u64 * per as u64
        );
    }
}

#[test]
fn a_wasm_mutex_from_cmpxchg_and_wait_notify_loses_no_update() {
    let engine = Engine::default();
    let memory = shared(&engine, 1, 1);
    // Word 0: the lock (0 free, 1 held). Word 4: a plain, non-atomic counter.
    let module = Module::new(
        &engine,
        r#"(module
          (import "env" "memory" (memory 1 1 shared))
          (func $lock
            (block $got (loop $try
              (br_if $got (i32.eqz (i32.atomic.rmw.cmpxchg (i32.const 0) (i32.const 0) (i32.const 1))))
              ;; Held: sleep until notified (bounded, then retry).
              (drop (memory.atomic.wait32 (i32.const 0) (i32.const 1) (i64.const 10000000)))
              (br $try))))
          (func $unlock
            (i32.atomic.store (i32.const 0) (i32.const 0))
            (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
          (func (export "work") (param i32)
            (block $d (loop $l
              (br_if $d (i32.eqz (local.get 0)))
              (call $lock)
              (i32.store (i32.const 4) (i32.add (i32.load (i32.const 4)) (i32.const 1)))
              (call $unlock)
              (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
              (br $l)))))"#,
    )
    .unwrap();
    let (threads, per) = (4usize, 5_000i32);
    on_threads(threads, &engine, &module, &memory, move |_, store, inst| {
        let work = inst.get_typed_func::<i32, ()>(&mut *store, "work").unwrap();
        work.call(&mut *store, per).unwrap();
    });
    assert_eq!(
        memory.atomic_load::<u32>(4).unwrap(),
        threads as u32 * per as u32
    );
    assert_eq!(
        memory.atomic_load::<u32>(0).unwrap(),
        0,
        "the lock ends free"
    );
}

#[test]
fn concurrent_memory_grow_from_wasm_while_others_touch_the_end() {
    let engine = Engine::default();
    let max = 200u64;
    let memory = shared(&engine, 1, max);
    let module = Module::new(
        &engine,
        r#"(module
          (import "env" "memory" (memory 1 200 shared))
          (func (export "grow") (result i32) (memory.grow (i32.const 1)))
          ;; Write and read back the last word of the current memory.
          (func (export "touch") (result i32) (local i32)
            (local.set 0 (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))
            (i32.atomic.store (local.get 0) (i32.const 7))
            (i32.atomic.load (local.get 0))))"#,
    )
    .unwrap();
    let results = on_threads(4, &engine, &module, &memory, move |i, store, inst| {
        if i < 2 {
            let grow = inst.get_typed_func::<(), i32>(&mut *store, "grow").unwrap();
            let mut olds = Vec::new();
            loop {
                let old = grow.call(&mut *store, ()).unwrap();
                if old < 0 {
                    break;
                }
                olds.push(old);
            }
            olds
        } else {
            let touch = inst
                .get_typed_func::<(), i32>(&mut *store, "touch")
                .unwrap();
            for _ in 0..20_000 {
                assert_eq!(touch.call(&mut *store, ()).unwrap(), 7);
            }
            Vec::new()
        }
    });
    let mut olds: Vec<i32> = results.into_iter().flatten().collect();
    let grows = olds.len();
    olds.sort_unstable();
    olds.dedup();
    assert_eq!(
        olds.len(),
        grows,
        "every successful grow saw a distinct old size"
    );
    assert_eq!(grows as u64, max - 1);
    assert_eq!(memory.size(), max);
    assert_eq!(olds, (1..max as i32).collect::<Vec<_>>());
}

#[test]
fn producer_consumer_with_wait_notify_loses_no_message() {
    let engine = Engine::default();
    let memory = shared(&engine, 1, 1);
    // A one-slot mailbox: word 0 is "full" (0/1), word 4 the message, word 8
    // the consumer's running sum (low), word 12 the count received.
    let module = Module::new(
        &engine,
        r#"(module
          (import "env" "memory" (memory 1 1 shared))
          (func (export "produce") (param i32) (local i32)
            (local.set 1 (i32.const 1))
            (block $d (loop $l
              (br_if $d (i32.gt_u (local.get 1) (local.get 0)))
              ;; wait until empty
              (block $empty (loop $w
                (br_if $empty (i32.eqz (i32.atomic.load (i32.const 0))))
                (drop (memory.atomic.wait32 (i32.const 0) (i32.const 1) (i64.const 10000000)))
                (br $w)))
              (i32.store (i32.const 4) (local.get 1))
              (i32.atomic.store (i32.const 0) (i32.const 1))
              (drop (memory.atomic.notify (i32.const 0) (i32.const 1)))
              (local.set 1 (i32.add (local.get 1) (i32.const 1)))
              (br $l))))
          (func (export "consume") (param i32) (local i64)
            (block $d (loop $l
              (br_if $d (i32.ge_u (i32.load (i32.const 12)) (local.get 0)))
              ;; wait until full
              (block $full (loop $w
                (br_if $full (i32.atomic.load (i32.const 0)))
                (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const 10000000)))
                (br $w)))
              (local.set 1 (i64.add (local.get 1) (i64.extend_i32_u (i32.load (i32.const 4)))))
              (i32.store (i32.const 12) (i32.add (i32.load (i32.const 12)) (i32.const 1)))
              (i32.atomic.store (i32.const 0) (i32.const 0))
              (drop (memory.atomic.notify (i32.const 0) (i32.const 1)))
              (br $l)))
            (i64.store (i32.const 16) (local.get 1))))"#,
    )
    .unwrap();
    let n = 1_000_000i32;
    on_threads(2, &engine, &module, &memory, move |i, store, inst| {
        let name = if i == 0 { "produce" } else { "consume" };
        let f = inst.get_typed_func::<i32, ()>(&mut *store, name).unwrap();
        f.call(&mut *store, n).unwrap();
    });
    assert_eq!(memory.atomic_load::<u32>(12).unwrap(), n as u32);
    let n = n as u64;
    assert_eq!(memory.atomic_load::<u64>(16).unwrap(), n * (n + 1) / 2);
}

#[test]
fn shared_and_unshared_memories_do_not_link_to_each_other() {
    let engine = Engine::default();
    let memory = shared(&engine, 1, 2);
    let unshared = Module::new(&engine, r#"(module (import "env" "m" (memory 1 2)))"#).unwrap();
    let mut store = Store::new(&engine, ());
    let err = Instance::new(&mut store, &unshared, &[memory.clone().into()]).unwrap_err();
    assert!(
        err.to_string().contains("incompatible import type"),
        "{err}"
    );
    let shared_mod = Module::new(
        &engine,
        r#"(module (import "env" "m" (memory 1 2 shared)))"#,
    )
    .unwrap();
    let local = weft::Memory::new(&mut store, MemoryType::new(1, Some(2))).unwrap();
    // An unshared type is refused by SharedMemory::new.
    assert!(SharedMemory::new(&engine, MemoryType::new(1, Some(2))).is_err());
    assert!(Instance::new(&mut store, &shared_mod, &[local.into()]).is_err());
    Instance::new(&mut store, &shared_mod, &[memory.into()]).unwrap();
}
