//! A sequential `.wast` script runner: every directive in order, one store.

use std::collections::HashMap;
use std::path::Path;

use wast::core::Module as TextModule;
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastDirective, WastExecute, WastRet, Wat};
use weft::{Engine, Error, Instance, Linker, Module, Store, Val};

use crate::{Skip, arg, define_spectest, message_matches, ret_matches};

/// What a script run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Assertions and commands that held.
    pub passed: usize,
    /// `line: what went wrong`, for each that did not.
    pub failed: Vec<String>,
    /// `line: why`, for each directive not run.
    pub skipped: Vec<String>,
}

/// Runs the script at `path` on a fresh store of a default engine.
///
/// # Errors
/// The file cannot be read or is not a script (the message names the file,
/// line and column).
pub fn run_script(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lexer = Lexer::new(&text);
    lexer.allow_confusing_unicode(true);
    let located = |mut e: wast::Error| {
        e.set_path(path);
        e.set_text(&text);
        e.to_string().lines().take(2).collect::<Vec<_>>().join(" ")
    };
    let buf = ParseBuffer::new_with_lexer(lexer).map_err(located)?;
    let script: Wast<'_> = parser::parse(&buf).map_err(located)?;
    let mut r = Runner::new().map_err(|e| e.to_string())?;
    for d in script.directives {
        let (line, _) = d.span().linecol_in(&text);
        r.directive(d, line + 1);
    }
    Ok(r.report)
}

struct Runner {
    engine: Engine,
    store: Store<()>,
    linker: Linker<()>,
    named: HashMap<String, Instance>,
    current: Option<Instance>,
    report: Report,
}

/// The result of running something a directive names.
type Ran = Result<Result<Vec<Val>, Error>, Skip>;

impl Runner {
    fn new() -> weft::Result<Runner> {
        let engine = Engine::default();
        let mut store = Store::new(&engine, ());
        let mut linker = Linker::new();
        define_spectest(&mut store, &mut linker)?;
        Ok(Runner {
            engine,
            store,
            linker,
            named: HashMap::new(),
            current: None,
            report: Report::default(),
        })
    }

    fn pass(&mut self) {
        self.report.passed += 1;
    }

    fn fail(&mut self, line: usize, what: impl std::fmt::Display) {
        self.report.failed.push(format!("{line}: {what}"));
    }

    fn skip(&mut self, line: usize, why: impl std::fmt::Display) {
        self.report.skipped.push(format!("{line}: {why}"));
    }

    fn instance(&self, id: Option<&str>) -> Result<Instance, Skip> {
        match id {
            None => self.current.ok_or_else(|| Skip("no module yet".into())),
            Some(n) => self
                .named
                .get(n)
                .copied()
                .ok_or_else(|| Skip(format!("unknown module ${n}"))),
        }
    }

    /// Compiles and instantiates a module (errors as weft gives them).
    fn instantiate(&mut self, qw: &mut QuoteWat<'_>) -> Result<Result<Instance, Error>, String> {
        let bytes = qw
            .encode()
            .map_err(|e| format!("text did not encode: {e}"))?;
        Ok(Module::new(&self.engine, &bytes)
            .and_then(|m| self.linker.instantiate(&mut self.store, &m)))
    }

    fn run(&mut self, exec: WastExecute<'_>) -> Ran {
        match exec {
            WastExecute::Invoke(call) => {
                let inst = self.instance(call.module.map(|i| i.name()))?;
                let func = inst
                    .get_func(&mut self.store, call.name)
                    .ok_or_else(|| Skip(format!("no exported function `{}`", call.name)))?;
                let ty = func.ty(&self.store).map_err(|e| Skip(e.to_string()))?;
                let args = call.args.iter().map(arg).collect::<Result<Vec<_>, _>>()?;
                let mut results: Vec<Val> = ty.results().iter().map(Val::default_for).collect();
                Ok(func
                    .call(&mut self.store, &args, &mut results)
                    .map(|()| results))
            }
            WastExecute::Get { module, global, .. } => {
                let inst = self.instance(module.map(|i| i.name()))?;
                let g = inst
                    .get_global(&mut self.store, global)
                    .ok_or_else(|| Skip(format!("no exported global `{global}`")))?;
                Ok(g.get(&self.store).map(|v| vec![v]))
            }
            WastExecute::Wat(wat) => {
                let mut qw = QuoteWat::Wat(wat);
                match self.instantiate(&mut qw) {
                    Ok(r) => Ok(r.map(|_| Vec::new())),
                    Err(e) => Err(Skip(e)),
                }
            }
        }
    }

    fn directive(&mut self, d: WastDirective<'_>, line: usize) {
        match d {
            WastDirective::Module(mut qw) => {
                let id = match &qw {
                    QuoteWat::Wat(Wat::Module(TextModule { id, .. })) => id.map(|i| i.name()),
                    _ => None,
                };
                match self.instantiate(&mut qw) {
                    Ok(Ok(inst)) => {
                        self.current = Some(inst);
                        if let Some(id) = id {
                            self.named.insert(id.to_string(), inst);
                        }
                        self.pass();
                    }
                    Ok(Err(e)) => {
                        self.current = None;
                        self.fail(line, format!("module: {e}"));
                    }
                    Err(e) => {
                        self.current = None;
                        self.fail(line, e);
                    }
                }
            }
            WastDirective::Register { name, module, .. } => {
                match self.instance(module.map(|i| i.name())) {
                    Ok(inst) => match self.linker.instance(&mut self.store, name, inst) {
                        Ok(_) => self.pass(),
                        Err(e) => self.fail(line, format!("register: {e}")),
                    },
                    Err(Skip(why)) => self.skip(line, why),
                }
            }
            WastDirective::Invoke(call) => match self.run(WastExecute::Invoke(call)) {
                Ok(Ok(_)) => self.pass(),
                Ok(Err(e)) => self.fail(line, format!("invoke: {e}")),
                Err(Skip(why)) => self.skip(line, why),
            },
            WastDirective::AssertReturn { exec, results, .. } => match self.run(exec) {
                Ok(Ok(got)) => match check_results(&results, &got) {
                    Ok(None) => self.pass(),
                    Ok(Some(why)) => self.fail(line, why),
                    Err(Skip(why)) => self.skip(line, why),
                },
                Ok(Err(e)) => self.fail(line, format!("expected results, got: {e}")),
                Err(Skip(why)) => self.skip(line, why),
            },
            WastDirective::AssertTrap { exec, message, .. } => {
                self.expect_trap(line, exec, message)
            }
            WastDirective::AssertExhaustion { call, message, .. } => {
                self.expect_trap(line, WastExecute::Invoke(call), message)
            }
            WastDirective::AssertInvalid {
                mut module,
                message,
                ..
            }
            | WastDirective::AssertMalformed {
                mut module,
                message,
                ..
            } => match module.encode() {
                // Text the parser rejects is malformed, as expected.
                Err(_) => self.pass(),
                Ok(bytes) => match Module::new(&self.engine, &bytes) {
                    Ok(_) => self.fail(line, format!("module accepted; expected \"{message}\"")),
                    Err(_) => self.pass(),
                },
            },
            WastDirective::AssertUnlinkable {
                module, message, ..
            } => {
                let mut qw = QuoteWat::Wat(module);
                match self.instantiate(&mut qw) {
                    Ok(Err(Error::Link(e))) if message_matches(&e, message) => self.pass(),
                    Ok(Err(e)) => self.fail(line, format!("expected \"{message}\", got: {e}")),
                    Ok(Ok(_)) => self.fail(line, format!("linked; expected \"{message}\"")),
                    Err(e) => self.fail(line, e),
                }
            }
            other => {
                let what = format!("{other:?}");
                let kind = what.split([' ', '(', '{']).next().unwrap_or("directive");
                self.skip(line, format!("{kind} is not supported by `weft wast`"));
            }
        }
    }

    fn expect_trap(&mut self, line: usize, exec: WastExecute<'_>, message: &str) {
        match self.run(exec) {
            Ok(Err(Error::Trap(t))) if message_matches(t.message(), message) => self.pass(),
            Ok(Err(e)) => self.fail(line, format!("expected trap \"{message}\", got: {e}")),
            Ok(Ok(v)) => self.fail(line, format!("expected trap \"{message}\", got {v:?}")),
            Err(Skip(why)) => self.skip(line, why),
        }
    }
}

/// `None` if `got` matches every expected result, else what differs.
fn check_results(expected: &[WastRet<'_>], got: &[Val]) -> Result<Option<String>, Skip> {
    if expected.len() != got.len() {
        return Ok(Some(format!(
            "expected {} results, got {}",
            expected.len(),
            got.len()
        )));
    }
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        let WastRet::Core(e) = e else {
            return Err(Skip("component values are not supported".into()));
        };
        if !ret_matches(e, g)? {
            return Ok(Some(format!("result {i}: expected {e:?}, got {g:?}")));
        }
    }
    Ok(None)
}
