//! The public surface of `weft` names only weft's own types: nothing from
//! wasmparser, the decoder, the JIT or Cranelift, and no runtime internals.
//!
//! Two checks: every type `weft` exports is defined in `weft-runtime` (or in
//! `weft-memory`, which is usable on its own), by its `type_name`; and no
//! public signature in `weft-runtime`'s sources mentions a forbidden crate.

use std::any::type_name;
use std::path::Path;

fn defined_in_weft<T: ?Sized>() -> Result<(), String> {
    let name = type_name::<T>();
    let ok = ["weft_runtime::", "weft_memory::", "weft::"]
        .iter()
        .any(|p| name.starts_with(p));
    if ok { Ok(()) } else { Err(name.to_string()) }
}

#[test]
fn every_exported_type_is_weft_s_own() {
    let results = [
        defined_in_weft::<weft::Config>(),
        defined_in_weft::<weft::Engine>(),
        defined_in_weft::<weft::Error>(),
        defined_in_weft::<weft::ExportType<'static>>(),
        defined_in_weft::<weft::Extern>(),
        defined_in_weft::<weft::ExternRef>(),
        defined_in_weft::<weft::ExternType>(),
        defined_in_weft::<weft::FrameInfo>(),
        defined_in_weft::<weft::Func>(),
        defined_in_weft::<weft::FuncType>(),
        defined_in_weft::<weft::Global>(),
        defined_in_weft::<weft::GlobalType>(),
        defined_in_weft::<weft::ImportType<'static>>(),
        defined_in_weft::<weft::Instance>(),
        defined_in_weft::<weft::InstancePre<()>>(),
        defined_in_weft::<weft::InterruptHandle>(),
        defined_in_weft::<weft::Linker<()>>(),
        defined_in_weft::<weft::Memory>(),
        defined_in_weft::<weft::MemoryType>(),
        defined_in_weft::<weft::Module>(),
        defined_in_weft::<weft::OptLevel>(),
        defined_in_weft::<weft::RmwOp>(),
        defined_in_weft::<weft::SharedMemory>(),
        defined_in_weft::<weft::Store<()>>(),
        defined_in_weft::<weft::StoreContext<'static, ()>>(),
        defined_in_weft::<weft::StoreContextMut<'static, ()>>(),
        defined_in_weft::<weft::Table>(),
        defined_in_weft::<weft::TableType>(),
        defined_in_weft::<weft::RefType>(),
        defined_in_weft::<weft::HeapType>(),
        defined_in_weft::<weft::Trap>(),
        defined_in_weft::<weft::TrapKind>(),
        defined_in_weft::<weft::TypedFunc<(), ()>>(),
        defined_in_weft::<weft::UpdateDeadline>(),
        defined_in_weft::<weft::V128>(),
        defined_in_weft::<weft::Val>(),
        defined_in_weft::<weft::ValType>(),
        defined_in_weft::<weft::WaitOutcome>(),
    ];
    let foreign: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(foreign.is_empty(), "foreign types exported: {foreign:?}");
}

/// Crates whose types must not appear in a public signature.
const FORBIDDEN: &[&str] = &[
    "weft_decoder",
    "weft_jit",
    "wasmparser",
    "cranelift_codegen",
    "cranelift_jit",
    "cranelift_module",
    "cranelift_frontend",
    // The runtime's aliases for the decoder's types.
    "WasmGlobalType",
    "WasmTableType",
    "WasmMemoryType",
];

/// Every public item's signature in `src` (from `pub` to its `{` or `;`).
fn public_signatures(src: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        if current.is_none() && t.starts_with("pub ") && !t.starts_with("pub(") {
            current = Some((i + 1, String::new()));
        }
        if let Some((_, sig)) = current.as_mut() {
            sig.push_str(t);
            sig.push(' ');
            let is_field = ![
                "pub fn ",
                "pub struct ",
                "pub enum ",
                "pub trait ",
                "pub type ",
            ]
            .iter()
            .any(|k| sig.starts_with(k));
            if t.contains('{') || t.ends_with(';') || (is_field && t.ends_with(',')) {
                out.push(current.take().expect("just checked"));
            }
        }
    }
    out
}

#[test]
fn no_public_signature_of_the_runtime_names_an_internal_crate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src");
    let mut bad = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let src = std::fs::read_to_string(&path).unwrap();
        for (line, sig) in public_signatures(&src) {
            if sig.starts_with("pub mod ") {
                bad.push(format!("{}:{line}: public module: {sig}", path.display()));
            }
            // `#[doc(hidden)]` sealed helpers and test code are not API.
            if let Some(f) = FORBIDDEN.iter().find(|f| sig.contains(*f)) {
                bad.push(format!("{}:{line}: mentions {f}: {sig}", path.display()));
            }
        }
    }
    assert!(
        files > 10,
        "found only {files} runtime source files in {}",
        dir.display()
    );
    assert!(
        bad.is_empty(),
        "internal types in the public API:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_signature_scanner_finds_what_it_should() {
    let sigs = public_signatures(
        "pub fn a(x: weft_jit::X) -> u8 {\n\
         pub(crate) fn b(x: weft_jit::Y) {}\n\
         pub fn c(\n    x: u8,\n) -> wasmparser::Z;\n",
    );
    assert_eq!(sigs.len(), 2);
    assert!(sigs[0].1.contains("weft_jit::X"));
    assert!(sigs[1].1.contains("wasmparser::Z"), "{:?}", sigs[1]);
}
