//! The request body on its way upstream: counted, cut off at
//! `max_request_body` so an oversized upload is refused without being
//! buffered, and on GenAI routes scanned for `model` and `stream` (and its
//! messages, when content is captured).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::error::RequestBodyError;
use crate::exchange::RequestStats;
use crate::genai::{CaptureConfig, RequestScanner};

/// A client request body forwarded upstream.
#[derive(Debug)]
pub struct RequestBody<B = Incoming> {
    /// `None` for an empty body, e.g. a bodiless request sent again.
    inner: Option<B>,
    limit: Option<u64>,
    stats: Arc<RequestStats>,
    /// Reads `model` and `stream` on GenAI routes, and the messages when
    /// capturing; dropped once it knows all it can.
    scanner: Option<Box<RequestScanner>>,
}

impl<B> RequestBody<B> {
    pub fn new(inner: B, limit: Option<u64>, stats: Arc<RequestStats>) -> Self {
        Self {
            inner: Some(inner),
            limit,
            stats,
            scanner: None,
        }
    }

    /// A body with no bytes, for resending a request that had none.
    pub fn empty(stats: Arc<RequestStats>) -> Self {
        Self {
            inner: None,
            limit: None,
            stats,
            scanner: None,
        }
    }

    /// Also scan the body for a GenAI request's `model` and `stream`, and
    /// with `capture` its content.
    pub fn scanning(mut self, capture: Option<Arc<CaptureConfig>>) -> Self {
        self.scanner = Some(Box::new(match capture {
            Some(capture) => RequestScanner::capturing(capture),
            None => RequestScanner::default(),
        }));
        self
    }

    /// The scan is over: its captured content goes to the exchange.
    fn finish_scan(&mut self) {
        if let Some(scanner) = self.scanner.take() {
            if let Some(input) = scanner.render_content() {
                self.stats.set_input(input);
            }
        }
    }

    fn count(&self, data: &[u8]) -> Result<(), RequestBodyError> {
        let len = data.len() as u64;
        let total = self.stats.add_bytes(len);
        match self.limit {
            Some(limit) if total > limit => {
                self.stats.mark_too_large();
                Err(RequestBodyError::TooLarge { limit })
            }
            _ => Ok(()),
        }
    }

    fn scan(&mut self, data: &[u8]) {
        let Some(scanner) = self.scanner.as_mut() else {
            return;
        };
        let before = scanner.info().clone();
        scanner.feed(data);
        if *scanner.info() != before {
            self.stats.set_genai(scanner.info().clone());
        }
        if scanner.is_done() {
            self.finish_scan();
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        let Some(frame) = frame else {
            self.finish_scan();
            return Poll::Ready(None);
        };
        let frame = frame.map_err(RequestBodyError::Client)?;
        if let Some(data) = frame.data_ref() {
            self.count(data)?;
            self.scan(data);
        }
        // hyper may not poll again once the body says it has ended.
        if self.is_end_stream() {
            self.finish_scan();
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<B> Drop for RequestBody<B> {
    /// A body cut short still hands over what it captured.
    fn drop(&mut self) {
        self.finish_scan();
    }
}
