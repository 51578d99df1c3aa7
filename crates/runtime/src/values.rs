//! Values that cross the host/wasm boundary.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::types::{HeapType, ValType};

use crate::error::Result;
use crate::func::Func;
use crate::store::StoreOpaque;

/// A WebAssembly value.
///
/// Reference values belong to a store: a [`Func`] or an [`ExternRef`] passed
/// into a store stays alive for as long as that store does (see
/// [`ExternRef`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// An `f32`, as raw bits (so NaN payloads survive).
    F32(u32),
    /// An `f64`, as raw bits (so NaN payloads survive).
    F64(u64),
    /// A `v128`.
    V128(u128),
    /// A `funcref` (`None` is the null reference).
    FuncRef(Option<Func>),
    /// An `externref` (`None` is the null reference).
    ExternRef(Option<ExternRef>),
    /// An `exnref` (`None` is the null reference).
    ExnRef(Option<crate::Exn>),
}

impl Val {
    /// The value's type (`funcref` for every function reference, whatever
    /// its function's type; see [`Val::matches`] for typed references).
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::V128(_) => ValType::V128,
            Val::FuncRef(_) => ValType::FUNCREF,
            Val::ExternRef(_) => ValType::EXTERNREF,
            Val::ExnRef(_) => ValType::EXNREF,
        }
    }

    /// The default value of a type: zero, or the null reference (also for
    /// a non-nullable reference type, which has no default: such a null is
    /// refused where a value of the type is needed).
    pub fn default_for(ty: &ValType) -> Val {
        match ty {
            ValType::I32 => Val::I32(0),
            ValType::I64 => Val::I64(0),
            ValType::F32 => Val::F32(0),
            ValType::F64 => Val::F64(0),
            ValType::V128 => Val::V128(0),
            ValType::Ref(r) if *r.heap_type() == HeapType::Extern => Val::ExternRef(None),
            ValType::Ref(r) if *r.heap_type() == HeapType::Exn => Val::ExnRef(None),
            ValType::Ref(_) => Val::FuncRef(None),
        }
    }

    /// Whether the value belongs to type `ty` in `store`: a null reference
    /// to a nullable reference type, a function to `func` or to its own
    /// function type (compared by structure).
    ///
    /// ```
    /// use weft_runtime::{Engine, Func, FuncType, HeapType, RefType, Store, Val, ValType};
    /// let mut store = Store::new(&Engine::default(), ());
    /// let f = Func::wrap(&mut store, |x: i32| x + 1)?;
    /// let typed = |nullable, ty| ValType::Ref(RefType::new(nullable, HeapType::Concrete(ty)));
    /// let own = FuncType::new([ValType::I32], [ValType::I32]);
    /// let other = FuncType::new([ValType::I64], []);
    /// assert!(Val::FuncRef(Some(f)).matches(&store, &typed(false, own.clone())));
    /// assert!(!Val::FuncRef(Some(f)).matches(&store, &typed(false, other)));
    /// assert!(!Val::FuncRef(None).matches(&store, &typed(false, own.clone())));
    /// assert!(Val::FuncRef(None).matches(&store, &typed(true, own)));
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    pub fn matches(&self, store: impl crate::AsContext, ty: &ValType) -> bool {
        let opaque = &store.as_context().0.opaque;
        self.matches_wasm(opaque, ty.to_wasm(&opaque.engine))
    }

    /// [`Val::matches`] with a canonical decoder type.
    pub(crate) fn matches_wasm(&self, store: &StoreOpaque, ty: weft_decoder::ValType) -> bool {
        use weft_decoder::{HeapType as H, ValType as W};
        match (self, ty) {
            (Val::I32(_), W::I32)
            | (Val::I64(_), W::I64)
            | (Val::F32(_), W::F32)
            | (Val::F64(_), W::F64)
            | (Val::V128(_), W::V128) => true,
            (Val::FuncRef(None), W::Ref(r)) => r.nullable && r.is_func(),
            (Val::FuncRef(Some(f)), W::Ref(r)) => match r.heap {
                H::Func => true,
                H::Concrete(id) => f.type_id_in(store) == Some(id),
                H::Extern | H::Exn => false,
            },
            (Val::ExternRef(None), W::Ref(r)) => r.nullable && r.heap == H::Extern,
            (Val::ExternRef(Some(_)), W::Ref(r)) => r.heap == H::Extern,
            (Val::ExnRef(None), W::Ref(r)) => r.nullable && r.heap == H::Exn,
            (Val::ExnRef(Some(e)), W::Ref(r)) => r.heap == H::Exn && e.store_id == store.id,
            _ => false,
        }
    }

    /// `Ok` if the value belongs to the canonical type `ty`, else an
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming
    /// `what` and both types.
    pub(crate) fn check_wasm(
        &self,
        store: &StoreOpaque,
        ty: weft_decoder::ValType,
        what: &dyn fmt::Display,
    ) -> Result<()> {
        if self.matches_wasm(store, ty) {
            return Ok(());
        }
        let want = ValType::from_wasm(ty, &store.engine);
        let got = match self {
            Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) => {
                format!("a null {}", self.ty())
            }
            _ => self.ty().to_string(),
        };
        Err(crate::Error::InvalidArgument(format!(
            "{what} has type {want}, got {got}{}",
            match self {
                Val::FuncRef(Some(_))
                    if matches!(
                        want.as_ref_type().map(|r| r.heap_type()),
                        Some(crate::types::HeapType::Concrete(_))
                    ) =>
                {
                    " of another function type"
                }
                _ => "",
            }
        )))
    }

    /// The value as an `i32`, if it is one.
    pub fn i32(&self) -> Option<i32> {
        if let Val::I32(v) = self {
            Some(*v)
        } else {
            None
        }
    }

    /// The value as an `i64`, if it is one.
    pub fn i64(&self) -> Option<i64> {
        if let Val::I64(v) = self {
            Some(*v)
        } else {
            None
        }
    }

    /// The value as an `f32`, if it is one.
    pub fn f32(&self) -> Option<f32> {
        if let Val::F32(v) = self {
            Some(f32::from_bits(*v))
        } else {
            None
        }
    }

    /// The value as an `f64`, if it is one.
    pub fn f64(&self) -> Option<f64> {
        if let Val::F64(v) = self {
            Some(f64::from_bits(*v))
        } else {
            None
        }
    }

    /// The value as a `v128`, if it is one.
    pub fn v128(&self) -> Option<V128> {
        if let Val::V128(v) = self {
            Some(V128(*v))
        } else {
            None
        }
    }

    /// Encodes the value into a raw 16-byte slot (the contract's `ValRaw`).
    pub(crate) fn to_raw(&self, store: &mut StoreOpaque) -> Result<u128> {
        Ok(match self {
            Val::I32(v) => u128::from(*v as u32),
            Val::I64(v) => u128::from(*v as u64),
            Val::F32(v) => u128::from(*v),
            Val::F64(v) => u128::from(*v),
            Val::V128(v) => *v,
            Val::FuncRef(f) => f.to_raw_checked(store)?,
            Val::ExternRef(e) => e.clone().into_raw(store),
            Val::ExnRef(None) => 0,
            Val::ExnRef(Some(e)) => e.to_raw(store)?,
        })
    }

    /// Decodes a raw slot as a value of the decoder type `ty`.
    pub(crate) fn from_raw_wasm(raw: u128, ty: weft_decoder::ValType, store: &StoreOpaque) -> Val {
        use weft_decoder::{HeapType as H, ValType as W};
        match ty {
            W::I32 => Val::I32(raw as u32 as i32),
            W::I64 => Val::I64(raw as u64 as i64),
            W::F32 => Val::F32(raw as u32),
            W::F64 => Val::F64(raw as u64),
            W::V128 => Val::V128(raw),
            W::Ref(r) if r.heap == H::Extern => {
                Val::ExternRef(Option::<ExternRef>::from_raw(raw, store))
            }
            W::Ref(r) if r.heap == H::Exn => Val::ExnRef(crate::Exn::from_raw(raw, store)),
            W::Ref(_) => Val::FuncRef(Option::<Func>::from_raw(raw, store)),
        }
    }

    /// Decodes a raw slot as a value of type `ty`.
    pub(crate) fn from_raw(raw: u128, ty: &ValType, store: &StoreOpaque) -> Val {
        match ty {
            ValType::I32 => Val::I32(raw as u32 as i32),
            ValType::I64 => Val::I64(raw as u64 as i64),
            ValType::F32 => Val::F32(raw as u32),
            ValType::F64 => Val::F64(raw as u64),
            ValType::V128 => Val::V128(raw),
            ValType::Ref(r) if *r.heap_type() == HeapType::Extern => {
                Val::ExternRef(Option::<ExternRef>::from_raw(raw, store))
            }
            ValType::Ref(r) if *r.heap_type() == HeapType::Exn => {
                Val::ExnRef(crate::Exn::from_raw(raw, store))
            }
            ValType::Ref(_) => Val::FuncRef(Option::<Func>::from_raw(raw, store)),
        }
    }
}

impl From<i32> for Val {
    fn from(v: i32) -> Val {
        Val::I32(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I64(v)
    }
}
impl From<f32> for Val {
    fn from(v: f32) -> Val {
        Val::F32(v.to_bits())
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::F64(v.to_bits())
    }
}
impl From<V128> for Val {
    fn from(v: V128) -> Val {
        Val::V128(v.0)
    }
}
impl From<Func> for Val {
    fn from(f: Func) -> Val {
        Val::FuncRef(Some(f))
    }
}
impl From<ExternRef> for Val {
    fn from(e: ExternRef) -> Val {
        Val::ExternRef(Some(e))
    }
}

struct ExternData(Box<dyn Any + Send + Sync>);

/// A reference to a host value that wasm can hold as an `externref`.
///
/// Cloning is cheap (reference counted). **Lifetime:** when an `ExternRef`
/// enters a store (as an argument, a global, a table element or a host
/// function result) the store keeps a reference to it until the store is
/// dropped, because compiled code copies `externref`s freely without telling
/// anyone; nothing outlives its store, and nothing is freed while wasm could
/// still use it.
#[derive(Clone)]
pub struct ExternRef(Arc<ExternData>);

impl ExternRef {
    /// Wraps a host value.
    pub fn new(value: impl Any + Send + Sync) -> ExternRef {
        ExternRef(Arc::new(ExternData(Box::new(value))))
    }

    /// The wrapped value.
    pub fn data(&self) -> &(dyn Any + Send + Sync) {
        &*self.0.0
    }

    /// The wrapped value, if it has type `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.0.downcast_ref()
    }

    /// Whether two references point at the same host value.
    pub fn ptr_eq(a: &ExternRef, b: &ExternRef) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    fn raw(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl PartialEq for ExternRef {
    fn eq(&self, other: &Self) -> bool {
        ExternRef::ptr_eq(self, other)
    }
}

impl fmt::Debug for ExternRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternRef({:#x})", self.raw())
    }
}

/// A Rust type that maps to one WebAssembly value type, for typed calls and
/// host functions.
pub trait WasmTy: Send + 'static {
    /// The corresponding value type.
    const TY: ValType;
    #[doc(hidden)]
    fn into_raw(self, store: &mut StoreOpaque) -> u128;
    #[doc(hidden)]
    fn from_raw(raw: u128, store: &StoreOpaque) -> Self;
}

macro_rules! wasm_ty {
    ($t:ty, $vt:ident, |$s:ident| $into:expr, |$r:ident| $from:expr) => {
        impl WasmTy for $t {
            const TY: ValType = ValType::$vt;
            #[inline]
            fn into_raw($s, _: &mut StoreOpaque) -> u128 {
                $into
            }
            #[inline]
            fn from_raw($r: u128, _: &StoreOpaque) -> Self {
                $from
            }
        }
    };
}
wasm_ty!(i32, I32, |self| u128::from(self as u32), |r| r as u32
    as i32);
wasm_ty!(u32, I32, |self| u128::from(self), |r| r as u32);
wasm_ty!(i64, I64, |self| u128::from(self as u64), |r| r as u64
    as i64);
wasm_ty!(u64, I64, |self| u128::from(self), |r| r as u64);
wasm_ty!(f32, F32, |self| u128::from(self.to_bits()), |r| {
    f32::from_bits(r as u32)
});
wasm_ty!(f64, F64, |self| u128::from(self.to_bits()), |r| {
    f64::from_bits(r as u64)
});

wasm_ty!(V128, V128, |self| self.0, |r| V128(r));

/// A `v128` value, for typed calls and host functions (and [`Val::V128`]).
///
/// The 128 bits are kept as a `u128` whose least significant byte is the
/// vector's byte 0, the byte `v128.store` writes to the lowest address: lane
/// 0 of any shape is in the lowest bits.
///
/// ```
/// use weft_runtime::{Engine, Instance, Module, Store, V128};
///
/// let engine = Engine::default();
/// let module = Module::new(&engine, r#"(module
///     (func (export "add") (param v128 v128) (result v128)
///         (i32x4.add (local.get 0) (local.get 1))))"#)?;
/// let mut store = Store::new(&engine, ());
/// let instance = Instance::new(&mut store, &module, &[])?;
/// let add = instance.get_typed_func::<(V128, V128), V128>(&mut store, "add")?;
/// let a = V128::from_i32x4([1, 2, 3, 4]);
/// let b = V128::from_i32x4([10, 20, 30, -40]);
/// assert_eq!(add.call(&mut store, (a, b))?.to_i32x4(), [11, 22, 33, -36]);
/// # Ok::<(), weft_runtime::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct V128(u128);

impl V128 {
    /// The vector whose bits are `bits` (byte 0 in the low bits).
    pub const fn new(bits: u128) -> V128 {
        V128(bits)
    }

    /// The vector's bits (byte 0 in the low bits).
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The vector with these 16 bytes, in memory order.
    pub const fn from_bytes(bytes: [u8; 16]) -> V128 {
        V128(u128::from_le_bytes(bytes))
    }

    /// The vector's 16 bytes, in memory order.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// The vector with these `i32x4` lanes.
    pub fn from_i32x4(lanes: [i32; 4]) -> V128 {
        let mut bytes = [0; 16];
        for (chunk, lane) in bytes.chunks_exact_mut(4).zip(lanes) {
            chunk.copy_from_slice(&lane.to_le_bytes());
        }
        V128::from_bytes(bytes)
    }

    /// The vector's `i32x4` lanes.
    pub fn to_i32x4(self) -> [i32; 4] {
        let bytes = self.to_bytes();
        let mut lanes = [0; 4];
        for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(4)) {
            *lane = i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        lanes
    }
}

impl From<u128> for V128 {
    fn from(bits: u128) -> V128 {
        V128(bits)
    }
}

impl From<V128> for u128 {
    fn from(v: V128) -> u128 {
        v.0
    }
}

impl WasmTy for Option<ExternRef> {
    const TY: ValType = ValType::EXTERNREF;
    fn into_raw(self, store: &mut StoreOpaque) -> u128 {
        match self {
            None => 0,
            Some(e) => {
                let raw = e.raw();
                store.externrefs.entry(raw).or_insert(e);
                raw as u128
            }
        }
    }
    fn from_raw(raw: u128, store: &StoreOpaque) -> Self {
        store.externrefs.get(&(raw as usize)).cloned()
    }
}

impl WasmTy for Option<crate::Exn> {
    const TY: ValType = ValType::EXNREF;
    /// An exception of another store (or one already freed) becomes null
    /// here, as for [`Option<Func>`]; [`Val`] conversions report it as an
    /// error instead.
    fn into_raw(self, store: &mut StoreOpaque) -> u128 {
        self.and_then(|e| e.to_raw(store).ok()).unwrap_or(0)
    }
    fn from_raw(raw: u128, store: &StoreOpaque) -> Self {
        crate::Exn::from_raw(raw, store)
    }
}

impl WasmTy for Option<Func> {
    const TY: ValType = ValType::FUNCREF;
    /// A function of another store becomes null here; [`Val`] conversions
    /// report that as an error instead.
    fn into_raw(self, store: &mut StoreOpaque) -> u128 {
        self.to_raw_checked(store).unwrap_or(0)
    }
    fn from_raw(raw: u128, store: &StoreOpaque) -> Self {
        if raw == 0 {
            return None;
        }
        store.funcref_index.get(&(raw as usize)).map(|&index| Func {
            store_id: store.id,
            index,
        })
    }
}

trait FuncRefExt {
    fn to_raw_checked(&self, store: &mut StoreOpaque) -> Result<u128>;
}

impl FuncRefExt for Option<Func> {
    fn to_raw_checked(&self, store: &mut StoreOpaque) -> Result<u128> {
        match self {
            None => Ok(0),
            Some(f) => {
                store.check(f.store_id, "function reference")?;
                Ok(store.funcs[f.index].funcref as usize as u128)
            }
        }
    }
}

/// A list of values passed to or returned from a typed call: `()`, a single
/// [`WasmTy`], or a tuple of them.
pub trait WasmList: Sized + Send + 'static {
    /// Number of values.
    const LEN: usize;
    /// The value types.
    fn types() -> Vec<ValType>;
    #[doc(hidden)]
    fn store(self, out: &mut [u128], store: &mut StoreOpaque);
    #[doc(hidden)]
    fn load(src: &[u128], store: &StoreOpaque) -> Self;
}

impl<T: WasmTy> WasmList for T {
    const LEN: usize = 1;
    fn types() -> Vec<ValType> {
        vec![T::TY]
    }
    fn store(self, out: &mut [u128], store: &mut StoreOpaque) {
        out[0] = self.into_raw(store);
    }
    fn load(src: &[u128], store: &StoreOpaque) -> Self {
        T::from_raw(src[0], store)
    }
}

macro_rules! wasm_list_tuple {
    ($n:expr; $($t:ident $i:tt),*) => {
        impl<$($t: WasmTy),*> WasmList for ($($t,)*) {
            const LEN: usize = $n;
            fn types() -> Vec<ValType> {
                vec![$($t::TY),*]
            }
            #[allow(unused_variables, reason = "the empty tuple writes nothing")]
            fn store(self, out: &mut [u128], store: &mut StoreOpaque) {
                $(out[$i] = self.$i.into_raw(store);)*
            }
            #[allow(unused_variables, clippy::unused_unit, reason = "the empty tuple reads nothing")]
            fn load(src: &[u128], store: &StoreOpaque) -> Self {
                ($($t::from_raw(src[$i], store),)*)
            }
        }
    };
}
wasm_list_tuple!(0;);
wasm_list_tuple!(1; A 0);
wasm_list_tuple!(2; A 0, B 1);
wasm_list_tuple!(3; A 0, B 1, C 2);
wasm_list_tuple!(4; A 0, B 1, C 2, D 3);
wasm_list_tuple!(5; A 0, B 1, C 2, D 3, E 4);
wasm_list_tuple!(6; A 0, B 1, C 2, D 3, E 4, F 5);
wasm_list_tuple!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
wasm_list_tuple!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
