//! Stopping running code: epochs, deadlines, interrupt handles and fuel.
//!
//! Compiled code (with `Config::epoch_interruption`, on by default) checks at
//! every function entry and loop header whether the engine's epoch has
//! reached the store's `epoch_deadline`; the slow path calls the
//! `EpochInterrupt` builtin ([`epoch_interrupt`]). Everything that stops a
//! call works by lowering that deadline to 0:
//!
//! - an epoch deadline set with `Store::set_epoch_deadline` (the engine's
//!   epoch is advanced by `Engine::increment_epoch`);
//! - a wall-clock deadline (`Store::set_deadline` / `set_timeout`), fired by
//!   one ticker thread per engine, started the first time a deadline is set;
//! - an [`InterruptHandle`], usable from any thread.
//!
//! Fuel (`Config::consume_fuel`) is separate: compiled code adds the cost of
//! what it executes to `fuel_consumed` and calls `OutOfFuel` when it becomes
//! non-negative.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};

use crate::sync::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize};
use std::time::Instant;

#[cfg(not(all(test, loom)))]
use weft_jit::VMOffsets;

/// The stack limit of an interrupted store: above any stack pointer, so
/// every prologue's check fails, and far enough below `usize::MAX` that the
/// prologue's `limit + frame size` does not overflow (see CONTRACT.md).
pub(crate) const INTERRUPTED_STACK_LIMIT: usize = usize::MAX / 2;

/// The contract's `VMStoreContext`, shared with interrupt handles and the
/// deadline ticker. Compiled code reads and writes the first four fields at
/// the offsets `weft_jit::VMOffsets` gives.
#[repr(C, align(64))]
pub(crate) struct VMStoreContext {
    pub(crate) stack_limit: AtomicUsize,
    pub(crate) fuel_consumed: AtomicI64,
    pub(crate) epoch_deadline: AtomicU64,
    pub(crate) epoch_ptr: AtomicPtr<u64>,
    /// One page compiled code reads a byte of at every check; unreadable
    /// while the store is interrupted.
    pub(crate) poll_page: AtomicPtr<u8>,
    /// The pending exception's handle (0: none); see `exception.rs`.
    pub(crate) exception: AtomicU64,
    /// The pending exception's tag identity.
    pub(crate) exception_tag: AtomicPtr<u8>,
    /// Set by an interrupt handle or an expired wall-clock deadline; cleared
    /// when the embedder sets a new deadline.
    pub(crate) interrupted: AtomicBool,
    /// Bumped whenever the wall-clock deadline changes, so that a stale
    /// ticker entry never fires.
    pub(crate) deadline_generation: AtomicU64,
    /// Cancels this store's `memory.atomic.wait` in progress when it is
    /// interrupted (a waiting thread runs no checks).
    pub(crate) wait_cancel: weft_memory::WaitCanceller,
    /// Where the poll page came from and goes back to.
    pages: Option<Arc<PollPages>>,
    /// Serialises everything that changes the interrupted state: an
    /// interrupt, clearing it, and the ticker's "is this deadline still
    /// current? then interrupt" (so a deadline cancelled meanwhile can never
    /// interrupt a later call, and the flag and the poll page always agree
    /// once each has finished).
    state_lock: crate::sync::Mutex<()>,
    /// Under loom, the poll page's protection (no real page is mapped).
    #[cfg(all(test, loom))]
    page_readable: AtomicBool,
}

/// An engine's poll pages: one readable page per store, mapped once and
/// reused, so creating a store costs no system call. A page goes back only
/// when its `VMStoreContext` is dropped, that is after the store *and* every
/// `InterruptHandle` of it are gone, so a stale handle can never interrupt
/// the page's next store.
#[derive(Default)]
pub(crate) struct PollPages {
    free: Mutex<Vec<usize>>,
}

/// Free pages kept per engine; more are unmapped.
const MAX_FREE_POLL_PAGES: usize = 4096;

impl PollPages {
    fn take(&self) -> crate::Result<*mut u8> {
        if let Some(p) = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(p as *mut u8);
        }
        // SAFETY: a fresh private anonymous mapping of one page, readable;
        // it goes back to `free` or is unmapped in `give_back`.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page_size(),
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(crate::Error::Resource(format!(
                "cannot map the store's interrupt page: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(page as *mut u8)
    }

    /// Returns a page that is readable again.
    fn give_back(&self, page: *mut u8) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < MAX_FREE_POLL_PAGES {
            free.push(page as usize);
        } else {
            drop(free);
            // SAFETY: a page mapped by `take`, used by no context any more.
            unsafe { libc::munmap(page as *mut libc::c_void, page_size()) };
        }
    }
}

impl Drop for PollPages {
    fn drop(&mut self) {
        for &p in self
            .free
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            // SAFETY: pages mapped by `take` and returned; nothing uses them.
            unsafe { libc::munmap(p as *mut libc::c_void, page_size()) };
        }
    }
}

#[cfg(not(all(test, loom)))]
const _: () = {
    assert!(
        std::mem::offset_of!(VMStoreContext, poll_page) == VMOffsets::STORE_CTX_POLL_PAGE as usize
    );
    assert!(
        std::mem::offset_of!(VMStoreContext, stack_limit)
            == VMOffsets::STORE_CTX_STACK_LIMIT as usize
    );
    assert!(
        std::mem::offset_of!(VMStoreContext, fuel_consumed)
            == VMOffsets::STORE_CTX_FUEL_CONSUMED as usize
    );
    assert!(
        std::mem::offset_of!(VMStoreContext, epoch_deadline)
            == VMOffsets::STORE_CTX_EPOCH_DEADLINE as usize
    );
    assert!(
        std::mem::offset_of!(VMStoreContext, epoch_ptr) == VMOffsets::STORE_CTX_EPOCH_PTR as usize
    );
    assert!(
        std::mem::offset_of!(VMStoreContext, exception) == VMOffsets::STORE_CTX_EXCEPTION as usize
    );
    assert!(
        std::mem::offset_of!(VMStoreContext, exception_tag)
            == VMOffsets::STORE_CTX_EXCEPTION_TAG as usize
    );
};

impl VMStoreContext {
    /// A store context; a poll page is taken from `pages` only if compiled
    /// code will read it, so stores of other engines cost nothing.
    pub(crate) fn new(
        epoch: *const std::sync::atomic::AtomicU64,
        pages: Option<&Arc<PollPages>>,
    ) -> crate::Result<Self> {
        let page = match pages {
            Some(p) => p.take()?,
            None => std::ptr::null_mut(),
        };
        Ok(VMStoreContext {
            stack_limit: AtomicUsize::new(0),
            fuel_consumed: AtomicI64::new(0),
            epoch_deadline: AtomicU64::new(u64::MAX),
            epoch_ptr: AtomicPtr::new(epoch as *mut u64),
            poll_page: AtomicPtr::new(page),
            exception: AtomicU64::new(0),
            exception_tag: AtomicPtr::new(std::ptr::null_mut()),
            interrupted: AtomicBool::new(false),
            deadline_generation: AtomicU64::new(0),
            wait_cancel: weft_memory::WaitCanceller::new(),
            pages: pages.cloned(),
            state_lock: crate::sync::Mutex::new(()),
            #[cfg(all(test, loom))]
            page_readable: AtomicBool::new(true),
        })
    }

    fn protect_poll_page(&self, readable: bool) {
        #[cfg(all(test, loom))]
        self.page_readable.store(readable, Ordering::SeqCst);
        let prot = if readable {
            libc::PROT_READ
        } else {
            libc::PROT_NONE
        };
        let page = self.poll_page.load(Ordering::SeqCst);
        if page.is_null() {
            return;
        }
        // SAFETY: `page` is the one-page mapping made in `new` and lives as
        // long as `self`; changing its protection is async-signal-safe and
        // may happen while another thread runs wasm that reads it (that read
        // then faults at a recorded Interrupt trap site).
        unsafe { libc::mprotect(page as *mut libc::c_void, page_size(), prot) };
    }

    /// Makes the running (or next) call trap with "interrupt" at its next
    /// check.
    pub(crate) fn interrupt(&self) {
        let _g = self.state_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.interrupt_locked();
    }

    fn interrupt_locked(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.epoch_deadline.store(0, Ordering::SeqCst);
        // Every function prologue compares SP with this: the next call
        // traps (reported as an interrupt; see `func::invoke`). A
        // read-modify-write, like the call entry's and exit's (`enter`,
        // `exit`), so all changes of the limit are ordered with each other
        // (loom, too, then checks exactly that).
        self.stack_limit
            .swap(INTERRUPTED_STACK_LIMIT, Ordering::SeqCst);
        self.protect_poll_page(false);
        self.wait_cancel.cancel();
    }

    /// Starts a new deadline period: no older wall-clock deadline may fire
    /// any more, and any interrupt is cleared (the poll page is readable
    /// again). Atomic with respect to interrupts and the ticker.
    pub(crate) fn new_deadline_period(&self, epoch_deadline: u64) {
        let _g = self.state_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.deadline_generation.fetch_add(1, Ordering::SeqCst);
        self.epoch_deadline.store(epoch_deadline, Ordering::SeqCst);
        // Only the store's owner starts a deadline period, never while one
        // of its calls runs: no activation needs a limit now.
        self.stack_limit.swap(0, Ordering::SeqCst);
        self.interrupted.store(false, Ordering::SeqCst);
        self.wait_cancel.reset();
        self.protect_poll_page(true);
    }

    #[inline]
    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// The outermost call entry into wasm: the stack limit for this
    /// activation, unless an interrupt has raised it. One read-modify-write
    /// on the limit itself, so an interrupt racing the entry is never lost
    /// whatever the interleaving: its store comes before ours in the
    /// limit's modification order (and we keep it) or after (and wins).
    ///
    /// A call's exit writes nothing: the limit only matters while wasm
    /// runs, every outermost entry sets it anew, and leaving it alone keeps
    /// an interrupt that arrived meanwhile.
    ///
    /// When the limit already has the value (the common case: the same
    /// thread entering at the same depth as last time), nothing is written:
    /// that is the compare-exchange of a value with itself, so an interrupt
    /// racing it is kept exactly as above, without the cost of a locked
    /// instruction on every call.
    #[inline]
    pub(crate) fn enter(&self, limit: usize) {
        let mut cur = self.stack_limit.load(Ordering::SeqCst);
        while cur != INTERRUPTED_STACK_LIMIT && cur != limit {
            match self
                .stack_limit
                .compare_exchange(cur, limit, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// The deadline ticker: interrupts if the deadline of `generation` is
    /// still the current one, under the state lock (so a deadline cancelled
    /// meanwhile cannot fire).
    pub(crate) fn fire_if_current(&self, generation: u64) {
        let _g = self.state_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.deadline_generation.load(Ordering::SeqCst) == generation {
            self.interrupt_locked();
        }
    }
}

impl Drop for VMStoreContext {
    fn drop(&mut self) {
        let page = self.poll_page.load(Ordering::SeqCst);
        if page.is_null() {
            return;
        }
        if self.interrupted.load(Ordering::SeqCst) {
            self.protect_poll_page(true);
        }
        match &self.pages {
            Some(pages) => pages.give_back(page),
            // SAFETY: a page mapped for this context; nothing can run wasm
            // with it any more (it is dropped).
            None => unsafe {
                libc::munmap(page as *mut libc::c_void, page_size());
            },
        }
    }
}

/// A handle that stops a store's running or next call from any thread.
///
/// The call traps with "interrupt"; the store stays usable, and calls work
/// again once a new deadline is set (`Store::set_epoch_deadline`,
/// `set_deadline`, `set_timeout` or `clear_deadline`).
#[derive(Clone)]
pub struct InterruptHandle {
    pub(crate) ctx: Arc<VMStoreContext>,
}

impl InterruptHandle {
    /// Interrupts the store's running call, or its next one.
    pub fn interrupt(&self) {
        self.ctx.interrupt();
    }

    /// Whether the store is interrupted now (host code that blocks, such as
    /// WASI's, polls this to stop too).
    pub fn is_interrupted(&self) -> bool {
        self.ctx.is_interrupted()
    }
}

impl std::fmt::Debug for InterruptHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterruptHandle")
            .field("interrupted", &self.ctx.is_interrupted())
            .finish()
    }
}

/// What an epoch-deadline callback decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateDeadline {
    /// Keep running, with the deadline this many epoch ticks from now.
    Continue(u64),
    /// Stop: the call traps with "interrupt".
    Interrupt,
    /// Yield to the async executor (the call's future returns `Pending`
    /// once and asks to be polled again), then keep running with the
    /// deadline this many ticks from then. Only inside async calls; a
    /// synchronous call traps with an error instead.
    Yield(u64),
}

/// The engine's wall-clock deadline ticker: one thread, started lazily.
pub(crate) struct Ticker {
    shared: Arc<TickerShared>,
    started: std::sync::Once,
}

impl Default for Ticker {
    fn default() -> Self {
        Ticker {
            shared: Arc::default(),
            started: std::sync::Once::new(),
        }
    }
}

#[derive(Default)]
struct TickerShared {
    queue: Mutex<TickerQueue>,
    wake: Condvar,
}

#[derive(Default)]
struct TickerQueue {
    heap: BinaryHeap<Reverse<Entry>>,
    shutdown: bool,
}

struct Entry {
    at: Instant,
    generation: u64,
    ctx: Weak<VMStoreContext>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.at.cmp(&o.at)
    }
}

impl Ticker {
    /// Interrupts `ctx` at `at`, unless its deadline changes before then.
    pub(crate) fn schedule(&self, ctx: &Arc<VMStoreContext>, at: Instant) {
        self.started.call_once(|| {
            let shared = self.shared.clone();
            std::thread::Builder::new()
                .name("weft-deadline-ticker".into())
                .spawn(move || run_ticker(&shared))
                .expect("weft: cannot start the deadline ticker thread");
        });
        let generation = ctx.deadline_generation.load(Ordering::SeqCst);
        let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.heap.push(Reverse(Entry {
            at,
            generation,
            ctx: Arc::downgrade(ctx),
        }));
        self.shared.wake.notify_one();
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.shutdown = true;
        self.shared.wake.notify_one();
    }
}

fn run_ticker(shared: &TickerShared) {
    let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if q.shutdown {
            return;
        }
        let now = Instant::now();
        while let Some(Reverse(e)) = q.heap.peek() {
            if e.at > now {
                break;
            }
            let Some(Reverse(e)) = q.heap.pop() else {
                break;
            };
            if let Some(ctx) = e.ctx.upgrade() {
                ctx.fire_if_current(e.generation);
            }
        }
        q = match q.heap.peek() {
            Some(Reverse(e)) => {
                let wait = e.at.saturating_duration_since(Instant::now());
                shared
                    .wake
                    .wait_timeout(q, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => shared.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096)
}

/// The interrupt state's protocols, model-checked: the real `interrupt`,
/// `new_deadline_period`, `fire_if_current` and `enter` on loom's atomics
/// and lock (`crate::sync`).
#[cfg(all(test, loom))]
mod loom_tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use loom::thread;

    use super::{INTERRUPTED_STACK_LIMIT, VMStoreContext};

    fn ctx() -> Arc<VMStoreContext> {
        static EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Arc::new(VMStoreContext::new(&EPOCH, None).unwrap())
    }

    /// An interrupt racing a call's entry is never lost: once both are done,
    /// an interrupted store's stack limit stops the next prologue. Both for
    /// a first entry (a compare-exchange) and for a repeated one whose limit
    /// is already in place (which writes nothing).
    #[test]
    fn loom_interrupt_racing_a_call_entry_is_not_lost() {
        for repeated in [false, true] {
            loom::model(move || {
                let c = ctx();
                if repeated {
                    c.enter(0x1000);
                }
                let h = c.clone();
                let t = thread::spawn(move || h.interrupt());
                c.enter(0x1000);
                t.join().unwrap();
                assert!(c.is_interrupted());
                assert_eq!(
                    c.stack_limit.load(Ordering::SeqCst),
                    INTERRUPTED_STACK_LIMIT
                );
            });
        }
    }

    /// A deadline cancelled (a new deadline period) while the ticker fires
    /// the old one never leaves the store interrupted.
    #[test]
    fn loom_a_cancelled_deadline_never_fires() {
        loom::model(|| {
            let c = ctx();
            let old = c.deadline_generation.load(Ordering::SeqCst);
            let ticker = c.clone();
            let t = thread::spawn(move || ticker.fire_if_current(old));
            c.new_deadline_period(u64::MAX);
            t.join().unwrap();
            assert!(
                !c.is_interrupted(),
                "a cancelled deadline interrupted the store"
            );
            assert_eq!(c.epoch_deadline.load(Ordering::SeqCst), u64::MAX);
        });
    }

    /// An interrupt racing a clear leaves the flag, the poll page, the
    /// epoch deadline and the stack limit agreeing.
    #[test]
    fn loom_interrupt_and_clear_leave_a_consistent_state() {
        loom::model(|| {
            let c = ctx();
            let h = c.clone();
            let t = thread::spawn(move || h.interrupt());
            c.new_deadline_period(7);
            t.join().unwrap();
            let interrupted = c.is_interrupted();
            assert_eq!(c.page_readable.load(Ordering::SeqCst), !interrupted);
            assert_eq!(
                c.stack_limit.load(Ordering::SeqCst) == INTERRUPTED_STACK_LIMIT,
                interrupted
            );
            assert_eq!(
                c.epoch_deadline.load(Ordering::SeqCst),
                if interrupted { 0 } else { 7 }
            );
        });
    }
}
