//! Compiled modules.

use std::path::Path;
use std::sync::Arc;

use weft_decoder::{EntityType, ExternIndex, Features};
use weft_jit::CompiledModule;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::registry::{self, CodeInfo, Registration};
use crate::types::{
    ExportType, ExternType, FuncType, GlobalType, ImportType, MemoryType, TableType,
};

/// A compiled WebAssembly module, ready to be instantiated any number of times.
///
/// `Module` is `Send + Sync` and cheap to clone.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.inner.decoded.names.module)
            .finish_non_exhaustive()
    }
}

impl ModuleInner {
    /// A type of this module with its concrete heap types (type-section
    /// indices) replaced by the engine's canonical ids, the form the store
    /// and import matching use.
    pub(crate) fn canon_val(&self, t: weft_decoder::ValType) -> weft_decoder::ValType {
        t.map_concrete(|i| self.type_ids.get(i as usize).copied().unwrap_or(u32::MAX))
    }

    /// [`ModuleInner::canon_val`] for a global type.
    pub(crate) fn canon_global(&self, t: weft_decoder::GlobalType) -> weft_decoder::GlobalType {
        weft_decoder::GlobalType {
            ty: self.canon_val(t.ty),
            ..t
        }
    }

    /// [`ModuleInner::canon_val`] for a table type.
    pub(crate) fn canon_table(&self, t: weft_decoder::TableType) -> weft_decoder::TableType {
        weft_decoder::TableType {
            element: self.canon_val(t.element),
            ..t
        }
    }
}

/// The most function types one of a module's types may expand to in the
/// API's structural [`FuncType`] (a `(ref $t)` parameter embeds all of
/// `$t`), and all of a module's types together. Types that name an earlier
/// type twice each double in size, so a few hundred bytes of type section
/// would otherwise expand to terabytes (and nest deep enough to overflow
/// the stack); real modules stay far below these limits.
const MAX_TYPE_EXPANSION: u64 = 1_000;
const MAX_MODULE_TYPE_EXPANSION: u64 = 2_000_000;

/// Refuses a module whose types expand beyond the limits above, computed
/// in one pass (each type's size from the sizes of the earlier types it
/// names: validation admits only those).
fn check_type_expansion(types: &[weft_decoder::FuncType]) -> Result<()> {
    let mut sizes: Vec<u64> = Vec::with_capacity(types.len());
    let mut total = 0u64;
    for (k, t) in types.iter().enumerate() {
        let mut size = 1u64;
        for v in t.params.iter().chain(t.results.iter()) {
            if let weft_decoder::ValType::Ref(weft_decoder::RefType {
                heap: weft_decoder::HeapType::Concrete(i),
                ..
            }) = v
            {
                let named = sizes.get(*i as usize).copied().unwrap_or(u64::MAX);
                size = size.saturating_add(named);
            }
        }
        total = total.saturating_add(size);
        if size > MAX_TYPE_EXPANSION || total > MAX_MODULE_TYPE_EXPANSION {
            return Err(Error::Unsupported(format!(
                "type {k}: its typed references expand to more than weft's limit of \
                 {MAX_TYPE_EXPANSION} function types per type ({MAX_MODULE_TYPE_EXPANSION} \
                 per module)"
            )));
        }
        sizes.push(size);
    }
    Ok(())
}

pub(crate) struct ModuleInner {
    pub(crate) engine: Engine,
    pub(crate) decoded: Arc<weft_decoder::Module>,
    pub(crate) compiled: Arc<CompiledModule>,
    /// Canonical engine type id of every type in the type section.
    pub(crate) type_ids: Vec<u32>,
    /// Every type of the type section, in the public form functions carry.
    pub(crate) func_types: Vec<Arc<FuncType>>,
    /// The DWARF line table, read on first use (see `source_location`).
    debug_lines: std::sync::OnceLock<crate::dwarf::Lines>,
    /// Copy-on-write images of the defined memories' initial data, built
    /// on first instantiation (see `images`).
    images: std::sync::OnceLock<Option<Vec<Option<weft_memory::MemoryImage>>>>,
    _registration: Registration,
}

impl ModuleInner {
    /// One image per defined memory (`None` for a memory no segment
    /// writes), or `None` when instantiation must copy the segments one by
    /// one: images disabled (`Config::memory_init_cow`), or some active
    /// segment has a computed offset, targets an imported or shared memory,
    /// or does not fit the memory's initial size (it must then trap at its
    /// turn, after the segments before it were written). With images every
    /// active segment is known to fit, so none can trap and writing them
    /// all at once is indistinguishable from writing them in order.
    pub(crate) fn images(&self) -> Option<&[Option<weft_memory::MemoryImage>]> {
        self.images
            .get_or_init(|| {
                if !self.engine.inner.config.memory_init_cow {
                    return None;
                }
                build_images(&self.decoded)
            })
            .as_deref()
    }
}

fn build_images(m: &weft_decoder::Module) -> Option<Vec<Option<weft_memory::MemoryImage>>> {
    use weft_decoder::{ConstOp, SegmentMode};
    let imported = m.num_imported_memories as usize;
    let mut per_memory: Vec<Vec<(usize, &[u8])>> = vec![Vec::new(); m.memories.len() - imported];
    for (i, seg) in m.data.iter().enumerate() {
        let SegmentMode::Active { index, offset } = &seg.mode else {
            continue;
        };
        let index = *index as usize;
        let defined = index.checked_sub(imported)?;
        let ty = &m.memories[index];
        if ty.shared || ty.memory64 {
            return None;
        }
        let [ConstOp::I32Const(off)] = offset.ops[..] else {
            return None;
        };
        let start = off as u32 as u64;
        let bytes = m.data_bytes(i as u32);
        let initial = ty.limits.min.checked_mul(1u64 << ty.page_size_log2)?;
        if start.checked_add(bytes.len() as u64)? > initial {
            return None;
        }
        per_memory[defined].push((usize::try_from(start).ok()?, bytes));
    }
    per_memory
        .into_iter()
        .map(|segs| weft_memory::MemoryImage::new(segs).ok())
        .collect()
}

struct ModuleCode {
    compiled: Arc<CompiledModule>,
    decoded: Arc<weft_decoder::Module>,
    /// The module (weak: the module owns this registration).
    module: std::sync::Weak<ModuleInner>,
}

/// Below this much stack left on the caller's thread, compilation moves to
/// a helper thread with [`COMPILE_STACK`].
const COMPILE_MIN_STACK: usize = 1 << 20;
/// The stack of that helper thread.
const COMPILE_STACK: usize = 8 << 20;

/// Whether `bytes` could be meant as WebAssembly text: after white space and
/// comments, a `(`.
fn looks_like_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut rest = text.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix(";;") {
            rest = r
                .split_once('\n')
                .map_or("", |(_, after)| after)
                .trim_start();
        } else if let Some(r) = rest.strip_prefix("(;") {
            rest = r
                .split_once(";)")
                .map_or("", |(_, after)| after)
                .trim_start();
        } else {
            return rest.starts_with('(');
        }
    }
}

impl CodeInfo for ModuleCode {
    fn lookup_trap(&self, pc: usize) -> Option<weft_jit::TrapKind> {
        self.compiled.lookup_trap(pc)
    }
    fn frame(&self, pc: usize) -> Option<crate::error::FrameInfo> {
        let f = self.compiled.func_at(pc)?;
        Some(crate::error::FrameInfo {
            func_index: f,
            func_name: self.decoded.func_name(f).map(str::to_string),
            module_offset: self.compiled.wasm_offset(pc),
            module: self.module.upgrade().map(|inner| Module { inner }),
        })
    }
    fn func_name(&self, pc: usize) -> Option<String> {
        let f = self.compiled.func_at(pc)?;
        Some(match self.decoded.func_name(f) {
            Some(n) => format!("{n} (func[{f}])"),
            None => format!("func[{f}]"),
        })
    }
}

/// Where an import or export lives, with its type.
impl Module {
    /// Compiles a module from binary WebAssembly or WebAssembly text.
    ///
    /// ```
    /// use weft_runtime::{Engine, Error, Module};
    /// let engine = Engine::default();
    /// let module = Module::new(&engine, "(module (func (export \"f\")))")?;
    /// assert_eq!(module.exports().count(), 1);
    /// assert!(matches!(Module::new(&engine, b"\0asm\x02\0\0\0"), Err(Error::Invalid { .. })));
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// Malformed or invalid input gives [`Error::Invalid`] (text that does
    /// not parse: [`Error::Wat`]); valid modules using something weft does
    /// not support give [`Error::Unsupported`].
    pub fn new(engine: &Engine, bytes: impl AsRef<[u8]>) -> Result<Module> {
        Self::new_named(engine, bytes.as_ref(), "<wat>")
    }

    /// As [`Module::new`]; `name` (a file name) appears in text errors.
    fn new_named(engine: &Engine, bytes: &[u8], name: &str) -> Result<Module> {
        if bytes.starts_with(b"\0asm") {
            return Self::from_binary(engine, bytes);
        }
        match weft_decoder::parse_wat_named(bytes, name) {
            Ok(binary) => Self::from_binary(engine, &binary),
            Err(_) if !looks_like_text(bytes) => Err(Error::Invalid {
                message: format!(
                    "{name} is not a WebAssembly module: it has no `\\0asm` header, and it is \
                     not WebAssembly text (`.wat`, which starts with `(module`)"
                ),
                offset: None,
            }),
            Err(e) => Err(Error::from_decode(e)),
        }
    }

    /// Decodes and validates a binary module with the engine's features,
    /// without compiling it.
    ///
    /// ```
    /// use weft_runtime::{Engine, Module};
    /// let engine = Engine::default();
    /// assert!(Module::validate(&engine, b"\0asm\x01\0\0\0").is_ok());
    /// assert!(Module::validate(&engine, b"not wasm").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Module::new`].
    pub fn validate(engine: &Engine, bytes: &[u8]) -> Result<()> {
        weft_decoder::Module::decode_with(bytes, Features(engine.inner.config.features))
            .map(drop)
            .map_err(Error::from_decode)
    }

    /// Compiles a module from binary WebAssembly only.
    ///
    /// # Errors
    /// As for [`Module::new`]; a WebAssembly *component* (the component
    /// model's binary format) is [`Error::Unsupported`].
    pub fn from_binary(engine: &Engine, bytes: &[u8]) -> Result<Module> {
        if bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0] {
            return Err(Error::Unsupported(
                "this is a WebAssembly component; weft runs core WebAssembly modules only \
                 (components are not supported)"
                    .into(),
            ));
        }
        let decoded = Arc::new(
            weft_decoder::Module::decode_with(bytes, Features(engine.inner.config.features))
                .map_err(Error::from_decode)?,
        );
        if let Some(dir) = &engine.inner.config.cache_dir
            && let Some(m) = crate::cache::lookup(engine, dir, &decoded)
        {
            return Ok(m);
        }
        let started = std::time::Instant::now();
        let threads = if engine.inner.config.parallel_compilation {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        };
        let compile = || {
            engine
                .inner
                .compiler
                .compile_with_threads(&decoded, threads)
        };
        // Cranelift needs stack: on a thread with little left (a small
        // worker thread, deep host code) compile on a helper thread with
        // enough, rather than overflow the caller's stack.
        let compiled = if crate::stack::remaining().is_some_and(|r| r < COMPILE_MIN_STACK) {
            std::thread::scope(|s| {
                std::thread::Builder::new()
                    .name("weft-compile".into())
                    .stack_size(COMPILE_STACK)
                    .spawn_scoped(s, compile)
                    .map_err(|e| Error::Resource(format!("cannot start a compile thread: {e}")))?
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
                    .map_err(Error::from_compile)
            })?
        } else {
            compile().map_err(Error::from_compile)?
        };
        let compiled = Arc::new(compiled);
        tracing::debug!(
            bytes = bytes.len(),
            functions = decoded.bodies.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "compiled module"
        );
        let module = Self::assemble(engine, decoded, compiled)?;
        if let Some(dir) = &engine.inner.config.cache_dir {
            crate::cache::store(dir, &module);
        }
        Ok(module)
    }

    /// A module from its decoded form and its code.
    pub(crate) fn assemble(
        engine: &Engine,
        decoded: Arc<weft_decoder::Module>,
        compiled: Arc<CompiledModule>,
    ) -> Result<Module> {
        if let Some(pool) = &engine.inner.pool {
            pool.check_module(&decoded, compiled.offsets().vmctx_size() as usize)?;
        }
        check_type_expansion(&decoded.types)?;
        let type_ids: Vec<u32> = engine.module_type_ids(&decoded.types);
        let func_types = type_ids
            .iter()
            .map(|&id| {
                let t = engine.canonical_type(id).unwrap_or_default();
                Arc::new(FuncType::from_wasm(&t, engine))
            })
            .collect();
        let (start, end) = compiled.code_range();
        let inner = Arc::new_cyclic(|weak| {
            let registration = registry::register(
                start,
                end,
                Arc::new(ModuleCode {
                    compiled: compiled.clone(),
                    decoded: decoded.clone(),
                    module: weak.clone(),
                }),
            );
            ModuleInner {
                engine: engine.clone(),
                decoded,
                compiled,
                type_ids,
                func_types,
                debug_lines: std::sync::OnceLock::new(),
                images: std::sync::OnceLock::new(),
                _registration: registration,
            }
        });
        Ok(Module { inner })
    }

    /// The module compiled to bytes that [`Module::deserialize`] loads
    /// without compiling: a header binding weft's version, the engine's
    /// code-generation settings (target, CPU features, tunables, wasm
    /// features), the module's own bytes, and its machine code.
    ///
    /// ```
    /// use weft_runtime::{Engine, Module};
    /// let engine = Engine::default();
    /// let module = Module::new(&engine, "(module (func (export \"f\") (result i32) i32.const 7))")?;
    /// let bytes = module.serialize()?;
    /// // SAFETY: bytes this process just produced with this engine.
    /// let again = unsafe { Module::deserialize(&engine, &bytes)? };
    /// assert_eq!(again.exports().len(), 1);
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the code cannot be written (an internal limitation).
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let code = self
            .inner
            .compiled
            .serialize()
            .map_err(Error::from_compile)?;
        Ok(crate::cache::encode(
            &self.inner.engine,
            &self.inner.decoded.bytes,
            &code,
        ))
    }

    /// Loads a module written by [`Module::serialize`] (a `.cwasm` file)
    /// without compiling it.
    ///
    /// # Safety
    /// The machine code in `bytes` is run as it is: load only bytes that
    /// weft produced (`serialize`, `weft compile`) and that nobody could
    /// have changed since. Bytes for another weft version or engine
    /// configuration, and malformed bytes, are refused with an error; a
    /// well-formed file from an untrusted source is not detected.
    ///
    /// # Errors
    /// Not precompiled weft code, made by another weft version or for
    /// another engine configuration (the message says which), or malformed.
    pub unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Module> {
        let (wasm, code) = crate::cache::decode(engine, bytes)?;
        let decoded = Arc::new(
            weft_decoder::Module::decode_with(wasm, Features(engine.inner.config.features))
                .map_err(Error::from_decode)?,
        );
        // SAFETY: forwarded from the caller; `decode` checked that the code
        // was made for this module (its bytes are in the file) by a
        // compiler with this engine's fingerprint.
        let compiled = unsafe { engine.inner.compiler.deserialize(&decoded, code) }
            .map_err(Error::from_compile)?;
        Self::assemble(engine, decoded, Arc::new(compiled))
    }

    /// [`Module::deserialize`] of a file's contents.
    ///
    /// # Safety
    /// As for [`Module::deserialize`].
    ///
    /// # Errors
    /// As for [`Module::deserialize`], and if the file cannot be read.
    pub unsafe fn deserialize_file(engine: &Engine, path: impl AsRef<Path>) -> Result<Module> {
        let bytes = std::fs::read(path)?;
        // SAFETY: forwarded from the caller.
        unsafe { Self::deserialize(engine, &bytes) }
    }

    /// Whether `bytes` look like a precompiled module (`.cwasm`) rather than
    /// WebAssembly.
    pub fn is_precompiled(bytes: &[u8]) -> bool {
        bytes.starts_with(crate::cache::MAGIC)
    }

    /// Reads and compiles a `.wasm` or `.wat` file.
    pub fn from_file(engine: &Engine, path: impl AsRef<Path>) -> Result<Module> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)?;
        Self::new_named(engine, &bytes, &path.display().to_string())
    }

    /// The engine this module belongs to.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The module's name from its name section.
    pub fn name(&self) -> Option<&str> {
        self.inner.decoded.names.module.as_deref()
    }

    /// The imports, in order.
    ///
    /// ```
    /// use weft_runtime::{Engine, ExternType, Module};
    /// let engine = Engine::default();
    /// let m = Module::new(&engine, r#"(module (import "env" "log" (func (param i32))))"#)?;
    /// let imp = m.imports().next().unwrap();
    /// assert_eq!((imp.module(), imp.name()), ("env", "log"));
    /// assert!(matches!(imp.ty(), ExternType::Func(f) if f.params().len() == 1));
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    pub fn imports(&self) -> impl ExactSizeIterator<Item = ImportType<'_>> + '_ {
        let m = &self.inner.decoded;
        let inner = &self.inner;
        let engine = &self.inner.engine;
        m.imports.iter().map(move |i| ImportType {
            module: i.module.as_str(),
            name: i.name.as_str(),
            ty: match i.ty {
                EntityType::Func(t) => ExternType::Func((*inner.func_types[t as usize]).clone()),
                EntityType::Table(t) => {
                    ExternType::Table(TableType::from_wasm(&inner.canon_table(t), engine))
                }
                EntityType::Memory(t) => ExternType::Memory(MemoryType::from_wasm(&t)),
                EntityType::Global(t) => {
                    ExternType::Global(GlobalType::from_wasm(&inner.canon_global(t), engine))
                }
                EntityType::Tag(t) => ExternType::Tag(crate::TagType::from_func_type(
                    (*inner.func_types[t as usize]).clone(),
                )),
            },
        })
    }

    /// The exports, in order.
    pub fn exports(&self) -> impl ExactSizeIterator<Item = ExportType<'_>> + '_ {
        let m = &self.inner.decoded;
        let inner = &self.inner;
        let engine = &self.inner.engine;
        m.exports.iter().map(move |e| ExportType {
            name: e.name.as_str(),
            ty: match e.index {
                ExternIndex::Func(i) => {
                    ExternType::Func((*inner.func_types[m.functions[i as usize] as usize]).clone())
                }
                ExternIndex::Table(i) => ExternType::Table(TableType::from_wasm(
                    &inner.canon_table(m.tables[i as usize]),
                    engine,
                )),
                ExternIndex::Memory(i) => {
                    ExternType::Memory(MemoryType::from_wasm(&m.memories[i as usize]))
                }
                ExternIndex::Global(i) => ExternType::Global(GlobalType::from_wasm(
                    &inner.canon_global(m.globals[i as usize]),
                    engine,
                )),
                ExternIndex::Tag(i) => ExternType::Tag(crate::TagType::from_func_type(
                    (*inner.func_types[m.tags[i as usize] as usize]).clone(),
                )),
            },
        })
    }

    /// The contents of every custom section called `name`, in order.
    ///
    /// ```
    /// use weft_runtime::{Engine, Module};
    /// let engine = Engine::default();
    /// // A module with one custom section "hi" holding "there".
    /// let bytes = b"\0asm\x01\0\0\0\x00\x08\x02hithere";
    /// let m = Module::from_binary(&engine, bytes)?;
    /// assert_eq!(m.custom_sections("hi").collect::<Vec<_>>(), [b"there"]);
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    pub fn custom_sections<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let m = &self.inner.decoded;
        m.custom_sections
            .iter()
            .filter(move |(n, _)| n == name)
            .filter_map(move |(_, r)| m.bytes.get(r.clone()))
    }

    /// The source file and line of the code at `module_offset` (a byte
    /// offset in the module, as [`FrameInfo::module_offset`](crate::FrameInfo::module_offset)
    /// gives), from the module's DWARF debug information (`.debug_line`),
    /// if it has any. The table is read once, on first use.
    pub fn source_location(&self, module_offset: u32) -> Option<(String, u32)> {
        let lines = self
            .inner
            .debug_lines
            .get_or_init(|| crate::dwarf::Lines::read(&self.inner.decoded));
        lines.lookup(module_offset)
    }

    /// How many functions the module defines (not counting imports).
    pub fn defined_functions(&self) -> usize {
        self.inner.decoded.bodies.len()
    }

    pub(crate) fn check_engine(&self, engine: &Engine) -> Result<()> {
        if Engine::same(&self.inner.engine, engine) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "module and store belong to different engines".into(),
            ))
        }
    }
}
