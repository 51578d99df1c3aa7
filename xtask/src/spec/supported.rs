//! `xtask/spec-supported.txt`: which assertions weft declares supported.
//!
//! One rule per line, `<selector> <kind>...`; `#` starts a comment.
//!
//! - selector: a path relative to the testsuite (`core/i32.wast`), a pattern
//!   where `*` matches any run of characters (`core/simd_*.wast`), or
//!   `set:<feature_set>` (`set:wasm2`) for every file of a feature set.
//! - kind: a directive kind as the harness counts it (`module`,
//!   `assert_invalid`, `assert_return`, ...; see [`Kind`]) or `all`.
//!
//! Rules add up: a file's declared kinds are the union of the kinds of every
//! rule that matches it. In a declared kind, an assertion that fails, or that
//! is not run for any reason other than an exclusion (a post-2.0 feature, a
//! test contradicting the current spec), is a regression and fails the run.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::Kind;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Set(String),
    Pattern(String),
}

/// One line of the list.
#[derive(Debug, Clone)]
pub struct Rule {
    selector: Selector,
    kinds: BTreeSet<Kind>,
    /// Line in the file (1-based), for messages.
    pub line: usize,
    /// The rule as written.
    pub text: String,
}

impl Rule {
    /// Whether the rule applies to a file.
    pub fn matches(&self, path: &str, set: &str) -> bool {
        match &self.selector {
            Selector::Set(s) => s == set,
            Selector::Pattern(p) => wildcard_match(p, path),
        }
    }
}

/// The parsed list.
#[derive(Debug, Clone, Default)]
pub struct Supported {
    /// The rules in file order.
    pub rules: Vec<Rule>,
}

impl Supported {
    /// Reads the list; a missing file declares nothing.
    pub fn load(path: &Path) -> Result<Supported> {
        match std::fs::read_to_string(path) {
            Ok(text) => Supported::parse(&text).with_context(|| format!("in {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Supported::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Parses the list's text.
    pub fn parse(text: &str) -> Result<Supported> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let sel = words.next().unwrap_or_default();
            let selector = match sel.strip_prefix("set:") {
                Some(s) if !s.is_empty() => Selector::Set(s.to_string()),
                Some(_) => bail!("line {}: empty feature set in {sel:?}", i + 1),
                None => Selector::Pattern(sel.to_string()),
            };
            let mut kinds = BTreeSet::new();
            for w in words {
                if w == "all" {
                    kinds.extend(Kind::ALL.iter().copied());
                } else {
                    match Kind::from_name(w) {
                        Some(k) => {
                            kinds.insert(k);
                        }
                        None => bail!(
                            "line {}: unknown kind {w:?} (expected `all` or one of: {})",
                            i + 1,
                            Kind::ALL
                                .iter()
                                .map(|k| k.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                }
            }
            if kinds.is_empty() {
                bail!("line {}: {sel:?} declares no kinds", i + 1);
            }
            rules.push(Rule {
                selector,
                kinds,
                line: i + 1,
                text: line.to_string(),
            });
        }
        Ok(Supported { rules })
    }

    /// The kinds declared supported for a file.
    pub fn kinds_for(&self, path: &str, set: &str) -> BTreeSet<Kind> {
        let mut out = BTreeSet::new();
        for r in &self.rules {
            if r.matches(path, set) {
                out.extend(r.kinds.iter().copied());
            }
        }
        out
    }
}

/// `*` matches any run of characters (including `/`); everything else matches
/// itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("core/i32.wast", "core/i32.wast"));
        assert!(!wildcard_match("core/i32.wast", "core/i64.wast"));
        assert!(wildcard_match("core/simd_*.wast", "core/simd_load.wast"));
        assert!(!wildcard_match("core/simd_*.wast", "core/simd.wast"));
        assert!(wildcard_match("*", "anything/at/all"));
        assert!(wildcard_match("core/*_*.wast", "core/a_b.wast"));
        assert!(!wildcard_match("a*a", "a"));
        assert!(wildcard_match("a*a", "aa"));
    }

    #[test]
    fn rules_add_up() {
        let s = Supported::parse(
            "# comment\n\
             set:wasm2 module assert_invalid  # trailing\n\
             core/i32.wast all\n\
             core/simd_*.wast assert_malformed\n",
        )
        .unwrap();
        let k = s.kinds_for("core/simd_x.wast", "wasm2");
        assert_eq!(
            k,
            BTreeSet::from([Kind::Module, Kind::AssertInvalid, Kind::AssertMalformed])
        );
        assert_eq!(s.kinds_for("core/i32.wast", "wasm2").len(), Kind::ALL.len());
        assert!(s.kinds_for("core/gc.wast", "gc").is_empty());
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(Supported::parse("core/i32.wast\n").is_err());
        assert!(Supported::parse("core/i32.wast assert_nothing\n").is_err());
        assert!(Supported::parse("set: module\n").is_err());
    }
}
