//! Turn a panic inside a request future into a value, without the cost of
//! spawning a task per request (which `tokio::spawn` + JoinError would be).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls the inner future inside `catch_unwind`; resolves to `Err(())` if
/// any poll panicked.
pub struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> CatchUnwind<F> {
    pub fn new(inner: F) -> CatchUnwind<F> {
        CatchUnwind { inner: Box::pin(inner) }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // AssertUnwindSafe: after a panic the inner future is never polled
        // again (we resolve), so no broken invariant inside it is observed.
        // Shared state it touched is the store, whose writes are atomic
        // transactions, so a half-finished handler leaves nothing behind.
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_values_and_catches_panics() {
        assert_eq!(CatchUnwind::new(async { 7 }).await, Ok(7));
        let panicking = CatchUnwind::new(async {
            tokio::task::yield_now().await;
            if std::hint::black_box(true) {
                panic!("boom");
            }
            1
        });
        assert_eq!(panicking.await, Err(()));
    }
}
