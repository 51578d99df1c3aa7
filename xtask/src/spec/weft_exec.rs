//! The executor that runs spec directives on weft itself.

use std::collections::HashMap;

use wast::{WastInvoke, WastRet};
use weft::{Engine, Error, Instance, Linker, Module, SharedMemory, Store, Val};
use weft_wast::{Skip, define_spectest, message_matches};

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

fn skipped(s: Skip) -> Outcome {
    Outcome::NotRun(s.0)
}

fn arg(a: &wast::WastArg<'_>) -> Result<Val, Outcome> {
    weft_wast::arg(a).map_err(skipped)
}

fn ret_matches(e: &wast::core::WastRetCore<'_>, g: &Val) -> Result<bool, Outcome> {
    weft_wast::ret_matches(e, g).map_err(skipped)
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
        let mut results: Vec<Val> = ty.results().iter().map(Val::default_for).collect();
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

    fn assert_exception(&mut self, exec: Exec<'_, '_>) -> Outcome {
        match self.exec(exec) {
            Ok(Ok(v)) => fail(format!("expected an uncaught exception, got {v:?}")),
            Ok(Err(Error::Exception(_))) => Outcome::Pass,
            Ok(Err(e)) => fail(format!("expected an uncaught exception, got: {e}")),
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
