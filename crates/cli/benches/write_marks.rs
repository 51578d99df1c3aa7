//! What write marks cost running code: `cargo bench -p weft-cli --bench
//! write_marks`.
//!
//! With `PoolingAllocationConfig::write_marks`, compiled code sets a byte
//! in a side table after every store to a 32-bit memory, so that a pool's
//! reset needs no page-table scan. This runs the C programs of
//! `tests/programs/bench_*.c` in process (see `in_process/mod.rs`) under two
//! pooling engines that differ only in `write_marks`, and reports the run
//! time with marks as a ratio to the time without, with the geometric
//! mean. What the marks save per reset is in `cargo bench -p weft --bench
//! instantiate` and `--bench serving`. Needs clang and wasi-libc; without
//! them it says so and exits. `--quick`: fewer rounds.

#[path = "build_c.rs"]
mod build_c;
#[path = "in_process/mod.rs"]
mod in_process;

use weft::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

fn engine(marks: bool) -> Engine {
    let mut p = PoolingAllocationConfig::default();
    p.total_instances(4)
        .total_memories(4)
        .total_tables(4)
        .write_marks(marks);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    Engine::new(&c).expect("engine")
}

fn main() {
    in_process::compare_engines(
        "write marks",
        &[("marks off", engine(false)), ("marks on", engine(true))],
    );
}
