//! Typed function references (WebAssembly 3.0): `call_ref` and
//! `return_call_ref` through typed references (also to host functions),
//! null checks that trap with their own kinds, `br_on_null` and
//! `br_on_non_null`, typed globals, tables with an initialiser, structural
//! type identity across modules, and the `Config` switch.

use weft::{
    Config, Engine, Error, ExternType, Func, FuncType, Global, GlobalType, HeapType, Linker,
    Module, RefType, Store, Table, TableType, TrapKind, Val, ValType,
};

/// `(ref $t)` / `(ref null $t)` for a function type given by structure.
fn typed(nullable: bool, ty: FuncType) -> ValType {
    ValType::Ref(RefType::new(nullable, HeapType::Concrete(ty)))
}

fn i32_to_i32() -> FuncType {
    FuncType::new([ValType::I32], [ValType::I32])
}

fn trap_kind(e: &Error) -> Option<TrapKind> {
    e.as_trap().map(|t| t.kind())
}

const CALLS: &str = r#"(module
  (type $t (func (param i32) (result i32)))
  (import "host" "triple" (func $triple (type $t)))
  (func $inc (type $t) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (type $t) (i32.mul (local.get 0) (i32.const 2)))
  (elem declare func $inc $dbl $triple)
  ;; Picks a function by number: 0 inc, 1 dbl, 2 the host's triple, else null.
  (func $pick (param $which i32) (result (ref null $t))
    (block $null
      (block $two
        (block $one
          (block $zero
            (br_table $zero $one $two $null (local.get $which)))
          (return (ref.func $inc)))
        (return (ref.func $dbl)))
      (return (ref.func $triple)))
    (ref.null $t))
  (func (export "call") (param $which i32) (param $x i32) (result i32)
    (call_ref $t (local.get $x) (call $pick (local.get $which))))
  (func (export "tail") (param $which i32) (param $x i32) (result i32)
    (return_call_ref $t (local.get $x) (call $pick (local.get $which))))
  ;; Calls a reference passed in by the host.
  (func (export "apply") (param $f (ref $t)) (param $x i32) (result i32)
    (call_ref $t (local.get $x) (local.get $f)))
  (func (export "as_non_null") (param $which i32) (result i32)
    (ref.is_null (ref.as_non_null (call $pick (local.get $which)))))
  ;; br_on_null: -1 for null, else the call's result.
  (func (export "on_null") (param $which i32) (param $x i32) (result i32)
    (block $is_null
      (return (call_ref $t (local.get $x)
        (br_on_null $is_null (call $pick (local.get $which))))))
    (i32.const -1))
  ;; br_on_non_null: the call's result, or -2 for null.
  (func (export "on_non_null") (param $which i32) (param $x i32) (result i32)
    local.get $x
    block $non_null (param i32) (result i32 (ref $t))
      local.get $which
      call $pick
      br_on_non_null $non_null
      drop
      i32.const -2
      return
    end
    call_ref $t)
)"#;

fn calls_instance(store: &mut Store<()>) -> weft::Instance {
    let engine = store.engine().clone();
    let module = Module::new(&engine, CALLS).unwrap();
    let mut linker = Linker::new();
    linker
        .func_wrap("host", "triple", |x: i32| x.wrapping_mul(3))
        .unwrap();
    linker.instantiate(&mut *store, &module).unwrap()
}

#[test]
fn call_ref_calls_wasm_and_host_functions() {
    let mut store = Store::new(&Engine::default(), ());
    let inst = calls_instance(&mut store);
    let call = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "call")
        .unwrap();
    let tail = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "tail")
        .unwrap();
    for (which, want) in [(0, 11), (1, 20), (2, 30)] {
        assert_eq!(call.call(&mut store, (which, 10)).unwrap(), want);
        assert_eq!(tail.call(&mut store, (which, 10)).unwrap(), want);
    }
}

#[test]
fn null_call_ref_traps_and_the_store_stays_usable() {
    let mut store = Store::new(&Engine::default(), ());
    let inst = calls_instance(&mut store);
    let call = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "call")
        .unwrap();
    let tail = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "tail")
        .unwrap();
    let as_non_null = inst
        .get_typed_func::<i32, i32>(&mut store, "as_non_null")
        .unwrap();

    let e = call.call(&mut store, (3, 10)).unwrap_err();
    assert_eq!(trap_kind(&e), Some(TrapKind::NullFunctionReference), "{e}");
    assert!(e.to_string().contains("null function reference"), "{e}");
    let e = tail.call(&mut store, (3, 10)).unwrap_err();
    assert_eq!(trap_kind(&e), Some(TrapKind::NullFunctionReference), "{e}");

    let e = as_non_null.call(&mut store, 3).unwrap_err();
    assert_eq!(trap_kind(&e), Some(TrapKind::NullReference), "{e}");
    assert_eq!(TrapKind::NullReference.message(), "null reference");
    assert_eq!(as_non_null.call(&mut store, 1).unwrap(), 0);

    // The same store goes on working after the traps.
    assert_eq!(call.call(&mut store, (1, 21)).unwrap(), 42);
}

#[test]
fn br_on_null_and_br_on_non_null() {
    let mut store = Store::new(&Engine::default(), ());
    let inst = calls_instance(&mut store);
    let on_null = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "on_null")
        .unwrap();
    let on_non_null = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "on_non_null")
        .unwrap();
    assert_eq!(on_null.call(&mut store, (3, 5)).unwrap(), -1);
    assert_eq!(on_null.call(&mut store, (0, 5)).unwrap(), 6);
    assert_eq!(on_null.call(&mut store, (2, 5)).unwrap(), 15);
    assert_eq!(on_non_null.call(&mut store, (3, 5)).unwrap(), -2);
    assert_eq!(on_non_null.call(&mut store, (1, 5)).unwrap(), 10);
    assert_eq!(on_non_null.call(&mut store, (2, 5)).unwrap(), 15);
}

#[test]
fn host_function_passed_as_a_typed_reference() {
    let mut store = Store::new(&Engine::default(), ());
    let inst = calls_instance(&mut store);
    let apply = inst.get_func(&mut store, "apply").unwrap();
    let ty = apply.ty(&store).unwrap();
    assert_eq!(ty.params()[0], typed(false, i32_to_i32()));

    let sub = Func::wrap(&mut store, |x: i32| 100 - x).unwrap();
    let mut out = [Val::I32(0)];
    apply
        .call(
            &mut store,
            &[Val::FuncRef(Some(sub)), Val::I32(1)],
            &mut out,
        )
        .unwrap();
    assert_eq!(out[0].i32(), Some(99));

    // A null, or a function of another type, is refused before wasm runs.
    let e = apply
        .call(&mut store, &[Val::FuncRef(None), Val::I32(1)], &mut out)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("null"), "{e}");
    let wrong = Func::wrap(&mut store, |x: i64| x).unwrap();
    let e = apply
        .call(
            &mut store,
            &[Val::FuncRef(Some(wrong)), Val::I32(1)],
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");

    // The typed view passes `Option<Func>` for `(ref $t)`, checked per call.
    let typed_apply = apply.typed::<(Option<Func>, i32), i32>(&store).unwrap();
    assert_eq!(typed_apply.call(&mut store, (Some(sub), 58)).unwrap(), 42);
    for arg in [None, Some(wrong)] {
        let e = typed_apply.call(&mut store, (arg, 1)).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    // A function of another store is refused, not called.
    let mut other_store = Store::new(store.engine(), ());
    let foreign = Func::wrap(&mut other_store, |x: i32| x).unwrap();
    let e = typed_apply
        .call(&mut store, (Some(foreign), 1))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert_eq!(typed_apply.call(&mut store, (Some(sub), 0)).unwrap(), 100);
}

const GLOBAL_IMPORT: &str = r#"(module
  (type $t (func (param i32) (result i32)))
  (import "env" "f" (global $f (ref $t)))
  (func (export "run") (param i32) (result i32)
    (call_ref $t (local.get 0) (global.get $f))))"#;

#[test]
fn non_null_typed_global_import() {
    let engine = Engine::default();
    let module = Module::new(&engine, GLOBAL_IMPORT).unwrap();
    let want = ExternType::Global(GlobalType::new(typed(false, i32_to_i32()), false));
    assert_eq!(module.imports().next().unwrap().ty(), &want);

    let mut store = Store::new(&engine, ());
    let ty = GlobalType::new(typed(false, i32_to_i32()), false);
    // A non-nullable global refuses null, and functions of another type.
    let e = Global::new(&mut store, ty.clone(), Val::FuncRef(None)).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("null"), "{e}");
    let other = Func::wrap(&mut store, |x: i64| x).unwrap();
    let e = Global::new(&mut store, ty.clone(), Val::FuncRef(Some(other))).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");

    let neg = Func::wrap(&mut store, |x: i32| -x).unwrap();
    let g = Global::new(&mut store, ty, Val::FuncRef(Some(neg))).unwrap();
    let mut linker = Linker::new();
    linker.define("env", "f", g).unwrap();
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let run = inst.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    assert_eq!(run.call(&mut store, 7).unwrap(), -7);

    // A `funcref` global does not satisfy a `(ref $t)` import, nor does a
    // nullable typed one.
    for content in [ValType::FUNCREF, typed(true, i32_to_i32())] {
        let g = Global::new(
            &mut store,
            GlobalType::new(content.clone(), false),
            Val::FuncRef(Some(neg)),
        )
        .unwrap();
        let mut linker = Linker::new();
        linker.define("env", "f", g).unwrap();
        let e = linker.instantiate(&mut store, &module).unwrap_err();
        assert!(matches!(e, Error::Link(_)), "{content}: {e}");
    }
}

#[test]
fn typed_global_import_matches_by_structure_and_subtyping() {
    // The exporter's `(ref $a)` names its own type index 1; the importer's
    // `$t` is index 0 and asks for `(ref null $t)`, a supertype.
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let exporter = Module::new(
        &engine,
        r#"(module
          (type $pad (func (param f64)))
          (type $a (func (param i32) (result i32)))
          (func $sq (type $a) (i32.mul (local.get 0) (local.get 0)))
          (global (export "g") (ref $a) (ref.func $sq)))"#,
    )
    .unwrap();
    let importer = Module::new(
        &engine,
        r#"(module
          (type $t (func (param i32) (result i32)))
          (import "m" "g" (global $g (ref null $t)))
          (func (export "run") (param i32) (result i32)
            (call_ref $t (local.get 0) (global.get $g))))"#,
    )
    .unwrap();
    let mismatched = Module::new(
        &engine,
        r#"(module
          (type $t (func (param i64) (result i32)))
          (import "m" "g" (global (ref null $t))))"#,
    )
    .unwrap();
    let mut linker = Linker::new();
    let exp = linker.instantiate(&mut store, &exporter).unwrap();
    linker.instance(&mut store, "m", exp).unwrap();
    let inst = linker.instantiate(&mut store, &importer).unwrap();
    let run = inst.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    assert_eq!(run.call(&mut store, 9).unwrap(), 81);
    let e = linker.instantiate(&mut store, &mismatched).unwrap_err();
    assert!(matches!(e, Error::Link(_)), "{e}");
}

#[test]
fn function_types_with_typed_params_are_identified_by_structure() {
    // `$f` takes a `(ref $a)`; the two modules number `$a` differently, and
    // the third's `$a` has another structure. `call_indirect` compares the
    // engine's canonical ids.
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let exporter = Module::new(
        &engine,
        r#"(module
          (type $a (func (result i32)))
          (type $f (func (param (ref $a)) (result i32)))
          (func $seven (type $a) (i32.const 7))
          (elem declare func $seven)
          (func $call (export "call") (type $f) (call_ref $a (local.get 0)))
          (table (export "tab") 1 funcref)
          (elem (i32.const 0) $call)
          (func (export "seven") (result (ref $a)) (ref.func $seven)))"#,
    )
    .unwrap();
    let same = r#"(module
          (type $pad (func (param i64)))
          (type $a (func (result i32)))
          (type $f (func (param (ref $a)) (result i32)))
          (import "m" "tab" (table 1 funcref))
          (import "m" "call" (func $imported (type $f)))
          (func $eight (type $a) (i32.const 8))
          (elem declare func $eight)
          (func (export "indirect") (result i32)
            (call_indirect (type $f) (ref.func $eight) (i32.const 0)))
          (func (export "direct") (result i32)
            (call $imported (ref.func $eight))))"#;
    let other = r#"(module
          (type $a (func (result i64)))
          (type $f (func (param (ref $a)) (result i32)))
          (import "m" "tab" (table 1 funcref))
          (func $nine (type $a) (i64.const 9))
          (elem declare func $nine)
          (func (export "indirect") (result i32)
            (call_indirect (type $f) (ref.func $nine) (i32.const 0))))"#;
    let mut linker = Linker::new();
    let exp = linker.instantiate(&mut store, &exporter).unwrap();
    linker.instance(&mut store, "m", exp).unwrap();

    let m = Module::new(&engine, same).unwrap();
    let inst = linker.instantiate(&mut store, &m).unwrap();
    for name in ["indirect", "direct"] {
        let f = inst.get_typed_func::<(), i32>(&mut store, name).unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 8, "{name}");
    }

    let m = Module::new(&engine, other).unwrap();
    let inst = linker.instantiate(&mut store, &m).unwrap();
    let f = inst
        .get_typed_func::<(), i32>(&mut store, "indirect")
        .unwrap();
    let e = f.call(&mut store, ()).unwrap_err();
    assert_eq!(trap_kind(&e), Some(TrapKind::BadSignature), "{e}");

    // A `(ref $a)` result can be read as a `funcref`.
    let seven = exp
        .get_typed_func::<(), Option<Func>>(&mut store, "seven")
        .unwrap();
    let f = seven.call(&mut store, ()).unwrap().expect("not null");
    let f = f.typed::<(), i32>(&store).unwrap();
    assert_eq!(f.call(&mut store, ()).unwrap(), 7);
}

#[test]
fn typed_table_with_initialiser() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let module = Module::new(
        &engine,
        r#"(module
          (type $t (func (result i32)))
          (func $five (type $t) (i32.const 5))
          (func $six (type $t) (i32.const 6))
          (table $tab (export "tab") 4 8 (ref $t) (ref.func $five))
          (elem (table $tab) (i32.const 2) (ref $t) (ref.func $six))
          (func (export "at") (param i32) (result i32)
            (call_ref $t (table.get $tab (local.get 0)))))"#,
    )
    .unwrap();
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let at = inst.get_typed_func::<i32, i32>(&mut store, "at").unwrap();
    let got: Vec<i32> = (0..4).map(|i| at.call(&mut store, i).unwrap()).collect();
    assert_eq!(got, [5, 5, 6, 5]);

    let tab = inst.get_table(&mut store, "tab").unwrap();
    let ty = tab.ty(&store).unwrap();
    assert_eq!(
        ty.element(),
        typed(false, FuncType::new([], [ValType::I32]))
    );
    // Non-nullable: the host may not store or grow with null.
    let e = tab.set(&mut store, 0, Val::FuncRef(None)).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(tab.grow(&mut store, 1, Val::FuncRef(None)).is_err());
    assert_eq!(tab.size(&store).unwrap(), 4);
    let e = Table::new(
        &mut store,
        TableType::new(ty.element(), 1, None),
        Val::FuncRef(None),
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[test]
fn disabled_function_references_reject_typed_modules() {
    let mut config = Config::default();
    config.wasm_function_references(false);
    let engine = Engine::new(&config).unwrap();
    let e = Module::new(&engine, CALLS).unwrap_err();
    assert!(
        e.to_string().contains("function references"),
        "unexpected error: {e}"
    );
    // WebAssembly 2.0 reference types still work.
    Module::new(
        &engine,
        "(module (table 1 funcref) (func (result funcref) (ref.null func)))",
    )
    .unwrap();
}

#[test]
fn gc_modules_are_rejected() {
    let engine = Engine::default();
    let e = Module::new(
        &engine,
        "(module (type (struct (field i32))) (func (param (ref null any))))",
    )
    .unwrap_err();
    assert!(e.to_string().contains("gc"), "unexpected error: {e}");
}

#[test]
fn non_null_extern_parameter_through_the_typed_view() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let module = Module::new(
        &engine,
        r#"(module (func (export "is_null") (param (ref extern)) (result i32)
             (ref.is_null (local.get 0))))"#,
    )
    .unwrap();
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let f = inst
        .get_typed_func::<Option<weft::ExternRef>, i32>(&mut store, "is_null")
        .unwrap();
    let v = weft::ExternRef::new(5u32);
    assert_eq!(f.call(&mut store, Some(v)).unwrap(), 0);
    let e = f.call(&mut store, None).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

/// Hostile type sections: each type naming the previous one twice doubles
/// its structural size, and a long chain nests deeply. Both are refused
/// quickly with an error naming the limit instead of hanging, exhausting
/// memory or overflowing the stack.
#[test]
fn exploding_type_structures_are_refused() {
    let engine = Engine::default();
    let mut doubling = String::from("(module (type $t0 (func))");
    for k in 1..48 {
        doubling.push_str(&format!(
            " (type $t{k} (func (param (ref $t{p}) (ref $t{p}))))",
            p = k - 1
        ));
    }
    doubling.push(')');
    let mut chain = String::from("(module (type $t0 (func))");
    for k in 1..20_000 {
        chain.push_str(&format!(
            " (type $t{k} (func (param (ref $t{p}))))",
            p = k - 1
        ));
    }
    chain.push(')');
    for wat in [doubling, chain] {
        let err = Module::new(&engine, &wat).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("limit"), "{err}");
    }
    // A modest nesting still works.
    let ok = "(module (type $a (func)) (type $b (func (param (ref $a)) (result (ref null $a))))
        (type $c (func (param (ref $b) (ref $a)))))";
    Module::new(&engine, ok).unwrap();
}
