//! weft's project automation as a library: the spec harness lives here so
//! that executors (and tests) can drive it; `main.rs` is the `cargo xtask`
//! command line.

pub mod spec;
