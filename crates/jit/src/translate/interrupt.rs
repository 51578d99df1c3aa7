//! Interruption: fuel metering, epoch deadlines and interrupt polls, checked
//! at function entry and at every loop header.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};

use super::FuncTranslator;
use super::abi::readonly_flags;
use crate::builtins::Builtin;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

impl FuncTranslator<'_, '_> {
    /// At function entry, with any interruption check on: loads the store
    /// context pointers the checks use, reads the fuel into its variable
    /// and emits the entry checks.
    pub(super) fn interrupt_prologue(&mut self) {
        let tunables = self.env.tunables;
        if tunables.epoch_interruption || tunables.consume_fuel || tunables.interrupt_poll {
            let store_ctx = self.builder.ins().load(
                I64,
                readonly_flags(),
                self.vmctx,
                self.env.offsets.store_ctx() as i32,
            );
            self.store_ctx = Some(store_ctx);
            if tunables.epoch_interruption {
                let p = self.builder.ins().load(
                    I64,
                    readonly_flags(),
                    store_ctx,
                    VMOffsets::STORE_CTX_EPOCH_PTR as i32,
                );
                self.epoch_ptr = Some(p);
            }
            if tunables.interrupt_poll {
                let p = self.builder.ins().load(
                    I64,
                    readonly_flags(),
                    store_ctx,
                    VMOffsets::STORE_CTX_POLL_PAGE as i32,
                );
                self.poll_page = Some(p);
            }
            if tunables.consume_fuel {
                let var = self.builder.declare_var(I64);
                self.fuel = Some(var);
                self.fuel_reload();
            }
            self.interrupt_checks(true);
        }
    }

    fn store_ctx_flags(&self) -> MemFlagsData {
        MemFlagsData::trusted().with_alias_region(Some(self.vmctx_region))
    }

    /// Adds the fuel of the operators translated since the last flush to
    /// the fuel variable. Called before every branch, call and return, so
    /// that each block starts with nothing pending.
    ///
    /// A segment that overdraws the fuel (`fuel_consumed > 0` after adding
    /// its cost) calls `OutOfFuel` right there, so a call given one unit less
    /// than it needs always traps, while exactly enough fuel ends at 0.
    pub(super) fn fuel_flush(&mut self) {
        if let Some(var) = self.fuel
            && self.fuel_pending != 0
        {
            let v = self.builder.use_var(var);
            let v = self.builder.ins().iadd_imm_s(v, self.fuel_pending as i64);
            self.builder.def_var(var, v);
            self.fuel_pending = 0;
            let over = self
                .builder
                .ins()
                .icmp_imm_s(IntCC::SignedGreaterThan, v, 0);
            self.cold_fuel_call(over);
        }
    }

    /// Flushes and writes the fuel variable to `store_ctx->fuel_consumed`
    /// (before calls and returns).
    pub(super) fn fuel_save(&mut self) {
        self.fuel_flush();
        if let (Some(var), Some(store_ctx)) = (self.fuel, self.store_ctx) {
            let v = self.builder.use_var(var);
            let f = self.store_ctx_flags();
            self.builder
                .ins()
                .store(f, v, store_ctx, VMOffsets::STORE_CTX_FUEL_CONSUMED as i32);
        }
    }

    /// Re-reads `store_ctx->fuel_consumed` into the fuel variable (at entry
    /// and after calls).
    pub(super) fn fuel_reload(&mut self) {
        if let (Some(var), Some(store_ctx)) = (self.fuel, self.store_ctx) {
            let f = self.store_ctx_flags();
            let v = self.builder.ins().load(
                I64,
                f,
                store_ctx,
                VMOffsets::STORE_CTX_FUEL_CONSUMED as i32,
            );
            self.builder.def_var(var, v);
        }
    }

    /// The checks at function entry and loop headers: fuel, then epoch,
    /// then the interrupt poll (at loop headers only: at entry the
    /// prologue's stack-limit check does its job, because an interrupt also
    /// raises the store's stack limit so that the next prologue traps; the
    /// runtime reports such a trap as an interrupt).
    pub(super) fn interrupt_checks(&mut self, entry: bool) {
        if let Some(page) = self.poll_page.filter(|_| !entry) {
            // A load whose only effect is that it may trap: the runtime
            // interrupts by making the page unreadable. It must be an atomic
            // load: Cranelift merges a plain load with an earlier one from
            // the same address (it assumes protections never change), which
            // removed the poll from loop headers. An atomic load is never
            // merged, moved or removed, and on x86-64 it is still one `mov`.
            let flags =
                MemFlagsData::new().with_trap_code(Some(Self::trap_code(TrapKind::Interrupt)));
            self.builder.ins().atomic_load(I8, flags, page);
        }
        if let Some(var) = self.fuel {
            debug_assert_eq!(self.fuel_pending, 0);
            let v = self.builder.use_var(var);
            let out = self
                .builder
                .ins()
                .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, v, 0);
            self.cold_fuel_call(out);
        }
        if let (Some(epoch_ptr), Some(store_ctx)) = (self.epoch_ptr, self.store_ctx) {
            // Plain loads, re-done at every check: the slow path's call
            // makes every check point a new memory state, so they are
            // never merged with an earlier load.
            let f = MemFlagsData::trusted();
            let epoch = self.builder.ins().load(I64, f, epoch_ptr, 0);
            let deadline = self.builder.ins().load(
                I64,
                f,
                store_ctx,
                VMOffsets::STORE_CTX_EPOCH_DEADLINE as i32,
            );
            let hit = self
                .builder
                .ins()
                .icmp(IntCC::UnsignedGreaterThanOrEqual, epoch, deadline);
            self.cold_builtin_call(hit, Builtin::EpochInterrupt);
        }
    }

    /// If `cond`, calls status-returning builtin `b` (with no arguments
    /// beyond the vmctx) in a cold block, trapping on a non-zero status.
    /// The cold `OutOfFuel` call: the fuel variable is written to the store
    /// before it and read back after it, so the runtime may refill the fuel
    /// (from a reserve, possibly after yielding to an async executor) and
    /// let the code go on.
    fn cold_fuel_call(&mut self, cond: Value) {
        let (Some(var), Some(store_ctx)) = (self.fuel, self.store_ctx) else {
            return self.cold_builtin_call(cond, Builtin::OutOfFuel);
        };
        let slow = self.builder.create_block();
        let cont = self.builder.create_block();
        self.builder.set_cold_block(slow);
        self.builder.ins().brif(cond, slow, &[], cont, &[]);
        self.builder.seal_block(slow);
        self.builder.switch_to_block(slow);
        let f = self.store_ctx_flags();
        let v = self.builder.use_var(var);
        self.builder
            .ins()
            .store(f, v, store_ctx, VMOffsets::STORE_CTX_FUEL_CONSUMED as i32);
        self.call_builtin_checked(Builtin::OutOfFuel, &[]);
        let v =
            self.builder
                .ins()
                .load(I64, f, store_ctx, VMOffsets::STORE_CTX_FUEL_CONSUMED as i32);
        self.builder.def_var(var, v);
        self.builder.ins().jump(cont, &[]);
        self.builder.seal_block(cont);
        self.builder.switch_to_block(cont);
    }

    fn cold_builtin_call(&mut self, cond: Value, b: Builtin) {
        let slow = self.builder.create_block();
        let cont = self.builder.create_block();
        self.builder.set_cold_block(slow);
        self.builder.ins().brif(cond, slow, &[], cont, &[]);
        self.builder.seal_block(slow);
        self.builder.switch_to_block(slow);
        self.call_builtin_checked(b, &[]);
        self.builder.ins().jump(cont, &[]);
        self.builder.seal_block(cont);
        self.builder.switch_to_block(cont);
    }
}
