//! `weft validate`: decode, validate and describe a module through the
//! public `weft` API.

use std::fmt::Write as _;
use std::path::Path;

use weft::{Engine, Error, Module};

/// Entries listed per section unless `--all` is given.
const LIMIT: usize = 48;

/// Reads, decodes and validates `file`; returns the summary. Errors are the
/// `weft` crate's (one line: not a module, a component, text that does not
/// parse with its line and column, an invalid module with its offset).
pub fn validate(file: &Path, all: bool) -> anyhow::Result<String> {
    let engine = Engine::default();
    let size = std::fs::metadata(file)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the file: {e}", file.display()))?
        .len();
    match Module::from_file(&engine, file) {
        Ok(m) => Ok(summarize(file, size, &m, all)),
        // Valid, but weft cannot compile it (yet): still valid.
        Err(Error::Unsupported(why)) => Ok(format!(
            "{}: valid module, {size} bytes (weft cannot run it yet: {why})\n",
            file.display()
        )),
        Err(e) => Err(anyhow::anyhow!(
            "{}",
            crate::output::about(file, &e.to_string())
        )),
    }
}

/// One line per section header, one indented line per entry.
fn summarize(file: &Path, size: u64, m: &Module, all: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}: valid module, {size} bytes", file.display());
    if let Some(name) = m.name() {
        let _ = writeln!(o, "name: {name:?}");
    }
    let imports: Vec<_> = m.imports().collect();
    let imported_funcs = imports
        .iter()
        .filter(|i| matches!(i.ty(), weft::ExternType::Func(_)))
        .count();
    section(&mut o, "imports", imports.len(), all, |o, i| {
        let imp = &imports[i];
        let _ = write!(o, "{:?} {:?}: {}", imp.module(), imp.name(), imp.ty());
    });
    let _ = writeln!(
        o,
        "functions: {imported_funcs} imported, {} defined",
        m.defined_functions()
    );
    let exports: Vec<_> = m.exports().collect();
    section(&mut o, "exports", exports.len(), all, |o, i| {
        let e = &exports[i];
        let _ = write!(o, "{:?}: {}", e.name(), e.ty());
    });
    o
}

/// A section header and up to [`LIMIT`] entries (all with `all`).
fn section(
    o: &mut String,
    name: &str,
    n: usize,
    all: bool,
    mut entry: impl FnMut(&mut String, usize),
) {
    let _ = writeln!(o, "{name} ({n})");
    let shown = if all { n } else { n.min(LIMIT) };
    for i in 0..shown {
        o.push_str("  ");
        entry(o, i);
        o.push('\n');
    }
    if shown < n {
        let _ = writeln!(o, "  ... {} more (--all lists them)", n - shown);
    }
}
