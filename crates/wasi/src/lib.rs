//! # weft-wasi
//!
//! WASI preview1 (`wasi_snapshot_preview1`) for the [weft] runtime:
//! the host functions that programs compiled for `wasm32-wasi` /
//! `wasm32-wasip1` (C with wasi-libc, Rust, ...) import.
//!
//! * [`WasiCtxBuilder`] describes what a guest gets: arguments, environment
//!   variables, stdio, pre-opened directories (optionally read-only) and
//!   sockets. Nothing else of the host is reachable: files only through
//!   pre-opened directories, resolved with `openat2(RESOLVE_BENEATH)` or a
//!   descriptor-relative walk so that `..`, absolute paths and symlinks —
//!   including ones the guest creates, and races — cannot leave them.
//! * [`add_to_linker`] defines every preview1 function in a
//!   [`weft::Linker`], finding the [`WasiCtx`] in the store's data.
//! * `proc_exit` ends the run with an [`I32Exit`] error (not the host
//!   process); [`I32Exit::from_error`] turns it back into the status.
//! * [`WasiCtxBuilder::deadline`] bounds blocking calls (`poll_oneoff`,
//!   reads from pipes, terminals and sockets): at the deadline the run ends
//!   with [`DeadlineExceeded`], so a store timeout also stops a guest that is
//!   waiting in the host. Interrupting the store (`InterruptHandle::interrupt`)
//!   stops such a call within about 5 ms too: the run ends with
//!   [`Interrupted`].
//! * [`run_command`] does all of it for a command module's `_start`.
//!
//! ```no_run
//! use weft::{Engine, Linker, Module, Store};
//! use weft_wasi::{I32Exit, WasiCtx, WasiCtxBuilder};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let engine = Engine::default();
//!     let module = Module::from_file(&engine, "hello.wasm")?;
//!
//!     let ctx = WasiCtxBuilder::new()
//!         .args(["hello.wasm", "world"])
//!         .env("GREETING", "hi")
//!         .inherit_stdio()
//!         .preopened_dir("./data", ".", false)?
//!         .preopened_dir("/usr/share/dict", "/dict", true)?
//!         .build();
//!
//!     // The context can live anywhere in the store's data.
//!     struct Host {
//!         wasi: WasiCtx,
//!     }
//!     let mut store = Store::new(&engine, Host { wasi: ctx });
//!     let mut linker = Linker::new();
//!     weft_wasi::add_to_linker(&mut linker, |h: &mut Host| &mut h.wasi)?;
//!     let instance = linker.instantiate(&mut store, &module)?;
//!     let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
//!     let status = match start.call(&mut store, ()) {
//!         Ok(()) => 0,
//!         Err(e) => match I32Exit::from_error(&e) {
//!             Some(status) => status,
//!             None => return Err(e.into()), // a trap or another error
//!         },
//!     };
//!     std::process::exit(status);
//! }
//! ```
//!
//! Platform: Linux (`openat2` is used when the kernel has it, 5.6 and
//! later; older kernels get the descriptor-relative walk).
#![deny(missing_docs)]

pub mod abi;
mod ctx;
mod errno;
mod mem;
mod preview1;
mod sandbox;
mod table;

use weft::{Caller, Engine, Extern, FuncType, Linker, Memory, Module, Store, Val, ValType};

pub use abi::Errno;
pub use ctx::{DeadlineExceeded, I32Exit, Interrupted, OutputPipe, WasiCtx, WasiCtxBuilder};
pub use errno::from_raw_os_error;

use ctx::State;
use mem::GuestMemory;

/// The import module name of WASI preview1.
pub const MODULE: &str = "wasi_snapshot_preview1";

impl I32Exit {
    /// The exit status, if `error` came from a guest's `proc_exit`.
    pub fn from_error(error: &weft::Error) -> Option<i32> {
        match error {
            weft::Error::Host(e) => e.downcast_ref::<I32Exit>().map(|x| x.0),
            _ => None,
        }
    }
}

impl DeadlineExceeded {
    /// Whether `error` is a [`DeadlineExceeded`] from a WASI call.
    pub fn matches(error: &weft::Error) -> bool {
        matches!(error, weft::Error::Host(e) if e.is::<DeadlineExceeded>())
    }
}

/// Runs a WASI command: instantiates `module` with WASI (and nothing else)
/// in a new store holding `ctx`, and calls its `_start` export.
///
/// Returns the exit status: 0 when `_start` returns, the status given to
/// `proc_exit` otherwise.
///
/// # Errors
/// Instantiation errors (including unknown imports), a missing `_start`,
/// traps, and errors from host functions other than `proc_exit`.
pub fn run_command(engine: &Engine, module: &Module, ctx: WasiCtx) -> weft::Result<i32> {
    let mut store = Store::new(engine, ctx);
    let mut linker = Linker::new();
    add_to_linker(&mut linker, |c: &mut WasiCtx| c)?;
    let instance = linker.instantiate(&mut store, module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(0),
        Err(e) => match I32Exit::from_error(&e) {
            Some(status) => Ok(status),
            None => Err(e),
        },
    }
}

/// Guest memory reached through a [`Caller`]: the calling instance's
/// export named `memory`, looked up on first use.
struct CallerMemory<'a, 'c, T> {
    caller: &'a mut Caller<'c, T>,
    memory: Option<Memory>,
    missing: bool,
}

impl<T> CallerMemory<'_, '_, T> {
    fn memory(&mut self) -> Result<Memory, Errno> {
        if let Some(m) = self.memory {
            return Ok(m);
        }
        match self.caller.get_export("memory") {
            Some(Extern::Memory(m)) => {
                self.memory = Some(m);
                Ok(m)
            }
            _ => {
                self.missing = true;
                Err(Errno::Fault)
            }
        }
    }
}

impl<T> GuestMemory for CallerMemory<'_, '_, T> {
    fn size(&mut self) -> usize {
        match self.memory() {
            Ok(m) => m.data_size(&mut *self.caller).unwrap_or(0),
            Err(_) => 0,
        }
    }
    fn read_raw(&mut self, ptr: usize, buf: &mut [u8]) -> Result<(), Errno> {
        let m = self.memory()?;
        m.read(&mut *self.caller, ptr, buf)
            .map_err(|_| Errno::Fault)
    }
    fn write_raw(&mut self, ptr: usize, data: &[u8]) -> Result<(), Errno> {
        let m = self.memory()?;
        m.write(&mut *self.caller, ptr, data)
            .map_err(|_| Errno::Fault)
    }
}

/// Moves the WASI state out of the store's data for the length of one call
/// (so guest memory, also reached through the store, can be used at the
/// same time) and puts it back, even if the call panics.
struct Borrowed<'a, 'c, T, G: Fn(&mut T) -> &mut WasiCtx> {
    caller: &'a mut Caller<'c, T>,
    get: G,
    state: Option<Box<State>>,
}

impl<T, G: Fn(&mut T) -> &mut WasiCtx> Drop for Borrowed<'_, '_, T, G> {
    fn drop(&mut self) {
        if let Some(s) = self.state.take() {
            (self.get)(self.caller.data_mut()).state = Some(s);
        }
    }
}

/// Runs one WASI function and turns its outcome into the errno returned to
/// the guest.
fn call<T>(
    caller: &mut Caller<'_, T>,
    get: impl Fn(&mut T) -> &mut WasiCtx,
    f: impl FnOnce(&mut State, &mut dyn GuestMemory) -> Result<(), Errno>,
) -> weft::Result<i32> {
    let state = get(caller.data_mut()).state.take().ok_or_else(|| {
        weft::Error::msg("the WASI context is already in use (a re-entrant WASI call)")
    })?;
    let instance = caller.instance();
    let mut state = state;
    if state.interrupt.is_none() {
        state.interrupt = Some(caller.interrupt_handle());
    }
    let cached = match (state.memory_cache, instance) {
        (Some((i, m)), Some(c)) if i == c => Some(m),
        _ => None,
    };
    let mut b = Borrowed {
        caller,
        get,
        state: Some(state),
    };
    let mut mem = CallerMemory {
        caller: &mut *b.caller,
        memory: cached,
        missing: false,
    };
    let state = b.state.as_mut().expect("state was just put here");
    let r = f(state, &mut mem);
    if let (Some(i), Some(m)) = (instance, mem.memory) {
        state.memory_cache = Some((i, m));
    }
    if std::mem::take(&mut state.deadline_hit) {
        return Err(weft::Error::Host(Box::new(DeadlineExceeded)));
    }
    if std::mem::take(&mut state.interrupted_hit) {
        return Err(weft::Error::Host(Box::new(Interrupted)));
    }
    if mem.missing {
        return Err(weft::Error::msg(
            "a WASI function needs the calling module to export its memory as `memory`",
        ));
    }
    Ok(match r {
        Ok(()) => 0,
        Err(e) => i32::from(e.raw()),
    })
}

/// Narrows an `i32` argument that the witx declares as `u8`/`u16`.
fn narrow<N: TryFrom<u32>>(v: i32) -> Result<N, Errno> {
    N::try_from(v as u32).map_err(|_| Errno::Inval)
}

/// Defines every function of `wasi_snapshot_preview1` in `linker`.
///
/// `get` finds the [`WasiCtx`] in the store's data (`|cx: &mut WasiCtx| cx`
/// when the data is the context itself). The functions use the calling
/// module's exported `memory`; calling one (other than `proc_exit`,
/// `sched_yield` and the like) from a module without it traps.
///
/// # Errors
/// None at present; the `Result` leaves room for definitions that can fail.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&mut T) -> &mut WasiCtx + Copy + Send + Sync + 'static,
) -> weft::Result<()> {
    // Every function: `name(args...) -> errno`, with the body running on
    // the state `$st` and guest memory `$m`.
    macro_rules! wasi {
        ($name:literal, |$st:ident, $m:ident $(, $a:ident : $t:ty)*| $body:expr) => {
            linker.func_wrap(
                MODULE,
                $name,
                move |mut caller: Caller<'_, T>, $($a: $t),*| -> weft::Result<i32> {
                    call(&mut caller, get, |$st, $m| {
                        #[allow(unused_variables, reason = "not every function uses memory")]
                        let $m = $m;
                        $body
                    })
                },
            )?;
        };
    }

    wasi!("args_get", |st, m, argv: i32, buf: i32| st.args_get(
        m,
        argv as u32,
        buf as u32
    ));
    wasi!("args_sizes_get", |st, m, argc: i32, size: i32| {
        st.args_sizes_get(m, argc as u32, size as u32)
    });
    wasi!("environ_get", |st, m, env: i32, buf: i32| st
        .environ_get(m, env as u32, buf as u32));
    wasi!("environ_sizes_get", |st, m, n: i32, size: i32| {
        st.environ_sizes_get(m, n as u32, size as u32)
    });
    wasi!("clock_res_get", |st, m, id: i32, out: i32| st
        .clock_res_get(m, id as u32, out as u32));
    wasi!("clock_time_get", |st,
                             m,
                             id: i32,
                             precision: i64,
                             out: i32| {
        st.clock_time_get(m, id as u32, precision as u64, out as u32)
    });
    wasi!("random_get", |st, m, buf: i32, len: i32| st
        .random_get(m, buf as u32, len as u32));

    wasi!("fd_advise", |st,
                        m,
                        fd: i32,
                        offset: i64,
                        len: i64,
                        advice: i32| {
        st.fd_advise(fd as u32, offset as u64, len as u64, narrow(advice)?)
    });
    wasi!("fd_allocate", |st, m, fd: i32, offset: i64, len: i64| {
        st.fd_allocate(fd as u32, offset as u64, len as u64)
    });
    wasi!("fd_close", |st, m, fd: i32| st.fd_close(fd as u32));
    wasi!("fd_datasync", |st, m, fd: i32| st.fd_datasync(fd as u32));
    wasi!("fd_fdstat_get", |st, m, fd: i32, out: i32| st
        .fd_fdstat_get(m, fd as u32, out as u32));
    wasi!("fd_fdstat_set_flags", |st, m, fd: i32, flags: i32| {
        st.fd_fdstat_set_flags(fd as u32, narrow(flags)?)
    });
    wasi!(
        "fd_fdstat_set_rights",
        |st, m, fd: i32, base: i64, inh: i64| {
            st.fd_fdstat_set_rights(fd as u32, base as u64, inh as u64)
        }
    );
    wasi!("fd_filestat_get", |st, m, fd: i32, out: i32| {
        st.fd_filestat_get(m, fd as u32, out as u32)
    });
    wasi!("fd_filestat_set_size", |st, m, fd: i32, size: i64| {
        st.fd_filestat_set_size(fd as u32, size as u64)
    });
    wasi!(
        "fd_filestat_set_times",
        |st, m, fd: i32, atim: i64, mtim: i64, flags: i32| {
            st.fd_filestat_set_times(fd as u32, atim as u64, mtim as u64, narrow(flags)?)
        }
    );
    wasi!("fd_pread", |st,
                       m,
                       fd: i32,
                       iovs: i32,
                       n: i32,
                       offset: i64,
                       out: i32| {
        st.fd_pread(
            m,
            fd as u32,
            iovs as u32,
            n as u32,
            offset as u64,
            out as u32,
        )
    });
    wasi!("fd_prestat_get", |st, m, fd: i32, out: i32| st
        .fd_prestat_get(m, fd as u32, out as u32));
    wasi!(
        "fd_prestat_dir_name",
        |st, m, fd: i32, path: i32, len: i32| {
            st.fd_prestat_dir_name(m, fd as u32, path as u32, len as u32)
        }
    );
    wasi!("fd_pwrite", |st,
                        m,
                        fd: i32,
                        iovs: i32,
                        n: i32,
                        offset: i64,
                        out: i32| {
        st.fd_pwrite(
            m,
            fd as u32,
            iovs as u32,
            n as u32,
            offset as u64,
            out as u32,
        )
    });
    wasi!("fd_read", |st, m, fd: i32, iovs: i32, n: i32, out: i32| {
        st.fd_read(m, fd as u32, iovs as u32, n as u32, out as u32)
    });
    wasi!("fd_readdir", |st,
                         m,
                         fd: i32,
                         buf: i32,
                         len: i32,
                         cookie: i64,
                         out: i32| {
        st.fd_readdir(
            m,
            fd as u32,
            buf as u32,
            len as u32,
            cookie as u64,
            out as u32,
        )
    });
    wasi!("fd_renumber", |st, m, fd: i32, to: i32| st
        .fd_renumber(fd as u32, to as u32));
    wasi!("fd_seek", |st,
                      m,
                      fd: i32,
                      offset: i64,
                      whence: i32,
                      out: i32| {
        st.fd_seek(m, fd as u32, offset, narrow(whence)?, out as u32)
    });
    wasi!("fd_sync", |st, m, fd: i32| st.fd_sync(fd as u32));
    wasi!("fd_tell", |st, m, fd: i32, out: i32| st
        .fd_tell(m, fd as u32, out as u32));
    wasi!("fd_write", |st, m, fd: i32, iovs: i32, n: i32, out: i32| {
        st.fd_write(m, fd as u32, iovs as u32, n as u32, out as u32)
    });

    wasi!(
        "path_create_directory",
        |st, m, fd: i32, path: i32, len: i32| {
            st.path_create_directory(m, fd as u32, path as u32, len as u32)
        }
    );
    wasi!(
        "path_filestat_get",
        |st, m, fd: i32, flags: i32, path: i32, len: i32, out: i32| {
            st.path_filestat_get(
                m,
                fd as u32,
                flags as u32,
                path as u32,
                len as u32,
                out as u32,
            )
        }
    );
    wasi!(
        "path_filestat_set_times",
        |st, m, fd: i32, flags: i32, path: i32, len: i32, atim: i64, mtim: i64, fst: i32| {
            st.path_filestat_set_times(
                m,
                fd as u32,
                flags as u32,
                path as u32,
                len as u32,
                atim as u64,
                mtim as u64,
                narrow(fst)?,
            )
        }
    );
    wasi!("path_link", |st,
                        m,
                        old_fd: i32,
                        old_flags: i32,
                        old: i32,
                        old_len: i32,
                        new_fd: i32,
                        new: i32,
                        new_len: i32| {
        st.path_link(
            m,
            old_fd as u32,
            old_flags as u32,
            old as u32,
            old_len as u32,
            new_fd as u32,
            new as u32,
            new_len as u32,
        )
    });
    wasi!("path_readlink", |st,
                            m,
                            fd: i32,
                            path: i32,
                            len: i32,
                            buf: i32,
                            buf_len: i32,
                            out: i32| {
        st.path_readlink(
            m,
            fd as u32,
            path as u32,
            len as u32,
            buf as u32,
            buf_len as u32,
            out as u32,
        )
    });
    wasi!(
        "path_remove_directory",
        |st, m, fd: i32, path: i32, len: i32| {
            st.path_remove_directory(m, fd as u32, path as u32, len as u32)
        }
    );
    wasi!("path_rename", |st,
                          m,
                          fd: i32,
                          old: i32,
                          old_len: i32,
                          new_fd: i32,
                          new: i32,
                          new_len: i32| {
        st.path_rename(
            m,
            fd as u32,
            old as u32,
            old_len as u32,
            new_fd as u32,
            new as u32,
            new_len as u32,
        )
    });
    wasi!("path_symlink", |st,
                           m,
                           old: i32,
                           old_len: i32,
                           fd: i32,
                           new: i32,
                           new_len: i32| {
        st.path_symlink(
            m,
            old as u32,
            old_len as u32,
            fd as u32,
            new as u32,
            new_len as u32,
        )
    });
    wasi!("path_unlink_file", |st, m, fd: i32, path: i32, len: i32| {
        st.path_unlink_file(m, fd as u32, path as u32, len as u32)
    });

    wasi!("poll_oneoff", |st,
                          m,
                          input: i32,
                          output: i32,
                          n: i32,
                          out: i32| {
        st.poll_oneoff(m, input as u32, output as u32, n as u32, out as u32)
    });
    wasi!("proc_raise", |st, m, _sig: i32| {
        let _ = st;
        Err(Errno::Notsup)
    });
    wasi!("sched_yield", |st, m| {
        let _ = st;
        std::thread::yield_now();
        Ok(())
    });

    wasi!("sock_accept", |st, m, fd: i32, flags: i32, out: i32| {
        st.sock_accept(m, fd as u32, narrow(flags)?, out as u32)
    });
    wasi!("sock_recv", |st,
                        m,
                        fd: i32,
                        iovs: i32,
                        n: i32,
                        flags: i32,
                        out_len: i32,
                        out_flags: i32| {
        st.sock_recv(
            m,
            fd as u32,
            iovs as u32,
            n as u32,
            narrow(flags)?,
            out_len as u32,
            out_flags as u32,
        )
    });
    wasi!("sock_send", |st,
                        m,
                        fd: i32,
                        iovs: i32,
                        n: i32,
                        flags: i32,
                        out: i32| {
        st.sock_send(
            m,
            fd as u32,
            iovs as u32,
            n as u32,
            narrow(flags)?,
            out as u32,
        )
    });
    wasi!("sock_shutdown", |st, m, fd: i32, how: i32| {
        st.sock_shutdown(fd as u32, narrow(how)?)
    });

    // `proc_exit` ends the run: the error reaches the embedder unchanged.
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |_caller: Caller<'_, T>, status: i32| -> weft::Result<()> {
            Err(weft::Error::Host(Box::new(I32Exit(status))))
        },
    )?;

    // `path_open` has nine parameters, more than typed host functions take.
    use ValType::{I32, I64};
    linker.func_new(
        MODULE,
        "path_open",
        FuncType::new([I32, I32, I32, I32, I32, I64, I64, I32, I32], [I32]),
        move |mut caller: Caller<'_, T>, p: &[Val], r: &mut [Val]| -> weft::Result<()> {
            let a = |i: usize| p.get(i).and_then(Val::i32).unwrap_or(0);
            let b = |i: usize| p.get(i).and_then(Val::i64).unwrap_or(0) as u64;
            let errno = call(&mut caller, get, |st, m| {
                st.path_open(
                    m,
                    a(0) as u32,
                    a(1) as u32,
                    a(2) as u32,
                    a(3) as u32,
                    narrow(a(4))?,
                    b(5),
                    b(6),
                    narrow(a(7))?,
                    a(8) as u32,
                )
            })?;
            if let Some(slot) = r.first_mut() {
                *slot = Val::I32(errno);
            }
            Ok(())
        },
    )?;
    Ok(())
}
