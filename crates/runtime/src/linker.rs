//! Name-based linking.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::func::{Caller, Func, HostFuncParts, IntoFunc, RawHostFn};
use crate::instance::{Extern, Instance};
use crate::module::Module;
use crate::store::AsContextMut;
use crate::types::FuncType;
use crate::values::Val;

enum Item<T: 'static> {
    Extern(Extern),
    HostFunc(FuncType, Arc<RawHostFn<T>>),
}

impl<T> Clone for Item<T> {
    fn clone(&self) -> Self {
        match self {
            Item::Extern(e) => Item::Extern(e.clone()),
            Item::HostFunc(t, f) => Item::HostFunc(t.clone(), f.clone()),
        }
    }
}

/// Resolves imports by `(module, name)` and instantiates modules.
///
/// Host functions defined with [`Linker::func_wrap`] or [`Linker::func_new`]
/// are not tied to a store: each is created in a store the first time a
/// module that imports it is instantiated there, and reused by every later
/// instantiation in that store.
///
/// Defining a name twice is an error unless
/// [`allow_shadowing`](Linker::allow_shadowing) is on.
///
/// ```
/// use weft_runtime::{Engine, Linker, Module, Store};
///
/// let engine = Engine::default();
/// let mut linker = Linker::<u32>::new();
/// linker.func_wrap("env", "bump", |mut caller: weft_runtime::Caller<'_, u32>| {
///     *caller.data_mut() += 1;
/// })?;
/// assert!(linker.func_wrap("env", "bump", || {}).is_err()); // already defined
///
/// let module = Module::new(&engine, r#"(module (import "env" "bump" (func $b))
///     (func (export "run") (call $b) (call $b)))"#)?;
/// let mut store = Store::new(&engine, 0);
/// let instance = linker.instantiate(&mut store, &module)?;
/// instance.get_typed_func::<(), ()>(&mut store, "run")?.call(&mut store, ())?;
/// assert_eq!(*store.data(), 2);
/// # Ok::<(), weft_runtime::Error>(())
/// ```
pub struct Linker<T: 'static> {
    items: HashMap<String, HashMap<String, Item<T>>>,
    allow_shadowing: bool,
}

impl<T> Default for Linker<T> {
    fn default() -> Self {
        Linker {
            items: HashMap::new(),
            allow_shadowing: false,
        }
    }
}

impl<T: 'static> Linker<T> {
    /// An empty linker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a second definition of a name replaces the first (`true`) or
    /// is an error (`false`, the default).
    pub fn allow_shadowing(&mut self, allow: bool) -> &mut Self {
        self.allow_shadowing = allow;
        self
    }

    fn insert(&mut self, module: &str, name: &str, item: Item<T>) -> Result<&mut Self> {
        let names = self.items.entry(module.to_string()).or_default();
        if !self.allow_shadowing && names.contains_key(name) {
            return Err(Error::Link(format!(
                "`{module}::{name}` is already defined (Linker::allow_shadowing permits redefinition)"
            )));
        }
        names.insert(name.to_string(), item);
        Ok(self)
    }

    /// Defines `module::name` as an existing extern (store-bound).
    ///
    /// # Errors
    /// If the name is already defined and shadowing is not allowed.
    pub fn define(
        &mut self,
        module: &str,
        name: &str,
        item: impl Into<Extern>,
    ) -> Result<&mut Self> {
        self.insert(module, name, Item::Extern(item.into()))
    }

    /// Defines `module::name` as a Rust closure with typed parameters,
    /// optionally taking a [`Caller`] first.
    ///
    /// # Errors
    /// If the name is already defined and shadowing is not allowed.
    pub fn func_wrap<Params, Results>(
        &mut self,
        module: &str,
        name: &str,
        f: impl IntoFunc<T, Params, Results>,
    ) -> Result<&mut Self> {
        let HostFuncParts { ty, raw } = f.into_parts();
        self.insert(module, name, Item::HostFunc(ty, raw))
    }

    /// Defines `module::name` as a closure with a dynamic signature.
    ///
    /// # Errors
    /// If the name is already defined and shadowing is not allowed.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        f: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static,
    ) -> Result<&mut Self> {
        let raw = crate::func::dynamic_host_fn(ty.clone(), f);
        self.insert(module, name, Item::HostFunc(ty, raw))
    }

    /// Defines every export of `instance` under the module name `module`.
    ///
    /// # Errors
    /// If the instance is not in `store`, or a name is already defined and
    /// shadowing is not allowed.
    pub fn instance(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        instance: Instance,
    ) -> Result<&mut Self> {
        let m = instance.module(&mut store)?;
        for export in m.exports() {
            if let Some(e) = instance.get_export(&mut store, export.name()) {
                self.define(module, export.name(), e)?;
            }
        }
        Ok(self)
    }

    /// Looks up a definition, creating host functions in `store` as needed
    /// (once per store: later lookups return the same function).
    pub fn get(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
    ) -> Option<Result<Extern>> {
        match self.items.get(module)?.get(name)? {
            Item::Extern(e) => Some(Ok(e.clone())),
            Item::HostFunc(ty, f) => {
                let inner = store.as_context_mut().0;
                let key = Arc::as_ptr(f) as *const () as usize;
                if let Some(&index) = inner.opaque.host_func_cache.get(&key) {
                    return Some(Ok(Extern::Func(Func {
                        store_id: inner.opaque.id,
                        index,
                    })));
                }
                // The function keeps its `Arc`, so `key` cannot be reused by
                // another closure while the store lives.
                let r = Func::new_raw(inner, ty.clone(), f.clone());
                if let Ok(func) = &r {
                    inner.opaque.host_func_cache.insert(key, func.index);
                }
                Some(r.map(Extern::Func))
            }
        }
    }

    /// Instantiates `module`, resolving each import by name.
    ///
    /// # Errors
    /// An import with no definition is an `unknown import` link error; a
    /// definition of the wrong kind or type is `incompatible import type`.
    pub fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<Instance> {
        let mut imports = Vec::with_capacity(module.imports().len());
        for import in module.imports() {
            let (m, n) = (import.module(), import.name());
            match self.get(&mut store, m, n) {
                Some(e) => imports.push(e?),
                None => {
                    return Err(Error::Link(format!("unknown import: `{m}::{n}`")));
                }
            }
        }
        Instance::new(store, module, &imports)
    }
}
