//! The failure vocabulary: what can go wrong in an exchange, classified
//! once. The same [`ProxyErrorKind`] sets the status of the proxy's own
//! answer, the `error_type` label, the span's `error.type` and Sentry's tags,
//! so all of them name a failure the same way. Below the proxy, the bodies
//! and the sinks: everything that reports or records a failure imports it.

use std::error::Error as StdError;
use std::fmt;

use http::StatusCode;

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
    /// `listener.max_concurrent_requests` exchanges were already in flight.
    Overloaded,
}

impl ProxyErrorKind {
    /// How many kinds there are, for tables indexed by `kind as usize`.
    pub const COUNT: usize = Self::Overloaded as usize + 1;

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
            Self::Overloaded => "overloaded",
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
            Self::Internal | Self::DrainTimeout | Self::Overloaded => ErrorSide::Internal,
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
            Self::DrainTimeout | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `error` text of the JSON body: short, stable, no internal details.
    pub fn public_message(self) -> &'static str {
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
            Self::Overloaded => "proxy overloaded, retry later",
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
        match &self.source {
            Some(source) => format!("{}: {}", self.kind.public_message(), chain(source.as_ref())),
            None => self.kind.public_message().to_owned(),
        }
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

/// Why the request body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the client's request body failed")]
    Client(#[source] hyper::Error),
}

/// A failure in the middle of a response stream: the client sees the stream
/// cut off (HTTP/1 connection closed, HTTP/2 stream reset).
#[derive(Debug, thiserror::Error)]
#[error("upstream response body failed: {kind}")]
pub struct ResponseBodyError {
    pub kind: ProxyErrorKind,
    #[source]
    pub source: Option<hyper::Error>,
}

/// Errors a body can report, classified for the completion record.
pub trait Classify: StdError {
    fn kind(&self) -> ProxyErrorKind;
}

impl Classify for ResponseBodyError {
    fn kind(&self) -> ProxyErrorKind {
        self.kind
    }
}

/// An error and its causes, joined with `: `.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// Classifies an error from the upstream client by walking its cause chain.
pub fn classify_upstream(err: &(dyn StdError + 'static)) -> ProxyErrorKind {
    let mut is_connect = false;
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(body) = e.downcast_ref::<RequestBodyError>() {
            return match body {
                RequestBodyError::TooLarge { .. } => ProxyErrorKind::RequestTooLarge,
                RequestBodyError::Client(_) => ProxyErrorKind::BadRequest,
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
