//! weft vs native on compute-heavy C programs: `cargo bench -p weft-cli`.
//!
//! Each of `tests/programs/bench_*.c` is compiled natively (cc -O2) and for
//! wasm32-wasi (clang -O2, wasi-libc; `bench_simd` with -O3 on both sides
//! and -msimd128 for wasm), then run alternately as a native
//! process and under `weft run`, and the ratio of median wall times is
//! reported (it includes weft's compile time, which is also reported apart).
//! Needs clang and wasi-libc; without them it says so and exits.

#[path = "build_c.rs"]
mod build_c;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn time(cmd: &mut Command) -> (Duration, String) {
    let t = Instant::now();
    let o = cmd.output().expect("runs");
    let d = t.elapsed();
    assert!(
        o.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&o.stderr)
    );
    (d, String::from_utf8_lossy(&o.stdout).into_owned())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::temp_dir().join(format!("weft-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let weft = PathBuf::from(env!("CARGO_BIN_EXE_weft"));
    let rounds = 5;
    println!("weft vs native, median of {rounds} alternating runs (wall time, whole process)");
    println!(
        "{:<12} {:>10} {:>10} {:>8} {:>12}",
        "program", "native", "weft", "ratio", "compile"
    );
    let mut ratios = Vec::new();
    for name in ["bench_sort", "bench_hash", "bench_float", "bench_simd"] {
        let src = root.join(format!("tests/programs/{name}.c"));
        let (nat, wasm) = (out.join(name), out.join(format!("{name}.wasm")));
        if let Err(e) =
            build_c::compile(&src, &nat, false).and_then(|()| build_c::compile(&src, &wasm, true))
        {
            println!("SKIPPED: {name}: cannot compile (needs cc, clang and wasi-libc): {e}");
            continue;
        }
        // Compile time alone: weft validate decodes; compile via a trivial run
        // is not separable from the CLI, so time Module::new in-process.
        let bytes = std::fs::read(&wasm).unwrap();
        let engine = weft::Engine::default();
        let t = Instant::now();
        weft::Module::new(&engine, &bytes).unwrap();
        let compile_time = t.elapsed();
        let (mut tn, mut tw) = (Vec::new(), Vec::new());
        let mut outputs = (String::new(), String::new());
        for _ in 0..rounds {
            let (d, o) = time(&mut Command::new(&nat));
            tn.push(d);
            outputs.0 = o;
            let (d, o) = time(Command::new(&weft).args(["run", "--no-cache"]).arg(&wasm));
            tw.push(d);
            outputs.1 = o;
        }
        assert_eq!(outputs.0, outputs.1, "{name}: weft and native disagree");
        let (n, w) = (median(tn), median(tw));
        let r = w.as_secs_f64() / n.as_secs_f64();
        ratios.push(r);
        println!(
            "{:<12} {:>8.0}ms {:>8.0}ms {:>7.2}x {:>10.1}ms",
            name,
            n.as_secs_f64() * 1e3,
            w.as_secs_f64() * 1e3,
            r,
            compile_time.as_secs_f64() * 1e3
        );
    }
    if !ratios.is_empty() {
        let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
        println!("{:<12} {:>10} {:>10} {:>7.2}x", "geomean", "", "", geo);
    }
    std::fs::remove_dir_all(&out).ok();
}
