//! The response the proxy sends for its own failures.

use bytes::Bytes;
use http::{header, HeaderValue, Response};

use crate::context::CorrelationId;
use crate::error::ProxyErrorKind;

/// The response the proxy sends for its own failures: status by kind and
/// `{"error", "correlation_id", "trace_id"}` with the correlation header.
pub fn error_response(
    kind: ProxyErrorKind,
    correlation_header: &http::HeaderName,
    correlation_id: &CorrelationId,
    trace_id: Option<&str>,
) -> Response<Bytes> {
    let body = serde_json::json!({
        "error": kind.public_message(),
        "correlation_id": correlation_id.as_str(),
        "trace_id": trace_id,
    });
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = kind.status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if kind == ProxyErrorKind::Overloaded {
        // A second: long enough for streams to end, short enough not to
        // idle a client that a retry would serve.
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    headers.insert(
        correlation_header.clone(),
        correlation_id.header_value().clone(),
    );
    response
}
