//! Integration tests of weft-jit through a fake runtime (see `harness`).

// The harness boxes everything whose address is stored in a vmctx, so that
// pushing to a `Vec` never moves it.
#![allow(clippy::vec_box)]

mod harness;

mod atomics;
mod calls;
mod control;
mod errors;
mod floats;
mod globals;
mod interrupt;
mod memory;
mod numeric;
mod spec;
mod tables;
