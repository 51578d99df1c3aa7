//! `weft validate` as a user runs it: the summary matches what the decoder
//! reads from the module, and a corrupt module is a one-line error with the
//! byte offset and exit code 1.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use weft_decoder::{EntityType, ExternIndex, Module};

fn weft(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("validate")
        .args(args)
        .output()
        .expect("run weft")
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A file in the temp folder, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "weft-cli-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The summary split into sections: header line -> entry lines.
struct Summary {
    first: String,
    headers: Vec<String>,
    entries: HashMap<String, Vec<String>>,
}

impl Summary {
    fn parse(stdout: &[u8]) -> Summary {
        let text = String::from_utf8(stdout.to_vec()).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap().to_string();
        let mut headers: Vec<String> = Vec::new();
        let mut entries: HashMap<String, Vec<String>> = HashMap::new();
        for l in lines {
            if let Some(entry) = l.strip_prefix("  ") {
                let h = headers.last().expect("entry before any header").clone();
                entries.entry(h).or_default().push(entry.to_string());
            } else {
                headers.push(l.to_string());
            }
        }
        Summary {
            first,
            headers,
            entries,
        }
    }

    /// The header of a section (`name (count)...`), asserting the count.
    fn section(&self, name: &str, count: usize) -> &[String] {
        let prefix = format!("{name} ({count})");
        let h = self
            .headers
            .iter()
            .find(|h| h.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` header in {:#?}", self.headers));
        let e = self.entries.get(h).map_or(&[][..], |v| &v[..]);
        assert_eq!(e.len(), count, "entries under `{h}`");
        e
    }

    fn line(&self, prefix: &str) -> &str {
        self.headers
            .iter()
            .find(|h| h.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line"))
    }
}

/// Checks the summary against the module as the decoder (an independent
/// reader) sees it: size, name, every import and export with its kind and
/// type, and the function counts.
fn check_summary(out: &Output, m: &Module, file_size: usize) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Summary::parse(&out.stdout);
    assert!(
        s.first
            .ends_with(&format!("valid module, {file_size} bytes")),
        "{}",
        s.first
    );
    if let Some(n) = &m.names.module {
        assert_eq!(s.line("name:"), format!("name: {n:?}"));
    }
    let imports = s.section("imports", m.imports.len());
    for (i, imp) in m.imports.iter().enumerate() {
        let line = &imports[i];
        assert!(
            line.starts_with(&format!("{:?} {:?}: ", imp.module, imp.name)),
            "{line}"
        );
        let kind = match imp.ty {
            EntityType::Func(t) => {
                for v in m.types[t as usize].params.iter() {
                    assert!(line.contains(&v.to_string()), "{line}");
                }
                "(func"
            }
            EntityType::Table(t) => {
                assert!(line.contains(&t.element.to_string()), "{line}");
                "(table"
            }
            EntityType::Memory(t) => {
                assert_eq!(line.contains("shared"), t.shared, "{line}");
                "(memory"
            }
            EntityType::Global(g) => {
                assert_eq!(line.contains("(mut "), g.mutable, "{line}");
                "(global"
            }
            EntityType::Tag(t) => {
                for v in m.types[t as usize].params.iter() {
                    assert!(line.contains(&v.to_string()), "{line}");
                }
                "(tag"
            }
        };
        assert!(line.contains(kind), "{line}");
    }
    let defined = m.functions.len() as u32 - m.num_imported_funcs;
    assert_eq!(
        s.line("functions:"),
        format!(
            "functions: {} imported, {defined} defined",
            m.num_imported_funcs
        )
    );
    let exports = s.section("exports", m.exports.len());
    for (i, e) in m.exports.iter().enumerate() {
        let kind = match e.index {
            ExternIndex::Func(_) => "(func",
            ExternIndex::Table(_) => "(table",
            ExternIndex::Memory(_) => "(memory",
            ExternIndex::Global(_) => "(global",
            ExternIndex::Tag(_) => "(tag",
        };
        assert!(
            exports[i].starts_with(&format!("{:?}: {kind}", e.name)),
            "{}",
            exports[i]
        );
    }
}

#[test]
fn summarises_the_fib_example() {
    let path = examples().join("fib.wat");
    let bytes = weft_decoder::parse_wat(std::fs::read(&path).unwrap()).unwrap();
    let m = Module::decode(&bytes).unwrap();
    // The example is what its comment says it is.
    for name in ["add", "fib", "memory"] {
        assert!(m.export(name).is_some(), "fib.wat exports {name}");
    }
    let size = std::fs::metadata(&path).unwrap().len() as usize;
    check_summary(&weft(&[&path]), &m, size);
}

/// Every kind of import, more tables, a shared memory, globals with each
/// kind of initialiser, a start function, all three element segment modes
/// and both data segment modes.
const EVERYTHING: &str = r#"
(module $everything
  (type $v (func))
  (type $ii (func (param i32) (result i32)))
  (import "env" "f" (func $imported (type $ii)))
  (import "env" "t" (table 1 8 funcref))
  (import "env" "m" (memory 1 16 shared))
  (import "env" "g" (global $base i32))
  (table $refs 2 externref)
  (global $counter (mut i64) (i64.const 42))
  (global $copy i32 (global.get $base))
  (global $self funcref (ref.func $start))
  (global $pi f64 (f64.const 3.25))
  (func $start (type $v))
  (func $double (export "double") (type $ii)
    (i32.mul (local.get 0) (i32.const 2)))
  (start $start)
  (elem (i32.const 0) $double $imported)
  (elem (table $refs) (i32.const 1) externref (ref.null extern))
  (elem func $start)
  (elem declare func $double)
  (data (i32.const 64) "active")
  (data "passive segment")
  (export "counter" (global $counter))
  (export "refs" (table $refs))
  (export "mem" (memory 0)))
"#;

#[test]
fn summarises_every_section_of_a_binary_module() {
    let bytes = weft_decoder::parse_wat(EVERYTHING).unwrap();
    let m = Module::decode(&bytes).unwrap();
    let file = TempFile::new("everything.wasm", &bytes);
    check_summary(&weft(&[&file.0]), &m, bytes.len());

    // --all prints the same module the same way when nothing is cut.
    let all = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["validate", "--all"])
        .arg(&file.0)
        .output()
        .unwrap();
    assert_eq!(all.stdout, weft(&[&file.0]).stdout);
}

#[test]
fn long_sections_are_cut_unless_all() {
    let mut wat = String::from("(module");
    for i in 0..100 {
        wat.push_str(&format!(" (func (export \"f{i}\"))"));
    }
    wat.push(')');
    let bytes = weft_decoder::parse_wat(&wat).unwrap();
    let file = TempFile::new("many.wasm", &bytes);
    let cut = String::from_utf8(weft(&[&file.0]).stdout).unwrap();
    assert!(cut.contains("more (--all lists them)"));
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["validate", "--all"])
        .arg(&file.0)
        .output()
        .unwrap();
    let m = Module::decode(&bytes).unwrap();
    check_summary(&out, &m, bytes.len());
}

#[test]
fn a_corrupt_module_is_a_one_line_error_with_its_offset() {
    let good = weft_decoder::parse_wat(std::fs::read(examples().join("fib.wat")).unwrap()).unwrap();
    let m = Module::decode(&good).unwrap();
    // Cut the module in the middle of its first function body, and,
    // separately, break the body's opcode.
    let body = m.bodies[0].code.clone();
    let mut broken = good.clone();
    broken[body.start] = 0xff;
    for (name, bytes) in [
        ("truncated.wasm", &good[..body.start + 1]),
        ("badop.wasm", &broken[..]),
    ] {
        let expected = Module::decode(bytes).expect_err("corrupt module decodes");
        let offset = expected.offset().expect("binary errors have an offset");
        let file = TempFile::new(name, bytes);
        let out = weft(&[&file.0]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(out.stdout.is_empty(), "{name}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains(&format!("offset 0x{offset:x}")),
            "{name}: {err}"
        );
        assert!(err.contains(expected.message()), "{name}: {err}");
        assert!(err.contains(name), "{name}: {err}");
    }
}

#[test]
fn bad_text_and_missing_files_fail() {
    let file = TempFile::new("bad.wat", b"(module (func (result i32) i64.const 0))");
    let out = weft(&[&file.0]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("type mismatch"), "{err}");

    let file = TempFile::new("unclosed.wat", b"(module (func");
    assert_eq!(weft(&[&file.0]).status.code(), Some(1));

    let missing = std::env::temp_dir().join("weft-cli-no-such-file.wasm");
    let out = weft(&[&missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot read")
    );
}
