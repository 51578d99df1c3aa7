//! 1 000 concurrent async calls on a 2-thread tokio runtime, each in its own
//! store with a deadline: the guest awaits an async host function (a timer
//! standing in for I/O) between steps, so calls interleave on two threads;
//! a few guests loop forever and are stopped by their deadline; endless
//! guests yield at every epoch tick, so they cannot starve the others.
//!
//! `cargo run --release -p weft --example async_calls`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weft::{Caller, Config, Engine, Error, Linker, Module, Store, TrapKind};

const GUEST: &str = r#"(module
  (import "host" "fetch" (func $fetch (param i32) (result i32)))
  (func (export "handle") (param $id i32) (result i32) (local $acc i32) (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 4)))
      (local.set $acc (i32.add (local.get $acc) (call $fetch (i32.add (local.get $id) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $acc))
  (func (export "runaway") (loop $l (br $l))))"#;

fn main() -> weft::Result<()> {
    let mut config = Config::new();
    config.async_support(true).epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let module = Module::new(&engine, GUEST)?;
    let mut linker = Linker::<()>::new();
    linker.func_wrap_async("host", "fetch", |_: Caller<'_, ()>, key: i32| {
        Box::new(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok(key * 2)
        })
    })?;
    let pre = linker.instantiate_pre(&module)?;

    // The epoch clock that time-slices endless guests.
    let stop = Arc::new(AtomicBool::new(false));
    let clock = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                engine.increment_epoch();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let (answered, stopped) = runtime.block_on(async {
        let tasks: Vec<_> = (0..1000)
            .map(|id| {
                let (engine, pre) = (engine.clone(), pre.clone());
                tokio::spawn(async move {
                    let mut store = Store::new(&engine, ());
                    store.set_epoch_deadline(1);
                    store.epoch_deadline_async_yield_and_update(1);
                    let runaway = id % 100 == 0;
                    let deadline = if runaway { 50 } else { 10_000 };
                    store.set_timeout(Duration::from_millis(deadline))?;
                    let instance = pre.instantiate_async(&mut store).await?;
                    if runaway {
                        let f = instance.get_typed_func::<(), ()>(&mut store, "runaway")?;
                        return match f.call_async(&mut store, ()).await {
                            Err(Error::Trap(t)) if t.kind() == TrapKind::Interrupt => Ok(None),
                            other => panic!("guest {id}: {other:?}"),
                        };
                    }
                    let f = instance.get_typed_func::<i32, i32>(&mut store, "handle")?;
                    let answer = f.call_async(&mut store, id).await?;
                    assert_eq!(answer, 2 * (4 * id + 6), "guest {id}");
                    Ok::<_, Error>(Some(answer))
                })
            })
            .collect();
        let (mut answered, mut stopped) = (0, 0);
        for t in tasks {
            match t.await.expect("task panicked")? {
                Some(_) => answered += 1,
                None => stopped += 1,
            }
        }
        Ok::<_, Error>((answered, stopped))
    })?;
    stop.store(true, Ordering::Relaxed);
    clock.join().expect("clock thread");
    println!(
        "{answered} calls answered and {stopped} runaway calls stopped by their deadline, \
         on 2 threads, in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
