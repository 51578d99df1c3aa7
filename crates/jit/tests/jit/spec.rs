//! Runs the non-trapping parts of the official spec tests (`assert_return`
//! and plain `invoke`) for the instructions this crate translates. Modules
//! that need a post-2.0 feature (listed in the testsuite's
//! `POST2_MODULES.tsv`) are skipped with their assertions; any other module
//! that fails to decode or compile is a failure. Traps cannot be caught here,
//! so `assert_trap` and `assert_exhaustion` are skipped (and counted).
//!
//! A missing testsuite fails the test unless `WEFT_NO_TESTSUITE=1` says to
//! skip it (`cargo xtask test --no-testsuite` sets it), and each run must
//! pass at least [`MIN_PASSED`] assertions, so the test cannot pass
//! vacuously.

use std::collections::HashMap;
use std::path::PathBuf;

use wast::core::{NanPattern, WastArgCore, WastRetCore};
use wast::parser::{self, ParseBuffer};
use wast::{Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet};
use weft_decoder::{ExternIndex, Module};
use weft_jit::{CompileError, Compiler, Tunables};

use crate::harness::{ImportVal, Instance, TestTable, Val, ValRaw, small_tunables};

/// Externref `N` of a script is the word `EXTERN_BIAS + N` (never null).
const EXTERN_BIAS: u64 = 0x1000;

const FILES: &[&str] = &[
    "address",
    "align",
    "block",
    "br",
    "br_if",
    "br_table",
    "bulk",
    "call",
    "call_indirect",
    "const",
    "conversions",
    "elem",
    "endianness",
    "f32",
    "f32_bitwise",
    "f32_cmp",
    "f64",
    "f64_bitwise",
    "f64_cmp",
    "fac",
    "float_exprs",
    "float_literals",
    "float_memory",
    "float_misc",
    "forward",
    "func",
    "global",
    "i32",
    "i64",
    "if",
    "int_exprs",
    "int_literals",
    "labels",
    "left-to-right",
    "load",
    "local_get",
    "local_set",
    "local_tee",
    "loop",
    "memory",
    "memory_copy",
    "memory_fill",
    "memory_grow",
    "memory_init",
    "memory_redundancy",
    "memory_size",
    "memory_trap",
    "nop",
    "ref_func",
    "ref_is_null",
    "ref_null",
    "return",
    "select",
    "stack",
    "store",
    "switch",
    "table",
    "table_copy",
    "table_fill",
    "table_get",
    "table_grow",
    "table_init",
    "table_set",
    "table_size",
    "traps",
    "unreachable",
    "unwind",
];

/// Proposal files (paths under the testsuite root, without `.wast`).
const PROPOSAL_FILES: &[&str] = &[
    "proposals/threads/atomic",
    "proposals/threads-upstream/atomic",
];

/// Fewer passed assertions than this in one run means the run lost files or
/// modules (each run passes 20,843 today).
const MIN_PASSED: usize = 20_000;

fn testsuite() -> Option<PathBuf> {
    let dir = std::env::var_os("WEFT_TESTSUITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testsuite")
        });
    if dir.join("core").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("WEFT_NO_TESTSUITE").is_some_and(|v| v == "1"),
        "spec testsuite not found at {} (set WEFT_TESTSUITE, or WEFT_NO_TESTSUITE=1 to skip)",
        dir.display()
    );
    None
}

/// `(path without .wast, line)` of every module that needs a post-2.0
/// feature, from the testsuite's `POST2_MODULES.tsv`.
fn post2_modules(dir: &std::path::Path) -> std::collections::HashSet<(String, usize)> {
    let path = dir.join("POST2_MODULES.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let file = cols.next()?.strip_suffix(".wast")?.to_string();
            let line = cols.next()?.parse().ok()?;
            Some((file, line))
        })
        .collect()
}

unsafe extern "C" fn spectest_print(
    _ctx: *mut u8,
    _caller: *mut u8,
    _values: *mut ValRaw,
    _len: usize,
) -> u32 {
    0
}

#[derive(Default)]
struct Stats {
    passed: usize,
    failed: Vec<String>,
    skipped: usize,
    /// Post-2.0 modules (their assertions are in `skipped`).
    skipped_modules: usize,
}

struct Runner<'c> {
    compiler: &'c Compiler,
    instances: Vec<Box<Instance>>,
    named: HashMap<String, usize>,
    registered: HashMap<String, usize>,
    current: Option<usize>,
    stats: Stats,
    file: String,
    spectest_table: Box<TestTable>,
    post2: &'c std::collections::HashSet<(String, usize)>,
}

impl Runner<'_> {
    fn instance_for(&self, id: Option<wast::token::Id<'_>>) -> Option<usize> {
        match id {
            Some(id) => self.named.get(id.name()).copied(),
            None => self.current,
        }
    }

    fn imports(&mut self, module: &Module) -> Option<Vec<ImportVal>> {
        let mut out = Vec::new();
        for imp in &module.imports {
            use weft_decoder::EntityType as E;
            if imp.module == "spectest" {
                match (imp.ty, imp.name.as_str()) {
                    (E::Func(_), _) => out.push(ImportVal::Host(spectest_print)),
                    (E::Global(_), "global_i32") => out.push(ImportVal::Global(Val::I32(666))),
                    (E::Global(_), "global_i64") => out.push(ImportVal::Global(Val::I64(666))),
                    (E::Global(_), "global_f32") => {
                        out.push(ImportVal::Global(Val::F32(666.6f32.to_bits())))
                    }
                    (E::Global(_), "global_f64") => {
                        out.push(ImportVal::Global(Val::F64(666.6f64.to_bits())))
                    }
                    (E::Table(_), "table") => out.push(ImportVal::Table(&mut *self.spectest_table)),
                    _ => return None,
                }
                continue;
            }
            let &idx = self.registered.get(&imp.module)?;
            let inst = &mut self.instances[idx];
            let export = inst.module.export(&imp.name)?.index;
            match (imp.ty, export) {
                (E::Func(_), ExternIndex::Func(f)) => {
                    out.push(ImportVal::FuncRef(inst.funcref(f)));
                }
                (E::Table(_), ExternIndex::Table(t)) => {
                    out.push(ImportVal::Table(inst.table_ptr(t)));
                }
                (E::Global(g), ExternIndex::Global(i)) if !g.mutable => {
                    out.push(ImportVal::Global(inst.global(i as usize, g.ty)));
                }
                _ => return None,
            }
        }
        Some(out)
    }

    fn module(&mut self, bytes: &[u8], name: Option<&str>, line: usize) {
        self.current = None;
        let module = match Module::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                if self.post2.contains(&(self.file.clone(), line)) {
                    self.stats.skipped_modules += 1;
                } else {
                    self.stats
                        .failed
                        .push(format!("{}:{line}: module does not decode: {e}", self.file));
                }
                return;
            }
        };
        let Some(imports) = self.imports(&module) else {
            // Imports this fake runtime cannot provide (the runtime's own
            // spec run covers these modules).
            if std::env::var_os("WEFT_SPEC_VERBOSE").is_some() {
                eprintln!(
                    "  {}:{line}: skipping a module: unsupported imports",
                    self.file
                );
            }
            self.stats.skipped_modules += 1;
            return;
        };
        let compiled = match self.compiler.compile(&module) {
            Ok(c) => c,
            Err(CompileError::Unsupported(m)) => {
                self.stats
                    .failed
                    .push(format!("{}:{line}: unsupported: {m}", self.file));
                return;
            }
            Err(e) => {
                self.stats
                    .failed
                    .push(format!("{}: compile error {e}", self.file));
                return;
            }
        };
        let inst = Instance::instantiate(self.compiler, module, compiled, imports);
        self.instances.push(inst);
        let idx = self.instances.len() - 1;
        self.current = Some(idx);
        if let Some(n) = name {
            self.named.insert(n.to_string(), idx);
        }
    }

    fn args(args: &[WastArg<'_>]) -> Option<Vec<Val>> {
        args.iter()
            .map(|a| match a {
                WastArg::Core(WastArgCore::I32(x)) => Some(Val::I32(*x)),
                WastArg::Core(WastArgCore::I64(x)) => Some(Val::I64(*x)),
                WastArg::Core(WastArgCore::F32(x)) => Some(Val::F32(x.bits)),
                WastArg::Core(WastArgCore::F64(x)) => Some(Val::F64(x.bits)),
                WastArg::Core(WastArgCore::RefNull(_)) => Some(Val::Ref(0)),
                WastArg::Core(WastArgCore::RefExtern(n)) => {
                    Some(Val::Ref(EXTERN_BIAS + u64::from(*n)))
                }
                _ => None,
            })
            .collect()
    }

    fn invoke(&mut self, inv: &WastInvoke<'_>) -> Option<Vec<Val>> {
        let idx = self.instance_for(inv.module)?;
        let args = Self::args(&inv.args)?;
        let inst = &mut self.instances[idx];
        let f = match inst.module.export(inv.name)?.index {
            ExternIndex::Func(f) => f,
            _ => return None,
        };
        if inst.module.is_imported_func(f) {
            return None;
        }
        let ty = inst.module.func_type(f);
        if ty.results.iter().chain(ty.params.iter()).any(|t| {
            !matches!(
                t,
                weft_decoder::ValType::I32
                    | weft_decoder::ValType::I64
                    | weft_decoder::ValType::F32
                    | weft_decoder::ValType::F64
                    | weft_decoder::ValType::Ref(_)
            )
        }) {
            return None;
        }
        Some(inst.call(inv.name, &args))
    }

    fn matches(got: Val, want: &WastRet<'_>) -> Option<bool> {
        Some(match (got, want) {
            (Val::I32(g), WastRet::Core(WastRetCore::I32(w))) => g == *w,
            (Val::I64(g), WastRet::Core(WastRetCore::I64(w))) => g == *w,
            (Val::F32(g), WastRet::Core(WastRetCore::F32(p))) => match p {
                NanPattern::CanonicalNan => g & 0x7fff_ffff == 0x7fc0_0000,
                NanPattern::ArithmeticNan => g & 0x7fc0_0000 == 0x7fc0_0000,
                NanPattern::Value(v) => g == v.bits,
            },
            (Val::F64(g), WastRet::Core(WastRetCore::F64(p))) => match p {
                NanPattern::CanonicalNan => g & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
                NanPattern::ArithmeticNan => g & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
                NanPattern::Value(v) => g == v.bits,
            },
            (Val::Ref(g), WastRet::Core(WastRetCore::RefNull(_))) => g == 0,
            (Val::Ref(g), WastRet::Core(WastRetCore::RefExtern(Some(n)))) => {
                g == EXTERN_BIAS + u64::from(*n)
            }
            (Val::Ref(g), WastRet::Core(WastRetCore::RefExtern(None))) => g != 0,
            (Val::Ref(g), WastRet::Core(WastRetCore::RefFunc(_))) => g != 0,
            _ => return None,
        })
    }

    fn directive(&mut self, d: WastDirective<'_>, line: usize) {
        match d {
            WastDirective::Module(mut m) => {
                let name = m.name().map(|n| n.name().to_string());
                match m.encode() {
                    Ok(bytes) => self.module(&bytes, name.as_deref(), line),
                    Err(e) => {
                        self.current = None;
                        self.stats
                            .failed
                            .push(format!("{}:{line}: module does not encode: {e}", self.file));
                    }
                }
            }
            WastDirective::Register { name, module, .. } => {
                if let Some(i) = self.instance_for(module) {
                    self.registered.insert(name.to_string(), i);
                }
            }
            WastDirective::Invoke(inv) => {
                if self.invoke(&inv).is_none() {
                    self.stats.skipped += 1;
                }
            }
            WastDirective::AssertReturn {
                exec: WastExecute::Invoke(inv),
                results,
                ..
            } => match self.invoke(&inv) {
                None => self.stats.skipped += 1,
                Some(got) => {
                    let ok = got.len() == results.len()
                        && got
                            .iter()
                            .zip(&results)
                            .all(|(g, w)| Self::matches(*g, w) == Some(true));
                    if ok {
                        self.stats.passed += 1;
                    } else {
                        self.stats.failed.push(format!(
                            "{}:{line}: {} returned {got:?}, expected {results:?}",
                            self.file, inv.name
                        ));
                    }
                }
            },
            _ => self.stats.skipped += 1,
        }
    }
}

fn run(tunables: Tunables) -> Stats {
    let Some(dir) = testsuite() else {
        eprintln!("spec testsuite skipped (WEFT_NO_TESTSUITE=1)");
        return Stats::default();
    };
    let post2 = post2_modules(&dir);
    let compiler = Compiler::new(tunables).unwrap();
    let mut total = Stats::default();
    let files = FILES
        .iter()
        .map(|f| format!("core/{f}"))
        .chain(PROPOSAL_FILES.iter().map(|f| f.to_string()));
    for file in files {
        let path = dir.join(format!("{file}.wast"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let buf = ParseBuffer::new(&text).unwrap();
        let wast: Wast<'_> = parser::parse(&buf).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut r = Runner {
            compiler: &compiler,
            instances: Vec::new(),
            named: HashMap::new(),
            registered: HashMap::new(),
            current: None,
            stats: Stats::default(),
            file: file.clone(),
            spectest_table: TestTable::new(10, Some(20), 0),
            post2: &post2,
        };
        for d in wast.directives {
            let (line, _) = d.span().linecol_in(&text);
            r.directive(d, line + 1);
        }
        eprintln!(
            "{file}: {} passed, {} failed, {} skipped",
            r.stats.passed,
            r.stats.failed.len(),
            r.stats.skipped
        );
        total.passed += r.stats.passed;
        total.skipped += r.stats.skipped;
        total.skipped_modules += r.stats.skipped_modules;
        total.failed.extend(r.stats.failed);
    }
    total
}

fn check(stats: Stats) {
    for f in &stats.failed {
        eprintln!("FAIL {f}");
    }
    eprintln!(
        "spec: {} passed, {} failed, {} skipped ({} modules skipped)",
        stats.passed,
        stats.failed.len(),
        stats.skipped,
        stats.skipped_modules
    );
    assert!(
        stats.failed.is_empty(),
        "{} spec assertions failed",
        stats.failed.len()
    );
    if testsuite().is_some() {
        assert!(
            stats.passed >= MIN_PASSED,
            "only {} spec assertions passed (at least {MIN_PASSED} expected): files or modules went missing",
            stats.passed
        );
    }
}

#[test]
fn spec_with_guard_pages() {
    check(run(Tunables::default()));
}

/// Also meters fuel (with epoch checks on, as by default), so that the fuel
/// bookkeeping is checked not to change any result.
#[test]
fn spec_with_explicit_bounds_checks_and_fuel() {
    check(run(Tunables {
        consume_fuel: true,
        ..small_tunables()
    }));
}
