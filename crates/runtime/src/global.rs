//! Globals.

use std::cell::UnsafeCell;

use weft_decoder::GlobalType as WasmGlobalType;

use crate::error::{Error, Result};
use crate::store::{AsContext, AsContextMut};
use crate::types::GlobalType;
use crate::values::Val;

/// The contract's `VMGlobal`: one 16-byte value slot.
#[repr(C, align(16))]
pub(crate) struct VMGlobalCell(pub(crate) UnsafeCell<u128>);

pub(crate) struct GlobalData {
    pub(crate) cell: Box<VMGlobalCell>,
    pub(crate) ty: WasmGlobalType,
}

impl GlobalData {
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.cell.0.get() as *mut u8
    }
    pub(crate) fn get(&self) -> u128 {
        // SAFETY: the store is borrowed, so no wasm is running on this store
        // and nothing writes the cell concurrently (globals are not shared).
        unsafe { *self.cell.0.get() }
    }
    pub(crate) fn set(&self, raw: u128) {
        // SAFETY: as in `get`.
        unsafe { *self.cell.0.get() = raw }
    }
}

/// A global variable that belongs to a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Global {
    pub(crate) store_id: u64,
    pub(crate) index: usize,
}

impl Global {
    /// Creates a global of type `ty` with initial value `val`.
    ///
    /// ```
    /// use weft_runtime::{Engine, Global, GlobalType, Store, Val, ValType};
    /// let mut store = Store::new(&Engine::default(), ());
    /// let g = Global::new(&mut store, GlobalType::new(ValType::I32, true), Val::I32(1))?;
    /// g.set(&mut store, Val::I32(2))?;
    /// assert_eq!(g.get(&store)?.i32(), Some(2));
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// If `val` is not of the global's type.
    pub fn new(mut store: impl AsContextMut, ty: GlobalType, val: Val) -> Result<Global> {
        let cx = store.as_context_mut();
        let opaque = &mut cx.0.opaque;
        let wasm_ty = ty.to_wasm(&opaque.engine);
        val.check_wasm(opaque, wasm_ty.ty, &"the new global")?;
        let raw = val.to_raw(opaque)?;
        Ok(Global {
            store_id: opaque.id,
            index: opaque.push_global(wasm_ty, raw),
        })
    }

    /// The global's type.
    pub fn ty(&self, store: impl AsContext) -> Result<GlobalType> {
        let cx = store.as_context();
        cx.0.opaque.check(self.store_id, "global")?;
        Ok(GlobalType::from_wasm(
            &cx.0.opaque.globals[self.index].ty,
            &cx.0.opaque.engine,
        ))
    }

    /// The current value.
    pub fn get(&self, store: impl AsContext) -> Result<Val> {
        let cx = store.as_context();
        cx.0.opaque.check(self.store_id, "global")?;
        let g = &cx.0.opaque.globals[self.index];
        Ok(Val::from_raw_wasm(g.get(), g.ty.ty, &cx.0.opaque))
    }

    /// Sets the value; an immutable global or a value of the wrong type is
    /// an error.
    pub fn set(&self, mut store: impl AsContextMut, val: Val) -> Result<()> {
        let cx = store.as_context_mut();
        cx.0.opaque.check(self.store_id, "global")?;
        let g = &cx.0.opaque.globals[self.index];
        if !g.ty.mutable {
            return Err(Error::InvalidArgument(
                "cannot set an immutable global".into(),
            ));
        }
        val.check_wasm(&cx.0.opaque, g.ty.ty, &"the global")?;
        let raw = val.to_raw(&mut cx.0.opaque)?;
        cx.0.opaque.globals[self.index].set(raw);
        Ok(())
    }
}

impl crate::store::StoreOpaque {
    pub(crate) fn push_global(&mut self, ty: WasmGlobalType, raw: u128) -> usize {
        self.globals.push(GlobalData {
            cell: Box::new(VMGlobalCell(UnsafeCell::new(raw))),
            ty,
        });
        self.globals.len() - 1
    }
}
