//! The WASI context: arguments, environment and descriptors of one guest.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustix::fs::{Mode, OFlags};

use crate::abi::{filetype, rights};
use crate::table::{Entry, Kind, Table};

/// The state of one WASI guest: its arguments, environment variables and
/// descriptor table (stdio, pre-opened directories and sockets, and
/// everything the guest opens).
///
/// Build one with [`WasiCtxBuilder`] and keep it in the store's data; the
/// functions that [`add_to_linker`](crate::add_to_linker) defines find it
/// through the accessor given there.
pub struct WasiCtx {
    /// `None` only while a WASI function is running (the state is moved out
    /// so that guest memory can be accessed at the same time).
    pub(crate) state: Option<Box<State>>,
}

impl std::fmt::Debug for WasiCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasiCtx").finish_non_exhaustive()
    }
}

impl WasiCtx {
    /// A builder; the same as [`WasiCtxBuilder::new`].
    pub fn builder() -> WasiCtxBuilder {
        WasiCtxBuilder::new()
    }

    /// Sets (or with `None` clears) the instant at which blocking WASI calls
    /// give up; see [`WasiCtxBuilder::deadline`].
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        if let Some(st) = self.state.as_mut() {
            st.deadline = deadline;
        }
    }
}

pub(crate) struct State {
    pub(crate) args: Vec<Vec<u8>>,
    /// `NAME=VALUE` strings.
    pub(crate) env: Vec<Vec<u8>>,
    pub(crate) table: Table,
    /// Blocking calls give up at this instant.
    pub(crate) deadline: Option<Instant>,
    /// Set by a call that gave up because of the deadline: the glue then
    /// ends the run with [`DeadlineExceeded`].
    pub(crate) deadline_hit: bool,
    /// The last calling instance and its exported memory: looked up by name
    /// once per instance, not once per call.
    pub(crate) memory_cache: Option<(weft::Instance, weft::Memory)>,
    /// The store's interrupt handle (taken from the first call): blocking
    /// calls give up when the store is interrupted.
    pub(crate) interrupt: Option<weft::InterruptHandle>,
    /// Set by a call that gave up because the store was interrupted: the
    /// glue then ends the run with [`Interrupted`].
    pub(crate) interrupted_hit: bool,
}

enum Stdio {
    Null,
    Inherit,
    Reader(Box<dyn Read + Send>),
    Writer(Box<dyn Write + Send>),
}

/// Builds a [`WasiCtx`].
///
/// By default a guest has no arguments, no environment, an empty stdin,
/// stdout and stderr that discard what is written, and no access to any
/// file or socket.
///
/// ```
/// use weft_wasi::{OutputPipe, WasiCtxBuilder};
///
/// # fn main() -> std::io::Result<()> {
/// let dir = std::env::temp_dir();
/// let out = OutputPipe::new();
/// let ctx = WasiCtxBuilder::new()
///     .arg("prog.wasm")
///     .args(["--verbose", "input.txt"])
///     .env("LANG", "C")
///     .stdout(out.clone())
///     .inherit_stderr()
///     .preopened_dir(&dir, ".", false)?
///     .build();
/// # let _ = ctx;
/// # Ok(())
/// # }
/// ```
pub struct WasiCtxBuilder {
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    preopens: Vec<(OwnedFd, Vec<u8>, bool)>,
    sockets: Vec<OwnedFd>,
    deadline: Option<Instant>,
}

impl Default for WasiCtxBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for WasiCtxBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasiCtxBuilder")
            .field("args", &self.args.len())
            .field("env", &self.env.len())
            .field("preopens", &self.preopens.len())
            .finish_non_exhaustive()
    }
}

impl WasiCtxBuilder {
    /// A builder for a guest with nothing: see the type's documentation.
    pub fn new() -> Self {
        WasiCtxBuilder {
            args: Vec::new(),
            env: Vec::new(),
            stdin: Stdio::Null,
            stdout: Stdio::Null,
            stderr: Stdio::Null,
            preopens: Vec::new(),
            sockets: Vec::new(),
            deadline: None,
        }
    }

    /// Appends one argument. The first argument is the program name
    /// (`argv[0]`). A NUL byte ends the argument for C programs.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().as_bytes().to_vec());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Sets an environment variable (replacing an earlier one of that name).
    pub fn env(&mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        let name = name.as_ref().as_bytes();
        self.env
            .retain(|kv| !(kv.starts_with(name) && kv.get(name.len()) == Some(&b'=')));
        let mut kv = name.to_vec();
        kv.push(b'=');
        kv.extend_from_slice(value.as_ref().as_bytes());
        self.env.push(kv);
        self
    }

    /// Sets environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Gives the guest every environment variable of this process.
    pub fn inherit_env(&mut self) -> &mut Self {
        for (k, v) in std::env::vars_os() {
            self.env(k, v);
        }
        self
    }

    /// The guest's stdin reads this process's stdin.
    pub fn inherit_stdin(&mut self) -> &mut Self {
        self.stdin = Stdio::Inherit;
        self
    }

    /// The guest's stdout writes to this process's stdout.
    pub fn inherit_stdout(&mut self) -> &mut Self {
        self.stdout = Stdio::Inherit;
        self
    }

    /// The guest's stderr writes to this process's stderr.
    pub fn inherit_stderr(&mut self) -> &mut Self {
        self.stderr = Stdio::Inherit;
        self
    }

    /// stdin, stdout and stderr are this process's.
    pub fn inherit_stdio(&mut self) -> &mut Self {
        self.inherit_stdin().inherit_stdout().inherit_stderr()
    }

    /// The guest's stdin reads from `r` (e.g. `std::io::Cursor::new(bytes)`).
    pub fn stdin(&mut self, r: impl Read + Send + 'static) -> &mut Self {
        self.stdin = Stdio::Reader(Box::new(r));
        self
    }

    /// The guest's stdout writes to `w` (e.g. an [`OutputPipe`]).
    pub fn stdout(&mut self, w: impl Write + Send + 'static) -> &mut Self {
        self.stdout = Stdio::Writer(Box::new(w));
        self
    }

    /// The guest's stderr writes to `w` (e.g. an [`OutputPipe`]).
    pub fn stderr(&mut self, w: impl Write + Send + 'static) -> &mut Self {
        self.stderr = Stdio::Writer(Box::new(w));
        self
    }

    /// Gives the guest the host directory `host_path`, under the name
    /// `guest_path` (what the guest's libc matches paths against: `.` for
    /// relative paths, or an absolute name such as `/data`).
    ///
    /// Nothing outside `host_path` is reachable through it: not by `..`,
    /// absolute paths or symlinks. With `readonly`, the guest can read
    /// files and list directories but not create, write, rename, remove or
    /// change anything: opening a file for writing and those calls fail
    /// with `ENOTCAPABLE`, and the descriptor's rights show it.
    ///
    /// Pre-opened directories get descriptors 3, 4, ... in the order they
    /// are added.
    ///
    /// # Errors
    /// The directory cannot be opened (it does not exist, is not a
    /// directory, or cannot be read); the message names the path.
    pub fn preopened_dir(
        &mut self,
        host_path: impl AsRef<Path>,
        guest_path: impl AsRef<str>,
        readonly: bool,
    ) -> io::Result<&mut Self> {
        let host_path = host_path.as_ref();
        let fd = rustix::fs::open(
            host_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            let e = io::Error::from(e);
            io::Error::new(
                e.kind(),
                format!("cannot pre-open directory {}: {e}", host_path.display()),
            )
        })?;
        self.preopens
            .push((fd, guest_path.as_ref().as_bytes().to_vec(), readonly));
        Ok(self)
    }

    /// Gives the guest a socket: a listening socket (for `sock_accept`) or
    /// a connected one (for `sock_recv`/`sock_send`/`sock_shutdown`, and
    /// `fd_read`/`fd_write`). Sockets get descriptors after the pre-opened
    /// directories, in the order they are added.
    ///
    /// # Errors
    /// `fd` is not a socket.
    pub fn preopened_socket(&mut self, fd: impl Into<OwnedFd>) -> io::Result<&mut Self> {
        let fd = fd.into();
        let st = rustix::fs::fstat(&fd)?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "preopened_socket: the descriptor is not a socket",
            ));
        }
        self.sockets.push(fd);
        Ok(self)
    }

    /// Blocking WASI calls stop waiting at `at`: `poll_oneoff` (sleeps and
    /// waits on descriptors), and reads, writes and `sock_accept` on
    /// blocking pipes, terminals and sockets. A call that reaches the
    /// deadline ends the run with a [`DeadlineExceeded`] error.
    ///
    /// Wasm code itself is interrupted by the store (`Store::set_deadline`
    /// or `set_timeout`); give both the same instant so that a guest is
    /// stopped on time whether it is computing or waiting in the host.
    /// (In-process streams given with [`WasiCtxBuilder::stdin`] are not
    /// interrupted.)
    pub fn deadline(&mut self, at: Instant) -> &mut Self {
        self.deadline = Some(at);
        self
    }

    /// Builds the context. The builder is left empty (as after
    /// [`WasiCtxBuilder::new`]).
    pub fn build(&mut self) -> WasiCtx {
        let b = std::mem::take(self);
        let mut table = Table::default();
        for (fd, stdio) in [(0u32, b.stdin), (1, b.stdout), (2, b.stderr)] {
            table.insert_at(fd, stdio_entry(fd, stdio));
        }
        for (fd, name, readonly) in b.preopens {
            let mask = if readonly {
                rights::ALL & !rights::MUTATING
            } else {
                rights::ALL
            };
            if let Ok(mut e) = Entry::host(fd, mask) {
                e.preopen = Some(name);
                // The table is dense up to here, so this is the next number.
                let _ = table.insert(e);
            }
        }
        for fd in b.sockets {
            if let Ok(e) = Entry::host(fd, rights::ALL) {
                let _ = table.insert(e);
            }
        }
        WasiCtx {
            state: Some(Box::new(State {
                args: b.args,
                env: b.env,
                table,
                deadline: b.deadline,
                deadline_hit: false,
                memory_cache: None,
                interrupt: None,
                interrupted_hit: false,
            })),
        }
    }
}

fn stream_entry(kind: Kind) -> Entry {
    Entry {
        kind,
        filetype: filetype::UNKNOWN,
        rights_base: rights::STREAM,
        rights_inheriting: 0,
        stream_flags: 0,
        shared_description: false,
        preopen: None,
    }
}

fn stdio_entry(fd: u32, stdio: Stdio) -> Entry {
    let null = |fd: u32| {
        if fd == 0 {
            Kind::Reader(Box::new(io::empty()))
        } else {
            Kind::Writer(Box::new(io::sink()))
        }
    };
    match stdio {
        Stdio::Null => stream_entry(null(fd)),
        Stdio::Reader(r) => stream_entry(Kind::Reader(r)),
        Stdio::Writer(w) => stream_entry(Kind::Writer(w)),
        Stdio::Inherit => {
            let dup = match fd {
                0 => io::stdin().as_fd().try_clone_to_owned(),
                1 => io::stdout().as_fd().try_clone_to_owned(),
                _ => io::stderr().as_fd().try_clone_to_owned(),
            };
            // The host's stdio descriptor may be closed: the guest then gets
            // a null stream.
            match dup.ok().and_then(|d| Entry::host(d, rights::ALL).ok()) {
                Some(mut e) => {
                    e.shared_description = true;
                    e
                }
                None => stream_entry(null(fd)),
            }
        }
    }
}

/// The error that ends a run when the store was interrupted
/// (`InterruptHandle::interrupt`) while the guest was blocked in a WASI call
/// (reading a pipe, `poll_oneoff`, sleeping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted during a blocking WASI call")
    }
}

impl std::error::Error for Interrupted {}

impl Interrupted {
    /// Whether `e` is this error.
    pub fn matches(e: &weft::Error) -> bool {
        matches!(e, weft::Error::Host(h) if h.downcast_ref::<Interrupted>().is_some())
    }
}

/// An in-memory output stream that can be cloned: give one clone to
/// [`WasiCtxBuilder::stdout`] (or `stderr`) and read what the guest wrote
/// from another.
#[derive(Clone, Default, Debug)]
pub struct OutputPipe(Arc<Mutex<Vec<u8>>>);

impl OutputPipe {
    /// An empty pipe.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Everything written so far, as (lossy) UTF-8.
    pub fn contents_string(&self) -> String {
        String::from_utf8_lossy(&self.contents()).into_owned()
    }
}

impl Write for OutputPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The error a guest's `proc_exit` produces: it ends the run (not the host
/// process) and reaches the embedder as `weft::Error::Host(Box<I32Exit>)`.
/// [`I32Exit::from_error`] extracts the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct I32Exit(pub i32);

impl std::fmt::Display for I32Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "guest exited with status {}", self.0)
    }
}

impl std::error::Error for I32Exit {}

/// The error that ends a run when a blocking WASI call reaches the deadline
/// set with [`WasiCtxBuilder::deadline`]. It reaches the embedder as
/// `weft::Error::Host(Box<DeadlineExceeded>)`; see
/// `DeadlineExceeded::matches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted: the deadline passed while the guest waited in a WASI call")
    }
}

impl std::error::Error for DeadlineExceeded {}
