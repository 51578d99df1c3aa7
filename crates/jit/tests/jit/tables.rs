//! References, tables, `call_indirect` and the bulk-memory builtins.

use weft_decoder::wasmparser::WasmFeatures;
use weft_decoder::{Features, Module, ValType};
use weft_jit::{Builtin, CompiledModule, Compiler, TrapKind, Tunables};

use crate::harness::{HostCtx, ImportVal, Instance, TestTable, Val, ValRaw, small_tunables, wat};

/// The trap kinds recorded inside function `func` (function index space).
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

/// Compiles without interruption checks (their slow paths add `Host` trap
/// sites to every function).
fn compile(src: &str) -> CompiledModule {
    let compiler = Compiler::new(Tunables {
        epoch_interruption: false,
        ..Tunables::default()
    })
    .unwrap();
    compiler
        .compile(&Module::decode(&wat(src)).unwrap())
        .unwrap()
}

/// Host callback `() -> i32` returning 42; counts calls.
unsafe extern "C" fn host_42(
    ctx: *mut u8,
    _caller: *mut u8,
    values: *mut ValRaw,
    len: usize,
) -> u32 {
    assert_eq!(len, 1);
    // SAFETY: the host context is a `HostCtx`; one slot, per the contract.
    unsafe {
        (*(ctx as *mut HostCtx)).calls += 1;
        *values = ValRaw::from_val(Val::I32(42));
    }
    0
}

fn multi_memory() -> Features {
    Features(Features::default().0 | WasmFeatures::MULTI_MEMORY | WasmFeatures::MEMORY64)
}

const EXT: u64 = 0xdead_beef_0000;

#[test]
fn ref_func_ref_null_and_ref_is_null() {
    let mut m = Instance::with(
        r#"(module
          (import "h" "f" (func $imp (result i32)))
          (global $g (mut funcref) (ref.func $a))
          (global $e (mut externref) (ref.null extern))
          (elem declare func $a $b $imp)
          (func $a (export "a") (result funcref) ref.func $a)
          (func $b (export "b") (result funcref) ref.func $b)
          (func (export "imp") (result funcref) ref.func $imp)
          (func (export "null") (result funcref) ref.null func)
          (func (export "is_null") (param funcref) (result i32) local.get 0 ref.is_null)
          (func (export "ext_is_null") (param externref) (result i32) local.get 0 ref.is_null)
          (func (export "a_is_null") (result i32) ref.func $a ref.is_null)
          (func (export "id") (param externref) (result externref) local.get 0)
          (func (export "get_g") (result funcref) global.get $g)
          (func (export "set_g") (param funcref) local.get 0 global.set $g)
          (func (export "set_e") (param externref) local.get 0 global.set $e)
          (func (export "get_e") (result externref) global.get $e)
          (func (export "local") (result externref) (local externref) local.get 0)
          (func (export "sel") (param externref externref i32) (result externref)
            local.get 0 local.get 1 local.get 2 select (result externref))
          (func $triple (param externref) (result externref funcref i32)
            local.get 0 ref.func $b i32.const 7)
          (func (export "triple") (param externref) (result externref funcref i32)
            local.get 0 call $triple)
        )"#,
        small_tunables(),
        vec![ImportVal::Host(host_42)],
    );
    let fa = m.funcref(1) as u64;
    let fb = m.funcref(2) as u64;
    let fimp = m.funcref(0) as u64;
    assert_ne!(fa, 0);
    assert_ne!(fa, fb);
    assert_eq!(m.call1("a", &[]), Val::Ref(fa));
    assert_eq!(m.call1("b", &[]), Val::Ref(fb));
    assert_eq!(m.call1("imp", &[]), Val::Ref(fimp));
    assert_eq!(m.call1("null", &[]), Val::Ref(0));
    assert_eq!(m.call1("is_null", &[Val::Ref(0)]), Val::I32(1));
    assert_eq!(m.call1("is_null", &[Val::Ref(fa)]), Val::I32(0));
    assert_eq!(m.call1("ext_is_null", &[Val::Ref(EXT)]), Val::I32(0));
    assert_eq!(m.call1("ext_is_null", &[Val::Ref(0)]), Val::I32(1));
    assert_eq!(m.call1("a_is_null", &[]), Val::I32(0));
    assert_eq!(m.call1("id", &[Val::Ref(EXT)]), Val::Ref(EXT));
    assert_eq!(m.call1("get_g", &[]), Val::Ref(fa));
    m.call("set_g", &[Val::Ref(fb)]);
    assert_eq!(m.call1("get_g", &[]), Val::Ref(fb));
    assert_eq!(m.global(0, ValType::FUNCREF), Val::Ref(fb));
    assert_eq!(m.call1("get_e", &[]), Val::Ref(0));
    m.call("set_e", &[Val::Ref(EXT + 8)]);
    assert_eq!(m.call1("get_e", &[]), Val::Ref(EXT + 8));
    assert_eq!(m.call1("local", &[]), Val::Ref(0));
    let (x, y) = (Val::Ref(EXT), Val::Ref(EXT + 16));
    assert_eq!(m.call1("sel", &[x, y, Val::I32(1)]), x);
    assert_eq!(m.call1("sel", &[x, y, Val::I32(0)]), y);
    assert_eq!(m.call("triple", &[x]), vec![x, Val::Ref(fb), Val::I32(7)]);
}

#[test]
fn table_get_set_size_and_grow() {
    let mut m = Instance::new(
        r#"(module
          (table $f 3 10 funcref)
          (table $e 2 externref)
          (elem (table $f) (i32.const 1) func $one)
          (func $one (result i32) i32.const 1)
          (func (export "get_f") (param i32) (result funcref) local.get 0 table.get $f)
          (func (export "set_f") (param i32 funcref) local.get 0 local.get 1 table.set $f)
          (func (export "get_e") (param i32) (result externref) local.get 0 table.get $e)
          (func (export "set_e") (param i32 externref) local.get 0 local.get 1 table.set $e)
          (func (export "size_f") (result i32) table.size $f)
          (func (export "size_e") (result i32) table.size $e)
          (func (export "grow_e") (param externref i32) (result i32)
            local.get 0 local.get 1 table.grow $e)
          ;; get, grow (the elements move), get again, in one function
          (func (export "grow_between") (param i32) (result externref)
            local.get 0 table.get $e drop
            ref.null extern i32.const 5 table.grow $e drop
            local.get 0 i32.const 5 i32.add table.get $e)
          (func (export "copy_in") (param i32 i32)
            local.get 1 local.get 0 table.get $e table.set $e)
        )"#,
    );
    let one = m.funcref(0) as u64;
    assert_eq!(m.call1("size_f", &[]), Val::I32(3));
    assert_eq!(m.call1("size_e", &[]), Val::I32(2));
    assert_eq!(m.call1("get_f", &[Val::I32(0)]), Val::Ref(0));
    assert_eq!(m.call1("get_f", &[Val::I32(1)]), Val::Ref(one));
    m.call("set_f", &[Val::I32(2), Val::Ref(one)]);
    assert_eq!(m.table_elems(0), vec![0, one as usize, one as usize]);
    m.call("set_f", &[Val::I32(1), Val::Ref(0)]);
    assert_eq!(m.call1("get_f", &[Val::I32(1)]), Val::Ref(0));

    m.call("set_e", &[Val::I32(1), Val::Ref(EXT)]);
    assert_eq!(m.call1("get_e", &[Val::I32(1)]), Val::Ref(EXT));
    assert_eq!(m.table_elems(1), vec![0, EXT as usize]);

    // Grow moves the elements; compiled code reloads the base.
    assert_eq!(
        m.call1("grow_e", &[Val::Ref(EXT + 1), Val::I32(3)]),
        Val::I32(2)
    );
    assert_eq!(m.call1("size_e", &[]), Val::I32(5));
    assert_eq!(m.call1("get_e", &[Val::I32(4)]), Val::Ref(EXT + 1));
    assert_eq!(m.call1("get_e", &[Val::I32(1)]), Val::Ref(EXT));
    // An unbounded externref table is capped by the harness at 2^20: a
    // grow by 2^32 - 1 (the i32 -1 zero-extended) fails with -1.
    assert_eq!(
        m.call1("grow_e", &[Val::Ref(0), Val::I32(-1)]),
        Val::I32(-1)
    );
    assert_eq!(
        m.builtin_log.last().unwrap(),
        &(Builtin::TableGrow, vec![1, 0xffff_ffff, 0])
    );
    m.call("set_e", &[Val::I32(3), Val::Ref(EXT + 3)]);
    assert_eq!(m.call1("grow_between", &[Val::I32(3)]), Val::Ref(0));
    assert_eq!(m.call1("size_e", &[]), Val::I32(10));
    m.call("copy_in", &[Val::I32(3), Val::I32(9)]);
    assert_eq!(m.call1("get_e", &[Val::I32(9)]), Val::Ref(EXT + 3));
    // The funcref table's maximum is 10.
    assert_eq!(m.call1("size_f", &[]), Val::I32(3));
}

#[test]
fn imported_tables_are_shared() {
    let mut shared = TestTable::new(4, None, 0);
    let src = r#"(module
      (import "t" "t" (table $t 4 externref))
      (func (export "set") (param i32 externref) local.get 0 local.get 1 table.set $t)
      (func (export "get") (param i32) (result externref) local.get 0 table.get $t)
      (func (export "grow") (param i32) (result i32) ref.null extern local.get 0 table.grow $t)
      (func (export "size") (result i32) table.size $t))"#;
    let mut a = Instance::with(src, small_tunables(), vec![ImportVal::Table(&mut *shared)]);
    let mut b = Instance::with(src, small_tunables(), vec![ImportVal::Table(&mut *shared)]);
    a.call("set", &[Val::I32(2), Val::Ref(EXT)]);
    assert_eq!(b.call1("get", &[Val::I32(2)]), Val::Ref(EXT));
    assert_eq!(b.call1("grow", &[Val::I32(6)]), Val::I32(4));
    assert_eq!(a.call1("size", &[]), Val::I32(10));
    a.call("set", &[Val::I32(9), Val::Ref(EXT + 9)]);
    assert_eq!(b.call1("get", &[Val::I32(9)]), Val::Ref(EXT + 9));
    assert_eq!(shared.elems()[9], (EXT + 9) as usize);
}

#[test]
fn call_indirect_through_tables() {
    let mut m = Instance::with(
        r#"(module
          (import "h" "f" (func $h (result i32)))
          (type $v_i (func (result i32)))
          (type $i_i (func (param i32) (result i32)))
          (type $ii_ii (func (param i32 i32) (result i32 i32)))
          (table $t 6 funcref)
          (table $u 2 funcref)
          (elem (table $t) (i32.const 0) func $seven $inc $h $swap)
          (elem (table $u) (i32.const 1) func $inc)
          (func $seven (type $v_i) i32.const 7)
          (func $inc (type $i_i) local.get 0 i32.const 1 i32.add)
          (func $swap (type $ii_ii) local.get 1 local.get 0)
          (func (export "call_v_i") (param i32) (result i32)
            local.get 0 call_indirect $t (type $v_i))
          (func (export "call_i_i") (param i32 i32) (result i32)
            local.get 1 local.get 0 call_indirect $t (type $i_i))
          (func (export "call_swap") (param i32 i32 i32) (result i32 i32)
            local.get 1 local.get 2 local.get 0 call_indirect $t (type $ii_ii))
          (func (export "call_u") (param i32) (result i32)
            local.get 0 i32.const 1 call_indirect $u (type $i_i))
          (func (export "install") (param i32 funcref)
            local.get 0 local.get 1 table.set $t)
          (func (export "fn_seven") (result funcref) ref.func $seven)
          (elem declare func $seven)
        )"#,
        small_tunables(),
        vec![ImportVal::Host(host_42)],
    );
    assert_eq!(m.call1("call_v_i", &[Val::I32(0)]), Val::I32(7));
    assert_eq!(
        m.call1("call_i_i", &[Val::I32(1), Val::I32(41)]),
        Val::I32(42)
    );
    // Through the imported host function's funcref.
    assert_eq!(m.call1("call_v_i", &[Val::I32(2)]), Val::I32(42));
    assert_eq!(m.host_ctxs[0].calls, 1);
    assert_eq!(
        m.call("call_swap", &[Val::I32(3), Val::I32(1), Val::I32(2)]),
        vec![Val::I32(2), Val::I32(1)]
    );
    assert_eq!(m.call1("call_u", &[Val::I32(41)]), Val::I32(42));
    // Install a funcref obtained from wasm at a null slot, then call it.
    let seven = m.call1("fn_seven", &[]);
    m.call("install", &[Val::I32(5), seven]);
    assert_eq!(m.call1("call_v_i", &[Val::I32(5)]), Val::I32(7));
}

#[test]
fn call_indirect_across_instances() {
    let callee_src = r#"(module
          (global $g (mut i32) (i32.const 100))
          (table $t (export "t") 2 funcref)
          (elem (table $t) (i32.const 0) func $bump)
          (func $bump (export "bump") (param i32) (result i32)
            global.get $g local.get 0 i32.add global.set $g global.get $g))"#;
    let callee = Instance::new(callee_src);
    let table = callee.table_ptr(0);
    let mut caller = Instance::with(
        r#"(module
          (import "c" "t" (table $t 2 funcref))
          (func (export "go") (param i32) (result i32)
            local.get 0 i32.const 0 call_indirect $t (param i32) (result i32)))"#,
        small_tunables(),
        vec![ImportVal::Table(table)],
    );
    // The callee runs with its own vmctx (its global changes).
    assert_eq!(caller.call1("go", &[Val::I32(5)]), Val::I32(105));
    assert_eq!(caller.call1("go", &[Val::I32(1)]), Val::I32(106));
    assert_eq!(callee.global(0, ValType::I32), Val::I32(106));
}

#[test]
fn trap_sites_of_tables_and_indirect_calls() {
    let m = compile(
        r#"(module
          (memory 1)
          (table 1 funcref)
          (func (param i32) (result i32) local.get 0 call_indirect (result i32))
          (func (param i32) (result funcref) local.get 0 table.get 0)
          (func (param i32) local.get 0 ref.null func table.set 0)
          (func (param i32) local.get 0 i32.const 0 i32.const 1 memory.fill)
          (func (result i32) table.size 0)
          (func (param i32 funcref) (result i32) local.get 1 local.get 0 table.grow 0))"#,
    );
    let k = trap_kinds(&m, 0);
    for want in [
        TrapKind::UndefinedElement,
        TrapKind::IndirectCallToNull,
        TrapKind::BadSignature,
    ] {
        assert!(k.contains(&want), "call_indirect lacks {want:?}: {k:?}");
    }
    assert!(!k.contains(&TrapKind::TableOutOfBounds), "{k:?}");
    assert_eq!(trap_kinds(&m, 1), vec![TrapKind::TableOutOfBounds]);
    assert_eq!(trap_kinds(&m, 2), vec![TrapKind::TableOutOfBounds]);
    // The status of memory.fill (the builtin recorded the real reason).
    assert!(trap_kinds(&m, 3).contains(&TrapKind::Host));
    // table.size cannot trap; table.grow only at the stack check or when
    // its builtin asks to (`GROW_TRAP`, e.g. a resource limiter panicked).
    assert!(trap_kinds(&m, 4).is_empty());
    let grow = trap_kinds(&m, 5);
    assert!(grow.contains(&TrapKind::Host), "{grow:?}");
    assert!(
        grow.iter()
            .all(|&k| matches!(k, TrapKind::StackOverflow | TrapKind::Host)),
        "{grow:?}"
    );
}

#[test]
fn builtins_receive_their_arguments() {
    let mut m = Instance::with_features(
        r#"(module
          (memory $m0 1)
          (memory $m1 1)
          (table $t0 4 externref)
          (table $t1 8 funcref)
          (elem $e0 funcref (ref.func $f) (ref.null func) (ref.func $f))
          (elem $e1 declare func $f)
          (data $d0 "hello")
          (data $d1 "world!")
          (func $f)
          (func (export "run") (param externref)
            ;; table.fill t0 [1, 3) with an externref
            i32.const 1 local.get 0 i32.const 2 table.fill $t0
            ;; table.init t1 at 4 from e0 [1, 3)
            i32.const 4 i32.const 1 i32.const 2 table.init $t1 $e0
            ;; table.copy t1[0..2) <- t1[4..6)
            i32.const 0 i32.const 4 i32.const 2 table.copy $t1 $t1
            elem.drop $e0
            ;; memory.init m1 at 10 from d1 [1, 6)
            i32.const 10 i32.const 1 i32.const 5 memory.init $m1 $d1
            ;; memory.copy m0[100..105) <- m1[10..15)
            i32.const 100 i32.const 10 i32.const 5 memory.copy $m0 $m1
            ;; memory.fill m0 [0, 3) with 0xff (the i32 -1, passed as is)
            i32.const 0 i32.const -1 i32.const 3 memory.fill $m0
            data.drop $d0)
          (func (export "grow") (param i32) (result i32)
            ref.null func local.get 0 table.grow $t1)
        )"#,
        small_tunables(),
        Vec::new(),
        multi_memory(),
    );
    m.call("run", &[Val::Ref(EXT)]);
    // The 5-argument builtins get (index, index, dst, src, len).
    assert_eq!(
        m.builtin_log,
        vec![
            (Builtin::TableFill, vec![0, 1, EXT, 2]),
            (Builtin::TableInit, vec![1, 0, 4, 1, 2]),
            (Builtin::TableCopy, vec![1, 1, 0, 4, 2]),
            (Builtin::ElemDrop, vec![0]),
            (Builtin::MemoryInit, vec![1, 1, 10, 1, 5]),
            (Builtin::MemoryCopy, vec![0, 1, 100, 10, 5]),
            (Builtin::MemoryFill, vec![0, 0, 0xffff_ffff, 3]),
            (Builtin::DataDrop, vec![0]),
        ]
    );
    let f = m.funcref(0) as usize;
    assert_eq!(m.table_elems(0), vec![0, EXT as usize, EXT as usize, 0]);
    assert_eq!(m.table_elems(1), vec![0, f, 0, 0, 0, f, 0, 0]);
    assert_eq!(&m.memories[1].bytes()[10..15], b"orld!");
    assert_eq!(&m.memories[0].bytes()[100..105], b"orld!");
    assert_eq!(&m.memories[0].bytes()[..4], &[0xff, 0xff, 0xff, 0]);

    m.builtin_log.clear();
    // Negative i32 deltas are zero-extended; failure is -1.
    assert_eq!(m.call1("grow", &[Val::I32(2)]), Val::I32(8));
    assert_eq!(m.call1("grow", &[Val::I32(-2)]), Val::I32(-1));
    assert_eq!(
        m.builtin_log,
        vec![
            (Builtin::TableGrow, vec![1, 2, 0]),
            (Builtin::TableGrow, vec![1, 0xffff_fffe, 0]),
        ]
    );
}

#[test]
fn builtin_table_is_in_contract_order() {
    let names: Vec<String> = Builtin::ALL.iter().map(|b| format!("{b:?}")).collect();
    assert_eq!(
        names,
        [
            "MemoryGrow",
            "TableGrow",
            "TableFill",
            "TableCopy",
            "TableInit",
            "ElemDrop",
            "MemoryCopy",
            "MemoryFill",
            "MemoryInit",
            "DataDrop",
            "EpochInterrupt",
            "OutOfFuel",
            "MemoryAtomicNotify",
            "MemoryAtomicWait32",
            "MemoryAtomicWait64",
            "Throw",
            "ThrowRef",
            "CatchException"
        ]
    );
    for (i, b) in Builtin::ALL.iter().enumerate() {
        assert_eq!(b.index() as usize, i);
        assert_eq!(b.table_offset() as usize, 8 * i);
    }
}

#[test]
fn memory64_operands_pass_through() {
    let mut m = Instance::with_features(
        r#"(module
          (memory $m i64 1)
          (memory $n 1)
          (data $d "abc")
          (func (export "run")
            i64.const 8 i32.const 0x61 i64.const 2 memory.fill $m
            ;; copying from a 32-bit to a 64-bit memory: dst i64, src i32, len i32
            i64.const 16 i32.const 0 i32.const 2 memory.copy $m $n
            i64.const 20 i32.const 0 i32.const 3 memory.init $m $d))"#,
        small_tunables(),
        Vec::new(),
        multi_memory(),
    );
    m.call("run", &[]);
    assert_eq!(
        m.builtin_log,
        vec![
            (Builtin::MemoryFill, vec![0, 8, 0x61, 2]),
            (Builtin::MemoryCopy, vec![0, 1, 16, 0, 2]),
            (Builtin::MemoryInit, vec![0, 0, 20, 0, 3]),
        ]
    );
    assert_eq!(&m.memories[0].bytes()[8..10], b"aa");
    assert_eq!(&m.memories[0].bytes()[20..23], b"abc");
}

#[test]
fn table64_indices_are_i64() {
    let mut m = Instance::with_features(
        r#"(module
          (table $t i64 3 externref)
          (func (export "set") (param i64 externref) local.get 0 local.get 1 table.set $t)
          (func (export "get") (param i64) (result externref) local.get 0 table.get $t)
          (func (export "size") (result i64) table.size $t)
          (func (export "grow") (param i64) (result i64) ref.null extern local.get 0 table.grow $t)
          (func (export "fill") (param i64 externref i64)
            local.get 0 local.get 1 local.get 2 table.fill $t))"#,
        small_tunables(),
        Vec::new(),
        multi_memory(),
    );
    m.call("set", &[Val::I64(2), Val::Ref(EXT)]);
    assert_eq!(m.call1("get", &[Val::I64(2)]), Val::Ref(EXT));
    assert_eq!(m.call1("size", &[]), Val::I64(3));
    assert_eq!(m.call1("grow", &[Val::I64(2)]), Val::I64(3));
    assert_eq!(m.call1("grow", &[Val::I64(-1)]), Val::I64(-1));
    m.call("fill", &[Val::I64(3), Val::Ref(EXT + 1), Val::I64(2)]);
    assert_eq!(m.call1("get", &[Val::I64(4)]), Val::Ref(EXT + 1));
    assert_eq!(m.call1("size", &[]), Val::I64(5));
}
