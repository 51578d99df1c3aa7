//! Helpers shared by the integration tests.

use std::future::Future;
use std::task::{Context, Poll};

/// Polls `f` to completion on this thread with a no-op waker.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A multi-threaded tokio runtime with two workers (a task, and the fiber
/// of an async call it polls, may move between them).
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn two_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}
