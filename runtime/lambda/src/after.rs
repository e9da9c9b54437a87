//! Work done once an invocation's answer is out: a runtime layer whose invocation ends only
//! after the response has been posted to the Lambda runtime API, and which then reaps the
//! engine's spent instances ([`Engine::reap`]), so dropping them is never on a sign-in's path.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Error, LambdaInvocation};
use portcullis_engine::Engine;

/// Wraps the runtime's invocation service (handler, response posting and all) in
/// [`AfterAnswer`].
pub struct AfterAnswerLayer {
    /// The engine whose spent instances are reaped.
    pub engine: Arc<Engine>,
}

impl<S> Layer<S> for AfterAnswerLayer {
    type Service = AfterAnswer<S>;

    fn layer(&self, inner: S) -> AfterAnswer<S> {
        AfterAnswer {
            inner,
            engine: Arc::clone(&self.engine),
        }
    }
}

/// An invocation service that reaps the engine's spent instances once the inner service —
/// which posts the response — is done.
pub struct AfterAnswer<S> {
    inner: S,
    engine: Arc<Engine>,
}

impl<S> Service<LambdaInvocation> for AfterAnswer<S>
where
    S: Service<LambdaInvocation, Response = (), Error = Error>,
    S::Future: 'static,
{
    type Response = ();
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<(), Error>>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let answered = self.inner.call(invocation);
        let engine = Arc::clone(&self.engine);
        Box::pin(async move {
            let result = answered.await;
            let reaped = engine.reap();
            tracing::debug!(target: "portcullis::reap", reaped, "spent instances dropped after the answer");
            result
        })
    }
}
