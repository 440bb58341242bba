//! The innermost step: turn the client's request into the upstream's, send
//! it, and turn the upstream's response head into the client's.

use std::sync::Arc;

use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Request, Response, Version};
use hyper::body::Incoming;

use super::headers::{append_forwarded, remove_hop_by_hop};
use crate::body::RequestBody;
use crate::config::UpstreamUrl;
use crate::context::propagation::Outgoing;
use crate::context::trace_context::SERVER_TIMING;
use crate::context::CorrelationId;
use crate::exchange::ClientSide;
use crate::exchange::RequestStats;

/// Where requests go, with the parts every request needs precomputed.
#[derive(Debug, Clone)]
pub struct Target {
    scheme: Scheme,
    authority: Authority,
    host_header: HeaderValue,
    base_path: String,
}

impl Target {
    /// The upstream URL of a request target, for the client span's `url.full`.
    pub fn full_url(&self, target: &str) -> String {
        format!(
            "{}://{}{}{}",
            self.scheme, self.authority, self.base_path, target
        )
    }

    pub fn host(&self) -> &str {
        self.authority.host()
    }

    pub fn port(&self) -> u16 {
        let default = if self.scheme == Scheme::HTTPS {
            443
        } else {
            80
        };
        self.authority.port_u16().unwrap_or(default)
    }

    pub fn new(url: &UpstreamUrl) -> Self {
        Self {
            scheme: url.scheme.clone(),
            authority: url.authority.clone(),
            host_header: HeaderValue::from_str(url.authority.as_str())
                .expect("a parsed URI authority is a valid header value"),
            base_path: url.base_path.clone(),
        }
    }

    /// The upstream URI for a client request target; path and query byte-exact.
    fn uri(&self, target: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let path = match (target, self.base_path.is_empty()) {
            (Some(pq), true) => pq.clone(),
            (None, true) => PathAndQuery::from_static("/"),
            (pq, false) => {
                let rest = pq.map_or("/", PathAndQuery::as_str);
                PathAndQuery::try_from(format!("{}{rest}", self.base_path))?
            }
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
    }
}

/// Headers the proxy sets on the upstream request.
pub struct Outbound<'a> {
    pub correlation: (&'a HeaderName, &'a CorrelationId),
    /// The trace context and baggage headers of the configured propagators.
    pub propagation: Outgoing,
    pub upgrade: bool,
    /// Scan the body for GenAI `model` and `stream`.
    pub scan_genai: bool,
    /// Capture the GenAI request's content too.
    pub capture: Option<Arc<crate::genai::CaptureConfig>>,
}

/// Rewrites the client's request for the upstream.
pub fn upstream_request(
    req: Request<Incoming>,
    target: &Target,
    client: &ClientSide,
    outbound: Outbound<'_>,
    body_limit: Option<u64>,
    stats: Arc<RequestStats>,
) -> Result<Request<RequestBody>, http::Error> {
    let (mut parts, body) = req.into_parts();
    let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });

    parts.uri = target.uri(parts.uri.path_and_query())?;
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    remove_hop_by_hop(headers, outbound.upgrade);
    let proto = if client.tls { "https" } else { "http" };
    append_forwarded(headers, &client.ip, proto, original_host);
    headers.insert(header::HOST, target.host_header.clone());
    headers.insert(
        outbound.correlation.0.clone(),
        outbound.correlation.1.header_value().clone(),
    );
    outbound.propagation.write(headers);

    let body = RequestBody::new(body, body_limit, stats);
    let body = if outbound.scan_genai {
        body.scanning(outbound.capture)
    } else {
        body
    };
    Ok(Request::from_parts(parts, body))
}

/// Prepares the upstream's response head for the client; `server_timing`
/// is added beside any `Server-Timing` the upstream sent, never over it.
pub fn client_response_head<B>(
    response: &mut Response<B>,
    correlation: (&HeaderName, &CorrelationId),
    server_timing: Option<HeaderValue>,
    upgrade: bool,
) {
    let headers = response.headers_mut();
    remove_hop_by_hop(headers, upgrade);
    headers.insert(correlation.0.clone(), correlation.1.header_value().clone());
    if let Some(value) = server_timing {
        headers.append(&SERVER_TIMING, value);
    }
}
