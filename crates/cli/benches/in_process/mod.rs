//! Running the C benchmark programs in process under several engines, for
//! the benches that compare engine settings (`levers.rs`,
//! `write_marks.rs`): the programs of `tests/programs/bench_*.c` built for
//! wasm32-wasi (as `build_c.rs` says), each run under every engine with the
//! order rotated round by round, outputs compared between engines, and a
//! table of each engine's median run time as a ratio to the first's.

use std::path::Path;
use std::time::{Duration, Instant};

use weft::{Engine, InstancePre, Linker, Module, Store};

use crate::build_c;

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

/// Runs every program under every engine of `engines` (the first is the
/// baseline) and prints the table under `title`. `--quick` in the
/// arguments: fewer rounds. Without clang and wasi-libc it says so and
/// returns.
pub fn compare_engines(title: &str, engines: &[(&str, Engine)]) {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 9 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs");
    let out = std::env::temp_dir().join(format!("weft-engines-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("tests/programs")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            (name.starts_with("bench_") && name.ends_with(".c")).then_some(name)
        })
        .collect();
    names.sort();
    let n = engines.len();
    // Per program: the median time under each engine.
    let mut rows: Vec<(String, Vec<Duration>)> = Vec::new();
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
            .map(|(_, e)| {
                let mut linker = Linker::new();
                weft_wasi::add_to_linker(&mut linker, |c| c).expect("wasi");
                let module = Module::new(e, &bytes).expect("compiles");
                linker.instantiate_pre(&module).expect("links")
            })
            .collect();
        let mut times = vec![Vec::new(); n];
        let mut outputs = vec![Vec::new(); n];
        for r in 0..rounds {
            for k in 0..n {
                // Rotate the order so no engine always runs first.
                let i = (k + r) % n;
                let (d, o) = run(&pres[i], &engines[i].1);
                times[i].push(d);
                outputs[i] = o;
            }
        }
        for (i, o) in outputs.iter().enumerate() {
            assert_eq!(
                o, &outputs[0],
                "{name}: \"{}\" printed other output than \"{}\"",
                engines[i].0, engines[0].0
            );
        }
        rows.push((name.clone(), times.into_iter().map(median).collect()));
    }
    let _ = std::fs::remove_dir_all(&out);
    println!(
        "\n{title}: C programs in process (weft-wasi), median of {rounds} rounds (engine order rotated), run time as a ratio to the first engine"
    );
    print!("| program | {} |", engines[0].0);
    for (name, _) in &engines[1..] {
        print!(" {name} |");
    }
    println!();
    println!("|---|---:|{}", "---:|".repeat(n - 1));
    let mut logs = vec![0.0; n];
    for (name, t) in &rows {
        print!(
            "| {} | {:.1} ms |",
            name.trim_end_matches(".c"),
            t[0].as_secs_f64() * 1e3
        );
        for i in 1..n {
            let r = t[i].as_secs_f64() / t[0].as_secs_f64();
            logs[i] += r.ln();
            print!(" {r:.3}× |");
        }
        println!();
    }
    if !rows.is_empty() {
        print!("| geomean | |");
        for l in &logs[1..] {
            print!(" {:.3}× |", (l / rows.len() as f64).exp());
        }
        println!();
    }
}
