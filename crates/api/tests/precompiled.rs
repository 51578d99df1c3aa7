//! Compiled modules that persist: `Module::serialize`/`deserialize` and the
//! compiled-module cache (`Config::cache_dir`).

use std::path::PathBuf;

use weft::{Config, Engine, Error, Instance, Module, Store, TrapKind};

const WAT: &str = r#"(module $demo
  (memory (export "mem") 1)
  (data (i32.const 16) "persisted")
  (table 2 funcref) (elem (i32.const 0) $sq $boom)
  (func $sq (export "sq") (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
  (func $boom (export "boom") (result i32) (i32.div_u (i32.const 1) (i32.const 0)))
  (func (export "indirect") (param i32 i32) (result i32)
    (call_indirect (param i32) (result i32) (local.get 1) (local.get 0)))
  (func (export "floor") (param f64) (result f64) (f64.floor (local.get 0))))"#;

fn check(engine: &Engine, module: &Module) {
    let mut store = Store::new(engine, ());
    let i = Instance::new(&mut store, module, &[]).unwrap();
    let sq = i.get_typed_func::<i32, i32>(&mut store, "sq").unwrap();
    assert_eq!(sq.call(&mut store, 12).unwrap(), 144);
    let ind = i
        .get_typed_func::<(i32, i32), i32>(&mut store, "indirect")
        .unwrap();
    assert_eq!(ind.call(&mut store, (0, 5)).unwrap(), 25);
    let floor = i.get_typed_func::<f64, f64>(&mut store, "floor").unwrap();
    assert_eq!(floor.call(&mut store, 2.7).unwrap(), 2.0);
    let boom = i.get_typed_func::<(), i32>(&mut store, "boom").unwrap();
    match boom.call(&mut store, ()) {
        Err(Error::Trap(t)) => {
            assert_eq!(t.kind(), TrapKind::IntegerDivisionByZero);
            let f = &t.frames()[0];
            assert_eq!((f.func_index(), f.func_name()), (1, Some("boom")));
            assert!(f.module_offset().is_some(), "source locations survive");
        }
        other => panic!("{other:?}"),
    }
    let mem = i.get_memory(&mut store, "mem").unwrap();
    assert_eq!(&mem.data(&store)[16..25], b"persisted");
}

#[test]
fn a_serialized_module_loads_and_behaves_the_same() {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT).unwrap();
    let bytes = module.serialize().unwrap();
    assert!(Module::is_precompiled(&bytes));
    // SAFETY: bytes this test just produced with this engine.
    let loaded = unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
    check(&engine, &module);
    check(&engine, &loaded);
    assert_eq!(loaded.name(), Some("demo"));
    // A loaded module serializes to the same bytes: the code is written
    // position-independently, whatever address it was linked at.
    assert!(loaded.serialize().unwrap() == bytes);
    // Another engine with the same settings loads it too.
    let other = Engine::default();
    // SAFETY: as above.
    let m = unsafe { Module::deserialize(&other, &bytes) }.unwrap();
    check(&other, &m);
}

#[test]
fn other_settings_and_malformed_bytes_are_refused_with_an_error() {
    let engine = Engine::default();
    let bytes = Module::new(&engine, WAT).unwrap().serialize().unwrap();
    let mut fuel = Config::new();
    fuel.consume_fuel(true);
    let fuel = Engine::new(&fuel).unwrap();
    // SAFETY: well-formed weft output; refused before any code is used.
    let err = unsafe { Module::deserialize(&fuel, &bytes) }.unwrap_err();
    assert!(err.to_string().contains("consume_fuel: false"), "{err}");
    let mut simd = Config::new();
    simd.wasm_simd(false);
    let simd = Engine::new(&simd).unwrap();
    // SAFETY: as above.
    let err = unsafe { Module::deserialize(&simd, &bytes) }.unwrap_err();
    assert!(err.to_string().contains("wasm features"), "{err}");
    // Not precompiled at all.
    // SAFETY: refused before anything is used.
    let err = unsafe { Module::deserialize(&engine, b"\0asm\x01\0\0\0") }.unwrap_err();
    assert!(err.to_string().contains("not a precompiled"), "{err}");
    // Every truncation is an error, never a panic.
    for n in 0..bytes.len() {
        // SAFETY: a prefix of weft's own output; refused as truncated.
        let r = unsafe { Module::deserialize(&engine, &bytes[..n]) };
        assert!(r.is_err(), "prefix {n}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    // SAFETY: as above.
    assert!(unsafe { Module::deserialize(&engine, &longer) }.is_err());
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("weft-cache-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn entries(dir: &PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_cache_is_filled_once_and_reused_by_later_engines() {
    let dir = temp_dir("reuse");
    let mut c = Config::new();
    c.cache_dir(Some(dir.clone()));
    let engine = Engine::new(&c).unwrap();
    check(&engine, &Module::new(&engine, WAT).unwrap());
    let files = entries(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let written = std::fs::read(&files[0]).unwrap();
    // A later engine loads the entry (same file, untouched) and it works.
    let engine2 = Engine::new(&c).unwrap();
    check(&engine2, &Module::new(&engine2, WAT).unwrap());
    assert_eq!(entries(&dir), files);
    assert!(std::fs::read(&files[0]).unwrap() == written);
    // A damaged entry is ignored (compiled afresh) and replaced.
    std::fs::write(&files[0], b"\0weft-cwasm\ngarbage").unwrap();
    check(&engine2, &Module::new(&engine2, WAT).unwrap());
    assert!(std::fs::read(&files[0]).unwrap() == written);
    // Another engine configuration has its own entries.
    let mut f = c.clone();
    f.consume_fuel(true);
    let fuel = Engine::new(&f).unwrap();
    Module::new(&fuel, WAT).unwrap();
    assert_eq!(entries(&dir).len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_fills_and_the_size_bound_keep_the_cache_valid() {
    let dir = temp_dir("bound");
    let mut c = Config::new();
    c.cache_dir(Some(dir.clone()));
    let engine = Engine::new(&c).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| check(&engine, &Module::new(&engine, WAT).unwrap()));
        }
    });
    let files = entries(&dir);
    assert_eq!(files.len(), 1, "temporary files left behind: {files:?}");
    let one = std::fs::metadata(&files[0]).unwrap().len();
    // Room for about one entry: older ones go as new ones come.
    c.cache_max_bytes(one + one / 2);
    let engine = Engine::new(&c).unwrap();
    for i in 0..3 {
        let wat = WAT.replace("persisted", &format!("version{i}ab"));
        Module::new(&engine, wat).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let left = entries(&dir);
    assert_eq!(left.len(), 1, "{left:?}");
    // The one left is the newest: loading version 2 finds it.
    let engine2 = Engine::new(&c).unwrap();
    let m = Module::new(&engine2, WAT.replace("persisted", "version2ab")).unwrap();
    let mut store = Store::new(&engine2, ());
    let i = Instance::new(&mut store, &m, &[]).unwrap();
    let mem = i.get_memory(&mut store, "mem").unwrap();
    assert_eq!(&mem.data(&store)[16..26], b"version2ab");
    assert_eq!(entries(&dir), left);
    let _ = std::fs::remove_dir_all(&dir);
}
