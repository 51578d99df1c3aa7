//! Parallel compilation: `cargo bench -p weft --bench compile`.
//!
//! A generated module of 4 000 mid-sized functions (0.4 MB of wasm) is
//! compiled with `Config::parallel_compilation` off and on, interleaved
//! over rounds; the report gives the medians, the speed-up on this
//! machine's cores, the time to load the same module precompiled
//! (`Module::deserialize`, what `weft run` does on a cache hit) and the
//! process's peak resident memory.

mod kernels;

use std::time::Instant;

use weft::{Config, Engine, Module};

fn module(functions: usize) -> Vec<u8> {
    kernels::many_functions(functions)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, mut functions) = if quick { (1, 400) } else { (5, 4000) };
    if let Some(n) = std::env::var("WEFT_COMPILE_FUNCTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        functions = n;
    }
    let bytes = module(functions);
    let engines: Vec<Engine> = [false, true]
        .into_iter()
        .map(|parallel| {
            let mut c = Config::new();
            c.parallel_compilation(parallel);
            Engine::new(&c).unwrap()
        })
        .collect();
    let mut times = [Vec::new(), Vec::new()];
    let mut loads = Vec::new();
    let serialized = Module::new(&engines[1], &bytes)
        .unwrap()
        .serialize()
        .unwrap();
    for _ in 0..rounds {
        for (engine, out) in engines.iter().zip(times.iter_mut()) {
            let t = Instant::now();
            std::hint::black_box(Module::new(engine, &bytes).unwrap());
            out.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        // SAFETY: bytes this process just serialized with this engine.
        std::hint::black_box(unsafe { Module::deserialize(&engines[1], &serialized) }.unwrap());
        loads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let serial = median(times[0].clone());
    let parallel = median(times[1].clone());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "compile {functions} functions ({:.1} MB of wasm), median of {rounds} interleaved rounds: \
         one thread {serial:.0} ms, {cores} threads {parallel:.0} ms ({:.2}x speed-up)",
        bytes.len() as f64 / 1e6,
        serial / parallel
    );
    let load = median(loads);
    println!(
        "load the same module precompiled ({:.1} MB, Module::deserialize, as `weft run` does from its cache): \
         {load:.1} ms ({:.0}x faster than compiling on {cores} threads)",
        serialized.len() as f64 / 1e6,
        parallel / load
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        println!(
            "peak resident memory of this process: {}",
            line.trim_start_matches("VmHWM:").trim()
        );
    }
}
