//! Work done once an invocation's answer is out: a runtime layer whose invocation ends only
//! after the response has been posted to the Lambda runtime API, and which then reaps the
//! engine's spent instances ([`Engine::reap`]), writes the invocation's log lines (its
//! [`Report`]: the decision record and the metric documents) and makes spare instances of
//! the rules that ran for their next sign-in ([`Engine::replenish`]), so none of it is on a
//! sign-in's path. The Lambda freezes an environment only when its runtime asks for the
//! next event, which it does after this layer is done: nothing written here is lost to a
//! freeze, and spares made here wait, frozen with the environment, for its next sign-in.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Error, LambdaInvocation};
use portcullis_engine::Engine;
use portcullis_gate::report::Report;

/// Reports waiting for their invocation's answer to be out, and where they are written.
pub struct Outbox {
    pending: Mutex<Vec<Report>>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Outbox {
    /// An outbox writing to `out` (the Lambda's standard output, which Lambda sends to
    /// CloudWatch Logs line by line).
    pub fn new(out: Box<dyn Write + Send>) -> Outbox {
        Outbox {
            pending: Mutex::new(Vec::new()),
            out: Mutex::new(out),
        }
    }

    /// Holds `report` until [`Outbox::flush`]: one lock, one push.
    pub fn post(&self, report: Report) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(report);
    }

    /// Renders every waiting report and writes them all in one write. A write that fails
    /// loses those lines, never the function: they are logs.
    pub fn flush(&self) {
        let reports = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if reports.is_empty() {
            return;
        }
        let mut lines = Vec::with_capacity(4096);
        for report in &reports {
            report.render(&mut lines);
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(&lines).and_then(|()| out.flush());
    }
}

/// Wraps the runtime's invocation service (handler, response posting and all) in
/// [`AfterAnswer`].
pub struct AfterAnswerLayer {
    /// The engine whose spent instances are reaped and whose spares are made.
    pub engine: Arc<Engine>,
    /// The reports the handler posted, written once the answer is out.
    pub outbox: Arc<Outbox>,
}

impl<S> Layer<S> for AfterAnswerLayer {
    type Service = AfterAnswer<S>;

    fn layer(&self, inner: S) -> AfterAnswer<S> {
        AfterAnswer {
            inner,
            engine: Arc::clone(&self.engine),
            outbox: Arc::clone(&self.outbox),
        }
    }
}

/// An invocation service that, once the inner service — which posts the response — is
/// done, reaps the engine's spent instances, writes the reports the handler posted and
/// makes spare instances for the next sign-in.
pub struct AfterAnswer<S> {
    inner: S,
    engine: Arc<Engine>,
    outbox: Arc<Outbox>,
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
        let outbox = Arc::clone(&self.outbox);
        Box::pin(async move {
            let result = answered.await;
            let reaped = engine.reap();
            outbox.flush();
            let spares = engine.replenish();
            tracing::debug!(target: "portcullis::reap", reaped, spares, "spent instances dropped and spares made after the answer");
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context as InvocationContext;
    use portcullis_engine::EngineConfig;
    use portcullis_gate::DecisionRecord;
    use portcullis_gate::metrics::FunctionCounters;

    /// What happened, in order, as the test's service and writer saw it.
    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<String>>>);

    impl Events {
        fn push(&self, event: String) {
            self.0.lock().unwrap().push(event);
        }
        fn all(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    /// A writer that notes each write as one event.
    struct Noting(Events);

    impl Write for Noting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .push(format!("wrote {}", String::from_utf8_lossy(buf)));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn report(tenant: &str) -> Report {
        let mut record = DecisionRecord::new("PreAuthentication_Authentication".into());
        record.tenant = Some(tenant.into());
        Report {
            record,
            answered_ok: true,
            function: FunctionCounters::default(),
            at_ms: 0,
        }
    }

    fn invocation() -> LambdaInvocation {
        let (parts, ()) = http::Response::new(()).into_parts();
        LambdaInvocation {
            parts,
            body: bytes::Bytes::new(),
            context: InvocationContext::default(),
        }
    }

    #[test]
    fn reports_are_written_in_one_write_after_the_answer_is_posted() {
        let events = Events::default();
        let outbox = Arc::new(Outbox::new(Box::new(Noting(events.clone()))));
        let engine = Arc::new(Engine::new(EngineConfig::default()).unwrap());
        let inner = {
            let (events, outbox) = (events.clone(), Arc::clone(&outbox));
            lambda_runtime::tower::service_fn(move |_: LambdaInvocation| {
                let (events, outbox) = (events.clone(), Arc::clone(&outbox));
                async move {
                    // The handler posts its report, then the runtime posts the response.
                    outbox.post(report("acme"));
                    outbox.post(report("globex"));
                    events.push("answer posted".into());
                    Ok::<(), Error>(())
                }
            })
        };
        let mut service = AfterAnswerLayer { engine, outbox }.layer(inner);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(service.call(invocation())).unwrap();

        let events = events.all();
        assert_eq!(events.len(), 2, "one write for both reports: {events:#?}");
        assert_eq!(events[0], "answer posted");
        let written = events[1].strip_prefix("wrote ").unwrap();
        let records: Vec<serde_json::Value> = written
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["target"] == "portcullis::decision")
            .collect();
        let tenants: Vec<&str> = records
            .iter()
            .map(|r| r["fields"]["tenant"].as_str().unwrap())
            .collect();
        assert_eq!(tenants, ["acme", "globex"], "every report, in order");
        assert!(written.contains("CloudWatchMetrics"), "{written}");
    }

    #[test]
    fn an_outbox_with_nothing_posted_writes_nothing() {
        let events = Events::default();
        let outbox = Outbox::new(Box::new(Noting(events.clone())));
        outbox.flush();
        assert!(events.all().is_empty());
    }
}
