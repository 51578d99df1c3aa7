//! The public API's shapes: read-only access through `&Store`, memory
//! slices, linker definitions, module descriptions and error kinds.

use weft::{
    Engine, Error, Extern, ExternType, Func, Linker, Memory, MemoryType, Module, Store, ValType,
};

#[test]
fn reads_take_a_shared_store() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (memory (export "m") 1) (global (export "g") i32 (i32.const 7))
             (func (export "f") (param i32) (result i32) (local.get 0)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let (m, g, f) = (
        inst.get_memory(&mut store, "m").unwrap(),
        inst.get_global(&mut store, "g").unwrap(),
        inst.get_func(&mut store, "f").unwrap(),
    );
    let shared: &Store<()> = &store;
    assert_eq!(m.size(shared).unwrap(), 1);
    assert_eq!(m.data(shared).len(), 65536);
    assert_eq!(g.get(shared).unwrap().i32(), Some(7));
    assert_eq!(f.ty(shared).unwrap().params(), &[ValType::I32]);
    assert!(f.typed::<i32, i32>(shared).is_ok());
}

#[test]
fn memory_slices_see_what_wasm_wrote_and_wasm_sees_what_they_wrote() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (memory (export "m") 1)
             (func (export "poke") (i32.store8 (i32.const 3) (i32.const 99)))
             (func (export "peek") (result i32) (i32.load8_u (i32.const 5))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let m = inst.get_memory(&mut store, "m").unwrap();
    inst.get_typed_func::<(), ()>(&mut store, "poke")
        .unwrap()
        .call(&mut store, ())
        .unwrap();
    assert_eq!(m.data(&store)[3], 99);
    m.data_mut(&mut store)[5] = 42;
    let peek = inst.get_typed_func::<(), i32>(&mut store, "peek").unwrap();
    assert_eq!(peek.call(&mut store, ()).unwrap(), 42);
    // A memory of another store gives nothing, rather than another's bytes.
    let mut other = Store::new(&engine, ());
    let _ = Memory::new(&mut other, MemoryType::new(1, None)).unwrap();
    assert!(m.data(&other).is_empty());
}

#[test]
fn duplicate_definitions_are_errors_unless_shadowing_is_allowed() {
    let mut linker = Linker::<()>::new();
    linker.func_wrap("a", "f", || 1i32).unwrap();
    match linker.func_wrap("a", "f", || 2i32) {
        Err(Error::Link(m)) => assert!(m.contains("a::f"), "{m}"),
        Err(e) => panic!("expected a link error, got {e}"),
        Ok(_) => panic!("a duplicate definition was accepted"),
    }
    linker.allow_shadowing(true);
    linker.func_wrap("a", "f", || 3i32).unwrap();
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (import "a" "f" (func $f (result i32)))
             (func (export "g") (result i32) (call $f)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let g = inst.get_typed_func::<(), i32>(&mut store, "g").unwrap();
    assert_eq!(
        g.call(&mut store, ()).unwrap(),
        3,
        "the newest definition wins"
    );
}

#[test]
fn linker_host_functions_are_created_once_per_store() {
    let mut linker = Linker::<()>::new();
    linker.func_wrap("host", "f", |x: i32| x).unwrap();
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let first = linker
        .get(&mut store, "host", "f")
        .unwrap()
        .unwrap()
        .into_func()
        .unwrap();
    let module = Module::new(
        &engine,
        r#"(module (import "host" "f" (func (param i32) (result i32))))"#,
    )
    .unwrap();
    for _ in 0..100 {
        linker.instantiate(&mut store, &module).unwrap();
    }
    let again = linker.get(&mut store, "host", "f").unwrap().unwrap();
    assert!(matches!(again, Extern::Func(f) if f == first));
    // Another store gets its own.
    let mut other = Store::new(&engine, ());
    let theirs = linker.get(&mut other, "host", "f").unwrap().unwrap();
    assert!(matches!(theirs, Extern::Func(f) if f != first));
}

#[test]
fn modules_describe_their_imports_exports_and_custom_sections() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
             (import "env" "mem" (memory 1 2))
             (import "env" "f" (func (param i64) (result f32)))
             (global (export "g") (mut i32) (i32.const 0))
             (table (export "t") 3 externref)
             (func (export "h")))"#,
    )
    .unwrap();
    let imports: Vec<_> = module.imports().collect();
    assert_eq!(imports.len(), 2);
    assert_eq!((imports[0].module(), imports[0].name()), ("env", "mem"));
    assert_eq!(
        imports[0].ty(),
        &ExternType::Memory(MemoryType::new(1, Some(2)))
    );
    match imports[1].ty() {
        ExternType::Func(t) => {
            assert_eq!(t.params(), &[ValType::I64]);
            assert_eq!(t.results(), &[ValType::F32]);
        }
        other => panic!("expected a function import, got {other}"),
    }
    let exports: Vec<String> = module
        .exports()
        .map(|e| format!("{} {}", e.name(), e.ty()))
        .collect();
    assert_eq!(
        exports,
        ["g (global (mut i32))", "t (table 3 externref)", "h (func)"]
    );
    assert_eq!(module.defined_functions(), 1);
    assert_eq!(module.custom_sections("none").count(), 0);
}

#[test]
fn errors_have_kinds_users_can_match() {
    let engine = Engine::default();
    assert!(matches!(
        Module::new(&engine, b"\0asm\x01\0\0\0\x01\x05"),
        Err(Error::Invalid {
            offset: Some(_),
            ..
        })
    ));
    match Module::new(&engine, "(module (func (i32.add)))") {
        Err(Error::Invalid { message, .. }) => {
            assert!(message.contains("type mismatch"), "{message}")
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    match Module::new(&engine, "(module (func $x") {
        Err(Error::Wat(m)) => assert!(m.contains("1:"), "the message names the position: {m}"),
        other => panic!("expected a text error, got {other:?}"),
    }
    // SIMD compiles (on by default, as in WebAssembly 2.0).
    Module::new(
        &engine,
        "(module (func (result v128) (v128.const i64x2 0 0)))",
    )
    .unwrap();
    // With SIMD switched off, the same module is invalid instead.
    let mut config = weft::Config::new();
    config.wasm_simd(false);
    let no_simd = Engine::new(&config).unwrap();
    assert!(matches!(
        Module::new(
            &no_simd,
            "(module (func (result v128) (v128.const i64x2 0 0)))"
        ),
        Err(Error::Invalid { .. })
    ));
    // Relaxed SIMD likewise: on by default, invalid when switched off (and
    // the message says which feature is missing).
    let relaxed = "(module (func (param v128 v128) (result v128)
        (i8x16.relaxed_swizzle (local.get 0) (local.get 1))))";
    Module::new(&engine, relaxed).unwrap();
    let mut config = weft::Config::new();
    config.wasm_relaxed_simd(false);
    let no_relaxed = Engine::new(&config).unwrap();
    match Module::new(&no_relaxed, relaxed) {
        Err(Error::Invalid { message, .. }) => {
            assert!(message.contains("relaxed SIMD"), "{message}")
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    // Without SIMD, relaxed SIMD is invalid too, whatever its own switch says.
    match Module::new(&no_simd, relaxed) {
        Err(Error::Invalid { .. }) => {}
        other => panic!("expected invalid, got {other:?}"),
    }
    // Plain SIMD still compiles without relaxed SIMD.
    Module::new(
        &no_relaxed,
        "(module (func (result v128) (v128.const i64x2 0 0)))",
    )
    .unwrap();
}

#[test]
fn func_wrap_under_its_wasmtime_name() {
    let mut store = Store::new(&Engine::default(), ());
    let f = Func::new_typed(&mut store, |a: i64| a * 2).unwrap();
    let f = f.typed::<i64, i64>(&store).unwrap();
    assert_eq!(f.call(&mut store, 21).unwrap(), 42);
}

#[test]
fn text_that_is_not_a_module_and_components_get_clear_errors() {
    let engine = Engine::default();
    match Module::new(&engine, "hello, world\n") {
        Err(Error::Invalid { message, .. }) => {
            assert!(message.contains("not a WebAssembly module"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // A component binary (layer 1).
    let component = b"\0asm\x0d\x00\x01\x00";
    match Module::new(&engine, component) {
        Err(Error::Unsupported(m)) => assert!(m.contains("component"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Broken text names the line and column.
    let dir = std::env::temp_dir().join(format!("weft-wat-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.wat");
    std::fs::write(&path, "(module\n  (func (i32.const)))\n").unwrap();
    match Module::from_file(&engine, &path) {
        Err(Error::Wat(m)) => {
            assert!(m.contains("broken.wat:2:"), "{m}");
            assert!(!m.contains('\n'), "one line: {m}");
        }
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn instance_pre_checks_imports_once_and_instantiates_in_any_store() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (import "env" "add" (func $add (param i32 i32) (result i32)))
             (func (export "run") (result i32) (call $add (i32.const 2) (i32.const 3))))"#,
    )
    .unwrap();
    // Errors come from instantiate_pre, as values.
    let empty = Linker::<()>::new();
    match empty.instantiate_pre(&module) {
        Err(Error::Link(m)) => assert!(
            m.contains("unknown import") && m.contains("env::add"),
            "{m}"
        ),
        Err(e) => panic!("expected a link error, got {e}"),
        Ok(_) => panic!("a missing import was accepted"),
    }
    let mut wrong = Linker::<()>::new();
    wrong.func_wrap("env", "add", |a: i64| a).unwrap();
    match wrong.instantiate_pre(&module) {
        Err(Error::Link(m)) => assert!(m.contains("incompatible import type"), "{m}"),
        Err(e) => panic!("expected a link error, got {e}"),
        Ok(_) => panic!("a mistyped import was accepted"),
    }
    let mut linker = Linker::<()>::new();
    linker
        .func_wrap("env", "add", |a: i32, b: i32| a + b)
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    for _ in 0..3 {
        let mut store = Store::new(&engine, ());
        let a = pre.instantiate(&mut store).unwrap();
        let b = pre.clone().instantiate(&mut store).unwrap();
        for inst in [a, b] {
            let run = inst.get_typed_func::<(), i32>(&mut store, "run").unwrap();
            assert_eq!(run.call(&mut store, ()).unwrap(), 5);
        }
        // One host function per store, shared by both instances.
        let f1 = linker.get(&mut store, "env", "add").unwrap().unwrap();
        let f2 = linker.get(&mut store, "env", "add").unwrap().unwrap();
        assert_eq!(f1.into_func(), f2.into_func());
    }
    // A store-bound definition only works in its own store.
    let mem_module = Module::new(&engine, r#"(module (import "env" "m" (memory 1)))"#).unwrap();
    let mut home = Store::new(&engine, ());
    let mem = Memory::new(&mut home, MemoryType::new(1, None)).unwrap();
    let mut l = Linker::<()>::new();
    l.define("env", "m", mem).unwrap();
    let pre = l.instantiate_pre(&mem_module).unwrap();
    assert!(pre.instantiate(&mut home).is_ok());
    let mut other = Store::new(&engine, ());
    assert!(pre.instantiate(&mut other).is_err());
}
