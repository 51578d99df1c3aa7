//! Async call costs: `cargo bench -p weft --bench async_calls`.
//!
//! Side by side, interleaved over rounds: a synchronous `TypedFunc::call`
//! and `call_async` of the same function (the async overhead: entering and
//! leaving a fiber), the first async call of a fresh store (a fiber stack
//! made, or taken from the pool) against the first synchronous one, and the
//! cost of one suspension and resumption (a host future pending 100 times
//! per call).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use weft::{
    Caller, Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store,
};

const WAT: &str = r#"(module
  (import "h" "wait" (func $wait (param i32)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "wait") (param i32) (call $wait (local.get 0))))"#;

struct PendingFor(u32);

impl Future for PendingFor {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            Poll::Ready(())
        } else {
            self.0 -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn pre(config: &Config) -> (Engine, InstancePre<()>) {
    let engine = Engine::new(config).unwrap();
    let module = Module::new(&engine, WAT).unwrap();
    let mut linker = Linker::<()>::new();
    linker
        .func_wrap_async("h", "wait", |_: Caller<'_, ()>, n: i32| {
            Box::new(async move {
                PendingFor(n as u32).await;
                Ok(())
            })
        })
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    (engine, pre)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, n) = if quick {
        (3, 2_000u32)
    } else {
        (21, 200_000u32)
    };
    let mut config = Config::new();
    config.async_support(true);
    let (engine, pre) = pre(&config);
    let mut pooling = config.clone();
    pooling.allocation_strategy(InstanceAllocationStrategy::Pooling(
        PoolingAllocationConfig::default(),
    ));
    let (pengine, ppre) = pre_pooled(&pooling);
    let mut store = Store::new(&engine, ());
    let inst = pre.instantiate(&mut store).unwrap();
    let add = inst
        .get_typed_func::<(i32, i32), i32>(&mut store, "add")
        .unwrap();
    let wait = inst.get_typed_func::<i32, ()>(&mut store, "wait").unwrap();
    block_on(add.call_async(&mut store, (1, 2))).unwrap(); // cache a stack

    let mut sync_call = Vec::new();
    let mut async_call = Vec::new();
    let mut first_sync = Vec::new();
    let mut first_async = Vec::new();
    let mut first_async_pooled = Vec::new();
    let mut switch = Vec::new();
    let fresh = n / 100;
    for _ in 0..rounds {
        let t = Instant::now();
        for i in 0..n as i32 {
            std::hint::black_box(add.call(&mut store, (i, 1)).unwrap());
        }
        sync_call.push(t.elapsed().as_nanos() as f64 / f64::from(n));
        let t = Instant::now();
        for i in 0..n as i32 {
            std::hint::black_box(block_on(add.call_async(&mut store, (i, 1))).unwrap());
        }
        async_call.push(t.elapsed().as_nanos() as f64 / f64::from(n));
        for (out, engine, pre, asynchronous) in [
            (&mut first_sync, &engine, &pre, false),
            (&mut first_async, &engine, &pre, true),
            (&mut first_async_pooled, &pengine, &ppre, true),
        ] {
            let t = Instant::now();
            for i in 0..fresh as i32 {
                let mut s = Store::new(engine, ());
                let inst = pre.instantiate(&mut s).unwrap();
                let f = inst
                    .get_typed_func::<(i32, i32), i32>(&mut s, "add")
                    .unwrap();
                let r = if asynchronous {
                    block_on(f.call_async(&mut s, (i, 1)))
                } else {
                    f.call(&mut s, (i, 1))
                };
                std::hint::black_box(r.unwrap());
            }
            out.push(t.elapsed().as_nanos() as f64 / f64::from(fresh));
        }
        let t = Instant::now();
        for _ in 0..fresh {
            block_on(wait.call_async(&mut store, 100)).unwrap();
        }
        switch.push(t.elapsed().as_nanos() as f64 / f64::from(fresh * 100));
    }
    let (s, a) = (median(sync_call), median(async_call));
    let (fs, fa, fp) = (
        median(first_sync),
        median(first_async),
        median(first_async_pooled),
    );
    println!("async call costs, median of {rounds} interleaved rounds (ns)");
    println!("| what | sync | async | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| call of an i32 add (stack cached in the store) | {s:.0} | {a:.0} | {:.2}× |",
        a / s
    );
    println!(
        "| new store + instantiate + first call (on-demand stack) | {fs:.0} | {fa:.0} | {:.2}× |",
        fa / fs
    );
    println!(
        "| new store + instantiate + first call (pooled stack) | {fs:.0} | {fp:.0} | {:.2}× |",
        fp / fs
    );
    println!(
        "| one suspension + resumption of the fiber | - | {:.0} | - |",
        median(switch)
    );
}

fn pre_pooled(config: &Config) -> (Engine, InstancePre<()>) {
    pre(config)
}
