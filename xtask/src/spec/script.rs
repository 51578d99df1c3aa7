//! Runs one script: parses it, walks its directives, judges what the decoder
//! can judge and hands the rest to the executor.

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use wast::core::Module as TextModule;
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastDirective, WastExecute, Wat};
use weft_decoder::wasmparser::WasmFeatures;
use weft_decoder::{DecodeError, Features, Module};

use super::exec::{DecodeOnly, Exec, Executor, ValidModule};
use super::manifest::{CONTRADICTIONS, Manifest, TEXT_REJECTED_BY_VALIDATION};
use super::{FileInfo, FileResult, Kind, Options, Outcome, Record};

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Keeps the panic hook quiet on this thread while it lives: panics inside
/// the harness are caught and counted, and should not also be printed.
/// Other threads (and this one afterwards) keep the previous hook.
struct QuietPanics(bool);

impl QuietPanics {
    fn new() -> QuietPanics {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if !QUIET.get() {
                    previous(info);
                }
            }));
        });
        QuietPanics(QUIET.replace(true))
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.set(self.0);
    }
}

/// Runs one file. Never panics: a panic anywhere is counted as a failure.
pub fn run_file(dir: &Path, manifest: &Manifest, info: &FileInfo, opts: &Options) -> FileResult {
    let start = Instant::now();
    let _quiet = QuietPanics::new();
    let records = match catch_unwind(AssertUnwindSafe(|| run_script(dir, manifest, info, opts))) {
        Ok(Ok(records)) => records,
        Ok(Err(message)) => vec![script_failure(message)],
        Err(panic) => vec![script_failure(format!(
            "harness panicked: {}",
            panic_message(&*panic)
        ))],
    };
    FileResult {
        info: info.clone(),
        records,
        elapsed: start.elapsed(),
    }
}

fn script_failure(message: String) -> Record {
    Record {
        line: 0,
        kind: Kind::Script,
        set: None,
        outcome: Outcome::Fail(message),
        note: None,
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

fn run_script(
    dir: &Path,
    manifest: &Manifest,
    info: &FileInfo,
    opts: &Options,
) -> Result<Vec<Record>, String> {
    let file = dir.join(&info.path);
    let text =
        std::fs::read_to_string(&file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let mut lexer = Lexer::new(&text);
    // core/names.wast uses bidi and invisible characters in names.
    lexer.allow_confusing_unicode(true);
    let with_text = |mut e: wast::Error| {
        e.set_path(&file);
        e.set_text(&text);
        e.to_string()
    };
    let buf = ParseBuffer::new_with_lexer(lexer).map_err(with_text)?;
    let script: Wast<'_> = parser::parse(&buf).map_err(with_text)?;
    let lines = LineIndex::new(&text);
    let ctx = FileCtx {
        info,
        manifest,
        post2: opts.post2,
        lines: &lines,
    };
    let executor = (opts.executor)(info);
    Ok(std::thread::scope(|scope| {
        let mut runner = Runner::new(&ctx, executor, scope);
        runner.run(script.directives);
        runner.finish()
    }))
}

/// Line numbers from byte offsets.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> u32 {
        self.starts.partition_point(|&s| s <= offset) as u32
    }
}

/// What every runner of a file (the main script and its threads) shares.
struct FileCtx<'f> {
    info: &'f FileInfo,
    manifest: &'f Manifest,
    post2: bool,
    lines: &'f LineIndex,
}

/// Whether a module can be used by later directives.
#[derive(Debug, Clone)]
enum ModState {
    /// Usable; `set` is the set its directives count in, when not the file's.
    Ready { set: Option<String> },
    /// Not usable; directives that use it get this outcome (`NotRun` or
    /// `Excluded`).
    Unavailable(Outcome),
}

/// How the directive at a line is treated before it runs.
struct Plan {
    features: WasmFeatures,
    set: Option<String>,
    skip: Option<Outcome>,
}

struct Runner<'f, 'scope, 'env> {
    ctx: &'f FileCtx<'f>,
    exec: Box<dyn Executor + 'f>,
    scope: &'scope Scope<'scope, 'env>,
    current: Option<ModState>,
    named: HashMap<String, ModState>,
    definitions: HashMap<String, ModState>,
    last_definition: Option<ModState>,
    registered: HashMap<String, ModState>,
    /// The id of the current module (`None`: anonymous).
    current_id: Option<String>,
    /// The module id behind each registered name.
    register_ids: HashMap<String, Option<String>>,
    /// Modules (by id; `None`: the anonymous current module) whose state a
    /// module that was not run would have changed (through its imports:
    /// data and element segments, start functions), with that module's
    /// line. Assertions on them are not run: they test the other module's
    /// side effects.
    tainted: HashMap<Option<String>, u32>,
    threads: HashMap<String, (u32, Thread<'scope>)>,
    records: Vec<Record>,
}

enum Thread<'scope> {
    /// Running on an OS thread with its own executor.
    Spawned(ScopedJoinHandle<'scope, Vec<Record>>),
    /// The executor does not support threads; its directives were validated
    /// in place.
    Inline,
}

impl<'f, 'scope, 'env> Runner<'f, 'scope, 'env>
where
    'f: 'scope,
{
    fn new(
        ctx: &'f FileCtx<'f>,
        exec: Box<dyn Executor + 'f>,
        scope: &'scope Scope<'scope, 'env>,
    ) -> Self {
        Runner {
            ctx,
            exec,
            scope,
            current: None,
            named: HashMap::new(),
            definitions: HashMap::new(),
            last_definition: None,
            registered: HashMap::new(),
            current_id: None,
            register_ids: HashMap::new(),
            tainted: HashMap::new(),
            threads: HashMap::new(),
            records: Vec::new(),
        }
    }

    fn run(&mut self, directives: Vec<WastDirective<'f>>) {
        for d in directives {
            let line = self.ctx.lines.line(d.span().offset());
            let kind = kind_of(&d);
            let before = self.records.len();
            let r = catch_unwind(AssertUnwindSafe(|| self.directive(d, line)));
            if let Err(panic) = r {
                self.records.truncate(before);
                self.record(
                    line,
                    kind,
                    None,
                    Outcome::Fail(format!("harness panicked: {}", panic_message(&*panic))),
                );
            }
        }
    }

    /// Joins threads that were never waited for and returns every record.
    fn finish(mut self) -> Vec<Record> {
        let mut threads: Vec<_> = self.threads.drain().collect();
        threads.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, t) in threads {
            self.join(&name, t, None);
        }
        self.records
    }

    fn record(&mut self, line: u32, kind: Kind, set: Option<String>, outcome: Outcome) {
        self.records.push(Record {
            line,
            kind,
            set,
            outcome,
            note: None,
        });
    }

    fn record_note(
        &mut self,
        line: u32,
        kind: Kind,
        set: Option<String>,
        o: Outcome,
        note: Option<String>,
    ) {
        self.records.push(Record {
            line,
            kind,
            set,
            outcome: o,
            note,
        });
    }

    fn plan(&self, line: u32) -> Plan {
        let base = self.ctx.info.features;
        let key = (self.ctx.info.path.clone(), line);
        match self.ctx.manifest.post2.get(&key) {
            Some(p) if !base.contains(p.flags) => {
                let features = p.features.join(",");
                if self.ctx.post2 {
                    Plan {
                        features: base | p.flags,
                        set: Some(format!("post2:{features}")),
                        skip: None,
                    }
                } else {
                    Plan {
                        features: base,
                        set: None,
                        skip: Some(Outcome::Excluded(format!("needs {features}"))),
                    }
                }
            }
            _ => Plan {
                features: base,
                set: None,
                skip: None,
            },
        }
    }

    fn contradiction(&self, line: u32) -> Option<&'static str> {
        CONTRADICTIONS
            .iter()
            .find(|(p, l, _)| *p == self.ctx.info.path && *l == line)
            .map(|(_, _, why)| *why)
    }

    fn text_rejected_by_validation(&self, line: u32) -> bool {
        TEXT_REJECTED_BY_VALIDATION
            .iter()
            .any(|(p, l)| *p == self.ctx.info.path && *l == line)
    }

    fn directive(&mut self, d: WastDirective<'f>, line: u32) {
        if let Some(why) = self.contradiction(line) {
            self.record(line, kind_of(&d), None, Outcome::Excluded(why.to_string()));
            return;
        }
        let plan = self.plan(line);
        match d {
            WastDirective::Module(qw) => self.module(qw, line, plan, false),
            WastDirective::ModuleDefinition(qw) => self.module(qw, line, plan, true),
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let def = match module {
                    Some(id) => self.definitions.get(id.name()).cloned(),
                    None => self.last_definition.clone(),
                };
                let (outcome, set) = match def {
                    None => (
                        Outcome::Fail("instance of an unknown module definition".into()),
                        None,
                    ),
                    Some(ModState::Unavailable(o)) => (o, None),
                    Some(ModState::Ready { set }) => (
                        self.exec
                            .module_instance(instance.map(|i| i.name()), module.map(|i| i.name())),
                        set,
                    ),
                };
                let state = self.state_after(&outcome, set.clone(), line);
                self.record(line, Kind::ModuleInstance, set, outcome);
                self.current = Some(state.clone());
                self.current_id = instance.map(|i| i.name().to_string());
                self.tainted.remove(&self.current_id.clone());
                if let Some(id) = instance {
                    self.named.insert(id.name().to_string(), state);
                }
            }
            WastDirective::Register { name, module, .. } => {
                let (outcome, set) = match self.lookup(module.map(|i| i.name())) {
                    Err(o) => (o, None),
                    Ok(set) => (self.exec.register(name, module.map(|i| i.name())), set),
                };
                let state = self.state_after(&outcome, set.clone(), line);
                self.registered.insert(name.to_string(), state);
                let id = module
                    .map(|i| i.name().to_string())
                    .or_else(|| self.current_id.clone());
                self.register_ids.insert(name.to_string(), id);
                self.record(line, Kind::Register, set, outcome);
            }
            WastDirective::Invoke(call) => {
                let (outcome, set) = match self.lookup(call.module.map(|i| i.name())) {
                    Err(o) => (o, None),
                    Ok(set) => (self.exec.invoke(&call), set),
                };
                self.record(line, Kind::Invoke, set, outcome);
            }
            WastDirective::AssertReturn { exec, results, .. } => {
                self.execute(Kind::AssertReturn, exec, line, plan, |ex, e| {
                    ex.assert_return(e, &results)
                });
            }
            WastDirective::AssertTrap { exec, message, .. } => {
                self.execute(Kind::AssertTrap, exec, line, plan, |ex, e| {
                    ex.assert_trap(e, message)
                });
            }
            WastDirective::AssertException { exec, .. } => {
                self.execute(Kind::AssertException, exec, line, plan, |ex, e| {
                    ex.assert_exception(e)
                });
            }
            WastDirective::AssertSuspension { exec, message, .. } => {
                self.execute(Kind::AssertSuspension, exec, line, plan, |ex, e| {
                    ex.assert_suspension(e, message)
                });
            }
            WastDirective::AssertExhaustion { call, message, .. } => {
                let (outcome, set) = match self.lookup(call.module.map(|i| i.name())) {
                    Err(o) => (o, None),
                    Ok(set) => (self.exec.assert_exhaustion(&call, message), set),
                };
                self.record(line, Kind::AssertExhaustion, set, outcome);
            }
            WastDirective::AssertMalformed {
                module, message, ..
            } => self.assert_malformed(module, message, line, plan),
            WastDirective::AssertInvalid {
                module, message, ..
            } => self.assert_invalid(module, message, line, plan),
            WastDirective::AssertUnlinkable {
                module, message, ..
            } => {
                let kind = Kind::AssertUnlinkable;
                if let Some(skip) = plan.skip {
                    return self.record(line, kind, None, skip);
                }
                let mut qw = QuoteWat::Wat(module);
                let (bytes, m) = match self.valid_module(&mut qw, plan.features) {
                    Ok(x) => x,
                    Err(o) => return self.record(line, kind, plan.set, o),
                };
                let vm = ValidModule {
                    id: wat_id(&qw),
                    line,
                    bytes: &bytes,
                    module: &m,
                    features: Features(plan.features),
                };
                let outcome = match self.import_dependency(&m) {
                    Some(o) => o,
                    None => self.exec.assert_unlinkable(&vm, message),
                };
                self.record(line, kind, plan.set, outcome);
            }
            WastDirective::AssertInvalidCustom { .. }
            | WastDirective::AssertMalformedCustom { .. } => self.record(
                line,
                Kind::AssertCustom,
                None,
                Outcome::NotRun("custom-section assertions are not run".into()),
            ),
            WastDirective::Thread(t) => {
                let name = t.name.name().to_string();
                let shared = t.shared_module.map(|i| i.name());
                let mut named = HashMap::new();
                if let Some(id) = shared {
                    let state = self.named.get(id).cloned().unwrap_or_else(|| {
                        ModState::Unavailable(Outcome::Fail(format!("unknown module ${id}")))
                    });
                    named.insert(id.to_string(), state);
                }
                let thread = match self.exec.spawn_thread(&name, shared) {
                    Some(exec) => {
                        let (ctx, scope, directives) = (self.ctx, self.scope, t.directives);
                        // Counted when it is joined and has finished, not here.
                        Thread::Spawned(self.scope.spawn(move || {
                            let _quiet = QuietPanics::new();
                            let mut child = Runner::new(ctx, exec, scope);
                            child.named = named;
                            child.run(directives);
                            child.finish()
                        }))
                    }
                    None => {
                        let mut child = Runner::new(self.ctx, Box::new(DecodeOnly), self.scope);
                        child.named = named;
                        child.run(t.directives);
                        self.records.extend(child.finish());
                        self.record(
                            line,
                            Kind::Thread,
                            None,
                            Outcome::NotRun("threads not implemented".into()),
                        );
                        Thread::Inline
                    }
                };
                self.threads.insert(name, (line, thread));
            }
            WastDirective::Wait { thread, .. } => match self.threads.remove(thread.name()) {
                Some(t) => self.join(thread.name(), t, Some(line)),
                None => self.record(
                    line,
                    Kind::Wait,
                    None,
                    Outcome::Fail(format!("wait for unknown thread ${}", thread.name())),
                ),
            },
        }
    }

    /// Joins a thread; `wait_line` is the line of its `(wait ...)`, `None`
    /// when the script never waits for it.
    fn join(&mut self, name: &str, (line, thread): (u32, Thread<'scope>), wait_line: Option<u32>) {
        let spawned = matches!(thread, Thread::Spawned(_));
        let outcome = match thread {
            Thread::Inline => Outcome::NotRun("threads not implemented".into()),
            Thread::Spawned(handle) => match handle.join() {
                Ok(records) => {
                    self.records.extend(records);
                    Outcome::Pass
                }
                Err(panic) => Outcome::Fail(format!(
                    "thread ${name} (line {line}) panicked: {}",
                    panic_message(&*panic)
                )),
            },
        };
        // A spawned thread counts once it has finished (or failed); an
        // inline one was counted as not run already. The `(wait ...)`
        // counts as the join's outcome.
        if spawned {
            self.record(line, Kind::Thread, None, outcome.clone());
        }
        if let Some(w) = wait_line {
            self.record(w, Kind::Wait, None, outcome);
        }
    }

    /// The state of a module after the executor's answer about it.
    fn state_after(&self, outcome: &Outcome, set: Option<String>, line: u32) -> ModState {
        match outcome {
            Outcome::Pass => ModState::Ready { set },
            Outcome::Fail(_) => ModState::Unavailable(Outcome::NotRun(format!(
                "depends on the module at line {line}, which failed"
            ))),
            o => ModState::Unavailable(o.clone()),
        }
    }

    /// The module a directive refers to: `Ok(set)` if usable, else the
    /// outcome to count.
    fn lookup(&self, id: Option<&str>) -> Result<Option<String>, Outcome> {
        let key = id.map(str::to_string).or_else(|| self.current_id.clone());
        if let Some(line) = self.tainted.get(&key) {
            return Err(Outcome::NotRun(format!(
                "the module at line {line}, which was not run, would have changed this module's state"
            )));
        }
        let state = match id {
            None => self
                .current
                .as_ref()
                .ok_or_else(|| Outcome::Fail("no module has been defined".into()))?,
            Some(id) => self
                .named
                .get(id)
                .ok_or_else(|| Outcome::Fail(format!("unknown module ${id}")))?,
        };
        match state {
            ModState::Ready { set } => Ok(set.clone()),
            ModState::Unavailable(o) => Err(o.clone()),
        }
    }

    /// If the module imports from a registered module that is not usable,
    /// the outcome to count instead of instantiating it.
    fn import_dependency(&self, m: &Module) -> Option<Outcome> {
        m.imports
            .iter()
            .find_map(|imp| match self.registered.get(&imp.module) {
                Some(ModState::Unavailable(o)) => Some(o.clone()),
                _ => None,
            })
    }

    fn set_module(&mut self, id: Option<&str>, definition: bool, state: ModState) {
        if definition {
            if let Some(id) = id {
                self.definitions.insert(id.to_string(), state.clone());
            }
            self.last_definition = Some(state);
        } else {
            if let Some(id) = id {
                self.named.insert(id.to_string(), state.clone());
            }
            self.current = Some(state);
            self.current_id = id.map(str::to_string);
            self.tainted.remove(&self.current_id.clone());
        }
    }

    /// A module that is not run (`plan.skip`) may import from registered
    /// modules and change their state; marks those modules tainted.
    fn taint_imports(&mut self, qw: &mut QuoteWat<'_>, line: u32) {
        let Ok(bytes) = qw.encode() else { return };
        for payload in weft_decoder::wasmparser::Parser::new(0).parse_all(&bytes) {
            let Ok(weft_decoder::wasmparser::Payload::ImportSection(reader)) = payload else {
                continue;
            };
            for imp in reader.into_imports().flatten() {
                if let Some(id) = self.register_ids.get(imp.module) {
                    self.tainted.insert(id.clone(), line);
                }
            }
        }
    }

    /// Encodes, decodes and validates a module that must be valid.
    fn valid_module(
        &self,
        qw: &mut QuoteWat<'_>,
        features: WasmFeatures,
    ) -> Result<(Vec<u8>, Module), Outcome> {
        if is_component(qw) {
            return Err(Outcome::NotRun("component model".into()));
        }
        let bytes = qw.encode().map_err(|e| {
            Outcome::Fail(format!("text did not encode: {}", one_line(&e.to_string())))
        })?;
        match Module::decode_with(&bytes, Features(features)) {
            Ok(m) => Ok((bytes, m)),
            Err(e) => Err(Outcome::Fail(format!("must validate: {e}"))),
        }
    }

    fn module(&mut self, mut qw: QuoteWat<'f>, line: u32, plan: Plan, definition: bool) {
        let id = wat_id(&qw);
        if let Some(skip) = plan.skip {
            if !definition {
                self.taint_imports(&mut qw, line);
            }
            self.record(line, Kind::Module, None, skip.clone());
            self.record(line, Kind::Instantiate, None, skip.clone());
            return self.set_module(id, definition, ModState::Unavailable(skip));
        }
        let failed = ModState::Unavailable(Outcome::NotRun(format!(
            "depends on the module at line {line}, which failed"
        )));
        let (bytes, m) = match self.valid_module(&mut qw, plan.features) {
            Ok(x) => x,
            Err(o @ Outcome::Fail(_)) => {
                self.record(line, Kind::Module, plan.set, o);
                return self.set_module(id, definition, failed);
            }
            Err(o) => {
                self.record(line, Kind::Module, None, o.clone());
                self.record(line, Kind::Instantiate, None, o.clone());
                return self.set_module(id, definition, ModState::Unavailable(o));
            }
        };
        self.record(line, Kind::Module, plan.set.clone(), Outcome::Pass);
        let vm = ValidModule {
            id,
            line,
            bytes: &bytes,
            module: &m,
            features: Features(plan.features),
        };
        let outcome = match self.import_dependency(&m) {
            Some(o) => o,
            None if definition => self.exec.define(&vm),
            None => self.exec.instantiate(&vm),
        };
        let state = self.state_after(&outcome, plan.set.clone(), line);
        self.record(line, Kind::Instantiate, plan.set, outcome);
        self.set_module(id, definition, state);
    }

    fn execute(
        &mut self,
        kind: Kind,
        exec: WastExecute<'f>,
        line: u32,
        plan: Plan,
        f: impl FnOnce(&mut dyn Executor, Exec<'_, '_>) -> Outcome,
    ) {
        if let Some(skip) = plan.skip {
            if let WastExecute::Wat(wat) = exec {
                self.taint_imports(&mut QuoteWat::Wat(wat), line);
            }
            return self.record(line, kind, None, skip);
        }
        let (outcome, set) = match exec {
            WastExecute::Invoke(call) => match self.lookup(call.module.map(|i| i.name())) {
                Err(o) => (o, None),
                Ok(set) => (f(&mut *self.exec, Exec::Invoke(&call)), set),
            },
            WastExecute::Get { module, global, .. } => {
                let module = module.map(|i| i.name());
                match self.lookup(module) {
                    Err(o) => (o, None),
                    Ok(set) => (f(&mut *self.exec, Exec::Get { module, global }), set),
                }
            }
            WastExecute::Wat(wat) => {
                let mut qw = QuoteWat::Wat(wat);
                match self.valid_module(&mut qw, plan.features) {
                    Err(o) => (o, plan.set),
                    Ok((bytes, m)) => match self.import_dependency(&m) {
                        Some(o) => (o, plan.set),
                        None => {
                            let vm = ValidModule {
                                id: wat_id(&qw),
                                line,
                                bytes: &bytes,
                                module: &m,
                                features: Features(plan.features),
                            };
                            (f(&mut *self.exec, Exec::Instantiate(vm)), plan.set)
                        }
                    },
                }
            }
        };
        self.record(line, kind, set, outcome);
    }

    fn assert_malformed(&mut self, mut qw: QuoteWat<'f>, expected: &str, line: u32, plan: Plan) {
        let kind = Kind::AssertMalformed;
        if let Some(skip) = plan.skip {
            return self.record(line, kind, None, skip);
        }
        if is_component(&qw) {
            return self.record(line, kind, None, Outcome::NotRun("component model".into()));
        }
        let quoted = matches!(qw, QuoteWat::QuoteModule(..));
        let bytes = match qw.encode() {
            // Rejected by the text parser: malformed, as expected.
            Err(_) => return self.record(line, kind, plan.set, Outcome::Pass),
            Ok(b) => b,
        };
        if quoted && !self.text_rejected_by_validation(line) {
            let outcome = Outcome::Fail(format!(
                "the text parser accepted a malformed module (expected \"{expected}\")"
            ));
            return self.record(line, kind, plan.set, outcome);
        }
        let (outcome, note) = must_fail(&bytes, plan.features, expected);
        self.record_note(line, kind, plan.set, outcome, note);
    }

    fn assert_invalid(&mut self, mut qw: QuoteWat<'f>, expected: &str, line: u32, plan: Plan) {
        let kind = Kind::AssertInvalid;
        if let Some(skip) = plan.skip {
            return self.record(line, kind, None, skip);
        }
        if is_component(&qw) {
            return self.record(line, kind, None, Outcome::NotRun("component model".into()));
        }
        let bytes = match qw.encode() {
            Err(e) => {
                let outcome = Outcome::Fail(format!(
                    "text did not encode (expected a well-formed, invalid module): {}",
                    one_line(&e.to_string())
                ));
                return self.record(line, kind, plan.set, outcome);
            }
            Ok(b) => b,
        };
        let (outcome, note) = must_fail(&bytes, plan.features, expected);
        self.record_note(line, kind, plan.set, outcome, note);
    }
}

/// Decodes a module that must be rejected as malformed or invalid, and
/// judges whether weft rejected it *for the reason the spec gives*.
///
/// A rejection whose message contains the spec's text passes. Any other
/// rejection is examined again with every WebAssembly 3.0 feature on (by the
/// validator weft's decoder is built on), because the file's feature set can
/// hide the spec's reason behind "feature X is disabled" or behind an older
/// encoding (a 2.0 memarg offset is a u32, a 3.0 one a u64). Proposals past
/// 3.0 stay off: some of them give the same bytes another meaning.
/// - with every 3.0 feature on it is rejected with the spec's text: the module
///   does have the spec's defect; it passes, with a note;
/// - with every 3.0 feature on it *validates*: weft rejected it only because a
///   feature is off, which says nothing about the spec's reason; not run;
/// - it is rejected with another text, listed in [`WORDING`] (a reviewed
///   difference of wording for the same reason): passes, with a note;
/// - anything else fails.
fn must_fail(bytes: &[u8], features: WasmFeatures, expected: &str) -> (Outcome, Option<String>) {
    let e = match Module::decode_with(bytes, Features(features)) {
        Ok(_) => {
            return (
                Outcome::Fail(format!("decoded and validated; expected \"{expected}\"")),
                None,
            );
        }
        Err(e @ DecodeError::Unsupported { .. }) => {
            return (
                Outcome::Fail(format!(
                    "rejected as unsupported, not as malformed/invalid (expected \"{expected}\"): {e}"
                )),
                None,
            );
        }
        Err(e) => e,
    };
    let got = e.message();
    if got.contains(expected) {
        return (Outcome::Pass, None);
    }
    if same_reason(expected, got) {
        let note = format!("expected \"{expected}\", got \"{got}\" (reviewed wording)");
        return (Outcome::Pass, Some(note));
    }
    let all = weft_decoder::wasmparser::Validator::new_with_features(WasmFeatures::WASM3)
        .validate_all(bytes)
        .err()
        .map(|e| e.message().to_string());
    match all {
        None => (
            Outcome::NotRun(format!(
                "rejected by a disabled feature (\"{got}\"); with every 3.0 feature on it validates, \
                 so weft's reason is not the spec's (\"{expected}\")"
            )),
            None,
        ),
        Some(all) if all.contains(expected) || same_reason(expected, &all) => (
            Outcome::Pass,
            Some(format!(
                "rejected first by the file's feature set (\"{got}\"); with every 3.0 feature on, \
                 for the spec's reason (\"{all}\")"
            )),
        ),
        Some(all) => (
            Outcome::Fail(format!(
                "rejected for another reason: expected \"{expected}\", got \"{got}\" \
                 (with every 3.0 feature on: \"{all}\")"
            )),
            None,
        ),
    }
}

/// Reviewed differences of wording: (the spec's text, a substring of
/// wasmparser's message) pairs that name the same defect. Each entry was
/// checked against the spec test's module; keep it short.
const WORDING: &[(&str, &str)] = &[
    // LEB128 decoding: the reference interpreter names the value's range,
    // wasmparser the encoding's length (both: the integer does not fit).
    ("integer too large", "integer representation too long"),
    ("integer representation too long", "integer too large"),
    ("integer representation too long", "invalid leading byte"),
    // Truncated input: the reference interpreter says where it was reading.
    (
        "unexpected end of section or function",
        "unexpected end-of-file",
    ),
    (
        "unexpected end of section or function",
        "control frames remain",
    ),
    ("unexpected end", "unexpected end-of-file"),
    ("length out of bounds", "unexpected end-of-file"),
    (
        "length out of bounds",
        "expected section, got wasm magic number",
    ),
    ("END opcode expected", "control frames remain"),
    ("section size mismatch", "control frames remain"),
    // Section bookkeeping.
    (
        "function and code section have inconsistent lengths",
        "function section",
    ),
    (
        "function and code section have inconsistent lengths",
        "code section",
    ),
    (
        "data count and data section have inconsistent lengths",
        "data count",
    ),
    (
        "unexpected content after last section",
        "section out of order",
    ),
    (
        "unexpected content after last section",
        "function and code section have inconsistent lengths",
    ),
    ("multiple start sections", "section out of order"),
    // Flag bytes.
    ("malformed import kind", "for external kind"),
    ("malformed limits flags", "limits flags"),
    ("malformed limits flags", "unexpected end-of-file"),
    ("malformed mutability", "malformed global flags"),
    ("malformed memop flags", "malformed memop"),
    ("illegal opcode", "illegal opcode"),
    // Legacy exception syntax (`catch`, `catch_all`) that the `wast` text
    // parser still accepts: WebAssembly 3.0 has no such instruction, so the
    // grammar error the spec names is, after encoding, the validator's
    // "legacy exceptions" error (see TEXT_REJECTED_BY_VALIDATION).
    (
        "unexpected token",
        "legacy_exceptions feature required for catch",
    ),
    // Validation wording.
    // The exceptions proposal's tests spell out the operand types; the
    // defect is the same operand type mismatch.
    ("type mismatch: instruction requires", "type mismatch"),
    ("immutable global", "global is immutable"),
    ("invalid lane index", "SIMD index out of bounds"),
    (
        "atomic alignment must be natural",
        "atomic instructions must always specify maximum alignment",
    ),
    (
        "memory size must be at most 65536 pages (4GiB)",
        "memory size must be at most",
    ),
    ("memory size", "integer too large"),
    ("memory size", "integer representation too long"),
    ("table size", "integer too large"),
    ("offset out of range", "integer too large"),
    ("offset out of range", "integer representation too long"),
    ("i32 constant out of range", "integer too large"),
];

/// Whether `got` names the defect `expected` names, per [`WORDING`].
fn same_reason(expected: &str, got: &str) -> bool {
    WORDING
        .iter()
        .any(|(e, g)| expected.contains(e) && got.contains(g))
}

fn is_component(qw: &QuoteWat<'_>) -> bool {
    matches!(
        qw,
        QuoteWat::QuoteComponent(..) | QuoteWat::Wat(Wat::Component(_))
    )
}

fn wat_id<'a>(qw: &QuoteWat<'a>) -> Option<&'a str> {
    match qw {
        QuoteWat::Wat(Wat::Module(TextModule { id, .. })) => id.map(|i| i.name()),
        _ => None,
    }
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

fn kind_of(d: &WastDirective<'_>) -> Kind {
    match d {
        WastDirective::Module(_) | WastDirective::ModuleDefinition(_) => Kind::Module,
        WastDirective::ModuleInstance { .. } => Kind::ModuleInstance,
        WastDirective::AssertMalformed { .. } => Kind::AssertMalformed,
        WastDirective::AssertInvalid { .. } => Kind::AssertInvalid,
        WastDirective::AssertInvalidCustom { .. } | WastDirective::AssertMalformedCustom { .. } => {
            Kind::AssertCustom
        }
        WastDirective::Register { .. } => Kind::Register,
        WastDirective::Invoke(_) => Kind::Invoke,
        WastDirective::AssertTrap { .. } => Kind::AssertTrap,
        WastDirective::AssertReturn { .. } => Kind::AssertReturn,
        WastDirective::AssertExhaustion { .. } => Kind::AssertExhaustion,
        WastDirective::AssertUnlinkable { .. } => Kind::AssertUnlinkable,
        WastDirective::AssertException { .. } => Kind::AssertException,
        WastDirective::AssertSuspension { .. } => Kind::AssertSuspension,
        WastDirective::Thread(_) => Kind::Thread,
        WastDirective::Wait { .. } => Kind::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!(idx.line(0), 1);
        assert_eq!(idx.line(1), 1);
        assert_eq!(idx.line(2), 2);
        assert_eq!(idx.line(4), 2);
        assert_eq!(idx.line(5), 3);
        assert_eq!(idx.line(6), 4);
    }
}
