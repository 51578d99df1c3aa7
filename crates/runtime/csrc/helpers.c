// weft-runtime: the only C in weft. setjmp/longjmp cannot be called soundly
// from Rust (setjmp returns twice), so the frame that calls setjmp is C.
//
// Invariant: the only frames that weft_unwind skips are this C frame's callees
// that are JIT-compiled WebAssembly code (and trampolines). No Rust frame ever
// lies between weft_call_wasm and the trapping instruction, because host
// functions and runtime builtins never unwind: they return a status that
// compiled code turns into a trap instruction.
#include <setjmp.h>
#include <stddef.h>

typedef void (*weft_array_call_t)(void *, void *, void *, size_t);

int weft_call_wasm(void **jmp_slot, weft_array_call_t f, void *vmctx,
                   void *caller_vmctx, void *values, size_t len) {
  jmp_buf buf;
  void *volatile prev = *jmp_slot;
  if (setjmp(buf) != 0) {
    *jmp_slot = prev;
    return 0;
  }
  *jmp_slot = &buf;
  f(vmctx, caller_vmctx, values, len);
  *jmp_slot = prev;
  return 1;
}

void weft_unwind(void *jmp_buf_ptr) { longjmp(*(jmp_buf *)jmp_buf_ptr, 1); }
