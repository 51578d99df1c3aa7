//! Code generation levers (issue #18): `cargo bench -p weft-cli --bench
//! levers`.
//!
//! Runs the C programs of `tests/programs/bench_*.c` in process under the
//! default engine and under engines that each change one code generation
//! setting (see `in_process/mod.rs`), and reports each lever's run time as a
//! ratio to the default, with the geometric mean. A lever that makes weft
//! faster here moves weft's ratio to Wasmtime (`cargo xtask bench --compare
//! -- --programs`) by as much. Needs clang and wasi-libc; without them it
//! says so and exits. `--quick`: fewer rounds.

#[path = "build_c.rs"]
mod build_c;
#[path = "in_process/mod.rs"]
mod in_process;

use weft::{Config, Engine};

fn main() {
    let mut inline = Config::new();
    inline.inline_small_functions(true);
    let mut no_poll = Config::new();
    no_poll.interruptible(false);
    let mut aligned = Config::new();
    // SAFETY: function alignment changes only where code is placed.
    unsafe { aligned.cranelift_flag_set("log2_min_function_alignment", "6") };
    let mut speed_and_size = Config::new();
    speed_and_size.cranelift_opt_level(weft::OptLevel::SpeedAndSize);
    let engines: Vec<(&str, Engine)> = [
        ("default", Config::new()),
        ("inline small functions", inline),
        ("functions aligned to 64 bytes", aligned),
        ("opt level speed_and_size", speed_and_size),
        ("no interrupt polls (reference)", no_poll),
    ]
    .into_iter()
    .map(|(name, c)| (name, Engine::new(&c).expect("engine")))
    .collect();
    in_process::compare_engines("code generation levers", &engines);
}
