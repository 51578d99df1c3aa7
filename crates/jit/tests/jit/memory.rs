use weft_jit::Tunables;

use crate::harness::{Instance, Val, f32v, f64v, small_tunables};

const LOADS_STORES: &str = r#"(module
  (memory (export "mem") 1 4)
  (data (i32.const 16) "\01\02\03\04\05\06\07\08\f0\f1\f2\f3\f4\f5\f6\f7")
  (func (export "i32.load") (param i32) (result i32) local.get 0 i32.load)
  (func (export "i32.load_off") (param i32) (result i32) local.get 0 i32.load offset=4)
  (func (export "i64.load") (param i32) (result i64) local.get 0 i64.load)
  (func (export "f32.load") (param i32) (result f32) local.get 0 f32.load)
  (func (export "f64.load") (param i32) (result f64) local.get 0 f64.load)
  (func (export "i32.load8_s") (param i32) (result i32) local.get 0 i32.load8_s)
  (func (export "i32.load8_u") (param i32) (result i32) local.get 0 i32.load8_u)
  (func (export "i32.load16_s") (param i32) (result i32) local.get 0 i32.load16_s)
  (func (export "i32.load16_u") (param i32) (result i32) local.get 0 i32.load16_u)
  (func (export "i64.load8_s") (param i32) (result i64) local.get 0 i64.load8_s)
  (func (export "i64.load8_u") (param i32) (result i64) local.get 0 i64.load8_u)
  (func (export "i64.load16_s") (param i32) (result i64) local.get 0 i64.load16_s)
  (func (export "i64.load16_u") (param i32) (result i64) local.get 0 i64.load16_u)
  (func (export "i64.load32_s") (param i32) (result i64) local.get 0 i64.load32_s)
  (func (export "i64.load32_u") (param i32) (result i64) local.get 0 i64.load32_u)
  (func (export "i32.store") (param i32 i32) local.get 0 local.get 1 i32.store)
  (func (export "i64.store") (param i32 i64) local.get 0 local.get 1 i64.store offset=8)
  (func (export "f32.store") (param i32 f32) local.get 0 local.get 1 f32.store)
  (func (export "f64.store") (param i32 f64) local.get 0 local.get 1 f64.store)
  (func (export "i32.store8") (param i32 i32) local.get 0 local.get 1 i32.store8)
  (func (export "i32.store16") (param i32 i32) local.get 0 local.get 1 i32.store16)
  (func (export "i64.store8") (param i32 i64) local.get 0 local.get 1 i64.store8)
  (func (export "i64.store16") (param i32 i64) local.get 0 local.get 1 i64.store16)
  (func (export "i64.store32") (param i32 i64) local.get 0 local.get 1 i64.store32)
  (func (export "size") (result i32) memory.size)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "last_word") (result i32)
    memory.size i32.const 16 i32.shl i32.const 4 i32.sub i32.load)
  (func (export "store_last_word") (param i32)
    memory.size i32.const 16 i32.shl i32.const 4 i32.sub local.get 0 i32.store)
  (func (export "grow_then_load") (param i32 i32) (result i32)
    ;; writes 0x55 at address p, grows, then reads it back
    local.get 0 i32.const 0x55 i32.store8
    local.get 1 memory.grow drop
    local.get 0 i32.load8_u)
)"#;

fn check_loads_and_stores(m: &mut Instance) {
    assert_eq!(m.call1("i32.load", &[Val::I32(16)]), Val::I32(0x0403_0201));
    assert_eq!(
        m.call1("i32.load_off", &[Val::I32(16)]),
        Val::I32(0x0807_0605)
    );
    assert_eq!(m.call1("i32.load", &[Val::I32(17)]), Val::I32(0x0504_0302));
    assert_eq!(
        m.call1("i64.load", &[Val::I32(16)]),
        Val::I64(0x0807_0605_0403_0201)
    );
    assert_eq!(m.call1("i32.load8_s", &[Val::I32(24)]), Val::I32(-16));
    assert_eq!(m.call1("i32.load8_u", &[Val::I32(24)]), Val::I32(0xf0));
    assert_eq!(
        m.call1("i32.load16_s", &[Val::I32(24)]),
        Val::I32(0xf1f0u16 as i16 as i32)
    );
    assert_eq!(m.call1("i32.load16_u", &[Val::I32(24)]), Val::I32(0xf1f0));
    assert_eq!(m.call1("i64.load8_s", &[Val::I32(25)]), Val::I64(-15));
    assert_eq!(m.call1("i64.load8_u", &[Val::I32(25)]), Val::I64(0xf1));
    assert_eq!(
        m.call1("i64.load16_s", &[Val::I32(26)]),
        Val::I64(0xf3f2u16 as i16 as i64)
    );
    assert_eq!(m.call1("i64.load16_u", &[Val::I32(26)]), Val::I64(0xf3f2));
    assert_eq!(
        m.call1("i64.load32_s", &[Val::I32(24)]),
        Val::I64(0xf3f2_f1f0u32 as i32 as i64)
    );
    assert_eq!(
        m.call1("i64.load32_u", &[Val::I32(24)]),
        Val::I64(0xf3f2_f1f0)
    );

    m.call("i32.store", &[Val::I32(100), Val::I32(-2)]);
    assert_eq!(&m.memories[0].bytes()[100..104], &[0xfe, 0xff, 0xff, 0xff]);
    m.call(
        "i64.store",
        &[Val::I32(100), Val::I64(0x1122_3344_5566_7788)],
    );
    assert_eq!(
        m.call1("i64.load", &[Val::I32(108)]),
        Val::I64(0x1122_3344_5566_7788)
    );
    m.call("f32.store", &[Val::I32(200), f32v(-1.5)]);
    assert_eq!(m.call1("f32.load", &[Val::I32(200)]), f32v(-1.5));
    m.call("f64.store", &[Val::I32(203), f64v(1e100)]);
    assert_eq!(m.call1("f64.load", &[Val::I32(203)]), f64v(1e100));
    m.call("i32.store", &[Val::I32(300), Val::I32(0)]);
    m.call("i32.store8", &[Val::I32(300), Val::I32(0x1ab)]);
    m.call("i32.store16", &[Val::I32(302), Val::I32(0x12345)]);
    assert_eq!(m.call1("i32.load", &[Val::I32(300)]), Val::I32(0x2345_00ab));
    // (this export stores at offset=8: bytes 400..408)
    m.call("i64.store", &[Val::I32(392), Val::I64(-1)]);
    m.call("i64.store8", &[Val::I32(400), Val::I64(0x77)]);
    m.call("i64.store16", &[Val::I32(401), Val::I64(0x6655)]);
    m.call("i64.store32", &[Val::I32(403), Val::I64(0x1_4433_2211)]);
    assert_eq!(
        &m.memories[0].bytes()[400..408],
        &[0x77, 0x55, 0x66, 0x11, 0x22, 0x33, 0x44, 0xff]
    );
    assert_eq!(
        m.call1("i64.load", &[Val::I32(400)]),
        Val::I64(0xff44_3322_1166_5577u64 as i64)
    );

    // The last word of memory is in bounds.
    m.call("store_last_word", &[Val::I32(0x0bad_f00d)]);
    assert_eq!(m.call1("last_word", &[]), Val::I32(0x0bad_f00d));
}

fn check_size_and_grow(m: &mut Instance) {
    assert_eq!(m.call1("size", &[]), Val::I32(1));
    assert_eq!(m.call1("grow", &[Val::I32(0)]), Val::I32(1));
    assert_eq!(m.call1("grow", &[Val::I32(2)]), Val::I32(1));
    assert_eq!(m.call1("size", &[]), Val::I32(3));
    // Past the maximum (4): fails with -1 and changes nothing.
    assert_eq!(m.call1("grow", &[Val::I32(2)]), Val::I32(-1));
    assert_eq!(m.call1("grow", &[Val::I32(-1)]), Val::I32(-1));
    assert_eq!(m.call1("size", &[]), Val::I32(3));
    m.call("store_last_word", &[Val::I32(77)]);
    assert_eq!(m.call1("last_word", &[]), Val::I32(77));
    assert_eq!(m.memories[0].bytes().len(), 3 << 16);
    // Memory contents survive growth (and, with a moving memory, the code
    // reloads the base after the builtin call).
    assert_eq!(
        m.call1("grow_then_load", &[Val::I32(1234), Val::I32(1)]),
        Val::I32(0x55)
    );
    assert_eq!(m.call1("size", &[]), Val::I32(4));
    assert!(m.grows() >= 5);
}

#[test]
fn explicit_bounds_checks_moving_memory() {
    let mut m = Instance::new(LOADS_STORES);
    check_loads_and_stores(&mut m);
    check_size_and_grow(&mut m);
}

#[test]
fn explicit_bounds_checks_fixed_memory() {
    let t = Tunables {
        memory_may_move: false,
        ..small_tunables()
    };
    let mut m = Instance::with(LOADS_STORES, t, vec![]);
    let base = m.memories[0].bytes().as_ptr();
    check_loads_and_stores(&mut m);
    check_size_and_grow(&mut m);
    assert_eq!(m.memories[0].bytes().as_ptr(), base);
}

#[test]
fn guard_page_memory_without_checks() {
    // A real 4 GiB reservation plus guard: accesses carry no explicit check.
    let t = Tunables {
        memory_reservation: 4 << 30,
        memory_guard_size: 64 << 10,
        memory_may_move: false,
        ..Tunables::default()
    };
    let mut m = Instance::with(LOADS_STORES, t, vec![]);
    check_loads_and_stores(&mut m);
    check_size_and_grow(&mut m);
}

#[test]
fn large_static_offsets() {
    let src = r#"(module
      (memory 2)
      (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store offset=0x10000)
      (func (export "load") (param i32) (result i32) local.get 0 i32.load offset=0x10000)
      (func (export "load_far") (param i32) (result i32) local.get 0 i32.load offset=0x8000_0000))"#;
    for t in [small_tunables(), Tunables::default()] {
        let mut m = Instance::with(src, t, vec![]);
        m.call("store", &[Val::I32(0xfff8), Val::I32(9)]);
        assert_eq!(m.call1("load", &[Val::I32(0xfff8)]), Val::I32(9));
        assert_eq!(
            &m.memories[0].bytes()[0x1fff8..0x1fffc],
            &9u32.to_le_bytes()
        );
    }
}

#[test]
fn base_is_reloaded_after_calls_that_grow() {
    // With a moving memory the callee's grow reallocates the buffer; the
    // caller must not keep using the old base.
    let src = r#"(module
      (memory 1 100)
      (func $grow (param i32) (result i32) local.get 0 memory.grow)
      (func (export "f") (param i32) (result i32)
        i32.const 8 i32.const 0x1234 i32.store
        local.get 0 call $grow drop
        i32.const 8 i32.load
        memory.size i32.const 16 i32.shl i32.const 4 i32.sub i32.load
        i32.add))"#;
    let mut m = Instance::new(src);
    let before = m.memories[0].bytes().as_ptr();
    assert_eq!(m.call1("f", &[Val::I32(50)]), Val::I32(0x1234));
    assert_eq!(m.memories[0].bytes().len(), 51 << 16);
    assert_ne!(
        m.memories[0].bytes().as_ptr(),
        before,
        "the test memory moved"
    );
}

#[test]
fn shared_memory() {
    let src = r#"(module
      (memory 1 4 shared)
      (func (export "size") (result i32) memory.size)
      (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
      (func (export "store") (param i32 i64) local.get 0 local.get 1 i64.store)
      (func (export "load") (param i32) (result i64) local.get 0 i64.load))"#;
    for t in [small_tunables(), Tunables::default()] {
        let mut m = Instance::with(src, t, vec![]);
        assert_eq!(m.call1("size", &[]), Val::I32(1));
        assert_eq!(m.call1("grow", &[Val::I32(1)]), Val::I32(1));
        assert_eq!(m.call1("size", &[]), Val::I32(2));
        m.call("store", &[Val::I32(0x1fff8), Val::I64(-5)]);
        assert_eq!(m.call1("load", &[Val::I32(0x1fff8)]), Val::I64(-5));
    }
}
