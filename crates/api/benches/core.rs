//! Core execution benchmarks: `cargo xtask bench` (or `cargo bench -p weft`).
//!
//! - compile: Cranelift compile throughput on a generated module (reported
//!   per MB of wasm code by divan's bytes counter);
//! - fib(30): recursive calls;
//! - loop: a tight arithmetic loop;
//! - scan: a memory-scanning loop over 1 MiB (`i64` loads), and the same
//!   with `v128` loads and `i64x2.add` (scan_simd);
//! - call: one host→wasm call through `TypedFunc` (ns/call);
//! - host_call: one wasm→host call (ns/call, measured as a loop of 1000
//!   calls from wasm into a host function).

mod kernels;

use divan::{Bencher, black_box, counter::BytesCount};
use weft::{Engine, Instance, Linker, Module, Store, TypedFunc};

fn main() {
    divan::main();
}

fn kernels_wat() -> String {
    format!(
        r#"(module
  (import "host" "inc" (func $inc (param i32) (result i32)))
  (memory (export "mem") 17)
  (func (export "id") (param i32) (result i32) (local.get 0))
  {}
  (func (export "scan_simd") (param i32) (result i64) (local i32 v128)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get 1) (local.get 0)))
      (local.set 2 (i64x2.add (local.get 2) (v128.load (local.get 1))))
      (local.set 1 (i32.add (local.get 1) (i32.const 16)))
      (br $l)))
    (i64.add (i64x2.extract_lane 0 (local.get 2)) (i64x2.extract_lane 1 (local.get 2))))
  {}
)"#,
        kernels::call_loop("host_loop", "$inc"),
        kernels::FIB_LOOP_SCAN
    )
}

struct Kernels {
    store: Store<()>,
    inst: Instance,
}

fn kernels() -> Kernels {
    let engine = Engine::default();
    let module = Module::new(&engine, kernels_wat()).unwrap();
    let mut linker = Linker::new();
    linker
        .func_wrap("host", "inc", |x: i32| x + 1)
        .expect("a fresh name");
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &module).unwrap();
    Kernels { store, inst }
}

fn typed<P: weft::WasmList, R: weft::WasmList>(k: &mut Kernels, name: &str) -> TypedFunc<P, R> {
    k.inst.get_typed_func(&mut k.store, name).unwrap()
}

/// A module with many mid-sized functions, for compile throughput.
fn big_module() -> Vec<u8> {
    kernels::many_functions(400)
}

#[divan::bench(sample_count = 10)]
fn compile(b: Bencher) {
    let engine = Engine::default();
    let bytes = big_module();
    let code_len = bytes.len();
    b.counter(BytesCount::new(code_len))
        .bench(|| Module::new(&engine, black_box(&bytes)).unwrap());
}

#[divan::bench(sample_count = 20)]
fn fib30(b: Bencher) {
    let mut k = kernels();
    let f = typed::<i32, i32>(&mut k, "fib");
    b.bench_local(|| f.call(&mut k.store, black_box(30)).unwrap());
}

#[divan::bench(sample_count = 20)]
fn tight_loop_10m(b: Bencher) {
    let mut k = kernels();
    let f = typed::<i32, i32>(&mut k, "loop");
    b.bench_local(|| f.call(&mut k.store, black_box(10_000_000)).unwrap());
}

#[divan::bench(sample_count = 20)]
fn scan_1mib(b: Bencher) {
    let mut k = kernels();
    let f = typed::<i32, i64>(&mut k, "scan");
    b.counter(BytesCount::new(1usize << 20))
        .bench_local(|| f.call(&mut k.store, black_box(1 << 20)).unwrap());
}

#[divan::bench(sample_count = 20)]
fn scan_simd_1mib(b: Bencher) {
    let mut k = kernels();
    let f = typed::<i32, i64>(&mut k, "scan_simd");
    let scalar = typed::<i32, i64>(&mut k, "scan");
    // Both sum the same 1 MiB (written here, so the sums are not zero).
    let mem = k.inst.get_memory(&mut k.store, "mem").unwrap();
    for (i, b) in mem.data_mut(&mut k.store)[..1 << 20].iter_mut().enumerate() {
        *b = (i * 7 + i / 251) as u8;
    }
    let n = 1 << 20;
    assert_eq!(
        f.call(&mut k.store, n).unwrap(),
        scalar.call(&mut k.store, n).unwrap()
    );
    b.counter(BytesCount::new(1usize << 20))
        .bench_local(|| f.call(&mut k.store, black_box(n)).unwrap());
}

#[divan::bench]
fn host_to_wasm_call(b: Bencher) {
    let mut k = kernels();
    let f = typed::<i32, i32>(&mut k, "id");
    b.bench_local(|| f.call(&mut k.store, black_box(7)).unwrap());
}

#[divan::bench]
fn wasm_to_host_call_x1000(b: Bencher) {
    let mut k = kernels();
    let f = typed::<i32, i32>(&mut k, "host_loop");
    b.bench_local(|| f.call(&mut k.store, black_box(1000)).unwrap());
}
