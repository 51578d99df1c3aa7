//! The fuzz driver: `weft-fuzz TARGET|all [--time SECONDS] [--seed N]`
//! (usually through `cargo xtask fuzz`).
//!
//! Feeds random inputs (a seeded xorshift generator, the seed printed so a
//! run can be repeated) to each target for the given time. Before each run
//! the input is written to `target/fuzz/<target>.current`, so that if the
//! process dies (a crash no Rust code can catch), `cargo xtask fuzz` saves it
//! as a regression. A failing input is saved to
//! `crates/fuzz/regressions/<target>/<hash>.bin` and the run fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use weft_fuzz::{Outcome, TARGETS, check};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A random input: mostly short, sometimes up to 8 KiB.
    fn input(&mut self) -> Vec<u8> {
        let len = match self.next() % 8 {
            0..=4 => self.next() % 256,
            5 | 6 => self.next() % 2048,
            _ => self.next() % 8192,
        } as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `weft-fuzz --module TARGET INPUT OUT.wasm`: the module a saved input
    // makes, to look at (e.g. with `weft validate`).
    if let [flag, target, input, out] = args.as_slice()
        && flag == "--module"
    {
        let data = std::fs::read(input).unwrap_or_default();
        return match weft_fuzz::module_of(target, &data) {
            Some(m) if std::fs::write(out, &m).is_ok() => ExitCode::SUCCESS,
            _ => usage("no module (unknown target, unreadable input, or no module made)"),
        };
    }
    let mut target = None;
    let mut time = 10.0f64;
    let mut seed = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--time" => match it.next().and_then(|t| t.parse().ok()) {
                Some(t) => time = t,
                None => return usage("--time needs a number of seconds"),
            },
            "--seed" => match it.next().and_then(|t| t.parse().ok()) {
                Some(s) => seed = Some(s),
                None => return usage("--seed needs a number"),
            },
            t if !t.starts_with('-') && target.is_none() => target = Some(t.to_string()),
            other => return usage(&format!("unexpected `{other}`")),
        }
    }
    let Some(target) = target else {
        return usage("which target?");
    };
    let chosen: Vec<_> = TARGETS
        .iter()
        .filter(|(n, _)| target == "all" || *n == target)
        .collect();
    if chosen.is_empty() {
        return usage(&format!("no target `{target}`"));
    }
    let seed: u64 = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1
    });
    let per = Duration::from_secs_f64(time / chosen.len() as f64);
    let scratch = root().join("target/fuzz");
    let _ = std::fs::create_dir_all(&scratch);
    let mut failed = false;
    for &&(name, f) in &chosen {
        let mut rng = Rng(seed ^ fnv(name.as_bytes()) | 1);
        let (mut ran, mut ok, mut skipped) = (0u64, 0u64, 0u64);
        let current = scratch.join(format!("{name}.current"));
        let start = Instant::now();
        while start.elapsed() < per {
            let input = rng.input();
            let _ = std::fs::write(&current, &input);
            ran += 1;
            match check(f, &input) {
                Outcome::Ok => ok += 1,
                Outcome::Skipped => skipped += 1,
                Outcome::Failed(why) => {
                    let dir = root().join("crates/fuzz/regressions").join(name);
                    let _ = std::fs::create_dir_all(&dir);
                    let path = dir.join(format!("{:016x}.bin", fnv(&input)));
                    let _ = std::fs::write(&path, &input);
                    println!("FAIL {name}: {why}\n  input saved to {}", path.display());
                    failed = true;
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(&current);
        println!(
            "{name}: {ran} inputs in {:.1}s ({ok} checked, {skipped} skipped), seed {seed}",
            start.elapsed().as_secs_f64()
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn usage(why: &str) -> ExitCode {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    eprintln!(
        "error: {why}\nusage: weft-fuzz TARGET|all [--time SECONDS] [--seed N]\ntargets: {}",
        names.join(", ")
    );
    ExitCode::FAILURE
}
