//! Name-based linking.

use std::collections::HashMap;
use std::sync::Arc;

use weft_decoder::FuncType;

use crate::error::{Error, Result};
use crate::func::{Caller, Func, IntoFunc, RawHostFn};
use crate::instance::{Extern, Instance};
use crate::module::Module;
use crate::store::AsContextMut;
use crate::values::Val;

enum Item<T> {
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
/// are not tied to a store: they are created in a store when a module that
/// imports them is instantiated there.
pub struct Linker<T> {
    items: HashMap<(String, String), Item<T>>,
}

impl<T> Default for Linker<T> {
    fn default() -> Self {
        Linker {
            items: HashMap::new(),
        }
    }
}

impl<T: 'static> Linker<T> {
    /// An empty linker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines `module::name` as an existing extern (store-bound).
    pub fn define(&mut self, module: &str, name: &str, item: impl Into<Extern>) -> &mut Self {
        self.items
            .insert((module.into(), name.into()), Item::Extern(item.into()));
        self
    }

    /// Defines `module::name` as a Rust closure with typed parameters.
    pub fn func_wrap<Params, Results>(
        &mut self,
        module: &str,
        name: &str,
        f: impl IntoFunc<T, Params, Results>,
    ) -> &mut Self {
        let (ty, raw) = f.into_raw();
        self.items.insert(
            (module.into(), name.into()),
            Item::HostFunc(ty, Arc::from(raw)),
        );
        self
    }

    /// Defines `module::name` as a closure with a dynamic signature.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        f: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static,
    ) -> &mut Self {
        let raw = crate::func::dynamic_host_fn(ty.clone(), f);
        self.items.insert(
            (module.into(), name.into()),
            Item::HostFunc(ty, Arc::from(raw)),
        );
        self
    }

    /// Defines every export of `instance` under the module name `module`.
    pub fn instance(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        instance: Instance,
    ) -> Result<&mut Self> {
        let m = instance.module(&mut store)?;
        let names: Vec<String> = m.exports().map(|(n, _)| n.to_string()).collect();
        for name in names {
            if let Some(e) = instance.get_export(&mut store, &name) {
                self.define(module, &name, e);
            }
        }
        Ok(self)
    }

    /// Looks up a definition, creating host functions in `store` as needed.
    pub fn get(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
    ) -> Option<Result<Extern>> {
        match self
            .items
            .get(&(module.to_string(), name.to_string()))?
            .clone()
        {
            Item::Extern(e) => Some(Ok(e)),
            Item::HostFunc(ty, f) => {
                let raw = Box::new(
                    move |st: &mut crate::store::StoreInner<T>,
                          i: Option<usize>,
                          s: &mut [u128]| f(st, i, s),
                );
                Some(Func::new_raw(store.as_context_mut().0, ty, raw).map(Extern::Func))
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
        let mut imports = Vec::new();
        let wanted: Vec<(String, String)> = module
            .imports()
            .map(|(m, n, _)| (m.to_string(), n.to_string()))
            .collect();
        for (m, n) in wanted {
            match self.get(&mut store, &m, &n) {
                Some(e) => imports.push(e?),
                None => {
                    return Err(Error::Link(format!("unknown import: `{m}::{n}`")));
                }
            }
        }
        Instance::new(store, module, &imports)
    }
}
