//! Name-based linking.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::func::{Caller, Func, HostCode, HostFuncParts, IntoFunc};
use crate::instance::{Extern, Instance};
use crate::module::Module;
use crate::store::AsContextMut;
use crate::types::FuncType;
use crate::values::Val;

/// A module with its imports resolved and checked, ready to be instantiated
/// in any store of its engine (see [`Linker::instantiate_pre`]). Cheap to
/// clone; `Send + Sync` when the linker's host functions are.
pub struct InstancePre<T: 'static> {
    module: Module,
    items: Arc<Vec<Item<T>>>,
}

impl<T> Clone for InstancePre<T> {
    fn clone(&self) -> Self {
        InstancePre {
            module: self.module.clone(),
            items: self.items.clone(),
        }
    }
}

impl<T: 'static> InstancePre<T> {
    /// The module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Instantiates the module in `store`: host functions are created once
    /// per store and reused; nothing is looked up by name.
    ///
    /// # Errors
    /// A store-bound definition from another store, or a memory/table/global
    /// import whose limits or type do not match (`incompatible import
    /// type`); a trap while initialising.
    pub fn instantiate(&self, mut store: impl AsContextMut<Data = T>) -> Result<Instance> {
        let mut imports = Vec::with_capacity(self.items.len());
        for item in self.items.iter() {
            imports.push(resolve(&mut store, item)?);
        }
        Instance::new(store, &self.module, &imports)
    }

    /// [`instantiate`](Self::instantiate) on a fiber (needs
    /// [`Config::async_support`](crate::Config::async_support)).
    ///
    /// # Errors
    /// As for [`instantiate`](Self::instantiate); also if async support is
    /// off.
    pub async fn instantiate_async(&self, store: &mut crate::Store<T>) -> Result<Instance>
    where
        T: Send,
    {
        crate::fiber::run_on_store(store, move |cx| self.instantiate(cx))?.await
    }
}

/// The extern an item stands for in `store` (creating a host function there
/// the first time).
fn resolve<T: 'static>(mut store: impl AsContextMut<Data = T>, item: &Item<T>) -> Result<Extern> {
    match item {
        Item::Extern(e) => Ok(e.clone()),
        Item::HostFunc(ty, f) => {
            let inner = store.as_context_mut().0;
            let key = f.key();
            if let Some(&index) = inner.opaque.host_func_cache.get(&key) {
                return Ok(Extern::Func(Func {
                    store_id: inner.opaque.id,
                    index,
                }));
            }
            // The function keeps the closure alive, so `key` cannot be
            // reused by another closure while the store lives.
            let func = Func::new_raw(inner, ty.clone(), f.clone())?;
            inner.opaque.host_func_cache.insert(key, func.index);
            Ok(Extern::Func(func))
        }
    }
}

enum Item<T: 'static> {
    Extern(Extern),
    HostFunc(FuncType, HostCode<T>),
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

    /// Defines `module::name` as an async host function: the closure
    /// returns a future, which wasm awaits (its fiber suspends while the
    /// future is pending, so the executor runs other tasks). Callable only
    /// from async calls ([`Func::call_async`] and friends); from a
    /// synchronous call it traps with an error. If the call is cancelled
    /// (its future dropped) while this future is pending, this future is
    /// dropped and the call ends.
    ///
    /// ```
    /// use weft_runtime::{Caller, Config, Engine, Linker, Module, Store};
    /// let mut config = Config::new();
    /// config.async_support(true);
    /// let engine = Engine::new(&config)?;
    /// let mut linker = Linker::<u32>::new();
    /// linker.func_wrap_async("host", "fetch", |caller: Caller<'_, u32>, key: i32| {
    ///     let base = *caller.data();
    ///     Box::new(async move { Ok(key + base as i32) })
    /// })?;
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the name is already defined and shadowing is not allowed.
    pub fn func_wrap_async<P, R, F>(&mut self, module: &str, name: &str, f: F) -> Result<&mut Self>
    where
        P: crate::values::WasmList,
        R: crate::values::WasmList,
        F: for<'c> Fn(
                Caller<'c, T>,
                P,
            ) -> Box<dyn std::future::Future<Output = Result<R>> + Send + 'c>
            + Send
            + Sync
            + 'static,
    {
        let ty = FuncType::new(P::types(), R::types());
        let raw = move |store: &mut crate::store::StoreInner<T>,
                        caller: *mut u8,
                        slots: &mut [u128]|
              -> Result<()> {
            let params = P::load(slots, &store.opaque);
            let instance = crate::func::caller_instance(caller);
            let store_ptr: *mut crate::store::StoreInner<T> = store;
            let fut = f(
                Caller {
                    store: &mut *store,
                    instance,
                },
                params,
            );
            let r = crate::fiber::block_on(Box::into_pin(fut).as_mut())??;
            // SAFETY: the future (and its borrow of the store) is gone.
            let store = unsafe { &mut *store_ptr };
            r.store(slots, &mut store.opaque);
            Ok(())
        };
        self.insert(module, name, Item::HostFunc(ty, HostCode::new(raw)))
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
        let item = self.items.get(module)?.get(name)?;
        Some(resolve(store.as_context_mut(), item))
    }

    /// Resolves and type-checks `module`'s imports once, for instantiating
    /// it many times: [`InstancePre::instantiate`] then does only the
    /// per-instance work. Host functions are checked against the module's
    /// import types here; store-bound definitions (`define`) when
    /// instantiating.
    ///
    /// ```
    /// use weft_runtime::{Engine, Linker, Module, Store};
    /// let engine = Engine::default();
    /// let mut linker = Linker::<()>::new();
    /// linker.func_wrap("env", "seven", || 7i32)?;
    /// let module = Module::new(&engine, r#"(module (import "env" "seven" (func $s (result i32)))
    ///     (func (export "run") (result i32) (call $s)))"#)?;
    /// let pre = linker.instantiate_pre(&module)?;
    /// for _ in 0..3 {
    ///     let mut store = Store::new(&engine, ());
    ///     let instance = pre.instantiate(&mut store)?;
    ///     assert_eq!(instance.get_typed_func::<(), i32>(&mut store, "run")?.call(&mut store, ())?, 7);
    /// }
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// An import with no definition is `unknown import`; a host function of
    /// the wrong type, or a definition of the wrong kind, is `incompatible
    /// import type`.
    pub fn instantiate_pre(&self, module: &Module) -> Result<InstancePre<T>> {
        let mut items = Vec::with_capacity(module.imports().len());
        for import in module.imports() {
            let (m, n) = (import.module(), import.name());
            let item = self
                .items
                .get(m)
                .and_then(|names| names.get(n))
                .ok_or_else(|| Error::Link(format!("unknown import: `{m}::{n}`")))?;
            let compatible = match (item, import.ty()) {
                (Item::HostFunc(ty, _), crate::types::ExternType::Func(want)) => ty == want,
                (Item::HostFunc(..), _) => false,
                (Item::Extern(e), ty) => {
                    matches!(
                        (e, ty),
                        (Extern::Func(_), crate::types::ExternType::Func(_))
                            | (Extern::Table(_), crate::types::ExternType::Table(_))
                            | (Extern::Memory(_), crate::types::ExternType::Memory(_))
                            | (Extern::SharedMemory(_), crate::types::ExternType::Memory(_))
                            | (Extern::Global(_), crate::types::ExternType::Global(_))
                            | (Extern::Tag(_), crate::types::ExternType::Tag(_))
                    )
                }
            };
            if !compatible {
                return Err(Error::Link(format!(
                    "incompatible import type for `{m}::{n}`"
                )));
            }
            items.push(item.clone());
        }
        Ok(InstancePre {
            module: module.clone(),
            items: Arc::new(items),
        })
    }

    /// [`instantiate`](Self::instantiate) on a fiber (needs
    /// [`Config::async_support`](crate::Config::async_support)).
    ///
    /// # Errors
    /// As for [`instantiate`](Self::instantiate); also if async support is
    /// off.
    pub async fn instantiate_async(
        &self,
        store: &mut crate::Store<T>,
        module: &Module,
    ) -> Result<Instance>
    where
        T: Send,
    {
        crate::fiber::run_on_store(store, move |cx| self.instantiate(cx, module))?.await
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
