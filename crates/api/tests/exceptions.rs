//! Exception handling: `throw`, `throw_ref` and `try_table` inside wasm,
//! across deep call chains, through host frames in both directions, to the
//! embedder when uncaught, with tag identity per instance, and the store's
//! bookkeeping of exceptions.

mod common;

use weft::{
    Caller, Config, Engine, Error, Exn, Extern, Linker, Module, Store, Tag, TagType, TrapKind, Val,
    ValType,
};

/// Tags `$e` (i32 f64 v128) and `$other` (i32); functions that throw and
/// catch in every way.
const CATCHER: &str = r#"(module
  (tag $e (export "e") (param i32 f64 v128))
  (tag $other (export "other") (param i32))
  (func $throw_e (export "throw_e") (param i32)
    (throw $e (local.get 0) (f64.const 2.5) (v128.const i32x4 1 2 3 4)))
  ;; Catches $e three frames up: returns the i32 field plus the sum of the
  ;; f64 (as i32) and the v128's lanes.
  (func $deep (param i32 i32)
    (if (i32.eqz (local.get 1))
      (then (call $throw_e (local.get 0)))
      (else (call $deep (local.get 0) (i32.sub (local.get 1) (i32.const 1))))))
  (func (export "catch_deep") (param i32 i32) (result i32)
    (local $v v128)
    (block $h (result i32 f64 v128)
      (try_table (catch $e $h)
        (call $deep (local.get 0) (local.get 1)))
      (return (i32.const -1)))
    (local.set $v)
    (i32.trunc_f64_s)
    (i32.add)
    (i32x4.extract_lane 0 (local.get $v))
    (i32.add)
    (i32x4.extract_lane 3 (local.get $v))
    (i32.add))
  ;; A clause for another tag does not take $e: the outer try_table does.
  (func (export "nested") (result i32)
    (block $outer (result i32 f64 v128)
      (try_table (catch $e $outer)
        (block $inner (result i32)
          (try_table (catch $other $inner)
            (call $throw_e (i32.const 5)))
          (return (i32.const -1)))
        (return (i32.const -2)))
      (unreachable))
    (drop) (drop))
  ;; catch_all: no fields.
  (func (export "catch_all") (result i32)
    (block $h
      (try_table (catch_all $h) (call $throw_e (i32.const 1)))
      (return (i32.const -1)))
    (i32.const 7))
  ;; catch_ref then throw_ref: the same exception reaches the outer handler.
  (func (export "rethrow") (result i32)
    (block $outer (result i32 f64 v128)
      (try_table (catch $e $outer)
        (block $inner (result exnref)
          (try_table (catch_all_ref $inner)
            (call $throw_e (i32.const 9)))
          (return (i32.const -1)))
        (throw_ref))
      (unreachable))
    (drop) (drop))
  ;; Throwing an exception caught by reference out to the host.
  (func (export "escape") (result exnref)
    (block $h (result i32 f64 v128 exnref)
      (try_table (catch_ref $e $h) (call $throw_e (i32.const 3)))
      (unreachable))
    (return))
  (func (export "throw_ref_null") (throw_ref (ref.null exn)))
  ;; A loop that throws and catches n times.
  (func (export "loop") (param $n i32) (result i32)
    (local $sum i32)
    (loop $l
      (block $h (result i32)
        (try_table (catch $other $h) (throw $other (local.get $n)))
        (unreachable))
      (local.set $sum (i32.add (local.get $sum)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $sum))
  ;; The same, keeping each exception as a value.
  (func (export "loop_ref") (param $n i32)
    (loop $l
      (block $h (result i32 exnref)
        (try_table (catch_ref $other $h) (throw $other (local.get $n)))
        (unreachable))
      (drop) (drop)
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
)"#;

fn catcher() -> (Store<()>, weft::Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, CATCHER).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Linker::new().instantiate(&mut store, &module).unwrap();
    (store, instance)
}

#[test]
fn an_exception_crosses_frames_to_its_handler_with_every_field() {
    let (mut store, instance) = catcher();
    let f = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "catch_deep")
        .unwrap();
    // 40 + 2 (2.5 truncated) + 1 + 4, thrown from 0 and from 1000 frames
    // below the handler.
    assert_eq!(f.call(&mut store, (40, 0)).unwrap(), 47);
    assert_eq!(f.call(&mut store, (40, 1000)).unwrap(), 47);
    for (name, want) in [("nested", 5), ("catch_all", 7), ("rethrow", 9)] {
        let f = instance
            .get_typed_func::<(), i32>(&mut store, name)
            .unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), want, "{name}");
    }
}

#[test]
fn an_uncaught_exception_reaches_the_embedder_with_its_tag_and_fields() {
    let (mut store, instance) = catcher();
    let tag = instance
        .get_export(&mut store, "e")
        .and_then(Extern::into_tag)
        .unwrap();
    let throw = instance.get_func(&mut store, "throw_e").unwrap();
    let err = throw
        .call(&mut store, &[Val::I32(11)], &mut [])
        .unwrap_err();
    let exn = err.as_exception().expect("an uncaught exception").clone();
    assert_eq!(exn.tag(&store).unwrap(), tag);
    let fields = exn.fields(&store).unwrap();
    assert_eq!(fields[0], Val::I32(11));
    assert_eq!(fields[1], Val::F64(2.5f64.to_bits()));
    let lanes = 1u128 | 2 << 32 | 3 << 64 | 4 << 96;
    assert_eq!(fields[2], Val::V128(lanes));
    assert_eq!(tag.ty(&store).unwrap().params().len(), 3);
    // The store is usable afterwards.
    let f = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "catch_deep")
        .unwrap();
    assert_eq!(f.call(&mut store, (1, 3)).unwrap(), 8);
}

#[test]
fn exnref_values_reach_the_host_and_a_null_one_traps() {
    let (mut store, instance) = catcher();
    let escape = instance.get_func(&mut store, "escape").unwrap();
    let mut out = [Val::I32(0)];
    escape.call(&mut store, &[], &mut out).unwrap();
    let Val::ExnRef(Some(exn)) = out[0].clone() else {
        panic!("expected an exnref, got {:?}", out[0]);
    };
    assert_eq!(exn.fields(&store).unwrap()[0], Val::I32(3));
    let null = instance.get_func(&mut store, "throw_ref_null").unwrap();
    let err = null.call(&mut store, &[], &mut []).unwrap_err();
    assert_eq!(
        err.as_trap().map(|t| t.kind()),
        Some(TrapKind::NullExceptionReference),
        "{err}"
    );
}

#[test]
fn exceptions_caught_for_their_fields_are_freed_and_values_are_kept() {
    let (mut store, instance) = catcher();
    let f = instance
        .get_typed_func::<i32, i32>(&mut store, "loop")
        .unwrap();
    // 200,000 throws, each caught: nothing is held afterwards.
    assert_eq!(
        f.call(&mut store, 200_000).unwrap(),
        (200_000u64 * 200_001 / 2) as u32 as i32
    );
    assert_eq!(store.exceptions_held(), 0);
    // 1000 kept as values and dropped: collections free them, and an
    // explicit one frees whatever is left.
    let f = instance
        .get_typed_func::<i32, ()>(&mut store, "loop_ref")
        .unwrap();
    f.call(&mut store, 1000).unwrap();
    assert!(store.exceptions_held() <= 1000);
    store.collect_exceptions();
    assert_eq!(store.exceptions_held(), 0);
    // A million of them in one call: collections during the call keep the
    // count bounded.
    f.call(&mut store, 1_000_000).unwrap();
    assert!(
        store.exceptions_held() < 10_000,
        "{} held",
        store.exceptions_held()
    );
}

/// Keeps every exception it throws reachable (in a growing table): the
/// store refuses the one past its limit, with an error, not a crash.
#[test]
fn a_store_refuses_more_live_exceptions_than_its_limit() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
          (tag $t)
          (table $keep 0 exnref)
          (func (export "hoard") (param $n i32)
            (loop $l
              (block $h (result exnref)
                (try_table (catch_all_ref $h) (throw $t))
                (unreachable))
              (drop (table.grow $keep (i32.const 1)))
              (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Linker::new().instantiate(&mut store, &module).unwrap();
    let hoard = i.get_typed_func::<i32, ()>(&mut store, "hoard").unwrap();
    hoard
        .call(&mut store, weft::MAX_LIVE_EXCEPTIONS as i32)
        .unwrap();
    assert_eq!(store.exceptions_held(), weft::MAX_LIVE_EXCEPTIONS);
    let err = hoard.call(&mut store, 1).unwrap_err();
    assert!(
        err.to_string().contains("too many live exceptions"),
        "{err}"
    );
    // Nothing was lost: they are all still reachable.
    assert_eq!(store.collect_exceptions(), 0);
}

/// `run(x)` catches an exception of `x` by reference into a local, makes
/// `churn` exceptions (each caught by reference, so only collections free
/// them; with `yield`, calling the host's `h::yield` every 1000), then
/// throws the kept one again and returns its field.
fn keeper_wat(churn: u32, with_yield: bool) -> String {
    let (import, call) = if with_yield {
        (
            r#"(import "h" "yield" (func $yield))"#,
            "(if (i32.eqz (i32.rem_u (local.get $n) (i32.const 1000))) (then (call $yield)))",
        )
    } else {
        ("", "")
    };
    format!(
        r#"(module
          {import}
          (tag $a (param i32))
          (tag $b (param i64))
          (func $churn (param $n i32)
            (loop $l
              {call}
              (block $h (result i64 exnref)
                (try_table (catch_ref $b $h) (throw $b (i64.extend_i32_u (local.get $n))))
                (unreachable))
              (drop) (drop)
              (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
          (func (export "run") (param $x i32) (result i32) (local $kept exnref)
            (block $h (result i32 exnref)
              (try_table (catch_ref $a $h) (throw $a (local.get $x)))
              (unreachable))
            (local.set $kept)
            (drop)
            (call $churn (i32.const {churn}))
            (block $again (result i32)
              (try_table (catch $a $again) (throw_ref (local.get $kept)))
              (unreachable))))"#
    )
}

/// An exception held only in a wasm local survives the collections that
/// thousands of later exceptions set off during the same call (the stack
/// is scanned), and is thrown again intact.
#[test]
fn collections_during_a_call_keep_what_wasm_frames_hold() {
    let engine = Engine::default();
    let module = Module::new(&engine, keeper_wat(50_000, false)).unwrap();
    let mut store = Store::new(&engine, ());
    let i = Linker::new().instantiate(&mut store, &module).unwrap();
    let run = i.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    for x in [5, 77] {
        assert_eq!(run.call(&mut store, x).unwrap(), x);
    }
    assert!(store.exceptions_held() < 10_000);
}

/// `run` calls the host's `host::call` inside a try_table that catches the
/// host's tag `$h` and the module's own `$e`.
const THROUGH_HOST: &str = r#"(module
  (import "host" "tag" (tag $h (param i64)))
  (import "host" "call" (func $call (param i32) (result i32)))
  (tag $e (export "e") (param i32))
  (func (export "run") (param i32) (result i64)
    (block $caught_h (result i64)
      (block $caught_e (result i32)
        (try_table (catch $h $caught_h) (catch $e $caught_e)
          (drop (call $call (local.get 0))))
        (return (i64.const -1)))
      (return (i64.extend_i32_s)))
    (return))
  (func (export "throw_e") (param i32) (result i32)
    (throw $e (local.get 0)))
)"#;

#[test]
fn exceptions_pass_through_host_frames_both_ways() {
    let engine = Engine::default();
    let module = Module::new(&engine, THROUGH_HOST).unwrap();
    let mut store = Store::new(&engine, ());
    let host_tag = Tag::new(&mut store, &TagType::new([ValType::I64])).unwrap();
    let mut linker = Linker::new();
    linker.define("host", "tag", host_tag).unwrap();
    // 0: the host throws its own tag; 1: the host calls back into wasm,
    // which throws $e, and lets it go on (`?`); 2: the host catches that
    // exception and returns normally; 3: a plain host error.
    linker
        .func_wrap(
            "host",
            "call",
            move |mut caller: Caller<'_, ()>, what: i32| match what {
                0 => {
                    let exn = Exn::new(&mut caller, &host_tag, &[Val::I64(77)])?;
                    Err(Error::Exception(exn))
                }
                1 | 2 => {
                    let Some(Extern::Func(f)) = caller.get_export("throw_e") else {
                        return Err(Error::msg("no throw_e"));
                    };
                    let r = f.call(&mut caller, &[Val::I32(what * 10)], &mut [Val::I32(0)]);
                    match r {
                        Err(e) if what == 2 && e.as_exception().is_some() => Ok(5),
                        Err(e) => Err(e),
                        Ok(()) => Ok(-1),
                    }
                }
                _ => Err(Error::msg("plain failure")),
            },
        )
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i64>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 0).unwrap(), 77);
    assert_eq!(run.call(&mut store, 1).unwrap(), 10);
    assert_eq!(run.call(&mut store, 2).unwrap(), -1);
    let err = run.call(&mut store, 3).unwrap_err();
    assert!(err.as_exception().is_none());
    assert!(err.to_string().contains("plain failure"), "{err}");
}

/// Each instantiation defines new tags: an exception of one instance's
/// `$e` is not caught by another instance's `catch $e`, but an imported
/// tag is the exporter's own.
#[test]
fn tags_are_identities_per_instance_not_types() {
    let engine = Engine::default();
    let thrower = Module::new(
        &engine,
        r#"(module
          (tag $e (export "e") (param i32))
          (func (export "throw") (param i32) (throw $e (local.get 0))))"#,
    )
    .unwrap();
    // Catches its own `$e` (imported or defined) around a call of `throw`.
    let catcher = |import_tag: bool| {
        let tag = if import_tag {
            r#"(import "t" "e" (tag $e (param i32)))"#
        } else {
            r#"(tag $e (param i32))"#
        };
        format!(
            r#"(module
              {tag}
              (import "t" "throw" (func $throw (param i32)))
              (func (export "run") (param i32) (result i32)
                (block $h (result i32)
                  (try_table (catch $e $h) (call $throw (local.get 0)))
                  (return (i32.const -1)))))"#
        )
    };
    let mut store = Store::new(&engine, ());
    let t = Linker::new().instantiate(&mut store, &thrower).unwrap();
    let mut linker = Linker::new();
    linker.instance(&mut store, "t", t).unwrap();
    for (import_tag, caught) in [(true, true), (false, false)] {
        let m = Module::new(&engine, catcher(import_tag)).unwrap();
        let i = linker.instantiate(&mut store, &m).unwrap();
        let run = i.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
        let r = run.call(&mut store, 4);
        if caught {
            assert_eq!(r.unwrap(), 4);
        } else {
            assert!(r.unwrap_err().as_exception().is_some());
        }
    }
    // A second instance of the thrower has a new `$e`.
    let t2 = Linker::new().instantiate(&mut store, &thrower).unwrap();
    let e1 = t.get_export(&mut store, "e").and_then(Extern::into_tag);
    let e2 = t2.get_export(&mut store, "e").and_then(Extern::into_tag);
    assert_ne!(e1, e2);
}

#[test]
fn a_tail_call_leaves_the_try_table_it_was_made_in() {
    // `run` tail-calls `$throw` from inside a try_table: the frame, and so
    // the handler, is gone; `outer` catches.
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
          (tag $e (param i32))
          (func $throw (param i32) (result i32) (throw $e (local.get 0)))
          (func $run (param i32) (result i32)
            (block $h (result i32)
              (try_table (result i32) (catch $e $h)
                (return_call $throw (local.get 0))))
            (i32.add (i32.const 1000)))
          (func (export "outer") (param i32) (result i32)
            (block $h (result i32)
              (try_table (result i32) (catch $e $h) (call $run (local.get 0))))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let i = Linker::new().instantiate(&mut store, &module).unwrap();
    let outer = i.get_typed_func::<i32, i32>(&mut store, "outer").unwrap();
    assert_eq!(outer.call(&mut store, 6).unwrap(), 6);
}

#[test]
fn exceptions_can_be_turned_off() {
    let mut config = Config::new();
    config.wasm_exceptions(false);
    let engine = Engine::new(&config).unwrap();
    let err = Module::new(&engine, CATCHER).unwrap_err();
    assert!(err.to_string().contains("exception"), "{err}");
    let mut store = Store::new(&engine, ());
    let err = Tag::new(&mut store, &TagType::new([])).unwrap_err();
    assert!(err.to_string().contains("wasm_exceptions"), "{err}");
    // Modules without exceptions still run.
    let m = Module::new(
        &engine,
        r#"(module (func (export "f") (result i32) (i32.const 3)))"#,
    )
    .unwrap();
    let i = Linker::new().instantiate(&mut store, &m).unwrap();
    let f = i.get_typed_func::<(), i32>(&mut store, "f").unwrap();
    assert_eq!(f.call(&mut store, ()).unwrap(), 3);
}

/// `Option<Exn>` in typed functions, both ways: an exnref result reaches
/// the host, goes back in as a parameter and is thrown again.
#[test]
fn typed_functions_take_and_return_exnrefs() {
    let (mut store, instance) = catcher();
    let escape = instance
        .get_typed_func::<(), Option<Exn>>(&mut store, "escape")
        .unwrap();
    let exn = escape.call(&mut store, ()).unwrap().expect("an exnref");
    assert_eq!(exn.fields(&store).unwrap()[0], Val::I32(3));
    let engine = store.engine().clone();
    let rethrow = Module::new(
        &engine,
        r#"(module (func (export "rethrow") (param exnref) (throw_ref (local.get 0))))"#,
    )
    .unwrap();
    let i = Linker::new().instantiate(&mut store, &rethrow).unwrap();
    let f = i
        .get_typed_func::<Option<Exn>, ()>(&mut store, "rethrow")
        .unwrap();
    let err = f.call(&mut store, Some(exn.clone())).unwrap_err();
    assert_eq!(err.as_exception(), Some(&exn));
    let err = f.call(&mut store, None).unwrap_err();
    assert_eq!(
        err.as_trap().map(|t| t.kind()),
        Some(TrapKind::NullExceptionReference)
    );
}

/// The same on a fiber (an async call), with an async host function that
/// suspends the call now and then, on a multi-threaded executor (the fiber
/// may resume on another thread): the stack scanned is the fiber's, from
/// the collection up to the call's entry on it.
#[test]
fn collections_during_an_async_call_keep_what_wasm_frames_hold() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Pending once, then ready.
    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    let mut config = Config::new();
    config.async_support(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, keeper_wat(20_000, true)).unwrap();
    let mut linker = Linker::new();
    linker
        .func_wrap_async("h", "yield", |_: Caller<'_, ()>, (): ()| {
            Box::new(async move {
                YieldOnce(false).await;
                Ok(())
            })
        })
        .unwrap();
    common::two_thread_runtime().block_on(async move {
        let mut store = Store::new(&engine, ());
        let i = linker.instantiate_async(&mut store, &module).await.unwrap();
        let run = i.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
        for x in [9, 123] {
            let r = tokio::spawn(async move {
                let mut store = store;
                let v = run.call_async(&mut store, x).await;
                (store, v)
            })
            .await
            .unwrap();
            store = r.0;
            assert_eq!(r.1.unwrap(), x);
        }
        assert!(store.exceptions_held() < 10_000);
    });
}
