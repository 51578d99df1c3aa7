//! Linear memory: the address computation and bounds check of every access,
//! the plain loads and stores (mapped from their operators by
//! [`memory_access`]), `memory.size` and `memory.grow`.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F64, I16, I32, I64};
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Type, Value};
use weft_decoder::MemoryType;
use weft_decoder::wasmparser::{MemArg, MemArgTarget, Operator};

use super::abi::readonly_flags;
use super::simd::V128;
use super::{FuncTranslator, unsupported};
use crate::builtins::Builtin;
use crate::error::CompileError;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

/// Where a store went, for [`FuncTranslator::mark_written`].
#[derive(Clone, Copy)]
pub(super) struct Written {
    mem: u32,
    /// The address operand as the instruction found it (what identifies
    /// "the same base" for `mark_written`).
    operand: Value,
    /// The address operand as an `i64`.
    index: Value,
    offset: u64,
}

impl Written {
    pub(super) fn new(mem: u32, operand: Value, index: Value, offset: u64) -> Self {
        Written {
            mem,
            operand,
            index,
            offset,
        }
    }
}

/// Size/sign of a narrow load.
#[derive(Clone, Copy)]
pub(super) enum Ext {
    None,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
}

/// A plain (non-atomic) memory access.
#[derive(Clone, Copy)]
pub(super) enum Access {
    /// Loads a `ty`, from fewer bytes and extended as `Ext` says.
    Load(Type, Ext),
    /// Stores the low `size` bytes of the operand.
    Store(u32),
}

/// The plain loads and stores: memarg and access.
pub(super) fn memory_access(op: &Operator<'_>) -> Option<(MemArg, Access)> {
    use Access::{Load, Store};
    use Operator as O;
    Some(match *op {
        O::I32Load { memarg } => (memarg, Load(I32, Ext::None)),
        O::I64Load { memarg } => (memarg, Load(I64, Ext::None)),
        O::F32Load { memarg } => (memarg, Load(F32, Ext::None)),
        O::F64Load { memarg } => (memarg, Load(F64, Ext::None)),
        O::I32Load8S { memarg } => (memarg, Load(I32, Ext::S8)),
        O::I32Load8U { memarg } => (memarg, Load(I32, Ext::U8)),
        O::I32Load16S { memarg } => (memarg, Load(I32, Ext::S16)),
        O::I32Load16U { memarg } => (memarg, Load(I32, Ext::U16)),
        O::I64Load8S { memarg } => (memarg, Load(I64, Ext::S8)),
        O::I64Load8U { memarg } => (memarg, Load(I64, Ext::U8)),
        O::I64Load16S { memarg } => (memarg, Load(I64, Ext::S16)),
        O::I64Load16U { memarg } => (memarg, Load(I64, Ext::U16)),
        O::I64Load32S { memarg } => (memarg, Load(I64, Ext::S32)),
        O::I64Load32U { memarg } => (memarg, Load(I64, Ext::U32)),
        O::V128Load { memarg } => (memarg, Load(V128, Ext::None)),
        O::I32Store { memarg } | O::F32Store { memarg } => (memarg, Store(4)),
        O::I64Store { memarg } | O::F64Store { memarg } => (memarg, Store(8)),
        O::I32Store8 { memarg } | O::I64Store8 { memarg } => (memarg, Store(1)),
        O::I32Store16 { memarg } | O::I64Store16 { memarg } => (memarg, Store(2)),
        O::I64Store32 { memarg } => (memarg, Store(4)),
        O::V128Store { memarg } => (memarg, Store(16)),
        _ => return None,
    })
}

impl FuncTranslator<'_, '_> {
    pub(super) fn memory_type(&self, index: u32) -> MemoryType {
        self.env.module.memories[index as usize]
    }

    /// Whether the base pointer of memory `index` may change while code runs.
    fn memory_may_move(&self, mty: &MemoryType) -> bool {
        self.env.tunables.memory_may_move && !mty.shared
    }

    /// `vmctx->memories[index]`: the memory's `VMMemoryDefinition`.
    fn memory_def(&mut self, index: u32) -> Value {
        let off = self.env.offsets.memory(index) as i32;
        self.builder
            .ins()
            .load(I64, readonly_flags(), self.vmctx, off)
    }

    fn memory_base(&mut self, def: Value, mty: &MemoryType) -> Value {
        let flags = if self.memory_may_move(mty) {
            MemFlagsData::trusted().with_alias_region(Some(self.vmctx_region))
        } else {
            readonly_flags()
        };
        self.builder
            .ins()
            .load(I64, flags, def, VMOffsets::MEMORY_BASE as i32)
    }

    /// The memory's current length in bytes. Shared memories are read
    /// atomically (the length is published by growers with `Release`).
    fn memory_length(&mut self, def: Value, mty: &MemoryType) -> Value {
        if mty.shared {
            let p = self
                .builder
                .ins()
                .iadd_imm_s(def, i64::from(VMOffsets::MEMORY_CURRENT_LENGTH));
            self.builder
                .ins()
                .atomic_load(I64, MemFlagsData::trusted(), p)
        } else {
            let flags = MemFlagsData::trusted().with_alias_region(Some(self.vmctx_region));
            self.builder
                .ins()
                .load(I64, flags, def, VMOffsets::MEMORY_CURRENT_LENGTH as i32)
        }
    }

    pub(super) fn heap_flags(&self) -> MemFlagsData {
        MemFlagsData::new()
            .with_endianness(Endianness::Little)
            .with_trap_code(Some(TrapKind::MemoryOutOfBounds.code()))
            .with_alias_region(Some(self.heap_region))
    }

    /// The memory a `memarg` addresses.
    pub(super) fn memarg_memory(memarg: &MemArg) -> Result<u32, CompileError> {
        match memarg.target {
            MemArgTarget::Memory(m) => Ok(m),
            MemArgTarget::Array(_) => Err(unsupported("GC array accesses")),
        }
    }

    /// Pops the address operand of an access to memory `mem` and returns it
    /// as an `i64` (zero-extended for 32-bit memories).
    pub(super) fn pop_index(&mut self, mty: &MemoryType) -> Value {
        let index = self.pop();
        if mty.memory64 {
            index
        } else {
            self.builder.ins().uextend(I64, index)
        }
    }

    /// Pops the address operand of an access of `size` bytes and returns the
    /// native address and the static offset to add to it, after the bounds
    /// check this access needs.
    pub(super) fn heap_addr(
        &mut self,
        memarg: &MemArg,
        size: u32,
    ) -> Result<(Value, i32), CompileError> {
        self.heap_addr_for_store(memarg, size)
            .map(|(a, o, _)| (a, o))
    }

    /// [`heap_addr`](Self::heap_addr) for a store: also what
    /// [`mark_written`](Self::mark_written) needs after it.
    pub(super) fn heap_addr_for_store(
        &mut self,
        memarg: &MemArg,
        size: u32,
    ) -> Result<(Value, i32, Written), CompileError> {
        let mem = Self::memarg_memory(memarg)?;
        let mty = self.memory_type(mem);
        let operand = self.peek();
        let index = self.pop_index(&mty);
        let (addr, off) = self.bounds_checked_addr(mem, &mty, index, memarg.offset, size);
        Ok((addr, off, Written::new(mem, operand, index, memarg.offset)))
    }

    /// Marks the pages a store just made as written, when the engine keeps
    /// write marks (see `Tunables::write_marks`): `0x0101_u16` at
    /// `marks + ((index + offset) >> 12)` covers the page the access starts
    /// in and the next, which an access of at most 16 bytes cannot pass.
    /// Emitted after the store, so an out-of-bounds store has trapped
    /// before: the page index is below the memory's length in pages.
    pub(super) fn mark_written(&mut self, w: Written) {
        let mty = self.memory_type(w.mem);
        if !self.env.tunables.write_marks || mty.shared || mty.memory64 {
            return;
        }
        // A mark made earlier in this block (so it ran before this store)
        // for the same address operand and an offset `o <= w.offset` with
        // `w.offset + 16 <= o + 4096` already covers this access: it
        // marked the two pages from `(index + o) >> 12`, and this access
        // ends below `index + o + 4096`.
        let block = self.builder.current_block();
        if self.marked.0 != block {
            self.marked = (block, Vec::new());
        }
        if self.marked.1.iter().any(|&(m, i, o)| {
            m == w.mem && i == w.operand && o <= w.offset && w.offset - o <= 4096 - 16
        }) {
            return;
        }
        // The last few are enough for the usual runs of stores off one
        // base, and keep the search short in huge blocks.
        if self.marked.1.len() == 16 {
            self.marked.1.remove(0);
        }
        self.marked.1.push((w.mem, w.operand, w.offset));
        let def = self.memory_def(w.mem);
        let marks =
            self.builder
                .ins()
                .load(I64, readonly_flags(), def, VMOffsets::MEMORY_MARKS as i32);
        // A 32-bit index plus an offset below 2^32: no overflow.
        let ea = if w.offset == 0 {
            w.index
        } else {
            self.builder.ins().iadd_imm_s(w.index, w.offset as i64)
        };
        let page = self.builder.ins().ushr_imm_u(ea, 12);
        let at = self.builder.ins().iadd(marks, page);
        let both = self.builder.ins().iconst(I16, 0x0101);
        // Not `trusted()`: that also claims alignment, and `marks + page`
        // is odd half the time.
        let flags = MemFlagsData::new()
            .with_notrap()
            .with_alias_region(Some(self.marks_region));
        self.builder.ins().store(flags, both, at, 0);
    }

    /// Checks an access of `size` bytes at `index + offset` (`index` an
    /// `i64`) against memory `mem`'s bounds (unless guard pages make the
    /// check unnecessary) and returns the native address and the static
    /// offset to add to it.
    pub(super) fn bounds_checked_addr(
        &mut self,
        mem: u32,
        mty: &MemoryType,
        index: Value,
        offset: u64,
        size: u32,
    ) -> (Value, i32) {
        let def = self.memory_def(mem);
        let tunables = self.env.tunables;
        let end_offset = offset.checked_add(u64::from(size));
        let elide = !mty.memory64
            && mty.page_size_log2 >= 16
            && tunables.memory_reservation >= 1 << 32
            && end_offset.is_some_and(|e| e <= tunables.memory_guard_size);
        if !elide {
            let oob = Self::trap_code(TrapKind::MemoryOutOfBounds);
            match end_offset {
                Some(end_offset) => {
                    let length = self.memory_length(def, mty);
                    let end = if mty.memory64 {
                        let k = self.builder.ins().iconst(I64, end_offset as i64);
                        self.builder.ins().uadd_overflow_trap(index, k, oob)
                    } else {
                        // Cannot overflow: both are below 2^33.
                        self.builder.ins().iadd_imm_s(index, end_offset as i64)
                    };
                    let out = self
                        .builder
                        .ins()
                        .icmp(IntCC::UnsignedGreaterThan, end, length);
                    self.builder.ins().trapnz(out, oob);
                }
                None => {
                    // offset + size > u64::MAX: always out of bounds.
                    let one = self.builder.ins().iconst(I32, 1);
                    self.builder.ins().trapnz(one, oob);
                }
            }
        }
        let base = self.memory_base(def, mty);
        let addr = self.builder.ins().iadd(base, index);
        match i32::try_from(offset) {
            Ok(off) => (addr, off),
            Err(_) => {
                let addr = self.builder.ins().iadd_imm_s(addr, offset as i64);
                (addr, 0)
            }
        }
    }

    /// A plain load or store (see [`memory_access`]).
    pub(super) fn op_memory_access(
        &mut self,
        memarg: &MemArg,
        access: Access,
    ) -> Result<(), CompileError> {
        match access {
            Access::Load(ty, ext) => self.op_load(memarg, ty, ext),
            Access::Store(size) => self.op_store(memarg, size),
        }
    }

    pub(super) fn op_load(
        &mut self,
        memarg: &MemArg,
        ty: Type,
        ext: Ext,
    ) -> Result<(), CompileError> {
        let size = match ext {
            Ext::None => ty.bytes(),
            Ext::S8 | Ext::U8 => 1,
            Ext::S16 | Ext::U16 => 2,
            Ext::S32 | Ext::U32 => 4,
        };
        let (addr, off) = self.heap_addr(memarg, size)?;
        let f = self.heap_flags();
        let ins = self.builder.ins();
        let v = match ext {
            Ext::None => ins.load(ty, f, addr, off),
            Ext::S8 => ins.sload8(ty, f, addr, off),
            Ext::U8 => ins.uload8(ty, f, addr, off),
            Ext::S16 => ins.sload16(ty, f, addr, off),
            Ext::U16 => ins.uload16(ty, f, addr, off),
            Ext::S32 => ins.sload32(f, addr, off),
            Ext::U32 => ins.uload32(f, addr, off),
        };
        self.push(v);
        Ok(())
    }

    pub(super) fn op_store(&mut self, memarg: &MemArg, size: u32) -> Result<(), CompileError> {
        let v = self.pop();
        let (addr, off, written) = self.heap_addr_for_store(memarg, size)?;
        let f = self.heap_flags();
        let full = self.builder.func.dfg.value_type(v).bytes();
        let ins = self.builder.ins();
        match size {
            _ if size == full => ins.store(f, v, addr, off),
            1 => ins.istore8(f, v, addr, off),
            2 => ins.istore16(f, v, addr, off),
            4 => ins.istore32(f, v, addr, off),
            _ => unreachable!("store width"),
        };
        self.mark_written(written);
        Ok(())
    }

    pub(super) fn op_memory_size(&mut self, mem: u32) {
        let mty = self.memory_type(mem);
        let def = self.memory_def(mem);
        let len = self.memory_length(def, &mty);
        let pages = self
            .builder
            .ins()
            .ushr_imm_u(len, i64::from(mty.page_size_log2));
        let v = if mty.memory64 {
            pages
        } else {
            self.builder.ins().ireduce(I32, pages)
        };
        self.push(v);
    }

    pub(super) fn op_memory_grow(&mut self, mem: u32) {
        let mty = self.memory_type(mem);
        let delta = self.pop();
        let delta = if mty.memory64 {
            delta
        } else {
            self.builder.ins().uextend(I64, delta)
        };
        let idx = self.builder.ins().iconst(I32, i64::from(mem));
        let old = self
            .call_builtin(Builtin::MemoryGrow, &[idx, delta])
            .expect("memory.grow returns a value");
        self.trap_on_grow_trap(old);
        let v = if mty.memory64 {
            old
        } else {
            self.builder.ins().ireduce(I32, old)
        };
        self.push(v);
    }
}
