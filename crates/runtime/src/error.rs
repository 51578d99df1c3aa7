//! Errors and traps.

use std::fmt;

pub use weft_jit::TrapKind;

/// A WebAssembly trap: execution stopped and the call returned an error.
///
/// `{}` shows the message and the trapping function; `{:#}` adds the wasm
/// backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    kind: TrapKind,
    func: Option<String>,
    backtrace: Vec<String>,
}

impl Trap {
    pub(crate) fn new(kind: TrapKind, func: Option<String>) -> Self {
        Trap {
            kind,
            func,
            backtrace: Vec::new(),
        }
    }

    pub(crate) fn with_backtrace(mut self, frames: Vec<String>) -> Self {
        self.backtrace = frames;
        self
    }

    /// The wasm call stack at the trap, innermost first: the trapping
    /// function, then its callers (names from the name section, or
    /// `func[N]`). Empty when the trap happened outside wasm code.
    pub fn backtrace(&self) -> &[String] {
        &self.backtrace
    }

    /// What kind of trap this is.
    pub fn kind(&self) -> TrapKind {
        self.kind
    }

    /// The spec's wording for the trap (e.g. "integer divide by zero").
    pub fn message(&self) -> &'static str {
        self.kind.message()
    }

    /// The wasm function where the trap happened (its name, or `func[N]`).
    pub fn function(&self) -> Option<&str> {
        self.func.as_deref()
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm trap: {}", self.kind.message())?;
        if let Some(func) = &self.func {
            write!(f, " (in {func})")?;
        }
        if f.alternate() && !self.backtrace.is_empty() {
            write!(f, "\nwasm backtrace:")?;
            for (i, frame) in self.backtrace.iter().enumerate() {
                write!(f, "\n  {i:>2}: {frame}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Trap {}

/// Any error weft returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Execution trapped.
    #[error(transparent)]
    Trap(#[from] Trap),
    /// The module bytes could not be decoded or validated.
    #[error(transparent)]
    Decode(#[from] weft_decoder::DecodeError),
    /// The module could not be compiled.
    #[error(transparent)]
    Compile(#[from] weft_jit::CompileError),
    /// Linking failed (unknown import, incompatible import type, ...).
    #[error("{0}")]
    Link(String),
    /// A host-side argument was wrong (type mismatch, wrong count, bad index).
    #[error("{0}")]
    InvalidArgument(String),
    /// A resource could not be obtained (memory reservation, ...).
    #[error("{0}")]
    Resource(String),
    /// A host function returned an error; it is carried to the outermost caller.
    #[error("{0}")]
    Host(Box<dyn std::error::Error + Send + Sync>),
    /// Reading a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The trap, if this error is one.
    pub fn as_trap(&self) -> Option<&Trap> {
        if let Error::Trap(t) = self {
            Some(t)
        } else {
            None
        }
    }

    /// A host error from any displayable message.
    pub fn msg(m: impl fmt::Display) -> Error {
        Error::Host(m.to_string().into())
    }
}

/// The result type of weft operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
