//! Serving requests (issue #21): `cargo bench -p weft --bench serving`.
//!
//! Every request gets a clean instance of the serving module
//! (`kernels::serving_module`), writes 1 KiB of input into its memory,
//! calls the handler and reads the result; then the instance is dropped or
//! returned. Two request shapes: "small" (a 1 MiB memory, a few pages
//! written) and "dirty all" (a 16 MiB memory whose every 4 KiB page the
//! request writes: the worst case for restoring pages in place). Each
//! configuration runs on as many threads as the machine has cores, the
//! configurations interleaved round after round so machine noise hits them
//! alike; the report gives the median requests per second and the ratio to
//! the first configuration.
//!
//! `--quick`: fewer rounds and requests (a smoke run); `--only TEXT`: just
//! the configurations whose "shape: name" contains TEXT.

use std::time::Instant;

use weft::{
    Config, Engine, Instance, InstanceAllocationStrategy, InstancePool, InstancePoolConfig,
    InstancePre, Linker, Module, PoolingAllocationConfig, ReturnPolicy, Store,
};

mod kernels;

/// One request against a ready instance: input written, handler called,
/// result read.
fn request(store: &mut Store<()>, inst: Instance, input: &[u8], dirty_all: bool) -> i32 {
    let mem = inst.get_memory(&mut *store, "mem").unwrap();
    mem.write(&mut *store, 524_288, input).unwrap();
    let handle = inst
        .get_typed_func::<i32, i32>(&mut *store, "handle")
        .unwrap();
    let h = handle.call(&mut *store, input.len() as i32).unwrap();
    if dirty_all {
        let scribble = inst
            .get_typed_func::<i32, ()>(&mut *store, "scribble")
            .unwrap();
        scribble.call(&mut *store, h).unwrap();
    }
    h
}

/// How a configuration gets a clean instance per request.
enum Source {
    /// A new store and `InstancePre::instantiate` per request.
    Instantiate(Engine, InstancePre<()>),
    /// `InstancePool::get`, returned after the request.
    Pool(InstancePool<()>),
}

struct Case {
    name: String,
    source: Source,
}

/// An engine: on demand (`None`), or pooling with a resident budget and
/// write marks on or off.
fn engine(pooling: Option<(usize, bool)>) -> Engine {
    let mut config = Config::new();
    if let Some((keep, marks)) = pooling {
        let mut p = PoolingAllocationConfig::default();
        p.total_instances(64)
            .total_memories(64)
            .total_tables(64)
            .keep_resident_bytes(keep)
            .write_marks(marks);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Engine::new(&config).unwrap()
}

fn pre(engine: &Engine, pages: u32) -> InstancePre<()> {
    let module = Module::new(engine, kernels::serving_module(pages)).unwrap();
    Linker::<()>::new().instantiate_pre(&module).unwrap()
}

fn cases(pages: u32, threads: usize, budgets: &[(&str, usize, bool)]) -> Vec<Case> {
    let mut cases = vec![Case {
        name: "on demand + InstancePre".into(),
        source: {
            let e = engine(None);
            let p = pre(&e, pages);
            Source::Instantiate(e, p)
        },
    }];
    for &(label, keep, marks) in budgets {
        let e = engine(Some((keep, marks)));
        let p = pre(&e, pages);
        cases.push(Case {
            name: format!("pooling + InstancePre, {label}"),
            source: Source::Instantiate(e, p.clone()),
        });
        let mut c = InstancePoolConfig::default();
        c.max_size(threads).policy(ReturnPolicy::Reset);
        cases.push(Case {
            name: format!("InstancePool (reset), {label}"),
            source: Source::Pool(InstancePool::new(p, c, || ())),
        });
    }
    let e = engine(Some((0, false)));
    let mut c = InstancePoolConfig::default();
    c.max_size(threads).policy(ReturnPolicy::KeepState);
    cases.push(Case {
        name: "InstancePool (keep state: not a clean instance)".into(),
        source: Source::Pool(InstancePool::new(pre(&e, pages), c, || ())),
    });
    cases
}

/// Requests per second of `case` over `threads` threads.
fn run(case: &Case, threads: usize, per_thread: u32, input: &[u8], dirty_all: bool) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    let h = match &case.source {
                        Source::Instantiate(engine, pre) => {
                            let mut store = Store::new(engine, ());
                            let inst = pre.instantiate(&mut store).unwrap();
                            request(&mut store, inst, input, dirty_all)
                        }
                        Source::Pool(pool) => {
                            let mut g = pool.get().unwrap();
                            let (store, inst) = g.parts();
                            request(store, inst, input, dirty_all)
                        }
                    };
                    std::hint::black_box(h);
                }
            });
        }
    });
    f64::from(per_thread) * threads as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rounds = if quick { 3 } else { 9 };
    let input: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    // (title, memory pages, whether every page is written, requests per
    // thread and round, the resident budgets (and write marks) to compare).
    type Shape<'a> = (&'a str, u32, bool, u32, &'a [(&'a str, usize, bool)]);
    let shapes: [Shape; 2] = [
        (
            "small: 1 MiB memory, 1 KiB input",
            16,
            false,
            if quick { 500 } else { 10_000 },
            &[
                ("pages dropped", 0, false),
                ("1 MiB resident", 1 << 20, false),
                ("1 MiB resident, write marks", 1 << 20, true),
            ],
        ),
        (
            "dirty all: 16 MiB memory, every page written",
            256,
            true,
            if quick { 10 } else { 300 },
            &[
                ("pages dropped", 0, false),
                ("1 MiB resident", 1 << 20, false),
                ("16 MiB resident", 16 << 20, false),
                ("16 MiB resident, write marks", 16 << 20, true),
            ],
        ),
    ];
    let only = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .unwrap_or_default();
    for (title, pages, dirty_all, per_thread, budgets) in shapes {
        let mut cases = cases(pages, threads, budgets);
        cases.retain(|c| format!("{title}: {}", c.name).contains(&only));
        if cases.is_empty() {
            continue;
        }
        let mut samples = vec![Vec::new(); cases.len()];
        for _ in 0..rounds {
            for (c, s) in cases.iter().zip(&mut samples) {
                s.push(run(c, threads, per_thread, &input, dirty_all));
            }
        }
        println!("\n{title}; {threads} threads, median of {rounds} rounds");
        println!("| configuration | requests/s | vs first |");
        println!("|---|---:|---:|");
        let mut first = None;
        for (c, mut s) in cases.iter().zip(samples) {
            s.sort_by(f64::total_cmp);
            let m = s[s.len() / 2];
            let base = *first.get_or_insert(m);
            println!("| {} | {m:.0} | {:.2}× |", c.name, m / base);
        }
    }
}
