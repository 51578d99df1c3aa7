//! The executor that runs spec directives on weft itself.

use std::collections::HashMap;

use wast::core::{AbstractHeapType, HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::{WastArg, WastInvoke, WastRet};
use weft::{
    Engine, Error, Extern, ExternRef, Global, GlobalType, Instance, Linker, Memory, MemoryType,
    Module, SharedMemory, Store, Table, TableType, Val, ValType,
};

use super::Outcome;
use super::exec::{Exec, Executor, ValidModule};

/// Runs directives on a weft store; one per script file.
pub struct WeftExec {
    engine: Engine,
    store: Store<()>,
    linker: Linker<()>,
    named: HashMap<String, Instance>,
    definitions: HashMap<String, Module>,
    current: Option<Instance>,
    /// In a `(thread ...)`: the shared memories exported by the modules the
    /// thread shares with its parent, by module name.
    shared_modules: HashMap<String, Vec<(String, SharedMemory)>>,
}

fn fail(m: impl std::fmt::Display) -> Outcome {
    Outcome::Fail(m.to_string())
}

impl WeftExec {
    /// A fresh executor with the `spectest` host module defined.
    pub fn new(engine: &Engine) -> Self {
        let mut store = Store::new(engine, ());
        let mut linker = Linker::new();
        define_spectest(&mut store, &mut linker).expect("spectest module can be built");
        WeftExec {
            engine: engine.clone(),
            store,
            linker,
            named: HashMap::new(),
            definitions: HashMap::new(),
            current: None,
            shared_modules: HashMap::new(),
        }
    }

    fn module(&self, bytes: &[u8]) -> Result<Module, Outcome> {
        let module = Module::from_binary(&self.engine, bytes).map_err(|e| match e {
            Error::Unsupported(c) => Outcome::NotRun(format!("compile: unsupported: {c}")),
            other => fail(format!("compile: {other}")),
        })?;
        Ok(module)
    }

    fn instance(&self, module: Option<&str>) -> Result<Instance, Outcome> {
        match module {
            None => self.current.ok_or_else(|| fail("no current module")),
            Some(name) => self
                .named
                .get(name)
                .copied()
                .ok_or_else(|| fail(format!("unknown module ${name}"))),
        }
    }

    fn call(&mut self, call: &WastInvoke<'_>) -> Result<Result<Vec<Val>, Error>, Outcome> {
        let inst = self.instance(call.module.map(|id| id.name()))?;
        let func = inst
            .get_func(&mut self.store, call.name)
            .ok_or_else(|| fail(format!("no exported function `{}`", call.name)))?;
        let ty = func.ty(&mut self.store).map_err(fail)?;
        let mut args = Vec::new();
        for a in &call.args {
            args.push(arg(a)?);
        }
        let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
        Ok(func
            .call(&mut self.store, &args, &mut results)
            .map(|()| results))
    }

    fn exec(&mut self, exec: Exec<'_, '_>) -> Result<Result<Vec<Val>, Error>, Outcome> {
        match exec {
            Exec::Invoke(call) => self.call(call),
            Exec::Get { module, global } => {
                let inst = self.instance(module)?;
                let g = inst
                    .get_global(&mut self.store, global)
                    .ok_or_else(|| fail(format!("no exported global `{global}`")))?;
                Ok(g.get(&mut self.store).map(|v| vec![v]))
            }
            Exec::Instantiate(m) => {
                let module = self.module(m.bytes)?;
                Ok(self
                    .linker
                    .instantiate(&mut self.store, &module)
                    .map(|_| Vec::new()))
            }
        }
    }
}

fn arg(a: &WastArg<'_>) -> Result<Val, Outcome> {
    Ok(match a {
        WastArg::Core(WastArgCore::I32(v)) => Val::I32(*v),
        WastArg::Core(WastArgCore::I64(v)) => Val::I64(*v),
        WastArg::Core(WastArgCore::F32(v)) => Val::F32(v.bits),
        WastArg::Core(WastArgCore::F64(v)) => Val::F64(v.bits),
        WastArg::Core(WastArgCore::V128(v)) => Val::V128(u128::from_le_bytes(v.to_le_bytes())),
        WastArg::Core(WastArgCore::RefNull(HeapType::Abstract { ty, .. })) => match ty {
            AbstractHeapType::Func => Val::FuncRef(None),
            AbstractHeapType::Extern => Val::ExternRef(None),
            other => return Err(Outcome::NotRun(format!("ref.null {other:?} not supported"))),
        },
        WastArg::Core(WastArgCore::RefExtern(n)) => Val::ExternRef(Some(ExternRef::new(*n))),
        other => return Err(Outcome::NotRun(format!("argument {other:?} not supported"))),
    })
}

fn f32_matches(p: &NanPattern<wast::token::F32>, bits: u32) -> bool {
    let v = f32::from_bits(bits);
    match p {
        NanPattern::CanonicalNan => v.is_nan() && bits & 0x7fff_ffff == 0x7fc0_0000,
        NanPattern::ArithmeticNan => v.is_nan() && bits & 0x0040_0000 != 0,
        NanPattern::Value(x) => x.bits == bits,
    }
}

fn f64_matches(p: &NanPattern<wast::token::F64>, bits: u64) -> bool {
    let v = f64::from_bits(bits);
    match p {
        NanPattern::CanonicalNan => {
            v.is_nan() && bits & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000
        }
        NanPattern::ArithmeticNan => v.is_nan() && bits & 0x0008_0000_0000_0000 != 0,
        NanPattern::Value(x) => x.bits == bits,
    }
}

fn v128_matches(p: &V128Pattern, v: u128) -> bool {
    let b = v.to_le_bytes();
    match p {
        V128Pattern::I8x16(x) => x.iter().enumerate().all(|(i, x)| b[i] as i8 == *x),
        V128Pattern::I16x8(x) => x
            .iter()
            .enumerate()
            .all(|(i, x)| i16::from_le_bytes([b[2 * i], b[2 * i + 1]]) == *x),
        V128Pattern::I32x4(x) => x
            .iter()
            .enumerate()
            .all(|(i, x)| i32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) == *x),
        V128Pattern::I64x2(x) => x
            .iter()
            .enumerate()
            .all(|(i, x)| i64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()) == *x),
        V128Pattern::F32x4(x) => x.iter().enumerate().all(|(i, p)| {
            f32_matches(
                p,
                u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()),
            )
        }),
        V128Pattern::F64x2(x) => x.iter().enumerate().all(|(i, p)| {
            f64_matches(
                p,
                u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()),
            )
        }),
    }
}

fn ret_matches(expected: &WastRetCore<'_>, got: &Val) -> Result<bool, Outcome> {
    Ok(match (expected, got) {
        (WastRetCore::I32(e), Val::I32(g)) => e == g,
        (WastRetCore::I64(e), Val::I64(g)) => e == g,
        (WastRetCore::F32(p), Val::F32(g)) => f32_matches(p, *g),
        (WastRetCore::F64(p), Val::F64(g)) => f64_matches(p, *g),
        (WastRetCore::V128(p), Val::V128(g)) => v128_matches(p, *g),
        (WastRetCore::Either(options), g) => {
            for o in options {
                if ret_matches(o, g)? {
                    return Ok(true);
                }
            }
            false
        }
        (WastRetCore::RefNull(_), Val::FuncRef(f)) => f.is_none(),
        (WastRetCore::RefNull(_), Val::ExternRef(e)) => e.is_none(),
        (WastRetCore::RefExtern(None), Val::ExternRef(e)) => e.is_some(),
        (WastRetCore::RefExtern(Some(n)), Val::ExternRef(Some(e))) => {
            e.downcast_ref::<u32>() == Some(n)
        }
        (WastRetCore::RefFunc(None), Val::FuncRef(f)) => f.is_some(),
        (WastRetCore::RefFunc(Some(_)), Val::FuncRef(_)) => {
            return Err(Outcome::NotRun("ref.func with an index in results".into()));
        }
        (WastRetCore::RefNull(_) | WastRetCore::RefExtern(_) | WastRetCore::RefFunc(_), _) => false,
        (
            WastRetCore::I32(_)
            | WastRetCore::I64(_)
            | WastRetCore::F32(_)
            | WastRetCore::F64(_)
            | WastRetCore::V128(_),
            _,
        ) => false,
        (other, _) => return Err(Outcome::NotRun(format!("result {other:?} not supported"))),
    })
}

/// Whether an error message matches what the script expects: weft uses the
/// spec's wording, so the expected text must appear in ours.
fn message_matches(got: &str, expected: &str) -> bool {
    got.contains(expected) || expected.starts_with(got)
}

impl Executor for WeftExec {
    fn instantiate(&mut self, m: &ValidModule<'_>) -> Outcome {
        match self.module(m.bytes) {
            Ok(module) => self.instantiate_as(&module, m.id),
            Err(o) => o,
        }
    }

    fn define(&mut self, m: &ValidModule<'_>) -> Outcome {
        match self.module(m.bytes) {
            Ok(module) => {
                if let Some(id) = m.id {
                    self.definitions.insert(id.to_string(), module);
                }
                Outcome::Pass
            }
            Err(o) => o,
        }
    }

    fn module_instance(&mut self, instance: Option<&str>, definition: Option<&str>) -> Outcome {
        let Some(module) = definition.and_then(|d| self.definitions.get(d)).cloned() else {
            return fail("unknown module definition");
        };
        self.instantiate_as(&module, instance)
    }

    fn register(&mut self, name: &str, module: Option<&str>) -> Outcome {
        if let Some(shared) = module.and_then(|m| self.shared_modules.get(m)) {
            for (export, memory) in shared {
                if let Err(e) = self.linker.define(name, export, memory.clone()) {
                    return fail(format!("register: {e}"));
                }
            }
            return Outcome::Pass;
        }
        let inst = match self.instance(module) {
            Ok(i) => i,
            Err(o) => return o,
        };
        match self.linker.instance(&mut self.store, name, inst) {
            Ok(_) => Outcome::Pass,
            Err(e) => fail(e),
        }
    }

    fn invoke(&mut self, call: &WastInvoke<'_>) -> Outcome {
        match self.call(call) {
            Ok(Ok(_)) => Outcome::Pass,
            Ok(Err(e)) => fail(format!("invoke failed: {e}")),
            Err(o) => o,
        }
    }

    fn assert_return(&mut self, exec: Exec<'_, '_>, results: &[WastRet<'_>]) -> Outcome {
        let got = match self.exec(exec) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return fail(format!("expected results, got error: {e}")),
            Err(o) => return o,
        };
        if got.len() != results.len() {
            return fail(format!(
                "expected {} results, got {}",
                results.len(),
                got.len()
            ));
        }
        for (i, (e, g)) in results.iter().zip(&got).enumerate() {
            let WastRet::Core(e) = e else {
                return Outcome::NotRun("component values not supported".into());
            };
            match ret_matches(e, g) {
                Ok(true) => {}
                Ok(false) => return fail(format!("result {i}: expected {e:?}, got {g:?}")),
                Err(o) => return o,
            }
        }
        Outcome::Pass
    }

    fn assert_trap(&mut self, exec: Exec<'_, '_>, message: &str) -> Outcome {
        match self.exec(exec) {
            Ok(Ok(v)) => fail(format!("expected trap `{message}`, got {v:?}")),
            Ok(Err(Error::Trap(t))) if message_matches(t.message(), message) => Outcome::Pass,
            Ok(Err(e)) => fail(format!("expected trap `{message}`, got: {e}")),
            Err(o) => o,
        }
    }

    fn assert_exhaustion(&mut self, call: &WastInvoke<'_>, message: &str) -> Outcome {
        match self.call(call) {
            Ok(Ok(v)) => fail(format!("expected exhaustion, got {v:?}")),
            Ok(Err(Error::Trap(t))) if message_matches(t.message(), message) => Outcome::Pass,
            Ok(Err(e)) => fail(format!("expected `{message}`, got: {e}")),
            Err(o) => o,
        }
    }

    fn spawn_thread(
        &mut self,
        _name: &str,
        shared_module: Option<&str>,
    ) -> Option<Box<dyn Executor + Send>> {
        // Each thread gets its own store (as a real embedding would: a store
        // is never shared between threads); shared memories are the only
        // state that crosses.
        let mut child = WeftExec::new(&self.engine);
        if let Some(m) = shared_module {
            let exports = self.shared_exports(m);
            child.shared_modules.insert(m.to_string(), exports);
        }
        Some(Box::new(child))
    }

    fn assert_unlinkable(&mut self, m: &ValidModule<'_>, message: &str) -> Outcome {
        let module = match self.module(m.bytes) {
            Ok(m) => m,
            Err(o) => return o,
        };
        match self.linker.instantiate(&mut self.store, &module) {
            Ok(_) => fail(format!(
                "expected link error `{message}`, but it instantiated"
            )),
            Err(Error::Link(e)) if message_matches(&e, message) => Outcome::Pass,
            Err(e) => fail(format!("expected link error `{message}`, got: {e}")),
        }
    }
}

impl WeftExec {
    /// Instantiates `module` as the current module, named `id` if given.
    fn instantiate_as(&mut self, module: &Module, id: Option<&str>) -> Outcome {
        match self.linker.instantiate(&mut self.store, module) {
            Ok(inst) => {
                self.current = Some(inst);
                if let Some(id) = id {
                    self.named.insert(id.to_string(), inst);
                }
                Outcome::Pass
            }
            Err(e) => fail(format!("instantiation failed: {e}")),
        }
    }

    /// The shared memories `module` exports (what a thread can share).
    fn shared_exports(&mut self, module: &str) -> Vec<(String, SharedMemory)> {
        if let Some(shared) = self.shared_modules.get(module) {
            return shared.clone();
        }
        let Some(&inst) = self.named.get(module) else {
            return Vec::new();
        };
        let Ok(m) = inst.module(&mut self.store) else {
            return Vec::new();
        };
        let names: Vec<String> = m.exports().map(|e| e.name().to_string()).collect();
        names
            .into_iter()
            .filter_map(|n| {
                let mem = inst.get_memory(&mut self.store, &n)?;
                Some((n, mem.as_shared(&mut self.store)?))
            })
            .collect()
    }
}

fn define_spectest(store: &mut Store<()>, linker: &mut Linker<()>) -> weft::Result<()> {
    // A script may register a name again; the newest definition wins.
    linker.allow_shadowing(true);
    linker
        .func_wrap("spectest", "print", || {})?
        .func_wrap("spectest", "print_i32", |_: i32| {})?
        .func_wrap("spectest", "print_i64", |_: i64| {})?
        .func_wrap("spectest", "print_f32", |_: f32| {})?
        .func_wrap("spectest", "print_f64", |_: f64| {})?
        .func_wrap("spectest", "print_i32_f32", |_: i32, _: f32| {})?
        .func_wrap("spectest", "print_f64_f64", |_: f64, _: f64| {})?;
    let g = |ty| GlobalType::new(ty, false);
    let globals = [
        ("global_i32", g(ValType::I32), Val::I32(666)),
        ("global_i64", g(ValType::I64), Val::I64(666)),
        ("global_f32", g(ValType::F32), Val::F32(666.6f32.to_bits())),
        ("global_f64", g(ValType::F64), Val::F64(666.6f64.to_bits())),
    ];
    for (name, ty, v) in globals {
        let global = Global::new(&mut *store, ty, v)?;
        linker.define("spectest", name, global)?;
    }
    let memory = Memory::new(&mut *store, MemoryType::new(1, Some(2)))?;
    linker.define("spectest", "memory", Extern::Memory(memory))?;
    let shared = Memory::new(&mut *store, MemoryType::shared(1, 2))?;
    linker.define("spectest", "shared_memory", Extern::Memory(shared))?;
    let table = Table::new(
        &mut *store,
        TableType::new(ValType::FuncRef, 10, Some(20)),
        Val::FuncRef(None),
    )?;
    linker.define("spectest", "table", Extern::Table(table))?;
    Ok(())
}
