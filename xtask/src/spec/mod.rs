//! The spec testsuite harness.
//!
//! Reads every `.wast` script under `core/`, `proposals/threads/` and
//! `proposals/threads-upstream/` of the testsuite, runs each directive it can
//! and counts the outcome of every directive (an "assertion") per file and
//! per feature set. [`run`] is the entry point; [`script`] runs one file;
//! [`exec`] is the seam where an executor of modules plugs in; [`report`]
//! prints the tables and writes the JSON; [`supported`] reads the list of
//! what must pass.

pub mod exec;
pub mod manifest;
pub mod readme;
pub mod report;
pub mod script;
pub mod supported;
pub mod weft_exec;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use weft_decoder::wasmparser::WasmFeatures;

use self::exec::Executor;
use self::manifest::Manifest;
use self::supported::Supported;

/// The folders of the testsuite the harness reads.
pub const FOLDERS: &[&str] = &["core", "proposals/threads", "proposals/threads-upstream"];

/// Environment variable naming the testsuite folder.
pub const ENV_TESTSUITE: &str = "WEFT_TESTSUITE";

/// What happened to one assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It held.
    Pass,
    /// It did not hold; the message says how.
    Fail(String),
    /// Not run because weft cannot run it yet (counted as skipped).
    NotRun(String),
    /// Not run by policy: it needs a feature outside the file's feature set,
    /// or it contradicts the current spec (counted as skipped).
    Excluded(String),
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $v:ident = $name:literal,)*) => {
        /// The kind of an assertion: a directive kind, with `(module ...)` split
        /// into validation (`module`) and instantiation (`instantiate`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind { $($(#[$doc])* $v,)* }

        impl Kind {
            /// Every kind.
            pub const ALL: &[Kind] = &[$(Kind::$v,)*];

            /// The name used in reports and in `spec-supported.txt`.
            pub fn name(self) -> &'static str {
                match self { $(Kind::$v => $name,)* }
            }

            /// The kind with the given name.
            pub fn from_name(name: &str) -> Option<Kind> {
                match name { $($name => Some(Kind::$v),)* _ => None }
            }
        }
    };
}

kinds! {
    /// A `(module ...)` or `(module definition ...)` decodes and validates.
    Module = "module",
    /// A `(module ...)` instantiates (or a definition is recorded).
    Instantiate = "instantiate",
    /// `(module instance ...)`.
    ModuleInstance = "module_instance",
    /// `(register ...)`.
    Register = "register",
    /// A bare `(invoke ...)`.
    Invoke = "invoke",
    /// `(assert_return ...)`.
    AssertReturn = "assert_return",
    /// `(assert_trap ...)`.
    AssertTrap = "assert_trap",
    /// `(assert_exhaustion ...)`.
    AssertExhaustion = "assert_exhaustion",
    /// `(assert_malformed ...)`.
    AssertMalformed = "assert_malformed",
    /// `(assert_invalid ...)`.
    AssertInvalid = "assert_invalid",
    /// `(assert_unlinkable ...)`.
    AssertUnlinkable = "assert_unlinkable",
    /// `(assert_exception ...)`.
    AssertException = "assert_exception",
    /// `(assert_suspension ...)`.
    AssertSuspension = "assert_suspension",
    /// `(assert_invalid_custom ...)` / `(assert_malformed_custom ...)`.
    AssertCustom = "assert_custom",
    /// `(thread ...)`.
    Thread = "thread",
    /// `(wait ...)`.
    Wait = "wait",
    /// The script itself: it could not be read or parsed.
    Script = "script",
}

/// One counted assertion.
#[derive(Debug, Clone)]
pub struct Record {
    /// Line of the directive (1-based).
    pub line: u32,
    /// Its kind.
    pub kind: Kind,
    /// The set it counts in when not the file's (a post-2.0 module run with
    /// its features enabled: `post2:<features>`).
    pub set: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// A remark that does not change the outcome (an error message that
    /// differs from the spec's expected text).
    pub note: Option<String>,
}

/// A script file and how it is run.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// Path relative to the testsuite, with `/` separators.
    pub path: String,
    /// Its feature set (`MANIFEST.tsv`; `threads` for `proposals/threads*`).
    pub set: String,
    /// The features its modules are validated with.
    pub features: WasmFeatures,
}

/// The result of one file.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// The file.
    pub info: FileInfo,
    /// Every assertion, in script order (a thread's after its `wait`).
    pub records: Vec<Record>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Creates the executor for one file.
pub type ExecutorFactory = fn(&FileInfo) -> Box<dyn Executor>;

/// How to run the harness.
#[derive(Debug, Clone)]
pub struct Options {
    /// The testsuite folder.
    pub testsuite: PathBuf,
    /// Only files whose path contains this.
    pub filter: Option<String>,
    /// Print the per-file table.
    pub per_file: bool,
    /// Run post-2.0 modules with the features they need, counted in sets of
    /// their own (`post2:<features>`), instead of skipping them.
    pub post2: bool,
    /// Creates one executor per file.
    pub executor: ExecutorFactory,
    /// Name of the executor, for the report.
    pub executor_name: &'static str,
    /// The list of supported files.
    pub supported: PathBuf,
    /// Where the JSON results go.
    pub json: PathBuf,
    /// Worker threads (files run in parallel).
    pub jobs: usize,
}

impl Options {
    /// Defaults for a workspace: the testsuite from `$WEFT_TESTSUITE` or
    /// `../shared/testsuite`, executing modules on weft.
    pub fn for_workspace(root: &Path) -> Options {
        let testsuite = match std::env::var_os(ENV_TESTSUITE) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => root.join("../shared/testsuite"),
        };
        Options {
            testsuite,
            filter: None,
            per_file: false,
            post2: false,
            executor: |_| Box::new(weft_exec::WeftExec::new(&weft::Engine::default())),
            executor_name: "weft",
            supported: root.join("xtask/spec-supported.txt"),
            json: root.join("target/spec-results.json"),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum Status {
    /// There is no testsuite at the configured path.
    NoTestsuite,
    /// Ran; `regressions` assertions in declared-supported kinds failed or did
    /// not run.
    Ran {
        /// Failed or unrun assertions in declared-supported kinds, plus
        /// supported-list rules that match no file.
        regressions: usize,
    },
}

/// Runs the harness: every selected file, then the report and the check
/// against the supported list.
pub fn run(opts: &Options) -> Result<Status> {
    let dir = &opts.testsuite;
    if !dir.join("MANIFEST.tsv").is_file() {
        println!(
            "spec: no testsuite at {} (set ${ENV_TESTSUITE} to its folder)",
            dir.display()
        );
        return Ok(Status::NoTestsuite);
    }
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let manifest = Manifest::load(&dir)?;
    let supported = Supported::load(&opts.supported)?;

    let mut files = Vec::new();
    for folder in FOLDERS {
        let mut names: Vec<String> = match std::fs::read_dir(dir.join(folder)) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".wast"))
                .collect(),
            Err(_) => continue,
        };
        names.sort();
        for n in names {
            let path = format!("{folder}/{n}");
            if opts.filter.as_deref().is_some_and(|f| !path.contains(f)) {
                continue;
            }
            let set = manifest.set_of(&path);
            let features = manifest::base_features(&set);
            files.push(FileInfo {
                path,
                set,
                features,
            });
        }
    }

    let start = Instant::now();
    let results = run_files(&dir, &manifest, &files, opts);
    let elapsed = start.elapsed();

    let check = report::check_supported(&results, &supported, opts.filter.is_none());
    report::print(&results, &check, opts, &dir, elapsed);
    report::write_json(&results, &check, opts, &dir, elapsed)
        .with_context(|| format!("writing {}", opts.json.display()))?;
    Ok(Status::Ran {
        regressions: check.problems(),
    })
}

fn run_files(
    dir: &Path,
    manifest: &Manifest,
    files: &[FileInfo],
    opts: &Options,
) -> Vec<FileResult> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(files.len()));
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, files.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(info) = files.get(i) else { break };
                    let r = script::run_file(dir, manifest, info, opts);
                    results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by(|a, b| a.info.path.cmp(&b.info.path));
    results
}
