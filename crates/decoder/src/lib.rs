//! # weft-decoder
//!
//! Turns WebAssembly bytes (or, with the `wat` feature, text) into a validated,
//! immutable [`Module`] description that weft's JIT and runtime consume.
//!
//! Parsing and validation happen in one pass over the bytes with
//! [`wasmparser`]; every function body is validated exactly once. Malformed or
//! invalid input is reported as a [`DecodeError`] carrying the byte offset and
//! the validator's message; it never panics.
//!
//! ```
//! use weft_decoder::{Module, ValType};
//!
//! let bytes = weft_decoder::parse_wat(r#"
//!     (module
//!       (memory 1 2)
//!       (func (export "add") (param i32 i32) (result i32)
//!         local.get 0 local.get 1 i32.add))
//! "#).unwrap();
//! let module = Module::decode(&bytes).unwrap();
//! assert_eq!(module.memories[0].limits.max, Some(2));
//! assert_eq!(&*module.func_type(0).params, &[ValType::I32, ValType::I32]);
//! ```
#![deny(missing_docs)]

mod error;
mod module;
mod types;

pub use error::{DecodeError, Result};
pub use module::*;
pub use types::*;
pub use wasmparser;

/// Parses WebAssembly text (or passes binary through) into binary form.
#[cfg(feature = "wat")]
pub fn parse_wat(source: impl AsRef<[u8]>) -> Result<Vec<u8>> {
    wat::parse_bytes(source.as_ref())
        .map(|b| b.into_owned())
        .map_err(|e| DecodeError::Text(e.to_string()))
}
