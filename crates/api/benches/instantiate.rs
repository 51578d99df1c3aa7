//! Instantiation cost: `cargo bench -p weft --bench instantiate`.
//!
//! Three modules, as in issue #12: (a) no memory, (b) one page and a small
//! data segment, (c) 16 MiB of initial memory and a 64 KiB data segment.
//! Each is instantiated through an `InstancePre` into a fresh store that is
//! then dropped (what a server does per request), under each allocation
//! configuration. Configurations run interleaved, round after round, so
//! machine noise hits them alike; the report gives the median per
//! instantiation and each configuration's ratio to the first.

use std::time::Instant;

use weft::{
    Config, Engine, InstanceAllocationStrategy, InstancePool, InstancePoolConfig, InstancePre,
    Linker, Module, PoolingAllocationConfig, ReturnPolicy, Store,
};

const MODULES: [(&str, &str); 3] = [
    (
        "(a) no memory",
        r#"(module (func (export "run") (result i32) (i32.const 7)))"#,
    ),
    (
        "(b) 1 page + 100 B data",
        r#"(module (memory 1) (data (i32.const 1024) "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789")
           (func (export "run") (result i32) (i32.load8_u (i32.const 1024))))"#,
    ),
    ("(c) 16 MiB + 64 KiB data", ""),
];

fn module_c() -> Vec<u8> {
    // 64 KiB of non-zero data at 1 MiB, in a 256-page (16 MiB) memory.
    let mut data = String::new();
    for i in 0..65536u32 {
        data.push_str(&format!("\\{:02x}", (i % 251) as u8 + 1));
    }
    wat::parse_str(format!(
        r#"(module (memory 256) (data (i32.const 1048576) "{data}")
           (func (export "run") (result i32) (i32.load8_u (i32.const 1048576))))"#
    ))
    .unwrap()
}

/// One row of the report: a way to get a ready instance of module `m`,
/// timed over `n` iterations: nanoseconds per iteration for the whole
/// cycle, and for the instantiation (or `get`) alone.
struct Case {
    name: String,
    run: Box<dyn Fn(usize, u32) -> (f64, f64)>,
}

fn pres(config: &Config) -> (Engine, Vec<InstancePre<()>>) {
    let engine = Engine::new(config).unwrap();
    let linker = Linker::<()>::new();
    let pres = MODULES
        .iter()
        .map(|(_, wat)| {
            let bytes = if wat.is_empty() {
                module_c()
            } else {
                wat::parse_str(wat).unwrap()
            };
            let module = Module::new(&engine, bytes).unwrap();
            linker.instantiate_pre(&module).unwrap()
        })
        .collect();
    (engine, pres)
}

/// Store::new + instantiate + first call + drop.
fn instantiate_case(name: &str, config: &Config) -> Case {
    let (engine, pres) = pres(config);
    Case {
        name: name.to_string(),
        run: Box::new(move |m, n| {
            let mut alone = 0u128;
            let t = Instant::now();
            for _ in 0..n {
                let mut store = Store::new(&engine, ());
                let i = Instant::now();
                let inst = pres[m].instantiate(&mut store).unwrap();
                alone += i.elapsed().as_nanos();
                let run = inst.get_typed_func::<(), i32>(&mut store, "run").unwrap();
                std::hint::black_box(run.call(&mut store, ()).unwrap());
            }
            let n = f64::from(n);
            (t.elapsed().as_nanos() as f64 / n, alone as f64 / n)
        }),
    }
}

/// InstancePool::get + first call + return.
fn pool_case(name: &str, config: &Config, policy: ReturnPolicy) -> Case {
    let (_engine, pres) = pres(config);
    let mut cfg = InstancePoolConfig::default();
    cfg.policy(policy).max_size(4);
    let pools: Vec<InstancePool<()>> = pres
        .into_iter()
        .map(|pre| InstancePool::new(pre, cfg.clone(), || ()))
        .collect();
    Case {
        name: name.to_string(),
        run: Box::new(move |m, n| {
            let mut alone = 0u128;
            let t = Instant::now();
            for _ in 0..n {
                let i = Instant::now();
                let mut g = pools[m].get().unwrap();
                alone += i.elapsed().as_nanos();
                let (store, inst) = g.parts();
                let run = inst.get_typed_func::<(), i32>(&mut *store, "run").unwrap();
                std::hint::black_box(run.call(&mut *store, ()).unwrap());
                let r = Instant::now();
                drop(g);
                alone += r.elapsed().as_nanos();
            }
            let n = f64::from(n);
            (t.elapsed().as_nanos() as f64 / n, alone as f64 / n)
        }),
    }
}

/// Requests per second through one shared pool from `threads` threads
/// (module (b), keep-state policy: the pool's own overhead and contention).
fn pool_throughput(config: &Config, threads: usize, per_thread: u32) -> f64 {
    let (_engine, mut pres) = pres(config);
    let mut cfg = InstancePoolConfig::default();
    cfg.policy(ReturnPolicy::KeepState).max_size(threads);
    let pool = InstancePool::new(pres.swap_remove(1), cfg, || ());
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let pool = pool.clone();
            s.spawn(move || {
                for _ in 0..per_thread {
                    let mut g = pool.get().unwrap();
                    let (store, inst) = g.parts();
                    let run = inst.get_typed_func::<(), i32>(&mut *store, "run").unwrap();
                    std::hint::black_box(run.call(&mut *store, ()).unwrap());
                }
            });
        }
    });
    f64::from(per_thread) * threads as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, n) = if quick { (3, 200) } else { (21, 2000) };
    let mut copy = Config::new();
    copy.memory_init_cow(false);
    let mut pooling = Config::new();
    let mut p = PoolingAllocationConfig::default();
    p.total_instances(16).total_memories(16).total_tables(16);
    let mut resident = Config::new();
    resident.allocation_strategy(InstanceAllocationStrategy::Pooling(p.clone()));
    let mut marked = Config::new();
    let mut m = p.clone();
    m.write_marks(true);
    marked.allocation_strategy(InstanceAllocationStrategy::Pooling(m));
    p.keep_resident_bytes(0);
    pooling.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    let cases = [
        instantiate_case("on-demand, copy data", &copy),
        instantiate_case("on-demand, copy-on-write image", &Config::new()),
        instantiate_case("pooling, image, pages dropped", &pooling),
        instantiate_case("pooling, image, 1 MiB resident (default)", &resident),
        instantiate_case("pooling, image, 1 MiB resident, write marks", &marked),
        pool_case(
            "InstancePool get+return, reset, pages dropped",
            &pooling,
            ReturnPolicy::Reset,
        ),
        pool_case(
            "InstancePool get+return, reset, 1 MiB resident",
            &resident,
            ReturnPolicy::Reset,
        ),
        pool_case(
            "InstancePool get+return, reset, 1 MiB resident, write marks",
            &marked,
            ReturnPolicy::Reset,
        ),
        pool_case(
            "InstancePool get+return, keep state",
            &pooling,
            ReturnPolicy::KeepState,
        ),
    ];
    let only = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .unwrap_or_default();
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|c| c.name.contains(&only))
        .collect();
    let mut cycle = vec![vec![vec![]; MODULES.len()]; cases.len()];
    let mut alone = cycle.clone();
    for _ in 0..rounds {
        for (m, _) in MODULES.iter().enumerate() {
            for (ci, c) in cases.iter().enumerate() {
                let (whole, part) = (c.run)(m, n);
                cycle[ci][m].push(whole);
                alone[ci][m].push(part);
            }
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (title, samples) in [
        ("ready instance + first call + drop/return", &mut cycle),
        (
            "instantiate alone (InstancePool: get + return, without the call)",
            &mut alone,
        ),
    ] {
        println!("\n{title}: median of {rounds} interleaved rounds of {n} (µs)");
        print!("| configuration |");
        for (name, _) in MODULES {
            print!(" {name} |");
        }
        println!();
        println!("|---|{}", "---|".repeat(MODULES.len()));
        let medians: Vec<Vec<f64>> = samples
            .iter_mut()
            .map(|per| per.iter_mut().map(med).collect())
            .collect();
        for (ci, c) in cases.iter().enumerate() {
            print!("| {} |", c.name);
            for (m, v) in medians[ci].iter().enumerate() {
                if ci == 0 {
                    print!(" {:.2} |", v / 1000.0);
                } else {
                    print!(" {:.2} ({:.2}×) |", v / 1000.0, v / medians[0][m]);
                }
            }
            println!();
        }
    }
    if !only.is_empty() {
        return;
    }
    let per_thread = if quick { 2_000 } else { 50_000 };
    let mut one = Vec::new();
    let mut two = Vec::new();
    for _ in 0..if quick { 1 } else { 5 } {
        one.push(pool_throughput(&pooling, 1, per_thread));
        two.push(pool_throughput(&pooling, 2, per_thread));
    }
    let (one, two) = (med(&mut one), med(&mut two));
    println!(
        "InstancePool, module (b), keep state: 1 thread {one:.0} req/s, 2 threads {two:.0} req/s ({:.2}× on {} cores)",
        two / one,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
