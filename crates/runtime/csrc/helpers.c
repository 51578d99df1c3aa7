// weft-runtime: the only C in weft. setjmp/longjmp cannot be called soundly
// from Rust (setjmp returns twice), so the frame that calls setjmp is C.
// On x86-64 Linux the entry is a few instructions of assembly instead
// (src/traphandlers.rs), and this file compiles to nothing.
//
// Invariant: the only frames that weft_unwind skips are this C frame's callees
// that are JIT-compiled WebAssembly code (and trampolines). No Rust frame ever
// lies between weft_call_wasm and the trapping instruction, because host
// functions and runtime builtins never unwind: they return a status that
// compiled code turns into a trap instruction.
//
// With GCC or Clang on x86-64, the jump uses the compiler's own
// __builtin_setjmp/__builtin_longjmp: the buffer holds only the frame
// pointer, the stack pointer and the resume address, and the compiler saves
// and restores every callee-saved register around the setjmp itself (it
// treats the second return as clobbering them). That is a few instructions
// instead of a libc call that saves and mangles every register on each entry
// into wasm. Neither form restores the signal mask, which weft does not
// need: its handlers run with SA_NODEFER, so nothing is blocked when a trap
// jumps out of one. Other targets use the standard setjmp.
#if !(defined(__x86_64__) && defined(__linux__) && !defined(__ANDROID__))
#include <setjmp.h>
#include <stddef.h>

typedef void (*weft_array_call_t)(void *, void *, void *, size_t);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
typedef void *weft_jmp_buf[5];
#define WEFT_SETJMP(buf) __builtin_setjmp(buf)
#define WEFT_LONGJMP(buf) __builtin_longjmp(buf, 1)
#else
typedef jmp_buf weft_jmp_buf;
#define WEFT_SETJMP(buf) setjmp(buf)
#define WEFT_LONGJMP(buf) longjmp(buf, 1)
#endif

int weft_call_wasm(void **jmp_slot, weft_array_call_t f, void *vmctx,
                   void *caller_vmctx, void *values, size_t len) {
  weft_jmp_buf buf;
  void *volatile prev = *jmp_slot;
  void **volatile slot = jmp_slot;
  if (WEFT_SETJMP(buf) != 0) {
    *slot = prev;
    return 0;
  }
  *jmp_slot = (void *)buf;
  f(vmctx, caller_vmctx, values, len);
  *jmp_slot = prev;
  return 1;
}

void weft_unwind(void *jmp_buf_ptr) {
  WEFT_LONGJMP(*(weft_jmp_buf *)jmp_buf_ptr);
}
#endif
