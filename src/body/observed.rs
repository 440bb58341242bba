//! The response body as the client receives it, observed on the way out.
//!
//! [`Recorder`] holds what is known about an exchange and writes exactly one
//! [`Completion`] to the sinks: at the end of the body, on a body error, or
//! when dropped early (the client went away). Because the proxy's request
//! future owns the recorder until the response exists, a client that leaves
//! before the response headers is recorded too, by the same drop.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::{RequestStats, ResponseBodyError};
use crate::exchange::{Completion, Exchange, GenAiCompletion, Outcome, STATUS_CLIENT_CLOSED};
use crate::genai::{GenAiUsage, ResponseTap};
use crate::proxy::ProxyErrorKind;
use crate::sinks::Sinks;

/// Errors a body can report, classified for the completion record.
pub trait ClassifyError: std::error::Error {
    fn kind(&self) -> ProxyErrorKind;
}

impl ClassifyError for ResponseBodyError {
    fn kind(&self) -> ProxyErrorKind {
        self.kind
    }
}

/// Collects the facts of one exchange and hands them to the sinks once.
pub struct Recorder {
    exchange: Option<Exchange>,
    sinks: Arc<Sinks>,
    request: Option<Arc<RequestStats>>,
    status: u16,
    upstream_status: Option<u16>,
    first_byte: Option<Duration>,
    upstream_headers: Option<Duration>,
    upstream_sent: Option<std::time::Instant>,
    proxy_error: Option<ProxyErrorKind>,
    error_detail: Option<String>,
}

impl Recorder {
    pub fn new(exchange: Exchange, sinks: Arc<Sinks>) -> Self {
        Self {
            exchange: Some(exchange),
            sinks,
            request: None,
            status: STATUS_CLIENT_CLOSED,
            upstream_status: None,
            first_byte: None,
            upstream_headers: None,
            upstream_sent: None,
            proxy_error: None,
            error_detail: None,
        }
    }

    pub fn exchange(&self) -> &Exchange {
        self.exchange
            .as_ref()
            .expect("a recorder's exchange is only taken when it finishes")
    }

    /// Gives mutable access to the exchange's spans, e.g. to add the client span.
    pub fn with_trace(&mut self, f: impl FnOnce(&mut crate::context::ExchangeTrace)) {
        if let Some(trace) = self.exchange.as_mut().and_then(|e| e.trace.as_mut()) {
            f(trace);
        }
    }

    pub fn set_request_stats(&mut self, stats: Arc<RequestStats>) {
        self.request = Some(stats);
    }

    /// The request left for the upstream at `at`.
    pub fn upstream_sent(&mut self, at: std::time::Instant) {
        self.upstream_sent = Some(at);
    }

    /// The upstream answered with headers after `elapsed` since sending.
    pub fn upstream_responded(&mut self, status: u16, elapsed: Duration) {
        self.upstream_status = Some(status);
        self.upstream_headers = Some(elapsed);
    }

    /// The upstream call failed with `kind` and the request goes out again.
    pub fn resending(&mut self, kind: ProxyErrorKind) {
        let exchange = self.exchange();
        let ids = exchange.trace_ids();
        tracing::info!(
            correlation_id = exchange.correlation_id.as_str(),
            trace_id = ids.as_ref().map(|i| i.0.as_str()),
            span_id = ids.as_ref().map(|i| i.1.as_str()),
            error_type = kind.as_str(),
            "upstream connection failed before a response; sending the idempotent request again"
        );
        self.with_trace(|trace| {
            if let Some(call) = trace.client.as_mut() {
                call.resends.push(crate::context::spans::Resend {
                    at: std::time::SystemTime::now(),
                    error: kind.as_str(),
                });
            }
        });
    }

    /// The proxy is about to send response headers with `status`.
    pub fn responding(&mut self, status: u16) {
        self.status = status;
        self.first_byte = Some(self.exchange().start.elapsed());
    }

    /// The proxy answers itself because of `kind`.
    /// The exchange failed with `kind`; `detail` is the error chain.
    pub fn failed(&mut self, kind: ProxyErrorKind, detail: String) {
        self.proxy_error = Some(kind);
        self.error_detail = Some(detail);
    }

    fn finish(&mut self, outcome: Outcome, bytes_out: u64, usage: Option<GenAiUsage>) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        let outcome = match (self.proxy_error, outcome) {
            (Some(kind), Outcome::Complete) => Outcome::ProxyError(kind),
            (_, outcome) => outcome,
        };
        let status = if outcome == Outcome::ClientAbort {
            STATUS_CLIENT_CLOSED
        } else {
            self.status
        };
        let now = std::time::Instant::now();
        let completion = Completion {
            duration: now.saturating_duration_since(exchange.start),
            exchange,
            outcome,
            status,
            upstream_status: self.upstream_status,
            first_byte: self.first_byte,
            upstream_headers: self.upstream_headers,
            upstream_duration: self
                .upstream_sent
                .map(|at| now.saturating_duration_since(at)),
            bytes_in: self.request.as_ref().map_or(0, |r| r.bytes()),
            bytes_out,
            genai: None,
            error_detail: self.error_detail.take(),
        };
        let mut completion = completion;
        completion.genai = completion.exchange.genai.map(|route| {
            let request = self.request.as_ref().map(|r| r.genai()).unwrap_or_default();
            GenAiCompletion::new(
                route,
                request,
                usage.unwrap_or_default(),
                completion.exchange.start,
            )
        });
        self.sinks.record(&completion);
    }
}

/// An error and its causes, joined with `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let outcome = self.dropped_outcome();
        self.finish(outcome, 0, None);
    }
}

impl Recorder {
    /// Why an unfinished exchange ends: the client left, or the shutdown cut it.
    fn dropped_outcome(&mut self) -> Outcome {
        if !self.sinks.cutting() {
            return Outcome::ClientAbort;
        }
        if self.first_byte.is_none() {
            self.status = ProxyErrorKind::DrainTimeout.status().as_u16();
        }
        Outcome::ResponseBodyError(ProxyErrorKind::DrainTimeout)
    }
}

/// Forwards every frame unchanged and finishes the recorder at the end.
pub struct ObservedBody<B: Body> {
    inner: B,
    recorder: Option<Recorder>,
    bytes_out: u64,
    /// Reads GenAI usage from the frames on GenAI routes.
    tap: Option<Box<ResponseTap>>,
}

impl<B: Body> ObservedBody<B> {
    pub fn new(inner: B, recorder: Recorder) -> Self {
        Self {
            inner,
            recorder: Some(recorder),
            bytes_out: 0,
            tap: None,
        }
    }

    /// Also read GenAI usage from the frames as they pass.
    pub fn with_tap(mut self, tap: Option<ResponseTap>) -> Self {
        self.tap = tap.map(Box::new);
        self
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(mut recorder) = self.recorder.take() {
            let usage = self.tap.take().map(|tap| tap.finish());
            recorder.finish(outcome, self.bytes_out, usage);
        }
    }
}

impl<B> Body for ObservedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: ClassifyError,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes_out += data.len() as u64;
                    if let Some(tap) = this.tap.as_mut() {
                        tap.feed(data);
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish(Outcome::Complete);
                }
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(recorder) = this.recorder.as_mut() {
                    recorder.error_detail = Some(error_chain(e));
                }
                this.finish(Outcome::ResponseBodyError(e.kind()))
            }
            Poll::Ready(None) => this.finish(Outcome::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        // hyper drops a body that reports its end without polling it again:
        // that is a complete exchange; any other early drop is the client
        // leaving, or the shutdown cutting the stream.
        let outcome = match self.recorder.as_mut() {
            _ if self.inner.is_end_stream() => Outcome::Complete,
            Some(recorder) => recorder.dropped_outcome(),
            None => return,
        };
        self.finish(outcome);
    }
}

#[cfg(test)]
mod tests {
    //! The six body cases every wrapper is tested against (linkerd `body-eos`):
    //! empty, data, data with trailers, dropped early, error, and a body that
    //! never reports its end before the final poll.

    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::time::Instant;

    use http::{HeaderMap, Method, Version};
    use http_body_util::BodyExt;

    use super::*;
    use crate::context::{CorrelationId, RouteTable};
    use crate::proxy::ClientSide;
    use crate::sinks::Sink;

    #[derive(Default, Clone)]
    struct Collected(Arc<Mutex<Vec<(Outcome, u16, u64)>>>);

    impl Sink for Collected {
        fn record(&self, c: &Completion) {
            self.0
                .lock()
                .unwrap()
                .push((c.outcome, c.status, c.bytes_out));
        }
    }

    #[derive(Debug)]
    struct TestError;

    impl std::fmt::Display for TestError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("test error")
        }
    }

    impl std::error::Error for TestError {}

    impl ClassifyError for TestError {
        fn kind(&self) -> ProxyErrorKind {
            ProxyErrorKind::Reset
        }
    }

    /// Yields scripted frames; `announces_end` controls `is_end_stream` after the last.
    struct Scripted {
        frames: VecDeque<Result<Frame<Bytes>, TestError>>,
        announces_end: bool,
    }

    impl Body for Scripted {
        type Data = Bytes;
        type Error = TestError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, TestError>>> {
            Poll::Ready(self.frames.pop_front())
        }

        fn is_end_stream(&self) -> bool {
            self.announces_end && self.frames.is_empty()
        }
    }

    fn observed(
        frames: Vec<Result<Frame<Bytes>, TestError>>,
        announces_end: bool,
    ) -> (ObservedBody<Scripted>, Collected) {
        let collected = Collected::default();
        let sinks = Arc::new(Sinks::new().with(collected.clone()));
        let exchange = Exchange {
            correlation_id: CorrelationId::generate(),
            method: Method::GET,
            handler: RouteTable::new(&[]).classify("/").clone(),
            target: "/".parse().unwrap(),
            version: Version::HTTP_11,
            client: ClientSide::new(SocketAddr::from(([127, 0, 0, 1], 1)), false),
            start: Instant::now(),
            trace: None,
            genai: None,
            request_headers: None,
        };
        let mut recorder = Recorder::new(exchange, sinks);
        recorder.responding(200);
        let body = Scripted {
            frames: frames.into(),
            announces_end,
        };
        (ObservedBody::new(body, recorder), collected)
    }

    fn records(c: &Collected) -> Vec<(Outcome, u16, u64)> {
        c.0.lock().unwrap().clone()
    }

    fn data(s: &'static str) -> Result<Frame<Bytes>, TestError> {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    #[tokio::test]
    async fn empty_body_completes_without_a_poll() {
        let (body, c) = observed(vec![], true);
        assert!(body.is_end_stream());
        drop(body);
        assert_eq!(records(&c), vec![(Outcome::Complete, 200, 0)]);
    }

    #[tokio::test]
    async fn data_then_end() {
        let (body, c) = observed(vec![data("ab"), data("cde")], false);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"abcde");
        assert_eq!(records(&c), vec![(Outcome::Complete, 200, 5)]);
    }

    #[tokio::test]
    async fn data_with_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "1".parse().unwrap());
        let (body, c) = observed(vec![data("ab"), Ok(Frame::trailers(trailers))], true);
        let collected = body.collect().await.unwrap();
        assert!(collected.trailers().is_some());
        assert_eq!(records(&c), vec![(Outcome::Complete, 200, 2)]);
    }

    #[tokio::test]
    async fn dropped_early_is_a_client_abort() {
        let (mut body, c) = observed(vec![data("ab"), data("cd")], false);
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(records(&c), vec![(Outcome::ClientAbort, 499, 2)]);
    }

    #[tokio::test]
    async fn dropped_by_the_shutdown_cut_is_a_drain_timeout() {
        let (mut body, c) = observed(vec![data("ab"), data("cd")], false);
        body.frame().await.unwrap().unwrap();
        body.recorder.as_ref().unwrap().sinks.start_cutting();
        drop(body);
        let cut = Outcome::ResponseBodyError(ProxyErrorKind::DrainTimeout);
        assert_eq!(records(&c), vec![(cut, 200, 2)]);
    }

    #[tokio::test]
    async fn error_is_recorded_once() {
        let (body, c) = observed(vec![data("ab"), Err(TestError), data("never")], false);
        assert!(body.collect().await.is_err());
        assert_eq!(
            records(&c),
            vec![(Outcome::ResponseBodyError(ProxyErrorKind::Reset), 200, 2)]
        );
    }

    #[tokio::test]
    async fn end_known_only_from_the_final_poll() {
        let (mut body, c) = observed(vec![data("abc")], false);
        body.frame().await.unwrap().unwrap();
        assert!(
            records(&c).is_empty(),
            "not finished before the end is seen"
        );
        assert!(body.frame().await.is_none());
        drop(body);
        assert_eq!(records(&c), vec![(Outcome::Complete, 200, 3)]);
    }

    #[test]
    fn recorder_dropped_before_a_response_is_a_client_abort() {
        let (mut body, c) = observed(vec![], false);
        drop(body.recorder.take());
        assert_eq!(records(&c), vec![(Outcome::ClientAbort, 499, 0)]);
    }
}
