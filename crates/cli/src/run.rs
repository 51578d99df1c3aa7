//! `weft run`: instantiate a module and call one of its exports.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use weft::{Config, Engine, Error, Instance, Linker, Module, Store, Val, ValType};
use weft_wasi::{DeadlineExceeded, I32Exit, WasiCtx, WasiCtxBuilder};

/// How a run ended, for the exit status.
pub enum Outcome {
    /// `--invoke`: the call returned these values.
    Returned(Vec<Val>),
    /// A WASI command returned from `_start` (0) or called `proc_exit`.
    Exited(i32),
    /// The run trapped.
    Trapped(weft::Trap),
    /// A blocking WASI call (sleep, read, poll) hit the `--timeout`.
    DeadlineExceeded,
}

/// Options of `weft run`.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Call this export instead of running `_start`.
    pub invoke: Option<String>,
    /// `HOST[::GUEST]` directories to pre-open.
    pub dirs: Vec<String>,
    /// `NAME[=VALUE]` environment variables (`NAME` alone inherits).
    pub envs: Vec<String>,
    /// Interrupt the run after this long.
    pub timeout: Option<Duration>,
    /// Give the run this much fuel (one unit per instruction, roughly).
    pub fuel: Option<u64>,
    /// Refuse to grow any linear memory beyond this many bytes.
    pub max_memory: Option<usize>,
}

/// Parses a size like `65536`, `64KiB`, `16MiB`, `1GiB` (or k/M/G).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
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

/// Parses a duration like `500ms`, `2s`, `1.5s`, `3m` or a bare number of
/// seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 500ms, 2s or 1m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is not a valid duration"))
}

fn wasi_context(file: &Path, args: &[String], opts: &Options) -> Result<WasiCtx> {
    let mut b = WasiCtxBuilder::new();
    b.arg(file.file_name().unwrap_or(file.as_os_str()))
        .inherit_stdio();
    if opts.invoke.is_none() {
        b.args(args);
    }
    for e in &opts.envs {
        match e.split_once('=') {
            Some((name, value)) => {
                b.env(name, value);
            }
            None => {
                if let Some(v) = std::env::var_os(e) {
                    b.env(e, v);
                }
            }
        }
    }
    for d in &opts.dirs {
        let (host, guest) = d.split_once("::").unwrap_or((d, d));
        b.preopened_dir(host, guest, false)
            .with_context(|| format!("--dir {d}: cannot open `{host}` (does it exist?)"))?;
    }
    if let Some(t) = opts.timeout
        && let Some(at) = Instant::now().checked_add(t)
    {
        b.deadline(at);
    }
    Ok(b.build())
}

/// Runs `file`: its `_start` as a WASI command (with `args` as the guest's
/// arguments), or the export named by `--invoke` (with `args` parsed by its
/// parameter types).
pub fn run(file: &Path, args: &[String], opts: &Options) -> Result<Outcome> {
    let bytes = super::read_module(file)?;
    let mut config = Config::new();
    config
        .consume_fuel(opts.fuel.is_some())
        .max_memory_size(opts.max_memory);
    let engine = Engine::new(&config)?;
    let module = Module::from_binary(&engine, &bytes).context("cannot compile the module")?;
    let ctx = wasi_context(file, args, opts)?;
    let mut store = Store::new(&engine, ctx);
    if let Some(fuel) = opts.fuel {
        store.set_fuel(fuel)?;
    }
    if let Some(t) = opts.timeout {
        store.set_timeout(t)?;
    }
    let mut linker = Linker::new();
    weft_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c)?;
    let instance: Instance = match linker.instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(e) => return finish(Err(e)).context("cannot instantiate the module"),
    };
    let Some(invoke) = &opts.invoke else {
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|_| {
                anyhow!(
                    "the module has no `_start` function (not a WASI command); \
                 call one of its exports with --invoke NAME ({})",
                    exported_functions(&module)
                )
            })?;
        return finish(start.call(&mut store, ()).map(|()| Outcome::Exited(0)));
    };
    let func = instance.get_func(&mut store, invoke).ok_or_else(|| {
        anyhow!(
            "the module exports no function `{invoke}` (exported functions: {})",
            exported_functions(&module)
        )
    })?;
    let ty = func.ty(&mut store)?;
    if args.len() != ty.params().len() {
        bail!(
            "`{invoke}` takes {} argument(s) of type(s) [{}], {} given",
            ty.params().len(),
            ty.params()
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            args.len()
        );
    }
    let params = ty
        .params()
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, (t, a))| parse_arg(*t, a).with_context(|| format!("argument {} (`{a}`)", i + 1)))
        .collect::<Result<Vec<_>>>()?;
    let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
    finish(
        func.call(&mut store, &params, &mut results)
            .map(|()| Outcome::Returned(results)),
    )
}

/// Sorts an error into an outcome (traps, exits, deadlines) or a real error.
fn finish(r: weft::Result<Outcome>) -> Result<Outcome> {
    match r {
        Ok(o) => Ok(o),
        Err(Error::Trap(t)) => Ok(Outcome::Trapped(t)),
        Err(e) => {
            if let Some(code) = I32Exit::from_error(&e) {
                Ok(Outcome::Exited(code))
            } else if DeadlineExceeded::matches(&e) {
                Ok(Outcome::DeadlineExceeded)
            } else {
                Err(anyhow!(e))
            }
        }
    }
}

fn exported_functions(module: &Module) -> String {
    let names: Vec<&str> = module
        .exports()
        .filter(|e| matches!(e.ty(), weft::ExternType::Func(_)))
        .map(|e| e.name())
        .collect();
    if names.is_empty() {
        "it exports none".to_string()
    } else {
        names.join(", ")
    }
}

fn parse_int(s: &str) -> Result<i128> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let body = body.replace('_', "");
    let v = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => i128::from_str_radix(hex, 16)?,
        None => body.parse::<i128>()?,
    };
    Ok(if neg { -v } else { v })
}

/// Parses a command-line argument as a value of type `ty`.
pub fn parse_arg(ty: ValType, s: &str) -> Result<Val> {
    Ok(match ty {
        ValType::I32 => {
            let v = parse_int(s)?;
            if !(i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&v) {
                bail!("out of range for i32");
            }
            Val::I32(v as i64 as i32)
        }
        ValType::I64 => {
            let v = parse_int(s)?;
            if !(i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&v) {
                bail!("out of range for i64");
            }
            Val::I64(v as i64)
        }
        ValType::F32 => Val::F32(s.parse::<f32>()?.to_bits()),
        ValType::F64 => Val::F64(s.parse::<f64>()?.to_bits()),
        other => bail!("arguments of type {other} cannot be given on the command line"),
    })
}

/// Formats a result value for printing.
pub fn format_val(v: &Val) -> String {
    match v {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(b) => f32::from_bits(*b).to_string(),
        Val::F64(b) => f64::from_bits(*b).to_string(),
        Val::V128(x) => format!("{x:#034x}"),
        Val::FuncRef(None) | Val::ExternRef(None) => "null".to_string(),
        Val::FuncRef(Some(_)) => "funcref".to_string(),
        Val::ExternRef(Some(_)) => "externref".to_string(),
    }
}
