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
//! that never became a value is freed at once. One that became a value
//! (`catch_ref`, `catch_all_ref`, an [`Exn`] given to the host) may be
//! copied anywhere compiled code likes, so it is freed by a collection:
//! when the store holds more exceptions (or field bytes) than after the
//! last collection allows, the store marks what is still reachable — from
//! the [`Exn`]s the host holds, globals and tables of `exnref` type, the
//! pending exception, the fields of reachable exceptions, and, when wasm is
//! running, every word of the stack between the store's outermost entry
//! into wasm and the collection (and the callee-saved registers), taken
//! conservatively — and frees the rest. Handles carry a marker byte and a
//! generation, so a stack word is rarely mistaken for one (a mistake only
//! keeps an exception longer), and a stale handle is never taken for a
//! newer exception in the same slot. At most [`MAX_LIVE_EXCEPTIONS`]
//! exceptions and [`MAX_LIVE_EXCEPTION_BYTES`] bytes of fields may be live
//! in a store at once; a throw past either traps.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::error::{Error, Result};
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::types::{FuncType, ValType};
use crate::values::Val;

/// Exceptions a store holds at most at once (thrown and not yet freed).
pub const MAX_LIVE_EXCEPTIONS: usize = 1 << 20;

/// Bytes of exception fields (16 per field) a store holds at most at once.
pub const MAX_LIVE_EXCEPTION_BYTES: usize = 64 << 20;

/// The top byte of every exception handle (see the module docs).
const HANDLE_MARK: u64 = 0xE8 << 56;
/// Handles number slots in their low 24 bits (plus one) and carry the
/// slot's generation in the next 24.
const INDEX_BITS: u32 = 24;
const _: () = assert!(MAX_LIVE_EXCEPTIONS < 1 << INDEX_BITS);

fn handle_of(index: usize, generation: u32) -> u64 {
    HANDLE_MARK | u64::from(generation & 0xff_ffff) << INDEX_BITS | (index as u64 + 1)
}

/// The slot index and generation a handle names, if it is one.
fn decode(handle: u64) -> Option<(usize, u32)> {
    if handle & 0xff << 56 != HANDLE_MARK {
        return None;
    }
    let index = (handle & ((1 << INDEX_BITS) - 1)).checked_sub(1)?;
    Some((index as usize, (handle >> INDEX_BITS) as u32 & 0xff_ffff))
}

/// Collections start once a store holds this many exceptions.
const FIRST_COLLECTION: usize = 256;

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
/// let thrown = Error::Exception(exn.clone());
/// assert_eq!(thrown.as_exception(), Some(&exn));
/// # Ok::<(), weft_runtime::Error>(())
/// ```
/// An `Exn` keeps its exception alive: the store does not free it while
/// an `Exn` (or a clone of it) exists.
#[derive(Clone)]
pub struct Exn {
    pub(crate) store_id: u64,
    pub(crate) handle: u64,
    /// The store's collector sees this exception as held by the host while
    /// this is alive.
    _root: Arc<()>,
}

impl fmt::Debug for Exn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exn")
            .field("store_id", &self.store_id)
            .field("handle", &format_args!("{:#x}", self.handle))
            .finish()
    }
}

impl PartialEq for Exn {
    fn eq(&self, other: &Exn) -> bool {
        (self.store_id, self.handle) == (other.store_id, other.handle)
    }
}

impl Eq for Exn {}

impl std::hash::Hash for Exn {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self.store_id, self.handle).hash(h);
    }
}

impl Exn {
    /// Makes an exception of `tag` carrying `fields`.
    ///
    /// # Errors
    /// If the tag or a field belongs to another store, the fields do not
    /// match the tag's type, or the store holds [`MAX_LIVE_EXCEPTIONS`]
    /// (or [`MAX_LIVE_EXCEPTION_BYTES`]) already.
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
        let handle = opaque.alloc_exception(tag.index, raw.into_boxed_slice())?;
        Ok(opaque.exceptions.root(opaque.id, handle))
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

    /// The raw `exnref` for compiled code: a wasm value from now on.
    pub(crate) fn to_raw(&self, store: &StoreOpaque) -> Result<u128> {
        store.exception(self)?;
        store.exceptions.escape(self.handle);
        Ok(u128::from(self.handle))
    }

    /// An `exnref` from compiled code (0 is null): a wasm value, and the
    /// host holds it now too.
    pub(crate) fn from_raw(raw: u128, store: &StoreOpaque) -> Option<Exn> {
        let handle = raw as u64;
        if handle == 0 {
            return None;
        }
        store.exceptions.escape(handle);
        Some(store.exceptions.root(store.id, handle))
    }
}

pub(crate) fn too_many() -> Error {
    Error::Resource(format!(
        "too many live exceptions in this store (at most {MAX_LIVE_EXCEPTIONS} \
         exceptions and {MAX_LIVE_EXCEPTION_BYTES} bytes of fields)"
    ))
}

/// A thrown exception.
pub(crate) struct ExnObject {
    /// The store index of its tag.
    pub(crate) tag: usize,
    /// Its fields, as raw slots.
    pub(crate) fields: Box<[u128]>,
    /// Whether it became a wasm value (see the module docs): then only a
    /// collection frees it.
    escaped: Cell<bool>,
    /// Whether the host was given an [`Exn`] for it.
    host: Cell<bool>,
}

/// One place for an exception; its generation counts the exceptions it
/// has held.
#[derive(Default)]
struct Slot {
    generation: u32,
    obj: Option<ExnObject>,
}

/// A store's exceptions, by handle.
#[derive(Default)]
pub(crate) struct ExnHeap {
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Bytes of fields held.
    bytes: usize,
    /// The exceptions the host holds ([`Exn`]s): handle and liveness.
    roots: RefCell<Vec<(u64, Weak<()>)>>,
    /// Drop the dead entries of `roots` when it reaches this length (twice
    /// the live ones after the last pruning), so a host that makes many
    /// short-lived `Exn`s (reading an exnref global in a loop, say) does
    /// not grow it without bound.
    prune_roots_at: Cell<usize>,
    /// Collect when more exceptions than this are held...
    next_count: usize,
    /// ... or more bytes of fields.
    next_bytes: usize,
}

impl ExnHeap {
    /// Stores a new exception; `None` past [`MAX_LIVE_EXCEPTIONS`] or
    /// [`MAX_LIVE_EXCEPTION_BYTES`].
    pub(crate) fn alloc(&mut self, tag: usize, fields: Box<[u128]>) -> Option<u64> {
        let size = fields.len() * 16;
        if self.bytes + size > MAX_LIVE_EXCEPTION_BYTES {
            return None;
        }
        let obj = ExnObject {
            tag,
            fields,
            escaped: Cell::new(false),
            host: Cell::new(false),
        };
        let i = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < MAX_LIVE_EXCEPTIONS => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
            None => return None,
        };
        self.slots[i].obj = Some(obj);
        self.bytes += size;
        Some(handle_of(i, self.slots[i].generation))
    }

    pub(crate) fn get(&self, handle: u64) -> Option<&ExnObject> {
        let (i, generation) = decode(handle)?;
        let slot = self.slots.get(i)?;
        if slot.generation & 0xff_ffff != generation {
            return None;
        }
        slot.obj.as_ref()
    }

    /// Marks the exception as a value: only a collection frees it now.
    pub(crate) fn escape(&self, handle: u64) {
        if let Some(obj) = self.get(handle) {
            obj.escaped.set(true);
        }
    }

    /// A handle the host holds: the exception stays while the `Exn` lives.
    pub(crate) fn root(&self, store_id: u64, handle: u64) -> Exn {
        if let Some(obj) = self.get(handle) {
            obj.host.set(true);
        }
        let root = Arc::new(());
        let mut roots = self.roots.borrow_mut();
        if roots.len() >= self.prune_roots_at.get().max(FIRST_COLLECTION) {
            roots.retain(|(_, w)| w.strong_count() > 0);
            self.prune_roots_at.set(2 * roots.len());
        }
        roots.push((handle, Arc::downgrade(&root)));
        Exn {
            store_id,
            handle,
            _root: root,
        }
    }

    fn free_slot(&mut self, i: usize) {
        if let Some(obj) = self.slots[i].obj.take() {
            self.bytes -= obj.fields.len() * 16;
            self.slots[i].generation = self.slots[i].generation.wrapping_add(1);
            self.free.push(i);
        }
    }

    /// A handler took the exception's fields only: frees it unless it is
    /// also a value somewhere (a wasm value, or an [`Exn`] the host still
    /// holds).
    pub(crate) fn release(&mut self, handle: u64) {
        let Some(obj) = self.get(handle) else { return };
        if obj.escaped.get() {
            return;
        }
        if obj.host.get() {
            let mut roots = self.roots.borrow_mut();
            roots.retain(|(_, w)| w.strong_count() > 0);
            if roots.iter().any(|&(h, _)| h == handle) {
                return;
            }
        }
        if let Some((i, _)) = decode(handle) {
            self.free_slot(i);
        }
    }

    /// Exceptions held now.
    pub(crate) fn held(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether holding this much calls for a collection first.
    pub(crate) fn wants_collection(&self) -> bool {
        self.held() >= self.next_count.max(FIRST_COLLECTION)
            || self.bytes >= self.next_bytes.max(MAX_LIVE_EXCEPTION_BYTES / 16)
    }

    /// Frees every exception not reachable from `roots` (handles, some of
    /// them perhaps not handles at all: those are ignored) through the
    /// fields of reachable ones (`exn_fields(tag)`: which fields of a tag's
    /// exceptions are `exnref`s). Returns how many were freed.
    fn collect(
        &mut self,
        roots: impl IntoIterator<Item = u64>,
        exn_fields: impl Fn(usize) -> Vec<usize>,
    ) -> usize {
        let mut marked = vec![false; self.slots.len()];
        let mut work: Vec<u64> = roots.into_iter().collect();
        {
            let mut host = self.roots.borrow_mut();
            host.retain(|(_, w)| w.strong_count() > 0);
            work.extend(host.iter().map(|&(h, _)| h));
        }
        let mut fields_of: std::collections::HashMap<usize, Vec<usize>> = Default::default();
        while let Some(h) = work.pop() {
            let Some(obj) = self.get(h) else { continue };
            let (i, _) = decode(h).expect("a handle get() accepted");
            if std::mem::replace(&mut marked[i], true) {
                continue;
            }
            let which = fields_of
                .entry(obj.tag)
                .or_insert_with(|| exn_fields(obj.tag));
            work.extend(which.iter().map(|&f| obj.fields[f] as u64));
        }
        let mut freed = 0;
        for (i, &keep) in marked.iter().enumerate() {
            if !keep && self.slots[i].obj.is_some() {
                self.free_slot(i);
                freed += 1;
            }
        }
        self.next_count = 2 * self.held();
        self.next_bytes = 2 * self.bytes;
        freed
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
    #[inline]
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

    /// An exception that left wasm for the host: handed over (the host
    /// holds it while the error lives).
    pub(crate) fn uncaught(&mut self, handle: u64) -> Error {
        Error::Exception(self.exceptions.root(self.id, handle))
    }

    /// Stores a new exception, collecting first when the store holds many
    /// (see the module docs).
    pub(crate) fn alloc_exception(&mut self, tag: usize, fields: Box<[u128]>) -> Result<u64> {
        if self.exceptions.wants_collection() {
            self.collect_exceptions();
        }
        self.exceptions.alloc(tag, fields).ok_or_else(too_many)
    }

    /// Frees the exceptions nothing can reach any more. While wasm of this
    /// store runs, its stack is scanned conservatively for handles.
    pub(crate) fn collect_exceptions(&mut self) -> usize {
        use weft_decoder::{HeapType as H, ValType as W};
        let is_exn = |t: &W| matches!(t, W::Ref(r) if r.heap == H::Exn);
        let mut roots: Vec<u64> = Vec::new();
        for g in &self.globals {
            if is_exn(&g.ty.ty) {
                roots.push(g.get() as u64);
            }
        }
        for t in &self.tables {
            if is_exn(&t.ty.element) {
                roots.extend(t.elements().iter().map(|&e| e as u64));
            }
        }
        roots.push(self.vmstore.exception.load(Ordering::Relaxed));
        if self.depth > 0 {
            // Wasm of this store is running: its frames may hold handles in
            // any stack slot or callee-saved register.
            let scanned = crate::stack::scan_since(self.entry_sp, |word| {
                if decode(word as u64).is_some() {
                    roots.push(word as u64);
                }
            });
            if !scanned {
                return 0;
            }
        }
        let tags = &self.tags;
        let engine = &self.engine;
        self.exceptions.collect(roots, |tag| {
            tags[tag]
                .ty
                .params()
                .iter()
                .enumerate()
                .filter(|(_, t)| is_exn(&t.to_wasm(engine)))
                .map(|(i, _)| i)
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host making many short-lived `Exn`s (reading an exnref global in
    /// a loop, say): the heap's list of host handles stays bounded, and
    /// one still alive is kept through every pruning.
    #[test]
    fn short_lived_host_handles_do_not_pile_up() {
        let mut heap = ExnHeap::default();
        let h = heap.alloc(0, Box::new([7])).unwrap();
        let kept = heap.root(1, h);
        for _ in 0..100_000 {
            drop(heap.root(1, h));
        }
        let roots = heap.roots.borrow();
        assert!(
            roots.len() < 4 * FIRST_COLLECTION,
            "{} handles",
            roots.len()
        );
        assert!(
            roots
                .iter()
                .any(|(r, w)| *r == kept.handle && w.strong_count() > 0)
        );
    }
}
