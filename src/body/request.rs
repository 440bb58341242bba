//! The request body on its way upstream: counted, and cut off at
//! `max_request_body` so an oversized upload is refused without being buffered.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Shared between the body (writer) and the exchange's recorder (reader).
#[derive(Debug, Default)]
pub struct RequestStats {
    bytes: AtomicU64,
    too_large: AtomicBool,
}

impl RequestStats {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn too_large(&self) -> bool {
        self.too_large.load(Ordering::Relaxed)
    }
}

/// Why the request body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the client's request body failed")]
    Client(#[source] hyper::Error),
}

/// A client request body forwarded upstream.
#[derive(Debug)]
pub struct RequestBody<B = Incoming> {
    inner: B,
    limit: Option<u64>,
    stats: Arc<RequestStats>,
}

impl<B> RequestBody<B> {
    pub fn new(inner: B, limit: Option<u64>, stats: Arc<RequestStats>) -> Self {
        Self {
            inner,
            limit,
            stats,
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
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        let Some(frame) = frame else {
            return Poll::Ready(None);
        };
        let frame = frame.map_err(RequestBodyError::Client)?;
        if let Some(data) = frame.data_ref() {
            let total = self
                .stats
                .bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed)
                + data.len() as u64;
            if let Some(limit) = self.limit.filter(|limit| total > *limit) {
                self.stats.too_large.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(RequestBodyError::TooLarge { limit })));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
