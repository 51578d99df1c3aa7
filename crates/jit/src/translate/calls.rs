//! Calls: direct calls to defined functions, calls through a `VMFuncRef`
//! (imports and `call_indirect`), and calls to the runtime's builtins.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{
    AbiParam, ExtFuncData, ExternalName, FuncRef, InstBuilder, MemFlagsData, SigRef, Signature,
    StackSlotData, StackSlotKind, UserExternalName, Value,
};

use super::FuncTranslator;
use super::abi::{clif_type, funcref_field_flags, readonly_flags, wasm_signature};
use crate::builtins::Builtin;
use crate::error::CompileError;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

/// What a call calls.
#[derive(Clone, Copy)]
enum Callee {
    /// A defined function of this module, by defined index: a direct call.
    Direct(u32),
    /// Through a `*const VMFuncRef` (imports, `call_indirect`, `call_ref`).
    FuncRef(Value),
}

impl FuncTranslator<'_, '_> {
    fn signature_for_type(&mut self, type_index: u32) -> Result<SigRef, CompileError> {
        if let Some(&s) = self.sigs.get(&type_index) {
            return Ok(s);
        }
        let ty = &self.env.module.types[type_index as usize];
        let sig = wasm_signature(ty, self.env.wasm_call_conv)?;
        let s = self.builder.import_signature(sig);
        self.sigs.insert(type_index, s);
        Ok(s)
    }

    pub(super) fn op_call(&mut self, func_index: u32) -> Result<(), CompileError> {
        let (type_index, callee) = self.direct_callee(func_index);
        self.emit_call(type_index, callee, false)
    }

    /// `return_call`: the call replaces this function's frame (constant
    /// stack in any depth of tail recursion); its results are ours.
    pub(super) fn op_return_call(&mut self, func_index: u32) -> Result<(), CompileError> {
        let (type_index, callee) = self.direct_callee(func_index);
        self.emit_call(type_index, callee, true)?;
        self.reachable = false;
        Ok(())
    }

    pub(super) fn op_call_indirect(
        &mut self,
        type_index: u32,
        table: u32,
    ) -> Result<(), CompileError> {
        let callee = self.indirect_callee(type_index, table);
        self.emit_call(type_index, callee, false)
    }

    /// `return_call_indirect`: [`op_call_indirect`](Self::op_call_indirect)'s
    /// checks, then a tail call.
    pub(super) fn op_return_call_indirect(
        &mut self,
        type_index: u32,
        table: u32,
    ) -> Result<(), CompileError> {
        let callee = self.indirect_callee(type_index, table);
        self.emit_call(type_index, callee, true)?;
        self.reachable = false;
        Ok(())
    }

    /// `call_ref $t`: a call through a typed function reference. Validation
    /// gave the reference type `(ref null $t)`, so no type check is needed:
    /// only null traps ("null function reference").
    pub(super) fn op_call_ref(&mut self, type_index: u32) -> Result<(), CompileError> {
        let callee = self.ref_callee();
        self.emit_call(type_index, callee, false)
    }

    /// `return_call_ref $t`: [`op_call_ref`](Self::op_call_ref)'s null
    /// check, then a tail call.
    pub(super) fn op_return_call_ref(&mut self, type_index: u32) -> Result<(), CompileError> {
        let callee = self.ref_callee();
        self.emit_call(type_index, callee, true)?;
        self.reachable = false;
        Ok(())
    }

    /// Pops the function reference of `call_ref`/`return_call_ref` and
    /// traps if it is null.
    fn ref_callee(&mut self) -> Callee {
        let funcref = self.pop();
        self.builder
            .ins()
            .trapz(funcref, Self::trap_code(TrapKind::NullFunctionReference));
        Callee::FuncRef(funcref)
    }

    /// The type and callee of a call to function `func_index`: imports go
    /// through their `VMFuncRef`, defined functions are called directly.
    fn direct_callee(&mut self, func_index: u32) -> (u32, Callee) {
        let module = self.env.module;
        let type_index = module.functions[func_index as usize];
        let callee = if module.is_imported_func(func_index) {
            let ro = readonly_flags();
            let funcref = self.builder.ins().load(
                I64,
                ro,
                self.vmctx,
                self.env.offsets.imported_func(func_index) as i32,
            );
            Callee::FuncRef(funcref)
        } else {
            Callee::Direct(func_index - module.num_imported_funcs)
        };
        (type_index, callee)
    }

    /// `call_indirect (type type_index) table`'s callee: checks the index
    /// against the table's length (`UndefinedElement`), the element for
    /// null (`IndirectCallToNull`) and the callee's canonical type id
    /// against ours (`BadSignature`); the call goes through the funcref.
    fn indirect_callee(&mut self, type_index: u32, table: u32) -> Callee {
        let index = self.pop();
        let addr = self.table_elem_addr(table, index, TrapKind::UndefinedElement);
        let f = self.table_elem_flags();
        let funcref = self.builder.ins().load(I64, f, addr, 0);
        self.builder
            .ins()
            .trapz(funcref, Self::trap_code(TrapKind::IndirectCallToNull));
        let actual = self.builder.ins().load(
            I32,
            funcref_field_flags(),
            funcref,
            VMOffsets::FUNC_REF_TYPE_ID as i32,
        );
        let expected = self.builder.ins().load(
            I32,
            readonly_flags(),
            self.vmctx,
            self.env.offsets.type_ids(type_index) as i32,
        );
        let mismatch = self.builder.ins().icmp(IntCC::NotEqual, actual, expected);
        self.builder
            .ins()
            .trapnz(mismatch, Self::trap_code(TrapKind::BadSignature));
        Callee::FuncRef(funcref)
    }

    /// Pops the arguments of a call to a function of type `type_index`,
    /// calls `callee` and pushes its results; or, for a tail call (`tail`),
    /// jumps to it in place of this function's frame: the callee returns
    /// straight to our caller, writing multiple results to our own return
    /// area (validation made its result types ours).
    fn emit_call(
        &mut self,
        type_index: u32,
        callee: Callee,
        tail: bool,
    ) -> Result<(), CompileError> {
        let ty = &self.env.module.types[type_index as usize];
        let (nparams, results) = (ty.params.len(), ty.results.clone());
        let sig = self.signature_for_type(type_index)?;
        let args = self.popn(nparams);

        // Several results go through a return area: a tail call passes on
        // our own, an ordinary call makes one in its frame.
        let ret_slot = (!tail && results.len() > 1).then(|| {
            self.builder.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                results.len() as u32 * VMOffsets::VAL_RAW_SIZE,
                4,
            ))
        });
        let mut call_args = Vec::with_capacity(args.len() + 3);
        call_args.push(self.vmctx); // the callee's, replaced below for funcrefs
        call_args.push(self.vmctx);
        if results.len() > 1 {
            let area = match ret_slot {
                Some(slot) => self.builder.ins().stack_addr(I64, slot, 0),
                None => self
                    .ret_area
                    .expect("validation: a tail callee's results are ours"),
            };
            call_args.push(area);
        }
        call_args.extend_from_slice(&args);

        enum Target {
            Code(Value),
            Func(FuncRef),
        }
        let direct = match callee {
            Callee::Direct(d) => Some(d),
            Callee::FuncRef(_) => None,
        };
        let target = match callee {
            Callee::FuncRef(funcref) => {
                let ro = funcref_field_flags();
                let code =
                    self.builder
                        .ins()
                        .load(I64, ro, funcref, VMOffsets::FUNC_REF_WASM_CALL as i32);
                call_args[0] =
                    self.builder
                        .ins()
                        .load(I64, ro, funcref, VMOffsets::FUNC_REF_VMCTX as i32);
                Target::Code(code)
            }
            Callee::Direct(defined) => Target::Func(self.direct_func_ref(defined, sig)),
        };
        // The callee reads fuel from the store (after a tail call, as after
        // a return).
        self.fuel_save();
        if tail {
            match target {
                Target::Code(code) => {
                    self.builder
                        .ins()
                        .return_call_indirect(sig, code, &call_args);
                }
                Target::Func(f) => {
                    self.builder.ins().return_call(f, &call_args);
                }
            }
            return Ok(());
        }
        let inst = match target {
            Target::Code(code) => self.builder.ins().call_indirect(sig, code, &call_args),
            Target::Func(f) => self.builder.ins().call(f, &call_args),
        };
        self.fuel_reload();
        // The results are read below the check: on an exception they are
        // not defined (the callee returned early), and no path uses them.
        self.exception_check(direct);

        if let Some(slot) = ret_slot {
            for (i, &r) in results.iter().enumerate() {
                let t = clif_type(r)?;
                let v = self.builder.ins().stack_load(
                    I64,
                    t,
                    slot,
                    (i as u32 * VMOffsets::VAL_RAW_SIZE) as i32,
                );
                self.push(v);
            }
        } else {
            let rs = self.builder.inst_results(inst).to_vec();
            self.stack.extend(rs);
        }
        Ok(())
    }

    /// The `FuncRef` of defined function `defined` (declared once).
    fn direct_func_ref(&mut self, defined: u32, sig: SigRef) -> FuncRef {
        if let Some(&f) = self.direct_funcs.get(&defined) {
            return f;
        }
        let name = self
            .builder
            .func
            .declare_imported_user_function(UserExternalName::new(0, defined));
        let f = self.builder.import_function(ExtFuncData {
            name: ExternalName::User(name),
            signature: sig,
            colocated: true,
            patchable: false,
        });
        self.direct_funcs.insert(defined, f);
        f
    }

    // ------------------------------------------------------------- builtins

    /// The address of builtin `b`. Loaded where it is called, never hoisted:
    /// builtins are called on slow paths (interruption checks) or next to
    /// work that dwarfs a load, and hoisted pointers would occupy
    /// callee-saved registers across whole loops.
    fn builtin(&mut self, b: Builtin) -> Value {
        let ro = MemFlagsData::trusted().with_readonly();
        let table =
            self.builder
                .ins()
                .load(I64, ro, self.vmctx, self.env.offsets.builtins() as i32);
        self.builder
            .ins()
            .load(I64, ro, table, b.table_offset() as i32)
    }

    /// Calls builtin `b` with the caller's vmctx and `args`; returns its
    /// result, if it has one.
    pub(super) fn call_builtin(&mut self, b: Builtin, args: &[Value]) -> Option<Value> {
        let sig = match self.builtin_sigs[b.index() as usize] {
            Some(s) => s,
            None => {
                let (params, ret) = b.signature();
                let mut sig = Signature::new(self.env.call_conv);
                sig.params.push(AbiParam::new(I64));
                sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
                sig.returns.extend(ret.map(AbiParam::new));
                let s = self.builder.import_signature(sig);
                self.builtin_sigs[b.index() as usize] = Some(s);
                s
            }
        };
        let f = self.builtin(b);
        let mut call_args = Vec::with_capacity(args.len() + 1);
        call_args.push(self.vmctx);
        call_args.extend_from_slice(args);
        self.fuel_save();
        let call = self.builder.ins().call_indirect(sig, f, &call_args);
        let result = self.builder.inst_results(call).first().copied();
        self.fuel_reload();
        result
    }

    /// Calls a status-returning builtin and traps with [`TrapKind::Host`]
    /// if the status is non-zero.
    pub(super) fn call_builtin_checked(&mut self, b: Builtin, args: &[Value]) {
        let status = self
            .call_builtin(b, args)
            .expect("status-returning builtin");
        self.builder
            .ins()
            .trapnz(status, Self::trap_code(TrapKind::Host));
    }

    /// Traps with `Host` when a grow builtin returned [`GROW_TRAP`].
    ///
    /// [`GROW_TRAP`]: crate::GROW_TRAP
    pub(super) fn trap_on_grow_trap(&mut self, result: Value) {
        let trap = self
            .builder
            .ins()
            .icmp_imm_s(IntCC::Equal, result, crate::GROW_TRAP as i64);
        self.builder
            .ins()
            .trapnz(trap, Self::trap_code(TrapKind::Host));
    }
}
