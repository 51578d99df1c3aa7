use proptest::prelude::*;

use crate::harness::{Instance, Val};

fn binops_module() -> Box<Instance> {
    let mut src = String::from("(module\n");
    for ty in ["i32", "i64"] {
        for op in [
            "add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor", "shl",
            "shr_s", "shr_u", "rotl", "rotr",
        ] {
            src += &format!(
                "(func (export \"{ty}.{op}\") (param {ty} {ty}) (result {ty}) local.get 0 local.get 1 {ty}.{op})\n"
            );
        }
        for op in [
            "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u",
        ] {
            src += &format!(
                "(func (export \"{ty}.{op}\") (param {ty} {ty}) (result i32) local.get 0 local.get 1 {ty}.{op})\n"
            );
        }
        for op in ["clz", "ctz", "popcnt", "extend8_s", "extend16_s"] {
            src += &format!(
                "(func (export \"{ty}.{op}\") (param {ty}) (result {ty}) local.get 0 {ty}.{op})\n"
            );
        }
        src += &format!(
            "(func (export \"{ty}.eqz\") (param {ty}) (result i32) local.get 0 {ty}.eqz)\n"
        );
    }
    src += r#"
      (func (export "i64.extend32_s") (param i64) (result i64) local.get 0 i64.extend32_s)
      (func (export "i32.wrap_i64") (param i64) (result i32) local.get 0 i32.wrap_i64)
      (func (export "i64.extend_i32_s") (param i32) (result i64) local.get 0 i64.extend_i32_s)
      (func (export "i64.extend_i32_u") (param i32) (result i64) local.get 0 i64.extend_i32_u)
      (func (export "div_by_const") (param i32) (result i32) local.get 0 i32.const 7 i32.div_s)
      (func (export "rem_by_minus1") (param i32) (result i32) local.get 0 i32.const -1 i32.rem_s)
      (func (export "rem64_by_minus1") (param i64) (result i64) local.get 0 i64.const -1 i64.rem_s)
    )"#;
    Instance::new(&src)
}

fn i32_model(op: &str, a: i32, b: i32) -> Option<i32> {
    let (ua, ub) = (a as u32, b as u32);
    Some(match op {
        "add" => a.wrapping_add(b),
        "sub" => a.wrapping_sub(b),
        "mul" => a.wrapping_mul(b),
        "div_s" => a.checked_div(b)?,
        "div_u" => ua.checked_div(ub)? as i32,
        "rem_s" => {
            if b == 0 {
                return None;
            }
            a.wrapping_rem(b)
        }
        "rem_u" => ua.checked_rem(ub)? as i32,
        "and" => a & b,
        "or" => a | b,
        "xor" => a ^ b,
        "shl" => a.wrapping_shl(ub),
        "shr_s" => a.wrapping_shr(ub),
        "shr_u" => ua.wrapping_shr(ub) as i32,
        "rotl" => ua.rotate_left(ub % 32) as i32,
        "rotr" => ua.rotate_right(ub % 32) as i32,
        "eq" => (a == b) as i32,
        "ne" => (a != b) as i32,
        "lt_s" => (a < b) as i32,
        "lt_u" => (ua < ub) as i32,
        "gt_s" => (a > b) as i32,
        "gt_u" => (ua > ub) as i32,
        "le_s" => (a <= b) as i32,
        "le_u" => (ua <= ub) as i32,
        "ge_s" => (a >= b) as i32,
        "ge_u" => (ua >= ub) as i32,
        _ => unreachable!(),
    })
}

fn i64_model(op: &str, a: i64, b: i64) -> Option<i64> {
    let (ua, ub) = (a as u64, b as u64);
    Some(match op {
        "add" => a.wrapping_add(b),
        "sub" => a.wrapping_sub(b),
        "mul" => a.wrapping_mul(b),
        "div_s" => a.checked_div(b)?,
        "div_u" => ua.checked_div(ub)? as i64,
        "rem_s" => {
            if b == 0 {
                return None;
            }
            a.wrapping_rem(b)
        }
        "rem_u" => ua.checked_rem(ub)? as i64,
        "and" => a & b,
        "or" => a | b,
        "xor" => a ^ b,
        "shl" => a.wrapping_shl(ub as u32),
        "shr_s" => a.wrapping_shr(ub as u32),
        "shr_u" => ua.wrapping_shr(ub as u32) as i64,
        "rotl" => ua.rotate_left((ub % 64) as u32) as i64,
        "rotr" => ua.rotate_right((ub % 64) as u32) as i64,
        _ => unreachable!(),
    })
}

const OPS: [&str; 15] = [
    "add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor", "shl", "shr_s",
    "shr_u", "rotl", "rotr",
];
const CMPS: [&str; 10] = [
    "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u",
];

fn interesting_i32() -> impl Strategy<Value = i32> {
    prop_oneof![
        any::<i32>(),
        Just(0),
        Just(1),
        Just(-1),
        Just(i32::MIN),
        Just(i32::MAX),
        0..64i32,
    ]
}

fn interesting_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(0),
        Just(1),
        Just(-1),
        Just(i64::MIN),
        Just(i64::MAX),
        0..128i64,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn i32_binops_match_model(a in interesting_i32(), b in interesting_i32()) {
        thread_local!(static INST: std::cell::RefCell<Box<Instance>> = std::cell::RefCell::new(binops_module()));
        INST.with(|inst| {
            let mut inst = inst.borrow_mut();
            for op in OPS.iter().chain(CMPS.iter()) {
                // Trapping inputs cannot run here (no signal handlers).
                if let Some(want) = i32_model(op, a, b) {
                    let got = inst.call1(&format!("i32.{op}"), &[Val::I32(a), Val::I32(b)]);
                    assert_eq!(got, Val::I32(want), "i32.{op} {a} {b}");
                }
            }
        });
    }

    #[test]
    fn i64_binops_match_model(a in interesting_i64(), b in interesting_i64()) {
        thread_local!(static INST: std::cell::RefCell<Box<Instance>> = std::cell::RefCell::new(binops_module()));
        INST.with(|inst| {
            let mut inst = inst.borrow_mut();
            for op in OPS {
                if let Some(want) = i64_model(op, a, b) {
                    let got = inst.call1(&format!("i64.{op}"), &[Val::I64(a), Val::I64(b)]);
                    assert_eq!(got, Val::I64(want), "i64.{op} {a} {b}");
                }
            }
            let (ua, ub) = (a as u64, b as u64);
            let cmp = [a == b, a != b, a < b, ua < ub, a > b, ua > ub, a <= b, ua <= ub, a >= b, ua >= ub];
            for (op, want) in CMPS.iter().zip(cmp) {
                let got = inst.call1(&format!("i64.{op}"), &[Val::I64(a), Val::I64(b)]);
                assert_eq!(got, Val::I32(want as i32), "i64.{op} {a} {b}");
            }
        });
    }
}

#[test]
fn unary_integer_ops() {
    let mut m = binops_module();
    let c = |m: &mut Instance, f: &str, v: Val| m.call1(f, &[v]);
    assert_eq!(c(&mut m, "i32.clz", Val::I32(1)), Val::I32(31));
    assert_eq!(c(&mut m, "i32.clz", Val::I32(0)), Val::I32(32));
    assert_eq!(c(&mut m, "i32.ctz", Val::I32(0x80)), Val::I32(7));
    assert_eq!(c(&mut m, "i32.ctz", Val::I32(0)), Val::I32(32));
    assert_eq!(c(&mut m, "i32.popcnt", Val::I32(-1)), Val::I32(32));
    assert_eq!(c(&mut m, "i64.clz", Val::I64(1)), Val::I64(63));
    assert_eq!(c(&mut m, "i64.ctz", Val::I64(0)), Val::I64(64));
    assert_eq!(c(&mut m, "i64.popcnt", Val::I64(0x0f0f)), Val::I64(8));
    assert_eq!(c(&mut m, "i32.eqz", Val::I32(0)), Val::I32(1));
    assert_eq!(c(&mut m, "i32.eqz", Val::I32(5)), Val::I32(0));
    assert_eq!(c(&mut m, "i64.eqz", Val::I64(0)), Val::I32(1));
    assert_eq!(c(&mut m, "i64.eqz", Val::I64(i64::MIN)), Val::I32(0));
}

#[test]
fn sign_extension_and_wrapping() {
    let mut m = binops_module();
    let c = |m: &mut Instance, f: &str, v: Val| m.call1(f, &[v]);
    assert_eq!(c(&mut m, "i32.extend8_s", Val::I32(0x80)), Val::I32(-128));
    assert_eq!(c(&mut m, "i32.extend8_s", Val::I32(0x17f)), Val::I32(127));
    assert_eq!(
        c(&mut m, "i32.extend16_s", Val::I32(0x8000)),
        Val::I32(-32768)
    );
    assert_eq!(c(&mut m, "i64.extend8_s", Val::I64(0xff)), Val::I64(-1));
    assert_eq!(
        c(&mut m, "i64.extend16_s", Val::I64(0x1_7fff)),
        Val::I64(0x7fff)
    );
    assert_eq!(
        c(&mut m, "i64.extend32_s", Val::I64(0x8000_0000)),
        Val::I64(-0x8000_0000)
    );
    assert_eq!(
        c(&mut m, "i32.wrap_i64", Val::I64(0x1_2345_6789)),
        Val::I32(0x2345_6789)
    );
    assert_eq!(c(&mut m, "i64.extend_i32_s", Val::I32(-2)), Val::I64(-2));
    assert_eq!(
        c(&mut m, "i64.extend_i32_u", Val::I32(-2)),
        Val::I64(0xffff_fffe)
    );
}

#[test]
fn division_edge_cases_that_do_not_trap() {
    let mut m = binops_module();
    assert_eq!(m.call1("div_by_const", &[Val::I32(-15)]), Val::I32(-2));
    // MIN rem -1 is 0, not a trap.
    assert_eq!(m.call1("rem_by_minus1", &[Val::I32(i32::MIN)]), Val::I32(0));
    assert_eq!(
        m.call1("rem64_by_minus1", &[Val::I64(i64::MIN)]),
        Val::I64(0)
    );
    assert_eq!(
        m.call1("i32.rem_s", &[Val::I32(i32::MIN), Val::I32(-1)]),
        Val::I32(0)
    );
    assert_eq!(
        m.call1("i32.div_s", &[Val::I32(i32::MIN), Val::I32(1)]),
        Val::I32(i32::MIN)
    );
    assert_eq!(
        m.call1("i32.div_u", &[Val::I32(-1), Val::I32(2)]),
        Val::I32(i32::MAX)
    );
    assert_eq!(
        m.call1("i64.rem_s", &[Val::I64(-7), Val::I64(2)]),
        Val::I64(-1)
    );
}
