//! The recorder of one exchange: it owns the [`Exchange`] from the request's
//! arrival, collects what happens to it, and hands exactly one [`Completion`]
//! to the sinks: at the end of the response body, on a body error, or when
//! dropped early (the client went away, or the shutdown cut the exchange).
//! Because the proxy's request future owns the recorder until the response
//! exists, a client that leaves before the response headers is recorded too,
//! by the same drop. It raises the handler's in-flight gauge when the
//! exchange starts and lowers it when it ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;

use super::exchange_event;
use super::sampling::OutcomeSampler;
use super::{Completion, Exchange, GenAiCompletion, Outcome, RequestStats, STATUS_CLIENT_CLOSED};
use crate::error::ProxyErrorKind;
use crate::genai::GenAiUsage;

/// A consumer of finished exchanges (metrics, spans, access log, Sentry).
pub trait Sink: Send + Sync {
    fn record(&self, completion: &Completion);
}

/// What every recorder shares: where completions go, the in-flight gauge of
/// each handler, and whether the shutdown is cutting unfinished exchanges.
pub struct Recording {
    sink: Box<dyn Sink>,
    /// By handler index.
    in_flight: Box<[Gauge]>,
    /// Set when the shutdown's drain timeout cuts what is still running:
    /// an exchange dropped unfinished then was cut, not left by its client.
    /// Shared by the recordings of every configuration a reload made.
    cutting: Arc<AtomicBool>,
    /// The `outcome` sampler, which settles each exchange before the sinks see it.
    outcome: Option<Arc<OutcomeSampler>>,
}

impl Recording {
    pub fn new(sink: impl Sink + 'static, in_flight: Vec<Gauge>, cutting: Arc<AtomicBool>) -> Self {
        Self {
            sink: Box::new(sink),
            in_flight: in_flight.into_boxed_slice(),
            cutting,
            outcome: None,
        }
    }

    /// Settles every exchange with `sampler` before recording it.
    pub fn with_outcome_sampler(mut self, sampler: Option<Arc<OutcomeSampler>>) -> Self {
        self.outcome = sampler;
        self
    }

    fn in_flight(&self, handler: usize) -> Option<&Gauge> {
        self.in_flight.get(handler)
    }
}

/// Collects the facts of one exchange and hands them to the sinks once.
pub struct Recorder {
    exchange: Option<Exchange>,
    recording: Arc<Recording>,
    request: Option<Arc<RequestStats>>,
    status: u16,
    upstream_status: Option<u16>,
    first_byte: Option<Duration>,
    upstream_headers: Option<Duration>,
    upstream_sent: Option<std::time::Instant>,
    proxy_error: Option<ProxyErrorKind>,
    error_detail: Option<String>,
}

impl Recorder {
    pub fn new(exchange: Exchange, recording: Arc<Recording>) -> Self {
        if let Some(gauge) = recording.in_flight(exchange.handler.index) {
            gauge.inc();
        }
        Self {
            exchange: Some(exchange),
            recording,
            request: None,
            status: STATUS_CLIENT_CLOSED,
            upstream_status: None,
            first_byte: None,
            upstream_headers: None,
            upstream_sent: None,
            proxy_error: None,
            error_detail: None,
        }
    }

    pub fn exchange(&self) -> &Exchange {
        self.exchange
            .as_ref()
            .expect("a recorder's exchange is only taken when it finishes")
    }

    /// Gives mutable access to the exchange's spans, e.g. to add the client span.
    pub fn with_trace(&mut self, f: impl FnOnce(&mut crate::context::ExchangeTrace)) {
        if let Some(trace) = self.exchange.as_mut().and_then(|e| e.trace.as_mut()) {
            f(trace);
        }
    }

    pub fn set_request_stats(&mut self, stats: Arc<RequestStats>) {
        self.request = Some(stats);
    }

    /// The request left for the upstream at `at`.
    pub fn upstream_sent(&mut self, at: std::time::Instant) {
        self.upstream_sent = Some(at);
    }

    /// The upstream answered with headers after `elapsed` since sending.
    pub fn upstream_responded(&mut self, status: u16, elapsed: Duration) {
        self.upstream_status = Some(status);
        self.upstream_headers = Some(elapsed);
    }

    /// The upstream call failed with `kind` and the request goes out again.
    pub fn resending(&mut self, kind: ProxyErrorKind) {
        exchange_event!(
            tracing::Level::INFO,
            &self.exchange().log_ids(),
            error_type = kind.as_str(),
            "upstream connection failed before a response; sending the idempotent request again"
        );
        self.with_trace(|trace| {
            if let Some(call) = trace.client.as_mut() {
                call.resends.push(crate::context::exchange_trace::Resend {
                    at: std::time::SystemTime::now(),
                    error: kind.as_str(),
                });
            }
        });
    }

    /// The proxy is about to send response headers with `status`.
    pub fn responding(&mut self, status: u16) {
        self.status = status;
        self.first_byte = Some(self.exchange().start.elapsed());
    }

    /// The proxy answers itself because of `kind`.
    /// The exchange failed with `kind`; `detail` is the error chain.
    pub fn failed(&mut self, kind: ProxyErrorKind, detail: String) {
        self.proxy_error = Some(kind);
        self.error_detail = Some(detail);
    }

    /// The response body reported its error; `detail` is its cause chain.
    pub fn body_failed(&mut self, detail: String) {
        self.error_detail = Some(detail);
    }

    /// Writes the completion, once: later calls do nothing.
    pub fn finish(&mut self, outcome: Outcome, bytes_out: u64, usage: Option<GenAiUsage>) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        if let Some(gauge) = self.recording.in_flight(exchange.handler.index) {
            gauge.dec();
        }
        let outcome = match (self.proxy_error, outcome) {
            (Some(kind), Outcome::Complete) => Outcome::ProxyError(kind),
            (_, outcome) => outcome,
        };
        let status = if outcome == Outcome::ClientAbort {
            STATUS_CLIENT_CLOSED
        } else {
            self.status
        };
        let now = std::time::Instant::now();
        let completion = Completion {
            duration: now.saturating_duration_since(exchange.start),
            exchange,
            outcome,
            status,
            upstream_status: self.upstream_status,
            first_byte: self.first_byte,
            upstream_headers: self.upstream_headers,
            upstream_duration: self
                .upstream_sent
                .map(|at| now.saturating_duration_since(at)),
            bytes_in: self.request.as_ref().map_or(0, |r| r.bytes()),
            bytes_out,
            genai: None,
            error_detail: self.error_detail.take(),
        };
        let mut completion = completion;
        completion.genai = completion.exchange.genai.map(|route| {
            let request = self.request.as_ref().map(|r| r.genai()).unwrap_or_default();
            let mut genai = GenAiCompletion::new(
                route,
                request,
                usage.unwrap_or_default(),
                completion.exchange.start,
            );
            genai.input = self.request.as_ref().and_then(|r| r.take_input());
            genai
        });
        if let Some(sampler) = &self.recording.outcome {
            sampler.settle(&mut completion);
        }
        self.recording.sink.record(&completion);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let outcome = self.dropped_outcome();
        self.finish(outcome, 0, None);
    }
}

impl Recorder {
    /// Why an unfinished exchange ends: the client left, or the shutdown cut it.
    pub fn dropped_outcome(&mut self) -> Outcome {
        if !self.recording.cutting.load(Ordering::Relaxed) {
            return Outcome::ClientAbort;
        }
        if self.first_byte.is_none() {
            self.status = ProxyErrorKind::DrainTimeout.status().as_u16();
        }
        Outcome::ResponseBodyError(ProxyErrorKind::DrainTimeout)
    }
}
