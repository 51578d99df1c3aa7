//! `weft run`: instantiate a module and call one of its exports.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use weft::{Config, Engine, Error, Instance, Linker, Module, Store, Val, ValType};

/// How a run ended, for the exit status.
pub enum Outcome {
    /// The call returned these values.
    Returned(Vec<Val>),
    /// The call trapped.
    Trapped(weft::Trap),
}

/// Limits on a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Limits {
    /// Interrupt the call after this long.
    pub timeout: Option<Duration>,
    /// Give the call this much fuel (one unit per instruction, roughly).
    pub fuel: Option<u64>,
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

/// Runs `invoke` (an export of `file`) with `args` parsed by its parameter
/// types.
pub fn run(file: &Path, invoke: &str, args: &[String], limits: Limits) -> Result<Outcome> {
    let bytes = super::read_module(file)?;
    let mut config = Config::new();
    config.consume_fuel(limits.fuel.is_some());
    let engine = Engine::new(&config)?;
    let module = Module::from_binary(&engine, &bytes).context("cannot compile the module")?;
    let mut store = Store::new(&engine, ());
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel)?;
    }
    if let Some(t) = limits.timeout {
        store.set_timeout(t);
    }
    let linker = Linker::new();
    let instance: Instance = match linker.instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(Error::Trap(t)) => return Ok(Outcome::Trapped(t)),
        Err(e) => {
            return Err(anyhow!(e)).context(
                "cannot instantiate the module (modules with imports need a host; \
                 `weft run` provides none for --invoke yet)",
            );
        }
    };
    let func = instance.get_func(&mut store, invoke).ok_or_else(|| {
        let exports: Vec<String> = module
            .exports()
            .filter(|(_, t)| matches!(t, weft::ExternType::Func(_)))
            .map(|(n, _)| n.to_string())
            .collect();
        anyhow!(
            "the module exports no function `{invoke}` (exported functions: {})",
            if exports.is_empty() {
                "none".to_string()
            } else {
                exports.join(", ")
            }
        )
    })?;
    let ty = func.ty(&mut store)?;
    if args.len() != ty.params.len() {
        bail!(
            "`{invoke}` takes {} argument(s) of type(s) [{}], {} given",
            ty.params.len(),
            ty.params
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            args.len()
        );
    }
    let params = ty
        .params
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, (t, a))| parse_arg(*t, a).with_context(|| format!("argument {} (`{a}`)", i + 1)))
        .collect::<Result<Vec<_>>>()?;
    let mut results: Vec<Val> = ty.results.iter().map(|t| Val::default_for(*t)).collect();
    match func.call(&mut store, &params, &mut results) {
        Ok(()) => Ok(Outcome::Returned(results)),
        Err(Error::Trap(t)) => Ok(Outcome::Trapped(t)),
        Err(e) => Err(anyhow!(e)),
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
