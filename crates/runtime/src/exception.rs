//! Exceptions (the exception-handling proposal): tags, exception objects,
//! and the store's pending exception.
//!
//! A thrown exception lives in its store's exception heap and is named by a
//! handle (its slot index plus one, so 0 is the null `exnref`). While one is
//! in flight its handle is the store's *pending exception*
//! (`VMStoreContext::exception`, see the jit crate's `exceptions.rs`), and
//! compiled code returns frame by frame until a `try_table` takes it. An
//! exception that no handler takes reaches the embedder as
//! [`Error::Exception`]; a host function throws one by returning that error.
//!
//! **Lifetime.** An exception caught by `catch`/`catch_all` (fields only)
//! is freed at once. One that became a value (`catch_ref`,
//! `catch_all_ref`, an [`Exn`] given to the host) may be copied anywhere
//! by compiled code, so, like an `externref`, it is kept until the store is
//! dropped. At most [`MAX_LIVE_EXCEPTIONS`] exceptions exist in a store at
//! once; a throw past that traps, so a guest cannot grow the host's memory
//! without bound by keeping exceptions.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::types::{FuncType, ValType};
use crate::values::Val;

/// Exceptions a store holds at most at once (thrown and not yet freed).
pub const MAX_LIVE_EXCEPTIONS: usize = 1 << 20;

/// The type of a tag: the types of the values its exceptions carry.
///
/// ```
/// use weft_runtime::{TagType, ValType};
/// let t = TagType::new([ValType::I32, ValType::F64]);
/// assert_eq!(t.params(), &[ValType::I32, ValType::F64]);
/// assert_eq!(t.to_string(), "(tag (param i32 f64))");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagType {
    ty: FuncType,
}

impl TagType {
    /// A tag type whose exceptions carry values of types `params`.
    pub fn new(params: impl IntoIterator<Item = ValType>) -> TagType {
        TagType {
            ty: FuncType::new(params, []),
        }
    }

    /// The types of the values an exception of this tag carries.
    pub fn params(&self) -> &[ValType] {
        self.ty.params()
    }

    pub(crate) fn from_func_type(ty: FuncType) -> TagType {
        TagType { ty }
    }

    pub(crate) fn func_type(&self) -> &FuncType {
        &self.ty
    }
}

impl fmt::Display for TagType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(tag")?;
        if !self.params().is_empty() {
            f.write_str(" (param")?;
            for t in self.params() {
                write!(f, " {t}")?;
            }
            f.write_str(")")?;
        }
        f.write_str(")")
    }
}

/// What a store keeps for a tag. Its address is the tag's identity, which
/// compiled code compares (the vmctx's `tags[i]`).
pub(crate) struct TagEntity {
    pub(crate) ty: TagType,
    /// The engine's canonical id of the tag's function type.
    pub(crate) type_id: u32,
}

/// An exception tag that belongs to a store: defined by an instance, or
/// made by the host with [`Tag::new`] (to import into modules or to throw
/// exceptions from host functions).
///
/// Two tags are the same tag only if they come from the same definition,
/// whatever their types: an exception is caught by a `catch` of its own tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    pub(crate) store_id: u64,
    pub(crate) index: usize,
}

impl Tag {
    /// Creates a new tag of type `ty`, distinct from every other tag.
    ///
    /// ```
    /// use weft_runtime::{Engine, Store, Tag, TagType, ValType};
    /// let mut store = Store::new(&Engine::default(), ());
    /// let tag = Tag::new(&mut store, &TagType::new([ValType::I32]))?;
    /// assert_eq!(tag.ty(&store)?.params(), &[ValType::I32]);
    /// # Ok::<(), weft_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// If the engine has exceptions turned off
    /// ([`Config::wasm_exceptions`](crate::Config::wasm_exceptions)).
    pub fn new(mut store: impl AsContextMut, ty: &TagType) -> Result<Tag> {
        let cx = store.as_context_mut();
        let opaque = &mut cx.0.opaque;
        opaque.check_exceptions()?;
        let wasm = ty.func_type().to_wasm(&opaque.engine);
        let type_id = opaque.engine.type_id(&wasm);
        Ok(opaque.push_tag(ty.clone(), type_id))
    }

    /// The tag's type.
    pub fn ty(&self, store: impl AsContext) -> Result<TagType> {
        let cx = store.as_context();
        cx.0.opaque.check(self.store_id, "tag")?;
        Ok(cx.0.opaque.tags[self.index].ty.clone())
    }
}

/// An exception: a tag and the values it carries. It belongs to a store.
///
/// A host function throws one by returning [`Error::Exception`]; a call
/// whose exception no handler caught returns it the same way.
///
/// ```
/// use weft_runtime::{Engine, Error, Exn, Store, Tag, TagType, Val, ValType};
/// let mut store = Store::new(&Engine::default(), ());
/// let tag = Tag::new(&mut store, &TagType::new([ValType::I32]))?;
/// let exn = Exn::new(&mut store, &tag, &[Val::I32(42)])?;
/// assert_eq!(exn.tag(&store)?, tag);
/// assert_eq!(exn.fields(&store)?, [Val::I32(42)]);
/// let thrown = Error::Exception(exn);
/// assert_eq!(thrown.as_exception(), Some(&exn));
/// # Ok::<(), weft_runtime::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Exn {
    pub(crate) store_id: u64,
    pub(crate) handle: u64,
}

impl Exn {
    /// Makes an exception of `tag` carrying `fields`.
    ///
    /// # Errors
    /// If the tag or a field belongs to another store, the fields do not
    /// match the tag's type, or the store holds
    /// [`MAX_LIVE_EXCEPTIONS`] already.
    pub fn new(mut store: impl AsContextMut, tag: &Tag, fields: &[Val]) -> Result<Exn> {
        let cx = store.as_context_mut();
        let opaque = &mut cx.0.opaque;
        opaque.check(tag.store_id, "tag")?;
        let ty = opaque.tags[tag.index].ty.clone();
        if fields.len() != ty.params().len() {
            return Err(Error::InvalidArgument(format!(
                "{ty} carries {} values, got {}",
                ty.params().len(),
                fields.len()
            )));
        }
        let mut raw = Vec::with_capacity(fields.len());
        for (i, (v, t)) in fields.iter().zip(ty.params()).enumerate() {
            let wasm = t.to_wasm(&opaque.engine);
            v.check_wasm(opaque, wasm, &format_args!("field {i}"))?;
            raw.push(v.to_raw(opaque)?);
        }
        let handle = opaque
            .exceptions
            .alloc(tag.index, raw.into_boxed_slice())
            .ok_or_else(too_many)?;
        opaque.exceptions.escape(handle);
        Ok(Exn {
            store_id: opaque.id,
            handle,
        })
    }

    /// The exception's tag.
    pub fn tag(&self, store: impl AsContext) -> Result<Tag> {
        let cx = store.as_context();
        let opaque = &cx.0.opaque;
        let obj = opaque.exception(self)?;
        Ok(Tag {
            store_id: opaque.id,
            index: obj.tag,
        })
    }

    /// The values the exception carries.
    pub fn fields(&self, store: impl AsContext) -> Result<Vec<Val>> {
        let cx = store.as_context();
        let opaque = &cx.0.opaque;
        let obj = opaque.exception(self)?;
        let ty = &opaque.tags[obj.tag].ty;
        Ok(obj
            .fields
            .iter()
            .zip(ty.params())
            .map(|(&raw, t)| Val::from_raw(raw, t, opaque))
            .collect())
    }

    /// The raw `exnref` for compiled code.
    pub(crate) fn to_raw(self, store: &StoreOpaque) -> Result<u128> {
        store.exception(&self)?;
        Ok(u128::from(self.handle))
    }

    /// An `exnref` from compiled code (0 is null). The exception becomes
    /// the host's too, so it is kept.
    pub(crate) fn from_raw(raw: u128, store: &StoreOpaque) -> Option<Exn> {
        let handle = raw as u64;
        if handle == 0 {
            return None;
        }
        store.exceptions.escape(handle);
        Some(Exn {
            store_id: store.id,
            handle,
        })
    }
}

pub(crate) fn too_many() -> Error {
    Error::Resource(format!(
        "too many live exceptions in this store (at most {MAX_LIVE_EXCEPTIONS})"
    ))
}

/// A thrown exception.
pub(crate) struct ExnObject {
    /// The store index of its tag.
    pub(crate) tag: usize,
    /// Its fields, as raw slots.
    pub(crate) fields: Box<[u128]>,
    /// Whether it became a value (see the module docs): then it is kept.
    escaped: Cell<bool>,
}

/// A store's exceptions, by handle.
#[derive(Default)]
pub(crate) struct ExnHeap {
    slots: Vec<Option<ExnObject>>,
    free: Vec<usize>,
}

impl ExnHeap {
    /// Stores a new exception; `None` when the store holds too many.
    pub(crate) fn alloc(&mut self, tag: usize, fields: Box<[u128]>) -> Option<u64> {
        let obj = ExnObject {
            tag,
            fields,
            escaped: Cell::new(false),
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(obj);
                i
            }
            None if self.slots.len() < MAX_LIVE_EXCEPTIONS => {
                self.slots.push(Some(obj));
                self.slots.len() - 1
            }
            None => return None,
        };
        Some(i as u64 + 1)
    }

    pub(crate) fn get(&self, handle: u64) -> Option<&ExnObject> {
        let i = usize::try_from(handle.checked_sub(1)?).ok()?;
        self.slots.get(i)?.as_ref()
    }

    /// Marks the exception as a value that must be kept.
    pub(crate) fn escape(&self, handle: u64) {
        if let Some(obj) = self.get(handle) {
            obj.escaped.set(true);
        }
    }

    /// A handler took the exception's fields only: frees it unless it is
    /// also a value somewhere.
    pub(crate) fn release(&mut self, handle: u64) {
        if let Some(obj) = self.get(handle)
            && !obj.escaped.get()
        {
            let i = (handle - 1) as usize;
            self.slots[i] = None;
            self.free.push(i);
        }
    }

    /// Exceptions held now.
    pub(crate) fn held(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

impl StoreOpaque {
    pub(crate) fn check_exceptions(&self) -> Result<()> {
        if self.engine.inner.config.tunables.exceptions {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "exceptions are not enabled: use Config::wasm_exceptions(true)".into(),
            ))
        }
    }

    pub(crate) fn push_tag(&mut self, ty: TagType, type_id: u32) -> Tag {
        self.tags.push(Box::new(TagEntity { ty, type_id }));
        Tag {
            store_id: self.id,
            index: self.tags.len() - 1,
        }
    }

    /// The identity of tag `index` that compiled code compares.
    pub(crate) fn tag_ptr(&self, index: usize) -> *const u8 {
        &*self.tags[index] as *const TagEntity as *const u8
    }

    fn exception(&self, e: &Exn) -> Result<&ExnObject> {
        self.check(e.store_id, "exception")?;
        self.exceptions
            .get(e.handle)
            .ok_or_else(|| Error::InvalidArgument("no such exception in this store".into()))
    }

    /// Makes `handle` the pending exception (it is being thrown).
    pub(crate) fn set_pending_exception(&mut self, handle: u64) {
        let tag = self.exceptions.get(handle).map(|o| o.tag);
        let Some(tag) = tag else { return };
        let ptr = self.tag_ptr(tag) as *mut u8;
        self.vmstore.exception_tag.store(ptr, Ordering::Relaxed);
        self.vmstore.exception.store(handle, Ordering::Relaxed);
    }

    /// Takes the pending exception, if one is being thrown.
    pub(crate) fn take_pending_exception(&mut self) -> Option<u64> {
        // Only this store's thread writes it: a plain load decides (the
        // common case, nothing pending, costs no read-modify-write).
        match self.vmstore.exception.load(Ordering::Relaxed) {
            0 => None,
            h => {
                self.vmstore.exception.store(0, Ordering::Relaxed);
                Some(h)
            }
        }
    }

    /// An exception that left wasm for the host: kept, and handed over.
    pub(crate) fn uncaught(&mut self, handle: u64) -> Error {
        self.exceptions.escape(handle);
        Error::Exception(Exn {
            store_id: self.id,
            handle,
        })
    }
}
