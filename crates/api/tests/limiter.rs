//! Resource limiters: consulted before every memory and table grow, from
//! wasm and from the host; refusals, errors and panics each reach the right
//! place and leave the store usable.

use std::panic::{AssertUnwindSafe, catch_unwind};

use weft::{Engine, Error, Linker, Module, ResourceLimiter, Store, Val};

/// What the limiter does with the next request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    CapAt(usize),
    Fail,
    Panic,
}

struct Limits {
    mode: Mode,
    asked: Vec<(bool, usize, usize, Option<usize>)>,
}

impl Limits {
    fn decide(
        &mut self,
        table: bool,
        cur: usize,
        desired: usize,
        max: Option<usize>,
    ) -> weft::Result<bool> {
        self.asked.push((table, cur, desired, max));
        match self.mode {
            Mode::CapAt(n) => Ok(desired <= n),
            Mode::Fail => Err(Error::Resource("limiter says no loudly".into())),
            Mode::Panic => panic!("limiter exploded"),
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        cur: usize,
        desired: usize,
        max: Option<usize>,
    ) -> weft::Result<bool> {
        self.decide(false, cur, desired, max)
    }
    fn table_growing(
        &mut self,
        cur: usize,
        desired: usize,
        max: Option<usize>,
    ) -> weft::Result<bool> {
        self.decide(true, cur, desired, max)
    }
}

const WAT: &str = r#"(module
  (memory (export "mem") 1 100)
  (table (export "tab") 2 funcref)
  (func (export "mgrow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "tgrow") (param i32) (result i32) (table.grow (ref.null func) (local.get 0)))
  (func (export "answer") (result i32) (i32.const 42)))"#;

struct Setup {
    store: Store<Limits>,
    inst: weft::Instance,
}

fn setup(mode: Mode) -> Setup {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT).unwrap();
    let mut store = Store::new(
        &engine,
        Limits {
            mode,
            asked: Vec::new(),
        },
    );
    store.limiter(|l| l as &mut dyn ResourceLimiter);
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    Setup { store, inst }
}

fn call(s: &mut Setup, name: &str, arg: i32) -> weft::Result<i32> {
    let f = s
        .inst
        .get_typed_func::<i32, i32>(&mut s.store, name)
        .unwrap();
    f.call(&mut s.store, arg)
}

#[test]
fn refusals_make_wasm_grow_return_minus_one() {
    let mut s = setup(Mode::CapAt(3 << 16));
    assert_eq!(call(&mut s, "mgrow", 2).unwrap(), 1);
    assert_eq!(call(&mut s, "mgrow", 1).unwrap(), -1);
    assert_eq!(
        s.store.data().asked,
        vec![
            (false, 1 << 16, 3 << 16, Some(100 << 16)),
            (false, 3 << 16, 4 << 16, Some(100 << 16))
        ]
    );
    // Tables: the cap is in elements.
    assert_eq!(call(&mut s, "tgrow", 1).unwrap(), 2);
    s.store.data_mut().mode = Mode::CapAt(3);
    assert_eq!(call(&mut s, "tgrow", 1).unwrap(), -1);
    assert_eq!(s.store.data().asked.last(), Some(&(true, 3, 4, None)));
}

#[test]
fn host_side_grows_ask_the_limiter_too() {
    let mut s = setup(Mode::CapAt(2 << 16));
    let mem = s.inst.get_memory(&mut s.store, "mem").unwrap();
    assert_eq!(mem.grow(&mut s.store, 1).unwrap(), 1);
    assert!(mem.grow(&mut s.store, 1).is_err());
    let tab = s.inst.get_table(&mut s.store, "tab").unwrap();
    s.store.data_mut().mode = Mode::CapAt(2);
    assert!(
        tab.grow(&mut s.store, 1, Val::FuncRef(None)).is_err(),
        "2 elements -> 3 > cap 2"
    );
    assert_eq!(s.store.data().asked.len(), 3);
}

#[test]
fn a_limiter_error_ends_the_call_with_that_error() {
    let mut s = setup(Mode::Fail);
    match call(&mut s, "mgrow", 1) {
        Err(Error::Resource(m)) => assert_eq!(m, "limiter says no loudly"),
        other => panic!("expected the limiter's error, got {other:?}"),
    }
    match call(&mut s, "tgrow", 1) {
        Err(Error::Resource(_)) => {}
        other => panic!("expected the limiter's error, got {other:?}"),
    }
    // Nothing grew, and the store works.
    s.store.data_mut().mode = Mode::CapAt(usize::MAX);
    assert_eq!(call(&mut s, "mgrow", 0).unwrap(), 1);
    assert_eq!(call(&mut s, "tgrow", 0).unwrap(), 2);
}

#[test]
fn a_panicking_limiter_reaches_the_caller_and_stays_installed() {
    for op in ["mgrow", "tgrow"] {
        let mut s = setup(Mode::Panic);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _ = call(&mut s, op, 1);
        }));
        let payload = caught.expect_err("the limiter's panic must reach the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"limiter exploded"));
        // The store takes further calls, and the limiter is still consulted.
        let answer = s
            .inst
            .get_typed_func::<(), i32>(&mut s.store, "answer")
            .unwrap();
        assert_eq!(answer.call(&mut s.store, ()).unwrap(), 42);
        s.store.data_mut().mode = Mode::CapAt(0);
        assert_eq!(
            call(&mut s, op, 1).unwrap(),
            -1,
            "{op}: refused by the reinstalled limiter"
        );
        assert_eq!(s.store.data().asked.len(), 2);
    }
}
