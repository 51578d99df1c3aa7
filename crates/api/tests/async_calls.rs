//! Async calls on fibers: async host functions, traps, stack overflow,
//! interrupts and epoch yields inside fibers, cancellation by dropping the
//! future, and fiber stacks that always come back.

mod common;
use common::block_on;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use weft::{
    Caller, Config, Engine, Error, InstanceAllocationStrategy, Linker, Module,
    PoolingAllocationConfig, Store, TrapKind,
};

fn async_engine() -> Engine {
    let mut c = Config::new();
    c.async_support(true);
    Engine::new(&c).unwrap()
}

fn pooling_async_engine(stacks: usize) -> Engine {
    let mut p = PoolingAllocationConfig::default();
    p.total_instances(8)
        .total_memories(8)
        .total_tables(8)
        .total_stacks(stacks)
        .max_memory_size(1 << 20);
    let mut c = Config::new();
    c.async_support(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    Engine::new(&c).unwrap()
}

/// A future that is pending `n` times (waking itself each time), then
/// ready with `v`.
struct PendingFor<V> {
    n: u32,
    v: Option<V>,
}

impl<V: Unpin> Future for PendingFor<V> {
    type Output = V;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<V> {
        if self.n == 0 {
            Poll::Ready(self.v.take().expect("polled after ready"))
        } else {
            self.n -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

const WAT: &str = r#"(module
  (import "host" "slow_add" (func $slow_add (param i32 i32) (result i32)))
  (import "host" "tick" (func $tick))
  (memory (export "mem") 1)
  (func (export "add") (param i32 i32) (result i32)
    (call $slow_add (local.get 0) (local.get 1)))
  (func (export "sum_to") (param i32) (result i32) (local i32)
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get 0)))
      (local.set 1 (call $slow_add (local.get 1) (local.get 0)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l)))
    (local.get 1))
  (func $rec (export "rec") (param i32) (result i32)
    (i32.add (call $rec (local.get 0)) (i32.const 1)))
  (func (export "trap") unreachable)
  (func (export "spin") (loop $l (call $tick) (br $l))))"#;

/// `slow_add` is pending `data.0` times before answering; `tick` counts.
fn linker() -> Linker<(u32, Arc<AtomicU64>)> {
    let mut linker = Linker::new();
    linker
        .func_wrap_async(
            "host",
            "slow_add",
            |caller: Caller<'_, (u32, Arc<AtomicU64>)>, (a, b): (i32, i32)| {
                let n = caller.data().0;
                Box::new(async move {
                    Ok(PendingFor {
                        n,
                        v: Some(a.wrapping_add(b)),
                    }
                    .await)
                })
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "host",
            "tick",
            |caller: Caller<'_, (u32, Arc<AtomicU64>)>| {
                caller.data().1.fetch_add(1, Ordering::Relaxed);
            },
        )
        .unwrap();
    linker
}

/// A thread advancing the engine's epoch every millisecond until dropped.
struct EpochTicker {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> EpochTicker {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (engine, s) = (engine.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                engine.increment_epoch();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn store(engine: &Engine, pending: u32) -> Store<(u32, Arc<AtomicU64>)> {
    Store::new(engine, (pending, Arc::new(AtomicU64::new(0))))
}

#[test]
fn an_async_host_function_suspends_the_call_and_results_come_back() {
    let engine = async_engine();
    let module = Module::new(&engine, WAT).unwrap();
    let mut s = store(&engine, 3);
    let inst = block_on(linker().instantiate_async(&mut s, &module)).unwrap();
    let add = inst
        .get_typed_func::<(i32, i32), i32>(&mut s, "add")
        .unwrap();
    // The future really is pending while the host future is.
    let mut fut = Box::pin(add.call_async(&mut s, (40, 2)));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut pendings = 0;
    let r = loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(r) => break r,
            Poll::Pending => pendings += 1,
        }
    };
    drop(fut);
    assert_eq!((r.unwrap(), pendings), (42, 3));
    let sum = inst.get_typed_func::<i32, i32>(&mut s, "sum_to").unwrap();
    assert_eq!(block_on(sum.call_async(&mut s, 100)).unwrap(), 5050);
    // A synchronous call of an async host function is an error, not a hang.
    let err = add.call(&mut s, (1, 2)).unwrap_err();
    assert!(err.to_string().contains("outside an async call"), "{err}");
    // And async calls need async support.
    let plain = Engine::default();
    let m = Module::new(&plain, "(module (func (export \"f\")))").unwrap();
    let mut ps = Store::new(&plain, ());
    let i = weft::Instance::new(&mut ps, &m, &[]).unwrap();
    let f = i.get_typed_func::<(), ()>(&mut ps, "f").unwrap();
    let err = block_on(f.call_async(&mut ps, ())).unwrap_err();
    assert!(err.to_string().contains("async_support"), "{err}");
}

#[test]
fn traps_and_stack_overflow_inside_a_fiber_behave_as_on_a_thread() {
    let engine = async_engine();
    let module = Module::new(&engine, WAT).unwrap();
    let mut s = store(&engine, 1);
    let inst = block_on(linker().instantiate_async(&mut s, &module)).unwrap();
    let trap = inst.get_typed_func::<(), ()>(&mut s, "trap").unwrap();
    let err = block_on(trap.call_async(&mut s, ())).unwrap_err();
    assert!(matches!(err, Error::Trap(ref t) if t.kind() == TrapKind::UnreachableCodeReached));
    let rec = inst.get_typed_func::<i32, i32>(&mut s, "rec").unwrap();
    let err = block_on(rec.call_async(&mut s, 0)).unwrap_err();
    assert!(
        matches!(err, Error::Trap(ref t) if t.kind() == TrapKind::StackOverflow),
        "{err}"
    );
    // The store works afterwards, on the fiber and off it.
    let add = inst
        .get_typed_func::<(i32, i32), i32>(&mut s, "add")
        .unwrap();
    assert_eq!(block_on(add.call_async(&mut s, (1, 2))).unwrap(), 3);
    let err = rec.call(&mut s, 0).unwrap_err();
    assert!(matches!(err, Error::Trap(ref t) if t.kind() == TrapKind::StackOverflow));
}

#[test]
fn dropping_the_future_cancels_the_call_and_the_store_stays_usable() {
    let engine = pooling_async_engine(4);
    let module = Module::new(&engine, WAT).unwrap();
    let mut s = store(&engine, 1_000_000);
    let inst = block_on(linker().instantiate_async(&mut s, &module)).unwrap();
    let add = inst
        .get_typed_func::<(i32, i32), i32>(&mut s, "add")
        .unwrap();
    {
        let mut fut = Box::pin(add.call_async(&mut s, (1, 1)));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..10 {
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        // dropped here, suspended inside the host future
    }
    assert_eq!(
        engine.pooling_stats().unwrap().stacks_in_use,
        1,
        "cached by the store"
    );
    s.data_mut().0 = 0;
    assert_eq!(block_on(add.call_async(&mut s, (2, 3))).unwrap(), 5);
    drop(s);
    assert_eq!(engine.pooling_stats().unwrap().stacks_in_use, 0);
}

/// Wasmtime 28.0.0's pooling allocator asserted (`self.stacks.is_empty()`)
/// when a store was consumed with `into_data` after an async host call: the
/// store's cached fiber stack never went back. Here: pooling engine, async
/// host call, `into_data`, drop the engine: no panic, every slot free.
#[test]
fn into_data_after_an_async_host_call_returns_every_slot() {
    let engine = pooling_async_engine(2);
    let module = Module::new(&engine, WAT).unwrap();
    let mut s = store(&engine, 2);
    let inst = block_on(linker().instantiate_async(&mut s, &module)).unwrap();
    let add = inst
        .get_typed_func::<(i32, i32), i32>(&mut s, "add")
        .unwrap();
    assert_eq!(block_on(add.call_async(&mut s, (1, 1))).unwrap(), 2);
    let stats = engine.pooling_stats().unwrap();
    assert_eq!((stats.stacks_in_use, stats.instances_in_use), (1, 1));
    let (pending, _) = s.into_data();
    assert_eq!(pending, 2);
    let stats = engine.pooling_stats().unwrap();
    assert_eq!(
        (
            stats.stacks_in_use,
            stats.instances_in_use,
            stats.memories_in_use
        ),
        (0, 0, 0)
    );
    drop(module);
    drop(engine);
}

#[test]
fn a_panicking_async_host_function_reaches_the_awaiting_task_and_the_stack_comes_back() {
    let engine = pooling_async_engine(2);
    let module = Module::new(
        &engine,
        r#"(module (import "h" "boom" (func $boom)) (func (export "f") (call $boom)))"#,
    )
    .unwrap();
    let mut linker = Linker::<()>::new();
    linker
        .func_wrap_async("h", "boom", |_: Caller<'_, ()>, (): ()| {
            Box::new(async move {
                PendingFor { n: 2, v: Some(()) }.await;
                panic!("host future failed");
                #[allow(unreachable_code)]
                Ok(())
            })
        })
        .unwrap();
    let rt = common::two_thread_runtime();
    let e2 = engine.clone();
    let r = rt.block_on(async move {
        tokio::spawn(async move {
            let mut s = Store::new(&e2, ());
            let inst = linker.instantiate_async(&mut s, &module).await.unwrap();
            let f = inst.get_typed_func::<(), ()>(&mut s, "f").unwrap();
            f.call_async(&mut s, ()).await
        })
        .await
    });
    assert!(r.unwrap_err().is_panic());
    let stats = engine.pooling_stats().unwrap();
    assert_eq!((stats.stacks_in_use, stats.instances_in_use), (0, 0));
}

/// 1 000 concurrent async calls on a 2-thread tokio runtime: half await a
/// host timer (their fibers move between threads), half spin, yielding at
/// every epoch tick, until their wall-clock deadline stops them.
#[test]
fn a_thousand_concurrent_calls_with_deadlines_on_two_threads() {
    let mut c = Config::new();
    c.async_support(true).epoch_interruption(true);
    let engine = Engine::new(&c).unwrap();
    let ticker = EpochTicker::start(&engine);
    let module = Module::new(&engine, WAT).unwrap();
    let mut linker = Linker::<(u32, Arc<AtomicU64>)>::new();
    linker
        .func_wrap_async(
            "host",
            "slow_add",
            |_: Caller<'_, (u32, Arc<AtomicU64>)>, (a, b): (i32, i32)| {
                Box::new(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Ok(a.wrapping_add(b))
                })
            },
        )
        .unwrap();
    linker
        .func_wrap("host", "tick", |_: Caller<'_, (u32, Arc<AtomicU64>)>| {})
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let engine = engine.clone();
                let pre = pre.clone();
                tokio::spawn(async move {
                    let mut s = store(&engine, 0);
                    s.set_epoch_deadline(1);
                    s.epoch_deadline_async_yield_and_update(1);
                    let timeout = if i % 2 == 0 { 20_000 } else { 100 };
                    s.set_timeout(Duration::from_millis(timeout)).unwrap();
                    let inst = pre.instantiate_async(&mut s).await.unwrap();
                    if i % 2 == 0 {
                        let f = inst.get_typed_func::<i32, i32>(&mut s, "sum_to").unwrap();
                        f.call_async(&mut s, 5).await.map(|v| v == 15)
                    } else {
                        let f = inst.get_typed_func::<(), ()>(&mut s, "spin").unwrap();
                        match f.call_async(&mut s, ()).await {
                            Err(Error::Trap(t)) => Ok(t.kind() == TrapKind::Interrupt),
                            other => panic!("spin ended with {other:?}"),
                        }
                    }
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() {
                ok += 1;
            }
        }
        ok
    });
    assert_eq!(results, 1000);
    drop(ticker);
}

/// Cooperative time-slicing: on a single-threaded executor, two calls that
/// never return both make progress, because each yields at its epoch
/// deadline; interrupt handles then stop them.
#[test]
fn epoch_yields_interleave_two_endless_calls_on_one_thread() {
    let mut c = Config::new();
    c.async_support(true).epoch_interruption(true);
    let engine = Engine::new(&c).unwrap();
    let module = Module::new(&engine, WAT).unwrap();
    let pre = linker().instantiate_pre(&module).unwrap();
    let ticker = EpochTicker::start(&engine);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let counters: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut handles = Vec::new();
    let mut tasks = Vec::new();
    for counter in &counters {
        let mut s = Store::new(&engine, (0, counter.clone()));
        s.set_epoch_deadline(1);
        s.epoch_deadline_async_yield_and_update(1);
        handles.push(s.interrupt_handle());
        let pre = pre.clone();
        tasks.push(rt.spawn(async move {
            let inst = pre.instantiate_async(&mut s).await.unwrap();
            let spin = inst.get_typed_func::<(), ()>(&mut s, "spin").unwrap();
            spin.call_async(&mut s, ()).await
        }));
    }
    rt.block_on(async {
        let start = std::time::Instant::now();
        while counters.iter().any(|c| c.load(Ordering::Relaxed) < 1000) {
            assert!(start.elapsed() < Duration::from_secs(30), "no interleaving");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for h in &handles {
            h.interrupt();
        }
        for t in tasks {
            let err = t.await.unwrap().unwrap_err();
            assert!(
                matches!(err, Error::Trap(ref t) if t.kind() == TrapKind::Interrupt),
                "{err}"
            );
        }
    });
    drop(ticker);
}

/// Fuel slices: exactness is kept (the same fuel is enough, one unit less
/// is not, whatever the slice), and an async call yields once per slice.
#[test]
fn fuel_yield_intervals_keep_fuel_exact_and_yield_per_slice() {
    let mut c = Config::new();
    c.async_support(true).consume_fuel(true);
    let engine = Engine::new(&c).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (func (export "count") (param i32) (result i32) (local i32)
             (block $d (loop $l
               (br_if $d (i32.eqz (local.get 0)))
               (local.set 1 (i32.add (local.get 1) (i32.const 3)))
               (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
               (br $l)))
             (local.get 1)))"#,
    )
    .unwrap();
    let run =
        |fuel: u64, interval: Option<u64>, asynchronous: bool| -> (Result<i32, Error>, u64, u32) {
            let mut s = Store::new(&engine, ());
            s.fuel_async_yield_interval(interval).unwrap();
            s.set_fuel(fuel).unwrap();
            let i = weft::Instance::new(&mut s, &module, &[]).unwrap();
            let f = i.get_typed_func::<i32, i32>(&mut s, "count").unwrap();
            let mut pendings = 0;
            let r = if asynchronous {
                let mut fut = Box::pin(f.call_async(&mut s, 1000));
                let mut cx = Context::from_waker(std::task::Waker::noop());
                loop {
                    match fut.as_mut().poll(&mut cx) {
                        Poll::Ready(r) => break r,
                        Poll::Pending => pendings += 1,
                    }
                }
            } else {
                f.call(&mut s, 1000)
            };
            (r, s.get_fuel().unwrap(), pendings)
        };
    // The exact fuel the call needs, found without slices.
    let mut lo = 0u64;
    let mut hi = 1 << 20;
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if run(mid, None, false).0.is_ok() {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let need = hi;
    for interval in [1, 7, 100, need - 1, need, need + 1] {
        for asynchronous in [false, true] {
            let (r, left, _) = run(need, Some(interval), asynchronous);
            assert_eq!(r.unwrap(), 3000, "interval {interval}");
            assert_eq!(left, 0);
            let (r, _, _) = run(need - 1, Some(interval), asynchronous);
            assert!(
                matches!(r, Err(Error::Trap(ref t)) if t.kind() == TrapKind::OutOfFuel),
                "interval {interval}: {r:?}"
            );
            let (r, left, _) = run(need + 10, Some(interval), asynchronous);
            assert_eq!((r.unwrap(), left), (3000, 10));
        }
    }
    let (_, _, pendings) = run(need, Some(100), true);
    assert!(
        pendings >= (need / 100 - 2) as u32 && pendings <= (need / 100 + 1) as u32,
        "{pendings} yields for {need} fuel in slices of 100"
    );
}

mod accounting {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        NewStore(usize),
        CallOk(usize),
        CallTrap(usize),
        HostPanic(usize),
        DropMidCall(usize),
        Interrupt(usize),
        DropStore(usize),
        IntoData(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let s = 0..3usize;
        prop_oneof![
            s.clone().prop_map(Op::NewStore),
            s.clone().prop_map(Op::CallOk),
            s.clone().prop_map(Op::CallTrap),
            s.clone().prop_map(Op::HostPanic),
            s.clone().prop_map(Op::DropMidCall),
            s.clone().prop_map(Op::Interrupt),
            s.clone().prop_map(Op::DropStore),
            s.prop_map(Op::IntoData),
        ]
    }

    const MODULE: &str = r#"(module
      (import "h" "wait" (func $wait (param i32) (result i32)))
      (memory 1)
      (func (export "ok") (result i32) (call $wait (i32.const 2)))
      (func (export "panic") (result i32) (call $wait (i32.const -1)))
      (func (export "trap") (drop (call $wait (i32.const 1))) unreachable)
      (func (export "spin") (loop $l (br $l))))"#;

    /// A store that instantiated asynchronously, so it holds a fiber stack.
    struct Live {
        store: Store<()>,
        inst: weft::Instance,
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Every fiber stack comes back, whatever ends a call or a store:
        /// after each step the pool's counters equal what the live stores
        /// hold, and at the end everything is free.
        #[test]
        fn every_stack_comes_back(ops in proptest::collection::vec(op(), 1..30)) {
            let engine = pooling_async_engine(2);
            let module = Module::new(&engine, MODULE).unwrap();
            let mut linker = Linker::<()>::new();
            linker.func_wrap_async("h", "wait", |_: Caller<'_, ()>, n: i32| {
                Box::new(async move {
                    if n < 0 {
                        PendingFor { n: 1, v: Some(()) }.await;
                        panic!("host future panicked");
                    }
                    Ok(PendingFor { n: n as u32, v: Some(n) }.await)
                })
            }).unwrap();
            let mut stores: Vec<Option<Live>> = (0..3).map(|_| None).collect();
            for op in ops {
                match op {
                    Op::NewStore(i) => {
                        let mut store = Store::new(&engine, ());
                        store.set_timeout(Duration::from_secs(60)).unwrap();
                        match block_on(linker.instantiate_async(&mut store, &module)) {
                            Ok(inst) => stores[i] = Some(Live { store, inst }),
                            Err(e) => prop_assert!(e.to_string().contains("total_"), "{}", e),
                        }
                    }
                    Op::CallOk(i) | Op::CallTrap(i) | Op::HostPanic(i) | Op::DropMidCall(i) | Op::Interrupt(i) => {
                        let Some(live) = stores[i].as_mut() else { continue };
                        let name = match op {
                            Op::CallOk(_) | Op::DropMidCall(_) => "ok",
                            Op::CallTrap(_) => "trap",
                            Op::HostPanic(_) => "panic",
                            _ => "spin",
                        };
                        let f = live.inst.get_typed_func::<(), i32>(&mut live.store, name);
                        let r = match (op, f) {
                            (Op::Interrupt(_), _) => {
                                let spin = live.inst.get_typed_func::<(), ()>(&mut live.store, "spin").unwrap();
                                live.store.interrupt_handle().interrupt();
                                let r = block_on(spin.call_async(&mut live.store, ())).map(|()| 0);
                                live.store.set_timeout(Duration::from_secs(60)).unwrap();
                                r
                            }
                            (Op::DropMidCall(_), Ok(f)) => {
                                let mut fut = Box::pin(f.call_async(&mut live.store, ()));
                                let mut cx = Context::from_waker(std::task::Waker::noop());
                                let _ = fut.as_mut().poll(&mut cx);
                                drop(fut);
                                Ok(0)
                            }
                            (Op::HostPanic(_), Ok(f)) => {
                                let store = &mut live.store;
                                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    block_on(f.call_async(store, ()))
                                }));
                                prop_assert!(r.is_err(), "the host panic did not reach the caller");
                                Ok(0)
                            }
                            (_, Ok(f)) => block_on(f.call_async(&mut live.store, ())),
                            (_, Err(e)) => Err(e),
                        };
                        // A store keeps the stack it got: its calls never
                        // wait for one.
                        if let Err(e) = r {
                            prop_assert!(!e.to_string().contains("total_stacks"), "{}", e);
                        }
                    }
                    Op::DropStore(i) => stores[i] = None,
                    Op::IntoData(i) => {
                        if let Some(live) = stores[i].take() {
                            live.store.into_data();
                        }
                    }
                }
                let stats = engine.pooling_stats().unwrap();
                let live: Vec<&Live> = stores.iter().flatten().collect();
                prop_assert_eq!(
                    (stats.stacks_in_use, stats.instances_in_use, stats.memories_in_use),
                    (live.len(), live.len(), live.len())
                );
            }
            drop(stores);
            let stats = engine.pooling_stats().unwrap();
            prop_assert_eq!((stats.stacks_in_use, stats.instances_in_use, stats.memories_in_use), (0, 0, 0));
        }
    }
}
