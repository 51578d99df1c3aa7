//! Tables on stdout, JSON on disk, and the check against the supported list.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::supported::Supported;
use super::{FileResult, Kind, Options, Outcome, Record};

/// Counts of one group of assertions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Held.
    pub passed: usize,
    /// Did not hold.
    pub failed: usize,
    /// Not run because weft cannot run them yet.
    pub not_run: usize,
    /// Not run by policy.
    pub excluded: usize,
}

impl Tally {
    /// Counts one outcome.
    pub fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail(_) => self.failed += 1,
            Outcome::NotRun(_) => self.not_run += 1,
            Outcome::Excluded(_) => self.excluded += 1,
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, o: &Tally) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.not_run += o.not_run;
        self.excluded += o.excluded;
    }

    /// Not run, for either reason.
    pub fn skipped(&self) -> usize {
        self.not_run + self.excluded
    }

    fn triple(&self) -> String {
        format!("{}/{}/{}", self.passed, self.failed, self.skipped())
    }

    fn json(&self) -> Value {
        json!({
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped(),
            "not_run": self.not_run,
            "excluded": self.excluded,
        })
    }
}

/// The set a record counts in.
fn set_of<'a>(file: &'a FileResult, r: &'a Record) -> &'a str {
    r.set.as_deref().unwrap_or(&file.info.set)
}

/// Per set: the files whose set it is, and the tallies per kind.
#[derive(Debug, Default)]
struct SetSummary {
    files: usize,
    kinds: BTreeMap<Kind, Tally>,
}

impl SetSummary {
    fn total(&self) -> Tally {
        let mut t = Tally::default();
        for k in self.kinds.values() {
            t.merge(k);
        }
        t
    }

    fn kind(&self, k: Kind) -> Tally {
        self.kinds.get(&k).copied().unwrap_or_default()
    }
}

fn summarize(results: &[FileResult]) -> BTreeMap<String, SetSummary> {
    let mut sets: BTreeMap<String, SetSummary> = BTreeMap::new();
    for f in results {
        sets.entry(f.info.set.clone()).or_default().files += 1;
        for r in &f.records {
            let s = sets.entry(set_of(f, r).to_string()).or_default();
            s.kinds.entry(r.kind).or_default().add(&r.outcome);
        }
    }
    sets
}

fn file_tally(f: &FileResult) -> Tally {
    let mut t = Tally::default();
    for r in f.records.iter().filter(|r| r.set.is_none()) {
        t.add(&r.outcome);
    }
    t
}

/// A failed or unrun assertion of a declared-supported kind.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The file.
    pub path: String,
    /// Line of the directive.
    pub line: u32,
    /// Its kind.
    pub kind: Kind,
    /// What went wrong.
    pub message: String,
}

/// The result of checking the run against `spec-supported.txt`.
#[derive(Debug, Default)]
pub struct Check {
    /// Regressions.
    pub violations: Vec<Violation>,
    /// Rules that matched no file (only checked on unfiltered runs).
    pub unmatched_rules: Vec<String>,
    /// Files with at least one declared kind.
    pub supported_files: usize,
    /// Files declared fully supported (every kind) that ran at least one
    /// executable assertion, all passing.
    pub fully_supported: Vec<String>,
    /// Files declared fully supported that ran no executable assertion (only
    /// decoding, or everything excluded): an error, the declaration claims
    /// more than the run shows.
    pub vacuous: Vec<String>,
}

impl Check {
    /// Everything that fails the run.
    pub fn problems(&self) -> usize {
        self.violations.len() + self.unmatched_rules.len() + self.vacuous.len()
    }
}

/// Kinds that run something (instantiation, linking, calls), as opposed to
/// decoding and validating.
pub const EXECUTABLE: &[Kind] = &[
    Kind::Instantiate,
    Kind::ModuleInstance,
    Kind::AssertUnlinkable,
    Kind::Invoke,
    Kind::AssertReturn,
    Kind::AssertTrap,
    Kind::AssertExhaustion,
    Kind::AssertException,
    Kind::AssertSuspension,
];

/// Checks every file against the kinds declared supported for it.
///
/// Only records counted in the file's own set are checked: a post-2.0 module
/// run with `--post2` is outside what the list declares.
pub fn check_supported(results: &[FileResult], supported: &Supported, all_files: bool) -> Check {
    let mut check = Check::default();
    for f in results {
        let kinds = supported.kinds_for(&f.info.path, &f.info.set);
        if kinds.is_empty() {
            continue;
        }
        check.supported_files += 1;
        if kinds.len() == Kind::ALL.len() {
            let ran = f
                .records
                .iter()
                .filter(|r| r.set.is_none() && EXECUTABLE.contains(&r.kind))
                .any(|r| r.outcome == Outcome::Pass);
            if ran {
                check.fully_supported.push(f.info.path.clone());
            } else {
                check.vacuous.push(f.info.path.clone());
            }
        }
        for r in f.records.iter().filter(|r| r.set.is_none()) {
            let message = match &r.outcome {
                Outcome::Fail(m) if kinds.contains(&r.kind) || r.kind == Kind::Script => m.clone(),
                Outcome::NotRun(why) if kinds.contains(&r.kind) => {
                    format!("declared supported but not run: {why}")
                }
                _ => continue,
            };
            check.violations.push(Violation {
                path: f.info.path.clone(),
                line: r.line,
                kind: r.kind,
                message,
            });
        }
    }
    if all_files {
        for rule in &supported.rules {
            if !results
                .iter()
                .any(|f| rule.matches(&f.info.path, &f.info.set))
            {
                check
                    .unmatched_rules
                    .push(format!("line {}: `{}`", rule.line, rule.text));
            }
        }
    }
    check
}

/// Kinds shown in their own columns of the set table.
const COLUMNS: &[Kind] = &[Kind::Module, Kind::AssertMalformed, Kind::AssertInvalid];

/// How many failures are listed on stdout (all are in the JSON).
const MAX_LISTED: usize = 40;

/// Prints the set table (and the file table when asked), skip reasons,
/// failures and the supported-list check.
pub fn print(results: &[FileResult], check: &Check, opts: &Options, dir: &Path, elapsed: Duration) {
    let sets = summarize(results);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "spec: {} files from {} (executor: {}) in {:.1}s",
        results.len(),
        dir.display(),
        opts.executor_name,
        elapsed.as_secs_f64()
    );

    if opts.per_file {
        let _ = writeln!(
            out,
            "\n{:<48} {:<22} {:>7} {:>7} {:>7}   {:<14} {:<14} {:<14}",
            "file", "set", "passed", "failed", "skipped", "module", "malformed", "invalid"
        );
        for f in results {
            let t = file_tally(f);
            let mut kinds: BTreeMap<Kind, Tally> = BTreeMap::new();
            for r in f.records.iter().filter(|r| r.set.is_none()) {
                kinds.entry(r.kind).or_default().add(&r.outcome);
            }
            let col = |k: Kind| kinds.get(&k).copied().unwrap_or_default().triple();
            let _ = writeln!(
                out,
                "{:<48} {:<22} {:>7} {:>7} {:>7}   {:<14} {:<14} {:<14}",
                f.info.path,
                f.info.set,
                t.passed,
                t.failed,
                t.skipped(),
                col(Kind::Module),
                col(Kind::AssertMalformed),
                col(Kind::AssertInvalid),
            );
        }
    }

    let _ = writeln!(
        out,
        "\n{:<40} {:>5} {:>8} {:>7} {:>8}   {:<14} {:<14} {:<14}",
        "set (columns by kind: passed/failed/skipped)",
        "files",
        "passed",
        "failed",
        "skipped",
        "module",
        "malformed",
        "invalid"
    );
    let mut total = Tally::default();
    let mut total_kinds: BTreeMap<Kind, Tally> = BTreeMap::new();
    for (name, s) in &sets {
        let t = s.total();
        total.merge(&t);
        for (k, v) in &s.kinds {
            total_kinds.entry(*k).or_default().merge(v);
        }
        let _ = write!(
            out,
            "{:<40} {:>5} {:>8} {:>7} {:>8}  ",
            name,
            s.files,
            t.passed,
            t.failed,
            t.skipped()
        );
        for k in COLUMNS {
            let _ = write!(out, " {:<14}", s.kind(*k).triple());
        }
        out.push('\n');
    }
    let _ = write!(
        out,
        "{:<40} {:>5} {:>8} {:>7} {:>8}  ",
        "total",
        results.len(),
        total.passed,
        total.failed,
        total.skipped()
    );
    for k in COLUMNS {
        let _ = write!(
            out,
            " {:<14}",
            total_kinds.get(k).copied().unwrap_or_default().triple()
        );
    }
    out.push('\n');

    // Why things were skipped.
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut mismatches = 0;
    for f in results {
        for r in &f.records {
            if let Outcome::NotRun(w) | Outcome::Excluded(w) = &r.outcome {
                *reasons.entry(w.as_str()).or_default() += 1;
            }
            mismatches += usize::from(r.note.is_some());
        }
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let _ = writeln!(out, "\nskipped, by reason:");
    for (why, n) in reasons.iter().take(12) {
        let _ = writeln!(out, "  {n:>7}  {why}");
    }
    if reasons.len() > 12 {
        let rest: usize = reasons[12..].iter().map(|r| r.1).sum();
        let _ = writeln!(
            out,
            "  {rest:>7}  ({} other reasons; see the JSON)",
            reasons.len() - 12
        );
    }
    if mismatches > 0 {
        let _ = writeln!(
            out,
            "\n{mismatches} passing malformed/invalid assertions were rejected with a message \
             other than the spec's (listed in the JSON; not a failure)"
        );
    }

    let failures: Vec<_> = results
        .iter()
        .flat_map(|f| f.records.iter().map(move |r| (f, r)))
        .filter_map(|(f, r)| match &r.outcome {
            Outcome::Fail(m) => Some((f, r, m)),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures ({}):", failures.len());
        for (f, r, m) in failures.iter().take(MAX_LISTED) {
            let _ = writeln!(
                out,
                "  {}:{} {} [{}]: {m}",
                f.info.path,
                r.line,
                r.kind.name(),
                set_of(f, r)
            );
        }
        if failures.len() > MAX_LISTED {
            let _ = writeln!(out, "  ... and {} more", failures.len() - MAX_LISTED);
        }
    }

    let _ = writeln!(
        out,
        "\nsupported ({}): {} files declared, {} of them fully supported (every \
         assertion that is not excluded runs and passes, at least one runs something); \
         {} regressions",
        opts.supported.display(),
        check.supported_files,
        check.fully_supported.len(),
        check.problems()
    );
    for v in &check.vacuous {
        let _ = writeln!(
            out,
            "  VACUOUS {v}: declared fully supported but ran no executable assertion \
             (declare only the kinds that run)"
        );
    }
    for v in check.violations.iter().take(MAX_LISTED) {
        let _ = writeln!(
            out,
            "  REGRESSION {}:{} {}: {}",
            v.path,
            v.line,
            v.kind.name(),
            v.message
        );
    }
    if check.violations.len() > MAX_LISTED {
        let _ = writeln!(
            out,
            "  ... and {} more",
            check.violations.len() - MAX_LISTED
        );
    }
    for r in &check.unmatched_rules {
        let _ = writeln!(out, "  RULE MATCHES NO FILE: {r}");
    }
    let _ = writeln!(out, "results: {}", opts.json.display());
    print!("{out}");
}

/// Writes the results as JSON.
pub fn write_json(
    results: &[FileResult],
    check: &Check,
    opts: &Options,
    dir: &Path,
    elapsed: Duration,
) -> Result<()> {
    let sets = summarize(results);
    let sets_json: serde_json::Map<String, Value> = sets
        .iter()
        .map(|(name, s)| {
            let mut v = s.total().json();
            v["files"] = json!(s.files);
            v["kinds"] = kinds_json(&s.kinds);
            (name.clone(), v)
        })
        .collect();
    let files: Vec<Value> = results
        .iter()
        .map(|f| {
            let mut kinds: BTreeMap<Kind, Tally> = BTreeMap::new();
            let mut skips: BTreeMap<&str, usize> = BTreeMap::new();
            for r in f.records.iter().filter(|r| r.set.is_none()) {
                kinds.entry(r.kind).or_default().add(&r.outcome);
                if let Outcome::NotRun(w) | Outcome::Excluded(w) = &r.outcome {
                    *skips.entry(w).or_default() += 1;
                }
            }
            let failures: Vec<Value> = f
                .records
                .iter()
                .filter_map(|r| match &r.outcome {
                    Outcome::Fail(m) => Some(json!({
                        "line": r.line,
                        "kind": r.kind.name(),
                        "set": set_of(f, r),
                        "message": m,
                    })),
                    _ => None,
                })
                .collect();
            let notes: Vec<Value> = f
                .records
                .iter()
                .filter_map(|r| {
                    r.note
                        .as_ref()
                        .map(|n| json!({ "line": r.line, "kind": r.kind.name(), "note": n }))
                })
                .collect();
            let other_sets: BTreeMap<&str, Tally> = f
                .records
                .iter()
                .filter_map(|r| r.set.as_deref().map(|s| (s, r)))
                .fold(BTreeMap::new(), |mut m, (s, r)| {
                    m.entry(s).or_default().add(&r.outcome);
                    m
                });
            let mut v = file_tally(f).json();
            v["path"] = json!(f.info.path);
            v["set"] = json!(f.info.set);
            v["elapsed_ms"] = json!(f.elapsed.as_millis() as u64);
            v["kinds"] = kinds_json(&kinds);
            v["skip_reasons"] = json!(skips);
            v["failures"] = json!(failures);
            v["message_mismatches"] = json!(notes);
            v["other_sets"] = other_sets
                .iter()
                .map(|(s, t)| (s.to_string(), t.json()))
                .collect::<serde_json::Map<_, _>>()
                .into();
            v
        })
        .collect();
    let violations: Vec<Value> = check
        .violations
        .iter()
        .map(|v| json!({"path": v.path, "line": v.line, "kind": v.kind.name(), "message": v.message}))
        .collect();
    let doc = json!({
        "testsuite": dir.display().to_string(),
        "executor": opts.executor_name,
        "filter": opts.filter,
        "post2": opts.post2,
        "elapsed_ms": elapsed.as_millis() as u64,
        "sets": sets_json,
        "files": files,
        "supported": {
            "list": opts.supported.display().to_string(),
            "files": check.supported_files,
            "fully_supported": check.fully_supported,
            "vacuous": check.vacuous,
            "violations": violations,
            "unmatched_rules": check.unmatched_rules,
        },
    });
    if let Some(parent) = opts.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&opts.json, serde_json::to_string_pretty(&doc)? + "\n")?;
    Ok(())
}

fn kinds_json(kinds: &BTreeMap<Kind, Tally>) -> Value {
    kinds
        .iter()
        .map(|(k, t)| (k.name().to_string(), t.json()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}
