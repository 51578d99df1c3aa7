use crate::harness::{Instance, Val};

#[test]
fn blocks_loops_and_branches() {
    let mut m = Instance::new(
        r#"(module
          (func (export "fac") (param i64) (result i64) (local i64)
            i64.const 1 local.set 1
            block
              loop
                local.get 0 i64.eqz br_if 1
                local.get 1 local.get 0 i64.mul local.set 1
                local.get 0 i64.const 1 i64.sub local.set 0
                br 0
              end
            end
            local.get 1)
          (func (export "fib") (param i32) (result i32) (local i32 i32 i32)
            i32.const 0 local.set 1
            i32.const 1 local.set 2
            block
              loop
                local.get 0 i32.eqz br_if 1
                local.get 1 local.get 2 i32.add local.set 3
                local.get 2 local.set 1
                local.get 3 local.set 2
                local.get 0 i32.const 1 i32.sub local.set 0
                br 0
              end
            end
            local.get 1)
          (func (export "if_else") (param i32) (result i32)
            local.get 0
            if (result i32) i32.const 10 else i32.const 20 end)
          (func (export "if_no_else") (param i32) (result i32) (local i32)
            i32.const 5 local.set 1
            local.get 0
            if local.get 1 i32.const 1 i32.add local.set 1 end
            local.get 1)
          (func (export "nested_br") (param i32) (result i32)
            block (result i32)
              block (result i32)
                i32.const 1
                local.get 0
                br_if 1
                drop
                i32.const 2
              end
              i32.const 100 i32.add
            end)
          (func (export "early_return") (param i32) (result i32)
            local.get 0 i32.const 3 i32.gt_s
            if i32.const 99 return end
            local.get 0)
          (func (export "select") (param i32 i64 i64) (result i64)
            local.get 1 local.get 2 local.get 0 select)
          (func (export "typed_select") (param i32 f64 f64) (result f64)
            local.get 1 local.get 2 local.get 0 select (result f64))
          (func (export "nop_drop") (result i32)
            nop i32.const 1 i32.const 2 drop nop)
          (func (export "loop_result") (result i32) (local i32)
            loop (result i32)
              local.get 0 i32.const 1 i32.add local.tee 0
              local.get 0 i32.const 10 i32.lt_u br_if 0
            end)
        )"#,
    );
    assert_eq!(
        m.call1("fac", &[Val::I64(20)]),
        Val::I64(2_432_902_008_176_640_000)
    );
    assert_eq!(m.call1("fac", &[Val::I64(0)]), Val::I64(1));
    assert_eq!(m.call1("fib", &[Val::I32(30)]), Val::I32(832_040));
    assert_eq!(m.call1("if_else", &[Val::I32(1)]), Val::I32(10));
    assert_eq!(m.call1("if_else", &[Val::I32(0)]), Val::I32(20));
    assert_eq!(m.call1("if_no_else", &[Val::I32(1)]), Val::I32(6));
    assert_eq!(m.call1("if_no_else", &[Val::I32(0)]), Val::I32(5));
    assert_eq!(m.call1("nested_br", &[Val::I32(1)]), Val::I32(1));
    assert_eq!(m.call1("nested_br", &[Val::I32(0)]), Val::I32(102));
    assert_eq!(m.call1("early_return", &[Val::I32(7)]), Val::I32(99));
    assert_eq!(m.call1("early_return", &[Val::I32(2)]), Val::I32(2));
    assert_eq!(
        m.call1("select", &[Val::I32(1), Val::I64(-4), Val::I64(8)]),
        Val::I64(-4)
    );
    assert_eq!(
        m.call1("select", &[Val::I32(0), Val::I64(-4), Val::I64(8)]),
        Val::I64(8)
    );
    assert_eq!(
        m.call1(
            "typed_select",
            &[
                Val::I32(0),
                crate::harness::f64v(1.5),
                crate::harness::f64v(2.5)
            ]
        ),
        crate::harness::f64v(2.5)
    );
    assert_eq!(m.call1("nop_drop", &[]), Val::I32(1));
    assert_eq!(m.call1("loop_result", &[]), Val::I32(10));
}

#[test]
fn br_table() {
    let mut m = Instance::new(
        r#"(module
          (func (export "switch") (param i32) (result i32)
            block
              block
                block
                  block
                    local.get 0
                    br_table 0 1 2 3
                  end
                  i32.const 100 return
                end
                i32.const 101 return
              end
              i32.const 102 return
            end
            i32.const 103)
          (func (export "with_value") (param i32) (result i32)
            block (result i32)
              block (result i32)
                i32.const 7
                local.get 0
                br_table 0 1 0
              end
              i32.const 1000 i32.add
            end)
          (func (export "to_loop") (param i32) (result i32) (local i32)
            loop
              local.get 1 i32.const 1 i32.add local.set 1
              block
                local.get 1 local.get 0 i32.lt_u
                br_table 0 1
              end
            end
            local.get 1)
        )"#,
    );
    for (i, want) in [(0, 100), (1, 101), (2, 102), (3, 103), (4, 103), (-1, 103)] {
        assert_eq!(
            m.call1("switch", &[Val::I32(i)]),
            Val::I32(want),
            "switch {i}"
        );
    }
    assert_eq!(m.call1("with_value", &[Val::I32(0)]), Val::I32(1007));
    assert_eq!(m.call1("with_value", &[Val::I32(1)]), Val::I32(7));
    assert_eq!(m.call1("with_value", &[Val::I32(9)]), Val::I32(1007));
    assert_eq!(m.call1("to_loop", &[Val::I32(5)]), Val::I32(5));
}

#[test]
fn multi_value_blocks() {
    let mut m = Instance::new(
        r#"(module
          (type $ii_i (func (param i32 i32) (result i32)))
          (type $i_ii (func (param i32) (result i32 i32)))
          (type $ii_ii (func (param i32 i32) (result i32 i32)))
          (func (export "block_params") (param i32 i32) (result i32)
            local.get 0 local.get 1
            block (type $ii_i) i32.sub end)
          (func (export "block_results") (param i32) (result i32 i32)
            local.get 0
            block (type $i_ii) i32.const 3 end)
          (func (export "if_params") (param i32 i32 i32) (result i32)
            local.get 0 local.get 1
            local.get 2
            if (type $ii_i) i32.add else i32.mul end)
          (func (export "if_params_no_else") (param i32 i32) (result i32 i32)
            local.get 0
            local.get 1
            if (type $i_ii) i32.const 1 i32.add i32.const 7 else i32.const 8 end)
          (func (export "loop_params") (param i32) (result i32)
            ;; sum 1..n with the accumulator and counter on the stack
            i32.const 0 local.get 0
            loop (type $ii_ii)
              local.tee 0 i32.add local.get 0
              i32.const 1 i32.sub
              local.tee 0 local.get 0 br_if 0
            end
            drop)
          (func (export "br_with_values") (param i32) (result i32 i64)
            block (result i32 i64)
              i32.const 1 i64.const 2
              local.get 0 br_if 0
              drop drop
              i32.const 3 i64.const 4
            end)
        )"#,
    );
    assert_eq!(
        m.call1("block_params", &[Val::I32(10), Val::I32(3)]),
        Val::I32(7)
    );
    assert_eq!(
        m.call("block_results", &[Val::I32(9)]),
        vec![Val::I32(9), Val::I32(3)]
    );
    assert_eq!(
        m.call1("if_params", &[Val::I32(6), Val::I32(7), Val::I32(1)]),
        Val::I32(13)
    );
    assert_eq!(
        m.call1("if_params", &[Val::I32(6), Val::I32(7), Val::I32(0)]),
        Val::I32(42)
    );
    assert_eq!(
        m.call("if_params_no_else", &[Val::I32(4), Val::I32(1)]),
        vec![Val::I32(5), Val::I32(7)]
    );
    assert_eq!(
        m.call("if_params_no_else", &[Val::I32(4), Val::I32(0)]),
        vec![Val::I32(4), Val::I32(8)]
    );
    assert_eq!(m.call1("loop_params", &[Val::I32(100)]), Val::I32(5050));
    assert_eq!(
        m.call("br_with_values", &[Val::I32(1)]),
        vec![Val::I32(1), Val::I64(2)]
    );
    assert_eq!(
        m.call("br_with_values", &[Val::I32(0)]),
        vec![Val::I32(3), Val::I64(4)]
    );
}

#[test]
fn unreachable_code_is_skipped() {
    let mut m = Instance::new(
        r#"(module
          (func (export "after_br") (result i32)
            block (result i32)
              i32.const 1
              br 0
              i32.const 2 i32.add
              block loop i32.const 0 if else end end end
              unreachable
            end)
          (func (export "after_return") (param i32) (result i32)
            local.get 0
            if (result i32)
              i32.const 5 return
            else
              i32.const 6
            end)
          (func (export "both_arms_leave") (param i32) (result i32)
            block (result i32)
              local.get 0
              if
                i32.const 1 br 1
              else
                i32.const 2 br 1
              end
              i32.const 3
            end)
          (func (export "dead_unreachable") (param i32) (result i32)
            local.get 0
            if unreachable end
            i32.const 42)
          (func (export "br_table_dead") (param i32) (result i32)
            block (result i32)
              i32.const 9 local.get 0 br_table 0 0
              i32.add
            end)
          (func (export "loop_never_exits_normally") (param i32) (result i32)
            loop (result i32)
              local.get 0
              return
            end)
        )"#,
    );
    assert_eq!(m.call1("after_br", &[]), Val::I32(1));
    assert_eq!(m.call1("after_return", &[Val::I32(1)]), Val::I32(5));
    assert_eq!(m.call1("after_return", &[Val::I32(0)]), Val::I32(6));
    assert_eq!(m.call1("both_arms_leave", &[Val::I32(1)]), Val::I32(1));
    assert_eq!(m.call1("both_arms_leave", &[Val::I32(0)]), Val::I32(2));
    assert_eq!(m.call1("dead_unreachable", &[Val::I32(0)]), Val::I32(42));
    assert_eq!(m.call1("br_table_dead", &[Val::I32(3)]), Val::I32(9));
    assert_eq!(
        m.call1("loop_never_exits_normally", &[Val::I32(8)]),
        Val::I32(8)
    );
}
