//! Exception handling's corner cases: translation (catch
//! labels of every kind of frame, multi-value and v128 results on the unwind
//! path, dead code, fuel), the runtime's bookkeeping (which exceptions are
//! kept), exnref through the API (globals, tables, host functions, other
//! stores), and host/async/start-function paths.

mod common;
use common::block_on;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use weft::{
    Caller, Config, Engine, Error, Exn, Extern, Func, FuncType, Global, GlobalType, Instance,
    Linker, Module, Store, Table, TableType, Tag, TagType, TrapKind, Val, ValType,
};

fn instance(wat: &str) -> (Store<()>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    let i = Linker::new().instantiate(&mut store, &module).unwrap();
    (store, i)
}

fn call_i32(store: &mut Store<()>, i: Instance, name: &str, args: &[Val]) -> weft::Result<i32> {
    let f = i.get_func(&mut *store, name).unwrap();
    let mut out = [Val::I32(0)];
    f.call(&mut *store, args, &mut out)?;
    Ok(out[0].i32().unwrap())
}

// ------------------------------------------------------------ translation

const CATCH_LABELS: &str = r#"(module
      (tag $e (param i32))
      (func $throw (param i32) (throw $e (local.get 0)))
      ;; label 0 of the catch is the function's own frame: a catch returns.
      (func (export "func_label") (result i32)
        (try_table (catch $e 0) (call $throw (i32.const 11)))
        (i32.const -1))
      ;; a loop with a parameter as the catch target: each catch goes round
      ;; again with the field; stops at 0.
      (func (export "loop_label") (param $n i32) (result i32)
        (local $count i32)
        (local.get $n)
        (loop $l (param i32)
          (local.set $n)
          (local.set $count (i32.add (local.get $count) (i32.const 1)))
          (if (local.get $n)
            (then
              (try_table (catch $e $l)
                (call $throw (i32.sub (local.get $n) (i32.const 1)))))))
        (local.get $count))
      ;; an `if` frame (no else) as the target.
      (func (export "if_label") (param i32) (result i32)
        (i32.const 100)
        (if (param i32) (result i32) (local.get 0)
          (then
            (drop)
            (try_table (catch $e 0) (call $throw (i32.const 7)))
            (i32.const -1)))
        )
      ;; try_table with parameters and results, and an outer try_table as
      ;; the target of the inner one's clause.
      (func (export "params") (result i32)
        (block $outer (result i32)
          (i32.const 5)
          (try_table (param i32) (result i32) (catch $e $outer)
            (call $throw)
            (i32.const -1)))
        (i32.add (i32.const 1000)))
      ;; a try_table with no clauses passes everything on.
      (func (export "no_clauses") (result i32)
        (block $h (result i32)
          (try_table (catch $e $h)
            (try_table (call $throw (i32.const 3))))
          (i32.const -1)))
      ;; br_table out of a try_table, and a throw after it.
      (func (export "br_table") (param i32) (result i32)
        (block $h (result i32)
          (block $a
            (try_table (catch $e $h)
              (br_table $a 0 (local.get 0))))
          (try_table (catch $e $h) (call $throw (i32.const 9)))
          (i32.const -1)))
    )"#;

fn engines() -> Vec<(&'static str, Engine)> {
    let mut fuel = Config::new();
    fuel.consume_fuel(true);
    let mut epoch = Config::new();
    epoch.epoch_interruption(true);
    let mut plain = Config::new();
    plain.interruptible(false);
    vec![
        ("default", Engine::default()),
        ("fuel", Engine::new(&fuel).unwrap()),
        ("epoch", Engine::new(&epoch).unwrap()),
        ("no interrupt checks", Engine::new(&plain).unwrap()),
    ]
}

#[test]
fn catch_labels_of_every_frame_kind() {
    for (name, engine) in engines() {
        eprintln!("{name}");
        let module = Module::new(&engine, CATCH_LABELS).unwrap();
        let mut store = Store::new(&engine, ());
        if name == "fuel" {
            store.set_fuel(u64::MAX).unwrap();
        }
        if name == "epoch" {
            store.set_epoch_deadline(1_000_000);
        }
        let i = Linker::new().instantiate(&mut store, &module).unwrap();
        assert_eq!(call_i32(&mut store, i, "func_label", &[]).unwrap(), 11);
        assert_eq!(
            call_i32(&mut store, i, "loop_label", &[Val::I32(5)]).unwrap(),
            6
        );
        assert_eq!(
            call_i32(&mut store, i, "if_label", &[Val::I32(1)]).unwrap(),
            7
        );
        assert_eq!(
            call_i32(&mut store, i, "if_label", &[Val::I32(0)]).unwrap(),
            100
        );
        assert_eq!(call_i32(&mut store, i, "params", &[]).unwrap(), 1005);
        assert_eq!(call_i32(&mut store, i, "no_clauses", &[]).unwrap(), 3);
        assert_eq!(
            call_i32(&mut store, i, "br_table", &[Val::I32(0)]).unwrap(),
            9
        );
        assert_eq!(
            call_i32(&mut store, i, "br_table", &[Val::I32(1)]).unwrap(),
            9
        );
        assert_eq!(store.exceptions_held(), 0);
    }
}

#[test]
fn multi_value_and_v128_results_on_the_unwind_path() {
    let (mut store, i) = instance(
        r#"(module
      (tag $e (param i64))
      (func $deep (param i32) (result i32 i64 f64 v128 funcref)
        (if (i32.eqz (local.get 0)) (then (throw $e (i64.const 42))))
        (call $deep (i32.sub (local.get 0) (i32.const 1))))
      (func $v (param i32) (result v128)
        (if (i32.eqz (local.get 0)) (then (throw $e (i64.const 43))))
        (v128.const i32x4 1 2 3 4))
      (func (export "run") (param i32) (result i64)
        (block $h (result i64)
          (try_table (catch $e $h)
            (call $deep (local.get 0))
            (drop) (drop) (drop) (drop) (drop))
          (i64.const -1)))
      (func (export "ok") (result i64)
        (block $h (result i64)
          (try_table (catch $e $h)
            (call $deep (i32.const 0))
            (drop) (drop) (drop) (drop) (drop))
          (i64.const -1)))
      (func (export "v") (param i32) (result i64)
        (block $h (result i64)
          (try_table (catch $e $h)
            (return (i64x2.extract_lane 1 (call $v (local.get 0)))))
          (i64.const -2)))
      (func (export "uncaught") (result i32 i64 f64 v128 funcref)
        (call $deep (i32.const 3)))
    )"#,
    );
    let run = i.get_typed_func::<i32, i64>(&mut store, "run").unwrap();
    assert_eq!(run.call(&mut store, 0).unwrap(), 42);
    assert_eq!(run.call(&mut store, 50).unwrap(), 42);
    let v = i.get_typed_func::<i32, i64>(&mut store, "v").unwrap();
    assert_eq!(v.call(&mut store, 0).unwrap(), 43);
    assert_eq!(v.call(&mut store, 1).unwrap(), 3 | 4 << 32);
    let ok = i.get_func(&mut store, "ok").unwrap();
    let mut out = [Val::I64(0)];
    ok.call(&mut store, &[], &mut out).unwrap();
    assert_eq!(out[0], Val::I64(42));
    // Uncaught, through multi-value frames, to the embedder.
    let f = i.get_func(&mut store, "uncaught").unwrap();
    let mut out = [
        Val::I32(0),
        Val::I64(0),
        Val::F64(0),
        Val::V128(0),
        Val::FuncRef(None),
    ];
    let err = f.call(&mut store, &[], &mut out).unwrap_err();
    assert_eq!(
        err.as_exception().unwrap().fields(&store).unwrap(),
        [Val::I64(42)]
    );
}

#[test]
fn try_table_in_and_around_dead_code() {
    let (mut store, i) = instance(
        r#"(module
      (tag $e (param i32))
      (func $throw (param i32) (throw $e (local.get 0)))
      (func (export "a") (result i32)
        (block $h (result i32)
          (try_table (result i32) (catch $e $h)
            (call $throw (i32.const 1))
            (unreachable)
            ;; dead: a nested try_table with clauses and a throw
            (try_table (catch $e $h) (throw $e (i32.const 2)))
            (i32.const 3))))
      (func (export "b") (result i32)
        (block $h (result i32)
          (br 0 (i32.const 4))
          (try_table (result i32) (catch $e $h) (call $throw (i32.const 5)) (i32.const 6))))
      ;; every path out of the try_table's body throws: its end is unreachable
      (func (export "c") (result i32)
        (block $h
          (try_table (catch_all $h) (throw $e (i32.const 1))))
        (i32.const 8))
    )"#,
    );
    assert_eq!(call_i32(&mut store, i, "a", &[]).unwrap(), 1);
    assert_eq!(call_i32(&mut store, i, "b", &[]).unwrap(), 4);
    assert_eq!(call_i32(&mut store, i, "c", &[]).unwrap(), 8);
}

#[test]
fn may_throw_follows_calls_through_cycles_and_references() {
    // $a -> $b -> $c -> import; $p <-> $q call each other, $q calls
    // through a table; $r calls a funcref. A direct call of each from
    // inside a try_table must see the exception.
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
      (import "h" "throw" (func $imp (param i32)))
      (tag $e (export "e") (param i32))
      (table 1 funcref)
      (elem (i32.const 0) $thrower)
      (elem declare func $thrower)
      (type $t (func (param i32)))
      (func $thrower (param i32) (throw $e (local.get 0)))
      (func $c (param i32) (call $imp (local.get 0)))
      (func $b (param i32) (call $c (local.get 0)))
      (func $a (param i32) (call $b (local.get 0)))
      (func $p (param i32)
        (if (local.get 0) (then (call $q (i32.sub (local.get 0) (i32.const 1))))))
      (func $q (param i32)
        (if (i32.eqz (local.get 0))
          (then (call_indirect (type $t) (i32.const 77) (i32.const 0)))
          (else (call $p (local.get 0)))))
      (func $r (param i32)
        (call_ref $t (local.get 0) (ref.func $thrower)))
      (func $s (param i32) (return_call $a (local.get 0)))
      (func (export "run") (param i32) (result i32)
        (block $h (result i32)
          (try_table (catch $e $h)
            (if (i32.eq (local.get 0) (i32.const 0)) (then (call $a (i32.const 10))))
            (if (i32.eq (local.get 0) (i32.const 1)) (then (call $p (i32.const 6))))
            (if (i32.eq (local.get 0) (i32.const 2)) (then (call $r (i32.const 12))))
            (if (i32.eq (local.get 0) (i32.const 3)) (then (call $s (i32.const 13)))))
          (i32.const -1))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    // The import throws the module's own tag: define it after instantiation
    // through a cell.
    let cell: std::sync::Arc<std::sync::Mutex<Option<Tag>>> = Default::default();
    let c2 = cell.clone();
    let mut linker = Linker::new();
    linker
        .func_wrap("h", "throw", move |mut caller: Caller<'_, ()>, v: i32| {
            let tag = c2.lock().unwrap().unwrap();
            let exn = Exn::new(&mut caller, &tag, &[Val::I32(v)])?;
            Err::<(), _>(Error::Exception(exn))
        })
        .unwrap();
    let inst = linker.instantiate(&mut store, &module).unwrap();
    *cell.lock().unwrap() = inst.get_export(&mut store, "e").and_then(Extern::into_tag);
    let run = inst.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    assert_eq!(run.call(&mut store, 0).unwrap(), 10);
    assert_eq!(run.call(&mut store, 1).unwrap(), 77);
    assert_eq!(run.call(&mut store, 2).unwrap(), 12);
    assert_eq!(run.call(&mut store, 3).unwrap(), 13);
}

#[test]
fn fuel_runs_out_in_a_throwing_loop_and_the_store_recovers() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
      (tag $e (param i32))
      (func $throw (param i32) (throw $e (local.get 0)))
      (func (export "spin") (param $n i32) (result i32)
        (local $sum i32)
        (loop $l
          (block $h (result i32)
            (try_table (catch $e $h) (call $throw (local.get $n)))
            (unreachable))
          (local.set $sum (i32.add (local.get $sum)))
          (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.get $sum)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Linker::new().instantiate(&mut store, &module).unwrap();
    let spin = i.get_typed_func::<i32, i32>(&mut store, "spin").unwrap();
    store.set_fuel(1_000_000).unwrap();
    assert_eq!(spin.call(&mut store, 100).unwrap(), 5050);
    let used = 1_000_000 - store.get_fuel().unwrap();
    assert!(used > 100, "fuel used by 100 throws and catches: {used}");
    store.set_fuel(used / 2).unwrap();
    let err = spin.call(&mut store, 100).unwrap_err();
    assert_eq!(
        err.as_trap().map(|t| t.kind()),
        Some(TrapKind::OutOfFuel),
        "{err}"
    );
    store.set_fuel(1_000_000).unwrap();
    assert_eq!(spin.call(&mut store, 10).unwrap(), 55);
    assert_eq!(store.exceptions_held(), 0);
}

#[test]
fn a_trap_in_a_handler_leaves_nothing_pending() {
    let (mut store, i) = instance(
        r#"(module
      (tag $e (param i32))
      (func $throw (param i32) (throw $e (local.get 0)))
      (func (export "trap_in_handler") (result i32)
        (block $h (result i32)
          (try_table (catch $e $h) (call $throw (i32.const 1)))
          (i32.const -1))
        (unreachable))
      (func (export "ok") (result i32) (i32.const 5)))"#,
    );
    let err = call_i32(&mut store, i, "trap_in_handler", &[]).unwrap_err();
    assert!(err.as_trap().is_some(), "{err}");
    assert_eq!(call_i32(&mut store, i, "ok", &[]).unwrap(), 5);
}

// ------------------------------------------------------ start, async, host

#[test]
fn a_start_function_that_throws_fails_instantiation_with_the_exception() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (tag $e (param i32)) (func $s (throw $e (i32.const 3))) (start $s))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let err = Linker::new().instantiate(&mut store, &module).unwrap_err();
    let exn = err.as_exception().expect("an exception");
    assert_eq!(exn.fields(&store).unwrap(), [Val::I32(3)]);
}

struct PendingOnce<V>(bool, Option<V>);
impl<V: Unpin> Future for PendingOnce<V> {
    type Output = V;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<V> {
        if self.0 {
            Poll::Ready(self.1.take().unwrap())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[test]
fn an_async_host_function_throws_into_wasm() {
    let mut config = Config::new();
    config.async_support(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
      (import "h" "tag" (tag $h (param i32)))
      (import "h" "f" (func $f (param i32) (result i32)))
      (func (export "run") (param i32) (result i32)
        (block $c (result i32)
          (try_table (catch $h $c) (return (call $f (local.get 0))))
          (unreachable))
        (i32.add (i32.const 1000))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let tag = Tag::new(&mut store, &TagType::new([ValType::I32])).unwrap();
    let mut linker = Linker::new();
    linker.define("h", "tag", tag).unwrap();
    linker
        .func_wrap_async("h", "f", move |mut caller: Caller<'_, ()>, v: i32| {
            let r = if v == 0 {
                Ok(-1)
            } else {
                Exn::new(&mut caller, &tag, &[Val::I32(v)]).and_then(|e| Err(Error::Exception(e)))
            };
            Box::new(PendingOnce(false, Some(r)))
        })
        .unwrap();
    let i = block_on(linker.instantiate_async(&mut store, &module)).unwrap();
    let run = i.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    assert_eq!(block_on(run.call_async(&mut store, 0)).unwrap(), -1);
    assert_eq!(block_on(run.call_async(&mut store, 5)).unwrap(), 1005);
}

#[test]
fn a_host_function_called_directly_returns_its_exception() {
    let mut store = Store::new(&Engine::default(), ());
    let tag = Tag::new(&mut store, &TagType::new([])).unwrap();
    let f = Func::wrap(
        &mut store,
        move |mut caller: Caller<'_, ()>| -> weft::Result<()> {
            Err(Error::Exception(Exn::new(&mut caller, &tag, &[])?))
        },
    )
    .unwrap();
    let err = f.call(&mut store, &[], &mut []).unwrap_err();
    assert!(err.as_exception().is_some(), "{err}");
    // And through a typed view.
    let t = f.typed::<(), ()>(&store).unwrap();
    assert!(t.call(&mut store, ()).unwrap_err().as_exception().is_some());
}

#[test]
fn a_foreign_exception_from_a_host_function_is_an_error_not_a_throw() {
    let engine = Engine::default();
    let mut other = Store::new(&engine, ());
    let other_tag = Tag::new(&mut other, &TagType::new([])).unwrap();
    let foreign = Exn::new(&mut other, &other_tag, &[]).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
      (import "h" "f" (func $f))
      (func (export "run") (result i32)
        (block $c (try_table (catch_all $c) (call $f)) (return (i32.const -1)))
        (i32.const 1)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new();
    linker
        .func_wrap("h", "f", move || -> weft::Result<()> {
            Err(Error::Exception(foreign.clone()))
        })
        .unwrap();
    let i = linker.instantiate(&mut store, &module).unwrap();
    let r = call_i32(&mut store, i, "run", &[]);
    // Not caught by wasm (it is not this store's): an error naming it.
    let err = r.unwrap_err();
    assert!(err.as_exception().is_none(), "{err:?}");
    assert!(err.to_string().contains("another store"), "{err}");
    assert_eq!(store.exceptions_held(), 0);
}

// ------------------------------------------------------------------ exnref

#[test]
fn exnref_in_globals_tables_and_host_functions() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
      (import "h" "id" (func $id (param exnref) (result exnref)))
      (tag $e (export "e") (param i32))
      (global $g (export "g") (mut exnref) (ref.null exn))
      (table $t (export "t") 2 exnref)
      (func (export "keep") (param i32)
        (block $h (result i32 exnref)
          (try_table (catch_ref $e $h) (throw $e (local.get 0)))
          (unreachable))
        (global.set $g (call $id))
        (drop))
      (func (export "rethrow_global") (result i32)
        (block $h (result i32)
          (try_table (catch $e $h) (throw_ref (global.get $g)))
          (i32.const -1)))
      (func (export "rethrow_table") (param i32) (result i32)
        (block $h (result i32)
          (try_table (catch $e $h) (throw_ref (table.get $t (local.get 0))))
          (i32.const -1))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let id_ty = FuncType::new([ValType::EXNREF], [ValType::EXNREF]);
    let mut linker = Linker::new();
    linker
        .func_new("h", "id", id_ty, |_c, args, results| {
            assert!(matches!(args[0], Val::ExnRef(Some(_))));
            results[0] = args[0].clone();
            Ok(())
        })
        .unwrap();
    let i = linker.instantiate(&mut store, &module).unwrap();
    let keep = i.get_typed_func::<i32, ()>(&mut store, "keep").unwrap();
    keep.call(&mut store, 21).unwrap();
    assert_eq!(call_i32(&mut store, i, "rethrow_global", &[]).unwrap(), 21);
    // The host reads the global and puts the exception in the table.
    let g = i.get_global(&mut store, "g").unwrap();
    let Val::ExnRef(Some(exn)) = g.get(&store).unwrap() else {
        panic!("global is not an exnref");
    };
    assert_eq!(exn.fields(&store).unwrap(), [Val::I32(21)]);
    let t = i.get_table(&mut store, "t").unwrap();
    t.set(&mut store, 1, Val::ExnRef(Some(exn))).unwrap();
    assert!(matches!(t.get(&store, 0), Some(Val::ExnRef(None))));
    assert_eq!(
        call_i32(&mut store, i, "rethrow_table", &[Val::I32(1)]).unwrap(),
        21
    );
    let err = call_i32(&mut store, i, "rethrow_table", &[Val::I32(0)]).unwrap_err();
    assert_eq!(
        err.as_trap().map(|t| t.kind()),
        Some(TrapKind::NullExceptionReference)
    );
    // A host-made exception of the module's tag, thrown by wasm.
    let tag = i
        .get_export(&mut store, "e")
        .and_then(Extern::into_tag)
        .unwrap();
    let mine = Exn::new(&mut store, &tag, &[Val::I32(99)]).unwrap();
    g.set(&mut store, Val::ExnRef(Some(mine.clone()))).unwrap();
    assert_eq!(call_i32(&mut store, i, "rethrow_global", &[]).unwrap(), 99);
    // Host-made tables and globals of exnref.
    let ht = Table::new(
        &mut store,
        TableType::new(ValType::EXNREF, 1, None),
        Val::ExnRef(Some(mine.clone())),
    )
    .unwrap();
    assert_eq!(ht.get(&store, 0), Some(Val::ExnRef(Some(mine))));
    let hg = Global::new(
        &mut store,
        GlobalType::new(ValType::EXNREF, false),
        Val::ExnRef(None),
    )
    .unwrap();
    assert_eq!(hg.get(&store).unwrap(), Val::ExnRef(None));
}

#[test]
fn exnrefs_of_another_store_are_refused_everywhere() {
    let engine = Engine::default();
    let mut a = Store::new(&engine, ());
    let tag_a = Tag::new(&mut a, &TagType::new([])).unwrap();
    let exn_a = Exn::new(&mut a, &tag_a, &[]).unwrap();
    let (mut b, i) = {
        let module = Module::new(
            &engine,
            r#"(module
          (global (export "g") (mut exnref) (ref.null exn))
          (table (export "t") 1 exnref)
          (func (export "f") (param exnref) (result i32) (ref.is_null (local.get 0))))"#,
        )
        .unwrap();
        let mut b = Store::new(&engine, ());
        let i = Linker::new().instantiate(&mut b, &module).unwrap();
        (b, i)
    };
    let f = i.get_func(&mut b, "f").unwrap();
    let mut out = [Val::I32(0)];
    assert!(
        f.call(&mut b, &[Val::ExnRef(Some(exn_a.clone()))], &mut out)
            .is_err()
    );
    let g = i.get_global(&mut b, "g").unwrap();
    assert!(g.set(&mut b, Val::ExnRef(Some(exn_a.clone()))).is_err());
    let t = i.get_table(&mut b, "t").unwrap();
    assert!(t.set(&mut b, 0, Val::ExnRef(Some(exn_a.clone()))).is_err());
    assert!(exn_a.fields(&b).is_err());
    assert!(exn_a.tag(&b).is_err());
    let tag_b = Tag::new(&mut b, &TagType::new([])).unwrap();
    assert!(Exn::new(&mut a, &tag_b, &[]).is_err());
    // A field of another store's exception.
    let tag_ref = Tag::new(&mut b, &TagType::new([ValType::EXNREF])).unwrap();
    assert!(Exn::new(&mut b, &tag_ref, &[Val::ExnRef(Some(exn_a))]).is_err());
}

#[test]
fn bad_exception_and_tag_arguments_are_errors() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let tag = Tag::new(&mut store, &TagType::new([ValType::I32])).unwrap();
    assert!(Exn::new(&mut store, &tag, &[]).is_err());
    assert!(Exn::new(&mut store, &tag, &[Val::I64(1)]).is_err());
    assert!(Exn::new(&mut store, &tag, &[Val::I32(1), Val::I32(2)]).is_err());
    // An import of another type.
    let module = Module::new(&engine, r#"(module (import "h" "t" (tag (param i64))))"#).unwrap();
    let mut linker = Linker::new();
    linker.define("h", "t", tag).unwrap();
    assert!(linker.instantiate(&mut store, &module).is_err());
    // A tag where a function is expected, and the reverse.
    let module = Module::new(&engine, r#"(module (import "h" "t" (func)))"#).unwrap();
    assert!(linker.instantiate(&mut store, &module).is_err());
}

// ------------------------------------------------- what the store keeps

/// A host function throws; wasm catches the exception for its fields and
/// drops it, and the host's `Exn` is gone: it is freed at once.
#[test]
fn host_thrown_exceptions_caught_by_wasm_are_not_kept() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
      (import "h" "tag" (tag $h (param i32)))
      (import "h" "f" (func $f (param i32)))
      (func (export "run") (param i32) (result i32)
        (block $c (result i32)
          (try_table (catch $h $c) (call $f (local.get 0)))
          (i32.const -1))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let tag = Tag::new(&mut store, &TagType::new([ValType::I32])).unwrap();
    let mut linker = Linker::new();
    linker.define("h", "tag", tag).unwrap();
    linker
        .func_wrap("h", "f", move |mut caller: Caller<'_, ()>, v: i32| {
            let exn = Exn::new(&mut caller, &tag, &[Val::I32(v)])?;
            Err::<(), _>(Error::Exception(exn))
        })
        .unwrap();
    let i = linker.instantiate(&mut store, &module).unwrap();
    let run = i.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    for n in 0..100 {
        assert_eq!(run.call(&mut store, n).unwrap(), n);
    }
    assert_eq!(
        store.exceptions_held(),
        0,
        "host-thrown exceptions caught by `catch` and dropped are never freed"
    );
}

/// The usual compilation of a cleanup (C++ destructors, `finally`):
/// `catch_all_ref`, clean up, `throw_ref`. An outer handler takes the
/// exception for its fields, and nothing holds it any more: collections
/// free them as they pile up, and an explicit one frees the rest.
#[test]
fn exceptions_rethrown_by_cleanups_are_not_kept_forever() {
    let (mut store, i) = instance(
        r#"(module
      (tag $e (param i32))
      (func $with_cleanup (param i32)
        (block $h (result exnref)
          (try_table (catch_all_ref $h) (throw $e (local.get 0)))
          (return))
        ;; cleanup would go here
        (throw_ref))
      (func (export "run") (param i32) (result i32)
        (block $c (result i32)
          (try_table (catch $e $c) (call $with_cleanup (local.get 0)))
          (i32.const -1))))"#,
    );
    let run = i.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    for n in 0..100_000 {
        assert_eq!(run.call(&mut store, n).unwrap(), n);
    }
    assert!(
        store.exceptions_held() < 1000,
        "exceptions that passed a cleanup block pile up: {}",
        store.exceptions_held()
    );
    store.collect_exceptions();
    assert_eq!(store.exceptions_held(), 0);
}

/// The host calls an export that throws, looks at the error and drops it:
/// the store frees those exceptions (collections between calls).
#[test]
fn uncaught_exceptions_the_host_dropped_are_not_kept_forever() {
    let (mut store, i) = instance(
        r#"(module (tag $e (param i32))
          (func (export "throw") (param i32) (throw $e (local.get 0))))"#,
    );
    let f = i.get_typed_func::<i32, ()>(&mut store, "throw").unwrap();
    for n in 0..100_000 {
        assert!(f.call(&mut store, n).unwrap_err().as_exception().is_some());
    }
    assert!(
        store.exceptions_held() < 1000,
        "uncaught exceptions pile up after the host dropped the errors: {}",
        store.exceptions_held()
    );
    // One the host still holds is kept.
    let kept = f.call(&mut store, 7).unwrap_err();
    store.collect_exceptions();
    assert_eq!(store.exceptions_held(), 1);
    let exn = kept.as_exception().unwrap();
    assert_eq!(exn.fields(&store).unwrap(), [Val::I32(7)]);
    drop(kept);
    store.collect_exceptions();
    assert_eq!(store.exceptions_held(), 0);
}

/// Exceptions of a tag with 1000 `v128` fields (16 KB each), one kept in
/// a global at a time: collections during the call keep the bytes held
/// small, and a store never holds more than `MAX_LIVE_EXCEPTION_BYTES`.
#[test]
fn a_guest_cannot_make_the_store_hold_unbounded_bytes_of_fields() {
    let params = "v128 ".repeat(1000);
    let mut operands = String::new();
    for _ in 0..1000 {
        operands.push_str("(v128.const i64x2 0 0) ");
    }
    let wat = format!(
        r#"(module
      (tag $big (param {params}))
      (global $keep (mut exnref) (ref.null exn))
      (func (export "hold") (param $n i32)
        (loop $l
          (block $h (result exnref)
            (try_table (catch_all_ref $h) (throw $big {operands}))
            (unreachable))
          (global.set $keep)
          (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))"#
    );
    let (mut store, i) = instance(&wat);
    let hold = i.get_typed_func::<i32, ()>(&mut store, "hold").unwrap();
    let r = hold.call(&mut store, 4096);
    let bytes = store.exceptions_held() * 1000 * 16;
    assert!(
        r.is_err() || bytes <= 16 << 20,
        "the store holds {} MiB of exception fields for one guest ({} exceptions); \
         at MAX_LIVE_EXCEPTIONS that is {} GiB",
        bytes >> 20,
        store.exceptions_held(),
        (weft::MAX_LIVE_EXCEPTIONS * 16_000) >> 30
    );
}

/// 40 throw sites of a 1000-field tag share one field area (16 KB), so the
/// function's frame stays small enough to call (one area per site would be
/// 640 KiB, over the default 512 KiB `max_wasm_stack`).
#[test]
fn forty_throw_sites_of_a_wide_tag_do_not_exhaust_the_stack() {
    let params = "i64 ".repeat(1000);
    let operands = "(local.get 1) ".repeat(1000);
    let mut body = String::new();
    for k in 1..=40 {
        body.push_str(&format!(
            "(if (i32.eq (local.get 0) (i32.const {k})) (then (throw $big {operands})))\n"
        ));
    }
    let wat = format!(
        r#"(module
      (tag $big (param {params}))
      (func (export "f") (param i32 i64) (result i32) {body} (i32.const 7)))"#
    );
    let (mut store, i) = instance(&wat);
    let f = i
        .get_typed_func::<(i32, i64), i32>(&mut store, "f")
        .unwrap();
    let r = f.call(&mut store, (0, 1));
    if let Err(e) = &r {
        assert_eq!(
            e.as_trap().map(|t| t.kind()),
            Some(TrapKind::StackOverflow),
            "{e}"
        );
    }
    assert_eq!(
        r.unwrap(),
        7,
        "a function that throws nothing overflowed the stack"
    );
}

#[test]
fn exnref_tables_grow_fill_copy_and_take_null_segments() {
    let (mut store, i) = instance(
        r#"(module
      (tag $e (param i32))
      (table $t 1 exnref)
      (table $u 4 exnref)
      (elem $seg exnref (ref.null exn) (ref.null exn))
      (func (export "run") (param i32) (result i32)
        (local $x exnref)
        (block $h (result exnref)
          (try_table (catch_all_ref $h) (throw $e (local.get 0)))
          (unreachable))
        (local.set $x)
        (drop (table.grow $t (local.get $x) (i32.const 3)))
        (table.fill $u (i32.const 0) (local.get $x) (i32.const 4))
        (table.init $u $seg (i32.const 0) (i32.const 0) (i32.const 2))
        (table.copy $t $u (i32.const 0) (i32.const 0) (i32.const 1))
        (if (i32.eqz (ref.is_null (table.get $t (i32.const 0)))) (then (return (i32.const -1))))
        (block $c (result i32)
          (try_table (catch $e $c) (throw_ref (table.get $u (i32.const 3))))
          (i32.const -2))))"#,
    );
    assert_eq!(call_i32(&mut store, i, "run", &[Val::I32(17)]).unwrap(), 17);
}

#[test]
fn precompiled_modules_keep_their_tags_and_handlers() {
    let engine = Engine::default();
    let module = Module::new(&engine, CATCH_LABELS).unwrap();
    let bytes = module.serialize().unwrap();
    // SAFETY: bytes this engine just produced.
    let module = unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
    let mut store = Store::new(&engine, ());
    let i = Linker::new().instantiate(&mut store, &module).unwrap();
    assert_eq!(call_i32(&mut store, i, "func_label", &[]).unwrap(), 11);
    assert_eq!(call_i32(&mut store, i, "params", &[]).unwrap(), 1005);
    // An engine without exceptions refuses the code.
    let mut config = Config::new();
    config.wasm_exceptions(false);
    let off = Engine::new(&config).unwrap();
    // SAFETY: as above (it is refused before anything runs).
    assert!(unsafe { Module::deserialize(&off, &bytes) }.is_err());
}

/// An `exnref` that a call returns is the host's once the call has
/// returned, even when the store held enough exceptions for a collection
/// to be due: nothing may free it between the call's return and the host
/// rooting it (typed and untyped calls alike).
#[test]
fn a_returned_exnref_survives_a_due_collection() {
    let wat = r#"(module
      (tag $t (param i32))
      (func (export "churn") (param $n i32) (result exnref)
        (local $e exnref)
        (loop $l
          (block $h (result i32 exnref)
            (try_table (catch_ref $t $h) (throw $t (local.get $n)))
            (unreachable))
          (local.set $e)
          (drop)
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br_if $l (local.get $n)))
        (local.get $e)))"#;
    // A fresh store collects first when it holds 256: the call allocates
    // exactly that many, none rooted but the last, so a collection is due
    // as it returns.
    let (mut store, i) = instance(wat);
    let typed = i
        .get_typed_func::<i32, Option<Exn>>(&mut store, "churn")
        .unwrap();
    let exn = typed.call(&mut store, 256).unwrap().expect("an exception");
    assert_eq!(exn.fields(&store).unwrap(), vec![Val::I32(1)]);
    let (mut store, i) = instance(wat);
    let f = i.get_func(&mut store, "churn").unwrap();
    let mut out = [Val::I32(0)];
    f.call(&mut store, &[Val::I32(256)], &mut out).unwrap();
    let Val::ExnRef(Some(exn)) = &out[0] else {
        panic!("expected an exception, got {:?}", out[0]);
    };
    assert_eq!(exn.fields(&store).unwrap(), vec![Val::I32(1)]);
    // Collections still happen: the dead ones go, the held ones stay.
    store.collect_exceptions();
    assert_eq!(exn.fields(&store).unwrap(), vec![Val::I32(1)]);
}
