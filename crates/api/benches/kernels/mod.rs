//! WebAssembly kernels shared by the benchmarks: recursive fib, a tight
//! arithmetic loop and a memory scan (exported as `fib`, `loop`, `scan`;
//! the module that includes them needs a memory of at least 16 pages).
#![allow(
    dead_code,
    reason = "each bench that includes this module uses part of it"
)]

/// The three functions, as module fields in WebAssembly text.
pub const FIB_LOOP_SCAN: &str = r#"
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func (export "loop") (param i32) (result i32) (local i32 i32)
    (local.set 1 (i32.const 1))
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get 0)))
      (local.set 1 (i32.add (i32.mul (local.get 1) (i32.const 1664525)) (i32.const 1013904223)))
      (local.set 2 (i32.xor (local.get 2) (i32.rotl (local.get 1) (i32.const 7))))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l)))
    (local.get 2))
  (func (export "scan") (param i32) (result i64) (local i32 i64)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get 1) (local.get 0)))
      (local.set 2 (i64.add (local.get 2) (i64.load (local.get 1))))
      (local.set 1 (i32.add (local.get 1) (i32.const 8)))
      (br $l)))
    (local.get 2))
"#;

/// A module of `n` mid-sized exported functions (a loop with loads, stores
/// and a branch each), as binary WebAssembly: compile-time workloads.
pub fn many_functions(n: usize) -> Vec<u8> {
    let mut wat = String::from("(module (memory 1)\n");
    for i in 0..n {
        wat.push_str(&format!(
            "(func (export \"f{i}\") (param i32 i32) (result i32) (local i32)
               (local.set 2 (i32.const {i}))
               (block $d (loop $l
                 (br_if $d (i32.ge_u (local.get 2) (local.get 1)))
                 (local.set 0 (i32.add (local.get 0) (i32.mul (local.get 2) (i32.const 3))))
                 (i32.store (i32.and (local.get 2) (i32.const 1020)) (local.get 0))
                 (local.set 0 (i32.xor (local.get 0) (i32.load offset=4 (i32.and (local.get 0) (i32.const 1020)))))
                 (if (i32.gt_s (local.get 0) (i32.const 1000)) (then (local.set 0 (i32.shr_u (local.get 0) (i32.const 1)))))
                 (local.set 2 (i32.add (local.get 2) (i32.const 1)))
                 (br $l)))
               (local.get 0))\n"
        ));
    }
    wat.push(')');
    wat::parse_str(&wat).unwrap()
}
