//! When a request may be sent upstream a second time.
//!
//! A pooled keep-alive connection can be closed by the upstream at the very
//! moment the proxy writes a request on it: the request is lost before any
//! response byte, and the client would see a 502 for nothing it did. Sending
//! again on a fresh connection is safe only when the request can be repeated
//! without changing its effect (an idempotent method, RFC 9110 §9.2.2) and
//! its body can be produced again; the proxy never buffers bodies, so only
//! bodiless requests qualify. One resend at most, and only after the
//! connection closed or reset: a timeout, a refused connection or an invalid
//! answer would fail the same way again.
//!
//! (A request that hyper never wrote, because the pooled connection was seen
//! closed first, is sent again by hyper-util's pool for any method: nothing
//! reached the upstream, so the method does not matter.)

use http::{HeaderMap, Method, Request, Uri};
use http_body::Body;

use super::ProxyErrorKind;
use crate::body::RequestBody;
use crate::exchange::RequestStats;
use std::sync::Arc;

/// How many times a request may be sent again.
pub const MAX_RESENDS: u8 = 1;

/// The copy of a bodiless idempotent request kept to send it again.
pub struct Replay {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Replay {
    /// A copy of `req` if it could be sent again; `None` costs nothing.
    pub fn of<B: Body>(req: &Request<B>, upgrade: bool) -> Option<Self> {
        let repeatable = !upgrade && is_idempotent(req.method()) && req.body().is_end_stream();
        repeatable.then(|| Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
        })
    }

    /// The request again, as first sent.
    pub fn request(&self, stats: Arc<RequestStats>) -> Request<RequestBody> {
        let mut req = Request::new(RequestBody::empty(stats));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Failures after which the same request on a new connection can succeed.
pub fn worth_resending(kind: ProxyErrorKind) -> bool {
    kind == ProxyErrorKind::Reset
}

/// RFC 9110 §9.2.2.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Replay::of` only looks at whether the body has ended.
    struct TestBody(Option<&'static [u8]>);

    impl Body for TestBody {
        type Data = bytes::Bytes;
        type Error = hyper::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, hyper::Error>>> {
            std::task::Poll::Ready(None)
        }
        fn is_end_stream(&self) -> bool {
            self.0.is_none()
        }
    }

    fn repeatable(method: Method, body: Option<&'static [u8]>, upgrade: bool) -> bool {
        let mut req = Request::new(TestBody(body));
        *req.method_mut() = method;
        req.headers_mut()
            .insert("x-kept", http::HeaderValue::from_static("yes"));
        let Some(replay) = Replay::of(&req, upgrade) else {
            return false;
        };
        let again = replay.request(Arc::new(RequestStats::default()));
        assert_eq!(again.method(), req.method());
        assert_eq!(again.headers()["x-kept"], "yes");
        assert!(again.body().is_end_stream());
        true
    }

    #[test]
    fn only_bodiless_idempotent_requests_are_repeatable() {
        assert!(repeatable(Method::GET, None, false));
        assert!(repeatable(Method::DELETE, None, false));
        assert!(repeatable(Method::HEAD, None, false));
        assert!(!repeatable(Method::POST, None, false));
        assert!(!repeatable(Method::PATCH, None, false));
        assert!(!repeatable(Method::PUT, Some(b"x"), false));
        assert!(!repeatable(Method::GET, None, true));
    }

    #[test]
    fn only_a_closed_or_reset_connection_is_worth_a_resend() {
        assert!(worth_resending(ProxyErrorKind::Reset));
        for kind in [
            ProxyErrorKind::Connect,
            ProxyErrorKind::Timeout,
            ProxyErrorKind::Protocol,
            ProxyErrorKind::Tls,
            ProxyErrorKind::RequestTooLarge,
        ] {
            assert!(!worth_resending(kind), "{kind}");
        }
    }

    #[test]
    fn an_empty_body_ends_at_once() {
        let body = RequestBody::<hyper::body::Incoming>::empty(Arc::new(RequestStats::default()));
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
    }
}
