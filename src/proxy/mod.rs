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

pub mod admission;
mod error_response;
mod forward;
mod headers;
mod resend;
mod upgrade;

pub use error_response::error_response;
pub use forward::Target;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;

use http::uri::PathAndQuery;
use http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::{ObservedBody, RequestBody, ResponseBody};
use crate::config::UpstreamUrl;
use crate::context::exchange_trace::{self, SpanFacts};
use crate::context::{baggage, trace_context, CorrelationId};
use crate::error::{classify_upstream, ProxyError, ProxyErrorKind};
use crate::exchange::{exchange_event, ClientSide, Exchange, KnownMethod, Recorder, RequestStats};
use crate::genai::{CaptureConfig, GenAiRoute, Operation, ResponseTap};
use crate::settings::Settings;
use crate::telemetry::TracePipeline;
use crate::upstream::UpstreamClient;

/// The body of every response the proxy sends.
pub type ProxyBody = ObservedBody<ResponseBody>;

/// Everything shared by all exchanges.
pub struct Proxy {
    target: Target,
    client: UpstreamClient,
    traces: Option<Arc<TracePipeline>>,
    /// The upstream host, shared by every client span.
    upstream_host: Arc<str>,
    /// What a reload may change; loaded once per exchange.
    settings: Arc<ArcSwap<Settings>>,
    /// The shutdown's drain timeout is cutting what still runs.
    cutting: Arc<AtomicBool>,
}

/// What the proxy is built from besides the upstream's URL.
pub struct ProxyParts {
    pub client: UpstreamClient,
    pub traces: Option<Arc<TracePipeline>>,
    pub settings: Arc<ArcSwap<Settings>>,
    pub cutting: Arc<AtomicBool>,
}

impl Proxy {
    pub fn new(upstream: &UpstreamUrl, parts: ProxyParts) -> Self {
        Self {
            target: Target::new(upstream),
            client: parts.client,
            traces: parts.traces,
            upstream_host: Arc::from(upstream.host()),
            settings: parts.settings,
            cutting: parts.cutting,
        }
    }

    /// The shutdown is about to cut the exchanges still running: recorders
    /// dropped from now on record a cut, not a client that left.
    pub fn start_cutting(&self) {
        self.cutting.store(true, Ordering::Relaxed);
    }

    async fn handle(&self, mut req: Request<Incoming>, client: &ClientSide) -> Response<ProxyBody> {
        let settings = self.settings.load_full();
        let exchange = self.start_exchange(&settings, &req, client);
        let mut recorder = Recorder::new(exchange, settings.recording.clone());

        if req.extensions().get::<admission::Shed>().is_some() {
            let overloaded = ProxyError::bare(ProxyErrorKind::Overloaded);
            return self.reply_error(&settings, recorder, overloaded);
        }
        if let Err(kind) = check_limits(&settings, &req) {
            return self.reply_error(&settings, recorder, ProxyError::bare(kind));
        }

        let upgrade =
            headers::is_upgrade_request(req.headers()).then(|| hyper::upgrade::on(&mut req));
        let stats = Arc::new(RequestStats::default());
        recorder.set_request_stats(stats.clone());
        let outbound = self.outbound(&settings, &mut recorder, &req, upgrade.is_some());
        let upstream_req = match forward::upstream_request(
            req,
            &self.target,
            client,
            outbound,
            settings.max_request_body,
            stats.clone(),
        ) {
            Ok(r) => r,
            Err(e) => {
                let error = ProxyError::new(ProxyErrorKind::BadRequest, e);
                return self.reply_error(&settings, recorder, error);
            }
        };

        let replay = resend::Replay::of(&upstream_req, upgrade.is_some());
        let sent = Instant::now();
        recorder.upstream_sent(sent);
        let call = self.call_upstream(upstream_req, replay, &mut recorder, &stats);
        let mut response = match tokio::time::timeout(settings.response_timeout, call).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                let kind = if stats.too_large() {
                    ProxyErrorKind::RequestTooLarge
                } else {
                    classify_upstream(&e)
                };
                return self.reply_error(&settings, recorder, ProxyError::new(kind, e));
            }
            Err(_) => {
                let timeout = ProxyError::bare(ProxyErrorKind::Timeout);
                return self.reply_error(&settings, recorder, timeout);
            }
        };
        recorder.upstream_responded(response.status().as_u16(), sent.elapsed());

        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if let (true, Some(client_upgrade)) = (switching, upgrade) {
            let ids = recorder.exchange().log_ids();
            upgrade::spawn_tunnel(client_upgrade, hyper::upgrade::on(&mut response), ids);
        }
        let exchange = recorder.exchange();
        let correlation = (&settings.correlation_header, &exchange.correlation_id);
        let timing = server_timing(&settings, exchange);
        forward::client_response_head(&mut response, correlation, timing, switching);
        recorder.responding(response.status().as_u16());
        let tap = recorder.exchange().genai.map(|route| {
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let streaming = stats.genai().stream.unwrap_or(route.streams_by_default);
            ResponseTap::new(content_type, streaming, capture(&settings, route))
        });
        let idle_timeout = settings.idle_timeout;
        response.map(|body| {
            ObservedBody::new(ResponseBody::upstream(body, idle_timeout), recorder).with_tap(tap)
        })
    }

    /// Sends the request, and once more if a closed connection lost a
    /// request that `replay` can repeat (see [`resend`]).
    async fn call_upstream(
        &self,
        req: Request<RequestBody>,
        replay: Option<resend::Replay>,
        recorder: &mut Recorder,
        stats: &Arc<RequestStats>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let mut result = self.client.request(req).await;
        let Some(replay) = replay else {
            return result;
        };
        for _ in 0..resend::MAX_RESENDS {
            let kind = match &result {
                Err(e) => classify_upstream(e),
                Ok(_) => break,
            };
            if !resend::worth_resending(kind) {
                break;
            }
            recorder.resending(kind);
            result = self.client.request(replay.request(stats.clone())).await;
        }
        result
    }

    /// Decides, once, everything the exchange's signals will say about the
    /// request: correlation ID, handler, method, inbound trace context, and
    /// the trace (sampled or not).
    fn start_exchange(
        &self,
        settings: &Settings,
        req: &Request<Incoming>,
        client: &ClientSide,
    ) -> Exchange {
        let start = Instant::now();
        let (correlation_id, rejected) =
            CorrelationId::from_headers(req.headers(), &settings.correlation_accept);
        let handler = settings.routes.classify(req.uri().path()).clone();
        let inbound = settings.propagators.inbound(req.headers());
        let trace = self.traces.as_ref().map(|traces| {
            let sampler = &settings.sampler;
            let outcome = settings.outcome.as_ref().map(|o| o.arrival());
            let inbound = inbound.as_deref();
            exchange_trace::start_server(traces, sampler, outcome, inbound, &handler.name, || {
                span_facts(req)
            })
        });
        let exchange = Exchange {
            handler,
            target: req
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
            known_method: KnownMethod::of(req.method()),
            method: req.method().clone(),
            version: req.version(),
            client: client.clone(),
            start,
            correlation_id,
            inbound,
            trace,
            genai: settings
                .genai_enabled
                .then(|| GenAiRoute::of(req.uri().path()))
                .flatten(),
            request_headers: settings
                .keep_headers
                .then(|| Box::new(req.headers().clone())),
        };
        if let Some(rejected) = rejected {
            exchange_event!(
                tracing::Level::DEBUG,
                &exchange.log_ids(),
                header = rejected.header.as_str(),
                length = rejected.length,
                "discarded an invalid inbound correlation id"
            );
        }
        exchange
    }

    /// Starts the client span and decides the propagation headers.
    fn outbound<'a>(
        &'a self,
        settings: &'a Settings,
        recorder: &'a mut Recorder,
        req: &Request<Incoming>,
        upgrade: bool,
    ) -> forward::Outbound<'a> {
        if self.traces.is_some() {
            let target = recorder.exchange().target.clone();
            let url = || {
                let path = settings.redactor.target(target.as_str());
                self.target.full_url(&path)
            };
            let host = self.upstream_host.clone();
            recorder.with_trace(|trace| {
                exchange_trace::start_client(trace, host, self.target.port(), &url)
            });
        }
        let exchange = recorder.exchange();
        // The client's trace headers go on only when valid, whether or not
        // tracing is on: a malformed traceparent or b3 is never forwarded.
        let propagation = settings.propagators.outgoing(
            exchange.trace.as_ref(),
            exchange.inbound.as_deref(),
            || baggage::merged(req.headers(), &exchange.correlation_id),
        );
        forward::Outbound {
            correlation: (&settings.correlation_header, &exchange.correlation_id),
            propagation,
            upgrade,
            scan_genai: exchange.genai.is_some(),
            capture: exchange.genai.and_then(|route| capture(settings, route)),
        }
    }

    fn reply_error(
        &self,
        settings: &Settings,
        mut recorder: Recorder,
        error: ProxyError,
    ) -> Response<ProxyBody> {
        let exchange = recorder.exchange();
        let ids = exchange.log_ids();
        let error_type = error.kind.as_str();
        // Shed requests come in floods exactly when the process is busiest:
        // the access line records each, a warning each would add to the load.
        if error.kind == ProxyErrorKind::Overloaded {
            exchange_event!(
                tracing::Level::DEBUG,
                &ids,
                error_type,
                "proxy overloaded: request shed"
            );
        } else {
            exchange_event!(
                tracing::Level::WARN,
                &ids,
                error_type,
                error = %error,
                "proxy answered with an error"
            );
        }
        let trace_id = exchange.trace_ids().map(|(trace_id, _)| trace_id);
        let mut response = error_response(
            error.kind,
            &settings.correlation_header,
            &exchange.correlation_id,
            trace_id.as_deref(),
        );
        if let Some(timing) = server_timing(settings, exchange) {
            response
                .headers_mut()
                .append(&trace_context::SERVER_TIMING, timing);
        }
        recorder.failed(error.kind, error.chain());
        recorder.responding(response.status().as_u16());
        response.map(|body| ObservedBody::new(ResponseBody::generated(body), recorder))
    }
}

/// What content capture needs on `route`: embeddings have no messages.
fn capture(settings: &Settings, route: GenAiRoute) -> Option<Arc<CaptureConfig>> {
    let capture = settings.genai_capture.as_ref()?;
    (route.operation != Operation::Embeddings).then(|| capture.clone())
}

/// Limits checked before anything is sent upstream. hyper enforces larger
/// hard limits while parsing; these produce the proxy's JSON answer.
fn check_limits(settings: &Settings, req: &Request<Incoming>) -> Result<(), ProxyErrorKind> {
    let (bytes, count) = headers::header_block_size(req.headers());
    if bytes > settings.max_header_bytes || count > settings.max_headers {
        return Err(ProxyErrorKind::HeadersTooLarge);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match (settings.max_request_body, declared) {
        (Some(limit), Some(length)) if length > limit => Err(ProxyErrorKind::RequestTooLarge),
        _ => Ok(()),
    }
}

/// The W3C trace context server timing metric of the exchange's server
/// span, when `[tracing] server_timing` is on and the exchange has a trace:
/// a browser's devtools or `curl -i` show the trace id to look up.
fn server_timing(settings: &Settings, exchange: &Exchange) -> Option<http::HeaderValue> {
    let trace = exchange.trace.as_ref().filter(|_| settings.server_timing)?;
    Some(trace_context::server_timing_value(&trace.server_context()))
}

/// What a sampled exchange's SERVER span needs beyond the exchange.
fn span_facts(req: &Request<Incoming>) -> SpanFacts {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let host = header(header::HOST).or_else(|| req.uri().host());
    SpanFacts {
        start: SystemTime::now(),
        user_agent: header(header::USER_AGENT).map(str::to_owned),
        server_address: host.map(|h| h.split(':').next().unwrap_or(h).to_owned()),
    }
}

/// The per-connection service hyper calls for each request.
#[derive(Clone)]
pub struct ProxyService {
    /// One `Arc` for both, since the service is cloned for every request.
    connection: Arc<(Arc<Proxy>, ClientSide)>,
}

impl ProxyService {
    pub fn new(proxy: Arc<Proxy>, client: ClientSide) -> Self {
        Self {
            connection: Arc::new((proxy, client)),
        }
    }
}

impl tower::Service<Request<Incoming>> for ProxyService {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let connection = self.connection.clone();
        Box::pin(async move {
            let (proxy, client) = &*connection;
            Ok(proxy.handle(req, client).await)
        })
    }
}
