use weft_decoder::ValType;

use crate::harness::{ImportVal, Instance, Val, f32v, f64v, small_tunables};

#[test]
fn get_and_set() {
    let mut m = Instance::with(
        r#"(module
          (import "env" "base" (global $base i32))
          (import "env" "mbase" (global $mbase (mut i64)))
          (global $c i32 (global.get $base))
          (global $counter (mut i32) (i32.const 0))
          (global $f (mut f32) (f32.const 1.5))
          (global $d (mut f64) (f64.const -2))
          (global $l (mut i64) (i64.const 0x1234567890))
          (func (export "incr") (result i32)
            global.get $counter global.get $c i32.add global.set $counter
            global.get $counter)
          (func (export "floats") (result f32 f64)
            global.get $f f32.const 2 f32.mul global.set $f
            global.get $d f64.const 0.5 f64.add global.set $d
            global.get $f global.get $d)
          (func (export "long") (param i64) (result i64)
            global.get $l local.get 0 i64.add global.set $l
            global.get $l)
          (func (export "imported_mut") (result i64)
            global.get $mbase i64.const 1 i64.add global.set $mbase
            global.get $mbase)
        )"#,
        small_tunables(),
        vec![
            ImportVal::Global(Val::I32(7)),
            ImportVal::Global(Val::I64(-1)),
        ],
    );
    assert_eq!(m.call1("incr", &[]), Val::I32(7));
    assert_eq!(m.call1("incr", &[]), Val::I32(14));
    assert_eq!(m.global(3, ValType::I32), Val::I32(14));
    assert_eq!(m.call("floats", &[]), vec![f32v(3.0), f64v(-1.5)]);
    assert_eq!(m.call("floats", &[]), vec![f32v(6.0), f64v(-1.0)]);
    assert_eq!(m.call1("long", &[Val::I64(1)]), Val::I64(0x1234567891));
    assert_eq!(m.call1("imported_mut", &[]), Val::I64(0));
    assert_eq!(m.call1("imported_mut", &[]), Val::I64(1));
    assert_eq!(m.global(1, ValType::I64), Val::I64(1));
}
