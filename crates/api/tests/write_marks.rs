//! Write marks (`PoolingAllocationConfig::write_marks`): a pooled memory's
//! reset restores the pages that compiled code, builtins and the host
//! marked, without reading the page tables. Every way of writing memory
//! must mark what it wrote, or a reused instance would see the previous
//! request's bytes: these tests write in every way, at random places
//! (page boundaries included), and check that each reused instance's memory
//! is byte for byte a fresh one's.

use proptest::prelude::*;
use weft::{
    Config, Engine, Instance, InstanceAllocationStrategy, InstancePool, InstancePoolConfig, Linker,
    Module, PoolingAllocationConfig, Store,
};

/// Three pages (so grown pages are covered too) with data in the first,
/// and one exported function per way of writing memory: `(addr, value)`.
const WRITERS: &str = r#"(module
  (memory (export "mem") 2 4 )
  (data (i32.const 4090) "initial data across a page boundary")
  (data $passive "passive segment bytes")
  (func (export "i32.store8") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "i32.store16") (param i32 i32) (i32.store16 (local.get 0) (local.get 1)))
  (func (export "i32.store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "i64.store") (param i32 i32)
    (i64.store (local.get 0) (i64.extend_i32_s (local.get 1))))
  (func (export "i64.store32 offset=3") (param i32 i32)
    (i64.store32 offset=3 (local.get 0) (i64.extend_i32_u (local.get 1))))
  (func (export "f64.store") (param i32 i32)
    (f64.store (local.get 0) (f64.convert_i32_s (local.get 1))))
  (func (export "v128.store") (param i32 i32)
    (v128.store (local.get 0) (i32x4.splat (local.get 1))))
  (func (export "v128.store64_lane") (param i32 i32)
    (v128.store64_lane 1 (local.get 0) (i32x4.splat (local.get 1))))
  (func (export "i32.atomic.store") (param i32 i32)
    (i32.atomic.store (i32.and (local.get 0) (i32.const -4)) (local.get 1)))
  (func (export "i64.atomic.rmw.add") (param i32 i32)
    (drop (i64.atomic.rmw.add (i32.and (local.get 0) (i32.const -8))
      (i64.extend_i32_u (local.get 1)))))
  (func (export "i32.atomic.rmw.cmpxchg") (param i32 i32)
    (drop (i32.atomic.rmw.cmpxchg (i32.and (local.get 0) (i32.const -4))
      (i32.load (i32.and (local.get 0) (i32.const -4))) (local.get 1))))
  (func (export "memory.fill") (param i32 i32)
    (memory.fill (local.get 0) (local.get 1) (i32.const 300)))
  (func (export "memory.copy") (param i32 i32)
    (memory.copy (local.get 0) (i32.const 4090) (i32.const 5000)))
  (func (export "memory.init") (param i32 i32)
    (memory.init $passive (local.get 0) (i32.const 0) (i32.const 21)))
  ;; Three stores off one base in one block: the second is covered by the
  ;; first one's marks (compiled code skips it), the third is not.
  (func (export "stores off one base") (param i32 i32)
    (i32.store (local.get 0) (local.get 1))
    (v128.store offset=4080 (local.get 0) (i32x4.splat (local.get 1)))
    (i32.store offset=8000 (local.get 0) (local.get 1)))
  (func (export "grow") (result i32) (memory.grow (i32.const 1))))"#;

/// The wasm writers and the host's (`Memory::write`, `Memory::data_mut`).
const KINDS: [&str; 17] = [
    "i32.store8",
    "i32.store16",
    "i32.store",
    "i64.store",
    "i64.store32 offset=3",
    "f64.store",
    "v128.store",
    "v128.store64_lane",
    "i32.atomic.store",
    "i64.atomic.rmw.add",
    "i32.atomic.rmw.cmpxchg",
    "memory.fill",
    "memory.copy",
    "memory.init",
    "stores off one base",
    "host Memory::write",
    "host Memory::data_mut",
];

fn engine(write_marks: bool) -> Engine {
    engine_with(write_marks, 1 << 20)
}

/// A pooling engine with a 1 MiB resident budget and memories of at most
/// `max_memory` bytes.
fn engine_with(write_marks: bool, max_memory: usize) -> Engine {
    let mut p = PoolingAllocationConfig::default();
    p.total_instances(4)
        .total_memories(4)
        .total_tables(4)
        .max_memory_size(max_memory)
        .keep_resident_bytes(1 << 20)
        .write_marks(write_marks);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    Engine::new(&c).unwrap()
}

fn memory(store: &mut Store<()>, inst: Instance) -> Vec<u8> {
    let mem = inst.get_memory(&mut *store, "mem").unwrap();
    mem.data(&*store).to_vec()
}

/// Writes with writer `kind` at `addr` (kept in bounds for the widest
/// writer: the furthest byte is 8003 bytes past `addr`).
fn write(store: &mut Store<()>, inst: Instance, kind: usize, addr: u32, value: i32) {
    let len = memory(store, inst).len() as u32;
    let addr = addr % (len - 8004);
    match KINDS[kind] {
        "host Memory::write" => {
            let mem = inst.get_memory(&mut *store, "mem").unwrap();
            mem.write(&mut *store, addr as usize, &value.to_le_bytes())
                .unwrap();
        }
        "host Memory::data_mut" => {
            let mem = inst.get_memory(&mut *store, "mem").unwrap();
            mem.data_mut(&mut *store)[addr as usize] = value as u8 | 1;
        }
        name => {
            let f = inst
                .get_typed_func::<(i32, i32), ()>(&mut *store, name)
                .unwrap();
            f.call(&mut *store, (addr as i32, value | 1)).unwrap();
        }
    }
}

/// Addresses near page boundaries (where a two-page write must mark both)
/// and anywhere.
fn addr() -> impl Strategy<Value = u32> {
    prop_oneof![
        (1u32..3, 0u32..20).prop_map(|(page, back)| page * 4096 - back),
        (1u32..48, 0u32..20).prop_map(|(page, back)| page * 4096 - back),
        any::<u32>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Each cycle takes the pooled instance, checks that its memory is a
    /// fresh one's, and writes in random ways (sometimes after growing).
    #[test]
    fn a_reset_by_the_marks_restores_every_kind_of_write(
        cycles in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec((0..KINDS.len(), addr(), any::<i32>()), 1..6)),
            1..6,
        )
    ) {
        let engine = engine(true);
        let module = Module::new(&engine, WRITERS).unwrap();
        let pre = Linker::<()>::new().instantiate_pre(&module).unwrap();
        let fresh = {
            let mut s = Store::new(&engine, ());
            let i = pre.instantiate(&mut s).unwrap();
            memory(&mut s, i)
        };
        let mut cfg = InstancePoolConfig::default();
        cfg.max_size(1);
        let pool = InstancePool::new(pre, cfg, || ());
        for (grow, writes) in &cycles {
            let mut g = pool.get().unwrap();
            let (store, inst) = g.parts();
            prop_assert!(memory(store, inst) == fresh, "a reused instance's memory is not a fresh one's");
            if *grow {
                let f = inst.get_typed_func::<(), i32>(&mut *store, "grow").unwrap();
                prop_assert_eq!(f.call(&mut *store, ()).unwrap(), 2);
            }
            for &(kind, at, value) in writes {
                write(store, inst, kind, at, value);
            }
        }
        let mut g = pool.get().unwrap();
        let (store, inst) = g.parts();
        prop_assert!(memory(store, inst) == fresh, "the last reset left written bytes");
    }
}

/// Every writer in turn, 50 rounds, with and without marks: the same
/// writes come back fresh whichever way the reset finds them. The host's
/// mutable view writes on odd rounds only, so that with marks the even
/// rounds' resets go by the marks and the odd ones by the page tables.
#[test]
fn every_writer_is_undone_with_and_without_marks() {
    for marks in [false, true] {
        let engine = engine(marks);
        let module = Module::new(&engine, WRITERS).unwrap();
        let pre = Linker::<()>::new().instantiate_pre(&module).unwrap();
        let mut cfg = InstancePoolConfig::default();
        cfg.max_size(1);
        let pool = InstancePool::new(pre, cfg, || ());
        let fresh = {
            let mut g = pool.get().unwrap();
            let (s, i) = g.parts();
            memory(s, i)
        };
        for round in 0..50u32 {
            let mut g = pool.get().unwrap();
            let (store, inst) = g.parts();
            assert!(memory(store, inst) == fresh, "round {round}, marks {marks}");
            for (kind, name) in KINDS.iter().enumerate() {
                if *name == "host Memory::data_mut" && round % 2 == 0 {
                    continue;
                }
                write(
                    store,
                    inst,
                    kind,
                    round * 977 + kind as u32 * 4093,
                    round as i32,
                );
            }
        }
    }
}

/// A `memory.fill` (or `memory.copy`) that an interrupt stops after its
/// first chunk has written part of its range: that part is reset too.
#[test]
fn an_interrupted_bulk_write_is_reset_too() {
    // Bulk writes go in 16 MiB chunks, with an interrupt check between
    // them: a 32 MiB memory and writes longer than one chunk.
    const FILLER: &str = r#"(module
      (import "host" "stop" (func $stop))
      (memory (export "mem") 512)
      (func (export "fill")
        (call $stop)
        (memory.fill (i32.const 0) (i32.const 0xab) (i32.const 0x1800000)))
      (func (export "copy")
        (memory.fill (i32.const 0x1000000) (i32.const 0xcd) (i32.const 0x1000000))
        (call $stop)
        ;; Forward: the first chunk copies [8, 24) MiB, half of it 0xcd,
        ;; over [0, 16) MiB.
        (memory.copy (i32.const 0) (i32.const 0x800000) (i32.const 0x1800000))))"#;
    let engine = engine_with(true, 64 << 20);
    let module = Module::new(&engine, FILLER).unwrap();
    let mut linker = Linker::<()>::new();
    linker
        .func_wrap("host", "stop", |caller: weft::Caller<'_, ()>| {
            caller.interrupt_handle().interrupt();
        })
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    let mut cfg = InstancePoolConfig::default();
    cfg.max_size(1);
    let pool = InstancePool::new(pre, cfg, || ());
    for name in ["fill", "copy", "fill"] {
        let mut g = pool.get().unwrap();
        let (store, inst) = g.parts();
        assert!(
            memory(store, inst).iter().all(|&b| b == 0),
            "before {name}: a reused instance's memory is not a fresh one's"
        );
        let f = inst.get_typed_func::<(), ()>(&mut *store, name).unwrap();
        let e = f.call(&mut *store, ()).unwrap_err();
        assert!(
            matches!(&e, weft::Error::Trap(t) if t.kind() == weft::TrapKind::Interrupt),
            "{name}: {e}"
        );
        let mem = memory(store, inst);
        let written = mem.iter().filter(|&&b| b != 0).count();
        assert!(
            written > 0 && written < mem.len(),
            "{name} stopped part of the way: {written} bytes written"
        );
    }
}
