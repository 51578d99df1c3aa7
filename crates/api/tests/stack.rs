//! Stack limits come from the thread's real stack, and nested stores share
//! one budget per thread: unbounded recursion traps ("call stack exhausted")
//! on any thread instead of overflowing the thread's stack, which would
//! abort the process.

use std::sync::{Arc, Mutex};

use weft::{Caller, Config, Engine, Error, Func, Linker, Module, Store, TrapKind};

/// `rec` recurses forever, counting its depth in the exported global.
const RECURSE: &str = r#"(module
  (global $depth (export "depth") (mut i32) (i32.const 0))
  (func $rec (export "rec") (param i64 i64 i64 i64) (result i64)
    (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
    (i64.add (local.get 0)
      (call $rec (local.get 1) (local.get 2) (local.get 3) (local.get 0)))))"#;

fn engine(max_wasm_stack: usize) -> Engine {
    let mut config = Config::new();
    config.max_wasm_stack(max_wasm_stack);
    Engine::new(&config).unwrap()
}

/// Runs `rec` in a new store of `engine`; returns the trap kind and depth.
fn recurse(engine: &Engine) -> (TrapKind, i32) {
    let module = Module::new(engine, RECURSE).unwrap();
    let mut store = Store::new(engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let rec = inst
        .get_typed_func::<(i64, i64, i64, i64), i64>(&mut store, "rec")
        .unwrap();
    let kind = match rec.call(&mut store, (1, 2, 3, 4)) {
        Err(Error::Trap(t)) => t.kind(),
        other => panic!("expected a trap, got {other:?}"),
    };
    let depth = inst.get_global(&mut store, "depth").unwrap();
    (kind, depth.get(&mut store).unwrap().i32().unwrap())
}

/// Runs `f` on a new thread with a stack of `bytes`.
fn on_thread<R: Send + 'static>(bytes: usize, f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(bytes)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn recursion_traps_on_a_64_kib_thread_with_the_default_512_kib_budget() {
    let (kind, depth) = on_thread(64 << 10, || recurse(&Engine::default()));
    assert_eq!(kind, TrapKind::StackOverflow);
    assert!(depth > 0, "wasm ran before the limit");
}

#[test]
fn recursion_traps_on_a_256_kib_thread_with_the_default_512_kib_budget() {
    let (kind, depth) = on_thread(256 << 10, || recurse(&Engine::default()));
    assert_eq!(kind, TrapKind::StackOverflow);
    assert!(depth > 100, "most of the thread's stack is usable: {depth}");
}

#[test]
fn a_huge_budget_is_capped_by_the_threads_real_stack() {
    let (kind, _) = on_thread(1 << 20, || recurse(&engine(1 << 30)));
    assert_eq!(kind, TrapKind::StackOverflow);
}

#[test]
fn the_store_still_works_after_a_stack_overflow_on_a_small_thread() {
    on_thread(128 << 10, || {
        let engine = Engine::default();
        let module = Module::new(&engine, RECURSE).unwrap();
        let mut store = Store::new(&engine, ());
        let inst = Linker::new().instantiate(&mut store, &module).unwrap();
        let rec = inst
            .get_typed_func::<(i64, i64, i64, i64), i64>(&mut store, "rec")
            .unwrap();
        for _ in 0..3 {
            assert!(matches!(
                rec.call(&mut store, (1, 2, 3, 4)),
                Err(Error::Trap(_))
            ));
        }
    });
}

/// A module whose `outer(n)` recurses `n` deep and then calls the host
/// import `host.enter`.
const OUTER: &str = r#"(module
  (import "host" "enter" (func $enter))
  (func $outer (export "outer") (param i32)
    (if (i32.eqz (local.get 0)) (then (call $enter) (return)))
    (call $outer (i32.sub (local.get 0) (i32.const 1)))))"#;

/// Depth that `rec` in a second store reaches when entered from a host
/// function called by a first store `outer_depth` frames deep.
fn nested_depth(engine: &Engine, outer_depth: i32) -> i32 {
    let inner_engine = engine.clone();
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    let mut linker = Linker::<()>::new();
    linker
        .func_wrap("host", "enter", move |_: Caller<'_, ()>| {
            // A host function that runs wasm in another store.
            let (kind, depth) = recurse(&inner_engine);
            *seen2.lock().unwrap() = Some((kind, depth));
        })
        .unwrap();
    let module = Module::new(engine, OUTER).unwrap();
    let mut store = Store::new(engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let outer = inst.get_typed_func::<i32, ()>(&mut store, "outer").unwrap();
    outer.call(&mut store, outer_depth).unwrap();
    let (kind, depth) = seen.lock().unwrap().take().expect("the host function ran");
    assert_eq!(kind, TrapKind::StackOverflow);
    depth
}

#[test]
fn nested_stores_share_one_budget_per_thread() {
    on_thread(8 << 20, || {
        let engine = engine(256 << 10);
        let alone = recurse(&engine).1;
        let shallow = nested_depth(&engine, 10);
        let deep = nested_depth(&engine, 1000);
        assert!(
            deep < shallow && shallow <= alone,
            "the inner store's depth must shrink with the outer store's use: \
             alone {alone}, under 10 frames {shallow}, under 1000 frames {deep}"
        );
    });
}

#[test]
fn nested_stores_on_a_small_thread_trap_instead_of_overflowing() {
    on_thread(256 << 10, || {
        let engine = Engine::default();
        nested_depth(&engine, 200);
    });
}

#[test]
fn a_host_function_called_at_the_deepest_frame_has_room() {
    // The host function runs below the deepest wasm frame; the slack kept
    // under the limit must be enough for ordinary host code.
    on_thread(128 << 10, || {
        let engine = Engine::default();
        let module = Module::new(
            &engine,
            r#"(module
              (import "host" "touch" (func $touch))
              (func $rec (export "rec") (call $touch) (call $rec)))"#,
        )
        .unwrap();
        let mut linker = Linker::<u64>::new();
        linker
            .func_wrap("host", "touch", |mut c: Caller<'_, u64>| {
                // About 8 KiB of host stack.
                let buf = std::hint::black_box([1u8; 8 << 10]);
                *c.data_mut() += u64::from(buf[100]);
            })
            .unwrap();
        let mut store = Store::new(&engine, 0u64);
        let inst = linker.instantiate(&mut store, &module).unwrap();
        let rec: Func = inst.get_func(&mut store, "rec").unwrap();
        let r = rec.call(&mut store, &[], &mut []);
        assert!(matches!(r, Err(Error::Trap(ref t)) if t.kind() == TrapKind::StackOverflow));
        assert!(*store.data() > 10);
    });
}
