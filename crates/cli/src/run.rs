//! `weft run`: instantiate a module and run its `_start` or an export.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use weft::{Config, Engine, Error, ExternType, Instance, Linker, Module, Store, Val, ValType};
use weft_wasi::{DeadlineExceeded, I32Exit, WasiCtx, WasiCtxBuilder};

use crate::args::{RunArgs, parse_bool, parse_duration, parse_fuel, parse_size};
use crate::output::{eprint_all, print_all};
use crate::{SIGINT_EXIT, TRAP_EXIT};

/// How a run ended, for the exit status.
enum Outcome {
    /// `--invoke`: the call returned these values.
    Returned(Vec<Val>),
    /// A WASI command returned from `_start` (0) or called `proc_exit`.
    Exited(i32),
    /// The run trapped.
    Trapped(weft::Trap),
    /// A blocking WASI call (sleep, read, poll) hit the `--timeout`.
    DeadlineExceeded,
    /// The store was interrupted (Ctrl-C) during a blocking WASI call.
    Interrupted,
}

/// What `-W`, `-S` and the plain options add up to.
#[derive(Default)]
struct Settings {
    timeout: Option<Duration>,
    fuel: Option<u64>,
    max_memory: Option<usize>,
    max_wasm_stack: Option<usize>,
    threads: Option<bool>,
    simd: Option<bool>,
    inherit_env: bool,
}

fn settings(a: &RunArgs) -> Result<Settings> {
    let mut s = Settings {
        timeout: a.timeout,
        fuel: a.fuel,
        max_memory: a.max_memory,
        ..Settings::default()
    };
    for opt in a.wasm_opts.iter().flat_map(|o| o.split(',')) {
        let (k, v) = match opt.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (opt.trim(), None),
        };
        let needs_value = matches!(k, "max-memory-size" | "timeout" | "fuel" | "max-wasm-stack");
        let val = match v {
            Some(v) => v,
            None if needs_value => bail!("-W {k} needs a value ({k}=...)"),
            None => "",
        };
        let err = |e: String| anyhow!("-W {k}: {e}");
        match k {
            "max-memory-size" => s.max_memory = Some(parse_size(val).map_err(err)?),
            "timeout" => s.timeout = Some(parse_duration(val).map_err(err)?),
            "fuel" => s.fuel = Some(parse_fuel(val).map_err(err)?),
            "max-wasm-stack" => s.max_wasm_stack = Some(parse_size(val).map_err(err)?),
            "threads" => s.threads = Some(parse_bool(k, v).map_err(anyhow::Error::msg)?),
            "simd" => s.simd = Some(parse_bool(k, v).map_err(anyhow::Error::msg)?),
            "" => {}
            other => bail!(
                "-W {other}: unknown option (known: max-memory-size, timeout, fuel, \
                 max-wasm-stack, threads, simd)"
            ),
        }
    }
    for opt in a.wasi_opts.iter().flat_map(|o| o.split(',')) {
        let (k, v) = match opt.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (opt.trim(), None),
        };
        match k {
            "inherit-env" => s.inherit_env = parse_bool(k, v).map_err(anyhow::Error::msg)?,
            "preview2" | "cli" | "http" | "nn" | "threads" => bail!(
                "-S {k}: not supported: weft runs WASI preview1 (wasi_snapshot_preview1) \
                 core modules only"
            ),
            "" => {}
            other => bail!("-S {other}: unknown option (known: inherit-env)"),
        }
    }
    Ok(s)
}

/// `HOST[::GUEST]` as (host, guest); an empty part is an error.
fn dir_spec(spec: &str) -> Result<(&str, &str)> {
    let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
    if host.is_empty() {
        bail!("--dir `{spec}`: the host directory is empty");
    }
    if guest.is_empty() {
        bail!("--dir `{spec}`: the guest name after `::` is empty");
    }
    Ok((host, guest))
}

fn wasi_context(file: &Path, args: &RunArgs, prog: &[OsString], s: &Settings) -> Result<WasiCtx> {
    let mut b = WasiCtxBuilder::new();
    let argv0 = args
        .argv0
        .clone()
        .unwrap_or_else(|| file.file_name().unwrap_or(file.as_os_str()).to_owned());
    b.arg(argv0).inherit_stdio();
    if args.invoke.is_none() {
        b.args(prog);
    }
    if s.inherit_env {
        b.inherit_env();
    }
    for e in &args.envs {
        match e.split_once('=') {
            Some(("", _)) => bail!("--env `{e}`: the variable name is empty"),
            Some((name, value)) => {
                b.env(name, value);
            }
            None if e.is_empty() => bail!("--env: the variable name is empty"),
            None => {
                if let Some(v) = std::env::var_os(e) {
                    b.env(e, v);
                }
            }
        }
    }
    let dirs = args.dirs.iter().map(|d| (d, false));
    for (d, readonly) in dirs.chain(args.dirs_ro.iter().map(|d| (d, true))) {
        let (host, guest) = dir_spec(d)?;
        // The library's error names the directory.
        b.preopened_dir(host, guest, readonly)?;
    }
    if let Some(t) = s.timeout
        && let Some(at) = Instant::now().checked_add(t)
    {
        b.deadline(at);
    }
    Ok(b.build())
}

/// Runs `weft run` and returns the exit status.
pub fn main(args: RunArgs, prog: Vec<OsString>) -> ExitCode {
    let interrupted = crate::sigint::Watch::new();
    let r = run(&args, &prog, &interrupted);
    let ctrl_c = interrupted.fired();
    match r {
        Ok(Outcome::Returned(vals)) => {
            let text: String = vals.iter().map(|v| format_val(v) + "\n").collect();
            print_all(&text);
            ExitCode::SUCCESS
        }
        Ok(Outcome::Exited(code)) => match u8::try_from(code) {
            Ok(c) => ExitCode::from(c),
            Err(_) => {
                eprint_all(&format!(
                    "error: the program exited with status {code}, which a process cannot report\n"
                ));
                ExitCode::FAILURE
            }
        },
        Ok(Outcome::Trapped(trap)) => {
            // One write: the message and the backtrace arrive together.
            eprint_all(&trap_text(&trap));
            ExitCode::from(if ctrl_c { SIGINT_EXIT } else { TRAP_EXIT })
        }
        Ok(Outcome::DeadlineExceeded) => {
            eprint_all("wasm trap: interrupt (the --timeout passed during a blocking call)\n");
            ExitCode::from(TRAP_EXIT)
        }
        Ok(Outcome::Interrupted) => {
            eprint_all("wasm trap: interrupt (during a blocking call)\n");
            ExitCode::from(if ctrl_c { SIGINT_EXIT } else { TRAP_EXIT })
        }
        Err(e) => {
            let m = crate::output::about(&args.file, &one_line(&e));
            eprint_all(&format!("error: {m}\n"));
            ExitCode::FAILURE
        }
    }
}

/// The trap message and its backtrace: every frame with function name,
/// index and module offset; with `WEFT_BACKTRACE_DETAILS=1`, the source
/// file and line of each frame from the module's DWARF, when it has it.
fn trap_text(trap: &weft::Trap) -> String {
    let details = std::env::var_os("WEFT_BACKTRACE_DETAILS").is_some_and(|v| v == "1");
    let mut s = format!("{trap}\n");
    if trap.frames().is_empty() {
        return s;
    }
    s.push_str("wasm backtrace:\n");
    for (i, f) in trap.frames().iter().enumerate() {
        s.push_str(&format!("  {i:>2}: {f}\n"));
        if details
            && let (Some(m), Some(o)) = (f.module(), f.module_offset())
            && let Some((file, line)) = m.source_location(o)
        {
            s.push_str(&format!("        at {file}:{line}\n"));
        }
    }
    if trap.more_frames() > 0 {
        s.push_str(&format!("  ... {} more frames\n", trap.more_frames()));
    }
    if !details {
        s.push_str("note: WEFT_BACKTRACE_DETAILS=1 adds source lines (for modules with DWARF)\n");
    }
    s
}

/// An error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// FILE as a module: compiled (or found in the cache), or, with
/// `allow_precompiled`, loaded from `weft compile`'s output.
pub(crate) fn load_module(engine: &Engine, file: &Path, allow_precompiled: bool) -> Result<Module> {
    let mut head = [0u8; 16];
    let n = std::fs::File::open(file)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    if !Module::is_precompiled(&head[..n]) {
        return Ok(Module::from_file(engine, file)?);
    }
    if !allow_precompiled {
        bail!(
            "{} is precompiled code (from `weft compile`); pass --allow-precompiled to run it \
             (its machine code runs as it is: only run files you compiled yourself)",
            file.display()
        );
    }
    // SAFETY: the user asserted with --allow-precompiled that the file is
    // weft's own output; it is still refused if made for another weft
    // version, engine configuration or CPU.
    Ok(unsafe { Module::deserialize_file(engine, file) }?)
}

fn run(args: &RunArgs, prog: &[OsString], watch: &crate::sigint::Watch) -> Result<Outcome> {
    let s = settings(args)?;
    let mut config = Config::new();
    config
        .consume_fuel(s.fuel.is_some())
        .max_memory_size(s.max_memory);
    if let Some(b) = s.max_wasm_stack {
        config.max_wasm_stack(b);
    }
    if let Some(t) = s.threads {
        config.wasm_threads(t);
    }
    if let Some(t) = s.simd {
        config.wasm_simd(t);
    }
    if !args.no_cache {
        config.cache_dir(Config::default_cache_dir());
    }
    let engine = Engine::new(&config)?;
    let module = load_module(&engine, &args.file, args.allow_precompiled)?;
    let ctx = wasi_context(&args.file, args, prog, &s)?;
    let mut store = Store::new(&engine, ctx);
    if let Some(fuel) = s.fuel {
        store.set_fuel(fuel)?;
    }
    if let Some(t) = s.timeout {
        store.set_timeout(t)?;
    }
    watch.arm(store.interrupt_handle());
    let mut linker = Linker::new();
    weft_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c)?;
    for p in &args.preload {
        let (name, file) = p
            .split_once('=')
            .filter(|(n, f)| !n.is_empty() && !f.is_empty())
            .ok_or_else(|| anyhow!("--preload `{p}`: expected NAME=FILE"))?;
        let m = Module::from_file(&engine, file).with_context(|| format!("--preload {name}"))?;
        let inst = match linker.instantiate(&mut store, &m) {
            Ok(i) => i,
            Err(e) => return finish(Err(e)).context(format!("--preload {name}")),
        };
        linker
            .instance(&mut store, name, inst)
            .with_context(|| format!("--preload {name}"))?;
    }
    let instance: Instance = match linker.instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(e) => return finish(Err(e)).context("cannot instantiate the module"),
    };
    let Some(invoke) = &args.invoke else {
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
    let ty = func.ty(&store)?;
    if prog.len() != ty.params().len() {
        bail!(
            "`{invoke}` takes {} argument(s) of type(s) [{}], {} given",
            ty.params().len(),
            ty.params()
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            prog.len()
        );
    }
    let params = ty
        .params()
        .iter()
        .zip(prog)
        .enumerate()
        .map(|(i, (t, a))| {
            let a = a
                .to_str()
                .ok_or_else(|| anyhow!("argument {} is not valid UTF-8", i + 1))?;
            parse_arg(t.clone(), a).with_context(|| format!("argument {} (`{a}`)", i + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut results: Vec<Val> = ty.results().iter().map(Val::default_for).collect();
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
            } else if weft_wasi::Interrupted::matches(&e) {
                Ok(Outcome::Interrupted)
            } else {
                Err(anyhow!(e))
            }
        }
    }
}

fn exported_functions(module: &Module) -> String {
    let names: Vec<&str> = module
        .exports()
        .filter(|e| matches!(e.ty(), ExternType::Func(_)))
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

/// Parses a command-line argument as a value of type `ty`. Integers may be
/// negative or hex and must fit (as signed or unsigned); floats take every
/// form WebAssembly text does (`1.5`, `0x1p-3`, `inf`, `nan`, `nan:0x200000`);
/// a `v128` is one unsigned 128-bit number, decimal or hex (byte 0 in the low
/// bits), as results are printed.
pub fn parse_arg(ty: ValType, s: &str) -> Result<Val> {
    Ok(match ty {
        ValType::I32 => {
            let v = parse_int(s).map_err(|_| anyhow!("not an integer"))?;
            if !(i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&v) {
                bail!("out of range for i32 (-2147483648 to 4294967295)");
            }
            Val::I32(v as i64 as i32)
        }
        ValType::I64 => {
            let v = parse_int(s).map_err(|_| anyhow!("not an integer"))?;
            if !(i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&v) {
                bail!("out of range for i64");
            }
            Val::I64(v as i64)
        }
        ValType::F32 => Val::F32(crate::wast::parse_f32(s)?),
        ValType::F64 => Val::F64(crate::wast::parse_f64(s)?),
        ValType::V128 => {
            // The 128 bits as one number, as results are printed.
            let t = s.replace('_', "");
            let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u128::from_str_radix(hex, 16),
                None => t.parse::<u128>(),
            };
            Val::V128(v.map_err(|_| anyhow!("not a 128-bit number (e.g. 0x0102…)"))?)
        }
        other => bail!("arguments of type {other} cannot be given on the command line"),
    })
}

/// Formats a result value: integers in decimal, floats in the shortest form
/// that reads back to the same bits, NaNs with their payload when it is not
/// the canonical one.
pub fn format_val(v: &Val) -> String {
    match v {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(b) => format_float(f64::from(f32::from_bits(*b)), u64::from(*b), 32),
        Val::F64(b) => format_float(f64::from_bits(*b), *b, 64),
        Val::V128(x) => format!("{x:#034x}"),
        Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) => "null".to_string(),
        Val::FuncRef(Some(_)) => "funcref".to_string(),
        Val::ExternRef(Some(_)) => "externref".to_string(),
        Val::ExnRef(Some(_)) => "exnref".to_string(),
    }
}

fn format_float(v: f64, bits: u64, width: u32) -> String {
    let (mantissa_bits, sign_bit) = if width == 32 { (23, 31) } else { (52, 63) };
    let sign = if bits >> sign_bit & 1 == 1 { "-" } else { "" };
    if v.is_nan() {
        let payload = bits & ((1u64 << mantissa_bits) - 1);
        let canonical = 1u64 << (mantissa_bits - 1);
        return if payload == canonical {
            format!("{sign}nan")
        } else {
            format!("{sign}nan:{payload:#x}")
        };
    }
    if v.is_infinite() {
        return format!("{sign}inf");
    }
    if width == 32 {
        format!("{:?}", f32::from_bits(bits as u32))
    } else {
        format!("{v:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_shortest_and_nans_with_payloads() {
        assert_eq!(format_val(&Val::F64(0.1f64.to_bits())), "0.1");
        assert_eq!(format_val(&Val::F32(0.1f32.to_bits())), "0.1");
        assert_eq!(format_val(&Val::F64(1e300f64.to_bits())), "1e300");
        assert_eq!(format_val(&Val::F64(f64::NAN.to_bits())), "nan");
        assert_eq!(format_val(&Val::F32(0x7fa0_0000)), "nan:0x200000");
        assert_eq!(format_val(&Val::F32(0xffc0_0000)), "-nan");
        assert_eq!(format_val(&Val::F64(f64::NEG_INFINITY.to_bits())), "-inf");
        for s in ["0.1", "1e300", "nan:0x1234", "-inf", "5e-324"] {
            let v = parse_arg(ValType::F64, s).unwrap();
            assert_eq!(format_val(&v), s, "round trip of {s}");
        }
    }

    #[test]
    fn integer_arguments_are_range_checked() {
        assert!(matches!(
            parse_arg(ValType::I32, "4294967295"),
            Ok(Val::I32(-1))
        ));
        assert!(parse_arg(ValType::I32, "4294967296").is_err());
        assert!(parse_arg(ValType::I32, "-2147483649").is_err());
        assert!(matches!(parse_arg(ValType::I64, "0x10"), Ok(Val::I64(16))));
        assert!(
            matches!(parse_arg(ValType::F32, "0x1.8p1"), Ok(Val::F32(b)) if f32::from_bits(b) == 3.0)
        );
    }

    #[test]
    fn v128_arguments_read_back_what_results_print() {
        let v = Val::V128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(parse_arg(ValType::V128, &format_val(&v)).unwrap(), v);
        assert_eq!(parse_arg(ValType::V128, "17").unwrap(), Val::V128(17));
        assert!(parse_arg(ValType::V128, "0x1_0000_0000_0000_0000_0000_0000_0000_0000").is_err());
        assert!(parse_arg(ValType::V128, "-1").is_err());
    }
}
