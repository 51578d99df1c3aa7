//! The C programs of issue #18 item 1: `tests/programs/bench_*.c` built for
//! wasm32-wasi and run by both runtimes, in process and as whole processes.
//!
//! In process, each module is compiled once per runtime for the runs (the
//! compile time reported is the median of a separate compile per round),
//! then every round gives each runtime a fresh store with a WASI preview1
//! context (no arguments, no environment, stdout and stderr captured),
//! instantiates and runs `_start`. Whole process, `weft run --no-cache
//! FILE.wasm` (the release `weft`) is timed against `wasmtime_run FILE.wasm`
//! (`src/bin/wasmtime_run.rs`: Wasmtime and wasmtime-wasi's preview1, no
//! cache). Rounds alternate which runtime goes first. Every run must exit 0
//! and print to stdout what the first run printed, so a broken run cannot
//! pass as a fast one; nothing compares against a written-down output.

#[path = "../../crates/cli/benches/build_c.rs"]
mod build_c;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROGRAMS: [&str; 4] = ["bench_sort", "bench_hash", "bench_float", "bench_simd"];

/// Why the section printed no figures.
pub enum Error {
    /// Something the section needs is not installed (clang, wasi-libc): the
    /// rest of the comparison stands.
    Skipped(String),
    /// A build failed, a run failed, or the runtimes disagree: figures would
    /// mean nothing.
    Failed(String),
}

/// What one run of a program produced.
struct Output {
    status: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// One program's samples.
struct Samples {
    name: &'static str,
    compile: (Vec<Duration>, Vec<Duration>),
    run: (Vec<Duration>, Vec<Duration>),
    process: (Vec<Duration>, Vec<Duration>),
}

/// The weft and Wasmtime runs of one compiled module.
struct Loaded {
    name: &'static str,
    weft: weft::InstancePre<weft_wasi::WasiCtx>,
    weft_engine: weft::Engine,
    wasmtime: wasmtime::InstancePre<wasmtime_wasi::p1::WasiP1Ctx>,
    wasmtime_engine: wasmtime::Engine,
}

/// Runs the section with `rounds` interleaved rounds and returns its report
/// (markdown tables and the lines that say what they measure).
pub fn section(rounds: usize) -> Result<String, Error> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("compare/ is inside the repository")
        .to_path_buf();
    let dir = TempDir::new()?;
    let cc = std::env::var("WEFT_WASI_CC").unwrap_or_else(|_| "clang".into());
    let cc_version = Command::new(&cc).arg("--version").output().map_err(|e| {
        Error::Skipped(format!(
            "cannot run `{cc}` ({e}); the section needs clang and wasi-libc \
                 (WEFT_WASI_CC names another C compiler for wasm32-wasi)"
        ))
    })?;
    let cc_version = String::from_utf8_lossy(&cc_version.stdout)
        .lines()
        .next()
        .unwrap_or(&cc)
        .trim()
        .to_string();
    let mut wasm = Vec::new();
    for name in PROGRAMS {
        let out = dir.0.join(format!("{name}.wasm"));
        build_c::compile(&root.join(format!("tests/programs/{name}.c")), &out, true).map_err(
            |e| {
                Error::Skipped(format!(
                    "cannot build {name}.c for wasm32-wasi with `{cc}` (needs clang and \
                 wasi-libc; WEFT_WASI_CC names another compiler): {e}"
                ))
            },
        )?;
        wasm.push(out);
    }

    // The two command-line runners, built (or found up to date) first so
    // that no build overlaps a measurement.
    let weft_bin = cargo_build(&root, &["-p", "weft-cli"], "weft")?;
    let compare_manifest = root.join("compare/Cargo.toml");
    let wasmtime_bin = cargo_build(
        &root,
        &[
            "--manifest-path",
            &compare_manifest.display().to_string(),
            "--bin",
            "wasmtime_run",
        ],
        "wasmtime_run",
    )?;

    // In process: each module compiled once per runtime for the runs.
    let mut loaded = Vec::new();
    let mut samples = Vec::new();
    let mut bytes = Vec::new();
    for (name, path) in PROGRAMS.iter().zip(&wasm) {
        let b = std::fs::read(path).map_err(|e| fail(name, e))?;
        let weft_engine = weft::Engine::new(&weft_config().0).map_err(|e| fail(name, e))?;
        let w_module = weft::Module::new(&weft_engine, &b).map_err(|e| fail(name, e))?;
        let wasmtime_engine = wasmtime::Engine::default();
        let t_module = wasmtime::Module::new(&wasmtime_engine, &b).map_err(|e| fail(name, e))?;
        let mut w_linker = weft::Linker::<weft_wasi::WasiCtx>::new();
        weft_wasi::add_to_linker(&mut w_linker, |c| c).map_err(|e| fail(name, e))?;
        let mut t_linker = wasmtime::Linker::new(&wasmtime_engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut t_linker, |c| c).map_err(|e| fail(name, e))?;
        loaded.push(Loaded {
            name,
            weft: w_linker
                .instantiate_pre(&w_module)
                .map_err(|e| fail(name, e))?,
            weft_engine,
            wasmtime: t_linker
                .instantiate_pre(&t_module)
                .map_err(|e| fail(name, e))?,
            wasmtime_engine,
        });
        samples.push(Samples {
            name,
            compile: (Vec::new(), Vec::new()),
            run: (Vec::new(), Vec::new()),
            process: (Vec::new(), Vec::new()),
        });
        bytes.push(b);
    }

    // Compile times: one compile per runtime and program in each round (a
    // single compile of a few tens of milliseconds is too noisy to report).
    for round in 0..rounds {
        for (i, ((l, b), s)) in loaded.iter().zip(&bytes).zip(&mut samples).enumerate() {
            for side in order(round + i) {
                if side == 0 {
                    let start = Instant::now();
                    let m = weft::Module::new(&l.weft_engine, b).map_err(|e| fail(l.name, e))?;
                    s.compile.0.push(start.elapsed());
                    drop(m);
                } else {
                    let start = Instant::now();
                    let m = wasmtime::Module::new(&l.wasmtime_engine, b)
                        .map_err(|e| fail(l.name, e))?;
                    s.compile.1.push(start.elapsed());
                    drop(m);
                }
            }
        }
    }

    // The first run's output is what every later run must print.
    let mut expected: Vec<Option<Output>> = PROGRAMS.iter().map(|_| None).collect();
    let mut check = |i: usize, who: &str, how: &str, o: Output| -> Result<(), Error> {
        let name = PROGRAMS[i];
        if o.status != 0 || o.stdout.is_empty() {
            return Err(Error::Failed(format!(
                "{name} {how} on {who}: exit status {}, {} bytes of output; stderr: {}",
                o.status,
                o.stdout.len(),
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        match &expected[i] {
            None => expected[i] = Some(o),
            Some(e) if e.stdout == o.stdout => {}
            Some(e) => {
                return Err(Error::Failed(format!(
                    "{name} {how} on {who} printed {:?}, the first run {:?}; stderr: {}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&e.stdout),
                    String::from_utf8_lossy(&o.stderr).trim()
                )));
            }
        }
        Ok(())
    };
    for round in 0..rounds {
        for (i, (l, s)) in loaded.iter().zip(&mut samples).enumerate() {
            for side in order(round + i) {
                if side == 0 {
                    let (d, o) = run_weft(l).map_err(|e| fail(l.name, e))?;
                    check(i, "weft", "in process", o)?;
                    s.run.0.push(d);
                } else {
                    let (d, o) = run_wasmtime(l).map_err(|e| fail(l.name, e))?;
                    check(i, "Wasmtime", "in process", o)?;
                    s.run.1.push(d);
                }
            }
        }
    }
    drop(loaded);

    // Whole process.
    for round in 0..rounds {
        for (i, (path, s)) in wasm.iter().zip(&mut samples).enumerate() {
            for side in order(round + i) {
                let mut cmd = if side == 0 {
                    let mut c = Command::new(&weft_bin);
                    c.args(["run", "--no-cache"]);
                    c
                } else {
                    Command::new(&wasmtime_bin)
                };
                cmd.arg(path).stdin(Stdio::null());
                let start = Instant::now();
                let o = cmd.output().map_err(|e| fail(s.name, e))?;
                let d = start.elapsed();
                let o = Output {
                    // A signal (no code) counts as a failure.
                    status: o.status.code().unwrap_or(-1),
                    stdout: o.stdout,
                    stderr: o.stderr,
                };
                if side == 0 {
                    check(i, "weft", "as `weft run --no-cache`", o)?;
                    s.process.0.push(d);
                } else {
                    check(i, "Wasmtime", "as `wasmtime_run`", o)?;
                    s.process.1.push(d);
                }
            }
        }
    }

    Ok(report(&samples, rounds, &cc_version, &weft_bin, &root))
}

/// weft's configuration for the in-process runs: the default, or with
/// `--weft-no-interrupt` (`Config::interruptible(false)`) and/or
/// `--weft-no-exceptions` (`Config::wasm_exceptions(false)`), to measure
/// what those cost; and how to say so.
fn weft_config() -> (weft::Config, String) {
    let mut config = weft::Config::new();
    let mut changed = Vec::new();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--weft-no-interrupt") {
        config.interruptible(false);
        changed.push("Config::interruptible(false)");
    }
    if args.iter().any(|a| a == "--weft-no-exceptions") {
        config.wasm_exceptions(false);
        changed.push("Config::wasm_exceptions(false)");
    }
    let what = if changed.is_empty() {
        "both runtimes' default configuration".to_string()
    } else {
        format!(
            "Wasmtime's default configuration, weft's default with {} in process \
             (`weft run` keeps its defaults)",
            changed.join(" and ")
        )
    };
    (config, what)
}

fn report(samples: &[Samples], rounds: usize, cc: &str, weft_bin: &Path, root: &Path) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let weft_bin = weft_bin.strip_prefix(root).unwrap_or(weft_bin);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "C programs (issue #18): weft vs Wasmtime 48.0.8 (same Cranelift 0.135.8), {cores} cores, \
         median of {rounds} interleaved rounds; tests/programs/bench_*.c for wasm32-wasi by {cc} \
         (-O2; bench_simd -O3 -msimd128); {}",
        weft_config().1
    );
    let _ = writeln!(
        s,
        "in process: compile = Module::new from the .wasm bytes (all cores; a compile per \
         round, apart from the runs, which use one module per runtime); run = a fresh WASI \
         preview1 context and store (no args, no env, stdout captured), instantiate, \
         `_start`, drop; spread = (slowest - fastest) / median of the run times"
    );
    s.push_str(
        "| program | compile weft | compile Wasmtime | run weft | run Wasmtime | run weft / Wasmtime | spread weft, Wasmtime |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|\n");
    let mut run_ratios = Vec::new();
    for p in samples {
        let (w, t) = (median(&p.run.0), median(&p.run.1));
        run_ratios.push(w / t);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.2}× | {}, {} |",
            p.name,
            ms(median(&p.compile.0)),
            ms(median(&p.compile.1)),
            ms(w),
            ms(t),
            w / t,
            spread(&p.run.0),
            spread(&p.run.1)
        );
    }
    let _ = writeln!(
        s,
        "| geomean | | | | | {:.2}× (issue #18 target: ≤ 0.90×) | |",
        geomean(&run_ratios)
    );
    let _ = writeln!(
        s,
        "\nwhole process: wall time of `{} run --no-cache FILE.wasm` vs \
         `compare/target/release/wasmtime_run FILE.wasm` (Wasmtime 48.0.8 and wasmtime-wasi \
         preview1, no cache), from spawn to exit: start, read and compile the .wasm, \
         instantiate, run, exit; argv[0] is the file name, no env, stdout to a pipe",
        weft_bin.display()
    );
    s.push_str("| program | weft run | wasmtime_run | weft / Wasmtime | spread weft, Wasmtime |\n");
    s.push_str("|---|---|---|---|---|\n");
    let mut process_ratios = Vec::new();
    for p in samples {
        let (w, t) = (median(&p.process.0), median(&p.process.1));
        process_ratios.push(w / t);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2}× | {}, {} |",
            p.name,
            ms(w),
            ms(t),
            w / t,
            spread(&p.process.0),
            spread(&p.process.1)
        );
    }
    let _ = writeln!(s, "| geomean | | | {:.2}× | |", geomean(&process_ratios));
    s
}

/// Which runtime goes first in round `n`: 0 is weft, 1 Wasmtime.
fn order(n: usize) -> [usize; 2] {
    if n.is_multiple_of(2) { [0, 1] } else { [1, 0] }
}

/// `_start` on weft: a fresh context and store, instantiate, run, drop.
fn run_weft(l: &Loaded) -> Result<(Duration, Output), weft::Error> {
    let (out, err) = (weft_wasi::OutputPipe::new(), weft_wasi::OutputPipe::new());
    let start = Instant::now();
    let ctx = weft_wasi::WasiCtxBuilder::new()
        .stdout(out.clone())
        .stderr(err.clone())
        .build();
    let mut store = weft::Store::new(&l.weft_engine, ctx);
    let instance = l.weft.instantiate(&mut store)?;
    let f = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    let status = match f.call(&mut store, ()) {
        Ok(()) => 0,
        Err(e) => weft_wasi::I32Exit::from_error(&e).ok_or(e)?,
    };
    drop(store);
    let d = start.elapsed();
    Ok((
        d,
        Output {
            status,
            stdout: out.contents(),
            stderr: err.contents(),
        },
    ))
}

/// `_start` on Wasmtime, as [`run_weft`] does it.
fn run_wasmtime(l: &Loaded) -> wasmtime::Result<(Duration, Output)> {
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    let (out, err) = (
        MemoryOutputPipe::new(1 << 20),
        MemoryOutputPipe::new(1 << 20),
    );
    let start = Instant::now();
    let ctx = wasmtime_wasi::WasiCtxBuilder::new()
        .stdout(out.clone())
        .stderr(err.clone())
        .build_p1();
    let mut store = wasmtime::Store::new(&l.wasmtime_engine, ctx);
    let instance = l.wasmtime.instantiate(&mut store)?;
    let f = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    let status = match f.call(&mut store, ()) {
        Ok(()) => 0,
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(x) => x.0,
            None => return Err(e),
        },
    };
    drop(store);
    let d = start.elapsed();
    Ok((
        d,
        Output {
            status,
            stdout: out.contents().to_vec(),
            stderr: err.contents().to_vec(),
        },
    ))
}

/// `cargo build --release ARGS` in `root`; returns the path of the
/// executable named `exe` that the build produced (or found up to date).
/// Cargo's own messages go to stderr.
fn cargo_build(root: &Path, args: &[&str], exe: &str) -> Result<PathBuf, Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let what = format!("cargo build --release {}", args.join(" "));
    eprintln!("==> {what}");
    let o = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Failed(format!("`{what}`: cannot run cargo: {e}")))?;
    if !o.status.success() {
        return Err(Error::Failed(format!("`{what}` failed ({})", o.status)));
    }
    // One JSON message per line; the artifact with an executable of that name.
    let key = "\"executable\":\"";
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .filter_map(|l| {
            let rest = &l[l.find(key)? + key.len()..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
        .find(|p| p.file_name().is_some_and(|n| n == exe))
        .ok_or_else(|| Error::Failed(format!("`{what}` reported no executable `{exe}`")))
}

fn fail(name: &str, e: impl std::fmt::Debug) -> Error {
    Error::Failed(format!("{name}: {e:?}"))
}

fn median(v: &[Duration]) -> f64 {
    let mut v: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (slowest - fastest) / median, in percent.
fn spread(v: &[Duration]) -> String {
    let max = v.iter().max().map_or(0.0, Duration::as_secs_f64);
    let min = v.iter().min().map_or(0.0, Duration::as_secs_f64);
    format!("{:.0}%", (max - min) / median(v) * 100.0)
}

fn geomean(ratios: &[f64]) -> f64 {
    (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp()
}

/// Seconds as milliseconds, with a decimal below 10 ms.
fn ms(secs: f64) -> String {
    let v = secs * 1e3;
    if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// The built modules' directory, removed when the section ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, Error> {
        let p = std::env::temp_dir().join(format!("weft-compare-programs-{}", std::process::id()));
        std::fs::create_dir_all(&p)
            .map_err(|e| Error::Failed(format!("cannot create {}: {e}", p.display())))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
