use crate::harness::{HostCtx, ImportVal, Instance, Val, ValRaw, f32v, f64v, small_tunables};

#[test]
fn direct_calls_and_recursion() {
    let mut m = Instance::new(
        r#"(module
          (func $fib (export "fib") (param i32) (result i32)
            local.get 0 i32.const 2 i32.lt_u
            if (result i32)
              local.get 0
            else
              local.get 0 i32.const 1 i32.sub call $fib
              local.get 0 i32.const 2 i32.sub call $fib
              i32.add
            end)
          (func $even (export "even") (param i64) (result i32)
            local.get 0 i64.eqz if (result i32) i32.const 1
            else local.get 0 i64.const 1 i64.sub call $odd end)
          (func $odd (param i64) (result i32)
            local.get 0 i64.eqz if (result i32) i32.const 0
            else local.get 0 i64.const 1 i64.sub call $even end)
          (func $swap (param i32 f64) (result f64 i32) local.get 1 local.get 0)
          (func (export "call_swap") (param i32 f64) (result f64 i32)
            local.get 0 local.get 1 call $swap)
          (func $many (param i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64) (result f64)
            local.get 0 f64.convert_i32_s
            local.get 1 f64.convert_i64_s f64.add
            local.get 2 f64.promote_f32 f64.add
            local.get 3 f64.add
            local.get 4 f64.convert_i32_s f64.add
            local.get 5 f64.convert_i64_s f64.add
            local.get 6 f64.promote_f32 f64.add
            local.get 7 f64.add
            local.get 8 f64.convert_i32_s f64.mul
            local.get 9 f64.convert_i64_s f64.sub
            local.get 10 f64.promote_f32 f64.add
            local.get 11 f64.add)
          (func (export "many_args") (result f64)
            i32.const 1 i64.const 2 f32.const 3 f64.const 4
            i32.const 5 i64.const 6 f32.const 7 f64.const 8
            i32.const 2 i64.const 10 f32.const 0.5 f64.const 0.25
            call $many)
          (func $five (result i32 i64 f32 f64 i32)
            i32.const 1 i64.const 2 f32.const 3 f64.const 4 i32.const 5)
          (func (export "five") (result i32 i64 f32 f64 i32) call $five)
          (func (export "sum_five") (result f64) (local i32 i64 f32 f64 i32)
            call $five local.set 4 local.set 3 local.set 2 local.set 1 local.set 0
            local.get 0 local.get 4 i32.sub f64.convert_i32_s
            local.get 3 f64.add)
        )"#,
    );
    assert_eq!(m.call1("fib", &[Val::I32(20)]), Val::I32(6765));
    assert_eq!(m.call1("even", &[Val::I64(1000)]), Val::I32(1));
    assert_eq!(m.call1("even", &[Val::I64(777)]), Val::I32(0));
    assert_eq!(
        m.call("call_swap", &[Val::I32(3), f64v(2.5)]),
        vec![f64v(2.5), Val::I32(3)]
    );
    // ((1+2+3+4+5+6+7+8) * 2) - 10 + 0.5 + 0.25
    assert_eq!(m.call1("many_args", &[]), f64v(62.75));
    assert_eq!(
        m.call("five", &[]),
        vec![Val::I32(1), Val::I64(2), f32v(3.0), f64v(4.0), Val::I32(5)]
    );
    assert_eq!(m.call1("sum_five", &[]), f64v(0.0));
}

/// Host callback: `(i32 a, i64 b) -> (i64 a+b, i32 a*2, f64 0.5)`; counts calls.
unsafe extern "C" fn host_add(
    ctx: *mut u8,
    caller: *mut u8,
    values: *mut ValRaw,
    len: usize,
) -> u32 {
    assert!(!caller.is_null());
    assert_eq!(len, 3);
    // SAFETY: the host context is a `HostCtx` and `values` holds `len`
    // slots, per the host trampoline contract.
    unsafe {
        (*(ctx as *mut HostCtx)).calls += 1;
        let v = std::slice::from_raw_parts_mut(values, len);
        let a = v[0].to_val(weft_decoder::ValType::I32).i32();
        let b = v[1].to_val(weft_decoder::ValType::I64).i64();
        v[0] = ValRaw::from_val(Val::I64(i64::from(a) + b));
        v[1] = ValRaw::from_val(Val::I32(a * 2));
        v[2] = ValRaw::from_val(f64v(0.5));
    }
    0
}

/// Host callback: `(f32) -> f32`, doubling.
unsafe extern "C" fn host_double(
    _ctx: *mut u8,
    _caller: *mut u8,
    values: *mut ValRaw,
    len: usize,
) -> u32 {
    assert_eq!(len, 1);
    // SAFETY: one slot, per the contract.
    unsafe {
        let x = (*values).to_val(weft_decoder::ValType::F32).f32();
        *values = ValRaw::from_val(f32v(x * 2.0));
    }
    0
}

/// Host callback with no params or results.
unsafe extern "C" fn host_nothing(
    ctx: *mut u8,
    _caller: *mut u8,
    _values: *mut ValRaw,
    len: usize,
) -> u32 {
    assert_eq!(len, 1);
    // SAFETY: the host context is a `HostCtx`.
    unsafe { (*(ctx as *mut HostCtx)).calls += 1 };
    0
}

#[test]
fn imported_host_functions() {
    let mut m = Instance::with(
        r#"(module
          (import "env" "add" (func $add (param i32 i64) (result i64 i32 f64)))
          (import "env" "double" (func $double (param f32) (result f32)))
          (import "env" "nothing" (func $nothing))
          (func (export "call_add") (param i32 i64) (result i64 i32 f64)
            local.get 0 local.get 1 call $add)
          (func (export "combine") (result f64) (local $x f64)
            i32.const 20 i64.const 22 call $add
            ;; stack: i64 i32 f64
            f64.const 1 f64.add
            local.set $x drop drop
            call $nothing call $nothing
            f32.const 1.25 call $double f64.promote_f32
            local.get $x f64.add)
        )"#,
        small_tunables(),
        vec![
            ImportVal::Host(host_add),
            ImportVal::Host(host_double),
            ImportVal::Host(host_nothing),
        ],
    );
    assert_eq!(
        m.call("call_add", &[Val::I32(-3), Val::I64(10)]),
        vec![Val::I64(7), Val::I32(-6), f64v(0.5)]
    );
    assert_eq!(m.call1("combine", &[]), f64v(4.0));
    assert_eq!(m.host_ctxs[0].calls, 2);
    assert_eq!(m.host_ctxs[2].calls, 2);
}

#[test]
fn imported_wasm_functions_from_another_instance() {
    let mut callee = Instance::new(
        r#"(module
          (global $g (mut i32) (i32.const 100))
          (func (export "bump") (param i32) (result i32 i32)
            global.get $g local.get 0 i32.add global.set $g
            global.get $g local.get 0))
        "#,
    );
    let bump = callee.export_wasm("bump");
    let mut caller = Instance::with(
        r#"(module
          (import "m" "bump" (func $bump (param i32) (result i32 i32)))
          (func (export "twice") (result i32)
            i32.const 1 call $bump drop drop
            i32.const 2 call $bump i32.add))
        "#,
        small_tunables(),
        vec![bump],
    );
    // The callee runs with its own vmctx: its global goes 100 -> 101 -> 103.
    assert_eq!(caller.call1("twice", &[]), Val::I32(105));
    assert_eq!(callee.global(0, weft_decoder::ValType::I32), Val::I32(103));
}

#[test]
fn every_function_starts_at_the_isa_preferred_alignment() {
    // Functions of odd sizes, so that unaligned placement would show.
    let mut src = String::from("(module");
    for i in 0..20 {
        src.push_str(&format!(
            "(func (result i32) {} i32.const {i})",
            "i32.const 1 drop ".repeat(i)
        ));
    }
    src.push(')');
    let module = weft_decoder::Module::decode(&crate::harness::wat(&src)).unwrap();
    let compiler = weft_jit::Compiler::new(weft_jit::Tunables::default()).unwrap();
    let compiled = compiler.compile(&module).unwrap();
    let align = if cfg!(target_arch = "x86_64") { 32 } else { 16 };
    for i in 0..20 {
        let addr = compiled.wasm_call(i) as usize;
        assert_eq!(addr % align, 0, "function {i} at {addr:#x}");
    }
}

/// Exceptions against the harness's fake runtime: a throw two calls down
/// (with a field computed by a call of a function that cannot throw)
/// reaches the try_table's clause with its fields; a clause for another tag
/// passes it on; an uncaught one is left pending with the callers' results
/// unused.
#[test]
fn exceptions_reach_their_handlers_through_calls() {
    use weft_decoder::Features;
    use weft_decoder::wasmparser::WasmFeatures as F;
    let features = Features(F::WASM2 | F::EXCEPTIONS);
    let mut m = Instance::with_features(
        r#"(module
          (tag $a (param i32 i64))
          (tag $b)
          (func $pure (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))
          (func $throw (param i32) (result i32)
            (throw $a (call $pure (local.get 0)) (i64.const 5)))
          (func $mid (param i32) (result i32) (i32.add (call $throw (local.get 0)) (i32.const 1000)))
          (func (export "catch_a") (param i32) (result i64) (local $f i64)
            (block $none
              (block $h (result i32 i64)
                (try_table (catch $b $none) (catch $a $h) (drop (call $mid (local.get 0))))
                (return (i64.const -1)))
              (local.set $f)
              (return (i64.add (i64.extend_i32_u) (local.get $f))))
            (i64.const -2))
          (func (export "catch_b_only") (param i32) (result i32)
            (block $h
              (try_table (catch $b $h) (return (call $mid (local.get 0)))))
            (i32.const -2)))"#,
        small_tunables(),
        Vec::new(),
        features,
    );
    // The clause gets both fields: 7 * 3 = 21 and 5.
    assert_eq!(m.call1("catch_a", &[Val::I32(7)]), Val::I64(26));
    assert_eq!(m.store.exception, 0, "caught");
    assert_eq!(m.exceptions.len(), 1);
    let raw = m.exceptions[0].1.clone();
    assert_eq!(i32::from_le_bytes(raw[0].0[..4].try_into().unwrap()), 21);
    assert_eq!(i64::from_le_bytes(raw[1].0[..8].try_into().unwrap()), 5);
    m.call("catch_b_only", &[Val::I32(2)]);
    assert_eq!(m.store.exception, 2, "uncaught: still pending");
    assert_eq!(m.store.exception_tag, 1, "tag $a");
}
