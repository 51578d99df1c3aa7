//! The spec harness on small, made-up testsuites: what it counts, what it
//! skips, what fails the run, and that nothing escapes as a panic.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use wast::WastInvoke;
use xtask::spec::exec::{DecodeOnly, Executor, ValidModule};
use xtask::spec::{self, Options, Outcome, Status};

/// A throwaway testsuite folder.
struct Suite {
    dir: PathBuf,
}

impl Suite {
    fn new(name: &str) -> Suite {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weft-xtask-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let suite = Suite { dir };
        suite.write(
            "POST2_MODULES.tsv",
            "path\tline\tdirective\texpectation\tfeatures\n",
        );
        suite
    }

    fn write(&self, path: &str, text: &str) {
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// `files`: (path, feature set, script).
    fn files(&self, files: &[(&str, &str, &str)]) {
        let mut manifest = String::from(
            "path\tfeature_set\tmodules\tassert_return\tassert_trap\tassert_invalid\t\
             assert_malformed\tassert_unlinkable\tassert_exhaustion\tother_directives\n",
        );
        for (path, set, text) in files {
            self.write(path, text);
            manifest.push_str(&format!("{path}\t{set}\t0\t0\t0\t0\t0\t0\t0\t0\n"));
        }
        manifest.push_str(&format!(
            "TOTAL ({} files)\t-\t0\t0\t0\t0\t0\t0\t0\t0\n",
            files.len()
        ));
        self.write("MANIFEST.tsv", &manifest);
    }

    fn post2(&self, rows: &[(&str, u32, &str)]) {
        let mut text = String::from("path\tline\tdirective\texpectation\tfeatures\n");
        for (path, line, features) in rows {
            text.push_str(&format!(
                "{path}\t{line}\tmodule\tmust-validate\t{features}\n"
            ));
        }
        self.write("POST2_MODULES.tsv", &text);
    }

    fn options(&self, supported: &str) -> Options {
        self.write("supported.txt", supported);
        let mut o = Options::for_workspace(&self.dir);
        o.testsuite = self.dir.clone();
        o.supported = self.dir.join("supported.txt");
        o.json = self.dir.join("out/results.json");
        o.jobs = 2;
        // The tests below judge the harness itself, whatever the workspace's
        // default executor is.
        o.executor = |_| Box::new(DecodeOnly);
        o.executor_name = "decode-only";
        o
    }

    /// Runs the harness; returns the regressions and the JSON.
    fn run(&self, opts: &Options) -> (usize, Value) {
        let regressions = match spec::run(opts).expect("harness error") {
            Status::Ran { regressions } => regressions,
            Status::NoTestsuite => panic!("testsuite not found"),
        };
        let json = std::fs::read_to_string(&opts.json).unwrap();
        (regressions, serde_json::from_str(&json).unwrap())
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn file<'a>(json: &'a Value, path: &str) -> &'a Value {
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in results"))
}

fn counts(v: &Value) -> (u64, u64, u64) {
    (
        v["passed"].as_u64().unwrap(),
        v["failed"].as_u64().unwrap(),
        v["skipped"].as_u64().unwrap(),
    )
}

fn failure_lines(f: &Value) -> Vec<u64> {
    f["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["line"].as_u64().unwrap())
        .collect()
}

const JUDGED: &str = r#"(module (func (export "f") (result i32) i32.const 1))
(assert_invalid (module (func (result i32))) "type mismatch")
(assert_invalid (module (func)) "type mismatch")
(assert_malformed (module quote "(module (func") "unexpected end")
(assert_malformed (module binary "\00asm" "\01\00\00\00") "nothing wrong")
(assert_malformed (module quote "(module)") "nothing wrong")
(assert_return (invoke "f") (i32.const 1))
(assert_malformed (module binary "\00asm" "\01\00\00") "unexpected end")
"#;

#[test]
fn decoder_level_assertions_are_judged_and_the_rest_is_not_run() {
    let s = Suite::new("judged");
    s.files(&[("core/a.wast", "wasm2", JUDGED)]);
    let (regressions, json) = s.run(&s.options(""));
    assert_eq!(regressions, 0, "nothing is declared supported");
    let f = file(&json, "core/a.wast");
    // Pass: module (1), invalid (2), quoted malformed (4), truncated binary (8).
    // Fail: valid module asserted invalid (3), valid binary asserted
    // malformed (5), quoted text the parser accepts (6).
    // Not run: instantiate (1), assert_return (7).
    assert_eq!(counts(f), (4, 3, 2));
    assert_eq!(failure_lines(f), vec![3, 5, 6]);
    assert_eq!(f["kinds"]["instantiate"]["not_run"], 1);
    assert_eq!(f["kinds"]["assert_return"]["not_run"], 1);
    assert_eq!(counts(&json["sets"]["wasm2"]), (4, 3, 2));
}

#[test]
fn failures_in_declared_kinds_are_regressions() {
    let s = Suite::new("regress");
    s.files(&[("core/a.wast", "wasm2", JUDGED)]);
    // Two failing malformed assertions, one failing invalid assertion.
    let (regressions, _) = s.run(&s.options("set:wasm2 assert_malformed\n"));
    assert_eq!(regressions, 2);
    let (regressions, _) = s.run(&s.options("core/a.wast assert_malformed assert_invalid\n"));
    assert_eq!(regressions, 3);
    // Declaring what does not run yet is a regression too.
    let (regressions, _) = s.run(&s.options("core/*.wast assert_return\n"));
    assert_eq!(regressions, 1);
    // A rule that matches nothing is an error, not silently ignored.
    let (regressions, _) = s.run(&s.options("core/b.wast module\n"));
    assert_eq!(regressions, 1);
    // With a filter, unmatched rules are not checked.
    let mut o = s.options("core/b.wast module\n");
    o.filter = Some("a.wast".into());
    assert_eq!(s.run(&o).0, 0);
    // A supported list that does not parse stops the run.
    assert!(spec::run(&s.options("core/a.wast nonsense\n")).is_err());
}

/// A module that needs GC (a post-2.0 feature weft does not implement yet,
/// so its set is not run with it on).
const POST2: &str = r#"(module $m64 (type (struct)) (func (export "f")))
(invoke "f")
(register "m64" $m64)
(module (import "m64" "f" (func)))
(module (memory 1) (func (export "g")))
(assert_return (invoke "g"))
(assert_return (invoke $m64 "f"))
"#;

#[test]
fn post2_modules_and_what_uses_them_are_excluded() {
    let s = Suite::new("post2");
    s.files(&[("core/m.wast", "gc", POST2)]);
    s.post2(&[("core/m.wast", 1, "gc")]);
    let (_, json) = s.run(&s.options(""));
    let f = file(&json, "core/m.wast");
    let skips = &f["skip_reasons"];
    // Module + instantiate (1), invoke (2), register (3), instantiate of the
    // importer (4), assert_return on $m64 (7).
    assert_eq!(skips["needs gc"], 6, "{skips}");
    // The importer (4) and the second module (5) validate.
    assert_eq!(f["kinds"]["module"]["passed"], 2);
    assert_eq!(f["kinds"]["module"]["excluded"], 1);
    assert_eq!(counts(f).1, 0);

    // With --post2 the module is run with GC enabled, in a set of its own
    // (and fails: weft has no GC types).
    let mut o = s.options("");
    o.post2 = true;
    let (_, json) = s.run(&o);
    let p = &json["sets"]["post2:gc"];
    assert_eq!(p["kinds"]["module"]["failed"], 1, "{p}");
    assert!(file(&json, "core/m.wast")["skip_reasons"]["needs gc"].is_null());
}

/// A file whose set is made only of post-2.0 features weft implements
/// (memory64 here) runs with them on: nothing is excluded.
#[test]
fn sets_of_supported_features_run_with_them_on() {
    let s = Suite::new("supported-post2");
    s.files(&[(
        "core/m64.wast",
        "memory64",
        "(module (memory i64 1) (func (export \"f\")))\n",
    )]);
    s.post2(&[("core/m64.wast", 1, "memory64")]);
    let (_, json) = s.run(&s.options(""));
    let f = file(&json, "core/m64.wast");
    assert_eq!(f["kinds"]["module"]["passed"], 1, "{f}");
    assert!(f["skip_reasons"]["needs memory64"].is_null(), "{f}");
}

#[test]
fn threads_files_get_threads_and_contradictions_are_excluded() {
    let s = Suite::new("threads");
    let mut script = String::new();
    for _ in 0..13 {
        script.push_str(";; padding\n");
    }
    // Lines 14 and 15 are the README's contradicting assertions.
    script.push_str("(assert_invalid (module (memory 0) (memory 0)) \"multiple memories\")\n");
    script.push_str(";; padding\n");
    script.push_str("(module (memory 1 2 shared))\n");
    script.push_str(
        "(assert_invalid (module (memory 1 shared)) \"shared memory must have maximum\")\n",
    );
    s.files(&[
        ("proposals/threads/memory.wast", "threads", &script),
        (
            "core/shared.wast",
            "wasm2",
            "(module (memory 1 2 shared))\n",
        ),
    ]);
    let (_, json) = s.run(&s.options(""));
    let f = file(&json, "proposals/threads/memory.wast");
    assert_eq!(f["set"], "threads");
    assert_eq!(f["kinds"]["assert_invalid"]["excluded"], 1, "{f}");
    assert_eq!(f["kinds"]["assert_invalid"]["passed"], 1);
    assert_eq!(f["kinds"]["module"]["passed"], 1);
    assert_eq!(counts(f).1, 0);
    // Without the threads feature, a shared memory does not validate.
    assert_eq!(failure_lines(file(&json, "core/shared.wast")), vec![1]);
}

/// An executor that "runs" everything, to exercise the seam.
struct Yes;

impl Executor for Yes {
    fn instantiate(&mut self, _: &ValidModule<'_>) -> Outcome {
        Outcome::Pass
    }
    fn register(&mut self, _: &str, _: Option<&str>) -> Outcome {
        Outcome::Pass
    }
    fn invoke(&mut self, call: &WastInvoke<'_>) -> Outcome {
        if call.name == "boom" {
            panic!("executor bug");
        }
        Outcome::Pass
    }
    fn spawn_thread(&mut self, _: &str, _: Option<&str>) -> Option<Box<dyn Executor + Send>> {
        Some(Box::new(Yes))
    }
}

const THREADED: &str = r#"(module $Mem (memory (export "shared") 1 1 shared))
(thread $T1 (shared (module $Mem))
  (register "mem" $Mem)
  (module (memory (import "mem" "shared") 1 1 shared) (func (export "run")))
  (invoke "run"))
(wait $T1)
(invoke $Mem "boom")
"#;

#[test]
fn an_executor_plugs_in_and_runs_threads() {
    let s = Suite::new("exec");
    s.files(&[("proposals/threads-upstream/t.wast", "threads", THREADED)]);
    let mut o = s.options("");
    o.executor = |_| Box::new(Yes);
    let (_, json) = s.run(&o);
    let f = file(&json, "proposals/threads-upstream/t.wast");
    // module+instantiate x2, thread, register, invoke, wait: 8 passes; the
    // panicking invoke is a failure, not a crash.
    assert_eq!(counts(f), (8, 1, 0), "{f}");
    let fail = &f["failures"][0];
    assert_eq!(fail["line"], 7);
    assert!(fail["message"].as_str().unwrap().contains("executor bug"));

    // The decode-only executor validates the thread's module but runs nothing.
    let (_, json) = s.run(&s.options(""));
    let f = file(&json, "proposals/threads-upstream/t.wast");
    assert_eq!(f["kinds"]["module"]["passed"], 2);
    assert_eq!(f["kinds"]["thread"]["not_run"], 1);
    assert_eq!(counts(f).0, 2);
}

#[test]
fn unparsable_scripts_fail_without_stopping_the_run() {
    let s = Suite::new("bad");
    s.files(&[
        ("core/bad.wast", "wasm2", "(module (func)\n"),
        ("core/good.wast", "wasm2", "(module)\n"),
    ]);
    let (regressions, json) = s.run(&s.options("core/*.wast module\n"));
    assert_eq!(regressions, 1);
    let bad = file(&json, "core/bad.wast");
    assert_eq!(bad["failures"][0]["kind"], "script");
    assert_eq!(file(&json, "core/good.wast")["passed"], 1);
}

#[test]
fn a_missing_testsuite_is_skipped() {
    let s = Suite::new("missing");
    let mut o = s.options("");
    o.testsuite = s.dir.join("nowhere");
    assert!(matches!(spec::run(&o).unwrap(), Status::NoTestsuite));
}
