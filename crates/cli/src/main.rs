//! The `weft` command.

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
