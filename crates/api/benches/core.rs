//! Core execution benchmarks: `cargo xtask bench` (or `cargo bench -p weft`).
//!
//! - compile: Cranelift compile throughput on a generated module (reported
//!   per MB of wasm code by divan's bytes counter);
//! - fib(30): recursive calls;
//! - loop: a tight arithmetic loop;
//! - scan: a memory-scanning loop over 1 MiB;
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
  (memory 17)
  (func (export "id") (param i32) (result i32) (local.get 0))
  (func (export "host_loop") (param i32) (result i32) (local i32)
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get 0)))
      (local.set 1 (call $inc (local.get 1)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l)))
    (local.get 1))
  {}
)"#,
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
