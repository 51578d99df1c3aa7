//! Errors and traps.

use std::fmt;

/// Why wasm code trapped. [`TrapKind::message`] gives the specification's
/// wording.
///
/// ```
/// use weft_runtime::TrapKind;
/// assert_eq!(TrapKind::IntegerDivisionByZero.message(), "integer divide by zero");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrapKind {
    /// Wasm used more stack than allowed ("call stack exhausted").
    StackOverflow,
    /// A linear-memory access out of bounds.
    MemoryOutOfBounds,
    /// A misaligned access where alignment is required.
    HeapMisaligned,
    /// A table access out of bounds.
    TableOutOfBounds,
    /// An indirect call through an index past the end of the table.
    UndefinedElement,
    /// An indirect call through a null table entry.
    IndirectCallToNull,
    /// An indirect call whose callee has the wrong type.
    BadSignature,
    /// Integer overflow (signed division of the minimum by -1, or a
    /// float-to-integer conversion out of range).
    IntegerOverflow,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero,
    /// A float-to-integer conversion of NaN.
    BadConversionToInteger,
    /// The `unreachable` instruction was executed.
    UnreachableCodeReached,
    /// Execution was interrupted (deadline, epoch or interrupt handle).
    Interrupt,
    /// Fuel ran out.
    OutOfFuel,
    /// An atomic access whose address is not a multiple of its size.
    UnalignedAtomic,
    /// `memory.atomic.wait32`/`wait64` on a memory that is not shared.
    AtomicWaitNonShared,
    /// A failure reported by the host on wasm's behalf.
    Host,
    /// `call_ref`/`return_call_ref` through a null function reference
    /// ("null function reference").
    NullFunctionReference,
    /// `ref.as_non_null` of a null reference ("null reference").
    NullReference,
    /// `throw_ref` of a null exception reference ("null exception
    /// reference").
    NullExceptionReference,
}

impl TrapKind {
    /// The specification's wording for the trap (what the spec testsuite
    /// expects), e.g. "out of bounds memory access".
    pub fn message(self) -> &'static str {
        self.to_jit().message()
    }

    pub(crate) fn from_jit(k: weft_jit::TrapKind) -> TrapKind {
        use weft_jit::TrapKind as J;
        match k {
            J::StackOverflow => TrapKind::StackOverflow,
            J::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
            J::HeapMisaligned => TrapKind::HeapMisaligned,
            J::TableOutOfBounds => TrapKind::TableOutOfBounds,
            J::UndefinedElement => TrapKind::UndefinedElement,
            J::IndirectCallToNull => TrapKind::IndirectCallToNull,
            J::BadSignature => TrapKind::BadSignature,
            J::IntegerOverflow => TrapKind::IntegerOverflow,
            J::IntegerDivisionByZero => TrapKind::IntegerDivisionByZero,
            J::BadConversionToInteger => TrapKind::BadConversionToInteger,
            J::UnreachableCodeReached => TrapKind::UnreachableCodeReached,
            J::Interrupt => TrapKind::Interrupt,
            J::OutOfFuel => TrapKind::OutOfFuel,
            J::UnalignedAtomic => TrapKind::UnalignedAtomic,
            J::AtomicWaitNonShared => TrapKind::AtomicWaitNonShared,
            J::NullFunctionReference => TrapKind::NullFunctionReference,
            J::NullExceptionReference => TrapKind::NullExceptionReference,
            J::NullReference => TrapKind::NullReference,
            _ => TrapKind::Host,
        }
    }

    fn to_jit(self) -> weft_jit::TrapKind {
        use weft_jit::TrapKind as J;
        match self {
            TrapKind::StackOverflow => J::StackOverflow,
            TrapKind::MemoryOutOfBounds => J::MemoryOutOfBounds,
            TrapKind::HeapMisaligned => J::HeapMisaligned,
            TrapKind::TableOutOfBounds => J::TableOutOfBounds,
            TrapKind::UndefinedElement => J::UndefinedElement,
            TrapKind::IndirectCallToNull => J::IndirectCallToNull,
            TrapKind::BadSignature => J::BadSignature,
            TrapKind::IntegerOverflow => J::IntegerOverflow,
            TrapKind::IntegerDivisionByZero => J::IntegerDivisionByZero,
            TrapKind::BadConversionToInteger => J::BadConversionToInteger,
            TrapKind::UnreachableCodeReached => J::UnreachableCodeReached,
            TrapKind::Interrupt => J::Interrupt,
            TrapKind::OutOfFuel => J::OutOfFuel,
            TrapKind::UnalignedAtomic => J::UnalignedAtomic,
            TrapKind::AtomicWaitNonShared => J::AtomicWaitNonShared,
            TrapKind::Host => J::Host,
            TrapKind::NullFunctionReference => J::NullFunctionReference,
            TrapKind::NullReference => J::NullReference,
            TrapKind::NullExceptionReference => J::NullExceptionReference,
        }
    }
}

/// One wasm frame of a trap's backtrace.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    pub(crate) func_index: u32,
    pub(crate) func_name: Option<String>,
    pub(crate) module_offset: Option<u32>,
    pub(crate) module: Option<crate::Module>,
}

impl PartialEq for FrameInfo {
    fn eq(&self, o: &FrameInfo) -> bool {
        (self.func_index, &self.func_name, self.module_offset)
            == (o.func_index, &o.func_name, o.module_offset)
    }
}

impl Eq for FrameInfo {}

impl FrameInfo {
    /// The function's index in its module's function index space.
    pub fn func_index(&self) -> u32 {
        self.func_index
    }

    /// The function's name from the module's name section, if any.
    pub fn func_name(&self) -> Option<&str> {
        self.func_name.as_deref()
    }

    /// The byte offset in the module of the instruction: the trapping one
    /// in the innermost frame, the call in the others.
    pub fn module_offset(&self) -> Option<u32> {
        self.module_offset
    }

    /// The module the function belongs to (for
    /// [`Module::source_location`](crate::Module::source_location)).
    pub fn module(&self) -> Option<&crate::Module> {
        self.module.as_ref()
    }
}

impl fmt::Display for FrameInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.func_name {
            Some(n) => write!(f, "{n} (func[{}])", self.func_index)?,
            None => write!(f, "func[{}]", self.func_index)?,
        }
        if let Some(o) = self.module_offset {
            write!(f, " @ 0x{o:x}")?;
        }
        Ok(())
    }
}

/// A WebAssembly trap: execution stopped and the call returned an error.
///
/// `{}` shows the message and the trapping function; `{:#}` adds the wasm
/// backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    kind: TrapKind,
    func: Option<String>,
    backtrace: Vec<String>,
    frames: Vec<FrameInfo>,
    more_frames: usize,
}

impl Trap {
    pub(crate) fn new(kind: weft_jit::TrapKind, func: Option<String>) -> Self {
        Trap {
            kind: TrapKind::from_jit(kind),
            func,
            backtrace: Vec::new(),
            frames: Vec::new(),
            more_frames: 0,
        }
    }

    pub(crate) fn with_frames(mut self, frames: Vec<FrameInfo>, more: usize) -> Self {
        self.backtrace = frames.iter().map(|f| f.to_string()).collect();
        self.frames = frames;
        self.more_frames = more;
        self
    }

    /// The wasm frames at the trap, innermost first, with function indices
    /// and module offsets.
    pub fn frames(&self) -> &[FrameInfo] {
        &self.frames
    }

    /// Frames beyond those in [`frames`](Self::frames) (a very deep stack is
    /// cut after 64 frames; this counts the rest).
    pub fn more_frames(&self) -> usize {
        self.more_frames
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
            if self.more_frames > 0 {
                write!(f, "\n  ... {} more frames", self.more_frames)?;
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
    /// The module is malformed or invalid: its bytes do not decode, or it
    /// breaks a validation rule. The message is the validator's.
    #[error("{message}{}", offset.map(|o| format!(" (at offset 0x{o:x})")).unwrap_or_default())]
    Invalid {
        /// What is wrong.
        message: String,
        /// Byte offset of the problem in the binary, if known.
        offset: Option<usize>,
    },
    /// WebAssembly text (`.wat`) could not be parsed; the message names the
    /// line and column.
    #[error("{0}")]
    Wat(String),
    /// The module is valid but uses something weft does not support (yet).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The module could not be compiled for another reason (a bug in weft).
    #[error("compilation failed: {0}")]
    Compile(String),
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
    /// A WebAssembly exception that no handler caught. A host function
    /// throws one into its wasm caller by returning this error.
    #[error("uncaught WebAssembly exception")]
    Exception(crate::Exn),
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

    /// The exception, if this error is an uncaught one.
    pub fn as_exception(&self) -> Option<&crate::Exn> {
        if let Error::Exception(e) = self {
            Some(e)
        } else {
            None
        }
    }

    /// A host error from any displayable message.
    pub fn msg(m: impl fmt::Display) -> Error {
        Error::Host(m.to_string().into())
    }
}

impl Error {
    pub(crate) fn from_decode(e: weft_decoder::DecodeError) -> Error {
        use weft_decoder::DecodeError as D;
        let offset = e.offset();
        match e {
            D::Invalid { message, .. } => Error::Invalid { message, offset },
            D::Unsupported { message, .. } => Error::Unsupported(match offset {
                Some(o) => format!("{message} (at offset 0x{o:x})"),
                None => message,
            }),
            D::Text(m) => Error::Wat(m),
            other => Error::Invalid {
                message: other.to_string(),
                offset,
            },
        }
    }

    pub(crate) fn from_compile(e: weft_jit::CompileError) -> Error {
        match e {
            weft_jit::CompileError::Unsupported(m) => Error::Unsupported(m),
            other => Error::Compile(other.to_string()),
        }
    }
}

/// The result type of weft operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
