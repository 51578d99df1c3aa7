//! The cost of interruption checks on real C programs:
//! `cargo bench -p weft-wasi --bench interrupt_programs`.
//!
//! Each `tests/programs/bench_*.c` is compiled for wasm32-wasi (clang -O2,
//! wasi-libc), then run in-process, alternating an engine without
//! interruption checks and one with them (`Config::interruptible`, the
//! interrupt poll), for the same number of rounds; the report gives the
//! median run time of each and the overhead, per program and as a geometric
//! mean. Needs clang and wasi-libc; without them it says so and exits.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use weft::{Config, Engine, Module};
use weft_wasi::{OutputPipe, WasiCtxBuilder};

fn compile(src: &Path, out: &Path) -> Result<(), String> {
    let cc = std::env::var("WEFT_WASI_CC").unwrap_or_else(|_| "clang".into());
    let o = Command::new(cc)
        .args(["--target=wasm32-wasi", "-O2", "-o"])
        .arg(out)
        .arg(src)
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

fn run(engine: &Engine, module: &Module) -> (Duration, String) {
    let out = OutputPipe::new();
    let mut b = WasiCtxBuilder::new();
    b.arg("bench").stdout(out.clone());
    let t = Instant::now();
    let status = weft_wasi::run_command(engine, module, b.build()).expect("runs");
    let d = t.elapsed();
    assert_eq!(status, 0);
    (d, out.contents_string())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("WEFT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(9);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::temp_dir().join(format!("weft-ibench-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let engines = [
        Engine::default(),
        Engine::new(Config::new().interruptible(true)).unwrap(),
    ];
    let mut names: Vec<String> = std::fs::read_dir(root.join("tests/programs"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("bench_") && n.ends_with(".c"))
        .collect();
    names.sort();
    println!("interruption checks on C programs: median of {rounds} interleaved in-process runs");
    println!(
        "{:<14} {:>10} {:>10} {:>8}",
        "program", "no checks", "poll", ""
    );
    let mut ratios = Vec::new();
    for name in &names {
        let wasm = out.join(name.replace(".c", ".wasm"));
        if let Err(e) = compile(&root.join("tests/programs").join(name), &wasm) {
            println!("SKIPPED: no wasm32-wasi C toolchain (clang, wasi-libc): {e}");
            return;
        }
        let bytes = std::fs::read(&wasm).unwrap();
        let modules: Vec<Module> = engines
            .iter()
            .map(|e| Module::new(e, &bytes).unwrap())
            .collect();
        // Warm up, and check both configurations print the same.
        let outputs: Vec<String> = engines
            .iter()
            .zip(&modules)
            .map(|(e, m)| run(e, m).1)
            .collect();
        assert_eq!(outputs[0], outputs[1], "{name}: outputs differ");
        let mut times: [Vec<Duration>; 2] = Default::default();
        for _ in 0..rounds {
            for (i, (e, m)) in engines.iter().zip(&modules).enumerate() {
                times[i].push(run(e, m).0);
            }
        }
        let [a, b] = times.map(median);
        let r = b.as_secs_f64() / a.as_secs_f64();
        ratios.push(r);
        println!(
            "{:<14} {:>8.1}ms {:>8.1}ms {:>+7.1}%",
            name.trim_end_matches(".c"),
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3,
            (r - 1.0) * 100.0
        );
    }
    let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
    println!(
        "{:<14} {:>10} {:>10} {:>+7.1}%",
        "geomean",
        "",
        "",
        (geo - 1.0) * 100.0
    );
    let _ = std::fs::remove_dir_all(&out);
}
