//! Fuzz targets for weft as plain functions over bytes, so that they run on
//! stable Rust: `cargo xtask fuzz TARGET --time N` drives them with random
//! inputs, `tests/regressions.rs` replays every input saved under
//! `regressions/<target>/`, and `cargo xtask test` runs a bounded smoke pass.
//!
//! Targets (see [`TARGETS`]):
//! - `decode`: arbitrary bytes; weft's validation must agree with
//!   wasmparser's (same features) and never panic.
//! - `compile`: wasm-smith modules within weft's features must compile (also
//!   with small functions inlined).
//! - `run`: wasm-smith modules instantiated and every export called with
//!   fuel; traps are fine, panics and crashes are not.
//! - `differential`: wasm-smith modules that always terminate, run on weft
//!   and on wasmi 1.x; results, traps and final memory must agree.
//! - `interrupt`: the same modules with interruption checks off and on (and
//!   epoch checks) must give the same results.
//! - `reset`: wasm-smith modules (everything exported) in an `InstancePool`
//!   of a pooling engine with write marks: after every export was called,
//!   the reset instance's memory must be byte for byte a fresh one's (every
//!   way compiled code writes memory must mark what it wrote).

use std::panic::{AssertUnwindSafe, catch_unwind};

use arbitrary::Unstructured;
use weft::{
    Config, Engine, Extern, ExternType, Instance, InstanceAllocationStrategy, InstancePool,
    InstancePoolConfig, Linker, Module, PoolingAllocationConfig, Store, Val, ValType,
};

/// A fuzz target: one input in, what it did out.
pub type Target = fn(&[u8]) -> Outcome;

/// The targets, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("decode", decode),
    ("compile", compile),
    ("run", run),
    ("differential", differential),
    ("interrupt", interrupt),
    ("reset", reset),
];

/// What one input did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and everything agreed.
    Ok,
    /// Nothing to check (the input made no usable module, or the oracle
    /// cannot judge it: e.g. the two runtimes' stack limits differ).
    Skipped,
    /// A bug: what went wrong.
    Failed(String),
}

/// Runs target `f` on `data`, turning a panic into a failure.
pub fn check(f: Target, data: &[u8]) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| f(data))) {
        Ok(o) => o,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Outcome::Failed(format!("panicked: {msg}"))
        }
    }
}

/// The wasm-smith configuration for what weft runs: WebAssembly 2.0, plus
/// threads, relaxed SIMD and exception handling when `all`; without `all`
/// (what the wasmi oracle of the differential target is compared on), none
/// of those.
fn smith_config(all: bool) -> wasm_smith::Config {
    wasm_smith::Config {
        simd_enabled: all,
        relaxed_simd_enabled: all,
        exceptions_enabled: all,
        gc_enabled: false,
        memory64_enabled: false,
        tail_call_enabled: false,
        wide_arithmetic_enabled: false,
        extended_const_enabled: false,
        custom_page_sizes_enabled: false,
        compact_imports_enabled: false,
        threads_enabled: all,
        max_memories: 1,
        max_imports: 0,
        // Small memories and tables: compared byte by byte after each run.
        max_memory32_bytes: 1 << 20,
        max_table_elements: 10_000,
        ..wasm_smith::Config::default()
    }
}

/// A wasm-smith module from `data` with every item exported (so its memory
/// can be read), made to terminate.
fn smith_exported(data: &[u8]) -> Option<Vec<u8>> {
    let mut cfg = smith_config(true);
    cfg.export_everything = true;
    smith_with(data, cfg)
}

/// A wasm-smith module from `data`, made to terminate (a global fuel counter
/// traps with `unreachable` when spent).
fn smith(data: &[u8], all: bool, canonical_nans: bool) -> Option<Vec<u8>> {
    let mut cfg = smith_config(all);
    cfg.canonicalize_nans = canonical_nans;
    smith_with(data, cfg)
}

/// A wasm-smith module from `data` under `cfg`, made to terminate.
fn smith_with(data: &[u8], cfg: wasm_smith::Config) -> Option<Vec<u8>> {
    let mut u = Unstructured::new(data);
    let mut m = wasm_smith::Module::new(cfg, &mut u).ok()?;
    m.ensure_termination(1_000).ok()?;
    Some(m.to_bytes())
}

/// The module target `target` builds from `data` (for looking into a
/// failure), if it builds one.
pub fn module_of(target: &str, data: &[u8]) -> Option<Vec<u8>> {
    match target {
        "decode" => Some(decoder_input(data)),
        "compile" | "run" => smith(data, true, false),
        "differential" => smith(data, false, true),
        "interrupt" => smith(data, true, true),
        "reset" => smith_exported(data),
        _ => None,
    }
}

/// The features of `Engine::default()`, for wasmparser as the decode
/// target's oracle.
fn features() -> wasmparser::WasmFeatures {
    use wasmparser::WasmFeatures as F;
    F::WASM2
        | F::THREADS
        | F::MULTI_MEMORY
        | F::MEMORY64
        | F::EXTENDED_CONST
        | F::TAIL_CALL
        | F::FUNCTION_REFERENCES
        | F::RELAXED_SIMD
        | F::EXCEPTIONS
}

/// Engines shared by every input (creating one per input would dominate).
fn engine(which: usize) -> &'static Engine {
    static ENGINES: std::sync::OnceLock<[Engine; 6]> = std::sync::OnceLock::new();
    &ENGINES.get_or_init(|| {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_instances(8)
            .total_memories(8)
            .total_tables(8)
            .max_memory_size(16 << 20)
            .write_marks(true);
        [
            Engine::default(),
            Engine::new(Config::new().consume_fuel(true)).expect("config"),
            Engine::new(Config::new().interruptible(false)).expect("config"),
            Engine::new(Config::new().epoch_interruption(true)).expect("config"),
            Engine::new(
                Config::new().allocation_strategy(InstanceAllocationStrategy::Pooling(pooling)),
            )
            .expect("config"),
            Engine::new(Config::new().inline_small_functions(true)).expect("config"),
        ]
    })[which]
}

/// Bytes for the decoder: the input as it is, or (if its first byte is
/// even) a valid module with a few of its bytes overwritten by the rest of
/// the input, which reaches much deeper into the decoder.
fn decoder_input(data: &[u8]) -> Vec<u8> {
    let Some((&first, rest)) = data.split_first() else {
        return Vec::new();
    };
    if first % 2 == 1 {
        return data.to_vec();
    }
    let (seed, edits) = rest.split_at(rest.len() / 2);
    let Some(mut bytes) = smith(seed, true, false) else {
        return data.to_vec();
    };
    for pair in edits.chunks(3).take(4) {
        if let [a, b, v] = *pair
            && !bytes.is_empty()
        {
            let i = (usize::from(a) << 8 | usize::from(b)) % bytes.len();
            bytes[i] = v;
        }
    }
    bytes
}

/// Arbitrary and mutated modules: weft accepts exactly what wasmparser
/// accepts, and never panics.
pub fn decode(data: &[u8]) -> Outcome {
    let data = &decoder_input(data);
    let ours = Module::validate(engine(0), data).is_ok();
    let theirs = wasmparser::Validator::new_with_features(features())
        .validate_all(data)
        .is_ok();
    if ours == theirs {
        Outcome::Ok
    } else {
        Outcome::Failed(format!("weft valid: {ours}, wasmparser valid: {theirs}"))
    }
}

/// Valid modules compile.
pub fn compile(data: &[u8]) -> Outcome {
    let Some(bytes) = smith(data, true, false) else {
        return Outcome::Skipped;
    };
    // The default engine, and one that inlines small functions (Cranelift's
    // inliner on every shape of callee wasm-smith makes).
    for which in [0, 5] {
        if let Err(e) = Module::new(engine(which), &bytes) {
            return Outcome::Failed(format!(
                "a valid module did not compile (engine {which}): {e}"
            ));
        }
    }
    Outcome::Ok
}

/// Zero (default) arguments for a function type.
fn args_for(params: &[ValType]) -> Vec<Val> {
    params.iter().map(Val::default_for).collect()
}

/// Every export called, on a store of `engine`; each call's results or
/// `Err(trap kind as text)`.
type Calls = Vec<(String, Result<Vec<u128>, String>)>;

fn run_exports(engine: &Engine, bytes: &[u8], fuel: bool) -> Result<(Calls, Vec<u8>), String> {
    let module = Module::new(engine, bytes).map_err(|e| format!("compile: {e}"))?;
    let mut store = Store::new(engine, ());
    if fuel {
        store.set_fuel(1_000_000).map_err(|e| e.to_string())?;
    }
    let instance = match Linker::new().instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(weft::Error::Trap(t)) => {
            return Ok((
                vec![("<start>".into(), Err(t.message().into()))],
                Vec::new(),
            ));
        }
        Err(weft::Error::Exception(_)) => {
            return Ok((
                vec![("<start>".into(), Err("uncaught exception".into()))],
                Vec::new(),
            ));
        }
        Err(e) => return Err(format!("instantiate: {e}")),
    };
    let mut calls = Vec::new();
    for (name, r) in call_exports(&mut store, &instance, &module) {
        let r = match r {
            Ok(results) => Ok(results.iter().map(raw).collect()),
            Err(weft::Error::Trap(t)) => Err(t.message().to_string()),
            Err(weft::Error::Exception(_)) => Err("uncaught exception".to_string()),
            Err(e) => return Err(format!("call {name}: {e}")),
        };
        calls.push((name, r));
    }
    Ok((calls, memory_of(&mut store, &instance, &module)))
}

/// Calls every exported function of `instance` with default arguments, in
/// name order (calls share the instance's state, and every runner and
/// oracle calls them in the same order): each one's name and results.
fn call_exports(
    store: &mut Store<()>,
    instance: &Instance,
    module: &Module,
) -> Vec<(String, weft::Result<Vec<Val>>)> {
    let mut exports: Vec<_> = module.exports().collect();
    exports.sort_by_key(|e| e.name());
    let mut out = Vec::new();
    for export in exports {
        let ExternType::Func(ty) = export.ty() else {
            continue;
        };
        let args = args_for(ty.params());
        let f = instance
            .get_func(&mut *store, export.name())
            .expect("exported");
        let mut results: Vec<Val> = ty.results().iter().map(Val::default_for).collect();
        let r = f.call(&mut *store, &args, &mut results).map(|()| results);
        out.push((export.name().to_string(), r));
    }
    out
}

fn memory_of(store: &mut Store<()>, instance: &Instance, module: &Module) -> Vec<u8> {
    for export in module.exports() {
        if let Some(Extern::Memory(m)) = instance.get_export(&mut *store, export.name()) {
            return m.data(&*store).to_vec();
        }
    }
    Vec::new()
}

/// A value's bits (references as present or not).
fn raw(v: &Val) -> u128 {
    match v {
        Val::I32(x) => *x as u32 as u128,
        Val::I64(x) => *x as u64 as u128,
        Val::F32(b) => u128::from(*b),
        Val::F64(b) => u128::from(*b),
        Val::V128(x) => *x,
        Val::FuncRef(f) => u128::from(f.is_some()),
        Val::ExternRef(e) => u128::from(e.is_some()),
        Val::ExnRef(e) => u128::from(e.is_some()),
    }
}

/// Instantiate and call every export with fuel: no panic, no crash.
pub fn run(data: &[u8]) -> Outcome {
    let Some(bytes) = smith(data, true, false) else {
        return Outcome::Skipped;
    };
    match run_exports(engine(1), &bytes, true) {
        Ok(_) => Outcome::Ok,
        Err(e) if e.starts_with("instantiate") => Outcome::Skipped,
        Err(e) => Outcome::Failed(e),
    }
}

/// weft and wasmi agree on results, traps and memory.
pub fn differential(data: &[u8]) -> Outcome {
    let Some(bytes) = smith(data, false, true) else {
        return Outcome::Skipped;
    };
    let ours = match run_exports(engine(0), &bytes, false) {
        Ok(r) => r,
        Err(e) if e.starts_with("instantiate") => return Outcome::Skipped,
        Err(e) => return Outcome::Failed(e),
    };
    let theirs = match wasmi_run(&bytes) {
        Some(r) => r,
        None => return Outcome::Skipped,
    };
    compare(&ours, &theirs)
}

fn exhausted(calls: &Calls) -> bool {
    calls.iter().any(|(_, r)| {
        matches!(r, Err(m) if m.contains("call stack exhausted") || m.contains("stack overflow"))
    })
}

fn compare(ours: &(Calls, Vec<u8>), theirs: &(Calls, Vec<u8>)) -> Outcome {
    // Stack limits differ between runtimes: nothing to judge.
    if exhausted(&ours.0) || exhausted(&theirs.0) {
        return Outcome::Skipped;
    }
    if ours.0.len() != theirs.0.len() {
        return Outcome::Failed(format!("{} calls vs {}", ours.0.len(), theirs.0.len()));
    }
    // By name: the two runtimes may list exports in different orders.
    for (name, a) in &ours.0 {
        let Some((_, b)) = theirs.0.iter().find(|(n, _)| n == name) else {
            return Outcome::Failed(format!("`{name}` was not called on the oracle"));
        };
        match (a, b) {
            (Ok(x), Ok(y)) if x == y => {}
            (Err(_), Err(_)) => {}
            _ => return Outcome::Failed(format!("`{name}`: weft {a:?}, oracle {b:?}")),
        }
    }
    if ours.1 != theirs.1 {
        return Outcome::Failed("final memory contents differ".into());
    }
    Outcome::Ok
}

fn wasmi_run(bytes: &[u8]) -> Option<(Calls, Vec<u8>)> {
    let engine = wasmi::Engine::default();
    let module = wasmi::Module::new(&engine, bytes).ok()?;
    // The oracle gets weft's table limit: without one it tries to allocate
    // whatever `table.grow` asks for, and a different limit would make the
    // two disagree on which grows succeed.
    let limits = wasmi::StoreLimitsBuilder::new()
        .table_elements(weft::MAX_TABLE_ELEMENTS as usize)
        .build();
    let mut store = wasmi::Store::new(&engine, limits);
    store.limiter(|l| l);
    let linker = wasmi::Linker::<wasmi::StoreLimits>::new(&engine);
    let instance = match linker.instantiate_and_start(&mut store, &module) {
        Ok(i) => i,
        Err(e) if e.as_trap_code().is_some() => {
            return Some((vec![("<start>".into(), Err(e.to_string()))], Vec::new()));
        }
        Err(_) => return None,
    };
    let mut calls = Vec::new();
    let mut memory = Vec::new();
    let mut exports: Vec<(String, wasmi::ExternType)> = module
        .exports()
        .map(|e| (e.name().to_string(), e.ty().clone()))
        .collect();
    exports.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, ty) in &exports {
        match ty {
            wasmi::ExternType::Func(fty) => {
                let params: Option<Vec<wasmi::Val>> = fty
                    .params()
                    .iter()
                    .map(|t| match t {
                        wasmi::ValType::I32 => Some(wasmi::Val::I32(0)),
                        wasmi::ValType::I64 => Some(wasmi::Val::I64(0)),
                        wasmi::ValType::F32 => Some(wasmi::Val::F32(0f32.into())),
                        wasmi::ValType::F64 => Some(wasmi::Val::F64(0f64.into())),
                        wasmi::ValType::FuncRef => Some(wasmi::Val::default(*t)),
                        wasmi::ValType::ExternRef => Some(wasmi::Val::default(*t)),
                        _ => None,
                    })
                    .collect();
                let Some(params) = params else { continue };
                let f = instance.get_func(&store, name)?;
                let mut results: Vec<wasmi::Val> = fty
                    .results()
                    .iter()
                    .map(|t| wasmi::Val::default(*t))
                    .collect();
                let r = match f.call(&mut store, &params, &mut results) {
                    Ok(()) => Ok(results.iter().map(wasmi_raw).collect()),
                    Err(e) if e.as_trap_code() == Some(wasmi::TrapCode::StackOverflow) => {
                        Err("stack overflow".to_string())
                    }
                    Err(e) if e.as_trap_code().is_some() => Err(e.to_string()),
                    Err(_) => return None,
                };
                calls.push((name.clone(), r));
            }
            wasmi::ExternType::Memory(_) if memory.is_empty() => {
                if let Some(m) = instance.get_memory(&store, name) {
                    memory = m.data(&store).to_vec();
                }
            }
            _ => {}
        }
    }
    // Memory after every call (read again: the calls may have written it).
    if let Some((name, _)) = exports
        .iter()
        .find(|(_, t)| matches!(t, wasmi::ExternType::Memory(_)))
        && let Some(m) = instance.get_memory(&store, name)
    {
        memory = m.data(&store).to_vec();
    }
    Some((calls, memory))
}

fn wasmi_raw(v: &wasmi::Val) -> u128 {
    match v {
        wasmi::Val::I32(x) => *x as u32 as u128,
        wasmi::Val::I64(x) => *x as u64 as u128,
        wasmi::Val::F32(x) => u128::from(x.to_bits()),
        wasmi::Val::F64(x) => u128::from(x.to_bits()),
        wasmi::Val::FuncRef(f) => u128::from(!f.is_null()),
        wasmi::Val::ExternRef(e) => u128::from(!e.is_null()),
        _ => u128::MAX,
    }
}

/// Interruption checks change no result: off, the default poll, and epoch
/// checks agree.
pub fn interrupt(data: &[u8]) -> Outcome {
    let Some(bytes) = smith(data, true, true) else {
        return Outcome::Skipped;
    };
    let mut runs = Vec::new();
    for e in [engine(2), engine(0), engine(3)] {
        match run_exports(e, &bytes, false) {
            Ok(r) => runs.push(r),
            Err(e) if e.starts_with("instantiate") => return Outcome::Skipped,
            Err(e) => return Outcome::Failed(e),
        }
    }
    for other in &runs[1..] {
        if runs[0].0 != other.0 || runs[0].1 != other.1 {
            // The stack limit is the same, but not the frame sizes: the
            // checks' code needs registers, and a recursion that nearly
            // fills the stack may exhaust it in one configuration only
            // (found once 16-byte v128 values made frames larger). Any
            // other difference is a bug.
            if exhausted(&runs[0].0) != exhausted(&other.0) {
                return Outcome::Skipped;
            }
            return Outcome::Failed("results differ with interruption checks on".into());
        }
    }
    Outcome::Ok
}

/// A pooled instance reset by its write marks has a fresh instance's
/// memory, whatever the module's code wrote (and however its calls ended).
pub fn reset(data: &[u8]) -> Outcome {
    let Some(bytes) = smith_exported(data) else {
        return Outcome::Skipped;
    };
    let module = match Module::new(engine(4), &bytes) {
        Ok(m) => m,
        // Modules beyond the pool's limits (several tables, say) are
        // refused by design; any other refusal is a bug.
        Err(weft::Error::Resource(_)) => return Outcome::Skipped,
        Err(e) => return Outcome::Failed(format!("a valid module did not compile: {e}")),
    };
    let pre = match Linker::new().instantiate_pre(&module) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(format!("instantiate_pre without imports: {e}")),
    };
    let mut cfg = InstancePoolConfig::default();
    cfg.max_size(1);
    let pool = InstancePool::new(pre, cfg, || ());
    let mut fresh = None;
    for round in 0..3 {
        let mut g = match pool.get() {
            Ok(g) => g,
            // A start function that traps (or throws) makes no instance:
            // nothing to check. It runs the same way after every reset, so
            // only the first instantiation may fail so.
            Err(weft::Error::Trap(_) | weft::Error::Exception(_)) if round == 0 => {
                return Outcome::Skipped;
            }
            Err(e) => return Outcome::Failed(format!("instance {round} of the pool: {e}")),
        };
        let (store, instance) = g.parts();
        let memory = memory_of(store, &instance, &module);
        match &fresh {
            None => fresh = Some(memory),
            Some(f) if *f != memory => {
                let at = f.iter().zip(&memory).position(|(a, b)| a != b);
                return Outcome::Failed(format!(
                    "after reset {round}, memory differs from a fresh instance's (length {} vs {}, first differing byte {at:?})",
                    memory.len(),
                    f.len()
                ));
            }
            Some(_) => {}
        }
        // Traps, exceptions and errors all end in a reset too.
        let _ = call_exports(store, &instance, &module);
    }
    Outcome::Ok
}
