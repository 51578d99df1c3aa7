//! Runs on the process's main thread (no test harness): a wasm stack budget
//! larger than the main thread's stack still ends in a trap, not in a
//! "thread has overflowed its stack" abort.

use weft::{Config, Engine, Error, Linker, Module, Store, TrapKind};

fn main() {
    let mut config = Config::new();
    config.max_wasm_stack(usize::MAX / 2);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (func $f (export "f") (param i64) (result i64)
            (i64.add (local.get 0) (call $f (local.get 0)))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let f = inst.get_typed_func::<i64, i64>(&mut store, "f").unwrap();
    for _ in 0..2 {
        match f.call(&mut store, 1) {
            Err(Error::Trap(t)) => assert_eq!(t.kind(), TrapKind::StackOverflow),
            other => panic!("expected call stack exhausted, got {other:?}"),
        }
    }
    println!("main thread: unbounded recursion trapped twice");
    println!("1 passed, 0 failed");
}
