//! `weft wast FILE`, and WebAssembly-text float literals for `--invoke`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use wast::parser::{self, ParseBuffer};

use crate::output::{eprint_all, print_all};

/// Runs a script and prints failures, skips and the counts.
pub fn main(file: &Path) -> ExitCode {
    let report = match weft_wast::run_script(file) {
        Ok(r) => r,
        Err(e) => {
            eprint_all(&format!("error: {e}\n"));
            return ExitCode::FAILURE;
        }
    };
    let mut out = String::new();
    let name = file.display();
    for f in &report.failed {
        out.push_str(&format!("FAIL {name}:{f}\n"));
    }
    for s in &report.skipped {
        out.push_str(&format!("skipped {name}:{s}\n"));
    }
    out.push_str(&format!(
        "{} passed, {} failed, {} skipped\n",
        report.passed,
        report.failed.len(),
        report.skipped.len()
    ));
    print_all(&out);
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Parses one WebAssembly-text literal of type `T`.
fn literal<T: for<'a> parser::Parse<'a>>(s: &str) -> Result<T> {
    let buf = ParseBuffer::new(s).map_err(|_| anyhow!("not a number"))?;
    parser::parse::<T>(&buf)
        .map_err(|_| anyhow!("not a number (try 1.5, -0x1p-3, inf or nan:0x200000)"))
}

/// An `f32` as WebAssembly text writes it; its bits.
pub fn parse_f32(s: &str) -> Result<u32> {
    Ok(literal::<wast::token::F32>(s)?.bits)
}

/// An `f64` as WebAssembly text writes it; its bits.
pub fn parse_f64(s: &str) -> Result<u64> {
    Ok(literal::<wast::token::F64>(s)?.bits)
}
