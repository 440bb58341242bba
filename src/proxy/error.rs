//! Proxy failures: classified once, mapped to a status and a JSON body in one
//! place. The same kind feeds the `error_type` label, the span's `error.type`
//! and Sentry, so all of them name a failure the same way.

use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::context::CorrelationId;

pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Which side of the proxy a failure came from (Pingora's `ErrorSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSide {
    Upstream,
    Downstream,
    Internal,
}

/// What went wrong, without the details: small, `Copy`, label-safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyErrorKind {
    /// TCP connect refused, unreachable, or no DNS answer.
    Connect,
    /// TCP connect did not finish within `connect_timeout`.
    ConnectTimeout,
    /// TLS handshake with the upstream failed (e.g. certificate not trusted).
    Tls,
    /// No response headers within `response_timeout`.
    Timeout,
    /// The upstream closed or reset the connection.
    Reset,
    /// The upstream sent something that is not valid HTTP.
    Protocol,
    /// A streamed response body stayed silent longer than `idle_timeout`.
    IdleTimeout,
    /// The request body exceeded `max_request_body`.
    RequestTooLarge,
    /// The request head exceeded `max_header_bytes` or `max_headers`.
    HeadersTooLarge,
    /// The client's request could not be forwarded (e.g. its body broke off).
    BadRequest,
    /// A bug or resource failure inside the proxy.
    Internal,
    /// Still running when the shutdown's `drain_timeout` ran out: the proxy cut it.
    DrainTimeout,
}

impl ProxyErrorKind {
    /// The `error_type` label value and span `error.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::ConnectTimeout => "connect_timeout",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Protocol => "protocol",
            Self::IdleTimeout => "idle_timeout",
            Self::RequestTooLarge => "request_too_large",
            Self::HeadersTooLarge => "headers_too_large",
            Self::BadRequest => "bad_request",
            Self::Internal => "internal",
            Self::DrainTimeout => "drain_timeout",
        }
    }

    pub fn side(self) -> ErrorSide {
        match self {
            Self::Connect
            | Self::ConnectTimeout
            | Self::Tls
            | Self::Timeout
            | Self::Reset
            | Self::Protocol
            | Self::IdleTimeout => ErrorSide::Upstream,
            Self::RequestTooLarge | Self::HeadersTooLarge | Self::BadRequest => {
                ErrorSide::Downstream
            }
            Self::Internal | Self::DrainTimeout => ErrorSide::Internal,
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Connect | Self::ConnectTimeout | Self::Tls | Self::Reset | Self::Protocol => {
                StatusCode::BAD_GATEWAY
            }
            Self::Timeout | Self::IdleTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::DrainTimeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `error` text of the JSON body: short, stable, no internal details.
    fn public_message(self) -> &'static str {
        match self {
            Self::Connect => "upstream unreachable",
            Self::ConnectTimeout => "upstream connect timeout",
            Self::Tls => "upstream TLS handshake failed",
            Self::Timeout => "upstream timeout",
            Self::Reset => "upstream closed the connection",
            Self::Protocol => "upstream sent an invalid response",
            Self::IdleTimeout => "upstream went silent",
            Self::RequestTooLarge => "request body too large",
            Self::HeadersTooLarge => "request headers too large",
            Self::BadRequest => "bad request",
            Self::Internal => "internal proxy error",
            Self::DrainTimeout => "proxy shutting down",
        }
    }
}

impl fmt::Display for ProxyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure with its cause chain, for logs and Sentry.
#[derive(Debug)]
pub struct ProxyError {
    pub kind: ProxyErrorKind,
    pub source: Option<BoxError>,
}

impl ProxyError {
    pub fn new(kind: ProxyErrorKind, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    pub fn bare(kind: ProxyErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// The cause chain joined with `: `, for the log line and Sentry.
    pub fn chain(&self) -> String {
        let mut out = self.kind.public_message().to_owned();
        let mut next: Option<&(dyn StdError + 'static)> = self.source.as_deref().map(|e| e as _);
        while let Some(err) = next {
            out.push_str(": ");
            out.push_str(&err.to_string());
            next = err.source();
        }
        out
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.chain())
    }
}

impl StdError for ProxyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

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
    headers.insert(
        correlation_header.clone(),
        correlation_id.header_value().clone(),
    );
    response
}

/// Classifies an error from the upstream client by walking its cause chain.
pub fn classify_upstream(err: &(dyn StdError + 'static)) -> ProxyErrorKind {
    let mut is_connect = false;
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(body) = e.downcast_ref::<crate::body::RequestBodyError>() {
            return match body {
                crate::body::RequestBodyError::TooLarge { .. } => ProxyErrorKind::RequestTooLarge,
                crate::body::RequestBodyError::Client(_) => ProxyErrorKind::BadRequest,
            };
        }
        if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            is_connect |= client.is_connect();
        }
        if e.downcast_ref::<rustls::Error>().is_some() {
            return ProxyErrorKind::Tls;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return if is_connect {
                    ProxyErrorKind::ConnectTimeout
                } else {
                    ProxyErrorKind::Timeout
                };
            }
            if wraps_tls_error(io) {
                return ProxyErrorKind::Tls;
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() {
                return ProxyErrorKind::Protocol;
            }
            if h.is_timeout() {
                return ProxyErrorKind::Timeout;
            }
        }
        next = e.source();
    }
    if is_connect {
        ProxyErrorKind::Connect
    } else {
        ProxyErrorKind::Reset
    }
}

/// An `io::Error` hides what it wraps from `source()`; look inside, through
/// nested `io::Error`s, for the rustls error of a failed handshake.
fn wraps_tls_error(io: &std::io::Error) -> bool {
    let mut inner = io.get_ref();
    while let Some(e) = inner {
        if e.is::<rustls::Error>() {
            return true;
        }
        inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_inside_io_errors_are_tls() {
        let rustls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls);
        let outer = std::io::Error::other(inner);
        assert_eq!(classify_upstream(&outer), ProxyErrorKind::Tls);
    }
}
