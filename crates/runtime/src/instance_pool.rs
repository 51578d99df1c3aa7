//! [`InstancePool`]: ready-to-call instances, each in its own store, shared
//! by threads.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::linker::InstancePre;
use crate::store::Store;

/// What happens to an instance when its [`PooledInstance`] guard is dropped
/// after a call that succeeded. (After a failed call — a trap, a host error,
/// a panic, an interrupt — the instance is always reset, never handed out
/// again as it was.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReturnPolicy {
    /// Back to the pool as it is: memory, globals and tables keep what the
    /// last user left (fastest; for instances that hold no per-request
    /// state, or caches worth keeping).
    KeepState,
    /// Replaced by a freshly instantiated one (in a new store), so every
    /// `get` sees the module's initial state. With pooling allocation and
    /// copy-on-write memory images this costs one instantiation.
    #[default]
    Reset,
}

/// How an [`InstancePool`] behaves.
#[derive(Debug, Clone)]
pub struct InstancePoolConfig {
    max_size: usize,
    policy: ReturnPolicy,
    get_timeout: Duration,
}

impl Default for InstancePoolConfig {
    fn default() -> Self {
        InstancePoolConfig {
            max_size: 16,
            policy: ReturnPolicy::Reset,
            get_timeout: Duration::from_secs(1),
        }
    }
}

impl InstancePoolConfig {
    /// At most this many instances exist at once, idle or handed out
    /// (default 16; at least 1).
    pub fn max_size(&mut self, n: usize) -> &mut Self {
        self.max_size = n.max(1);
        self
    }

    /// What a returned instance becomes (default [`ReturnPolicy::Reset`]).
    pub fn policy(&mut self, policy: ReturnPolicy) -> &mut Self {
        self.policy = policy;
        self
    }

    /// How long [`InstancePool::get`] waits for an instance when all
    /// `max_size` are handed out (default 1 s; zero: fail at once).
    pub fn get_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.get_timeout = timeout;
        self
    }
}

/// Counters of an [`InstancePool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstancePoolStats {
    /// Instances that exist now (idle or handed out).
    pub live: usize,
    /// Instances idle in the pool.
    pub idle: usize,
    /// Instances created to grow the pool.
    pub created: u64,
    /// Instances replaced by a fresh one when returned.
    pub reset: u64,
    /// Instances dropped from the pool: a failed reset, a panic while one
    /// was handed out, or [`PooledInstance::discard`].
    pub discarded: u64,
}

struct Ready<T: 'static> {
    store: Store<T>,
    instance: Instance,
}

/// Idle instances are kept in one list per core, each behind its own lock:
/// a thread takes from and returns to its home list (and takes from the
/// others when that is empty), so threads on different cores do not contend
/// for one lock. `live` is the number of instances that exist.
/// One idle list, alone on its cache lines (no false sharing between cores).
#[repr(align(128))]
struct Shard<T: 'static>(Mutex<Vec<Ready<T>>>);

struct Shared<T: 'static> {
    pre: InstancePre<T>,
    engine: Engine,
    make_data: Box<dyn Fn() -> T + Send + Sync>,
    config: InstancePoolConfig,
    shards: Box<[Shard<T>]>,
    live: AtomicUsize,
    /// Threads waiting in `get` (they hold or wait on `wait_lock`).
    waiting: AtomicUsize,
    wait_lock: Mutex<()>,
    returned: Condvar,
    created: AtomicU64,
    reset: AtomicU64,
    discarded: AtomicU64,
}

/// A bounded pool of ready-to-call instances of one module, each in its own
/// [`Store`], shared by any number of threads (`Send + Sync`, cheap to
/// clone). [`get`](Self::get) hands out an instance with its store behind a
/// guard; dropping the guard returns it, kept or reset according to the
/// [`ReturnPolicy`]. An instance whose call failed (trap, host error,
/// interrupt) or that was handed out while its thread panicked is never
/// handed out again as it was.
///
/// ```
/// use weft_runtime::{Engine, InstancePool, InstancePoolConfig, Linker, Module};
///
/// let engine = Engine::default();
/// let module = Module::new(
///     &engine,
///     r#"(module (global $n (mut i32) (i32.const 0))
///          (func (export "bump") (result i32)
///            (global.set $n (i32.add (global.get $n) (i32.const 1)))
///            (global.get $n)))"#,
/// )?;
/// let pre = Linker::<()>::new().instantiate_pre(&module)?;
/// let pool = InstancePool::new(pre, InstancePoolConfig::default(), || ());
/// for _ in 0..3 {
///     let mut guard = pool.get()?;
///     let (store, instance) = guard.parts();
///     let bump = instance.get_typed_func::<(), i32>(&mut *store, "bump")?;
///     // Reset on return (the default): every request starts fresh.
///     assert_eq!(bump.call(&mut *store, ())?, 1);
/// }
/// assert_eq!(pool.stats().created, 1);
/// # Ok::<(), weft_runtime::Error>(())
/// ```
pub struct InstancePool<T: 'static> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for InstancePool<T> {
    fn clone(&self) -> Self {
        InstancePool {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for InstancePool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePool")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> InstancePool<T> {
    /// A pool of instances of `pre`, each in a store whose data is
    /// `make_data()`. Starts empty; instances are created on demand.
    pub fn new(
        pre: InstancePre<T>,
        config: InstancePoolConfig,
        make_data: impl Fn() -> T + Send + Sync + 'static,
    ) -> Self {
        let engine = pre.module().engine().clone();
        InstancePool {
            shared: Arc::new(Shared {
                pre,
                engine,
                make_data: Box::new(make_data),
                config,
                shards: (0..std::thread::available_parallelism().map_or(1, |n| n.get()))
                    .map(|_| Shard(Mutex::new(Vec::new())))
                    .collect(),
                live: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                wait_lock: Mutex::new(()),
                returned: Condvar::new(),
                created: AtomicU64::new(0),
                reset: AtomicU64::new(0),
                discarded: AtomicU64::new(0),
            }),
        }
    }

    /// An instance: an idle one, a new one if fewer than `max_size` exist,
    /// or the next one returned within the configured timeout.
    ///
    /// # Errors
    /// The pool stayed exhausted for the whole timeout
    /// ([`Error::Resource`]), or creating an instance failed (the error of
    /// the instantiation).
    pub fn get(&self) -> Result<PooledInstance<'_, T>> {
        let shared = &*self.shared;
        // The clock is read only once this `get` has to wait.
        let mut deadline = None;
        loop {
            if let Some(ready) = shared.take_idle() {
                return Ok(self.guard(ready));
            }
            let max = shared.config.max_size;
            if shared
                .live
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
                    (l < max).then_some(l + 1)
                })
                .is_ok()
            {
                return match shared.fresh() {
                    Ok(ready) => {
                        shared.created.fetch_add(1, Ordering::Relaxed);
                        Ok(self.guard(ready))
                    }
                    Err(e) => {
                        shared.forget_one();
                        Err(e)
                    }
                };
            }
            // Wait for a return or a discard. Registering as a waiter
            // before looking again means a return we do not see will see
            // us (it pushes, then checks `waiting`), so no wake-up is lost.
            let guard = shared.wait_lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.waiting.fetch_add(1, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            let ready = shared.take_idle();
            let room = shared.live.load(Ordering::SeqCst) < max;
            let now = Instant::now();
            let deadline = *deadline.get_or_insert(now + shared.config.get_timeout);
            let expired = now >= deadline;
            if ready.is_none() && !room && !expired {
                drop(
                    shared
                        .returned
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(|e| e.into_inner()),
                );
            }
            shared.waiting.fetch_sub(1, Ordering::SeqCst);
            if let Some(ready) = ready {
                return Ok(self.guard(ready));
            }
            if !room && expired {
                return Err(Error::Resource(format!(
                    "instance pool exhausted: all {max} instances are in use"
                )));
            }
        }
    }

    /// The pool's counters.
    pub fn stats(&self) -> InstancePoolStats {
        let shared = &*self.shared;
        InstancePoolStats {
            live: shared.live.load(Ordering::SeqCst),
            idle: shared
                .shards
                .iter()
                .map(|s| s.0.lock().unwrap_or_else(|e| e.into_inner()).len())
                .sum(),
            created: self.shared.created.load(Ordering::Relaxed),
            reset: self.shared.reset.load(Ordering::Relaxed),
            discarded: self.shared.discarded.load(Ordering::Relaxed),
        }
    }

    fn guard(&self, ready: Ready<T>) -> PooledInstance<'_, T> {
        let failed_calls = ready.store.inner().opaque.failed_calls;
        PooledInstance {
            ready: Some(ready),
            shared: &self.shared,
            failed_calls,
        }
    }
}

impl<T: 'static> Shared<T> {
    /// This thread's home list.
    fn home(&self) -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static HOME: usize = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        HOME.with(|h| *h) % self.shards.len()
    }

    fn take_idle(&self) -> Option<Ready<T>> {
        let home = self.home();
        (0..self.shards.len()).find_map(|k| {
            let i = (home + k) % self.shards.len();
            self.shards[i]
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
        })
    }

    /// Wakes waiting `get`s after a return or a discard. The fence pairs
    /// with the one in `get`: either the waiter sees our change, or we see
    /// the waiter.
    fn wake(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _g = self.wait_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.returned.notify_all();
        }
    }

    fn fresh(&self) -> Result<Ready<T>> {
        let mut store = Store::new(&self.engine, (self.make_data)());
        let instance = self.pre.instantiate(&mut store)?;
        Ok(Ready { store, instance })
    }

    /// One instance stops existing (discarded, or its creation failed).
    fn forget_one(&self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        self.wake();
    }

    fn put_back(&self, ready: Ready<T>) {
        self.shards[self.home()]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ready);
        self.wake();
    }
}

/// An instance handed out by [`InstancePool::get`], with its store.
/// Dropping it returns the instance to the pool. (It borrows the pool:
/// no reference count is touched per request.)
pub struct PooledInstance<'a, T: 'static> {
    ready: Option<Ready<T>>,
    shared: &'a Shared<T>,
    failed_calls: u64,
}

impl<T: 'static> std::fmt::Debug for PooledInstance<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledInstance")
            .field("instance", &self.ready.as_ref().map(|r| r.instance))
            .finish_non_exhaustive()
    }
}

impl<T: 'static> PooledInstance<'_, T> {
    /// The store and the instance, together (the usual way to call it).
    pub fn parts(&mut self) -> (&mut Store<T>, Instance) {
        let ready = self.ready.as_mut().expect("present until drop");
        (&mut ready.store, ready.instance)
    }

    /// The instance's store.
    pub fn store(&mut self) -> &mut Store<T> {
        &mut self.ready.as_mut().expect("present until drop").store
    }

    /// The instance.
    pub fn instance(&self) -> Instance {
        self.ready.as_ref().expect("present until drop").instance
    }

    /// Drops this instance instead of returning it (the pool may create a
    /// new one later).
    pub fn discard(mut self) {
        if self.ready.take().is_some() {
            self.shared.discarded.fetch_add(1, Ordering::Relaxed);
            self.shared.forget_one();
        }
    }
}

impl<T: 'static> Drop for PooledInstance<'_, T> {
    fn drop(&mut self) {
        let Some(ready) = self.ready.take() else {
            return;
        };
        if std::thread::panicking() {
            // Whatever the panic interrupted may have left the store
            // half-updated: never hand it out again.
            drop(ready);
            self.shared.discarded.fetch_add(1, Ordering::Relaxed);
            self.shared.forget_one();
            return;
        }
        let opaque = &ready.store.inner().opaque;
        let failed = opaque.failed_calls != self.failed_calls || opaque.vmstore.is_interrupted();
        if !failed && self.shared.config.policy == ReturnPolicy::KeepState {
            self.shared.put_back(ready);
            return;
        }
        // Reset: the old store (and every slot it holds) goes first, so a
        // pooling engine with few slots can make the new one.
        drop(ready);
        match self.shared.fresh() {
            Ok(new) => {
                self.shared.reset.fetch_add(1, Ordering::Relaxed);
                self.shared.put_back(new);
            }
            Err(_) => {
                self.shared.discarded.fetch_add(1, Ordering::Relaxed);
                self.shared.forget_one();
            }
        }
    }
}
