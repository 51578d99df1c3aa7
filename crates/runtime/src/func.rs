//! Functions: wasm functions, host functions, and calls between them.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::engine::HostTrampoline;
use crate::error::{Error, Result, Trap};
use crate::instance::{Extern, InstanceData};
use crate::store::{AsContext, AsContextMut, Pending, StoreContextMut, StoreInner, StoreOpaque};
use crate::traphandlers::{self, ArrayCall};
use crate::types::{FuncType, ValType};
use crate::values::{Val, WasmList, WasmTy};
use weft_jit::TrapKind;

/// The contract's `VMFuncRef`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct VMFuncRef {
    pub(crate) wasm_call: *const u8,
    pub(crate) array_call: *const u8,
    pub(crate) vmctx: *mut u8,
    pub(crate) type_id: u32,
    pub(crate) _pad: u32,
}

pub(crate) type HostCallback = unsafe extern "C" fn(*mut u8, *mut u8, *mut u128, usize) -> u32;

/// A host function as the store keeps it: works on raw value slots, with
/// the store and the caller's vmctx (null if not called from wasm; see
/// [`caller_instance`], needed only by host functions that take a
/// [`Caller`], so the others never look it up).
pub(crate) type RawHostFn<T> =
    dyn Fn(&mut StoreInner<T>, *mut u8, &mut [u128]) -> Result<()> + Send + Sync + 'static;

/// A host function's code: the closure behind a shared pointer, and the
/// callback compiled trampolines call, made for that very closure type so a
/// call from wasm reaches the closure's body with no dynamic dispatch
/// (`host_callback::<T, C>` reads `data` as a `C`). Cheap to clone.
pub(crate) struct HostCode<T: 'static> {
    raw: Arc<RawHostFn<T>>,
    callback: HostCallback,
    data: *const (),
    /// The closure's direct callback (made by `direct_callback_fn!` for
    /// the closure's type: the parameters and result in registers), or
    /// null if it has none; used
    /// where the function's type allows (`direct_host_call_supported`).
    direct: *const u8,
}

/// What a direct host callback returns: the result's bits and a status (0:
/// returned; else the trampoline traps and the store holds why). Two words,
/// which `extern "C"` returns in two registers on the platforms where
/// direct calls are used, as Cranelift expects.
#[repr(C)]
pub(crate) struct DirectRet {
    value: u64,
    status: u64,
}

impl<T: 'static> Clone for HostCode<T> {
    fn clone(&self) -> Self {
        HostCode {
            raw: self.raw.clone(),
            callback: self.callback,
            data: self.data,
            direct: self.direct,
        }
    }
}

// SAFETY: `data` points into `raw`'s allocation, a `Send + Sync` closure
// that the `Arc` keeps alive and never mutates.
unsafe impl<T: 'static> Send for HostCode<T> {}
// SAFETY: as above.
unsafe impl<T: 'static> Sync for HostCode<T> {}

impl<T: 'static> HostCode<T> {
    pub(crate) fn new<C>(closure: C) -> HostCode<T>
    where
        C: Fn(&mut StoreInner<T>, *mut u8, &mut [u128]) -> Result<()> + Send + Sync + 'static,
    {
        let arc = Arc::new(closure);
        let data = Arc::as_ptr(&arc) as *const ();
        HostCode {
            raw: arc,
            callback: host_callback::<T, C>,
            data,
            direct: std::ptr::null(),
        }
    }

    /// [`HostCode::new`] with a direct callback made for the same closure
    /// type `C` (by `into_func!`).
    fn with_direct<C>(closure: C, direct: *const u8) -> HostCode<T>
    where
        C: Fn(&mut StoreInner<T>, *mut u8, &mut [u128]) -> Result<()> + Send + Sync + 'static,
    {
        HostCode {
            direct,
            ..HostCode::new(closure)
        }
    }

    /// Identifies the closure (for a store's cache of linker functions).
    pub(crate) fn key(&self) -> usize {
        self.data as usize
    }
}

/// The store index of the instance a caller vmctx belongs to.
#[inline]
pub(crate) fn caller_instance(caller_vmctx: *mut u8) -> Option<usize> {
    if caller_vmctx.is_null() {
        None
    } else {
        // SAFETY: a non-null caller vmctx given to a host function is a
        // live wasm instance's (the trampolines pass their caller's).
        unsafe { InstanceData::from_vmctx(caller_vmctx).map(|i| i.index) }
    }
}

/// Wraps a closure with a dynamic signature as a raw host function.
pub(crate) fn dynamic_host_fn<T: 'static>(
    ty: FuncType,
    f: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static,
) -> HostCode<T> {
    HostCode::new(
        move |store: &mut StoreInner<T>, caller: *mut u8, slots: &mut [u128]| -> Result<()> {
            let instance = caller_instance(caller);
            let params: Vec<Val> = ty
                .params()
                .iter()
                .zip(slots.iter())
                .map(|(t, r)| Val::from_raw(*r, t, &store.opaque))
                .collect();
            let mut results: Vec<Val> = ty.results().iter().map(Val::default_for).collect();
            f(
                Caller {
                    store: &mut *store,
                    instance,
                },
                &params,
                &mut results,
            )?;
            for (i, (v, t)) in results.iter().zip(ty.results().iter()).enumerate() {
                check_val(
                    &store.opaque,
                    v,
                    t,
                    &format_args!("host function result {i}"),
                )?;
                slots[i] = v.to_raw(&mut store.opaque)?;
            }
            Ok(())
        },
    )
}

struct HostFn<T: 'static>(Arc<RawHostFn<T>>);

/// A host function ready to be created in a store: its type and code.
/// Produced by [`IntoFunc`]; not constructible outside weft.
#[doc(hidden)]
pub struct HostFuncParts<T: 'static> {
    pub(crate) ty: FuncType,
    pub(crate) raw: HostCode<T>,
}

/// The host context a host function's `VMFuncRef::vmctx` points at. The
/// callback must be the first field (contract: first word of the host vmctx).
#[repr(C)]
pub(crate) struct HostCtx {
    /// A [`HostCallback`], or the direct callback when the trampoline is a
    /// direct one.
    callback: *const u8,
    store: *mut StoreOpaque,
    /// The closure, read by `callback` (`host_callback::<T, C>` for the
    /// closure's type `C`: both come from one `HostCode`).
    raw: *const (),
    /// The `HostFn<T>` inside `func`, for calls from the host (the same `T`:
    /// chosen together in `Func::new_raw`), so a call needs no downcast.
    host_fn: *const (),
    func: Arc<dyn Any + Send + Sync>,
    ty: Arc<FuncType>,
    funcref: VMFuncRef,
    _trampoline: Arc<HostTrampoline>,
}

pub(crate) enum FuncKind {
    /// A function defined by an instance; its `VMFuncRef` lives in that
    /// instance's vmctx.
    Wasm,
    /// A host function.
    Host(Box<HostCtx>),
}

pub(crate) struct FuncData {
    pub(crate) ty: Arc<FuncType>,
    pub(crate) funcref: *const VMFuncRef,
    pub(crate) kind: FuncKind,
    /// The engine's typed entry for this wasm function's type (an address;
    /// 0: none, or a host function), or [`TYPED_ENTRY_UNKNOWN`] until the
    /// first call looks it up ([`typed_entry_of`]).
    pub(crate) typed_entry: std::cell::Cell<usize>,
}

/// [`FuncData::typed_entry`] before the first lookup (no code address is 1).
pub(crate) const TYPED_ENTRY_UNKNOWN: usize = 1;

/// The typed entry of the store's function `index` (0 if it has none),
/// looked up in the engine on first use and kept. Without one (no entry for
/// this type or platform, or it failed to compile) calls take the array
/// entry: slower, the same.
fn typed_entry_of(opaque: &StoreOpaque, index: usize) -> usize {
    let data = &opaque.funcs[index];
    let cached = data.typed_entry.get();
    if cached != TYPED_ENTRY_UNKNOWN {
        return cached;
    }
    let wasm_ty = data.ty.to_wasm(&opaque.engine);
    let entry = match opaque.engine.typed_entry(&wasm_ty) {
        Ok(Some(e)) => e.code.wasm_call() as usize,
        Ok(None) | Err(_) => 0,
    };
    data.typed_entry.set(entry);
    entry
}

/// A WebAssembly or host function that belongs to a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Func {
    pub(crate) store_id: u64,
    pub(crate) index: usize,
}

/// Access to the store (and the calling instance's exports) from inside a
/// host function.
pub struct Caller<'a, T> {
    pub(crate) store: &'a mut StoreInner<T>,
    pub(crate) instance: Option<usize>,
}

impl<T> Caller<'_, T> {
    /// The embedder's data.
    pub fn data(&self) -> &T {
        &self.store.data
    }
    /// The embedder's data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.store.data
    }
    /// A handle that interrupts this store (for host code that blocks and
    /// wants to stop when the store is interrupted: see
    /// [`InterruptHandle::is_interrupted`](crate::InterruptHandle::is_interrupted)).
    pub fn interrupt_handle(&self) -> crate::InterruptHandle {
        crate::InterruptHandle {
            ctx: self.store.opaque.vmstore.clone(),
        }
    }

    /// The calling instance, if called from wasm (not from the host).
    pub fn instance(&self) -> Option<crate::Instance> {
        Some(crate::instance::Instance {
            store_id: self.store.opaque.id,
            index: self.instance?,
        })
    }

    /// An export of the calling instance (e.g. its `memory`), if called from wasm.
    pub fn get_export(&mut self, name: &str) -> Option<Extern> {
        let index = self.instance?;
        crate::instance::Instance {
            store_id: self.store.opaque.id,
            index,
        }
        .get_export(StoreContextMut(self.store), name)
    }
}

impl<T> crate::store::AsContext for Caller<'_, T> {
    type Data = T;
    fn as_context(&self) -> crate::store::StoreContext<'_, T> {
        crate::store::StoreContext(self.store)
    }
}

impl<'a, T> From<&'a Caller<'_, T>> for crate::store::StoreContext<'a, T> {
    fn from(c: &'a Caller<'_, T>) -> Self {
        crate::store::StoreContext(c.store)
    }
}

impl<'a, T> From<&'a mut Caller<'_, T>> for StoreContextMut<'a, T> {
    fn from(c: &'a mut Caller<'_, T>) -> Self {
        StoreContextMut(c.store)
    }
}

impl<T> AsContextMut for Caller<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.store)
    }
}

impl Func {
    /// Creates a host function with a dynamic signature.
    ///
    /// The closure receives the arguments and writes the results; returning
    /// `Err` traps the calling wasm and delivers the error to the outermost
    /// caller.
    pub fn new<T: 'static>(
        mut store: impl AsContextMut<Data = T>,
        ty: FuncType,
        f: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static,
    ) -> Result<Func> {
        let raw = dynamic_host_fn(ty.clone(), f);
        Self::new_raw(store.as_context_mut().0, ty, raw)
    }

    /// Creates a host function from a Rust closure with typed parameters and
    /// results, optionally taking a [`Caller`] first (wasmtime's name for
    /// [`Func::wrap`]).
    ///
    /// ```
    /// use weft_runtime::{Engine, Func, Store};
    /// let mut store = Store::new(&Engine::default(), ());
    /// let add = Func::wrap(&mut store, |a: i32, b: i32| a.wrapping_add(b))?;
    /// let add = add.typed::<(i32, i32), i32>(&store)?;
    /// assert_eq!(add.call(&mut store, (2, 3))?, 5);
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    #[doc(alias = "wrap")]
    pub fn new_typed<T: 'static, Params, Results>(
        store: impl AsContextMut<Data = T>,
        f: impl IntoFunc<T, Params, Results>,
    ) -> Result<Func> {
        Self::wrap(store, f)
    }

    /// Creates a host function from a Rust closure with typed parameters and
    /// results, optionally taking a [`Caller`] first.
    pub fn wrap<T: 'static, Params, Results>(
        mut store: impl AsContextMut<Data = T>,
        f: impl IntoFunc<T, Params, Results>,
    ) -> Result<Func> {
        let HostFuncParts { ty, raw } = f.into_parts();
        Self::new_raw(store.as_context_mut().0, ty, raw)
    }

    pub(crate) fn new_raw<T: 'static>(
        store: &mut StoreInner<T>,
        ty: FuncType,
        raw: HostCode<T>,
    ) -> Result<Func> {
        let opaque = &mut store.opaque;
        let wasm_ty = ty.to_wasm(&opaque.engine);
        let direct = !raw.direct.is_null() && weft_jit::direct_host_call_supported(&wasm_ty);
        let trampoline = opaque.engine.host_trampoline(&wasm_ty, direct)?;
        let type_id = opaque.engine.type_id(&wasm_ty);
        let ty = Arc::new(ty);
        let HostCode {
            raw,
            callback,
            data,
            direct: direct_callback,
        } = raw;
        let callback = if direct {
            direct_callback
        } else {
            callback as *const u8
        };
        let func: Arc<HostFn<T>> = Arc::new(HostFn::<T>(raw));
        let host_fn = Arc::as_ptr(&func) as *const ();
        let mut ctx = Box::new(HostCtx {
            callback,
            store: opaque.self_ptr,
            raw: data,
            host_fn,
            func,
            ty: ty.clone(),
            funcref: VMFuncRef {
                wasm_call: trampoline.code.wasm_call(),
                array_call: std::ptr::null(),
                vmctx: std::ptr::null_mut(),
                type_id,
                _pad: 0,
            },
            _trampoline: trampoline,
        });
        ctx.funcref.vmctx = &mut *ctx as *mut HostCtx as *mut u8;
        let funcref = &ctx.funcref as *const VMFuncRef;
        let index = opaque.funcs.len();
        opaque.funcref_index.insert(funcref as usize, index);
        opaque.funcs.push(FuncData {
            ty,
            funcref,
            kind: FuncKind::Host(ctx),
            typed_entry: std::cell::Cell::new(0),
        });
        Ok(Func {
            store_id: opaque.id,
            index,
        })
    }

    /// The engine-wide canonical type id of the function, if it belongs to
    /// `store`.
    pub(crate) fn type_id_in(&self, store: &StoreOpaque) -> Option<u32> {
        if store.check(self.store_id, "function").is_err() {
            return None;
        }
        let funcref = store.funcs.get(self.index)?.funcref;
        // SAFETY: a function's `VMFuncRef` lives in a vmctx or host context
        // owned by its store, which is alive (we hold a reference to it).
        Some(unsafe { (*funcref).type_id })
    }

    /// The function's type.
    pub fn ty(&self, store: impl AsContext) -> Result<FuncType> {
        let cx = store.as_context();
        cx.0.opaque.check(self.store_id, "function")?;
        Ok((*cx.0.opaque.funcs[self.index].ty).clone())
    }

    /// Calls the function asynchronously (needs
    /// [`Config::async_support`](crate::Config::async_support)): wasm runs
    /// on a fiber that suspends while an async host function's future is
    /// pending (or at an async epoch yield), and the returned future
    /// completes with the call. Dropping the future mid-call cancels the
    /// call: the store stays usable.
    ///
    /// ```
    /// # tokio_test_block_on(async {
    /// use weft_runtime::{Config, Engine, Instance, Module, Store, Val};
    /// let mut config = Config::new();
    /// config.async_support(true);
    /// let engine = Engine::new(&config)?;
    /// let module = Module::new(&engine, r#"(module (func (export "double") (param i32) (result i32)
    ///     (i32.mul (local.get 0) (i32.const 2))))"#)?;
    /// let mut store = Store::new(&engine, ());
    /// let instance = Instance::new_async(&mut store, &module, &[]).await?;
    /// let double = instance.get_func(&mut store, "double").unwrap();
    /// let mut out = [Val::I32(0)];
    /// double.call_async(&mut store, &[Val::I32(21)], &mut out).await?;
    /// assert_eq!(out[0].i32(), Some(42));
    /// # Ok::<(), weft_runtime::Error>(())
    /// # }).unwrap();
    /// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// ```
    ///
    /// # Errors
    /// As for [`Func::call`]; also if async support is off.
    pub async fn call_async<T: Send + 'static>(
        &self,
        store: &mut crate::Store<T>,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<()> {
        let func = *self;
        crate::fiber::run_on_store(store, move |cx| func.call(cx, params, results))?.await
    }

    /// Calls the function with dynamically typed arguments.
    ///
    /// # Errors
    /// A wrong number or type of arguments or result slots is an
    /// [`Error::InvalidArgument`]; a trap is [`Error::Trap`]; an error from a
    /// host function is returned as it was produced.
    pub fn call<T: 'static>(
        &self,
        mut store: impl AsContextMut<Data = T>,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<()> {
        let cx = store.as_context_mut();
        let inner = cx.0;
        inner.opaque.check(self.store_id, "function")?;
        let (n_params, n_results) = {
            let ty = &inner.opaque.funcs[self.index].ty;
            if params.len() != ty.params().len() {
                return Err(Error::InvalidArgument(format!(
                    "expected {} arguments, got {}",
                    ty.params().len(),
                    params.len()
                )));
            }
            for (i, (v, t)) in params.iter().zip(ty.params()).enumerate() {
                check_val(&inner.opaque, v, t, &format_args!("argument {i}"))?;
            }
            if results.len() != ty.results().len() {
                return Err(Error::InvalidArgument(format!(
                    "expected {} result slots, got {}",
                    ty.results().len(),
                    results.len()
                )));
            }
            (ty.params().len(), ty.results().len())
        };
        // Up to 16 values travel on the stack: no allocation per call.
        let mut small = [0u128; 16];
        let mut big;
        let n = n_params.max(n_results).max(1);
        let slots: &mut [u128] = if n <= small.len() {
            &mut small[..n]
        } else {
            big = vec![0u128; n];
            &mut big
        };
        for (s, p) in slots.iter_mut().zip(params) {
            *s = p.to_raw(&mut inner.opaque)?;
        }
        call_raw(inner, self.index, slots)?;
        let ty = inner.opaque.funcs[self.index].ty.clone();
        for (i, (r, t)) in results.iter_mut().zip(ty.results()).enumerate() {
            *r = Val::from_raw(slots[i], t, &inner.opaque);
        }
        Ok(())
    }

    /// A typed view of this function; fails if the types do not match.
    pub fn typed<P: WasmList, R: WasmList>(
        &self,
        store: impl AsContext,
    ) -> Result<TypedFunc<P, R>> {
        let cx = store.as_context();
        cx.0.opaque.check(self.store_id, "function")?;
        let ty = &cx.0.opaque.funcs[self.index].ty;
        let check_refs = check_types("parameter", P::types().into_iter(), ty.params(), false)?;
        check_types("result", R::types().into_iter(), ty.results(), true)?;
        let data = &cx.0.opaque.funcs[self.index];
        let wasm_funcref = match data.kind {
            FuncKind::Host(_) => 0,
            _ => data.funcref as usize,
        };
        let typed_entry = if wasm_funcref != 0 && !check_refs {
            typed_entry_of(&cx.0.opaque, self.index)
        } else {
            0
        };
        Ok(TypedFunc {
            func: *self,
            check_refs,
            wasm_funcref,
            typed_entry,
            _marker: PhantomData,
        })
    }
}

/// `Ok` if `v` is a value of type `t` (typed references: of the function
/// type), else an [`Error::InvalidArgument`] naming `what`.
pub(crate) fn check_val(
    store: &StoreOpaque,
    v: &Val,
    t: &ValType,
    what: &dyn std::fmt::Display,
) -> Result<()> {
    if v.ty() == *t {
        return Ok(());
    }
    v.check_wasm(store, t.to_wasm(&store.engine), what)
}

fn check_types(
    what: &str,
    got: impl ExactSizeIterator<Item = ValType>,
    want: &[ValType],
    results: bool,
) -> Result<bool> {
    if got.len() != want.len() {
        return Err(Error::InvalidArgument(format!(
            "expected {} {what}s, got {}",
            want.len(),
            got.len()
        )));
    }
    let mut check_refs = false;
    for (i, (g, w)) in got.zip(want).enumerate() {
        // A result may be of a subtype (a typed reference read as `funcref`);
        // an `Option<Func>` (`Option<ExternRef>`) parameter may be passed for
        // a typed function (non-null host) reference, checked on every call.
        let ok = if results {
            w.matches(&g)
        } else if g != *w && g.is_ref() && w.matches(&g) {
            check_refs = true;
            true
        } else {
            g == *w
        };
        if !ok {
            return Err(Error::InvalidArgument(format!(
                "{what} {i}: expected {w}, got {g}"
            )));
        }
    }
    Ok(check_refs)
}

/// Calls function `index` of the store with parameters in `slots` (which
/// must have room for the results), writing results back to `slots`.
pub(crate) fn call_raw<T: 'static>(
    inner: &mut StoreInner<T>,
    index: usize,
    slots: &mut [u128],
) -> Result<()> {
    let data = &inner.opaque.funcs[index];
    if let FuncKind::Host(ctx) = &data.kind {
        // SAFETY: `host_fn` is this store's `HostFn<T>` (made by `new_raw`
        // with the store's own `T`), kept alive by the context, which the
        // store never drops while it lives.
        let func = unsafe { &*(*(ctx.host_fn as *const HostFn<T>)).0 as *const RawHostFn<T> };
        // SAFETY: as above: the closure outlives this call and is `Sync`.
        return unsafe { &*func }(inner, std::ptr::null_mut(), slots);
    }
    let funcref = data.funcref;
    let (nparams, nresults) = (data.ty.params().len(), data.ty.results().len());
    let entry = typed_entry_of(&inner.opaque, index);
    // SAFETY: `funcref` is the live funcref of this store's wasm function
    // `index` (funcrefs point into instance vmctxs the store owns), `entry`
    // its type's typed entry or 0, and `slots` holds its parameters with
    // room for its results.
    unsafe { call_wasm_func(&mut inner.opaque, funcref, entry, nparams, nresults, slots) }
        .map_err(|e| *e)
}

/// Calls the wasm function of `funcref` with the parameters in `slots`,
/// writing its results back to `slots`: through `entry`, its type's typed
/// entry (values in registers), when that is not 0, else through its
/// `array_call`.
///
/// # Safety
/// `funcref` must be the live funcref of a wasm function of the store of
/// `opaque`, whose code and instance the store keeps alive; `entry` 0 or the
/// engine's typed entry for its type (`typed_entry_of`); `nparams` and
/// `nresults` its type's counts; `slots` must hold the parameters and have
/// room for the results.
#[inline(always)]
unsafe fn call_wasm_func(
    opaque: &mut StoreOpaque,
    funcref: *const VMFuncRef,
    entry: usize,
    nparams: usize,
    nresults: usize,
    slots: &mut [u128],
) -> std::result::Result<(), Box<Error>> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if entry != 0 {
        // At most `TYPED_ENTRY_MAX_PARAMS` parameters and one result (the
        // engine made an entry only for such a type).
        let mut args = [0u64; weft_jit::TYPED_ENTRY_MAX_PARAMS];
        for (a, &v) in args.iter_mut().zip(&slots[..nparams]) {
            *a = v as u64;
        }
        // SAFETY: forwarded from the caller; `args` holds the parameters'
        // bits.
        let bits = unsafe { invoke_typed(opaque, entry as *const u8, funcref, args) }?;
        if nresults == 1 {
            slots[0] = u128::from(bits);
        }
        return Ok(());
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    let _ = (entry, nparams, nresults);
    // SAFETY: as the caller guarantees, `array_call` is the function's
    // compiled array entry and `vmctx` its instance's.
    let (f, vmctx) = unsafe {
        (
            std::mem::transmute::<*const u8, ArrayCall>((*funcref).array_call),
            (*funcref).vmctx,
        )
    };
    invoke(opaque, f, vmctx, slots)
}

/// Enters wasm: sets the stack limit for the outermost activation, catches
/// traps, and delivers pending host errors and panics. The error is boxed
/// so that the result of a call that succeeded comes back in a register.
pub(crate) fn invoke(
    opaque: &mut StoreOpaque,
    f: ArrayCall,
    vmctx: *mut u8,
    slots: &mut [u128],
) -> std::result::Result<(), Box<Error>> {
    let len = slots.len();
    let values = slots.as_mut_ptr();
    // SAFETY: see `call_raw`; `state` is the thread's current trap slot
    // while `call` runs.
    enter_and_call(opaque, |state| unsafe {
        traphandlers::call_entered(state, f, vmctx, vmctx, values, len)
    })
}

/// [`invoke`] through the typed entry `entry` of the function's type:
/// the parameters' bits in `args`, the result's bits returned, all in
/// registers.
///
/// # Safety
/// As for `traphandlers::call_typed_entered`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline]
unsafe fn invoke_typed(
    opaque: &mut StoreOpaque,
    entry: *const u8,
    funcref: *const VMFuncRef,
    args: [u64; weft_jit::TYPED_ENTRY_MAX_PARAMS],
) -> std::result::Result<u64, Box<Error>> {
    // SAFETY: forwarded from the caller; `state` is the thread's current
    // trap slot while `call` runs.
    enter_and_call(opaque, |state| unsafe {
        traphandlers::call_typed_entered(state, entry, funcref as *const u8, args)
    })
}

/// Enters wasm around `call`: refuses an interrupted store, sets the stack
/// limit for the outermost activation, makes a trap slot the thread's
/// current one for `call`, and turns a trap, a pending exception or a host
/// error or panic into the call's error.
#[inline(always)]
fn enter_and_call<R>(
    opaque: &mut StoreOpaque,
    call: impl FnOnce(
        &mut traphandlers::CallState,
    ) -> std::result::Result<R, Box<traphandlers::TrapInfo>>,
) -> std::result::Result<R, Box<Error>> {
    // An interrupted store refuses new calls at once (a call of a leaf
    // function has no check of its own to notice the interrupt).
    if opaque.vmstore.is_interrupted() {
        return Err(interrupted());
    }
    // The thread's stack budget is shared by every store active on it
    // (see `stack.rs`); a store entered for the first time on this thread's
    // wasm stack adopts the thread's limit.
    let marker = 0u8;
    let sp = &marker as *const u8 as usize;
    let max = opaque.engine.inner.config.max_wasm_stack;
    let mut state = traphandlers::CallState::new();
    let (limit, prev) = crate::stack::enter(sp, max, &mut state as *mut _ as usize);
    let depth = opaque.depth;
    let outermost = depth == 0;
    if outermost {
        opaque.vmstore.enter(limit);
        opaque.entry_sp = sp;
    }
    opaque.depth = depth + 1;
    let opaque_ptr = opaque.self_ptr;
    // While wasm runs, the store is reached only through raw pointers held
    // by compiled code and host contexts.
    let r = call(&mut state);
    crate::stack::exit(prev);
    // SAFETY: the call has returned; no other reference to the store is live.
    let opaque = unsafe { &mut *opaque_ptr };
    // A store of the depth kept in a register, not a read-modify-write of
    // memory written before the call.
    opaque.depth = depth;
    // No collection of exceptions here: an `exnref` the call returned is
    // not rooted until the caller turns it into an `Exn`. Collections run
    // when an allocation finds one due (`alloc_exception`), or when asked.
    match r {
        Ok(v) => match opaque.take_pending_exception() {
            None => Ok(v),
            Some(handle) => Err(Box::new(uncaught_exception(opaque, handle))),
        },
        Err(info) => Err(Box::new(trapped(opaque, info))),
    }
}

/// The error of a call into an interrupted store.
#[cold]
#[inline(never)]
fn interrupted() -> Box<Error> {
    Box::new(Error::Trap(Trap::new(TrapKind::Interrupt, None)))
}

/// The error of a call that returned with an exception no handler took: the
/// embedder gets it. The call failed, so an instance pool resets the
/// instance before reuse.
#[cold]
#[inline(never)]
fn uncaught_exception(opaque: &mut StoreOpaque, handle: u64) -> Error {
    opaque.failed_calls += 1;
    opaque.uncaught(handle)
}

/// The error of a call that trapped (or a host function's error or panic,
/// delivered after wasm unwound).
#[cold]
#[inline(never)]
fn trapped(opaque: &mut StoreOpaque, info: Box<traphandlers::TrapInfo>) -> Error {
    opaque.failed_calls += 1;
    // A trap ends any throw in progress (none can be: handlers take the
    // exception before their code runs; cleared for certain).
    opaque.take_pending_exception();
    let mut kind = info.kind;
    if kind == TrapKind::MemoryOutOfBounds {
        // A store that faulted across a memory's end may have written the
        // bytes below it (some CPUs write part of an access that faults)
        // without marking them: the next resets read the page tables.
        for m in &opaque.memories {
            m.untrack();
        }
    }
    // An interrupt stops calls at the next prologue by raising the stack
    // limit (see `VMStoreContext::interrupt`).
    if kind == TrapKind::StackOverflow && opaque.vmstore.is_interrupted() {
        kind = TrapKind::Interrupt;
    }
    if kind == TrapKind::Host {
        match opaque.pending.take() {
            Some(Pending::Error(e)) => return e,
            Some(Pending::Panic(p)) => panic::resume_unwind(p),
            Some(Pending::Trap(k)) => kind = k,
            None => {}
        }
    }
    let func = crate::registry::func_name(info.pc);
    tracing::debug!(kind = ?kind, pc = info.pc, func = ?func, "wasm trap");
    // The trapping function, then its wasm callers (at their calls: a
    // return address minus one); trampolines, which have no function, are
    // left out.
    let frames = std::iter::once(info.pc)
        .chain(info.frames[..info.frame_count].iter().map(|&r| r - 1))
        .filter_map(crate::registry::frame)
        .collect();
    // The counted frames end with the entry trampoline's return address
    // when it is not a wasm function: it is not a frame either.
    let mut more = info.more_frames;
    if more > 0 && crate::registry::frame(info.last_frame - 1).is_none() {
        more -= 1;
    }
    Error::Trap(Trap::new(kind, func).with_frames(frames, more))
}

/// Called by compiled host trampolines: runs host closure `C` on raw slots.
#[inline]
unsafe extern "C" fn host_callback<T: 'static, C>(
    host_vmctx: *mut u8,
    caller_vmctx: *mut u8,
    values: *mut u128,
    len: usize,
) -> u32
where
    C: Fn(&mut StoreInner<T>, *mut u8, &mut [u128]) -> Result<()> + Send + Sync + 'static,
{
    // SAFETY: `host_vmctx` is the `HostCtx` this callback was registered
    // with; it lives as long as its store. Its `raw` is the closure of type
    // `C` this instantiation was made for (`HostCode::new` pairs them), kept
    // alive by the context's `func`; stores never remove functions, so it
    // outlives this call. Copy out what we need before taking the store
    // mutably.
    let (store, f) = unsafe {
        let ctx = &*(host_vmctx as *const HostCtx);
        (ctx.store, &*(ctx.raw as *const C))
    };
    // SAFETY: the store outlives every call into it and the outer Rust frame
    // holding `&mut Store` is suspended in `invoke` while wasm runs.
    // `StoreInner<T>` is `repr(C)` with `opaque` first.
    let store = unsafe { &mut *(store as *mut StoreInner<T>) };
    // SAFETY: the trampoline passes `len` valid slots.
    let slots = unsafe { std::slice::from_raw_parts_mut(values, len) };
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(&mut *store, caller_vmctx, slots)));
    // Each failure moves its payload out of line, so the common case has
    // no drop glue and stays small.
    match r {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => host_call_failed(&mut store.opaque, Ok(e)),
        Err(p) => host_call_failed(&mut store.opaque, Err(p)),
    }
}

/// What a host function's error (`Ok`) or panic (`Err`) means for its
/// caller.
#[cold]
#[inline(never)]
fn host_call_failed(
    store: &mut StoreOpaque,
    r: std::result::Result<Error, Box<dyn Any + Send>>,
) -> u32 {
    match r {
        // A host function throws a wasm exception into its caller: it
        // becomes the pending exception, and the caller's check after the
        // call finds it (only when compiled code checks: exceptions on).
        Ok(Error::Exception(exn)) => {
            if exn.store_id != store.id || store.exceptions.get(exn.handle).is_none() {
                // Not something this store's wasm can catch: an error.
                let e = Error::InvalidArgument(
                    "a host function threw an exception of another store".into(),
                );
                store.pending = Some(Pending::Error(e));
                return 1;
            }
            if store.check_exceptions().is_err() {
                store.pending = Some(Pending::Error(Error::Exception(exn)));
                return 1;
            }
            store.set_pending_exception(exn.handle);
            0
        }
        Ok(e) => {
            store.pending = Some(Pending::Error(e));
            1
        }
        Err(p) => {
            store.pending = Some(Pending::Panic(p));
            1
        }
    }
}

/// A function with statically known parameter and result types: calls pass
/// values in fixed-size arrays, with no boxing or type checks per call.
///
/// An `Option<Func>` parameter may stand for a typed function reference
/// parameter (`(ref $t)`, `(ref null $t)`, `(ref func)`), and an
/// `Option<ExternRef>` for a `(ref extern)`: such arguments are checked on
/// each call (null for a non-nullable type, or a function of another type,
/// is an [`Error::InvalidArgument`]).
pub struct TypedFunc<P, R> {
    func: Func,
    /// Whether a parameter is a typed function reference passed as an
    /// `Option<Func>`, to check per call.
    check_refs: bool,
    /// The function's `VMFuncRef` (an address) when it is compiled wasm, 0
    /// for a host function: a store never changes or frees a function's
    /// funcref while it lives, so after the store check a call goes
    /// straight to the entry.
    wasm_funcref: usize,
    /// The engine's typed entry for the function's type (an address; 0 if
    /// none): a call then passes the parameters and result in registers.
    /// The engine keeps its entries as long as it lives, and the store that
    /// a call needs keeps the engine.
    typed_entry: usize,
    _marker: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, R> Copy for TypedFunc<P, R> {}

impl<P: WasmList, R: WasmList> TypedFunc<P, R> {
    /// Calls the function asynchronously; see [`Func::call_async`].
    ///
    /// # Errors
    /// As for [`TypedFunc::call`]; also if async support is off.
    pub async fn call_async<T: Send + 'static>(
        &self,
        store: &mut crate::Store<T>,
        params: P,
    ) -> Result<R> {
        let func = *self;
        crate::fiber::run_on_store(store, move |cx| func.call(cx, params))?.await
    }

    /// Calls the function.
    pub fn call<T: 'static>(&self, mut store: impl AsContextMut<Data = T>, params: P) -> Result<R> {
        let cx = store.as_context_mut();
        let inner = cx.0;
        inner.opaque.check(self.func.store_id, "function")?;
        if self.typed_entry != 0 {
            // A typed entry takes at most `TYPED_ENTRY_MAX_PARAMS`
            // parameters and one result: a fixed array that the optimiser
            // keeps in registers.
            let mut slots = [0u128; weft_jit::TYPED_ENTRY_MAX_PARAMS];
            params.store(&mut slots[..P::LEN], &mut inner.opaque);
            // SAFETY: as below; `typed_entry` is non-zero only for a wasm
            // function without typed reference parameters.
            unsafe {
                call_wasm_func(
                    &mut inner.opaque,
                    self.wasm_funcref as *const VMFuncRef,
                    self.typed_entry,
                    P::LEN,
                    R::LEN,
                    &mut slots,
                )
            }
            .map_err(|e| *e)?;
            return Ok(R::load(&slots, &inner.opaque));
        }
        let mut small = [std::mem::MaybeUninit::<u128>::uninit(); 8];
        let mut big;
        let n = P::LEN.max(R::LEN).max(1);
        let slots: &mut [u128] = if n <= small.len() {
            // Only the `n` slots used are zeroed (`n` is a constant of this
            // instantiation: a few stores, not eight).
            for s in &mut small[..n] {
                s.write(0);
            }
            // SAFETY: the first `n` elements were just initialised, and
            // `MaybeUninit<u128>` has `u128`'s layout.
            unsafe { &mut *(&mut small[..n] as *mut [std::mem::MaybeUninit<u128>] as *mut [u128]) }
        } else {
            big = vec![0u128; n];
            &mut big
        };
        params.store(slots, &mut inner.opaque);
        if self.check_refs {
            check_typed_ref_args(&inner.opaque, self.func, &slots[..P::LEN])?;
        }
        if self.wasm_funcref != 0 {
            // SAFETY: the store check above passed, so `wasm_funcref` is
            // the live, never-changing funcref of this store's wasm
            // function `self.func` (see the field); the types were checked
            // against `P` and `R` when this `TypedFunc` was made; `slots`
            // holds the parameters and has room for the results.
            unsafe {
                call_wasm_func(
                    &mut inner.opaque,
                    self.wasm_funcref as *const VMFuncRef,
                    0,
                    P::LEN,
                    R::LEN,
                    slots,
                )
            }
            .map_err(|e| *e)?;
        } else {
            call_raw(inner, self.func.index, slots)?;
        }
        Ok(R::load(slots, &inner.opaque))
    }

    /// The untyped function.
    pub fn func(&self) -> Func {
        self.func
    }
}

/// Checks the raw arguments of a call to `func` whose typed reference
/// parameters were given as `Option<Func>`/`Option<ExternRef>` (see
/// [`TypedFunc`]).
fn check_typed_ref_args(store: &StoreOpaque, func: Func, args: &[u128]) -> Result<()> {
    use weft_decoder::{HeapType as H, ValType as W};
    let ty = func
        .type_id_in(store)
        .and_then(|id| store.engine.canonical_type(id))
        .ok_or_else(|| Error::InvalidArgument("function of another store".into()))?;
    for (i, (&raw, &t)) in args.iter().zip(ty.params.iter()).enumerate() {
        let W::Ref(r) = t else { continue };
        let funcref = raw as usize as *const VMFuncRef;
        let ok = if funcref.is_null() {
            r.nullable
        } else {
            match r.heap {
                H::Concrete(id) => {
                    // SAFETY: a non-null funcref argument was produced by
                    // `Option<Func>::into_raw` from a function of this store,
                    // whose `VMFuncRef` lives as long as the store.
                    let have = unsafe { (*funcref).type_id };
                    have == id
                }
                H::Func | H::Extern | H::Exn => true,
            }
        };
        if !ok {
            let want = ValType::from_wasm(t, &store.engine);
            return Err(Error::InvalidArgument(format!(
                "argument {i} has type {want}, got {}",
                if funcref.is_null() {
                    "null (or a function of another store)"
                } else {
                    "a function of another type"
                }
            )));
        }
    }
    Ok(())
}

/// What a host closure may return: a [`WasmList`] or a `Result` of one.
pub trait IntoResults: Send + 'static {
    /// The value list.
    type List: WasmList;
    /// Converts to a result.
    fn into_results(self) -> Result<Self::List>;
}

impl<L: WasmList> IntoResults for L {
    type List = L;
    fn into_results(self) -> Result<L> {
        Ok(self)
    }
}

impl<L: WasmList> IntoResults for Result<L> {
    type List = L;
    fn into_results(self) -> Result<L> {
        self
    }
}

/// Rust closures that can become host functions; see [`Func::wrap`].
pub trait IntoFunc<T: 'static, Params, Results>: Send + Sync + 'static {
    #[doc(hidden)]
    fn into_parts(self) -> HostFuncParts<T>;
}

/// Defines `direct_callback_for` (inside a function body) for host
/// closures with parameters `$a`.
macro_rules! direct_callback_fn {
    ($($a:ident),*) => {
        /// The direct callback of a raw host closure of type `C` whose
        /// function has this many parameters (null if it returns more
        /// than one value: those go through memory).
        fn direct_callback_for<T: 'static, C>(_: &C, results: usize) -> *const u8
        where
            C: Fn(&mut StoreInner<T>, *mut u8, &mut [u128]) -> Result<()> + Send + Sync + 'static,
        {
            /// Called by direct host trampolines: the parameters' bits
            /// arrive in registers, go to a local slot array (which the
            /// inlined closure reads: no memory round trip survives
            /// optimisation), and the result's bits leave in a register.
            #[allow(non_snake_case, reason = "macro-generated")]
            unsafe extern "C" fn direct<T: 'static, C>(
                host_vmctx: *mut u8,
                caller_vmctx: *mut u8,
                $($a: u64),*
            ) -> DirectRet
            where
                C: Fn(&mut StoreInner<T>, *mut u8, &mut [u128]) -> Result<()> + Send + Sync + 'static,
            {
                let mut slots = [$(u128::from($a),)* 0u128];
                // SAFETY: as for `host_callback` (the direct trampoline
                // passes the same host context and caller); `slots` is a
                // local array of `slots.len()` values, room for the
                // parameters and the one result.
                let status = unsafe {
                    host_callback::<T, C>(host_vmctx, caller_vmctx, slots.as_mut_ptr(), slots.len())
                };
                DirectRet {
                    value: slots[0] as u64,
                    status: u64::from(status),
                }
            }
            if results <= 1 {
                direct::<T, C> as *const u8
            } else {
                std::ptr::null()
            }
        }
    };
}

macro_rules! into_func {
    ($($a:ident $i:tt),*) => {

        impl<T: 'static, F, R, $($a: WasmTy),*> IntoFunc<T, ($($a,)*), R> for F
        where
            F: Fn($($a),*) -> R + Send + Sync + 'static,
            R: IntoResults,
        {
            #[allow(non_snake_case, unused_variables, reason = "macro-generated")]
            fn into_parts(self) -> HostFuncParts<T> {
                let ty = FuncType::new(vec![$($a::TY),*], R::List::types());
                let raw = move |store: &mut StoreInner<T>, _caller: *mut u8, slots: &mut [u128]| -> Result<()> {
                    let r = self($($a::from_raw(slots[$i], &store.opaque)),*).into_results()?;
                    r.store(slots, &mut store.opaque);
                    Ok(())
                };
                direct_callback_fn!($($a),*);
                let direct = direct_callback_for::<T, _>(&raw, R::List::LEN);
                HostFuncParts { ty, raw: HostCode::with_direct(raw, direct) }
            }
        }

        impl<T: 'static, F, R, $($a: WasmTy),*> IntoFunc<T, (Caller<'static, T>, $($a,)*), R> for F
        where
            F: for<'c> Fn(Caller<'c, T>, $($a),*) -> R + Send + Sync + 'static,
            R: IntoResults,
        {
            #[allow(non_snake_case, unused_variables, reason = "macro-generated")]
            fn into_parts(self) -> HostFuncParts<T> {
                let ty = FuncType::new(vec![$($a::TY),*], R::List::types());
                let raw = move |store: &mut StoreInner<T>, caller: *mut u8, slots: &mut [u128]| -> Result<()> {
                    let instance = caller_instance(caller);
                    $(let $a = $a::from_raw(slots[$i], &store.opaque);)*
                    let r = self(Caller { store: &mut *store, instance }, $($a),*).into_results()?;
                    r.store(slots, &mut store.opaque);
                    Ok(())
                };
                direct_callback_fn!($($a),*);
                let direct = direct_callback_for::<T, _>(&raw, R::List::LEN);
                HostFuncParts { ty, raw: HostCode::with_direct(raw, direct) }
            }
        }
    };
}
into_func!();
into_func!(A 0);
into_func!(A 0, B 1);
into_func!(A 0, B 1, C 2);
into_func!(A 0, B 1, C 2, D 3);
into_func!(A 0, B 1, C 2, D 3, E 4);
into_func!(A 0, B 1, C 2, D 3, E 4, F2 5);
into_func!(A 0, B 1, C 2, D 3, E 4, F2 5, G 6);
into_func!(A 0, B 1, C 2, D 3, E 4, F2 5, G 6, H 7);
