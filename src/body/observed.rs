//! The response body as the client receives it, observed on the way out:
//! every frame is forwarded unchanged, counted and tapped for GenAI usage,
//! and the exchange's [`Recorder`] is finished when the body ends, fails or
//! is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::error::Classify;
use crate::exchange::{Outcome, Recorder};
use crate::genai::ResponseTap;

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
    B::Error: Classify + 'static,
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
                    recorder.body_failed(crate::error::chain(e));
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

    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;
    use crate::context::{CorrelationId, RouteTable};
    use crate::error::ProxyErrorKind;
    use crate::exchange::{ClientSide, Completion, Exchange, Recording, Sink};

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

    impl Classify for TestError {
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
    ) -> (ObservedBody<Scripted>, Collected, Arc<AtomicBool>) {
        let collected = Collected::default();
        let cutting = Arc::new(AtomicBool::new(false));
        let recording = Arc::new(Recording::new(
            collected.clone(),
            Vec::new(),
            cutting.clone(),
        ));
        let exchange = Exchange {
            correlation_id: CorrelationId::generate(),
            method: Method::GET,
            known_method: crate::exchange::KnownMethod::Get,
            inbound: None,
            handler: RouteTable::new(&[]).classify("/").clone(),
            target: "/".parse().unwrap(),
            version: Version::HTTP_11,
            client: ClientSide::new(SocketAddr::from(([127, 0, 0, 1], 1)), false),
            start: Instant::now(),
            trace: None,
            genai: None,
            request_headers: None,
        };
        let mut recorder = Recorder::new(exchange, recording);
        recorder.responding(200);
        let body = Scripted {
            frames: frames.into(),
            announces_end,
        };
        (ObservedBody::new(body, recorder), collected, cutting)
    }

    fn records(c: &Collected) -> Vec<(Outcome, u16, u64)> {
        c.0.lock().unwrap().clone()
    }

    fn data(s: &'static str) -> Result<Frame<Bytes>, TestError> {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    #[tokio::test]
    async fn empty_body_completes_without_a_poll() {
        let (body, c, _) = observed(vec![], true);
        assert!(body.is_end_stream());
        drop(body);
        assert_eq!(records(&c), vec![(Outcome::Complete, 200, 0)]);
    }

    #[tokio::test]
    async fn data_then_end() {
        let (body, c, _) = observed(vec![data("ab"), data("cde")], false);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"abcde");
        assert_eq!(records(&c), vec![(Outcome::Complete, 200, 5)]);
    }

    #[tokio::test]
    async fn data_with_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "1".parse().unwrap());
        let (body, c, _) = observed(vec![data("ab"), Ok(Frame::trailers(trailers))], true);
        let collected = body.collect().await.unwrap();
        assert!(collected.trailers().is_some());
        assert_eq!(records(&c), vec![(Outcome::Complete, 200, 2)]);
    }

    #[tokio::test]
    async fn dropped_early_is_a_client_abort() {
        let (mut body, c, _) = observed(vec![data("ab"), data("cd")], false);
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(records(&c), vec![(Outcome::ClientAbort, 499, 2)]);
    }

    #[tokio::test]
    async fn dropped_by_the_shutdown_cut_is_a_drain_timeout() {
        let (mut body, c, cutting) = observed(vec![data("ab"), data("cd")], false);
        body.frame().await.unwrap().unwrap();
        cutting.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(body);
        let cut = Outcome::ResponseBodyError(ProxyErrorKind::DrainTimeout);
        assert_eq!(records(&c), vec![(cut, 200, 2)]);
    }

    #[tokio::test]
    async fn error_is_recorded_once() {
        let (body, c, _) = observed(vec![data("ab"), Err(TestError), data("never")], false);
        assert!(body.collect().await.is_err());
        assert_eq!(
            records(&c),
            vec![(Outcome::ResponseBodyError(ProxyErrorKind::Reset), 200, 2)]
        );
    }

    #[tokio::test]
    async fn end_known_only_from_the_final_poll() {
        let (mut body, c, _) = observed(vec![data("abc")], false);
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
        let (mut body, c, _) = observed(vec![], false);
        drop(body.recorder.take());
        assert_eq!(records(&c), vec![(Outcome::ClientAbort, 499, 0)]);
    }
}
