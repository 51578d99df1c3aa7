//! Stopping running code: deadlines, epochs, interrupt handles and fuel.
//!
//! No test here measures time. Each has a failsafe that interrupts the store
//! after a generous delay and records that it had to: a test passes only if
//! the mechanism under test stopped the call first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use weft::{
    Caller, Config, Engine, Error, InterruptHandle, Linker, Module, Store, TrapKind, UpdateDeadline,
};

const FAILSAFE: Duration = Duration::from_secs(60);

/// Interrupts `handle` after [`FAILSAFE`] unless disarmed; reports whether it fired.
struct Failsafe {
    fired: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Failsafe {
    fn arm(handle: InterruptHandle) -> Failsafe {
        let fired = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (f, d) = (fired.clone(), done.clone());
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while start.elapsed() < FAILSAFE {
                if d.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            f.store(true, Ordering::SeqCst);
            handle.interrupt();
        });
        Failsafe { fired, done }
    }
    fn disarm(self) -> bool {
        self.done.store(true, Ordering::SeqCst);
        self.fired.load(Ordering::SeqCst)
    }
}

const SPIN: &str = r#"(module
  (func (export "spin") (loop $l (br $l)))
  (func $tree (export "tree") (param i32)
    (if (i32.eqz (local.get 0)) (then (return)))
    (call $tree (i32.sub (local.get 0) (i32.const 1)))
    (call $tree (i32.sub (local.get 0) (i32.const 1))))
  (func (export "answer") (result i32) (i32.const 42)))"#;

fn kind(r: weft::Result<impl std::fmt::Debug>) -> TrapKind {
    match r {
        Err(Error::Trap(t)) => t.kind(),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_deadline_stops_an_infinite_loop_and_the_store_runs_again() {
    let engine = interruptible_engine();
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let spin = inst.get_typed_func::<(), ()>(&mut store, "spin").unwrap();
    let answer = inst
        .get_typed_func::<(), i32>(&mut store, "answer")
        .unwrap();
    let failsafe = Failsafe::arm(store.interrupt_handle());
    store.set_timeout(Duration::from_millis(20)).unwrap();
    assert_eq!(kind(spin.call(&mut store, ())), TrapKind::Interrupt);
    assert!(!failsafe.disarm(), "the deadline did not fire");
    // Still interrupted until the deadline is reset; then usable again.
    assert_eq!(kind(answer.call(&mut store, ())), TrapKind::Interrupt);
    store.clear_deadline();
    assert_eq!(answer.call(&mut store, ()).unwrap(), 42);
}

/// An engine whose code polls for interrupts (off by default).
fn interruptible_engine() -> Engine {
    let mut config = Config::new();
    config.interruptible(true);
    Engine::new(&config).unwrap()
}

fn epoch_engine() -> Engine {
    let mut config = Config::new();
    config.epoch_interruption(true);
    Engine::new(&config).unwrap()
}

#[test]
fn a_deadline_stops_a_loop_free_exponential_call_tree() {
    let engine = interruptible_engine();
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let tree = inst.get_typed_func::<i32, ()>(&mut store, "tree").unwrap();
    let failsafe = Failsafe::arm(store.interrupt_handle());
    store.set_timeout(Duration::from_millis(20)).unwrap();
    // 2^60 calls: it can only end by interruption.
    assert_eq!(kind(tree.call(&mut store, 60)), TrapKind::Interrupt);
    assert!(!failsafe.disarm(), "the deadline did not fire");
}

#[test]
fn an_epoch_deadline_stops_a_loop_free_exponential_call_tree() {
    let engine = epoch_engine();
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let tree = inst.get_typed_func::<i32, ()>(&mut store, "tree").unwrap();
    store.set_epoch_deadline(1);
    let failsafe = Failsafe::arm(store.interrupt_handle());
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
                engine.increment_epoch();
            }
        })
    };
    // 2^60 calls: it can only end by interruption.
    assert_eq!(kind(tree.call(&mut store, 60)), TrapKind::Interrupt);
    stop.store(true, Ordering::SeqCst);
    ticker.join().unwrap();
    assert!(!failsafe.disarm(), "the epoch deadline did not fire");
}

#[test]
fn an_interrupt_handle_stops_a_call_from_another_thread() {
    let engine = interruptible_engine();
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let spin = inst.get_typed_func::<(), ()>(&mut store, "spin").unwrap();
    let handle = store.interrupt_handle();
    let failsafe = Failsafe::arm(store.interrupt_handle());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        handle.interrupt();
    });
    assert_eq!(kind(spin.call(&mut store, ())), TrapKind::Interrupt);
    t.join().unwrap();
    assert!(!failsafe.disarm());
    store.clear_deadline();
    let answer = inst
        .get_typed_func::<(), i32>(&mut store, "answer")
        .unwrap();
    assert_eq!(answer.call(&mut store, ()).unwrap(), 42);
}

#[test]
fn an_interrupt_inside_host_wasm_host_wasm_unwinds_cleanly() {
    let engine = interruptible_engine();
    let module = Module::new(
        &engine,
        r#"(module
          (import "host" "call_spin" (func $call_spin))
          (func (export "outer") (call $call_spin))
          (func (export "spin") (loop $l (br $l)))
          (func (export "answer") (result i32) (i32.const 7)))"#,
    )
    .unwrap();
    let entered = Arc::new(AtomicUsize::new(0));
    let e = entered.clone();
    let mut linker = Linker::new();
    linker
        .func_wrap("host", "call_spin", move |mut caller: Caller<'_, ()>| {
            e.fetch_add(1, Ordering::SeqCst);
            let spin = caller.get_export("spin").unwrap().into_func().unwrap();
            spin.typed::<(), ()>(&mut caller)?.call(&mut caller, ())
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let outer = inst.get_typed_func::<(), ()>(&mut store, "outer").unwrap();
    let failsafe = Failsafe::arm(store.interrupt_handle());
    store.set_timeout(Duration::from_millis(20)).unwrap();
    assert_eq!(kind(outer.call(&mut store, ())), TrapKind::Interrupt);
    assert!(!failsafe.disarm());
    assert_eq!(entered.load(Ordering::SeqCst), 1);
    store.clear_deadline();
    let answer = inst
        .get_typed_func::<(), i32>(&mut store, "answer")
        .unwrap();
    assert_eq!(answer.call(&mut store, ()).unwrap(), 7);
}

#[test]
fn an_epoch_callback_decides_to_continue_then_stop() {
    let engine = epoch_engine();
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, 0u32);
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let spin = inst.get_typed_func::<(), ()>(&mut store, "spin").unwrap();
    store.epoch_deadline_callback(|mut cx| {
        *cx.data_mut() += 1;
        Ok(if *cx.data() < 3 {
            UpdateDeadline::Continue(1)
        } else {
            UpdateDeadline::Interrupt
        })
    });
    store.set_epoch_deadline(1);
    let failsafe = Failsafe::arm(store.interrupt_handle());
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
                engine.increment_epoch();
            }
        })
    };
    assert_eq!(kind(spin.call(&mut store, ())), TrapKind::Interrupt);
    stop.store(true, Ordering::SeqCst);
    ticker.join().unwrap();
    assert!(!failsafe.disarm());
    assert_eq!(*store.data(), 3);
}

#[test]
fn a_panicking_epoch_callback_reaches_the_caller_and_leaves_the_store_usable() {
    let engine = epoch_engine();
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, 0u32);
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let spin = inst.get_typed_func::<(), ()>(&mut store, "spin").unwrap();
    store.epoch_deadline_callback(|_| panic!("callback exploded"));
    store.set_epoch_deadline(1);
    engine.increment_epoch();
    // The panic unwinds out of `call` in this frame, carrying its payload,
    // instead of aborting the process inside the builtin.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = spin.call(&mut store, ());
    }));
    let payload = caught.expect_err("the callback's panic must reach the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"callback exploded"));
    // The store takes further calls.
    store.epoch_deadline_trap();
    store.set_epoch_deadline(u64::MAX / 2);
    let answer = inst
        .get_typed_func::<(), i32>(&mut store, "answer")
        .unwrap();
    assert_eq!(answer.call(&mut store, ()).unwrap(), 42);
    store.set_epoch_deadline(1);
    engine.increment_epoch();
    assert_eq!(kind(spin.call(&mut store, ())), TrapKind::Interrupt);
}

const FUEL: &str = r#"(module
  (func (export "three") (result i32) (i32.add (i32.const 1) (i32.const 2)))
  (func (export "count") (param i32) (result i32) (local i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get 1) (local.get 0)))
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br $l)))
    (local.get 1)))"#;

fn fuel_store() -> (Store<()>, weft::Instance) {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, FUEL).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    (store, inst)
}

#[test]
fn fuel_is_exact_and_deterministic() {
    // Consumed fuel for the same call is the same on every run.
    let consumed: Vec<u64> = (0..3)
        .map(|_| {
            let (mut store, inst) = fuel_store();
            let count = inst
                .get_typed_func::<i32, i32>(&mut store, "count")
                .unwrap();
            store.set_fuel(1_000_000).unwrap();
            assert_eq!(count.call(&mut store, 1000).unwrap(), 1000);
            1_000_000 - store.get_fuel().unwrap()
        })
        .collect();
    assert!(
        consumed[0] > 1000,
        "a 1000-iteration loop costs more than 1000: {consumed:?}"
    );
    assert!(consumed.iter().all(|&c| c == consumed[0]), "{consumed:?}");

    // Exactly that much is enough; one unit less traps.
    let (mut store, inst) = fuel_store();
    let count = inst
        .get_typed_func::<i32, i32>(&mut store, "count")
        .unwrap();
    store.set_fuel(consumed[0]).unwrap();
    assert_eq!(count.call(&mut store, 1000).unwrap(), 1000);
    assert_eq!(store.get_fuel().unwrap(), 0);
    store.set_fuel(consumed[0] - 1).unwrap();
    let err = count.call(&mut store, 1000).unwrap_err();
    assert_eq!(err.as_trap().unwrap().kind(), TrapKind::OutOfFuel);
    assert_eq!(
        err.as_trap().unwrap().message(),
        "all fuel consumed by WebAssembly"
    );

    // The documented cost model: one unit per instruction other than
    // nop/drop/block/loop/end/else; `three` executes i32.const, i32.const,
    // i32.add.
    let three = inst.get_typed_func::<(), i32>(&mut store, "three").unwrap();
    store.set_fuel(10).unwrap();
    assert_eq!(three.call(&mut store, ()).unwrap(), 3);
    assert_eq!(store.get_fuel().unwrap(), 7);
}

#[test]
fn fuel_and_deadlines_require_configuration() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    assert!(store.set_fuel(10).is_err());
    assert!(store.get_fuel().is_err());
    // Interruption is on by default: deadlines work on the default engine.
    assert!(store.set_timeout(Duration::from_secs(1)).is_ok());
    // Without interruption checks a deadline could never stop a call.
    let mut config = Config::new();
    config.interruptible(false);
    let mut store = Store::new(&Engine::new(&config).unwrap(), ());
    assert!(store.set_timeout(Duration::from_secs(1)).is_err());
}

#[test]
fn the_default_engine_stops_an_infinite_loop_and_a_call_tree() {
    let engine = Engine::default();
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = Linker::new().instantiate(&mut store, &module).unwrap();
    let spin = inst.get_typed_func::<(), ()>(&mut store, "spin").unwrap();
    let tree = inst.get_typed_func::<i32, ()>(&mut store, "tree").unwrap();
    for (what, call) in [
        (
            "loop",
            Box::new(|s: &mut Store<()>| kind(spin.call(s, ())))
                as Box<dyn Fn(&mut Store<()>) -> TrapKind>,
        ),
        (
            "call tree",
            Box::new(|s: &mut Store<()>| kind(tree.call(s, 60))),
        ),
    ] {
        let failsafe = Failsafe::arm(store.interrupt_handle());
        store.set_timeout(Duration::from_millis(20)).unwrap();
        assert_eq!(call(&mut store), TrapKind::Interrupt, "{what}");
        assert!(!failsafe.disarm(), "{what}: the deadline did not fire");
        store.clear_deadline();
    }
    // Still usable.
    let answer = inst
        .get_typed_func::<(), i32>(&mut store, "answer")
        .unwrap();
    assert_eq!(answer.call(&mut store, ()).unwrap(), 42);
}

const WAITER: &str = r#"(module
  (import "env" "mem" (memory 1 1 shared))
  (func (export "wait32") (result i32)
    (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))
  (func (export "wait64") (result i32)
    (memory.atomic.wait64 (i32.const 8) (i64.const 0) (i64.const -1))))"#;

/// Runs `wait` (an untimed `memory.atomic.wait`) on a new thread, stops it
/// with `stop`, and returns how the call ended. The failsafe wakes the
/// waiter with a notify (so a wait that ignored the interrupt returns 0, not
/// a trap).
fn interrupted_wait(
    wait: &'static str,
    stop: impl FnOnce(&InterruptHandle) + Send + 'static,
    engine: Engine,
    timeout: Option<Duration>,
) -> weft::Result<i32> {
    use weft::{MemoryType, SharedMemory};
    let memory = SharedMemory::new(&engine, MemoryType::shared(1, 1)).unwrap();
    let module = Module::new(&engine, WAITER).unwrap();
    let mut linker = Linker::new();
    linker.define("env", "mem", memory.clone()).unwrap();
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let f = inst.get_typed_func::<(), i32>(&mut store, wait).unwrap();
    if let Some(t) = timeout {
        store.set_timeout(t).unwrap();
    }
    let handle = store.interrupt_handle();
    let offset = if wait == "wait32" { 0 } else { 8 };
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let m = memory.clone();
    let helper = std::thread::spawn(move || {
        // Once the waiter is queued, stop it; notify only as a failsafe.
        let start = std::time::Instant::now();
        while m.waiters(offset) == 0 && start.elapsed() < FAILSAFE {
            std::thread::sleep(Duration::from_millis(1));
        }
        stop(&handle);
        while !d.load(Ordering::SeqCst) && start.elapsed() < FAILSAFE {
            std::thread::sleep(Duration::from_millis(5));
        }
        m.atomic_notify(offset as usize, u32::MAX).unwrap();
    });
    let r = f.call(&mut store, ());
    done.store(true, Ordering::SeqCst);
    helper.join().unwrap();
    r
}

#[test]
fn an_interrupt_handle_wakes_an_untimed_atomic_wait() {
    for wait in ["wait32", "wait64"] {
        let r = interrupted_wait(wait, |h| h.interrupt(), Engine::default(), None);
        assert_eq!(kind(r), TrapKind::Interrupt, "{wait}");
    }
}

#[test]
fn a_deadline_wakes_an_untimed_atomic_wait() {
    let r = interrupted_wait(
        "wait32",
        |_| {},
        interruptible_engine(),
        Some(Duration::from_millis(20)),
    );
    assert_eq!(kind(r), TrapKind::Interrupt);
}
