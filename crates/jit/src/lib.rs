//! # weft-jit
//!
//! Compiles validated WebAssembly modules ([`weft_decoder::Module`]) to native
//! machine code with Cranelift.
//!
//! weft-jit knows nothing about the runtime's types: it compiles against the
//! vmctx layout described by [`VMOffsets`] (and `CONTRACT.md` in this crate),
//! and the runtime lays its structures out to match.
//!
//! * [`Compiler`] holds the host ISA and the [`Tunables`]; it compiles a whole
//!   module into one [`CompiledModule`] (all functions in one code region,
//!   plus an `array_call` trampoline per function), and builds host
//!   trampolines ([`CompiledTrampoline`]) per function type.
//! * Faults in compiled code are mapped back to a [`TrapKind`] with
//!   [`CompiledModule::lookup_trap`] by exact PC.
#![deny(missing_docs)]

mod builtins;
mod code;
mod compiler;
mod error;
mod fuel;
mod serialize;
mod trampolines;
mod translate;
mod trap;
mod vmoffsets;

pub use builtins::{Builtin, GROW_TRAP};
pub use compiler::{CompiledModule, CompiledTrampoline, Compiler, OptLevel, Tunables};
pub use error::CompileError;
pub use fuel::fuel_cost;
pub use trampolines::{TYPED_ENTRY_MAX_PARAMS, direct_host_call_supported, typed_entry_supported};
pub use trap::TrapKind;
pub use vmoffsets::{PTR_SIZE, VMOffsets};
pub use weft_decoder;
