//! Catching traps raised by compiled code.
//!
//! **Mechanism.** Host code enters WebAssembly only through [`call_wasm`],
//! which calls a small C function (`weft_call_wasm`, csrc/helpers.c) that does
//! `setjmp` and then calls the compiled `array_call` entry. A trap in compiled
//! code is a hardware fault (guard page hit: SIGSEGV/SIGBUS) or a trap
//! instruction (`ud2`: SIGILL). The process-wide signal handler installed here
//! looks the faulting PC up in the [code registry](crate::registry); if it is a
//! recorded trap site and this thread is inside `call_wasm`, it records the
//! trap in the thread's call state and `longjmp`s back to the C frame, which
//! returns 0. Any other fault is passed on to the handler that was installed
//! before ours (or the default action).
//!
//! **Soundness with respect to Rust frames.** `longjmp` skips frames without
//! running destructors, so it must never skip a Rust frame. It cannot: the
//! frames between the C `setjmp` frame and a trap site are JIT code only.
//! Host functions and runtime builtins never raise traps themselves; they
//! return a status and compiled code executes the trap instruction after they
//! have returned. A panic in a host function is caught at the host-call
//! boundary and resumed by the embedder-facing call after wasm has unwound.
//!
//! Handlers run on an alternate signal stack (installed per thread on first
//! entry), so a fault at the very edge of the stack can still be handled.

use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;
use std::sync::Once;

use weft_jit::TrapKind;

// The entries into wasm on x86-64 Linux: a few instructions of assembly that
// do what `csrc/helpers.c` does with `setjmp` on other targets.
//
// `weft_call_typed` is called only from inline assembly
// (`call_typed_entered`), with the trap slot in r10, the code to call in r11
// and that code's arguments already in rdi..r9, which it passes on
// untouched. It saves the frame pointer and the five other callee-saved
// registers, stores its frame pointer in the slot (the jump slot of the
// call's `CallState`), aligns the stack and calls; it returns what the code
// returned in rax, with r11 = 1.
//
// `weft_call_wasm(slot, f, vmctx, caller_vmctx, values, len)` is the same
// entry for callers in Rust: it moves its arguments to where
// `weft_call_typed` takes them, calls it, and returns its r11 (1: `f`
// returned; 0: a trap).
//
// `weft_unwind(fp)`, called by the signal handler with what was stored in
// the slot, puts back that frame pointer and leaves through
// `weft_call_typed`'s epilogue, which restores the callee-saved registers
// from the entry's frame and returns with eax = 0 and r11 = 0. As with
// `longjmp`, only frames of compiled code are skipped (module docs), and the
// signal mask needs no restoring (the handlers run with `SA_NODEFER`).
//
// Frame, from the entry's frame pointer `rbp` down: saved rbp at rbp+0,
// then rbx, r12, r13, r14, r15 at rbp-8 .. rbp-40; below them the stack is
// aligned down to 16 bytes for the call, so that the call's alignment does
// not depend on how the entry was reached (`weft_call_wasm` and inline
// assembly reach it with different offsets).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl weft_call_typed",
    ".hidden weft_call_typed",
    ".type weft_call_typed,@function",
    "weft_call_typed:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    ".cfi_offset rbx, -24",
    ".cfi_offset r12, -32",
    ".cfi_offset r13, -40",
    ".cfi_offset r14, -48",
    ".cfi_offset r15, -56",
    "and rsp, -16",
    "mov [r10], rbp",
    "call r11",
    "mov r11d, 1",
    ".Lweft_entry_leave:",
    "lea rsp, [rbp - 40]",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "ret",
    ".cfi_endproc",
    ".size weft_call_typed, . - weft_call_typed",
    "",
    ".p2align 4",
    ".globl weft_call_wasm",
    ".hidden weft_call_wasm",
    ".type weft_call_wasm,@function",
    "weft_call_wasm:",
    ".cfi_startproc",
    "mov r10, rdi",
    "mov r11, rsi",
    "mov rdi, rdx",
    "mov rsi, rcx",
    "mov rdx, r8",
    "mov rcx, r9",
    "sub rsp, 8",
    ".cfi_def_cfa_offset 16",
    "call weft_call_typed",
    "mov eax, r11d",
    "add rsp, 8",
    ".cfi_def_cfa_offset 8",
    "ret",
    ".cfi_endproc",
    ".size weft_call_wasm, . - weft_call_wasm",
    "",
    ".p2align 4",
    ".globl weft_unwind",
    ".hidden weft_unwind",
    ".type weft_unwind,@function",
    "weft_unwind:",
    "mov rbp, rdi",
    "xor eax, eax",
    "xor r11d, r11d",
    "jmp .Lweft_entry_leave",
    ".size weft_unwind, . - weft_unwind",
);

unsafe extern "C" {
    fn weft_call_wasm(
        jmp_slot: *mut *mut c_void,
        f: unsafe extern "C" fn(*mut u8, *mut u8, *mut u128, usize),
        vmctx: *mut u8,
        caller_vmctx: *mut u8,
        values: *mut u128,
        len: usize,
    ) -> i32;
    fn weft_unwind(jmp_buf: *mut c_void) -> !;
}

/// How many wasm frames a trap's backtrace records at most (more are
/// counted, and reported as "... N more frames").
pub const MAX_FRAMES: usize = 64;

/// What the signal handler learned about a trap.
#[derive(Debug, Clone, Copy)]
pub struct TrapInfo {
    /// The faulting program counter.
    pub pc: usize,
    /// The trap kind recorded for that PC.
    pub kind: TrapKind,
    /// Return addresses of the wasm callers, innermost first
    /// (`frames[..frame_count]`).
    pub frames: [usize; MAX_FRAMES],
    /// How many entries of `frames` are valid.
    pub frame_count: usize,
    /// Frames beyond `MAX_FRAMES` (counted, not recorded).
    pub more_frames: usize,
    /// The outermost return address seen (to tell whether the counted
    /// frames end with a trampoline, which is not a wasm frame).
    pub last_frame: usize,
}

/// The trap slot of one call into wasm: where the signal handler finds the
/// jump buffer and records the trap. The innermost one is the thread's
/// `stack::THREAD.call_state` (set by `stack::enter`).
pub(crate) struct CallState {
    jmp_buf: *mut c_void,
    trap: Option<TrapInfo>,
}

impl CallState {
    pub(crate) fn new() -> CallState {
        CallState {
            jmp_buf: ptr::null_mut(),
            trap: None,
        }
    }
}

/// Replaces this thread's current call state (the innermost `call_wasm`'s
/// trap slot) and returns the previous one: a fiber's when it is resumed on
/// a thread, the thread's own when the fiber suspends.
pub(crate) fn swap_call_state(state: usize) -> usize {
    crate::stack::THREAD.with(|t| t.call_state.replace(state))
}

/// Makes sure the current thread has an alternate signal stack (a fiber may
/// resume on a thread that never ran wasm before).
pub(crate) fn prepare_thread() {
    init();
    ensure_alt_stack();
}

/// The signature of compiled `array_call` entries.
pub type ArrayCall = unsafe extern "C" fn(*mut u8, *mut u8, *mut u128, usize);

/// Calls compiled code through its `array_call` entry, catching traps.
///
/// # Safety
///
/// `f` must be an `array_call` entry produced by weft-jit whose code is kept
/// alive and registered in the code registry for the duration of the call;
/// `vmctx` must be an instance context laid out as that code expects, and
/// `values` must point to `len` valid slots holding the parameters.
#[cfg(test)]
pub unsafe fn call_wasm(
    f: ArrayCall,
    vmctx: *mut u8,
    caller_vmctx: *mut u8,
    values: *mut u128,
    len: usize,
) -> Result<(), Box<TrapInfo>> {
    let mut state = CallState::new();
    let marker = 0u8;
    let sp = &marker as *const u8 as usize;
    let (_, prev) = crate::stack::enter(sp, usize::MAX / 2, &mut state as *mut CallState as usize);
    // SAFETY: forwarded from the caller; `state` is the thread's current
    // trap slot until `exit`.
    let r = unsafe { call_entered(&mut state, f, vmctx, caller_vmctx, values, len) };
    crate::stack::exit(prev);
    r
}

/// [`call_wasm`] after `stack::enter` made `state` the thread's current
/// trap slot (the caller calls `stack::exit` afterwards).
///
/// # Safety
/// As for [`call_wasm`]; `state` must be the thread's current trap slot.
pub(crate) unsafe fn call_entered(
    state: &mut CallState,
    f: ArrayCall,
    vmctx: *mut u8,
    caller_vmctx: *mut u8,
    values: *mut u128,
    len: usize,
) -> Result<(), Box<TrapInfo>> {
    // SAFETY: the caller guarantees `f`, `vmctx` and `values`; the jump slot
    // points into `state`, which lives until after the call returns.
    let ok = unsafe { weft_call_wasm(&mut state.jmp_buf, f, vmctx, caller_vmctx, values, len) };
    if ok != 0 {
        Ok(())
    } else {
        Err(recorded_trap(state))
    }
}

/// The trap the signal handler recorded in `state` before jumping out of
/// wasm (an entry returns 0 only then).
#[cold]
fn recorded_trap(state: &CallState) -> Box<TrapInfo> {
    Box::new(
        state
            .trap
            .expect("an entry into wasm returned 0 without a recorded trap"),
    )
}

/// Calls a typed entry (`Compiler::typed_entry`) through the assembly
/// entry, catching traps: `entry(funcref, args[0], .., args[4])`, whose
/// result's bits it returns. Everything stays in registers.
///
/// # Safety
/// `entry` must be the typed entry compiled for the type of the wasm
/// function whose `VMFuncRef` is `funcref` (alive, with its instance, for
/// the call), registered in the code registry; the low bits of `args` hold
/// that function's parameters (unused words are ignored). `state` must be
/// the thread's current trap slot (`stack::enter`).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline]
pub(crate) unsafe fn call_typed_entered(
    state: &mut CallState,
    entry: *const u8,
    funcref: *const u8,
    args: [u64; weft_jit::TYPED_ENTRY_MAX_PARAMS],
) -> Result<u64, Box<TrapInfo>> {
    unsafe extern "C" {
        fn weft_call_typed();
    }
    let result: u64;
    let ok: u64;
    // SAFETY: `weft_call_typed` takes the slot in r10 and the code in r11,
    // passes rdi..r9 on to it untouched, and returns (once: normally, or
    // through `weft_unwind` after a trap) with the result in rax and r11 = 1
    // or 0; it saves and restores every callee-saved register, so the C
    // ABI's clobbers describe it. The caller guarantees `entry`, `funcref`
    // and `args`; the slot points into `state`, which outlives the call.
    unsafe {
        std::arch::asm!(
            "call {stub}",
            stub = sym weft_call_typed,
            in("r10") &raw mut state.jmp_buf,
            in("r11") entry,
            in("rdi") funcref,
            in("rsi") args[0],
            in("rdx") args[1],
            in("rcx") args[2],
            in("r8") args[3],
            in("r9") args[4],
            lateout("rax") result,
            lateout("r11") ok,
            clobber_abi("C"),
        );
    }
    if ok != 0 {
        Ok(result)
    } else {
        Err(recorded_trap(state))
    }
}

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

struct PrevHandlers(std::cell::UnsafeCell<[libc::sigaction; 4]>);
// SAFETY: written once inside `INIT.call_once` before any handler can run,
// read-only afterwards.
unsafe impl Sync for PrevHandlers {}

static PREV: PrevHandlers = PrevHandlers(std::cell::UnsafeCell::new(
    // SAFETY: `sigaction` is a plain C struct for which all-zeroes is valid.
    unsafe { std::mem::zeroed() },
));
static INIT: Once = Once::new();

/// Installs weft's signal handlers once per process.
pub fn init() {
    INIT.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: we build a valid `sigaction`, and write the previous
            // handler into our own static slot before anything reads it.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = handler as *const () as usize;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
                libc::sigemptyset(&mut act.sa_mask);
                let prev = &mut (*PREV.0.get())[i];
                if libc::sigaction(sig, &act, prev) != 0 {
                    panic!(
                        "weft: failed to install the handler for signal {sig}: {}",
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
    });
}

unsafe extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let state = crate::stack::THREAD.with(|t| t.call_state.get()) as *mut CallState;
    if !state.is_null() {
        // SAFETY: `state` points at the live `CallState` of the innermost
        // `call_wasm` on this thread (it is reset before that frame returns).
        let jmp_buf = unsafe { (*state).jmp_buf };
        if !jmp_buf.is_null() {
            let pc = pc_of(ctx);
            if let Some(kind) = crate::registry::lookup_trap(pc) {
                let (frames, frame_count, more_frames, last_frame) =
                    walk_frames(ctx, state as usize);
                // SAFETY: as above; we are the only code touching it now.
                unsafe {
                    (*state).trap = Some(TrapInfo {
                        pc,
                        kind,
                        frames,
                        frame_count,
                        more_frames,
                        last_frame,
                    });
                    restore_fp_control(ctx);
                    weft_unwind(jmp_buf);
                }
            }
        }
    }
    // Not ours: hand it to whoever was installed before us.
    let idx = SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    // SAFETY: PREV was fully written before our handler was installed.
    unsafe {
        let prev = &(*PREV.0.get())[idx];
        if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                std::mem::transmute(prev.sa_sigaction);
            f(sig, info, ctx);
        } else if prev.sa_sigaction == libc::SIG_DFL || prev.sa_sigaction == libc::SIG_IGN {
            // Restore the default action; returning re-executes the faulting
            // instruction, which then takes it.
            libc::signal(sig, libc::SIG_DFL);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
            f(sig);
        }
    }
}

/// Walks the frame-pointer chain of the trapping wasm code (weft-jit keeps
/// frame pointers: `[fp]` is the caller's fp, `[fp + 8]` the return address).
/// Only addresses between the faulting SP and `limit` (the `CallState` of the
/// `call_wasm` frame, which lies above every wasm frame of this activation)
/// are read, so a corrupt chain ends the walk instead of faulting.
fn walk_frames(ctx: *mut c_void, limit: usize) -> ([usize; MAX_FRAMES], usize, usize, usize) {
    let mut frames = [0usize; MAX_FRAMES];
    let mut n = 0;
    let mut more = 0;
    let mut last = 0;
    let (mut fp, sp) = fp_sp_of(ctx);
    while fp >= sp && fp % 8 == 0 && fp + 16 <= limit {
        // SAFETY: `fp` lies within this thread's stack between the faulting
        // SP and the entry frame (checked above), so both words are readable.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if crate::registry::lookup_code(ret).is_none() {
            break;
        }
        last = ret;
        if n < MAX_FRAMES {
            frames[n] = ret;
            n += 1;
        } else {
            more += 1;
        }
        if next <= fp {
            break;
        }
        fp = next;
    }
    (frames, n, more, last)
}

/// Puts back the floating-point control state of the interrupted code (the
/// host's: compiled wasm never changes it) before jumping out of a signal
/// handler. The kernel runs handlers with the default state and only
/// `sigreturn`, which the jump skips, would restore it: without this, a
/// trap would reset a host's rounding mode or flush-to-zero setting.
#[cfg(target_arch = "x86_64")]
fn restore_fp_control(ctx: *mut c_void) {
    let uc = ctx as *const libc::ucontext_t;
    // SAFETY: the kernel passes a valid `ucontext_t` to SA_SIGINFO handlers;
    // `fpregs` points into it (the saved FPU state) or is null.
    let saved = unsafe {
        let fp = (*uc).uc_mcontext.fpregs;
        (!fp.is_null()).then(|| ((*fp).mxcsr, (*fp).cwd))
    };
    if let Some((mxcsr, cwd)) = saved {
        // SAFETY: loads the control registers from two locals; the values
        // were the interrupted thread's own, so they are valid settings.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack, readonly));
            std::arch::asm!("fldcw [{}]", in(reg) &cwd, options(nostack, readonly));
        }
    }
}

/// See the x86-64 version; elsewhere the control state is left as the
/// handler found it.
#[cfg(not(target_arch = "x86_64"))]
fn restore_fp_control(_ctx: *mut c_void) {}

fn fp_sp_of(ctx: *mut c_void) -> (usize, usize) {
    let uc = ctx as *const libc::ucontext_t;
    // SAFETY: the kernel passes a valid `ucontext_t` to SA_SIGINFO handlers.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        {
            let g = &(*uc).uc_mcontext.gregs;
            (
                g[libc::REG_RBP as usize] as usize,
                g[libc::REG_RSP as usize] as usize,
            )
        }
        #[cfg(target_arch = "aarch64")]
        {
            let m = &(*uc).uc_mcontext;
            (m.regs[29] as usize, m.sp as usize)
        }
    }
}

fn pc_of(ctx: *mut c_void) -> usize {
    let uc = ctx as *const libc::ucontext_t;
    // SAFETY: the kernel passes a valid `ucontext_t` to SA_SIGINFO handlers.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        {
            (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize
        }
        #[cfg(target_arch = "aarch64")]
        {
            (*uc).uc_mcontext.pc as usize
        }
    }
}

const ALT_STACK_SIZE: usize = 256 * 1024;

struct AltStack {
    mapping: *mut c_void,
    size: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: disable the alternate stack before unmapping it; the mapping
        // was created by `ensure_alt_stack` with exactly this size.
        unsafe {
            let ss = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: ALT_STACK_SIZE,
            };
            libc::sigaltstack(&ss, ptr::null_mut());
            libc::munmap(self.mapping, self.size);
        }
    }
}

thread_local! {
    static ALT_STACK: Cell<Option<()>> = const { Cell::new(None) };
    static ALT_STACK_OWNED: std::cell::RefCell<Option<AltStack>> = const { std::cell::RefCell::new(None) };
}

/// Makes sure this thread has an alternate signal stack big enough for our
/// handler (Rust installs a small one on its own threads; we replace it only
/// if it is smaller than we need).
fn ensure_alt_stack() {
    if ALT_STACK.with(|c| c.get().is_some()) {
        return;
    }
    // SAFETY: querying and installing a signal stack for the current thread;
    // the mapping stays alive until the thread-local is dropped at thread exit.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(ptr::null(), &mut old) == 0
            && old.ss_flags & libc::SS_DISABLE == 0
            && old.ss_size >= ALT_STACK_SIZE
        {
            ALT_STACK.with(|c| c.set(Some(())));
            return;
        }
        let page = 4096;
        let size = ALT_STACK_SIZE + page;
        let mapping = libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANON,
            -1,
            0,
        );
        if mapping == libc::MAP_FAILED {
            return; // fall back to whatever the thread has; faults still work on the main stack
        }
        let stack = (mapping as *mut u8).add(page) as *mut c_void;
        if libc::mprotect(stack, ALT_STACK_SIZE, libc::PROT_READ | libc::PROT_WRITE) != 0 {
            libc::munmap(mapping, size);
            return;
        }
        let ss = libc::stack_t {
            ss_sp: stack,
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        if libc::sigaltstack(&ss, ptr::null_mut()) != 0 {
            libc::munmap(mapping, size);
            return;
        }
        ALT_STACK_OWNED.with(|c| *c.borrow_mut() = Some(AltStack { mapping, size }));
        ALT_STACK.with(|c| c.set(Some(())));
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::{self, CodeInfo};

    /// A page of hand-written machine code: `ret` at 0, `ud2` at 16,
    /// a load from address 0 at 32 (`mov rax, [0]` then `ret`).
    struct Page {
        ptr: *mut u8,
    }

    impl Page {
        fn new() -> Page {
            // SAFETY: a fresh anonymous mapping that we fill, then make
            // read+execute before anything runs it.
            unsafe {
                let p = libc::mmap(
                    ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANON,
                    -1,
                    0,
                ) as *mut u8;
                assert_ne!(p as *mut c_void, libc::MAP_FAILED);
                std::ptr::write_bytes(p, 0xcc, 4096);
                *p = 0xc3;
                *p.add(16) = 0x0f;
                *p.add(17) = 0x0b;
                let load = [0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0, 0xc3];
                std::ptr::copy_nonoverlapping(load.as_ptr(), p.add(32), load.len());
                assert_eq!(
                    libc::mprotect(p as *mut c_void, 4096, libc::PROT_READ | libc::PROT_EXEC),
                    0
                );
                Page { ptr: p }
            }
        }
        fn entry(&self, off: usize) -> ArrayCall {
            // SAFETY: the code at `off` is a complete function that ignores
            // its arguments and returns (or traps).
            unsafe { std::mem::transmute::<*mut u8, ArrayCall>(self.ptr.add(off)) }
        }
    }

    // SAFETY: the page is immutable (read+execute) once built.
    unsafe impl Send for Page {}
    // SAFETY: as above.
    unsafe impl Sync for Page {}

    impl Drop for Page {
        fn drop(&mut self) {
            // SAFETY: unmapping the page we mapped.
            unsafe { libc::munmap(self.ptr as *mut c_void, 4096) };
        }
    }

    struct Info(usize);
    impl CodeInfo for Info {
        fn lookup_trap(&self, pc: usize) -> Option<TrapKind> {
            match pc - self.0 {
                16 => Some(TrapKind::UnreachableCodeReached),
                32 => Some(TrapKind::MemoryOutOfBounds),
                _ => None,
            }
        }
        fn frame(&self, _pc: usize) -> Option<crate::error::FrameInfo> {
            None
        }
        fn func_name(&self, _pc: usize) -> Option<String> {
            Some("test".into())
        }
    }

    #[test]
    fn traps_in_registered_code_unwind_to_the_caller_and_calls_still_work() {
        let page = Page::new();
        let start = page.ptr as usize;
        let _reg = registry::register(start, start + 4096, Arc::new(Info(start)));
        let mut slots = [0u128; 1];
        for _ in 0..100 {
            // SAFETY: the page's functions ignore their arguments.
            unsafe {
                call_wasm(
                    page.entry(0),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    slots.as_mut_ptr(),
                    1,
                )
                .expect("`ret` returns");
                let t = call_wasm(
                    page.entry(16),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    slots.as_mut_ptr(),
                    1,
                )
                .expect_err("`ud2` traps");
                assert_eq!(t.kind, TrapKind::UnreachableCodeReached);
                assert_eq!(t.pc, start + 16);
                let t = call_wasm(
                    page.entry(32),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    slots.as_mut_ptr(),
                    1,
                )
                .expect_err("the load faults");
                assert_eq!(t.kind, TrapKind::MemoryOutOfBounds);
            }
        }
    }

    #[test]
    fn traps_work_on_fresh_threads_too() {
        let page = Arc::new(Page::new());
        let start = page.ptr as usize;
        let _reg = registry::register(start, start + 4096, Arc::new(Info(start)));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let page = page.clone();
                std::thread::spawn(move || {
                    let mut slots = [0u128; 1];
                    for _ in 0..50 {
                        // SAFETY: as above.
                        let t = unsafe {
                            call_wasm(
                                page.entry(16),
                                ptr::null_mut(),
                                ptr::null_mut(),
                                slots.as_mut_ptr(),
                                1,
                            )
                        };
                        assert_eq!(t.unwrap_err().kind, TrapKind::UnreachableCodeReached);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
