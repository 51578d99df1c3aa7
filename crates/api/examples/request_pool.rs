//! Serving requests through one `InstancePool`: worker threads each take a
//! fresh instance per request, write the request into its memory, call the
//! handler and read the answer; the pool resets the instance on return.
//!
//! `cargo run --release -p weft --example request_pool [REQUESTS]`

use std::time::Instant;

use weft::{
    Config, Engine, InstanceAllocationStrategy, InstancePool, InstancePoolConfig, Linker, Module,
    PoolingAllocationConfig,
};

/// The handler: a checksum (FNV-1a) of the request bytes at 1024, mixed
/// with a table in the module's data, counting requests in a global (which
/// the reset brings back to 0, so every answer is the same function of its
/// request alone).
const HANDLER: &str = r#"(module
  (memory (export "mem") 1)
  (data (i32.const 0) "weft request pool")
  (global $served (mut i32) (i32.const 0))
  (func (export "handle") (param $len i32) (result i32)
    (local $h i32) (local $i i32)
    (global.set $served (i32.add (global.get $served) (i32.const 1)))
    (local.set $h (i32.const 0x811c9dc5))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $h (i32.mul
        (i32.xor (local.get $h) (i32.load8_u offset=1024 (local.get $i)))
        (i32.const 0x01000193)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.xor (i32.xor (local.get $h) (i32.load (i32.const 0))) (global.get $served))))"#;

fn expected(request: &[u8]) -> i32 {
    let mut h: u32 = 0x811c9dc5;
    for &b in request {
        h = (h ^ u32::from(b)).wrapping_mul(0x01000193);
    }
    (h ^ u32::from_le_bytes(*b"weft") ^ 1) as i32
}

fn main() -> weft::Result<()> {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_instances(workers * 2)
        .total_memories(workers * 2)
        .max_memory_size(1 << 20);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let engine = Engine::new(&config)?;
    let module = Module::new(&engine, HANDLER)?;
    let pre = Linker::<()>::new().instantiate_pre(&module)?;
    let mut pool_config = InstancePoolConfig::default();
    pool_config.max_size(workers);
    let pool = InstancePool::new(pre, pool_config, || ());

    let started = Instant::now();
    std::thread::scope(|s| -> weft::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let pool = pool.clone();
                s.spawn(move || -> weft::Result<()> {
                    for r in (w..requests).step_by(workers) {
                        let request = format!("request {r} from worker {w}");
                        let mut guard = pool.get()?;
                        let (store, instance) = guard.parts();
                        let mem = instance
                            .get_memory(&mut *store, "mem")
                            .expect("exported memory");
                        mem.data_mut(&mut *store)[1024..1024 + request.len()]
                            .copy_from_slice(request.as_bytes());
                        let handle = instance.get_typed_func::<i32, i32>(&mut *store, "handle")?;
                        let answer = handle.call(&mut *store, request.len() as i32)?;
                        assert_eq!(answer, expected(request.as_bytes()), "request {r}");
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("worker panicked")?;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed();
    let stats = pool.stats();
    println!(
        "{requests} requests on {workers} workers in {:.1} ms ({:.0} requests/s); pool: {stats:?}",
        elapsed.as_secs_f64() * 1e3,
        requests as f64 / elapsed.as_secs_f64()
    );
    drop(pool);
    let slots = engine.pooling_stats().expect("pooling engine");
    assert_eq!(slots.instances_in_use, 0, "every slot came back");
    Ok(())
}
