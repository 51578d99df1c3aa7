//! Integration tests of weft-jit through a fake runtime (see `harness`).

mod harness;

mod calls;
mod control;
mod errors;
mod floats;
mod globals;
mod memory;
mod numeric;
