//! The `weft` command.

mod run;
mod summary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use weft_decoder::Module;

/// weft: a WebAssembly runtime.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a module: call the export named by `--invoke` with ARGS parsed by
    /// its parameter types, and print the results (one per line).
    ///
    /// Example: weft run examples/hello.wat --invoke fib 20
    Run {
        /// The module: binary (.wasm) or text (.wat).
        file: PathBuf,
        /// The exported function to call.
        #[arg(long, value_name = "NAME")]
        invoke: String,
        /// Stop the run (as a trap, "interrupt") after this long: 500ms,
        /// 2s, 1m.
        #[arg(long, value_name = "DURATION", value_parser = run::parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Stop the run (as a trap, "all fuel consumed") after about this
        /// many instructions.
        #[arg(long, value_name = "N")]
        fuel: Option<u64>,
        /// Arguments for the function (integers in decimal or 0x hex,
        /// floats like 1.5, nan, inf).
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Decode and validate a module (.wasm or .wat) and summarise its
    /// sections.
    Validate {
        /// The module: binary (.wasm) or text (.wat).
        file: PathBuf,
        /// List every entry of every section (by default long sections are
        /// cut after a few dozen entries).
        #[arg(long)]
        all: bool,
    },
}

/// The exit status after a trap (distinct from 1, used for other errors).
const TRAP_EXIT: u8 = 134;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            file,
            invoke,
            timeout,
            fuel,
            args,
        } => match run::run(&file, &invoke, &args, run::Limits { timeout, fuel }) {
            Ok(run::Outcome::Returned(vals)) => {
                for v in &vals {
                    println!("{}", run::format_val(v));
                }
                ExitCode::SUCCESS
            }
            Ok(run::Outcome::Trapped(trap)) => {
                eprintln!("{trap}");
                ExitCode::from(TRAP_EXIT)
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::Validate { file, all } => match validate(&file, all) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", file.display());
                ExitCode::FAILURE
            }
        },
    }
}

/// Reads, decodes and validates `file`; returns the summary.
fn validate(file: &Path, all: bool) -> Result<String> {
    let bytes = read_module(file)?;
    let module = Module::decode(&bytes)?;
    Ok(summary::summarize(file, &module, all))
}

/// Reads a module file as binary. `.wat` files (and files that do not start
/// with the binary magic, unless named `.wasm`) are parsed as text.
fn read_module(file: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(file).context("cannot read the file")?;
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let text = match ext {
        "wasm" => false,
        "wat" => true,
        _ => !raw.starts_with(b"\0asm"),
    };
    if text {
        Ok(weft_decoder::parse_wat(&raw)?)
    } else {
        Ok(raw)
    }
}
