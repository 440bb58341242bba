//! The proxy service: the life of one exchange, in order.
//!
//! 1. **context**: correlation ID, handler, start time → [`Exchange`], owned by a
//!    [`Recorder`] from the first moment, so even a client that leaves now is recorded;
//! 2. **limits**: header block and declared body size (431, 413), answered locally;
//! 3. **forward**: rewrite headers, send upstream under `response_timeout`;
//! 4. **respond**: the upstream's head (or the proxy's JSON error) goes to the
//!    client, its body wrapped in an [`ObservedBody`] that observes every frame;
//! 5. **complete**: when the body ends, errors or is dropped, the recorder writes one
//!    [`Completion`](crate::exchange::Completion) to the sinks.

mod error;
mod forward;
mod headers;
mod upgrade;

pub use error::{
    classify_upstream, error_response, BoxError, ErrorSide, ProxyError, ProxyErrorKind,
};
pub use forward::{ClientSide, Target};

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderName, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::{ObservedBody, Recorder, RequestStats, ResponseBody};
use crate::config::Config;
use crate::context::{CorrelationId, RouteTable};
use crate::exchange::Exchange;
use crate::sinks::Sinks;
use crate::upstream::UpstreamClient;

/// The body of every response the proxy sends.
pub type ProxyBody = ObservedBody<ResponseBody>;

/// Everything shared by all exchanges, built once at start-up.
pub struct Proxy {
    target: Target,
    client: UpstreamClient,
    routes: RouteTable,
    correlation_header: HeaderName,
    correlation_accept: Vec<HeaderName>,
    response_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_header_bytes: usize,
    max_headers: usize,
    max_request_body: Option<u64>,
    sinks: Arc<Sinks>,
}

impl Proxy {
    pub fn new(config: &Config, client: UpstreamClient, sinks: Sinks) -> Self {
        Self {
            target: Target::new(&config.upstream.url),
            client,
            routes: RouteTable::new(&config.metrics.routes),
            correlation_header: config.correlation.header.0.clone(),
            correlation_accept: config
                .correlation
                .accept
                .iter()
                .map(|h| h.0.clone())
                .collect(),
            response_timeout: config.upstream.response_timeout,
            idle_timeout: config.upstream.idle_timeout,
            max_header_bytes: config.listener.max_header_bytes.0 as usize,
            max_headers: config.listener.max_headers,
            max_request_body: config.listener.max_request_body.map(|b| b.0),
            sinks: Arc::new(sinks),
        }
    }

    async fn handle(&self, mut req: Request<Incoming>, client: ClientSide) -> Response<ProxyBody> {
        let start = Instant::now();
        let (correlation_id, _) =
            CorrelationId::from_headers(req.headers(), &self.correlation_accept);
        let exchange = Exchange {
            handler: self.routes.classify(req.uri().path()).clone(),
            target: req
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| "/".parse().expect("/ is a valid path")),
            method: req.method().clone(),
            version: req.version(),
            client_addr: client.addr,
            start,
            correlation_id,
        };
        let mut recorder = Recorder::new(exchange, self.sinks.clone());

        if let Err(kind) = self.check_limits(&req) {
            return self.reply_error(recorder, ProxyError::bare(kind));
        }

        let upgrade =
            headers::is_upgrade_request(req.headers()).then(|| hyper::upgrade::on(&mut req));
        let stats = Arc::new(RequestStats::default());
        recorder.set_request_stats(stats.clone());
        let correlation = (
            &self.correlation_header,
            &recorder.exchange().correlation_id,
        );
        let upstream_req = match forward::upstream_request(
            req,
            &self.target,
            client,
            correlation,
            upgrade.is_some(),
            self.max_request_body,
            stats.clone(),
        ) {
            Ok(r) => r,
            Err(e) => {
                return self.reply_error(recorder, ProxyError::new(ProxyErrorKind::BadRequest, e))
            }
        };

        let sent = Instant::now();
        let mut response =
            match tokio::time::timeout(self.response_timeout, self.client.request(upstream_req))
                .await
            {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => {
                    let kind = if stats.too_large() {
                        ProxyErrorKind::RequestTooLarge
                    } else {
                        classify_upstream(&e)
                    };
                    return self.reply_error(recorder, ProxyError::new(kind, e));
                }
                Err(_) => {
                    return self.reply_error(recorder, ProxyError::bare(ProxyErrorKind::Timeout))
                }
            };
        recorder.upstream_responded(response.status().as_u16(), sent.elapsed());

        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if let (true, Some(client_upgrade)) = (switching, upgrade) {
            upgrade::spawn_tunnel(client_upgrade, hyper::upgrade::on(&mut response));
        }
        let correlation = (
            &self.correlation_header,
            &recorder.exchange().correlation_id,
        );
        forward::client_response_head(&mut response, correlation, switching);
        recorder.responding(response.status().as_u16());
        response.map(|body| {
            ObservedBody::new(ResponseBody::upstream(body, self.idle_timeout), recorder)
        })
    }

    /// Limits checked before anything is sent upstream. hyper enforces larger
    /// hard limits while parsing; these produce the proxy's JSON answer.
    fn check_limits(&self, req: &Request<Incoming>) -> Result<(), ProxyErrorKind> {
        let (bytes, count) = headers::header_block_size(req.headers());
        if bytes > self.max_header_bytes || count > self.max_headers {
            return Err(ProxyErrorKind::HeadersTooLarge);
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match (self.max_request_body, declared) {
            (Some(limit), Some(length)) if length > limit => Err(ProxyErrorKind::RequestTooLarge),
            _ => Ok(()),
        }
    }

    fn reply_error(&self, mut recorder: Recorder, error: ProxyError) -> Response<ProxyBody> {
        let exchange = recorder.exchange();
        tracing::warn!(
            correlation_id = exchange.correlation_id.as_str(),
            error_type = error.kind.as_str(),
            error = %error,
            "proxy answered with an error"
        );
        let response = error_response(
            error.kind,
            &self.correlation_header,
            &exchange.correlation_id,
            None,
        );
        recorder.failed(error.kind);
        recorder.responding(response.status().as_u16());
        response.map(|body| ObservedBody::new(ResponseBody::generated(body), recorder))
    }
}

/// The per-connection service hyper calls for each request.
#[derive(Clone)]
pub struct ProxyService {
    proxy: Arc<Proxy>,
    client: ClientSide,
}

impl ProxyService {
    pub fn new(proxy: Arc<Proxy>, client: ClientSide) -> Self {
        Self { proxy, client }
    }
}

impl hyper::service::Service<Request<Incoming>> for ProxyService {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let proxy = self.proxy.clone();
        let client = self.client;
        Box::pin(async move { Ok(proxy.handle(req, client).await) })
    }
}
