//! How long an interrupt takes to stop running or blocked wasm:
//! `cargo bench -p weft-wasi --bench interrupt_latency`.
//!
//! For each case a guest is started, another thread calls
//! `InterruptHandle::interrupt` once the guest is busy (23 ms later: not a multiple of the 5 ms WASI slice), and
//! the time from that call to the guest's call returning is recorded.
//! Reports min / median / p99 / max over the rounds, per case. The target is
//! under 10 ms.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft::{Engine, Linker, MemoryType, Module, SharedMemory, Store};
use weft_wasi::{WasiCtx, WasiCtxBuilder};

const CASES: &[(&str, &str)] = &[
    ("tight loop", r#"(func (export "go") (loop (br 0)))"#),
    (
        "calls in a loop",
        r#"(func $f (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
           (func (export "go") (local i32)
             (loop (local.set 0 (call $f (local.get 0))) (br 0)))"#,
    ),
    (
        "host calls in a loop",
        r#"(import "host" "tick" (func $tick))
           (func (export "go") (loop (call $tick) (br 0)))"#,
    ),
    (
        "memory.fill of 1 GiB, repeated",
        r#"(memory 16384 16384)
           (func (export "go")
             (loop (memory.fill (i32.const 0) (i32.const 1) (i32.const 0x40000000)) (br 0)))"#,
    ),
    (
        "memory.atomic.wait32, no timeout",
        r#"(import "env" "mem" (memory 1 1 shared))
           (func (export "go")
             (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))"#,
    ),
    (
        "WASI poll_oneoff, sleeping 1 h",
        r#"(import "wasi_snapshot_preview1" "poll_oneoff"
             (func $poll (param i32 i32 i32 i32) (result i32)))
           (func (export "go")
             (i32.store8 (i32.const 8) (i32.const 0))
             (i32.store (i32.const 16) (i32.const 1))
             (i64.store (i32.const 24) (i64.const 3600000000000))
             (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))))"#,
    ),
];

/// One round: the latency of one interrupt.
fn round(engine: &Engine, module: &Module, shared: &SharedMemory) -> Duration {
    let mut store = Store::new(engine, WasiCtxBuilder::new().build());
    let mut linker = Linker::<WasiCtx>::new();
    weft_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    linker.func_wrap("host", "tick", || {}).unwrap();
    linker.define("env", "mem", shared.clone()).unwrap();
    let inst = linker.instantiate(&mut store, module).unwrap();
    let go = inst.get_typed_func::<(), ()>(&mut store, "go").unwrap();
    let handle = store.interrupt_handle();
    let sent: Arc<Mutex<Option<Instant>>> = Arc::default();
    let s = sent.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(23));
        *s.lock().unwrap() = Some(Instant::now());
        handle.interrupt();
    });
    let r = go.call(&mut store, ());
    let back = Instant::now();
    t.join().unwrap();
    assert!(r.is_err(), "the guest stopped by itself");
    let sent = sent.lock().unwrap().expect("interrupt sent");
    back.saturating_duration_since(sent)
}

fn main() {
    let rounds: usize = std::env::var("WEFT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let engine = Engine::default();
    let shared = SharedMemory::new(&engine, MemoryType::shared(1, 1)).unwrap();
    println!("interrupt latency (interrupt() to the call returning), {rounds} rounds per case");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "case", "min", "median", "p99", "max"
    );
    for (name, body) in CASES {
        let wat = format!("(module {body} (memory (export \"memory\") 1))");
        // Cases that define their own memory must not get a second one.
        let wat = if body.contains("(memory 16384") || body.contains("\"mem\"") {
            format!("(module {body})")
        } else {
            wat
        };
        let module = Module::new(&engine, &wat).unwrap();
        let mut v: Vec<Duration> = (0..rounds)
            .map(|_| round(&engine, &module, &shared))
            .collect();
        v.sort();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        let us = |d: Duration| format!("{:.0}µs", d.as_secs_f64() * 1e6);
        println!(
            "{name:<34} {:>9} {:>9} {:>9} {:>9}",
            us(v[0]),
            us(at(0.5)),
            us(at(0.99)),
            us(v[v.len() - 1])
        );
    }
}
