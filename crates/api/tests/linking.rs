//! WebAssembly 2.0 linking through the public API: shared tables and
//! memories, references crossing the host boundary, table handles.

use weft::{
    Engine, Error, ExternRef, Func, Instance, Linker, Module, Store, Table, TableType, TrapKind,
    Val, ValType,
};

#[test]
fn two_modules_share_a_table_and_a_memory() {
    let engine = Engine::default();
    let provider = Module::new(
        &engine,
        r#"(module
          (memory (export "mem") 1)
          (table (export "tab") 4 funcref)
          (func $seven (result i32) (i32.const 7))
          (elem (i32.const 0) $seven)
          (func (export "read") (param i32) (result i32) (i32.load (local.get 0)))
          (func (export "call") (param i32) (result i32)
            (call_indirect (result i32) (local.get 0))))"#,
    )
    .unwrap();
    let user = Module::new(
        &engine,
        r#"(module
          (import "p" "mem" (memory 1))
          (import "p" "tab" (table 4 funcref))
          (func $nine (result i32) (i32.const 9))
          (elem (i32.const 1) $nine)
          (func (export "write") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
          (func (export "call") (param i32) (result i32)
            (call_indirect (result i32) (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new();
    let p = linker.instantiate(&mut store, &provider).unwrap();
    linker.instance(&mut store, "p", p).unwrap();
    let u = linker.instantiate(&mut store, &user).unwrap();

    let write = u
        .get_typed_func::<(i32, i32), ()>(&mut store, "write")
        .unwrap();
    let read = p.get_typed_func::<i32, i32>(&mut store, "read").unwrap();
    write.call(&mut store, (64, 0x5eed)).unwrap();
    assert_eq!(read.call(&mut store, 64).unwrap(), 0x5eed);

    // Each module sees the other's function in the shared table.
    let p_call = p.get_typed_func::<i32, i32>(&mut store, "call").unwrap();
    let u_call = u.get_typed_func::<i32, i32>(&mut store, "call").unwrap();
    assert_eq!(p_call.call(&mut store, 1).unwrap(), 9);
    assert_eq!(u_call.call(&mut store, 0).unwrap(), 7);
    let trap = |r: weft::Result<i32>| r.unwrap_err().as_trap().map(|t| t.kind());
    assert_eq!(
        trap(u_call.call(&mut store, 2)),
        Some(TrapKind::IndirectCallToNull)
    );
    let err = u_call.call(&mut store, 4).unwrap_err();
    assert_eq!(err.as_trap().unwrap().message(), "undefined element");

    // The host sees the same table.
    let tab = p.get_table(&mut store, "tab").unwrap();
    assert_eq!(tab.size(&mut store).unwrap(), 4);
    let f = tab.get(&mut store, 1).unwrap();
    let Val::FuncRef(Some(f)) = f else {
        panic!("expected a function, got {f:?}")
    };
    let mut out = [Val::I32(0)];
    f.call(&mut store, &[], &mut out).unwrap();
    assert_eq!(out[0], Val::I32(9));
}

#[test]
fn externref_round_trip_through_wasm_and_tables() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
          (table $t (export "t") 2 externref)
          (func (export "id") (param externref) (result externref) (local.get 0))
          (func (export "stash") (param externref) (table.set $t (i32.const 1) (local.get 0)))
          (func (export "fetch") (result externref) (table.get $t (i32.const 1)))
          (func (export "is_null") (param externref) (result i32) (ref.is_null (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let id = inst
        .get_typed_func::<Option<ExternRef>, Option<ExternRef>>(&mut store, "id")
        .unwrap();
    let host = ExternRef::new(String::from("host value"));
    let back = id.call(&mut store, Some(host.clone())).unwrap().unwrap();
    assert!(ExternRef::ptr_eq(&host, &back));
    assert_eq!(back.downcast_ref::<String>().unwrap(), "host value");
    assert!(id.call(&mut store, None).unwrap().is_none());

    let stash = inst
        .get_typed_func::<Option<ExternRef>, ()>(&mut store, "stash")
        .unwrap();
    let fetch = inst
        .get_typed_func::<(), Option<ExternRef>>(&mut store, "fetch")
        .unwrap();
    stash.call(&mut store, Some(ExternRef::new(42u64))).unwrap();
    let got = fetch.call(&mut store, ()).unwrap().unwrap();
    assert_eq!(got.downcast_ref::<u64>(), Some(&42));
    let is_null = inst
        .get_typed_func::<Option<ExternRef>, i32>(&mut store, "is_null")
        .unwrap();
    assert_eq!(is_null.call(&mut store, None).unwrap(), 1);
    assert_eq!(is_null.call(&mut store, Some(host)).unwrap(), 0);
}

#[test]
fn table_handles_check_types_and_bounds() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let ty = TableType::new(ValType::FUNCREF, 2, Some(3));
    let t = Table::new(&mut store, ty, Val::FuncRef(None)).unwrap();
    let f = Func::wrap(&mut store, || 5i32).unwrap();
    t.set(&mut store, 0, f.into()).unwrap();
    assert!(matches!(
        t.set(&mut store, 2, Val::FuncRef(None)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        t.set(&mut store, 1, Val::I32(1)),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(t.grow(&mut store, 1, Val::FuncRef(None)).unwrap(), 2);
    assert!(t.grow(&mut store, 1, Val::FuncRef(None)).is_err());
    assert_eq!(t.size(&mut store).unwrap(), 3);
    assert_eq!(t.get(&mut store, 0), Some(Val::FuncRef(Some(f))));
    assert_eq!(t.get(&mut store, 3), None);
    // A table from another store is refused at link time.
    let mut other = Store::new(&engine, ());
    let module = Module::new(&engine, r#"(module (import "x" "t" (table 1 funcref)))"#).unwrap();
    assert!(Instance::new(&mut other, &module, &[t.into()]).is_err());
}
