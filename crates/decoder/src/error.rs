//! Decode errors.

use thiserror::Error;

/// Result of decoding.
pub type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// Why a module could not be decoded.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a well-formed or valid module; the message is the
    /// validator's.
    #[error("{message} (at offset 0x{offset:x})")]
    Invalid {
        /// The validator's message.
        message: String,
        /// Byte offset of the problem.
        offset: usize,
    },
    /// The module is valid but uses something weft does not support.
    #[error("unsupported: {message} (at offset 0x{offset:x})")]
    Unsupported {
        /// What is unsupported.
        message: String,
        /// Byte offset of the problem.
        offset: usize,
    },
    /// WebAssembly text could not be parsed.
    #[error("{0}")]
    Text(String),
}

impl DecodeError {
    pub(crate) fn unsupported(message: String, offset: usize) -> Self {
        DecodeError::Unsupported { message, offset }
    }

    /// The byte offset of the problem, if known.
    pub fn offset(&self) -> Option<usize> {
        match self {
            DecodeError::Invalid { offset, .. } | DecodeError::Unsupported { offset, .. } => {
                Some(*offset)
            }
            DecodeError::Text(_) => None,
        }
    }

    /// The bare message, without the offset.
    pub fn message(&self) -> &str {
        match self {
            DecodeError::Invalid { message, .. } | DecodeError::Unsupported { message, .. } => {
                message
            }
            DecodeError::Text(m) => m,
        }
    }
}

impl From<wasmparser::BinaryReaderError> for DecodeError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        DecodeError::Invalid {
            message: e.message().to_string(),
            offset: e.offset() as usize,
        }
    }
}
