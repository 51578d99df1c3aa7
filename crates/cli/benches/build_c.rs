//! How the C benchmark programs (`tests/programs/bench_*.c`) are built:
//! shared by `crates/cli/benches/programs.rs` and the Wasmtime comparison
//! (`compare/src/programs.rs`), so both measure the same modules.

use std::path::Path;
use std::process::Command;

/// `bench_simd` is built with `-O3` on both sides (so both vectorise), and
/// with `-msimd128` for wasm; the others with `-O2`.
pub fn compile(src: &Path, out: &Path, wasm: bool) -> Result<(), String> {
    let simd = src.file_stem().is_some_and(|s| s == "bench_simd");
    let opt = if simd { "-O3" } else { "-O2" };
    let mut cmd = if wasm {
        let mut c = Command::new(std::env::var("WEFT_WASI_CC").unwrap_or_else(|_| "clang".into()));
        c.args(["--target=wasm32-wasi", opt]);
        if simd {
            c.arg("-msimd128");
        }
        c
    } else {
        let mut c = Command::new(std::env::var("WEFT_NATIVE_CC").unwrap_or_else(|_| "cc".into()));
        c.arg(opt);
        c
    };
    cmd.arg("-o").arg(out).arg(src);
    if !wasm {
        cmd.arg("-lm");
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}
