//! `cargo xtask`: weft's project automation. Run it without arguments for the
//! list of tasks.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xtask::spec;

mod fuzz;

const TASKS: &[(&str, &str)] = &[
    (
        "test [--skip STEP]... [--no-testsuite]",
        "everything CI runs, in order: fmt, clippy, test, loom, fuzz-smoke, examples, spec \
         (--skip leaves a step out, for local use; a missing spec testsuite is an \
         error unless --no-testsuite says to run without it)",
    ),
    (
        "spec [FILTER] [--post2] [--sets] [--jobs N]",
        "the spec testsuite; per-file table (FILTER: substring of the path; \
         --post2: also run post-2.0 modules with their features; --sets: set table only)",
    ),
    (
        "spec-summary [--write]",
        "print the README's spec figures from target/spec-results.json (--write \
         puts them into README.md); the spec step fails while they differ",
    ),
    (
        "fuzz TARGET|all [--time SECONDS] [--seed N]",
        "fuzz weft (targets: decode, compile, run, differential, interrupt, reset); a failing \
         or crashing input is saved under crates/fuzz/regressions/",
    ),
    (
        "loom",
        "the loom models of weft-memory and the runtime's interrupt state (release, target/loom)",
    ),
    (
        "bench [NAME | --compare] [-- ARGS]",
        "cargo bench for the workspace, or one package or bench target; --compare: weft vs Wasmtime side by side (compare/)",
    ),
];

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(task) = args.next() else {
        print_tasks();
        return Ok(());
    };
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    match task.as_str() {
        "test" => test(&root, &rest),
        "spec" => spec_task(&root, &rest),
        "spec-summary" => spec_summary(&root, &rest),
        "fuzz" => fuzz::run(&root, &rest, true),
        "loom" => {
            no_args(&task, &rest)?;
            run_steps(&root, vec![loom_step(&root)])
        }
        "bench" => bench(&root, &rest),
        "help" | "-h" | "--help" => {
            print_tasks();
            Ok(())
        }
        other => {
            print_tasks();
            bail!("unknown task `{other}`")
        }
    }
}

fn print_tasks() {
    println!("usage: cargo xtask <task>\n\ntasks:");
    for (name, what) in TASKS {
        println!("  {name:<44} {what}");
    }
}

fn no_args(task: &str, rest: &[String]) -> Result<()> {
    if let Some(a) = rest.first() {
        bail!("`{task}` takes no arguments (got `{a}`)");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.parent().unwrap_or(dir).to_path_buf()
}

/// One step of a task: a cargo command or something run in-process.
struct Step {
    name: &'static str,
    what: String,
    action: Action,
}

enum Action {
    Cargo {
        args: Vec<&'static str>,
        env: Vec<(&'static str, OsString)>,
    },
    InProcess(Box<dyn FnOnce() -> Result<()>>),
}

fn cargo_step(name: &'static str, args: &[&'static str]) -> Step {
    Step {
        name,
        what: format!("cargo {}", args.join(" ")),
        action: Action::Cargo {
            args: args.to_vec(),
            env: Vec::new(),
        },
    }
}

fn loom_step(root: &Path) -> Step {
    // weft-memory's models (module `loom_tests`) and the runtime's interrupt
    // state models (`interrupt::loom_tests`); the filter keeps the runtime's
    // other unit tests, which need std's atomics, out.
    let args = [
        "test",
        "-p",
        "weft-memory",
        "-p",
        "weft-runtime",
        "--release",
        "--lib",
        "loom_tests",
    ];
    let mut env = vec![
        ("LOOM_MAX_PREEMPTIONS", OsString::from("2")),
        (
            "CARGO_TARGET_DIR",
            root.join("target/loom").into_os_string(),
        ),
    ];
    // Append to the flags the user already has. CARGO_ENCODED_RUSTFLAGS wins
    // over RUSTFLAGS when set, so extend whichever is in effect.
    match std::env::var_os("CARGO_ENCODED_RUSTFLAGS").filter(|v| !v.is_empty()) {
        Some(mut flags) => {
            flags.push("\x1f--cfg\x1floom");
            env.push(("CARGO_ENCODED_RUSTFLAGS", flags));
        }
        None => {
            let mut flags = std::env::var_os("RUSTFLAGS").unwrap_or_default();
            if !flags.is_empty() {
                flags.push(" ");
            }
            flags.push("--cfg loom");
            env.push(("RUSTFLAGS", flags));
        }
    }
    let what = format!(
        "{} cargo {}",
        env.iter()
            .map(|(k, v)| format!("{k}={:?}", v.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" "),
        args.join(" ")
    );
    Step {
        name: "loom",
        what,
        action: Action::Cargo {
            args: args.to_vec(),
            env,
        },
    }
}

fn test(root: &Path, rest: &[String]) -> Result<()> {
    let mut skip = Vec::new();
    let mut no_testsuite = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--skip" => skip.push(it.next().context("--skip needs a step name")?.as_str()),
            "--no-testsuite" => no_testsuite = true,
            other => bail!("unknown test option `{other}`"),
        }
    }
    if no_testsuite {
        println!("(running without the spec testsuite: --no-testsuite)");
    }
    let test_env: Vec<(&'static str, OsString)> = if no_testsuite {
        vec![("WEFT_NO_TESTSUITE", OsString::from("1"))]
    } else {
        Vec::new()
    };
    let spec_root = root.to_path_buf();
    let fuzz_root = root.to_path_buf();
    let examples_root = root.to_path_buf();
    let steps = vec![
        cargo_step("fmt", &["fmt", "--all", "--", "--check"]),
        cargo_step(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        Step {
            name: "test",
            what: "cargo test --workspace".into(),
            action: Action::Cargo {
                args: vec!["test", "--workspace"],
                env: test_env,
            },
        },
        loom_step(root),
        Step {
            name: "fuzz-smoke",
            what: "every fuzz target for 30 s in all (weft-fuzz, test build)".into(),
            action: Action::InProcess(Box::new(move || {
                fuzz::run(
                    &fuzz_root,
                    &["all".into(), "--time".into(), "30".into()],
                    false,
                )
            })),
        },
        Step {
            name: "examples",
            what: "decode and validate examples/*.wat".into(),
            action: Action::InProcess(Box::new(move || check_examples(&examples_root))),
        },
        Step {
            name: "spec",
            what: "the spec testsuite (in-process)".into(),
            action: Action::InProcess(Box::new(move || {
                let mut opts = spec::Options::for_workspace(&spec_root);
                opts.per_file = false;
                if run_spec(&opts, no_testsuite)? {
                    spec::readme::check_readme(&spec_root, &opts.json, false)?;
                }
                Ok(())
            })),
        },
    ];
    for name in &skip {
        if !steps.iter().any(|s| s.name == *name) {
            bail!("--skip {name}: no such step");
        }
    }
    let steps: Vec<Step> = steps
        .into_iter()
        .filter(|s| {
            let skipped = skip.contains(&s.name);
            if skipped {
                println!("(skipping step `{}`)", s.name);
            }
            !skipped
        })
        .collect();
    run_steps(root, steps)
}

/// Runs steps in order, stopping at the first that fails.
fn run_steps(root: &Path, steps: Vec<Step>) -> Result<()> {
    let total = steps.len();
    let start = Instant::now();
    let mut times: Vec<(&str, Duration)> = Vec::new();
    for (i, step) in steps.into_iter().enumerate() {
        println!("\n==> [{}/{total}] {}: {}", i + 1, step.name, step.what);
        let t = Instant::now();
        let result = match step.action {
            Action::Cargo { args, env } => {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let mut cmd = Command::new(cargo);
                cmd.current_dir(root).args(&args).envs(env);
                match cmd.status() {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(anyhow::anyhow!("`{}` exited with {s}", step.what)),
                    Err(e) => Err(anyhow::anyhow!("could not run cargo: {e}")),
                }
            }
            Action::InProcess(f) => f(),
        };
        let took = t.elapsed();
        if let Err(e) = result {
            print_times(&times);
            bail!(
                "step `{}` failed after {:.1}s: {e:#}",
                step.name,
                took.as_secs_f64()
            );
        }
        println!("==> {} ok ({:.1}s)", step.name, took.as_secs_f64());
        times.push((step.name, took));
    }
    print_times(&times);
    println!(
        "all {total} steps passed in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn print_times(times: &[(&str, Duration)]) {
    if times.is_empty() {
        return;
    }
    println!("\nstep times:");
    for (name, d) in times {
        println!("  {name:<10} {:>7.1}s", d.as_secs_f64());
    }
}

fn check_examples(root: &Path) -> Result<()> {
    let dir = root.join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wat" || e == "wasm"))
        .collect();
    files.sort();
    let mut bad = 0;
    for f in &files {
        let result = std::fs::read(f)
            .map_err(anyhow::Error::from)
            .and_then(|src| Ok(weft_decoder::parse_wat(&src)?))
            .and_then(|bytes| Ok(weft_decoder::Module::decode(&bytes)?));
        match result {
            Ok(m) => println!(
                "  ok   {} ({} functions, {} exports)",
                f.display(),
                m.functions.len(),
                m.exports.len()
            ),
            Err(e) => {
                bad += 1;
                println!("  FAIL {}: {e:#}", f.display());
            }
        }
    }
    if bad > 0 {
        bail!("{bad} of {} examples do not validate", files.len());
    }
    Ok(())
}

fn spec_task(root: &Path, rest: &[String]) -> Result<()> {
    let mut opts = spec::Options::for_workspace(root);
    opts.per_file = true;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--post2" => opts.post2 = true,
            "--sets" => opts.per_file = false,
            "--jobs" | "-j" => {
                let n = it.next().context("--jobs needs a number")?;
                opts.jobs = n.parse().with_context(|| format!("bad --jobs {n:?}"))?;
            }
            f if f.starts_with('-') => bail!("unknown spec option `{f}`"),
            f => {
                if opts.filter.is_some() {
                    bail!("spec takes one FILTER (got a second: `{f}`)");
                }
                opts.filter = Some(f.to_string());
            }
        }
    }
    run_spec(&opts, false).map(drop)
}

fn spec_summary(root: &Path, rest: &[String]) -> Result<()> {
    let write = match rest {
        [] => false,
        [w] if w == "--write" => true,
        _ => bail!("spec-summary takes only --write"),
    };
    let opts = spec::Options::for_workspace(root);
    if !write {
        let text = std::fs::read_to_string(&opts.json)
            .with_context(|| format!("reading {} (run `cargo xtask spec`)", opts.json.display()))?;
        print!("{}", spec::readme::block(&serde_json::from_str(&text)?)?);
        return Ok(());
    }
    spec::readme::check_readme(root, &opts.json, true)
}

/// Runs the harness; a missing testsuite is an error unless `may_be_missing`.
/// Returns whether it ran.
fn run_spec(opts: &spec::Options, may_be_missing: bool) -> Result<bool> {
    match spec::run(opts)? {
        spec::Status::NoTestsuite if may_be_missing => Ok(false),
        spec::Status::NoTestsuite => bail!(
            "no spec testsuite (put it at ../shared/testsuite or set WEFT_TESTSUITE; \
             `cargo xtask test --no-testsuite` runs without it)"
        ),
        spec::Status::Ran { regressions: 0 } => Ok(true),
        spec::Status::Ran { regressions } => bail!(
            "{regressions} regressions against {} (see above)",
            opts.supported.display()
        ),
    }
}

fn bench(root: &Path, rest: &[String]) -> Result<()> {
    let (ours, passthrough) = match rest.iter().position(|a| a == "--") {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let mut args: Vec<String> = vec!["bench".into()];
    match ours {
        [flag] if flag == "--compare" => {
            // Side by side with Wasmtime: its own crate, outside the
            // workspace, so the default build never compiles Wasmtime.
            args = vec![
                "run".into(),
                "--release".into(),
                "--manifest-path".into(),
                root.join("compare/Cargo.toml").display().to_string(),
            ];
        }
        [] => args.push("--workspace".into()),
        [name] => {
            if workspace_packages(root)?.iter().any(|p| p == name) {
                args.extend(["-p".into(), name.clone()]);
            } else {
                args.extend(["--workspace".into(), "--bench".into(), name.clone()]);
            }
        }
        _ => bail!("bench takes at most one NAME (a package or a bench target)"),
    }
    if !passthrough.is_empty() {
        args.push("--".into());
        args.extend(passthrough.iter().cloned());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("==> cargo {}", args.join(" "));
    let t = Instant::now();
    let status = Command::new(cargo)
        .current_dir(root)
        .args(&args)
        .status()
        .context("could not run cargo")?;
    println!("==> bench took {:.1}s", t.elapsed().as_secs_f64());
    if !status.success() {
        bail!("`cargo {}` exited with {status}", args.join(" "));
    }
    Ok(())
}

/// Names of the workspace's packages, from `cargo metadata`.
fn workspace_packages(root: &Path) -> Result<Vec<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("could not run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["packages"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}
