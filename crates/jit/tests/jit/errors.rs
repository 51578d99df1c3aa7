use weft_decoder::wasmparser::WasmFeatures;
use weft_decoder::{Features, FuncType, Module, ValType};
use weft_jit::{CompileError, Compiler, TrapKind, Tunables};

use crate::harness::wat;

fn compile(src: &str) -> Result<weft_jit::CompiledModule, CompileError> {
    let compiler = Compiler::new(Tunables::default()).unwrap();
    let module = Module::decode(&wat(src)).unwrap();
    compiler.compile(&module)
}

#[test]
fn out_of_scope_instructions_are_unsupported() {
    // GC validates (with its features on) but is not translated.
    let cases = [
        ("(module (func (drop (ref.i31 (i32.const 1)))))", "RefI31"),
        (
            "(module (func (drop (any.convert_extern (ref.null extern)))))",
            "AnyConvertExtern",
        ),
    ];
    let features = Features(
        WasmFeatures::WASM2
            | WasmFeatures::EXCEPTIONS
            | WasmFeatures::GC
            | WasmFeatures::FUNCTION_REFERENCES,
    );
    let compiler = Compiler::new(Tunables::default()).unwrap();
    for (src, op) in cases {
        let module = Module::decode_with(&wat(src), features).unwrap();
        match compiler.compile(&module) {
            Err(CompileError::Unsupported(msg)) => assert!(msg.contains(op), "{msg}"),
            other => panic!("{src}: expected Unsupported, got {other:?}"),
        }
    }
}

#[test]
fn v128_compiles_everywhere_a_value_goes() {
    // Parameters, results (several: through the return area), locals,
    // globals, block parameters and calls.
    let src = r#"(module
      (global $g (mut v128) (v128.const i32x4 1 2 3 4))
      (func $f (param v128 i32) (result v128 v128)
        (local v128)
        (local.set 2 (global.get $g))
        (local.get 0)
        (block (param v128) (result v128))
        (local.get 2))
      (func (param v128) (result v128)
        (call $f (local.get 0) (i32.const 0))
        (global.set $g)))"#;
    compile(src).unwrap();
    let compiler = Compiler::new(Tunables::default()).unwrap();
    let ty = FuncType::new(
        [ValType::V128, ValType::I32],
        [ValType::V128, ValType::V128],
    );
    compiler.host_trampoline(&ty).unwrap();
}

#[test]
fn trap_sites_and_function_lookup() {
    let src = r#"(module
      (memory 1)
      (func $a (export "a") (param i32) (result i32)
        local.get 0 if unreachable end
        local.get 0 i32.const 3 i32.div_s)
      (func $b (param f64) (result i32) local.get 0 i32.trunc_f64_s)
      (func $c (param i32) (result i32) local.get 0 i32.load)
      (func $d (param i32) (result i32) local.get 0 call $c call $c))"#;
    let m = compile(src).unwrap();
    let (start, end) = m.code_range();
    assert!(start < end);
    let mut kinds = Vec::new();
    for pc in start..end {
        if let Some(k) = m.lookup_trap(pc) {
            kinds.push(k);
        }
    }
    assert!(
        kinds.contains(&TrapKind::UnreachableCodeReached),
        "{kinds:?}"
    );
    assert!(kinds.contains(&TrapKind::IntegerOverflow), "{kinds:?}");
    assert!(
        kinds.contains(&TrapKind::BadConversionToInteger),
        "{kinds:?}"
    );
    assert!(kinds.contains(&TrapKind::MemoryOutOfBounds), "{kinds:?}");
    // Non-leaf functions check the stack limit in their prologue.
    assert!(kinds.contains(&TrapKind::StackOverflow), "{kinds:?}");
    assert!(
        !kinds.contains(&TrapKind::IntegerDivisionByZero),
        "div by 3 needs no check"
    );
    assert_eq!(m.lookup_trap(end), None);
    assert_eq!(m.lookup_trap(start.wrapping_sub(1)), None);

    for i in 0..4 {
        assert_eq!(m.func_at(m.wasm_call(i) as usize), Some(i));
        assert_eq!(m.func_at(m.array_call(i) as usize), None);
    }
    assert_eq!(m.func_at(end), None);
    assert_eq!(m.func_at(0), None);
}

#[test]
fn host_trampoline_has_a_host_trap_site() {
    let compiler = Compiler::new(Tunables::default()).unwrap();
    let ty = FuncType::new([ValType::I32, ValType::F64], [ValType::I64, ValType::F32]);
    let t = compiler.host_trampoline(&ty).unwrap();
    let (start, end) = t.code_range();
    assert_eq!(start, t.wasm_call() as usize);
    let sites: Vec<_> = (start..end).filter_map(|pc| t.lookup_trap(pc)).collect();
    assert_eq!(sites, vec![TrapKind::Host]);
}

#[test]
fn trap_messages_follow_the_spec() {
    assert_eq!(TrapKind::StackOverflow.message(), "call stack exhausted");
    assert_eq!(
        TrapKind::MemoryOutOfBounds.message(),
        "out of bounds memory access"
    );
    assert_eq!(
        TrapKind::IntegerDivisionByZero.message(),
        "integer divide by zero"
    );
    assert_eq!(
        TrapKind::BadConversionToInteger.message(),
        "invalid conversion to integer"
    );
    assert_eq!(TrapKind::UnreachableCodeReached.message(), "unreachable");
    assert_eq!(TrapKind::IntegerOverflow.to_string(), "integer overflow");
    assert_eq!(
        TrapKind::TableOutOfBounds.message(),
        "out of bounds table access"
    );
    assert_eq!(TrapKind::UndefinedElement.message(), "undefined element");
    assert_eq!(
        TrapKind::IndirectCallToNull.message(),
        "uninitialized element"
    );
    assert_eq!(
        TrapKind::BadSignature.message(),
        "indirect call type mismatch"
    );
}

#[test]
fn every_opt_level_compiles() {
    for opt_level in [
        weft_jit::OptLevel::None,
        weft_jit::OptLevel::Speed,
        weft_jit::OptLevel::SpeedAndSize,
    ] {
        let compiler = Compiler::new(Tunables {
            opt_level,
            ..Tunables::default()
        })
        .unwrap();
        let module = Module::decode(&wat(
            "(module (func (export \"f\") (param i32) (result i32) local.get 0 i32.const 1 i32.add))",
        ))
        .unwrap();
        let m = compiler.compile(&module).unwrap();
        assert!(m.code_range().0 < m.code_range().1);
    }
}

#[test]
fn empty_module_compiles() {
    let m = compile("(module)").unwrap();
    assert_eq!(m.offsets().num_defined_funcs(), 0);
}
