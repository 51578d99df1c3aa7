//! The seam between the spec harness and whatever executes modules.
//!
//! The harness itself parses every script, decodes and validates every module
//! with `weft-decoder` and judges `assert_malformed` / `assert_invalid` and
//! plain `(module ...)` validation. Everything that needs a running module is
//! handed to an [`Executor`], one method per directive kind. Every method has a
//! default that answers [`Outcome::NotRun`] with [`NOT_IMPLEMENTED`], so
//! [`DecodeOnly`] (today's executor) is an empty `impl`.
//!
//! To execute modules, implement the methods you support on a type of your
//! own and pass a factory for it in [`super::Options::executor`]; the harness
//! creates one executor per script file (a fresh namespace of modules and
//! registrations) on the worker thread that runs the file.
//!
//! The harness has already done the bookkeeping an executor would otherwise
//! repeat: modules passed in are decoded and valid, and a directive that
//! refers to a module which was skipped (needs a post-2.0 feature), failed, or
//! was not instantiated never reaches the executor; it is counted with the
//! reason the module was not available.

use wast::{WastInvoke, WastRet};
use weft_decoder::{Features, Module};

use super::Outcome;

/// The reason given for every directive the executor does not run.
pub const NOT_IMPLEMENTED: &str = "execution not implemented";

fn not_run() -> Outcome {
    Outcome::NotRun(NOT_IMPLEMENTED.to_string())
}

/// A module the harness has encoded, decoded and validated.
#[derive(Debug, Clone, Copy)]
pub struct ValidModule<'a> {
    /// The module's `$id` in the script, if it has one.
    pub id: Option<&'a str>,
    /// Line of the directive in the script (1-based).
    pub line: u32,
    /// The binary module.
    pub bytes: &'a [u8],
    /// The decoded module.
    pub module: &'a Module,
    /// The features it was validated with.
    pub features: Features,
}

/// What an `assert_return`, `assert_trap` or `assert_exception` runs.
#[derive(Debug, Clone, Copy)]
pub enum Exec<'a, 'b> {
    /// Call an export of the current (`module: None`) or a named module.
    Invoke(&'b WastInvoke<'a>),
    /// Instantiate a module (`assert_trap (module ...)`: a start function or
    /// segment initialisation traps).
    Instantiate(ValidModule<'b>),
    /// Read an exported global.
    Get {
        /// The module, `None` for the current one.
        module: Option<&'a str>,
        /// The export name.
        global: &'a str,
    },
}

/// Runs the directives that need a running module. One executor per script
/// file; see the module docs.
pub trait Executor {
    /// `(module ...)`: instantiate `module` (registering `module.id` if any)
    /// and make it the current module. An error while instantiating is a
    /// failure (the spec uses `assert_trap`/`assert_unlinkable` when one is
    /// expected).
    fn instantiate(&mut self, module: &ValidModule<'_>) -> Outcome {
        let _ = module;
        not_run()
    }

    /// `(module definition ...)`: remember `module` under `module.id` for a
    /// later `(module instance ...)`, without instantiating it.
    fn define(&mut self, module: &ValidModule<'_>) -> Outcome {
        let _ = module;
        not_run()
    }

    /// `(module instance $instance $definition)`.
    fn module_instance(&mut self, instance: Option<&str>, definition: Option<&str>) -> Outcome {
        let _ = (instance, definition);
        not_run()
    }

    /// `(register "name" $module)`: make a module's exports importable as
    /// `name` (`module: None` means the current module).
    fn register(&mut self, name: &str, module: Option<&str>) -> Outcome {
        let _ = (name, module);
        not_run()
    }

    /// A bare `(invoke ...)`: it must not trap.
    fn invoke(&mut self, call: &WastInvoke<'_>) -> Outcome {
        let _ = call;
        not_run()
    }

    /// `(assert_return exec results...)`.
    fn assert_return(&mut self, exec: Exec<'_, '_>, results: &[WastRet<'_>]) -> Outcome {
        let _ = (exec, results);
        not_run()
    }

    /// `(assert_trap exec "message")`.
    fn assert_trap(&mut self, exec: Exec<'_, '_>, message: &str) -> Outcome {
        let _ = (exec, message);
        not_run()
    }

    /// `(assert_exhaustion call "message")`, e.g. "call stack exhausted".
    fn assert_exhaustion(&mut self, call: &WastInvoke<'_>, message: &str) -> Outcome {
        let _ = (call, message);
        not_run()
    }

    /// `(assert_unlinkable module "message")`: instantiating must fail with a
    /// link error (the module itself is valid).
    fn assert_unlinkable(&mut self, module: &ValidModule<'_>, message: &str) -> Outcome {
        let _ = (module, message);
        not_run()
    }

    /// `(assert_exception exec)` (exceptions proposal).
    fn assert_exception(&mut self, exec: Exec<'_, '_>) -> Outcome {
        let _ = exec;
        not_run()
    }

    /// `(assert_suspension exec "message")` (stack switching proposal).
    fn assert_suspension(&mut self, exec: Exec<'_, '_>, message: &str) -> Outcome {
        let _ = (exec, message);
        not_run()
    }

    /// `(thread $name (shared (module $m))? ...)`: return an executor for the
    /// new thread that sees `shared_module` (a module of this executor) under
    /// the same name; the harness runs the thread's directives with it on an
    /// OS thread of its own until the matching `(wait $name)`. `None` (the
    /// default) means threads are not supported: the thread's directives are
    /// then still parsed, decoded and validated, but not executed.
    fn spawn_thread(
        &mut self,
        name: &str,
        shared_module: Option<&str>,
    ) -> Option<Box<dyn Executor + Send>> {
        let _ = (name, shared_module);
        None
    }
}

/// Today's executor: decodes and validates only, runs nothing.
#[derive(Debug, Default)]
pub struct DecodeOnly;

impl Executor for DecodeOnly {}
