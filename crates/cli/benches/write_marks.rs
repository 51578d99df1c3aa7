//! What write marks cost running code: `cargo xtask bench write_marks` (or
//! `cargo bench -p weft-cli --bench write_marks`).
//!
//! With `PoolingAllocationConfig::write_marks`, compiled code sets a byte
//! in a side table after every store to a 32-bit memory, so that a pool's
//! reset needs no page-table scan. This runs the C programs of
//! `tests/programs/bench_*.c` (built as for `cargo bench -p weft-cli
//! --bench programs`) in process through weft-wasi under two pooling
//! engines that differ only in `write_marks`, alternating which goes first
//! round by round, and reports the median run time of each and their
//! ratio, with the geometric mean. What the marks save per reset is in
//! `cargo bench -p weft --bench instantiate` and `--bench serving`.
//! Needs clang and wasi-libc; without them it says so and exits.
//! `--quick`: fewer rounds.

#[path = "build_c.rs"]
mod build_c;

use std::path::Path;
use std::time::{Duration, Instant};

use weft::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store,
};

fn engine(marks: bool) -> Engine {
    let mut p = PoolingAllocationConfig::default();
    p.total_instances(4)
        .total_memories(4)
        .total_tables(4)
        .write_marks(marks);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    Engine::new(&c).expect("engine")
}

/// `_start` in a fresh store with stdout captured: the time and the output.
fn run(pre: &InstancePre<weft_wasi::WasiCtx>, engine: &Engine) -> (Duration, Vec<u8>) {
    let out = weft_wasi::OutputPipe::new();
    let ctx = weft_wasi::WasiCtxBuilder::new().stdout(out.clone()).build();
    let t = Instant::now();
    let mut store = Store::new(engine, ctx);
    let inst = pre.instantiate(&mut store).expect("instantiates");
    let start = inst
        .get_typed_func::<(), ()>(&mut store, "_start")
        .expect("_start");
    if let Err(e) = start.call(&mut store, ()) {
        assert_eq!(weft_wasi::I32Exit::from_error(&e), Some(0), "{e}");
    }
    drop(store);
    (t.elapsed(), out.contents())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 9 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs");
    let out = std::env::temp_dir().join(format!("weft-marks-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("tests/programs")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            (name.starts_with("bench_") && name.ends_with(".c")).then_some(name)
        })
        .collect();
    names.sort();
    let engines = [engine(false), engine(true)];
    let mut rows = Vec::new();
    for name in &names {
        let wasm = out.join(name.replace(".c", ".wasm"));
        if let Err(e) = build_c::compile(&root.join(name), &wasm, true) {
            println!(
                "skipped: cannot build {name} for wasm32-wasi (clang and wasi-libc needed): {e}"
            );
            let _ = std::fs::remove_dir_all(&out);
            return;
        }
        let bytes = std::fs::read(&wasm).expect("built module");
        let pres: Vec<InstancePre<weft_wasi::WasiCtx>> = engines
            .iter()
            .map(|e| {
                let mut linker = Linker::new();
                weft_wasi::add_to_linker(&mut linker, |c| c).expect("wasi");
                let module = Module::new(e, &bytes).expect("compiles");
                linker.instantiate_pre(&module).expect("links")
            })
            .collect();
        let mut times = [Vec::new(), Vec::new()];
        let mut outputs = [Vec::new(), Vec::new()];
        for r in 0..rounds {
            let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let (d, o) = run(&pres[i], &engines[i]);
                times[i].push(d);
                outputs[i] = o;
            }
        }
        assert_eq!(
            outputs[0], outputs[1],
            "{name}: the two engines printed different output"
        );
        let [off, on] = times.map(median);
        rows.push((name.clone(), off, on));
    }
    let _ = std::fs::remove_dir_all(&out);
    println!(
        "\nwrite marks: C programs in process (weft-wasi), pooling engines with write_marks off and on, median of {rounds} alternating rounds"
    );
    println!("| program | marks off | marks on | on / off |");
    println!("|---|---:|---:|---:|");
    let mut log_sum = 0.0;
    for (name, off, on) in &rows {
        let ratio = on.as_secs_f64() / off.as_secs_f64();
        log_sum += ratio.ln();
        println!(
            "| {} | {:.1} ms | {:.1} ms | {ratio:.3}× |",
            name.trim_end_matches(".c"),
            off.as_secs_f64() * 1e3,
            on.as_secs_f64() * 1e3
        );
    }
    if !rows.is_empty() {
        println!(
            "| geomean | | | {:.3}× |",
            (log_sum / rows.len() as f64).exp()
        );
    }
}
