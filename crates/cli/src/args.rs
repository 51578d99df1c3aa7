//! Command-line words: which belong to weft and which to the program.
//!
//! The rule: for `weft run`, weft's options come before FILE; FILE and every
//! word after it are the program's, untouched — even `--dir /`, `--help` or
//! `--`. So a wrapper that forwards untrusted arguments
//! (`weft run prog.wasm "$@"`) cannot hand out host access. `weft FILE ...`
//! means `weft run FILE ...`.
//!
//! [`split`] finds FILE by walking the options (knowing which take a value)
//! and gives clap only the words up to FILE.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `weft run` (FILE is the last word clap sees).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Call this exported function instead of the WASI `_start`; ARGS are
    /// its arguments (integers, floats such as 1.5, 0x1p-3, nan:0x200000,
    /// inf).
    #[arg(long, value_name = "NAME")]
    pub invoke: Option<String>,
    /// Make a host directory visible to the program, optionally under
    /// another name: `--dir data` or `--dir /tmp/out::out`. Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub dirs: Vec<String>,
    /// As --dir, read-only: the program can read but not create, change or
    /// delete anything there. Repeatable.
    #[arg(long = "dir-ro", value_name = "HOST[::GUEST]")]
    pub dirs_ro: Vec<String>,
    /// Set an environment variable for the program; `--env NAME` passes
    /// this process's value on. Repeatable.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    pub envs: Vec<String>,
    /// Stop the run (a trap, "interrupt") after this long: 0, 500us, 250ms,
    /// 2.5s, 1m, 1h (a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub timeout: Option<Duration>,
    /// Stop the run (a trap, "all fuel consumed") after about this many
    /// instructions.
    #[arg(long, value_name = "N", value_parser = parse_fuel, allow_hyphen_values = true)]
    pub fuel: Option<u64>,
    /// Refuse to grow linear memory beyond this size: 65536, 64KiB, 16MiB,
    /// 1GiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, allow_hyphen_values = true)]
    pub max_memory: Option<usize>,
    /// WebAssembly options, comma-separated (as `wasmtime run -W`):
    /// max-memory-size=SIZE, timeout=DURATION, fuel=N, max-wasm-stack=SIZE,
    /// threads=y|n, simd=y|n.
    #[arg(short = 'W', value_name = "OPT=VALUE,...")]
    pub wasm_opts: Vec<String>,
    /// WASI options, comma-separated (as `wasmtime run -S`):
    /// inherit-env[=y|n] passes this process's whole environment on.
    #[arg(short = 'S', value_name = "OPT[=VALUE],...")]
    pub wasi_opts: Vec<String>,
    /// The program's argv[0] (default: FILE's name).
    #[arg(long, value_name = "NAME")]
    pub argv0: Option<OsString>,
    /// Instantiate another module first and link its exports under NAME
    /// (for modules that import from it). Repeatable.
    #[arg(long, value_name = "NAME=FILE")]
    pub preload: Vec<String>,
    /// Compile afresh: neither read nor fill the compiled-module cache
    /// ($XDG_CACHE_HOME/weft, else ~/.cache/weft).
    #[arg(long)]
    pub no_cache: bool,
    /// Allow FILE to be precompiled code (.cwasm, from `weft compile`).
    /// Its machine code runs as it is: only use files you compiled.
    #[arg(long)]
    pub allow_precompiled: bool,
    /// The module: binary (.wasm), text (.wat), or precompiled (.cwasm,
    /// with --allow-precompiled). Every word after it is the program's.
    pub file: PathBuf,
}

/// Options of `weft run` that take a value as the next word.
const VALUE_OPTIONS: &[&str] = &[
    "--invoke",
    "--dir",
    "--dir-ro",
    "--env",
    "--timeout",
    "--fuel",
    "--max-memory",
    "-W",
    "-S",
    "--argv0",
    "--preload",
];

/// Subcommands (anything else in first position is a FILE to run).
const SUBCOMMANDS: &[&str] = &["run", "compile", "validate", "wast", "help"];

/// Splits the command line into what clap parses and the program's own
/// arguments (the words after FILE of `weft run`).
pub fn split(argv: &[OsString]) -> (Vec<OsString>, Vec<OsString>) {
    let Some(first) = argv.get(1) else {
        return (argv.to_vec(), Vec::new());
    };
    let first_str = first.to_str().unwrap_or("");
    let (mut head, rest): (Vec<OsString>, &[OsString]) = if first_str == "run" {
        (argv[..2].to_vec(), &argv[2..])
    } else if SUBCOMMANDS.contains(&first_str) || first_str.starts_with('-') {
        return (argv.to_vec(), Vec::new());
    } else {
        // `weft FILE ...` is `weft run FILE ...`.
        (vec![argv[0].clone(), OsString::from("run")], &argv[1..])
    };
    let mut i = 0;
    while i < rest.len() {
        let word = rest[i].as_os_str();
        if word == OsStr::new("--") {
            // `--` ends weft's options; the next word is FILE (and `--`
            // itself is dropped, as usual).
            if let Some(file) = rest.get(i + 1) {
                head.push(file.clone());
                return (head, rest[i + 2..].to_vec());
            }
            return (head, Vec::new());
        }
        let s = word.to_str().unwrap_or("");
        if s.starts_with('-') && s.len() > 1 {
            head.push(rest[i].clone());
            let takes_value = VALUE_OPTIONS.contains(&s);
            if takes_value && let Some(v) = rest.get(i + 1) {
                head.push(v.clone());
                i += 1;
            }
            i += 1;
            continue;
        }
        // FILE.
        head.push(rest[i].clone());
        return (head, rest[i + 1..].to_vec());
    }
    (head, Vec::new())
}

/// Parses a duration: `0`, `500us`, `250ms`, `2.5s`, `1m`, `1h`; a bare
/// number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    const HINT: &str = "give a time like 500ms, 2.5s or 1m";
    if s.starts_with('-') {
        return Err(format!("a duration cannot be negative ({HINT})"));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num = num.replace('_', "");
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration ({HINT})"))?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{s}` (use ns, us, ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(v * scale).map_err(|_| format!("`{s}` is too long a duration"))
}

/// Parses a fuel amount: a non-negative integer (`_` separators allowed).
pub fn parse_fuel(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err("fuel cannot be negative (give a number of instructions, like 1000000)".into());
    }
    t.replace('_', "").parse().map_err(|_| {
        format!("`{s}` is not an amount of fuel (give a number of instructions, like 1000000)")
    })
}

/// Parses a size: `65536`, `64KiB`, `16MiB`, `1GiB` (or k/K, M, G).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    if s.starts_with('-') {
        return Err("a size cannot be negative (try 65536, 64KiB or 16MiB)".into());
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (try 65536, 64KiB or 16MiB)"))?;
    let mul: usize = match unit.trim() {
        "" | "B" => 1,
        "k" | "K" | "KiB" | "kiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses a yes/no option value (`y`, `yes`, `true`, `1` / `n`, `no`,
/// `false`, `0`; absent means yes).
pub fn parse_bool(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v.unwrap_or("y") {
        "y" | "yes" | "true" | "1" => Ok(true),
        "n" | "no" | "false" | "0" => Ok(false),
        other => Err(format!("{key}={other}: expected y or n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn everything_after_file_belongs_to_the_program() {
        let (head, prog) = split(&os(&[
            "weft", "run", "--dir", ".", "p.wasm", "--dir", "/", "--help", "--",
        ]));
        assert_eq!(head, os(&["weft", "run", "--dir", ".", "p.wasm"]));
        assert_eq!(prog, os(&["--dir", "/", "--help", "--"]));
    }

    #[test]
    fn a_bare_file_runs() {
        let (head, prog) = split(&os(&["weft", "p.wasm", "-x"]));
        assert_eq!(head, os(&["weft", "run", "p.wasm"]));
        assert_eq!(prog, os(&["-x"]));
    }

    #[test]
    fn double_dash_before_file_ends_weft_options() {
        let (head, prog) = split(&os(&["weft", "run", "--", "-odd-name.wasm", "a"]));
        assert_eq!(head, os(&["weft", "run", "-odd-name.wasm"]));
        assert_eq!(prog, os(&["a"]));
    }

    #[test]
    fn attached_values_and_subcommands() {
        let (head, prog) = split(&os(&[
            "weft",
            "run",
            "--timeout=2s",
            "-Wfuel=5",
            "p.wat",
            "x",
        ]));
        assert_eq!(
            head,
            os(&["weft", "run", "--timeout=2s", "-Wfuel=5", "p.wat"])
        );
        assert_eq!(prog, os(&["x"]));
        let (head, prog) = split(&os(&["weft", "validate", "--all", "x.wasm"]));
        assert_eq!(head, os(&["weft", "validate", "--all", "x.wasm"]));
        assert!(prog.is_empty());
        let (head, _) = split(&os(&["weft", "--help"]));
        assert_eq!(head, os(&["weft", "--help"]));
    }

    #[test]
    fn durations_users_write() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        let neg = parse_duration("-1s").unwrap_err();
        assert!(neg.contains("negative") && neg.contains("500ms"), "{neg}");
        assert!(parse_duration("2 parsecs").is_err());
    }

    #[test]
    fn fuel_and_sizes() {
        assert_eq!(parse_fuel("0"), Ok(0));
        assert_eq!(parse_fuel("1_000_000"), Ok(1_000_000));
        assert!(parse_fuel("-5").unwrap_err().contains("negative"));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert!(parse_size("-1").is_err());
    }
}
