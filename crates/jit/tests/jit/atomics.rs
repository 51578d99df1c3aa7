//! The threads proposal: atomic loads, stores, read-modify-writes and
//! compare-exchanges against a model, `atomic.fence`, trap sites, the
//! wait/notify builtins' arguments, and atomics from two threads at once.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use weft_decoder::wasmparser::WasmFeatures;
use weft_decoder::{Features, Module};
use weft_jit::{Builtin, CompiledModule, Compiler, TrapKind, Tunables};

use crate::harness::{Instance, Val, small_tunables, wat};

/// What an atomic instruction does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Load,
    Store,
    Add,
    Sub,
    And,
    Or,
    Xor,
    Xchg,
    Cmpxchg,
}

const KINDS: [Kind; 9] = [
    Kind::Load,
    Kind::Store,
    Kind::Add,
    Kind::Sub,
    Kind::And,
    Kind::Or,
    Kind::Xor,
    Kind::Xchg,
    Kind::Cmpxchg,
];

/// One atomic instruction: kind, value type (`is64`) and access width in bytes.
#[derive(Clone, Copy, Debug)]
struct AtomicOp {
    kind: Kind,
    is64: bool,
    width: u32,
}

impl AtomicOp {
    /// Every atomic memory access of the threads proposal: 7 loads, 7
    /// stores, 6 x 7 read-modify-writes and 7 compare-exchanges.
    fn all() -> Vec<AtomicOp> {
        let mut v = Vec::new();
        for kind in KINDS {
            for (is64, widths) in [(false, &[4u32, 1, 2][..]), (true, &[8, 1, 2, 4][..])] {
                for &width in widths {
                    v.push(AtomicOp { kind, is64, width });
                }
            }
        }
        v
    }

    fn ty(self) -> &'static str {
        if self.is64 { "i64" } else { "i32" }
    }

    fn full(self) -> bool {
        self.width == if self.is64 { 8 } else { 4 }
    }

    /// The instruction's text name, e.g. `i64.atomic.rmw16.cmpxchg_u`.
    fn instr(self) -> String {
        let t = self.ty();
        let n = if self.full() {
            String::new()
        } else {
            (self.width * 8).to_string()
        };
        let u = if self.full() { "" } else { "_u" };
        match self.kind {
            Kind::Load => format!("{t}.atomic.load{n}{u}"),
            Kind::Store => format!("{t}.atomic.store{n}"),
            k => {
                let op = format!("{k:?}").to_lowercase();
                format!("{t}.atomic.rmw{n}.{op}{u}")
            }
        }
    }

    /// Applies the op to the model memory; returns the wasm result (the old
    /// value, zero-extended), if any.
    fn model(self, mem: &mut [u8], ea: usize, a: u64, b: u64) -> Option<u64> {
        let w = self.width as usize;
        let mask = if w == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * w)) - 1
        };
        let mut buf = [0u8; 8];
        buf[..w].copy_from_slice(&mem[ea..ea + w]);
        let old = u64::from_le_bytes(buf);
        let new = match self.kind {
            Kind::Load => return Some(old),
            Kind::Store | Kind::Xchg => a,
            Kind::Add => old.wrapping_add(a),
            Kind::Sub => old.wrapping_sub(a),
            Kind::And => old & a,
            Kind::Or => old | a,
            Kind::Xor => old ^ a,
            Kind::Cmpxchg => {
                if old == a & mask {
                    b
                } else {
                    old
                }
            }
        };
        mem[ea..ea + w].copy_from_slice(&new.to_le_bytes()[..w]);
        (self.kind != Kind::Store).then_some(old)
    }
}

/// Static offset of the `/o` variants of the test functions.
const OFFSET: u32 = 24;

/// One function per op and offset: `(param addr a b) (result t)`, stores
/// returning nothing.
fn ops_module(shared: bool) -> String {
    let mut s = String::from("(module\n");
    s.push_str(if shared {
        "  (memory 1 1 shared)\n"
    } else {
        "  (memory 1 1)\n"
    });
    for op in AtomicOp::all() {
        let t = op.ty();
        for (suffix, memarg) in [("", String::new()), ("/o", format!(" offset={OFFSET}"))] {
            let name = format!("{}{suffix}", op.instr());
            let body = match op.kind {
                Kind::Load => format!("local.get 0 {}{memarg}", op.instr()),
                Kind::Store => format!("local.get 0 local.get 1 {}{memarg}", op.instr()),
                Kind::Cmpxchg => {
                    format!("local.get 0 local.get 1 local.get 2 {}{memarg}", op.instr())
                }
                _ => format!("local.get 0 local.get 1 {}{memarg}", op.instr()),
            };
            let result = if op.kind == Kind::Store {
                String::new()
            } else {
                format!("(result {t})")
            };
            s.push_str(&format!(
                "  (func (export \"{name}\") (param i32 {t} {t}) {result} {body})\n"
            ));
        }
    }
    s.push(')');
    s
}

fn val(is64: bool, x: u64) -> Val {
    if is64 {
        Val::I64(x as i64)
    } else {
        Val::I32(x as u32 as i32)
    }
}

fn raw(v: Val) -> u64 {
    match v {
        Val::I32(x) => u64::from(x as u32),
        Val::I64(x) => x as u64,
        v => panic!("not an integer: {v:?}"),
    }
}

/// One step of a generated program.
#[derive(Clone, Debug)]
struct Step {
    op: usize,
    offset: bool,
    slot: usize,
    a: u64,
    b: u64,
    /// For cmpxchg: use the current value (plus garbage above the access
    /// width) as the expected operand, so both outcomes are exercised.
    expect_current: bool,
}

/// The model region: the first `REGION` bytes (plus the static offset).
const REGION: usize = 64;

fn step() -> impl Strategy<Value = Step> {
    let n = AtomicOp::all().len();
    let value = prop_oneof![
        any::<u64>(),
        (0u64..4),
        Just(u64::MAX),
        Just(0x8000_0000),
        Just(0xff),
    ];
    (
        0..n,
        any::<bool>(),
        0..REGION,
        value.clone(),
        value,
        any::<bool>(),
    )
        .prop_map(|(op, offset, slot, a, b, expect_current)| Step {
            op,
            offset,
            slot,
            a,
            b,
            expect_current,
        })
}

/// Runs generated programs on `m` and on the model, comparing every result
/// and the region's bytes after each step.
fn check_against_model(m: &mut Instance, cases: u32) {
    let ops = AtomicOp::all();
    // `TestRunner::run` takes an `Fn`.
    let m = std::cell::RefCell::new(m);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(step(), 1..24), |steps| {
            let span = REGION + OFFSET as usize + 8;
            let mut m = m.borrow_mut();
            let mut model = m.memories[0].bytes()[..span].to_vec();
            for s in &steps {
                let op = ops[s.op];
                // An aligned effective address inside the region.
                let ea = s.slot / op.width as usize * op.width as usize;
                let (name, addr, ea) = if s.offset {
                    (format!("{}/o", op.instr()), ea, ea + OFFSET as usize)
                } else {
                    (op.instr(), ea, ea)
                };
                let mut a = s.a;
                if op.kind == Kind::Cmpxchg && s.expect_current {
                    let mut buf = [0u8; 8];
                    buf[..op.width as usize].copy_from_slice(&model[ea..ea + op.width as usize]);
                    // Garbage above the width must be ignored.
                    let garbage = if op.width == 8 {
                        0
                    } else {
                        s.a << (8 * op.width)
                    };
                    a = u64::from_le_bytes(buf) | garbage;
                }
                let want = op.model(&mut model, ea, a, s.b);
                let got = m.call(
                    &name,
                    &[Val::I32(addr as i32), val(op.is64, a), val(op.is64, s.b)],
                );
                let got = got.first().map(|&v| raw(v));
                // Results of i32 ops are the model's low 32 bits.
                let want = want.map(|w| if op.is64 { w } else { w & 0xffff_ffff });
                prop_assert_eq!(got, want, "{} at {} (a={:#x}, b={:#x})", name, ea, a, s.b);
                prop_assert_eq!(
                    &m.memories[0].bytes()[..span],
                    &model[..],
                    "memory after {}",
                    name
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn every_atomic_op_matches_the_model_non_shared_explicit_checks() {
    let mut m = Instance::new(&ops_module(false));
    check_against_model(&mut m, 48);
}

#[test]
fn every_atomic_op_matches_the_model_shared_guard_pages() {
    let mut m = Instance::with(&ops_module(true), Tunables::default(), Vec::new());
    check_against_model(&mut m, 48);
}

#[test]
fn the_op_list_covers_the_proposal() {
    let all = AtomicOp::all();
    assert_eq!(all.len(), 9 * 7);
    let names: Vec<String> = all.iter().map(|o| o.instr()).collect();
    for n in [
        "i32.atomic.load",
        "i64.atomic.load32_u",
        "i32.atomic.store8",
        "i64.atomic.store",
        "i32.atomic.rmw16.xchg_u",
        "i64.atomic.rmw.cmpxchg",
        "i64.atomic.rmw8.sub_u",
    ] {
        assert!(names.iter().any(|x| x == n), "{n}");
    }
}

#[test]
fn cmpxchg_success_failure_and_narrow_expected() {
    let mut m = Instance::new(
        r#"(module
          (memory 1 1 shared)
          (func (export "cas32") (param i32 i32 i32) (result i32)
            local.get 0 local.get 1 local.get 2 i32.atomic.rmw.cmpxchg)
          (func (export "cas8") (param i32 i32 i32) (result i32)
            local.get 0 local.get 1 local.get 2 i32.atomic.rmw8.cmpxchg_u)
          (func (export "cas64_32") (param i32 i64 i64) (result i64)
            local.get 0 local.get 1 local.get 2 i64.atomic.rmw32.cmpxchg_u)
          (func (export "load64") (param i32) (result i64) local.get 0 i64.atomic.load))"#,
    );
    m.memories[0].bytes_mut()[..8].copy_from_slice(&0x1111_1111_1111_1111u64.to_le_bytes());
    // Failure: returns the old value, memory unchanged.
    let r = m.call1("cas32", &[Val::I32(0), Val::I32(0), Val::I32(0x1234_5678)]);
    assert_eq!(r, Val::I32(0x1111_1111));
    assert_eq!(
        m.call1("load64", &[Val::I32(0)]),
        Val::I64(0x1111_1111_1111_1111)
    );
    // Success.
    let r = m.call1(
        "cas32",
        &[Val::I32(0), Val::I32(0x1111_1111), Val::I32(0x1234_5678)],
    );
    assert_eq!(r, Val::I32(0x1111_1111));
    assert_eq!(
        m.call1("load64", &[Val::I32(0)]),
        Val::I64(0x1111_1111_1234_5678)
    );
    // The expected operand is wrapped to the access width (0x...78 matches).
    let r = m.call1(
        "cas8",
        &[
            Val::I32(0),
            Val::I32(0x7777_7778),
            Val::I32(0xcdcd_cdcdu32 as i32),
        ],
    );
    assert_eq!(r, Val::I32(0x78));
    assert_eq!(
        m.call1("load64", &[Val::I32(0)]),
        Val::I64(0x1111_1111_1234_56cd)
    );
    let r = m.call1(
        "cas64_32",
        &[
            Val::I32(0),
            Val::I64(0x0101_0101_1234_56cd),
            Val::I64(0x0bad_cafe_0000_0042),
        ],
    );
    assert_eq!(r, Val::I64(0x1234_56cd));
    assert_eq!(
        m.call1("load64", &[Val::I32(0)]),
        Val::I64(0x1111_1111_0000_0042)
    );
    // A failing narrow compare.
    let r = m.call1("cas8", &[Val::I32(0), Val::I32(0x43), Val::I32(0x99)]);
    assert_eq!(r, Val::I32(0x42));
}

#[test]
fn narrow_results_are_zero_extended() {
    let mut m = Instance::new(
        r#"(module
          (memory 1 1)
          (func (export "l8") (result i32) i32.const 8 i32.atomic.load8_u)
          (func (export "l16_64") (result i64) i32.const 8 i64.atomic.load16_u)
          (func (export "l32_64") (result i64) i32.const 8 i64.atomic.load32_u)
          (func (export "add8") (result i32) i32.const 8 i32.const 1 i32.atomic.rmw8.add_u)
          (func (export "xchg16") (result i64) i32.const 10 i64.const -1 i64.atomic.rmw16.xchg_u)
          (func (export "or32") (result i64) i32.const 12 i64.const -1 i64.atomic.rmw32.or_u)
          (func (export "cas16") (result i32)
            i32.const 10 i32.const -1 i32.const 0 i32.atomic.rmw16.cmpxchg_u))"#,
    );
    m.memories[0].bytes_mut()[8..16].fill(0xff);
    assert_eq!(m.call1("l8", &[]), Val::I32(0xff));
    assert_eq!(m.call1("l16_64", &[]), Val::I64(0xffff));
    assert_eq!(m.call1("l32_64", &[]), Val::I64(0xffff_ffff));
    // 0xff + 1 wraps within the byte; the old value is zero-extended.
    assert_eq!(m.call1("add8", &[]), Val::I32(0xff));
    assert_eq!(m.memories[0].bytes()[8], 0);
    assert_eq!(m.memories[0].bytes()[9], 0xff);
    assert_eq!(m.call1("xchg16", &[]), Val::I64(0xffff));
    assert_eq!(m.call1("or32", &[]), Val::I64(0xffff_ffff));
    // Expected -1 wraps to 0xffff: matches, stores 0.
    assert_eq!(m.call1("cas16", &[]), Val::I32(0xffff));
    assert_eq!(
        &m.memories[0].bytes()[8..16],
        &[0, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff]
    );
}

#[test]
fn fence_compiles_and_runs() {
    let mut m = Instance::new(
        r#"(module
          (memory 1)
          (func (export "f") (result i32)
            i32.const 0 i32.const 7 i32.store
            atomic.fence
            i32.const 0 i32.load))"#,
    );
    assert_eq!(m.call1("f", &[]), Val::I32(7));
    // A module without memory may use the fence too.
    let mut m = Instance::new(r#"(module (func (export "f") atomic.fence))"#);
    assert!(m.call("f", &[]).is_empty());
}

fn multi_memory() -> Features {
    Features(Features::default().0 | WasmFeatures::MULTI_MEMORY | WasmFeatures::MEMORY64)
}

#[test]
fn wait_and_notify_call_the_builtins_with_their_arguments() {
    let src = r#"(module
      (memory $plain 1 1)
      (memory $shared 1 1 shared)
      (func (export "notify") (param i32 i32) (result i32)
        local.get 0 local.get 1 memory.atomic.notify $shared offset=16)
      (func (export "notify0") (param i32 i32) (result i32)
        local.get 0 local.get 1 memory.atomic.notify $plain)
      (func (export "wait32") (param i32 i32 i64) (result i32)
        local.get 0 local.get 1 local.get 2 memory.atomic.wait32 $shared offset=4)
      (func (export "wait64") (param i32 i64 i64) (result i32)
        local.get 0 local.get 1 local.get 2 memory.atomic.wait64 $shared))"#;
    for tunables in [small_tunables(), Tunables::default()] {
        let mut m = Instance::with_features(src, tunables, Vec::new(), multi_memory());
        m.memories[1].bytes_mut()[8..16].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());

        m.notify_result = 3;
        assert_eq!(m.call1("notify", &[Val::I32(8), Val::I32(5)]), Val::I32(3));
        m.notify_result = 0;
        assert_eq!(
            m.call1("notify0", &[Val::I32(4), Val::I32(-1)]),
            Val::I32(0)
        );
        // Not equal -> 1; equal -> the fake "times out" -> 2.
        let wait32 = |m: &mut Instance, v: u32, t: i64| {
            m.call1("wait32", &[Val::I32(8), Val::I32(v as i32), Val::I64(t)])
        };
        assert_eq!(wait32(&mut m, 1, -1), Val::I32(1));
        assert_eq!(wait32(&mut m, 0x0123_4567, 1000), Val::I32(2));
        assert_eq!(
            m.call1(
                "wait64",
                &[Val::I32(8), Val::I64(0x0123_4567_89ab_cdef), Val::I64(0)]
            ),
            Val::I32(2)
        );
        assert_eq!(
            m.call1(
                "wait64",
                &[
                    Val::I32(8),
                    Val::I64(0x0123_4567_89ab_cdefu64.swap_bytes() as i64),
                    Val::I64(5)
                ]
            ),
            Val::I32(1)
        );
        assert_eq!(
            m.builtin_log,
            vec![
                (Builtin::MemoryAtomicNotify, vec![1, 24, 5]),
                (Builtin::MemoryAtomicNotify, vec![0, 4, u64::from(u32::MAX)]),
                (Builtin::MemoryAtomicWait32, vec![1, 12, 1, u64::MAX]),
                (Builtin::MemoryAtomicWait32, vec![1, 12, 0x0123_4567, 1000]),
                (
                    Builtin::MemoryAtomicWait64,
                    vec![1, 8, 0x0123_4567_89ab_cdef, 0]
                ),
                (
                    Builtin::MemoryAtomicWait64,
                    vec![1, 8, 0x0123_4567_89ab_cdefu64.swap_bytes(), 5]
                ),
            ]
        );
    }
}

#[test]
fn wait_and_notify_pass_memory64_effective_addresses() {
    let src = r#"(module
      (memory i64 1 1)
      (func (export "notify") (param i64 i32) (result i32)
        local.get 0 local.get 1 memory.atomic.notify offset=16)
      (func (param i64 i32) (result i32)
        local.get 0 local.get 1 memory.atomic.notify offset=0x100000000))"#;
    let mut m = Instance::with_features(src, small_tunables(), Vec::new(), multi_memory());
    assert_eq!(m.call1("notify", &[Val::I64(8), Val::I32(2)]), Val::I32(0));
    assert_eq!(
        m.builtin_log,
        vec![(Builtin::MemoryAtomicNotify, vec![0, 24, 2])]
    );
    // Inline, a memory64 notify only checks that index + offset does not
    // overflow (out of bounds); the builtin checks the rest.
    let compiled = compile(src, small_tunables());
    let k = trap_kinds(&compiled, 1);
    assert!(k.contains(&TrapKind::MemoryOutOfBounds), "{k:?}");
    assert!(k.contains(&TrapKind::Host), "{k:?}");
    assert!(!k.contains(&TrapKind::UnalignedAtomic), "{k:?}");
}

// ------------------------------------------------------------- trap sites

fn compile(src: &str, tunables: Tunables) -> CompiledModule {
    let compiler = Compiler::new(Tunables {
        epoch_interruption: false,
        ..tunables
    })
    .unwrap();
    compiler
        .compile(&Module::decode_with(&wat(src), multi_memory()).unwrap())
        .unwrap()
}

/// The trap kinds recorded inside function `func`.
/// The trap sites of function `func`, leaving out the interrupt polls that
/// every function entry and loop header has with default tunables.
fn trap_kinds(m: &CompiledModule, func: u32) -> Vec<TrapKind> {
    let (start, end) = m.code_range();
    (start..end)
        .filter(|&pc| m.func_at(pc) == Some(func))
        .filter_map(|pc| m.lookup_trap(pc))
        .filter(|&k| k != TrapKind::Interrupt)
        .collect()
}

#[test]
fn unaligned_atomics_have_trap_sites() {
    let src = r#"(module
      (memory 1 1 shared)
      (func (param i32) (result i32) local.get 0 i32.atomic.load)
      (func (param i32) (result i64) local.get 0 i64.const 1 i64.atomic.rmw.add offset=3)
      (func (param i32) (result i32) local.get 0 i32.atomic.load8_u)
      (func (result i32) i32.const 8 i32.const 1 i32.const 2 i32.atomic.rmw16.cmpxchg_u)
      (func (param i32) local.get 0 i64.const 5 i64.atomic.store32)
      (func (param i32 i32) (result i32) local.get 0 local.get 1 memory.atomic.notify)
      (func (param i32 i64 i64) (result i32)
        local.get 0 local.get 1 local.get 2 memory.atomic.wait64)
      (func (result i32) i32.const 6 i32.const 1 i32.atomic.rmw.xchg))"#;
    for tunables in [small_tunables(), Tunables::default()] {
        let explicit = tunables.memory_reservation < 1 << 32;
        let m = compile(src, tunables);
        for f in [0, 1, 4] {
            let k = trap_kinds(&m, f);
            assert!(k.contains(&TrapKind::UnalignedAtomic), "func {f}: {k:?}");
            assert!(k.contains(&TrapKind::MemoryOutOfBounds), "func {f}: {k:?}");
        }
        // One-byte accesses and constant aligned addresses need no
        // alignment check.
        for f in [2, 3] {
            let k = trap_kinds(&m, f);
            assert!(!k.contains(&TrapKind::UnalignedAtomic), "func {f}: {k:?}");
            assert!(k.contains(&TrapKind::MemoryOutOfBounds), "func {f}: {k:?}");
        }
        // wait/notify: the builtin checks; compiled code traps on its status.
        for f in [5, 6] {
            let k: Vec<_> = trap_kinds(&m, f)
                .into_iter()
                .filter(|&k| k != TrapKind::StackOverflow)
                .collect();
            assert_eq!(k, vec![TrapKind::Host], "func {f}");
        }
        // A constant misaligned address is still checked (and traps).
        let k = trap_kinds(&m, 7);
        assert!(
            k.contains(&TrapKind::UnalignedAtomic),
            "{k:?} (explicit {explicit})"
        );
    }
}

/// With guard pages, an out-of-bounds atomic faults on the atomic
/// instruction itself: every lowering (plain load, store + fence, `lock
/// xadd`, `xchg`, `lock cmpxchg`, the cmpxchg loop, `lock and` with the
/// result unused) must record the fault as `MemoryOutOfBounds`.
#[test]
fn guard_page_atomics_record_their_faults() {
    let src = r#"(module
      (memory 1 1 shared)
      (func (param i32) (result i32) local.get 0 i32.atomic.load8_u)
      (func (param i32) local.get 0 i32.const 1 i32.atomic.store8)
      (func (param i32) (result i32) local.get 0 i32.const 1 i32.atomic.rmw8.add_u)
      (func (param i32) (result i32) local.get 0 i32.const 1 i32.atomic.rmw8.xchg_u)
      (func (param i32) (result i32) local.get 0 i32.const 1 i32.const 2 i32.atomic.rmw8.cmpxchg_u)
      (func (param i32) (result i32) local.get 0 i32.const 1 i32.atomic.rmw8.and_u)
      (func (param i32) local.get 0 i32.const 1 i32.atomic.rmw8.or_u drop)
      (func (param i32) (result i64) local.get 0 i64.const 1 i64.atomic.rmw8.sub_u))"#;
    let m = compile(src, Tunables::default());
    for f in 0..8 {
        let k = trap_kinds(&m, f);
        assert!(!k.is_empty(), "func {f}: no fault recorded");
        assert!(
            k.iter().all(|&k| k == TrapKind::MemoryOutOfBounds),
            "func {f}: {k:?}"
        );
    }
}

#[test]
fn atomic_trap_messages() {
    assert_eq!(TrapKind::UnalignedAtomic.message(), "unaligned atomic");
    assert_eq!(
        TrapKind::AtomicWaitNonShared.message(),
        "expected shared memory"
    );
}

// ----------------------------------------------------------------- threads

/// A compiled function's `array_call` and vmctx, sent to another thread.
#[derive(Clone, Copy)]
struct Entry {
    code: *const u8,
    vmctx: *mut u8,
}

// SAFETY: the entry is only called while the instance is alive (the
// threads are scoped), and the code it runs touches shared state only
// through atomics (the memory) or reads (vmctx, store context).
unsafe impl Send for Entry {}

impl Entry {
    fn call_i32(self, arg: i32) {
        let mut values = [crate::harness::ValRaw::from_val(Val::I32(arg))];
        // SAFETY: `code` is an `array_call` of a `(param i32)` function; the
        // vmctx outlives the call.
        unsafe {
            let f: unsafe extern "C" fn(*mut u8, *mut u8, *mut crate::harness::ValRaw, usize) =
                std::mem::transmute(self.code);
            f(self.vmctx, self.vmctx, values.as_mut_ptr(), 1);
        }
    }
}

#[test]
fn two_threads_add_atomically() {
    const N: i32 = 20_000;
    let src = r#"(module
      (memory 1 1 shared)
      (func (export "add_n") (param $n i32)
        (loop $l
          i32.const 64 i32.const 1 i32.atomic.rmw.add drop
          ;; a narrow counter next to it, with the result used
          i32.const 68 i32.const 1 i32.atomic.rmw16.add_u drop
          local.get $n i32.const 1 i32.sub local.tee $n
          br_if $l))
      (func (export "get") (result i32) i32.const 64 i32.atomic.load))"#;
    for tunables in [small_tunables(), Tunables::default()] {
        let mut m = Instance::with(src, tunables, Vec::new());
        let def = m.func_index("add_n") - m.module.num_imported_funcs;
        let entry = Entry {
            code: m.compiled.array_call(def),
            vmctx: m.vmctx(),
        };
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(move || entry.call_i32(N));
            }
        });
        assert_eq!(m.call1("get", &[]), Val::I32(2 * N));
        let b = m.memories[0].bytes();
        assert_eq!(
            u16::from_le_bytes([b[68], b[69]]),
            (2 * N) as u16,
            "16-bit counter"
        );
    }
}

// ------------------------------------------------------------------- traps

/// Runs trapping calls in forked children: misaligned effective addresses
/// trap with `UnalignedAtomic` before any bounds check (so an access that is
/// both misaligned and out of bounds reports "unaligned atomic"), aligned
/// out-of-bounds ones with `MemoryOutOfBounds`, with explicit checks and
/// with guard pages alike.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn atomic_traps_alignment_first_then_bounds() {
    let src = r#"(module
      (memory 1 1 shared)
      (memory $plain 1 1)
      (func (export "load32") (param i32) (result i32) local.get 0 i32.atomic.load)
      (func (export "load64_o") (param i32) (result i64) local.get 0 i64.atomic.load offset=4)
      (func (export "rmw16") (param i32) (result i32) local.get 0 i32.const 1 i32.atomic.rmw16.add_u)
      (func (export "store8") (param i32) local.get 0 i32.const 1 i32.atomic.store8)
      (func (export "cas64") (param i32) (result i64)
        local.get 0 i64.const 0 i64.const 1 i64.atomic.rmw.cmpxchg)
      (func (export "xor_unused") (param i32) local.get 0 i32.const 1 i32.atomic.rmw.xor drop)
      (func (export "notify") (param i32) (result i32) local.get 0 i32.const 1 memory.atomic.notify)
      (func (export "wait_plain") (param i32) (result i32)
        local.get 0 i32.const 0 i64.const 0 memory.atomic.wait32 $plain))"#;
    let u = Some(TrapKind::UnalignedAtomic);
    let oob = Some(TrapKind::MemoryOutOfBounds);
    let cases: &[(&str, u32, Option<TrapKind>)] = &[
        ("load32", 1, u),
        ("load32", 65532, None),
        ("load32", 65536, oob),
        ("load32", 65533, u),
        ("load32", u32::MAX - 3, oob),
        ("load64_o", 4, None),
        ("load64_o", 0, u),
        ("load64_o", 65524, None),
        ("load64_o", 65532, oob),
        ("load64_o", 65533, u),
        ("rmw16", 65535, u),
        ("rmw16", 65534, None),
        ("rmw16", 65536, oob),
        ("store8", 65535, None),
        ("store8", 65536, oob),
        ("cas64", u32::MAX - 7, oob),
        ("cas64", 65529, u),
        ("xor_unused", 65536, oob),
        ("xor_unused", 2, u),
        // The builtins check wait/notify; a failure traps with `Host`.
        ("notify", 0, None),
        ("notify", 2, Some(TrapKind::Host)),
        ("notify", 65536, Some(TrapKind::Host)),
        ("wait_plain", 0, Some(TrapKind::Host)),
    ];
    for tunables in [small_tunables(), Tunables::default()] {
        let guard = tunables.memory_reservation >= 1 << 32;
        let mut m = Instance::with_features(src, tunables, Vec::new(), multi_memory());
        for &(name, addr, want) in cases {
            let got = m.trap_of(name, &[Val::I32(addr as i32)]);
            assert_eq!(got, want, "{name}({addr}) with guard pages: {guard}");
        }
    }
}
