//! The testsuite's metadata: `MANIFEST.tsv` (feature set of every file),
//! `POST2_MODULES.tsv` (modules needing a post-2.0 feature) and the known
//! cases listed in the testsuite README.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use weft_decoder::wasmparser::WasmFeatures;

/// Feature set of the files under `proposals/threads*`.
pub const THREADS_SET: &str = "threads";

/// The wasmparser flags for one proposal name as the testsuite spells it.
pub fn feature_flags(name: &str) -> Option<WasmFeatures> {
    Some(match name {
        "wasm2" => WasmFeatures::WASM2,
        "threads" => WasmFeatures::THREADS,
        "gc" => WasmFeatures::GC | WasmFeatures::FUNCTION_REFERENCES,
        "function-references" => WasmFeatures::FUNCTION_REFERENCES,
        "exceptions" => WasmFeatures::EXCEPTIONS,
        "tail-call" => WasmFeatures::TAIL_CALL,
        "memory64" => WasmFeatures::MEMORY64,
        "multi-memory" => WasmFeatures::MULTI_MEMORY,
        "extended-const" => WasmFeatures::EXTENDED_CONST,
        "relaxed-simd" => WasmFeatures::RELAXED_SIMD,
        _ => return None,
    })
}

/// Splits a feature list (`gc,exceptions` or `gc+exceptions`).
pub fn split_features(list: &str) -> Vec<String> {
    list.split([',', '+'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// One line of `POST2_MODULES.tsv`.
#[derive(Debug, Clone)]
pub struct Post2Module {
    /// The proposals the module needs.
    pub features: Vec<String>,
    /// Their wasmparser flags.
    pub flags: WasmFeatures,
}

/// Everything the harness knows about the testsuite besides the scripts.
#[derive(Debug, Default)]
pub struct Manifest {
    /// Feature set of every file, by path relative to the testsuite.
    pub sets: HashMap<String, String>,
    /// Post-2.0 modules by (path, line of the directive).
    pub post2: HashMap<(String, u32), Post2Module>,
}

impl Manifest {
    /// Reads `MANIFEST.tsv` and `POST2_MODULES.tsv` from `dir`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let mut m = Manifest::default();
        for row in read_tsv(&dir.join("MANIFEST.tsv"), &["path", "feature_set"])? {
            if row[0].starts_with("TOTAL") {
                continue;
            }
            m.sets.insert(row[0].clone(), row[1].clone());
        }
        let post2 = dir.join("POST2_MODULES.tsv");
        for row in read_tsv(
            &post2,
            &["path", "line", "directive", "expectation", "features"],
        )? {
            let line: u32 = row[1]
                .parse()
                .with_context(|| format!("{}: bad line number {:?}", post2.display(), row[1]))?;
            let features = split_features(&row[4]);
            let mut flags = WasmFeatures::empty();
            for f in &features {
                match feature_flags(f) {
                    Some(x) => flags |= x,
                    None => bail!("{}: unknown feature {f:?}", post2.display()),
                }
            }
            m.post2
                .insert((row[0].clone(), line), Post2Module { features, flags });
        }
        Ok(m)
    }

    /// The feature set a file is counted in.
    pub fn set_of(&self, path: &str) -> String {
        if path.starts_with("proposals/threads") {
            return THREADS_SET.to_string();
        }
        self.sets
            .get(path)
            .cloned()
            .unwrap_or_else(|| "unlisted".to_string())
    }
}

/// The features a file's modules are validated with (POST2 modules aside).
pub fn base_features(set: &str) -> WasmFeatures {
    if set == THREADS_SET {
        return WasmFeatures::WASM2 | WasmFeatures::THREADS;
    }
    // The set's post-2.0 features that weft implements are on; a module that
    // needs any other one is skipped ("needs ...", see `POST2_MODULES.tsv`).
    let mut flags = WasmFeatures::WASM2;
    for f in split_features(set) {
        if let Some(x) = feature_flags(&f)
            && SUPPORTED_POST2.contains(x)
        {
            flags |= x;
        }
    }
    flags
}

/// Post-2.0 features weft implements (the engine's defaults).
const SUPPORTED_POST2: WasmFeatures = WasmFeatures::MULTI_MEMORY
    .union(WasmFeatures::MEMORY64)
    .union(WasmFeatures::EXTENDED_CONST)
    .union(WasmFeatures::TAIL_CALL)
    .union(WasmFeatures::FUNCTION_REFERENCES)
    .union(WasmFeatures::RELAXED_SIMD)
    .union(WasmFeatures::EXCEPTIONS);

fn read_tsv(path: &Path, columns: &[&str]) -> Result<Vec<Vec<String>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    if !header.starts_with(columns) {
        bail!(
            "{}: expected columns {columns:?}, found {header:?}",
            path.display()
        );
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Vec<String> = line.split('\t').map(str::to_string).collect();
        if row.len() < columns.len() {
            bail!("{}:{}: too few columns", path.display(), i + 2);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Assertions of `proposals/threads/` written against Wasm 1.0 that later
/// specs contradict (testsuite README, "Caveats"): (path, line, reason).
pub const CONTRADICTIONS: &[(&str, u32, &str)] = &[
    (
        "proposals/threads/imports.wast",
        309,
        "contradicts Wasm 2.0: multiple tables are valid",
    ),
    (
        "proposals/threads/imports.wast",
        313,
        "contradicts Wasm 2.0: multiple tables are valid",
    ),
    (
        "proposals/threads/imports.wast",
        317,
        "contradicts Wasm 2.0: multiple tables are valid",
    ),
    (
        "proposals/threads/imports.wast",
        404,
        "contradicts Wasm 3.0: multiple memories are valid",
    ),
    (
        "proposals/threads/imports.wast",
        408,
        "contradicts Wasm 3.0: multiple memories are valid",
    ),
    (
        "proposals/threads/imports.wast",
        412,
        "contradicts Wasm 3.0: multiple memories are valid",
    ),
    (
        "proposals/threads/memory.wast",
        14,
        "contradicts Wasm 3.0: multiple memories are valid",
    ),
    (
        "proposals/threads/memory.wast",
        15,
        "contradicts Wasm 3.0: multiple memories are valid",
    ),
];

/// Text-form `assert_malformed` modules that the `wast` text parser accepts
/// and only validation rejects (testsuite README): "encodes but fails
/// validation" is a pass for these.
pub const TEXT_REJECTED_BY_VALIDATION: &[(&str, u32)] = &[
    ("core/start.wast", 102),
    ("core/try_table.wast", 366),
    ("core/try_table.wast", 371),
    ("proposals/threads/memory.wast", 83),
    ("proposals/threads/memory.wast", 87),
    ("proposals/threads/memory.wast", 91),
];
