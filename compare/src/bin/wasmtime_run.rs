//! `wasmtime_run FILE.wasm [ARGS...]`: runs a WASI preview1 command on
//! Wasmtime, as `weft run --no-cache` does on weft, for the whole-process
//! rows of the C programs section (`src/programs.rs`).
//!
//! The module is compiled from the file every time (this crate builds
//! Wasmtime without its cache); the guest gets the file name as `argv[0]`,
//! then ARGS, no environment, and this process's stdio. The exit status is
//! the guest's (`_start` returning is 0); an error or trap prints a message
//! and exits 1.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: wasmtime_run FILE.wasm [ARGS...]");
        return ExitCode::FAILURE;
    };
    match run(Path::new(file), &args[1..]) {
        Ok(status) => u8::try_from(status).map_or(ExitCode::FAILURE, ExitCode::from),
        Err(e) => {
            eprintln!("error: {}: {e:?}", Path::new(file).display());
            ExitCode::FAILURE
        }
    }
}

fn run(file: &Path, args: &[OsString]) -> wasmtime::Result<i32> {
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::from_file(&engine, file)?;
    let mut linker = wasmtime::Linker::<WasiP1Ctx>::new(&engine);
    p1::add_to_linker_sync(&mut linker, |c| c)?;
    let mut b = WasiCtxBuilder::new();
    let argv0 = file.file_name().unwrap_or(file.as_os_str());
    b.inherit_stdio().arg(argv0.to_string_lossy());
    for a in args {
        b.arg(a.to_string_lossy());
    }
    let mut store = wasmtime::Store::new(&engine, b.build_p1());
    let instance = linker.instantiate(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(x) => Ok(x.0),
            None => Err(e),
        },
    }
}
