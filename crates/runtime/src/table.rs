//! Tables of references.

use weft_decoder::{Limits, TableType as WasmTableType};

use crate::store::AsContext;
use crate::types::TableType;

use crate::error::{Error, Result};
use crate::store::{AsContextMut, StoreOpaque};
use crate::values::Val;

/// The largest table weft creates or grows to, in elements: a guard against
/// hostile `table.grow` requests exhausting host memory.
pub const MAX_TABLE_ELEMENTS: u64 = 10_000_000;

/// The contract's `VMTableDefinition`.
#[repr(C)]
pub(crate) struct VMTableDefinition {
    pub(crate) base: *mut usize,
    pub(crate) current_elements: usize,
}

/// A table's storage: pointer-sized raw references (`*const VMFuncRef` for
/// `funcref`, the `ExternRef` address for `externref`, 0 for null).
pub(crate) struct TableData {
    elements: Vec<usize>,
    def: Box<VMTableDefinition>,
    pub(crate) ty: WasmTableType,
    /// The pooling allocator's table slot (element buffer returned on drop).
    slot: Option<crate::pooling::TableSlot>,
}

impl Drop for TableData {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            slot.release(std::mem::take(&mut self.elements));
        }
    }
}

impl TableData {
    /// A table defined by an instance: from the engine's pool, if it pools.
    pub(crate) fn for_instance(
        engine: &crate::Engine,
        ty: WasmTableType,
        init: usize,
    ) -> Result<TableData> {
        let Some(pool) = &engine.inner.pool else {
            return Self::new(ty, init);
        };
        let len = usize::try_from(ty.limits.min).unwrap_or(usize::MAX);
        let (slot, elements) = pool.table_slot(len, init)?;
        let mut t = TableData {
            elements,
            def: Box::new(VMTableDefinition {
                base: std::ptr::null_mut(),
                current_elements: 0,
            }),
            ty,
            slot: Some(slot),
        };
        t.sync();
        Ok(t)
    }

    pub(crate) fn new(ty: WasmTableType, init: usize) -> Result<TableData> {
        if ty.limits.min > MAX_TABLE_ELEMENTS {
            return Err(Error::Resource(format!(
                "table of {} elements exceeds weft's limit of {MAX_TABLE_ELEMENTS}",
                ty.limits.min
            )));
        }
        let mut t = TableData {
            elements: vec![init; ty.limits.min as usize],
            def: Box::new(VMTableDefinition {
                base: std::ptr::null_mut(),
                current_elements: 0,
            }),
            ty,
            slot: None,
        };
        t.sync();
        Ok(t)
    }

    fn sync(&mut self) {
        self.def.base = self.elements.as_mut_ptr();
        self.def.current_elements = self.elements.len();
    }

    pub(crate) fn definition(&mut self) -> *mut u8 {
        &mut *self.def as *mut VMTableDefinition as *mut u8
    }

    pub(crate) fn ty(&self) -> WasmTableType {
        WasmTableType {
            limits: Limits {
                min: self.elements.len() as u64,
                max: self.ty.limits.max,
            },
            ..self.ty
        }
    }

    /// The elements (raw reference words).
    pub(crate) fn elements(&self) -> &[usize] {
        &self.elements
    }

    pub(crate) fn len(&self) -> u64 {
        self.elements.len() as u64
    }

    /// Grows by `delta` elements set to `init`; the old size, or `None` (and
    /// no change) past the maximum or weft's limit.
    pub(crate) fn grow(&mut self, delta: u64, init: usize) -> Option<u64> {
        let old = self.len();
        let new = old.checked_add(delta)?;
        let max = self.ty.limits.max.unwrap_or(u64::from(u32::MAX));
        if new > max || new > MAX_TABLE_ELEMENTS {
            return None;
        }
        if let Some(slot) = &self.slot
            && new > slot.max_elements() as u64
        {
            return None;
        }
        self.elements.try_reserve(delta as usize).ok()?;
        self.elements.resize(new as usize, init);
        self.sync();
        Some(old)
    }

    pub(crate) fn get(&self, i: u64) -> Option<usize> {
        self.elements.get(usize::try_from(i).ok()?).copied()
    }

    pub(crate) fn set(&mut self, i: u64, v: usize) -> bool {
        match usize::try_from(i)
            .ok()
            .and_then(|i| self.elements.get_mut(i))
        {
            Some(e) => {
                *e = v;
                true
            }
            None => false,
        }
    }

    fn range(&self, start: u64, len: u64) -> Option<std::ops::Range<usize>> {
        let end = start.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        Some(start as usize..end as usize)
    }

    pub(crate) fn fill(&mut self, dst: u64, val: usize, len: u64) -> bool {
        match self.range(dst, len) {
            Some(r) => {
                self.elements[r].fill(val);
                true
            }
            None => false,
        }
    }

    /// Writes `items` at `dst`; false (and nothing written) if out of bounds.
    pub(crate) fn write(&mut self, dst: u64, items: &[usize]) -> bool {
        match self.range(dst, items.len() as u64) {
            Some(r) => {
                self.elements[r].copy_from_slice(items);
                true
            }
            None => false,
        }
    }

    /// Reads `len` elements at `src`.
    pub(crate) fn read(&self, src: u64, len: u64) -> Option<&[usize]> {
        self.range(src, len).map(|r| &self.elements[r])
    }

    pub(crate) fn copy_within(&mut self, dst: u64, src: u64, len: u64) -> bool {
        match (self.range(dst, len), self.range(src, len)) {
            (Some(d), Some(s)) => {
                self.elements.copy_within(s, d.start);
                true
            }
            _ => false,
        }
    }

    /// Import matching: same element type, limits subtyping.
    pub(crate) fn matches(&self, want: &WasmTableType) -> bool {
        let have = self.ty();
        have.element == want.element
            && have.table64 == want.table64
            && have.limits.matches(&want.limits)
    }
}

/// A table that belongs to a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Table {
    pub(crate) store_id: u64,
    pub(crate) index: usize,
}

impl Table {
    /// Creates a table of type `ty` with every element set to `init`.
    ///
    /// ```
    /// use weft_runtime::{Engine, Store, Table, TableType, Val, ValType};
    /// let mut store = Store::new(&Engine::default(), ());
    /// let t = Table::new(&mut store, TableType::new(ValType::FUNCREF, 2, None), Val::FuncRef(None))?;
    /// assert_eq!(t.size(&store)?, 2);
    /// assert_eq!(t.grow(&mut store, 3, Val::FuncRef(None))?, 2);
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// If `init` is not of the element type or the size is out of range.
    pub fn new(mut store: impl AsContextMut, ty: TableType, init: Val) -> Result<Table> {
        let cx = store.as_context_mut();
        let opaque = &mut cx.0.opaque;
        let ty = ty.to_wasm(&opaque.engine);
        let raw = elem_raw(opaque, ty.element, &init)?;
        opaque.tables.push(TableData::new(ty, raw)?);
        Ok(Table {
            store_id: opaque.id,
            index: opaque.tables.len() - 1,
        })
    }

    /// The table's current type (its minimum is the current size).
    pub fn ty(&self, store: impl AsContext) -> Result<TableType> {
        let cx = store.as_context();
        cx.0.opaque.check(self.store_id, "table")?;
        Ok(TableType::from_wasm(
            &cx.0.opaque.tables[self.index].ty(),
            &cx.0.opaque.engine,
        ))
    }

    /// The current size in elements.
    pub fn size(&self, store: impl AsContext) -> Result<u64> {
        Ok(self.ty(store)?.minimum())
    }

    /// The element at `index`, or `None` if out of bounds.
    pub fn get(&self, store: impl AsContext, index: u64) -> Option<Val> {
        let cx = store.as_context();
        cx.0.opaque.check(self.store_id, "table").ok()?;
        let t = &cx.0.opaque.tables[self.index];
        let raw = t.get(index)?;
        Some(Val::from_raw_wasm(raw as u128, t.ty.element, &cx.0.opaque))
    }

    /// Sets the element at `index`.
    ///
    /// # Errors
    /// Out of bounds, or a value of the wrong type.
    pub fn set(&self, mut store: impl AsContextMut, index: u64, val: Val) -> Result<()> {
        let cx = store.as_context_mut();
        let opaque = &mut cx.0.opaque;
        opaque.check(self.store_id, "table")?;
        let raw = elem_raw(opaque, opaque.tables[self.index].ty.element, &val)?;
        if opaque.tables[self.index].set(index, raw) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "table index {index} out of bounds"
            )))
        }
    }

    /// Grows by `delta` elements set to `init`; returns the old size.
    ///
    /// # Errors
    /// Growing past the maximum changes nothing and is an error.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64, init: Val) -> Result<u64> {
        let cx = store.as_context_mut();
        let opaque = &mut cx.0.opaque;
        opaque.check(self.store_id, "table")?;
        let raw = elem_raw(opaque, opaque.tables[self.index].ty.element, &init)?;
        opaque
            .grow_table(self.index, delta, raw)?
            .ok_or_else(|| Error::InvalidArgument(format!("cannot grow table by {delta}")))
    }
}

fn elem_raw(opaque: &mut StoreOpaque, ty: weft_decoder::ValType, v: &Val) -> Result<usize> {
    v.check_wasm(opaque, ty, &"a table element")?;
    Ok(v.to_raw(opaque)? as usize)
}
