//! Async calls: wasm on a fiber (a separate, guard-paged stack, switched
//! with `corosensei`) that suspends when a host future is pending.
//!
//! An async entry point (`Func::call_async`, `TypedFunc::call_async`,
//! `Instance::new_async`, ...) runs the ordinary synchronous call on a fiber
//! and returns a [`FiberFuture`]. Polling it resumes the fiber; an async
//! host function ([`block_on`]) polls its own future with the poller's
//! `Context` and, while that is pending, suspends the fiber, so the outer
//! poll returns `Pending`. Nothing about traps changes: a trap `longjmp`s
//! within the fiber to its own `call_wasm`, exactly as on a thread's stack.
//!
//! **Moving between threads.** The future is `Send`: a fiber may suspend on
//! one thread and resume on another. The only thread-specific state a
//! running call has is in thread-locals (the innermost `call_wasm`'s trap
//! slot, the wasm stack limit and depth, the current fiber); every resume
//! installs the fiber's values and every suspension puts the thread's back
//! (`Tls::swap`), so a suspended fiber holds nothing of any thread.
//!
//! **Cancellation.** Dropping the future while the fiber is suspended
//! resumes it once more with [`Resume::Cancel`]: the suspended host function
//! (or epoch yield) returns an error at once, which unwinds wasm to its
//! entry the ordinary way (a trap: only JIT frames are skipped), and the
//! fiber finishes. No Rust frame is skipped, and the store is usable
//! afterwards (its call simply failed).
//!
//! **Stacks** come from the pooling allocator when the engine pools, else
//! are allocated once and cached in the store; either way a [`FiberStack`]
//! owns one and gives it back when dropped (with the store, on every path).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use corosensei::stack::{DefaultStack, Stack};
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::{Error, Result};
use crate::stack::StackState;
use crate::store::StoreOpaque;

/// What a suspended fiber is resumed with.
pub(crate) enum Resume {
    /// Poll again.
    Go,
    /// The future was dropped: give up at once.
    Cancel,
}

/// A fiber stack, given back to its pool (or freed) when dropped.
pub(crate) struct FiberStack {
    stack: Option<DefaultStack>,
    pool: Option<Arc<crate::pooling::Pool>>,
}

impl FiberStack {
    pub(crate) fn new(size: usize, pool: Option<Arc<crate::pooling::Pool>>) -> Result<FiberStack> {
        let stack = match &pool {
            Some(p) => p.take_stack(size)?,
            None => DefaultStack::new(size).map_err(|e| {
                Error::Resource(format!("cannot allocate a {size}-byte fiber stack: {e}"))
            })?,
        };
        Ok(FiberStack {
            stack: Some(stack),
            pool,
        })
    }
}

impl Drop for FiberStack {
    fn drop(&mut self) {
        if let (Some(stack), Some(pool)) = (self.stack.take(), &self.pool) {
            pool.return_stack(stack);
        }
    }
}

/// The thread-locals a running call uses (see the module docs).
#[derive(Clone, Copy)]
struct Tls {
    call_state: usize,
    stack: StackState,
    fiber: *const FiberState,
}

impl Tls {
    /// Installs `self` on this thread, returning what it replaces.
    fn swap(self) -> Tls {
        Tls {
            call_state: crate::traphandlers::swap_call_state(self.call_state),
            stack: self.stack.swap_in(),
            fiber: CURRENT_FIBER.with(|c| c.replace(self.fiber)),
        }
    }
}

thread_local! {
    /// The fiber running on this thread, if any.
    static CURRENT_FIBER: std::cell::Cell<*const FiberState> =
        const { std::cell::Cell::new(std::ptr::null()) };
}

/// What code on the fiber needs of the future polling it. Boxed: its
/// address is stable while the future moves.
struct FiberState {
    /// The fiber's thread-locals while it is suspended.
    tls: std::cell::Cell<Tls>,
    /// The `Context` of the poll that resumed the fiber (valid while the
    /// fiber runs).
    cx: std::cell::Cell<*mut Context<'static>>,
    /// The fiber's yielder (set when it starts).
    yielder: std::cell::Cell<*const Yielder<Resume, ()>>,
}

type Fiber<R> = Coroutine<Resume, (), Result<R>, &'static mut DefaultStack>;

/// A call running on a fiber; see the module docs.
pub(crate) struct FiberFuture<'a, R> {
    fiber: Option<Fiber<R>>,
    state: Box<FiberState>,
    /// The stack, lent to `fiber` (which holds a `&'static mut` into it:
    /// the box outlives the fiber, which is always finished or dropped
    /// first).
    stack: Option<Box<FiberStack>>,
    /// Where the stack goes back when the call is over.
    store: *mut StoreOpaque,
    _borrow: PhantomData<&'a mut StoreOpaque>,
}

// SAFETY: the fiber's stack holds only what the closure given to `new`
// captured (required `Send`) and frames of wasm, host functions and async
// host futures (required `Send`) that run on it; thread-specific state is
// swapped out at every suspension (see the module docs), so resuming on
// another thread is sound.
unsafe impl<R: Send> Send for FiberFuture<'_, R> {}

impl<'a, R> FiberFuture<'a, R> {
    /// Runs `f` on a fiber with the store's cached stack (or a new one).
    /// `store` must be the store `f` works on; the future borrows it.
    pub(crate) fn new(
        store: &'a mut StoreOpaque,
        f: impl FnOnce() -> Result<R> + Send + 'a,
    ) -> Result<FiberFuture<'a, R>>
    where
        R: Send,
    {
        Self::new_inner(store, f)
    }

    fn new_inner(
        store: &'a mut StoreOpaque,
        f: impl FnOnce() -> Result<R> + 'a,
    ) -> Result<FiberFuture<'a, R>> {
        let engine = &store.engine;
        if !engine.inner.config.async_support {
            return Err(Error::InvalidArgument(
                "async calls need `Config::async_support(true)`".into(),
            ));
        }
        let mut stack = match store.fiber_stack.take() {
            Some(s) => s,
            None => Box::new(FiberStack::new(
                engine.inner.config.async_stack_size,
                engine.inner.pool.clone(),
            )?),
        };
        let raw: &mut DefaultStack = stack.stack.as_mut().expect("a stack until dropped");
        let low = raw.limit().get();
        // SAFETY: the box's contents do not move and outlive the fiber (see
        // the `stack` field); nothing else touches the stack meanwhile.
        let raw: &'static mut DefaultStack = unsafe { &mut *(raw as *mut DefaultStack) };
        let state = Box::new(FiberState {
            tls: std::cell::Cell::new(Tls {
                call_state: 0,
                stack: StackState::for_stack(low),
                fiber: std::ptr::null(),
            }),
            cx: std::cell::Cell::new(std::ptr::null_mut()),
            yielder: std::cell::Cell::new(std::ptr::null()),
        });
        let state_ptr: *const FiberState = &*state;
        let mut tls = state.tls.get();
        tls.fiber = state_ptr;
        state.tls.set(tls);
        // SAFETY: `f` borrows data for 'a, and the fiber never outlives the
        // future, whose drop finishes it (`Drop` below); `state_ptr` points
        // into a box the future owns for as long as the fiber exists.
        let fiber = unsafe {
            Coroutine::with_stack_unchecked(raw, move |yielder: &Yielder<Resume, ()>, _: Resume| {
                (*state_ptr).yielder.set(yielder);
                f()
            })
        };
        let store_ptr: *mut StoreOpaque = store;
        Ok(FiberFuture {
            fiber: Some(fiber),
            state,
            stack: Some(stack),
            store: store_ptr,
            _borrow: PhantomData,
        })
    }

    /// Resumes the fiber on this thread with its thread-locals installed.
    fn resume(&mut self, input: Resume) -> CoroutineResult<(), Result<R>> {
        crate::traphandlers::prepare_thread();
        /// Puts the thread's own thread-locals back, also if the fiber
        /// panicked.
        struct Restore<'s> {
            state: &'s FiberState,
            outer: Tls,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.state.tls.set(self.outer.swap());
            }
        }
        let outer = self.state.tls.get().swap();
        let _restore = Restore {
            state: &self.state,
            outer,
        };
        self.fiber
            .as_mut()
            .expect("resumed only while it exists")
            .resume(input)
    }

    /// The call is over: the fiber goes, its stack back to the store.
    fn finish(&mut self) {
        self.fiber = None;
        if let Some(stack) = self.stack.take() {
            // SAFETY: the future borrows the store exclusively for 'a and the
            // fiber (the only other user of the store) is gone.
            unsafe { (*self.store).fiber_stack = Some(stack) };
        }
    }
}

impl<R: Send> Future for FiberFuture<'_, R> {
    type Output = Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R>> {
        // SAFETY: nothing in the future is address-sensitive except through
        // boxes (`state`, `stack`), so it may be moved out of the pin.
        let this = unsafe { self.get_unchecked_mut() };
        if this.fiber.is_none() {
            return Poll::Ready(Err(Error::InvalidArgument(
                "an async call's future was polled after it completed".into(),
            )));
        }
        this.state.cx.set(std::ptr::from_mut(cx).cast());
        let r = this.resume(Resume::Go);
        this.state.cx.set(std::ptr::null_mut());
        match r {
            CoroutineResult::Yield(()) => Poll::Pending,
            CoroutineResult::Return(r) => {
                this.finish();
                Poll::Ready(r)
            }
        }
    }
}

impl<R> Drop for FiberFuture<'_, R> {
    fn drop(&mut self) {
        let suspended = self
            .fiber
            .as_ref()
            .is_some_and(|f| f.started() && !f.done());
        if suspended {
            // Cancelled while suspended: every suspension point gives up on
            // `Cancel`, so the fiber runs to its end (see the module docs).
            let mut cx = Context::from_waker(std::task::Waker::noop());
            self.state.cx.set(std::ptr::from_mut(&mut cx).cast());
            let mut rounds = 0u32;
            while self.fiber.as_ref().is_some_and(|f| !f.done()) {
                drop(self.resume(Resume::Cancel));
                rounds += 1;
                if rounds == 1_000 {
                    // Something on the fiber keeps suspending despite the
                    // cancellation: leak the fiber and its stack rather than
                    // skip its frames.
                    std::mem::forget(self.fiber.take());
                    std::mem::forget(self.stack.take());
                    return;
                }
            }
            self.state.cx.set(std::ptr::null_mut());
        }
        self.finish();
    }
}

/// Runs `f` on `store` on a fiber: the one way every async entry point
/// (`call_async`, `new_async`, `instantiate_async`) starts its call.
pub(crate) fn run_on_store<'a, T: Send + 'static, R: Send + 'a>(
    store: &'a mut crate::Store<T>,
    f: impl FnOnce(crate::store::StoreContextMut<'_, T>) -> Result<R> + Send + 'a,
) -> Result<FiberFuture<'a, R>> {
    let inner: *mut crate::store::StoreInner<T> = store.inner_mut();
    let inner_addr = inner as usize;
    // SAFETY: `inner` comes from the exclusive borrow `store`, which the
    // future keeps for 'a; while the fiber runs `f` nothing else uses the
    // store (the future's poll only resumes the fiber), so the two views
    // of it are never used at the same time.
    let opaque = unsafe { &mut (*inner).opaque };
    FiberFuture::new(opaque, move || {
        // SAFETY: see above; the store outlives the future.
        let inner = unsafe { &mut *(inner_addr as *mut crate::store::StoreInner<T>) };
        f(crate::store::StoreContextMut(inner))
    })
}

/// Drives `fut` to completion from code running on a fiber: polls it with
/// the resuming poll's `Context`, suspending the fiber while it is pending.
///
/// # Errors
/// Outside an async call, or if the call is cancelled meanwhile.
pub(crate) fn block_on<F: Future + ?Sized>(mut fut: Pin<&mut F>) -> Result<F::Output> {
    let state = CURRENT_FIBER.with(|c| c.get());
    if state.is_null() {
        return Err(Error::InvalidArgument(
            "an async host function was called outside an async call (use `call_async`)".into(),
        ));
    }
    loop {
        // SAFETY: the fiber's state outlives the fiber (it is owned by the
        // future that runs it), and `cx` is set for the duration of the
        // resume that is running this code.
        let st = unsafe { &*state };
        // SAFETY: as above.
        let cx = unsafe { &mut *st.cx.get() };
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Ok(v);
        }
        // SAFETY: the yielder belongs to the fiber we are running on.
        match unsafe { &*st.yielder.get() }.suspend(()) {
            Resume::Go => {}
            Resume::Cancel => return Err(cancelled()),
        }
    }
}

/// Whether this code runs on an async call's fiber.
pub(crate) fn on_fiber() -> bool {
    !CURRENT_FIBER.with(|c| c.get()).is_null()
}

/// Suspends the fiber once (cooperative time-slicing), asking the executor
/// to poll again soon.
///
/// # Errors
/// Outside an async call, or if the call is cancelled meanwhile.
pub(crate) fn yield_now() -> Result<()> {
    let state = CURRENT_FIBER.with(|c| c.get());
    if state.is_null() {
        return Err(Error::InvalidArgument(
            "yielding needs an async call (use `call_async`)".into(),
        ));
    }
    // SAFETY: as in `block_on`.
    let st = unsafe { &*state };
    // SAFETY: as in `block_on`.
    unsafe { &*st.cx.get() }.waker().wake_by_ref();
    // SAFETY: as in `block_on`.
    match unsafe { &*st.yielder.get() }.suspend(()) {
        Resume::Go => Ok(()),
        Resume::Cancel => Err(cancelled()),
    }
}

fn cancelled() -> Error {
    Error::InvalidArgument("the async call was cancelled (its future was dropped)".into())
}
