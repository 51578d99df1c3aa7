//! Helpers shared by the integration tests.

use std::future::Future;
use std::task::{Context, Poll};

/// Polls `f` to completion on this thread with a no-op waker.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
