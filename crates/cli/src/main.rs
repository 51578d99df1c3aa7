//! The `weft` command.

mod args;
mod output;
mod run;
mod sigint;
mod summary;
mod wast;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::{eprint_all, print_all};

/// weft: a WebAssembly runtime. Runs WASI programs and WebAssembly modules
/// (binary `.wasm` or text `.wat`), sandboxed to the directories you give
/// it, and stops them when asked.
#[derive(Debug, Parser)]
#[command(
    name = "weft",
    version,
    about = "weft: a WebAssembly runtime. Runs WASI programs and WebAssembly modules \
             (binary .wasm or text .wat), sandboxed to the directories you give it, and \
             stops them when asked.",
    after_help = "Examples:
  weft run examples/hello.wat
  weft examples/hello.wat                 (the same: `run` is the default)
  weft run --dir . prog.wasm input.txt    (prog sees `.` and its argument)
  weft run --invoke fib examples/fib.wat 20
  weft validate prog.wasm
  weft wast tests.wast

Exit status: the program's own; 134 after a trap; 130 after Ctrl-C;
1 when weft itself fails (a file that is not a module, a bad option)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a WebAssembly program.
    ///
    /// By default runs a WASI command: its `_start`, with ARGS as the
    /// program's arguments (argv[0] is the file name, or --argv0), this
    /// process's stdin/stdout/stderr, and only the directories given with
    /// --dir visible. The exit status is the program's. With --invoke, calls
    /// that export instead, with ARGS parsed by its parameter types, and
    /// prints the results one per line.
    ///
    /// Options come before FILE; every word after FILE goes to the program
    /// untouched, even ones that look like options (`--dir`, `--help`, `--`).
    ///
    /// Examples:
    ///   weft run examples/hello.wat
    ///   weft run --dir . --env HOME prog.wasm input.txt
    ///   weft run --dir /data::/in --dir-ro /etc/app::/config prog.wasm
    ///   weft run --invoke fib examples/fib.wat 20
    ///   weft run --timeout 2s --fuel 1000000 untrusted.wasm
    ///   weft run -W max-memory-size=64MiB,timeout=500ms prog.wasm
    ///   weft run --preload lib=lib.wasm main.wasm
    ///
    /// A trap prints `wasm trap: ...` with a wasm backtrace and exits with
    /// status 134; Ctrl-C stops the program the same way and exits with 130
    /// (a second Ctrl-C exits at once).
    #[command(verbatim_doc_comment)]
    Run(Box<args::RunArgs>),
    /// Decode and validate a module (.wasm or .wat) and summarise it.
    ///
    /// Examples:
    ///   weft validate prog.wasm
    ///   weft validate --all examples/fib.wat
    #[command(verbatim_doc_comment)]
    Validate {
        /// The module: binary (.wasm) or text (.wat).
        file: PathBuf,
        /// List every entry of every section (by default long sections are
        /// cut after a few dozen entries).
        #[arg(long)]
        all: bool,
    },
    /// Compile a module ahead of time to precompiled code (.cwasm) that
    /// `weft run --allow-precompiled` loads without compiling.
    ///
    /// The code is bound to this weft version, this CPU's features and the
    /// engine settings `weft run` uses without --fuel (fuel metering changes
    /// the code); other combinations are refused when loading.
    ///
    /// Examples:
    ///   weft compile prog.wasm              (writes prog.cwasm)
    ///   weft compile prog.wasm -o /tmp/p.cwasm
    ///   weft run --allow-precompiled prog.cwasm
    #[command(verbatim_doc_comment)]
    Compile {
        /// The module: binary (.wasm) or text (.wat).
        file: PathBuf,
        /// Where to write the code (default: FILE with extension .cwasm).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
    },
    /// Run a spec-style script (.wast): modules, registrations, invocations
    /// and assertions, printing what failed and a pass/fail count.
    ///
    /// Examples:
    ///   weft wast tests.wast
    ///   weft wast ../shared/testsuite/core/i32.wast
    ///
    /// The exit status is 0 when every assertion passed, 1 otherwise.
    #[command(verbatim_doc_comment)]
    Wast {
        /// The script.
        file: PathBuf,
    },
}

/// `weft compile`: FILE to precompiled code.
fn compile(file: &std::path::Path, output: Option<PathBuf>) -> anyhow::Result<()> {
    let out = output.unwrap_or_else(|| file.with_extension("cwasm"));
    if out == file {
        anyhow::bail!("the output would overwrite {}", file.display());
    }
    let engine = weft::Engine::new(&weft::Config::new())?;
    let module = weft::Module::from_file(&engine, file)?;
    let bytes = module.serialize()?;
    std::fs::write(&out, bytes).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    Ok(())
}

/// The exit status after a trap (distinct from 1, used for other errors).
const TRAP_EXIT: u8 = 134;
/// The exit status after Ctrl-C (128 + SIGINT, as shells report it).
const SIGINT_EXIT: u8 = 130;

fn main() -> ExitCode {
    if let Ok(filter) = std::env::var("WEFT_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let argv: Vec<OsString> = std::env::args_os().collect();
    let (clap_argv, program_args) = args::split(&argv);
    let cli = match Cli::try_parse_from(&clap_argv) {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with status 0; errors to stderr.
            let text = e.render().to_string();
            return if e.use_stderr() {
                eprint_all(&text);
                ExitCode::FAILURE
            } else {
                print_all(&text);
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Run(a) => run::main(*a, program_args),
        Command::Validate { file, all } => match summary::validate(&file, all) {
            Ok(text) => {
                print_all(&text);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint_all(&format!("error: {}\n", e.to_string().replace('\n', " ")));
                ExitCode::FAILURE
            }
        },
        Command::Wast { file } => wast::main(&file),
        Command::Compile { file, output } => match compile(&file, output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprint_all(&format!("error: {}\n", format!("{e:#}").replace('\n', " ")));
                ExitCode::FAILURE
            }
        },
    }
}
