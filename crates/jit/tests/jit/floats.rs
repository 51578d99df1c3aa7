use crate::harness::{Instance, Val, f32v, f64v};

fn float_module() -> Box<Instance> {
    let mut src = String::from("(module\n");
    for ty in ["f32", "f64"] {
        for op in ["add", "sub", "mul", "div", "min", "max", "copysign"] {
            src += &format!(
                "(func (export \"{ty}.{op}\") (param {ty} {ty}) (result {ty}) local.get 0 local.get 1 {ty}.{op})\n"
            );
        }
        for op in ["abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt"] {
            src += &format!(
                "(func (export \"{ty}.{op}\") (param {ty}) (result {ty}) local.get 0 {ty}.{op})\n"
            );
        }
        for op in ["eq", "ne", "lt", "gt", "le", "ge"] {
            src += &format!(
                "(func (export \"{ty}.{op}\") (param {ty} {ty}) (result i32) local.get 0 local.get 1 {ty}.{op})\n"
            );
        }
        for ity in ["i32", "i64"] {
            for s in ["s", "u"] {
                src += &format!(
                    "(func (export \"{ity}.trunc_{ty}_{s}\") (param {ty}) (result {ity}) local.get 0 {ity}.trunc_{ty}_{s})\n"
                );
                src += &format!(
                    "(func (export \"{ity}.trunc_sat_{ty}_{s}\") (param {ty}) (result {ity}) local.get 0 {ity}.trunc_sat_{ty}_{s})\n"
                );
                src += &format!(
                    "(func (export \"{ty}.convert_{ity}_{s}\") (param {ity}) (result {ty}) local.get 0 {ty}.convert_{ity}_{s})\n"
                );
            }
        }
    }
    src += r#"
      (func (export "f32.demote_f64") (param f64) (result f32) local.get 0 f32.demote_f64)
      (func (export "f64.promote_f32") (param f32) (result f64) local.get 0 f64.promote_f32)
      (func (export "i32.reinterpret_f32") (param f32) (result i32) local.get 0 i32.reinterpret_f32)
      (func (export "f32.reinterpret_i32") (param i32) (result f32) local.get 0 f32.reinterpret_i32)
      (func (export "i64.reinterpret_f64") (param f64) (result i64) local.get 0 i64.reinterpret_f64)
      (func (export "f64.reinterpret_i64") (param i64) (result f64) local.get 0 f64.reinterpret_i64)
      (func (export "consts") (result f32 f64) f32.const -0x1.8p1 f64.const nan:0x4)
    )"#;
    Instance::new(&src)
}

fn is_canonical_nan32(v: Val) -> bool {
    matches!(v, Val::F32(b) if b & 0x7fff_ffff == 0x7fc0_0000)
}

fn is_arithmetic_nan32(v: Val) -> bool {
    matches!(v, Val::F32(b) if b & 0x7fc0_0000 == 0x7fc0_0000)
}

fn is_canonical_nan64(v: Val) -> bool {
    matches!(v, Val::F64(b) if b & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000)
}

#[test]
fn arithmetic() {
    let mut m = float_module();
    assert_eq!(m.call1("f32.add", &[f32v(1.5), f32v(2.25)]), f32v(3.75));
    assert_eq!(m.call1("f32.sub", &[f32v(1.5), f32v(2.25)]), f32v(-0.75));
    assert_eq!(m.call1("f32.mul", &[f32v(1.5), f32v(-2.0)]), f32v(-3.0));
    assert_eq!(
        m.call1("f32.div", &[f32v(1.0), f32v(0.0)]),
        f32v(f32::INFINITY)
    );
    assert_eq!(m.call1("f64.add", &[f64v(0.1), f64v(0.2)]), f64v(0.1 + 0.2));
    assert_eq!(
        m.call1("f64.div", &[f64v(-1.0), f64v(0.0)]),
        f64v(f64::NEG_INFINITY)
    );
    assert_eq!(m.call1("f64.sqrt", &[f64v(2.0)]), f64v(2f64.sqrt()));
    assert_eq!(m.call1("f32.sqrt", &[f32v(-0.0)]), f32v(-0.0));
    assert!(is_canonical_nan32(
        m.call1("f32.div", &[f32v(0.0), f32v(0.0)])
    ));
    assert!(is_canonical_nan64(m.call1("f64.sqrt", &[f64v(-1.0)])));
    assert!(m.call1("f64.sqrt", &[f64v(-1.0)]).f64().is_nan());
    // NaN operands give arithmetic NaNs.
    let nan_payload = Val::F32(0x7fc0_1234);
    assert!(is_arithmetic_nan32(
        m.call1("f32.add", &[nan_payload, f32v(1.0)])
    ));
    assert_eq!(
        m.call("consts", &[]),
        vec![f32v(-3.0), Val::F64(0x7ff0_0000_0000_0004)]
    );
}

#[test]
fn sign_ops_are_bitwise() {
    let mut m = float_module();
    assert_eq!(
        m.call1("f32.neg", &[Val::F32(0x7fc0_0001)]),
        Val::F32(0xffc0_0001)
    );
    assert_eq!(
        m.call1("f32.abs", &[Val::F32(0xffc0_0001)]),
        Val::F32(0x7fc0_0001)
    );
    assert_eq!(m.call1("f64.neg", &[f64v(0.0)]), f64v(-0.0));
    assert_eq!(m.call1("f64.abs", &[f64v(-0.0)]), f64v(0.0));
    assert_eq!(
        m.call1("f32.copysign", &[f32v(2.0), f32v(-0.0)]),
        f32v(-2.0)
    );
    assert_eq!(
        m.call1(
            "f64.copysign",
            &[f64v(-2.0), Val::F64(0x7ff8_0000_0000_0000)]
        ),
        f64v(2.0)
    );
}

#[test]
fn rounding() {
    let mut m = float_module();
    // nearest: ties to even.
    for (x, want) in [
        (0.5f32, 0.0f32),
        (1.5, 2.0),
        (2.5, 2.0),
        (-0.5, -0.0),
        (-1.5, -2.0),
        (3.7, 4.0),
    ] {
        assert_eq!(
            m.call1("f32.nearest", &[f32v(x)]),
            f32v(want),
            "nearest {x}"
        );
    }
    for (x, want) in [
        (0.5f64, 0.0f64),
        (2.5, 2.0),
        (-2.5, -2.0),
        (4503599627370497.0, 4503599627370497.0),
    ] {
        assert_eq!(
            m.call1("f64.nearest", &[f64v(x)]),
            f64v(want),
            "nearest {x}"
        );
    }
    assert_eq!(m.call1("f32.nearest", &[f32v(-0.0)]), f32v(-0.0));
    assert_eq!(m.call1("f32.ceil", &[f32v(-0.5)]), f32v(-0.0));
    assert_eq!(m.call1("f32.floor", &[f32v(-0.5)]), f32v(-1.0));
    assert_eq!(m.call1("f64.trunc", &[f64v(-1.9)]), f64v(-1.0));
    assert_eq!(m.call1("f64.ceil", &[f64v(1.1)]), f64v(2.0));
    assert_eq!(
        m.call1("f64.floor", &[f64v(f64::NEG_INFINITY)]),
        f64v(f64::NEG_INFINITY)
    );
    assert!(is_canonical_nan64(
        m.call1("f64.floor", &[Val::F64(0x7ff8_0000_0000_0000)])
    ));
}

#[test]
fn min_max_zero_and_nan() {
    let mut m = float_module();
    assert_eq!(m.call1("f32.min", &[f32v(0.0), f32v(-0.0)]), f32v(-0.0));
    assert_eq!(m.call1("f32.min", &[f32v(-0.0), f32v(0.0)]), f32v(-0.0));
    assert_eq!(m.call1("f32.max", &[f32v(0.0), f32v(-0.0)]), f32v(0.0));
    assert_eq!(m.call1("f32.max", &[f32v(-0.0), f32v(0.0)]), f32v(0.0));
    assert_eq!(m.call1("f64.min", &[f64v(0.0), f64v(-0.0)]), f64v(-0.0));
    assert_eq!(m.call1("f64.max", &[f64v(-0.0), f64v(0.0)]), f64v(0.0));
    assert_eq!(m.call1("f64.min", &[f64v(1.0), f64v(-3.0)]), f64v(-3.0));
    assert_eq!(
        m.call1("f32.max", &[f32v(1.0), f32v(f32::INFINITY)]),
        f32v(f32::INFINITY)
    );
    let nan = f32v(f32::NAN);
    assert!(is_arithmetic_nan32(m.call1("f32.min", &[nan, f32v(1.0)])));
    assert!(is_arithmetic_nan32(m.call1("f32.max", &[f32v(1.0), nan])));
    assert!(is_canonical_nan64(
        m.call1("f64.min", &[f64v(f64::NAN), f64v(-0.0)])
    ));
}

#[test]
fn comparisons_with_nan() {
    let mut m = float_module();
    let nan = f64v(f64::NAN);
    assert_eq!(m.call1("f64.eq", &[nan, nan]), Val::I32(0));
    assert_eq!(m.call1("f64.ne", &[nan, nan]), Val::I32(1));
    assert_eq!(m.call1("f64.lt", &[nan, f64v(1.0)]), Val::I32(0));
    assert_eq!(m.call1("f64.ge", &[nan, f64v(1.0)]), Val::I32(0));
    assert_eq!(m.call1("f32.eq", &[f32v(0.0), f32v(-0.0)]), Val::I32(1));
    assert_eq!(m.call1("f32.le", &[f32v(-1.0), f32v(-1.0)]), Val::I32(1));
    assert_eq!(m.call1("f32.gt", &[f32v(2.0), f32v(-1.0)]), Val::I32(1));
}

#[test]
fn conversions() {
    let mut m = float_module();
    assert_eq!(m.call1("i32.trunc_f32_s", &[f32v(-3.9)]), Val::I32(-3));
    assert_eq!(
        m.call1("i32.trunc_f64_u", &[f64v(4294967295.9)]),
        Val::I32(-1)
    );
    assert_eq!(
        m.call1("i64.trunc_f64_s", &[f64v(-9.2e18)]),
        Val::I64(-9_200_000_000_000_000_000)
    );
    assert_eq!(
        m.call1("i64.trunc_f32_u", &[f32v(1.8e19)]),
        Val::I64(1.8e19f32 as u64 as i64)
    );
    assert_eq!(
        m.call1("i32.trunc_f32_s", &[f32v(-2147483648.0)]),
        Val::I32(i32::MIN)
    );
    assert_eq!(
        m.call1("i32.trunc_f64_s", &[f64v(-2147483648.9)]),
        Val::I32(i32::MIN)
    );
    assert_eq!(m.call1("i32.trunc_f64_u", &[f64v(-0.9)]), Val::I32(0));

    assert_eq!(
        m.call1("f32.convert_i32_u", &[Val::I32(-1)]),
        f32v(4294967296.0)
    );
    assert_eq!(
        m.call1("f64.convert_i64_u", &[Val::I64(-1)]),
        f64v(18446744073709551616.0)
    );
    assert_eq!(
        m.call1("f32.convert_i64_s", &[Val::I64(i64::MIN)]),
        f32v(-9223372036854775808.0)
    );
    // Rounds to nearest even: 2^24 + 1 is not representable in f32.
    assert_eq!(
        m.call1("f32.convert_i32_s", &[Val::I32(16777217)]),
        f32v(16777216.0)
    );
    assert_eq!(m.call1("f64.convert_i32_s", &[Val::I32(-7)]), f64v(-7.0));
    assert_eq!(
        m.call1("f32.convert_i64_u", &[Val::I64(0x0020_0000_2000_0001)]),
        f32v(0x0020_0000_2000_0001u64 as f32)
    );

    assert_eq!(
        m.call1("f32.demote_f64", &[f64v(1e300)]),
        f32v(f32::INFINITY)
    );
    assert_eq!(m.call1("f32.demote_f64", &[f64v(0.1)]), f32v(0.1));
    assert_eq!(
        m.call1("f64.promote_f32", &[f32v(0.1)]),
        f64v(0.1f32 as f64)
    );
    assert!(is_canonical_nan32(
        m.call1("f32.demote_f64", &[f64v(f64::NAN)])
    ));

    assert_eq!(
        m.call1("i32.reinterpret_f32", &[f32v(-0.0)]),
        Val::I32(i32::MIN)
    );
    assert_eq!(
        m.call1("f32.reinterpret_i32", &[Val::I32(0x7fa0_0000)]),
        Val::F32(0x7fa0_0000)
    );
    assert_eq!(
        m.call1("i64.reinterpret_f64", &[f64v(1.0)]),
        Val::I64(0x3ff0_0000_0000_0000)
    );
    assert_eq!(
        m.call1("f64.reinterpret_i64", &[Val::I64(0x7ff4_0000_0000_0001)]),
        Val::F64(0x7ff4_0000_0000_0001)
    );
}

#[test]
fn saturating_truncation() {
    let mut m = float_module();
    let nan32 = f32v(f32::NAN);
    let nan64 = f64v(f64::NAN);
    assert_eq!(m.call1("i32.trunc_sat_f32_s", &[nan32]), Val::I32(0));
    assert_eq!(
        m.call1("i32.trunc_sat_f32_s", &[f32v(3e9)]),
        Val::I32(i32::MAX)
    );
    assert_eq!(
        m.call1("i32.trunc_sat_f32_s", &[f32v(-3e9)]),
        Val::I32(i32::MIN)
    );
    assert_eq!(m.call1("i32.trunc_sat_f32_u", &[f32v(-1.0)]), Val::I32(0));
    assert_eq!(m.call1("i32.trunc_sat_f64_u", &[f64v(5e9)]), Val::I32(-1));
    assert_eq!(m.call1("i32.trunc_sat_f64_u", &[nan64]), Val::I32(0));
    assert_eq!(
        m.call1("i64.trunc_sat_f64_s", &[f64v(f64::INFINITY)]),
        Val::I64(i64::MAX)
    );
    assert_eq!(
        m.call1("i64.trunc_sat_f64_s", &[f64v(f64::NEG_INFINITY)]),
        Val::I64(i64::MIN)
    );
    assert_eq!(m.call1("i64.trunc_sat_f32_u", &[f32v(1e20)]), Val::I64(-1));
    assert_eq!(m.call1("i64.trunc_sat_f32_u", &[f32v(-0.9)]), Val::I64(0));
    assert_eq!(
        m.call1("i64.trunc_sat_f64_u", &[f64v(123.9)]),
        Val::I64(123)
    );
    assert_eq!(m.call1("i64.trunc_sat_f32_s", &[nan32]), Val::I64(0));
}
