//! The runtime functions compiled code calls through the vmctx builtins
//! table (`weft_jit::Builtin` gives the order and the signatures).
//!
//! Every builtin receives the caller's vmctx, finds its instance and store
//! through the vmctx's `runtime` field, and never unwinds: fallible ones
//! record the trap reason in the store (`Pending::Trap`) and return a
//! non-zero status, on which compiled code executes its trap instruction.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use weft_jit::Builtin;

use crate::instance::{InstanceData, memory_init, table_init};
use crate::interrupt::UpdateDeadline;
use crate::store::{Pending, StoreOpaque};
use weft_jit::TrapKind;

/// Finds the store and the instance index of a vmctx.
///
/// # Safety
/// `vmctx` must be the live vmctx of an instance of this runtime, passed by
/// compiled code while the store is inside a wasm call (so the Rust frame
/// holding `&mut Store` is suspended and does not use it).
unsafe fn context<'a>(vmctx: *mut u8) -> Option<(&'a mut StoreOpaque, usize)> {
    // SAFETY: see the function's contract.
    unsafe {
        let inst = InstanceData::from_vmctx(vmctx)?;
        let index = inst.index;
        Some((&mut *inst.store, index))
    }
}

/// Why a builtin failed: a trap of its own, or something that must reach the
/// embedder as it is (an error or a panic from user code the builtin called).
pub(crate) enum Failure {
    Trap(TrapKind),
    Pending(Pending),
}

impl From<TrapKind> for Failure {
    fn from(kind: TrapKind) -> Failure {
        Failure::Trap(kind)
    }
}

/// The frame of every builtin: finds the caller's store and instance, runs
/// `body`, and on failure records the reason in the store and returns
/// `failed` (the value on which compiled code traps with `Host`).
///
/// A panic in `body` — a bug, or user code the builtin calls (an epoch
/// callback, a resource limiter) — is caught here and carried to the
/// embedder's frame like a host function's panic: unwinding out of an
/// `extern "C"` builtin would abort the process.
///
/// # Safety
/// As for [`context`].
unsafe fn with_context<T>(
    vmctx: *mut u8,
    failed: T,
    body: impl FnOnce(&mut StoreOpaque, usize) -> Result<T, Failure>,
) -> T {
    // SAFETY: forwarded from the caller.
    let Some((opaque, inst)) = (unsafe { context(vmctx) }) else {
        return failed;
    };
    let opaque_ptr: *mut StoreOpaque = opaque.self_ptr;
    // SAFETY: `opaque_ptr` is the store's root pointer; the `&mut` above
    // is not used again, so `body` gets the only reference.
    let r = panic::catch_unwind(AssertUnwindSafe(|| body(unsafe { &mut *opaque_ptr }, inst)));
    // SAFETY: `body` has returned or unwound; its borrow has ended.
    let opaque = unsafe { &mut *opaque_ptr };
    let pending = match r {
        Ok(Ok(v)) => return v,
        Ok(Err(Failure::Trap(kind))) => Pending::Trap(kind),
        Ok(Err(Failure::Pending(p))) => p,
        Err(payload) => Pending::Panic(payload),
    };
    opaque.pending = Some(pending);
    failed
}

/// An embedder's error, delivered as it is.
fn pending_error(e: crate::Error) -> Failure {
    Failure::Pending(Pending::Error(e))
}

/// Store index of memory `i` of instance `inst`.
fn memory_of(opaque: &StoreOpaque, inst: usize, i: u32) -> Result<usize, TrapKind> {
    let m = opaque.instances[inst].memories.get(i as usize);
    m.copied().ok_or(TrapKind::MemoryOutOfBounds)
}

/// Store index of table `i` of instance `inst`.
fn table_of(opaque: &StoreOpaque, inst: usize, i: u32) -> Result<usize, TrapKind> {
    let t = opaque.instances[inst].tables.get(i as usize);
    t.copied().ok_or(TrapKind::TableOutOfBounds)
}

fn ok_or(ok: bool, kind: TrapKind) -> Result<(), TrapKind> {
    if ok { Ok(()) } else { Err(kind) }
}

/// Bulk operations work in chunks of this many bytes and notice an interrupt
/// between chunks, so a huge `memory.fill` cannot delay it unboundedly.
const CHUNK: usize = 16 << 20;

/// Runs `op(offset, n, total)` over `[0, total)` in chunks, stopping with an
/// interrupt trap if the store is interrupted in between.
fn chunked(
    opaque: &StoreOpaque,
    total: usize,
    mut op: impl FnMut(usize, usize, usize),
) -> Result<(), TrapKind> {
    let mut off = 0;
    while off < total {
        if off > 0 && opaque.vmstore.is_interrupted() {
            return Err(TrapKind::Interrupt);
        }
        let n = CHUNK.min(total - off);
        op(off, n, total);
        off += n;
    }
    Ok(())
}

unsafe extern "C" fn epoch_interrupt(vmctx: *mut u8) -> u32 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe { with_context(vmctx, 1, |opaque, _| epoch_slow_path(opaque)) }
}

/// The epoch deadline was reached (or an interrupt lowered it): trap, or ask
/// the embedder's callback how to go on.
fn epoch_slow_path(opaque: &mut StoreOpaque) -> Result<u32, Failure> {
    if opaque.vmstore.is_interrupted() {
        return Err(TrapKind::Interrupt.into());
    }
    let epoch = opaque.engine.current_epoch();
    if epoch < opaque.epoch_deadline {
        // Not due (the deadline moved since the check was made).
        let d = opaque.epoch_deadline;
        opaque.vmstore.epoch_deadline.store(d, Ordering::SeqCst);
        return Ok(0);
    }
    let Some(mut callback) = opaque.epoch_callback.take() else {
        return Err(TrapKind::Interrupt.into());
    };
    let opaque_ptr = opaque.self_ptr;
    // A panic in the callback unwinds to `with_context`; the callback is then
    // dropped rather than reinstalled (the embedder sees the panic anyway).
    let r = callback(opaque_ptr);
    // SAFETY: the callback has returned and its borrow of the store ended.
    let opaque = unsafe { &mut *opaque_ptr };
    if opaque.epoch_callback.is_none() {
        opaque.epoch_callback = Some(callback);
    }
    match r {
        Ok(UpdateDeadline::Continue(delta)) => {
            let d = epoch.saturating_add(delta.max(1));
            opaque.epoch_deadline = d;
            opaque.vmstore.epoch_deadline.store(d, Ordering::SeqCst);
            Ok(0)
        }
        Ok(UpdateDeadline::Interrupt) => Err(TrapKind::Interrupt.into()),
        Ok(UpdateDeadline::Yield(delta)) => {
            crate::fiber::yield_now().map_err(pending_error)?;
            // SAFETY: the fiber is running again; nothing else borrowed the
            // store while it was suspended (the future holds it).
            let opaque = unsafe { &mut *opaque_ptr };
            if opaque.vmstore.is_interrupted() {
                return Err(TrapKind::Interrupt.into());
            }
            let d = opaque.engine.current_epoch().saturating_add(delta.max(1));
            opaque.epoch_deadline = d;
            opaque.vmstore.epoch_deadline.store(d, Ordering::SeqCst);
            Ok(0)
        }
        Err(e) => Err(pending_error(e)),
    }
}

unsafe extern "C" fn out_of_fuel(vmctx: *mut u8) -> u32 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe { with_context(vmctx, 1, |opaque, _| refuel(opaque)) }
}

/// The fuel slice is used up (compiled code wrote its count to the store
/// before calling): refill it from the reserve, yielding first inside an
/// async call with a yield interval, or trap if the reserve cannot cover
/// what was spent.
fn refuel(opaque: &mut StoreOpaque) -> Result<u32, Failure> {
    let consumed = opaque.vmstore.fuel_consumed.load(Ordering::SeqCst);
    let overdraft = consumed.max(0) as u64;
    // At a loop header `consumed == 0` means nothing is left for the next
    // iteration: at least one unit must come from the reserve.
    let need = overdraft.max(1);
    if opaque.fuel_reserve < need {
        return Err(TrapKind::OutOfFuel.into());
    }
    let slice = opaque.fuel_yield_interval.unwrap_or(u64::MAX);
    let refill = opaque.fuel_reserve.min(slice.max(need));
    opaque.fuel_reserve -= refill;
    opaque
        .vmstore
        .fuel_consumed
        .store(consumed - refill as i64, Ordering::SeqCst);
    if opaque.fuel_yield_interval.is_some() && crate::fiber::on_fiber() {
        let opaque_ptr = opaque.self_ptr;
        crate::fiber::yield_now().map_err(pending_error)?;
        // SAFETY: the fiber runs again; the store was held by its future
        // meanwhile, so nothing else touched it.
        let opaque = unsafe { &mut *opaque_ptr };
        if opaque.vmstore.is_interrupted() {
            return Err(TrapKind::Interrupt.into());
        }
    }
    Ok(0)
}

/// The wait/notify builtins: a trap is reported as `u64::MAX`.
///
/// # Safety
/// As for [`context`].
unsafe fn with_memory(
    vmctx: *mut u8,
    mem: u32,
    op: impl FnOnce(&crate::memory::MemoryData, &weft_memory::WaitCanceller) -> Result<u32, TrapKind>,
) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_context(vmctx, u64::MAX, |o, inst| {
            let m = &o.memories[memory_of(o, inst, mem)?];
            Ok(op(m, &o.vmstore.wait_cancel).map(u64::from)?)
        })
    }
}

unsafe extern "C" fn atomic_notify(vmctx: *mut u8, mem: u32, addr: u64, count: u32) -> u64 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe { with_memory(vmctx, mem, |m, _| m.notify(addr, count)) }
}

unsafe extern "C" fn atomic_wait32(
    vmctx: *mut u8,
    mem: u32,
    addr: u64,
    expected: u32,
    timeout_ns: i64,
) -> u64 {
    // SAFETY: called by compiled code with its own vmctx. The wait blocks
    // this thread only; the memory's wait queue is shared with the other
    // threads using this shared memory.
    unsafe { with_memory(vmctx, mem, |m, c| m.wait32(addr, expected, timeout_ns, c)) }
}

unsafe extern "C" fn atomic_wait64(
    vmctx: *mut u8,
    mem: u32,
    addr: u64,
    expected: u64,
    timeout_ns: i64,
) -> u64 {
    // SAFETY: as for `atomic_wait32`.
    unsafe { with_memory(vmctx, mem, |m, c| m.wait64(addr, expected, timeout_ns, c)) }
}

// Grow builtins report a refused grow as `u64::MAX` (wasm's -1), which is not
// a trap, and a trap as `weft_jit::GROW_TRAP` (-2 as i64: no memory or table
// size can reach it).

unsafe extern "C" fn memory_grow(vmctx: *mut u8, mem: u32, delta: u64) -> u64 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, weft_jit::GROW_TRAP, |o, inst| {
            let m = memory_of(o, inst, mem)?;
            let r = o.grow_memory(m, delta).map_err(pending_error)?;
            Ok(r.unwrap_or(u64::MAX))
        })
    }
}

unsafe extern "C" fn table_grow(vmctx: *mut u8, table: u32, delta: u64, init: u64) -> u64 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, weft_jit::GROW_TRAP, |o, inst| {
            let t = table_of(o, inst, table)?;
            let r = o
                .grow_table(t, delta, init as usize)
                .map_err(pending_error)?;
            Ok(r.unwrap_or(u64::MAX))
        })
    }
}

unsafe extern "C" fn table_fill(vmctx: *mut u8, table: u32, dst: u64, val: u64, len: u64) -> u32 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, 1, |o, inst| {
            let t = table_of(o, inst, table)?;
            ok_or(
                o.tables[t].fill(dst, val as usize, len),
                TrapKind::TableOutOfBounds,
            )?;
            Ok(0)
        })
    }
}

unsafe extern "C" fn table_copy(
    vmctx: *mut u8,
    dst_table: u32,
    src_table: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, 1, |o, inst| {
            let (d, s) = (table_of(o, inst, dst_table)?, table_of(o, inst, src_table)?);
            let ok = if d == s {
                o.tables[d].copy_within(dst, src, len)
            } else {
                match o.tables[s].read(src, len).map(<[usize]>::to_vec) {
                    Some(items) => o.tables[d].write(dst, &items),
                    None => false,
                }
            };
            ok_or(ok, TrapKind::TableOutOfBounds)?;
            Ok(0)
        })
    }
}

unsafe extern "C" fn table_init_builtin(
    vmctx: *mut u8,
    table: u32,
    elem: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, 1, |o, inst| {
            Ok(table_init(o, inst, table, elem, dst, src, len).map(|()| 0)?)
        })
    }
}

unsafe extern "C" fn elem_drop(vmctx: *mut u8, elem: u32) {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, (), |opaque, inst| -> Result<(), Failure> {
            if let Some(e) = opaque.instances[inst].elems.get_mut(elem as usize) {
                *e = None;
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn memory_copy(
    vmctx: *mut u8,
    dst_mem: u32,
    src_mem: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    let body = |o: &mut StoreOpaque, inst: usize| -> Result<u32, Failure> {
        let (d, s) = (memory_of(o, inst, dst_mem)?, memory_of(o, inst, src_mem)?);
        let sp = o.memories[s]
            .range_ptr(src, len)
            .ok_or(TrapKind::MemoryOutOfBounds)?;
        let dp = o.memories[d]
            .range_ptr(dst, len)
            .ok_or(TrapKind::MemoryOutOfBounds)?;
        // Marked before the copy: an interrupt between chunks leaves part
        // of it done, and that part must be reset too.
        o.memories[d].mark_written(dst, len);
        chunked(o, len as usize, |off, n, total| {
            // Copy backwards when the destination is above the source,
            // so overlapping chunks read bytes not yet overwritten.
            let off = if (dp as usize) > (sp as usize) {
                total - off - n
            } else {
                off
            };
            // SAFETY: both ranges were checked against the current
            // lengths and each chunk lies within them; `copy` handles
            // overlap within a chunk. A shared memory may be written by
            // other threads meanwhile, which wasm's memory model allows
            // (racy bytes, never out of bounds: shared memories never
            // move or shrink).
            unsafe { std::ptr::copy(sp.add(off), dp.add(off), n) }
        })?;
        Ok(0)
    };
    // SAFETY: called by compiled code with its own vmctx.
    unsafe { with_context(vmctx, 1, body) }
}

unsafe extern "C" fn memory_fill(vmctx: *mut u8, mem: u32, dst: u64, val: u32, len: u64) -> u32 {
    let body = |o: &mut StoreOpaque, inst: usize| -> Result<u32, Failure> {
        let m = memory_of(o, inst, mem)?;
        let p = o.memories[m]
            .range_ptr(dst, len)
            .ok_or(TrapKind::MemoryOutOfBounds)?;
        // Marked first, as for `memory_copy`.
        o.memories[m].mark_written(dst, len);
        chunked(o, len as usize, |off, n, _| {
            // SAFETY: the range was checked against the current length
            // and each chunk lies within it (see `memory_copy` for
            // shared memories).
            unsafe { std::ptr::write_bytes(p.add(off), val as u8, n) }
        })?;
        Ok(0)
    };
    // SAFETY: called by compiled code with its own vmctx.
    unsafe { with_context(vmctx, 1, body) }
}

unsafe extern "C" fn memory_init_builtin(
    vmctx: *mut u8,
    mem: u32,
    data: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, 1, |o, inst| {
            Ok(memory_init(o, inst, mem, data, dst, src, len).map(|()| 0)?)
        })
    }
}

unsafe extern "C" fn data_drop(vmctx: *mut u8, data: u32) {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, (), |opaque, inst| -> Result<(), Failure> {
            if let Some(d) = opaque.instances[inst].data_dropped.get_mut(data as usize) {
                *d = true;
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn throw(vmctx: *mut u8, tag: u32, values: *const u128) -> u32 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, 1, |o, inst| {
            let t = *o.instances[inst]
                .tags
                .get(tag as usize)
                .ok_or(TrapKind::Host)?;
            let n = o.tags[t].ty.params().len();
            let fields: Box<[u128]> = (0..n)
                // SAFETY: compiled code passes one 16-byte slot per tag
                // parameter at `values` (not necessarily 16-aligned).
                .map(|i| std::ptr::read_unaligned(values.add(i)))
                .collect();
            let handle = o.alloc_exception(t, fields).map_err(pending_error)?;
            o.set_pending_exception(handle);
            Ok(0)
        })
    }
}

unsafe extern "C" fn throw_ref(vmctx: *mut u8, exn: u64) -> u32 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, 1, |o, _| {
            // Compiled code trapped on null; an `exnref` it holds always
            // names an exception of this store (they are never freed while
            // they are values).
            if o.exceptions.get(exn).is_none() {
                return Err(TrapKind::NullExceptionReference.into());
            }
            o.set_pending_exception(exn);
            Ok(0)
        })
    }
}

unsafe extern "C" fn catch_exception(vmctx: *mut u8, values: *mut u128, keep: u32) -> u64 {
    // SAFETY: called by compiled code with its own vmctx.
    unsafe {
        with_context(vmctx, 0, |o, _| {
            let handle = o.take_pending_exception().ok_or(TrapKind::Host)?;
            let obj = o.exceptions.get(handle).ok_or(TrapKind::Host)?;
            if !values.is_null() {
                for (i, &f) in obj.fields.iter().enumerate() {
                    // SAFETY: compiled code passes one 16-byte slot per
                    // field of the tag its clause names (this exception's).
                    std::ptr::write_unaligned(values.add(i), f);
                }
            }
            if keep != 0 {
                o.exceptions.escape(handle);
                Ok(handle)
            } else {
                o.exceptions.release(handle);
                Ok(0)
            }
        })
    }
}

/// Builtins this runtime provides (in `Builtin` order).
const PROVIDED: usize = 18;

// Compiled code must never index past the table (the runtime may provide
// builtins that a JIT version does not use yet).
const _: () = assert!(Builtin::COUNT <= PROVIDED);

struct Table([*const u8; PROVIDED]);

// SAFETY: the table holds code addresses of functions, immutable for the
// life of the process.
unsafe impl Sync for Table {}

type Grow = unsafe extern "C" fn(*mut u8, u32, u64) -> u64;
type TGrow = unsafe extern "C" fn(*mut u8, u32, u64, u64) -> u64;
type Fill = unsafe extern "C" fn(*mut u8, u32, u64, u64, u64) -> u32;
type Copy5 = unsafe extern "C" fn(*mut u8, u32, u32, u64, u64, u64) -> u32;
type Drop1 = unsafe extern "C" fn(*mut u8, u32);
type MFill = unsafe extern "C" fn(*mut u8, u32, u64, u32, u64) -> u32;
type Status0 = unsafe extern "C" fn(*mut u8) -> u32;
type Notify = unsafe extern "C" fn(*mut u8, u32, u64, u32) -> u64;
type Wait32 = unsafe extern "C" fn(*mut u8, u32, u64, u32, i64) -> u64;
type Wait64 = unsafe extern "C" fn(*mut u8, u32, u64, u64, i64) -> u64;
type Throw = unsafe extern "C" fn(*mut u8, u32, *const u128) -> u32;
type ThrowRef = unsafe extern "C" fn(*mut u8, u64) -> u32;
type Catch = unsafe extern "C" fn(*mut u8, *mut u128, u32) -> u64;

/// The builtins in `weft_jit::Builtin` order.
static TABLE: Table = Table([
    memory_grow as Grow as *const u8,
    table_grow as TGrow as *const u8,
    table_fill as Fill as *const u8,
    table_copy as Copy5 as *const u8,
    table_init_builtin as Copy5 as *const u8,
    elem_drop as Drop1 as *const u8,
    memory_copy as Copy5 as *const u8,
    memory_fill as MFill as *const u8,
    memory_init_builtin as Copy5 as *const u8,
    data_drop as Drop1 as *const u8,
    epoch_interrupt as Status0 as *const u8,
    out_of_fuel as Status0 as *const u8,
    atomic_notify as Notify as *const u8,
    atomic_wait32 as Wait32 as *const u8,
    atomic_wait64 as Wait64 as *const u8,
    throw as Throw as *const u8,
    throw_ref as ThrowRef as *const u8,
    catch_exception as Catch as *const u8,
]);

/// The address of the builtins table stored in every vmctx.
pub(crate) fn table() -> *const *const u8 {
    TABLE.0.as_ptr()
}
