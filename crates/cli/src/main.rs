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
    /// Run a WebAssembly program.
    ///
    /// By default runs a WASI command: its `_start`, with ARGS as the
    /// program's arguments (argv[0] is the file name), stdin/stdout/stderr of
    /// this process, and only the directories given with --dir visible. The
    /// exit status is the program's. With --invoke, calls that export
    /// instead, with ARGS parsed by its parameter types, and prints the
    /// results one per line.
    ///
    /// Examples:
    ///   weft run examples/hello.wat
    ///   weft run --dir . --env HOME prog.wasm input.txt
    ///   weft run --invoke fib examples/fib.wat 20
    ///   weft run --timeout 2s --fuel 1000000 untrusted.wasm
    ///
    /// A trap prints `wasm trap: ...` and exits with status 134.
    #[command(verbatim_doc_comment)]
    Run {
        /// Call this exported function instead of the WASI `_start`.
        #[arg(long, value_name = "NAME")]
        invoke: Option<String>,
        /// Make a host directory visible to the program, optionally under
        /// another name: `--dir data` or `--dir /tmp/out::out`. Repeatable.
        #[arg(long = "dir", value_name = "HOST[::GUEST]")]
        dirs: Vec<String>,
        /// Set an environment variable for the program; `--env NAME` passes
        /// this process's value on. Repeatable.
        #[arg(long = "env", value_name = "NAME[=VALUE]")]
        envs: Vec<String>,
        /// Stop the run (a trap, "interrupt") after this long: 500ms, 2s, 1m.
        #[arg(long, value_name = "DURATION", value_parser = run::parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Stop the run (a trap, "all fuel consumed") after about this many
        /// instructions.
        #[arg(long, value_name = "N")]
        fuel: Option<u64>,
        /// Refuse to grow linear memory beyond this size: 64MiB, 1GiB.
        #[arg(long, value_name = "SIZE", value_parser = run::parse_size)]
        max_memory: Option<usize>,
        /// The module: binary (.wasm) or text (.wat).
        file: PathBuf,
        /// Arguments for the program (or, with --invoke, for the function).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
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
    if let Ok(filter) = std::env::var("WEFT_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            invoke,
            dirs,
            envs,
            timeout,
            fuel,
            max_memory,
            file,
            args,
        } => {
            let opts = run::Options {
                invoke,
                dirs,
                envs,
                timeout,
                fuel,
                max_memory,
            };
            match run::run(&file, &args, &opts) {
                Ok(run::Outcome::Returned(vals)) => {
                    for v in &vals {
                        println!("{}", run::format_val(v));
                    }
                    ExitCode::SUCCESS
                }
                Ok(run::Outcome::Exited(code)) => match u8::try_from(code) {
                    Ok(c) => ExitCode::from(c),
                    Err(_) => {
                        eprintln!(
                            "error: the program exited with status {code}, which the host cannot represent"
                        );
                        ExitCode::FAILURE
                    }
                },
                Ok(run::Outcome::Trapped(trap)) => {
                    eprintln!("{trap:#}");
                    ExitCode::from(TRAP_EXIT)
                }
                Ok(run::Outcome::DeadlineExceeded) => {
                    eprintln!("wasm trap: interrupt (the --timeout passed during a blocking call)");
                    ExitCode::from(TRAP_EXIT)
                }
                Err(e) => {
                    eprintln!("error: {}: {e:#}", file.display());
                    ExitCode::FAILURE
                }
            }
        }
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
