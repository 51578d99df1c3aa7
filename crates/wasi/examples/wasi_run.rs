//! A minimal WASI runner on weft-wasi (the real one is `weft run`):
//!
//! ```sh
//! cargo run -p weft-wasi --example wasi_run -- [--dir HOST[::GUEST]]... FILE [ARGS...]
//! ```
//!
//! stdio and the environment are this process's; the exit status is the
//! guest's.

use weft::{Engine, Module};
use weft_wasi::WasiCtxBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let mut b = WasiCtxBuilder::new();
    b.inherit_stdio().inherit_env();
    while args.peek().is_some_and(|a| a == "--dir") {
        args.next();
        let spec = args.next().ok_or("--dir needs HOST[::GUEST]")?;
        let (host, guest) = spec.split_once("::").unwrap_or((&spec, &spec));
        b.preopened_dir(host, guest, false)?;
    }
    let file = args
        .next()
        .ok_or("usage: wasi_run [--dir HOST[::GUEST]]... FILE [ARGS...]")?;
    b.arg(&file).args(args);
    let engine = Engine::default();
    let module = Module::from_file(&engine, &file)?;
    let status = weft_wasi::run_command(&engine, &module, b.build())?;
    std::process::exit(status);
}
