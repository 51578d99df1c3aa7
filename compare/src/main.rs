//! weft and Wasmtime side by side on the same inputs, interleaved: each
//! round runs every measurement for both runtimes one after the other, so
//! machine noise hits both alike; the report gives medians and weft's time
//! as a ratio of Wasmtime's (below 1: weft is faster).
//!
//! `cargo xtask bench --compare` (or `cargo run --release --manifest-path
//! compare/Cargo.toml [-- --quick] [--serving]`; `--serving` runs only the
//! serving section, `--only TEXT` only its configurations named with TEXT;
//! `--programs` only the C programs section, `src/programs.rs`, where
//! `--weft-no-interrupt` and `--weft-no-exceptions` turn those weft
//! features off in process; `--calls` only the two call rows).

use std::time::Instant;

mod programs;

// The weft benches' workload generators, shared so both harnesses compile
// the same modules.
#[path = "../../crates/api/benches/kernels/mod.rs"]
mod kernels;

use kernels::{many_functions, serving_module};

/// `add`, and `host_loop`: n calls of the host's no-op.
fn add_wat() -> String {
    format!(
        r#"(module
  (import "host" "nop" (func $nop (param i32) (result i32)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  {})"#,
        kernels::call_loop("host_loop", "$nop")
    )
}

/// Instantiation workload (b) of issue #12: one page and a small data
/// segment, read by the first call.
const SMALL: &str = r#"(module (memory 1) (data (i32.const 1024) "0123456789abcdef")
  (func (export "run") (result i32) (i32.load8_u (i32.const 1024))))"#;

/// Requests per second over `threads` threads doing `per_thread` requests
/// each; `request(i)` serves one request and returns its answer.
fn serve(threads: usize, per_thread: u32, request: impl Fn(u32) -> i32 + Sync) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for i in 0..per_thread {
                    std::hint::black_box(request(i));
                }
            });
        }
    });
    f64::from(per_thread) * threads as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One line of the report: weft's and Wasmtime's samples.
struct Row {
    what: String,
    unit: &'static str,
    weft: Vec<f64>,
    wasmtime: Vec<f64>,
}

impl Row {
    fn new(what: &str, unit: &'static str) -> Row {
        Row {
            what: what.into(),
            unit,
            weft: Vec::new(),
            wasmtime: Vec::new(),
        }
    }
}

/// Time per iteration of `f` over `n` iterations, in nanoseconds.
fn per_iter(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Runs the C programs section and prints it; a failure (the runtimes
/// disagree, a run or build failed) ends the process with status 1.
fn programs_section(quick: bool) {
    let rounds = if quick { 3 } else { 9 };
    match programs::section(rounds) {
        Ok(report) => print!("{report}"),
        Err(programs::Error::Skipped(why)) => println!("C programs: skipped: {why}"),
        Err(programs::Error::Failed(why)) => {
            println!("C programs: FAILED: {why}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--programs`: only the C programs section.
    if std::env::args().any(|a| a == "--programs") {
        programs_section(quick);
        return;
    }
    // `--serving`: only the serving section (for profiling it).
    let serving_only = std::env::args().any(|a| a == "--serving");
    // `--calls`: only the host→wasm and wasm→host rows, with more rounds
    // (for working on the call paths).
    let calls_only = std::env::args().any(|a| a == "--calls");
    let rounds = if quick {
        3
    } else if calls_only {
        31
    } else {
        15
    };
    let calls: u32 = if quick { 100_000 } else { 2_000_000 };
    let add_bytes = wat::parse_str(add_wat()).unwrap();
    let small_bytes = wat::parse_str(SMALL).unwrap();
    let medium = many_functions(if quick { 100 } else { 1_000 });
    let large = many_functions(if quick { 1_000 } else { 100_000 });

    // --- weft ---
    let w_engine = weft::Engine::default();
    let w_module = weft::Module::new(&w_engine, &add_bytes).unwrap();
    let mut w_linker = weft::Linker::<()>::new();
    w_linker.func_wrap("host", "nop", |x: i32| x + 1).unwrap();
    let mut w_store = weft::Store::new(&w_engine, ());
    let w_inst = w_linker.instantiate(&mut w_store, &w_module).unwrap();
    let w_add = w_inst
        .get_typed_func::<(i32, i32), i32>(&mut w_store, "add")
        .unwrap();
    let w_loop = w_inst
        .get_typed_func::<i32, i32>(&mut w_store, "host_loop")
        .unwrap();
    let mut w_pool_cfg = weft::Config::new();
    w_pool_cfg.allocation_strategy(weft::InstanceAllocationStrategy::Pooling(
        weft::PoolingAllocationConfig::default(),
    ));
    let w_pool_engine = weft::Engine::new(&w_pool_cfg).unwrap();
    let w_small = weft::Module::new(&w_pool_engine, &small_bytes).unwrap();
    let w_small_pre = weft::Linker::<()>::new().instantiate_pre(&w_small).unwrap();
    let w_small_od = weft::Module::new(&w_engine, &small_bytes).unwrap();
    let w_small_od_pre = weft::Linker::<()>::new()
        .instantiate_pre(&w_small_od)
        .unwrap();

    // --- Wasmtime ---
    let t_engine = wasmtime::Engine::default();
    let t_module = wasmtime::Module::new(&t_engine, &add_bytes).unwrap();
    let mut t_linker = wasmtime::Linker::<()>::new(&t_engine);
    t_linker.func_wrap("host", "nop", |x: i32| x + 1).unwrap();
    let mut t_store = wasmtime::Store::new(&t_engine, ());
    let t_inst = t_linker.instantiate(&mut t_store, &t_module).unwrap();
    let t_add = t_inst
        .get_typed_func::<(i32, i32), i32>(&mut t_store, "add")
        .unwrap();
    let t_loop = t_inst
        .get_typed_func::<i32, i32>(&mut t_store, "host_loop")
        .unwrap();
    let mut t_pool_cfg = wasmtime::Config::new();
    t_pool_cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
        wasmtime::PoolingAllocationConfig::default(),
    ));
    let t_pool_engine = wasmtime::Engine::new(&t_pool_cfg).unwrap();
    let t_small = wasmtime::Module::new(&t_pool_engine, &small_bytes).unwrap();
    let t_small_pre = wasmtime::Linker::<()>::new(&t_pool_engine)
        .instantiate_pre(&t_small)
        .unwrap();
    let t_small_od = wasmtime::Module::new(&t_engine, &small_bytes).unwrap();
    let t_small_od_pre = wasmtime::Linker::<()>::new(&t_engine)
        .instantiate_pre(&t_small_od)
        .unwrap();

    let mut rows = vec![
        Row::new("host→wasm call, TypedFunc i32 add", "ns"),
        Row::new("wasm→host call, typed no-op import in a loop", "ns"),
        Row::new("instantiate (b) + first call + drop, on demand", "µs"),
        Row::new(
            "instantiate (b) + first call + drop, pooling + InstancePre",
            "µs",
        ),
        Row::new(
            &format!("compile {:.0} KB, all cores", medium.len() as f64 / 1e3),
            "ms",
        ),
    ];
    let inst_n = calls / 200;
    for _ in 0..if serving_only { 0 } else { rounds } {
        rows[0].weft.push(per_iter(calls, |i| {
            std::hint::black_box(w_add.call(&mut w_store, (i as i32, 1)).unwrap());
        }));
        rows[0].wasmtime.push(per_iter(calls, |i| {
            std::hint::black_box(t_add.call(&mut t_store, (i as i32, 1)).unwrap());
        }));
        let n = calls / 1000;
        rows[1].weft.push(
            per_iter(n, |_| {
                std::hint::black_box(w_loop.call(&mut w_store, 1000).unwrap());
            }) / 1000.0,
        );
        rows[1].wasmtime.push(
            per_iter(n, |_| {
                std::hint::black_box(t_loop.call(&mut t_store, 1000).unwrap());
            }) / 1000.0,
        );
        if calls_only {
            continue;
        }
        for (row, w_pre, w_eng, t_pre, t_eng) in [
            (2, &w_small_od_pre, &w_engine, &t_small_od_pre, &t_engine),
            (
                3,
                &w_small_pre,
                &w_pool_engine,
                &t_small_pre,
                &t_pool_engine,
            ),
        ] {
            rows[row].weft.push(
                per_iter(inst_n, |_| {
                    let mut s = weft::Store::new(w_eng, ());
                    let i = w_pre.instantiate(&mut s).unwrap();
                    let f = i.get_typed_func::<(), i32>(&mut s, "run").unwrap();
                    std::hint::black_box(f.call(&mut s, ()).unwrap());
                }) / 1000.0,
            );
            rows[row].wasmtime.push(
                per_iter(inst_n, |_| {
                    let mut s = wasmtime::Store::new(t_eng, ());
                    let i = t_pre.instantiate(&mut s).unwrap();
                    let f = i.get_typed_func::<(), i32>(&mut s, "run").unwrap();
                    std::hint::black_box(f.call(&mut s, ()).unwrap());
                }) / 1000.0,
            );
        }
        let t = Instant::now();
        std::hint::black_box(weft::Module::new(&w_engine, &medium).unwrap());
        rows[4].weft.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        std::hint::black_box(wasmtime::Module::new(&t_engine, &medium).unwrap());
        rows[4].wasmtime.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // The large module once per runtime (seconds each).
    let mut big = Row::new(
        &format!(
            "compile {:.1} MB, all cores (one run)",
            large.len() as f64 / 1e6
        ),
        "ms",
    );
    if !serving_only && !calls_only {
        let t = Instant::now();
        drop(weft::Module::new(&w_engine, &large).unwrap());
        big.weft.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        drop(wasmtime::Module::new(&t_engine, &large).unwrap());
        big.wasmtime.push(t.elapsed().as_secs_f64() * 1e3);
        rows.push(big);
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let serving = [
        (
            "small: 1 MiB memory with 64 KiB data, 1 KiB input written, handler called",
            16,
            false,
            if quick { 2_000 } else { 20_000 },
            1usize << 20,
        ),
        (
            "dirty all: 16 MiB memory, the request writes every 4 KiB page",
            256,
            true,
            if quick { 10 } else { 300 },
            16 << 20,
        ),
    ]
    .map(|(title, pages, dirty_all, per_thread, keep)| {
        let shape = Shape {
            pages,
            dirty_all,
            keep,
        };
        let results = if calls_only {
            Vec::new()
        } else {
            serving_section(rounds.min(7), per_thread, cores, &shape)
        };
        (title, results)
    });
    println!(
        "weft vs Wasmtime 48.0.8 (same Cranelift 0.135.8), {cores} cores, median of {rounds} interleaved rounds"
    );
    println!("| measurement | weft | Wasmtime | weft / Wasmtime |");
    println!("|---|---|---|---|");
    for r in rows.into_iter().filter(|r| !r.weft.is_empty()) {
        let (w, t) = (median(r.weft), median(r.wasmtime));
        let fmt = |v: f64| {
            if v < 10.0 {
                format!("{v:.2} {}", r.unit)
            } else {
                format!("{v:.0} {}", r.unit)
            }
        };
        println!("| {} | {} | {} | {:.2}× |", r.what, fmt(w), fmt(t), w / t);
    }
    for (title, results) in serving {
        if calls_only {
            break;
        }
        println!();
        println!(
            "serving (issue #21), {title}; a fresh instance per request, {cores} threads; requests/s, median of rounds"
        );
        println!("| configuration | requests/s | vs Wasmtime pooling + InstancePre |");
        println!("|---|---|---|");
        let reference = results
            .iter()
            .find(|(n, _)| n.starts_with("Wasmtime, pooling + InstancePre (default"))
            .map(|r| r.1)
            .unwrap_or(1.0);
        for (name, rps) in results {
            println!("| {name} | {rps:.0} | {:.2}× |", rps / reference);
        }
    }
    if !serving_only && !calls_only {
        println!();
        programs_section(quick);
    }
}

/// One request shape of the serving section.
struct Shape {
    /// Memory size in 64 KiB pages.
    pages: u32,
    /// Whether the request also writes every 4 KiB page (`scribble`).
    dirty_all: bool,
    /// The resident budget both runtimes' pools are given in the
    /// "resident" rows.
    keep: usize,
}

fn serving_section(
    rounds: usize,
    per_thread: u32,
    threads: usize,
    shape: &Shape,
) -> Vec<(String, f64)> {
    let bytes = serving_module(shape.pages);
    let input: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    let input = &input;
    let dirty_all = shape.dirty_all;
    let mib = shape.keep >> 20;
    // weft
    let w_od = weft::Engine::default();
    let w_od_pre = weft::Linker::<()>::new()
        .instantiate_pre(&weft::Module::new(&w_od, &bytes).unwrap())
        .unwrap();
    let w_pooling = |keep: usize| {
        let mut p = weft::PoolingAllocationConfig::default();
        p.keep_resident_bytes(keep);
        let mut pc = weft::Config::new();
        pc.allocation_strategy(weft::InstanceAllocationStrategy::Pooling(p));
        let engine = weft::Engine::new(&pc).unwrap();
        let pre = weft::Linker::<()>::new()
            .instantiate_pre(&weft::Module::new(&engine, &bytes).unwrap())
            .unwrap();
        (engine, pre)
    };
    let (w_pool, w_pool_pre) = w_pooling(0);
    let (w_res, w_res_pre) = w_pooling(shape.keep);
    let make_pool = |pre: &weft::InstancePre<()>, policy| {
        let mut c = weft::InstancePoolConfig::default();
        c.max_size(threads).policy(policy);
        weft::InstancePool::new(pre.clone(), c, || ())
    };
    let w_reset = make_pool(&w_res_pre, weft::ReturnPolicy::Reset);
    let w_keep = make_pool(&w_pool_pre, weft::ReturnPolicy::KeepState);
    let weft_request = |store: &mut weft::Store<()>, inst: weft::Instance| {
        let mem = inst.get_memory(&mut *store, "mem").unwrap();
        mem.data_mut(&mut *store)[524_288..524_288 + 1024].copy_from_slice(input);
        let f = inst
            .get_typed_func::<i32, i32>(&mut *store, "handle")
            .unwrap();
        let h = f.call(&mut *store, 1024).unwrap();
        if dirty_all {
            let s = inst
                .get_typed_func::<i32, ()>(&mut *store, "scribble")
                .unwrap();
            s.call(&mut *store, h).unwrap();
        }
        h
    };
    // Wasmtime
    let t_od = wasmtime::Engine::default();
    let t_od_pre = wasmtime::Linker::<()>::new(&t_od)
        .instantiate_pre(&wasmtime::Module::new(&t_od, &bytes).unwrap())
        .unwrap();
    let t_pooling = |keep: usize| {
        let mut p = wasmtime::PoolingAllocationConfig::default();
        p.linear_memory_keep_resident(keep);
        let mut tc = wasmtime::Config::new();
        tc.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(p));
        let engine = wasmtime::Engine::new(&tc).unwrap();
        let pre = wasmtime::Linker::<()>::new(&engine)
            .instantiate_pre(&wasmtime::Module::new(&engine, &bytes).unwrap())
            .unwrap();
        (engine, pre)
    };
    let (t_pool, t_pool_pre) = t_pooling(0);
    let (t_res, t_res_pre) = t_pooling(shape.keep);
    let wasmtime_request = |store: &mut wasmtime::Store<()>, inst: wasmtime::Instance| {
        let mem = inst.get_memory(&mut *store, "mem").unwrap();
        mem.data_mut(&mut *store)[524_288..524_288 + 1024].copy_from_slice(input);
        let f = inst
            .get_typed_func::<i32, i32>(&mut *store, "handle")
            .unwrap();
        let h = f.call(&mut *store, 1024).unwrap();
        if dirty_all {
            let s = inst
                .get_typed_func::<i32, ()>(&mut *store, "scribble")
                .unwrap();
            s.call(&mut *store, h).unwrap();
        }
        h
    };
    type Run<'a> = Box<dyn Fn() -> i32 + Sync + 'a>;
    let weft_fresh = |engine: &'_ weft::Engine, pre: &'_ weft::InstancePre<()>| -> Run<'_> {
        let engine = engine.clone();
        let pre = pre.clone();
        Box::new(move || {
            let mut s = weft::Store::new(&engine, ());
            let i = pre.instantiate(&mut s).unwrap();
            weft_request(&mut s, i)
        })
    };
    let wasmtime_fresh = |engine: &wasmtime::Engine, pre: &wasmtime::InstancePre<()>| -> Run<'_> {
        let engine = engine.clone();
        let pre = pre.clone();
        Box::new(move || {
            let mut s = wasmtime::Store::new(&engine, ());
            let i = pre.instantiate(&mut s).unwrap();
            wasmtime_request(&mut s, i)
        })
    };
    let configs: Vec<(String, Run<'_>)> = vec![
        (
            "weft, on demand + InstancePre".into(),
            weft_fresh(&w_od, &w_od_pre),
        ),
        (
            "weft, pooling + InstancePre (pages dropped)".into(),
            weft_fresh(&w_pool, &w_pool_pre),
        ),
        (
            format!("weft, pooling + InstancePre ({mib} MiB resident)"),
            weft_fresh(&w_res, &w_res_pre),
        ),
        (
            format!("weft, InstancePool (reset on return, {mib} MiB resident)"),
            Box::new(|| {
                let mut g = w_reset.get().unwrap();
                let (s, i) = g.parts();
                weft_request(s, i)
            }),
        ),
        (
            "weft, InstancePool (keep state: not a fresh instance)".into(),
            Box::new(|| {
                let mut g = w_keep.get().unwrap();
                let (s, i) = g.parts();
                weft_request(s, i)
            }),
        ),
        (
            "Wasmtime, on demand + InstancePre".into(),
            wasmtime_fresh(&t_od, &t_od_pre),
        ),
        (
            "Wasmtime, pooling + InstancePre (default: pages dropped)".into(),
            wasmtime_fresh(&t_pool, &t_pool_pre),
        ),
        (
            format!("Wasmtime, pooling + InstancePre ({mib} MiB linear_memory_keep_resident)"),
            wasmtime_fresh(&t_res, &t_res_pre),
        ),
    ];
    // `--only TEXT`: just the configurations whose name contains TEXT.
    let only = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .unwrap_or_default();
    let configs: Vec<(String, Run<'_>)> = configs
        .into_iter()
        .filter(|(n, _)| n.contains(&only))
        .collect();
    let mut samples = vec![Vec::new(); configs.len()];
    for _ in 0..rounds {
        for ((_, run), s) in configs.iter().zip(&mut samples) {
            s.push(serve(threads, per_thread, |_| run()));
        }
    }
    configs
        .into_iter()
        .zip(samples)
        .map(|((n, _), v)| (n, median(v)))
        .collect()
}
