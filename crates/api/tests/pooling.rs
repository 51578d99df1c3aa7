//! Many instances cheaply: copy-on-write memory images, the pooling
//! allocator (limits, exhaustion, slot accounting) and `InstancePool`.

use std::time::Duration;

use proptest::prelude::*;
use weft::{
    Config, Engine, Error, Instance, InstanceAllocationStrategy, InstancePool, InstancePoolConfig,
    Linker, Module, PoolingAllocationConfig, PoolingStats, ReturnPolicy, Store, TrapKind,
};

/// 16 MiB of memory with 64 KiB of data at 1 MiB (a non-zero pattern) and
/// a second segment that overlaps the first one's end.
fn big_data_wat() -> String {
    let mut data = String::new();
    for i in 0..65536u32 {
        data.push_str(&format!("\\{:02x}", (i % 251) as u8 + 1));
    }
    format!(
        r#"(module
             (memory (export "mem") 256 300)
             (data (i32.const 1048576) "{data}")
             (data (i32.const 1114110) "XYZW")
             (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0)))
             (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#
    )
}

fn contents(store: &mut Store<()>, inst: Instance) -> Vec<u8> {
    let mem = inst.get_memory(&mut *store, "mem").unwrap();
    mem.data(&*store).to_vec()
}

fn pooling(cfg: impl FnOnce(&mut PoolingAllocationConfig)) -> Engine {
    let mut p = PoolingAllocationConfig::default();
    p.total_instances(4)
        .total_memories(4)
        .total_tables(4)
        .max_memory_size(32 << 20);
    cfg(&mut p);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    Engine::new(&c).unwrap()
}

#[test]
fn copy_on_write_images_give_the_same_memory_as_copying() {
    let mut copy = Config::new();
    copy.memory_init_cow(false);
    let engines = [
        Engine::new(&copy).unwrap(),
        Engine::default(),
        pooling(|_| {}),
    ];
    let mut reference: Option<Vec<u8>> = None;
    for engine in &engines {
        let module = Module::new(engine, big_data_wat()).unwrap();
        let mut store = Store::new(engine, ());
        let a = Instance::new(&mut store, &module, &[]).unwrap();
        let b = Instance::new(&mut store, &module, &[]).unwrap();
        let got = contents(&mut store, a);
        assert_eq!(got.len(), 256 * 65536);
        assert_eq!(got[1048576], 1);
        assert_eq!(&got[1114110..1114114], b"XYZW", "later segment wins");
        match &reference {
            None => reference = Some(got),
            Some(r) => assert!(r == &got, "contents differ from copying"),
        }
        // Writes are private to each instance, also in image pages.
        let poke = a
            .get_typed_func::<(i32, i32), ()>(&mut store, "poke")
            .unwrap();
        poke.call(&mut store, (1048576, 200)).unwrap();
        poke.call(&mut store, (5, 9)).unwrap();
        let peek_b = b.get_typed_func::<i32, i32>(&mut store, "peek").unwrap();
        assert_eq!(peek_b.call(&mut store, 1048576).unwrap(), 1);
        assert_eq!(peek_b.call(&mut store, 5).unwrap(), 0);
        let grow = a.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
        assert_eq!(grow.call(&mut store, 4).unwrap(), 256);
        assert_eq!(contents(&mut store, a)[1048576], 200);
        // A later instance still starts from the image.
        let c = Instance::new(&mut store, &module, &[]).unwrap();
        assert_eq!(contents(&mut store, c)[1048576], 1);
    }
}

/// With images, data is laid down only once every element segment has
/// succeeded: a trapping element segment leaves the memory untouched, as
/// copying segments in order does (observable through a function that the
/// failed instance left in an imported table).
#[test]
fn a_trapping_element_segment_leaves_data_unwritten() {
    for engine in [Engine::default(), pooling(|_| {})] {
        let mut store = Store::new(&engine, ());
        let host = Module::new(
            &engine,
            r#"(module (table (export "t") 2 funcref)
                 (func (export "call0") (result i32) (call_indirect (result i32) (i32.const 0))))"#,
        )
        .unwrap();
        let h = Instance::new(&mut store, &host, &[]).unwrap();
        let table = h.get_export(&mut store, "t").unwrap();
        let failing = Module::new(
            &engine,
            r#"(module (import "h" "t" (table 2 funcref))
                 (memory 1) (data (i32.const 0) "\2a")
                 (func $peek (result i32) (i32.load8_u (i32.const 0)))
                 (elem (i32.const 0) $peek)
                 (elem (i32.const 5) $peek))"#,
        )
        .unwrap();
        let err = Instance::new(&mut store, &failing, &[table]).unwrap_err();
        assert!(matches!(err, Error::Trap(ref t) if t.kind() == TrapKind::TableOutOfBounds));
        let call0 = h.get_typed_func::<(), i32>(&mut store, "call0").unwrap();
        assert_eq!(call0.call(&mut store, ()).unwrap(), 0, "data was written");
    }
}

#[test]
fn computed_offsets_and_out_of_bounds_segments_fall_back_to_copying() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let g = Module::new(
        &engine,
        r#"(module (global (export "g") i32 (i32.const 100)))"#,
    )
    .unwrap();
    let g = Instance::new(&mut store, &g, &[]).unwrap();
    let g = g.get_export(&mut store, "g").unwrap();
    let m = Module::new(
        &engine,
        r#"(module (import "m" "g" (global $g i32)) (memory (export "mem") 1)
             (data (global.get $g) "ab") (data (i32.const 7) "c"))"#,
    )
    .unwrap();
    let i = Instance::new(&mut store, &m, &[g]).unwrap();
    let mem = contents(&mut store, i);
    assert_eq!((&mem[100..102], mem[7]), (&b"ab"[..], b'c'));
    // An out-of-bounds segment traps after the ones before it were written.
    let m = Module::new(
        &engine,
        r#"(module (memory (export "mem") 1) (data (i32.const 0) "ok") (data (i32.const 65535) "xx"))"#,
    )
    .unwrap();
    let err = Instance::new(&mut store, &m, &[]).unwrap_err();
    assert!(matches!(err, Error::Trap(ref t) if t.kind() == TrapKind::MemoryOutOfBounds));
}

#[test]
fn modules_beyond_the_pools_limits_are_refused_naming_the_limit() {
    let engine = pooling(|p| {
        p.table_elements(100);
    });
    let cases = [
        (
            "(module (table 1 funcref) (table 1 funcref))",
            "max_tables_per_module",
        ),
        ("(module (memory 1000))", "max_memory_size"),
        ("(module (table 101 funcref))", "table_elements"),
    ];
    for (wat, limit) in cases {
        let err = Module::new(&engine, wat).unwrap_err().to_string();
        assert!(err.contains(limit), "{wat}: {err}");
    }
    let engine = pooling(|p| {
        p.max_core_instance_size(64);
    });
    let err = Module::new(&engine, "(module (func) (func))").unwrap_err();
    assert!(err.to_string().contains("max_core_instance_size"), "{err}");
}

#[test]
fn exhausted_slots_are_an_error_and_come_back_when_stores_drop() {
    let engine = pooling(|p| {
        p.total_instances(2).total_memories(2);
    });
    let module = Module::new(
        &engine,
        r#"(module (memory (export "mem") 1 100) (table 1 funcref)
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    )
    .unwrap();
    let mut s1 = Store::new(&engine, ());
    let mut s2 = Store::new(&engine, ());
    let a = Instance::new(&mut s1, &module, &[]).unwrap();
    Instance::new(&mut s2, &module, &[]).unwrap();
    let err = Instance::new(&mut s2, &module, &[]).unwrap_err();
    assert!(err.to_string().contains("total_instances"), "{err}");
    assert_eq!(
        stats(&engine),
        (2, 2, 2),
        "a failed instantiation holds nothing"
    );
    // Growth stops at max_memory_size (32 MiB = 512 pages), below the
    // declared maximum only where the pool is smaller.
    let grow = a.get_typed_func::<i32, i32>(&mut s1, "grow").unwrap();
    assert_eq!(grow.call(&mut s1, 99).unwrap(), 1);
    let mem = a.get_memory(&mut s1, "mem").unwrap();
    mem.data_mut(&mut s1)[65536 * 50] = 1;
    drop(s1);
    assert_eq!(stats(&engine), (1, 1, 1));
    let mut s3 = Store::new(&engine, ());
    let c = Instance::new(&mut s3, &module, &[]).unwrap();
    let mem = c.get_memory(&mut s3, "mem").unwrap();
    assert_eq!(
        mem.data(&s3).len(),
        65536,
        "a reused slot starts at its initial size"
    );
    assert!(mem.data(&s3).iter().all(|&b| b == 0));
    drop((s2, s3));
    assert_eq!(stats(&engine), (0, 0, 0));
}

fn stats(engine: &Engine) -> (usize, usize, usize) {
    let PoolingStats {
        instances_in_use,
        memories_in_use,
        tables_in_use,
        memories_quarantined,
        ..
    } = engine.pooling_stats().unwrap();
    assert_eq!(memories_quarantined, 0);
    (instances_in_use, memories_in_use, tables_in_use)
}

const COUNTER: &str = r#"(module
  (import "host" "check" (func $check (param i32)))
  (memory (export "mem") 1) (table 2 funcref)
  (data (i32.const 0) "\01")
  (global $n (mut i32) (i32.const 0))
  (func (export "bump") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i32.store8 (i32.const 0) (i32.add (i32.load8_u (i32.const 0)) (i32.const 1)))
    (global.get $n))
  (func (export "trap") unreachable)
  (func (export "host") (param i32) (call $check (local.get 0)))
  (func (export "spin") (loop $l (br $l))))"#;

fn counter_pre(engine: &Engine) -> weft::InstancePre<()> {
    let module = Module::new(engine, COUNTER).unwrap();
    let mut linker = Linker::new();
    linker
        .func_wrap("host", "check", |x: i32| -> weft::Result<()> {
            match x {
                0 => Ok(()),
                1 => Err(Error::InvalidArgument("refused".into())),
                _ => panic!("host panic"),
            }
        })
        .unwrap();
    linker.instantiate_pre(&module).unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    /// Instantiate into store `s` (a new store if there is none there).
    Instantiate(usize),
    Call(usize),
    Trap(usize),
    HostError(usize),
    HostPanic(usize),
    Interrupt(usize),
    DropStore(usize),
    PoolGet(bool),
    PoolReturn,
    PoolDiscard,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize).prop_map(Op::Instantiate),
        (0..3usize).prop_map(Op::Call),
        (0..3usize).prop_map(Op::Trap),
        (0..3usize).prop_map(Op::HostError),
        (0..3usize).prop_map(Op::HostPanic),
        (0..3usize).prop_map(Op::Interrupt),
        (0..3usize).prop_map(Op::DropStore),
        any::<bool>().prop_map(Op::PoolGet),
        Just(Op::PoolReturn),
        Just(Op::PoolDiscard),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Slot accounting: whatever happens to instances (calls, traps, host
    /// errors and panics, interrupts, stores dropped, pool gets, returns
    /// with reset, discards), the pooling allocator's in-use counts equal
    /// the instances that exist, and every slot is free at the end (with
    /// and without write marks).
    #[test]
    fn every_slot_comes_back(ops in proptest::collection::vec(op(), 1..40), marks in any::<bool>()) {
        let engine = pooling(|p| { p.total_instances(5).total_memories(5).total_tables(5).write_marks(marks); });
        let pre = counter_pre(&engine);
        let mut pool_cfg = InstancePoolConfig::default();
        pool_cfg.max_size(2).get_timeout(Duration::ZERO);
        let pool = InstancePool::new(pre.clone(), pool_cfg, || ());
        let mut stores: Vec<Option<(Store<()>, Vec<Instance>)>> = (0..3).map(|_| None).collect();
        let mut held = Vec::new();
        for op in ops {
            match op {
                Op::Instantiate(s) => {
                    let (store, insts) = stores[s].get_or_insert_with(|| (Store::new(&engine, ()), Vec::new()));
                    match pre.instantiate(&mut *store) {
                        Ok(i) => insts.push(i),
                        Err(e) => prop_assert!(e.to_string().contains("total_"), "{}", e),
                    }
                }
                Op::Call(s) | Op::Trap(s) | Op::HostError(s) | Op::HostPanic(s) | Op::Interrupt(s) => {
                    let Some((store, insts)) = stores[s].as_mut() else { continue };
                    let Some(&inst) = insts.last() else { continue };
                    match op {
                        Op::Call(_) => {
                            let f = inst.get_typed_func::<(), i32>(&mut *store, "bump").unwrap();
                            let _ = f.call(&mut *store, ());
                        }
                        Op::Trap(_) => {
                            let f = inst.get_typed_func::<(), ()>(&mut *store, "trap").unwrap();
                            prop_assert!(f.call(&mut *store, ()).is_err());
                        }
                        Op::HostError(_) | Op::HostPanic(_) => {
                            let f = inst.get_typed_func::<i32, ()>(&mut *store, "host").unwrap();
                            let arg = if matches!(op, Op::HostError(_)) { 1 } else { 2 };
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.call(&mut *store, arg)));
                            prop_assert!(!matches!(r, Ok(Ok(()))));
                        }
                        _ => {
                            store.interrupt_handle().interrupt();
                            let f = inst.get_typed_func::<(), ()>(&mut *store, "spin").unwrap();
                            prop_assert!(f.call(&mut *store, ()).is_err());
                            store.clear_deadline();
                        }
                    }
                }
                Op::DropStore(s) => stores[s] = None,
                Op::PoolGet(trap) => {
                    if let Ok(mut g) = pool.get() {
                        if trap {
                            let (store, inst) = g.parts();
                            let f = inst.get_typed_func::<(), ()>(&mut *store, "trap").unwrap();
                            prop_assert!(f.call(&mut *store, ()).is_err());
                        }
                        held.push(g);
                    }
                }
                Op::PoolReturn => { held.pop(); }
                Op::PoolDiscard => { if let Some(g) = held.pop() { g.discard(); } }
            }
            let direct: usize = stores.iter().flatten().map(|(_, i)| i.len()).sum();
            let pooled = pool.stats().live;
            prop_assert_eq!(stats(&engine), (direct + pooled, direct + pooled, direct + pooled));
        }
        drop(held);
        drop(stores);
        drop(pool);
        prop_assert_eq!(stats(&engine), (0, 0, 0));
    }
}

#[test]
fn instance_pool_resets_or_keeps_state_and_never_hands_out_a_failed_instance() {
    let engine = pooling(|_| {});
    let pre = counter_pre(&engine);
    let bump = |g: &mut weft::PooledInstance<()>| {
        let (store, inst) = g.parts();
        let f = inst.get_typed_func::<(), i32>(&mut *store, "bump").unwrap();
        f.call(&mut *store, ()).unwrap()
    };
    // Reset (the default): each get sees the initial state.
    let pool = InstancePool::new(pre.clone(), InstancePoolConfig::default(), || ());
    for _ in 0..3 {
        let mut g = pool.get().unwrap();
        assert_eq!(bump(&mut g), 1);
        let (store, inst) = g.parts();
        let mem = inst.get_memory(&mut *store, "mem").unwrap();
        assert_eq!(mem.data(&*store)[0], 2, "memory image restored");
    }
    let s = pool.stats();
    assert_eq!((s.live, s.idle, s.created, s.reset), (1, 1, 1, 3));
    drop(pool);
    // KeepState: state carries over, until a call fails.
    let mut cfg = InstancePoolConfig::default();
    cfg.policy(ReturnPolicy::KeepState).max_size(1);
    let pool = InstancePool::new(pre, cfg, || ());
    assert_eq!(bump(&mut pool.get().unwrap()), 1);
    assert_eq!(bump(&mut pool.get().unwrap()), 2);
    {
        let mut g = pool.get().unwrap();
        let (store, inst) = g.parts();
        let f = inst.get_typed_func::<(), ()>(&mut *store, "trap").unwrap();
        assert!(f.call(&mut *store, ()).is_err());
    }
    assert_eq!(
        bump(&mut pool.get().unwrap()),
        1,
        "a trapped instance was reset"
    );
    {
        let mut g = pool.get().unwrap();
        g.store().interrupt_handle().interrupt();
    }
    assert_eq!(
        bump(&mut pool.get().unwrap()),
        1,
        "an interrupted instance was reset"
    );
    drop(pool);
    // Exhausted: max_size 1, the timeout passes, an error names it.
    let mut cfg = InstancePoolConfig::default();
    cfg.max_size(1).get_timeout(Duration::from_millis(20));
    let pool = InstancePool::new(counter_pre(&engine), cfg, || ());
    let g = pool.get().unwrap();
    let err = pool.get().unwrap_err();
    assert!(err.to_string().contains("exhausted"), "{err}");
    drop(g);
    drop(pool);
    // A get that waits receives the instance another thread returns.
    let mut cfg = InstancePoolConfig::default();
    cfg.max_size(1).get_timeout(Duration::from_secs(20));
    let pool = InstancePool::new(counter_pre(&engine), cfg, || ());
    let g = pool.get().unwrap();
    let waited = std::thread::scope(|s| {
        let getter = s.spawn(|| {
            let t = std::time::Instant::now();
            let g = pool.get();
            (g.is_ok(), t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(30));
        drop(g);
        getter.join().unwrap()
    });
    assert!(waited.0, "the waiting get failed");
    assert!(
        waited.1 >= Duration::from_millis(25),
        "did not wait: {:?}",
        waited.1
    );
    // A panic while an instance is out discards it.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = pool.get().unwrap();
        panic!("request handler failed");
    }));
    assert!(r.is_err());
    let s = pool.stats();
    assert_eq!((s.live, s.discarded), (0, 1));
    drop(pool);
    assert_eq!(stats(&engine), (0, 0, 0));
}

/// A reset instance is indistinguishable from a fresh one: memory contents
/// and size (after the last user grew it), globals, table size and
/// contents. (Issue #21 item 2, for `ReturnPolicy::Reset`.)
#[test]
fn a_reset_instance_is_indistinguishable_from_a_fresh_one() {
    const STATEFUL: &str = r#"(module
      (memory (export "mem") 1 10)
      (data (i32.const 100) "initial contents")
      (global (export "g") (mut i32) (i32.const 5))
      (table (export "t") 4 10 funcref)
      (elem (i32.const 1) $f)
      (func $f (result i32) (i32.const 9))
      (func (export "dirty")
        (global.set 0 (i32.const 77))
        (i32.store (i32.const 100) (i32.const -1))
        (i32.store (i32.const 60000) (i32.const 1234))
        (drop (memory.grow (i32.const 2)))
        (i32.store (i32.const 70000) (i32.const 99))
        (table.set (i32.const 1) (ref.null func))
        (drop (table.grow (ref.func $f) (i32.const 3)))))"#;
    type Snapshot = (Vec<u8>, i32, Vec<bool>);
    fn snapshot(store: &mut Store<()>, inst: Instance) -> Snapshot {
        let mem = inst.get_memory(&mut *store, "mem").unwrap();
        let bytes = mem.data(&*store).to_vec();
        let g = inst.get_global(&mut *store, "g").unwrap();
        let g = g.get(&*store).unwrap().i32().unwrap();
        let t = inst.get_table(&mut *store, "t").unwrap();
        let n = t.size(&*store).unwrap();
        let slots = (0..n)
            .map(|i| match t.get(&*store, i) {
                Some(weft::Val::FuncRef(f)) => f.is_some(),
                other => panic!("table slot {i}: {other:?}"),
            })
            .collect();
        (bytes, g, slots)
    }
    // On demand; pooling with every touched page dropped; pooling with the
    // resident reset, with a budget that holds every written page and with
    // one that holds only some (the rest are dropped); and the resident
    // reset by write marks.
    let host_page = 4096;
    for engine in [
        Engine::default(),
        pooling(|p| {
            p.keep_resident_bytes(0);
        }),
        pooling(|p| {
            p.keep_resident_bytes(1 << 20);
        }),
        pooling(|p| {
            p.keep_resident_bytes(host_page);
        }),
        pooling(|p| {
            p.keep_resident_bytes(1 << 20).write_marks(true);
        }),
    ] {
        let module = Module::new(&engine, STATEFUL).unwrap();
        let pre = Linker::<()>::new().instantiate_pre(&module).unwrap();
        let fresh = {
            let mut s = Store::new(&engine, ());
            let i = pre.instantiate(&mut s).unwrap();
            snapshot(&mut s, i)
        };
        assert_eq!(fresh.0.len(), 65536);
        assert_eq!(fresh.2, [false, true, false, false]);
        let mut cfg = InstancePoolConfig::default();
        cfg.max_size(1);
        let pool = InstancePool::new(pre, cfg, || ());
        for _ in 0..3 {
            let mut g = pool.get().unwrap();
            let (store, inst) = g.parts();
            assert!(
                snapshot(store, inst) == fresh,
                "a reused instance differs from a fresh one"
            );
            let dirty = inst.get_typed_func::<(), ()>(&mut *store, "dirty").unwrap();
            dirty.call(&mut *store, ()).unwrap();
            let after = snapshot(store, inst);
            assert_eq!((after.0.len(), after.1, after.2.len()), (3 * 65536, 77, 7));
        }
        assert_eq!(pool.stats().reset, 3);
    }
}
