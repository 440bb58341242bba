//! The `outcome` sampler's decision, made once when the exchange completes
//! and before any sink reads it: keep a failure, a slow exchange, a sampled
//! parent's, or the trace-id ratio's share; drop the rest. Arrival already
//! decided the last two (`context::exchange_trace`); the outcome can only
//! add to them, so with `upstream_sampled = "ratio"` a trace the upstream
//! was told is sampled is never dropped.
//!
//! Every sink reads the settled decision: spans are exported, exemplars
//! attached and the access log's flags set only for a kept exchange, so
//! none of them points at a trace that was not exported.

use std::time::Duration;

use super::{Completion, Outcome};
use crate::config::{OutcomeConfig, UpstreamSampled};
use crate::context::exchange_trace::{Arrival, OutcomeArrival};
use crate::context::RouteTable;
use crate::metrics::SamplingHandles;

/// Why an exchange was kept, the first rule that applies in this order; a
/// dropped exchange is counted under `ratio`, the last rule that could
/// have kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Error,
    Slow,
    Parent,
    Ratio,
}

/// A route's thresholds.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    slower_than: Duration,
    ttft_slower_than: Option<Duration>,
}

/// The `outcome` sampler of one configuration.
pub struct OutcomeSampler {
    arrival: OutcomeArrival,
    /// By handler index, `other` last.
    thresholds: Box<[Thresholds]>,
    counters: SamplingHandles,
}

impl OutcomeSampler {
    pub fn new(config: &OutcomeConfig, routes: &RouteTable, counters: SamplingHandles) -> Self {
        let thresholds = routes
            .handlers()
            .map(|handler| {
                let own = config.routes.iter().find(|r| *r.name == *handler.name);
                Thresholds {
                    slower_than: own
                        .and_then(|r| r.slower_than)
                        .unwrap_or(config.slower_than),
                    ttft_slower_than: own
                        .and_then(|r| r.ttft_slower_than)
                        .or(config.ttft_slower_than),
                }
            })
            .collect();
        Self {
            arrival: OutcomeArrival {
                honour_parent: config.honour_parent,
                upstream_always: config.upstream_sampled == UpstreamSampled::Always,
            },
            thresholds,
            counters,
        }
    }

    /// What the exchange's arrival needs.
    pub fn arrival(&self) -> &OutcomeArrival {
        &self.arrival
    }

    /// Settles a pending exchange's decision and counts it.
    pub(super) fn settle(&self, c: &mut Completion) {
        let Some(arrival) = c.exchange.trace.as_ref().and_then(|t| t.pending()) else {
            return;
        };
        let reason = self.reason(c, arrival);
        let counter = match reason {
            Some(Reason::Error) => &self.counters.kept_error,
            Some(Reason::Slow) => &self.counters.kept_slow,
            Some(Reason::Parent) => &self.counters.kept_parent,
            Some(Reason::Ratio) => &self.counters.kept_ratio,
            None => &self.counters.dropped,
        };
        counter.inc();
        if let Some(trace) = c.exchange.trace.as_mut() {
            trace.settle(reason.is_some());
        }
    }

    /// Why the exchange is kept, or `None` to drop it.
    fn reason(&self, c: &Completion, arrival: Arrival) -> Option<Reason> {
        if failed(c) {
            return Some(Reason::Error);
        }
        if self.slow(c) {
            return Some(Reason::Slow);
        }
        match arrival {
            Arrival::ParentSampled => Some(Reason::Parent),
            Arrival::InRatio => Some(Reason::Ratio),
            Arrival::Undecided => None,
        }
    }

    fn slow(&self, c: &Completion) -> bool {
        let Some(t) = self.thresholds.get(c.exchange.handler.index) else {
            return false;
        };
        let ttft = c.genai.as_ref().and_then(|g| g.time_to_first_token);
        c.duration > t.slower_than
            || matches!((ttft, t.ttft_slower_than), (Some(ttft), Some(limit)) if ttft > limit)
    }
}

/// Failed as the SERVER span's ERROR status has it (`sinks::spans`): a
/// client that left, a proxy or upstream failure, or a 5xx.
fn failed(c: &Completion) -> bool {
    c.outcome == Outcome::ClientAbort || c.error_kind().is_some() || c.status >= 500
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Instant, SystemTime};

    use http::{HeaderMap, Method, Version};
    use opentelemetry_sdk::trace::Sampler;

    use super::*;
    use crate::config::{Config, OutcomeRoute, Propagator, RouteConfig};
    use crate::context::exchange_trace::{start_server, SpanFacts};
    use crate::context::{CorrelationId, Propagators};
    use crate::exchange::{ClientSide, Exchange, GenAiCompletion, KnownMethod};
    use crate::genai::GenAiRoute;
    use crate::metrics::SamplingMetrics;
    use crate::telemetry::TracePipeline;

    fn routes() -> RouteTable {
        let route = |name: &str| RouteConfig {
            name: name.to_owned(),
            path: Some(name.to_owned()),
            prefix: None,
        };
        RouteTable::new(&[route("/api/chat"), route("/api/tags")])
    }

    /// How one exchange went.
    struct Case {
        path: &'static str,
        status: u16,
        outcome: Outcome,
        duration: Duration,
        ttft: Option<Duration>,
        parent_sampled: bool,
    }

    const FAST_200: Case = Case {
        path: "/api/tags",
        status: 200,
        outcome: Outcome::Complete,
        duration: Duration::from_millis(10),
        ttft: None,
        parent_sampled: false,
    };

    /// Settles `case` with `config` at ratio 0 (ratio 1 when `in_ratio`);
    /// whether it was kept, and the counters.
    fn settle(config: &OutcomeConfig, case: Case) -> (bool, SamplingHandles) {
        let traces = TracePipeline::discarding(&Config::default());
        let counters = SamplingMetrics::default().handles();
        let sampler = OutcomeSampler::new(config, &routes(), counters.clone());
        let mut headers = HeaderMap::new();
        let flags = if case.parent_sampled { "01" } else { "00" };
        let parent = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
        headers.insert("traceparent", parent.parse().unwrap());
        let inbound = Propagators::new(&[Propagator::Tracecontext]).inbound(&headers);
        let facts = || SpanFacts {
            start: SystemTime::now(),
            user_agent: None,
            server_address: None,
        };
        let ratio = Sampler::TraceIdRatioBased(config.ratio);
        let trace = start_server(
            &traces,
            &ratio,
            Some(sampler.arrival()),
            inbound.as_deref(),
            case.path,
            facts,
        );
        let handler = routes().classify(case.path).clone();
        let exchange = Exchange {
            correlation_id: CorrelationId::generate(),
            method: Method::GET,
            known_method: KnownMethod::Get,
            inbound,
            handler,
            target: case.path.parse().unwrap(),
            version: Version::HTTP_11,
            client: ClientSide::new(SocketAddr::from(([127, 0, 0, 1], 1)), false),
            start: Instant::now(),
            trace: Some(trace),
            genai: GenAiRoute::of(case.path),
            request_headers: None,
        };
        let genai = exchange.genai.map(|route| GenAiCompletion {
            route,
            request: Default::default(),
            usage: Default::default(),
            time_to_first_token: case.ttft,
            input: None,
        });
        let mut completion = Completion {
            exchange,
            outcome: case.outcome,
            status: case.status,
            upstream_status: Some(case.status),
            first_byte: None,
            upstream_headers: None,
            upstream_duration: None,
            duration: case.duration,
            bytes_in: 0,
            bytes_out: 0,
            genai,
            error_detail: None,
        };
        sampler.settle(&mut completion);
        let trace = completion.exchange.trace.as_ref().unwrap();
        assert!(trace.pending().is_none(), "settled once");
        (trace.is_sampled(), counters)
    }

    fn at_ratio(ratio: f64) -> OutcomeConfig {
        OutcomeConfig {
            ratio,
            ..OutcomeConfig::default()
        }
    }

    #[tokio::test]
    async fn a_fast_success_outside_the_ratio_is_dropped_and_counted_under_ratio() {
        let (kept, counters) = settle(&at_ratio(0.0), FAST_200);
        assert!(!kept);
        assert_eq!(counters.dropped.get(), 1);
        let (kept, counters) = settle(&at_ratio(1.0), FAST_200);
        assert!(kept);
        assert_eq!(counters.kept_ratio.get(), 1);
    }

    #[tokio::test]
    async fn failures_are_kept_first_whatever_else_applies() {
        for (status, outcome) in [
            (503, Outcome::Complete),
            (
                502,
                Outcome::ProxyError(crate::error::ProxyErrorKind::Connect),
            ),
            (499, Outcome::ClientAbort),
        ] {
            let case = Case {
                status,
                outcome,
                duration: Duration::from_secs(60),
                parent_sampled: true,
                ..FAST_200
            };
            let (kept, counters) = settle(&at_ratio(1.0), case);
            assert!(kept, "{status}");
            assert_eq!(
                counters.kept_error.get(),
                1,
                "{status}: error before slow, parent, ratio"
            );
        }
        let (kept, _) = settle(
            &at_ratio(0.0),
            Case {
                status: 404,
                ..FAST_200
            },
        );
        assert!(
            !kept,
            "a 4xx answered by the upstream is no failure of the exchange"
        );
    }

    #[tokio::test]
    async fn slow_is_judged_by_the_route_and_the_first_token() {
        let config = OutcomeConfig {
            ratio: 0.0,
            slower_than: Duration::from_secs(5),
            routes: vec![OutcomeRoute {
                name: "/api/chat".into(),
                slower_than: Some(Duration::from_secs(60)),
                ttft_slower_than: Some(Duration::from_secs(2)),
            }],
            ..OutcomeConfig::default()
        };
        let slow = |path, seconds, ttft: Option<u64>| Case {
            path,
            duration: Duration::from_secs(seconds),
            ttft: ttft.map(Duration::from_secs),
            ..FAST_200
        };
        // The default threshold, on a route without its own.
        assert!(settle(&config, slow("/api/tags", 6, None)).0);
        // The route's own threshold replaces it...
        assert!(!settle(&config, slow("/api/chat", 30, Some(1))).0);
        assert!(settle(&config, slow("/api/chat", 61, Some(1))).0);
        // ...and a late first token is slow however short the whole.
        let (kept, counters) = settle(&config, slow("/api/chat", 3, Some(3)));
        assert!(kept);
        assert_eq!(counters.kept_slow.get(), 1);
    }

    #[tokio::test]
    async fn a_sampled_parent_is_kept_only_when_honoured() {
        let parent = || Case {
            parent_sampled: true,
            ..FAST_200
        };
        let (kept, counters) = settle(&at_ratio(0.0), parent());
        assert!(kept);
        assert_eq!(counters.kept_parent.get(), 1);
        let ignore = OutcomeConfig {
            honour_parent: false,
            ..at_ratio(0.0)
        };
        assert!(!settle(&ignore, parent()).0);
    }
}
