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
    parse_wat_named(source, "<wat>")
}

/// As [`parse_wat`], with `name` (a file name, say) in the error, which is
/// one line: `NAME:LINE:COLUMN: message`.
///
/// ```
/// let e = weft_decoder::parse_wat_named("(module (func (i32.const)))", "m.wat").unwrap_err();
/// assert!(e.to_string().starts_with("m.wat:1:"), "{e}");
/// assert!(!e.to_string().contains('\n'));
/// ```
pub fn parse_wat_named(source: impl AsRef<[u8]>, name: &str) -> Result<Vec<u8>> {
    wat::parse_bytes(source.as_ref())
        .map(|b| b.into_owned())
        .map_err(|mut e| {
            e.set_path(std::path::Path::new(name));
            DecodeError::Text(one_line_wat_error(&e.to_string(), name))
        })
}

/// `message\n --> NAME:L:C\n | ...` (the text parser's rendering) as
/// `NAME:L:C: message`.
fn one_line_wat_error(rendered: &str, name: &str) -> String {
    let mut lines = rendered.lines();
    let message = lines.next().unwrap_or_default().trim();
    let location = rendered
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .map(str::trim);
    match location {
        Some(loc) => format!("{loc}: {message}"),
        None => format!("{name}: {message}"),
    }
}
