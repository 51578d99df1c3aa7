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

/// An exported function `name` that calls `callee` (an `(i32) -> i32`
/// function, e.g. `$inc`) `n` times in a loop, threading the value
/// through: `(func (export name) (param n i32) (result i32))`.
pub fn call_loop(name: &str, callee: &str) -> String {
    format!(
        r#"(func (export "{name}") (param i32) (result i32) (local i32)
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get 0)))
      (local.set 1 (call {callee} (local.get 1)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l)))
    (local.get 1))"#
    )
}

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

/// The serving workload of issue #21, as binary WebAssembly: a memory of
/// `pages` 64 KiB pages (exported as `mem`) with a 64 KiB data segment at
/// 0. A request writes its input at 512 KiB and calls `handle(len)`, which
/// hashes the input against the data; `scribble` writes one word into
/// every 4 KiB of the whole memory (a request that dirties all of it).
pub fn serving_module(pages: u32) -> Vec<u8> {
    let mut data = String::new();
    for i in 0..65536u32 {
        data.push_str(&format!(
            "\\{:02x}",
            (i.wrapping_mul(2_654_435_761) >> 24) as u8
        ));
    }
    wat::parse_str(format!(
        r#"(module (memory (export "mem") {pages} {pages}) (data (i32.const 0) "{data}")
          (func (export "handle") (param $len i32) (result i32) (local $h i32) (local $i i32)
            (local.set $h (i32.const 0x811c9dc5))
            (block $d (loop $l
              (br_if $d (i32.ge_u (local.get $i) (local.get $len)))
              (local.set $h (i32.mul
                (i32.xor (local.get $h)
                  (i32.xor (i32.load8_u offset=524288 (local.get $i))
                           (i32.load8_u (i32.and (i32.mul (local.get $i) (i32.const 64)) (i32.const 65535)))))
                (i32.const 0x01000193)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $l)))
            (local.get $h))
          (func (export "scribble") (param $v i32) (local $a i32)
            (block $d (loop $l
              (br_if $d (i32.ge_u (local.get $a) (i32.mul (memory.size) (i32.const 65536))))
              (i32.store (local.get $a) (local.get $v))
              (local.set $a (i32.add (local.get $a) (i32.const 4096)))
              (br $l)))))"#
    ))
    .unwrap()
}
