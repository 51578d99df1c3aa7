//! The wasm stack budget of a thread.
//!
//! Compiled prologues compare the stack pointer with the store's
//! `VMStoreContext::stack_limit` and trap with "call stack exhausted" below
//! it. The limit is per *thread*, not per store: the outermost wasm entry on
//! a thread fixes it, and every store entered on that thread while wasm is
//! active (a host function calling into another store) shares it, so nested
//! stores together use at most `max_wasm_stack` bytes.
//!
//! The limit is the higher (tighter) of
//! - `SP - max_wasm_stack` at the outermost entry, and
//! - the thread's real stack low end plus [`HOST_SLACK`],
//!
//! so a thread whose stack is smaller than `max_wasm_stack` (a 64 KiB
//! worker thread, say) gets a trap instead of overflowing into its guard page
//! (which Rust reports by aborting the process). The slack keeps room below
//! the deepest wasm frame for host functions and builtins that wasm calls.
//! A host function that itself needs more than the slack can still overflow
//! the thread's stack: that is an overflow in Rust code, which Rust's own
//! guard-page handler reports by aborting, exactly as without weft. Signal
//! handlers run on a separate alternate stack and need no slack.

use std::cell::Cell;

/// Stack bytes kept free below the deepest wasm frame for host code that
/// wasm calls (host functions, builtins, WASI).
pub const HOST_SLACK: usize = 32 * 1024;

/// Everything a call into wasm reads or changes on its thread, in one
/// thread-local so that entering and leaving wasm each touch it once.
/// Const-initialised and without a destructor: the signal handler reads
/// `call_state` without any lazy initialisation.
pub(crate) struct ThreadState {
    /// Wasm activations on this thread, from any store.
    depth: Cell<usize>,
    /// The stack limit fixed by the outermost activation.
    limit: Cell<usize>,
    /// The entry stack pointer and budget that `limit` was computed for
    /// (0: none), so that an outermost entry from the same place as the
    /// last one (the common case: a host loop calling wasm) reuses it.
    limit_key: Cell<(usize, usize)>,
    /// The low end of this thread's stack (0: not known yet; 1: unknown).
    low: Cell<usize>,
    /// The innermost `call_wasm`'s trap slot (a `traphandlers::CallState`).
    pub(crate) call_state: Cell<usize>,
    /// Whether this OS thread has weft's signal handlers and alternate
    /// signal stack (never swapped with a fiber's state: it belongs to the
    /// OS thread).
    ready: Cell<bool>,
}

thread_local! {
    pub(crate) static THREAD: ThreadState = const {
        ThreadState {
            depth: Cell::new(0),
            limit: Cell::new(0),
            limit_key: Cell::new((0, 0)),
            low: Cell::new(0),
            call_state: Cell::new(0),
            ready: Cell::new(false),
        }
    };
}

/// Enters wasm on this thread: returns the stack limit compiled code must
/// use and the previous trap slot (for [`exit`]); `call_state` becomes the
/// innermost one. `sp` is (an address near) the current stack pointer.
///
/// Never inlined (nor is [`exit`]): an async call's fiber may suspend
/// between the two and resume on another thread, and an inlined
/// thread-local access could reuse the first thread's address.
#[inline(never)]
pub(crate) fn enter(sp: usize, max_wasm_stack: usize, call_state: usize) -> (usize, usize) {
    // The common case (a prepared thread entering where it last did, or a
    // nested entry) stays in registers; the rest is out of line, as a tail
    // call with nothing live after it.
    let fast = THREAD.with(|t| {
        let depth = t.depth.get();
        if t.ready.get() && (depth != 0 || t.limit_key.get() == (sp, max_wasm_stack)) {
            t.depth.set(depth + 1);
            Some((t.limit.get(), t.call_state.replace(call_state)))
        } else {
            None
        }
    });
    match fast {
        Some(r) => r,
        None => enter_slow(sp, max_wasm_stack, call_state),
    }
}

/// [`enter`] on a thread not prepared yet, or an outermost entry from
/// another stack pointer or budget than the last one: prepares the thread
/// and computes the limit.
#[cold]
#[inline(never)]
fn enter_slow(sp: usize, max_wasm_stack: usize, call_state: usize) -> (usize, usize) {
    THREAD.with(|t| {
        if !t.ready.get() {
            crate::traphandlers::prepare_thread();
            t.ready.set(true);
        }
        let depth = t.depth.get();
        if depth == 0 && t.limit_key.get() != (sp, max_wasm_stack) {
            t.limit.set(limit_for(sp, max_wasm_stack, stack_low(t)));
            t.limit_key.set((sp, max_wasm_stack));
        }
        t.depth.set(depth + 1);
        (t.limit.get(), t.call_state.replace(call_state))
    })
}

/// Leaves wasm on this thread: undoes [`enter`] (`prev` is what it
/// returned as the previous trap slot).
#[inline(never)]
pub(crate) fn exit(prev: usize) {
    THREAD.with(|t| {
        t.depth.set(t.depth.get().saturating_sub(1));
        t.call_state.set(prev);
    })
}

/// The per-thread stack state, saved and replaced when a fiber (an async
/// call's stack) is resumed on a thread and swapped back when it suspends:
/// while a fiber runs, the "thread" whose stack this module describes is the
/// fiber.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StackState {
    depth: usize,
    limit: usize,
    low: usize,
}

impl StackState {
    /// The state of a fresh stack whose lowest usable address is `low`.
    pub(crate) fn for_stack(low: usize) -> StackState {
        StackState {
            depth: 0,
            limit: 0,
            low: low.max(2),
        }
    }

    /// Installs `self` as this thread's state and returns the one it
    /// replaces.
    pub(crate) fn swap_in(self) -> StackState {
        THREAD.with(|t| {
            // The cached limit belongs to the stack being swapped out.
            t.limit_key.set((0, 0));
            StackState {
                depth: t.depth.replace(self.depth),
                limit: t.limit.replace(self.limit),
                low: t.low.replace(self.low),
            }
        })
    }
}

/// Calls `f` with the callee-saved registers' values and then with every
/// aligned word of this thread's stack from this call's frame up to `top`
/// (an address in an older frame of this thread), for a conservative scan
/// of what running wasm may hold. Whatever the frames between hold is in
/// one or the other: a callee that reuses a callee-saved register saved it
/// in its frame first. Returns false (and calls nothing) where the
/// registers cannot be read.
#[inline(never)]
pub(crate) fn scan_since(top: usize, mut f: impl FnMut(usize)) -> bool {
    let Some(regs) = callee_saved_registers() else {
        return false;
    };
    regs.iter().for_each(|&r| f(r));
    let marker = 0usize;
    let mut p = std::hint::black_box(&marker) as *const usize as usize;
    while p + 8 <= top {
        // SAFETY: `[p, top)` lies on this thread's stack, between this frame
        // and an older frame that is still live (the caller guarantees
        // `top` is in one): mapped, readable memory. Volatile: the words
        // belong to other frames.
        f(unsafe { std::ptr::read_volatile(p as *const usize) });
        p += 8;
    }
    true
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn callee_saved_registers() -> Option<[usize; 6]> {
    let r: [usize; 6];
    // SAFETY: only copies registers into outputs; no memory, stack or flags
    // are touched.
    unsafe {
        let (a, b, c, d, e, g): (usize, usize, usize, usize, usize, usize);
        std::arch::asm!(
            "mov {a}, rbx", "mov {b}, rbp", "mov {c}, r12",
            "mov {d}, r13", "mov {e}, r14", "mov {g}, r15",
            a = out(reg) a, b = out(reg) b, c = out(reg) c,
            d = out(reg) d, e = out(reg) e, g = out(reg) g,
            options(nomem, nostack, preserves_flags),
        );
        r = [a, b, c, d, e, g];
    }
    Some(r)
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn callee_saved_registers() -> Option<[usize; 11]> {
    let mut r = [0usize; 11];
    // SAFETY: stores the registers into `r`, a local array of 11 words.
    unsafe {
        std::arch::asm!(
            "stp x19, x20, [{p}]", "stp x21, x22, [{p}, #16]",
            "stp x23, x24, [{p}, #32]", "stp x25, x26, [{p}, #48]",
            "stp x27, x28, [{p}, #64]", "str x29, [{p}, #80]",
            p = in(reg) r.as_mut_ptr(),
            options(nostack, preserves_flags),
        );
    }
    Some(r)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn callee_saved_registers() -> Option<[usize; 0]> {
    None
}

/// The limit for an outermost entry at `sp` (see the module docs).
fn limit_for(sp: usize, max_wasm_stack: usize, low: Option<usize>) -> usize {
    let by_budget = sp.saturating_sub(max_wasm_stack);
    match low {
        Some(low) => by_budget.max(low.saturating_add(HOST_SLACK)),
        None => by_budget,
    }
}

/// Bytes of stack left below the caller on this thread, if known.
#[inline(never)]
pub(crate) fn remaining() -> Option<usize> {
    let marker = 0u8;
    let sp = std::hint::black_box(&marker) as *const u8 as usize;
    thread_stack_low().map(|low| sp.saturating_sub(low))
}

/// The lowest usable address of the current thread's stack, if the platform
/// tells (cached per thread).
pub fn thread_stack_low() -> Option<usize> {
    THREAD.with(stack_low)
}

fn stack_low(t: &ThreadState) -> Option<usize> {
    let cached = t.low.get();
    if cached != 0 {
        return (cached != 1).then_some(cached);
    }
    let low = query_stack_low();
    t.low.set(low.unwrap_or(1));
    low
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn query_stack_low() -> Option<usize> {
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is
    // read and destroyed exactly once; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let mut guard: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        // Whether the reported range includes the guard area at its low end
        // has differed between libc versions; skipping it errs on the safe
        // side (at most a page or two of stack unused).
        if libc::pthread_attr_getguardsize(&attr, &mut guard) != 0 {
            guard = 0;
        }
        libc::pthread_attr_destroy(&mut attr);
        (ok && !addr.is_null()).then(|| addr as usize + guard)
    }
}

#[cfg(target_os = "macos")]
fn query_stack_low() -> Option<usize> {
    // SAFETY: both calls only read the current thread's descriptor.
    unsafe {
        let me = libc::pthread_self();
        let top = libc::pthread_get_stackaddr_np(me) as usize;
        let size = libc::pthread_get_stacksize_np(me);
        top.checked_sub(size)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
fn query_stack_low() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tighter_bound_wins() {
        let sp = 1 << 30;
        // A big stack: the budget decides.
        assert_eq!(
            limit_for(sp, 512 << 10, Some(sp - (8 << 20))),
            sp - (512 << 10)
        );
        // A small stack: its low end plus the slack decides.
        let low = sp - (64 << 10);
        assert_eq!(limit_for(sp, 512 << 10, Some(low)), low + HOST_SLACK);
        // Unknown stack: the budget alone.
        assert_eq!(limit_for(sp, 512 << 10, None), sp - (512 << 10));
    }

    #[test]
    fn this_threads_stack_is_found_and_contains_the_stack_pointer() {
        let marker = 0u8;
        let sp = &marker as *const u8 as usize;
        if cfg!(any(target_os = "linux", target_os = "macos")) {
            let low = thread_stack_low().expect("stack bounds on this platform");
            assert!(
                low < sp,
                "low end {low:#x} is above the stack pointer {sp:#x}"
            );
            // Test threads have at most a few MiB; the main thread's limit
            // may be larger, but not absurdly so.
            assert!(sp - low < 1 << 30);
        }
    }

    #[test]
    fn nested_entries_share_the_outermost_limit() {
        let marker = 0u8;
        let sp = &marker as *const u8 as usize;
        let budget = 256 << 10;
        let (l1, outer) = enter(sp, budget, 1);
        let (l2, inner) = enter(sp - 4096, budget, 2);
        assert_eq!(l1, l2);
        assert_eq!(inner, 1, "the inner entry replaced the outer trap slot");
        exit(inner);
        exit(outer);
        // A new outermost entry computes a new limit.
        let (l3, prev) = enter(sp - 8192, budget, 3);
        assert_eq!(l3, l1 - 8192);
        exit(prev);
        assert_eq!(THREAD.with(|t| t.call_state.get()), 0);
    }
}
