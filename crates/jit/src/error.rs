//! Compilation errors.

use thiserror::Error;

/// Why a module, function or trampoline could not be compiled.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileError {
    /// The module uses an instruction, type or feature the JIT does not
    /// translate (yet).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A function body could not be read (the decoder validated it, so this
    /// indicates an inconsistent module).
    #[error("invalid function body: {0}")]
    InvalidBody(String),
    /// The host ISA could not be detected or configured.
    #[error("host ISA: {0}")]
    Isa(String),
    /// Cranelift failed to compile a function (an internal error).
    #[error("code generation failed in {func}: {message}")]
    Codegen {
        /// Which function (e.g. `wasm function 3`, `array trampoline 3`).
        func: String,
        /// Cranelift's message.
        message: String,
    },
    /// Executable memory could not be allocated or linked.
    #[error("code memory: {0}")]
    CodeMemory(String),
    /// Precompiled code could not be written or read (malformed, or made
    /// for something else).
    #[error("precompiled code: {0}")]
    Serialized(String),
}

impl From<weft_decoder::wasmparser::BinaryReaderError> for CompileError {
    fn from(e: weft_decoder::wasmparser::BinaryReaderError) -> Self {
        CompileError::InvalidBody(format!("{} (at offset 0x{:x})", e.message(), e.offset()))
    }
}
