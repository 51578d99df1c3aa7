//! Writing to stdout and stderr without ever panicking.
//!
//! `println!` panics when stdout is a closed pipe; a CLI whose reader went
//! away must just stop writing. Each message is formatted first and written
//! with one `write_all`, so a trap message and its backtrace arrive together
//! (and a closed pipe is noticed once). Errors are ignored: there is nobody
//! left to tell. Rust ignores SIGPIPE in its programs, so a closed pipe is an
//! `EPIPE` error here, not a signal.

use std::io::Write;

/// Writes `text` to stdout; a failure (closed or full pipe) is ignored.
pub fn print_all(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes `text` to stderr; a failure is ignored.
pub fn eprint_all(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// `FILE: message`, unless the message already starts with FILE (text
/// errors name `FILE:LINE:COLUMN` themselves).
pub fn about(file: &std::path::Path, message: &str) -> String {
    let f = file.display().to_string();
    if message.starts_with(&f) {
        message.to_string()
    } else {
        format!("{f}: {message}")
    }
}
