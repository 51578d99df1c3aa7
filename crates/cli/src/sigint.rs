//! Ctrl-C: the first SIGINT interrupts the running guest (it traps with
//! "interrupt" and weft exits with 130 after printing the backtrace); a
//! second one ends the process at once.
//!
//! The signal handler only does async-signal-safe things: it counts, writes
//! one byte to a pipe, or calls `_exit`. A watcher thread reads the pipe and
//! calls [`InterruptHandle::interrupt`], which may lock and allocate.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use weft::InterruptHandle;

use crate::SIGINT_EXIT;

/// The pipe's write end (-1 until installed).
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// SIGINTs received.
static COUNT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigint(_sig: libc::c_int) {
    if COUNT.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: `_exit` is async-signal-safe and ends the process.
        unsafe { libc::_exit(i32::from(SIGINT_EXIT)) };
    }
    let fd = PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: `write` is async-signal-safe; `b` is a live byte.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// Watches for Ctrl-C while a guest runs.
pub struct Watch {
    handle: Arc<Mutex<Option<InterruptHandle>>>,
}

impl Watch {
    /// Installs the handler and starts the watcher thread. If that fails
    /// (no pipe), Ctrl-C keeps its default meaning: the process ends.
    pub fn new() -> Watch {
        let handle: Arc<Mutex<Option<InterruptHandle>>> = Arc::default();
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors `pipe2` writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Watch { handle };
        }
        let [read_end, write_end] = fds;
        PIPE.store(write_end, Ordering::SeqCst);
        let h = Arc::clone(&handle);
        let spawned = std::thread::Builder::new()
            .name("weft-sigint".into())
            .spawn(move || {
                let mut b = 0u8;
                // SAFETY: reading one byte into a live local from our pipe.
                while unsafe { libc::read(read_end, (&mut b as *mut u8).cast(), 1) } != 0 {
                    if let Some(h) = h.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                        h.interrupt();
                    }
                }
            });
        if spawned.is_err() {
            return Watch { handle };
        }
        // SAFETY: a zeroed sigaction with a plain handler is valid; the
        // handler only uses async-signal-safe calls. No SA_RESTART: a
        // blocking host call sees EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigint as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        }
        Watch { handle }
    }

    /// From now on, Ctrl-C interrupts this store (at once, if it already
    /// came).
    pub fn arm(&self, h: InterruptHandle) {
        // Store first, then look: a Ctrl-C in between is seen by one of the
        // two (or both; a second interrupt does nothing more).
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some(h.clone());
        if self.fired() {
            h.interrupt();
        }
    }

    /// Whether Ctrl-C was pressed.
    pub fn fired(&self) -> bool {
        COUNT.load(Ordering::SeqCst) > 0
    }
}
