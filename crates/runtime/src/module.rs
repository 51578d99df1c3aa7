//! Compiled modules.

use std::path::Path;
use std::sync::Arc;

use weft_decoder::{EntityType, ExternIndex, Features, FuncType};
use weft_jit::CompiledModule;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::registry::{self, CodeInfo, Registration};

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

pub(crate) struct ModuleInner {
    pub(crate) engine: Engine,
    pub(crate) decoded: Arc<weft_decoder::Module>,
    pub(crate) compiled: Arc<CompiledModule>,
    /// Canonical engine type id of every type in the type section.
    pub(crate) type_ids: Vec<u32>,
    _registration: Registration,
}

struct ModuleCode {
    compiled: Arc<CompiledModule>,
    decoded: Arc<weft_decoder::Module>,
}

impl CodeInfo for ModuleCode {
    fn lookup_trap(&self, pc: usize) -> Option<weft_jit::TrapKind> {
        self.compiled.lookup_trap(pc)
    }
    fn func_at(&self, pc: usize) -> Option<u32> {
        self.compiled.func_at(pc)
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
#[derive(Debug, Clone, PartialEq)]
pub enum ExternType {
    /// A function of this type.
    Func(FuncType),
    /// A table.
    Table(weft_decoder::TableType),
    /// A memory.
    Memory(weft_decoder::MemoryType),
    /// A global.
    Global(weft_decoder::GlobalType),
}

impl Module {
    /// Compiles a module from binary WebAssembly or WebAssembly text.
    ///
    /// # Errors
    /// Malformed or invalid input gives [`Error::Decode`]; unsupported
    /// instructions give [`Error::Compile`].
    pub fn new(engine: &Engine, bytes: impl AsRef<[u8]>) -> Result<Module> {
        let bytes = bytes.as_ref();
        if bytes.starts_with(b"\0asm") {
            Self::from_binary(engine, bytes)
        } else {
            let binary = weft_decoder::parse_wat(bytes)?;
            Self::from_binary(engine, &binary)
        }
    }

    /// Compiles a module from binary WebAssembly only.
    pub fn from_binary(engine: &Engine, bytes: &[u8]) -> Result<Module> {
        let decoded = Arc::new(weft_decoder::Module::decode_with(
            bytes,
            Features(engine.inner.config.features),
        )?);
        let started = std::time::Instant::now();
        let compiled = Arc::new(engine.inner.compiler.compile(&decoded)?);
        tracing::debug!(
            bytes = bytes.len(),
            functions = decoded.bodies.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "compiled module"
        );
        let type_ids = decoded.types.iter().map(|t| engine.type_id(t)).collect();
        let (start, end) = compiled.code_range();
        let registration = registry::register(
            start,
            end,
            Arc::new(ModuleCode {
                compiled: compiled.clone(),
                decoded: decoded.clone(),
            }),
        );
        Ok(Module {
            inner: Arc::new(ModuleInner {
                engine: engine.clone(),
                decoded,
                compiled,
                type_ids,
                _registration: registration,
            }),
        })
    }

    /// Reads and compiles a `.wasm` or `.wat` file.
    pub fn from_file(engine: &Engine, path: impl AsRef<Path>) -> Result<Module> {
        let bytes = std::fs::read(path.as_ref())?;
        Self::new(engine, bytes)
    }

    /// The engine this module belongs to.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The module's name from its name section.
    pub fn name(&self) -> Option<&str> {
        self.inner.decoded.names.module.as_deref()
    }

    /// The decoded module description.
    pub fn decoded(&self) -> &weft_decoder::Module {
        &self.inner.decoded
    }

    /// The imports: module name, field name and type.
    pub fn imports(&self) -> impl Iterator<Item = (&str, &str, ExternType)> + '_ {
        let m = &self.inner.decoded;
        m.imports.iter().map(move |i| {
            let ty = match i.ty {
                EntityType::Func(t) => ExternType::Func(m.types[t as usize].clone()),
                EntityType::Table(t) => ExternType::Table(t),
                EntityType::Memory(t) => ExternType::Memory(t),
                EntityType::Global(t) => ExternType::Global(t),
            };
            (i.module.as_str(), i.name.as_str(), ty)
        })
    }

    /// The exports: name and type.
    pub fn exports(&self) -> impl Iterator<Item = (&str, ExternType)> + '_ {
        let m = &self.inner.decoded;
        m.exports.iter().map(move |e| {
            let ty = match e.index {
                ExternIndex::Func(i) => ExternType::Func(m.func_type(i).clone()),
                ExternIndex::Table(i) => ExternType::Table(m.tables[i as usize]),
                ExternIndex::Memory(i) => ExternType::Memory(m.memories[i as usize]),
                ExternIndex::Global(i) => ExternType::Global(m.globals[i as usize]),
            };
            (e.name.as_str(), ty)
        })
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
