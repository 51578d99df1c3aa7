//! Values that cross the host/wasm boundary.

use weft_decoder::ValType;

/// A WebAssembly value.
#[derive(Debug, Clone, Copy, PartialEq)]
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
}

impl Val {
    /// The value's type.
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::V128(_) => ValType::V128,
        }
    }

    /// The zero value of a numeric type (`None` for reference types).
    pub fn default_for(ty: ValType) -> Option<Val> {
        Some(match ty {
            ValType::I32 => Val::I32(0),
            ValType::I64 => Val::I64(0),
            ValType::F32 => Val::F32(0),
            ValType::F64 => Val::F64(0),
            ValType::V128 => Val::V128(0),
            ValType::FuncRef | ValType::ExternRef => return None,
        })
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

    /// Encodes the value into a raw 16-byte slot (the contract's `ValRaw`).
    pub(crate) fn to_raw(self) -> u128 {
        match self {
            Val::I32(v) => u128::from(v as u32),
            Val::I64(v) => u128::from(v as u64),
            Val::F32(v) => u128::from(v),
            Val::F64(v) => u128::from(v),
            Val::V128(v) => v,
        }
    }

    /// Decodes a raw slot as a value of type `ty`.
    pub(crate) fn from_raw(raw: u128, ty: ValType) -> Val {
        match ty {
            ValType::I32 => Val::I32(raw as u32 as i32),
            ValType::I64 => Val::I64(raw as u64 as i64),
            ValType::F32 => Val::F32(raw as u32),
            ValType::F64 => Val::F64(raw as u64),
            ValType::V128 => Val::V128(raw),
            // Reference values are not representable yet; null is the only
            // value compiled code can produce for them in this version.
            ValType::FuncRef | ValType::ExternRef => Val::I64(raw as u64 as i64),
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

/// A Rust type that maps to one WebAssembly value type, for typed calls and
/// host functions.
pub trait WasmTy: Copy + Send + Sync + 'static {
    /// The corresponding value type.
    const TY: ValType;
    /// Into a raw slot.
    fn into_raw(self) -> u128;
    /// From a raw slot.
    fn from_raw(raw: u128) -> Self;
}

macro_rules! wasm_ty {
    ($t:ty, $vt:ident, |$s:ident| $into:expr, |$r:ident| $from:expr) => {
        impl WasmTy for $t {
            const TY: ValType = ValType::$vt;
            #[inline]
            fn into_raw($s) -> u128 {
                $into
            }
            #[inline]
            fn from_raw($r: u128) -> Self {
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

/// A list of values passed to or returned from a typed call: `()`, a single
/// [`WasmTy`], or a tuple of them.
pub trait WasmList: Sized + Send + 'static {
    /// Number of values.
    const LEN: usize;
    /// The value types.
    fn types() -> Vec<ValType>;
    /// Writes the values to `out[..LEN]`.
    fn store(self, out: &mut [u128]);
    /// Reads the values from `src[..LEN]`.
    fn load(src: &[u128]) -> Self;
}

impl<T: WasmTy> WasmList for T {
    const LEN: usize = 1;
    fn types() -> Vec<ValType> {
        vec![T::TY]
    }
    fn store(self, out: &mut [u128]) {
        out[0] = self.into_raw();
    }
    fn load(src: &[u128]) -> Self {
        T::from_raw(src[0])
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
            fn store(self, out: &mut [u128]) {
                $(out[$i] = self.$i.into_raw();)*
            }
            #[allow(unused_variables, clippy::unused_unit, reason = "the empty tuple reads nothing")]
            fn load(src: &[u128]) -> Self {
                ($($t::from_raw(src[$i]),)*)
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
