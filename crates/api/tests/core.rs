//! End-to-end behaviour of the core API: calls, traps, the stack limit,
//! host functions and threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use weft::{Caller, Engine, Error, Func, Instance, Linker, Module, Store, TrapKind, Val};

fn instance(wat: &str) -> (Store<()>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, wat).expect("module compiles");
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    (store, instance)
}

const TRAPS: &str = r#"(module
  (memory 1)
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "rem") (param i64 i64) (result i64) (i64.rem_u (local.get 0) (local.get 1)))
  (func (export "trunc") (param f64) (result i32) (i32.trunc_f64_s (local.get 0)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "unreachable") unreachable)
  (func $rec (export "recurse") (param i32) (result i32)
    (i32.add (call $rec (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
)"#;

fn trap_kind(r: weft::Result<impl std::fmt::Debug>) -> TrapKind {
    match r {
        Err(Error::Trap(t)) => t.kind(),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn every_core_trap_is_an_error_value_and_the_store_stays_usable() {
    let (mut store, inst) = instance(TRAPS);
    let div = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "div")
        .unwrap();
    let rem = inst
        .get_typed_func::<(i64, i64), i64>(&mut store, "rem")
        .unwrap();
    let trunc = inst
        .get_typed_func::<f64, i32>(&mut store, "trunc")
        .unwrap();
    let load = inst.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
    let store_fn = inst
        .get_typed_func::<(i32, i32), ()>(&mut store, "store")
        .unwrap();
    let unreachable = inst
        .get_typed_func::<(), ()>(&mut store, "unreachable")
        .unwrap();

    assert_eq!(
        trap_kind(div.call(&mut store, (1, 0))),
        TrapKind::IntegerDivisionByZero
    );
    assert_eq!(div.call(&mut store, (-9, 2)).unwrap(), -4);
    assert_eq!(
        trap_kind(div.call(&mut store, (i32::MIN, -1))),
        TrapKind::IntegerOverflow
    );
    assert_eq!(
        trap_kind(rem.call(&mut store, (5, 0))),
        TrapKind::IntegerDivisionByZero
    );
    assert_eq!(
        trap_kind(trunc.call(&mut store, f64::NAN)),
        TrapKind::BadConversionToInteger
    );
    assert_eq!(
        trap_kind(trunc.call(&mut store, 3e10)),
        TrapKind::IntegerOverflow
    );
    assert_eq!(trunc.call(&mut store, -7.9).unwrap(), -7);
    assert_eq!(
        trap_kind(load.call(&mut store, 65535)),
        TrapKind::MemoryOutOfBounds
    );
    assert_eq!(
        trap_kind(load.call(&mut store, -1)),
        TrapKind::MemoryOutOfBounds
    );
    assert_eq!(
        trap_kind(store_fn.call(&mut store, (65533, 1))),
        TrapKind::MemoryOutOfBounds
    );
    store_fn.call(&mut store, (65532, 0x1234_5678)).unwrap();
    assert_eq!(load.call(&mut store, 65532).unwrap(), 0x1234_5678);
    assert_eq!(
        trap_kind(unreachable.call(&mut store, ())),
        TrapKind::UnreachableCodeReached
    );
    // After all that, ordinary calls still work.
    assert_eq!(div.call(&mut store, (42, 6)).unwrap(), 7);
}

#[test]
fn unbounded_recursion_is_call_stack_exhausted_and_repeatable() {
    let (mut store, inst) = instance(TRAPS);
    let rec = inst
        .get_typed_func::<i32, i32>(&mut store, "recurse")
        .unwrap();
    for _ in 0..3 {
        let err = rec.call(&mut store, 0).unwrap_err();
        let trap = err.as_trap().expect("a trap");
        assert_eq!(trap.kind(), TrapKind::StackOverflow);
        assert_eq!(trap.message(), "call stack exhausted");
    }
    let div = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "div")
        .unwrap();
    assert_eq!(div.call(&mut store, (9, 3)).unwrap(), 3);
}

#[test]
fn dynamic_calls_check_argument_types() {
    let (mut store, inst) = instance(TRAPS);
    let div = inst.get_func(&mut store, "div").unwrap();
    let mut out = [Val::I32(0)];
    div.call(&mut store, &[Val::I32(10), Val::I32(3)], &mut out)
        .unwrap();
    assert_eq!(out[0], Val::I32(3));
    assert!(matches!(
        div.call(&mut store, &[Val::I32(1)], &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        div.call(&mut store, &[Val::I32(1), Val::I64(1)], &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        div.call(&mut store, &[Val::I32(1), Val::I32(1)], &mut []),
        Err(Error::InvalidArgument(_))
    ));
    assert!(inst.get_typed_func::<i32, i32>(&mut store, "div").is_err());
    assert!(
        inst.get_typed_func::<(i32, i32), i32>(&mut store, "nope")
            .is_err()
    );
}

#[test]
fn two_stores_of_one_module_run_on_two_threads_at_once() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
          (memory 1)
          (func (export "sum") (param i32) (result i64) (local i64)
            (block $done (loop $l
              (br_if $done (i32.eqz (local.get 0)))
              (local.set 1 (i64.add (local.get 1) (i64.extend_i32_u (local.get 0))))
              (i32.store (i32.const 0) (local.get 0))
              (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
              (br $l)))
            (local.get 1)))"#,
    )
    .unwrap();
    let handles: Vec<_> = (0..2u32)
        .map(|t| {
            let (engine, module) = (engine.clone(), module.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let inst = Instance::new(&mut store, &module, &[]).unwrap();
                let sum = inst.get_typed_func::<i32, i64>(&mut store, "sum").unwrap();
                let n = 100_000 + t as i32;
                for _ in 0..20 {
                    assert_eq!(
                        sum.call(&mut store, n).unwrap(),
                        i64::from(n) * i64::from(n + 1) / 2
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

const HOST: &str = r#"(module
  (import "host" "log" (func $log (param i32 i32)))
  (import "host" "fail" (func $fail (param i32) (result i32)))
  (import "host" "boom" (func $boom))
  (import "host" "reenter" (func $reenter (param i32) (result i32)))
  (import "host" "pair" (func $pair (param i32) (result i32 i64)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello, host")
  (func (export "say") (call $log (i32.const 16) (i32.const 11)))
  (func (export "fail") (param i32) (result i32) (i32.add (call $fail (local.get 0)) (i32.const 1)))
  (func (export "boom") (call $boom))
  (func $down (export "down") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (call $reenter (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))))
  (func (export "pair") (param i32) (result i64) (local i32 i64)
    (call $pair (local.get 0))
    (local.set 2)
    (local.set 1)
    (i64.add (local.get 2) (i64.extend_i32_s (local.get 1))))
)"#;

fn host_instance() -> (Store<Vec<String>>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, HOST).unwrap();
    let mut linker = Linker::<Vec<String>>::new();
    linker
        .func_wrap(
            "host",
            "log",
            |mut caller: Caller<'_, Vec<String>>, ptr: i32, len: i32| {
                let mem = caller.get_export("memory").unwrap().into_memory().unwrap();
                let mut buf = vec![0u8; len as usize];
                mem.read(&mut caller, ptr as usize, &mut buf)?;
                caller
                    .data_mut()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                Ok::<(), Error>(())
            },
        )
        .unwrap()
        .func_wrap("host", "fail", |x: i32| -> weft::Result<i32> {
            if x < 0 {
                Err(Error::msg(format!("negative: {x}")))
            } else {
                Ok(x * 2)
            }
        })
        .unwrap()
        .func_wrap("host", "boom", || -> () {
            panic!("host function panicked")
        })
        .unwrap()
        .func_wrap(
            "host",
            "reenter",
            |mut caller: Caller<'_, Vec<String>>, n: i32| {
                let down = caller.get_export("down").unwrap().into_func().unwrap();
                let down = down.typed::<i32, i32>(&mut caller)?;
                down.call(&mut caller, n)
            },
        )
        .unwrap()
        .func_wrap("host", "pair", |x: i32| (x + 1, i64::from(x) * 1000))
        .unwrap();
    let mut store = Store::new(&engine, Vec::new());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    (store, inst)
}

#[test]
fn host_function_reads_guest_memory_through_caller() {
    let (mut store, inst) = host_instance();
    let say = inst.get_typed_func::<(), ()>(&mut store, "say").unwrap();
    say.call(&mut store, ()).unwrap();
    assert_eq!(store.data().as_slice(), ["hello, host"]);
}

#[test]
fn host_error_becomes_the_callers_error() {
    let (mut store, inst) = host_instance();
    let fail = inst.get_typed_func::<i32, i32>(&mut store, "fail").unwrap();
    assert_eq!(fail.call(&mut store, 20).unwrap(), 41);
    let err = fail.call(&mut store, -3).unwrap_err();
    assert!(matches!(err, Error::Host(_)), "{err:?}");
    assert_eq!(err.to_string(), "negative: -3");
    assert_eq!(fail.call(&mut store, 1).unwrap(), 3);
}

#[test]
fn host_panic_propagates_to_the_embedder_and_the_store_survives() {
    let (mut store, inst) = host_instance();
    let boom = inst.get_typed_func::<(), ()>(&mut store, "boom").unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| boom.call(&mut store, ())));
    let payload = r.expect_err("the panic reaches us");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"host function panicked")
    );
    let fail = inst.get_typed_func::<i32, i32>(&mut store, "fail").unwrap();
    assert_eq!(fail.call(&mut store, 2).unwrap(), 5);
}

#[test]
fn wasm_host_wasm_reentrancy() {
    let (mut store, inst) = host_instance();
    let down = inst.get_typed_func::<i32, i32>(&mut store, "down").unwrap();
    assert_eq!(down.call(&mut store, 25).unwrap(), 25);
    // Host frames count against the same stack limit as wasm frames, so an
    // unbounded wasm->host->wasm chain ends in a clean trap, not a crash.
    let err = down.call(&mut store, 1_000_000).unwrap_err();
    assert_eq!(
        err.as_trap().map(|t| t.kind()),
        Some(TrapKind::StackOverflow),
        "{err}"
    );
    assert_eq!(down.call(&mut store, 3).unwrap(), 3);
}

#[test]
fn multi_value_host_results() {
    let (mut store, inst) = host_instance();
    let pair = inst.get_typed_func::<i32, i64>(&mut store, "pair").unwrap();
    assert_eq!(pair.call(&mut store, 7).unwrap(), 7000 + 8);
}

#[test]
fn func_new_and_wrong_import_types_are_link_errors() {
    let engine = Engine::default();
    let module = Module::new(&engine, HOST).unwrap();
    let mut store = Store::new(&engine, ());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let f = Func::wrap(&mut store, move |x: i32| {
        c.fetch_add(1, Ordering::SeqCst);
        x
    })
    .unwrap();
    // Five imports are expected; the wrong types are refused.
    let imports = [f.into(), f.into(), f.into(), f.into(), f.into()];
    let err = Instance::new(&mut store, &module, &imports).unwrap_err();
    assert!(
        err.to_string().contains("incompatible import type"),
        "{err}"
    );
    let linker = Linker::<()>::new();
    let err = linker.instantiate(&mut store, &module).unwrap_err();
    assert!(err.to_string().contains("unknown import"), "{err}");
    let mut out = [Val::I32(0)];
    f.call(&mut store, &[Val::I32(5)], &mut out).unwrap();
    assert_eq!(out[0], Val::I32(5));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_trap_carries_a_backtrace_of_wasm_function_names() {
    let (mut store, inst) = instance(
        r#"(module
          (func $outer (export "outer") (param i32) (result i32)
            (i32.add (call $middle (local.get 0)) (i32.const 1)))
          (func $middle (param i32) (result i32)
            (i32.mul (call $inner (local.get 0)) (i32.const 2)))
          (func $inner (param i32) (result i32)
            (i32.div_u (i32.const 10) (local.get 0))))"#,
    );
    let outer = inst
        .get_typed_func::<i32, i32>(&mut store, "outer")
        .unwrap();
    assert_eq!(outer.call(&mut store, 5).unwrap(), 5);
    let err = outer.call(&mut store, 0).unwrap_err();
    let trap = err.as_trap().unwrap();
    assert_eq!(trap.kind(), TrapKind::IntegerDivisionByZero);
    let names: Vec<&str> = trap
        .backtrace()
        .iter()
        .map(|f| f.split(" @ ").next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["inner (func[2])", "middle (func[1])", "outer (func[0])"]
    );
    let shown = format!("{trap:#}");
    assert!(
        shown.starts_with("wasm trap: integer divide by zero (in inner (func[2]))"),
        "{shown}"
    );
    assert!(
        shown.contains("wasm backtrace:") && shown.contains("outer (func[0])"),
        "{shown}"
    );
}

#[test]
fn backtrace_frames_carry_indices_offsets_and_count_what_is_cut() {
    let engine = Engine::default();
    let bytes = wat::parse_str(
        r#"(module
          (func $inner (unreachable))
          (func $outer (export "go") (call $inner))
          (func $deep (export "deep") (param i32)
            (if (i32.eqz (local.get 0)) (then (unreachable)))
            (call $deep (i32.sub (local.get 0) (i32.const 1)))))"#,
    )
    .unwrap();
    let module = Module::new(&engine, &bytes).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Instance::new(&mut store, &module, &[]).unwrap();
    let go = inst.get_typed_func::<(), ()>(&mut store, "go").unwrap();
    let trap = match go.call(&mut store, ()) {
        Err(Error::Trap(t)) => t,
        other => panic!("{other:?}"),
    };
    let frames = trap.frames();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        (frames[0].func_index(), frames[0].func_name()),
        (0, Some("inner"))
    );
    assert_eq!(
        (frames[1].func_index(), frames[1].func_name()),
        (1, Some("outer"))
    );
    // The offsets point at the `unreachable` (0x00) and the `call` (0x10).
    let at = |f: &weft::FrameInfo| bytes[f.module_offset().unwrap() as usize];
    assert_eq!(at(&frames[0]), 0x00);
    assert_eq!(at(&frames[1]), 0x10);
    assert_eq!(trap.more_frames(), 0);
    // A deep stack: the first 64 frames are listed, the rest counted.
    let deep = inst.get_typed_func::<i32, ()>(&mut store, "deep").unwrap();
    let trap = match deep.call(&mut store, 100) {
        Err(Error::Trap(t)) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(trap.frames().len() + trap.more_frames(), 101);
    assert!(trap.more_frames() > 0);
    assert!(format!("{trap:#}").contains(&format!("... {} more frames", trap.more_frames())));
}

/// Multi-memory is on by default, can be turned off (modules using it are
/// then invalid), and does not change the code of single-memory modules:
/// memory 0's fast path is the same instructions.
#[test]
fn multi_memory_is_on_by_default_and_leaves_single_memory_code_alone() {
    let two = r#"(module (memory 1) (memory $b 1)
        (func (export "f") (result i32)
          (i32.store $b (i32.const 8) (i32.const 42))
          (i32.add (i32.load (i32.const 8)) (i32.load $b (i32.const 8)))))"#;
    let engine = weft::Engine::default();
    let m = weft::Module::new(&engine, two).unwrap();
    let mut store = weft::Store::new(&engine, ());
    let i = weft::Instance::new(&mut store, &m, &[]).unwrap();
    let f = i.get_typed_func::<(), i32>(&mut store, "f").unwrap();
    assert_eq!(f.call(&mut store, ()).unwrap(), 42);
    let mut off = weft::Config::new();
    off.wasm_multi_memory(false);
    let off = weft::Engine::new(&off).unwrap();
    assert!(matches!(
        weft::Module::new(&off, two),
        Err(weft::Error::Invalid { .. })
    ));
    // The code part of a serialized module (after the header, which names
    // the features) is the same with the feature on and off.
    let one = r#"(module (memory 1) (func (export "sum") (param i32) (result i32) (local i32)
        (block $d (loop $l (br_if $d (i32.eqz (local.get 0)))
          (local.set 1 (i32.add (local.get 1) (i32.load (local.get 0))))
          (local.set 0 (i32.sub (local.get 0) (i32.const 4))) (br $l)))
        (local.get 1)))"#;
    let code = |e: &weft::Engine| {
        let bytes = weft::Module::new(e, one).unwrap().serialize().unwrap();
        // magic, version, then three length-prefixed parts: header, wasm, code
        let mut rest = &bytes[b"\0weft-cwasm\n".len() + 4..];
        for _ in 0..2 {
            let n = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            rest = &rest[8 + n..];
        }
        rest.to_vec()
    };
    assert!(code(&engine) == code(&off));
}

/// memory64: 64-bit addresses, growth past 4 GiB, bounds checks on 64-bit
/// indices, 64-bit tables; off with `Config::wasm_memory64(false)`.
#[test]
fn memory64_grows_past_four_gib_and_checks_64_bit_addresses() {
    let wat = r#"(module
        (memory (export "mem") i64 1)
        (table i64 2 funcref)
        (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
        (func (export "size") (result i64) (memory.size))
        (func (export "store") (param i64 i32) (i32.store (local.get 0) (local.get 1)))
        (func (export "load") (param i64) (result i32) (i32.load (local.get 0)))
        (func (export "tsize") (result i64) (table.size)))"#;
    let engine = weft::Engine::default();
    let m = weft::Module::new(&engine, wat).unwrap();
    let mut store = weft::Store::new(&engine, ());
    let i = weft::Instance::new(&mut store, &m, &[]).unwrap();
    let grow = i.get_typed_func::<i64, i64>(&mut store, "grow").unwrap();
    let size = i.get_typed_func::<(), i64>(&mut store, "size").unwrap();
    let st = i
        .get_typed_func::<(i64, i32), ()>(&mut store, "store")
        .unwrap();
    let ld = i.get_typed_func::<i64, i32>(&mut store, "load").unwrap();
    let tsize = i.get_typed_func::<(), i64>(&mut store, "tsize").unwrap();
    assert_eq!(tsize.call(&mut store, ()).unwrap(), 2);
    assert_eq!(grow.call(&mut store, 65536).unwrap(), 1);
    assert_eq!(size.call(&mut store, ()).unwrap(), 65537);
    let past_4g = (1i64 << 32) + 8;
    st.call(&mut store, (past_4g, 77)).unwrap();
    assert_eq!(ld.call(&mut store, past_4g).unwrap(), 77);
    assert_eq!(
        ld.call(&mut store, 8).unwrap(),
        0,
        "no aliasing modulo 2^32"
    );
    let mem = i.get_memory(&mut store, "mem").unwrap();
    assert_eq!(mem.size(&store).unwrap(), 65537);
    let end = 65537i64 * 65536;
    for addr in [end - 3, end, i64::MAX, -1] {
        let err = ld.call(&mut store, addr).unwrap_err();
        assert!(
            matches!(err, weft::Error::Trap(ref t) if t.kind() == weft::TrapKind::MemoryOutOfBounds),
            "{addr:#x}: {err}"
        );
    }
    let mut off = weft::Config::new();
    off.wasm_memory64(false);
    let off = weft::Engine::new(&off).unwrap();
    assert!(matches!(
        weft::Module::new(&off, wat),
        Err(weft::Error::Invalid { .. })
    ));
}

/// Extended constant expressions: arithmetic in global initialisers and
/// segment offsets, with imported globals; off with the switch.
#[test]
fn extended_constants_compute_initialisers_and_offsets() {
    let wat = r#"(module
        (import "env" "base" (global $base i32))
        (global (export "g") i32 (i32.add (global.get $base) (i32.const 10)))
        (global (export "h") i64 (i64.sub (i64.mul (i64.const 3) (i64.const 7)) (i64.const 1)))
        (memory (export "mem") 1)
        (data (i32.mul (global.get $base) (i32.const 2)) "xy")
        (table (export "t") 4 funcref)
        (elem (i32.sub (i32.const 3) (i32.const 1)) $f)
        (func $f))"#;
    let engine = weft::Engine::default();
    let m = weft::Module::new(&engine, wat).unwrap();
    let mut store = weft::Store::new(&engine, ());
    let base = weft::Global::new(
        &mut store,
        weft::GlobalType::new(weft::ValType::I32, false),
        weft::Val::I32(100),
    )
    .unwrap();
    let i = weft::Instance::new(&mut store, &m, &[base.into()]).unwrap();
    let g = i.get_global(&mut store, "g").unwrap().get(&store).unwrap();
    let h = i.get_global(&mut store, "h").unwrap().get(&store).unwrap();
    assert_eq!((g.i32(), h.i64()), (Some(110), Some(20)));
    let mem = i.get_memory(&mut store, "mem").unwrap();
    assert_eq!(&mem.data(&store)[200..202], b"xy");
    let t = i.get_table(&mut store, "t").unwrap();
    assert!(matches!(
        t.get(&store, 2),
        Some(weft::Val::FuncRef(Some(_)))
    ));
    assert!(matches!(t.get(&store, 1), Some(weft::Val::FuncRef(None))));
    let mut off = weft::Config::new();
    off.wasm_extended_const(false);
    let off = weft::Engine::new(&off).unwrap();
    assert!(matches!(
        weft::Module::new(&off, wat),
        Err(weft::Error::Invalid { .. })
    ));
}

/// A trap leaves the host's floating-point control state as it was: the
/// signal handler runs with the kernel's defaults, and the jump out of it
/// must not keep them.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_trap_keeps_the_hosts_floating_point_control_state() {
    fn mxcsr() -> u32 {
        let mut v = 0u32;
        // SAFETY: stores MXCSR into a local.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
        v
    }
    fn set_mxcsr(v: u32) {
        // SAFETY: loads a valid MXCSR value (control bits of the default
        // with another rounding mode and flush-to-zero) from a local.
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly)) };
    }
    let (mut store, inst) = instance(TRAPS);
    let div = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "div")
        .unwrap();
    let before = mxcsr();
    // Round toward zero (bits 13-14) and flush to zero (bit 15).
    let custom = (before & !0x6000) | 0x6000 | 0x8000;
    set_mxcsr(custom);
    let r = div.call(&mut store, (1, 0));
    let after = mxcsr();
    set_mxcsr(before);
    assert!(r.is_err(), "the call traps");
    // Control bits only (the low six are sticky status flags).
    assert_eq!(
        after & !0x3f,
        custom & !0x3f,
        "MXCSR {after:#x} after the trap"
    );
}
