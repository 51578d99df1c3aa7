//! Nothing leaks through the pooling allocator and `InstancePool`: resident
//! memory stays flat over 100 000 get/call/return-with-reset cycles (its own
//! test binary, so no other test's allocations move the figure).

use weft::{
    Config, Engine, InstanceAllocationStrategy, InstancePool, InstancePoolConfig, Linker, Module,
    PoolingAllocationConfig,
};

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[cfg(target_os = "linux")]
#[test]
fn resident_memory_is_stable_over_100_000_pool_cycles() {
    let mut p = PoolingAllocationConfig::default();
    p.total_instances(8).total_memories(8).total_tables(8);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    let engine = Engine::new(&config).unwrap();
    // Each request dirties 4 pages of memory, a table slot and a global.
    let module = Module::new(
        &engine,
        r#"(module (memory (export "mem") 4) (table 10 funcref) (data (i32.const 8) "seed")
             (global $g (mut i32) (i32.const 0))
             (func (export "handle") (param i32) (result i32)
               (i32.store (i32.const 0) (local.get 0))
               (i32.store (i32.const 70000) (local.get 0))
               (i32.store (i32.const 140000) (local.get 0))
               (i32.store (i32.const 210000) (local.get 0))
               (global.set $g (i32.add (global.get $g) (local.get 0)))
               (i32.add (global.get $g) (i32.load (i32.const 8)))))"#,
    )
    .unwrap();
    let pre = Linker::<()>::new().instantiate_pre(&module).unwrap();
    let pool = InstancePool::new(pre, InstancePoolConfig::default(), || ());
    let cycle = |i: i32| {
        let mut g = pool.get().unwrap();
        let (store, inst) = g.parts();
        let f = inst
            .get_typed_func::<i32, i32>(&mut *store, "handle")
            .unwrap();
        let seed = i32::from_le_bytes(*b"seed");
        assert_eq!(f.call(&mut *store, i).unwrap(), i.wrapping_add(seed));
    };
    for i in 0..10_000 {
        cycle(i);
    }
    let before = rss_bytes();
    for i in 0..100_000 {
        cycle(i);
    }
    let after = rss_bytes();
    let stats = pool.stats();
    assert_eq!((stats.live, stats.reset), (1, 110_000));
    assert!(
        after <= before + (8 << 20),
        "resident memory grew from {before} to {after} bytes over 100 000 cycles"
    );
    drop(pool);
    let s = engine.pooling_stats().unwrap();
    assert_eq!(
        (s.instances_in_use, s.memories_in_use, s.tables_in_use),
        (0, 0, 0)
    );
}
